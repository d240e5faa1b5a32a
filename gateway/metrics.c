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
#include "gateway/oneshot.h"
#include "gateway/peers.h"
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

struct metrics_server {
    struct oneshot *os;
    struct proxy *px;
    struct peer_client *peers;        /* processes > 1: the other network processes */
    unsigned nproc;
};

/* Per client: waiting for the peers' counters. */
struct mclient {
    struct oneshot_client *c;
    bool waiting;
};

/* Series whose value is the same in every process (not summed). */
static bool same_everywhere(const char *series, size_t len)
{
    return len == 11 && memcmp(series, "vmgate_bans", 11) == 0;
}

/* One sample line "SERIES VALUE" of text at p (up to its '\n'): *slen is
 * the series' length, the value follows it.  false for comments and blank
 * lines. */
static bool sample(const char *p, const char *eol, size_t *slen)
{
    if (p == eol || *p == '#')
        return false;
    const char *sp = NULL;
    for (const char *q = p; q < eol; q++)
        if (*q == ' ')
            sp = q;                     /* the last space: label values may hold spaces */
    if (!sp)
        return false;
    *slen = (size_t)(sp - p);
    return true;
}

static bool integral(const char *v)
{
    for (; *v && *v != '\n'; v++)
        if (*v < '0' || *v > '9')
            return false;
    return true;
}

/* The value of series (len bytes) in body, searched from *cur (where the
 * last one was found: the processes write the same series in the same
 * order) and then from the start.  NULL when the body lacks it. */
static const char *find_series(const char *body, const char **cur, const char *series,
                               size_t len)
{
    for (int pass = 0; pass < 2; pass++) {
        const char *p = pass ? body : *cur;
        const char *stop = pass ? *cur : NULL;
        while (p && *p && p != stop) {
            const char *eol = strchr(p, '\n');
            if (!eol)
                eol = p + strlen(p);
            size_t sl;
            if (sample(p, eol, &sl) && sl == len && memcmp(p, series, len) == 0) {
                *cur = *eol ? eol + 1 : eol;
                return p + len + 1;
            }
            p = *eol ? eol + 1 : eol;
        }
    }
    return NULL;
}

void metrics_merge(const char *own, char *const *bodies, unsigned n, struct jw *w)
{
    const char *cur[64];
    for (unsigned i = 0; i < n && i < 64; i++)
        cur[i] = bodies[i];
    for (const char *p = own; *p;) {
        const char *eol = strchr(p, '\n');
        if (!eol)
            eol = p + strlen(p);
        size_t sl, ll = (size_t)(eol - p);
        char line[1024];
        if (!sample(p, eol, &sl) || same_everywhere(p, sl) || ll >= sizeof line) {
            snprintf(line, sizeof line, "%.*s\n", (int)(ll < sizeof line - 2 ? ll : 0), p);
            jw_raw(w, line);
        } else {
            const char *v = p + sl + 1;
            bool isint = integral(v);
            unsigned long long u = isint ? strtoull(v, NULL, 10) : 0;
            double d = strtod(v, NULL);
            for (unsigned i = 0; i < n && i < 64; i++) {
                const char *pv = bodies[i] ? find_series(bodies[i], &cur[i], p, sl) : NULL;
                if (!pv)
                    continue;
                if (isint && integral(pv))
                    u += strtoull(pv, NULL, 10);
                else
                    isint = false;
                d += strtod(pv, NULL);
            }
            if (isint)
                snprintf(line, sizeof line, "%.*s %llu\n", (int)sl, p, u);
            else
                snprintf(line, sizeof line, "%.*s %.6f\n", (int)sl, p, d);
            jw_raw(w, line);
        }
        p = *eol ? eol + 1 : eol;
    }
}

/* Queue the whole answer; the client closes once it is out. */
static void answer(struct oneshot_client *c, const char *status, const char *ctype,
                   const char *body)
{
    size_t bl = strlen(body);
    size_t cap = bl + 256;
    char *out = malloc(cap);
    if (!out) {
        oneshot_answer(c, "", 0);
        return;
    }
    int hl = snprintf(out, cap,
                      "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                      "Connection: close\r\n\r\n", status, ctype, bl);
    memcpy(out + hl, body, bl);
    oneshot_answer(c, out, (size_t)hl + bl);
    free(out);
}

/* The metrics: this process's counters plus the peers' (bodies[0..n-1],
 * NULL where one did not answer), then how many processes are in them. */
static void metrics_reply(struct oneshot_client *c, char *const *bodies, unsigned n)
{
    struct metrics_server *s = oneshot_ctx(c);
    char *own = malloc(BODY_MAX), *body = malloc(BODY_MAX);
    if (!own || !body) {
        free(own);
        free(body);
        oneshot_answer(c, "", 0);
        return;
    }
    struct jw o, w;
    jw_init(&o, own, BODY_MAX);
    jw_init(&w, body, BODY_MAX);
    proxy_metrics_text(s->px, &o);
    metrics_merge(own, bodies, n, &w);
    unsigned answered = 1;
    for (unsigned i = 0; i < n; i++)
        answered += bodies[i] != NULL;
    /* a process that did not answer within a second (peers.h) is left out:
     * its counts are missing from this answer, and the two gauges differ */
    char tail[512];
    snprintf(tail, sizeof tail,
             "# HELP vmgate_network_processes Network processes configured (processes).\n"
             "# TYPE vmgate_network_processes gauge\n"
             "vmgate_network_processes %u\n"
             "# HELP vmgate_network_processes_answered Network processes whose counts are in "
             "this answer (fewer: one did not answer within 1 s).\n"
             "# TYPE vmgate_network_processes_answered gauge\n"
             "vmgate_network_processes_answered %u\n",
             s->nproc ? s->nproc : 1, answered);
    jw_raw(&w, tail);
    if (o.overflow || w.overflow)
        answer(c, "500 Internal Server Error", "text/plain; charset=utf-8",
               "metrics too large\n");
    else
        answer(c, "200 OK", "text/plain; version=0.0.4; charset=utf-8", body);
    free(own);
    free(body);
}

static void peers_done(void *ctx, char *const *bodies, unsigned n)
{
    struct mclient *m = ctx;
    m->waiting = false;
    metrics_reply(m->c, bodies, n);
}

static void serve(struct oneshot_client *c, enum metrics_req r)
{
    static const char text[] = "text/plain; charset=utf-8";
    switch (r) {
    case METRICS_GET: {
        struct metrics_server *s = oneshot_ctx(c);
        struct mclient *m = c->data;
        if (s->peers) {
            /* processes > 1: the others' counters first (one request
             * format with `vmgate status`: gateway/peers.h) */
            m->c = c;
            if (peer_ask(s->peers, "metrics", peers_done, m) == 0) {
                m->waiting = true;
                oneshot_hold(c, METRICS_TIMEOUT);
                return;
            }
            answer(c, "503 Service Unavailable", text, "busy: too many metrics requests\n");
            return;
        }
        metrics_reply(c, NULL, 0);
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

/* Bytes came: answer once the request head is whole, bad, or too long. */
static bool mclient_input(struct oneshot_client *c, bool eof, bool full)
{
    if (eof)
        return false;                   /* closed before a whole request */
    enum metrics_req r = metrics_parse(c->in, c->inlen);
    if (r != METRICS_NEED)
        serve(c, r);                    /* (a GET may be answered later: held) */
    else if (full)
        answer(c, "431 Request Header Fields Too Large", "text/plain; charset=utf-8",
               "request head too long\n");
    else
        return false;
    return true;
}

/* A client goes away (answered, timed out): no peer answer for it. */
static void mclient_closed(struct oneshot_client *c)
{
    struct mclient *m = c->data;
    struct metrics_server *s = oneshot_ctx(c);
    if (m->waiting)
        peer_cancel(s->peers, m);
    m->waiting = false;
}

void metrics_server_set_peers(struct metrics_server *s, struct peer_client *pc, unsigned nproc)
{
    s->peers = pc;
    s->nproc = nproc;
}

struct metrics_server *metrics_server_new(struct ev_loop *loop, int fd, struct proxy *px)
{
    struct metrics_server *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->px = px;
    const struct oneshot_ops ops = {
        .in_max = METRICS_REQ_MAX, .max_clients = METRICS_CLIENTS_MAX,
        .timeout = METRICS_TIMEOUT, .drain = true, .input = mclient_input, .ctx = s,
        .data_size = sizeof(struct mclient), .closed = mclient_closed,
    };
    if (!(s->os = oneshot_new(loop, fd, &ops))) {
        free(s);
        return NULL;
    }
    return s;
}

void metrics_server_free(struct metrics_server *s)
{
    if (!s)
        return;
    oneshot_free(s->os);
    free(s);
}
