/* proxy/http.c — the browser console's HTTP/1.1 request head (see http.h).
 * Pure: bytes in, a parsed request or a status out; no I/O, no logging. */
#include "proxy/http.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define WHY(...) snprintf(why, whylen, __VA_ARGS__)

static bool is_tchar(uint8_t ch)
{
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
        return true;
    return ch && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

/* A field value byte: visible ASCII, space, tab, or obs-text. */
static bool is_vchar(uint8_t ch) { return ch == ' ' || ch == '\t' || (ch > 0x20 && ch != 0x7f); }

/* Whether the comma-separated token list v (len bytes) holds tok
 * (case-insensitive, optional whitespace around the commas). */
static bool list_has(const char *v, size_t len, const char *tok)
{
    size_t tl = strlen(tok), i = 0;
    while (i < len) {
        while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t s = i;
        while (i < len && v[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e - s == tl && strncasecmp(v + s, tok, tl) == 0)
            return true;
    }
    return false;
}

/* Copy a single-valued field; a second occurrence or an over-long value is
 * refused. */
static int set_field_max(char *dst, size_t max, const char *name, const char *v, size_t len,
                         int *status, char *why, size_t whylen)
{
    if (dst[0]) {
        *status = 400;
        WHY("duplicate %s header", name);
        return -1;
    }
    if (len == 0 || len > max) {
        *status = len ? 431 : 400;
        WHY("%s header %s", name, len ? "too long" : "empty");
        return -1;
    }
    memcpy(dst, v, len);
    dst[len] = '\0';
    return 0;
}

static int set_field(char *dst, const char *name, const char *v, size_t len, int *status,
                     char *why, size_t whylen)
{
    return set_field_max(dst, HTTP_FIELD_MAX, name, v, len, status, why, whylen);
}

/* The request line: "GET SP target SP HTTP/1.x". */
static int request_line(const char *l, size_t len, struct http_req *r, int *status, char *why,
                        size_t whylen)
{
    size_t i = 0;
    while (i < len && is_tchar((uint8_t)l[i]))
        i++;
    if (i == 0 || i == len || l[i] != ' ') {
        *status = 400;
        WHY("malformed request line");
        return -1;
    }
    if (i != 3 || memcmp(l, "GET", 3) != 0) {
        *status = 405;
        WHY("method %.*s not allowed", (int)(i > 16 ? 16 : i), l);
        return -1;
    }
    size_t t = ++i;
    while (i < len && l[i] > 0x20 && l[i] != 0x7f)
        i++;
    size_t tl = i - t;
    if (tl == 0 || i == len || l[i] != ' ' || l[t] != '/') {
        *status = tl > HTTP_TARGET_MAX ? 414 : 400;
        WHY(tl > HTTP_TARGET_MAX ? "request target too long" : "malformed request target");
        return -1;
    }
    if (tl > HTTP_TARGET_MAX) {
        *status = 414;
        WHY("request target too long");
        return -1;
    }
    memcpy(r->target, l + t, tl);
    r->target[tl] = '\0';
    i++;
    if (len - i == 8 && memcmp(l + i, "HTTP/1.", 7) == 0 && (l[i + 7] == '0' || l[i + 7] == '1')) {
        r->minor = l[i + 7] - '0';
        return 0;
    }
    *status = (len - i >= 5 && memcmp(l + i, "HTTP/", 5) == 0) ? 505 : 400;
    WHY(*status == 505 ? "HTTP version not supported" : "malformed request line");
    return -1;
}

/* One header line "Name: value". */
static int header_line(const char *l, size_t len, struct http_req *r, int *status, char *why,
                       size_t whylen)
{
    size_t i = 0;
    while (i < len && is_tchar((uint8_t)l[i]))
        i++;
    if (i == 0 || i == len || l[i] != ':') {
        *status = 400;
        WHY(i == 0 && len && (l[0] == ' ' || l[0] == '\t') ? "obsolete line folding"
                                                           : "malformed header line");
        return -1;
    }
    size_t nl = i++;
    for (size_t k = i; k < len; k++)
        if (!is_vchar((uint8_t)l[k])) {
            *status = 400;
            WHY("control character in a header value");
            return -1;
        }
    while (i < len && (l[i] == ' ' || l[i] == '\t'))
        i++;
    size_t e = len;
    while (e > i && (l[e - 1] == ' ' || l[e - 1] == '\t'))
        e--;
    const char *v = l + i;
    size_t vl = e - i;
#define IS(name) (nl == sizeof(name) - 1 && strncasecmp(l, name, nl) == 0)
    if (IS("Host"))
        return set_field(r->host, "Host", v, vl, status, why, whylen);
    if (IS("Origin"))
        return set_field(r->origin, "Origin", v, vl, status, why, whylen);
    if (IS("Sec-WebSocket-Key"))
        return set_field(r->ws_key, "Sec-WebSocket-Key", v, vl, status, why, whylen);
    if (IS("Sec-WebSocket-Version"))
        return set_field(r->ws_version, "Sec-WebSocket-Version", v, vl, status, why, whylen);
    if (IS("Authorization"))
        return set_field_max(r->authorization, HTTP_AUTH_MAX, "Authorization", v, vl, status,
                             why, whylen);
    if (IS("Upgrade")) {
        r->upgrade_websocket |= list_has(v, vl, "websocket");
    } else if (IS("Connection")) {
        r->connection_upgrade |= list_has(v, vl, "upgrade");
        r->connection_close |= list_has(v, vl, "close");
    } else if (IS("Sec-WebSocket-Protocol")) {
        r->ws_protocol_present = true;
        r->ws_binary_offered |= list_has(v, vl, "binary");
    } else if (IS("Content-Length") || IS("Transfer-Encoding")) {
        *status = 400;
        WHY("a request body is not accepted");
        return -1;
    }
#undef IS
    return 0;
}

int http_parse_head(const uint8_t *p, size_t n, struct http_req *r, int *status,
                    char *why, size_t whylen)
{
    memset(r, 0, sizeof *r);
    *status = 0;
    size_t pos = 0;
    unsigned lines = 0;
    while (pos < n) {
        size_t rest = n - pos, cap = lines == 0 ? HTTP_TARGET_MAX + 16 : HTTP_LINE_MAX;
        const uint8_t *lf = memchr(p + pos, '\n', rest < cap + 2 ? rest : cap + 2);
        /* A CR anywhere but before the LF, a bare LF: malformed. */
        size_t win = lf ? (size_t)(lf - (p + pos)) : (rest < cap + 1 ? rest : cap + 1);
        const uint8_t *cr = memchr(p + pos, '\r', win);
        if (cr && (!lf || cr + 1 != lf) && cr + 1 < p + n) {
            *status = 400;
            WHY("CR without LF");
            return HTTP_BAD;
        }
        if (lf && !cr) {
            *status = 400;
            WHY("line ends without CR");
            return HTTP_BAD;
        }
        if (!lf) {
            if (rest >= cap + 2) {
                *status = lines == 0 ? 414 : 431;
                WHY(lines == 0 ? "request line too long" : "header line too long");
                return HTTP_BAD;
            }
            break;                              /* the line is not complete */
        }
        size_t len = (size_t)(lf - (p + pos)) - 1;   /* without CRLF */
        size_t next = pos + len + 2;
        if (next > HTTP_HEAD_MAX) {
            *status = 431;
            WHY("request head larger than %d bytes", HTTP_HEAD_MAX);
            return HTTP_BAD;
        }
        if (len == 0 && lines > 0) {
            if (r->minor == 1 && !r->host[0]) {
                *status = 400;
                WHY("HTTP/1.1 request without Host");
                return HTTP_BAD;
            }
            return (int)next;
        }
        int rc = lines == 0
                     ? request_line((const char *)p + pos, len, r, status, why, whylen)
                     : header_line((const char *)p + pos, len, r, status, why, whylen);
        if (rc < 0)
            return HTTP_BAD;
        if (++lines > HTTP_HEADERS_MAX + 1) {
            *status = 431;
            WHY("more than %d header lines", HTTP_HEADERS_MAX);
            return HTTP_BAD;
        }
        pos = next;
    }
    if (n >= HTTP_HEAD_MAX) {
        *status = 431;
        WHY("request head larger than %d bytes", HTTP_HEAD_MAX);
        return HTTP_BAD;
    }
    return HTTP_NEED;
}

const char *http_reason(int status)
{
    switch (status) {
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 414: return "URI Too Long";
    case 426: return "Upgrade Required";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default:  return "Error";
    }
}

int http_target_path(const char *target, char *out, size_t outsz)
{
    size_t n = strcspn(target, "?#");
    if (n >= outsz)
        return -1;
    memcpy(out, target, n);
    out[n] = '\0';
    return 0;
}

static bool is_name_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_' || ch == '.' || ch == '~' || ch == '+' || ch == '-';
}

int http_target_file(const char *target, const char *index, char *out, size_t outsz)
{
    char path[HTTP_TARGET_MAX + 1];
    if (http_target_path(target, path, sizeof path) < 0 || path[0] != '/')
        return -1;
    const char *s = path + 1;
    if (!*s)
        s = index;
    size_t n = strlen(s);
    if (n == 0 || n >= outsz)
        return -1;
    bool seg_start = true;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '/') {
            if (seg_start)
                return -1;                      /* empty segment: "//" or leading "/" */
            seg_start = true;
            continue;
        }
        if (!is_name_char(ch) || (seg_start && ch == '.'))
            return -1;                          /* '%', '\\', ".", "..", hidden files */
        seg_start = false;
    }
    if (seg_start)
        return -1;                              /* trailing '/': a directory */
    memcpy(out, s, n + 1);
    return 0;
}

const char *http_mime_type(const char *name)
{
    static const struct { const char *ext, *type; } types[] = {
        { "html", "text/html; charset=utf-8" },
        { "js", "text/javascript; charset=utf-8" },
        { "css", "text/css; charset=utf-8" },
        { "json", "application/json" },
        { "png", "image/png" },
        { "svg", "image/svg+xml" },
        { "ico", "image/x-icon" },
        { "mp3", "audio/mpeg" },
        { "oga", "audio/ogg" },
        { "ttf", "font/ttf" },
        { "woff", "font/woff" },
        { "woff2", "font/woff2" },
    };
    const char *dot = strrchr(name, '.'), *slash = strrchr(name, '/');
    if (!dot || (slash && dot < slash))
        return NULL;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strcmp(dot + 1, types[i].ext) == 0)
            return types[i].type;
    return NULL;
}
