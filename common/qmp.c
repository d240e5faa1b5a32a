/* common/qmp.c — see qmp.h. */
#include "common/qmp.h"

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

int qmp_run_init(struct qmp_run *r, const struct qmp_cmd *cmds, size_t n)
{
    memset(r, 0, sizeof *r);
    if (n > QMP_RUN_MAX)
        return -1;
    if (n)
        memcpy(r->cmd, cmds, n * sizeof *cmds);
    r->n = n;
    return 0;
}

void qmp_run_wipe(struct qmp_run *r) { explicit_bzero(r, sizeof *r); }

static const struct qmp_cmd qmp_caps = { "{\"execute\":\"qmp_capabilities\"}\n", false };

/* The command after `answered` answers: caps first, then the script. */
static const struct qmp_cmd *next_cmd(const struct qmp_run *r)
{
    return r->answered == 0 ? &qmp_caps : &r->cmd[r->answered - 1];
}

static enum qmp_step run_fail(struct qmp_run *r, const char *why)
{
    snprintf(r->err, sizeof r->err, "%s", why);
    return QMP_FAIL;
}

enum qmp_step qmp_run_feed(struct qmp_run *r, const char *p, size_t n, size_t *used,
                           const struct qmp_cmd **send)
{
    *used = 0;
    *send = NULL;
    for (;;) {
        if (r->greeted && !r->sent) {
            if (r->answered == r->n + 1)
                return QMP_DONE;
            r->sent = true;
            *send = next_cmd(r);
            return QMP_SEND;
        }
        long ll = qmp_next_line(p + *used, n - *used);
        if (ll < 0)
            return run_fail(r, "QMP line too long");
        if (ll == 0)
            return QMP_NEED;
        char desc[160];
        enum qmp_kind k = qmp_classify(p + *used, (size_t)ll, desc, sizeof desc);
        *used += (size_t)ll;
        if (k == QMP_EVENT)
            continue;
        if (k == QMP_ERROR) {
            r->refused = true;
            return run_fail(r, desc);
        }
        if (!r->greeted) {
            if (k != QMP_GREETING)
                return run_fail(r, "no QMP greeting");
            r->greeted = true;
            continue;
        }
        if (k != QMP_RETURN)
            return run_fail(r, "unexpected QMP answer");
        r->answered++;
        r->sent = false;
    }
}
