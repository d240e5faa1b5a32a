/* proxy/vnc_conn.c — the RFB/VeNCrypt protocol of a viewer connection,
 * plugged into the connection core (core.h).  Only what is RFB's is here:
 * one step function per handshake state, the refusals RFB can carry, the
 * backend's RFB handshake (security None), and the relay filter.
 *
 *   version → security-type [19] → vencrypt-version → vencrypt-subtype
 *   [262] → vencrypt-ack → (core) TLS → credentials → (core) auth, fail
 *   delay → (core) backend connect / QMP handoff → backend-handshake →
 *   client-init (shared flag forced to 1) → (core) relay
 *
 * Pre-TLS reads are exact-length, so no ClientHello byte lands in rx. */
#include "proxy/core.h"

#include <linux/tcp.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "proxy/rfb.h"
#include "proxy/rfbfilter.h"
#include "proxy/vnc_conn.h"

#define RX_CAP          2048             /* creds: 8 + 255 + 1024 */
#define BRX_CAP         4096
#define F2B_CAP         (64 * 1024)
#define B2F_CAP         (256 * 1024)

#define REASON_AUTH     "Authentication failed"

/* vnc_local_proto's own states (after the shared ones). */
enum vnc_local_state {
    LS_READ_VERSION = VS_READ_CLIENTINIT + 1,  /* sent "RFB 003.008\n"; then the helper */
    LS_READ_SECTYPE,            /* allowed: offered [1] None, waiting for the choice */
};

#define V(c) ((struct vnc *)(c)->p)

/* Send a SecurityResult failure with reason and close once it is out. */
static void refuse(struct conn *c, const char *reason)
{
    uint8_t msg[8 + 128];
    size_t n = rfb_put_sec_failure(msg, sizeof msg, V(c)->minor, reason);
    conn_front_queue(c, msg, n);
    conn_close_after(c);
}

/* A one-byte VeNCrypt refusal (no reason exists at this point). */
static bool refuse_byte(struct conn *c, uint8_t b)
{
    conn_front_queue(c, &b, 1);
    conn_close_after(c);
    return true;
}

/* Answer the viewer and go to the state that reads its reply. */
static bool reply(struct conn *c, const void *msg, size_t n, int next)
{
    conn_front_queue(c, msg, n);
    conn_set_state(c, next);
    return true;
}

/* ---------------------------------------------------------------------- */
/* the viewer's handshake: one function per state                          */

/* Read the viewer's "RFB 003.00x\n" into V(c)->minor.  1 read, 0 not yet
 * (*progress: bytes came), -1 failed (conn_fail called). */
static int version_in(struct conn *c, bool *progress)
{
    char why[200];
    *progress = false;
    ssize_t n = conn_front_read(c, &c->rx, RFB_VERSION_LEN - buf_len(&c->rx));
    if (n < 0)
        return -1;
    int r = rfb_parse_client_version(buf_head(&c->rx), buf_len(&c->rx), &V(c)->minor, why,
                                     sizeof why);
    if (r == RFB_NEED) {
        *progress = n > 0;
        return 0;
    }
    if (r < 0) {
        if (!conn_stray_proxy_header(c)) {
            conn_hs_failed(c, PROXY_HS_RFB);
            conn_fail(c, LOG_LVL_INFO, "bad handshake: %s", why);
        }
        return -1;
    }
    buf_consume(&c->rx, (size_t)r);
    return 1;
}

static bool st_version(struct conn *c)
{
    bool progress;
    int v = version_in(c, &progress);
    if (v <= 0)
        return v == 0 && progress;
    if (V(c)->minor == 3) {
        /* VeNCrypt needs 3.7+: refuse with a reason (3.3 allows one). */
        uint8_t msg[128];
        size_t l = rfb_put_sec33_failure(msg, sizeof msg,
                                         "vmgate requires RFB 3.7 or later (VeNCrypt)");
        conn_front_queue(c, msg, l);
        conn_hs_failed(c, PROXY_HS_RFB);
        conn_log(c, LOG_LVL_INFO, "refused RFB 3.3 viewer (VeNCrypt needs 3.7+)");
        conn_close_after(c);
        return true;
    }
    static const uint8_t types[] = { 1, RFB_SEC_VENCRYPT };
    return reply(c, types, sizeof types, VS_READ_SECTYPE);
}

static bool st_sectype(struct conn *c)
{
    if (conn_front_read_exact(c, 1) <= 0)
        return false;
    unsigned t = buf_head(&c->rx)[0];
    buf_consume(&c->rx, 1);
    if (t != RFB_SEC_VENCRYPT) {
        conn_hs_failed(c, PROXY_HS_RFB);
        conn_log(c, LOG_LVL_INFO, "bad handshake: viewer chose security type %u, "
                 "only VeNCrypt (19) is offered", t);
        refuse(c, "Only VeNCrypt X509Plain is supported");
        return true;
    }
    static const uint8_t vc_version[] = { 0, 2 };
    return reply(c, vc_version, sizeof vc_version, VS_READ_VC_VERSION);
}

static bool st_vc_version(struct conn *c)
{
    char why[200];
    if (conn_front_read_exact(c, 2) <= 0)
        return false;
    int r = rfb_parse_vencrypt_version(buf_head(&c->rx), buf_len(&c->rx), why, sizeof why);
    buf_consume(&c->rx, 2);
    if (r < 0) {
        conn_hs_failed(c, PROXY_HS_RFB);
        conn_log(c, LOG_LVL_INFO, "bad handshake: %s", why);
        return refuse_byte(c, 1);                /* VeNCrypt version nak */
    }
    uint8_t msg[6] = { 0, 1 };                   /* ack 0 = ok, 1 subtype */
    rfb_put_u32(msg + 2, V(c)->in_tls ? RFB_VENCRYPT_PLAIN : RFB_VENCRYPT_X509PLAIN);
    return reply(c, msg, sizeof msg, VS_READ_VC_SUBTYPE);
}

static bool st_vc_subtype(struct conn *c)
{
    if (conn_front_read_exact(c, 4) <= 0)
        return false;
    uint32_t st = rfb_get_u32(buf_head(&c->rx));
    buf_consume(&c->rx, 4);
    uint32_t want = V(c)->in_tls ? RFB_VENCRYPT_PLAIN : RFB_VENCRYPT_X509PLAIN;
    if (st != want) {
        conn_hs_failed(c, PROXY_HS_RFB);
        conn_log(c, LOG_LVL_INFO, "bad handshake: viewer chose VeNCrypt subtype %u, "
                 "only %s (%u) is offered", st, V(c)->in_tls ? "Plain" : "X509Plain", want);
        return refuse_byte(c, 0);                /* VeNCrypt "0 = failure" */
    }
    if (V(c)->in_tls) {
        /* Plain inside a channel that is already TLS: no ack byte (noVNC
         * sends the credentials straight after the subtype). */
        conn_set_state(c, VS_READ_CREDS);
        return true;
    }
    static const uint8_t ack = 1;
    return reply(c, &ack, 1, VS_SEND_ACK);
}

/* TLS starts once the ack has left (the front flush runs before each step). */
static bool st_send_ack(struct conn *c)
{
    if (!buf_empty(c_b2f(c)))
        return false;
    if (!buf_empty(&c->rx)) {
        conn_fail(c, LOG_LVL_ERR, "internal: pre-TLS bytes left over");
        return false;
    }
    conn_start_tls(c, VS_READ_CREDS);
    return true;
}

static bool st_creds(struct conn *c)
{
    char why[200];
    ssize_t n = conn_front_read(c, &c->rx, RX_CAP);
    if (n < 0)
        return false;
    char pass[RFB_PLAIN_PASS_MAX + 1];
    int r = rfb_parse_plain_creds(buf_head(&c->rx), buf_len(&c->rx), c->user, pass, why,
                                  sizeof why);
    if (r == RFB_NEED) {
        if (buf_full(&c->rx))
            conn_fail(c, LOG_LVL_ERR, "internal: credentials buffer full");
        return n > 0;
    }
    if (r < 0) {
        conn_hs_failed(c, PROXY_HS_RFB);
        conn_log(c, LOG_LVL_INFO, "bad credentials message: %s", why);
        c->user[0] = '\0';
        refuse(c, "Malformed credentials");
        return true;
    }
    /* Wipe the password bytes in rx, keep anything that followed. */
    explicit_bzero((uint8_t *)buf_head(&c->rx), (size_t)r);
    buf_consume(&c->rx, (size_t)r);
    conn_login(c, pass);
    explicit_bzero(pass, sizeof pass);
    return true;
}

/* ---------------------------------------------------------------------- */
/* the backend: RFB with security None                                     */

void vnc_vm_unavailable(struct conn *c, const char *detail, bool refused)
{
    char reason[128];
    if (V(c)->local && V(c)->minor != 8) {
        /* security None was agreed and 3.3/3.7 has no SecurityResult:
         * nothing can carry the reason */
        conn_fail(c, LOG_LVL_WARN, "vm %s is not available (%s)", c->vm->name, detail);
        return;
    }
    if (refused) {
        conn_log(c, LOG_LVL_WARN, "QMP refused the console handoff: %s", detail);
        snprintf(reason, sizeof reason, "VM %s console is not available", c->vm->name);
    } else {
        conn_log(c, LOG_LVL_WARN, "vm %s is not running (%s)", c->vm->name, detail);
        snprintf(reason, sizeof reason, "VM %s is not running", c->vm->name);
    }
    refuse(c, reason);
}

void vnc_login_ok(struct conn *c) { conn_backend_open(c, &c->vm->vnc); }

void vnc_login_refuse(struct conn *c) { refuse(c, REASON_AUTH); }

void vnc_backend_up(struct conn *c)
{
    V(c)->bh = BH_VERSION;
    conn_set_state(c, VS_BACKEND_HANDSHAKE);
}

/* The VM accepted us: tell the viewer, then wait for its ClientInit.  With
 * security None only 3.8 has a SecurityResult. */
static bool backend_secure(struct conn *c)
{
    static const uint8_t ok[4] = { 0, 0, 0, 0 };
    if (V(c)->local && V(c)->minor != 8) {
        conn_set_state(c, VS_READ_CLIENTINIT);
        return true;
    }
    return reply(c, ok, sizeof ok, VS_READ_CLIENTINIT);
}

/* One step of the RFB handshake with the VM on brx.  Returns -1 when it
 * failed (vm_unavailable called), 0 when it needs more, 1 when it moved. */
static int bh_version(struct conn *c, char *why, size_t whylen)
{
    int r = rfb_parse_server_version(buf_head(&c->brx), buf_len(&c->brx), &V(c)->be_minor, why,
                                     whylen);
    if (r == RFB_NEED)
        return 0;
    if (r < 0)
        return -1;
    buf_consume(&c->brx, (size_t)r);
    char v[13];
    snprintf(v, sizeof v, "RFB 003.00%d\n", V(c)->be_minor);
    conn_back_queue(c, v, 12);
    V(c)->bh = BH_SECTYPES;
    return 1;
}

static int bh_sectypes(struct conn *c, char *why, size_t whylen)
{
    const uint8_t *p = buf_head(&c->brx);
    size_t n = buf_len(&c->brx);
    int r;
    if (V(c)->be_minor == 3) {
        uint32_t t;
        r = rfb_parse_sec_type33(p, n, &t, why, whylen);
        if (r == RFB_NEED)
            return 0;
        if (r >= 0 && t != RFB_SEC_NONE) {
            snprintf(why, whylen, "backend wants security type %u, not None", t);
            return -1;
        }
        if (r < 0)
            return -1;
        buf_consume(&c->brx, (size_t)r);
        return backend_secure(c);
    }
    int has_none = 0;
    r = rfb_parse_sec_types(p, n, &has_none, why, whylen);
    if (r == RFB_NEED)
        return 0;
    if (r < 0)
        return -1;
    if (!has_none) {
        snprintf(why, whylen, "backend requires its own authentication; "
                              "run QEMU without a VNC password");
        return -1;
    }
    buf_consume(&c->brx, (size_t)r);
    static const uint8_t none = RFB_SEC_NONE;
    conn_back_queue(c, &none, 1);
    if (V(c)->be_minor == 7)
        return backend_secure(c);
    V(c)->bh = BH_SECRESULT;
    return 1;
}

static int bh_secresult(struct conn *c, char *why, size_t whylen)
{
    uint32_t st;
    int r = rfb_parse_sec_result(buf_head(&c->brx), buf_len(&c->brx), V(c)->be_minor, &st, why,
                                 whylen);
    if (r == RFB_NEED)
        return 0;
    if (r < 0)
        return -1;
    buf_consume(&c->brx, (size_t)r);
    return backend_secure(c);
}

static bool st_backend_handshake(struct conn *c)
{
    static int (*const step[])(struct conn *, char *, size_t) = {
        [BH_VERSION] = bh_version, [BH_SECTYPES] = bh_sectypes, [BH_SECRESULT] = bh_secresult,
    };
    bool moved = false;
    while (c->state == VS_BACKEND_HANDSHAKE && !c->end.dead) {
        char why[256] = "";
        int r = step[V(c)->bh](c, why, sizeof why);
        if (r < 0) {
            vnc_vm_unavailable(c, why, false);
            return true;
        }
        if (r == 0)
            break;
        moved = true;
    }
    return moved;
}

static void on_clip(void *ctx, const struct clip_event *ev)
{
    conn_clip_event(ctx, ev);
}

static void on_note(void *ctx, enum log_level lvl, const char *msg)
{
    conn_log(ctx, lvl, "%s", msg);
}

/* ---------------------------------------------------------------------- */
/* XVP: the filter decides what the viewer's power messages mean; the auth  */
/* helper decides who may, from the viewer's socket (auth/helper.c          */
/* power_request): this process's word about the user is never asked.      */

static const char *xvp_action(unsigned code)
{
    switch (code) {
    case 2: return "shutdown";
    case 3: return "reboot";
    case 4: return "reset";
    default: return "xvp";
    }
}

/* The helper's answer to RFBFILTER_PWR_ASK. */
static void xvp_right_answer(void *ctx, const struct authp_login_resp *resp)
{
    struct conn *c = ctx;
    bool yes = resp->result == AUTHP_OK;
    conn_log(c, LOG_LVL_DEBUG, "xvp: %s", yes ? "power buttons offered (XVP_INIT)"
                                              : "no power buttons");
    rfbfilter_xvp_right(V(c)->flt, yes);
    conn_poke(c);                          /* XVP_INIT at the next boundary; may free c */
}

/* The helper ran (or refused) the action RFBFILTER_PWR_DO asked for. */
static void xvp_done_answer(void *ctx, const struct authp_login_resp *resp)
{
    struct conn *c = ctx;
    const char *action = xvp_action(V(c)->xvp_code);
    V(c)->xvp_code = 0;
    bool ok = resp->result == AUTHP_OK;
    conn_power_event(c, action, ok ? "ok" : resp->result == AUTHP_NOT_ALLOWED ? "refused"
                                                                             : "failed",
                     resp->detail);
    rfbfilter_xvp_done(V(c)->flt, ok);
    conn_poke(c);                          /* XVP_FAIL at the next boundary; may free c */
}

static void on_power(void *ctx, enum rfbfilter_pwr ev, unsigned code, const char *why)
{
    struct conn *c = ctx;
    struct authp_power_req q = { .conn = c->id };
    snprintf(q.vm, sizeof q.vm, "%s", c->vm->name);
    switch (ev) {
    case RFBFILTER_PWR_ASK:
        q.action = AUTHP_PWR_CHECK;
        if (auth_client_power(c->px->auth, &q, c->fs.fd, xvp_right_answer, c) != 0)
            rfbfilter_xvp_right(V(c)->flt, false);
        return;
    case RFBFILTER_PWR_DO:
        q.action = code == 2 ? AUTHP_PWR_SHUTDOWN : code == 3 ? AUTHP_PWR_REBOOT
                                                              : AUTHP_PWR_RESET;
        V(c)->xvp_code = code;
        if (auth_client_power(c->px->auth, &q, c->fs.fd, xvp_done_answer, c) != 0) {
            V(c)->xvp_code = 0;
            conn_power_event(c, xvp_action(code), "failed", "the auth helper is unavailable");
            rfbfilter_xvp_done(V(c)->flt, false);
        }
        return;
    case RFBFILTER_PWR_REFUSED:
        conn_power_event(c, xvp_action(code), "refused", why);
        return;
    case RFBFILTER_PWR_FLOOD:
        conn_power_event(c, xvp_action(code), "rate-limited", why);
        return;
    }
}

static bool st_clientinit(struct conn *c)
{
    if (buf_empty(&c->rx) && conn_front_read(c, &c->rx, RX_CAP) <= 0)
        return false;
    /* ClientInit: force shared = 1 so this viewer never kicks others. */
    static const uint8_t shared = 1;
    buf_consume(&c->rx, 1);
    conn_back_queue(c, &shared, 1);
    const struct rfbfilter_hooks hooks = { on_clip, on_note, c, on_power };
    V(c)->flt = rfbfilter_new(c->vm, &hooks);
    if (!V(c)->flt) {
        conn_fail(c, LOG_LVL_ERR, "out of memory");
        return false;
    }
    c->d[CONN_C2S].inplace = c->d[CONN_S2C].inplace = true;
    V(c)->relaying = true;
    conn_relay_start(c);
    char be[300];
    cfg_backend_str(&c->vm->vnc, be, sizeof be);
    conn_log(c, LOG_LVL_INFO, "session started (backend %s)", be);
    conn_session_started(c);
    return true;
}

/* ---------------------------------------------------------------------- */
/* socket_dir: RFB with security None, authorized by the peer's uid        */

/* The viewer's version: ask the helper about the uid on the socket (no
 * user, no password; the helper reads the peer and checks the socket's
 * path itself). */
static bool ls_version(struct conn *c)
{
    bool progress;
    int v = version_in(c, &progress);
    if (v <= 0)
        return v == 0 && progress;
    c->user[0] = '\0';
    conn_login(c, "");
    return true;
}

/* The helper's answer: the user's name for the log and the refusal. */
static void ls_login_answer(struct conn *c, const struct authp_login_resp *resp)
{
    V(c)->result = (enum authp_result)resp->result;
    char name[AUTHP_DETAIL_MAX + 1];
    log_safe_word(name, sizeof name, resp->detail, strnlen(resp->detail, sizeof resp->detail));
    if (resp->result == AUTHP_OK || resp->result == AUTHP_NOT_ALLOWED) {
        snprintf(c->user, sizeof c->user, "%s", resp->detail);
        snprintf(V(c)->who, sizeof V(c)->who, "user %s", name);
    } else if (resp->result == AUTHP_UNKNOWN_USER) {
        snprintf(V(c)->who, sizeof V(c)->who, "%s", name);
    }
}

static void ls_login_tag(struct conn *c, char *out, size_t outsz)
{
    (void)c;
    snprintf(out, outsz, " by uid");
}

/* Allowed: offer None.  3.3 has no choice: the server names the type. */
static void ls_login_ok(struct conn *c)
{
    if (V(c)->minor == 3) {
        uint8_t t[4];
        rfb_put_u32(t, RFB_SEC_NONE);
        conn_front_queue(c, t, sizeof t);
        conn_backend_open(c, &c->vm->vnc);
        return;
    }
    static const uint8_t types[] = { 1, RFB_SEC_NONE };
    reply(c, types, sizeof types, LS_READ_SECTYPE);
}

/* Refused: "no security types" and the reason (3.3: type 0 + reason),
 * naming the user and the VM. */
static void ls_login_refuse(struct conn *c)
{
    char reason[AUTHP_DETAIL_MAX + CFG_NAME_MAX + 48];
    if (V(c)->result == AUTHP_ERROR || !V(c)->who[0])
        snprintf(reason, sizeof reason, "vmgate could not check who may open VM %s",
                 c->vm->name);
    else
        snprintf(reason, sizeof reason, "%s may not open VM %s", V(c)->who, c->vm->name);
    uint8_t msg[8 + sizeof reason];
    size_t n;
    if (V(c)->minor == 3) {
        n = rfb_put_sec33_failure(msg, sizeof msg, reason);
    } else {
        size_t l = strlen(reason);
        msg[0] = 0;
        rfb_put_u32(msg + 1, (uint32_t)l);
        memcpy(msg + 5, reason, l);
        n = 5 + l;
    }
    conn_front_queue(c, msg, n);
    conn_close_after(c);
}

static bool ls_sectype(struct conn *c)
{
    if (conn_front_read_exact(c, 1) <= 0)
        return false;
    unsigned t = buf_head(&c->rx)[0];
    buf_consume(&c->rx, 1);
    if (t != RFB_SEC_NONE) {
        conn_hs_failed(c, PROXY_HS_RFB);
        conn_log(c, LOG_LVL_INFO, "bad handshake: viewer chose security type %u, "
                 "only None (1) is offered", t);
        if (V(c)->minor == 8)
            refuse(c, "Only security type None is offered here");
        else
            conn_close_after(c);
        return true;
    }
    conn_backend_open(c, &c->vm->vnc);
    return true;
}

static void ls_start(struct conn *c)
{
    V(c)->local = true;
    static const char version[] = "RFB 003.008\n";
    conn_front_queue(c, version, RFB_VERSION_LEN);
    conn_set_state(c, LS_READ_VERSION);
}

/* ---------------------------------------------------------------------- */
/* the relay filter and the table                                          */

/* What the filter needs to know about the viewer's link: the clock, and
 * (only when it paces by the kernel: a viewer with continuous updates but
 * no fences) the bytes not yet acknowledged by the viewer's TCP — ours,
 * OpenSSL's and the kernel's send queue — and the congestion window, both
 * from one TCP_INFO (the kernel's queue is what SIOCOUTQ reports: bytes not
 * sent plus segments sent and not acknowledged; read here through
 * getsockopt, which the network process's seccomp list allows, where an
 * ioctl is not).  A unix-socket viewer has no TCP_INFO: our buffers only. */
static void link_info(struct conn *c)
{
    struct rfbfilter_link l = { .now = ev_now(c->px->loop) };
    if (rfbfilter_wants_queue(V(c)->flt)) {
        l.queued = c->d[CONN_S2C].ok + buf_len(&c->d[CONN_S2C].inj) + tside_pending(&c->fs);
        struct tcp_info ti;
        socklen_t tl = sizeof ti;
        memset(&ti, 0, sizeof ti);
        if (getsockopt(c->fs.fd, IPPROTO_TCP, TCP_INFO, &ti, &tl) == 0) {
            l.queued += (uint64_t)ti.tcpi_notsent_bytes +
                        (uint64_t)ti.tcpi_unacked * ti.tcpi_snd_mss;
            l.cwnd = (uint64_t)ti.tcpi_snd_cwnd * ti.tcpi_snd_mss;
        }
    }
    rfbfilter_link(V(c)->flt, &l);
}

static void wake_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct conn *c = w->data;
    (void)loop;
    (void)revents;
    V(c)->wake_on = false;
    conn_poke(c);                          /* may free c */
}

/* Arm (or re-arm) the wake-up timer the filter asks for. */
static void wake_update(struct conn *c)
{
    struct vnc *v = V(c);
    double t = rfbfilter_wake(v->flt);
    if (v->wake_on) {
        ev_timer_stop(c->px->loop, &v->wake);
        v->wake_on = false;
    }
    if (t < 0)
        return;
    ev_timer_init(&v->wake, wake_cb, t + 0.001, 0);
    v->wake.data = c;
    ev_timer_start(c->px->loop, &v->wake);
    v->wake_on = true;
}

int vnc_filter(struct conn *c, enum conn_dir d, char *why, size_t whylen)
{
    struct buf *to_viewer = &c->d[CONN_S2C].inj, *to_vm = &c->d[CONN_C2S].inj;
    link_info(c);
    int r;
    if (d == CONN_C2S) {
        r = rfbfilter_c2s(V(c)->flt, c_f2b(c), &c->d[d].ok, to_viewer, to_vm, why, whylen);
    } else {
        r = rfbfilter_s2c(V(c)->flt, c_b2f(c), &c->d[d].ok, to_viewer, to_vm, why, whylen);
    }
    wake_update(c);                        /* an echo (c2s) moves the estimate too */
    return r;
}

static void start(struct conn *c)
{
    static const char version[] = "RFB 003.008\n";
    conn_front_queue(c, version, RFB_VERSION_LEN);
    conn_set_state(c, VS_READ_VERSION);
}

void vnc_destroy(struct conn *c)
{
    if (V(c)->relaying && c->px->auth && c->fs.fd >= 0) {
        /* the helper remembered this login for power requests: forget it */
        struct authp_power_req q = { .action = AUTHP_PWR_FORGET, .conn = c->id };
        snprintf(q.vm, sizeof q.vm, "%s", c->vm->name);
        (void)auth_client_power(c->px->auth, &q, c->fs.fd, NULL, NULL);
    }
    if (V(c)->wake_on)
        ev_timer_stop(c->px->loop, &V(c)->wake);
    rfbfilter_free(V(c)->flt);
}

#define SHARED_STATES                                                                      \
    [VS_BACKEND_HANDSHAKE - CS_PROTO] = { "backend-handshake", CSF_BACK_IO, st_backend_handshake, \
                                          "VM closed the console during handshake" },      \
    [VS_READ_CLIENTINIT - CS_PROTO] = { "client-init", CSF_FRONT_READ, st_clientinit, NULL }

const struct conn_state_def vnc_states[VNC_N_STATES] = {
    SHARED_STATES,
    [VS_READ_VERSION - CS_PROTO] = { "version", CSF_FRONT_READ, st_version, NULL },
    [VS_READ_SECTYPE - CS_PROTO] = { "security-type", CSF_FRONT_READ, st_sectype, NULL },
    [VS_READ_VC_VERSION - CS_PROTO] = { "vencrypt-version", CSF_FRONT_READ, st_vc_version, NULL },
    [VS_READ_VC_SUBTYPE - CS_PROTO] = { "vencrypt-subtype", CSF_FRONT_READ, st_vc_subtype, NULL },
    [VS_SEND_ACK - CS_PROTO] = { "vencrypt-ack", 0, st_send_ack, NULL },
    [VS_READ_CREDS - CS_PROTO] = { "credentials", CSF_FRONT_READ, st_creds, NULL },
};

static const struct conn_state_def vnc_local_states[] = {
    SHARED_STATES,
    [LS_READ_VERSION - CS_PROTO] = { "version", CSF_FRONT_READ, ls_version, NULL },
    [LS_READ_SECTYPE - CS_PROTO] = { "security-type", CSF_FRONT_READ, ls_sectype, NULL },
};

/* The viewer starts in the clear (VeNCrypt), TLS comes after the ack; the
 * relay filters both directions in place, with injection buffers. */
const struct conn_proto vnc_proto = {
    .name = "vnc", .accept_tag = "", .admit_tag = "",
    .states = vnc_states, .n_states = VNC_N_STATES,
    .rx_cap = RX_CAP, .brx_cap = BRX_CAP, .f2b_cap = F2B_CAP, .b2f_cap = B2F_CAP,
    .priv_size = sizeof(struct vnc), .inj_cap = RFBFILTER_INJECT_CAP,
    .start = start, .login_ok = vnc_login_ok, .login_refuse = vnc_login_refuse,
    .backend_up = vnc_backend_up, .vm_unavailable = vnc_vm_unavailable, .filter = vnc_filter,
    .destroy = vnc_destroy,
};

/* socket_dir/VM.vnc: plain RFB, security None once the helper has allowed
 * the peer's uid; the same backend handshake, ClientInit and relay filter. */
const struct conn_proto vnc_local_proto = {
    .name = "vnc", .accept_tag = " (unix socket)", .admit_tag = "",
    .states = vnc_local_states,
    .n_states = sizeof vnc_local_states / sizeof vnc_local_states[0],
    .rx_cap = RX_CAP, .brx_cap = BRX_CAP, .f2b_cap = F2B_CAP, .b2f_cap = B2F_CAP,
    .priv_size = sizeof(struct vnc), .inj_cap = RFBFILTER_INJECT_CAP,
    .start = ls_start, .login_answer = ls_login_answer, .login_ok = ls_login_ok,
    .login_refuse = ls_login_refuse, .login_tag = ls_login_tag,
    .backend_up = vnc_backend_up, .vm_unavailable = vnc_vm_unavailable, .filter = vnc_filter,
    .destroy = vnc_destroy,
};
