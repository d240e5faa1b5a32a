/* gateway/oneshot.c — see oneshot.h. */
#include "gateway/oneshot.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct oneshot {
    struct ev_loop *loop;
    int fd;
    ev_io w;
    struct oneshot_ops ops;
    struct oneshot_client *clients;
    unsigned n;
};

static void client_free(struct oneshot_client *c)
{
    struct oneshot *s = c->s;
    if (s->ops.closed && c->data)
        s->ops.closed(c);
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
    free(c->in);
    free(c->data);
    free(c);
}

void *oneshot_ctx(const struct oneshot_client *c) { return c->s->ops.ctx; }

void oneshot_answer(struct oneshot_client *c, const void *p, size_t n)
{
    c->out = malloc(n ? n : 1);
    if (!c->out) {
        client_free(c);
        return;
    }
    memcpy(c->out, p, n);
    c->outlen = n;
    c->outoff = 0;
    ev_io_stop(c->s->loop, &c->w);
    ev_io_set(&c->w, c->fd, EV_WRITE);
    ev_io_start(c->s->loop, &c->w);
}

void oneshot_hold(struct oneshot_client *c, double timeout)
{
    ev_io_stop(c->s->loop, &c->w);
    ev_timer_stop(c->s->loop, &c->t);
    ev_timer_set(&c->t, timeout, 0);
    ev_timer_start(c->s->loop, &c->t);
}

static void client_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct oneshot_client *c = w->data;
    (void)loop;
    if (c->out) {
        if (!(revents & EV_WRITE))
            return;
        ssize_t k = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
        if (k < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (k <= 0) {
            client_free(c);
            return;
        }
        c->outoff += (size_t)k;
        if (c->outoff < c->outlen)
            return;
        if (c->s->ops.drain) {
            /* FIN, then a short drain so unread request bytes cause no RST */
            shutdown(c->fd, SHUT_WR);
            char junk[512];
            while (recv(c->fd, junk, sizeof junk, MSG_DONTWAIT) > 0)
                ;
        }
        client_free(c);
        return;
    }
    ssize_t k = recv(c->fd, c->in + c->inlen, c->s->ops.in_max - c->inlen, 0);
    if (k < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (k > 0)
        c->inlen += (size_t)k;
    bool eof = k <= 0;
    if (!c->s->ops.input(c, eof, c->inlen == c->s->ops.in_max) && eof)
        client_free(c);
}

static void timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    client_free(w->data);
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct oneshot *s = w->data;
    (void)revents;
    for (int i = 0; i < 16; i++) {
        int fd = accept4(s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        struct oneshot_client *c = s->n < s->ops.max_clients ? calloc(1, sizeof *c) : NULL;
        if (c && (!(c->in = malloc(s->ops.in_max)) ||
                  (s->ops.data_size && !(c->data = calloc(1, s->ops.data_size))))) {
            free(c->in);
            free(c);
            c = NULL;
        }
        if (!c) {
            if (s->ops.busy)
                (void)!send(fd, s->ops.busy, strlen(s->ops.busy), MSG_NOSIGNAL | MSG_DONTWAIT);
            close(fd);
            continue;
        }
        c->s = s;
        c->fd = fd;
        if (s->ops.accepted && s->ops.accepted(c) != 0) {
            close(fd);
            free(c->data);
            free(c->in);
            free(c);
            continue;
        }
        c->next = s->clients;
        if (s->clients)
            s->clients->prev = c;
        s->clients = c;
        s->n++;
        ev_io_init(&c->w, client_cb, fd, EV_READ);
        c->w.data = c;
        ev_io_start(loop, &c->w);
        ev_timer_init(&c->t, timeout_cb, s->ops.timeout, 0);
        c->t.data = c;
        ev_timer_start(loop, &c->t);
    }
}

struct oneshot *oneshot_new(struct ev_loop *loop, int fd, const struct oneshot_ops *ops)
{
    struct oneshot *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->loop = loop;
    s->fd = fd;
    s->ops = *ops;
    ev_io_init(&s->w, accept_cb, fd, EV_READ);
    s->w.data = s;
    ev_io_start(loop, &s->w);
    return s;
}

void oneshot_free(struct oneshot *s)
{
    if (!s)
        return;
    while (s->clients)
        client_free(s->clients);
    ev_io_stop(s->loop, &s->w);
    free(s);
}
