/* tests/unit/test_power_auth.c — the helper's power authorization
 * (auth/helper.c power_request, AUTHP_REQ_POWER): the real helper with the
 * password file backend.  The principal comes from the attached socket
 * only: a TCP socket the helper authenticated (for its user and VM, until
 * forgotten), the control socket or socket_dir/VM.vnc (the uid).  A power
 * op for a socket the helper did not authenticate, for a user outside
 * power_users/power_groups, or for another VM than the session's, is
 * refused; an allowed one reaches the monitor (here: a missing socket, so
 * the answer is AUTHP_ERROR "connect ...", which only an authorized request
 * gets). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "auth/auth.h"

struct rec {
    int calls;
    struct authp_login_resp resp;
};

static int g_calls;
static char g_dir[64], g_pwfile[100], g_ctl[100], g_sockdir[100], g_qmp[100], g_self[64];
static char *g_users[] = { "alice", "bob" };
static char *g_power[2] = { "alice", g_self };
static struct cfg_vm g_vms[2];
static struct cfg g_cfg;

static void rec_cb(void *ctx, const struct authp_login_resp *resp)
{
    struct rec *r = ctx;
    r->calls++;
    r->resp = *resp;
    g_calls++;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void wait_for(struct ev_loop *loop, struct rec *r)
{
    double end = now_s() + 10;
    while (r->calls == 0 && now_s() < end) {
        ev_now_update(loop);
        ev_run(loop, EVRUN_NOWAIT);
        if (r->calls == 0)
            usleep(1000);
    }
    assert_int_equal(r->calls, 1);
}

/* A connected TCP pair on 127.0.0.1: *srv is the gateway's side. */
static void tcp_pair(int *srv, int *cli)
{
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(l >= 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t al = sizeof a;
    assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(l, 1), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&a, &al), 0);
    *cli = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(connect(*cli, (struct sockaddr *)&a, sizeof a), 0);
    *srv = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    assert_true(*srv >= 0);
    close(l);
}

/* A unix listener at path and the accepted end of a connection to it. */
static void unix_pair(const char *path, int *srv, int *cli)
{
    int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path);
    unlink(path);
    assert_int_equal(bind(l, (struct sockaddr *)&sun, sizeof sun), 0);
    assert_int_equal(listen(l, 1), 0);
    *cli = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(connect(*cli, (struct sockaddr *)&sun, sizeof sun), 0);
    *srv = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    assert_true(*srv >= 0);
    close(l);
}

static int group_setup(void **state)
{
    (void)state;
    const char *t = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%.40s/vmgate-power-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(g_dir))
        return -1;
    snprintf(g_pwfile, sizeof g_pwfile, "%s/passwd", g_dir);
    snprintf(g_ctl, sizeof g_ctl, "%s/control", g_dir);
    snprintf(g_sockdir, sizeof g_sockdir, "%s/s", g_dir);
    snprintf(g_qmp, sizeof g_qmp, "%s/no-such.qmp", g_dir);
    if (mkdir(g_sockdir, 0755) != 0)
        return -1;
    struct passwd *pw = getpwuid(getuid());
    if (!pw)
        return -1;
    snprintf(g_self, sizeof g_self, "%s", pw->pw_name);
    char err[256];
    if (auth_pwfile_set(g_pwfile, "alice", "alice-pw", err, sizeof err) < 0 ||
        auth_pwfile_set(g_pwfile, "bob", "bob-pw", err, sizeof err) < 0)
        return -1;
    for (int i = 0; i < 2; i++) {
        snprintf(g_vms[i].name, sizeof g_vms[i].name, "dev%d", i);
        g_vms[i].users = g_users;
        g_vms[i].n_users = 2;
        g_vms[i].power_users = g_power;
        g_vms[i].n_power_users = 2;
        snprintf(g_vms[i].qmp, sizeof g_vms[i].qmp, "%s", g_qmp);
    }
    g_cfg.auth = CFG_AUTH_FILE;
    g_cfg.passwd_file = g_pwfile;
    g_cfg.auth_workers = 2;
    g_cfg.vms = g_vms;
    g_cfg.n_vms = 2;
    snprintf(g_cfg.control, sizeof g_cfg.control, "%s", g_ctl);
    snprintf(g_cfg.socket_dir, sizeof g_cfg.socket_dir, "%s", g_sockdir);
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

struct helper {
    struct ev_loop *loop;
    struct auth_client *ac;
    int fd;
    pid_t pid;
};

static void start(struct helper *h)
{
    assert_int_equal(auth_helper_start(&g_cfg, &h->fd, &h->pid), 0);
    h->loop = ev_loop_new(EVFLAG_AUTO);
    h->ac = auth_client_new(h->loop, h->fd);
    assert_non_null(h->ac);
}

static void stop(struct helper *h)
{
    auth_client_free(h->ac);
    ev_loop_destroy(h->loop);
    int st = 0;
    double end = now_s() + 5;
    while (waitpid(h->pid, &st, WNOHANG) == 0 && now_s() < end)
        usleep(5000);
}

/* A password login for user on vm with fd as the viewer's socket. */
static uint8_t login(struct helper *h, int fd, const char *vm, const char *user, const char *pw)
{
    struct authp_login_req q = { .id = 1 };
    snprintf(q.vm, sizeof q.vm, "%s", vm);
    snprintf(q.user, sizeof q.user, "%s", user);
    snprintf(q.password, sizeof q.password, "%s", pw);
    struct rec r = { 0 };
    assert_int_equal(auth_client_submit(h->ac, &q, fd, rec_cb, &r), 0);
    wait_for(h->loop, &r);
    return r.resp.result;
}

/* One power request with fd attached; the answer in *out. */
static void power(struct helper *h, int fd, const char *vm, unsigned action,
                  struct authp_login_resp *out)
{
    struct authp_power_req q = { .id = 2, .action = (uint8_t)action, .conn = 7 };
    snprintf(q.vm, sizeof q.vm, "%s", vm);
    struct rec r = { 0 };
    assert_int_equal(auth_client_power(h->ac, &q, fd, rec_cb, &r), 0);
    wait_for(h->loop, &r);
    *out = r.resp;
}

/* The answer of an authorized action: the broker tried the monitor. */
static void assert_reached_monitor(const struct authp_login_resp *r)
{
    if (r->result != AUTHP_ERROR || !strstr(r->detail, "connect"))
        fail_msg("wanted the monitor's error, got %s (%s)", authp_result_name(r->result),
                 r->detail);
}

static void assert_refused(const struct authp_login_resp *r, const char *why)
{
    if (r->result != AUTHP_NOT_ALLOWED || !strstr(r->detail, why))
        fail_msg("wanted a refusal \"%s\", got %s (%s)", why, authp_result_name(r->result),
                 r->detail);
}

/* Sessions the helper authenticated over TCP: believed for their user and
 * VM, and only those. */
static void test_tcp_sessions(void **state)
{
    (void)state;
    struct helper h;
    start(&h);
    int a_srv, a_cli, b_srv, b_cli, x_srv, x_cli;
    tcp_pair(&a_srv, &a_cli);
    tcp_pair(&b_srv, &b_cli);
    tcp_pair(&x_srv, &x_cli);
    assert_int_equal(login(&h, a_srv, "dev0", "alice", "alice-pw"), AUTHP_OK);
    assert_int_equal(login(&h, b_srv, "dev0", "bob", "bob-pw"), AUTHP_OK);
    struct authp_login_resp r;

    /* alice: a power user of dev0 */
    power(&h, a_srv, "dev0", AUTHP_PWR_CHECK, &r);
    assert_int_equal(r.result, AUTHP_OK);
    assert_string_equal(r.detail, "alice");
    power(&h, a_srv, "dev0", AUTHP_PWR_RESET, &r);
    assert_reached_monitor(&r);
    power(&h, a_srv, "dev0", AUTHP_PWR_STATUS, &r);
    assert_reached_monitor(&r);
    /* ... but her session is for dev0, not dev1 */
    power(&h, a_srv, "dev1", AUTHP_PWR_SHUTDOWN, &r);
    assert_refused(&r, "the session is for vm dev0");
    /* reboot without qga: authorized, then refused for the missing agent */
    power(&h, a_srv, "dev0", AUTHP_PWR_REBOOT, &r);
    assert_int_equal(r.result, AUTHP_ERROR);
    assert_non_null(strstr(r.detail, "no qga configured"));

    /* bob may open dev0 but not control its power */
    power(&h, b_srv, "dev0", AUTHP_PWR_CHECK, &r);
    assert_refused(&r, "power_users/power_groups");
    power(&h, b_srv, "dev0", AUTHP_PWR_RESET, &r);
    assert_refused(&r, "may not control the power of vm dev0");
    power(&h, b_srv, "dev0", AUTHP_PWR_STATUS, &r);
    assert_reached_monitor(&r);

    /* a socket the helper never authenticated */
    power(&h, x_srv, "dev0", AUTHP_PWR_RESET, &r);
    assert_refused(&r, "not a session this helper authenticated");
    power(&h, x_srv, "dev0", AUTHP_PWR_CHECK, &r);
    assert_refused(&r, "not a session this helper authenticated");
    /* the viewer's end of alice's connection is another socket too */
    power(&h, a_cli, "dev0", AUTHP_PWR_RESET, &r);
    assert_refused(&r, "not a session this helper authenticated");
    /* a failed login is not remembered */
    assert_int_equal(login(&h, x_srv, "dev0", "alice", "wrong"), AUTHP_BAD_PASSWORD);
    power(&h, x_srv, "dev0", AUTHP_PWR_RESET, &r);
    assert_refused(&r, "not a session this helper authenticated");

    /* forgotten when the network process reports the end */
    struct authp_power_req f = { .action = AUTHP_PWR_FORGET };
    snprintf(f.vm, sizeof f.vm, "dev0");
    assert_int_equal(auth_client_power(h.ac, &f, a_srv, NULL, NULL), 0);
    power(&h, a_srv, "dev0", AUTHP_PWR_RESET, &r);
    assert_refused(&r, "not a session this helper authenticated");
    /* an unknown VM */
    power(&h, b_srv, "nope", AUTHP_PWR_STATUS, &r);
    assert_refused(&r, "no vm nope");

    int fds[] = { a_srv, a_cli, b_srv, b_cli, x_srv, x_cli };
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
        close(fds[i]);
    stop(&h);
}

/* Unix sockets: the control socket and socket_dir/VM.vnc stand for their
 * uid (this process's user, a power user here); any other unix socket, or
 * another VM's socket_dir socket, stands for nobody. */
static void test_unix_principals(void **state)
{
    (void)state;
    struct helper h;
    start(&h);
    char path[400];
    int srv, cli;
    struct authp_login_resp r;

    unix_pair(g_ctl, &srv, &cli);
    power(&h, srv, "dev1", AUTHP_PWR_CHECK, &r);
    assert_int_equal(r.result, AUTHP_OK);
    assert_string_equal(r.detail, g_self);
    power(&h, srv, "dev1", AUTHP_PWR_PAUSE, &r);
    assert_reached_monitor(&r);
    close(srv);
    close(cli);

    snprintf(path, sizeof path, "%s/dev0.vnc", g_sockdir);
    unix_pair(path, &srv, &cli);
    power(&h, srv, "dev0", AUTHP_PWR_RESUME, &r);
    assert_reached_monitor(&r);
    power(&h, srv, "dev1", AUTHP_PWR_RESUME, &r);      /* dev0's socket, dev1 asked */
    assert_refused(&r, "neither the control socket nor dev1's");
    close(srv);
    close(cli);

    snprintf(path, sizeof path, "%s/other", g_dir);
    unix_pair(path, &srv, &cli);
    power(&h, srv, "dev0", AUTHP_PWR_SHUTDOWN, &r);
    assert_refused(&r, "neither the control socket");
    close(srv);
    close(cli);

    /* a power request without a socket is malformed */
    uint8_t buf[AUTHP_MAX_MSG];
    struct authp_power_req q = { .id = 77, .action = AUTHP_PWR_RESET };
    snprintf(q.vm, sizeof q.vm, "dev0");
    int n = authp_encode_power_req(&q, buf, sizeof buf);
    assert_true(n > 0);
    assert_int_equal(send(h.fd, buf, (size_t)n, 0), n);
    stop(&h);
}

/* ---- per-VM serialization: a fake monitor that serves clients at once
 * (unlike QEMU) and counts how many it has at the same time ---- */
static pthread_mutex_t g_mon_mu = PTHREAD_MUTEX_INITIALIZER;
static int g_mon_active, g_mon_max, g_mon_served;

static void *mon_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    pthread_mutex_lock(&g_mon_mu);
    if (++g_mon_active > g_mon_max)
        g_mon_max = g_mon_active;
    pthread_mutex_unlock(&g_mon_mu);
    const char *greet = "{\"QMP\": {\"version\": {}, \"capabilities\": []}}\r\n";
    (void)!send(fd, greet, strlen(greet), MSG_NOSIGNAL);
    char line[1024];
    size_t have = 0;
    for (int answered = 0; answered < 2;) {
        ssize_t n = recv(fd, line + have, sizeof line - have - 1, 0);
        if (n <= 0)
            break;
        have += (size_t)n;
        line[have] = '\0';
        char *nl;
        while ((nl = strchr(line, '\n'))) {
            const char *ans = "{\"return\": {}}\r\n";
            if (strstr(line, "query-status")) {
                usleep(150 * 1000);        /* a slow monitor: overlaps would show */
                ans = "{\"return\": {\"status\": \"running\", \"running\": true}}\r\n";
            }
            (void)!send(fd, ans, strlen(ans), MSG_NOSIGNAL);
            answered++;
            size_t l = (size_t)(nl - line) + 1;
            memmove(line, line + l, have - l + 1);
            have -= l;
        }
    }
    pthread_mutex_lock(&g_mon_mu);
    g_mon_active--;
    g_mon_served++;
    pthread_mutex_unlock(&g_mon_mu);
    close(fd);
    return NULL;
}

static void *mon_accept(void *arg)
{
    int lfd = (int)(intptr_t)arg;
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0)
            return NULL;
        pthread_t t;
        if (pthread_create(&t, NULL, mon_conn, (void *)(intptr_t)fd) == 0)
            pthread_detach(t);
        else
            close(fd);
    }
}

/* Several power requests for one VM at once: the broker runs them one
 * after the other on its monitor (the helper's per-VM lock), all answered;
 * two VMs on separate monitors may overlap. */
static void test_serialized_per_vm(void **state)
{
    (void)state;
    int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    snprintf(sun.sun_path, sizeof sun.sun_path, "%s", g_qmp);
    unlink(g_qmp);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sun, sizeof sun), 0);
    assert_int_equal(listen(lfd, 16), 0);
    pthread_t acc;
    assert_int_equal(pthread_create(&acc, NULL, mon_accept, (void *)(intptr_t)lfd), 0);

    struct helper h;
    start(&h);
    int srv, cli;
    unix_pair(g_ctl, &srv, &cli);
    enum { N = 5 };
    struct rec r[N];
    memset(r, 0, sizeof r);
    for (int i = 0; i < N; i++) {
        struct authp_power_req q = { .id = 2, .action = AUTHP_PWR_STATUS, .conn = 7 };
        snprintf(q.vm, sizeof q.vm, "dev0");
        assert_int_equal(auth_client_power(h.ac, &q, srv, rec_cb, &r[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        wait_for(h.loop, &r[i]);
        if (r[i].resp.result != AUTHP_OK || strcmp(r[i].resp.detail, "running") != 0)
            fail_msg("request %d: %s (%s)", i, authp_result_name(r[i].resp.result),
                     r[i].resp.detail);
    }
    /* the fake monitor counts a conversation when its thread sees the
     * helper hang up, which may come a moment after the last answer */
    int max = 0, served = 0;
    for (int i = 0; i < 200; i++) {
        pthread_mutex_lock(&g_mon_mu);
        max = g_mon_max;
        served = g_mon_served;
        pthread_mutex_unlock(&g_mon_mu);
        if (served >= N)
            break;
        usleep(10000);
    }
    assert_int_equal(served, N);
    assert_int_equal(max, 1);                  /* never two at once on dev0's monitor */
    close(srv);
    close(cli);
    stop(&h);
    shutdown(lfd, SHUT_RDWR);
    close(lfd);
    pthread_join(acc, NULL);
    unlink(g_qmp);
}

/* The wire format: round trip, unknown actions refused both ways. */
static void test_power_proto(void **state)
{
    (void)state;
    uint8_t buf[AUTHP_MAX_MSG];
    struct authp_power_req q = { .id = 9, .action = AUTHP_PWR_REBOOT, .conn = 1ull << 40 };
    snprintf(q.vm, sizeof q.vm, "dev0");
    int n = authp_encode_power_req(&q, buf, sizeof buf);
    assert_true(n > 0);
    struct authp_power_req d;
    assert_int_equal(authp_decode_power_req(buf, (size_t)n, &d), 0);
    assert_int_equal(d.action, AUTHP_PWR_REBOOT);
    assert_int_equal(d.conn, 1ull << 40);
    assert_string_equal(d.vm, "dev0");
    buf[8] = 0;
    assert_int_equal(authp_decode_power_req(buf, (size_t)n, &d), -1);
    buf[8] = AUTHP_PWR_MAX_;
    assert_int_equal(authp_decode_power_req(buf, (size_t)n, &d), -1);
    buf[8] = AUTHP_PWR_REBOOT;
    assert_int_equal(authp_decode_power_req(buf, (size_t)n - 1, &d), -1);
    q.action = 0;
    assert_int_equal(authp_encode_power_req(&q, buf, sizeof buf), -1);
    assert_int_equal(authp_power_parse("reboot"), AUTHP_PWR_REBOOT);
    assert_int_equal(authp_power_parse("status"), AUTHP_PWR_STATUS);
    assert_int_equal(authp_power_parse("check"), 0);     /* not a `vmgate vm` word */
    assert_int_equal(authp_power_parse("forget"), 0);
    assert_int_equal(authp_power_parse("Reset"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_power_proto),
        cmocka_unit_test(test_tcp_sessions),
        cmocka_unit_test(test_unix_principals),
        cmocka_unit_test(test_serialized_per_vm),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
