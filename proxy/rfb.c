/* proxy/rfb.c — see rfb.h.  Pure functions: no I/O, no allocation. */
#include "proxy/rfb.h"

#include <stdio.h>
#include <string.h>

#define WHY(...) do { if (why && whylen) snprintf(why, whylen, __VA_ARGS__); } while (0)

/* Parse "RFB xxx.yyy\n" and map it to the minor version vmgate speaks:
 * major 3 only; 3.3-3.6 and 3.889 (Apple) are 3.3, 3.7 is 3.7, anything
 * else above 3.7 is 3.8 (the mapping QEMU applies).  who prefixes the
 * refusal ("" for the viewer).  Returns 12, RFB_NEED or RFB_BAD. */
static int parse_version(const uint8_t *p, size_t n, int *minor, const char *who,
                         char *why, size_t whylen)
{
    static const char pfx[] = "RFB ";
    /* Refuse garbage as early as the first wrong byte: a viewer that sends
     * "GET / HTTP/1.1" must not wait for the timeout. */
    for (size_t i = 0; i < n && i < RFB_VERSION_LEN; i++) {
        uint8_t c = p[i];
        int ok;
        if (i < 4)
            ok = c == (uint8_t)pfx[i];
        else if (i == 7)
            ok = c == '.';
        else if (i == 11)
            ok = c == '\n';
        else
            ok = c >= '0' && c <= '9';
        if (!ok) {
            WHY("not an RFB version string");
            return RFB_BAD;
        }
    }
    if (n < RFB_VERSION_LEN)
        return RFB_NEED;
    int maj = (p[4] - '0') * 100 + (p[5] - '0') * 10 + (p[6] - '0');
    int min = (p[8] - '0') * 100 + (p[9] - '0') * 10 + (p[10] - '0');
    if (maj != 3 || min < 3) {
        WHY("%sunsupported RFB version %03d.%03d", who, maj, min);
        return RFB_BAD;
    }
    *minor = (min >= 8 && min != 889) ? 8 : (min == 7 ? 7 : 3);
    return RFB_VERSION_LEN;
}

int rfb_parse_client_version(const uint8_t *p, size_t n, int *minor, char *why, size_t whylen)
{
    return parse_version(p, n, minor, "", why, whylen);
}

int rfb_parse_server_version(const uint8_t *p, size_t n, int *minor, char *why, size_t whylen)
{
    return parse_version(p, n, minor, "backend speaks ", why, whylen);
}

int rfb_parse_vencrypt_version(const uint8_t *p, size_t n, char *why, size_t whylen)
{
    if (n < 2)
        return RFB_NEED;
    if (p[0] != 0 || p[1] != 2) {
        WHY("unsupported VeNCrypt version %u.%u", p[0], p[1]);
        return RFB_BAD;
    }
    return 2;
}

int rfb_parse_u32(const uint8_t *p, size_t n, uint32_t *v)
{
    if (n < 4)
        return RFB_NEED;
    *v = rfb_get_u32(p);
    return 4;
}

int rfb_parse_plain_creds(const uint8_t *p, size_t n,
                          char user[static RFB_PLAIN_USER_MAX + 1],
                          char pass[static RFB_PLAIN_PASS_MAX + 1],
                          char *why, size_t whylen)
{
    if (n < 4)
        return RFB_NEED;
    uint32_t ulen = rfb_get_u32(p);
    if (ulen == 0 || ulen > RFB_PLAIN_USER_MAX) {
        WHY("username length %u out of range 1..%d", ulen, RFB_PLAIN_USER_MAX);
        return RFB_BAD;
    }
    if (n < 8)
        return RFB_NEED;
    uint32_t plen = rfb_get_u32(p + 4);
    if (plen > RFB_PLAIN_PASS_MAX) {
        WHY("password length %u over %d", plen, RFB_PLAIN_PASS_MAX);
        return RFB_BAD;
    }
    size_t total = 8 + (size_t)ulen + plen;
    if (n < total)
        return RFB_NEED;
    if (memchr(p + 8, 0, ulen) || memchr(p + 8 + ulen, 0, plen)) {
        WHY("NUL byte inside credentials");
        return RFB_BAD;
    }
    memcpy(user, p + 8, ulen);
    user[ulen] = '\0';
    memcpy(pass, p + 8 + ulen, plen);
    pass[plen] = '\0';
    return (int)total;
}

/* A refusal from the backend: U32 length + reason string at p (n bytes),
 * read into why (lengths over RFB_REASON_MAX are refused unread).  Returns
 * RFB_NEED until it is complete, then RFB_BAD. */
static int parse_refusal(const uint8_t *p, size_t n, char *why, size_t whylen, const char *what)
{
    if (n < 4)
        return RFB_NEED;
    uint32_t len = rfb_get_u32(p);
    if (len > RFB_REASON_MAX) {
        WHY("%s with over-long reason (%u bytes)", what, len);
        return RFB_BAD;
    }
    if (n < 4 + (size_t)len)
        return RFB_NEED;
    char tmp[RFB_REASON_MAX + 1];
    size_t i;
    for (i = 0; i < len; i++)
        tmp[i] = (p[4 + i] >= 0x20 && p[4 + i] < 0x7f) ? (char)p[4 + i] : '?';
    tmp[i] = '\0';
    WHY("%s: %s", what, tmp);
    return RFB_BAD;
}

int rfb_parse_sec_types(const uint8_t *p, size_t n, int *has_none, char *why, size_t whylen)
{
    if (n < 1)
        return RFB_NEED;
    uint8_t count = p[0];
    if (count == 0)
        return parse_refusal(p + 1, n - 1, why, whylen, "backend refused the connection");
    if (n < 1 + (size_t)count)
        return RFB_NEED;
    *has_none = 0;
    for (size_t i = 0; i < count; i++)
        if (p[1 + i] == RFB_SEC_NONE)
            *has_none = 1;
    return 1 + count;
}

int rfb_parse_sec_type33(const uint8_t *p, size_t n, uint32_t *type, char *why, size_t whylen)
{
    if (n < 4)
        return RFB_NEED;
    *type = rfb_get_u32(p);
    if (*type == 0)
        return parse_refusal(p + 4, n - 4, why, whylen, "backend refused the connection");
    return 4;
}

int rfb_parse_sec_result(const uint8_t *p, size_t n, int minor, uint32_t *status,
                         char *why, size_t whylen)
{
    if (n < 4)
        return RFB_NEED;
    *status = rfb_get_u32(p);
    if (*status == 0)
        return 4;
    if (minor < 8) {
        WHY("backend security failure %u", *status);
        return RFB_BAD;
    }
    return parse_refusal(p + 4, n - 4, why, whylen, "backend security failure");
}

/* U32 status, U32 length, reason without NUL: the reason cut to max bytes
 * and to what fits in cap (>= 8).  Returns the length. */
static size_t put_status_reason(uint8_t *out, size_t cap, uint32_t status, const char *reason,
                                size_t max)
{
    size_t rl = strnlen(reason, max);
    if (rl > cap - 8)
        rl = cap - 8;
    rfb_put_u32(out, status);
    rfb_put_u32(out + 4, (uint32_t)rl);
    memcpy(out + 8, reason, rl);
    return 8 + rl;
}

size_t rfb_put_sec_failure(uint8_t *out, size_t cap, int minor, const char *reason)
{
    if (cap < 4)
        return 0;
    if (minor < 8 || cap < 8) {
        rfb_put_u32(out, 1);
        return 4;
    }
    return put_status_reason(out, cap, 1, reason, RFB_REASON_MAX);
}

size_t rfb_put_sec33_failure(uint8_t *out, size_t cap, const char *reason)
{
    if (cap < 8)
        return 0;
    return put_status_reason(out, cap, 0, reason, SIZE_MAX);
}
