/* proxy/ws.c — WebSocket framing for the browser console (see ws.h).
 * Pure: bytes in, bytes and events out. */
#include "proxy/ws.h"

#include <string.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_STR_(x) #x
#define WS_STR(x) WS_STR_(x)

void ws_dec_init(struct ws_dec *d, uint64_t max)
{
    memset(d, 0, sizeof *d);
    d->max = max;
}

static enum ws_result fail(struct ws_dec *d, uint16_t code, const char *why)
{
    d->close_code = code;
    d->why = why;
    return WS_ERROR;
}

/* The header is complete in d->hdr: check it and start the payload. */
static enum ws_result header_done(struct ws_dec *d)
{
    uint8_t b0 = d->hdr[0], b1 = d->hdr[1];
    d->fin = b0 & 0x80;
    d->op = b0 & 0x0f;
    uint64_t len = b1 & 0x7f;
    size_t m = 2;
    if (len == 126) {
        len = (uint64_t)d->hdr[2] << 8 | d->hdr[3];
        m = 4;
    } else if (len == 127) {
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | d->hdr[2 + i];
        m = 10;
    }
    memcpy(d->mask, d->hdr + m, 4);
    d->mpos = 0;
    d->left = len;
    d->hlen = 0;
    d->in_payload = true;
    d->ctl_len = 0;
    switch (d->op) {
    case WS_OP_CONT:
        if (!d->in_msg)
            return fail(d, 1002, "continuation frame without a message");
        break;
    case WS_OP_BINARY:
        if (d->in_msg)
            return fail(d, 1002, "new message inside a fragmented one");
        break;
    case WS_OP_TEXT:
        return fail(d, 1003, "text frame (only binary is accepted)");
    case WS_OP_CLOSE:
    case WS_OP_PING:
    case WS_OP_PONG:
        if (!d->fin || len > WS_CTL_MAX)
            return fail(d, 1002, "fragmented or over-long control frame");
        return WS_DATA;
    default:
        return fail(d, 1002, "unknown opcode");
    }
    if (len > d->max)
        return fail(d, 1009, "data frame too large");
    d->in_msg = !d->fin;
    return WS_DATA;
}

/* A control frame's payload is complete. */
static enum ws_result control_done(struct ws_dec *d)
{
    d->in_payload = false;
    switch (d->op) {
    case WS_OP_PING:
        /* the latest ping is the one answered; the older owed pong is dropped */
        memcpy(d->pong, d->ctl, d->ctl_len);
        d->pong_len = d->ctl_len;
        d->pong_due = true;
        if (d->pong_blocked && ++d->pong_missed > WS_PING_FLOOD)
            return fail(d, 1008, "ping flood: over " WS_STR(WS_PING_FLOOD)
                                 " pings while the peer did not read the pong");
        return WS_PING;
    case WS_OP_CLOSE:
        if (d->ctl_len == 1)
            return fail(d, 1002, "close frame with a 1-byte payload");
        d->close_code = d->ctl_len ? (uint16_t)(d->ctl[0] << 8 | d->ctl[1]) : 1005;
        return WS_CLOSE;
    default:
        return WS_DATA;                     /* pong: ignored */
    }
}

enum ws_result ws_decode(struct ws_dec *d, uint8_t *p, size_t n, size_t *used, size_t *out)
{
    size_t i = *used, o = *out;
    enum ws_result r = WS_DATA;
    while (i < n && r == WS_DATA) {
        if (!d->in_payload) {
            d->hdr[d->hlen++] = p[i++];
            if (d->hlen == 1) {
                if (d->hdr[0] & 0x70) {
                    r = fail(d, 1002, "reserved bits set");
                    break;
                }
                continue;
            }
            if (d->hlen == 2 && !(d->hdr[1] & 0x80)) {
                r = fail(d, 1002, "unmasked client frame");
                break;
            }
            uint8_t l7 = d->hdr[1] & 0x7f;
            size_t need = 2 + (l7 == 126 ? 2 : l7 == 127 ? 8 : 0) + 4;
            if (l7 == 127 && d->hlen == 3 && (d->hdr[2] & 0x80)) {
                r = fail(d, 1002, "64-bit length with the top bit set");
                break;
            }
            if (d->hlen < need)
                continue;
            r = header_done(d);
            if (r != WS_DATA)
                break;
            bool ctl = d->op >= WS_OP_CLOSE;
            if (d->left == 0)
                r = ctl ? control_done(d) : (d->in_payload = false, WS_DATA);
            continue;
        }
        size_t k = n - i;
        if (k > d->left)
            k = (size_t)d->left;
        if (d->op >= WS_OP_CLOSE) {
            for (size_t j = 0; j < k; j++)
                d->ctl[d->ctl_len++] = p[i + j] ^ d->mask[d->mpos++ & 3];
        } else {
            for (size_t j = 0; j < k; j++)
                p[o + j] = p[i + j] ^ d->mask[d->mpos++ & 3];
            o += k;
        }
        i += k;
        d->left -= k;
        if (d->left == 0) {
            if (d->op >= WS_OP_CLOSE)
                r = control_done(d);
            else
                d->in_payload = false;
        }
    }
    *used = i;
    *out = o;
    return r;
}

void ws_pong_sent(struct ws_dec *d)
{
    d->pong_due = d->pong_blocked = false;
    d->pong_missed = 0;
}

void ws_pong_blocked(struct ws_dec *d)
{
    d->pong_blocked = true;
}

size_t ws_put_header(uint8_t out[WS_HDR_MAX], enum ws_op op, uint64_t len)
{
    out[0] = (uint8_t)(0x80 | op);
    if (len < 126) {
        out[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xffff) {
        out[1] = 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++)
        out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
    return 10;
}

bool ws_key_ok(const char *key)
{
    size_t n = strlen(key);
    if (n != 24 || key[22] != '=' || key[23] != '=')
        return false;
    unsigned char raw[24];
    return EVP_DecodeBlock(raw, (const unsigned char *)key, 24) == 18;
}

void ws_accept(const char *key, char out[WS_ACCEPT_LEN + 1])
{
    unsigned char in[64 + sizeof WS_GUID], md[SHA_DIGEST_LENGTH];
    size_t kl = strnlen(key, 64), gl = sizeof WS_GUID - 1;
    memcpy(in, key, kl);
    memcpy(in + kl, WS_GUID, gl);
    SHA1(in, kl + gl, md);
    EVP_EncodeBlock((unsigned char *)out, md, SHA_DIGEST_LENGTH);
}
