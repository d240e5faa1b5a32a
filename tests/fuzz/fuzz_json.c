// fuzz-sources: common/json.c
// fuzz-libs:
/* libFuzzer target: the JSON string escaper (common/json.c).
 *
 * Input: any bytes.  Oracle: jw_strn's output is one JSON string with no
 * byte below 0x20, no 0x7f, and nothing but escapes after a backslash;
 * decoding it (\uXXXX as the byte it stands for, which is all the writer
 * produces) gives back the input exactly; into a buffer of every smaller
 * size (an exact-size heap block) it overflows cleanly, never past cap. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "check failed: %s (%s:%d)\n", #c, \
                                          __FILE__, __LINE__); abort(); } } while (0)

static int hex(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    if (n > 4096)
        return 0;
    size_t cap = 6 * n + 3;
    char *out = malloc(cap);
    uint8_t *back = malloc(n + 1);
    struct jw w;
    jw_init(&w, out, cap);
    jw_strn(&w, (const char *)d, n);
    CHECK(!w.overflow);
    size_t len = strlen(out);
    CHECK(len == w.len && len >= 2 && out[0] == '"' && out[len - 1] == '"');
    size_t o = 0;
    for (size_t i = 1; i + 1 < len; i++) {
        unsigned char c = (unsigned char)out[i];
        CHECK(c >= 0x20 && c != 0x7f && c != '"');
        if (c != '\\') {
            back[o++] = c;
            continue;
        }
        char e = out[++i];
        switch (e) {
        case '"': back[o++] = '"'; break;
        case '\\': back[o++] = '\\'; break;
        case 'n': back[o++] = '\n'; break;
        case 'r': back[o++] = '\r'; break;
        case 't': back[o++] = '\t'; break;
        case 'b': back[o++] = '\b'; break;
        case 'f': back[o++] = '\f'; break;
        case 'u':
            CHECK(i + 4 < len && out[i + 1] == '0' && out[i + 2] == '0');
            CHECK(hex(out[i + 3]) >= 0 && hex(out[i + 4]) >= 0);
            back[o++] = (uint8_t)(hex(out[i + 3]) * 16 + hex(out[i + 4]));
            i += 4;
            break;
        default: CHECK(!"bad escape");
        }
        CHECK(o <= n);
    }
    CHECK(o == n && (n == 0 || memcmp(back, d, n) == 0));
    /* every smaller buffer: overflow, terminated, nothing past cap */
    for (size_t small = 1; small <= len && small < 64; small++) {
        char *b = malloc(small);
        jw_init(&w, b, small);
        jw_strn(&w, (const char *)d, n);
        CHECK(w.overflow);
        CHECK(strlen(b) < small);
        free(b);
    }
    free(out);
    free(back);
    return 0;
}
