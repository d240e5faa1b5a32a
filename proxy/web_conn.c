/* proxy/web_conn.c — the browser console (`web_port`): HTTPS that serves
 * noVNC's files, and the console WebSocket at /vnc/VM carrying RFB.
 *
 *   (core) TLS from the first byte → http-head (proxy/http.c) →
 *     a file from novnc_dir → close, or
 *     101 Switching Protocols → (tside) WebSocket framing on →
 *     the VNC states (vnc_conn.h) with VeNCrypt Plain and no ack:
 *     version → [19] → VeNCrypt 0.2 → [256] → credentials → (core) auth
 *     → backend → client-init → (core) relay with the rfbfilter
 *
 * vmgate's own page: GET / is web_dir/index.html, GET /vmgate/NAME is
 * web_dir/NAME, everything else a file of novnc_dir.  GET /api/vms with
 * `Authorization: Basic` is a login (AUTHP_REQ_VMS: same helper, fail
 * delay, bans and audit) answered with the JSON list of the VMs the user
 * may open, or 401 without WWW-Authenticate (no browser prompt), then
 * close.
 *
 * Keep-alive: a file answer to an HTTP/1.1 request keeps the connection
 * for the next request (at most WEB_KEEPALIVE_REQS, idle WEB_IDLE_S).  A
 * kept connection has completed a request that needed no credentials: it
 * leaves the unauthenticated count (conn_keepalive_idle), so a page load
 * does not use up the slots meant for logins; kept connections have their
 * own limits, per source max_unauth_per_source and in all max_unauth (past
 * them an answer says Connection: close).  A request that carries
 * credentials on a kept connection (/api/vms, the WebSocket) re-enters the
 * unauthenticated count under the usual caps (conn_unauth_again) or gets
 * 503.
 *
 * The framing is the transport's (tside.c: reads return the binary
 * frames' payload, writes go out as binary frames), so the RFB states and
 * the relay are the same code as vnc_proto's.  The VM comes from the URL:
 * an unknown VM, or one without a vnc backend, still gets the whole
 * handshake and is refused after the credentials like a wrong password. */
#include "proxy/core.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proxy/http.h"
#include "proxy/rfb.h"
#include "proxy/rfbfilter.h"
#include "proxy/vnc_conn.h"
#include "proxy/webapi.h"
#include "proxy/ws.h"

#define RX_CAP          (HTTP_HEAD_MAX + 512)
#define BRX_CAP         4096
#define F2B_CAP         (64 * 1024)
#define B2F_CAP         (256 * 1024)
#define FILE_CHUNK      (64 * 1024)
#define WS_FRAME_MAX    (16u << 20)
#define WEB_KEEPALIVE_REQS 100          /* requests on one kept-alive connection */
#define WEB_IDLE_S      15.0            /* a kept-alive connection's wait for a request */

#define SEC_HEADERS \
    "Content-Security-Policy: default-src 'self'; img-src 'self' data:; " \
    "frame-ancestors 'none'\r\n" \
    "X-Content-Type-Options: nosniff\r\n" \
    "Strict-Transport-Security: max-age=31536000\r\n" \
    "Referrer-Policy: no-referrer\r\n"

enum web_state {
    WB_HEAD = CS_PROTO + VNC_N_STATES, /* reading the request head */
    WB_SEND_FILE,                      /* streaming a file, then close */
    WB_SWITCH,                         /* 101 queued; framing starts once it left */
};

struct web {
    struct vnc v;                 /* first: the VNC states use it as theirs */
    struct cfg_vm novm;           /* the VM named in the URL when there is no such VM */
    int file;                     /* WB_SEND_FILE: the open file, -1 otherwise */
    unsigned served;              /* requests answered on this connection */
    bool keep;                    /* the answer being sent keeps the connection */
    bool kept;                    /* kept alive at least once (counted as such) */
    bool api;                     /* the login is a /api/vms request */
    struct authp_vms_resp *vms;   /* its answer (helper's list), while it is built */
};

#define W(c) ((struct web *)(c)->p)

/* Where a web connection is before its request names a VM. */
const struct cfg_vm web_vm_none = { .name = "-" };

/* An HTTP answer without a body worth reading: status, the security
 * headers, extra header lines (may be ""), then close. */
static void http_error(struct conn *c, int status, const char *extra)
{
    char msg[1024];
    const char *reason = http_reason(status);
    if (status >= 400 && status < 500 && status != 404)
        conn_hs_failed(c, PROXY_HS_HTTP);   /* a bad request or upgrade, not a missing file */
    int n = snprintf(msg, sizeof msg,
                     "HTTP/1.1 %d %s\r\n" SEC_HEADERS
                     "Content-Type: text/plain; charset=utf-8\r\n"
                     "Content-Length: %zu\r\n%sConnection: close\r\n\r\n%d %s\n",
                     status, reason, strlen(reason) + 5, extra, status, reason);
    conn_front_queue(c, msg, (size_t)n);
    conn_close_after(c);
}

/* Open name (relative, already checked by http_target_file) under dir, but
 * only if its real path (symlinks resolved) stays inside dir's real path
 * and is a regular file.  The fd, or -1. */
static int open_inside(const char *dir, const char *name, off_t *size)
{
    char root[PATH_MAX], full[PATH_MAX], real[PATH_MAX];
    if (!realpath(dir, root))
        return -1;
    if (snprintf(full, sizeof full, "%s/%s", root, name) >= (int)sizeof full)
        return -1;
    if (!realpath(full, real))
        return -1;
    size_t rl = strlen(root);
    if (strncmp(real, root, rl) != 0 || (real[rl] != '/' && rl != 1))
        return -1;
    int fd = open(real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return -1;
    }
    *size = st.st_size;
    return fd;
}

/* May c stay open after this answer?  An HTTP/1.1 request without
 * "Connection: close", under the request cap, and room among the kept
 * connections of its source and in all (a connection already kept keeps
 * its place). */
static bool keepalive_ok(struct conn *c, const struct http_req *r)
{
    if (r->minor != 1 || r->connection_close || W(c)->served + 1 >= WEB_KEEPALIVE_REQS)
        return false;
    if (W(c)->kept)
        return true;
    const struct cfg *cfg = c->px->cfg;
    unsigned mine = 0, all = 0;
    for (const struct conn *o = c->px->conns; o; o = o->next) {
        if (o->proto != c->proto || o->end.dead || !W(o)->kept)
            continue;
        all++;
        mine += strcmp(o->skey, c->skey) == 0;
    }
    return mine < cfg->max_unauth_per_source && all < cfg->max_unauth;
}

/* Which file a request names: "/" is vmgate's page (web_dir/index.html;
 * noVNC's vnc.html when it is not installed), "/vmgate/NAME" a file of
 * vmgate's page, anything else a file of novnc_dir.  The fd or -1. */
static int open_target(struct conn *c, const char *target, const char **type, off_t *size)
{
    const struct cfg *cfg = c->px->cfg;
    char name[HTTP_TARGET_MAX + 1], path[HTTP_TARGET_MAX + 1];
    if (http_target_path(target, path, sizeof path) != 0)
        return -1;
    int fd = -1;
    if (strcmp(path, "/") == 0) {
        *type = http_mime_type("index.html");
        fd = open_inside(cfg->web_dir, "index.html", size);
        if (fd >= 0)
            return fd;
    } else if (strncmp(path, "/vmgate/", 8) == 0) {
        if (http_target_file(target + 7, "index.html", name, sizeof name) != 0 ||
            !(*type = http_mime_type(name)))
            return -1;
        return open_inside(cfg->web_dir, name, size);
    }
    if (http_target_file(target, "vnc.html", name, sizeof name) == 0 &&
        (*type = http_mime_type(name)) != NULL)
        fd = open_inside(cfg->novnc_dir, name, size);
    return fd;
}

static void serve_file(struct conn *c, const struct http_req *r)
{
    const char *type = NULL;
    off_t size = 0;
    int fd = open_target(c, r->target, &type, &size);
    if (fd < 0) {
        conn_log(c, LOG_LVL_DEBUG, "GET %.200s: 404", r->target);
        http_error(c, 404, "");
        return;
    }
    W(c)->keep = keepalive_ok(c, r);
    W(c)->served++;
    char head[1024];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 200 OK\r\n" SEC_HEADERS
                     "Content-Type: %s\r\nContent-Length: %lld\r\n"
                     "Cache-Control: no-cache\r\nConnection: %s\r\n\r\n",
                     type, (long long)size, W(c)->keep ? "keep-alive" : "close");
    conn_front_queue(c, head, (size_t)n);
    W(c)->file = fd;
    conn_set_state(c, WB_SEND_FILE);
}

static bool st_send_file(struct conn *c)
{
    struct buf *out = c_b2f(c);
    if (buf_room(out) < FILE_CHUNK)
        return false;                   /* wait for the viewer to take some */
    size_t avail;
    uint8_t *tail = buf_tail(out, &avail);
    if (!tail) {
        conn_fail(c, LOG_LVL_ERR, "out of memory");
        return false;
    }
    ssize_t n = read(W(c)->file, tail, avail < FILE_CHUNK ? avail : FILE_CHUNK);
    if (n > 0) {
        buf_produce(out, (size_t)n);
        return true;
    }
    if (n < 0 && errno == EINTR)
        return true;
    close(W(c)->file);
    W(c)->file = -1;
    if (n < 0) {
        conn_fail(c, LOG_LVL_WARN, "reading a served file: %s", strerror(errno));
        return false;
    }
    if (W(c)->keep) {
        /* the next request (maybe already in rx); out of the login count */
        W(c)->kept = true;
        conn_keepalive_idle(c, WEB_IDLE_S);
        conn_set_state(c, WB_HEAD);
        return true;
    }
    conn_close_after(c);
    return true;
}

/* The Origin the browser sent is this server (https:// + Host) or listed
 * in web_origins. */
static bool origin_ok(const struct conn *c, const struct http_req *r)
{
    if (!r->origin[0])
        return false;
    char self[HTTP_FIELD_MAX + 16];
    snprintf(self, sizeof self, "https://%s", r->host);
    if (r->host[0] && strcasecmp(self, r->origin) == 0)
        return true;
    const struct cfg *cfg = c->px->cfg;
    for (size_t i = 0; i < cfg->n_web_origins; i++)
        if (strcasecmp(cfg->web_origins[i], r->origin) == 0)
            return true;
    return false;
}

/* A VM name as the config allows it: 1..CFG_NAME_MAX of [A-Za-z0-9_.-]. */
static bool vm_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > CFG_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '.' || ch == '-'))
            return false;
    }
    return true;
}

static void upgrade(struct conn *c, const struct http_req *r, const char *name)
{
    if (!r->upgrade_websocket || !r->connection_upgrade) {
        conn_log(c, LOG_LVL_INFO, "WebSocket refused: %s", !r->upgrade_websocket
                 ? "no \"Upgrade: websocket\" header" : "no \"Connection: Upgrade\" header");
        http_error(c, 426, "Upgrade: websocket\r\n");
        return;
    }
    if (strcmp(r->ws_version, "13") != 0) {
        conn_log(c, LOG_LVL_INFO, "WebSocket version \"%.20s\" refused", r->ws_version);
        http_error(c, 426, "Sec-WebSocket-Version: 13\r\n");
        return;
    }
    if (!ws_key_ok(r->ws_key)) {
        conn_log(c, LOG_LVL_INFO, "bad Sec-WebSocket-Key");
        http_error(c, 400, "");
        return;
    }
    if (!origin_ok(c, r)) {
        char o[64];
        log_safe(o, sizeof o, r->origin, strlen(r->origin));
        conn_log(c, LOG_LVL_INFO, "WebSocket from Origin \"%s\" refused (403)", o);
        http_error(c, 403, "");
        return;
    }
    if (!vm_name_ok(name)) {
        http_error(c, 404, "");         /* no config can name it: nothing to hide */
        return;
    }
    if (!buf_empty(&c->rx)) {
        conn_fail(c, LOG_LVL_INFO, "bytes after the upgrade request, before the answer");
        return;
    }
    /* The VM: the configured one with a vnc backend, or a stand-in named
     * "?NAME" (no config name starts with '?', so the helper answers "no
     * such vm" with a wrong password's failure and timing, and it counts
     * towards the ban like one). */
    const struct cfg_vm *vm = cfg_find_vm(c->px->cfg, name);
    if (vm && vm->vnc.kind != CFG_BE_NONE) {
        c->vm = vm;
    } else {
        snprintf(W(c)->novm.name, sizeof W(c)->novm.name, "?%.*s", CFG_NAME_MAX - 1, name);
        c->vm = &W(c)->novm;
    }
    char accept[WS_ACCEPT_LEN + 1], msg[512];
    ws_accept(r->ws_key, accept);
    int n = snprintf(msg, sizeof msg,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s\r\n",
                     accept, r->ws_binary_offered ? "Sec-WebSocket-Protocol: binary\r\n" : "");
    conn_front_queue(c, msg, (size_t)n);
    conn_set_state(c, WB_SWITCH);
}

/* An answer with a JSON body, then close (the /api/vms answers). */
static void json_answer(struct conn *c, int status, const char *body, size_t len)
{
    char head[512];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\n" SEC_HEADERS
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
                     status, http_reason(status), len);
    conn_front_queue(c, head, (size_t)n);
    conn_front_queue(c, body, len);
    conn_close_after(c);
}

/* GET /api/vms: the credentials of the Authorization header go to the
 * helper as a VM list request (a login for bans, fail delay and audit).
 * No header: 401 at once (nothing was tried); a malformed one fails like a
 * wrong password. */
static void api_vms(struct conn *c, struct http_req *r)
{
    static const char need[] = "{\"error\":\"credentials required\"}";
    if (!r->authorization[0]) {
        json_answer(c, 401, need, sizeof need - 1);
        return;
    }
    if (!conn_unauth_again(c)) {
        conn_log(c, LOG_LVL_INFO, "VM list refused: unauthenticated connection caps full");
        http_error(c, 503, "");
        return;
    }
    char pass[AUTHP_PASS_MAX + 1];
    W(c)->api = true;
    c->quiet_end = true;
    if (webapi_basic(r->authorization, c->user, sizeof c->user, pass, sizeof pass) != 0) {
        snprintf(c->user, sizeof c->user, "?");
        conn_log(c, LOG_LVL_INFO, "VM list: malformed Authorization header");
        conn_login_failed(c);
    } else {
        conn_login_vms(c, pass);
    }
    explicit_bzero(pass, sizeof pass);
}

static bool st_head(struct conn *c)
{
    ssize_t n = conn_front_read(c, &c->rx, RX_CAP - buf_len(&c->rx));
    if (n < 0)
        return false;
    static struct http_req r;   /* large; one connection steps at a time */
    int status;
    char why[128];
    int rc = http_parse_head(buf_head(&c->rx), buf_len(&c->rx), &r, &status, why, sizeof why);
    if (rc == HTTP_NEED)
        return n > 0;
    if (rc == HTTP_BAD) {
        conn_log(c, LOG_LVL_INFO, "bad HTTP request (%d): %s", status, why);
        http_error(c, status, status == 405 ? "Allow: GET\r\n" : "");
        return true;
    }
    explicit_bzero((void *)buf_head(&c->rx), (size_t)rc);    /* it may hold a password */
    buf_consume(&c->rx, (size_t)rc);
    char path[HTTP_TARGET_MAX + 1];
    http_target_path(r.target, path, sizeof path);
    if (strcmp(path, "/api/vms") == 0) {
        api_vms(c, &r);
        explicit_bzero(r.authorization, sizeof r.authorization);
        return true;
    }
    explicit_bzero(r.authorization, sizeof r.authorization);
    if (strncmp(path, "/vnc/", 5) == 0) {
        if (!conn_unauth_again(c)) {
            conn_log(c, LOG_LVL_INFO, "WebSocket refused: unauthenticated connection caps full");
            http_error(c, 503, "");
            return true;
        }
        c->quiet_end = false;
        upgrade(c, &r, path + 5);
        return true;
    }
    c->quiet_end = true;                /* a file: its end is not news */
    serve_file(c, &r);
    return true;
}

/* The 101 is out: from here on the viewer's bytes are WebSocket frames. */
static bool st_switch(struct conn *c)
{
    if (!buf_empty(c_b2f(c)) || tside_pending(&c->fs))
        return false;
    if (tside_ws_start(&c->fs, WS_FRAME_MAX) != 0) {
        conn_fail(c, LOG_LVL_ERR, "out of memory");
        return false;
    }
    W(c)->v.in_tls = true;
    conn_log(c, LOG_LVL_DEBUG, "WebSocket open");
    static const char version[] = "RFB 003.008\n";
    conn_front_queue(c, version, RFB_VERSION_LEN);
    conn_set_state(c, VS_READ_VERSION);
    return true;
}

/* ---------------------------------------------------------------------- */

/* The VNC states first, at the numbers their steps use (filled in from
 * vnc_states by start(): a const object is no constant expression). */
static struct conn_state_def web_states[VNC_N_STATES + 3] = {
    [WB_HEAD - CS_PROTO] = { "http-head", CSF_FRONT_READ, st_head, NULL },
    [WB_SEND_FILE - CS_PROTO] = { "http-file", 0, st_send_file, NULL },
    [WB_SWITCH - CS_PROTO] = { "ws-switch", 0, st_switch, NULL },
};

static void start(struct conn *c)
{
    if (!web_states[0].step)
        memcpy(web_states, vnc_states, sizeof vnc_states);
    W(c)->file = -1;
    conn_start_tls(c, WB_HEAD);
}

/* A VM list came with the helper's answer: keep it for login_ok. */
static void login_answer(struct conn *c, const struct authp_login_resp *resp)
{
    if (!W(c)->api || resp->result != AUTHP_OK || !resp->vms)
        return;
    if (!W(c)->vms)
        W(c)->vms = malloc(sizeof *W(c)->vms);
    if (W(c)->vms)
        memcpy(W(c)->vms, resp->vms, sizeof *W(c)->vms);
}

static void login_tag(struct conn *c, char *out, size_t outsz)
{
    if (W(c)->api)
        snprintf(out, outsz, " (VM list: %u)", W(c)->vms ? W(c)->vms->n : 0);
    else
        out[0] = '\0';
}

/* The VM list's answer: the JSON, then close. */
static void api_ok(struct conn *c)
{
    conn_authenticated(c);
    static char body[WEBAPI_JSON_MAX];
    int n = W(c)->vms ? webapi_vms_json(c->user, W(c)->vms, body, sizeof body) : -1;
    if (n < 0) {
        conn_fail(c, LOG_LVL_ERR, "internal: no VM list to answer with");
        return;
    }
    json_answer(c, 200, body, (size_t)n);
}

/* A refused VM list: 401 (no WWW-Authenticate: the page says it, the
 * browser asks nothing), then close. */
static void login_refuse(struct conn *c)
{
    if (!W(c)->api) {
        vnc_login_refuse(c);
        return;
    }
    static const char no[] = "{\"error\":\"login refused\"}";
    json_answer(c, 401, no, sizeof no - 1);
}

/* The helper said yes (it never should for the "?NAME" stand-in): the
 * same refusal as a wrong password, to be safe. */
static void login_ok(struct conn *c)
{
    if (W(c)->api) {
        api_ok(c);
        return;
    }
    if (c->vm == &W(c)->novm) {
        c->authed = false;
        conn_log(c, LOG_LVL_INFO, "vm %s has no vnc backend: refused", c->vm->name);
        conn_login_failed(c);
        return;
    }
    vnc_login_ok(c);
}

static void destroy(struct conn *c)
{
    if (W(c)->file >= 0)
        close(W(c)->file);
    if (W(c)->vms) {
        explicit_bzero(W(c)->vms, sizeof *W(c)->vms);
        free(W(c)->vms);
    }
    vnc_destroy(c);
}

/* TLS from the first byte; HTTP, then a file or RFB in a WebSocket with
 * the VNC states and relay filter. */
const struct conn_proto web_proto = {
    .name = "web", .accept_tag = " (web)", .admit_tag = "", .via = "web",
    .states = web_states, .n_states = sizeof web_states / sizeof web_states[0],
    .rx_cap = RX_CAP, .brx_cap = BRX_CAP, .f2b_cap = F2B_CAP, .b2f_cap = B2F_CAP,
    .priv_size = sizeof(struct web), .inj_cap = RFBFILTER_INJECT_CAP,
    .b2f_headroom = TSIDE_HEADROOM,
    .start = start, .login_answer = login_answer, .login_ok = login_ok,
    .login_refuse = login_refuse, .login_tag = login_tag,
    .backend_up = vnc_backend_up, .vm_unavailable = vnc_vm_unavailable, .filter = vnc_filter,
    .destroy = destroy,
};
