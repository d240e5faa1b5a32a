/* tests/unit/test_sandbox.c — the network process's seccomp filter
 * (gateway/sandbox.c): a forked child applies the same function the
 * daemon applies, then tries one thing; forbidden syscalls kill it with
 * SIGSYS, the relay's own syscalls go through. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "gateway/gateway.h"

enum what { W_NOTHING, W_EXECVE, W_PTRACE, W_OPEN, W_BIND, W_FORK, W_RELAY };

/* Fork; the child applies the filter (unless filter is 0), does `what`, and
 * exits 0.  Returns the child's wait status. */
static int run_child(enum what what, int filter)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char err[256];
        if (filter && gateway_sandbox(err, sizeof err) != 0) {
            fprintf(stderr, "sandbox: %s\n", err);
            _exit(90);
        }
        switch (what) {
        case W_NOTHING:
            break;
        case W_EXECVE: {
            char *argv[] = { (char *)"/bin/true", NULL };
            execve("/bin/true", argv, (char *[]){ NULL });
            _exit(91);   /* not reached: killed, or (no filter) /bin/true exits 0 */
        }
        case W_PTRACE:
            ptrace(PTRACE_TRACEME, 0, NULL, NULL);
            break;
        case W_OPEN:          /* read-write (or truncating) opens are forbidden */
            if (open("/dev/null", O_RDWR) < 0)
                _exit(92);
            break;
        case W_BIND: {
            int s = socket(AF_INET, SOCK_STREAM, 0);
            struct sockaddr_in a = { .sin_family = AF_INET };
            if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) != 0)
                _exit(93);
            break;
        }
        case W_FORK:
            if (syscall(SYS_fork) == 0)
                _exit(0);
            break;
        case W_RELAY: {
            /* what a relay does: socketpair, write, read, malloc, close */
            int sv[2];
            char b[4];
            if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0 ||
                send(sv[0], "ping", 4, MSG_NOSIGNAL) != 4 || recv(sv[1], b, 4, 0) != 4)
                _exit(94);
            void *big = malloc(8 << 20);   /* mmap'd */
            if (!big)
                _exit(95);
            memset(big, 1, 8 << 20);
            free(big);
            close(sv[0]);
            close(sv[1]);
            break;
        }
        }
        _exit(0);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return st;
}

static void assert_killed_by_sigsys(int st)
{
    if (!WIFSIGNALED(st))
        fail_msg("child was not killed: exit status %d", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    assert_int_equal(WTERMSIG(st), SIGSYS);
}

static void assert_exit0(int st)
{
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("child did not exit 0: %s %d", WIFEXITED(st) ? "exit" : "signal",
                 WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
}

/* Without the filter every one of these works: the kills below are the
 * filter's doing. */
static void test_control_without_filter(void **state)
{
    (void)state;
    assert_exit0(run_child(W_EXECVE, 0));
    assert_exit0(run_child(W_OPEN, 0));
    assert_exit0(run_child(W_BIND, 0));
    assert_exit0(run_child(W_FORK, 0));
}

static void test_forbidden_syscalls_kill(void **state)
{
    (void)state;
    assert_killed_by_sigsys(run_child(W_EXECVE, 1));
    assert_killed_by_sigsys(run_child(W_PTRACE, 1));
    assert_killed_by_sigsys(run_child(W_OPEN, 1));
    assert_killed_by_sigsys(run_child(W_BIND, 1));
    assert_killed_by_sigsys(run_child(W_FORK, 1));
}

static void test_relay_syscalls_pass(void **state)
{
    (void)state;
    assert_exit0(run_child(W_NOTHING, 1));
    assert_exit0(run_child(W_RELAY, 1));
}

/* NO_NEW_PRIVS is set too (seen from inside the child). */
static void test_no_new_privs(void **state)
{
    (void)state;
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char err[256];
        if (gateway_sandbox(err, sizeof err) != 0)
            _exit(90);
        _exit(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1 ? 0 : 1);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    /* prctl is not on the list: asking kills, which proves the filter is on;
     * either way the child must not have exited 1 */
    assert_true((WIFEXITED(st) && WEXITSTATUS(st) == 0) ||
                (WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_control_without_filter),
        cmocka_unit_test(test_forbidden_syscalls_kill),
        cmocka_unit_test(test_relay_syscalls_pass),
        cmocka_unit_test(test_no_new_privs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
