/* Unit tests for proxy/spice_link.c, proxy/spice_main.c and proxy/vdagent.c:
 * the link and SASL parsers byte by byte and malformed, the builders, the
 * ticket encryption, and the main-channel / agent-stream clipboard filter
 * (split at every byte boundary, each policy, token bookkeeping). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "common/buf.h"
#include "common/config.h"
#include "proxy/spice_link.h"
#include "proxy/spice_main.h"
#include "proxy/vdagent.h"

/* ------------------------------------------------------------------ link */

/* spice-gtk's main link: size 26, id 0, type 1, common 0x0d, channel 0x0f */
static size_t make_link(uint8_t *out, uint32_t conn_id, uint8_t type, uint32_t common,
                        uint32_t chan)
{
    memcpy(out, "REDQ", 4);
    spice_put_u32(out + 4, 2);
    spice_put_u32(out + 8, 2);
    spice_put_u32(out + 12, 26);
    uint8_t *b = out + 16;
    spice_put_u32(b, conn_id);
    b[4] = type;
    b[5] = 0;
    spice_put_u32(b + 6, 1);
    spice_put_u32(b + 10, 1);
    spice_put_u32(b + 14, 18);
    spice_put_u32(b + 18, common);
    spice_put_u32(b + 22, chan);
    return 42;
}

static void test_link_bytewise(void **state)
{
    (void)state;
    uint8_t msg[64];
    size_t len = make_link(msg, 0, 1, 0x0d, 0x0f);
    struct spice_link_mess m;
    uint32_t err = 99;
    char why[200];
    for (size_t n = 0; n < len; n++)
        assert_int_equal(spice_parse_link(msg, n, &m, &err, why, sizeof why), SPL_NEED);
    assert_int_equal(spice_parse_link(msg, len, &m, &err, why, sizeof why), (int)len);
    assert_int_equal(m.connection_id, 0);
    assert_int_equal(m.channel_type, 1);
    assert_int_equal(m.n_common, 1);
    assert_int_equal(m.n_channel, 1);
    assert_int_equal(m.common0, 0x0d);
    assert_int_equal(spice_get_u32(m.chan_caps), 0x0f);
    /* trailing bytes are left alone */
    assert_int_equal(spice_parse_link(msg, len + 5, &m, &err, why, sizeof why), (int)len);
}

static void test_link_malformed(void **state)
{
    (void)state;
    uint8_t msg[64];
    struct spice_link_mess m;
    uint32_t err;
    char why[200];
    /* garbage magic: refused at the first byte */
    assert_int_equal(spice_parse_link((const uint8_t *)"G", 1, &m, &err, why, sizeof why), SPL_BAD);
    assert_int_equal(err, SPICE_LINK_ERR_INVALID_MAGIC);
    assert_int_equal(spice_parse_link((const uint8_t *)"REDX", 4, &m, &err, why, sizeof why),
                     SPL_BAD);
    /* wrong major */
    size_t len = make_link(msg, 0, 1, 0x0d, 0x0f);
    spice_put_u32(msg + 4, 1);
    assert_int_equal(spice_parse_link(msg, len, &m, &err, why, sizeof why), SPL_BAD);
    assert_int_equal(err, SPICE_LINK_ERR_VERSION_MISMATCH);
    /* size too small, too big: refused on the header alone */
    make_link(msg, 0, 1, 0x0d, 0x0f);
    spice_put_u32(msg + 12, 17);
    assert_int_equal(spice_parse_link(msg, 16, &m, &err, why, sizeof why), SPL_BAD);
    assert_int_equal(err, SPICE_LINK_ERR_INVALID_DATA);
    spice_put_u32(msg + 12, 4097);
    assert_int_equal(spice_parse_link(msg, 16, &m, &err, why, sizeof why), SPL_BAD);
    assert_int_equal(err, SPICE_LINK_ERR_INVALID_DATA);
    spice_put_u32(msg + 12, 4096);
    assert_int_equal(spice_parse_link(msg, 16, &m, &err, why, sizeof why), SPL_NEED);
    /* cap counts that overflow 32 bits when multiplied */
    len = make_link(msg, 0, 1, 0x0d, 0x0f);
    spice_put_u32(msg + 16 + 6, 0x40000000);
    spice_put_u32(msg + 16 + 10, 0x40000001);
    assert_int_equal(spice_parse_link(msg, len, &m, &err, why, sizeof why), SPL_BAD);
    assert_int_equal(err, SPICE_LINK_ERR_INVALID_DATA);
    /* within the per-list limit but not inside the message */
    len = make_link(msg, 0, 1, 0x0d, 0x0f);
    spice_put_u32(msg + 16 + 10, 2);
    assert_int_equal(spice_parse_link(msg, len, &m, &err, why, sizeof why), SPL_BAD);
    /* 1025 words */
    len = make_link(msg, 0, 1, 0x0d, 0x0f);
    spice_put_u32(msg + 16 + 10, 1025);
    assert_int_equal(spice_parse_link(msg, len, &m, &err, why, sizeof why), SPL_BAD);
    /* caps offset inside the fixed part, or past the end */
    len = make_link(msg, 0, 1, 0x0d, 0x0f);
    spice_put_u32(msg + 16 + 14, 17);
    assert_int_equal(spice_parse_link(msg, len, &m, &err, why, sizeof why), SPL_BAD);
    spice_put_u32(msg + 16 + 14, 0xfffffff0);
    assert_int_equal(spice_parse_link(msg, len, &m, &err, why, sizeof why), SPL_BAD);
    /* no caps at all is fine */
    len = make_link(msg, 7, 2, 0, 0);
    spice_put_u32(msg + 16 + 6, 0);
    spice_put_u32(msg + 16 + 10, 0);
    assert_int_equal(spice_parse_link(msg, len, &m, &err, why, sizeof why), (int)len);
    assert_int_equal(m.common0, 0);
    assert_int_equal(m.connection_id, 7);
}

static void test_build_link_and_reply(void **state)
{
    (void)state;
    uint8_t msg[64], out[256];
    size_t len = make_link(msg, 0x1234, 2, 0x0d, 0x3bf);
    struct spice_link_mess m, m2;
    uint32_t err;
    char why[200];
    assert_int_equal(spice_parse_link(msg, len, &m, &err, why, sizeof why), (int)len);
    size_t l = spice_build_link(out, sizeof out, &m, SPICE_CAP_AUTH_SELECTION | SPICE_CAP_MINI_HEADER);
    assert_int_equal(l, 42);
    assert_int_equal(spice_parse_link(out, l, &m2, &err, why, sizeof why), (int)l);
    assert_int_equal(m2.connection_id, 0x1234);
    assert_int_equal(m2.channel_type, 2);
    assert_int_equal(m2.common0, 0x09);
    assert_int_equal(spice_get_u32(m2.chan_caps), 0x3bf);
    assert_int_equal(spice_build_link(out, 41, &m, 0), 0);

    uint8_t caps[8];
    spice_put_u32(caps, 0x11);
    spice_put_u32(caps + 4, 0x22);
    l = spice_build_reply(out, sizeof out, 0x0d, caps, 2);
    assert_int_equal(l, 16 + 178 + 12);
    assert_int_equal(spice_get_u32(out + 12), 190);
    struct spice_link_reply r;
    assert_int_equal(spice_parse_reply(out, l, &r, why, sizeof why), (int)l);
    assert_int_equal(r.error, 0);
    assert_int_equal(r.common0, 0x0d);
    assert_int_equal(r.n_channel, 2);
    assert_int_equal(spice_get_u32(r.chan_caps + 4), 0x22);
    for (int i = 0; i < SPICE_PUBKEY_LEN; i++)
        assert_int_equal(r.pub_key[i], 0);
    for (size_t n = 0; n < l; n++)
        assert_int_equal(spice_parse_reply(out, n, &r, why, sizeof why), SPL_NEED);

    l = spice_build_error(out, sizeof out, SPICE_LINK_ERR_PERMISSION_DENIED);
    assert_int_equal(l, 194);
    assert_int_equal(spice_get_u32(out + 12), 178);
    assert_int_equal(spice_parse_reply(out, l, &r, why, sizeof why), 194);
    assert_int_equal(r.error, 7);
    assert_int_equal(spice_build_error(out, 193, 1), 0);
    /* a reply whose size is under 178 is malformed */
    spice_put_u32(out + 12, 177);
    assert_int_equal(spice_parse_reply(out, l, &r, why, sizeof why), SPL_BAD);
}

/* The channel caps vmgate promises before it has talked to the VM. */
static void test_chan_caps(void **state)
{
    (void)state;
    struct spice_chan_caps d, have;
    /* what QEMU 7.2 (spice-server 0.15.1) answered, per channel type */
    static const uint32_t qemu72[] = { 0, 0x0f, 0x1052, 0x01, 0, 0x0a, 0x06, 0, 0, 0x01,
                                       0x01, 0x01 };
    for (unsigned t = 0; t < 14; t++) {
        spice_default_chan_caps(t, &d);
        uint32_t want = t < 12 ? qemu72[t] : 0;
        assert_int_equal(d.n, want ? 1 : 0);
        if (want)
            assert_int_equal(d.w[0], want);
    }
    /* the config's channel names are spice_channel_name()'s */
    for (unsigned t = 1; t < 12; t++)
        assert_string_equal(cfg_spice_channel_name(t), spice_channel_name(t));
    /* subset: every promised bit must be in have; a missing word is 0 */
    spice_default_chan_caps(SPICE_CH_DISPLAY, &d);
    have = d;
    assert_true(spice_chan_caps_subset(&d, &have));
    have.w[0] = 0x1052 | 0x300;                  /* a newer server: more is fine */
    assert_true(spice_chan_caps_subset(&d, &have));
    have.w[0] = 0x1050;                          /* one promised bit missing */
    assert_false(spice_chan_caps_subset(&d, &have));
    have.n = 0;
    assert_false(spice_chan_caps_subset(&d, &have));
    struct spice_chan_caps none = { 0 };
    assert_true(spice_chan_caps_subset(&none, &have));
    struct spice_chan_caps two = { .n = 2, .w = { 0, 4 } }, one = { .n = 1, .w = { 0xff } };
    assert_false(spice_chan_caps_subset(&two, &one));

    /* from a reply: at most SPICE_CHAN_CAPS_WORDS words; into a reply as LE */
    uint8_t caps[4 * 6], out[512], le[4 * SPICE_CHAN_CAPS_WORDS];
    for (uint32_t i = 0; i < 6; i++)
        spice_put_u32(caps + 4 * i, 0x100 + i);
    size_t l = spice_build_reply(out, sizeof out, 0x0b, caps, 6);
    struct spice_link_reply r;
    char why[200];
    assert_int_equal(spice_parse_reply(out, l, &r, why, sizeof why), (int)l);
    spice_chan_caps_from_reply(&r, &have);
    assert_int_equal(have.n, SPICE_CHAN_CAPS_WORDS);
    assert_int_equal(have.w[3], 0x103);
    spice_chan_caps_le(&have, le);
    assert_memory_equal(le, caps, sizeof le);
    l = spice_build_reply(out, sizeof out, 0x0b, NULL, 0);
    assert_int_equal(spice_parse_reply(out, l, &r, why, sizeof why), (int)l);
    spice_chan_caps_from_reply(&r, &have);
    assert_int_equal(have.n, 0);
}

static void test_sasl_parsers(void **state)
{
    (void)state;
    char mech[SPICE_SASL_MECH_MAX + 1], why[200];
    uint8_t msg[4200];
    spice_put_u32(msg, 5);
    memcpy(msg + 4, "PLAIN", 5);
    for (size_t n = 0; n < 9; n++)
        assert_int_equal(spice_parse_sasl_mech(msg, n, mech, why, sizeof why), SPL_NEED);
    assert_int_equal(spice_parse_sasl_mech(msg, 9, mech, why, sizeof why), 9);
    assert_string_equal(mech, "PLAIN");
    spice_put_u32(msg, 0);
    assert_int_equal(spice_parse_sasl_mech(msg, 4, mech, why, sizeof why), SPL_BAD);
    spice_put_u32(msg, 101);
    assert_int_equal(spice_parse_sasl_mech(msg, 4, mech, why, sizeof why), SPL_BAD);
    spice_put_u32(msg, 3);
    memcpy(msg + 4, "A,B", 3);
    assert_int_equal(spice_parse_sasl_mech(msg, 7, mech, why, sizeof why), SPL_BAD);

    const uint8_t *data;
    uint32_t dl;
    spice_put_u32(msg, 19);
    memcpy(msg + 4, "alice\0alice\0alicepw", 19);
    for (size_t n = 0; n < 23; n++)
        assert_int_equal(spice_parse_sasl_data(msg, n, 2048, &data, &dl, why, sizeof why),
                         SPL_NEED);
    assert_int_equal(spice_parse_sasl_data(msg, 23, 2048, &data, &dl, why, sizeof why), 23);
    assert_int_equal(dl, 19);
    /* a SASL step longer than allowed is refused from its length alone */
    spice_put_u32(msg, 2049);
    assert_int_equal(spice_parse_sasl_data(msg, 4, 2048, &data, &dl, why, sizeof why), SPL_BAD);
    assert_non_null(strstr(why, "2049"));
    spice_put_u32(msg, 0);
    assert_int_equal(spice_parse_sasl_data(msg, 4, 2048, &data, &dl, why, sizeof why), 4);
    assert_int_equal(dl, 0);
}

static void test_sasl_plain(void **state)
{
    (void)state;
    char user[256], pass[1025], why[200];
    /* spice-gtk: authzid = authcid, trailing NUL */
    assert_int_equal(spice_sasl_plain((const uint8_t *)"alice\0alice\0alicepw\0", 20, user,
                                      sizeof user, pass, sizeof pass, why, sizeof why), 0);
    assert_string_equal(user, "alice");
    assert_string_equal(pass, "alicepw");
    /* empty authzid, no trailing NUL */
    assert_int_equal(spice_sasl_plain((const uint8_t *)"\0bob\0pw", 7, user, sizeof user, pass,
                                      sizeof pass, why, sizeof why), 0);
    assert_string_equal(user, "bob");
    assert_string_equal(pass, "pw");
    /* empty password is passed on (the helper refuses it) */
    assert_int_equal(spice_sasl_plain((const uint8_t *)"\0bob\0", 5, user, sizeof user, pass,
                                      sizeof pass, why, sizeof why), 0);
    assert_string_equal(pass, "");
    /* malformed */
    assert_int_equal(spice_sasl_plain((const uint8_t *)"alice", 5, user, sizeof user, pass,
                                      sizeof pass, why, sizeof why), -1);
    assert_int_equal(spice_sasl_plain((const uint8_t *)"alice\0alice", 11, user, sizeof user,
                                      pass, sizeof pass, why, sizeof why), -1);
    assert_int_equal(spice_sasl_plain((const uint8_t *)"\0\0pw", 4, user, sizeof user, pass,
                                      sizeof pass, why, sizeof why), -1);       /* no user */
    assert_int_equal(spice_sasl_plain((const uint8_t *)"root\0alice\0pw", 13, user, sizeof user,
                                      pass, sizeof pass, why, sizeof why), -1); /* authzid */
    assert_int_equal(spice_sasl_plain((const uint8_t *)"\0a\0sec\0ret\0", 12, user, sizeof user,
                                      pass, sizeof pass, why, sizeof why), -1); /* NUL in pw */
    assert_null(strstr(why, "sec"));
    uint8_t big[1400];
    memset(big, 'u', sizeof big);
    big[0] = 0;
    big[257] = 0;   /* user of 256 bytes */
    assert_int_equal(spice_sasl_plain(big, 300, user, sizeof user, pass, sizeof pass, why,
                                      sizeof why), -1);
    big[257] = 'u';
    big[10] = 0;    /* password of 1389 bytes */
    assert_int_equal(spice_sasl_plain(big, sizeof big, user, sizeof user, pass, sizeof pass, why,
                                      sizeof why), -1);
}

static void test_ticket_roundtrip(void **state)
{
    (void)state;
    EVP_PKEY *key = EVP_RSA_gen(1024);
    assert_non_null(key);
    uint8_t der[SPICE_PUBKEY_LEN + 8];
    unsigned char *p = der;
    assert_int_equal(i2d_PUBKEY(key, &p), SPICE_PUBKEY_LEN);
    uint8_t ct[SPICE_TICKET_LEN];
    char why[200];
    assert_int_equal(spice_encrypt_ticket(der, "0123456789abcdef", ct, why, sizeof why), 0);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(key, NULL);
    assert_true(EVP_PKEY_decrypt_init(ctx) > 0);
    assert_true(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) > 0);
    uint8_t pt[128];
    size_t ptl = sizeof pt;
    assert_true(EVP_PKEY_decrypt(ctx, pt, &ptl, ct, sizeof ct) > 0);
    assert_int_equal(ptl, 17);
    assert_string_equal((char *)pt, "0123456789abcdef");
    EVP_PKEY_CTX_free(ctx);
    /* empty ticket (disable-ticketing backends) */
    assert_int_equal(spice_encrypt_ticket(der, "", ct, why, sizeof why), 0);
    /* too long, and a zero key (a SASL-mode reply) */
    char longt[62];
    memset(longt, 'x', 61);
    longt[61] = 0;
    assert_int_equal(spice_encrypt_ticket(der, longt, ct, why, sizeof why), -1);
    uint8_t zero[SPICE_PUBKEY_LEN] = { 0 };
    assert_int_equal(spice_encrypt_ticket(zero, "x", ct, why, sizeof why), -1);
    EVP_PKEY_free(key);
}

/* ------------------------------------------------------------ main/agent */

struct ev_log {
    int n_data, n_offer;
    struct vda_event last;
    uint8_t sha[32];
    uint32_t session;
    int n_notes;
};

static void clip_cb(void *ctx, const struct vda_event *ev)
{
    struct ev_log *l = ctx;
    if (ev->kind == VDA_EV_DATA)
        l->n_data++;
    else
        l->n_offer++;
    l->last = *ev;
    l->last.reason = NULL;
    memcpy(l->sha, ev->sha256, 32);
}
static void init_cb(void *ctx, uint32_t id) { ((struct ev_log *)ctx)->session = id; }
static void note_cb(void *ctx, const char *msg)
{
    (void)msg;
    ((struct ev_log *)ctx)->n_notes++;
}

/* Agent message: header + [selection prefix] + payload. */
static size_t agent_msg(uint8_t *out, uint32_t type, const uint8_t *payload, size_t plen)
{
    spice_put_u32(out, 1);
    spice_put_u32(out + 4, type);
    memset(out + 8, 0, 8);
    spice_put_u32(out + 16, (uint32_t)plen);
    memcpy(out + 20, payload, plen);
    return 20 + plen;
}

/* Main-channel message: mini header + body. */
static size_t main_msg(uint8_t *out, uint16_t type, const uint8_t *body, size_t blen)
{
    spice_put_u16(out, type);
    spice_put_u32(out + 2, (uint32_t)blen);
    memcpy(out + 6, body, blen);
    return 6 + blen;
}

/* Feed in[0..n) to dir, split so that every step gets `step` new bytes (the
 * unconsumed rest is carried over as a relay does).  Output collected in
 * out (cap). */
static size_t run_feed(struct spice_main *m, enum smain_dir dir, const uint8_t *in, size_t n,
                       size_t step, uint8_t *out, size_t cap)
{
    struct buf ib, ob;
    buf_init(&ib, 64 * 1024);
    buf_init(&ob, 256 * 1024);
    size_t off = 0, got = 0;
    for (;;) {
        if (off < n) {
            size_t k = n - off < step ? n - off : step;
            assert_int_equal(buf_put(&ib, in + off, k), 0);
            off += k;
        }
        long u = spice_main_feed(m, dir, buf_empty(&ib) ? NULL : buf_head(&ib), buf_len(&ib),
                                 &ob);
        assert_true(u >= 0);
        buf_consume(&ib, (size_t)u);
        if (off >= n && u == 0)
            break;
    }
    assert_true(buf_len(&ob) <= cap);
    got = buf_len(&ob);
    memcpy(out, buf_head(&ob), got);
    buf_free(&ib);
    buf_free(&ob);
    return got;
}

static void test_main_passthrough_split(void **state)
{
    (void)state;
    /* INIT, a big PING, NAME: passed unchanged whatever the split */
    static uint8_t in[300000], out[310000];
    size_t n = 0;
    uint8_t init[32] = { 0 };
    spice_put_u32(init, 0xabcdef01);
    spice_put_u32(init + 20, 10);
    n += main_msg(in + n, SMAIN_MSG_INIT, init, sizeof init);
    static uint8_t ping[256012];
    memset(ping, 0x5a, sizeof ping);
    n += main_msg(in + n, 4, ping, sizeof ping);
    n += main_msg(in + n, 113, (const uint8_t *)"\4\0\0\0vm1\0", 8);
    size_t steps[] = { 1, 2, 5, 7, 4096, 65536 };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        struct spice_main m;
        struct ev_log l = { 0 };
        spice_main_init(&m, true, true, 1024, "both", clip_cb, init_cb, note_cb, &l);
        size_t got = run_feed(&m, SMAIN_S2C, in, n, steps[i], out, sizeof out);
        assert_int_equal(got, n);
        assert_memory_equal(out, in, n);
        assert_int_equal(l.session, 0xabcdef01);
        spice_main_free(&m);
    }
}

static void test_main_migration_dropped(void **state)
{
    (void)state;
    uint8_t in[200], out[400];
    size_t n = 0;
    n += main_msg(in + n, SMAIN_MSG_MIGRATE_BEGIN, (const uint8_t *)"hostport", 8);
    n += main_msg(in + n, SMAIN_MSG_MIGRATE_SWITCH_HOST, (const uint8_t *)"h", 1);
    n += main_msg(in + n, 105, (const uint8_t *)"\2\0", 2);
    struct spice_main m;
    struct ev_log l = { 0 };
    spice_main_init(&m, true, true, 1024, "both", clip_cb, init_cb, note_cb, &l);
    size_t got = run_feed(&m, SMAIN_S2C, in, n, 3, out, sizeof out);
    assert_int_equal(got, 8);
    assert_int_equal(spice_get_u16(out), 105);
    assert_int_equal(l.n_notes, 2);
    spice_main_free(&m);
}

static void test_main_oversize_agent_data(void **state)
{
    (void)state;
    uint8_t h[6];
    spice_put_u16(h, SMAIN_MSGC_AGENT_DATA);
    spice_put_u32(h + 2, SMAIN_BUFFERED_MAX + 1);
    struct spice_main m;
    struct buf ob;
    buf_init(&ob, 1024);
    spice_main_init(&m, true, true, 1024, "both", NULL, NULL, NULL, NULL);
    assert_int_equal(spice_main_feed(&m, SMAIN_C2S, h, 6, &ob), -1);
    /* bad agent protocol */
    uint8_t in[64], ag[58];
    size_t al = agent_msg(ag, VDA_CLIPBOARD_GRAB, (const uint8_t *)"\1\0\0\0", 4);
    spice_put_u32(ag, 2);
    main_msg(in, SMAIN_MSGC_AGENT_DATA, ag, al);
    spice_main_free(&m);
    spice_main_init(&m, true, true, 1024, "both", NULL, NULL, NULL, NULL);
    assert_int_equal(spice_main_feed(&m, SMAIN_C2S, in, 6 + al, &ob), -1);
    assert_non_null(strstr(m.why, "protocol 2"));
    spice_main_free(&m);
    buf_free(&ob);
}

/* Viewer -> VM: one chunk per agent message, as spice-gtk sends. */
static size_t c2s_chunk(uint8_t *out, uint32_t type, const uint8_t *payload, size_t plen)
{
    uint8_t a[4096];
    size_t al = agent_msg(a, type, payload, plen);
    return main_msg(out, SMAIN_MSGC_AGENT_DATA, a, al);
}

static void test_clipboard_to_vm_policy(void **state)
{
    (void)state;
    /* no selection prefix (no caps announced): CLIPBOARD = u32 type + data */
    uint8_t clip[64], in[512], out[1024];
    spice_put_u32(clip, 1);
    memcpy(clip + 4, "hello", 5);
    uint8_t grab[4];
    spice_put_u32(grab, 1);
    size_t n = 0;
    n += c2s_chunk(in + n, VDA_CLIPBOARD_GRAB, grab, 4);
    n += c2s_chunk(in + n, VDA_CLIPBOARD, clip, 9);
    n += c2s_chunk(in + n, VDA_CLIPBOARD_REQUEST, grab, 4);
    uint8_t want_sha[32];
    unsigned sl;
    EVP_Digest("hello", 5, want_sha, &sl, EVP_sha256(), NULL);
    /* allowed: unchanged, one audit event with the hash */
    struct spice_main m;
    struct ev_log l = { 0 };
    spice_main_init(&m, true, true, 1024, "both", clip_cb, NULL, NULL, &l);
    assert_int_equal(run_feed(&m, SMAIN_C2S, in, n, 1, out, sizeof out), n);
    assert_memory_equal(out, in, n);
    assert_int_equal(l.n_data, 1);
    assert_true(l.last.allowed);
    assert_int_equal(l.last.bytes, 5);
    assert_int_equal(l.last.dir, VDA_TO_VM);
    assert_memory_equal(l.sha, want_sha, 32);
    assert_int_equal(m.tokens_to_viewer, 0);
    spice_main_free(&m);
    /* from-vm only: GRAB and CLIPBOARD dropped (tokens owed), REQUEST passes */
    memset(&l, 0, sizeof l);
    spice_main_init(&m, false, true, 1024, "from-vm", clip_cb, NULL, NULL, &l);
    size_t got = run_feed(&m, SMAIN_C2S, in, n, 3, out, sizeof out);
    assert_int_equal(got, 6 + 24);
    assert_int_equal(spice_get_u32(out + 6 + 4), VDA_CLIPBOARD_REQUEST);
    assert_int_equal(l.n_offer, 1);
    assert_int_equal(l.n_data, 1);
    assert_false(l.last.allowed);
    assert_int_equal(m.tokens_to_viewer, 2);
    /* the tokens go back to the viewer in one AGENT_TOKEN at the next boundary */
    struct buf ob;
    buf_init(&ob, 1024);
    assert_int_equal(spice_main_feed(&m, SMAIN_S2C, NULL, 0, &ob), 0);
    assert_int_equal(buf_len(&ob), 10);
    assert_int_equal(spice_get_u16(buf_head(&ob)), SMAIN_MSG_AGENT_TOKEN);
    assert_int_equal(spice_get_u32(buf_head(&ob) + 6), 2);
    assert_int_equal(m.tokens_to_viewer, 0);
    buf_free(&ob);
    spice_main_free(&m);
    /* to-vm only: the viewer's REQUEST (asking for VM data) is dropped */
    memset(&l, 0, sizeof l);
    spice_main_init(&m, true, false, 1024, "to-vm", clip_cb, NULL, NULL, &l);
    got = run_feed(&m, SMAIN_C2S, in, n, 4096, out, sizeof out);
    assert_int_equal(got, n - (6 + 24));
    assert_int_equal(m.tokens_to_viewer, 1);
    spice_main_free(&m);
}

static void test_clipboard_oversize_to_vm(void **state)
{
    (void)state;
    /* with selection prefix: the agent announced CLIPBOARD_SELECTION */
    uint8_t in[8192], out[8192], ann[8];
    size_t n = 0;
    spice_put_u32(ann, 0);
    spice_put_u32(ann + 4, (1u << 3) | (1u << 5) | (1u << 6));
    uint8_t a[64];
    size_t al = agent_msg(a, VDA_ANNOUNCE_CAPS, ann, 8);
    n += main_msg(in, SMAIN_MSG_AGENT_DATA, a, al);
    struct spice_main m;
    struct ev_log l = { 0 };
    spice_main_init(&m, true, true, 100, "both", clip_cb, NULL, NULL, &l);
    assert_int_equal(run_feed(&m, SMAIN_S2C, in, n, 7, out, sizeof out), n);
    assert_int_equal(m.vda.agent_caps0, (1u << 3) | (1u << 5) | (1u << 6));
    /* a 3000-byte CLIPBOARD from the viewer in 2 chunks (2048 + rest) */
    static uint8_t msg[3100];
    size_t ml = 20 + 8 + 3000;
    spice_put_u32(msg, 1);
    spice_put_u32(msg + 4, VDA_CLIPBOARD);
    memset(msg + 8, 0, 8);
    spice_put_u32(msg + 16, 8 + 3000);
    memset(msg + 20, 0, 4);          /* selection 0 */
    spice_put_u32(msg + 24, 1);      /* UTF8 */
    memset(msg + 28, 'x', 3000);
    n = 0;
    n += main_msg(in + n, SMAIN_MSGC_AGENT_DATA, msg, 2048);
    n += main_msg(in + n, SMAIN_MSGC_AGENT_DATA, msg + 2048, ml - 2048);
    size_t got = run_feed(&m, SMAIN_C2S, in, n, 1000, out, sizeof out);
    /* first chunk becomes an empty CLIPBOARD of type NONE, the rest is dropped */
    assert_int_equal(got, 6 + 28);
    assert_int_equal(spice_get_u32(out + 6 + 16), 8);
    assert_int_equal(spice_get_u32(out + 6 + 24), 0);
    assert_int_equal(m.tokens_to_viewer, 1);
    assert_int_equal(l.n_data, 1);
    assert_false(l.last.allowed);
    assert_int_equal(l.last.bytes, 3000);
    spice_main_free(&m);
}

static void test_clipboard_from_vm_stream(void **state)
{
    (void)state;
    /* VM -> viewer: GRAB + CLIPBOARD split across chunks at odd places,
     * even inside headers; from-vm blocked drops both whatever the split */
    uint8_t stream[256];
    size_t sl = 0;
    uint8_t grab[4];
    spice_put_u32(grab, 1);
    sl += agent_msg(stream + sl, VDA_CLIPBOARD_GRAB, grab, 4);
    uint8_t clip[40];
    spice_put_u32(clip, 1);
    memcpy(clip + 4, "guest says hi", 13);
    sl += agent_msg(stream + sl, VDA_CLIPBOARD, clip, 17);
    uint8_t mouse[4] = { 1, 2, 3, 4 };
    size_t keep_from = sl;
    sl += agent_msg(stream + sl, VDA_MOUSE_STATE, mouse, 4);
    for (size_t cut1 = 1; cut1 < sl; cut1 += 3) {
        for (size_t cut2 = cut1 + 1; cut2 < sl; cut2 += 5) {
            uint8_t in[512], out[1024];
            size_t n = 0;
            n += main_msg(in + n, SMAIN_MSG_AGENT_DATA, stream, cut1);
            n += main_msg(in + n, SMAIN_MSG_AGENT_DATA, stream + cut1, cut2 - cut1);
            n += main_msg(in + n, SMAIN_MSG_AGENT_DATA, stream + cut2, sl - cut2);
            struct spice_main m;
            struct ev_log l = { 0 };
            spice_main_init(&m, true, false, 1024, "to-vm", clip_cb, NULL, NULL, &l);
            size_t got = run_feed(&m, SMAIN_S2C, in, n, 9, out, sizeof out);
            /* collect the agent bytes that came out */
            uint8_t agent[256];
            size_t al = 0;
            for (size_t o = 0; o < got;) {
                assert_int_equal(spice_get_u16(out + o), SMAIN_MSG_AGENT_DATA);
                uint32_t s = spice_get_u32(out + o + 2);
                memcpy(agent + al, out + o + 6, s);
                al += s;
                o += 6 + s;
            }
            assert_int_equal(al, sl - keep_from);
            assert_memory_equal(agent, stream + keep_from, al);
            assert_int_equal(l.n_offer, 1);
            assert_int_equal(l.n_data, 1);
            assert_int_equal(l.last.bytes, 13);
            assert_false(l.last.allowed);
            spice_main_free(&m);
        }
    }
}

static void test_clipboard_from_vm_allowed_hash(void **state)
{
    (void)state;
    uint8_t stream[4200], in[4400], out[4400];
    uint8_t clip[4004];
    spice_put_u32(clip, 1);
    for (int i = 0; i < 4000; i++)
        clip[4 + i] = (uint8_t)(i * 7);
    size_t sl = agent_msg(stream, VDA_CLIPBOARD, clip, sizeof clip);
    size_t n = 0;
    n += main_msg(in + n, SMAIN_MSG_AGENT_DATA, stream, 2048);
    n += main_msg(in + n, SMAIN_MSG_AGENT_DATA, stream + 2048, sl - 2048);
    struct spice_main m;
    struct ev_log l = { 0 };
    spice_main_init(&m, true, true, 262144, "both", clip_cb, NULL, NULL, &l);
    assert_int_equal(run_feed(&m, SMAIN_S2C, in, n, 333, out, sizeof out), n);
    assert_memory_equal(out, in, n);
    uint8_t want[32];
    unsigned wl;
    EVP_Digest(clip + 4, 4000, want, &wl, EVP_sha256(), NULL);
    assert_int_equal(l.n_data, 1);
    assert_true(l.last.allowed);
    assert_int_equal(l.last.clip_type, 1);
    assert_memory_equal(l.sha, want, 32);
    spice_main_free(&m);
}

static void test_finite_server_tokens(void **state)
{
    (void)state;
    /* a viewer that grants the server 5 tokens gets them back via an
     * AGENT_TOKEN to the VM for every dropped VM chunk */
    uint8_t in[256], out[512], tok[4];
    spice_put_u32(tok, 5);
    struct spice_main m;
    spice_main_init(&m, true, false, 1024, "to-vm", NULL, NULL, NULL, NULL);
    size_t n = main_msg(in, SMAIN_MSGC_AGENT_START, tok, 4);
    assert_int_equal(run_feed(&m, SMAIN_C2S, in, n, 1, out, sizeof out), n);
    assert_true(m.server_tokens_finite);
    uint8_t grab[4];
    spice_put_u32(grab, 1);
    uint8_t a[64];
    size_t al = agent_msg(a, VDA_CLIPBOARD_GRAB, grab, 4);
    n = main_msg(in, SMAIN_MSG_AGENT_DATA, a, al);
    assert_int_equal(run_feed(&m, SMAIN_S2C, in, n, 4096, out, sizeof out), 0);
    assert_int_equal(m.tokens_to_vm, 1);
    struct buf ob;
    buf_init(&ob, 1024);
    spice_main_feed(&m, SMAIN_C2S, NULL, 0, &ob);
    assert_int_equal(buf_len(&ob), 10);
    assert_int_equal(spice_get_u16(buf_head(&ob)), SMAIN_MSGC_AGENT_TOKEN);
    buf_free(&ob);
    spice_main_free(&m);
}

static void test_announce_file_xfer_disabled(void **state)
{
    (void)state;
    uint8_t ann[8], a[64], in[128], out[256];
    spice_put_u32(ann, 1);
    spice_put_u32(ann + 4, 1u << 3);
    size_t al = agent_msg(a, VDA_ANNOUNCE_CAPS, ann, 8);
    size_t n = main_msg(in, SMAIN_MSG_AGENT_DATA, a, al);
    struct spice_main m;
    spice_main_init(&m, false, true, 1024, "from-vm", NULL, NULL, NULL, NULL);
    assert_int_equal(run_feed(&m, SMAIN_S2C, in, n, 5, out, sizeof out), n);
    assert_int_equal(spice_get_u32(out + 6 + 24), (1u << 3) | (1u << VDA_CAP_FILE_XFER_DISABLED));
    spice_main_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_link_bytewise),
        cmocka_unit_test(test_link_malformed),
        cmocka_unit_test(test_build_link_and_reply),
        cmocka_unit_test(test_chan_caps),
        cmocka_unit_test(test_sasl_parsers),
        cmocka_unit_test(test_sasl_plain),
        cmocka_unit_test(test_ticket_roundtrip),
        cmocka_unit_test(test_main_passthrough_split),
        cmocka_unit_test(test_main_migration_dropped),
        cmocka_unit_test(test_main_oversize_agent_data),
        cmocka_unit_test(test_clipboard_to_vm_policy),
        cmocka_unit_test(test_clipboard_oversize_to_vm),
        cmocka_unit_test(test_clipboard_from_vm_stream),
        cmocka_unit_test(test_clipboard_from_vm_allowed_hash),
        cmocka_unit_test(test_finite_server_tokens),
        cmocka_unit_test(test_announce_file_xfer_disabled),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
