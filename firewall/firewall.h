/* firewall/firewall.h — vmgate's nftables policy for the raw console ports.
 *
 * vmgate owns exactly one table, `table inet vmgate`, with one input base
 * chain at priority filter - 10 and policy accept.  It
 *   - accepts loopback (only this host may reach QEMU's raw ports);
 *   - drops banned sources (sets ban4/ban6, kernel timeouts) on vmgate's ports;
 *   - accepts vmgate's own ports (every vnc_port / spice_port), also when they
 *     lie inside the protected range;
 *   - lets the [firewall] allow CIDRs reach the protected range;
 *   - rejects everything else to the protected range with a TCP reset;
 * and counts each outcome in a named counter.  See docs/firewall.md.
 *
 * Errors are returned as text in the caller's buffer; nothing here prints
 * except fw_cmd().  Every change is one atomic nftables transaction, checked
 * with a dry run first, so a refused change leaves the kernel as it was.
 * Addresses are validated in C before any text reaches nft.
 *
 * Needs CAP_NET_ADMIN for everything but fw_render()/fw_validate(). */
#ifndef VMGATE_FIREWALL_H
#define VMGATE_FIREWALL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/config.h"

/* Check the [firewall] settings and the VM ports as the firewall will use
 * them: protect range, each allow CIDR (an address, a prefix no longer than
 * its family, not loopback, no two overlapping).  0, or -1 with a message
 * in err.  `vmgate check` may call it too. */
int fw_validate(const struct cfg *c, char *err, size_t errlen);

/* Render the whole `table inet vmgate { ... }` block for the config, as nft
 * text (pure: no I/O).  Returns its length, or -1 with errno EINVAL when the
 * config does not validate (see fw_validate) or ENOSPC when cap is too small. */
int fw_render(const struct cfg *c, char *out, size_t cap);

/* Make the kernel's table match the config, in one transaction checked by
 * a dry run first.  An everyday apply keeps live bans and counters; only a
 * missing or differently laid out table is replaced whole (bans carried
 * over with their remaining time).  Applying twice is a no-op.  Run-time
 * `allow` entries not in the config are removed.  Returns 0, or -1 with
 * err set (then nothing changed). */
int fw_apply(const struct cfg *c, char *err, size_t errlen);

/* What fw_apply_ex() did. */
enum {
    FW_APPLY_NOOP = 0,      /* the table already matched the config */
    FW_APPLY_INSTALLED = 1, /* the table was absent and has been created */
    FW_APPLY_REFRESHED = 2, /* rules, ports and allowlist rewritten; bans and counters kept */
    FW_APPLY_REPLACED = 3,  /* layout differed: table recreated, live bans carried over */
};
/* fw_apply() that also says what it did (*what = FW_APPLY_*; may be NULL). */
int fw_apply_ex(const struct cfg *c, int *what, char *err, size_t errlen);

/* Delete the table, bans and all (idempotent: 0 also when it was not
 * there).  0, or -1 with err set. */
int fw_remove(char *err, size_t errlen);

/* Is `table inet vmgate` in the kernel?  1 yes, 0 no, -1 cannot tell
 * (no CAP_NET_ADMIN, ...).  One netlink dump of the table list: cheap
 * enough to poll every few seconds. */
int fw_table_present(void);

/* Ban a source address or prefix ("203.0.113.7", "2001:db8:1:2::/64",
 * "::ffff:203.0.113.7" is taken as IPv4) on vmgate's ports for ms
 * milliseconds (1 s .. 365 d).  Refuses loopback, the unspecified address,
 * and sources inside the live allowlist.  Banning an address that is
 * already banned restarts its timer; one that overlaps a different ban is
 * refused.  0, or -1 with err set (nothing changed). */
int fw_ban(const char *addr, uint64_t ms, char *err, size_t errlen);
/* Lift a ban.  0 = removed, 1 = was not banned, -1 = error. */
int fw_unban(const char *addr, char *err, size_t errlen);

/* Add / remove a CIDR of the live raw-range allowlist (until the next
 * apply, which restores the config's list).  fw_allow: 0 = added,
 * 1 = already covered.  fw_deny: 0 = removed, 1 = was not allowed.
 * -1 = error. */
int fw_allow(const char *cidr, char *err, size_t errlen);
int fw_deny(const char *cidr, char *err, size_t errlen);

/* Is this peer exempt from failure counting and bans: loopback, or inside
 * one of the config's allow CIDRs?  1 yes, 0 no, -1 not an address. */
int fw_is_exempt(const struct cfg *c, const char *addr);

/* Watch the kernel for the deletion of our table (for example Debian's
 * nftables.service runs `flush ruleset` on reload).  fw_watch_open()
 * returns a non-blocking netlink socket subscribed to nftables events, or
 * -1 with err set.  When it becomes readable call fw_watch_read(): it
 * drains the socket and returns 1 when `table inet vmgate` was deleted (or
 * events were lost), 0 otherwise, -1 on error.  On 1, call fw_apply(). */
int fw_watch_open(char *err, size_t errlen);
int fw_watch_read(int fd);

/* Whether this process may change nftables (CAP_NET_ADMIN effective). */
bool fw_can_manage(void);

/* `vmgate firewall SUBCOMMAND ...`: argv[0] is the subcommand (apply,
 * remove, status, show, allow, deny, ban, unban).  Prints results to
 * stdout, errors to stderr as "vmgate firewall: ...".  Returns the exit
 * code: 0 ok, 1 failure (status: table missing or drifted), 2 usage. */
int fw_cmd(int argc, char **argv);

/* After `ban` / `unban` changed the kernel's ban set: tell the running
 * vmgate (the config's control socket; cfgpath as -c gave it), which
 * writes the audit event and counts the ban.  Set by gateway/main.c (the
 * firewall folder does not know the control socket); NULL: nobody told. */
typedef void (*fw_ban_note_fn)(const char *cfgpath, bool banned, const char *key,
                               uint64_t until_ms);
void fw_set_ban_note(fw_ban_note_fn fn);

#endif
