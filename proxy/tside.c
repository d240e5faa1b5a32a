/* proxy/tside.c — see tside.h. */
#include "proxy/tside.h"

#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#define WHY(...) snprintf(why, whylen, __VA_ARGS__)
#define RECORD_ROOM (TSIDE_RECORD + 512)   /* a whole record with its overhead */
/* A WebSocket control frame's record (at most 2 + 125 bytes plus the TLS
 * overhead).  A close needs CTL_ROOM, a pong twice that, so a pong never
 * takes the room of the close that may follow it; data needs RECORD_ROOM
 * and leaves more than CTL_ROOM behind too: the close always fits. */
#define CTL_ROOM 256

/* ---- the write BIO: records collect in t->tlsout ---- */

static BIO_METHOD *out_method;

static int out_write(BIO *bio, const char *data, int len)
{
    struct tside *t = BIO_get_data(bio);
    BIO_clear_retry_flags(bio);
    size_t avail;
    uint8_t *tail = buf_tail(&t->tlsout, &avail);
    if (!tail || avail == 0) {
        BIO_set_retry_write(bio);
        return -1;
    }
    size_t n = (size_t)len < avail ? (size_t)len : avail;
    memcpy(tail, data, n);
    buf_produce(&t->tlsout, n);
    return (int)n;
}

/* Both BIOs: nothing to control; a flush is the event loop's job. */
static long bio_ctrl(BIO *bio, int cmd, long num, void *ptr)
{
    (void)bio;
    (void)num;
    (void)ptr;
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int bio_create(BIO *bio)
{
    BIO_set_init(bio, 1);
    return 1;
}

/* A BIO of our own kind over t: method made once (cached in *slot). */
static BIO *tside_bio(struct tside *t, BIO_METHOD **slot, const char *name,
                      int (*rd)(BIO *, char *, int), int (*wr)(BIO *, const char *, int))
{
    if (!*slot) {
        BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, name);
        if (!m || (rd && !BIO_meth_set_read(m, rd)) || (wr && !BIO_meth_set_write(m, wr)) ||
            !BIO_meth_set_ctrl(m, bio_ctrl) || !BIO_meth_set_create(m, bio_create)) {
            BIO_meth_free(m);
            return NULL;
        }
        *slot = m;
    }
    BIO *b = BIO_new(*slot);
    if (b)
        BIO_set_data(b, t);
    return b;
}

/* Keep the first bytes the peer sent (a PROXY header from a source that
 * may not send one is named in the log). */
static void keep_head(struct tside *t, const uint8_t *p, size_t n)
{
    size_t room = sizeof t->head - t->head_len;
    if (room == 0)
        return;
    if (n > room)
        n = room;
    memcpy(t->head + t->head_len, p, n);
    t->head_len = (uint8_t)(t->head_len + n);
}

/* ---- the read BIO: read(2), and a short read means the socket is empty ---- */

static BIO_METHOD *in_method;

/* OpenSSL asks for as much as its read-ahead buffer holds; when read()
 * returns less, the socket had no more, so rd_ready drops and the relay
 * does not spend a syscall on the EAGAIN the next read would get (the
 * level-triggered watcher sets it again when more arrives). */
static int in_read(BIO *bio, char *buf, int len)
{
    struct tside *t = BIO_get_data(bio);
    BIO_clear_retry_flags(bio);
    ssize_t n = read(t->fd, buf, (size_t)len);
    if (n > 0) {
        t->got_data = true;
        keep_head(t, (const uint8_t *)buf, (size_t)n);
        if (n < len)
            t->rd_ready = false;
        return (int)n;
    }
    if (n == 0)
        return 0;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
        t->rd_ready = false;
        BIO_set_retry_read(bio);
    }
    return -1;
}

/* One short line for the OpenSSL error queue (or errno), then clear it. */
static void tls_err(char *why, size_t whylen)
{
    unsigned long e = ERR_get_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    if (e)
        WHY("%s", r ? r : "unknown TLS error");
    else
        WHY("%s", errno ? strerror(errno) : "connection closed");
    ERR_clear_error();
}

void tside_init(struct tside *t, int fd)
{
    memset(t, 0, sizeof *t);
    t->fd = fd;
    buf_init(&t->tlsout, TSIDE_OUT_CAP);
}

void tside_close(struct tside *t)
{
    if (t->ws_closed && t->ssl && t->fd >= 0) {
        char why[64];                   /* a refused frame's close code: best effort */
        tside_flush(t, why, sizeof why);
    }
    if (t->ssl)
        SSL_free(t->ssl);
    t->ssl = NULL;
    free(t->ws);
    t->ws = NULL;
    buf_free(&t->tlsout);
    if (t->fd >= 0)
        close(t->fd);
    t->fd = -1;
}

int tside_start_tls(struct tside *t, SSL_CTX *ctx)
{
    t->ssl = SSL_new(ctx);
    BIO *rb = t->ssl ? tside_bio(t, &in_method, "vmgate-tlsin", in_read, NULL) : NULL;
    BIO *wb = rb ? tside_bio(t, &out_method, "vmgate-tlsout", NULL, out_write) : NULL;
    if (!wb) {
        BIO_free(rb);
        SSL_free(t->ssl);
        t->ssl = NULL;
        return -1;
    }
    SSL_set_bio(t->ssl, rb, wb);
    SSL_set_read_ahead(t->ssl, 1);       /* one read() per record, not two */
    SSL_set_accept_state(t->ssl);
    return 0;
}

static bool ws_pong_out(struct tside *t);

static int flush_out(struct tside *t, char *why, size_t whylen)
{
    while (!buf_empty(&t->tlsout)) {
        ssize_t n = send(t->fd, buf_head(&t->tlsout), buf_len(&t->tlsout), MSG_NOSIGNAL);
        if (n > 0) {
            buf_consume(&t->tlsout, (size_t)n);
            continue;
        }
        if (n == -1 && (errno == EAGAIN || errno == EINTR))
            return 0;
        WHY("%s", n == -1 ? strerror(errno) : "connection closed");
        return -1;
    }
    buf_trim(&t->tlsout);
    return 0;
}

int tside_flush(struct tside *t, char *why, size_t whylen)
{
    if (flush_out(t, why, whylen) < 0)
        return -1;
    /* a pong that waited for room goes out now that some was made */
    if (ws_pong_out(t))
        return flush_out(t, why, whylen);
    return 0;
}

int tside_handshake(struct tside *t, char *why, size_t whylen)
{
    ERR_clear_error();
    errno = 0;
    int r = SSL_do_handshake(t->ssl);
    if (tside_flush(t, why, whylen) < 0)
        return -1;
    if (r == 1)
        return 1;
    int err = SSL_get_error(t->ssl, r);
    if (err == SSL_ERROR_WANT_READ) {
        t->read_wants_write = false;
        return 0;
    }
    if (err == SSL_ERROR_WANT_WRITE) {
        t->read_wants_write = true;
        return 0;
    }
    tls_err(why, whylen);
    return -1;
}

/* Read at most avail bytes of the byte stream (plain or TLS plaintext)
 * into tail; the count, 0 (nothing now) or -1 (closed or failed). */
static ssize_t read_raw(struct tside *t, uint8_t *tail, size_t avail, char *why, size_t whylen)
{
    if (!t->ssl) {
        if (!t->rd_ready)
            return 0;                   /* nothing came since it was drained */
        ssize_t n = recv(t->fd, tail, avail, 0);
        if (n > 0) {
            t->got_data = true;
            keep_head(t, tail, (size_t)n);
            if ((size_t)n < avail)
                t->rd_ready = false;    /* a short read emptied the socket */
            return n;
        }
        if (n == 0) {
            t->eof = true;
            WHY("closed");
            return -1;
        }
        if (errno == EAGAIN || errno == EINTR) {
            t->rd_ready = false;
            return 0;
        }
        WHY("%s", strerror(errno));
        return -1;
    }
    t->read_wants_write = false;
    ERR_clear_error();
    errno = 0;
    int n = SSL_read(t->ssl, tail, (int)(avail > INT32_MAX ? INT32_MAX : avail));
    if (n > 0)
        return n;
    switch (SSL_get_error(t->ssl, n)) {
    case SSL_ERROR_WANT_READ:
        t->rd_ready = false;
        return 0;
    case SSL_ERROR_WANT_WRITE:
        t->read_wants_write = true;
        return 0;
    case SSL_ERROR_ZERO_RETURN:
        t->eof = true;
        WHY("closed");
        return -1;
    case SSL_ERROR_SSL:
        /* OpenSSL 3's way of saying the peer vanished without close_notify */
        if (ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
            ERR_clear_error();
            t->eof = true;
            WHY("closed");
            return -1;
        }
        tls_err(why, whylen);
        return -1;
    default:
        if (errno == 0) {
            t->eof = true;
            WHY("closed");
            return -1;
        }
        tls_err(why, whylen);
        return -1;
    }
}

/* Send one WebSocket control frame (pong, close) with payload p into the
 * TLS records waiting to go out, when at least room bytes are free there.
 * Whether it was queued. */
static bool ws_send_control(struct tside *t, enum ws_op op, const uint8_t *p, size_t len,
                            size_t room)
{
    uint8_t fr[WS_HDR_MAX + WS_CTL_MAX];
    if (!t->ssl || len > WS_CTL_MAX || buf_room(&t->tlsout) < room)
        return false;
    size_t h = ws_put_header(fr, op, len);
    memcpy(fr + h, p, len);
    ERR_clear_error();
    if (SSL_write(t->ssl, fr, (int)(h + len)) <= 0) {
        ERR_clear_error();
        return false;
    }
    return true;
}

/* The pong owed (the latest ping's echo), if there is room for it; else
 * it stays owed (a newer ping replaces it) and the decoder counts the
 * pings that come meanwhile.  Whether one was queued. */
static bool ws_pong_out(struct tside *t)
{
    struct ws_dec *d = t->ws;
    if (!d || !d->pong_due || t->ws_closed)
        return false;
    if (!ws_send_control(t, WS_OP_PONG, d->pong, d->pong_len, 2 * CTL_ROOM)) {
        ws_pong_blocked(d);
        return false;
    }
    ws_pong_sent(d);
    return true;
}

/* Close the WebSocket with code (best effort). */
static void ws_send_close(struct tside *t, uint16_t code)
{
    uint8_t b[2] = { (uint8_t)(code >> 8), (uint8_t)code };
    ws_send_control(t, WS_OP_CLOSE, b, 2, CTL_ROOM);
}

void tside_ws_close(struct tside *t, uint16_t code)
{
    if (t->ws && !t->ws_closed) {
        ws_send_close(t, code);
        t->ws_closed = true;
    }
}

/* The WebSocket read: raw bytes into tail, decoded in place.  The pings of
 * one read are answered with one pong (the latest's), now or when the
 * output has room; a close is answered and reads as the peer closing, a
 * refused frame (a ping flood too) sends its close code and fails. */
static ssize_t read_ws(struct tside *t, uint8_t *tail, size_t avail, char *why, size_t whylen)
{
    for (;;) {
        ssize_t n = read_raw(t, tail, avail, why, whylen);
        if (n <= 0)
            return n;
        size_t used = 0, out = 0;
        for (;;) {
            enum ws_result r = ws_decode(t->ws, tail, (size_t)n, &used, &out);
            if (r == WS_DATA)
                break;
            if (r == WS_PING)
                continue;                       /* owed: ws_pong_out below */
            if (r == WS_CLOSE) {
                uint16_t code = t->ws->close_code;
                tside_ws_close(t, code == 1005 || code == 1006 ? 1000 : code);
                t->eof = true;
                WHY("closed");
                return -1;
            }
            tside_ws_close(t, t->ws->close_code);
            WHY("WebSocket: %s", t->ws->why);
            return -1;
        }
        ws_pong_out(t);
        if (out > 0)
            return (ssize_t)out;
        /* only frame headers came: read again (the fd may hold more) */
    }
}

ssize_t tside_read(struct tside *t, struct buf *dst, size_t max, char *why, size_t whylen)
{
    size_t avail;
    uint8_t *tail = buf_tail(dst, &avail);
    if (!tail)
        return 0;
    if (avail > max)
        avail = max;
    ssize_t n = t->ws ? read_ws(t, tail, avail, why, whylen) : read_raw(t, tail, avail, why, whylen);
    if (n > 0)
        buf_produce(dst, (size_t)n);
    else
        buf_trim(dst);
    return n;
}

/* The WebSocket write: each record carries one whole binary frame of the
 * next bytes of p, so frames never interleave with the pongs and closes
 * read_ws sends.  When room bytes before p are free, a frame's header goes
 * just in front of its payload and the two are one SSL_write, no copy: for
 * the first frame into that headroom, for the next ones over the end of
 * the payload SSL_write has already taken.  Otherwise the payload is
 * copied behind the header; always when w is NULL (p is read-only), else
 * w is p, writable.  SSL_write never has to be retried here (with
 * the same buffer, as OpenSSL wants without
 * SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER): it runs only when tlsout has room
 * for a whole record, so the BIO takes it all.  Returns how many bytes of
 * p were taken, or -1. */
static ssize_t write_ws(struct tside *t, const uint8_t *p, uint8_t *w, size_t len, size_t room,
                        char *why, size_t whylen)
{
    uint8_t fr[TSIDE_RECORD];
    size_t done = 0;
    if (t->ws_closed)
        return (ssize_t)len;                    /* nothing may follow a close frame */
    while (done < len) {
        if (buf_room(&t->tlsout) < RECORD_ROOM) {
            if (tside_flush(t, why, whylen) < 0)
                return -1;
            if (buf_room(&t->tlsout) < RECORD_ROOM)
                break;                          /* socket full: wait */
        }
        size_t chunk = len - done < TSIDE_RECORD - 4 ? len - done : TSIDE_RECORD - 4;
        uint8_t hdr[WS_HDR_MAX];
        size_t h = ws_put_header(hdr, WS_OP_BINARY, chunk);
        uint8_t *out;
        if (w && room + done >= h) {
            out = w + done - h;                 /* free: headroom, or taken already */
            memcpy(out, hdr, h);
        } else {
            out = fr;
            memcpy(fr, hdr, h);
            memcpy(fr + h, p + done, chunk);
        }
        t->write_wants_read = false;
        ERR_clear_error();
        int n = SSL_write(t->ssl, out, (int)(h + chunk));
        if (n == (int)(h + chunk)) {
            done += chunk;
            continue;
        }
        if (n > 0) {
            WHY("internal: partial WebSocket frame");
            return -1;
        }
        tls_err(why, whylen);
        return -1;
    }
    if (tside_flush(t, why, whylen) < 0)
        return -1;
    return (ssize_t)done;
}

/* The TLS or plain write (no framing). */
static ssize_t write_stream(struct tside *t, const uint8_t *p, size_t len, char *why,
                            size_t whylen)
{
    if (!t->ssl) {
        ssize_t n = send(t->fd, p, len, MSG_NOSIGNAL);
        if (n >= 0)
            return n;
        if (errno == EAGAIN || errno == EINTR)
            return 0;
        WHY("%s", strerror(errno));
        return -1;
    }
    size_t done = 0;
    while (done < len) {
        if (buf_room(&t->tlsout) < RECORD_ROOM) {
            if (tside_flush(t, why, whylen) < 0)
                return -1;
            if (buf_room(&t->tlsout) < RECORD_ROOM)
                break;                          /* socket full: wait */
        }
        size_t chunk = len - done < TSIDE_RECORD ? len - done : TSIDE_RECORD;
        t->write_wants_read = false;
        ERR_clear_error();
        errno = 0;
        int n = SSL_write(t->ssl, p + done, (int)chunk);
        if (n > 0) {
            done += (size_t)n;
            continue;
        }
        int err = SSL_get_error(t->ssl, n);
        if (err == SSL_ERROR_WANT_WRITE) {
            if (tside_flush(t, why, whylen) < 0)
                return -1;
            break;
        }
        if (err == SSL_ERROR_WANT_READ) {
            t->write_wants_read = true;
            break;
        }
        tls_err(why, whylen);
        return -1;
    }
    if (tside_flush(t, why, whylen) < 0)
        return -1;
    return (ssize_t)done;
}

ssize_t tside_write(struct tside *t, const uint8_t *p, size_t len, char *why, size_t whylen)
{
    if (t->ssl && t->ws)
        return write_ws(t, p, NULL, len, 0, why, whylen);
    return write_stream(t, p, len, why, whylen);
}

ssize_t tside_write_room(struct tside *t, uint8_t *p, size_t len, size_t headroom,
                         char *why, size_t whylen)
{
    if (t->ssl && t->ws)
        return write_ws(t, p, p, len, headroom, why, whylen);
    return write_stream(t, p, len, why, whylen);
}

void tside_shutdown(struct tside *t)
{
    if (!t->ssl || t->eof)
        return;
    tside_ws_close(t, 1000);                    /* WebSocket: its close frame first */
    ERR_clear_error();
    SSL_shutdown(t->ssl);
    char why[64];
    tside_flush(t, why, sizeof why);
    ERR_clear_error();
}

int tside_ws_start(struct tside *t, uint64_t frame_max)
{
    if (!t->ssl || t->ws)
        return -1;
    t->ws = malloc(sizeof *t->ws);
    if (!t->ws)
        return -1;
    ws_dec_init(t->ws, frame_max);
    return 0;
}
