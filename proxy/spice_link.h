/* proxy/spice_link.h — the SPICE link phase, byte by byte (see
 * ../shared/reference/spice.md section 1 and docs/spice.md).
 *
 * Pure parsers and builders, no I/O: they take the bytes received so far and
 * return, like proxy/rfb.h,
 *   SPL_NEED (0)  not complete yet: nothing consumed, call again with more;
 *   SPL_BAD (-1)  malformed: *err (where there is one) is the SpiceLinkErr
 *                 code to send back, why says what was wrong (for the log);
 *   r > 0         the first r bytes were one complete message.
 * The only non-pure function is spice_encrypt_ticket() (OpenSSL RSA-OAEP).
 *
 * All integers on the wire are little-endian.  A link is:
 *   C->S  header {magic "REDQ", u32 major 2, u32 minor, u32 size}
 *         + SpiceLinkMess {u32 connection_id, u8 type, u8 id,
 *                          u32 n_common, u32 n_channel, u32 caps_offset}
 *         + caps words (common first, then channel), size bytes in all
 *   S->C  header + SpiceLinkReply {u32 error, u8 pub_key[162], u32 n_common,
 *                                  u32 n_channel, u32 caps_offset} + caps
 *   C->S  u32 auth mechanism (1 ticket, 2 SASL)
 *   ...   ticket (128 bytes) or SASL exchange
 *   S->C  u32 link result */
#ifndef VMGATE_SPICE_LINK_H
#define VMGATE_SPICE_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SPL_NEED 0
#define SPL_BAD  (-1)

#define SPICE_MAGIC_BYTES     "REDQ"
#define SPICE_VERSION_MAJOR   2
#define SPICE_VERSION_MINOR   2
#define SPICE_LINK_HDR_LEN    16
#define SPICE_LINK_MESS_LEN   18
#define SPICE_LINK_REPLY_LEN  178
#define SPICE_PUBKEY_LEN      162
#define SPICE_TICKET_LEN      128          /* RSA-1024 ciphertext */
#define SPICE_TICKET_MAX      60           /* SPICE_MAX_PASSWORD_LENGTH */
#define SPICE_LINK_SIZE_MAX   4096         /* what QEMU accepts after the header */
#define SPICE_CAPS_MAX        1024         /* per list, as QEMU */

/* SpiceLinkErr */
enum spice_link_err {
    SPICE_LINK_OK = 0,
    SPICE_LINK_ERR_ERROR = 1,
    SPICE_LINK_ERR_INVALID_MAGIC = 2,
    SPICE_LINK_ERR_INVALID_DATA = 3,
    SPICE_LINK_ERR_VERSION_MISMATCH = 4,
    SPICE_LINK_ERR_NEED_SECURED = 5,
    SPICE_LINK_ERR_NEED_UNSECURED = 6,
    SPICE_LINK_ERR_PERMISSION_DENIED = 7,
    SPICE_LINK_ERR_BAD_CONNECTION_ID = 8,
    SPICE_LINK_ERR_CHANNEL_NOT_AVAILABLE = 9,
};

/* Common capability bits (word 0). */
#define SPICE_CAP_AUTH_SELECTION  (1u << 0)
#define SPICE_CAP_AUTH_SPICE      (1u << 1)
#define SPICE_CAP_AUTH_SASL       (1u << 2)
#define SPICE_CAP_MINI_HEADER     (1u << 3)

/* Auth mechanisms (the capability number). */
#define SPICE_AUTH_SPICE 1
#define SPICE_AUTH_SASL  2

/* Channel types. */
enum spice_channel {
    SPICE_CH_MAIN = 1, SPICE_CH_DISPLAY, SPICE_CH_INPUTS, SPICE_CH_CURSOR,
    SPICE_CH_PLAYBACK, SPICE_CH_RECORD, SPICE_CH_TUNNEL, SPICE_CH_SMARTCARD,
    SPICE_CH_USBREDIR, SPICE_CH_PORT, SPICE_CH_WEBDAV,
};

/* SASL limits. */
#define SPICE_SASL_MECH_MAX   100          /* as QEMU and spice-gtk */
/* PLAIN: authzid NUL authcid NUL password (+ the NUL spice-gtk sends):
 * 255 + 1 + 255 + 1 + 1024 + 1 fits. */
#define SPICE_SASL_DATA_MAX   2048
#define SPICE_SASL_USER_MAX   255
#define SPICE_SASL_PASS_MAX   1024

/* A parsed link message (client -> server).  caps points into the parsed
 * bytes: n_common words, then n_channel words, little-endian. */
struct spice_link_mess {
    uint32_t minor;
    uint32_t connection_id;
    uint8_t channel_type;
    uint8_t channel_id;
    uint32_t n_common, n_channel;
    uint32_t common0;              /* first common caps word (0 if none) */
    const uint8_t *chan_caps;      /* n_channel words */
};

/* A parsed link reply (server -> client). */
struct spice_link_reply {
    uint32_t error;                /* SpiceLinkErr; if != 0 nothing else is set */
    uint8_t pub_key[SPICE_PUBKEY_LEN];
    uint32_t n_common, n_channel;
    uint32_t common0;
    const uint8_t *chan_caps;      /* n_channel words */
};

/* The viewer's header + link message.  Checks, as QEMU does: the magic
 * (refused at the first wrong byte: INVALID_MAGIC), major 2
 * (VERSION_MISMATCH), 18 <= size <= 4096, at most 1024 words per caps list,
 * caps_offset >= 18 and the caps inside size (INVALID_DATA). */
int spice_parse_link(const uint8_t *p, size_t n, struct spice_link_mess *m, uint32_t *err,
                     char *why, size_t whylen);
/* The backend's header + reply: the same checks, and 178 <= size. */
int spice_parse_reply(const uint8_t *p, size_t n, struct spice_link_reply *r, char *why,
                      size_t whylen);

/* Build a link message for the backend: m's connection id, channel and
 * channel caps, with one common caps word.  Returns the length, or 0 if cap
 * is too small. */
size_t spice_build_link(uint8_t *out, size_t cap, const struct spice_link_mess *m,
                        uint32_t common0);
/* Build a reply: error, an all-zero public key, one common caps word and
 * n_channel channel words copied from chan_caps (LE words).  Returns the
 * length or 0. */
size_t spice_build_reply(uint8_t *out, size_t cap, uint32_t common0, const uint8_t *chan_caps,
                         uint32_t n_channel);
/* The error form of the reply: error set, key and caps zero, size 178
 * (SPICE_LINK_HDR_LEN + SPICE_LINK_REPLY_LEN = 194 bytes). */
size_t spice_build_error(uint8_t *out, size_t cap, uint32_t error);

/* u32 auth mechanism (4 bytes). */
int spice_parse_u32(const uint8_t *p, size_t n, uint32_t *v);

/* SASL, viewer -> gateway:
 *   mechanism name: u32 len (1..100) + name (no NUL): copied to mech (which
 *   has room for SPICE_SASL_MECH_MAX + 1);
 *   data (start or step): u32 len + len bytes; len > max is BAD.  *data
 *   points into p. */
int spice_parse_sasl_mech(const uint8_t *p, size_t n, char *mech, char *why, size_t whylen);
int spice_parse_sasl_data(const uint8_t *p, size_t n, uint32_t max, const uint8_t **data,
                          uint32_t *len, char *why, size_t whylen);
/* Decode SASL PLAIN "authzid NUL authcid NUL password" (a trailing NUL, as
 * spice-gtk sends, is dropped).  authzid must be empty or equal authcid.
 * user gets authcid (1..255 bytes), pass the password (0..1024); both
 * NUL-terminated.  Returns 0 or -1 (why set; nothing of the password in
 * why). */
int spice_sasl_plain(const uint8_t *data, size_t len, char *user, size_t usercap, char *pass,
                     size_t passcap, char *why, size_t whylen);

/* Encrypt ticket + NUL with the DER SubjectPublicKeyInfo pub_key using
 * RSA-OAEP (SHA-1, MGF1-SHA-1), as a SPICE client does.  out gets exactly
 * SPICE_TICKET_LEN bytes.  Returns 0, or -1 with why. */
int spice_encrypt_ticket(const uint8_t pub_key[SPICE_PUBKEY_LEN], const char *ticket,
                         uint8_t out[SPICE_TICKET_LEN], char *why, size_t whylen);

/* Little-endian helpers. */
static inline uint32_t spice_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint16_t spice_get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}
static inline void spice_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}
static inline void spice_put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

/* Channel capabilities of one channel type, as a SPICE server announces
 * them in its link reply.  Only the first SPICE_CHAN_CAPS_WORDS words are
 * kept: every channel capability spice-server knows today is in word 0, and
 * dropping later words only makes vmgate promise less. */
#define SPICE_CHAN_CAPS_WORDS 4
struct spice_chan_caps {
    uint32_t n;                            /* words in use */
    uint32_t w[SPICE_CHAN_CAPS_WORDS];
};

/* What spice-server 0.15.1 (QEMU 7.2, Debian 12) announces for channel
 * type (measured: main 0x0f, display 0x1052, inputs 0x01, cursor none,
 * playback 0x0a, record 0x06, smartcard none, usbredir/port/webdav 0x01);
 * no words for any other type.  vmgate answers a viewer's link from this
 * (or from what the VM last said) before it has talked to the VM. */
void spice_default_chan_caps(unsigned type, struct spice_chan_caps *out);
/* The channel caps of a parsed reply (its first SPICE_CHAN_CAPS_WORDS). */
void spice_chan_caps_from_reply(const struct spice_link_reply *r, struct spice_chan_caps *out);
/* True if every capability set in promised is also set in have (a word
 * missing from have counts as zero). */
bool spice_chan_caps_subset(const struct spice_chan_caps *promised,
                            const struct spice_chan_caps *have);
/* caps as n little-endian words into out (room for SPICE_CHAN_CAPS_WORDS
 * words), for spice_build_reply. */
void spice_chan_caps_le(const struct spice_chan_caps *caps, uint8_t *out);

const char *spice_channel_name(unsigned type);
const char *spice_link_err_name(uint32_t err);

#endif
