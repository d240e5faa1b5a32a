/* proxy/serial_ring.h — the serial console's two bounded byte stores, pure
 * (no I/O, no clock), unit-tested in tests/unit/test_serial_ring.c.
 *
 *   - serial_ring: the latest `cap` bytes QEMU's serial port produced.
 *     Writing never fails and never blocks: older bytes are overwritten.
 *     A new session gets a copy (the boot messages it missed).
 *   - serial_outq: one attached session's backlog, bounded.  When a put
 *     does not fit, the whole backlog is dropped and a marker line takes
 *     its place ("[vmgate: N bytes dropped ...]"), then the new bytes (their
 *     tail, if even they do not fit).  So a slow terminal costs memory up
 *     to `cap`, never blocks QEMU's reads or the other sessions, and sees
 *     where it lost output. */
#ifndef VMGATE_PROXY_SERIAL_RING_H
#define VMGATE_PROXY_SERIAL_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

struct serial_ring {
    uint8_t *data;            /* cap bytes, allocated at init */
    size_t cap;
    size_t head;              /* where the next byte goes */
    size_t len;               /* bytes held (<= cap) */
    uint64_t total;           /* bytes ever put */
};

/* 0, or -1 when out of memory. */
int serial_ring_init(struct serial_ring *r, size_t cap);
void serial_ring_free(struct serial_ring *r);
/* Keep p[0..n) as the newest bytes (only the last cap of them if n > cap). */
void serial_ring_put(struct serial_ring *r, const void *p, size_t n);
/* The held bytes, oldest first, as at most two runs: *a (*alen) then *b
 * (*blen, 0 when one run). */
void serial_ring_runs(const struct serial_ring *r, const uint8_t **a, size_t *alen,
                      const uint8_t **b, size_t *blen);

#define SERIAL_MARKER_MAX 96

struct serial_outq {
    struct buf b;             /* bounded (cap at init), lazily allocated */
    uint64_t dropped;         /* bytes dropped since the session attached */
    unsigned drops;           /* times the backlog was dropped */
};

void serial_outq_init(struct serial_outq *q, size_t cap);   /* cap > SERIAL_MARKER_MAX */
void serial_outq_free(struct serial_outq *q);
/* Queue n bytes; on overflow drop the backlog for a marker first (see
 * above).  Returns the bytes dropped by this call (0: everything fit).
 * Returns (size_t)-1 only when the buffer cannot be allocated. */
size_t serial_outq_put(struct serial_outq *q, const void *p, size_t n);
/* The marker text for a drop of n bytes, into out (NUL-terminated); its length. */
size_t serial_marker(uint64_t n, char *out, size_t outsz);

#endif
