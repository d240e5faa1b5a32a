/* Unit tests for proxy/pp2.c, the PROXY protocol v2 header parser: TCP4,
 * TCP6 (and v4-mapped), LOCAL (a health check keeps the balancer's
 * address), UNSPEC, TLVs skipped; every split point answered NEED with the
 * right total, fed the way the core reads; truncated headers; a wrong
 * signature refused at its first wrong byte; a v1 text header named; wrong
 * version and command; unsupported families; lengths that lie (too long,
 * too short for the addresses, a TLV past the end). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "proxy/pp2.h"

static const uint8_t SIG[12] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a };

/* A header: ver/cmd, family, the address block and extra (TLVs), with the
 * length field set to len (or the true length when len < 0). */
static size_t hdr(uint8_t *out, uint8_t vc, uint8_t fam, const uint8_t *blk, size_t blen,
                  const uint8_t *extra, size_t elen, long len)
{
    memcpy(out, SIG, 12);
    out[12] = vc;
    out[13] = fam;
    size_t l = len < 0 ? blen + elen : (size_t)len;
    out[14] = (uint8_t)(l >> 8);
    out[15] = (uint8_t)l;
    memcpy(out + 16, blk, blen);
    if (elen)
        memcpy(out + 16 + blen, extra, elen);
    return 16 + blen + elen;
}

static const uint8_t V4[12] = { 192, 0, 2, 7, 127, 0, 0, 1, 0x9c, 0x40, 0x17, 0x0d };

static size_t tcp4(uint8_t *out) { return hdr(out, 0x21, 0x11, V4, 12, NULL, 0, -1); }

static void src_is(const struct pp2_result *r, const char *want, unsigned port)
{
    char a[INET6_ADDRSTRLEN];
    if (r->src.ss_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)&r->src;
        inet_ntop(AF_INET, &s->sin_addr, a, sizeof a);
        assert_int_equal(ntohs(s->sin_port), port);
    } else {
        assert_int_equal(r->src.ss_family, AF_INET6);
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)&r->src;
        inet_ntop(AF_INET6, &s->sin6_addr, a, sizeof a);
        assert_int_equal(ntohs(s->sin6_port), port);
    }
    assert_string_equal(a, want);
}

/* Parse b[0..n) exactly as the core reads: only what the parser asked for,
 * each prefix in a buffer of its own size.  Returns the final status. */
static enum pp2_status as_core(const uint8_t *b, size_t n, struct pp2_result *r)
{
    size_t have = 0;
    for (int guard = 0; guard < 8; guard++) {
        uint8_t *p = malloc(have ? have : 1);
        memcpy(p, b, have);
        enum pp2_status st = pp2_parse(p, have, r);
        free(p);
        if (st != PP2_NEED)
            return st;
        assert_true(r->need > have);
        if (r->need > n)
            return PP2_NEED;
        have = r->need;
    }
    fail();
    return PP2_BAD;
}

static void test_tcp4(void **state)
{
    (void)state;
    uint8_t b[64];
    size_t n = tcp4(b);
    memcpy(b + n, "RFB 003.008\n", 12);          /* the viewer's bytes follow */
    struct pp2_result r;
    assert_int_equal(pp2_parse(b, n + 12, &r), PP2_DONE);
    assert_int_equal(r.consumed, 28);
    assert_false(r.local);
    src_is(&r, "192.0.2.7", 40000);
    assert_int_equal(as_core(b, n + 12, &r), PP2_DONE);
    assert_int_equal(r.consumed, 28);
}

static void test_every_split(void **state)
{
    (void)state;
    uint8_t b[64];
    size_t n = tcp4(b);
    struct pp2_result r;
    for (size_t k = 0; k < n; k++) {
        assert_int_equal(pp2_parse(b, k, &r), PP2_NEED);
        assert_int_equal(r.need, k < 16 ? 16 : n);
    }
    assert_int_equal(pp2_parse(b, n, &r), PP2_DONE);
}

static void test_tcp6(void **state)
{
    (void)state;
    uint8_t blk[36] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 0x42, [16] = 0xfe, [17] = 0x80,
                        [31] = 1, [32] = 0x12, [33] = 0x34, [34] = 0, [35] = 80 };
    uint8_t b[64];
    size_t n = hdr(b, 0x21, 0x21, blk, 36, NULL, 0, -1);
    struct pp2_result r;
    assert_int_equal(as_core(b, n, &r), PP2_DONE);
    assert_int_equal(r.consumed, 52);
    src_is(&r, "2001:db8::42", 0x1234);
    /* v4-mapped: the address as sent (addr_sockaddr_str prints it as IPv4) */
    uint8_t m[36] = { [10] = 0xff, [11] = 0xff, [12] = 198, [13] = 51, [14] = 100, [15] = 9 };
    n = hdr(b, 0x21, 0x21, m, 36, NULL, 0, -1);
    assert_int_equal(pp2_parse(b, n, &r), PP2_DONE);
    src_is(&r, "::ffff:198.51.100.9", 0);
}

static void test_local_and_unspec(void **state)
{
    (void)state;
    uint8_t b[64];
    struct pp2_result r;
    /* LOCAL: a health check; whatever the family, the TCP peer stays */
    size_t n = hdr(b, 0x20, 0x00, NULL, 0, NULL, 0, -1);
    assert_int_equal(as_core(b, n, &r), PP2_DONE);
    assert_true(r.local);
    assert_int_equal(r.consumed, 16);
    n = hdr(b, 0x20, 0x11, V4, 12, NULL, 0, -1);
    assert_int_equal(pp2_parse(b, n, &r), PP2_DONE);
    assert_true(r.local);
    n = hdr(b, 0x20, 0x31, V4, 12, NULL, 0, -1);   /* LOCAL over a unix family: ignored */
    assert_int_equal(pp2_parse(b, n, &r), PP2_DONE);
    assert_true(r.local);
    /* PROXY with UNSPEC: no address to take */
    n = hdr(b, 0x21, 0x00, NULL, 0, NULL, 0, -1);
    assert_int_equal(pp2_parse(b, n, &r), PP2_DONE);
    assert_true(r.local);
}

static void test_tlvs(void **state)
{
    (void)state;
    uint8_t b[600];
    struct pp2_result r;
    static const uint8_t tlv[] = { 0x04, 0, 0, 0xe0, 0, 3, 'a', 'b', 'c' };
    size_t n = hdr(b, 0x21, 0x11, V4, 12, tlv, sizeof tlv, -1);
    assert_int_equal(as_core(b, n, &r), PP2_DONE);
    assert_int_equal(r.consumed, n);
    src_is(&r, "192.0.2.7", 40000);
    /* a TLV whose length runs past the header */
    static const uint8_t lie[] = { 0xe0, 0, 9, 'a' };
    n = hdr(b, 0x21, 0x11, V4, 12, lie, sizeof lie, -1);
    assert_int_equal(pp2_parse(b, n, &r), PP2_BAD);
    assert_non_null(strstr(r.why, "TLV"));
    /* a TLV header cut short */
    n = hdr(b, 0x21, 0x11, V4, 12, lie, 2, -1);
    assert_int_equal(pp2_parse(b, n, &r), PP2_BAD);
    /* the largest accepted header, then one byte more */
    uint8_t big[PP2_LEN_MAX];
    memset(big, 0, sizeof big);
    big[0] = 0xe0;
    big[1] = (uint8_t)((PP2_LEN_MAX - 12 - 3) >> 8);
    big[2] = (uint8_t)(PP2_LEN_MAX - 12 - 3);
    n = hdr(b, 0x21, 0x11, V4, 12, big, PP2_LEN_MAX - 12, -1);
    assert_int_equal(pp2_parse(b, n, &r), PP2_DONE);
    assert_int_equal(r.consumed, PP2_TOTAL_MAX);
    hdr(b, 0x21, 0x11, V4, 12, NULL, 0, PP2_LEN_MAX + 1);
    assert_int_equal(pp2_parse(b, 16, &r), PP2_BAD);     /* refused before reading the rest */
    hdr(b, 0x21, 0x11, V4, 12, NULL, 0, 0xffff);
    assert_int_equal(pp2_parse(b, 16, &r), PP2_BAD);
}

static void test_lengths_lie(void **state)
{
    (void)state;
    uint8_t b[64];
    struct pp2_result r;
    /* TCP4 announcing fewer bytes than its addresses */
    size_t n = hdr(b, 0x21, 0x11, V4, 12, NULL, 0, 8);
    assert_int_equal(pp2_parse(b, n, &r), PP2_BAD);
    n = hdr(b, 0x21, 0x21, V4, 12, NULL, 0, -1);   /* TCP6 with a TCP4 block */
    assert_int_equal(pp2_parse(b, n, &r), PP2_BAD);
    /* announcing more than is sent: need more (the login timeout ends it) */
    hdr(b, 0x21, 0x11, V4, 12, NULL, 0, 40);
    assert_int_equal(pp2_parse(b, 28, &r), PP2_NEED);
    assert_int_equal(r.need, 56);
}

static void test_signature(void **state)
{
    (void)state;
    uint8_t b[64];
    size_t n = tcp4(b);
    struct pp2_result r;
    /* each signature byte wrong: refused with just that prefix */
    for (size_t i = 0; i < 12; i++) {
        uint8_t c[64];
        memcpy(c, b, n);
        c[i] ^= 0x20;
        assert_int_equal(pp2_parse(c, i + 1, &r), PP2_BAD);
        assert_int_equal(pp2_parse(c, n, &r), PP2_BAD);
    }
    /* a viewer that speaks first instead, TLS, RFB */
    static const uint8_t hello[] = { 0x16, 0x03, 0x01, 0x02, 0x00 };
    assert_int_equal(pp2_parse(hello, sizeof hello, &r), PP2_BAD);
    assert_int_equal(pp2_parse((const uint8_t *)"RFB 003.008\n", 12, &r), PP2_BAD);
    /* v1 is named */
    const char *v1 = "PROXY TCP4 192.0.2.7 127.0.0.1 40000 5901\r\n";
    assert_int_equal(pp2_parse((const uint8_t *)v1, strlen(v1), &r), PP2_BAD);
    assert_non_null(strstr(r.why, "v1"));
    assert_int_equal(pp2_parse((const uint8_t *)v1, 1, &r), PP2_BAD);
    assert_true(pp2_looks_like((const uint8_t *)v1, strlen(v1)));
    assert_true(pp2_looks_like(b, n));
    assert_true(pp2_looks_like(b, 4));
    assert_false(pp2_looks_like(b, 3));
    assert_false(pp2_looks_like(hello, sizeof hello));
    assert_false(pp2_looks_like((const uint8_t *)"RFB 003.008\n", 12));
    assert_int_equal(pp2_parse(NULL, 0, &r), PP2_NEED);
}

static void test_version_command_family(void **state)
{
    (void)state;
    uint8_t b[64];
    struct pp2_result r;
    size_t n = hdr(b, 0x11, 0x11, V4, 12, NULL, 0, -1);   /* version 1 in binary */
    assert_int_equal(pp2_parse(b, n, &r), PP2_BAD);
    n = hdr(b, 0x31, 0x11, V4, 12, NULL, 0, -1);
    assert_int_equal(pp2_parse(b, 16, &r), PP2_BAD);
    n = hdr(b, 0x22, 0x11, V4, 12, NULL, 0, -1);           /* command 2 */
    assert_int_equal(pp2_parse(b, n, &r), PP2_BAD);
    static const uint8_t fams[] = { 0x12, 0x22, 0x31, 0x32, 0x10, 0x20, 0x41, 0x01 };
    uint8_t blk[216] = { 0 };
    for (size_t i = 0; i < sizeof fams; i++) {
        n = hdr(b, 0x21, fams[i], blk, 36, NULL, 0, -1);
        assert_int_equal(pp2_parse(b, n, &r), PP2_BAD);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcp4),
        cmocka_unit_test(test_every_split),
        cmocka_unit_test(test_tcp6),
        cmocka_unit_test(test_local_and_unspec),
        cmocka_unit_test(test_tlvs),
        cmocka_unit_test(test_lengths_lie),
        cmocka_unit_test(test_signature),
        cmocka_unit_test(test_version_command_family),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
