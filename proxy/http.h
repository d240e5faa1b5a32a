/* proxy/http.h — the browser console's HTTP/1.1 request head, parsed
 * without I/O, and the mapping of a request target to a file name.
 *
 * Only what the console needs is accepted: GET, HTTP/1.0 or 1.1, CRLF line
 * ends, at most HTTP_HEAD_MAX bytes of head, HTTP_LINE_MAX per header line,
 * HTTP_HEADERS_MAX header lines, no obsolete line folding.  A request body
 * is never read (GET has none; Content-Length / Transfer-Encoding are
 * refused), so nothing is smuggled behind the head.
 *
 * http_parse_head() takes the bytes received so far and returns:
 *   HTTP_NEED (0)  the head is not complete yet;
 *   HTTP_BAD (-1)  refused: *status is the HTTP status to answer (400, 405,
 *                  414, 431, 505) and why says what was wrong;
 *   n > 0          the head was complete in its first n bytes (through the
 *                  empty line) and *r is filled.
 * Errors are reported as soon as the complete lines show them, and the
 * result never depends on how the bytes were split. */
#ifndef VMGATE_HTTP_H
#define VMGATE_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_NEED 0
#define HTTP_BAD  (-1)

#define HTTP_HEAD_MAX     8192
#define HTTP_LINE_MAX     4096
#define HTTP_HEADERS_MAX  64
#define HTTP_TARGET_MAX   2048
#define HTTP_FIELD_MAX    255       /* Host, Origin, Sec-WebSocket-* values */
#define HTTP_AUTH_MAX     2048      /* Authorization: Basic of the longest user:password */

struct http_req {
    char target[HTTP_TARGET_MAX + 1];
    int minor;                       /* HTTP/1.minor: 0 or 1 */
    char host[HTTP_FIELD_MAX + 1];   /* "" when absent */
    char origin[HTTP_FIELD_MAX + 1];
    char ws_key[HTTP_FIELD_MAX + 1];
    char ws_version[HTTP_FIELD_MAX + 1];
    bool upgrade_websocket;          /* Upgrade: lists "websocket" */
    bool connection_upgrade;         /* Connection: lists "upgrade" */
    bool connection_close;           /* Connection: lists "close" */
    char authorization[HTTP_AUTH_MAX + 1];   /* "" when absent (holds a password: wipe) */
    bool ws_binary_offered;          /* Sec-WebSocket-Protocol: lists "binary" */
    bool ws_protocol_present;        /* Sec-WebSocket-Protocol: was sent */
};

int http_parse_head(const uint8_t *p, size_t n, struct http_req *r, int *status,
                    char *why, size_t whylen);

/* The status line's reason phrase for the statuses vmgate sends. */
const char *http_reason(int status);

/* Map a request target to a relative file name under the served directory:
 * the part before '?' must be "/" (out = index) or "/" followed by segments
 * of [A-Za-z0-9_.~+-] that do not start with '.' (no ".", "..", hidden
 * files, no empty segment, no '%' escapes, no backslash).  0, or -1 when
 * the target names nothing that may be served.  The caller still resolves
 * symlinks and checks the result stays inside the directory. */
int http_target_file(const char *target, const char *index, char *out, size_t outsz);

/* The target's path (before '?'), for matching routes: out gets at most
 * outsz - 1 bytes; -1 if it does not fit. */
int http_target_path(const char *target, char *out, size_t outsz);

/* The Content-Type for a served file name by its extension, or NULL for a
 * kind that is not served. */
const char *http_mime_type(const char *name);

#endif
