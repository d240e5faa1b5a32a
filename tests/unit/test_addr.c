/* tests/unit/test_addr.c — common/addr.c: numeric addresses, prefixes (the
 * firewall's parser and messages), ports, HOST:PORT, sockaddrs and their
 * text, the source key failures and bans are counted by. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cmocka.h>

#include "common/addr.h"
#include "common/log.h"

/* ---- single addresses ---- */

static void ip_ok(const char *in, int fam, const char *canon)
{
    struct addr_net n;
    char s[ADDR_NET_MAX];
    if (addr_ip_parse(in, &n) != 0)
        fail_msg("\"%s\" refused", in);
    assert_int_equal(n.family, fam);
    assert_int_equal(n.plen, fam == 4 ? 32 : 128);
    addr_net_str(&n, s, sizeof s);
    assert_string_equal(s, canon);
}

static void ip_bad(const char *in)
{
    struct addr_net n;
    memset(&n, 0x5a, sizeof n);
    if (addr_ip_parse(in, &n) != -1)
        fail_msg("\"%s\" accepted", in ? in : "(null)");
    assert_int_equal(n.family, 0);
}

static void test_ip_parse(void **state)
{
    (void)state;
    ip_ok("1.2.3.4", 4, "1.2.3.4");
    ip_ok("0.0.0.0", 4, "0.0.0.0");
    ip_ok("255.255.255.255", 4, "255.255.255.255");
    ip_ok("::", 6, "::");
    ip_ok("2001:DB8::1", 6, "2001:db8::1");
    ip_ok("0000:0000:0000:0000:0000:0000:255.255.255.255", 6, "::255.255.255.255");  /* 45 bytes */
    /* kept as written: a listener on a mapped address is an IPv6 socket */
    ip_ok("::ffff:1.2.3.4", 6, "::ffff:1.2.3.4");
    ip_bad(NULL);
    ip_bad("");
    ip_bad("1.2.3");                /* inet_aton would take it; inet_pton does not */
    ip_bad("1.2.3.4.5");
    ip_bad("01.2.3.4");             /* leading zeros: octal to some parsers */
    ip_bad("1.2.3.004");
    ip_bad("256.1.1.1");
    ip_bad("0x7f.0.0.1");
    ip_bad(" 1.2.3.4");
    ip_bad("1.2.3.4 ");
    ip_bad("1.2.3.4/32");
    ip_bad("[::1]");
    ip_bad("fe80::1%eth0");         /* zone ids: refused, see addr.h */
    ip_bad("fe80::1%1");
    ip_bad("localhost");
    ip_bad("::1::");
    ip_bad("00000:0000:0000:0000:0000:0000:255.255.255.255");   /* 46 bytes */
    char longs[300];
    memset(longs, '1', sizeof longs - 1);
    longs[sizeof longs - 1] = '\0';
    ip_bad(longs);
}

/* ---- prefixes (the firewall's parser; moved from test_fw_live.c) ---- */

static void parse_ok(const char *in, bool prefix, int fam, const char *canon)
{
    struct addr_net n;
    char err[256] = "", s[64];
    if (addr_net_parse(in, prefix, &n, err, sizeof err) != 0)
        fail_msg("%s: %s", in, err);
    assert_int_equal(n.family, fam);
    addr_net_str(&n, s, sizeof s);
    assert_string_equal(s, canon);
}

static void parse_bad(const char *in, bool prefix, const char *msg)
{
    struct addr_net n;
    char err[256] = "";
    assert_int_equal(addr_net_parse(in, prefix, &n, err, sizeof err), -1);
    assert_string_equal(err, msg);
}

static void test_net_parse(void **state)
{
    (void)state;
    parse_ok("10.1.2.3", true, 4, "10.1.2.3");
    parse_ok("10.1.2.3/32", true, 4, "10.1.2.3");
    parse_ok("10.1.2.3/8", true, 4, "10.0.0.0/8");
    parse_ok("0.0.0.0/0", true, 4, "0.0.0.0/0");
    parse_ok("2001:DB8::1", true, 6, "2001:db8::1");
    parse_ok("2001:db8:1:2:3:4:5:6/64", true, 6, "2001:db8:1:2::/64");
    parse_ok("::ffff:192.0.2.7", false, 4, "192.0.2.7");
    parse_ok("::ffff:192.0.2.0/120", true, 4, "192.0.2.0/24");
    parse_ok("fe80::1/10", true, 6, "fe80::/10");
    struct addr_net n;
    char err[256];
    assert_int_equal(addr_net_parse("10.0.0.1/24", true, &n, err, sizeof err), 0);
    assert_true(n.had_host_bits);
    assert_int_equal(addr_net_parse("::ffff:10.0.0.1", true, &n, err, sizeof err), 0);
    assert_true(n.was_mapped);

    parse_bad("", true, "empty address");
    parse_bad("10.0.0.1/24", false, "\"10.0.0.1/24\": a single address is expected here, not a prefix");
    parse_bad("1.2.3.4.5", true, "\"1.2.3.4.5\" is not an IPv4 or IPv6 address (host names are not accepted)");
    parse_bad(" 1.2.3.4", true, "\" 1.2.3.4\" is not an IPv4 or IPv6 address (host names are not accepted)");
    parse_bad("1.2.3.4/+8", true, "\"1.2.3.4/+8\": the prefix length after '/' must be a number 0-32");
    parse_bad("1.2.3.4/8/8", true, "\"1.2.3.4/8/8\": the prefix length after '/' must be a number 0-32");
    parse_bad("::/1000", true, "\"::/1000\": the prefix length after '/' must be a number 0-128");
    /* long input is cut in the message */
    char longs[200];
    memset(longs, 'a', sizeof longs - 1);
    longs[sizeof longs - 1] = '\0';
    assert_int_equal(addr_net_parse(longs, true, &n, err, sizeof err), -1);
    assert_non_null(strstr(err, "aaa...\" is not"));
}

static void test_net_parse_more(void **state)
{
    (void)state;
    parse_bad("1.2.3.4/33", true, "\"1.2.3.4/33\": prefix /33 is longer than an IPv4 address (/32 at most)");
    parse_bad("::/129", true, "\"::/129\": prefix /129 is longer than an IPv6 address (/128 at most)");
    parse_bad("10.0.0.0/08", true, "\"10.0.0.0/08\": the prefix length after '/' must be a number 0-32");
    parse_bad("10.0.0.0/", true, "\"10.0.0.0/\": the prefix length after '/' must be a number 0-32");
    parse_bad("/8", true, "\"/8\" is not an IPv4 or IPv6 address");
    parse_bad("1.2.3", false, "\"1.2.3\" is not an IPv4 or IPv6 address (host names are not accepted)");
    parse_bad("fe80::1%eth0", false,
              "\"fe80::1%eth0\" is not an IPv4 or IPv6 address (host names are not accepted)");
    parse_bad("fe80::1%eth0/64", true,
              "\"fe80::1%eth0/64\" is not an IPv4 or IPv6 address (host names are not accepted)");
    parse_bad("::ffff:0:0/95", true, "\"::ffff:0:0/95\": write IPv4-mapped ranges in IPv4 form");
    parse_bad("a\nb", true, "\"a\\x0ab\" is not an IPv4 or IPv6 address (host names are not accepted)");
    parse_ok("::ffff:1.2.3.4/96", true, 4, "0.0.0.0/0");
    parse_ok("::ffff:0:0/0", true, 6, "::/0");                 /* all of IPv6 */
    parse_ok("10.0.0.0/0", true, 4, "0.0.0.0/0");
}

static struct addr_net net(const char *s)
{
    struct addr_net n;
    char err[256];
    if (addr_net_parse(s, true, &n, err, sizeof err) != 0)
        fail_msg("%s: %s", s, err);
    return n;
}

static void test_net_relations(void **state)
{
    (void)state;
    struct addr_net a = net("10.0.0.0/8"), b = net("10.1.2.3"), c = net("11.0.0.0/8");
    assert_true(addr_net_contains(&a, &b));
    assert_false(addr_net_contains(&b, &a));
    assert_true(addr_net_overlaps(&b, &a));
    assert_false(addr_net_overlaps(&a, &c));
    struct addr_net v6 = net("::/0"), v4all = net("0.0.0.0/0");
    assert_false(addr_net_overlaps(&v6, &a));      /* families never overlap */
    assert_true(addr_net_touches_loopback(&v6));
    assert_true(addr_net_touches_loopback(&v4all));
    assert_false(addr_net_is_loopback(&v4all));
    struct addr_net lo = net("127.1.2.3"), lo6 = net("::1");
    assert_true(addr_net_is_loopback(&lo));
    assert_true(addr_net_is_loopback(&lo6));
    assert_false(addr_net_touches_loopback(&a));
    struct addr_net z = net("0.0.0.0"), z6 = net("::");
    assert_true(addr_net_is_unspecified(&z));
    assert_true(addr_net_is_unspecified(&z6));
    assert_false(addr_net_is_unspecified(&v4all));
}

static void test_net_cmp(void **state)
{
    (void)state;
    struct addr_net a = net("10.0.0.0/8"), b = net("10.0.0.0/16"), c = net("::/0");
    assert_int_equal(addr_net_cmp(&a, &a), 0);
    assert_int_equal(addr_net_cmp(&a, &b), -1);
    assert_int_equal(addr_net_cmp(&b, &a), 1);
    assert_int_equal(addr_net_cmp(&a, &c), -1);      /* IPv4 first */
    /* without an error buffer */
    struct addr_net n;
    assert_int_equal(addr_net_parse("x", true, &n, NULL, 0), -1);
    assert_int_equal(addr_net_parse(NULL, true, &n, NULL, 0), -1);
    /* a short buffer cuts the output, NUL-terminated */
    char s[6];
    addr_net_str(&a, s, sizeof s);
    assert_string_equal(s, "10.0.");
}

/* ---- ports and HOST:PORT ---- */

static void test_port_parse(void **state)
{
    (void)state;
    static const struct { const char *s; int port; } v[] = {
        { "1", 1 }, { "65535", 65535 }, { "5900", 5900 }, { "00001", 1 },
        { "0", -1 }, { "00000", -1 }, { "65536", -1 }, { "99999", -1 }, { "", -1 },
        { "000005900", -1 }, { "123456", -1 }, { "-1", -1 }, { "+1", -1 }, { " 1", -1 },
        { "1 ", -1 }, { "0x10", -1 }, { "5900x", -1 },
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        uint16_t p = 7;
        int r = addr_port_parse(v[i].s, strlen(v[i].s), &p);
        if (v[i].port < 0 && (r != -1 || p != 7))
            fail_msg("port \"%s\" accepted", v[i].s);
        if (v[i].port >= 0 && (r != 0 || p != v[i].port))
            fail_msg("port \"%s\": r %d port %u", v[i].s, r, (unsigned)p);
    }
    uint16_t p;
    assert_int_equal(addr_port_parse("59001", 4, &p), 0);     /* exactly n bytes */
    assert_int_equal(p, 5900);
    assert_int_equal(addr_port_parse(NULL, 0, &p), -1);
}

static void hp_ok(const char *in, const char *host, unsigned port, const char *back)
{
    char h[256], why[128] = "", s[ADDR_PORT_MAX];
    uint16_t p;
    if (addr_hostport_parse(in, h, sizeof h, &p, why, sizeof why) != 0)
        fail_msg("\"%s\": %s", in, why);
    assert_string_equal(h, host);
    assert_int_equal(p, port);
    addr_hostport_str(h, p, s, sizeof s);
    assert_string_equal(s, back);
}

static void hp_bad(const char *in, const char *why_want)
{
    char h[256] = "untouched", why[128] = "";
    uint16_t p = 7;
    if (addr_hostport_parse(in, h, sizeof h, &p, why, sizeof why) != -1)
        fail_msg("\"%s\" accepted", in ? in : "(null)");
    if (strcmp(why, why_want) != 0)
        fail_msg("\"%s\": why \"%s\", want \"%s\"", in ? in : "(null)", why, why_want);
    assert_string_equal(h, "untouched");
    assert_int_equal(p, 7);
}

static void test_hostport(void **state)
{
    (void)state;
    hp_ok("127.0.0.1:5902", "127.0.0.1", 5902, "127.0.0.1:5902");
    hp_ok("localhost:1", "localhost", 1, "localhost:1");
    hp_ok("[::1]:65535", "::1", 65535, "[::1]:65535");
    hp_ok("[2001:DB8::1]:5900", "2001:DB8::1", 5900, "[2001:DB8::1]:5900");   /* kept as written */
    hp_ok("[::ffff:127.0.0.1]:5900", "::ffff:127.0.0.1", 5900, "[::ffff:127.0.0.1]:5900");
    hp_ok("1.2.3.4:00080", "1.2.3.4", 80, "1.2.3.4:80");

    const char *bad_host = "host must be a numeric IPv4 address, localhost, or [IPv6]";
    hp_bad(NULL, "empty address");
    hp_bad("", "empty address");
    hp_bad("127.0.0.1", "missing port (use HOST:PORT)");
    hp_bad("[::1]", "missing port (use [IPv6]:PORT)");
    hp_bad("[::1]5900", "missing port (use [IPv6]:PORT)");
    hp_bad("[::1:5900", "missing \"]\" after IPv6 address");
    hp_bad("::1:5900", "IPv6 address must be in brackets, e.g. [::1]:5902");
    hp_bad("::ffff:1.2.3.4:80", "IPv6 address must be in brackets, e.g. [::1]:5902");
    hp_bad(":5900", "missing host");
    hp_bad("[]:5900", "missing host");
    hp_bad("[127.0.0.1]:5900", "bad IPv6 address");
    hp_bad("[fe80::1%eth0]:5900", "bad IPv6 address");
    hp_bad("[localhost]:5900", "bad IPv6 address");
    hp_bad("vm.example.com:5900", bad_host);
    hp_bad("LOCALHOST:5900", bad_host);
    hp_bad("1.2.3:5900", bad_host);
    hp_bad("01.2.3.4:5900", bad_host);
    hp_bad("256.0.0.1:5900", bad_host);
    hp_bad("UNIX:/x", bad_host);
    hp_bad("127.0.0.1:", "bad port (use 1..65535)");
    hp_bad("127.0.0.1:0", "bad port (use 1..65535)");
    hp_bad("127.0.0.1:65536", "bad port (use 1..65535)");
    hp_bad("[::1]:0", "bad port (use 1..65535)");
    hp_bad("[::1]:65536", "bad port (use 1..65535)");
    hp_bad("127.0.0.1: 5900", "bad port (use 1..65535)");
    char longs[400];
    memset(longs, '1', sizeof longs - 1);
    memcpy(longs + sizeof longs - 6, ":5900", 6);
    hp_bad(longs, bad_host);
    /* a host buffer too small for a valid host */
    char h[4], why[64];
    uint16_t p;
    assert_int_equal(addr_hostport_parse("[::1]:1", h, sizeof h, &p, why, sizeof why), 0);
    assert_int_equal(addr_hostport_parse("1.2.3.4:1", h, sizeof h, &p, why, sizeof why), -1);
    assert_string_equal(why, "host too long");
    /* no reason buffer */
    assert_int_equal(addr_hostport_parse("x", h, sizeof h, &p, NULL, 0), -1);
    /* the text form never overflows */
    char s[8];
    addr_hostport_str("2001:db8::1", 5900, s, sizeof s);
    assert_string_equal(s, "[2001:d");
}

/* ---- sockaddrs ---- */

static void test_sockaddr(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    socklen_t len = 0;
    assert_int_equal(addr_host_sockaddr("localhost", 5900, &ss, &len), 0);
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ss;
    assert_int_equal(ss.ss_family, AF_INET);
    assert_int_equal(len, sizeof(struct sockaddr_in));
    assert_int_equal(ntohs(s4->sin_port), 5900);
    assert_int_equal(ntohl(s4->sin_addr.s_addr), 0x7f000001);

    assert_int_equal(addr_host_sockaddr("2001:db8::1", 443, &ss, &len), 0);
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;
    assert_int_equal(ss.ss_family, AF_INET6);
    assert_int_equal(len, sizeof(struct sockaddr_in6));
    assert_int_equal(ntohs(s6->sin6_port), 443);
    assert_int_equal(s6->sin6_scope_id, 0);
    assert_int_equal(s6->sin6_addr.s6_addr[0], 0x20);
    assert_int_equal(s6->sin6_addr.s6_addr[15], 1);

    /* mapped stays IPv6 (what was written is what is bound) */
    assert_int_equal(addr_host_sockaddr("::ffff:127.0.0.1", 1, &ss, &len), 0);
    assert_int_equal(ss.ss_family, AF_INET6);
    assert_true(IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr));

    assert_int_equal(addr_host_sockaddr("example.com", 1, &ss, &len), -1);
    assert_int_equal(addr_host_sockaddr("fe80::1%lo", 1, &ss, &len), -1);
    assert_int_equal(addr_host_sockaddr(NULL, 1, &ss, &len), -1);
    /* a prefix is not an endpoint */
    struct addr_net n;
    assert_int_equal(addr_net_parse("10.0.0.0/8", true, &n, NULL, 0), 0);
    assert_int_equal(addr_sockaddr(&n, 1, &ss, &len), -1);
}

static void sa_text(const struct sockaddr *sa, const char *want, const char *want_port)
{
    char s[ADDR_PORT_MAX];
    memset(s, 'x', sizeof s);
    addr_sockaddr_str(sa, s, ADDR_TEXT_MAX);
    assert_string_equal(s, want);
    addr_sockaddr_str_port(sa, s, sizeof s);
    assert_string_equal(s, want_port);
}

static void test_sockaddr_str(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    socklen_t len;
    assert_int_equal(addr_host_sockaddr("192.0.2.7", 5900, &ss, &len), 0);
    sa_text((struct sockaddr *)&ss, "192.0.2.7", "192.0.2.7:5900");
    assert_int_equal(addr_host_sockaddr("2001:db8::1", 443, &ss, &len), 0);
    sa_text((struct sockaddr *)&ss, "2001:db8::1", "[2001:db8::1]:443");
    /* what a dual-stack listener reports for an IPv4 peer */
    assert_int_equal(addr_host_sockaddr("::ffff:192.0.2.7", 5900, &ss, &len), 0);
    sa_text((struct sockaddr *)&ss, "192.0.2.7", "192.0.2.7:5900");
    assert_int_equal(addr_host_sockaddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535, &ss,
                                        &len), 0);
    sa_text((struct sockaddr *)&ss, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535");
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    sa_text((struct sockaddr *)&sun, "local", "local");
    sa_text(NULL, "local", "local");
    /* short buffers are cut, never overrun */
    char s[5] = "zzzz";
    assert_int_equal(addr_host_sockaddr("192.0.2.7", 5900, &ss, &len), 0);
    addr_sockaddr_str_port((struct sockaddr *)&ss, s, 4);
    assert_string_equal(s, "192");
    addr_sockaddr_str((struct sockaddr *)&ss, s, 0);
    assert_string_equal(s, "192");
}

/* ---- the source key ---- */

static void key_is(const char *addr, const char *want)
{
    char key[ADDR_KEY_MAX];
    if (addr_source_key(addr, key, sizeof key) != 0)
        fail_msg("\"%s\" refused", addr);
    assert_string_equal(key, want);
    /* the key reads back as the firewall reads a ban */
    struct addr_net n;
    char back[ADDR_NET_MAX];
    assert_int_equal(addr_net_parse(key, true, &n, NULL, 0), 0);
    assert_false(n.had_host_bits);
    addr_net_str(&n, back, sizeof back);
    assert_string_equal(back, key);
}

static void test_source_key(void **state)
{
    (void)state;
    key_is("192.0.2.7", "192.0.2.7");
    key_is("::ffff:192.0.2.7", "192.0.2.7");
    key_is("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64");
    key_is("2001:DB8:1:2::", "2001:db8:1:2::/64");
    key_is("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff:ffff:ffff::/64");
    key_is("::1", "::/64");
    char key[ADDR_KEY_MAX];
    assert_int_equal(addr_source_key("10.0.0.0/8", key, sizeof key), -1);   /* an address only */
    assert_int_equal(addr_source_key("evil.example", key, sizeof key), -1);
    assert_int_equal(addr_source_key("fe80::1%eth0", key, sizeof key), -1);
    assert_int_equal(addr_source_key("", key, sizeof key), -1);
    assert_int_equal(addr_source_key(NULL, key, sizeof key), -1);
    assert_int_equal(addr_source_key("192.0.2.7", key, 9), -1);              /* does not fit */
    assert_int_equal(addr_source_key("192.0.2.7", key, 10), 0);
    assert_int_equal(addr_source_key("192.0.2.7", NULL, 0), -1);
}

static void test_log_shown(void **state)
{
    (void)state;
    char buf[72];
    char longs[100];
    memset(longs, 'a', sizeof longs - 1);
    longs[sizeof longs - 1] = '\0';
    const char *s = log_shown(longs, buf, sizeof buf);
    assert_int_equal(strlen(s), 67);
    assert_string_equal(s + 64, "...");
    assert_string_equal(log_shown(NULL, buf, sizeof buf), "");
    assert_string_equal(log_shown("a\tb", buf, sizeof buf), "a\\x09b");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ip_parse),
        cmocka_unit_test(test_net_parse),
        cmocka_unit_test(test_net_parse_more),
        cmocka_unit_test(test_net_relations),
        cmocka_unit_test(test_net_cmp),
        cmocka_unit_test(test_port_parse),
        cmocka_unit_test(test_hostport),
        cmocka_unit_test(test_sockaddr),
        cmocka_unit_test(test_sockaddr_str),
        cmocka_unit_test(test_source_key),
        cmocka_unit_test(test_log_shown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
