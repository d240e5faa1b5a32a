/* proxy/conn.c — one viewer connection, from accept to close.
 *
 * The life of a connection is the explicit state enum below.  Events on the
 * two sockets (front = viewer, back = VM) and the timers only record what
 * happened and call conn_drive(), which advances the state machine as far as
 * the buffered bytes allow; conn_update_io() then derives the watcher masks
 * from the state and the buffers.  No other code starts or stops watchers.
 *
 * Failure handling: any step that decides the connection is over calls
 * conn_fail(), which only records the reason; the event callback that is on
 * the stack destroys the connection when it unwinds, so no function ever
 * touches a freed connection.
 *
 * Buffers: rx (pre-auth viewer bytes), brx (backend handshake bytes), f2b
 * (viewer -> VM) and b2f (VM -> viewer, also every message we send to the
 * viewer).  All are bounded and lazily allocated; a full buffer stops the
 * read side that fills it (backpressure).  Once relaying, an idle session
 * holds no buffer memory. */
#include "proxy/proxy_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#include "common/buf.h"
#include "common/log.h"
#include "proxy/backend.h"
#include "proxy/qmp.h"
#include "proxy/rfb.h"
#include "proxy/rfbfilter.h"
#include "proxy/tside.h"

#define CONN_MAGIC      0x76676331u      /* "vgc1" */
#define RX_CAP          2048             /* creds: 8 + 255 + 1024 */
#define BRX_CAP         4096
#define F2B_CAP         (64 * 1024)
#define B2F_CAP         (256 * 1024)
#define CLOSE_LINGER    5.0              /* seconds to flush a final message */

#define REASON_AUTH     "Authentication failed"

enum conn_state {
    CS_READ_VERSION,      /* sent "RFB 003.008\n", waiting for the viewer's */
    CS_READ_SECTYPE,      /* offered [19], waiting for the choice */
    CS_READ_VC_VERSION,   /* sent VeNCrypt 0.2, waiting for the viewer's */
    CS_READ_VC_SUBTYPE,   /* offered [262], waiting for the choice */
    CS_SEND_ACK,          /* the 01 ack is queued; TLS starts once it left */
    CS_TLS_HANDSHAKE,
    CS_READ_CREDS,        /* inside TLS: U32 ulen, U32 plen, user, pass */
    CS_AUTH_WAIT,         /* request is with the auth helper */
    CS_FAIL_DELAY,        /* login failed; answer held back by fail_delay */
    CS_BACKEND_CONNECT,   /* connecting to unix:/tcp: or to the QMP socket */
    CS_QMP,               /* QMP handoff in progress */
    CS_BACKEND_HANDSHAKE, /* RFB version/security None with the VM */
    CS_READ_CLIENTINIT,   /* SecurityResult OK sent, waiting for ClientInit */
    CS_RELAY,
    CS_CLOSING,           /* flushing a last message to the viewer */
};

static const char *const state_name[] = {
    [CS_READ_VERSION] = "version", [CS_READ_SECTYPE] = "security-type",
    [CS_READ_VC_VERSION] = "vencrypt-version", [CS_READ_VC_SUBTYPE] = "vencrypt-subtype",
    [CS_SEND_ACK] = "vencrypt-ack", [CS_TLS_HANDSHAKE] = "tls-handshake",
    [CS_READ_CREDS] = "credentials", [CS_AUTH_WAIT] = "auth-wait",
    [CS_FAIL_DELAY] = "fail-delay", [CS_BACKEND_CONNECT] = "backend-connect",
    [CS_QMP] = "qmp-handoff", [CS_BACKEND_HANDSHAKE] = "backend-handshake",
    [CS_READ_CLIENTINIT] = "client-init", [CS_RELAY] = "relay", [CS_CLOSING] = "closing",
};

enum bh_state { BH_VERSION, BH_SECTYPES, BH_SECRESULT };
enum qmp_step { Q_GREETING, Q_CAPS, Q_GETFD, Q_ADD_CLIENT };

struct conn {
    unsigned magic;
    struct proxy *px;
    const struct cfg_vm *vm;
    struct conn *next, *prev;
    uint64_t id;
    enum conn_state state;
    char rhost[INET6_ADDRSTRLEN];
    char user[RFB_PLAIN_USER_MAX + 1];
    int minor;                    /* viewer's RFB minor version */
    int be_minor;                 /* backend's */
    bool unauth;                  /* counted in px->n_unauth */
    bool logged_start;
    struct conn_end end;          /* set by conn_fail() */

    /* front: the viewer */
    struct tside fs;
    ev_io fw;
    int fw_mask;
    struct buf rx, b2f;

    /* back: the VM (or its QMP socket during the handoff) */
    int bfd;
    int qfd;                      /* QMP socket during CS_QMP */
    int handoff_fd;               /* our end of the socketpair, passed to QEMU */
    enum bh_state bh;
    enum qmp_step qstep;
    ev_io bw;
    int bw_fd, bw_mask;
    bool back_rd_ready;
    struct buf brx, f2b;

    /* relay: every message is delimited and the clipboard policed */
    struct rfbfilter *flt;
    size_t b2f_ok, f2b_ok;        /* approved (parsed) prefix of b2f / f2b */
    struct buf inj_front, inj_back;  /* messages the filter releases or makes */

    ev_timer login_timer;         /* whole pre-auth phase */
    ev_timer delay_timer;         /* fail delay, close linger */
};

static void conn_drive(struct conn *c);
static void conn_update_io(struct conn *c);
static void conn_destroy(struct conn *c);
static void front_cb(struct ev_loop *loop, ev_io *w, int revents);
static void back_cb(struct ev_loop *loop, ev_io *w, int revents);

/* ---------------------------------------------------------------------- */
/* logging                                                                 */

static void conn_log(struct conn *c, enum log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void conn_log(struct conn *c, enum log_level lvl, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    proxy_conn_log(lvl, c->id, c->vm->name, c->state >= CS_BACKEND_CONNECT ? c->user : NULL,
                   c->rhost, fmt, ap);
    va_end(ap);
}

/* Record that the connection is over; the callback on the stack frees it.
 * The first reason wins. */
static void conn_fail(struct conn *c, enum log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void conn_fail(struct conn *c, enum log_level lvl, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    conn_end_set(&c->end, lvl, fmt, ap);
    va_end(ap);
}

static void set_state(struct conn *c, enum conn_state s)
{
    log_debug("conn=%llu state %s -> %s", (unsigned long long)c->id, state_name[c->state],
              state_name[s]);
    c->state = s;
}

static void unauth_done(struct conn *c)
{
    if (c->unauth) {
        c->unauth = false;
        c->px->n_unauth--;
    }
}

/* ---------------------------------------------------------------------- */
/* front (viewer) I/O                                                      */

/* Queue bytes for the viewer.  Messages we generate are small; the b2f
 * buffer always has room for them outside the relay phase. */
static void front_queue(struct conn *c, const void *p, size_t n)
{
    if (buf_put(&c->b2f, p, n) != 0)
        conn_fail(c, LOG_LVL_ERR, "internal: viewer buffer full");
}

/* Read up to max bytes from the viewer into dst (plain before TLS, SSL_read
 * after).  Returns bytes read, 0 when nothing is available now, -1 when the
 * viewer closed or failed (conn_fail called). */
static ssize_t front_read(struct conn *c, struct buf *dst, size_t max)
{
    char why[160];
    ssize_t n = tside_read(&c->fs, dst, max, why, sizeof why);
    if (n >= 0)
        return n;
    if (c->fs.eof)
        conn_fail(c, LOG_LVL_INFO, "viewer closed the connection in state %s",
                  state_name[c->state]);
    else if (c->fs.ssl)
        conn_fail(c, LOG_LVL_INFO, "TLS error from viewer: %s", why);
    else
        conn_fail(c, LOG_LVL_INFO, "viewer read error: %s", why);
    return -1;
}

/* What one side may be sent now.  Before the relay: the whole stream
 * buffer.  In the relay: the approved prefix of the stream buffer first,
 * then the injection buffer (messages the filter releases or makes). */
static struct buf *out_source(const struct conn *c, struct buf *stream, size_t ok,
                              struct buf *inj, size_t *len)
{
    if (!c->flt) {
        *len = buf_len(stream);
        return stream;
    }
    if (ok) {
        *len = ok;
        return stream;
    }
    *len = buf_len(inj);
    return inj;
}

static size_t out_pending(const struct conn *c, const struct buf *stream, size_t ok,
                          const struct buf *inj)
{
    return c->flt ? ok + buf_len(inj) : buf_len(stream);
}

static void sent(struct conn *c, struct buf *b, size_t n)
{
    buf_consume(b, n);
    if (b == &c->b2f && c->flt)
        c->b2f_ok -= n;
    else if (b == &c->f2b && c->flt)
        c->f2b_ok -= n;
}

/* Send the viewer what it may get now.  0, or -1 (conn_fail called). */
static int front_flush(struct conn *c)
{
    char why[160];
    for (;;) {
        size_t len;
        struct buf *src = out_source(c, &c->b2f, c->b2f_ok, &c->inj_front, &len);
        if (len == 0)
            break;
        ssize_t n = tside_write(&c->fs, buf_head(src), len, why, sizeof why);
        if (n < 0) {
            conn_fail(c, LOG_LVL_INFO, "write to viewer failed: %s", why);
            return -1;
        }
        if (n == 0)
            return 0;                       /* the socket is full */
        sent(c, src, (size_t)n);
    }
    buf_trim(&c->b2f);
    buf_trim(&c->inj_front);
    if (tside_flush(&c->fs, why, sizeof why) < 0) {
        conn_fail(c, LOG_LVL_INFO, "write to viewer failed: %s", why);
        return -1;
    }
    return 0;
}

static size_t front_pending(struct conn *c)
{
    return tside_pending(&c->fs) + out_pending(c, &c->b2f, c->b2f_ok, &c->inj_front);
}

/* Send a SecurityResult failure with reason and close once it is out. */
static void front_refuse(struct conn *c, const char *reason)
{
    uint8_t msg[8 + 128];
    size_t n = rfb_put_sec_failure(msg, sizeof msg, c->minor, reason);
    front_queue(c, msg, n);
    set_state(c, CS_CLOSING);
    ev_timer_stop(c->px->loop, &c->delay_timer);
    ev_timer_set(&c->delay_timer, CLOSE_LINGER, 0);
    ev_timer_start(c->px->loop, &c->delay_timer);
}

/* ---------------------------------------------------------------------- */
/* back (VM) I/O                                                           */

static int back_flush(struct conn *c)
{
    for (;;) {
        size_t len;
        struct buf *src = out_source(c, &c->f2b, c->f2b_ok, &c->inj_back, &len);
        if (!len)
            break;
        ssize_t n = send(c->bfd, buf_head(src), len, MSG_NOSIGNAL);
        if (n > 0) {
            sent(c, src, (size_t)n);
            continue;
        }
        if (n == -1 && (errno == EAGAIN || errno == EINTR))
            return 0;
        conn_fail(c, LOG_LVL_INFO, "VM closed the console (%s)",
                  n == -1 ? strerror(errno) : "write returned 0");
        return -1;
    }
    buf_trim(&c->f2b);
    buf_trim(&c->inj_back);
    return 0;
}

static size_t back_pending(struct conn *c)
{
    return out_pending(c, &c->f2b, c->f2b_ok, &c->inj_back);
}

/* ---------------------------------------------------------------------- */
/* the login                                                               */

static void backend_start(struct conn *c);
static void after_event(struct conn *c);

static void auth_done(void *ctx, const struct authp_login_resp *resp)
{
    struct conn *c = ctx;
    if (c->magic != CONN_MAGIC || c->state != CS_AUTH_WAIT)
        return;
    char user[RFB_PLAIN_USER_MAX + 1];
    log_safe(user, sizeof user, c->user, sizeof c->user);
    if (resp->result == AUTHP_OK) {
        conn_log(c, LOG_LVL_INFO, "user \"%s\" authenticated", user);
        backend_start(c);
    } else {
        char det[AUTHP_DETAIL_MAX + 1];
        log_safe(det, sizeof det, resp->detail, sizeof resp->detail);
        conn_log(c, resp->result == AUTHP_ERROR ? LOG_LVL_WARN : LOG_LVL_INFO,
                 "login failed for user \"%s\": %s%s%s%s", user,
                 proxy_login_reason(resp->result), det[0] ? " (" : "", det, det[0] ? ")" : "");
        set_state(c, CS_FAIL_DELAY);
        ev_timer_set(&c->delay_timer, proxy_fail_delay_from(c->px, resp->submitted), 0);
        ev_timer_start(c->px->loop, &c->delay_timer);
    }
    after_event(c);
}

static void submit_login(struct conn *c, char *pass)
{
    struct authp_login_req req;
    memset(&req, 0, sizeof req);
    snprintf(req.vm, sizeof req.vm, "%s", c->vm->name);
    memcpy(req.user, c->user, sizeof req.user);
    memcpy(req.password, pass, strlen(pass) + 1);
    snprintf(req.rhost, sizeof req.rhost, "%s", c->rhost);
    set_state(c, CS_AUTH_WAIT);
    if (auth_client_submit(c->px->auth, &req, c->fs.fd, auth_done, c) != 0)
        conn_fail(c, LOG_LVL_ERR, "could not submit login request");
    explicit_bzero(&req, sizeof req);
}

/* ---------------------------------------------------------------------- */
/* the backend                                                             */

static void vm_unavailable(struct conn *c, const char *detail)
{
    conn_log(c, LOG_LVL_WARN, "vm %s is not running (%s)", c->vm->name, detail);
    char reason[128];
    snprintf(reason, sizeof reason, "VM %s is not running", c->vm->name);
    front_refuse(c, reason);
}

static void bw_watch(struct conn *c, int fd)
{
    if (ev_is_active(&c->bw))
        ev_io_stop(c->px->loop, &c->bw);
    c->bw_fd = fd;
    c->bw_mask = 0;
}

static void qmp_send(struct conn *c, const char *json, int passfd)
{
    if (backend_send_with_fd(c->qfd, json, strlen(json), passfd) != 0)
        vm_unavailable(c, "QMP write failed");
}

static void backend_start(struct conn *c)
{
    const struct cfg_backend *be = &c->vm->vnc;
    char why[256];
    int r, fd = -1;
    set_state(c, CS_BACKEND_CONNECT);
    r = backend_connect(be, &fd, why, sizeof why);
    if (r < 0) {
        vm_unavailable(c, why);
        return;
    }
    if (be->kind == CFG_BE_QMP)
        c->qfd = fd;
    else
        c->bfd = fd;
    bw_watch(c, fd);
    if (r == 0)
        conn_drive(c);   /* connected at once: carry on */
}

/* The socket to the VM (or QMP) finished connecting. */
static void backend_connected(struct conn *c)
{
    if (c->vm->vnc.kind == CFG_BE_QMP) {
        set_state(c, CS_QMP);
        c->qstep = Q_GREETING;
        return;
    }
    set_state(c, CS_BACKEND_HANDSHAKE);
    c->bh = BH_VERSION;
}

/* Advance the QMP handoff on the lines buffered in brx. */
static void qmp_step(struct conn *c)
{
    for (;;) {
        long ll = qmp_next_line((const char *)buf_head(&c->brx), buf_len(&c->brx));
        if (ll < 0) {
            vm_unavailable(c, "QMP line too long");
            return;
        }
        if (ll == 0)
            return;
        char desc[200];
        enum qmp_kind k = qmp_classify((const char *)buf_head(&c->brx), (size_t)ll, desc,
                                       sizeof desc);
        buf_consume(&c->brx, (size_t)ll);
        if (k == QMP_EVENT)
            continue;
        if (k == QMP_ERROR) {
            conn_log(c, LOG_LVL_WARN, "QMP refused the console handoff: %s", desc);
            char reason[128];
            snprintf(reason, sizeof reason, "VM %s console is not available", c->vm->name);
            front_refuse(c, reason);
            return;
        }
        switch (c->qstep) {
        case Q_GREETING:
            if (k != QMP_GREETING) {
                vm_unavailable(c, "no QMP greeting");
                return;
            }
            qmp_send(c, "{\"execute\":\"qmp_capabilities\"}\n", -1);
            c->qstep = Q_CAPS;
            break;
        case Q_CAPS: {
            if (k != QMP_RETURN) {
                vm_unavailable(c, "unexpected QMP answer");
                return;
            }
            int sp[2];
            if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == -1) {
                vm_unavailable(c, strerror(errno));
                return;
            }
            /* Only our end is non-blocking; QEMU sets up its own. */
            fcntl(sp[0], F_SETFL, fcntl(sp[0], F_GETFL) | O_NONBLOCK);
            c->bfd = sp[0];
            c->handoff_fd = sp[1];
            char cmd[160];
            snprintf(cmd, sizeof cmd,
                     "{\"execute\":\"getfd\",\"arguments\":{\"fdname\":\"vmgate-%llu\"}}\n",
                     (unsigned long long)c->id);
            qmp_send(c, cmd, c->handoff_fd);
            c->qstep = Q_GETFD;
            break;
        }
        case Q_GETFD: {
            if (k != QMP_RETURN) {
                vm_unavailable(c, "unexpected QMP answer");
                return;
            }
            close(c->handoff_fd);    /* QEMU holds its own copy now */
            c->handoff_fd = -1;
            char cmd[200];
            snprintf(cmd, sizeof cmd,
                     "{\"execute\":\"add_client\",\"arguments\":{\"protocol\":\"vnc\","
                     "\"fdname\":\"vmgate-%llu\",\"skipauth\":true}}\n",
                     (unsigned long long)c->id);
            qmp_send(c, cmd, -1);
            c->qstep = Q_ADD_CLIENT;
            break;
        }
        case Q_ADD_CLIENT:
            if (k != QMP_RETURN) {
                vm_unavailable(c, "unexpected QMP answer");
                return;
            }
            /* Done with the monitor: release it for the next handoff. */
            bw_watch(c, -1);
            close(c->qfd);
            c->qfd = -1;
            buf_free(&c->brx);
            set_state(c, CS_BACKEND_HANDSHAKE);
            c->bh = BH_VERSION;
            bw_watch(c, c->bfd);
            return;
        }
        if (c->end.dead || c->state != CS_QMP)
            return;
    }
}

/* Advance the RFB handshake with the VM (security None) on brx. */
static void backend_handshake_step(struct conn *c)
{
    char why[256] = "";
    for (;;) {
        const uint8_t *p = buf_head(&c->brx);
        size_t n = buf_len(&c->brx);
        int r;
        switch (c->bh) {
        case BH_VERSION:
            r = rfb_parse_server_version(p, n, &c->be_minor, why, sizeof why);
            if (r == RFB_NEED)
                return;
            if (r < 0) {
                vm_unavailable(c, why);
                return;
            }
            buf_consume(&c->brx, (size_t)r);
            {
                char v[13];
                snprintf(v, sizeof v, "RFB 003.00%d\n", c->be_minor);
                buf_put(&c->f2b, v, 12);
            }
            c->bh = BH_SECTYPES;
            break;
        case BH_SECTYPES:
            if (c->be_minor == 3) {
                uint32_t t;
                r = rfb_parse_sec_type33(p, n, &t, why, sizeof why);
                if (r == RFB_NEED)
                    return;
                if (r < 0 || t != RFB_SEC_NONE) {
                    if (r >= 0)
                        snprintf(why, sizeof why, "backend wants security type %u, not None", t);
                    vm_unavailable(c, why);
                    return;
                }
                buf_consume(&c->brx, (size_t)r);
                goto secure;
            }
            {
                int has_none = 0;
                r = rfb_parse_sec_types(p, n, &has_none, why, sizeof why);
                if (r == RFB_NEED)
                    return;
                if (r < 0) {
                    vm_unavailable(c, why);
                    return;
                }
                if (!has_none) {
                    vm_unavailable(c, "backend requires its own authentication; "
                                      "run QEMU without a VNC password");
                    return;
                }
                buf_consume(&c->brx, (size_t)r);
                uint8_t one = RFB_SEC_NONE;
                buf_put(&c->f2b, &one, 1);
                if (c->be_minor == 7)
                    goto secure;
                c->bh = BH_SECRESULT;
            }
            break;
        case BH_SECRESULT: {
            uint32_t st;
            r = rfb_parse_sec_result(p, n, c->be_minor, &st, why, sizeof why);
            if (r == RFB_NEED)
                return;
            if (r < 0) {
                vm_unavailable(c, why);
                return;
            }
            buf_consume(&c->brx, (size_t)r);
            goto secure;
        }
        }
    }
secure:
    /* The VM accepted us: tell the viewer, then wait for its ClientInit. */
    {
        uint8_t ok[4] = { 0, 0, 0, 0 };
        front_queue(c, ok, sizeof ok);
        set_state(c, CS_READ_CLIENTINIT);
    }
}

/* ---------------------------------------------------------------------- */
/* the state machine                                                       */

static void start_tls(struct conn *c)
{
    if (tside_start_tls(&c->fs, c->px->ssl_ctx) != 0) {
        conn_fail(c, LOG_LVL_ERR, "cannot create TLS session");
        return;
    }
    set_state(c, CS_TLS_HANDSHAKE);
}

static void tls_handshake(struct conn *c)
{
    char why[160];
    int r = tside_handshake(&c->fs, why, sizeof why);
    if (r < 0) {
        conn_fail(c, LOG_LVL_INFO, "TLS handshake failed: %s", why);
        return;
    }
    if (r == 1) {
        conn_log(c, LOG_LVL_DEBUG, "TLS %s %s", SSL_get_version(c->fs.ssl),
                 SSL_get_cipher_name(c->fs.ssl));
        set_state(c, CS_READ_CREDS);
    }
}

/* Pre-TLS: read exactly what the current message still needs, so no byte of
 * the viewer's ClientHello ends up in our buffer instead of OpenSSL's. */
static int front_read_exact(struct conn *c, size_t want)
{
    size_t have = buf_len(&c->rx);
    if (have >= want)
        return 1;
    ssize_t n = front_read(c, &c->rx, want - have);
    if (n < 0)
        return -1;
    return buf_len(&c->rx) >= want ? 1 : 0;
}

/* Advance the viewer side of the handshake by one step if its bytes are
 * there.  Returns true if it made progress. */
static bool front_step(struct conn *c)
{
    char why[200] = "";
    int r;
    switch (c->state) {
    case CS_READ_VERSION: {
        ssize_t n = front_read(c, &c->rx, RFB_VERSION_LEN - buf_len(&c->rx));
        if (n < 0)
            return false;
        r = rfb_parse_client_version(buf_head(&c->rx), buf_len(&c->rx), &c->minor, why,
                                     sizeof why);
        if (r == RFB_NEED)
            return n > 0;
        if (r < 0) {
            conn_fail(c, LOG_LVL_INFO, "bad handshake: %s", why);
            return false;
        }
        buf_consume(&c->rx, (size_t)r);
        if (c->minor == 3) {
            /* VeNCrypt needs 3.7+: refuse with a reason (3.3 allows one). */
            uint8_t msg[128];
            size_t l = rfb_put_sec33_failure(msg, sizeof msg,
                                             "vmgate requires RFB 3.7 or later (VeNCrypt)");
            front_queue(c, msg, l);
            conn_log(c, LOG_LVL_INFO, "refused RFB 3.3 viewer (VeNCrypt needs 3.7+)");
            set_state(c, CS_CLOSING);
            ev_timer_set(&c->delay_timer, CLOSE_LINGER, 0);
            ev_timer_start(c->px->loop, &c->delay_timer);
            return true;
        }
        static const uint8_t types[] = { 1, RFB_SEC_VENCRYPT };
        front_queue(c, types, sizeof types);
        set_state(c, CS_READ_SECTYPE);
        return true;
    }
    case CS_READ_SECTYPE:
        if ((r = front_read_exact(c, 1)) <= 0)
            return false;
        if (buf_head(&c->rx)[0] != RFB_SEC_VENCRYPT) {
            unsigned t = buf_head(&c->rx)[0];
            conn_log(c, LOG_LVL_INFO, "bad handshake: viewer chose security type %u, "
                     "only VeNCrypt (19) is offered", t);
            front_refuse(c, "Only VeNCrypt X509Plain is supported");
            return true;
        }
        buf_consume(&c->rx, 1);
        static const uint8_t vc_version[] = { 0, 2 };
        front_queue(c, vc_version, sizeof vc_version);
        set_state(c, CS_READ_VC_VERSION);
        return true;
    case CS_READ_VC_VERSION:
        if ((r = front_read_exact(c, 2)) <= 0)
            return false;
        r = rfb_parse_vencrypt_version(buf_head(&c->rx), buf_len(&c->rx), why, sizeof why);
        if (r < 0) {
            static const uint8_t nak = 1;
            front_queue(c, &nak, 1);
            conn_log(c, LOG_LVL_INFO, "bad handshake: %s", why);
            set_state(c, CS_CLOSING);
            ev_timer_set(&c->delay_timer, CLOSE_LINGER, 0);
            ev_timer_start(c->px->loop, &c->delay_timer);
            return true;
        }
        buf_consume(&c->rx, 2);
        {
            uint8_t msg[6] = { 0, 1 };          /* ack 0 = ok, 1 subtype */
            rfb_put_u32(msg + 2, RFB_VENCRYPT_X509PLAIN);
            front_queue(c, msg, sizeof msg);
        }
        set_state(c, CS_READ_VC_SUBTYPE);
        return true;
    case CS_READ_VC_SUBTYPE: {
        if ((r = front_read_exact(c, 4)) <= 0)
            return false;
        uint32_t st = rfb_get_u32(buf_head(&c->rx));
        buf_consume(&c->rx, 4);
        if (st != RFB_VENCRYPT_X509PLAIN) {
            static const uint8_t nak = 0;       /* VeNCrypt "0 = failure" */
            front_queue(c, &nak, 1);
            conn_log(c, LOG_LVL_INFO, "bad handshake: viewer chose VeNCrypt subtype %u, "
                     "only X509Plain (262) is offered", st);
            set_state(c, CS_CLOSING);
            ev_timer_set(&c->delay_timer, CLOSE_LINGER, 0);
            ev_timer_start(c->px->loop, &c->delay_timer);
            return true;
        }
        static const uint8_t ack = 1;
        front_queue(c, &ack, 1);
        set_state(c, CS_SEND_ACK);
        return true;
    }
    case CS_SEND_ACK:
        if (!buf_empty(&c->b2f))
            return false;
        if (!buf_empty(&c->rx)) {
            conn_fail(c, LOG_LVL_ERR, "internal: pre-TLS bytes left over");
            return false;
        }
        start_tls(c);
        return true;
    case CS_TLS_HANDSHAKE:
        tls_handshake(c);
        return c->state != CS_TLS_HANDSHAKE;
    case CS_READ_CREDS: {
        ssize_t n = front_read(c, &c->rx, RX_CAP);
        if (n < 0)
            return false;
        char pass[RFB_PLAIN_PASS_MAX + 1];
        r = rfb_parse_plain_creds(buf_head(&c->rx), buf_len(&c->rx), c->user, pass, why,
                                  sizeof why);
        if (r == RFB_NEED) {
            if (buf_full(&c->rx))
                conn_fail(c, LOG_LVL_ERR, "internal: credentials buffer full");
            return n > 0;
        }
        if (r < 0) {
            conn_log(c, LOG_LVL_INFO, "bad credentials message: %s", why);
            c->user[0] = '\0';
            front_refuse(c, "Malformed credentials");
            return true;
        }
        /* Wipe the password bytes in rx, keep anything that followed. */
        explicit_bzero((uint8_t *)buf_head(&c->rx), (size_t)r);
        buf_consume(&c->rx, (size_t)r);
        submit_login(c, pass);
        explicit_bzero(pass, sizeof pass);
        return true;
    }
    case CS_READ_CLIENTINIT: {
        if (buf_empty(&c->rx)) {
            ssize_t n = front_read(c, &c->rx, RX_CAP);
            if (n <= 0)
                return false;
        }
        /* ClientInit: force shared = 1 so this viewer never kicks others. */
        uint8_t shared = 1;
        buf_consume(&c->rx, 1);
        buf_put(&c->f2b, &shared, 1);
        char pfx[256], user[RFB_PLAIN_USER_MAX + 1];
        snprintf(pfx, sizeof pfx, "conn=%llu vm=%s user=%s from=%s", (unsigned long long)c->id,
                 c->vm->name, log_safe(user, sizeof user, c->user, sizeof c->user), c->rhost);
        c->flt = rfbfilter_new(c->vm, pfx);
        if (!c->flt) {
            conn_fail(c, LOG_LVL_ERR, "out of memory");
            return false;
        }
        c->f2b_ok = buf_len(&c->f2b);       /* handshake bytes and ClientInit */
        c->b2f_ok = buf_len(&c->b2f);       /* SecurityResult, if still queued */
        if (!buf_empty(&c->rx)) {            /* pipelined viewer messages */
            buf_put(&c->f2b, buf_head(&c->rx), buf_len(&c->rx));
            buf_consume(&c->rx, buf_len(&c->rx));
        }
        buf_free(&c->rx);
        if (!buf_empty(&c->brx)) {
            buf_put(&c->b2f, buf_head(&c->brx), buf_len(&c->brx));
            buf_consume(&c->brx, buf_len(&c->brx));
        }
        buf_free(&c->brx);
        ev_timer_stop(c->px->loop, &c->login_timer);
        unauth_done(c);
        c->fs.rd_ready = c->back_rd_ready = true;
        set_state(c, CS_RELAY);
        char be[300];
        cfg_backend_str(&c->vm->vnc, be, sizeof be);
        conn_log(c, LOG_LVL_INFO, "session started (backend %s)", be);
        c->logged_start = true;
        return true;
    }
    default:
        return false;
    }
}

/* Relay: move bytes both ways until nothing more can move now. */
static void relay_step(struct conn *c)
{
    for (int rounds = 0; rounds < 16 && !c->end.dead; rounds++) {
        bool moved = false;
        char why[256];
        /* viewer -> VM */
        /* Read a side only when it signalled data (or OpenSSL holds some):
         * a read that would only say EAGAIN costs a syscall per event. */
        while (!c->fs.eof && buf_room(&c->f2b) > 0 &&
               (c->fs.rd_ready || tside_has_pending(&c->fs))) {
            ssize_t n = front_read(c, &c->f2b, F2B_CAP);
            if (n <= 0)
                break;
            moved = true;
        }
        if (c->end.dead)
            return;
        if (rfbfilter_c2s(c->flt, &c->f2b, &c->f2b_ok, &c->inj_front, &c->inj_back, why,
                          sizeof why) != 0) {
            conn_fail(c, LOG_LVL_WARN, "%s", why);
            return;
        }
        if (back_pending(c)) {
            size_t before = back_pending(c);
            if (back_flush(c) < 0)
                return;
            moved |= back_pending(c) != before;
        }
        /* VM -> viewer */
        if (buf_room(&c->b2f) > 0 && c->back_rd_ready) {
            ssize_t n = backend_read(c->bfd, &c->b2f, &c->back_rd_ready);
            if (n < 0) {
                /* The VM side is gone: flush what we have, then close. */
                c->logged_start = false;
                conn_log(c, LOG_LVL_INFO, "session ended: VM closed the console");
                set_state(c, CS_CLOSING);
                ev_timer_set(&c->delay_timer, CLOSE_LINGER, 0);
                ev_timer_start(c->px->loop, &c->delay_timer);
                front_flush(c);
                return;
            }
            moved |= n > 0;
        }
        if (rfbfilter_s2c(c->flt, &c->b2f, &c->b2f_ok, &c->inj_front, &c->inj_back, why,
                          sizeof why) != 0) {
            conn_fail(c, LOG_LVL_WARN, "%s", why);
            return;
        }
        if (front_pending(c)) {
            size_t before = front_pending(c);
            if (front_flush(c) < 0)
                return;
            moved |= front_pending(c) != before;
        }
        /* Data OpenSSL already holds does not make the fd readable. */
        if (!moved && !(tside_has_pending(&c->fs) && buf_room(&c->f2b) > 0))
            break;
    }
}

static void conn_drive(struct conn *c)
{
    for (int guard = 0; guard < 64 && !c->end.dead; guard++) {
        if (front_flush(c) < 0)
            return;
        switch (c->state) {
        case CS_RELAY:
            relay_step(c);
            if (!c->end.dead && c->state == CS_CLOSING)
                continue;          /* VM gone: close once the last bytes are out */
            return;
        case CS_CLOSING:
            if (front_pending(c) == 0 && !c->fs.write_wants_read)
                conn_fail(c, LOG_LVL_DEBUG, "closed after final message");
            return;
        case CS_AUTH_WAIT:
        case CS_FAIL_DELAY:
            return;
        case CS_BACKEND_CONNECT: {
            char why[256];
            int fd = c->vm->vnc.kind == CFG_BE_QMP ? c->qfd : c->bfd;
            if (!(c->bw_mask & EV_WRITE) && ev_is_active(&c->bw))
                return;
            if (backend_connect_result(fd, why, sizeof why) != 0) {
                vm_unavailable(c, why);
                continue;
            }
            backend_connected(c);
            continue;
        }
        case CS_QMP:
        case CS_BACKEND_HANDSHAKE: {
            if (back_flush(c) < 0)
                return;
            int fd = c->state == CS_QMP ? c->qfd : c->bfd;
            ssize_t n = backend_read(fd, &c->brx, NULL);
            if (n < 0) {
                vm_unavailable(c, c->state == CS_QMP ? "QMP socket closed"
                                                      : "VM closed the console during handshake");
                continue;
            }
            enum conn_state before = c->state;
            if (c->state == CS_QMP)
                qmp_step(c);
            else
                backend_handshake_step(c);
            if (c->state == before && n == 0)
                return;
            continue;
        }
        default:
            if (!front_step(c))
                return;
            continue;
        }
    }
}

/* Derive both watchers' masks from the state and buffers (the only place
 * that starts or stops them). */
static void conn_update_io(struct conn *c)
{
    struct ev_loop *loop = c->px->loop;
    int fm = 0, bm = 0;
    switch (c->state) {
    case CS_READ_VERSION: case CS_READ_SECTYPE: case CS_READ_VC_VERSION:
    case CS_READ_VC_SUBTYPE: case CS_READ_CREDS: case CS_READ_CLIENTINIT:
    case CS_TLS_HANDSHAKE:
        fm |= EV_READ;
        break;
    case CS_RELAY:
        if (!c->fs.eof && buf_room(&c->f2b) > 0)
            fm |= EV_READ;
        if (buf_room(&c->b2f) > 0)
            bm |= EV_READ;
        if (back_pending(c))
            bm |= EV_WRITE;
        break;
    case CS_BACKEND_CONNECT:
        bm |= EV_WRITE;
        break;
    case CS_QMP:
    case CS_BACKEND_HANDSHAKE:
        bm |= EV_READ;
        if (!buf_empty(&c->f2b))
            bm |= EV_WRITE;
        break;
    default:
        break;
    }
    if (front_pending(c))
        fm |= EV_WRITE;
    if (c->fs.read_wants_write)
        fm = (fm & ~EV_READ) | EV_WRITE;
    if (c->fs.write_wants_read)
        fm |= EV_READ;
    if (fm != c->fw_mask) {
        if (ev_is_active(&c->fw))
            ev_io_stop(loop, &c->fw);
        if (fm) {
            ev_io_set(&c->fw, c->fs.fd, fm);
            ev_io_start(loop, &c->fw);
        }
        c->fw_mask = fm;
    }
    if (c->bw_fd < 0)
        bm = 0;
    if (bm != c->bw_mask || (bm && !ev_is_active(&c->bw))) {
        if (ev_is_active(&c->bw))
            ev_io_stop(loop, &c->bw);
        if (bm) {
            ev_io_set(&c->bw, c->bw_fd, bm);
            ev_io_start(loop, &c->bw);
        }
        c->bw_mask = bm;
    }
}

/* ---------------------------------------------------------------------- */
/* events                                                                  */

static void after_event(struct conn *c)
{
    if (c->end.dead) {
        conn_destroy(c);
        return;
    }
    conn_update_io(c);
}

static void front_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct conn *c = w->data;
    (void)loop;
    if (c->magic != CONN_MAGIC)
        return;
    if (revents & EV_READ)
        c->fs.rd_ready = true;
    conn_drive(c);
    after_event(c);
}

static void back_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct conn *c = w->data;
    (void)loop;
    if (c->magic != CONN_MAGIC)
        return;
    if (revents & EV_READ)
        c->back_rd_ready = true;
    if (c->state == CS_BACKEND_CONNECT && (revents & EV_WRITE)) {
        c->bw_mask = 0;     /* forces the connect check in conn_drive */
        ev_io_stop(c->px->loop, &c->bw);
    }
    conn_drive(c);
    after_event(c);
}

static void login_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct conn *c = w->data;
    (void)loop;
    (void)revents;
    conn_fail(c, LOG_LVL_INFO, "login timeout (%llus) in state %s",
              (unsigned long long)(c->px->cfg->login_timeout_ms / 1000), state_name[c->state]);
    after_event(c);
}

static void delay_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct conn *c = w->data;
    (void)loop;
    (void)revents;
    if (c->state == CS_FAIL_DELAY) {
        front_refuse(c, REASON_AUTH);
        conn_drive(c);
    } else {
        conn_fail(c, LOG_LVL_INFO, "viewer did not take the final message");
    }
    after_event(c);
}

/* ---------------------------------------------------------------------- */
/* lifecycle                                                               */

static void conn_destroy(struct conn *c)
{
    struct proxy *px = c->px;
    if (c->logged_start)
        conn_log(c, LOG_LVL_INFO, "session ended: %s", c->end.why[0] ? c->end.why : "closed");
    else if (c->end.why[0])
        conn_log(c, c->end.level, "%s", c->end.why);
    ev_io_stop(px->loop, &c->fw);
    ev_io_stop(px->loop, &c->bw);
    ev_timer_stop(px->loop, &c->login_timer);
    ev_timer_stop(px->loop, &c->delay_timer);
    if (px->auth)
        auth_client_cancel(px->auth, c);
    if (c->state == CS_CLOSING)
        tside_shutdown(&c->fs);             /* best effort close_notify */
    tside_close(&c->fs);
    if (c->bfd >= 0)
        close(c->bfd);
    if (c->qfd >= 0)
        close(c->qfd);
    if (c->handoff_fd >= 0)
        close(c->handoff_fd);
    buf_free(&c->rx);
    buf_free(&c->brx);
    buf_free(&c->f2b);
    buf_free(&c->b2f);
    buf_free(&c->inj_front);
    buf_free(&c->inj_back);
    rfbfilter_free(c->flt);
    unauth_done(c);
    if (c->prev)
        c->prev->next = c->next;
    else
        px->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    px->n_conns--;
    explicit_bzero(c, sizeof *c);
    free(c);
}

unsigned conn_unauth_from(const struct proxy *px, const char *rhost)
{
    unsigned n = 0;
    for (const struct conn *o = px->conns; o; o = o->next)
        if (o->unauth && strcmp(o->rhost, rhost) == 0)
            n++;
    return n;
}

void proxy_accept(struct proxy *px, const struct cfg_vm *vm, int fd,
                  const struct sockaddr *sa, socklen_t salen)
{
    (void)salen;
    char rhost[INET6_ADDRSTRLEN];
    proxy_addr_str(sa, rhost, sizeof rhost);
    if (!proxy_admit(px, rhost, "")) {
        close(fd);
        return;
    }
    struct conn *c = calloc(1, sizeof *c);
    if (!c) {
        log_err("out of memory accepting a connection from %s", rhost);
        close(fd);
        return;
    }
    c->magic = CONN_MAGIC;
    c->px = px;
    c->vm = vm;
    c->id = proxy_new_id(px);
    tside_init(&c->fs, fd);
    c->bfd = c->qfd = c->handoff_fd = c->bw_fd = -1;
    snprintf(c->rhost, sizeof c->rhost, "%s", rhost);
    buf_init(&c->rx, RX_CAP);
    buf_init(&c->brx, BRX_CAP);
    buf_init(&c->f2b, F2B_CAP);
    buf_init(&c->b2f, B2F_CAP);
    buf_init(&c->inj_front, RFBFILTER_INJECT_CAP);
    buf_init(&c->inj_back, RFBFILTER_INJECT_CAP);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ev_io_init(&c->fw, front_cb, fd, EV_READ);
    c->fw.data = c;
    ev_io_init(&c->bw, back_cb, -1, EV_READ);
    c->bw.data = c;
    ev_timer_init(&c->login_timer, login_timeout_cb,
                  (double)px->cfg->login_timeout_ms / 1000.0, 0);
    c->login_timer.data = c;
    ev_timer_init(&c->delay_timer, delay_cb, 1, 0);
    c->delay_timer.data = c;
    c->next = px->conns;
    if (px->conns)
        px->conns->prev = c;
    px->conns = c;
    px->n_conns++;
    c->unauth = true;
    px->n_unauth++;
    log_debug("conn=%llu vm=%s from=%s: accepted", (unsigned long long)c->id, vm->name, rhost);
    ev_timer_start(px->loop, &c->login_timer);
    static const char version[] = "RFB 003.008\n";
    front_queue(c, version, RFB_VERSION_LEN);
    set_state(c, CS_READ_VERSION);
    conn_drive(c);
    after_event(c);
}

void proxy_close_all(struct proxy *px, const char *why)
{
    while (px->conns) {
        struct conn *c = px->conns;
        conn_fail(c, LOG_LVL_INFO, "%s", why);
        conn_destroy(c);
    }
}
