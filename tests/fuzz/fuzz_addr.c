// fuzz-sources: common/addr.c common/log.c
// fuzz-libs:
/* libFuzzer target: common/addr.c, every parser and printer.
 *
 * Input: the whole input is the text (an exact-size heap copy with the NUL
 * after it; an embedded NUL ends the string as it would in C).  The text
 * goes to every parser:
 *   - addr_ip_parse: differential against inet_pton(3) (AF_INET, then
 *     AF_INET6); an accepted address prints and parses back to the same
 *     bytes;
 *   - addr_net_parse with and without prefixes: result in range, host bits
 *     clear, an IPv4 result has zero bytes past a[3], printed text parses
 *     back to the same net with nothing to normalize; a refusal leaves a
 *     printable, NUL-terminated reason that fits its buffer;
 *   - addr_hostport_parse: host/port print (addr_hostport_str) and parse
 *     back the same, and the host builds a sockaddr whose text form parses
 *     back too;
 *   - addr_port_parse on the text, compared with a plain decimal reading;
 *   - addr_source_key: the key reads back as a /32 or /64 net;
 * and the first 16 bytes are also read as an IPv6 peer address
 * (addr_sockaddr_str / _port), whose text must parse back. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/addr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "check failed: %s (%s:%d)\n", #c, __FILE__, \
                                          __LINE__); abort(); } } while (0)

static bool printable(const char *s, size_t cap)
{
    size_t n = strnlen(s, cap);
    if (n == cap)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f)
            return false;
    return true;
}

static bool same_net(const struct addr_net *a, const struct addr_net *b)
{
    return a->family == b->family && a->plen == b->plen && memcmp(a->a, b->a, 16) == 0;
}

static void check_ip(const char *s)
{
    struct addr_net n;
    uint8_t bin[16];
    bool want = strlen(s) < ADDR_TEXT_MAX &&
                (inet_pton(AF_INET, s, bin) == 1 || inet_pton(AF_INET6, s, bin) == 1);
    int r = addr_ip_parse(s, &n);
    CHECK((r == 0) == want);
    if (r != 0)
        return;
    CHECK(n.family == 4 || n.family == 6);
    CHECK(n.plen == (n.family == 4 ? 32u : 128u));
    char t[ADDR_NET_MAX];
    addr_net_str(&n, t, sizeof t);
    struct addr_net m;
    CHECK(addr_ip_parse(t, &m) == 0 && same_net(&n, &m));
}

static void check_net(const char *s, bool allow_prefix)
{
    struct addr_net n;
    char err[160];
    memset(err, 0, sizeof err);
    if (addr_net_parse(s, allow_prefix, &n, err, sizeof err) != 0) {
        CHECK(err[0] != '\0' && printable(err, sizeof err));
        return;
    }
    unsigned bits = n.family == 4 ? 32u : 128u;
    CHECK(n.family == 4 || n.family == 6);
    CHECK(n.plen <= bits);
    CHECK(allow_prefix || n.plen == bits);
    for (unsigned i = n.family == 4 ? 4 : 16; i < 16; i++)
        CHECK(n.a[i] == 0);
    for (unsigned b = n.plen; b < bits; b++)
        CHECK(!(n.a[b / 8] & (0x80 >> (b % 8))));
    if (!strchr(s, '/') && !n.was_mapped) {
        struct addr_net ip;
        CHECK(addr_ip_parse(s, &ip) == 0 && same_net(&n, &ip));
    }
    char t[ADDR_NET_MAX];
    addr_net_str(&n, t, sizeof t);
    CHECK(strlen(t) + 1 < sizeof t);
    struct addr_net m;
    CHECK(addr_net_parse(t, true, &m, err, sizeof err) == 0);
    CHECK(same_net(&n, &m) && !m.had_host_bits && !m.was_mapped);
    CHECK(addr_net_cmp(&n, &m) == 0 && addr_net_contains(&n, &m) && addr_net_overlaps(&m, &n));
    if (addr_net_is_loopback(&n))
        CHECK(addr_net_touches_loopback(&n));
}

static void check_hostport(const char *s)
{
    char host[256], why[128];
    uint16_t port = 0;
    memset(why, 0, sizeof why);
    if (addr_hostport_parse(s, host, sizeof host, &port, why, sizeof why) != 0) {
        CHECK(why[0] != '\0' && printable(why, sizeof why));
        return;
    }
    CHECK(port >= 1);
    char t[ADDR_PORT_MAX];
    addr_hostport_str(host, port, t, sizeof t);
    CHECK(strlen(t) + 1 < sizeof t);
    char host2[256];
    uint16_t port2 = 0;
    CHECK(addr_hostport_parse(t, host2, sizeof host2, &port2, why, sizeof why) == 0);
    CHECK(strcmp(host, host2) == 0 && port == port2);
    struct sockaddr_storage ss;
    socklen_t len;
    CHECK(addr_host_sockaddr(host, port, &ss, &len) == 0);
    char u[ADDR_PORT_MAX];
    addr_sockaddr_str_port((struct sockaddr *)&ss, u, sizeof u);
    CHECK(addr_hostport_parse(u, host2, sizeof host2, &port2, why, sizeof why) == 0);
    CHECK(port2 == port);
}

static void check_port(const char *s)
{
    size_t n = strlen(s);
    uint16_t p = 0;
    int r = addr_port_parse(s, n, &p);
    bool digits = n >= 1 && n <= 5 && strspn(s, "0123456789") == n;
    unsigned long v = digits ? strtoul(s, NULL, 10) : 0;
    CHECK((r == 0) == (digits && v >= 1 && v <= 65535));
    if (r == 0)
        CHECK(p == v);
}

static void check_key(const char *s)
{
    char key[ADDR_KEY_MAX];
    if (addr_source_key(s, key, sizeof key) != 0)
        return;
    struct addr_net n;
    CHECK(addr_net_parse(key, true, &n, NULL, 0) == 0);
    CHECK(n.plen == (n.family == 4 ? 32u : 64u) && !n.had_host_bits);
    char again[ADDR_KEY_MAX];
    if (n.family == 4) {
        CHECK(addr_source_key(key, again, sizeof again) == 0 && strcmp(key, again) == 0);
    }
}

static void check_peer(const uint8_t *data, size_t size)
{
    if (size < 16)
        return;
    struct sockaddr_in6 s6;
    memset(&s6, 0, sizeof s6);
    s6.sin6_family = AF_INET6;
    memcpy(&s6.sin6_addr, data, 16);
    s6.sin6_port = htons(5900);
    char t[ADDR_TEXT_MAX], u[ADDR_PORT_MAX];
    addr_sockaddr_str((struct sockaddr *)&s6, t, sizeof t);
    struct addr_net n;
    CHECK(addr_ip_parse(t, &n) == 0);
    if (IN6_IS_ADDR_V4MAPPED(&s6.sin6_addr))
        CHECK(n.family == 4 && memcmp(n.a, data + 12, 4) == 0);
    else
        CHECK(n.family == 6 && memcmp(n.a, data, 16) == 0);
    addr_sockaddr_str_port((struct sockaddr *)&s6, u, sizeof u);
    char host[64];
    uint16_t port;
    CHECK(addr_hostport_parse(u, host, sizeof host, &port, NULL, 0) == 0 && port == 5900);
    CHECK(strcmp(host, t) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *s = malloc(size + 1);
    CHECK(s != NULL);
    memcpy(s, data, size);
    s[size] = '\0';
    check_ip(s);
    check_net(s, false);
    check_net(s, true);
    check_hostport(s);
    check_port(s);
    check_key(s);
    check_peer(data, size);
    free(s);
    return 0;
}
