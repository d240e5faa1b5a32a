/* firewall/fw_live.c — read nft's JSON listing, compare it with the plan.
 *
 * Pure functions over text, so the unit tests drive them with listings
 * captured from nft 1.0.6.  The comparison is structural (set types and
 * flags, elements as intervals, counters, the chain's hook/priority/policy,
 * the sequence of rule comments), never a comparison of pretty-printed text,
 * which nft normalises. */
#include "firewall/fw_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "firewall/fw_json.h"

/* Copy a name from the kernel, control bytes replaced: it may be printed. */
static void copy_str(char *dst, size_t cap, const char *s)
{
    if (!s)
        s = "";
    log_safe(dst, cap, s, strlen(s));
}

void fw_live_set_free(struct fw_live_set *s)
{
    free(s->el);
    s->el = NULL;
    s->n_el = 0;
}

void fw_live_free(struct fw_live *l)
{
    for (size_t i = 0; i < l->n_sets; i++)
        fw_live_set_free(&l->sets[i]);
    free(l->sets);
    free(l->counters);
    free(l->chains);
    free(l->rules);
    memset(l, 0, sizeof *l);
}

static enum fw_set_kind set_kind(const struct fw_live_set *s)
{
    if (strcmp(s->type, "inet_service") == 0)
        return FW_SK_PORTS;
    if (strcmp(s->type, "ipv4_addr") == 0)
        return FW_SK_ADDR4;
    if (strcmp(s->type, "ipv6_addr") == 0)
        return FW_SK_ADDR6;
    return FW_SK_OTHER;
}

/* One scalar of an element: a port number or an address string. */
static int elem_scalar(const struct fwj *v, enum fw_set_kind k, struct fw_iv *iv)
{
    char why[200];
    if (k == FW_SK_PORTS) {
        if (v->type != FWJ_NUM || v->num < 0 || v->num > 65535)
            return -1;
        fw_iv_from_port((unsigned)v->num, (unsigned)v->num, iv);
        return 0;
    }
    if (k == FW_SK_OTHER || v->type != FWJ_STR)
        return -1;
    struct addr_net n;
    if (addr_net_parse(v->str, false, &n, why, sizeof why) < 0)
        return -1;
    fw_iv_from_net(&n, iv);
    return 0;
}

/* An element value: scalar, {"prefix": {...}} or {"range": [a, b]}. */
static int elem_value(const struct fwj *v, enum fw_set_kind k, struct fw_iv *iv)
{
    if (v->type != FWJ_OBJ)
        return elem_scalar(v, k, iv);
    const struct fwj *px = fwj_get(v, "prefix");
    if (px) {
        const char *a = fwj_str(px, "addr");
        int64_t len;
        char buf[80], why[200];
        struct addr_net n;
        if (!a || !fwj_num(px, "len", &len) || len < 0 || len > 128)
            return -1;
        snprintf(buf, sizeof buf, "%s/%d", a, (int)len);
        if (addr_net_parse(buf, true, &n, why, sizeof why) < 0)
            return -1;
        fw_iv_from_net(&n, iv);
        return 0;
    }
    const struct fwj *rg = fwj_get(v, "range");
    if (rg && rg->type == FWJ_ARR && rg->n == 2) {
        struct fw_iv a, b;
        if (elem_scalar(&rg->kids[0], k, &a) < 0 || elem_scalar(&rg->kids[1], k, &b) < 0 ||
            a.family != b.family)
            return -1;
        *iv = a;
        memcpy(iv->hi, b.hi, sizeof iv->hi);
        return 0;
    }
    return -1;
}

/* The family an element of a set of kind k must have (ports: 0). */
static int kind_family(enum fw_set_kind k)
{
    return k == FW_SK_PORTS ? 0 : k == FW_SK_ADDR4 ? 4 : k == FW_SK_ADDR6 ? 6 : -1;
}

/* Accepts a bare value or {"elem": {"val": V, "timeout": .., "expires": ..}},
 * and only of the set's own family: a prefix in a port set, an IPv6
 * address in an ipv4_addr set or ::ffff:a.b.c.d in an ipv6_addr set (which
 * fw_net_parse() reads as IPv4) is an element we cannot read. */
static int parse_elem(const struct fwj *e, enum fw_set_kind k, struct fw_iv *iv)
{
    const struct fwj *w = e->type == FWJ_OBJ ? fwj_get(e, "elem") : NULL;
    if (!w)
        return elem_value(e, k, iv) == 0 && iv->family == kind_family(k) ? 0 : -1;
    const struct fwj *val = fwj_get(w, "val");
    if (!val || elem_value(val, k, iv) < 0 || iv->family != kind_family(k))
        return -1;
    int64_t t;
    if (fwj_num(w, "timeout", &t) && t >= 0) {
        iv->has_timeout = true;
        iv->timeout_s = (uint64_t)t;
    }
    if (fwj_num(w, "expires", &t) && t >= 0)
        iv->expires_s = (uint64_t)t;
    return 0;
}

static int cmp_iv(const void *a, const void *b)
{
    return fw_iv_cmp(a, b);
}

static void set_flag(struct fw_live_set *s, const struct fwj *f)
{
    const char *name = f->type == FWJ_STR ? f->str : "";
    if (strcmp(name, "interval") == 0)
        s->f_interval = true;
    else if (strcmp(name, "timeout") == 0)
        s->f_timeout = true;
    else
        s->f_other = true;
}

/* The body of a {"set": {...}} object. */
static int fill_set(const struct fwj *o, struct fw_live_set *s)
{
    memset(s, 0, sizeof *s);
    copy_str(s->name, sizeof s->name, fwj_str(o, "name"));
    const char *type = fwj_str(o, "type");
    copy_str(s->type, sizeof s->type, type ? type : "(concatenation)");
    fwj_num(o, "size", &s->size);
    const struct fwj *fl = fwj_get(o, "flags");
    if (fl && fl->type == FWJ_ARR) {
        for (size_t i = 0; i < fl->n; i++)
            set_flag(s, &fl->kids[i]);
    } else if (fl && fl->type == FWJ_STR) {
        set_flag(s, fl);   /* a single flag may be printed as a bare string */
    }
    const struct fwj *el = fwj_get(o, "elem");
    if (el && el->type == FWJ_ARR && el->n) {
        s->el = calloc(el->n, sizeof *s->el);
        if (!s->el)
            return -1;
        enum fw_set_kind k = set_kind(s);
        for (size_t i = 0; i < el->n; i++) {
            if (parse_elem(&el->kids[i], k, &s->el[s->n_el]) == 0)
                s->n_el++;
            else
                s->el_bad = true;
        }
        qsort(s->el, s->n_el, sizeof *s->el, cmp_iv);
    }
    return 0;
}

#define PUSH(arr, n, ok)                                                   \
    do {                                                                   \
        void *np_ = realloc((arr), ((n) + 1) * sizeof *(arr));             \
        if (!np_) { ok = false; break; }                                   \
        (arr) = np_;                                                       \
        memset(&(arr)[(n)], 0, sizeof *(arr));                             \
        (n)++;                                                             \
        ok = true;                                                         \
    } while (0)

/* Parse an nft JSON listing: the root (free with fwj_free) and its
 * "nftables" array in *items, or NULL with err. */
static struct fwj *nft_parse(const char *json, const struct fwj **items, char *err,
                              size_t errlen)
{
    struct fwj *root = fwj_parse(json, err, errlen);
    if (!root)
        return NULL;
    *items = fwj_get(root, "nftables");
    if (!*items || (*items)->type != FWJ_ARR) {
        snprintf(err, errlen, "nft listing: no \"nftables\" array");
        fwj_free(root);
        return NULL;
    }
    return root;
}

static bool ours(const struct fwj *o)
{
    const char *fam = fwj_str(o, "family"), *tab = fwj_str(o, "table");
    return fam && tab && strcmp(fam, FW_FAMILY) == 0 && strcmp(tab, FW_TABLE) == 0;
}

/* Accepts the JSON of `nft -j list table inet vmgate`: an "nftables" array
 * of one-member objects.  Objects of other tables are ignored; kinds we do
 * not declare (maps, quotas, ...) are counted in n_other. */
int fw_live_parse(const char *json, struct fw_live *l, char *err, size_t errlen)
{
    memset(l, 0, sizeof *l);
    const struct fwj *items;
    struct fwj *root = nft_parse(json, &items, err, errlen);
    if (!root)
        return -1;
    bool ok = true;
    for (size_t i = 0; i < items->n && ok; i++) {
        const struct fwj *it = &items->kids[i];
        if (it->type != FWJ_OBJ || it->n != 1)
            continue;
        const char *kind = it->kids[0].key;
        const struct fwj *o = &it->kids[0];
        if (strcmp(kind, "metainfo") == 0)
            continue;
        if (strcmp(kind, "table") == 0) {
            const char *fam = fwj_str(o, "family"), *name = fwj_str(o, "name");
            if (fam && name && strcmp(fam, FW_FAMILY) == 0 && strcmp(name, FW_TABLE) == 0)
                l->present = true;
            continue;
        }
        if (!ours(o))
            continue;
        if (strcmp(kind, "set") == 0) {
            PUSH(l->sets, l->n_sets, ok);
            if (ok && fill_set(o, &l->sets[l->n_sets - 1]) < 0)
                ok = false;
        } else if (strcmp(kind, "counter") == 0) {
            PUSH(l->counters, l->n_counters, ok);
            if (ok) {
                struct fw_live_counter *c = &l->counters[l->n_counters - 1];
                int64_t v;
                copy_str(c->name, sizeof c->name, fwj_str(o, "name"));
                if (fwj_num(o, "packets", &v) && v >= 0)
                    c->packets = (uint64_t)v;
                if (fwj_num(o, "bytes", &v) && v >= 0)
                    c->bytes = (uint64_t)v;
            }
        } else if (strcmp(kind, "chain") == 0) {
            PUSH(l->chains, l->n_chains, ok);
            if (ok) {
                struct fw_live_chain *c = &l->chains[l->n_chains - 1];
                copy_str(c->name, sizeof c->name, fwj_str(o, "name"));
                copy_str(c->type, sizeof c->type, fwj_str(o, "type"));
                copy_str(c->hook, sizeof c->hook, fwj_str(o, "hook"));
                copy_str(c->policy, sizeof c->policy, fwj_str(o, "policy"));
                c->has_hook = fwj_get(o, "hook") != NULL;
                fwj_num(o, "prio", &c->prio);
            }
        } else if (strcmp(kind, "rule") == 0) {
            PUSH(l->rules, l->n_rules, ok);
            if (ok) {
                struct fw_live_rule *r = &l->rules[l->n_rules - 1];
                copy_str(r->chain, sizeof r->chain, fwj_str(o, "chain"));
                copy_str(r->comment, sizeof r->comment, fwj_str(o, "comment"));
            }
        } else {
            l->n_other++;
        }
    }
    fwj_free(root);
    if (!ok) {
        fw_live_free(l);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

/* Accepts the JSON of `nft -j list set inet vmgate NAME`. */
int fw_live_parse_set(const char *json, struct fw_live_set *s, char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    const struct fwj *items, *set = NULL;
    struct fwj *root = nft_parse(json, &items, err, errlen);
    if (!root)
        return -1;
    for (size_t i = 0; i < items->n && !set; i++) {
        const struct fwj *it = &items->kids[i];
        if (it->type == FWJ_OBJ && it->n == 1 && strcmp(it->kids[0].key, "set") == 0)
            set = &it->kids[0];
    }
    int rc = -1;
    if (!set)
        snprintf(err, errlen, "nft listing: no set");
    else if (fill_set(set, s) < 0)
        snprintf(err, errlen, "out of memory");
    else
        rc = 0;
    fwj_free(root);
    return rc;
}

const struct fw_live_set *fw_live_find_set(const struct fw_live *l, const char *name)
{
    for (size_t i = 0; i < l->n_sets; i++)
        if (strcmp(l->sets[i].name, name) == 0)
            return &l->sets[i];
    return NULL;
}

const struct fw_live_counter *fw_live_find_counter(const struct fw_live *l, const char *name)
{
    for (size_t i = 0; i < l->n_counters; i++)
        if (strcmp(l->counters[i].name, name) == 0)
            return &l->counters[i];
    return NULL;
}

/* ---- comparison ---- */

/* A comparison in progress: each difference is one line of the report and
 * one count; a difference of layout also rules out a refresh in place. */
struct diff {
    struct fw_sb *rep;
    int n;
    bool layout_ok;
};

static void differs(struct diff *d, bool layout, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void differs(struct diff *d, bool layout, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fw_sb_vprintf(d->rep, fmt, ap);
    va_end(ap);
    d->n++;
    if (layout)
        d->layout_ok = false;
}

static const struct fw_set_def *schema_set(const char *name)
{
    for (size_t i = 0; i < fw_n_sets; i++)
        if (strcmp(fw_sets[i].name, name) == 0)
            return &fw_sets[i];
    return NULL;
}

static bool schema_counter(const char *name)
{
    for (size_t i = 0; i < fw_n_counters; i++)
        if (strcmp(fw_counters[i].name, name) == 0)
            return true;
    return false;
}

static void flags_str(bool interval, bool timeout, bool other, char *out, size_t cap)
{
    snprintf(out, cap, "%s%s%s%s%s", interval ? "interval" : "",
             interval && (timeout || other) ? "," : "", timeout ? "timeout" : "",
             timeout && other ? "," : "", other ? "other" : "");
    if (!*out)
        snprintf(out, cap, "none");
}

/* The sets, counters, other objects and the chain against this version's
 * declarations.  Returns whether the chain is there. */
static bool diff_layout(const struct fw_live *l, struct diff *d)
{
    char a[48], b[48];
    for (size_t i = 0; i < fw_n_sets; i++) {
        const struct fw_set_def *w = &fw_sets[i];
        const struct fw_live_set *s = fw_live_find_set(l, w->name);
        if (!s) {
            differs(d, true, "  - set %s is missing\n", w->name);
        } else if (strcmp(s->type, w->type) != 0 || s->f_interval != w->interval ||
                   s->f_timeout != w->timeout || s->f_other) {
            flags_str(s->f_interval, s->f_timeout, s->f_other, a, sizeof a);
            flags_str(w->interval, w->timeout, false, b, sizeof b);
            differs(d, true, "  - set %s is %s (flags %s), expected %s (flags %s)\n", s->name,
                    s->type, a, w->type, b);
        } else if (s->size != w->size) {
            differs(d, true, "  - set %s has size %lld, expected %lld\n", s->name,
                    (long long)s->size, (long long)w->size);
        }
    }
    for (size_t i = 0; i < l->n_sets; i++)
        if (!schema_set(l->sets[i].name))
            differs(d, true, "  - unexpected set %s\n", l->sets[i].name);
    for (size_t i = 0; i < fw_n_counters; i++)
        if (!fw_live_find_counter(l, fw_counters[i].name))
            differs(d, true, "  - counter %s is missing\n", fw_counters[i].name);
    for (size_t i = 0; i < l->n_counters; i++)
        if (!schema_counter(l->counters[i].name))
            differs(d, true, "  - unexpected counter %s\n", l->counters[i].name);
    if (l->n_other)
        differs(d, true, "  - %zu object(s) vmgate does not declare (maps, quotas, ...)\n",
                l->n_other);
    bool have_chain = false;
    for (size_t i = 0; i < l->n_chains; i++) {
        const struct fw_live_chain *c = &l->chains[i];
        if (strcmp(c->name, FW_CHAIN) != 0) {
            differs(d, true, "  - unexpected chain %s\n", c->name);
            continue;
        }
        have_chain = true;
        if (!c->has_hook || strcmp(c->type, "filter") != 0 || strcmp(c->hook, "input") != 0 ||
            c->prio != FW_PRIO || strcmp(c->policy, "accept") != 0)
            differs(d, true, "  - chain %s is type %s hook %s priority %lld policy %s, "
                             "expected type filter hook input priority %d policy accept\n",
                    c->name, c->type[0] ? c->type : "-", c->hook[0] ? c->hook : "-",
                    (long long)c->prio, c->policy[0] ? c->policy : "-", FW_PRIO);
    }
    if (!have_chain)
        differs(d, true, "  - chain %s is missing\n", FW_CHAIN);
    return have_chain;
}

/* Append " ELEM" to out for each element of a that b does not hold. */
static void absent_from(const struct fw_iv *a, size_t na, const struct fw_iv *b, size_t nb,
                        struct fw_sb *out)
{
    char s[96];
    for (size_t i = 0; i < na; i++) {
        bool found = false;
        for (size_t j = 0; j < nb && !found; j++)
            found = fw_iv_equal(&a[i], &b[j]);
        if (!found) {
            fw_iv_str(&a[i], s, sizeof s);
            fw_sb_printf(out, " %s", s);
        }
    }
}

/* Elements of want missing from have, and of have not in want. */
static void diff_elems(const char *label, const struct fw_iv *want, size_t nw,
                       const struct fw_live_set *have, const char *extra_hint, struct diff *d)
{
    struct fw_sb miss = { 0 }, extra = { 0 };
    absent_from(want, nw, have->el, have->n_el, &miss);
    absent_from(have->el, have->n_el, want, nw, &extra);
    if (miss.len)
        differs(d, false, "  - %s: missing%s\n", label, miss.s);
    if (extra.len)
        differs(d, false, "  - %s: not in the config:%s%s\n", label, extra.s, extra_hint);
    if (have->el_bad)
        differs(d, false, "  - %s: holds elements vmgate cannot read\n", label);
    fw_sb_free(&miss);
    fw_sb_free(&extra);
}

/* The config-filled sets (those of the declared type) against the plan. */
static void diff_content(const struct fw_plan *p, const struct fw_live *l, struct diff *d)
{
    for (size_t i = 0; i < fw_n_sets; i++) {
        const struct fw_set_def *w = &fw_sets[i];
        const struct fw_live_set *s = fw_live_find_set(l, w->name);
        struct fw_iv *want;
        size_t nw;
        if (w->elems == FW_EL_NONE || !s || strcmp(s->type, w->type) != 0 ||
            fw_plan_elems(p, w->elems, &want, &nw) < 0)
            continue;
        char label[96];
        snprintf(label, sizeof label, "%s (%s)", w->name, w->label);
        diff_elems(label, want, nw, s,
                   w->elems == FW_EL_PORTS ? "" : " (added with `vmgate firewall allow`?)", d);
        free(want);
    }
}

/* The chain's rules, by their comments (which carry the protected range):
 * one difference at most. */
static void diff_rules(const struct fw_plan *p, const struct fw_live *l, bool have_chain,
                       struct diff *d)
{
    size_t k = 0;
    char cm[160];
    bool differ = false;
    for (size_t i = 0; i < l->n_rules; i++) {
        if (strcmp(l->rules[i].chain, FW_CHAIN) != 0)
            continue;
        const char *want = fw_rule_comment(p, k, cm, sizeof cm);
        if (!differ && !want) {
            differs(d, false, "  - extra rule %zu \"%s\"\n", k + 1, l->rules[i].comment);
            differ = true;
        } else if (!differ && strcmp(want, l->rules[i].comment) != 0) {
            differs(d, false, "  - rule %zu is \"%s\", expected \"%s\"\n", k + 1,
                    l->rules[i].comment, want);
            differ = true;
        }
        k++;
    }
    if (have_chain && !differ && k != fw_rule_count())
        differs(d, false, "  - chain %s has %zu rules, expected %zu\n", FW_CHAIN, k,
                fw_rule_count());
}

int fw_diff(const struct fw_plan *p, const struct fw_live *l, bool *schema_ok,
            struct fw_sb *rep)
{
    struct diff d = { .rep = rep, .layout_ok = true };
    if (!l->present) {
        differs(&d, true, "  - table %s %s is not installed\n", FW_FAMILY, FW_TABLE);
    } else {
        bool have_chain = diff_layout(l, &d);
        diff_content(p, l, &d);
        diff_rules(p, l, have_chain, &d);
    }
    *schema_ok = d.layout_ok;
    return d.n;
}

/* Accepts the JSON of `nft -j list chains` and picks base chains that drop
 * by default on a hook an incoming connection crosses (input, prerouting,
 * ingress), outside our table: there an accept of ours does not help. */
int fw_foreign_drops(const char *json, struct fw_sb *out, char *err, size_t errlen)
{
    const struct fwj *items;
    struct fwj *root = nft_parse(json, &items, err, errlen);
    if (!root)
        return -1;
    int n = 0;
    for (size_t i = 0; i < items->n; i++) {
        const struct fwj *it = &items->kids[i];
        if (it->type != FWJ_OBJ || it->n != 1 || strcmp(it->kids[0].key, "chain") != 0)
            continue;
        const struct fwj *o = &it->kids[0];
        const char *hook = fwj_str(o, "hook"), *pol = fwj_str(o, "policy");
        if (!hook || !pol || strcmp(pol, "drop") != 0 || ours(o))
            continue;
        if (strcmp(hook, "input") != 0 && strcmp(hook, "prerouting") != 0 &&
            strcmp(hook, "ingress") != 0)
            continue;
        int64_t prio = 0;
        fwj_num(o, "prio", &prio);
        char fam[72], tab[72], name[72], hk[72];
        log_shown(fwj_str(o, "family"), fam, sizeof fam);
        log_shown(fwj_str(o, "table"), tab, sizeof tab);
        log_shown(fwj_str(o, "name"), name, sizeof name);
        fw_sb_printf(out, "table %s %s, chain %s (hook %s, priority %lld, policy drop)\n", fam,
                     tab, name, log_shown(hook, hk, sizeof hk), (long long)prio);
        n++;
    }
    fwj_free(root);
    return n;
}
