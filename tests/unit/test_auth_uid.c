/* tests/unit/test_auth_uid.c — logins by the connecting uid on socket_dir
 * (auth/check.c auth_check_uid, auth/acl.c auth_acl_allows_uid, the
 * socket's own path from auth/peer.c): real unix sockets, this process's
 * own uid and primary group. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "auth/auth.h"
#include "auth/peer.h"

static char g_dir[64];
static char g_self[64], g_group[64];

/* A listener at path, a client connected to it, and the accepted end's
 * peer (what the helper reads off the passed socket). */
static void peer_at(const char *path, struct auth_peer *p)
{
    int l = socket(AF_UNIX, SOCK_STREAM, 0), c = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(l >= 0 && c >= 0);
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path);
    unlink(path);
    assert_int_equal(bind(l, (struct sockaddr *)&sun, sizeof sun), 0);
    assert_int_equal(listen(l, 1), 0);
    assert_int_equal(connect(c, (struct sockaddr *)&sun, sizeof sun), 0);
    int a = accept(l, NULL, NULL);
    assert_true(a >= 0);
    char err[128];
    assert_int_equal(auth_peer_from_fd(a, p, err, sizeof err), 0);
    assert_int_equal(p->kind, AUTH_PEER_UNIX);
    assert_int_equal(p->uid, getuid());
    close(a);
    close(c);
    close(l);
    unlink(path);
}

static void load(struct cfg *c, const char *vmkeys)
{
    char text[1024], err[256];
    snprintf(text, sizeof text, "[gateway]\nsocket_dir = %s\n[vm dev0]\nvnc = unix:/q/d.vnc\n%s\n"
             "[vm dev1]\nvnc = unix:/q/e.vnc\nusers = %s\n", g_dir, vmkeys, g_self);
    if (cfg_parse("t.conf", text, strlen(text), c, err, sizeof err) != 0)
        fail_msg("%s", err);
}

static enum authp_result check(const struct cfg *c, const char *vm, const char *user,
                               const struct auth_peer *p, char *d, size_t dl)
{
    struct authp_login_req q;
    memset(&q, 0, sizeof q);
    snprintf(q.vm, sizeof q.vm, "%s", vm);
    snprintf(q.user, sizeof q.user, "%s", user);
    return auth_check_peer(c, &q, p, d, dl);
}

static void test_allowed_and_refused(void **state)
{
    (void)state;
    struct cfg c;
    struct auth_peer p;
    char path[128], d[AUTHP_DETAIL_MAX + 1];
    snprintf(path, sizeof path, "%s/dev0.vnc", g_dir);
    peer_at(path, &p);
    assert_string_equal(p.local, path);

    char keys[128];
    snprintf(keys, sizeof keys, "users = %s", g_self);
    load(&c, keys);
    assert_int_equal(check(&c, "dev0", "", &p, d, sizeof d), AUTHP_OK);
    assert_string_equal(d, g_self);
    cfg_free(&c);

    load(&c, "users = nobody-at-all");
    assert_int_equal(check(&c, "dev0", "", &p, d, sizeof d), AUTHP_NOT_ALLOWED);
    assert_string_equal(d, g_self);
    cfg_free(&c);

    /* the primary group (getgrouplist) */
    snprintf(keys, sizeof keys, "groups = %s", g_group);
    load(&c, keys);
    assert_int_equal(check(&c, "dev0", "", &p, d, sizeof d), AUTHP_OK);
    cfg_free(&c);

    load(&c, "users =");
    assert_int_equal(check(&c, "dev0", "", &p, d, sizeof d), AUTHP_NOT_ALLOWED);
    /* with a user name it is a password login (auth = pam, no password) */
    assert_int_not_equal(check(&c, "dev0", g_self, &p, d, sizeof d), AUTHP_OK);
    cfg_free(&c);
}

/* The socket must be socket_dir/VM.vnc of the VM asked for: a socket of
 * another VM (whose ACL would allow) or elsewhere is refused. */
static void test_socket_path_checked(void **state)
{
    (void)state;
    struct cfg c;
    struct auth_peer p;
    char path[128], d[AUTHP_DETAIL_MAX + 1];
    load(&c, "users = nobody-at-all");
    snprintf(path, sizeof path, "%s/dev0.vnc", g_dir);
    peer_at(path, &p);
    /* dev1 allows us, but this is dev0's socket */
    assert_int_equal(check(&c, "dev1", "", &p, d, sizeof d), AUTHP_ERROR);
    assert_non_null(strstr(d, "is not"));
    snprintf(path, sizeof path, "%s/dev1.vnc", g_dir);
    peer_at(path, &p);
    assert_int_equal(check(&c, "dev1", "", &p, d, sizeof d), AUTHP_OK);
    snprintf(path, sizeof path, "%s/other.sock", g_dir);
    peer_at(path, &p);
    assert_int_equal(check(&c, "dev1", "", &p, d, sizeof d), AUTHP_ERROR);
    /* an unnamed socket (socketpair) */
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(auth_peer_from_fd(sv[0], &p, d, sizeof d), 0);
    assert_string_equal(p.local, "");
    assert_int_equal(check(&c, "dev1", "", &p, d, sizeof d), AUTHP_ERROR);
    close(sv[0]);
    close(sv[1]);
    assert_int_equal(check(&c, "nope", "", &p, d, sizeof d), AUTHP_ERROR);
    cfg_free(&c);
    /* socket_dir/VM.serial: only for a VM with serial, same ACL */
    char keys[160];
    snprintf(keys, sizeof keys, "users = %s", g_self);
    load(&c, keys);
    snprintf(path, sizeof path, "%s/dev0.serial", g_dir);
    peer_at(path, &p);
    assert_int_equal(check(&c, "dev0", "", &p, d, sizeof d), AUTHP_ERROR);   /* no serial */
    cfg_free(&c);
    snprintf(keys, sizeof keys, "serial = unix:/q/d.serial\nusers = %s", g_self);
    load(&c, keys);
    assert_int_equal(check(&c, "dev0", "", &p, d, sizeof d), AUTHP_OK);
    assert_int_equal(check(&c, "dev1", "", &p, d, sizeof d), AUTHP_ERROR);   /* dev0's socket */
    cfg_free(&c);
    load(&c, "serial = unix:/q/d.serial\nusers = nobody-at-all");
    assert_int_equal(check(&c, "dev0", "", &p, d, sizeof d), AUTHP_NOT_ALLOWED);
    cfg_free(&c);
    /* socket_dir/VM.spice: only for a VM with spice */
    snprintf(path, sizeof path, "%s/dev0.spice", g_dir);
    peer_at(path, &p);
    snprintf(keys, sizeof keys, "users = %s", g_self);
    load(&c, keys);
    assert_int_equal(check(&c, "dev0", "", &p, d, sizeof d), AUTHP_ERROR);   /* no spice */
    cfg_free(&c);
    snprintf(keys, sizeof keys, "spice = unix:/q/d.spice\nspice_port = 5999\nusers = %s",
             g_self);
    load(&c, keys);
    assert_int_equal(check(&c, "dev0", "", &p, d, sizeof d), AUTHP_OK);
    cfg_free(&c);
    /* socket_dir off: no uid login at all */
    char err[256];
    const char *off = "[gateway]\nsocket_dir =\n[vm dev1]\nvnc = unix:/q/e.vnc\nusers = root\n";
    assert_int_equal(cfg_parse("t.conf", off, strlen(off), &c, err, sizeof err), 0);
    snprintf(path, sizeof path, "%s/dev1.vnc", g_dir);
    peer_at(path, &p);
    assert_int_equal(check(&c, "dev1", "", &p, d, sizeof d), AUTHP_ERROR);
    cfg_free(&c);
}

/* An unknown uid has no name and is refused; root gets no bypass. */
static void test_acl_uid(void **state)
{
    (void)state;
    char name[64];
    struct cfg_vm vm = { 0 };
    assert_false(auth_acl_allows_uid(&vm, (uid_t)0x7ffffff0, name, sizeof name));
    assert_string_equal(name, "");
    assert_false(auth_acl_allows_uid(&vm, 0, name, sizeof name));
    assert_string_equal(name, "root");
    char *users[] = { "root" };
    vm.users = users;
    vm.n_users = 1;
    assert_true(auth_acl_allows_uid(&vm, 0, name, sizeof name));
}

int main(void)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/vmg-uid.XXXXXX");
    if (!mkdtemp(g_dir))
        return 1;
    struct passwd *pw = getpwuid(getuid());
    struct group *gr = pw ? getgrgid(pw->pw_gid) : NULL;
    if (!pw || !gr)
        return 1;
    snprintf(g_self, sizeof g_self, "%s", pw->pw_name);
    snprintf(g_group, sizeof g_group, "%s", gr->gr_name);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allowed_and_refused),
        cmocka_unit_test(test_socket_path_checked),
        cmocka_unit_test(test_acl_uid),
    };
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    rmdir(g_dir);
    return r;
}
