// fuzz-sources: proxy/clip.c
// fuzz-libs: -lz
/* libFuzzer target: proxy/clip.c.
 *
 * Input: [0] unused (mode, reserved), [1..2] big-endian v: text limit
 *   max = 17 * v (above 1 MiB it is clamped by the codec), then messages,
 *   each a big-endian U16 length + that many payload bytes (an extended
 *   clipboard payload: flags + data), all through ONE inflater, as from one
 *   peer.  The bytes after the 3-byte header are also used as text for the
 *   Latin-1/UTF-8 conversions and a build -> parse -> inflate round trip.
 * Every buffer handed to the codec is an exact-size heap copy. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/clip.h"
#include "proxy/rfb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "check failed: %s (%s:%d)\n", #c, __FILE__, \
                                          __LINE__); abort(); } } while (0)

static uint8_t *dup_exact(const uint8_t *p, size_t n)
{
    uint8_t *d = malloc(n ? n : 1);
    CHECK(d != NULL);
    if (n)
        memcpy(d, p, n);
    return d;
}

static void messages(const uint8_t *p, size_t n, size_t max)
{
    struct clip_inflater zi;
    clip_inflater_init(&zi);
    size_t lim = max < CLIP_TEXT_HARD_MAX ? max : CLIP_TEXT_HARD_MAX;
    uint8_t *out = malloc(lim ? lim : 1);
    CHECK(out != NULL);
    while (n >= 2) {
        size_t len = (size_t)p[0] << 8 | p[1];
        if (len > n - 2)
            len = n - 2;
        uint8_t *msg = dup_exact(p + 2, len);
        struct clip_msg m;
        char why[128];
        int r = clip_parse(msg, len, &m, why, sizeof why);
        CHECK(r == CLIP_OK || r == CLIP_BAD);
        if (r == CLIP_OK && m.action == CLIP_PROVIDE) {
            size_t outlen = 12345;
            r = clip_provide_text(&zi, &m, max, out, &outlen, why, sizeof why);
            CHECK(r == CLIP_OK || r == CLIP_BAD || r == CLIP_TOO_BIG);
            if (r == CLIP_OK) {
                CHECK(outlen <= lim);
                CHECK(memchr(out, 0, outlen) == NULL);
                if (!(m.formats & CLIP_FMT_TEXT))
                    CHECK(outlen == 0);
            }
            if (r == CLIP_TOO_BIG)
                CHECK(outlen > lim);
        }
        if (r == CLIP_OK && m.action == CLIP_CAPS)
            CHECK(len >= 4);
        free(msg);
        p += 2 + len;
        n -= 2 + len;
    }
    free(out);
    clip_inflater_free(&zi);
}

/* What clip_utf8_to_latin1 does to line ends and NULs, on Latin-1 text. */
static size_t normalise(const uint8_t *in, size_t n, uint8_t *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n && in[i]; i++) {
        if (in[i] == '\r') {
            out[o++] = '\n';
            if (i + 1 < n && in[i + 1] == '\n')
                i++;
        } else {
            out[o++] = in[i];
        }
    }
    return o;
}

static void conversions(const uint8_t *text, size_t n)
{
    uint8_t *in = dup_exact(text, n);
    uint8_t *lat = malloc(n ? n : 1), *utf = malloc(2 * n + 1), *back = malloc(2 * n + 1),
            *norm = malloc(n ? n : 1);
    CHECK(lat && utf && back && norm);

    size_t l = clip_utf8_to_latin1(in, n, lat);
    CHECK(l <= n);
    CHECK(memchr(lat, '\r', l) == NULL && memchr(lat, 0, l) == NULL);

    size_t u = clip_latin1_to_utf8(in, n, utf);
    CHECK(u <= 2 * n);
    CHECK(clip_utf8_valid(utf, u));
    CHECK(memchr(utf, 0, u) == NULL);
    for (size_t i = 0; i < u; i++) {
        if (utf[i] == '\n')
            CHECK(i > 0 && utf[i - 1] == '\r');
        if (utf[i] == '\r')
            CHECK(i + 1 < u && utf[i + 1] == '\n');
    }
    /* Latin-1 -> UTF-8 -> Latin-1 loses nothing but CR/NUL normalisation */
    size_t b = clip_utf8_to_latin1(utf, u, back);
    size_t k = normalise(in, n, norm);
    CHECK(b == k && memcmp(back, norm, k) == 0);
    /* valid UTF-8 without CR or NUL: every code point becomes one byte */
    if (clip_utf8_valid(in, n) && !memchr(in, '\r', n) && !memchr(in, 0, n)) {
        size_t cps = 0;
        for (size_t i = 0; i < n; i++)
            cps += (in[i] & 0xc0) != 0x80;
        CHECK(l == cps);
    }
    free(in);
    free(lat);
    free(utf);
    free(back);
    free(norm);
}

static void roundtrip(const uint8_t *text, size_t n)
{
    uint8_t *in = dup_exact(text, n);
    size_t cap = clip_provide_bound(n);
    uint8_t *msg = malloc(cap);
    CHECK(msg != NULL);
    size_t ml = clip_build_provide(6, in, n, msg, cap);
    CHECK(ml > 12);
    CHECK(msg[0] == 6 && (int32_t)rfb_get_u32(msg + 4) == -(int32_t)(ml - 8));
    /* too small a buffer: refused, not overrun */
    uint8_t *small = malloc(ml - 1);
    CHECK(small != NULL);
    CHECK(clip_build_provide(6, in, n, small, ml - 1) == 0);
    free(small);

    uint8_t *payload = dup_exact(msg + 8, ml - 8);
    struct clip_msg m;
    struct clip_inflater zi = { 0 };
    char why[128];
    CHECK(clip_parse(payload, ml - 8, &m, why, sizeof why) == CLIP_OK);
    CHECK(m.action == CLIP_PROVIDE && m.formats == CLIP_FMT_TEXT);
    const uint8_t *nul = memchr(in, 0, n);
    size_t want = nul ? (size_t)(nul - in) : n;
    uint8_t *out = malloc(want ? want : 1);
    CHECK(out != NULL);
    size_t outlen;
    CHECK(clip_provide_text(&zi, &m, want, out, &outlen, why, sizeof why) == CLIP_OK);
    CHECK(outlen == want && memcmp(out, in, want) == 0);
    if (want) {
        CHECK(clip_provide_text(&zi, &m, want - 1, out, &outlen, why, sizeof why) ==
              CLIP_TOO_BIG);
        CHECK(outlen == want + 1);
    }
    clip_inflater_free(&zi);
    free(out);
    free(payload);
    free(msg);
    free(in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    size_t max = 17 * ((size_t)data[1] << 8 | data[2]);
    messages(data + 3, size - 3, max);
    size_t n = size - 3 < 65536 ? size - 3 : 65536;
    conversions(data + 3, n);
    roundtrip(data + 3, n);
    return 0;
}
