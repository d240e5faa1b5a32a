/* proxy/core.c — see core.h: what every viewer connection has, whatever the
 * protocol.
 *
 * Events on the sockets and the timers only record what happened and call
 * conn_drive(), which advances the state machine as far as the buffered
 * bytes allow; conn_update_io() then derives the watcher masks from the
 * state and the buffers.  No other code starts or stops watchers.  A step
 * that decides the connection is over calls conn_fail(), which only records
 * the reason; the callback on the stack destroys the connection as it
 * unwinds, so no function touches a freed connection. */
#include "proxy/core.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#include "proxy/audit.h"
#include "proxy/backend.h"
#include "proxy/clip.h"
#include "proxy/pp2.h"
#include "common/json.h"
#include "common/addr.h"


static const char *const core_state_name[CS_PROTO] = {
    [CS_TLS_HANDSHAKE] = "tls-handshake", [CS_PROXY_HDR] = "proxy-header",
    [CS_AUTH_WAIT] = "auth-wait",
    [CS_FAIL_DELAY] = "fail-delay", [CS_BACKEND_CONNECT] = "backend-connect",
    [CS_QMP] = "qmp", [CS_RELAY] = "relay", [CS_CLOSING] = "closing",
};

static void conn_drive(struct conn *c);
static void conn_update_io(struct conn *c);
static void conn_destroy(struct conn *c);

/* ---------------------------------------------------------------------- */
/* state, logging, failure                                                 */

const char *conn_state_name(const struct conn *c)
{
    if (c->state < CS_PROTO)
        return core_state_name[c->state];
    return c->proto->states[c->state - CS_PROTO].name;
}

void conn_set_state(struct conn *c, int s)
{
    assert(s >= 0 && s < CS_PROTO + (int)c->proto->n_states);
    if (log_get_level() >= LOG_LVL_DEBUG) {
        const char *from = conn_state_name(c);
        c->state = s;
        log_debug("conn=%llu %s state %s -> %s", (unsigned long long)c->id, c->proto->name, from,
                  conn_state_name(c));
    }
    c->state = s;
}

void conn_log(struct conn *c, enum log_level lvl, const char *fmt, ...)
{
    va_list ap;
    char vm[CFG_NAME_MAX + 32];
    snprintf(vm, sizeof vm, "%s%s%s", c->vm->name, c->proto->via ? " via=" : "",
             c->proto->via ? c->proto->via : "");
    /* a local user's source is "uid:N" (status, audit); the log adds how */
    char from[sizeof c->rhost + 16];
    snprintf(from, sizeof from, "%s%s", c->rhost,
             !c->proto->via && c->via && strcmp(c->via, "unix") == 0 ? " via=unix" : "");
    va_start(ap, fmt);
    proxy_conn_log(lvl, c->id, vm, c->authed ? c->user : NULL, from, fmt, ap);
    va_end(ap);
}

void conn_fail(struct conn *c, enum log_level lvl, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    conn_end_set(&c->end, lvl, fmt, ap);
    va_end(ap);
}

void conn_hs_failed(struct conn *c, enum proxy_hs_kind k)
{
    if (c->hs_counted || k >= PROXY_HS_KINDS)
        return;
    c->hs_counted = true;
    c->px->st.hs_failed[k]++;
}

/* One audit event about c with its common keys (user: the name given, once
 * there is one). */
static void conn_audit(struct conn *c, const char *event, const struct audit_kv *kv, size_t n)
{
    if (!c->px->audit)
        return;
    struct audit_who who = { c->id, c->vm->name, c->user[0] ? c->user : NULL, c->rhost, c->via };
    atrail_emit(c->px->audit, event, &who, kv, n);
}

void conn_session_started(struct conn *c)
{
    c->logged_start = true;
    c->started = ev_now(c->px->loop);
    clock_gettime(CLOCK_REALTIME, &c->started_wall);
    conn_audit(c, "session-open", NULL, 0);
    proxy_idle_report(c->px, c->vm->name);  /* idle_pause: one session more */
}

/* The session is over (logged_start is cleared by the caller). */
static void session_closed(struct conn *c, const char *reason)
{
    struct audit_kv kv[] = {
        AUDIT_U("bytes_to_vm", c->bytes[CONN_C2S]),
        AUDIT_U("bytes_from_vm", c->bytes[CONN_S2C]),
        AUDIT_U("seconds", (uint64_t)(ev_now(c->px->loop) - c->started + 0.5)),
        AUDIT_S("reason", reason),
    };
    conn_audit(c, "session-close", kv, sizeof kv / sizeof kv[0]);
}

void conn_clip_event(struct conn *c, const struct clip_event *ev)
{
    char line[512], hex[65];
    conn_log(c, LOG_LVL_INFO, "%s", clip_event_format(ev, line, sizeof line));
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", ev->sha256[i]);
    const char *dir = ev->to_vm ? "to-vm" : "from-vm";
    if (ev->kind == CLIP_EV_OFFER) {
        struct audit_kv kv[] = { AUDIT_S("dir", dir), AUDIT_S("kind", "offer"),
                                 AUDIT_S("result", "dropped"), AUDIT_S("reason", ev->reason) };
        conn_audit(c, "clipboard", kv, sizeof kv / sizeof kv[0]);
        return;
    }
    struct audit_kv kv[] = {
        AUDIT_S("dir", dir),
        AUDIT_U("bytes", ev->bytes),
        AUDIT_S("type", ev->type),
        AUDIT_S("sha256", ev->hashed ? hex : NULL),
        AUDIT_S("result", ev->reason ? "dropped" : "allowed"),
        AUDIT_S("reason", ev->reason),
    };
    conn_audit(c, "clipboard", kv, sizeof kv / sizeof kv[0]);
}

void conn_power_event(struct conn *c, const char *action, const char *result,
                      const char *reason)
{
    bool ok = strcmp(result, "ok") == 0;
    conn_log(c, ok ? LOG_LVL_INFO : LOG_LVL_WARN, "power %s: %s%s%s", action, result,
             reason && *reason ? ": " : "", reason && *reason ? reason : "");
    struct audit_kv kv[] = { AUDIT_S("action", action), AUDIT_S("result", result),
                             AUDIT_S("reason", reason && *reason ? reason : NULL) };
    conn_audit(c, "power", kv, sizeof kv / sizeof kv[0]);
}

static void unauth_done(struct conn *c)
{
    if (c->unauth) {
        c->unauth = false;
        c->px->n_unauth--;
    }
}

void conn_authenticated(struct conn *c)
{
    ev_timer_stop(c->px->loop, &c->login_timer);
    unauth_done(c);
}

void conn_keepalive_idle(struct conn *c, double secs)
{
    unauth_done(c);
    c->idle_close = true;
    c->idle_secs = secs;
    c->fb_pending = false;
    ev_timer_stop(c->px->loop, &c->login_timer);
    ev_timer_set(&c->login_timer, secs, 0);
    ev_timer_start(c->px->loop, &c->login_timer);
}

bool conn_unauth_again(struct conn *c)
{
    if (c->unauth)
        return true;
    const struct cfg *cfg = c->px->cfg;
    if (conn_unauth_from(c->px, c->skey) >= cfg->max_unauth_per_source ||
        c->px->n_unauth >= cfg->max_unauth)
        return false;
    c->unauth = true;
    c->px->n_unauth++;
    c->idle_close = false;
    ev_timer_stop(c->px->loop, &c->login_timer);
    ev_timer_set(&c->login_timer, (double)cfg->login_timeout_ms / 1000.0, 0);
    ev_timer_start(c->px->loop, &c->login_timer);
    return true;
}

/* ---------------------------------------------------------------------- */
/* the viewer side                                                         */

void conn_front_queue(struct conn *c, const void *p, size_t n)
{
    if (buf_put(c_b2f(c), p, n) != 0)
        conn_fail(c, LOG_LVL_ERR, "internal: viewer buffer full");
}

ssize_t conn_front_read(struct conn *c, struct buf *dst, size_t max)
{
    char why[160];
    ssize_t n = tside_read(&c->fs, dst, max, why, sizeof why);
    if (n >= 0)
        return n;
    if (c->fs.eof)
        conn_fail(c, LOG_LVL_INFO, "viewer closed the connection in state %s",
                  conn_state_name(c));
    else if (c->fs.ws)
        conn_fail(c, LOG_LVL_INFO, "viewer: %s", why);
    else if (c->fs.ssl)
        conn_fail(c, LOG_LVL_INFO, "TLS error from viewer: %s", why);
    else
        conn_fail(c, LOG_LVL_INFO, "viewer read error: %s", why);
    return -1;
}

int conn_front_read_exact(struct conn *c, size_t want)
{
    /* Read until there or nothing comes: inside TLS (and a WebSocket) one
     * read may return part of what is already buffered, and the socket
     * will not signal again for the rest. */
    while (buf_len(&c->rx) < want) {
        ssize_t n = conn_front_read(c, &c->rx, want - buf_len(&c->rx));
        if (n <= 0)
            return n < 0 ? -1 : 0;
    }
    return 1;
}

/* What side s may send now.  Before the relay: the whole stream.  In the
 * relay: the approved prefix of the stream first, then the injections. */
static struct buf *out_source(const struct conn *c, struct conn_side *s, size_t *len)
{
    if (!c->relay_mode) {
        *len = buf_len(&s->stream);
        return &s->stream;
    }
    if (s->ok) {
        *len = s->ok;
        return &s->stream;
    }
    *len = buf_len(&s->inj);
    return &s->inj;
}

static size_t out_pending(const struct conn *c, const struct conn_side *s)
{
    return c->relay_mode ? s->ok + buf_len(&s->inj) : buf_len(&s->stream);
}

static void sent(struct conn *c, struct conn_side *s, struct buf *b, size_t n)
{
    buf_consume(b, n);
    if (!c->relay_mode)
        return;
    size_t dir = s == &c->d[CONN_C2S] ? CONN_C2S : CONN_S2C;
    c->bytes[dir] += n;
    /* c->vm is one of cfg->vms in the relay (a web stand-in VM never gets
     * there); the check keeps a stand-in from indexing past the array */
    uintptr_t off = (uintptr_t)c->vm - (uintptr_t)c->px->cfg->vms;
    size_t vi = off / sizeof *c->vm;
    if (c->px->st.vm_bytes && (uintptr_t)c->vm >= (uintptr_t)c->px->cfg->vms &&
        vi < c->px->cfg->n_vms) {
        c->px->st.vm_bytes[2 * vi + dir] += n;
    } else if (c->px->st.vm_bytes) {
        /* a session from before a config reload: its VM is the old config's */
        const struct cfg_vm *v = cfg_find_vm(c->px->cfg, c->vm->name);
        if (v)
            c->px->st.vm_bytes[2 * (size_t)(v - c->px->cfg->vms) + dir] += n;
    }
    if (b == &s->stream)
        s->ok -= n;
}

static size_t front_pending(const struct conn *c)
{
    return tside_pending(&c->fs) + out_pending(c, &c->d[CONN_S2C]);
}

static size_t back_pending(const struct conn *c)
{
    return out_pending(c, &c->d[CONN_C2S]);
}

/* Send the viewer what it may get now.  0, or -1 (conn_fail called). */
static int front_flush(struct conn *c)
{
    char why[160];
    struct conn_side *s = &c->d[CONN_S2C];
    for (;;) {
        size_t len;
        struct buf *src = out_source(c, s, &len);
        if (len == 0)
            break;
        /* the bytes before the head are free: a WebSocket frame header
         * goes there, in front of the bytes, instead of a copy of them */
        ssize_t n = tside_write_room(&c->fs, buf_head_mut(src), len, buf_headroom(src), why,
                                     sizeof why);
        if (n < 0) {
            conn_fail(c, LOG_LVL_INFO, "write to viewer failed: %s", why);
            return -1;
        }
        if (n == 0)
            return 0;                       /* the socket is full */
        sent(c, s, src, (size_t)n);
    }
    buf_trim(&s->stream);
    buf_trim(&s->inj);
    if (tside_flush(&c->fs, why, sizeof why) < 0) {
        conn_fail(c, LOG_LVL_INFO, "write to viewer failed: %s", why);
        return -1;
    }
    return 0;
}

void conn_start_tls(struct conn *c, int next)
{
    if (tside_start_tls(&c->fs, c->px->ssl_ctx) != 0) {
        conn_fail(c, LOG_LVL_ERR, "cannot create TLS session");
        return;
    }
    c->after_tls = next;
    conn_set_state(c, CS_TLS_HANDSHAKE);
}

/* CS_TLS_HANDSHAKE: true when it finished (or failed). */
static bool tls_step(struct conn *c)
{
    char why[160];
    int r = tside_handshake(&c->fs, why, sizeof why);
    if (r < 0) {
        if (!conn_stray_proxy_header(c)) {
            conn_hs_failed(c, PROXY_HS_TLS);
            conn_fail(c, LOG_LVL_INFO, "TLS handshake failed: %s", why);
        }
        return false;
    }
    if (r == 0)
        return false;
    conn_log(c, LOG_LVL_DEBUG, "TLS %s %s", SSL_get_version(c->fs.ssl),
             SSL_get_cipher_name(c->fs.ssl));
    conn_set_state(c, c->after_tls);
    return true;
}

bool conn_stray_proxy_header(struct conn *c)
{
    if (c->balancer[0] || !pp2_looks_like(c->fs.head, c->fs.head_len))
        return false;
    conn_hs_failed(c, PROXY_HS_PROXY);
    conn_fail(c, LOG_LVL_WARN, "refused: a PROXY header from %s, which is not in proxy_protocol",
              c->rhost);
    return true;
}

/* The balancer's header named the viewer (r): re-do admission for it, as
 * proxy_accept does for a direct connection, then start the protocol.
 * Until here c was counted under a key of its own (the balancer is not one
 * source); now it counts under the viewer's.  A banned viewer is refused
 * here: the kernel ban set only sees the balancer.  false: refused. */
static bool pp2_admit(struct conn *c, const struct pp2_result *r)
{
    struct proxy *px = c->px;
    if (r->local) {                         /* a health check: the balancer itself */
        conn_log(c, LOG_LVL_DEBUG, "PROXY header LOCAL: the balancer's own connection");
        return true;
    }
    char rhost[INET6_ADDRSTRLEN], skey[PROXY_SKEY_MAX];
    proxy_addr_str((const struct sockaddr *)&r->src, rhost, sizeof rhost);
    proxy_source_key((const struct sockaddr *)&r->src, skey, sizeof skey);
    uint64_t until;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    if (proxy_banned(px, skey, (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u,
                     &until)) {
        char t[40];
        proxy_time_str(until, t, sizeof t);
        conn_fail(c, LOG_LVL_INFO, "refused viewer %s (through balancer %s): banned until %s",
                  rhost, c->balancer, t);
        return false;
    }
    if (conn_unauth_from(px, skey) >= px->cfg->max_unauth_per_source) {
        conn_fail(c, LOG_LVL_WARN, "refused viewer %s (through balancer %s): too many "
                  "unauthenticated connections (per-source limit %u)", rhost, c->balancer,
                  px->cfg->max_unauth_per_source);
        return false;
    }
    conn_log(c, LOG_LVL_INFO, "viewer %s through balancer %s (PROXY v2)", rhost, c->balancer);
    snprintf(c->rhost, sizeof c->rhost, "%s", rhost);
    snprintf(c->skey, sizeof c->skey, "%s", skey);
    return true;
}

/* CS_PROXY_HDR: read the header exactly (not one byte of the viewer's own
 * stream), refuse it with the parser's reason, or admit the viewer it
 * names and start the protocol. */
static bool pp2_step(struct conn *c)
{
    for (;;) {
        struct pp2_result r;
        enum pp2_status st = pp2_parse(buf_head(&c->rx), buf_len(&c->rx), &r);
        if (st == PP2_BAD) {
            conn_hs_failed(c, PROXY_HS_PROXY);
            conn_fail(c, LOG_LVL_WARN, "refused: bad PROXY header from balancer %s: %s",
                      c->balancer, r.why);
            return false;
        }
        if (st == PP2_DONE) {
            buf_consume(&c->rx, r.consumed);
            if (!pp2_admit(c, &r))
                return false;
            c->proto->start(c);
            return !c->end.dead;
        }
        size_t had = buf_len(&c->rx);
        int k = conn_front_read_exact(c, r.need);
        if (k < 0) {
            /* conn_fail said "viewer closed ..." : say what was missing */
            snprintf(c->end.why, sizeof c->end.why, "refused: no PROXY header from balancer %s "
                     "(closed after %zu bytes)", c->balancer, buf_len(&c->rx));
            if (buf_len(&c->rx) == 0)
                c->end.level = LOG_LVL_DEBUG;   /* a plain TCP health check */
            else
                conn_hs_failed(c, PROXY_HS_PROXY);
            return false;
        }
        if (k == 0 && buf_len(&c->rx) == had)
            return false;               /* nothing new: wait (a prefix is judged at once) */
    }
}

void conn_close_after(struct conn *c)
{
    conn_set_state(c, CS_CLOSING);
    ev_timer_stop(c->px->loop, &c->delay_timer);
    ev_timer_set(&c->delay_timer, CONN_LINGER, 0);
    ev_timer_start(c->px->loop, &c->delay_timer);
}

/* Lingering close: once the final message is out, send close_notify (TLS)
 * and a FIN, then read and discard what the viewer still sends until it
 * closes (bounded by the linger timer).  Closing with unread input would
 * send a RST, which can destroy the final message in the viewer's receive
 * buffer (a viewer still writing an over-long message, for example). */
static void close_step(struct conn *c)
{
    if (front_pending(c) > tside_pending(&c->fs) || c->fs.write_wants_read)
        return;
    if (!c->close_sent) {
        if (c->fs.ssl && !c->shutdown_queued) {
            ERR_clear_error();
            SSL_shutdown(c->fs.ssl);
            c->shutdown_queued = true;
        }
        char why[160];
        if (tside_flush(&c->fs, why, sizeof why) < 0) {
            conn_fail(c, LOG_LVL_DEBUG, "closed after final message (%s)", why);
            return;
        }
        if (tside_pending(&c->fs))
            return;                         /* the close_notify is not out yet */
        shutdown(c->fs.fd, SHUT_WR);
        c->close_sent = true;
    }
    for (int i = 0; i < 64 && !c->fs.eof; i++) {
        uint8_t junk[4096];
        if (c->fs.ssl) {
            ERR_clear_error();
            int n = SSL_read(c->fs.ssl, junk, sizeof junk);
            if (n > 0)
                continue;
            if (SSL_get_error(c->fs.ssl, n) == SSL_ERROR_WANT_READ)
                return;
            ERR_clear_error();
        } else {
            ssize_t n = recv(c->fs.fd, junk, sizeof junk, MSG_DONTWAIT);
            if (n > 0)
                continue;
            if (n == -1 && (errno == EAGAIN || errno == EINTR))
                return;
        }
        c->fs.eof = true;
    }
    if (c->fs.eof)
        conn_fail(c, LOG_LVL_DEBUG, "closed after final message");
}

/* ---------------------------------------------------------------------- */
/* the login                                                               */

static void after_event(struct conn *c);

/* Answer a failed login fail_delay after its request was submitted
 * (submitted 0: now + fail_delay): the helper already held its answer so
 * that every kind of failure arrives at the same time. */
static void fail_delay_start(struct conn *c, double submitted)
{
    conn_set_state(c, CS_FAIL_DELAY);
    ev_timer_stop(c->px->loop, &c->delay_timer);
    ev_timer_set(&c->delay_timer, proxy_fail_delay_from(c->px, submitted), 0);
    ev_timer_start(c->px->loop, &c->delay_timer);
}

/* A login was answered: the metrics and the audit trail. */
static void login_account(struct conn *c, bool ok, const char *reason)
{
    struct proxy_stats *st = &c->px->st;
    if (ok)
        st->logins_ok++;
    else
        st->logins_failed++;
    if (c->login_at > 0) {
        double secs = ev_now(c->px->loop) - c->login_at;
        if (secs < 0)
            secs = 0;
        st->login_count++;
        st->login_sum += secs;
        for (int i = 0; i < PROXY_LOGIN_BUCKETS; i++)
            if (secs <= proxy_login_buckets[i]) {
                st->login_le[i]++;
                break;
            }
    }
    struct audit_kv kv[] = { AUDIT_S("result", ok ? "ok" : "failed"), AUDIT_S("reason", reason) };
    conn_audit(c, "login", kv, 2);
}

static void auth_done(void *ctx, const struct authp_login_resp *resp)
{
    struct conn *c = ctx;
    /* A destroyed connection cancelled its request: c is live here. */
    if (c->state != CS_AUTH_WAIT)
        return;
    if (c->proto->login_answer)
        c->proto->login_answer(c, resp);
    char user[CONN_USER_MAX + 1];
    log_safe(user, sizeof user, c->user, sizeof c->user);
    login_account(c, resp->result == AUTHP_OK,
                  resp->result == AUTHP_OK ? NULL : proxy_login_reason(resp->result));
    if (resp->result == AUTHP_OK) {
        char tag[64] = "";
        if (c->proto->login_tag)
            c->proto->login_tag(c, tag, sizeof tag);
        conn_log(c, LOG_LVL_INFO, "user \"%s\" authenticated%s", user, tag);
        c->authed = true;                   /* from here on, lines carry user= */
        c->proto->login_ok(c);
    } else {
        char det[AUTHP_DETAIL_MAX + 1];
        log_safe(det, sizeof det, resp->detail, sizeof resp->detail);
        conn_log(c, resp->result == AUTHP_ERROR ? LOG_LVL_WARN : LOG_LVL_INFO,
                 "login failed for user \"%s\": %s%s%s%s", user, proxy_login_reason(resp->result),
                 det[0] ? " (" : "", det, det[0] ? ")" : "");
        fail_delay_start(c, resp->submitted);
    }
    conn_drive(c);
    after_event(c);
}

/* A login (vms false: for c->vm) or a VM list request (vms true). */
static void login_submit(struct conn *c, const char *pass, bool vms)
{
    struct authp_login_req req;
    memset(&req, 0, sizeof req);
    if (!vms)
        snprintf(req.vm, sizeof req.vm, "%s", c->vm->name);
    snprintf(req.user, sizeof req.user, "%s", c->user);
    snprintf(req.password, sizeof req.password, "%s", pass);
    snprintf(req.rhost, sizeof req.rhost, "%s", c->rhost);
    conn_set_state(c, CS_AUTH_WAIT);
    c->login_at = ev_now(c->px->loop);
    if ((vms ? auth_client_vms : auth_client_submit)(c->px->auth, &req, c->fs.fd, auth_done,
                                                     c) != 0)
        conn_fail(c, LOG_LVL_ERR, "could not submit login request");
    explicit_bzero(&req, sizeof req);
}

void conn_login(struct conn *c, const char *pass)
{
    login_submit(c, pass, false);
}

void conn_login_vms(struct conn *c, const char *pass)
{
    login_submit(c, pass, true);
}

void conn_login_failed(struct conn *c)
{
    login_account(c, false, "refused");
    fail_delay_start(c, 0);
}

/* ---------------------------------------------------------------------- */
/* QMP exchanges                                                           */

/* The broker answered (or failed): leave CS_QMP through q.done. */
static void qmp_answer(void *ctx, const struct authp_login_resp *resp)
{
    struct conn *c = ctx;
    /* A destroyed connection cancelled its request: c is live here. */
    if (c->state != CS_QMP)
        return;
    void (*done)(struct conn *, const char *, bool) = c->q.done;
    c->q.done = NULL;
    if (c->q.passfd >= 0) {
        close(c->q.passfd);           /* QEMU holds its own copy now, or never will */
        c->q.passfd = -1;
    }
    char det[AUTHP_DETAIL_MAX + 1];
    log_safe(det, sizeof det, resp->detail, strnlen(resp->detail, sizeof resp->detail));
    if (resp->result == AUTHP_OK)
        done(c, NULL, false);
    else
        done(c, det[0] ? det : "QMP operation failed", resp->result == AUTHP_QMP_REFUSED);
    conn_drive(c);
    after_event(c);
}

void conn_qmp(struct conn *c, enum qmpb_op op, const char *arg,
              void (*done)(struct conn *c, const char *err, bool refused))
{
    struct authp_qmp_req req = { .op = (uint8_t)op, .conn = c->id };
    snprintf(req.vm, sizeof req.vm, "%s", c->vm->name);
    snprintf(req.arg, sizeof req.arg, "%s", arg ? arg : "");
    c->q.done = done;
    conn_set_state(c, CS_QMP);
    int rc = auth_client_qmp(c->px->auth, &req, c->q.passfd, qmp_answer, c);
    explicit_bzero(&req, sizeof req);
    if (rc != 0) {
        c->q.done = NULL;
        done(c, "could not submit the QMP request", false);
    }
}

/* ---------------------------------------------------------------------- */
/* the backend                                                             */

void conn_back_queue(struct conn *c, const void *p, size_t n)
{
    if (buf_put(c_f2b(c), p, n) != 0)
        conn_fail(c, LOG_LVL_ERR, "internal: VM buffer full");
}

static void backend_up(struct conn *c)
{
    c->back_rd_ready = false;
    c->proto->backend_up(c);
}

/* The QMP handoff (vnc = qmp:PATH) answered: the socketpair's other end is
 * QEMU's now. */
static void handoff_done(struct conn *c, const char *err, bool refused)
{
    if (err) {
        close(c->bfd);
        c->bfd = -1;
        c->proto->vm_unavailable(c, err, refused);
        return;
    }
    backend_up(c);
}

static void handoff_start(struct conn *c)
{
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == -1) {
        c->proto->vm_unavailable(c, strerror(errno), false);
        return;
    }
    /* Only our end is non-blocking; QEMU sets up its own. */
    fcntl(sp[0], F_SETFL, fcntl(sp[0], F_GETFL) | O_NONBLOCK);
    c->bfd = sp[0];
    c->q.passfd = sp[1];
    conn_qmp(c, QMPB_VNC_HANDOFF, NULL, handoff_done);
}

void conn_backend_open(struct conn *c, const struct cfg_backend *be)
{
    char why[256];
    int fd = -1;
    if (be->kind == CFG_BE_QMP) {
        handoff_start(c);
        return;
    }
    conn_set_state(c, CS_BACKEND_CONNECT);
    int r = backend_connect(be, &fd, why, sizeof why);
    if (r < 0) {
        c->proto->vm_unavailable(c, why, false);
        return;
    }
    c->bfd = fd;
    c->bw_mask = 0;
    if (r == 0)
        backend_up(c);
}

/* Send what the VM may get now.  0, or -1 (the connection is over). */
static int back_flush(struct conn *c)
{
    struct conn_side *s = &c->d[CONN_C2S];
    for (;;) {
        size_t len;
        struct buf *src = out_source(c, s, &len);
        if (!len)
            break;
        ssize_t n = send(c->bfd, buf_head(src), len, MSG_NOSIGNAL);
        if (n > 0) {
            sent(c, s, src, (size_t)n);
            continue;
        }
        if (n == -1 && (errno == EAGAIN || errno == EINTR))
            return 0;
        char why[160];
        snprintf(why, sizeof why, "%s", n == -1 ? strerror(errno) : "write returned 0");
        if (c->state == CS_RELAY) {
            conn_fail(c, LOG_LVL_INFO, "VM closed the console (%s)", why);
        } else {
            close(c->bfd);
            c->bfd = -1;
            buf_free(&s->stream);
            c->proto->vm_unavailable(c, why, false);
        }
        return -1;
    }
    buf_trim(&s->stream);
    buf_trim(&s->inj);
    return 0;
}

/* A protocol state that talks to the VM: flush, read, step.  True on
 * progress. */
static bool back_io_step(struct conn *c, const struct conn_state_def *st)
{
    if (back_flush(c) < 0)
        return !c->end.dead;
    ssize_t n = backend_read(c->bfd, &c->brx, NULL);
    int before = c->state;
    bool progress = st->step(c);
    if (c->state != before || progress)
        return true;
    if (n < 0 && !c->end.dead) {
        close(c->bfd);
        c->bfd = -1;
        buf_free(c_f2b(c));
        c->proto->vm_unavailable(c, st->back_eof ? st->back_eof
                                                 : "VM closed the console during handshake",
                                 false);
        return true;
    }
    return false;
}

/* ---------------------------------------------------------------------- */
/* the relay                                                               */

void conn_relay_start(struct conn *c)
{
    struct conn_side *up = &c->d[CONN_C2S], *down = &c->d[CONN_S2C];
    /* What is queued now is handshake: approved.  Pipelined bytes after it
     * go through the filter. */
    up->ok = buf_len(&up->stream);
    down->ok = buf_len(&down->stream);
    if (!up->separate_in) {
        if (!buf_empty(&c->rx)) {
            buf_put(&up->stream, buf_head(&c->rx), buf_len(&c->rx));
            buf_consume(&c->rx, buf_len(&c->rx));
        }
        buf_free(&c->rx);
    }
    if (!down->separate_in) {
        if (!buf_empty(&c->brx)) {
            buf_put(&down->stream, buf_head(&c->brx), buf_len(&c->brx));
            buf_consume(&c->brx, buf_len(&c->brx));
        }
        buf_free(&c->brx);
    }
    c->relay_mode = true;
    conn_authenticated(c);
    c->fs.rd_ready = c->back_rd_ready = true;
    conn_set_state(c, CS_RELAY);
}

void conn_vm_gone(struct conn *c)
{
    if (c->logged_start) {
        c->logged_start = false;
        conn_log(c, LOG_LVL_INFO, "session ended: VM closed the console");
        session_closed(c, "VM closed the console");
        proxy_idle_report(c->px, c->vm->name);
    }
    close(c->bfd);
    c->bfd = -1;
    conn_close_after(c);
    front_flush(c);
}

static struct buf *side_in(struct conn *c, enum conn_dir d)
{
    if (!c->d[d].separate_in)
        return &c->d[d].stream;
    return d == CONN_C2S ? &c->rx : &c->brx;
}

/* Run direction d's filter (or approve everything).  0, or -1 (failed). */
static int filter(struct conn *c, enum conn_dir d)
{
    struct conn_side *s = &c->d[d];
    if (c->proto->filter) {
        char why[256];
        if (c->proto->filter(c, d, why, sizeof why) != 0) {
            conn_fail(c, LOG_LVL_WARN, "%s", why);
            return -1;
        }
        if (c->end.dead)
            return -1;
    }
    if (!s->inplace)
        s->ok = buf_len(&s->stream);
    return 0;
}

/* One round both ways.  1 if anything moved, 0 if not, -1 when over. */
static int relay_round(struct conn *c)
{
    bool moved = false;
    /* viewer -> VM.  Read a side only when it signalled data (or OpenSSL
     * holds some): a read that would only say EAGAIN costs a syscall. */
    struct buf *in = side_in(c, CONN_C2S);
    while (!c->fs.eof && buf_room(in) > 0 && (c->fs.rd_ready || tside_has_pending(&c->fs))) {
        ssize_t n = conn_front_read(c, in, in->cap);
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        moved = true;
    }
    if (filter(c, CONN_C2S) < 0)
        return -1;
    size_t before = back_pending(c);
    if (before) {
        if (back_flush(c) < 0)
            return -1;
        moved |= back_pending(c) != before;
    }
    /* VM -> viewer */
    in = side_in(c, CONN_S2C);
    if (buf_room(in) > 0 && c->back_rd_ready) {
        ssize_t n = backend_read(c->bfd, in, &c->back_rd_ready);
        if (n < 0) {
            conn_vm_gone(c);
            return -1;
        }
        moved |= n > 0;
    }
    if (filter(c, CONN_S2C) < 0)
        return -1;
    before = front_pending(c);
    if (before) {
        if (front_flush(c) < 0)
            return -1;
        moved |= front_pending(c) != before;
    }
    if (c->d[CONN_C2S].separate_in)
        buf_trim(&c->rx);
    if (c->d[CONN_S2C].separate_in)
        buf_trim(&c->brx);
    /* Data OpenSSL already holds does not make the fd readable. */
    return moved || (tside_has_pending(&c->fs) && buf_room(side_in(c, CONN_C2S)) > 0);
}

static void relay_step(struct conn *c)
{
    for (int rounds = 0; rounds < 16 && !c->end.dead && c->state == CS_RELAY; rounds++)
        if (relay_round(c) <= 0)
            return;
}

/* ---------------------------------------------------------------------- */
/* the state machine                                                       */

static void conn_drive(struct conn *c)
{
    for (int guard = 0; guard < 64 && !c->end.dead; guard++) {
        if (front_flush(c) < 0)
            return;
        bool progress;
        switch (c->state) {
        case CS_RELAY:
            relay_step(c);
            if (!c->end.dead && c->state == CS_CLOSING)
                continue;           /* VM gone: close once the last bytes are out */
            return;
        case CS_CLOSING:
            close_step(c);
            return;
        case CS_AUTH_WAIT:
        case CS_FAIL_DELAY:
        case CS_QMP:                /* the broker's answer comes through the auth client */
        case CS_BACKEND_CONNECT:    /* back_cb sees the connect finish */
            return;
        case CS_TLS_HANDSHAKE:
            progress = tls_step(c);
            break;
        case CS_PROXY_HDR:
            progress = pp2_step(c);
            break;
        default: {
            const struct conn_state_def *st = &c->proto->states[c->state - CS_PROTO];
            progress = st->flags & CSF_BACK_IO ? back_io_step(c, st) : st->step(c);
            break;
        }
        }
        if (!progress)
            return;
    }
}

static void set_watch(struct conn *c, ev_io *w, int fd, int *cur, int want)
{
    struct ev_loop *loop = c->px->loop;
    if (fd < 0)
        want = 0;
    if (want == *cur && (!want || (ev_is_active(w) && w->fd == fd)))
        return;
    if (ev_is_active(w))
        ev_io_stop(loop, w);
    if (want) {
        ev_io_set(w, fd, want);
        ev_io_start(loop, w);
    }
    *cur = want;
}

/* Derive every watcher's mask from the state and the buffers (the only
 * place that starts or stops them). */
static void conn_update_io(struct conn *c)
{
    int fm = 0, bm = 0;
    switch (c->state) {
    case CS_TLS_HANDSHAKE:
    case CS_PROXY_HDR:
        fm |= EV_READ;
        break;
    case CS_BACKEND_CONNECT:
        bm |= EV_WRITE;
        break;
    case CS_RELAY:
        if (!c->fs.eof && buf_room(side_in(c, CONN_C2S)) > 0)
            fm |= EV_READ;
        if (buf_room(side_in(c, CONN_S2C)) > 0)
            bm |= EV_READ;
        if (back_pending(c))
            bm |= EV_WRITE;
        break;
    case CS_CLOSING:
        if (c->close_sent)
            fm |= EV_READ;
        break;
    case CS_AUTH_WAIT:
    case CS_FAIL_DELAY:
        break;
    default: {
        unsigned f = c->proto->states[c->state - CS_PROTO].flags;
        if (f & CSF_FRONT_READ)
            fm |= EV_READ;
        if (f & CSF_BACK_IO) {
            bm |= EV_READ;
            if (back_pending(c))
                bm |= EV_WRITE;
        }
        break;
    }
    }
    if (front_pending(c))
        fm |= EV_WRITE;
    if (c->fs.read_wants_write)
        fm = (fm & ~EV_READ) | EV_WRITE;
    if (c->fs.write_wants_read)
        fm |= EV_READ;
    set_watch(c, &c->fw, c->fs.fd, &c->fw_mask, fm);
    set_watch(c, &c->bw, c->bfd, &c->bw_mask, bm);
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

void conn_poke(struct conn *c)
{
    conn_drive(c);
    after_event(c);
}

/* Watchers are stopped before a connection is freed, so w->data is live. */
static void front_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct conn *c = w->data;
    (void)loop;
    if (revents & EV_READ)
        c->fs.rd_ready = true;
    conn_drive(c);
    after_event(c);
}

static void back_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct conn *c = w->data;
    (void)loop;
    if (revents & EV_READ)
        c->back_rd_ready = true;
    if (c->state == CS_BACKEND_CONNECT && (revents & EV_WRITE)) {
        char why[256];
        if (backend_connect_result(c->bfd, why, sizeof why) != 0) {
            close(c->bfd);
            c->bfd = -1;
            c->proto->vm_unavailable(c, why, false);
        } else {
            backend_up(c);
        }
    }
    conn_drive(c);
    after_event(c);
}

/* c held its unauthenticated slot until it was closed for that: the auth
 * helper counts it towards ban_after (AUTHP_REQ_IDLE, best effort). */
static void report_idle(struct conn *c)
{
    /* before its header a balancer's connection names nobody: the helper
     * would count the balancer itself (it refuses to, fwguard) */
    if (c->state == CS_PROXY_HDR)
        return;
    if (c->px->auth)
        auth_client_report_idle(c->px->auth, c->fs.fd, c->rhost);
}

static bool conn_evictable(const struct conn *c);

static void login_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct conn *c = w->data;
    (void)revents;
    const struct cfg *cfg = c->px->cfg;
    if (c->fb_pending) {
        c->fb_pending = false;
        if (!c->fs.got_data && c->state == CS_PROXY_HDR) {
            conn_hs_failed(c, PROXY_HS_PROXY);
            conn_fail(c, LOG_LVL_WARN, "refused: no PROXY header from balancer %s within %llus "
                      "(first_byte_timeout; proxy_protocol lists it)", c->balancer,
                      (unsigned long long)(cfg->first_byte_timeout_ms / 1000));
            after_event(c);
            return;
        }
        if (!c->fs.got_data) {
            conn_hs_failed(c, PROXY_HS_TIMEOUT);
            conn_fail(c, LOG_LVL_INFO, "closed: no data from the viewer within %llus "
                      "(first_byte_timeout)",
                      (unsigned long long)(cfg->first_byte_timeout_ms / 1000));
            report_idle(c);
            after_event(c);
            return;
        }
        /* It spoke in time: the rest of login_timeout. */
        ev_timer_set(w, (double)(cfg->login_timeout_ms - cfg->first_byte_timeout_ms) / 1000.0, 0);
        ev_timer_start(loop, w);
        return;
    }
    if (c->idle_close) {
        /* a kept-alive connection (HTTP) between requests: closing an idle
         * one is routine; one with a request head begun and not finished
         * (a slowloris after a served file) is news */
        if (buf_len(&c->rx) > 0) {
            c->quiet_end = false;
            conn_fail(c, LOG_LVL_INFO, "closed: a request head not finished within the "
                      "keep-alive wait (%gs)", c->idle_secs);
        } else {
            conn_fail(c, LOG_LVL_DEBUG, "closed: kept alive and idle for %gs", c->idle_secs);
        }
        after_event(c);
        return;
    }
    /* Only a connection still before its credentials held the slot idly
     * (not one waiting for a slow helper or a slow VM). */
    if (conn_evictable(c)) {
        report_idle(c);
        conn_hs_failed(c, PROXY_HS_TIMEOUT);
    }
    conn_fail(c, LOG_LVL_INFO, "login timeout (%llus) in state %s",
              (unsigned long long)(c->px->cfg->login_timeout_ms / 1000), conn_state_name(c));
    after_event(c);
}

static void delay_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct conn *c = w->data;
    (void)loop;
    (void)revents;
    if (c->state == CS_FAIL_DELAY) {
        c->proto->login_refuse(c);
        conn_drive(c);
    } else if (c->close_sent) {
        conn_fail(c, LOG_LVL_DEBUG, "closed after final message (viewer kept the connection)");
    } else {
        conn_fail(c, LOG_LVL_INFO, "viewer did not take the final message");
    }
    after_event(c);
}

/* ---------------------------------------------------------------------- */
/* life cycle                                                              */

static void conn_destroy(struct conn *c)
{
    struct proxy *px = c->px;
    /* idle_pause: report by name after c is gone (the VM may be a stand-in
     * living in c, like web's "?NAME", or a retired config's: the config in
     * force says whether the VM has idle_pause) */
    char vm[CFG_NAME_MAX + 1] = "";
    if (c->logged_start)
        snprintf(vm, sizeof vm, "%s", c->vm->name);
    if (c->logged_start) {
        conn_log(c, LOG_LVL_INFO, "session ended: %s", c->end.why[0] ? c->end.why : "closed");
        session_closed(c, c->end.why[0] ? c->end.why : "closed");
    }
    else if (c->end.why[0])
        conn_log(c, c->quiet_end ? LOG_LVL_DEBUG : c->end.level, "%s", c->end.why);
    if (c->proto->destroy)
        c->proto->destroy(c);
    ev_io_stop(px->loop, &c->fw);
    ev_io_stop(px->loop, &c->bw);
    ev_timer_stop(px->loop, &c->login_timer);
    ev_timer_stop(px->loop, &c->delay_timer);
    if (px->auth)
        auth_client_cancel(px->auth, c);
    if (c->state == CS_CLOSING && !c->close_sent && !c->shutdown_queued)
        tside_shutdown(&c->fs);             /* best effort close_notify */
    tside_close(&c->fs);
    if (c->bfd >= 0)
        close(c->bfd);
    if (c->q.passfd >= 0)
        close(c->q.passfd);
    buf_free(&c->rx);
    buf_free(&c->brx);
    for (int d = 0; d < 2; d++) {
        buf_free(&c->d[d].stream);
        buf_free(&c->d[d].inj);
    }
    unauth_done(c);
    if (c->prev)
        c->prev->next = c->next;
    else
        px->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    px->n_conns--;
    if (c->p) {
        explicit_bzero(c->p, c->proto->priv_size);
        free(c->p);
    }
    explicit_bzero(c, sizeof *c);
    free(c);
    if (vm[0])
        proxy_idle_report(px, vm);          /* idle_pause: one session less */
}

unsigned conn_unauth_from(const struct proxy *px, const char *skey)
{
    unsigned n = 0;
    for (const struct conn *o = px->conns; o; o = o->next)
        if (o->unauth && strcmp(o->skey, skey) == 0)
            n++;
    return n;
}

/* May c be evicted for a new connection?  Only while it is still in the
 * handshake before its credentials went to the auth helper: not once they
 * are with the helper or failed (auth-wait, fail-delay: the fail delay must
 * run its course), not once the user is known good (backend connect, QMP,
 * backend handshake: c->authed), not while a final message lingers
 * (closing, bounded by CONN_LINGER anyway). */
static bool conn_evictable(const struct conn *c)
{
    return c->unauth && !c->authed && !c->end.dead && c->state != CS_AUTH_WAIT &&
           c->state != CS_FAIL_DELAY && c->state != CS_CLOSING;
}

bool conn_evict_for(struct proxy *px, const char *rhost, const char *skey)
{
    size_t n = px->n_unauth, k = 0;
    if (n == 0)
        return false;
    struct proxy_slot *slots = calloc(n, sizeof *slots);
    struct conn **who = calloc(n, sizeof *who);
    ssize_t v = -1;
    if (slots && who) {
        for (struct conn *o = px->conns; o && k < n; o = o->next) {
            if (!o->unauth)
                continue;
            slots[k] = (struct proxy_slot){ .skey = o->skey, .seq = o->id,
                                            .evictable = conn_evictable(o) };
            who[k++] = o;
        }
        v = proxy_pick_evict(slots, k, skey);
    }
    struct conn *c = v >= 0 ? who[v] : NULL;
    free(slots);
    free(who);
    if (!c)
        return false;
    unsigned held = conn_unauth_from(px, c->skey);
    ev_tstamp now = ev_now(px->loop);
    if (now - px->evict_log_at >= 1.0) {
        log_warn("evicted conn=%llu from=%s in state %s: its source %s held %u of %u "
                 "unauthenticated connections; admitting one from %s%s",
                 (unsigned long long)c->id, c->rhost, conn_state_name(c), c->skey, held,
                 px->cfg->max_unauth, rhost,
                 px->evict_suppressed ? " (and more evictions since the last message)" : "");
        px->evict_log_at = now;
        px->evict_suppressed = 0;
    } else {
        px->evict_suppressed++;
    }
    conn_fail(c, LOG_LVL_DEBUG, "evicted in state %s (global cap full, source held %u)",
              conn_state_name(c), held);
    report_idle(c);
    conn_destroy(c);              /* called from the listener, not from c's events */
    return true;
}

unsigned conn_count(const struct proxy *px, const struct conn_proto *proto)
{
    unsigned n = 0;
    for (const struct conn *o = px->conns; o; o = o->next)
        if (!proto || o->proto == proto)
            n++;
    return n;
}

void proxy_accept(struct proxy *px, const struct conn_proto *proto, const struct cfg_vm *vm,
                  int fd, const struct sockaddr *sa)
{
    char rhost[INET6_ADDRSTRLEN], skey[PROXY_SKEY_MAX];
    char rlog[INET6_ADDRSTRLEN + 16];      /* rhost as the log shows it */
    proxy_addr_str(sa, rhost, sizeof rhost);
    proxy_source_key(sa, skey, sizeof skey);
    snprintf(rlog, sizeof rlog, "%s", rhost);
    if (sa->sa_family == AF_UNIX) {
        /* a local user (socket_dir): named and capped by uid */
        struct ucred uc;
        socklen_t l = sizeof uc;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &l) != 0) {
            close(fd);
            return;
        }
        snprintf(rhost, sizeof rhost, "uid:%lu", (unsigned long)uc.uid);
        snprintf(rlog, sizeof rlog, "uid:%lu via=unix", (unsigned long)uc.uid);
        snprintf(skey, sizeof skey, "uid:%lu", (unsigned long)uc.uid);
    }
    /* A proxy_protocol balancer is not one source: until its header names
     * the viewer, the connection counts under a key of its own (the global
     * cap still applies) and is admitted again for the viewer. */
    bool pp = (sa->sa_family == AF_INET || sa->sa_family == AF_INET6) &&
              cfg_proxy_source(px->cfg, rhost);
    if (pp)
        snprintf(skey, sizeof skey, "pp2#%llu", (unsigned long long)++px->pp2_seq);
    if (!proxy_admit(px, rlog, skey, proto->admit_tag)) {
        close(fd);
        return;
    }
    struct conn *c = calloc(1, sizeof *c);
    void *p = proto->priv_size ? calloc(1, proto->priv_size) : NULL;
    if (!c || (proto->priv_size && !p)) {
        log_err("out of memory accepting a connection from %s", rlog);
        free(c);
        free(p);
        close(fd);
        return;
    }
    c->proto = proto;
    c->p = p;
    c->px = px;
    c->vm = vm;
    c->id = proxy_new_id(px);
    /* the way in, for audit, status and metrics (was always "tls") */
    c->via = proto->via ? proto->via : sa->sa_family == AF_UNIX ? "unix" : "tls";
    tside_init(&c->fs, fd);
    c->bfd = c->q.passfd = -1;
    snprintf(c->rhost, sizeof c->rhost, "%s", rhost);
    snprintf(c->skey, sizeof c->skey, "%s", skey);
    buf_init(&c->rx, proto->rx_cap);
    buf_init(&c->brx, proto->brx_cap);
    buf_init(&c->d[CONN_C2S].stream, proto->f2b_cap);
    buf_init_headroom(&c->d[CONN_S2C].stream, proto->b2f_cap, proto->b2f_headroom);
    buf_init(&c->d[CONN_C2S].inj, proto->inj_cap);
    buf_init_headroom(&c->d[CONN_S2C].inj, proto->inj_cap, proto->b2f_headroom);
    if (sa->sa_family == AF_INET || sa->sa_family == AF_INET6) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    ev_io_init(&c->fw, front_cb, fd, EV_READ);
    c->fw.data = c;
    ev_io_init(&c->bw, back_cb, -1, EV_READ);
    c->bw.data = c;
    /* One timer for both pre-auth limits: first_byte_timeout (when it is the
     * shorter), then the rest of login_timeout. */
    uint64_t first = px->cfg->login_timeout_ms;
    if (px->cfg->first_byte_timeout_ms < first) {
        first = px->cfg->first_byte_timeout_ms;
        c->fb_pending = true;
    }
    ev_timer_init(&c->login_timer, login_timeout_cb, (double)first / 1000.0, 0);
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
    log_debug("conn=%llu vm=%s%s%s from=%s: accepted%s", (unsigned long long)c->id, vm->name,
              proto->via ? " via=" : "", proto->via ? proto->via : "", rlog,
              proto->accept_tag);
    ev_timer_start(px->loop, &c->login_timer);
    if (pp) {
        snprintf(c->balancer, sizeof c->balancer, "%s", rhost);
        conn_set_state(c, CS_PROXY_HDR);
    } else {
        proto->start(c);
    }
    conn_drive(c);
    after_event(c);
}

void conn_close_all(struct proxy *px, const char *why)
{
    while (px->conns) {
        struct conn *c = px->conns;
        conn_fail(c, LOG_LVL_INFO, "%s", why);
        conn_destroy(c);
    }
}

void conn_kick(struct conn *c, const char *by, const char *reason)
{
    char r[256];
    log_safe(r, sizeof r, reason, strlen(reason));
    struct audit_kv kv[] = { AUDIT_S("by", by), AUDIT_S("reason", reason) };
    conn_audit(c, "kick", kv, 2);
    if (c->proto->kick_line && c->state == CS_RELAY) {
        /* best effort, after what is already queued for the viewer */
        char line[400], why[160];
        size_t n = c->proto->kick_line(c, r, line, sizeof line);
        if (n && front_flush(c) == 0 && front_pending(c) == 0)
            (void)tside_write(&c->fs, (const uint8_t *)line, n, why, sizeof why);
    }
    conn_fail(c, LOG_LVL_INFO, "kicked by %s: %s", by, r);
    if (c->state == CS_RELAY || c->state == CS_CLOSING)
        tside_shutdown(&c->fs);             /* best effort close_notify */
    conn_destroy(c);                        /* called from the control socket, not c's events */
}

/* Is c a session `vmgate status` lists? */
static bool is_session(const struct conn *c) { return c->logged_start && !c->end.dead; }

void proxy_sessions_json(const struct proxy *px, struct jw *w)
{
    jw_open(w, '[');
    for (const struct conn *c = px->conns; c; c = c->next) {
        if (!is_session(c))
            continue;
        struct tm tm;
        char since[96];
        time_t t = c->started_wall.tv_sec;
        gmtime_r(&t, &tm);
        snprintf(since, sizeof since, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        jw_elem(w);
        jw_open(w, '{');
        jw_ku64(w, "id", c->id);
        jw_kstr(w, "vm", c->vm->name);
        jw_kstr(w, "user", c->user);
        jw_kstr(w, "source", c->rhost);
        jw_kstr(w, "via", c->via);
        jw_kstr(w, "protocol", c->proto->name);
        jw_kstr(w, "since", since);
        jw_ku64(w, "bytes_to_vm", c->bytes[CONN_C2S]);
        jw_ku64(w, "bytes_from_vm", c->bytes[CONN_S2C]);
        jw_close(w, '}');
    }
    jw_close(w, ']');
}

void proxy_sessions_text(const struct proxy *px, struct jw *w)
{
    char line[1600];
    snprintf(line, sizeof line, "%-6s %-16s %-20s %-24s %-5s %-20s %12s %12s\n", "ID", "VM",
             "USER", "SOURCE", "VIA", "SINCE", "TO_VM", "FROM_VM");
    jw_raw(w, line);
    for (const struct conn *c = px->conns; c; c = c->next) {
        if (!is_session(c))
            continue;
        struct tm tm;
        char user[CONN_USER_MAX * 4 + 1];
        time_t t = c->started_wall.tv_sec;
        gmtime_r(&t, &tm);
        log_safe(user, sizeof user, c->user, sizeof c->user);
        snprintf(line, sizeof line,
                 "%-6llu %-16s %-20s %-24s %-5s %04d-%02d-%02dT%02d:%02d:%02dZ %12llu %12llu\n",
                 (unsigned long long)c->id, c->vm->name, user, c->rhost, c->via,
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 (unsigned long long)c->bytes[CONN_C2S], (unsigned long long)c->bytes[CONN_S2C]);
        jw_raw(w, line);
    }
}

void proxy_vm_sessions_text(const struct proxy *px, const char *vm, struct jw *w)
{
    char line[1400];
    for (const struct conn *c = px->conns; c; c = c->next) {
        if (!is_session(c) || strcmp(c->vm->name, vm) != 0)
            continue;
        struct tm tm;
        char user[CONN_USER_MAX * 4 + 1];
        time_t t = c->started_wall.tv_sec;
        gmtime_r(&t, &tm);
        log_safe(user, sizeof user, c->user, sizeof c->user);
        snprintf(line, sizeof line, "  %s via %s from %s since %04d-%02d-%02dT%02d:%02d:%02dZ\n",
                 user, c->via, c->rhost, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                 tm.tm_hour, tm.tm_min, tm.tm_sec);
        jw_raw(w, line);
    }
}

unsigned proxy_vm_sessions(const struct proxy *px, const char *vm)
{
    unsigned n = 0;
    for (const struct conn *c = px->conns; c; c = c->next)
        if (is_session(c) && strcmp(c->vm->name, vm) == 0)
            n++;
    return n;
}

unsigned proxy_kick(struct proxy *px, uint64_t id, const char *user, const char *vm,
                    const char *by, const char *reason)
{
    unsigned n = 0;
    if (!id && !user && !vm)
        return 0;
    struct conn *c = px->conns;
    while (c) {
        struct conn *next = c->next;
        if (is_session(c) && (!id || c->id == id) && (!user || strcmp(c->user, user) == 0) &&
            (!vm || strcmp(c->vm->name, vm) == 0)) {
            conn_kick(c, by, reason);
            n++;
        }
        c = next;
    }
    return n;
}
