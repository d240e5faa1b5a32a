/* proxy/ws.h — the WebSocket (RFC 6455) framing of the browser console,
 * without I/O: the opening handshake's accept key, a streaming decoder of
 * client frames that unmasks in place, and server frame headers.
 *
 * The console carries RFB as a byte stream in binary messages: a message's
 * frame boundaries mean nothing to RFB (noVNC sends one RFB message per
 * WebSocket message, but the credentials come as several), so the decoder
 * hands out payload bytes as they arrive, never waiting for a whole frame.
 * Refused with a close code: unmasked client frames, reserved bits (no
 * extension is negotiated), unknown opcodes, text frames (1003), a
 * continuation without a started message or a new message inside one,
 * fragmented or over-long (> 125) control frames, 64-bit lengths with the
 * top bit set (1002), data frames longer than the limit (1009).
 *
 * Pings: the decoder keeps one pong owed, the echo of the latest ping (RFC
 * 6455 5.5.3 lets an endpoint answer only the most recent one), so a burst
 * of pings costs one pong, never a queue of them.  The caller sends it
 * when its output has room (ws_pong_sent) or says it could not
 * (ws_pong_blocked); more than WS_PING_FLOOD pings arriving while the owed
 * pong is blocked behind output the peer does not read is a flood, refused
 * with 1008 (policy violation). */
#ifndef VMGATE_WS_H
#define VMGATE_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WS_ACCEPT_LEN   28          /* base64 of a SHA-1 */
#define WS_HDR_MAX      10          /* a server frame header (no mask) */
#define WS_CTL_MAX      125
#define WS_PING_FLOOD   100         /* pings tolerated while the owed pong cannot go out */

enum ws_op { WS_OP_CONT = 0, WS_OP_TEXT = 1, WS_OP_BINARY = 2, WS_OP_CLOSE = 8,
             WS_OP_PING = 9, WS_OP_PONG = 10 };

/* What ws_decode stopped for. */
enum ws_result {
    WS_DATA,        /* every input byte is consumed */
    WS_PING,        /* a ping arrived (payload d->ctl, now also the owed pong); call again */
    WS_CLOSE,       /* a close arrived (d->close_code, 1005 when it had none): answer, stop */
    WS_ERROR,       /* refused: send a close with d->close_code, stop (d->why) */
};

struct ws_dec {
    uint64_t max;                   /* data frame payload limit */
    uint8_t hdr[14];
    size_t hlen;                    /* header bytes collected (0: between frames) */
    bool in_payload;
    uint8_t op;
    bool fin;
    uint64_t left;                  /* payload bytes still to come */
    uint8_t mask[4];
    unsigned mpos;
    bool in_msg;                    /* a fragmented binary message goes on */
    uint8_t ctl[WS_CTL_MAX];
    size_t ctl_len;
    uint16_t close_code;
    const char *why;
    /* the pong owed to the peer: the latest ping's payload */
    bool pong_due;
    bool pong_blocked;              /* the last try to send it found the output full */
    uint8_t pong[WS_CTL_MAX];
    size_t pong_len;
    unsigned pong_missed;           /* pings that came while it was blocked */
};

/* A decoder for client frames whose data frames carry at most max bytes. */
void ws_dec_init(struct ws_dec *d, uint64_t max);

/* Decode p[*used..n): data payload bytes are unmasked and moved down to
 * p[*out..] (the output never overtakes the input, so this works in
 * place); both indexes advance.  Returns why it stopped (see enum). */
enum ws_result ws_decode(struct ws_dec *d, uint8_t *p, size_t n, size_t *used, size_t *out);

/* The owed pong (d->pong, d->pong_len) went out: nothing is owed. */
void ws_pong_sent(struct ws_dec *d);
/* The owed pong could not go out (no room: the peer does not read); pings
 * from now until ws_pong_sent count towards WS_PING_FLOOD. */
void ws_pong_blocked(struct ws_dec *d);

/* A server frame header (FIN set, no mask) for op and len into out.
 * Returns its length (2, 4 or 10). */
size_t ws_put_header(uint8_t out[WS_HDR_MAX], enum ws_op op, uint64_t len);

/* Whether key is a valid Sec-WebSocket-Key (base64 of 16 bytes). */
bool ws_key_ok(const char *key);
/* Sec-WebSocket-Accept for key: base64(SHA-1(key + GUID)), NUL-terminated. */
void ws_accept(const char *key, char out[WS_ACCEPT_LEN + 1]);

#endif
