/* Unit tests for the admission helpers in proxy/proxy.c: the source key the
 * unauthenticated caps count under (IPv6 per /64, the same key the bans
 * use), and the choice of the connection evicted when the global cap is
 * full. */
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

#include "auth/bans.h"
#include "proxy/proxy.h"

static void key_of(const char *addr, char *out, size_t outsz)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (strchr(addr, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, addr, &s6->sin6_addr), 1);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, addr, &s4->sin_addr), 1);
    }
    proxy_source_key((struct sockaddr *)&ss, out, outsz);
}

static void test_source_key(void **state)
{
    (void)state;
    char k[PROXY_SKEY_MAX], b[BAN_KEY_MAX];
    key_of("192.0.2.7", k, sizeof k);
    assert_string_equal(k, "192.0.2.7");
    key_of("::ffff:192.0.2.7", k, sizeof k);
    assert_string_equal(k, "192.0.2.7");
    key_of("2001:db8:1:2:aaaa:bbbb:cccc:dddd", k, sizeof k);
    assert_string_equal(k, "2001:db8:1:2::/64");
    char k2[PROXY_SKEY_MAX];
    key_of("2001:db8:1:2::1", k2, sizeof k2);
    assert_string_equal(k, k2);                 /* one /64, one key */
    key_of("2001:db8:1:3::1", k2, sizeof k2);
    assert_string_not_equal(k, k2);
    key_of("::1", k, sizeof k);
    assert_string_equal(k, "::/64");
    key_of("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", k, sizeof k);
    assert_string_equal(k, "ffff:ffff:ffff:ffff::/64");
    /* the same key the auth helper bans */
    const char *addrs[] = { "192.0.2.7", "2001:db8:1:2:aaaa:bbbb:cccc:dddd", "fe80::1",
                            "2001:db8::", "::ffff:10.1.2.3" };
    for (size_t i = 0; i < sizeof addrs / sizeof addrs[0]; i++) {
        key_of(addrs[i], k, sizeof k);
        assert_int_equal(ban_key(addrs[i], b, sizeof b), 0);
        assert_string_equal(k, b);
    }
    struct sockaddr_un su = { .sun_family = AF_UNIX };
    proxy_source_key((struct sockaddr *)&su, k, sizeof k);
    assert_string_equal(k, "local");
}

/* n slots from key, seq from seq0 on, all evictable */
static size_t fill(struct proxy_slot *s, size_t at, const char *key, unsigned n, uint64_t seq0)
{
    for (unsigned i = 0; i < n; i++)
        s[at + i] = (struct proxy_slot){ .skey = key, .seq = seq0 + i, .evictable = true };
    return at + n;
}

static void test_evict_biggest_oldest(void **state)
{
    (void)state;
    struct proxy_slot s[64];
    /* 8 sources x 8, interleaved in age; source 127.0.1.3 has the oldest */
    static const char *keys[8] = { "127.0.1.1", "127.0.1.2", "127.0.1.3", "127.0.1.4",
                                   "127.0.1.5", "127.0.1.6", "127.0.1.7", "127.0.1.8" };
    size_t n = 0;
    for (unsigned r = 0; r < 8; r++)
        for (unsigned k = 0; k < 8; k++, n++)
            s[n] = (struct proxy_slot){ .skey = keys[k], .seq = 100 + n, .evictable = true };
    s[2].seq = 1;                               /* 127.0.1.3's first is the oldest of all */
    ssize_t v = proxy_pick_evict(s, n, "127.0.0.1");
    assert_int_equal(v, 2);
    /* a source that holds 7 may evict from one that holds 8 only if 7 + 1 < 8: no */
    s[2].skey = "127.0.0.1";                    /* pretend 127.0.0.1 took it over */
    assert_int_equal(proxy_pick_evict(s, n, "127.0.1.3"), -1);
    /* a source holding 6 may (6 + 1 < 8) */
    s[10].skey = "127.0.0.1";                   /* 127.0.1.3 now holds 6 */
    v = proxy_pick_evict(s, n, "127.0.1.3");
    assert_true(v >= 0);
    assert_string_not_equal(s[v].skey, "127.0.1.3");
    assert_string_not_equal(s[v].skey, "127.0.0.1");
}

static void test_evict_biggest_wins_over_age(void **state)
{
    (void)state;
    struct proxy_slot s[16];
    size_t n = fill(s, 0, "10.0.0.1", 3, 1);   /* oldest, but only 3 */
    n = fill(s, n, "10.0.0.2", 5, 50);
    assert_int_equal(proxy_pick_evict(s, n, "10.0.0.9"), 3);    /* 10.0.0.2's oldest */
    /* the victim's source holds the most even if the newcomer holds some */
    n = fill(s, n, "10.0.0.9", 3, 200);
    assert_int_equal(proxy_pick_evict(s, n, "10.0.0.9"), 3);    /* 3 + 1 < 5 */
    n = fill(s, n, "10.0.0.9", 1, 250);
    assert_int_equal(proxy_pick_evict(s, n, "10.0.0.9"), -1);   /* 4 + 1 < 5 fails */
    n = fill(s, n, "10.0.0.2", 1, 300);
    assert_int_equal(proxy_pick_evict(s, n, "10.0.0.1"), 3);    /* 3 + 1 < 6 */
}

static void test_evict_not_evictable(void **state)
{
    (void)state;
    struct proxy_slot s[16];
    size_t n = fill(s, 0, "10.0.0.1", 6, 1);
    n = fill(s, n, "10.0.0.2", 4, 10);
    /* 10.0.0.1's oldest two already sent credentials: its third goes */
    s[0].evictable = s[1].evictable = false;
    assert_int_equal(proxy_pick_evict(s, n, "10.0.0.3"), 2);
    /* none of 10.0.0.1's can go: the next biggest holder gives one */
    for (int i = 0; i < 6; i++)
        s[i].evictable = false;
    assert_int_equal(proxy_pick_evict(s, n, "10.0.0.3"), 6);
    /* nothing evictable at all */
    for (size_t i = 0; i < n; i++)
        s[i].evictable = false;
    assert_int_equal(proxy_pick_evict(s, n, "10.0.0.3"), -1);
}

static void test_evict_ties_and_equal_share(void **state)
{
    (void)state;
    struct proxy_slot s[16];
    /* equal holders: the one with the older evictable slot */
    size_t n = fill(s, 0, "10.0.0.1", 4, 20);
    n = fill(s, n, "10.0.0.2", 4, 10);
    assert_int_equal(proxy_pick_evict(s, n, "10.0.0.3"), 4);
    /* every source holds one: a newcomer cannot take anyone's only slot */
    static const char *one[4] = { "a", "b", "c", "d" };
    for (int i = 0; i < 4; i++)
        s[i] = (struct proxy_slot){ .skey = one[i], .seq = (uint64_t)i, .evictable = true };
    assert_int_equal(proxy_pick_evict(s, 4, "e"), -1);
    /* ... but one holding two gives one to a newcomer with none */
    s[1].skey = "a";
    assert_int_equal(proxy_pick_evict(s, 4, "e"), 0);
    assert_int_equal(proxy_pick_evict(s, 0, "e"), -1);
}

/* The helper's ban events: the list the core checks PROXY viewers against
 * (by source key, until a wall-clock time), replaced on a second ban of the
 * same key, emptied by unban; a key that is no address is ignored; a full
 * list forgets the ban that ends first.  Times print as the audit writes. */
static void test_ban_list(void **state)
{
    (void)state;
    char t[40];
    proxy_time_str(0, t, sizeof t);
    assert_string_equal(t, "1970-01-01T00:00:00.000Z");
    proxy_time_str(1765086491123ull, t, sizeof t);
    assert_string_equal(t, "2025-12-07T05:48:11.123Z");
    struct proxy px;
    memset(&px, 0, sizeof px);
    px.bans = calloc(PROXY_BANS_MAX, sizeof *px.bans);
    assert_non_null(px.bans);
    struct authp_ban_evt e = { .banned = true, .key = "192.0.2.7", .until_ms = 5000 };
    proxy_ban_event(&px, &e);
    uint64_t until = 0;
    assert_true(proxy_banned(&px, "192.0.2.7", 4999, &until));
    assert_int_equal(until, 5000);
    assert_false(proxy_banned(&px, "192.0.2.7", 5000, NULL));     /* over */
    assert_false(proxy_banned(&px, "192.0.2.8", 0, NULL));
    e.until_ms = 9000;                                           /* banned again: longer */
    proxy_ban_event(&px, &e);
    assert_int_equal(px.n_bans, 1);
    assert_true(proxy_banned(&px, "192.0.2.7", 8000, NULL));
    struct authp_ban_evt v6 = { .banned = true, .key = "2001:db8:1:2::/64", .until_ms = 9000 };
    proxy_ban_event(&px, &v6);
    assert_true(proxy_banned(&px, "2001:db8:1:2::/64", 1, NULL));
    struct authp_ban_evt junk = { .banned = true, .key = "not-an-address", .until_ms = 9000 };
    proxy_ban_event(&px, &junk);
    assert_int_equal(px.n_bans, 2);
    e.banned = false;
    proxy_ban_event(&px, &e);
    assert_false(proxy_banned(&px, "192.0.2.7", 1, NULL));
    assert_true(proxy_banned(&px, "2001:db8:1:2::/64", 1, NULL));
    /* full: the one ending first goes */
    for (unsigned i = 0; px.n_bans < PROXY_BANS_MAX; i++) {
        struct authp_ban_evt f = { .banned = true, .until_ms = 100000 + i };
        snprintf(f.key, sizeof f.key, "10.%u.%u.%u", i >> 16 & 255, i >> 8 & 255, i & 255);
        proxy_ban_event(&px, &f);
    }
    struct authp_ban_evt last = { .banned = true, .key = "198.51.100.1", .until_ms = 200000 };
    proxy_ban_event(&px, &last);
    assert_int_equal(px.n_bans, PROXY_BANS_MAX);
    assert_true(proxy_banned(&px, "198.51.100.1", 1, NULL));
    assert_false(proxy_banned(&px, "2001:db8:1:2::/64", 1, NULL));   /* ended first (9000) */
    free(px.bans);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_source_key),
        cmocka_unit_test(test_evict_biggest_oldest),
        cmocka_unit_test(test_evict_biggest_wins_over_age),
        cmocka_unit_test(test_evict_not_evictable),
        cmocka_unit_test(test_evict_ties_and_equal_share),
        cmocka_unit_test(test_ban_list),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
