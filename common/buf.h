/* common/buf.h — a bounded byte buffer with lazy storage.
 *
 * Data lives in [data+start, data+end).  The storage is allocated on first
 * use and released again by buf_trim() once the buffer is empty, so an idle
 * session holds no buffer memory at all.  Capacity is fixed at init: a full
 * buffer is the signal for backpressure (stop reading the side that fills
 * it).  No function here does I/O.
 *
 * Storage of the relay sizes (BUF_POOL_MIN and up) is recycled through a
 * small per-process pool instead of going back to malloc each time a
 * buffer drains: a busy session drains its buffers thousands of times a
 * second.  Pooled blocks are wiped (up to their high-water mark) only when
 * they finally leave the pool; their stale bytes are never readable, since
 * only [start, end) is ever read and it is written first.  Smaller buffers,
 * the ones that hold credentials, are wiped on every release.
 *
 * A buffer may ask for headroom (buf_init_headroom): then the first
 * `resv` bytes of the storage never hold data (every reset and compaction
 * goes to offset resv, not 0), so at least that many bytes just before
 * buf_head() are always free for a writer to put a header in front of the
 * data it sends (the WebSocket frame header in tside.c).  The headroom
 * comes out of the capacity: the storage stays cap bytes, so the pool is
 * shared with the buffers of the same capacity without headroom. */
#ifndef VMGATE_BUF_H
#define VMGATE_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf {
    uint8_t *data;
    size_t cap;      /* fixed capacity */
    size_t start;    /* first unread byte */
    size_t end;      /* one past the last byte */
    size_t hiwater;  /* highest end since allocation: what a wipe must cover */
    size_t resv;     /* headroom: storage bytes before the data that stay free */
};

#define BUF_POOL_MIN   (16 * 1024)
#define BUF_POOL_DEPTH 64            /* free blocks kept per size */

void buf_init(struct buf *b, size_t cap);
/* The same, with headroom bytes (< cap) kept free in front of the data:
 * buf_headroom() is at least that whenever the buffer holds data, and the
 * buffer takes cap - headroom bytes. */
void buf_init_headroom(struct buf *b, size_t cap, size_t headroom);
/* Free every pooled block (at exit, for leak checkers). */
void buf_pool_drain(void);
void buf_free(struct buf *b);
static inline size_t buf_len(const struct buf *b) { return b->end - b->start; }
static inline bool buf_empty(const struct buf *b) { return b->end == b->start; }
static inline const uint8_t *buf_head(const struct buf *b) { return b->data + b->start; }
/* The head for a writer that overwrites the headroom in front of it. */
static inline uint8_t *buf_head_mut(struct buf *b) { return b->data + b->start; }
/* How many bytes just before buf_head() are free (consumed data or the
 * reserve): a sender may overwrite them.  At least the buffer's headroom
 * while it holds data. */
static inline size_t buf_headroom(const struct buf *b) { return b->start; }
/* Bytes that can still be appended (after compaction). */
static inline size_t buf_room(const struct buf *b) { return b->cap - b->resv - buf_len(b); }
static inline bool buf_full(const struct buf *b) { return buf_room(b) == 0; }
/* Make the tail writable: allocate storage if needed and move the data to
 * the front when that frees room.  Returns a pointer to the free tail and
 * its size in *avail, or NULL (with *avail 0) if the buffer is full or
 * allocation failed. */
uint8_t *buf_tail(struct buf *b, size_t *avail);
/* Mark n bytes written at the tail / consumed at the head. */
void buf_produce(struct buf *b, size_t n);
void buf_consume(struct buf *b, size_t n);
/* Append n bytes; returns 0, or -1 if they do not fit (nothing appended). */
int buf_put(struct buf *b, const void *p, size_t n);
/* Remove n bytes at offset off from the head (off + n <= buf_len). */
void buf_cut(struct buf *b, size_t off, size_t n);
/* Insert n bytes at offset off from the head; returns 0, or -1 if they do
 * not fit (nothing changed). */
int buf_insert(struct buf *b, size_t off, const void *p, size_t n);
/* Release the storage when empty (wiping it first). */
void buf_trim(struct buf *b);

#endif
