/* tests/unit/test_reload.c — what a reload changes (common/cfgdiff.c): VMs
 * added, removed, changed or the same; keys a reload cannot change; the
 * line of a key (for FILE:LINE errors); the listener list; and the
 * AUTHP_REQ_RELOAD / AUTHP_RESP_RELOAD encoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <ev.h>

#include "auth/auth.h"

#include "auth/proto.h"
#include "common/cfgdiff.h"
#include "common/config.h"
#include "proxy/spice_reg.h"

#define GW "[gateway]\ncert = /c\nkey = /k\n"

static void parse(const char *text, struct cfg *c)
{
    char err[256];
    int r = cfg_parse("/etc/t.conf", text, strlen(text), c, err, sizeof err);
    if (r != 0)
        fail_msg("%s", err);
}

static void test_diff(void **st)
{
    (void)st;
    struct cfg a, b;
    parse(GW "[vm a]\nvnc = 127.0.0.1:1\nvnc_port = 7001\nusers = alice\n"
             "[vm b]\nvnc = 127.0.0.1:2\nvnc_port = 7002\nusers = bob\n"
             "[vm c]\nvnc = 127.0.0.1:3\nvnc_port = 7003\n", &a);
    /* a same (only comments and order differ), b changed (users), c gone, d new */
    parse(GW "[vm d]\nvnc = 127.0.0.1:4\nvnc_port = 7004\n"
             "[vm b]\nvnc = 127.0.0.1:2\nvnc_port = 7002\nusers = bob carol\n"
             "[vm a]\n; comment\nusers = alice\nvnc_port = 7001\nvnc = 127.0.0.1:1\n", &b);
    enum cfg_change os[3], ns[3];
    assert_int_equal(cfg_diff(&a, &b, os, ns), 3);
    assert_int_equal(os[0], CFG_SAME);
    assert_int_equal(os[1], CFG_CHANGED);
    assert_int_equal(os[2], CFG_REMOVED);
    assert_int_equal(ns[0], CFG_ADDED);
    assert_int_equal(ns[1], CFG_CHANGED);
    assert_int_equal(ns[2], CFG_SAME);
    assert_int_equal(cfg_diff(&a, &a, NULL, NULL), 0);
    assert_null(cfg_fixed_changed(&a, &b));
    cfg_free(&a);
    cfg_free(&b);
}

/* A [gateway] default that a VM inherits is part of the VM's effective
 * settings: changing it changes the VM. */
static void test_inherited(void **st)
{
    (void)st;
    struct cfg a, b;
    parse(GW "clipboard = both\n[vm a]\nvnc = 127.0.0.1:1\nvnc_port = 7001\n", &a);
    parse(GW "clipboard = none\n[vm a]\nvnc = 127.0.0.1:1\nvnc_port = 7001\n", &b);
    enum cfg_change os[1], ns[1];
    assert_int_equal(cfg_diff(&a, &b, os, ns), 1);
    assert_int_equal(os[0], CFG_CHANGED);
    cfg_free(&a);
    cfg_free(&b);
}

static void test_fixed(void **st)
{
    (void)st;
    struct cfg a, b;
    static const char t2[] = GW "user = nobody\naddress = 127.0.0.2\n";
    parse(GW "address = 127.0.0.1\n", &a);
    parse(t2, &b);
    assert_string_equal(cfg_fixed_changed(&a, &b), "address");
    assert_int_equal(cfg_key_line(t2, strlen(t2), "gateway", "address"), 5);
    assert_int_equal(cfg_key_line(t2, strlen(t2), "gateway", "user"), 4);
    assert_int_equal(cfg_key_line(t2, strlen(t2), "gateway", "metrics"), 0);
    cfg_free(&b);
    parse(GW "address = 127.0.0.1\n[firewall]\nprotect = 5900-6100\n", &b);
    assert_string_equal(cfg_fixed_changed(&a, &b), "firewall");
    cfg_free(&a);
    cfg_free(&b);
    static const char t3[] = "[gateway]\nx = 1\n[vm  dev0] ; c\nvnc_port=5\n[vm dev1]\nvnc_port = 6\n";
    assert_int_equal(cfg_key_line(t3, strlen(t3), "vm dev0", "vnc_port"), 4);
    assert_int_equal(cfg_key_line(t3, strlen(t3), "vm dev1", "vnc_port"), 6);
    assert_int_equal(cfg_key_line(t3, strlen(t3), "vm dev1", NULL), 5);
    assert_int_equal(cfg_key_line(t3, strlen(t3), "vm dev2", NULL), 0);
}

static void test_listeners(void **st)
{
    (void)st;
    struct cfg a;
    parse(GW "socket_dir = /run/t\nweb_port = 7443\n"
             "[vm a]\nvnc = 127.0.0.1:1\nvnc_port = 7001\nspice = 127.0.0.1:9\nspice_port = 7101\n"
             "[vm b]\nspice = 127.0.0.1:8\nspice_port = 7102\n", &a);
    struct cfg_listen l[8];
    assert_int_equal(cfg_listeners(&a, l, 8), 7);   /* + a.spice, b.spice (socket_dir) */
    assert_int_equal(l[0].kind, CFG_L_VNC);
    assert_int_equal(l[0].port, 7001);
    assert_int_equal(l[1].kind, CFG_L_SPICE);
    assert_int_equal(l[2].port, 7102);
    assert_int_equal(l[3].kind, CFG_L_WEB);
    assert_int_equal(l[4].kind, CFG_L_LOCAL);
    assert_string_equal(l[4].vm->name, "a");
    assert_int_equal(l[5].kind, CFG_L_LOCAL_SPICE);
    assert_string_equal(l[5].vm->name, "a");
    assert_int_equal(l[6].kind, CFG_L_LOCAL_SPICE);
    assert_string_equal(l[6].vm->name, "b");
    assert_int_equal(cfg_listeners(&a, l, 2), 7);   /* counts past max */
    struct cfg_listen x = { .kind = CFG_L_SPICE, .port = 7001 };
    assert_true(cfg_listen_same(&l[0], &x));      /* a port is a port */
    assert_false(cfg_listen_same(&l[0], &l[1]));
    cfg_free(&a);
}

/* Every socket_dir socket of a VM is a listener of its own kind: NAME.vnc,
 * NAME.serial, NAME.spice in that order (as gateway_run binds them), each
 * the same as its counterpart in another config only for the same VM and
 * kind.  (Before, only NAME.vnc was listed, so a reload matched a
 * NAME.serial or NAME.spice listener to the VM's NAME.vnc key.) */
static void test_listeners_local(void **st)
{
    (void)st;
    struct cfg a, b, c;
    parse(GW "socket_dir = /run/t\n"
             "[vm a]\nvnc = unix:/q/a.vnc\nserial = unix:/q/a.serial\n"
             "spice = unix:/q/a.spice\nspice_port = 7101\n"
             "[vm b]\nserial = unix:/q/b.serial\n", &a);
    parse(GW "socket_dir = /run/t\n"
             "[vm b]\nserial = unix:/q/b.serial\n"
             "[vm a]\nvnc = unix:/q/a.vnc\nserial = unix:/q/a.serial\n", &b);
    parse(GW "socket_dir =\n[vm a]\nvnc = unix:/q/a.vnc\nvnc_port = 7001\nserial = unix:/q/a.serial\n", &c);
    struct cfg_listen l[8], m[8];
    assert_int_equal(cfg_listeners(&a, l, 8), 5);
    assert_int_equal(l[0].kind, CFG_L_SPICE);
    assert_int_equal(l[1].kind, CFG_L_LOCAL);
    assert_string_equal(l[1].vm->name, "a");
    assert_int_equal(l[2].kind, CFG_L_SERIAL);
    assert_string_equal(l[2].vm->name, "a");
    assert_int_equal(l[3].kind, CFG_L_SERIAL);
    assert_string_equal(l[3].vm->name, "b");
    assert_int_equal(l[4].kind, CFG_L_LOCAL_SPICE);
    assert_string_equal(l[4].vm->name, "a");
    for (int i = 1; i < 5; i++) {
        assert_true(cfg_lkind_local(l[i].kind));
        assert_int_equal(l[i].port, 0);
        for (int j = 1; j < 5; j++)     /* no two socket_dir sockets are the same */
            assert_true(cfg_listen_same(&l[i], &l[j]) == (i == j));
    }
    assert_false(cfg_lkind_local(l[0].kind));
    assert_string_equal(cfg_lkind_ext(CFG_L_LOCAL), "vnc");
    assert_string_equal(cfg_lkind_ext(CFG_L_SERIAL), "serial");
    assert_string_equal(cfg_lkind_ext(CFG_L_LOCAL_SPICE), "spice");
    assert_null(cfg_lkind_ext(CFG_L_WEB));
    /* across configs: by VM name and kind, whatever the order */
    assert_int_equal(cfg_listeners(&b, m, 8), 3);
    assert_int_equal(m[0].kind, CFG_L_LOCAL);      /* a.vnc */
    assert_int_equal(m[1].kind, CFG_L_SERIAL);     /* b.serial */
    assert_int_equal(m[2].kind, CFG_L_SERIAL);     /* a.serial */
    assert_true(cfg_listen_same(&l[1], &m[0]));
    assert_true(cfg_listen_same(&l[2], &m[2]));
    assert_true(cfg_listen_same(&l[3], &m[1]));
    assert_false(cfg_listen_same(&l[2], &m[1]));
    assert_false(cfg_listen_same(&l[1], &m[2]));   /* a.vnc is not a.serial */
    assert_false(cfg_listen_same(&l[4], &m[0]));   /* a.spice is not a.vnc */
    /* no socket_dir: no socket_dir listeners */
    assert_int_equal(cfg_listeners(&c, l, 8), 1);
    assert_int_equal(l[0].kind, CFG_L_VNC);
    cfg_free(&a);
    cfg_free(&b);
    cfg_free(&c);
}

/* A SPICE channel that connects after a reload carries the new config's
 * cfg_vm; its session (made by the main channel before) the old one's: it
 * is found by the VM's name.  (It was compared by pointer: the channel was
 * refused as of an unknown session.) */
static void test_spice_session_by_name(void **st)
{
    (void)st;
    static struct cfg_vm old_a, new_a, b;
    snprintf(old_a.name, sizeof old_a.name, "a");
    snprintf(new_a.name, sizeof new_a.name, "a");
    snprintf(b.name, sizeof b.name, "b");
    uint8_t secret[32] = { 1 };
    struct conn *main = (struct conn *)&old_a;   /* only compared */
    assert_non_null(spice_session_put(&old_a, 77, "alice", secret, 1.0, main));
    assert_non_null(spice_session_find(&new_a, 77));
    assert_ptr_equal(spice_session_find(&new_a, 77), spice_session_find(&old_a, 77));
    assert_null(spice_session_find(&b, 77));
    assert_null(spice_session_find(&new_a, 78));
    spice_session_drop_main(main);
    assert_null(spice_session_find(&new_a, 77));
}

static void test_proto(void **st)
{
    (void)st;
    uint8_t buf[64];
    uint32_t id;
    int rr;
    int n = authp_encode_reload_req(7, 1, buf, sizeof buf);
    assert_true(n > 0);
    assert_int_equal(authp_decode_reload_req(buf, (size_t)n, &id, &rr), 0);
    assert_int_equal(id, 7);
    assert_int_equal(rr, 1);
    buf[n - 1] = 2;
    assert_int_equal(authp_decode_reload_req(buf, (size_t)n, &id, &rr), -1);

    static struct authp_reload_resp r, d;
    static uint8_t big[AUTHP_RELOAD_RESP_MAX];
    r.id = 9;
    r.result = AUTHP_OK;
    r.gen = 3;
    r.text = (const uint8_t *)"[gateway]\n";
    r.text_len = 10;
    r.n_ls = 2;
    r.ls[0] = (struct authp_lsn){ .kind = CFG_L_VNC, .port = 7001, .vm = "a" };
    r.ls[1] = (struct authp_lsn){ .kind = CFG_L_LOCAL, .port = 0, .vm = "a" };
    n = authp_encode_reload_resp(&r, big, sizeof big);
    assert_true(n > 0);
    assert_int_equal(authp_decode_reload_resp(big, (size_t)n, &d), 0);
    assert_int_equal(d.gen, 3);
    assert_int_equal(d.n_ls, 2);
    assert_int_equal(d.ls[0].port, 7001);
    assert_string_equal(d.ls[1].vm, "a");
    assert_memory_equal(d.text, "[gateway]\n", 10);
    for (int cut = 0; cut < n; cut++)
        assert_int_equal(authp_decode_reload_resp(big, (size_t)cut, &d), -1);
    /* a socket_dir entry must not carry a port, a TCP one must */
    r.ls[1].port = 5;
    n = authp_encode_reload_resp(&r, big, sizeof big);
    assert_int_equal(authp_decode_reload_resp(big, (size_t)n, &d), -1);
    /* NAME.serial and NAME.spice travel as kinds of their own */
    r.ls[1] = (struct authp_lsn){ .kind = CFG_L_SERIAL, .port = 0, .vm = "a" };
    r.ls[0] = (struct authp_lsn){ .kind = CFG_L_LOCAL_SPICE, .port = 0, .vm = "a" };
    n = authp_encode_reload_resp(&r, big, sizeof big);
    assert_int_equal(authp_decode_reload_resp(big, (size_t)n, &d), 0);
    assert_int_equal(d.ls[0].kind, CFG_L_LOCAL_SPICE);
    assert_int_equal(d.ls[1].kind, CFG_L_SERIAL);
    r.ls[1].port = 5;                       /* ... without a port */
    n = authp_encode_reload_resp(&r, big, sizeof big);
    assert_int_equal(authp_decode_reload_resp(big, (size_t)n, &d), -1);
    r.ls[1] = (struct authp_lsn){ .kind = CFG_L_KINDS, .port = 0, .vm = "a" };  /* unknown */
    n = authp_encode_reload_resp(&r, big, sizeof big);
    assert_int_equal(authp_decode_reload_resp(big, (size_t)n, &d), -1);
}

/* ---- auth_client_reload: the answer's listeners arrive as descriptors ---- */

struct got {
    int calls;
    uint8_t result;
    unsigned n_ls;
    int fd;
    char err[AUTHP_RELOAD_ERR_MAX + 1];
};

static void reload_cb(void *ctx, const struct authp_reload_resp *r, int *fds)
{
    struct got *g = ctx;
    g->calls++;
    g->result = r->result;
    g->n_ls = r->n_ls;
    snprintf(g->err, sizeof g->err, "%s", r->err);
    g->fd = r->n_ls ? fds[0] : -1;
    for (unsigned i = 1; i < r->n_ls; i++)
        close(fds[i]);
}

/* Send an AUTHP_RESP_RELOAD for request id with n_ls entries and nfd
 * descriptors (a pipe's read end each) attached. */
static void send_resp(int sock, uint32_t id, unsigned n_ls, unsigned nfd)
{
    static struct authp_reload_resp r;
    static uint8_t msg[AUTHP_RELOAD_RESP_MAX];
    memset(&r, 0, sizeof r);
    r.id = id;
    r.result = AUTHP_OK;
    r.gen = 2;
    r.text = (const uint8_t *)"[gateway]\n";
    r.text_len = 10;
    r.n_ls = n_ls;
    for (unsigned i = 0; i < n_ls; i++)
        r.ls[i] = (struct authp_lsn){ .kind = CFG_L_VNC, .port = (uint16_t)(7000 + i) };
    int n = authp_encode_reload_resp(&r, msg, sizeof msg);
    assert_true(n > 0);
    int fds[4], p[2];
    for (unsigned i = 0; i < nfd; i++) {
        assert_int_equal(pipe(p), 0);
        close(p[1]);
        fds[i] = p[0];
    }
    struct iovec iov = { .iov_base = msg, .iov_len = (size_t)n };
    union {
        struct cmsghdr a;
        char b[CMSG_SPACE(sizeof(int) * 4)];
    } ctl;
    memset(&ctl, 0, sizeof ctl);
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
    if (nfd) {
        mh.msg_control = ctl.b;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfd);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * nfd);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * nfd);
    }
    assert_int_equal(sendmsg(sock, &mh, 0), n);
    for (unsigned i = 0; i < nfd; i++)
        close(fds[i]);
}

static uint32_t read_req(int sock, int *reread)
{
    uint8_t buf[64];
    ssize_t n = recv(sock, buf, sizeof buf, 0);
    assert_true(n > 0);
    uint32_t id;
    assert_int_equal(authp_decode_reload_req(buf, (size_t)n, &id, reread), 0);
    return id;
}

static void spin(struct ev_loop *loop)
{
    for (int i = 0; i < 20; i++) {
        ev_run(loop, EVRUN_NOWAIT);
        usleep(1000);
    }
}

static void test_client(void **st)
{
    (void)st;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct auth_client *ac = auth_client_new(loop, sv[0]);
    assert_non_null(ac);
    struct got g = { .fd = -1 };
    int reread;

    assert_int_equal(auth_client_reload(ac, 1, reload_cb, &g), 0);
    assert_int_equal(auth_client_reload(ac, 0, reload_cb, &g), -1);   /* one at a time */
    uint32_t id = read_req(sv[1], &reread);
    assert_int_equal(reread, 1);
    /* a listener without its socket: malformed, dropped, still waiting */
    send_resp(sv[1], id, 1, 0);
    spin(loop);
    assert_int_equal(g.calls, 0);
    /* the real answer: one listener, one descriptor */
    send_resp(sv[1], id, 1, 1);
    spin(loop);
    assert_int_equal(g.calls, 1);
    assert_int_equal(g.result, AUTHP_OK);
    assert_int_equal(g.n_ls, 1);
    struct stat sb;
    assert_int_equal(fstat(g.fd, &sb), 0);
    assert_true(S_ISFIFO(sb.st_mode));
    close(g.fd);

    /* an answer nobody waits for: its descriptors are closed, not leaked */
    int probe = dup(0);
    close(probe);
    send_resp(sv[1], 999, 2, 2);
    spin(loop);
    assert_int_equal(g.calls, 1);
    int probe2 = dup(0);
    assert_int_equal(probe2, probe);     /* the lowest free fd is where it was */
    close(probe2);

    /* the helper goes away: the pending reload fails with a reason */
    assert_int_equal(auth_client_reload(ac, 0, reload_cb, &g), 0);
    close(sv[1]);
    spin(loop);
    assert_int_equal(g.calls, 2);
    assert_int_equal(g.result, AUTHP_ERROR);
    assert_string_equal(g.err, "auth helper gone");
    auth_client_free(ac);
    ev_loop_destroy(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_diff),     cmocka_unit_test(test_inherited),
        cmocka_unit_test(test_fixed),    cmocka_unit_test(test_listeners),
        cmocka_unit_test(test_listeners_local), cmocka_unit_test(test_spice_session_by_name),
        cmocka_unit_test(test_proto),    cmocka_unit_test(test_client),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
