/* proxy/serial_hub.c — see serial_hub.h.
 *
 * Events only move bytes and then call hub_update(), the one place that
 * derives the watcher masks of the QEMU socket and of every session. */
#include "proxy/serial_hub.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/log.h"
#include "proxy/backend.h"
#include "proxy/serial_ring.h"

#define TOQ_CAP       4096        /* keyboard bytes waiting for QEMU */
#define BACKOFF_MIN   0.25
#define BACKOFF_MAX   5.0
#define READ_CHUNK    16384
#define USER_MAX      255
#define SERIAL_PAIR_SNDBUF 16384

struct ssess {
    struct ssess *next;           /* newest first */
    struct serial_hub *h;
    int fd;                       /* the hub's end of the socketpair */
    ev_io w;
    int mask;
    uint64_t conn;
    char user[USER_MAX + 1];
    struct serial_outq q;
    bool gone;                    /* its connection closed: detach at the next update */
};

struct serial_hub {
    struct serial_hub *next;
    struct ev_loop *loop;
    /* copies, not a pointer into the config: a reload retires and later
     * frees the config a hub was made from (serial_hubs_reload) */
    char name[CFG_NAME_MAX + 1];
    struct cfg_backend be;        /* QEMU's serial chardev socket */
    int qfd;                      /* QEMU's chardev socket, -1 when down */
    ev_io qw;
    int qmask;
    bool connecting;              /* non-blocking connect in progress */
    bool up;
    bool was_up;                  /* sessions were told it went down */
    bool warned;                  /* "not there" logged at info once per outage */
    ev_timer retry;
    double backoff;
    struct serial_ring ring;
    struct buf toq;               /* the keyboard holder's bytes for QEMU */
    struct ssess *sessions;
    struct ssess *writer;         /* who holds the keyboard (NULL: nobody attached) */
    unsigned n;
};

static struct serial_hub *hubs;

static void hub_update(struct serial_hub *h);
static void hub_connect(struct serial_hub *h);

static void hlog(const struct serial_hub *h, enum log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void hlog(const struct serial_hub *h, enum log_level lvl, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_msg(lvl, "vm=%s serial: %s", h->name, msg);
}

/* ---- sessions ---- */

/* Send s what its queue holds, as far as the socket takes it. */
static void sess_flush(struct ssess *s)
{
    while (!s->gone && !buf_empty(&s->q.b)) {
        ssize_t n = send(s->fd, buf_head(&s->q.b), buf_len(&s->q.b), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            buf_consume(&s->q.b, (size_t)n);
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            break;
        s->gone = true;
    }
    buf_trim(&s->q.b);
}

/* Queue bytes for s (a drop of its backlog is logged once per session). */
static void sess_put(struct ssess *s, const void *p, size_t n)
{
    size_t lost = serial_outq_put(&s->q, p, n);
    if (lost == (size_t)-1) {
        s->gone = true;
        return;
    }
    if (lost)
        hlog(s->h, s->q.drops == 1 ? LOG_LVL_INFO : LOG_LVL_DEBUG,
             "conn=%llu: %zu bytes dropped for a terminal that reads too slowly",
             (unsigned long long)s->conn, lost);
}

static void sess_say(struct ssess *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sess_say(struct ssess *s, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (k > 0)
        sess_put(s, line, (size_t)k < sizeof line ? (size_t)k : sizeof line - 1);
}

static void sess_free(struct ssess *s)
{
    ev_io_stop(s->h->loop, &s->w);
    close(s->fd);
    serial_outq_free(&s->q);
    free(s);
}

/* Remove the sessions whose connection closed; pass the keyboard on. */
static void sess_reap(struct serial_hub *h)
{
    struct ssess **pp = &h->sessions;
    bool writer_left = false;
    char left[USER_MAX + 1] = "";
    while (*pp) {
        struct ssess *s = *pp;
        if (!s->gone) {
            pp = &s->next;
            continue;
        }
        *pp = s->next;
        h->n--;
        hlog(h, LOG_LVL_DEBUG, "conn=%llu detached (%u left)", (unsigned long long)s->conn, h->n);
        if (s == h->writer) {
            h->writer = NULL;
            writer_left = true;
            snprintf(left, sizeof left, "%s", s->user);
        }
        sess_free(s);
    }
    if (writer_left && h->sessions) {
        h->writer = h->sessions;                /* the newest one still there */
        buf_free(&h->toq);
        sess_say(h->writer, "\r\n[vmgate: you have the keyboard (%s left)]\r\n", left);
        sess_flush(h->writer);
    }
}

static void sess_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct ssess *s = w->data;
    struct serial_hub *h = s->h;
    (void)loop;
    if (revents & EV_READ) {
        uint8_t tmp[4096];
        bool typing = s == h->writer && h->up;
        size_t room = typing ? buf_room(&h->toq) : sizeof tmp;
        if (room > sizeof tmp)
            room = sizeof tmp;
        if (room) {
            ssize_t n = recv(s->fd, tmp, room, MSG_DONTWAIT);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
                s->gone = true;
            else if (n > 0 && typing)
                buf_put(&h->toq, tmp, (size_t)n);
            /* else: not the keyboard holder (or no QEMU): dropped */
        }
    }
    if (revents & EV_WRITE)
        sess_flush(s);
    hub_update(h);
}

/* ---- QEMU's side ---- */

static void fanout(struct serial_hub *h, const uint8_t *p, size_t n)
{
    for (struct ssess *s = h->sessions; s; s = s->next) {
        sess_put(s, p, n);
        sess_flush(s);
    }
}

static void tell_all(struct serial_hub *h, const char *line)
{
    fanout(h, (const uint8_t *)line, strlen(line));
}

static void hub_down(struct serial_hub *h, const char *why)
{
    ev_io_stop(h->loop, &h->qw);
    h->qmask = 0;
    if (h->qfd >= 0)
        close(h->qfd);
    h->qfd = -1;
    buf_free(&h->toq);
    bool was = h->up;
    h->up = h->connecting = false;
    if (was) {
        hlog(h, LOG_LVL_INFO, "QEMU's serial port %s closed (%s); reconnecting",
             h->be.path, why);
        char line[300];
        snprintf(line, sizeof line, "\r\n[vmgate: the VM's serial port closed (%s); waiting "
                 "for it]\r\n", why);
        tell_all(h, line);
        h->was_up = true;
        h->backoff = BACKOFF_MIN;
    } else if (!h->warned) {
        hlog(h, LOG_LVL_INFO, "QEMU's serial port is not there (%s); retrying", why);
        h->warned = true;
    } else {
        hlog(h, LOG_LVL_DEBUG, "still not there (%s); next try in %.2fs", why, h->backoff);
    }
    ev_timer_stop(h->loop, &h->retry);
    ev_timer_set(&h->retry, h->backoff, 0);
    ev_timer_start(h->loop, &h->retry);
    h->backoff = h->backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : h->backoff * 2;
}

static void hub_up(struct serial_hub *h)
{
    h->up = true;
    h->connecting = false;
    h->warned = false;
    h->backoff = BACKOFF_MIN;
    hlog(h, LOG_LVL_INFO, "connected to QEMU's serial port %s", h->be.path);
    if (h->was_up)
        tell_all(h, "\r\n[vmgate: the VM's serial port is back]\r\n");
}

static void q_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct serial_hub *h = w->data;
    (void)loop;
    char why[256];
    if (h->connecting) {
        if (!(revents & EV_WRITE))
            return;
        if (backend_connect_result(h->qfd, why, sizeof why) != 0) {
            hub_down(h, why);
            hub_update(h);
            return;
        }
        hub_up(h);
    }
    if (h->up && (revents & EV_READ)) {
        uint8_t tmp[READ_CHUNK];
        for (int i = 0; i < 4 && h->up; i++) {
            ssize_t n = recv(h->qfd, tmp, sizeof tmp, MSG_DONTWAIT);
            if (n > 0) {
                serial_ring_put(&h->ring, tmp, (size_t)n);
                fanout(h, tmp, (size_t)n);
                if ((size_t)n < sizeof tmp)
                    break;
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EINTR))
                break;
            hub_down(h, n == 0 ? "QEMU closed it" : strerror(errno));
        }
    }
    if (h->up && !buf_empty(&h->toq)) {
        ssize_t n = send(h->qfd, buf_head(&h->toq), buf_len(&h->toq), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0)
            buf_consume(&h->toq, (size_t)n);
        else if (n < 0 && errno != EAGAIN && errno != EINTR)
            hub_down(h, strerror(errno));
        buf_trim(&h->toq);
    }
    hub_update(h);
}

static void retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct serial_hub *h = w->data;
    hub_connect(h);
    hub_update(h);
}

static void hub_connect(struct serial_hub *h)
{
    char why[256];
    int fd = -1;
    int r = backend_connect(&h->be, &fd, why, sizeof why);
    if (r < 0) {
        hub_down(h, why);
        return;
    }
    h->qfd = fd;
    if (r == 0)
        hub_up(h);
    else
        h->connecting = true;
}

/* The watcher masks from the state (the only place that sets them). */
static void hub_update(struct serial_hub *h)
{
    sess_reap(h);
    /* the keyboard holder's bytes may be waiting in the kernel while toq was full */
    if (h->up && !buf_empty(&h->toq)) {
        ssize_t n = send(h->qfd, buf_head(&h->toq), buf_len(&h->toq), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0)
            buf_consume(&h->toq, (size_t)n);
        buf_trim(&h->toq);
    }
    int qm = 0;
    if (h->connecting)
        qm = EV_WRITE;
    else if (h->up)
        qm = EV_READ | (buf_empty(&h->toq) ? 0 : EV_WRITE);
    if (qm != h->qmask || (qm && !ev_is_active(&h->qw))) {
        ev_io_stop(h->loop, &h->qw);
        if (qm) {
            ev_io_set(&h->qw, h->qfd, qm);
            ev_io_start(h->loop, &h->qw);
        }
        h->qmask = qm;
    }
    for (struct ssess *s = h->sessions; s; s = s->next) {
        int m = buf_empty(&s->q.b) ? 0 : EV_WRITE;
        /* the holder is not read while QEMU has not taken what it typed */
        if (!(s == h->writer && h->up && buf_room(&h->toq) == 0))
            m |= EV_READ;
        if (m != s->mask) {
            ev_io_stop(h->loop, &s->w);
            ev_io_set(&s->w, s->fd, m);
            if (m)
                ev_io_start(h->loop, &s->w);
            s->mask = m;
        }
    }
}

/* ---- the registry ---- */

/* A hub for vm, connecting; NULL when out of memory. */
static struct serial_hub *hub_new(struct ev_loop *loop, const struct cfg_vm *vm)
{
    struct serial_hub *h = calloc(1, sizeof *h);
    if (!h || serial_ring_init(&h->ring, SERIAL_RING) != 0) {
        free(h);
        return NULL;
    }
    h->loop = loop;
    snprintf(h->name, sizeof h->name, "%s", vm->name);
    h->be = vm->serial;
    h->qfd = -1;
    h->backoff = BACKOFF_MIN;
    buf_init(&h->toq, TOQ_CAP);
    ev_io_init(&h->qw, q_cb, -1, 0);
    h->qw.data = h;
    ev_timer_init(&h->retry, retry_cb, BACKOFF_MIN, 0);
    h->retry.data = h;
    h->next = hubs;
    hubs = h;
    hub_connect(h);
    hub_update(h);
    return h;
}

/* End h: every session gets line (if any) as far as its socket takes it,
 * then its end of the pair closes (the connection sees the VM side close);
 * QEMU's socket closes; h is freed (already unlinked from hubs). */
static void hub_free(struct serial_hub *h, const char *line)
{
    while (h->sessions) {
        struct ssess *s = h->sessions;
        h->sessions = s->next;
        if (line) {
            sess_put(s, line, strlen(line));
            sess_flush(s);
        }
        sess_free(s);
    }
    ev_io_stop(h->loop, &h->qw);
    ev_timer_stop(h->loop, &h->retry);
    if (h->qfd >= 0)
        close(h->qfd);
    buf_free(&h->toq);
    serial_ring_free(&h->ring);
    free(h);
}

int serial_hubs_start(struct ev_loop *loop, const struct cfg *cfg)
{
    for (size_t i = 0; i < cfg->n_vms; i++)
        if (cfg->vms[i].serial.kind != CFG_BE_NONE && !hub_new(loop, &cfg->vms[i]))
            return -1;
    return 0;
}

void serial_hubs_stop(void)
{
    while (hubs) {
        struct serial_hub *h = hubs;
        hubs = h->next;
        hub_free(h, NULL);
    }
}

static bool be_same(const struct cfg_backend *a, const struct cfg_backend *b)
{
    return a->kind == b->kind && a->port == b->port && strcmp(a->path, b->path) == 0 &&
           strcmp(a->host, b->host) == 0;
}

int serial_hubs_reload(struct ev_loop *loop, const struct cfg *cfg)
{
    int rc = 0;
    for (struct serial_hub **pp = &hubs; *pp;) {
        struct serial_hub *h = *pp;
        const struct cfg_vm *vm = cfg_find_vm(cfg, h->name);
        if (!vm || vm->serial.kind == CFG_BE_NONE) {
            char line[CFG_NAME_MAX + 96];
            snprintf(line, sizeof line, "\r\n[vmgate: serial console closed: vm %s %s]\r\n",
                     h->name, vm ? "has no serial console any more" : "was removed from the "
                     "configuration");
            hlog(h, LOG_LVL_INFO, "stopped (%s by a reload; %u session(s) ended)",
                 vm ? "serial removed" : "vm removed", h->n);
            *pp = h->next;
            hub_free(h, line);
            continue;
        }
        if (!be_same(&h->be, &vm->serial)) {
            hlog(h, LOG_LVL_INFO, "serial = unix:%s now (was %s): reconnecting", vm->serial.path,
                 h->be.path);
            char line[CFG_PATH_MAX + 96];
            snprintf(line, sizeof line, "\r\n[vmgate: the VM's serial port is now %s; "
                     "reconnecting]\r\n", vm->serial.path);
            tell_all(h, line);
            ev_io_stop(h->loop, &h->qw);
            ev_timer_stop(h->loop, &h->retry);
            h->qmask = 0;
            if (h->qfd >= 0)
                close(h->qfd);
            h->qfd = -1;
            buf_free(&h->toq);
            h->up = h->connecting = h->warned = false;
            h->was_up = false;
            h->backoff = BACKOFF_MIN;
            h->be = vm->serial;
            hub_connect(h);
            hub_update(h);
        }
        pp = &h->next;
    }
    for (size_t i = 0; i < cfg->n_vms; i++) {
        const struct cfg_vm *vm = &cfg->vms[i];
        if (vm->serial.kind == CFG_BE_NONE || serial_hub_find(vm))
            continue;
        if (!hub_new(loop, vm))
            rc = -1;
        else
            log_info("vm=%s serial: hub started (added by a reload)", vm->name);
    }
    return rc;
}

struct serial_hub *serial_hub_find(const struct cfg_vm *vm)
{
    for (struct serial_hub *h = hubs; h; h = h->next)
        if (strcmp(h->name, vm->name) == 0)     /* by name: vm may be a reloaded config's */
            return h;
    return NULL;
}

int serial_hub_attach(struct serial_hub *h, const char *user, uint64_t conn, char *why,
                      size_t whylen)
{
    if (h->n >= SERIAL_MAX_SESSIONS) {
        snprintf(why, whylen, "too many sessions (%u) on the serial console of VM %s",
                 SERIAL_MAX_SESSIONS, h->name);
        return -1;
    }
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sp) != 0) {
        snprintf(why, whylen, "socketpair: %s", strerror(errno));
        return -1;
    }
    /* the kernel's queue between hub and connection stays small: the bound
     * on what a slow terminal holds is the session queue, not ~200 KiB of
     * socket buffer */
    int sndbuf = SERIAL_PAIR_SNDBUF;
    (void)setsockopt(sp[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    struct ssess *s = calloc(1, sizeof *s);
    if (!s) {
        close(sp[0]);
        close(sp[1]);
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    s->h = h;
    s->fd = sp[0];
    s->conn = conn;
    snprintf(s->user, sizeof s->user, "%s", user);
    serial_outq_init(&s->q, SERIAL_SESSION_QUEUE);
    ev_io_init(&s->w, sess_cb, s->fd, 0);
    s->w.data = s;
    /* the others first: who took the keyboard */
    for (struct ssess *o = h->sessions; o; o = o->next) {
        sess_say(o, "\r\n[vmgate: %s took the keyboard]\r\n", s->user);
        sess_flush(o);
    }
    s->next = h->sessions;
    h->sessions = s;
    h->n++;
    h->writer = s;
    buf_free(&h->toq);             /* what the last holder typed and QEMU has not taken */
    sess_say(s, "[vmgate: serial console of VM %s, %s has the keyboard%s]\r\n", h->name,
             s->user, h->up ? "" : "; the VM's serial port is not connected (VM not running?), "
             "waiting for it");
    const uint8_t *a, *b;
    size_t al, bl;
    serial_ring_runs(&h->ring, &a, &al, &b, &bl);
    sess_put(s, a, al);
    sess_put(s, b, bl);
    sess_flush(s);
    hlog(h, LOG_LVL_DEBUG, "conn=%llu attached (%u sessions, %zu bytes replayed)",
         (unsigned long long)conn, h->n, al + bl);
    hub_update(h);
    return sp[1];
}
