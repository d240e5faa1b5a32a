// fuzz-sources: gateway/ctlproto.c
// fuzz-libs:
/* libFuzzer target: the control socket's request parser (gateway/ctlproto.c).
 *
 * Input: the bytes of one request line (without its '\n'), in an
 * exact-size heap copy.  Oracle: an accepted request has a valid verb and
 * keys, values without NUL within CTL_VALUE_MAX, no newline anywhere in the
 * input; re-encoding it with ctl_append_arg and parsing that again gives
 * the same request.  A refusal leaves a NUL-terminated reason. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/control.h"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "check failed: %s (%s:%d)\n", #c, \
                                          __FILE__, __LINE__); abort(); } } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    static struct ctl_req r, r2;
    char why[200];
    char *line = malloc(n ? n : 1);
    if (!line)
        return 0;
    memcpy(line, d, n);
    memset(why, 'x', sizeof why);
    if (ctl_parse(line, n, &r, why, sizeof why) != 0) {
        CHECK(memchr(why, '\0', sizeof why) != NULL);
        free(line);
        return 0;
    }
    CHECK(memchr(line, '\n', n) == NULL);
    CHECK(r.verb[0] && strlen(r.verb) < CTL_WORD_MAX);
    CHECK(r.n <= CTL_ARGS_MAX);
    static char again[CTL_REQ_MAX * 3 + 64];
    snprintf(again, sizeof again, "%s %s", CTL_VERSION, r.verb);
    for (size_t i = 0; i < r.n; i++) {
        CHECK(r.arg[i].key[0]);
        CHECK(strlen(r.arg[i].val) <= CTL_VALUE_MAX);
        CHECK(ctl_append_arg(again, sizeof again, r.arg[i].key, r.arg[i].val) == 0);
    }
    size_t al = strlen(again);
    if (al < CTL_REQ_MAX) {
        CHECK(ctl_parse(again, al, &r2, why, sizeof why) == 0);
        CHECK(strcmp(r.verb, r2.verb) == 0 && r.n == r2.n);
        for (size_t i = 0; i < r.n; i++) {
            CHECK(strcmp(r.arg[i].key, r2.arg[i].key) == 0);
            CHECK(strcmp(r.arg[i].val, r2.arg[i].val) == 0);
            CHECK(ctl_arg(&r2, r.arg[i].key) != NULL);
        }
    }
    free(line);
    return 0;
}
