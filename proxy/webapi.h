/* proxy/webapi.h — the browser console's /api/vms, without I/O: the
 * credentials of an `Authorization: Basic` header and the JSON answer. */
#ifndef VMGATE_WEBAPI_H
#define VMGATE_WEBAPI_H

#include <stddef.h>

#include "auth/proto.h"

/* The user and password of an Authorization value "Basic BASE64(user:pass)"
 * (scheme case-insensitive, RFC 7617; the first ':' splits).  user gets at
 * most usz - 1 bytes and pass psz - 1, NUL-terminated; neither may hold a
 * NUL, the user no control byte, and the user may not be empty.  0, or -1
 * (not Basic, bad base64, no ':', over-long, bad bytes); on -1 both
 * outputs are wiped. */
int webapi_basic(const char *authz, char *user, size_t usz, char *pass, size_t psz);

/* The answer to GET /api/vms: {"user":USER,"vms":[NAME,...],"truncated":BOOL}
 * (names in the helper's order).  The length written (NUL-terminated), or
 * -1 when cap is too small. */
int webapi_vms_json(const char *user, const struct authp_vms_resp *vms, char *out, size_t cap);

/* The largest answer webapi_vms_json can give (escaped user at 6 bytes a
 * byte, every name at its limit). */
#define WEBAPI_JSON_MAX (64 + 6 * 255 + AUTHP_VMS_MAX * (AUTHP_VM_MAX * 6 + 4))

#endif
