/* proxy/rfbmsg.c — see rfbmsg.h.  Pure: no I/O, no allocation.
 *
 * Each direction is a small state machine.  A "unit" (a message type, a
 * rect header, a Tight sub-header, a Hextile tile, ...) is parsed only when
 * all of it is in p; until then RFB_NEED is returned and nothing changes,
 * so the caller keeps the bytes and calls again.  Bulk payload is a "skip":
 * a byte count consumed in whatever chunks arrive.  Every length is taken
 * into 64 bits and checked before it is used. */
#include "proxy/rfbmsg.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum { ST_MSG, ST_RECT, ST_SUB, ST_TILE, ST_SKIP };
enum { AFTER_MSG, AFTER_RECT, AFTER_TILE };

/* Bits of the encoding masks. */
enum {
    B_RAW, B_COPYRECT, B_HEXTILE, B_ZLIB, B_TIGHT, B_ZRLE, B_ZYWRLE, B_TIGHTPNG,
    B_DESKTOP_SIZE, B_LAST_RECT, B_POINTER_POS, B_CURSOR, B_XCURSOR,
    B_QEMU_POINTER, B_QEMU_KEY, B_QEMU_AUDIO, B_LED, B_EXT_DESKTOP, B_ALPHA_CURSOR,
    B_EXT_CLIP, B_XVP, B_FENCE, B_CU,
    B_COUNT
};
#define BIT(b) (1u << (b))

static const struct { int32_t enc; uint8_t bit; } known_enc[] = {
    { RFB_ENC_RAW, B_RAW },
    { RFB_ENC_COPYRECT, B_COPYRECT },
    { RFB_ENC_HEXTILE, B_HEXTILE },
    { RFB_ENC_ZLIB, B_ZLIB },
    { RFB_ENC_TIGHT, B_TIGHT },
    { RFB_ENC_ZRLE, B_ZRLE },
    { RFB_ENC_ZYWRLE, B_ZYWRLE },
    { RFB_ENC_TIGHT_PNG, B_TIGHTPNG },
    { RFB_ENC_DESKTOP_SIZE, B_DESKTOP_SIZE },
    { RFB_ENC_LAST_RECT, B_LAST_RECT },
    { RFB_ENC_POINTER_POS, B_POINTER_POS },
    { RFB_ENC_CURSOR, B_CURSOR },
    { RFB_ENC_XCURSOR, B_XCURSOR },
    { RFB_ENC_QEMU_POINTER, B_QEMU_POINTER },
    { RFB_ENC_QEMU_EXT_KEY, B_QEMU_KEY },
    { RFB_ENC_QEMU_AUDIO, B_QEMU_AUDIO },
    { RFB_ENC_LED_STATE, B_LED },
    { RFB_ENC_EXT_DESKTOP_SIZE, B_EXT_DESKTOP },
    { RFB_ENC_ALPHA_CURSOR, B_ALPHA_CURSOR },
    { RFB_ENC_EXT_CLIPBOARD, B_EXT_CLIP },
    { RFB_ENC_XVP, B_XVP },
    { RFB_ENC_FENCE, B_FENCE },
    { RFB_ENC_CONT_UPDATES, B_CU },
};

static int enc_bit(int32_t enc)
{
    for (size_t i = 0; i < sizeof known_enc / sizeof known_enc[0]; i++)
        if (known_enc[i].enc == enc)
            return known_enc[i].bit;
    return -1;
}

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static int32_t gets32(const uint8_t *p) { return (int32_t)rfb_get_u32(p); }

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static int bad(struct rfbmsg_state *st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->why, sizeof st->why, fmt, ap);
    va_end(ap);
    return RFB_BAD;
}

/* ------------------------------------------------------------ pixel format */

int rfbmsg_pf_parse(const uint8_t p[static 16], struct rfbmsg_pf *pf)
{
    struct rfbmsg_pf f = {
        .bpp = p[0], .depth = p[1], .big_endian = p[2] ? 1 : 0, .true_colour = p[3] ? 1 : 0,
        .rmax = get16(p + 4), .gmax = get16(p + 6), .bmax = get16(p + 8),
        .rshift = p[10], .gshift = p[11], .bshift = p[12],
    };
    if (!f.true_colour) {            /* QEMU: 256-entry map, BGR233 */
        f.bpp = 8;
        f.rmax = 7; f.gmax = 7; f.bmax = 3;
        f.rshift = 0; f.gshift = 3; f.bshift = 6;
    }
    if (f.bpp != 8 && f.bpp != 16 && f.bpp != 32)
        return -1;
    if (f.rmax == 0) f.rmax = 0xff;
    if (f.gmax == 0) f.gmax = 0xff;
    if (f.bmax == 0) f.bmax = 0xff;
    f.depth = f.bpp == 32 ? 24 : f.bpp;
    *pf = f;
    return 0;
}

static void pf_apply(struct rfbmsg_state *st, const struct rfbmsg_pf *pf)
{
    st->pf = *pf;
    st->bypp = (uint8_t)(pf->bpp / 8);
    /* QEMU tight_send_framebuffer_update(): 3-byte pixels when the client
     * format has 4 bytes per pixel and all maxes 255 (depth and the
     * true-colour flag are not looked at). */
    st->tpixel = (st->bypp == 4 && pf->rmax == 0xff && pf->gmax == 0xff && pf->bmax == 0xff)
                     ? 3 : st->bypp;
}

int rfbmsg_init(struct rfbmsg_state *st, uint16_t fb_w, uint16_t fb_h,
                const uint8_t pf[static 16])
{
    struct rfbmsg_pf f;
    memset(st, 0, sizeof *st);
    st->cut_max = RFBMSG_CUT_MAX_QEMU;
    st->fb_w = fb_w;
    st->fb_h = fb_h;
    if (rfbmsg_pf_parse(pf, &f) != 0) {
        st->s2c.failed = st->c2s.failed = true;
        return bad(st, "server pixel format with %u bits per pixel", pf[0]);
    }
    pf_apply(st, &f);
    return 0;
}

int rfbmsg_server_init(struct rfbmsg_state *st, const uint8_t *p, size_t n)
{
    if (n < 24)
        return RFB_NEED;
    uint32_t nlen = rfb_get_u32(p + 20);
    if (nlen > RFBMSG_NAME_MAX) {
        memset(st, 0, sizeof *st);
        st->s2c.failed = st->c2s.failed = true;
        return bad(st, "ServerInit with a %u-byte desktop name", nlen);
    }
    if (n < 24 + (size_t)nlen)
        return RFB_NEED;
    if (rfbmsg_init(st, get16(p), get16(p + 2), p + 4) != 0)
        return RFB_BAD;
    return (int)(24 + nlen);
}

/* -------------------------------------------------------------- encodings */

bool rfbmsg_viewer_has(const struct rfbmsg_state *st, int32_t enc)
{
    int b = enc_bit(enc);
    return b >= 0 && (st->enc_req & BIT(b));
}

bool rfbmsg_server_has(const struct rfbmsg_state *st, int32_t enc)
{
    int b = enc_bit(enc);
    uint32_t fwd = st->enc_pending_set ? st->enc_pending : st->enc_fwd;
    return b >= 0 && (fwd & BIT(b));
}

void rfbmsg_confirm(struct rfbmsg_state *st, bool cu, bool fence)
{
    st->cu_confirmed |= cu;
    st->fence_confirmed |= fence;
}

bool rfbmsg_in_update(const struct rfbmsg_state *st)
{
    return st->s2c.state != ST_MSG && st->s2c.type == RFB_S2C_FB_UPDATE;
}

bool rfbmsg_s2c_idle(const struct rfbmsg_state *st)
{
    return st->s2c.state == ST_MSG;
}

bool rfbmsg_c2s_idle(const struct rfbmsg_state *st)
{
    return st->c2s.state == ST_MSG;
}

/* What rfbmsg_filter_encodings keeps, apart from the level ranges. */
#define KEEP_BITS (BIT(B_RAW) | BIT(B_COPYRECT) | BIT(B_HEXTILE) | BIT(B_ZLIB) |          \
                   BIT(B_TIGHT) | BIT(B_ZRLE) | BIT(B_ZYWRLE) | BIT(B_TIGHTPNG) |          \
                   BIT(B_DESKTOP_SIZE) | BIT(B_LAST_RECT) | BIT(B_POINTER_POS) |           \
                   BIT(B_CURSOR) | BIT(B_XCURSOR) | BIT(B_QEMU_POINTER) |                  \
                   BIT(B_QEMU_KEY) | BIT(B_QEMU_AUDIO) | BIT(B_LED) | BIT(B_EXT_DESKTOP) | \
                   BIT(B_ALPHA_CURSOR) | BIT(B_EXT_CLIP))

/* The level pseudo-encodings kept besides KEEP_BITS: JPEG quality 0-9 are
 * bits 0-9, compress level 0-9 bits 10-19; -1 for anything else. */
static int level_bit(int32_t e)
{
    if (e >= RFB_ENC_JPEG_QUALITY_0 && e <= RFB_ENC_JPEG_QUALITY_9)
        return e - RFB_ENC_JPEG_QUALITY_0;
    if (e >= RFB_ENC_COMPRESS_0 && e <= RFB_ENC_COMPRESS_9)
        return 10 + (e - RFB_ENC_COMPRESS_0);
    return -1;
}

static void set_fwd(struct rfbmsg_state *st, uint32_t mask)
{
    st->enc_fwd = mask;
    st->enc_fwd_ever |= mask;
    st->enc_pending_set = false;
}

/* A SetEncodings the caller did not filter went to the server unchanged. */
static void commit_pending(struct rfbmsg_state *st)
{
    if (st->enc_pending_set)
        set_fwd(st, st->enc_pending);
}

int rfbmsg_filter_encodings(struct rfbmsg_state *st, const uint8_t *msg, size_t n,
                            unsigned flags, uint8_t *out, size_t cap)
{
    if (n < 4 || msg[0] != RFB_C2S_SET_ENCODINGS || cap < 4)
        return -1;
    size_t cnt = get16(msg + 2);
    if (cnt > RFBMSG_MAX_ENCODINGS || n != 4 + 4 * cnt)
        return -1;
    bool has_alpha = false;
    for (size_t i = 0; i < cnt; i++)
        if (gets32(msg + 4 + 4 * i) == RFB_ENC_ALPHA_CURSOR)
            has_alpha = true;

    uint32_t keep = KEEP_BITS;
    if (flags & RFBMSG_F_NO_EXT_CLIPBOARD)
        keep &= ~BIT(B_EXT_CLIP);
    if (flags & RFBMSG_F_NO_AUDIO)
        keep &= ~BIT(B_QEMU_AUDIO);
    if (flags & RFBMSG_F_KEEP_XVP)
        keep |= BIT(B_XVP);
    if (has_alpha)
        keep &= ~BIT(B_CURSOR);

    uint32_t mask = 0, levels = 0;     /* what is in out so far: repeats are dropped */
    size_t o = 4;
    for (size_t i = 0; i < cnt; i++) {
        int32_t e = gets32(msg + 4 + 4 * i);
        int b = enc_bit(e);
        if (b >= 0) {
            if (!(keep & BIT(b)) || (mask & BIT(b)))
                continue;
            mask |= BIT(b);
        } else {
            int l = level_bit(e);
            if (l < 0 || (levels & BIT(l)))
                continue;
            levels |= BIT(l);
        }
        if (o + 4 > cap)
            return -1;
        rfb_put_u32(out + o, (uint32_t)e);
        o += 4;
    }
    if ((flags & RFBMSG_F_ADD_EXT_CLIPBOARD) && !(flags & RFBMSG_F_NO_EXT_CLIPBOARD) &&
        !(mask & BIT(B_EXT_CLIP))) {
        if (o + 4 > cap)
            return -1;
        rfb_put_u32(out + o, (uint32_t)RFB_ENC_EXT_CLIPBOARD);
        o += 4;
        mask |= BIT(B_EXT_CLIP);
    }
    out[0] = RFB_C2S_SET_ENCODINGS;
    out[1] = 0;
    out[2] = (uint8_t)((o - 4) / 4 >> 8);
    out[3] = (uint8_t)((o - 4) / 4);
    set_fwd(st, mask);
    return (int)o;
}

/* ------------------------------------------------------------- helpers */

/* How much of a want-byte run fits in one span: what is available (n), at
 * most INT_MAX (a span's length is returned as int). */
static size_t clamp_span(uint64_t want, size_t n)
{
    uint64_t t = want < n ? want : n;
    if (t > (uint64_t)INT_MAX)
        t = INT_MAX;
    return (size_t)t;
}

static void s2c_update_end(struct rfbmsg_state *st, struct rfbmsg *out)
{
    st->s2c.state = ST_MSG;
    out->end = true;
    if (st->pf_pending) {
        pf_apply(st, &st->pf_next);
        st->pf_pending = false;
    }
}

static void s2c_rect_done(struct rfbmsg_state *st, struct rfbmsg *out)
{
    struct rfbmsg_dir *d = &st->s2c;
    if (--d->rects_left == 0)
        s2c_update_end(st, out);
    else
        d->state = ST_RECT;
}

static void hextile_dims(const struct rfbmsg_dir *d, unsigned *tw, unsigned *th)
{
    unsigned tx_n = (d->rw + 15u) / 16u;
    unsigned tx = d->tile % tx_n, ty = d->tile / tx_n;
    *tw = d->rw - tx * 16u < 16u ? d->rw - tx * 16u : 16u;
    *th = d->rh - ty * 16u < 16u ? d->rh - ty * 16u : 16u;
}

/* Move on after a unit or skip of direction d finished (`after`). */
static void advance(struct rfbmsg_state *st, struct rfbmsg_dir *d, int after,
                    struct rfbmsg *out)
{
    switch (after) {
    case AFTER_MSG:
        d->state = ST_MSG;
        out->end = true;
        break;
    case AFTER_RECT:
        s2c_rect_done(st, out);
        break;
    case AFTER_TILE:
        if (++d->tile < d->tiles)
            d->state = ST_TILE;
        else
            s2c_rect_done(st, out);
        break;
    }
}

/* Continue with a skip of len bytes of kind, then `after`.  A zero-length
 * skip moves on at once. */
static void start_skip(struct rfbmsg_state *st, struct rfbmsg_dir *d, uint64_t len,
                       uint8_t kind, int after, struct rfbmsg *out)
{
    if (len == 0) {
        advance(st, d, after, out);
        return;
    }
    d->state = ST_SKIP;
    d->skip = len;
    d->skip_kind = kind;
    d->after = (uint8_t)after;
}

static int do_skip(struct rfbmsg_state *st, struct rfbmsg_dir *d, size_t n,
                   struct rfbmsg *out)
{
    size_t take = clamp_span(d->skip, n);
    d->skip -= take;
    out->kind = d->skip_kind;
    if (d->skip == 0)
        advance(st, d, d->after, out);
    return (int)take;
}

/* Cut text head (both directions): 8 bytes, S32 length. */
static int cut_head(struct rfbmsg_state *st, struct rfbmsg_dir *d, const uint8_t *p, size_t n,
                    bool ext_ok, struct rfbmsg *out)
{
    if (n < 8)
        return RFB_NEED;
    int64_t l = gets32(p + 4);
    bool ext = l < 0;
    uint64_t len = (uint64_t)(ext ? -l : l);
    if (ext && !ext_ok)
        return bad(st, "extended %s without the Extended Clipboard pseudo-encoding",
                   p[0] == RFB_S2C_CUT_TEXT ? "ServerCutText" : "ClientCutText");
    if (ext && len < 4)
        return bad(st, "extended clipboard message of %llu bytes", (unsigned long long)len);
    out->kind = RFBMSG_HEAD;
    out->len = 8 + len;
    out->cut_ext = ext;
    out->cut_len = (uint32_t)len;
    out->cut_over = len > st->cut_max;
    start_skip(st, d, len, RFBMSG_CUT, AFTER_MSG, out);
    return 8;
}

/* A whole message of len bytes. */
static int whole(struct rfbmsg_dir *d, size_t n, size_t len, struct rfbmsg *out)
{
    if (n < len)
        return RFB_NEED;
    out->kind = RFBMSG_MSG;
    out->len = len;
    out->end = true;
    d->state = ST_MSG;
    return (int)len;
}

/* A Fence in direction d: U8 type, 3 padding, U32 flags, U8 length (at
 * most 64), payload. */
static int fence(struct rfbmsg_state *st, struct rfbmsg_dir *d, const uint8_t *p, size_t n,
                 struct rfbmsg *out)
{
    if (n < 9)
        return RFB_NEED;
    if (p[8] > 64)
        return bad(st, "%s with %u bytes of payload", d == &st->s2c ? "ServerFence" : "ClientFence",
                   p[8]);
    return whole(d, n, 9u + p[8], out);
}

/* QEMU audio (255, 1) in direction d, once the pseudo-encoding was sent to
 * the server.  Operations 0 and 1 (server: end, begin; viewer: enable,
 * disable) are 4 bytes; operation 2 is the server's data (U32 length +
 * samples) or the viewer's set-format (U8 format, U8 channels, U32 Hz). */
static int qemu_audio(struct rfbmsg_state *st, struct rfbmsg_dir *d, const uint8_t *p, size_t n,
                      struct rfbmsg *out)
{
    if (!(st->enc_fwd_ever & BIT(B_QEMU_AUDIO)))
        return bad(st, "QEMU audio message without the audio pseudo-encoding");
    if (n < 4)
        return RFB_NEED;
    unsigned op = get16(p + 2);
    if (op == 0 || op == 1)
        return whole(d, n, 4, out);
    if (op != 2)
        return bad(st, "QEMU audio message with operation %u", op);
    if (d == &st->c2s)
        return whole(d, n, 10, out);
    if (n < 8)
        return RFB_NEED;
    uint32_t len = rfb_get_u32(p + 4);
    if (len > RFBMSG_AUDIO_MAX)
        return bad(st, "QEMU audio data message of %u bytes", len);
    out->kind = RFBMSG_HEAD;
    out->len = 8 + (uint64_t)len;
    start_skip(st, d, len, RFBMSG_DATA, AFTER_MSG, out);
    return 8;
}

/* ------------------------------------------------------- server -> client */

/* Tight compact length at p (n bytes): 1-3 bytes.  Returns the bytes used
 * or 0 if more are needed; *v gets the value. */
static size_t compact_len(const uint8_t *p, size_t n, uint32_t *v)
{
    if (n < 1)
        return 0;
    *v = p[0] & 0x7fu;
    if (!(p[0] & 0x80))
        return 1;
    if (n < 2)
        return 0;
    *v |= (uint32_t)(p[1] & 0x7fu) << 7;
    if (!(p[1] & 0x80))
        return 2;
    if (n < 3)
        return 0;
    *v |= (uint32_t)p[2] << 14;
    return 3;
}

/* Tight / TightPNG sub-header: compression control and everything up to
 * the data.  Consumed as one unit (<= 1030 bytes). */
static int tight_sub(struct rfbmsg_state *st, struct rfbmsg_dir *d, const uint8_t *p,
                     size_t n, struct rfbmsg *out)
{
    uint8_t ctl = p[0];
    unsigned comp = ctl >> 4;
    bool png = d->renc == RFB_ENC_TIGHT_PNG;
    size_t off;
    uint64_t data;
    uint32_t clen;
    size_t k;

    if (comp == 8) {                              /* fill */
        off = 1 + (size_t)st->tpixel;
        data = 0;
    } else if (comp == 9 || (comp == 10 && png)) { /* JPEG, PNG */
        k = compact_len(p + 1, n - 1, &clen);
        if (k == 0)
            return RFB_NEED;
        off = 1 + k;
        data = clen;
    } else if (comp > 7) {
        return bad(st, "%s rect with bad compression control 0x%02x",
                   png ? "TightPNG" : "Tight", ctl);
    } else {                                       /* basic */
        unsigned filter = 0;
        uint64_t area = (uint64_t)d->rw * d->rh, raw;
        off = 1;
        if (ctl & 0x40) {
            if (n < 2)
                return RFB_NEED;
            filter = p[1];
            off = 2;
        }
        if (filter == 1) {                         /* palette */
            if (n < off + 1)
                return RFB_NEED;
            unsigned ncol = p[off] + 1u;
            if (ncol < 2)
                return bad(st, "Tight palette with one colour");
            off += 1 + (size_t)ncol * st->tpixel;
            raw = ncol == 2 ? (uint64_t)((d->rw + 7u) / 8u) * d->rh : area;
        } else if (filter == 0 || filter == 2) {   /* copy, gradient */
            raw = area * st->tpixel;
        } else {
            return bad(st, "Tight rect with unknown filter %u", filter);
        }
        if (raw < 12) {
            data = raw;
        } else {
            if (n < off)
                return RFB_NEED;
            k = compact_len(p + off, n - off, &clen);
            if (k == 0)
                return RFB_NEED;
            off += k;
            data = clen;
        }
    }
    if (n < off)
        return RFB_NEED;
    out->kind = RFBMSG_DATA;
    start_skip(st, d, data, RFBMSG_DATA, AFTER_RECT, out);
    return (int)off;
}

/* Encoding-specific unit after the rect header. */
static int s2c_sub(struct rfbmsg_state *st, const uint8_t *p, size_t n, struct rfbmsg *out)
{
    struct rfbmsg_dir *d = &st->s2c;
    switch (d->renc) {
    case RFB_ENC_TIGHT:
    case RFB_ENC_TIGHT_PNG:
        return tight_sub(st, d, p, n, out);
    case RFB_ENC_ZLIB:
    case RFB_ENC_ZRLE:
    case RFB_ENC_ZYWRLE:
        if (n < 4)
            return RFB_NEED;
        out->kind = RFBMSG_DATA;
        start_skip(st, d, rfb_get_u32(p), RFBMSG_DATA, AFTER_RECT, out);
        return 4;
    case RFB_ENC_ALPHA_CURSOR: {
        if (n < 4)
            return RFB_NEED;
        int32_t inner = gets32(p);
        if (inner != RFB_ENC_RAW)
            return bad(st, "alpha cursor with inner encoding %d (only Raw is supported)", inner);
        out->kind = RFBMSG_DATA;
        start_skip(st, d, (uint64_t)d->rw * d->rh * 4, RFBMSG_DATA, AFTER_RECT, out);
        return 4;
    }
    case RFB_ENC_EXT_DESKTOP_SIZE:
        if (n < 4)
            return RFB_NEED;
        out->kind = RFBMSG_DATA;
        start_skip(st, d, 16u * p[0], RFBMSG_DATA, AFTER_RECT, out);
        return 4;
    }
    return bad(st, "internal: no sub-header for encoding %d", d->renc);
}

/* One Hextile tile, as one unit (<= 1540 bytes). */
static int s2c_tile(struct rfbmsg_state *st, const uint8_t *p, size_t n, struct rfbmsg *out)
{
    struct rfbmsg_dir *d = &st->s2c;
    unsigned tw, th;
    hextile_dims(d, &tw, &th);
    uint8_t mask = p[0];
    size_t size = 1;
    if (mask & 0xe0)
        return bad(st, "Hextile tile with bad subencoding mask 0x%02x", mask);
    if (mask & 1) {
        size += (size_t)tw * th * st->bypp;
    } else {
        if (mask & 2)
            size += st->bypp;
        if (mask & 4)
            size += st->bypp;
        if (mask & 8) {
            if (n < size + 1)
                return RFB_NEED;
            unsigned k = p[size];
            size_t each = (mask & 16) ? st->bypp + 2u : 2u;
            size_t first = size + 1;
            size = first + k * each;
            if (n < size)
                return RFB_NEED;
            for (unsigned i = 0; i < k; i++) {
                const uint8_t *s = p + first + i * each + (each - 2);
                unsigned sx = s[0] >> 4, sy = s[0] & 15, sw = (s[1] >> 4) + 1u,
                         sh = (s[1] & 15) + 1u;
                if (sx + sw > tw || sy + sh > th)
                    return bad(st, "Hextile subrect outside its %ux%u tile", tw, th);
            }
        }
    }
    if (n < size)
        return RFB_NEED;
    out->kind = RFBMSG_DATA;
    advance(st, d, AFTER_TILE, out);
    return (int)size;
}

/* A 12-byte rect header. */
static int s2c_rect(struct rfbmsg_state *st, const uint8_t *p, size_t n, struct rfbmsg *out)
{
    struct rfbmsg_dir *d = &st->s2c;
    if (n < 12)
        return RFB_NEED;
    uint16_t x = get16(p), y = get16(p + 2), w = get16(p + 4), h = get16(p + 6);
    int32_t enc = gets32(p + 8);
    int b = enc_bit(enc);
    if (b < 0 || b == B_EXT_CLIP || b == B_XVP || b == B_FENCE || b == B_CU)
        return bad(st, "rect with encoding %d that cannot be delimited", enc);
    if (b != B_RAW && !(st->enc_fwd_ever & BIT(b)))
        return bad(st, "rect with encoding %d the viewer did not ask for", enc);
    out->kind = RFBMSG_RECT;
    out->x = x; out->y = y; out->w = w; out->h = h;
    out->enc = enc;
    d->rx = x; d->ry = y; d->rw = w; d->rh = h;
    d->renc = enc;

    uint64_t area = (uint64_t)w * h;
    switch (enc) {
    case RFB_ENC_RAW:
        start_skip(st, d, area * st->bypp, RFBMSG_DATA, AFTER_RECT, out);
        break;
    case RFB_ENC_COPYRECT:
        start_skip(st, d, 4, RFBMSG_DATA, AFTER_RECT, out);
        break;
    case RFB_ENC_HEXTILE:
        d->tile = 0;
        d->tiles = ((w + 15u) / 16u) * ((h + 15u) / 16u);
        if (d->tiles == 0)
            s2c_rect_done(st, out);
        else
            d->state = ST_TILE;
        break;
    case RFB_ENC_ZLIB:
    case RFB_ENC_TIGHT:
    case RFB_ENC_ZRLE:
    case RFB_ENC_ZYWRLE:
    case RFB_ENC_TIGHT_PNG:
    case RFB_ENC_ALPHA_CURSOR:
    case RFB_ENC_EXT_DESKTOP_SIZE:
        d->state = ST_SUB;
        break;
    case RFB_ENC_LAST_RECT:
        s2c_update_end(st, out);
        break;
    case RFB_ENC_CURSOR:
        start_skip(st, d, area * st->bypp + (uint64_t)((w + 7u) / 8u) * h, RFBMSG_DATA,
                   AFTER_RECT, out);
        break;
    case RFB_ENC_XCURSOR:
        start_skip(st, d, area == 0 ? 0 : 6 + 2 * (uint64_t)((w + 7u) / 8u) * h, RFBMSG_DATA,
                   AFTER_RECT, out);
        break;
    case RFB_ENC_LED_STATE:
        start_skip(st, d, 1, RFBMSG_DATA, AFTER_RECT, out);
        break;
    case RFB_ENC_DESKTOP_SIZE:
        st->fb_w = w;
        st->fb_h = h;
        s2c_rect_done(st, out);
        break;
    default:   /* PointerPos, QEMU pointer, QEMU ext key, QEMU audio: no payload */
        s2c_rect_done(st, out);
        break;
    }
    if (enc == RFB_ENC_EXT_DESKTOP_SIZE && !(x == 1 && y != 0)) {
        st->fb_w = w;          /* unless it refuses this viewer's own request */
        st->fb_h = h;
    }
    return 12;
}

static int s2c_msg(struct rfbmsg_state *st, const uint8_t *p, size_t n, struct rfbmsg *out)
{
    struct rfbmsg_dir *d = &st->s2c;
    int r;
    uint8_t t = p[0];
    d->type = t;
    out->type = t;
    switch (t) {
    case RFB_S2C_FB_UPDATE:
        if (n < 4)
            return RFB_NEED;
        out->kind = RFBMSG_HEAD;
        out->nrects = get16(p + 2);
        d->rects_left = out->nrects;
        if (d->rects_left == 0)
            s2c_update_end(st, out);
        else
            d->state = ST_RECT;
        return 4;
    case RFB_S2C_COLOUR_MAP:
        if (n < 6)
            return RFB_NEED;
        out->kind = RFBMSG_HEAD;
        out->len = 6 + 6 * (uint64_t)get16(p + 4);
        start_skip(st, d, out->len - 6, RFBMSG_DATA, AFTER_MSG, out);
        return 6;
    case RFB_S2C_BELL:
        return whole(d, n, 1, out);
    case RFB_S2C_CUT_TEXT:
        return cut_head(st, d, p, n, st->enc_fwd_ever & BIT(B_EXT_CLIP), out);
    case RFB_S2C_END_CU:
        if (!(st->enc_fwd_ever & BIT(B_CU)))
            return bad(st, "EndOfContinuousUpdates without ContinuousUpdates");
        st->cu_confirmed = true;
        return whole(d, n, 1, out);
    case RFB_S2C_FENCE:
        if (!(st->enc_fwd_ever & BIT(B_FENCE)))
            return bad(st, "ServerFence without the Fence pseudo-encoding");
        r = fence(st, d, p, n, out);
        st->fence_confirmed |= r > 0;
        return r;
    case RFB_S2C_XVP:
        if (!(st->enc_fwd_ever & BIT(B_XVP)))
            return bad(st, "xvp message without the xvp pseudo-encoding");
        return whole(d, n, 4, out);
    case RFB_S2C_QEMU:
        if (n < 2)
            return RFB_NEED;
        out->sub = p[1];
        if (p[1] != RFB_QEMU_AUDIO)
            return bad(st, "QEMU server message with subtype %u", p[1]);
        return qemu_audio(st, d, p, n, out);
    default:
        return bad(st, "unknown server message type %u", t);
    }
}

/* The next unit server -> client, by state. */
static int s2c_unit(struct rfbmsg_state *st, const uint8_t *p, size_t n, struct rfbmsg *out)
{
    switch (st->s2c.state) {
    case ST_MSG:  return s2c_msg(st, p, n, out);
    case ST_RECT: return s2c_rect(st, p, n, out);
    case ST_SUB:  return s2c_sub(st, p, n, out);
    case ST_TILE: return s2c_tile(st, p, n, out);
    case ST_SKIP: return do_skip(st, &st->s2c, n, out);
    }
    return bad(st, "internal: bad state");
}

/* What rfbmsg_s2c and rfbmsg_c2s share around the unit parser of their
 * direction: a failed direction stays failed, a pending SetEncodings is
 * committed first, and *out carries only the type unless a span came. */
static inline int frame(struct rfbmsg_state *st, struct rfbmsg_dir *d,
                        int (*unit)(struct rfbmsg_state *, const uint8_t *, size_t,
                                    struct rfbmsg *),
                        const uint8_t *p, size_t n, struct rfbmsg *out)
{
    memset(out, 0, sizeof *out);
    if (d->failed)
        return RFB_BAD;
    if (n == 0)
        return RFB_NEED;
    commit_pending(st);
    out->type = d->type;
    int r = unit(st, p, n, out);
    if (r == RFB_BAD)
        d->failed = true;
    if (r <= 0) {
        uint8_t t = out->type;
        memset(out, 0, sizeof *out);
        out->type = t;
    }
    return r;
}

int rfbmsg_s2c(struct rfbmsg_state *st, const uint8_t *p, size_t n, struct rfbmsg *out)
{
    return frame(st, &st->s2c, s2c_unit, p, n, out);
}

/* ------------------------------------------------------- client -> server */

static int c2s_set_encodings(struct rfbmsg_state *st, const uint8_t *p, size_t n,
                             struct rfbmsg *out)
{
    if (n < 4)
        return RFB_NEED;
    size_t cnt = get16(p + 2);
    if (cnt > RFBMSG_MAX_ENCODINGS)
        return bad(st, "SetEncodings with %zu encodings (at most %d)", cnt,
                   RFBMSG_MAX_ENCODINGS);
    size_t len = 4 + 4 * cnt;
    if (n < len)
        return RFB_NEED;
    uint32_t mask = 0;
    for (size_t i = 0; i < cnt; i++) {
        int b = enc_bit(gets32(p + 4 + 4 * i));
        if (b >= 0)
            mask |= BIT(b);
    }
    st->enc_req = mask;
    st->enc_req_ever |= mask;
    /* Forwarded unchanged unless rfbmsg_filter_encodings() comes first. */
    st->enc_pending = mask;
    st->enc_pending_set = true;
    return whole(&st->c2s, n, len, out);
}

static int c2s_msg(struct rfbmsg_state *st, const uint8_t *p, size_t n, struct rfbmsg *out)
{
    struct rfbmsg_dir *d = &st->c2s;
    uint8_t t = p[0];
    d->type = t;
    out->type = t;
    switch (t) {
    case RFB_C2S_SET_PIXEL_FORMAT: {
        if (n < 20)
            return RFB_NEED;
        struct rfbmsg_pf pf;
        if (rfbmsg_pf_parse(p + 4, &pf) != 0)
            return bad(st, "SetPixelFormat with %u bits per pixel", p[4]);
        /* The server switches when it reads this; the update it may be
         * sending now (the one the viewer waits for) still uses the old
         * format, as TigerVNC's pipelining assumes. */
        if (rfbmsg_in_update(st)) {
            st->pf_next = pf;
            st->pf_pending = true;
        } else {
            pf_apply(st, &pf);
            st->pf_pending = false;
        }
        return whole(d, n, 20, out);
    }
    case RFB_C2S_SET_ENCODINGS:
        return c2s_set_encodings(st, p, n, out);
    case RFB_C2S_FB_UPDATE_REQ:
        return whole(d, n, 10, out);
    case RFB_C2S_KEY:
        return whole(d, n, 8, out);
    case RFB_C2S_POINTER:
        return whole(d, n, 6, out);
    case RFB_C2S_CUT_TEXT:
        return cut_head(st, d, p, n,
                        (st->enc_req_ever | st->enc_fwd_ever) & BIT(B_EXT_CLIP), out);
    case RFB_C2S_ENABLE_CU:
        if (!st->cu_confirmed)
            return bad(st, "EnableContinuousUpdates but the server never confirmed them");
        return whole(d, n, 10, out);
    case RFB_C2S_FENCE:
        if (!st->fence_confirmed)
            return bad(st, "ClientFence but the server never sent a fence");
        return fence(st, d, p, n, out);
    case RFB_C2S_XVP:
        if (!(st->enc_req_ever & BIT(B_XVP)))
            return bad(st, "xvp message without the xvp pseudo-encoding");
        return whole(d, n, 4, out);
    case RFB_C2S_SET_DESKTOP_SIZE:
        if (!(st->enc_req_ever & BIT(B_EXT_DESKTOP)))
            return bad(st, "SetDesktopSize without ExtendedDesktopSize");
        if (n < 8)
            return RFB_NEED;
        return whole(d, n, 8 + 16u * p[6], out);
    case RFB_C2S_QEMU:
        if (n < 2)
            return RFB_NEED;
        out->sub = p[1];
        switch (p[1]) {
        case RFB_QEMU_EXT_KEY:
            return whole(d, n, 12, out);
        case RFB_QEMU_AUDIO:
            return qemu_audio(st, d, p, n, out);
        default:
            return bad(st, "QEMU client message with subtype %u", p[1]);
        }
    default:
        return bad(st, "unknown client message type %u", t);
    }
}

/* The next unit client -> server: only messages and their cut-text bodies. */
static int c2s_unit(struct rfbmsg_state *st, const uint8_t *p, size_t n, struct rfbmsg *out)
{
    switch (st->c2s.state) {
    case ST_MSG:  return c2s_msg(st, p, n, out);
    case ST_SKIP: return do_skip(st, &st->c2s, n, out);
    }
    return bad(st, "internal: bad state");
}

int rfbmsg_c2s(struct rfbmsg_state *st, const uint8_t *p, size_t n, struct rfbmsg *out)
{
    return frame(st, &st->c2s, c2s_unit, p, n, out);
}
