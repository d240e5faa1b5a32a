// fuzz-sources: proxy/http.c
// fuzz-libs:
/* libFuzzer target: proxy/http.c, the browser console's request head.
 *
 * Input: the whole input is the bytes a browser sent.  Oracles:
 *   - http_parse_head on an exact-size heap copy: the result is NEED, BAD
 *     with a status in {400, 405, 414, 431, 505} and a NUL-terminated
 *     reason, or a length in 1..min(n, HTTP_HEAD_MAX) ending in CRLF CRLF;
 *   - a verdict never changes when bytes are appended: every prefix is
 *     NEED, or BAD with the whole's status, or (once accepted) the same
 *     length with the same parsed request;
 *   - accepted fields are NUL-terminated within their buffers and the
 *     target starts with '/';
 *   - http_target_file on the target: an accepted name has no leading "/",
 *     no "%" or "\\", no empty segment and no segment starting with ".";
 *   - http_mime_type never crashes on it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/http.h"

static const int statuses[] = { 400, 405, 414, 431, 505 };

static int run(const uint8_t *data, size_t n, struct http_req *r, int *st)
{
    uint8_t *copy = malloc(n ? n : 1);
    if (!copy)
        abort();
    memcpy(copy, data, n);
    char why[128];
    why[0] = 'x';
    int rc = http_parse_head(copy, n, r, st, why, sizeof why);
    free(copy);
    if (rc == HTTP_BAD) {
        if (!memchr(why, 0, sizeof why))
            abort();
        int ok = 0;
        for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++)
            ok |= *st == statuses[i];
        if (!ok)
            abort();
    } else if (rc > 0) {
        if ((size_t)rc > n || rc > HTTP_HEAD_MAX || rc < 4 ||
            memcmp(data + rc - 4, "\r\n\r\n", 4) != 0)
            abort();
        if (r->target[0] != '/' || !memchr(r->target, 0, sizeof r->target) ||
            !memchr(r->host, 0, sizeof r->host) || !memchr(r->origin, 0, sizeof r->origin) ||
            !memchr(r->ws_key, 0, sizeof r->ws_key))
            abort();
    } else if (rc != HTTP_NEED) {
        abort();
    }
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct http_req whole, part;
    int st_whole, st;
    if (size > 3 * HTTP_HEAD_MAX)
        return 0;
    int rc = run(data, size, &whole, &st_whole);
    /* prefixes at a few cut points */
    for (size_t k = 0; k < size; k += 1 + size / 16) {
        int pr = run(data, k, &part, &st);
        if (pr == HTTP_BAD && (rc != HTTP_BAD || st != st_whole))
            abort();
        if (pr > 0 && (pr != rc || memcmp(&part, &whole, sizeof part) != 0))
            abort();
    }
    if (rc > 0) {
        char out[HTTP_TARGET_MAX + 1];
        if (http_target_file(whole.target, "vnc.html", out, sizeof out) == 0) {
            if (out[0] == '/' || strchr(out, '%') ||
                strchr(out, '\\') || out[0] == '.' || strstr(out, "/.") || strstr(out, "//"))
                abort();
            (void)http_mime_type(out);
        }
    }
    return 0;
}
