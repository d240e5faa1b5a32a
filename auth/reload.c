/* auth/reload.c — the helper's side of a config reload.
 *
 * After the privilege drop the helper is the only process that keeps root,
 * so it is the one that re-reads the config (which may be root's to read),
 * validates it, binds the listening sockets of new VMs and ports (the
 * network processes may not bind: seccomp), re-applies the firewall table,
 * and switches its own copy (ACLs, QMP paths, PAM settings for the next
 * login).  It then answers every network process that asks with the text
 * it read and the listeners it bound since start (SCM_RIGHTS); each
 * network process parses the same text, so both sides agree on the result.
 *
 * The helper keeps a listener it bound while the config names it, so a
 * network process that asks later (processes > 1, a replacement) still gets
 * it; it closes its copy (and unlinks a socket_dir socket) when a reload
 * drops it.  Listeners bound at start are the network processes' own. */
#include "auth/auth_int.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth/proto.h"
#include "common/addr.h"
#include "common/cfgdiff.h"
#include "common/listen.h"
#include "common/log.h"
#include "firewall/firewall.h"

struct hlsn {
    struct authp_lsn d;
    int fd;
};

struct auth_reload {
    const struct cfg *cur;        /* in force: the start-up config or own */
    struct cfg *own;              /* the last reloaded one (NULL: the start-up one) */
    uint32_t gen;                 /* 1 at start, +1 per reload taken */
    char *text;                   /* the text of own */
    size_t text_len;
    struct hlsn ls[AUTHP_RELOAD_FDS_MAX];
    unsigned n_ls;
};

struct auth_reload *auth_reload_new(const struct cfg *start)
{
    struct auth_reload *r = calloc(1, sizeof *r);
    if (r) {
        r->cur = start;
        r->gen = 1;
    }
    return r;
}

void auth_reload_free(struct auth_reload *r)
{
    if (!r)
        return;
    for (unsigned i = 0; i < r->n_ls; i++)
        close(r->ls[i].fd);
    if (r->own) {
        cfg_free(r->own);
        free(r->own);
    }
    free(r->text);
    free(r);
}

const struct cfg *auth_reload_cfg(const struct auth_reload *r) { return r->cur; }

/* The entry of listener l for the wire. */
static struct authp_lsn lsn_of(const struct cfg_listen *l)
{
    struct authp_lsn d = { .kind = (uint8_t)l->kind, .port = l->port };
    if (l->vm)
        snprintf(d.vm, sizeof d.vm, "%s", l->vm->name);
    return d;
}

/* Is the wire entry d the socket l? */
static bool lsn_is(const struct authp_lsn *d, const struct cfg_listen *l)
{
    if (cfg_lkind_local(d->kind) != cfg_lkind_local(l->kind))
        return false;
    return cfg_lkind_local(d->kind) ? d->kind == l->kind && strcmp(d->vm, l->vm->name) == 0
                                    : d->port == l->port;
}

static bool in_list(const struct cfg_listen *l, const struct cfg_listen *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (cfg_listen_same(l, &v[i]))
            return true;
    return false;
}

/* "FILE:LINE: " for the key of listener l in text (FILE: when not found). */
static void where(const struct cfg *c, const char *text, size_t len, const struct cfg_listen *l,
                  char *out, size_t outsz)
{
    char sec[CFG_NAME_MAX + 8];
    int line;
    if (l->kind == CFG_L_WEB) {
        line = cfg_key_line(text, len, "gateway", "web_port");
    } else {
        snprintf(sec, sizeof sec, "vm %s", l->vm->name);
        line = cfg_key_line(text, len, sec, l->kind == CFG_L_VNC     ? "vnc_port"
                                            : l->kind == CFG_L_SPICE ? "spice_port"
                                                                      : NULL);
    }
    if (line)
        snprintf(out, outsz, "%s:%d: ", c->file, line);
    else
        snprintf(out, outsz, "%s: ", c->file);
}

/* Bind l for config c.  Returns the fd or -1 with err "FILE:LINE: ...". */
static int bind_one(const struct cfg *c, const char *text, size_t len,
                    const struct cfg_listen *l, char *err, size_t errlen)
{
    char why[256], w[CFG_PATH_MAX + 32];
    int fd;
    if (cfg_lkind_local(l->kind)) {
        char path[CFG_PATH_MAX + 1];
        bool perm;
        if (cfg_socket_path(c, l->vm->name, cfg_lkind_ext(l->kind), path, sizeof path) != 0) {
            snprintf(why, sizeof why, "no socket path");
            fd = -1;
        } else {
            fd = addr_listen_unix(c->socket_dir, path, why, sizeof why, &perm);
        }
    } else {
        fd = addr_listen_tcp(c->address, l->port, why, sizeof why);
    }
    if (fd < 0) {
        where(c, text, len, l, w, sizeof w);
        char a[ADDR_PORT_MAX + CFG_NAME_MAX + 24];
        if (cfg_lkind_local(l->kind))
            snprintf(a, sizeof a, "socket_dir/%s.%s", l->vm->name, cfg_lkind_ext(l->kind));
        else
            addr_hostport_str(c->address, l->port, a, sizeof a);
        snprintf(err, errlen, "%scannot listen on %s%s%s: %s", w, a, l->vm ? " for vm " : "",
                 l->vm ? l->vm->name : "", why);
    }
    return fd;
}

int auth_reload_reread(struct auth_reload *r, char *err, size_t errlen)
{
    const struct cfg *old = r->cur;
    const char *file = old->file;
    char *text = malloc(AUTHP_RELOAD_TEXT_MAX + 1);
    struct cfg *nc = calloc(1, sizeof *nc);
    struct cfg_listen *lo = NULL, *ln = NULL;
    int fds[AUTHP_RELOAD_FDS_MAX];
    size_t n_new = 0;
    int rc = -1;
    if (!text || !nc) {
        snprintf(err, errlen, "%s: out of memory", file);
        goto out;
    }
    ssize_t len = auth_read_bounded(file, (uint8_t *)text, AUTHP_RELOAD_TEXT_MAX, err, errlen);
    if (len < 0)
        goto out;
    if (cfg_parse(file, text, (size_t)len, nc, err, errlen) != 0) {
        free(nc);
        nc = NULL;
        goto out;
    }
    char e2[400];
    if (nc->fw.present && fw_validate(nc, e2, sizeof e2) != 0) {
        snprintf(err, errlen, "%s:%d: %s", file, nc->fw.allow_line ? nc->fw.allow_line
                                                                    : nc->fw.line, e2);
        goto out;
    }
    const char *k = cfg_fixed_changed(old, nc);
    if (k) {
        int line = strcmp(k, "firewall") == 0
                       ? cfg_key_line(text, (size_t)len, "firewall", NULL)
                       : cfg_key_line(text, (size_t)len, "gateway", k);
        if (line)
            snprintf(err, errlen, "%s:%d: %s cannot change on reload (restart vmgate)", file,
                     line, strcmp(k, "firewall") == 0 ? "[firewall]" : k);
        else
            snprintf(err, errlen, "%s: %s cannot change on reload (restart vmgate)", file,
                     strcmp(k, "firewall") == 0 ? "[firewall]" : k);
        goto out;
    }
    size_t no = cfg_listeners(old, NULL, 0), nn = cfg_listeners(nc, NULL, 0);
    lo = calloc(no + 1, sizeof *lo);
    ln = calloc(nn + 1, sizeof *ln);
    if (!lo || !ln) {
        snprintf(err, errlen, "%s: out of memory", file);
        goto out;
    }
    cfg_listeners(old, lo, no);
    cfg_listeners(nc, ln, nn);
    /* the helper's listeners that stay, plus the new ones, must fit one answer */
    unsigned keep = 0;
    for (unsigned i = 0; i < r->n_ls; i++)
        for (size_t j = 0; j < nn; j++)
            if (lsn_is(&r->ls[i].d, &ln[j])) {
                keep++;
                break;
            }
    for (size_t j = 0; j < nn; j++) {
        if (in_list(&ln[j], lo, no))
            continue;
        if (keep + n_new >= AUTHP_RELOAD_FDS_MAX) {
            snprintf(err, errlen, "%s: more than %d listeners added since start: restart vmgate",
                     file, AUTHP_RELOAD_FDS_MAX);
            goto out;
        }
        int fd = bind_one(nc, text, (size_t)len, &ln[j], err, errlen);
        if (fd < 0)
            goto out;
        fds[n_new++] = fd;
    }
    /* the firewall last: fw_apply is one transaction, so a failure leaves
     * the old table (and we keep the old config) */
    if (nc->fw.present && fw_can_manage()) {
        int what = 0;
        if (fw_apply_ex(nc, &what, e2, sizeof e2) != 0) {
            snprintf(err, errlen, "%s:%d: firewall: %s", file,
                     nc->fw.allow_line ? nc->fw.allow_line : nc->fw.line, e2);
            goto out;
        }
        log_info("reload: firewall table inet vmgate %s",
                 what == FW_APPLY_NOOP ? "unchanged" : "re-applied");
    }
    /* commit: drop what the new config no longer names, keep the rest */
    for (size_t i = 0; i < no; i++) {
        if (in_list(&lo[i], ln, nn))
            continue;
        for (unsigned j = 0; j < r->n_ls; j++)
            if (lsn_is(&r->ls[j].d, &lo[i])) {
                close(r->ls[j].fd);
                r->ls[j] = r->ls[--r->n_ls];
                break;
            }
        char path[CFG_PATH_MAX + 1];
        /* a socket_dir socket of a VM (or a way in) that is gone: its file
         * too (NAME.vnc, NAME.serial, NAME.spice) */
        if (cfg_lkind_local(lo[i].kind) &&
            cfg_socket_path(old, lo[i].vm->name, cfg_lkind_ext(lo[i].kind), path, sizeof path) == 0 &&
            unlink(path) != 0 && errno != ENOENT)
            log_warn("reload: cannot remove %s: %s", path, strerror(errno));
    }
    size_t f = 0;
    for (size_t j = 0; j < nn; j++)
        if (!in_list(&ln[j], lo, no)) {
            r->ls[r->n_ls].d = lsn_of(&ln[j]);
            r->ls[r->n_ls].fd = fds[f++];
            r->n_ls++;
        }
    n_new = 0;
    /* old listeners that stay keep their wire names, but a port may now
     * belong to another VM or protocol: rename them */
    for (unsigned i = 0; i < r->n_ls; i++)
        for (size_t j = 0; j < nn; j++)
            if (lsn_is(&r->ls[i].d, &ln[j]))
                r->ls[i].d = lsn_of(&ln[j]);
    if (r->own) {
        cfg_free(r->own);
        free(r->own);
    }
    r->own = nc;
    r->cur = nc;
    nc = NULL;
    free(r->text);
    r->text = text;
    r->text_len = (size_t)len;
    text = NULL;
    r->gen++;
    rc = 0;
out:
    for (size_t i = 0; i < n_new; i++)
        close(fds[i]);
    if (nc) {
        cfg_free(nc);
        free(nc);
    }
    free(text);
    free(lo);
    free(ln);
    return rc;
}

int auth_reload_answer(const struct auth_reload *r, int sock, uint32_t id, const char *err)
{
    static struct authp_reload_resp a;
    memset(&a, 0, sizeof a);
    a.id = id;
    a.result = err ? AUTHP_ERROR : AUTHP_OK;
    a.gen = r->gen;
    if (err)
        snprintf(a.err, sizeof a.err, "%s", err);
    a.text = (const uint8_t *)r->text;
    a.text_len = r->text_len;
    a.n_ls = err ? 0 : r->n_ls;
    int fds[AUTHP_RELOAD_FDS_MAX];
    for (unsigned i = 0; i < a.n_ls; i++) {
        a.ls[i] = r->ls[i].d;
        fds[i] = r->ls[i].fd;
    }
    uint8_t *msg = malloc(AUTHP_RELOAD_RESP_MAX);
    if (!msg)
        return -1;
    int n = authp_encode_reload_resp(&a, msg, AUTHP_RELOAD_RESP_MAX);
    if (n < 0) {
        free(msg);
        return -1;
    }
    struct iovec iov = { .iov_base = msg, .iov_len = (size_t)n };
    union {
        struct cmsghdr align;
        char b[CMSG_SPACE(sizeof(int) * AUTHP_RELOAD_FDS_MAX)];
    } ctl;
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
    if (a.n_ls) {
        memset(&ctl, 0, sizeof ctl);
        mh.msg_control = ctl.b;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * a.n_ls);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * a.n_ls);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * a.n_ls);
    }
    /* never block the helper on a network process that does not read:
     * wait up to 2 s for room, then give up (it logs the missing answer) */
    ssize_t w;
    for (int tries = 0;; tries++) {
        w = sendmsg(sock, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w >= 0 || (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) || tries > 20)
            break;
        if (errno != EINTR) {
            struct pollfd p = { .fd = sock, .events = POLLOUT };
            (void)poll(&p, 1, 100);
        }
    }
    int e = errno;
    free(msg);
    if (w != n) {
        log_warn("reload answer %u: send: %s", id, w < 0 ? strerror(e) : "short");
        return -1;
    }
    return 0;
}
