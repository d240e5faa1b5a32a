// fuzz-sources: proxy/rfb.c
// fuzz-libs:
/* libFuzzer target: proxy/rfb.c, the handshake parsers.
 *
 * The input goes to every rfb_parse_* function.  Each must return RFB_NEED,
 * RFB_BAD or a length <= n; a result must not change when more bytes are
 * appended (a parser that said "n bytes" says so again with the full input,
 * and RFB_BAD stays RFB_BAD); every prefix of an accepted message must be
 * RFB_NEED or RFB_BAD (never a different length).  Buffers are exact-size
 * heap copies.  The encoders get the input as a reason string.
 *
 * Encoders are also called with every small output capacity: 4..7 bytes
 * once made rfb_put_sec_failure write past its buffer (fixed); the probe
 * stays as a regression test. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/rfb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "check failed: %s (%s:%d)\n", #c, __FILE__, \
                                          __LINE__); abort(); } } while (0)

enum { P_CVER, P_SVER, P_VENC, P_U32, P_CREDS, P_SECTYPES, P_SEC33, P_RESULT37, P_RESULT38,
       P_COUNT };

static int parse(int which, const uint8_t *data, size_t n)
{
    uint8_t *p = malloc(n ? n : 1);
    CHECK(p != NULL);
    if (n)
        memcpy(p, data, n);
    char why[200], user[RFB_PLAIN_USER_MAX + 1], pass[RFB_PLAIN_PASS_MAX + 1];
    int minor = -1, has_none = -1, r = RFB_BAD;
    uint32_t v;
    why[0] = 0;
    switch (which) {
    case P_CVER:
        r = rfb_parse_client_version(p, n, &minor, why, sizeof why);
        if (r > 0)
            CHECK(minor == 3 || minor == 7 || minor == 8);
        break;
    case P_SVER:
        r = rfb_parse_server_version(p, n, &minor, why, sizeof why);
        if (r > 0)
            CHECK(minor == 3 || minor == 7 || minor == 8);
        break;
    case P_VENC:
        r = rfb_parse_vencrypt_version(p, n, why, sizeof why);
        break;
    case P_U32:
        r = rfb_parse_u32(p, n, &v);
        break;
    case P_CREDS:
        r = rfb_parse_plain_creds(p, n, user, pass, why, sizeof why);
        if (r > 0) {
            CHECK(strlen(user) >= 1 && strlen(user) <= RFB_PLAIN_USER_MAX);
            CHECK(strlen(pass) <= RFB_PLAIN_PASS_MAX);
            CHECK((size_t)r == 8 + strlen(user) + strlen(pass));
        }
        break;
    case P_SECTYPES:
        r = rfb_parse_sec_types(p, n, &has_none, why, sizeof why);
        if (r > 0)
            CHECK(has_none == 0 || has_none == 1);
        break;
    case P_SEC33:
        r = rfb_parse_sec_type33(p, n, &v, why, sizeof why);
        break;
    case P_RESULT37:
    case P_RESULT38:
        r = rfb_parse_sec_result(p, n, which == P_RESULT38 ? 8 : 7, &v, why, sizeof why);
        if (r > 0)
            CHECK(v == 0);
        break;
    }
    CHECK(r == RFB_NEED || r == RFB_BAD || (r > 0 && (size_t)r <= n));
    CHECK(strlen(why) < sizeof why);
    free(p);
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        size = 4096;
    for (int w = 0; w < P_COUNT; w++) {
        int full = parse(w, data, size);
        /* prefixes: NEED, or the same verdict reached early (BAD), or the
         * same length once the message is complete */
        for (size_t n = 0; n < size && n < 64 + 8; n++) {
            int r = parse(w, data, n);
            if (full > 0 && n < (size_t)full)
                CHECK(r == RFB_NEED || r == RFB_BAD);
            if (r > 0)
                CHECK(r == full);
            if (r == RFB_BAD)
                CHECK(full == RFB_BAD);
        }
        if (full > 0 && (size_t)full < size)
            CHECK(parse(w, data, (size_t)full) == full);
    }
    /* encoders: the input as a reason, into exact-size buffers */
    char *reason = malloc(size + 1);
    CHECK(reason != NULL);
    memcpy(reason, data, size);
    reason[size] = 0;
    size_t rl = strlen(reason);
    for (int minor = 3; minor <= 8; minor += 5) {
        size_t cap = 8 + rl;
        uint8_t *out = malloc(cap);
        CHECK(out != NULL);
        size_t l = rfb_put_sec_failure(out, cap, minor, reason);
        CHECK(l <= cap && l >= 4 && rfb_get_u32(out) == 1);
        if (minor == 8)
            CHECK(l == 8 + rfb_get_u32(out + 4));
        free(out);
        for (size_t c = 0; c < 12 && c < cap; c++) {
            out = malloc(c ? c : 1);
            CHECK(out != NULL);
            CHECK(rfb_put_sec_failure(out, c, minor, reason) <= c);
            free(out);
        }
    }
    {
        size_t cap = 8 + rl;
        uint8_t *out = malloc(cap);
        CHECK(out != NULL);
        size_t l = rfb_put_sec33_failure(out, cap, reason);
        CHECK(l == cap && rfb_get_u32(out) == 0 && rfb_get_u32(out + 4) == rl);
        free(out);
        for (size_t c = 0; c < 12 && c < cap; c++) {
            out = malloc(c ? c : 1);
            CHECK(out != NULL);
            CHECK(rfb_put_sec33_failure(out, c, reason) <= c);
            free(out);
        }
    }
    free(reason);
    return 0;
}
