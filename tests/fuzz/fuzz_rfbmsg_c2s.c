// fuzz-sources: proxy/rfbmsg.c
// fuzz-libs:
/* libFuzzer target: rfbmsg_c2s, the client -> server framer, and
 * rfbmsg_filter_encodings on every SetEncodings it delimits.
 *
 * Input: 7 config bytes, then the viewer's byte stream.
 *   [0] bits 0-3: flags for rfbmsg_filter_encodings; bit 4: filter each
 *       SetEncodings (else it counts as forwarded unchanged)
 *   [1..4] little-endian mask over fuzz_encs: an initial SetEncodings
 *   [5] bit 0: the server confirmed ContinuousUpdates, bit 1: sent a Fence
 *   [6] seed for the piece sizes of the second run
 * The stream is parsed whole and in pieces; see fuzz_common.h.  Every
 * rewritten SetEncodings must be well-formed, duplicate-free, a subsequence
 * of the original, and rewrite to itself. */
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CFG 7

static void setup(struct rfbmsg_state *st, const uint8_t *cfg)
{
    struct rfbmsg m;
    FUZZ_CHECK(rfbmsg_init(st, 1024, 768, fuzz_pfs[0]) == 0);
    st->cut_max = 500;
    uint32_t mask = cfg[1] | (uint32_t)cfg[2] << 8 | (uint32_t)cfg[3] << 16 |
                    (uint32_t)cfg[4] << 24;
    if (cfg[5] & 1)
        mask |= 1u << 22;                      /* ContinuousUpdates */
    if (cfg[5] & 2)
        mask |= 1u << 21;                      /* Fence */
    uint8_t se[4 + 4 * 32];
    size_t n = 0;
    for (int i = 0; i < 32; i++)
        if (mask & (1u << i))
            rfb_put_u32(se + 4 + 4 * n++, (uint32_t)fuzz_encs[i]);
    se[0] = 2;
    se[1] = 0;
    se[2] = 0;
    se[3] = (uint8_t)n;
    FUZZ_CHECK(rfbmsg_c2s(st, se, 4 + 4 * n, &m) == (int)(4 + 4 * n));
    if (cfg[5] & 1)
        FUZZ_CHECK(rfbmsg_s2c(st, (const uint8_t *)"\x96", 1, &m) == 1);
    if (cfg[5] & 2) {
        static const uint8_t fence[9] = { 248 };
        FUZZ_CHECK(rfbmsg_s2c(st, fence, 9, &m) == 9);
    }
}

static void check_filtered(const uint8_t *in, size_t n, const uint8_t *out, int r, unsigned flags)
{
    FUZZ_CHECK(r >= 4 && (size_t)r <= n + 4);
    FUZZ_CHECK(out[0] == 2 && out[1] == 0);
    size_t cnt = (size_t)out[2] << 8 | out[3];
    FUZZ_CHECK((size_t)r == 4 + 4 * cnt);
    /* no duplicates; every entry but an added clipboard comes from the input,
     * in the input's order */
    size_t j = 4;
    for (size_t i = 0; i < cnt; i++) {
        uint32_t e = rfb_get_u32(out + 4 + 4 * i);
        for (size_t k = 0; k < i; k++)
            FUZZ_CHECK(rfb_get_u32(out + 4 + 4 * k) != e);
        while (j < n && rfb_get_u32(in + j) != e)
            j += 4;
        if (j >= n) {
            FUZZ_CHECK((int32_t)e == RFB_ENC_EXT_CLIPBOARD && i == cnt - 1 &&
                       (flags & RFBMSG_F_ADD_EXT_CLIPBOARD));
        } else {
            j += 4;
        }
        FUZZ_CHECK((int32_t)e != RFB_ENC_WMVI && (int32_t)e != RFB_ENC_EXT_MOUSE_BUTTONS &&
                   (int32_t)e != RFB_ENC_GII && (int32_t)e != RFB_ENC_FENCE);
    }
    /* idempotent */
    struct rfbmsg_state st2;
    uint8_t again[RFBMSG_HDR_MAX + 4];
    FUZZ_CHECK(rfbmsg_init(&st2, 640, 480, fuzz_pfs[0]) == 0);
    FUZZ_CHECK(rfbmsg_filter_encodings(&st2, out, (size_t)r, flags, again, sizeof again) == r);
    FUZZ_CHECK(memcmp(again, out, (size_t)r) == 0);
    /* too small an output buffer is refused, never overrun */
    if (r > 4) {
        uint8_t *tight = malloc((size_t)r - 1);
        FUZZ_CHECK(tight != NULL);
        FUZZ_CHECK(rfbmsg_filter_encodings(&st2, in, n, flags, tight, (size_t)r - 1) == -1);
        free(tight);
    }
}

static void after(struct rfbmsg_state *st, const uint8_t *span, size_t n, const struct rfbmsg *m,
                  void *arg)
{
    const uint8_t *cfg = arg;
    if (m->kind == RFBMSG_MSG)
        FUZZ_CHECK(m->end && m->len == n);
    if (m->kind == RFBMSG_HEAD && m->type == RFB_C2S_CUT_TEXT)
        FUZZ_CHECK(n == 8 && m->cut_over == (m->cut_len > 500));
    if (m->kind == RFBMSG_MSG && m->type == RFB_C2S_SET_ENCODINGS && (cfg[0] & 0x10)) {
        static uint8_t out[RFBMSG_HDR_MAX + 4];
        int r = rfbmsg_filter_encodings(st, span, n, cfg[0] & 15, out, sizeof out);
        check_filtered(span, n, out, r, cfg[0] & 15);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < CFG)
        return 0;
    struct rfbmsg_state st;
    struct fz_run a, b;
    setup(&st, data);
    fz_feed(&st, false, data + CFG, size - CFG, false, 0, NULL, after, (void *)data, &a);
    setup(&st, data);
    fz_feed(&st, false, data + CFG, size - CFG, true, data[6] * 2654435761u, NULL, after,
            (void *)data, &b);
    fz_compare(&a, &b);
    fz_free(&a);
    fz_free(&b);
    return 0;
}
