/* auth/bans.h — failed-login accounting per source, for the kernel ban set.
 *
 * Pure bookkeeping, no I/O: the auth helper reports each failed login with
 * its source address and the time; ban_note_failure() says when the source
 * has reached `after` failures within `window` and for how long to ban it.
 * IPv6 sources are counted per /64 (one host usually owns a whole /64);
 * IPv4 per address.  Each further ban of the same source doubles the time,
 * up to max_ms (24 h).  The table is bounded: when full, the entry seen
 * longest ago is forgotten. */
#ifndef VMGATE_BANS_H
#define VMGATE_BANS_H

#include <stddef.h>
#include <stdint.h>

#define BAN_KEY_MAX 64            /* "ffff:...:ffff::/64" fits */
#define BAN_MAX_MS  (24ull * 3600 * 1000)

struct ban_table;

struct ban_table *ban_table_new(unsigned after, uint64_t window_ms, uint64_t ban_ms,
                                size_t capacity);
void ban_table_free(struct ban_table *t);
/* New thresholds (a reload), from the next failure on: with the same
 * `after` the failures already counted stay; a new `after` starts the
 * counts over (the offences that double a repeat ban stay); after is
 * 1..1000. */
void ban_table_set(struct ban_table *t, unsigned after, uint64_t window_ms, uint64_t ban_ms);
/* Turn a numeric address into the key it is counted (and banned) under:
 * "192.0.2.7" or "2001:db8:1:2::/64" (addr_source_key(), common/addr.h).
 * Returns 0, or -1 if addr is not a numeric address. */
int ban_key(const char *addr, char *key, size_t keylen);
/* Record one failure from addr at now_ms.  Returns the ban duration in ms
 * when this failure crosses the threshold (and resets the count), else 0.
 * key receives the key to ban. */
uint64_t ban_note_failure(struct ban_table *t, const char *addr, uint64_t now_ms,
                          char key[static BAN_KEY_MAX]);

#endif
