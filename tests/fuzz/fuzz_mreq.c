// fuzz-sources: gateway/mreq.c
// fuzz-libs:
/* libFuzzer target: the /metrics request classifier (gateway/mreq.c).
 *
 * Input: the bytes received so far, in an exact-size heap copy.  Oracle:
 * the answer is one of the enum's values; GET means the input starts with
 * "GET /metrics" followed by ' ' or '?' and holds an empty line; a
 * decided answer (not NEED) stays the same when more bytes follow (the
 * input with a "\r\n\r\n" appended). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/metrics.h"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "check failed: %s (%s:%d)\n", #c, \
                                          __FILE__, __LINE__); abort(); } } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    char *b = malloc(n + 4);
    if (!b)
        return 0;
    memcpy(b, d, n);
    enum metrics_req r = metrics_parse(b, n);
    CHECK(r >= METRICS_NEED && r <= METRICS_BAD);
    if (r == METRICS_GET)
        CHECK(n >= 13 && memcmp(b, "GET /metrics", 12) == 0 && (b[12] == ' ' || b[12] == '?'));
    memcpy(b + n, "\r\n\r\n", 4);
    enum metrics_req r2 = metrics_parse(b, n + 4);
    if (r != METRICS_NEED)
        CHECK(r2 == r);
    free(b);
    return 0;
}
