/* common/json.c — see json.h. */
#include "common/json.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

void jw_init(struct jw *w, char *out, size_t cap)
{
    w->p = out;
    w->cap = cap;
    w->len = 0;
    w->overflow = cap == 0;
    w->need_comma = false;
    if (cap)
        out[0] = '\0';
}

/* Append n bytes or, if they do not fit, nothing (and overflow). */
static void put(struct jw *w, const char *s, size_t n)
{
    if (w->overflow || n >= w->cap - w->len) {
        w->overflow = true;
        return;
    }
    memcpy(w->p + w->len, s, n);
    w->len += n;
    w->p[w->len] = '\0';
}

void jw_raw(struct jw *w, const char *s) { put(w, s, strlen(s)); }

/* Length of the well-formed UTF-8 sequence at s (n bytes left), 0 if the
 * byte there does not start one (RFC 3629: no overlongs, no surrogates,
 * nothing above U+10FFFF). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0;
        if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90;
        if (c == 0xf4)
            hi = 0x8f;
    } else
        return 0;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return len;
}

void jw_strn(struct jw *w, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    put(w, "\"", 1);
    size_t i = 0;
    while (i < n && !w->overflow) {
        unsigned char c = u[i];
        char esc[8];
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            size_t j = i;           /* a run of plain ASCII at once */
            while (j < n && u[j] >= 0x20 && u[j] < 0x7f && u[j] != '"' && u[j] != '\\')
                j++;
            put(w, s + i, j - i);
            i = j;
            continue;
        }
        if (c >= 0x80) {
            size_t l = utf8_len(u + i, n - i);
            if (l) {
                put(w, s + i, l);
                i += l;
                continue;
            }
        }
        switch (c) {
        case '"': memcpy(esc, "\\\"", 3); break;
        case '\\': memcpy(esc, "\\\\", 3); break;
        case '\n': memcpy(esc, "\\n", 3); break;
        case '\r': memcpy(esc, "\\r", 3); break;
        case '\t': memcpy(esc, "\\t", 3); break;
        case '\b': memcpy(esc, "\\b", 3); break;
        case '\f': memcpy(esc, "\\f", 3); break;
        default: snprintf(esc, sizeof esc, "\\u%04x", c); break;
        }
        put(w, esc, strlen(esc));
        i++;
    }
    put(w, "\"", 1);
}

void jw_str(struct jw *w, const char *s)
{
    if (!s)
        jw_raw(w, "null");
    else
        jw_strn(w, s, strlen(s));
}

void jw_elem(struct jw *w)
{
    if (w->need_comma)
        put(w, ",", 1);
    w->need_comma = true;
}

void jw_key(struct jw *w, const char *key)
{
    jw_elem(w);
    jw_str(w, key);
    put(w, ":", 1);
}

void jw_kstr(struct jw *w, const char *key, const char *s)
{
    jw_key(w, key);
    jw_str(w, s);
}

void jw_ku64(struct jw *w, const char *key, uint64_t v)
{
    char num[24];
    jw_key(w, key);
    snprintf(num, sizeof num, "%" PRIu64, v);
    jw_raw(w, num);
}

void jw_knull(struct jw *w, const char *key)
{
    jw_key(w, key);
    jw_raw(w, "null");
}

void jw_open(struct jw *w, char c)
{
    put(w, &c, 1);
    w->need_comma = false;
}

void jw_close(struct jw *w, char c)
{
    put(w, &c, 1);
    w->need_comma = true;
}
