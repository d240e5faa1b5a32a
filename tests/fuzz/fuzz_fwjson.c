// fuzz-sources: firewall/fw_json.c firewall/fw_live.c firewall/fw_addr.c firewall/fw_render.c common/log.c common/config.c common/addr.c
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
 *   - fwj_get/fwj_str/fwj_num agree with a linear walk over every object.
 * The same text then goes through what reads nft's listings
 * (firewall/fw_live.c): fw_live_parse, fw_live_parse_set and
 * fw_foreign_drops, and an accepted table is compared with a fixed plan
 * (fw_diff).  Accepted sets have their elements sorted, of the family their
 * type says, names NUL-terminated; fw_live_find_set finds each set. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "firewall/fw_int.h"
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

static void check_set(const struct fw_live_set *s)
{
    FUZZ_CHECK(memchr(s->name, '\0', sizeof s->name) && memchr(s->type, '\0', sizeof s->type));
    int fam = strcmp(s->type, "inet_service") == 0 ? 0 : strcmp(s->type, "ipv4_addr") == 0 ? 4
            : strcmp(s->type, "ipv6_addr") == 0 ? 6 : -1;
    FUZZ_CHECK(s->n_el == 0 || s->el != NULL);
    for (size_t i = 0; i < s->n_el; i++) {
        FUZZ_CHECK(s->el[i].family == fam);
        if (i)
            FUZZ_CHECK(fw_iv_cmp(&s->el[i - 1], &s->el[i]) <= 0);
        char buf[128];
        fw_iv_str(&s->el[i], buf, sizeof buf);
    }
}

/* A plan to compare live tables with: one VM, a firewall section. */
static const struct fw_plan *fixed_plan(void)
{
    static struct fw_plan plan;
    static int state;   /* 0 = not built, 1 = built, -1 = failed */
    if (state == 0) {
        static const char conf[] = "[firewall]\nprotect = 5900-6100\nallow = 10.0.0.0/8 2001:db8::/32\n"
                                   "[vm a]\nvnc = 127.0.0.1:5901\nvnc_port = 6001\n";
        struct cfg c;
        char err[256];
        FUZZ_CHECK(cfg_parse("plan.conf", conf, sizeof conf - 1, &c, err, sizeof err) == 0);
        state = fw_plan_build(&c, &plan, err, sizeof err) == 0 ? 1 : -1;
        if (state < 0)
            fprintf(stderr, "fixed plan: %s\n", err);
        FUZZ_CHECK(state == 1);
        /* the plan keeps no pointer into c (fw_plan_build copies) */
        cfg_free(&c);
    }
    return &plan;
}

static void live_readers(const char *text, char *err, size_t errlen)
{
    struct fw_live l;
    if (fw_live_parse(text, &l, errlen ? err : NULL, errlen) == 0) {
        for (size_t i = 0; i < l.n_sets; i++) {
            check_set(&l.sets[i]);
            const struct fw_live_set *f = fw_live_find_set(&l, l.sets[i].name);
            FUZZ_CHECK(f != NULL && f <= &l.sets[i] && strcmp(f->name, l.sets[i].name) == 0);
        }
        for (size_t i = 0; i < l.n_counters; i++)
            FUZZ_CHECK(fw_live_find_counter(&l, l.counters[i].name) != NULL);
        bool schema_ok = false;
        struct fw_sb rep = { 0 };
        int nd = fw_diff(fixed_plan(), &l, &schema_ok, &rep);
        FUZZ_CHECK(nd >= 0);
        FUZZ_CHECK(nd == 0 || rep.oom || (rep.s && rep.len == strlen(rep.s)));
        fw_sb_free(&rep);
        fw_live_free(&l);
    } else if (errlen) {
        FUZZ_CHECK(memchr(err, '\0', errlen) != NULL);
    }
    struct fw_live_set s;
    if (fw_live_parse_set(text, &s, errlen ? err : NULL, errlen) == 0) {
        check_set(&s);
        fw_live_set_free(&s);
    }
    struct fw_sb out = { 0 };
    int n = fw_foreign_drops(text, &out, errlen ? err : NULL, errlen);
    FUZZ_CHECK(n >= -1);
    fw_sb_free(&out);
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
    live_readers(text, err, errlen);
    free(err);
    free(text);
    return 0;
}
