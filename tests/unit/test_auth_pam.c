/* tests/unit/test_auth_pam.c — PAM checks (auth/pam.c), the whole check
 * (auth/check.c), the ACL (auth/acl.c) and the helper with PAM, through
 * pam_wrapper + pam_matrix: no root, no real users.
 *
 * The binary configures itself: on start it writes a pam_wrapper service
 * directory and a pam_matrix passdb into a temporary directory, then
 * re-executes itself with LD_PRELOAD=libpam_wrapper.so PAM_WRAPPER=1
 * PAM_WRAPPER_SERVICE_DIR=... set, and removes the directory when the tests
 * are done.  tests/pam/ holds the same files as templates for other tests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "auth/auth.h"
#include "auth/auth_int.h"

#define SERVICE "vmgate-test"
#define SLOW_SERVICE "vmgate-slow"
#define SLOW_MS 60

static const char *const wrapper_libs[] = {
    "/usr/lib/x86_64-linux-gnu/libpam_wrapper.so",
    "/usr/lib/aarch64-linux-gnu/libpam_wrapper.so",
    "/usr/lib64/libpam_wrapper.so",
    "/usr/lib/libpam_wrapper.so",
    "/usr/local/lib/libpam_wrapper.so",
};
static const char *const matrix_mods[] = {
    "/usr/lib/x86_64-linux-gnu/pam_wrapper/pam_matrix.so",
    "/usr/lib/aarch64-linux-gnu/pam_wrapper/pam_matrix.so",
    "/usr/lib64/pam_wrapper/pam_matrix.so",
    "/usr/lib/pam_wrapper/pam_matrix.so",
    "/usr/local/lib/pam_wrapper/pam_matrix.so",
};
static const char *const security_dirs[] = {
    "/usr/lib/x86_64-linux-gnu/security",
    "/usr/lib/aarch64-linux-gnu/security",
    "/usr/lib64/security",
    "/lib/security",
    "/usr/lib/security",
};

static const char *first_existing(const char *const *paths, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (access(paths[i], R_OK) == 0)
            return paths[i];
    return NULL;
}

/* The running user and its primary group: the ACL's group test uses them
 * (root/root when run as root). */
static char g_self[256], g_self_group[256];

static int find_self(void)
{
    struct passwd *pw = getpwuid(getuid());
    if (!pw)
        return -1;
    struct group *gr = getgrgid(pw->pw_gid);
    if (!gr)
        return -1;
    snprintf(g_self, sizeof g_self, "%s", pw->pw_name);
    snprintf(g_self_group, sizeof g_self_group, "%s", gr->gr_name);
    return 0;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
        fprintf(stderr, "test_auth_pam: %s: %s\n", path, strerror(errno));
        exit(1);
    }
}

static bool g_have_faildelay;

/* Write DIR/passdb and DIR/services/{vmgate-test,other}.  The auth stack
 * asks pam_faildelay for a 2 s delay on failure: the helper's no-op
 * PAM_FAIL_DELAY callback must make that vanish. */
static void write_pam_files(const char *dir, const char *matrix, const char *secdir)
{
    char path[512], text[4096];
    snprintf(path, sizeof path, "%s/passdb", dir);
    snprintf(text, sizeof text,
             "alice:alice-pw:" SERVICE "\n"
             "bob:bob-pw:" SERVICE "\n"
             "carol:carol-pw:some-other-service\n"
             "%s:self-pw:" SERVICE "\n"
             "dave:dave-pw:" SLOW_SERVICE "\n"
             "erin:erin-pw:" SLOW_SERVICE "\n",
             g_self);
    write_file(path, text);
    snprintf(path, sizeof path, "%s/services", dir);
    if (mkdir(path, 0700) < 0) {
        perror(path);
        exit(1);
    }
    char delay[512] = "";
    if (secdir) {
        char mod[300];
        snprintf(mod, sizeof mod, "%s/pam_faildelay.so", secdir);
        if (access(mod, R_OK) == 0) {
            snprintf(delay, sizeof delay, "auth optional %s delay=2000000\n", mod);
            g_have_faildelay = true;
        }
    }
    snprintf(path, sizeof path, "%s/services/" SERVICE, dir);
    snprintf(text, sizeof text,
             "%s"
             "auth required %s passdb=%s/passdb\n"
             "account required %s passdb=%s/passdb\n",
             delay, matrix, dir, matrix, dir);
    write_file(path, text);
    /* vmgate-slow: the same users, with check costs that differ like
     * pam_unix's: unknown user 0, wrong password SLOW_MS, right password
     * 2 x SLOW_MS (pam_slow.so sleeps for users the passdb knows) */
    char slow[600];
    ssize_t sl = readlink("/proc/self/exe", slow, sizeof slow - 20);
    if (sl > 0) {
        slow[sl] = '\0';
        char *slash = strrchr(slow, '/');
        if (slash)
            strcpy(slash + 1, "pam_slow.so");
        if (slash && access(slow, R_OK) == 0) {
            snprintf(path, sizeof path, "%s/services/" SLOW_SERVICE, dir);
            snprintf(text, sizeof text,
                     "auth optional %s ms=%d passdb=%s/passdb\n"
                     "auth requisite %s passdb=%s/passdb\n"
                     "auth optional %s ms=%d passdb=%s/passdb\n"
                     "account required %s passdb=%s/passdb\n",
                     slow, SLOW_MS, dir, matrix, dir, slow, SLOW_MS, dir, matrix, dir);
            write_file(path, text);
        }
    }
    if (secdir) {
        char deny[300];
        snprintf(deny, sizeof deny, "%s/pam_deny.so", secdir);
        if (access(deny, R_OK) == 0) {
            snprintf(path, sizeof path, "%s/services/other", dir);
            snprintf(text, sizeof text, "auth required %s\naccount required %s\n", deny, deny);
            write_file(path, text);
        }
    }
}

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

/* rm -rf without a shell (a shell would inherit our LD_PRELOAD). */
static void rm_rf(const char *path)
{
    if (nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0 && errno != ENOENT)
        fprintf(stderr, "test_auth_pam: could not remove %s\n", path);
}

/* pam_wrapper gives every forked process that calls PAM its own
 * /tmp/pam.X copy of the service dir, removed by a destructor -- which the
 * helper's workers never run, since they leave with _exit().  pam_wrapper
 * removes such stale dirs itself on later runs; we remove ours now: those
 * whose copied service file names our temporary directory. */
static void rm_pam_wrapper_litter(const char *ourdir)
{
    DIR *d = opendir("/tmp");
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, "pam.", 4) != 0 || strlen(de->d_name) != 5)
            continue;
        char path[300], text[4096];
        snprintf(path, sizeof path, "/tmp/%s/" SERVICE, de->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t n = fread(text, 1, sizeof text - 1, f);
        fclose(f);
        text[n] = '\0';
        if (strstr(text, ourdir)) {
            snprintf(path, sizeof path, "/tmp/%s", de->d_name);
            rm_rf(path);
        }
    }
    closedir(d);
}

/* First run: set up the PAM files and the environment, run ourselves again
 * under pam_wrapper, clean up, and pass the exit status on. */
static int reexec_under_pam_wrapper(char **argv, const char *wrapper, const char *matrix)
{
    char dir[256];
    const char *t = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/vmgate-pam-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    write_pam_files(dir, matrix,
                    first_existing(security_dirs, sizeof security_dirs / sizeof *security_dirs));
    char svc[300], preload[1024];
    snprintf(svc, sizeof svc, "%s/services", dir);
    const char *old = getenv("LD_PRELOAD");
    if (old && *old && !strstr(old, "pam_wrapper"))
        snprintf(preload, sizeof preload, "%s:%s", wrapper, old);
    else
        snprintf(preload, sizeof preload, "%s", wrapper);
    setenv("LD_PRELOAD", preload, 1);
    setenv("PAM_WRAPPER", "1", 1);
    setenv("PAM_WRAPPER_SERVICE_DIR", svc, 1);
    setenv("VMGATE_TEST_PAMDIR", dir, 1);
    if (g_have_faildelay)
        setenv("VMGATE_TEST_FAILDELAY", "1", 1);
#ifdef UNDER_ASAN
    /* sanitizers refuse RTLD_DEEPBIND; pam_wrapper 1.1.4 reads the switch
     * under uid_wrapper's name, later versions under its own */
    setenv("PAM_WRAPPER_DISABLE_DEEPBIND", "1", 1);
    setenv("UID_WRAPPER_DISABLE_DEEPBIND", "1", 1);
    const char *ao = getenv("ASAN_OPTIONS");
    char asan[1024];
    snprintf(asan, sizeof asan, "%s%sverify_asan_link_order=0", ao ? ao : "",
             ao && *ao ? ":" : "");
    setenv("ASAN_OPTIONS", asan, 1);
#endif
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        execv("/proc/self/exe", argv);
        perror("execv /proc/self/exe");
        _exit(127);
    }
    int st = 0;
    while (pid > 0 && waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    rm_pam_wrapper_litter(dir);
    rm_rf(dir);
    if (pid < 0)
        return 1;
    if (WIFSIGNALED(st)) {
        fprintf(stderr, "test_auth_pam: killed by signal %d\n", WTERMSIG(st));
        return 1;
    }
    return WEXITSTATUS(st);
}

/* ---- direct PAM ---- */

static enum authp_result pam(const char *user, const char *pw, char *detail, size_t dl)
{
    return auth_pam_check(SERVICE, user, pw, "192.0.2.1", detail, dl);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_pam_direct(void **state)
{
    (void)state;
    char d[AUTHP_DETAIL_MAX + 1];
    assert_int_equal(pam("alice", "alice-pw", d, sizeof d), AUTHP_OK);
    assert_string_equal(d, "");
    assert_int_equal(pam("alice", "wrong", d, sizeof d), AUTHP_BAD_PASSWORD);
    assert_string_equal(d, "pam_authenticate: Authentication failure (code 7)");
    assert_int_equal(pam("alice", "alice-pw ", d, sizeof d), AUTHP_BAD_PASSWORD);
    /* pam_matrix answers PAM_AUTH_ERR for unknown users: not OK is enough */
    assert_int_not_equal(pam("mallory", "alice-pw", d, sizeof d), AUTHP_OK);
    assert_non_null(strstr(d, "pam_authenticate: "));
    /* PAM_DISALLOW_NULL_AUTHTOK */
    assert_int_not_equal(pam("alice", "", d, sizeof d), AUTHP_OK);
    /* right password, wrong service for the account phase */
    assert_int_equal(pam("carol", "carol-pw", d, sizeof d), AUTHP_ACCOUNT);
    assert_non_null(strstr(d, "pam_acct_mgmt: "));
    assert_non_null(strstr(d, "(code 6)"));
    /* empty rhost: PAM_RHOST not set, still fine */
    assert_int_equal(auth_pam_check(SERVICE, "alice", "alice-pw", "", d, sizeof d), AUTHP_OK);
    /* a service that does not exist falls back to "other" (deny) */
    assert_int_not_equal(auth_pam_check("vmgate-no-such-service", "alice", "alice-pw", "", d,
                                        sizeof d),
                         AUTHP_OK);
    assert_int_equal(auth_pam_check("", "alice", "alice-pw", "", d, sizeof d), AUTHP_ERROR);
    assert_int_equal(auth_pam_check(SERVICE, "alice", "alice-pw", NULL, NULL, 0), AUTHP_OK);
}

/* pam_faildelay in the stack asks for 2 s; the no-op PAM_FAIL_DELAY
 * callback makes failures return at once. */
static void test_pam_no_fail_delay(void **state)
{
    (void)state;
    if (!getenv("VMGATE_TEST_FAILDELAY"))
        skip();
    char d[AUTHP_DETAIL_MAX + 1];
    double t0 = now_s();
    for (int i = 0; i < 3; i++)
        assert_int_equal(pam("alice", "wrong", d, sizeof d), AUTHP_BAD_PASSWORD);
    double took = now_s() - t0;
    print_message("3 failures took %.3f s\n", took);
    assert_true(took < 1.5);
}

/* ---- the whole check, in-process ---- */

static char *g_vm_users[] = { "alice" };
static char *g_vm_groups[] = { g_self_group };
static struct cfg_vm g_vms[2];
static struct cfg g_cfg;

static int cfg_setup(void **state)
{
    (void)state;
    memset(g_vms, 0, sizeof g_vms);
    snprintf(g_vms[0].name, sizeof g_vms[0].name, "dev0");
    g_vms[0].users = g_vm_users;
    g_vms[0].n_users = 1;
    g_vms[0].groups = g_vm_groups;
    g_vms[0].n_groups = 1;
    snprintf(g_vms[1].name, sizeof g_vms[1].name, "empty");   /* nobody */
    memset(&g_cfg, 0, sizeof g_cfg);
    g_cfg.auth = CFG_AUTH_PAM;
    snprintf(g_cfg.pam_service, sizeof g_cfg.pam_service, SERVICE);
    /* One worker at a time: pam_wrapper itself races when several processes
     * start PAM at once (each cleans the others' /tmp/pam.* dirs and can read
     * a half-written pid file, then fails; seen in CI).  The requests still
     * queue in the helper, which is what these tests exercise. */
    g_cfg.auth_workers = 1;
    g_cfg.vms = g_vms;
    g_cfg.n_vms = 2;
    return 0;
}

static enum authp_result check(const char *vm, const char *user, const char *pw, char *d,
                               size_t dl)
{
    struct authp_login_req q = { .id = 1 };
    snprintf(q.vm, sizeof q.vm, "%s", vm);
    snprintf(q.user, sizeof q.user, "%s", user);
    snprintf(q.password, sizeof q.password, "%s", pw);
    snprintf(q.rhost, sizeof q.rhost, "198.51.100.4");
    enum authp_result r = auth_check(&g_cfg, &q, d, dl);
    explicit_bzero(&q, sizeof q);
    return r;
}

static void test_check(void **state)
{
    (void)state;
    char d[AUTHP_DETAIL_MAX + 1];
    assert_int_equal(check("dev0", "alice", "alice-pw", d, sizeof d), AUTHP_OK);
    assert_int_equal(check("dev0", "alice", "nope", d, sizeof d), AUTHP_BAD_PASSWORD);
    /* bob's password is right, but dev0 is not his */
    assert_int_equal(check("dev0", "bob", "bob-pw", d, sizeof d), AUTHP_NOT_ALLOWED);
    assert_string_equal(d, "user bob not in users/groups of vm dev0");
    /* the password is checked before the ACL: no hint that bob exists */
    assert_int_equal(check("dev0", "bob", "nope", d, sizeof d), AUTHP_BAD_PASSWORD);
    /* allowed through the primary group of the running user */
    assert_int_equal(check("dev0", g_self, "self-pw", d, sizeof d), AUTHP_OK);
    /* a VM with empty users and groups: nobody */
    assert_int_equal(check("empty", "alice", "alice-pw", d, sizeof d), AUTHP_NOT_ALLOWED);
    /* no such VM */
    assert_int_equal(check("dev9", "alice", "alice-pw", d, sizeof d), AUTHP_NOT_ALLOWED);
    assert_string_equal(d, "no such vm");
    assert_int_equal(check("", "alice", "alice-pw", d, sizeof d), AUTHP_NOT_ALLOWED);
    /* user names PAM never sees */
    assert_int_equal(check("dev0", "", "x", d, sizeof d), AUTHP_UNKNOWN_USER);
    assert_int_equal(check("dev0", "al\tice", "alice-pw", d, sizeof d), AUTHP_UNKNOWN_USER);
    assert_int_equal(check("dev0", "al\x7fice", "alice-pw", d, sizeof d), AUTHP_UNKNOWN_USER);
    assert_string_equal(d, "invalid user name");
    /* NULL detail is allowed */
    assert_int_equal(check("dev0", "alice", "alice-pw", NULL, 0), AUTHP_OK);
    /* the source address must look like one (it reaches PAM_RHOST) */
    struct authp_login_req q = { .id = 2, .vm = "dev0", .user = "alice",
                                 .password = "alice-pw", .rhost = "fe80::1%eth0" };
    assert_int_equal(auth_check(&g_cfg, &q, d, sizeof d), AUTHP_OK);
    q.rhost[0] = '\0';
    assert_int_equal(auth_check(&g_cfg, &q, d, sizeof d), AUTHP_OK);
    snprintf(q.rhost, sizeof q.rhost, "1.2.3.4 evil\nline");
    assert_int_equal(auth_check(&g_cfg, &q, d, sizeof d), AUTHP_ERROR);
    assert_string_equal(d, "invalid source address");
    explicit_bzero(&q, sizeof q);
    /* an unknown auth method */
    g_cfg.auth = (enum cfg_auth)7;
    assert_int_equal(check("dev0", "alice", "alice-pw", d, sizeof d), AUTHP_ERROR);
    g_cfg.auth = CFG_AUTH_FILE;   /* file without a file */
    assert_int_equal(check("dev0", "alice", "alice-pw", d, sizeof d), AUTHP_ERROR);
    g_cfg.auth = CFG_AUTH_PAM;
}

/* ---- ACL ---- */

static void test_acl(void **state)
{
    (void)state;
    struct cfg_vm vm = { .name = "x" };
    char *users[] = { "alice", "bob" };
    char *groups[] = { "vmgate-no-such-group-zz", g_self_group };
    /* empty = nobody */
    assert_false(auth_acl_allows(&vm, "alice"));
    assert_false(auth_acl_allows(&vm, g_self));
    /* users: exact names only */
    vm.users = users;
    vm.n_users = 2;
    assert_true(auth_acl_allows(&vm, "alice"));
    assert_true(auth_acl_allows(&vm, "bob"));
    assert_false(auth_acl_allows(&vm, "alic"));
    assert_false(auth_acl_allows(&vm, "alice2"));
    assert_false(auth_acl_allows(&vm, "Alice"));
    assert_false(auth_acl_allows(&vm, ""));
    assert_false(auth_acl_allows(&vm, NULL));
    assert_false(auth_acl_allows(NULL, "alice"));
    /* groups: a missing group is skipped; the primary group counts */
    assert_false(auth_acl_allows(&vm, g_self));
    vm.groups = groups;
    vm.n_groups = 1;
    assert_false(auth_acl_allows(&vm, g_self));
    vm.n_groups = 2;
    assert_true(auth_acl_allows(&vm, g_self));
    assert_false(auth_acl_allows(&vm, "vmgate-no-such-user-zz"));
    vm.n_users = 0;
    assert_true(auth_acl_allows(&vm, g_self));
    assert_false(auth_acl_allows(&vm, "alice"));

    /* supplementary membership (gr_mem), if this system has any */
    setgrent();
    struct group *gr;
    char gname[256] = "", member[256] = "";
    while ((gr = getgrent())) {
        if (gr->gr_mem && gr->gr_mem[0]) {
            snprintf(gname, sizeof gname, "%s", gr->gr_name);
            snprintf(member, sizeof member, "%s", gr->gr_mem[0]);
            break;
        }
    }
    endgrent();
    if (gname[0]) {
        char *g2[] = { gname };
        struct cfg_vm v2 = { .name = "y", .groups = g2, .n_groups = 1 };
        print_message("supplementary: %s in %s\n", member, gname);
        assert_true(auth_acl_allows(&v2, member));
        assert_false(auth_acl_allows(&v2, "vmgate-no-such-user-zz"));
    } else {
        print_message("no group with members here: supplementary case not run\n");
    }
}

/* ---- the helper, with PAM ---- */

struct rec {
    int calls;
    struct authp_login_resp resp;
    double at;
};
static int g_calls;

static void rec_cb(void *ctx, const struct authp_login_resp *resp)
{
    struct rec *r = ctx;
    r->calls++;
    r->resp = *resp;
    r->at = now_s();
    g_calls++;
}

static void submit(struct auth_client *ac, uint32_t id, const char *vm, const char *user,
                   const char *pw, struct rec *r)
{
    struct authp_login_req q = { .id = id };
    snprintf(q.vm, sizeof q.vm, "%s", vm);
    snprintf(q.user, sizeof q.user, "%s", user);
    snprintf(q.password, sizeof q.password, "%s", pw);
    snprintf(q.rhost, sizeof q.rhost, "203.0.113.9");
    static int viewer[2] = { -1, -1 };
    if (viewer[0] < 0)
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, viewer), 0);
    assert_int_equal(auth_client_submit(ac, &q, viewer[0], rec_cb, r), 0);
    explicit_bzero(&q, sizeof q);
}

static bool run_until(struct ev_loop *loop, int want, double timeout)
{
    double end = now_s() + timeout;
    while (g_calls < want && now_s() < end) {
        ev_run(loop, EVRUN_NOWAIT);
        if (g_calls < want)
            usleep(1000);
    }
    return g_calls >= want;
}

static void test_helper_pam(void **state)
{
    (void)state;
    int fd;
    pid_t pid;
    g_calls = 0;
    assert_int_equal(auth_helper_start(&g_cfg, &fd, &pid), 0);
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct auth_client *ac = auth_client_new(loop, fd);
    assert_non_null(ac);
    struct rec r[4] = { 0 };
    double t0 = now_s();
    submit(ac, 501, "dev0", "alice", "alice-pw", &r[0]);
    submit(ac, 502, "dev0", "alice", "wrong", &r[1]);
    submit(ac, 503, "dev0", "bob", "bob-pw", &r[2]);
    submit(ac, 504, "dev0", g_self, "self-pw", &r[3]);
    assert_true(run_until(loop, 4, 10.0));
    assert_int_equal(r[0].resp.id, 501);
    assert_int_equal(r[0].resp.result, AUTHP_OK);
    assert_int_equal(r[1].resp.id, 502);
    assert_int_equal(r[1].resp.result, AUTHP_BAD_PASSWORD);
    assert_string_equal(r[1].resp.detail, "pam_authenticate: Authentication failure (code 7)");
    assert_int_equal(r[2].resp.id, 503);
    assert_int_equal(r[2].resp.result, AUTHP_NOT_ALLOWED);
    assert_int_equal(r[3].resp.id, 504);
    assert_int_equal(r[3].resp.result, AUTHP_OK);
    for (int i = 0; i < 4; i++)
        assert_int_equal(r[i].calls, 1);
    /* the wrong password came back fast (PAM's delay is disabled) */
    print_message("wrong password answered after %.3f s\n", r[1].at - t0);
    assert_true(r[1].at - t0 < 1.5);

    auth_client_free(ac);
    ev_loop_destroy(loop);
    int st;
    double end = now_s() + 5;
    pid_t w;
    while ((w = waitpid(pid, &st, WNOHANG)) == 0 && now_s() < end)
        usleep(5000);
    assert_int_equal(w, pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* Requests the helper never read, then the helper dies: AUTHP_ERROR for
 * each pending callback. */
static void test_helper_pam_death(void **state)
{
    (void)state;
    int fd;
    pid_t pid;
    g_calls = 0;
    assert_int_equal(auth_helper_start(&g_cfg, &fd, &pid), 0);
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct auth_client *ac = auth_client_new(loop, fd);
    assert_non_null(ac);
    /* first a normal answer, so the helper is known to be up */
    struct rec warm = { 0 };
    submit(ac, 1, "dev0", "alice", "alice-pw", &warm);
    assert_true(run_until(loop, 1, 10.0));
    assert_int_equal(warm.resp.result, AUTHP_OK);
    kill(pid, SIGSTOP);
    struct rec r[3] = { 0 };
    for (int i = 0; i < 3; i++)
        submit(ac, 10u + (uint32_t)i, "dev0", "alice", "alice-pw", &r[i]);
    for (int i = 0; i < 20; i++)
        ev_run(loop, EVRUN_NOWAIT);
    assert_int_equal(g_calls, 1);
    kill(pid, SIGKILL);
    assert_true(run_until(loop, 4, 5.0));
    for (int i = 0; i < 3; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].resp.id, 10u + (uint32_t)i);
        assert_int_equal(r[i].resp.result, AUTHP_ERROR);
        assert_string_equal(r[i].resp.detail, "auth helper gone");
    }
    assert_false(auth_client_ok(ac));
    auth_client_free(ac);
    ev_loop_destroy(loop);
    assert_int_equal(waitpid(pid, NULL, 0), pid);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* User enumeration by timing: an unknown user (no hashing), a wrong
 * password (SLOW_MS) and a right password outside the VM's ACL (2 x
 * SLOW_MS) must all be answered at the same time after the request:
 * over 20 interleaved rounds, the median of each kind's time minus the
 * unknown user's time in the same round lies within 10 ms (paired, so a
 * budget step between rounds under load does not count). */
#define KIND_NAME(k) kinds[k].name   /* for the messages below */
static void test_helper_timing(void **state)
{
    (void)state;
    char path[300];
    snprintf(path, sizeof path, "%s/services/" SLOW_SERVICE, getenv("VMGATE_TEST_PAMDIR"));
    if (access(path, R_OK) != 0) {
        print_message("build/tests/pam_slow.so missing: timing test not run\n");
        skip();
    }
    struct cfg saved = g_cfg;
    snprintf(g_cfg.pam_service, sizeof g_cfg.pam_service, SLOW_SERVICE);
    g_cfg.fail_delay_ms = 50;     /* smaller than the slowest check */
    int fd;
    pid_t pid;
    g_calls = 0;
    assert_int_equal(auth_helper_start(&g_cfg, &fd, &pid), 0);
    g_cfg = saved;
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct auth_client *ac = auth_client_new(loop, fd);
    assert_non_null(ac);
    /* dev0 allows alice only: dave's right password is "not allowed" */
    static const struct {
        const char *user, *pw;
        enum authp_result want;
        const char *name;
    } kinds[3] = {
        { "mallory", "x", AUTHP_BAD_PASSWORD, "unknown user" },
        { "erin", "wrong", AUTHP_BAD_PASSWORD, "wrong password" },
        { "dave", "dave-pw", AUTHP_NOT_ALLOWED, "not in ACL" },
    };
    enum { TRIES = 20, WARM = 2 };
    double took[3][TRIES];
    uint32_t id = 1;
    for (int t = -WARM; t < TRIES; t++) {
        for (int k = 0; k < 3; k++) {
            struct rec r = { 0 };
            int want = g_calls + 1;
            double t0 = now_s();
            submit(ac, id++, "dev0", kinds[k].user, kinds[k].pw, &r);
            assert_true(run_until(loop, want, 10.0));
            if (r.resp.result != kinds[k].want)
                fail_msg("%s: %s (%s)", kinds[k].name, authp_result_name(r.resp.result),
                         r.resp.detail);
            if (t >= 0)
                took[k][t] = (r.at - t0) * 1000.0;
        }
    }
    /* paired: within one round the budget is the same for the three kinds;
     * across rounds it may step up when the machine's load makes a check
     * slower, which would shift plain medians by the step */
    double diff[2][TRIES];
    for (int t = 0; t < TRIES; t++)
        for (int k = 1; k < 3; k++)
            diff[k - 1][t] = took[k][t] - took[0][t];
    double med[3];
    for (int k = 0; k < 3; k++) {
        qsort(took[k], TRIES, sizeof took[k][0], cmp_double);
        med[k] = (took[k][TRIES / 2 - 1] + took[k][TRIES / 2]) / 2;
        print_message("%-15s median %6.1f ms (min %6.1f, max %6.1f)\n", kinds[k].name, med[k],
                      took[k][0], took[k][TRIES - 1]);
    }
    auth_client_free(ac);
    ev_loop_destroy(loop);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    for (int k = 0; k < 2; k++) {
        qsort(diff[k], TRIES, sizeof diff[k][0], cmp_double);
        double md = (diff[k][TRIES / 2 - 1] + diff[k][TRIES / 2]) / 2;
        print_message("%s - %s: median %+.1f ms\n", KIND_NAME(k + 1), KIND_NAME(0), md);
        if (md > 10.0 || md < -10.0)
            fail_msg("%s and %s can be told apart: median difference %.1f ms", KIND_NAME(k + 1),
                     KIND_NAME(0), md);
    }
    /* and never sooner than fail_delay */
    for (int k = 0; k < 3; k++)
        assert_true(took[k][0] >= 50.0 - 1.0);
}

static void test_skip_no_pam_wrapper(void **state)
{
    (void)state;
    print_message("pam_wrapper / pam_matrix not installed (package libpam-wrapper)\n");
    skip();
}

int main(int argc, char **argv)
{
    (void)argc;
    signal(SIGPIPE, SIG_IGN);
    if (find_self() < 0) {
        fprintf(stderr, "test_auth_pam: cannot look up the running user\n");
        return 1;
    }
    const char *wrapper = first_existing(wrapper_libs, sizeof wrapper_libs / sizeof *wrapper_libs);
    const char *matrix = first_existing(matrix_mods, sizeof matrix_mods / sizeof *matrix_mods);
    if (!wrapper || !matrix) {
        const struct CMUnitTest skipped[] = { cmocka_unit_test(test_skip_no_pam_wrapper) };
        return cmocka_run_group_tests_name("auth_pam", skipped, NULL, NULL);
    }
    if (!getenv("VMGATE_TEST_PAMDIR"))
        return reexec_under_pam_wrapper(argv, wrapper, matrix);

    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pam_direct),
        cmocka_unit_test(test_pam_no_fail_delay),
        cmocka_unit_test_setup(test_check, cfg_setup),
        cmocka_unit_test_setup(test_helper_timing, cfg_setup),
        cmocka_unit_test(test_acl),
        cmocka_unit_test_setup(test_helper_pam, cfg_setup),
        cmocka_unit_test_setup(test_helper_pam_death, cfg_setup),
    };
    return cmocka_run_group_tests_name("auth_pam", tests, NULL, NULL);
}
