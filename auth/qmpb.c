/* auth/qmpb.c — see qmpb.h. */
#include "auth/qmpb.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static const char *const op_names[QMPB_OP_MAX] = {
    [QMPB_VNC_HANDOFF] = "vnc-handoff",
    [QMPB_SPICE_TICKET] = "spice-ticket",
    [QMPB_QUERY_STATUS] = "query-status",
    [QMPB_STOP] = "stop",
    [QMPB_CONT] = "cont",
    [QMPB_POWERDOWN] = "system_powerdown",
    [QMPB_RESET] = "system_reset",
};

const char *qmpb_op_name(unsigned op) { return op > 0 && op < QMPB_OP_MAX ? op_names[op] : NULL; }

bool qmpb_op_is_power(unsigned op) { return op >= QMPB_STOP && op <= QMPB_RESET; }

bool qmpb_op_wants_fd(unsigned op) { return op == QMPB_VNC_HANDOFF; }

static bool is_ticket(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
            return false;
    return n == QMPB_TICKET_LEN;
}

int qmpb_script(unsigned op, uint64_t id, const char *arg, struct qmp_cmd *cmds,
                char *why, size_t whylen)
{
    memset(cmds, 0, QMP_RUN_MAX * sizeof *cmds);
    switch (op) {
    case QMPB_VNC_HANDOFF:
        snprintf(cmds[0].json, sizeof cmds[0].json,
                 "{\"execute\":\"getfd\",\"arguments\":{\"fdname\":\"vmgate-%llu\"}}\n",
                 (unsigned long long)id);
        cmds[0].pass_fd = true;
        snprintf(cmds[1].json, sizeof cmds[1].json,
                 "{\"execute\":\"add_client\",\"arguments\":{\"protocol\":\"vnc\","
                 "\"fdname\":\"vmgate-%llu\",\"skipauth\":true}}\n", (unsigned long long)id);
        return 2;
    case QMPB_SPICE_TICKET:
        if (!arg || !is_ticket(arg)) {
            snprintf(why, whylen, "a SPICE ticket must be %d lower-case hex digits",
                     QMPB_TICKET_LEN);
            return -1;
        }
        snprintf(cmds[0].json, sizeof cmds[0].json,
                 "{\"execute\":\"set_password\",\"arguments\":{\"protocol\":\"spice\","
                 "\"password\":\"%s\"}}\n", arg);
        snprintf(cmds[1].json, sizeof cmds[1].json,
                 "{\"execute\":\"expire_password\",\"arguments\":{\"protocol\":"
                 "\"spice\",\"time\":\"never\"}}\n");
        return 2;
    case QMPB_QUERY_STATUS:
        snprintf(cmds[0].json, sizeof cmds[0].json, "{\"execute\":\"query-status\"}\n");
        return 1;
    case QMPB_STOP:
    case QMPB_CONT:
    case QMPB_POWERDOWN:
    case QMPB_RESET:
        /* the op's name is QEMU's command name: a fixed string of ours */
        snprintf(cmds[0].json, sizeof cmds[0].json, "{\"execute\":\"%s\"}\n", op_names[op]);
        return 1;
    default:
        snprintf(why, whylen, "unknown QMP operation %u", op);
        return -1;
    }
}

static long ms_left(const struct timespec *end)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (end->tv_sec - now.tv_sec) * 1000 + (end->tv_nsec - now.tv_nsec) / 1000000;
}

/* Wait until fd is ready for ev before the deadline: 0, or -1 (why set). */
static int wait_fd(int fd, short ev, const struct timespec *end, char *why, size_t whylen)
{
    for (;;) {
        long left = ms_left(end);
        if (left <= 0) {
            snprintf(why, whylen, "QMP timed out");
            return -1;
        }
        struct pollfd p = { .fd = fd, .events = ev };
        int r = poll(&p, 1, (int)left);
        if (r > 0)
            return 0;
        if (r < 0 && errno != EINTR) {
            snprintf(why, whylen, "poll: %s", strerror(errno));
            return -1;
        }
    }
}

static int send_cmd(int fd, const struct qmp_cmd *c, int passfd, const struct timespec *end,
                    char *why, size_t whylen)
{
    size_t len = strlen(c->json), off = 0;
    bool fd_sent = !(c->pass_fd && passfd >= 0);
    while (off < len) {
        if (wait_fd(fd, POLLOUT, end, why, whylen) != 0)
            return -1;
        struct iovec iov = { (char *)c->json + off, len - off };
        char cbuf[CMSG_SPACE(sizeof(int))];
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
        if (!fd_sent) {
            memset(cbuf, 0, sizeof cbuf);
            mh.msg_control = cbuf;
            mh.msg_controllen = sizeof cbuf;
            struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
            cm->cmsg_level = SOL_SOCKET;
            cm->cmsg_type = SCM_RIGHTS;
            cm->cmsg_len = CMSG_LEN(sizeof(int));
            memcpy(CMSG_DATA(cm), &passfd, sizeof passfd);
        }
        ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                continue;
            snprintf(why, whylen, "QMP write: %s", strerror(errno));
            return -1;
        }
        fd_sent = true;
        off += (size_t)n;
    }
    return 0;
}

/* The "status" of a query-status answer ({"return": {"status": "running", ...}}). */
static void status_word(const char *line, size_t n, char *out, size_t outsz)
{
    const char *k = memmem(line, n, "\"status\"", 8);
    out[0] = '\0';
    if (!k)
        return;
    const char *q = memchr(k + 8, '"', (size_t)(line + n - (k + 8)));
    size_t o = 0;
    if (q)
        for (q++; q < line + n && *q != '"' && o + 1 < outsz; q++)
            out[o++] = (*q >= 'a' && *q <= 'z') || *q == '-' ? *q : '?';
    out[o] = '\0';
}

int qmpb_run(const char *path, const struct qmp_cmd *cmds, size_t n, int passfd, int timeout_ms,
             char *out, size_t outsz, bool *refused, char *why, size_t whylen)
{
    *refused = false;
    if (out && outsz)
        out[0] = '\0';
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof sun.sun_path) {
        snprintf(why, whylen, "QMP path too long");
        return -1;
    }
    memcpy(sun.sun_path, path, strlen(path) + 1);
    struct timespec end;
    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_sec += timeout_ms / 1000;
    end.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (end.tv_nsec >= 1000000000L) {
        end.tv_sec++;
        end.tv_nsec -= 1000000000L;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0 || (connect(fd, (struct sockaddr *)&sun, sizeof sun) != 0 && errno != EINPROGRESS)) {
        snprintf(why, whylen, "connect %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    static struct qmp_run run;
    if (qmp_run_init(&run, cmds, n) != 0) {
        close(fd);
        snprintf(why, whylen, "script too long");
        return -1;
    }
    static char rx[QMP_LINE_MAX + 1];
    size_t have = 0;
    int rc = -1;
    for (;;) {
        size_t used;
        const struct qmp_cmd *send;
        size_t before = run.answered;
        enum qmp_step st = qmp_run_feed(&run, rx, have, &used, &send);
        /* the answer that completed the last command is the one to read */
        if (out && outsz && run.answered > before && run.answered == n + 1 && used <= have)
            status_word(rx, used, out, outsz);
        memmove(rx, rx + used, have - used);
        have -= used;
        if (st == QMP_DONE) {
            rc = 0;
            break;
        }
        if (st == QMP_FAIL) {
            *refused = run.refused;
            snprintf(why, whylen, "%s", run.err);
            break;
        }
        if (st == QMP_SEND) {
            if (send_cmd(fd, send, passfd, &end, why, whylen) != 0)
                break;
            continue;
        }
        if (wait_fd(fd, POLLIN, &end, why, whylen) != 0)
            break;
        ssize_t r = recv(fd, rx + have, sizeof rx - have, MSG_DONTWAIT);
        if (r == 0) {
            snprintf(why, whylen, "QMP socket closed");
            break;
        }
        if (r < 0 && errno != EAGAIN && errno != EINTR) {
            snprintf(why, whylen, "QMP read: %s", strerror(errno));
            break;
        }
        if (r > 0)
            have += (size_t)r;
    }
    qmp_run_wipe(&run);
    explicit_bzero(rx, sizeof rx);
    close(fd);
    return rc;
}

/* Wait for a line from the agent that answers guest-sync with token:
 * {"return": TOKEN}.  Earlier lines (a previous client's leftovers) are
 * skipped, as guest-sync is meant to be used.  0, or -1 with why. */
static int qga_synced(int fd, unsigned long token, const struct timespec *end, char *why,
                      size_t whylen)
{
    char rx[1024], want[32];
    size_t have = 0;
    snprintf(want, sizeof want, "%lu", token);
    for (;;) {
        char *nl;
        while ((nl = memchr(rx, '\n', have))) {
            size_t l = (size_t)(nl - rx) + 1;
            if (memmem(rx, l, "\"return\"", 8) && memmem(rx, l, want, strlen(want)))
                return 0;
            memmove(rx, rx + l, have - l);
            have -= l;
        }
        if (have == sizeof rx)
            have = 0;                       /* an over-long line: not ours */
        if (wait_fd(fd, POLLIN, end, why, whylen) != 0) {
            snprintf(why, whylen, "the guest agent does not answer (is it running in the guest?)");
            return -1;
        }
        ssize_t r = recv(fd, rx + have, sizeof rx - have, MSG_DONTWAIT);
        if (r == 0) {
            snprintf(why, whylen, "guest agent socket closed");
            return -1;
        }
        if (r < 0 && errno != EAGAIN && errno != EINTR) {
            snprintf(why, whylen, "guest agent read: %s", strerror(errno));
            return -1;
        }
        if (r > 0)
            have += (size_t)r;
    }
}

/* Connect to the guest agent at path and synchronize with it
 * (guest-sync-delimited with a fresh token), all within *end.  Returns the
 * socket, or -1 with why. */
static int qga_open(const char *path, const struct timespec *end, char *why, size_t whylen)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof sun.sun_path) {
        snprintf(why, whylen, "guest agent path too long");
        return -1;
    }
    memcpy(sun.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0 || (connect(fd, (struct sockaddr *)&sun, sizeof sun) != 0 && errno != EINPROGRESS)) {
        snprintf(why, whylen, "connect %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    unsigned long token = ((unsigned long)now.tv_nsec ^ (unsigned long)getpid() << 8) % 1000000000ul;
    /* 0xff first: the agent discards a half line a previous client left */
    struct qmp_cmd c;
    memset(&c, 0, sizeof c);
    snprintf(c.json, sizeof c.json,
             "\xff{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":%lu}}\n", token);
    if (send_cmd(fd, &c, -1, end, why, whylen) != 0 || qga_synced(fd, token, end, why, whylen) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* The monotonic deadline timeout_ms from now. */
static struct timespec deadline_in(int timeout_ms)
{
    struct timespec end;
    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_sec += timeout_ms / 1000;
    end.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (end.tv_nsec >= 1000000000L) {
        end.tv_sec++;
        end.tv_nsec -= 1000000000L;
    }
    return end;
}

int qmpb_qga_reboot(const char *path, int timeout_ms, char *why, size_t whylen)
{
    struct timespec end = deadline_in(timeout_ms);
    int fd = qga_open(path, &end, why, whylen);
    if (fd < 0)
        return -1;
    /* guest-shutdown answers nothing on success: delivered is done */
    struct qmp_cmd c;
    memset(&c, 0, sizeof c);
    snprintf(c.json, sizeof c.json,
             "{\"execute\":\"guest-shutdown\",\"arguments\":{\"mode\":\"reboot\"}}\n");
    int rc = send_cmd(fd, &c, -1, &end, why, whylen);
    close(fd);
    return rc;
}

int qmpb_qga_set_time(const char *path, int timeout_ms, char *why, size_t whylen)
{
    struct timespec end = deadline_in(timeout_ms);
    int fd = qga_open(path, &end, why, whylen);
    if (fd < 0)
        return -1;
    /* the host's clock now (after the sync, so the agent is there to take it
     * at once): nanoseconds since the Epoch, UTC, as guest-set-time wants */
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    long long ns = (long long)now.tv_sec * 1000000000LL + now.tv_nsec;
    struct qmp_cmd c;
    memset(&c, 0, sizeof c);
    snprintf(c.json, sizeof c.json,
             "{\"execute\":\"guest-set-time\",\"arguments\":{\"time\":%lld}}\n", ns);
    int rc = -1;
    if (send_cmd(fd, &c, -1, &end, why, whylen) == 0) {
        /* the answer: {"return": {}} or {"error": {...}}, one line */
        char rx[512];
        size_t have = 0;
        for (;;) {
            char *nl = memchr(rx, '\n', have);
            if (nl) {
                size_t l = (size_t)(nl - rx);
                if (memmem(rx, l, "\"return\"", 8)) {
                    rc = 0;
                } else {
                    /* the agent's own words, bounded and without control bytes */
                    const char *d = memmem(rx, l, "\"desc\"", 6);
                    size_t off = d ? (size_t)(d - rx) : 0;
                    int k = snprintf(why, whylen, "guest-set-time refused: ");
                    for (size_t i = off; i < l && k > 0 && (size_t)k + 1 < whylen; i++)
                        why[k++] = rx[i] >= 0x20 && rx[i] < 0x7f ? rx[i] : '?';
                    if (k > 0 && (size_t)k < whylen)
                        why[k] = '\0';
                }
                break;
            }
            if (have == sizeof rx) {
                snprintf(why, whylen, "guest agent answer too long");
                break;
            }
            if (wait_fd(fd, POLLIN, &end, why, whylen) != 0) {
                snprintf(why, whylen, "the guest agent did not answer guest-set-time");
                break;
            }
            ssize_t r = recv(fd, rx + have, sizeof rx - have, MSG_DONTWAIT);
            if (r == 0) {
                snprintf(why, whylen, "guest agent socket closed");
                break;
            }
            if (r < 0 && errno != EAGAIN && errno != EINTR) {
                snprintf(why, whylen, "guest agent read: %s", strerror(errno));
                break;
            }
            if (r > 0)
                have += (size_t)r;
        }
    }
    close(fd);
    return rc;
}
