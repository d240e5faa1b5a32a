/* proxy/proxy.h — viewer connections: the protocol front (VeNCrypt, the
 * SPICE link), the login, the backend connection to the VM, and the relay.
 *
 * The gateway owns the listeners and hands every accepted socket to
 * proxy_accept() with the listener's protocol.  From then on the connection
 * is a state machine in the connection core (proxy/core.h) driven by libev
 * events on its sockets; each connection's failure closes only that
 * connection. */
#ifndef VMGATE_PROXY_H
#define VMGATE_PROXY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <ev.h>
#include <openssl/ssl.h>

#include "auth/auth.h"
#include "auth/idle.h"
#include "common/config.h"

struct conn;
/* The protocols a listener can speak (proxy/vnc_conn.c, proxy/spice_conn.c). */
struct conn_proto;
extern const struct conn_proto vnc_proto, spice_proto, web_proto;
/* The VM a web_proto connection has before its request names one. */
extern const struct cfg_vm web_vm_none;
/* RFB with security None on socket_dir/VM.vnc, authorized by the peer's uid. */
extern const struct conn_proto vnc_local_proto;
/* SPICE on socket_dir/VM.spice (spice_conn.c): no ticket, authorized by uid. */
extern const struct conn_proto spice_local_proto;
/* The serial console on socket_dir/VM.serial (serial_conn.c), authorized by uid. */
extern const struct conn_proto serial_proto;

/* Why a viewer's connection ended before its login: the kinds of
 * vmgate_handshake_failures_total (proxy_hs_kind_name). */
enum proxy_hs_kind {
    PROXY_HS_TLS,        /* the TLS handshake failed */
    PROXY_HS_RFB,        /* bad RFB / VeNCrypt version, security type or credentials message */
    PROXY_HS_SPICE,      /* bad SPICE link or SASL message */
    PROXY_HS_HTTP,       /* web port: a bad HTTP request or WebSocket upgrade (4xx but 404) */
    PROXY_HS_PROXY,      /* a bad, missing or unexpected PROXY header */
    PROXY_HS_TIMEOUT,    /* first_byte_timeout, or login_timeout before the credentials */
    PROXY_HS_KINDS
};
const char *proxy_hs_kind_name(enum proxy_hs_kind k);

/* Counters for the metrics (since start; this network process). */
#define PROXY_LOGIN_BUCKETS 8
extern const double proxy_login_buckets[PROXY_LOGIN_BUCKETS];   /* seconds, ascending */
struct proxy_stats {
    uint64_t logins_ok, logins_failed;
    uint64_t login_le[PROXY_LOGIN_BUCKETS];  /* logins answered within bucket i (not cumulative) */
    uint64_t login_count;
    double login_sum;                        /* seconds */
    uint64_t hs_failed[PROXY_HS_KINDS];      /* handshakes that failed, by kind */
    uint64_t *vm_bytes;                      /* [2 * vm index + dir]: to_vm, from_vm */
};

struct audit;

/* A source the auth helper banned (AUTHP_EVT_BAN), for viewers that come
 * through a balancer: the kernel ban set sees only the balancer, so the
 * core checks the source of a PROXY header against this list. */
#define PROXY_SKEY_MAX 64
#define PROXY_BANS_MAX 1024
struct proxy_ban {
    char key[PROXY_SKEY_MAX];      /* source key (proxy_source_key) */
    uint64_t until_ms;             /* wall clock, ms since the epoch */
};

struct proxy {
    struct ev_loop *loop;
    const struct cfg *cfg;
    SSL_CTX *ssl_ctx;
    struct auth_client *auth;
    struct conn *conns;            /* every live connection */
    unsigned n_conns;
    unsigned n_unauth;             /* connections not yet relaying */
    uint64_t next_id;              /* connection ids, when id_counter is NULL */
    uint64_t *id_counter;          /* shared by the network processes (processes > 1) */
    ev_tstamp cap_log_at;          /* rate limit for "too many" lines */
    unsigned cap_suppressed;
    ev_tstamp evict_log_at;        /* rate limit for "evicted" lines */
    unsigned evict_suppressed;
    struct audit *audit;           /* NULL: no audit trail (proxy/audit.h) */
    bool audit_bans;               /* write ban / unban events (network process 1) */
    struct proxy_ban *bans;        /* PROXY_BANS_MAX, calloc'd; n_bans in use */
    size_t n_bans;
    uint64_t pp2_seq;              /* unique keys of connections before their PROXY header */
    struct proxy_stats st;
    struct idle_view *idle;        /* per cfg->vms[i]: idle state the helper published */
    unsigned *idle_reported;       /* per cfg->vms[i]: session count last reported */
};

/* vm's live sessions, one line each: "  USER via VIA from SOURCE since TIME"
 * (user names escaped), into w (raw text). */
struct jw;
void proxy_vm_sessions_text(const struct proxy *px, const char *vm, struct jw *w);

void proxy_init(struct proxy *px, struct ev_loop *loop, const struct cfg *cfg,
                SSL_CTX *ssl_ctx, struct auth_client *auth);
/* Take over an accepted, non-blocking socket fd for vm, speaking proto.
 * Enforces the unauthenticated-connection caps (closing fd with a log line
 * when one bites) and starts the handshake. */
void proxy_accept(struct proxy *px, const struct conn_proto *proto, const struct cfg_vm *vm,
                  int fd, const struct sockaddr *sa);
/* May a new unauthenticated connection from rhost (counted under source
 * key skey, see proxy_source_key) start?  Enforces max_unauth (all
 * protocols; when it is reached, proxy_admit may evict another source's
 * connection to make room, see conn_evict_for) and max_unauth_per_source
 * (VNC and SPICE together), logging a refusal at most once a second.
 * proto is put before "connection" in that line ("" or "SPICE "). */
bool proxy_admit(struct proxy *px, const char *rhost, const char *skey, const char *proto);
/* The id for a new connection (unique across the network processes). */
uint64_t proxy_new_id(struct proxy *px);

/* The auth helper banned evt->key until evt->until_ms, or its ban ended
 * (ctx: the struct proxy; an auth_ban_cb): keep the list, and with
 * audit_bans write the audit event ban (until) or unban. */
struct authp_ban_evt;
void proxy_ban_event(void *ctx, const struct authp_ban_evt *evt);
/* Is source key skey banned at now_ms (wall clock)?  *until gets the end. */
bool proxy_banned(const struct proxy *px, const char *skey, uint64_t now_ms, uint64_t *until);
/* RFC 3339 UTC with milliseconds ("2026-12-07T05:48:11.123Z") of ms since
 * the epoch, as the audit trail writes times.  Pure. */
void proxy_time_str(uint64_t ms, char *out, size_t outsz);
/* idle_pause: report vm's live session count of this process to the auth
 * helper when it changed (the helper owns the idle timers; auth/idle.h). */
void proxy_idle_report(struct proxy *px, const char *vm);
/* vm's state as `vmgate status` shows it: "paused by vmgate (idle since
 * ...)", QEMU's status word the helper saw last, or "unknown".  Returns out. */
const char *proxy_vm_state(const struct proxy *px, const char *vm, char *out, size_t outsz);

/* Free what proxy_init allocated (after proxy_close_all). */
void proxy_fini(struct proxy *px);

/* The live sessions (past the login, relaying) as a JSON array of objects
 * {"id","vm","user","source","via","since","bytes_to_vm","bytes_from_vm"}
 * written with common/json.h's writer. */
struct jw;
void proxy_sessions_json(const struct proxy *px, struct jw *w);
/* The same as a table, one line per session (user names escaped). */
void proxy_sessions_text(const struct proxy *px, struct jw *w);
/* Sessions of vm (by name) now. */
unsigned proxy_vm_sessions(const struct proxy *px, const char *vm);
/* End the sessions that match: id (0: any), user and vm (NULL: any); at
 * least one must be given.  by and reason go to the log and the audit
 * trail.  Returns how many ended. */
unsigned proxy_kick(struct proxy *px, uint64_t id, const char *user, const char *vm,
                    const char *by, const char *reason);
/* Prometheus text format of the counters and gauges into w's buffer
 * (raw text, not JSON: only jw_raw is used): this network process's own
 * (gateway/metrics.c sums them over the processes). */
void proxy_metrics_text(const struct proxy *px, struct jw *w);
/* Sources banned now (helper's and by hand), as this process knows them. */
unsigned proxy_bans_now(const struct proxy *px);
/* A ban made by hand (`vmgate firewall ban`, through the control socket):
 * key (a source key or prefix) until until_ms, or (banned false) lifted.
 * Keeps the list like proxy_ban_event; with audit (network process 1)
 * writes the audit event with by "admin" and admin (the admin's name).
 * 0, or -1 when key is not an address or prefix. */
int proxy_ban_manual(struct proxy *px, const char *key, uint64_t until_ms, bool banned,
                     const char *admin, bool audit);

/* Close every connection and forget every SPICE session (shutdown). */
void proxy_close_all(struct proxy *px, const char *why);
/* A config reload replaced the config px->cfg points at; old (still
 * alive) is the one before.  Carries the per-VM byte counters and the
 * idle_pause views over by VM name into arrays of the new config's size,
 * and reports the session count of each VM that gained idle_pause to the
 * auth helper.  0, or -1 when out of memory (counters/views start again). */
int proxy_cfg_changed(struct proxy *px, const struct cfg *old);
/* The lowest id of a live connection, or UINT64_MAX when there is none
 * (a config retired by a reload is freed once no older connection is
 * left). */
uint64_t proxy_oldest_id(const struct proxy *px);
/* The next connection id this process would hand out is above this one. */
uint64_t proxy_last_id(const struct proxy *px);
/* Replace the TLS context used for new connections (certificate reload). */
void proxy_set_ssl_ctx(struct proxy *px, SSL_CTX *ctx);

/* Format a peer's address as "1.2.3.4" or "::1" (no port; IPv4-mapped as
 * IPv4; "local" for anything else): addr_sockaddr_str(), common/addr.h.
 * Kept under this name for proxy/conn.c and proxy/spice_conn.c. */
void proxy_addr_str(const struct sockaddr *sa, char *out, size_t outsz);

/* The key a source's unauthenticated connections are counted under, the
 * same one the auth helper bans (auth/bans.c ban_key): an IPv4 address (or
 * an IPv4-mapped IPv6 one) as "192.0.2.7", an IPv6 address as its /64,
 * "2001:db8:1:2::/64" (one host usually owns a whole /64, so counting per
 * address would give it 2^64 times the per-source cap), anything else
 * (AF_UNIX) as "local".  Pure; out gets at most PROXY_SKEY_MAX bytes.
 * (common/addr.c may grow the same function; this one can be swapped.) */
void proxy_source_key(const struct sockaddr *sa, char *out, size_t outsz);

/* One unauthenticated slot, as the eviction choice sees it. */
struct proxy_slot {
    const char *skey;         /* source key (proxy_source_key) */
    uint64_t seq;             /* accept order (the connection id): lower is older */
    bool evictable;           /* still before its credentials reached the helper */
};
/* The global cap is full and a connection from newkey asks for a slot:
 * which slot, if any, to evict for it.  The victim is the oldest evictable
 * slot of the source holding the most slots among the sources that have an
 * evictable one (ties: the source whose evictable slot is older), and only if newkey holds fewer than that
 * source would after the move (held(newkey) + 1 < held(victim's source)),
 * so sources never trade a slot back and forth and a source can never
 * lose a slot to one that holds as many.  Counts include slots that are
 * not evictable.  Returns the victim's index in slots[0..n-1], or -1.
 * Pure; O(n log n) (sorts a copy), run only when the global cap is full. */
ssize_t proxy_pick_evict(const struct proxy_slot *slots, size_t n, const char *newkey);

#endif
