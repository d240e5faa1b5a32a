/* tests/unit/test_fw_render.c — golden tests for the nftables renderer.
 *
 * Config in, exact ruleset text out: each test fills a struct cfg by hand
 * (one goes through cfg_parse), renders it with fw_render() and compares
 * the text byte for byte with tests/firewall/NAME.nft.  Then the
 * validation errors, each with its exact message.
 *
 * The golden directory is found as fw_test_util.h says.
 * VMGATE_UPDATE_GOLDEN=1 rewrites the files instead of comparing. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/config.h"
#include "firewall/firewall.h"
#include "fw_test_util.h"

#define RENDER_CAP (256 * 1024)

/* ---- golden files ---- */

/* Compare text with the golden file; on a mismatch print the first
 * differing line of each and fail. */
static void check_golden(const char *name, const char *text)
{
    char path[FW_TEST_PATH_MAX];
    fw_test_path(name, path, sizeof path);
    const char *upd = getenv("VMGATE_UPDATE_GOLDEN");
    if (upd && strcmp(upd, "1") == 0) {
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        fputs(text, f);
        fclose(f);
        return;
    }
    char *want = fw_test_slurp(path);
    if (!want)
        fail_msg("cannot read golden file %s", path);
    if (strcmp(want, text) != 0) {
        const char *a = want, *b = text;
        int line = 1;
        while (*a && *a == *b) {
            if (*a == '\n')
                line++;
            a++;
            b++;
        }
        while (a > want && a[-1] != '\n')
            a--, b--;
        print_error("%s differs at line %d\n  expected: %.*s\n  rendered: %.*s\n", name, line,
                    (int)strcspn(a, "\n"), a, (int)strcspn(b, "\n"), b);
        free(want);
        fail_msg("rendered ruleset differs from %s", path);
    }
    free(want);
}

static void golden(const char *name, const struct cfg *c)
{
    char *out = malloc(RENDER_CAP);
    assert_non_null(out);
    int n = fw_render(c, out, RENDER_CAP);
    assert_true(n > 0);
    assert_int_equal((size_t)n, strlen(out));
    check_golden(name, out);
    free(out);
}

/* ---- golden tests ---- */

static void test_v4_only(void **state)
{
    (void)state;
    static const char *const allow[] = { "192.168.10.0/24" };
    static const struct fw_test_vm vms[] = { { "dev0", 5902, 5932 }, { "web", 5903, 0 } };
    struct cfg *c = fw_test_cfg("0.0.0.0", 5900, 6100, allow, 1, vms, 2);
    golden("v4-only.nft", c);
    fw_test_cfg_free(c);
}

static void test_dual_stack(void **state)
{
    (void)state;
    static const char *const allow[] = { "2001:db8:10::/48", "198.51.100.0/24" };
    static const struct fw_test_vm vms[] = { { "dev0", 5902, 5932 }, { "dev1", 0, 5933 } };
    struct cfg *c = fw_test_cfg("::", 5900, 6100, allow, 2, vms, 2);
    golden("dual-stack.nft", c);
    fw_test_cfg_free(c);
}

/* Unsorted, with host bits set, an IPv4-mapped entry and single hosts:
 * rendered sorted, canonical, split by family. */
static void test_allowlists(void **state)
{
    (void)state;
    static const char *const allow[] = {
        "fd00:99:1::/64", "10.20.30.40/16", "2001:DB8::1", "192.0.2.7",
        "::ffff:172.16.0.0/108", "fe80::/10",   "10.21.0.0/16",
    };
    static const struct fw_test_vm vms[] = { { "a", 5901, 0 } };
    struct cfg *c =
        fw_test_cfg("0.0.0.0", 5900, 6100, allow, sizeof allow / sizeof allow[0], vms, 1);
    golden("allowlists.nft", c);
    fw_test_cfg_free(c);
}

static void test_no_vms(void **state)
{
    (void)state;
    struct cfg *c = fw_test_cfg("0.0.0.0", 5900, 6100, NULL, 0, NULL, 0);
    golden("no-vms.nft", c);
    fw_test_cfg_free(c);
}

/* A custom range with vmgate ports inside it, outside it, and duplicated. */
static void test_custom_protect(void **state)
{
    (void)state;
    static const struct fw_test_vm vms[] = { { "a", 7005, 443 }, { "b", 7006, 7100 } };
    struct cfg *c = fw_test_cfg("0.0.0.0", 7000, 7099, NULL, 0, vms, 2);
    golden("protect-7000.nft", c);
    fw_test_cfg_free(c);
}

static void test_single_port_protect(void **state)
{
    (void)state;
    static const struct fw_test_vm vms[] = { { "a", 6000, 0 } };
    struct cfg *c = fw_test_cfg("0.0.0.0", 5901, 5901, NULL, 0, vms, 1);
    golden("protect-5901.nft", c);
    fw_test_cfg_free(c);
}

/* Unset range (0-0) means the default 5900-6100: same text as no-vms. */
static void test_default_range(void **state)
{
    (void)state;
    struct cfg *a = fw_test_cfg("0.0.0.0", 0, 0, NULL, 0, NULL, 0);
    struct cfg *b = fw_test_cfg("0.0.0.0", 5900, 6100, NULL, 0, NULL, 0);
    char *x = malloc(RENDER_CAP), *y = malloc(RENDER_CAP);
    assert_true(fw_render(a, x, RENDER_CAP) > 0);
    assert_true(fw_render(b, y, RENDER_CAP) > 0);
    assert_string_equal(x, y);
    free(x);
    free(y);
    fw_test_cfg_free(a);
    fw_test_cfg_free(b);
}

/* Through the real parser: the config file format in, same golden out. */
static void test_via_cfg_parse(void **state)
{
    (void)state;
    static const char text[] =
        "[gateway]\n"
        "address = ::\n"
        "auth = file\n"
        "passwd_file = /nonexistent/passwd\n"
        "\n"
        "[firewall]\n"
        "protect = 5900-6100\n"
        "allow = 198.51.100.0/24 2001:db8:10::/48\n"
        "\n"
        "[vm dev0]\n"
        "vnc = 127.0.0.1:5999\n"
        "vnc_port = 5902\n"
        "spice = unix:/run/qemu/dev0.spice\n"
        "spice_port = 5932\n"
        "users = alice\n"
        "\n"
        "[vm dev1]\n"
        "spice = unix:/run/qemu/dev1.spice\n"
        "spice_port = 5933\n"
        "users = bob\n";
    struct cfg c;
    char err[512];
    int rc = cfg_parse("test.conf", text, sizeof text - 1, &c, err, sizeof err);
    if (rc != 0)
        fail_msg("cfg_parse: %s", err);
    golden("dual-stack.nft", &c);
    cfg_free(&c);
}

static void test_render_buffer(void **state)
{
    (void)state;
    static const struct fw_test_vm vms[] = { { "a", 5902, 0 } };
    struct cfg *c = fw_test_cfg("0.0.0.0", 5900, 6100, NULL, 0, vms, 1);
    char *out = malloc(RENDER_CAP);
    int n = fw_render(c, out, RENDER_CAP);
    assert_true(n > 100);
    /* exactly enough (n + 1) works, one byte less is ENOSPC */
    char *exact = malloc((size_t)n + 1);
    assert_int_equal(fw_render(c, exact, (size_t)n + 1), n);
    assert_string_equal(exact, out);
    errno = 0;
    assert_int_equal(fw_render(c, exact, (size_t)n), -1);
    assert_int_equal(errno, ENOSPC);
    free(exact);
    free(out);
    fw_test_cfg_free(c);
}

/* ---- validation errors ---- */

static void expect_error(uint16_t lo, uint16_t hi, const char *const *allow, size_t n,
                         const char *msg)
{
    struct cfg *c = fw_test_cfg("0.0.0.0", lo, hi, allow, n, NULL, 0);
    char err[512] = "", out[64];
    assert_int_equal(fw_validate(c, err, sizeof err), -1);
    assert_string_equal(err, msg);
    errno = 0;
    assert_int_equal(fw_render(c, out, sizeof out), -1);
    assert_int_equal(errno, EINVAL);
    fw_test_cfg_free(c);
}

/* One allow entry and the error it must get. */
struct bad_allow {
    const char *allow, *msg;
};

static void expect_errors(const struct bad_allow *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        expect_error(5900, 6100, &v[i].allow, 1, v[i].msg);
}

#define EXPECT_ERRORS(v) expect_errors(v, sizeof v / sizeof v[0])

static void test_errors_address(void **state)
{
    (void)state;
    static const struct bad_allow v[] = {
        { "10.0.0.300", "[firewall] allow: \"10.0.0.300\" is not an IPv4 or IPv6 address "
                        "(host names are not accepted)" },
        { "vnc.example.com", "[firewall] allow: \"vnc.example.com\" is not an IPv4 or IPv6 "
                             "address (host names are not accepted)" },
        { "10.1", "[firewall] allow: \"10.1\" is not an IPv4 or IPv6 address "
                  "(host names are not accepted)" },
        { "fe80::1%eth0", "[firewall] allow: \"fe80::1%eth0\" is not an IPv4 or IPv6 address "
                          "(host names are not accepted)" },
        { "[2001:db8::1]", "[firewall] allow: \"[2001:db8::1]\" is not an IPv4 or IPv6 address "
                           "(host names are not accepted)" },
        { "/24", "[firewall] allow: \"/24\" is not an IPv4 or IPv6 address" },
        { "10.0.0.1\x1b[31m", "[firewall] allow: \"10.0.0.1\\x1b[31m\" is not an IPv4 or IPv6 "
                              "address (host names are not accepted)" },
    };
    EXPECT_ERRORS(v);
}

static void test_errors_prefix(void **state)
{
    (void)state;
    static const struct bad_allow v[] = {
        { "10.0.0.0/33", "[firewall] allow: \"10.0.0.0/33\": prefix /33 is longer than an IPv4 "
                         "address (/32 at most)" },
        { "2001:db8::/129", "[firewall] allow: \"2001:db8::/129\": prefix /129 is longer than "
                            "an IPv6 address (/128 at most)" },
        { "10.0.0.0/", "[firewall] allow: \"10.0.0.0/\": the prefix length after '/' must be a "
                       "number 0-32" },
        { "10.0.0.0/08", "[firewall] allow: \"10.0.0.0/08\": the prefix length after '/' must "
                         "be a number 0-32" },
        { "10.0.0.0/-1", "[firewall] allow: \"10.0.0.0/-1\": the prefix length after '/' must "
                         "be a number 0-32" },
        { "::ffff:10.0.0.0/80", "[firewall] allow: \"::ffff:10.0.0.0/80\": write IPv4-mapped "
                                "ranges in IPv4 form" },
    };
    EXPECT_ERRORS(v);
}

static void test_errors_loopback(void **state)
{
    (void)state;
    static const struct bad_allow v[] = {
        { "127.0.0.1", "[firewall] allow: \"127.0.0.1\" is loopback, which is always allowed; "
                       "remove it" },
        { "127.0.0.0/8", "[firewall] allow: \"127.0.0.0/8\" is loopback, which is always "
                         "allowed; remove it" },
        { "::1", "[firewall] allow: \"::1\" is loopback, which is always allowed; remove it" },
        { "::ffff:127.0.0.1", "[firewall] allow: \"::ffff:127.0.0.1\" is loopback, which is "
                              "always allowed; remove it" },
        { "0.0.0.0", "[firewall] allow: \"0.0.0.0\" is the unspecified address, not a source" },
        { "::", "[firewall] allow: \"::\" is the unspecified address, not a source" },
    };
    EXPECT_ERRORS(v);
}

static void test_errors_overlap(void **state)
{
    (void)state;
    static const char *const a[] = { "10.1.0.0/16", "192.0.2.1", "10.0.0.0/8" };
    expect_error(5900, 6100, a, 3,
                 "[firewall] allow: 10.1.0.0/16 overlaps 10.0.0.0/8; keep only the larger");
    static const char *const b[] = { "10.0.0.1/24", "10.0.0.0/24" };
    expect_error(5900, 6100, b, 2, "[firewall] allow: 10.0.0.0/24 is listed twice");
    static const char *const d[] = { "2001:db8::/32", "2001:db8:1::/48" };
    expect_error(5900, 6100, d, 2,
                 "[firewall] allow: 2001:db8:1::/48 overlaps 2001:db8::/32; keep only the larger");
    /* same numbers in different families do not overlap */
    static const char *const e[] = { "0.0.0.0/8", "::/8" };
    struct cfg *c = fw_test_cfg("0.0.0.0", 5900, 6100, e, 2, NULL, 0);
    char err[256];
    assert_int_equal(fw_validate(c, err, sizeof err), 0);
    fw_test_cfg_free(c);
}

static void test_errors_range(void **state)
{
    (void)state;
    expect_error(6100, 5900, NULL, 0,
                 "[firewall] protect 6100-5900: need 1 <= LO <= HI <= 65535");
    expect_error(0, 5900, NULL, 0, "[firewall] protect 0-5900: need 1 <= LO <= HI <= 65535");
}

static void test_exempt(void **state)
{
    (void)state;
    static const char *const allow[] = { "192.168.10.0/24", "2001:db8:10::/48" };
    struct cfg *c = fw_test_cfg("0.0.0.0", 5900, 6100, allow, 2, NULL, 0);
    assert_int_equal(fw_is_exempt(c, "127.0.0.1"), 1);
    assert_int_equal(fw_is_exempt(c, "127.9.9.9"), 1);
    assert_int_equal(fw_is_exempt(c, "::1"), 1);
    assert_int_equal(fw_is_exempt(c, "::ffff:127.0.0.1"), 1);
    assert_int_equal(fw_is_exempt(c, "192.168.10.77"), 1);
    assert_int_equal(fw_is_exempt(c, "::ffff:192.168.10.77"), 1);
    assert_int_equal(fw_is_exempt(c, "2001:db8:10:ffff::1"), 1);
    assert_int_equal(fw_is_exempt(c, "192.168.11.1"), 0);
    assert_int_equal(fw_is_exempt(c, "2001:db8:11::1"), 0);
    assert_int_equal(fw_is_exempt(c, "not-an-address"), -1);
    assert_int_equal(fw_is_exempt(c, "10.0.0.0/8"), -1);
    fw_test_cfg_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v4_only),
        cmocka_unit_test(test_dual_stack),
        cmocka_unit_test(test_allowlists),
        cmocka_unit_test(test_no_vms),
        cmocka_unit_test(test_custom_protect),
        cmocka_unit_test(test_single_port_protect),
        cmocka_unit_test(test_default_range),
        cmocka_unit_test(test_via_cfg_parse),
        cmocka_unit_test(test_render_buffer),
        cmocka_unit_test(test_errors_address),
        cmocka_unit_test(test_errors_prefix),
        cmocka_unit_test(test_errors_loopback),
        cmocka_unit_test(test_errors_overlap),
        cmocka_unit_test(test_errors_range),
        cmocka_unit_test(test_exempt),
    };
    return cmocka_run_group_tests_name("fw_render", tests, NULL, NULL);
}
