/* auth/fwguard.h — the auth helper's firewall duties.
 *
 * The helper is the part of vmgate that keeps root, so it is the one that
 * (a) turns repeated failed logins into kernel bans (bans.h does the
 * counting, firewall/ the nftables set update) and (b) puts `table inet
 * vmgate` back when something deletes it (Debian's nftables.service runs
 * `flush ruleset` on reload).  Both only happen when the config has a
 * [firewall] section and the helper runs as root. */
#ifndef VMGATE_FWGUARD_H
#define VMGATE_FWGUARD_H

#include <stdbool.h>
#include <stdint.h>

#include "auth/proto.h"
#include "common/config.h"

struct fwguard;

/* NULL when there is nothing to guard (no [firewall], not root) — every
 * function below accepts NULL and does nothing. */
struct fwguard *fwguard_new(const struct cfg *cfg);
void fwguard_free(struct fwguard *g);
/* A config reload: restore the table from cfg from now on (the ban
 * counters keep the thresholds they started with). */
void fwguard_set_cfg(struct fwguard *g, const struct cfg *cfg);
/* A descriptor to poll for POLLIN, or -1. */
int fwguard_fd(const struct fwguard *g);
/* Milliseconds until fwguard_tick() wants to run, or -1. */
int fwguard_timeout(const struct fwguard *g);
/* Call when fwguard_fd() is readable or the timeout passed. */
void fwguard_tick(struct fwguard *g);
/* Who hears of bans: fn(ctx, key, true, until) when a source key is put in
 * the ban set (until: wall clock, ms since the epoch), fn(ctx, key, false,
 * now) when that ban's time is over (the kernel set drops the element by
 * itself; fwguard_tick notices when).  The auth helper forwards both to the
 * network processes (AUTHP_EVT_BAN). */
typedef void (*fwguard_ban_fn)(void *ctx, const char *key, bool banned, uint64_t until_ms);
void fwguard_on_ban(struct fwguard *g, fwguard_ban_fn fn, void *ctx);
/* A login from rhost ended with result (counted when it is a failure).
 * A source inside proxy_protocol (a balancer's own address) is never
 * counted: banning it would ban every viewer behind it. */
void fwguard_result(struct fwguard *g, const char *rhost, enum authp_result result);
/* A connection from rhost held an unauthenticated slot until it was closed
 * for that (AUTHP_REQ_IDLE): counted like a failed login. */
void fwguard_idle(struct fwguard *g, const char *rhost);

#endif
