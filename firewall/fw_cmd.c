/* firewall/fw_cmd.c — `vmgate firewall ...`, the admin's side.
 *
 * The only file of firewall/ that prints.  Results go to stdout, errors to
 * stderr as "vmgate firewall: ...".  Exit codes: 0 done (or nothing to do),
 * 1 failed (status: table missing or not matching the config), 2 usage. */
#include "firewall/firewall.h"
#include "firewall/fw_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

#define FW_DEF_BAN_MS (UINT64_C(15) * 60 * 1000)

static const char usage_text[] =
    "usage: vmgate firewall apply  [-c FILE]      install or update the policy from the config\n"
    "       vmgate firewall remove                delete table inet vmgate\n"
    "       vmgate firewall status [-c FILE]      table, drift from the config, counters, bans\n"
    "       vmgate firewall show   [-c FILE]      print the ruleset the config renders\n"
    "       vmgate firewall allow CIDR            let CIDR reach the protected range\n"
    "       vmgate firewall deny  CIDR            take CIDR off the allowlist\n"
    "       vmgate firewall ban ADDR [--for DUR]  drop ADDR (or a prefix) on vmgate's ports\n"
    "       vmgate firewall unban ADDR            lift a ban\n"
    "FILE defaults to " CFG_DEFAULT_FILE ".  allow/deny last until the next apply.\n"
    "DUR like 30s, 15m, 2h, 1d (default: [firewall] ban_time, else 15m).\n"
    "Exit status: 0 done, 1 failed (status: not installed or not in sync), 2 usage.\n";

static void say_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say_err(const char *fmt, ...)
{
    va_list ap;
    fputs("vmgate firewall: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static int usage(const char *fmt, const char *arg)
{
    char shown[72];
    if (fmt) {
        fputs("vmgate firewall: ", stderr);
        fprintf(stderr, "%s", fmt);
        if (arg)
            fprintf(stderr, " \"%s\"", log_shown(arg, shown, sizeof shown));
        fputc('\n', stderr);
    }
    fputs("vmgate firewall: run `vmgate firewall --help` for usage\n", stderr);
    return 2;
}

/* 900000 -> "15m", 5400000 -> "1h30m"; odd milliseconds stay "1500ms". */
static void fmt_ms(uint64_t ms, char *out, size_t cap)
{
    static const struct { uint64_t div; const char *u; } units[] = {
        { UINT64_C(86400000), "d" }, { UINT64_C(3600000), "h" }, { UINT64_C(60000), "m" },
        { UINT64_C(1000), "s" },
    };
    if (ms == 0 || ms % 1000) {
        snprintf(out, cap, "%" PRIu64 "ms", ms);
        return;
    }
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < sizeof units / sizeof units[0] && o + 1 < cap; i++) {
        if (ms >= units[i].div) {
            int n = snprintf(out + o, cap - o, "%" PRIu64 "%s", ms / units[i].div, units[i].u);
            if (n < 0)
                break;
            o += (size_t)n < cap - o ? (size_t)n : cap - o - 1;
            ms %= units[i].div;
        }
    }
}

/* Load the config.  explicit: the user named it with -c, so any failure is
 * an error; otherwise a missing default file is reported through *missing. */
static int load_cfg(const char *path, bool explicit, struct cfg *c, bool *missing)
{
    char err[512];
    if (missing)
        *missing = false;
    if (!explicit && access(path, F_OK) != 0 && errno == ENOENT && missing) {
        *missing = true;
        return -1;
    }
    if (cfg_load(path, c, err, sizeof err) < 0) {
        say_err("%s", err);
        return -1;
    }
    return 0;
}

/* Warn about other tables that drop incoming traffic by default: vmgate's
 * accept does not override them, so its ports may be blocked there. */
static void warn_foreign(const char *ports)
{
    char *js = NULL, err[512];
    struct fw_sb out = { 0 };
    if (fw_nx_list_chains(&js, err, sizeof err) < 0) {
        say_err("warning: cannot list other tables' chains: %s", err);
        return;
    }
    int n = fw_foreign_drops(js, &out, err, sizeof err);
    free(js);
    if (n < 0) {
        say_err("warning: cannot read other tables' chains: %s", err);
    } else if (n > 0) {
        fprintf(stderr, "vmgate firewall: warning: %d chain(s) of other tables drop incoming "
                        "traffic by default:\n", n);
        for (char *line = out.s, *nl; line && *line; line = nl + 1) {
            nl = strchr(line, '\n');
            if (!nl)
                break;
            fprintf(stderr, "    %.*s\n", (int)(nl - line), line);
        }
        fprintf(stderr, "  vmgate's ports (%s) must be opened there too: an accept in table inet "
                        "vmgate does not override another table's drop.\n", ports);
        fprintf(stderr, "  (iptables-legacy rules are invisible to nft and were not checked.)\n");
    }
    fw_sb_free(&out);
}

static void ports_str(const struct fw_plan *p, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < p->n_ports && o + 8 < cap; i++)
        o += (size_t)snprintf(out + o, cap - o, "%s%u", i ? " " : "", (unsigned)p->ports[i]);
    if (!p->n_ports)
        snprintf(out, cap, "none configured");
}

/* The config named with -c, as a validated plan.  0, or 1 (reported) with
 * nothing left to free. */
static int load_plan(const char *cfgpath, struct cfg *c, struct fw_plan *p)
{
    char err[1024];
    if (load_cfg(cfgpath, true, c, NULL) < 0)
        return 1;
    if (fw_plan_build(c, p, err, sizeof err) < 0) {
        say_err("%s: %s", cfgpath, err);
        cfg_free(c);
        return 1;
    }
    return 0;
}

/* apply: the config must load and validate. */
static int cmd_apply(const char *cfgpath)
{
    struct cfg c;
    struct fw_plan p;
    char err[1024], ps[256], rng[16];
    if (load_plan(cfgpath, &c, &p) != 0)
        return 1;
    if (!c.fw.present)
        say_err("note: %s has no [firewall] section; applying the defaults", cfgpath);
    int what = FW_APPLY_NOOP;
    size_t nbans = 0;
    int rc = fw_nx_apply(&c, &what, &nbans, err, sizeof err);
    ports_str(&p, ps, sizeof ps);
    fw_plan_range_str(&p, rng, sizeof rng);
    if (rc < 0) {
        say_err("apply failed, nothing changed: %s", err);
    } else {
        switch (what) {
        case FW_APPLY_NOOP:
            printf("table inet vmgate already matches %s; nothing to do\n", cfgpath);
            break;
        case FW_APPLY_INSTALLED:
            printf("installed table inet vmgate from %s\n", cfgpath);
            break;
        case FW_APPLY_REFRESHED:
            printf("updated table inet vmgate from %s (bans and counters kept)\n", cfgpath);
            break;
        case FW_APPLY_REPLACED:
            printf("replaced table inet vmgate from %s: its layout was not this version's "
                   "(%zu ban(s) carried over, counters reset)\n", cfgpath, nbans);
            break;
        }
        printf("  protected range %s: loopback only, plus %zu allowed range(s)\n", rng,
               p.n_allow4 + p.n_allow6);
        printf("  vmgate's ports: %s\n", ps);
        warn_foreign(ps);
    }
    fw_plan_free(&p);
    cfg_free(&c);
    return rc < 0 ? 1 : 0;
}

/* remove: idempotent; says whether there was anything to remove. */
static int cmd_remove(void)
{
    char err[512];
    int was = fw_table_present();
    if (fw_remove(err, sizeof err) < 0) {
        say_err("remove failed: %s", err);
        return 1;
    }
    printf(was == 0 ? "table inet vmgate was not installed\n" : "removed table inet vmgate\n");
    return 0;
}

/* show: the rendered table, exactly what apply would install. */
static int cmd_show(const char *cfgpath)
{
    struct cfg c;
    struct fw_plan p;
    if (load_plan(cfgpath, &c, &p) != 0)
        return 1;
    struct fw_sb b = { 0 };
    fw_plan_render_sb(&p, &b);
    int rc = 0;
    if (b.oom) {
        say_err("out of memory");
        rc = 1;
    } else {
        fputs(b.s, stdout);
    }
    fw_sb_free(&b);
    fw_plan_free(&p);
    cfg_free(&c);
    return rc;
}

static void print_set(const char *label, const struct fw_live_set *s)
{
    char e[96];
    printf("%s", label);
    if (!s || !s->n_el)
        printf(" none");
    for (size_t i = 0; s && i < s->n_el; i++) {
        fw_iv_str(&s->el[i], e, sizeof e);
        printf(" %s", e);
    }
    printf("\n");
}

/* The drift of the live table from the plan; 0 in sync, 1 not. */
static int print_drift(const char *cfgpath, const struct fw_plan *p, const struct fw_live *l)
{
    bool schema_ok;
    struct fw_sb rep = { 0 };
    char rng[16];
    int nd = fw_diff(p, l, &schema_ok, &rep);
    if (nd == 0)
        printf("config %s: in sync\n", cfgpath);
    else
        printf("config %s: %d difference(s)%s (run `vmgate firewall apply`):\n%s", cfgpath, nd,
               schema_ok ? "" : ", layout differs", rep.s ? rep.s : "");
    fw_sb_free(&rep);
    fw_plan_range_str(p, rng, sizeof rng);
    printf("protected range (config): %s\n", rng);
    return nd ? 1 : 0;
}

static void print_counters(const struct fw_live *l)
{
    printf("counters:\n");
    for (size_t i = 0; i < fw_n_counters; i++) {
        const struct fw_live_counter *k = fw_live_find_counter(l, fw_counters[i].name);
        if (k)
            printf("  %-13s %10" PRIu64 " %-11s  %s\n", k->name, k->packets, fw_counters[i].unit,
                   fw_counters[i].what);
        else
            printf("  %-13s %10s\n", fw_counters[i].name, "missing");
    }
}

static void print_bans(const struct fw_live *l)
{
    const struct fw_live_set *bans[] = { fw_live_find_set(l, "ban4"), fw_live_find_set(l, "ban6") };
    size_t nb = 0;
    for (int k = 0; k < 2; k++)
        nb += bans[k] ? bans[k]->n_el : 0;
    printf("bans: %zu\n", nb);
    for (int k = 0; k < 2; k++) {
        for (size_t i = 0; bans[k] && i < bans[k]->n_el; i++) {
            const struct fw_iv *e = &bans[k]->el[i];
            char a[96], left[32], total[32];
            fw_iv_str(e, a, sizeof a);
            if (!e->has_timeout) {
                printf("  %-40s permanent\n", a);
                continue;
            }
            fmt_ms(e->expires_s * 1000, left, sizeof left);
            fmt_ms(e->timeout_s * 1000, total, sizeof total);
            printf("  %-40s %s left (of %s)\n", a, e->expires_s ? left : "<1s", total);
        }
    }
}

/* status: works without a config (then drift is not checked and the exit
 * status is 1); 0 only when the table is installed and matches the config. */
static int cmd_status(const char *cfgpath, bool explicit)
{
    struct fw_live l;
    char err[1024];
    if (fw_nx_fetch(&l, err, sizeof err) < 0) {
        say_err("status: %s", err);
        return 1;
    }
    struct cfg c;
    bool have_cfg = false, missing = false;
    struct fw_plan p;
    memset(&p, 0, sizeof p);
    if (load_cfg(cfgpath, explicit, &c, &missing) == 0) {
        if (fw_plan_build(&c, &p, err, sizeof err) < 0)
            say_err("%s: %s", cfgpath, err);
        else
            have_cfg = true;
        cfg_free(&c);
    } else if (missing) {
        say_err("no config at %s (use -c FILE): drift not checked", cfgpath);
    }
    int rc = have_cfg ? 0 : 1;

    char ps[256] = "see gw_ports";
    if (!l.present) {
        printf("table inet vmgate: not installed: vmgate is not protecting the console ports "
               "(run `vmgate firewall apply`)\n");
        rc = 1;
    } else {
        printf("table inet vmgate: installed\n");
        if (have_cfg) {
            rc |= print_drift(cfgpath, &p, &l);
            ports_str(&p, ps, sizeof ps);
        }
        print_set("vmgate's ports:", fw_live_find_set(&l, "gw_ports"));
        print_set("allowed IPv4 sources:", fw_live_find_set(&l, "raw_allow4"));
        print_set("allowed IPv6 sources:", fw_live_find_set(&l, "raw_allow6"));
        print_counters(&l);
        print_bans(&l);
    }
    fflush(stdout);
    warn_foreign(ps);
    fw_plan_free(&p);
    fw_live_free(&l);
    return rc;
}

/* What fw_allow/fw_deny/fw_ban/fw_unban returned: -1 is an error (exit 1),
 * 1 "nothing to do" (err says why; exit 0).  On 0 it parses arg again, as
 * fw_* did, into n and its canonical text a, and returns -1: go on. */
static int changed(const char *sub, int rc, const char *err, const char *arg, struct addr_net *n,
                   char *a, size_t cap)
{
    char why[256];
    if (rc < 0) {
        say_err("%s: %s", sub, err);
        return 1;
    }
    if (rc == 1) {
        printf("%s; nothing changed\n", err);
        return 0;
    }
    if (addr_net_parse(arg, true, n, why, sizeof why) < 0)   /* cannot fail: fw_* accepted it */
        return 1;
    addr_net_str(n, a, cap);
    return -1;
}

/* allow / deny CIDR: the live set only; the config (when it can be read)
 * tells whether the next apply keeps the change. */
static int cmd_allow(const char *arg, bool deny, const char *cfgpath, bool explicit)
{
    struct addr_net n;
    char err[512], a[64], why[256];
    int rc = deny ? fw_deny(arg, err, sizeof err) : fw_allow(arg, err, sizeof err);
    rc = changed(deny ? "deny" : "allow", rc, err, arg, &n, a, sizeof a);
    if (rc >= 0)
        return rc;
    /* Say whether the next apply keeps this change. */
    struct cfg c;
    bool missing, listed = false;
    if (load_cfg(cfgpath, explicit, &c, &missing) == 0) {
        for (size_t i = 0; i < c.fw.n_allow && !listed; i++) {
            struct addr_net m;
            listed = addr_net_parse(c.fw.allow[i], true, &m, why, sizeof why) == 0 &&
                     addr_net_cmp(&m, &n) == 0;
        }
        cfg_free(&c);
    }
    if (!deny)
        printf("allowed %s to reach the protected range%s\n", a,
               listed ? "" : " until the next apply (add it to [firewall] allow to keep it)");
    else
        printf("removed %s from the allowlist%s\n", a,
               listed ? " until the next apply (the config still lists it)" : "");
    return 0;
}

static fw_ban_note_fn g_ban_note;

void fw_set_ban_note(fw_ban_note_fn fn) { g_ban_note = fn; }

/* ban ADDR [--for DUR]: without --for, [firewall] ban_time from the config
 * (-c FILE, or the default file when it exists), else 15m. */
static int cmd_ban(const char *arg, const char *dur, const char *cfgpath, bool explicit)
{
    uint64_t ms = FW_DEF_BAN_MS;
    struct addr_net n;
    char err[512], d[32], a[64];
    if (dur) {
        if (cfg_parse_duration_ms(dur, &ms) < 0)
            return usage("--for: not a duration (use 30s, 15m, 2h, 1d)", dur);
    } else {
        struct cfg c;
        bool missing;
        if (load_cfg(cfgpath, explicit, &c, &missing) == 0) {
            ms = c.fw.ban_time_ms;
            cfg_free(&c);
        } else if (!missing) {
            return 1;
        }
    }
    int rc = changed("ban", fw_ban(arg, ms, err, sizeof err), err, arg, &n, a, sizeof a);
    if (rc >= 0)
        return rc;
    fmt_ms(ms, d, sizeof d);
    printf("banned %s on vmgate's ports for %s\n", a, d);
    fflush(stdout);
    if (g_ban_note) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        g_ban_note(cfgpath, true, a,
                   (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u + ms);
    }
    return 0;
}

static int cmd_unban(const char *arg, const char *cfgpath)
{
    struct addr_net n;
    char err[512], a[64];
    int rc = changed("unban", fw_unban(arg, err, sizeof err), err, arg, &n, a, sizeof a);
    if (rc >= 0)
        return rc;
    printf("unbanned %s\n", a);
    fflush(stdout);
    if (g_ban_note)
        g_ban_note(cfgpath, false, a, 0);
    return 0;
}

/* The subcommands; arg names the positional argument of those that take one. */
static const struct {
    const char *name, *arg;
} subcommands[] = {
    { "apply", NULL }, { "remove", NULL }, { "status", NULL }, { "show", NULL },
    { "allow", "CIDR" }, { "deny", "CIDR" }, { "ban", "ADDR" }, { "unban", "ADDR" },
};

/* argv[0] is the subcommand.  Options may come before or after the
 * positional argument; "--" ends them. */
int fw_cmd(int argc, char **argv)
{
    if (argc < 1 || !argv[0])
        return usage("missing subcommand", NULL);
    const char *sub = argv[0];
    if (!strcmp(sub, "-h") || !strcmp(sub, "--help") || !strcmp(sub, "help")) {
        fputs(usage_text, stdout);
        return 0;
    }
    const char *cfgpath = CFG_DEFAULT_FILE, *dur = NULL, *pos = NULL;
    bool explicit = false, dashdash = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (dashdash || a[0] != '-' || a[1] == '\0') {
            if (pos)
                return usage("unexpected argument", a);
            pos = a;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage_text, stdout);
            return 0;
        } else if (!strcmp(a, "--")) {
            dashdash = true;
        } else if (!strcmp(a, "-c") || !strcmp(a, "--config")) {
            if (++i >= argc)
                return usage("missing FILE after", a);
            cfgpath = argv[i];
            explicit = true;
        } else if (!strncmp(a, "--config=", 9)) {
            cfgpath = a + 9;
            explicit = true;
        } else if (!strcmp(a, "--for")) {
            if (++i >= argc)
                return usage("missing DURATION after", a);
            dur = argv[i];
        } else if (!strncmp(a, "--for=", 6)) {
            dur = a + 6;
        } else {
            return usage("unknown option", a);
        }
    }
    if (!*cfgpath)
        return usage("empty config file name", NULL);

    size_t k = 0;
    while (k < sizeof subcommands / sizeof subcommands[0] && strcmp(sub, subcommands[k].name))
        k++;
    if (k == sizeof subcommands / sizeof subcommands[0])
        return usage("unknown subcommand", sub);
    const char *takes = subcommands[k].arg;
    if (takes && !pos) {
        char what[32];
        snprintf(what, sizeof what, "missing %s for", takes);
        return usage(what, sub);
    }
    if (!takes && pos)
        return usage("unexpected argument", pos);
    if (dur && strcmp(sub, "ban") != 0)
        return usage("--for only goes with", "ban");

    if (!strcmp(sub, "apply"))
        return cmd_apply(cfgpath);
    if (!strcmp(sub, "remove"))
        return cmd_remove();
    if (!strcmp(sub, "status"))
        return cmd_status(cfgpath, explicit);
    if (!strcmp(sub, "show"))
        return cmd_show(cfgpath);
    if (!strcmp(sub, "allow") || !strcmp(sub, "deny"))
        return cmd_allow(pos, !strcmp(sub, "deny"), cfgpath, explicit);
    if (!strcmp(sub, "ban"))
        return cmd_ban(pos, dur, cfgpath, explicit);
    return cmd_unban(pos, cfgpath);
}
