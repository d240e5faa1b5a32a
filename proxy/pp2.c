/* proxy/pp2.c — see pp2.h. */
#include "proxy/pp2.h"

#include <netinet/in.h>
#include <string.h>

static const uint8_t sig[PP2_SIG_LEN] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                          0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a };
static const char v1[] = "PROXY ";

static enum pp2_status bad(struct pp2_result *r, const char *why)
{
    r->why = why;
    return PP2_BAD;
}

static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

/* The TLVs in b[0..n): each type (1), length (2), value must fit. */
static bool tlvs_fit(const uint8_t *b, size_t n)
{
    size_t off = 0;
    while (off < n) {
        if (n - off < 3)
            return false;
        size_t l = be16(b + off + 1);
        if (l > n - off - 3)
            return false;
        off += 3 + l;
    }
    return true;
}

enum pp2_status pp2_parse(const uint8_t *b, size_t n, struct pp2_result *r)
{
    memset(r, 0, sizeof *r);
    if (n == 0) {
        r->need = PP2_HDR_MIN;
        return PP2_NEED;
    }
    size_t k = n < PP2_SIG_LEN ? n : PP2_SIG_LEN;
    if (memcmp(b, sig, k) != 0) {
        size_t m = n < sizeof v1 - 1 ? n : sizeof v1 - 1;
        if (m > 0 && memcmp(b, v1, m) == 0)
            return bad(r, "a PROXY v1 (text) header: only v2 is accepted (haproxy: send-proxy-v2)");
        return bad(r, "no PROXY v2 signature");
    }
    if (n < PP2_HDR_MIN) {
        r->need = PP2_HDR_MIN;
        return PP2_NEED;
    }
    unsigned ver = b[12] >> 4, cmd = b[12] & 0x0f;
    if (ver != 2)
        return bad(r, "PROXY header version is not 2");
    if (cmd > 1)
        return bad(r, "PROXY header command is neither LOCAL nor PROXY");
    size_t len = be16(b + 14);
    if (len > PP2_LEN_MAX)
        return bad(r, "PROXY header longer than 512 bytes");
    if (n < PP2_HDR_MIN + len) {
        r->need = PP2_HDR_MIN + len;
        return PP2_NEED;
    }
    const uint8_t *p = b + PP2_HDR_MIN;
    uint8_t fam = b[13];
    size_t alen;
    switch (fam) {
    case 0x00: alen = 0; break;                    /* UNSPEC */
    case 0x11: alen = 12; break;                   /* TCP over IPv4 */
    case 0x21: alen = 36; break;                   /* TCP over IPv6 */
    default:
        /* LOCAL may carry anything: the receiver ignores the block */
        if (cmd == 0) {
            alen = len;
            break;
        }
        return bad(r, "PROXY header family is not TCP over IPv4/IPv6 or UNSPEC");
    }
    if (alen > len)
        return bad(r, "PROXY header too short for its addresses");
    if (!tlvs_fit(p + alen, len - alen))
        return bad(r, "PROXY header TLV runs past the header");
    r->consumed = PP2_HDR_MIN + len;
    if (cmd == 0 || fam == 0x00) {
        r->local = true;
        return PP2_DONE;
    }
    if (fam == 0x11) {
        struct sockaddr_in *s = (struct sockaddr_in *)&r->src, *d = (struct sockaddr_in *)&r->dst;
        s->sin_family = d->sin_family = AF_INET;
        memcpy(&s->sin_addr, p, 4);
        memcpy(&d->sin_addr, p + 4, 4);
        memcpy(&s->sin_port, p + 8, 2);
        memcpy(&d->sin_port, p + 10, 2);
    } else {
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)&r->src,
                            *d = (struct sockaddr_in6 *)&r->dst;
        s->sin6_family = d->sin6_family = AF_INET6;
        memcpy(&s->sin6_addr, p, 16);
        memcpy(&d->sin6_addr, p + 16, 16);
        memcpy(&s->sin6_port, p + 32, 2);
        memcpy(&d->sin6_port, p + 34, 2);
    }
    return PP2_DONE;
}

bool pp2_looks_like(const uint8_t *b, size_t n)
{
    if (!b)
        return false;
    if (n >= 4 && memcmp(b, sig, n < PP2_SIG_LEN ? n : PP2_SIG_LEN) == 0)
        return true;
    return n >= sizeof v1 - 1 && memcmp(b, v1, sizeof v1 - 1) == 0;
}
