// fuzz-sources: proxy/rfbmsg.c
// fuzz-libs:
/* libFuzzer target: rfbmsg_s2c, the server -> client framer.
 *
 * Input: 9 config bytes, then the server's byte stream.
 *   [0] bits 0-2: SetPixelFormat sent first (index into fuzz_pfs; 0 = none)
 *       bit 3: rewrite the SetEncodings with rfbmsg_filter_encodings
 *       bits 4-7: its flags
 *   [1..4] little-endian mask over fuzz_encs: the viewer's SetEncodings
 *   [5] seed for the piece sizes of the second run
 *   [6..7] offset K; [8] bit 7 clear: at the first message/unit boundary at
 *       or after K, the viewer sends SetPixelFormat fuzz_pfs[[8] & 7]
 *       (exercises the switch at the end of the update in progress)
 * The stream is parsed whole and in pieces; see fuzz_common.h. */
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CFG 9

struct inject {
    size_t at;
    int pf;
    bool done;
};

static void setup(struct rfbmsg_state *st, const uint8_t *cfg)
{
    struct rfbmsg m;
    FUZZ_CHECK(rfbmsg_init(st, 800, 600, fuzz_pfs[0]) == 0);
    st->cut_max = 1000;
    if (cfg[0] & 7) {
        uint8_t spf[20] = { 0 };
        memcpy(spf + 4, fuzz_pfs[cfg[0] & 7], 16);
        (void)rfbmsg_c2s(st, spf, 20, &m);
    }
    uint32_t mask = cfg[1] | (uint32_t)cfg[2] << 8 | (uint32_t)cfg[3] << 16 |
                    (uint32_t)cfg[4] << 24;
    uint8_t se[4 + 4 * 32], out[4 + 4 * 33];
    size_t n = 0;
    for (int i = 0; i < 32; i++)
        if (mask & (1u << i))
            rfb_put_u32(se + 4 + 4 * n++, (uint32_t)fuzz_encs[i]);
    se[0] = 2;
    se[1] = 0;
    se[2] = 0;
    se[3] = (uint8_t)n;
    int r = rfbmsg_c2s(st, se, 4 + 4 * n, &m);
    if (r > 0 && (cfg[0] & 8))
        FUZZ_CHECK(rfbmsg_filter_encodings(st, se, 4 + 4 * n, cfg[0] >> 4, out, sizeof out) >= 4);
}

static void before(struct rfbmsg_state *st, size_t consumed, bool boundary, void *arg)
{
    struct inject *in = arg;
    if (in->pf < 0 || in->done || consumed < in->at || !boundary)
        return;
    uint8_t spf[20] = { 0 };
    struct rfbmsg m;
    memcpy(spf + 4, fuzz_pfs[in->pf], 16);
    (void)rfbmsg_c2s(st, spf, 20, &m);
    in->done = true;
}

static void after(struct rfbmsg_state *st, const uint8_t *span, size_t n, const struct rfbmsg *m,
                  void *arg)
{
    (void)st;
    (void)arg;
    switch (m->kind) {
    case RFBMSG_RECT:
        FUZZ_CHECK(n == 12 && m->type == RFB_S2C_FB_UPDATE);
        break;
    case RFBMSG_HEAD:
        if (m->type == RFB_S2C_FB_UPDATE)
            FUZZ_CHECK(n == 4);
        else if (m->type == RFB_S2C_CUT_TEXT) {
            FUZZ_CHECK(n == 8 && m->len == 8 + (uint64_t)m->cut_len);
            FUZZ_CHECK(m->cut_over == (m->cut_len > 1000));
            FUZZ_CHECK(m->cut_ext == ((span[4] & 0x80) != 0));
        }
        break;
    case RFBMSG_MSG:
        FUZZ_CHECK(m->end && m->len == n);
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < CFG)
        return 0;
    const uint8_t *cfg = data;
    struct rfbmsg_state st;
    struct fz_run a, b;
    struct inject in = { .at = (size_t)cfg[6] | (size_t)cfg[7] << 8,
                         .pf = (cfg[8] & 0x80) ? -1 : cfg[8] & 7 };

    setup(&st, cfg);
    fz_feed(&st, true, data + CFG, size - CFG, false, 0, before, after, &in, &a);
    in.done = false;
    setup(&st, cfg);
    fz_feed(&st, true, data + CFG, size - CFG, true, cfg[5] * 2654435761u, before, after, &in,
            &b);
    fz_compare(&a, &b);
    fz_free(&a);
    fz_free(&b);
    return 0;
}
