/* auth/client.c — the network process's side of the auth helper socket.
 *
 * Requests are sent as single datagrams, each with the viewer's socket
 * attached (SCM_RIGHTS: the helper learns the source from it); if the
 * socket is full they wait, with a duplicate of that descriptor, in a
 * bounded outgoing queue drained by an EV_WRITE watcher.  Every request
 * gets its own wire id (increasing), so answers are matched to the pending
 * entry whatever id the caller chose; the caller's id is echoed back in the
 * response it sees.  Callbacks run only from the loop, never from inside
 * auth_client_submit: local failures (helper gone, queue full) are marked on
 * the entry and delivered by a zero-delay ev_timer.
 *
 * Callbacks may call auth_client_submit, auth_client_cancel and even
 * auth_client_free; every loop over the pending list therefore restarts
 * from the head after a callback, and freeing is deferred while a callback
 * is running. */
#include "auth/auth.h"
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define AC_OUTQ_MAX     256u   /* requests waiting for room in the socket */
#define AC_RECV_BURST   64     /* answers read per wakeup */

struct pend {
    struct pend *prev, *next;
    uint32_t wire_id, user_id;
    auth_cb cb;
    void *ctx;
    uint8_t *msg;        /* encoded request while not yet sent (holds the password) */
    size_t msglen;
    double submitted;    /* ev_now() at auth_client_submit */
    int pass_fd;         /* our duplicate of the viewer's socket while unsent, else -1 */
    bool ready;          /* resp is final: deliver from the defer timer */
    struct authp_login_resp resp;
};

struct auth_client {
    struct ev_loop *loop;
    int fd;
    ev_io rio, wio;
    ev_timer defer;
    struct pend *head, *tail;
    unsigned n_unsent;
    uint32_t next_id;
    bool dead;
    unsigned busy;       /* callbacks running */
    bool freeing;        /* auth_client_free called from a callback */
    uint8_t *rbuf;       /* AUTHP_RECV_MAX + 1: one answer (a cert answer holds a key) */
    struct authp_vms_resp *vms;  /* the last AUTHP_RESP_VMS, lent to its callback */
    /* at most one certificate request at a time */
    auth_cert_cb cert_cb;
    void *cert_ctx;
    uint32_t cert_id;
    bool cert_pending, cert_failed;
    char cert_why[64];
    auth_ban_cb on_ban;  /* AUTHP_EVT_BAN from the helper */
    void *on_ban_ctx;
    auth_note_cb note_cb;    /* AUTHP_NOTE_IDLE handler */
    void *note_ctx;
    /* at most one reload request at a time; the descriptors of the last
     * datagram read (only an AUTHP_RESP_RELOAD may carry any) */
    auth_reload_cb reload_cb;
    void *reload_ctx;
    uint32_t reload_id;
    bool reload_pending, reload_failed;
    int rfds[AUTHP_RELOAD_FDS_MAX];
    unsigned n_rfds;
};

/* Close the descriptors that came with the last datagram. */
static void drop_rfds(struct auth_client *ac)
{
    for (unsigned i = 0; i < ac->n_rfds; i++)
        close(ac->rfds[i]);
    ac->n_rfds = 0;
}

/* Keep the SCM_RIGHTS descriptors of mh in ac->rfds (a truncated or odd
 * control message: all closed, and *bad set). */
static void take_rfds(struct auth_client *ac, struct msghdr *mh, bool *bad)
{
    ac->n_rfds = 0;
    *bad = (mh->msg_flags & MSG_CTRUNC) != 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
            c->cmsg_len < CMSG_LEN(0)) {
            *bad = true;
            continue;
        }
        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < n; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof fd, sizeof fd);
            if (ac->n_rfds < AUTHP_RELOAD_FDS_MAX)
                ac->rfds[ac->n_rfds++] = fd;
            else
                close(fd);
        }
    }
}

static void pend_drop_msg(struct auth_client *ac, struct pend *p)
{
    if (p->msg) {
        explicit_bzero(p->msg, p->msglen);
        free(p->msg);
        p->msg = NULL;
        p->msglen = 0;
        ac->n_unsent--;
    }
    if (p->pass_fd >= 0) {
        close(p->pass_fd);
        p->pass_fd = -1;
    }
}

static void pend_unlink(struct auth_client *ac, struct pend *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        ac->head = p->next;
    if (p->next)
        p->next->prev = p->prev;
    else
        ac->tail = p->prev;
    p->prev = p->next = NULL;
}

static void pend_free(struct auth_client *ac, struct pend *p)
{
    pend_unlink(ac, p);
    pend_drop_msg(ac, p);
    free(p);
}

static void arm_defer(struct auth_client *ac)
{
    if (!ev_is_active(&ac->defer)) {
        ev_timer_set(&ac->defer, 0., 0.);
        ev_timer_start(ac->loop, &ac->defer);
    }
}

/* Answer p locally with AUTHP_ERROR why, from the defer timer. */
static void pend_fail(struct auth_client *ac, struct pend *p, const char *why)
{
    pend_drop_msg(ac, p);
    p->ready = true;
    memset(&p->resp, 0, sizeof p->resp);
    p->resp.id = p->user_id;
    p->resp.result = AUTHP_ERROR;
    snprintf(p->resp.detail, sizeof p->resp.detail, "%s", why);
    arm_defer(ac);
}

/* The sent, not yet answered entry with this wire id, or NULL. */
static struct pend *pend_find(struct auth_client *ac, uint32_t wire_id)
{
    struct pend *p = ac->head;
    while (p && (p->ready || p->msg || p->wire_id != wire_id))
        p = p->next;
    return p;
}

enum { RA_GONE = -1, RA_NONE = 0, RA_ANSWER = 1, RA_SKIP = 2, RA_CERT = 3, RA_NOTE = 4,
       RA_RELOAD = 5 };

/* Receive one answer datagram: RA_ANSWER with *resp filled, RA_NONE when
 * there is none right now, RA_SKIP for a malformed one, RA_GONE at EOF or on
 * an error (*why says which).  A peer that died with requests unread first
 * shows as ECONNRESET and only then gives up the answers it queued before
 * dying: so that error is noted in *reset and reading goes on. */
static int recv_answer(struct auth_client *ac, struct authp_login_resp *resp, bool *reset,
                       const char **why, size_t *certlen)
{
    uint8_t *buf = ac->rbuf;
    for (;;) {
        struct iovec iov = { .iov_base = buf, .iov_len = AUTHP_RECV_MAX + 1 };
        union {
            struct cmsghdr align;
            char b[CMSG_SPACE(sizeof(int) * AUTHP_RELOAD_FDS_MAX)];
        } ctl;
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
                             .msg_control = ctl.b, .msg_controllen = sizeof ctl.b };
        ssize_t n = recvmsg(ac->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        bool badfds = false;
        if (n >= 0)
            take_rfds(ac, &mh, &badfds);
        if (n > 0 && authp_peek_type(buf, (size_t)n) == AUTHP_RESP_RELOAD && !badfds) {
            *certlen = (size_t)n;      /* in ac->rbuf, fds in ac->rfds: reload_answer() */
            return RA_RELOAD;
        }
        drop_rfds(ac);                 /* nothing else carries descriptors */
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == ECONNRESET && !*reset) {
                *reset = true;
                continue;
            }
            if ((errno == EAGAIN || errno == EWOULDBLOCK) && !*reset)
                return RA_NONE;
            *why = *reset ? "connection reset" : strerror(errno);
            return RA_GONE;
        }
        if (n == 0) {
            *why = *reset ? "connection reset" : "end of file";
            return RA_GONE;
        }
        if (authp_peek_type(buf, (size_t)n) == AUTHP_RESP_CERT) {
            *certlen = (size_t)n;      /* left in ac->rbuf for cert_answer() */
            return RA_CERT;
        }
        if (authp_peek_type(buf, (size_t)n) == AUTHP_EVT_BAN) {
            struct authp_ban_evt e;
            if (authp_decode_ban_evt(buf, (size_t)n, &e) != 0)
                log_warn("malformed ban event from the auth helper (%zd bytes), ignored", n);
            else if (ac->on_ban)
                ac->on_ban(ac->on_ban_ctx, &e);
            return RA_SKIP;
        }
        if (authp_peek_type(buf, (size_t)n) == AUTHP_NOTE_IDLE) {
            *certlen = (size_t)n;      /* left in ac->rbuf for idle_note() */
            return RA_NOTE;
        }
        if (authp_peek_type(buf, (size_t)n) == AUTHP_RESP_VMS) {
            /* a VM list: the callback sees it through resp->vms */
            if (!ac->vms && !(ac->vms = malloc(sizeof *ac->vms)))
                return RA_SKIP;
            if (authp_decode_vms_resp(buf, (size_t)n, ac->vms) != 0) {
                log_warn("malformed VM list from the auth helper (%zd bytes), ignored", n);
                return RA_SKIP;
            }
            memset(resp, 0, sizeof *resp);
            resp->id = ac->vms->id;
            resp->result = ac->vms->result;
            memcpy(resp->detail, ac->vms->detail, sizeof resp->detail);
            resp->vms = ac->vms;
            return RA_ANSWER;
        }
        if (authp_decode_login_resp(buf, (size_t)n, resp) != 0) {
            log_warn("malformed answer from the auth helper (%zd bytes), ignored", n);
            return RA_SKIP;
        }
        return RA_ANSWER;
    }
}

/* Keep an answer for delivery from the defer timer (the helper is going
 * away and its socket is about to be closed). */
static void pend_keep_answer(struct auth_client *ac, const struct authp_login_resp *resp)
{
    struct pend *p = pend_find(ac, resp->id);
    if (p) {
        p->resp = *resp;
        p->resp.id = p->user_id;
        if (resp->vms) {                /* the list would not outlive the next answer */
            p->resp.vms = NULL;
            p->resp.result = AUTHP_ERROR;
            snprintf(p->resp.detail, sizeof p->resp.detail, "auth helper gone");
        }
        p->ready = true;
        arm_defer(ac);
    }
}

/* The helper is gone (EOF, error): keep the answers it sent before dying,
 * stop watching the socket, close it, and fail every other pending request.
 * Everything is delivered from the defer timer, so this is safe to call
 * from auth_client_submit. */
static void helper_gone(struct auth_client *ac, const char *why)
{
    if (ac->dead)
        return;
    ac->dead = true;
    /* drain what is still queued (bounded: the socket buffer is finite) */
    bool reset = false;
    const char *w2 = NULL;
    struct authp_login_resp resp;
    for (int i = 0; i < 4096; i++) {
        size_t cl = 0;
        int r = recv_answer(ac, &resp, &reset, &w2, &cl);
        if (r == RA_ANSWER)
            pend_keep_answer(ac, &resp);
        else if (r == RA_CERT)
            explicit_bzero(ac->rbuf, cl);   /* too late to use it */
        else if (r == RA_NOTE)
            continue;                       /* the state of a helper that is gone */
        else if (r == RA_RELOAD)
            drop_rfds(ac);
        else if (r != RA_SKIP)
            break;
    }
    if (ac->cert_pending) {
        ac->cert_failed = true;
        snprintf(ac->cert_why, sizeof ac->cert_why, "auth helper gone");
        arm_defer(ac);
    }
    if (ac->reload_pending) {
        ac->reload_failed = true;
        arm_defer(ac);
    }
    log_err("auth helper gone (%s); logins will fail", why);
    ev_io_stop(ac->loop, &ac->rio);
    ev_io_stop(ac->loop, &ac->wio);
    if (ac->fd >= 0) {
        close(ac->fd);
        ac->fd = -1;
    }
    for (struct pend *p = ac->head; p; p = p->next)
        if (!p->ready)
            pend_fail(ac, p, "auth helper gone");
}

/* Forget p and call it back with resp (which may point into p).  Returns
 * true if the client was freed meanwhile: the caller must not touch it. */
static bool deliver(struct auth_client *ac, struct pend *p, const struct authp_login_resp *resp)
{
    struct authp_login_resp r = *resp;
    r.submitted = p->submitted;
    auth_cb cb = p->cb;
    void *ctx = p->ctx;
    pend_free(ac, p);
    ac->busy++;
    cb(ctx, &r);
    ac->busy--;
    if (!ac->freeing)
        return false;
    if (ac->busy == 0) {
        free(ac->rbuf);
        free(ac->vms);
        free(ac);
    }
    return true;
}

/* Hand a certificate answer to whoever asked, once.  Returns true if the
 * client was freed meanwhile. */
static bool deliver_cert(struct auth_client *ac, const struct authp_cert_resp *r)
{
    auth_cert_cb cb = ac->cert_cb;
    void *ctx = ac->cert_ctx;
    ac->cert_pending = ac->cert_failed = false;
    ac->cert_cb = NULL;
    ac->busy++;
    cb(ctx, r);
    ac->busy--;
    if (!ac->freeing)
        return false;
    if (ac->busy == 0) {
        free(ac->rbuf);
        free(ac->vms);
        free(ac);
    }
    return true;
}

/* A certificate answer of len bytes sits in ac->rbuf: decode it in place,
 * deliver it if it is the one we wait for, and wipe the buffer (the key is
 * in it) whatever happens.  Returns true if the client was freed. */
static bool cert_answer(struct auth_client *ac, size_t len)
{
    struct authp_cert_resp r;
    bool freed = false;
    if (authp_decode_cert_resp(ac->rbuf, len, &r) != 0)
        log_warn("malformed certificate answer from the auth helper (%zu bytes), ignored", len);
    else if (!ac->cert_pending || ac->cert_failed || r.id != ac->cert_id)
        log_debug("certificate answer %u nobody waits for, dropped", r.id);
    else
        freed = deliver_cert(ac, &r);
    explicit_bzero(&r, sizeof r);
    if (!freed)
        explicit_bzero(ac->rbuf, len);
    return freed;
}

/* Hand a reload answer (and fds, r->n_ls of them, now the callee's) to
 * whoever asked, once.  Returns true if the client was freed meanwhile. */
static bool deliver_reload(struct auth_client *ac, const struct authp_reload_resp *r, int *fds)
{
    auth_reload_cb cb = ac->reload_cb;
    void *ctx = ac->reload_ctx;
    ac->reload_pending = ac->reload_failed = false;
    ac->reload_cb = NULL;
    ac->busy++;
    cb(ctx, r, fds);
    ac->busy--;
    if (!ac->freeing)
        return false;
    if (ac->busy == 0) {
        free(ac->rbuf);
        free(ac);
    }
    return true;
}

/* A reload answer of len bytes sits in ac->rbuf, its descriptors in
 * ac->rfds: deliver it if it is the one we wait for and every listener
 * came with its socket; otherwise close them. */
static bool reload_answer(struct auth_client *ac, size_t len)
{
    static struct authp_reload_resp r;
    int fds[AUTHP_RELOAD_FDS_MAX];
    unsigned nfds = ac->n_rfds;
    memcpy(fds, ac->rfds, nfds * sizeof *fds);
    ac->n_rfds = 0;
    if (authp_decode_reload_resp(ac->rbuf, len, &r) != 0 || r.n_ls != nfds) {
        log_warn("malformed reload answer from the auth helper (%zu bytes, %u fds), ignored",
                 len, nfds);
    } else if (!ac->reload_pending || ac->reload_failed || r.id != ac->reload_id) {
        log_debug("reload answer %u nobody waits for, dropped", r.id);
    } else {
        return deliver_reload(ac, &r, fds);
    }
    for (unsigned i = 0; i < nfds; i++)
        close(fds[i]);
    return false;
}

/* Deliver entries whose answer is already known (local failures, answers
 * drained when the helper went away). */
static void defer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct auth_client *ac = w->data;
    if (ac->cert_pending && ac->cert_failed) {
        struct authp_cert_resp r = { .id = ac->cert_id, .result = AUTHP_ERROR };
        snprintf(r.detail, sizeof r.detail, "%s", ac->cert_why);
        if (deliver_cert(ac, &r))
            return;
    }
    if (ac->reload_pending && ac->reload_failed) {
        static struct authp_reload_resp r;
        memset(&r, 0, sizeof r);
        r.id = ac->reload_id;
        r.result = AUTHP_ERROR;
        snprintf(r.err, sizeof r.err, "auth helper gone");
        if (deliver_reload(ac, &r, NULL))
            return;
    }
    for (;;) {
        struct pend *p = ac->head;
        while (p && !p->ready)
            p = p->next;
        if (!p || deliver(ac, p, &p->resp))
            return;
    }
}

/* Send one request datagram with fd attached (none when fd < 0), without
 * blocking. */
static ssize_t send_req(int sock, const uint8_t *msg, size_t len, int fd)
{
    struct iovec iov = { .iov_base = (void *)msg, .iov_len = len };
    union {
        struct cmsghdr align;
        char b[CMSG_SPACE(sizeof(int))];
    } ctl;
    memset(&ctl, 0, sizeof ctl);
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
                         .msg_control = ctl.b, .msg_controllen = sizeof ctl.b };
    if (fd < 0) {
        mh.msg_control = NULL;
        mh.msg_controllen = 0;
        return sendmsg(sock, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
    }
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
    return sendmsg(sock, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
}

/* Send queued requests in order until the socket is full. */
static void flush(struct auth_client *ac)
{
    for (struct pend *p = ac->head; p && !ac->dead;) {
        if (!p->msg) {
            p = p->next;
            continue;
        }
        ssize_t n = send_req(ac->fd, p->msg, p->msglen, p->pass_fd);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)
                return;
            helper_gone(ac, strerror(errno));
            return;
        }
        pend_drop_msg(ac, p);
        p = p->next;
    }
    if (ac->n_unsent == 0)
        ev_io_stop(ac->loop, &ac->wio);
}

static void write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    flush(w->data);
}

/* An AUTHP_NOTE_IDLE of len bytes in ac->rbuf: to the handler.  Returns
 * true if the client was freed meanwhile. */
static bool idle_note(struct auth_client *ac, size_t len)
{
    struct authp_idle_note note;
    if (authp_decode_idle_note(ac->rbuf, len, &note) != 0) {
        log_warn("malformed idle note from the auth helper (%zu bytes), ignored", len);
        return false;
    }
    if (!ac->note_cb)
        return false;
    ac->busy++;
    ac->note_cb(ac->note_ctx, &note);
    ac->busy--;
    if (!ac->freeing)
        return false;
    if (ac->busy == 0) {
        free(ac->rbuf);
        free(ac);
    }
    return true;
}

/* Read answers; each goes to the pending entry with its wire id, unless
 * that entry was cancelled (the answer is then dropped). */
static void read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    struct auth_client *ac = w->data;
    for (int i = 0; i < AC_RECV_BURST && !ac->dead; i++) {
        struct authp_login_resp resp;
        bool reset = false;
        const char *why = NULL;
        size_t certlen = 0;
        int r = recv_answer(ac, &resp, &reset, &why, &certlen);
        if (r == RA_NONE)
            return;
        if (r == RA_SKIP)
            continue;
        if (r == RA_NOTE) {
            if (idle_note(ac, certlen))
                return;
            if (!reset)
                continue;
            r = RA_SKIP;
        }
        if (r == RA_CERT || r == RA_RELOAD) {
            if (r == RA_CERT ? cert_answer(ac, certlen) : reload_answer(ac, certlen))
                return;
            if (!reset)
                continue;
            r = RA_SKIP;
        }
        if (r == RA_GONE || reset) {
            /* helper_gone drains the answers still queued behind a reset */
            if (r == RA_ANSWER)
                pend_keep_answer(ac, &resp);
            helper_gone(ac, why ? why : "connection reset");
            return;
        }
        struct pend *p = pend_find(ac, resp.id);
        if (!p) {
            log_debug("answer to request %u nobody waits for, dropped", resp.id);
            continue;
        }
        resp.id = p->user_id;
        if (deliver(ac, p, &resp))
            return;
    }
}

struct auth_client *auth_client_new(struct ev_loop *loop, int fd)
{
    if (!loop || fd < 0)
        return NULL;
    struct auth_client *ac = calloc(1, sizeof *ac);
    if (!ac)
        return NULL;
    ac->rbuf = malloc(AUTHP_RECV_MAX + 1);
    if (!ac->rbuf) {
        free(ac);
        return NULL;
    }
    ac->loop = loop;
    ac->fd = fd;
    ac->next_id = 1;
    ev_io_init(&ac->rio, read_cb, fd, EV_READ);
    ev_io_init(&ac->wio, write_cb, fd, EV_WRITE);
    ev_init(&ac->defer, defer_cb);
    ac->rio.data = ac->wio.data = ac->defer.data = ac;
    ev_io_start(loop, &ac->rio);
    return ac;
}

void auth_client_on_ban(struct auth_client *ac, auth_ban_cb cb, void *ctx)
{
    ac->on_ban = cb;
    ac->on_ban_ctx = ctx;
}

void auth_client_set_first_id(struct auth_client *ac, uint32_t id)
{
    if (ac)
        ac->next_id = id ? id : 1;
}

/* Stops the watchers, closes the socket (the helper then exits), drops
 * every pending request without calling it back. */
void auth_client_free(struct auth_client *ac)
{
    if (!ac || ac->freeing)
        return;
    ev_io_stop(ac->loop, &ac->rio);
    ev_io_stop(ac->loop, &ac->wio);
    ev_timer_stop(ac->loop, &ac->defer);
    while (ac->head)
        pend_free(ac, ac->head);
    if (ac->fd >= 0) {
        close(ac->fd);
        ac->fd = -1;
    }
    ac->dead = true;
    ac->cert_pending = false;
    ac->reload_pending = false;
    drop_rfds(ac);
    explicit_bzero(ac->rbuf, AUTHP_RECV_MAX + 1);
    if (ac->busy) {
        ac->freeing = true;   /* deliver() frees it when the callback returns */
    } else {
        free(ac->rbuf);
        free(ac->vms);
        free(ac);
    }
}

/* One request at a time, sent at once or not at all (a full socket means
 * the helper is swamped: the caller may try again later).  The id comes
 * from the login id sequence, so it never matches a login answer. */
/* The next request id on the wire (never 0: events carry 0). */
static uint32_t take_id(struct auth_client *ac)
{
    uint32_t id = ac->next_id++;
    if (ac->next_id == 0)
        ac->next_id = 1;
    return id;
}

/* Send a request of the kind that is one at a time (certificate, reload):
 * now or never (no queue), so the caller can say EAGAIN.  0, or -1 (errno). */
static int send_single(struct auth_client *ac, const uint8_t *buf, size_t n)
{
    for (;;) {
        if (send(ac->fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0)
            return 0;
        if (errno != EINTR)
            return -1;
    }
}

int auth_client_fetch_cert(struct auth_client *ac, auth_cert_cb cb, void *ctx)
{
    if (!ac || ac->freeing || !cb || ac->dead) {
        errno = EPIPE;
        return -1;
    }
    if (ac->cert_pending) {
        errno = EBUSY;
        return -1;
    }
    uint8_t buf[16];
    uint32_t id = take_id(ac);
    int n = authp_encode_cert_req(id, buf, sizeof buf);
    if (n < 0) {
        errno = EINVAL;
        return -1;
    }
    if (send_single(ac, buf, (size_t)n) != 0)
        return -1;
    ac->cert_pending = true;
    ac->cert_failed = false;
    ac->cert_id = id;
    ac->cert_cb = cb;
    ac->cert_ctx = ctx;
    return 0;
}

int auth_client_reload(struct auth_client *ac, int reread, auth_reload_cb cb, void *ctx)
{
    if (!ac || ac->freeing || !cb || ac->dead) {
        errno = EPIPE;
        return -1;
    }
    if (ac->reload_pending) {
        errno = EBUSY;
        return -1;
    }
    uint8_t buf[16];
    uint32_t id = take_id(ac);
    int n = authp_encode_reload_req(id, reread ? 1 : 0, buf, sizeof buf);
    if (n < 0) {
        errno = EINVAL;
        return -1;
    }
    if (send_single(ac, buf, (size_t)n) != 0)
        return -1;
    ac->reload_pending = true;
    ac->reload_failed = false;
    ac->reload_id = id;
    ac->reload_cb = cb;
    ac->reload_ctx = ctx;
    return 0;
}

/* Queue or send an encoded request (buf, n bytes, wire id ac->next_id) with
 * fd attached (none when fd < 0); user_id is echoed in the answer.  Wipes
 * buf.  0, or -1 (nothing queued). */
static int submit_msg(struct auth_client *ac, uint8_t *buf, int n, uint32_t user_id, int peer_fd,
                      auth_cb cb, void *ctx)
{
    struct pend *p = calloc(1, sizeof *p);
    if (!p) {
        explicit_bzero(buf, (size_t)n);
        return -1;
    }
    p->pass_fd = -1;
    p->submitted = ev_now(ac->loop);
    p->wire_id = take_id(ac);
    p->user_id = user_id;
    p->cb = cb;
    p->ctx = ctx;
    p->prev = ac->tail;
    if (ac->tail)
        ac->tail->next = p;
    else
        ac->head = p;
    ac->tail = p;

    bool queue = false;
    if (ac->dead) {
        pend_fail(ac, p, "auth helper gone");
    } else if (ac->n_unsent > 0) {
        queue = true;     /* keep the order: others are waiting */
    } else {
        for (;;) {
            ssize_t w = send_req(ac->fd, buf, (size_t)n, peer_fd);
            if (w >= 0)
                break;
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)
                queue = true;
            else
                helper_gone(ac, strerror(errno));
            break;
        }
    }
    if (queue) {
        if (ac->n_unsent >= AC_OUTQ_MAX) {
            pend_fail(ac, p, "auth queue full");
        } else if (peer_fd >= 0 && (p->pass_fd = fcntl(peer_fd, F_DUPFD_CLOEXEC, 3)) < 0) {
            pend_fail(ac, p, "cannot keep the viewer's socket");
        } else if (!(p->msg = malloc((size_t)n))) {
            close(p->pass_fd);
            p->pass_fd = -1;
            pend_fail(ac, p, "out of memory");
        } else {
            memcpy(p->msg, buf, (size_t)n);
            p->msglen = (size_t)n;
            ac->n_unsent++;
            ev_io_start(ac->loop, &ac->wio);
        }
    }
    explicit_bzero(buf, (size_t)n);
    return 0;
}

int auth_client_submit(struct auth_client *ac, const struct authp_login_req *req,
                       int peer_fd, auth_cb cb, void *ctx)
{
    if (!ac || ac->freeing || !req || !cb || peer_fd < 0)
        return -1;
    struct authp_login_req wire = *req;
    wire.id = ac->next_id;
    uint8_t buf[AUTHP_MAX_MSG];
    int n = authp_encode_login_req(&wire, buf, sizeof buf);
    explicit_bzero(&wire, sizeof wire);
    if (n < 0)
        return -1;
    return submit_msg(ac, buf, n, req->id, peer_fd, cb, ctx);
}

int auth_client_vms(struct auth_client *ac, const struct authp_login_req *req, int peer_fd,
                    auth_cb cb, void *ctx)
{
    if (!ac || ac->freeing || !req || !cb || peer_fd < 0)
        return -1;
    struct authp_login_req wire = *req;
    wire.id = ac->next_id;
    uint8_t buf[AUTHP_MAX_MSG];
    int n = authp_encode_vms_req(&wire, buf, sizeof buf);
    explicit_bzero(&wire, sizeof wire);
    if (n < 0)
        return -1;
    return submit_msg(ac, buf, n, req->id, peer_fd, cb, ctx);
}

int auth_client_qmp(struct auth_client *ac, const struct authp_qmp_req *req, int fd,
                    auth_cb cb, void *ctx)
{
    if (!ac || ac->freeing || !req || !cb)
        return -1;
    struct authp_qmp_req wire = *req;
    wire.id = ac->next_id;
    uint8_t buf[AUTHP_MAX_MSG];
    int n = authp_encode_qmp_req(&wire, buf, sizeof buf);
    explicit_bzero(&wire, sizeof wire);
    if (n < 0)
        return -1;
    return submit_msg(ac, buf, n, req->id, fd, cb, ctx);
}

int auth_client_power(struct auth_client *ac, const struct authp_power_req *req, int fd,
                      auth_cb cb, void *ctx)
{
    if (!ac || ac->freeing || !req || fd < 0)
        return -1;
    struct authp_power_req wire = *req;
    wire.id = req->action == AUTHP_PWR_FORGET ? 0 : ac->next_id;
    uint8_t buf[AUTHP_MAX_MSG];
    int n = authp_encode_power_req(&wire, buf, sizeof buf);
    if (n < 0)
        return -1;
    if (req->action != AUTHP_PWR_FORGET)
        return cb ? submit_msg(ac, buf, n, req->id, fd, cb, ctx) : -1;
    if (ac->dead)
        return -1;
    for (;;) {                          /* never answered: best effort, like idle reports */
        ssize_t w = send_req(ac->fd, buf, (size_t)n, fd);
        if (w >= 0)
            return 0;
        if (errno != EINTR)
            return -1;
    }
}

int auth_client_report_idle(struct auth_client *ac, int peer_fd, const char *rhost)
{
    if (!ac || ac->freeing || ac->dead || !rhost || peer_fd < 0)
        return -1;
    struct authp_idle_req q = { .id = 0 };
    if (snprintf(q.rhost, sizeof q.rhost, "%s", rhost) >= (int)sizeof q.rhost)
        return -1;
    uint8_t buf[AUTHP_MAX_MSG];
    int n = authp_encode_idle_req(&q, buf, sizeof buf);
    if (n < 0)
        return -1;
    for (;;) {
        ssize_t w = send_req(ac->fd, buf, (size_t)n, peer_fd);
        if (w >= 0)
            return 0;
        if (errno != EINTR)
            return -1;      /* full: dropped; gone: the next submit notices */
    }
}

int auth_client_report_sessions(struct auth_client *ac, const char *vm, unsigned count)
{
    if (!ac || ac->freeing || ac->dead || !vm)
        return -1;
    struct authp_sessions_req q = { .id = 0, .count = count };
    if (snprintf(q.vm, sizeof q.vm, "%s", vm) >= (int)sizeof q.vm)
        return -1;
    uint8_t buf[AUTHP_MAX_MSG];
    int n = authp_encode_sessions_req(&q, buf, sizeof buf);
    if (n < 0)
        return -1;
    for (;;) {
        ssize_t w = send_req(ac->fd, buf, (size_t)n, -1);
        if (w >= 0)
            return 0;
        if (errno != EINTR)
            return -1;
    }
}

void auth_client_on_idle_note(struct auth_client *ac, auth_note_cb cb, void *ctx)
{
    if (!ac)
        return;
    ac->note_cb = cb;
    ac->note_ctx = ctx;
}

unsigned auth_client_pending(const struct auth_client *ac)
{
    unsigned n = 0;
    for (const struct pend *p = ac ? ac->head : NULL; p; p = p->next)
        n += !p->ready;
    return n;
}

void auth_client_cancel(struct auth_client *ac, void *ctx)
{
    if (!ac)
        return;
    for (struct pend *p = ac->head, *next; p; p = next) {
        next = p->next;
        if (p->ctx == ctx)
            pend_free(ac, p);
    }
    if (ac->n_unsent == 0 && !ac->dead)
        ev_io_stop(ac->loop, &ac->wio);
}

bool auth_client_ok(const struct auth_client *ac)
{
    return ac && !ac->dead;
}
