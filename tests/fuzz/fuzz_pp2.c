// fuzz-sources: proxy/pp2.c
/* libFuzzer target: proxy/pp2.c, the PROXY protocol v2 header parser.
 *
 * Input: the first bytes of a connection from a balancer.  Oracle: the
 * parser is fed the way the core feeds it (each prefix the parser asks for,
 * copied into a buffer of exactly that size so ASan sees any read past it)
 * and in one piece; both end the same way (same status, same consumed, same
 * local flag and source); NEED always asks for more than it has and at most
 * PP2_TOTAL_MAX; DONE consumes at most the input and at least 16 bytes;
 * every prefix of a refused input is refused or needs more, never DONE. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/pp2.h"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "check failed: %s\n", #c); abort(); } } while (0)

static enum pp2_status run(const uint8_t *d, size_t n, size_t have, struct pp2_result *r)
{
    uint8_t *b = malloc(have ? have : 1);
    CHECK(b);
    memcpy(b, d, have);
    enum pp2_status st = pp2_parse(b, have, r);
    free(b);
    return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    struct pp2_result whole, step;
    enum pp2_status sw = run(d, n, n, &whole);
    if (sw == PP2_NEED)
        CHECK(whole.need > n && whole.need <= PP2_TOTAL_MAX);
    if (sw == PP2_DONE)
        CHECK(whole.consumed >= PP2_HDR_MIN && whole.consumed <= n);
    /* the core's way: read what it asks for, one byte at first */
    size_t have = n < 1 ? n : 1;
    enum pp2_status ss;
    for (;;) {
        ss = run(d, n, have, &step);
        if (ss != PP2_NEED || have == n)
            break;
        CHECK(step.need > have);
        have = step.need < n ? step.need : n;
    }
    CHECK(ss == sw);
    if (sw == PP2_DONE) {
        CHECK(step.consumed == whole.consumed && step.local == whole.local);
        CHECK(memcmp(&step.src, &whole.src, sizeof step.src) == 0);
    }
    if (sw == PP2_BAD)
        CHECK(whole.why && step.why);
    (void)pp2_looks_like(d, n);
    return 0;
}
