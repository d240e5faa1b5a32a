/* gateway/ctlproto.c — the control socket's request format (control.h):
 * pure, shared by the server and the vmgate status/kick client, fuzzed by
 * tests/fuzz/fuzz_ctl.c. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "gateway/control.h"

static bool word_ok(const char *s, size_t n)
{
    if (n == 0 || n >= CTL_WORD_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int ctl_parse(const char *line, size_t len, struct ctl_req *r, char *why, size_t whylen)
{
    memset(r, 0, sizeof *r);
    if (len >= CTL_REQ_MAX) {
        snprintf(why, whylen, "request longer than %d bytes", CTL_REQ_MAX - 1);
        return -1;
    }
    size_t vl = strlen(CTL_VERSION);
    if (len < vl + 2 || memcmp(line, CTL_VERSION " ", vl + 1) != 0) {
        snprintf(why, whylen, "not a vmgate control request (expected \"%s VERB ...\")",
                 CTL_VERSION);
        return -1;
    }
    size_t i = vl + 1;
    bool first = true;
    while (i < len) {
        size_t j = i;
        while (j < len && line[j] != ' ')
            j++;
        const char *w = line + i;
        size_t wl = j - i;
        if (first) {
            if (!word_ok(w, wl)) {
                snprintf(why, whylen, "bad request verb");
                return -1;
            }
            memcpy(r->verb, w, wl);
            first = false;
        } else {
            const char *eq = memchr(w, '=', wl);
            if (!eq || !word_ok(w, (size_t)(eq - w))) {
                snprintf(why, whylen, "bad argument %zu (expected key=value)", r->n + 1);
                return -1;
            }
            if (r->n == CTL_ARGS_MAX) {
                snprintf(why, whylen, "more than %d arguments", CTL_ARGS_MAX);
                return -1;
            }
            memcpy(r->arg[r->n].key, w, (size_t)(eq - w));
            char *out = r->arg[r->n].val;
            size_t o = 0;
            for (const char *p = eq + 1; p < w + wl; p++) {
                unsigned char c = (unsigned char)*p;
                if (o == CTL_VALUE_MAX) {
                    snprintf(why, whylen, "value of %s longer than %d bytes", r->arg[r->n].key,
                             CTL_VALUE_MAX);
                    return -1;
                }
                if (c == '%') {
                    if (w + wl - p < 3 || hexval(p[1]) < 0 || hexval(p[2]) < 0) {
                        snprintf(why, whylen, "bad %%-escape in %s", r->arg[r->n].key);
                        return -1;
                    }
                    c = (unsigned char)(hexval(p[1]) * 16 + hexval(p[2]));
                    if (c == 0) {
                        snprintf(why, whylen, "NUL byte in %s", r->arg[r->n].key);
                        return -1;
                    }
                    p += 2;
                } else if (c < '!' || c > '~') {
                    snprintf(why, whylen, "unescaped byte 0x%02x in %s", c, r->arg[r->n].key);
                    return -1;
                }
                out[o++] = (char)c;
            }
            out[o] = '\0';
            for (size_t k = 0; k < r->n; k++)
                if (strcmp(r->arg[k].key, r->arg[r->n].key) == 0) {
                    snprintf(why, whylen, "%s given twice", r->arg[k].key);
                    return -1;
                }
            r->n++;
        }
        if (j < len && j + 1 == len) {
            snprintf(why, whylen, "trailing space");
            return -1;
        }
        i = j + 1;
        if (j < len && line[i] == ' ') {
            snprintf(why, whylen, "two spaces in a row");
            return -1;
        }
    }
    if (first) {
        snprintf(why, whylen, "no verb");
        return -1;
    }
    return 0;
}

const char *ctl_arg(const struct ctl_req *r, const char *key)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->arg[i].key, key) == 0)
            return r->arg[i].val;
    return NULL;
}

int ctl_append_arg(char *out, size_t cap, const char *key, const char *val)
{
    size_t o = strlen(out);
    int k = snprintf(out + o, cap - o, " %s=", key);
    if (k < 0 || (size_t)k >= cap - o)
        return -1;
    o += (size_t)k;
    for (const unsigned char *p = (const unsigned char *)val; *p; p++) {
        if (o + 4 > cap)
            return -1;
        if (*p < '!' || *p > '~' || *p == '%') {
            snprintf(out + o, 4, "%%%02X", *p);
            o += 3;
        } else {
            out[o++] = (char)*p;
        }
    }
    out[o] = '\0';
    return 0;
}

