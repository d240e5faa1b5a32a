/* tests/tools/spice_testd.c — a test-only SPICE gateway daemon: loads a
 * vmgate config, starts the auth helper, and serves every VM's spice_port
 * with spice_accept().  It stands in for build/vmgate until gateway/daemon.c
 * starts the SPICE listeners (tests/integration/t4*-spice*.sh use it only
 * when VMGATE_SPICE_TESTD=1).  No privilege drop, no firewall, no VNC.
 *
 *   spice_testd -c CONFIG [-v]
 *
 * Logs like vmgate ("listening for vm NAME (spice) on ADDR:PORT"); SIGTERM
 * or SIGINT stop it. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ev.h>

#include "auth/auth.h"
#include "certs/certs.h"
#include "common/config.h"
#include "common/log.h"
#include "proxy/proxy.h"
#include "proxy/spice.h"

struct lst {
    ev_io io;
    int fd;
    const struct cfg_vm *vm;
    struct proxy *px;
};

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct lst *l = (struct lst *)w;
    (void)loop;
    (void)revents;
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = accept4(l->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd == -1)
            return;
        spice_accept(l->px, l->vm, fd, (struct sockaddr *)&ss, sl);
    }
}

static void stop_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)w;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

static int listen_on(const char *addr, uint16_t port)
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
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, (struct sockaddr *)&ss, sl) == -1 || listen(fd, 128) == -1)
        return -1;
    return fd;
}

int main(int argc, char **argv)
{
    const char *cfgfile = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "c:v")) != -1) {
        if (opt == 'c')
            cfgfile = optarg;
        else if (opt == 'v')
            log_set_level(LOG_LVL_DEBUG);
    }
    if (!cfgfile) {
        fprintf(stderr, "usage: spice_testd -c CONFIG [-v]\n");
        return 2;
    }
    log_set_tag("main");
    signal(SIGPIPE, SIG_IGN);
    static struct cfg cfg;
    char err[1024];
    if (cfg_load(cfgfile, &cfg, err, sizeof err) != 0) {
        fprintf(stderr, "spice_testd: %s\n", err);
        return 1;
    }
    SSL_CTX *ctx = certs_server_ctx(cfg.cert, cfg.key, err, sizeof err);
    if (!ctx) {
        fprintf(stderr, "spice_testd: %s\n", err);
        return 1;
    }
    int afd;
    pid_t apid;
    if (auth_helper_start(&cfg, &afd, &apid) != 0) {
        fprintf(stderr, "spice_testd: cannot start the auth helper\n");
        return 1;
    }
    struct ev_loop *loop = ev_default_loop(EVFLAG_AUTO);
    struct auth_client *ac = auth_client_new(loop, afd);
    static struct proxy px;
    proxy_init(&px, loop, &cfg, ctx, ac);
    struct lst *ls = calloc(cfg.n_vms + 1, sizeof *ls);
    size_t n = 0;
    for (size_t i = 0; i < cfg.n_vms; i++) {
        const struct cfg_vm *vm = &cfg.vms[i];
        if (!vm->spice_port)
            continue;
        int fd = listen_on(cfg.address, vm->spice_port);
        if (fd < 0) {
            fprintf(stderr, "spice_testd: cannot listen on %s:%u: %s\n", cfg.address,
                    vm->spice_port, strerror(errno));
            return 1;
        }
        struct lst *l = &ls[n++];
        l->fd = fd;
        l->vm = vm;
        l->px = &px;
        ev_io_init(&l->io, accept_cb, fd, EV_READ);
        ev_io_start(loop, &l->io);
        log_info("listening for vm %s (spice) on %s:%u", vm->name, cfg.address, vm->spice_port);
    }
    ev_signal si, st;
    ev_signal_init(&si, stop_cb, SIGINT);
    ev_signal_init(&st, stop_cb, SIGTERM);
    ev_signal_start(loop, &si);
    ev_signal_start(loop, &st);
    ev_run(loop, 0);
    for (size_t i = 0; i < n; i++)
        close(ls[i].fd);
    spice_close_all(&px, "gateway shutting down");
    auth_client_free(ac);
    waitpid(apid, NULL, 0);
    SSL_CTX_free(ctx);
    free(ls);
    cfg_free(&cfg);
    log_info("stopped");
    return 0;
}
