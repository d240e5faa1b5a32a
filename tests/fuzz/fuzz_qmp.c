// fuzz-sources: common/qmp.c
// fuzz-libs:
/* tests/fuzz/fuzz_qmp.c — the QMP line splitter and classifier
 * (proxy/qmp.c), which read what QEMU's monitor socket sends.
 *
 * Input: byte 0 picks the capacity of the desc buffer (0..63); the rest is
 * the stream from QEMU.  It is split with qmp_next_line() as the proxy does,
 * each call seeing an exact-size heap copy of what is left, and every line
 * is classified from its own exact-size copy.  Oracle:
 *   - qmp_next_line returns 0 < len <= n with line[len-1] == '\n' and no
 *     earlier newline, 0 only without a newline and below QMP_LINE_MAX, -1
 *     only without a newline at or above it;
 *   - qmp_classify returns a valid kind; for QMP_ERROR with desclen > 0 the
 *     desc is NUL-terminated within desclen and holds only printable ASCII,
 *     and it is never written past desclen (exact-size heap buffer);
 *   - classifying never depends on bytes past the line (the same line
 *     inside a longer buffer with the length given gives the same kind). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/qmp.h"

#define FUZZ_CHECK(c) do { if (!(c)) { fprintf(stderr, "check failed: %s (%s:%d)\n", #c, \
                                                       __FILE__, __LINE__); abort(); } } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static enum qmp_kind classify(const char *line, size_t n, size_t desclen)
{
    char *copy = malloc(n ? n : 1);
    char *desc = desclen ? malloc(desclen) : NULL;
    FUZZ_CHECK(copy != NULL && (desclen == 0 || desc != NULL));
    memcpy(copy, line, n);
    if (desc)
        memset(desc, 'X', desclen);
    enum qmp_kind k = qmp_classify(copy, n, desc, desclen);
    FUZZ_CHECK(k == QMP_GREETING || k == QMP_EVENT || k == QMP_RETURN || k == QMP_ERROR ||
               k == QMP_UNKNOWN);
    if (k == QMP_ERROR && desc) {
        size_t l = strnlen(desc, desclen);
        FUZZ_CHECK(l < desclen);
        for (size_t i = 0; i < l; i++)
            FUZZ_CHECK(desc[i] >= 0x20 && desc[i] < 0x7f);
    }
    free(desc);
    free(copy);
    return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t desclen = data[0] % 64;
    const char *p = (const char *)data + 1;
    size_t n = size - 1;
    size_t off = 0;
    for (;;) {
        size_t left = n - off;
        char *copy = malloc(left ? left : 1);
        FUZZ_CHECK(copy != NULL);
        memcpy(copy, p + off, left);
        long len = qmp_next_line(left ? copy : NULL, left);
        const char *nl = memchr(p + off, '\n', left);
        if (len > 0) {
            FUZZ_CHECK((size_t)len <= left && copy[len - 1] == '\n');
            FUZZ_CHECK(nl == p + off + len - 1);
        } else if (len == 0) {
            FUZZ_CHECK(nl == NULL && left < QMP_LINE_MAX);
        } else {
            FUZZ_CHECK(len == -1 && nl == NULL && left >= QMP_LINE_MAX);
        }
        free(copy);
        if (len <= 0)
            break;
        enum qmp_kind k = classify(p + off, (size_t)len, desclen);
        /* the same line followed by the rest of the stream, length given */
        FUZZ_CHECK(qmp_classify(p + off, (size_t)len, NULL, 0) == k);
        off += (size_t)len;
    }
    if (off < n)   /* the unterminated tail, as a caller might at EOF */
        classify(p + off, n - off, desclen);
    return 0;
}
