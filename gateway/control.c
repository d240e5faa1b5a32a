/* gateway/control.c — see control.h: the request format (pure), the
 * listening socket, and the server on the network process's loop. */
#include "gateway/control.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/config.h"
#include "common/json.h"
#include "common/log.h"
#include "proxy/proxy.h"

/* ---------------------------------------------------------------------- */
/* the listening socket                                                    */

int ctl_listen(const char *path, char *why, size_t whylen)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof sa.sun_path) {
        snprintf(why, whylen, "%s: path too long for a unix socket", path);
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    char dir[sizeof sa.sun_path];
    memcpy(dir, path, strlen(path) + 1);
    char *d = dirname(dir);
    if (mkdir(d, 0755) == -1 && errno != EEXIST) {
        snprintf(why, whylen, "%s: %s", d, strerror(errno));
        return -1;
    }
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            snprintf(why, whylen, "%s exists and is not a socket", path);
            return -1;
        }
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof sa) == 0) {
            close(probe);
            snprintf(why, whylen, "%s is in use (another vmgate running?)", path);
            return -1;
        }
        if (probe >= 0)
            close(probe);
        unlink(path);                       /* stale: nobody listens */
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(why, whylen, "socket: %s", strerror(errno));
        return -1;
    }
    mode_t old = umask(0);
    int r = bind(fd, (struct sockaddr *)&sa, sizeof sa);
    umask(old);
    if (r == -1 || chmod(path, 0666) == -1 || listen(fd, 16) == -1) {
        snprintf(why, whylen, "%s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* ---------------------------------------------------------------------- */
/* the server                                                              */

struct ctl_client {
    struct ctl_server *s;
    struct ctl_client *next, *prev;
    int fd;
    ev_io w;
    ev_timer t;
    char in[CTL_REQ_MAX];
    size_t inlen;
    char *out;
    size_t outlen, outoff;
    struct ucred cred;
    gid_t groups[256];
    int ngroups;                        /* -1: unknown */
};

struct ctl_server {
    struct ev_loop *loop;
    int fd;
    ev_io w;
    struct proxy *px;
    const struct cfg *cfg;
    bool have_gid;
    gid_t admin_gid;
    unsigned nproc;
    struct ctl_client *clients;
    unsigned n_clients;
};

static void client_free(struct ctl_client *c)
{
    struct ctl_server *s = c->s;
    ev_io_stop(s->loop, &c->w);
    ev_timer_stop(s->loop, &c->t);
    close(c->fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->n_clients--;
    free(c->out);
    free(c);
}

/* Queue the reply (head line + body) and switch to writing it. */
static void reply(struct ctl_client *c, const char *head, const char *body)
{
    size_t hl = strlen(head), bl = body ? strlen(body) : 0;
    c->out = malloc(hl + bl + 2);
    if (!c->out) {
        client_free(c);
        return;
    }
    memcpy(c->out, head, hl);
    c->out[hl] = '\n';
    if (bl)
        memcpy(c->out + hl + 1, body, bl);
    c->outlen = hl + 1 + bl;
    c->outoff = 0;
    ev_io_stop(c->s->loop, &c->w);
    ev_io_set(&c->w, c->fd, EV_WRITE);
    ev_io_start(c->s->loop, &c->w);
}

static void reply_error(struct ctl_client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void reply_error(struct ctl_client *c, const char *fmt, ...)
{
    char msg[600], line[640];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(line, sizeof line, "error %s", msg);
    reply(c, line, NULL);
}

/* The peer's name for logs and the audit trail ("uid N" when unknown). */
static void peer_name(const struct ctl_client *c, char *out, size_t cap)
{
    struct passwd pw, *res = NULL;
    char buf[1024];
    if (getpwuid_r(c->cred.uid, &pw, buf, sizeof buf, &res) == 0 && res)
        snprintf(out, cap, "%s", res->pw_name);
    else
        snprintf(out, cap, "uid %u", (unsigned)c->cred.uid);
}

static bool authorized(const struct ctl_client *c)
{
    const struct ctl_server *s = c->s;
    if (c->cred.uid == 0)
        return true;
    if (!s->have_gid)
        return false;
    if (c->cred.gid == s->admin_gid)
        return true;
    for (int i = 0; i < c->ngroups; i++)
        if (c->groups[i] == s->admin_gid)
            return true;
    return false;
}

static void do_status(struct ctl_client *c, const struct ctl_req *r)
{
    const char *fmt = ctl_arg(r, "format");
    bool json = !fmt || strcmp(fmt, "json") == 0;
    if (fmt && !json && strcmp(fmt, "text") != 0) {
        reply_error(c, "status: format must be json or text");
        return;
    }
    size_t cap = 1u << 20;
    char *buf = malloc(cap);
    if (!buf) {
        reply_error(c, "out of memory");
        return;
    }
    struct jw w;
    jw_init(&w, buf, cap);
    const struct cfg *cfg = c->s->cfg;
    if (json) {
        jw_open(&w, '{');
        jw_key(&w, "sessions");
        proxy_sessions_json(c->s->px, &w);
        jw_key(&w, "vms");
        jw_open(&w, '[');
        for (size_t i = 0; i < cfg->n_vms; i++) {
            jw_elem(&w);
            jw_open(&w, '{');
            jw_kstr(&w, "name", cfg->vms[i].name);
            jw_kstr(&w, "state", "unknown");
            jw_ku64(&w, "sessions", proxy_vm_sessions(c->s->px, cfg->vms[i].name));
            jw_close(&w, '}');
        }
        jw_close(&w, ']');
        if (c->s->nproc > 1) {
            jw_key(&w, "complete");
            jw_raw(&w, "false");        /* only network process 1's sessions */
        }
        jw_close(&w, '}');
        jw_raw(&w, "\n");
    } else {
        proxy_sessions_text(c->s->px, &w);
        for (size_t i = 0; i < cfg->n_vms; i++) {
            char line[160];
            snprintf(line, sizeof line, "%svm %s: state unknown, %u session(s)\n",
                     i == 0 ? "\n" : "", cfg->vms[i].name,
                     proxy_vm_sessions(c->s->px, cfg->vms[i].name));
            jw_raw(&w, line);
        }
        if (c->s->nproc > 1)
            jw_raw(&w, "\nnote: processes > 1: only network process 1's sessions are listed\n");
    }
    if (w.overflow)
        reply_error(c, "status too large to send");
    else
        reply(c, "ok", buf);
    free(buf);
}

static void do_kick(struct ctl_client *c, const struct ctl_req *r)
{
    const char *ids = ctl_arg(r, "id"), *user = ctl_arg(r, "user"), *vm = ctl_arg(r, "vm");
    const char *reason = ctl_arg(r, "reason");
    uint64_t id = 0;
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->arg[i].key, "id") && strcmp(r->arg[i].key, "user") &&
            strcmp(r->arg[i].key, "vm") && strcmp(r->arg[i].key, "reason")) {
            reply_error(c, "kick: unknown argument %s", r->arg[i].key);
            return;
        }
    if (ids) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(ids, &end, 10);
        if (errno || *end || !*ids || v == 0 || ids[0] == '-') {
            reply_error(c, "kick: bad session id");
            return;
        }
        id = v;
    }
    if (!id && !user && !vm) {
        reply_error(c, "kick: say which sessions (id, user or vm)");
        return;
    }
    char by[256];
    peer_name(c, by, sizeof by);
    unsigned n = proxy_kick(c->s->px, id, user, vm, by, reason ? reason : "no reason given");
    if (n == 0) {
        reply_error(c, "kick: no such session");
        return;
    }
    char body[64];
    snprintf(body, sizeof body, "kicked %u session(s)\n", n);
    reply(c, "ok", body);
}

/* A whole request line is in (len bytes, without its '\n'). */
static void handle(struct ctl_client *c, size_t len)
{
    struct ctl_req r;
    char why[200];
    if (!authorized(c)) {
        char name[256];
        peer_name(c, name, sizeof name);
        log_info("control: refused %s (uid %u): not root and not in admin_group %s", name,
                 (unsigned)c->cred.uid, c->s->have_gid ? c->s->cfg->admin_group : "(none)");
        if (c->s->have_gid)
            reply_error(c, "permission denied: %s is not root and not a member of group %s "
                        "(admin_group)", name, c->s->cfg->admin_group);
        else
            reply_error(c, "permission denied: %s is not root (no admin_group %s on this host)",
                        name, c->s->cfg->admin_group[0] ? c->s->cfg->admin_group : "set");
        return;
    }
    if (ctl_parse(c->in, len, &r, why, sizeof why) != 0) {
        reply_error(c, "%s", why);
        return;
    }
    if (strcmp(r.verb, "status") == 0)
        do_status(c, &r);
    else if (strcmp(r.verb, "kick") == 0)
        do_kick(c, &r);
    else
        reply_error(c, "unknown request %s (this vmgate knows status, kick)", r.verb);
}

static void client_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct ctl_client *c = w->data;
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
        if (c->outoff == c->outlen)
            client_free(c);
        return;
    }
    ssize_t k = recv(c->fd, c->in + c->inlen, sizeof c->in - c->inlen, 0);
    if (k < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (k <= 0) {
        if (c->inlen)
            reply_error(c, "request without a newline");
        else
            client_free(c);
        return;
    }
    char *nl = memchr(c->in + c->inlen, '\n', (size_t)k);
    c->inlen += (size_t)k;
    if (nl) {
        handle(c, (size_t)(nl - c->in));
        return;
    }
    if (c->inlen == sizeof c->in)
        reply_error(c, "request longer than %d bytes", CTL_REQ_MAX - 1);
}

static void client_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    client_free(w->data);
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct ctl_server *s = w->data;
    (void)revents;
    for (int i = 0; i < 16; i++) {
        int fd = accept4(s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        struct ctl_client *c = s->n_clients < CTL_CLIENTS_MAX ? calloc(1, sizeof *c) : NULL;
        if (!c) {
            static const char busy[] = "error busy: too many control requests at once\n";
            (void)!send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
            close(fd);
            continue;
        }
        socklen_t sl = sizeof c->cred;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c->cred, &sl) != 0) {
            close(fd);
            free(c);
            continue;
        }
        sl = sizeof c->groups;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, c->groups, &sl) == 0)
            c->ngroups = (int)(sl / sizeof c->groups[0]);
        else
            c->ngroups = 0;             /* more than 256 groups: primary gid only */
        c->s = s;
        c->fd = fd;
        c->next = s->clients;
        if (s->clients)
            s->clients->prev = c;
        s->clients = c;
        s->n_clients++;
        ev_io_init(&c->w, client_cb, fd, EV_READ);
        c->w.data = c;
        ev_io_start(loop, &c->w);
        ev_timer_init(&c->t, client_timeout_cb, CTL_TIMEOUT, 0);
        c->t.data = c;
        ev_timer_start(loop, &c->t);
    }
}

struct ctl_server *ctl_server_new(struct ev_loop *loop, int fd, struct proxy *px,
                                  const struct cfg *cfg, bool have_gid, gid_t admin_gid,
                                  unsigned nproc)
{
    struct ctl_server *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->loop = loop;
    s->fd = fd;
    s->px = px;
    s->cfg = cfg;
    s->have_gid = have_gid;
    s->admin_gid = admin_gid;
    s->nproc = nproc;
    ev_io_init(&s->w, accept_cb, fd, EV_READ);
    s->w.data = s;
    ev_io_start(loop, &s->w);
    return s;
}

void ctl_server_free(struct ctl_server *s)
{
    if (!s)
        return;
    while (s->clients)
        client_free(s->clients);
    ev_io_stop(s->loop, &s->w);
    free(s);
}
