/* certs/gen.c — create a private CA and a server certificate (see certs.h). */
#include "certs/certs.h"
#include "certs/certs_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* Longest CommonName X.509 allows (ub-common-name). */
#define CERTS_CN_MAX 64

/* ------------------------------------------------------------------ names */

/* Classify one --name value: an address inet_pton takes (v4 or v6), else a
 * DNS name of letters, digits, '-', '_' and dots, with non-empty labels of at
 * most 63 bytes, optionally a leading "*." wildcard label.  All-numeric
 * dotted strings ("127.1", "10.0.0") are refused: they are mistyped
 * addresses, and a DNS SAN would never match them. */
int certs_name_kind(const char *name, char *err, size_t errlen)
{
    unsigned char buf[16];
    if (!name || !*name) {
        certs_seterr(err, errlen, "empty name");
        return -1;
    }
    size_t len = strlen(name);
    if (len > CERTS_NAME_MAX) {
        certs_seterr(err, errlen, "name too long (%zu bytes, at most %d): %.40s...", len,
                     CERTS_NAME_MAX, name);
        return -1;
    }
    if (inet_pton(AF_INET, name, buf) == 1)
        return CERTS_NAME_IP4;
    if (inet_pton(AF_INET6, name, buf) == 1)
        return CERTS_NAME_IP6;

    size_t label = 0;
    int only_digits = 1;
    for (size_t i = 0; i <= len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c == '.' || c == '\0') {
            if (label == 0 || label > 63)
                goto bad;
            label = 0;
            continue;
        }
        if (c == '*') {
            /* Only as the whole first label, and never the only label. */
            if (i != 0 || name[1] != '.' || name[2] == '\0')
                goto bad;
            only_digits = 0;
        } else if (isdigit(c)) {
            /* keeps only_digits */
        } else if (isalpha(c) || c == '-' || c == '_') {
            only_digits = 0;
        } else {
            goto bad;
        }
        label++;
    }
    if (only_digits)
        goto bad;
    return CERTS_NAME_DNS;

bad:
    certs_seterr(err, errlen, "not a valid DNS name or IP address: %s", name);
    return -1;
}

/* Two names are the same SAN when they are the same address (so "::1" and
 * "0::1" match) or the same DNS name ignoring case. */
int certs_name_same(const char *a, const char *b)
{
    unsigned char ba[16], bb[16];
    if (inet_pton(AF_INET, a, ba) == 1)
        return inet_pton(AF_INET, b, bb) == 1 && memcmp(ba, bb, 4) == 0;
    if (inet_pton(AF_INET6, a, ba) == 1)
        return inet_pton(AF_INET6, b, bb) == 1 && memcmp(ba, bb, 16) == 0;
    return strcasecmp(a, b) == 0;
}

size_t certs_names_dedupe(const char **names, size_t n)
{
    size_t out = 0;
    for (size_t i = 0; i < n; i++) {
        int dup = 0;
        for (size_t j = 0; j < out && !dup; j++)
            dup = certs_name_same(names[j], names[i]);
        if (!dup)
            names[out++] = names[i];
    }
    return out;
}

/* ------------------------------------------------------------ certificates */

/* The subjectAltName list: GEN_DNS for names, GEN_IPADD (4 or 16 raw bytes)
 * for addresses.  Built as ASN.1 objects rather than a "DNS:a,IP:b" config
 * string, so no name can smuggle in a second entry.  names are already
 * checked and de-duplicated. */
static GENERAL_NAMES *certs_make_sans(const char *const *names, size_t n)
{
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    if (!gens)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char addr[16];
        int kind = certs_name_kind(names[i], NULL, 0);
        GENERAL_NAME *g = GENERAL_NAME_new();
        if (!g)
            goto fail;
        if (kind == CERTS_NAME_IP4 || kind == CERTS_NAME_IP6) {
            int v6 = kind == CERTS_NAME_IP6;
            ASN1_OCTET_STRING *o = ASN1_OCTET_STRING_new();
            if (!o || inet_pton(v6 ? AF_INET6 : AF_INET, names[i], addr) != 1 ||
                !ASN1_OCTET_STRING_set(o, addr, v6 ? 16 : 4)) {
                ASN1_OCTET_STRING_free(o);
                GENERAL_NAME_free(g);
                goto fail;
            }
            GENERAL_NAME_set0_value(g, GEN_IPADD, o);
        } else {
            ASN1_IA5STRING *s = ASN1_IA5STRING_new();
            if (!s || !ASN1_STRING_set(s, names[i], (int)strlen(names[i]))) {
                ASN1_IA5STRING_free(s);
                GENERAL_NAME_free(g);
                goto fail;
            }
            GENERAL_NAME_set0_value(g, GEN_DNS, s);
        }
        if (!sk_GENERAL_NAME_push(gens, g)) {
            GENERAL_NAME_free(g);
            goto fail;
        }
    }
    return gens;
fail:
    GENERAL_NAMES_free(gens);
    return NULL;
}

/* The CA's nameConstraints: one permitted subtree per name, so the CA can
 * sign for nothing else.  A DNS name permits itself and its subdomains
 * (RFC 5280 4.2.1.10; a "*.x" wildcard permits x), an address permits
 * exactly itself (/32 or /128).  Built as ASN.1 objects like the SANs.
 * names are already checked and de-duplicated. */
static NAME_CONSTRAINTS *certs_make_constraints(const char *const *names, size_t n)
{
    NAME_CONSTRAINTS *nc = NAME_CONSTRAINTS_new();
    if (!nc || !(nc->permittedSubtrees = sk_GENERAL_SUBTREE_new_null()))
        goto fail;
    for (size_t i = 0; i < n; i++) {
        unsigned char addr[32];
        int kind = certs_name_kind(names[i], NULL, 0);
        GENERAL_SUBTREE *st = GENERAL_SUBTREE_new();
        if (!st)
            goto fail;
        GENERAL_NAME *g = st->base;
        if (kind == CERTS_NAME_IP4 || kind == CERTS_NAME_IP6) {
            /* iPAddress subtree: address then mask, all ones */
            int len = kind == CERTS_NAME_IP6 ? 16 : 4;
            ASN1_OCTET_STRING *o = ASN1_OCTET_STRING_new();
            if (!o || inet_pton(len == 16 ? AF_INET6 : AF_INET, names[i], addr) != 1) {
                ASN1_OCTET_STRING_free(o);
                GENERAL_SUBTREE_free(st);
                goto fail;
            }
            memset(addr + len, 0xff, (size_t)len);
            if (!ASN1_OCTET_STRING_set(o, addr, 2 * len)) {
                ASN1_OCTET_STRING_free(o);
                GENERAL_SUBTREE_free(st);
                goto fail;
            }
            GENERAL_NAME_set0_value(g, GEN_IPADD, o);
        } else {
            const char *dns = strncmp(names[i], "*.", 2) == 0 ? names[i] + 2 : names[i];
            ASN1_IA5STRING *s = ASN1_IA5STRING_new();
            if (!s || !ASN1_STRING_set(s, dns, (int)strlen(dns))) {
                ASN1_IA5STRING_free(s);
                GENERAL_SUBTREE_free(st);
                goto fail;
            }
            GENERAL_NAME_set0_value(g, GEN_DNS, s);
        }
        if (!sk_GENERAL_SUBTREE_push(nc->permittedSubtrees, st)) {
            GENERAL_SUBTREE_free(st);
            goto fail;
        }
    }
    return nc;
fail:
    NAME_CONSTRAINTS_free(nc);
    return NULL;
}

/* Add one extension given in openssl.cnf syntax (constant strings only). */
static int certs_add_ext(X509 *x, X509V3_CTX *v3, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, v3, nid, value);
    if (!ext)
        return -1;
    int ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

/* 16 random bytes with the top bit cleared: a positive 128-bit (127 random
 * bits) serial, so two certificates from two runs never share issuer+serial
 * (Firefox refuses such a pair outright). */
static int certs_set_serial(X509 *x)
{
    unsigned char b[16];
    if (RAND_bytes(b, sizeof b) != 1)
        return -1;
    b[0] &= 0x7f;
    b[15] |= 0x01; /* never zero */
    BIGNUM *bn = BN_bin2bn(b, sizeof b, NULL);
    if (!bn)
        return -1;
    ASN1_INTEGER *ai = BN_to_ASN1_INTEGER(bn, NULL);
    BN_free(bn);
    if (!ai)
        return -1;
    int ok = X509_set_serialNumber(x, ai);
    ASN1_INTEGER_free(ai);
    return ok ? 0 : -1;
}

static X509_NAME *certs_make_name(const char *org, const char *cn)
{
    X509_NAME *n = X509_NAME_new();
    if (!n)
        return NULL;
    if ((org && !X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8, (const unsigned char *)org,
                                            -1, -1, 0)) ||
        !X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
                                    0)) {
        X509_NAME_free(n);
        return NULL;
    }
    return n;
}

/* One X.509 v3 certificate for key, named subject, valid from an hour ago
 * (clock skew between host and viewer) for days days.  With ca_cert NULL it
 * is the self-signed CA (signed by key itself) carrying the critical name
 * constraints nc; otherwise it is the server leaf signed by ca_key,
 * carrying sans. */
static X509 *certs_make_cert(EVP_PKEY *key, X509_NAME *subject, X509 *ca_cert, EVP_PKEY *ca_key,
                             int days, GENERAL_NAMES *sans, NAME_CONSTRAINTS *nc)
{
    X509 *x = X509_new();
    if (!x)
        return NULL;
    int is_ca = ca_cert == NULL;
    X509V3_CTX v3;

    if (!X509_set_version(x, X509_VERSION_3) || certs_set_serial(x) < 0 ||
        !X509_set_subject_name(x, subject) ||
        !X509_set_issuer_name(x, is_ca ? subject : X509_get_subject_name(ca_cert)) ||
        !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
        !X509_time_adj_ex(X509_getm_notAfter(x), days, 0, NULL) || !X509_set_pubkey(x, key))
        goto fail;

    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, is_ca ? x : ca_cert, x, NULL, NULL, 0);
    if (is_ca) {
        if (certs_add_ext(x, &v3, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") < 0 ||
            certs_add_ext(x, &v3, NID_key_usage, "critical,keyCertSign,cRLSign") < 0 ||
            certs_add_ext(x, &v3, NID_subject_key_identifier, "hash") < 0 ||
            X509_add1_ext_i2d(x, NID_name_constraints, nc, 1, X509V3_ADD_DEFAULT) != 1)
            goto fail;
    } else {
        if (certs_add_ext(x, &v3, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
            certs_add_ext(x, &v3, NID_key_usage, "critical,digitalSignature,keyEncipherment") < 0 ||
            certs_add_ext(x, &v3, NID_ext_key_usage, "serverAuth") < 0 ||
            certs_add_ext(x, &v3, NID_subject_key_identifier, "hash") < 0 ||
            certs_add_ext(x, &v3, NID_authority_key_identifier, "keyid:always") < 0 ||
            X509_add1_ext_i2d(x, NID_subject_alt_name, sans, 0, X509V3_ADD_DEFAULT) != 1)
            goto fail;
    }
    if (X509_sign(x, is_ca ? key : ca_key, EVP_sha256()) <= 0)
        goto fail;
    return x;
fail:
    X509_free(x);
    return NULL;
}

/* ------------------------------------------------------------------- files */

enum { OUT_CA_CRT, OUT_CA_KEY, OUT_SRV_CRT, OUT_SRV_KEY, OUT_N };

struct certs_out {
    const char *dir;     /* where it goes: the server's directory, or the CA's */
    const char *name;
    mode_t mode;
    BIO *bio;            /* PEM text; keys live in a secure-memory BIO */
    char path[PATH_MAX];
    char tmp[PATH_MAX];  /* with force: the temp file, "" once renamed */
    int created;         /* we made path (no force) or tmp (force) */
};

int certs_path_join(char *out, size_t outsz, const char *dir, const char *name)
{
    size_t dl = strlen(dir);
    while (dl > 1 && dir[dl - 1] == '/')
        dl--;
    int n = snprintf(out, outsz, "%.*s%s%s", (int)dl, dir, dir[dl - 1] == '/' ? "" : "/", name);
    return n < 0 || (size_t)n >= outsz ? -1 : 0;
}

static int certs_write_fd(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, buf, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        buf += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Fill an already-created fd (mode 0600 from creation) with o's PEM text,
 * set the final mode, fsync and close.  fchmod only ever sets the exact mode
 * (defeating the umask); a key is never readable by others at any moment. */
static int certs_fill(int fd, const struct certs_out *o, const char *shown, char *err,
                      size_t errlen)
{
    char *data = NULL;
    long len = BIO_get_mem_data(o->bio, &data);
    if (fchmod(fd, o->mode) < 0 || len < 0 || certs_write_fd(fd, data, (size_t)len) < 0 ||
        fsync(fd) < 0) {
        certs_seterr(err, errlen, "%s: %s", shown, strerror(errno));
        close(fd);
        return -1;
    }
    if (close(fd) < 0) {
        certs_seterr(err, errlen, "%s: %s", shown, strerror(errno));
        return -1;
    }
    return 0;
}

/* Make dir if it is missing (one level, mode exactly `mode`, whatever the
 * umask); refuse a non-directory.  With private set (the CA's directory) an
 * existing directory that others may write to or list is refused too: the
 * CA key must not sit where another user can reach it. */
static int certs_ensure_dir(const char *dir, mode_t mode, int private, char *err,
                            size_t errlen)
{
    struct stat st;
    if (stat(dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode)) {
            certs_seterr(err, errlen, "%s: %s", dir, strerror(ENOTDIR));
            return -1;
        }
        if (private && (st.st_mode & 077)) {
            certs_seterr(err, errlen, "%s: the CA key directory is accessible to others "
                         "(mode %04o; want 0700)", dir, (unsigned)(st.st_mode & 07777));
            return -1;
        }
        return 0;
    }
    if (errno != ENOENT || (mkdir(dir, mode) < 0 && errno != EEXIST) ||
        chmod(dir, mode) < 0) {
        certs_seterr(err, errlen, "%s: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

/* Write every output.  Without force each final path is created with
 * O_CREAT|O_EXCL (so a file appearing meanwhile is never clobbered) and all
 * of them are removed again if any step fails.  With force each goes to a
 * fresh temp file in the same directory first, then all are renamed over the
 * old ones; a failure before the renames leaves the old set intact. */
static int certs_write_outputs(struct certs_out *out, int force, char *err, size_t errlen)
{
    for (int i = 0; i < OUT_N; i++) {
        struct certs_out *o = &out[i];
        int fd;
        if (force) {
            char base[PATH_MAX];
            int n = snprintf(base, sizeof base, ".%s.XXXXXX", o->name);
            if (n < 0 || (size_t)n >= sizeof base ||
                certs_path_join(o->tmp, sizeof o->tmp, o->dir, base) < 0) {
                certs_seterr(err, errlen, "%s: path too long", o->dir);
                goto rollback;
            }
            fd = mkostemp(o->tmp, O_CLOEXEC); /* O_CREAT|O_EXCL, mode 0600 */
            if (fd < 0) {
                certs_seterr(err, errlen, "%s: cannot create temp file: %s", o->dir,
                             strerror(errno));
                o->tmp[0] = '\0';
                goto rollback;
            }
        } else {
            fd = open(o->path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
            if (fd < 0) {
                if (errno == EEXIST)
                    certs_seterr(err, errlen, "%s exists (use --force to overwrite)", o->path);
                else
                    certs_seterr(err, errlen, "%s: %s", o->path, strerror(errno));
                goto rollback;
            }
        }
        o->created = 1;
        if (certs_fill(fd, o, o->path, err, errlen) < 0)
            goto rollback;
    }
    if (force) {
        for (int i = 0; i < OUT_N; i++) {
            if (rename(out[i].tmp, out[i].path) < 0) {
                certs_seterr(err, errlen, "cannot rename %s to %s: %s%s", out[i].tmp,
                             out[i].path, strerror(errno),
                             i > 0 ? " (the files in the directory are now mixed; run again)"
                                   : "");
                goto rollback;
            }
            out[i].tmp[0] = '\0';
            out[i].created = 0;
        }
    }
    /* Make the new directory entries durable; failure here is harmless. */
    for (int i = 0; i < OUT_N; i++) {
        int dfd = open(out[i].dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            (void)fsync(dfd);
            close(dfd);
        }
    }
    return 0;

rollback:
    for (int i = 0; i < OUT_N; i++) {
        if (!out[i].created)
            continue;
        (void)unlink(force ? out[i].tmp : out[i].path);
        out[i].created = 0;
    }
    return -1;
}

/* ------------------------------------------------------------------ public */

/* Accepts names in any order with duplicates (they are dropped; the first
 * one also becomes the server's CN) and days in 1..36500.  Everything is
 * generated in memory before the first file is touched, so a crypto failure
 * never leaves a half-written set behind. */
int certs_generate(const char *dir, const char *ca_dir, const char *const *names,
                   size_t n_names, int days, int force, char *err, size_t errlen)
{
    char ca_dir_buf[PATH_MAX];
    int rc = -1;
    const char *uniq[CERTS_MAX_NAMES];
    size_t n = 0;
    EVP_PKEY *ca_key = NULL, *srv_key = NULL;
    X509_NAME *ca_name = NULL, *srv_name = NULL;
    X509 *ca = NULL, *srv = NULL;
    GENERAL_NAMES *sans = NULL;
    NAME_CONSTRAINTS *nc = NULL;
    struct certs_out out[OUT_N] = {
        [OUT_CA_CRT] = { .name = "ca.crt", .mode = 0644 },
        [OUT_CA_KEY] = { .name = "ca.key", .mode = 0600 },
        [OUT_SRV_CRT] = { .name = "server.crt", .mode = 0644 },
        [OUT_SRV_KEY] = { .name = "server.key", .mode = 0600 },
    };

    if (!dir || !*dir) {
        certs_seterr(err, errlen, "no directory given");
        return -1;
    }
    if (!names || n_names == 0) {
        certs_seterr(err, errlen, "no names given");
        return -1;
    }
    if (n_names > CERTS_MAX_NAMES) {
        certs_seterr(err, errlen, "too many names (%zu, at most %d)", n_names, CERTS_MAX_NAMES);
        return -1;
    }
    if (days < 1 || days > 36500) {
        certs_seterr(err, errlen, "days must be 1..36500, not %d", days);
        return -1;
    }
    for (size_t i = 0; i < n_names; i++) {
        if (certs_name_kind(names[i], err, errlen) < 0)
            return -1;
        uniq[i] = names[i];
    }
    n = certs_names_dedupe(uniq, n_names);

    /* The CA key never lies beside the server key: whoever can read the
     * server's directory (a backup, a config-management copy) must not get
     * a key that mints certificates. */
    if (!ca_dir || !*ca_dir) {
        if (certs_path_join(ca_dir_buf, sizeof ca_dir_buf, dir, CERTS_CA_SUBDIR) < 0) {
            certs_seterr(err, errlen, "%s: path too long", dir);
            return -1;
        }
        ca_dir = ca_dir_buf;
    }
    if (certs_ensure_dir(dir, 0755, 0, err, errlen) < 0)
        return -1;
    for (int i = 0; i < OUT_N; i++) {
        out[i].dir = i == OUT_CA_KEY ? ca_dir : dir;
        if (certs_path_join(out[i].path, sizeof out[i].path, out[i].dir, out[i].name) < 0) {
            certs_seterr(err, errlen, "%s: path too long", out[i].dir);
            return -1;
        }
    }
    if (!force) {
        /* Refuse before generating anything; lstat so a dangling symlink
         * counts as existing too.  The O_EXCL open later closes the race. */
        for (int i = 0; i < OUT_N; i++) {
            struct stat st;
            if (lstat(out[i].path, &st) == 0) {
                certs_seterr(err, errlen, "%s exists (use --force to overwrite)", out[i].path);
                return -1;
            }
            if (errno != ENOENT) {
                certs_seterr(err, errlen, "%s: %s", out[i].path, strerror(errno));
                return -1;
            }
        }
    }

    ERR_clear_error();
    char ca_cn[CERTS_CN_MAX + 1];
    snprintf(ca_cn, sizeof ca_cn, "vmgate CA %s", uniq[0]);
    /* The server's CN is the first DNS name: OpenSSL checks a CN that looks
     * like a host name ("127.0.0.1" does) against the CA's DNS constraints,
     * so an address there would make the chain fail whenever DNS names are
     * constrained too.  Viewers match the SANs anyway. */
    const char *srv_cn = uniq[0];
    for (size_t i = 0; i < n; i++)
        if (certs_name_kind(uniq[i], NULL, 0) == CERTS_NAME_DNS) {
            srv_cn = uniq[i];
            break;
        }
    if (strlen(srv_cn) > CERTS_CN_MAX)
        srv_cn = "vmgate server";

    ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    srv_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (!ca_key || !srv_key) {
        certs_seterr(err, errlen, "cannot generate P-256 key: %s",
                     certs_ossl_reason("unknown error"));
        goto out;
    }
    ca_name = certs_make_name("vmgate", ca_cn);
    srv_name = certs_make_name(NULL, srv_cn);
    sans = certs_make_sans(uniq, n);
    nc = certs_make_constraints(uniq, n);
    if (!ca_name || !srv_name || !sans || !nc) {
        certs_seterr(err, errlen, "cannot build certificate names: %s",
                     certs_ossl_reason("out of memory"));
        goto out;
    }
    ca = certs_make_cert(ca_key, ca_name, NULL, NULL, days, NULL, nc);
    srv = ca ? certs_make_cert(srv_key, srv_name, ca, ca_key, days, sans, NULL) : NULL;
    if (!ca || !srv) {
        certs_seterr(err, errlen, "cannot create %s certificate: %s", ca ? "server" : "CA",
                     certs_ossl_reason("unknown error"));
        goto out;
    }

    out[OUT_CA_CRT].bio = BIO_new(BIO_s_mem());
    out[OUT_SRV_CRT].bio = BIO_new(BIO_s_mem());
    out[OUT_CA_KEY].bio = BIO_new(BIO_s_secmem());
    out[OUT_SRV_KEY].bio = BIO_new(BIO_s_secmem());
    for (int i = 0; i < OUT_N; i++) {
        if (!out[i].bio) {
            certs_seterr(err, errlen, "out of memory");
            goto out;
        }
    }
    if (!PEM_write_bio_X509(out[OUT_CA_CRT].bio, ca) ||
        !PEM_write_bio_X509(out[OUT_SRV_CRT].bio, srv) ||
        !PEM_write_bio_PrivateKey(out[OUT_CA_KEY].bio, ca_key, NULL, NULL, 0, NULL, NULL) ||
        !PEM_write_bio_PrivateKey(out[OUT_SRV_KEY].bio, srv_key, NULL, NULL, 0, NULL, NULL)) {
        certs_seterr(err, errlen, "cannot encode PEM: %s", certs_ossl_reason("unknown error"));
        goto out;
    }

    /* made only now: a refusal above leaves nothing behind */
    if (certs_ensure_dir(ca_dir, 0700, 1, err, errlen) < 0)
        goto out;
    rc = certs_write_outputs(out, force, err, errlen);

out:
    for (int i = 0; i < OUT_N; i++)
        BIO_free(out[i].bio); /* secmem BIOs wipe the key text */
    EVP_PKEY_free(ca_key);    /* EVP_PKEY_free clears the private scalar */
    EVP_PKEY_free(srv_key);
    X509_free(ca);
    X509_free(srv);
    X509_NAME_free(ca_name);
    X509_NAME_free(srv_name);
    GENERAL_NAMES_free(sans);
    NAME_CONSTRAINTS_free(nc);
    ERR_clear_error();
    return rc;
}

int certs_fingerprint(const char *cert_file, char *out, size_t outlen, char *err, size_t errlen)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    X509 *x = NULL;

    errno = 0;
    BIO *b = BIO_new_file(cert_file, "r");
    if (!b) {
        int saved = errno ? errno : EIO;
        ERR_clear_error();
        certs_seterr(err, errlen, "%s: %s", cert_file, strerror(saved));
        return -1;
    }
    x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    if (!x) {
        certs_seterr(err, errlen, "%s: cannot load certificate: %s", cert_file,
                     certs_ossl_reason("not a PEM certificate"));
        return -1;
    }
    int ok = X509_digest(x, EVP_sha256(), md, &mdlen);
    X509_free(x);
    if (!ok || outlen < (size_t)mdlen * 3) {
        ERR_clear_error();
        certs_seterr(err, errlen, "%s: cannot compute fingerprint", cert_file);
        return -1;
    }
    for (unsigned int i = 0; i < mdlen; i++)
        snprintf(out + i * 3, outlen - i * 3, "%02X%s", md[i], i + 1 < mdlen ? ":" : "");
    return 0;
}
