/* proxy/rfb.c — see rfb.h.  Pure functions: no I/O, no allocation. */
#include "proxy/rfb.h"

#include <stdio.h>
#include <string.h>

#define WHY(...) do { if (why && whylen) snprintf(why, whylen, __VA_ARGS__); } while (0)

/* Split "RFB xxx.yyy\n" into major/minor.  Returns 12, RFB_NEED or RFB_BAD. */
static int parse_version(const uint8_t *p, size_t n, int *major, int *minor,
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
    *major = (p[4] - '0') * 100 + (p[5] - '0') * 10 + (p[6] - '0');
    *minor = (p[8] - '0') * 100 + (p[9] - '0') * 10 + (p[10] - '0');
    return RFB_VERSION_LEN;
}

int rfb_parse_client_version(const uint8_t *p, size_t n, int *minor, char *why, size_t whylen)
{
    int maj, min;
    int r = parse_version(p, n, &maj, &min, why, whylen);
    if (r <= 0)
        return r;
    if (maj != 3) {
        WHY("unsupported RFB version %03d.%03d", maj, min);
        return RFB_BAD;
    }
    if (min < 3) {
        WHY("unsupported RFB version %03d.%03d", maj, min);
        return RFB_BAD;
    }
    if (min < 7 || min == 889)
        *minor = 3;
    else if (min == 7)
        *minor = 7;
    else
        *minor = 8;
    return r;
}

int rfb_parse_server_version(const uint8_t *p, size_t n, int *minor, char *why, size_t whylen)
{
    int maj, min;
    int r = parse_version(p, n, &maj, &min, why, whylen);
    if (r <= 0)
        return r;
    if (maj != 3 || min < 3) {
        WHY("backend speaks unsupported RFB version %03d.%03d", maj, min);
        return RFB_BAD;
    }
    *minor = (min >= 8 && min != 889) ? 8 : (min == 7 ? 7 : 3);
    return r;
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

/* Read a U32 length + reason string at p (n bytes) into why, refusing
 * lengths over RFB_REASON_MAX.  Returns bytes used, RFB_NEED or RFB_BAD. */
static int parse_reason(const uint8_t *p, size_t n, char *why, size_t whylen, const char *what)
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
    return (int)(4 + len);
}

int rfb_parse_sec_types(const uint8_t *p, size_t n, int *has_none, char *why, size_t whylen)
{
    if (n < 1)
        return RFB_NEED;
    uint8_t count = p[0];
    if (count == 0) {
        int r = parse_reason(p + 1, n - 1, why, whylen, "backend refused the connection");
        return r == RFB_NEED ? RFB_NEED : RFB_BAD;
    }
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
    if (*type == 0) {
        int r = parse_reason(p + 4, n - 4, why, whylen, "backend refused the connection");
        return r == RFB_NEED ? RFB_NEED : RFB_BAD;
    }
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
    int r = parse_reason(p + 4, n - 4, why, whylen, "backend security failure");
    return r == RFB_NEED ? RFB_NEED : RFB_BAD;
}

size_t rfb_put_sec_failure(uint8_t *out, size_t cap, int minor, const char *reason)
{
    size_t rl = strlen(reason);
    if (rl > RFB_REASON_MAX)
        rl = RFB_REASON_MAX;
    if (cap < 4)
        return 0;
    rfb_put_u32(out, 1);
    if (minor < 8 || cap < 8)
        return 4;
    if (cap < 8 + rl)
        rl = cap - 8;
    rfb_put_u32(out + 4, (uint32_t)rl);
    memcpy(out + 8, reason, rl);
    return 8 + rl;
}

size_t rfb_put_sec33_failure(uint8_t *out, size_t cap, const char *reason)
{
    size_t rl = strlen(reason);
    if (cap < 8)
        return 0;
    if (cap < 8 + rl)
        rl = cap - 8;
    rfb_put_u32(out, 0);
    rfb_put_u32(out + 4, (uint32_t)rl);
    memcpy(out + 8, reason, rl);
    return 8 + rl;
}
