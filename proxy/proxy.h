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
#include <ev.h>
#include <openssl/ssl.h>

#include "auth/auth.h"
#include "common/config.h"

struct conn;
/* The protocols a listener can speak (proxy/vnc_conn.c, proxy/spice_conn.c). */
struct conn_proto;
extern const struct conn_proto vnc_proto, spice_proto;

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
};

void proxy_init(struct proxy *px, struct ev_loop *loop, const struct cfg *cfg,
                SSL_CTX *ssl_ctx, struct auth_client *auth);
/* Take over an accepted, non-blocking socket fd for vm, speaking proto.
 * Enforces the unauthenticated-connection caps (closing fd with a log line
 * when one bites) and starts the handshake. */
void proxy_accept(struct proxy *px, const struct conn_proto *proto, const struct cfg_vm *vm,
                  int fd, const struct sockaddr *sa);
/* May a new unauthenticated connection from rhost start?  Enforces
 * max_unauth (all protocols) and max_unauth_per_source (VNC and SPICE
 * together), logging a refusal at most once a second.  proto is put before
 * "connection" in that line ("" or "SPICE "). */
bool proxy_admit(struct proxy *px, const char *rhost, const char *proto);
/* The id for a new connection (unique across the network processes). */
uint64_t proxy_new_id(struct proxy *px);

/* Close every connection and forget every SPICE session (shutdown). */
void proxy_close_all(struct proxy *px, const char *why);
/* Replace the TLS context used for new connections (certificate reload). */
void proxy_set_ssl_ctx(struct proxy *px, SSL_CTX *ctx);

/* Format a peer's address as "1.2.3.4" or "::1" (no port; IPv4-mapped as
 * IPv4; "local" for anything else): addr_sockaddr_str(), common/addr.h.
 * Kept under this name for proxy/conn.c and proxy/spice_conn.c. */
void proxy_addr_str(const struct sockaddr *sa, char *out, size_t outsz);

#endif
