/* gateway/metrics.c — see metrics.h. */
#include "gateway/metrics.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/addr.h"
#include "common/config.h"
#include "common/json.h"
#include "common/log.h"
#include "proxy/proxy.h"

#define BODY_MAX (1u << 20)

int metrics_listen(const char *spec, char *why, size_t whylen)
{
    char host[CFG_HOST_MAX + 1];
    uint16_t port;
    struct addr_net n;
    struct sockaddr_storage ss;
    socklen_t sl;
    if (addr_hostport_parse(spec, host, sizeof host, &port, why, whylen) < 0 ||
        addr_ip_parse(host, &n) < 0 || addr_sockaddr(&n, port, &ss, &sl) < 0) {
        snprintf(why, whylen, "metrics = %s: need a numeric ADDR:PORT", spec);
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(why, whylen, "socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, sl) == -1 || listen(fd, 16) == -1) {
        snprintf(why, whylen, "metrics = %s: %s", spec, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

struct mclient {
    struct metrics_server *s;
    struct mclient *next, *prev;
    int fd;
    ev_io w;
    ev_timer t;
    char in[METRICS_REQ_MAX];
    size_t inlen;
    char *out;
    size_t outlen, outoff;
};

struct metrics_server {
    struct ev_loop *loop;
    int fd;
    ev_io w;
    struct proxy *px;
    struct mclient *clients;
    unsigned n;
};

static void mclient_free(struct mclient *c)
{
    struct metrics_server *s = c->s;
    ev_io_stop(s->loop, &c->w);
    ev_timer_stop(s->loop, &c->t);
    close(c->fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->n--;
    free(c->out);
    free(c);
}

/* Queue the whole answer and switch to writing. */
static void answer(struct mclient *c, const char *status, const char *ctype, const char *body)
{
    size_t bl = strlen(body);
    size_t cap = bl + 256;
    c->out = malloc(cap);
    if (!c->out) {
        mclient_free(c);
        return;
    }
    int hl = snprintf(c->out, cap,
                      "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                      "Connection: close\r\n\r\n", status, ctype, bl);
    memcpy(c->out + hl, body, bl);
    c->outlen = (size_t)hl + bl;
    ev_io_stop(c->s->loop, &c->w);
    ev_io_set(&c->w, c->fd, EV_WRITE);
    ev_io_start(c->s->loop, &c->w);
}

static void serve(struct mclient *c, enum metrics_req r)
{
    static const char text[] = "text/plain; charset=utf-8";
    switch (r) {
    case METRICS_GET: {
        char *body = malloc(BODY_MAX);
        if (!body) {
            mclient_free(c);
            return;
        }
        struct jw w;
        jw_init(&w, body, BODY_MAX);
        proxy_metrics_text(c->s->px, &w);
        if (w.overflow)
            answer(c, "500 Internal Server Error", text, "metrics too large\n");
        else
            answer(c, "200 OK", "text/plain; version=0.0.4; charset=utf-8", body);
        free(body);
        return;
    }
    case METRICS_NOT_FOUND:
        answer(c, "404 Not Found", text, "only /metrics is here\n");
        return;
    case METRICS_BAD_METHOD:
        answer(c, "405 Method Not Allowed", text, "only GET\n");
        return;
    case METRICS_BAD:
    case METRICS_NEED:
        answer(c, "400 Bad Request", text, "not an HTTP/1.x request\n");
        return;
    }
}

static void mclient_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct mclient *c = w->data;
    (void)loop;
    if (c->out) {
        if (!(revents & EV_WRITE))
            return;
        ssize_t k = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
        if (k < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (k <= 0) {
            mclient_free(c);
            return;
        }
        c->outoff += (size_t)k;
        if (c->outoff == c->outlen) {
            /* FIN, then a short drain so unread request bytes cause no RST */
            shutdown(c->fd, SHUT_WR);
            char junk[512];
            while (recv(c->fd, junk, sizeof junk, MSG_DONTWAIT) > 0)
                ;
            mclient_free(c);
        }
        return;
    }
    ssize_t k = recv(c->fd, c->in + c->inlen, sizeof c->in - c->inlen, 0);
    if (k < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (k <= 0) {
        mclient_free(c);                /* closed before a whole request */
        return;
    }
    c->inlen += (size_t)k;
    enum metrics_req r = metrics_parse(c->in, c->inlen);
    if (r != METRICS_NEED) {
        serve(c, r);
        return;
    }
    if (c->inlen == sizeof c->in)
        answer(c, "431 Request Header Fields Too Large", "text/plain; charset=utf-8",
               "request head too long\n");
}

static void mclient_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    mclient_free(w->data);
}

static void maccept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct metrics_server *s = w->data;
    (void)revents;
    for (int i = 0; i < 16; i++) {
        int fd = accept4(s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        struct mclient *c = s->n < METRICS_CLIENTS_MAX ? calloc(1, sizeof *c) : NULL;
        if (!c) {
            close(fd);
            continue;
        }
        c->s = s;
        c->fd = fd;
        c->next = s->clients;
        if (s->clients)
            s->clients->prev = c;
        s->clients = c;
        s->n++;
        ev_io_init(&c->w, mclient_cb, fd, EV_READ);
        c->w.data = c;
        ev_io_start(loop, &c->w);
        ev_timer_init(&c->t, mclient_timeout_cb, METRICS_TIMEOUT, 0);
        c->t.data = c;
        ev_timer_start(loop, &c->t);
    }
}

struct metrics_server *metrics_server_new(struct ev_loop *loop, int fd, struct proxy *px)
{
    struct metrics_server *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->loop = loop;
    s->fd = fd;
    s->px = px;
    ev_io_init(&s->w, maccept_cb, fd, EV_READ);
    s->w.data = s;
    ev_io_start(loop, &s->w);
    return s;
}

void metrics_server_free(struct metrics_server *s)
{
    if (!s)
        return;
    while (s->clients)
        mclient_free(s->clients);
    ev_io_stop(s->loop, &s->w);
    free(s);
}
