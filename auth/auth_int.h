/* auth/auth_int.h — declarations shared between the files of auth/ and its
 * unit tests.  Not part of the module's interface: nothing outside auth/ and
 * tests/unit/test_auth*.c should include this. */
#ifndef VMGATE_AUTH_INT_H
#define VMGATE_AUTH_INT_H

#include <sys/types.h>
#include "common/config.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/proto.h"

/* Defaults of the helper's limits. */
#define AUTH_WORKER_TIMEOUT_MS  60000u   /* a worker running longer is killed */
#define AUTH_QUEUE_MAX          256u     /* requests waiting for a free worker */
/* Password file lines longer than this (without the newline) are an error. */
#define AUTH_PWFILE_LINE_MAX    4096u

/* One PAM transaction (pam_start .. pam_authenticate .. pam_acct_mgmt ..
 * pam_end) for user/password on service, with PAM_RHOST = rhost (unset when
 * empty) and PAM's failure delay disabled.  detail gets
 * "pam_authenticate: <pam_strerror> (code N)" on failure, "" on success. */
enum authp_result auth_pam_check(const char *service, const char *user, const char *password,
                                 const char *rhost, char *detail, size_t detaillen);

/* True if user is 1..AUTHP_USER_MAX bytes of [A-Za-z0-9_.@-]: the names a
 * vmgate password file can hold. */
bool auth_pwfile_user_ok(const char *user);

/* Override the helper's worker timeout and queue bound (0 = keep).  Tests
 * use this to exercise timeouts and overload without waiting a minute. */
void auth_helper_set_limits(unsigned timeout_ms, unsigned queue_max);

/* Constant-time equality of two NUL-terminated strings (the time depends only
 * on the lengths). */
bool auth_ct_streq(const char *a, const char *b);

/* CLOCK_MONOTONIC in milliseconds (deadlines, ban windows). */
uint64_t auth_mono_ms(void);

/* Read all of path (at most max bytes, not empty) into buf.  Returns the
 * length, or -1 with why set ("FILE: reason"). */
ssize_t auth_read_bounded(const char *path, uint8_t *buf, size_t max, char *why, size_t whylen);

/* The helper's side of a config reload (auth/reload.c).  start is the
 * config the helper was started with (not owned). */
struct auth_reload;
struct auth_reload *auth_reload_new(const struct cfg *start);
void auth_reload_free(struct auth_reload *r);
/* The config in force (start, or the last one a reload took). */
const struct cfg *auth_reload_cfg(const struct auth_reload *r);
/* Re-read the config file, validate it, bind the new listeners, re-apply
 * the firewall and take it.  0, or -1 with err "FILE:LINE: message" and
 * nothing changed. */
int auth_reload_reread(struct auth_reload *r, char *err, size_t errlen);
/* Send AUTHP_RESP_RELOAD with the config in force and the listeners bound
 * since start on sock (blocking; err non-NULL: the re-read failed).  0 or
 * -1. */
int auth_reload_answer(const struct auth_reload *r, int sock, uint32_t id, const char *err);

#endif
