/* tests/unit/test_auth_pwfile.c — the vmgate password file (auth/pwfile.c)
 * and the `vmgate passwd` command. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "auth/auth.h"
#include "auth/auth_int.h"

static char g_dir[256];
static char g_file[300];

static int setup(void **state)
{
    (void)state;
    const char *t = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/vmgate-pwfile-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(g_dir))
        return -1;
    snprintf(g_file, sizeof g_file, "%s/passwd", g_dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Each test starts with no password file. */
static int fresh(void **state)
{
    (void)state;
    unlink(g_file);
    char tmp[320];
    snprintf(tmp, sizeof tmp, "%s.tmp", g_file);
    unlink(tmp);
    return 0;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/* The whole file, malloc'ed (caller frees). */
static char *read_text(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    static char big[1 << 16];
    size_t n = fread(big, 1, sizeof big - 1, f);
    fclose(f);
    big[n] = '\0';
    return strdup(big);
}

static enum authp_result check(const char *user, const char *pw)
{
    char detail[AUTHP_DETAIL_MAX + 1];
    return auth_pwfile_check(g_file, user, pw, detail, sizeof detail);
}

static void set_ok(const char *user, const char *pw)
{
    char err[256];
    int rc = auth_pwfile_set(g_file, user, pw, err, sizeof err);
    if (rc != 0)
        print_error("auth_pwfile_set: %s\n", err);
    assert_int_equal(rc, 0);
}

static void test_set_then_check(void **state)
{
    (void)state;
    set_ok("alice", "correct horse");
    assert_int_equal(check("alice", "correct horse"), AUTHP_OK);
    assert_int_equal(check("alice", "correct hors"), AUTHP_BAD_PASSWORD);
    assert_int_equal(check("alice", "correct horse "), AUTHP_BAD_PASSWORD);
    assert_int_equal(check("alice", ""), AUTHP_BAD_PASSWORD);
    assert_int_equal(check("bob", "correct horse"), AUTHP_UNKNOWN_USER);
    assert_int_equal(check("ALICE", "correct horse"), AUTHP_UNKNOWN_USER);
    /* names a password file cannot hold are unknown, not errors */
    assert_int_equal(check("a b", "x"), AUTHP_UNKNOWN_USER);
    assert_int_equal(check("", "x"), AUTHP_UNKNOWN_USER);

    char *t = read_text(g_file);
    assert_int_equal(strncmp(t, "alice:$y$", 9), 0);
    assert_non_null(strchr(t, '\n'));
    assert_null(strstr(t, "correct horse"));
    free(t);

    char detail[AUTHP_DETAIL_MAX + 1];
    assert_int_equal(auth_pwfile_check(g_file, "alice", "nope", detail, sizeof detail),
                     AUTHP_BAD_PASSWORD);
    assert_string_equal(detail, "wrong password");
    assert_int_equal(auth_pwfile_check(g_file, "alice", "correct horse", detail, sizeof detail),
                     AUTHP_OK);
    assert_string_equal(detail, "");
    /* a NULL detail is allowed */
    assert_int_equal(auth_pwfile_check(g_file, "alice", "correct horse", NULL, 0), AUTHP_OK);
}


/* A password file others could rewrite is refused, naming the file: group
 * or other write bits always, an owner other than root only as root; a
 * missing file is left to the first login. */
static void test_check_perms(void **state)
{
    (void)state;
    char err[512] = "";
    assert_int_equal(auth_pwfile_check_perms(g_file, true, err, sizeof err), 0);  /* missing */
    write_text(g_file, "alice:$y$j9T$x$y\n");
    assert_int_equal(chmod(g_file, 0600), 0);
    assert_int_equal(auth_pwfile_check_perms(g_file, false, err, sizeof err), 0);
    assert_int_equal(chmod(g_file, 0640), 0);
    assert_int_equal(auth_pwfile_check_perms(g_file, false, err, sizeof err), 0);
    assert_int_equal(chmod(g_file, 0620), 0);
    assert_int_equal(auth_pwfile_check_perms(g_file, false, err, sizeof err), -1);
    assert_non_null(strstr(err, g_file));
    assert_non_null(strstr(err, "writable by its group (mode 0620)"));
    assert_int_equal(chmod(g_file, 0602), 0);
    assert_int_equal(auth_pwfile_check_perms(g_file, false, err, sizeof err), -1);
    assert_non_null(strstr(err, "writable by others"));
    assert_int_equal(chmod(g_file, 0600), 0);
    if (getuid() == 0) {
        assert_int_equal(chown(g_file, 65534, (gid_t)-1), 0);
        assert_int_equal(auth_pwfile_check_perms(g_file, false, err, sizeof err), 0);
        assert_int_equal(auth_pwfile_check_perms(g_file, true, err, sizeof err), -1);
        assert_non_null(strstr(err, "owned by uid 65534, not root"));
        assert_non_null(strstr(err, g_file));
        assert_int_equal(chown(g_file, 0, (gid_t)-1), 0);
        assert_int_equal(auth_pwfile_check_perms(g_file, true, err, sizeof err), 0);
    }
    assert_int_equal(auth_pwfile_check_perms(g_dir, false, err, sizeof err), -1);
    assert_non_null(strstr(err, "not a regular file"));
}

static void test_mode_0600(void **state)
{
    (void)state;
    mode_t old = umask(0);
    set_ok("alice", "pw-one");
    struct stat st;
    assert_int_equal(stat(g_file, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    /* an existing file with other permissions ends up 0600 too */
    assert_int_equal(chmod(g_file, 0644), 0);
    umask(0277);
    set_ok("alice", "pw-two");
    assert_int_equal(stat(g_file, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    umask(old);
    assert_int_equal(check("alice", "pw-two"), AUTHP_OK);
    /* no temporary file left behind */
    char tmp[320];
    snprintf(tmp, sizeof tmp, "%s.tmp", g_file);
    assert_int_equal(access(tmp, F_OK), -1);
}

static void test_update_keeps_others(void **state)
{
    (void)state;
    write_text(g_file, "# vmgate users\n\n   # indented comment\n");
    set_ok("alice", "a-pass");
    set_ok("bob", "b-pass");
    set_ok("carol.x@example-1", "c-pass");
    char *before = read_text(g_file);
    set_ok("bob", "b-new");
    char *after = read_text(g_file);
    assert_int_equal(check("alice", "a-pass"), AUTHP_OK);
    assert_int_equal(check("bob", "b-pass"), AUTHP_BAD_PASSWORD);
    assert_int_equal(check("bob", "b-new"), AUTHP_OK);
    assert_int_equal(check("carol.x@example-1", "c-pass"), AUTHP_OK);
    /* comments first, then alice, bob, carol in the same order */
    assert_int_equal(strncmp(after, "# vmgate users\n\n   # indented comment\nalice:$y$", 47), 0);
    char *pa = strstr(after, "\nalice:"), *pb = strstr(after, "\nbob:"),
         *pc = strstr(after, "\ncarol.x@example-1:");
    assert_true(pa && pb && pc && pa < pb && pb < pc);
    /* alice's and carol's lines are byte for byte what they were */
    char *la = strstr(before, "\nalice:"), *lc = strstr(before, "\ncarol");
    assert_int_equal(strncmp(la, pa, (size_t)(strchr(la + 1, '\n') - la)), 0);
    assert_string_equal(lc, pc);
    free(before);
    free(after);
}

static void test_no_trailing_newline_and_crlf(void **state)
{
    (void)state;
    /* a hand-written file with CRLF line ends and no final newline */
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    assert_non_null(crypt_gensalt_rn("$6$", 0, NULL, 0, salt, sizeof salt));
    struct crypt_data *cd = calloc(1, sizeof *cd);
    assert_non_null(cd);
    const char *h = crypt_rn("sha-pass", salt, cd, sizeof *cd);
    assert_non_null(h);
    char text[512];
    snprintf(text, sizeof text, "# crlf file\r\ndave:%s\r\n# last, no newline", h);
    free(cd);
    write_text(g_file, text);
    /* a sha512-crypt hash pasted by an admin works too */
    assert_int_equal(check("dave", "sha-pass"), AUTHP_OK);
    assert_int_equal(check("dave", "sha-pas"), AUTHP_BAD_PASSWORD);
    set_ok("erin", "e-pass");
    char *t = read_text(g_file);
    assert_non_null(strstr(t, "# last, no newline\nerin:$y$"));
    free(t);
    assert_int_equal(check("dave", "sha-pass"), AUTHP_OK);
    assert_int_equal(check("erin", "e-pass"), AUTHP_OK);
}

static void test_long_lines(void **state)
{
    (void)state;
    /* a comment of exactly the limit is fine */
    char *text = malloc(AUTH_PWFILE_LINE_MAX + 64);
    assert_non_null(text);
    memset(text, 'c', AUTH_PWFILE_LINE_MAX);
    text[0] = '#';
    strcpy(text + AUTH_PWFILE_LINE_MAX, "\n");
    write_text(g_file, text);
    set_ok("alice", "pw");
    assert_int_equal(check("alice", "pw"), AUTHP_OK);
    /* one more byte is an error, for check and for set */
    memset(text, 'c', AUTH_PWFILE_LINE_MAX + 1);
    text[0] = '#';
    strcpy(text + AUTH_PWFILE_LINE_MAX + 1, "\n");
    write_text(g_file, text);
    char detail[AUTHP_DETAIL_MAX + 1], err[256];
    assert_int_equal(auth_pwfile_check(g_file, "alice", "pw", detail, sizeof detail),
                     AUTHP_ERROR);
    assert_non_null(strstr(detail, ":1: line longer than"));
    assert_int_equal(auth_pwfile_set(g_file, "alice", "pw", err, sizeof err), -1);
    assert_non_null(strstr(err, ":1: line longer than"));
    /* and the file was left alone */
    char *t = read_text(g_file);
    assert_string_equal(t, text);
    free(t);
    free(text);
}

static void test_malformed_files(void **state)
{
    (void)state;
    static const struct {
        const char *text, *why;
    } cases[] = {
        { "alice\n", "expected user:hash" },
        { "# ok\nbad user:$y$abc\n", ":2: bad user name" },
        { "bad!:$y$abc\n", "bad user name" },
        { ":$y$abc\n", "bad user name" },
        { "alice:\n", "empty hash" },
        { "alice:$y$a b\n", "bad character" },
        { "alice:$y$a:b\n", "bad character" },
        { "alice:$y$abc\nalice:$y$def\n", ":2: user listed twice" },
        { " alice:$y$abc\n", "bad user name" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_text(g_file, cases[i].text);
        char detail[AUTHP_DETAIL_MAX + 1], err[256];
        assert_int_equal(auth_pwfile_check(g_file, "alice", "pw", detail, sizeof detail),
                         AUTHP_ERROR);
        if (!strstr(detail, cases[i].why))
            fail_msg("case %zu: detail \"%s\" lacks \"%s\"", i, detail, cases[i].why);
        if (auth_pwfile_set(g_file, "zed", "pw", err, sizeof err) != -1)
            fail_msg("case %zu: set accepted a malformed file", i);
        assert_non_null(strstr(err, cases[i].why));
    }
    /* a NUL byte inside a line */
    int fd = open(g_file, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "alice:$y$a\0b\n", 13), 13);
    close(fd);
    assert_int_equal(check("alice", "pw"), AUTHP_ERROR);
}

static void test_missing_and_unreadable(void **state)
{
    (void)state;
    char detail[AUTHP_DETAIL_MAX + 1];
    assert_int_equal(auth_pwfile_check(g_file, "alice", "pw", detail, sizeof detail),
                     AUTHP_ERROR);
    assert_non_null(strstr(detail, "No such file"));
    /* a directory is not a password file */
    assert_int_equal(auth_pwfile_check(g_dir, "alice", "pw", detail, sizeof detail),
                     AUTHP_ERROR);
    assert_non_null(strstr(detail, "not a regular file"));
    char err[256];
    assert_int_equal(auth_pwfile_set(g_dir, "alice", "pw", err, sizeof err), -1);
    /* set creates a missing file */
    set_ok("alice", "pw");
    assert_int_equal(check("alice", "pw"), AUTHP_OK);
}

static void test_locked(void **state)
{
    (void)state;
    set_ok("alice", "pw");
    char *t = read_text(g_file);
    char locked[512];
    snprintf(locked, sizeof locked, "alice:!%s", t + strlen("alice:"));
    write_text(g_file, locked);
    char detail[AUTHP_DETAIL_MAX + 1];
    assert_int_equal(auth_pwfile_check(g_file, "alice", "pw", detail, sizeof detail),
                     AUTHP_ACCOUNT);
    assert_non_null(strstr(detail, "locked"));
    write_text(g_file, "alice:*\n");
    assert_int_equal(check("alice", "pw"), AUTHP_ACCOUNT);
    /* a hash libcrypt does not know is the admin's error, not a bad password */
    write_text(g_file, "alice:$zz$nonsense\n");
    assert_int_equal(check("alice", "pw"), AUTHP_ERROR);
    free(t);
}

static void test_set_refuses(void **state)
{
    (void)state;
    char err[256];
    char longname[AUTHP_USER_MAX + 2];
    memset(longname, 'u', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    const char *bad_users[] = { "", "a b", "a:b", "a\nb", "ä", "a/b", longname };
    for (size_t i = 0; i < sizeof bad_users / sizeof bad_users[0]; i++) {
        assert_int_equal(auth_pwfile_set(g_file, bad_users[i], "pw", err, sizeof err), -1);
        assert_non_null(strstr(err, "invalid user name"));
    }
    longname[AUTHP_USER_MAX] = '\0';   /* exactly the limit is fine */
    set_ok(longname, "pw");
    assert_int_equal(check(longname, "pw"), AUTHP_OK);

    assert_int_equal(auth_pwfile_set(g_file, "alice", "", err, sizeof err), -1);
    assert_non_null(strstr(err, "empty password"));
    /* libcrypt hashes at most 511 bytes */
    char longpw[AUTHP_PASS_MAX + 2];
    memset(longpw, 'p', sizeof longpw - 1);
    longpw[sizeof longpw - 1] = '\0';
    assert_int_equal(auth_pwfile_set(g_file, "alice", longpw, err, sizeof err), -1);
    assert_non_null(strstr(err, "too long"));
    longpw[512] = '\0';
    assert_int_equal(auth_pwfile_set(g_file, "alice", longpw, err, sizeof err), -1);
    assert_non_null(strstr(err, "too long"));
    longpw[511] = '\0';
    set_ok("alice", longpw);
    assert_int_equal(check("alice", longpw), AUTHP_OK);
    /* a longer one is a wrong password, not an error */
    longpw[511] = 'p';
    assert_int_equal(check("alice", longpw), AUTHP_BAD_PASSWORD);
    longpw[AUTHP_PASS_MAX] = '\0';
    assert_int_equal(check("alice", longpw), AUTHP_BAD_PASSWORD);

    /* a leftover temporary file: refuse rather than clobber it */
    char tmp[320];
    snprintf(tmp, sizeof tmp, "%s.tmp", g_file);
    write_text(tmp, "someone else's\n");
    assert_int_equal(auth_pwfile_set(g_file, "bob", "pw", err, sizeof err), -1);
    assert_non_null(strstr(err, "exists"));
    char *t = read_text(tmp);
    assert_string_equal(t, "someone else's\n");
    free(t);
    unlink(tmp);
    assert_int_equal(check("bob", "pw"), AUTHP_UNKNOWN_USER);
}

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Unknown users cost a real hash too: CPU time within a broad factor of a
 * known user's (yescrypt takes tens of ms; a skipped hash takes µs). */
static void test_unknown_user_costs_a_hash(void **state)
{
    (void)state;
    set_ok("alice", "pw");
    double t0 = cpu_now();
    for (int i = 0; i < 3; i++)
        assert_int_equal(check("alice", "wrong"), AUTHP_BAD_PASSWORD);
    double known = cpu_now() - t0;
    t0 = cpu_now();
    for (int i = 0; i < 3; i++)
        assert_int_equal(check("mallory", "wrong"), AUTHP_UNKNOWN_USER);
    double unknown = cpu_now() - t0;
    t0 = cpu_now();
    for (int i = 0; i < 3; i++)
        assert_int_equal(check("bad name", "wrong"), AUTHP_UNKNOWN_USER);
    double invalid = cpu_now() - t0;
    print_message("known %.3fs unknown %.3fs invalid %.3fs (3 checks each)\n", known, unknown,
                  invalid);
    assert_true(unknown > known / 4);
    assert_true(invalid > known / 4);
}

/* The dummy an unknown user is checked against costs what the file's most
 * expensive entry costs: here a yescrypt entry four times the default cost
 * (and a cheap sha512crypt one, which must not be picked). */
static void test_dummy_matches_costliest(void **state)
{
    (void)state;
    char salt[CRYPT_GENSALT_OUTPUT_SIZE], text[1024];
    struct crypt_data cd;
    memset(&cd, 0, sizeof cd);
    assert_non_null(crypt_gensalt_rn("$y$", 7, NULL, 0, salt, (int)sizeof salt));
    const char *h = crypt_rn("slow-pw", salt, &cd, (int)sizeof cd);
    assert_non_null(h);
    char slow[CRYPT_OUTPUT_SIZE];
    snprintf(slow, sizeof slow, "%s", h);
    assert_non_null(crypt_gensalt_rn("$6$", 0, NULL, 0, salt, (int)sizeof salt));
    h = crypt_rn("fast-pw", salt, &cd, (int)sizeof cd);
    assert_non_null(h);
    snprintf(text, sizeof text, "fast:%s\nslow:%s\n", h, slow);
    write_text(g_file, text);
    double t0 = cpu_now();
    for (int i = 0; i < 3; i++)
        assert_int_equal(check("slow", "wrong"), AUTHP_BAD_PASSWORD);
    double known = cpu_now() - t0;
    t0 = cpu_now();
    for (int i = 0; i < 3; i++)
        assert_int_equal(check("mallory", "wrong"), AUTHP_UNKNOWN_USER);
    double unknown = cpu_now() - t0;
    print_message("costliest entry %.3fs, unknown user %.3fs (3 checks each)\n", known, unknown);
    assert_true(unknown > known * 0.6);
    assert_true(unknown < known * 1.6);
}

/* Run `vmgate passwd ARGS` in a child with stdin fed from a pipe; returns
 * the exit status and the child's stdout/stderr. */
static int run_passwd(const char *input, size_t inlen, char *out, size_t outsz, char *errout,
                      size_t errsz, int argc, char **argv)
{
    int in[2], o[2], e[2];
    assert_int_equal(pipe(in), 0);
    assert_int_equal(pipe(o), 0);
    assert_int_equal(pipe(e), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(o[1], 1);
        dup2(e[1], 2);
        close(in[0]); close(in[1]); close(o[0]); close(o[1]); close(e[0]); close(e[1]);
        int rc = auth_passwd_cmd(argc, argv);
        fflush(NULL);
        _exit(rc);
    }
    close(in[0]);
    close(o[1]);
    close(e[1]);
    if (input && inlen)
        assert_int_equal(write(in[1], input, inlen), (ssize_t)inlen);
    close(in[1]);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    ssize_t n = read(o[0], out, outsz - 1);
    out[n > 0 ? n : 0] = '\0';
    n = read(e[0], errout, errsz - 1);
    errout[n > 0 ? n : 0] = '\0';
    close(o[0]);
    close(e[0]);
    assert_true(WIFEXITED(st));
    return WEXITSTATUS(st);
}

static void test_passwd_cmd(void **state)
{
    (void)state;
    char out[1024], err[1024];
    char *argv[] = { "passwd", g_file, "alice", NULL };
    int rc = run_passwd("s3cret pass\n", 12, out, sizeof out, err, sizeof err, 3, argv);
    assert_int_equal(rc, 0);
    char want[512];
    snprintf(want, sizeof want, "vmgate passwd: password for alice set in %s\n", g_file);
    assert_string_equal(out, want);
    assert_string_equal(err, "");
    assert_int_equal(check("alice", "s3cret pass"), AUTHP_OK);

    /* CRLF stripped, only the first line used, no newline at EOF fine */
    rc = run_passwd("crlf\r\nsecond line\n", 19, out, sizeof out, err, sizeof err, 3, argv);
    assert_int_equal(rc, 0);
    assert_int_equal(check("alice", "crlf"), AUTHP_OK);
    rc = run_passwd("no-newline", 10, out, sizeof out, err, sizeof err, 3, argv);
    assert_int_equal(rc, 0);
    assert_int_equal(check("alice", "no-newline"), AUTHP_OK);
    /* blanks inside and at the end are part of the password */
    rc = run_passwd(" sp ace \n", 9, out, sizeof out, err, sizeof err, 3, argv);
    assert_int_equal(rc, 0);
    assert_int_equal(check("alice", " sp ace "), AUTHP_OK);

    /* refused: empty line, nothing at all, over-long, NUL */
    rc = run_passwd("\n", 1, out, sizeof out, err, sizeof err, 3, argv);
    assert_int_equal(rc, 1);
    assert_string_equal(err, "vmgate passwd: empty password refused\n");
    rc = run_passwd("\r\n", 2, out, sizeof out, err, sizeof err, 3, argv);
    assert_int_equal(rc, 1);
    rc = run_passwd(NULL, 0, out, sizeof out, err, sizeof err, 3, argv);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(err, "vmgate passwd: "));
    static char longin[AUTHP_PASS_MAX + 10];
    memset(longin, 'p', AUTHP_PASS_MAX + 1);
    longin[AUTHP_PASS_MAX + 1] = '\n';
    rc = run_passwd(longin, AUTHP_PASS_MAX + 2, out, sizeof out, err, sizeof err, 3, argv);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(err, "too long"));
    rc = run_passwd("a\0b\n", 4, out, sizeof out, err, sizeof err, 3, argv);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(err, "NUL"));
    /* 512 bytes: readable, but too long for libcrypt */
    longin[512] = '\n';
    rc = run_passwd(longin, 513, out, sizeof out, err, sizeof err, 3, argv);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(err, "too long"));
    /* a password of exactly the limit is accepted */
    longin[511] = '\n';
    rc = run_passwd(longin, 512, out, sizeof out, err, sizeof err, 3, argv);
    assert_int_equal(rc, 0);
    longin[511] = '\0';
    assert_int_equal(check("alice", longin), AUTHP_OK);

    /* usage */
    char *help[] = { "passwd", "--help", NULL };
    rc = run_passwd(NULL, 0, out, sizeof out, err, sizeof err, 2, help);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "usage: vmgate passwd FILE USER"));
    char *one[] = { "passwd", g_file, NULL };
    rc = run_passwd("x\n", 2, out, sizeof out, err, sizeof err, 2, one);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(err, "vmgate passwd: expected FILE and USER"));
    char *three[] = { "passwd", g_file, "alice", "extra", NULL };
    rc = run_passwd("x\n", 2, out, sizeof out, err, sizeof err, 4, three);
    assert_int_equal(rc, 1);
    char *opt[] = { "passwd", "-x", g_file, "alice", NULL };
    rc = run_passwd("x\n", 2, out, sizeof out, err, sizeof err, 4, opt);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(err, "unknown option -x"));
    char *badu[] = { "passwd", g_file, "bad user", NULL };
    rc = run_passwd("x\n", 2, out, sizeof out, err, sizeof err, 3, badu);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(err, "vmgate passwd: invalid user name"));
    /* an unwritable place */
    char *nodir[] = { "passwd", "/nonexistent-dir/vmgate/passwd", "alice", NULL };
    rc = run_passwd("x\n", 2, out, sizeof out, err, sizeof err, 3, nodir);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(err, "vmgate passwd: /nonexistent-dir/vmgate/passwd.tmp"));
}

static void test_ct_streq(void **state)
{
    (void)state;
    assert_true(auth_ct_streq("", ""));
    assert_true(auth_ct_streq("abc", "abc"));
    assert_false(auth_ct_streq("abc", "abd"));
    assert_false(auth_ct_streq("abc", "ab"));
    assert_false(auth_ct_streq("", "a"));
    assert_true(auth_pwfile_user_ok("a.b_c-d@e9"));
    assert_false(auth_pwfile_user_ok(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_set_then_check, fresh),
        cmocka_unit_test_setup(test_mode_0600, fresh),
        cmocka_unit_test_setup(test_update_keeps_others, fresh),
        cmocka_unit_test_setup(test_no_trailing_newline_and_crlf, fresh),
        cmocka_unit_test_setup(test_long_lines, fresh),
        cmocka_unit_test_setup(test_malformed_files, fresh),
        cmocka_unit_test_setup(test_missing_and_unreadable, fresh),
        cmocka_unit_test_setup(test_locked, fresh),
        cmocka_unit_test_setup(test_set_refuses, fresh),
        cmocka_unit_test_setup(test_unknown_user_costs_a_hash, fresh),
        cmocka_unit_test_setup(test_dummy_matches_costliest, fresh),
        cmocka_unit_test_setup(test_passwd_cmd, fresh),
        cmocka_unit_test(test_ct_streq),
        cmocka_unit_test_setup(test_check_perms, fresh),
    };
    return cmocka_run_group_tests_name("auth_pwfile", tests, setup, teardown);
}
