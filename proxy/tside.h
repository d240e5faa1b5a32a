/* proxy/tside.h — the viewer's side of a connection: a socket that starts
 * plain (VeNCrypt negotiates in the clear) or TLS from the first byte
 * (SPICE), with OpenSSL driven without blocking.
 *
 * Both the VNC (conn.c) and the SPICE (spice_conn.c) state machines use it,
 * so the subtle parts live once:
 *   - the read side is a BIO over read(2) with read-ahead (one read() per
 *     batch of records; a short read clears rd_ready, so the relay does not
 *     ask again just to hear EAGAIN);
 *   - the write side is a BIO that collects TLS records in tlsout, which
 *     tside_flush() sends in one send(): one syscall per batch of records
 *     instead of one per 16 KiB record;
 *   - OpenSSL 3's ways of saying "the peer went away" (close_notify, EOF
 *     without it) are told apart from real errors;
 *   - the want-read/want-write crossings are kept as flags the caller
 *     turns into watcher masks.
 * No function here logs or closes anything: they return -1 with a reason
 * and the state machine decides. */
#ifndef VMGATE_TSIDE_H
#define VMGATE_TSIDE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <openssl/ssl.h>

#include "common/buf.h"
#include "proxy/ws.h"

#define TSIDE_RECORD      (16 * 1024)         /* plaintext per SSL_write */
#define TSIDE_OUT_CAP     (320 * 1024)        /* ciphertext waiting for the socket */
/* Headroom for a buffer tside_write_room sends from (buf_init_headroom):
 * a WebSocket frame header (at most WS_HDR_MAX bytes) goes in front of
 * the data, no copy; 16 keeps the data 16-byte aligned. */
#define TSIDE_HEADROOM    16

struct tside {
    int fd;
    SSL *ssl;                 /* NULL until tside_start_tls */
    bool eof;                 /* the peer closed (FIN, close_notify, or EOF mid-record) */
    bool rd_ready;            /* the fd signalled readable and was not drained since */
    bool read_wants_write;    /* SSL_read / the handshake needs the fd writable */
    bool write_wants_read;    /* SSL_write needs the fd readable */
    bool got_data;            /* at least one byte came from the peer */
    uint8_t head[12];         /* the peer's first bytes (raw, before TLS), for the log */
    uint8_t head_len;
    struct buf tlsout;        /* TLS records not yet sent */
    /* The WebSocket framing (web_conn.c), NULL for a raw stream: when set,
     * reads return the payload of the client's binary frames (pings
     * answered: one pong owed at a time, the latest ping's, sent when the
     * output has room; a ping flood while the peer does not read fails
     * with 1008; a close reads as EOF) and each write goes out as binary
     * frames.  Owned (freed by tside_close). */
    struct ws_dec *ws;
    bool ws_closed;           /* a close frame was sent: nothing more goes out */
};

void tside_init(struct tside *t, int fd);
/* Free the TLS session and buffers and close the fd (sends nothing, but
 * for a WebSocket close frame already queued: one non-blocking try). */
void tside_close(struct tside *t);
/* Start server-side TLS on the fd.  0, or -1 (out of memory). */
int tside_start_tls(struct tside *t, SSL_CTX *ctx);
/* Drive the handshake: 1 done, 0 in progress (see the wants flags and
 * tside_pending), -1 failed with why set. */
int tside_handshake(struct tside *t, char *why, size_t whylen);
/* Read at most max bytes into dst (plain before TLS: only when rd_ready,
 * which the caller sets when the fd signals readable).  Returns the count,
 * 0 when nothing is there now, -1 when the peer closed (t->eof, why says
 * "closed") or on an error (why says what). */
ssize_t tside_read(struct tside *t, struct buf *dst, size_t max, char *why, size_t whylen);
/* Send from p (len bytes): plain send(), or encrypt into tlsout (at most
 * one record per call while there is room) and flush.  Returns how many
 * bytes of p were taken (0: the socket is full, wait for writable), or -1
 * with why set. */
ssize_t tside_write(struct tside *t, const uint8_t *p, size_t len, char *why, size_t whylen);
/* The same, from a buffer whose headroom bytes before p are free: on a
 * WebSocket each frame's header is written in front of its payload (into
 * that headroom, then into the bytes of p already taken) and header and
 * payload go to SSL_write as one span, without copying the payload.  With
 * less headroom than a header needs, the payload is copied as by
 * tside_write.  The headroom, and the bytes of p that are taken, may be
 * overwritten; the rest of p is not. */
ssize_t tside_write_room(struct tside *t, uint8_t *p, size_t len, size_t headroom,
                         char *why, size_t whylen);
/* Send buffered TLS records (and then a WebSocket pong that waited for
 * room).  0, or -1 with why set. */
int tside_flush(struct tside *t, char *why, size_t whylen);
/* Bytes of TLS records still to send. */
static inline size_t tside_pending(const struct tside *t) { return buf_len(&t->tlsout); }
/* Whether OpenSSL holds received bytes the fd will not signal again. */
static inline bool tside_has_pending(const struct tside *t) { return t->ssl && SSL_has_pending(t->ssl); }
/* Turn on the WebSocket framing (TLS only): from now on reads and writes
 * carry binary frames.  0, or -1 (out of memory). */
int tside_ws_start(struct tside *t, uint64_t frame_max);
/* Send a WebSocket close frame with code, once (best effort). */
void tside_ws_close(struct tside *t, uint16_t code);
/* Queue a close_notify and try to send it (best effort). */
void tside_shutdown(struct tside *t);

#endif
