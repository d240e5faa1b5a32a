/* common/addr.c — see addr.h.
 *
 * Every address vmgate writes (nft text, log lines, the printed config) is
 * printed back from binary by inet_ntop(), so no input text is ever passed
 * through: nft never sees a string it might resolve as a host name (nft
 * 1.0.6 does that for anything that is not an address) and no input can
 * inject syntax. */
#include "common/addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"

static void set_why(char *why, size_t whylen, const char *msg)
{
    if (why && whylen)
        snprintf(why, whylen, "%s", msg);
}

unsigned addr_fam_bits(int family)
{
    return family == 4 ? 32u : 128u;
}

uint8_t addr_net_bits(unsigned plen, unsigned i)
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
        uint8_t keep = addr_net_bits(plen, i);
        if (a[i] & ~keep)
            had = true;
        a[i] &= keep;
    }
    return had;
}

static const uint8_t mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF };

/* Exactly inet_pton(3) for AF_INET, then AF_INET6; the text must be shorter
 * than ADDR_TEXT_MAX (no address text is longer). */
int addr_ip_parse(const char *s, struct addr_net *n)
{
    memset(n, 0, sizeof *n);
    if (!s || !*s || strnlen(s, ADDR_TEXT_MAX) >= ADDR_TEXT_MAX)
        return -1;
    if (inet_pton(AF_INET, s, n->a) == 1) {
        n->family = 4;
        n->plen = 32;
        return 0;
    }
    if (inet_pton(AF_INET6, s, n->a) == 1) {
        n->family = 6;
        n->plen = 128;
        return 0;
    }
    memset(n, 0, sizeof *n);
    return -1;
}

/* Accepts addr_ip_parse()'s addresses, optionally followed by "/LEN" with
 * LEN in decimal, at most three digits, no sign and no leading zero.  The
 * messages are the firewall's (vmgate firewall ban/allow print them). */
int addr_net_parse(const char *s, bool allow_prefix, struct addr_net *n, char *err, size_t errlen)
{
    char shown[72];
    char addr[ADDR_TEXT_MAX];
    memset(n, 0, sizeof *n);
    if (!err)
        errlen = 0;
    if (!s || !*s) {
        set_why(err, errlen, "empty address");
        return -1;
    }
    const char *slash = strchr(s, '/');
    size_t alen = slash ? (size_t)(slash - s) : strlen(s);
    if (alen == 0 || alen >= sizeof addr) {
        if (errlen)
            snprintf(err, errlen, "\"%s\" is not an IPv4 or IPv6 address",
                     log_shown(s, shown, sizeof shown));
        return -1;
    }
    memcpy(addr, s, alen);
    addr[alen] = '\0';
    if (addr_ip_parse(addr, n) < 0) {
        if (errlen)
            snprintf(err, errlen,
                     "\"%s\" is not an IPv4 or IPv6 address (host names are not accepted)",
                     log_shown(s, shown, sizeof shown));
        return -1;
    }
    unsigned bits = addr_fam_bits(n->family);
    if (slash) {
        const char *ps = slash + 1;
        size_t pl = strlen(ps);
        if (!allow_prefix) {
            if (errlen)
                snprintf(err, errlen, "\"%s\": a single address is expected here, not a prefix",
                         log_shown(s, shown, sizeof shown));
            return -1;
        }
        bool digits = pl >= 1 && pl <= 3 && !(pl > 1 && ps[0] == '0');
        for (size_t i = 0; digits && i < pl; i++)
            digits = ps[i] >= '0' && ps[i] <= '9';
        if (!digits) {
            if (errlen)
                snprintf(err, errlen, "\"%s\": the prefix length after '/' must be a number 0-%u",
                         log_shown(s, shown, sizeof shown), bits);
            return -1;
        }
        unsigned v = 0;
        for (size_t i = 0; i < pl; i++)
            v = v * 10 + (unsigned)(ps[i] - '0');
        if (v > bits) {
            if (errlen)
                snprintf(err, errlen, "\"%s\": prefix /%u is longer than an %s address (/%u at most)",
                         log_shown(s, shown, sizeof shown), v, n->family == 4 ? "IPv4" : "IPv6",
                         bits);
            return -1;
        }
        n->plen = v;
    }
    if (n->family == 6 && memcmp(n->a, mapped_prefix, sizeof mapped_prefix) == 0 && n->plen >= 96) {
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
    } else if (n->family == 6 && memcmp(n->a, mapped_prefix, sizeof mapped_prefix) == 0 &&
               n->plen > 0) {
        if (errlen)
            snprintf(err, errlen, "\"%s\": write IPv4-mapped ranges in IPv4 form",
                     log_shown(s, shown, sizeof shown));
        memset(n, 0, sizeof *n);
        return -1;
    }
    n->had_host_bits = mask_host(n->a, n->plen, bits);
    return 0;
}

void addr_net_str(const struct addr_net *n, char *out, size_t cap)
{
    char a[ADDR_TEXT_MAX];
    if (!out || cap == 0)
        return;
    if (!inet_ntop(n->family == 4 ? AF_INET : AF_INET6, n->a, a, sizeof a))
        snprintf(a, sizeof a, "?");
    if (n->plen == addr_fam_bits(n->family))
        snprintf(out, cap, "%s", a);
    else
        snprintf(out, cap, "%s/%u", a, n->plen);
}

bool addr_net_contains(const struct addr_net *outer, const struct addr_net *inner)
{
    if (outer->family != inner->family || outer->plen > inner->plen)
        return false;
    uint8_t t[16];
    memcpy(t, inner->a, sizeof t);
    mask_host(t, outer->plen, addr_fam_bits(outer->family));
    return memcmp(t, outer->a, addr_fam_bits(outer->family) / 8) == 0;
}

bool addr_net_overlaps(const struct addr_net *a, const struct addr_net *b)
{
    return addr_net_contains(a, b) || addr_net_contains(b, a);
}

static const struct addr_net lo4 = { .family = 4, .a = { 127 }, .plen = 8 };
static const struct addr_net lo6 = { .family = 6, .a = { [15] = 1 }, .plen = 128 };

bool addr_net_is_loopback(const struct addr_net *n)
{
    return addr_net_contains(&lo4, n) || addr_net_contains(&lo6, n);
}

bool addr_net_touches_loopback(const struct addr_net *n)
{
    return addr_net_overlaps(&lo4, n) || addr_net_overlaps(&lo6, n);
}

bool addr_net_is_unspecified(const struct addr_net *n)
{
    static const uint8_t zero[16];
    return n->plen == addr_fam_bits(n->family) && memcmp(n->a, zero, sizeof zero) == 0;
}

int addr_net_cmp(const struct addr_net *a, const struct addr_net *b)
{
    if (a->family != b->family)
        return a->family < b->family ? -1 : 1;
    int c = memcmp(a->a, b->a, sizeof a->a);
    if (c)
        return c < 0 ? -1 : 1;
    return a->plen < b->plen ? -1 : a->plen > b->plen;
}

/* ---- ports, HOST:PORT ---- */

/* Five digits at most, so "000005900" is refused even though its value fits. */
int addr_port_parse(const char *s, size_t n, uint16_t *out)
{
    if (!s || n == 0 || n > 5)
        return -1;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v < 1 || v > 65535)
        return -1;
    *out = (uint16_t)v;
    return 0;
}

/* Accepts "A.B.C.D:PORT", "localhost:PORT", "[IPv6]:PORT" (see addr.h).
 * The host is checked before the port, so "UNIX:/x" is a bad host. */
int addr_hostport_parse(const char *s, char *host, size_t hostcap, uint16_t *port, char *why,
                        size_t whylen)
{
    if (!s || !*s) {
        set_why(why, whylen, "empty address");
        return -1;
    }
    const char *h = s, *h_end, *p;
    bool bracket = s[0] == '[';
    if (bracket) {
        h = s + 1;
        h_end = strchr(h, ']');
        if (!h_end) {
            set_why(why, whylen, "missing \"]\" after IPv6 address");
            return -1;
        }
        if (h_end[1] != ':') {
            set_why(why, whylen, "missing port (use [IPv6]:PORT)");
            return -1;
        }
        p = h_end + 2;
    } else {
        h_end = strrchr(s, ':');
        if (!h_end) {
            set_why(why, whylen, "missing port (use HOST:PORT)");
            return -1;
        }
        if (memchr(s, ':', (size_t)(h_end - s))) {
            set_why(why, whylen, "IPv6 address must be in brackets, e.g. [::1]:5902");
            return -1;
        }
        p = h_end + 1;
    }
    size_t hlen = (size_t)(h_end - h);
    if (hlen == 0) {
        set_why(why, whylen, "missing host");
        return -1;
    }
    char tmp[ADDR_TEXT_MAX];
    struct addr_net n;
    bool ok = hlen < sizeof tmp;
    if (ok) {
        memcpy(tmp, h, hlen);
        tmp[hlen] = '\0';
        ok = bracket ? addr_ip_parse(tmp, &n) == 0 && n.family == 6
                     : strcmp(tmp, "localhost") == 0 ||
                       (addr_ip_parse(tmp, &n) == 0 && n.family == 4);
    }
    if (!ok) {
        set_why(why, whylen, bracket ? "bad IPv6 address"
                : "host must be a numeric IPv4 address, localhost, or [IPv6]");
        return -1;
    }
    if (hlen >= hostcap) {
        set_why(why, whylen, "host too long");
        return -1;
    }
    uint16_t pv;
    if (addr_port_parse(p, strlen(p), &pv) < 0) {
        set_why(why, whylen, "bad port (use 1..65535)");
        return -1;
    }
    memcpy(host, tmp, hlen + 1);
    *port = pv;
    return 0;
}

int addr_host_ip(const char *host, struct addr_net *n)
{
    if (host && strcmp(host, "localhost") == 0)
        return addr_ip_parse("127.0.0.1", n);
    return addr_ip_parse(host, n);
}

void addr_hostport_str(const char *host, unsigned port, char *out, size_t cap)
{
    if (!out || cap == 0)
        return;
    if (strchr(host, ':'))
        snprintf(out, cap, "[%s]:%u", host, port);
    else
        snprintf(out, cap, "%s:%u", host, port);
}

/* ---- sockaddrs ---- */

int addr_sockaddr(const struct addr_net *n, uint16_t port, struct sockaddr_storage *ss,
                  socklen_t *len)
{
    memset(ss, 0, sizeof *ss);
    if (n->family == 4 && n->plen == 32) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        memcpy(&s4->sin_addr, n->a, 4);
        *len = sizeof *s4;
        return 0;
    }
    if (n->family == 6 && n->plen == 128) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        memcpy(&s6->sin6_addr, n->a, 16);
        *len = sizeof *s6;
        return 0;
    }
    return -1;
}

int addr_host_sockaddr(const char *host, uint16_t port, struct sockaddr_storage *ss,
                       socklen_t *len)
{
    struct addr_net n;
    if (addr_host_ip(host, &n) < 0)
        return -1;
    return addr_sockaddr(&n, port, ss, len);
}

/* The family and address bytes of an IP sockaddr, IPv4-mapped taken as
 * IPv4; 0 for anything else. */
static int sa_addr(const struct sockaddr *sa, const void **bin, uint16_t *port)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        *bin = &s4->sin_addr;
        *port = ntohs(s4->sin_port);
        return AF_INET;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        *port = ntohs(s6->sin6_port);
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
            *bin = &s6->sin6_addr.s6_addr[12];
            return AF_INET;
        }
        *bin = &s6->sin6_addr;
        return AF_INET6;
    }
    return 0;
}

/* The peer's address as text, with its port when with_port ("local" for
 * anything that is not IP). */
static void sockaddr_text(const struct sockaddr *sa, bool with_port, char *out, size_t cap)
{
    const void *bin;
    uint16_t port;
    char a[ADDR_TEXT_MAX];
    if (!out || cap == 0)
        return;
    int fam = sa ? sa_addr(sa, &bin, &port) : 0;
    if (fam == 0 || !inet_ntop(fam, bin, a, sizeof a))
        snprintf(out, cap, "local");
    else if (with_port)
        addr_hostport_str(a, port, out, cap);
    else
        snprintf(out, cap, "%s", a);
}

void addr_sockaddr_str(const struct sockaddr *sa, char *out, size_t cap)
{
    sockaddr_text(sa, false, out, cap);
}

void addr_sockaddr_str_port(const struct sockaddr *sa, char *out, size_t cap)
{
    sockaddr_text(sa, true, out, cap);
}

/* ---- the source key ---- */

int addr_source_key(const char *addr, char *key, size_t keylen)
{
    struct addr_net n;
    if (!key || keylen == 0 || addr_net_parse(addr, false, &n, NULL, 0) != 0)
        return -1;
    if (n.family == 6) {
        memset(n.a + 8, 0, 8);
        n.plen = 64;
    }
    char tmp[ADDR_NET_MAX];
    addr_net_str(&n, tmp, sizeof tmp);
    if (strlen(tmp) >= keylen)
        return -1;
    memcpy(key, tmp, strlen(tmp) + 1);
    return 0;
}
