/* gateway/metrics.h — `metrics = ADDR:PORT`: Prometheus text format at
 * GET /metrics, a minimal HTTP/1.1 server on the network process's loop.
 *
 * One request per connection (the answer says Connection: close); the
 * request head must arrive within METRICS_TIMEOUT and METRICS_REQ_MAX
 * bytes; at most METRICS_CLIENTS_MAX at once (more are closed at accept).
 * GET /metrics (a query string is ignored) is 200; another path 404;
 * another method 405; a head that is not HTTP/1.x 400; too long 431. */
#ifndef VMGATE_GATEWAY_METRICS_H
#define VMGATE_GATEWAY_METRICS_H

#include <stddef.h>

#include <ev.h>

#define METRICS_REQ_MAX     4096
#define METRICS_CLIENTS_MAX 16
#define METRICS_TIMEOUT     5.0

/* What a request head asks for. */
enum metrics_req {
    METRICS_NEED = 0,       /* the head is not complete yet */
    METRICS_GET,            /* GET /metrics */
    METRICS_NOT_FOUND,      /* GET of another path */
    METRICS_BAD_METHOD,     /* a well-formed request with another method */
    METRICS_BAD,            /* not an HTTP/1.x request */
};
/* Classify the bytes received so far (buf[0..len)).  Pure. */
enum metrics_req metrics_parse(const char *buf, size_t len);

/* Bind ADDR:PORT (numeric, "[v6]:port"); the fd, or -1 with why. */
int metrics_listen(const char *spec, char *why, size_t whylen);

struct proxy;
struct metrics_server;
struct metrics_server *metrics_server_new(struct ev_loop *loop, int fd, struct proxy *px);
void metrics_server_free(struct metrics_server *s);
/* processes = nproc > 1: GET /metrics asks the other network processes
 * (pc, gateway/peers.h) for their counters and answers the sum once all
 * answered or after the peers' timeout (1 s), with what it has; the
 * gauges vmgate_network_processes and _answered say how many are in it. */
struct peer_client;
void metrics_server_set_peers(struct metrics_server *s, struct peer_client *pc, unsigned nproc);

/* Sum Prometheus text: every sample of own plus the same series in
 * bodies[0..n-1] (NULL: left out); a series missing from a body adds 0,
 * one only in a body is dropped; vmgate_bans (every process keeps the
 * same list) is own's.  Comments are copied.  Pure; into w (jw_raw). */
struct jw;
void metrics_merge(const char *own, char *const *bodies, unsigned n, struct jw *w);

#endif
