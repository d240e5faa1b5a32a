/* bench/vncbench.c — the benchmark client of `make bench` (and a tiny
 * reference RFB server for the "direct TLS" baseline).
 *
 * One program, OpenSSL 3 and libc only, built by bench/run.sh with gcc -O2.
 *
 *   vncbench [options] bulk            full-screen non-incremental Raw updates
 *   vncbench [options] rtt             1x1 non-incremental update round trips
 *   vncbench [options] login           sessions/s, TCP connect -> ServerInit
 *   vncbench [options] hs              handshakes/s (TLS part only, then close)
 *   vncbench [options] idle N          hold N sessions open until SIGUSR1/SIGTERM
 *   vncbench [options] scale K         K concurrent bulk sessions
 *   vncbench serve --port P [--cert C --key K]
 *                                      reference RFB 3.8 server (security None,
 *                                      1920x1080x32, answers every request with
 *                                      zeros as fast as it can), thread per
 *                                      connection; with --cert it speaks TLS.
 *
 * Paths (--path):
 *   direct   plain RFB to the backend
 *   vmgate   RFB 3.8, VeNCrypt (19) 0.2, X509Plain (262), TLS, Plain creds
 *   tls      TLS-wrapped plain RFB (stunnel, haproxy, `vncbench serve --cert`)
 *   ws       WebSocket (binary frames, masked client frames) over TLS (websockify)
 *   xtls     RFB VeNCrypt X509None (260) straight to a TLS-capable VNC server
 *   web      vmgate's browser console (web_port): TLS, WebSocket GET /vnc/VM
 *            (--vm, default bench), inside it RFB with VeNCrypt (19) and
 *            Plain (256, no ack byte), as noVNC speaks it
 *
 * Output: one CSV line per result on stdout, "label,workload,param,metric,value";
 * notes and errors on stderr.  --pids PID[,PID...] adds the CPU time of those
 * processes and all their descendants (utime+stime+cutime+cstime from
 * /proc/PID/stat) over the measured window: cpu_s and cpu_s_per_gb (bulk,
 * scale) or cpu_us_per_session (login, hs).  For bulk and scale also:
 * --backend-pids PID[,PID...] (the VNC server behind a relay) gives
 * backend_cpu_s_per_gb, the client's own CPU gives client_cpu_s_per_gb,
 * and busy_pct is how busy all CPUs were (/proc/stat): together they show
 * whether the machine's cores, not one program, set the figure. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define RBUF_CAP   (256 * 1024)
#define MAX_PIDS   16

enum path { P_DIRECT, P_VMGATE, P_TLS, P_WS, P_XTLS, P_WEB };

static struct {
    enum path path;
    const char *host;
    int port;
    const char *user, *pass;
    const char *vm;
    const char *label;
    double seconds;
    long count, warmup;
    int conc;
    double hold;
    double timeout;
    pid_t pids[MAX_PIDS];
    int npids;
    pid_t bpids[MAX_PIDS];
    int nbpids;
    bool quiet;
} opt = {
    .path = P_DIRECT, .host = "127.0.0.1", .port = 5900, .user = "bench", .pass = "bench", .vm = "bench",
    .label = NULL, .seconds = 5, .count = 10000, .warmup = 1000, .conc = 4, .hold = 900, .timeout = 30,
};

static SSL_CTX *g_ctx;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "vncbench: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double now_s(void) { return clock_s(CLOCK_MONOTONIC); }

static const char *label(void)
{
    if (opt.label)
        return opt.label;
    static const char *const n[] = {"direct", "vmgate", "tls", "ws", "xtls", "web"};
    return n[opt.path];
}

static void out_line(const char *wl, const char *param, const char *metric, double v)
{
    printf("%s,%s,%s,%s,%.6g\n", label(), wl, param, metric, v);
    fflush(stdout);
}

/* ---------------------------------------------------------------------- */
/* CPU accounting of server processes (and their descendants)              */

static double proc_cpu(pid_t pid, pid_t *ppid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    /* fields after ')': state ppid pgrp session tty tpgid flags minflt cminflt
     * majflt cmajflt utime stime cutime cstime */
    char st;
    int pp;
    unsigned long long ut, stt;
    long long cut, cst;
    if (sscanf(p + 2, "%c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %lld %lld", &st, &pp,
               &ut, &stt, &cut, &cst) != 6)
        return -1;
    if (ppid)
        *ppid = pp;
    return (double)(ut + stt + (unsigned long long)cut + (unsigned long long)cst) /
           (double)sysconf(_SC_CLK_TCK);
}

/* One reading of every process: pid, parent, CPU seconds. */
enum { MAXP = 65536 };
static struct {
    int n;
    pid_t pid[MAXP], ppid[MAXP];
    double cpu[MAXP];
} g_ps;

static void ps_read(void)
{
    g_ps.n = 0;
    DIR *d = opendir("/proc");
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) && g_ps.n < MAXP) {
        if (!isdigit((unsigned char)e->d_name[0]))
            continue;
        pid_t pid = (pid_t)atoi(e->d_name);
        pid_t pp = 0;
        double c = proc_cpu(pid, &pp);
        if (c < 0)
            continue;
        g_ps.pid[g_ps.n] = pid;
        g_ps.ppid[g_ps.n] = pp;
        g_ps.cpu[g_ps.n] = c;
        g_ps.n++;
    }
    closedir(d);
}

/* CPU seconds of the listed pids plus all their live descendants, in the
 * last ps_read(). */
static double cpu_tree_of(const pid_t *pids, int npids)
{
    if (npids == 0)
        return 0;
    int np = g_ps.n;
    const pid_t *pidv = g_ps.pid, *ppv = g_ps.ppid;
    /* mark the roots, then propagate down until nothing changes */
    static bool in[MAXP];
    for (int i = 0; i < np; i++) {
        in[i] = false;
        for (int k = 0; k < npids; k++)
            if (pidv[i] == pids[k])
                in[i] = true;
    }
    for (bool changed = true; changed;) {
        changed = false;
        for (int i = 0; i < np; i++) {
            if (in[i])
                continue;
            for (int j = 0; j < np; j++)
                if (in[j] && pidv[j] == ppv[i]) {
                    in[i] = changed = true;
                    break;
                }
        }
    }
    double sum = 0;
    for (int i = 0; i < np; i++)
        if (in[i])
            sum += g_ps.cpu[i];
    return sum;
}

/* CPU seconds so far of the server tree (--pids), the backend tree
 * (--backend-pids) and this process (all threads): one reading of /proc
 * for both trees, so they cover the same instant. */
static void cpu_now(double *srv, double *be, double *self)
{
    if (opt.npids || opt.nbpids)
        ps_read();
    *srv = cpu_tree_of(opt.pids, opt.npids);
    *be = cpu_tree_of(opt.bpids, opt.nbpids);
    *self = clock_s(CLOCK_PROCESS_CPUTIME_ID);
}

/* Busy and total jiffies of all CPUs from /proc/stat's first line. */
static void cpu_all(unsigned long long *busy, unsigned long long *total)
{
    unsigned long long v[8] = {0};
    *busy = *total = 0;
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return;
    if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
               &v[4], &v[5], &v[6], &v[7]) == 8) {
        for (int i = 0; i < 8; i++)
            *total += v[i];
        *busy = *total - v[3] - v[4];     /* minus idle and iowait */
    }
    fclose(f);
}

/* ---------------------------------------------------------------------- */
/* a session: transport (plain / TLS), optional WebSocket framing          */

struct sess {
    int fd;
    SSL *ssl;
    bool ws;
    /* receive buffer: for ws, raw frames deframed in place; else plain data */
    uint8_t *rbuf;
    size_t rstart, rend;
    uint64_t ws_left;     /* payload bytes left in the current frame */
    int ws_op;
    bool ws_masked;
    uint8_t ws_mask[4];
    uint64_t ws_mpos;
    /* the last chunk handed out by pl_next that read_exact has not used */
    const uint8_t *lp;
    size_t ll;
    /* ServerInit */
    int width, height, bpp;
    /* timings of the handshake (seconds, monotonic) */
    double t_conn, t_pre, t_tls, t_auth, t_init;
    char err[256];
};

static void sess_err(struct sess *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sess_err(struct sess *s, const char *fmt, ...)
{
    if (s->err[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err, sizeof s->err, fmt, ap);
    va_end(ap);
}

static void ssl_err_str(char *out, size_t n)
{
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, out, n);
    else
        snprintf(out, n, "%s", errno ? strerror(errno) : "EOF");
    ERR_clear_error();
}

/* Raw transport read: >0 bytes, 0 EOF, -1 error. */
static ssize_t tr_read(struct sess *s, void *buf, size_t n)
{
    if (s->ssl) {
        int r = SSL_read(s->ssl, buf, n > INT32_MAX ? INT32_MAX : (int)n);
        if (r > 0)
            return r;
        int e = SSL_get_error(s->ssl, r);
        if (e == SSL_ERROR_ZERO_RETURN)
            return 0;
        char m[200];
        ssl_err_str(m, sizeof m);
        sess_err(s, "SSL_read: %s", m);
        return -1;
    }
    for (;;) {
        ssize_t r = recv(s->fd, buf, n, 0);
        if (r >= 0)
            return r;
        if (errno == EINTR)
            continue;
        sess_err(s, "recv: %s", strerror(errno));
        return -1;
    }
}

static int tr_write(struct sess *s, const void *buf, size_t n)
{
    const uint8_t *p = buf;
    while (n > 0) {
        if (s->ssl) {
            int r = SSL_write(s->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);
            if (r <= 0) {
                char m[200];
                ssl_err_str(m, sizeof m);
                sess_err(s, "SSL_write: %s", m);
                return -1;
            }
            p += r;
            n -= (size_t)r;
        } else {
            ssize_t r = send(s->fd, p, n, MSG_NOSIGNAL);
            if (r < 0) {
                if (errno == EINTR)
                    continue;
                sess_err(s, "send: %s", strerror(errno));
                return -1;
            }
            p += r;
            n -= (size_t)r;
        }
    }
    return 0;
}

/* Write an RFB message (framed when the session is WebSocket). */
static int pl_write(struct sess *s, const void *buf, size_t n)
{
    if (!s->ws)
        return tr_write(s, buf, n);
    uint8_t fr[14 + 4096];
    if (n > 4096)
        return sess_err(s, "ws message too big"), -1;
    size_t h = 0;
    fr[h++] = 0x82;                         /* FIN, binary */
    if (n < 126) {
        fr[h++] = (uint8_t)(0x80 | n);
    } else {
        fr[h++] = 0x80 | 126;
        fr[h++] = (uint8_t)(n >> 8);
        fr[h++] = (uint8_t)n;
    }
    uint32_t r = (uint32_t)random();
    uint8_t *mask = fr + h;
    memcpy(mask, &r, 4);
    h += 4;
    for (size_t i = 0; i < n; i++)
        fr[h + i] = ((const uint8_t *)buf)[i] ^ mask[i & 3];
    return tr_write(s, fr, h + n);
}

/* Next chunk of RFB payload, zero-copy: *p points into the session's buffer
 * and stays valid until the next call.  >0 bytes, 0 EOF, -1 error. */
static ssize_t pl_next(struct sess *s, const uint8_t **p)
{
    if (!s->ws) {
        if (s->rend > s->rstart) {      /* bytes left over from the handshake */
            *p = s->rbuf + s->rstart;
            ssize_t n = (ssize_t)(s->rend - s->rstart);
            s->rstart = s->rend = 0;
            return n;
        }
        *p = s->rbuf;
        return tr_read(s, s->rbuf, RBUF_CAP);
    }
    for (;;) {
        size_t avail = s->rend - s->rstart;
        if (s->ws_left > 0 && avail > 0) {
            size_t n = avail < s->ws_left ? avail : (size_t)s->ws_left;
            uint8_t *q = s->rbuf + s->rstart;
            s->rstart += n;
            s->ws_left -= n;
            if (s->ws_masked)
                for (size_t i = 0; i < n; i++)
                    q[i] ^= s->ws_mask[(s->ws_mpos + i) & 3];
            s->ws_mpos += n;
            if (s->ws_op == 0 || s->ws_op == 1 || s->ws_op == 2) {
                *p = q;
                return (ssize_t)n;
            }
            continue;                       /* control frame payload: skip */
        }
        if (s->ws_left == 0 && avail >= 2) {
            const uint8_t *h = s->rbuf + s->rstart;
            size_t need = 2;
            uint64_t len = h[1] & 0x7f;
            if (len == 126)
                need += 2;
            else if (len == 127)
                need += 8;
            if (h[1] & 0x80)
                need += 4;
            if (avail >= need) {
                size_t o = 2;
                if (len == 126) {
                    len = (uint64_t)h[2] << 8 | h[3];
                    o = 4;
                } else if (len == 127) {
                    len = 0;
                    for (int i = 0; i < 8; i++)
                        len = len << 8 | h[2 + i];
                    o = 10;
                }
                s->ws_masked = (h[1] & 0x80) != 0;
                if (s->ws_masked)
                    memcpy(s->ws_mask, h + o, 4);
                s->ws_op = h[0] & 0x0f;
                s->ws_left = len;
                s->ws_mpos = 0;
                s->rstart += need;
                if (s->ws_op == 8)
                    return 0;               /* close */
                continue;
            }
        }
        /* need more bytes: compact, then read */
        if (s->rstart > 0) {
            memmove(s->rbuf, s->rbuf + s->rstart, s->rend - s->rstart);
            s->rend -= s->rstart;
            s->rstart = 0;
        }
        if (s->rend == RBUF_CAP)
            return sess_err(s, "ws: buffer full"), -1;
        ssize_t r = tr_read(s, s->rbuf + s->rend, RBUF_CAP - s->rend);
        if (r <= 0)
            return r;
        s->rend += (size_t)r;
    }
}

/* The next chunk of payload for a message parser: what read_exact left
 * over, else pl_next. */
static ssize_t next_chunk(struct sess *s, const uint8_t **p)
{
    if (s->ll == 0)
        return pl_next(s, p);
    *p = s->lp;
    ssize_t n = (ssize_t)s->ll;
    s->ll = 0;
    return n;
}

/* Exactly n payload bytes into dst (handshake messages). */
static int read_exact(struct sess *s, void *dst, size_t n)
{
    uint8_t *d = dst;
    while (n > 0) {
        if (s->ll == 0) {
            ssize_t r = pl_next(s, &s->lp);
            if (r <= 0) {
                if (r == 0)
                    sess_err(s, "connection closed by the server");
                return -1;
            }
            s->ll = (size_t)r;
        }
        size_t k = n < s->ll ? n : s->ll;
        memcpy(d, s->lp, k);
        d += k;
        s->lp += k;
        s->ll -= k;
        n -= k;
    }
    return 0;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }

static int tcp_connect(struct sess *s)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)opt.port)};
    if (inet_pton(AF_INET, opt.host, &sa.sin_addr) != 1)
        return sess_err(s, "bad host %s (numeric IPv4 only)", opt.host), -1;
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s->fd < 0)
        return sess_err(s, "socket: %s", strerror(errno)), -1;
    int one = 1;
    setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (opt.timeout > 0) {
        struct timeval tv = {.tv_sec = (time_t)opt.timeout,
                             .tv_usec = (long)((opt.timeout - (double)(time_t)opt.timeout) * 1e6)};
        setsockopt(s->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(s->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    }
    if (connect(s->fd, (struct sockaddr *)&sa, sizeof sa) < 0)
        return sess_err(s, "connect %s:%d: %s", opt.host, opt.port, strerror(errno)), -1;
    return 0;
}

static int tls_start(struct sess *s)
{
    s->ssl = SSL_new(g_ctx);
    if (!s->ssl)
        return sess_err(s, "SSL_new failed"), -1;
    SSL_set_fd(s->ssl, s->fd);
    SSL_set_tlsext_host_name(s->ssl, "localhost");
    if (SSL_connect(s->ssl) != 1) {
        char m[200];
        ssl_err_str(m, sizeof m);
        return sess_err(s, "TLS handshake: %s", m), -1;
    }
    return 0;
}

static int ws_upgrade(struct sess *s)
{
    char req[512], path[160] = "/";
    if (opt.path == P_WEB)
        snprintf(path, sizeof path, "/vnc/%s", opt.vm);
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: binary\r\n"
                     "Origin: https://%s:%d\r\n\r\n",
                     path, opt.host, opt.port, opt.host, opt.port);
    if (tr_write(s, req, (size_t)n) < 0)
        return -1;
    for (;;) {
        if (s->rend == RBUF_CAP)
            return sess_err(s, "ws: HTTP answer too long"), -1;
        ssize_t r = tr_read(s, s->rbuf + s->rend, RBUF_CAP - s->rend);
        if (r <= 0)
            return sess_err(s, "ws: closed during upgrade"), -1;
        s->rend += (size_t)r;
        uint8_t *e = memmem(s->rbuf, s->rend, "\r\n\r\n", 4);
        if (!e)
            continue;
        if (s->rend < 12 || memcmp(s->rbuf + 9, "101", 3) != 0)
            return sess_err(s, "ws: upgrade refused: %.40s", (char *)s->rbuf), -1;
        s->rstart = (size_t)(e + 4 - s->rbuf);
        s->ws = true;
        return 0;
    }
}

/* Read a SecurityResult; on failure read the 3.8 reason. */
static int read_sec_result(struct sess *s)
{
    uint8_t b[4];
    if (read_exact(s, b, 4) < 0)
        return -1;
    uint32_t st = be32(b);
    if (st == 0)
        return 0;
    char reason[256] = "";
    if (read_exact(s, b, 4) == 0) {
        uint32_t n = be32(b);
        if (n >= sizeof reason)
            n = sizeof reason - 1;
        if (read_exact(s, reason, n) == 0)
            reason[n] = 0;
    }
    return sess_err(s, "security result %u: %s", st, reason), -1;
}

/* RFB 3.8 security None (the server must offer it). */
static int rfb_none(struct sess *s)
{
    uint8_t v[12], n, types[256];
    if (read_exact(s, v, 12) < 0 || pl_write(s, "RFB 003.008\n", 12) < 0 ||
        read_exact(s, &n, 1) < 0)
        return -1;
    if (n == 0)
        return sess_err(s, "server refused: no security types"), -1;
    if (read_exact(s, types, n) < 0)
        return -1;
    if (!memchr(types, 1, n))
        return sess_err(s, "server does not offer security None"), -1;
    uint8_t one = 1;
    return pl_write(s, &one, 1);
}

/* RFB 3.8 -> VeNCrypt 0.2 -> subtype, up to the subtype ack. */
static int rfb_vencrypt(struct sess *s, uint32_t subtype)
{
    uint8_t v[12], n, types[256], b[4];
    if (read_exact(s, v, 12) < 0 || pl_write(s, "RFB 003.008\n", 12) < 0 ||
        read_exact(s, &n, 1) < 0)
        return -1;
    if (n == 0 || read_exact(s, types, n) < 0)
        return sess_err(s, "no security types"), -1;
    if (!memchr(types, 19, n))
        return sess_err(s, "server does not offer VeNCrypt"), -1;
    uint8_t t = 19;
    if (pl_write(s, &t, 1) < 0 || read_exact(s, b, 2) < 0)
        return -1;
    if (pl_write(s, "\0\2", 2) < 0 || read_exact(s, b, 1) < 0)
        return -1;
    if (b[0] != 0)
        return sess_err(s, "VeNCrypt version refused"), -1;
    if (read_exact(s, &n, 1) < 0)
        return -1;
    bool found = false;
    for (int i = 0; i < n; i++) {
        if (read_exact(s, b, 4) < 0)
            return -1;
        if (be32(b) == subtype)
            found = true;
    }
    if (!found)
        return sess_err(s, "VeNCrypt subtype %u not offered", subtype), -1;
    put32(b, subtype);
    if (pl_write(s, b, 4) < 0)
        return -1;
    if (subtype == 256)
        return 0;                           /* Plain: no ack, the credentials follow */
    if (read_exact(s, b, 1) < 0)
        return -1;
    if (b[0] != 1)
        return sess_err(s, "VeNCrypt subtype refused"), -1;
    if (s->ll)
        return sess_err(s, "unexpected bytes before TLS"), -1;
    return 0;
}

static void sess_close(struct sess *s)
{
    if (s->ssl) {
        SSL_free(s->ssl);
        s->ssl = NULL;
    }
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    free(s->rbuf);
    s->rbuf = NULL;
}

/* Open a session.  stop_after_tls: return right after the TLS handshake
 * (the `hs` workload).  Returns 0, or -1 with s->err set. */
static int sess_open(struct sess *s, bool stop_after_tls)
{
    memset(s, 0, sizeof *s);
    s->fd = -1;
    s->rbuf = malloc(RBUF_CAP);
    if (!s->rbuf)
        return sess_err(s, "out of memory"), -1;
    double t0 = now_s();
    if (tcp_connect(s) < 0)
        return -1;
    s->t_conn = t0;
    switch (opt.path) {
    case P_DIRECT:
        if (rfb_none(s) < 0)
            return -1;
        s->t_pre = s->t_tls = now_s();
        if (read_sec_result(s) < 0)
            return -1;
        s->t_auth = now_s();
        break;
    case P_TLS:
    case P_WS:
        s->t_pre = now_s();
        if (tls_start(s) < 0)
            return -1;
        s->t_tls = now_s();
        if (stop_after_tls)
            return 0;
        if (opt.path == P_WS && ws_upgrade(s) < 0)
            return -1;
        if (rfb_none(s) < 0 || read_sec_result(s) < 0)
            return -1;
        s->t_auth = now_s();
        break;
    case P_XTLS:
        if (rfb_vencrypt(s, 260) < 0)
            return -1;
        s->t_pre = now_s();
        if (tls_start(s) < 0)
            return -1;
        s->t_tls = now_s();
        if (stop_after_tls)
            return 0;
        if (read_sec_result(s) < 0)
            return -1;
        s->t_auth = now_s();
        break;
    case P_VMGATE:
    case P_WEB: {
        if (opt.path == P_WEB) {
            s->t_pre = now_s();
            if (tls_start(s) < 0)
                return -1;
            s->t_tls = now_s();
            if (stop_after_tls)
                return 0;
            if (ws_upgrade(s) < 0 || rfb_vencrypt(s, 256) < 0)
                return -1;
        } else {
            if (rfb_vencrypt(s, 262) < 0)
                return -1;
            s->t_pre = now_s();
            if (tls_start(s) < 0)
                return -1;
            s->t_tls = now_s();
            if (stop_after_tls)
                return 0;
        }
        size_t ul = strlen(opt.user), plen = strlen(opt.pass);
        uint8_t creds[8 + 512];
        if (ul + plen > 512)
            return sess_err(s, "credentials too long"), -1;
        put32(creds, (uint32_t)ul);
        put32(creds + 4, (uint32_t)plen);
        memcpy(creds + 8, opt.user, ul);
        memcpy(creds + 8 + ul, opt.pass, plen);
        if (pl_write(s, creds, 8 + ul + plen) < 0 || read_sec_result(s) < 0)
            return -1;
        s->t_auth = now_s();
        break;
    }
    }
    /* ClientInit (shared) -> ServerInit */
    uint8_t one = 1, si[24];
    if (pl_write(s, &one, 1) < 0 || read_exact(s, si, 24) < 0)
        return -1;
    s->width = be16(si);
    s->height = be16(si + 2);
    s->bpp = si[4];
    uint32_t nl = be32(si + 20);
    char name[256];
    while (nl > 0) {
        uint32_t k = nl < sizeof name ? nl : (uint32_t)sizeof name;
        if (read_exact(s, name, k) < 0)
            return -1;
        nl -= k;
    }
    s->t_init = now_s();
    if (s->bpp != 8 && s->bpp != 16 && s->bpp != 32)
        return sess_err(s, "unsupported bpp %d", s->bpp), -1;
    return 0;
}

static void note_cipher(struct sess *s)
{
    if (opt.quiet)
        return;
    if (s->ssl) {
        char g[64] = "?";
        int nid = SSL_get_negotiated_group(s->ssl);
        if (nid > 0)
            snprintf(g, sizeof g, "%s", OBJ_nid2sn(nid));
        fprintf(stderr, "# %s: %s %s group %s, %dx%d %d bpp\n", label(), SSL_get_version(s->ssl),
                SSL_get_cipher_name(s->ssl), g, s->width, s->height, s->bpp);
    } else {
        fprintf(stderr, "# %s: plain, %dx%d %d bpp\n", label(), s->width, s->height, s->bpp);
    }
}

/* ---------------------------------------------------------------------- */
/* server -> client message parser (streaming, works on any chunking)      */

enum { M_TYPE, M_FBU, M_RECT, M_CMAP, M_CUT, M_SKIP };

struct rfbp {
    int st, after;        /* M_SKIP: state to return to */
    uint8_t hdr[16];
    int have, need;
    uint64_t skip;
    int rects_left;       /* -1: until LastRect */
    int bpp;
    uint64_t updates;
    bool rect_done_pending;
    void (*on_start)(void *);
    void (*on_end)(void *);
    void *ctx;
    char err[128];
};

static void rfbp_init(struct rfbp *m, int bpp)
{
    memset(m, 0, sizeof *m);
    m->st = M_TYPE;
    m->need = 1;
    m->bpp = bpp;
}

static void rfbp_set(struct rfbp *m, int st, int need)
{
    m->st = st;
    m->need = need;
    m->have = 0;
}

static void rfbp_update_end(struct rfbp *m)
{
    m->updates++;
    if (m->on_end)
        m->on_end(m->ctx);
    rfbp_set(m, M_TYPE, 1);
}

static void rfbp_rect_done(struct rfbp *m)
{
    if (m->rects_left > 0 && --m->rects_left == 0)
        rfbp_update_end(m);
    else
        rfbp_set(m, M_RECT, 12);
}

/* Consume n bytes.  Returns 0, or -1 on a message it cannot parse. */
static int rfbp_feed(struct rfbp *m, const uint8_t *p, size_t n)
{
    while (n > 0) {
        if (m->st == M_SKIP) {
            size_t k = n < m->skip ? n : (size_t)m->skip;
            m->skip -= k;
            p += k;
            n -= k;
            if (m->skip == 0) {
                if (m->after == M_RECT)
                    rfbp_rect_done(m);
                else
                    rfbp_set(m, M_TYPE, 1);
            }
            continue;
        }
        size_t k = (size_t)(m->need - m->have);
        if (k > n)
            k = n;
        memcpy(m->hdr + m->have, p, k);
        m->have += (int)k;
        p += k;
        n -= k;
        if (m->have < m->need)
            return 0;
        switch (m->st) {
        case M_TYPE:
            switch (m->hdr[0]) {
            case 0: m->st = M_FBU; m->need = 4; break;
            case 1: m->st = M_CMAP; m->need = 6; break;
            case 2: rfbp_set(m, M_TYPE, 1); break;      /* Bell */
            case 3: m->st = M_CUT; m->need = 8; break;
            default:
                snprintf(m->err, sizeof m->err, "unknown server message %u", m->hdr[0]);
                return -1;
            }
            break;
        case M_FBU: {
            int nr = be16(m->hdr + 2);
            m->rects_left = nr == 0xffff ? -1 : nr;
            if (m->on_start)
                m->on_start(m->ctx);
            if (nr == 0)
                rfbp_update_end(m);
            else
                rfbp_set(m, M_RECT, 12);
            break;
        }
        case M_RECT: {
            uint32_t w = be16(m->hdr + 4), h = be16(m->hdr + 6);
            int32_t enc = (int32_t)be32(m->hdr + 8);
            if (enc == 0) {
                m->skip = (uint64_t)w * h * (uint64_t)(m->bpp / 8);
                if (m->skip == 0) {
                    rfbp_rect_done(m);
                } else {
                    m->st = M_SKIP;
                    m->after = M_RECT;
                }
            } else if (enc == -224) {         /* LastRect */
                rfbp_update_end(m);
            } else if (enc == -223) {         /* DesktopSize */
                rfbp_rect_done(m);
            } else {
                snprintf(m->err, sizeof m->err, "unexpected encoding %d", enc);
                return -1;
            }
            break;
        }
        case M_CMAP:
            m->skip = (uint64_t)be16(m->hdr + 4) * 6;
            m->st = M_SKIP;
            m->after = M_TYPE;
            if (m->skip == 0)
                rfbp_set(m, M_TYPE, 1);
            break;
        case M_CUT:
            m->skip = be32(m->hdr + 4);
            m->st = M_SKIP;
            m->after = M_TYPE;
            if (m->skip == 0)
                rfbp_set(m, M_TYPE, 1);
            break;
        }
    }
    return 0;
}

static int send_set_encodings_raw(struct sess *s)
{
    uint8_t m[8] = {2, 0, 0, 1, 0, 0, 0, 0};    /* SetEncodings [Raw] */
    return pl_write(s, m, sizeof m);
}

static int send_fbur(struct sess *s, bool incr, int x, int y, int w, int h)
{
    uint8_t m[10] = {3, incr ? 1 : 0};
    put16(m + 2, (uint16_t)x);
    put16(m + 4, (uint16_t)y);
    put16(m + 6, (uint16_t)w);
    put16(m + 8, (uint16_t)h);
    return pl_write(s, m, sizeof m);
}

/* ---------------------------------------------------------------------- */
/* bulk / scale                                                            */

struct bulk {
    struct sess s;
    struct rfbp m;
    uint64_t bytes;
    uint64_t frames;
    bool wfail;
    pthread_t th;
    int ok;
};

static void bulk_on_start(void *ctx)
{
    struct bulk *b = ctx;
    if (send_fbur(&b->s, false, 0, 0, b->s.width, b->s.height) < 0)
        b->wfail = true;
}

static pthread_barrier_t g_bar;
static atomic_int g_stop;
static double g_t0, g_deadline;

/* Run bulk on an open session until g_deadline (counting from g_t0). */
static int bulk_loop(struct bulk *b)
{
    rfbp_init(&b->m, b->s.bpp);
    b->m.on_start = bulk_on_start;
    b->m.ctx = b;
    if (send_set_encodings_raw(&b->s) < 0 ||
        send_fbur(&b->s, false, 0, 0, b->s.width, b->s.height) < 0)
        return -1;
    uint64_t frames0 = 0;
    bool counting = false;
    for (;;) {
        const uint8_t *p;
        ssize_t n = next_chunk(&b->s, &p);
        if (n <= 0) {
            sess_err(&b->s, "connection lost during bulk");
            return -1;
        }
        if (rfbp_feed(&b->m, p, (size_t)n) < 0) {
            sess_err(&b->s, "%s", b->m.err);
            return -1;
        }
        if (b->wfail)
            return -1;
        double t = now_s();
        if (!counting) {
            if (t >= g_t0) {
                counting = true;
                frames0 = b->m.updates;
            }
            continue;
        }
        b->bytes += (uint64_t)n;
        if (t >= g_deadline || atomic_load(&g_stop))
            break;
    }
    b->frames = b->m.updates - frames0;
    return 0;
}

/* At most --conc sessions are being opened at once: Xvnc listens with a
 * backlog of 5, and a burst of 100 connects overflows its accept queue
 * (the client then waits on a connection the server never accepted). */
static sem_t g_open_sem;

static void *scale_thread(void *arg)
{
    struct bulk *b = arg;
    sem_wait(&g_open_sem);
    b->ok = sess_open(&b->s, false) == 0;
    sem_post(&g_open_sem);
    if (!b->ok)
        fprintf(stderr, "vncbench: %s: session failed: %s\n", label(), b->s.err);
    pthread_barrier_wait(&g_bar);
    if (b->ok && bulk_loop(b) < 0) {
        fprintf(stderr, "vncbench: %s: bulk failed: %s\n", label(), b->s.err);
        b->ok = 0;
    }
    return NULL;
}

static int run_scale(int k, const char *wl)
{
    struct bulk *bs = calloc((size_t)k, sizeof *bs);
    if (!bs)
        die("out of memory");
    pthread_barrier_init(&g_bar, NULL, (unsigned)k + 1);
    sem_init(&g_open_sem, 0, (unsigned)opt.conc);
    g_t0 = g_deadline = 1e300;
    for (int i = 0; i < k; i++) {
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setstacksize(&a, 256 * 1024);
        if (pthread_create(&bs[i].th, &a, scale_thread, &bs[i]) != 0)
            die("pthread_create failed");
        pthread_attr_destroy(&a);
    }
    pthread_barrier_wait(&g_bar);       /* every session is up (or failed) */
    int up = 0;
    for (int i = 0; i < k; i++)
        up += bs[i].ok;
    if (up > 0)
        note_cipher(&bs[0].s);
    /* the sessions warm up for 0.5 s, then the window starts */
    g_t0 = now_s() + 0.5;
    g_deadline = g_t0 + opt.seconds;
    while (now_s() < g_t0)
        usleep(1000);
    double cpu0, bcpu0, ccpu0, cpu1, bcpu1, ccpu1;
    cpu_now(&cpu0, &bcpu0, &ccpu0);
    unsigned long long busy0, tot0, busy1, tot1;
    cpu_all(&busy0, &tot0);
    double t0 = now_s();
    while (now_s() < g_deadline)
        usleep(2000);
    cpu_now(&cpu1, &bcpu1, &ccpu1);
    cpu_all(&busy1, &tot1);
    double el = now_s() - t0;
    atomic_store(&g_stop, 1);
    uint64_t bytes = 0, frames = 0;
    int ok = 0;
    for (int i = 0; i < k; i++) {
        pthread_join(bs[i].th, NULL);
        bytes += bs[i].bytes;
        frames += bs[i].frames;
        ok += bs[i].ok;
    }
    char param[32];
    snprintf(param, sizeof param, "%d", k);
    double mb = (double)bytes / 1e6;
    out_line(wl, param, "mbps", mb / el);
    out_line(wl, param, "fps", (double)frames / el);
    if (strcmp(wl, "scale") == 0)
        out_line(wl, param, "sessions_ok", ok);
    if (opt.npids) {
        out_line(wl, param, "cpu_s", cpu1 - cpu0);
        if (bytes)
            out_line(wl, param, "cpu_s_per_gb", (cpu1 - cpu0) / ((double)bytes / 1e9));
    }
    if (bytes) {
        double gb = (double)bytes / 1e9;
        if (opt.nbpids)
            out_line(wl, param, "backend_cpu_s_per_gb", (bcpu1 - bcpu0) / gb);
        out_line(wl, param, "client_cpu_s_per_gb", (ccpu1 - ccpu0) / gb);
    }
    if (tot1 > tot0)
        out_line(wl, param, "busy_pct", 100.0 * (double)(busy1 - busy0) / (double)(tot1 - tot0));
    for (int i = 0; i < k; i++)
        sess_close(&bs[i].s);
    free(bs);
    return ok == k ? 0 : 1;
}

/* ---------------------------------------------------------------------- */
/* rtt                                                                     */

struct rttctx {
    bool done;
};

static void rtt_on_end(void *ctx) { ((struct rttctx *)ctx)->done = true; }

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(const double *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

static int run_rtt(void)
{
    struct sess s;
    if (sess_open(&s, false) < 0)
        die("%s: session failed: %s", label(), s.err);
    note_cipher(&s);
    struct rfbp m;
    struct rttctx rc;
    rfbp_init(&m, s.bpp);
    m.on_end = rtt_on_end;
    m.ctx = &rc;
    if (send_set_encodings_raw(&s) < 0)
        die("%s: %s", label(), s.err);
    long total = opt.warmup + opt.count;
    double *v = malloc(sizeof(double) * (size_t)opt.count);
    if (!v)
        die("out of memory");
    for (long i = 0; i < total; i++) {
        rc.done = false;
        double t0 = now_s();
        if (send_fbur(&s, false, 0, 0, 1, 1) < 0)
            die("%s: %s", label(), s.err);
        while (!rc.done) {
            const uint8_t *p;
            ssize_t n = next_chunk(&s, &p);
            if (n <= 0)
                die("%s: connection lost during rtt: %s", label(), s.err);
            if (rfbp_feed(&m, p, (size_t)n) < 0)
                die("%s: %s", label(), m.err);
        }
        double dt = now_s() - t0;
        if (i >= opt.warmup)
            v[i - opt.warmup] = dt * 1e6;
    }
    qsort(v, (size_t)opt.count, sizeof *v, cmp_double);
    char param[32];
    snprintf(param, sizeof param, "%ld", opt.count);
    out_line("rtt", param, "median_us", pct(v, (size_t)opt.count, 0.5));
    out_line("rtt", param, "p99_us", pct(v, (size_t)opt.count, 0.99));
    out_line("rtt", param, "p999_us", pct(v, (size_t)opt.count, 0.999));
    out_line("rtt", param, "min_us", v[0]);
    free(v);
    sess_close(&s);
    return 0;
}

/* ---------------------------------------------------------------------- */
/* login / hs                                                              */

struct lsample {
    float pre, tls, auth, total;
};

struct lthread {
    pthread_t th;
    bool hs_only;
    struct lsample *v;
    size_t n, cap;
    long fails;
    char lasterr[256];
};

static void *login_thread(void *arg)
{
    struct lthread *t = arg;
    while (now_s() < g_deadline) {
        struct sess s;
        int r = sess_open(&s, t->hs_only);
        double end = now_s();
        if (r == 0 && t->hs_only && s.ssl)
            SSL_shutdown(s.ssl);
        sess_close(&s);
        if (r < 0) {
            t->fails++;
            snprintf(t->lasterr, sizeof t->lasterr, "%s", s.err);
            usleep(1000);
            continue;
        }
        if (s.t_conn < g_t0)
            continue;
        if (t->n == t->cap) {
            t->cap = t->cap ? t->cap * 2 : 4096;
            t->v = realloc(t->v, t->cap * sizeof *t->v);
            if (!t->v)
                die("out of memory");
        }
        struct lsample *x = &t->v[t->n++];
        x->pre = (float)((s.t_pre - s.t_conn) * 1e6);
        x->tls = (float)((s.t_tls - s.t_pre) * 1e6);
        x->auth = t->hs_only ? 0 : (float)((s.t_auth - s.t_tls) * 1e6);
        x->total = (float)((end - s.t_conn) * 1e6);
    }
    return NULL;
}

static double field_pct(struct lsample *v, size_t n, size_t off, double p)
{
    double *a = malloc(sizeof(double) * (n ? n : 1));
    if (!a)
        die("out of memory");
    for (size_t i = 0; i < n; i++)
        a[i] = *(float *)((char *)&v[i] + off);
    qsort(a, n, sizeof *a, cmp_double);
    double r = pct(a, n, p);
    free(a);
    return r;
}

static int run_login(bool hs_only)
{
    const char *wl = hs_only ? "hs" : "login";
    if (hs_only && opt.path == P_DIRECT)
        die("hs needs a TLS path");
    /* one session first, to check the path and print the cipher */
    struct sess s;
    if (sess_open(&s, false) < 0)
        die("%s: session failed: %s", label(), s.err);
    note_cipher(&s);
    sess_close(&s);
    struct lthread *ts = calloc((size_t)opt.conc, sizeof *ts);
    if (!ts)
        die("out of memory");
    g_t0 = now_s();
    g_deadline = g_t0 + opt.seconds;
    double cpu0, cpu1, unused;
    cpu_now(&cpu0, &unused, &unused);
    for (int i = 0; i < opt.conc; i++) {
        ts[i].hs_only = hs_only;
        if (pthread_create(&ts[i].th, NULL, login_thread, &ts[i]) != 0)
            die("pthread_create failed");
    }
    size_t n = 0;
    long fails = 0;
    for (int i = 0; i < opt.conc; i++) {
        pthread_join(ts[i].th, NULL);
        n += ts[i].n;
        fails += ts[i].fails;
    }
    double el = now_s() - g_t0;
    cpu_now(&cpu1, &unused, &unused);
    struct lsample *all = malloc(sizeof *all * (n ? n : 1));
    if (!all)
        die("out of memory");
    size_t k = 0;
    for (int i = 0; i < opt.conc; i++) {
        if (ts[i].n)
            memcpy(all + k, ts[i].v, ts[i].n * sizeof *all);
        k += ts[i].n;
        if (ts[i].fails && !opt.quiet)
            fprintf(stderr, "vncbench: %s %s: %ld failures, last: %s\n", label(), wl,
                    ts[i].fails, ts[i].lasterr);
        free(ts[i].v);
    }
    char param[32];
    snprintf(param, sizeof param, "%d", opt.conc);
    out_line(wl, param, "per_s", (double)n / el);
    out_line(wl, param, "fails", (double)fails);
    out_line(wl, param, "total_med_us", field_pct(all, n, offsetof(struct lsample, total), 0.5));
    if (opt.path != P_DIRECT) {
        out_line(wl, param, "tls_med_us", field_pct(all, n, offsetof(struct lsample, tls), 0.5));
        out_line(wl, param, "tls_p99_us", field_pct(all, n, offsetof(struct lsample, tls), 0.99));
    }
    if (!hs_only) {
        out_line(wl, param, "auth_med_us", field_pct(all, n, offsetof(struct lsample, auth), 0.5));
        out_line(wl, param, "auth_p99_us", field_pct(all, n, offsetof(struct lsample, auth), 0.99));
    }
    if (opt.path == P_VMGATE || opt.path == P_XTLS)
        out_line(wl, param, "pre_med_us", field_pct(all, n, offsetof(struct lsample, pre), 0.5));
    if (opt.npids && n)
        out_line(wl, param, "server_cpu_us_per", (cpu1 - cpu0) * 1e6 / (double)n);
    free(all);
    free(ts);
    return 0;
}

/* ---------------------------------------------------------------------- */
/* idle                                                                    */

static int *g_idle_fds;
static atomic_long g_idle_next, g_idle_fail;
static long g_idle_n;

static void *idle_thread(void *arg)
{
    (void)arg;
    char lasterr[256] = "";
    for (;;) {
        long i = atomic_fetch_add(&g_idle_next, 1);
        if (i >= g_idle_n)
            break;
        struct sess s;
        if (sess_open(&s, false) < 0) {
            atomic_fetch_add(&g_idle_fail, 1);
            if (strcmp(lasterr, s.err) != 0 && !opt.quiet)
                fprintf(stderr, "vncbench: %s idle: session %ld failed: %s\n", label(), i, s.err);
            snprintf(lasterr, sizeof lasterr, "%s", s.err);
            sess_close(&s);
            continue;
        }
        /* Keep only the socket: the session never speaks again. */
        if (s.ssl) {
            SSL_free(s.ssl);          /* no close_notify, fd stays open */
            s.ssl = NULL;
        }
        free(s.rbuf);
        s.rbuf = NULL;
        g_idle_fds[i] = s.fd;
    }
    return NULL;
}

static int run_idle(long n)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && (long)rl.rlim_cur < n + 64)
        fprintf(stderr, "vncbench: warning: fd limit %ld < %ld sessions\n", (long)rl.rlim_cur, n);
    sigset_t ss;
    sigemptyset(&ss);
    sigaddset(&ss, SIGUSR1);
    sigaddset(&ss, SIGTERM);
    sigaddset(&ss, SIGINT);
    pthread_sigmask(SIG_BLOCK, &ss, NULL);
    g_idle_n = n;
    g_idle_fds = malloc(sizeof(int) * (size_t)(n ? n : 1));
    if (!g_idle_fds)
        die("out of memory");
    for (long i = 0; i < n; i++)
        g_idle_fds[i] = -1;
    double t0 = now_s();
    pthread_t *th = calloc((size_t)opt.conc, sizeof *th);
    for (int i = 0; i < opt.conc; i++) {
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setstacksize(&a, 256 * 1024);
        pthread_create(&th[i], &a, idle_thread, NULL);
        pthread_attr_destroy(&a);
    }
    for (int i = 0; i < opt.conc; i++)
        pthread_join(th[i], NULL);
    free(th);
    double el = now_s() - t0;
    long fails = atomic_load(&g_idle_fail);
    char param[32];
    snprintf(param, sizeof param, "%ld", n);
    out_line("idle", param, "open_s", el);
    out_line("idle", param, "failed", (double)fails);
    out_line("idle", param, "opened", (double)(n - fails));   /* the "all up" line */
    if (opt.hold > 0) {
        struct timespec to = {.tv_sec = (time_t)opt.hold,
                              .tv_nsec = (long)((opt.hold - (double)(time_t)opt.hold) * 1e9)};
        sigtimedwait(&ss, NULL, &to);
    }
    /* Which sessions are still open?  A closed one is readable with EOF. */
    long alive = 0;
    for (long i = 0; i < n; i++) {
        int fd = g_idle_fds[i];
        if (fd < 0)
            continue;
        struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};
        if (poll(&p, 1, 0) < 0)
            continue;
        bool ok = !(p.revents & (POLLHUP | POLLERR | POLLRDHUP));
        if (ok && (p.revents & POLLIN)) {
            char c;
            ssize_t r = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
            ok = r > 0;
        }
        alive += ok;
    }
    out_line("idle", param, "alive", (double)alive);
    for (long i = 0; i < n; i++)
        if (g_idle_fds[i] >= 0)
            close(g_idle_fds[i]);
    free(g_idle_fds);
    return alive == n ? 0 : 1;
}

/* ---------------------------------------------------------------------- */
/* serve: the reference RFB server                                          */

struct srv {
    int fd;
    SSL *ssl;
};

static SSL_CTX *g_sctx;
static uint8_t *g_zero;
static int g_sw = 1920, g_sh = 1080;

static int srv_read(struct srv *c, void *b, size_t n)
{
    uint8_t *p = b;
    while (n) {
        ssize_t r = c->ssl ? SSL_read(c->ssl, p, (int)n) : recv(c->fd, p, n, 0);
        if (r <= 0) {
            if (!c->ssl && r < 0 && errno == EINTR)
                continue;
            return -1;
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static int srv_write(struct srv *c, const void *b, size_t n)
{
    const uint8_t *p = b;
    while (n) {
        size_t k = n > (1u << 30) ? (1u << 30) : n;
        ssize_t r = c->ssl ? SSL_write(c->ssl, p, (int)k) : send(c->fd, p, k, MSG_NOSIGNAL);
        if (r <= 0) {
            if (!c->ssl && r < 0 && errno == EINTR)
                continue;
            return -1;
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static void *srv_thread(void *arg)
{
    struct srv *c = arg;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (g_sctx) {
        c->ssl = SSL_new(g_sctx);
        SSL_set_fd(c->ssl, c->fd);
        if (SSL_accept(c->ssl) != 1)
            goto out;
    }
    uint8_t b[64];
    static const uint8_t types[] = {1, 1};
    if (srv_write(c, "RFB 003.008\n", 12) < 0 || srv_read(c, b, 12) < 0 ||
        srv_write(c, types, 2) < 0 || srv_read(c, b, 1) < 0 || b[0] != 1)
        goto out;
    uint8_t si[24 + 8] = {0};
    put32(si, 0);                                   /* SecurityResult OK */
    if (srv_write(c, si, 4) < 0 || srv_read(c, b, 1) < 0)
        goto out;
    put16(si, (uint16_t)g_sw);
    put16(si + 2, (uint16_t)g_sh);
    uint8_t pf[16] = {32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0};
    memcpy(si + 4, pf, 16);
    put32(si + 20, 8);
    memcpy(si + 24, "vncbench", 8);
    if (srv_write(c, si, 32) < 0)
        goto out;
    for (;;) {
        if (srv_read(c, b, 1) < 0)
            goto out;
        switch (b[0]) {
        case 0:                                     /* SetPixelFormat */
            if (srv_read(c, b, 19) < 0)
                goto out;
            break;
        case 2: {                                   /* SetEncodings */
            if (srv_read(c, b, 3) < 0)
                goto out;
            for (int n = be16(b + 1); n > 0; n--)
                if (srv_read(c, b, 4) < 0)
                    goto out;
            break;
        }
        case 3: {                                   /* FramebufferUpdateRequest */
            if (srv_read(c, b, 9) < 0)
                goto out;
            int x = be16(b + 1), y = be16(b + 3), w = be16(b + 5), h = be16(b + 7);
            if (x >= g_sw || y >= g_sh)
                w = h = 0;
            if (x + w > g_sw)
                w = g_sw - x;
            if (y + h > g_sh)
                h = g_sh - y;
            uint8_t hd[16] = {0, 0, 0, 1};
            put16(hd + 4, (uint16_t)x);
            put16(hd + 6, (uint16_t)y);
            put16(hd + 8, (uint16_t)w);
            put16(hd + 10, (uint16_t)h);
            /* header and data in one write when small (rtt), else two */
            size_t dl = (size_t)w * (size_t)h * 4;
            if (dl <= 4096) {
                uint8_t m[16 + 4096];
                memcpy(m, hd, 16);
                memcpy(m + 16, g_zero, dl);
                if (srv_write(c, m, 16 + dl) < 0)
                    goto out;
            } else if (srv_write(c, hd, 16) < 0 || srv_write(c, g_zero, dl) < 0) {
                goto out;
            }
            break;
        }
        case 4:                                     /* KeyEvent */
            if (srv_read(c, b, 7) < 0)
                goto out;
            break;
        case 5:                                     /* PointerEvent */
            if (srv_read(c, b, 5) < 0)
                goto out;
            break;
        case 6: {                                   /* ClientCutText */
            if (srv_read(c, b, 7) < 0)
                goto out;
            for (uint32_t n = be32(b + 3); n > 0;) {
                uint32_t k = n > sizeof b ? (uint32_t)sizeof b : n;
                if (srv_read(c, b, k) < 0)
                    goto out;
                n -= k;
            }
            break;
        }
        default:
            goto out;
        }
    }
out:
    if (c->ssl)
        SSL_free(c->ssl);
    close(c->fd);
    free(c);
    return NULL;
}

static int run_serve(const char *cert, const char *key)
{
    signal(SIGPIPE, SIG_IGN);
    g_zero = calloc(1, (size_t)g_sw * (size_t)g_sh * 4);
    if (!g_zero)
        die("out of memory");
    if (cert) {
        g_sctx = SSL_CTX_new(TLS_server_method());
        SSL_CTX_set_min_proto_version(g_sctx, TLS1_2_VERSION);
        SSL_CTX_set_options(g_sctx, SSL_OP_NO_TICKET);
        SSL_CTX_set_session_cache_mode(g_sctx, SSL_SESS_CACHE_OFF);
        if (SSL_CTX_use_certificate_chain_file(g_sctx, cert) != 1 ||
            SSL_CTX_use_PrivateKey_file(g_sctx, key, SSL_FILETYPE_PEM) != 1)
            die("cannot load %s / %s", cert, key);
    }
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)opt.port)};
    inet_pton(AF_INET, opt.host, &sa.sin_addr);
    if (bind(ls, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(ls, 1024) < 0)
        die("cannot listen on %s:%d: %s", opt.host, opt.port, strerror(errno));
    fprintf(stderr, "vncbench: serving on %s:%d%s\n", opt.host, opt.port, cert ? " (TLS)" : "");
    for (;;) {
        int fd = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE)
                continue;
            die("accept: %s", strerror(errno));
        }
        struct srv *c = calloc(1, sizeof *c);
        c->fd = fd;
        pthread_t t;
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&a, 256 * 1024);
        if (pthread_create(&t, &a, srv_thread, c) != 0) {
            close(fd);
            free(c);
        }
        pthread_attr_destroy(&a);
    }
}

/* ---------------------------------------------------------------------- */

/* "P[,P...]" into pids (at most MAX_PIDS; non-numbers skipped). */
static void parse_pids(const char *v, pid_t *pids, int *n)
{
    char *dup = strdup(v), *sp = NULL;
    if (!dup)
        return;
    for (char *t = strtok_r(dup, ",", &sp); t && *n < MAX_PIDS; t = strtok_r(NULL, ",", &sp)) {
        int pid = atoi(t);
        if (pid > 0)
            pids[(*n)++] = (pid_t)pid;
    }
    free(dup);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: vncbench [options] bulk|rtt|login|hs|idle N|scale K\n"
            "       vncbench serve --port P [--host A] [--cert C --key K]\n"
            "options:\n"
            "  --path direct|vmgate|tls|ws|xtls|web (default direct)\n"
            "  --vm NAME                          web: the VM in /vnc/NAME (default bench)\n"
            "  --host A --port P                  server (numeric IPv4, default 127.0.0.1:5900)\n"
            "  --user U --pass P                  vmgate credentials (default bench/bench)\n"
            "  --label L                          first CSV column (default: the path)\n"
            "  --seconds S                        bulk/scale/login/hs window (default 5)\n"
            "  --count N --warmup W               rtt round trips (default 10000, 1000)\n"
            "  --conc C                           login/hs/idle client threads (default 4)\n"
            "  --hold S                           idle: exit after S s without a signal (900)\n"
            "  --timeout S                        socket receive/send timeout (default 30, 0 = none)\n"
            "  --pids P[,P...]                    server processes whose CPU time to report\n"
            "  --backend-pids P[,P...]            the VNC server behind a relay (bulk, scale)\n"
            "  --quiet                            no notes on stderr\n"
            "CSV on stdout: label,workload,param,metric,value\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *cert = NULL, *key = NULL;
    const char *pos[3] = {NULL, NULL, NULL};
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (strncmp(o, "--", 2) != 0) {
            if (npos == 3)
                usage();
            pos[npos++] = o;
            continue;
        }
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(o, "--quiet") == 0) {
            opt.quiet = true;
            continue;
        }
        if (!v)
            usage();
        i++;
        if (strcmp(o, "--path") == 0) {
            if (strcmp(v, "direct") == 0) opt.path = P_DIRECT;
            else if (strcmp(v, "vmgate") == 0) opt.path = P_VMGATE;
            else if (strcmp(v, "tls") == 0) opt.path = P_TLS;
            else if (strcmp(v, "ws") == 0) opt.path = P_WS;
            else if (strcmp(v, "xtls") == 0) opt.path = P_XTLS;
            else if (strcmp(v, "web") == 0) opt.path = P_WEB;
            else usage();
        } else if (strcmp(o, "--host") == 0) opt.host = v;
        else if (strcmp(o, "--port") == 0) opt.port = atoi(v);
        else if (strcmp(o, "--user") == 0) opt.user = v;
        else if (strcmp(o, "--pass") == 0) opt.pass = v;
        else if (strcmp(o, "--vm") == 0) opt.vm = v;
        else if (strcmp(o, "--label") == 0) opt.label = v;
        else if (strcmp(o, "--seconds") == 0) opt.seconds = atof(v);
        else if (strcmp(o, "--count") == 0) opt.count = atol(v);
        else if (strcmp(o, "--warmup") == 0) opt.warmup = atol(v);
        else if (strcmp(o, "--conc") == 0) opt.conc = atoi(v);
        else if (strcmp(o, "--hold") == 0) opt.hold = atof(v);
        else if (strcmp(o, "--timeout") == 0) opt.timeout = atof(v);
        else if (strcmp(o, "--cert") == 0) cert = v;
        else if (strcmp(o, "--key") == 0) key = v;
        else if (strcmp(o, "--pids") == 0) parse_pids(v, opt.pids, &opt.npids);
        else if (strcmp(o, "--backend-pids") == 0) parse_pids(v, opt.bpids, &opt.nbpids);
        else usage();
    }
    if (npos == 0)
        usage();
    const char *wl = pos[0];
    signal(SIGPIPE, SIG_IGN);
    srandom((unsigned)getpid() ^ (unsigned)time(NULL));
    if (opt.conc < 1)
        opt.conc = 1;
    if (opt.count < 1)
        opt.count = 1;
    if (opt.warmup < 0)
        opt.warmup = 0;

    if (strcmp(wl, "serve") == 0)
        return run_serve(cert, key);

    g_ctx = SSL_CTX_new(TLS_client_method());
    if (!g_ctx)
        die("SSL_CTX_new failed");
    SSL_CTX_set_verify(g_ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_min_proto_version(g_ctx, TLS1_2_VERSION);
    SSL_CTX_set_session_cache_mode(g_ctx, SSL_SESS_CACHE_OFF);   /* full handshakes */
    SSL_CTX_set_options(g_ctx, SSL_OP_NO_TICKET);
    const char *groups = getenv("TLSGROUPS");
    if (groups && *groups && SSL_CTX_set1_groups_list(g_ctx, groups) != 1)
        die("bad TLSGROUPS %s", groups);

    if (strcmp(wl, "bulk") == 0)
        return run_scale(1, "bulk");
    if (strcmp(wl, "scale") == 0) {
        if (!pos[1])
            usage();
        int k = atoi(pos[1]);
        if (k < 1)
            usage();
        return run_scale(k, "scale");
    }
    if (strcmp(wl, "rtt") == 0)
        return run_rtt();
    if (strcmp(wl, "login") == 0)
        return run_login(false);
    if (strcmp(wl, "hs") == 0)
        return run_login(true);
    if (strcmp(wl, "idle") == 0) {
        if (!pos[1])
            usage();
        long n = atol(pos[1]);
        if (n < 1)
            usage();
        return run_idle(n);
    }
    usage();
}
