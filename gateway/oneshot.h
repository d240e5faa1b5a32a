/* gateway/oneshot.h — a small server on the event loop for "one request,
 * one answer, close" protocols: the control socket (gateway/control.c) and
 * the metrics listener (gateway/metrics.c).  It owns what both need alike:
 * accepting with a cap on clients, a bounded request buffer, a deadline per
 * client, queueing one answer and sending it without blocking, closing.
 * The protocol decides when a request is whole and what to answer. */
#ifndef VMGATE_GATEWAY_ONESHOT_H
#define VMGATE_GATEWAY_ONESHOT_H

#include <stdbool.h>
#include <stddef.h>

#include <ev.h>

struct oneshot;

struct oneshot_client {
    struct oneshot *s;
    struct oneshot_client *next, *prev;
    int fd;
    ev_io w;
    ev_timer t;
    char *in;                         /* in_max bytes */
    size_t inlen;
    char *out;
    size_t outlen, outoff;
    void *data;                       /* the protocol's (data_size bytes, zeroed) */
};

struct oneshot_ops {
    size_t in_max;                    /* request buffer */
    size_t data_size;                 /* per-client protocol data */
    unsigned max_clients;
    double timeout;                   /* seconds per client */
    const char *busy;                 /* sent to a client over max_clients (may be NULL) */
    bool drain;                       /* after the answer: FIN, then drain unread bytes */
    /* A new client: 0 keep it, -1 drop it (closed, no answer). */
    int (*accepted)(struct oneshot_client *c);
    /* Bytes arrived (eof: the peer closed; full: the buffer is full).  Answer
     * with oneshot_answer when the request is whole (or bad) and return true
     * (c may be gone then); return false to wait for more.  On eof without
     * an answer the client is closed. */
    bool (*input)(struct oneshot_client *c, bool eof, bool full);
    void *ctx;                        /* the protocol's server (oneshot_ctx) */
    /* The client is about to be freed (answered, timed out, dropped):
     * forget any pointer to it.  May be NULL. */
    void (*closed)(struct oneshot_client *c);
};

struct oneshot *oneshot_new(struct ev_loop *loop, int fd, const struct oneshot_ops *ops);
void oneshot_free(struct oneshot *s);
void *oneshot_ctx(const struct oneshot_client *c);
/* Queue the answer (the n bytes at p, copied) and send it; the client is
 * closed once it is out.  Out of memory: the client is closed now. */
void oneshot_answer(struct oneshot_client *c, const void *p, size_t n);
/* The request is whole and its answer comes later (oneshot_answer from
 * another callback): stop reading from c and give it timeout seconds from
 * now. */
void oneshot_hold(struct oneshot_client *c, double timeout);

#endif
