/* proxy/webapi.c — /api/vms: Basic credentials in, JSON out (see webapi.h).
 * Pure: no I/O, no logging.  Base64 is OpenSSL's EVP_DecodeBlock. */
#include "proxy/webapi.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "common/json.h"

int webapi_basic(const char *authz, char *user, size_t usz, char *pass, size_t psz)
{
    if (!authz || !user || !pass || usz == 0 || psz == 0)
        return -1;
    user[0] = pass[0] = '\0';
    if (strncasecmp(authz, "Basic ", 6) != 0)
        return -1;
    const char *b = authz + 6;
    while (*b == ' ')
        b++;
    size_t bl = strlen(b);
    while (bl && b[bl - 1] == ' ')
        bl--;
    /* base64 of at most user + ':' + password at their protocol limits */
    unsigned char dec[(AUTHP_USER_MAX + 1 + AUTHP_PASS_MAX + 3) / 3 * 3 + 3];
    if (bl == 0 || bl % 4 != 0 || bl / 4 * 3 > sizeof dec)
        return -1;
    for (size_t i = 0; i < bl; i++) {
        char ch = b[i];
        bool pad_ok = ch == '=' && i >= bl - 2 && (i == bl - 1 || b[bl - 1] == '=');
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '+' || ch == '/' || pad_ok))
            return -1;
    }
    int n = EVP_DecodeBlock(dec, (const unsigned char *)b, (int)bl);
    int rc = -1;
    if (n < 0)
        goto out;
    n -= (b[bl - 1] == '=') + (b[bl - 2] == '=');   /* EVP_DecodeBlock keeps the padding's zeros */
    const unsigned char *colon = memchr(dec, ':', (size_t)n);
    if (!colon || memchr(dec, 0, (size_t)n))
        goto out;
    size_t ul = (size_t)(colon - dec), pl = (size_t)n - ul - 1;
    if (ul == 0 || ul >= usz || pl >= psz)
        goto out;
    for (size_t i = 0; i < ul; i++)
        if (dec[i] < 0x20 || dec[i] == 0x7f)
            goto out;
    memcpy(user, dec, ul);
    user[ul] = '\0';
    memcpy(pass, colon + 1, pl);
    pass[pl] = '\0';
    rc = 0;
out:
    explicit_bzero(dec, sizeof dec);
    if (rc != 0) {
        explicit_bzero(user, usz);
        explicit_bzero(pass, psz);
    }
    return rc;
}

int webapi_vms_json(const char *user, const struct authp_vms_resp *vms, char *out, size_t cap)
{
    if (!user || !vms || !out || cap == 0 || vms->n > AUTHP_VMS_MAX)
        return -1;
    struct jw w;
    jw_init(&w, out, cap);
    jw_open(&w, '{');
    jw_kstr(&w, "user", user);
    jw_key(&w, "vms");
    jw_open(&w, '[');
    for (unsigned i = 0; i < vms->n; i++) {
        jw_elem(&w);
        jw_str(&w, vms->names[i]);
    }
    jw_close(&w, ']');
    jw_key(&w, "truncated");
    jw_raw(&w, vms->truncated ? "true" : "false");
    jw_close(&w, '}');
    return w.overflow ? -1 : (int)w.len;
}
