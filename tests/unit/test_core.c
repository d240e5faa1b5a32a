/* tests/unit/test_core.c — the connection core (proxy/core.c) and the VNC
 * and SPICE protocols driven in one process, without QEMU.
 *
 * The harness: the proxy runs on a libev loop in the test's thread, with
 * a fake auth helper on the same loop (the other end of the auth client's
 * socketpair, answering each request as the test says).  A scripted fake
 * viewer (blocking sockets, OpenSSL client) and a fake RFB backend (a unix
 * socket, security None, ServerInit, then a scripted exchange) run in
 * threads.  The loop turns until the viewer's script returns.  The daemon's
 * log (stderr) is captured in a file so tests can assert the lines.
 *
 * Each test drives one handshake state or failure: the whole VNC login and
 * relay, a bad version, a wrong security type, a short read and close, a
 * wrong password (answered after the fail delay), a dead backend, a
 * backend that closes during its handshake, the login timeout, and the
 * lingering close (a viewer still writing when refused must still read the
 * whole refusal: no RST).  SPICE: a malformed link and the lingering close
 * of its refusal, the login timeout. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "auth/auth.h"
#include "auth/proto.h"
#include "certs/certs.h"
#include "common/config.h"
#include "common/log.h"
#include "proxy/audit.h"
#include "proxy/proxy.h"
#include "proxy/rfb.h"
#include "proxy/spice_link.h"

/* ---------------------------------------------------------------- harness */

enum helper_mode { H_OK, H_BAD_PASSWORD, H_NEVER };
enum backend_mode { B_NONE, B_RFB, B_CLOSE_AT_ONCE };

struct h {
    char dir[64];
    struct cfg cfg;
    struct ev_loop *loop;
    SSL_CTX *sctx;
    struct proxy px;
    struct auth_client *ac;
    int helper_fd;
    ev_io helper_w;
    enum helper_mode hmode;
    int helper_requests;
    char helper_rhost[64];             /* rhost of the last login request */
    const uint8_t *pre;                /* sent by viewer_connect first (a PROXY header) */
    size_t pre_len;
    int forgets;                       /* AUTHP_PWR_FORGET reports (sessions that ended) */
    int lfd;                           /* the front listener (TCP, loopback) */
    uint16_t port;
    ev_io accept_w;
    const struct conn_proto *proto;
    int bfd;                           /* the fake backend's listener */
    enum backend_mode bmode;
    pthread_t bthread;
    bool bstarted;
    /* what the backend saw */
    uint8_t b_got[64];
    size_t b_got_len;
    int b_conns;
    int saved_stderr;
    char logpath[128];
};

static struct h H;

static void helper_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
    uint8_t buf[AUTHP_MAX_MSG];
    char cbuf[CMSG_SPACE(4 * sizeof(int))];
    struct iovec iov = { buf, sizeof buf };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                         .msg_controllen = sizeof cbuf };
    ssize_t n = recvmsg(H.helper_fd, &mh, MSG_DONTWAIT);
    if (n <= 0)
        return;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
            for (size_t i = 0; i < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++)
                close(((int *)CMSG_DATA(cm))[i]);
    uint32_t id;
    assert_int_equal(authp_peek_id(buf, (size_t)n, &id), 0);
    struct authp_power_req pq;
    if (authp_decode_power_req(buf, (size_t)n, &pq) == 0 && pq.action == AUTHP_PWR_FORGET) {
        H.forgets++;                   /* never answered */
        return;
    }
    H.helper_requests++;
    struct authp_login_req req;
    if (authp_decode_login_req(buf, (size_t)n, &req) == 0)
        snprintf(H.helper_rhost, sizeof H.helper_rhost, "%s", req.rhost);
    explicit_bzero(&req, sizeof req);
    if (H.hmode == H_NEVER)
        return;
    struct authp_login_resp resp = { .id = id };
    resp.result = H.hmode == H_OK ? AUTHP_OK : AUTHP_BAD_PASSWORD;
    uint8_t out[AUTHP_RESP_MAX];
    int l = authp_encode_login_resp(&resp, out, sizeof out);
    assert_true(l > 0);
    assert_int_equal(send(H.helper_fd, out, (size_t)l, 0), l);
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int fd = accept4(H.lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0)
        proxy_accept(&H.px, H.proto, &H.cfg.vms[0], fd, (struct sockaddr *)&ss);
}

/* Write all or fail (blocking sockets in the threads). */
static int xwrite(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Read exactly n bytes; -1 on EOF or error (errno kept). */
static int xread(int fd, void *p, size_t n)
{
    uint8_t *b = p;
    while (n) {
        ssize_t r = recv(fd, b, n, 0);
        if (r == 0) {
            errno = 0;
            return -1;
        }
        if (r < 0)
            return -1;
        b += r;
        n -= (size_t)r;
    }
    return 0;
}

/* The fake RFB backend: one connection at a time, security None, a 4x4
 * ServerInit, then it records what the VM side receives and answers a
 * KeyEvent with a Bell. */
static void *backend_main(void *arg)
{
    (void)arg;
    for (;;) {
        int fd = accept(H.bfd, NULL, NULL);
        if (fd < 0)
            return NULL;
        H.b_conns++;
        if (H.bmode == B_CLOSE_AT_ONCE) {
            close(fd);
            continue;
        }
        uint8_t b[64];
        if (xwrite(fd, "RFB 003.008\n", 12) || xread(fd, b, 12) ||
            xwrite(fd, "\x01\x01", 2) || xread(fd, b, 1) || b[0] != 1 ||
            xwrite(fd, "\0\0\0\0", 4) || xread(fd, b, 1)) {   /* ClientInit */
            close(fd);
            continue;
        }
        H.b_got[0] = b[0];                                 /* the shared flag */
        H.b_got_len = 1;
        uint8_t si[24 + 4] = { 0, 4, 0, 4, 32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0 };
        si[23] = 4;
        memcpy(si + 24, "fake", 4);
        if (xwrite(fd, si, sizeof si)) {
            close(fd);
            continue;
        }
        uint8_t key[8];
        if (xread(fd, key, 8) == 0) {
            memcpy(H.b_got + 1, key, 8);
            H.b_got_len = 9;
            xwrite(fd, "\x02", 1);                          /* Bell */
        }
        /* Wait for the proxy to close. */
        while (recv(fd, b, sizeof b, 0) > 0)
            ;
        close(fd);
    }
}

static void capture_log_start(void)
{
    snprintf(H.logpath, sizeof H.logpath, "%s/log", H.dir);
    fflush(stderr);
    H.saved_stderr = dup(2);
    int fd = open(H.logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    dup2(fd, 2);
    close(fd);
}

static char *log_text(void)
{
    fflush(stderr);
    static char text[65536];
    FILE *f = fopen(H.logpath, "r");
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    if (f)
        fclose(f);
    text[n] = '\0';
    return text;
}

static void assert_log(const char *needle)
{
    const char *t = log_text();
    if (!strstr(t, needle)) {
        fprintf(stdout, "log does not contain \"%s\"; log:\n%s\n", needle, t);
        fail();
    }
}

static int setup(const struct conn_proto *proto, enum backend_mode bm, const char *extra)
{
    memset(&H, 0, sizeof H);
    H.proto = proto;
    H.bmode = bm;
    snprintf(H.dir, sizeof H.dir, "/tmp/vmg-core.XXXXXX");
    assert_non_null(mkdtemp(H.dir));
    static const char *const names[] = { "localhost", "127.0.0.1" };
    char err[256], a[256], b[256];
    assert_int_equal(certs_generate(H.dir, NULL, names, 2, 1, 0, err, sizeof err), 0);
    char text[2048];
    snprintf(text, sizeof text,
             "[gateway]\naddress = 127.0.0.1\ncert = %s/server.crt\nkey = %s/server.key\n"
             "auth = file\npasswd_file = %s/passwd\nlogin_timeout = 2s\nfail_delay = 300ms\n%s"
             "[vm dev0]\nvnc = unix:%s/vm.vnc\nvnc_port = 5999\n"
             "spice = unix:%s/vm.spice\nspice_port = 5998\nusers = alice\n",
             H.dir, H.dir, H.dir, extra ? extra : "", H.dir, H.dir);
    if (cfg_parse("test.conf", text, strlen(text), &H.cfg, err, sizeof err) != 0) {
        fprintf(stdout, "config: %s\n", err);
        fail();
    }
    snprintf(a, sizeof a, "%s/server.crt", H.dir);
    snprintf(b, sizeof b, "%s/server.key", H.dir);
    H.sctx = certs_server_ctx(a, b, err, sizeof err);
    assert_non_null(H.sctx);
    H.loop = ev_loop_new(EVFLAG_AUTO);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv), 0);
    H.ac = auth_client_new(H.loop, sv[0]);
    assert_non_null(H.ac);
    H.helper_fd = sv[1];
    ev_io_init(&H.helper_w, helper_cb, sv[1], EV_READ);
    ev_io_start(H.loop, &H.helper_w);
    proxy_init(&H.px, H.loop, &H.cfg, H.sctx, H.ac);
    /* front listener */
    H.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    assert_int_equal(bind(H.lfd, (struct sockaddr *)&sin, sizeof sin), 0);
    assert_int_equal(listen(H.lfd, 16), 0);
    socklen_t sl = sizeof sin;
    getsockname(H.lfd, (struct sockaddr *)&sin, &sl);
    H.port = ntohs(sin.sin_port);
    ev_io_init(&H.accept_w, accept_cb, H.lfd, EV_READ);
    ev_io_start(H.loop, &H.accept_w);
    /* backend */
    H.bfd = -1;
    if (bm != B_NONE) {
        H.bfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un sun = { .sun_family = AF_UNIX };
        snprintf(sun.sun_path, sizeof sun.sun_path, "%s/vm.vnc", H.dir);
        assert_int_equal(bind(H.bfd, (struct sockaddr *)&sun, sizeof sun), 0);
        assert_int_equal(listen(H.bfd, 4), 0);
        assert_int_equal(pthread_create(&H.bthread, NULL, backend_main, NULL), 0);
        H.bstarted = true;
    }
    capture_log_start();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    proxy_close_all(&H.px, "test over");
    proxy_fini(&H.px);
    if (H.bstarted) {
        shutdown(H.bfd, SHUT_RDWR);
        pthread_join(H.bthread, NULL);
    }
    if (H.bfd >= 0)
        close(H.bfd);
    auth_client_free(H.ac);
    close(H.helper_fd);
    close(H.lfd);
    ev_loop_destroy(H.loop);
    SSL_CTX_free(H.sctx);
    cfg_free(&H.cfg);
    fflush(stderr);
    dup2(H.saved_stderr, 2);
    close(H.saved_stderr);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", H.dir);
    if (system(cmd) != 0)
        return -1;
    return 0;
}

static int setup_vnc(void **s) { (void)s; return setup(&vnc_proto, B_RFB, NULL); }
static int setup_vnc_nobackend(void **s) { (void)s; return setup(&vnc_proto, B_NONE, NULL); }
static int setup_vnc_closing(void **s) { (void)s; return setup(&vnc_proto, B_CLOSE_AT_ONCE, NULL); }
static int setup_spice(void **s) { (void)s; return setup(&spice_proto, B_NONE, NULL); }

/* ------------------------------------------------------------ the viewer */

typedef void (*script_fn)(void *ctx);
struct run {
    script_fn fn;
    void *ctx;
    volatile bool done;
};

static void *viewer_main(void *arg)
{
    struct run *r = arg;
    r->fn(r->ctx);
    r->done = true;
    return NULL;
}

static void wake_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
}

/* Run the viewer script in a thread while the loop turns; then let the
 * loop settle for settle seconds (closing, logging). */
static void run_viewer(script_fn fn, void *ctx, double settle)
{
    struct run r = { fn, ctx, false };
    pthread_t t;
    ev_timer tick;
    ev_timer_init(&tick, wake_cb, 0.01, 0.01);
    ev_timer_start(H.loop, &tick);
    assert_int_equal(pthread_create(&t, NULL, viewer_main, &r), 0);
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        ev_run(H.loop, EVRUN_ONCE);
        clock_gettime(CLOCK_MONOTONIC, &now);
        double el = (double)(now.tv_sec - t0.tv_sec) + (double)(now.tv_nsec - t0.tv_nsec) / 1e9;
        if (r.done)
            break;
        assert_true(el < 20.0);
    }
    pthread_join(t, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        ev_run(H.loop, EVRUN_ONCE);
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((double)(now.tv_sec - t0.tv_sec) + (double)(now.tv_nsec - t0.tv_nsec) / 1e9 >= settle)
            break;
    }
    ev_timer_stop(H.loop, &tick);
}

static int viewer_connect(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(H.port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    struct timeval tv = { 10, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sin, sizeof sin) != 0)
        return -1;
    if (H.pre_len) {
        /* in two pieces: the core must wait for the rest of a header */
        size_t a = H.pre_len > 7 ? 7 : H.pre_len;
        if (xwrite(fd, H.pre, a))
            return -1;
        usleep(50000);
        if (xwrite(fd, H.pre + a, H.pre_len - a))
            return -1;
    }
    return fd;
}

/* Read a SecurityResult failure (3.8: U32 1, U32 len, reason) into out. */
static int read_sec_failure(int fd, char *out, size_t outsz)
{
    uint8_t h[8];
    if (xread(fd, h, 8))
        return -1;
    uint32_t st = rfb_get_u32(h), len = rfb_get_u32(h + 4);
    if (st != 1 || len >= outsz)
        return -1;
    if (xread(fd, out, len))
        return -1;
    out[len] = '\0';
    return 0;
}

struct vres {
    int step;                /* how far the script got */
    char reason[256];
    bool eof_clean;          /* the connection ended with EOF, not a reset */
    uint8_t got[64];
    size_t got_len;
    char user[32], pass[32];
    size_t junk;             /* bytes to write after the refused choice */
};

/* Up to the VeNCrypt ack; returns fd or -1. */
static int vnc_preamble(struct vres *v)
{
    int fd = viewer_connect();
    uint8_t b[16];
    if (fd < 0 || xread(fd, b, 12) || memcmp(b, "RFB 003.008\n", 12))
        return -1;
    v->step = 1;
    if (xwrite(fd, "RFB 003.008\n", 12) || xread(fd, b, 2) || b[0] != 1 || b[1] != 19)
        return -1;
    v->step = 2;
    if (xwrite(fd, "\x13", 1) || xread(fd, b, 2) || b[0] != 0 || b[1] != 2)
        return -1;
    if (xwrite(fd, "\x00\x02", 2) || xread(fd, b, 6) || b[0] != 0 || b[1] != 1 ||
        rfb_get_u32(b + 2) != 262)
        return -1;
    if (xwrite(fd, "\x00\x00\x01\x06", 4) || xread(fd, b, 1) || b[0] != 1)
        return -1;
    v->step = 3;
    return fd;
}

static void script_vnc_login(void *ctx)
{
    struct vres *v = ctx;
    int fd = vnc_preamble(v);
    if (fd < 0)
        return;
    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
    char ca[128];
    snprintf(ca, sizeof ca, "%s/ca.crt", H.dir);
    SSL_CTX_load_verify_locations(cctx, ca, NULL);
    SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, NULL);
    SSL *ssl = SSL_new(cctx);
    SSL_set_fd(ssl, fd);
    SSL_set1_host(ssl, "localhost");
    if (SSL_connect(ssl) != 1)
        goto out;
    v->step = 4;
    uint8_t creds[8 + 64];
    size_t ul = strlen(v->user), pl = strlen(v->pass);
    rfb_put_u32(creds, (uint32_t)ul);
    rfb_put_u32(creds + 4, (uint32_t)pl);
    memcpy(creds + 8, v->user, ul);
    memcpy(creds + 8 + ul, v->pass, pl);
    if (SSL_write(ssl, creds, (int)(8 + ul + pl)) <= 0)
        goto out;
    uint8_t h[8];
    if (SSL_read(ssl, h, 4) != 4)
        goto out;
    if (rfb_get_u32(h) != 0) {
        if (SSL_read(ssl, h + 4, 4) == 4) {
            uint32_t len = rfb_get_u32(h + 4);
            int n = SSL_read(ssl, v->reason, (int)(len < 255 ? len : 255));
            v->reason[n > 0 ? n : 0] = '\0';
        }
        v->step = 5;
        goto out;
    }
    v->step = 6;
    /* ClientInit (shared 0: vmgate forces 1), ServerInit */
    if (SSL_write(ssl, "\x00", 1) != 1)
        goto out;
    uint8_t si[28];
    size_t have = 0;
    while (have < sizeof si) {
        int n = SSL_read(ssl, si + have, (int)(sizeof si - have));
        if (n <= 0)
            goto out;
        have += (size_t)n;
    }
    if (memcmp(si + 24, "fake", 4) != 0)
        goto out;
    v->step = 7;
    /* A KeyEvent goes to the VM; the VM's Bell comes back. */
    static const uint8_t key[8] = { 4, 1, 0, 0, 0, 0, 0, 0x61 };
    if (SSL_write(ssl, key, 8) != 8)
        goto out;
    uint8_t bell;
    if (SSL_read(ssl, &bell, 1) == 1 && bell == 2)
        v->step = 8;
out:
    SSL_shutdown(ssl);
    SSL_free(ssl);
    SSL_CTX_free(cctx);
    close(fd);
}

/* A PROXY v2 header naming 192.0.2.9 (TCP4), then RFB. */
static const uint8_t PP2_HDR[] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49,
                                   0x54, 0x0a, 0x21, 0x11, 0x00, 0x0c, 192, 0, 2, 9,
                                   127, 0, 0, 1, 0x9c, 0x40, 0x17, 0x6f };

static int setup_vnc_pp2(void **s)
{
    (void)s;
    return setup(&vnc_proto, B_RFB, "proxy_protocol = 127.0.0.1\nmax_unauth_per_source = 1\n");
}

/* ----------------------------------------------------------- VNC tests */

static void test_vnc_login_and_relay(void **state)
{
    (void)state;
    struct vres v = { .user = "alice", .pass = "good" };
    char apath[200], err[200], line[4096];
    snprintf(apath, sizeof apath, "%s/audit.jsonl", H.dir);
    H.px.audit = atrail_open(apath, (uid_t)-1, (gid_t)-1, err, sizeof err);
    assert_non_null(H.px.audit);
    H.hmode = H_OK;
    run_viewer(script_vnc_login, &v, 0.3);
    atrail_close(H.px.audit);
    H.px.audit = NULL;
    assert_int_equal(v.step, 8);
    /* the metrics and the audit trail count what the relay carried: the
     * ClientInit still queued when it started (1) and the KeyEvent (8) to
     * the VM, the ServerInit (28) and the Bell (1) back */
    assert_int_equal(H.px.st.logins_ok, 1);
    assert_int_equal(H.px.st.logins_failed, 0);
    assert_int_equal(H.px.st.login_count, 1);
    assert_int_equal(H.px.st.vm_bytes[0], 9);
    assert_int_equal(H.px.st.vm_bytes[1], 29);
    FILE *af = fopen(apath, "r");
    assert_non_null(af);
    int seen = 0;
    while (fgets(line, sizeof line, af)) {
        if (strstr(line, "\"event\":\"login\"") && strstr(line, "\"result\":\"ok\""))
            seen |= 1;
        if (strstr(line, "\"event\":\"session-open\"") && strstr(line, "\"user\":\"alice\""))
            seen |= 2;
        if (strstr(line, "\"event\":\"session-close\"") &&
            strstr(line, "\"bytes_to_vm\":9,\"bytes_from_vm\":29,"))
            seen |= 4;
    }
    fclose(af);
    assert_int_equal(seen, 7);
    assert_int_equal(H.helper_requests, 1);
    assert_int_equal(H.forgets, 1);                      /* the session's end, told */
    assert_int_equal(H.b_conns, 1);
    assert_int_equal(H.b_got_len, 9);
    assert_int_equal(H.b_got[0], 1);                     /* shared forced to 1 */
    assert_int_equal(H.b_got[1], 4);                     /* the KeyEvent, whole */
    assert_int_equal(H.b_got[8], 0x61);
    assert_log("user \"alice\" authenticated");
    assert_log("session started (backend unix:");
    assert_log("session ended");
    assert_int_equal(H.px.n_conns, 0);
    assert_int_equal(H.px.n_unauth, 0);
}

static void test_vnc_wrong_password(void **state)
{
    (void)state;
    struct vres v = { .user = "alice", .pass = "bad" };
    H.hmode = H_BAD_PASSWORD;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    run_viewer(script_vnc_login, &v, 0.2);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_int_equal(v.step, 5);
    assert_string_equal(v.reason, "Authentication failed");
    assert_log("login failed for user \"alice\": bad password");
    assert_int_equal(H.px.st.logins_failed, 1);
    assert_int_equal(H.px.st.logins_ok, 0);
    /* fail_delay = 300ms held the answer back */
    double el = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    assert_true(el >= 0.29);
    assert_int_equal(H.b_conns, 0);
    assert_int_equal(H.px.n_conns, 0);
}

static void test_vnc_backend_gone(void **state)
{
    (void)state;
    struct vres v = { .user = "alice", .pass = "good" };
    H.hmode = H_OK;
    run_viewer(script_vnc_login, &v, 0.2);
    assert_int_equal(v.step, 5);
    assert_string_equal(v.reason, "VM dev0 is not running");
    assert_log("vm dev0 is not running (connect unix:");
    assert_int_equal(H.px.n_conns, 0);
}

static void test_vnc_backend_closes_in_handshake(void **state)
{
    (void)state;
    struct vres v = { .user = "alice", .pass = "good" };
    H.hmode = H_OK;
    run_viewer(script_vnc_login, &v, 0.2);
    assert_int_equal(v.step, 5);
    assert_string_equal(v.reason, "VM dev0 is not running");
    assert_log("VM closed the console during handshake");
    assert_int_equal(H.b_conns, 1);
}

static void script_bad_version(void *ctx)
{
    struct vres *v = ctx;
    int fd = viewer_connect();
    uint8_t b[12];
    if (fd < 0 || xread(fd, b, 12))
        return;
    xwrite(fd, "HTTP/1.1 200", 12);
    char c;
    v->eof_clean = recv(fd, &c, 1, 0) == 0;
    close(fd);
}

static void test_vnc_bad_version(void **state)
{
    (void)state;
    struct vres v = { 0 };
    run_viewer(script_bad_version, &v, 0.1);
    assert_true(v.eof_clean);
    assert_log("bad handshake:");
    assert_int_equal(H.px.n_conns, 0);
}

static void script_short_close(void *ctx)
{
    (void)ctx;
    int fd = viewer_connect();
    uint8_t b[12];
    if (fd < 0 || xread(fd, b, 12))
        return;
    xwrite(fd, "RFB 003", 7);
    close(fd);
}

static void test_vnc_short_read_then_close(void **state)
{
    (void)state;
    run_viewer(script_short_close, NULL, 0.2);
    assert_log("viewer closed the connection in state version");
    assert_int_equal(H.px.n_conns, 0);
    assert_int_equal(H.px.n_unauth, 0);
}

/* Choose security type 2, then keep writing junk: the refusal must still
 * arrive whole and the connection end with EOF (a close with unread input
 * would send a RST and could destroy the refusal). */
static void script_wrong_sectype(void *ctx)
{
    struct vres *v = ctx;
    int fd = viewer_connect();
    uint8_t b[12];
    if (fd < 0 || xread(fd, b, 12) || xwrite(fd, "RFB 003.008\n", 12) || xread(fd, b, 2))
        return;
    v->step = 1;
    if (xwrite(fd, "\x02", 1))
        return;
    static uint8_t junk[4096];
    memset(junk, 'j', sizeof junk);
    for (size_t sent = 0; sent < v->junk; sent += sizeof junk)
        if (xwrite(fd, junk, sizeof junk))
            break;
    usleep(200 * 1000);                 /* let vmgate answer and close first */
    if (read_sec_failure(fd, v->reason, sizeof v->reason) == 0)
        v->step = 2;
    char c;
    ssize_t r;
    do
        r = recv(fd, &c, 1, 0);
    while (r > 0);
    v->eof_clean = r == 0;
    close(fd);
}

static void test_vnc_wrong_sectype(void **state)
{
    (void)state;
    struct vres v = { .junk = 0 };
    run_viewer(script_wrong_sectype, &v, 0.1);
    assert_int_equal(v.step, 2);
    assert_string_equal(v.reason, "Only VeNCrypt X509Plain is supported");
    assert_true(v.eof_clean);
    assert_log("viewer chose security type 2");
}

static void test_vnc_lingering_close(void **state)
{
    (void)state;
    struct vres v = { .junk = 64 * 1024 };
    run_viewer(script_wrong_sectype, &v, 0.1);
    assert_int_equal(v.step, 2);
    assert_string_equal(v.reason, "Only VeNCrypt X509Plain is supported");
    assert_true(v.eof_clean);
    assert_int_equal(H.px.n_conns, 0);
}

static void script_silent(void *ctx)
{
    struct vres *v = ctx;
    int fd = viewer_connect();
    char c;
    ssize_t r;
    do
        r = recv(fd, &c, 1, 0);
    while (r > 0);
    v->eof_clean = r == 0;
    close(fd);
}

static void test_login_timeout(void **state)
{
    (void)state;
    struct vres v = { 0 };
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    run_viewer(script_silent, &v, 0.1);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double el = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    assert_true(el >= 1.9 && el < 6.0);
    assert_true(v.eof_clean);
    assert_log("login timeout (2s) in state");
    assert_int_equal(H.px.n_conns, 0);
    assert_int_equal(H.px.n_unauth, 0);
}

static void test_helper_never_answers(void **state)
{
    (void)state;
    struct vres v = { .user = "alice", .pass = "good" };
    H.hmode = H_NEVER;
    run_viewer(script_vnc_login, &v, 0.1);
    assert_int_equal(v.step, 4);              /* no SecurityResult: the timeout closed it */
    assert_log("login timeout (2s) in state auth-wait");
    assert_int_equal(H.px.n_conns, 0);
}

/* ---------------------------------------------------------- SPICE tests */

struct sres {
    int step;
    uint32_t link_error;
    bool eof_clean;
    const uint8_t *send;
    size_t send_len;
};

static void script_spice_link(void *ctx)
{
    struct sres *s = ctx;
    int fd = viewer_connect();
    if (fd < 0)
        return;
    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
    SSL *ssl = SSL_new(cctx);
    SSL_set_fd(ssl, fd);
    if (SSL_connect(ssl) != 1)
        goto out;
    s->step = 1;
    if (s->send && SSL_write(ssl, s->send, (int)s->send_len) <= 0)
        goto out;
    uint8_t rep[SPICE_LINK_HDR_LEN + 4];
    size_t have = 0;
    while (have < sizeof rep) {
        int n = SSL_read(ssl, rep + have, (int)(sizeof rep - have));
        if (n <= 0)
            break;
        have += (size_t)n;
    }
    if (have == sizeof rep && memcmp(rep, "REDQ", 4) == 0) {
        s->step = 2;
        s->link_error = spice_get_u32(rep + SPICE_LINK_HDR_LEN);
    }
    uint8_t junk[256];
    int n;
    while ((n = SSL_read(ssl, junk, sizeof junk)) > 0)
        ;
    s->eof_clean = SSL_get_error(ssl, n) == SSL_ERROR_ZERO_RETURN;
out:
    SSL_free(ssl);
    SSL_CTX_free(cctx);
    close(fd);
}

static void test_spice_bad_link(void **state)
{
    (void)state;
    static const uint8_t bad[16] = "REDQ\x01\x00\x00\x00\x02\x00\x00\x00\x10\x00\x00\x00";
    struct sres s = { .send = bad, .send_len = sizeof bad };
    run_viewer(script_spice_link, &s, 0.1);
    assert_int_equal(s.step, 2);
    assert_int_equal(s.link_error, SPICE_LINK_ERR_VERSION_MISMATCH);
    assert_true(s.eof_clean);                  /* close_notify, not a cut */
    assert_log("bad SPICE link:");
    assert_int_equal(H.px.n_conns, 0);
}

static void test_spice_login_timeout(void **state)
{
    (void)state;
    struct sres s = { 0 };
    run_viewer(script_spice_link, &s, 0.1);
    assert_int_equal(s.step, 1);
    assert_log("login timeout (2s) in state link");
    assert_int_equal(H.px.n_conns, 0);
    assert_int_equal(H.px.n_unauth, 0);
}

/* From a listed balancer: the header (in two pieces) names the viewer,
 * whose address the log, the helper's request and the audit get; the
 * balancer is not capped as one source (per-source cap 1, two at once). */
static void script_two_via_balancer(void *ctx)
{
    struct vres *v = ctx;
    int held = viewer_connect();                /* a second one from "192.0.2.9"... */
    script_vnc_login(v);
    if (held >= 0)
        close(held);
}

static void test_pp2_viewer_address(void **state)
{
    (void)state;
    struct vres v = { .user = "alice", .pass = "good" };
    H.pre = PP2_HDR;
    H.pre_len = sizeof PP2_HDR;
    H.hmode = H_OK;
    run_viewer(script_vnc_login, &v, 0.3);
    assert_int_equal(v.step, 8);
    assert_log("from=127.0.0.1: viewer 192.0.2.9 through balancer 127.0.0.1 (PROXY v2)");
    assert_log("from=192.0.2.9: user \"alice\" authenticated");
    assert_string_equal(H.helper_rhost, "192.0.2.9");
    assert_int_equal(H.px.n_conns, 0);
    assert_int_equal(H.px.n_unauth, 0);
}

static void test_pp2_cap_by_viewer(void **state)
{
    (void)state;
    struct vres v = { .user = "alice", .pass = "good" };
    H.pre = PP2_HDR;
    H.pre_len = sizeof PP2_HDR;
    H.hmode = H_OK;
    run_viewer(script_two_via_balancer, &v, 0.3);
    /* the first holds 192.0.2.9's one slot: the second is refused after its
     * header, as that viewer, not at accept as the balancer */
    assert_log("refused viewer 192.0.2.9 (through balancer 127.0.0.1): too many "
               "unauthenticated connections (per-source limit 1)");
    assert_int_equal(v.step, 0);
}

static void test_pp2_banned_viewer(void **state)
{
    (void)state;
    struct vres v = { .user = "alice", .pass = "good" };
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct authp_ban_evt e = { .banned = true, .key = "192.0.2.9",
                               .until_ms = (uint64_t)now.tv_sec * 1000u + 60000u };
    proxy_ban_event(&H.px, &e);
    H.pre = PP2_HDR;
    H.pre_len = sizeof PP2_HDR;
    H.hmode = H_OK;
    run_viewer(script_vnc_login, &v, 0.2);
    assert_int_equal(v.step, 0);                /* no greeting: closed after the header */
    assert_log("refused viewer 192.0.2.9 (through balancer 127.0.0.1): banned until 20");
    assert_int_equal(H.helper_requests, 0);
    /* the ban ends: the viewer is back */
    e.banned = false;
    proxy_ban_event(&H.px, &e);
    run_viewer(script_vnc_login, &v, 0.3);
    assert_int_equal(v.step, 8);
    assert_int_equal(H.helper_requests, 1);
}

static void test_pp2_missing_and_stray(void **state)
{
    (void)state;
    struct vres v = { 0 };
    /* listed source, an RFB version instead of a header: refused at once */
    H.pre = (const uint8_t *)"RFB 003.008\n";
    H.pre_len = 12;
    run_viewer(script_silent, &v, 0.1);
    assert_true(v.eof_clean);
    assert_log("refused: bad PROXY header from balancer 127.0.0.1: no PROXY v2 signature");
    assert_int_equal(H.px.n_conns, 0);
}

static void test_pp2_unlisted(void **state)
{
    (void)state;
    struct vres v = { 0 };
    /* no proxy_protocol: the header reaches the version state, named */
    H.pre = PP2_HDR;
    H.pre_len = sizeof PP2_HDR;
    run_viewer(script_silent, &v, 0.1);
    assert_true(v.eof_clean);
    assert_log("refused: a PROXY header from 127.0.0.1, which is not in proxy_protocol");
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    log_set_level(LOG_LVL_DEBUG);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_vnc_login_and_relay, setup_vnc, teardown),
        cmocka_unit_test_setup_teardown(test_vnc_wrong_password, setup_vnc, teardown),
        cmocka_unit_test_setup_teardown(test_vnc_backend_gone, setup_vnc_nobackend, teardown),
        cmocka_unit_test_setup_teardown(test_vnc_backend_closes_in_handshake, setup_vnc_closing,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_vnc_bad_version, setup_vnc, teardown),
        cmocka_unit_test_setup_teardown(test_vnc_short_read_then_close, setup_vnc, teardown),
        cmocka_unit_test_setup_teardown(test_vnc_wrong_sectype, setup_vnc, teardown),
        cmocka_unit_test_setup_teardown(test_vnc_lingering_close, setup_vnc, teardown),
        cmocka_unit_test_setup_teardown(test_login_timeout, setup_vnc, teardown),
        cmocka_unit_test_setup_teardown(test_helper_never_answers, setup_vnc, teardown),
        cmocka_unit_test_setup_teardown(test_spice_bad_link, setup_spice, teardown),
        cmocka_unit_test_setup_teardown(test_spice_login_timeout, setup_spice, teardown),
        cmocka_unit_test_setup_teardown(test_pp2_viewer_address, setup_vnc_pp2, teardown),
        cmocka_unit_test_setup_teardown(test_pp2_cap_by_viewer, setup_vnc_pp2, teardown),
        cmocka_unit_test_setup_teardown(test_pp2_banned_viewer, setup_vnc_pp2, teardown),
        cmocka_unit_test_setup_teardown(test_pp2_missing_and_stray, setup_vnc_pp2, teardown),
        cmocka_unit_test_setup_teardown(test_pp2_unlisted, setup_vnc, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
