/* gateway/daemon.c — vmgate run: load, bind, fork the auth helper, drop
 * privileges, then serve every VM's listener from one libev loop — or, with
 * `processes = N` > 1, from N forked network processes that share the
 * listening sockets (each with its own loop, its own socket to the one auth
 * helper, and its share of the unauthenticated caps), watched by the parent,
 * which forwards SIGHUP/SIGTERM and replaces a process that dies.
 *
 * Order matters and follows hitch/OpenSSH: everything that needs root
 * (reading the key, binding low ports, starting the PAM helper, applying the
 * firewall) happens first; then the network-facing process becomes
 * cfg->user before it reads a single byte from the network. */
#include "gateway/gateway.h"
#include "gateway/control.h"
#include "gateway/metrics.h"
#include "gateway/peers.h"

#include <errno.h>
#include <grp.h>
#include <malloc.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>
#include <openssl/ssl.h>
#include <systemd/sd-daemon.h>

#include "auth/auth.h"
#include "certs/certs.h"
#include "common/addr.h"
#include "common/buf.h"
#include "common/cfgdiff.h"
#include "common/config.h"
#include "common/listen.h"
#include "common/log.h"
#include "firewall/firewall.h"
#include "proxy/audit.h"
#include "proxy/proxy.h"
#include "proxy/serial_hub.h"

struct listener {
    ev_io io;
    ev_timer pause;          /* accept() hit EMFILE: retry shortly */
    int fd;
    const struct cfg_vm *vm;
    struct gw *gw;
    bool spice;              /* a spice_port listener (else vnc_port) */
    bool local;              /* socket_dir/NAME.vnc (vnc_local_proto) */
    bool serial;             /* socket_dir/NAME.serial (serial_proto; network process 1 only) */
    bool web;                /* the web_port listener (vm is web_vm_none) */
    uint16_t port;           /* its TCP port (0: socket_dir) */
};

/* A config a reload replaced, alive while connections from before the
 * reload (ids up to last_id) may point into it. */
struct retired {
    struct cfg cfg;
    uint64_t last_id;
};

struct gw {
    struct cfg cfg;
    struct ev_loop *loop;
    SSL_CTX *ssl_ctx;
    struct proxy px;
    struct auth_client *auth;            /* a network process's; the supervisor's */
    pid_t auth_pid;
    struct listener *ls;
    size_t n_ls;
    ev_signal sig_int, sig_term, sig_hup;
    ev_signal sig_ready;                 /* processes > 1: SIGUSR1 from a network process */
    ev_signal sig_usr1;                  /* network process: reopen the audit file */
    struct audit *audit;                 /* opened as root; NULL: off */
    int ctl_fd;                          /* control socket (-1: none), served by net1 */
    bool have_admin_gid;
    gid_t admin_gid;
    struct ctl_server *ctl;
    int metrics_fd;                      /* /metrics listener (-1: off), served by net1 */
    struct metrics_server *metrics;
    bool notified_ready;                 /* READY=1 sent once (supervisor) */
    ev_child auth_child;
    ev_timer trim_timer;     /* hand freed heap back to the kernel */
    bool fw_managed;
    /* processes > 1: the parent's view of its network processes */
    unsigned nproc;
    int afds[AUTH_SOCKETS_MAX];          /* network ends of the helper's sockets */
    struct netproc {
        struct gw *gw;
        unsigned k;                      /* 0-based slot */
        pid_t pid;                       /* 0: not running */
        unsigned gen;                    /* starts so far (auth id ranges) */
        ev_tstamp started;
        ev_child child;
        ev_timer respawn;                /* a quick death waits before the next start */
    } np[AUTH_SOCKETS_MAX];
    bool stopping;
    bool supervisor;                     /* this is the parent of the network processes */
    ev_timer stop_timer;                 /* SIGKILL what SIGTERM did not end */
    uint64_t *id_counter;                /* connection ids, shared (MAP_SHARED) */
    unsigned k;                          /* network process slot (0: the first) */
    /* processes > 1: socketpairs between network process 1 (peer_a[k])
     * and network process k+1 (peer_b[k]), k >= 1; the supervisor keeps
     * both ends so a replacement inherits its end (gateway/peers.h) */
    int peer_a[AUTH_SOCKETS_MAX], peer_b[AUTH_SOCKETS_MAX];
    struct peer_client *peers;           /* network process 1 */
    struct peer_server *peer_srv;        /* the others */
    uint32_t cfg_gen;                    /* the helper's generation of gw->cfg (1: start) */
    struct retired *retired;             /* configs replaced by reloads, still referenced */
    size_t n_retired;
    ev_signal sig_usr2;                  /* processes > 1: reload step (see reload_begin) */
    struct {
        bool busy;                       /* a reload is under way */
        bool reread;                     /* ... and it re-reads the file */
        bool ctl;                        /* `vmgate reload` waits for the answer */
        bool again, again_reread;        /* a signal came meanwhile: once more after */
        ev_timer again_t;
        char msg[300];                   /* what the config step did */
    } rl;
};

/* ---- the service manager (systemd Type=notify, see dist/vmgate.service) ----
 *
 * Only the process systemd started speaks to it: with processes = 1 that is
 * the network process, with processes > 1 the supervisor; the auth helper
 * and the forked network processes stay silent, so the unit can keep
 * NotifyAccess=main.  The privilege drop keeps the PID, so MAINPID is
 * right without telling.  Without NOTIFY_SOCKET every call is a no-op. */
static pid_t notify_pid;                 /* getpid() of the process systemd started */

/* Send one state string (READY=1, STOPPING=1, ...; sd_notify(3) syntax)
 * from the main process; a failure to send is logged, never fatal. */
static void notify(const char *state)
{
    if (getpid() != notify_pid)
        return;
    int r = sd_notify(0, state);
    if (r < 0)
        log_warn("sd_notify: %s", strerror(-r));
}

/* RELOADING=1 with the MONOTONIC_USEC= that systemd >= 253 asks of it
 * (252 ignores it); READY=1 must follow when the reload is done. */
static void notify_reloading(void)
{
    struct timespec ts;
    char msg[96];
    clock_gettime(CLOCK_MONOTONIC, &ts);
    snprintf(msg, sizeof msg, "RELOADING=1\nMONOTONIC_USEC=%llu",
             (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000u);
    notify(msg);
}

/* READY=1 with a STATUS= line saying what is served. */
static void notify_ready(const struct gw *gw, const char *what)
{
    char msg[160];
    snprintf(msg, sizeof msg, "READY=1\nSTATUS=%s: %zu listener(s), %u network process(es)",
             what, gw->n_ls, gw->nproc ? gw->nproc : 1u);
    notify(msg);
}

/* "port 5902", or "vm dev0's socket" for a socket_dir listener (logs). */
static const char *listener_name(const struct listener *l, char *out, size_t outsz)
{
    if (l->local)
        snprintf(out, outsz, "vm %s's socket", l->vm->name);
    else if (l->web)
        snprintf(out, outsz, "web_port %u", l->gw->cfg.web_port);
    else
        snprintf(out, outsz, "port %u", l->spice ? l->vm->spice_port : l->vm->vnc_port);
    return out;
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    char where[CFG_NAME_MAX + 32];
    struct listener *l = (struct listener *)w;
    (void)revents;
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = accept4(l->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd == -1) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                log_warn("accept on %s: %s; pausing this listener for 100 ms",
                         listener_name(l, where, sizeof where), strerror(errno));
                ev_io_stop(loop, &l->io);
                ev_timer_start(loop, &l->pause);
            } else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
                log_warn("accept on %s: %s", listener_name(l, where, sizeof where),
                         strerror(errno));
            }
            return;
        }
        proxy_accept(&l->gw->px,
                     l->web ? &web_proto : l->serial ? &serial_proto
                     : l->local && l->spice ? &spice_local_proto
                     : l->local ? &vnc_local_proto
                                                    : l->spice ? &spice_proto : &vnc_proto,
                     l->vm, fd, (struct sockaddr *)&ss);
    }
}

static void pause_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct listener *l = w->data;
    (void)revents;
    ev_io_start(loop, &l->io);
}

static void stop_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)revents;
    log_info("received %s, shutting down", w->signum == SIGINT ? "SIGINT" : "SIGTERM");
    notify("STOPPING=1");
    ev_break(loop, EVBREAK_ALL);
}

/* ---- reload (SIGHUP, `vmgate reload`) ----
 *
 * After the privilege drop nobody but the auth helper is root, and the
 * network processes may not bind (seccomp) nor perhaps read the config or
 * the key.  So the helper does the privileged half (auth/reload.c): it
 * re-reads and validates the config, binds the listeners of new VMs and
 * ports, re-applies the firewall and takes the config for its own ACL
 * checks; it answers with the text it read and the listeners it bound
 * (SCM_RIGHTS).  A network process parses the same text and swaps:
 * listeners of the new config (the helper's sockets for new ones, its own
 * for the rest), sessions of removed VMs kicked, the old config retired
 * but alive until no connection from before the reload is left (sessions
 * hold pointers into it: a session of a changed VM goes on under the
 * policy it started with).  Then the certificate (AUTHP_REQ_CERT).
 *
 * Who asks: processes = 1, the network process itself (SIGHUP or the
 * control socket).  processes > 1: network process 1 re-reads (SIGUSR2
 * from the supervisor on SIGHUP, or its control socket), then SIGUSR2s
 * the supervisor, which fetches the config in force for itself (future
 * network processes inherit it) and SIGHUPs every network process: each
 * fetches it without a re-read (same generation: nothing to do). */

static void sup_forward_hup(struct gw *gw);
static void log_listening(const struct gw *gw, const struct listener *l);

/* The socket a listener is, as cfgdiff names them. */
static struct cfg_listen listener_key(const struct listener *l)
{
    struct cfg_listen k = { .kind = l->local && l->serial ? CFG_L_SERIAL
                                    : l->local && l->spice ? CFG_L_LOCAL_SPICE
                                    : l->local ? CFG_L_LOCAL : l->web ? CFG_L_WEB
                                    : l->spice ? CFG_L_SPICE : CFG_L_VNC,
                            .port = l->port, .vm = l->web ? NULL : l->vm };
    return k;
}

static void listener_start(struct gw *gw, struct listener *l)
{
    ev_io_init(&l->io, accept_cb, l->fd, EV_READ);
    ev_timer_init(&l->pause, pause_cb, 0.1, 0);
    l->pause.data = l;
    /* The channels of one SPICE session are separate connections that
     * must meet in one process: network process 1 takes all of SPICE. */
    if (gw->supervisor || (l->spice && gw->k != 0))
        return;
    /* Only one process can be QEMU's serial client: network process 1
     * runs the serial hubs and takes every NAME.serial connection. */
    if (l->serial && gw->k != 0)
        return;
    ev_io_start(gw->loop, &l->io);
}

/* Free the configs retired by reloads that no live connection can refer
 * to any more (every connection is younger than the reload). */
static void retired_sweep(struct gw *gw, bool all)
{
    uint64_t oldest = all ? UINT64_MAX : proxy_oldest_id(&gw->px);
    size_t k = 0;
    for (size_t i = 0; i < gw->n_retired; i++) {
        if (gw->retired[i].last_id < oldest) {
            cfg_free(&gw->retired[i].cfg);
            log_debug("reload: an old configuration is no longer used, freed");
        } else {
            gw->retired[k++] = gw->retired[i];
        }
    }
    gw->n_retired = k;
}

/* Take nc (parsed from the helper's text; moved into gw->cfg) with the
 * helper's listeners (ls, fds: n of them; every fd is used or closed).
 * Writes what changed into sum.  0, or -1 when out of memory (nothing
 * changed, nc freed, fds closed). */
static int reload_apply(struct gw *gw, struct cfg *nc, const struct authp_lsn *hl, int *fds,
                        unsigned n, char *sum, size_t sumsz)
{
    struct cfg *old = &gw->cfg;
    size_t nn = cfg_listeners(nc, NULL, 0);
    struct cfg_listen *ln = calloc(nn + 1, sizeof *ln);
    struct listener *ls = calloc(nn + 1, sizeof *ls);
    enum cfg_change *ost = calloc(old->n_vms + 1, sizeof *ost);
    enum cfg_change *nst = calloc(nc->n_vms + 1, sizeof *nst);
    bool *kept = calloc(gw->n_ls + 1, sizeof *kept), *used = calloc(n + 1, sizeof *used);
    struct retired *rt = realloc(gw->retired, (gw->n_retired + 1) * sizeof *rt);
    if (rt)
        gw->retired = rt;
    if (!ln || !ls || !ost || !nst || !kept || !used || !rt) {
        free(ln), free(ls), free(ost), free(nst), free(kept), free(used);
        for (unsigned i = 0; i < n; i++)
            close(fds[i]);
        cfg_free(nc);
        return -1;
    }
    cfg_listeners(nc, ln, nn);
    cfg_diff(old, nc, ost, nst);
    size_t nl = 0;
    for (size_t j = 0; j < nn; j++) {
        int fd = -1;
        /* the helper's socket wins: ours may be a stale one of the same
         * port (removed and added again while we were not asked) */
        for (unsigned i = 0; i < n && fd < 0; i++) {
            bool loc = cfg_lkind_local(hl[i].kind);
            bool same = loc == cfg_lkind_local(ln[j].kind) &&
                        (loc ? hl[i].kind == ln[j].kind && strcmp(hl[i].vm, ln[j].vm->name) == 0
                             : hl[i].port == ln[j].port);
            if (!used[i] && same) {
                used[i] = true;
                fd = fds[i];
            }
        }
        for (size_t i = 0; i < gw->n_ls && fd < 0; i++) {
            struct cfg_listen k = listener_key(&gw->ls[i]);
            if (!kept[i] && cfg_listen_same(&k, &ln[j])) {
                kept[i] = true;
                fd = gw->ls[i].fd;
            }
        }
        if (fd < 0) {
            /* e.g. socket_dir sockets when vmgate was not started as root */
            log_warn("reload: no socket for a %s listener%s%s; restart vmgate to get it",
                     cfg_lkind_local(ln[j].kind) ? cfg_lkind_ext(ln[j].kind) : "new",
                     ln[j].vm ? " of vm " : "", ln[j].vm ? ln[j].vm->name : "");
            continue;
        }
        struct listener *l = &ls[nl++];
        l->fd = fd;
        l->gw = gw;
        l->port = ln[j].port;
        l->spice = ln[j].kind == CFG_L_SPICE || ln[j].kind == CFG_L_LOCAL_SPICE;
        l->local = cfg_lkind_local(ln[j].kind);
        l->serial = ln[j].kind == CFG_L_SERIAL;
        l->web = ln[j].kind == CFG_L_WEB;
        l->vm = l->web ? &web_vm_none : ln[j].vm;
    }
    for (size_t i = 0; i < gw->n_ls; i++) {
        ev_io_stop(gw->loop, &gw->ls[i].io);
        ev_timer_stop(gw->loop, &gw->ls[i].pause);
        if (!kept[i])
            close(gw->ls[i].fd);       /* a removed VM's port: closed here */
    }
    for (unsigned i = 0; i < n; i++)
        if (!used[i])
            close(fds[i]);
    size_t added = 0, removed = 0, changed = 0;
    for (size_t i = 0; i < old->n_vms; i++) {
        removed += ost[i] == CFG_REMOVED;
        changed += ost[i] == CFG_CHANGED;
        if (ost[i] == CFG_REMOVED && !gw->supervisor) {
            char why[CFG_NAME_MAX + 48];
            snprintf(why, sizeof why, "vm %s was removed from the configuration",
                     old->vms[i].name);
            unsigned k = proxy_kick(&gw->px, 0, NULL, old->vms[i].name, "reload", why);
            if (k)
                log_info("reload: ended %u session(s) of vm %s", k, old->vms[i].name);
        }
    }
    for (size_t j = 0; j < nc->n_vms; j++)
        added += nst[j] == CFG_ADDED;
    /* retire the old config: sessions still point into it */
    gw->retired[gw->n_retired].cfg = *old;
    gw->retired[gw->n_retired].last_id = gw->supervisor ? 0 : proxy_last_id(&gw->px);
    gw->n_retired++;
    *old = *nc;
    memset(nc, 0, sizeof *nc);
    if (gw->nproc > 1) {
        /* each network process admits its share (as at start) */
        old->max_unauth = (old->max_unauth + gw->nproc - 1) / gw->nproc;
        old->max_unauth_per_source = (old->max_unauth_per_source + gw->nproc - 1) / gw->nproc;
    }
    if (!gw->supervisor)
        proxy_cfg_changed(&gw->px, &gw->retired[gw->n_retired - 1].cfg);
    /* network process 1 is QEMU's serial client: hubs follow the config
     * (sessions of a removed VM were kicked above, with the reason) */
    if (!gw->supervisor && gw->k == 0 && serial_hubs_reload(gw->loop, old) != 0)
        log_err("reload: out of memory: a serial console added by the reload is not served");
    free(gw->ls);
    gw->ls = ls;
    gw->n_ls = nl;
    for (size_t i = 0; i < nl; i++) {
        listener_start(gw, &ls[i]);
        struct cfg_listen k = listener_key(&ls[i]);
        bool is_new = true;
        for (size_t j = 0; j < nn && k.vm; j++)
            if (cfg_listen_same(&k, &ln[j]))
                is_new = k.vm && nst[k.vm - old->vms] == CFG_ADDED;
        if (is_new && !gw->supervisor && gw->k == 0 && k.vm)
            log_listening(gw, &ls[i]);
    }
    retired_sweep(gw, gw->supervisor);
    snprintf(sum, sumsz, "%zu vm(s) added, %zu removed, %zu changed", added, removed, changed);
    free(ln), free(ost), free(nst), free(kept), free(used);
    return 0;
}

static void reload_begin(struct gw *gw, bool reread, bool ctl);

/* A reload asked for while one ran. */
static void reload_again_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct gw *gw = w->data;
    (void)loop;
    (void)revents;
    bool reread = gw->rl.again_reread;
    gw->rl.again = gw->rl.again_reread = false;
    reload_begin(gw, reread, false);
}

/* The reload is over: say so (log, audit, `vmgate reload`'s answer,
 * systemd), and with processes > 1 let the supervisor spread it. */
static void reload_end(struct gw *gw, bool ok, const char *msg)
{
    bool reread = gw->rl.reread;
    gw->rl.busy = false;
    if (gw->rl.again && !ev_is_active(&gw->rl.again_t)) {
        /* from the loop, not from here: we may be deep in a callback */
        ev_timer_init(&gw->rl.again_t, reload_again_cb, 0.0, 0.0);
        gw->rl.again_t.data = gw;
        ev_timer_start(gw->loop, &gw->rl.again_t);
    }
    if (gw->supervisor) {
        if (ok)
            log_debug("reload: configuration %s", msg);
        else
            log_err("reload: %s", msg);
        sup_forward_hup(gw);
        return;
    }
    if (reread || !ok) {
        if (ok)
            log_info("reload: %s", msg);
        else
            log_err("reload: keeping the old configuration: %s", msg);
    }
    if (reread) {
        struct audit_kv kv[] = { AUDIT_S("result", ok ? "ok" : "failed"),
                                 AUDIT_S("reason", ok ? NULL : msg) };
        atrail_emit(gw->audit, "reload", NULL, kv, 2);
    }
    if (gw->rl.ctl) {
        gw->rl.ctl = false;
        ctl_reload_done(gw->ctl, ok, msg);
    }
    if (gw->nproc <= 1) {
        notify_ready(gw, ok ? "reloaded" : "reload failed, old configuration kept");
    } else if (reread && gw->k == 0) {
        /* the supervisor fetches it and tells the other network processes */
        kill(notify_pid, SIGUSR2);
    }
}

/* The helper's answer to our AUTHP_REQ_CERT. */
static void reload_cert_done(void *arg, const struct authp_cert_resp *r)
{
    struct gw *gw = arg;
    char err[512];
    SSL_CTX *ctx = NULL;
    if (r->result == AUTHP_OK)
        ctx = certs_server_ctx_mem(r->chain, r->chain_len, r->key, r->key_len, gw->cfg.cert,
                                   gw->cfg.key, err, sizeof err);
    else
        snprintf(err, sizeof err, "auth helper: %s", r->detail);
    /* (the "SIGHUP: ..." lines are what t19/t24 and admins grep for) */
    const char *trig = gw->rl.ctl ? "vmgate reload" : "SIGHUP";
    if (!ctx)
        log_err("%s: keeping the old certificate: %s", trig, err);
    else if (!gw->supervisor)
        log_info("%s: reloaded certificate %s", trig, gw->cfg.cert);
    if (!ctx) {
        char msg[sizeof gw->rl.msg + sizeof err + 4200];
        snprintf(msg, sizeof msg, "certificate %s kept: %s (%s)", gw->cfg.cert, err,
                 gw->rl.msg);
        reload_end(gw, false, msg);
        return;
    }
    SSL_CTX_free(gw->ssl_ctx);
    gw->ssl_ctx = ctx;
    if (!gw->supervisor)
        proxy_set_ssl_ctx(&gw->px, ctx);
    char msg[sizeof gw->rl.msg + 4200];
    snprintf(msg, sizeof msg, "%s; certificate %s reloaded", gw->rl.msg, gw->cfg.cert);
    reload_end(gw, true, msg);
}

/* The second half: the certificate, with the config now in force. */
static void reload_cert(struct gw *gw)
{
    if (auth_client_fetch_cert(gw->auth, reload_cert_done, gw) == 0)
        return;
    char msg[sizeof gw->rl.msg + 96];
    snprintf(msg, sizeof msg, "certificate kept: cannot ask the auth helper (%s) (%s)",
             strerror(errno), gw->rl.msg);
    reload_end(gw, false, msg);
}

/* The helper's answer to our AUTHP_REQ_RELOAD. */
static void reload_cfg_done(void *arg, const struct authp_reload_resp *r, int *fds)
{
    struct gw *gw = arg;
    if (r->result != AUTHP_OK) {
        reload_end(gw, false, r->err);   /* (an error answer carries no fds) */
        return;
    }
    if (r->gen == gw->cfg_gen && !gw->rl.reread) {
        /* fetching what we have: we did the re-read ourselves (network
         * process 1), or the re-read failed (then nothing reloads) */
        for (unsigned i = 0; i < r->n_ls; i++)
            close(fds[i]);
        reload_end(gw, true, "nothing new");
        return;
    }
    struct cfg nc;
    char err[AUTHP_RELOAD_ERR_MAX + 1], sum[160];
    if (cfg_parse(gw->cfg.file, (const char *)r->text, r->text_len, &nc, err, sizeof err) != 0) {
        /* cannot happen: the helper parsed the same text */
        for (unsigned i = 0; i < r->n_ls; i++)
            close(fds[i]);
        reload_end(gw, false, err);
        return;
    }
    if (reload_apply(gw, &nc, r->ls, fds, r->n_ls, sum, sizeof sum) != 0) {
        reload_end(gw, false, "out of memory");
        return;
    }
    gw->cfg_gen = r->gen;
    snprintf(gw->rl.msg, sizeof gw->rl.msg, "%s: %s", gw->cfg.file, sum);
    if (!gw->rl.reread && !gw->supervisor)
        log_info("reload: took configuration %u: %s", r->gen, sum);
    reload_cert(gw);
}

/* Start a reload: reread (the helper re-reads the file) or just fetch
 * the config in force.  ctl: `vmgate reload` waits for the answer. */
static void reload_begin(struct gw *gw, bool reread, bool ctl)
{
    if (gw->rl.busy) {
        if (ctl) {
            ctl_reload_done(gw->ctl, false, "a reload is already under way");
            return;
        }
        /* a signal during a reload: run it again when this one is over */
        log_info("reload: one is already under way; another follows it");
        gw->rl.again = true;
        gw->rl.again_reread |= reread;
        return;
    }
    /* A reload also reopens the audit file by its path (issue 15: "reopened
     * on SIGUSR1 / `vmgate reload`"), in the process that writes it, so a
     * logrotate that moved the file may follow with either; the reload
     * event below then lands in the new file. */
    if (!gw->supervisor)
        atrail_reopen(gw->audit, "reload");
    gw->rl.busy = true;
    gw->rl.reread = reread;
    gw->rl.ctl = ctl;
    gw->rl.msg[0] = '\0';
    if (gw->nproc <= 1)
        notify_reloading();
    if (auth_client_reload(gw->auth, reread, reload_cfg_done, gw) != 0) {
        char msg[128];
        snprintf(msg, sizeof msg, "cannot ask the auth helper (%s)", strerror(errno));
        reload_end(gw, false, msg);
    }
}

/* `vmgate reload` on the control socket (network process 1). */
static void ctl_reload_cb(void *arg, const char *by)
{
    struct gw *gw = arg;
    log_info("reload requested by %s", by);
    reload_begin(gw, true, true);
}

/* SIGHUP: processes = 1, re-read; in a network process of several, the
 * supervisor's "fetch the config in force". */
static void hup_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct gw *gw = w->data;
    (void)loop;
    (void)revents;
    reload_begin(gw, gw->nproc <= 1, false);
}

/* SIGUSR2 in network process 1 (processes > 1): the supervisor got
 * SIGHUP; re-read. */
static void usr2_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)loop;
    (void)revents;
    reload_begin(w->data, true, false);
}

/* SIGUSR1 in a network process: logrotate moved the audit file (a
 * reload reopens it too, reload_begin). */
static void usr1_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct gw *gw = w->data;
    (void)loop;
    (void)revents;
    atrail_reopen(gw->audit, "SIGUSR1");
}

/* Every login allocates and frees TLS handshake buffers, the auth request,
 * the relay buffers' first blocks...; glibc keeps the freed pages, so after
 * a login storm an idle gateway would look tens of MiB bigger than what its
 * sessions hold.  Trimming every few seconds keeps RSS honest. */
static void trim_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    if (w->data)
        retired_sweep(w->data, false);
    malloc_trim(0);
}

static void auth_child_cb(struct ev_loop *loop, ev_child *w, int revents)
{
    (void)loop;
    (void)revents;
    ev_child_stop(loop, w);
    log_err("auth helper (pid %d) exited with status %d; new logins will fail, "
            "running sessions continue; restart vmgate", w->rpid, w->rstatus);
}

/* Become cfg->user (when root).  Returns 0 or -1 with a logged reason. */
static int drop_privileges(const struct cfg *cfg, const struct passwd *pw)
{
    if (geteuid() != 0) {
        log_info("running as uid %d (not root): no privilege change", (int)geteuid());
        return 0;
    }
    if (!pw) {
        log_warn("running as root: no user = configured, the network-facing process keeps root");
        return 0;
    }
    if (setgroups(1, &pw->pw_gid) == -1 || setgid(pw->pw_gid) == -1 || setuid(pw->pw_uid) == -1) {
        log_err("cannot switch to user %s: %s", cfg->user, strerror(errno));
        return -1;
    }
    if (setuid(0) != -1) {
        log_err("privilege drop to %s did not stick", cfg->user);
        return -1;
    }
    prctl(PR_SET_DUMPABLE, 0);
    log_info("network-facing process runs as %s (uid %d)", cfg->user, (int)pw->pw_uid);
    return 0;
}

static void log_listening(const struct gw *gw, const struct listener *l)
{
    char a[ADDR_PORT_MAX];
    if (l->local) {
        const char *ext = l->serial ? "serial" : l->spice ? "spice" : "vnc";
        char p[CFG_PATH_MAX + 1];
        if (cfg_socket_path(&gw->cfg, l->vm->name, ext, p, sizeof p) == 0)
            log_info("listening for vm %s (%s) on unix:%s", l->vm->name, ext, p);
        return;
    }
    if (l->web) {
        addr_hostport_str(gw->cfg.address, gw->cfg.web_port, a, sizeof a);
        log_info("listening for the browser console (web) on %s", a);
        return;
    }
    addr_hostport_str(gw->cfg.address, l->spice ? l->vm->spice_port : l->vm->vnc_port, a,
                      sizeof a);
    log_info("listening for vm %s (%s) on %s", l->vm->name, l->spice ? "spice" : "vnc", a);
}

/* Wait for the auth helper to exit after its sockets were closed (it then
 * kills its workers); SIGKILL after a second. */
static void reap_helper(pid_t pid)
{
    int st;
    for (int i = 0; i < 50; i++) {
        if (waitpid(pid, &st, WNOHANG) != 0)
            return;
        usleep(20000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
}

/* Serve the listeners from this process's loop until SIGTERM/SIGINT.
 * k is this process's slot (0 when processes = 1, which also makes it the
 * helper's parent: it watches and reaps the helper).  Returns the exit
 * status. */
static int net_run(struct gw *gw, unsigned k)
{
    struct cfg *cfg = &gw->cfg;
    bool single = gw->nproc <= 1;
    gw->loop = ev_default_loop(EVFLAG_AUTO);
    if (!gw->loop)
        log_fatal("cannot initialise the event loop");
    gw->auth = auth_client_new(gw->loop, gw->afds[k]);
    if (!gw->auth)
        log_fatal("out of memory");
    if (!single) {
        /* ids of this start's requests: a range no earlier start used */
        auth_client_set_first_id(gw->auth, ((gw->np[k].gen % 255u) + 1u) << 24 | 1u);
    }
    proxy_init(&gw->px, gw->loop, cfg, gw->ssl_ctx, gw->auth);
    gw->px.id_counter = gw->id_counter;   /* NULL with one process */
    gw->px.audit = gw->audit;
    /* the helper's bans: every process keeps the list (PROXY sources),
     * the first writes the audit events */
    gw->px.audit_bans = k == 0;
    auth_client_on_ban(gw->auth, proxy_ban_event, &gw->px);
    atrail_attach(gw->audit, gw->loop);
    /* One network process serves the control socket: the first; it sees
     * only its own sessions (README: processes > 1). */
    if (gw->ctl_fd >= 0 && k == 0) {
        gw->ctl = ctl_server_new(gw->loop, gw->ctl_fd, &gw->px, cfg, gw->have_admin_gid,
                                 gw->admin_gid, gw->nproc ? gw->nproc : 1);
        if (!gw->ctl)
            log_fatal("out of memory");
    }
    if (gw->metrics_fd >= 0 && k == 0) {
        gw->metrics = metrics_server_new(gw->loop, gw->metrics_fd, &gw->px);
        if (!gw->metrics)
            log_fatal("out of memory");
    }

    gw->k = k;
    if (gw->ctl)
        ctl_server_on_reload(gw->ctl, ctl_reload_cb, gw);
    if (!single && k == 0 && (gw->ctl || gw->metrics)) {
        /* status, kick, bans by hand and the metrics ask the others */
        gw->peers = peer_client_new(gw->loop, &gw->peer_a[1], gw->nproc - 1);
        if (!gw->peers)
            log_fatal("out of memory");
        if (gw->ctl)
            ctl_server_set_peers(gw->ctl, gw->peers);
        if (gw->metrics)
            metrics_server_set_peers(gw->metrics, gw->peers, gw->nproc);
    } else if (!single && k > 0) {
        gw->peer_srv = peer_server_new(gw->loop, gw->peer_b[k], &gw->px);
        if (!gw->peer_srv)
            log_fatal("out of memory");
    }
    for (size_t i = 0; i < gw->n_ls; i++) {
        listener_start(gw, &gw->ls[i]);
        if (single)
            log_listening(gw, &gw->ls[i]);
    }
    if (k == 0 && serial_hubs_start(gw->loop, cfg) != 0)
        log_fatal("out of memory");
    ev_signal_init(&gw->sig_int, stop_cb, SIGINT);
    ev_signal_init(&gw->sig_term, stop_cb, SIGTERM);
    ev_signal_init(&gw->sig_hup, hup_cb, SIGHUP);
    gw->sig_hup.data = gw;
    if (single)
        ev_signal_start(gw->loop, &gw->sig_int);
    else
        signal(SIGINT, SIG_IGN);   /* a terminal's ^C reaches the parent, which stops us */
    ev_signal_start(gw->loop, &gw->sig_term);
    ev_signal_start(gw->loop, &gw->sig_hup);
    ev_signal_init(&gw->sig_usr1, usr1_cb, SIGUSR1);
    gw->sig_usr1.data = gw;
    ev_signal_start(gw->loop, &gw->sig_usr1);
    if (!single && k == 0) {
        ev_signal_init(&gw->sig_usr2, usr2_cb, SIGUSR2);
        gw->sig_usr2.data = gw;
        ev_signal_start(gw->loop, &gw->sig_usr2);
    }
    ev_timer_init(&gw->trim_timer, trim_cb, 5.0, 5.0);
    gw->trim_timer.data = gw;
    ev_timer_start(gw->loop, &gw->trim_timer);
    if (single) {
        ev_child_init(&gw->auth_child, auth_child_cb, gw->auth_pid, 0);
        ev_child_start(gw->loop, &gw->auth_child);
        log_info("vmgate started: %zu vm listener(s), auth = %s", gw->n_ls,
                 cfg->auth == CFG_AUTH_PAM ? "pam" : "file");
        notify_ready(gw, "serving");
    } else {
        log_info("network process %u/%u ready", k + 1, gw->nproc);
        /* the supervisor tells systemd READY=1 when the first one is here;
         * never signal whoever inherited us if the supervisor is gone */
        if (getppid() == notify_pid)
            kill(notify_pid, SIGUSR1);
    }
    /* last: every socket, watcher and library state this process needs
     * exists now; from here on it may only use what the filter allows */
    char err[256];
    if (cfg->sandbox) {
        if (gateway_sandbox(err, sizeof err) != 0)
            log_fatal("sandbox: %s (sandbox = off in [gateway] runs without it)", err);
        log_debug("sandbox: seccomp allow-list on");
    } else {
        prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        log_warn("sandbox = off: the network process runs without its seccomp filter");
    }

    ev_run(gw->loop, 0);

    for (size_t i = 0; i < gw->n_ls; i++) {
        ev_io_stop(gw->loop, &gw->ls[i].io);
        ev_timer_stop(gw->loop, &gw->ls[i].pause);
        close(gw->ls[i].fd);
    }
    ctl_server_free(gw->ctl);
    gw->ctl = NULL;
    metrics_server_free(gw->metrics);   /* (before the peers its clients may wait for) */
    gw->metrics = NULL;
    peer_client_free(gw->peers);
    gw->peers = NULL;
    peer_server_free(gw->peer_srv);
    gw->peer_srv = NULL;
    if (gw->metrics_fd >= 0)
        close(gw->metrics_fd);
    if (gw->ctl_fd >= 0) {
        close(gw->ctl_fd);
        /* best effort (the unprivileged process may not, and under the
         * sandbox it may not unlink at all); a stale socket is replaced at
         * the next start anyway */
        if (single && !cfg->sandbox)
            unlink(cfg->control);
    }
    proxy_close_all(&gw->px, "gateway shutting down");
    serial_hubs_stop();
    retired_sweep(gw, true);
    free(gw->retired);
    ev_signal_stop(gw->loop, &gw->sig_usr1);
    ev_signal_stop(gw->loop, &gw->sig_usr2);
    ev_timer_stop(gw->loop, &gw->rl.again_t);
    atrail_close(gw->audit);
    gw->audit = gw->px.audit = NULL;
    proxy_fini(&gw->px);
    if (single)
        ev_child_stop(gw->loop, &gw->auth_child);
    auth_client_free(gw->auth);      /* closes the socket: the helper exits */
    if (single)
        reap_helper(gw->auth_pid);
    ev_timer_stop(gw->loop, &gw->trim_timer);
    SSL_CTX_free(gw->ssl_ctx);
    buf_pool_drain();
    free(gw->ls);
    cfg_free(cfg);
    if (single)
        log_info("stopped");
    return 0;
}

/* ---- processes > 1: the parent ---- */

static void start_netproc(struct netproc *p);

static void netproc_child_cb(struct ev_loop *loop, ev_child *w, int revents)
{
    struct netproc *p = w->data;
    struct gw *gw = p->gw;
    (void)revents;
    ev_child_stop(loop, w);
    p->pid = 0;
    if (gw->stopping) {
        for (unsigned i = 0; i < gw->nproc; i++)
            if (gw->np[i].pid)
                return;
        ev_break(loop, EVBREAK_ALL);     /* the last one is gone */
        return;
    }
    char how[64];
    if (WIFSIGNALED(w->rstatus))
        snprintf(how, sizeof how, "killed by signal %d", WTERMSIG(w->rstatus));
    else
        snprintf(how, sizeof how, "exit status %d", WEXITSTATUS(w->rstatus));
    bool quick = ev_now(loop) - p->started < 1.0;
    log_warn("network process %u (pid %d) died (%s); starting a new one%s", p->k + 1,
             (int)w->rpid, how, quick ? " in 1 s" : "");
    if (quick) {
        ev_timer_set(&p->respawn, 1.0, 0);
        ev_timer_start(loop, &p->respawn);
    } else {
        start_netproc(p);
    }
}

static void respawn_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct netproc *p = w->data;
    if (!p->gw->stopping)
        start_netproc(p);
}

/* Fork network process p->k.  The child leaves the parent's watchers
 * behind (it shares the default loop's memory) and runs net_run. */
static void start_netproc(struct netproc *p)
{
    struct gw *gw = p->gw;
    fflush(NULL);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        log_err("network process %u: fork: %s; retrying in 1 s", p->k + 1, strerror(errno));
        ev_timer_set(&p->respawn, 1.0, 0);
        ev_timer_start(gw->loop, &p->respawn);
        return;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(0);                      /* the parent died before prctl */
        struct ev_loop *loop = gw->loop;
        ev_signal_stop(loop, &gw->sig_int);
        ev_signal_stop(loop, &gw->sig_term);
        ev_signal_stop(loop, &gw->sig_hup);
        ev_signal_stop(loop, &gw->sig_ready);
        ev_signal_stop(loop, &gw->sig_usr2);
        /* (SIG_DFL would let a reload's SIGUSR2 kill us before net_run
         * installs its handler; network process 1 installs one) */
        signal(SIGUSR2, SIG_IGN);
        ev_child_stop(loop, &gw->auth_child);
        ev_timer_stop(loop, &gw->stop_timer);
        for (unsigned i = 0; i < gw->nproc; i++) {
            ev_child_stop(loop, &gw->np[i].child);
            ev_timer_stop(loop, &gw->np[i].respawn);
            if (i != p->k)
                close(gw->afds[i]);
            /* the peer channel: network process 1 keeps every a end, the
             * others their own b end */
            if (i > 0 && p->k != 0)
                close(gw->peer_a[i]);
            if (i > 0 && i != p->k)
                close(gw->peer_b[i]);
        }
        auth_client_free(gw->auth);        /* the supervisor's socket: not ours */
        gw->auth = NULL;
        gw->supervisor = false;
        /* the supervisor's reload is not ours */
        gw->rl.busy = gw->rl.ctl = gw->rl.again = gw->rl.again_reread = false;
        ev_timer_stop(loop, &gw->rl.again_t);
        ev_loop_fork(loop);
        char tag[16];
        snprintf(tag, sizeof tag, "net%u", p->k + 1);
        log_set_tag(tag);
        _exit(net_run(gw, p->k));
    }
    p->pid = pid;
    p->gen++;
    p->started = ev_now(gw->loop);
    ev_child_set(&p->child, pid, 0);
    ev_child_start(gw->loop, &p->child);
}

/* Network processes still there 5 s after SIGTERM (hung, or one that was
 * starting and missed it) are killed. */
static void stop_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct gw *gw = w->data;
    (void)loop;
    (void)revents;
    for (unsigned i = 0; i < gw->nproc; i++)
        if (gw->np[i].pid) {
            log_warn("network process %u (pid %d) still running 5 s after SIGTERM; killing it",
                     i + 1, (int)gw->np[i].pid);
            kill(gw->np[i].pid, SIGKILL);
        }
}

static void sup_stop_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct gw *gw = w->data;
    (void)revents;
    log_info("received %s, stopping %u network processes",
             w->signum == SIGINT ? "SIGINT" : "SIGTERM", gw->nproc);
    gw->stopping = true;
    notify("STOPPING=1");
    bool any = false;
    for (unsigned i = 0; i < gw->nproc; i++) {
        ev_timer_stop(loop, &gw->np[i].respawn);
        if (gw->np[i].pid) {
            kill(gw->np[i].pid, SIGTERM);
            any = true;
        }
    }
    if (!any)
        ev_break(loop, EVBREAK_ALL);
    else if (!ev_is_active(&gw->stop_timer))
        ev_timer_start(loop, &gw->stop_timer);
}

static void sup_forward_hup(struct gw *gw)
{
    for (unsigned i = 0; i < gw->nproc; i++)
        if (gw->np[i].pid)
            kill(gw->np[i].pid, SIGHUP);
    if (gw->notified_ready)
        notify_ready(gw, "reloaded");
}

/* SIGUSR1: a network process has its loop running.  The first one makes
 * the service ready (the listeners were bound before any fork, so the
 * kernel queues connections from now on); later ones are replacements. */
static void sup_ready_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct gw *gw = w->data;
    (void)loop;
    (void)revents;
    if (gw->stopping)
        return;
    if (gw->notified_ready) {
        /* logrotate's SIGUSR1 (or a replacement's hello): the network
         * processes reopen the audit file */
        for (unsigned i = 0; i < gw->nproc; i++)
            if (gw->np[i].pid)
                kill(gw->np[i].pid, SIGUSR1);
        return;
    }
    gw->notified_ready = true;
    notify_ready(gw, "serving");
}

/* SIGHUP in the supervisor: network process 1 re-reads (it has the
 * audit trail and answers `vmgate reload` the same way); when it is done
 * it SIGUSR2s us (sup_usr2_cb).  Without one (it is being replaced) we
 * re-read ourselves. */
static void sup_hup_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct gw *gw = w->data;
    (void)loop;
    (void)revents;
    if (gw->notified_ready)
        notify_reloading();
    if (gw->np[0].pid && kill(gw->np[0].pid, SIGUSR2) == 0)
        return;
    reload_begin(gw, true, false);
}

/* SIGUSR2 from network process 1: a re-read is over (taken or not).
 * Fetch the config in force for ourselves (a replacement network process
 * starts from our copy), then SIGHUP every network process so each
 * fetches it too (reload_end -> sup_forward_hup). */
static void sup_usr2_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)loop;
    (void)revents;
    reload_begin(w->data, false, false);
}

/* The parent with processes > 1: start the network processes, forward
 * signals, replace the ones that die, and at the end stop them and the
 * helper.  It never accepts a connection itself. */
static int supervise(struct gw *gw)
{
    struct cfg *cfg = &gw->cfg;
    gw->loop = ev_default_loop(EVFLAG_AUTO);
    if (!gw->loop)
        log_fatal("cannot initialise the event loop");
    /* one counter for every process and every replacement: conn=N stays
     * unique in the log and in order of arrival */
    gw->id_counter = mmap(NULL, sizeof *gw->id_counter, PROT_READ | PROT_WRITE,
                          MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (gw->id_counter == MAP_FAILED)
        log_fatal("mmap: %s", strerror(errno));
    *gw->id_counter = 1;
    /* each network process admits its share of the unauthenticated caps
     * (they inherit this copy of the config) */
    cfg->max_unauth = (cfg->max_unauth + gw->nproc - 1) / gw->nproc;
    cfg->max_unauth_per_source = (cfg->max_unauth_per_source + gw->nproc - 1) / gw->nproc;
    for (size_t i = 0; i < gw->n_ls; i++)
        log_listening(gw, &gw->ls[i]);
    ev_signal_init(&gw->sig_int, sup_stop_cb, SIGINT);
    ev_signal_init(&gw->sig_term, sup_stop_cb, SIGTERM);
    ev_signal_init(&gw->sig_hup, sup_hup_cb, SIGHUP);
    ev_signal_init(&gw->sig_ready, sup_ready_cb, SIGUSR1);
    ev_signal_init(&gw->sig_usr2, sup_usr2_cb, SIGUSR2);
    gw->sig_int.data = gw->sig_term.data = gw->sig_hup.data = gw->sig_ready.data = gw;
    gw->sig_usr2.data = gw;
    ev_signal_start(gw->loop, &gw->sig_usr2);
    ev_signal_start(gw->loop, &gw->sig_int);
    ev_signal_start(gw->loop, &gw->sig_term);
    ev_signal_start(gw->loop, &gw->sig_hup);
    ev_signal_start(gw->loop, &gw->sig_ready);
    ev_child_init(&gw->auth_child, auth_child_cb, gw->auth_pid, 0);
    ev_child_start(gw->loop, &gw->auth_child);
    ev_timer_init(&gw->stop_timer, stop_timer_cb, 5.0, 0);
    gw->stop_timer.data = gw;
    gw->supervisor = true;
    for (unsigned i = 1; i < gw->nproc; i++) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) != 0)
            log_fatal("socketpair: %s", strerror(errno));
        int sz = (int)PEER_MSG_MAX + 4096;
        setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
        setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
        gw->peer_a[i] = sv[0];
        gw->peer_b[i] = sv[1];
    }
    gw->auth = auth_client_new(gw->loop, gw->afds[gw->nproc]);   /* for SIGHUP */
    if (!gw->auth)
        log_fatal("out of memory");
    for (unsigned i = 0; i < gw->nproc; i++) {
        struct netproc *p = &gw->np[i];
        p->gw = gw;
        p->k = i;
        ev_child_init(&p->child, netproc_child_cb, 0, 0);
        p->child.data = p;
        ev_timer_init(&p->respawn, respawn_cb, 1.0, 0);
        p->respawn.data = p;
        start_netproc(p);
    }
    log_info("vmgate started: %zu vm listener(s), auth = %s, %u network processes (each admits "
             "%u unauthenticated connections, %u per source)", gw->n_ls,
             cfg->auth == CFG_AUTH_PAM ? "pam" : "file", gw->nproc, cfg->max_unauth,
             cfg->max_unauth_per_source);
    log_info("started %u network processes", gw->nproc);

    ev_run(gw->loop, 0);

    ev_timer_stop(gw->loop, &gw->stop_timer);
    ev_child_stop(gw->loop, &gw->auth_child);
    auth_client_free(gw->auth);
    for (unsigned i = 0; i < gw->nproc; i++)
        close(gw->afds[i]);           /* every socket closed: the helper exits */
    reap_helper(gw->auth_pid);
    for (size_t i = 0; i < gw->n_ls; i++)
        close(gw->ls[i].fd);
    SSL_CTX_free(gw->ssl_ctx);
    free(gw->ls);
    cfg_free(cfg);
    log_info("stopped");
    return 0;
}

/* The checks `vmgate run` and `vmgate check` share, printed to stderr as
 * "CONFIG: ...".  Refused (returns -1): a password file others could
 * rewrite (auth_pwfile_check_perms).  Warned: a CA private key beside the
 * server key (whoever reads that directory can mint certificates your
 * viewers trust; `vmgate certs init` puts it in DIR/ca/), and no
 * [firewall] section (failed logins are then only delayed, never banned in
 * the kernel).  Returns 0 otherwise. */
static int preflight(const struct cfg *cfg)
{
    char msg[4096];
    int rc = 0;
    if (cfg->auth == CFG_AUTH_FILE &&
        auth_pwfile_check_perms(cfg->passwd_file, geteuid() == 0, msg, sizeof msg) != 0) {
        fprintf(stderr, "%s: error: %s\n", cfg->file, msg);
        rc = -1;
    }
    if (certs_ca_key_beside(cfg->key, msg, sizeof msg))
        fprintf(stderr, "%s: WARNING: a CA private key %s lies beside the server key: "
                "anyone who can read that directory can mint certificates your viewers "
                "trust; move it offline (or at least to a 0700 directory elsewhere)\n",
                cfg->file, msg);
    if (!cfg->fw.present)
        fprintf(stderr, "%s: warning: no [firewall] section: failed logins are delayed but "
                "never banned in the kernel, and the raw console ports are not protected "
                "(see vmgate(8), [firewall])\n", cfg->file);
    return rc;
}

int gateway_run(const char *cfgfile, int verbose)
{
    static struct gw gw;
    char err[1024];
    log_set_tag("main");
    notify_pid = getpid();
    if (verbose)
        log_set_level(LOG_LVL_DEBUG);
    signal(SIGPIPE, SIG_IGN);

    if (cfg_load(cfgfile, &gw.cfg, err, sizeof err) != 0) {
        fprintf(stderr, "vmgate: %s\n", err);
        return 1;
    }
    struct cfg *cfg = &gw.cfg;
    gw.cfg_gen = 1;
    gw.ssl_ctx = certs_server_ctx(cfg->cert, cfg->key, err, sizeof err);
    if (!gw.ssl_ctx) {
        fprintf(stderr, "vmgate: cannot load the TLS certificate: %s\n", err);
        return 1;
    }
    if (preflight(cfg) != 0)
        return 1;
    size_t n_ports = 0;
    for (size_t i = 0; i < cfg->n_vms; i++)
        n_ports += (cfg->vms[i].vnc_port != 0) + (cfg->vms[i].spice_port != 0) +
                   (cfg->socket_dir[0] && cfg->vms[i].vnc.kind != CFG_BE_NONE) +
                   (cfg->socket_dir[0] && cfg->vms[i].serial.kind != CFG_BE_NONE) +
                   (cfg->socket_dir[0] && cfg->vms[i].spice.kind != CFG_BE_NONE);
    n_ports += cfg->web_port != 0;
    gw.ls = calloc(n_ports ? n_ports : 1, sizeof *gw.ls);
    if (!gw.ls)
        log_fatal("out of memory");
    for (size_t i = 0; i < cfg->n_vms; i++) {
        const struct cfg_vm *vm = &cfg->vms[i];
        for (int sp = 0; sp < 2; sp++) {
            uint16_t port = sp ? vm->spice_port : vm->vnc_port;
            if (!port)
                continue;
            int fd = addr_listen_tcp(cfg->address, port, err, sizeof err);
            if (fd < 0) {
                char a[ADDR_PORT_MAX];
                addr_hostport_str(cfg->address, port, a, sizeof a);
                fprintf(stderr, "vmgate: cannot listen on %s for vm %s: %s\n", a, vm->name, err);
                return 1;
            }
            struct listener *l = &gw.ls[gw.n_ls++];
            l->fd = fd;
            l->vm = vm;
            l->gw = &gw;
            l->spice = sp;
            l->port = port;
        }
    }
    if (cfg->web_port) {
        int fd = addr_listen_tcp(cfg->address, cfg->web_port, err, sizeof err);
        if (fd < 0) {
            char a[ADDR_PORT_MAX];
            addr_hostport_str(cfg->address, cfg->web_port, a, sizeof a);
            fprintf(stderr, "vmgate: cannot listen on %s for web_port: %s\n", a, err);
            return 1;
        }
        struct listener *l = &gw.ls[gw.n_ls++];
        l->fd = fd;
        l->vm = &web_vm_none;
        l->gw = &gw;
        l->web = true;
        l->port = cfg->web_port;
    }
    /* socket_dir/NAME.vnc for every VM with a vnc backend (bound as root,
     * before the privilege drop, shared by every network process) */
    /* ... socket_dir/NAME.serial for every VM with a serial console, and
     * socket_dir/NAME.spice for every VM with SPICE (network process 1
     * only, like the SPICE ports) */
    for (size_t j = 0; j < 3 * cfg->n_vms && cfg->socket_dir[0]; j++) {
        const struct cfg_vm *vm = &cfg->vms[j % cfg->n_vms];
        bool serial = j >= cfg->n_vms && j < 2 * cfg->n_vms, spice = j >= 2 * cfg->n_vms;
        const char *ext = serial ? "serial" : spice ? "spice" : "vnc";
        char path[CFG_PATH_MAX + 1];
        bool perm;
        if ((serial ? vm->serial.kind : spice ? vm->spice.kind : vm->vnc.kind) == CFG_BE_NONE ||
            cfg_socket_path(cfg, vm->name, ext, path, sizeof path) != 0)
            continue;
        int fd = addr_listen_unix(cfg->socket_dir, path, err, sizeof err, &perm);
        if (fd < 0 && perm && geteuid() != 0) {
            log_warn("%s; no local sockets (run as root, or set socket_dir)", err);
            break;
        }
        if (fd < 0) {
            fprintf(stderr, "vmgate: cannot listen for vm %s: %s\n", vm->name, err);
            return 1;
        }
        struct listener *l = &gw.ls[gw.n_ls++];
        l->fd = fd;
        l->vm = vm;
        l->gw = &gw;
        l->local = true;
        l->serial = serial;
        l->spice = spice;
    }
    if (gw.n_ls == 0)
        log_warn("no [vm] with a vnc_port or spice_port and no web_port: nothing to listen on");

    struct passwd *pw = NULL;
    if (geteuid() == 0 && cfg->user[0]) {
        pw = getpwnam(cfg->user);
        if (!pw) {
            fprintf(stderr, "vmgate: %s: user = %s: no such user\n", cfg->file, cfg->user);
            return 1;
        }
    }

    /* The firewall needs CAP_NET_ADMIN: apply it while we still have it. */
    if (cfg->fw.present) {
        if (fw_can_manage()) {
            if (fw_apply(cfg, err, sizeof err) != 0) {
                fprintf(stderr, "vmgate: %s:%d: firewall: %s\n", cfg->file,
                        cfg->fw.allow_line ? cfg->fw.allow_line : cfg->fw.line, err);
                return 1;
            }
            gw.fw_managed = true;
            log_info("firewall: table inet vmgate applied (protect %u-%u)",
                     cfg->fw.protect_lo, cfg->fw.protect_hi);
        } else {
            log_warn("firewall: [firewall] is configured but vmgate lacks CAP_NET_ADMIN; "
                     "run 'vmgate firewall apply' as root");
        }
    }

    /* SIGUSR1 (logrotate) must not kill the helper: it inherits "ignore";
     * the network processes install their handler */
    signal(SIGUSR1, SIG_IGN);
    unsigned nproc = cfg_processes(cfg);
    /* with processes > 1 the supervisor has a socket too (the last one),
     * to fetch the certificate on SIGHUP */
    if (auth_helper_start_n(cfg, gw.afds, nproc > 1 ? nproc + 1 : 1, &gw.auth_pid) != 0) {
        fprintf(stderr, "vmgate: cannot start the auth helper: %s\n", strerror(errno));
        return 1;
    }
    /* After the helper started (it must not inherit these fds), before
     * the privilege drop. */
    /* The audit file is opened as root and handed to the network user, so
     * it can reopen it after logrotate (SIGUSR1). */
    gw.audit = atrail_open(cfg->audit, pw ? pw->pw_uid : (uid_t)-1, pw ? pw->pw_gid : (gid_t)-1,
                          err, sizeof err);
    if (cfg->audit[0] && !gw.audit) {
        fprintf(stderr, "vmgate: %s: %s\n", cfg->file, err);
        kill(gw.auth_pid, SIGTERM);
        return 1;
    }
    /* metrics: a port in use is fatal like a VM port */
    gw.metrics_fd = -1;
    if (cfg->metrics[0]) {
        gw.metrics_fd = metrics_listen(cfg->metrics, err, sizeof err);
        if (gw.metrics_fd < 0) {
            fprintf(stderr, "vmgate: %s: cannot listen for metrics: %s\n", cfg->file, err);
            kill(gw.auth_pid, SIGTERM);
            return 1;
        }
        log_info("metrics on http://%s/metrics", cfg->metrics);
    }
    /* The control socket: bound as root (its directory is root's); a
     * failure leaves vmgate without one, with a warning (a second vmgate
     * on the host must not take the first one's socket). */
    gw.ctl_fd = -1;
    if (cfg->control[0]) {
        gw.ctl_fd = ctl_listen(cfg->control, err, sizeof err);
        if (gw.ctl_fd < 0)
            log_warn("no control socket (vmgate status/kick will not work): %s", err);
        else
            log_info("control socket %s", cfg->control);
        if (cfg->admin_group[0]) {
            struct group *g = getgrnam(cfg->admin_group);
            if (g) {
                gw.have_admin_gid = true;
                gw.admin_gid = g->gr_gid;
            } else {
                log_warn("admin_group %s does not exist: only root may use the control socket",
                         cfg->admin_group);
            }
        }
    }
    if (drop_privileges(cfg, pw) != 0) {
        kill(gw.auth_pid, SIGTERM);
        return 1;
    }

    gw.nproc = nproc;
    if (gw.nproc > 1)
        return supervise(&gw);
    return net_run(&gw, 0);
}

int gateway_check(const char *cfgfile)
{
    struct cfg cfg;
    char err[1024];
    if (cfg_load(cfgfile, &cfg, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    int rc = 0;
    if (cfg.fw.present && fw_validate(&cfg, err, sizeof err) != 0) {
        /* the firewall's checks are about the allow list, or else the section */
        fprintf(stderr, "%s:%d: %s\n", cfg.file,
                cfg.fw.allow_line ? cfg.fw.allow_line : cfg.fw.line, err);
        cfg_free(&cfg);
        return 1;
    }
    cfg_print(&cfg, stdout);
    SSL_CTX *ctx = certs_server_ctx(cfg.cert, cfg.key, err, sizeof err);
    if (!ctx) {
        fprintf(stderr, "%s: warning: %s\n", cfg.file, err);
    } else {
        SSL_CTX_free(ctx);
    }
    /* QEMU without -qmp/-monitor/-mon keeps its HMP monitor on a virtual
     * console a VNC viewer can switch to (Ctrl-Alt-2); vmgate blocks that
     * (qemu_consoles = block), but the monitor should not be there at all */
    for (size_t i = 0; i < cfg.n_vms; i++)
        if (!cfg.vms[i].qmp[0])
            fprintf(stderr,
                    "%s:%d: warning: vm %s has no qmp socket: without -qmp/-monitor QEMU puts "
                    "its monitor on a virtual console (Ctrl-Alt-2 in its VNC server)%s\n",
                    cfg.file, cfg.vms[i].line, cfg.vms[i].name,
                    cfg.vms[i].qemu_consoles == CFG_QCONS_ALLOW
                        ? ", and qemu_consoles = allow lets viewers reach it" : "");
    if (cfg.auth == CFG_AUTH_FILE && access(cfg.passwd_file, R_OK) != 0)
        fprintf(stderr, "%s: warning: passwd_file %s: %s\n", cfg.file, cfg.passwd_file,
                strerror(errno));
    if (preflight(&cfg) != 0) {
        cfg_free(&cfg);
        return 1;
    }
    printf("%s: OK\n", cfg.file);
    cfg_free(&cfg);
    return rc;
}
