/* tests/unit/test_qmp.c — the QMP script runner (common/qmp.c): greeting,
 * capabilities, each command in turn, events anywhere, errors, lines split
 * at every byte. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/qmp.h"

#define GREETING "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}}, \"capabilities\": [\"oob\"]}}\r\n"
#define RETURN   "{\"return\": {}}\r\n"
#define EVENT    "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, \"event\": \"RESUME\"}\r\n"

static void script2(struct qmp_run *r)
{
    struct qmp_cmd c[2];
    memset(c, 0, sizeof c);
    snprintf(c[0].json, sizeof c[0].json, "{\"execute\":\"getfd\"}\n");
    c[0].pass_fd = true;
    snprintf(c[1].json, sizeof c[1].json, "{\"execute\":\"add_client\"}\n");
    assert_int_equal(qmp_run_init(r, c, 2), 0);
}

/* Feed the whole text at once; collect the commands sent until a final
 * step.  Returns the final step. */
static enum qmp_step run_all(struct qmp_run *r, const char *text, char *sent, size_t sentsz,
                             int *fds)
{
    size_t off = 0, n = strlen(text);
    sent[0] = '\0';
    *fds = 0;
    for (;;) {
        size_t used;
        const struct qmp_cmd *send;
        enum qmp_step st = qmp_run_feed(r, text + off, n - off, &used, &send);
        off += used;
        if (st != QMP_SEND)
            return st;
        strncat(sent, send->json, sentsz - strlen(sent) - 1);
        *fds += send->pass_fd;
    }
}

static void test_script_in_order(void **state)
{
    (void)state;
    struct qmp_run r;
    char sent[2048];
    int fds;
    script2(&r);
    /* Nothing is sent before the greeting. */
    assert_int_equal(run_all(&r, "", sent, sizeof sent, &fds), QMP_NEED);
    assert_string_equal(sent, "");
    assert_int_equal(run_all(&r, GREETING, sent, sizeof sent, &fds), QMP_NEED);
    assert_string_equal(sent, "{\"execute\":\"qmp_capabilities\"}\n");
    assert_int_equal(run_all(&r, EVENT RETURN, sent, sizeof sent, &fds), QMP_NEED);
    assert_string_equal(sent, "{\"execute\":\"getfd\"}\n");
    assert_int_equal(fds, 1);
    assert_int_equal(run_all(&r, RETURN EVENT, sent, sizeof sent, &fds), QMP_NEED);
    assert_string_equal(sent, "{\"execute\":\"add_client\"}\n");
    assert_int_equal(fds, 0);
    assert_int_equal(run_all(&r, RETURN, sent, sizeof sent, &fds), QMP_DONE);
    assert_false(r.refused);
}

/* The same conversation with every byte arriving on its own. */
static void test_byte_by_byte(void **state)
{
    (void)state;
    static const char *answers[] = { GREETING, EVENT RETURN, RETURN, EVENT EVENT RETURN };
    struct qmp_run r;
    script2(&r);
    char rx[4096];
    size_t have = 0;
    int sends = 0;
    enum qmp_step st = QMP_NEED;
    for (size_t a = 0; a < 4; a++) {
        for (const char *p = answers[a]; *p; p++) {
            rx[have++] = *p;
            for (;;) {
                size_t used;
                const struct qmp_cmd *send;
                st = qmp_run_feed(&r, rx, have, &used, &send);
                memmove(rx, rx + used, have - used);
                have -= used;
                if (st != QMP_SEND)
                    break;
                sends++;
            }
            assert_true(st == QMP_NEED || st == QMP_DONE);
            /* The next command goes out only once the answer's line is
             * whole: answers 0..a-1 are complete before this byte. */
            int expect = p[1] == '\0' ? (int)a + 1 : (int)a;
            assert_int_equal(sends, expect > 3 ? 3 : expect);
            assert_int_equal(st == QMP_DONE, a == 3 && p[1] == '\0');
        }
    }
    assert_int_equal(st, QMP_DONE);
    assert_int_equal(sends, 3);
}

static void test_error_answer(void **state)
{
    (void)state;
    struct qmp_run r;
    char sent[2048];
    int fds;
    script2(&r);
    assert_int_equal(run_all(&r, GREETING RETURN, sent, sizeof sent, &fds), QMP_NEED);
    assert_int_equal(run_all(&r, "{\"error\": {\"class\": \"GenericError\", \"desc\": "
                                 "\"No file descriptor supplied via SCM_RIGHTS\"}}\r\n",
                             sent, sizeof sent, &fds), QMP_FAIL);
    assert_true(r.refused);
    assert_string_equal(r.err, "No file descriptor supplied via SCM_RIGHTS");
}

static void test_no_greeting(void **state)
{
    (void)state;
    struct qmp_run r;
    char sent[256];
    int fds;
    script2(&r);
    assert_int_equal(run_all(&r, RETURN, sent, sizeof sent, &fds), QMP_FAIL);
    assert_false(r.refused);
    assert_string_equal(r.err, "no QMP greeting");
    script2(&r);
    assert_int_equal(run_all(&r, GREETING "{\"QMP\": {}}\n", sent, sizeof sent, &fds), QMP_FAIL);
    assert_string_equal(r.err, "unexpected QMP answer");
}

static void test_long_line(void **state)
{
    (void)state;
    static char big[QMP_LINE_MAX + 10];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    struct qmp_run r;
    char sent[256];
    int fds;
    script2(&r);
    assert_int_equal(run_all(&r, big, sent, sizeof sent, &fds), QMP_FAIL);
    assert_string_equal(r.err, "QMP line too long");
}

static void test_empty_script_and_limits(void **state)
{
    (void)state;
    struct qmp_run r;
    struct qmp_cmd c[QMP_RUN_MAX + 1];
    memset(c, 0, sizeof c);
    assert_int_equal(qmp_run_init(&r, c, QMP_RUN_MAX + 1), -1);
    assert_int_equal(qmp_run_init(&r, c, 0), 0);
    char sent[256];
    int fds;
    /* caps only */
    assert_int_equal(run_all(&r, GREETING, sent, sizeof sent, &fds), QMP_NEED);
    assert_int_equal(run_all(&r, RETURN, sent, sizeof sent, &fds), QMP_DONE);
    /* a stray answer after DONE does not restart anything */
    assert_int_equal(run_all(&r, RETURN, sent, sizeof sent, &fds), QMP_DONE);
    qmp_run_wipe(&r);
    assert_int_equal(r.n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_script_in_order),
        cmocka_unit_test(test_byte_by_byte),
        cmocka_unit_test(test_error_answer),
        cmocka_unit_test(test_no_greeting),
        cmocka_unit_test(test_long_line),
        cmocka_unit_test(test_empty_script_and_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
