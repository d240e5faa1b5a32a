/* tests/fuzz/fuzz_common.h — shared by the rfbmsg fuzz targets.
 *
 * The oracle is differential: the same input is fed to the framer once in
 * one piece and once in pseudo-random pieces (each piece copied into a
 * buffer of exactly the available size, so ASan sees any read past it).
 * After merging consecutive payload chunks, both runs must report the same
 * spans, fail at the same offset with the same reason, and end in the same
 * state.  Plus per-call invariants: 0 < r <= n, RFB_NEED only below
 * RFBMSG_HDR_MAX bytes, RFB_BAD sticky, "idle" exactly after a span that
 * ended its message. */
#ifndef VMGATE_FUZZ_COMMON_H
#define VMGATE_FUZZ_COMMON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/rfbmsg.h"

#define FUZZ_CHECK(c) do { if (!(c)) { fprintf(stderr, "check failed: %s (%s:%d)\n", #c, \
                                                       __FILE__, __LINE__); abort(); } } while (0)

static const uint8_t fuzz_pfs[8][16] = {
    { 32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0 },
    { 32, 32, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0 },
    { 32, 30, 0, 1, 3, 255, 3, 255, 3, 255, 20, 10, 0, 0, 0, 0 },
    { 16, 16, 0, 1, 0, 31, 0, 63, 0, 31, 11, 5, 0, 0, 0, 0 },
    { 8, 8, 0, 1, 0, 7, 0, 7, 0, 3, 0, 3, 6, 0, 0, 0 },
    { 32, 24, 0, 0, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0 },
    { 32, 24, 1, 1, 0, 0, 0, 0, 0, 0, 0, 8, 16, 0, 0, 0 },
    { 24, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0 },   /* refused */
};

/* Encodings a fuzzer may put in SetEncodings, selected by mask bits. */
static const int32_t fuzz_encs[32] = {
    RFB_ENC_RAW, RFB_ENC_COPYRECT, RFB_ENC_HEXTILE, RFB_ENC_ZLIB, RFB_ENC_TIGHT,
    RFB_ENC_ZRLE, RFB_ENC_ZYWRLE, RFB_ENC_TIGHT_PNG, RFB_ENC_DESKTOP_SIZE, RFB_ENC_LAST_RECT,
    RFB_ENC_POINTER_POS, RFB_ENC_CURSOR, RFB_ENC_XCURSOR, RFB_ENC_QEMU_POINTER,
    RFB_ENC_QEMU_EXT_KEY, RFB_ENC_QEMU_AUDIO, RFB_ENC_LED_STATE, RFB_ENC_EXT_DESKTOP_SIZE,
    RFB_ENC_ALPHA_CURSOR, RFB_ENC_EXT_CLIPBOARD, RFB_ENC_XVP, RFB_ENC_FENCE,
    RFB_ENC_CONT_UPDATES, RFB_ENC_WMVI, RFB_ENC_EXT_MOUSE_BUTTONS, RFB_ENC_RRE,
    RFB_ENC_TRLE, RFB_ENC_JPEG_QUALITY_0 + 5, RFB_ENC_COMPRESS_0 + 1, RFB_ENC_DESKTOP_NAME,
    RFB_ENC_VMWARE_CURSOR, RFB_ENC_GII,
};

struct fz_rec {
    struct rfbmsg m;
    size_t span;
};

struct fz_run {
    struct fz_rec *ev;
    size_t n, cap;
    bool bad;
    size_t consumed;
    char why[sizeof(((struct rfbmsg_state *)0)->why)];
    struct rfbmsg_state end;
};

static void fz_free(struct fz_run *R)
{
    free(R->ev);
    memset(R, 0, sizeof *R);
}

static void fz_add(struct fz_run *R, const struct rfbmsg *m, size_t span)
{
    if (R->n) {
        struct fz_rec *l = &R->ev[R->n - 1];
        if ((m->kind == RFBMSG_DATA || m->kind == RFBMSG_CUT) && l->m.kind == m->kind &&
            l->m.type == m->type && !l->m.end) {
            l->span += span;
            l->m.end = m->end;
            return;
        }
    }
    if (R->n == R->cap) {
        R->cap = R->cap ? 2 * R->cap : 64;
        R->ev = realloc(R->ev, R->cap * sizeof *R->ev);
        FUZZ_CHECK(R->ev != NULL);
    }
    R->ev[R->n].m = *m;
    R->ev[R->n].span = span;
    R->n++;
}

static bool fz_same_msg(const struct rfbmsg *a, const struct rfbmsg *b)
{
    return a->type == b->type && a->kind == b->kind && a->end == b->end && a->sub == b->sub &&
           a->len == b->len && a->x == b->x && a->y == b->y && a->w == b->w && a->h == b->h &&
           a->enc == b->enc && a->nrects == b->nrects && a->cut_ext == b->cut_ext &&
           a->cut_over == b->cut_over && a->cut_len == b->cut_len;
}

static void fz_compare(const struct fz_run *a, const struct fz_run *b)
{
    FUZZ_CHECK(a->n == b->n);
    for (size_t i = 0; i < a->n; i++) {
        FUZZ_CHECK(fz_same_msg(&a->ev[i].m, &b->ev[i].m));
        FUZZ_CHECK(a->ev[i].span == b->ev[i].span);
    }
    FUZZ_CHECK(a->bad == b->bad);
    FUZZ_CHECK(a->consumed == b->consumed);
    FUZZ_CHECK(strcmp(a->why, b->why) == 0);
    FUZZ_CHECK(a->end.bypp == b->end.bypp && a->end.tpixel == b->end.tpixel);
    FUZZ_CHECK(a->end.fb_w == b->end.fb_w && a->end.fb_h == b->end.fb_h);
    FUZZ_CHECK(rfbmsg_in_update(&a->end) == rfbmsg_in_update(&b->end));
}

static uint32_t fz_rnd(uint32_t *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 8;
}

/* One call, with the available bytes in an exact-size copy when `exact`. */
static int fz_call(struct rfbmsg_state *st, bool s2c, const uint8_t *p, size_t n, bool exact,
                   struct rfbmsg *m)
{
    uint8_t *copy = NULL;
    if (exact) {
        copy = malloc(n ? n : 1);
        FUZZ_CHECK(copy != NULL);
        memcpy(copy, p, n);
        p = copy;
    }
    int r = s2c ? rfbmsg_s2c(st, p, n, m) : rfbmsg_c2s(st, p, n, m);
    free(copy);
    FUZZ_CHECK(r == RFB_NEED || r == RFB_BAD || (r > 0 && (size_t)r <= n));
    if (r == RFB_NEED)
        FUZZ_CHECK(n < RFBMSG_HDR_MAX);
    if (r == RFB_BAD)
        FUZZ_CHECK(st->why[0] != '\0');
    return r;
}

/* Hooks: before each call (at offset `consumed`, `boundary` when no
 * payload run is in progress), and after each span. */
typedef void (*fz_before_fn)(struct rfbmsg_state *st, size_t consumed, bool boundary, void *arg);
typedef void (*fz_after_fn)(struct rfbmsg_state *st, const uint8_t *span, size_t n,
                            const struct rfbmsg *m, void *arg);

/* Feed data[0..len) in one piece (chunked = false) or in pieces of 1..64
 * bytes drawn from seed, each call seeing an exact-size copy. */
static void fz_feed(struct rfbmsg_state *st, bool s2c, const uint8_t *data, size_t len,
                    bool chunked, uint32_t seed, fz_before_fn before, fz_after_fn after,
                    void *arg, struct fz_run *R)
{
    size_t consumed = 0, delivered = chunked ? 0 : len;
    uint32_t s = seed;
    memset(R, 0, sizeof *R);
    for (;;) {
        if (chunked && delivered < len) {
            delivered += 1 + fz_rnd(&s) % 64;
            if (delivered > len)
                delivered = len;
        }
        while (consumed < delivered) {
            struct rfbmsg m;
            const struct rfbmsg_dir *d = s2c ? &st->s2c : &st->c2s;
            if (before)
                before(st, consumed, d->skip == 0, arg);
            int r = fz_call(st, s2c, data + consumed, delivered - consumed, chunked, &m);
            if (r == RFB_NEED)
                break;
            if (r == RFB_BAD) {
                R->bad = true;
                snprintf(R->why, sizeof R->why, "%s", st->why);
                /* sticky */
                FUZZ_CHECK(fz_call(st, s2c, data + consumed, delivered - consumed, false, &m) ==
                           RFB_BAD);
                break;
            }
            FUZZ_CHECK((s2c ? rfbmsg_s2c_idle(st) : rfbmsg_c2s_idle(st)) == m.end);
            if (after)
                after(st, data + consumed, (size_t)r, &m, arg);
            fz_add(R, &m, (size_t)r);
            consumed += (size_t)r;
        }
        if (R->bad || delivered == len)
            break;
    }
    R->consumed = consumed;
    R->end = *st;
}

#endif
