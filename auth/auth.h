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
 * disabled; the gateway delays failures itself, without blocking: the
 * helper answers every failed check at the same time after the request,
 * max(fail_delay, a budget covering its slowest recent check), so the
 * answer's timing does not say which check failed.
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

/* The check for a request that came with the viewer's socket: without a
 * user name from a unix peer (a local user on socket_dir/VM.vnc)
 * auth_check_uid; otherwise the password check, auth_check (an empty user
 * or password fails there like any wrong one, whatever the peer). */
struct auth_peer;
enum authp_result auth_check_peer(const struct cfg *cfg, const struct authp_login_req *req,
                                  const struct auth_peer *peer, char *detail, size_t detaillen);
/* An AUTHP_REQ_VMS, in the calling process (a worker): the same sanity
 * and password check as auth_check (PAM with account management, or the
 * password file), then the names of the VMs with a vnc backend whose
 * users/groups allow the user, in config order, at most AUTHP_VMS_MAX
 * (out->truncated set when there were more).  On AUTHP_OK out->detail is
 * the user's name (log-safe); on a failure the reason (log only).  out->id
 * is kept. */
enum authp_result auth_check_vms(const struct cfg *cfg, const struct authp_login_req *req,
                                 struct authp_vms_resp *out);
/* A login by the connecting uid, no password: the request's user and
 * password must be empty; the socket the viewer came in on must be
 * cfg->socket_dir/VM.vnc (or VM.serial when the VM has `serial`) for the requested VM (so a network process cannot
 * pass some other socket); the uid is resolved to its user name and groups
 * and the VM's users/groups ACL applied (root is the name "root", no
 * bypass).  detail: on AUTHP_OK and AUTHP_NOT_ALLOWED the user's name, on
 * AUTHP_UNKNOWN_USER "uid N", else a reason (log only). */
enum authp_result auth_check_uid(const struct cfg *cfg, const struct authp_login_req *req,
                                 const struct auth_peer *peer, char *detail, size_t detaillen);

/* ---- network side ---- */
struct auth_client;
typedef void (*auth_cb)(void *ctx, const struct authp_login_resp *resp);

struct auth_client *auth_client_new(struct ev_loop *loop, int fd);
void auth_client_free(struct auth_client *ac);
/* Number requests from id on (default 1).  A restarted network process
 * reuses its predecessor's socket; starting in a range of its own keeps a
 * late answer to a dead process's request from matching a new one. */
void auth_client_set_first_id(struct auth_client *ac, uint32_t id);
/* Submit a login request for the viewer connected on peer_fd (sent along
 * with the request, so the helper learns the source itself; the caller
 * keeps its descriptor, a queued request holds a duplicate until sent).
 * cb(ctx, resp) is called exactly once from the loop (resp->submitted: the
 * loop time of this call, for delays measured from the request), unless
 * auth_client_cancel(ac, ctx) is called first.  If the helper is gone, cb
 * gets AUTHP_ERROR.  Returns 0, or -1 if the request could not be encoded
 * (over-long field) or peer_fd is negative. */
int auth_client_submit(struct auth_client *ac, const struct authp_login_req *req,
                       int peer_fd, auth_cb cb, void *ctx);
/* The same for AUTHP_REQ_VMS (req->vm empty): checked like a login; on
 * AUTHP_OK resp->vms is the list (valid during the callback only), a
 * failure comes like a login's. */
int auth_client_vms(struct auth_client *ac, const struct authp_login_req *req, int peer_fd,
                    auth_cb cb, void *ctx);
/* Tell the helper that the viewer on peer_fd (rhost: our view, for the
 * log) held an unauthenticated slot until it was closed for that
 * (AUTHP_REQ_IDLE; counted towards ban_after, by the source the helper
 * reads off the socket).  Best effort, never answered: sent at once if the
 * socket has room, else dropped (a flood that fills the helper socket is
 * already being counted).  0 sent, -1 not. */
int auth_client_report_idle(struct auth_client *ac, int peer_fd, const char *rhost);
/* Ask the helper's QMP broker (auth/qmpb.h) to run operation req->op on
 * req->vm, with fd (the socket to hand off; -1 none) attached.  The answer
 * comes like a login's: AUTHP_OK (detail: the status word for
 * query-status), AUTHP_QMP_REFUSED (QEMU said no; detail its reason) or
 * AUTHP_ERROR (detail why).  Same contract as auth_client_submit. */
int auth_client_qmp(struct auth_client *ac, const struct authp_qmp_req *req, int fd,
                    auth_cb cb, void *ctx);
/* Ask the helper for a power action (or its check) for the principal on
 * fd (a viewer's socket, or a control client's), attached to the request:
 * the helper decides who that is itself (auth/helper.c power_request).
 * Answered like auth_client_qmp (AUTHP_NOT_ALLOWED: the principal may
 * not; detail says why), except AUTHP_PWR_FORGET, which is sent at once
 * if there is room and never answered (cb unused).  0, or -1. */
int auth_client_power(struct auth_client *ac, const struct authp_power_req *req, int fd,
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
/* The helper's ban events (AUTHP_EVT_BAN, never answers to a request):
 * cb(ctx, evt) from the loop for each.  Without a callback they are read
 * and dropped. */
typedef void (*auth_ban_cb)(void *ctx, const struct authp_ban_evt *evt);
void auth_client_on_ban(struct auth_client *ac, auth_ban_cb cb, void *ctx);
/* Tell the helper this process now has count live sessions of vm
 * (AUTHP_REQ_SESSIONS, idle_pause).  Best effort like report_idle: the
 * count is absolute, so a dropped report is mended by the next one.
 * 0 sent, -1 not. */
int auth_client_report_sessions(struct auth_client *ac, const char *vm, unsigned count);
/* Call cb(ctx, note) for every AUTHP_NOTE_IDLE the helper sends (a VM's
 * idle state changed).  One handler; NULL removes it. */
struct authp_idle_note;
typedef void (*auth_note_cb)(void *ctx, const struct authp_idle_note *note);
void auth_client_on_idle_note(struct auth_client *ac, auth_note_cb cb, void *ctx);
/* Config reload (auth/reload.c): ask the helper to re-read the config
 * (reread = 1) or just for the one in force (0).  cb(ctx, resp, fds) is
 * called once from the loop: resp->result AUTHP_OK with the config text
 * and resp->n_ls listeners whose sockets are fds[i] (the callee owns and
 * must close or keep every one), or AUTHP_ERROR with resp->err (fds may
 * be NULL then).  resp lives until cb returns.  Returns 0, or -1 with
 * errno EBUSY (one under way), EPIPE (helper gone) or EAGAIN. */
struct authp_reload_resp;
typedef void (*auth_reload_cb)(void *ctx, const struct authp_reload_resp *resp, int *fds);
int auth_client_reload(struct auth_client *ac, int reread, auth_reload_cb cb, void *ctx);
/* Forget every pending request whose ctx matches (the connection closed). */
void auth_client_cancel(struct auth_client *ac, void *ctx);
/* Requests submitted to the helper (logins, VM lists, QMP, power) that
 * have no answer yet, queued or sent (the metrics' vmgate_auth_queue). */
unsigned auth_client_pending(const struct auth_client *ac);
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
/* The same for the VM's power_users / power_groups (shutdown, reset,
 * reboot, pause, resume: `vmgate vm`, XVP). */
bool auth_power_allows(const struct cfg_vm *vm, const char *user);
/* The same for uid: its name (getpwuid_r) into name (namesz >= 2; "" when
 * the uid has no passwd entry, then false), in vm->users, or one of its
 * groups (getgrouplist: primary and supplementary) named in vm->groups.
 * No exception for root: uid 0 is the user "root". */
bool auth_acl_allows_uid(const struct cfg_vm *vm, uid_t uid, char *name, size_t namesz);

/* `vmgate passwd FILE USER` */
int auth_passwd_cmd(int argc, char **argv);

#endif
