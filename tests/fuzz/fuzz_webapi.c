// fuzz-sources: proxy/webapi.c common/json.c
// fuzz-libs: -lcrypto
/* libFuzzer target: proxy/webapi.c, the /api/vms request's credentials and
 * answer.
 *
 * Input: an Authorization header value (NUL-terminated copy).  Oracles:
 *   - webapi_basic accepts or refuses; refused leaves both outputs empty;
 *     accepted gives a non-empty user without control bytes, both within
 *     their buffers, and base64 of "user:password" decodes to the same pair;
 *   - smaller output buffers never accept what does not fit;
 *   - the JSON answer for the user is accepted within WEBAPI_JSON_MAX and
 *     is valid UTF-8 without control bytes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "proxy/webapi.h"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "check failed: %s (%s:%d)\n", #c, __FILE__, \
                                          __LINE__); abort(); } } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *in = malloc(size + 1);
    CHECK(in != NULL);
    memcpy(in, data, size);
    in[size] = '\0';
    char u[AUTHP_USER_MAX + 1], p[AUTHP_PASS_MAX + 1];
    int rc = webapi_basic(in, u, sizeof u, p, sizeof p);
    CHECK(rc == 0 || rc == -1);
    if (rc == -1) {
        CHECK(u[0] == '\0' && p[0] == '\0');
    } else {
        size_t ul = strlen(u), pl = strlen(p);
        CHECK(ul > 0 && ul <= AUTHP_USER_MAX && pl <= AUTHP_PASS_MAX);
        for (size_t i = 0; i < ul; i++)
            CHECK((unsigned char)u[i] >= 0x20 && u[i] != 0x7f);
        /* round trip */
        static char cred[AUTHP_USER_MAX + AUTHP_PASS_MAX + 2];
        static char hdr[8 + (sizeof cred + 2) / 3 * 4 + 1];
        snprintf(cred, sizeof cred, "%s:%s", u, p);
        memcpy(hdr, "Basic ", 6);
        EVP_EncodeBlock((unsigned char *)hdr + 6, (const unsigned char *)cred, (int)strlen(cred));
        char u2[AUTHP_USER_MAX + 1], p2[AUTHP_PASS_MAX + 1];
        CHECK(webapi_basic(hdr, u2, sizeof u2, p2, sizeof p2) == 0);
        CHECK(strcmp(u, u2) == 0 && strcmp(p, p2) == 0);
        /* smaller buffers: refused when it does not fit */
        CHECK(webapi_basic(in, u2, ul, p2, sizeof p2) == -1);
        CHECK(webapi_basic(in, u2, sizeof u2, p2, pl + 1) == 0);
        if (pl)
            CHECK(webapi_basic(in, u2, sizeof u2, p2, pl) == -1);
        /* the answer */
        static struct authp_vms_resp v;
        static char out[WEBAPI_JSON_MAX];
        int n = webapi_vms_json(u, &v, out, sizeof out);
        CHECK(n > 0 && (size_t)n == strlen(out));
        for (int i = 0; i < n; i++)
            CHECK((unsigned char)out[i] >= 0x20 && out[i] != 0x7f);
    }
    free(in);
    return 0;
}
