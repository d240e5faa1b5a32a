/* Unit tests for auth/bans.c: thresholds, windows, doubling, IPv6 /64. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "auth/bans.h"

#define MIN (60ull * 1000)

static void test_threshold_and_window(void **state)
{
    (void)state;
    struct ban_table *t = ban_table_new(5, 10 * MIN, 15 * MIN, 16);
    char key[BAN_KEY_MAX];
    for (int i = 0; i < 4; i++)
        assert_int_equal(ban_note_failure(t, "192.0.2.7", 1000 + i, key), 0);
    assert_int_equal(ban_note_failure(t, "192.0.2.7", 2000, key), 15 * MIN);
    assert_string_equal(key, "192.0.2.7");
    /* count restarts after a ban */
    assert_int_equal(ban_note_failure(t, "192.0.2.7", 3000, key), 0);
    /* failures spread wider than the window never ban */
    for (int i = 0; i < 20; i++)
        assert_int_equal(ban_note_failure(t, "198.51.100.1", (uint64_t)i * 3 * MIN, key), 0);
    ban_table_free(t);
}

static void test_doubling_capped(void **state)
{
    (void)state;
    struct ban_table *t = ban_table_new(1, MIN, 15 * MIN, 4);
    char key[BAN_KEY_MAX];
    uint64_t now = 1;
    uint64_t want = 15 * MIN;
    for (int i = 0; i < 10; i++) {
        uint64_t ms = ban_note_failure(t, "203.0.113.9", now, key);
        assert_int_equal(ms, want > BAN_MAX_MS ? BAN_MAX_MS : want);
        want *= 2;
        now += 1000;
    }
    /* a day of quiet forgives the offences */
    now += BAN_MAX_MS + 1;
    assert_int_equal(ban_note_failure(t, "203.0.113.9", now, key), 15 * MIN);
    ban_table_free(t);
}

static void test_ipv6_per_64(void **state)
{
    (void)state;
    struct ban_table *t = ban_table_new(3, MIN, MIN, 4);
    char key[BAN_KEY_MAX];
    assert_int_equal(ban_note_failure(t, "2001:db8:1:2::1", 1, key), 0);
    assert_int_equal(ban_note_failure(t, "2001:db8:1:2:aaaa::5", 2, key), 0);
    assert_int_equal(ban_note_failure(t, "2001:db8:1:2:ffff:ffff:ffff:ffff", 3, key), MIN);
    assert_string_equal(key, "2001:db8:1:2::/64");
    /* v4-mapped counts as the v4 address */
    assert_int_equal(ban_key("::ffff:192.0.2.1", key, sizeof key), 0);
    assert_string_equal(key, "192.0.2.1");
    assert_int_equal(ban_key("not-an-address", key, sizeof key), -1);
    assert_int_equal(ban_note_failure(t, "evil.example", 4, key), 0);
    ban_table_free(t);
}

static void test_bounded_table(void **state)
{
    (void)state;
    struct ban_table *t = ban_table_new(2, MIN, MIN, 2);
    char key[BAN_KEY_MAX];
    assert_int_equal(ban_note_failure(t, "10.0.0.1", 1, key), 0);
    assert_int_equal(ban_note_failure(t, "10.0.0.2", 2, key), 0);
    /* a third source evicts the oldest (10.0.0.1), so its count restarts */
    assert_int_equal(ban_note_failure(t, "10.0.0.3", 3, key), 0);
    assert_int_equal(ban_note_failure(t, "10.0.0.1", 4, key), 0);
    assert_int_equal(ban_note_failure(t, "10.0.0.1", 5, key), MIN);
    assert_null(ban_table_new(0, MIN, MIN, 2));
    ban_table_free(t);
}

/* A reload's thresholds: the same ban_after keeps the failures counted and
 * the new ban_time applies to the ban they lead to; a new ban_after starts
 * the counts over with a ring of its size (ASan would catch the old one). */
static void test_reload_thresholds(void **state)
{
    (void)state;
    struct ban_table *t = ban_table_new(5, 10 * MIN, 15 * MIN, 16);
    char key[BAN_KEY_MAX];
    for (int i = 0; i < 3; i++)
        assert_int_equal(ban_note_failure(t, "192.0.2.7", 1000 + i, key), 0);
    ban_table_set(t, 5, 10 * MIN, 30 * MIN);
    assert_int_equal(ban_note_failure(t, "192.0.2.7", 2000, key), 0);
    assert_int_equal(ban_note_failure(t, "192.0.2.7", 2001, key), 30 * MIN);   /* 5th */
    for (int i = 0; i < 4; i++)
        assert_int_equal(ban_note_failure(t, "198.51.100.1", 3000 + i, key), 0);
    ban_table_set(t, 2, 10 * MIN, 15 * MIN);
    assert_int_equal(ban_note_failure(t, "198.51.100.1", 4000, key), 0);     /* over */
    assert_int_equal(ban_note_failure(t, "198.51.100.1", 4001, key), 15 * MIN);
    ban_table_set(t, 8, 10 * MIN, 15 * MIN);                               /* a larger ring */
    for (int i = 0; i < 7; i++)
        assert_int_equal(ban_note_failure(t, "203.0.113.9", 5000 + i, key), 0);
    assert_int_equal(ban_note_failure(t, "203.0.113.9", 5007, key), 15 * MIN);
    ban_table_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threshold_and_window),
        cmocka_unit_test(test_doubling_capped),
        cmocka_unit_test(test_ipv6_per_64),
        cmocka_unit_test(test_bounded_table),
        cmocka_unit_test(test_reload_thresholds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
