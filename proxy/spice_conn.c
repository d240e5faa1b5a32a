/* proxy/spice_conn.c — one SPICE channel connection, from accept to close,
 * and the registry of SPICE sessions.
 *
 * Structure as proxy/conn.c: the life of a connection is the explicit state
 * enum below; socket and timer events only record what happened and call
 * sc_drive(), which advances the state machine as far as the buffered bytes
 * allow; sc_update_io() derives every watcher mask from the state and the
 * buffers.  sc_fail() only records the reason; the event callback on the
 * stack destroys the connection as it unwinds.
 *
 * The link (docs/spice.md has the algorithm and the bytes):
 *   TLS handshake (TLS from the first byte, as QEMU's tls-port)
 *   READ_LINK        the viewer's header + SpiceLinkMess, validated as QEMU
 *                    does; a non-main channel must name a live session
 *   BACKEND_CONNECT  unix: or tcp: to the VM's SPICE server
 *   BACKEND_LINK     our link message (the viewer's channel and caps, auth
 *                    selection, the viewer's mini-header bit); the VM's reply
 *                    gives its channel caps and an RSA key for the ticket
 *   READ_AUTH_MECH   we answered the viewer with SASL as the only auth
 *   SASL_MECHNAME, SASL_START, SASL_STEP    PLAIN: user and password
 *   AUTH_WAIT        the auth helper checks password + ACL (skipped for a
 *                    later channel of a session whose login is fresh)
 *   FAIL_DELAY       a failed login is answered after fail_delay
 *   QMP              main channel: set the VM's SPICE ticket over QMP
 *   BACKEND_AUTH     our ticket, RSA-encrypted with the VM's key; the VM's
 *                    link result is passed on to the viewer
 *   RELAY            main: through the main-channel filter (clipboard
 *                    policy); other channels: bytes spliced unchanged
 *   CLOSING          flushing a last message to the viewer
 *
 * Buffers (bounded, lazily allocated, as conn.c): rx (viewer bytes not yet
 * handled; the main channel's viewer->VM input), brx (VM bytes not yet
 * handled; the main channel's VM->viewer input), f2b (to the VM), b2f (to
 * the viewer, also every message we generate), qrx (QMP lines). */
#include "proxy/proxy_int.h"
#include "proxy/spice.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "common/buf.h"
#include "common/log.h"
#include "proxy/backend.h"
#include "proxy/qmp.h"
#include "proxy/spice_link.h"
#include "proxy/spice_main.h"
#include "proxy/tside.h"

#define SC_MAGIC        0x76677331u      /* "vgs1" */
#define RX_CAP          (64 * 1024)
#define BRX_CAP         (64 * 1024)
#define F2B_CAP         (64 * 1024)
#define B2F_CAP         (256 * 1024)
#define QRX_CAP         (QMP_LINE_MAX + 1)
#define CLOSE_LINGER    5.0
/* A later channel of a session is accepted without a helper call when it
 * presents the session's user and password within this many seconds of the
 * session's last login (sliding: every accepted channel renews it). */
#define LOGIN_WINDOW    30.0
#define TICKET_BYTES    24               /* 48 hex characters, SPICE allows 60 */

enum sc_state {
    SS_TLS_HANDSHAKE,
    SS_READ_LINK,
    SS_BACKEND_CONNECT,
    SS_BACKEND_LINK,
    SS_READ_AUTH_MECH,
    SS_SASL_MECHNAME,
    SS_SASL_START,
    SS_SASL_STEP,
    SS_AUTH_WAIT,
    SS_FAIL_DELAY,
    SS_QMP,
    SS_BACKEND_AUTH,
    SS_RELAY,
    SS_CLOSING,
};

static const char *const state_name[] = {
    [SS_TLS_HANDSHAKE] = "tls-handshake", [SS_READ_LINK] = "link",
    [SS_BACKEND_CONNECT] = "backend-connect", [SS_BACKEND_LINK] = "backend-link",
    [SS_READ_AUTH_MECH] = "auth-mechanism", [SS_SASL_MECHNAME] = "sasl-mechanism",
    [SS_SASL_START] = "sasl-start", [SS_SASL_STEP] = "sasl-step", [SS_AUTH_WAIT] = "auth-wait",
    [SS_FAIL_DELAY] = "fail-delay", [SS_QMP] = "qmp-ticket", [SS_BACKEND_AUTH] = "backend-auth",
    [SS_RELAY] = "relay", [SS_CLOSING] = "closing",
};

enum qmp_step { Q_GREETING, Q_CAPS, Q_SET, Q_EXPIRE };

struct sconn;

/* Per VM: the backend ticket (random, for this process's lifetime). */
struct spice_vmstate {
    struct spice_vmstate *next;
    const struct cfg_vm *vm;
    char ticket[2 * TICKET_BYTES + 1];
};

/* A SPICE session: the main channel's login, for the channels that follow. */
struct spice_session {
    struct spice_session *next;
    const struct cfg_vm *vm;
    uint32_t id;                       /* connection_id = INIT session_id */
    char user[SPICE_SASL_USER_MAX + 1];
    uint8_t secret[32];                /* SHA-256(salt, user, password) */
    ev_tstamp login_at;
    struct sconn *main;
};

struct sconn {
    unsigned magic;
    struct proxy *px;
    const struct cfg_vm *vm;
    struct sconn *next, *prev;
    uint64_t id;
    enum sc_state state;
    char rhost[INET6_ADDRSTRLEN];
    char user[SPICE_SASL_USER_MAX + 1];
    bool authed;                       /* user is known good (log it) */
    bool unauth;                       /* counted in px->n_unauth */
    bool logged_start;
    struct conn_end end;               /* set by sc_fail() */

    /* the link */
    uint32_t conn_id;
    uint8_t ch_type, ch_id;
    uint32_t client_common0;
    uint32_t be_common0;
    uint8_t be_pubkey[SPICE_PUBKEY_LEN];
    bool mini;
    uint8_t secret[32];
    struct spice_main *mainf;          /* main channel filter while relaying */
    bool is_main;

    /* front: the viewer */
    struct tside fs;
    ev_io fw;
    int fw_mask;
    bool shutdown_queued;              /* CLOSING: close_notify queued */
    bool close_sent;                   /* CLOSING: close_notify + FIN sent, draining */
    struct buf rx, b2f;

    /* back: the VM */
    int bfd;
    ev_io bw;
    int bw_mask;
    bool back_rd_ready;                /* the VM's fd signalled, not yet drained */
    struct buf brx, f2b;

    /* QMP, while setting the ticket */
    int qfd;
    ev_io qw;
    int qw_mask;
    bool q_connecting;
    enum qmp_step qstep;
    struct buf qrx;

    ev_timer login_timer;
    ev_timer delay_timer;
};

static struct {
    struct sconn *conns;
    unsigned n;
    struct spice_session *sessions;
    struct spice_vmstate *vms;
    uint8_t salt[32];
    bool salted;
} g;

static void sc_drive(struct sconn *c);
static void sc_update_io(struct sconn *c);
static void sc_destroy(struct sconn *c);

unsigned spice_conn_count(void) { return g.n; }

unsigned spice_unauth_from(const char *rhost)
{
    unsigned n = 0;
    for (struct sconn *o = g.conns; o; o = o->next)
        if (o->unauth && strcmp(o->rhost, rhost) == 0)
            n++;
    return n;
}

/* ---------------------------------------------------------------------- */
/* logging                                                                 */

static void sc_log(struct sconn *c, enum log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void sc_log(struct sconn *c, enum log_level lvl, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    proxy_conn_log(lvl, c->id, c->vm->name, c->authed ? c->user : NULL, c->rhost, fmt, ap);
    va_end(ap);
}

static void sc_fail(struct sconn *c, enum log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void sc_fail(struct sconn *c, enum log_level lvl, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    conn_end_set(&c->end, lvl, fmt, ap);
    va_end(ap);
}

static void set_state(struct sconn *c, enum sc_state s)
{
    log_debug("conn=%llu spice state %s -> %s", (unsigned long long)c->id, state_name[c->state],
              state_name[s]);
    c->state = s;
}

static void unauth_done(struct sconn *c)
{
    if (c->unauth) {
        c->unauth = false;
        c->px->n_unauth--;
    }
}

static const char *chan_str(struct sconn *c, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s:%u", spice_channel_name(c->ch_type), c->ch_id);
    return out;
}

static void random_hex(char *out, size_t nbytes)
{
    uint8_t r[64];
    if (nbytes > sizeof r || RAND_bytes(r, (int)nbytes) != 1)
        log_fatal("cannot get random bytes for a SPICE ticket");
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < nbytes; i++) {
        out[2 * i] = hex[r[i] >> 4];
        out[2 * i + 1] = hex[r[i] & 15];
    }
    out[2 * nbytes] = '\0';
    explicit_bzero(r, sizeof r);
}

static struct spice_vmstate *vmstate(const struct cfg_vm *vm)
{
    for (struct spice_vmstate *s = g.vms; s; s = s->next)
        if (s->vm == vm)
            return s;
    struct spice_vmstate *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->vm = vm;
    random_hex(s->ticket, TICKET_BYTES);
    s->next = g.vms;
    g.vms = s;
    return s;
}

static struct spice_session *session_find(const struct cfg_vm *vm, uint32_t id)
{
    for (struct spice_session *s = g.sessions; s; s = s->next)
        if (s->vm == vm && s->id == id)
            return s;
    return NULL;
}

static void session_remove(struct spice_session *s)
{
    for (struct spice_session **pp = &g.sessions; *pp; pp = &(*pp)->next) {
        if (*pp == s) {
            *pp = s->next;
            explicit_bzero(s, sizeof *s);
            free(s);
            return;
        }
    }
}

static void secret_hash(const char *user, const char *pass, uint8_t out[32])
{
    if (!g.salted) {
        if (RAND_bytes(g.salt, sizeof g.salt) != 1)
            log_fatal("cannot get random bytes");
        g.salted = true;
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned l = 0;
    if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(md, g.salt, sizeof g.salt) != 1 ||
        EVP_DigestUpdate(md, user, strlen(user) + 1) != 1 ||
        EVP_DigestUpdate(md, pass, strlen(pass)) != 1 || EVP_DigestFinal_ex(md, out, &l) != 1)
        RAND_bytes(out, 32);     /* never matches anything */
    EVP_MD_CTX_free(md);
}

/* ---------------------------------------------------------------------- */
/* front (viewer) I/O                                                      */

static void front_queue(struct sconn *c, const void *p, size_t n)
{
    if (buf_put(&c->b2f, p, n) != 0)
        sc_fail(c, LOG_LVL_ERR, "internal: viewer buffer full");
}

static ssize_t front_read(struct sconn *c, struct buf *dst, size_t max)
{
    if (!c->fs.ssl)
        return 0;
    char why[160];
    ssize_t n = tside_read(&c->fs, dst, max, why, sizeof why);
    if (n >= 0)
        return n;
    if (c->fs.eof)
        sc_fail(c, LOG_LVL_INFO, "viewer closed the connection in state %s",
                state_name[c->state]);
    else
        sc_fail(c, LOG_LVL_INFO, "TLS error from viewer: %s", why);
    return -1;
}

static int front_flush(struct sconn *c)
{
    char why[160];
    while (!buf_empty(&c->b2f) && c->fs.ssl) {
        ssize_t n = tside_write(&c->fs, buf_head(&c->b2f), buf_len(&c->b2f), why, sizeof why);
        if (n < 0) {
            sc_fail(c, LOG_LVL_INFO, "TLS write to viewer failed: %s", why);
            return -1;
        }
        if (n == 0)
            return 0;
        buf_consume(&c->b2f, (size_t)n);
    }
    buf_trim(&c->b2f);
    if (tside_flush(&c->fs, why, sizeof why) < 0) {
        sc_fail(c, LOG_LVL_INFO, "TLS write to viewer failed: %s", why);
        return -1;
    }
    return 0;
}

static void start_closing(struct sconn *c)
{
    set_state(c, SS_CLOSING);
    ev_timer_stop(c->px->loop, &c->delay_timer);
    ev_timer_set(&c->delay_timer, CLOSE_LINGER, 0);
    ev_timer_start(c->px->loop, &c->delay_timer);
}

/* Refuse in the link reply (before any auth exchange) and close. */
static void refuse_link(struct sconn *c, uint32_t err)
{
    uint8_t msg[SPICE_LINK_HDR_LEN + SPICE_LINK_REPLY_LEN];
    size_t n = spice_build_error(msg, sizeof msg, err);
    front_queue(c, msg, n);
    start_closing(c);
}

/* SASL answer to the viewer's start/step: no server data, complete, then
 * the SASL result; on success also the link result. */
static void sasl_answer(struct sconn *c, uint32_t sasl_result, uint32_t link_result)
{
    uint8_t msg[13];
    spice_put_u32(msg, 0);
    msg[4] = 1;
    spice_put_u32(msg + 5, sasl_result);
    spice_put_u32(msg + 9, link_result);
    front_queue(c, msg, sasl_result == 0 ? 13 : 9);
}

static void refuse_sasl(struct sconn *c, uint32_t err)
{
    sasl_answer(c, err, 0);
    start_closing(c);
}

/* The VM accepted the viewer's SASL login, but not the link. */
static void refuse_after_sasl(struct sconn *c, uint32_t link_err)
{
    sasl_answer(c, 0, link_err);
    start_closing(c);
}

/* ---------------------------------------------------------------------- */
/* back (VM) I/O                                                           */

static void vm_unavailable(struct sconn *c, const char *detail);

static int back_flush(struct sconn *c)
{
    while (!buf_empty(&c->f2b)) {
        ssize_t n = send(c->bfd, buf_head(&c->f2b), buf_len(&c->f2b), MSG_NOSIGNAL);
        if (n > 0) {
            buf_consume(&c->f2b, (size_t)n);
            continue;
        }
        if (n == -1 && (errno == EAGAIN || errno == EINTR))
            return 0;
        if (c->state == SS_RELAY) {
            sc_fail(c, LOG_LVL_INFO, "VM closed the console (%s)",
                    n == -1 ? strerror(errno) : "write returned 0");
        } else {
            char why[160];
            snprintf(why, sizeof why, "write: %s", strerror(errno));
            vm_unavailable(c, why);
        }
        return -1;
    }
    buf_trim(&c->f2b);
    return 0;
}

/* ---------------------------------------------------------------------- */
/* the link, viewer side                                                   */

static void backend_start(struct sconn *c);
static void after_login(struct sconn *c);
static void auth_done(void *ctx, const struct authp_login_resp *resp);

static void start_tls(struct sconn *c)
{
    if (tside_start_tls(&c->fs, c->px->ssl_ctx) != 0) {
        sc_fail(c, LOG_LVL_ERR, "cannot create TLS session");
        return;
    }
    set_state(c, SS_TLS_HANDSHAKE);
}

static void tls_handshake(struct sconn *c)
{
    char why[160];
    int r = tside_handshake(&c->fs, why, sizeof why);
    if (r < 0) {
        sc_fail(c, LOG_LVL_INFO, "TLS handshake failed: %s", why);
        return;
    }
    if (r == 1) {
        sc_log(c, LOG_LVL_DEBUG, "TLS %s %s", SSL_get_version(c->fs.ssl),
               SSL_get_cipher_name(c->fs.ssl));
        set_state(c, SS_READ_LINK);
    }
}

static void handle_link(struct sconn *c, const struct spice_link_mess *m)
{
    char ch[32];
    c->conn_id = m->connection_id;
    c->ch_type = m->channel_type;
    c->ch_id = m->channel_id;
    c->client_common0 = m->common0;
    c->is_main = m->channel_type == SPICE_CH_MAIN;
    chan_str(c, ch, sizeof ch);
    if (!(m->common0 & SPICE_CAP_AUTH_SELECTION) || !(m->common0 & SPICE_CAP_AUTH_SASL)) {
        sc_log(c, LOG_LVL_INFO, "refused %s channel: the viewer cannot do SASL "
               "(user name + password), the only login vmgate offers", ch);
        refuse_link(c, SPICE_LINK_ERR_PERMISSION_DENIED);
        return;
    }
    if (c->is_main) {
        if (m->connection_id != 0) {
            sc_log(c, LOG_LVL_INFO, "refused main channel with connection id 0x%08x "
                   "(migration is not supported)", m->connection_id);
            refuse_link(c, SPICE_LINK_ERR_BAD_CONNECTION_ID);
            return;
        }
        if (!(m->common0 & SPICE_CAP_MINI_HEADER)) {
            sc_log(c, LOG_LVL_INFO, "refused main channel: the viewer does not support "
                   "mini headers");
            refuse_link(c, SPICE_LINK_ERR_VERSION_MISMATCH);
            return;
        }
    } else if (!session_find(c->vm, m->connection_id)) {
        sc_log(c, LOG_LVL_INFO, "refused %s channel for unknown session 0x%08x", ch,
               m->connection_id);
        refuse_link(c, SPICE_LINK_ERR_BAD_CONNECTION_ID);
        return;
    }
    /* Our link message for the VM goes out once connected. */
    uint8_t msg[SPICE_LINK_HDR_LEN + SPICE_LINK_MESS_LEN + 4 + 4 * SPICE_CAPS_MAX];
    size_t l = spice_build_link(msg, sizeof msg, m,
                                SPICE_CAP_AUTH_SELECTION |
                                (m->common0 & SPICE_CAP_MINI_HEADER));
    if (l == 0 || buf_put(&c->f2b, msg, l) != 0) {
        sc_fail(c, LOG_LVL_ERR, "internal: cannot build the backend link message");
        return;
    }
    sc_log(c, LOG_LVL_DEBUG, "link: %s channel, connection id 0x%08x, caps 0x%x", ch,
           m->connection_id, m->common0);
    backend_start(c);
}

static void handle_plain(struct sconn *c, const uint8_t *data, uint32_t len)
{
    char pass[SPICE_SASL_PASS_MAX + 1];
    char why[200];
    if (spice_sasl_plain(data, len, c->user, sizeof c->user, pass, sizeof pass, why,
                         sizeof why) != 0) {
        c->user[0] = '\0';
        sc_log(c, LOG_LVL_INFO, "bad SASL PLAIN message: %s", why);
        refuse_sasl(c, SPICE_LINK_ERR_PERMISSION_DENIED);
        return;
    }
    secret_hash(c->user, pass, c->secret);
    char user[SPICE_SASL_USER_MAX + 1], ch[32];
    log_safe(user, sizeof user, c->user, sizeof c->user);
    chan_str(c, ch, sizeof ch);
    if (!c->is_main) {
        struct spice_session *s = session_find(c->vm, c->conn_id);
        if (!s) {
            explicit_bzero(pass, sizeof pass);
            sc_log(c, LOG_LVL_INFO, "refused %s channel: session 0x%08x ended", ch, c->conn_id);
            refuse_sasl(c, SPICE_LINK_ERR_BAD_CONNECTION_ID);
            return;
        }
        if (strcmp(s->user, c->user) != 0) {
            explicit_bzero(pass, sizeof pass);
            char su[SPICE_SASL_USER_MAX + 1];
            log_safe(su, sizeof su, s->user, sizeof s->user);
            sc_log(c, LOG_LVL_INFO, "login failed for user \"%s\": %s channel for session "
                   "0x%08x of user \"%s\"", user, ch, c->conn_id, su);
            set_state(c, SS_FAIL_DELAY);
            double d = (double)c->px->cfg->fail_delay_ms / 1000.0;
            ev_timer_set(&c->delay_timer, d > 0 ? d : 0.0001, 0);
            ev_timer_start(c->px->loop, &c->delay_timer);
            return;
        }
        if (ev_now(c->px->loop) - s->login_at <= LOGIN_WINDOW &&
            CRYPTO_memcmp(s->secret, c->secret, sizeof c->secret) == 0) {
            explicit_bzero(pass, sizeof pass);
            s->login_at = ev_now(c->px->loop);
            c->authed = true;
            sc_log(c, LOG_LVL_INFO, "%s channel joined session 0x%08x (login reused, "
                   "no new check)", ch, c->conn_id);
            after_login(c);
            return;
        }
    }
    /* A real check by the auth helper. */
    struct authp_login_req req;
    memset(&req, 0, sizeof req);
    snprintf(req.vm, sizeof req.vm, "%s", c->vm->name);
    snprintf(req.user, sizeof req.user, "%s", c->user);
    memcpy(req.password, pass, strlen(pass) + 1);
    snprintf(req.rhost, sizeof req.rhost, "%s", c->rhost);
    explicit_bzero(pass, sizeof pass);
    set_state(c, SS_AUTH_WAIT);
    if (auth_client_submit(c->px->auth, &req, c->fs.fd, auth_done, c) != 0)
        sc_fail(c, LOG_LVL_ERR, "could not submit login request");
    explicit_bzero(&req, sizeof req);
}

static void auth_done(void *ctx, const struct authp_login_resp *resp)
{
    struct sconn *c = ctx;
    if (c->magic != SC_MAGIC || c->state != SS_AUTH_WAIT)
        return;
    char user[SPICE_SASL_USER_MAX + 1];
    log_safe(user, sizeof user, c->user, sizeof c->user);
    if (resp->result == AUTHP_OK) {
        c->authed = true;
        char ch[32];
        sc_log(c, LOG_LVL_INFO, "user \"%s\" authenticated (%s channel)", user,
               chan_str(c, ch, sizeof ch));
        if (!c->is_main) {
            struct spice_session *s = session_find(c->vm, c->conn_id);
            if (s && strcmp(s->user, c->user) == 0) {
                memcpy(s->secret, c->secret, sizeof s->secret);
                s->login_at = ev_now(c->px->loop);
            }
        }
        after_login(c);
    } else {
        char det[AUTHP_DETAIL_MAX + 1];
        log_safe(det, sizeof det, resp->detail, sizeof resp->detail);
        sc_log(c, resp->result == AUTHP_ERROR ? LOG_LVL_WARN : LOG_LVL_INFO,
               "login failed for user \"%s\": %s%s%s%s", user, proxy_login_reason(resp->result),
               det[0] ? " (" : "", det, det[0] ? ")" : "");
        set_state(c, SS_FAIL_DELAY);
        ev_timer_set(&c->delay_timer, proxy_fail_delay_from(c->px, resp->submitted), 0);
        ev_timer_start(c->px->loop, &c->delay_timer);
    }
    if (!c->end.dead && c->state != SS_AUTH_WAIT && c->state != SS_FAIL_DELAY)
        sc_drive(c);
    if (c->end.dead)
        sc_destroy(c);
    else
        sc_update_io(c);
}

/* Advance the viewer side by one step if its bytes are there. */
static bool front_step(struct sconn *c)
{
    char why[200] = "";
    int r;
    if (c->state == SS_TLS_HANDSHAKE) {
        tls_handshake(c);
        return c->state != SS_TLS_HANDSHAKE;
    }
    ssize_t n = front_read(c, &c->rx, RX_CAP);
    if (n < 0)
        return false;
    const uint8_t *p = buf_head(&c->rx);
    size_t len = buf_len(&c->rx);
    switch (c->state) {
    case SS_READ_LINK: {
        struct spice_link_mess m;
        uint32_t err = SPICE_LINK_ERR_INVALID_DATA;
        r = spice_parse_link(p, len, &m, &err, why, sizeof why);
        if (r == SPL_NEED)
            return n > 0;
        if (r < 0) {
            sc_log(c, LOG_LVL_INFO, "bad SPICE link: %s", why);
            buf_consume(&c->rx, len);
            refuse_link(c, err);
            return true;
        }
        handle_link(c, &m);
        buf_consume(&c->rx, (size_t)r);
        return true;
    }
    case SS_READ_AUTH_MECH: {
        uint32_t mech;
        if ((r = spice_parse_u32(p, len, &mech)) == SPL_NEED)
            return n > 0;
        buf_consume(&c->rx, 4);
        if (mech != SPICE_AUTH_SASL) {
            sc_log(c, LOG_LVL_INFO, "viewer chose auth mechanism %u; vmgate offers only SASL "
                   "(user name + password)", mech);
            uint8_t res[4];
            spice_put_u32(res, SPICE_LINK_ERR_PERMISSION_DENIED);
            front_queue(c, res, 4);
            start_closing(c);
            return true;
        }
        static const char mechlist[] = "PLAIN";
        uint8_t msg[4 + sizeof mechlist];
        spice_put_u32(msg, (uint32_t)strlen(mechlist));
        memcpy(msg + 4, mechlist, strlen(mechlist));
        front_queue(c, msg, 4 + strlen(mechlist));
        set_state(c, SS_SASL_MECHNAME);
        return true;
    }
    case SS_SASL_MECHNAME: {
        char mech[SPICE_SASL_MECH_MAX + 1];
        r = spice_parse_sasl_mech(p, len, mech, why, sizeof why);
        if (r == SPL_NEED)
            return n > 0;
        if (r < 0 || strcmp(mech, "PLAIN") != 0) {
            if (r >= 0)
                snprintf(why, sizeof why, "SASL mechanism \"%s\", only PLAIN is offered", mech);
            sc_log(c, LOG_LVL_INFO, "bad SASL exchange: %s", why);
            buf_consume(&c->rx, len);
            refuse_sasl(c, SPICE_LINK_ERR_PERMISSION_DENIED);
            return true;
        }
        buf_consume(&c->rx, (size_t)r);
        set_state(c, SS_SASL_START);
        return true;
    }
    case SS_SASL_START:
    case SS_SASL_STEP: {
        const uint8_t *data;
        uint32_t dl;
        r = spice_parse_sasl_data(p, len, SPICE_SASL_DATA_MAX, &data, &dl, why, sizeof why);
        if (r == SPL_NEED)
            return n > 0;
        if (r < 0) {
            sc_log(c, LOG_LVL_INFO, "bad SASL exchange: %s", why);
            buf_consume(&c->rx, len);
            refuse_sasl(c, SPICE_LINK_ERR_PERMISSION_DENIED);
            return true;
        }
        if (dl == 0) {
            if (c->state == SS_SASL_STEP) {
                sc_log(c, LOG_LVL_INFO, "bad SASL exchange: empty PLAIN response");
                buf_consume(&c->rx, (size_t)r);
                refuse_sasl(c, SPICE_LINK_ERR_PERMISSION_DENIED);
                return true;
            }
            /* no initial response: an empty challenge, not complete */
            uint8_t msg[5] = { 0, 0, 0, 0, 0 };
            front_queue(c, msg, sizeof msg);
            buf_consume(&c->rx, (size_t)r);
            set_state(c, SS_SASL_STEP);
            return true;
        }
        handle_plain(c, data, dl);
        explicit_bzero((uint8_t *)buf_head(&c->rx), (size_t)r);
        buf_consume(&c->rx, (size_t)r);
        return true;
    }
    default:
        return false;
    }
}

/* ---------------------------------------------------------------------- */
/* the backend                                                             */

static void vm_unavailable(struct sconn *c, const char *detail)
{
    sc_log(c, LOG_LVL_WARN, "vm %s: SPICE console not available (%s)", c->vm->name, detail);
    if (c->bfd >= 0) {
        close(c->bfd);
        c->bfd = -1;
    }
    buf_free(&c->f2b);
    if (c->state == SS_BACKEND_AUTH || c->state == SS_QMP)
        refuse_after_sasl(c, SPICE_LINK_ERR_CHANNEL_NOT_AVAILABLE);
    else
        refuse_link(c, SPICE_LINK_ERR_CHANNEL_NOT_AVAILABLE);
}

static void backend_start(struct sconn *c)
{
    const struct cfg_backend *be = &c->vm->spice;
    char why[256];
    int r, fd = -1;
    set_state(c, SS_BACKEND_CONNECT);
    r = backend_connect(be, &fd, why, sizeof why);   /* config forbids spice = qmp: */
    if (r < 0) {
        vm_unavailable(c, why);
        return;
    }
    c->bfd = fd;
    c->bw_mask = 0;
    if (r == 0)
        set_state(c, SS_BACKEND_LINK);
}

/* Parse the VM's link reply in brx and answer the viewer. */
static void backend_link_step(struct sconn *c)
{
    char why[200] = "", ch[32];
    struct spice_link_reply rep;
    int r = spice_parse_reply(buf_head(&c->brx), buf_len(&c->brx), &rep, why, sizeof why);
    if (r == SPL_NEED)
        return;
    if (r < 0) {
        vm_unavailable(c, why);
        return;
    }
    chan_str(c, ch, sizeof ch);
    if (rep.error != SPICE_LINK_OK) {
        sc_log(c, LOG_LVL_INFO, "the VM refused the %s channel: %s (%u)", ch,
               spice_link_err_name(rep.error), rep.error);
        refuse_link(c, rep.error);
        return;
    }
    c->be_common0 = rep.common0;
    if ((rep.common0 & SPICE_CAP_AUTH_SELECTION) && !(rep.common0 & SPICE_CAP_AUTH_SPICE)) {
        vm_unavailable(c, "the VM's SPICE server wants SASL itself; run QEMU without "
                          "sasl=on (vmgate authenticates with a ticket)");
        return;
    }
    memcpy(c->be_pubkey, rep.pub_key, sizeof c->be_pubkey);
    c->mini = (c->client_common0 & SPICE_CAP_MINI_HEADER) && (rep.common0 & SPICE_CAP_MINI_HEADER);
    if (c->is_main && !c->mini) {
        sc_log(c, LOG_LVL_WARN, "vm %s: SPICE server without mini headers is not supported",
               c->vm->name);
        refuse_link(c, SPICE_LINK_ERR_VERSION_MISMATCH);
        return;
    }
    uint8_t msg[SPICE_LINK_HDR_LEN + SPICE_LINK_REPLY_LEN + 4 + 4 * SPICE_CAPS_MAX];
    size_t l = spice_build_reply(msg, sizeof msg,
                                 SPICE_CAP_AUTH_SELECTION | SPICE_CAP_AUTH_SASL |
                                 (c->mini ? SPICE_CAP_MINI_HEADER : 0),
                                 rep.chan_caps, rep.n_channel);
    buf_consume(&c->brx, (size_t)r);
    if (!buf_empty(&c->brx)) {
        vm_unavailable(c, "the VM sent data after its link reply");
        return;
    }
    if (l == 0) {
        sc_fail(c, LOG_LVL_ERR, "internal: cannot build the link reply");
        return;
    }
    front_queue(c, msg, l);
    set_state(c, SS_READ_AUTH_MECH);
}

/* The login is good (helper or session): authenticate to the VM. */
static void backend_auth(struct sconn *c)
{
    char why[200];
    uint8_t msg[4 + SPICE_TICKET_LEN];
    size_t off = 0;
    const char *ticket = "";
    if (c->vm->qmp[0]) {
        struct spice_vmstate *vs = vmstate(c->vm);
        if (!vs) {
            sc_fail(c, LOG_LVL_ERR, "out of memory");
            return;
        }
        ticket = vs->ticket;
    }
    if (c->be_common0 & SPICE_CAP_AUTH_SELECTION) {
        spice_put_u32(msg, SPICE_AUTH_SPICE);
        off = 4;
    }
    if (spice_encrypt_ticket(c->be_pubkey, ticket, msg + off, why, sizeof why) != 0) {
        set_state(c, SS_BACKEND_AUTH);
        vm_unavailable(c, why);
        return;
    }
    buf_put(&c->f2b, msg, off + SPICE_TICKET_LEN);
    explicit_bzero(msg, sizeof msg);
    set_state(c, SS_BACKEND_AUTH);
}

static void qmp_start(struct sconn *c);

static void after_login(struct sconn *c)
{
    if (c->is_main && c->vm->qmp[0])
        qmp_start(c);
    else
        backend_auth(c);
}

static void main_on_init(void *ctx, uint32_t session_id);
static void main_on_note(void *ctx, const char *msg);
static void main_on_clip(void *ctx, const struct vda_event *ev);

static void relay_start(struct sconn *c)
{
    char be[300], ch[32];
    ev_timer_stop(c->px->loop, &c->login_timer);
    unauth_done(c);
    set_state(c, SS_RELAY);
    c->fs.rd_ready = c->back_rd_ready = true;
    cfg_backend_str(&c->vm->spice, be, sizeof be);
    chan_str(c, ch, sizeof ch);
    if (c->is_main) {
        c->mainf = calloc(1, sizeof *c->mainf);
        if (!c->mainf) {
            sc_fail(c, LOG_LVL_ERR, "out of memory");
            return;
        }
        enum cfg_clip pol = c->vm->clipboard;
        spice_main_init(c->mainf, pol == CFG_CLIP_BOTH || pol == CFG_CLIP_TO_VM,
                        pol == CFG_CLIP_BOTH || pol == CFG_CLIP_FROM_VM, c->vm->clipboard_max,
                        cfg_clip_name(pol), main_on_clip, main_on_init, main_on_note, c);
        sc_log(c, LOG_LVL_INFO, "session started (spice, backend %s)", be);
        c->logged_start = true;
    } else {
        sc_log(c, LOG_LVL_INFO, "%s channel started (session 0x%08x)", ch, c->conn_id);
        /* pipelined bytes go straight through */
        if (!buf_empty(&c->rx)) {
            buf_put(&c->f2b, buf_head(&c->rx), buf_len(&c->rx));
            buf_consume(&c->rx, buf_len(&c->rx));
        }
        if (!buf_empty(&c->brx)) {
            buf_put(&c->b2f, buf_head(&c->brx), buf_len(&c->brx));
            buf_consume(&c->brx, buf_len(&c->brx));
        }
        buf_free(&c->rx);
        buf_free(&c->brx);
    }
}

static void backend_auth_step(struct sconn *c)
{
    uint32_t res;
    if (spice_parse_u32(buf_head(&c->brx), buf_len(&c->brx), &res) == SPL_NEED)
        return;
    buf_consume(&c->brx, 4);
    char ch[32];
    chan_str(c, ch, sizeof ch);
    if (res != SPICE_LINK_OK) {
        if (res == SPICE_LINK_ERR_PERMISSION_DENIED)
            sc_log(c, LOG_LVL_WARN, "vm %s refused vmgate's SPICE ticket for the %s channel%s",
                   c->vm->name, ch,
                   c->vm->qmp[0] ? " (was the ticket changed over QMP by someone else?)"
                                 : "; set qmp = for this VM (vmgate then sets the ticket), "
                                   "or run QEMU's SPICE with disable-ticketing=on on a "
                                   "private socket");
        else
            sc_log(c, LOG_LVL_INFO, "the VM refused the %s channel: %s (%u)", ch,
                   spice_link_err_name(res), res);
        refuse_after_sasl(c, res);
        return;
    }
    sasl_answer(c, 0, SPICE_LINK_OK);
    relay_start(c);
}

/* ---------------------------------------------------------------------- */
/* QMP: set the VM's SPICE ticket                                          */

static void qmp_close(struct sconn *c)
{
    if (ev_is_active(&c->qw))
        ev_io_stop(c->px->loop, &c->qw);
    c->qw_mask = 0;
    if (c->qfd >= 0)
        close(c->qfd);
    c->qfd = -1;
    buf_free(&c->qrx);
}

static void qmp_failed(struct sconn *c, const char *detail)
{
    qmp_close(c);
    char d[300];
    snprintf(d, sizeof d, "cannot set the SPICE ticket over QMP %s: %s", c->vm->qmp, detail);
    vm_unavailable(c, d);
}

static void qmp_send(struct sconn *c, const char *line)
{
    if (backend_send_with_fd(c->qfd, line, strlen(line), -1) != 0)
        qmp_failed(c, "write failed");
}

static void qmp_start(struct sconn *c)
{
    char why[256];
    int fd = -1;
    set_state(c, SS_QMP);
    int r = backend_connect_unix(c->vm->qmp, &fd, why, sizeof why);
    if (r < 0) {
        qmp_failed(c, why);
        return;
    }
    c->qfd = fd;
    c->q_connecting = r == 1;
    c->qstep = Q_GREETING;
    buf_init(&c->qrx, QRX_CAP);
}

static void qmp_step(struct sconn *c)
{
    for (;;) {
        long ll = qmp_next_line((const char *)buf_head(&c->qrx), buf_len(&c->qrx));
        if (ll < 0) {
            qmp_failed(c, "QMP line too long");
            return;
        }
        if (ll == 0)
            return;
        char desc[200];
        enum qmp_kind k = qmp_classify((const char *)buf_head(&c->qrx), (size_t)ll, desc,
                                       sizeof desc);
        buf_consume(&c->qrx, (size_t)ll);
        if (k == QMP_EVENT)
            continue;
        if (k == QMP_ERROR) {
            qmp_failed(c, desc);
            return;
        }
        switch (c->qstep) {
        case Q_GREETING:
            if (k != QMP_GREETING) {
                qmp_failed(c, "no QMP greeting");
                return;
            }
            qmp_send(c, "{\"execute\":\"qmp_capabilities\"}\n");
            c->qstep = Q_CAPS;
            break;
        case Q_CAPS: {
            if (k != QMP_RETURN) {
                qmp_failed(c, "unexpected QMP answer");
                return;
            }
            struct spice_vmstate *vs = vmstate(c->vm);
            if (!vs) {
                qmp_failed(c, "out of memory");
                return;
            }
            char cmd[200];
            snprintf(cmd, sizeof cmd,
                     "{\"execute\":\"set_password\",\"arguments\":{\"protocol\":\"spice\","
                     "\"password\":\"%s\"}}\n", vs->ticket);
            qmp_send(c, cmd);
            explicit_bzero(cmd, sizeof cmd);
            c->qstep = Q_SET;
            break;
        }
        case Q_SET:
            if (k != QMP_RETURN) {
                qmp_failed(c, "unexpected QMP answer");
                return;
            }
            qmp_send(c, "{\"execute\":\"expire_password\",\"arguments\":{\"protocol\":"
                        "\"spice\",\"time\":\"never\"}}\n");
            c->qstep = Q_EXPIRE;
            break;
        case Q_EXPIRE:
            if (k != QMP_RETURN) {
                qmp_failed(c, "unexpected QMP answer");
                return;
            }
            sc_log(c, LOG_LVL_DEBUG, "SPICE ticket set over QMP %s", c->vm->qmp);
            qmp_close(c);
            backend_auth(c);
            return;
        }
        if (c->end.dead || c->state != SS_QMP)
            return;
    }
}

/* ---------------------------------------------------------------------- */
/* main channel filter callbacks                                           */

static void main_on_init(void *ctx, uint32_t session_id)
{
    struct sconn *c = ctx;
    struct spice_session *s = session_find(c->vm, session_id);
    if (s) {
        if (s->main && s->main != c)
            s->main->conn_id = 0;
    } else {
        s = calloc(1, sizeof *s);
        if (!s) {
            sc_fail(c, LOG_LVL_ERR, "out of memory");
            return;
        }
        s->next = g.sessions;
        g.sessions = s;
    }
    s->vm = c->vm;
    s->id = session_id;
    snprintf(s->user, sizeof s->user, "%s", c->user);
    memcpy(s->secret, c->secret, sizeof s->secret);
    s->login_at = ev_now(c->px->loop);
    s->main = c;
    c->conn_id = session_id;
    sc_log(c, LOG_LVL_DEBUG, "SPICE session 0x%08x", session_id);
}

static void main_on_note(void *ctx, const char *msg)
{
    sc_log(ctx, LOG_LVL_INFO, "%s", msg);
}

static void main_on_clip(void *ctx, const struct vda_event *ev)
{
    struct sconn *c = ctx;
    const char *dir = ev->dir == VDA_TO_VM ? "to-vm" : "from-vm";
    if (ev->kind == VDA_EV_OFFER_BLOCKED) {
        sc_log(c, LOG_LVL_INFO, "clipboard dir=%s offer result=dropped reason=\"%s\"", dir,
               ev->reason ? ev->reason : "");
        return;
    }
    char hex[65];
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", ev->sha256[i]);
    if (ev->allowed)
        sc_log(c, LOG_LVL_INFO, "clipboard dir=%s bytes=%llu type=%s sha256=%s result=allowed",
               dir, (unsigned long long)ev->bytes, vda_clip_type_name(ev->clip_type), hex);
    else
        sc_log(c, LOG_LVL_INFO, "clipboard dir=%s bytes=%llu type=%s sha256=%s result=dropped "
               "reason=\"%s\"", dir, (unsigned long long)ev->bytes,
               vda_clip_type_name(ev->clip_type), hex, ev->reason ? ev->reason : "");
}

/* ---------------------------------------------------------------------- */
/* relay                                                                   */

static void vm_gone(struct sconn *c)
{
    if (c->is_main) {
        c->logged_start = false;
        sc_log(c, LOG_LVL_INFO, "session ended: VM closed the console");
    }
    close(c->bfd);
    c->bfd = -1;
    buf_free(&c->f2b);
    start_closing(c);
    front_flush(c);
}

/* Flush one side's buffer; *moved says whether bytes left.  -1: failed. */
static int flush_noting(struct sconn *c, struct buf *b, int (*flush)(struct sconn *), bool *moved)
{
    if (buf_empty(b))
        return 0;
    size_t before = buf_len(b);
    if (flush(c) < 0)
        return -1;
    *moved |= buf_len(b) != before;
    return 0;
}

/* Whether to read the viewer now: it signalled, or OpenSSL holds bytes. */
static bool front_readable(const struct sconn *c, const struct buf *dst)
{
    return !c->fs.eof && buf_room(dst) > 0 && (c->fs.rd_ready || tside_has_pending(&c->fs));
}

/* One round of the main channel: both directions through the agent filter.
 * Returns 1 if anything moved, 0 if not, -1 when the session is over. */
static int relay_main_round(struct sconn *c)
{
    bool moved = false;
    /* viewer -> VM */
    if (front_readable(c, &c->rx)) {
        ssize_t n = front_read(c, &c->rx, RX_CAP);
        if (n < 0)
            return -1;
        moved |= n > 0;
    }
    long u = spice_main_feed(c->mainf, SMAIN_C2S, buf_empty(&c->rx) ? NULL : buf_head(&c->rx),
                             buf_len(&c->rx), &c->f2b);   /* also releases injections */
    if (u < 0) {
        sc_fail(c, LOG_LVL_INFO, "bad main channel message: %s", c->mainf->why);
        return -1;
    }
    buf_consume(&c->rx, (size_t)u);
    moved |= u > 0;
    if (flush_noting(c, &c->f2b, back_flush, &moved) < 0)
        return -1;
    /* VM -> viewer */
    if (buf_room(&c->brx) > 0 && c->back_rd_ready) {
        ssize_t n = backend_read(c->bfd, &c->brx, &c->back_rd_ready);
        if (n < 0) {
            vm_gone(c);
            return -1;
        }
        moved |= n > 0;
    }
    u = spice_main_feed(c->mainf, SMAIN_S2C, buf_empty(&c->brx) ? NULL : buf_head(&c->brx),
                        buf_len(&c->brx), &c->b2f);
    if (u < 0) {
        sc_fail(c, LOG_LVL_WARN, "bad main channel message: %s", c->mainf->why);
        return -1;
    }
    buf_consume(&c->brx, (size_t)u);
    moved |= u > 0;
    if (c->end.dead || flush_noting(c, &c->b2f, front_flush, &moved) < 0)
        return -1;
    buf_trim(&c->rx);
    buf_trim(&c->brx);
    return moved || (tside_has_pending(&c->fs) && buf_room(&c->rx) > 0);
}

/* One round of any other channel: bytes are spliced untouched. */
static int relay_splice_round(struct sconn *c)
{
    bool moved = false;
    while (front_readable(c, &c->f2b)) {
        ssize_t n = front_read(c, &c->f2b, F2B_CAP);
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        moved = true;
    }
    if (flush_noting(c, &c->f2b, back_flush, &moved) < 0)
        return -1;
    if (buf_room(&c->b2f) > 0 && c->back_rd_ready) {
        ssize_t n = backend_read(c->bfd, &c->b2f, &c->back_rd_ready);
        if (n < 0) {
            vm_gone(c);
            return -1;
        }
        moved |= n > 0;
    }
    if (flush_noting(c, &c->b2f, front_flush, &moved) < 0)
        return -1;
    return moved || (tside_has_pending(&c->fs) && buf_room(&c->f2b) > 0);
}

/* Relay until nothing more can move now.  Sides are read only when they
 * signalled (or OpenSSL holds data): a read that would only say EAGAIN is a
 * wasted syscall per event. */
static void relay_step(struct sconn *c)
{
    for (int rounds = 0; rounds < 16 && !c->end.dead && c->state == SS_RELAY; rounds++)
        if ((c->mainf ? relay_main_round(c) : relay_splice_round(c)) <= 0)
            return;
}

/* ---------------------------------------------------------------------- */
/* the state machine                                                       */

/* Lingering close: once the final message is out, send close_notify and a
 * FIN, then read and discard what the viewer still sends until it closes
 * (bounded by the linger timer).  Closing with unread input would send a
 * RST, which can destroy our final message in the viewer's receive buffer
 * (a viewer still writing an over-long SASL message, for example). */
static void close_step(struct sconn *c)
{
    if (!buf_empty(&c->b2f) || c->fs.write_wants_read)
        return;
    if (!c->close_sent) {
        if (c->fs.ssl && !c->shutdown_queued) {
            ERR_clear_error();
            SSL_shutdown(c->fs.ssl);
            c->shutdown_queued = true;
        }
        char why[160];
        if (tside_flush(&c->fs, why, sizeof why) < 0) {
            sc_fail(c, LOG_LVL_DEBUG, "closed after final message (%s)", why);
            return;
        }
        if (tside_pending(&c->fs))
            return;                         /* the close_notify is not out yet */
        shutdown(c->fs.fd, SHUT_WR);
        c->close_sent = true;
    }
    if (c->fs.eof || !c->fs.ssl) {
        sc_fail(c, LOG_LVL_DEBUG, "closed after final message");
        return;
    }
    for (int i = 0; i < 64; i++) {
        uint8_t junk[4096];
        ERR_clear_error();
        int n = SSL_read(c->fs.ssl, junk, sizeof junk);
        if (n > 0)
            continue;
        int err = SSL_get_error(c->fs.ssl, n);
        if (err == SSL_ERROR_WANT_READ)
            return;
        c->fs.eof = true;
        ERR_clear_error();
        sc_fail(c, LOG_LVL_DEBUG, "closed after final message");
        return;
    }
}

static void sc_drive(struct sconn *c)
{
    for (int guard = 0; guard < 64 && !c->end.dead; guard++) {
        if (front_flush(c) < 0)
            return;
        switch (c->state) {
        case SS_RELAY:
            relay_step(c);
            return;
        case SS_CLOSING:
            close_step(c);
            return;
        case SS_AUTH_WAIT:
        case SS_FAIL_DELAY:
            return;
        case SS_BACKEND_CONNECT:     /* back_cb sees the connect finish */
            return;
        case SS_BACKEND_LINK:
        case SS_BACKEND_AUTH: {
            if (back_flush(c) < 0)
                return;
            ssize_t n = backend_read(c->bfd, &c->brx, NULL);
            enum sc_state before = c->state;
            if (c->state == SS_BACKEND_LINK)
                backend_link_step(c);
            else
                backend_auth_step(c);
            if (c->state == before && n < 0) {
                vm_unavailable(c, c->state == SS_BACKEND_LINK
                                      ? "the VM closed the link without a reply (no such "
                                        "channel?)"
                                      : "the VM closed the link during authentication");
                continue;
            }
            if (c->state == before && n <= 0)
                return;
            continue;
        }
        case SS_QMP: {
            if (c->q_connecting)
                return;
            ssize_t n = backend_read(c->qfd, &c->qrx, NULL);
            if (n < 0) {
                qmp_failed(c, "QMP socket closed");
                continue;
            }
            qmp_step(c);
            if (c->state == SS_QMP && n == 0)
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

static void set_watch(struct sconn *c, ev_io *w, int fd, int *cur, int want)
{
    struct ev_loop *loop = c->px->loop;
    if (fd < 0)
        want = 0;
    if (want == *cur && (!want || ev_is_active(w)) && (!want || w->fd == fd))
        return;
    if (ev_is_active(w))
        ev_io_stop(loop, w);
    if (want) {
        ev_io_set(w, fd, want);
        ev_io_start(loop, w);
    }
    *cur = want;
}

static void sc_update_io(struct sconn *c)
{
    int fm = 0, bm = 0, qm = 0;
    switch (c->state) {
    case SS_TLS_HANDSHAKE: case SS_READ_LINK: case SS_READ_AUTH_MECH:
    case SS_SASL_MECHNAME: case SS_SASL_START: case SS_SASL_STEP:
        fm |= EV_READ;
        break;
    case SS_BACKEND_CONNECT:
        bm |= EV_WRITE;
        break;
    case SS_BACKEND_LINK:
    case SS_BACKEND_AUTH:
        bm |= EV_READ;
        if (!buf_empty(&c->f2b))
            bm |= EV_WRITE;
        break;
    case SS_QMP:
        qm = c->q_connecting ? EV_WRITE : EV_READ;
        break;
    case SS_RELAY:
        if (c->mainf) {
            if (!c->fs.eof && buf_room(&c->rx) > 0)
                fm |= EV_READ;
            if (buf_room(&c->brx) > 0)
                bm |= EV_READ;
        } else {
            if (!c->fs.eof && buf_room(&c->f2b) > 0)
                fm |= EV_READ;
            if (buf_room(&c->b2f) > 0)
                bm |= EV_READ;
        }
        if (!buf_empty(&c->f2b))
            bm |= EV_WRITE;
        break;
    case SS_CLOSING:
        if (c->close_sent)
            fm |= EV_READ;
        break;
    default:
        break;
    }
    if (!buf_empty(&c->b2f) || tside_pending(&c->fs))
        fm |= EV_WRITE;
    if (c->fs.read_wants_write)
        fm = (fm & ~EV_READ) | EV_WRITE;
    if (c->fs.write_wants_read)
        fm |= EV_READ;
    set_watch(c, &c->fw, c->fs.fd, &c->fw_mask, fm);
    set_watch(c, &c->bw, c->bfd, &c->bw_mask, bm);
    set_watch(c, &c->qw, c->qfd, &c->qw_mask, qm);
}

/* ---------------------------------------------------------------------- */
/* events                                                                  */

static void after_event(struct sconn *c)
{
    if (c->end.dead) {
        sc_destroy(c);
        return;
    }
    sc_update_io(c);
}

static void front_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct sconn *c = w->data;
    (void)loop;
    if (c->magic != SC_MAGIC)
        return;
    if (revents & EV_READ)
        c->fs.rd_ready = true;
    sc_drive(c);
    after_event(c);
}

static void back_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct sconn *c = w->data;
    (void)loop;
    if (c->magic != SC_MAGIC)
        return;
    if (revents & EV_READ)
        c->back_rd_ready = true;
    if (c->state == SS_BACKEND_CONNECT && (revents & EV_WRITE)) {
        char why[256];
        if (backend_connect_result(c->bfd, why, sizeof why) != 0)
            vm_unavailable(c, why);
        else
            set_state(c, SS_BACKEND_LINK);
    }
    sc_drive(c);
    after_event(c);
}

static void qmp_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct sconn *c = w->data;
    (void)loop;
    if (c->magic != SC_MAGIC)
        return;
    if (c->state == SS_QMP && c->q_connecting && (revents & EV_WRITE)) {
        char why[256];
        c->q_connecting = false;
        if (backend_connect_result(c->qfd, why, sizeof why) != 0)
            qmp_failed(c, why);
    }
    sc_drive(c);
    after_event(c);
}

static void login_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct sconn *c = w->data;
    (void)loop;
    (void)revents;
    sc_fail(c, LOG_LVL_INFO, "login timeout (%llus) in state %s",
            (unsigned long long)(c->px->cfg->login_timeout_ms / 1000), state_name[c->state]);
    after_event(c);
}

static void delay_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct sconn *c = w->data;
    (void)loop;
    (void)revents;
    if (c->state == SS_FAIL_DELAY) {
        refuse_sasl(c, SPICE_LINK_ERR_PERMISSION_DENIED);
        sc_drive(c);
    } else if (c->close_sent) {
        sc_fail(c, LOG_LVL_DEBUG, "closed after final message (viewer kept the connection)");
    } else {
        sc_fail(c, LOG_LVL_INFO, "viewer did not take the final message");
    }
    after_event(c);
}

/* ---------------------------------------------------------------------- */
/* lifecycle                                                               */

static void sc_destroy(struct sconn *c)
{
    struct proxy *px = c->px;
    if (c->logged_start)
        sc_log(c, LOG_LVL_INFO, "session ended: %s", c->end.why[0] ? c->end.why : "closed");
    else if (c->end.why[0])
        sc_log(c, c->state == SS_RELAY && !c->is_main ? LOG_LVL_DEBUG : c->end.level, "%s",
               c->end.why);
    if (c->is_main) {
        for (struct spice_session *s = g.sessions; s; s = s->next)
            if (s->main == c) {
                session_remove(s);
                break;
            }
    }
    ev_io_stop(px->loop, &c->fw);
    ev_io_stop(px->loop, &c->bw);
    ev_io_stop(px->loop, &c->qw);
    ev_timer_stop(px->loop, &c->login_timer);
    ev_timer_stop(px->loop, &c->delay_timer);
    if (px->auth)
        auth_client_cancel(px->auth, c);
    if (c->state == SS_CLOSING && !c->close_sent && !c->shutdown_queued)
        tside_shutdown(&c->fs);
    tside_close(&c->fs);
    if (c->bfd >= 0)
        close(c->bfd);
    if (c->qfd >= 0)
        close(c->qfd);
    if (c->mainf) {
        spice_main_free(c->mainf);
        free(c->mainf);
    }
    buf_free(&c->rx);
    buf_free(&c->brx);
    buf_free(&c->f2b);
    buf_free(&c->b2f);
    buf_free(&c->qrx);
    unauth_done(c);
    if (c->prev)
        c->prev->next = c->next;
    else
        g.conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    g.n--;
    explicit_bzero(c, sizeof *c);
    free(c);
}

void spice_accept(struct proxy *px, const struct cfg_vm *vm, int fd, const struct sockaddr *sa,
                  socklen_t salen)
{
    (void)salen;
    char rhost[INET6_ADDRSTRLEN];
    proxy_addr_str(sa, rhost, sizeof rhost);
    if (!proxy_admit(px, rhost, "SPICE ")) {
        close(fd);
        return;
    }
    struct sconn *c = calloc(1, sizeof *c);
    if (!c) {
        log_err("out of memory accepting a SPICE connection from %s", rhost);
        close(fd);
        return;
    }
    c->magic = SC_MAGIC;
    c->px = px;
    c->vm = vm;
    c->id = proxy_new_id(px);
    tside_init(&c->fs, fd);
    c->bfd = c->qfd = -1;
    snprintf(c->rhost, sizeof c->rhost, "%s", rhost);
    buf_init(&c->rx, RX_CAP);
    buf_init(&c->brx, BRX_CAP);
    buf_init(&c->f2b, F2B_CAP);
    buf_init(&c->b2f, B2F_CAP);
    buf_init(&c->qrx, QRX_CAP);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ev_io_init(&c->fw, front_cb, fd, EV_READ);
    c->fw.data = c;
    ev_io_init(&c->bw, back_cb, -1, EV_READ);
    c->bw.data = c;
    ev_io_init(&c->qw, qmp_cb, -1, EV_READ);
    c->qw.data = c;
    ev_timer_init(&c->login_timer, login_timeout_cb,
                  (double)px->cfg->login_timeout_ms / 1000.0, 0);
    c->login_timer.data = c;
    ev_timer_init(&c->delay_timer, delay_cb, 1, 0);
    c->delay_timer.data = c;
    c->next = g.conns;
    if (g.conns)
        g.conns->prev = c;
    g.conns = c;
    g.n++;
    c->unauth = true;
    px->n_unauth++;
    log_debug("conn=%llu vm=%s from=%s: accepted (spice)", (unsigned long long)c->id, vm->name,
              rhost);
    ev_timer_start(px->loop, &c->login_timer);
    start_tls(c);
    sc_drive(c);
    after_event(c);
}

void spice_close_all(struct proxy *px, const char *why)
{
    (void)px;
    while (g.conns) {
        struct sconn *c = g.conns;
        sc_fail(c, LOG_LVL_INFO, "%s", why);
        sc_destroy(c);
    }
    while (g.sessions)
        session_remove(g.sessions);
    while (g.vms) {
        struct spice_vmstate *s = g.vms;
        g.vms = s->next;
        explicit_bzero(s, sizeof *s);
        free(s);
    }
}
