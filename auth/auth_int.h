/* auth/auth_int.h — declarations shared between the files of auth/ and its
 * unit tests.  Not part of the module's interface: nothing outside auth/ and
 * tests/unit/test_auth*.c should include this. */
#ifndef VMGATE_AUTH_INT_H
#define VMGATE_AUTH_INT_H

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

#endif
