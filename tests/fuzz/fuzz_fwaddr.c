// fuzz-sources: firewall/fw_addr.c common/addr.c common/log.c
// fuzz-libs:
/* tests/fuzz/fuzz_fwaddr.c — address and prefix parsing of the firewall
 * (firewall/fw_addr.c).  Addresses come from the config's allow list, from
 * `vmgate firewall ban ADDR` and from peers' source addresses; whatever
 * addr_net_parse() accepts is printed back into nft text, so its output must
 * be an address and nothing else.
 *
 * Input: byte 0 is flags (bit 0: allow a prefix for the first string; the
 * rest picks the error buffer size, 0..127); the rest is two strings
 * separated by the first '\n' (each gets its own exact-size heap copy).
 * Oracle, for every string that parses:
 *   - family 4 or 6, plen within the family, no host bits left set;
 *   - addr_net_str() prints only [0-9a-f.:/] and parses back (with prefix
 *     allowed) to the same net, without host bits and not as "mapped";
 *   - fw_iv_from_net() -> fw_iv_to_net() gives the net back, and
 *     fw_iv_str() prints the same as addr_net_str();
 *   - contains() is reflexive; for two nets, contains/overlaps agree with
 *     the interval forms, overlaps is symmetric, fw_net_cmp is antisymmetric;
 *   - is_loopback implies touches_loopback.
 * On failure the reason is NUL-terminated in the exact-size buffer and
 * log_shown() output is at most 67 printable bytes. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/addr.h"
#include "common/log.h"
#include "firewall/fw_int.h"

#define FUZZ_CHECK(c) do { if (!(c)) { fprintf(stderr, "check failed: %s (%s:%d)\n", #c, \
                                                       __FILE__, __LINE__); abort(); } } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool parse(const char *s, size_t len, bool allow_prefix, size_t errlen, struct addr_net *n)
{
    char *copy = malloc(len + 1);
    char *err = malloc(errlen ? errlen : 1);
    FUZZ_CHECK(copy != NULL && err != NULL);
    memcpy(copy, s, len);
    copy[len] = '\0';
    int r = addr_net_parse(copy, allow_prefix, n, errlen ? err : NULL, errlen);
    FUZZ_CHECK(r == 0 || r == -1);
    if (r < 0 && errlen)
        FUZZ_CHECK(memchr(err, '\0', errlen) != NULL);
    char shown[68];
    const char *sh = log_shown(copy, shown, sizeof shown);
    FUZZ_CHECK(strlen(sh) <= 67);
    for (const char *p = sh; *p; p++)
        FUZZ_CHECK(*p >= 0x20 && *p < 0x7f);
    free(err);
    free(copy);
    if (r < 0)
        return false;

    unsigned bits = n->family == 4 ? 32 : 128;
    FUZZ_CHECK(n->family == 4 || n->family == 6);
    FUZZ_CHECK(n->plen <= bits);
    if (!allow_prefix)
        FUZZ_CHECK(n->plen == bits);
    for (unsigned i = 0; i < 128; i++)
        if (i >= n->plen)
            FUZZ_CHECK(((n->a[i / 8] >> (7 - i % 8)) & 1) == 0);

    char out[64];
    addr_net_str(n, out, sizeof out);
    FUZZ_CHECK(out[0] != '\0' && strspn(out, "0123456789abcdef.:/") == strlen(out));
    struct addr_net back;
    char e2[160];
    FUZZ_CHECK(addr_net_parse(out, true, &back, e2, sizeof e2) == 0);
    FUZZ_CHECK(addr_net_cmp(&back, n) == 0 && !back.had_host_bits && !back.was_mapped);

    struct fw_iv iv;
    struct addr_net from_iv;
    fw_iv_from_net(n, &iv);
    FUZZ_CHECK(fw_iv_to_net(&iv, &from_iv) && addr_net_cmp(&from_iv, n) == 0);
    char ivs[128];
    fw_iv_str(&iv, ivs, sizeof ivs);
    FUZZ_CHECK(strcmp(ivs, out) == 0);

    FUZZ_CHECK(addr_net_contains(n, n) && addr_net_overlaps(n, n));
    if (addr_net_is_loopback(n))
        FUZZ_CHECK(addr_net_touches_loopback(n));
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    bool allow_prefix = data[0] & 1;
    size_t errlen = (size_t)(data[0] >> 1);
    const char *s = (const char *)data + 1;
    size_t n = size - 1;
    const char *nl = memchr(s, '\n', n);
    size_t la = nl ? (size_t)(nl - s) : n;
    struct addr_net a, b;
    bool oka = parse(s, la, allow_prefix, errlen, &a);
    bool okb = nl && parse(nl + 1, n - la - 1, true, errlen, &b);
    if (oka && okb) {
        struct fw_iv ia, ib;
        fw_iv_from_net(&a, &ia);
        fw_iv_from_net(&b, &ib);
        FUZZ_CHECK(addr_net_contains(&a, &b) == fw_iv_contains(&ia, &ib));
        FUZZ_CHECK(addr_net_overlaps(&a, &b) == addr_net_overlaps(&b, &a));
        FUZZ_CHECK(addr_net_overlaps(&a, &b) == fw_iv_overlaps(&ia, &ib));
        FUZZ_CHECK(addr_net_cmp(&a, &b) == -addr_net_cmp(&b, &a));
        FUZZ_CHECK((addr_net_cmp(&a, &b) == 0) == fw_iv_equal(&ia, &ib));
    }
    return 0;
}
