/* gateway/daemon.c — vmgate run: load, bind, fork the auth helper, drop
 * privileges, then serve every VM's listener from one libev loop.
 *
 * Order matters and follows hitch/OpenSSH: everything that needs root
 * (reading the key, binding low ports, starting the PAM helper, applying the
 * firewall) happens first; then the network-facing process becomes
 * cfg->user before it reads a single byte from the network. */
#include "gateway/gateway.h"

#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <malloc.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ev.h>
#include <openssl/ssl.h>

#include "auth/auth.h"
#include "certs/certs.h"
#include "common/buf.h"
#include "common/config.h"
#include "common/log.h"
#include "firewall/firewall.h"
#include "proxy/proxy.h"
#include "proxy/spice.h"

struct listener {
    ev_io io;
    ev_timer pause;          /* accept() hit EMFILE: retry shortly */
    int fd;
    const struct cfg_vm *vm;
    struct gw *gw;
    bool spice;              /* a spice_port listener (else vnc_port) */
};

struct gw {
    struct cfg cfg;
    struct ev_loop *loop;
    SSL_CTX *ssl_ctx;
    struct proxy px;
    struct auth_client *auth;
    pid_t auth_pid;
    struct listener *ls;
    size_t n_ls;
    ev_signal sig_int, sig_term, sig_hup;
    ev_child auth_child;
    ev_timer trim_timer;     /* hand freed heap back to the kernel */
    bool fw_managed;
};

/* Bind one listener on addr:port.  "::" listens dual stack.  Returns the
 * fd, or -1 with why set. */
static int listen_on(const char *addr, uint16_t port, char *why, size_t whylen)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        sl = sizeof *s4;
    } else if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        sl = sizeof *s6;
    } else {
        snprintf(why, whylen, "%s is not a numeric address", addr);
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        snprintf(why, whylen, "socket: %s", strerror(errno));
        return -1;
    }
    int one = 1, zero = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ss.ss_family == AF_INET6) {
        /* "::" means both families; a specific v6 address means just v6. */
        int v6only = IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr) ? 0 : 1;
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, v6only ? &one : &zero, sizeof one);
    }
    if (bind(fd, (struct sockaddr *)&ss, sl) == -1 || listen(fd, 128) == -1) {
        snprintf(why, whylen, "%s", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct listener *l = (struct listener *)w;
    unsigned port = l->spice ? l->vm->spice_port : l->vm->vnc_port;
    (void)revents;
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = accept4(l->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd == -1) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                log_warn("accept on port %u: %s; pausing this listener for 100 ms",
                         port, strerror(errno));
                ev_io_stop(loop, &l->io);
                ev_timer_start(loop, &l->pause);
            } else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
                log_warn("accept on port %u: %s", port, strerror(errno));
            }
            return;
        }
        if (l->spice)
            spice_accept(&l->gw->px, l->vm, fd, (struct sockaddr *)&ss, sl);
        else
            proxy_accept(&l->gw->px, l->vm, fd, (struct sockaddr *)&ss, sl);
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
    ev_break(loop, EVBREAK_ALL);
}

/* SIGHUP: reload the certificate and key for new connections; live
 * sessions keep the context they started with (SSL objects hold a ref). */
static void hup_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct gw *gw = w->data;
    (void)loop;
    (void)revents;
    char err[512];
    SSL_CTX *ctx = certs_server_ctx(gw->cfg.cert, gw->cfg.key, err, sizeof err);
    if (!ctx) {
        log_err("SIGHUP: keeping the old certificate: %s", err);
        return;
    }
    SSL_CTX_free(gw->ssl_ctx);
    gw->ssl_ctx = ctx;
    proxy_set_ssl_ctx(&gw->px, ctx);
    log_info("SIGHUP: reloaded certificate %s", gw->cfg.cert);
}

/* Every login allocates and frees TLS handshake buffers, the auth request,
 * the relay buffers' first blocks...; glibc keeps the freed pages, so after
 * a login storm an idle gateway would look tens of MiB bigger than what its
 * sessions hold.  Trimming every few seconds keeps RSS honest. */
static void trim_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
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

int gateway_run(const char *cfgfile, int verbose)
{
    static struct gw gw;
    char err[1024];
    log_set_tag("main");
    if (verbose)
        log_set_level(LOG_LVL_DEBUG);
    signal(SIGPIPE, SIG_IGN);

    if (cfg_load(cfgfile, &gw.cfg, err, sizeof err) != 0) {
        fprintf(stderr, "vmgate: %s\n", err);
        return 1;
    }
    struct cfg *cfg = &gw.cfg;
    gw.ssl_ctx = certs_server_ctx(cfg->cert, cfg->key, err, sizeof err);
    if (!gw.ssl_ctx) {
        fprintf(stderr, "vmgate: cannot load the TLS certificate: %s\n", err);
        return 1;
    }
    size_t n_ports = 0;
    for (size_t i = 0; i < cfg->n_vms; i++)
        n_ports += (cfg->vms[i].vnc_port != 0) + (cfg->vms[i].spice_port != 0);
    gw.ls = calloc(n_ports ? n_ports : 1, sizeof *gw.ls);
    if (!gw.ls)
        log_fatal("out of memory");
    for (size_t i = 0; i < cfg->n_vms; i++) {
        const struct cfg_vm *vm = &cfg->vms[i];
        for (int sp = 0; sp < 2; sp++) {
            uint16_t port = sp ? vm->spice_port : vm->vnc_port;
            if (!port)
                continue;
            int fd = listen_on(cfg->address, port, err, sizeof err);
            if (fd < 0) {
                fprintf(stderr, "vmgate: cannot listen on %s%s%s:%u for vm %s: %s\n",
                        strchr(cfg->address, ':') ? "[" : "", cfg->address,
                        strchr(cfg->address, ':') ? "]" : "", port, vm->name, err);
                return 1;
            }
            struct listener *l = &gw.ls[gw.n_ls++];
            l->fd = fd;
            l->vm = vm;
            l->gw = &gw;
            l->spice = sp;
        }
    }
    if (gw.n_ls == 0)
        log_warn("no [vm] with a vnc_port or spice_port: nothing to listen on");

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

    int afd;
    if (auth_helper_start(cfg, &afd, &gw.auth_pid) != 0) {
        fprintf(stderr, "vmgate: cannot start the auth helper: %s\n", strerror(errno));
        return 1;
    }
    if (drop_privileges(cfg, pw) != 0) {
        kill(gw.auth_pid, SIGTERM);
        return 1;
    }

    gw.loop = ev_default_loop(EVFLAG_AUTO);
    if (!gw.loop)
        log_fatal("cannot initialise the event loop");
    gw.auth = auth_client_new(gw.loop, afd);
    if (!gw.auth)
        log_fatal("out of memory");
    proxy_init(&gw.px, gw.loop, cfg, gw.ssl_ctx, gw.auth);

    for (size_t i = 0; i < gw.n_ls; i++) {
        struct listener *l = &gw.ls[i];
        ev_io_init(&l->io, accept_cb, l->fd, EV_READ);
        ev_timer_init(&l->pause, pause_cb, 0.1, 0);
        l->pause.data = l;
        ev_io_start(gw.loop, &l->io);
        log_info("listening for vm %s (%s) on %s%s%s:%u", l->vm->name,
                 l->spice ? "spice" : "vnc", strchr(cfg->address, ':') ? "[" : "", cfg->address,
                 strchr(cfg->address, ':') ? "]" : "", l->spice ? l->vm->spice_port : l->vm->vnc_port);
    }
    ev_signal_init(&gw.sig_int, stop_cb, SIGINT);
    ev_signal_init(&gw.sig_term, stop_cb, SIGTERM);
    ev_signal_init(&gw.sig_hup, hup_cb, SIGHUP);
    gw.sig_hup.data = &gw;
    ev_signal_start(gw.loop, &gw.sig_int);
    ev_signal_start(gw.loop, &gw.sig_term);
    ev_signal_start(gw.loop, &gw.sig_hup);
    ev_timer_init(&gw.trim_timer, trim_cb, 5.0, 5.0);
    ev_timer_start(gw.loop, &gw.trim_timer);
    ev_child_init(&gw.auth_child, auth_child_cb, gw.auth_pid, 0);
    ev_child_start(gw.loop, &gw.auth_child);
    log_info("vmgate started: %zu vm listener(s), auth = %s", gw.n_ls,
             cfg->auth == CFG_AUTH_PAM ? "pam" : "file");

    ev_run(gw.loop, 0);

    for (size_t i = 0; i < gw.n_ls; i++) {
        ev_io_stop(gw.loop, &gw.ls[i].io);
        ev_timer_stop(gw.loop, &gw.ls[i].pause);
        close(gw.ls[i].fd);
    }
    proxy_close_all(&gw.px, "gateway shutting down");
    spice_close_all(&gw.px, "gateway shutting down");
    ev_child_stop(gw.loop, &gw.auth_child);
    auth_client_free(gw.auth);      /* closes the socket: the helper exits */
    int st;
    for (int i = 0; i < 50; i++) {
        if (waitpid(gw.auth_pid, &st, WNOHANG) != 0)
            break;
        usleep(20000);
        if (i == 49) {
            kill(gw.auth_pid, SIGKILL);
            waitpid(gw.auth_pid, &st, 0);
        }
    }
    ev_timer_stop(gw.loop, &gw.trim_timer);
    SSL_CTX_free(gw.ssl_ctx);
    buf_pool_drain();
    free(gw.ls);
    cfg_free(cfg);
    log_info("stopped");
    return 0;
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
    if (cfg.auth == CFG_AUTH_FILE && access(cfg.passwd_file, R_OK) != 0)
        fprintf(stderr, "%s: warning: passwd_file %s: %s\n", cfg.file, cfg.passwd_file,
                strerror(errno));
    printf("%s: OK\n", cfg.file);
    cfg_free(&cfg);
    return rc;
}
