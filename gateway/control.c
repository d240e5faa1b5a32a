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

#include "auth/auth.h"
#include "common/config.h"
#include "common/json.h"
#include "common/log.h"
#include "gateway/oneshot.h"
#include "gateway/peers.h"
#include "proxy/audit.h"
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

/* One control client (the oneshot client's protocol data). */
struct ctl_client {
    struct oneshot_client *oc;
    struct ctl_server *s;
    struct ucred cred;
    gid_t groups[256];
    int ngroups;                        /* -1: unknown */
    bool json;                          /* status waiting for the peers: its format */
    unsigned kicked;                    /* kick waiting for the peers: ours */
    bool pending;                       /* a `vm` request waits for the auth helper */
    unsigned action;                    /* ... this one (enum authp_power_action) */
    char vm[CFG_NAME_MAX + 1];          /* ... on this VM */
};

struct ctl_server {
    struct oneshot *os;
    struct proxy *px;
    const struct cfg *cfg;
    bool have_gid;
    gid_t admin_gid;
    unsigned nproc;
    struct peer_client *peers;          /* processes > 1: the other network processes */
    ctl_reload_fn reload;
    void *reload_arg;
    struct ctl_client *reload_waiting;  /* the one `reload` request under way */
};

/* Queue the reply (head line + body); the client closes once it is out. */
static void reply(struct ctl_client *c, const char *head, const char *body)
{
    size_t hl = strlen(head), bl = body ? strlen(body) : 0;
    char *out = malloc(hl + bl + 2);
    if (!out) {
        oneshot_answer(c->oc, "", 0);
        return;
    }
    memcpy(out, head, hl);
    out[hl] = '\n';
    if (bl)
        memcpy(out + hl + 1, body, bl);
    oneshot_answer(c->oc, out, hl + 1 + bl);
    free(out);
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

/* Append the items of the JSON array text arr[0..len) to w (first: no
 * comma yet). */
static void append_items(struct jw *w, const char *arr, size_t len, bool *first)
{
    while (len && (arr[len - 1] == '\n' || arr[len - 1] == ' '))
        len--;
    if (len < 2 || arr[0] != '[' || arr[len - 1] != ']')
        return;
    if (len == 2)
        return;                         /* [] */
    char *inner = strndup(arr + 1, len - 2);
    if (!inner)
        return;
    if (!*first)
        jw_raw(w, ",");
    jw_raw(w, inner);
    *first = false;
    free(inner);
}

/* A peer's sessions of vm (its "NAME COUNT" lines after "--\n"). */
static unsigned peer_count(const char *body, const char *vm)
{
    const char *p = body ? strstr(body, "\n--\n") : NULL;
    if (!p && body && strncmp(body, "--\n", 3) == 0)
        p = body - 1;
    if (!p)
        return 0;
    size_t vl = strlen(vm);
    for (p += 4; *p;) {
        const char *nl = strchr(p, '\n');
        if (strncmp(p, vm, vl) == 0 && p[vl] == ' ')
            return (unsigned)strtoul(p + vl + 1, NULL, 10);
        if (!nl)
            break;
        p = nl + 1;
    }
    return 0;
}

/* The status answer: ours plus the other network processes' (bodies, n
 * of them, NULL where one did not answer). */
static void status_reply(struct ctl_client *c, bool json, char *const *bodies, unsigned n,
                         bool complete)
{
    size_t cap = 1u << 20;
    char *buf = malloc(cap), *own = malloc(cap);
    if (!buf || !own) {
        free(buf);
        free(own);
        reply_error(c, "out of memory");
        return;
    }
    struct jw w, o;
    jw_init(&w, buf, cap);
    jw_init(&o, own, cap);
    const struct cfg *cfg = c->s->cfg;
    if (json) {
        jw_open(&w, '{');
        jw_key(&w, "sessions");
        proxy_sessions_json(c->s->px, &o);
        bool first = true;
        jw_raw(&w, "[");
        append_items(&w, own, o.len, &first);
        for (unsigned i = 0; i < n; i++) {
            const char *nl = bodies[i] ? strchr(bodies[i], '\n') : NULL;
            if (nl)
                append_items(&w, bodies[i], (size_t)(nl - bodies[i]), &first);
        }
        jw_raw(&w, "]");
        w.need_comma = true;
        jw_key(&w, "vms");
        jw_open(&w, '[');
        for (size_t i = 0; i < cfg->n_vms; i++) {
            unsigned k = proxy_vm_sessions(c->s->px, cfg->vms[i].name);
            for (unsigned j = 0; j < n; j++)
                k += peer_count(bodies[j], cfg->vms[i].name);
            jw_elem(&w);
            jw_open(&w, '{');
            jw_kstr(&w, "name", cfg->vms[i].name);
            char st[128];
            jw_kstr(&w, "state", proxy_vm_state(c->s->px, cfg->vms[i].name, st, sizeof st));
            jw_ku64(&w, "sessions", k);
            jw_close(&w, '}');
        }
        jw_close(&w, ']');
        if (!complete) {
            jw_key(&w, "complete");
            jw_raw(&w, "false");        /* a network process did not answer */
        }
        jw_close(&w, '}');
        jw_raw(&w, "\n");
    } else {
        proxy_sessions_text(c->s->px, &w);
        for (unsigned i = 0; i < n; i++) {
            const char *nl = bodies[i] ? strchr(bodies[i], '\n') : NULL;
            const char *end = nl ? strstr(nl, "--\n") : NULL;
            if (end) {
                char *rows = strndup(nl + 1, (size_t)(end - nl - 1));
                if (rows)
                    jw_raw(&w, rows);
                free(rows);
            }
        }
        for (size_t i = 0; i < cfg->n_vms; i++) {
            char line[320], st[128];
            unsigned k = proxy_vm_sessions(c->s->px, cfg->vms[i].name);
            for (unsigned j = 0; j < n; j++)
                k += peer_count(bodies[j], cfg->vms[i].name);
            snprintf(line, sizeof line, "%svm %s: state %s, %u session(s)\n",
                     i == 0 ? "\n" : "", cfg->vms[i].name,
                     proxy_vm_state(c->s->px, cfg->vms[i].name, st, sizeof st), k);
            jw_raw(&w, line);
        }
        if (!complete)
            jw_raw(&w, "\nnote: a network process did not answer: its sessions are missing\n");
    }
    if (w.overflow)
        reply_error(c, "status too large to send");
    else
        reply(c, "ok", buf);
    free(buf);
    free(own);
}

static void status_done(void *ctx, char *const *bodies, unsigned n)
{
    struct ctl_client *c = ctx;
    bool complete = true;
    for (unsigned i = 0; i < n; i++)
        complete = complete && bodies[i];
    status_reply(c, c->json, bodies, n, complete);
}

static void do_status(struct ctl_client *c, const struct ctl_req *r)
{
    const char *fmt = ctl_arg(r, "format");
    bool json = !fmt || strcmp(fmt, "json") == 0;
    if (fmt && !json && strcmp(fmt, "text") != 0) {
        reply_error(c, "status: format must be json or text");
        return;
    }
    if (c->s->peers) {
        /* processes > 1: the other network processes' sessions too */
        c->json = json;
        if (peer_ask(c->s->peers, "status", status_done, c) != 0)
            reply_error(c, "busy: another status or kick is being gathered");
        return;
    }
    status_reply(c, json, NULL, 0, c->s->nproc <= 1);
}

static void kick_done(void *ctx, char *const *bodies, unsigned n)
{
    struct ctl_client *c = ctx;
    unsigned k = c->kicked, missing = 0;
    for (unsigned i = 0; i < n; i++) {
        if (bodies[i])
            k += (unsigned)strtoul(bodies[i], NULL, 10);
        else
            missing++;
    }
    if (k == 0 && !missing) {
        reply_error(c, "kick: no such session");
        return;
    }
    char body[160];
    snprintf(body, sizeof body, "kicked %u session(s)%s\n", k,
             missing ? " (a network process did not answer)" : "");
    reply(c, "ok", body);
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
    if (c->s->peers) {
        /* the same kick in every other network process */
        char line[CTL_REQ_MAX];
        snprintf(line, sizeof line, "kick");
        if ((ids && ctl_append_arg(line, sizeof line, "id", ids)) ||
            (user && ctl_append_arg(line, sizeof line, "user", user)) ||
            (vm && ctl_append_arg(line, sizeof line, "vm", vm)) ||
            ctl_append_arg(line, sizeof line, "by", by) ||
            (reason && ctl_append_arg(line, sizeof line, "reason", reason))) {
            reply_error(c, "kick: arguments too long");
            return;
        }
        c->kicked = n;
        if (peer_ask(c->s->peers, line, kick_done, c) != 0)
            reply_error(c, "busy: another status or kick is being gathered");
        return;
    }
    if (n == 0) {
        reply_error(c, "kick: no such session");
        return;
    }
    char body[64];
    snprintf(body, sizeof body, "kicked %u session(s)\n", n);
    reply(c, "ok", body);
}

/* ---- ban / unban: `vmgate firewall ban|unban` tells what it did ---- */

static void ban_done(void *ctx, char *const *bodies, unsigned n)
{
    struct ctl_client *c = ctx;
    unsigned missing = 0;
    for (unsigned i = 0; i < n; i++)
        missing += !bodies[i];
    reply(c, "ok", missing ? "(a network process did not answer)\n" : "");
}

/* `ban key=K until=MS` / `unban key=K`: the firewall command changed the
 * kernel's ban set already; here the ban is written to the audit trail
 * (once: this is network process 1) with by "admin", and every network
 * process keeps it in its ban list (vmgate_bans, PROXY sources).  Root
 * only, like the firewall command itself. */
static void do_ban(struct ctl_client *c, const struct ctl_req *r)
{
    bool ban = strcmp(r->verb, "ban") == 0;
    const char *key = ctl_arg(r, "key"), *until = ctl_arg(r, "until");
    if (c->cred.uid != 0) {
        reply_error(c, "permission denied: only root bans (vmgate firewall %s)", r->verb);
        return;
    }
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->arg[i].key, "key") && (!ban || strcmp(r->arg[i].key, "until"))) {
            reply_error(c, "%s: unknown argument %s", r->verb, r->arg[i].key);
            return;
        }
    uint64_t ms = 0;
    if (ban) {
        char *end;
        errno = 0;
        unsigned long long v = until ? strtoull(until, &end, 10) : 0;
        if (!until || errno || *end || !*until || until[0] == '-' || v == 0) {
            reply_error(c, "ban: need until=MS (ms since the epoch)");
            return;
        }
        ms = v;
    }
    char by[256];
    peer_name(c, by, sizeof by);
    if (!key || proxy_ban_manual(c->s->px, key, ms, ban, by, true) != 0) {
        reply_error(c, "%s: need key=ADDR (an address or prefix)", r->verb);
        return;
    }
    log_info("control: %s %s by %s (vmgate firewall)", ban ? "ban" : "unban", key, by);
    if (c->s->peers) {
        char line[CTL_REQ_MAX];
        snprintf(line, sizeof line, "%s", r->verb);
        if (ctl_append_arg(line, sizeof line, "key", key) ||
            (ban && ctl_append_arg(line, sizeof line, "until", until)) ||
            peer_ask(c->s->peers, line, ban_done, c) != 0)
            reply(c, "ok", "(not passed to the other network processes: busy)\n");
        return;
    }
    reply(c, "ok", "");
}

/* ---- vm VM ACTION: power control, authorized by the auth helper ---- */

/* The helper's answer to a `vm` request: the reply, one log line, and for
 * the actions (not status) an audit event `power`.  Reply heads for the
 * client (ctlcli.c maps them to exit codes): "ok"; "error refused: ..."
 * (no right); "error failed: ..." (QEMU said no); "error unavailable: ..."
 * (no qmp / qga configured, monitor unreachable: the VM is not running). */
static void vm_answer(void *ctx, const struct authp_login_resp *resp)
{
    struct ctl_client *c = ctx;
    c->pending = false;
    const char *act = authp_power_name(c->action);
    char who[256];
    peer_name(c, who, sizeof who);
    const char *result = resp->result == AUTHP_OK ? "ok"
                         : resp->result == AUTHP_NOT_ALLOWED ? "refused"
                         : resp->result == AUTHP_QMP_REFUSED ? "failed" : "unavailable";
    if (c->action != AUTHP_PWR_STATUS || resp->result != AUTHP_OK)
        log_info("control: vm %s %s by %s (uid %u): %s%s%s", c->vm, act, who,
                 (unsigned)c->cred.uid, result, resp->detail[0] ? ": " : "", resp->detail);
    struct proxy *px = c->s->px;
    if (c->action != AUTHP_PWR_STATUS && px->audit) {
        char src[32];
        snprintf(src, sizeof src, "uid:%u", (unsigned)c->cred.uid);
        struct audit_who aw = { 0, c->vm, who, src, "control" };
        struct audit_kv kv[] = { AUDIT_S("action", act), AUDIT_S("result", result),
                                 AUDIT_S("reason", resp->result == AUTHP_OK ? NULL
                                                                            : resp->detail) };
        atrail_emit(px->audit, "power", &aw, kv, sizeof kv / sizeof kv[0]);
    }
    if (resp->result == AUTHP_QMP_REFUSED) {
        reply_error(c, "failed: QEMU refused %s: %s", act, resp->detail);
        return;
    }
    if (resp->result != AUTHP_OK) {
        reply_error(c, "%s: %s", result, resp->detail);
        return;
    }
    char body[4096];
    struct jw w;
    jw_init(&w, body, sizeof body);
    if (c->action == AUTHP_PWR_STATUS) {
        /* vmgate's own idle pause (or wake) is worth a word beside QEMU's */
        char st[160];
        proxy_vm_state(px, c->vm, st, sizeof st);
        const char *note = strncmp(st, "paused by vmgate", 16) == 0 ||
                                   strncmp(st, "resuming", 8) == 0 ? st : NULL;
        char line[400];
        snprintf(line, sizeof line, "%s: %s%s%s\n", c->vm, resp->detail[0] ? resp->detail
                                                                           : "unknown",
                 note ? " - " : "", note ? note : "");
        jw_raw(&w, line);
        snprintf(line, sizeof line, "sessions: %u%s\n", proxy_vm_sessions(px, c->vm),
                 c->s->nproc > 1 ? " (network process 1's only)" : "");
        jw_raw(&w, line);
        proxy_vm_sessions_text(px, c->vm, &w);
    } else {
        static const char *const done[AUTHP_PWR_MAX_] = {
            [AUTHP_PWR_SHUTDOWN] = "shutdown requested (ACPI power button)",
            [AUTHP_PWR_RESET] = "reset",
            [AUTHP_PWR_REBOOT] = "reboot requested from the guest agent",
            [AUTHP_PWR_PAUSE] = "paused",
            [AUTHP_PWR_RESUME] = "resumed",
        };
        char line[200];
        snprintf(line, sizeof line, "%s: %s\n", c->vm, done[c->action]);
        jw_raw(&w, line);
    }
    reply(c, "ok", w.overflow ? "(too long)\n" : body);
}

/* vm name=VM action=ACTION: anyone may ask; the auth helper decides from
 * the client's socket (its uid), never from what this process believes. */
static void do_vm(struct ctl_client *c, const struct ctl_req *r)
{
    const char *name = ctl_arg(r, "name"), *action = ctl_arg(r, "action");
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->arg[i].key, "name") && strcmp(r->arg[i].key, "action")) {
            reply_error(c, "usage: vm: unknown argument %s", r->arg[i].key);
            return;
        }
    unsigned a = authp_power_parse(action);
    if (!name || !action || !a) {
        reply_error(c, "usage: vm name=VM action=status|shutdown|reset|reboot|pause|resume");
        return;
    }
    if (!cfg_find_vm(c->s->cfg, name)) {
        reply_error(c, "refused: no vm %s", name);
        return;
    }
    struct proxy *px = c->s->px;
    struct authp_power_req q = { .action = (uint8_t)a };
    snprintf(q.vm, sizeof q.vm, "%s", name);
    snprintf(c->vm, sizeof c->vm, "%s", name);
    c->action = a;
    if (!px->auth || auth_client_power(px->auth, &q, c->oc->fd, vm_answer, c) != 0) {
        reply_error(c, "unavailable: the auth helper is not answering");
        return;
    }
    c->pending = true;
    oneshot_hold(c->oc, CTL_VM_TIMEOUT);
}

/* `reload`: one at a time; the daemon answers through ctl_reload_done. */
static void do_reload(struct ctl_client *c, const struct ctl_req *r)
{
    struct ctl_server *s = c->s;
    if (r->n) {
        reply_error(c, "reload: unknown argument %s", r->arg[0].key);
        return;
    }
    if (!s->reload) {
        reply_error(c, "reload is not available here");
        return;
    }
    if (s->reload_waiting) {
        reply_error(c, "reload: one is already under way");
        return;
    }
    char by[256];
    peer_name(c, by, sizeof by);
    s->reload_waiting = c;
    s->reload(s->reload_arg, by);
}

void ctl_reload_done(struct ctl_server *s, bool ok, const char *msg)
{
    if (!s || !s->reload_waiting)
        return;
    struct ctl_client *c = s->reload_waiting;
    s->reload_waiting = NULL;
    if (ok) {
        char body[700];
        snprintf(body, sizeof body, "%s\n", msg);
        reply(c, "ok", body);
    } else {
        reply_error(c, "%s", msg);
    }
}

void ctl_server_set_peers(struct ctl_server *s, struct peer_client *pc)
{
    s->peers = pc;
}

void ctl_server_on_reload(struct ctl_server *s, ctl_reload_fn fn, void *arg)
{
    s->reload = fn;
    s->reload_arg = arg;
}

/* The oneshot client goes away: a `reload` waiting for it is answered
 * into the void, a `vm` request's answer is no longer wanted. */
static void client_closed(struct oneshot_client *oc)
{
    struct ctl_client *c = oc->data;
    if (c->s && c->s->reload_waiting == c)
        c->s->reload_waiting = NULL;
    if (c->s)
        peer_cancel(c->s->peers, c);
    if (c->pending && c->s && c->s->px->auth)
        auth_client_cancel(c->s->px->auth, c);
}

/* A whole request line is in (len bytes, without its '\n'). */
static void handle(struct ctl_client *c, size_t len)
{
    struct ctl_req r;
    char why[200];
    if (strncmp(c->oc->in, CTL_VERSION " vm ", sizeof CTL_VERSION + 3) == 0) {
        /* any local user: the helper authorizes each request by uid */
        if (ctl_parse(c->oc->in, len, &r, why, sizeof why) != 0)
            reply_error(c, "usage: %s", why);
        else
            do_vm(c, &r);
        return;
    }
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
    if (ctl_parse(c->oc->in, len, &r, why, sizeof why) != 0) {
        reply_error(c, "%s", why);
        return;
    }
    if (strcmp(r.verb, "status") == 0)
        do_status(c, &r);
    else if (strcmp(r.verb, "kick") == 0)
        do_kick(c, &r);
    else if (strcmp(r.verb, "reload") == 0)
        do_reload(c, &r);
    else if (strcmp(r.verb, "ban") == 0 || strcmp(r.verb, "unban") == 0)
        do_ban(c, &r);
    else
        reply_error(c, "unknown request %s (this vmgate knows status, kick, reload, vm, ban, "
                    "unban)", r.verb);
}

/* Bytes came: a whole line is a request; EOF or a full buffer before it is
 * an error. */
static bool client_input(struct oneshot_client *oc, bool eof, bool full)
{
    struct ctl_client *c = oc->data;
    if (c->pending)
        return true;                    /* the answer is on its way */
    char *nl = memchr(oc->in, '\n', oc->inlen);
    if (nl) {
        handle(c, (size_t)(nl - oc->in));
        return true;
    }
    if (eof && oc->inlen)
        reply_error(c, "request without a newline");
    else if (full)
        reply_error(c, "request longer than %d bytes", CTL_REQ_MAX - 1);
    else
        return false;
    return true;
}

/* A new client: who is it (SO_PEERCRED, SO_PEERGROUPS)? */
static int client_accepted(struct oneshot_client *oc)
{
    struct ctl_client *c = oc->data;
    c->oc = oc;
    c->s = oneshot_ctx(oc);
    socklen_t sl = sizeof c->cred;
    if (getsockopt(oc->fd, SOL_SOCKET, SO_PEERCRED, &c->cred, &sl) != 0)
        return -1;
    sl = sizeof c->groups;
    if (getsockopt(oc->fd, SOL_SOCKET, SO_PEERGROUPS, c->groups, &sl) == 0)
        c->ngroups = (int)(sl / sizeof c->groups[0]);
    else
        c->ngroups = 0;             /* more than 256 groups: primary gid only */
    return 0;
}

struct ctl_server *ctl_server_new(struct ev_loop *loop, int fd, struct proxy *px,
                                  const struct cfg *cfg, bool have_gid, gid_t admin_gid,
                                  unsigned nproc)
{
    struct ctl_server *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->px = px;
    s->cfg = cfg;
    s->have_gid = have_gid;
    s->admin_gid = admin_gid;
    s->nproc = nproc;
    const struct oneshot_ops ops = {
        .in_max = CTL_REQ_MAX, .data_size = sizeof(struct ctl_client),
        .max_clients = CTL_CLIENTS_MAX, .timeout = CTL_TIMEOUT,
        .busy = "error busy: too many control requests at once\n",
        .accepted = client_accepted, .input = client_input, .ctx = s,
        .closed = client_closed,
    };
    if (!(s->os = oneshot_new(loop, fd, &ops))) {
        free(s);
        return NULL;
    }
    return s;
}

void ctl_server_free(struct ctl_server *s)
{
    if (!s)
        return;
    oneshot_free(s->os);
    free(s);
}
