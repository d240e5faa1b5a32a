/* firewall/fw_int.h — internals shared by the firewall sources and its unit tests.
 *
 * The layers:
 *   fw_addr.c    set elements (intervals) from and to struct addr_net
 *                (common/addr.h: the only form of an address that ever
 *                reaches nft text);
 *   fw_render.c  config -> plan (validated, sorted) -> nft text (pure);
 *   fw_live.c    nft's JSON listing -> struct fw_live, and the comparison of
 *                a live table with the plan (pure);
 *   fw_nft.c     libnftables: transactions, apply/remove/ban/...;
 *   fw_cmd.c     the `vmgate firewall` command line. */
#ifndef VMGATE_FW_INT_H
#define VMGATE_FW_INT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/addr.h"
#include "common/config.h"

#define FW_FAMILY        "inet"
#define FW_TABLE         "vmgate"
#define FW_CHAIN         "input"
#define FW_SCHEMA        1
#define FW_PRIO          (-10)
#define FW_DEF_LO        5900
#define FW_DEF_HI        6100
#define FW_BAN_SET_SIZE  65536
#define FW_BAN_MIN_MS    UINT64_C(1000)
#define FW_BAN_MAX_MS    (UINT64_C(365) * 24 * 3600 * 1000)   /* as config's ban_time */
#define FW_MAX_PORTS     1024

/* ---- set elements (fw_addr.c); addresses are common/addr.h's ---- */

/* An element as the kernel holds it: an inclusive interval.  family 0 is a
 * port (in lo[14..15]/hi[14..15]), else 4 or 6. */
struct fw_iv {
    int family;
    uint8_t lo[16], hi[16];
    bool has_timeout;
    uint64_t timeout_s, expires_s;
};
void fw_iv_from_net(const struct addr_net *n, struct fw_iv *iv);
void fw_iv_from_port(unsigned lo, unsigned hi, struct fw_iv *iv);
/* Prefix, bare address, port, or "lo-hi" when not a prefix. */
void fw_iv_str(const struct fw_iv *iv, char *out, size_t cap);
/* The prefix form of iv, if it is one. */
bool fw_iv_to_net(const struct fw_iv *iv, struct addr_net *n);
int fw_iv_cmp(const struct fw_iv *a, const struct fw_iv *b);
bool fw_iv_overlaps(const struct fw_iv *a, const struct fw_iv *b);
bool fw_iv_contains(const struct fw_iv *outer, const struct fw_iv *inner);
bool fw_iv_equal(const struct fw_iv *a, const struct fw_iv *b);

/* ---- the plan: what the config asks for (fw_render.c) ---- */

struct fw_plan {
    uint16_t lo, hi;                      /* protected range */
    uint16_t ports[FW_MAX_PORTS];         /* vmgate's own ports, sorted, unique */
    size_t n_ports;
    struct addr_net *allow4, *allow6;       /* sorted */
    size_t n_allow4, n_allow6;
};

int fw_plan_build(const struct cfg *c, struct fw_plan *p, char *err, size_t errlen);
void fw_plan_free(struct fw_plan *p);
/* Render the table block for a plan.  Returns the length, or -1 (errno
 * ENOSPC) when cap is too small. */
int fw_plan_render(const struct fw_plan *p, char *out, size_t cap);
/* Append the same text to a growable buffer (b->oom on failure). */
struct fw_sb;
void fw_plan_render_sb(const struct fw_plan *p, struct fw_sb *b);
/* The protected range as nft writes it: "5900-6100", or "5901" for one port. */
void fw_plan_range_str(const struct fw_plan *p, char *out, size_t cap);
/* The comment of rule i of the chain, or NULL past the last rule.  The
 * comments carry the protected range, so comparing them finds every
 * config-driven change to the rules. */
const char *fw_rule_comment(const struct fw_plan *p, size_t i, char *buf, size_t cap);
size_t fw_rule_count(void);

/* What fills a set: the config (ports, allowlists), or run time (bans). */
enum fw_elems { FW_EL_NONE, FW_EL_PORTS, FW_EL_ALLOW4, FW_EL_ALLOW6 };

/* The sets this version declares, in the order they are rendered: the
 * renderer writes them from this table and fw_diff() checks a live table
 * against it. */
struct fw_set_def {
    const char *name, *type;
    bool interval, timeout;               /* flags */
    int64_t size;                         /* 0 = unbounded */
    enum fw_elems elems;
    const char *label;                    /* in drift reports (config-filled sets) */
    const char *comment;
};
extern const struct fw_set_def fw_sets[];
extern const size_t fw_n_sets;

/* The elements the plan puts in a set, as intervals: *out is malloc'd (NULL
 * when *n is 0).  0, or -1 when out of memory. */
int fw_plan_elems(const struct fw_plan *p, enum fw_elems which, struct fw_iv **out, size_t *n);

/* Growable text buffer (heap). */
struct fw_sb {
    char *s;
    size_t len, cap;
    bool oom;
};
void fw_sb_printf(struct fw_sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void fw_sb_vprintf(struct fw_sb *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
void fw_sb_free(struct fw_sb *b);

/* ---- what the kernel holds (fw_live.c) ---- */

enum fw_set_kind { FW_SK_PORTS, FW_SK_ADDR4, FW_SK_ADDR6, FW_SK_OTHER };

struct fw_live_set {
    char name[64];
    char type[32];
    bool f_interval, f_timeout, f_other;  /* flags */
    int64_t size;                         /* 0 = unbounded / not printed */
    struct fw_iv *el;
    size_t n_el;
    bool el_bad;                          /* an element we could not read */
};

struct fw_live_counter {
    char name[64];
    uint64_t packets, bytes;
};

struct fw_live_chain {
    char name[64];
    char type[16], hook[16], policy[16];
    bool has_hook;
    int64_t prio;
};

struct fw_live_rule {
    char chain[64];
    char comment[160];
};

struct fw_live {
    bool present;
    struct fw_live_set *sets;         size_t n_sets;
    struct fw_live_counter *counters; size_t n_counters;
    struct fw_live_chain *chains;     size_t n_chains;
    struct fw_live_rule *rules;       size_t n_rules;
    size_t n_other;                   /* maps, quotas, flowtables, ... */
};

/* Fill l from the JSON of `list table inet vmgate`. */
int fw_live_parse(const char *json, struct fw_live *l, char *err, size_t errlen);
void fw_live_free(struct fw_live *l);
const struct fw_live_set *fw_live_find_set(const struct fw_live *l, const char *name);
const struct fw_live_counter *fw_live_find_counter(const struct fw_live *l, const char *name);
/* Parse one set (JSON of `list set ...`) into s. */
int fw_live_parse_set(const char *json, struct fw_live_set *s, char *err, size_t errlen);
void fw_live_set_free(struct fw_live_set *s);

/* Compare a live table with a plan.  *schema_ok tells whether the objects
 * have the layout this version declares (then a refresh can update it in
 * place, keeping bans); report gets one "  - ..." line per difference.
 * Returns the number of differences (0 = in sync). */
int fw_diff(const struct fw_plan *p, const struct fw_live *l, bool *schema_ok,
            struct fw_sb *report);

/* Input-hook base chains with policy drop in tables other than ours, from
 * the JSON of `list chains`: one "family table chain" line each into out.
 * Returns how many. */
int fw_foreign_drops(const char *json, struct fw_sb *out, char *err, size_t errlen);

/* ---- libnftables (fw_nft.c) ---- */

/* Read `table inet vmgate` (l->present false when it is absent). */
int fw_nx_fetch(struct fw_live *l, char *err, size_t errlen);
/* fw_apply_ex() that also counts the bans a full replace carried over
 * (*carried; 0 for the other outcomes). */
int fw_nx_apply(const struct cfg *c, int *what, size_t *carried, char *err, size_t errlen);
/* JSON of `list chains` (malloc'd), for the foreign-drop warning. */
int fw_nx_list_chains(char **json, char *err, size_t errlen);

/* Counters this version declares, with what they count. */
struct fw_counter_def {
    const char *name;
    const char *unit;       /* "connections" or "packets" */
    const char *what;
};
extern const struct fw_counter_def fw_counters[];
extern const size_t fw_n_counters;

#endif
