/* proxy/spice_link.c — see spice_link.h. */
#include "proxy/spice_link.h"

#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#define WHY(...) do { if (why && whylen) snprintf(why, whylen, __VA_ARGS__); } while (0)

/* Header checks shared by the link message and the reply.  Returns
 * SPL_NEED, SPL_BAD (err, why) or the total length (header + size). */
static long parse_header(const uint8_t *p, size_t n, uint32_t min_size, uint32_t *err,
                         char *why, size_t whylen)
{
    size_t m = n < 4 ? n : 4;
    if (m == 0)
        return SPL_NEED;                /* (p may be NULL: an empty buffer) */
    if (memcmp(p, SPICE_MAGIC_BYTES, m) != 0) {
        *err = SPICE_LINK_ERR_INVALID_MAGIC;
        WHY("not a SPICE link (bad magic)");
        return SPL_BAD;
    }
    if (n < SPICE_LINK_HDR_LEN)
        return SPL_NEED;
    uint32_t major = spice_get_u32(p + 4), size = spice_get_u32(p + 12);
    if (major != SPICE_VERSION_MAJOR) {
        *err = SPICE_LINK_ERR_VERSION_MISMATCH;
        WHY("SPICE protocol version %u, only %u is supported", major, SPICE_VERSION_MAJOR);
        return SPL_BAD;
    }
    if (size < min_size || size > SPICE_LINK_SIZE_MAX) {
        *err = SPICE_LINK_ERR_INVALID_DATA;
        WHY("link message size %u (must be %u..%u)", size, min_size, SPICE_LINK_SIZE_MAX);
        return SPL_BAD;
    }
    if (n < SPICE_LINK_HDR_LEN + (size_t)size)
        return SPL_NEED;
    return (long)(SPICE_LINK_HDR_LEN + size);
}

/* Caps checks: counts, offset, and that both lists fit inside size. */
static int check_caps(uint32_t size, uint32_t fixed, uint32_t n_common, uint32_t n_channel,
                      uint32_t off, uint32_t *err, char *why, size_t whylen)
{
    if (n_common > SPICE_CAPS_MAX || n_channel > SPICE_CAPS_MAX) {
        *err = SPICE_LINK_ERR_INVALID_DATA;
        WHY("%u common and %u channel capability words (max %u each)", n_common, n_channel,
            SPICE_CAPS_MAX);
        return -1;
    }
    uint64_t need = (uint64_t)off + 4u * ((uint64_t)n_common + n_channel);
    if (off < fixed || need > size) {
        *err = SPICE_LINK_ERR_INVALID_DATA;
        WHY("capabilities at offset %u (%u + %u words) do not fit in %u bytes", off, n_common,
            n_channel, size);
        return -1;
    }
    return 0;
}

int spice_parse_link(const uint8_t *p, size_t n, struct spice_link_mess *m, uint32_t *err,
                     char *why, size_t whylen)
{
    uint32_t e = 0;
    long total = parse_header(p, n, SPICE_LINK_MESS_LEN, &e, why, whylen);
    if (total <= 0) {
        if (err)
            *err = e;
        return (int)total;
    }
    const uint8_t *b = p + SPICE_LINK_HDR_LEN;
    uint32_t size = spice_get_u32(p + 12);
    memset(m, 0, sizeof *m);
    m->minor = spice_get_u32(p + 8);
    m->connection_id = spice_get_u32(b);
    m->channel_type = b[4];
    m->channel_id = b[5];
    m->n_common = spice_get_u32(b + 6);
    m->n_channel = spice_get_u32(b + 10);
    uint32_t off = spice_get_u32(b + 14);
    if (check_caps(size, SPICE_LINK_MESS_LEN, m->n_common, m->n_channel, off, &e, why,
                   whylen) != 0) {
        if (err)
            *err = e;
        return SPL_BAD;
    }
    m->common0 = m->n_common ? spice_get_u32(b + off) : 0;
    m->chan_caps = b + off + 4u * m->n_common;
    return (int)total;
}

int spice_parse_reply(const uint8_t *p, size_t n, struct spice_link_reply *r, char *why,
                      size_t whylen)
{
    uint32_t e = 0;
    long total = parse_header(p, n, SPICE_LINK_REPLY_LEN, &e, why, whylen);
    if (total <= 0)
        return (int)total;
    const uint8_t *b = p + SPICE_LINK_HDR_LEN;
    uint32_t size = spice_get_u32(p + 12);
    memset(r, 0, sizeof *r);
    r->error = spice_get_u32(b);
    if (r->error != SPICE_LINK_OK)
        return (int)total;
    memcpy(r->pub_key, b + 4, SPICE_PUBKEY_LEN);
    r->n_common = spice_get_u32(b + 166);
    r->n_channel = spice_get_u32(b + 170);
    uint32_t off = spice_get_u32(b + 174);
    if (check_caps(size, SPICE_LINK_REPLY_LEN, r->n_common, r->n_channel, off, &e, why,
                   whylen) != 0)
        return SPL_BAD;
    r->common0 = r->n_common ? spice_get_u32(b + off) : 0;
    r->chan_caps = b + off + 4u * r->n_common;
    return (int)total;
}

static void put_header(uint8_t *out, uint32_t size)
{
    memcpy(out, SPICE_MAGIC_BYTES, 4);
    spice_put_u32(out + 4, SPICE_VERSION_MAJOR);
    spice_put_u32(out + 8, SPICE_VERSION_MINOR);
    spice_put_u32(out + 12, size);
}

size_t spice_build_link(uint8_t *out, size_t cap, const struct spice_link_mess *m,
                        uint32_t common0)
{
    uint32_t size = SPICE_LINK_MESS_LEN + 4 + 4 * m->n_channel;
    if (m->n_channel > SPICE_CAPS_MAX || cap < SPICE_LINK_HDR_LEN + (size_t)size)
        return 0;
    put_header(out, size);
    uint8_t *b = out + SPICE_LINK_HDR_LEN;
    spice_put_u32(b, m->connection_id);
    b[4] = m->channel_type;
    b[5] = m->channel_id;
    spice_put_u32(b + 6, 1);
    spice_put_u32(b + 10, m->n_channel);
    spice_put_u32(b + 14, SPICE_LINK_MESS_LEN);
    spice_put_u32(b + 18, common0);
    if (m->n_channel)
        memcpy(b + 22, m->chan_caps, 4 * (size_t)m->n_channel);
    return SPICE_LINK_HDR_LEN + (size_t)size;
}

size_t spice_build_reply(uint8_t *out, size_t cap, uint32_t common0, const uint8_t *chan_caps,
                         uint32_t n_channel)
{
    uint32_t size = SPICE_LINK_REPLY_LEN + 4 + 4 * n_channel;
    if (n_channel > SPICE_CAPS_MAX || cap < SPICE_LINK_HDR_LEN + (size_t)size)
        return 0;
    put_header(out, size);
    uint8_t *b = out + SPICE_LINK_HDR_LEN;
    memset(b, 0, SPICE_LINK_REPLY_LEN);
    spice_put_u32(b, SPICE_LINK_OK);
    spice_put_u32(b + 166, 1);
    spice_put_u32(b + 170, n_channel);
    spice_put_u32(b + 174, SPICE_LINK_REPLY_LEN);
    spice_put_u32(b + 178, common0);
    if (n_channel)
        memcpy(b + 182, chan_caps, 4 * (size_t)n_channel);
    return SPICE_LINK_HDR_LEN + (size_t)size;
}

size_t spice_build_error(uint8_t *out, size_t cap, uint32_t error)
{
    if (cap < SPICE_LINK_HDR_LEN + SPICE_LINK_REPLY_LEN)
        return 0;
    put_header(out, SPICE_LINK_REPLY_LEN);
    memset(out + SPICE_LINK_HDR_LEN, 0, SPICE_LINK_REPLY_LEN);
    spice_put_u32(out + SPICE_LINK_HDR_LEN, error);
    return SPICE_LINK_HDR_LEN + SPICE_LINK_REPLY_LEN;
}

int spice_parse_u32(const uint8_t *p, size_t n, uint32_t *v)
{
    if (n < 4)
        return SPL_NEED;
    *v = spice_get_u32(p);
    return 4;
}

int spice_parse_sasl_mech(const uint8_t *p, size_t n, char *mech, char *why, size_t whylen)
{
    if (n < 4)
        return SPL_NEED;
    uint32_t len = spice_get_u32(p);
    if (len < 1 || len > SPICE_SASL_MECH_MAX) {
        WHY("SASL mechanism name of %u bytes (must be 1..%u)", len, SPICE_SASL_MECH_MAX);
        return SPL_BAD;
    }
    if (n < 4 + (size_t)len)
        return SPL_NEED;
    for (uint32_t i = 0; i < len; i++) {
        uint8_t c = p[4 + i];
        /* RFC 4422: upper-case letters, digits, '-' and '_' */
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_')) {
            WHY("SASL mechanism name with byte 0x%02x", c);
            return SPL_BAD;
        }
        mech[i] = (char)c;
    }
    mech[len] = '\0';
    return (int)(4 + len);
}

int spice_parse_sasl_data(const uint8_t *p, size_t n, uint32_t max, const uint8_t **data,
                          uint32_t *len, char *why, size_t whylen)
{
    if (n < 4)
        return SPL_NEED;
    uint32_t l = spice_get_u32(p);
    if (l > max) {
        WHY("SASL data of %u bytes (max %u)", l, max);
        return SPL_BAD;
    }
    if (n < 4 + (size_t)l)
        return SPL_NEED;
    *data = p + 4;
    *len = l;
    return (int)(4 + l);
}

int spice_sasl_plain(const uint8_t *data, size_t len, char *user, size_t usercap, char *pass,
                     size_t passcap, char *why, size_t whylen)
{
    /* spice-gtk sends the terminating NUL too (QEMU overwrites the last
     * byte with one); a client may also leave it out. */
    size_t nuls = 0;
    for (size_t i = 0; i < len; i++)
        nuls += data[i] == '\0';
    if (nuls == 3 && data[len - 1] == '\0')
        len--;
    const uint8_t *z1 = memchr(data, '\0', len);
    if (!z1) {
        WHY("SASL PLAIN data without separators");
        return -1;
    }
    size_t azl = (size_t)(z1 - data);
    const uint8_t *ac = z1 + 1;
    size_t rest = len - azl - 1;
    const uint8_t *z2 = memchr(ac, '\0', rest);
    if (!z2) {
        WHY("SASL PLAIN data with one separator");
        return -1;
    }
    size_t acl = (size_t)(z2 - ac);
    const uint8_t *pw = z2 + 1;
    size_t pwl = rest - acl - 1;
    if (memchr(pw, '\0', pwl)) {
        WHY("SASL PLAIN password contains a NUL byte");
        return -1;
    }
    if (acl == 0 || acl > SPICE_SASL_USER_MAX || acl + 1 > usercap) {
        WHY("SASL PLAIN user name of %zu bytes (must be 1..%u)", acl, SPICE_SASL_USER_MAX);
        return -1;
    }
    if (pwl > SPICE_SASL_PASS_MAX || pwl + 1 > passcap) {
        WHY("SASL PLAIN password of %zu bytes (max %u)", pwl, SPICE_SASL_PASS_MAX);
        return -1;
    }
    if (azl != 0 && (azl != acl || memcmp(data, ac, acl) != 0)) {
        WHY("SASL PLAIN authorization identity differs from the user name");
        return -1;
    }
    memcpy(user, ac, acl);
    user[acl] = '\0';
    memcpy(pass, pw, pwl);
    pass[pwl] = '\0';
    return 0;
}

int spice_encrypt_ticket(const uint8_t pub_key[SPICE_PUBKEY_LEN], const char *ticket,
                         uint8_t out[SPICE_TICKET_LEN], char *why, size_t whylen)
{
    int rc = -1;
    size_t tl = strlen(ticket);
    if (tl > SPICE_TICKET_MAX) {
        WHY("ticket longer than %d bytes", SPICE_TICKET_MAX);
        return -1;
    }
    const unsigned char *kp = pub_key;
    EVP_PKEY *key = d2i_PUBKEY(NULL, &kp, SPICE_PUBKEY_LEN);
    EVP_PKEY_CTX *ctx = NULL;
    if (!key || EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA || EVP_PKEY_get_size(key) != SPICE_TICKET_LEN) {
        WHY("the VM's link reply has no usable RSA-1024 public key");
        goto out;
    }
    ctx = EVP_PKEY_CTX_new(key, NULL);
    size_t ol = SPICE_TICKET_LEN;
    if (!ctx || EVP_PKEY_encrypt_init(ctx) <= 0 ||
        EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) <= 0 ||
        EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha1()) <= 0 ||
        EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha1()) <= 0 ||
        EVP_PKEY_encrypt(ctx, out, &ol, (const unsigned char *)ticket, tl + 1) <= 0 ||
        ol != SPICE_TICKET_LEN) {
        WHY("RSA-OAEP encryption of the ticket failed");
        goto out;
    }
    rc = 0;
out:
    ERR_clear_error();
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(key);
    return rc;
}

void spice_default_chan_caps(unsigned type, struct spice_chan_caps *out)
{
    /* spice-server 0.15.1 reds/channels: main SEMI_SEAMLESS_MIGRATE,
     * NAME_AND_UUID, AGENT_CONNECTED_TOKENS, SEAMLESS_MIGRATE; display
     * MONITORS_CONFIG, STREAM_REPORT, PREF_COMPRESSION, PREF_VIDEO_CODEC_TYPE (as
     * QEMU 7.2 answered); inputs KEY_SCANCODE; playback VOLUME, OPUS;
     * record VOLUME, OPUS; spicevmc channels DATA_COMPRESS_LZ4. */
    static const uint32_t word0[] = {
        [SPICE_CH_MAIN] = 0x0f, [SPICE_CH_DISPLAY] = 0x1052, [SPICE_CH_INPUTS] = 0x01,
        [SPICE_CH_CURSOR] = 0, [SPICE_CH_PLAYBACK] = 0x0a, [SPICE_CH_RECORD] = 0x06,
        [SPICE_CH_TUNNEL] = 0, [SPICE_CH_SMARTCARD] = 0, [SPICE_CH_USBREDIR] = 0x01,
        [SPICE_CH_PORT] = 0x01, [SPICE_CH_WEBDAV] = 0x01,
    };
    memset(out, 0, sizeof *out);
    if (type < sizeof word0 / sizeof word0[0] && word0[type]) {
        out->n = 1;
        out->w[0] = word0[type];
    }
}

void spice_chan_caps_from_reply(const struct spice_link_reply *r, struct spice_chan_caps *out)
{
    memset(out, 0, sizeof *out);
    out->n = r->n_channel < SPICE_CHAN_CAPS_WORDS ? r->n_channel : SPICE_CHAN_CAPS_WORDS;
    for (uint32_t i = 0; i < out->n; i++)
        out->w[i] = spice_get_u32(r->chan_caps + 4 * i);
}

bool spice_chan_caps_subset(const struct spice_chan_caps *promised,
                            const struct spice_chan_caps *have)
{
    for (uint32_t i = 0; i < promised->n && i < SPICE_CHAN_CAPS_WORDS; i++) {
        uint32_t h = i < have->n ? have->w[i] : 0;
        if (promised->w[i] & ~h)
            return false;
    }
    return true;
}

void spice_chan_caps_le(const struct spice_chan_caps *caps, uint8_t *out)
{
    for (uint32_t i = 0; i < caps->n && i < SPICE_CHAN_CAPS_WORDS; i++)
        spice_put_u32(out + 4 * i, caps->w[i]);
}

const char *spice_channel_name(unsigned type)
{
    static const char *const names[] = {
        [SPICE_CH_MAIN] = "main", [SPICE_CH_DISPLAY] = "display", [SPICE_CH_INPUTS] = "inputs",
        [SPICE_CH_CURSOR] = "cursor", [SPICE_CH_PLAYBACK] = "playback",
        [SPICE_CH_RECORD] = "record", [SPICE_CH_TUNNEL] = "tunnel",
        [SPICE_CH_SMARTCARD] = "smartcard", [SPICE_CH_USBREDIR] = "usbredir",
        [SPICE_CH_PORT] = "port", [SPICE_CH_WEBDAV] = "webdav",
    };
    if (type < sizeof names / sizeof names[0] && names[type])
        return names[type];
    return "unknown";
}

const char *spice_link_err_name(uint32_t err)
{
    static const char *const names[] = {
        "ok", "error", "invalid magic", "invalid data", "version mismatch", "need secured",
        "need unsecured", "permission denied", "bad connection id", "channel not available",
    };
    return err < sizeof names / sizeof names[0] ? names[err] : "unknown error";
}
