/* auth/auth.h — the auth helper process and the network side's client of it.
 *
 * auth_helper_start() forks the helper before the network process drops
 * privileges.  The helper keeps what PAM needs (root when started as root),
 * reads AUTHP_REQ_LOGIN datagrams, runs each check in a short-lived worker
 * process (at most cfg->auth_workers at once, the rest queued), so one slow
 * PAM module never delays another login, and answers with
 * AUTHP_RESP_LOGIN.  It checks, in order: the password (PAM service
 * cfg->pam_service, or the yescrypt file cfg->passwd_file), PAM account
 * management, then the VM's users/groups ACL.  PAM's own failure delay is
 * disabled; the gateway delays failures itself, without blocking.
 *
 * The network side uses auth_client: submit a request with a callback, and
 * the answer arrives through the libev loop. */
#ifndef VMGATE_AUTH_H
#define VMGATE_AUTH_H

#include <stdbool.h>
#include <sys/types.h>
#include <ev.h>

#include "auth/proto.h"
#include "common/config.h"

/* Fork the helper.  On success returns 0, sets *fd to the network side's end
 * of the socketpair (non-blocking, close-on-exec) and *pid to the helper's
 * pid.  The helper exits when the other end closes. */
int auth_helper_start(const struct cfg *cfg, int *fd, pid_t *pid);
/* The same with n sockets, one per network process (fds[0..n-1]); the
 * helper answers each request on the socket it came on and exits when all
 * of them are closed.  n is 1..AUTH_SOCKETS_MAX. */
/* one per network process, and one for the supervisor with processes > 1 */
#define AUTH_SOCKETS_MAX (CFG_PROCESSES_MAX + 1)
int auth_helper_start_n(const struct cfg *cfg, int *fds, unsigned n, pid_t *pid);

/* Check one request synchronously, in the calling process (what a worker
 * does).  Exposed for unit tests with pam_wrapper. */
enum authp_result auth_check(const struct cfg *cfg, const struct authp_login_req *req,
                             char *detail, size_t detaillen);

/* ---- network side ---- */
struct auth_client;
typedef void (*auth_cb)(void *ctx, const struct authp_login_resp *resp);

struct auth_client *auth_client_new(struct ev_loop *loop, int fd);
void auth_client_free(struct auth_client *ac);
/* Number requests from id on (default 1).  A restarted network process
 * reuses its predecessor's socket; starting in a range of its own keeps a
 * late answer to a dead process's request from matching a new one. */
void auth_client_set_first_id(struct auth_client *ac, uint32_t id);
/* Submit a login request.  cb(ctx, resp) is called exactly once from the
 * loop, unless auth_client_cancel(ac, ctx) is called first.  If the helper is
 * gone, cb gets AUTHP_ERROR.  Returns 0, or -1 if the request could not be
 * encoded (over-long field). */
int auth_client_submit(struct auth_client *ac, const struct authp_login_req *req,
                       auth_cb cb, void *ctx);
/* Ask the helper for the certificate chain and key (cfg cert = / key =,
 * read with the helper's privileges: SIGHUP after the privilege drop).
 * cb(ctx, resp) is called once from the loop with the PEM texts (AUTHP_OK)
 * or the reason (AUTHP_ERROR); resp's texts live in a buffer that is wiped
 * when cb returns, so cb must build what it needs at once.  Returns 0, or
 * -1 with errno EBUSY (one is already under way), EPIPE (the helper is
 * gone) or EAGAIN (its socket is full). */
struct authp_cert_resp;
typedef void (*auth_cert_cb)(void *ctx, const struct authp_cert_resp *resp);
int auth_client_fetch_cert(struct auth_client *ac, auth_cert_cb cb, void *ctx);
/* Forget every pending request whose ctx matches (the connection closed). */
void auth_client_cancel(struct auth_client *ac, void *ctx);
/* True while the helper is alive and answering. */
bool auth_client_ok(const struct auth_client *ac);

/* ---- password file (auth = file) ---- */
/* Verify user/password against a passwd file of "user:$y$..." lines.
 * Returns AUTHP_OK, AUTHP_BAD_PASSWORD, AUTHP_UNKNOWN_USER (after spending
 * the same hashing time on a dummy hash), or AUTHP_ERROR (unreadable file). */
enum authp_result auth_pwfile_check(const char *file, const char *user, const char *password,
                                    char *detail, size_t detaillen);
/* Set user's password in file (created 0600 if missing), atomically via a
 * temporary file and rename.  Returns 0 or -1 with a message in err. */
int auth_pwfile_set(const char *file, const char *user, const char *password,
                    char *err, size_t errlen);

/* Refuse a password file others could rewrite: writable by group or
 * others, or (as_root: vmgate runs as root) not owned by root.  Returns 0
 * (also when the file is missing), or -1 with a message naming the file. */
int auth_pwfile_check_perms(const char *file, bool as_root, char *err, size_t errlen);

/* ---- ACL ---- */
/* True if user is listed in vm->users or is a member (primary or
 * supplementary, via getpwnam/getgrnam) of one of vm->groups. */
bool auth_acl_allows(const struct cfg_vm *vm, const char *user);

/* `vmgate passwd FILE USER` */
int auth_passwd_cmd(int argc, char **argv);

#endif
