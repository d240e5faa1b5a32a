/* proxy/core.h — the connection core every way in plugs into.
 *
 * One `struct conn` is one viewer connection, whatever the protocol: its id,
 * source, VM and user; the viewer side (a `struct tside`: plain, then TLS or
 * TLS from the first byte); the backend side (unix, tcp, or a QMP handoff);
 * the buffers of both directions; its watchers and timers; its
 * unauthenticated accounting; why it ended; the list link.
 *
 * The protocol (RFB/VeNCrypt in vnc.c, the SPICE link in spice_conn.c)
 * plugs in through `struct conn_proto`: a table of its handshake states,
 * each with one step function and the flags from which the core derives the
 * watcher masks, and a few hooks (start, login answer, backend up, relay
 * filters, destroy).  What every protocol shares lives here once:
 *
 *   - the life cycle: accept and admission (the unauthenticated caps),
 *     deferred destruction (conn_fail() records why; the event callback on
 *     the stack destroys the connection as it unwinds), close_all;
 *   - one place that derives watcher masks (conn_update_io);
 *   - the viewer side: read, queue, flush (the approved prefix of the
 *     stream, then the injection buffer), the TLS handshake state;
 *   - the login: submit to the auth helper, log the answer, the fail delay
 *     measured from the submission, then the protocol's refusal;
 *   - the backend: connect (unix/tcp) or hand off over QMP, then the
 *     protocol's backend handshake; QMP operations go to the privileged broker (auth/qmpb.h);
 *   - the relay loop of both directions with optional per-direction
 *     filters;
 *   - one lingering close for every protocol: the final message, then
 *     close_notify, SHUT_WR and a bounded drain, so the viewer gets no RST.
 *
 * States: the low numbers are the core's own (CS_*); a protocol's handshake
 * states start at CS_PROTO and index its table. */
#ifndef VMGATE_PROXY_CORE_H
#define VMGATE_PROXY_CORE_H

#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <ev.h>

#include "auth/proto.h"
#include "common/buf.h"
#include "common/log.h"
#include "proxy/proxy_int.h"
#include "auth/qmpb.h"
#include "proxy/tside.h"

#define CONN_USER_MAX   255
#define CONN_LINGER     5.0           /* seconds to flush a final message and drain */

/* The core's states; a protocol's own states are CS_PROTO + its index. */
enum conn_core_state {
    CS_TLS_HANDSHAKE,   /* then c->after_tls */
    CS_PROXY_HDR,       /* from a proxy_protocol balancer: its PROXY v2 header, then start */
    CS_AUTH_WAIT,       /* the request is with the auth helper */
    CS_FAIL_DELAY,      /* login failed; the answer is held back */
    CS_BACKEND_CONNECT, /* connecting to the VM (unix/tcp) */
    CS_QMP,             /* the QMP broker runs an operation (handoff, ticket, ...) */
    CS_RELAY,
    CS_CLOSING,         /* final message out, then close_notify, FIN, drain */
    CS_PROTO,
};

/* Flags of a protocol state: what it waits for. */
#define CSF_FRONT_READ  0x01    /* reads the viewer */
#define CSF_BACK_IO     0x02    /* talks to the VM: read it, write f2b */

/* Directions of the relay. */
enum conn_dir { CONN_C2S, CONN_S2C };

struct conn;

struct conn_state_def {
    const char *name;
    unsigned flags;
    /* Advance this state if its bytes are there: true if it made progress
     * (the core calls the next state's step), false to wait for an event. */
    bool (*step)(struct conn *c);
    /* CSF_BACK_IO: what the VM closing here means, for the log. */
    const char *back_eof;
};

struct conn_proto {
    const char *name;                   /* "vnc", "spice" */
    const char *accept_tag;             /* put after "accepted" in the debug line */
    const char *admit_tag;              /* "" or "SPICE ": the cap refusal line */
    const char *via;                    /* NULL, or "web": log lines say "via=web" */
    const struct conn_state_def *states;
    unsigned n_states;
    size_t rx_cap, brx_cap, f2b_cap, b2f_cap;
    /* Start the handshake on a new connection (queue a greeting, or
     * conn_start_tls). */
    void (*start)(struct conn *c);
    /* The helper's answer, before the core logs it (may be NULL): a login
     * by the connecting uid learns the user's name here (resp->detail). */
    void (*login_answer)(struct conn *c, const struct authp_login_resp *resp);
    /* The auth helper said yes (the core logged it): go on. */
    void (*login_ok)(struct conn *c);
    /* A failed login's answer is due (after the fail delay): queue the
     * protocol's refusal and conn_close_after(). */
    void (*login_refuse)(struct conn *c);
    /* The backend socket is connected (c->bfd): go to the backend handshake. */
    void (*backend_up)(struct conn *c);
    /* The VM cannot be reached (refused: QEMU's monitor answered the
     * handoff with an error): log it, queue the refusal and
     * conn_close_after() (or conn_fail()). */
    void (*vm_unavailable)(struct conn *c, const char *detail, bool refused);
    /* Text put after "authenticated" (e.g. " (main:0 channel)"); may be NULL. */
    void (*login_tag)(struct conn *c, char *out, size_t outsz);
    /* Relay filters (may be NULL: bytes pass unchanged).  Called after a
     * read into the direction's input; must advance c->d[dir].ok.  0, or -1
     * with why set (the session closes). */
    int (*filter)(struct conn *c, enum conn_dir dir, char *why, size_t whylen);
    /* The protocol's own teardown of c->p's contents (may be NULL; the
     * core frees c->p itself). */
    void (*destroy)(struct conn *c);
    /* conn_kick ends a relaying c (vmgate kick, a reload that removed the
     * VM): write into out the text the viewer gets before the close, and
     * return its length (0: nothing).  May be NULL (a protocol with no
     * place for free text just closes). */
    size_t (*kick_line)(struct conn *c, const char *reason, char *out, size_t outsz);
    size_t priv_size;                   /* bytes of c->p, zeroed at accept */
    size_t inj_cap;                     /* injection buffers' capacity (0: none) */
    /* Headroom of the buffers sent to the viewer (stream and injections of
     * CONN_S2C): TSIDE_HEADROOM where the viewer's side frames what it
     * sends (WebSocket), so a frame header goes in front of the bytes
     * without copying them; 0 elsewhere. */
    size_t b2f_headroom;
};

/* One direction of the relay.  `stream` holds the bytes read from the
 * sender (or, with a separate input, what the filter produced); its first
 * `ok` bytes are approved for sending, then `inj` (messages the filter
 * makes or releases).  With separate_in, bytes are read into c->rx (c2s) or
 * c->brx (s2c) and the filter copies what passes into stream (SPICE's main
 * channel); otherwise reads go to stream.  Unless the filter works in place
 * (RFB), everything in stream is approved. */
struct conn_side {
    struct buf stream;
    size_t ok;
    struct buf inj;
    bool separate_in;       /* read into c->rx / c->brx; the filter fills stream */
    bool inplace;           /* the filter approves stream's bytes in place (advances ok) */
};

/* A QMP operation in progress at the broker (auth/qmpb.h). */
struct conn_qmp {
    int passfd;                         /* the socket to hand off (closed on the answer) */
    void (*done)(struct conn *c, const char *err, bool refused);   /* err NULL: success */
};

struct conn {
    const struct conn_proto *proto;
    struct proxy *px;
    const struct cfg_vm *vm;
    struct conn *next, *prev;
    uint64_t id;
    int state;
    int after_tls;                      /* the state after CS_TLS_HANDSHAKE */
    char rhost[INET6_ADDRSTRLEN];
    char skey[PROXY_SKEY_MAX];          /* what the caps count it under (per /64 for IPv6) */
    char user[CONN_USER_MAX + 1];
    char balancer[INET6_ADDRSTRLEN];    /* "" or the proxy_protocol balancer it came through */
    bool authed;                        /* user is known good: log it */
    bool unauth;                        /* counted in px->n_unauth */
    bool logged_start;                  /* "session started" was logged */
    bool quiet_end;                     /* log the end at debug level */
    bool idle_close;                    /* login_timer is a keep-alive idle limit */
    double idle_secs;                   /* ... of this many seconds */
    struct conn_end end;                /* set by conn_fail() */
    ev_tstamp login_at;                 /* when the login was submitted */
    const char *via;                    /* "tls", "web", "unix": audit, status */
    uint64_t bytes[2];                  /* relayed since the session started: [CONN_C2S] to
                                           the VM, [CONN_S2C] to the viewer */
    ev_tstamp started;                  /* loop time of the session start */
    struct timespec started_wall;       /* the same, wall clock (status "since") */

    /* front: the viewer */
    struct tside fs;
    ev_io fw;
    int fw_mask;
    struct buf rx;                      /* handshake bytes (and a filter's input) */
    bool shutdown_queued;               /* CLOSING: close_notify queued */
    bool close_sent;                    /* CLOSING: FIN sent, draining */

    /* back: the VM */
    int bfd;
    ev_io bw;
    int bw_mask;
    bool back_rd_ready;
    struct buf brx;                     /* backend handshake bytes (and a filter's input) */
    struct conn_qmp q;

    /* relay: c2s = viewer -> VM (f2b), s2c = VM -> viewer (b2f) */
    struct conn_side d[2];
    bool relay_mode;                    /* since the relay: send only ok, then inj */

    ev_timer login_timer;               /* whole pre-auth phase (first: first_byte_timeout) */
    bool hs_counted;                    /* in vmgate_handshake_failures_total already */
    bool fb_pending;                    /* login_timer runs for first_byte_timeout now */
    ev_timer delay_timer;               /* fail delay, close linger */

    void *p;                            /* the protocol's own state */
};

#define c_f2b(c) (&(c)->d[CONN_C2S].stream)
#define c_b2f(c) (&(c)->d[CONN_S2C].stream)

/* proxy_accept() (proxy.h) admits a connection, gives it a zeroed
 * proto->priv_size block as c->p and calls proto->start. */

/* The name of c's state, for logs. */
const char *conn_state_name(const struct conn *c);
void conn_set_state(struct conn *c, int s);
/* One log line about c: "conn=ID vm=VM [user=U ]from=H: ...". */
void conn_log(struct conn *c, enum log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Record that c is over (the first reason wins); the callback on the stack
 * destroys it. */
void conn_fail(struct conn *c, enum log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The connection leaves the unauthenticated count and the login timer. */
void conn_authenticated(struct conn *c);

/* A kept-alive HTTP connection between requests (the browser console):
 * it leaves the unauthenticated count (it has completed a request that
 * needed no credentials; the protocol keeps its own per-source and global
 * limits on such connections) and login_timer becomes an idle limit of
 * secs that closes it quietly, without counting towards a ban. */
void conn_keepalive_idle(struct conn *c, double secs);
/* Such a connection now carries credentials (a login or a VM list):
 * count it as unauthenticated again under the same caps as a new
 * connection (no eviction) and restart login_timeout.  False when a cap is
 * full (the protocol refuses the request and closes). */
bool conn_unauth_again(struct conn *c);

/* Viewer side. */
void conn_front_queue(struct conn *c, const void *p, size_t n);
/* Read at most max bytes into dst.  Count, 0 (nothing now) or -1 (closed
 * or failed: conn_fail called). */
ssize_t conn_front_read(struct conn *c, struct buf *dst, size_t max);
/* The viewer's first bytes were a PROXY header although its source is not
 * in proxy_protocol: end c with a line that says so and return true; else
 * false (the caller reports its own error).  For the protocols' first
 * parse failure (and the core's TLS handshake failure). */
bool conn_stray_proxy_header(struct conn *c);
/* Read until c->rx holds want bytes (pre-TLS: exactly, so no ClientHello
 * byte is taken).  1 there, 0 not yet, -1 failed. */
int conn_front_read_exact(struct conn *c, size_t want);
/* Start server TLS; the handshake then runs in CS_TLS_HANDSHAKE and goes to
 * next. */
void conn_start_tls(struct conn *c, int next);
/* Close once what is queued for the viewer is out (lingering close,
 * bounded by CONN_LINGER). */
void conn_close_after(struct conn *c);

/* The login: user in c->user, password pass (wiped by the caller). */
void conn_login(struct conn *c, const char *pass);
/* A VM list request (AUTHP_REQ_VMS) for c->user: answered like a login
 * (login_answer sees resp->vms, then login_ok or, after the fail delay,
 * login_refuse); c->vm is not used. */
void conn_login_vms(struct conn *c, const char *pass);
/* A failed login decided without the helper: answer after the fail delay. */
void conn_login_failed(struct conn *c);

/* Backend: connect to be (unix, tcp, or the QMP handoff for a vnc qmp:
 * backend); proto->backend_up or proto->vm_unavailable follow. */
void conn_backend_open(struct conn *c, const struct cfg_backend *be);
/* Queue bytes for the VM. */
void conn_back_queue(struct conn *c, const void *p, size_t n);

/* Ask the QMP broker in the privileged auth helper to run op (with arg,
 * and c->q.passfd attached when the op hands a socket to QEMU) on c's VM:
 * the network process never opens a monitor.  done(c, NULL, false) on
 * success, done(c, reason, refused) on failure (refused: QEMU said no);
 * the state is CS_QMP meanwhile and c->q.passfd is closed when the answer
 * comes. */
void conn_qmp(struct conn *c, enum qmpb_op op, const char *arg,
              void (*done)(struct conn *c, const char *err, bool refused));

/* Enter the relay: pipelined handshake bytes in rx/brx go to the streams
 * (unless the side reads into rx/brx), the unauthenticated accounting ends. */
void conn_relay_start(struct conn *c);
/* Run c as if an event had come in (for a protocol's own timer).  c may be
 * destroyed when this returns: the caller must not touch it afterwards. */
void conn_poke(struct conn *c);
/* The VM closed the console during the relay: flush, then close. */
void conn_vm_gone(struct conn *c);
/* The session is relaying (the protocol logged "session started"): it
 * shows in `vmgate status`, the audit trail gets session-open. */
void conn_session_started(struct conn *c);
/* A clipboard event of c: one log line and one audit event, same fields. */
struct clip_event;
void conn_clip_event(struct conn *c, const struct clip_event *ev);
/* A power action of c's user (XVP): one log line and one audit event
 * `power` (action, result: "ok", "failed", "refused", "rate-limited"; reason). */
void conn_power_event(struct conn *c, const char *action, const char *result,
                      const char *reason);
/* End c now (vmgate kick): log and audit who and why, then close. */
void conn_kick(struct conn *c, const char *by, const char *reason);

/* Live connections of proto (NULL: all). */
unsigned conn_count(const struct proxy *px, const struct conn_proto *proto);

#endif
