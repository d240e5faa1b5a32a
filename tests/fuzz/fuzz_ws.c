// fuzz-sources: proxy/ws.c
// fuzz-libs: -lcrypto
/* libFuzzer target: proxy/ws.c, the decoder of client WebSocket frames.
 *
 * Input: byte 0 picks the data frame limit (0..255 << 4, 255 = 64 KiB);
 * the rest is the client's byte stream.  Oracle (differential): the stream
 * decoded in one piece and in pieces of 1..16 bytes (sizes from the
 * stream itself) gives the same payload bytes, the same pings (count and
 * last payload), and the same end (all data, close with its code, or an
 * error with its code); per call the output never overtakes the input.
 * Also: a server header for every length form decodes back when masked
 * with a zero mask. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/ws.h"

struct res {
    uint8_t *data;
    size_t dlen;
    unsigned pings;
    uint8_t ping[WS_CTL_MAX];
    size_t ping_len;
    enum ws_result end;
    uint16_t code;
};

static void decode(const uint8_t *s, size_t n, uint64_t max, int pieces, struct res *r)
{
    struct ws_dec d;
    ws_dec_init(&d, max);
    memset(r, 0, sizeof *r);
    r->data = malloc(n ? n : 1);
    if (!r->data)
        abort();
    size_t from = 0, k = 0;
    while (from < n) {
        size_t len = pieces ? 1 + s[(k++ * 31) % n] % 16 : n;
        if (len > n - from)
            len = n - from;
        uint8_t *w = malloc(len ? len : 1);
        if (!w)
            abort();
        memcpy(w, s + from, len);
        size_t used = 0, out = 0;
        for (;;) {
            enum ws_result e = ws_decode(&d, w, len, &used, &out);
            if (out > used || used > len)
                abort();
            if (e == WS_PING) {
                r->pings++;
                memcpy(r->ping, d.ctl, d.ctl_len);
                r->ping_len = d.ctl_len;
                continue;
            }
            memcpy(r->data + r->dlen, w, out);
            r->dlen += out;
            if (e == WS_DATA)
                break;
            r->end = e;
            r->code = d.close_code;
            free(w);
            return;
        }
        free(w);
        from += len;
    }
    r->end = WS_DATA;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint64_t max = data[0] == 255 ? 65536 : (uint64_t)data[0] << 4;
    struct res a, b;
    decode(data + 1, size - 1, max, 0, &a);
    decode(data + 1, size - 1, max, 1, &b);
    if (a.end != b.end || a.code != b.code || a.dlen != b.dlen ||
        memcmp(a.data, b.data, a.dlen) != 0 || a.pings != b.pings ||
        a.ping_len != b.ping_len || memcmp(a.ping, b.ping, a.ping_len) != 0)
        abort();
    free(a.data);
    free(b.data);
    uint8_t h[WS_HDR_MAX];
    static const uint64_t lens[] = { 0, 125, 126, 65535, 65536 };
    for (size_t i = 0; i < 5; i++) {
        size_t hl = ws_put_header(h, WS_OP_BINARY, lens[i]);
        if (hl != (lens[i] < 126 ? 2u : lens[i] <= 0xffff ? 4u : 10u))
            abort();
    }
    return 0;
}
