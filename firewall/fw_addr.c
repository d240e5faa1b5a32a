/* firewall/fw_addr.c — set elements as the kernel holds them: intervals.
 *
 * Addresses and prefixes are parsed and printed by common/addr.c (struct
 * addr_net); every address that vmgate writes into nft text has been
 * through addr_net_parse() and is printed back from binary by inet_ntop(). */
#include "firewall/fw_int.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>


/* ---- intervals ---- */

void fw_iv_from_net(const struct addr_net *n, struct fw_iv *iv)
{
    memset(iv, 0, sizeof *iv);
    iv->family = n->family;
    unsigned bits = addr_fam_bits(n->family);
    memcpy(iv->lo, n->a, sizeof iv->lo);
    memcpy(iv->hi, n->a, sizeof iv->hi);
    for (unsigned i = 0; i < bits / 8; i++)
        iv->hi[i] |= (uint8_t)~addr_net_bits(n->plen, i);
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
bool fw_iv_to_net(const struct fw_iv *iv, struct addr_net *n)
{
    if (iv->family != 4 && iv->family != 6)
        return false;
    unsigned bytes = addr_fam_bits(iv->family) / 8;
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
    struct addr_net n;
    if (fw_iv_to_net(iv, &n)) {
        addr_net_str(&n, out, cap);
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
