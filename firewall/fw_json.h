/* firewall/fw_json.h — a small JSON reader for what `nft -j` prints.
 *
 * libnftables hands its listings back as JSON text.  This is a plain DOM
 * parser (objects, arrays, strings, integers, true/false/null) with a depth
 * limit, so the firewall code needs no extra library.  Numbers are kept as
 * signed 64-bit integers: nft prints no fractions.  Internal to firewall/. */
#ifndef VMGATE_FW_JSON_H
#define VMGATE_FW_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum fwj_type { FWJ_NULL = 0, FWJ_BOOL, FWJ_NUM, FWJ_STR, FWJ_ARR, FWJ_OBJ };

struct fwj {
    enum fwj_type type;
    char *key;              /* member name when inside an object, else NULL */
    char *str;              /* FWJ_STR */
    int64_t num;            /* FWJ_NUM; FWJ_BOOL: 0/1 */
    struct fwj *kids;       /* FWJ_ARR / FWJ_OBJ */
    size_t n;
};

/* Parse a NUL-terminated text.  Returns the root (free with fwj_free) or
 * NULL with a short reason in err. */
struct fwj *fwj_parse(const char *text, char *err, size_t errlen);
void fwj_free(struct fwj *v);

/* Member of an object by name, or NULL (also when v is not an object). */
const struct fwj *fwj_get(const struct fwj *v, const char *key);
/* Typed accessors: NULL / false when the member is missing or of another type. */
const char *fwj_str(const struct fwj *v, const char *key);
bool fwj_num(const struct fwj *v, const char *key, int64_t *out);

#endif
