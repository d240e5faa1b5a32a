/* common/buf.c — see buf.h. */
#include "common/buf.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* The pool: a few size classes, each a stack of free blocks.  Blocks keep
 * their high-water mark so the final wipe covers exactly what was used. */
struct pool_blk {
    uint8_t *p;
    size_t hiwater;
};
static struct pool {
    size_t cap;
    unsigned n;
    struct pool_blk blk[BUF_POOL_DEPTH];
} pools[4];

static struct pool *pool_for(size_t cap, bool create)
{
    if (cap < BUF_POOL_MIN)
        return NULL;
    for (size_t i = 0; i < sizeof pools / sizeof pools[0]; i++) {
        if (pools[i].cap == cap)
            return &pools[i];
        if (pools[i].cap == 0 && create) {
            pools[i].cap = cap;
            return &pools[i];
        }
    }
    return NULL;
}

static void wipe_free(uint8_t *p, size_t hiwater)
{
    explicit_bzero(p, hiwater);
    free(p);
}

void buf_pool_drain(void)
{
    for (size_t i = 0; i < sizeof pools / sizeof pools[0]; i++) {
        while (pools[i].n) {
            struct pool_blk *k = &pools[i].blk[--pools[i].n];
            wipe_free(k->p, k->hiwater);
        }
    }
}

void buf_init(struct buf *b, size_t cap)
{
    buf_init_headroom(b, cap, 0);
}

void buf_init_headroom(struct buf *b, size_t cap, size_t headroom)
{
    memset(b, 0, sizeof *b);
    b->cap = cap;
    b->resv = headroom < cap ? headroom : 0;
}

/* Move the data down to the reserve (the front, less the headroom). */
static void compact(struct buf *b)
{
    size_t n = b->end - b->start;
    memmove(b->data + b->resv, b->data + b->start, n);
    b->start = b->resv;
    b->end = b->resv + n;
}

void buf_free(struct buf *b)
{
    if (b->data) {
        struct pool *pl = pool_for(b->cap, true);
        if (pl && pl->n < BUF_POOL_DEPTH)
            pl->blk[pl->n++] = (struct pool_blk){ b->data, b->hiwater };
        else
            wipe_free(b->data, b->hiwater);
    }
    b->data = NULL;
    b->start = b->end = b->hiwater = 0;
}

uint8_t *buf_tail(struct buf *b, size_t *avail)
{
    *avail = 0;
    if (!b->data) {
        struct pool *pl = pool_for(b->cap, false);
        if (pl && pl->n) {
            struct pool_blk *k = &pl->blk[--pl->n];
            b->data = k->p;
            b->hiwater = k->hiwater;
        } else {
            b->data = malloc(b->cap);
            if (!b->data)
                return NULL;
            b->hiwater = 0;
        }
        b->start = b->end = b->resv;
    }
    if (b->end == b->cap && b->start > b->resv)
        compact(b);
    if (b->end == b->cap)
        return NULL;
    *avail = b->cap - b->end;
    return b->data + b->end;
}

void buf_produce(struct buf *b, size_t n)
{
    b->end += n;
    if (b->end > b->hiwater)
        b->hiwater = b->end;
}

void buf_consume(struct buf *b, size_t n)
{
    b->start += n;
    if (b->start == b->end)
        b->start = b->end = b->resv;
}

int buf_put(struct buf *b, const void *p, size_t n)
{
    if (n > buf_room(b))
        return -1;
    size_t avail;
    uint8_t *t = buf_tail(b, &avail);
    if (!t || avail < n) {
        /* room exists but not contiguous at the tail: compact fully */
        if (!b->data)
            return -1;
        compact(b);
        t = b->data + b->end;
    }
    memcpy(t, p, n);
    buf_produce(b, n);
    return 0;
}

void buf_trim(struct buf *b)
{
    if (b->data && b->start == b->end)
        buf_free(b);
}

void buf_cut(struct buf *b, size_t off, size_t n)
{
    uint8_t *at = b->data + b->start + off;
    memmove(at, at + n, b->end - (b->start + off + n));
    b->end -= n;
    if (b->start == b->end)
        b->start = b->end = b->resv;
}

int buf_insert(struct buf *b, size_t off, const void *p, size_t n)
{
    if (n > buf_room(b) || off > buf_len(b))
        return -1;
    if (!b->data) {
        size_t avail;
        if (!buf_tail(b, &avail))
            return -1;
    }
    if (b->end + n > b->cap)             /* compact to the front first */
        compact(b);
    uint8_t *at = b->data + b->start + off;
    memmove(at + n, at, b->end - (b->start + off));
    memcpy(at, p, n);
    buf_produce(b, n);
    return 0;
}
