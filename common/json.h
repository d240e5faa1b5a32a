/* common/json.h — a small JSON writer into a bounded buffer.
 *
 * Enough for the audit trail, `vmgate status --json` and the metrics: no
 * parser, no allocation.  Strings are escaped so no byte of the input can
 * end the string, the object or the line: '"' and '\\' get a backslash,
 * control bytes (< 0x20, 0x7f) become \n \r \t \b \f or \u00XX, and bytes
 * that are not well-formed UTF-8 each become \u00XX of the byte (so a user
 * name in Latin-1 stays readable and the output is always valid UTF-8).
 * When the buffer is too small the writer marks itself overflowed and
 * writes nothing more; the text written so far stays NUL-terminated. */
#ifndef VMGATE_JSON_H
#define VMGATE_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct jw {
    char *p;
    size_t cap, len;        /* len < cap; p[len] == '\0' */
    bool overflow;
    bool need_comma;        /* a value was written at this level */
};

/* Start writing into out[0..cap) (cap >= 1). */
void jw_init(struct jw *w, char *out, size_t cap);
/* Raw text (the caller vouches it is JSON). */
void jw_raw(struct jw *w, const char *s);
/* A quoted, escaped string of n bytes (s may hold NULs: \u0000). */
void jw_strn(struct jw *w, const char *s, size_t n);
void jw_str(struct jw *w, const char *s);           /* NULL: null */
/* Object members: "key": value, with the comma before when needed. */
void jw_key(struct jw *w, const char *key);
void jw_kstr(struct jw *w, const char *key, const char *s);   /* NULL: null */
void jw_ku64(struct jw *w, const char *key, uint64_t v);
void jw_knull(struct jw *w, const char *key);
/* { [ and } ]: open resets the comma state, close sets it. */
void jw_open(struct jw *w, char c);
void jw_close(struct jw *w, char c);
/* Before an array element that is not written with jw_k*: the comma. */
void jw_elem(struct jw *w);

#endif
