/* tests/unit/test_certs.c — certs/: generation, the server SSL_CTX, the CLI,
 * and real in-process TLS handshakes over a socketpair. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "certs/certs.h"

/* ------------------------------------------------------------- helpers */

struct fixture {
    char dir[256];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/vmgate-test-certs.XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st; (void)flag; (void)ftw;
    return remove(path);
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static const char *path_in(const struct fixture *f, const char *name)
{
    static char buf[4][PATH_MAX];
    static int slot;
    char *p = buf[slot++ % 4];
    snprintf(p, PATH_MAX, "%s/%s", f->dir, name);
    return p;
}

static const char *const default_names[] = { "localhost", "127.0.0.1", "::1" };

static void gen_default(const struct fixture *f)
{
    char err[512] = "";
    int rc = certs_generate(f->dir, NULL, default_names, 3, 30, 0, err, sizeof err);
    if (rc != 0)
        fail_msg("certs_generate: %s", err);
}

/* Whole file into a malloc'ed NUL-terminated buffer (NULL if unreadable). */
static char *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(fp);
                return NULL;
            }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, 4096, fp);
        n += r;
        if (r == 0)
            break;
    }
    fclose(fp);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    assert_int_equal(fclose(fp), 0);
}

static mode_t mode_of(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_mode & 07777;
}

static int exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static X509 *load_cert(const char *path)
{
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    X509 *x = PEM_read_X509(fp, NULL, NULL, NULL);
    fclose(fp);
    assert_non_null(x);
    return x;
}

static EVP_PKEY *load_key(const char *path)
{
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    EVP_PKEY *k = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
    fclose(fp);
    assert_non_null(k);
    return k;
}

/* Number of directory entries other than . and .. */
static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

/* ------------------------------------------------------------ generation */

static void test_generate_files_and_modes(void **state)
{
    struct fixture *f = *state;
    /* A strict umask must not make the certs unreadable, and a loose one
     * must not make the keys readable. */
    mode_t old = umask(077);
    gen_default(f);
    umask(old);
    assert_int_equal(mode_of(path_in(f, "ca/ca.key")), 0600);
    assert_int_equal(mode_of(path_in(f, "server.key")), 0600);
    assert_int_equal(mode_of(path_in(f, "ca.crt")), 0644);
    assert_int_equal(mode_of(path_in(f, "server.crt")), 0644);
    assert_int_equal(count_entries(f->dir), 4);

    char sub[PATH_MAX];
    snprintf(sub, sizeof sub, "%s/loose", f->dir);
    old = umask(0);
    char err[512] = "";
    assert_int_equal(certs_generate(sub, NULL, default_names, 3, 30, 0, err, sizeof err), 0);
    umask(old);
    assert_int_equal(mode_of(sub), 0755);
    snprintf(sub, sizeof sub, "%s/loose/ca/ca.key", f->dir);
    assert_int_equal(mode_of(sub), 0600);
    snprintf(sub, sizeof sub, "%s/loose/server.key", f->dir);
    assert_int_equal(mode_of(sub), 0600);

    char *key = slurp(path_in(f, "server.key"), NULL);
    assert_non_null(key);
    assert_non_null(strstr(key, "-----BEGIN PRIVATE KEY-----"));
    assert_null(strstr(key, "ENCRYPTED"));
    free(key);
}

static void test_refuse_overwrite_without_force(void **state)
{
    struct fixture *f = *state;
    gen_default(f);
    const char *files[] = { "ca.crt", "ca/ca.key", "server.crt", "server.key" };
    char *before[4];
    struct stat st_before[4];
    for (int i = 0; i < 4; i++) {
        before[i] = slurp(path_in(f, files[i]), NULL);
        assert_non_null(before[i]);
        assert_int_equal(stat(path_in(f, files[i]), &st_before[i]), 0);
    }
    char err[512] = "";
    assert_int_equal(certs_generate(f->dir, NULL, default_names, 3, 30, 0, err, sizeof err), -1);
    assert_non_null(strstr(err, "exists (use --force to overwrite)"));
    for (int i = 0; i < 4; i++) {
        char *after = slurp(path_in(f, files[i]), NULL);
        assert_non_null(after);
        assert_string_equal(before[i], after);
        struct stat st;
        assert_int_equal(stat(path_in(f, files[i]), &st), 0);
        assert_int_equal(st.st_ino, st_before[i].st_ino);
        free(after);
        free(before[i]);
    }
    assert_int_equal(count_entries(f->dir), 4);
}

/* One existing file of the four is enough to refuse, and nothing else is
 * created. */
static void test_refuse_if_any_exists(void **state)
{
    struct fixture *f = *state;
    write_file(path_in(f, "server.key"), "mine\n");
    char err[512] = "", want[PATH_MAX + 64];
    assert_int_equal(certs_generate(f->dir, NULL, default_names, 3, 30, 0, err, sizeof err), -1);
    snprintf(want, sizeof want, "%s/server.key exists (use --force to overwrite)", f->dir);
    assert_string_equal(err, want);
    assert_int_equal(count_entries(f->dir), 1);
    char *c = slurp(path_in(f, "server.key"), NULL);
    assert_string_equal(c, "mine\n");
    free(c);
}

/* A dangling symlink named ca.key counts as existing: following it would
 * write a private key wherever the link points. */
static void test_refuse_dangling_symlink(void **state)
{
    struct fixture *f = *state;
    char target[PATH_MAX];
    snprintf(target, sizeof target, "%s/elsewhere", f->dir);
    assert_int_equal(mkdir(path_in(f, "ca"), 0700), 0);
    assert_int_equal(symlink(target, path_in(f, "ca/ca.key")), 0);
    char err[512] = "";
    assert_int_equal(certs_generate(f->dir, NULL, default_names, 3, 30, 0, err, sizeof err), -1);
    assert_non_null(strstr(err, "ca.key exists (use --force to overwrite)"));
    assert_false(exists(target));
    assert_int_equal(count_entries(f->dir), 1);
    assert_int_equal(count_entries(path_in(f, "ca")), 1);
}

static void test_force_overwrites(void **state)
{
    struct fixture *f = *state;
    gen_default(f);
    char *ca1 = slurp(path_in(f, "ca.crt"), NULL);
    char *key1 = slurp(path_in(f, "server.key"), NULL);
    char err[512] = "";
    const char *names[] = { "gw.example", "10.0.0.7" };
    assert_int_equal(certs_generate(f->dir, NULL, names, 2, 10, 1, err, sizeof err), 0);
    char *ca2 = slurp(path_in(f, "ca.crt"), NULL);
    char *key2 = slurp(path_in(f, "server.key"), NULL);
    assert_string_not_equal(ca1, ca2);
    assert_string_not_equal(key1, key2);
    assert_int_equal(mode_of(path_in(f, "ca/ca.key")), 0600);
    assert_int_equal(mode_of(path_in(f, "server.key")), 0600);
    assert_int_equal(mode_of(path_in(f, "server.crt")), 0644);
    assert_int_equal(count_entries(f->dir), 4); /* no temp files left */
    X509 *srv = load_cert(path_in(f, "server.crt"));
    assert_int_equal(X509_check_host(srv, "gw.example", 0, 0, NULL), 1);
    X509_free(srv);
    free(ca1);
    free(ca2);
    free(key1);
    free(key2);
}

static void test_bad_arguments(void **state)
{
    struct fixture *f = *state;
    char err[512] = "";
    assert_int_equal(certs_generate(f->dir, NULL, default_names, 3, 0, 0, err, sizeof err), -1);
    assert_non_null(strstr(err, "days"));
    assert_int_equal(certs_generate(f->dir, NULL, default_names, 3, 36501, 0, err, sizeof err), -1);
    assert_int_equal(certs_generate(f->dir, NULL, default_names, 0, 30, 0, err, sizeof err), -1);
    const char *bad1[] = { "foo bar" };
    assert_int_equal(certs_generate(f->dir, NULL, bad1, 1, 30, 0, err, sizeof err), -1);
    assert_string_equal(err, "not a valid DNS name or IP address: foo bar");
    const char *bad2[] = { "localhost", "127.1" };
    assert_int_equal(certs_generate(f->dir, NULL, bad2, 2, 30, 0, err, sizeof err), -1);
    const char *bad3[] = { "a..b" };
    assert_int_equal(certs_generate(f->dir, NULL, bad3, 1, 30, 0, err, sizeof err), -1);
    const char *bad4[] = { "x,DNS:evil.example" };
    assert_int_equal(certs_generate(f->dir, NULL, bad4, 1, 30, 0, err, sizeof err), -1);
    assert_int_equal(count_entries(f->dir), 0);

    /* A file where the directory should be. */
    write_file(path_in(f, "file"), "x");
    assert_int_equal(certs_generate(path_in(f, "file"), NULL, default_names, 3, 30, 0, err,
                                    sizeof err), -1);
    assert_non_null(strstr(err, "Not a directory"));
    /* 36500 days is allowed. */
    assert_int_equal(certs_generate(path_in(f, "long"), NULL, default_names, 3, 36500, 0, err,
                                    sizeof err), 0);
}


/* ------------------------------------------------- CA name constraints */

/* The CA carries one critical nameConstraints extension whose permitted
 * subtrees are exactly the --name list (addresses with all-ones masks), and
 * no excluded subtrees. */
static void test_ca_name_constraints(void **state)
{
    struct fixture *f = *state;
    const char *names[] = { "gw.example", "*.vm.example", "192.0.2.7", "2001:db8::1" };
    char err[512] = "";
    assert_int_equal(certs_generate(f->dir, NULL, names, 4, 30, 0, err, sizeof err), 0);
    X509 *ca = load_cert(path_in(f, "ca.crt"));
    int idx = X509_get_ext_by_NID(ca, NID_name_constraints, -1);
    assert_true(idx >= 0);
    assert_int_equal(X509_EXTENSION_get_critical(X509_get_ext(ca, idx)), 1);
    int crit = 0;
    NAME_CONSTRAINTS *nc = X509_get_ext_d2i(ca, NID_name_constraints, &crit, NULL);
    assert_non_null(nc);
    assert_null(nc->excludedSubtrees);
    assert_int_equal(sk_GENERAL_SUBTREE_num(nc->permittedSubtrees), 4);
    static const unsigned char ip4[8] = { 192, 0, 2, 7, 255, 255, 255, 255 };
    unsigned char ip6[32];
    memset(ip6, 0, 16);
    ip6[0] = 0x20; ip6[1] = 0x01; ip6[2] = 0x0d; ip6[3] = 0xb8; ip6[15] = 1;
    memset(ip6 + 16, 0xff, 16);
    for (int i = 0; i < 4; i++) {
        GENERAL_SUBTREE *st = sk_GENERAL_SUBTREE_value(nc->permittedSubtrees, i);
        int type = 0;
        const ASN1_STRING *v = GENERAL_NAME_get0_value(st->base, &type);
        const char *dns = i == 0 ? "gw.example" : "vm.example";
        if (i < 2) {
            assert_int_equal(type, GEN_DNS);
            assert_int_equal(ASN1_STRING_length(v), (int)strlen(dns));
            assert_memory_equal(ASN1_STRING_get0_data(v), dns, strlen(dns));
        } else {
            assert_int_equal(type, GEN_IPADD);
            assert_int_equal(ASN1_STRING_length(v), i == 2 ? 8 : 32);
            assert_memory_equal(ASN1_STRING_get0_data(v), i == 2 ? ip4 : ip6, i == 2 ? 8 : 32);
        }
    }
    NAME_CONSTRAINTS_free(nc);
    X509_free(ca);
}

/* Sign a leaf for san (DNS or IP, openssl.cnf syntax "DNS:x") with the
 * CA key in ca_key_path, and verify it against ca.crt with OpenSSL's
 * verifier.  Returns the verify error (X509_V_OK when accepted). */
static int verify_forged(const struct fixture *f, const char *san, const char *host)
{
    X509 *ca = load_cert(path_in(f, "ca.crt"));
    EVP_PKEY *cakey = load_key(path_in(f, "ca/ca.key"));
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_non_null(k);
    X509 *x = X509_new();
    assert_non_null(x);
    X509_set_version(x, X509_VERSION_3);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 4242);
    X509_NAME *n = X509_NAME_new();
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)host, -1, -1, 0);
    X509_set_subject_name(x, n);
    X509_NAME_free(n);
    X509_set_issuer_name(x, X509_get_subject_name(ca));
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, k);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, ca, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_nconf_nid(NULL, &v3, NID_subject_alt_name, san);
    assert_non_null(e);
    X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    e = X509V3_EXT_nconf_nid(NULL, &v3, NID_ext_key_usage, "serverAuth");
    X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    assert_true(X509_sign(x, cakey, EVP_sha256()) > 0);

    X509_STORE *store = X509_STORE_new();
    X509_STORE_add_cert(store, ca);
    X509_STORE_CTX *vctx = X509_STORE_CTX_new();
    assert_int_equal(X509_STORE_CTX_init(vctx, store, x, NULL), 1);
    X509_STORE_CTX_set_purpose(vctx, X509_PURPOSE_SSL_SERVER);
    int ok = X509_verify_cert(vctx);
    int verr = X509_STORE_CTX_get_error(vctx);
    X509_STORE_CTX_free(vctx);
    X509_STORE_free(store);
    X509_free(x);
    EVP_PKEY_free(k);
    EVP_PKEY_free(cakey);
    X509_free(ca);
    return ok == 1 ? X509_V_OK : verr;
}

/* Whoever steals ca.key gets a CA that signs only for the names it was made
 * for: a leaf for another DNS name or address fails OpenSSL's verification
 * with X509_V_ERR_PERMITTED_VIOLATION; one for a permitted name (a
 * subdomain too) still verifies. */
static void test_ca_cannot_sign_other_names(void **state)
{
    struct fixture *f = *state;
    const char *names[] = { "gw.example", "127.0.0.1", "::1" };
    char err[512] = "";
    assert_int_equal(certs_generate(f->dir, NULL, names, 3, 30, 0, err, sizeof err), 0);
    assert_int_equal(verify_forged(f, "DNS:bank.example", "bank.example"),
                     X509_V_ERR_PERMITTED_VIOLATION);
    assert_int_equal(verify_forged(f, "DNS:gw.example.evil", "gw.example.evil"),
                     X509_V_ERR_PERMITTED_VIOLATION);
    /* (a permitted CN: the address SAN alone is what is refused) */
    assert_int_equal(verify_forged(f, "IP:10.0.0.1", "gw.example"),
                     X509_V_ERR_PERMITTED_VIOLATION);
    assert_int_equal(verify_forged(f, "IP:127.0.0.2", "gw.example"),
                     X509_V_ERR_PERMITTED_VIOLATION);
    assert_int_equal(verify_forged(f, "IP:::2", "gw.example"), X509_V_ERR_PERMITTED_VIOLATION);
    /* the permitted ones pass: the test above is not failing for another reason */
    assert_int_equal(verify_forged(f, "DNS:gw.example", "gw.example"), X509_V_OK);
    assert_int_equal(verify_forged(f, "DNS:a.gw.example", "a.gw.example"), X509_V_OK);
    assert_int_equal(verify_forged(f, "IP:127.0.0.1", "gw.example"), X509_V_OK);

    /* an address first: the server certificate still verifies (its CN is
     * the first DNS name, not the address) */
    char sub[PATH_MAX];
    snprintf(sub, sizeof sub, "%s/ipfirst", f->dir);
    const char *ipfirst[] = { "192.0.2.7", "gw.example" };
    assert_int_equal(certs_generate(sub, NULL, ipfirst, 2, 30, 0, err, sizeof err), 0);
    X509 *ca = load_cert(path_in(f, "ipfirst/ca.crt"));
    X509 *srv = load_cert(path_in(f, "ipfirst/server.crt"));
    X509_STORE *store = X509_STORE_new();
    X509_STORE_add_cert(store, ca);
    X509_STORE_CTX *vctx = X509_STORE_CTX_new();
    assert_int_equal(X509_STORE_CTX_init(vctx, store, srv, NULL), 1);
    X509_STORE_CTX_set_purpose(vctx, X509_PURPOSE_SSL_SERVER);
    X509_VERIFY_PARAM_set1_ip_asc(X509_STORE_CTX_get0_param(vctx), "192.0.2.7");
    if (X509_verify_cert(vctx) != 1)
        fail_msg("verify: %s", X509_verify_cert_error_string(X509_STORE_CTX_get_error(vctx)));
    X509_STORE_CTX_free(vctx);
    X509_STORE_free(store);
    X509_free(ca);
    X509_free(srv);
}

/* ca.key is written to DIR/ca/ (0700), never to the server's directory;
 * --ca-dir puts it elsewhere; and a group/world-accessible CA directory is
 * refused. */
static void test_ca_key_not_in_server_dir(void **state)
{
    struct fixture *f = *state;
    gen_default(f);
    assert_false(exists(path_in(f, "ca.key")));
    assert_true(exists(path_in(f, "ca/ca.key")));
    assert_int_equal(mode_of(path_in(f, "ca")), 0700);
    assert_int_equal(count_entries(path_in(f, "ca")), 1);
    char found[PATH_MAX];
    assert_int_equal(certs_ca_key_beside(path_in(f, "server.key"), found, sizeof found), 0);

    char srv[PATH_MAX], cad[PATH_MAX], err[512] = "";
    snprintf(srv, sizeof srv, "%s/srv", f->dir);
    snprintf(cad, sizeof cad, "%s/offline", f->dir);
    assert_int_equal(certs_generate(srv, cad, default_names, 3, 30, 0, err, sizeof err), 0);
    assert_int_equal(count_entries(srv), 3);       /* ca.crt server.crt server.key */
    assert_true(exists(path_in(f, "offline/ca.key")));
    assert_int_equal(mode_of(cad), 0700);

    /* the old layout (or a hand-made one) is detected */
    write_file(path_in(f, "srv/ca.key"), "old\n");
    assert_int_equal(certs_ca_key_beside(path_in(f, "srv/server.key"), found, sizeof found), 1);
    assert_string_equal(found, path_in(f, "srv/ca.key"));

    snprintf(cad, sizeof cad, "%s/open", f->dir);
    assert_int_equal(mkdir(cad, 0755), 0);
    assert_int_equal(chmod(cad, 0755), 0);
    snprintf(srv, sizeof srv, "%s/srv2", f->dir);
    assert_int_equal(certs_generate(srv, cad, default_names, 3, 30, 0, err, sizeof err), -1);
    assert_non_null(strstr(err, "accessible to others"));
    assert_int_equal(count_entries(cad), 0);
}

/* --------------------------------------------------- certificate content */

static void test_chain_verifies(void **state)
{
    struct fixture *f = *state;
    gen_default(f);
    X509 *ca = load_cert(path_in(f, "ca.crt"));
    X509 *srv = load_cert(path_in(f, "server.crt"));
    X509_STORE *store = X509_STORE_new();
    assert_int_equal(X509_STORE_add_cert(store, ca), 1);
    X509_STORE_CTX *vctx = X509_STORE_CTX_new();
    assert_int_equal(X509_STORE_CTX_init(vctx, store, srv, NULL), 1);
    X509_STORE_CTX_set_purpose(vctx, X509_PURPOSE_SSL_SERVER);
    X509_VERIFY_PARAM *vp = X509_STORE_CTX_get0_param(vctx);
    X509_VERIFY_PARAM_set_flags(vp, X509_V_FLAG_X509_STRICT);
    assert_int_equal(X509_VERIFY_PARAM_set1_host(vp, "localhost", 0), 1);
    int ok = X509_verify_cert(vctx);
    if (ok != 1)
        fail_msg("verify: %s",
                 X509_verify_cert_error_string(X509_STORE_CTX_get_error(vctx)));
    X509_STORE_CTX_free(vctx);

    /* A certificate from another run's CA must not verify against this one. */
    char other[PATH_MAX], err[512];
    snprintf(other, sizeof other, "%s/other", f->dir);
    assert_int_equal(certs_generate(other, NULL, default_names, 3, 30, 0, err, sizeof err), 0);
    snprintf(other, sizeof other, "%s/other/server.crt", f->dir);
    X509 *foreign = load_cert(other);
    vctx = X509_STORE_CTX_new();
    assert_int_equal(X509_STORE_CTX_init(vctx, store, foreign, NULL), 1);
    assert_int_not_equal(X509_verify_cert(vctx), 1);
    X509_STORE_CTX_free(vctx);

    X509_free(foreign);
    X509_STORE_free(store);
    X509_free(ca);
    X509_free(srv);
}

static void test_sans_and_cn(void **state)
{
    struct fixture *f = *state;
    /* Duplicates in any spelling collapse to one SAN. */
    const char *names[] = { "localhost", "127.0.0.1", "::1", "LOCALHOST", "0::1", "127.0.0.1" };
    char err[512] = "";
    assert_int_equal(certs_generate(f->dir, NULL, names, 6, 30, 0, err, sizeof err), 0);
    X509 *srv = load_cert(path_in(f, "server.crt"));

    GENERAL_NAMES *gens = X509_get_ext_d2i(srv, NID_subject_alt_name, NULL, NULL);
    assert_non_null(gens);
    assert_int_equal(sk_GENERAL_NAME_num(gens), 3);
    int dns = 0, ip4 = 0, ip6 = 0;
    static const unsigned char v4[4] = { 127, 0, 0, 1 };
    static const unsigned char v6[16] = { [15] = 1 };
    for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type == GEN_DNS) {
            const ASN1_IA5STRING *s = g->d.dNSName;
            dns += ASN1_STRING_length(s) == 9 && memcmp(ASN1_STRING_get0_data(s),
                                                         "localhost", 9) == 0;
        } else if (g->type == GEN_IPADD) {
            const ASN1_OCTET_STRING *o = g->d.iPAddress;
            int l = ASN1_STRING_length(o);
            ip4 += l == 4 && memcmp(ASN1_STRING_get0_data(o), v4, 4) == 0;
            ip6 += l == 16 && memcmp(ASN1_STRING_get0_data(o), v6, 16) == 0;
        }
    }
    GENERAL_NAMES_free(gens);
    assert_int_equal(dns, 1);
    assert_int_equal(ip4, 1);
    assert_int_equal(ip6, 1);
    assert_int_equal(X509_check_host(srv, "localhost", 0, 0, NULL), 1);
    assert_int_equal(X509_check_ip_asc(srv, "127.0.0.1", 0), 1);
    assert_int_equal(X509_check_ip_asc(srv, "::1", 0), 1);
    assert_int_not_equal(X509_check_host(srv, "example.com", 0, 0, NULL), 1);

    char cn[128] = "";
    X509_NAME_get_text_by_NID(X509_get_subject_name(srv), NID_commonName, cn, sizeof cn);
    assert_string_equal(cn, "localhost");
    X509_free(srv);
}

static void test_keys_are_p256(void **state)
{
    struct fixture *f = *state;
    gen_default(f);
    const char *keys[] = { "ca/ca.key", "server.key" };
    for (int i = 0; i < 2; i++) {
        EVP_PKEY *k = load_key(path_in(f, keys[i]));
        assert_true(EVP_PKEY_is_a(k, "EC"));
        char group[64] = "";
        size_t gl = 0;
        assert_int_equal(EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                                        sizeof group, &gl), 1);
        assert_string_equal(group, "prime256v1");
        assert_int_equal(EVP_PKEY_get_bits(k), 256);
        EVP_PKEY_free(k);
    }
    X509 *srv = load_cert(path_in(f, "server.crt"));
    X509 *ca = load_cert(path_in(f, "ca.crt"));
    EVP_PKEY *sk = load_key(path_in(f, "server.key"));
    EVP_PKEY *ck = load_key(path_in(f, "ca/ca.key"));
    assert_int_equal(X509_check_private_key(srv, sk), 1);
    assert_int_equal(X509_check_private_key(ca, ck), 1);
    assert_int_equal(X509_get_signature_nid(srv), NID_ecdsa_with_SHA256);
    assert_int_equal(X509_get_signature_nid(ca), NID_ecdsa_with_SHA256);
    EVP_PKEY_free(sk);
    EVP_PKEY_free(ck);
    X509_free(srv);
    X509_free(ca);
}

static void test_extensions_serial_validity(void **state)
{
    struct fixture *f = *state;
    const char *names[] = { "localhost" };
    char err[512] = "";
    assert_int_equal(certs_generate(f->dir, NULL, names, 1, 100, 0, err, sizeof err), 0);
    X509 *ca = load_cert(path_in(f, "ca.crt"));
    X509 *srv = load_cert(path_in(f, "server.crt"));

    assert_int_equal(X509_get_version(ca), X509_VERSION_3);
    assert_int_equal(X509_get_version(srv), X509_VERSION_3);
    assert_int_not_equal(X509_check_ca(ca), 0);
    assert_int_equal(X509_check_ca(srv), 0);
    int crit = -1;
    BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(ca, NID_basic_constraints, &crit, NULL);
    assert_non_null(bc);
    assert_true(bc->ca);
    assert_int_equal(crit, 1);
    BASIC_CONSTRAINTS_free(bc);
    bc = X509_get_ext_d2i(srv, NID_basic_constraints, &crit, NULL);
    assert_non_null(bc);
    assert_false(bc->ca);
    BASIC_CONSTRAINTS_free(bc);

    assert_int_equal(X509_get_key_usage(ca), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
    assert_int_equal(X509_get_key_usage(srv), KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT);
    assert_int_equal(X509_get_extended_key_usage(srv), XKU_SSL_SERVER);

    const ASN1_OCTET_STRING *ca_ski = X509_get0_subject_key_id(ca);
    const ASN1_OCTET_STRING *srv_aki = X509_get0_authority_key_id(srv);
    assert_non_null(ca_ski);
    assert_non_null(srv_aki);
    assert_int_equal(ASN1_OCTET_STRING_cmp(ca_ski, srv_aki), 0);
    assert_non_null(X509_get0_subject_key_id(srv));

    /* Serial: positive, 16 bytes, different between the two. */
    const ASN1_INTEGER *s1 = X509_get0_serialNumber(ca);
    const ASN1_INTEGER *s2 = X509_get0_serialNumber(srv);
    BIGNUM *b1 = ASN1_INTEGER_to_BN(s1, NULL), *b2 = ASN1_INTEGER_to_BN(s2, NULL);
    assert_false(BN_is_negative(b1));
    assert_int_equal(BN_num_bytes(b1), 16);
    assert_int_equal(BN_num_bytes(b2), 16);
    assert_int_not_equal(BN_cmp(b1, b2), 0);
    BN_free(b1);
    BN_free(b2);

    /* notBefore an hour back, notAfter 100 days on. */
    int day = 0, sec = 0;
    assert_int_equal(ASN1_TIME_diff(&day, &sec, X509_get0_notBefore(srv), NULL), 1);
    long back = (long)day * 86400 + sec;
    assert_true(back >= 3590 && back <= 3700);
    assert_int_equal(ASN1_TIME_diff(&day, &sec, NULL, X509_get0_notAfter(srv)), 1);
    long fwd = (long)day * 86400 + sec;
    assert_true(fwd >= 100L * 86400 - 100 && fwd <= 100L * 86400);

    X509_free(ca);
    X509_free(srv);
}

static void test_fingerprint(void **state)
{
    struct fixture *f = *state;
    gen_default(f);
    char fp[128], err[512];
    assert_int_equal(certs_fingerprint(path_in(f, "ca.crt"), fp, sizeof fp, err, sizeof err), 0);
    X509 *ca = load_cert(path_in(f, "ca.crt"));
    unsigned char md[32];
    unsigned int l = 0;
    X509_digest(ca, EVP_sha256(), md, &l);
    X509_free(ca);
    char want[128];
    for (unsigned i = 0; i < l; i++)
        snprintf(want + i * 3, sizeof want - i * 3, "%02X%s", md[i], i + 1 < l ? ":" : "");
    assert_string_equal(fp, want);
    assert_int_equal(strlen(fp), 95);
    assert_int_equal(certs_fingerprint(path_in(f, "nope.crt"), fp, sizeof fp, err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "nope.crt: No such file or directory"));
}

/* ------------------------------------------------------ server SSL_CTX */

static void test_server_ctx_settings(void **state)
{
    struct fixture *f = *state;
    gen_default(f);
    char err[512] = "";
    SSL_CTX *ctx = certs_server_ctx(path_in(f, "server.crt"), path_in(f, "server.key"), err,
                                    sizeof err);
    if (!ctx)
        fail_msg("certs_server_ctx: %s", err);
    assert_int_equal(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);
    uint64_t opts = SSL_CTX_get_options(ctx);
    assert_true(opts & SSL_OP_NO_RENEGOTIATION);
    assert_true(opts & SSL_OP_CIPHER_SERVER_PREFERENCE);
    assert_true(opts & SSL_OP_NO_COMPRESSION);
    assert_int_equal(SSL_CTX_get_num_tickets(ctx), 0);
    assert_int_equal(SSL_CTX_get_session_cache_mode(ctx), SSL_SESS_CACHE_OFF);
    long mode = SSL_CTX_get_mode(ctx);
    assert_true(mode & SSL_MODE_ENABLE_PARTIAL_WRITE);
    assert_true(mode & SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    assert_true(mode & SSL_MODE_RELEASE_BUFFERS);
    /* No TLS 1.2 suite without ECDHE or without AEAD. */
    STACK_OF(SSL_CIPHER) *ciphers = SSL_CTX_get_ciphers(ctx);
    int tls12 = 0;
    for (int i = 0; i < sk_SSL_CIPHER_num(ciphers); i++) {
        const SSL_CIPHER *c = sk_SSL_CIPHER_value(ciphers, i);
        if (strcmp(SSL_CIPHER_get_version(c), "TLSv1.3") == 0)
            continue;
        tls12++;
        assert_int_equal(SSL_CIPHER_get_kx_nid(c), NID_kx_ecdhe);
        assert_int_not_equal(SSL_CIPHER_get_auth_nid(c), NID_auth_null);
        assert_true(SSL_CIPHER_is_aead(c));
    }
    assert_true(tls12 > 0);
    SSL_CTX_free(ctx);
}

static void test_server_ctx_mismatched_key(void **state)
{
    struct fixture *f = *state;
    gen_default(f);
    char err[512] = "", want[PATH_MAX * 2 + 64];
    SSL_CTX *ctx = certs_server_ctx(path_in(f, "server.crt"), path_in(f, "ca/ca.key"), err,
                                    sizeof err);
    assert_null(ctx);
    snprintf(want, sizeof want, "%s: key does not match certificate %s",
             path_in(f, "ca/ca.key"), path_in(f, "server.crt"));
    assert_string_equal(err, want);
    assert_int_equal(ERR_peek_error(), 0);

    /* A key of another type (RSA) for the EC certificate. */
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    assert_non_null(rsa);
    FILE *fp = fopen(path_in(f, "rsa.key"), "w");
    assert_non_null(fp);
    assert_int_equal(PEM_write_PrivateKey(fp, rsa, NULL, NULL, 0, NULL, NULL), 1);
    fclose(fp);
    EVP_PKEY_free(rsa);
    ctx = certs_server_ctx(path_in(f, "server.crt"), path_in(f, "rsa.key"), err, sizeof err);
    assert_null(ctx);
    snprintf(want, sizeof want, "%s: key does not match certificate %s",
             path_in(f, "rsa.key"), path_in(f, "server.crt"));
    assert_string_equal(err, want);
    assert_int_equal(ERR_peek_error(), 0);
}

static void test_server_ctx_missing_and_bad_files(void **state)
{
    struct fixture *f = *state;
    gen_default(f);
    char err[512] = "", want[PATH_MAX + 64];

    assert_null(certs_server_ctx(path_in(f, "nope.crt"), path_in(f, "server.key"), err,
                                 sizeof err));
    snprintf(want, sizeof want, "%s: No such file or directory", path_in(f, "nope.crt"));
    assert_string_equal(err, want);

    assert_null(certs_server_ctx(path_in(f, "server.crt"), path_in(f, "nope.key"), err,
                                 sizeof err));
    snprintf(want, sizeof want, "%s: No such file or directory", path_in(f, "nope.key"));
    assert_string_equal(err, want);

    assert_null(certs_server_ctx(f->dir, path_in(f, "server.key"), err, sizeof err));
    snprintf(want, sizeof want, "%s: Is a directory", f->dir);
    assert_string_equal(err, want);

    write_file(path_in(f, "junk.crt"), "this is not PEM\n");
    assert_null(certs_server_ctx(path_in(f, "junk.crt"), path_in(f, "server.key"), err,
                                 sizeof err));
    snprintf(want, sizeof want, "%s: cannot load certificate: no PEM certificate in the file",
             path_in(f, "junk.crt"));
    assert_string_equal(err, want);

    /* A certificate where the key should be. */
    assert_null(certs_server_ctx(path_in(f, "server.crt"), path_in(f, "ca.crt"), err,
                                 sizeof err));
    snprintf(want, sizeof want, "%s: cannot load private key: no PEM private key in the file",
             path_in(f, "ca.crt"));
    assert_string_equal(err, want);

    assert_null(certs_server_ctx("", path_in(f, "server.key"), err, sizeof err));
    assert_int_equal(ERR_peek_error(), 0);
}

/* An encrypted key fails at once with a message; it never prompts. */
static void test_server_ctx_encrypted_key(void **state)
{
    struct fixture *f = *state;
    gen_default(f);
    EVP_PKEY *k = load_key(path_in(f, "server.key"));
    FILE *fp = fopen(path_in(f, "enc.key"), "w");
    assert_non_null(fp);
    assert_int_equal(PEM_write_PKCS8PrivateKey(fp, k, EVP_aes_256_cbc(), "secret", 6, NULL,
                                               NULL), 1);
    fclose(fp);
    EVP_PKEY_free(k);
    char err[512] = "", want[PATH_MAX + 64];
    assert_null(certs_server_ctx(path_in(f, "server.crt"), path_in(f, "enc.key"), err,
                                 sizeof err));
    snprintf(want, sizeof want, "%s: cannot load private key: the key is encrypted (vmgate "
             "needs an unencrypted key)", path_in(f, "enc.key"));
    assert_string_equal(err, want);
    assert_int_equal(ERR_peek_error(), 0);
}

/* ------------------------------------------------- in-process handshakes */

static int g_new_sessions;
/* OpenSSL's reason for the server side's handshake failure, if any. */
static char g_srv_reason[128];

static int count_new_session(SSL *ssl, SSL_SESSION *sess)
{
    (void)ssl; (void)sess;
    g_new_sessions++;
    return 0; /* we did not keep a reference */
}

struct tls_pair {
    int fds[2];
    SSL *c, *s;
};

/* Drive client and server over a non-blocking socketpair in one thread.
 * Returns 1 when both sides completed the handshake, 0 otherwise. */
static int handshake(struct tls_pair *p, SSL_CTX *sctx, SSL_CTX *cctx, const char *host)
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, p->fds),
                     0);
    p->c = SSL_new(cctx);
    p->s = SSL_new(sctx);
    assert_non_null(p->c);
    assert_non_null(p->s);
    SSL_set_fd(p->c, p->fds[0]);
    SSL_set_fd(p->s, p->fds[1]);
    if (host) {
        assert_int_equal(SSL_set1_host(p->c, host), 1);
        assert_int_equal(SSL_set_tlsext_host_name(p->c, host), 1);
    }
    int cdone = 0, sdone = 0, cfail = 0, sfail = 0;
    g_srv_reason[0] = '\0';
    ERR_clear_error();
    for (int i = 0; i < 1000 && !((cdone || cfail) && (sdone || sfail)); i++) {
        if (!cdone && !cfail) {
            int r = SSL_connect(p->c);
            if (r == 1)
                cdone = 1;
            else {
                int e = SSL_get_error(p->c, r);
                if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
                    cfail = 1;
            }
        }
        if (!sdone && !sfail) {
            int r = SSL_accept(p->s);
            if (r == 1)
                sdone = 1;
            else {
                int e = SSL_get_error(p->s, r);
                if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
                    const char *why = ERR_reason_error_string(ERR_peek_last_error());
                    snprintf(g_srv_reason, sizeof g_srv_reason, "%s", why ? why : "?");
                    sfail = 1;
                }
            }
        }
    }
    ERR_clear_error();
    return cdone && sdone;
}

static void pair_free(struct tls_pair *p)
{
    SSL_free(p->c);
    SSL_free(p->s);
    close(p->fds[0]);
    close(p->fds[1]);
}

/* Read exactly n bytes from ssl, pumping at most a few hundred times. */
static int read_n(SSL *ssl, char *buf, int n)
{
    int got = 0;
    for (int i = 0; i < 500 && got < n; i++) {
        int r = SSL_read(ssl, buf + got, n - got);
        if (r > 0)
            got += r;
        else if (SSL_get_error(ssl, r) != SSL_ERROR_WANT_READ)
            return -1;
    }
    return got;
}

static SSL_CTX *client_ctx(const struct fixture *f, int max_version)
{
    SSL_CTX *c = SSL_CTX_new(TLS_client_method());
    assert_non_null(c);
    assert_int_equal(SSL_CTX_load_verify_locations(c, path_in(f, "ca.crt"), NULL), 1);
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
    if (max_version)
        assert_int_equal(SSL_CTX_set_max_proto_version(c, max_version), 1);
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_CLIENT);
    SSL_CTX_sess_set_new_cb(c, count_new_session);
    return c;
}

static SSL_CTX *server_ctx(const struct fixture *f)
{
    char err[512] = "";
    SSL_CTX *s = certs_server_ctx(path_in(f, "server.crt"), path_in(f, "server.key"), err,
                                  sizeof err);
    if (!s)
        fail_msg("certs_server_ctx: %s", err);
    return s;
}

/* Send "ping" server->client and "pong" back, so the client processes any
 * post-handshake message (NewSessionTicket) the server sent. */
static void exchange(struct tls_pair *p)
{
    char buf[8] = "";
    assert_int_equal(SSL_write(p->s, "ping", 4), 4);
    assert_int_equal(read_n(p->c, buf, 4), 4);
    assert_memory_equal(buf, "ping", 4);
    assert_int_equal(SSL_write(p->c, "pong", 4), 4);
    assert_int_equal(read_n(p->s, buf, 4), 4);
    assert_memory_equal(buf, "pong", 4);
}

static void test_handshake_tls13(void **state)
{
    struct fixture *f = *state;
    gen_default(f);
    SSL_CTX *sctx = server_ctx(f), *cctx = client_ctx(f, 0);
    struct tls_pair p;
    g_new_sessions = 0;
    assert_int_equal(handshake(&p, sctx, cctx, "localhost"), 1);
    assert_int_equal(SSL_version(p.c), TLS1_3_VERSION);
    assert_int_equal(SSL_get_verify_result(p.c), X509_V_OK);
    assert_string_equal(SSL_get0_peername(p.c), "localhost");
    exchange(&p);
    /* Reference/vnc.md 1a: no session tickets, or TigerVNC 1.12 hangs. */
    assert_int_equal(g_new_sessions, 0);
    pair_free(&p);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
}

/* Control for the ticket check above: a server with OpenSSL's default
 * ticket setting does make the client see a new session. */
static void test_ticket_check_detects_tickets(void **state)
{
    struct fixture *f = *state;
    gen_default(f);
    SSL_CTX *sctx = server_ctx(f), *cctx = client_ctx(f, 0);
    assert_int_equal(SSL_CTX_set_num_tickets(sctx, 2), 1);
    SSL_CTX_set_session_cache_mode(sctx, SSL_SESS_CACHE_SERVER);
    struct tls_pair p;
    g_new_sessions = 0;
    assert_int_equal(handshake(&p, sctx, cctx, "localhost"), 1);
    exchange(&p);
    assert_true(g_new_sessions > 0);
    pair_free(&p);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
}

static void test_handshake_tls12(void **state)
{
    struct fixture *f = *state;
    gen_default(f);
    SSL_CTX *sctx = server_ctx(f), *cctx = client_ctx(f, TLS1_2_VERSION);
    struct tls_pair p;
    g_new_sessions = 0;
    assert_int_equal(handshake(&p, sctx, cctx, "127.0.0.1"), 1);
    assert_int_equal(SSL_version(p.c), TLS1_2_VERSION);
    const SSL_CIPHER *c = SSL_get_current_cipher(p.c);
    assert_int_equal(SSL_CIPHER_get_kx_nid(c), NID_kx_ecdhe);
    assert_true(SSL_CIPHER_is_aead(c));
    exchange(&p);
    /* No TLS 1.2 ticket either. */
    SSL_SESSION *sess = SSL_get1_session(p.c);
    assert_non_null(sess);
    assert_false(SSL_SESSION_has_ticket(sess));
    SSL_SESSION_free(sess);
    pair_free(&p);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
}

static void test_handshake_wrong_host_fails(void **state)
{
    struct fixture *f = *state;
    gen_default(f);
    SSL_CTX *sctx = server_ctx(f), *cctx = client_ctx(f, 0);
    struct tls_pair p;
    assert_int_equal(handshake(&p, sctx, cctx, "evil.example"), 0);
    assert_int_equal(SSL_get_verify_result(p.c), X509_V_ERR_HOSTNAME_MISMATCH);
    pair_free(&p);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
}

static void test_handshake_untrusted_ca_fails(void **state)
{
    struct fixture *f = *state;
    gen_default(f);
    /* The client trusts a CA from another run. */
    struct fixture other;
    int n = snprintf(other.dir, sizeof other.dir, "%s/other", f->dir);
    assert_true(n > 0 && (size_t)n < sizeof other.dir);
    char err[512];
    assert_int_equal(certs_generate(other.dir, NULL, default_names, 3, 30, 0, err, sizeof err), 0);
    SSL_CTX *sctx = server_ctx(f), *cctx = client_ctx(&other, 0);
    struct tls_pair p;
    assert_int_equal(handshake(&p, sctx, cctx, "localhost"), 0);
    assert_int_not_equal(SSL_get_verify_result(p.c), X509_V_OK);
    pair_free(&p);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
}

static void test_handshake_tls11_fails(void **state)
{
    struct fixture *f = *state;
    gen_default(f);
    SSL_CTX *sctx = server_ctx(f), *cctx = client_ctx(f, TLS1_1_VERSION);
    /* Security level 0 so the client really offers TLS 1.0/1.1 and it is the
     * server that refuses. */
    assert_int_equal(SSL_CTX_set_min_proto_version(cctx, TLS1_VERSION), 1);
    assert_int_equal(SSL_CTX_set_cipher_list(cctx, "DEFAULT:@SECLEVEL=0"), 1);
    struct tls_pair p;
    assert_int_equal(handshake(&p, sctx, cctx, "localhost"), 0);
    assert_int_equal(SSL_is_init_finished(p.s), 0);
    assert_string_equal(g_srv_reason, "unsupported protocol");
    pair_free(&p);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
}

static void test_handshake_anull_fails(void **state)
{
    struct fixture *f = *state;
    gen_default(f);
    SSL_CTX *sctx = server_ctx(f), *cctx = client_ctx(f, TLS1_2_VERSION);
    SSL_CTX_set_verify(cctx, SSL_VERIFY_NONE, NULL);
    assert_int_equal(SSL_CTX_set_cipher_list(cctx, "aNULL:@SECLEVEL=0"), 1);
    struct tls_pair p;
    assert_int_equal(handshake(&p, sctx, cctx, NULL), 0);
    assert_int_equal(SSL_is_init_finished(p.s), 0);
    assert_string_equal(g_srv_reason, "no shared cipher");
    pair_free(&p);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
}

/* ------------------------------------------------------------------ CLI */

struct cli_result {
    int rc;
    char *out, *err;
};

/* Run certs_cmd with stdout and stderr captured into files. */
static struct cli_result run_cli(const struct fixture *f, int argc, char **argv)
{
    struct cli_result r;
    char po[PATH_MAX], pe[PATH_MAX];
    snprintf(po, sizeof po, "%s/.stdout", f->dir);
    snprintf(pe, sizeof pe, "%s/.stderr", f->dir);
    fflush(stdout);
    fflush(stderr);
    int so = dup(1), se = dup(2);
    int fo = open(po, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int fe = open(pe, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(so >= 0 && se >= 0 && fo >= 0 && fe >= 0);
    dup2(fo, 1);
    dup2(fe, 2);
    r.rc = certs_cmd(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(so, 1);
    dup2(se, 2);
    close(so);
    close(se);
    close(fo);
    close(fe);
    r.out = slurp(po, NULL);
    r.err = slurp(pe, NULL);
    unlink(po);
    unlink(pe);
    assert_non_null(r.out);
    assert_non_null(r.err);
    return r;
}

static void cli_free(struct cli_result *r)
{
    free(r->out);
    free(r->err);
}

#define RUN(f, ...)                                                                    \
    ({                                                                                 \
        char *av_[] = { __VA_ARGS__, NULL };                                          \
        run_cli((f), (int)(sizeof av_ / sizeof av_[0]) - 1, av_);                      \
    })

static void test_cli_usage_errors(void **state)
{
    struct fixture *f = *state;
    char sub[PATH_MAX];
    snprintf(sub, sizeof sub, "%s/d", f->dir);
    struct cli_result r;

    r = run_cli(f, 0, (char *[]){ NULL });
    assert_int_equal(r.rc, 2);
    assert_non_null(strstr(r.err, "usage:"));
    cli_free(&r);

    r = RUN(f, "frob");
    assert_int_equal(r.rc, 2);
    assert_non_null(strstr(r.err, "vmgate certs: unknown subcommand 'frob'"));
    assert_non_null(strstr(r.err, "usage:"));
    cli_free(&r);

    r = RUN(f, "init");
    assert_int_equal(r.rc, 2);
    assert_non_null(strstr(r.err, "vmgate certs: --dir is required"));
    cli_free(&r);

    r = RUN(f, "init", "--dir");
    assert_int_equal(r.rc, 2);
    assert_non_null(strstr(r.err, "--dir needs a value"));
    cli_free(&r);

    const char *bad_days[] = { "0", "36501", "12x", "", "-5" };
    for (size_t i = 0; i < sizeof bad_days / sizeof bad_days[0]; i++) {
        r = RUN(f, "init", "--dir", sub, "--days", (char *)bad_days[i]);
        assert_int_equal(r.rc, 2);
        assert_non_null(strstr(r.err, "vmgate certs: --days"));
        cli_free(&r);
    }

    r = RUN(f, "init", "--dir", sub, "--name", "a b");
    assert_int_equal(r.rc, 2);
    assert_non_null(strstr(r.err, "vmgate certs: --name: not a valid DNS name or IP address"));
    cli_free(&r);

    r = RUN(f, "init", "--dir", sub, "--name", "a,,b");
    assert_int_equal(r.rc, 2);
    cli_free(&r);

    r = RUN(f, "init", "--dir", sub, "--bogus");
    assert_int_equal(r.rc, 2);
    assert_non_null(strstr(r.err, "unknown option '--bogus'"));
    cli_free(&r);

    r = RUN(f, "init", "--dir", sub, "extra");
    assert_int_equal(r.rc, 2);
    cli_free(&r);

    /* Nothing was created by any of these. */
    assert_false(exists(sub));

    r = RUN(f, "init", "--help");
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "usage: vmgate certs init --dir DIR"));
    assert_string_equal(r.err, "");
    cli_free(&r);

    r = RUN(f, "--help");
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "--force"));
    cli_free(&r);
}

static void test_cli_init(void **state)
{
    struct fixture *f = *state;
    char sub[PATH_MAX], want[PATH_MAX + 64], fp[128], err[512];
    snprintf(sub, sizeof sub, "%s/tls", f->dir);
    struct cli_result r = RUN(f, "init", "--dir", sub, "--name", "gw.example, 192.0.2.7",
                              "--name=::1", "--days=10");
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.err, "");
    const char *files[] = { "ca.crt", "ca/ca.key", "server.crt", "server.key" };
    for (int i = 0; i < 4; i++) {
        snprintf(want, sizeof want, "wrote %s/%s", sub, files[i]);
        assert_non_null(strstr(r.out, want));
    }
    assert_non_null(strstr(r.out, "DNS:gw.example, IP:192.0.2.7, IP:::1"));
    snprintf(want, sizeof want, "%s/ca.crt", sub);
    assert_int_equal(certs_fingerprint(want, fp, sizeof fp, err, sizeof err), 0);
    assert_non_null(strstr(r.out, fp));
    assert_non_null(strstr(r.out, "CA SHA-256 fingerprint: "));
    cli_free(&r);

    snprintf(want, sizeof want, "%s/server.crt", sub);
    X509 *srv = load_cert(want);
    assert_int_equal(X509_check_host(srv, "gw.example", 0, 0, NULL), 1);
    assert_int_equal(X509_check_ip_asc(srv, "192.0.2.7", 0), 1);
    assert_int_equal(X509_check_ip_asc(srv, "::1", 0), 1);
    int day = 0, sec = 0;
    ASN1_TIME_diff(&day, &sec, NULL, X509_get0_notAfter(srv));
    assert_true(day == 9 || day == 10);
    X509_free(srv);

    /* Again: refused, exit 1, files unchanged. */
    char *before = slurp(want, NULL);
    r = RUN(f, "init", "--dir", sub);
    assert_int_equal(r.rc, 1);
    char msg[PATH_MAX + 96];
    snprintf(msg, sizeof msg, "vmgate certs: %s/ca.crt exists (use --force to overwrite)\n",
             sub);
    assert_string_equal(r.err, msg);
    assert_string_equal(r.out, "");
    cli_free(&r);
    char *after = slurp(want, NULL);
    assert_string_equal(before, after);
    free(after);

    r = RUN(f, "init", "--dir", sub, "--force");
    assert_int_equal(r.rc, 0);
    cli_free(&r);
    after = slurp(want, NULL);
    assert_string_not_equal(before, after);
    free(after);
    free(before);
}


/* `certs show --dir DIR` prints the server certificate's fingerprint exactly
 * as `openssl x509 -fingerprint -sha256` does, its names and validity; -c
 * FILE finds the certificate through cert = in the config. */
static void test_cli_show(void **state)
{
    struct fixture *f = *state;
    gen_default(f);
    struct cli_result r = RUN(f, "show", "--dir", f->dir);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.err, "");

    char cmd[PATH_MAX + 128], line[256] = "";
    snprintf(cmd, sizeof cmd, "openssl x509 -noout -fingerprint -sha256 -in %s",
             path_in(f, "server.crt"));
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    assert_non_null(fgets(line, sizeof line, p));
    assert_int_equal(pclose(p), 0);
    /* "sha256 Fingerprint=AB:CD:..." (the prefix's case varies by version) */
    char *eq = strchr(line, '=');
    assert_non_null(eq);
    eq[1 + strcspn(eq + 1, "\n")] = '\0';
    char want[256];
    snprintf(want, sizeof want, "SHA-256 fingerprint: %s\n", eq + 1);
    assert_non_null(strstr(r.out, want));
    assert_non_null(strstr(r.out, "names:       DNS:localhost, IP:127.0.0.1, IP:::1\n"));
    assert_non_null(strstr(r.out, "subject:     CN = localhost\n"));
    assert_non_null(strstr(r.out, "not after:   "));
    assert_non_null(strstr(r.out, "(29 days left)") ? "ok" : strstr(r.out, "(30 days left)"));
    assert_non_null(strstr(r.out, "CA "));
    cli_free(&r);

    char conf[PATH_MAX];
    snprintf(conf, sizeof conf, "%s/vmgate.conf", f->dir);
    char text[2 * PATH_MAX + 128];
    snprintf(text, sizeof text, "[gateway]\ncert = %s\nkey = %s\nauth = file\npasswd_file = %s\n",
             path_in(f, "server.crt"), path_in(f, "server.key"), path_in(f, "passwd"));
    write_file(conf, text);
    r = RUN(f, "show", "-c", conf);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, want));
    cli_free(&r);

    r = RUN(f, "show");
    assert_int_equal(r.rc, 2);
    cli_free(&r);
    r = RUN(f, "show", "--dir", (char *)path_in(f, "nope"));
    assert_int_equal(r.rc, 1);
    assert_non_null(strstr(r.err, "No such file or directory"));
    cli_free(&r);
}

static void test_cli_default_names(void **state)
{
    struct fixture *f = *state;
    char sub[PATH_MAX], host[256] = "";
    snprintf(sub, sizeof sub, "%s/tls", f->dir);
    struct cli_result r = RUN(f, "init", "--dir", sub);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "DNS:localhost, IP:127.0.0.1, IP:::1"));
    assert_non_null(strstr(r.out, "valid: 825 days"));
    cli_free(&r);
    snprintf(sub, sizeof sub, "%s/tls/server.crt", f->dir);
    X509 *srv = load_cert(sub);
    assert_int_equal(X509_check_host(srv, "localhost", 0, 0, NULL), 1);
    assert_int_equal(X509_check_ip_asc(srv, "127.0.0.1", 0), 1);
    assert_int_equal(X509_check_ip_asc(srv, "::1", 0), 1);
    if (gethostname(host, sizeof host) == 0 && strcmp(host, "localhost") != 0 &&
        !strchr(host, ' '))
        assert_int_equal(X509_check_host(srv, host, 0, 0, NULL), 1);
    int day = 0, sec = 0;
    ASN1_TIME_diff(&day, &sec, NULL, X509_get0_notAfter(srv));
    assert_true(day == 824 || day == 825);
    X509_free(srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_generate_files_and_modes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuse_overwrite_without_force, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuse_if_any_exists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuse_dangling_symlink, setup, teardown),
        cmocka_unit_test_setup_teardown(test_force_overwrites, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ca_name_constraints, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ca_cannot_sign_other_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ca_key_not_in_server_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chain_verifies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sans_and_cn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_are_p256, setup, teardown),
        cmocka_unit_test_setup_teardown(test_extensions_serial_validity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fingerprint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_ctx_settings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_ctx_mismatched_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_ctx_missing_and_bad_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_ctx_encrypted_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handshake_tls13, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ticket_check_detects_tickets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handshake_tls12, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handshake_wrong_host_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handshake_untrusted_ca_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handshake_tls11_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handshake_anull_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_usage_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_init, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_default_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_show, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
