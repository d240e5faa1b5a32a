/* auth/check.c — one login check, start to finish, in the calling process
 * (a helper worker, or a unit test). */
#include "auth/auth.h"
#include "auth/auth_int.h"
#include "auth/peer.h"
#include "common/log.h"

#include <stdio.h>
#include <string.h>

/* A user name we are willing to hand to PAM or the password file: 1..255
 * bytes, no control bytes (0x00-0x1f, 0x7f).  Anything else fails the same
 * way an unknown user does. */
static bool user_sane(const char *user)
{
    size_t n = strnlen(user, AUTHP_USER_MAX + 1);
    if (n == 0 || n > AUTHP_USER_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)user[i];
        if (c < 0x20 || c == 0x7f)
            return false;
    }
    return true;
}

/* The source address as the network side formats it: numeric IPv4/IPv6,
 * maybe with a %scope.  Anything else (it reaches PAM_RHOST and PAM's logs)
 * is refused.  Empty is allowed (PAM_RHOST is then not set). */
static bool rhost_sane(const char *rhost)
{
    size_t n = strnlen(rhost, AUTHP_RHOST_MAX + 1);
    if (n > AUTHP_RHOST_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)rhost[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '.' || c == ':' || c == '%' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* The request's sanity and the password (PAM with account management, or
 * the password file): what a login and a VM list request share. */
static enum authp_result check_request(const struct cfg *cfg, const struct authp_login_req *req,
                                       char *detail, size_t detaillen)
{
    if (!user_sane(req->user)) {
        snprintf(detail, detaillen, "invalid user name");
        return AUTHP_UNKNOWN_USER;
    }
    if (!rhost_sane(req->rhost)) {
        snprintf(detail, detaillen, "invalid source address");
        return AUTHP_ERROR;
    }
    if (strnlen(req->password, sizeof req->password) > AUTHP_PASS_MAX) {
        snprintf(detail, detaillen, "invalid password");
        return AUTHP_BAD_PASSWORD;
    }
    return AUTHP_OK;
}

static enum authp_result check_password(const struct cfg *cfg, const struct authp_login_req *req,
                                        char *detail, size_t detaillen)
{
    switch (cfg->auth) {
    case CFG_AUTH_PAM:
        return auth_pam_check(cfg->pam_service, req->user, req->password, req->rhost,
                              detail, detaillen);
    case CFG_AUTH_FILE:
        if (!cfg->passwd_file || !*cfg->passwd_file) {
            snprintf(detail, detaillen, "auth = file but no passwd_file");
            return AUTHP_ERROR;
        }
        return auth_pwfile_check(cfg->passwd_file, req->user, req->password, detail, detaillen);
    default:
        snprintf(detail, detaillen, "unknown auth method %d", (int)cfg->auth);
        return AUTHP_ERROR;
    }
}

/* Checks, in order: the request's sanity, that the VM exists, the password
 * (PAM with account management, or the password file), then the VM's ACL.
 * Returns the first failure; detail (for the log only) says why. */
enum authp_result auth_check(const struct cfg *cfg, const struct authp_login_req *req,
                             char *detail, size_t detaillen)
{
    char dummy[8];
    if (!detail || detaillen == 0) {
        detail = dummy;
        detaillen = sizeof dummy;
    }
    detail[0] = '\0';
    if (!cfg || !req) {
        snprintf(detail, detaillen, "no config or request");
        return AUTHP_ERROR;
    }
    enum authp_result sane = check_request(cfg, req, detail, detaillen);
    if (sane != AUTHP_OK)
        return sane;

    const struct cfg_vm *vm = req->vm[0] ? cfg_find_vm(cfg, req->vm) : NULL;
    if (!vm) {
        snprintf(detail, detaillen, "no such vm");
        return AUTHP_NOT_ALLOWED;
    }

    enum authp_result r = check_password(cfg, req, detail, detaillen);
    if (r != AUTHP_OK)
        return r;

    if (!auth_acl_allows(vm, req->user)) {
        char usafe[64];
        log_safe(usafe, sizeof usafe, req->user, strlen(req->user));
        /* vm->name comes from the config, which allows only [A-Za-z0-9_.-] */
        snprintf(detail, detaillen, "user %s not in users/groups of vm %s", usafe, vm->name);
        return AUTHP_NOT_ALLOWED;
    }
    return AUTHP_OK;
}

enum authp_result auth_check_uid(const struct cfg *cfg, const struct authp_login_req *req,
                                 const struct auth_peer *peer, char *detail, size_t detaillen)
{
    char dummy[8];
    if (!detail || detaillen == 0) {
        detail = dummy;
        detaillen = sizeof dummy;
    }
    detail[0] = '\0';
    if (!cfg || !req || !peer || peer->kind != AUTH_PEER_UNIX) {
        snprintf(detail, detaillen, "not a unix peer");
        return AUTHP_ERROR;
    }
    if (req->user[0] || req->password[0]) {
        snprintf(detail, detaillen, "credentials on a unix socket");
        return AUTHP_ERROR;
    }
    const struct cfg_vm *vm = req->vm[0] ? cfg_find_vm(cfg, req->vm) : NULL;
    if (!vm) {
        snprintf(detail, detaillen, "no such vm");
        return AUTHP_ERROR;
    }
    /* the socket the peer came in on must be this VM's: NAME.vnc, or
     * NAME.serial / NAME.spice when the VM has a serial console / SPICE
     * (the same ACL for all) */
    char want[CFG_PATH_MAX + 1], want_serial[CFG_PATH_MAX + 1] = "";
    if (vm->serial.kind != CFG_BE_NONE &&
        cfg_socket_path(cfg, vm->name, "serial", want_serial, sizeof want_serial) != 0)
        want_serial[0] = '\0';
    char want_spice[CFG_PATH_MAX + 1] = "";
    if (vm->spice.kind != CFG_BE_NONE &&
        cfg_socket_path(cfg, vm->name, "spice", want_spice, sizeof want_spice) != 0)
        want_spice[0] = '\0';
    if (cfg_socket_path(cfg, vm->name, "vnc", want, sizeof want) != 0 ||
        (strcmp(peer->local, want) != 0 &&
         (!want_serial[0] || strcmp(peer->local, want_serial) != 0) &&
         (!want_spice[0] || strcmp(peer->local, want_spice) != 0))) {
        char got[64];
        log_safe(got, sizeof got, peer->local, strlen(peer->local));
        snprintf(detail, detaillen, "socket %s is not %s", got[0] ? got : "(unnamed)",
                 want[0] ? want : "(no socket_dir)");
        return AUTHP_ERROR;
    }
    char name[AUTHP_USER_MAX + 1];
    bool ok = auth_acl_allows_uid(vm, peer->uid, name, sizeof name);
    if (!name[0]) {
        snprintf(detail, detaillen, "uid %lu", (unsigned long)peer->uid);
        return AUTHP_UNKNOWN_USER;
    }
    snprintf(detail, detaillen, "%s", name);
    return ok ? AUTHP_OK : AUTHP_NOT_ALLOWED;
}

enum authp_result auth_check_peer(const struct cfg *cfg, const struct authp_login_req *req,
                                  const struct auth_peer *peer, char *detail, size_t detaillen)
{
    if (peer && peer->kind == AUTH_PEER_UNIX && req && !req->user[0])
        return auth_check_uid(cfg, req, peer, detail, detaillen);
    return auth_check(cfg, req, detail, detaillen);
}

enum authp_result auth_check_vms(const struct cfg *cfg, const struct authp_login_req *req,
                                 struct authp_vms_resp *out)
{
    if (!out)
        return AUTHP_ERROR;
    uint32_t id = out->id;
    memset(out, 0, sizeof *out);
    out->id = id;
    if (!cfg || !req) {
        snprintf(out->detail, sizeof out->detail, "no config or request");
        return AUTHP_ERROR;
    }
    enum authp_result r = check_request(cfg, req, out->detail, sizeof out->detail);
    if (r == AUTHP_OK && req->vm[0]) {
        snprintf(out->detail, sizeof out->detail, "a VM list request names a vm");
        r = AUTHP_ERROR;
    }
    if (r == AUTHP_OK)
        r = check_password(cfg, req, out->detail, sizeof out->detail);
    if (r != AUTHP_OK)
        return r;
    for (size_t i = 0; i < cfg->n_vms; i++) {
        const struct cfg_vm *vm = &cfg->vms[i];
        if (vm->vnc.kind == CFG_BE_NONE || !auth_acl_allows(vm, req->user))
            continue;
        if (out->n == AUTHP_VMS_MAX) {
            out->truncated = 1;
            break;
        }
        snprintf(out->names[out->n++], sizeof out->names[0], "%s", vm->name);
    }
    log_safe(out->detail, sizeof out->detail, req->user, strlen(req->user));
    out->result = AUTHP_OK;
    return AUTHP_OK;
}
