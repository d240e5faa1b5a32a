/* firewall/fw_json.c — see fw_json.h. */
#include "firewall/fw_json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FWJ_MAX_DEPTH 64

struct jp {
    const char *s;
    size_t pos;
    char *err;
    size_t errlen;
    bool failed;
};

static void jp_fail(struct jp *p, const char *what)
{
    if (!p->failed && p->errlen)
        snprintf(p->err, p->errlen, "JSON: %s at offset %zu", what, p->pos);
    p->failed = true;
}

static void jp_ws(struct jp *p)
{
    for (;;) {
        char c = p->s[p->pos];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
            p->pos++;
        else
            return;
    }
}

static void fwj_clear(struct fwj *v)
{
    free(v->key);
    free(v->str);
    for (size_t i = 0; i < v->n; i++)
        fwj_clear(&v->kids[i]);
    free(v->kids);
    memset(v, 0, sizeof *v);
}

void fwj_free(struct fwj *v)
{
    if (!v)
        return;
    fwj_clear(v);
    free(v);
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

/* Append the UTF-8 form of code point cp (< 0x110000) to out. */
static size_t put_utf8(char *out, unsigned cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static int read_hex4(struct jp *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(p->s[p->pos]);
        if (h < 0) {
            jp_fail(p, "bad \\u escape");
            return -1;
        }
        v = v << 4 | (unsigned)h;
        p->pos++;
    }
    *out = v;
    return 0;
}

/* A string literal at p->pos (which is on the opening quote).  Returns a
 * malloc'd NUL-terminated copy with escapes decoded, or NULL. */
static char *jp_string(struct jp *p)
{
    p->pos++;   /* opening quote */
    size_t start = p->pos;
    /* First pass: find the closing quote, so one allocation is enough (the
     * decoded text is never longer: \uXXXX gives at most 3 bytes for 6, a
     * surrogate pair 4 for 12). */
    while (p->s[p->pos] != '"') {
        if (p->s[p->pos] == '\0') {
            jp_fail(p, "unterminated string");
            return NULL;
        }
        if (p->s[p->pos] == '\\' && p->s[p->pos + 1] != '\0')
            p->pos++;
        p->pos++;
    }
    size_t end = p->pos;
    char *out = malloc(end - start + 1);
    if (!out) {
        jp_fail(p, "out of memory");
        return NULL;
    }
    size_t o = 0;
    p->pos = start;
    while (p->pos < end) {
        unsigned char c = (unsigned char)p->s[p->pos];
        if (c < 0x20) {
            jp_fail(p, "control character in string");
            free(out);
            return NULL;
        }
        if (c != '\\') {
            out[o++] = (char)c;
            p->pos++;
            continue;
        }
        p->pos++;
        char e = p->s[p->pos++];
        switch (e) {
        case '"': out[o++] = '"'; break;
        case '\\': out[o++] = '\\'; break;
        case '/': out[o++] = '/'; break;
        case 'b': out[o++] = '\b'; break;
        case 'f': out[o++] = '\f'; break;
        case 'n': out[o++] = '\n'; break;
        case 'r': out[o++] = '\r'; break;
        case 't': out[o++] = '\t'; break;
        case 'u': {
            unsigned cp;
            if (read_hex4(p, &cp) < 0) {
                free(out);
                return NULL;
            }
            if (cp >= 0xD800 && cp < 0xDC00 && p->s[p->pos] == '\\' && p->s[p->pos + 1] == 'u') {
                unsigned lo;
                p->pos += 2;
                if (read_hex4(p, &lo) < 0) {
                    free(out);
                    return NULL;
                }
                if (lo >= 0xDC00 && lo < 0xE000)
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                else
                    cp = 0xFFFD;
            } else if (cp >= 0xD800 && cp < 0xE000) {
                cp = 0xFFFD;
            }
            o += put_utf8(out + o, cp);
            break;
        }
        default:
            jp_fail(p, "bad escape");
            free(out);
            return NULL;
        }
    }
    out[o] = '\0';
    p->pos = end + 1;
    return out;
}

static int jp_value(struct jp *p, struct fwj *v, int depth);

/* Grow a container's child array by one; returns the new slot or NULL. */
static struct fwj *jp_push(struct jp *p, struct fwj *v, size_t *cap)
{
    if (v->n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 4;
        struct fwj *k = realloc(v->kids, ncap * sizeof *k);
        if (!k) {
            jp_fail(p, "out of memory");
            return NULL;
        }
        v->kids = k;
        *cap = ncap;
    }
    struct fwj *slot = &v->kids[v->n++];
    memset(slot, 0, sizeof *slot);
    return slot;
}

static int jp_container(struct jp *p, struct fwj *v, int depth, bool obj)
{
    v->type = obj ? FWJ_OBJ : FWJ_ARR;
    size_t cap = 0;
    char close = obj ? '}' : ']';
    p->pos++;
    jp_ws(p);
    if (p->s[p->pos] == close) {
        p->pos++;
        return 0;
    }
    for (;;) {
        char *key = NULL;
        jp_ws(p);
        if (obj) {
            if (p->s[p->pos] != '"') {
                jp_fail(p, "expected member name");
                return -1;
            }
            key = jp_string(p);
            if (!key)
                return -1;
            jp_ws(p);
            if (p->s[p->pos] != ':') {
                free(key);
                jp_fail(p, "expected ':'");
                return -1;
            }
            p->pos++;
        }
        struct fwj *k = jp_push(p, v, &cap);
        if (!k) {
            free(key);
            return -1;
        }
        k->key = key;
        if (jp_value(p, k, depth + 1) < 0)
            return -1;
        jp_ws(p);
        if (p->s[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->s[p->pos] == close) {
            p->pos++;
            return 0;
        }
        jp_fail(p, obj ? "expected ',' or '}'" : "expected ',' or ']'");
        return -1;
    }
}

static int jp_number(struct jp *p, struct fwj *v)
{
    const char *b = p->s + p->pos;
    char *e = NULL;
    errno = 0;
    long long n = strtoll(b, &e, 10);
    if (e == b || errno == ERANGE) {
        jp_fail(p, "bad number");
        return -1;
    }
    /* Accept (and truncate) a fraction or exponent: nft prints none, but a
     * reader should not fail on valid JSON. */
    if (*e == '.' || *e == 'e' || *e == 'E') {
        char *e2 = NULL;
        double d = strtod(b, &e2);
        /* Out of int64 range (or inf): the cast would be undefined. */
        if (e2 == b || !(d >= -0x1p63 && d < 0x1p63)) {
            jp_fail(p, "bad number");
            return -1;
        }
        n = (long long)d;
        e = e2;
    }
    v->type = FWJ_NUM;
    v->num = n;
    p->pos += (size_t)(e - b);
    return 0;
}

static int jp_value(struct jp *p, struct fwj *v, int depth)
{
    static const struct {
        const char *word;
        enum fwj_type type;
        int64_t num;
    } literals[] = { { "true", FWJ_BOOL, 1 }, { "false", FWJ_BOOL, 0 }, { "null", FWJ_NULL, 0 } };
    if (depth > FWJ_MAX_DEPTH) {
        jp_fail(p, "nested too deeply");
        return -1;
    }
    jp_ws(p);
    char c = p->s[p->pos];
    if (c == '{' || c == '[')
        return jp_container(p, v, depth, c == '{');
    if (c == '"') {
        v->type = FWJ_STR;
        v->str = jp_string(p);
        return v->str ? 0 : -1;
    }
    if (c == '-' || (c >= '0' && c <= '9'))
        return jp_number(p, v);
    for (size_t i = 0; i < sizeof literals / sizeof literals[0]; i++) {
        size_t len = strlen(literals[i].word);
        if (strncmp(p->s + p->pos, literals[i].word, len) == 0) {
            v->type = literals[i].type;
            v->num = literals[i].num;
            p->pos += len;
            return 0;
        }
    }
    jp_fail(p, "unexpected character");
    return -1;
}

struct fwj *fwj_parse(const char *text, char *err, size_t errlen)
{
    struct jp p = { .s = text, .err = err, .errlen = errlen };
    struct fwj *root = calloc(1, sizeof *root);
    if (!root) {
        if (errlen)
            snprintf(err, errlen, "JSON: out of memory");
        return NULL;
    }
    if (jp_value(&p, root, 0) == 0) {
        jp_ws(&p);
        if (p.s[p.pos] == '\0')
            return root;
        jp_fail(&p, "trailing data");
    }
    fwj_free(root);
    return NULL;
}

const struct fwj *fwj_get(const struct fwj *v, const char *key)
{
    if (!v || v->type != FWJ_OBJ)
        return NULL;
    for (size_t i = 0; i < v->n; i++)
        if (v->kids[i].key && strcmp(v->kids[i].key, key) == 0)
            return &v->kids[i];
    return NULL;
}

const char *fwj_str(const struct fwj *v, const char *key)
{
    const struct fwj *m = fwj_get(v, key);
    return m && m->type == FWJ_STR ? m->str : NULL;
}

bool fwj_num(const struct fwj *v, const char *key, int64_t *out)
{
    const struct fwj *m = fwj_get(v, key);
    if (!m || m->type != FWJ_NUM)
        return false;
    *out = m->num;
    return true;
}
