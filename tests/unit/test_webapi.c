/* tests/unit/test_webapi.c — vmgate's page's API: the AUTHP_REQ_VMS /
 * AUTHP_RESP_VMS encoding (auth/proto.c), the helper's check and list
 * (auth_check_vms with a password file and a parsed config), the Basic
 * credentials and the JSON answer (proxy/webapi.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "auth/auth.h"
#include "auth/proto.h"
#include "common/config.h"
#include "proxy/webapi.h"

#include <openssl/evp.h>

/* ---- the helper request and answer ---- */

static void vms_req_roundtrip(void **state)
{
    (void)state;
    struct authp_login_req q = { .id = 77 }, d;
    snprintf(q.user, sizeof q.user, "alice");
    snprintf(q.password, sizeof q.password, "pw with spaces");
    snprintf(q.rhost, sizeof q.rhost, "192.0.2.1");
    uint8_t buf[AUTHP_MAX_MSG];
    int n = authp_encode_vms_req(&q, buf, sizeof buf);
    assert_int_equal(n, 8 + 8 + 5 + 14 + 9);
    assert_int_equal(authp_peek_type(buf, (size_t)n), AUTHP_REQ_VMS);
    assert_int_equal(authp_decode_vms_req(buf, (size_t)n, &d), 0);
    assert_int_equal(d.id, 77);
    assert_string_equal(d.user, "alice");
    assert_string_equal(d.password, "pw with spaces");
    assert_string_equal(d.vm, "");
    /* not a login request, and a login request is not one */
    assert_int_equal(authp_decode_login_req(buf, (size_t)n, &d), -1);
    int m = authp_encode_login_req(&q, buf, sizeof buf);
    assert_int_equal(authp_decode_vms_req(buf, (size_t)m, &d), -1);
    /* a VM list names no VM: refused both ways */
    snprintf(q.vm, sizeof q.vm, "dev0");
    assert_int_equal(authp_encode_vms_req(&q, buf, sizeof buf), -1);
    m = authp_encode_login_req(&q, buf, sizeof buf);
    buf[1] = AUTHP_REQ_VMS;
    assert_int_equal(authp_decode_vms_req(buf, (size_t)m, &d), -1);
    assert_string_equal(d.password, "");                 /* wiped */
}

static void vms_resp_roundtrip(void **state)
{
    (void)state;
    static struct authp_vms_resp r, d;
    memset(&r, 0, sizeof r);
    r.id = 9;
    r.result = AUTHP_OK;
    snprintf(r.detail, sizeof r.detail, "alice");
    r.n = AUTHP_VMS_MAX;
    for (unsigned i = 0; i < r.n; i++)
        memset(r.names[i], 'a' + (char)(i % 26), AUTHP_VM_MAX);     /* every name at its limit */
    static uint8_t buf[AUTHP_VMS_RESP_MAX];
    int n = authp_encode_vms_resp(&r, buf, sizeof buf);
    assert_int_equal(n, AUTHP_VMS_RESP_MAX - (AUTHP_DETAIL_MAX - 5));
    static uint8_t shorter[AUTHP_VMS_RESP_MAX];
    assert_int_equal(authp_encode_vms_resp(&r, shorter, (size_t)n - 1), -1);
    assert_int_equal(authp_decode_vms_resp(buf, (size_t)n, &d), 0);
    assert_int_equal(d.n, AUTHP_VMS_MAX);
    assert_int_equal(memcmp(&r, &d, sizeof r), 0);
    /* every truncation is refused, and a trailing byte */
    for (int k = 0; k < n; k++)
        assert_int_equal(authp_decode_vms_resp(buf, (size_t)k, &d), -1);
    buf[n] = 0;
    assert_int_equal(authp_decode_vms_resp(buf, (size_t)n + 1, &d), -1);

    /* empty list; more names than the limit, an empty name, a failure */
    r.n = 0;
    n = authp_encode_vms_resp(&r, buf, sizeof buf);
    assert_int_equal(n, 8 + 1 + 2 + 5 + 1 + 2);
    assert_int_equal(authp_decode_vms_resp(buf, (size_t)n, &d), 0);
    assert_int_equal(d.n, 0);
    buf[n - 1] = AUTHP_VMS_MAX + 1;                     /* count over the limit */
    assert_int_equal(authp_decode_vms_resp(buf, (size_t)n, &d), -1);
    r.n = AUTHP_VMS_MAX + 1;
    assert_int_equal(authp_encode_vms_resp(&r, buf, sizeof buf), -1);
    r.n = 2;
    r.names[1][0] = '\0';
    assert_int_equal(authp_encode_vms_resp(&r, buf, sizeof buf), -1);
    r.names[1][0] = 'x';
    r.result = AUTHP_BAD_PASSWORD;
    assert_int_equal(authp_encode_vms_resp(&r, buf, sizeof buf), -1);
}

/* ---- the helper's check ---- */

static char g_dir[64];

static void check_vms(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/test_webapi.XXXXXX");
    assert_non_null(mkdtemp(g_dir));
    char pw[128], err[256], text[1024];
    snprintf(pw, sizeof pw, "%s/passwd", g_dir);
    assert_int_equal(auth_pwfile_set(pw, "alice", "right", err, sizeof err), 0);
    assert_int_equal(auth_pwfile_set(pw, "carol", "cpw", err, sizeof err), 0);
    snprintf(text, sizeof text,
             "[gateway]\nauth = file\npasswd_file = %s\n"
             "[vm a]\nvnc = unix:/x/a\nusers = alice bob\n"
             "[vm b]\nvnc = unix:/x/b\nusers = bob\n"
             "[vm c]\nspice = unix:/x/c\nspice_port = 6932\nusers = alice\n"     /* no vnc backend */
             "[vm d]\nvnc = 127.0.0.1:5901\nusers = alice\n", pw);
    struct cfg c;
    int rc = cfg_parse("t.conf", text, strlen(text), &c, err, sizeof err);
    if (rc != 0)
        print_error("%s\n", err);
    assert_int_equal(rc, 0);

    static struct authp_vms_resp r;
    struct authp_login_req q = { .id = 5 };
    snprintf(q.user, sizeof q.user, "alice");
    snprintf(q.password, sizeof q.password, "right");
    r.id = 5;
    assert_int_equal(auth_check_vms(&c, &q, &r), AUTHP_OK);
    assert_int_equal(r.id, 5);
    assert_int_equal(r.n, 2);
    assert_string_equal(r.names[0], "a");
    assert_string_equal(r.names[1], "d");
    assert_int_equal(r.truncated, 0);
    assert_string_equal(r.detail, "alice");

    snprintf(q.user, sizeof q.user, "carol");
    snprintf(q.password, sizeof q.password, "cpw");
    assert_int_equal(auth_check_vms(&c, &q, &r), AUTHP_OK);   /* right password, no VM */
    assert_int_equal(r.n, 0);

    snprintf(q.user, sizeof q.user, "alice");
    snprintf(q.password, sizeof q.password, "wrong");
    assert_int_equal(auth_check_vms(&c, &q, &r), AUTHP_BAD_PASSWORD);
    assert_int_equal(r.n, 0);
    snprintf(q.user, sizeof q.user, "mallory");
    assert_int_equal(auth_check_vms(&c, &q, &r), AUTHP_UNKNOWN_USER);
    q.user[0] = '\0';
    assert_int_equal(auth_check_vms(&c, &q, &r), AUTHP_UNKNOWN_USER);
    snprintf(q.user, sizeof q.user, "alice");
    snprintf(q.password, sizeof q.password, "right");
    snprintf(q.vm, sizeof q.vm, "a");                  /* a list names no VM */
    assert_int_equal(auth_check_vms(&c, &q, &r), AUTHP_ERROR);
    cfg_free(&c);
    unlink(pw);
    rmdir(g_dir);
}

/* ---- Basic credentials ---- */

static void basic(void **state)
{
    (void)state;
    char u[AUTHP_USER_MAX + 1], p[AUTHP_PASS_MAX + 1];
    /* "alice:pw:with:colons" */
    assert_int_equal(webapi_basic("Basic YWxpY2U6cHc6d2l0aDpjb2xvbnM=", u, sizeof u, p,
                                  sizeof p), 0);
    assert_string_equal(u, "alice");
    assert_string_equal(p, "pw:with:colons");
    /* scheme case, an empty password ("bob:"), UTF-8 ("zoë:пароль") */
    assert_int_equal(webapi_basic("basic Ym9iOg==", u, sizeof u, p, sizeof p), 0);
    assert_string_equal(u, "bob");
    assert_string_equal(p, "");
    assert_int_equal(webapi_basic("Basic em/DqzrQv9Cw0YDQvtC70Yw=", u, sizeof u, p, sizeof p), 0);
    assert_string_equal(u, "zo\xc3\xab");
    assert_string_equal(p, "\xd0\xbf\xd0\xb0\xd1\x80\xd0\xbe\xd0\xbb\xd1\x8c");
    static const char *const bad[] = {
        "", "Basic", "Basic ", "Bearer YWxpY2U6cHc=", "Digest x",
        "Basic YWxpY2U=",           /* "alice": no colon */
        "Basic OnB3",               /* ":pw": empty user */
        "Basic YWxpY2U6cHc",        /* unpadded */
        "Basic YWxp=2U6cHc=",       /* padding inside */
        "Basic YWxpY2U6c*c=",       /* not base64 */
        "Basic YQBiOmM=",           /* "a\0b:c": NUL */
        "Basic YQpiOmM=",           /* "a\nb:c": control byte in the user */
        "Basic YWxpY2U6cHc=x",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(u, sizeof u, "junk");
        snprintf(p, sizeof p, "junk");
        assert_int_equal(webapi_basic(bad[i], u, sizeof u, p, sizeof p), -1);
        assert_string_equal(u, "");
        assert_string_equal(p, "");
    }
    /* the limits: a user of 255 bytes fits, 256 does not (and tiny outputs) */
    char cred[AUTHP_USER_MAX + 8], b64[512], hdr[520];
    memset(cred, 'u', AUTHP_USER_MAX);
    memcpy(cred + AUTHP_USER_MAX, ":p", 3);
    EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)cred, (int)strlen(cred));
    snprintf(hdr, sizeof hdr, "Basic %s", b64);
    assert_int_equal(webapi_basic(hdr, u, sizeof u, p, sizeof p), 0);
    assert_int_equal(strlen(u), AUTHP_USER_MAX);
    assert_int_equal(webapi_basic(hdr, u, AUTHP_USER_MAX, p, sizeof p), -1);
    assert_int_equal(webapi_basic("Basic Ym9iOnB3", u, sizeof u, p, 2), -1);   /* "bob:pw" */
}

/* ---- the JSON answer ---- */

static void vms_json(void **state)
{
    (void)state;
    static struct authp_vms_resp r;
    memset(&r, 0, sizeof r);
    char out[WEBAPI_JSON_MAX];
    int n = webapi_vms_json("alice", &r, out, sizeof out);
    assert_int_equal(n, (int)strlen(out));
    assert_string_equal(out, "{\"user\":\"alice\",\"vms\":[],\"truncated\":false}");
    r.n = 2;
    snprintf(r.names[0], sizeof r.names[0], "dev0");
    snprintf(r.names[1], sizeof r.names[1], "web.1-x_y");
    r.truncated = 1;
    /* a user name with quotes, a backslash, a control byte and Latin-1 */
    webapi_vms_json("a\"b\\c\x01\xe9", &r, out, sizeof out);
    assert_string_equal(out, "{\"user\":\"a\\\"b\\\\c\\u0001\\u00e9\",\"vms\":[\"dev0\","
                             "\"web.1-x_y\"],\"truncated\":true}");
    /* too small: refused, never cut */
    assert_int_equal(webapi_vms_json("alice", &r, out, 20), -1);
    /* the bound holds for the largest answer */
    char user[AUTHP_USER_MAX + 1];
    memset(user, 0x01, AUTHP_USER_MAX);
    user[AUTHP_USER_MAX] = '\0';
    r.n = AUTHP_VMS_MAX;
    for (unsigned i = 0; i < r.n; i++) {
        memset(r.names[i], '"', AUTHP_VM_MAX);
        r.names[i][AUTHP_VM_MAX] = '\0';
    }
    assert_true(webapi_vms_json(user, &r, out, sizeof out) > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(vms_req_roundtrip), cmocka_unit_test(vms_resp_roundtrip),
        cmocka_unit_test(check_vms),         cmocka_unit_test(basic),
        cmocka_unit_test(vms_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
