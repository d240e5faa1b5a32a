/* proxy/qmp.c — see qmp.h. */
#include "proxy/qmp.h"

#include <stdio.h>
#include <string.h>

long qmp_next_line(const char *p, size_t n)
{
    if (n == 0)
        return 0;                       /* (p may be NULL: an empty buffer) */
    const char *nl = memchr(p, '\n', n);
    if (nl)
        return (long)(nl - p) + 1;
    return n >= QMP_LINE_MAX ? -1 : 0;
}

/* Does the top-level object start with key (e.g. "return")?  QEMU prints
 * the first key right after '{' (with optional spaces), which is all we
 * need: a full JSON parser would add nothing for these four shapes. */
static int first_key_is(const char *line, size_t n, const char *key)
{
    size_t i = 0;
    while (i < n && (line[i] == ' ' || line[i] == '\t'))
        i++;
    if (i >= n || line[i] != '{')
        return 0;
    i++;
    while (i < n && (line[i] == ' ' || line[i] == '\t'))
        i++;
    size_t kl = strlen(key);
    return i + kl + 2 <= n && line[i] == '"' && memcmp(line + i + 1, key, kl) == 0 &&
           line[i + 1 + kl] == '"';
}

enum qmp_kind qmp_classify(const char *line, size_t n, char *desc, size_t desclen)
{
    if (first_key_is(line, n, "QMP"))
        return QMP_GREETING;
    if (first_key_is(line, n, "event") ||
        (memmem(line, n, "\"event\"", 7) && memmem(line, n, "\"timestamp\"", 11)))
        return QMP_EVENT;
    if (first_key_is(line, n, "return"))
        return QMP_RETURN;
    if (first_key_is(line, n, "error") || memmem(line, n, "\"error\"", 7)) {
        if (desc && desclen) {
            const char *d = memmem(line, n, "\"desc\"", 6);
            desc[0] = '\0';
            if (d) {
                const char *q = memchr(d + 6, '"', (size_t)(line + n - (d + 6)));
                size_t o = 0;
                if (q)
                    for (q++; q < line + n && *q != '"' && o + 1 < desclen; q++)
                        desc[o++] = (*q >= 0x20 && *q < 0x7f) ? *q : '?';
                desc[o] = '\0';
            }
            if (!desc[0])
                snprintf(desc, desclen, "unspecified QMP error");
        }
        return QMP_ERROR;
    }
    if (memmem(line, n, "\"return\"", 8))
        return QMP_RETURN;
    return QMP_UNKNOWN;
}
