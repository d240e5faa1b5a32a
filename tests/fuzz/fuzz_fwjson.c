// fuzz-sources: firewall/fw_json.c
// fuzz-libs:
/* tests/fuzz/fuzz_fwjson.c — the JSON reader of the firewall
 * (firewall/fw_json.c), which reads what `nft -j` prints.  nft's output is
 * not hostile, but set elements and comments carry text that came from
 * elsewhere, and the reader must stay in bounds whatever it is given.
 *
 * Input: the JSON text (a NUL is appended; an embedded NUL ends the text,
 * as for any C string).  Oracle:
 *   - failure leaves a NUL-terminated reason starting "JSON: " in an
 *     exact-size error buffer whose size comes from the input length;
 *   - an accepted document is written back as canonical JSON (every string
 *     escaped, numbers as integers) and parsed again: the two trees must be
 *     equal (types, keys, strings, numbers, order) and writing the second
 *     gives the same text;
 *   - fwj_get/fwj_str/fwj_num agree with a linear walk over every object. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "firewall/fw_json.h"

#define FUZZ_CHECK(c) do { if (!(c)) { fprintf(stderr, "check failed: %s (%s:%d)\n", #c, \
                                                       __FILE__, __LINE__); abort(); } } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct sb {
    char *p;
    size_t n, cap;
};

static void sb_put(struct sb *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
        FUZZ_CHECK(b->p != NULL);
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void sb_str(struct sb *b, const char *s)
{
    sb_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char e[8];
        if (c == '"' || c == '\\') {
            snprintf(e, sizeof e, "\\%c", c);
            sb_put(b, e, 2);
        } else if (c < 0x20) {
            snprintf(e, sizeof e, "\\u%04x", c);
            sb_put(b, e, 6);
        } else {
            sb_put(b, (const char *)&c, 1);
        }
    }
    sb_put(b, "\"", 1);
}

static void write_json(struct sb *b, const struct fwj *v)
{
    char num[32];
    switch (v->type) {
    case FWJ_NULL: sb_put(b, "null", 4); break;
    case FWJ_BOOL: v->num ? sb_put(b, "true", 4) : sb_put(b, "false", 5); break;
    case FWJ_NUM:
        snprintf(num, sizeof num, "%" PRId64, v->num);
        sb_put(b, num, strlen(num));
        break;
    case FWJ_STR: FUZZ_CHECK(v->str != NULL); sb_str(b, v->str); break;
    case FWJ_ARR:
    case FWJ_OBJ:
        sb_put(b, v->type == FWJ_OBJ ? "{" : "[", 1);
        for (size_t i = 0; i < v->n; i++) {
            if (i)
                sb_put(b, ",", 1);
            if (v->type == FWJ_OBJ) {
                FUZZ_CHECK(v->kids[i].key != NULL);
                sb_str(b, v->kids[i].key);
                sb_put(b, ":", 1);
            } else {
                FUZZ_CHECK(v->kids[i].key == NULL);
            }
            write_json(b, &v->kids[i]);
        }
        sb_put(b, v->type == FWJ_OBJ ? "}" : "]", 1);
        break;
    default: FUZZ_CHECK(!"bad type");
    }
}

static void same_tree(const struct fwj *a, const struct fwj *b)
{
    FUZZ_CHECK(a->type == b->type && a->n == b->n);
    FUZZ_CHECK((a->key == NULL) == (b->key == NULL));
    if (a->key)
        FUZZ_CHECK(strcmp(a->key, b->key) == 0);
    if (a->type == FWJ_STR)
        FUZZ_CHECK(strcmp(a->str, b->str) == 0);
    if (a->type == FWJ_NUM || a->type == FWJ_BOOL)
        FUZZ_CHECK(a->num == b->num);
    for (size_t i = 0; i < a->n; i++)
        same_tree(&a->kids[i], &b->kids[i]);
}

static void check_lookups(const struct fwj *v)
{
    if (v->type == FWJ_OBJ) {
        for (size_t i = 0; i < v->n; i++) {
            const struct fwj *k = &v->kids[i];
            const struct fwj *first = NULL;
            for (size_t j = 0; j < v->n && !first; j++)
                if (strcmp(v->kids[j].key, k->key) == 0)
                    first = &v->kids[j];
            FUZZ_CHECK(fwj_get(v, k->key) == first);
            const char *s = fwj_str(v, k->key);
            FUZZ_CHECK(s == (first->type == FWJ_STR ? first->str : NULL));
            int64_t num = 0;
            bool isnum = fwj_num(v, k->key, &num);
            FUZZ_CHECK(isnum == (first->type == FWJ_NUM) && (!isnum || num == first->num));
        }
    } else {
        FUZZ_CHECK(fwj_get(v, "") == NULL);
    }
    for (size_t i = 0; i < v->n; i++)
        check_lookups(&v->kids[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    FUZZ_CHECK(text != NULL);
    memcpy(text, data, size);
    text[size] = '\0';
    size_t errlen = size % 97;
    char *err = malloc(errlen ? errlen : 1);
    FUZZ_CHECK(err != NULL);
    struct fwj *v = fwj_parse(text, err, errlen);
    if (!v) {
        if (errlen) {
            FUZZ_CHECK(memchr(err, '\0', errlen) != NULL);
            FUZZ_CHECK(strncmp(err, "JSON: ", errlen - 1 < 6 ? errlen - 1 : 6) == 0);
        }
    } else {
        FUZZ_CHECK(v->key == NULL);
        check_lookups(v);
        struct sb a = { 0 }, b = { 0 };
        write_json(&a, v);
        char e2[128];
        struct fwj *w = fwj_parse(a.p, e2, sizeof e2);
        if (!w)
            fprintf(stderr, "reparse of \"%s\" failed: %s\n", a.p, e2);
        FUZZ_CHECK(w != NULL);
        same_tree(v, w);
        write_json(&b, w);
        FUZZ_CHECK(a.n == b.n && memcmp(a.p, b.p, a.n) == 0);
        fwj_free(w);
        free(a.p);
        free(b.p);
        fwj_free(v);
    }
    free(err);
    free(text);
    return 0;
}
