// fuzz-sources: proxy/rfbfilter.c proxy/rfbmsg.c proxy/clip.c common/buf.c common/log.c common/config.c common/addr.c
// fuzz-libs: -lz -lcrypto
/* libFuzzer target: the whole RFB filter (proxy/rfbfilter.c), both
 * directions interleaved, with continuous updates on: vmgate's fences,
 * fence answers, EndOfContinuousUpdates, the outstanding request and the
 * flow control window, under arbitrary viewer and VM streams.
 *
 * Input: [0] bit 0: continuous_updates = off, bits 1-2: clipboard policy,
 * bit 3: the XVP power right (answered at once from the hook), bit 4: power
 * actions succeed;
 * then chunks: [op] [len] [len bytes].  op & 3: 0 viewer bytes, 1 VM bytes,
 * 2 the link's clock moves by len ms and the wire takes everything, 3 the
 * link's queued bytes = len * 4096.  A direction that failed stays failed
 * (its bytes are dropped).  The filter's buffers must stay bounded and what
 * it injects must be whole messages, which here means only that nothing
 * crashes or trips the sanitizers. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/config.h"
#include "proxy/rfbfilter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void no_note(void *ctx, enum log_level lvl, const char *msg)
{
    (void)ctx; (void)lvl; (void)msg;
}

static struct rfbfilter *g_f;
static uint8_t g_mode;

/* XVP: answer the check and every action at once, from inside the hook. */
static void fz_power(void *ctx, enum rfbfilter_pwr ev, unsigned code, const char *why)
{
    (void)ctx; (void)code; (void)why;
    if (ev == RFBFILTER_PWR_ASK)
        rfbfilter_xvp_right(g_f, (g_mode & 8) != 0);
    else if (ev == RFBFILTER_PWR_DO)
        rfbfilter_xvp_done(g_f, (g_mode & 16) != 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    struct cfg_vm vm;
    memset(&vm, 0, sizeof vm);
    vm.continuous_updates = (data[0] & 1) ? CFG_CU_OFF : CFG_CU_AUTO;
    vm.clipboard = (enum cfg_clip)((data[0] >> 1) & 3);
    vm.clipboard_max = 4096;
    const struct rfbfilter_hooks hooks = { NULL, no_note, NULL, fz_power };
    struct rfbfilter *f = rfbfilter_new(&vm, &hooks);
    g_f = f;
    g_mode = data[0];
    if (!f)
        return 0;
    struct buf b2f, f2b, tv, tm;
    buf_init(&b2f, 64 * 1024);
    buf_init(&f2b, 64 * 1024);
    buf_init(&tv, 64 * 1024);
    buf_init(&tm, 64 * 1024);
    size_t ok_s = 0, ok_c = 0;
    bool dead_s = false, dead_c = false;
    struct rfbfilter_link link = { .now = 100.0 };
    char why[256];
    /* QEMU's ServerInit first, so the relay is live */
    static const uint8_t si[] = {
        0x02, 0xd0, 0x01, 0x90, 32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0,
        0, 0, 0, 1, 'q',
    };
    buf_put(&b2f, si, sizeof si);
    for (size_t i = 1; i + 2 <= size;) {
        uint8_t op = data[i] & 3, len = data[i + 1];
        i += 2;
        size_t n = len <= size - i ? len : size - i;
        if (op == 0 && !dead_c && buf_room(&f2b) >= n)
            buf_put(&f2b, data + i, n);
        else if (op == 1 && !dead_s && buf_room(&b2f) >= n)
            buf_put(&b2f, data + i, n);
        if (op <= 1)
            i += n;
        if (op == 2) {
            link.now += len / 1000.0;
            buf_consume(&b2f, ok_s);
            ok_s = 0;
            buf_consume(&f2b, ok_c);
            ok_c = 0;
            buf_consume(&tv, buf_len(&tv));
            buf_consume(&tm, buf_len(&tm));
        }
        if (op == 3)
            link.queued = (uint64_t)len * 4096;
        rfbfilter_link(f, &link);
        if (!dead_c && rfbfilter_c2s(f, &f2b, &ok_c, &tv, &tm, why, sizeof why) != 0)
            dead_c = true;
        if (!dead_s && rfbfilter_s2c(f, &b2f, &ok_s, &tv, &tm, why, sizeof why) != 0)
            dead_s = true;
        if (ok_s > buf_len(&b2f) || ok_c > buf_len(&f2b))
            abort();
        (void)rfbfilter_wake(f);
    }
    rfbfilter_free(f);
    buf_free(&b2f);
    buf_free(&f2b);
    buf_free(&tv);
    buf_free(&tm);
    return 0;
}
