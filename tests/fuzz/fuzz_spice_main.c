// fuzz-sources: proxy/spice_main.c proxy/vdagent.c proxy/spice_link.c common/buf.c
// fuzz-libs: -lcrypto
/* libFuzzer target: the SPICE main-channel filter and the VDAgent stream
 * parser (proxy/spice_main.c, proxy/vdagent.c).  The input is split into
 * segments, each fed to one direction in pieces of a fuzzer-chosen size
 * through bounded buffers, as the relay does; the policy comes from the
 * first byte.  Checks: no crash, output never exceeds its buffer, a failed
 * direction stays failed only by returning -1. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "proxy/spice_main.h"

static void ev_cb(void *ctx, const struct vda_event *ev)
{
    (void)ctx;
    if (ev->kind != VDA_EV_DATA && ev->kind != VDA_EV_OFFER_BLOCKED)
        abort();
}
static void init_cb(void *ctx, uint32_t id) { (void)ctx; (void)id; }
static void note_cb(void *ctx, const char *m) { (void)ctx; (void)m; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint8_t pol = data[0], step = data[1] ? data[1] : 1;
    data += 2;
    size -= 2;
    struct spice_main m;
    spice_main_init(&m, pol & 1, pol & 2, (pol & 4) ? 16 : 262144, "fuzz", ev_cb, init_cb,
                    note_cb, NULL);
    struct buf in[2], out[2];
    for (int d = 0; d < 2; d++) {
        buf_init(&in[d], 64 * 1024);
        buf_init(&out[d], (pol & 8) ? 40000 : 256 * 1024);
    }
    bool dead[2] = { false, false };
    size_t off = 0;
    int dir = 0;
    while (off < size) {
        size_t k = size - off < step ? size - off : step;
        /* a 0xFF byte switches direction (and is consumed) */
        const uint8_t *sw = memchr(data + off, 0xff, k);
        if (sw)
            k = (size_t)(sw - (data + off));
        if (k && !dead[dir] && buf_room(&in[dir]) >= k)
            buf_put(&in[dir], data + off, k);
        off += k;
        if (sw) {
            off++;
            dir ^= 1;
        }
        for (int d = 0; d < 2; d++) {
            if (dead[d])
                continue;
            long u = spice_main_feed(&m, d ? SMAIN_S2C : SMAIN_C2S,
                                     buf_empty(&in[d]) ? NULL : buf_head(&in[d]), buf_len(&in[d]),
                                     &out[d]);
            if (u < 0) {
                dead[d] = true;
                continue;
            }
            if ((size_t)u > buf_len(&in[d]))
                abort();
            buf_consume(&in[d], (size_t)u);
            /* drain the output as a peer would */
            buf_consume(&out[d], buf_len(&out[d]));
        }
    }
    spice_main_free(&m);
    for (int d = 0; d < 2; d++) {
        buf_free(&in[d]);
        buf_free(&out[d]);
    }
    return 0;
}
