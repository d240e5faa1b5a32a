/* Unit tests for proxy/ws.c: client frames decoded in place, split at
 * every byte; masks; the length forms (0, 125, 126, 65535, 65536); control
 * frames between fragments; every refusal with its close code; server
 * headers; the accept key (RFC 6455's example).
 *
 * Pings (proxy/ws.c and proxy/tside.c): the decoder keeps one pong owed,
 * the latest ping's payload, and refuses a ping flood (1008) only while
 * that pong is blocked; through a real TLS tside on a socketpair, a burst
 * of 50 pings in one read gets exactly one pong (the last one's payload),
 * and a peer that sends pings but reads nothing ends with tside_read
 * failing "ping flood" and, once the output drains, a close frame 1008
 * as the last frame (before the fix: one pong per ping, and silence). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "common/buf.h"
#include "proxy/tside.h"
#include "proxy/ws.h"

#define MAXF (70 * 1024)

/* A client frame: fin, op, masked (with mask m) payload of len bytes. */
static size_t frame(uint8_t *out, bool fin, unsigned op, bool masked, const uint8_t m[4],
                    const uint8_t *pl, uint64_t len, int lenform)
{
    size_t i = 0;
    out[i++] = (uint8_t)((fin ? 0x80 : 0) | op);
    uint8_t mb = masked ? 0x80 : 0;
    if (lenform == 0 && len < 126) {
        out[i++] = mb | (uint8_t)len;
    } else if (lenform <= 1 && len <= 0xffff) {
        out[i++] = mb | 126;
        out[i++] = (uint8_t)(len >> 8);
        out[i++] = (uint8_t)len;
    } else {
        out[i++] = mb | 127;
        for (int k = 0; k < 8; k++)
            out[i++] = (uint8_t)(len >> (56 - 8 * k));
    }
    if (masked) {
        memcpy(out + i, m, 4);
        i += 4;
    }
    for (uint64_t k = 0; pl && k < len; k++)
        out[i + k] = pl[k] ^ (masked ? m[k & 3] : 0);
    return i + (pl ? (size_t)len : 0);
}

struct run {
    uint8_t data[2 * MAXF];
    size_t dlen;
    unsigned pings, closes;
    uint8_t last_ping[WS_CTL_MAX];
    size_t last_ping_len;
    uint16_t code;
    enum ws_result end;                  /* WS_DATA if all went through */
};

/* Feed stream s[0..n) in chunks cut at the given points (sorted, may be
 * empty), decoding each chunk in place in a scratch copy. */
static void feed(const uint8_t *s, size_t n, const size_t *cuts, size_t ncuts, struct run *r,
                 uint64_t max)
{
    static uint8_t work[2 * MAXF];
    struct ws_dec d;
    ws_dec_init(&d, max);
    memset(r, 0, sizeof *r);
    size_t from = 0;
    for (size_t c = 0; c <= ncuts; c++) {
        size_t to = c < ncuts ? cuts[c] : n;
        size_t len = to - from;
        memcpy(work, s + from, len);
        size_t used = 0, out = 0;
        for (;;) {
            enum ws_result res = ws_decode(&d, work, len, &used, &out);
            assert_true(out <= used);
            if (res == WS_PING) {
                r->pings++;
                memcpy(r->last_ping, d.ctl, d.ctl_len);
                r->last_ping_len = d.ctl_len;
                continue;
            }
            memcpy(r->data + r->dlen, work, out);
            r->dlen += out;
            if (res == WS_DATA)
                break;
            if (res == WS_CLOSE)
                r->closes++;
            r->code = d.close_code;
            r->end = res;
            return;
        }
        assert_int_equal(used, len);
        from = to;
    }
    r->end = WS_DATA;
}

/* Decode s in one piece, then split at every single byte, then byte by
 * byte: the same result each time. */
static void check_all_splits(const uint8_t *s, size_t n, const struct run *want, uint64_t max,
                             bool every_split)
{
    static struct run r;
    feed(s, n, NULL, 0, &r, max);
    assert_int_equal(r.end, want->end);
    assert_int_equal(r.dlen, want->dlen);
    assert_memory_equal(r.data, want->data, want->dlen);
    assert_int_equal(r.pings, want->pings);
    assert_int_equal(r.code, want->code);
    for (size_t k = 1; every_split && k < n; k++) {
        feed(s, n, &k, 1, &r, max);
        assert_int_equal(r.end, want->end);
        assert_int_equal(r.dlen, want->dlen);
        assert_memory_equal(r.data, want->data, want->dlen);
        assert_int_equal(r.pings, want->pings);
    }
    size_t *cuts = malloc(n * sizeof *cuts);
    assert_non_null(cuts);
    for (size_t k = 1; k < n; k++)
        cuts[k - 1] = k;
    feed(s, n, cuts, n ? n - 1 : 0, &r, max);
    free(cuts);
    assert_int_equal(r.end, want->end);
    assert_int_equal(r.dlen, want->dlen);
    assert_memory_equal(r.data, want->data, want->dlen);
    assert_int_equal(r.pings, want->pings);
}

static const uint8_t M1[4] = { 0x37, 0xfa, 0x21, 0x3d }, M0[4] = { 0, 0, 0, 0 },
                     MF[4] = { 0xff, 0xff, 0xff, 0xff };

static void test_lengths(void **state)
{
    (void)state;
    static uint8_t pl[MAXF], s[MAXF + 32];
    static struct run want;
    for (size_t i = 0; i < sizeof pl; i++)
        pl[i] = (uint8_t)(i * 7 + 3);
    static const uint64_t lens[] = { 0, 1, 125, 126, 127, 65535, 65536 };
    const uint8_t *masks[] = { M1, M0, MF };
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        for (size_t mi = 0; mi < 3; mi++) {
            size_t n = frame(s, true, WS_OP_BINARY, true, masks[mi], pl, lens[li], 0);
            memset(&want, 0, sizeof want);
            memcpy(want.data, pl, lens[li]);
            want.dlen = lens[li];
            want.end = WS_DATA;
            check_all_splits(s, n, &want, MAXF, lens[li] < 1000);
        }
        /* non-minimal length forms are accepted too */
        size_t n = frame(s, true, WS_OP_BINARY, true, M1, pl, lens[li], 2);
        check_all_splits(s, n, &want, MAXF, lens[li] < 1000);
    }
}

static void test_fragments_and_controls(void **state)
{
    (void)state;
    static uint8_t s[4096];
    static struct run want;
    const uint8_t a[] = "RFB 003.008\n", b[] = "\x00\x00\x00\x05user", ping[] = "hello";
    size_t n = 0;
    n += frame(s + n, false, WS_OP_BINARY, true, M1, a, 4, 0);
    n += frame(s + n, true, WS_OP_PING, true, MF, ping, 5, 0);      /* between fragments */
    n += frame(s + n, false, WS_OP_CONT, true, M0, a + 4, 0, 0);    /* empty fragment */
    n += frame(s + n, true, WS_OP_PONG, true, M1, ping, 2, 0);      /* ignored */
    n += frame(s + n, true, WS_OP_CONT, true, M1, a + 4, 8, 0);
    n += frame(s + n, true, WS_OP_BINARY, true, MF, b, 8, 0);
    n += frame(s + n, true, WS_OP_PING, true, M1, NULL, 0, 0);
    memset(&want, 0, sizeof want);
    memcpy(want.data, a, 12);
    memcpy(want.data + 12, b, 8);
    want.dlen = 20;
    want.pings = 2;
    want.end = WS_DATA;
    check_all_splits(s, n, &want, MAXF, true);
    struct run r;
    feed(s, n, NULL, 0, &r, MAXF);
    assert_int_equal(r.last_ping_len, 0);

    /* a close after data: the data, then WS_CLOSE with the code */
    n = frame(s, true, WS_OP_BINARY, true, M1, a, 12, 0);
    const uint8_t cl[] = { 0x03, 0xe8, 'b', 'y', 'e' };
    n += frame(s + n, true, WS_OP_CLOSE, true, M1, cl, sizeof cl, 0);
    memset(&want, 0, sizeof want);
    memcpy(want.data, a, 12);
    want.dlen = 12;
    want.end = WS_CLOSE;
    want.code = 1000;
    check_all_splits(s, n, &want, MAXF, true);
    n = frame(s, true, WS_OP_CLOSE, true, M1, NULL, 0, 0);
    memset(&want, 0, sizeof want);
    want.end = WS_CLOSE;
    want.code = 1005;
    check_all_splits(s, n, &want, MAXF, true);
}

/* A stream whose last frame is refused with code. */
static void refused_after(const uint8_t *s, size_t n, uint16_t code, uint64_t max,
                          const uint8_t *data, size_t dlen)
{
    static struct run want;
    memset(&want, 0, sizeof want);
    if (dlen)
        memcpy(want.data, data, dlen);
    want.dlen = dlen;
    want.end = WS_ERROR;
    want.code = code;
    check_all_splits(s, n, &want, max, true);
}

static void refused(const uint8_t *s, size_t n, uint16_t code, uint64_t max)
{
    refused_after(s, n, code, max, NULL, 0);
}

static void test_refusals(void **state)
{
    (void)state;
    uint8_t s[256];
    const uint8_t x[200] = { 1, 2, 3 };
    size_t n;
    n = frame(s, true, WS_OP_BINARY, false, M0, x, 3, 0);
    refused(s, n, 1002, MAXF);                                   /* unmasked */
    n = frame(s, true, WS_OP_TEXT, true, M1, x, 3, 0);
    refused(s, n, 1003, MAXF);                                   /* text */
    n = frame(s, true, WS_OP_BINARY, true, M1, x, 100, 0);
    refused(s, n, 1009, 99);                                     /* over the limit */
    n = frame(s, true, WS_OP_BINARY, true, M1, x, 99, 0);
    struct run r;
    feed(s, n, NULL, 0, &r, 99);
    assert_int_equal(r.end, WS_DATA);                            /* at the limit */
    n = frame(s, true, WS_OP_PING, true, M1, x, 126, 0);
    refused(s, n, 1002, MAXF);                                   /* long control */
    n = frame(s, false, WS_OP_PING, true, M1, x, 1, 0);
    refused(s, n, 1002, MAXF);                                   /* fragmented control */
    n = frame(s, true, WS_OP_CONT, true, M1, x, 1, 0);
    refused(s, n, 1002, MAXF);                                   /* continuation first */
    n = frame(s, false, WS_OP_BINARY, true, M1, x, 1, 0);
    n += frame(s + n, true, WS_OP_BINARY, true, M1, x, 1, 0);
    refused_after(s, n, 1002, MAXF, x, 1);                       /* new message inside one */
    n = frame(s, true, 3, true, M1, x, 1, 0);
    refused(s, n, 1002, MAXF);                                   /* reserved opcode */
    n = frame(s, true, 0xb, true, M1, x, 1, 0);
    refused(s, n, 1002, MAXF);
    n = frame(s, true, WS_OP_BINARY, true, M1, x, 1, 0);
    s[0] |= 0x40;
    refused(s, n, 1002, MAXF);                                   /* RSV1 without extension */
    n = frame(s, true, WS_OP_CLOSE, true, M1, x, 1, 0);
    refused(s, n, 1002, MAXF);                                   /* 1-byte close */
    /* 64-bit lengths: 2^63 and above refused after the third byte; 2^63-1
     * is over any limit */
    uint8_t big[14] = { 0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4 };
    refused(big, 3, 1002, MAXF);
    big[2] = 0xff;
    refused(big, 3, 1002, MAXF);
    big[2] = 0x7f;
    memset(big + 3, 0xff, 7);
    refused(big, 14, 1009, MAXF);
}

static void test_server_header(void **state)
{
    (void)state;
    uint8_t h[WS_HDR_MAX];
    assert_int_equal(ws_put_header(h, WS_OP_BINARY, 0), 2);
    assert_memory_equal(h, "\x82\x00", 2);
    assert_int_equal(ws_put_header(h, WS_OP_BINARY, 125), 2);
    assert_memory_equal(h, "\x82\x7d", 2);
    assert_int_equal(ws_put_header(h, WS_OP_BINARY, 126), 4);
    assert_memory_equal(h, "\x82\x7e\x00\x7e", 4);
    assert_int_equal(ws_put_header(h, WS_OP_PONG, 65535), 4);
    assert_memory_equal(h, "\x8a\x7e\xff\xff", 4);
    assert_int_equal(ws_put_header(h, WS_OP_BINARY, 65536), 10);
    assert_memory_equal(h, "\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 10);
}

static void test_accept_key(void **state)
{
    (void)state;
    char out[WS_ACCEPT_LEN + 1];
    ws_accept("dGhlIHNhbXBsZSBub25jZQ==", out);           /* RFC 6455 section 1.3 */
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    assert_true(ws_key_ok("dGhlIHNhbXBsZSBub25jZQ=="));
    assert_false(ws_key_ok("dGhlIHNhbXBsZSBub25jZQ="));
    assert_false(ws_key_ok("dGhlIHNhbXBsZSBub25jZQ==="));
    assert_false(ws_key_ok("dGhlIHNhbXBsZSBub25j*Q=="));
    assert_false(ws_key_ok("dGhlIHNhbXBsZSBub25jZQQ="));   /* 17 bytes */
    assert_false(ws_key_ok(""));
}

/* ---- pings: the decoder's owed pong ---- */

static enum ws_result decode_all(struct ws_dec *d, uint8_t *s, size_t n, unsigned *pings)
{
    size_t used = 0, out = 0;
    for (;;) {
        enum ws_result r = ws_decode(d, s, n, &used, &out);
        if (r != WS_PING)
            return r;
        ++*pings;
    }
}

static void test_pong_owed(void **state)
{
    (void)state;
    static uint8_t s[(WS_PING_FLOOD + 2) * 16];
    struct ws_dec d;
    ws_dec_init(&d, MAXF);
    size_t n = 0;
    n += frame(s + n, true, WS_OP_PING, true, M1, (const uint8_t *)"a", 1, 0);
    n += frame(s + n, true, WS_OP_PING, true, MF, (const uint8_t *)"bb", 2, 0);
    n += frame(s + n, true, WS_OP_PING, true, M1, (const uint8_t *)"ccc", 3, 0);
    unsigned pings = 0;
    assert_int_equal(decode_all(&d, s, n, &pings), WS_DATA);
    assert_int_equal(pings, 3);
    assert_true(d.pong_due);                    /* one pong owed: the latest ping's */
    assert_int_equal(d.pong_len, 3);
    assert_memory_equal(d.pong, "ccc", 3);
    ws_pong_sent(&d);
    assert_false(d.pong_due);

    /* not blocked: any number of pings is fine (each read answers once) */
    n = 0;
    for (int i = 0; i < WS_PING_FLOOD + 1; i++)
        n += frame(s + n, true, WS_OP_PING, true, M1, (const uint8_t *)"p", 1, 0);
    pings = 0;
    assert_int_equal(decode_all(&d, s, n, &pings), WS_DATA);
    assert_int_equal(pings, WS_PING_FLOOD + 1);

    /* blocked: WS_PING_FLOOD pings are tolerated, one more is a flood */
    ws_pong_blocked(&d);
    n = 0;
    for (int i = 0; i < WS_PING_FLOOD; i++)
        n += frame(s + n, true, WS_OP_PING, true, M1, (const uint8_t *)"p", 1, 0);
    pings = 0;
    assert_int_equal(decode_all(&d, s, n, &pings), WS_DATA);
    n = frame(s, true, WS_OP_PONG, true, M1, (const uint8_t *)"x", 1, 0);  /* pongs do not count */
    assert_int_equal(decode_all(&d, s, n, &pings), WS_DATA);
    n = frame(s, true, WS_OP_PING, true, M1, (const uint8_t *)"q", 1, 0);
    assert_int_equal(decode_all(&d, s, n, &pings), WS_ERROR);
    assert_int_equal(d.close_code, 1008);
    assert_non_null(strstr(d.why, "ping flood"));

    /* the pong going out resets the count */
    ws_dec_init(&d, MAXF);
    ws_pong_blocked(&d);
    n = 0;
    for (int i = 0; i < WS_PING_FLOOD; i++)
        n += frame(s + n, true, WS_OP_PING, true, M1, (const uint8_t *)"p", 1, 0);
    assert_int_equal(decode_all(&d, s, n, &pings), WS_DATA);
    ws_pong_sent(&d);
    ws_pong_blocked(&d);
    assert_int_equal(decode_all(&d, s, n, &pings), WS_DATA);
}

/* ---- pings through a TLS tside on a socketpair ---- */

static SSL_CTX *server_ctx(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    assert_non_null(k);
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, k);
    X509_NAME *nm = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)"test", -1, -1, 0);
    X509_set_issuer_name(x, nm);
    assert_true(X509_sign(x, k, EVP_sha256()) > 0);
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    assert_non_null(ctx);
    assert_int_equal(SSL_CTX_use_certificate(ctx, x), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(ctx, k), 1);
    X509_free(x);
    EVP_PKEY_free(k);
    return ctx;
}

struct pair {
    SSL_CTX *sctx, *cctx;
    struct tside t;             /* vmgate's side */
    SSL *c;                     /* the peer */
    int cfd;
    uint8_t in[1 << 20];        /* what the peer read, not yet parsed */
    size_t inlen;
};

static void pair_open(struct pair *p)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(fcntl(sv[i], F_SETFL, O_NONBLOCK), 0);
    int small = 8192;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    p->sctx = server_ctx();
    p->cctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(p->cctx);
    tside_init(&p->t, sv[0]);
    assert_int_equal(tside_start_tls(&p->t, p->sctx), 0);
    p->cfd = sv[1];
    p->c = SSL_new(p->cctx);
    SSL_set_fd(p->c, sv[1]);
    SSL_set_connect_state(p->c);
    p->inlen = 0;
    char why[160];
    int sdone = 0, cdone = 0;
    for (int i = 0; i < 1000 && !(sdone && cdone); i++) {
        if (!cdone) {
            int r = SSL_do_handshake(p->c);
            cdone = r == 1;
            if (r <= 0)
                assert_int_equal(SSL_get_error(p->c, r), SSL_ERROR_WANT_READ);
        }
        if (!sdone) {
            p->t.rd_ready = true;
            int r = tside_handshake(&p->t, why, sizeof why);
            assert_true(r >= 0);
            sdone = r == 1;
        }
    }
    assert_true(sdone && cdone);
    assert_int_equal(tside_ws_start(&p->t, MAXF), 0);
}

static void pair_close(struct pair *p)
{
    SSL_free(p->c);
    close(p->cfd);
    tside_close(&p->t);
    SSL_CTX_free(p->sctx);
    SSL_CTX_free(p->cctx);
}

/* The peer sends n pings, in one TLS record; payload of ping i: "ping<i>". */
static void peer_pings(struct pair *p, int n)
{
    static uint8_t s[64 * 1024];
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        char pl[16];
        int k = snprintf(pl, sizeof pl, "ping%d", i);
        len += frame(s + len, true, WS_OP_PING, true, M1, (const uint8_t *)pl, (uint64_t)k, 0);
    }
    assert_int_equal(SSL_write(p->c, s, (int)len), (int)len);
}

/* The peer reads what is there. */
static void peer_read(struct pair *p)
{
    for (;;) {
        int n = SSL_read(p->c, p->in + p->inlen, (int)(sizeof p->in - p->inlen));
        if (n <= 0) {
            ERR_clear_error();
            return;
        }
        p->inlen += (size_t)n;
        if (p->inlen == sizeof p->in)
            return;
    }
}

/* The server frame at p->in[i]: whether it is all there, its header
 * length *h and payload length *len. */
static bool whole_frame(const struct pair *p, size_t i, size_t *h, uint64_t *len)
{
    const uint8_t *f = p->in + i;
    size_t have = p->inlen - i;
    *len = f[1] & 0x7f;
    *h = 2;
    if (*len == 126) {
        if (have < 4)
            return false;
        *len = (uint64_t)f[2] << 8 | f[3];
        *h = 4;
    } else if (*len == 127) {
        if (have < 10)
            return false;
        *len = 0;
        for (int k = 0; k < 8; k++)
            *len = *len << 8 | f[2 + k];
        *h = 10;
    }
    return have >= *h + *len;
}

/* Parse the server frames the peer read: counts of pongs, the last pong's
 * payload, the last frame's opcode and (a close) its code.  Consumes them. */
struct seen {
    unsigned pongs, closes, frames;
    char last_pong[WS_CTL_MAX + 1];
    unsigned last_op;
    uint16_t close_code;
};

static void parse(struct pair *p, struct seen *sn)
{
    size_t i = 0;
    while (p->inlen - i >= 2) {
        uint8_t op = p->in[i] & 0x0f;
        uint64_t len;
        size_t h;
        if (!whole_frame(p, i, &h, &len))
            break;
        const uint8_t *pl = p->in + i + h;
        sn->frames++;
        sn->last_op = op;
        if (op == WS_OP_PONG) {
            sn->pongs++;
            memcpy(sn->last_pong, pl, len);
            sn->last_pong[len] = '\0';
        } else if (op == WS_OP_CLOSE) {
            sn->closes++;
            sn->close_code = len >= 2 ? (uint16_t)(pl[0] << 8 | pl[1]) : 0;
        }
        i += h + (size_t)len;
    }
    memmove(p->in, p->in + i, p->inlen - i);
    p->inlen -= i;
}

static ssize_t server_read(struct pair *p, char *why, size_t whylen)
{
    static struct buf dst;
    if (!dst.cap)
        buf_init(&dst, 64 * 1024);
    p->t.rd_ready = true;
    ssize_t n = tside_read(&p->t, &dst, 64 * 1024, why, whylen);
    buf_consume(&dst, buf_len(&dst));
    return n;
}

static void test_tside_ping_burst(void **state)
{
    (void)state;
    static struct pair p;
    char why[160];
    pair_open(&p);
    peer_pings(&p, 50);
    assert_int_equal(server_read(&p, why, sizeof why), 0);
    assert_int_equal(tside_flush(&p.t, why, sizeof why), 0);
    struct seen sn = { 0 };
    peer_read(&p);
    parse(&p, &sn);
    assert_int_equal(sn.pongs, 1);              /* one pong for the burst ... */
    assert_string_equal(sn.last_pong, "ping49"); /* ... answering the latest ping */
    /* the next ping gets its own pong */
    peer_pings(&p, 1);
    assert_int_equal(server_read(&p, why, sizeof why), 0);
    assert_int_equal(tside_flush(&p.t, why, sizeof why), 0);
    peer_read(&p);
    parse(&p, &sn);
    assert_int_equal(sn.pongs, 2);
    assert_string_equal(sn.last_pong, "ping0");
    pair_close(&p);
}

static void test_tside_ping_flood(void **state)
{
    (void)state;
    static struct pair p;
    static uint8_t data[64 * 1024];
    char why[160];
    pair_open(&p);
    /* the console's output fills the socket and the TLS queue: the peer
     * does not read */
    ssize_t w;
    int rounds = 0;
    while ((w = tside_write(&p.t, data, sizeof data, why, sizeof why)) > 0)
        assert_true(++rounds < 100);
    assert_int_equal(w, 0);
    /* pings, one per read, and the peer reads nothing */
    ssize_t r = 0;
    int sent = 0;
    for (; sent < 2000 && r == 0; sent++) {
        peer_pings(&p, 1);
        r = server_read(&p, why, sizeof why);
    }
    assert_int_equal(r, -1);                    /* before the fix: never (pongs dropped) */
    assert_non_null(strstr(why, "ping flood"));
    assert_true(sent > WS_PING_FLOOD);
    assert_true(p.t.ws_closed);
    /* the peer reads at last: the close frame 1008 ends the stream, after
     * at most a pong or two per ping, nowhere near one per ping */
    struct seen sn = { 0 };
    for (int i = 0; i < 10000 && (tside_pending(&p.t) || p.inlen); i++) {
        assert_int_equal(tside_flush(&p.t, why, sizeof why), 0);
        peer_read(&p);
        parse(&p, &sn);
    }
    assert_int_equal(tside_pending(&p.t), 0);
    assert_int_equal(sn.closes, 1);
    assert_int_equal(sn.last_op, WS_OP_CLOSE);
    assert_int_equal(sn.close_code, 1008);
    assert_true(sn.pongs < (unsigned)sent);
    pair_close(&p);
}

/* Parse the binary frames the peer read into out (at *outlen); each must
 * be a whole unmasked binary message.  The frame count goes to *frames. */
static void parse_data(struct pair *p, uint8_t *out, size_t *outlen, size_t cap,
                       unsigned *frames)
{
    size_t i = 0;
    while (p->inlen - i >= 2) {
        uint64_t len;
        size_t h;
        if (!whole_frame(p, i, &h, &len))
            break;
        assert_int_equal(p->in[i], 0x80 | WS_OP_BINARY);  /* FIN, binary */
        assert_int_equal(p->in[i + 1] & 0x80, 0);         /* no mask */
        assert_true(*outlen + len <= cap);
        memcpy(out + *outlen, p->in + i + h, (size_t)len);
        *outlen += (size_t)len;
        (*frames)++;
        i += h + (size_t)len;
    }
    memmove(p->in, p->in + i, p->inlen - i);
    p->inlen -= i;
}

/* The server header of a binary frame of n bytes, 126 <= n < 65536. */
static void hdr16(uint8_t h[4], size_t n)
{
    h[0] = 0x80 | WS_OP_BINARY;
    h[1] = 126;
    h[2] = (uint8_t)(n >> 8);
    h[3] = (uint8_t)n;
}

#define REL_N (600 * 1000 + 7)          /* more than tlsout holds, a short last frame */
#define FRAME_MAX_PL (TSIDE_RECORD - 4) /* write_ws's payload per frame */

/* Issue 13: the relay buffer (with TSIDE_HEADROOM) goes out as frames
 * whose headers were written in front of the payload, in the buffer
 * itself, not copied to the side; the peer gets exactly the bytes. */
static void test_tside_write_in_place(void **state)
{
    (void)state;
    static struct pair p;
    static uint8_t want[REL_N], got[REL_N];
    char why[160];
    pair_open(&p);
    for (size_t i = 0; i < REL_N; i++)
        want[i] = (uint8_t)(i * 131 + (i >> 9));
    struct buf b;
    buf_init_headroom(&b, 1024 * 1024, TSIDE_HEADROOM);
    assert_int_equal(buf_put(&b, want, REL_N), 0);
    size_t sent = 0, gotlen = 0;
    unsigned frames = 0, writes = 0, checked = 0;
    for (int round = 0; round < 10000 && gotlen < REL_N; round++) {
        if (!buf_empty(&b)) {
            assert_true(buf_headroom(&b) >= TSIDE_HEADROOM);
            uint8_t *head = buf_head_mut(&b);
            size_t len = buf_len(&b);
            ssize_t n = tside_write_room(&p.t, head, len, buf_headroom(&b), why, sizeof why);
            assert_true(n >= 0);
            if (n > 0) {
                writes++;
                /* no copy: each frame's header sits just before its payload,
                 * in the buffer (the headroom, then the payload taken) */
                for (size_t off = 0; off < (size_t)n; off += FRAME_MAX_PL) {
                    size_t pl = len - off < FRAME_MAX_PL ? len - off : FRAME_MAX_PL;
                    uint8_t h[4];
                    hdr16(h, pl);
                    assert_memory_equal(head + off - 4, h, 4);
                    checked++;
                }
                /* what was not taken is untouched */
                assert_memory_equal(head + n, want + sent + (size_t)n, len - (size_t)n);
                sent += (size_t)n;
                buf_consume(&b, (size_t)n);
            }
        }
        assert_int_equal(tside_flush(&p.t, why, sizeof why), 0);
        peer_read(&p);
        parse_data(&p, got, &gotlen, sizeof got, &frames);
    }
    assert_int_equal(sent, REL_N);
    assert_int_equal(gotlen, REL_N);
    assert_memory_equal(got, want, REL_N);
    assert_true(writes > 1);                    /* the socket filled: it took several calls */
    assert_int_equal(frames, checked);
    assert_true(frames >= REL_N / FRAME_MAX_PL + 1);
    buf_free(&b);
    pair_close(&p);
}

/* Too little headroom for a header: the first frame is copied (the bytes
 * before p are left alone), the next ones go in place over the payload
 * already taken; tside_write never writes into its (const) input. */
static void test_tside_write_fallback(void **state)
{
    (void)state;
    static struct pair p;
    static uint8_t want[2 * FRAME_MAX_PL + 100], got[sizeof want];
    static uint8_t area[3 + sizeof want];
    char why[160];
    pair_open(&p);
    for (size_t i = 0; i < sizeof want; i++)
        want[i] = (uint8_t)(i * 7 + 1);
    memcpy(area, "GGG", 3);
    memcpy(area + 3, want, sizeof want);
    size_t gotlen = 0, done = 0;
    unsigned frames = 0;
    /* 3 bytes of headroom, a 4-byte header: copied */
    for (int round = 0; round < 10000 && gotlen < sizeof want; round++) {
        if (done < sizeof want) {
            uint8_t *q = area + 3 + done;
            ssize_t n = tside_write_room(&p.t, q, sizeof want - done, done ? 0 : 3, why,
                                         sizeof why);
            assert_true(n >= 0);
            if (done == 0 && n > 0) {
                assert_memory_equal(area, "GGG", 3);            /* not written */
                assert_memory_equal(area + 3, want, FRAME_MAX_PL - 4);
                if ((size_t)n > FRAME_MAX_PL) {
                    uint8_t h[4];
                    hdr16(h, FRAME_MAX_PL);
                    assert_memory_equal(area + 3 + FRAME_MAX_PL - 4, h, 4); /* in place */
                }
            }
            done += (size_t)n;
        }
        assert_int_equal(tside_flush(&p.t, why, sizeof why), 0);
        peer_read(&p);
        parse_data(&p, got, &gotlen, sizeof got, &frames);
    }
    assert_int_equal(gotlen, sizeof want);
    assert_memory_equal(got, want, sizeof want);
    /* tside_write: the input stays as it was */
    memcpy(area + 3, want, sizeof want);
    gotlen = done = 0;
    for (int round = 0; round < 10000 && gotlen < sizeof want; round++) {
        if (done < sizeof want) {
            ssize_t n = tside_write(&p.t, area + 3 + done, sizeof want - done, why, sizeof why);
            assert_true(n >= 0);
            done += (size_t)n;
        }
        assert_int_equal(tside_flush(&p.t, why, sizeof why), 0);
        peer_read(&p);
        parse_data(&p, got, &gotlen, sizeof got, &frames);
    }
    assert_int_equal(gotlen, sizeof want);
    assert_memory_equal(got, want, sizeof want);
    assert_memory_equal(area, "GGG", 3);
    assert_memory_equal(area + 3, want, sizeof want);
    pair_close(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lengths),
        cmocka_unit_test(test_fragments_and_controls),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_server_header),
        cmocka_unit_test(test_accept_key),
        cmocka_unit_test(test_pong_owed),
        cmocka_unit_test(test_tside_ping_burst),
        cmocka_unit_test(test_tside_ping_flood),
        cmocka_unit_test(test_tside_write_in_place),
        cmocka_unit_test(test_tside_write_fallback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
