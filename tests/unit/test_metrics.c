/* tests/unit/test_metrics.c — the /metrics request classifier
 * (gateway/metrics.c metrics_parse), fed whole and byte by byte. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "common/json.h"
#include "gateway/metrics.h"

/* The whole request gives want; every strict prefix gives NEED (or, for a
 * malformed request line, BAD as soon as the line is complete). */
static void expect(const char *req, enum metrics_req want)
{
    size_t n = strlen(req);
    assert_int_equal(metrics_parse(req, n), want);
    for (size_t i = 0; i < n; i++) {
        enum metrics_req r = metrics_parse(req, i);
        if (r != METRICS_NEED && !(want == METRICS_BAD && r == METRICS_BAD))
            fail_msg("prefix %zu of \"%s\" gave %d", i, req, r);
    }
}

static void test_requests(void **state)
{
    (void)state;
    expect("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", METRICS_GET);
    expect("GET /metrics HTTP/1.0\r\n\r\n", METRICS_GET);
    expect("GET /metrics?x=1 HTTP/1.1\n\n", METRICS_GET);
    expect("GET / HTTP/1.1\r\n\r\n", METRICS_NOT_FOUND);
    expect("GET /metricsx HTTP/1.1\r\n\r\n", METRICS_NOT_FOUND);
    expect("GET /metric HTTP/1.1\r\n\r\n", METRICS_NOT_FOUND);
    expect("POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", METRICS_BAD_METHOD);
    expect("HEAD /metrics HTTP/1.1\r\n\r\n", METRICS_BAD_METHOD);
    expect("\x16\x03\x01\x02\x01\n", METRICS_BAD);          /* TLS at a plain port */
    expect("get /metrics HTTP/1.1\r\n\r\n", METRICS_BAD);
    expect("GET metrics HTTP/1.1\r\n\r\n", METRICS_BAD);
    expect("GET /metrics HTTP/2.0\r\n\r\n", METRICS_BAD);
    expect("GET /metrics\r\n\r\n", METRICS_BAD);
    expect("GET  /metrics HTTP/1.1\r\n\r\n", METRICS_BAD);
    expect("GET /met\x01rics HTTP/1.1\r\n\r\n", METRICS_BAD);
    expect("\r\n\r\n", METRICS_BAD);
    /* no end of the head yet */
    assert_int_equal(metrics_parse("GET /metrics HTTP/1.1\r\nHost: x\r\n", 33), METRICS_NEED);
}

/* processes > 1: the samples are summed by series, comments copied, a
 * peer that did not answer (NULL) or lacks a series adds nothing, a series
 * only a peer has is dropped, vmgate_bans is network process 1's. */
static void test_merge(void **state)
{
    (void)state;
    const char *own =
        "# HELP vmgate_sessions Console sessions open now.\n"
        "# TYPE vmgate_sessions gauge\n"
        "vmgate_sessions{vm=\"a\",via=\"tls\"} 1\n"
        "vmgate_sessions{vm=\"b c\",via=\"tls\"} 0\n"
        "vmgate_logins_total{result=\"failed\"} 2\n"
        "vmgate_login_seconds_sum 0.250000\n"
        "vmgate_bans 3\n";
    /* peer 0 writes them in another order; peer 2 lacks one, has an extra */
    char p0[] = "vmgate_logins_total{result=\"failed\"} 5\n"
                "vmgate_sessions{vm=\"a\",via=\"tls\"} 2\n"
                "vmgate_sessions{vm=\"b c\",via=\"tls\"} 4\n"
                "vmgate_login_seconds_sum 1.5\n"
                "vmgate_bans 3\n";
    char p2[] = "# HELP x\n"
                "vmgate_sessions{vm=\"a\",via=\"tls\"} 10\n"
                "vmgate_sessions{vm=\"zz\",via=\"tls\"} 7\n"
                "vmgate_bans 3";
    char *bodies[] = { p0, NULL, p2 };
    char out[4096];
    struct jw w;
    jw_init(&w, out, sizeof out);
    metrics_merge(own, bodies, 3, &w);
    assert_false(w.overflow);
    assert_string_equal(out,
        "# HELP vmgate_sessions Console sessions open now.\n"
        "# TYPE vmgate_sessions gauge\n"
        "vmgate_sessions{vm=\"a\",via=\"tls\"} 13\n"
        "vmgate_sessions{vm=\"b c\",via=\"tls\"} 4\n"
        "vmgate_logins_total{result=\"failed\"} 7\n"
        "vmgate_login_seconds_sum 1.750000\n"
        "vmgate_bans 3\n");
    /* nobody else: own unchanged */
    jw_init(&w, out, sizeof out);
    metrics_merge(own, NULL, 0, &w);
    assert_string_equal(out, own);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_requests),
        cmocka_unit_test(test_merge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
