/* tests/unit/test_fw_nft.c — fw_nft.c against the running kernel.
 *
 * test_fw_live.c checks the parser and the drift comparison on listings
 * captured from nft once; here the same functions read what this host's
 * libnftables and kernel hold right now: apply, run-time allow, bans, a
 * layout change that replaces the table, and another table's drop policy.
 * Each test runs in a network namespace of its own (unshare), so the
 * host's ruleset is never touched; without the privilege for that (not
 * root) the tests are skipped. */
#include <fcntl.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <nftables/libnftables.h>

#include "firewall/firewall.h"
#include "firewall/fw_int.h"
#include "fw_test_util.h"

/* ---- a private network namespace per test ---- */

struct netns {
    int orig;       /* the namespace to go back to */
    bool entered;
};

static int enter_netns(void **state)
{
    static struct netns ns;
    ns.orig = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    ns.entered = ns.orig >= 0 && unshare(CLONE_NEWNET) == 0;
    *state = &ns;
    return 0;
}

static int leave_netns(void **state)
{
    struct netns *ns = *state;
    int rc = 0;
    if (ns->entered && setns(ns->orig, CLONE_NEWNET) != 0)
        rc = -1;
    if (ns->orig >= 0)
        close(ns->orig);
    return rc;
}

#define NEED_NETNS(state)                                                         \
    do {                                                                          \
        if (!((struct netns *)*(state))->entered) {                               \
            print_message("  needs root: a private network namespace for nft\n"); \
            skip();                                                               \
        }                                                                         \
    } while (0)

/* Run nft commands as the admin would (another table, a hand edit). */
static void nft(const char *cmds)
{
    struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);
    assert_non_null(ctx);
    nft_ctx_buffer_error(ctx);
    int rc = nft_run_cmd_from_buffer(ctx, cmds);
    if (rc != 0)
        fail_msg("nft %s: %s", cmds, nft_ctx_get_error_buffer(ctx));
    nft_ctx_free(ctx);
}

/* ---- the config of tests/firewall/live-a.json ---- */

static const char *const allow_a[] = { "10.99.1.0/24", "fd00:99:1::/64" };
static const struct fw_test_vm vms_a[] = { { "dev0", 5902, 5932 } };

static struct cfg *cfg_a(void)
{
    return fw_test_cfg("::", 5900, 6100, allow_a, 2, vms_a, 1);
}

static void fetch(struct fw_live *l)
{
    char err[512];
    if (fw_nx_fetch(l, err, sizeof err) != 0)
        fail_msg("fw_nx_fetch: %s", err);
}

static void apply(const struct cfg *c, int want_what, size_t want_carried)
{
    char err[512];
    int what = -1;
    size_t carried = 99;
    if (fw_nx_apply(c, &what, &carried, err, sizeof err) != 0)
        fail_msg("fw_nx_apply: %s", err);
    assert_int_equal(what, want_what);
    assert_int_equal(carried, want_carried);
}

/* fw_diff of the live table against c: the count, layout_ok, the report. */
static int drift(const struct cfg *c, bool *layout_ok, struct fw_sb *rep)
{
    struct fw_plan p;
    struct fw_live l;
    char err[512];
    assert_int_equal(fw_plan_build(c, &p, err, sizeof err), 0);
    fetch(&l);
    int n = fw_diff(&p, &l, layout_ok, rep);
    fw_live_free(&l);
    fw_plan_free(&p);
    return n;
}

static void el_str(const struct fw_live_set *s, size_t i, char *out, size_t cap)
{
    assert_non_null(s);
    assert_true(i < s->n_el);
    fw_iv_str(&s->el[i], out, cap);
}

/* ---- tests ---- */

/* What apply installs reads back as this version's layout, in sync; a
 * run-time allow is drift (reported as with the captured listing) until
 * the next apply puts the config's list back. */
static void test_apply_roundtrip(void **state)
{
    NEED_NETNS(state);
    struct cfg *c = cfg_a();
    char err[512], s[96];
    assert_int_equal(fw_table_present(), 0);
    apply(c, FW_APPLY_INSTALLED, 0);
    assert_int_equal(fw_table_present(), 1);

    struct fw_live l;
    fetch(&l);
    assert_true(l.present);
    assert_int_equal(l.n_sets, fw_n_sets);
    assert_int_equal(l.n_counters, fw_n_counters);
    assert_int_equal(l.n_chains, 1);
    assert_int_equal(l.n_rules, fw_rule_count());
    assert_int_equal(l.n_other, 0);
    assert_string_equal(l.chains[0].hook, "input");
    assert_int_equal(l.chains[0].prio, -10);
    assert_string_equal(l.chains[0].policy, "accept");
    const struct fw_live_set *gw = fw_live_find_set(&l, "gw_ports");
    el_str(gw, 1, s, sizeof s);
    assert_string_equal(s, "5932");
    el_str(fw_live_find_set(&l, "raw_allow6"), 0, s, sizeof s);
    assert_string_equal(s, "fd00:99:1::/64");
    const struct fw_live_set *b4 = fw_live_find_set(&l, "ban4");
    assert_non_null(b4);
    assert_true(b4->f_interval && b4->f_timeout);
    assert_int_equal(b4->size, FW_BAN_SET_SIZE);
    fw_live_free(&l);

    bool ok = false;
    struct fw_sb rep = { 0 };
    assert_int_equal(drift(c, &ok, &rep), 0);
    assert_true(ok);
    assert_null(rep.s);
    apply(c, FW_APPLY_NOOP, 0);

    assert_int_equal(fw_allow("192.168.7.0/24", err, sizeof err), 0);
    assert_int_equal(fw_allow("192.168.7.9", err, sizeof err), 1);
    assert_string_equal(err, "192.168.7.9 is already allowed (by 192.168.7.0/24)");
    assert_int_equal(drift(c, &ok, &rep), 1);
    assert_true(ok);
    assert_string_equal(rep.s, "  - raw_allow4 (allowed IPv4): not in the config: 192.168.7.0/24 "
                               "(added with `vmgate firewall allow`?)\n");
    fw_sb_free(&rep);
    apply(c, FW_APPLY_REFRESHED, 0);
    assert_int_equal(drift(c, &ok, &rep), 0);
    fw_test_cfg_free(c);
}

/* Bans read back with their timeouts; a table of another layout is
 * replaced whole, and its bans are carried over with the time they had. */
static void test_bans_carried(void **state)
{
    NEED_NETNS(state);
    struct cfg *c = cfg_a();
    char err[512], s[96];
    apply(c, FW_APPLY_INSTALLED, 0);
    assert_int_equal(fw_ban("10.99.0.9", 3600 * 1000, err, sizeof err), 0);
    assert_int_equal(fw_ban("2001:db8:1:2::5/64", 900 * 1000, err, sizeof err), 0);
    assert_int_equal(fw_ban("2001:db8:1:2::7", 900 * 1000, err, sizeof err), -1);
    assert_non_null(strstr(err, "already banned as part of 2001:db8:1:2::/64"));

    nft("add set inet vmgate leftover { type ipv4_addr; }");
    bool ok = true;
    struct fw_sb rep = { 0 };
    assert_int_equal(drift(c, &ok, &rep), 1);
    assert_false(ok);
    assert_string_equal(rep.s, "  - unexpected set leftover\n");
    fw_sb_free(&rep);
    apply(c, FW_APPLY_REPLACED, 2);
    assert_int_equal(drift(c, &ok, &rep), 0);
    assert_true(ok);

    struct fw_live l;
    fetch(&l);
    const struct fw_live_set *b4 = fw_live_find_set(&l, "ban4"), *b6 = fw_live_find_set(&l, "ban6");
    el_str(b4, 0, s, sizeof s);
    assert_string_equal(s, "10.99.0.9");
    assert_true(b4->el[0].has_timeout);
    assert_in_range(b4->el[0].expires_s, 3500, 3600);
    el_str(b6, 0, s, sizeof s);
    assert_string_equal(s, "2001:db8:1:2::/64");
    assert_in_range(b6->el[0].expires_s, 800, 900);
    fw_live_free(&l);

    assert_int_equal(fw_unban("10.99.0.9", err, sizeof err), 0);
    assert_int_equal(fw_unban("10.99.0.9", err, sizeof err), 1);
    assert_string_equal(err, "10.99.0.9 was not banned");
    assert_int_equal(fw_remove(err, sizeof err), 0);
    assert_int_equal(fw_table_present(), 0);
    assert_int_equal(fw_remove(err, sizeof err), 0);
    fw_test_cfg_free(c);
}

/* Another table's drop policy, as `list chains` reports it. */
static void test_foreign_drops_live(void **state)
{
    NEED_NETNS(state);
    struct cfg *c = cfg_a();
    apply(c, FW_APPLY_INSTALLED, 0);
    nft("add table inet filter\n"
        "add chain inet filter input { type filter hook input priority 0; policy drop; }\n");
    char *js = NULL, err[512];
    struct fw_sb out = { 0 };
    assert_int_equal(fw_nx_list_chains(&js, err, sizeof err), 0);
    assert_int_equal(fw_foreign_drops(js, &out, err, sizeof err), 1);
    assert_string_equal(out.s,
                        "table inet filter, chain input (hook input, priority 0, policy drop)\n");
    fw_sb_free(&out);
    free(js);
    fw_test_cfg_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_apply_roundtrip, enter_netns, leave_netns),
        cmocka_unit_test_setup_teardown(test_bans_carried, enter_netns, leave_netns),
        cmocka_unit_test_setup_teardown(test_foreign_drops_live, enter_netns, leave_netns),
    };
    return cmocka_run_group_tests_name("fw_nft", tests, NULL, NULL);
}
