/* gateway/peers.c — see peers.h. */
#include "gateway/peers.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/json.h"
#include "common/log.h"
#include "gateway/control.h"
#include "proxy/proxy.h"

#define PEER_TIMEOUT 1.0
#define PEERS_MAX    64
#define PEER_QUEUE_MAX 32   /* questions waiting for the open one (control + metrics clients) */

struct peer_question {
    char line[CTL_REQ_MAX + 1];
    peer_done_cb cb;
    void *ctx;
};

struct peer_server {
    ev_io w;
    struct ev_loop *loop;
    struct proxy *px;
    int fd;
};

struct peer_client {
    struct ev_loop *loop;
    unsigned n;
    int fds[PEERS_MAX];
    ev_io w[PEERS_MAX];
    ev_timer t;
    unsigned seq;
    bool open;
    peer_done_cb cb;
    void *ctx;
    bool freeing;
    char *bodies[PEERS_MAX];
    unsigned got;
    char *rbuf;
    struct peer_question q[PEER_QUEUE_MAX];   /* waiting, q[0] first */
    unsigned nq;
};

static int ask_now(struct peer_client *pc, const char *line, peer_done_cb cb, void *ctx);

char *peer_answer(struct proxy *px, const char *line)
{
    struct ctl_req r;
    char why[200];
    if (ctl_parse(line, strlen(line), &r, why, sizeof why) != 0)
        return NULL;
    char *buf = malloc(PEER_MSG_MAX);
    if (!buf)
        return NULL;
    struct jw w;
    jw_init(&w, buf, PEER_MSG_MAX - 16);
    if (strcmp(r.verb, "status") == 0) {
        proxy_sessions_json(px, &w);
        jw_raw(&w, "\n");
        /* the table without its header line */
        struct jw t;
        char *tb = malloc(PEER_MSG_MAX);
        if (tb) {
            jw_init(&t, tb, PEER_MSG_MAX);
            proxy_sessions_text(px, &t);
            const char *nl = strchr(tb, '\n');
            jw_raw(&w, nl ? nl + 1 : "");
            free(tb);
        }
        jw_raw(&w, "--\n");
        const struct cfg *cfg = px->cfg;
        for (size_t i = 0; i < cfg->n_vms; i++) {
            char l[CFG_NAME_MAX + 24];
            snprintf(l, sizeof l, "%s %u\n", cfg->vms[i].name,
                     proxy_vm_sessions(px, cfg->vms[i].name));
            jw_raw(&w, l);
        }
    } else if (strcmp(r.verb, "kick") == 0) {
        const char *ids = ctl_arg(&r, "id");
        uint64_t id = ids ? strtoull(ids, NULL, 10) : 0;
        const char *by = ctl_arg(&r, "by"), *reason = ctl_arg(&r, "reason");
        unsigned n = proxy_kick(px, id, ctl_arg(&r, "user"), ctl_arg(&r, "vm"),
                                by ? by : "?", reason ? reason : "no reason given");
        char l[24];
        snprintf(l, sizeof l, "%u", n);
        jw_raw(&w, l);
    } else if (strcmp(r.verb, "metrics") == 0) {
        proxy_metrics_text(px, &w);
    } else if (strcmp(r.verb, "ban") == 0 || strcmp(r.verb, "unban") == 0) {
        /* a ban made by hand: network process 1 wrote the audit event */
        const char *key = ctl_arg(&r, "key"), *until = ctl_arg(&r, "until");
        bool ban = r.verb[0] == 'b';
        if (!key || (ban && !until) ||
            proxy_ban_manual(px, key, until ? strtoull(until, NULL, 10) : 0, ban, NULL,
                             false) != 0) {
            free(buf);
            return NULL;
        }
        jw_raw(&w, "ok");
    } else {
        free(buf);
        return NULL;
    }
    if (w.overflow) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* ---- the peer side ---- */

static void server_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct peer_server *s = (struct peer_server *)w;
    char req[CTL_REQ_MAX + 16];
    (void)loop;
    (void)revents;
    for (;;) {
        ssize_t n = recv(s->fd, req, sizeof req - 1, MSG_DONTWAIT);
        if (n <= 0)
            return;                     /* (EOF: the supervisor keeps the pair open) */
        req[n] = '\0';
        char *sp = strchr(req, ' ');
        if (!sp)
            continue;
        *sp = '\0';
        char *body = peer_answer(s->px, sp + 1);
        if (!body) {
            log_warn("network process 1 sent a request we do not know, not answered");
            continue;
        }
        size_t hl = strlen(req), bl = body ? strlen(body) : 0;
        char *msg = malloc(hl + 1 + bl + 1);
        if (msg) {
            memcpy(msg, req, hl);
            msg[hl] = ' ';
            if (bl)
                memcpy(msg + hl + 1, body, bl);
            if (send(s->fd, msg, hl + 1 + bl, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
                log_warn("answering network process 1: %s", strerror(errno));
            free(msg);
        }
        free(body);
    }
}

struct peer_server *peer_server_new(struct ev_loop *loop, int fd, struct proxy *px)
{
    struct peer_server *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->px = px;
    s->fd = fd;
    s->loop = loop;
    ev_io_init(&s->w, server_cb, fd, EV_READ);
    ev_io_start(loop, &s->w);
    return s;
}

void peer_server_free(struct peer_server *s)
{
    if (!s)
        return;
    ev_io_stop(s->loop, &s->w);
    free(s);
}

/* ---- network process 1 ---- */

static void finish(struct peer_client *pc)
{
    ev_timer_stop(pc->loop, &pc->t);
    for (unsigned i = 0; i < pc->n; i++)
        ev_io_stop(pc->loop, &pc->w[i]);
    pc->open = false;
    peer_done_cb cb = pc->cb;
    void *ctx = pc->ctx;
    pc->cb = NULL;
    pc->open = true;                    /* a question cb asks waits in the queue */
    if (cb)
        cb(ctx, pc->bodies, pc->n);
    pc->open = false;
    for (unsigned i = 0; i < pc->n; i++) {
        free(pc->bodies[i]);
        pc->bodies[i] = NULL;
    }
    /* the next waiting question (one that cannot be sent is answered as
     * if nobody answered, so its asker is never left hanging) */
    while (!pc->open && pc->nq > 0 && !pc->freeing) {
        struct peer_question q = pc->q[0];
        memmove(&pc->q[0], &pc->q[1], --pc->nq * sizeof pc->q[0]);
        if (ask_now(pc, q.line, q.cb, q.ctx) != 0 && q.cb)
            q.cb(q.ctx, pc->bodies, pc->n);
    }
}

static void client_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct peer_client *pc = w->data;
    unsigned i = (unsigned)(w - pc->w);
    (void)loop;
    (void)revents;
    for (;;) {
        ssize_t n = recv(pc->fds[i], pc->rbuf, PEER_MSG_MAX, MSG_DONTWAIT);
        if (n <= 0)
            return;
        pc->rbuf[n] = '\0';
        char *end;
        unsigned long seq = strtoul(pc->rbuf, &end, 10);
        if (*end != ' ' || seq != pc->seq || pc->bodies[i] || !pc->open)
            continue;                   /* a late answer to an older question */
        pc->bodies[i] = strdup(end + 1);
        if (pc->bodies[i] && ++pc->got == pc->n) {
            finish(pc);
            return;
        }
    }
}

static void client_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct peer_client *pc = w->data;
    (void)loop;
    (void)revents;
    log_warn("peers: %u of %u network processes did not answer within %.0f s",
             pc->n - pc->got, pc->n, PEER_TIMEOUT);
    finish(pc);
}

struct peer_client *peer_client_new(struct ev_loop *loop, const int *fds, unsigned n)
{
    if (n > PEERS_MAX)
        return NULL;
    struct peer_client *pc = calloc(1, sizeof *pc);
    if (!pc || !(pc->rbuf = malloc(PEER_MSG_MAX + 1))) {
        free(pc);
        return NULL;
    }
    pc->loop = loop;
    pc->n = n;
    for (unsigned i = 0; i < n; i++) {
        pc->fds[i] = fds[i];
        ev_io_init(&pc->w[i], client_io_cb, fds[i], EV_READ);
        pc->w[i].data = pc;
    }
    ev_timer_init(&pc->t, client_timeout_cb, PEER_TIMEOUT, 0);
    pc->t.data = pc;
    return pc;
}

void peer_client_free(struct peer_client *pc)
{
    if (!pc)
        return;
    pc->cb = NULL;
    pc->freeing = true;
    pc->nq = 0;
    if (pc->open)
        finish(pc);
    free(pc->rbuf);
    free(pc);
}

int peer_ask(struct peer_client *pc, const char *line, peer_done_cb cb, void *ctx)
{
    if (!pc->open && pc->nq == 0)
        return ask_now(pc, line, cb, ctx);
    if (pc->nq >= PEER_QUEUE_MAX || strlen(line) >= sizeof pc->q[0].line)
        return -1;
    struct peer_question *q = &pc->q[pc->nq++];
    snprintf(q->line, sizeof q->line, "%s", line);
    q->cb = cb;
    q->ctx = ctx;
    return 0;
}

static int ask_now(struct peer_client *pc, const char *line, peer_done_cb cb, void *ctx)
{
    char msg[CTL_REQ_MAX + 16];
    pc->seq++;
    int l = snprintf(msg, sizeof msg, "%u %s %s", pc->seq, CTL_VERSION, line);
    if (l < 0 || (size_t)l >= sizeof msg)
        return -1;
    pc->open = true;
    pc->cb = cb;
    pc->ctx = ctx;
    pc->got = 0;
    for (unsigned i = 0; i < pc->n; i++) {
        /* drop answers left from a question that timed out */
        while (recv(pc->fds[i], pc->rbuf, PEER_MSG_MAX, MSG_DONTWAIT) > 0)
            ;
        if (send(pc->fds[i], msg, (size_t)l, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
            log_warn("control: asking network process %u: %s", i + 2, strerror(errno));
        ev_io_start(pc->loop, &pc->w[i]);
    }
    ev_timer_set(&pc->t, PEER_TIMEOUT, 0);
    ev_timer_start(pc->loop, &pc->t);
    return 0;
}

void peer_cancel(struct peer_client *pc, void *ctx)
{
    if (!pc)
        return;
    if (pc->open && pc->ctx == ctx)
        pc->cb = NULL;              /* the answers still come in; nobody is told */
    for (unsigned i = 0; i < pc->nq;)
        if (pc->q[i].ctx == ctx)
            memmove(&pc->q[i], &pc->q[i + 1], (--pc->nq - i) * sizeof pc->q[0]);
        else
            i++;
}
