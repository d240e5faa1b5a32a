/* proxy/proxy_int.h — what the connection core (core.c) and the protocols
 * share with proxy.c inside proxy/.  Not for other folders. */
#ifndef VMGATE_PROXY_INT_H
#define VMGATE_PROXY_INT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "auth/proto.h"
#include "common/log.h"
#include "proxy/proxy.h"

/* Why a connection ended: set once by the first failure (the first reason
 * wins); the event callback on the stack destroys the connection and logs
 * it at that level. */
struct conn_end {
    bool dead;
    enum log_level level;
    char why[256];
};
void conn_end_set(struct conn_end *e, enum log_level lvl, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* One connection log line: "conn=ID vm=VM [user=USER ]from=RHOST: MESSAGE".
 * user is passed through log_safe_word(); NULL (not logged in yet) leaves
 * it out, and then the line counts against rhost's pre-login rate limit
 * (common/loglimit.h: 20 lines, then 1/s, summaries every 10 s). */
void proxy_conn_log(enum log_level lvl, uint64_t id, const char *vm, const char *user,
                    const char *rhost, const char *fmt, va_list ap)
    __attribute__((format(printf, 6, 0)));

/* The reason a failed login gets in the log (never sent to a viewer). */
const char *proxy_login_reason(enum authp_result r);
/* The fail_delay timer's length in seconds (a zero delay still goes
 * through the timer, so a failure is never answered synchronously). */
double proxy_fail_delay(const struct proxy *px);
/* What is left of fail_delay counted from submitted (the loop time the
 * login request was submitted, authp_login_resp.submitted): the auth
 * helper already holds failures until fail_delay after the request, so
 * this is usually the minimum; it still delays the failures the helper
 * answers at once (overloaded, gone). */
double proxy_fail_delay_from(const struct proxy *px, double submitted);

/* Unauthenticated connections counted under source key skey
 * (proxy_source_key), every protocol (core.c). */
unsigned conn_unauth_from(const struct proxy *px, const char *skey);
/* The global cap is full: evict an unauthenticated connection for a new
 * one from rhost (source key skey), as proxy_pick_evict chooses, logging
 * it (rate-limited).  True if a slot was freed (core.c). */
bool conn_evict_for(struct proxy *px, const char *rhost, const char *skey);

/* c ended its handshake in failure of kind k: counted once per connection
 * (core.c). */
struct conn;
void conn_hs_failed(struct conn *c, enum proxy_hs_kind k);

/* Close every connection (core.c). */
void conn_close_all(struct proxy *px, const char *why);

#endif
