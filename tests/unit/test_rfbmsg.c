/* Unit tests for proxy/rfbmsg.c: the relay-phase RFB framer.
 *
 * Streams are synthesised by a builder that writes every encoding from its
 * specification and records where each message and rectangle begins and
 * ends.  Each stream is then fed to the framer in one piece, byte by byte
 * and split at every byte boundary (two pieces); the framer must report
 * exactly the builder's message and rectangle boundaries, and the same
 * spans (after merging payload chunks) for every way of feeding.  NEED must
 * never be returned with RFBMSG_HDR_MAX bytes available. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proxy/rfbmsg.h"

/* ------------------------------------------------------------ pixel formats */

/* bpp, depth, big-endian, true-colour, rmax, gmax, bmax, shifts, pad */
static const uint8_t PF32[16] = { 32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0 };
static const uint8_t PF32_D32[16] = { 32, 32, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0 };
static const uint8_t PF32_MAX0[16] = { 32, 24, 1, 1, 0, 0, 0, 0, 0, 0, 0, 8, 16, 0, 0, 0 };
static const uint8_t PF32_10BIT[16] = { 32, 30, 0, 1, 3, 255, 3, 255, 3, 255, 20, 10, 0, 0, 0, 0 };
static const uint8_t PF32_NOTC_MAX[16] = { 32, 24, 0, 7, 0, 255, 0, 255, 0, 255, 0, 8, 16, 0, 0, 0 };
static const uint8_t PF16[16] = { 16, 16, 0, 1, 0, 31, 0, 63, 0, 31, 11, 5, 0, 0, 0, 0 };
static const uint8_t PF8[16] = { 8, 8, 0, 1, 0, 7, 0, 7, 0, 3, 0, 3, 6, 0, 0, 0 };
static const uint8_t PF_MAP[16] = { 32, 24, 0, 0, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0 };
static const uint8_t PF24[16] = { 24, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0 };
static const uint8_t PF0[16] = { 0, 0, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0 };

/* ------------------------------------------------------------ stream builder */

struct mark {
    uint8_t type;
    int32_t enc;
    size_t start, len;
};

struct sb {
    uint8_t *p;
    size_t n, cap;
    struct mark msgs[1024];
    size_t nmsgs;
    struct mark rects[4096];
    size_t nrects;
    size_t msg_start;
    uint8_t msg_type;
    bool rect_open;
};

static uint32_t rnd_state = 12345;
static uint8_t rnd8(void)
{
    rnd_state = rnd_state * 1103515245u + 12345u;
    return (uint8_t)(rnd_state >> 16);
}

static struct sb *sb_new(void)
{
    struct sb *b = calloc(1, sizeof *b);
    assert_non_null(b);
    return b;
}

static void sb_free(struct sb *b)
{
    if (b) {
        free(b->p);
        free(b);
    }
}

static void sb_reset(struct sb *b)
{
    b->n = 0;
    b->nmsgs = b->nrects = 0;
    b->rect_open = false;
}

static void put(struct sb *b, const void *v, size_t n)
{
    if (b->n + n > b->cap) {
        size_t c = b->cap ? b->cap : 4096;
        while (c < b->n + n)
            c *= 2;
        b->p = realloc(b->p, c);
        assert_non_null(b->p);
        b->cap = c;
    }
    memcpy(b->p + b->n, v, n);
    b->n += n;
}
static void put8(struct sb *b, unsigned v) { uint8_t x = (uint8_t)v; put(b, &x, 1); }
static void put16(struct sb *b, unsigned v) { put8(b, v >> 8); put8(b, v); }
static void put32(struct sb *b, uint32_t v) { put16(b, v >> 16); put16(b, v & 0xffff); }
static void puts32(struct sb *b, int32_t v) { put32(b, (uint32_t)v); }
static void putrnd(struct sb *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        put8(b, rnd8());
}
static void put_compact(struct sb *b, uint32_t v)
{
    if (v < 128) {
        put8(b, v);
    } else if (v < 16384) {
        put8(b, 0x80 | (v & 0x7f));
        put8(b, v >> 7);
    } else {
        put8(b, 0x80 | (v & 0x7f));
        put8(b, 0x80 | ((v >> 7) & 0x7f));
        put8(b, v >> 14);
    }
}

static void close_rect(struct sb *b)
{
    if (b->rect_open) {
        struct mark *r = &b->rects[b->nrects - 1];
        r->len = b->n - r->start;
        b->rect_open = false;
    }
}

static void msg_begin(struct sb *b, uint8_t type)
{
    b->msg_start = b->n;
    b->msg_type = type;
}

static void msg_end(struct sb *b)
{
    close_rect(b);
    assert_true(b->nmsgs < sizeof b->msgs / sizeof b->msgs[0]);
    b->msgs[b->nmsgs++] = (struct mark){ .type = b->msg_type, .start = b->msg_start,
                                         .len = b->n - b->msg_start };
}

static void fbu(struct sb *b, unsigned nrects)
{
    msg_begin(b, RFB_S2C_FB_UPDATE);
    put8(b, 0);
    put8(b, 0);
    put16(b, nrects);
}

static void rect(struct sb *b, unsigned x, unsigned y, unsigned w, unsigned h, int32_t enc)
{
    close_rect(b);
    assert_true(b->nrects < sizeof b->rects / sizeof b->rects[0]);
    b->rects[b->nrects++] = (struct mark){ .enc = enc, .start = b->n };
    b->rect_open = true;
    put16(b, x);
    put16(b, y);
    put16(b, w);
    put16(b, h);
    puts32(b, enc);
}

/* A fresh stream: an update of one w x h rect of encoding enc at 0,0. */
static void one_rect(struct sb *b, unsigned w, unsigned h, int32_t enc)
{
    sb_reset(b);
    fbu(b, 1);
    rect(b, 0, 0, w, h, enc);
}

struct ctx {
    unsigned bypp, tpixel;
};

/* ---- encodings, written from the spec ---- */

static void raw_rect(struct sb *b, const struct ctx *c, unsigned w, unsigned h)
{
    rect(b, 1, 2, w, h, RFB_ENC_RAW);
    putrnd(b, (size_t)w * h * c->bypp);
}

static void len_rect(struct sb *b, int32_t enc, unsigned w, unsigned h, uint32_t len)
{
    rect(b, 0, 0, w, h, enc);
    put32(b, len);
    putrnd(b, len);
}

static void put_subrect(struct sb *b, unsigned tw, unsigned th, unsigned i)
{
    unsigned x = i % tw, y = (i * 3) % th;
    unsigned sw = tw - x, sh = th - y;
    if (i & 1) {
        sw = 1;
        sh = 1;
    }
    put8(b, x << 4 | y);
    put8(b, (sw - 1) << 4 | (sh - 1));
}

static void hextile_rect(struct sb *b, const struct ctx *c, unsigned w, unsigned h, unsigned variant)
{
    rect(b, 3, 4, w, h, RFB_ENC_HEXTILE);
    for (unsigned ty = 0; ty < h; ty += 16) {
        for (unsigned tx = 0; tx < w; tx += 16) {
            unsigned tw = w - tx < 16 ? w - tx : 16, th = h - ty < 16 ? h - ty : 16;
            switch (variant++ % 9) {
            case 0:
                put8(b, 1);
                putrnd(b, (size_t)tw * th * c->bypp);
                break;
            case 1:
                put8(b, 0);
                break;
            case 2:
                put8(b, 2);
                putrnd(b, c->bypp);
                break;
            case 3:
                put8(b, 4);
                putrnd(b, c->bypp);
                break;
            case 4:
                put8(b, 2 | 4 | 8);
                putrnd(b, 2 * c->bypp);
                put8(b, 3);
                for (unsigned i = 0; i < 3; i++)
                    put_subrect(b, tw, th, i);
                break;
            case 5:
                put8(b, 2 | 8 | 16);
                putrnd(b, c->bypp);
                put8(b, 4);
                for (unsigned i = 0; i < 4; i++) {
                    putrnd(b, c->bypp);
                    put_subrect(b, tw, th, i);
                }
                break;
            case 6:
                put8(b, 8);
                put8(b, 0);
                break;
            case 7:               /* raw wins over every other bit */
                put8(b, 0x1f);
                putrnd(b, (size_t)tw * th * c->bypp);
                break;
            case 8:               /* many coloured subrects */
                put8(b, 8 | 16);
                put8(b, 40);
                for (unsigned i = 0; i < 40; i++) {
                    putrnd(b, c->bypp);
                    put_subrect(b, tw, th, i);
                }
                break;
            }
        }
    }
}

/* Tight basic compression. */
static void tight_basic(struct sb *b, const struct ctx *c, unsigned w, unsigned h,
                        unsigned stream, uint8_t resets, bool explicit_filter, unsigned filter,
                        unsigned ncol)
{
    uint8_t ctl = (uint8_t)((stream & 3) << 4 | (resets & 0xf));
    if (explicit_filter || filter != 0)
        ctl |= 0x40;
    put8(b, ctl);
    if (ctl & 0x40)
        put8(b, filter);
    uint64_t raw;
    if (filter == 1) {
        put8(b, ncol - 1);
        putrnd(b, (size_t)ncol * c->tpixel);
        raw = ncol == 2 ? (uint64_t)((w + 7) / 8) * h : (uint64_t)w * h;
    } else {
        raw = (uint64_t)w * h * c->tpixel;
    }
    if (raw < 12) {
        putrnd(b, raw);
    } else {
        uint32_t z = (uint32_t)(raw / 3 + 1);
        put_compact(b, z);
        putrnd(b, z);
    }
}

static void tight_fill(struct sb *b, const struct ctx *c)
{
    put8(b, 0x80);
    putrnd(b, c->tpixel);
}

static void tight_lenpayload(struct sb *b, uint8_t ctl, uint32_t len)
{
    put8(b, ctl);
    put_compact(b, len);
    putrnd(b, len);
}

static void cut_msg(struct sb *b, uint8_t type, int32_t len)
{
    msg_begin(b, type);
    put8(b, type);
    put8(b, 0);
    put16(b, 0);
    puts32(b, len);
    putrnd(b, len < 0 ? (size_t)-(int64_t)len : (size_t)len);
    msg_end(b);
}

/* Every data encoding and pseudo-encoding, plus every other server message. */
static void build_all_s2c(struct sb *b, const struct ctx *c)
{
    /* data encodings */
    fbu(b, 13);
    raw_rect(b, c, 4, 3);
    raw_rect(b, c, 0, 5);
    rect(b, 0, 0, 10, 10, RFB_ENC_COPYRECT);
    put16(b, 5);
    put16(b, 6);
    hextile_rect(b, c, 33, 18, 0);
    hextile_rect(b, c, 16, 16, 4);
    hextile_rect(b, c, 0, 7, 0);
    len_rect(b, RFB_ENC_ZLIB, 8, 8, 37);
    len_rect(b, RFB_ENC_ZLIB, 8, 8, 0);
    len_rect(b, RFB_ENC_ZRLE, 64, 64, 200);
    len_rect(b, RFB_ENC_ZYWRLE, 64, 64, 150);
    hextile_rect(b, c, 17, 1, 5);
    hextile_rect(b, c, 1, 17, 7);
    hextile_rect(b, c, 16, 16, 8);
    msg_end(b);

    /* Tight: fill, jpeg, every basic filter, stream resets */
    fbu(b, 14);
    rect(b, 0, 0, 100, 100, RFB_ENC_TIGHT);
    tight_fill(b, c);
    rect(b, 0, 0, 100, 100, RFB_ENC_TIGHT);
    put8(b, 0x8f);                      /* fill with every reset bit */
    putrnd(b, c->tpixel);
    rect(b, 0, 0, 64, 64, RFB_ENC_TIGHT);
    tight_lenpayload(b, 0x90, 100);     /* jpeg, 1-byte length */
    rect(b, 0, 0, 64, 64, RFB_ENC_TIGHT);
    tight_lenpayload(b, 0x93, 300);     /* jpeg, 2-byte length */
    rect(b, 0, 0, 1, 3, RFB_ENC_TIGHT);
    tight_basic(b, c, 1, 3, 0, 0, false, 0, 0);     /* copy, raw < 12 for tpixel <= 3 */
    rect(b, 0, 0, 2, 2, RFB_ENC_TIGHT);
    tight_basic(b, c, 2, 2, 1, 0x2, true, 0, 0);    /* explicit copy */
    rect(b, 0, 0, 20, 10, RFB_ENC_TIGHT);
    tight_basic(b, c, 20, 10, 2, 0xf, false, 0, 0); /* copy, compressed */
    rect(b, 0, 0, 8, 8, RFB_ENC_TIGHT);
    tight_basic(b, c, 8, 8, 3, 0, true, 1, 2);      /* mono, 8 bytes raw */
    rect(b, 0, 0, 32, 16, RFB_ENC_TIGHT);
    tight_basic(b, c, 32, 16, 1, 0, true, 1, 2);    /* mono, compressed */
    rect(b, 0, 0, 3, 3, RFB_ENC_TIGHT);
    tight_basic(b, c, 3, 3, 0, 0, true, 1, 5);      /* palette, 9 bytes raw */
    rect(b, 0, 0, 30, 20, RFB_ENC_TIGHT);
    tight_basic(b, c, 30, 20, 0, 0, true, 1, 17);
    rect(b, 0, 0, 16, 16, RFB_ENC_TIGHT);
    tight_basic(b, c, 16, 16, 2, 0, true, 1, 256);  /* full palette */
    rect(b, 0, 0, 10, 10, RFB_ENC_TIGHT);
    tight_basic(b, c, 10, 10, 1, 0, true, 2, 0);    /* gradient */
    rect(b, 0, 0, 1, 1, RFB_ENC_TIGHT);
    tight_basic(b, c, 1, 1, 1, 0, true, 2, 0);      /* gradient, tiny */
    msg_end(b);

    /* TightPNG: png, fill, jpeg, basic (QEMU's 1-Bpp fallback) */
    fbu(b, 5);
    rect(b, 0, 0, 50, 50, RFB_ENC_TIGHT_PNG);
    tight_lenpayload(b, 0xa0, 321);
    rect(b, 0, 0, 50, 50, RFB_ENC_TIGHT_PNG);
    tight_fill(b, c);
    rect(b, 0, 0, 50, 50, RFB_ENC_TIGHT_PNG);
    tight_lenpayload(b, 0x90, 5);
    rect(b, 0, 0, 20, 10, RFB_ENC_TIGHT_PNG);
    tight_basic(b, c, 20, 10, 0, 1, false, 0, 0);
    rect(b, 0, 0, 8, 8, RFB_ENC_TIGHT_PNG);
    tight_basic(b, c, 8, 8, 0, 0, true, 1, 2);
    msg_end(b);

    /* pseudo-encodings */
    fbu(b, 16);
    rect(b, 0, 0, 1024, 768, RFB_ENC_DESKTOP_SIZE);
    rect(b, 10, 20, 0, 0, RFB_ENC_POINTER_POS);
    rect(b, 2, 3, 9, 7, RFB_ENC_CURSOR);
    putrnd(b, 9 * 7 * c->bypp + 2 * 7);
    rect(b, 0, 0, 0, 0, RFB_ENC_CURSOR);
    rect(b, 1, 1, 17, 5, RFB_ENC_XCURSOR);
    putrnd(b, 6 + 2 * 3 * 5);
    rect(b, 0, 0, 0, 0, RFB_ENC_XCURSOR);
    rect(b, 1, 0, 0, 0, RFB_ENC_QEMU_POINTER);
    rect(b, 0, 0, 0, 0, RFB_ENC_QEMU_EXT_KEY);
    rect(b, 0, 0, 0, 0, RFB_ENC_QEMU_AUDIO);
    rect(b, 0, 0, 0, 0, RFB_ENC_LED_STATE);
    put8(b, 5);
    rect(b, 0, 0, 800, 600, RFB_ENC_EXT_DESKTOP_SIZE);
    put8(b, 2);
    put8(b, 0); put8(b, 0); put8(b, 0);
    putrnd(b, 32);
    rect(b, 1, 3, 640, 480, RFB_ENC_EXT_DESKTOP_SIZE);   /* refusal: size kept */
    put8(b, 1);
    put8(b, 0); put8(b, 0); put8(b, 0);
    putrnd(b, 16);
    rect(b, 0, 0, 0, 0, RFB_ENC_EXT_DESKTOP_SIZE);
    put8(b, 0);
    put8(b, 0); put8(b, 0); put8(b, 0);
    rect(b, 4, 4, 8, 6, RFB_ENC_ALPHA_CURSOR);
    puts32(b, RFB_ENC_RAW);
    putrnd(b, 8 * 6 * 4);
    rect(b, 0, 0, 0, 0, RFB_ENC_ALPHA_CURSOR);
    puts32(b, RFB_ENC_RAW);
    raw_rect(b, c, 2, 2);
    msg_end(b);

    /* LastRect ends an update announced with 0xFFFF rects */
    fbu(b, 0xffff);
    raw_rect(b, c, 1, 1);
    rect(b, 0, 0, 0, 0, RFB_ENC_LAST_RECT);
    msg_end(b);
    fbu(b, 0);
    msg_end(b);

    /* other messages */
    msg_begin(b, RFB_S2C_COLOUR_MAP);
    put8(b, 1); put8(b, 0); put16(b, 0); put16(b, 7);
    putrnd(b, 42);
    msg_end(b);
    msg_begin(b, RFB_S2C_COLOUR_MAP);
    put8(b, 1); put8(b, 0); put16(b, 3); put16(b, 0);
    msg_end(b);
    msg_begin(b, RFB_S2C_BELL);
    put8(b, 2);
    msg_end(b);
    cut_msg(b, RFB_S2C_CUT_TEXT, 11);
    cut_msg(b, RFB_S2C_CUT_TEXT, 0);
    cut_msg(b, RFB_S2C_CUT_TEXT, -8);
    cut_msg(b, RFB_S2C_CUT_TEXT, -30);
    msg_begin(b, RFB_S2C_QEMU);
    put8(b, 255); put8(b, 1); put16(b, 1);     /* audio begin */
    msg_end(b);
    msg_begin(b, RFB_S2C_QEMU);
    put8(b, 255); put8(b, 1); put16(b, 2); put32(b, 64);
    putrnd(b, 64);
    msg_end(b);
    msg_begin(b, RFB_S2C_QEMU);
    put8(b, 255); put8(b, 1); put16(b, 2); put32(b, 0);
    msg_end(b);
    msg_begin(b, RFB_S2C_QEMU);
    put8(b, 255); put8(b, 1); put16(b, 0);     /* audio end */
    msg_end(b);
}

/* --------------------------------------------------------------- the feeder */

struct rec {
    struct rfbmsg m;
    size_t span;
};

struct run {
    struct rec *ev;
    size_t n, cap;
    bool bad;
    size_t consumed;
    char why[160];
    uint8_t bypp, tpixel;
    uint16_t fb_w, fb_h;
    bool in_update;
};

static void run_free(struct run *R)
{
    free(R->ev);
    memset(R, 0, sizeof *R);
}

static void rec_add(struct run *R, const struct rfbmsg *m, size_t span)
{
    if (R->n) {
        struct rec *l = &R->ev[R->n - 1];
        if ((m->kind == RFBMSG_DATA || m->kind == RFBMSG_CUT) && l->m.kind == m->kind &&
            l->m.type == m->type && !l->m.end) {
            l->span += span;
            l->m.end = m->end;
            return;
        }
    }
    if (R->n == R->cap) {
        R->cap = R->cap ? R->cap * 2 : 256;
        R->ev = realloc(R->ev, R->cap * sizeof *R->ev);
        assert_non_null(R->ev);
    }
    R->ev[R->n].m = *m;
    R->ev[R->n].span = span;
    R->n++;
}

/* Deliver s in pieces ending at cuts[] (the last is its length); the
 * not-yet-consumed bytes stay in place, as in the relay's buffer. */
static void feed(struct rfbmsg_state *st, bool s2c, const uint8_t *s, const size_t *cuts,
                 size_t ncuts, struct run *R)
{
    size_t consumed = 0;
    memset(R, 0, sizeof *R);
    for (size_t c = 0; c < ncuts && !R->bad; c++) {
        size_t delivered = cuts[c];
        while (consumed < delivered) {
            struct rfbmsg m;
            size_t avail = delivered - consumed;
            int r = s2c ? rfbmsg_s2c(st, s + consumed, avail, &m)
                        : rfbmsg_c2s(st, s + consumed, avail, &m);
            if (r == RFB_NEED) {
                if (avail >= RFBMSG_HDR_MAX)
                    fail_msg("RFB_NEED with %zu bytes available", avail);
                break;
            }
            if (r == RFB_BAD) {
                R->bad = true;
                snprintf(R->why, sizeof R->why, "%s", st->why);
                break;
            }
            assert_true(r > 0);
            assert_true((size_t)r <= avail);
            rec_add(R, &m, (size_t)r);
            consumed += (size_t)r;
            /* between messages exactly when this span ended one */
            assert_int_equal(s2c ? rfbmsg_s2c_idle(st) : rfbmsg_c2s_idle(st), m.end);
        }
    }
    R->consumed = consumed;
    R->bypp = st->bypp;
    R->tpixel = st->tpixel;
    R->fb_w = st->fb_w;
    R->fb_h = st->fb_h;
    R->in_update = rfbmsg_in_update(st);
}

static void same_msg(const struct rfbmsg *a, const struct rfbmsg *b)
{
    assert_int_equal(a->type, b->type);
    assert_int_equal(a->kind, b->kind);
    assert_int_equal(a->end, b->end);
    assert_int_equal(a->sub, b->sub);
    assert_int_equal(a->len, b->len);
    assert_int_equal(a->x, b->x);
    assert_int_equal(a->y, b->y);
    assert_int_equal(a->w, b->w);
    assert_int_equal(a->h, b->h);
    assert_int_equal(a->enc, b->enc);
    assert_int_equal(a->nrects, b->nrects);
    assert_int_equal(a->cut_ext, b->cut_ext);
    assert_int_equal(a->cut_over, b->cut_over);
    assert_int_equal(a->cut_len, b->cut_len);
}

static void same_run(const struct run *a, const struct run *b)
{
    assert_int_equal(a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        same_msg(&a->ev[i].m, &b->ev[i].m);
        assert_int_equal(a->ev[i].span, b->ev[i].span);
    }
    assert_int_equal(a->bad, b->bad);
    assert_int_equal(a->consumed, b->consumed);
    assert_string_equal(a->why, b->why);
    assert_int_equal(a->bypp, b->bypp);
    assert_int_equal(a->tpixel, b->tpixel);
    assert_int_equal(a->fb_w, b->fb_w);
    assert_int_equal(a->fb_h, b->fb_h);
    assert_int_equal(a->in_update, b->in_update);
}

/* The message and rectangle boundaries the framer reported must be the
 * builder's. */
static void same_marks(const struct run *R, const struct sb *b)
{
    size_t pos = 0, msg_start = 0, nm = 0, nr = 0;
    bool in_msg = false, rect_open = false;
    uint8_t type = 0;
    for (size_t i = 0; i < R->n; i++) {
        const struct rec *e = &R->ev[i];
        if (!in_msg) {
            msg_start = pos;
            type = e->m.type;
            in_msg = true;
        }
        assert_int_equal(e->m.type, type);
        if (e->m.kind == RFBMSG_RECT) {
            if (rect_open)
                assert_int_equal(pos - b->rects[nr - 1].start, b->rects[nr - 1].len);
            assert_true(nr < b->nrects);
            assert_int_equal(b->rects[nr].start, pos);
            assert_int_equal(b->rects[nr].enc, e->m.enc);
            nr++;
            rect_open = true;
        }
        pos += e->span;
        if (e->m.end) {
            if (rect_open)
                assert_int_equal(pos - b->rects[nr - 1].start, b->rects[nr - 1].len);
            rect_open = false;
            assert_true(nm < b->nmsgs);
            assert_int_equal(b->msgs[nm].type, type);
            assert_int_equal(b->msgs[nm].start, msg_start);
            assert_int_equal(b->msgs[nm].len, pos - msg_start);
            if (e->m.kind == RFBMSG_MSG || (e->m.kind == RFBMSG_HEAD && e->m.len))
                assert_int_equal(e->m.len, pos - msg_start);
            nm++;
            in_msg = false;
        }
    }
    assert_int_equal(nm, b->nmsgs);
    assert_int_equal(nr, b->nrects);
}

typedef void (*setup_fn)(struct rfbmsg_state *st, const void *arg);

/* Feed the stream whole, byte by byte and split at every boundary (or a
 * sample of them for long streams); all runs must agree.  Returns the whole
 * run in *out (caller frees) if out is not NULL. */
static void check_stream(setup_fn setup, const void *arg, bool s2c, const uint8_t *s, size_t len,
                         struct run *out)
{
    struct rfbmsg_state st;
    struct run whole, other;
    size_t *cuts = malloc((len + 1) * sizeof *cuts);
    assert_non_null(cuts);

    setup(&st, arg);
    cuts[0] = len;
    feed(&st, s2c, s, cuts, 1, &whole);

    setup(&st, arg);
    for (size_t i = 0; i < len; i++)
        cuts[i] = i + 1;
    feed(&st, s2c, s, cuts, len, &other);
    same_run(&whole, &other);
    run_free(&other);

    size_t step = len <= 6000 ? 1 : len / 3000;
    for (size_t k = 1; k < len; k += step) {
        setup(&st, arg);
        cuts[0] = k;
        cuts[1] = len;
        feed(&st, s2c, s, cuts, 2, &other);
        same_run(&whole, &other);
        run_free(&other);
    }
    /* Irregular chunks. */
    size_t nc = 0, at = 0;
    while (at < len) {
        at += 1 + rnd8() % 97;
        if (at > len)
            at = len;
        cuts[nc++] = at;
    }
    setup(&st, arg);
    feed(&st, s2c, s, cuts, nc, &other);
    same_run(&whole, &other);
    run_free(&other);
    free(cuts);
    if (out)
        *out = whole;
    else
        run_free(&whole);
}

/* A valid stream: consumed entirely, boundaries as built, no update open. */
static void check_valid(setup_fn setup, const void *arg, bool s2c, const struct sb *b)
{
    struct run R;
    check_stream(setup, arg, s2c, b->p, b->n, &R);
    if (R.bad)
        fail_msg("unexpected RFB_BAD at %zu: %s", R.consumed, R.why);
    assert_int_equal(R.consumed, b->n);
    same_marks(&R, b);
    assert_false(R.in_update);
    run_free(&R);
}

/* A malformed stream: RFB_BAD at offset bad_at (the start of the bad unit)
 * with a reason containing why, however it is fed. */
static void check_bad(setup_fn setup, const void *arg, bool s2c, const struct sb *b,
                      size_t bad_at, const char *why)
{
    struct run R;
    check_stream(setup, arg, s2c, b->p, b->n, &R);
    assert_true(R.bad);
    assert_int_equal(R.consumed, bad_at);
    if (why && !strstr(R.why, why))
        fail_msg("reason \"%s\" lacks \"%s\"", R.why, why);
    run_free(&R);
}

/* ------------------------------------------------------------------ setups */

struct setup {
    const uint8_t *server_pf;        /* default PF32 */
    const uint8_t *client_pf;        /* SetPixelFormat sent first, if any */
    const int32_t *encs;
    size_t nenc;
    bool filter;
    unsigned flags;
    uint32_t cut_max;
    bool confirm_cu_fence;           /* run EndOfContinuousUpdates + ServerFence first */
};

static size_t set_encodings_msg(uint8_t *out, const int32_t *encs, size_t n)
{
    out[0] = RFB_C2S_SET_ENCODINGS;
    out[1] = 0;
    out[2] = (uint8_t)(n >> 8);
    out[3] = (uint8_t)n;
    for (size_t i = 0; i < n; i++)
        rfb_put_u32(out + 4 + 4 * i, (uint32_t)encs[i]);
    return 4 + 4 * n;
}

static void spf_msg(uint8_t out[20], const uint8_t pf[16])
{
    memset(out, 0, 4);
    memcpy(out + 4, pf, 16);
}

static void do_setup(struct rfbmsg_state *st, const void *arg)
{
    const struct setup *s = arg;
    struct rfbmsg m;
    assert_int_equal(rfbmsg_init(st, 800, 600, s->server_pf ? s->server_pf : PF32), 0);
    if (s->cut_max)
        st->cut_max = s->cut_max;
    if (s->client_pf) {
        uint8_t msg[20];
        spf_msg(msg, s->client_pf);
        assert_int_equal(rfbmsg_c2s(st, msg, 20, &m), 20);
    }
    if (s->nenc) {
        static uint8_t msg[RFBMSG_HDR_MAX], out[RFBMSG_HDR_MAX + 4];
        size_t len = set_encodings_msg(msg, s->encs, s->nenc);
        assert_int_equal(rfbmsg_c2s(st, msg, len, &m), (int)len);
        assert_int_equal(m.kind, RFBMSG_MSG);
        if (s->filter)
            assert_true(rfbmsg_filter_encodings(st, msg, len, s->flags, out, sizeof out) >= 4);
    }
    if (s->confirm_cu_fence) {
        static const uint8_t endcu[1] = { 150 };
        static const uint8_t fence[9] = { 248, 0, 0, 0, 0, 0, 0, 0, 0 };
        assert_int_equal(rfbmsg_s2c(st, endcu, 1, &m), 1);
        assert_int_equal(rfbmsg_s2c(st, fence, 9, &m), 9);
    }
}

static const int32_t ALL_ENCS[] = {
    RFB_ENC_TIGHT, RFB_ENC_TIGHT_PNG, RFB_ENC_ZRLE, RFB_ENC_ZYWRLE, RFB_ENC_ZLIB,
    RFB_ENC_HEXTILE, RFB_ENC_COPYRECT, RFB_ENC_RAW,
    RFB_ENC_DESKTOP_SIZE, RFB_ENC_LAST_RECT, RFB_ENC_POINTER_POS, RFB_ENC_CURSOR,
    RFB_ENC_XCURSOR, RFB_ENC_QEMU_POINTER, RFB_ENC_QEMU_EXT_KEY, RFB_ENC_QEMU_AUDIO,
    RFB_ENC_LED_STATE, RFB_ENC_EXT_DESKTOP_SIZE, RFB_ENC_ALPHA_CURSOR, RFB_ENC_EXT_CLIPBOARD,
    RFB_ENC_XVP, RFB_ENC_FENCE, RFB_ENC_CONT_UPDATES,
    RFB_ENC_JPEG_QUALITY_0 + 6, RFB_ENC_COMPRESS_0 + 2,
};
#define NALL (sizeof ALL_ENCS / sizeof ALL_ENCS[0])

/* ------------------------------------------------------------------- tests */

static void test_pf_rules(void **state)
{
    (void)state;
    static const struct {
        const uint8_t *pf;
        int ok;
        unsigned bypp, tpixel;
    } cases[] = {
        { PF32, 0, 4, 3 },          /* the spec's and QEMU's 3-byte case */
        { PF32_D32, 0, 4, 3 },      /* depth 32: spec says 4, QEMU sends 3 */
        { PF32_MAX0, 0, 4, 3 },     /* max 0 counts as 255 */
        { PF32_10BIT, 0, 4, 4 },    /* maxes 1023: 4 bytes */
        { PF32_NOTC_MAX, 0, 4, 3 }, /* true-colour flag 7 = set */
        { PF16, 0, 2, 2 },
        { PF8, 0, 1, 1 },
        { PF_MAP, 0, 1, 1 },        /* colour map: QEMU forces 8 bpp */
        { PF24, -1, 0, 0 },
        { PF0, -1, 0, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct rfbmsg_state st;
        int r = rfbmsg_init(&st, 640, 480, cases[i].pf);
        assert_int_equal(r, cases[i].ok);
        if (r == 0) {
            assert_int_equal(st.bypp, cases[i].bypp);
            assert_int_equal(st.tpixel, cases[i].tpixel);
        } else {
            struct rfbmsg m;
            assert_non_null(strstr(st.why, "bits per pixel"));
            assert_int_equal(rfbmsg_s2c(&st, (const uint8_t *)"\x02", 1, &m), RFB_BAD);
        }
    }
    struct rfbmsg_pf pf;
    assert_int_equal(rfbmsg_pf_parse(PF_MAP, &pf), 0);
    assert_int_equal(pf.bpp, 8);
    assert_int_equal(pf.rmax, 7);
    assert_int_equal(pf.bmax, 3);
    assert_int_equal(pf.bshift, 6);
    assert_int_equal(rfbmsg_pf_parse(PF32_D32, &pf), 0);
    assert_int_equal(pf.depth, 24);
    assert_int_equal(rfbmsg_pf_parse(PF32_MAX0, &pf), 0);
    assert_int_equal(pf.rmax, 255);
    assert_int_equal(pf.big_endian, 1);

    /* SetPixelFormat from the viewer is tracked the same way */
    struct rfbmsg_state st;
    struct rfbmsg m;
    uint8_t msg[20];
    assert_int_equal(rfbmsg_init(&st, 640, 480, PF32), 0);
    spf_msg(msg, PF16);
    assert_int_equal(rfbmsg_c2s(&st, msg, 20, &m), 20);
    assert_int_equal(m.kind, RFBMSG_MSG);
    assert_int_equal(m.type, RFB_C2S_SET_PIXEL_FORMAT);
    assert_true(m.end);
    assert_int_equal(st.bypp, 2);
    assert_int_equal(st.tpixel, 2);
    spf_msg(msg, PF32_D32);
    assert_int_equal(rfbmsg_c2s(&st, msg, 20, &m), 20);
    assert_int_equal(st.tpixel, 3);
    /* nothing available: NEED in both directions, nothing changes */
    assert_int_equal(rfbmsg_c2s(&st, msg, 0, &m), RFB_NEED);
    assert_int_equal(rfbmsg_s2c(&st, msg, 0, &m), RFB_NEED);
    spf_msg(msg, PF24);
    assert_int_equal(rfbmsg_c2s(&st, msg, 19, &m), RFB_NEED);
    assert_int_equal(rfbmsg_c2s(&st, msg, 20, &m), RFB_BAD);
    assert_non_null(strstr(st.why, "24 bits per pixel"));
}

static void test_server_init(void **state)
{
    (void)state;
    struct rfbmsg_state st;
    uint8_t si[24 + 12];
    si[0] = 0x02; si[1] = 0xd0; si[2] = 0x01; si[3] = 0x90;      /* 720x400 */
    memcpy(si + 4, PF32, 16);
    rfb_put_u32(si + 20, 12);
    memcpy(si + 24, "QEMU (vm-01)", 12);
    for (size_t n = 0; n < sizeof si; n++)
        assert_int_equal(rfbmsg_server_init(&st, si, n), RFB_NEED);
    assert_int_equal(rfbmsg_server_init(&st, si, sizeof si), (int)sizeof si);
    assert_int_equal(st.fb_w, 720);
    assert_int_equal(st.fb_h, 400);
    assert_int_equal(st.tpixel, 3);
    assert_int_equal(st.cut_max, RFBMSG_CUT_MAX_QEMU);

    rfb_put_u32(si + 20, RFBMSG_NAME_MAX + 1);
    assert_int_equal(rfbmsg_server_init(&st, si, 24), RFB_BAD);
    assert_non_null(strstr(st.why, "desktop name"));
    rfb_put_u32(si + 20, 0xffffffffu);
    assert_int_equal(rfbmsg_server_init(&st, si, 24), RFB_BAD);
    rfb_put_u32(si + 20, 0);
    memcpy(si + 4, PF24, 16);
    assert_int_equal(rfbmsg_server_init(&st, si, 24), RFB_BAD);
}

static void all_encodings(const uint8_t *pf, unsigned bypp, unsigned tpixel)
{
    struct setup su = { .client_pf = pf, .encs = ALL_ENCS, .nenc = NALL };
    struct ctx c = { bypp, tpixel };
    struct rfbmsg_state st;
    do_setup(&st, &su);
    assert_int_equal(st.bypp, bypp);
    assert_int_equal(st.tpixel, tpixel);
    struct sb *b = sb_new();
    build_all_s2c(b, &c);
    check_valid(do_setup, &su, true, b);
    sb_free(b);
}

static void test_all_encodings_32(void **state) { (void)state; all_encodings(PF32, 4, 3); }
static void test_all_encodings_32_depth32(void **state) { (void)state; all_encodings(PF32_D32, 4, 3); }
static void test_all_encodings_32_max0(void **state) { (void)state; all_encodings(PF32_MAX0, 4, 3); }
static void test_all_encodings_32_10bit(void **state) { (void)state; all_encodings(PF32_10BIT, 4, 4); }
static void test_all_encodings_16(void **state) { (void)state; all_encodings(PF16, 2, 2); }
static void test_all_encodings_8(void **state) { (void)state; all_encodings(PF8, 1, 1); }
static void test_all_encodings_colourmap(void **state) { (void)state; all_encodings(PF_MAP, 1, 1); }

/* Feed one whole stream in one direction and return its spans (merged). */
static void spans_dir(const struct setup *su, bool s2c, const struct sb *b, struct run *R)
{
    struct rfbmsg_state st;
    size_t cut = b->n;
    do_setup(&st, su);
    feed(&st, s2c, b->p, &cut, 1, R);
}

/* ... server -> client. */
static void spans(const struct setup *su, const struct sb *b, struct run *R)
{
    spans_dir(su, true, b, R);
}

static void test_tight_3byte_rule(void **state)
{
    (void)state;
    static const int32_t encs[] = { RFB_ENC_TIGHT };
    struct sb *b = sb_new();
    struct run R;
    /* fill: ctl + TPIXEL */
    static const struct { const uint8_t *pf; size_t fill, copy13; } cases[] = {
        { PF32, 1 + 3, 1 + 9 },            /* 1x3 copy: 9 raw bytes, uncompressed */
        { PF32_D32, 1 + 3, 1 + 9 },
        { PF32_10BIT, 1 + 4, 1 + 1 + 5 },  /* 12 raw bytes: compact length 5 + 5 */
        { PF16, 1 + 2, 1 + 6 },
        { PF8, 1 + 1, 1 + 3 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct setup su = { .client_pf = cases[i].pf, .encs = encs, .nenc = 1 };
        struct rfbmsg_state st;
        do_setup(&st, &su);
        struct ctx c = { st.bypp, st.tpixel };
        sb_reset(b);
        fbu(b, 2);
        rect(b, 0, 0, 5, 5, RFB_ENC_TIGHT);
        tight_fill(b, &c);
        rect(b, 0, 0, 1, 3, RFB_ENC_TIGHT);
        tight_basic(b, &c, 1, 3, 0, 0, false, 0, 0);
        msg_end(b);
        check_valid(do_setup, &su, true, b);
        spans(&su, b, &R);
        /* HEAD, RECT, DATA(fill), RECT, DATA(copy) */
        assert_int_equal(R.n, 5);
        assert_int_equal(R.ev[2].span, cases[i].fill);
        assert_int_equal(R.ev[4].span, cases[i].copy13);
        assert_true(R.ev[4].m.end);
        run_free(&R);
    }
    sb_free(b);
}

static void test_tight_lengths(void **state)
{
    (void)state;
    static const int32_t encs[] = { RFB_ENC_TIGHT, RFB_ENC_TIGHT_PNG };
    struct setup su = { .encs = encs, .nenc = 2 };
    struct sb *b = sb_new();
    struct run R;
    /* compact lengths of 1, 2 and 3 bytes, at their edges */
    static const uint32_t lens[] = { 0, 1, 127, 128, 16383, 16384, 70000 };
    fbu(b, 7);
    for (size_t i = 0; i < 7; i++) {
        rect(b, 0, 0, 300, 300, RFB_ENC_TIGHT);
        tight_lenpayload(b, 0x90, lens[i]);
    }
    msg_end(b);
    fbu(b, 2);
    rect(b, 0, 0, 300, 300, RFB_ENC_TIGHT_PNG);
    tight_lenpayload(b, 0xa0, 20000);
    rect(b, 0, 0, 300, 300, RFB_ENC_TIGHT_PNG);
    tight_lenpayload(b, 0xa0, 4000);
    msg_end(b);
    check_valid(do_setup, &su, true, b);
    spans(&su, b, &R);
    /* each JPEG rect: RECT + one merged DATA of ctl + length + payload */
    for (size_t i = 0; i < 7; i++) {
        size_t cl = lens[i] < 128 ? 1 : lens[i] < 16384 ? 2 : 3;
        assert_int_equal(R.ev[2 + 2 * i].span, 1 + cl + lens[i]);
    }
    run_free(&R);

    /* the largest compact length: 3 bytes ff ff ff = 4194303 */
    one_rect(b, 2048, 2048, RFB_ENC_TIGHT);
    put8(b, 0x90);
    put8(b, 0xff); put8(b, 0xff); put8(b, 0xff);
    putrnd(b, 4194303);
    msg_end(b);
    spans(&su, b, &R);
    assert_false(R.bad);
    assert_int_equal(R.consumed, b->n);
    same_marks(&R, b);
    run_free(&R);
    sb_free(b);
}

static void test_tight_bad_control(void **state)
{
    (void)state;
    static const int32_t encs[] = { RFB_ENC_TIGHT, RFB_ENC_TIGHT_PNG };
    struct setup su = { .encs = encs, .nenc = 2 };
    struct sb *b = sb_new();
    /* one 4x4 rect: these sub-header bytes, then random ones */
    static const struct {
        int32_t enc;
        uint8_t sub[3];
        size_t nsub, nrnd;
        const char *why;
    } cases[] = {
        { RFB_ENC_TIGHT, { 0xb0 }, 1, 40, "compression control" },
        { RFB_ENC_TIGHT, { 0xc0 }, 1, 40, "compression control" },
        { RFB_ENC_TIGHT, { 0xd3 }, 1, 40, "compression control" },
        { RFB_ENC_TIGHT, { 0xe0 }, 1, 40, "compression control" },
        { RFB_ENC_TIGHT, { 0xf0 }, 1, 40, "compression control" },
        { RFB_ENC_TIGHT, { 0xff }, 1, 40, "compression control" },
        { RFB_ENC_TIGHT, { 0xa0 }, 1, 40, "compression control" },
        /* TightPNG knows 0xA (PNG), but not 0xB.. */
        { RFB_ENC_TIGHT_PNG, { 0xb0 }, 1, 0, "TightPNG rect with bad compression control 0xb0" },
        /* unknown filter */
        { RFB_ENC_TIGHT, { 0x40, 3 }, 2, 40, "unknown filter 3" },
        /* palette with one colour (ambiguous between decoders, never sent) */
        { RFB_ENC_TIGHT, { 0x40, 1, 0 }, 3, 40, "one colour" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        one_rect(b, 4, 4, cases[i].enc);
        put(b, cases[i].sub, cases[i].nsub);
        putrnd(b, cases[i].nrnd);
        check_bad(do_setup, &su, true, b, 16, cases[i].why);
    }
    /* a good rect first, then the bad one: BAD at the second sub-header */
    sb_reset(b);
    fbu(b, 2);
    rect(b, 0, 0, 4, 4, RFB_ENC_TIGHT);
    put8(b, 0x80);
    putrnd(b, 3);
    rect(b, 0, 0, 4, 4, RFB_ENC_TIGHT);
    put8(b, 0xe0);
    check_bad(do_setup, &su, true, b, 4 + 12 + 4 + 12, "compression control 0xe0");
    sb_free(b);
}

static void test_hextile(void **state)
{
    (void)state;
    static const int32_t encs[] = { RFB_ENC_HEXTILE };
    static const uint8_t *pfs[] = { PF32, PF16, PF8 };
    struct sb *b = sb_new();
    for (size_t i = 0; i < 3; i++) {
        struct setup su = { .client_pf = pfs[i], .encs = encs, .nenc = 1 };
        struct rfbmsg_state st;
        do_setup(&st, &su);
        struct ctx c = { st.bypp, st.tpixel };
        sb_reset(b);
        fbu(b, 6);
        hextile_rect(b, &c, 47, 35, 0);    /* partial edge tiles both ways */
        hextile_rect(b, &c, 1, 1, 4);
        hextile_rect(b, &c, 16, 0, 0);
        hextile_rect(b, &c, 15, 15, 5);
        hextile_rect(b, &c, 16, 17, 8);
        raw_rect(b, &c, 2, 2);
        msg_end(b);
        check_valid(do_setup, &su, true, b);
    }
    /* Reserved mask bits are refused. */
    struct setup su = { .encs = encs, .nenc = 1 };
    for (unsigned bit = 5; bit < 8; bit++) {
        one_rect(b, 16, 16, RFB_ENC_HEXTILE);
        put8(b, 1u << bit);
        putrnd(b, 20);
        check_bad(do_setup, &su, true, b, 16, "subencoding mask");
    }
    /* A subrect leaving its (edge) tile is refused. */
    one_rect(b, 20, 4, RFB_ENC_HEXTILE);
    put8(b, 8);
    put8(b, 1);
    put8(b, 0x00);
    put8(b, 0x03);             /* 1x4 at 0,0: fits the 16x4 tile */
    put8(b, 8);
    put8(b, 1);
    put8(b, 0x20);
    put8(b, 0x10);             /* x 2, w 2 in a 4-wide tile: fits */
    msg_end(b);
    check_valid(do_setup, &su, true, b);
    one_rect(b, 20, 4, RFB_ENC_HEXTILE);
    put8(b, 8);
    put8(b, 1);
    put8(b, 0x00);
    put8(b, 0x04);             /* 1x5 in a 4-high tile */
    check_bad(do_setup, &su, true, b, 16, "outside");
    one_rect(b, 20, 4, RFB_ENC_HEXTILE);
    put8(b, 1);
    putrnd(b, 16 * 4 * 4);
    put8(b, 8);
    put8(b, 1);
    put8(b, 0x30);
    put8(b, 0x10);             /* x 3, w 2 in the 4-wide edge tile */
    check_bad(do_setup, &su, true, b, 16 + 1 + 256, "outside its 4x4 tile");
    sb_free(b);
}

static void test_pseudo_encodings(void **state)
{
    (void)state;
    struct setup su = { .encs = ALL_ENCS, .nenc = NALL };
    struct ctx c = { 4, 3 };
    struct sb *b = sb_new();
    struct run R;
    /* each pseudo-encoding alone in its own update, as QEMU sends them */
    fbu(b, 1); rect(b, 0, 0, 1280, 1024, RFB_ENC_DESKTOP_SIZE); msg_end(b);
    fbu(b, 1); rect(b, 0, 0, 0, 0, RFB_ENC_QEMU_POINTER); msg_end(b);
    fbu(b, 1); rect(b, 0, 0, 0, 0, RFB_ENC_QEMU_EXT_KEY); msg_end(b);
    fbu(b, 1); rect(b, 0, 0, 0, 0, RFB_ENC_QEMU_AUDIO); msg_end(b);
    fbu(b, 1); rect(b, 0, 0, 0, 0, RFB_ENC_LED_STATE); put8(b, 7); msg_end(b);
    fbu(b, 1); rect(b, 5, 5, 0, 0, RFB_ENC_POINTER_POS); msg_end(b);
    fbu(b, 1); rect(b, 3, 3, 32, 32, RFB_ENC_CURSOR); putrnd(b, 32 * 32 * 4 + 4 * 32); msg_end(b);
    fbu(b, 1); rect(b, 3, 3, 7, 2, RFB_ENC_XCURSOR); putrnd(b, 6 + 2 * 1 * 2); msg_end(b);
    fbu(b, 1); rect(b, 3, 3, 16, 16, RFB_ENC_ALPHA_CURSOR); puts32(b, 0); putrnd(b, 1024);
    msg_end(b);
    fbu(b, 1); rect(b, 0, 1, 1920, 1080, RFB_ENC_EXT_DESKTOP_SIZE);
    put8(b, 1); put8(b, 0); put8(b, 0); put8(b, 0); putrnd(b, 16); msg_end(b);
    fbu(b, 3); raw_rect(b, &c, 1, 1); rect(b, 0, 0, 0, 0, RFB_ENC_LAST_RECT); msg_end(b);
    check_valid(do_setup, &su, true, b);
    spans(&su, b, &R);
    assert_int_equal(R.fb_w, 1920);
    assert_int_equal(R.fb_h, 1080);
    run_free(&R);

    /* the pseudo-rects carry their fields in the rect header */
    one_rect(b, 1280, 1024, RFB_ENC_DESKTOP_SIZE);
    msg_end(b);
    spans(&su, b, &R);
    assert_int_equal(R.n, 2);
    assert_int_equal(R.ev[0].m.kind, RFBMSG_HEAD);
    assert_int_equal(R.ev[0].m.nrects, 1);
    assert_int_equal(R.ev[1].m.kind, RFBMSG_RECT);
    assert_int_equal(R.ev[1].m.enc, RFB_ENC_DESKTOP_SIZE);
    assert_int_equal(R.ev[1].m.w, 1280);
    assert_int_equal(R.ev[1].m.h, 1024);
    assert_true(R.ev[1].m.end);
    assert_int_equal(R.fb_w, 1280);
    run_free(&R);

    /* the alpha cursor must carry Raw inside */
    sb_reset(b);
    fbu(b, 1); rect(b, 3, 3, 16, 16, RFB_ENC_ALPHA_CURSOR); puts32(b, RFB_ENC_TIGHT);
    check_bad(do_setup, &su, true, b, 16, "inner encoding 7");
    sb_free(b);
}

static void test_encoding_not_allowed(void **state)
{
    (void)state;
    struct sb *b = sb_new();
    /* unknown numbers, encodings QEMU never sends, and ones that are no rects */
    static const int32_t bad_enc[] = { 3, 9, 12345, -1, -100, RFB_ENC_RRE, RFB_ENC_CORRE,
                                       RFB_ENC_ZLIBHEX, RFB_ENC_TRLE, RFB_ENC_JPEG, RFB_ENC_H264,
                                       RFB_ENC_WMVI, RFB_ENC_VMWARE_CURSOR, RFB_ENC_VMWARE_LED,
                                       RFB_ENC_DESKTOP_NAME, RFB_ENC_EXT_MOUSE_BUTTONS,
                                       RFB_ENC_GII, RFB_ENC_TIGHT_NO_ZLIB,
                                       RFB_ENC_EXT_CLIPBOARD, RFB_ENC_XVP, RFB_ENC_FENCE,
                                       RFB_ENC_CONT_UPDATES, RFB_ENC_JPEG_QUALITY_0,
                                       RFB_ENC_COMPRESS_9 };
    struct setup all = { .encs = ALL_ENCS, .nenc = NALL };
    for (size_t i = 0; i < sizeof bad_enc / sizeof bad_enc[0]; i++) {
        one_rect(b, 1, 1, bad_enc[i]);
        putrnd(b, 16);
        check_bad(do_setup, &all, true, b, 4, "cannot be delimited");
    }
    /* known, but the viewer never asked for it (Raw needs no asking) */
    static const int32_t only_raw[] = { RFB_ENC_RAW };
    struct setup raw = { .encs = only_raw, .nenc = 1 };
    static const int32_t known[] = { RFB_ENC_TIGHT, RFB_ENC_ZRLE, RFB_ENC_HEXTILE,
                                     RFB_ENC_CURSOR, RFB_ENC_DESKTOP_SIZE, RFB_ENC_LED_STATE };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        one_rect(b, 1, 1, known[i]);
        putrnd(b, 16);
        check_bad(do_setup, &raw, true, b, 4, "did not ask for");
    }
    struct setup none = { 0 };
    struct ctx c = { 4, 3 };
    sb_reset(b);
    fbu(b, 1);
    raw_rect(b, &c, 3, 3);
    msg_end(b);
    check_valid(do_setup, &none, true, b);
    /* the filter strips WMVi: a WMVi rect is then refused */
    static const int32_t gtk[] = { RFB_ENC_ZRLE, RFB_ENC_WMVI, RFB_ENC_RAW };
    struct setup g = { .encs = gtk, .nenc = 3, .filter = true };
    one_rect(b, 1, 1, RFB_ENC_WMVI);
    putrnd(b, 16);
    check_bad(do_setup, &g, true, b, 4, "encoding 1464686185");
    sb_free(b);
}

static void test_s2c_messages(void **state)
{
    (void)state;
    struct sb *b = sb_new();
    struct setup su = { .encs = ALL_ENCS, .nenc = NALL };
    msg_begin(b, RFB_S2C_XVP);
    put8(b, 250); put8(b, 0); put8(b, 1); put8(b, 1);
    msg_end(b);
    msg_begin(b, RFB_S2C_END_CU);
    put8(b, 150);
    msg_end(b);
    msg_begin(b, RFB_S2C_FENCE);
    put8(b, 248); put8(b, 0); put16(b, 0); put32(b, 0x80000001u); put8(b, 64); putrnd(b, 64);
    msg_end(b);
    msg_begin(b, RFB_S2C_FENCE);
    put8(b, 248); put8(b, 0); put16(b, 0); put32(b, 0); put8(b, 0);
    msg_end(b);
    msg_begin(b, RFB_S2C_BELL);
    put8(b, 2);
    msg_end(b);
    check_valid(do_setup, &su, true, b);

    /* the same messages without their pseudo-encoding */
    static const int32_t plain[] = { RFB_ENC_TIGHT, RFB_ENC_RAW };
    struct setup p = { .encs = plain, .nenc = 2 };
    static const struct { uint8_t msg[12]; size_t len; const char *why; } cases[] = {
        { { 250, 0, 1, 1 }, 4, "xvp" },
        { { 150 }, 1, "ContinuousUpdates" },
        { { 248, 0, 0, 0, 0, 0, 0, 0, 0 }, 9, "Fence" },
        { { 255, 1, 0, 1 }, 4, "audio" },
        { { 3, 0, 0, 0, 0xff, 0xff, 0xff, 0xf8, 1, 0, 0, 0 }, 12, "extended ServerCutText" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sb_reset(b);
        put(b, cases[i].msg, cases[i].len);
        check_bad(do_setup, &p, true, b, 0, cases[i].why);
    }
    /* xvp is stripped by the filter unless kept */
    static const int32_t novnc_xvp[] = { RFB_ENC_TIGHT, RFB_ENC_XVP };
    struct setup fx = { .encs = novnc_xvp, .nenc = 2, .filter = true };
    sb_reset(b);
    put(b, "\xfa\x00\x01\x01", 4);
    check_bad(do_setup, &fx, true, b, 0, "xvp");
    fx.flags = RFBMSG_F_KEEP_XVP;
    sb_reset(b);
    msg_begin(b, RFB_S2C_XVP);
    put(b, "\xfa\x00\x01\x01", 4);
    msg_end(b);
    check_valid(do_setup, &fx, true, b);

    /* fence payload over 64 */
    sb_reset(b);
    put8(b, 248); put8(b, 0); put16(b, 0); put32(b, 0); put8(b, 65); putrnd(b, 65);
    check_bad(do_setup, &su, true, b, 0, "65 bytes");

    /* QEMU: only the audio submessage, only operations 0-2, bounded data */
    sb_reset(b);
    put(b, "\xff\x00\x00\x00", 4);
    check_bad(do_setup, &su, true, b, 0, "subtype 0");
    sb_reset(b);
    put(b, "\xff\x01\x00\x03", 4);
    check_bad(do_setup, &su, true, b, 0, "operation 3");
    sb_reset(b);
    put8(b, 255); put8(b, 1); put16(b, 2); put32(b, RFBMSG_AUDIO_MAX + 1);
    check_bad(do_setup, &su, true, b, 0, "audio data");
    sb_reset(b);
    msg_begin(b, RFB_S2C_QEMU);
    put8(b, 255); put8(b, 1); put16(b, 2); put32(b, RFBMSG_AUDIO_MAX);
    putrnd(b, RFBMSG_AUDIO_MAX);
    msg_end(b);
    struct run R;
    spans(&su, b, &R);
    assert_false(R.bad);
    same_marks(&R, b);
    assert_int_equal(R.ev[0].m.kind, RFBMSG_HEAD);
    assert_int_equal(R.ev[0].m.sub, RFB_QEMU_AUDIO);
    assert_int_equal(R.ev[0].m.len, 8 + RFBMSG_AUDIO_MAX);
    run_free(&R);
    sb_free(b);
}

static void test_s2c_unknown_types(void **state)
{
    (void)state;
    struct setup su = { .encs = ALL_ENCS, .nenc = NALL };
    for (unsigned t = 0; t < 256; t++) {
        if (t <= 3 || t == 150 || t == 248 || t == 250 || t == 255)
            continue;
        struct rfbmsg_state st;
        struct rfbmsg m;
        uint8_t msg[16] = { (uint8_t)t };
        do_setup(&st, &su);
        /* refused on its first byte */
        assert_int_equal(rfbmsg_s2c(&st, msg, 1, &m), RFB_BAD);
        assert_non_null(strstr(st.why, "unknown server message type"));
        /* and the direction stays failed */
        assert_int_equal(rfbmsg_s2c(&st, (const uint8_t *)"\x02", 1, &m), RFB_BAD);
    }
}

static void test_cut_text(void **state)
{
    (void)state;
    struct sb *b = sb_new();
    struct run R;
    struct setup su = { .encs = ALL_ENCS, .nenc = NALL, .cut_max = 100 };
    cut_msg(b, RFB_S2C_CUT_TEXT, 100);
    cut_msg(b, RFB_S2C_CUT_TEXT, 101);
    cut_msg(b, RFB_S2C_CUT_TEXT, -100);
    cut_msg(b, RFB_S2C_CUT_TEXT, -101);
    cut_msg(b, RFB_S2C_CUT_TEXT, -4);
    check_valid(do_setup, &su, true, b);
    spans(&su, b, &R);
    static const struct { bool ext, over; uint32_t len; } want[] = {
        { false, false, 100 }, { false, true, 101 }, { true, false, 100 }, { true, true, 101 },
        { true, false, 4 },
    };
    for (size_t i = 0; i < 5; i++) {
        const struct rec *h = &R.ev[2 * i], *d = &R.ev[2 * i + 1];
        assert_int_equal(h->m.kind, RFBMSG_HEAD);
        assert_int_equal(h->span, 8);
        assert_false(h->m.end);
        assert_int_equal(h->m.cut_ext, want[i].ext);
        assert_int_equal(h->m.cut_over, want[i].over);
        assert_int_equal(h->m.cut_len, want[i].len);
        assert_int_equal(h->m.len, 8 + want[i].len);
        assert_int_equal(d->m.kind, RFBMSG_CUT);
        assert_int_equal(d->span, want[i].len);
        assert_true(d->m.end);
    }
    run_free(&R);

    /* an empty legacy cut text ends at its head */
    sb_reset(b);
    cut_msg(b, RFB_S2C_CUT_TEXT, 0);
    spans(&su, b, &R);
    assert_int_equal(R.n, 1);
    assert_true(R.ev[0].m.end);
    run_free(&R);

    /* extended payloads shorter than the flags word are refused */
    for (int32_t l = -1; l >= -3; l--) {
        sb_reset(b);
        cut_msg(b, RFB_S2C_CUT_TEXT, l);
        check_bad(do_setup, &su, true, b, 0, "extended clipboard message of");
    }

    /* A 2 GiB length is reported after 8 bytes and never buffered: the body
     * is consumed in whatever pieces arrive. */
    struct rfbmsg_state st;
    struct rfbmsg m;
    static const uint8_t huge[8] = { 3, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff };
    static const uint8_t huge_ext[8] = { 3, 0, 0, 0, 0x80, 0, 0, 0 };
    do_setup(&st, &su);
    assert_int_equal(rfbmsg_s2c(&st, huge, 7, &m), RFB_NEED);
    assert_int_equal(rfbmsg_s2c(&st, huge, 8, &m), 8);
    assert_int_equal(m.kind, RFBMSG_HEAD);
    assert_true(m.cut_over);
    assert_int_equal(m.cut_len, 0x7fffffffu);
    uint8_t chunk[4096] = { 0 };
    for (int i = 0; i < 100; i++) {
        assert_int_equal(rfbmsg_s2c(&st, chunk, sizeof chunk, &m), (int)sizeof chunk);
        assert_int_equal(m.kind, RFBMSG_CUT);
        assert_false(m.end);
    }
    do_setup(&st, &su);
    assert_int_equal(rfbmsg_s2c(&st, huge_ext, 8, &m), 8);
    assert_true(m.cut_ext);
    assert_true(m.cut_over);
    assert_int_equal(m.cut_len, 0x80000000u);
    sb_free(b);
}

/* An 8 MB Raw rect passes in 64 KiB pieces: each call takes everything
 * available, nothing is held back. */
static void test_raw_zero_copy(void **state)
{
    (void)state;
    struct rfbmsg_state st;
    struct rfbmsg m;
    struct setup su = { 0 };
    do_setup(&st, &su);
    static uint8_t chunk[65536];
    uint8_t hdr[16] = { 0, 0, 0, 1, 0, 0, 0, 0, 0x08, 0x00, 0x04, 0x00, 0, 0, 0, 0 };
    assert_int_equal(rfbmsg_s2c(&st, hdr, 16, &m), 4);
    assert_int_equal(rfbmsg_s2c(&st, hdr + 4, 12, &m), 12);
    assert_int_equal(m.kind, RFBMSG_RECT);
    assert_int_equal(m.w, 2048);
    assert_int_equal(m.h, 1024);
    uint64_t left = 2048ull * 1024 * 4;
    while (left) {
        size_t give = left < sizeof chunk ? (size_t)left : sizeof chunk;
        /* an odd-sized delivery too */
        if (give > 777 && (left / sizeof chunk) % 3 == 0)
            give = 777;
        int r = rfbmsg_s2c(&st, chunk, give, &m);
        assert_int_equal(r, (int)give);
        assert_int_equal(m.kind, RFBMSG_DATA);
        left -= give;
        assert_int_equal(m.end, left == 0);
    }
    assert_false(rfbmsg_in_update(&st));
    assert_int_equal(rfbmsg_s2c(&st, (const uint8_t *)"\x02", 1, &m), 1);
    assert_int_equal(m.type, RFB_S2C_BELL);
}

/* c2s --------------------------------------------------------------------- */

static void c2s_msg_pf(struct sb *b, const uint8_t *pf)
{
    msg_begin(b, RFB_C2S_SET_PIXEL_FORMAT);
    put8(b, 0); put8(b, 0); put16(b, 0);
    put(b, pf, 16);
    msg_end(b);
}

static void c2s_msg_enc(struct sb *b, const int32_t *e, size_t n)
{
    static uint8_t msg[RFBMSG_HDR_MAX];
    msg_begin(b, RFB_C2S_SET_ENCODINGS);
    put(b, msg, set_encodings_msg(msg, e, n));
    msg_end(b);
}

static void build_all_c2s(struct sb *b)
{
    c2s_msg_pf(b, PF16);
    c2s_msg_enc(b, ALL_ENCS, NALL);
    c2s_msg_enc(b, ALL_ENCS, 0);
    c2s_msg_enc(b, ALL_ENCS, NALL);
    msg_begin(b, RFB_C2S_FB_UPDATE_REQ);
    put8(b, 3); put8(b, 1); put16(b, 0); put16(b, 0); put16(b, 800); put16(b, 600);
    msg_end(b);
    msg_begin(b, RFB_C2S_KEY);
    put8(b, 4); put8(b, 1); put16(b, 0); put32(b, 0xff0d);
    msg_end(b);
    msg_begin(b, RFB_C2S_POINTER);
    put8(b, 5); put8(b, 0x1f); put16(b, 10); put16(b, 20);
    msg_end(b);
    cut_msg(b, RFB_C2S_CUT_TEXT, 5);
    cut_msg(b, RFB_C2S_CUT_TEXT, 0);
    cut_msg(b, RFB_C2S_CUT_TEXT, -4);
    cut_msg(b, RFB_C2S_CUT_TEXT, -40);
    msg_begin(b, RFB_C2S_QEMU);
    put8(b, 255); put8(b, 0); put16(b, 1); put32(b, 0x61); put32(b, 0x1e);
    msg_end(b);
    for (unsigned op = 0; op < 2; op++) {
        msg_begin(b, RFB_C2S_QEMU);
        put8(b, 255); put8(b, 1); put16(b, op);
        msg_end(b);
    }
    msg_begin(b, RFB_C2S_QEMU);
    put8(b, 255); put8(b, 1); put16(b, 2); put8(b, 3); put8(b, 2); put32(b, 44100);
    msg_end(b);
    msg_begin(b, RFB_C2S_XVP);
    put8(b, 250); put8(b, 0); put8(b, 1); put8(b, 4);
    msg_end(b);
    msg_begin(b, RFB_C2S_SET_DESKTOP_SIZE);
    put8(b, 251); put8(b, 0); put16(b, 1024); put16(b, 768); put8(b, 2); put8(b, 0);
    putrnd(b, 32);
    msg_end(b);
    msg_begin(b, RFB_C2S_SET_DESKTOP_SIZE);
    put8(b, 251); put8(b, 0); put16(b, 1024); put16(b, 768); put8(b, 0); put8(b, 0);
    msg_end(b);
    msg_begin(b, RFB_C2S_ENABLE_CU);
    put8(b, 150); put8(b, 1); put16(b, 0); put16(b, 0); put16(b, 800); put16(b, 600);
    msg_end(b);
    msg_begin(b, RFB_C2S_FENCE);
    put8(b, 248); put8(b, 0); put16(b, 0); put32(b, 3); put8(b, 4); put32(b, 0xdeadbeef);
    msg_end(b);
}

static void test_c2s_messages(void **state)
{
    (void)state;
    struct sb *b = sb_new();
    struct setup su = { .encs = ALL_ENCS, .nenc = NALL, .confirm_cu_fence = true };
    build_all_c2s(b);
    check_valid(do_setup, &su, false, b);

    struct run R;
    spans_dir(&su, false, b, &R);
    assert_int_equal(R.bypp, 2);        /* the SetPixelFormat took effect */
    assert_int_equal(R.ev[0].m.kind, RFBMSG_MSG);
    assert_int_equal(R.ev[0].m.len, 20);
    assert_int_equal(R.ev[1].m.len, 4 + 4 * NALL);
    assert_int_equal(R.ev[2].m.len, 4);
    run_free(&R);
    sb_free(b);
}

static void test_c2s_malformed(void **state)
{
    (void)state;
    struct setup all = { .encs = ALL_ENCS, .nenc = NALL };
    static const int32_t plain_e[] = { RFB_ENC_TIGHT };
    struct setup plain = { .encs = plain_e, .nenc = 1 };
    struct sb *b = sb_new();
    /* unknown types, refused at their first byte */
    for (unsigned t = 0; t < 256; t++) {
        if (t == 0 || (t >= 2 && t <= 6) || t == 150 || t == 248 || t == 250 || t == 251 ||
            t == 255)
            continue;
        struct rfbmsg_state st;
        struct rfbmsg m;
        uint8_t one = (uint8_t)t;
        do_setup(&st, &all);
        assert_int_equal(rfbmsg_c2s(&st, &one, 1, &m), RFB_BAD);
        assert_non_null(strstr(st.why, "unknown client message type"));
    }
    /* SetEncodings over the limit: refused from its 4-byte head */
    sb_reset(b);
    put8(b, 2); put8(b, 0); put16(b, RFBMSG_MAX_ENCODINGS + 1);
    check_bad(do_setup, &all, false, b, 0, "1025 encodings");
    sb_reset(b);
    put8(b, 2); put8(b, 0); put16(b, 0xffff);
    check_bad(do_setup, &all, false, b, 0, "65535 encodings");
    /* exactly at the limit is fine */
    int32_t *many = calloc(RFBMSG_MAX_ENCODINGS, sizeof *many);
    assert_non_null(many);
    sb_reset(b);
    c2s_msg_enc(b, many, RFBMSG_MAX_ENCODINGS);
    check_valid(do_setup, &all, false, b);
    free(many);
    /* SetPixelFormat with an unusable depth */
    sb_reset(b);
    put(b, "\0\0\0\0", 4);
    put(b, PF24, 16);
    check_bad(do_setup, &all, false, b, 0, "24 bits per pixel");
    /* QEMU messages */
    sb_reset(b);
    put(b, "\xff\x02\x00\x00", 4);
    check_bad(do_setup, &all, false, b, 0, "subtype 2");
    sb_reset(b);
    put(b, "\xff\x01\x00\x03", 4);
    check_bad(do_setup, &all, false, b, 0, "operation 3");
    sb_reset(b);
    put(b, "\xff\x01\x00\x00", 4);
    check_bad(do_setup, &plain, false, b, 0, "audio");
    /* negotiated-only messages */
    sb_reset(b);
    put(b, "\xfa\x00\x01\x02", 4);
    check_bad(do_setup, &plain, false, b, 0, "xvp");
    sb_reset(b);
    put8(b, 251); put8(b, 0); put16(b, 10); put16(b, 10); put8(b, 0); put8(b, 0);
    check_bad(do_setup, &plain, false, b, 0, "SetDesktopSize");
    sb_reset(b);
    put8(b, 150); put8(b, 1); putrnd(b, 8);
    check_bad(do_setup, &all, false, b, 0, "never confirmed");
    sb_reset(b);
    put8(b, 248); putrnd(b, 7); put8(b, 0);
    check_bad(do_setup, &all, false, b, 0, "never sent a fence");
    struct setup conf = { .encs = ALL_ENCS, .nenc = NALL, .confirm_cu_fence = true };
    sb_reset(b);
    put8(b, 248); put8(b, 0); put16(b, 0); put32(b, 0); put8(b, 65); putrnd(b, 65);
    check_bad(do_setup, &conf, false, b, 0, "65 bytes");
    /* extended ClientCutText from a viewer that never asked for it */
    sb_reset(b);
    cut_msg(b, RFB_C2S_CUT_TEXT, -8);
    check_bad(do_setup, &plain, false, b, 0, "extended ClientCutText");
    sb_reset(b);
    cut_msg(b, RFB_C2S_CUT_TEXT, -2);
    check_bad(do_setup, &all, false, b, 0, "extended clipboard message of 2 bytes");
    /* after a bad message the direction stays failed */
    struct rfbmsg_state st;
    struct rfbmsg m;
    do_setup(&st, &plain);
    assert_int_equal(rfbmsg_c2s(&st, (const uint8_t *)"\x07", 1, &m), RFB_BAD);
    assert_int_equal(rfbmsg_c2s(&st, (const uint8_t *)"\x04\x01\x00\x00\x00\x00\x00\x61", 8, &m),
                     RFB_BAD);
    /* ... but the other direction is unaffected */
    assert_int_equal(rfbmsg_s2c(&st, (const uint8_t *)"\x02", 1, &m), 1);
    sb_free(b);
}

static void test_c2s_cut_text(void **state)
{
    (void)state;
    struct sb *b = sb_new();
    struct run R;
    /* a legacy viewer bridged by the gateway: ext clipboard added towards the
     * server, so extended ServerCutText is accepted from it */
    static const int32_t gtk[] = { RFB_ENC_ZRLE, RFB_ENC_RAW };
    struct setup bridge = { .encs = gtk, .nenc = 2, .filter = true,
                            .flags = RFBMSG_F_ADD_EXT_CLIPBOARD, .cut_max = 10 };
    cut_msg(b, RFB_S2C_CUT_TEXT, -12);
    check_valid(do_setup, &bridge, true, b);
    /* the gateway's own extended ClientCutText on that session parses */
    sb_reset(b);
    cut_msg(b, RFB_C2S_CUT_TEXT, -12);
    cut_msg(b, RFB_C2S_CUT_TEXT, 9);
    cut_msg(b, RFB_C2S_CUT_TEXT, 11);
    check_valid(do_setup, &bridge, false, b);
    struct rfbmsg_state st;
    size_t cut = b->n;
    do_setup(&st, &bridge);
    assert_false(rfbmsg_viewer_has(&st, RFB_ENC_EXT_CLIPBOARD));
    assert_true(rfbmsg_server_has(&st, RFB_ENC_EXT_CLIPBOARD));
    feed(&st, false, b->p, &cut, 1, &R);
    assert_true(R.ev[0].m.cut_ext);
    assert_true(R.ev[0].m.cut_over);
    assert_false(R.ev[2].m.cut_over);
    assert_true(R.ev[4].m.cut_over);
    run_free(&R);
    sb_free(b);
}

/* SetPixelFormat while an update is arriving: the rest of that update still
 * uses the old format, the next one the new. */
static void test_pf_switch(void **state)
{
    (void)state;
    struct rfbmsg_state st;
    struct rfbmsg m;
    struct setup su = { 0 };
    uint8_t spf[20];
    spf_msg(spf, PF16);
    struct ctx c32 = { 4, 3 }, c16 = { 2, 2 };
    struct sb *b = sb_new();
    fbu(b, 2);
    raw_rect(b, &c32, 3, 3);
    raw_rect(b, &c32, 5, 1);
    msg_end(b);
    size_t mid = b->rects[1].start;
    fbu(b, 1);
    raw_rect(b, &c16, 3, 3);
    msg_end(b);

    do_setup(&st, &su);
    size_t off = 0;
    while (off < mid) {
        int r = rfbmsg_s2c(&st, b->p + off, mid - off, &m);
        assert_true(r > 0);
        off += (size_t)r;
    }
    assert_true(rfbmsg_in_update(&st));
    assert_int_equal(rfbmsg_c2s(&st, spf, 20, &m), 20);
    assert_int_equal(st.bypp, 4);      /* not yet */
    bool seen_end = false;
    while (off < b->n) {
        int r = rfbmsg_s2c(&st, b->p + off, b->n - off, &m);
        assert_true(r > 0);
        off += (size_t)r;
        if (m.type == RFB_S2C_FB_UPDATE && m.end && off == b->rects[2].start - 4) {
            assert_int_equal(st.bypp, 2);   /* switched as the first update ended */
            seen_end = true;
        }
    }
    assert_true(seen_end);
    assert_int_equal(off, b->n);
    assert_int_equal(st.bypp, 2);
    assert_false(rfbmsg_in_update(&st));

    /* idle: at once */
    do_setup(&st, &su);
    assert_int_equal(rfbmsg_c2s(&st, spf, 20, &m), 20);
    assert_int_equal(st.bypp, 2);
    /* in an update that carries a pending change, the latest one wins */
    do_setup(&st, &su);
    assert_int_equal(rfbmsg_s2c(&st, b->p, 16, &m), 4);
    assert_int_equal(rfbmsg_c2s(&st, spf, 20, &m), 20);
    uint8_t spf8[20];
    spf_msg(spf8, PF8);
    assert_int_equal(rfbmsg_c2s(&st, spf8, 20, &m), 20);
    assert_int_equal(st.bypp, 4);
    /* a ServerCutText in progress does not hold the change back */
    do_setup(&st, &su);
    assert_int_equal(rfbmsg_s2c(&st, (const uint8_t *)"\x03\0\0\0\0\0\0\x05", 8, &m), 8);
    assert_false(rfbmsg_in_update(&st));
    assert_int_equal(rfbmsg_c2s(&st, spf, 20, &m), 20);
    assert_int_equal(st.bypp, 2);
    sb_free(b);
}

/* SetEncodings rewrite -------------------------------------------------------- */

static void filter_case(const int32_t *in, size_t nin, unsigned flags, const int32_t *want,
                        size_t nwant)
{
    static uint8_t msg[RFBMSG_HDR_MAX], out[RFBMSG_HDR_MAX + 4];
    struct rfbmsg_state st;
    struct rfbmsg m;
    assert_int_equal(rfbmsg_init(&st, 640, 480, PF32), 0);
    size_t len = set_encodings_msg(msg, in, nin);
    assert_int_equal(rfbmsg_c2s(&st, msg, len, &m), (int)len);
    int r = rfbmsg_filter_encodings(&st, msg, len, flags, out, sizeof out);
    assert_int_equal(r, (int)(4 + 4 * nwant));
    assert_int_equal(out[0], 2);
    assert_int_equal(out[1], 0);
    assert_int_equal((out[2] << 8) | out[3], nwant);
    for (size_t i = 0; i < nwant; i++) {
        int32_t e = (int32_t)rfb_get_u32(out + 4 + 4 * i);
        if (e != want[i])
            fail_msg("entry %zu: got %d, want %d", i, e, want[i]);
    }
    /* the rewritten message is itself a valid SetEncodings and rewrites to itself */
    struct rfbmsg_state st2;
    uint8_t again[RFBMSG_HDR_MAX + 4];
    assert_int_equal(rfbmsg_init(&st2, 640, 480, PF32), 0);
    assert_int_equal(rfbmsg_c2s(&st2, out, (size_t)r, &m), r);
    assert_int_equal(rfbmsg_filter_encodings(&st2, out, (size_t)r, flags, again, sizeof again), r);
    assert_memory_equal(again, out, (size_t)r);
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void test_filter_clients(void **state)
{
    (void)state;
    /* noVNC 1.3 (encodings.js order, as sent) */
    static const int32_t novnc[] = {
        1, 7, -260, 5, 2, 0, -26, -254, -224, -223, -308, -309, -312, -313, -307,
        RFB_ENC_EXT_CLIPBOARD, -239, RFB_ENC_VMWARE_CURSOR, -258, -261, -257,
    };
    static const int32_t novnc_out[] = {
        1, 7, -260, 5, 0, -26, -254, -224, -223, -308, RFB_ENC_EXT_CLIPBOARD, -239, -258, -261,
        -257,
    };
    filter_case(novnc, N(novnc), 0, novnc_out, N(novnc_out));
    /* TigerVNC 1.12 */
    static const int32_t tiger[] = {
        7, 1, 16, 5, 2, 0, -314, RFB_ENC_VMWARE_CURSOR, -239, -240, 0x574D5666, -223, -308,
        -261, RFB_ENC_VMWARE_LED, -307, -224, RFB_ENC_EXT_CLIPBOARD, -313, -312, -258, -256 + 2,
        -32 + 8,
    };
    static const int32_t tiger_out[] = {
        7, 1, 16, 5, 0, -314, -240, -223, -308, -261, -224, RFB_ENC_EXT_CLIPBOARD, -258, -254,
        -24,
    };
    filter_case(tiger, N(tiger), 0, tiger_out, N(tiger_out));
    /* gtk-vnc VncDisplay */
    static const int32_t gtk[] = {
        7, 16, 5, 2, 1, 0, -309, -258, -261, -308, -223, -307, -224, RFB_ENC_WMVI, -259, -314,
        -239, -240, -257,
    };
    static const int32_t gtk_out[] = {
        7, 16, 5, 1, 0, -258, -261, -308, -223, -224, -259, -314, -240, -257,
    };
    filter_case(gtk, N(gtk), 0, gtk_out, N(gtk_out));
    /* gtk-vnc bridged for the clipboard, audio off, xvp to the server */
    static const int32_t gtk_out2[] = {
        7, 16, 5, 1, 0, -309, -258, -261, -308, -223, -224, -314, -240, -257,
        RFB_ENC_EXT_CLIPBOARD,
    };
    filter_case(gtk, N(gtk), RFBMSG_F_ADD_EXT_CLIPBOARD | RFBMSG_F_NO_AUDIO | RFBMSG_F_KEEP_XVP,
                gtk_out2, N(gtk_out2));
    /* clipboard = none: stripped even though asked */
    static const int32_t tiger_none[] = {
        7, 1, 16, 5, 0, -314, -240, -223, -308, -261, -224, -258, -254, -24,
    };
    filter_case(tiger, N(tiger), RFBMSG_F_NO_EXT_CLIPBOARD | RFBMSG_F_ADD_EXT_CLIPBOARD,
                tiger_none, N(tiger_none));
}

static void test_filter_rules(void **state)
{
    (void)state;
    /* every kept encoding survives, in order */
    static const int32_t keep[] = {
        0, 1, 5, 6, 7, 16, 17, -260, -223, -224, -232, -239, -240, -257, -258, -259, -261,
        -308, RFB_ENC_EXT_CLIPBOARD, -32, -23, -256, -247,
    };
    filter_case(keep, N(keep), 0, keep, N(keep));
    /* every stripped one goes */
    static const int32_t strip[] = {
        2, 3, 4, 8, 9, 15, 21, 50, -22, -33, -246, -257 + 1 - 1 - 5, -305, -307, -309, -312,
        -313, -316, -317, RFB_ENC_WMVI, RFB_ENC_VMWARE_CURSOR, 0x574D5666, RFB_ENC_VMWARE_LED,
        -412, -512, -763, -768, 0x7fffffff, (int32_t)0x80000000, -262, -272,
    };
    filter_case(strip, N(strip), 0, NULL, 0);
    /* duplicates dropped, first position kept; Cursor goes when AlphaCursor is there */
    static const int32_t dup[] = { 7, 0, 7, -239, -26, -26, -314, 0, RFB_ENC_EXT_CLIPBOARD,
                                   RFB_ENC_EXT_CLIPBOARD };
    static const int32_t dup_out[] = { 7, 0, -26, -314, RFB_ENC_EXT_CLIPBOARD };
    filter_case(dup, N(dup), 0, dup_out, N(dup_out));
    /* Cursor stays without AlphaCursor */
    static const int32_t cur[] = { -239, 7 };
    filter_case(cur, N(cur), 0, cur, N(cur));
    /* empty list; adding the clipboard to it */
    filter_case(NULL, 0, 0, NULL, 0);
    static const int32_t clip_only[] = { RFB_ENC_EXT_CLIPBOARD };
    filter_case(NULL, 0, RFBMSG_F_ADD_EXT_CLIPBOARD, clip_only, 1);
    /* audio kept by default, dropped on request */
    static const int32_t au[] = { 7, -259 };
    static const int32_t au_out[] = { 7 };
    filter_case(au, N(au), 0, au, N(au));
    filter_case(au, N(au), RFBMSG_F_NO_AUDIO, au_out, N(au_out));

    /* invalid input and short output buffers */
    struct rfbmsg_state st;
    uint8_t msg[64], out[64];
    assert_int_equal(rfbmsg_init(&st, 640, 480, PF32), 0);
    size_t len = set_encodings_msg(msg, keep, 5);
    assert_int_equal(rfbmsg_filter_encodings(&st, msg, len - 1, 0, out, sizeof out), -1);
    assert_int_equal(rfbmsg_filter_encodings(&st, msg, 3, 0, out, sizeof out), -1);
    msg[0] = 3;
    assert_int_equal(rfbmsg_filter_encodings(&st, msg, len, 0, out, sizeof out), -1);
    msg[0] = 2;
    assert_int_equal(rfbmsg_filter_encodings(&st, msg, len, 0, out, 4 + 4 * 5), (int)len);
    assert_int_equal(rfbmsg_filter_encodings(&st, msg, len, 0, out, 4 + 4 * 4), -1);
    assert_int_equal(rfbmsg_filter_encodings(&st, msg, len, 0, out, 3), -1);
    assert_int_equal(rfbmsg_filter_encodings(&st, msg, len, RFBMSG_F_ADD_EXT_CLIPBOARD, out,
                                             4 + 4 * 5), -1);
    assert_int_equal(rfbmsg_filter_encodings(&st, msg, len, RFBMSG_F_ADD_EXT_CLIPBOARD, out,
                                             4 + 4 * 6), (int)len + 4);
}

static void test_filter_state(void **state)
{
    (void)state;
    static uint8_t msg[256], out[260];
    struct rfbmsg_state st;
    struct rfbmsg m;
    static const int32_t tiger[] = { 7, 16, 0, -314, -239, RFB_ENC_EXT_CLIPBOARD, -308 };
    assert_int_equal(rfbmsg_init(&st, 640, 480, PF32), 0);
    assert_false(rfbmsg_viewer_has(&st, RFB_ENC_TIGHT));
    size_t len = set_encodings_msg(msg, tiger, N(tiger));
    assert_int_equal(rfbmsg_c2s(&st, msg, len, &m), (int)len);
    assert_true(rfbmsg_viewer_has(&st, RFB_ENC_EXT_CLIPBOARD));
    assert_true(rfbmsg_viewer_has(&st, RFB_ENC_CURSOR));
    assert_true(rfbmsg_server_has(&st, RFB_ENC_CURSOR));   /* as if forwarded unchanged */
    assert_true(rfbmsg_filter_encodings(&st, msg, len, RFBMSG_F_NO_EXT_CLIPBOARD, out,
                                        sizeof out) > 0);
    assert_true(rfbmsg_viewer_has(&st, RFB_ENC_EXT_CLIPBOARD));
    assert_false(rfbmsg_server_has(&st, RFB_ENC_EXT_CLIPBOARD));
    assert_false(rfbmsg_server_has(&st, RFB_ENC_CURSOR));
    assert_true(rfbmsg_server_has(&st, RFB_ENC_ALPHA_CURSOR));
    assert_false(rfbmsg_server_has(&st, RFB_ENC_WMVI));
    assert_false(rfbmsg_viewer_has(&st, 12345));
    /* a later SetEncodings replaces the viewer's set */
    static const int32_t two[] = { 16, 0 };
    len = set_encodings_msg(msg, two, 2);
    assert_int_equal(rfbmsg_c2s(&st, msg, len, &m), (int)len);
    assert_false(rfbmsg_viewer_has(&st, RFB_ENC_EXT_CLIPBOARD));
    assert_true(rfbmsg_viewer_has(&st, RFB_ENC_ZRLE));
    /* but updates already under way with the old set still parse: an old
     * Tight rect after the switch to ZRLE */
    uint8_t t[20] = { 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 7, 0x80, 0, 0, 0 };
    int r, off = 0;
    while (off < 18 && (r = rfbmsg_s2c(&st, t + off, 18 - (size_t)off, &m)) > 0)
        off += r;
    assert_int_equal(off, 16);         /* the fill needs 1 + 3 bytes */
    assert_int_equal(rfbmsg_s2c(&st, t + 16, 3, &m), RFB_NEED);
    assert_int_equal(rfbmsg_s2c(&st, t + 16, 4, &m), 4);
    assert_true(m.end);
    assert_true(rfbmsg_server_has(&st, RFB_ENC_ZRLE));
    assert_false(rfbmsg_server_has(&st, RFB_ENC_TIGHT));
}

/* Random valid streams: messages of every kind in random order. */
static void test_random_streams(void **state)
{
    (void)state;
    struct setup su = { .client_pf = PF32, .encs = ALL_ENCS, .nenc = NALL };
    struct ctx c = { 4, 3 };
    struct sb *b = sb_new();
    for (unsigned seed = 1; seed <= 12; seed++) {
        rnd_state = seed * 7919u;
        sb_reset(b);
        for (int k = 0; k < 12; k++) {
            switch (rnd8() % 7) {
            case 0:
                fbu(b, 2);
                hextile_rect(b, &c, 1 + rnd8() % 40, 1 + rnd8() % 20, rnd8());
                raw_rect(b, &c, rnd8() % 5, rnd8() % 5);
                msg_end(b);
                break;
            case 1:
                fbu(b, 3);
                rect(b, 0, 0, 1 + rnd8() % 50, 1 + rnd8() % 50, RFB_ENC_TIGHT);
                tight_fill(b, &c);
                rect(b, 0, 0, 5, 5, RFB_ENC_TIGHT);
                tight_basic(b, &c, 5, 5, rnd8() % 4, rnd8() & 15, rnd8() & 1, 0, 0);
                rect(b, 0, 0, 9, 9, RFB_ENC_TIGHT);
                tight_basic(b, &c, 9, 9, 0, 0, true, 1, 2 + rnd8() % 100);
                msg_end(b);
                break;
            case 2:
                fbu(b, 1);
                len_rect(b, RFB_ENC_ZRLE, 64, 64, rnd8());
                msg_end(b);
                break;
            case 3:
                cut_msg(b, RFB_S2C_CUT_TEXT, rnd8() & 1 ? rnd8() : -(4 + rnd8() % 50));
                break;
            case 4:
                msg_begin(b, RFB_S2C_BELL);
                put8(b, 2);
                msg_end(b);
                break;
            case 5:
                fbu(b, 1);
                rect(b, 0, 0, 0, 0, RFB_ENC_LED_STATE);
                put8(b, rnd8() & 7);
                msg_end(b);
                break;
            case 6:
                fbu(b, 1);
                rect(b, 0, 0, 4 + rnd8() % 8, 4, RFB_ENC_CURSOR);
                putrnd(b, (size_t)b->p[b->n - 7] * 4 * 4 + (size_t)((b->p[b->n - 7] + 7) / 8) * 4);
                msg_end(b);
                break;
            }
        }
        check_valid(do_setup, &su, true, b);
    }
    sb_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pf_rules),
        cmocka_unit_test(test_server_init),
        cmocka_unit_test(test_all_encodings_32),
        cmocka_unit_test(test_all_encodings_32_depth32),
        cmocka_unit_test(test_all_encodings_32_max0),
        cmocka_unit_test(test_all_encodings_32_10bit),
        cmocka_unit_test(test_all_encodings_16),
        cmocka_unit_test(test_all_encodings_8),
        cmocka_unit_test(test_all_encodings_colourmap),
        cmocka_unit_test(test_tight_3byte_rule),
        cmocka_unit_test(test_tight_lengths),
        cmocka_unit_test(test_tight_bad_control),
        cmocka_unit_test(test_hextile),
        cmocka_unit_test(test_pseudo_encodings),
        cmocka_unit_test(test_encoding_not_allowed),
        cmocka_unit_test(test_s2c_messages),
        cmocka_unit_test(test_s2c_unknown_types),
        cmocka_unit_test(test_cut_text),
        cmocka_unit_test(test_raw_zero_copy),
        cmocka_unit_test(test_c2s_messages),
        cmocka_unit_test(test_c2s_malformed),
        cmocka_unit_test(test_c2s_cut_text),
        cmocka_unit_test(test_pf_switch),
        cmocka_unit_test(test_filter_clients),
        cmocka_unit_test(test_filter_rules),
        cmocka_unit_test(test_filter_state),
        cmocka_unit_test(test_random_streams),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
