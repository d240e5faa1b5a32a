/* gateway/sandbox.c — the network process's seccomp allow-list (see
 * gateway.h).
 *
 * The list is what a network process was seen to call, under strace -ff,
 * from the moment the filter goes on: VNC and SPICE sessions (unix, TCP
 * and QMP hand-off backends), the clipboard in both directions, logins
 * through the auth helper, SIGHUP reloads (the certificate comes from the
 * helper as a datagram), processes = 2 (a replacement network process is
 * forked by the supervisor, which has no filter), malloc_trim, the libev
 * timers and signals, logging to stderr.  Everything else kills the
 * process (SCMP_ACT_KILL_PROCESS): a network process that tries to exec a
 * shell, ptrace, bind a socket or open a file for writing other than
 * append-only is an exploited one.  The
 * supervisor restarts a network process that dies. */
#include "gateway/gateway.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#include <seccomp.h>

/* Syscalls allowed with any arguments: what strace showed after the
 * filter point (tests t10 t12 t19 t21 t50 t61 under strace -ff), plus the
 * error paths no test reaches (abort, the helper not exiting), marked. */
static const char *const sandbox_allow[] = {
    /* relay I/O: sockets, TLS, the auth helper's datagrams, stderr */
    "read", "write", "recvfrom", "sendto", "sendmsg", "close", "shutdown", "accept4",
    "getsockopt", "setsockopt", "fcntl",
    /* a config reload: the helper's answer carries the listening sockets
     * it bound for new VMs (SCM_RIGHTS needs recvmsg; binding stays out) */
    "recvmsg",
    /* backends: connect to QEMU's VNC/SPICE/QMP sockets; the QMP hand-off
     * passes one end of a socketpair to QEMU (sendmsg SCM_RIGHTS) */
    "socket", "connect", "socketpair",
    /* libev: epoll and its wake-up eventfd, re-made after fork (processes
     * > 1: the first ev_run of a forked loop); signals; the helper's
     * SIGCHLD (ev_child: wait4) */
    "epoll_wait", "epoll_ctl", "epoll_create1", "eventfd2", "dup2", "rt_sigreturn", "wait4",
    /* memory: malloc, realloc of big buffers, malloc_trim (madvise) */
    "brk", "mmap", "munmap", "mremap", "madvise",
    /* time (clock_gettime is the vDSO's fallback), the helper reap's usleep
     * and its restart after a signal, randomness (OpenSSL, SPICE tickets),
     * log lines carry the pid, futex inside libraries */
    "clock_gettime", "clock_nanosleep", "restart_syscall", "getrandom", "getpid", "futex",
    /* sd_notify (processes = 1: the main process is the network process)
     * puts our credentials in its datagram */
    "getuid", "geteuid", "getgid", "getegid",
    /* the browser console's static files (realpath, then fstat of the
     * opened file), the audit file's fstat/fchown on reopen, the control
     * socket's getpwuid_r (NSS reads /etc/passwd, may map a module); files
     * themselves only through the two openat rules below */
    "fstat", "newfstatat", "readlink", "lseek", "fchown", "mprotect", "getdents64",
    /* leaving: exit, SIGKILL to a helper that does not exit; abort()
     * (error paths) */
    "exit", "exit_group", "kill", "tgkill", "gettid", "rt_sigprocmask", "rt_sigaction",
};

int gateway_sandbox(char *err, size_t errlen)
{
    /* no set-uid gain through exec from here on (the filter needs it when
     * not root, and it is right on its own) */
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        snprintf(err, errlen, "PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
        return -1;
    }
    scmp_filter_ctx f = seccomp_init(SCMP_ACT_KILL_PROCESS);
    if (!f) {
        snprintf(err, errlen, "seccomp_init failed");
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < sizeof sandbox_allow / sizeof sandbox_allow[0]; i++) {
        int nr = seccomp_syscall_resolve_name(sandbox_allow[i]);
        if (nr == __NR_SCMP_ERROR)
            continue;            /* not on this architecture (e.g. "time") */
        rc = seccomp_rule_add(f, SCMP_ACT_ALLOW, nr, 0);
        if (rc < 0) {
            snprintf(err, errlen, "seccomp_rule_add(%s): %s", sandbox_allow[i], strerror(-rc));
            goto out;
        }
    }
    /* openat: read-only without creating (noVNC's files, NSS), or append-only
     * (the audit file reopened for logrotate).  Never O_TRUNC, never a
     * read-write or a plain write-at-offset open. */
    rc = seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(openat), 1,
                          SCMP_A2(SCMP_CMP_MASKED_EQ, O_ACCMODE | O_CREAT | O_TRUNC | O_APPEND,
                                  O_RDONLY));
    if (rc == 0)
        rc = seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(openat), 1,
                              SCMP_A2(SCMP_CMP_MASKED_EQ, O_ACCMODE | O_TRUNC | O_APPEND,
                                      O_WRONLY | O_APPEND));
    if (rc < 0) {
        snprintf(err, errlen, "seccomp_rule_add(openat): %s", strerror(-rc));
        goto out;
    }
    rc = seccomp_load(f);
    if (rc < 0)
        snprintf(err, errlen, "seccomp_load: %s", strerror(-rc));
out:
    seccomp_release(f);
    return rc < 0 ? -1 : 0;
}
