/* proxy/serial_conn.c — serial_proto: a session on socket_dir/NAME.serial.
 *
 * A plug-in of the connection core (core.h), not a connection of its own:
 *
 *   (core) accept, caps per uid → start: login by the peer's uid at once
 *   (the client need not send anything; the helper checks the socket is
 *   this VM's NAME.serial and the VM's users/groups) → (core) auth, fail
 *   delay → allowed: attach to the VM's serial hub (serial_hub.h), whose
 *   socketpair end becomes the backend fd → (core) relay, no filter.
 *   Refused: one line "vmgate: user bob may not open VM dev0" and close.
 *
 * Every line vmgate itself writes on this stream starts with "[vmgate: "
 * (inside the session) or "vmgate: " (a refusal, the first and only line),
 * which is what `vmgate console --serial` tells apart. */
#include "proxy/core.h"

#include <stdio.h>
#include <string.h>

#include "proxy/proxy.h"
#include "proxy/serial_hub.h"

#define RX_CAP   512
#define BRX_CAP  512
#define F2B_CAP  (4 * 1024)
#define B2F_CAP  (64 * 1024)

struct serial {
    enum authp_result result;
    char who[AUTHP_DETAIL_MAX + 8];   /* "user bob" or "uid 1234", for a refusal */
};
#define S(c) ((struct serial *)(c)->p)

/* Queue one line of refusal ("vmgate: ...") and close after it. */
static void refuse_line(struct conn *c, const char *reason)
{
    char line[AUTHP_DETAIL_MAX + CFG_NAME_MAX + 128];
    int n = snprintf(line, sizeof line, "vmgate: %s\r\n", reason);
    conn_front_queue(c, line, n > 0 && (size_t)n < sizeof line ? (size_t)n : strlen(line));
    conn_close_after(c);
}

static void st_start(struct conn *c)
{
    c->via = "unix";
    c->user[0] = '\0';
    /* vmgate speaks first here and the client owes no byte: the login
     * timer's first_byte_timeout step must not close a silent client
     * (its answer, or a refusal after fail_delay, is on its way) */
    c->fs.got_data = true;
    conn_login(c, "");
}

/* The helper's answer: the user's name for the log and the refusal. */
static void st_login_answer(struct conn *c, const struct authp_login_resp *resp)
{
    S(c)->result = (enum authp_result)resp->result;
    char name[AUTHP_DETAIL_MAX + 1];
    log_safe_word(name, sizeof name, resp->detail, strnlen(resp->detail, sizeof resp->detail));
    if (resp->result == AUTHP_OK || resp->result == AUTHP_NOT_ALLOWED) {
        snprintf(c->user, sizeof c->user, "%s", resp->detail);
        snprintf(S(c)->who, sizeof S(c)->who, "user %s", name);
    } else if (resp->result == AUTHP_UNKNOWN_USER) {
        snprintf(S(c)->who, sizeof S(c)->who, "%s", name);
    }
}

static void st_login_tag(struct conn *c, char *out, size_t outsz)
{
    (void)c;
    snprintf(out, outsz, " by uid");
}

static void st_login_refuse(struct conn *c)
{
    char reason[AUTHP_DETAIL_MAX + CFG_NAME_MAX + 48];
    if (S(c)->result == AUTHP_ERROR || !S(c)->who[0])
        snprintf(reason, sizeof reason, "vmgate could not check who may open VM %s",
                 c->vm->name);
    else
        snprintf(reason, sizeof reason, "%s may not open VM %s", S(c)->who, c->vm->name);
    refuse_line(c, reason);
}

/* Allowed: the VM's hub gives us our end of a session; the core relays it. */
static void st_login_ok(struct conn *c)
{
    char why[160];
    struct serial_hub *h = serial_hub_find(c->vm);
    if (!h) {
        conn_log(c, LOG_LVL_ERR, "no serial hub for vm %s in this process", c->vm->name);
        snprintf(why, sizeof why, "the serial console of VM %s is not served", c->vm->name);
        refuse_line(c, why);
        return;
    }
    int fd = serial_hub_attach(h, c->user, c->id, why, sizeof why);
    if (fd < 0) {
        conn_log(c, LOG_LVL_WARN, "serial console refused: %s", why);
        refuse_line(c, why);
        return;
    }
    c->bfd = fd;
    c->back_rd_ready = false;
    conn_relay_start(c);
    conn_log(c, LOG_LVL_INFO, "session started (serial console, %s)", c->vm->serial.path);
    conn_session_started(c);
}

/* Not reached (the hub is the backend, no connect); kept for the table. */
static void st_backend_up(struct conn *c)
{
    conn_fail(c, LOG_LVL_ERR, "internal: serial session without a hub");
}

static void st_vm_unavailable(struct conn *c, const char *detail, bool refused)
{
    (void)refused;
    conn_fail(c, LOG_LVL_INFO, "serial console unavailable: %s", detail);
}

/* socket_dir/VM.serial: no handshake states of its own. */
/* Kicked (vmgate kick, or the VM removed by a reload): the terminal gets
 * the reason as a line before the close. */
static size_t st_kick_line(struct conn *c, const char *reason, char *out, size_t outsz)
{
    (void)c;
    int n = snprintf(out, outsz, "\r\n[vmgate: session ended: %s]\r\n", reason);
    return n < 0 ? 0 : (size_t)n < outsz ? (size_t)n : outsz - 1;
}

const struct conn_proto serial_proto = {
    .name = "serial", .accept_tag = " (serial socket)", .admit_tag = "",
    .states = NULL, .n_states = 0,
    .rx_cap = RX_CAP, .brx_cap = BRX_CAP, .f2b_cap = F2B_CAP, .b2f_cap = B2F_CAP,
    .priv_size = sizeof(struct serial), .inj_cap = 0,
    .start = st_start, .login_answer = st_login_answer, .login_ok = st_login_ok,
    .login_refuse = st_login_refuse, .login_tag = st_login_tag,
    .backend_up = st_backend_up, .vm_unavailable = st_vm_unavailable,
    .kick_line = st_kick_line,
};
