/* certs/show.c — what a certificate says, in the words viewers use, and the
 * check for a CA key left beside the server key (see certs.h). */
#include "certs/certs.h"
#include "certs/certs_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* Accepts any key path; looks only at the file named ca.key in the same
 * directory (lstat: a symlink counts too).  No I/O beyond that stat. */
int certs_ca_key_beside(const char *key_file, char *out, size_t outlen)
{
    if (!key_file || !*key_file || !out || outlen == 0)
        return 0;
    const char *slash = strrchr(key_file, '/');
    char dir[PATH_MAX];
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == key_file)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - key_file), key_file);
    struct stat st;
    if (certs_path_join(out, outlen, dir, "ca.key") < 0 || lstat(out, &st) != 0) {
        out[0] = '\0';
        return 0;
    }
    return 1;
}

/* One distinguished name on one line, "O = vmgate, CN = vmgate CA x". */
static void certs_print_name(BIO *b, const X509_NAME *n)
{
    X509_NAME_print_ex(b, n, 0, XN_FLAG_ONELINE & ~ASN1_STRFLGS_ESC_MSB);
}

/* The subjectAltName entries as "DNS:a, IP:b", the way `certs init` and
 * OpenSSL print them; other kinds as "other". */
static void certs_print_sans(BIO *b, X509 *x)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    int n = gens ? sk_GENERAL_NAME_num(gens) : 0;
    if (n == 0)
        BIO_puts(b, "(none: viewers will refuse this certificate)");
    for (int i = 0; i < n; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        int type = 0;
        const void *v = GENERAL_NAME_get0_value(g, &type);
        if (i)
            BIO_puts(b, ", ");
        if (type == GEN_DNS) {
            const ASN1_STRING *s = v;
            BIO_printf(b, "DNS:%.*s", ASN1_STRING_length(s), ASN1_STRING_get0_data(s));
        } else if (type == GEN_IPADD) {
            const ASN1_OCTET_STRING *o = v;
            char txt[INET6_ADDRSTRLEN] = "?";
            int len = ASN1_STRING_length(o);
            if (len == 4 || len == 16)
                inet_ntop(len == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(o), txt,
                          sizeof txt);
            BIO_printf(b, "IP:%s", txt);
        } else {
            BIO_puts(b, "other");
        }
    }
    GENERAL_NAMES_free(gens);
}

/* Accepts a PEM file whose first certificate is the server's (a chain file
 * is fine; the rest is ignored).  Writes only to fp, and only on success. */
int certs_show(const char *cert_file, FILE *fp, char *err, size_t errlen)
{
    char fpr[128];
    if (certs_fingerprint(cert_file, fpr, sizeof fpr, err, errlen) < 0)
        return -1;
    BIO *in = BIO_new_file(cert_file, "r");
    X509 *x = in ? PEM_read_bio_X509(in, NULL, NULL, NULL) : NULL;
    BIO_free(in);
    BIO *b = x ? BIO_new(BIO_s_mem()) : NULL;
    if (!x || !b) {
        X509_free(x);
        certs_seterr(err, errlen, "%s: cannot load certificate: %s", cert_file,
                     certs_ossl_reason("not a PEM certificate"));
        return -1;
    }
    BIO_printf(b, "certificate: %s\nsubject:     ", cert_file);
    certs_print_name(b, X509_get_subject_name(x));
    BIO_puts(b, "\nissuer:      ");
    certs_print_name(b, X509_get_issuer_name(x));
    BIO_puts(b, "\nnames:       ");
    certs_print_sans(b, x);
    BIO_puts(b, "\nnot before:  ");
    ASN1_TIME_print_ex(b, X509_get0_notBefore(x), ASN1_DTFLGS_ISO8601);
    BIO_puts(b, "\nnot after:   ");
    ASN1_TIME_print_ex(b, X509_get0_notAfter(x), ASN1_DTFLGS_ISO8601);
    int days = 0, secs = 0;
    if (ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(x)))
        BIO_printf(b, days < 0 || secs < 0 ? " (EXPIRED)" : " (%d days left)", days);
    BIO_printf(b, "\nSHA-256 fingerprint: %s\n", fpr);
    X509_free(x);

    char *data = NULL;
    long len = BIO_get_mem_data(b, &data);
    if (len > 0)
        fwrite(data, 1, (size_t)len, fp);
    BIO_free(b);
    ERR_clear_error();
    return 0;
}
