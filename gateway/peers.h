/* gateway/peers.h — with `processes` > 1: network process 1 (which serves
 * the control socket) asks the other network processes for their sessions
 * and has them kick theirs, over one SOCK_SEQPACKET socketpair each.  The
 * supervisor creates the pairs before it forks and keeps both ends, so a
 * replaced network process inherits its end of the same pair.
 *
 * A request is one datagram "SEQ LINE" where LINE is a control request
 * (gateway/control.h format, "vmgate1 VERB ..."): `status`,
 * `kick id=N user=U vm=V by=B reason=R`, `metrics`, `ban key=K until=MS`
 * or `unban key=K`.  The answer is "SEQ BODY":
 *   status:  the sessions as a JSON array, '\n', the table rows (no header),
 *            "--\n", then "NAME COUNT\n" per VM;
 *   kick:    the number of sessions ended;
 *   metrics: the process's own Prometheus text (proxy_metrics_text), which
 *            network process 1 sums (gateway/metrics.c);
 *   ban, unban: "ok" (a ban made by hand, kept in the process's ban list).
 * Answers to an older SEQ are dropped. */
#ifndef VMGATE_GATEWAY_PEERS_H
#define VMGATE_GATEWAY_PEERS_H

#include <stdbool.h>
#include <stddef.h>

#include <ev.h>

#define PEER_MSG_MAX (192u * 1024u)   /* one datagram either way */

struct proxy;
struct peer_server;
struct peer_client;

/* A network process other than 1: answer requests on fd from px. */
struct peer_server *peer_server_new(struct ev_loop *loop, int fd, struct proxy *px);
void peer_server_free(struct peer_server *s);

/* Network process 1: the other processes' ends are fds[0..n-1] (not
 * owned). */
struct peer_client *peer_client_new(struct ev_loop *loop, const int *fds, unsigned n);
void peer_client_free(struct peer_client *pc);
/* bodies[i]: the answer of peer i (NUL-terminated), NULL when it did not
 * answer within the timeout; valid during the call. */
typedef void (*peer_done_cb)(void *ctx, char *const *bodies, unsigned n);
/* Send line to every peer; cb(ctx, ...) once all answered or after 1 s.
 * One question is open at a time; the others wait in a queue (32) and go
 * out in turn.  -1: the queue is full or line too long (no callback). */
int peer_ask(struct peer_client *pc, const char *line, peer_done_cb cb, void *ctx);
/* The asker went away: no callback for ctx. */
void peer_cancel(struct peer_client *pc, void *ctx);

/* The answer the peer side builds for line (pure but for px): malloc'd,
 * NULL for an unknown request.  Exposed for the unit test. */
char *peer_answer(struct proxy *px, const char *line);

#endif
