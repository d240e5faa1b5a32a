/* Unit tests for proxy/clip.c: Extended Clipboard parsing, both zlib
 * stream styles (QEMU finishes its streams; TigerVNC and noVNC only flush)
 * and a peer that keeps one stream across messages, size caps, message
 * building, and the Latin-1 <-> UTF-8 conversions for legacy cut text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <zlib.h>

#include "proxy/clip.h"
#include "proxy/rfbmsg.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------------------ helpers */

/* The plain (uncompressed) provide contents for text: U32 size, text, NUL. */
static size_t text_plain(const void *text, size_t len, uint8_t *out)
{
    rfb_put_u32(out, (uint32_t)len + 1);
    memcpy(out + 4, text, len);
    out[4 + len] = 0;
    return len + 5;
}

/* Deflate in[0..n) with stream z and the given flush; returns bytes out. */
static size_t zput(z_stream *z, const uint8_t *in, size_t n, int flush, uint8_t *out, size_t cap)
{
    z->next_in = (Bytef *)(uintptr_t)in;
    z->avail_in = (uInt)n;
    z->next_out = out;
    z->avail_out = (uInt)cap;
    int r = deflate(z, flush);
    assert_true(r == Z_OK || r == Z_STREAM_END);
    assert_int_equal(z->avail_in, 0);
    return cap - z->avail_out;
}

/* A provide payload (flags + zlib data) for plain[0..n), as a fresh stream
 * with the given final flush (Z_FINISH: QEMU; Z_SYNC_FLUSH: TigerVNC;
 * Z_FULL_FLUSH: noVNC). */
static size_t provide_payload(uint32_t formats, const uint8_t *plain, size_t n, int flush,
                              uint8_t *out, size_t cap)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    assert_int_equal(deflateInit(&z, 6), Z_OK);
    rfb_put_u32(out, formats | CLIP_ACT_PROVIDE);
    size_t zl = zput(&z, plain, n, flush, out + 4, cap - 4);
    deflateEnd(&z);
    return 4 + zl;
}

static int get_text(struct clip_inflater *zi, const uint8_t *payload, size_t n, size_t max,
                    uint8_t *out, size_t *outlen)
{
    struct clip_msg m;
    char why[128];
    assert_int_equal(clip_parse(payload, n, &m, why, sizeof why), CLIP_OK);
    assert_int_equal(m.action, CLIP_PROVIDE);
    return clip_provide_text(zi, &m, max, out, outlen, why, sizeof why);
}

static uint8_t big_a[CLIP_TEXT_HARD_MAX + 64], big_b[CLIP_TEXT_HARD_MAX + 64],
    big_c[2 * CLIP_TEXT_HARD_MAX + 1024];

/* -------------------------------------------------------------------- parse */

static void test_parse_caps(void **state)
{
    (void)state;
    struct clip_msg m;
    char why[128];
    /* QEMU 7.2's caps, as seen on the wire (payload after the 8-byte head) */
    static const uint8_t qemu[] = { 0x1b, 0, 0, 1, 0, 0, 0, 0 };
    assert_int_equal(clip_parse(qemu, sizeof qemu, &m, why, sizeof why), CLIP_OK);
    assert_int_equal(m.action, CLIP_CAPS);
    assert_int_equal(m.formats, CLIP_FMT_TEXT);
    assert_int_equal(m.actions, CLIP_ACT_CAPS | CLIP_ACT_REQUEST | CLIP_ACT_NOTIFY |
                                    CLIP_ACT_PROVIDE);
    assert_int_equal(m.caps_size[0], 0);
    /* Xvnc / TigerVNC / noVNC: with peek, text up to 256 KiB */
    static const uint8_t xvnc[] = { 0x1f, 0, 0, 1, 0, 4, 0, 0 };
    assert_int_equal(clip_parse(xvnc, sizeof xvnc, &m, why, sizeof why), CLIP_OK);
    assert_true(m.actions & CLIP_ACT_PEEK);
    assert_int_equal(m.caps_size[0], 262144);
    /* text + html + files: three sizes, in bit order */
    static const uint8_t multi[] = { 0x1f, 0, 0, 0x15, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 9 };
    assert_int_equal(clip_parse(multi, sizeof multi, &m, why, sizeof why), CLIP_OK);
    assert_int_equal(m.formats, CLIP_FMT_TEXT | CLIP_FMT_HTML | CLIP_FMT_FILES);
    assert_int_equal(m.caps_size[0], 256);
    assert_int_equal(m.caps_size[2], 512);
    assert_int_equal(m.caps_size[4], 768);
    assert_int_equal(m.caps_size[1], 0);
    /* one size short */
    assert_int_equal(clip_parse(multi, 15, &m, why, sizeof why), CLIP_BAD);
    assert_non_null(strstr(why, "caps truncated"));
    assert_int_equal(clip_parse(qemu, 7, &m, why, sizeof why), CLIP_BAD);
    /* caps with no format at all: just the flags */
    static const uint8_t none[] = { 0x01, 0, 0, 0 };
    assert_int_equal(clip_parse(none, 4, &m, why, sizeof why), CLIP_OK);
    assert_int_equal(m.action, CLIP_CAPS);
    assert_int_equal(m.formats, 0);
}

static void test_parse_actions(void **state)
{
    (void)state;
    struct clip_msg m;
    char why[128];
    static const struct { uint8_t p[4]; int action; uint32_t formats; } ok[] = {
        { { 0x02, 0, 0, 1 }, CLIP_REQUEST, CLIP_FMT_TEXT },
        { { 0x04, 0, 0, 0 }, CLIP_PEEK, 0 },
        { { 0x08, 0, 0, 1 }, CLIP_NOTIFY, CLIP_FMT_TEXT },
        { { 0x08, 0, 0, 0 }, CLIP_NOTIFY, 0 },               /* clipboard emptied */
        { { 0x08, 0xff, 0, 0x05 }, CLIP_NOTIFY, CLIP_FMT_TEXT | CLIP_FMT_HTML },
        { { 0x10, 0, 0, 1 }, CLIP_PROVIDE, CLIP_FMT_TEXT },
        { { 0xe8, 0, 0, 1 }, CLIP_NOTIFY, CLIP_FMT_TEXT },   /* reserved bits 29-31 */
    };
    for (size_t i = 0; i < N(ok); i++) {
        assert_int_equal(clip_parse(ok[i].p, 4, &m, why, sizeof why), CLIP_OK);
        assert_int_equal(m.action, ok[i].action);
        assert_int_equal(m.formats, ok[i].formats);
    }
    /* a notify with trailing bytes is still a notify */
    static const uint8_t trailing[] = { 0x08, 0, 0, 1, 9, 9 };
    assert_int_equal(clip_parse(trailing, 6, &m, why, sizeof why), CLIP_OK);
    /* provide: the zlib data follows */
    static const uint8_t prov[] = { 0x10, 0, 0, 1, 0x78, 0x9c, 1, 2 };
    assert_int_equal(clip_parse(prov, 8, &m, why, sizeof why), CLIP_OK);
    assert_ptr_equal(m.zdata, prov + 4);
    assert_int_equal(m.zlen, 4);
    /* no action, two actions, too short */
    static const uint8_t bad[][4] = {
        { 0, 0, 0, 1 }, { 0x06, 0, 0, 1 }, { 0x18, 0, 0, 1 }, { 0x0a, 0, 0, 0 },
        { 0x1e, 0, 0, 1 }, { 0x20, 0, 0, 1 },
    };
    for (size_t i = 0; i < N(bad); i++) {
        assert_int_equal(clip_parse(bad[i], 4, &m, why, sizeof why), CLIP_BAD);
        assert_non_null(strstr(why, "action bits"));
    }
    for (size_t n = 0; n < 4; n++)
        assert_int_equal(clip_parse(prov, n, &m, why, sizeof why), CLIP_BAD);
    /* why may be NULL */
    assert_int_equal(clip_parse(bad[0], 4, &m, NULL, 0), CLIP_BAD);
}

/* ------------------------------------------------------------- inflating */

static void test_provide_qemu_style(void **state)
{
    (void)state;
    static const char text[] = "h\xc3\xa9llo from A";
    uint8_t plain[64], payload[256], out[256];
    size_t outlen;
    size_t pl = text_plain(text, strlen(text), plain);
    assert_int_equal(pl, 4 + 14);
    assert_int_equal(plain[3], 0x0e);          /* as seen from QEMU: 00 00 00 0e */
    size_t n = provide_payload(CLIP_FMT_TEXT, plain, pl, Z_FINISH, payload, sizeof payload);
    assert_int_equal(payload[4], 0x78);        /* a fresh zlib header */
    struct clip_inflater zi;
    clip_inflater_init(&zi);
    assert_int_equal(get_text(&zi, payload, n, 1000, out, &outlen), CLIP_OK);
    assert_int_equal(outlen, strlen(text));
    assert_memory_equal(out, text, outlen);
    assert_null(zi.cont);                      /* the stream ended: nothing kept */
    /* every provide is its own stream: the same bytes again work */
    assert_int_equal(get_text(&zi, payload, n, 1000, out, &outlen), CLIP_OK);
    assert_int_equal(outlen, strlen(text));
    clip_inflater_free(&zi);
}

static void test_provide_flush_style(void **state)
{
    (void)state;
    static const int flushes[] = { Z_SYNC_FLUSH, Z_FULL_FLUSH };
    static const char *texts[] = { "one", "", "x\r\ny\r\n", "\xe2\x82\xac 5" };
    uint8_t plain[64], payload[256], out[256];
    size_t outlen;
    for (size_t f = 0; f < N(flushes); f++) {
        struct clip_inflater zi = { 0 };
        for (size_t t = 0; t < N(texts); t++) {
            size_t pl = text_plain(texts[t], strlen(texts[t]), plain);
            size_t n = provide_payload(CLIP_FMT_TEXT, plain, pl, flushes[f], payload,
                                       sizeof payload);
            /* flushed, not finished: ends in 00 00 ff ff */
            assert_memory_equal(payload + n - 4, "\x00\x00\xff\xff", 4);
            assert_int_equal(get_text(&zi, payload, n, 100, out, &outlen), CLIP_OK);
            assert_int_equal(outlen, strlen(texts[t]));
            assert_memory_equal(out, texts[t], outlen);
        }
        clip_inflater_free(&zi);
        assert_null(zi.cont);
        clip_inflater_free(&zi);              /* idempotent */
    }
}

/* A peer that keeps one deflate stream for all its provides, flushing after
 * each: the second and later provides have no zlib header. */
static void test_provide_persistent_stream(void **state)
{
    (void)state;
    static const char *texts[] = { "first", "second text", "", "third \xc3\xbc", "fourth" };
    uint8_t plain[64], payloads[N(texts)][256], out[256];
    size_t lens[N(texts)], outlen;
    z_stream z;
    memset(&z, 0, sizeof z);
    assert_int_equal(deflateInit(&z, 6), Z_OK);
    for (size_t i = 0; i < N(texts); i++) {
        size_t pl = text_plain(texts[i], strlen(texts[i]), plain);
        rfb_put_u32(payloads[i], CLIP_FMT_TEXT | CLIP_ACT_PROVIDE);
        lens[i] = 4 + zput(&z, plain, pl, Z_SYNC_FLUSH, payloads[i] + 4, sizeof payloads[i] - 4);
    }
    deflateEnd(&z);
    assert_int_equal(payloads[0][4], 0x78);
    assert_true(payloads[1][4] != 0x78);

    struct clip_inflater zi = { 0 };
    for (size_t i = 0; i < N(texts); i++) {
        assert_int_equal(get_text(&zi, payloads[i], lens[i], 100, out, &outlen), CLIP_OK);
        assert_int_equal(outlen, strlen(texts[i]));
        assert_memory_equal(out, texts[i], outlen);
        assert_non_null(zi.cont);
    }
    /* a new fresh stream from the same peer replaces the old one */
    size_t pl = text_plain("fresh", 5, plain);
    uint8_t fresh[256];
    size_t fl = provide_payload(CLIP_FMT_TEXT, plain, pl, Z_FINISH, fresh, sizeof fresh);
    assert_int_equal(get_text(&zi, fresh, fl, 100, out, &outlen), CLIP_OK);
    assert_memory_equal(out, "fresh", 5);
    assert_null(zi.cont);
    /* and a continuation with no stream to continue is refused */
    char why[128];
    struct clip_msg m;
    assert_int_equal(clip_parse(payloads[1], lens[1], &m, why, sizeof why), CLIP_OK);
    assert_int_equal(clip_provide_text(&zi, &m, 100, out, &outlen, why, sizeof why), CLIP_BAD);
    assert_non_null(strstr(why, "not a zlib stream"));
    /* a message missed in the middle breaks the stream: refused, then the
     * peer's next fresh stream works again */
    struct clip_inflater z2 = { 0 };
    assert_int_equal(get_text(&z2, payloads[0], lens[0], 100, out, &outlen), CLIP_OK);
    int r = get_text(&z2, payloads[2], lens[2], 100, out, &outlen);
    if (r == CLIP_OK)      /* deflate may resync by luck; the text must then not be ours */
        assert_false(outlen == strlen(texts[1]) && !memcmp(out, texts[1], outlen));
    assert_int_equal(get_text(&z2, fresh, fl, 100, out, &outlen), CLIP_OK);
    clip_inflater_free(&z2);
    clip_inflater_free(&zi);
}

static void test_provide_caps(void **state)
{
    (void)state;
    struct clip_inflater zi = { 0 };
    size_t outlen, pl, n;
    int r;
    memset(big_a, 'a', sizeof big_a);
    /* exactly max: accepted; one more: too big (size reported) */
    for (int flush = 0; flush < 2; flush++) {
        int fl = flush ? Z_SYNC_FLUSH : Z_FINISH;
        pl = text_plain(big_a, 1000, big_b);
        n = provide_payload(CLIP_FMT_TEXT, big_b, pl, fl, big_c, sizeof big_c);
        assert_int_equal(get_text(&zi, big_c, n, 1000, big_b, &outlen), CLIP_OK);
        assert_int_equal(outlen, 1000);
        r = get_text(&zi, big_c, n, 999, big_b, &outlen);
        assert_int_equal(r, CLIP_TOO_BIG);
        assert_int_equal(outlen, 1001);
        /* the output buffer was only written up to max */
        memset(big_b, 0x5a, 16);
        assert_int_equal(get_text(&zi, big_c, n, 0, big_b, &outlen), CLIP_TOO_BIG);
        assert_int_equal(big_b[0], 0x5a);
    }
    /* text without its NUL: max bytes exactly is fine, max+1 is too big */
    rfb_put_u32(big_b, 1000);
    memcpy(big_b + 4, big_a, 1000);
    n = provide_payload(CLIP_FMT_TEXT, big_b, 1004, Z_FINISH, big_c, sizeof big_c);
    assert_int_equal(get_text(&zi, big_c, n, 1000, big_b, &outlen), CLIP_OK);
    assert_int_equal(outlen, 1000);
    rfb_put_u32(big_b, 1001);
    memcpy(big_b + 4, big_a, 1001);
    n = provide_payload(CLIP_FMT_TEXT, big_b, 1005, Z_FINISH, big_c, sizeof big_c);
    big_b[1000] = 0x5a;
    assert_int_equal(get_text(&zi, big_c, n, 1000, big_b, &outlen), CLIP_TOO_BIG);
    assert_int_equal(outlen, 1001);
    assert_int_equal(big_b[1000], 0x5a);      /* max bytes written, never more */
    /* size max+1 but the stream ends before the last (NUL) byte */
    rfb_put_u32(big_b, 1001);
    memcpy(big_b + 4, big_a, 1000);
    n = provide_payload(CLIP_FMT_TEXT, big_b, 1004, Z_FINISH, big_c, sizeof big_c);
    assert_int_equal(get_text(&zi, big_c, n, 1000, big_b, &outlen), CLIP_BAD);
    /* the hard limit: 1 MiB, whatever max the caller passes */
    pl = text_plain(big_a, CLIP_TEXT_HARD_MAX, big_b);
    n = provide_payload(CLIP_FMT_TEXT, big_b, pl, Z_FINISH, big_c, sizeof big_c);
    assert_int_equal(get_text(&zi, big_c, n, SIZE_MAX, big_b, &outlen), CLIP_OK);
    assert_int_equal(outlen, CLIP_TEXT_HARD_MAX);
    pl = text_plain(big_a, CLIP_TEXT_HARD_MAX + 1, big_b);
    n = provide_payload(CLIP_FMT_TEXT, big_b, pl, Z_FINISH, big_c, sizeof big_c);
    assert_int_equal(get_text(&zi, big_c, n, SIZE_MAX, big_b, &outlen), CLIP_TOO_BIG);
    /* a bomb: declares 4 GiB; refused after the size word */
    uint8_t hdr[4] = { 0xff, 0xff, 0xff, 0xff };
    n = provide_payload(CLIP_FMT_TEXT, hdr, 4, Z_SYNC_FLUSH, big_c, sizeof big_c);
    assert_int_equal(get_text(&zi, big_c, n, 256 * 1024, big_b, &outlen), CLIP_TOO_BIG);
    assert_int_equal(outlen, 0xffffffffu);
    /* a bomb that declares a small text and then 3 MiB of zeros (another
     * format): the text is returned, the stream is not kept */
    memset(big_b, 0, sizeof big_b);
    text_plain("ok", 2, big_b);
    rfb_put_u32(big_b + 7, 3 * CLIP_TEXT_HARD_MAX);
    static uint8_t zeros[3 * CLIP_TEXT_HARD_MAX + 11];
    memcpy(zeros, big_b, 11);
    n = provide_payload(CLIP_FMT_TEXT | CLIP_FMT_HTML, zeros, sizeof zeros, Z_SYNC_FLUSH, big_c,
                        sizeof big_c);
    assert_true(n < 10000);
    uint8_t small[16];
    assert_int_equal(get_text(&zi, big_c, n, sizeof small, small, &outlen), CLIP_OK);
    assert_int_equal(outlen, 2);
    assert_memory_equal(small, "ok", 2);
    assert_null(zi.cont);          /* too much to drain: no continuation kept */
    clip_inflater_free(&zi);
}

static void test_provide_malformed(void **state)
{
    (void)state;
    struct clip_inflater zi = { 0 };
    struct clip_msg m;
    char why[128];
    uint8_t plain[256], payload[512], out[256];
    size_t outlen, pl, n;

    /* not zlib at all */
    static const uint8_t junk[] = { 0x10, 0, 0, 1, 'h', 'e', 'l', 'l', 'o' };
    assert_int_equal(clip_parse(junk, sizeof junk, &m, why, sizeof why), CLIP_OK);
    assert_int_equal(clip_provide_text(&zi, &m, 100, out, &outlen, why, sizeof why), CLIP_BAD);
    /* no data */
    static const uint8_t empty[] = { 0x10, 0, 0, 1 };
    assert_int_equal(clip_parse(empty, 4, &m, why, sizeof why), CLIP_OK);
    assert_int_equal(clip_provide_text(&zi, &m, 100, out, &outlen, why, sizeof why), CLIP_BAD);
    /* only a zlib header */
    static const uint8_t hdr_only[] = { 0x10, 0, 0, 1, 0x78, 0x9c };
    assert_int_equal(clip_parse(hdr_only, 6, &m, why, sizeof why), CLIP_OK);
    assert_int_equal(clip_provide_text(&zi, &m, 100, out, &outlen, why, sizeof why), CLIP_BAD);
    assert_non_null(strstr(why, "truncated"));
    /* a preset dictionary is not a clipboard stream */
    static const uint8_t dict[] = { 0x10, 0, 0, 1, 0x78, 0xbb, 0, 0, 0, 1, 3, 0 };
    assert_int_equal(clip_parse(dict, sizeof dict, &m, why, sizeof why), CLIP_OK);
    assert_int_equal(clip_provide_text(&zi, &m, 100, out, &outlen, why, sizeof why), CLIP_BAD);
    /* text cut short: the size says 100, the stream holds 50 */
    rfb_put_u32(plain, 100);
    memset(plain + 4, 'x', 50);
    n = provide_payload(CLIP_FMT_TEXT, plain, 54, Z_FINISH, payload, sizeof payload);
    assert_int_equal(get_text(&zi, payload, n, 1000, out, &outlen), CLIP_BAD);
    /* stream cut short in the middle */
    pl = text_plain("some text that compresses", 25, plain);
    n = provide_payload(CLIP_FMT_TEXT, plain, pl, Z_FINISH, payload, sizeof payload);
    assert_int_equal(get_text(&zi, payload, 8, 1000, out, &outlen), CLIP_BAD);
    /* corrupt stream: flip bits after the header.  Never a crash and never
     * more than max bytes; most flips must be caught (adler32 or the deflate
     * structure).  Some are not: a flip that makes the stream look merely
     * unfinished is accepted, as flush-only peers (TigerVNC, noVNC) send. */
    size_t caught = 0, flips = 0;
    for (size_t i = 6; i < n; i++) {
        uint8_t save = payload[i];
        payload[i] ^= 0x5a;
        int r = get_text(&zi, payload, n, 1000, out, &outlen);
        assert_true(r == CLIP_BAD || r == CLIP_OK || r == CLIP_TOO_BIG);
        if (r == CLIP_OK)
            assert_true(outlen <= 1000);
        caught += r != CLIP_OK;
        flips++;
        payload[i] = save;
    }
    fprintf(stderr, "corrupt provides caught: %zu of %zu\n", caught, flips);
    assert_true(caught * 2 >= flips);
    clip_inflater_free(&zi);
    /* the adler32 trailer is checked on a finished stream */
    payload[n - 1] ^= 1;
    assert_int_equal(get_text(&zi, payload, n, 1000, out, &outlen), CLIP_BAD);
    payload[n - 1] ^= 1;
    /* not a provide */
    static const uint8_t notify[] = { 0x08, 0, 0, 1 };
    assert_int_equal(clip_parse(notify, 4, &m, why, sizeof why), CLIP_OK);
    assert_int_equal(clip_provide_text(&zi, &m, 100, out, &outlen, why, sizeof why), CLIP_BAD);
    /* no text format: nothing to extract, no error */
    pl = text_plain("<b>x</b>", 8, plain);
    n = provide_payload(CLIP_FMT_HTML, plain, pl, Z_FINISH, payload, sizeof payload);
    assert_int_equal(get_text(&zi, payload, n, 100, out, &outlen), CLIP_OK);
    assert_int_equal(outlen, 0);
    /* text with an embedded NUL is cut there; text without NUL is whole */
    pl = text_plain("ab\0cd", 5, plain);
    n = provide_payload(CLIP_FMT_TEXT, plain, pl, Z_FINISH, payload, sizeof payload);
    assert_int_equal(get_text(&zi, payload, n, 100, out, &outlen), CLIP_OK);
    assert_int_equal(outlen, 2);
    rfb_put_u32(plain, 3);
    memcpy(plain + 4, "abc", 3);
    n = provide_payload(CLIP_FMT_TEXT, plain, 7, Z_FINISH, payload, sizeof payload);
    assert_int_equal(get_text(&zi, payload, n, 100, out, &outlen), CLIP_OK);
    assert_int_equal(outlen, 3);
    /* size 0: empty */
    rfb_put_u32(plain, 0);
    n = provide_payload(CLIP_FMT_TEXT, plain, 4, Z_FINISH, payload, sizeof payload);
    assert_int_equal(get_text(&zi, payload, n, 100, out, &outlen), CLIP_OK);
    assert_int_equal(outlen, 0);
    clip_inflater_free(&zi);
}

/* text first, then other formats, over a kept stream: stays in step */
static void test_provide_other_formats(void **state)
{
    (void)state;
    uint8_t plain[256], payload[2][512], out[256];
    size_t len[2], outlen, pl;
    z_stream z;
    memset(&z, 0, sizeof z);
    assert_int_equal(deflateInit(&z, 6), Z_OK);
    for (int i = 0; i < 2; i++) {
        pl = text_plain(i ? "second" : "first", i ? 6 : 5, plain);
        pl += text_plain("{\\rtf1 x}", 9, plain + pl);
        pl += text_plain("<p>x</p>", 8, plain + pl);
        rfb_put_u32(payload[i], CLIP_FMT_TEXT | CLIP_FMT_RTF | CLIP_FMT_HTML | CLIP_ACT_PROVIDE);
        len[i] = 4 + zput(&z, plain, pl, Z_SYNC_FLUSH, payload[i] + 4, sizeof payload[i] - 4);
    }
    deflateEnd(&z);
    struct clip_inflater zi = { 0 };
    assert_int_equal(get_text(&zi, payload[0], len[0], 100, out, &outlen), CLIP_OK);
    assert_int_equal(outlen, 5);
    assert_int_equal(get_text(&zi, payload[1], len[1], 100, out, &outlen), CLIP_OK);
    assert_int_equal(outlen, 6);
    assert_memory_equal(out, "second", 6);
    clip_inflater_free(&zi);
}

/* ---------------------------------------------------------------- building */

static void test_build_messages(void **state)
{
    (void)state;
    uint8_t out[64];
    static const uint8_t caps[] = { 3, 0, 0, 0, 0xff, 0xff, 0xff, 0xf8,
                                    0x1b, 0, 0, 1, 0, 4, 0, 0 };
    assert_int_equal(clip_build_caps(3, CLIP_ACT_REQUEST | CLIP_ACT_NOTIFY | CLIP_ACT_PROVIDE,
                                     262144, out, sizeof out), 16);
    assert_memory_equal(out, caps, 16);
    assert_int_equal(clip_build_caps(6, 0xffffffffu, 0, out, sizeof out), 16);
    assert_int_equal(out[0], 6);
    assert_int_equal(rfb_get_u32(out + 8), 0x1f000001u);
    assert_int_equal(clip_build_caps(3, 0, 0, out, 15), 0);

    static const uint8_t notify[] = { 6, 0, 0, 0, 0xff, 0xff, 0xff, 0xfc, 0x08, 0, 0, 1 };
    assert_int_equal(clip_build_flags(6, CLIP_ACT_NOTIFY | CLIP_FMT_TEXT, out, sizeof out), 12);
    assert_memory_equal(out, notify, 12);
    assert_int_equal(clip_build_flags(6, CLIP_ACT_NOTIFY, out, 11), 0);

    static const uint8_t legacy[] = { 3, 0, 0, 0, 0, 0, 0, 5, 'h', 'e', 'l', 'l', 'o' };
    assert_int_equal(clip_build_legacy(3, (const uint8_t *)"hello", 5, out, sizeof out), 13);
    assert_memory_equal(out, legacy, 13);
    assert_int_equal(clip_build_legacy(3, (const uint8_t *)"hello", 5, out, 12), 0);
    assert_int_equal(clip_build_legacy(3, NULL, 0, out, 8), 8);
    assert_int_equal(rfb_get_u32(out + 4), 0);
}

/* Build a provide, send it through the framer as the relay would, collect
 * the body from the CUT spans, parse and inflate it. */
static void roundtrip(const uint8_t *text, size_t len, uint8_t msgtype)
{
    size_t cap = clip_provide_bound(len);
    uint8_t *msg = malloc(cap), *body = malloc(cap), *back = malloc(len + 1);
    assert_non_null(msg);
    assert_non_null(body);
    assert_non_null(back);
    size_t ml = clip_build_provide(msgtype, text, len, msg, cap);
    assert_true(ml > 12);
    assert_int_equal(msg[0], msgtype);
    assert_int_equal((int32_t)rfb_get_u32(msg + 4), -(int32_t)(ml - 8));
    assert_int_equal(rfb_get_u32(msg + 8), CLIP_FMT_TEXT | CLIP_ACT_PROVIDE);
    assert_int_equal(msg[12], 0x78);

    static const uint8_t pf[16] = { 32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0 };
    static const uint8_t setenc[] = { 2, 0, 0, 1, 0xc0, 0xa1, 0xe5, 0xce };
    struct rfbmsg_state st;
    struct rfbmsg m;
    assert_int_equal(rfbmsg_init(&st, 640, 480, pf), 0);
    assert_int_equal(rfbmsg_c2s(&st, setenc, sizeof setenc, &m), (int)sizeof setenc);
    size_t off = 0, bl = 0;
    while (off < ml) {
        size_t give = ml - off < 1000 ? ml - off : 1000;   /* arrives in pieces */
        int r = msgtype == 3 ? rfbmsg_s2c(&st, msg + off, give, &m)
                             : rfbmsg_c2s(&st, msg + off, give, &m);
        assert_true(r > 0);
        if (m.kind == RFBMSG_HEAD) {
            assert_true(m.cut_ext);
            assert_int_equal(m.cut_len, ml - 8);
        } else {
            assert_int_equal(m.kind, RFBMSG_CUT);
            memcpy(body + bl, msg + off, (size_t)r);
            bl += (size_t)r;
        }
        off += (size_t)r;
    }
    assert_true(m.end);

    struct clip_msg cm;
    struct clip_inflater zi = { 0 };
    char why[128];
    size_t outlen;
    assert_int_equal(clip_parse(body, bl, &cm, why, sizeof why), CLIP_OK);
    assert_int_equal(clip_provide_text(&zi, &cm, len, back, &outlen, why, sizeof why), CLIP_OK);
    const uint8_t *nul = memchr(text, 0, len);
    size_t want = nul ? (size_t)(nul - text) : len;
    assert_int_equal(outlen, want);
    assert_memory_equal(back, text, want);
    clip_inflater_free(&zi);
    free(msg);
    free(body);
    free(back);
}

static void test_build_provide_roundtrip(void **state)
{
    (void)state;
    roundtrip((const uint8_t *)"", 0, 3);
    roundtrip((const uint8_t *)"a", 1, 6);
    roundtrip((const uint8_t *)"h\xc3\xa9llo\r\nw\xc3\xb6rld \xf0\x9f\x98\x80", 21, 3);
    roundtrip((const uint8_t *)"cut\0here", 8, 6);
    for (size_t i = 0; i < 300000; i++)
        big_a[i] = (uint8_t)(0x20 + (i * 7919u % 95u));
    roundtrip(big_a, 300000, 3);
    for (size_t i = 0; i < CLIP_TEXT_HARD_MAX; i++)
        big_a[i] = (uint8_t)(1 + (i * 2654435761u >> 13) % 255u);    /* incompressible-ish */
    roundtrip(big_a, CLIP_TEXT_HARD_MAX, 6);

    /* limits */
    uint8_t out[64];
    assert_int_equal(clip_build_provide(3, big_a, CLIP_TEXT_HARD_MAX + 1, big_c, sizeof big_c), 0);
    assert_int_equal(clip_build_provide(3, (const uint8_t *)"abc", 3, out, 12), 0);
    assert_int_equal(clip_build_provide(3, (const uint8_t *)"abc", 3, out, 14), 0);
    assert_true(clip_build_provide(3, (const uint8_t *)"abc", 3, out, sizeof out) > 12);
    assert_true(clip_provide_bound(0) >= 12 + 13);
}

/* ------------------------------------------------------------- conversions */

static void u2l(const char *in, size_t n, const char *want, size_t wn)
{
    uint8_t out[256];
    size_t o = clip_utf8_to_latin1((const uint8_t *)in, n, out);
    if (o != wn || memcmp(out, want, wn) != 0) {
        char got[512] = "", w[512] = "";
        for (size_t i = 0; i < o; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%02x ", out[i]);
        for (size_t i = 0; i < wn; i++)
            snprintf(w + strlen(w), sizeof w - strlen(w), "%02x ", (uint8_t)want[i]);
        fail_msg("utf8->latin1: got [%s], want [%s]", got, w);
    }
}
#define U2L(in, want) u2l(in, sizeof(in) - 1, want, sizeof(want) - 1)

static void test_utf8_to_latin1(void **state)
{
    (void)state;
    U2L("plain ascii", "plain ascii");
    U2L("h\xc3\xa9llo", "h\xe9llo");                      /* U+00E9 */
    U2L("\xc2\x80\xc2\xa0\xc3\xbf", "\x80\xa0\xff");      /* edges of Latin-1 */
    U2L("\xc4\x80", "?");                                 /* U+0100: first outside */
    U2L("5 \xe2\x82\xac", "5 ?");                         /* euro sign */
    U2L("\xf0\x9f\x98\x80!", "?!");                       /* emoji: one '?' */
    U2L("\xe4\xb8\xad\xe6\x96\x87", "??");                /* two CJK characters */
    U2L("a\r\nb\r\n", "a\nb\n");                          /* CRLF -> LF */
    U2L("a\rb\r", "a\nb\n");                              /* lone CR -> LF */
    U2L("a\nb", "a\nb");
    U2L("a\r\r\nb", "a\n\nb");
    U2L("ab\0cd", "ab");                                  /* stops at NUL */
    /* malformed: one '?' per maximal invalid subpart */
    U2L("\x80", "?");
    U2L("a\xbf" "b", "a?b");
    U2L("\xc0\xaf", "??");                                /* overlong: C0 never valid */
    U2L("\xc1\xbf", "??");
    U2L("\xe0\x80\x80", "???");                           /* overlong 3-byte */
    U2L("\xe0\xa0", "?");                                 /* truncated at the end */
    U2L("\xe2\x82", "?");
    U2L("\xe2\x82x", "?x");
    U2L("\xed\xa0\x80", "???");                           /* surrogate */
    U2L("\xf4\x90\x80\x80", "????");                      /* above U+10FFFF */
    U2L("\xf5\x80", "??");
    U2L("\xff\xfe", "??");
    U2L("\xf0\x9f\x98", "?");                             /* truncated 4-byte */
    U2L("\xc3", "?");
    U2L("", "");
    /* output never longer than input */
    uint8_t in[256], out[256];
    for (int i = 0; i < 256; i++)
        in[i] = (uint8_t)(255 - i);
    assert_true(clip_utf8_to_latin1(in, 256, out) <= 256);
}

static void l2u(const char *in, size_t n, const char *want, size_t wn)
{
    uint8_t out[512];
    size_t o = clip_latin1_to_utf8((const uint8_t *)in, n, out);
    assert_int_equal(o, wn);
    assert_memory_equal(out, want, wn);
    assert_true(clip_utf8_valid(out, o));
}
#define L2U(in, want) l2u(in, sizeof(in) - 1, want, sizeof(want) - 1)

static void test_latin1_to_utf8(void **state)
{
    (void)state;
    L2U("plain", "plain");
    L2U("h\xe9llo", "h\xc3\xa9llo");
    L2U("\x80\xa0\xff", "\xc2\x80\xc2\xa0\xc3\xbf");
    L2U("a\nb", "a\r\nb");                                /* LF -> CRLF */
    L2U("a\r\nb", "a\r\nb");                              /* CRLF stays */
    L2U("a\rb", "a\r\nb");                                /* lone CR -> CRLF */
    L2U("\n\n", "\r\n\r\n");
    L2U("\r", "\r\n");
    L2U("x\0y", "x");
    L2U("", "");
    /* all 256 bytes: worst case 2n, and back again */
    uint8_t in[256], mid[512], back[256];
    for (int i = 0; i < 255; i++)
        in[i] = (uint8_t)(i + 1);
    size_t m = clip_latin1_to_utf8(in, 255, mid);
    assert_true(m <= 2 * 255);
    assert_true(clip_utf8_valid(mid, m));
    size_t b = clip_utf8_to_latin1(mid, m, back);
    /* line ends come back as LF: 0x0d becomes 0x0a */
    assert_int_equal(b, 255);
    for (int i = 0; i < 255; i++)
        assert_int_equal(back[i], in[i] == '\r' ? '\n' : in[i]);
    uint8_t worst[100], wout[200];
    memset(worst, 0xe9, sizeof worst);
    assert_int_equal(clip_latin1_to_utf8(worst, 100, wout), 200);
    memset(worst, '\n', sizeof worst);
    assert_int_equal(clip_latin1_to_utf8(worst, 100, wout), 200);
}

static void test_utf8_valid(void **state)
{
    (void)state;
    static const struct { const char *s; size_t n; bool ok; } cases[] = {
        { "", 0, true }, { "abc", 3, true }, { "\xc3\xa9", 2, true },
        { "\xe2\x82\xac", 3, true }, { "\xf0\x9f\x98\x80", 4, true },
        { "\xf4\x8f\xbf\xbf", 4, true }, { "\xef\xbf\xbf", 3, true }, { "\0", 1, true },
        { "\xc3", 1, false }, { "\xc0\x80", 2, false }, { "\xed\xa0\x80", 3, false },
        { "\xf4\x90\x80\x80", 4, false }, { "\x80", 1, false }, { "\xfe", 1, false },
        { "a\xe2\x82", 3, false },
    };
    for (size_t i = 0; i < N(cases); i++)
        assert_int_equal(clip_utf8_valid((const uint8_t *)cases[i].s, cases[i].n), cases[i].ok);
}

/* Legacy viewer -> extended server -> legacy viewer. */
static void test_bridge_roundtrip(void **state)
{
    (void)state;
    static const uint8_t latin1[] = "caf\xe9\nna\xefve\n\xa9 2024";
    size_t ln = sizeof latin1 - 1;
    uint8_t utf8[64], msg[256], text[64], back[64];
    size_t un = clip_latin1_to_utf8(latin1, ln, utf8);
    assert_memory_equal(utf8, "caf\xc3\xa9\r\nna\xc3\xafve\r\n\xc2\xa9 2024", un);
    size_t ml = clip_build_provide(6, utf8, un, msg, sizeof msg);
    assert_true(ml > 0);
    struct clip_msg m;
    struct clip_inflater zi = { 0 };
    char why[128];
    size_t tl;
    assert_int_equal(clip_parse(msg + 8, ml - 8, &m, why, sizeof why), CLIP_OK);
    assert_int_equal(clip_provide_text(&zi, &m, sizeof text, text, &tl, why, sizeof why), CLIP_OK);
    size_t bn = clip_utf8_to_latin1(text, tl, back);
    assert_int_equal(bn, ln);
    assert_memory_equal(back, latin1, ln);
    clip_inflater_free(&zi);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_caps),
        cmocka_unit_test(test_parse_actions),
        cmocka_unit_test(test_provide_qemu_style),
        cmocka_unit_test(test_provide_flush_style),
        cmocka_unit_test(test_provide_persistent_stream),
        cmocka_unit_test(test_provide_caps),
        cmocka_unit_test(test_provide_malformed),
        cmocka_unit_test(test_provide_other_formats),
        cmocka_unit_test(test_build_messages),
        cmocka_unit_test(test_build_provide_roundtrip),
        cmocka_unit_test(test_utf8_to_latin1),
        cmocka_unit_test(test_latin1_to_utf8),
        cmocka_unit_test(test_utf8_valid),
        cmocka_unit_test(test_bridge_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
