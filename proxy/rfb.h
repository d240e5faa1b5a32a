/* proxy/rfb.h — RFB and VeNCrypt handshake messages, parsed without I/O.
 *
 * Every parser takes the bytes received so far and returns:
 *   RFB_NEED (0)  not enough bytes yet, call again with more;
 *   RFB_BAD  (-1) malformed, close the connection (why holds a reason);
 *   n > 0         a complete message of n bytes was parsed.
 * Lengths are checked against their limits as soon as the length field is
 * readable, before the rest is waited for or anything is copied, so a
 * 4 GiB length is refused after 8 bytes. */
#ifndef VMGATE_RFB_H
#define VMGATE_RFB_H

#include <stddef.h>
#include <stdint.h>

#define RFB_NEED 0
#define RFB_BAD  (-1)

#define RFB_VERSION_LEN   12
#define RFB_SEC_NONE      1
#define RFB_SEC_VNCAUTH   2
#define RFB_SEC_VENCRYPT  19
#define RFB_VENCRYPT_PLAIN      256
#define RFB_VENCRYPT_X509PLAIN  262
#define RFB_PLAIN_USER_MAX 255
#define RFB_PLAIN_PASS_MAX 1024
#define RFB_REASON_MAX     1023   /* gtk-vnc reads at most this much */

/* "RFB 003.008\n" from the viewer.  *minor becomes 3, 7 or 8: 3.4/3.5/3.6
 * map to 3.3 (as QEMU does), 3.889 (Apple) to 3.3, anything above 3.8 in
 * major 3 to 3.8; other majors are RFB_BAD. */
int rfb_parse_client_version(const uint8_t *p, size_t n, int *minor, char *why, size_t whylen);
/* The backend's version: same format, but only 3.3, 3.7, 3.8 (or higher
 * 3.x, treated as 3.8) are usable. */
int rfb_parse_server_version(const uint8_t *p, size_t n, int *minor, char *why, size_t whylen);

/* VeNCrypt version from the viewer: 2 bytes, must be 0.2. */
int rfb_parse_vencrypt_version(const uint8_t *p, size_t n, char *why, size_t whylen);
/* A big-endian U32 (VeNCrypt subtype, SecurityResult). */
int rfb_parse_u32(const uint8_t *p, size_t n, uint32_t *v);

/* VeNCrypt Plain credentials: U32 ulen, U32 plen, user, password.  user and
 * pass receive NUL-terminated copies; ulen must be 1..255 and plen 0..1024,
 * and NUL bytes inside are refused. */
int rfb_parse_plain_creds(const uint8_t *p, size_t n,
                          char user[static RFB_PLAIN_USER_MAX + 1],
                          char pass[static RFB_PLAIN_PASS_MAX + 1],
                          char *why, size_t whylen);

/* The backend's security-type list (3.7/3.8): U8 count, count types; count 0
 * is followed by U32 len + reason (returned in why, the parse still yields
 * RFB_BAD).  *has_none says whether type None (1) is offered. */
int rfb_parse_sec_types(const uint8_t *p, size_t n, int *has_none, char *why, size_t whylen);
/* The backend's 3.3 security type: U32 type (0 = failure + reason). */
int rfb_parse_sec_type33(const uint8_t *p, size_t n, uint32_t *type, char *why, size_t whylen);
/* SecurityResult from the backend: U32 status; status != 0 in 3.8 is
 * followed by a reason; *status is set on success. */
int rfb_parse_sec_result(const uint8_t *p, size_t n, int minor, uint32_t *status,
                         char *why, size_t whylen);

/* Encode a SecurityResult failure for a viewer of this minor version into
 * out (cap >= 8 + strlen(reason)): status 1, and a U32 length + reason (no
 * NUL) for 3.8 only.  Returns the length. */
size_t rfb_put_sec_failure(uint8_t *out, size_t cap, int minor, const char *reason);
/* Encode the 3.3 "no security type" failure (U32 0, U32 len, reason). */
size_t rfb_put_sec33_failure(uint8_t *out, size_t cap, const char *reason);

static inline void rfb_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);  p[3] = (uint8_t)v;
}
static inline uint32_t rfb_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

#endif
