/* tests/unit/test_authproto.c — the auth helper wire protocol (auth/proto.c):
 * round trips, and every way a message can be malformed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth/peer.h"
#include "auth/proto.h"

/* A request with every field set. */
static void sample_req(struct authp_login_req *r)
{
    memset(r, 0, sizeof *r);
    r->id = 0x01020304;
    strcpy(r->vm, "dev0");
    strcpy(r->user, "alice");
    strcpy(r->password, "correct horse battery staple");
    strcpy(r->rhost, "2001:db8::1");
}

static int enc_req(const struct authp_login_req *r, uint8_t *buf)
{
    return authp_encode_login_req(r, buf, AUTHP_MAX_MSG);
}

/* Offsets into an encoded sample request: header 8, then str vm, user,
 * password, rhost. */
#define OFF_VM_LEN    8
#define OFF_USER_LEN  (OFF_VM_LEN + 2 + 4)                 /* "dev0" */
#define OFF_PASS_LEN  (OFF_USER_LEN + 2 + 5)               /* "alice" */
#define OFF_RHOST_LEN (OFF_PASS_LEN + 2 + 28)              /* password */

static void test_req_roundtrip(void **state)
{
    (void)state;
    struct authp_login_req in, out;
    uint8_t buf[AUTHP_MAX_MSG];
    sample_req(&in);
    int n = enc_req(&in, buf);
    assert_int_equal(n, 8 + 2 + 4 + 2 + 5 + 2 + 28 + 2 + 11);
    assert_int_equal(buf[0], AUTHP_VERSION);
    assert_int_equal(buf[1], AUTHP_REQ_LOGIN);
    assert_int_equal(buf[2], 0);
    assert_int_equal(buf[3], 0);
    assert_int_equal(buf[4], 1);
    assert_int_equal(buf[7], 4);
    assert_int_equal(buf[OFF_USER_LEN + 1], 5);
    assert_int_equal(authp_decode_login_req(buf, (size_t)n, &out), 0);
    assert_int_equal(out.id, in.id);
    assert_string_equal(out.vm, in.vm);
    assert_string_equal(out.user, in.user);
    assert_string_equal(out.password, in.password);
    assert_string_equal(out.rhost, in.rhost);
}

static void test_req_roundtrip_limits(void **state)
{
    (void)state;
    struct authp_login_req in, out;
    uint8_t buf[AUTHP_MAX_MSG];
    /* all empty */
    memset(&in, 0, sizeof in);
    in.id = 0xffffffffu;
    int n = enc_req(&in, buf);
    assert_int_equal(n, 8 + 4 * 2);
    assert_int_equal(authp_decode_login_req(buf, (size_t)n, &out), 0);
    assert_int_equal(out.id, 0xffffffffu);
    assert_string_equal(out.user, "");
    /* every field at its limit, with every non-NUL byte value somewhere */
    memset(&in, 0, sizeof in);
    memset(in.vm, 'v', AUTHP_VM_MAX);
    memset(in.user, 'u', AUTHP_USER_MAX);
    for (size_t i = 0; i < AUTHP_PASS_MAX; i++)
        in.password[i] = (char)(1 + i % 255);
    memset(in.rhost, 'r', AUTHP_RHOST_MAX);
    n = enc_req(&in, buf);
    assert_int_equal(n, 8 + 2 * 4 + AUTHP_VM_MAX + AUTHP_USER_MAX + AUTHP_PASS_MAX +
                            AUTHP_RHOST_MAX);
    assert_true(n <= AUTHP_MAX_MSG);
    assert_int_equal(authp_decode_login_req(buf, (size_t)n, &out), 0);
    assert_memory_equal(&in, &out, sizeof in);
}

static void test_resp_roundtrip(void **state)
{
    (void)state;
    uint8_t buf[AUTHP_MAX_MSG];
    for (int r = AUTHP_OK; r <= AUTHP_ERROR; r++) {
        struct authp_login_resp in = { .id = 77u + (uint32_t)r, .result = (uint8_t)r }, out;
        snprintf(in.detail, sizeof in.detail, "detail %d", r);
        int n = authp_encode_login_resp(&in, buf, sizeof buf);
        assert_int_equal(n, 8 + 1 + 2 + (int)strlen(in.detail));
        assert_int_equal(buf[1], AUTHP_RESP_LOGIN);
        assert_int_equal(authp_decode_login_resp(buf, (size_t)n, &out), 0);
        assert_int_equal(out.id, in.id);
        assert_int_equal(out.result, r);
        assert_string_equal(out.detail, in.detail);
    }
    struct authp_login_resp in = { .id = 5, .result = AUTHP_OK }, out;
    memset(in.detail, 'd', AUTHP_DETAIL_MAX);
    int n = authp_encode_login_resp(&in, buf, sizeof buf);
    assert_int_equal(n, 8 + 1 + 2 + AUTHP_DETAIL_MAX);
    assert_int_equal(authp_decode_login_resp(buf, (size_t)n, &out), 0);
    assert_string_equal(out.detail, in.detail);
}

static void test_encode_refuses(void **state)
{
    (void)state;
    uint8_t buf[AUTHP_MAX_MSG];
    struct authp_login_req r;
    /* unterminated (= over-long) fields */
    sample_req(&r);
    memset(r.vm, 'x', sizeof r.vm);
    assert_int_equal(enc_req(&r, buf), -1);
    sample_req(&r);
    memset(r.user, 'x', sizeof r.user);
    assert_int_equal(enc_req(&r, buf), -1);
    sample_req(&r);
    memset(r.password, 'x', sizeof r.password);
    assert_int_equal(enc_req(&r, buf), -1);
    sample_req(&r);
    memset(r.rhost, 'x', sizeof r.rhost);
    assert_int_equal(enc_req(&r, buf), -1);
    /* cap too small, at every size below the real length */
    sample_req(&r);
    int full = enc_req(&r, buf);
    assert_true(full > 0);
    for (int cap = 0; cap < full; cap++) {
        memset(buf, 0xaa, sizeof buf);
        assert_int_equal(authp_encode_login_req(&r, buf, (size_t)cap), -1);
        /* nothing of the password may be left behind */
        assert_null(memmem(buf, sizeof buf, "correct", 7));
    }
    assert_int_equal(authp_encode_login_req(&r, buf, (size_t)full), full);
    assert_int_equal(authp_encode_login_req(NULL, buf, sizeof buf), -1);
    assert_int_equal(authp_encode_login_req(&r, NULL, sizeof buf), -1);

    struct authp_login_resp s = { .id = 1, .result = AUTHP_OK };
    memset(s.detail, 'd', sizeof s.detail);
    assert_int_equal(authp_encode_login_resp(&s, buf, sizeof buf), -1);
    s.detail[AUTHP_DETAIL_MAX] = '\0';
    assert_true(authp_encode_login_resp(&s, buf, sizeof buf) > 0);
    assert_int_equal(authp_encode_login_resp(&s, buf, 10), -1);
    s.result = AUTHP_QMP_REFUSED + 1;
    assert_int_equal(authp_encode_login_resp(&s, buf, sizeof buf), -1);
}

static void test_decode_short_header(void **state)
{
    (void)state;
    uint8_t buf[AUTHP_MAX_MSG];
    struct authp_login_req r;
    struct authp_login_resp s;
    sample_req(&r);
    enc_req(&r, buf);
    for (size_t len = 0; len < 8; len++) {
        assert_int_equal(authp_decode_login_req(buf, len, &r), -1);
        assert_int_equal(authp_decode_login_resp(buf, len, &s), -1);
    }
    assert_int_equal(authp_decode_login_req(NULL, 0, &r), -1);
    assert_int_equal(authp_decode_login_req(buf, 8, NULL), -1);
    assert_int_equal(authp_decode_login_resp(NULL, 0, &s), -1);
}

static void test_decode_bad_header(void **state)
{
    (void)state;
    uint8_t buf[AUTHP_MAX_MSG], m[AUTHP_MAX_MSG];
    struct authp_login_req r;
    struct authp_login_resp s = { .id = 9, .result = AUTHP_OK, .detail = "x" };
    sample_req(&r);
    int n = enc_req(&r, buf);
    int ns = authp_encode_login_resp(&s, m, sizeof m);
    /* 1: the protocol before requests carried the viewer's socket */
    static const uint8_t versions[] = { 0, 1, AUTHP_VERSION + 1, 0x81, 0xff };
    for (size_t i = 0; i < sizeof versions; i++) {
        uint8_t c[AUTHP_MAX_MSG];
        memcpy(c, buf, (size_t)n);
        c[0] = versions[i];
        assert_int_equal(authp_decode_login_req(c, (size_t)n, &r), -1);
        memcpy(c, m, (size_t)ns);
        c[0] = versions[i];
        assert_int_equal(authp_decode_login_resp(c, (size_t)ns, &s), -1);
    }
    static const uint8_t types[] = { 0, 4, 0x7f, 0xff };
    for (size_t i = 0; i < sizeof types; i++) {
        uint8_t c[AUTHP_MAX_MSG];
        memcpy(c, buf, (size_t)n);
        c[1] = types[i];
        assert_int_equal(authp_decode_login_req(c, (size_t)n, &r), -1);
        memcpy(c, m, (size_t)ns);
        c[1] = types[i];
        assert_int_equal(authp_decode_login_resp(c, (size_t)ns, &s), -1);
    }
    /* each decoder refuses the other's type */
    assert_int_equal(authp_decode_login_resp(buf, (size_t)n, &s), -1);
    assert_int_equal(authp_decode_login_req(m, (size_t)ns, &r), -1);
    /* reserved != 0, either byte */
    for (int b = 2; b <= 3; b++) {
        uint8_t c[AUTHP_MAX_MSG];
        memcpy(c, buf, (size_t)n);
        c[b] = 1;
        assert_int_equal(authp_decode_login_req(c, (size_t)n, &r), -1);
        memcpy(c, m, (size_t)ns);
        c[b] = 0x80;
        assert_int_equal(authp_decode_login_resp(c, (size_t)ns, &s), -1);
    }
    /* the unmodified ones still decode */
    assert_int_equal(authp_decode_login_req(buf, (size_t)n, &r), 0);
    assert_int_equal(authp_decode_login_resp(m, (size_t)ns, &s), 0);
}

/* Build a request by hand: header + 4 strings with the given declared
 * lengths; actual bytes are 'a' repeated min(declared, avail). */
static size_t build_req(uint8_t *b, const unsigned declared[4], const unsigned actual[4])
{
    size_t o = 0;
    b[o++] = AUTHP_VERSION;
    b[o++] = AUTHP_REQ_LOGIN;
    b[o++] = 0;
    b[o++] = 0;
    b[o++] = 0; b[o++] = 0; b[o++] = 0; b[o++] = 42;
    for (int i = 0; i < 4; i++) {
        b[o++] = (uint8_t)(declared[i] >> 8);
        b[o++] = (uint8_t)declared[i];
        memset(b + o, 'a', actual[i]);
        o += actual[i];
    }
    return o;
}

static void test_decode_over_limit(void **state)
{
    (void)state;
    static uint8_t b[8 + 4 * (2 + 65535)];
    struct authp_login_req r;
    const unsigned limits[4] = { AUTHP_VM_MAX, AUTHP_USER_MAX, AUTHP_PASS_MAX, AUTHP_RHOST_MAX };
    for (int f = 0; f < 4; f++) {
        unsigned d[4] = { 1, 1, 1, 1 }, a[4] = { 1, 1, 1, 1 };
        /* at the limit: fine */
        d[f] = a[f] = limits[f];
        size_t len = build_req(b, d, a);
        assert_int_equal(authp_decode_login_req(b, len, &r), 0);
        /* one over, with the bytes actually present: refused */
        d[f] = a[f] = limits[f] + 1;
        len = build_req(b, d, a);
        assert_int_equal(authp_decode_login_req(b, len, &r), -1);
        /* 0xffff declared, few bytes present */
        d[f] = 0xffff;
        a[f] = 3;
        len = build_req(b, d, a);
        assert_int_equal(authp_decode_login_req(b, len, &r), -1);
    }
    /* response detail */
    uint8_t m[8 + 1 + 2 + 200] = { AUTHP_VERSION, AUTHP_RESP_LOGIN, 0, 0, 0, 0, 0, 1, 0 };
    struct authp_login_resp s;
    for (unsigned dl = AUTHP_DETAIL_MAX; dl <= AUTHP_DETAIL_MAX + 1; dl++) {
        m[9] = 0;
        m[10] = (uint8_t)dl;
        memset(m + 11, 'd', dl);
        int want = dl <= AUTHP_DETAIL_MAX ? 0 : -1;
        assert_int_equal(authp_decode_login_resp(m, 11 + dl, &s), want);
    }
    m[9] = 0xff;
    m[10] = 0xff;
    assert_int_equal(authp_decode_login_resp(m, sizeof m, &s), -1);
}

static void test_decode_past_end(void **state)
{
    (void)state;
    uint8_t b[AUTHP_MAX_MSG];
    struct authp_login_req r;
    for (int f = 0; f < 4; f++) {
        unsigned d[4] = { 2, 2, 2, 2 }, a[4] = { 2, 2, 2, 2 };
        d[f] = 10;
        a[f] = 9;   /* the string claims one byte more than there is */
        size_t len = build_req(b, d, a);
        /* for the first three fields the next field's bytes are swallowed
         * and the last one then runs past the end */
        assert_int_equal(authp_decode_login_req(b, len, &r), -1);
    }
    /* response: detail longer than the datagram */
    uint8_t m[] = { AUTHP_VERSION, AUTHP_RESP_LOGIN, 0, 0, 0, 0, 0, 1, 0, 0, 5, 'a', 'b' };
    struct authp_login_resp s;
    assert_int_equal(authp_decode_login_resp(m, sizeof m, &s), -1);
    /* response missing the result byte / the length */
    assert_int_equal(authp_decode_login_resp(m, 8, &s), -1);
    assert_int_equal(authp_decode_login_resp(m, 9, &s), -1);
    assert_int_equal(authp_decode_login_resp(m, 10, &s), -1);
}

static void test_decode_nul(void **state)
{
    (void)state;
    uint8_t buf[AUTHP_MAX_MSG];
    struct authp_login_req r;
    sample_req(&r);
    int n = enc_req(&r, buf);
    const size_t fields[4] = { OFF_VM_LEN, OFF_USER_LEN, OFF_PASS_LEN, OFF_RHOST_LEN };
    for (int f = 0; f < 4; f++) {
        size_t len = (size_t)buf[fields[f]] << 8 | buf[fields[f] + 1];
        for (size_t at = 0; at < len; at++) {
            uint8_t c[AUTHP_MAX_MSG];
            memcpy(c, buf, (size_t)n);
            c[fields[f] + 2 + at] = 0;
            assert_int_equal(authp_decode_login_req(c, (size_t)n, &r), -1);
        }
    }
    struct authp_login_resp s = { .id = 3, .result = AUTHP_OK, .detail = "abc" };
    int ns = authp_encode_login_resp(&s, buf, sizeof buf);
    buf[12] = 0;
    assert_int_equal(authp_decode_login_resp(buf, (size_t)ns, &s), -1);
}

static void test_decode_trailing(void **state)
{
    (void)state;
    uint8_t buf[AUTHP_MAX_MSG + 8];
    struct authp_login_req r;
    sample_req(&r);
    int n = enc_req(&r, buf);
    for (int extra = 1; extra <= 3; extra++) {
        memset(buf + n, extra == 1 ? 0 : 'x', (size_t)extra);
        assert_int_equal(authp_decode_login_req(buf, (size_t)(n + extra), &r), -1);
    }
    struct authp_login_resp s = { .id = 3, .result = AUTHP_OK, .detail = "abc" };
    int ns = authp_encode_login_resp(&s, buf, sizeof buf);
    buf[ns] = 0;
    assert_int_equal(authp_decode_login_resp(buf, (size_t)ns + 1, &s), -1);
}

static void test_decode_huge_len(void **state)
{
    (void)state;
    uint8_t buf[AUTHP_MAX_MSG + 1];
    struct authp_login_req r;
    sample_req(&r);
    int n = enc_req(&r, buf);
    memset(buf + n, 0, sizeof buf - (size_t)n);
    /* over AUTHP_MAX_MSG: refused before looking at the content */
    assert_int_equal(authp_decode_login_req(buf, AUTHP_MAX_MSG + 1, &r), -1);
    /* lengths that truncate to the real one in 32 or 16 bits: the decoder
     * must refuse them from the length alone (it never reads past n) */
    if (sizeof(size_t) > 4) {
        uint64_t big = ((uint64_t)1 << 32) + (uint64_t)n;
        assert_int_equal(authp_decode_login_req(buf, (size_t)big, &r), -1);
        assert_int_equal(authp_decode_login_req(buf, (size_t)0xffffffffu, &r), -1);
    }
    assert_int_equal(authp_decode_login_req(buf, (size_t)0x10000 + (size_t)n, &r), -1);
    assert_int_equal(authp_decode_login_req(buf, SIZE_MAX, &r), -1);
    struct authp_login_resp s = { .id = 3, .result = AUTHP_OK, .detail = "abc" };
    int ns = authp_encode_login_resp(&s, buf, sizeof buf);
    assert_int_equal(authp_decode_login_resp(buf, (size_t)0x10000 + (size_t)ns, &s), -1);
    assert_int_equal(authp_decode_login_resp(buf, SIZE_MAX, &s), -1);
}

static void test_decode_every_truncation(void **state)
{
    (void)state;
    uint8_t buf[AUTHP_MAX_MSG];
    struct authp_login_req r;
    sample_req(&r);
    int n = enc_req(&r, buf);
    for (int len = 0; len < n; len++) {
        /* a fresh heap copy of exactly len bytes, so a read past the end
         * shows up under ASan */
        uint8_t *c = malloc(len ? (size_t)len : 1);
        assert_non_null(c);
        memcpy(c, buf, (size_t)len);
        memset(&r, 0x55, sizeof r);
        assert_int_equal(authp_decode_login_req(c, (size_t)len, &r), -1);
        /* nothing of the password is left in the output */
        assert_null(memmem(&r, sizeof r, "correct", 7));
        free(c);
    }
    assert_int_equal(authp_decode_login_req(buf, (size_t)n, &r), 0);

    struct authp_login_resp s = { .id = 3, .result = AUTHP_ACCOUNT, .detail = "expired" };
    int ns = authp_encode_login_resp(&s, buf, sizeof buf);
    for (int len = 0; len < ns; len++) {
        uint8_t *c = malloc(len ? (size_t)len : 1);
        assert_non_null(c);
        memcpy(c, buf, (size_t)len);
        assert_int_equal(authp_decode_login_resp(c, (size_t)len, &s), -1);
        free(c);
    }
}

static void test_decode_bad_result(void **state)
{
    (void)state;
    uint8_t m[] = { AUTHP_VERSION, AUTHP_RESP_LOGIN, 0, 0, 0, 0, 0, 1, 0, 0, 0 };
    struct authp_login_resp s;
    for (int r = 0; r < 256; r++) {
        m[8] = (uint8_t)r;
        assert_int_equal(authp_decode_login_resp(m, sizeof m, &s), r <= AUTHP_QMP_REFUSED ? 0 : -1);
    }
}

/* Single-byte corruptions anywhere: the decoder must never crash, and a
 * message it accepts must re-encode to the same bytes. */
static void test_decode_mutations(void **state)
{
    (void)state;
    uint8_t buf[AUTHP_MAX_MSG], c[AUTHP_MAX_MSG], again[AUTHP_MAX_MSG];
    struct authp_login_req r;
    sample_req(&r);
    int n = enc_req(&r, buf);
    static const uint8_t vals[] = { 0, 1, 0x7f, 0x80, 0xff };
    for (int i = 0; i < n; i++) {
        for (size_t v = 0; v < sizeof vals; v++) {
            memcpy(c, buf, (size_t)n);
            c[i] = vals[v];
            if (authp_decode_login_req(c, (size_t)n, &r) == 0) {
                int m = enc_req(&r, again);
                assert_int_equal(m, n);
                assert_memory_equal(again, c, (size_t)n);
            }
        }
    }
}

/* The id of a request that does not decode, for the helper's answer. */
static void test_peek_id(void **state)
{
    (void)state;
    static uint8_t m[AUTHP_MAX_MSG + 100] = { AUTHP_VERSION, 0x7f, 9, 9, 0xde, 0xad, 0xbe, 0xef };
    uint32_t id = 0;
    assert_int_equal(authp_peek_id(m, 8, &id), 0);
    assert_int_equal(id, 0xdeadbeefu);
    id = 0;
    assert_int_equal(authp_peek_id(m, sizeof m, &id), 0);   /* over-long: still readable */
    assert_int_equal(id, 0xdeadbeefu);
    assert_int_equal(authp_peek_id(m, 7, &id), -1);
    assert_int_equal(authp_peek_id(NULL, 8, &id), -1);
    m[0] = AUTHP_VERSION + 1;
    assert_int_equal(authp_peek_id(m, 8, &id), -1);
}


/* ---- certificate messages ---- */

/* AUTHP_REQ_CERT is the bare header; AUTHP_RESP_CERT carries the two PEM
 * texts at their full limits, decoded in place (pointers into the
 * message); every truncation, an over-limit length, a wrong format byte and
 * a half answer (OK without a key, ERROR with one) are refused. */
static void test_cert_messages(void **state)
{
    (void)state;
    uint8_t small[16];
    uint32_t id = 0;
    int n = authp_encode_cert_req(77, small, sizeof small);
    assert_int_equal(n, 8);
    assert_int_equal(authp_peek_type(small, (size_t)n), AUTHP_REQ_CERT);
    assert_int_equal(authp_decode_cert_req(small, (size_t)n, &id), 0);
    assert_int_equal(id, 77);
    assert_int_equal(authp_decode_cert_req(small, (size_t)n - 1, &id), -1);
    struct authp_login_req lr;
    assert_int_equal(authp_decode_login_req(small, (size_t)n, &lr), -1);

    static uint8_t chain[AUTHP_CERT_CHAIN_MAX + 1], key[AUTHP_CERT_KEY_MAX + 1];
    memset(chain, 'c', sizeof chain);
    memset(key, 'k', sizeof key);
    uint8_t *buf = malloc(AUTHP_CERT_RESP_MAX + 64);
    assert_non_null(buf);
    struct authp_cert_resp r = { .id = 9, .result = AUTHP_OK, .chain = chain,
                                 .chain_len = AUTHP_CERT_CHAIN_MAX, .key = key,
                                 .key_len = AUTHP_CERT_KEY_MAX }, d;
    n = authp_encode_cert_resp(&r, buf, AUTHP_CERT_RESP_MAX);
    assert_true(n > 0 && n <= AUTHP_CERT_RESP_MAX);
    assert_int_equal(authp_peek_type(buf, (size_t)n), AUTHP_RESP_CERT);
    assert_int_equal(authp_decode_cert_resp(buf, (size_t)n, &d), 0);
    assert_int_equal(d.id, 9);
    assert_int_equal(d.result, AUTHP_OK);
    assert_int_equal(d.chain_len, AUTHP_CERT_CHAIN_MAX);
    assert_int_equal(d.key_len, AUTHP_CERT_KEY_MAX);
    assert_true(d.key >= buf && d.key + d.key_len <= buf + n);   /* in place */
    assert_memory_equal(d.key, key, d.key_len);
    for (int cut = 0; cut < n; cut += cut < 200 ? 1 : 997)
        assert_int_equal(authp_decode_cert_resp(buf, (size_t)cut, &d), -1);
    buf[n] = 0;
    assert_int_equal(authp_decode_cert_resp(buf, (size_t)n + 1, &d), -1);   /* trailing */
    buf[8] = AUTHP_CERT_FORMAT + 1;
    assert_int_equal(authp_decode_cert_resp(buf, (size_t)n, &d), -1);      /* format */
    /* a login decoder never takes it */
    struct authp_login_resp lresp;
    buf[8] = AUTHP_CERT_FORMAT;
    assert_int_equal(authp_decode_login_resp(buf, (size_t)n, &lresp), -1);

    r.key_len = AUTHP_CERT_KEY_MAX + 1;                                      /* over limit */
    assert_int_equal(authp_encode_cert_resp(&r, buf, AUTHP_CERT_RESP_MAX + 64), -1);
    r.key_len = 0;                                                           /* OK, no key */
    assert_int_equal(authp_encode_cert_resp(&r, buf, AUTHP_CERT_RESP_MAX), -1);
    struct authp_cert_resp e = { .id = 3, .result = AUTHP_ERROR };
    snprintf(e.detail, sizeof e.detail, "server.key: No such file or directory");
    n = authp_encode_cert_resp(&e, buf, AUTHP_CERT_RESP_MAX);
    assert_true(n > 0 && n <= AUTHP_CERT_ERR_MAX);
    assert_int_equal(authp_decode_cert_resp(buf, (size_t)n, &d), 0);
    assert_int_equal(d.result, AUTHP_ERROR);
    assert_string_equal(d.detail, e.detail);
    assert_int_equal(d.chain_len + d.key_len, 0);
    e.key = key;                                                             /* ERROR + key */
    e.key_len = 10;
    assert_int_equal(authp_encode_cert_resp(&e, buf, AUTHP_CERT_RESP_MAX), -1);
    free(buf);
}

static void test_result_name(void **state)
{
    (void)state;
    assert_string_equal(authp_result_name(AUTHP_OK), "ok");
    assert_string_equal(authp_result_name(AUTHP_BAD_PASSWORD), "bad password");
    assert_string_equal(authp_result_name(AUTHP_UNKNOWN_USER), "unknown user");
    assert_string_equal(authp_result_name(AUTHP_NOT_ALLOWED), "not allowed");
    assert_string_equal(authp_result_name(AUTHP_ACCOUNT), "account refused");
    assert_string_equal(authp_result_name(AUTHP_ERROR), "error");
    assert_string_equal(authp_result_name((enum authp_result)99), "invalid result");
}

/* ---- auth/peer.c: the peer of a passed socket ---- */

/* A unix socketpair: the peer is this process's uid, gid and pid. */
static void test_peer_unix(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct auth_peer p;
    char err[128];
    assert_int_equal(auth_peer_from_fd(sv[0], &p, err, sizeof err), 0);
    assert_int_equal(p.kind, AUTH_PEER_UNIX);
    assert_int_equal(p.uid, getuid());
    assert_int_equal(p.gid, getgid());
    assert_int_equal(p.pid, getpid());
    char s[64];
    char want[64];
    snprintf(want, sizeof want, "uid=%lu", (unsigned long)getuid());
    assert_string_equal(auth_peer_str(&p, s, sizeof s), want);
    close(sv[0]);
    close(sv[1]);
    /* seqpacket too */
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
    assert_int_equal(auth_peer_from_fd(sv[1], &p, err, sizeof err), 0);
    assert_int_equal(p.kind, AUTH_PEER_UNIX);
    close(sv[0]);
    close(sv[1]);
}

/* Accept one TCP connection from `from` to a listener on `to` (same
 * family); returns the accepted socket, *cli the connecting one. */
static int tcp_accept(int family, const char *to, int *cli)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t sl;
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, to, &a->sin_addr), 1);
        sl = sizeof *a;
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, to, &a->sin6_addr), 1);
        sl = sizeof *a;
    }
    int l = socket(family, SOCK_STREAM, 0);
    if (l < 0)
        return -1;
    int off = 0;
    if (family == AF_INET6)
        setsockopt(l, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
    if (bind(l, (struct sockaddr *)&ss, sl) != 0 || listen(l, 1) != 0 ||
        getsockname(l, (struct sockaddr *)&ss, &sl) != 0) {
        close(l);
        return -1;
    }
    *cli = socket(family, SOCK_STREAM, 0);
    assert_int_equal(connect(*cli, (struct sockaddr *)&ss, sl), 0);
    int srv = accept(l, NULL, NULL);
    close(l);
    return srv;
}

/* TCP peers: IPv4, IPv6, and IPv4 through a dual-stack IPv6 socket
 * (v4-mapped), which is named as plain IPv4, like the ban table keys it. */
static void test_peer_inet(void **state)
{
    (void)state;
    struct auth_peer p;
    char err[128];
    int cli;
    int srv = tcp_accept(AF_INET, "127.0.0.1", &cli);
    assert_true(srv >= 0);
    assert_int_equal(auth_peer_from_fd(srv, &p, err, sizeof err), 0);
    assert_int_equal(p.kind, AUTH_PEER_INET);
    assert_string_equal(p.addr, "127.0.0.1");
    close(srv);
    close(cli);
    srv = tcp_accept(AF_INET6, "::1", &cli);
    if (srv < 0) {
        print_message("no IPv6 loopback here: IPv6 cases not run\n");
        return;
    }
    assert_int_equal(auth_peer_from_fd(srv, &p, err, sizeof err), 0);
    assert_string_equal(p.addr, "::1");
    close(srv);
    close(cli);
    srv = tcp_accept(AF_INET6, "::ffff:127.0.0.1", &cli);
    if (srv >= 0) {
        assert_int_equal(auth_peer_from_fd(srv, &p, err, sizeof err), 0);
        assert_int_equal(p.kind, AUTH_PEER_INET);
        assert_string_equal(p.addr, "127.0.0.1");
        close(srv);
        close(cli);
    }
}

/* Not a connected stream socket: refused. */
static void test_peer_refused(void **state)
{
    (void)state;
    struct auth_peer p;
    char err[128];
    int pp[2];
    assert_int_equal(pipe(pp), 0);
    assert_int_equal(auth_peer_from_fd(pp[0], &p, err, sizeof err), -1);
    assert_string_equal(err, "not a socket");
    assert_int_equal(p.kind, AUTH_PEER_NONE);
    close(pp[0]);
    close(pp[1]);
    assert_int_equal(auth_peer_from_fd(-1, &p, err, sizeof err), -1);
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    assert_int_equal(auth_peer_from_fd(u, &p, err, sizeof err), -1);
    close(u);
    int t = socket(AF_INET, SOCK_STREAM, 0);   /* not connected */
    assert_int_equal(auth_peer_from_fd(t, &p, err, sizeof err), -1);
    close(t);
    int x = socket(AF_UNIX, SOCK_STREAM, 0);   /* not connected */
    assert_int_equal(auth_peer_from_fd(x, &p, NULL, 0), -1);
    close(x);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv), 0);
    assert_int_equal(auth_peer_from_fd(sv[0], &p, err, sizeof err), -1);
    close(sv[0]);
    close(sv[1]);
}

/* AUTHP_REQ_IDLE: round trip, its limits, and the other decoders refuse it
 * (and it refuses theirs); authp_peek_type tells them apart. */
static void test_idle_req(void **state)
{
    (void)state;
    uint8_t buf[AUTHP_MAX_MSG], lb[AUTHP_MAX_MSG];
    struct authp_idle_req in = { .id = 42, .rhost = "2001:db8::7" }, out;
    int n = authp_encode_idle_req(&in, buf, sizeof buf);
    assert_int_equal(n, 8 + 2 + 11);
    assert_int_equal(authp_peek_type(buf, (size_t)n), AUTHP_REQ_IDLE);
    assert_int_equal(authp_decode_idle_req(buf, (size_t)n, &out), 0);
    assert_int_equal(out.id, 42);
    assert_string_equal(out.rhost, "2001:db8::7");
    for (int len = 0; len < n; len++)
        assert_int_equal(authp_decode_idle_req(buf, (size_t)len, &out), -1);
    buf[n] = 0;
    assert_int_equal(authp_decode_idle_req(buf, (size_t)n + 1, &out), -1);   /* trailing */
    struct authp_login_req lr;
    struct authp_login_resp rs;
    assert_int_equal(authp_decode_login_req(buf, (size_t)n, &lr), -1);
    assert_int_equal(authp_decode_login_resp(buf, (size_t)n, &rs), -1);
    sample_req(&lr);
    int ln = enc_req(&lr, lb);
    assert_int_equal(authp_peek_type(lb, (size_t)ln), AUTHP_REQ_LOGIN);
    assert_int_equal(authp_decode_idle_req(lb, (size_t)ln, &out), -1);
    assert_int_equal(authp_peek_type(lb, 7), -1);
    lb[0] = AUTHP_VERSION - 1;                        /* an old version */
    assert_int_equal(authp_peek_type(lb, (size_t)ln), -1);
    memset(in.rhost, 'a', sizeof in.rhost);          /* unterminated */
    assert_int_equal(authp_encode_idle_req(&in, buf, sizeof buf), -1);
    memset(in.rhost, 0, sizeof in.rhost);
    memset(in.rhost, 'a', AUTHP_RHOST_MAX);           /* at the limit */
    n = authp_encode_idle_req(&in, buf, sizeof buf);
    assert_int_equal(n, 8 + 2 + AUTHP_RHOST_MAX);
    assert_int_equal(authp_encode_idle_req(&in, buf, (size_t)n - 1), -1);
    assert_int_equal(authp_encode_idle_req(&in, buf, (size_t)n), n);   /* (the failure wiped buf) */
    assert_int_equal(authp_decode_idle_req(buf, (size_t)n, &out), 0);
    buf[9] = AUTHP_RHOST_MAX + 1;                     /* over the limit */
    assert_int_equal(authp_decode_idle_req(buf, (size_t)n, &out), -1);
    assert_int_equal(authp_encode_idle_req(NULL, buf, sizeof buf), -1);
    assert_int_equal(authp_decode_idle_req(NULL, 0, &out), -1);
}

/* AUTHP_EVT_BAN: round trip; id must be 0, banned 0/1, a key; every cut
 * and every extra byte refused. */
static void test_ban_evt(void **state)
{
    (void)state;
    struct authp_ban_evt e = { .banned = true, .key = "2001:db8:1:2::/64",
                               .until_ms = 1765090000123ull }, d;
    uint8_t buf[256];
    int n = authp_encode_ban_evt(&e, buf, sizeof buf);
    assert_true(n > 0);
    assert_int_equal(authp_peek_type(buf, (size_t)n), AUTHP_EVT_BAN);
    assert_int_equal(authp_decode_ban_evt(buf, (size_t)n, &d), 0);
    assert_true(d.banned);
    assert_string_equal(d.key, e.key);
    assert_true(d.until_ms == e.until_ms);
    for (int k = 0; k < n; k++)
        assert_int_equal(authp_decode_ban_evt(buf, (size_t)k, &d), -1);
    buf[n] = 0;
    assert_int_equal(authp_decode_ban_evt(buf, (size_t)n + 1, &d), -1);
    uint8_t c[256];
    memcpy(c, buf, (size_t)n);
    c[8] = 2;                                   /* banned must be 0 or 1 */
    assert_int_equal(authp_decode_ban_evt(c, (size_t)n, &d), -1);
    memcpy(c, buf, (size_t)n);
    c[7] = 1;                                   /* an id: not an event */
    assert_int_equal(authp_decode_ban_evt(c, (size_t)n, &d), -1);
    struct authp_ban_evt empty = { .banned = false };
    assert_int_equal(authp_encode_ban_evt(&empty, buf, sizeof buf), -1);
    e.banned = false;
    e.until_ms = 0;
    n = authp_encode_ban_evt(&e, buf, sizeof buf);
    assert_int_equal(authp_decode_ban_evt(buf, (size_t)n, &d), 0);
    assert_false(d.banned);
}

/* AUTHP_REQ_SESSIONS and AUTHP_NOTE_IDLE (idle_pause): round trip, every
 * truncation refused, an empty VM name refused. */
static void test_idle_messages(void **state)
{
    (void)state;
    uint8_t buf[AUTHP_MAX_MSG];
    struct authp_sessions_req q = { .count = 3 }, q2;
    snprintf(q.vm, sizeof q.vm, "dev0");
    int n = authp_encode_sessions_req(&q, buf, sizeof buf);
    assert_true(n > 0);
    assert_int_equal(authp_peek_type(buf, (size_t)n), AUTHP_REQ_SESSIONS);
    assert_int_equal(authp_decode_sessions_req(buf, (size_t)n, &q2), 0);
    assert_int_equal(q2.count, 3);
    assert_string_equal(q2.vm, "dev0");
    for (int k = 0; k < n; k++)
        assert_int_equal(authp_decode_sessions_req(buf, (size_t)k, &q2), -1);
    q.vm[0] = '\0';
    n = authp_encode_sessions_req(&q, buf, sizeof buf);
    assert_int_equal(authp_decode_sessions_req(buf, (size_t)n, &q2), -1);

    struct authp_idle_note a = { .state = 3, .event = 1, .audit = 1,
                                 .since = UINT64_C(1796624400123) }, b;
    snprintf(a.vm, sizeof a.vm, "dev0");
    snprintf(a.status, sizeof a.status, "paused");
    snprintf(a.why, sizeof a.why, "no session for 2s");
    n = authp_encode_idle_note(&a, buf, sizeof buf);
    assert_true(n > 0);
    assert_int_equal(authp_peek_type(buf, (size_t)n), AUTHP_NOTE_IDLE);
    assert_int_equal(authp_decode_idle_note(buf, (size_t)n, &b), 0);
    assert_int_equal(b.state, 3);
    assert_int_equal(b.event, 1);
    assert_int_equal(b.audit, 1);
    assert_true(b.since == a.since);
    assert_string_equal(b.vm, "dev0");
    assert_string_equal(b.status, "paused");
    assert_string_equal(b.why, "no session for 2s");
    for (int k = 0; k < n; k++)
        assert_int_equal(authp_decode_idle_note(buf, (size_t)k, &b), -1);
    /* a login answer is not a note, nor the other way round */
    assert_int_equal(authp_decode_sessions_req(buf, (size_t)n, &q2), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idle_messages),
        cmocka_unit_test(test_req_roundtrip),
        cmocka_unit_test(test_req_roundtrip_limits),
        cmocka_unit_test(test_resp_roundtrip),
        cmocka_unit_test(test_encode_refuses),
        cmocka_unit_test(test_decode_short_header),
        cmocka_unit_test(test_decode_bad_header),
        cmocka_unit_test(test_peer_unix),
        cmocka_unit_test(test_peer_inet),
        cmocka_unit_test(test_peer_refused),
        cmocka_unit_test(test_decode_over_limit),
        cmocka_unit_test(test_decode_past_end),
        cmocka_unit_test(test_decode_nul),
        cmocka_unit_test(test_decode_trailing),
        cmocka_unit_test(test_decode_huge_len),
        cmocka_unit_test(test_decode_every_truncation),
        cmocka_unit_test(test_decode_bad_result),
        cmocka_unit_test(test_decode_mutations),
        cmocka_unit_test(test_peek_id),
        cmocka_unit_test(test_result_name),
        cmocka_unit_test(test_idle_req),
        cmocka_unit_test(test_cert_messages),
        cmocka_unit_test(test_ban_evt),
    };
    return cmocka_run_group_tests_name("authproto", tests, NULL, NULL);
}
