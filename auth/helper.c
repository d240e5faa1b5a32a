/* auth/helper.c — the privileged auth helper process.
 *
 * One process, forked before the network process drops privileges, reads
 * AUTHP_REQ_LOGIN datagrams from its ends of SOCK_SEQPACKET socketpairs (one
 * per network process: `processes = N` gives N).  AUTHP_REQ_IDLE reports
 * (a connection held an unauthenticated slot until it was closed for it)
 * are counted towards ban_after at once and never answered.
 * Each request is checked in a short-lived worker process forked for it
 * (at most cfg->auth_workers at once; the rest wait in a bounded FIFO), so
 * a slow PAM module delays only its own login.  The worker answers on the
 * same socket itself (datagrams are atomic, so answers never interleave)
 * and exits with WORKER_SENT + the result once it has.  The helper answers
 * on its own only when no worker will: malformed request, queue full
 * ("overloaded"), worker killed after the timeout ("timeout") or dead
 * without answering.
 *
 * Every request arrives with the viewer's socket attached (SCM_RIGHTS): the
 * helper reads the peer from it (auth/peer.h) and closes it at once.  That
 * peer, not the address written in the request, is what PAM_RHOST, the log
 * and the failure accounting (bans) use; a request without exactly one
 * socket is malformed.
 *
 * AUTHP_REQ_CERT (SIGHUP in a network process or the supervisor): a child
 * reads the cert = and key = files with the helper's privileges (the
 * network side, after the privilege drop, cannot read a 0600 root key) and
 * sends them back in one bounded datagram.  AUTHP_REQ_QMP: the QMP broker
 * (auth/qmpb.h).
 *
 * Failures are all answered at the same time after the request, so the
 * time of the answer does not tell an unknown user (PAM answers without
 * hashing) from a wrong password or a user outside the VM's ACL: a worker
 * that failed gives its answer to the helper (a pipe) instead of the
 * socket, and the helper holds it until
 *     max(received + fail_delay, worker started + budget)
 * where budget covers the slowest check seen recently (see budget_ms()).
 * Successes go out at once.
 *
 * The helper loop is poll() on the sockets and a SIGCHLD self-pipe.  It
 * ends when every socket is at EOF (the network side is gone), killing its
 * workers. */
#include "auth/auth.h"
#include "auth/fwguard.h"
#include "auth/auth_int.h"
#include "auth/idle.h"
#include "auth/peer.h"
#include "auth/qmpb.h"
#include "common/addr.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
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

/* A worker that sent its answer exits with WORKER_SENT + enum authp_result;
 * one that wrote a failure's answer into its pipe for the helper to hold,
 * with WORKER_HELD + result. */
#define WORKER_SENT 10
#define WORKER_HELD 20

/* Failure timing budget (see budget_ms): the slowest of the last
 * BUDGET_SAMPLES check durations younger than BUDGET_AGE_MS, plus a
 * half, rounded up to BUDGET_STEP_MS (so the jitter of a busy machine
 * does not move it), at least BUDGET_FLOOR_MS and at most BUDGET_CAP_MS.
 * The cap and the ageing keep one slow outlier (an LDAP server hanging for
 * 50 s) from making later failures slower than BUDGET_CAP_MS, and then
 * only for BUDGET_AGE_MS. */
#define BUDGET_SAMPLES   64u
#define BUDGET_AGE_MS    (2u * 60u * 1000u)
#define BUDGET_STEP_MS   100u
#define BUDGET_FLOOR_MS  100u
#define BUDGET_CAP_MS    10000u
#define HELD_MAX         1024u    /* failure answers waiting for their time */

struct worker {
    pid_t pid;
    uint32_t id;
    uint64_t deadline;   /* CLOCK_MONOTONIC ms */
    bool killed;         /* by us, after the deadline */
    struct auth_peer peer;           /* for failure accounting */
    uint64_t received, started;      /* CLOCK_MONOTONIC ms: request read, worker forked */
    int held_fd;                     /* read end of the worker's failure-answer pipe */
    unsigned sock;       /* which socket the request came on */
    char vm[AUTHP_VM_MAX + 1];       /* the VM asked for (idle_pause: wake on success) */
    char user[AUTHP_USER_MAX + 1];   /* the user named, for the wake's log line */
};

/* A viewer session the helper authenticated itself over TCP, remembered so
 * that a power request (XVP) that comes back with the same socket is
 * believed for that user and VM and no other (see power_request).  The
 * socket is recognized by its inode and both ends' ports and the peer's
 * address, all read off the socket by the kernel.  A ring of SESSIONS_MAX:
 * the oldest is forgotten first; the network process also reports a
 * session's end (AUTHP_PWR_FORGET). */
#define SESSIONS_MAX 1024u
struct session {
    bool used;
    unsigned long long ino;
    unsigned port, lport;
    char addr[INET6_ADDRSTRLEN];
    char user[AUTHP_USER_MAX + 1];
    char vm[AUTHP_VM_MAX + 1];
};

struct outmsg {
    unsigned sock;
    size_t len;
    uint8_t buf[AUTHP_RESP_MAX];
};

/* A request waiting for a worker (holds a password). */
struct queued {
    struct authp_login_req req;      /* rhost: the peer's address, set by us */
    struct auth_peer peer;           /* from the viewer's socket */
    uint64_t received;               /* CLOCK_MONOTONIC ms */
    unsigned sock;                   /* the socket it came on */
    uint8_t type;                    /* AUTHP_REQ_LOGIN or AUTHP_REQ_VMS */
};

/* A failure's answer, held until due. */
struct held {
    uint64_t due;
    unsigned sock;
    size_t len;
    uint8_t buf[AUTHP_RESP_MAX];
};

/* idle_pause (auth/idle.h): one per VM that has it.  The helper owns the
 * idle state of every VM: it sees every successful login itself (a
 * worker's exit status), every network process reports its live session
 * count per VM (AUTHP_REQ_SESSIONS), and QMP stop/cont are composed and run
 * here, never asked for by the network process. */
#define IDLE_WAIT_MAX 32u     /* login answers held per VM while it wakes */

struct idle_wait {
    unsigned sock;
    size_t len;
    uint8_t buf[AUTHP_RESP_MAX];
};

struct idle_slot {
    /* copies, not a pointer into the config: a reload frees the config
     * the helper took before (idle_reload) */
    struct {
        char name[CFG_NAME_MAX + 1], qmp[CFG_PATH_MAX + 1], qga[CFG_PATH_MAX + 1];
    } vm[1];
    bool gone;                         /* the VM left the config: only its QMP child is awaited */
    struct idle_vm m;
    unsigned sess[AUTH_SOCKETS_MAX];   /* live sessions per network process */
    pid_t pid;                         /* the QMP child in flight (0: none) */
    int rfd;                           /* its result pipe */
    enum idle_act act;
    char user[64];                     /* the login that asked for the wake (log) */
    struct idle_wait wait[IDLE_WAIT_MAX];
    unsigned n_wait;
};

/* What an idle QMP child writes into its pipe (one write, < PIPE_BUF). */
struct idle_result {
    int32_t ok;
    char status[16];
    char why[96];
};

/* One check's duration, for the budget. */
struct sample {
    uint64_t at, ms;
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
    struct held *held;               /* failure answers not yet due (unordered) */
    unsigned n_held;
    struct sample samples[BUDGET_SAMPLES];   /* ring of recent check durations */
    unsigned s_next, s_len;
    struct fwguard *guard;           /* bans and table upkeep (root + [firewall]) */
    struct idle_slot *idle;          /* idle_pause VMs */
    unsigned n_idle;
    struct auth_reload *reload;      /* config reloads (auth/reload.c) */
    struct session *sessions;        /* ring of SESSIONS_MAX, see struct session */
    unsigned s_ring;
    int lock_fd;                     /* per-VM monitor locks (run_broker), -1: none */
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
static void idle_sock_gone(struct helper *h, unsigned sock);

static void sock_closed(struct helper *h, unsigned sock)
{
    if (!h->closed[sock]) {
        h->closed[sock] = true;
        h->n_open--;
        idle_sock_gone(h, sock);
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

/* Queue an encoded answer to request id for socket sock and try to send. */
static void outq_push(struct helper *h, unsigned sock, uint32_t id, const uint8_t *buf,
                      size_t len)
{
    if (h->olen >= OUTQ_MAX || len > AUTHP_RESP_MAX) {
        log_warn("answer queue full, dropping answer to request %u", id);
        return;
    }
    struct outmsg *m = &h->outq[(h->ohead + h->olen) % OUTQ_MAX];
    memcpy(m->buf, buf, len);
    m->len = len;
    m->sock = sock;
    h->olen++;
    outq_flush(h);
}

/* Answer request id with result/detail from the helper itself (not a
 * worker).  Queued if the socket is full; dropped with a warning if even
 * the queue is full (the network side then times the login out). */
static void helper_answer(struct helper *h, unsigned sock, uint32_t id,
                          enum authp_result result, const char *detail)
{
    struct authp_login_resp resp = { .id = id, .result = (uint8_t)result };
    snprintf(resp.detail, sizeof resp.detail, "%s", detail);
    uint8_t buf[AUTHP_RESP_MAX];
    int n = authp_encode_login_resp(&resp, buf, sizeof buf);
    if (n < 0) {
        log_err("cannot encode answer to request %u", id);
        return;
    }
    outq_push(h, sock, id, buf, (size_t)n);
}

/* ---------------------------------------------------------------------- */
/* idle_pause: the helper's side of auth/idle.h                            */

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* One slot per VM with idle_pause (the config never sets it without qmp). */
static void idle_setup(struct helper *h)
{
    unsigned n = 0;
    for (size_t i = 0; i < h->cfg->n_vms; i++)
        if (h->cfg->vms[i].idle_pause_ms)
            n++;
    if (n == 0)
        return;
    h->idle = calloc(n, sizeof *h->idle);
    if (!h->idle) {
        log_err("idle_pause: out of memory, no VM will be paused");
        return;
    }
    uint64_t now = auth_mono_ms(), wall = wall_ms();
    for (size_t i = 0; i < h->cfg->n_vms; i++) {
        const struct cfg_vm *vm = &h->cfg->vms[i];
        if (!vm->idle_pause_ms)
            continue;
        struct idle_slot *s = &h->idle[h->n_idle++];
        snprintf(s->vm->name, sizeof s->vm->name, "%s", vm->name);
        snprintf(s->vm->qmp, sizeof s->vm->qmp, "%s", vm->qmp);
        snprintf(s->vm->qga, sizeof s->vm->qga, "%s", vm->qga);
        s->rfd = -1;
        idle_init(&s->m, vm->idle_pause_ms, now, wall);
    }
}

static struct idle_slot *idle_find(struct helper *h, const char *vm)
{
    for (unsigned i = 0; i < h->n_idle; i++)
        if (!h->idle[i].gone && strcmp(h->idle[i].vm->name, vm) == 0)
            return &h->idle[i];
    return NULL;
}

/* Tell every network process the VM's state; the audit event (pause,
 * resume) rides on one copy only, so it is written once. */
static void idle_broadcast(struct helper *h, const struct idle_slot *s, const struct idle_out *o)
{
    struct idle_view v;
    idle_view_of(&s->m, &v);
    struct authp_idle_note note = { .state = v.state, .since = v.since };
    note.event = (uint8_t)(o->ev == IDLE_EV_PAUSED || o->ev == IDLE_EV_RESUMED ? o->ev : 0);
    snprintf(note.vm, sizeof note.vm, "%s", s->vm->name);
    snprintf(note.status, sizeof note.status, "%s", v.status);
    snprintf(note.why, sizeof note.why, "%s", o->why);
    bool audit = note.event != 0;
    for (unsigned i = 0; i < h->nfds; i++) {
        if (h->closed[i])
            continue;
        note.audit = audit;
        audit = false;
        uint8_t buf[AUTHP_MAX_MSG];
        int n = authp_encode_idle_note(&note, buf, sizeof buf);
        if (n > 0)
            outq_push(h, i, 0, buf, (size_t)n);
    }
}

static void idle_start(struct helper *h, struct idle_slot *s, enum idle_act act);

#define IDLE_SET_TIME_MS 3000   /* the guest agent's whole guest-set-time exchange */

/* After vmgate resumed vm (its held logins are already released): correct
 * the guest's clock, which stood still while it was paused, through its
 * guest agent (guest-set-time with the host's time).  Best effort, in a
 * grandchild re-parented at once, so neither the helper nor any login waits
 * for the agent; bounded by IDLE_SET_TIME_MS and logged either way.  It
 * does not take the monitor lock: the agent's socket is not the monitor,
 * and a console handoff must not wait behind a slow or absent agent. */
static void idle_set_time(struct helper *h, const char *name, const char *qga)
{
    pid_t p = fork();
    if (p == 0) {
        if (fork() != 0)
            _exit(0);
        signal(SIGCHLD, SIG_DFL);
        explicit_bzero(h->queue, h->qmax * sizeof *h->queue);   /* waiting passwords */
        for (unsigned i = 0; i < h->nfds; i++)
            close(h->fds[i]);
        char why[160] = "";
        if (qmpb_qga_set_time(qga, IDLE_SET_TIME_MS, why, sizeof why) == 0)
            log_info("idle: vm %s: guest clock set through the guest agent", name);
        else
            log_warn("idle: vm %s: guest clock not set: %s", name, why);
        _exit(0);
    }
    if (p < 0) {
        log_warn("idle: vm %s: guest clock not set: cannot fork: %s", name, strerror(errno));
        return;
    }
    while (waitpid(p, NULL, 0) < 0 && errno == EINTR)
        ;
}

/* Carry out what the state machine said: log, start the QMP operation,
 * release the held logins, tell the network processes. */
static void idle_apply(struct helper *h, struct idle_slot *s, const struct idle_out *o)
{
    const char *name = s->vm->name;
    switch (o->ev) {
    case IDLE_EV_PAUSED:
        log_info("idle: vm %s paused (%s)", name, o->why);
        break;
    case IDLE_EV_RESUMED:
        log_info("idle: vm %s resumed (login by %s)", name, s->user);
        break;
    case IDLE_EV_LEFT:
        log_info("idle: vm %s: %s", name, o->why);
        break;
    case IDLE_EV_FAILED:
        log_warn("idle: vm %s: %s", name, o->why);
        break;
    case IDLE_EV_NONE:
        break;
    }
    if (o->changed || o->ev)
        idle_broadcast(h, s, o);
    if (o->release) {
        for (unsigned i = 0; i < s->n_wait; i++) {
            struct idle_wait *wt = &s->wait[i];
            uint32_t id = 0;
            (void)authp_peek_id(wt->buf, wt->len, &id);
            if (!h->closed[wt->sock])
                outq_push(h, wt->sock, id, wt->buf, wt->len);
        }
        s->n_wait = 0;
    }
    if (o->ev == IDLE_EV_RESUMED && s->vm->qga[0])
        idle_set_time(h, s->vm->name, s->vm->qga);
    if (o->act != IDLE_ACT_NONE)
        idle_start(h, s, o->act);
}

static int vm_lock(int lock_fd, const char *vm, unsigned secs);

/* The QMP child: run the one operation, write the outcome, exit.  It takes
 * the VM's monitor lock like every broker run (QEMU serves one QMP client
 * per socket), so a pause never collides with a handoff or `vmgate vm`. */
static void idle_child(struct helper *h, const struct idle_slot *s, enum idle_act act, int wfd)
{
    (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
    signal(SIGCHLD, SIG_DFL);
    explicit_bzero(h->queue, h->qmax * sizeof *h->queue);   /* waiting passwords */
    for (unsigned i = 0; i < h->nfds; i++)
        close(h->fds[i]);
    unsigned op = act == IDLE_ACT_QUERY ? QMPB_QUERY_STATUS
                  : act == IDLE_ACT_STOP ? QMPB_STOP : QMPB_CONT;
    struct qmp_cmd cmds[QMP_RUN_MAX];
    struct idle_result r;
    memset(&r, 0, sizeof r);
    bool refused = false;
    int nc = qmpb_script(op, 0, NULL, cmds, r.why, sizeof r.why);
    if (nc > 0 && vm_lock(h->lock_fd, s->vm->name, 10) != 0) {
        snprintf(r.why, sizeof r.why, "the monitor stayed busy for 10 s");
        nc = -1;
    }
    if (nc > 0 && qmpb_run(s->vm->qmp, cmds, (size_t)nc, -1, 5000, r.status, sizeof r.status,
                           &refused, r.why, sizeof r.why) == 0)
        r.ok = 1;
    ssize_t w;
    while ((w = write(wfd, &r, sizeof r)) < 0 && errno == EINTR)
        ;
    _exit(w == (ssize_t)sizeof r ? 0 : 1);
}

/* Start act for s in a child (one at a time per VM); its answer comes back
 * through s->rfd (idle_collect). */
static void idle_start(struct helper *h, struct idle_slot *s, enum idle_act act)
{
    int pp[2];
    pid_t pid = -1;
    if (pipe2(pp, O_CLOEXEC) == 0) {
        pid = fork();
        if (pid == 0) {
            close(pp[0]);
            idle_child(h, s, act, pp[1]);
        }
        close(pp[1]);
        if (pid < 0)
            close(pp[0]);
    }
    if (pid < 0) {
        log_err("idle: vm %s: cannot start %s: %s", s->vm->name,
                act == IDLE_ACT_QUERY ? "query-status" : act == IDLE_ACT_STOP ? "stop" : "cont",
                strerror(errno));
        struct idle_out o;
        idle_answer(&s->m, false, NULL, auth_mono_ms(), wall_ms(), &o);
        idle_apply(h, s, &o);
        return;
    }
    s->pid = pid;
    s->rfd = pp[0];
    s->act = act;
}

/* s's QMP child wrote its outcome (or died): feed it to the machine. */
static void idle_collect(struct helper *h, struct idle_slot *s)
{
    struct idle_result r;
    ssize_t n;
    while ((n = read(s->rfd, &r, sizeof r)) < 0 && errno == EINTR)
        ;
    close(s->rfd);
    s->rfd = -1;
    while (waitpid(s->pid, NULL, 0) < 0 && errno == EINTR)
        ;
    s->pid = 0;
    if (s->gone)
        return;                   /* the VM left the config: nothing follows */
    bool ok = n == (ssize_t)sizeof r && r.ok;
    if (n != (ssize_t)sizeof r)
        snprintf(r.why, sizeof r.why, "QMP child died");
    r.status[sizeof r.status - 1] = '\0';
    r.why[sizeof r.why - 1] = '\0';
    if (!ok)
        log_debug("idle: vm %s: QMP %s failed: %s", s->vm->name,
                  s->act == IDLE_ACT_QUERY ? "query-status" : s->act == IDLE_ACT_STOP ? "stop"
                                                                                       : "cont",
                  r.why);
    struct idle_out o;
    idle_answer(&s->m, ok, ok && s->act == IDLE_ACT_QUERY ? r.status : NULL, auth_mono_ms(),
                wall_ms(), &o);
    idle_apply(h, s, &o);
}

/* The timers: pause what has been idle long enough.  Returns the poll
 * timeout until the next deadline (-1: none). */
static int idle_timers(struct helper *h)
{
    uint64_t now = auth_mono_ms();
    int64_t next = -1;
    for (unsigned i = 0; i < h->n_idle; i++) {
        struct idle_slot *s = &h->idle[i];
        uint64_t d = idle_deadline(&s->m);
        if (d && d <= now) {
            struct idle_out o;
            idle_tick(&s->m, now, &o);
            idle_apply(h, s, &o);
            d = idle_deadline(&s->m);
        }
        if (d) {
            int64_t left = d > now ? (int64_t)(d - now) : 0;
            if (next < 0 || left < next)
                next = left;
        }
    }
    if (next > 60000)
        next = 60000;
    return (int)next;
}

/* The sum of the per-process counts went to the machine. */
static void idle_recount(struct helper *h, struct idle_slot *s)
{
    unsigned total = 0;
    for (unsigned i = 0; i < h->nfds; i++)
        total += s->sess[i];
    struct idle_out o;
    idle_sessions(&s->m, total, auth_mono_ms(), wall_ms(), &o);
    idle_apply(h, s, &o);
}

/* AUTHP_REQ_SESSIONS from network process sock.  A compromised network
 * process can claim 0 (the VM is paused once idle_pause has passed, which
 * it could bring about anyway by closing the sessions it relays) or more
 * (the VM is never paused): no cont, and no stop of a VM without
 * idle_pause, can come of it. */
static void idle_sessions_req(struct helper *h, unsigned sock, const uint8_t *buf, size_t n)
{
    struct authp_sessions_req q;
    if (authp_decode_sessions_req(buf, n, &q) != 0) {
        log_warn("malformed session report (%zu bytes), ignored", n);
        return;
    }
    struct idle_slot *s = idle_find(h, q.vm);
    if (!s)
        return;                   /* not an idle_pause VM (or none): nothing to track */
    s->sess[sock] = q.count > 100000 ? 100000 : q.count;
    idle_recount(h, s);
}

/* Network process sock is gone: its sessions are too. */
static void idle_sock_gone(struct helper *h, unsigned sock)
{
    for (unsigned i = 0; i < h->n_idle; i++) {
        if (!h->idle[i].sess[sock])
            continue;
        h->idle[i].sess[sock] = 0;
        idle_recount(h, &h->idle[i]);
    }
}

/* A worker's success for w->vm (an idle_pause VM): the answer (buf) goes
 * now, or once the VM is awake.  who: the user, for the log. */
static void idle_login_ok(struct helper *h, const struct worker *w, const char *who,
                          const uint8_t *buf, size_t n)
{
    struct idle_slot *s = idle_find(h, w->vm);
    if (!s) {
        outq_push(h, w->sock, w->id, buf, n);
        return;
    }
    struct idle_out o;
    bool hold = idle_login(&s->m, auth_mono_ms(), &o);
    if (o.act != IDLE_ACT_NONE)
        log_safe(s->user, sizeof s->user, who, strlen(who));
    if (hold && s->n_wait < IDLE_WAIT_MAX) {
        struct idle_wait *wt = &s->wait[s->n_wait++];
        wt->sock = w->sock;
        wt->len = n;
        memcpy(wt->buf, buf, n);
    } else {
        if (hold)
            log_warn("idle: vm %s: %u logins already wait for the wake, answering at once",
                     s->vm->name, s->n_wait);
        outq_push(h, w->sock, w->id, buf, n);
    }
    idle_apply(h, s, &o);
}

/* An authorized pause or resume by a person (`vmgate vm VM pause|resume`,
 * once a path in qmp_request authorizes STOP/CONT): vmgate did not pause
 * the VM any more, so a login must not resume it. */
static void idle_by_user(struct helper *h, const char *vm)
{
    struct idle_slot *s = idle_find(h, vm);
    if (!s)
        return;
    struct idle_out o;
    idle_forget(&s->m, &o);
    idle_apply(h, s, &o);
}

/* A reload took h->cfg: the slots follow it, by name.  A VM that keeps
 * idle_pause keeps its slot and state (a new idle_pause applies from its
 * next idle period); one that gains it gets a fresh slot (idle from now:
 * the network processes report their counts once they switch); one that
 * loses it keeps its slot with idle 0 while vmgate's pause is not undone
 * (a login still wakes it; no pause follows), then the slot goes; a
 * removed VM's slot goes, its held logins are answered, and a QMP child in
 * flight is waited for (gone).  On out of memory the slots stay as they
 * were (they hold copies, nothing dangles). */
static void idle_reload(struct helper *h)
{
    const struct cfg *c = h->cfg;
    unsigned cap = h->n_idle;
    for (size_t i = 0; i < c->n_vms; i++)
        cap += c->vms[i].idle_pause_ms != 0;
    struct idle_slot *ns = calloc(cap ? cap : 1, sizeof *ns);
    bool *moved = calloc(h->n_idle + 1, sizeof *moved);
    if (!ns || !moved) {
        free(ns), free(moved);
        log_err("idle: out of memory: idle_pause keeps the previous configuration's VMs");
        return;
    }
    uint64_t now = auth_mono_ms(), wall = wall_ms();
    unsigned k = 0;
    for (unsigned i = 0; i < h->n_idle; i++) {
        struct idle_slot *o = &h->idle[i];
        const struct cfg_vm *vm = o->gone ? NULL : cfg_find_vm(c, o->vm->name);
        if (vm) {
            uint64_t ms = vm->idle_pause_ms;
            moved[i] = true;
            ns[k] = *o;
            snprintf(ns[k].vm->qmp, sizeof ns[k].vm->qmp, "%s", vm->qmp);
            snprintf(ns[k].vm->qga, sizeof ns[k].vm->qga, "%s", vm->qga);
            if (ns[k].m.idle_ms != ms) {
                log_info("idle: vm %s: idle_pause %llu ms now (was %llu ms)", vm->name,
                         (unsigned long long)ms, (unsigned long long)ns[k].m.idle_ms);
                ns[k].m.idle_ms = ms;
                if (ms && ns[k].m.st == IDLE_RUNNING)
                    ns[k].m.deadline = now + ms;
            }
            k++;
            continue;
        }
        /* gone from the config: answer the logins it held, wait for its child */
        for (unsigned j = 0; j < o->n_wait; j++) {
            uint32_t id = 0;
            (void)authp_peek_id(o->wait[j].buf, o->wait[j].len, &id);
            if (!h->closed[o->wait[j].sock])
                outq_push(h, o->wait[j].sock, id, o->wait[j].buf, o->wait[j].len);
        }
        o->n_wait = 0;
        if (!o->gone)
            log_info("idle: vm %s was removed from the configuration: no longer tracked",
                     o->vm->name);
        if (o->pid > 0) {
            moved[i] = true;
            ns[k] = *o;
            ns[k++].gone = true;
        }
    }
    for (size_t i = 0; i < c->n_vms; i++) {
        const struct cfg_vm *vm = &c->vms[i];
        if (!vm->idle_pause_ms || idle_find(h, vm->name))
            continue;
        struct idle_slot *s = &ns[k++];
        snprintf(s->vm->name, sizeof s->vm->name, "%s", vm->name);
        snprintf(s->vm->qmp, sizeof s->vm->qmp, "%s", vm->qmp);
        snprintf(s->vm->qga, sizeof s->vm->qga, "%s", vm->qga);
        s->rfd = -1;
        idle_init(&s->m, vm->idle_pause_ms, now, wall);
        log_info("idle: vm %s: idle_pause %llu ms from now (added by a reload)", vm->name,
                 (unsigned long long)vm->idle_pause_ms);
    }
    for (unsigned i = 0; i < h->n_idle; i++)
        if (!moved[i] && h->idle[i].rfd >= 0)
            close(h->idle[i].rfd);
    free(moved);
    free(h->idle);
    h->idle = ns;
    h->n_idle = k;
}

/* Drop the slots a reload left behind once nothing is pending: a removed
 * VM's whose child ended, a VM's that lost idle_pause once it runs. */
static void idle_compact(struct helper *h)
{
    unsigned k = 0;
    for (unsigned i = 0; i < h->n_idle; i++) {
        struct idle_slot *s = &h->idle[i];
        bool drop = s->pid == 0 && s->n_wait == 0 &&
                    (s->gone || (s->m.idle_ms == 0 && s->m.st == IDLE_RUNNING));
        if (!drop)
            h->idle[k++] = *s;
    }
    h->n_idle = k;
}

/* The helper is going away: stop the QMP children. */
static void idle_free(struct helper *h)
{
    for (unsigned i = 0; i < h->n_idle; i++) {
        struct idle_slot *s = &h->idle[i];
        if (s->pid > 0) {
            kill(s->pid, SIGKILL);
            while (waitpid(s->pid, NULL, 0) < 0 && errno == EINTR)
                ;
        }
        if (s->rfd >= 0)
            close(s->rfd);
    }
    free(h->idle);
    h->idle = NULL;
    h->n_idle = 0;
}

/* What a worker does: check, answer, exit.  Never returns.  It first drops
 * what it inherited and does not need: the other requests' passwords, the
 * self-pipe and the SIGCHLD handler (PAM modules may fork and wait). */
/* The worker of an AUTHP_REQ_VMS: the password check and the list; a
 * success is sent at once as AUTHP_RESP_VMS, a failure goes the way of a
 * failed login (AUTHP_RESP_LOGIN through the held pipe: same timing, same
 * counting).  Returns the exit status. */
static int worker_vms(struct helper *h, struct authp_login_req *req,
                      const struct auth_peer *peer, unsigned sock, int held_wfd)
{
    static struct authp_vms_resp vr;
    vr.id = req->id;
    enum authp_result res = auth_check_vms(h->cfg, req, &vr);
    char u[64], r[AUTHP_RHOST_MAX + 1];
    log_safe(u, sizeof u, req->user, strlen(req->user));
    auth_peer_str(peer, r, sizeof r);
    explicit_bzero(req, sizeof *req);
    if (res != AUTHP_OK) {
        if (res == AUTHP_ERROR)
            log_warn("request %u: VM list for user %s from %s: %s (%s)", vr.id, u, r,
                     authp_result_name(res), vr.detail);
        struct authp_login_resp resp = { .id = vr.id, .result = (uint8_t)res };
        snprintf(resp.detail, sizeof resp.detail, "%s", vr.detail);
        uint8_t buf[AUTHP_RESP_MAX];
        int n = authp_encode_login_resp(&resp, buf, sizeof buf);
        ssize_t w = -1;
        if (n > 0)
            while ((w = write(held_wfd, buf, (size_t)n)) < 0 && errno == EINTR)
                ;
        return n > 0 && w == n ? WORKER_HELD + res : 1;
    }
    log_debug("request %u: VM list for user %s from %s: %u VM(s)%s", vr.id, u, r, vr.n,
              vr.truncated ? " (truncated)" : "");
    static uint8_t buf[AUTHP_VMS_RESP_MAX];
    int n = authp_encode_vms_resp(&vr, buf, sizeof buf);
    if (n < 0)
        return 1;
    for (;;) {
        ssize_t w = send(h->fds[sock], buf, (size_t)n, MSG_NOSIGNAL);   /* blocking */
        if (w < 0 && errno == EINTR)
            continue;
        return w == n ? WORKER_SENT + AUTHP_OK : 1;
    }
}

static void worker_run(struct helper *h, struct authp_login_req *req,
                       const struct auth_peer *peer, unsigned sock, int held_wfd, uint8_t type)
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
    if (type == AUTHP_REQ_VMS)
        _exit(worker_vms(h, req, peer, sock, held_wfd));

    struct authp_login_resp resp = { .id = req->id };
    resp.result = (uint8_t)auth_check_peer(h->cfg, req, peer, resp.detail, sizeof resp.detail);
    /* A success for an idle_pause VM goes through the helper too: it may
     * have to resume the VM before the viewer hears it may go on. */
    const struct cfg_vm *cvm = cfg_find_vm(h->cfg, req->vm);
    /* (or a VM whose idle_pause a reload removed while vmgate had it
     * paused: its slot stays until the next login wakes it) */
    bool via_helper = resp.result != AUTHP_OK || (cvm && cvm->idle_pause_ms) ||
                      (req->vm[0] && idle_find(h, req->vm));
    if (resp.result != AUTHP_OK || log_get_level() >= LOG_LVL_DEBUG) {
        char u[64], v[AUTHP_VM_MAX + 1], r[AUTHP_RHOST_MAX + 1];
        log_safe(u, sizeof u, req->user, strlen(req->user));
        log_safe(v, sizeof v, req->vm, strlen(req->vm));
        auth_peer_str(peer, r, sizeof r);
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
    if (n > 0 && via_helper) {
        /* a failure: the helper sends it when it is due; a success for an
         * idle_pause VM: when the VM is awake (one write of less than
         * PIPE_BUF bytes is atomic) */
        ssize_t w;
        while ((w = write(held_wfd, buf, (size_t)n)) < 0 && errno == EINTR)
            ;
        _exit(w == n ? WORKER_HELD + resp.result : 1);
    }
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

/* Fork a worker for req (the caller wipes its copy afterwards). */
static void spawn_worker(struct helper *h, struct authp_login_req *req,
                         const struct auth_peer *peer, uint64_t received, unsigned sock,
                         uint8_t type)
{
    int hp[2];
    if (pipe2(hp, O_CLOEXEC) < 0) {
        log_err("pipe: %s", strerror(errno));
        helper_answer(h, sock, req->id, AUTHP_ERROR, "cannot start worker");
        return;
    }
    pid_t pid = fork();
    if (pid < 0) {
        log_err("fork: %s", strerror(errno));
        close(hp[0]);
        close(hp[1]);
        helper_answer(h, sock, req->id, AUTHP_ERROR, "cannot fork worker");
        return;
    }
    if (pid == 0) {
        close(hp[0]);
        for (unsigned i = 0; i < h->n_workers; i++)
            close(h->workers[i].held_fd);   /* the other workers' pipes */
        for (unsigned i = 0; i < h->n_idle; i++)
            if (h->idle[i].pid)
                close(h->idle[i].rfd);      /* the idle QMP children's */
        worker_run(h, req, peer, sock, hp[1], type);
    }
    close(hp[1]);
    (void)fcntl(hp[0], F_SETFL, O_NONBLOCK);
    (void)setpgid(pid, pid);   /* also done in the child: whichever runs first */
    struct worker *w = &h->workers[h->n_workers++];
    w->pid = pid;
    w->id = req->id;
    w->deadline = auth_mono_ms() + g_timeout_ms;
    w->killed = false;
    w->sock = sock;
    w->peer = *peer;
    w->received = received;
    w->started = auth_mono_ms();
    w->held_fd = hp[0];
    snprintf(w->vm, sizeof w->vm, "%s", req->vm);
    snprintf(w->user, sizeof w->user, "%s", req->user);
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
            spawn_worker(h, &q.req, &q.peer, q.received, q.sock, q.type);
        explicit_bzero(&q, sizeof q);
    }
}

/* Record how long worker w's check took (forked to reaped). */
static void note_duration(struct helper *h, const struct worker *w)
{
    uint64_t now = auth_mono_ms();
    h->samples[h->s_next] = (struct sample){ .at = now, .ms = now - w->started };
    log_debug("request %u: check took %llu ms", w->id, (unsigned long long)(now - w->started));
    h->s_next = (h->s_next + 1) % BUDGET_SAMPLES;
    if (h->s_len < BUDGET_SAMPLES)
        h->s_len++;
}

/* The time a check is allowed before its failure is answered, measured
 * from the worker's start: the slowest recent check plus a half (the same
 * check varies with the machine's load; a margin keeps the budget from
 * moving at every slower run), within [BUDGET_FLOOR_MS, BUDGET_CAP_MS].  Samples
 * leave after BUDGET_SAMPLES newer ones or BUDGET_AGE_MS, so an outlier
 * stops counting soon, and counts at most BUDGET_CAP_MS meanwhile. */
static uint64_t budget_ms(const struct helper *h, uint64_t now)
{
    uint64_t max = 0;
    for (unsigned i = 0; i < h->s_len; i++)
        if (now - h->samples[i].at <= BUDGET_AGE_MS && h->samples[i].ms > max)
            max = h->samples[i].ms;
    uint64_t b = max + max / 2;
    b = (b + BUDGET_STEP_MS - 1) / BUDGET_STEP_MS * BUDGET_STEP_MS;
    if (b < BUDGET_FLOOR_MS)
        b = BUDGET_FLOOR_MS;
    return b > BUDGET_CAP_MS ? BUDGET_CAP_MS : b;
}

/* Worker w failed and wrote its answer into its pipe: hold it until
 * max(received + fail_delay, started + budget).  False if the pipe holds
 * no answer (the caller then answers the error). */
static bool hold_answer(struct helper *h, const struct worker *w)
{
    uint8_t buf[AUTHP_RESP_MAX + 1];
    ssize_t n;
    while ((n = read(w->held_fd, buf, sizeof buf)) < 0 && errno == EINTR)
        ;
    struct authp_login_resp check;
    if (n <= 0 || authp_decode_login_resp(buf, (size_t)n, &check) != 0 || check.id != w->id)
        return false;
    note_duration(h, w);
    if (check.result == AUTHP_OK) {
        /* a local socket's login names no user: the uid's name is the detail */
        idle_login_ok(h, w, w->user[0] ? w->user : check.detail, buf, (size_t)n);
        return true;
    }
    uint64_t now = auth_mono_ms();
    uint64_t due = w->received + h->cfg->fail_delay_ms;
    uint64_t by_budget = w->started + budget_ms(h, now);
    if (by_budget > due)
        due = by_budget;
    if (due <= now || h->n_held >= HELD_MAX) {
        if (due > now)
            log_warn("request %u: %u failures already held, answering at once", w->id,
                     h->n_held);
        outq_push(h, w->sock, w->id, buf, (size_t)n);
        return true;
    }
    struct held *e = &h->held[h->n_held++];
    e->due = due;
    e->sock = w->sock;
    e->len = (size_t)n;
    memcpy(e->buf, buf, (size_t)n);
    return true;
}

/* Send the held answers that are due; returns the poll timeout until the
 * next one (-1: none held). */
static int release_held(struct helper *h)
{
    uint64_t now = auth_mono_ms();
    int64_t next = -1;
    for (unsigned i = 0; i < h->n_held;) {
        struct held *e = &h->held[i];
        if (e->due <= now) {
            uint32_t id = 0;
            (void)authp_peek_id(e->buf, e->len, &id);
            if (!h->closed[e->sock])
                outq_push(h, e->sock, id, e->buf, e->len);
            h->held[i] = h->held[--h->n_held];
            continue;
        }
        int64_t left = (int64_t)(e->due - now);
        if (next < 0 || left < next)
            next = left;
        i++;
    }
    return (int)next;
}

/* A worker's request ended with result: count a person's failure against
 * the source the helper saw itself.  Only inet peers are counted (the ban
 * set holds addresses); a unix peer is a local uid. */
static void account(struct helper *h, const struct worker *w, enum authp_result result)
{
    if (result == AUTHP_OK || result == AUTHP_ERROR || w->peer.kind != AUTH_PEER_INET)
        return;
    log_debug("request %u: failed login from %s (%s)", w->id, w->peer.addr,
              authp_result_name(result));
    fwguard_result(h->guard, w->peer.addr, result);
}

static bool session_is(const struct session *s, const struct auth_peer *p)
{
    return s->used && s->ino == p->ino && s->port == p->port && s->lport == p->lport &&
           strcmp(s->addr, p->addr) == 0;
}

/* Worker w's login over TCP succeeded: remember the viewer's socket as
 * w->user's session of w->vm (a unix peer needs no memory: its uid and the
 * socket's path say who and which VM every time). */
static void session_remember(struct helper *h, const struct worker *w)
{
    if (!h->sessions || w->peer.kind != AUTH_PEER_INET || !w->user[0])
        return;
    struct session *s = &h->sessions[h->s_ring];
    for (unsigned i = 0; i < SESSIONS_MAX; i++)
        if (session_is(&h->sessions[i], &w->peer))
            s = &h->sessions[i];            /* the same socket again: replace */
    if (s == &h->sessions[h->s_ring])
        h->s_ring = (h->s_ring + 1) % SESSIONS_MAX;
    *s = (struct session){ .used = true, .ino = w->peer.ino, .port = w->peer.port,
                           .lport = w->peer.lport };
    snprintf(s->addr, sizeof s->addr, "%s", w->peer.addr);
    snprintf(s->user, sizeof s->user, "%s", w->user);
    snprintf(s->vm, sizeof s->vm, "%s", w->vm);
}

static struct session *session_find(struct helper *h, const struct auth_peer *p)
{
    for (unsigned i = 0; h->sessions && i < SESSIONS_MAX; i++)
        if (session_is(&h->sessions[i], p))
            return &h->sessions[i];
    return NULL;
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
                helper_answer(h, w->sock, w->id, AUTHP_ERROR, "timeout");
            } else if (WIFEXITED(st) && WEXITSTATUS(st) >= WORKER_SENT &&
                       WEXITSTATUS(st) <= WORKER_SENT + AUTHP_ERROR) {
                note_duration(h, w);
                account(h, w, (enum authp_result)(WEXITSTATUS(st) - WORKER_SENT));
                if (WEXITSTATUS(st) == WORKER_SENT + AUTHP_OK)
                    session_remember(h, w);
            } else if (WIFEXITED(st) && WEXITSTATUS(st) >= WORKER_HELD &&
                       WEXITSTATUS(st) <= WORKER_HELD + AUTHP_ERROR && hold_answer(h, w)) {
                account(h, w, (enum authp_result)(WEXITSTATUS(st) - WORKER_HELD));
            } else {
                char why[64];
                if (WIFSIGNALED(st))
                    snprintf(why, sizeof why, "worker died (signal %d)", WTERMSIG(st));
                else
                    snprintf(why, sizeof why, "worker failed (exit %d)", WEXITSTATUS(st));
                log_warn("request %u: %s", w->id, why);
                helper_answer(h, w->sock, w->id, AUTHP_ERROR, why);
            }
        }
        /* reaped, or not our child any more (ECHILD): forget it */
        close(w->held_fd);
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

/* Take the descriptors a datagram carried: exactly one, a connected socket
 * whose peer goes to *peer.  Every received descriptor is closed before
 * returning, whatever the outcome.  Returns 0, or -1 with the reason. */
static int take_peer(struct msghdr *mh, struct auth_peer *peer, char *why, size_t whylen)
{
    int fds[AUTHP_FDS_RECV_MAX];
    size_t nfd = 0;
    bool extra = false;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
            c->cmsg_len < CMSG_LEN(0)) {
            extra = true;
            continue;
        }
        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        const unsigned char *data = CMSG_DATA(c);
        for (size_t i = 0; i < n; i++) {
            int fd;
            memcpy(&fd, data + i * sizeof fd, sizeof fd);
            if (nfd < AUTHP_FDS_RECV_MAX) {
                fds[nfd++] = fd;
            } else {
                close(fd);
                extra = true;
            }
        }
    }
    int rc = -1;
    if (mh->msg_flags & MSG_CTRUNC)
        snprintf(why, whylen, "truncated control data");
    else if (extra)
        snprintf(why, whylen, "unexpected control data");
    else if (nfd == 0)
        snprintf(why, whylen, "no socket attached");
    else if (nfd > 1)
        snprintf(why, whylen, "%zu descriptors attached", nfd);
    else if (auth_peer_from_fd(fds[0], peer, why, whylen) == 0)
        rc = 0;
    for (size_t i = 0; i < nfd; i++)
        close(fds[i]);
    return rc;
}

/* Read all of path (at most max bytes) into buf.  Returns the length, or -1
 * with why set ("FILE: reason"). */
ssize_t auth_read_bounded(const char *path, uint8_t *buf, size_t max, char *why, size_t whylen)
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

/* What a certificate child does: read cfg->cert and cfg->key with the
 * helper's privileges, send them as one AUTHP_RESP_CERT (or the reason it
 * could not), wipe every copy of the key and exit.
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
        ssize_t cl = auth_read_bounded(h->cfg->cert, chain, AUTHP_CERT_CHAIN_MAX, resp.detail,
                                  sizeof resp.detail);
        ssize_t kl = cl < 0 ? -1 : auth_read_bounded(h->cfg->key, key, AUTHP_CERT_KEY_MAX,
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
    int rc = 0;
    if (n > 0) {
        for (;;) {
            ssize_t w = send(h->fds[sock], msg, (size_t)n, MSG_NOSIGNAL);   /* blocking */
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0)
                log_warn("certificate request %u: send: %s", id, strerror(errno));
            rc = w == n ? 0 : 1;
            break;
        }
        explicit_bzero(msg, (size_t)n);
    }
    _exit(rc);
}

/* AUTHP_REQ_CERT (SIGHUP after the privilege drop): a re-parented
 * grandchild reads the files and answers on sock, so nothing here waits on
 * a slow disk.  That gives a network process nothing it does not already
 * hold: the key is in its TLS context from the start. */
static void cert_request(struct helper *h, unsigned sock, uint32_t id)
{
    pid_t p = fork();
    if (p == 0) {
        if (fork() != 0)
            _exit(0);
        cert_worker_run(h, id, sock);
    }
    if (p < 0) {
        log_warn("certificate request %u: cannot fork", id);
        return;
    }
    while (waitpid(p, NULL, 0) < 0 && errno == EINTR)
        ;
}

/* AUTHP_REQ_RELOAD: with reread, read and take the config again (the
 * logins that follow use its ACLs); then answer with the config in force.
 * Runs in the helper itself (the result is the helper's state); reading
 * one file and binding a few sockets does not hold the loop for long. */
static void reload_request(struct helper *h, unsigned sock, uint32_t id, int reread)
{
    char err[AUTHP_RELOAD_ERR_MAX + 1];
    bool failed = false;
    if (reread) {
        if (auth_reload_reread(h->reload, err, sizeof err) != 0) {
            failed = true;
            log_err("reload: keeping the old configuration: %s", err);
        } else {
            h->cfg = auth_reload_cfg(h->reload);
            fwguard_set_cfg(h->guard, h->cfg);
            idle_reload(h);
            log_info("reload: %s taken", h->cfg->file);
        }
    }
    if (auth_reload_answer(h->reload, h->fds[sock], id, failed ? err : NULL) != 0)
        log_warn("reload request %u: cannot answer", id);
}

/* The descriptors of a request that may carry at most one (AUTHP_REQ_QMP):
 * -1 none, -2 malformed (more than one, or other control data: all closed),
 * else the one fd, left open for the caller. */
static int take_one_fd(struct msghdr *mh)
{
    int got = -1;
    bool bad = (mh->msg_flags & MSG_CTRUNC) != 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
            c->cmsg_len < CMSG_LEN(0)) {
            bad = true;
            continue;
        }
        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < n; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof fd, sizeof fd);
            if (got < 0 && !bad) {
                got = fd;
            } else {
                close(fd);
                bad = true;
            }
        }
    }
    if (bad && got >= 0) {
        close(got);
        got = -1;
    }
    return bad ? -2 : got;
}

/* The monitor socket vmgate may use for vm: `qmp`, or the vnc = qmp:PATH
 * backend's.  NULL: none. */
static const char *vm_qmp_path(const struct cfg_vm *vm)
{
    if (vm->qmp[0])
        return vm->qmp;
    if (vm->vnc.kind == CFG_BE_QMP)
        return vm->vnc.path;
    return NULL;
}

/* Per-VM serialization of monitor use: QEMU serves one QMP client per
 * socket (a second waits in the listen backlog while its deadline runs),
 * so every broker run for a VM first takes a POSIX record lock on one byte
 * of h->lock_fd (a memfd), at an offset from the VM's name (a collision
 * only serializes two VMs).  Record locks belong to the process: the runs
 * are separate grandchildren, so they exclude each other, and the kernel
 * drops a lock when its run exits.  The wait is bounded by SIGALRM.
 * 0 locked (or no lock file), -1 not within secs. */
static void on_alarm(int sig) { (void)sig; }

static int vm_lock(int lock_fd, const char *vm, unsigned secs)
{
    if (lock_fd < 0)
        return 0;
    uint32_t hash = 2166136261u;
    for (const char *p = vm; *p; p++)
        hash = (hash ^ (uint8_t)*p) * 16777619u;
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
                        .l_start = (off_t)(hash % 65521u), .l_len = 1 };
    struct sigaction sa = { .sa_handler = on_alarm };   /* no SA_RESTART: EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    alarm(secs);
    int r = fcntl(lock_fd, F_SETLKW, &fl);
    alarm(0);
    return r;
}

/* Run a broker operation in a grandchild (re-parented at once, so nothing
 * here waits for QEMU) that answers request id on sock itself: the QMP
 * commands cmds on the monitor at path, with fd attached where asked, or,
 * with qga set, the guest agent's reboot on that socket instead.  Runs for
 * one VM are serialized (vm_lock).  what names it in the log. */
static void run_broker(struct helper *h, unsigned sock, uint32_t id, const struct cfg_vm *vm,
                       const char *path, const struct qmp_cmd *cmds, size_t nc, int fd,
                       uint64_t conn, const char *what, const char *qga)
{
    pid_t p = fork();
    if (p == 0) {
        if (fork() != 0)
            _exit(0);
        /* (no PDEATHSIG: our parent exits now; the deadlines bound us) */
        char res[AUTHP_DETAIL_MAX + 1] = "", why[160] = "";
        bool refused = false;
        int rc;
        if (vm_lock(h->lock_fd, vm->name, 10) != 0) {
            snprintf(why, sizeof why, "the monitor of vm %s stays busy", vm->name);
            rc = -1;
        } else if (qga) {
            rc = qmpb_qga_reboot(qga, 5000, why, sizeof why);
        } else {
            rc = qmpb_run(path, cmds, nc, fd, 5000, res, sizeof res, &refused, why, sizeof why);
        }
        struct authp_login_resp r = { .id = id };
        r.result = rc == 0 ? AUTHP_OK : refused ? AUTHP_QMP_REFUSED : AUTHP_ERROR;
        snprintf(r.detail, sizeof r.detail, "%s", rc == 0 ? res : why);
        log_info("%s %s vm=%s conn=%llu: %s%s%s", qga ? "qga" : "qmp", what, vm->name,
                 (unsigned long long)conn, authp_result_name(r.result), r.detail[0] ? ": " : "",
                 r.detail);
        uint8_t out[AUTHP_RESP_MAX];
        int l = authp_encode_login_resp(&r, out, sizeof out);
        if (l > 0)
            (void)send(h->fds[sock], out, (size_t)l, MSG_NOSIGNAL);
        _exit(0);
    }
    if (p < 0) {
        helper_answer(h, sock, id, AUTHP_ERROR, "cannot fork");
    } else {
        while (waitpid(p, NULL, 0) < 0 && errno == EINTR)
            ;
    }
}

/* Who asks for power (AUTHP_REQ_POWER), decided from the attached socket
 * alone, never from the network process's words:
 *   - a unix socket accepted on the control socket (`control`): the
 *     client's uid (SO_PEERCRED) — `vmgate vm`;
 *   - a unix socket accepted on socket_dir/VM.vnc of this VM: the viewer's
 *     uid — XVP from a local viewer;
 *   - a TCP socket: a session this helper authenticated (session_find) for
 *     this VM — XVP from a viewer that logged in with a password.
 * The name goes to user (for the ACL and the log).  0, or -1 with why. */
static int power_principal(struct helper *h, const struct auth_peer *peer,
                           const struct cfg_vm *vm, char *user, size_t usersz, char *why,
                           size_t whylen)
{
    const struct cfg *cfg = h->cfg;
    if (peer->kind == AUTH_PEER_UNIX) {
        char own[CFG_PATH_MAX + CFG_NAME_MAX + 16] = "";
        if (cfg->socket_dir[0])
            snprintf(own, sizeof own, "%s/%s.vnc", cfg->socket_dir, vm->name);
        bool ctl = cfg->control[0] && strcmp(peer->local, cfg->control) == 0;
        if (!ctl && !(own[0] && strcmp(peer->local, own) == 0)) {
            snprintf(why, whylen, "a unix socket that is neither the control socket nor %s's",
                     vm->name);
            return -1;
        }
        char buf[4096];
        struct passwd pw, *res = NULL;
        if (getpwuid_r(peer->uid, &pw, buf, sizeof buf, &res) != 0 || !res ||
            strlen(res->pw_name) >= usersz) {
            snprintf(why, whylen, "uid %lu has no user name", (unsigned long)peer->uid);
            return -1;
        }
        snprintf(user, usersz, "%s", res->pw_name);
        return 0;
    }
    struct session *s = session_find(h, peer);
    for (int tries = 0; !s && tries < 50; tries++) {
        /* the login's worker answered the network process before it
         * exited: if it is still one of ours, give it a moment */
        bool pending = false;
        for (unsigned i = 0; i < h->n_workers; i++)
            pending |= h->workers[i].peer.kind == AUTH_PEER_INET &&
                       h->workers[i].peer.ino == peer->ino;
        if (!pending)
            break;
        struct timespec ms = { 0, 2000000 };
        nanosleep(&ms, NULL);
        reap(h);
        s = session_find(h, peer);
    }
    if (!s) {
        snprintf(why, whylen, "not a session this helper authenticated");
        return -1;
    }
    if (strcmp(s->vm, vm->name) != 0) {
        snprintf(why, whylen, "the session is for vm %s", s->vm);
        return -1;
    }
    snprintf(user, usersz, "%s", s->user);
    return 0;
}

/* AUTHP_REQ_POWER: authorize the attached socket's principal
 * (power_principal) for the action on the VM — status: its users/groups
 * or power_users/power_groups; everything else: power_users/power_groups —
 * and run it through the broker (serialized per VM like every monitor
 * use).  CHECK answers at once (detail: the user); FORGET drops a
 * remembered session and is not answered.  fd: the attached socket (closed
 * here); -1 none, -2 malformed. */
static void power_request(struct helper *h, unsigned sock, const uint8_t *buf, size_t n, int fd)
{
    struct authp_power_req q;
    struct auth_peer peer;
    char why[1600] = "", user[AUTHP_USER_MAX + 1] = "", vmname[AUTHP_VM_MAX * 4 + 8];
    const struct cfg_vm *vm = NULL;
    if (fd < 0 || authp_decode_power_req(buf, n, &q) != 0 ||
        auth_peer_from_fd(fd, &peer, why, sizeof why) != 0) {
        uint32_t id;
        log_warn("malformed power request (%zu bytes)%s%s", n, why[0] ? ": " : "", why);
        if (authp_peek_id(buf, n, &id) == 0)
            helper_answer(h, sock, id, AUTHP_ERROR, "malformed request");
        goto out;
    }
    log_safe(vmname, sizeof vmname, q.vm, strlen(q.vm));
    if (q.action == AUTHP_PWR_FORGET) {
        struct session *s = peer.kind == AUTH_PEER_INET ? session_find(h, &peer) : NULL;
        if (s)
            s->used = false;
        goto out;
    }
    const char *act = authp_power_name(q.action);
    if (!(vm = cfg_find_vm(h->cfg, q.vm))) {
        snprintf(why, sizeof why, "no vm %s", vmname);
        helper_answer(h, sock, q.id, AUTHP_NOT_ALLOWED, why);
        goto out;
    }
    if (power_principal(h, &peer, vm, user, sizeof user, why, sizeof why) != 0) {
        char p[INET6_ADDRSTRLEN + 16];
        log_warn("power %s vm=%s conn=%llu refused: %s (peer %s)", act, vm->name,
                 (unsigned long long)q.conn, why, auth_peer_str(&peer, p, sizeof p));
        helper_answer(h, sock, q.id, AUTHP_NOT_ALLOWED, why);
        goto out;
    }
    char u[AUTHP_USER_MAX * 4 + 1];
    log_safe(u, sizeof u, user, strlen(user));
    bool may_power = auth_power_allows(vm, user);
    if (q.action == AUTHP_PWR_STATUS ? !(may_power || auth_acl_allows(vm, user)) : !may_power) {
        if (q.action == AUTHP_PWR_STATUS)
            snprintf(why, sizeof why, "user %s may not open vm %s (not in its users/groups)", u,
                     vm->name);
        else
            snprintf(why, sizeof why, "user %s may not control the power of vm %s (not in its "
                     "power_users/power_groups)", u, vm->name);
        if (q.action != AUTHP_PWR_CHECK)
            log_info("power %s vm=%s conn=%llu: refused: %s", act, vm->name,
                     (unsigned long long)q.conn, why);
        helper_answer(h, sock, q.id, AUTHP_NOT_ALLOWED, why);
        goto out;
    }
    if (q.action == AUTHP_PWR_CHECK) {
        helper_answer(h, sock, q.id, AUTHP_OK, user);
        goto out;
    }
    const char *path = vm_qmp_path(vm);
    if (q.action == AUTHP_PWR_REBOOT) {
        if (!vm->qga[0]) {
            snprintf(why, sizeof why, "vm %s has no qga configured (reboot needs the guest "
                     "agent)", vm->name);
            helper_answer(h, sock, q.id, AUTHP_ERROR, why);
        } else {
            log_info("power reboot vm=%s conn=%llu user=%s: allowed", vm->name,
                     (unsigned long long)q.conn, u);
            run_broker(h, sock, q.id, vm, NULL, NULL, 0, -1, q.conn, "guest-shutdown reboot",
                       vm->qga);
        }
        goto out;
    }
    if (!path) {
        snprintf(why, sizeof why, "vm %s has no qmp configured", vm->name);
        helper_answer(h, sock, q.id, AUTHP_ERROR, why);
        goto out;
    }
    static const unsigned op_of[AUTHP_PWR_MAX_] = {
        [AUTHP_PWR_STATUS] = QMPB_QUERY_STATUS, [AUTHP_PWR_SHUTDOWN] = QMPB_POWERDOWN,
        [AUTHP_PWR_RESET] = QMPB_RESET, [AUTHP_PWR_PAUSE] = QMPB_STOP,
        [AUTHP_PWR_RESUME] = QMPB_CONT,
    };
    struct qmp_cmd cmds[QMP_RUN_MAX];
    int nc = qmpb_script(op_of[q.action], q.conn, NULL, cmds, why, sizeof why);
    if (nc < 0) {
        helper_answer(h, sock, q.id, AUTHP_ERROR, why);
        goto out;
    }
    if (q.action != AUTHP_PWR_STATUS)
        log_info("power %s vm=%s conn=%llu user=%s: allowed", act, vm->name,
                 (unsigned long long)q.conn, u);
    if (q.action == AUTHP_PWR_PAUSE || q.action == AUTHP_PWR_RESUME)
        idle_by_user(h, vm->name);    /* a person's pause/resume voids vmgate's idle record */
    run_broker(h, sock, q.id, vm, path, cmds, (size_t)nc, -1, q.conn,
               qmpb_op_name(op_of[q.action]), NULL);
    explicit_bzero(cmds, sizeof cmds);
out:
    if (fd >= 0)
        close(fd);
}

/* AUTHP_REQ_QMP: the QMP broker.  The network process names a VM and one
 * of a few fixed operations (auth/qmpb.h); the helper finds the monitor in
 * its own config, composes the commands itself and runs them in a
 * grandchild (re-parented at once, so nothing here waits for QEMU), which
 * answers on sock.  fd: the socket to hand off (closed here). */
static void qmp_request(struct helper *h, unsigned sock, const uint8_t *buf, size_t n, int fd)
{
    struct authp_qmp_req q;
    char why[160] = "";
    const char *path = NULL;
    const struct cfg_vm *vm = NULL;
    struct qmp_cmd cmds[QMP_RUN_MAX];
    int nc = -1;
    if (fd == -2 || authp_decode_qmp_req(buf, n, &q) != 0) {
        uint32_t id;
        log_warn("malformed QMP request (%zu bytes)", n);
        if (authp_peek_id(buf, n, &id) == 0)
            helper_answer(h, sock, id, AUTHP_ERROR, "malformed request");
        goto out;
    }
    if (!qmpb_op_name(q.op))
        snprintf(why, sizeof why, "unknown QMP operation %u", q.op);
    else if (qmpb_op_is_power(q.op))
        /* no path authorizes a power op from the network process yet */
        snprintf(why, sizeof why, "%s is not allowed from the network process",
                 qmpb_op_name(q.op));
    else if (!(vm = cfg_find_vm(h->cfg, q.vm)))
        snprintf(why, sizeof why, "no vm %s", q.vm);
    else if (!(path = vm_qmp_path(vm)))
        snprintf(why, sizeof why, "vm %s has no qmp socket configured", q.vm);
    else if (qmpb_op_wants_fd(q.op) != (fd >= 0))
        snprintf(why, sizeof why, "%s %s a socket", qmpb_op_name(q.op),
                 fd >= 0 ? "takes no" : "needs");
    else
        nc = qmpb_script(q.op, q.conn, q.arg, cmds, why, sizeof why);
    if (nc < 0) {
        char vmname[AUTHP_VM_MAX + 8];
        log_warn("QMP request %u refused: %s", q.id, log_safe(vmname, sizeof vmname, why,
                                                               strlen(why)));
        helper_answer(h, sock, q.id, AUTHP_ERROR, why);
        goto out;
    }
    if (q.op == QMPB_STOP || q.op == QMPB_CONT)
        idle_by_user(h, vm->name);    /* someone's own pause/resume voids vmgate's record */
    run_broker(h, sock, q.id, vm, path, cmds, (size_t)nc, fd, q.conn, qmpb_op_name(q.op), NULL);
out:
    explicit_bzero(cmds, sizeof cmds);
    if (fd >= 0)
        close(fd);
}

/* The viewer's real source, when the socket comes from a balancer: the
 * socket's peer (getpeername) must be inside proxy_protocol in the
 * helper's own config, and the network process's claim (what the PROXY v2
 * header said) a numeric address; then the claim, in canonical form
 * (IPv4-mapped written as IPv4), replaces peer->addr.  Any other peer keeps
 * the kernel's word.  The helper cannot check the header itself (the
 * network process read it), so a compromised network process can name any
 * source for connections that come through a listed balancer, and only
 * for those: proxy_protocol should list balancers, nothing else. */
static void take_claim(const struct cfg *cfg, struct auth_peer *peer, const char *claim,
                       uint32_t id)
{
    if (peer->kind != AUTH_PEER_INET || !claim[0] || !cfg_proxy_source(cfg, peer->addr) ||
        strcmp(claim, peer->addr) == 0)
        return;
    struct addr_net n;
    char canon[ADDR_NET_MAX];
    if (addr_net_parse(claim, false, &n, NULL, 0) < 0) {
        char shown[AUTHP_RHOST_MAX + 1];
        log_safe(shown, sizeof shown, claim, strlen(claim));
        log_warn("request %u: through balancer %s, the claimed source \"%s\" is not an address",
                 id, peer->addr, shown);
        return;
    }
    addr_net_str(&n, canon, sizeof canon);
    if (strlen(canon) >= sizeof peer->addr)
        return;
    log_debug("request %u: viewer %s through balancer %s (proxy_protocol)", id, canon, peer->addr);
    memcpy(peer->addr, canon, strlen(canon) + 1);
}

/* The request's rhost becomes the helper's own view of the peer (what
 * PAM_RHOST and the worker's log use): the inet address (or the claim
 * take_claim accepted), or empty for a unix peer.  A different claim from
 * the network process is logged: it is either a bug or a compromised
 * network process. */
static void set_rhost(const struct cfg *cfg, struct authp_login_req *req, struct auth_peer *peer)
{
    take_claim(cfg, peer, req->rhost, req->id);
    const char *seen = peer->kind == AUTH_PEER_INET ? peer->addr : "";
    if (peer->kind == AUTH_PEER_INET && req->rhost[0] && strcmp(req->rhost, seen) != 0) {
        char claim[AUTHP_RHOST_MAX + 1];
        log_safe(claim, sizeof claim, req->rhost, strlen(req->rhost));
        log_warn("request %u: network process claimed source \"%s\", the socket's peer is %s",
                 req->id, claim, seen);
    }
    snprintf(req->rhost, sizeof req->rhost, "%s", seen);
}

/* fwguard banned a source or its ban ended: tell every network process
 * (AUTHP_EVT_BAN, through the answer queue; a full queue drops it with a
 * warning, the kernel ban holds anyway). */
static void ban_event(void *ctx, const char *key, bool banned, uint64_t until_ms)
{
    struct helper *h = ctx;
    struct authp_ban_evt e = { .banned = banned, .until_ms = until_ms };
    snprintf(e.key, sizeof e.key, "%s", key);
    uint8_t buf[AUTHP_RESP_MAX];
    int n = authp_encode_ban_evt(&e, buf, sizeof buf);
    if (n < 0)
        return;
    for (unsigned i = 0; i < h->nfds; i++)
        if (!h->closed[i])
            outq_push(h, i, 0, buf, (size_t)n);
}

/* Read every datagram waiting on socket sock (up to RECV_BURST), decode,
 * read the peer off the attached socket, queue.  Marks the socket closed
 * when its network process is gone. */
static void read_requests(struct helper *h, unsigned sock)
{
    uint8_t buf[AUTHP_MAX_MSG + 1];
    for (int i = 0; i < RECV_BURST && !h->closed[sock]; i++) {
        struct iovec iov = { .iov_base = buf, .iov_len = sizeof buf };
        union {
            struct cmsghdr align;
            char b[CMSG_SPACE(sizeof(int) * AUTHP_FDS_RECV_MAX)];
        } ctl;
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
                             .msg_control = ctl.b, .msg_controllen = sizeof ctl.b };
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
        if (n > 0 && !(mh.msg_flags & MSG_TRUNC) && (size_t)n <= AUTHP_MAX_MSG &&
            authp_peek_type(buf, (size_t)n) == AUTHP_REQ_CERT) {
            int fd = take_one_fd(&mh);
            uint32_t id;
            if (fd >= 0)
                close(fd);
            if (fd != -1 || authp_decode_cert_req(buf, (size_t)n, &id) != 0)
                log_warn("malformed certificate request (%zd bytes), ignored", n);
            else
                cert_request(h, sock, id);
            continue;
        }
        if (n > 0 && !(mh.msg_flags & MSG_TRUNC) && (size_t)n <= AUTHP_MAX_MSG &&
            authp_peek_type(buf, (size_t)n) == AUTHP_REQ_SESSIONS) {
            int fd = take_one_fd(&mh);
            if (fd >= 0)
                close(fd);
            if (fd != -1)
                log_warn("session report with a descriptor, ignored");
            else
                idle_sessions_req(h, sock, buf, (size_t)n);
            continue;
        }
        if (n > 0 && !(mh.msg_flags & MSG_TRUNC) && (size_t)n <= AUTHP_MAX_MSG &&
            authp_peek_type(buf, (size_t)n) == AUTHP_REQ_RELOAD) {
            int fd = take_one_fd(&mh);
            uint32_t id;
            int reread;
            if (fd >= 0)
                close(fd);
            if (fd != -1 || authp_decode_reload_req(buf, (size_t)n, &id, &reread) != 0)
                log_warn("malformed reload request (%zd bytes), ignored", n);
            else
                reload_request(h, sock, id, reread);
            continue;
        }
        if (n > 0 && !(mh.msg_flags & MSG_TRUNC) && (size_t)n <= AUTHP_MAX_MSG &&
            authp_peek_type(buf, (size_t)n) == AUTHP_REQ_QMP) {
            qmp_request(h, sock, buf, (size_t)n, take_one_fd(&mh));
            continue;
        }
        if (n > 0 && !(mh.msg_flags & MSG_TRUNC) && (size_t)n <= AUTHP_MAX_MSG &&
            authp_peek_type(buf, (size_t)n) == AUTHP_REQ_POWER) {
            power_request(h, sock, buf, (size_t)n, take_one_fd(&mh));
            continue;
        }
        struct queued q;
        char why[128] = "";
        int peer_rc = take_peer(&mh, &q.peer, why, sizeof why);   /* closes the fds */
        if (n == 0) {
            sock_closed(h, sock);
            break;
        }
        if (!(mh.msg_flags & MSG_TRUNC) && (size_t)n <= AUTHP_MAX_MSG &&
            authp_peek_type(buf, (size_t)n) == AUTHP_REQ_IDLE) {
            /* never answered; counted by the source read off the socket */
            struct authp_idle_req idle;
            if (authp_decode_idle_req(buf, (size_t)n, &idle) == 0 && peer_rc == 0) {
                take_claim(h->cfg, &q.peer, idle.rhost, 0);
                if (q.peer.kind == AUTH_PEER_INET)
                    fwguard_idle(h->guard, q.peer.addr);
            } else {
                log_warn("malformed idle report (%zd bytes)%s%s, ignored", n, why[0] ? ": " : "",
                         why);
            }
            explicit_bzero(&q, sizeof q);
            continue;
        }
        q.type = authp_peek_type(buf, (size_t)n) == AUTHP_REQ_VMS ? AUTHP_REQ_VMS
                                                                  : AUTHP_REQ_LOGIN;
        if ((mh.msg_flags & MSG_TRUNC) || (size_t)n > AUTHP_MAX_MSG ||
            (q.type == AUTHP_REQ_VMS ? authp_decode_vms_req(buf, (size_t)n, &q.req)
                                     : authp_decode_login_req(buf, (size_t)n, &q.req)) != 0 ||
            peer_rc != 0) {
            uint32_t id;
            if (authp_peek_id(buf, (size_t)n, &id) == 0) {
                log_warn("malformed request %u (%zd bytes)%s%s", id, n, why[0] ? ": " : "",
                         why);
                helper_answer(h, sock, id, AUTHP_ERROR, "malformed request");
            } else {
                log_warn("malformed request (%zd bytes), ignored", n);
            }
            explicit_bzero(buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf);
            explicit_bzero(&q, sizeof q);
            continue;
        }
        explicit_bzero(buf, (size_t)n);
        set_rhost(h->cfg, &q.req, &q.peer);
        q.received = auth_mono_ms();
        q.sock = sock;
        if (h->qlen >= h->qmax) {
            log_warn("request %u: queue full (%u waiting), answering overloaded", q.req.id,
                     h->qlen);
            helper_answer(h, sock, q.req.id, AUTHP_ERROR, "overloaded");
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
        close(h->workers[i].held_fd);
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
    h.held = calloc(HELD_MAX, sizeof *h.held);
    h.sessions = calloc(SESSIONS_MAX, sizeof *h.sessions);
    h.lock_fd = memfd_create("vmgate-monitor-locks", MFD_CLOEXEC);
    int pfd[2] = { -1, -1 };
    int rc = -1;
    struct pollfd *pfds = NULL;      /* the sockets, self-pipe, firewall, idle children */
    struct sigaction sa = { .sa_handler = on_sigchld, .sa_flags = SA_RESTART | SA_NOCLDSTOP },
                     old_chld, old_pipe;
    sigemptyset(&sa.sa_mask);
    bool have_sig = false;
    if (!h.workers || !h.queue || !h.outq || !h.held || !h.sessions) {
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
    fwguard_on_ban(h.guard, ban_event, &h);
    idle_setup(&h);
    unsigned pcap = h.n_idle;        /* idle slots pfds has room for (a reload may add) */
    pfds = calloc(AUTH_SOCKETS_MAX + 2 + pcap, sizeof *pfds);
    h.reload = auth_reload_new(cfg);
    if (!pfds || !h.reload) {
        log_err("out of memory");
        goto out;
    }
    log_debug("helper ready: %u workers, queue %u, timeout %u ms", h.max_workers, h.qmax,
              g_timeout_ms);
    for (;;) {
        reap(&h);
        dispatch(&h);
        if (h.n_open == 0)
            break;
        int timeout = enforce_deadlines(&h);
        int ht = release_held(&h);
        if (ht >= 0 && (timeout < 0 || ht < timeout))
            timeout = ht;
        int gt = fwguard_timeout(h.guard);
        if (gt >= 0 && (timeout < 0 || gt < timeout))
            timeout = gt;
        idle_compact(&h);
        if (h.n_idle > pcap) {
            struct pollfd *np = realloc(pfds, (AUTH_SOCKETS_MAX + 2 + h.n_idle) * sizeof *np);
            if (!np) {
                log_err("out of memory");
                goto out;
            }
            pfds = np;
            pcap = h.n_idle;
        }
        int it = idle_timers(&h);
        if (it >= 0 && (timeout < 0 || it < timeout))
            timeout = it;
        /* [0, nfds): the sockets (POLLOUT on the one the oldest queued
         * answer waits for); then the self-pipe; then the firewall watch */
        struct pollfd *p = pfds;
        unsigned waiting = h.olen ? h.outq[h.ohead].sock : nfds;
        for (unsigned i = 0; i < nfds; i++) {
            p[i].fd = h.closed[i] ? -1 : fds[i];
            p[i].events = (short)(POLLIN | (i == waiting ? POLLOUT : 0));
            p[i].revents = 0;
        }
        p[nfds] = (struct pollfd){ .fd = pfd[0], .events = POLLIN };
        p[nfds + 1] = (struct pollfd){ .fd = fwguard_fd(h.guard), .events = POLLIN };
        /* then one per idle_pause VM: its QMP child's pipe, while one runs */
        for (unsigned i = 0; i < h.n_idle; i++)
            p[nfds + 2 + i] = (struct pollfd){ .fd = h.idle[i].rfd, .events = POLLIN };
        int n = poll(p, nfds + 2 + h.n_idle, timeout);
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
        for (unsigned i = 0; i < h.n_idle; i++)
            if (h.idle[i].rfd >= 0 && p[nfds + 2 + i].revents)
                idle_collect(&h, &h.idle[i]);
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
    idle_free(&h);
    free(pfds);
    fwguard_free(h.guard);
    auth_reload_free(h.reload);
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
    free(h.held);
    free(h.sessions);
    if (h.lock_fd >= 0)
        close(h.lock_fd);
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
