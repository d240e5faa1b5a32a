/* common/config.c — the INI parser and the config model; see config.h.
 *
 * One pass over the text, line by line.  Every key is checked when it is
 * read (so its error names its own line); what can only be known at the end
 * (a VM missing its backend, VM defaults taken from [gateway] keys that may
 * come later in the file) is checked in finish() and names the section
 * header's line.  Nothing here prints or touches files except cfg_load(). */
#include "common/config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/addr.h"

#define DEF_ADDRESS        "0.0.0.0"
#define DEF_CONTROL        "/run/vmgate/control"
#define DEF_ADMIN_GROUP    "vmgate-admin"
#define DEF_CERT           "/etc/vmgate/tls/server.crt"
#define DEF_KEY            "/etc/vmgate/tls/server.key"
#define DEF_PAM_SERVICE    "vmgate"
#define DEF_PASSWD_FILE    "/etc/vmgate/passwd"
#define DEF_NOVNC_DIR      "/usr/share/novnc"
#define DEF_WEB_DIR        "/usr/share/vmgate/web"   /* make install, the deb */
#define DEF_USER           "vmgate"
#define DEF_SOCKET_DIR     "/run/vmgate"
#define DEF_LOGIN_TIMEOUT  (30 * MS_S)
#define DEF_FIRST_BYTE     (5 * MS_S)
#define DEF_CLIP_MAX       (256 * KIB)
#define DEF_MAX_UNAUTH     64
#define DEF_MAX_UNAUTH_SRC 8
#define DEF_FAIL_DELAY     (2 * MS_S)
#define DEF_AUTH_WORKERS   4
#define DEF_PROTECT_LO     5900
#define DEF_PROTECT_HI     6100
#define DEF_BAN_AFTER      5
#define DEF_BAN_WINDOW     (10 * MS_M)
#define DEF_BAN_TIME       (15 * MS_M)

#define MS_S   UINT64_C(1000)
#define MS_M   (60 * MS_S)
#define MS_H   (60 * MS_M)
#define MS_D   (24 * MS_H)
#define KIB    UINT64_C(1024)
#define MIB    (1024 * KIB)
#define GIB    (1024 * MIB)

#define CFG_LIST_NAME_MAX  255     /* one entry of users / groups */
#define CFG_FILE_MAX       (16u << 20)

/* ---- key tables: one id per key, so duplicate detection is an array ---- */

enum gw_key {
    GK_ADDRESS, GK_CERT, GK_KEY, GK_AUTH, GK_PAM_SERVICE, GK_PASSWD_FILE, GK_USER,
    GK_LOGIN_TIMEOUT, GK_CLIPBOARD, GK_CLIPBOARD_MAX, GK_MAX_UNAUTH,
    GK_MAX_UNAUTH_SRC, GK_FAIL_DELAY, GK_AUTH_WORKERS, GK_PROCESSES, GK_FIRST_BYTE, GK_SANDBOX,
    GK_SOCKET_DIR, GK_AUDIT, GK_CONTROL, GK_ADMIN_GROUP, GK_METRICS, GK_WEB_PORT, GK_NOVNC_DIR,
    GK_WEB_ORIGINS, GK_CU, GK_PROXY_PROTOCOL, GK_IDLE_PAUSE, GK_WEB_DIR, GK_N
};
enum fw_key { FK_PROTECT, FK_ALLOW, FK_BAN_AFTER, FK_BAN_WINDOW, FK_BAN_TIME, FK_N };
enum vm_key {
    VK_VNC, VK_VNC_PORT, VK_SPICE, VK_SPICE_PORT, VK_QMP, VK_USERS, VK_GROUPS,
    VK_CLIPBOARD, VK_CLIPBOARD_MAX, VK_QEMU_CONSOLES, VK_SPICE_CHANNELS, VK_CU, VK_SERIAL,
    VK_IDLE_PAUSE, VK_POWER_USERS, VK_POWER_GROUPS, VK_QGA, VK_N
};

struct key_def {
    const char *name;
    int id;
    bool empty_ok;      /* "key =" is a meaningful value (e.g. "nobody") */
};

static const struct key_def gw_keys[] = {
    { "address", GK_ADDRESS, false },
    { "cert", GK_CERT, false },
    { "key", GK_KEY, false },
    { "auth", GK_AUTH, false },
    { "pam_service", GK_PAM_SERVICE, false },
    { "passwd_file", GK_PASSWD_FILE, false },
    { "user", GK_USER, true },
    { "login_timeout", GK_LOGIN_TIMEOUT, false },
    { "first_byte_timeout", GK_FIRST_BYTE, false },
    { "clipboard", GK_CLIPBOARD, false },
    { "clipboard_max", GK_CLIPBOARD_MAX, false },
    { "continuous_updates", GK_CU, false },
    { "idle_pause", GK_IDLE_PAUSE, false },
    { "max_unauth", GK_MAX_UNAUTH, false },
    { "max_unauth_per_source", GK_MAX_UNAUTH_SRC, false },
    { "fail_delay", GK_FAIL_DELAY, false },
    { "auth_workers", GK_AUTH_WORKERS, false },
    { "processes", GK_PROCESSES, false },
    { "sandbox", GK_SANDBOX, false },
    { "socket_dir", GK_SOCKET_DIR, true },
    { "audit", GK_AUDIT, true },
    { "control", GK_CONTROL, true },
    { "admin_group", GK_ADMIN_GROUP, true },
    { "metrics", GK_METRICS, true },
    { "web_port", GK_WEB_PORT, false },
    { "novnc_dir", GK_NOVNC_DIR, false },
    { "web_dir", GK_WEB_DIR, false },
    { "web_origins", GK_WEB_ORIGINS, true },
    { "proxy_protocol", GK_PROXY_PROTOCOL, true },
    { NULL, 0, false }
};

static const struct key_def fw_keys[] = {
    { "protect", FK_PROTECT, false },
    { "allow", FK_ALLOW, true },
    { "ban_after", FK_BAN_AFTER, false },
    { "ban_window", FK_BAN_WINDOW, false },
    { "ban_time", FK_BAN_TIME, false },
    { NULL, 0, false }
};

static const struct key_def vm_keys[] = {
    { "vnc", VK_VNC, false },
    { "vnc_port", VK_VNC_PORT, false },
    { "spice", VK_SPICE, false },
    { "spice_port", VK_SPICE_PORT, false },
    { "qmp", VK_QMP, false },
    { "users", VK_USERS, true },
    { "groups", VK_GROUPS, true },
    { "clipboard", VK_CLIPBOARD, false },
    { "clipboard_max", VK_CLIPBOARD_MAX, false },
    { "qemu_consoles", VK_QEMU_CONSOLES, false },
    { "spice_channels", VK_SPICE_CHANNELS, false },
    { "continuous_updates", VK_CU, false },
    { "serial", VK_SERIAL, false },
    { "idle_pause", VK_IDLE_PAUSE, false },
    { "power_users", VK_POWER_USERS, true },
    { "power_groups", VK_POWER_GROUPS, true },
    { "qga", VK_QGA, false },
    { NULL, 0, false }
};

enum section { SEC_NONE, SEC_GATEWAY, SEC_FIREWALL, SEC_VM };

/* Per-VM parser bookkeeping, parallel to cfg.vms: the line each key was set on. */
struct vm_lines {
    int key[VK_N];
};

struct parser {
    const char *fname;
    const char *basedir;        /* relative paths are joined to this; NULL = keep as given */
    struct cfg *c;
    char *err;
    size_t errlen;
    enum section sec;
    int gw_hdr, fw_hdr;         /* header line of [gateway] / [firewall]; 0 = absent */
    int gw_key[GK_N];
    int fw_key[FK_N];
    struct vm_lines *vml;
    size_t vm_cap;
    char shown[96];             /* scratch for a value quoted in a message */
};

/* ---- small helpers ---- */

static bool is_digit(char ch) { return ch >= '0' && ch <= '9'; }
static bool is_space(char ch) { return ch == ' ' || ch == '\t'; }
static bool is_alnum(char ch)
{
    return is_digit(ch) || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

/* Write "FNAME:LINE: message" into the caller's buffer; always returns -1. */
__attribute__((format(printf, 3, 4)))
static int fail(struct parser *p, int line, const char *fmt, ...)
{
    if (!p->err || p->errlen == 0)
        return -1;
    int n = snprintf(p->err, p->errlen, "%s:%d: ", p->fname, line);
    if (n >= 0 && (size_t)n < p->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* A value as shown inside quotes in a message: at most 64 bytes, then "...",
 * so a 4000-byte bad value cannot push the useful part of the message out. */
static const char *shown(struct parser *p, const char *v)
{
    size_t n = strlen(v);
    if (n <= 64)
        snprintf(p->shown, sizeof p->shown, "%s", v);
    else
        snprintf(p->shown, sizeof p->shown, "%.64s...", v);
    return p->shown;
}

static void set_why(char *why, size_t whylen, const char *msg)
{
    if (why && whylen)
        snprintf(why, whylen, "%s", msg);
}

static char *trim(char *s)
{
    while (is_space(*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && is_space(s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* Decimal digits only (no sign, no spaces, no 0x); rejects overflow. */
static int parse_u64(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(s[i]))
            return -1;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* Leading digits of s into *n (overflow-checked); returns the suffix. */
static const char *number_prefix(const char *s, uint64_t *n)
{
    size_t i = 0;
    while (is_digit(s[i]))
        i++;
    if (i == 0 || parse_u64(s, i, n) < 0)
        return NULL;
    return s + i;
}

/* ---- public value parsers ---- */

/* "N" (seconds), "Nms", "Ns", "Nm", "Nh", "Nd" -> milliseconds.  No sign,
 * no spaces, no fractions; overflow of the product is an error. */
int cfg_parse_duration_ms(const char *s, uint64_t *out)
{
    uint64_t n, mult;
    if (!s || !(s = number_prefix(s, &n)))
        return -1;
    if (strcmp(s, "") == 0 || strcmp(s, "s") == 0)
        mult = MS_S;
    else if (strcmp(s, "ms") == 0)
        mult = 1;
    else if (strcmp(s, "m") == 0)
        mult = MS_M;
    else if (strcmp(s, "h") == 0)
        mult = MS_H;
    else if (strcmp(s, "d") == 0)
        mult = MS_D;
    else
        return -1;
    if (n > UINT64_MAX / mult)
        return -1;
    *out = n * mult;
    return 0;
}

/* "N" bytes, or "NK" / "NM" / "NG" (binary units, either case). */
int cfg_parse_size(const char *s, uint64_t *out)
{
    uint64_t n, mult;
    if (!s || !(s = number_prefix(s, &n)))
        return -1;
    if (s[0] == '\0')
        mult = 1;
    else if (s[1] != '\0')
        return -1;
    else if (s[0] == 'K' || s[0] == 'k')
        mult = KIB;
    else if (s[0] == 'M' || s[0] == 'm')
        mult = MIB;
    else if (s[0] == 'G' || s[0] == 'g')
        mult = GIB;
    else
        return -1;
    if (n > UINT64_MAX / mult)
        return -1;
    *out = n * mult;
    return 0;
}

/* A socket path: absolute, at most CFG_PATH_MAX bytes (sun_path), no
 * control bytes.  Copies into out (CFG_PATH_MAX + 1 bytes). */
static int check_sock_path(const char *s, char *out, char *why, size_t whylen)
{
    size_t n = strlen(s);
    if (n == 0) {
        set_why(why, whylen, "empty path");
        return -1;
    }
    if (s[0] != '/') {
        set_why(why, whylen, "path must be absolute");
        return -1;
    }
    if (n > CFG_PATH_MAX) {
        if (why && whylen)
            snprintf(why, whylen, "path longer than %d bytes", CFG_PATH_MAX);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
            set_why(why, whylen, "control character in path");
            return -1;
        }
    }
    memcpy(out, s, n + 1);
    return 0;
}

/* Backends: "unix:/abs/path", "qmp:/abs/path", "A.B.C.D:PORT",
 * "localhost:PORT", "[IPv6]:PORT".  Host names other than localhost are
 * refused: the backend is QEMU on this host, and a resolver lookup would be
 * both slow and a way to send consoles somewhere unexpected. */
int cfg_parse_backend(const char *s, struct cfg_backend *out, char *why, size_t whylen)
{
    struct cfg_backend b;
    memset(&b, 0, sizeof b);
    if (!s || !*s) {
        set_why(why, whylen, "empty backend address");
        return -1;
    }
    if (strncmp(s, "unix:", 5) == 0 || strncmp(s, "qmp:", 4) == 0) {
        bool unix_kind = s[0] == 'u';
        b.kind = unix_kind ? CFG_BE_UNIX : CFG_BE_QMP;
        if (check_sock_path(s + (unix_kind ? 5 : 4), b.path, why, whylen) < 0)
            return -1;
        *out = b;
        return 0;
    }

    if (!strchr(s, ':')) {
        set_why(why, whylen, "missing port (use HOST:PORT, unix:PATH or qmp:PATH)");
        return -1;
    }
    if (addr_hostport_parse(s, b.host, sizeof b.host, &b.port, why, whylen) < 0)
        return -1;
    b.kind = CFG_BE_TCP;
    *out = b;
    return 0;
}

void cfg_backend_str(const struct cfg_backend *b, char *out, size_t outsz)
{
    if (!out || outsz == 0)
        return;
    switch (b->kind) {
    case CFG_BE_UNIX:
        snprintf(out, outsz, "unix:%s", b->path);
        break;
    case CFG_BE_QMP:
        snprintf(out, outsz, "qmp:%s", b->path);
        break;
    case CFG_BE_TCP:
        addr_hostport_str(b->host, b->port, out, outsz);
        break;
    default:
        snprintf(out, outsz, "none");
        break;
    }
}

const char *cfg_clip_name(enum cfg_clip c)
{
    switch (c) {
    case CFG_CLIP_BOTH: return "both";
    case CFG_CLIP_TO_VM: return "to-vm";
    case CFG_CLIP_FROM_VM: return "from-vm";
    case CFG_CLIP_NONE: return "none";
    }
    return "?";
}

const char *cfg_qcons_name(enum cfg_qcons q)
{
    return q == CFG_QCONS_ALLOW ? "allow" : "block";
}

const char *cfg_cu_name(enum cfg_cu m)
{
    return m == CFG_CU_OFF ? "off" : "auto";
}

/* continuous_updates = auto | off. */
static int set_cu(struct parser *p, int line, const char *v, enum cfg_cu *out)
{
    if (strcmp(v, "auto") == 0)
        *out = CFG_CU_AUTO;
    else if (strcmp(v, "off") == 0)
        *out = CFG_CU_OFF;
    else
        return fail(p, line, "bad continuous_updates \"%s\" (use auto or off)", shown(p, v));
    return 0;
}

static int parse_clip(const char *s, enum cfg_clip *out)
{
    static const enum cfg_clip all[] = {
        CFG_CLIP_BOTH, CFG_CLIP_TO_VM, CFG_CLIP_FROM_VM, CFG_CLIP_NONE
    };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        if (strcmp(s, cfg_clip_name(all[i])) == 0) {
            *out = all[i];
            return 0;
        }
    }
    return -1;
}

/* Durations and sizes printed back in the largest exact unit. */
static const char *fmt_duration(uint64_t ms, char *buf, size_t sz)
{
    if (ms == 0)
        snprintf(buf, sz, "0s");
    else if (ms % MS_D == 0)
        snprintf(buf, sz, "%llud", (unsigned long long)(ms / MS_D));
    else if (ms % MS_H == 0)
        snprintf(buf, sz, "%lluh", (unsigned long long)(ms / MS_H));
    else if (ms % MS_M == 0)
        snprintf(buf, sz, "%llum", (unsigned long long)(ms / MS_M));
    else if (ms % MS_S == 0)
        snprintf(buf, sz, "%llus", (unsigned long long)(ms / MS_S));
    else
        snprintf(buf, sz, "%llums", (unsigned long long)ms);
    return buf;
}

static const char *fmt_size(uint64_t n, char *buf, size_t sz)
{
    if (n != 0 && n % GIB == 0)
        snprintf(buf, sz, "%lluG", (unsigned long long)(n / GIB));
    else if (n != 0 && n % MIB == 0)
        snprintf(buf, sz, "%lluM", (unsigned long long)(n / MIB));
    else if (n != 0 && n % KIB == 0)
        snprintf(buf, sz, "%lluK", (unsigned long long)(n / KIB));
    else
        snprintf(buf, sz, "%llu", (unsigned long long)n);
    return buf;
}

/* ---- typed setters: each checks one value and names the key on error ---- */

static int set_uint(struct parser *p, int line, const char *key, const char *v,
                    uint64_t lo, uint64_t hi, uint64_t *out)
{
    uint64_t n = 0;
    if (parse_u64(v, strlen(v), &n) < 0)
        return fail(p, line, "bad number \"%s\" for %s", shown(p, v), key);
    if (n < lo || n > hi)
        return fail(p, line, "%s %s out of range (%llu..%llu)", key, shown(p, v),
                    (unsigned long long)lo, (unsigned long long)hi);
    *out = n;
    return 0;
}

static int set_unsigned(struct parser *p, int line, const char *key, const char *v,
                        unsigned lo, unsigned hi, unsigned *out)
{
    uint64_t n = 0;
    if (set_uint(p, line, key, v, lo, hi, &n) < 0)
        return -1;
    *out = (unsigned)n;
    return 0;
}

static int set_duration(struct parser *p, int line, const char *key, const char *v,
                        uint64_t lo, uint64_t hi, uint64_t *out)
{
    uint64_t ms;
    char a[32], b[32];
    if (cfg_parse_duration_ms(v, &ms) < 0)
        return fail(p, line, "bad duration \"%s\" (use s, m, h, d)", shown(p, v));
    if (ms < lo || ms > hi)
        return fail(p, line, "%s %s out of range (%s..%s)", key, shown(p, v),
                    fmt_duration(lo, a, sizeof a), fmt_duration(hi, b, sizeof b));
    *out = ms;
    return 0;
}

static int set_size(struct parser *p, int line, const char *key, const char *v,
                    uint64_t lo, uint64_t hi, uint64_t *out)
{
    uint64_t n = 0;
    char a[32], b[32];
    if (cfg_parse_size(v, &n) < 0)
        return fail(p, line, "bad size \"%s\" (use K, M, G)", shown(p, v));
    if (n < lo || n > hi)
        return fail(p, line, "%s %s out of range (%s..%s)", key, shown(p, v),
                    fmt_size(lo, a, sizeof a), fmt_size(hi, b, sizeof b));
    *out = n;
    return 0;
}

static int set_clip(struct parser *p, int line, const char *v, enum cfg_clip *out)
{
    if (parse_clip(v, out) < 0)
        return fail(p, line, "bad clipboard \"%s\" (use both, to-vm, from-vm, none)",
                    shown(p, v));
    return 0;
}

/* A name made of [A-Za-z0-9_.-] plus the bytes in extra, 1..max bytes. */
static bool name_ok(const char *s, size_t max, const char *extra)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!is_alnum(ch) && ch != '_' && ch != '.' && ch != '-' &&
            !(extra && strchr(extra, ch)))
            return false;
    }
    return true;
}

static int set_name(struct parser *p, int line, const char *key, const char *v,
                    char *out, size_t outsz)
{
    if (!name_ok(v, outsz - 1, NULL))
        return fail(p, line, "bad %s \"%s\" (1..%zu of A-Z a-z 0-9 _ . -)", key,
                    shown(p, v), outsz - 1);
    memcpy(out, v, strlen(v) + 1);
    return 0;
}

/* audit / control: an absolute path that fits a unix socket address (the
 * daemon opens them before it changes user, whatever its working
 * directory). */
static int set_abs_path(struct parser *p, int line, const char *key, const char *v, char *out,
                        size_t outsz)
{
    if (v[0] != '/' || strlen(v) >= outsz)
        return fail(p, line, "bad %s \"%s\" (need an absolute path of at most %zu bytes)", key,
                    shown(p, v), outsz - 1);
    memcpy(out, v, strlen(v) + 1);
    return 0;
}

/* cert / key / passwd_file: an absolute path is kept; a relative one is
 * joined to the config file's directory, so the daemon finds the same file
 * whatever its working directory.  Leading "./" components are dropped. */
static int set_path(struct parser *p, int line, const char *v, char **out)
{
    char *s;
    if (v[0] == '/' || !p->basedir) {
        s = strdup(v);
    } else {
        while (v[0] == '.' && v[1] == '/') {
            v += 2;
            while (*v == '/')
                v++;
        }
        size_t bl = strlen(p->basedir), vl = strlen(v);
        bool slash = bl > 0 && p->basedir[bl - 1] == '/';
        s = malloc(bl + vl + 2);
        if (s) {
            memcpy(s, p->basedir, bl);
            if (!slash)
                s[bl++] = '/';
            memcpy(s + bl, v, vl + 1);
            if (vl == 0 && bl > 1)      /* "./" alone: the directory itself */
                s[bl - 1] = '\0';
        }
    }
    if (!s)
        return fail(p, line, "out of memory");
    free(*out);
    *out = s;
    return 0;
}

/* One allow entry: ADDR or ADDR/PREFIX as the firewall reads it
 * (addr_net_parse(): numeric, prefix 0..32 / 0..128 without leading zeros,
 * IPv4-mapped written as IPv4), stored in the firewall's canonical form
 * ("2001:DB8::1" becomes "2001:db8::1", "10.0.0.1/8" becomes "10.0.0.0/8"),
 * so the printed config shows what the firewall will hold. */
static int check_cidr(const char *s, char *out, size_t outsz)
{
    struct addr_net n;
    if (addr_net_parse(s, true, &n, NULL, 0) < 0)
        return -1;
    addr_net_str(&n, out, outsz);
    return 0;
}

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* Split a space/tab separated value into a fresh string array, checking each
 * token with check() (which may rewrite it into norm); exact duplicates are
 * dropped, order is kept.  Returns 0, or -1 with *bad set to the bad token
 * (pointing into buf) or NULL on out of memory. */
static int split_list(char *buf, int (*check)(const char *tok, char *norm, size_t normsz),
                      char ***out, size_t *nout, const char **bad)
{
    char **v = NULL;
    size_t n = 0;
    char *save = NULL;
    *bad = NULL;
    for (char *tok = strtok_r(buf, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
        char norm[CFG_LIST_NAME_MAX + 1];
        if (check(tok, norm, sizeof norm) < 0) {
            *bad = tok;
            free_list(v, n);
            return -1;
        }
        bool dup = false;
        for (size_t i = 0; i < n && !dup; i++)
            dup = strcmp(v[i], norm) == 0;
        if (dup)
            continue;
        char **nv = realloc(v, (n + 1) * sizeof *v);
        char *copy = nv ? strdup(norm) : NULL;
        if (nv)
            v = nv;
        if (!copy) {
            free_list(v, n);
            return -1;
        }
        v[n++] = copy;
    }
    *out = v;
    *nout = n;
    return 0;
}

/* users / groups entries: [A-Za-z0-9_.@-], 1..255 bytes ('@' for directory
 * users such as alice@example.org). */
static int check_principal(const char *tok, char *norm, size_t normsz)
{
    if (!name_ok(tok, CFG_LIST_NAME_MAX, "@"))
        return -1;
    snprintf(norm, normsz, "%s", tok);
    return 0;
}

static int set_list(struct parser *p, int line, const char *key, const char *what,
                    const char *v, int (*check)(const char *, char *, size_t),
                    char ***out, size_t *nout)
{
    char *buf = strdup(v);
    const char *bad;
    if (!buf)
        return fail(p, line, "out of memory");
    char **nv;
    size_t nn;
    if (split_list(buf, check, &nv, &nn, &bad) < 0) {
        int r = bad ? fail(p, line, "bad %s \"%s\" in %s", what, shown(p, bad), key)
                    : fail(p, line, "out of memory");
        free(buf);
        return r;
    }
    free(buf);
    free_list(*out, *nout);
    *out = nv;
    *nout = nn;
    return 0;
}

static const char *const spice_channel_names[] = {
    [1] = "main", [2] = "display", [3] = "inputs", [4] = "cursor", [5] = "playback",
    [6] = "record", [7] = "tunnel", [8] = "smartcard", [9] = "usbredir", [10] = "port",
    [11] = "webdav",
};
#define N_SPICE_CHANNEL_NAMES (sizeof spice_channel_names / sizeof spice_channel_names[0])

const char *cfg_spice_channel_name(unsigned type)
{
    return type < N_SPICE_CHANNEL_NAMES ? spice_channel_names[type] : NULL;
}

unsigned cfg_spice_channel_type(const char *name)
{
    for (unsigned t = 1; t < N_SPICE_CHANNEL_NAMES; t++)
        if (strcmp(spice_channel_names[t], name) == 0)
            return t;
    return 0;
}

/* spice_channels = NAME...: SPICE channel names (space separated, at least
 * main, repeats allowed), as a bit mask of channel types. */
static int set_spice_channels(struct parser *p, int line, const char *v, uint32_t *out)
{
    char buf[CFG_MAX_LINE + 1];
    snprintf(buf, sizeof buf, "%s", v);
    uint32_t mask = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
        unsigned t = cfg_spice_channel_type(tok);
        if (!t)
            return fail(p, line, "bad spice channel \"%s\" in spice_channels (use main, "
                        "display, inputs, cursor, playback, record, smartcard, usbredir, "
                        "port, webdav, tunnel)", shown(p, tok));
        mask |= UINT32_C(1) << t;
    }
    if (!(mask & (UINT32_C(1) << 1)))
        return fail(p, line, "spice_channels must include main (every SPICE session starts "
                    "with it)");
    *out = mask;
    return 0;
}

/* protect = LO-HI or PORT, ports 1..65535, LO <= HI. */
static int set_range(struct parser *p, int line, const char *v, struct cfg_firewall *fw)
{
    const char *dash = strchr(v, '-');
    uint16_t lo = 0, hi = 0;
    int r = dash ? addr_port_parse(v, (size_t)(dash - v), &lo) |
                     addr_port_parse(dash + 1, strlen(dash + 1), &hi)
                 : addr_port_parse(v, strlen(v), &lo);
    if (!dash)
        hi = lo;
    if (r < 0 || lo > hi)
        return fail(p, line, "bad port range \"%s\" (use LO-HI or PORT, 1..65535, LO <= HI)",
                    shown(p, v));
    fw->protect_lo = lo;
    fw->protect_hi = hi;
    return 0;
}

/* ---- sections ---- */

static const struct key_def *find_key(const struct key_def *tab, const char *name)
{
    for (; tab->name; tab++)
        if (strcmp(tab->name, name) == 0)
            return tab;
    return NULL;
}

static int set_listen_port(struct parser *p, int line, const char *key, const char *v,
                           uint16_t *out);

/* One web_origins entry: an Origin as a browser sends it, "http(s)://HOST"
 * or "http(s)://HOST:PORT" (HOST: letters, digits, . - or a bracketed IPv6
 * address), no path, no trailing slash; kept lower-case so the comparison
 * with the request's Origin is exact. */
static int check_origin(const char *s, char *out, size_t outsz)
{
    size_t n = strlen(s), skip;
    if (n >= outsz || n > 255)
        return -1;
    if (strncmp(s, "https://", 8) == 0)
        skip = 8;
    else if (strncmp(s, "http://", 7) == 0)
        skip = 7;
    else
        return -1;
    if (n == skip)
        return -1;
    for (size_t i = skip; i < n; i++) {
        char ch = s[i];
        if (!(is_alnum(ch) || ch == '.' || ch == '-' || ch == ':' || ch == '[' || ch == ']'))
            return -1;
    }
    for (size_t i = 0; i <= n; i++)
        out[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] - 'A' + 'a') : s[i];
    return 0;
}

static int set_gateway(struct parser *p, int line, int id, const char *key, const char *v)
{
    struct cfg *c = p->c;
    switch (id) {
    case GK_ADDRESS: {
        struct addr_net n;
        if (strlen(v) >= sizeof c->address || addr_ip_parse(v, &n) < 0)
            return fail(p, line, "bad address \"%s\" (need a numeric IPv4 or IPv6 address)",
                        shown(p, v));
        memcpy(c->address, v, strlen(v) + 1);
        return 0;
    }
    case GK_CERT:
        return set_path(p, line, v, &c->cert);
    case GK_KEY:
        return set_path(p, line, v, &c->key);
    case GK_PASSWD_FILE:
        return set_path(p, line, v, &c->passwd_file);
    case GK_AUTH:
        if (strcmp(v, "pam") == 0)
            c->auth = CFG_AUTH_PAM;
        else if (strcmp(v, "file") == 0)
            c->auth = CFG_AUTH_FILE;
        else
            return fail(p, line, "bad auth \"%s\" (use pam or file)", shown(p, v));
        return 0;
    case GK_PAM_SERVICE:
        return set_name(p, line, key, v, c->pam_service, sizeof c->pam_service);
    case GK_USER:
        if (!*v) {
            c->user[0] = '\0';
            return 0;
        }
        return set_name(p, line, key, v, c->user, sizeof c->user);
    case GK_LOGIN_TIMEOUT:
        return set_duration(p, line, key, v, MS_S, MS_H, &c->login_timeout_ms);
    case GK_FIRST_BYTE:         /* at or above login_timeout it changes nothing */
        return set_duration(p, line, key, v, MS_S, MS_H, &c->first_byte_timeout_ms);
    case GK_CLIPBOARD:
        return set_clip(p, line, v, &c->clipboard);
    case GK_CLIPBOARD_MAX:
        return set_size(p, line, key, v, 1, MIB, &c->clipboard_max);
    case GK_CU:
        return set_cu(p, line, v, &c->continuous_updates);
    case GK_IDLE_PAUSE:         /* 0 = off; applies to the VMs with a monitor */
        return set_duration(p, line, key, v, 0, 365 * MS_D, &c->idle_pause_ms);
    case GK_MAX_UNAUTH:
        return set_unsigned(p, line, key, v, 1, 100000, &c->max_unauth);
    case GK_MAX_UNAUTH_SRC:      /* checked against max_unauth in finish() */
        return set_unsigned(p, line, key, v, 1, 100000, &c->max_unauth_per_source);
    case GK_FAIL_DELAY:
        return set_duration(p, line, key, v, 0, 60 * MS_S, &c->fail_delay_ms);
    case GK_AUTH_WORKERS:
        return set_unsigned(p, line, key, v, 1, 64, &c->auth_workers);
    case GK_PROCESSES:
        if (strcmp(v, "auto") == 0) {
            c->processes = 0;
            return 0;
        }
        return set_unsigned(p, line, key, v, 1, CFG_PROCESSES_MAX, &c->processes);
    case GK_SANDBOX:
        if (strcmp(v, "on") == 0 || strcmp(v, "off") == 0) {
            c->sandbox = strcmp(v, "on") == 0;
            return 0;
        }
        return fail(p, line, "sandbox: expected on or off, not '%s'", v);
    case GK_SOCKET_DIR: {       /* "" turns the local sockets off */
        char why[128], tmp[CFG_PATH_MAX + 1];
        if (!*v) {
            c->socket_dir[0] = '\0';
            return 0;
        }
        if (check_sock_path(v, tmp, why, sizeof why) < 0)
            return fail(p, line, "bad socket_dir \"%s\": %s", shown(p, v), why);
        size_t n = strlen(tmp);
        while (n > 1 && tmp[n - 1] == '/')
            tmp[--n] = '\0';
        memcpy(c->socket_dir, tmp, n + 1);
        return 0;
    }
    case GK_AUDIT:              /* "" = off, "journal", or a file */
        if (!*v || strcmp(v, "journal") == 0) {
            snprintf(c->audit, sizeof c->audit, "%s", v);
            return 0;
        }
        return set_abs_path(p, line, key, v, c->audit, sizeof c->audit);
    case GK_CONTROL:            /* "" = no control socket */
        if (!*v) {
            c->control[0] = '\0';
            return 0;
        }
        return set_abs_path(p, line, key, v, c->control, sizeof c->control);
    case GK_ADMIN_GROUP:
        if (!*v) {
            c->admin_group[0] = '\0';
            return 0;
        }
        return set_name(p, line, key, v, c->admin_group, sizeof c->admin_group);
    case GK_METRICS: {          /* "" = off; numeric ADDR:PORT */
        char host[CFG_HOST_MAX + 1], why[160];
        struct addr_net n;
        uint16_t port;
        if (!*v) {
            c->metrics[0] = '\0';
            return 0;
        }
        if (strlen(v) >= sizeof c->metrics ||
            addr_hostport_parse(v, host, sizeof host, &port, why, sizeof why) < 0 ||
            addr_ip_parse(host, &n) < 0 || port == 0)
            return fail(p, line, "bad metrics \"%s\" (need a numeric ADDR:PORT, [V6]:PORT)",
                        shown(p, v));
        memcpy(c->metrics, v, strlen(v) + 1);
        return 0;
    }
    case GK_WEB_PORT:
        return set_listen_port(p, line, key, v, &c->web_port);
    case GK_NOVNC_DIR:
        if (v[0] != '/')
            return fail(p, line, "bad novnc_dir \"%s\" (need an absolute path)", shown(p, v));
        return set_path(p, line, v, &c->novnc_dir);
    case GK_WEB_DIR:
        if (v[0] != '/')
            return fail(p, line, "bad web_dir \"%s\" (need an absolute path)", shown(p, v));
        return set_path(p, line, v, &c->web_dir);
    case GK_WEB_ORIGINS:
        return set_list(p, line, key, "origin", v, check_origin, &c->web_origins,
                        &c->n_web_origins);
    case GK_PROXY_PROTOCOL:     /* "" = nobody may send a PROXY header */
        return set_list(p, line, key, "address", v, check_cidr, &c->proxy_protocol,
                        &c->n_proxy_protocol);
    }
    return fail(p, line, "internal error: key %s", key);
}

static int set_firewall(struct parser *p, int line, int id, const char *key, const char *v)
{
    struct cfg_firewall *fw = &p->c->fw;
    switch (id) {
    case FK_PROTECT:
        return set_range(p, line, v, fw);
    case FK_ALLOW:
        fw->allow_line = line;
        return set_list(p, line, key, "address", v, check_cidr, &fw->allow, &fw->n_allow);
    case FK_BAN_AFTER:
        return set_unsigned(p, line, key, v, 1, 1000, &fw->ban_after);
    case FK_BAN_WINDOW:
        return set_duration(p, line, key, v, MS_S, 365 * MS_D, &fw->ban_window_ms);
    case FK_BAN_TIME:
        return set_duration(p, line, key, v, MS_S, 365 * MS_D, &fw->ban_time_ms);
    }
    return fail(p, line, "internal error: key %s", key);
}

/* A listener port must be unique across every vnc_port and spice_port. */
static int set_listen_port(struct parser *p, int line, const char *key, const char *v,
                           uint16_t *out)
{
    uint16_t port;
    if (addr_port_parse(v, strlen(v), &port) < 0)
        return fail(p, line, "bad %s \"%s\" (use 1..65535)", key, shown(p, v));
    for (size_t i = 0; i < p->c->n_vms; i++) {
        const struct cfg_vm *o = &p->c->vms[i];
        if (o->vnc_port == port)
            return fail(p, line, "%s %u already used by vm %s (line %d)", key, (unsigned)port,
                        o->name, p->vml[i].key[VK_VNC_PORT]);
        if (o->spice_port == port)
            return fail(p, line, "%s %u already used by vm %s (line %d)", key, (unsigned)port,
                        o->name, p->vml[i].key[VK_SPICE_PORT]);
    }
    if (out != &p->c->web_port && p->c->web_port == port)
        return fail(p, line, "%s %u already used by web_port (line %d)", key, (unsigned)port,
                    p->gw_key[GK_WEB_PORT]);
    *out = port;
    return 0;
}

static int set_vm(struct parser *p, int line, int id, const char *key, const char *v)
{
    struct cfg_vm *vm = &p->c->vms[p->c->n_vms - 1];
    char why[128];
    switch (id) {
    case VK_VNC:
    case VK_SPICE: {
        struct cfg_backend b;
        if (cfg_parse_backend(v, &b, why, sizeof why) < 0)
            return fail(p, line, "bad %s backend \"%s\": %s", key, shown(p, v), why);
        if (id == VK_SPICE && b.kind == CFG_BE_QMP)
            return fail(p, line, "spice cannot use qmp: (use unix:PATH or HOST:PORT)");
        *(id == VK_VNC ? &vm->vnc : &vm->spice) = b;
        return 0;
    }
    case VK_SERIAL: {
        /* QEMU's -chardev socket,server=on: vmgate is its one client */
        struct cfg_backend b;
        if (cfg_parse_backend(v, &b, why, sizeof why) < 0)
            return fail(p, line, "bad serial \"%s\": %s", shown(p, v), why);
        if (b.kind != CFG_BE_UNIX)
            return fail(p, line, "serial must be unix:PATH (QEMU -chardev socket,path=PATH,"
                        "server=on,wait=off)");
        vm->serial = b;
        return 0;
    }
    case VK_VNC_PORT:
        return set_listen_port(p, line, key, v, &vm->vnc_port);
    case VK_SPICE_PORT:
        return set_listen_port(p, line, key, v, &vm->spice_port);
    case VK_QMP:
        if (check_sock_path(v, vm->qmp, why, sizeof why) < 0)
            return fail(p, line, "bad qmp \"%s\": %s", shown(p, v), why);
        return 0;
    case VK_USERS:
        return set_list(p, line, key, "user", v, check_principal, &vm->users, &vm->n_users);
    case VK_GROUPS:
        return set_list(p, line, key, "group", v, check_principal, &vm->groups, &vm->n_groups);
    case VK_CLIPBOARD:
        return set_clip(p, line, v, &vm->clipboard);
    case VK_CLIPBOARD_MAX:
        return set_size(p, line, key, v, 1, MIB, &vm->clipboard_max);
    case VK_QEMU_CONSOLES:
        if (strcmp(v, "block") == 0)
            vm->qemu_consoles = CFG_QCONS_BLOCK;
        else if (strcmp(v, "allow") == 0)
            vm->qemu_consoles = CFG_QCONS_ALLOW;
        else
            return fail(p, line, "bad qemu_consoles \"%s\" (use block or allow)", shown(p, v));
        return 0;
    case VK_SPICE_CHANNELS:
        return set_spice_channels(p, line, v, &vm->spice_channels);
    case VK_CU:
        return set_cu(p, line, v, &vm->continuous_updates);
    case VK_IDLE_PAUSE:         /* 0 = off for this VM; needs a monitor (finish) */
        return set_duration(p, line, key, v, 0, 365 * MS_D, &vm->idle_pause_ms);
    case VK_POWER_USERS:
        return set_list(p, line, key, "user", v, check_principal, &vm->power_users,
                        &vm->n_power_users);
    case VK_POWER_GROUPS:
        return set_list(p, line, key, "group", v, check_principal, &vm->power_groups,
                        &vm->n_power_groups);
    case VK_QGA:
        /* only unix:PATH: the guest agent's chardev socket */
        if (strncmp(v, "unix:", 5) != 0 || check_sock_path(v + 5, vm->qga, why, sizeof why) < 0)
            return fail(p, line, "bad qga \"%s\": %s", shown(p, v),
                        strncmp(v, "unix:", 5) != 0 ? "use unix:PATH" : why);
        return 0;
    }
    return fail(p, line, "internal error: key %s", key);
}

/* Start a [vm NAME] section: NAME is 1..63 of [A-Za-z0-9_.-], unique. */
static int begin_vm(struct parser *p, int line, const char *name)
{
    struct cfg *c = p->c;
    if (!name_ok(name, CFG_NAME_MAX, NULL))
        return fail(p, line, "bad vm name \"%s\" (1..%d of A-Z a-z 0-9 _ . -)",
                    shown(p, name), CFG_NAME_MAX);
    for (size_t i = 0; i < c->n_vms; i++)
        if (strcmp(c->vms[i].name, name) == 0)
            return fail(p, line, "duplicate vm \"%s\" (first defined on line %d)", name,
                        c->vms[i].line);
    if (c->n_vms == p->vm_cap) {
        size_t cap = p->vm_cap ? p->vm_cap * 2 : 8;
        struct cfg_vm *nv = realloc(c->vms, cap * sizeof *nv);
        if (!nv)
            return fail(p, line, "out of memory");
        c->vms = nv;
        struct vm_lines *nl = realloc(p->vml, cap * sizeof *nl);
        if (!nl)
            return fail(p, line, "out of memory");
        p->vml = nl;
        p->vm_cap = cap;
    }
    struct cfg_vm *vm = &c->vms[c->n_vms];
    memset(vm, 0, sizeof *vm);
    memset(&p->vml[c->n_vms], 0, sizeof p->vml[0]);
    memcpy(vm->name, name, strlen(name) + 1);
    vm->line = line;
    vm->spice_channels = CFG_SPICE_CHANNELS_DEFAULT;
    c->n_vms++;
    return 0;
}

/* A header line: "[gateway]", "[firewall]" or "[vm NAME]", optionally with
 * spaces inside the brackets and a comment after them. */
static int parse_header(struct parser *p, int line, char *s)
{
    char *close = strchr(s, ']');
    if (!close)
        return fail(p, line, "bad section header (missing \"]\")");
    char *after = trim(close + 1);
    if (*after && *after != ';' && *after != '#')
        return fail(p, line, "junk after section header: \"%s\"", shown(p, after));
    *close = '\0';
    char *name = trim(s + 1);
    if (strcmp(name, "gateway") == 0) {
        if (p->gw_hdr)
            return fail(p, line, "duplicate section [gateway] (first on line %d)", p->gw_hdr);
        p->gw_hdr = line;
        p->sec = SEC_GATEWAY;
        return 0;
    }
    if (strcmp(name, "firewall") == 0) {
        if (p->fw_hdr)
            return fail(p, line, "duplicate section [firewall] (first on line %d)", p->fw_hdr);
        p->fw_hdr = line;
        p->sec = SEC_FIREWALL;
        return 0;
    }
    if (strncmp(name, "vm", 2) == 0 && (name[2] == '\0' || is_space(name[2]))) {
        char *vname = trim(name + 2);
        if (!*vname)
            return fail(p, line, "[vm] needs a name: [vm NAME]");
        p->sec = SEC_VM;
        return begin_vm(p, line, vname);
    }
    return fail(p, line, "unknown section \"[%s]\" (use [gateway], [firewall], [vm NAME])",
                shown(p, name));
}

/* A "key = value" line.  The value ends at a ';' or '#' that starts it or
 * follows whitespace (an inline comment); it is then trimmed. */
static int parse_keyval(struct parser *p, int line, char *s)
{
    char *eq = strchr(s, '=');
    if (!eq)
        return fail(p, line, "expected \"key = value\" or [section]");
    *eq = '\0';
    char *key = trim(s);
    char *val = eq + 1;
    for (size_t i = 0; val[i]; i++) {
        if ((val[i] == ';' || val[i] == '#') && (i == 0 || is_space(val[i - 1]))) {
            val[i] = '\0';
            break;
        }
    }
    val = trim(val);

    if (!*key)
        return fail(p, line, "missing key before \"=\"");
    for (const char *k = key; *k; k++)
        if (!((*k >= 'a' && *k <= 'z') || is_digit(*k) || *k == '_'))
            return fail(p, line, "bad key \"%s\"", shown(p, key));

    const struct key_def *tab;
    int *lines;
    char where[CFG_NAME_MAX + 8];
    switch (p->sec) {
    case SEC_GATEWAY:
        tab = gw_keys;
        lines = p->gw_key;
        snprintf(where, sizeof where, "gateway");
        break;
    case SEC_FIREWALL:
        tab = fw_keys;
        lines = p->fw_key;
        snprintf(where, sizeof where, "firewall");
        break;
    case SEC_VM:
        tab = vm_keys;
        lines = p->vml[p->c->n_vms - 1].key;
        snprintf(where, sizeof where, "vm %s", p->c->vms[p->c->n_vms - 1].name);
        break;
    default:
        return fail(p, line, "key \"%s\" outside any section", shown(p, key));
    }
    const struct key_def *kd = find_key(tab, key);
    if (!kd)
        return fail(p, line, "unknown key \"%s\" in [%s]", shown(p, key), where);
    if (lines[kd->id])
        return fail(p, line, "duplicate key \"%s\" (first set on line %d)", key, lines[kd->id]);
    lines[kd->id] = line;
    if (!*val && !kd->empty_ok)
        return fail(p, line, "empty value for \"%s\"", key);

    switch (p->sec) {
    case SEC_GATEWAY:
        return set_gateway(p, line, kd->id, key, val);
    case SEC_FIREWALL:
        return set_firewall(p, line, kd->id, key, val);
    default:
        return set_vm(p, line, kd->id, key, val);
    }
}

static int parse_line(struct parser *p, int line, char *s)
{
    s = trim(s);
    if (!*s || *s == '#' || *s == ';')
        return 0;
    if (*s == '[')
        return parse_header(p, line, s);
    return parse_keyval(p, line, s);
}

/* True if dir is path's directory or one of its ancestors ("/run/vmgate"
 * holds "/run/vmgate/dev0.vnc" and "/run/vmgate/q/dev0.vnc"). */
static bool dir_holds(const char *dir, const char *path)
{
    size_t n = strlen(dir);
    if (n == 1 && dir[0] == '/')
        return true;
    return strncmp(dir, path, n) == 0 && path[n] == '/';
}

/* socket_dir: every VM's NAME.serial (the longest name) must fit sun_path,
 * and it must not be (or contain) the directory of a VM's own QEMU
 * sockets: vmgate replaces stale sockets there, and a QEMU socket beside
 * the gateway's would let a local user skip the gateway. */
static int check_socket_dir(struct parser *p)
{
    const struct cfg *c = p->c;
    if (!c->socket_dir[0])
        return 0;
    int dline = p->gw_key[GK_SOCKET_DIR] ? p->gw_key[GK_SOCKET_DIR] : p->gw_hdr;
    for (size_t i = 0; i < c->n_vms; i++) {
        const struct cfg_vm *vm = &c->vms[i];
        const int *k = p->vml[i].key;
        if (strlen(c->socket_dir) + 1 + strlen(vm->name) + strlen(".serial") > CFG_PATH_MAX)
            return fail(p, dline, "socket_dir %s: the socket of vm %s would be longer than %d "
                        "bytes", c->socket_dir, vm->name, CFG_PATH_MAX);
        const struct { const char *key; int line; const char *path; } own[] = {
            { "vnc", k[VK_VNC], vm->vnc.kind != CFG_BE_TCP ? vm->vnc.path : "" },
            { "spice", k[VK_SPICE], vm->spice.kind == CFG_BE_UNIX ? vm->spice.path : "" },
            { "qmp", k[VK_QMP], vm->qmp },
            { "serial", k[VK_SERIAL], vm->serial.kind == CFG_BE_UNIX ? vm->serial.path : "" },
            { "qga", k[VK_QGA], vm->qga },
        };
        for (size_t j = 0; j < sizeof own / sizeof own[0]; j++)
            if (own[j].path[0] && dir_holds(c->socket_dir, own[j].path))
                return fail(p, own[j].line ? own[j].line : vm->line,
                            "vm %s: %s socket %s is inside socket_dir %s (vmgate's own "
                            "sockets); move QEMU's sockets elsewhere, e.g. /run/qemu",
                            vm->name, own[j].key, own[j].path, c->socket_dir);
    }
    return 0;
}

/* Checks that need the whole file, and defaults that depend on other keys. */
static int finish(struct parser *p)
{
    struct cfg *c = p->c;
    if (!p->gw_key[GK_MAX_UNAUTH_SRC]) {
        c->max_unauth_per_source = DEF_MAX_UNAUTH_SRC < c->max_unauth
                                   ? DEF_MAX_UNAUTH_SRC : c->max_unauth;
    } else if (c->max_unauth_per_source > c->max_unauth) {
        return fail(p, p->gw_key[GK_MAX_UNAUTH_SRC],
                    "max_unauth_per_source %u exceeds max_unauth %u",
                    c->max_unauth_per_source, c->max_unauth);
    }
    c->fw.present = p->fw_hdr != 0;
    c->fw.line = p->fw_hdr;
    if (check_socket_dir(p) < 0)
        return -1;

    for (size_t i = 0; i < c->n_vms; i++) {
        struct cfg_vm *vm = &c->vms[i];
        const int *k = p->vml[i].key;
        if (!k[VK_VNC] && !k[VK_SPICE] && !k[VK_SERIAL])
            return fail(p, vm->line, "vm %s: needs at least one of vnc, spice, serial", vm->name);
        if (!k[VK_VNC] && k[VK_VNC_PORT])
            return fail(p, vm->line, "vm %s: vnc_port is set but vnc is missing", vm->name);
        if (k[VK_SPICE] && !k[VK_SPICE_PORT])
            return fail(p, vm->line, "vm %s: spice is set but spice_port is missing", vm->name);
        if (!k[VK_SPICE] && k[VK_SPICE_PORT])
            return fail(p, vm->line, "vm %s: spice_port is set but spice is missing", vm->name);
        if (!k[VK_QMP] && vm->vnc.kind == CFG_BE_QMP)
            memcpy(vm->qmp, vm->vnc.path, sizeof vm->qmp);
        if (!k[VK_CLIPBOARD])
            vm->clipboard = c->clipboard;
        if (!k[VK_CLIPBOARD_MAX])
            vm->clipboard_max = c->clipboard_max;
        if (!k[VK_CU])
            vm->continuous_updates = c->continuous_updates;
        /* idle_pause: pausing needs the VM's monitor.  Set on the VM itself
         * without one it is an error; the [gateway] default skips such VMs. */
        if (k[VK_IDLE_PAUSE] && vm->idle_pause_ms && !vm->qmp[0])
            return fail(p, k[VK_IDLE_PAUSE], "vm %s: idle_pause needs qmp (the VM's monitor)",
                        vm->name);
        if (!k[VK_IDLE_PAUSE])
            vm->idle_pause_ms = vm->qmp[0] ? c->idle_pause_ms : 0;
    }
    return 0;
}

static int set_defaults(struct cfg *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->address, sizeof c->address, "%s", DEF_ADDRESS);
    c->cert = strdup(DEF_CERT);
    c->key = strdup(DEF_KEY);
    c->passwd_file = strdup(DEF_PASSWD_FILE);
    c->novnc_dir = strdup(DEF_NOVNC_DIR);
    c->web_dir = strdup(DEF_WEB_DIR);
    c->auth = CFG_AUTH_PAM;
    snprintf(c->pam_service, sizeof c->pam_service, "%s", DEF_PAM_SERVICE);
    snprintf(c->user, sizeof c->user, "%s", DEF_USER);
    snprintf(c->socket_dir, sizeof c->socket_dir, "%s", DEF_SOCKET_DIR);
    c->login_timeout_ms = DEF_LOGIN_TIMEOUT;
    c->first_byte_timeout_ms = DEF_FIRST_BYTE;
    c->clipboard = CFG_CLIP_BOTH;
    c->clipboard_max = DEF_CLIP_MAX;
    c->max_unauth = DEF_MAX_UNAUTH;
    c->max_unauth_per_source = DEF_MAX_UNAUTH_SRC;
    c->fail_delay_ms = DEF_FAIL_DELAY;
    c->auth_workers = DEF_AUTH_WORKERS;
    c->processes = 1;
    c->sandbox = true;
    snprintf(c->control, sizeof c->control, "%s", DEF_CONTROL);
    snprintf(c->admin_group, sizeof c->admin_group, "%s", DEF_ADMIN_GROUP);
    c->fw.protect_lo = DEF_PROTECT_LO;
    c->fw.protect_hi = DEF_PROTECT_HI;
    c->fw.ban_after = DEF_BAN_AFTER;
    c->fw.ban_window_ms = DEF_BAN_WINDOW;
    c->fw.ban_time_ms = DEF_BAN_TIME;
    return c->cert && c->key && c->passwd_file && c->novnc_dir && c->web_dir ? 0 : -1;
}

/* Split text into lines ('\n', optional '\r' before it; a UTF-8 BOM at the
 * start is skipped).  A line over CFG_MAX_LINE bytes, a NUL or another
 * control byte (tab excepted) is an error, never truncated or skipped. */
static int parse_text(struct parser *p, const char *text, size_t len)
{
    char buf[CFG_MAX_LINE + 1];
    size_t off = 0;
    int line = 0;
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        off = 3;
    while (off < len) {
        const char *start = text + off;
        const char *nl = memchr(start, '\n', len - off);
        size_t n = nl ? (size_t)(nl - start) : len - off;
        off += n + (nl ? 1 : 0);
        if (line == INT32_MAX)
            return fail(p, line, "too many lines");
        line++;
        if (n > 0 && start[n - 1] == '\r')
            n--;
        if (n > CFG_MAX_LINE)
            return fail(p, line, "line longer than %d bytes", CFG_MAX_LINE);
        if (memchr(start, '\0', n))
            return fail(p, line, "NUL byte in line");
        for (size_t i = 0; i < n; i++) {
            unsigned char ch = (unsigned char)start[i];
            if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
                return fail(p, line, "control character 0x%02x in line", ch);
        }
        memcpy(buf, start, n);
        buf[n] = '\0';
        if (parse_line(p, line, buf) < 0)
            return -1;
    }
    return finish(p);
}

/* The shared body of cfg_parse and cfg_load; basedir as in struct parser. */
static int parse_with_base(const char *fname, const char *basedir, const char *text, size_t len,
                           struct cfg *out, char *err, size_t errlen)
{
    struct cfg c;
    struct parser p;
    memset(&p, 0, sizeof p);
    p.fname = fname ? fname : "(config)";
    p.basedir = basedir;
    p.c = &c;
    p.err = err;
    p.errlen = errlen;
    if (err && errlen)
        err[0] = '\0';

    int r;
    if (set_defaults(&c) < 0 || !(c.file = strdup(p.fname)))
        r = fail(&p, 0, "out of memory");
    else if (!text && len)
        r = fail(&p, 0, "no text");
    else
        r = parse_text(&p, text ? text : "", len);
    free(p.vml);
    if (r < 0) {
        cfg_free(&c);
        memset(out, 0, sizeof *out);
        return -1;
    }
    *out = c;
    return 0;
}

/* The directory part of path ("/etc/vmgate" for "/etc/vmgate/vmgate.conf",
 * "/" for "/x.conf"), malloc'ed; NULL when path has no '/' (or no memory). */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return NULL;
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, path, n);
        d[n] = '\0';
    }
    return d;
}

int cfg_parse(const char *fname, const char *text, size_t len, struct cfg *out,
              char *err, size_t errlen)
{
    char *base = fname ? dir_of(fname) : NULL;
    int r = parse_with_base(fname, base, text, len, out, err, errlen);
    free(base);
    return r;
}

/* Like cfg_parse, but relative paths in the file are made absolute using
 * the current directory, since the daemon may chdir("/") later. */
int cfg_load(const char *path, struct cfg *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        if (err && errlen)
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    size_t cap = 8192, len = 0;
    char *text = malloc(cap);
    int e = text ? 0 : ENOMEM;
    while (!e) {
        if (len == cap) {
            if (cap >= CFG_FILE_MAX) {
                e = EFBIG;
                break;
            }
            char *nt = realloc(text, cap * 2);
            if (!nt) {
                e = ENOMEM;
                break;
            }
            text = nt;
            cap *= 2;
        }
        ssize_t n = read(fd, text + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            e = errno;
        else if (n == 0)
            break;
        else
            len += (size_t)n;
    }
    close(fd);
    if (e) {
        free(text);
        if (err && errlen)
            snprintf(err, errlen, "%s: %s", path, strerror(e));
        return -1;
    }

    char *base = dir_of(path);
    if (path[0] != '/') {
        char cwd[4096];
        if (getcwd(cwd, sizeof cwd)) {
            const char *rel = base ? base : ".";
            size_t need = strlen(cwd) + strlen(rel) + 2;
            char *abs = malloc(need);
            if (abs) {
                if (strcmp(rel, ".") == 0)
                    snprintf(abs, need, "%s", cwd);
                else
                    snprintf(abs, need, "%s/%s", cwd, rel);
                free(base);
                base = abs;
            }
        }
    }
    int r = parse_with_base(path, base, text, len, out, err, errlen);
    free(base);
    free(text);
    return r;
}

int cfg_socket_path(const struct cfg *c, const char *vm, const char *ext, char *out,
                    size_t outsz)
{
    if (!c || !c->socket_dir[0] || !vm || !ext || !out)
        return -1;
    int n = snprintf(out, outsz, "%s/%s.%s", strcmp(c->socket_dir, "/") ? c->socket_dir : "",
                     vm, ext);
    return n < 0 || (size_t)n >= outsz ? -1 : 0;
}

unsigned cfg_processes(const struct cfg *c)
{
    if (c->processes)
        return c->processes;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1u : n > CFG_PROCESSES_MAX ? CFG_PROCESSES_MAX : (unsigned)n;
}

void cfg_free(struct cfg *c)
{
    if (!c)
        return;
    free(c->file);
    free(c->cert);
    free(c->key);
    free(c->passwd_file);
    free(c->novnc_dir);
    free(c->web_dir);
    free_list(c->web_origins, c->n_web_origins);
    free_list(c->proxy_protocol, c->n_proxy_protocol);
    free_list(c->fw.allow, c->fw.n_allow);
    for (size_t i = 0; i < c->n_vms; i++) {
        free_list(c->vms[i].users, c->vms[i].n_users);
        free_list(c->vms[i].groups, c->vms[i].n_groups);
        free_list(c->vms[i].power_users, c->vms[i].n_power_users);
        free_list(c->vms[i].power_groups, c->vms[i].n_power_groups);
    }
    free(c->vms);
    memset(c, 0, sizeof *c);
}

bool cfg_proxy_source(const struct cfg *c, const char *addr)
{
    struct addr_net a, n;
    if (!c || !addr || c->n_proxy_protocol == 0 || addr_net_parse(addr, false, &a, NULL, 0) < 0)
        return false;
    for (size_t i = 0; i < c->n_proxy_protocol; i++)
        if (addr_net_parse(c->proxy_protocol[i], true, &n, NULL, 0) == 0 &&
            addr_net_contains(&n, &a))
            return true;
    return false;
}

const struct cfg_vm *cfg_find_vm(const struct cfg *c, const char *name)
{
    if (!c || !name)
        return NULL;
    for (size_t i = 0; i < c->n_vms; i++)
        if (strcmp(c->vms[i].name, name) == 0)
            return &c->vms[i];
    return NULL;
}

/* ---- printing ---- */

static void print_kv(FILE *f, const char *prefix, const char *key, const char *val)
{
    if (val && *val)
        fprintf(f, "%s%s = %s\n", prefix, key, val);
    else
        fprintf(f, "%s%s =\n", prefix, key);
}

/* sep ' ': an INI line "key = a b"; sep ',': a route field "key=a,b" ("key=-" if empty). */
static void print_list(FILE *f, const char *prefix, const char *key, char *const *v,
                       size_t n, char sep)
{
    fprintf(f, "%s%s%s", prefix, key, sep == ' ' ? " =" : "=");
    if (n == 0 && sep != ' ')
        fputc('-', f);
    for (size_t i = 0; i < n; i++) {
        if (sep == ' ' || i > 0)
            fputc(sep, f);
        fputs(v[i], f);
    }
    if (sep == ' ')
        fputc('\n', f);
}

static void print_route(FILE *f, const struct cfg *c, const struct cfg_vm *vm,
                        const char *proto, uint16_t port, const struct cfg_backend *be)
{
    char b[CFG_PATH_MAX + CFG_HOST_MAX + 16];
    cfg_backend_str(be, b, sizeof b);
    char l[ADDR_PORT_MAX + 8];
    addr_hostport_str(c->address, port, l, sizeof l);
    fprintf(f, "vm %s: %s %s -> %s  ", vm->name, proto, l, b);
    print_list(f, "", "users", vm->users, vm->n_users, ',');
    print_list(f, " ", "groups", vm->groups, vm->n_groups, ',');
    fprintf(f, " clipboard=%s/%llu\n", cfg_clip_name(vm->clipboard),
            (unsigned long long)vm->clipboard_max);
}

/* "vm NAME: vnc unix PATH -> BACKEND  users=... groups=...": the local
 * socket, authorized by the caller's uid. */
static void print_local_route(FILE *f, const struct cfg_vm *vm, const char *path,
                              const struct cfg_backend *be)
{
    char b[CFG_PATH_MAX + CFG_HOST_MAX + 16];
    cfg_backend_str(be, b, sizeof b);
    fprintf(f, "vm %s: vnc unix %s -> %s  ", vm->name, path, b);
    print_list(f, "", "users", vm->users, vm->n_users, ',');
    print_list(f, " ", "groups", vm->groups, vm->n_groups, ',');
    fprintf(f, " clipboard=%s/%llu\n", cfg_clip_name(vm->clipboard),
            (unsigned long long)vm->clipboard_max);
}

/* The effective config as INI (every key, defaults filled in, so the part
 * before "# routes" parses back to the same config), then one line per
 * listener: "vm NAME: PROTO LISTEN -> BACKEND  users=a,b groups=g
 * clipboard=MODE/BYTES" (users=- when empty). */
void cfg_print(const struct cfg *c, FILE *f)
{
    char a[64], num[32];
    fprintf(f, "# vmgate effective configuration from %s\n", c->file ? c->file : "(none)");
    fprintf(f, "[gateway]\n");
    print_kv(f, "", "address", c->address);
    print_kv(f, "", "cert", c->cert);
    print_kv(f, "", "key", c->key);
    print_kv(f, "", "auth", c->auth == CFG_AUTH_FILE ? "file" : "pam");
    print_kv(f, "", "pam_service", c->pam_service);
    print_kv(f, "", "passwd_file", c->passwd_file);
    print_kv(f, "", "user", c->user);
    print_kv(f, "", "login_timeout", fmt_duration(c->login_timeout_ms, a, sizeof a));
    print_kv(f, "", "first_byte_timeout", fmt_duration(c->first_byte_timeout_ms, a, sizeof a));
    print_kv(f, "", "clipboard", cfg_clip_name(c->clipboard));
    print_kv(f, "", "clipboard_max", fmt_size(c->clipboard_max, a, sizeof a));
    print_kv(f, "", "continuous_updates", cfg_cu_name(c->continuous_updates));
    print_kv(f, "", "idle_pause", c->idle_pause_ms ? fmt_duration(c->idle_pause_ms, a, sizeof a)
                                                   : "0");
    snprintf(num, sizeof num, "%u", c->max_unauth);
    print_kv(f, "", "max_unauth", num);
    snprintf(num, sizeof num, "%u", c->max_unauth_per_source);
    print_kv(f, "", "max_unauth_per_source", num);
    print_kv(f, "", "fail_delay", fmt_duration(c->fail_delay_ms, a, sizeof a));
    snprintf(num, sizeof num, "%u", c->auth_workers);
    print_kv(f, "", "auth_workers", num);
    if (c->processes)
        snprintf(num, sizeof num, "%u", c->processes);
    else
        snprintf(num, sizeof num, "auto  ; %u here", cfg_processes(c));
    print_kv(f, "", "processes", num);
    print_kv(f, "", "sandbox", c->sandbox ? "on" : "off  ; debugging only: no seccomp filter");
    print_kv(f, "", "socket_dir", c->socket_dir);
    print_kv(f, "", "audit", c->audit);
    print_kv(f, "", "control", c->control);
    print_kv(f, "", "admin_group", c->admin_group);
    print_kv(f, "", "metrics", c->metrics);
    if (c->web_port) {
        snprintf(num, sizeof num, "%u", (unsigned)c->web_port);
        print_kv(f, "", "web_port", num);
    } else {
        fprintf(f, "#web_port =  (off)\n");
    }
    print_kv(f, "", "novnc_dir", c->novnc_dir);
    print_kv(f, "", "web_dir", c->web_dir);
    fprintf(f, "web_origins =");
    for (size_t i = 0; i < c->n_web_origins; i++)
        fprintf(f, " %s", c->web_origins[i]);
    fprintf(f, "\n");
    fprintf(f, "proxy_protocol =");
    for (size_t i = 0; i < c->n_proxy_protocol; i++)
        fprintf(f, " %s", c->proxy_protocol[i]);
    fprintf(f, "\n");

    const char *px = c->fw.present ? "" : "# ";
    fprintf(f, "\n%s[firewall]%s\n", px, c->fw.present ? "" : "  (no section: defaults)");
    if (c->fw.protect_lo == c->fw.protect_hi)
        snprintf(num, sizeof num, "%u", (unsigned)c->fw.protect_lo);
    else
        snprintf(num, sizeof num, "%u-%u", (unsigned)c->fw.protect_lo,
                 (unsigned)c->fw.protect_hi);
    print_kv(f, px, "protect", num);
    print_list(f, px, "allow", c->fw.allow, c->fw.n_allow, ' ');
    snprintf(num, sizeof num, "%u", c->fw.ban_after);
    print_kv(f, px, "ban_after", num);
    print_kv(f, px, "ban_window", fmt_duration(c->fw.ban_window_ms, a, sizeof a));
    print_kv(f, px, "ban_time", fmt_duration(c->fw.ban_time_ms, a, sizeof a));

    for (size_t i = 0; i < c->n_vms; i++) {
        const struct cfg_vm *vm = &c->vms[i];
        char b[CFG_PATH_MAX + CFG_HOST_MAX + 16];
        fprintf(f, "\n[vm %s]\n", vm->name);
        if (vm->vnc.kind != CFG_BE_NONE) {
            cfg_backend_str(&vm->vnc, b, sizeof b);
            print_kv(f, "", "vnc", b);
            if (vm->vnc_port) {
                snprintf(num, sizeof num, "%u", (unsigned)vm->vnc_port);
                print_kv(f, "", "vnc_port", num);
            }
        }
        if (vm->spice.kind != CFG_BE_NONE) {
            cfg_backend_str(&vm->spice, b, sizeof b);
            print_kv(f, "", "spice", b);
            snprintf(num, sizeof num, "%u", (unsigned)vm->spice_port);
            print_kv(f, "", "spice_port", num);
            fprintf(f, "spice_channels =");
            for (unsigned t = 1; t < N_SPICE_CHANNEL_NAMES; t++)
                if (vm->spice_channels & (UINT32_C(1) << t))
                    fprintf(f, " %s", spice_channel_names[t]);
            fputc('\n', f);
        }
        if (vm->qmp[0])
            print_kv(f, "", "qmp", vm->qmp);
        if (vm->serial.kind != CFG_BE_NONE) {
            cfg_backend_str(&vm->serial, b, sizeof b);
            print_kv(f, "", "serial", b);
        }
        print_list(f, "", "users", vm->users, vm->n_users, ' ');
        print_list(f, "", "groups", vm->groups, vm->n_groups, ' ');
        print_list(f, "", "power_users", vm->power_users, vm->n_power_users, ' ');
        print_list(f, "", "power_groups", vm->power_groups, vm->n_power_groups, ' ');
        if (vm->qga[0]) {
            char q[CFG_PATH_MAX + 8];
            snprintf(q, sizeof q, "unix:%s", vm->qga);
            print_kv(f, "", "qga", q);
        }
        print_kv(f, "", "clipboard", cfg_clip_name(vm->clipboard));
        print_kv(f, "", "clipboard_max", fmt_size(vm->clipboard_max, a, sizeof a));
        print_kv(f, "", "qemu_consoles", cfg_qcons_name(vm->qemu_consoles));
        print_kv(f, "", "continuous_updates", cfg_cu_name(vm->continuous_updates));
        print_kv(f, "", "idle_pause", vm->idle_pause_ms
                                      ? fmt_duration(vm->idle_pause_ms, a, sizeof a) : "0");
    }

    fprintf(f, "\n# routes\n");
    if (c->n_vms == 0)
        fprintf(f, "# (no [vm] sections)\n");
    for (size_t i = 0; i < c->n_vms; i++) {
        const struct cfg_vm *vm = &c->vms[i];
        if (vm->vnc.kind != CFG_BE_NONE && vm->vnc_port)
            print_route(f, c, vm, "vnc", vm->vnc_port, &vm->vnc);
        char sp[CFG_PATH_MAX + 1];
        if (vm->vnc.kind != CFG_BE_NONE &&
            cfg_socket_path(c, vm->name, "vnc", sp, sizeof sp) == 0)
            print_local_route(f, vm, sp, &vm->vnc);
        if (vm->vnc.kind != CFG_BE_NONE && c->web_port) {
            char b[CFG_PATH_MAX + CFG_HOST_MAX + 16], l[ADDR_PORT_MAX + 8];
            cfg_backend_str(&vm->vnc, b, sizeof b);
            addr_hostport_str(c->address, c->web_port, l, sizeof l);
            fprintf(f, "vm %s: web %s/vnc/%s -> %s\n", vm->name, l, vm->name, b);
        }
        if (vm->spice.kind != CFG_BE_NONE)
            print_route(f, c, vm, "spice", vm->spice_port, &vm->spice);
        if (vm->serial.kind != CFG_BE_NONE &&
            cfg_socket_path(c, vm->name, "serial", sp, sizeof sp) == 0) {
            char b[CFG_PATH_MAX + CFG_HOST_MAX + 16];
            cfg_backend_str(&vm->serial, b, sizeof b);
            fprintf(f, "vm %s: serial unix %s -> %s  ", vm->name, sp, b);
            print_list(f, "", "users", vm->users, vm->n_users, ',');
            print_list(f, " ", "groups", vm->groups, vm->n_groups, ',');
            fputc('\n', f);
        }
    }
}
