/* Unit tests for proxy/http.c: the request head parser (limits, methods,
 * versions, headers, split at every byte), target-to-file mapping (every
 * traversal attempt) and MIME types. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proxy/http.h"

static int parse(const char *s, size_t n, struct http_req *r, int *status)
{
    char why[128];
    return http_parse_head((const uint8_t *)s, n, r, status, why, sizeof why);
}

/* Every strict prefix of a good head is NEED; the whole parses. */
static void expect_ok_bytewise(const char *s, struct http_req *r)
{
    size_t len = strlen(s);
    int st;
    for (size_t n = 0; n < len; n++)
        if (parse(s, n, r, &st) != HTTP_NEED)
            fail_msg("prefix %zu of a good head: not NEED (status %d)", n, st);
    assert_int_equal(parse(s, len, r, &st), (int)len);
}

/* The whole is refused with status; no prefix is accepted, and a prefix
 * that is refused already says the same status. */
static void expect_bad(const char *s, size_t len, int status)
{
    struct http_req r;
    int st;
    for (size_t n = 0; n < len; n++) {
        int rc = parse(s, n, &r, &st);
        if (rc > 0)
            fail_msg("prefix %zu of a bad head accepted", n);
        if (rc == HTTP_BAD && st != status)
            fail_msg("prefix %zu: status %d, want %d", n, st, status);
    }
    assert_int_equal(parse(s, len, &r, &st), HTTP_BAD);
    assert_int_equal(st, status);
}
#define BAD(s, status) expect_bad(s, strlen(s), status)

static void test_upgrade_request(void **state)
{
    (void)state;
    struct http_req r;
    const char *h = "GET /vnc/dev0 HTTP/1.1\r\n"
                    "Host: 127.0.0.1:8443\r\n"
                    "Connection: keep-alive, Upgrade\r\n"
                    "Upgrade: websocket\r\n"
                    "Origin: https://127.0.0.1:8443\r\n"
                    "Sec-WebSocket-Version: 13\r\n"
                    "sec-websocket-key:   dGhlIHNhbXBsZSBub25jZQ==  \r\n"
                    "Sec-WebSocket-Protocol: chat, Binary\r\n"
                    "\r\n";
    expect_ok_bytewise(h, &r);
    assert_string_equal(r.target, "/vnc/dev0");
    assert_int_equal(r.minor, 1);
    assert_string_equal(r.host, "127.0.0.1:8443");
    assert_string_equal(r.origin, "https://127.0.0.1:8443");
    assert_string_equal(r.ws_key, "dGhlIHNhbXBsZSBub25jZQ==");
    assert_string_equal(r.ws_version, "13");
    assert_true(r.upgrade_websocket && r.connection_upgrade && r.ws_binary_offered);

    /* Bytes after the head are not part of it. */
    char buf[600];
    int n = snprintf(buf, sizeof buf, "%sXYZ", h);
    int st;
    assert_int_equal(parse(buf, (size_t)n, &r, &st), n - 3);

    expect_ok_bytewise("GET /vnc.html?host=x&port=1 HTTP/1.0\r\n\r\n", &r);
    assert_int_equal(r.minor, 0);
    assert_false(r.upgrade_websocket || r.connection_upgrade || r.ws_protocol_present);
    expect_ok_bytewise("GET / HTTP/1.1\r\nHost: a\r\nConnection: upgradex\r\n\r\n", &r);
    assert_false(r.connection_upgrade);
}

static void test_methods_and_versions(void **state)
{
    (void)state;
    BAD("POST / HTTP/1.1\r\nHost: a\r\n\r\n", 405);
    BAD("HEAD / HTTP/1.1\r\n\r\n", 405);
    BAD("get / HTTP/1.1\r\n\r\n", 405);
    BAD("GETX / HTTP/1.1\r\n\r\n", 405);
    BAD("CONNECT a:443 HTTP/1.1\r\n\r\n", 405);
    BAD("GET / HTTP/2.0\r\n\r\n", 505);
    BAD("GET / HTTP/1.2\r\n\r\n", 505);
    BAD("GET / FOO/1.1\r\n\r\n", 400);
    BAD("GET /  HTTP/1.1\r\n\r\n", 400);
    BAD("GET http://x/ HTTP/1.1\r\n\r\n", 400);
    BAD("GET  / HTTP/1.1\r\n\r\n", 400);
    BAD("GET / HTTP/1.1 \r\n\r\n", 505);
    BAD("\r\nGET / HTTP/1.1\r\n\r\n", 400);
    BAD("GET / HTTP/1.1\r\n\r\n", 400);                      /* 1.1 without Host */
    BAD("GET /\x01 HTTP/1.1\r\n\r\n", 400);
}

static void test_header_errors(void **state)
{
    (void)state;
    BAD("GET / HTTP/1.1\nHost: a\n\n", 400);                  /* bare LF */
    BAD("GET / HTTP/1.1\r\nHost: a\rX\r\n\r\n", 400);        /* lone CR */
    BAD("GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", 400);
    BAD("GET / HTTP/1.1\r\nHost a\r\n\r\n", 400);
    BAD("GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400);
    BAD("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400);
    BAD("GET / HTTP/1.1\r\nHost: a\r\nOrigin: x\r\nOrigin: y\r\n\r\n", 400);
    BAD("GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n", 400);
    BAD("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", 400);
    BAD("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", 400);
    BAD("GET / HTTP/1.1\r\nHost:\r\n\r\n", 400);
    const char nul[] = "GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n";
    expect_bad(nul, sizeof nul - 1, 400);
}

static void test_limits(void **state)
{
    (void)state;
    struct http_req r;
    char *b = malloc(HTTP_HEAD_MAX * 2 + 100);
    assert_non_null(b);
    int st;

    /* target: 2048 fits, 2049 is 414 */
    size_t n = (size_t)sprintf(b, "GET /");
    memset(b + n, 'a', HTTP_TARGET_MAX - 1);
    n += HTTP_TARGET_MAX - 1;
    n += (size_t)sprintf(b + n, " HTTP/1.0\r\n\r\n");
    assert_int_equal(parse(b, n, &r, &st), (int)n);
    n = (size_t)sprintf(b, "GET /");
    memset(b + n, 'a', HTTP_TARGET_MAX);
    n += HTTP_TARGET_MAX;
    n += (size_t)sprintf(b + n, " HTTP/1.0\r\n\r\n");
    expect_bad(b, n, 414);
    /* an endless request line: 414 without waiting for its end */
    memset(b, 'A', HTTP_HEAD_MAX);
    memcpy(b, "GET /", 5);
    assert_int_equal(parse(b, HTTP_TARGET_MAX + 100, &r, &st), HTTP_BAD);
    assert_int_equal(st, 414);

    /* a header line of HTTP_LINE_MAX fits, one more byte is 431 */
    n = (size_t)sprintf(b, "GET / HTTP/1.1\r\nHost: a\r\nX: ");
    size_t line0 = n - 3;
    memset(b + n, 'v', HTTP_LINE_MAX - 3);
    n = line0 + HTTP_LINE_MAX;
    n += (size_t)sprintf(b + n, "\r\n\r\n");
    assert_int_equal(parse(b, n, &r, &st), (int)n);
    n = line0 + HTTP_LINE_MAX;
    b[n] = 'v';
    n += 1 + (size_t)sprintf(b + n + 1, "\r\n\r\n");
    expect_bad(b, n, 431);

    /* the whole head: exactly 8 KiB passes, one byte more is 431 */
    for (int extra = 0; extra < 2; extra++) {
        n = (size_t)sprintf(b, "GET / HTTP/1.1\r\nHost: a\r\n");
        size_t target = HTTP_HEAD_MAX - 2 + (size_t)extra;   /* before the final CRLF */
        while (n < target) {
            size_t room = target - n;               /* this line: "X: " filler CRLF */
            size_t fill = room > 1005 ? 1000 : room - 5;
            if (room > 1005 && room - 1005 < 6)
                fill = 990;
            n += (size_t)sprintf(b + n, "X: ");
            memset(b + n, 'f', fill);
            n += fill;
            n += (size_t)sprintf(b + n, "\r\n");
        }
        assert_int_equal(n, target);
        n += (size_t)sprintf(b + n, "\r\n");
        if (extra == 0)
            assert_int_equal(parse(b, n, &r, &st), (int)n);
        else
            expect_bad(b, n, 431);
    }
    /* no end of head in 8 KiB of short lines */
    n = (size_t)sprintf(b, "GET / HTTP/1.1\r\n");
    while (n < HTTP_HEAD_MAX + 10)
        n += (size_t)sprintf(b + n, "A: b\r\n");
    assert_int_equal(parse(b, n, &r, &st), HTTP_BAD);
    assert_int_equal(st, 431);

    /* 64 header lines are fine, 65 are not */
    n = (size_t)sprintf(b, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < HTTP_HEADERS_MAX; i++)
        n += (size_t)sprintf(b + n, "%s: %d\r\n", i ? "X" : "Host", i);
    size_t h64 = n;
    n += (size_t)sprintf(b + n, "\r\n");
    assert_int_equal(parse(b, n, &r, &st), (int)n);
    n = h64 + (size_t)sprintf(b + h64, "Y: 1\r\n\r\n");
    expect_bad(b, n, 431);
    /* a known field longer than its buffer */
    n = (size_t)sprintf(b, "GET / HTTP/1.1\r\nHost: ");
    memset(b + n, 'h', HTTP_FIELD_MAX + 1);
    n += HTTP_FIELD_MAX + 1;
    n += (size_t)sprintf(b + n, "\r\n\r\n");
    expect_bad(b, n, 431);
    free(b);
}

static void test_target_file(void **state)
{
    (void)state;
    char out[256];
    static const struct { const char *target, *want; } ok[] = {
        { "/", "vnc.html" },
        { "/?x=1", "vnc.html" },
        { "/vnc.html", "vnc.html" },
        { "/vnc.html?host=a&path=vnc/x", "vnc.html" },
        { "/app/ui.js", "app/ui.js" },
        { "/core/util/browser.js#frag", "core/util/browser.js" },
        { "/app/images/icons/novnc-16x16.png", "app/images/icons/novnc-16x16.png" },
        { "/a~b+c_d-e.f", "a~b+c_d-e.f" },
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        if (http_target_file(ok[i].target, "vnc.html", out, sizeof out) != 0)
            fail_msg("%s refused", ok[i].target);
        assert_string_equal(out, ok[i].want);
    }
    static const char *const bad[] = {
        "/..", "/../etc/passwd", "/app/../../etc/passwd", "/app/..", "/./vnc.html",
        "/app/./ui.js", "/.hidden", "/app/.git/config", "/%2e%2e/etc/passwd",
        "/%2E%2E/x", "/.%2e/x", "/%2e./x", "/app%2f..%2f..%2fetc", "/app/%00",
        "/app\\..\\x", "//etc/passwd", "/app//ui.js", "/app/", "/app/ui.js/",
        "/a b", "/a\"b", "/a:b", "/a*b", "relative", "", "/é",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (http_target_file(bad[i], "vnc.html", out, sizeof out) == 0)
            fail_msg("%s accepted as %s", bad[i], out);
    /* too long for out */
    assert_int_equal(http_target_file("/abcdefghij", "i", out, 8), -1);
    char path[64];
    assert_int_equal(http_target_path("/vnc/dev0?x#y", path, sizeof path), 0);
    assert_string_equal(path, "/vnc/dev0");
}

static void test_mime(void **state)
{
    (void)state;
    assert_string_equal(http_mime_type("app/ui.js"), "text/javascript; charset=utf-8");
    assert_string_equal(http_mime_type("vnc.html"), "text/html; charset=utf-8");
    assert_string_equal(http_mime_type("app/styles/base.css"), "text/css; charset=utf-8");
    assert_string_equal(http_mime_type("a/b.svg"), "image/svg+xml");
    assert_string_equal(http_mime_type("a/b.png"), "image/png");
    assert_null(http_mime_type("utils/novnc_proxy"));
    assert_null(http_mime_type("x.pl"));
    assert_null(http_mime_type("a.js/b"));
    assert_null(http_mime_type("README"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_upgrade_request),
        cmocka_unit_test(test_methods_and_versions),
        cmocka_unit_test(test_header_errors),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_target_file),
        cmocka_unit_test(test_mime),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
