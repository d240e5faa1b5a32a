/* tests/unit/test_log.c — log escaping (common/log.c), the per-source log
 * rate limit (common/loglimit.c) and its use for the lines of
 * unauthenticated connections (proxy/proxy.c proxy_conn_log). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/loglimit.h"
#include "proxy/proxy_int.h"

/* The quoted field that starts after `open` in line: the bytes up to the
 * first `"` not escaped by a backslash, unescaped into out.  Returns what
 * follows the closing quote, or NULL if the quote never closes. */
static const char *quoted_field(const char *line, const char *open, char *out, size_t cap)
{
    const char *p = strstr(line, open);
    assert_non_null(p);
    p += strlen(open);
    size_t o = 0;
    for (; *p; p++) {
        if (*p == '\\' && p[1]) {
            p++;
        } else if (*p == '"') {
            out[o] = '\0';
            return p + 1;
        }
        assert_true(o + 1 < cap);
        out[o++] = *p;
    }
    return NULL;
}

static void test_escape_quotes(void **state)
{
    (void)state;
    const char *user = "a\" vm=x \\";
    char safe[64], line[256], field[64];
    log_safe(safe, sizeof safe, user, strlen(user));
    assert_string_equal(safe, "a\\\" vm=x \\\\");
    snprintf(line, sizeof line, "conn=1 vm=dev0 from=192.0.2.1: login failed for user \"%s\": "
             "bad password", safe);
    /* the name stays inside its quotes: the field ends where the line's own
     * quote is, and nothing of it leaks into the fields after */
    const char *rest = quoted_field(line, "user \"", field, sizeof field);
    assert_non_null(rest);
    assert_string_equal(rest, ": bad password");
    assert_string_equal(field, "a\" vm=x \\");
    /* a trailing backslash cannot eat the closing quote */
    log_safe(safe, sizeof safe, "x\\", 2);
    snprintf(line, sizeof line, "user \"%s\" end", safe);
    rest = quoted_field(line, "user \"", field, sizeof field);
    assert_non_null(rest);
    assert_string_equal(rest, " end");
}

static void test_escape_control(void **state)
{
    (void)state;
    char safe[64];
    log_safe(safe, sizeof safe, "a\nb\x1b[1m\x7f\xff", 9);
    assert_string_equal(safe, "a\\x0ab\\x1b[1m\\x7f\\xff");
    /* stops at NUL and at n */
    log_safe(safe, sizeof safe, "ab\0cd", 5);
    assert_string_equal(safe, "ab");
    log_safe(safe, sizeof safe, "abcdef", 3);
    assert_string_equal(safe, "abc");
    /* cut before an escape that does not fit whole */
    char small[6];
    log_safe(small, sizeof small, "abc\n", 4);
    assert_string_equal(small, "abc");
    log_safe(small, sizeof small, "abcd\"", 5);
    assert_string_equal(small, "abcd");
    log_safe(small, 1, "abc", 3);
    assert_string_equal(small, "");
    /* the unquoted field form escapes spaces too: one word */
    log_safe_word(safe, sizeof safe, "a\" vm=x \\", 9);
    assert_string_equal(safe, "a\\\"\\x20vm=x\\x20\\\\");
    assert_null(strchr(safe, ' '));
}

/* ---- the limiter ---- */

static void test_limit_one_source(void **state)
{
    (void)state;
    struct loglimit *l = loglimit_new(20, 1.0, 10.0, 16);
    assert_non_null(l);
    char sum[LOGLIMIT_SUMMARY_MAX];
    int logged = 0, summaries = 0;
    /* 5000 lines from one source within a second */
    for (int i = 0; i < 5000; i++) {
        if (loglimit_admit(l, "192.0.2.1", 100.0 + i / 5000.0, sum))
            logged++;
        summaries += sum[0] != '\0';
    }
    print_message("5000 lines in 1 s: %d logged\n", logged);
    assert_true(logged >= 20 && logged <= 21);
    assert_int_equal(summaries, 0);
    /* another source is not affected */
    int other = 0;
    for (int i = 0; i < 20; i++)
        other += loglimit_admit(l, "198.51.100.7", 100.5, sum);
    assert_int_equal(other, 20);
    assert_false(loglimit_due(l, 101.0, sum));
    /* 10 s after the first suppressed line: one summary, then none */
    assert_true(loglimit_due(l, 110.1, sum));
    char want[LOGLIMIT_SUMMARY_MAX];
    snprintf(want, sizeof want, "suppressed %d lines from 192.0.2.1 in the last 10s",
             5000 - logged);
    assert_string_equal(sum, want);
    assert_false(loglimit_due(l, 110.2, sum));
    /* the bucket refilled: the source logs again */
    assert_true(loglimit_admit(l, "192.0.2.1", 111.0, sum));
    assert_string_equal(sum, "");
    loglimit_free(l);
}

/* A steady flood: a line a second plus one summary per 10 s, not more. */
static void test_limit_steady_flood(void **state)
{
    (void)state;
    struct loglimit *l = loglimit_new(20, 1.0, 10.0, 16);
    char sum[LOGLIMIT_SUMMARY_MAX];
    int logged = 0, summaries = 0;
    for (int i = 0; i < 60 * 1000; i++) {   /* 1000 lines/s for 60 s */
        double t = i / 1000.0;
        while (loglimit_due(l, t, sum))
            summaries++;
        logged += loglimit_admit(l, "2001:db8:1:2::5", t, sum);
        summaries += sum[0] != '\0';
    }
    print_message("60000 lines in 60 s: %d logged, %d summaries\n", logged, summaries);
    assert_true(logged <= 20 + 61);
    assert_true(summaries >= 5 && summaries <= 6);
    loglimit_free(l);
}

static void test_limit_keys(void **state)
{
    (void)state;
    char k[LOGLIMIT_KEY_MAX];
    loglimit_key("2001:db8:1:2:aaaa:bbbb:cccc:dddd", k);
    assert_string_equal(k, "2001:db8:1:2::/64");
    loglimit_key("::ffff:192.0.2.9", k);
    assert_string_equal(k, "192.0.2.9");
    loglimit_key("192.0.2.9", k);
    assert_string_equal(k, "192.0.2.9");
    loglimit_key("local", k);
    assert_string_equal(k, "local");
    /* one /64 shares a bucket, the next /64 does not */
    struct loglimit *l = loglimit_new(3, 1.0, 10.0, 16);
    char sum[LOGLIMIT_SUMMARY_MAX];
    int a = 0, b = 0;
    for (int i = 0; i < 3; i++)
        a += loglimit_admit(l, "2001:db8:1:2::1", 5.0, sum);
    a += loglimit_admit(l, "2001:db8:1:2::ffff", 5.0, sum);
    for (int i = 0; i < 3; i++)
        b += loglimit_admit(l, "2001:db8:1:3::1", 5.0, sum);
    assert_int_equal(a, 3);
    assert_int_equal(b, 3);
    loglimit_free(l);
    assert_null(loglimit_new(0, 1.0, 1.0, 1));
    assert_null(loglimit_new(1, 0.0, 1.0, 1));
    assert_null(loglimit_new(1, 1.0, 1.0, 0));
}

/* A full table forgets the source seen longest ago, reporting its count. */
static void test_limit_eviction(void **state)
{
    (void)state;
    struct loglimit *l = loglimit_new(1, 1.0, 10.0, 2);
    char sum[LOGLIMIT_SUMMARY_MAX];
    assert_true(loglimit_admit(l, "192.0.2.1", 1.0, sum));
    assert_false(loglimit_admit(l, "192.0.2.1", 1.0, sum));
    assert_true(loglimit_admit(l, "192.0.2.2", 2.0, sum));
    assert_true(loglimit_admit(l, "192.0.2.3", 3.0, sum));
    assert_string_equal(sum, "suppressed 1 lines from 192.0.2.1 in the last 2s");
    loglimit_free(l);
}

/* ---- proxy_conn_log ---- */

static void conn_log(uint64_t id, const char *user, const char *rhost, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void conn_log(uint64_t id, const char *user, const char *rhost, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    proxy_conn_log(LOG_LVL_INFO, id, "dev0", user, rhost, fmt, ap);
    va_end(ap);
}

static int count_lines(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[2048];
    int n = 0;
    while (fgets(line, sizeof line, f))
        n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}

/* 1000 pre-login lines from one source: bounded; another source and the
 * logged-in lines of the first are not limited. */
static void test_conn_log_limited(void **state)
{
    (void)state;
    char path[] = "/tmp/vmgate-test-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    for (int i = 0; i < 1000; i++)
        conn_log((uint64_t)i, NULL, "203.0.113.50", "login failed for user \"x\": bad password");
    for (int i = 0; i < 20; i++)
        conn_log(5000u + (uint64_t)i, NULL, "198.51.100.60", "accepted");
    for (int i = 0; i < 30; i++)
        conn_log(9000u + (uint64_t)i, "a\" b", "203.0.113.50", "session closed");
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(fd);
    int flood = count_lines(path, "from=203.0.113.50: login failed");
    print_message("1000 pre-login lines from one source: %d logged\n", flood);
    assert_true(flood >= 20 && flood <= 22);
    assert_int_equal(count_lines(path, "from=198.51.100.60: accepted"), 20);
    assert_int_equal(count_lines(path, "user=a\\\"\\x20b from=203.0.113.50: session closed"), 30);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape_quotes),
        cmocka_unit_test(test_escape_control),
        cmocka_unit_test(test_limit_one_source),
        cmocka_unit_test(test_limit_steady_flood),
        cmocka_unit_test(test_limit_keys),
        cmocka_unit_test(test_limit_eviction),
        cmocka_unit_test(test_conn_log_limited),
    };
    return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
