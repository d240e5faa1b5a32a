/* proxy/serial_ring.c — see serial_ring.h. */
#include "proxy/serial_ring.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int serial_ring_init(struct serial_ring *r, size_t cap)
{
    memset(r, 0, sizeof *r);
    r->data = malloc(cap ? cap : 1);
    if (!r->data)
        return -1;
    r->cap = cap;
    return 0;
}

void serial_ring_free(struct serial_ring *r)
{
    free(r->data);
    memset(r, 0, sizeof *r);
}

void serial_ring_put(struct serial_ring *r, const void *p, size_t n)
{
    const uint8_t *s = p;
    r->total += n;
    if (r->cap == 0)
        return;
    if (n > r->cap) {               /* only the newest cap bytes matter */
        s += n - r->cap;
        n = r->cap;
    }
    size_t first = r->cap - r->head < n ? r->cap - r->head : n;
    memcpy(r->data + r->head, s, first);
    memcpy(r->data, s + first, n - first);
    r->head = (r->head + n) % r->cap;
    r->len = r->len + n > r->cap ? r->cap : r->len + n;
}

void serial_ring_runs(const struct serial_ring *r, const uint8_t **a, size_t *alen,
                      const uint8_t **b, size_t *blen)
{
    size_t start = (r->head + r->cap - r->len) % (r->cap ? r->cap : 1);
    *a = r->data + start;
    if (start + r->len <= r->cap) {
        *alen = r->len;
        *b = r->data;
        *blen = 0;
    } else {
        *alen = r->cap - start;
        *b = r->data;
        *blen = r->len - *alen;
    }
}

size_t serial_marker(uint64_t n, char *out, size_t outsz)
{
    int k = snprintf(out, outsz, "\r\n[vmgate: %llu bytes dropped: this terminal reads too "
                     "slowly]\r\n", (unsigned long long)n);
    return k < 0 ? 0 : (size_t)k >= outsz ? outsz - 1 : (size_t)k;
}

void serial_outq_init(struct serial_outq *q, size_t cap)
{
    memset(q, 0, sizeof *q);
    buf_init(&q->b, cap);
}

void serial_outq_free(struct serial_outq *q)
{
    buf_free(&q->b);
}

size_t serial_outq_put(struct serial_outq *q, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    if (buf_room(&q->b) >= n)
        return buf_put(&q->b, p, n) == 0 ? 0 : (size_t)-1;
    /* overflow: the backlog goes, a marker says how much, then the news */
    const uint8_t *s = p;
    size_t lost = buf_len(&q->b);
    buf_consume(&q->b, lost);
    char m[SERIAL_MARKER_MAX];
    size_t room = q->b.cap - SERIAL_MARKER_MAX;
    if (n > room) {
        lost += n - room;
        s += n - room;
        n = room;
    }
    size_t ml = serial_marker(lost, m, sizeof m);
    if (buf_put(&q->b, m, ml) != 0 || buf_put(&q->b, s, n) != 0)
        return (size_t)-1;
    q->dropped += lost;
    q->drops++;
    return lost;
}
