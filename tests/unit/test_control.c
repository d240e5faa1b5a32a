/* tests/unit/test_control.c — the control socket's request format
 * (gateway/control.c): parse, percent-decoding, every refusal, and the
 * client's encoder round-tripping any byte but NUL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "gateway/control.h"

static struct ctl_req req;

static void ok(const char *line)
{
    char why[200] = "";
    if (ctl_parse(line, strlen(line), &req, why, sizeof why) != 0)
        fail_msg("\"%s\" refused: %s", line, why);
}

static void bad(const char *line, size_t len, const char *want)
{
    char why[200] = "";
    if (ctl_parse(line, len, &req, why, sizeof why) == 0)
        fail_msg("\"%s\" accepted", line);
    if (!strstr(why, want))
        fail_msg("\"%s\": got \"%s\", want \"%s\"", line, why, want);
}

static void test_parse(void **state)
{
    (void)state;
    ok("vmgate1 status");
    assert_string_equal(req.verb, "status");
    assert_int_equal(req.n, 0);
    ok("vmgate1 kick user=a%0Ab%22c%25 reason=two%20words vm=dev0");
    assert_string_equal(req.verb, "kick");
    assert_string_equal(ctl_arg(&req, "user"), "a\nb\"c%");
    assert_string_equal(ctl_arg(&req, "reason"), "two words");
    assert_string_equal(ctl_arg(&req, "vm"), "dev0");
    assert_null(ctl_arg(&req, "id"));
    ok("vmgate1 vm name=dev0 action=shutdown");         /* the later power request fits */
    ok("vmgate1 kick reason=");
    assert_string_equal(ctl_arg(&req, "reason"), "");
}

static void test_refusals(void **state)
{
    (void)state;
    bad("", 0, "not a vmgate control request");
    bad("GET / HTTP/1.1", 14, "not a vmgate control request");
    bad("vmgate2 status", 14, "not a vmgate control request");
    bad("vmgate1 ", 8, "not a vmgate control request");
    bad("vmgate1  x", 10, "bad request verb");
    bad("vmgate1 STATUS", 14, "bad request verb");
    bad("vmgate1 status  format=json", 27, "two spaces");
    bad("vmgate1 status ", 15, "trailing space");
    bad("vmgate1 kick user", 17, "expected key=value");
    bad("vmgate1 kick =x", 15, "expected key=value");
    bad("vmgate1 kick user=a%2", 21, "bad %-escape");
    bad("vmgate1 kick user=a%zz", 22, "bad %-escape");
    bad("vmgate1 kick user=a%00", 22, "NUL byte");
    bad("vmgate1 kick user=a\tb", 21, "unescaped byte 0x09");
    bad("vmgate1 kick user=\xc3\xa9", 20, "unescaped byte 0xc3");
    bad("vmgate1 kick user=a user=b", 26, "given twice");
    char line[CTL_REQ_MAX + 16];
    snprintf(line, sizeof line, "vmgate1 kick");
    for (int i = 0; i <= CTL_ARGS_MAX; i++)
        snprintf(line + strlen(line), sizeof line - strlen(line), " k%d=v", i);
    bad(line, strlen(line), "more than 16 arguments");
    memset(line, 'a', sizeof line);
    memcpy(line, "vmgate1 kick reason=", 20);
    bad(line, 20 + CTL_VALUE_MAX + 1, "longer than 1024");
    bad(line, CTL_REQ_MAX, "request longer than");
}

/* Every byte value but NUL survives encode + parse. */
static void test_roundtrip(void **state)
{
    (void)state;
    char val[256], line[CTL_REQ_MAX];
    for (int i = 1; i < 256; i++)
        val[i - 1] = (char)i;
    val[255] = '\0';
    snprintf(line, sizeof line, "vmgate1 kick");
    assert_int_equal(ctl_append_arg(line, sizeof line, "user", val), 0);
    assert_null(strchr(line, '\n'));
    ok(line);
    assert_string_equal(ctl_arg(&req, "user"), val);
    /* too small: refused, not cut */
    char small[20] = "vmgate1 kick";
    assert_int_equal(ctl_append_arg(small, sizeof small, "user", "abcdefghij"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
