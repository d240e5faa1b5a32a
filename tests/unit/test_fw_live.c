/* tests/unit/test_fw_live.c — the firewall's pure helpers (addresses are
 * tested in test_addr.c): intervals, the JSON reader, reading nft's
 * listing and comparing it with the config (drift), and the foreign-drop
 * warning.  The listings
 * tests/firewall/live-a.json and chains-drop.json were captured from
 * nft 1.0.6: `nft -j list table inet vmgate` after `vmgate firewall apply`,
 * a ban and a run-time allow; `nft -j list chains` with two drop-policy
 * tables.  test_fw_nft.c checks the same against the running kernel. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "firewall/fw_int.h"
#include "firewall/fw_json.h"
#include "fw_test_util.h"

/* ---- intervals (addresses: test_addr.c) ---- */

static struct addr_net net(const char *s)
{
    struct addr_net n;
    char err[256];
    if (addr_net_parse(s, true, &n, err, sizeof err) != 0)
        fail_msg("%s: %s", s, err);
    return n;
}

static void test_intervals(void **state)
{
    (void)state;
    struct addr_net a = net("10.0.0.0/8"), b = net("2001:db8:1:2::/64");
    struct fw_iv iv, jv;
    char s[96];
    fw_iv_from_net(&a, &iv);
    fw_iv_str(&iv, s, sizeof s);
    assert_string_equal(s, "10.0.0.0/8");
    assert_int_equal(iv.hi[0], 10);
    assert_int_equal(iv.hi[3], 255);
    fw_iv_from_net(&b, &jv);
    fw_iv_str(&jv, s, sizeof s);
    assert_string_equal(s, "2001:db8:1:2::/64");
    assert_false(fw_iv_overlaps(&iv, &jv));
    /* a range that is not a prefix prints as lo-hi */
    struct addr_net x = net("10.0.0.1"), y = net("10.0.0.6");
    struct fw_iv r, ry;
    fw_iv_from_net(&x, &r);
    fw_iv_from_net(&y, &ry);
    memcpy(r.hi, ry.hi, sizeof r.hi);
    fw_iv_str(&r, s, sizeof s);
    assert_string_equal(s, "10.0.0.1-10.0.0.6");
    assert_true(fw_iv_contains(&iv, &r));
    assert_true(fw_iv_overlaps(&r, &ry));
    struct addr_net back;
    assert_false(fw_iv_to_net(&r, &back));
    struct fw_iv p;
    fw_iv_from_port(5900, 6100, &p);
    fw_iv_str(&p, s, sizeof s);
    assert_string_equal(s, "5900-6100");
    fw_iv_from_port(443, 443, &p);
    fw_iv_str(&p, s, sizeof s);
    assert_string_equal(s, "443");
}

/* ---- JSON ---- */

static void test_json(void **state)
{
    (void)state;
    char err[128];
    struct fwj *v = fwj_parse(" {\"a\": [1, -2, true, false, null, \"x\\\"\\u00e9\\ud83d\\ude00\"],"
                              " \"b\": {\"c\": 12345678901}} ", err, sizeof err);
    assert_non_null(v);
    const struct fwj *a = fwj_get(v, "a");
    assert_non_null(a);
    assert_int_equal(a->type, FWJ_ARR);
    assert_int_equal(a->n, 6);
    assert_int_equal(a->kids[1].num, -2);
    assert_int_equal(a->kids[2].type, FWJ_BOOL);
    assert_int_equal(a->kids[4].type, FWJ_NULL);
    assert_string_equal(a->kids[5].str, "x\"\xc3\xa9\xf0\x9f\x98\x80");
    int64_t n;
    assert_true(fwj_num(fwj_get(v, "b"), "c", &n));
    assert_true(n == INT64_C(12345678901));
    assert_null(fwj_str(v, "missing"));
    fwj_free(v);

    static const char *const bad[] = {
        "", "{", "[1,]", "{\"a\" 1}", "{\"a\":1,}", "\"abc", "[1] x", "tru", "\"\\q\"",
        "\"\\u12\"", "[\"a\nb\"]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = fwj_parse(bad[i], err, sizeof err);
        if (v)
            fail_msg("accepted bad JSON #%zu", i);
        assert_true(strncmp(err, "JSON: ", 6) == 0);
    }
    /* depth limit */
    char deep[300];
    memset(deep, '[', 150);
    memset(deep + 150, ']', 150);
    deep[299] = '\0';
    deep[149] = '1';
    assert_null(fwj_parse(deep, err, sizeof err));
    assert_non_null(strstr(err, "nested too deeply"));
}

/* Fractions and exponents are accepted and truncated, but a value outside
 * int64 is refused: converting it would be undefined behaviour (found by
 * fuzz_fwjson, tests/fuzz/regress/fwjson/). */
static void test_json_number_range(void **state)
{
    (void)state;
    char err[128];
    struct fwj *v = fwj_parse("[1.5, -2.9e3, 9.2e18, -9.2e18, 0.0]", err, sizeof err);
    assert_non_null(v);
    assert_int_equal(v->n, 5);
    assert_true(v->kids[0].num == 1);
    assert_true(v->kids[1].num == -2900);
    assert_true(v->kids[2].num == INT64_C(9200000000000000000));
    assert_true(v->kids[3].num == -INT64_C(9200000000000000000));
    assert_true(v->kids[4].num == 0);
    fwj_free(v);

    static const char *const out_of_range[] = {
        "1e999", "-1e999", "[1.0e400]", "9.3e18", "-9.3e18", "1e19", "9223372036854775808.0",
        "{\"a\": 1.5e300}",
    };
    for (size_t i = 0; i < sizeof out_of_range / sizeof out_of_range[0]; i++) {
        v = fwj_parse(out_of_range[i], err, sizeof err);
        if (v)
            fail_msg("accepted out-of-range number #%zu: %s", i, out_of_range[i]);
        assert_non_null(strstr(err, "bad number"));
    }
}

/* An element of another family than its set's type (a prefix in a port
 * set, IPv6 in an ipv4_addr set, a mapped address in an ipv6_addr set) is
 * not taken as an element of the wrong family but counted as unreadable
 * (found by fuzz_fwjson). */
static void test_live_set_family(void **state)
{
    (void)state;
    static const struct {
        const char *type, *elems;
        size_t n_el;
        int family;
    } cases[] = {
        { "ipv4_addr", "\"10.0.0.1\", \"2001:db8::1\", {\"prefix\": {\"addr\": \"2001:db8::\", \"len\": 32}}",
          1, 4 },
        { "ipv6_addr", "\"2001:db8::1\", \"::ffff:10.0.0.1\", {\"elem\": {\"val\": \"10.0.0.2\", \"timeout\": 5}}",
          1, 6 },
        { "inet_service", "5900, {\"prefix\": {\"addr\": \"10.0.0.0\", \"len\": 8}}, {\"range\": [\"::1\", \"::2\"]}",
          1, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char json[512], err[128];
        snprintf(json, sizeof json,
                 "{\"nftables\": [{\"set\": {\"family\": \"inet\", \"name\": \"s\", \"table\": \"vmgate\","
                 " \"type\": \"%s\", \"flags\": [\"interval\"], \"elem\": [%s]}}]}",
                 cases[i].type, cases[i].elems);
        struct fw_live_set s;
        assert_int_equal(fw_live_parse_set(json, &s, err, sizeof err), 0);
        if (s.n_el != cases[i].n_el)
            fail_msg("case %zu (%s): %zu elements read, want %zu", i, cases[i].type, s.n_el,
                     cases[i].n_el);
        assert_int_equal(s.el[0].family, cases[i].family);
        assert_true(s.el_bad);
        fw_live_set_free(&s);
    }
}

/* ---- live listing ---- */

/* The plan of the config the fixture was applied from. */
static void plan_a(struct fw_plan *p)
{
    memset(p, 0, sizeof *p);
    p->lo = 5900;
    p->hi = 6100;
    p->ports[0] = 5902;
    p->ports[1] = 5932;
    p->n_ports = 2;
    p->allow4 = calloc(4, sizeof *p->allow4);
    p->allow6 = calloc(4, sizeof *p->allow6);
    p->allow4[0] = net("10.99.1.0/24");
    p->n_allow4 = 1;
    p->allow6[0] = net("fd00:99:1::/64");
    p->n_allow6 = 1;
}

static void test_live_parse(void **state)
{
    (void)state;
    char *js = fw_test_fixture("live-a.json");
    struct fw_live l;
    char err[256], s[96];
    assert_int_equal(fw_live_parse(js, &l, err, sizeof err), 0);
    assert_true(l.present);
    assert_int_equal(l.n_sets, 5);
    assert_int_equal(l.n_counters, 5);
    assert_int_equal(l.n_chains, 1);
    assert_int_equal(l.n_rules, fw_rule_count());
    assert_int_equal(l.n_other, 0);
    const struct fw_live_counter *c = fw_live_find_counter(&l, "raw_rejected");
    assert_non_null(c);
    assert_int_equal(c->packets, 4);
    assert_int_equal(c->bytes, 240);
    const struct fw_live_set *gw = fw_live_find_set(&l, "gw_ports");
    assert_non_null(gw);
    assert_int_equal(gw->n_el, 2);
    fw_iv_str(&gw->el[1], s, sizeof s);
    assert_string_equal(s, "5932");
    const struct fw_live_set *b4 = fw_live_find_set(&l, "ban4");
    assert_non_null(b4);
    assert_true(b4->f_interval && b4->f_timeout);
    assert_int_equal(b4->size, 65536);
    assert_int_equal(b4->n_el, 1);
    fw_iv_str(&b4->el[0], s, sizeof s);
    assert_string_equal(s, "10.99.0.9");
    assert_true(b4->el[0].has_timeout);
    assert_int_equal(b4->el[0].timeout_s, 3600);
    assert_int_equal(b4->el[0].expires_s, 3599);
    const struct fw_live_set *b6 = fw_live_find_set(&l, "ban6");
    assert_non_null(b6);
    fw_iv_str(&b6->el[0], s, sizeof s);
    assert_string_equal(s, "2001:db8:1:2::/64");
    assert_int_equal(b6->el[0].timeout_s, 900);
    assert_string_equal(l.chains[0].hook, "input");
    assert_int_equal(l.chains[0].prio, -10);
    fw_live_free(&l);
    free(js);
}

static void test_diff_runtime_allow(void **state)
{
    (void)state;
    char *js = fw_test_fixture("live-a.json");
    struct fw_live l;
    struct fw_plan p;
    char err[256];
    assert_int_equal(fw_live_parse(js, &l, err, sizeof err), 0);
    plan_a(&p);
    bool ok = false;
    struct fw_sb rep = { 0 };
    /* the fixture has 192.168.7.0/24 added at run time */
    assert_int_equal(fw_diff(&p, &l, &ok, &rep), 1);
    assert_true(ok);
    assert_string_equal(rep.s, "  - raw_allow4 (allowed IPv4): not in the config: 192.168.7.0/24 "
                               "(added with `vmgate firewall allow`?)\n");
    fw_sb_free(&rep);

    /* once the config lists it too, the table is in sync */
    p.allow4[1] = net("192.168.7.0/24");
    p.n_allow4 = 2;
    assert_int_equal(fw_diff(&p, &l, &ok, &rep), 0);
    assert_true(ok);
    assert_null(rep.s);

    /* another range and other ports: rules and gw_ports differ, layout is fine */
    p.lo = 5900;
    p.hi = 5999;
    p.ports[1] = 5933;
    assert_int_equal(fw_diff(&p, &l, &ok, &rep), 3);
    assert_true(ok);
    assert_string_equal(rep.s,
                        "  - gw_ports (vmgate's ports): missing 5933\n"
                        "  - gw_ports (vmgate's ports): not in the config: 5932\n"
                        "  - rule 1 is \"vmgate: loopback to 5900-6100, new\", expected "
                        "\"vmgate: loopback to 5900-5999, new\"\n");
    fw_sb_free(&rep);
    fw_plan_free(&p);
    fw_live_free(&l);
    free(js);
}

/* Replace the first occurrence of from with to (same buffer, reallocated). */
static char *edit(char *s, const char *from, const char *to)
{
    char *at = strstr(s, from);
    if (!at)   /* (not naming from: GCC's UBSan checks make it "maybe null" there) */
        fail_msg("the fixture lacks the text to edit");
    size_t pre = (size_t)(at - s), fl = strlen(from), tl = strlen(to), rest = strlen(at + fl);
    char *o = malloc(pre + tl + rest + 1);
    assert_non_null(o);
    memcpy(o, s, pre);
    memcpy(o + pre, to, tl);
    memcpy(o + pre + tl, at + fl, rest + 1);
    free(s);
    return o;
}

/* A hand edit of the captured table, and what fw_diff must make of it
 * (against the fixture's config plus its run-time allow). */
struct layout_case {
    const char *what, *from, *to;
    int ndiff;
    bool layout_ok;
    const char *report;
};

static const struct layout_case layout_cases[] = {
    { "ban4 without timeouts: cannot be refreshed in place",
      "\"size\": 65536, \"flags\": [\"interval\", \"timeout\"]",
      "\"size\": 65536, \"flags\": [\"interval\"]", 1, false,
      "  - set ban4 is ipv4_addr (flags interval), expected ipv4_addr (flags interval,timeout)\n" },
    { "the chain's policy changed by hand",
      "\"policy\": \"accept\"", "\"policy\": \"drop\"", 1, false,
      "  - chain input is type filter hook input priority -10 policy drop, expected type filter "
      "hook input priority -10 policy accept\n" },
    { "a counter renamed: one missing, one unexpected",
      "\"name\": \"gw_new\"", "\"name\": \"gw_old\"", 2, false,
      "  - counter gw_new is missing\n  - unexpected counter gw_old\n" },
    { "a rule's comment edited: content drift, layout still fine",
      "\"comment\": \"vmgate: loopback\"", "\"comment\": \"mine\"", 1, true,
      "  - rule 2 is \"mine\", expected \"vmgate: loopback\"\n" },
};

static void test_diff_layout(void **state)
{
    (void)state;
    struct fw_live l;
    struct fw_plan p;
    struct fw_sb rep = { 0 };
    char err[256];
    bool ok = true;
    for (size_t i = 0; i < sizeof layout_cases / sizeof layout_cases[0]; i++) {
        const struct layout_case *t = &layout_cases[i];
        print_message("  %s\n", t->what);
        char *js = edit(fw_test_fixture("live-a.json"), t->from, t->to);
        assert_int_equal(fw_live_parse(js, &l, err, sizeof err), 0);
        plan_a(&p);
        p.allow4[1] = net("192.168.7.0/24");
        p.n_allow4 = 2;
        assert_int_equal(fw_diff(&p, &l, &ok, &rep), t->ndiff);
        assert_int_equal(ok, t->layout_ok);
        assert_string_equal(rep.s, t->report);
        fw_sb_free(&rep);
        fw_plan_free(&p);
        fw_live_free(&l);
        free(js);
    }

    /* not installed */
    assert_int_equal(fw_live_parse("{\"nftables\": [{\"metainfo\": {}}, {\"table\": "
                                   "{\"family\": \"ip\", \"name\": \"vmgate\"}}]}",
                                   &l, err, sizeof err), 0);
    assert_false(l.present);
    plan_a(&p);
    assert_int_equal(fw_diff(&p, &l, &ok, &rep), 1);
    assert_false(ok);
    assert_string_equal(rep.s, "  - table inet vmgate is not installed\n");
    fw_sb_free(&rep);
    fw_plan_free(&p);
    fw_live_free(&l);
}

static void test_live_elements(void **state)
{
    (void)state;
    static const char js[] =
        "{\"nftables\": [{\"set\": {\"family\": \"inet\", \"name\": \"ban4\", \"table\": \"vmgate\","
        " \"type\": \"ipv4_addr\", \"flags\": [\"interval\", \"timeout\"], \"elem\": ["
        " {\"range\": [\"10.0.0.1\", \"10.0.0.6\"]},"
        " \"192.0.2.9\","
        " {\"elem\": {\"val\": {\"prefix\": {\"addr\": \"198.51.100.0\", \"len\": 24}}, \"timeout\": 60, \"expires\": 30}},"
        " {\"elem\": {\"val\": \"bogus\", \"timeout\": 60}}"
        "]}}]}";
    struct fw_live_set s;
    char err[256], buf[96];
    assert_int_equal(fw_live_parse_set(js, &s, err, sizeof err), 0);
    assert_int_equal(s.n_el, 3);
    assert_true(s.el_bad);
    fw_iv_str(&s.el[0], buf, sizeof buf);
    assert_string_equal(buf, "10.0.0.1-10.0.0.6");
    fw_iv_str(&s.el[1], buf, sizeof buf);
    assert_string_equal(buf, "192.0.2.9");
    fw_iv_str(&s.el[2], buf, sizeof buf);
    assert_string_equal(buf, "198.51.100.0/24");
    assert_int_equal(s.el[2].expires_s, 30);
    assert_false(s.el[1].has_timeout);
    fw_live_set_free(&s);

    assert_int_equal(fw_live_parse("{\"x\": 1}", &(struct fw_live){ 0 }, err, sizeof err), -1);
    assert_string_equal(err, "nft listing: no \"nftables\" array");
}

static void test_foreign_drops(void **state)
{
    (void)state;
    char *js = fw_test_fixture("chains-drop.json");
    struct fw_sb out = { 0 };
    char err[256];
    assert_int_equal(fw_foreign_drops(js, &out, err, sizeof err), 2);
    assert_string_equal(out.s,
                        "table inet filter, chain input (hook input, priority 0, policy drop)\n"
                        "table netdev ingressfw, chain ing (hook ingress, priority 0, policy drop)\n");
    fw_sb_free(&out);
    free(js);
    /* our own chain never counts, even with policy drop */
    static const char own[] = "{\"nftables\": [{\"chain\": {\"family\": \"inet\", \"table\": "
                              "\"vmgate\", \"name\": \"input\", \"hook\": \"input\", \"prio\": -10, "
                              "\"policy\": \"drop\"}}]}";
    assert_int_equal(fw_foreign_drops(own, &out, err, sizeof err), 0);
    fw_sb_free(&out);
}

/* The rendered comments are what fw_diff compares against. */
static void test_rule_comments(void **state)
{
    (void)state;
    struct fw_plan p;
    memset(&p, 0, sizeof p);
    p.lo = 7000;
    p.hi = 7000;
    char buf[160];
    assert_string_equal(fw_rule_comment(&p, 0, buf, sizeof buf), "vmgate: loopback to 7000, new");
    assert_string_equal(fw_rule_comment(&p, fw_rule_count() - 1, buf, sizeof buf),
                        "vmgate: reject the rest of 7000");
    assert_null(fw_rule_comment(&p, fw_rule_count(), buf, sizeof buf));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_intervals),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_json_number_range),
        cmocka_unit_test(test_live_parse),
        cmocka_unit_test(test_live_set_family),
        cmocka_unit_test(test_diff_runtime_allow),
        cmocka_unit_test(test_diff_layout),
        cmocka_unit_test(test_live_elements),
        cmocka_unit_test(test_foreign_drops),
        cmocka_unit_test(test_rule_comments),
    };
    return cmocka_run_group_tests_name("fw_live", tests, NULL, NULL);
}
