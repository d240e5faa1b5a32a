/* tests/unit/test_json.c — the JSON writer (common/json.c): string
 * escaping (quotes, backslashes, every control byte, bad UTF-8), objects
 * and arrays, and the bounded buffer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "common/json.h"

static const char *esc(const char *s, size_t n, char *out, size_t cap)
{
    struct jw w;
    jw_init(&w, out, cap);
    jw_strn(&w, s, n);
    assert_false(w.overflow);
    return out;
}

static void test_escape(void **state)
{
    (void)state;
    char out[256];
    assert_string_equal(esc("alice", 5, out, sizeof out), "\"alice\"");
    /* a user name that tries to end the string and the line */
    const char evil[] = "a\"b\\c\nd\r\te\x01\x1f\x7f}";
    assert_string_equal(esc(evil, sizeof evil - 1, out, sizeof out),
                        "\"a\\\"b\\\\c\\nd\\r\\te\\u0001\\u001f\\u007f}\"");
    assert_string_equal(esc("\b\f", 2, out, sizeof out), "\"\\b\\f\"");
    /* a NUL inside the given length */
    assert_string_equal(esc("a\0b", 3, out, sizeof out), "\"a\\u0000b\"");
    /* well-formed UTF-8 passes as is */
    assert_string_equal(esc("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9, out, sizeof out),
                        "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"");
    /* Latin-1, overlong, surrogate, truncated, above U+10FFFF: per byte */
    assert_string_equal(esc("\xe9", 1, out, sizeof out), "\"\\u00e9\"");
    assert_string_equal(esc("\xc0\xaf", 2, out, sizeof out), "\"\\u00c0\\u00af\"");
    assert_string_equal(esc("\xed\xa0\x80", 3, out, sizeof out), "\"\\u00ed\\u00a0\\u0080\"");
    assert_string_equal(esc("\xe2\x82", 2, out, sizeof out), "\"\\u00e2\\u0082\"");
    assert_string_equal(esc("\xf4\x90\x80\x80", 4, out, sizeof out),
                        "\"\\u00f4\\u0090\\u0080\\u0080\"");
}

/* No byte value survives raw if it could end a line or a string. */
static void test_every_byte(void **state)
{
    (void)state;
    char in[256], out[2048];
    for (int i = 0; i < 256; i++)
        in[i] = (char)i;
    esc(in, sizeof in, out, sizeof out);
    size_t n = strlen(out);
    assert_int_equal(out[0], '"');
    assert_int_equal(out[n - 1], '"');
    for (size_t i = 1; i + 1 < n; i++) {
        unsigned char c = (unsigned char)out[i];
        assert_true(c >= 0x20 && c != 0x7f);
        assert_true(c < 0x80);          /* every high byte alone is bad UTF-8 */
        if (c == '"')
            assert_int_equal(out[i - 1], '\\');
    }
}

static void test_object(void **state)
{
    (void)state;
    char out[256];
    struct jw w;
    jw_init(&w, out, sizeof out);
    jw_open(&w, '{');
    jw_kstr(&w, "event", "login");
    jw_knull(&w, "vm");
    jw_ku64(&w, "bytes", UINT64_MAX);
    jw_kstr(&w, "user", NULL);
    jw_key(&w, "list");
    jw_open(&w, '[');
    jw_elem(&w);
    jw_str(&w, "a");
    jw_elem(&w);
    jw_open(&w, '{');
    jw_ku64(&w, "n", 1);
    jw_close(&w, '}');
    jw_close(&w, ']');
    jw_close(&w, '}');
    assert_false(w.overflow);
    assert_string_equal(out, "{\"event\":\"login\",\"vm\":null,\"bytes\":18446744073709551615,"
                             "\"user\":null,\"list\":[\"a\",{\"n\":1}]}");
}

/* Too small: overflow is set, nothing past cap is written, the text is
 * terminated. */
static void test_bounds(void **state)
{
    (void)state;
    char out[16];
    memset(out, 'x', sizeof out);
    struct jw w;
    jw_init(&w, out, 8);
    jw_str(&w, "abcdef");
    assert_true(w.overflow);
    assert_true(strlen(out) < 8);
    assert_int_equal(out[8], 'x');
    jw_raw(&w, "z");
    assert_true(strlen(out) < 8);
    jw_init(&w, out, 9);
    jw_str(&w, "abcdef");
    assert_false(w.overflow);
    assert_string_equal(out, "\"abcdef\"");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_every_byte),
        cmocka_unit_test(test_object),
        cmocka_unit_test(test_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
