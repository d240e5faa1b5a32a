/* common/loglimit.h — per-source rate limit for log lines.
 *
 * Unauthenticated connections can make the gateway log as fast as they can
 * connect and fail; one source must not flood the log.  Each source (an
 * IPv4 address, an IPv6 /64, or any other string as is) has a token bucket:
 * `burst` lines at once, then `rate` lines a second.  Lines over the limit
 * are counted, and the count is reported as one summary line
 *   "suppressed N lines from SOURCE in the last Ts"
 * once `report_s` seconds have passed since the first suppressed line:
 * before the source's next admitted line, or by loglimit_due().  Pure
 * bookkeeping: the caller passes the time and prints; no I/O.  The table
 * is bounded (cap sources); when full, the source seen longest ago is
 * forgotten (its pending summary is reported by that call). */
#ifndef VMGATE_LOGLIMIT_H
#define VMGATE_LOGLIMIT_H

#include <stdbool.h>
#include <stddef.h>

#define LOGLIMIT_KEY_MAX     64
#define LOGLIMIT_SUMMARY_MAX 160

struct loglimit;

/* NULL on bad arguments (burst 0, rate <= 0, cap 0) or no memory. */
struct loglimit *loglimit_new(unsigned burst, double rate, double report_s, size_t cap);
void loglimit_free(struct loglimit *l);
/* The key a source is limited under: "2001:db8:1:2::/64" for IPv6 (v4-mapped
 * taken as IPv4), the address for IPv4, else the string itself (cut). */
void loglimit_key(const char *source, char key[static LOGLIMIT_KEY_MAX]);
/* May a line from source be logged at now (seconds, monotonic)?  When
 * summary[0] is set on return, log it first (whatever the answer). */
bool loglimit_admit(struct loglimit *l, const char *source, double now,
                    char summary[static LOGLIMIT_SUMMARY_MAX]);
/* One summary that is due (report_s passed since its first suppressed
 * line): true with it in summary, and that source's count reset; false
 * when none is due.  Call until false. */
bool loglimit_due(struct loglimit *l, double now, char summary[static LOGLIMIT_SUMMARY_MAX]);

#endif
