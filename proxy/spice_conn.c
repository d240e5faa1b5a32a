/* proxy/spice_conn.c — one SPICE channel connection, from accept to close,
 * and the registry of SPICE sessions.
 *
 * The SPICE protocol plugged into the connection core (core.h): one step
 * function per link state, the refusals SPICE can carry (link error, SASL
 * result), the session registry (later channels join the main channel's
 * login), the backend ticket and the main channel's clipboard filter.
 * Reading, writing, watchers, timers, the login, QMP, the relay loop and
 * the lingering close are the core's.
 *
 * The link (docs/spice.md has the algorithm and the bytes):
 *   (core) TLS handshake (TLS from the first byte, as QEMU's tls-port)
 *   READ_LINK        the viewer's header + SpiceLinkMess, validated as QEMU
 *                    does; the channel type must be in the VM's
 *                    spice_channels; a non-main channel must name a live
 *                    session with fewer than SPICE_MAX_CHANNELS channels.
 *                    vmgate answers the link itself (SASL as the only auth,
 *                    the channel caps the VM announced last time, or
 *                    spice-server 0.15.1's): nothing reaches the VM before
 *                    a login (QEMU makes an RSA key for every link)
 *   READ_AUTH_MECH, SASL_MECHNAME, SASL_START, SASL_STEP    PLAIN: user and
 *                    password
 *   (core) auth     the auth helper checks password + ACL (skipped for a
 *                    later channel of a session whose login is fresh); a
 *                    failed login is answered after fail_delay
 *   (core) backend connect: unix: or tcp: to the VM's SPICE server
 *   BACKEND_LINK     our link message (the viewer's channel and caps, auth
 *                    selection, the viewer's mini-header bit); the VM's reply
 *                    gives its channel caps (which must include what we
 *                    promised the viewer) and an RSA key for the ticket
 *   (core) QMP       main channel: set the VM's SPICE ticket over QMP
 *   BACKEND_AUTH     our ticket, RSA-encrypted with the VM's key; the VM's
 *                    link result (or its refusal of the link) is passed on
 *                    to the viewer as the result after the SASL success
 *   (core) relay     main: through the main-channel filter (clipboard
 *                    policy); other channels: bytes spliced unchanged
 *
 * Buffers (the core's): rx (viewer bytes not yet handled; the main
 * channel's viewer->VM input), brx (VM bytes not yet handled; the main
 * channel's VM->viewer input), the streams f2b (to the VM) and b2f (to the
 * viewer, also every message we generate). */
#include "proxy/core.h"
#include "proxy/spice.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "proxy/clip.h"
#include "proxy/proxy.h"
#include "proxy/spice_link.h"
#include "proxy/spice_main.h"
#include "proxy/spice_reg.h"

#define RX_CAP          (64 * 1024)
#define BRX_CAP         (64 * 1024)
#define F2B_CAP         (64 * 1024)
#define B2F_CAP         (256 * 1024)
/* A later channel of a session is accepted without a helper call when it
 * presents the session's user and password within this many seconds of the
 * session's last login (sliding: every accepted channel renews it). */
#define LOGIN_WINDOW    30.0
/* Channels one session may have at once (main included, links still
 * logging in included): spice-gtk opens main, display and cursor per
 * monitor, inputs, playback, record and one per USB device or port. */
#define SPICE_MAX_CHANNELS 16
#define BE_LINK_MAX     (SPICE_LINK_HDR_LEN + SPICE_LINK_MESS_LEN + 4 + 4 * SPICE_CAPS_MAX)

enum sc_state {
    SS_READ_LINK = CS_PROTO,
    SS_READ_AUTH_MECH,
    SS_SASL_MECHNAME,
    SS_SASL_START,
    SS_SASL_STEP,
    SS_BACKEND_LINK,
    SS_BACKEND_AUTH,
    SS_LOCAL_MECH,          /* socket_dir/NAME.spice: the viewer's auth mechanism (SPICE) */
    SS_LOCAL_TICKET,        /* ... its RSA-encrypted ticket: read and ignored, the uid decides */
};

/* A SPICE channel's own state (c->p). */
struct sconn {
    uint32_t conn_id;
    uint8_t ch_type, ch_id;
    uint32_t client_common0;
    struct spice_chan_caps promised;   /* channel caps in our reply to the viewer */
    bool backend;                      /* logged in: the VM side has begun */
    size_t be_link_len;
    uint8_t be_link[BE_LINK_MAX];      /* our link message for the VM, sent after the login */
    uint32_t be_common0;
    uint8_t be_pubkey[SPICE_PUBKEY_LEN];
    bool mini;
    bool is_main;
    uint8_t secret[32];
    struct spice_main *mainf;          /* main channel filter while relaying */
    bool local;                        /* spice_local_proto: ticket auth, decided by the uid */
    enum authp_result result;          /* local: the helper's answer */
};

#define S(c) ((struct sconn *)(c)->p)

static const char *chan_str(struct conn *c, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s:%u", spice_channel_name(S(c)->ch_type), S(c)->ch_id);
    return out;
}

/* Channels of session id on c's VM other than c: live or still linking
 * (a refused one, closing, no longer counts). */
static unsigned session_channels(const struct conn *c, uint32_t id)
{
    unsigned n = 0;
    for (const struct conn *o = c->px->conns; o; o = o->next)
        if (o != c && (o->proto == &spice_proto || o->proto == &spice_local_proto) &&
            o->vm == c->vm && o->state != CS_CLOSING &&
            !o->end.dead && S(o)->conn_id == id)
            n++;
    return n;
}

/* ---------------------------------------------------------------------- */
/* refusals                                                                */

/* Refuse in the link reply (before any auth exchange) and close. */
static void refuse_link(struct conn *c, uint32_t err)
{
    uint8_t msg[SPICE_LINK_HDR_LEN + SPICE_LINK_REPLY_LEN];
    size_t n = spice_build_error(msg, sizeof msg, err);
    conn_front_queue(c, msg, n);
    conn_close_after(c);
}

/* SASL answer to the viewer's start/step: no server data, complete, then
 * the SASL result; on success also the link result. */
static void sasl_answer(struct conn *c, uint32_t sasl_result, uint32_t link_result)
{
    uint8_t msg[13];
    if (S(c)->local) {                 /* ticket auth: the link result is all there is */
        spice_put_u32(msg, sasl_result ? sasl_result : link_result);
        conn_front_queue(c, msg, 4);
        return;
    }
    spice_put_u32(msg, 0);
    msg[4] = 1;
    spice_put_u32(msg + 5, sasl_result);
    spice_put_u32(msg + 9, link_result);
    conn_front_queue(c, msg, sasl_result == 0 ? 13 : 9);
}

static void refuse_sasl(struct conn *c, uint32_t err)
{
    sasl_answer(c, err, 0);
    conn_close_after(c);
}

/* The VM accepted the viewer's SASL login, but not the link. */
static void refuse_after_sasl(struct conn *c, uint32_t link_err)
{
    sasl_answer(c, 0, link_err);
    conn_close_after(c);
}

/* The VM cannot be reached: only ever after the login, so the viewer gets
 * the SASL success and "channel not available" as the link result. */
static void vm_unavailable(struct conn *c, const char *detail, bool refused)
{
    (void)refused;
    conn_log(c, LOG_LVL_WARN, "vm %s: SPICE console not available (%s)", c->vm->name, detail);
    if (S(c)->backend)
        refuse_after_sasl(c, SPICE_LINK_ERR_CHANNEL_NOT_AVAILABLE);
    else
        refuse_link(c, SPICE_LINK_ERR_CHANNEL_NOT_AVAILABLE);
}

/* ---------------------------------------------------------------------- */
/* the link, viewer side: one function per state                           */

/* Read what the viewer sent into rx.  -1: over; else the count. */
static ssize_t front_in(struct conn *c) { return conn_front_read(c, &c->rx, RX_CAP); }

/* The RSA public key (DER SubjectPublicKeyInfo, 162 bytes) put in the link
 * reply on socket_dir/NAME.spice: made once per process.  The viewer
 * encrypts its ticket with it; vmgate never decrypts that (the uid decides),
 * so the private half is thrown away.  NULL on failure. */
static const uint8_t *local_pubkey(void)
{
    static uint8_t der[SPICE_PUBKEY_LEN];
    static bool have;
    if (have)
        return der;
    EVP_PKEY *k = EVP_RSA_gen(1024);
    if (!k)
        return NULL;
    int n = i2d_PUBKEY(k, NULL);
    uint8_t *p = der;
    if (n == SPICE_PUBKEY_LEN && i2d_PUBKEY(k, &p) == n)
        have = true;
    EVP_PKEY_free(k);
    return have ? der : NULL;
}

static void handle_link(struct conn *c, const struct spice_link_mess *m)
{
    struct sconn *s = S(c);
    char ch[32];
    s->conn_id = m->connection_id;
    s->ch_type = m->channel_type;
    s->ch_id = m->channel_id;
    s->client_common0 = m->common0;
    s->is_main = m->channel_type == SPICE_CH_MAIN;
    chan_str(c, ch, sizeof ch);
    if (m->channel_type >= 32 || !(c->vm->spice_channels & (UINT32_C(1) << m->channel_type))) {
        conn_log(c, LOG_LVL_INFO, "refused %s channel: channel type %s is not in "
                 "spice_channels", ch, spice_channel_name(m->channel_type));
        refuse_link(c, SPICE_LINK_ERR_CHANNEL_NOT_AVAILABLE);
        return;
    }
    if (!s->local &&
        (!(m->common0 & SPICE_CAP_AUTH_SELECTION) || !(m->common0 & SPICE_CAP_AUTH_SASL))) {
        conn_log(c, LOG_LVL_INFO, "refused %s channel: the viewer cannot do SASL "
                 "(user name + password), the only login vmgate offers", ch);
        refuse_link(c, SPICE_LINK_ERR_PERMISSION_DENIED);
        return;
    }
    if (s->is_main) {
        if (m->connection_id != 0) {
            conn_log(c, LOG_LVL_INFO, "refused main channel with connection id 0x%08x "
                     "(migration is not supported)", m->connection_id);
            refuse_link(c, SPICE_LINK_ERR_BAD_CONNECTION_ID);
            return;
        }
        if (!(m->common0 & SPICE_CAP_MINI_HEADER)) {
            conn_log(c, LOG_LVL_INFO, "refused main channel: the viewer does not support "
                     "mini headers");
            refuse_link(c, SPICE_LINK_ERR_VERSION_MISMATCH);
            return;
        }
    } else if (!spice_session_find(c->vm, m->connection_id)) {
        conn_log(c, LOG_LVL_INFO, "refused %s channel for unknown session 0x%08x", ch,
                 m->connection_id);
        refuse_link(c, SPICE_LINK_ERR_BAD_CONNECTION_ID);
        return;
    } else {
        unsigned n = session_channels(c, m->connection_id);
        if (n >= SPICE_MAX_CHANNELS) {
            conn_log(c, LOG_LVL_INFO, "refused %s channel: session 0x%08x already has %u "
                     "channels (at most %u)", ch, m->connection_id, n, SPICE_MAX_CHANNELS);
            refuse_link(c, SPICE_LINK_ERR_CHANNEL_NOT_AVAILABLE);
            return;
        }
    }
    /* Our link message for the VM, kept until the viewer has logged in. */
    s->be_link_len = spice_build_link(s->be_link, sizeof s->be_link, m,
                                      SPICE_CAP_AUTH_SELECTION |
                                      (m->common0 & SPICE_CAP_MINI_HEADER));
    /* The viewer's answer, from what we know of the VM without asking it. */
    struct spice_vmstate *vs = spice_vm_state(c->vm);
    if (!vs) {
        conn_fail(c, LOG_LVL_ERR, "out of memory");
        return;
    }
    if (m->channel_type < N_CHAN_TYPES && vs->caps_known[m->channel_type])
        s->promised = vs->caps[m->channel_type];
    else
        spice_default_chan_caps(m->channel_type, &s->promised);
    uint8_t caps[4 * SPICE_CHAN_CAPS_WORDS];
    spice_chan_caps_le(&s->promised, caps);
    uint8_t msg[SPICE_LINK_HDR_LEN + SPICE_LINK_REPLY_LEN + 4 + 4 * SPICE_CHAN_CAPS_WORDS];
    size_t l = spice_build_reply(msg, sizeof msg,
                                 SPICE_CAP_AUTH_SELECTION |
                                 (s->local ? SPICE_CAP_AUTH_SPICE : SPICE_CAP_AUTH_SASL) |
                                 (m->common0 & SPICE_CAP_MINI_HEADER),
                                 caps, s->promised.n);
    if (s->be_link_len == 0 || l == 0) {
        conn_fail(c, LOG_LVL_ERR, "internal: cannot build the link messages");
        return;
    }
    if (s->local) {
        /* the viewer encrypts its (empty) ticket with a key: any valid one */
        const uint8_t *key = local_pubkey();
        if (!key) {
            conn_fail(c, LOG_LVL_ERR, "cannot make an RSA key for the SPICE link");
            return;
        }
        memcpy(msg + SPICE_LINK_HDR_LEN + 4, key, SPICE_PUBKEY_LEN);
    }
    conn_log(c, LOG_LVL_DEBUG, "link: %s channel, connection id 0x%08x, caps 0x%x", ch,
             m->connection_id, m->common0);
    conn_front_queue(c, msg, l);
    if (s->local)
        conn_set_state(c, m->common0 & SPICE_CAP_AUTH_SELECTION ? SS_LOCAL_MECH
                                                                : SS_LOCAL_TICKET);
    else
        conn_set_state(c, SS_READ_AUTH_MECH);
}

static bool st_link(struct conn *c)
{
    char why[200] = "";
    ssize_t n = front_in(c);
    if (n < 0)
        return false;
    struct spice_link_mess m;
    uint32_t err = SPICE_LINK_ERR_INVALID_DATA;
    int r = spice_parse_link(buf_head(&c->rx), buf_len(&c->rx), &m, &err, why, sizeof why);
    if (r == SPL_NEED)
        return n > 0;
    if (r < 0) {
        conn_hs_failed(c, PROXY_HS_SPICE);
        conn_log(c, LOG_LVL_INFO, "bad SPICE link: %s", why);
        buf_consume(&c->rx, buf_len(&c->rx));
        refuse_link(c, err);
        return true;
    }
    handle_link(c, &m);
    buf_consume(&c->rx, (size_t)r);
    return true;
}

static bool st_auth_mech(struct conn *c)
{
    ssize_t n = front_in(c);
    if (n < 0)
        return false;
    uint32_t mech;
    if (spice_parse_u32(buf_head(&c->rx), buf_len(&c->rx), &mech) == SPL_NEED)
        return n > 0;
    buf_consume(&c->rx, 4);
    if (mech != SPICE_AUTH_SASL) {
        conn_log(c, LOG_LVL_INFO, "viewer chose auth mechanism %u; vmgate offers only SASL "
                 "(user name + password)", mech);
        uint8_t res[4];
        spice_put_u32(res, SPICE_LINK_ERR_PERMISSION_DENIED);
        conn_front_queue(c, res, 4);
        conn_close_after(c);
        return true;
    }
    static const char mechlist[] = "PLAIN";
    uint8_t msg[4 + sizeof mechlist];
    spice_put_u32(msg, (uint32_t)strlen(mechlist));
    memcpy(msg + 4, mechlist, strlen(mechlist));
    conn_front_queue(c, msg, 4 + strlen(mechlist));
    conn_set_state(c, SS_SASL_MECHNAME);
    return true;
}

/* A SASL exchange the viewer got wrong: log, refuse, drop its bytes. */
static bool bad_sasl(struct conn *c, const char *why, size_t drop)
{
    conn_hs_failed(c, PROXY_HS_SPICE);
    conn_log(c, LOG_LVL_INFO, "bad SASL exchange: %s", why);
    buf_consume(&c->rx, drop);
    refuse_sasl(c, SPICE_LINK_ERR_PERMISSION_DENIED);
    return true;
}

static bool st_sasl_mechname(struct conn *c)
{
    char why[200] = "";
    ssize_t n = front_in(c);
    if (n < 0)
        return false;
    char mech[SPICE_SASL_MECH_MAX + 1];
    int r = spice_parse_sasl_mech(buf_head(&c->rx), buf_len(&c->rx), mech, why, sizeof why);
    if (r == SPL_NEED)
        return n > 0;
    if (r >= 0 && strcmp(mech, "PLAIN") != 0)
        snprintf(why, sizeof why, "SASL mechanism \"%s\", only PLAIN is offered", mech);
    if (r < 0 || strcmp(mech, "PLAIN") != 0)
        return bad_sasl(c, why, buf_len(&c->rx));
    buf_consume(&c->rx, (size_t)r);
    conn_set_state(c, SS_SASL_START);
    return true;
}

static void after_login(struct conn *c);

/* The viewer's PLAIN response: a later channel of a fresh session joins
 * it; anything else is checked by the auth helper. */
static void handle_plain(struct conn *c, const uint8_t *data, uint32_t len)
{
    struct sconn *sc = S(c);
    char pass[SPICE_SASL_PASS_MAX + 1];
    char why[200];
    if (spice_sasl_plain(data, len, c->user, sizeof c->user, pass, sizeof pass, why,
                         sizeof why) != 0) {
        c->user[0] = '\0';
        conn_hs_failed(c, PROXY_HS_SPICE);
        conn_log(c, LOG_LVL_INFO, "bad SASL PLAIN message: %s", why);
        refuse_sasl(c, SPICE_LINK_ERR_PERMISSION_DENIED);
        return;
    }
    spice_secret_hash(c->user, pass, sc->secret);
    char user[SPICE_SASL_USER_MAX + 1], ch[32];
    log_safe(user, sizeof user, c->user, sizeof c->user);
    chan_str(c, ch, sizeof ch);
    if (!sc->is_main) {
        struct spice_session *s = spice_session_find(c->vm, sc->conn_id);
        if (!s) {
            explicit_bzero(pass, sizeof pass);
            conn_log(c, LOG_LVL_INFO, "refused %s channel: session 0x%08x ended", ch,
                     sc->conn_id);
            refuse_sasl(c, SPICE_LINK_ERR_BAD_CONNECTION_ID);
            return;
        }
        if (strcmp(s->user, c->user) != 0) {
            explicit_bzero(pass, sizeof pass);
            char su[SPICE_SASL_USER_MAX + 1];
            log_safe(su, sizeof su, s->user, sizeof s->user);
            conn_log(c, LOG_LVL_INFO, "login failed for user \"%s\": %s channel for session "
                     "0x%08x of user \"%s\"", user, ch, sc->conn_id, su);
            conn_login_failed(c);
            return;
        }
        if (ev_now(c->px->loop) - s->login_at <= LOGIN_WINDOW &&
            CRYPTO_memcmp(s->secret, sc->secret, sizeof sc->secret) == 0) {
            explicit_bzero(pass, sizeof pass);
            s->login_at = ev_now(c->px->loop);
            c->authed = true;
            conn_log(c, LOG_LVL_INFO, "%s channel joined session 0x%08x (login reused, "
                     "no new check)", ch, sc->conn_id);
            after_login(c);
            return;
        }
    }
    conn_login(c, pass);
    explicit_bzero(pass, sizeof pass);
}

static bool st_sasl_data(struct conn *c)
{
    char why[200] = "";
    ssize_t n = front_in(c);
    if (n < 0)
        return false;
    const uint8_t *data;
    uint32_t dl;
    int r = spice_parse_sasl_data(buf_head(&c->rx), buf_len(&c->rx), SPICE_SASL_DATA_MAX, &data,
                                  &dl, why, sizeof why);
    if (r == SPL_NEED)
        return n > 0;
    if (r < 0)
        return bad_sasl(c, why, buf_len(&c->rx));
    if (dl == 0) {
        if (c->state == SS_SASL_STEP)
            return bad_sasl(c, "empty PLAIN response", (size_t)r);
        /* no initial response: an empty challenge, not complete */
        static const uint8_t msg[5] = { 0, 0, 0, 0, 0 };
        conn_front_queue(c, msg, sizeof msg);
        buf_consume(&c->rx, (size_t)r);
        conn_set_state(c, SS_SASL_STEP);
        return true;
    }
    handle_plain(c, data, dl);
    explicit_bzero((uint8_t *)buf_head(&c->rx), (size_t)r);
    buf_consume(&c->rx, (size_t)r);
    return true;
}

/* ---------------------------------------------------------------------- */
/* the backend                                                             */

static void backend_up(struct conn *c) { conn_set_state(c, SS_BACKEND_LINK); }

static void after_backend_link(struct conn *c);

/* Parse the VM's link reply in brx: its refusal is the viewer's link
 * result; it must have what we promised the viewer (mini headers, channel
 * caps); then the ticket. */
static bool st_backend_link(struct conn *c)
{
    struct sconn *s = S(c);
    char why[200] = "", ch[32];
    struct spice_link_reply rep;
    int r = spice_parse_reply(buf_head(&c->brx), buf_len(&c->brx), &rep, why, sizeof why);
    if (r == SPL_NEED)
        return false;
    if (r < 0) {
        vm_unavailable(c, why, false);
        return true;
    }
    chan_str(c, ch, sizeof ch);
    if (rep.error != SPICE_LINK_OK) {
        conn_log(c, LOG_LVL_INFO, "the VM refused the %s channel: %s (%u)", ch,
                 spice_link_err_name(rep.error), rep.error);
        refuse_after_sasl(c, rep.error);
        return true;
    }
    s->be_common0 = rep.common0;
    if ((rep.common0 & SPICE_CAP_AUTH_SELECTION) && !(rep.common0 & SPICE_CAP_AUTH_SPICE)) {
        vm_unavailable(c, "the VM's SPICE server wants SASL itself; run QEMU without "
                          "sasl=on (vmgate authenticates with a ticket)", false);
        return true;
    }
    memcpy(s->be_pubkey, rep.pub_key, sizeof s->be_pubkey);
    /* The viewer was promised mini headers if it offered them; the VM uses
     * them if our link said so (it did, then), and a VM that does not say
     * it has them would not. */
    s->mini = (s->client_common0 & SPICE_CAP_MINI_HEADER) != 0;
    if (s->mini && !(rep.common0 & SPICE_CAP_MINI_HEADER)) {
        conn_log(c, LOG_LVL_WARN, "vm %s: SPICE server without mini headers is not supported",
                 c->vm->name);
        refuse_after_sasl(c, SPICE_LINK_ERR_VERSION_MISMATCH);
        return true;
    }
    struct spice_chan_caps have;
    spice_chan_caps_from_reply(&rep, &have);
    struct spice_vmstate *vs = spice_vm_state(c->vm);
    if (!vs) {
        conn_fail(c, LOG_LVL_ERR, "out of memory");
        return false;
    }
    if (s->ch_type < N_CHAN_TYPES) {
        vs->caps[s->ch_type] = have;
        vs->caps_known[s->ch_type] = true;
    }
    if (!spice_chan_caps_subset(&s->promised, &have)) {
        conn_log(c, LOG_LVL_WARN, "vm %s: its SPICE server lacks %s channel capabilities "
                 "vmgate announced (0x%x, it has 0x%x); refused this once, the next link "
                 "announces the server's own", c->vm->name, spice_channel_name(s->ch_type),
                 s->promised.n ? s->promised.w[0] : 0, have.n ? have.w[0] : 0);
        refuse_after_sasl(c, SPICE_LINK_ERR_CHANNEL_NOT_AVAILABLE);
        return true;
    }
    buf_consume(&c->brx, (size_t)r);
    if (!buf_empty(&c->brx)) {
        vm_unavailable(c, "the VM sent data after its link reply", false);
        return true;
    }
    after_backend_link(c);
    return true;
}

/* The login is good (helper or session): authenticate to the VM. */
static void backend_auth(struct conn *c)
{
    char why[200];
    uint8_t msg[4 + SPICE_TICKET_LEN];
    size_t off = 0;
    const char *ticket = "";
    conn_set_state(c, SS_BACKEND_AUTH);
    if (c->vm->qmp[0]) {
        struct spice_vmstate *vs = spice_vm_state(c->vm);
        if (!vs) {
            conn_fail(c, LOG_LVL_ERR, "out of memory");
            return;
        }
        ticket = vs->ticket;
    }
    if (S(c)->be_common0 & SPICE_CAP_AUTH_SELECTION) {
        spice_put_u32(msg, SPICE_AUTH_SPICE);
        off = 4;
    }
    if (spice_encrypt_ticket(S(c)->be_pubkey, ticket, msg + off, why, sizeof why) != 0) {
        vm_unavailable(c, why, false);
        return;
    }
    conn_back_queue(c, msg, off + SPICE_TICKET_LEN);
    explicit_bzero(msg, sizeof msg);
}

/* QMP set_password + expire_password answered. */
static void ticket_set(struct conn *c, const char *err, bool refused)
{
    (void)refused;
    if (err) {
        char d[300];
        snprintf(d, sizeof d, "cannot set the SPICE ticket over QMP %s: %s", c->vm->qmp, err);
        vm_unavailable(c, d, false);
        return;
    }
    conn_log(c, LOG_LVL_DEBUG, "SPICE ticket set over QMP %s", c->vm->qmp);
    backend_auth(c);
}

/* The login is good (helper or session): now, and only now, the VM. */
static void after_login(struct conn *c)
{
    struct sconn *s = S(c);
    s->backend = true;
    conn_back_queue(c, s->be_link, s->be_link_len);
    conn_backend_open(c, &c->vm->spice);   /* config forbids spice = qmp: */
}

/* The VM accepted the link: main channel with qmp = sets the ticket first. */
static void after_backend_link(struct conn *c)
{
    if (!S(c)->is_main || !c->vm->qmp[0]) {
        backend_auth(c);
        return;
    }
    struct spice_vmstate *vs = spice_vm_state(c->vm);
    if (!vs) {
        conn_fail(c, LOG_LVL_ERR, "out of memory");
        return;
    }
    conn_qmp(c, QMPB_SPICE_TICKET, vs->ticket, ticket_set);
}

static void login_ok(struct conn *c)
{
    struct sconn *sc = S(c);
    if (!sc->is_main) {
        struct spice_session *s = spice_session_find(c->vm, sc->conn_id);
        if (s && strcmp(s->user, c->user) == 0) {
            memcpy(s->secret, sc->secret, sizeof s->secret);
            s->login_at = ev_now(c->px->loop);
        }
    }
    after_login(c);
}

static void login_refuse(struct conn *c) { refuse_sasl(c, SPICE_LINK_ERR_PERMISSION_DENIED); }

static void login_tag(struct conn *c, char *out, size_t outsz)
{
    char ch[32];
    snprintf(out, outsz, " (%s channel)", chan_str(c, ch, sizeof ch));
}

/* ---------------------------------------------------------------------- */
/* main channel filter callbacks                                           */

static void main_on_init(void *ctx, uint32_t session_id)
{
    struct conn *c = ctx;
    struct spice_session *s = spice_session_find(c->vm, session_id);
    if (s && s->main && s->main != c)
        S(s->main)->conn_id = 0;          /* a reconnect: the old main channel lets go */
    if (!spice_session_put(c->vm, session_id, c->user, S(c)->secret, ev_now(c->px->loop), c)) {
        conn_fail(c, LOG_LVL_ERR, "out of memory");
        return;
    }
    S(c)->conn_id = session_id;
    conn_log(c, LOG_LVL_DEBUG, "SPICE session 0x%08x", session_id);
}

static void main_on_note(void *ctx, const char *msg)
{
    conn_log(ctx, LOG_LVL_INFO, "%s", msg);
}

static void main_on_clip(void *ctx, const struct vda_event *ev)
{
    struct clip_event ce = { .to_vm = ev->dir == VDA_TO_VM };
    if (ev->kind == VDA_EV_OFFER_BLOCKED) {
        ce.kind = CLIP_EV_OFFER;
        ce.reason = ev->reason ? ev->reason : "";
    } else {
        ce.kind = CLIP_EV_TRANSFER;
        ce.bytes = ev->bytes;
        ce.hashed = true;
        memcpy(ce.sha256, ev->sha256, sizeof ce.sha256);
        ce.type = vda_clip_type_name(ev->clip_type);
        ce.reason = ev->allowed ? NULL : ev->reason ? ev->reason : "";
    }
    conn_clip_event(ctx, &ce);
}

/* ---------------------------------------------------------------------- */
/* the relay                                                               */

static void relay_start(struct conn *c)
{
    struct sconn *s = S(c);
    char be[300], ch[32];
    cfg_backend_str(&c->vm->spice, be, sizeof be);
    chan_str(c, ch, sizeof ch);
    if (s->is_main) {
        s->mainf = calloc(1, sizeof *s->mainf);
        if (!s->mainf) {
            conn_fail(c, LOG_LVL_ERR, "out of memory");
            return;
        }
        enum cfg_clip pol = c->vm->clipboard;
        spice_main_init(s->mainf, pol == CFG_CLIP_BOTH || pol == CFG_CLIP_TO_VM,
                        pol == CFG_CLIP_BOTH || pol == CFG_CLIP_FROM_VM, c->vm->clipboard_max,
                        cfg_clip_name(pol), main_on_clip, main_on_init, main_on_note, c);
        c->d[CONN_C2S].separate_in = c->d[CONN_S2C].separate_in = true;
        conn_relay_start(c);
        conn_log(c, LOG_LVL_INFO, "session started (spice, backend %s)", be);
        conn_session_started(c);
    } else {
        conn_relay_start(c);            /* pipelined bytes go straight through */
        c->quiet_end = true;
        conn_log(c, LOG_LVL_INFO, "%s channel started (session 0x%08x)", ch, s->conn_id);
    }
}

static bool st_backend_auth(struct conn *c)
{
    uint32_t res;
    if (spice_parse_u32(buf_head(&c->brx), buf_len(&c->brx), &res) == SPL_NEED)
        return false;
    buf_consume(&c->brx, 4);
    char ch[32];
    chan_str(c, ch, sizeof ch);
    if (res != SPICE_LINK_OK) {
        if (res == SPICE_LINK_ERR_PERMISSION_DENIED)
            conn_log(c, LOG_LVL_WARN, "vm %s refused vmgate's SPICE ticket for the %s channel%s",
                     c->vm->name, ch,
                     c->vm->qmp[0] ? " (was the ticket changed over QMP by someone else?)"
                                   : "; set qmp = for this VM (vmgate then sets the ticket), "
                                     "or run QEMU's SPICE with disable-ticketing=on on a "
                                     "private socket");
        else
            conn_log(c, LOG_LVL_INFO, "the VM refused the %s channel: %s (%u)", ch,
                     spice_link_err_name(res), res);
        refuse_after_sasl(c, res);
        return true;
    }
    sasl_answer(c, 0, SPICE_LINK_OK);
    relay_start(c);
    return true;
}

/* The main channel's agent filter, both directions (other channels have
 * none: their bytes are spliced). */
static int filter(struct conn *c, enum conn_dir d, char *why, size_t whylen)
{
    struct spice_main *f = S(c)->mainf;
    if (!f)
        return 0;
    struct buf *in = d == CONN_C2S ? &c->rx : &c->brx;
    long u = spice_main_feed(f, d == CONN_C2S ? SMAIN_C2S : SMAIN_S2C,
                             buf_empty(in) ? NULL : buf_head(in), buf_len(in),
                             &c->d[d].stream);   /* also releases injections */
    if (u < 0) {
        snprintf(why, whylen, "bad main channel message: %s", f->why);
        return -1;
    }
    buf_consume(in, (size_t)u);
    return 0;
}

/* ---------------------------------------------------------------------- */
/* the table                                                               */

static void start(struct conn *c) { conn_start_tls(c, SS_READ_LINK); }

/* ---------------------------------------------------------------------- */
/* socket_dir/NAME.spice: a SPICE link with no ticket, authorized by uid   */

static bool st_local_mech(struct conn *c)
{
    ssize_t n = front_in(c);
    if (n < 0)
        return false;
    uint32_t mech;
    if (spice_parse_u32(buf_head(&c->rx), buf_len(&c->rx), &mech) == SPL_NEED)
        return n > 0;
    buf_consume(&c->rx, 4);
    if (mech != SPICE_AUTH_SPICE) {
        conn_log(c, LOG_LVL_INFO, "viewer chose auth mechanism %u; this socket offers only "
                 "SPICE (no ticket: the connecting uid is checked)", mech);
        refuse_sasl(c, SPICE_LINK_ERR_PERMISSION_DENIED);
        return true;
    }
    conn_set_state(c, SS_LOCAL_TICKET);
    return true;
}

/* The encrypted ticket: not read for its content; the helper checks the
 * uid on the socket (and that the socket is this VM's NAME.spice). */
static bool st_local_ticket(struct conn *c)
{
    ssize_t n = front_in(c);
    if (n < 0)
        return false;
    if (buf_len(&c->rx) < SPICE_TICKET_LEN)
        return n > 0;
    explicit_bzero((uint8_t *)buf_head(&c->rx), SPICE_TICKET_LEN);
    buf_consume(&c->rx, SPICE_TICKET_LEN);
    c->user[0] = '\0';
    conn_login(c, "");
    return true;
}

static void local_start(struct conn *c)
{
    S(c)->local = true;
    conn_set_state(c, SS_READ_LINK);
}

/* The helper's answer: the uid's name (log, session owner). */
static void local_login_answer(struct conn *c, const struct authp_login_resp *resp)
{
    S(c)->result = (enum authp_result)resp->result;
    if (resp->result == AUTHP_OK || resp->result == AUTHP_NOT_ALLOWED)
        snprintf(c->user, sizeof c->user, "%.*s", (int)strnlen(resp->detail, sizeof resp->detail),
                 resp->detail);
}

/* A later channel must belong to a session of the same user. */
static void local_login_ok(struct conn *c)
{
    struct sconn *sc = S(c);
    if (!sc->is_main) {
        struct spice_session *s = spice_session_find(c->vm, sc->conn_id);
        if (!s || strcmp(s->user, c->user) != 0) {
            char ch[32];
            conn_log(c, LOG_LVL_INFO, "refused %s channel: session 0x%08x is not this user's",
                     chan_str(c, ch, sizeof ch), sc->conn_id);
            refuse_sasl(c, s ? SPICE_LINK_ERR_PERMISSION_DENIED
                             : SPICE_LINK_ERR_BAD_CONNECTION_ID);
            return;
        }
        s->login_at = ev_now(c->px->loop);
    }
    after_login(c);
}

static void local_login_tag(struct conn *c, char *out, size_t outsz)
{
    char ch[32];
    snprintf(out, outsz, " by uid (%s channel)", chan_str(c, ch, sizeof ch));
}

static void destroy(struct conn *c)
{
    struct sconn *sc = S(c);
    if (sc->is_main)
        spice_session_drop_main(c);
    if (sc->mainf) {
        spice_main_free(sc->mainf);
        free(sc->mainf);
    }
}

static const struct conn_state_def spice_states[] = {
    [SS_READ_LINK - CS_PROTO] = { "link", CSF_FRONT_READ, st_link, NULL },
    [SS_READ_AUTH_MECH - CS_PROTO] = { "auth-mechanism", CSF_FRONT_READ, st_auth_mech, NULL },
    [SS_SASL_MECHNAME - CS_PROTO] = { "sasl-mechanism", CSF_FRONT_READ, st_sasl_mechname, NULL },
    [SS_SASL_START - CS_PROTO] = { "sasl-start", CSF_FRONT_READ, st_sasl_data, NULL },
    [SS_SASL_STEP - CS_PROTO] = { "sasl-step", CSF_FRONT_READ, st_sasl_data, NULL },
    [SS_BACKEND_LINK - CS_PROTO] = { "backend-link", CSF_BACK_IO, st_backend_link,
                                     "the VM closed the link without a reply (no such channel?)" },
    [SS_BACKEND_AUTH - CS_PROTO] = { "backend-auth", CSF_BACK_IO, st_backend_auth,
                                     "the VM closed the link during authentication" },
    [SS_LOCAL_MECH - CS_PROTO] = { "auth-mechanism", CSF_FRONT_READ, st_local_mech, NULL },
    [SS_LOCAL_TICKET - CS_PROTO] = { "ticket", CSF_FRONT_READ, st_local_ticket, NULL },
};

/* Every channel is TLS from the first byte; the main channel's relay reads
 * into rx/brx and its agent filter copies what passes (relay_start). */
const struct conn_proto spice_proto = {
    .name = "spice", .accept_tag = " (spice)", .admit_tag = "SPICE ",
    .states = spice_states, .n_states = sizeof spice_states / sizeof spice_states[0],
    .rx_cap = RX_CAP, .brx_cap = BRX_CAP, .f2b_cap = F2B_CAP, .b2f_cap = B2F_CAP,
    .priv_size = sizeof(struct sconn),
    .start = start, .login_ok = login_ok, .login_refuse = login_refuse, .login_tag = login_tag,
    .backend_up = backend_up, .vm_unavailable = vm_unavailable, .filter = filter,
    .destroy = destroy,
};

/* socket_dir/NAME.spice: the same channels, relay and clipboard filter, in
 * the clear (a local socket, or ssh's forwarding), with SPICE ticket auth
 * whose ticket is ignored: the auth helper checks the connecting uid
 * against the VM's users/groups.  A refusal is the link result
 * (SPICE_LINK_ERR_PERMISSION_DENIED).  The ticket states exist only here. */
const struct conn_proto spice_local_proto = {
    .name = "spice", .accept_tag = " (spice, unix socket)", .admit_tag = "SPICE ",
    .states = spice_states, .n_states = sizeof spice_states / sizeof spice_states[0],
    .rx_cap = RX_CAP, .brx_cap = BRX_CAP, .f2b_cap = F2B_CAP, .b2f_cap = B2F_CAP,
    .priv_size = sizeof(struct sconn),
    .start = local_start, .login_answer = local_login_answer, .login_ok = local_login_ok,
    .login_refuse = login_refuse, .login_tag = local_login_tag,
    .backend_up = backend_up, .vm_unavailable = vm_unavailable, .filter = filter,
    .destroy = destroy,
};
