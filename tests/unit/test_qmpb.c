/* tests/unit/test_qmpb.c — the QMP broker (auth/qmpb.c): only fixed
 * scripts can be composed (a ticket cannot change the JSON), and the
 * blocking runner against a fake monitor in a thread: the handoff's fd
 * arrives with getfd, query-status yields the status word, QEMU's error is
 * a refusal, a silent monitor times out; guest-set-time through a fake
 * guest agent (the host's time after a sync, the agent's error, bounded
 * when the agent is silent). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "auth/qmpb.h"

static void test_scripts(void **state)
{
    (void)state;
    struct qmp_cmd c[QMP_RUN_MAX];
    char why[128];
    assert_int_equal(qmpb_script(QMPB_VNC_HANDOFF, 42, NULL, c, why, sizeof why), 2);
    assert_true(c[0].pass_fd);
    assert_non_null(strstr(c[0].json, "\"getfd\""));
    assert_non_null(strstr(c[0].json, "vmgate-42"));
    assert_non_null(strstr(c[1].json, "\"add_client\""));
    assert_non_null(strstr(c[1].json, "\"skipauth\":true"));
    const char *t = "0123456789abcdef0123456789abcdef0123456789abcdef";
    assert_int_equal(qmpb_script(QMPB_SPICE_TICKET, 1, t, c, why, sizeof why), 2);
    assert_non_null(strstr(c[0].json, t));
    /* a ticket that could change the JSON, or any other length, is refused */
    const char *bad[] = { "0123456789abcdef0123456789abcdef0123456789abcde\"",
                          "x\",\"execute\":\"migrate", "", "ABCDEF", NULL };
    for (int i = 0; bad[i]; i++)
        assert_int_equal(qmpb_script(QMPB_SPICE_TICKET, 1, bad[i], c, why, sizeof why), -1);
    assert_int_equal(qmpb_script(QMPB_SPICE_TICKET, 1, NULL, c, why, sizeof why), -1);
    assert_int_equal(qmpb_script(QMPB_QUERY_STATUS, 1, NULL, c, why, sizeof why), 1);
    /* the power ops: exactly QEMU's command, no argument */
    const struct { unsigned op; const char *json; } pw[] = {
        { QMPB_STOP, "{\"execute\":\"stop\"}\n" },
        { QMPB_CONT, "{\"execute\":\"cont\"}\n" },
        { QMPB_POWERDOWN, "{\"execute\":\"system_powerdown\"}\n" },
        { QMPB_RESET, "{\"execute\":\"system_reset\"}\n" },
    };
    for (size_t i = 0; i < sizeof pw / sizeof pw[0]; i++) {
        assert_int_equal(qmpb_script(pw[i].op, 1, "x", c, why, sizeof why), 1);
        assert_string_equal(c[0].json, pw[i].json);
        assert_false(qmpb_op_wants_fd(pw[i].op));
    }
    assert_int_equal(qmpb_script(0, 1, NULL, c, why, sizeof why), -1);
    assert_int_equal(qmpb_script(QMPB_OP_MAX, 1, NULL, c, why, sizeof why), -1);
    assert_int_equal(qmpb_script(200, 1, NULL, c, why, sizeof why), -1);
    assert_null(qmpb_op_name(0));
    assert_null(qmpb_op_name(99));
    assert_string_equal(qmpb_op_name(QMPB_VNC_HANDOFF), "vnc-handoff");
}

/* ---- a fake monitor ---- */
enum mon_mode { M_OK, M_ERROR, M_SILENT };
struct mon {
    char path[108];
    int lfd;
    enum mon_mode mode;
    int got_fd;                 /* an fd received with a command */
    char got[2048];             /* every command line received */
    pthread_t t;
};

static void *mon_main(void *arg)
{
    struct mon *m = arg;
    int fd = accept(m->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    if (m->mode == M_SILENT) {
        char b[256];
        while (recv(fd, b, sizeof b, 0) > 0)
            ;
        close(fd);
        return NULL;
    }
    const char *greet = "{\"QMP\": {\"version\": {}, \"capabilities\": []}}\r\n";
    send(fd, greet, strlen(greet), 0);
    char line[1024];
    size_t have = 0;
    for (;;) {
        char cbuf[CMSG_SPACE(sizeof(int))];
        struct iovec iov = { line + have, sizeof line - have - 1 };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                             .msg_controllen = sizeof cbuf };
        ssize_t n = recvmsg(fd, &mh, 0);
        if (n <= 0)
            break;
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        if (cm && cm->cmsg_type == SCM_RIGHTS)
            memcpy(&m->got_fd, CMSG_DATA(cm), sizeof(int));
        have += (size_t)n;
        line[have] = '\0';
        char *nl;
        while ((nl = strchr(line, '\n'))) {
            size_t l = (size_t)(nl - line) + 1;
            strncat(m->got, line, l);
            const char *ans = "{\"return\": {}}\r\n";
            if (strstr(line, "query-status"))
                ans = "{\"timestamp\": {\"seconds\": 1}, \"event\": \"STOP\"}\r\n"
                      "{\"return\": {\"status\": \"paused\", \"singlestep\": false, "
                      "\"running\": false}}\r\n";
            else if (m->mode == M_ERROR && !strstr(line, "qmp_capabilities"))
                ans = "{\"error\": {\"class\": \"GenericError\", \"desc\": \"nope\"}}\r\n";
            send(fd, ans, strlen(ans), 0);
            memmove(line, line + l, have - l + 1);
            have -= l;
        }
    }
    close(fd);
    return NULL;
}

static void mon_start(struct mon *m, enum mon_mode mode)
{
    memset(m, 0, sizeof *m);
    m->mode = mode;
    m->got_fd = -1;
    snprintf(m->path, sizeof m->path, "/tmp/vmg-qmpb.%d.%d", (int)getpid(), (int)mode);
    unlink(m->path);
    m->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    strcpy(sun.sun_path, m->path);
    assert_int_equal(bind(m->lfd, (struct sockaddr *)&sun, sizeof sun), 0);
    assert_int_equal(listen(m->lfd, 1), 0);
    assert_int_equal(pthread_create(&m->t, NULL, mon_main, m), 0);
}

static void mon_stop(struct mon *m)
{
    if (!pthread_equal(m->t, pthread_self()))
        pthread_join(m->t, NULL);
    close(m->lfd);
    unlink(m->path);
    if (m->got_fd >= 0)
        close(m->got_fd);
}

static void test_handoff_passes_fd(void **state)
{
    (void)state;
    struct mon m;
    mon_start(&m, M_OK);
    struct qmp_cmd c[QMP_RUN_MAX];
    char why[128];
    int n = qmpb_script(QMPB_VNC_HANDOFF, 7, NULL, c, why, sizeof why);
    int sp[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
    bool refused;
    assert_int_equal(qmpb_run(m.path, c, (size_t)n, sp[1], 2000, NULL, 0, &refused, why,
                              sizeof why), 0);
    pthread_join(m.t, NULL);
    assert_true(m.got_fd >= 0);
    /* the fd QEMU got is our socketpair's other end */
    assert_int_equal(write(m.got_fd, "x", 1), 1);
    char b;
    assert_int_equal(read(sp[0], &b, 1), 1);
    m.t = pthread_self();
    assert_non_null(strstr(m.got, "qmp_capabilities"));
    assert_non_null(strstr(m.got, "add_client"));
    close(sp[0]);
    close(sp[1]);
}

static void test_query_status(void **state)
{
    (void)state;
    struct mon m;
    mon_start(&m, M_OK);
    struct qmp_cmd c[QMP_RUN_MAX];
    char why[128], status[32];
    int n = qmpb_script(QMPB_QUERY_STATUS, 1, NULL, c, why, sizeof why);
    bool refused;
    assert_int_equal(qmpb_run(m.path, c, (size_t)n, -1, 2000, status, sizeof status, &refused,
                              why, sizeof why), 0);
    mon_stop(&m);
    assert_string_equal(status, "paused");
}

static void test_error_is_refusal(void **state)
{
    (void)state;
    struct mon m;
    mon_start(&m, M_ERROR);
    struct qmp_cmd c[QMP_RUN_MAX];
    char why[128];
    int n = qmpb_script(QMPB_VNC_HANDOFF, 7, NULL, c, why, sizeof why);
    bool refused = false;
    assert_int_equal(qmpb_run(m.path, c, (size_t)n, -1, 2000, NULL, 0, &refused, why,
                              sizeof why), -1);
    mon_stop(&m);
    assert_true(refused);
    assert_string_equal(why, "nope");
}

static void test_silent_times_out(void **state)
{
    (void)state;
    struct mon m;
    mon_start(&m, M_SILENT);
    struct qmp_cmd c[QMP_RUN_MAX];
    char why[128];
    int n = qmpb_script(QMPB_QUERY_STATUS, 1, NULL, c, why, sizeof why);
    bool refused;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(qmpb_run(m.path, c, (size_t)n, -1, 300, NULL, 0, &refused, why,
                              sizeof why), -1);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    shutdown(m.lfd, SHUT_RDWR);
    mon_stop(&m);
    assert_string_equal(why, "QMP timed out");
    double el = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    assert_true(el >= 0.29 && el < 2.0);
}

static void test_no_monitor(void **state)
{
    (void)state;
    struct qmp_cmd c[QMP_RUN_MAX];
    char why[256];
    int n = qmpb_script(QMPB_QUERY_STATUS, 1, NULL, c, why, sizeof why);
    bool refused;
    assert_int_equal(qmpb_run("/nonexistent/qmp.sock", c, (size_t)n, -1, 300, NULL, 0, &refused,
                              why, sizeof why), -1);
    assert_false(refused);
    assert_non_null(strstr(why, "connect /nonexistent/qmp.sock"));
}

/* ---- a fake guest agent: answers guest-sync-delimited (0xff + the token)
 * unless silent, then guest-set-time as its mode says ---- */
enum agent_mode { A_OK, A_ERROR, A_MUTE_AFTER_SYNC, A_SILENT };
struct agent {
    char path[108];
    int lfd;
    enum agent_mode mode;
    char got[2048];             /* every line received */
    pthread_t t;
};

static void *agent_main(void *arg)
{
    struct agent *a = arg;
    int fd = accept(a->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    char line[1024];
    size_t have = 0;
    for (;;) {
        ssize_t n = recv(fd, line + have, sizeof line - have - 1, 0);
        if (n <= 0)
            break;
        have += (size_t)n;
        line[have] = '\0';
        char *nl;
        while ((nl = strchr(line, '\n'))) {
            size_t l = (size_t)(nl - line) + 1;
            strncat(a->got, line, l);
            char ans[256] = "";
            const char *id = strstr(line, "\"id\":");
            if (a->mode != A_SILENT && strstr(line, "guest-sync-delimited") && id)
                snprintf(ans, sizeof ans, "\xff{\"return\": %ld}\n", strtol(id + 5, NULL, 10));
            else if (strstr(line, "guest-set-time") && a->mode == A_OK)
                snprintf(ans, sizeof ans, "{\"return\": {}}\n");
            else if (strstr(line, "guest-set-time") && a->mode == A_ERROR)
                snprintf(ans, sizeof ans, "{\"error\": {\"class\": \"GenericError\", "
                                          "\"desc\": \"hwclock\x01 failed\"}}\n");
            if (ans[0])
                send(fd, ans, strlen(ans), 0);
            memmove(line, line + l, have - l + 1);
            have -= l;
        }
    }
    close(fd);
    return NULL;
}

static void agent_start(struct agent *a, enum agent_mode mode)
{
    memset(a, 0, sizeof *a);
    a->mode = mode;
    snprintf(a->path, sizeof a->path, "/tmp/vmg-qga.%d.%d", (int)getpid(), (int)mode);
    unlink(a->path);
    a->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    strcpy(sun.sun_path, a->path);
    assert_int_equal(bind(a->lfd, (struct sockaddr *)&sun, sizeof sun), 0);
    assert_int_equal(listen(a->lfd, 1), 0);
    assert_int_equal(pthread_create(&a->t, NULL, agent_main, a), 0);
}

static double elapsed(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* guest-set-time carries the host's clock in ns, after a sync, and the
 * agent's {"return": {}} is success */
static void test_qga_set_time(void **state)
{
    (void)state;
    struct agent a;
    agent_start(&a, A_OK);
    char why[160] = "";
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    long long before = (long long)now.tv_sec * 1000000000LL + now.tv_nsec;
    assert_int_equal(qmpb_qga_set_time(a.path, 2000, why, sizeof why), 0);
    clock_gettime(CLOCK_REALTIME, &now);
    long long after = (long long)now.tv_sec * 1000000000LL + now.tv_nsec;
    pthread_join(a.t, NULL);
    close(a.lfd);
    unlink(a.path);
    const char *sync = strstr(a.got, "guest-sync-delimited");
    const char *set = strstr(a.got, "{\"execute\":\"guest-set-time\",\"arguments\":{\"time\":");
    assert_non_null(sync);
    assert_non_null(set);
    assert_true(sync < set);
    long long t = strtoll(strstr(set, "\"time\":") + 7, NULL, 10);
    assert_true(t >= before && t <= after);
}

/* the agent's error is a failure with its words, control bytes replaced */
static void test_qga_set_time_error(void **state)
{
    (void)state;
    struct agent a;
    agent_start(&a, A_ERROR);
    char why[160] = "";
    assert_int_equal(qmpb_qga_set_time(a.path, 2000, why, sizeof why), -1);
    pthread_join(a.t, NULL);
    close(a.lfd);
    unlink(a.path);
    assert_non_null(strstr(why, "guest-set-time refused: "));
    assert_non_null(strstr(why, "hwclock? failed"));
}

/* an agent that never answers (no agent in the guest: QEMU's chardev
 * accepts, nobody reads) or answers the sync only: bounded by the timeout */
static void test_qga_set_time_bounded(void **state)
{
    (void)state;
    const enum agent_mode modes[] = { A_SILENT, A_MUTE_AFTER_SYNC };
    const char *whys[] = { "does not answer", "did not answer guest-set-time" };
    for (unsigned i = 0; i < 2; i++) {
        struct agent a;
        agent_start(&a, modes[i]);
        char why[160] = "";
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        assert_int_equal(qmpb_qga_set_time(a.path, 300, why, sizeof why), -1);
        double el = elapsed(&t0);
        pthread_join(a.t, NULL);     /* our close ended its recv */
        close(a.lfd);
        unlink(a.path);
        assert_non_null(strstr(why, whys[i]));
        assert_true(el >= 0.29 && el < 2.0);
    }
    char why[160] = "";
    assert_int_equal(qmpb_qga_set_time("/nonexistent/qga.sock", 300, why, sizeof why), -1);
    assert_non_null(strstr(why, "connect /nonexistent/qga.sock"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scripts),
        cmocka_unit_test(test_handoff_passes_fd),
        cmocka_unit_test(test_query_status),
        cmocka_unit_test(test_error_is_refusal),
        cmocka_unit_test(test_silent_times_out),
        cmocka_unit_test(test_no_monitor),
        cmocka_unit_test(test_qga_set_time),
        cmocka_unit_test(test_qga_set_time_error),
        cmocka_unit_test(test_qga_set_time_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
