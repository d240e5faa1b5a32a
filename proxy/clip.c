/* proxy/clip.c — see clip.h.  No I/O; zlib does the (de)compression. */
#include "proxy/clip.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "proxy/rfb.h"

#define WHY(...) do { if (why && whylen) snprintf(why, whylen, __VA_ARGS__); } while (0)

/* Output inflated after the text only to keep a continued stream in step;
 * beyond this the stream is abandoned instead. */
#define DRAIN_MAX (2u * CLIP_TEXT_HARD_MAX)

/* ---------------------------------------------------------------- parsing */

int clip_parse(const uint8_t *payload, size_t n, struct clip_msg *m, char *why, size_t whylen)
{
    memset(m, 0, sizeof *m);
    if (n < 4) {
        WHY("extended clipboard payload of %zu bytes", n);
        return CLIP_BAD;
    }
    m->flags = rfb_get_u32(payload);
    m->formats = m->flags & CLIP_FMT_MASK;
    if (m->flags & CLIP_ACT_CAPS) {
        m->action = CLIP_CAPS;
        m->actions = m->flags & CLIP_ACT_MASK;
        size_t off = 4;
        for (unsigned i = 0; i < 16; i++) {
            if (!(m->formats & (1u << i)))
                continue;
            if (n < off + 4) {
                WHY("clipboard caps truncated (%zu bytes for formats 0x%04x)", n, m->formats);
                return CLIP_BAD;
            }
            m->caps_size[i] = rfb_get_u32(payload + off);
            off += 4;
        }
        return CLIP_OK;
    }
    switch (m->flags & CLIP_ACT_MASK) {
    case CLIP_ACT_REQUEST: m->action = CLIP_REQUEST; break;
    case CLIP_ACT_PEEK:    m->action = CLIP_PEEK; break;
    case CLIP_ACT_NOTIFY:  m->action = CLIP_NOTIFY; break;
    case CLIP_ACT_PROVIDE:
        m->action = CLIP_PROVIDE;
        m->zdata = payload + 4;
        m->zlen = n - 4;
        break;
    default:
        WHY("clipboard message with action bits 0x%08x", m->flags & CLIP_ACT_MASK);
        return CLIP_BAD;
    }
    return CLIP_OK;
}

/* -------------------------------------------------------------- inflating */

void clip_inflater_init(struct clip_inflater *zi)
{
    zi->cont = NULL;
}

static void zfree_stream(z_stream *z)
{
    if (z) {
        inflateEnd(z);
        free(z);
    }
}

void clip_inflater_free(struct clip_inflater *zi)
{
    zfree_stream(zi->cont);
    zi->cont = NULL;
}

/* Inflate up to want bytes into buf from z's pending input.  Returns the
 * bytes produced (fewer when the input ran out or the stream ended: *ended),
 * or -1 on corrupt data. */
static long zread(z_stream *z, uint8_t *buf, size_t want, bool *ended)
{
    size_t got = 0;
    while (got < want && !*ended) {
        z->next_out = buf + got;
        z->avail_out = (uInt)(want - got);
        int r = inflate(z, Z_SYNC_FLUSH);
        size_t made = (want - got) - z->avail_out;
        got += made;
        if (r == Z_STREAM_END) {
            *ended = true;
            break;
        }
        if (r == Z_BUF_ERROR)            /* no progress possible: input used up */
            break;
        if (r != Z_OK)
            return -1;
        if (made == 0 && z->avail_in == 0)
            break;
    }
    return (long)got;
}

static int corrupt(const z_stream *z, char *why, size_t whylen)
{
    WHY("corrupt clipboard data (%s)", z->msg ? z->msg : "zlib error");
    return CLIP_BAD;
}

static int too_big(uint32_t size, size_t max, size_t *outlen, char *why, size_t whylen)
{
    *outlen = size;
    WHY("clipboard text of %u bytes over the %zu-byte limit", size, max);
    return CLIP_TOO_BIG;
}

/* Read the text out of one provide's data with stream z.  *ended: the zlib
 * stream finished; *drained: all the input was consumed (so a continued
 * stream is still in step). */
static int run(z_stream *z, const uint8_t *in, size_t inlen, size_t max, uint8_t *out,
               size_t *outlen, bool *ended, bool *drained, char *why, size_t whylen)
{
    uint8_t hdr[4];
    long g;
    *drained = false;
    z->next_in = (Bytef *)(uintptr_t)in;
    z->avail_in = (uInt)inlen;
    g = zread(z, hdr, 4, ended);
    if (g < 0)
        return corrupt(z, why, whylen);
    if (g < 4) {
        WHY("clipboard data truncated before the text size");
        return CLIP_BAD;
    }
    uint32_t size = rfb_get_u32(hdr);
    if ((uint64_t)size > (uint64_t)max + 1)
        return too_big(size, max, outlen, why, whylen);
    size_t take = size < max ? size : max;
    g = zread(z, out, take, ended);
    if (g < 0)
        return corrupt(z, why, whylen);
    if ((size_t)g < take) {
        WHY("clipboard text truncated (%ld of %u bytes)", g, size);
        return CLIP_BAD;
    }
    if (size > take) {              /* size == max + 1: the last byte must be the NUL */
        uint8_t c = 1;
        g = zread(z, &c, 1, ended);
        if (g < 0)
            return corrupt(z, why, whylen);
        if (g < 1) {
            WHY("clipboard text truncated (%zu of %u bytes)", take, size);
            return CLIP_BAD;
        }
        if (c != 0)
            return too_big(size, max, outlen, why, whylen);
    }
    const uint8_t *nul = memchr(out, 0, take);
    *outlen = nul ? (size_t)(nul - out) : take;

    /* Consume the rest (other formats) so a continued stream stays in step. */
    uint8_t scratch[4096];
    size_t total = 0;
    while (!*ended && z->avail_in > 0 && total <= DRAIN_MAX) {
        g = zread(z, scratch, sizeof scratch, ended);
        if (g <= 0)
            break;
        total += (size_t)g;
    }
    *drained = *ended || z->avail_in == 0;
    return CLIP_OK;
}

/* Whether p starts with a plausible zlib header (deflate, window <= 32K,
 * no preset dictionary).  A flushed deflate stream never continues with
 * such a byte pair: after a flush the next block starts byte-aligned, and a
 * stored block header with these bits would need non-zero padding. */
static bool zlib_header(const uint8_t *p, size_t n)
{
    return n >= 2 && (p[0] & 0x0f) == 8 && (p[0] >> 4) <= 7 &&
           (((unsigned)p[0] << 8) | p[1]) % 31 == 0 && !(p[1] & 0x20);
}

int clip_provide_text(struct clip_inflater *zi, const struct clip_msg *m, size_t max,
                      uint8_t *out, size_t *outlen, char *why, size_t whylen)
{
    bool ended = false, drained = false;
    int r;
    *outlen = 0;
    if (m->action != CLIP_PROVIDE) {
        WHY("not a clipboard provide");
        return CLIP_BAD;
    }
    if (max > CLIP_TEXT_HARD_MAX)
        max = CLIP_TEXT_HARD_MAX;
    if (!(m->formats & CLIP_FMT_TEXT)) {
        clip_inflater_free(zi);      /* not inflated: a continued stream is lost */
        return CLIP_OK;
    }
    if (m->zlen > UINT_MAX) {
        WHY("clipboard data of %zu bytes", m->zlen);
        return CLIP_BAD;
    }
    if (zlib_header(m->zdata, m->zlen)) {
        z_stream *z = calloc(1, sizeof *z);
        if (!z || inflateInit(z) != Z_OK) {
            free(z);
            WHY("out of memory for the clipboard inflater");
            return CLIP_BAD;
        }
        r = run(z, m->zdata, m->zlen, max, out, outlen, &ended, &drained, why, whylen);
        if (r != CLIP_BAD || !zi->cont) {
            /* A new stream from this peer: it replaces any older one, and is
             * kept open only if it may be continued by the next provide. */
            clip_inflater_free(zi);
            if (r == CLIP_OK && !ended && drained)
                zi->cont = z;
            else
                zfree_stream(z);
            return r;
        }
        zfree_stream(z);             /* try it as a continuation below */
        *outlen = 0;
        ended = false;
    }
    if (!zi->cont) {
        WHY("clipboard data is not a zlib stream");
        return CLIP_BAD;
    }
    r = run(zi->cont, m->zdata, m->zlen, max, out, outlen, &ended, &drained, why, whylen);
    if (r != CLIP_OK || ended || !drained)
        clip_inflater_free(zi);
    return r;
}

/* --------------------------------------------------------------- building */

static void put_head(uint8_t *out, uint8_t msgtype, int32_t len)
{
    out[0] = msgtype;
    out[1] = out[2] = out[3] = 0;
    rfb_put_u32(out + 4, (uint32_t)len);
}

size_t clip_build_caps(uint8_t msgtype, uint32_t actions, uint32_t text_max,
                       uint8_t *out, size_t cap)
{
    if (cap < 16)
        return 0;
    put_head(out, msgtype, -8);
    rfb_put_u32(out + 8, CLIP_FMT_TEXT | CLIP_ACT_CAPS | (actions & CLIP_ACT_MASK));
    rfb_put_u32(out + 12, text_max);
    return 16;
}

size_t clip_build_flags(uint8_t msgtype, uint32_t flags, uint8_t *out, size_t cap)
{
    if (cap < 12)
        return 0;
    put_head(out, msgtype, -4);
    rfb_put_u32(out + 8, flags);
    return 12;
}

size_t clip_provide_bound(size_t len)
{
    return 12 + (size_t)compressBound((uLong)len + 5) + 64;
}

/* Deflate p[0..n) into z's output: all of it, and with Z_FINISH the end
 * of the stream. */
static bool zfeed(z_stream *z, const uint8_t *p, size_t n, int flush)
{
    z->next_in = (Bytef *)(uintptr_t)p;
    z->avail_in = (uInt)n;
    int r = deflate(z, flush);
    return flush == Z_FINISH ? r == Z_STREAM_END : r == Z_OK && z->avail_in == 0;
}

size_t clip_build_provide(uint8_t msgtype, const uint8_t *text, size_t len,
                          uint8_t *out, size_t cap)
{
    const uint8_t *nul = len ? memchr(text, 0, len) : NULL;
    if (nul)
        len = (size_t)(nul - text);
    if (len > CLIP_TEXT_HARD_MAX || cap < 12)
        return 0;
    size_t room = cap - 12;
    if (room > UINT_MAX)
        room = UINT_MAX;
    uint8_t hdr[4], zero = 0;
    rfb_put_u32(hdr, (uint32_t)len + 1);

    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit(&z, Z_DEFAULT_COMPRESSION) != Z_OK)
        return 0;
    z.next_out = out + 12;
    z.avail_out = (uInt)room;
    bool ok = zfeed(&z, hdr, 4, Z_NO_FLUSH) && (len == 0 || zfeed(&z, text, len, Z_NO_FLUSH)) &&
              zfeed(&z, &zero, 1, Z_FINISH);
    size_t zlen = (size_t)z.total_out;
    deflateEnd(&z);
    if (!ok || zlen > (size_t)INT32_MAX - 4)
        return 0;
    put_head(out, msgtype, -(int32_t)(4 + zlen));
    rfb_put_u32(out + 8, CLIP_FMT_TEXT | CLIP_ACT_PROVIDE);
    return 12 + zlen;
}

size_t clip_build_legacy(uint8_t msgtype, const uint8_t *text, size_t len,
                         uint8_t *out, size_t cap)
{
    if (len > INT32_MAX || cap < 8 || cap - 8 < len)
        return 0;
    put_head(out, msgtype, (int32_t)len);
    if (len && text != out + 8)
        memcpy(out + 8, text, len);
    return 8 + len;
}

/* ---------------------------------------------------------- conversions */

#define BAD_CP UINT32_MAX

/* Decode one UTF-8 sequence at p (n >= 1 bytes).  Returns the bytes used:
 * the whole sequence, or for a malformed one its maximal valid prefix (at
 * least 1), with *cp = BAD_CP (Unicode 3.9 "maximal subpart" practice). */
static size_t utf8_next(const uint8_t *p, size_t n, uint32_t *cp)
{
    uint8_t b = p[0];
    size_t need;
    uint8_t lo = 0x80, hi = 0xbf;
    uint32_t v;
    if (b < 0x80) {
        *cp = b;
        return 1;
    }
    if (b >= 0xc2 && b <= 0xdf) {
        need = 1; v = b & 0x1fu;
    } else if (b >= 0xe0 && b <= 0xef) {
        need = 2; v = b & 0x0fu;
        if (b == 0xe0) lo = 0xa0;            /* no overlongs */
        if (b == 0xed) hi = 0x9f;            /* no surrogates */
    } else if (b >= 0xf0 && b <= 0xf4) {
        need = 3; v = b & 0x07u;
        if (b == 0xf0) lo = 0x90;
        if (b == 0xf4) hi = 0x8f;            /* <= U+10FFFF */
    } else {
        *cp = BAD_CP;
        return 1;
    }
    for (size_t i = 1; i <= need; i++) {
        if (i >= n || p[i] < lo || p[i] > hi) {
            *cp = BAD_CP;
            return i;
        }
        lo = 0x80;
        hi = 0xbf;
        v = v << 6 | (p[i] & 0x3fu);
    }
    *cp = v;
    return need + 1;
}

size_t clip_utf8_to_latin1(const uint8_t *in, size_t n, uint8_t *out)
{
    size_t o = 0, i = 0;
    while (i < n && in[i] != 0) {
        if (in[i] == '\r') {
            out[o++] = '\n';
            i++;
            if (i < n && in[i] == '\n')
                i++;
            continue;
        }
        uint32_t cp;
        i += utf8_next(in + i, n - i, &cp);
        out[o++] = cp <= 0xff ? (uint8_t)cp : (uint8_t)'?';
    }
    return o;
}

size_t clip_latin1_to_utf8(const uint8_t *in, size_t n, uint8_t *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n && in[i] != 0; i++) {
        uint8_t b = in[i];
        if (b == '\r' || b == '\n') {
            out[o++] = '\r';
            out[o++] = '\n';
            if (b == '\r' && i + 1 < n && in[i + 1] == '\n')
                i++;
        } else if (b < 0x80) {
            out[o++] = b;
        } else {
            out[o++] = (uint8_t)(0xc0 | b >> 6);
            out[o++] = (uint8_t)(0x80 | (b & 0x3f));
        }
    }
    return o;
}

bool clip_utf8_valid(const uint8_t *in, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        i += utf8_next(in + i, n - i, &cp);
        if (cp == BAD_CP)
            return false;
    }
    return true;
}

const char *clip_event_format(const struct clip_event *ev, char *out, size_t outsz)
{
    const char *dir = ev->to_vm ? "to-vm" : "from-vm";
    if (ev->kind == CLIP_EV_OFFER) {
        snprintf(out, outsz, "clipboard-offer dir=%s result=dropped reason=\"%s\"", dir,
                 ev->reason ? ev->reason : "");
        return out;
    }
    char hex[2 * 32 + 1] = "-";
    if (ev->hashed)
        for (int i = 0; i < 32; i++)
            snprintf(hex + 2 * i, 3, "%02x", ev->sha256[i]);
    int n = snprintf(out, outsz, "clipboard dir=%s bytes=%llu type=%s sha256=%s result=%s", dir,
                     (unsigned long long)ev->bytes, ev->type ? ev->type : "-", hex,
                     ev->reason ? "dropped" : "allowed");
    if (ev->reason && n > 0 && (size_t)n < outsz)
        snprintf(out + n, outsz - (size_t)n, " reason=\"%s\"", ev->reason);
    return out;
}
