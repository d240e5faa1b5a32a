/* tests/unit/test_console.c — the watcher of `vmgate console`
 * (gateway/console.c): a refusal in each RFB version is recognised, fed
 * whole and byte by byte, and an offer of security types ends the watch. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "gateway/console.h"

/* Feed client bytes c and server bytes s (step bytes at a time, server
 * first), return the final state. */
static enum console_watch_state run(struct console_watch *w, const char *c, size_t cn,
                                    const char *s, size_t sn, size_t step)
{
    console_watch_init(w);
    size_t ci = 0, si = 0;
    enum console_watch_state st = CW_WATCHING;
    while (ci < cn || si < sn) {
        size_t k = sn - si < step ? sn - si : step;
        st = console_watch_s2c(w, (const uint8_t *)s + si, k);
        si += k;
        k = cn - ci < step ? cn - ci : step;
        st = console_watch_c2s(w, (const uint8_t *)c + ci, k);
        ci += k;
    }
    return st;
}

#define V8 "RFB 003.008\n"
#define V7 "RFB 003.007\n"
#define V3 "RFB 003.003\n"
#define REASON "user bob may not open VM dev0"

static void test_refusals(void **state)
{
    (void)state;
    struct console_watch w;
    const char r8[] = V8 "\0\0\0\0\x1d" REASON;
    const char r3[] = V8 "\0\0\0\0\0\0\0\x1d" REASON;
    for (size_t step = 1; step <= 64; step *= 2) {
        assert_int_equal(run(&w, V8, 12, r8, sizeof r8 - 1, step), CW_REFUSED);
        assert_string_equal(w.reason, REASON);
        assert_int_equal(run(&w, V7, 12, r8, sizeof r8 - 1, step), CW_REFUSED);
        assert_string_equal(w.reason, REASON);
        assert_int_equal(run(&w, V3, 12, r3, sizeof r3 - 1, step), CW_REFUSED);
        assert_string_equal(w.reason, REASON);
        /* half the reason is not a refusal yet */
        assert_int_equal(run(&w, V8, 12, r8, sizeof r8 - 10, step), CW_WATCHING);
    }
    /* control bytes in the reason never reach the terminal */
    const char ctl[] = V8 "\0\0\0\0\x03" "a\x1b" "b";
    assert_int_equal(run(&w, V8, 12, ctl, sizeof ctl - 1, 1), CW_REFUSED);
    assert_string_equal(w.reason, "a?b");
}

static void test_passed_and_bad(void **state)
{
    (void)state;
    struct console_watch w;
    assert_int_equal(run(&w, V8, 12, V8 "\x01\x01", 14, 1), CW_PASSED);
    assert_int_equal(run(&w, V3, 12, V8 "\0\0\0\x01", 16, 3), CW_PASSED);
    /* the server's bytes alone decide nothing: the client's version is needed */
    assert_int_equal(run(&w, "", 0, V8 "\0\0\0\0\0", 17, 17), CW_WATCHING);
    assert_int_equal(run(&w, "GET / HTTP/1", 12, V8 "\0", 13, 1), CW_BAD);
    assert_int_equal(run(&w, V8, 12, "SSH-2.0-Open", 12, 12), CW_BAD);
    /* a huge reason length: the first CONSOLE_REASON_MAX bytes are kept */
    char big[12 + 5 + 300];
    memcpy(big, V8 "\0\0\0\x01\x2c", 17);
    memset(big + 17, 'x', 300);
    assert_int_equal(run(&w, V8, 12, big, sizeof big, 7), CW_REFUSED);
    assert_int_equal(strlen(w.reason), CONSOLE_REASON_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_passed_and_bad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
