/* firewall/fw_addr.c — addresses, prefixes and set intervals.
 *
 * Every address that vmgate writes into nft text has been through
 * fw_net_parse() and is printed back from binary by inet_ntop(), so nft
 * never sees a string it might resolve as a host name (nft 1.0.6 does that
 * for anything that is not an address) and no input can inject syntax. */
#include "firewall/fw_int.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"

const char *fw_shown(const char *s, char *buf, size_t cap)
{
    if (!s)
        s = "";
    size_t n = strlen(s);
    if (cap > 68)
        cap = 68;       /* quote at most 64 bytes and "..." */
    if (n + 1 > cap && cap >= 4) {
        log_safe(buf, cap - 3, s, n);
        strcat(buf, "...");
        return buf;
    }
    return log_safe(buf, cap, s, n);
}

static unsigned fam_bits(int family)
{
    return family == 4 ? 32u : 128u;
}

/* The network bits of byte i of an address with prefix length plen. */
static uint8_t net_bits(unsigned plen, unsigned i)
{
    if (plen >= (i + 1) * 8)
        return 0xFF;
    if (plen <= i * 8)
        return 0x00;
    return (uint8_t)(0xFF << (8 - (plen - i * 8)));
}

/* Clear the bits of a[] past plen; returns whether any was set. */
static bool mask_host(uint8_t *a, unsigned plen, unsigned bits)
{
    bool had = false;
    for (unsigned i = 0; i < bits / 8; i++) {
        uint8_t keep = net_bits(plen, i);
        if (a[i] & ~keep)
            had = true;
        a[i] &= keep;
    }
    return had;
}

/* Accepts exactly what inet_pton(3) accepts for AF_INET (dotted quad) and
 * AF_INET6, optionally followed by "/LEN" with LEN in decimal, at most
 * three digits, no sign and no leading zero.  Rejects host names, zone ids
 * ("fe80::1%eth0"), brackets, spaces and prefixes longer than the family. */
int fw_net_parse(const char *s, bool allow_prefix, struct fw_net *n, char *err, size_t errlen)
{
    char shown[72];
    char addr[INET6_ADDRSTRLEN + 1];
    memset(n, 0, sizeof *n);
    if (!s || !*s) {
        snprintf(err, errlen, "empty address");
        return -1;
    }
    const char *slash = strchr(s, '/');
    size_t alen = slash ? (size_t)(slash - s) : strlen(s);
    if (alen == 0 || alen >= sizeof addr) {
        snprintf(err, errlen, "\"%s\" is not an IPv4 or IPv6 address",
                 fw_shown(s, shown, sizeof shown));
        return -1;
    }
    memcpy(addr, s, alen);
    addr[alen] = '\0';
    if (inet_pton(AF_INET, addr, n->a) == 1) {
        n->family = 4;
    } else if (inet_pton(AF_INET6, addr, n->a) == 1) {
        n->family = 6;
    } else {
        snprintf(err, errlen, "\"%s\" is not an IPv4 or IPv6 address (host names are not accepted)",
                 fw_shown(s, shown, sizeof shown));
        return -1;
    }
    unsigned bits = fam_bits(n->family);
    n->plen = bits;
    if (slash) {
        const char *ps = slash + 1;
        size_t pl = strlen(ps);
        if (!allow_prefix) {
            snprintf(err, errlen, "\"%s\": a single address is expected here, not a prefix",
                     fw_shown(s, shown, sizeof shown));
            return -1;
        }
        bool digits = pl >= 1 && pl <= 3 && !(pl > 1 && ps[0] == '0');
        for (size_t i = 0; digits && i < pl; i++)
            digits = ps[i] >= '0' && ps[i] <= '9';
        if (!digits) {
            snprintf(err, errlen, "\"%s\": the prefix length after '/' must be a number 0-%u",
                     fw_shown(s, shown, sizeof shown), bits);
            return -1;
        }
        unsigned v = 0;
        for (size_t i = 0; i < pl; i++)
            v = v * 10 + (unsigned)(ps[i] - '0');
        if (v > bits) {
            snprintf(err, errlen, "\"%s\": prefix /%u is longer than an %s address (/%u at most)",
                     fw_shown(s, shown, sizeof shown), v, n->family == 4 ? "IPv4" : "IPv6", bits);
            return -1;
        }
        n->plen = v;
    }
    static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF };
    if (n->family == 6 && memcmp(n->a, mapped, sizeof mapped) == 0 && n->plen >= 96) {
        /* What a dual-stack listener reports for an IPv4 peer: the packet
         * the firewall sees is IPv4, so the element must be too. */
        uint8_t v4[4];
        memcpy(v4, n->a + 12, 4);
        memset(n->a, 0, sizeof n->a);
        memcpy(n->a, v4, 4);
        n->family = 4;
        n->plen -= 96;
        n->was_mapped = true;
        bits = 32;
    } else if (n->family == 6 && memcmp(n->a, mapped, sizeof mapped) == 0 && n->plen > 0) {
        snprintf(err, errlen, "\"%s\": write IPv4-mapped ranges in IPv4 form",
                 fw_shown(s, shown, sizeof shown));
        return -1;
    }
    n->had_host_bits = mask_host(n->a, n->plen, bits);
    return 0;
}

void fw_net_str(const struct fw_net *n, char *out, size_t cap)
{
    char a[INET6_ADDRSTRLEN];
    if (!inet_ntop(n->family == 4 ? AF_INET : AF_INET6, n->a, a, sizeof a))
        snprintf(a, sizeof a, "?");
    if (n->plen == fam_bits(n->family))
        snprintf(out, cap, "%s", a);
    else
        snprintf(out, cap, "%s/%u", a, n->plen);
}

bool fw_net_contains(const struct fw_net *outer, const struct fw_net *inner)
{
    if (outer->family != inner->family || outer->plen > inner->plen)
        return false;
    uint8_t t[16];
    memcpy(t, inner->a, sizeof t);
    mask_host(t, outer->plen, fam_bits(outer->family));
    return memcmp(t, outer->a, fam_bits(outer->family) / 8) == 0;
}

bool fw_net_overlaps(const struct fw_net *a, const struct fw_net *b)
{
    return fw_net_contains(a, b) || fw_net_contains(b, a);
}

static const struct fw_net lo4 = { .family = 4, .a = { 127 }, .plen = 8 };
static const struct fw_net lo6 = { .family = 6, .a = { [15] = 1 }, .plen = 128 };

bool fw_net_is_loopback(const struct fw_net *n)
{
    return fw_net_contains(&lo4, n) || fw_net_contains(&lo6, n);
}

bool fw_net_touches_loopback(const struct fw_net *n)
{
    return fw_net_overlaps(&lo4, n) || fw_net_overlaps(&lo6, n);
}

bool fw_net_is_unspecified(const struct fw_net *n)
{
    static const uint8_t zero[16];
    return n->plen == fam_bits(n->family) && memcmp(n->a, zero, sizeof zero) == 0;
}

int fw_net_cmp(const struct fw_net *a, const struct fw_net *b)
{
    if (a->family != b->family)
        return a->family < b->family ? -1 : 1;
    int c = memcmp(a->a, b->a, sizeof a->a);
    if (c)
        return c < 0 ? -1 : 1;
    return a->plen < b->plen ? -1 : a->plen > b->plen;
}

/* ---- intervals ---- */

void fw_iv_from_net(const struct fw_net *n, struct fw_iv *iv)
{
    memset(iv, 0, sizeof *iv);
    iv->family = n->family;
    unsigned bits = fam_bits(n->family);
    memcpy(iv->lo, n->a, sizeof iv->lo);
    memcpy(iv->hi, n->a, sizeof iv->hi);
    for (unsigned i = 0; i < bits / 8; i++)
        iv->hi[i] |= (uint8_t)~net_bits(n->plen, i);
}

void fw_iv_from_port(unsigned lo, unsigned hi, struct fw_iv *iv)
{
    memset(iv, 0, sizeof *iv);
    iv->lo[14] = (uint8_t)(lo >> 8);
    iv->lo[15] = (uint8_t)lo;
    iv->hi[14] = (uint8_t)(hi >> 8);
    iv->hi[15] = (uint8_t)hi;
}

/* An interval is a prefix when lo^hi is a run of trailing ones, lo has
 * zeros there and hi has ones there. */
bool fw_iv_to_net(const struct fw_iv *iv, struct fw_net *n)
{
    if (iv->family != 4 && iv->family != 6)
        return false;
    unsigned bytes = fam_bits(iv->family) / 8;
    unsigned plen = 0;
    bool in_host = false;
    for (unsigned i = 0; i < bytes; i++) {
        uint8_t x = (uint8_t)(iv->lo[i] ^ iv->hi[i]);
        if ((iv->lo[i] & x) != 0 || (iv->hi[i] & x) != x)
            return false;
        for (int b = 7; b >= 0; b--) {
            bool one = (x >> b) & 1;
            if (one)
                in_host = true;
            else if (in_host)
                return false;
            else
                plen++;
        }
    }
    memset(n, 0, sizeof *n);
    n->family = iv->family;
    memcpy(n->a, iv->lo, sizeof n->a);
    n->plen = plen;
    return true;
}

void fw_iv_str(const struct fw_iv *iv, char *out, size_t cap)
{
    if (iv->family == 0) {
        unsigned lo = (unsigned)iv->lo[14] << 8 | iv->lo[15];
        unsigned hi = (unsigned)iv->hi[14] << 8 | iv->hi[15];
        if (lo == hi)
            snprintf(out, cap, "%u", lo);
        else
            snprintf(out, cap, "%u-%u", lo, hi);
        return;
    }
    struct fw_net n;
    if (fw_iv_to_net(iv, &n)) {
        fw_net_str(&n, out, cap);
        return;
    }
    char a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];
    int af = iv->family == 4 ? AF_INET : AF_INET6;
    if (!inet_ntop(af, iv->lo, a, sizeof a))
        snprintf(a, sizeof a, "?");
    if (!inet_ntop(af, iv->hi, b, sizeof b))
        snprintf(b, sizeof b, "?");
    snprintf(out, cap, "%s-%s", a, b);
}

int fw_iv_cmp(const struct fw_iv *a, const struct fw_iv *b)
{
    if (a->family != b->family)
        return a->family < b->family ? -1 : 1;
    int c = memcmp(a->lo, b->lo, sizeof a->lo);
    if (!c)
        c = memcmp(a->hi, b->hi, sizeof a->hi);
    return c < 0 ? -1 : c > 0;
}

bool fw_iv_overlaps(const struct fw_iv *a, const struct fw_iv *b)
{
    return a->family == b->family && memcmp(a->hi, b->lo, 16) >= 0 &&
           memcmp(b->hi, a->lo, 16) >= 0;
}

bool fw_iv_contains(const struct fw_iv *outer, const struct fw_iv *inner)
{
    return outer->family == inner->family && memcmp(outer->lo, inner->lo, 16) <= 0 &&
           memcmp(inner->hi, outer->hi, 16) <= 0;
}

bool fw_iv_equal(const struct fw_iv *a, const struct fw_iv *b)
{
    return a->family == b->family && memcmp(a->lo, b->lo, 16) == 0 &&
           memcmp(a->hi, b->hi, 16) == 0;
}
