/* gateway/mreq.c — metrics_parse (metrics.h): what an HTTP request head
 * asks of the /metrics listener.  Pure; fuzzed by tests/fuzz/fuzz_mreq.c. */
#include <stdbool.h>
#include <string.h>

#include "gateway/metrics.h"

enum metrics_req metrics_parse(const char *buf, size_t len)
{
    /* the request line: METHOD SP TARGET SP HTTP/1.x CRLF */
    const char *eol = memchr(buf, '\n', len);
    if (!eol)
        return METRICS_NEED;
    size_t ll = (size_t)(eol - buf);
    if (ll && buf[ll - 1] == '\r')
        ll--;
    const char *sp1 = memchr(buf, ' ', ll);
    if (!sp1 || sp1 == buf)
        return METRICS_BAD;
    for (const char *p = buf; p < sp1; p++)
        if (*p < 'A' || *p > 'Z')
            return METRICS_BAD;
    const char *tgt = sp1 + 1;
    const char *sp2 = memchr(tgt, ' ', ll - (size_t)(tgt - buf));
    if (!sp2 || sp2 == tgt || *tgt != '/')
        return METRICS_BAD;
    size_t vl = ll - (size_t)(sp2 + 1 - buf);
    if (vl != 8 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0 || (sp2[8] != '0' && sp2[8] != '1'))
        return METRICS_BAD;
    for (const char *p = tgt; p < sp2; p++)
        if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f)
            return METRICS_BAD;
    /* the end of the head: an empty line */
    bool end = false;
    for (size_t i = (size_t)(eol - buf) + 1; i < len; i++) {
        if (buf[i] == '\n' && (buf[i - 1] == '\n' || (i >= 2 && buf[i - 1] == '\r' && buf[i - 2] == '\n'))) {
            end = true;
            break;
        }
    }
    if (!end)
        return METRICS_NEED;
    size_t ml = (size_t)(sp1 - buf), pl = (size_t)(sp2 - tgt);
    const char *q = memchr(tgt, '?', pl);
    if (q)
        pl = (size_t)(q - tgt);
    if (!(ml == 3 && memcmp(buf, "GET", 3) == 0))
        return METRICS_BAD_METHOD;
    if (pl == 8 && memcmp(tgt, "/metrics", 8) == 0)
        return METRICS_GET;
    return METRICS_NOT_FOUND;
}
