/* tests/unit/test_auth_client.c — the network side's auth client
 * (auth/client.c) against a fake helper driven by the test, and the real
 * helper (auth/helper.c) with the password file backend: concurrency,
 * malformed requests, overload, timeouts, helper death and exit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <crypt.h>
#include <netinet/in.h>

#include "auth/auth.h"
#include "auth/auth_int.h"
#include "common/log.h"

/* ---- recording callbacks ---- */

struct rec {
    int calls;
    struct authp_login_resp resp;
    int order;                      /* global call order */
    struct auth_client *free_ac;    /* free this client from the callback */
    struct auth_client *submit_ac;  /* submit a follow-up from the callback */
    struct rec *follow;             /* ... with this ctx */
    bool in_submit;                 /* set while the test is inside submit */
};

static int g_calls;
static bool g_in_submit;
/* The "viewer" socket every submit() passes: one end of a unix socketpair
 * (a unix peer: the helper's view is uid=<ours>). */
static int g_viewer[2] = { -1, -1 };

static void rec_cb(void *ctx, const struct authp_login_resp *resp)
{
    struct rec *r = ctx;
    /* callbacks never run from inside auth_client_submit */
    assert_false(g_in_submit);
    r->calls++;
    r->resp = *resp;
    r->order = ++g_calls;
    if (r->free_ac) {
        struct auth_client *ac = r->free_ac;
        r->free_ac = NULL;
        auth_client_free(ac);
    }
    if (r->submit_ac) {
        struct authp_login_req q = { .id = 999 };
        strcpy(q.vm, "dev0");
        strcpy(q.user, "follow");
        assert_int_equal(auth_client_submit(r->submit_ac, &q, g_viewer[0], rec_cb, r->follow),
                         0);
        r->submit_ac = NULL;
    }
}

/* ---- sockets to pass as the viewer's ---- */

/* A connected TCP pair on 127.0.0.1: *srv is the gateway's side (its peer
 * is 127.0.0.1), *cli the viewer's. */
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

/* Send one datagram on fd with nfds descriptors attached (SCM_RIGHTS). */
static ssize_t send_with_fds(int fd, const void *buf, size_t len, const int *fds, int nfds)
{
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
    union {
        struct cmsghdr h;
        char b[CMSG_SPACE(sizeof(int) * 4)];
    } u;
    if (nfds > 0) {
        memset(&u, 0, sizeof u);
        mh.msg_control = u.b;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
    }
    return sendmsg(fd, &mh, MSG_NOSIGNAL);
}

static int submit(struct auth_client *ac, uint32_t id, const char *vm, const char *user,
                  const char *pw, struct rec *r)
{
    struct authp_login_req q = { .id = id };
    snprintf(q.vm, sizeof q.vm, "%s", vm);
    snprintf(q.user, sizeof q.user, "%s", user);
    snprintf(q.password, sizeof q.password, "%s", pw);
    snprintf(q.rhost, sizeof q.rhost, "192.0.2.7");
    g_in_submit = true;
    int rc = auth_client_submit(ac, &q, g_viewer[0], rec_cb, r);
    g_in_submit = false;
    explicit_bzero(&q, sizeof q);
    return rc;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Run the loop until *count reaches want or timeout seconds pass. */
static bool run_until(struct ev_loop *loop, const int *count, int want, double timeout)
{
    double end = now_s() + timeout;
    while (*count < want && now_s() < end) {
        ev_now_update(loop);
        ev_run(loop, EVRUN_NOWAIT);
        if (*count < want)
            usleep(1000);
    }
    return *count >= want;
}

/* ---- fake helper: the test holds the other end of the socketpair ---- */

struct fake {
    struct ev_loop *loop;
    struct auth_client *ac;
    int peer;
};

static int fake_setup(void **state)
{
    struct fake *f = calloc(1, sizeof *f);
    int sv[2];
    if (!f || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0)
        return -1;
    f->loop = ev_loop_new(EVFLAG_AUTO);
    f->ac = auth_client_new(f->loop, sv[0]);
    f->peer = sv[1];
    g_calls = 0;
    *state = f;
    return f->ac ? 0 : -1;
}

static int fake_teardown(void **state)
{
    struct fake *f = *state;
    auth_client_free(f->ac);
    if (f->peer >= 0)
        close(f->peer);
    ev_loop_destroy(f->loop);
    free(f);
    return 0;
}

/* Read one request on the peer end (waiting up to 1 s, running the loop so
 * queued requests get flushed). */
static int peer_read(struct fake *f, struct authp_login_req *q)
{
    uint8_t buf[AUTHP_MAX_MSG + 1];
    for (int i = 0; i < 1000; i++) {
        struct iovec iov = { .iov_base = buf, .iov_len = sizeof buf };
        union {
            struct cmsghdr align;
            char b[CMSG_SPACE(sizeof(int) * 4)];
        } ctl;
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
                             .msg_control = ctl.b, .msg_controllen = sizeof ctl.b };
        ssize_t n = recvmsg(f->peer, &mh, MSG_CMSG_CLOEXEC);
        if (n > 0) {
            /* exactly one descriptor, the viewer's socket itself */
            struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
            assert_non_null(c);
            assert_int_equal(c->cmsg_type, SCM_RIGHTS);
            assert_int_equal(c->cmsg_len, CMSG_LEN(sizeof(int)));
            assert_null(CMSG_NXTHDR(&mh, c));
            int fd;
            memcpy(&fd, CMSG_DATA(c), sizeof fd);
            struct stat a, b;
            assert_int_equal(fstat(fd, &a), 0);
            assert_int_equal(fstat(g_viewer[0], &b), 0);
            assert_true(a.st_ino == b.st_ino && a.st_dev == b.st_dev);
            close(fd);
            return authp_decode_login_req(buf, (size_t)n, q);
        }
        if (n == 0)
            return -1;
        ev_run(f->loop, EVRUN_NOWAIT);
        usleep(1000);
    }
    return -1;
}

static int peer_answer(struct fake *f, uint32_t id, enum authp_result r, const char *detail)
{
    struct authp_login_resp s = { .id = id, .result = (uint8_t)r };
    snprintf(s.detail, sizeof s.detail, "%s", detail);
    uint8_t buf[AUTHP_MAX_MSG];
    int n = authp_encode_login_resp(&s, buf, sizeof buf);
    assert_true(n > 0);
    return send(f->peer, buf, (size_t)n, 0) == n ? 0 : -1;
}

static void test_fake_out_of_order(void **state)
{
    struct fake *f = *state;
    struct rec r[3] = { 0 };
    assert_int_equal(submit(f->ac, 100, "dev0", "alice", "pw-a", &r[0]), 0);
    assert_int_equal(submit(f->ac, 200, "dev1", "bob", "pw-b", &r[1]), 0);
    assert_int_equal(submit(f->ac, 100, "dev2", "carol", "pw-c", &r[2]), 0);  /* same caller id */
    assert_true(auth_client_ok(f->ac));
    struct authp_login_req q[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(peer_read(f, &q[i]), 0);
    assert_string_equal(q[0].user, "alice");
    assert_string_equal(q[0].password, "pw-a");
    assert_string_equal(q[0].vm, "dev0");
    assert_string_equal(q[0].rhost, "192.0.2.7");
    assert_string_equal(q[1].user, "bob");
    assert_string_equal(q[2].user, "carol");
    /* wire ids are the client's own, distinct and increasing */
    assert_true(q[0].id < q[1].id && q[1].id < q[2].id);
    /* answer in reverse order */
    assert_int_equal(peer_answer(f, q[2].id, AUTHP_BAD_PASSWORD, "c"), 0);
    assert_int_equal(peer_answer(f, q[1].id, AUTHP_NOT_ALLOWED, "b"), 0);
    assert_int_equal(peer_answer(f, q[0].id, AUTHP_OK, "a"), 0);
    assert_true(run_until(f->loop, &g_calls, 3, 2.0));
    assert_int_equal(r[0].calls, 1);
    assert_int_equal(r[1].calls, 1);
    assert_int_equal(r[2].calls, 1);
    assert_int_equal(r[0].resp.id, 100);
    assert_int_equal(r[0].resp.result, AUTHP_OK);
    assert_string_equal(r[0].resp.detail, "a");
    assert_int_equal(r[1].resp.id, 200);
    assert_int_equal(r[1].resp.result, AUTHP_NOT_ALLOWED);
    assert_int_equal(r[2].resp.id, 100);
    assert_int_equal(r[2].resp.result, AUTHP_BAD_PASSWORD);
    assert_int_equal(r[2].order, 1);
    assert_int_equal(r[0].order, 3);
    /* a second answer to the same id, an unknown id and garbage: dropped */
    assert_int_equal(peer_answer(f, q[0].id, AUTHP_OK, "again"), 0);
    assert_int_equal(peer_answer(f, 12345, AUTHP_OK, "unknown"), 0);
    assert_int_equal(send(f->peer, "garbage", 7, 0), 7);
    for (int i = 0; i < 20; i++)
        ev_run(f->loop, EVRUN_NOWAIT);
    assert_int_equal(g_calls, 3);
    assert_true(auth_client_ok(f->ac));
}

static void test_fake_cancel(void **state)
{
    struct fake *f = *state;
    struct rec a = { 0 }, b = { 0 };
    assert_int_equal(submit(f->ac, 1, "dev0", "alice", "x", &a), 0);
    assert_int_equal(submit(f->ac, 2, "dev0", "bob", "y", &b), 0);
    assert_int_equal(submit(f->ac, 3, "dev0", "alice2", "z", &a), 0);
    auth_client_cancel(f->ac, &a);
    auth_client_cancel(f->ac, &a);         /* twice: harmless */
    auth_client_cancel(f->ac, (void *)1);  /* nothing matches */
    struct authp_login_req q[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(peer_read(f, &q[i]), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(peer_answer(f, q[i].id, AUTHP_OK, ""), 0);
    assert_true(run_until(f->loop, &g_calls, 1, 2.0));
    for (int i = 0; i < 20; i++)
        ev_run(f->loop, EVRUN_NOWAIT);
    assert_int_equal(a.calls, 0);
    assert_int_equal(b.calls, 1);
    assert_int_equal(b.resp.id, 2);
}

static void test_fake_helper_gone(void **state)
{
    struct fake *f = *state;
    struct rec r[3] = { 0 };
    for (int i = 0; i < 3; i++)
        assert_int_equal(submit(f->ac, (uint32_t)i + 1, "dev0", "u", "p", &r[i]), 0);
    struct authp_login_req q;
    assert_int_equal(peer_read(f, &q), 0);
    assert_int_equal(peer_answer(f, q.id, AUTHP_OK, ""), 0);
    close(f->peer);
    f->peer = -1;
    assert_true(run_until(f->loop, &g_calls, 3, 2.0));
    assert_false(auth_client_ok(f->ac));
    assert_int_equal(r[0].resp.result, AUTHP_OK);
    for (int i = 1; i < 3; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].resp.result, AUTHP_ERROR);
        assert_int_equal(r[i].resp.id, (uint32_t)i + 1);
        assert_string_equal(r[i].resp.detail, "auth helper gone");
    }
    /* later submits: answered AUTHP_ERROR, from the loop, not from submit */
    struct rec late = { 0 };
    assert_int_equal(submit(f->ac, 77, "dev0", "u", "p", &late), 0);
    assert_int_equal(late.calls, 0);
    assert_true(run_until(f->loop, &g_calls, 4, 2.0));
    assert_int_equal(late.calls, 1);
    assert_int_equal(late.resp.id, 77);
    assert_int_equal(late.resp.result, AUTHP_ERROR);
    /* cancel before the loop runs: never called */
    struct rec cancelled = { 0 };
    assert_int_equal(submit(f->ac, 78, "dev0", "u", "p", &cancelled), 0);
    auth_client_cancel(f->ac, &cancelled);
    for (int i = 0; i < 10; i++)
        ev_run(f->loop, EVRUN_NOWAIT);
    assert_int_equal(cancelled.calls, 0);
}

/* The peer does not read: requests pile up in the socket, then in the
 * bounded queue, then are refused ("auth queue full").  Once the peer
 * drains and answers, every request has had exactly one callback. */
static void test_fake_backpressure(void **state)
{
    struct fake *f = *state;
    enum { N = 3000 };
    struct rec *r = calloc(N, sizeof *r);
    assert_non_null(r);
    for (int i = 0; i < N; i++)
        assert_int_equal(submit(f->ac, (uint32_t)i, "dev0", "user", "a password", &r[i]), 0);
    assert_int_equal(g_calls, 0);
    for (int i = 0; i < 5; i++)
        ev_run(f->loop, EVRUN_NOWAIT);
    int full = 0;
    for (int i = 0; i < N; i++) {
        if (r[i].calls) {
            assert_int_equal(r[i].resp.result, AUTHP_ERROR);
            assert_string_equal(r[i].resp.detail, "auth queue full");
            full++;
        }
    }
    assert_true(full > 0);
    assert_true(full < N);
    print_message("%d of %d refused with a full queue\n", full, N);

    /* the peer drains and answers; answers it cannot send yet wait */
    uint32_t *todo = calloc(N, sizeof *todo);
    int ntodo = 0, answered = 0, received = 0;
    double end = now_s() + 10;
    while (g_calls < N && now_s() < end) {
        uint8_t buf[AUTHP_MAX_MSG + 1];
        ssize_t n;
        while ((n = recv(f->peer, buf, sizeof buf, MSG_DONTWAIT)) > 0) {
            struct authp_login_req q;
            assert_int_equal(authp_decode_login_req(buf, (size_t)n, &q), 0);
            todo[ntodo++] = q.id;
            received++;
        }
        while (answered < ntodo && peer_answer(f, todo[answered], AUTHP_OK, "") == 0)
            answered++;
        ev_run(f->loop, EVRUN_NOWAIT);
    }
    assert_int_equal(g_calls, N);
    assert_int_equal(received, N - full);
    for (int i = 0; i < N; i++)
        assert_int_equal(r[i].calls, 1);
    free(todo);
    free(r);
}

/* Callbacks may free the client or submit again. */
static void test_fake_reentrancy(void **state)
{
    struct fake *f = *state;
    struct rec a = { 0 }, b = { 0 }, follow = { 0 };
    a.submit_ac = f->ac;
    a.follow = &follow;
    assert_int_equal(submit(f->ac, 1, "dev0", "a", "x", &a), 0);
    assert_int_equal(submit(f->ac, 2, "dev0", "b", "x", &b), 0);
    struct authp_login_req q[3];
    assert_int_equal(peer_read(f, &q[0]), 0);
    assert_int_equal(peer_read(f, &q[1]), 0);
    assert_int_equal(peer_answer(f, q[0].id, AUTHP_OK, ""), 0);
    assert_true(run_until(f->loop, &g_calls, 1, 2.0));
    /* a's callback submitted a follow-up */
    assert_int_equal(peer_read(f, &q[2]), 0);
    assert_string_equal(q[2].user, "follow");
    /* b's callback frees the client while the follow-up's answer is in the
     * same burst: the follow-up is never called back */
    b.free_ac = f->ac;
    assert_int_equal(peer_answer(f, q[1].id, AUTHP_OK, ""), 0);
    assert_int_equal(peer_answer(f, q[2].id, AUTHP_OK, ""), 0);
    assert_true(run_until(f->loop, &g_calls, 2, 2.0));
    f->ac = NULL;
    for (int i = 0; i < 10; i++)
        ev_run(f->loop, EVRUN_NOWAIT);
    assert_int_equal(b.calls, 1);
    assert_int_equal(follow.calls, 0);
    assert_int_equal(g_calls, 2);
}

/* Free from a deferred-failure callback too. */
static void test_fake_free_in_deferred(void **state)
{
    struct fake *f = *state;
    close(f->peer);
    f->peer = -1;
    struct rec a = { 0 }, b = { 0 };
    assert_int_equal(submit(f->ac, 1, "dev0", "a", "x", &a), 0);
    assert_int_equal(submit(f->ac, 2, "dev0", "b", "x", &b), 0);
    a.free_ac = f->ac;
    f->ac = NULL;
    assert_true(run_until(f->loop, &g_calls, 1, 2.0));
    for (int i = 0; i < 10; i++)
        ev_run(f->loop, EVRUN_NOWAIT);
    assert_int_equal(a.calls, 1);
    assert_int_equal(b.calls, 0);
}

static void test_fake_bad_args(void **state)
{
    struct fake *f = *state;
    struct authp_login_req q = { .id = 1 };
    memset(q.user, 'u', sizeof q.user);   /* unterminated: cannot be encoded */
    struct rec r = { 0 };
    assert_int_equal(auth_client_submit(f->ac, &q, g_viewer[0], rec_cb, &r), -1);
    q.user[0] = '\0';
    assert_int_equal(auth_client_submit(f->ac, &q, g_viewer[0], NULL, &r), -1);
    assert_int_equal(auth_client_submit(NULL, &q, g_viewer[0], rec_cb, &r), -1);
    assert_int_equal(auth_client_submit(f->ac, NULL, g_viewer[0], rec_cb, &r), -1);
    /* no viewer socket: nothing to send the helper */
    assert_int_equal(auth_client_submit(f->ac, &q, -1, rec_cb, &r), -1);
    for (int i = 0; i < 5; i++)
        ev_run(f->loop, EVRUN_NOWAIT);
    assert_int_equal(r.calls, 0);
    assert_null(auth_client_new(f->loop, -1));
    assert_false(auth_client_ok(NULL));
    auth_client_free(NULL);
    auth_client_cancel(NULL, NULL);
}

/* ---- the real helper, password file backend ---- */

static char g_dir[256], g_pwfile[300], g_fifo[300];
static char *g_users[] = { "alice", "carol" };
static struct cfg_vm g_vm;
static struct cfg g_cfg;

static int group_setup(void **state)
{
    (void)state;
    const char *t = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/vmgate-authc-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(g_dir))
        return -1;
    snprintf(g_pwfile, sizeof g_pwfile, "%s/passwd", g_dir);
    snprintf(g_fifo, sizeof g_fifo, "%s/fifo", g_dir);
    char err[256];
    if (auth_pwfile_set(g_pwfile, "alice", "alice-pw", err, sizeof err) < 0 ||
        auth_pwfile_set(g_pwfile, "bob", "bob-pw", err, sizeof err) < 0 ||
        mkfifo(g_fifo, 0600) < 0)
        return -1;
    snprintf(g_vm.name, sizeof g_vm.name, "dev0");
    g_vm.users = g_users;
    g_vm.n_users = 2;
    g_cfg.auth = CFG_AUTH_FILE;
    g_cfg.passwd_file = g_pwfile;
    g_cfg.auth_workers = 2;
    g_cfg.vms = &g_vm;
    g_cfg.n_vms = 1;
    signal(SIGPIPE, SIG_IGN);
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, g_viewer) < 0)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

struct real {
    struct ev_loop *loop;
    struct auth_client *ac;
    int fd;
    pid_t pid;
};

static void real_start(struct real *h)
{
    memset(h, 0, sizeof *h);
    g_calls = 0;
    assert_int_equal(auth_helper_start(&g_cfg, &h->fd, &h->pid), 0);
    assert_true(fcntl(h->fd, F_GETFL) & O_NONBLOCK);
    assert_true(fcntl(h->fd, F_GETFD) & FD_CLOEXEC);
    h->loop = ev_loop_new(EVFLAG_AUTO);
    h->ac = auth_client_new(h->loop, h->fd);
    assert_non_null(h->ac);
}

/* Wait up to timeout s for pid to exit; returns its status or -1. */
static int wait_exit(pid_t pid, double timeout)
{
    double end = now_s() + timeout;
    int st;
    while (now_s() < end) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return st;
        usleep(5000);
    }
    return -1;
}

/* Closing the client's socket ends the helper. */
static void real_stop(struct real *h)
{
    auth_client_free(h->ac);
    ev_loop_destroy(h->loop);
    int st = wait_exit(h->pid, 5.0);
    if (st == -1) {
        kill(h->pid, SIGKILL);
        waitpid(h->pid, NULL, 0);
        fail_msg("helper did not exit after its socket closed");
    }
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

/* Children of pid, from /proc. */
static int children_of(pid_t pid, pid_t *out, int max)
{
    int n = 0;
    DIR *d = opendir("/proc");
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)) && n < max) {
        char path[300], line[256];
        if (de->d_name[0] < '0' || de->d_name[0] > '9')
            continue;
        snprintf(path, sizeof path, "/proc/%s/status", de->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        while (fgets(line, sizeof line, f)) {
            long pp;
            if (sscanf(line, "PPid: %ld", &pp) == 1) {
                if (pp == (long)pid)
                    out[n++] = (pid_t)atol(de->d_name);
                break;
            }
        }
        fclose(f);
    }
    closedir(d);
    return n;
}

/* True if pid exists and is not a zombie (a reparented zombie may wait
 * long for a container's init to reap it). */
static bool alive(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *rp = strrchr(buf, ')');
    return rp && rp[1] == ' ' && rp[2] != 'Z' && rp[2] != 'X';
}

static void test_helper_checks(void **state)
{
    (void)state;
    struct real h;
    real_start(&h);
    struct rec r[7] = { 0 };
    assert_int_equal(submit(h.ac, 10, "dev0", "alice", "alice-pw", &r[0]), 0);
    assert_int_equal(submit(h.ac, 11, "dev0", "alice", "wrong", &r[1]), 0);
    assert_int_equal(submit(h.ac, 12, "dev0", "mallory", "x", &r[2]), 0);
    assert_int_equal(submit(h.ac, 13, "dev0", "bob", "bob-pw", &r[3]), 0);
    assert_int_equal(submit(h.ac, 14, "nope", "alice", "alice-pw", &r[4]), 0);
    assert_int_equal(submit(h.ac, 15, "dev0", "al\x01ice", "x", &r[5]), 0);
    assert_int_equal(submit(h.ac, 16, "dev0", "alice", "alice-pw", &r[6]), 0);
    assert_true(run_until(h.loop, &g_calls, 7, 10.0));
    static const struct {
        uint8_t result;
        const char *detail;
    } want[7] = {
        { AUTHP_OK, "" },
        { AUTHP_BAD_PASSWORD, "wrong password" },
        { AUTHP_UNKNOWN_USER, "no such user" },
        { AUTHP_NOT_ALLOWED, "user bob not in users/groups of vm dev0" },
        { AUTHP_NOT_ALLOWED, "no such vm" },
        { AUTHP_UNKNOWN_USER, "invalid user name" },
        { AUTHP_OK, "" },
    };
    for (int i = 0; i < 7; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].resp.id, 10 + i);
        if (r[i].resp.result != want[i].result || !strstr(r[i].resp.detail, want[i].detail))
            fail_msg("request %d: %s (%s), wanted %s (%s)", i,
                     authp_result_name(r[i].resp.result), r[i].resp.detail,
                     authp_result_name(want[i].result), want[i].detail);
    }
    real_stop(&h);
}

/* Raw datagrams straight on the helper socket. */
static int raw_answer(int fd, struct authp_login_resp *s, int timeout_ms)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    if (poll(&p, 1, timeout_ms) <= 0)
        return -1;
    uint8_t buf[AUTHP_MAX_MSG + 1];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0)
        return -1;
    return authp_decode_login_resp(buf, (size_t)n, s);
}

static void test_helper_malformed(void **state)
{
    (void)state;
    int fd;
    pid_t pid;
    assert_int_equal(auth_helper_start(&g_cfg, &fd, &pid), 0);
    struct authp_login_resp s;
    /* readable header, bad body: answered with the id */
    uint8_t bad[] = { AUTHP_VERSION, AUTHP_REQ_LOGIN, 0, 0, 0xde, 0xad, 0xbe, 0xef, 0, 9 };
    assert_int_equal(send(fd, bad, sizeof bad, 0), (ssize_t)sizeof bad);
    assert_int_equal(raw_answer(fd, &s, 2000), 0);
    assert_int_equal(s.id, 0xdeadbeefu);
    assert_int_equal(s.result, AUTHP_ERROR);
    assert_string_equal(s.detail, "malformed request");
    /* wrong type with a readable header: also answered */
    uint8_t wrongtype[] = { AUTHP_VERSION, AUTHP_RESP_LOGIN, 0, 0, 0, 0, 0, 5, 0, 0, 0 };
    assert_int_equal(send(fd, wrongtype, sizeof wrongtype, 0), (ssize_t)sizeof wrongtype);
    assert_int_equal(raw_answer(fd, &s, 2000), 0);
    assert_int_equal(s.id, 5);
    /* no readable header: ignored */
    assert_int_equal(send(fd, "xy", 2, 0), 2);
    uint8_t v9[12] = { 9, 1, 0, 0, 0, 0, 0, 6 };
    assert_int_equal(send(fd, v9, sizeof v9, 0), (ssize_t)sizeof v9);
    /* an over-long datagram: answered if its header is readable */
    static uint8_t big[AUTHP_MAX_MSG + 100] = { AUTHP_VERSION, AUTHP_REQ_LOGIN, 0, 0, 0, 0, 0, 7 };
    assert_int_equal(send(fd, big, sizeof big, 0), (ssize_t)sizeof big);
    assert_int_equal(raw_answer(fd, &s, 2000), 0);
    assert_int_equal(s.id, 7);
    assert_int_equal(s.result, AUTHP_ERROR);
    /* a well-formed request, but no socket attached, two of them, or a
     * pipe: malformed, and no worker ever sees it */
    struct authp_login_req q = { .id = 8 };
    strcpy(q.vm, "dev0");
    strcpy(q.user, "alice");
    strcpy(q.password, "alice-pw");
    uint8_t buf[AUTHP_MAX_MSG];
    int n = authp_encode_login_req(&q, buf, sizeof buf);
    int pp[2];
    assert_int_equal(pipe(pp), 0);
    struct {
        uint32_t id;
        int fds[2], nfds;
    } badfd[] = {
        { 51, { -1, -1 }, 0 },
        { 52, { g_viewer[0], g_viewer[1] }, 2 },
        { 53, { pp[0], -1 }, 1 },
    };
    for (size_t i = 0; i < sizeof badfd / sizeof *badfd; i++) {
        q.id = badfd[i].id;
        n = authp_encode_login_req(&q, buf, sizeof buf);
        assert_int_equal(send_with_fds(fd, buf, (size_t)n, badfd[i].fds, badfd[i].nfds), n);
        assert_int_equal(raw_answer(fd, &s, 2000), 0);
        assert_int_equal(s.id, badfd[i].id);
        assert_int_equal(s.result, AUTHP_ERROR);
        assert_string_equal(s.detail, "malformed request");
    }
    close(pp[0]);
    close(pp[1]);
    /* and the helper still works */
    q.id = 8;
    n = authp_encode_login_req(&q, buf, sizeof buf);
    assert_int_equal(send_with_fds(fd, buf, (size_t)n, g_viewer, 1), n);
    assert_int_equal(raw_answer(fd, &s, 5000), 0);
    assert_int_equal(s.id, 8);
    assert_int_equal(s.result, AUTHP_OK);
    close(fd);
    int st = wait_exit(pid, 5.0);
    assert_true(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* Start the helper with its stderr going to a fresh temporary file (at
 * debug level), so the test can read what it logged. */
static int start_logged_helper(int *fd, pid_t *pid, char *logpath, size_t cap)
{
    snprintf(logpath, cap, "%s/helper-log-XXXXXX", g_dir);
    int lf = mkstemp(logpath);
    assert_true(lf >= 0);
    int saved = dup(STDERR_FILENO);
    enum log_level lvl = log_get_level();
    log_set_level(LOG_LVL_DEBUG);
    dup2(lf, STDERR_FILENO);
    int rc = auth_helper_start(&g_cfg, fd, pid);
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(lf);
    log_set_level(lvl);
    return rc;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    static char text[65536];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    return text;
}

/* A request that claims to come from 203.0.113.9, sent with a socket whose
 * peer is 127.0.0.1: the helper checks, logs and counts the failure for
 * 127.0.0.1, never for the claimed address. */
static void test_helper_peer_not_claim(void **state)
{
    (void)state;
    int fd, srv, cli;
    pid_t pid;
    char logpath[400];
    assert_int_equal(start_logged_helper(&fd, &pid, logpath, sizeof logpath), 0);
    tcp_pair(&srv, &cli);
    struct authp_login_req q = { .id = 31 };
    strcpy(q.vm, "dev0");
    strcpy(q.user, "alice");
    strcpy(q.password, "wrong");
    strcpy(q.rhost, "203.0.113.9");
    uint8_t buf[AUTHP_MAX_MSG];
    int n = authp_encode_login_req(&q, buf, sizeof buf);
    assert_true(n > 0);
    assert_int_equal(send_with_fds(fd, buf, (size_t)n, &srv, 1), n);
    close(srv);
    struct authp_login_resp s;
    assert_int_equal(raw_answer(fd, &s, 5000), 0);
    assert_int_equal(s.id, 31);
    assert_int_equal(s.result, AUTHP_BAD_PASSWORD);
    close(fd);
    int st = wait_exit(pid, 5.0);
    assert_true(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    close(cli);
    const char *log = slurp(logpath);
    print_message("helper log:\n%s", log);
    if (!strstr(log, "failed login from 127.0.0.1"))
        fail_msg("the failure was not counted for 127.0.0.1");
    if (strstr(log, "from 203.0.113.9"))
        fail_msg("the claimed source 203.0.113.9 was used");
    unlink(logpath);
}

/* One helper, three sockets (processes = 3): each request is answered on
 * the socket it came on, a malformed one too; a closed socket leaves the
 * helper serving the others; it exits when the last one closes. */
static void test_helper_sockets(void **state)
{
    (void)state;
    int fd[3];
    pid_t pid;
    assert_int_equal(auth_helper_start_n(&g_cfg, fd, 3, &pid), 0);
    uint8_t buf[AUTHP_MAX_MSG];
    struct authp_login_resp s;
    /* the same id on every socket, different outcomes: no cross-talk */
    const char *pw[3] = { "alice-pw", "wrong", "alice-pw" };
    for (int i = 0; i < 3; i++) {
        struct authp_login_req q = { .id = 77 };
        strcpy(q.vm, "dev0");
        strcpy(q.user, "alice");
        strcpy(q.password, pw[i]);
        int n = authp_encode_login_req(&q, buf, sizeof buf);
        assert_int_equal(send_with_fds(fd[i], buf, (size_t)n, g_viewer, 1), n);
    }
    for (int i = 0; i < 3; i++) {
        assert_int_equal(raw_answer(fd[i], &s, 5000), 0);
        assert_int_equal(s.id, 77);
        assert_int_equal(s.result, i == 1 ? AUTHP_BAD_PASSWORD : AUTHP_OK);
    }
    /* the helper's own answer goes to the asking socket */
    uint8_t bad[] = { AUTHP_VERSION, AUTHP_REQ_LOGIN, 0, 0, 0, 0, 0, 9, 0, 9 };
    assert_int_equal(send(fd[2], bad, sizeof bad, 0), (ssize_t)sizeof bad);
    assert_int_equal(raw_answer(fd[2], &s, 2000), 0);
    assert_int_equal(s.id, 9);
    assert_int_equal(raw_answer(fd[0], &s, 200), -1);
    assert_int_equal(raw_answer(fd[1], &s, 200), -1);
    /* socket 0 closed: the helper still serves socket 1 */
    close(fd[0]);
    struct authp_login_req q = { .id = 78 };
    strcpy(q.vm, "dev0");
    strcpy(q.user, "alice");
    strcpy(q.password, "alice-pw");
    int n = authp_encode_login_req(&q, buf, sizeof buf);
    assert_int_equal(send_with_fds(fd[1], buf, (size_t)n, g_viewer, 1), n);
    assert_int_equal(raw_answer(fd[1], &s, 5000), 0);
    assert_int_equal(s.id, 78);
    assert_int_equal(s.result, AUTHP_OK);
    assert_int_equal(waitpid(pid, NULL, WNOHANG), 0);
    close(fd[1]);
    assert_int_equal(waitpid(pid, NULL, WNOHANG), 0);
    close(fd[2]);
    int st = wait_exit(pid, 5.0);
    assert_true(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    /* out of range */
    assert_int_equal(auth_helper_start_n(&g_cfg, fd, 0, &pid), -1);
    assert_int_equal(auth_helper_start_n(&g_cfg, fd, AUTH_SOCKETS_MAX + 1, &pid), -1);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* auth = file with a cheap sha512crypt entry, a yescrypt entry and an
 * unknown user: the failures come back at the same time after the
 * request (10 interleaved rounds: the median of each kind minus the first kind, within a round, is within 10 ms), though the
 * checks cost about 5, 50 and 50 ms. */
#define FILE_NAME(k) names[k]
static void test_helper_file_timing(void **state)
{
    (void)state;
    char file[300], salt[CRYPT_GENSALT_OUTPUT_SIZE], line[512];
    struct crypt_data cd;
    memset(&cd, 0, sizeof cd);
    snprintf(file, sizeof file, "%s/passwd-mixed", g_dir);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    assert_non_null(crypt_gensalt_rn("$6$", 0, NULL, 0, salt, (int)sizeof salt));
    snprintf(line, sizeof line, "alice:%s\n", crypt_rn("alice-pw", salt, &cd, (int)sizeof cd));
    fputs(line, f);
    assert_non_null(crypt_gensalt_rn("$y$", 0, NULL, 0, salt, (int)sizeof salt));
    snprintf(line, sizeof line, "carol:%s\n", crypt_rn("carol-pw", salt, &cd, (int)sizeof cd));
    fputs(line, f);
    fclose(f);
    struct cfg saved = g_cfg;
    g_cfg.passwd_file = file;
    g_cfg.fail_delay_ms = 20;
    struct real h;
    real_start(&h);
    g_cfg = saved;
    static const char *const users[3] = { "alice", "carol", "mallory" };
    static const char *const names[3] = { "sha512crypt", "yescrypt", "unknown" };
    enum { TRIES = 10, WARM = 2 };   /* yescrypt at nice 10: ~0.2-0.5 s a try here */
    double took[3][TRIES];
    for (int t = -WARM; t < TRIES; t++) {
        for (int k = 0; k < 3; k++) {
            struct rec r = { 0 };
            int want = g_calls + 1;
            double t0 = now_s();
            assert_int_equal(submit(h.ac, 1, "dev0", users[k], "wrong", &r), 0);
            assert_true(run_until(h.loop, &g_calls, want, 10.0));
            assert_int_equal(r.resp.result, k == 2 ? AUTHP_UNKNOWN_USER : AUTHP_BAD_PASSWORD);
            if (t >= 0)
                took[k][t] = (now_s() - t0) * 1000.0;
        }
    }
    real_stop(&h);
    /* paired: within one round the budget is the same for the three kinds;
     * across rounds it may step up when the machine's load makes a check
     * slower, which would shift plain medians by the step */
    double diff[2][TRIES];
    for (int t = 0; t < TRIES; t++)
        for (int k = 1; k < 3; k++)
            diff[k - 1][t] = took[k][t] - took[0][t];
    double med[3];
    for (int k = 0; k < 3; k++) {
        qsort(took[k], TRIES, sizeof took[k][0], cmp_double);
        med[k] = (took[k][TRIES / 2 - 1] + took[k][TRIES / 2]) / 2;
        print_message("%-12s median %6.1f ms (min %6.1f, max %6.1f)\n", names[k], med[k],
                      took[k][0], took[k][TRIES - 1]);
    }
    for (int k = 0; k < 2; k++) {
        qsort(diff[k], TRIES, sizeof diff[k][0], cmp_double);
        double md = (diff[k][TRIES / 2 - 1] + diff[k][TRIES / 2]) / 2;
        print_message("%s - %s: median %+.1f ms\n", FILE_NAME(k + 1), FILE_NAME(0), md);
        if (md > 10.0 || md < -10.0)
            fail_msg("%s and %s can be told apart: median difference %.1f ms", FILE_NAME(k + 1),
                     FILE_NAME(0), md);
    }
}

/* A worker stuck (here: opening a FIFO nobody writes) is killed after the
 * timeout and its request answered "timeout"; the others go on. */
static void test_helper_timeout(void **state)
{
    (void)state;
    struct cfg saved = g_cfg;
    g_cfg.passwd_file = g_fifo;
    auth_helper_set_limits(400, 0);
    struct real h;
    real_start(&h);
    g_cfg = saved;
    struct rec r = { 0 };
    double t0 = now_s();
    assert_int_equal(submit(h.ac, 42, "dev0", "alice", "alice-pw", &r), 0);
    assert_true(run_until(h.loop, &g_calls, 1, 10.0));
    double took = now_s() - t0;
    assert_int_equal(r.resp.id, 42);
    assert_int_equal(r.resp.result, AUTHP_ERROR);
    assert_string_equal(r.resp.detail, "timeout");
    assert_true(took >= 0.35);
    assert_true(took < 5.0);
    real_stop(&h);
    auth_helper_set_limits(AUTH_WORKER_TIMEOUT_MS, 0);
}

/* With every worker stuck and the queue full, more requests are answered
 * "overloaded" at once; closing the socket still ends the helper at once,
 * killing the stuck workers. */
static void test_helper_overload_and_exit(void **state)
{
    (void)state;
    struct cfg saved = g_cfg;
    g_cfg.passwd_file = g_fifo;
    g_cfg.auth_workers = 1;
    auth_helper_set_limits(60000, 2);
    struct real h;
    real_start(&h);
    g_cfg = saved;
    auth_helper_set_limits(AUTH_WORKER_TIMEOUT_MS, AUTH_QUEUE_MAX);
    struct rec r[5] = { 0 };
    for (int i = 0; i < 5; i++) {
        assert_int_equal(submit(h.ac, (uint32_t)i, "dev0", "alice", "alice-pw", &r[i]), 0);
        /* let the helper take them one by one, so which ones overflow is known */
        double end = now_s() + 0.05;
        while (now_s() < end)
            ev_run(h.loop, EVRUN_NOWAIT);
    }
    assert_true(run_until(h.loop, &g_calls, 2, 5.0));
    for (int i = 0; i < 3; i++)
        assert_int_equal(r[i].calls, 0);
    for (int i = 3; i < 5; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].resp.result, AUTHP_ERROR);
        assert_string_equal(r[i].resp.detail, "overloaded");
    }
    pid_t kids[8];
    int nk = children_of(h.pid, kids, 8);
    assert_int_equal(nk, 1);   /* one worker, stuck */
    double t0 = now_s();
    real_stop(&h);
    assert_true(now_s() - t0 < 3.0);
    /* the stuck worker was killed and reaped */
    assert_false(alive(kids[0]));
}

/* The helper dies with requests in flight: every pending callback gets
 * AUTHP_ERROR, and so does every later submit. */
static void test_helper_death(void **state)
{
    (void)state;
    struct cfg saved = g_cfg;
    g_cfg.passwd_file = g_fifo;
    struct real h;
    real_start(&h);
    g_cfg = saved;
    struct rec r[3] = { 0 };
    for (int i = 0; i < 3; i++)
        assert_int_equal(submit(h.ac, (uint32_t)i + 1, "dev0", "alice", "alice-pw", &r[i]), 0);
    for (int i = 0; i < 50; i++) {
        ev_run(h.loop, EVRUN_NOWAIT);
        usleep(2000);
    }
    assert_int_equal(g_calls, 0);
    pid_t kids[8];
    int nk = children_of(h.pid, kids, 8);
    assert_int_equal(nk, 2);   /* auth_workers = 2, both stuck */
    kill(h.pid, SIGKILL);
    assert_true(run_until(h.loop, &g_calls, 3, 5.0));
    for (int i = 0; i < 3; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].resp.id, (uint32_t)i + 1);
        assert_int_equal(r[i].resp.result, AUTHP_ERROR);
        assert_string_equal(r[i].resp.detail, "auth helper gone");
    }
    assert_false(auth_client_ok(h.ac));
    struct rec late = { 0 };
    assert_int_equal(submit(h.ac, 9, "dev0", "alice", "alice-pw", &late), 0);
    assert_int_equal(late.calls, 0);
    assert_true(run_until(h.loop, &g_calls, 4, 2.0));
    assert_int_equal(late.resp.result, AUTHP_ERROR);
    auth_client_free(h.ac);
    ev_loop_destroy(h.loop);
    assert_int_equal(waitpid(h.pid, NULL, 0), h.pid);
    /* the workers died with their helper (PR_SET_PDEATHSIG) */
    for (int i = 0; i < nk; i++) {
        double end = now_s() + 2;
        while (alive(kids[i]) && now_s() < end)
            usleep(5000);
        assert_false(alive(kids[i]));
    }
}

/* Many more requests than workers, all answered. */
static void test_helper_many(void **state)
{
    (void)state;
    struct real h;
    real_start(&h);
    enum { N = 12 };
    struct rec r[N] = { 0 };
    for (int i = 0; i < N; i++)
        assert_int_equal(submit(h.ac, 1000u + (uint32_t)i, "dev0", i % 2 ? "alice" : "carol",
                                i % 2 ? "alice-pw" : "x", &r[i]), 0);
    assert_true(run_until(h.loop, &g_calls, N, 20.0));
    for (int i = 0; i < N; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].resp.id, 1000u + (uint32_t)i);
        assert_int_equal(r[i].resp.result, i % 2 ? AUTHP_OK : AUTHP_UNKNOWN_USER);
    }
    real_stop(&h);
}


/* ---- certificate fetch (SIGHUP after the privilege drop) ---- */

struct certrec {
    int calls;
    uint8_t result;
    char detail[AUTHP_DETAIL_MAX + 1];
    char chain[256], key[256];
};

static void cert_cb(void *ctx, const struct authp_cert_resp *resp)
{
    struct certrec *c = ctx;
    c->calls++;
    g_calls++;
    c->result = resp->result;
    snprintf(c->detail, sizeof c->detail, "%s", resp->detail);
    snprintf(c->chain, sizeof c->chain, "%.*s", (int)resp->chain_len, (const char *)resp->chain);
    snprintf(c->key, sizeof c->key, "%.*s", (int)resp->key_len, (const char *)resp->key);
}

/* The helper reads cfg cert = and key = and sends both texts; a login in
 * flight on the same socket still gets its own answer; a second fetch
 * while one is under way is EBUSY; a missing key comes back as AUTHP_ERROR
 * naming the file. */
static void test_helper_cert_fetch(void **state)
{
    (void)state;
    char crt[320], key[320];
    snprintf(crt, sizeof crt, "%s/server.crt", g_dir);
    snprintf(key, sizeof key, "%s/server.key", g_dir);
    FILE *f = fopen(crt, "w");
    assert_non_null(f);
    fputs("-----BEGIN CERTIFICATE-----\nchain text\n", f);
    fclose(f);
    f = fopen(key, "w");
    assert_non_null(f);
    fputs("-----BEGIN PRIVATE KEY-----\nkey text\n", f);
    fclose(f);
    chmod(key, 0600);
    g_cfg.cert = crt;
    g_cfg.key = key;

    struct real h;
    real_start(&h);
    struct certrec c = { 0 };
    struct rec r = { 0 };
    assert_int_equal(auth_client_fetch_cert(h.ac, cert_cb, &c), 0);
    assert_int_equal(auth_client_fetch_cert(h.ac, cert_cb, &c), -1);
    assert_int_equal(errno, EBUSY);
    assert_int_equal(submit(h.ac, 20, "dev0", "alice", "alice-pw", &r), 0);
    assert_true(run_until(h.loop, &g_calls, 2, 10.0));
    assert_int_equal(c.calls, 1);
    assert_int_equal(c.result, AUTHP_OK);
    assert_string_equal(c.chain, "-----BEGIN CERTIFICATE-----\nchain text\n");
    assert_string_equal(c.key, "-----BEGIN PRIVATE KEY-----\nkey text\n");
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.resp.result, AUTHP_OK);

    unlink(key);
    g_calls = 0;
    memset(&c, 0, sizeof c);
    assert_int_equal(auth_client_fetch_cert(h.ac, cert_cb, &c), 0);
    assert_true(run_until(h.loop, &g_calls, 1, 10.0));
    /* the helper forked before the unlink still reads the current file */
    assert_int_equal(c.result, AUTHP_ERROR);
    assert_non_null(strstr(c.detail, "server.key: No such file or directory"));
    assert_string_equal(c.key, "");
    real_stop(&h);
    g_cfg.cert = g_cfg.key = NULL;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fake_out_of_order, fake_setup, fake_teardown),
        cmocka_unit_test_setup_teardown(test_fake_cancel, fake_setup, fake_teardown),
        cmocka_unit_test_setup_teardown(test_fake_helper_gone, fake_setup, fake_teardown),
        cmocka_unit_test_setup_teardown(test_fake_backpressure, fake_setup, fake_teardown),
        cmocka_unit_test_setup_teardown(test_fake_reentrancy, fake_setup, fake_teardown),
        cmocka_unit_test_setup_teardown(test_fake_free_in_deferred, fake_setup, fake_teardown),
        cmocka_unit_test_setup_teardown(test_fake_bad_args, fake_setup, fake_teardown),
        cmocka_unit_test(test_helper_checks),
        cmocka_unit_test(test_helper_malformed),
        cmocka_unit_test(test_helper_sockets),
        cmocka_unit_test(test_helper_peer_not_claim),
        cmocka_unit_test(test_helper_file_timing),
        cmocka_unit_test(test_helper_timeout),
        cmocka_unit_test(test_helper_overload_and_exit),
        cmocka_unit_test(test_helper_death),
        cmocka_unit_test(test_helper_many),
        cmocka_unit_test(test_helper_cert_fetch),
    };
    return cmocka_run_group_tests_name("auth_client", tests, group_setup, group_teardown);
}
