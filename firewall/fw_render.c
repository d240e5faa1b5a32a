/* firewall/fw_render.c — from config to nft text (pure: no I/O).
 *
 * fw_plan_build() validates the config and reduces it to what the ruleset
 * needs (protected range, vmgate's ports, allowlists split by family, all
 * sorted); fw_plan_render() writes the table from a plan.  The layout
 * (set names, types and flags, counters, the chain) is this version's
 * "schema": fw_live.c checks a live table against the same definitions. */
#include "firewall/firewall.h"
#include "firewall/fw_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

/* ---- growable string ---- */

void fw_sb_vprintf(struct fw_sb *b, const char *fmt, va_list ap)
{
    if (b->oom)
        return;
    for (;;) {
        va_list aq;
        va_copy(aq, ap);
        size_t room = b->cap - b->len;
        int n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? room : 0, fmt, aq);
        va_end(aq);
        if (n < 0) {
            b->oom = true;
            return;
        }
        if (b->s && (size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t ncap = b->cap ? b->cap * 2 : 1024;
        while (ncap < b->len + (size_t)n + 1)
            ncap *= 2;
        char *s = realloc(b->s, ncap);
        if (!s) {
            b->oom = true;
            return;
        }
        b->s = s;
        b->cap = ncap;
        b->s[b->len] = '\0';
    }
}

void fw_sb_printf(struct fw_sb *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fw_sb_vprintf(b, fmt, ap);
    va_end(ap);
}

void fw_sb_free(struct fw_sb *b)
{
    free(b->s);
    memset(b, 0, sizeof *b);
}

/* ---- the schema ---- */

const struct fw_counter_def fw_counters[] = {
    { "lo_new", "connections", "new loopback connections to the protected range" },
    { "ban_dropped", "packets", "packets from banned sources to vmgate ports, dropped" },
    { "gw_new", "connections", "new connections to vmgate ports, accepted" },
    { "raw_allowed", "connections", "new connections from allowed sources to the protected range" },
    { "raw_rejected", "packets", "packets to the protected range, rejected with a TCP reset" },
};
const size_t fw_n_counters = sizeof fw_counters / sizeof fw_counters[0];

const struct fw_set_def fw_sets[] = {
    { "gw_ports", "inet_service", false, false, 0, FW_EL_PORTS, "vmgate's ports",
      "vmgate's own listeners: open unless the source is banned" },
    { "raw_allow4", "ipv4_addr", true, false, 0, FW_EL_ALLOW4, "allowed IPv4",
      "IPv4 sources that may reach the protected range" },
    { "raw_allow6", "ipv6_addr", true, false, 0, FW_EL_ALLOW6, "allowed IPv6",
      "IPv6 sources that may reach the protected range" },
    { "ban4", "ipv4_addr", true, true, FW_BAN_SET_SIZE, FW_EL_NONE, NULL,
      "banned IPv4 sources (failed logins, vmgate firewall ban)" },
    { "ban6", "ipv6_addr", true, true, FW_BAN_SET_SIZE, FW_EL_NONE, NULL,
      "banned IPv6 sources (failed logins, vmgate firewall ban)" },
};
const size_t fw_n_sets = sizeof fw_sets / sizeof fw_sets[0];

/* The chain, in order.  "{R}" stands for the protected range; it appears in
 * the comment of every rule that uses it, so a changed range shows up when
 * comments are compared (fw_diff). */
static const struct {
    const char *match;
    const char *comment;
} rules[] = {
    { "iif \"lo\" tcp dport {R} ct state new counter name \"lo_new\" accept",
      "vmgate: loopback to {R}, new" },
    { "iif \"lo\" accept", "vmgate: loopback" },
    { "tcp dport @gw_ports ip saddr @ban4 counter name \"ban_dropped\" drop",
      "vmgate: banned IPv4 source" },
    { "tcp dport @gw_ports ip6 saddr @ban6 counter name \"ban_dropped\" drop",
      "vmgate: banned IPv6 source" },
    { "tcp dport @gw_ports ct state new counter name \"gw_new\" accept",
      "vmgate: vmgate port, new" },
    { "tcp dport @gw_ports accept",
      "vmgate: vmgate port" },
    { "tcp dport {R} ip saddr @raw_allow4 ct state new counter name \"raw_allowed\" accept",
      "vmgate: allowed IPv4 source to {R}, new" },
    { "tcp dport {R} ip saddr @raw_allow4 accept",
      "vmgate: allowed IPv4 source to {R}" },
    { "tcp dport {R} ip6 saddr @raw_allow6 ct state new counter name \"raw_allowed\" accept",
      "vmgate: allowed IPv6 source to {R}, new" },
    { "tcp dport {R} ip6 saddr @raw_allow6 accept",
      "vmgate: allowed IPv6 source to {R}" },
    { "tcp dport {R} counter name \"raw_rejected\" reject with tcp reset",
      "vmgate: reject the rest of {R}" },
};

size_t fw_rule_count(void)
{
    return sizeof rules / sizeof rules[0];
}

void fw_plan_range_str(const struct fw_plan *p, char *out, size_t cap)
{
    if (p->lo == p->hi)
        snprintf(out, cap, "%u", (unsigned)p->lo);
    else
        snprintf(out, cap, "%u-%u", (unsigned)p->lo, (unsigned)p->hi);
}

/* Copy tmpl into out replacing each "{R}" with rng. */
static const char *expand(const char *tmpl, const char *rng, char *out, size_t cap)
{
    size_t o = 0, rl = strlen(rng);
    for (const char *s = tmpl; *s && o + 1 < cap; s++) {
        if (strncmp(s, "{R}", 3) == 0) {
            for (size_t i = 0; i < rl && o + 1 < cap; i++)
                out[o++] = rng[i];
            s += 2;
        } else {
            out[o++] = *s;
        }
    }
    out[o] = '\0';
    return out;
}

const char *fw_rule_comment(const struct fw_plan *p, size_t i, char *buf, size_t cap)
{
    if (i >= fw_rule_count())
        return NULL;
    char rng[16];
    fw_plan_range_str(p, rng, sizeof rng);
    return expand(rules[i].comment, rng, buf, cap);
}

/* ---- plan ---- */

static int cmp_u16(const void *a, const void *b)
{
    uint16_t x = *(const uint16_t *)a, y = *(const uint16_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_net(const void *a, const void *b)
{
    return addr_net_cmp(a, b);
}

void fw_plan_free(struct fw_plan *p)
{
    free(p->allow4);
    free(p->allow6);
    memset(p, 0, sizeof *p);
}

/* Report the first overlap in a sorted allowlist (sorted by address, any
 * overlap shows between neighbours). */
static int check_allow_list(const struct addr_net *v, size_t n, char *err, size_t errlen)
{
    for (size_t i = 1; i < n; i++) {
        if (addr_net_overlaps(&v[i - 1], &v[i])) {
            char a[64], b[64];
            addr_net_str(&v[i - 1], a, sizeof a);
            addr_net_str(&v[i], b, sizeof b);
            if (strcmp(a, b) == 0)
                snprintf(err, errlen, "[firewall] allow: %s is listed twice", a);
            else
                snprintf(err, errlen, "[firewall] allow: %s overlaps %s; keep only the larger", b, a);
            return -1;
        }
    }
    return 0;
}

/* Accepts a parsed config (cfg_parse has already checked syntax) and checks
 * what only the firewall cares about: the protected range is 1..65535 and
 * ordered; each allow entry is a numeric address or prefix that fits its
 * family, is neither loopback (always allowed anyway) nor the unspecified
 * address, and overlaps no other entry (nft refuses overlapping intervals).
 * Host bits are cleared ("10.0.0.1/8" -> "10.0.0.0/8"), as nft would. */
int fw_plan_build(const struct cfg *c, struct fw_plan *p, char *err, size_t errlen)
{
    char why[200];
    memset(p, 0, sizeof *p);
    p->lo = c->fw.protect_lo;
    p->hi = c->fw.protect_hi;
    if (p->lo == 0 && p->hi == 0) {
        p->lo = FW_DEF_LO;
        p->hi = FW_DEF_HI;
    }
    if (p->lo == 0 || p->lo > p->hi) {
        snprintf(err, errlen, "[firewall] protect %u-%u: need 1 <= LO <= HI <= 65535",
                 (unsigned)p->lo, (unsigned)p->hi);
        return -1;
    }
    for (size_t i = 0; i < c->n_vms; i++) {
        const struct cfg_vm *vm = &c->vms[i];
        uint16_t v[2] = { vm->vnc_port, vm->spice_port };
        for (int k = 0; k < 2; k++) {
            if (!v[k])
                continue;
            if (p->n_ports == FW_MAX_PORTS) {
                snprintf(err, errlen, "more than %d vmgate ports", FW_MAX_PORTS);
                return -1;
            }
            p->ports[p->n_ports++] = v[k];
        }
    }
    qsort(p->ports, p->n_ports, sizeof p->ports[0], cmp_u16);
    size_t u = 0;
    for (size_t i = 0; i < p->n_ports; i++)
        if (u == 0 || p->ports[u - 1] != p->ports[i])
            p->ports[u++] = p->ports[i];
    p->n_ports = u;

    if (c->fw.n_allow) {
        p->allow4 = calloc(c->fw.n_allow, sizeof *p->allow4);
        p->allow6 = calloc(c->fw.n_allow, sizeof *p->allow6);
        if (!p->allow4 || !p->allow6) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
    }
    for (size_t i = 0; i < c->fw.n_allow; i++) {
        struct addr_net n;
        char shown[72];
        if (addr_net_parse(c->fw.allow[i], true, &n, why, sizeof why) < 0) {
            snprintf(err, errlen, "[firewall] allow: %s", why);
            goto fail;
        }
        if (addr_net_is_loopback(&n)) {
            snprintf(err, errlen, "[firewall] allow: \"%s\" is loopback, which is always allowed; remove it",
                     log_shown(c->fw.allow[i], shown, sizeof shown));
            goto fail;
        }
        if (addr_net_is_unspecified(&n)) {
            snprintf(err, errlen, "[firewall] allow: \"%s\" is the unspecified address, not a source",
                     log_shown(c->fw.allow[i], shown, sizeof shown));
            goto fail;
        }
        if (n.family == 4)
            p->allow4[p->n_allow4++] = n;
        else
            p->allow6[p->n_allow6++] = n;
    }
    qsort(p->allow4, p->n_allow4, sizeof *p->allow4, cmp_net);
    qsort(p->allow6, p->n_allow6, sizeof *p->allow6, cmp_net);
    if (check_allow_list(p->allow4, p->n_allow4, err, errlen) < 0 ||
        check_allow_list(p->allow6, p->n_allow6, err, errlen) < 0)
        goto fail;
    return 0;
fail:
    fw_plan_free(p);
    return -1;
}

/* ---- render ---- */

int fw_plan_elems(const struct fw_plan *p, enum fw_elems which, struct fw_iv **out, size_t *n)
{
    const struct addr_net *nets = which == FW_EL_ALLOW4 ? p->allow4 : p->allow6;
    *n = which == FW_EL_PORTS    ? p->n_ports
         : which == FW_EL_ALLOW4 ? p->n_allow4
         : which == FW_EL_ALLOW6 ? p->n_allow6
                                 : 0;
    *out = NULL;
    if (!*n)
        return 0;
    *out = calloc(*n, sizeof **out);
    if (!*out)
        return -1;
    for (size_t i = 0; i < *n; i++) {
        if (which == FW_EL_PORTS)
            fw_iv_from_port(p->ports[i], p->ports[i], &(*out)[i]);
        else
            fw_iv_from_net(&nets[i], &(*out)[i]);
    }
    return 0;
}

/* A set declaration: type, size, flags, comment and the plan's elements. */
static void render_set(const struct fw_plan *p, const struct fw_set_def *d, struct fw_sb *b)
{
    fw_sb_printf(b, "\n\tset %s {\n\t\ttype %s\n", d->name, d->type);
    if (d->size)
        fw_sb_printf(b, "\t\tsize %lld\n", (long long)d->size);
    if (d->interval || d->timeout)
        fw_sb_printf(b, "\t\tflags %s%s%s\n", d->interval ? "interval" : "",
                     d->interval && d->timeout ? ", " : "", d->timeout ? "timeout" : "");
    fw_sb_printf(b, "\t\tcomment \"%s\"\n", d->comment);
    struct fw_iv *el;
    size_t n;
    if (fw_plan_elems(p, d->elems, &el, &n) < 0) {
        b->oom = true;
        return;
    }
    if (n) {
        fw_sb_printf(b, "\t\telements = { ");
        for (size_t i = 0; i < n; i++) {
            char s[96];
            fw_iv_str(&el[i], s, sizeof s);
            fw_sb_printf(b, "%s%s", i ? ", " : "", s);
        }
        fw_sb_printf(b, " }\n");
    }
    free(el);
    fw_sb_printf(b, "\t}\n");
}

void fw_plan_render_sb(const struct fw_plan *p, struct fw_sb *b)
{
    char rng[16], m[256], cm[160];
    fw_plan_range_str(p, rng, sizeof rng);

    fw_sb_printf(b, "table %s %s {\n", FW_FAMILY, FW_TABLE);
    fw_sb_printf(b, "\tcomment \"managed by vmgate; schema %d\"\n", FW_SCHEMA);

    for (size_t i = 0; i < fw_n_sets; i++)
        render_set(p, &fw_sets[i], b);

    for (size_t i = 0; i < fw_n_counters; i++)
        fw_sb_printf(b, "\n\tcounter %s {\n\t\tcomment \"%s\"\n\t}\n",
                     fw_counters[i].name, fw_counters[i].what);

    fw_sb_printf(b, "\n\tchain %s {\n", FW_CHAIN);
    fw_sb_printf(b, "\t\ttype filter hook input priority filter - %d; policy accept;\n", -FW_PRIO);
    for (size_t i = 0; i < fw_rule_count(); i++)
        fw_sb_printf(b, "\t\t%s comment \"%s\"\n", expand(rules[i].match, rng, m, sizeof m),
                     expand(rules[i].comment, rng, cm, sizeof cm));
    fw_sb_printf(b, "\t}\n}\n");
}

int fw_plan_render(const struct fw_plan *p, char *out, size_t cap)
{
    struct fw_sb b = { 0 };
    fw_plan_render_sb(p, &b);
    if (b.oom) {
        fw_sb_free(&b);
        errno = ENOMEM;
        return -1;
    }
    if (b.len + 1 > cap) {
        fw_sb_free(&b);
        errno = ENOSPC;
        return -1;
    }
    memcpy(out, b.s, b.len + 1);
    int n = (int)b.len;
    fw_sb_free(&b);
    return n;
}

int fw_validate(const struct cfg *c, char *err, size_t errlen)
{
    struct fw_plan p;
    if (fw_plan_build(c, &p, err, errlen) < 0)
        return -1;
    fw_plan_free(&p);
    return 0;
}

int fw_render(const struct cfg *c, char *out, size_t cap)
{
    struct fw_plan p;
    char err[256];
    if (fw_plan_build(c, &p, err, sizeof err) < 0) {
        errno = EINVAL;
        return -1;
    }
    int n = fw_plan_render(&p, out, cap);
    int e = errno;
    fw_plan_free(&p);
    errno = e;
    return n;
}

/* 1 when addr is loopback or inside one of the config's allow CIDRs. */
int fw_is_exempt(const struct cfg *c, const char *addr)
{
    struct addr_net n, a;
    char why[200];
    if (addr_net_parse(addr, false, &n, why, sizeof why) < 0)
        return -1;
    if (addr_net_is_loopback(&n))
        return 1;
    for (size_t i = 0; i < c->fw.n_allow; i++)
        if (addr_net_parse(c->fw.allow[i], true, &a, why, sizeof why) == 0 &&
            addr_net_contains(&a, &n))
            return 1;
    return 0;
}
