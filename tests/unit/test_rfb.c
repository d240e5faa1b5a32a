/* Unit tests for proxy/rfb.c and common/qmp.c: every handshake parser fed
 * byte by byte and in one piece, and the malformed cases. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "common/buf.h"
#include "common/qmp.h"
#include "proxy/rfb.h"

/* Feed msg growing one byte at a time: every strict prefix must be
 * RFB_NEED, the whole must give want. */
#define BYTEWISE(call_with_n, len, want)                                   \
    do {                                                                   \
        for (size_t n_ = 0; n_ < (len); n_++) {                            \
            size_t n = n_;                                                 \
            assert_int_equal((call_with_n), RFB_NEED);                     \
        }                                                                  \
        size_t n = (len);                                                  \
        assert_int_equal((call_with_n), (want));                           \
    } while (0)

static void test_client_version(void **state)
{
    (void)state;
    char why[128];
    int minor = 0;
    const uint8_t v38[] = "RFB 003.008\n";
    BYTEWISE(rfb_parse_client_version(v38, n, &minor, why, sizeof why), 12, 12);
    assert_int_equal(minor, 8);
    static const struct { const char *v; int minor; } cases[] = {
        { "RFB 003.007\n", 7 },
        { "RFB 003.003\n", 3 },
        { "RFB 003.005\n", 3 },
        { "RFB 003.889\n", 3 },   /* Apple */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const uint8_t *v = (const uint8_t *)cases[i].v;
        assert_int_equal(rfb_parse_client_version(v, 12, &minor, why, sizeof why), 12);
        assert_int_equal(minor, cases[i].minor);
        /* the backend's version maps the same way */
        minor = 0;
        assert_int_equal(rfb_parse_server_version(v, 12, &minor, why, sizeof why), 12);
        assert_int_equal(minor, cases[i].minor);
    }
    const uint8_t v4[] = "RFB 004.001\n";
    assert_int_equal(rfb_parse_client_version(v4, 12, &minor, why, sizeof why), RFB_BAD);
    assert_non_null(strstr(why, "004.001"));
}

static void test_client_version_garbage_early(void **state)
{
    (void)state;
    char why[128];
    int minor;
    /* HTTP request: refused at the first byte, not after 12 */
    assert_int_equal(rfb_parse_client_version((const uint8_t *)"G", 1, &minor, why, sizeof why),
                     RFB_BAD);
    assert_string_equal(why, "not an RFB version string");
    assert_int_equal(rfb_parse_client_version((const uint8_t *)"RFB 00x", 7, &minor, why,
                                              sizeof why), RFB_BAD);
    assert_int_equal(rfb_parse_client_version((const uint8_t *)"RFB 003.008\r", 12, &minor, why,
                                              sizeof why), RFB_BAD);
    assert_int_equal(rfb_parse_client_version((const uint8_t *)"RFB 003,008\n", 12, &minor, why,
                                              sizeof why), RFB_BAD);
    const uint8_t zeros[12] = { 0 };
    assert_int_equal(rfb_parse_client_version(zeros, 12, &minor, why, sizeof why), RFB_BAD);
}

static void test_server_version(void **state)
{
    (void)state;
    char why[128];
    int minor;
    const uint8_t v[] = "RFB 003.008\n";
    BYTEWISE(rfb_parse_server_version(v, n, &minor, why, sizeof why), 12, 12);
    assert_int_equal(minor, 8);
    const uint8_t bad[] = "RFB 002.000\n";
    assert_int_equal(rfb_parse_server_version(bad, 12, &minor, why, sizeof why), RFB_BAD);
    assert_non_null(strstr(why, "backend speaks unsupported RFB version 002.000"));
}

static void test_vencrypt_version(void **state)
{
    (void)state;
    char why[128];
    const uint8_t ok[] = { 0, 2 };
    BYTEWISE(rfb_parse_vencrypt_version(ok, n, why, sizeof why), 2, 2);
    const uint8_t old[] = { 0, 1 };
    assert_int_equal(rfb_parse_vencrypt_version(old, 2, why, sizeof why), RFB_BAD);
    assert_non_null(strstr(why, "0.1"));
    const uint8_t zero[] = { 0, 0 };   /* TigerVNC's "abort" answer */
    assert_int_equal(rfb_parse_vencrypt_version(zero, 2, why, sizeof why), RFB_BAD);
}

static void test_plain_creds(void **state)
{
    (void)state;
    char user[RFB_PLAIN_USER_MAX + 1], pass[RFB_PLAIN_PASS_MAX + 1], why[128];
    uint8_t msg[64];
    rfb_put_u32(msg, 5);
    rfb_put_u32(msg + 4, 6);
    memcpy(msg + 8, "alicesecret", 11);
    BYTEWISE(rfb_parse_plain_creds(msg, n, user, pass, why, sizeof why), 19, 19);
    assert_string_equal(user, "alice");
    assert_string_equal(pass, "secret");
    /* empty password is a valid message (refused later by auth) */
    rfb_put_u32(msg + 4, 0);
    assert_int_equal(rfb_parse_plain_creds(msg, 13, user, pass, why, sizeof why), 13);
    assert_string_equal(pass, "");
}

static void test_plain_creds_limits(void **state)
{
    (void)state;
    char user[RFB_PLAIN_USER_MAX + 1], pass[RFB_PLAIN_PASS_MAX + 1], why[128];
    uint8_t msg[8] = { 0 };
    /* 4 GiB username: refused after the first 4 bytes, nothing waited for */
    rfb_put_u32(msg, 0xFFFFFFFFu);
    assert_int_equal(rfb_parse_plain_creds(msg, 4, user, pass, why, sizeof why), RFB_BAD);
    assert_non_null(strstr(why, "username length 4294967295"));
    rfb_put_u32(msg, 256);
    assert_int_equal(rfb_parse_plain_creds(msg, 8, user, pass, why, sizeof why), RFB_BAD);
    rfb_put_u32(msg, 0);
    assert_int_equal(rfb_parse_plain_creds(msg, 8, user, pass, why, sizeof why), RFB_BAD);
    rfb_put_u32(msg, 255);
    rfb_put_u32(msg + 4, 1025);
    assert_int_equal(rfb_parse_plain_creds(msg, 8, user, pass, why, sizeof why), RFB_BAD);
    assert_non_null(strstr(why, "password length 1025"));
    /* maximum sizes are accepted */
    static uint8_t big[8 + 255 + 1024];
    memset(big, 'a', sizeof big);
    rfb_put_u32(big, 255);
    rfb_put_u32(big + 4, 1024);
    assert_int_equal(rfb_parse_plain_creds(big, sizeof big, user, pass, why, sizeof why),
                     (int)sizeof big);
    assert_int_equal(strlen(user), 255);
    assert_int_equal(strlen(pass), 1024);
    /* NUL inside the name */
    uint8_t nul[16];
    rfb_put_u32(nul, 3);
    rfb_put_u32(nul + 4, 1);
    memcpy(nul + 8, "a\0bx", 4);
    assert_int_equal(rfb_parse_plain_creds(nul, 12, user, pass, why, sizeof why), RFB_BAD);
}

static void test_sec_types(void **state)
{
    (void)state;
    char why[256];
    int has_none;
    const uint8_t qemu[] = { 1, 1 };
    BYTEWISE(rfb_parse_sec_types(qemu, n, &has_none, why, sizeof why), 2, 2);
    assert_int_equal(has_none, 1);
    const uint8_t vnc_only[] = { 1, 2 };
    assert_int_equal(rfb_parse_sec_types(vnc_only, 2, &has_none, why, sizeof why), 2);
    assert_int_equal(has_none, 0);
    uint8_t refused[32] = { 0 };
    rfb_put_u32(refused + 1, 4);
    memcpy(refused + 5, "busy", 4);
    for (size_t n = 0; n < 9; n++)
        assert_int_equal(rfb_parse_sec_types(refused, n, &has_none, why, sizeof why), RFB_NEED);
    assert_int_equal(rfb_parse_sec_types(refused, 9, &has_none, why, sizeof why), RFB_BAD);
    assert_non_null(strstr(why, "busy"));
    /* hostile reason length */
    rfb_put_u32(refused + 1, 0x7FFFFFFF);
    assert_int_equal(rfb_parse_sec_types(refused, 5, &has_none, why, sizeof why), RFB_BAD);
}

static void test_sec_result(void **state)
{
    (void)state;
    char why[256];
    uint32_t st;
    const uint8_t ok[] = { 0, 0, 0, 0 };
    BYTEWISE(rfb_parse_sec_result(ok, n, 8, &st, why, sizeof why), 4, 4);
    assert_int_equal(st, 0);
    uint8_t fail[32];
    rfb_put_u32(fail, 1);
    rfb_put_u32(fail + 4, 22);
    memcpy(fail + 8, "Authentication failed", 22);  /* QEMU includes the NUL */
    assert_int_equal(rfb_parse_sec_result(fail, 29, 8, &st, why, sizeof why), RFB_NEED);
    assert_int_equal(rfb_parse_sec_result(fail, 30, 8, &st, why, sizeof why), RFB_BAD);
    assert_non_null(strstr(why, "Authentication failed"));
    assert_int_equal(rfb_parse_sec_result(fail, 4, 7, &st, why, sizeof why), RFB_BAD);
    uint32_t t;
    const uint8_t none33[] = { 0, 0, 0, 1 };
    assert_int_equal(rfb_parse_sec_type33(none33, 4, &t, why, sizeof why), 4);
    assert_int_equal(t, 1);
}

static void test_sec_failure_encoding(void **state)
{
    (void)state;
    uint8_t out[64];
    size_t n = rfb_put_sec_failure(out, sizeof out, 8, "Authentication failed");
    assert_int_equal(n, 8 + 21);
    assert_int_equal(rfb_get_u32(out), 1);
    assert_int_equal(rfb_get_u32(out + 4), 21);
    assert_memory_equal(out + 8, "Authentication failed", 21);
    /* 3.7 has no reason string */
    assert_int_equal(rfb_put_sec_failure(out, sizeof out, 7, "x"), 4);
    n = rfb_put_sec33_failure(out, sizeof out, "old");
    assert_int_equal(n, 11);
    assert_int_equal(rfb_get_u32(out), 0);
    assert_int_equal(rfb_get_u32(out + 4), 3);
}

static void test_qmp_lines(void **state)
{
    (void)state;
    char desc[128];
    const char *in = "{\"QMP\": {\"version\": {}}}\n{\"return\": {}}\n";
    long l = qmp_next_line(in, strlen(in));
    assert_true(l > 0);
    assert_int_equal(qmp_classify(in, (size_t)l, desc, sizeof desc), QMP_GREETING);
    const char *rest = in + l;
    long l2 = qmp_next_line(rest, strlen(rest));
    assert_int_equal(qmp_classify(rest, (size_t)l2, desc, sizeof desc), QMP_RETURN);
    assert_int_equal(qmp_next_line("{\"ret", 5), 0);
    const char *ev = "{\"timestamp\": {\"seconds\": 1}, \"event\": \"VNC_CONNECTED\"}\n";
    assert_int_equal(qmp_classify(ev, strlen(ev), desc, sizeof desc), QMP_EVENT);
    const char *err = "{\"error\": {\"class\": \"GenericError\", \"desc\": \"No fd named x\"}}\n";
    assert_int_equal(qmp_classify(err, strlen(err), desc, sizeof desc), QMP_ERROR);
    assert_string_equal(desc, "No fd named x");
    static char big[QMP_LINE_MAX];
    memset(big, 'a', sizeof big);
    assert_int_equal(qmp_next_line(big, sizeof big), -1);
}

static void test_buf(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 8);
    assert_null(b.data);          /* lazy */
    assert_int_equal(buf_put(&b, "abcdef", 6), 0);
    assert_int_equal(buf_put(&b, "xyz", 3), -1);   /* would overflow: nothing written */
    assert_int_equal(buf_len(&b), 6);
    buf_consume(&b, 4);
    assert_int_equal(buf_put(&b, "123456", 6), 0); /* compacts */
    assert_memory_equal(buf_head(&b), "ef123456", 8);
    assert_true(buf_full(&b));
    size_t avail;
    assert_null(buf_tail(&b, &avail));
    assert_int_equal(avail, 0);
    buf_consume(&b, 8);
    buf_trim(&b);
    assert_null(b.data);          /* released when empty */
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_version),
        cmocka_unit_test(test_client_version_garbage_early),
        cmocka_unit_test(test_server_version),
        cmocka_unit_test(test_vencrypt_version),
        cmocka_unit_test(test_plain_creds),
        cmocka_unit_test(test_plain_creds_limits),
        cmocka_unit_test(test_sec_types),
        cmocka_unit_test(test_sec_result),
        cmocka_unit_test(test_sec_failure_encoding),
        cmocka_unit_test(test_qmp_lines),
        cmocka_unit_test(test_buf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
