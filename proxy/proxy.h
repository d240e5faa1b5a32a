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
#include "common/config.h"

struct conn;
/* The protocols a listener can speak (proxy/vnc_conn.c, proxy/spice_conn.c). */
struct conn_proto;
extern const struct conn_proto vnc_proto, spice_proto, web_proto;
/* The VM a web_proto connection has before its request names one. */
extern const struct cfg_vm web_vm_none;
/* RFB with security None on socket_dir/VM.vnc, authorized by the peer's uid. */
extern const struct conn_proto vnc_local_proto;

/* Counters for the metrics (since start; this network process). */
#define PROXY_LOGIN_BUCKETS 8
extern const double proxy_login_buckets[PROXY_LOGIN_BUCKETS];   /* seconds, ascending */
struct proxy_stats {
    uint64_t logins_ok, logins_failed;
    uint64_t login_le[PROXY_LOGIN_BUCKETS];  /* logins answered within bucket i (not cumulative) */
    uint64_t login_count;
    double login_sum;                        /* seconds */
    uint64_t tls_failed;                     /* TLS handshakes that failed */
    uint64_t *vm_bytes;                      /* [2 * vm index + dir]: to_vm, from_vm */
};

struct audit;

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
    struct proxy_stats st;
    struct proxy_vm_note *vm_notes;  /* per-VM state notes (proxy_vm_note_set) */
};

/* A VM's state note, kept by the network process for `vmgate vm VM status`,
 * which prints it after QEMU's own word ("paused"): the seam for state
 * that vmgate itself caused, e.g. idle_pause's "paused by vmgate (idle
 * since 2026-12-07T06:10:00Z)".  note NULL or "" clears it.  Copied (at
 * most PROXY_VM_NOTE_MAX - 1 bytes).  0, or -1 (out of memory). */
#define PROXY_VM_NOTE_MAX 160
int proxy_vm_note_set(struct proxy *px, const char *vm, const char *note);
/* vm's note, or NULL. */
const char *proxy_vm_note(const struct proxy *px, const char *vm);
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
 * (raw text, not JSON: only jw_raw is used). */
void proxy_metrics_text(const struct proxy *px, struct jw *w);

/* Close every connection and forget every SPICE session (shutdown). */
void proxy_close_all(struct proxy *px, const char *why);
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
#define PROXY_SKEY_MAX 64
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
