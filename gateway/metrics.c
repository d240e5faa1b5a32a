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
};

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

static void serve(struct oneshot_client *c, enum metrics_req r)
{
    static const char text[] = "text/plain; charset=utf-8";
    switch (r) {
    case METRICS_GET: {
        char *body = malloc(BODY_MAX);
        if (!body) {
            oneshot_answer(c, "", 0);
            return;
        }
        struct jw w;
        jw_init(&w, body, BODY_MAX);
        proxy_metrics_text(((struct metrics_server *)oneshot_ctx(c))->px, &w);
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

/* Bytes came: answer once the request head is whole, bad, or too long. */
static bool mclient_input(struct oneshot_client *c, bool eof, bool full)
{
    if (eof)
        return false;                   /* closed before a whole request */
    enum metrics_req r = metrics_parse(c->in, c->inlen);
    if (r != METRICS_NEED)
        serve(c, r);
    else if (full)
        answer(c, "431 Request Header Fields Too Large", "text/plain; charset=utf-8",
               "request head too long\n");
    else
        return false;
    return true;
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
