/* auth/helper.c — the privileged auth helper process.
 *
 * One process, forked before the network process drops privileges, reads
 * AUTHP_REQ_LOGIN datagrams from its ends of SOCK_SEQPACKET socketpairs (one
 * per network process: `processes = N` gives N).
 * Each request is checked in a short-lived worker process forked for it
 * (at most cfg->auth_workers at once; the rest wait in a bounded FIFO), so
 * a slow PAM module delays only its own login.  The worker answers on the
 * same socket itself (datagrams are atomic, so answers never interleave)
 * and exits with WORKER_SENT + the result once it has.  The helper answers
 * on its own only when no worker will: malformed request, queue full
 * ("overloaded"), worker killed after the timeout ("timeout") or dead
 * without answering.
 *
 * AUTHP_REQ_CERT (SIGHUP in a network process or the supervisor) goes the
 * same way: a worker reads the cert = and key = files with the helper's
 * privileges (the network side, after the privilege drop, cannot read a
 * 0600 root key) and sends them back in one bounded datagram.  That gives a
 * network process nothing it does not already hold: the key is in its TLS
 * context from the start.
 *
 * The helper loop is poll() on the sockets and a SIGCHLD self-pipe.  It
 * ends when every socket is at EOF (the network side is gone), killing its
 * workers. */
#include "auth/auth.h"
#include "auth/fwguard.h"
#include "auth/auth_int.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define OUTQ_MAX   512u   /* helper's own answers waiting for room */
#define RECV_BURST 64      /* datagrams read per wakeup */

static unsigned g_timeout_ms = AUTH_WORKER_TIMEOUT_MS;
static unsigned g_queue_max = AUTH_QUEUE_MAX;

void auth_helper_set_limits(unsigned timeout_ms, unsigned queue_max)
{
    if (timeout_ms)
        g_timeout_ms = timeout_ms;
    if (queue_max)
        g_queue_max = queue_max;
}

/* A worker that sent its answer exits with WORKER_SENT + enum authp_result. */
#define WORKER_SENT 10

struct worker {
    pid_t pid;
    uint32_t id;
    uint64_t deadline;   /* CLOCK_MONOTONIC ms */
    bool killed;         /* by us, after the deadline */
    char rhost[AUTHP_RHOST_MAX + 1];   /* for failure accounting */
    unsigned sock;       /* which socket the request came on */
    bool cert;           /* an AUTHP_REQ_CERT, not a login */
};

/* The helper's own answers: a login answer or a certificate failure. */
#define OUTMSG_MAX (AUTHP_RESP_MAX > AUTHP_CERT_ERR_MAX ? AUTHP_RESP_MAX : AUTHP_CERT_ERR_MAX)
struct outmsg {
    unsigned sock;
    size_t len;
    uint8_t buf[OUTMSG_MAX];
};

/* A request waiting for a worker (holds a password). */
struct queued {
    struct authp_login_req req;      /* for a cert request: only req.id */
    unsigned sock;                   /* the socket it came on */
    bool cert;
};

struct helper {
    const struct cfg *cfg;
    const int *fds;                  /* one socket per network process */
    bool closed[AUTH_SOCKETS_MAX];   /* ... at EOF or failed */
    unsigned nfds, n_open;           /* n_open == 0: every network process is gone */
    pid_t self;
    struct worker *workers;
    unsigned n_workers, max_workers;
    struct queued *queue;            /* ring of waiting requests */
    unsigned qhead, qlen, qmax;
    struct outmsg *outq;             /* ring of the helper's own answers */
    unsigned ohead, olen;
    struct fwguard *guard;           /* bans and table upkeep (root + [firewall]) */
};

/* Write end of the SIGCHLD self-pipe; -1 outside the helper. */
static int g_sigchld_wfd = -1;
static int g_sigchld_rfd = -1;

static void on_sigchld(int sig)
{
    (void)sig;
    int e = errno;
    if (g_sigchld_wfd >= 0) {
        ssize_t w = write(g_sigchld_wfd, "c", 1);
        (void)w;
    }
    errno = e;
}

uint64_t auth_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Socket sock is gone (EOF or a send error): stop using it; the helper
 * ends when the last one goes. */
static void sock_closed(struct helper *h, unsigned sock)
{
    if (!h->closed[sock]) {
        h->closed[sock] = true;
        h->n_open--;
    }
}

/* Send what is queued in the helper's own answer ring, without blocking.
 * An answer for a socket that is gone is dropped. */
static void outq_flush(struct helper *h)
{
    while (h->olen > 0) {
        struct outmsg *m = &h->outq[h->ohead];
        if (!h->closed[m->sock]) {
            ssize_t n = send(h->fds[m->sock], m->buf, m->len, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)
                    return;
                log_warn("cannot answer network process %u: %s", m->sock + 1, strerror(errno));
                sock_closed(h, m->sock);
            }
        }
        h->ohead = (h->ohead + 1) % OUTQ_MAX;
        h->olen--;
    }
}

/* Answer request id with result/detail from the helper itself (not a
 * worker).  Queued if the socket is full; dropped with a warning if even
 * the queue is full (the network side then times the login out). */
static void helper_answer_as(struct helper *h, unsigned sock, uint32_t id,
                             enum authp_result result, const char *detail, bool cert)
{
    if (h->olen >= OUTQ_MAX) {
        log_warn("answer queue full, dropping answer to request %u", id);
        return;
    }
    struct outmsg *m = &h->outq[(h->ohead + h->olen) % OUTQ_MAX];
    int n;
    if (cert) {
        struct authp_cert_resp cr = { .id = id, .result = AUTHP_ERROR };
        snprintf(cr.detail, sizeof cr.detail, "%s", detail);
        n = authp_encode_cert_resp(&cr, m->buf, sizeof m->buf);
    } else {
        struct authp_login_resp resp = { .id = id, .result = (uint8_t)result };
        snprintf(resp.detail, sizeof resp.detail, "%s", detail);
        n = authp_encode_login_resp(&resp, m->buf, sizeof m->buf);
    }
    if (n < 0) {
        log_err("cannot encode answer to request %u", id);
        return;
    }
    m->len = (size_t)n;
    m->sock = sock;
    h->olen++;
    outq_flush(h);
}

static void helper_answer(struct helper *h, unsigned sock, uint32_t id,
                          enum authp_result result, const char *detail)
{
    helper_answer_as(h, sock, id, result, detail, false);
}

/* Read all of path (at most max bytes) into buf.  Returns the length, or -1
 * with why set ("FILE: reason"). */
static ssize_t read_bounded(const char *path, uint8_t *buf, size_t max, char *why, size_t whylen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        snprintf(why, whylen, "%s: %s", path, strerror(errno));
        return -1;
    }
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, max + 1 - n);   /* one more: to see "too long" */
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(why, whylen, "%s: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > max) {
            snprintf(why, whylen, "%s: longer than %zu bytes", path, max);
            close(fd);
            return -1;
        }
    }
    close(fd);
    if (n == 0) {
        snprintf(why, whylen, "%s: empty file", path);
        return -1;
    }
    return (ssize_t)n;
}

/* What a certificate worker does: read cfg->cert and cfg->key with the
 * helper's privileges, send them as one AUTHP_RESP_CERT (or the reason it
 * could not), wipe every copy of the key and exit WORKER_SENT + result.
 * The texts are checked by the receiver, which builds its TLS context
 * from them; here they are only bounded. */
static void cert_worker_run(struct helper *h, uint32_t id, unsigned sock)
{
    uint8_t *chain = malloc(AUTHP_CERT_CHAIN_MAX + 1);
    uint8_t *key = malloc(AUTHP_CERT_KEY_MAX + 1);
    uint8_t *msg = malloc(AUTHP_CERT_RESP_MAX);
    struct authp_cert_resp resp = { .id = id, .result = AUTHP_ERROR };
    if (!chain || !key || !msg) {
        snprintf(resp.detail, sizeof resp.detail, "out of memory");
    } else {
        ssize_t cl = read_bounded(h->cfg->cert, chain, AUTHP_CERT_CHAIN_MAX, resp.detail,
                                  sizeof resp.detail);
        ssize_t kl = cl < 0 ? -1 : read_bounded(h->cfg->key, key, AUTHP_CERT_KEY_MAX,
                                                resp.detail, sizeof resp.detail);
        if (cl > 0 && kl > 0) {
            resp.result = AUTHP_OK;
            resp.chain = chain;
            resp.chain_len = (size_t)cl;
            resp.key = key;
            resp.key_len = (size_t)kl;
        }
    }
    int n = -1;
    if (msg) {
        n = authp_encode_cert_resp(&resp, msg, AUTHP_CERT_RESP_MAX);
        if (n < 0 && resp.result == AUTHP_OK) {
            /* cannot happen (both texts are bounded); say so rather than hang */
            struct authp_cert_resp e = { .id = id, .result = AUTHP_ERROR };
            snprintf(e.detail, sizeof e.detail, "cannot encode the certificate");
            resp.result = AUTHP_ERROR;
            n = authp_encode_cert_resp(&e, msg, AUTHP_CERT_RESP_MAX);
        }
    }
    if (key)
        explicit_bzero(key, AUTHP_CERT_KEY_MAX + 1);
    if (resp.result != AUTHP_OK)
        log_warn("certificate request %u: %s", id, resp.detail);
    else
        log_debug("certificate request %u: sending %s and %s", id, h->cfg->cert, h->cfg->key);
    int rc = 1;
    if (n > 0) {
        for (;;) {
            ssize_t w = send(h->fds[sock], msg, (size_t)n, MSG_NOSIGNAL);   /* blocking */
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0)
                log_warn("certificate request %u: send: %s", id, strerror(errno));
            rc = w == n ? WORKER_SENT + resp.result : 1;
            break;
        }
        explicit_bzero(msg, (size_t)n);
    }
    _exit(rc);
}

/* What a worker does: check, answer, exit.  Never returns.  It first drops
 * what it inherited and does not need: the other requests' passwords, the
 * self-pipe and the SIGCHLD handler (PAM modules may fork and wait). */
static void worker_run(struct helper *h, struct authp_login_req *req, unsigned sock, bool cert)
{
    (void)setpgid(0, 0);
    (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
    /* A password hash (yescrypt) or a PAM stack is tens of milliseconds of
     * CPU; at a lower priority a login storm does not take the cores from
     * the relay of running sessions. */
    (void)setpriority(PRIO_PROCESS, 0, 10);
    if (getppid() != h->self)
        _exit(2);
    signal(SIGCHLD, SIG_DFL);
    if (g_sigchld_rfd >= 0)
        close(g_sigchld_rfd);
    if (g_sigchld_wfd >= 0)
        close(g_sigchld_wfd);
    g_sigchld_rfd = g_sigchld_wfd = -1;
    explicit_bzero(h->queue, h->qmax * sizeof *h->queue);
    for (unsigned i = 0; i < h->nfds; i++)
        if (i != sock)
            close(h->fds[i]);          /* answer only the process that asked */
    if (cert)
        cert_worker_run(h, req->id, sock);

    struct authp_login_resp resp = { .id = req->id };
    resp.result = (uint8_t)auth_check(h->cfg, req, resp.detail, sizeof resp.detail);
    if (resp.result != AUTHP_OK || log_get_level() >= LOG_LVL_DEBUG) {
        char u[64], v[AUTHP_VM_MAX + 1], r[AUTHP_RHOST_MAX + 1];
        log_safe(u, sizeof u, req->user, strlen(req->user));
        log_safe(v, sizeof v, req->vm, strlen(req->vm));
        log_safe(r, sizeof r, req->rhost, strlen(req->rhost));
        if (resp.result == AUTHP_ERROR)
            log_warn("request %u user %s vm %s from %s: %s (%s)", req->id, u, v, r,
                     authp_result_name(resp.result), resp.detail);
        else
            log_debug("request %u user %s vm %s from %s: %s (%s)", req->id, u, v, r,
                      authp_result_name(resp.result), resp.detail);
    }
    explicit_bzero(req, sizeof *req);

    uint8_t buf[AUTHP_RESP_MAX];
    int n = authp_encode_login_resp(&resp, buf, sizeof buf);
    int rc = 1;
    if (n > 0) {
        for (;;) {
            ssize_t w = send(h->fds[sock], buf, (size_t)n, MSG_NOSIGNAL);   /* blocking */
            if (w < 0 && errno == EINTR)
                continue;
            /* exit status WORKER_SENT + result: the helper learns the
             * outcome for failure accounting without another channel */
            rc = w == n ? WORKER_SENT + resp.result : 1;
            break;
        }
    }
    _exit(rc);
}

/* Fork a worker for req, a login or (cert) a certificate request (the
 * caller wipes its copy afterwards). */
static void spawn_worker(struct helper *h, struct authp_login_req *req, unsigned sock, bool cert)
{
    pid_t pid = fork();
    if (pid < 0) {
        log_err("fork: %s", strerror(errno));
        helper_answer_as(h, sock, req->id, AUTHP_ERROR, "cannot fork worker", cert);
        return;
    }
    if (pid == 0)
        worker_run(h, req, sock, cert);
    (void)setpgid(pid, pid);   /* also done in the child: whichever runs first */
    struct worker *w = &h->workers[h->n_workers++];
    w->pid = pid;
    w->id = req->id;
    w->deadline = auth_mono_ms() + g_timeout_ms;
    w->killed = false;
    w->sock = sock;
    w->cert = cert;
    snprintf(w->rhost, sizeof w->rhost, "%s", req->rhost);
}

/* Start workers for queued requests while there is room. */
static void dispatch(struct helper *h)
{
    while (h->qlen > 0 && h->n_workers < h->max_workers && h->n_open > 0) {
        struct queued *slot = &h->queue[h->qhead];
        struct queued q = *slot;
        explicit_bzero(slot, sizeof *slot);
        h->qhead = (h->qhead + 1) % h->qmax;
        h->qlen--;
        if (!h->closed[q.sock])        /* else whoever asked is gone */
            spawn_worker(h, &q.req, q.sock, q.cert);
        explicit_bzero(&q, sizeof q);
    }
}

/* Reap finished workers (by their pids, never waitpid(-1)).  A worker that
 * did not exit with WORKER_SENT + result did not answer, so the helper does. */
static void reap(struct helper *h)
{
    for (unsigned i = 0; i < h->n_workers;) {
        struct worker *w = &h->workers[i];
        int st;
        pid_t r = waitpid(w->pid, &st, WNOHANG);
        if (r == 0 || (r < 0 && errno == EINTR)) {
            i++;
            continue;
        }
        if (r == w->pid) {
            if (w->killed) {
                log_warn("request %u: worker %ld killed after %u ms", w->id, (long)w->pid,
                         g_timeout_ms);
                helper_answer_as(h, w->sock, w->id, AUTHP_ERROR, "timeout", w->cert);
            } else if (WIFEXITED(st) && WEXITSTATUS(st) >= WORKER_SENT &&
                       WEXITSTATUS(st) <= WORKER_SENT + AUTHP_ERROR) {
                if (!w->cert)        /* only logins count towards bans */
                    fwguard_result(h->guard, w->rhost,
                                   (enum authp_result)(WEXITSTATUS(st) - WORKER_SENT));
            } else {
                char why[64];
                if (WIFSIGNALED(st))
                    snprintf(why, sizeof why, "worker died (signal %d)", WTERMSIG(st));
                else
                    snprintf(why, sizeof why, "worker failed (exit %d)", WEXITSTATUS(st));
                log_warn("request %u: %s", w->id, why);
                helper_answer_as(h, w->sock, w->id, AUTHP_ERROR, why, w->cert);
            }
        }
        /* reaped, or not our child any more (ECHILD): forget it */
        h->workers[i] = h->workers[--h->n_workers];
    }
}

/* Kill workers past their deadline; they are answered when reaped.  Returns
 * the poll timeout until the next deadline (-1: none). */
static int enforce_deadlines(struct helper *h)
{
    uint64_t now = auth_mono_ms();
    int64_t next = -1;
    for (unsigned i = 0; i < h->n_workers; i++) {
        struct worker *w = &h->workers[i];
        if (w->killed)
            continue;
        if (now >= w->deadline) {
            kill(-w->pid, SIGKILL);
            kill(w->pid, SIGKILL);
            w->killed = true;
            continue;
        }
        int64_t left = (int64_t)(w->deadline - now);
        if (next < 0 || left < next)
            next = left;
    }
    if (next > 60000)
        next = 60000;
    return (int)next;
}

/* Read every datagram waiting on socket sock (up to RECV_BURST), decode,
 * queue.  Marks the socket closed when its network process is gone. */
static void read_requests(struct helper *h, unsigned sock)
{
    uint8_t buf[AUTHP_MAX_MSG + 1];
    for (int i = 0; i < RECV_BURST && !h->closed[sock]; i++) {
        struct iovec iov = { .iov_base = buf, .iov_len = sizeof buf };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
        ssize_t n = recvmsg(h->fds[sock], &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                log_err("reading requests: %s", strerror(errno));
                sock_closed(h, sock);
            }
            break;
        }
        if (n == 0) {
            sock_closed(h, sock);
            break;
        }
        struct queued q = { .cert = false };
        bool cert = !(mh.msg_flags & MSG_TRUNC) &&
                    authp_peek_type(buf, (size_t)n) == AUTHP_REQ_CERT;
        if (cert && authp_decode_cert_req(buf, (size_t)n, &q.req.id) == 0) {
            q.cert = true;
        } else if (cert || (mh.msg_flags & MSG_TRUNC) || (size_t)n > AUTHP_MAX_MSG ||
            authp_decode_login_req(buf, (size_t)n, &q.req) != 0) {
            uint32_t id;
            if (authp_peek_id(buf, (size_t)n, &id) == 0) {
                log_warn("malformed request %u (%zd bytes)", id, n);
                helper_answer(h, sock, id, AUTHP_ERROR, "malformed request");
            } else {
                log_warn("malformed request (%zd bytes), ignored", n);
            }
            explicit_bzero(buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf);
            continue;
        }
        explicit_bzero(buf, (size_t)n);
        q.sock = sock;
        if (h->qlen >= h->qmax) {
            log_warn("request %u: queue full (%u waiting), answering overloaded", q.req.id,
                     h->qlen);
            helper_answer_as(h, sock, q.req.id, AUTHP_ERROR, "overloaded", q.cert);
        } else {
            h->queue[(h->qhead + h->qlen) % h->qmax] = q;
            h->qlen++;
        }
        explicit_bzero(&q, sizeof q);
    }
}

/* Kill and reap every worker (the helper is going away). */
static void kill_workers(struct helper *h)
{
    for (unsigned i = 0; i < h->n_workers; i++) {
        kill(-h->workers[i].pid, SIGKILL);
        kill(h->workers[i].pid, SIGKILL);
    }
    for (unsigned i = 0; i < h->n_workers; i++) {
        while (waitpid(h->workers[i].pid, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    h->n_workers = 0;
}

/* The helper loop on fds[0..nfds-1] (in the child auth_helper_start_n
 * forked).  Returns 0 when every socket has reached EOF, -1 on an error. */
static int helper_main(const struct cfg *cfg, const int *fds, unsigned nfds)
{
    /* auth_workers is 1..64 in any parsed config */
    if (!cfg || cfg->auth_workers == 0 || !fds || nfds == 0 || nfds > AUTH_SOCKETS_MAX)
        return -1;
    for (unsigned i = 0; i < nfds; i++)
        if (fds[i] < 0)
            return -1;
    struct helper h = {
        .cfg = cfg,
        .fds = fds,
        .nfds = nfds,
        .n_open = nfds,
        .self = getpid(),
        .max_workers = cfg->auth_workers,
        .qmax = g_queue_max,
    };
    h.workers = calloc(h.max_workers, sizeof *h.workers);
    h.queue = calloc(h.qmax, sizeof *h.queue);
    h.outq = calloc(OUTQ_MAX, sizeof *h.outq);
    int pfd[2] = { -1, -1 };
    int rc = -1;
    struct sigaction sa = { .sa_handler = on_sigchld, .sa_flags = SA_RESTART | SA_NOCLDSTOP },
                     old_chld, old_pipe;
    sigemptyset(&sa.sa_mask);
    bool have_sig = false;
    if (!h.workers || !h.queue || !h.outq) {
        log_err("out of memory");
        goto out;
    }
    if (pipe2(pfd, O_CLOEXEC | O_NONBLOCK) < 0) {
        log_err("pipe: %s", strerror(errno));
        goto out;
    }
    g_sigchld_rfd = pfd[0];
    g_sigchld_wfd = pfd[1];
    struct sigaction ign = { .sa_handler = SIG_IGN };
    sigemptyset(&ign.sa_mask);
    sigaction(SIGPIPE, &ign, &old_pipe);
    sigaction(SIGCHLD, &sa, &old_chld);
    have_sig = true;
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_UNBLOCK, &chld, NULL);

    h.guard = fwguard_new(cfg);
    log_debug("helper ready: %u workers, queue %u, timeout %u ms", h.max_workers, h.qmax,
              g_timeout_ms);
    for (;;) {
        reap(&h);
        dispatch(&h);
        if (h.n_open == 0)
            break;
        int timeout = enforce_deadlines(&h);
        int gt = fwguard_timeout(h.guard);
        if (gt >= 0 && (timeout < 0 || gt < timeout))
            timeout = gt;
        /* [0, nfds): the sockets (POLLOUT on the one the oldest queued
         * answer waits for); then the self-pipe; then the firewall watch */
        struct pollfd p[AUTH_SOCKETS_MAX + 2];
        unsigned waiting = h.olen ? h.outq[h.ohead].sock : nfds;
        for (unsigned i = 0; i < nfds; i++) {
            p[i].fd = h.closed[i] ? -1 : fds[i];
            p[i].events = (short)(POLLIN | (i == waiting ? POLLOUT : 0));
            p[i].revents = 0;
        }
        p[nfds] = (struct pollfd){ .fd = pfd[0], .events = POLLIN };
        p[nfds + 1] = (struct pollfd){ .fd = fwguard_fd(h.guard), .events = POLLIN };
        int n = poll(p, nfds + (p[nfds + 1].fd >= 0 ? 2 : 1), timeout);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            log_err("poll: %s", strerror(errno));
            goto out;
        }
        if (p[nfds].revents) {
            char drain[64];
            while (read(pfd[0], drain, sizeof drain) > 0)
                ;
        }
        if (p[nfds + 1].revents || fwguard_timeout(h.guard) == 0)
            fwguard_tick(h.guard);
        for (unsigned i = 0; i < nfds; i++) {
            if (p[i].revents & POLLOUT)
                outq_flush(&h);
            if (p[i].revents & (POLLIN | POLLHUP | POLLERR))
                read_requests(&h, i);
            if (p[i].revents & POLLNVAL) {
                log_err("request socket %u closed under us", i + 1);
                goto out;
            }
        }
    }
    log_debug("network process gone, helper exits");
    rc = 0;
out:
    kill_workers(&h);
    fwguard_free(h.guard);
    if (have_sig) {
        sigaction(SIGCHLD, &old_chld, NULL);
        sigaction(SIGPIPE, &old_pipe, NULL);
    }
    g_sigchld_rfd = g_sigchld_wfd = -1;
    if (pfd[0] >= 0)
        close(pfd[0]);
    if (pfd[1] >= 0)
        close(pfd[1]);
    if (h.queue)
        explicit_bzero(h.queue, h.qmax * sizeof *h.queue);
    free(h.queue);
    free(h.workers);
    free(h.outq);
    return rc;
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* Close [from, to] (to == -1: to the end), with a loop where close_range is
 * missing. */
static void close_span(int from, int to)
{
    if (close_range((unsigned)from, to < 0 ? ~0u : (unsigned)to, 0) == 0)
        return;
    long max = to < 0 ? sysconf(_SC_OPEN_MAX) : (long)to + 1;
    for (long fd = from; fd < (max > 0 ? max : 1024); fd++)
        close((int)fd);
}

/* Close every descriptor from 3 up except the n in keep. */
static void close_all_but(const int *keep, unsigned n)
{
    int k[AUTH_SOCKETS_MAX];
    memcpy(k, keep, n * sizeof *k);
    qsort(k, n, sizeof *k, cmp_int);
    int from = 3;
    for (unsigned i = 0; i < n; i++) {
        if (k[i] < from)
            continue;                 /* below 3, or a duplicate */
        if (k[i] > from)
            close_span(from, k[i] - 1);
        from = k[i] + 1;
    }
    close_span(from, -1);
}

/* Child side of auth_helper_start: a clean signal state and no inherited
 * descriptors except stdio and our sockets, so the helper never keeps the
 * network process's sockets (or another helper's socketpair) open. */
static void helper_child_setup(const int *keep, unsigned nkeep)
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    struct sigaction dfl = { .sa_handler = SIG_DFL }, ign = { .sa_handler = SIG_IGN };
    sigemptyset(&dfl.sa_mask);
    sigemptyset(&ign.sa_mask);
    static const int to_default[] = { SIGTERM, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGCHLD };
    for (size_t i = 0; i < sizeof to_default / sizeof to_default[0]; i++)
        sigaction(to_default[i], &dfl, NULL);
    /* the helper ends when the network process closes the socket, not on a
     * terminal's ^C or a reload signal meant for the daemon */
    sigaction(SIGINT, &ign, NULL);
    sigaction(SIGHUP, &ign, NULL);
    sigaction(SIGPIPE, &ign, NULL);

    close_all_but(keep, nkeep);
}

int auth_helper_start(const struct cfg *cfg, int *fd, pid_t *pid)
{
    return auth_helper_start_n(cfg, fd, 1, pid);
}

int auth_helper_start_n(const struct cfg *cfg, int *fds, unsigned n, pid_t *pid)
{
    if (!cfg || !fds || !pid || n == 0 || n > AUTH_SOCKETS_MAX)
        return -1;
    int net[AUTH_SOCKETS_MAX], hel[AUTH_SOCKETS_MAX];
    unsigned made = 0;
    for (; made < n; made++) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
            log_err("auth helper: socketpair: %s", strerror(errno));
            goto fail;
        }
        net[made] = sv[0];
        hel[made] = sv[1];
    }
    fflush(NULL);
    pid_t p = fork();
    if (p < 0) {
        log_err("auth helper: fork: %s", strerror(errno));
        goto fail;
    }
    if (p == 0) {
        for (unsigned i = 0; i < n; i++)
            close(net[i]);
        log_set_tag("auth");
        helper_child_setup(hel, n);
        int rc = helper_main(cfg, hel, n);
        _exit(rc == 0 ? 0 : 1);
    }
    for (unsigned i = 0; i < n; i++)
        close(hel[i]);
    for (unsigned i = 0; i < n; i++) {
        int fl = fcntl(net[i], F_GETFL);
        if (fl < 0 || fcntl(net[i], F_SETFL, fl | O_NONBLOCK) < 0) {
            log_err("auth helper: fcntl: %s", strerror(errno));
            for (unsigned j = 0; j < n; j++)
                close(net[j]);
            kill(p, SIGKILL);
            while (waitpid(p, NULL, 0) < 0 && errno == EINTR)
                ;
            return -1;
        }
    }
    memcpy(fds, net, n * sizeof *fds);
    *pid = p;
    return 0;
fail:
    for (unsigned i = 0; i < made; i++) {
        close(net[i]);
        close(hel[i]);
    }
    return -1;
}
