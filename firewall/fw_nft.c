/* firewall/fw_nft.c — talk to the kernel through libnftables.
 *
 * Every change is one nft text buffer, which libnftables sends as one
 * netlink batch: the kernel applies all of it or none.  Each buffer is run
 * with dry_run first; that reaches the kernel (which checks and aborts the
 * batch), so a refused change is reported before anything is touched.
 * State is read back as JSON (fw_live.c).  Only text built here from parsed
 * binary values (fw_addr.c) and the renderer ever reaches nft. */
#include "firewall/firewall.h"
#include "firewall/fw_int.h"
#include "common/log.h"

#include <nftables/libnftables.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A context with captured output and errors. */
static struct nft_ctx *nx_open(char *err, size_t errlen)
{
    struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);
    if (!ctx) {
        snprintf(err, errlen, "libnftables: cannot create a context");
        return NULL;
    }
    if (nft_ctx_buffer_output(ctx) != 0 || nft_ctx_buffer_error(ctx) != 0) {
        nft_ctx_free(ctx);
        snprintf(err, errlen, "libnftables: cannot capture output");
        return NULL;
    }
    return ctx;
}

/* Reduce nft's multi-line error (location, message, source line, carets)
 * to one line: "MESSAGE (in: SOURCE LINE)".  Permission problems get a
 * plain explanation instead. */
static void nx_error(const char *e, char *err, size_t errlen)
{
    if (!e || !*e) {
        snprintf(err, errlen, "nft failed without a message");
        return;
    }
    if (strstr(e, "Operation not permitted")) {
        snprintf(err, errlen, "permission denied: nftables needs root or CAP_NET_ADMIN");
        return;
    }
    char first[512] = "", src[512] = "";
    const char *p = e;
    int idx = 0;
    while (*p && idx < 2) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len) {
            char line[512];
            if (len >= sizeof line)
                len = sizeof line - 1;
            memcpy(line, p, len);
            line[len] = '\0';
            if (idx == 0) {
                /* drop the "internal:3:5-9: " location: it names our buffer */
                const char *m = strstr(line, "Error: ");
                snprintf(first, sizeof first, "%s", m ? m + 7 : line);
            } else {
                const char *s = line;
                while (*s == ' ' || *s == '\t')
                    s++;
                if (*s && *s != '^' && *s != '~')
                    snprintf(src, sizeof src, "%s", s);
            }
            idx++;
        }
        p = nl ? nl + 1 : p + len;
    }
    char safe1[512], safe2[512];
    log_safe(safe1, sizeof safe1, first, strlen(first));
    log_safe(safe2, sizeof safe2, src, strlen(src));
    if (safe2[0])
        snprintf(err, errlen, "nft: %s (in: %s)", safe1, safe2);
    else
        snprintf(err, errlen, "nft: %s", safe1);
}

/* Run cmds.  json selects JSON output (for list commands); dry runs the
 * batch in check mode.  On success *out (when non-NULL) gets a malloc'd
 * copy of the output. */
static int nx_run(struct nft_ctx *ctx, const char *cmds, bool json, bool dry, char **out,
                  char *err, size_t errlen)
{
    nft_ctx_output_set_flags(ctx, json ? NFT_CTX_OUTPUT_JSON : 0);
    nft_ctx_set_dry_run(ctx, dry);
    int rc = nft_run_cmd_from_buffer(ctx, cmds);
    nft_ctx_set_dry_run(ctx, false);
    const char *o = nft_ctx_get_output_buffer(ctx);   /* reading resets both */
    const char *e = nft_ctx_get_error_buffer(ctx);
    if (rc != 0) {
        nx_error(e, err, errlen);
        return -1;
    }
    if (out) {
        *out = strdup(o ? o : "");
        if (!*out) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    return 0;
}

/* Check, then commit: the dry run reaches the kernel, so when it fails
 * nothing has changed. */
static int nx_commit(struct nft_ctx *ctx, const char *cmds, char *err, size_t errlen)
{
    if (nx_run(ctx, cmds, false, true, NULL, err, errlen) < 0)
        return -1;
    return nx_run(ctx, cmds, false, false, NULL, err, errlen);
}

/* 1/0 from `list tables`, -1 with err. */
static int nx_present(struct nft_ctx *ctx, char *err, size_t errlen)
{
    char *js = NULL;
    if (nx_run(ctx, "list tables", true, false, &js, err, errlen) < 0)
        return -1;
    struct fw_live l;
    int rc = fw_live_parse(js, &l, err, errlen);
    free(js);
    if (rc < 0)
        return -1;
    rc = l.present ? 1 : 0;
    fw_live_free(&l);
    return rc;
}

static int nx_fetch(struct nft_ctx *ctx, struct fw_live *l, char *err, size_t errlen)
{
    char *js = NULL;
    memset(l, 0, sizeof *l);
    if (nx_run(ctx, "list table " FW_FAMILY " " FW_TABLE, true, false, &js, err, errlen) < 0) {
        /* absent, or a real error: tell them apart without parsing strerror */
        char e2[256];
        int p = nx_present(ctx, e2, sizeof e2);
        if (p == 0)
            return 0;
        if (p < 0)
            snprintf(err, errlen, "%s", e2);
        return -1;
    }
    int rc = fw_live_parse(js, l, err, errlen);
    free(js);
    return rc;
}

int fw_nx_fetch(struct fw_live *l, char *err, size_t errlen)
{
    struct nft_ctx *ctx = nx_open(err, errlen);
    if (!ctx)
        return -1;
    int rc = nx_fetch(ctx, l, err, errlen);
    nft_ctx_free(ctx);
    return rc;
}

int fw_nx_list_chains(char **json, char *err, size_t errlen)
{
    struct nft_ctx *ctx = nx_open(err, errlen);
    if (!ctx)
        return -1;
    int rc = nx_run(ctx, "list chains", true, false, json, err, errlen);
    nft_ctx_free(ctx);
    return rc;
}

int fw_table_present(void)
{
    char err[256];
    struct nft_ctx *ctx = nx_open(err, sizeof err);
    if (!ctx)
        return -1;
    int rc = nx_present(ctx, err, sizeof err);
    nft_ctx_free(ctx);
    return rc;
}

/* ---- apply / remove ---- */

static const char replace_prologue[] =
    /* declare (creates it if absent), then delete: works whether or not the
     * table exists; nft 1.0.6 has no `destroy` */
    "table " FW_FAMILY " " FW_TABLE "\n"
    "delete table " FW_FAMILY " " FW_TABLE "\n";

/* Everything vmgate derives from the config: the chain and the sets the
 * config fills.  Ban sets and counters stay. */
static void refresh_prologue(struct fw_sb *b)
{
    fw_sb_printf(b, "flush chain %s %s %s\n", FW_FAMILY, FW_TABLE, FW_CHAIN);
    for (size_t i = 0; i < fw_n_sets; i++)
        if (fw_sets[i].elems != FW_EL_NONE)
            fw_sb_printf(b, "flush set %s %s %s\n", FW_FAMILY, FW_TABLE, fw_sets[i].name);
}

static const char *ban_set(int family) { return family == 4 ? "ban4" : "ban6"; }
static const char *allow_set(int family) { return family == 4 ? "raw_allow4" : "raw_allow6"; }

/* Re-add the live bans of l after a full replace, with the time they had
 * left (whole seconds, as nft's JSON reports them).  Returns how many. */
static size_t carry_bans(const struct fw_live *l, struct fw_sb *b)
{
    static const char *const names[] = { "ban4", "ban6" };
    size_t n = 0;
    for (int k = 0; k < 2; k++) {
        const struct fw_live_set *s = fw_live_find_set(l, names[k]);
        for (size_t i = 0; s && i < s->n_el; i++) {
            const struct fw_iv *e = &s->el[i];
            if (e->family != 4 && e->family != 6)
                continue;
            if (e->has_timeout && e->expires_s < 1)
                continue;
            char a[96];
            fw_iv_str(e, a, sizeof a);
            const char *set = ban_set(e->family);
            if (!e->has_timeout) {
                fw_sb_printf(b, "add element %s %s %s { %s }\n", FW_FAMILY, FW_TABLE, set, a);
            } else {
                uint64_t t = e->timeout_s >= e->expires_s ? e->timeout_s : e->expires_s;
                fw_sb_printf(b, "add element %s %s %s { %s timeout %llus expires %llus }\n",
                             FW_FAMILY, FW_TABLE, set, a, (unsigned long long)t,
                             (unsigned long long)e->expires_s);
            }
            n++;
        }
    }
    return n;
}

int fw_apply(const struct cfg *c, char *err, size_t errlen)
{
    return fw_nx_apply(c, NULL, NULL, err, errlen);
}

int fw_apply_ex(const struct cfg *c, int *what, char *err, size_t errlen)
{
    return fw_nx_apply(c, what, NULL, err, errlen);
}

/* The plan is built (and validated) first; then the live table decides the
 * mode: absent -> install, our layout -> refresh in place (flush the chain
 * and the config-derived sets, re-declare everything; ban sets and counters
 * are left alone), another layout -> replace whole and re-add the bans. */
int fw_nx_apply(const struct cfg *c, int *what, size_t *carried, char *err, size_t errlen)
{
    struct fw_plan p;
    if (fw_plan_build(c, &p, err, errlen) < 0)
        return -1;
    struct nft_ctx *ctx = nx_open(err, errlen);
    if (!ctx) {
        fw_plan_free(&p);
        return -1;
    }
    int mode = -1;
    size_t nbans = 0;
    struct fw_live l;
    struct fw_sb b = { 0 }, rep = { 0 };
    if (nx_fetch(ctx, &l, err, errlen) < 0)
        goto out;
    bool schema_ok = false;
    int ndiff = fw_diff(&p, &l, &schema_ok, &rep);
    if (!l.present) {
        mode = FW_APPLY_INSTALLED;
        fw_sb_printf(&b, "%s", replace_prologue);
    } else if (!schema_ok) {
        mode = FW_APPLY_REPLACED;
        fw_sb_printf(&b, "%s", replace_prologue);
    } else if (ndiff) {
        mode = FW_APPLY_REFRESHED;
        refresh_prologue(&b);
    } else {
        mode = FW_APPLY_NOOP;
        goto out;
    }
    fw_plan_render_sb(&p, &b);
    if (mode == FW_APPLY_REPLACED)
        nbans = carry_bans(&l, &b);
    if (b.oom) {
        snprintf(err, errlen, "out of memory");
        mode = -1;
    } else if (nx_commit(ctx, b.s, err, errlen) < 0) {
        mode = -1;
    }
out:
    fw_live_free(&l);
    fw_sb_free(&b);
    fw_sb_free(&rep);
    fw_plan_free(&p);
    nft_ctx_free(ctx);
    if (mode < 0)
        return -1;
    if (what)
        *what = mode;
    if (carried)
        *carried = nbans;
    return 0;
}

/* Idempotent: nothing to do when the table is absent. */
int fw_remove(char *err, size_t errlen)
{
    struct nft_ctx *ctx = nx_open(err, errlen);
    if (!ctx)
        return -1;
    int rc = nx_present(ctx, err, errlen);
    if (rc == 1)
        rc = nx_commit(ctx, replace_prologue, err, errlen);
    nft_ctx_free(ctx);
    return rc < 0 ? -1 : 0;
}

/* ---- run-time changes: bans and the allowlist ---- */

/* A source as the run-time commands take it: an address or a prefix,
 * IPv4-mapped taken as IPv4; a[] gets its canonical text. */
static int parse_source(const char *addr, struct addr_net *n, char *a, size_t acap, char *err,
                        size_t errlen)
{
    if (addr_net_parse(addr, true, n, err, errlen) < 0)
        return -1;
    addr_net_str(n, a, acap);
    return 0;
}

/* One run-time change to one set: the table as read, the set, and the
 * batch being built. */
struct change {
    struct nft_ctx *ctx;
    struct fw_live l;
    const struct fw_live_set *set;
    struct fw_sb b;
};

/* Read the table and set name of it; error when the table is not installed
 * or the set is not what we declare.  Call change_end() either way. */
static int change_begin(struct change *ch, const char *name, char *err, size_t errlen)
{
    memset(ch, 0, sizeof *ch);
    ch->ctx = nx_open(err, errlen);
    if (!ch->ctx || nx_fetch(ch->ctx, &ch->l, err, errlen) < 0)
        return -1;
    if (!ch->l.present) {
        snprintf(err, errlen, "table %s %s is not installed (run `vmgate firewall apply`)",
                 FW_FAMILY, FW_TABLE);
        return -1;
    }
    ch->set = fw_live_find_set(&ch->l, name);
    if (!ch->set || !ch->set->f_interval) {
        snprintf(err, errlen, "table %s %s has no usable set %s (run `vmgate firewall apply`)",
                 FW_FAMILY, FW_TABLE, name);
        return -1;
    }
    return 0;
}

/* rc 0: commit the batch (dry run first).  Frees everything; returns the
 * final result. */
static int change_end(struct change *ch, int rc, char *err, size_t errlen)
{
    if (rc == 0 && ch->b.oom) {
        snprintf(err, errlen, "out of memory");
        rc = -1;
    } else if (rc == 0) {
        rc = nx_commit(ch->ctx, ch->b.s, err, errlen);
    }
    fw_live_free(&ch->l);
    fw_sb_free(&ch->b);
    if (ch->ctx)
        nft_ctx_free(ch->ctx);
    return rc;
}

static void human_secs(uint64_t s, char *out, size_t cap)
{
    if (s >= 86400 && s % 3600 == 0)
        snprintf(out, cap, "%llud%lluh", (unsigned long long)(s / 86400),
                 (unsigned long long)(s % 86400 / 3600));
    else if (s >= 3600)
        snprintf(out, cap, "%lluh%llum", (unsigned long long)(s / 3600),
                 (unsigned long long)(s % 3600 / 60));
    else if (s >= 60)
        snprintf(out, cap, "%llum%llus", (unsigned long long)(s / 60),
                 (unsigned long long)(s % 60));
    else
        snprintf(out, cap, "%llus", (unsigned long long)s);
}

/* The checks of fw_ban against the live table: the allowlist of the
 * family is never banned; a different ban may not overlap.  0 (with
 * *exists when this very ban is there), or -1 with err. */
static int ban_fits(const struct fw_live *l, const struct fw_live_set *bans,
                    const struct addr_net *n, const char *a, bool *exists, char *err,
                    size_t errlen)
{
    struct fw_iv iv;
    fw_iv_from_net(n, &iv);
    const struct fw_live_set *as = fw_live_find_set(l, allow_set(n->family));
    for (size_t i = 0; as && i < as->n_el; i++) {
        if (fw_iv_overlaps(&as->el[i], &iv)) {
            char e[96];
            fw_iv_str(&as->el[i], e, sizeof e);
            snprintf(err, errlen, "%s is in the allowlist (%s), whose sources are never banned; "
                                  "`vmgate firewall deny %s` first", a, e, e);
            return -1;
        }
    }
    *exists = false;
    for (size_t i = 0; i < bans->n_el; i++) {
        const struct fw_iv *e = &bans->el[i];
        if (fw_iv_equal(e, &iv)) {
            *exists = true;
        } else if (fw_iv_overlaps(e, &iv)) {
            char es[96], left[32];
            fw_iv_str(e, es, sizeof es);
            human_secs(e->expires_s, left, sizeof left);
            if (fw_iv_contains(e, &iv))
                snprintf(err, errlen, "%s is already banned as part of %s (%s left); "
                                      "unban %s first to ban it separately", a, es, left, es);
            else
                snprintf(err, errlen, "%s overlaps the ban on %s; unban %s first", a, es, es);
            return -1;
        }
    }
    return 0;
}

/* Accepts an address or prefix (IPv4-mapped taken as IPv4) that is not
 * loopback, does not contain loopback and is not the unspecified address,
 * and a duration of 1 s .. 365 d.  Refuses sources in the live allowlist:
 * those are never banned. */
int fw_ban(const char *addr, uint64_t ms, char *err, size_t errlen)
{
    struct addr_net n;
    char a[64];
    if (parse_source(addr, &n, a, sizeof a, err, errlen) < 0)
        return -1;
    if (addr_net_touches_loopback(&n)) {
        snprintf(err, errlen, "%s %s loopback, which is never banned", a,
                 addr_net_is_loopback(&n) ? "is" : "contains");
        return -1;
    }
    if (addr_net_is_unspecified(&n)) {
        snprintf(err, errlen, "%s is the unspecified address, not a source", a);
        return -1;
    }
    if (ms < FW_BAN_MIN_MS || ms > FW_BAN_MAX_MS) {
        snprintf(err, errlen, "ban time must be between 1s and 365d");
        return -1;
    }
    const char *set = ban_set(n.family);
    struct change ch;
    bool exists;
    int rc = change_begin(&ch, set, err, errlen);
    if (rc == 0 && !ch.set->f_timeout) {
        snprintf(err, errlen, "set %s has no timeouts (run `vmgate firewall apply`)", ch.set->name);
        rc = -1;
    }
    if (rc == 0)
        rc = ban_fits(&ch.l, ch.set, &n, a, &exists, err, errlen);
    if (rc == 0) {
        unsigned long long t = (unsigned long long)ms;
        if (exists)   /* restart the timer portably: delete + add in one batch */
            fw_sb_printf(&ch.b, "add element %s %s %s { %s timeout %llums }\n"
                                "delete element %s %s %s { %s }\n",
                         FW_FAMILY, FW_TABLE, set, a, t, FW_FAMILY, FW_TABLE, set, a);
        fw_sb_printf(&ch.b, "add element %s %s %s { %s timeout %llums }\n", FW_FAMILY, FW_TABLE,
                     set, a, t);
    }
    return change_end(&ch, rc, err, errlen);
}

/* Remove the element equal to addr from the ban or allow set, or (when
 * addr is a prefix) every element inside it.  One that merely contains
 * addr is an error: removing part of an interval is not something nft
 * 1.0.6 does.  Returns 0 removed, 1 nothing there, -1 error. */
static int remove_elems(const char *addr, const char *what, bool ban, char *err, size_t errlen)
{
    struct addr_net n;
    char a[64];
    if (parse_source(addr, &n, a, sizeof a, err, errlen) < 0)
        return -1;
    const char *set = ban ? ban_set(n.family) : allow_set(n.family);
    struct change ch;
    int rc = change_begin(&ch, set, err, errlen);
    struct fw_iv iv;
    fw_iv_from_net(&n, &iv);
    size_t hits = 0;
    for (size_t i = 0; rc == 0 && i < ch.set->n_el; i++) {
        const struct fw_iv *e = &ch.set->el[i];
        char es[96];
        fw_iv_str(e, es, sizeof es);
        if (fw_iv_contains(&iv, e)) {
            /* add first: an element that expired since we read the set
             * would make a bare delete fail the whole batch */
            fw_sb_printf(&ch.b, "add element %s %s %s { %s }\ndelete element %s %s %s { %s }\n",
                         FW_FAMILY, FW_TABLE, set, es, FW_FAMILY, FW_TABLE, set, es);
            hits++;
        } else if (fw_iv_overlaps(e, &iv)) {
            snprintf(err, errlen, "%s is inside %s %s; %s %s instead", a, what, es,
                     ban ? "unban" : "deny", es);
            rc = -1;
        }
    }
    if (rc == 0 && !hits) {
        snprintf(err, errlen, "%s was not %s", a, ban ? "banned" : "in the allowlist");
        rc = 1;
    }
    return change_end(&ch, rc, err, errlen);
}

int fw_unban(const char *addr, char *err, size_t errlen)
{
    return remove_elems(addr, "the ban on", true, err, errlen);
}

int fw_deny(const char *cidr, char *err, size_t errlen)
{
    return remove_elems(cidr, "the allowed range", false, err, errlen);
}

/* Accepts a non-loopback address or prefix, not the unspecified address.
 * One already covered by an allowed range is a success that changes
 * nothing; a partial overlap is an error (nft refuses overlapping
 * intervals, and silently merging would surprise a later deny). */
int fw_allow(const char *cidr, char *err, size_t errlen)
{
    struct addr_net n;
    char a[64];
    if (parse_source(cidr, &n, a, sizeof a, err, errlen) < 0)
        return -1;
    if (addr_net_is_loopback(&n)) {
        snprintf(err, errlen, "%s is loopback, which is always allowed", a);
        return -1;
    }
    if (addr_net_is_unspecified(&n)) {
        snprintf(err, errlen, "%s is the unspecified address, not a source", a);
        return -1;
    }
    const char *set = allow_set(n.family);
    struct change ch;
    int rc = change_begin(&ch, set, err, errlen);
    struct fw_iv iv;
    fw_iv_from_net(&n, &iv);
    for (size_t i = 0; rc == 0 && i < ch.set->n_el; i++) {
        const struct fw_iv *e = &ch.set->el[i];
        char es[96];
        fw_iv_str(e, es, sizeof es);
        if (fw_iv_contains(e, &iv)) {
            snprintf(err, errlen, "%s is already allowed (by %s)", a, es);
            rc = 1;
        } else if (fw_iv_overlaps(e, &iv)) {
            snprintf(err, errlen, "%s overlaps the allowed range %s; deny %s first", a, es, es);
            rc = -1;
        }
    }
    if (rc == 0)
        fw_sb_printf(&ch.b, "add element %s %s %s { %s }\n", FW_FAMILY, FW_TABLE, set, a);
    return change_end(&ch, rc, err, errlen);
}
