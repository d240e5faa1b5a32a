/* certs/tls.c — the viewer-facing server SSL_CTX (see certs.h). */
#include "certs/certs.h"
#include "certs/certs_int.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/pem.h>

/* TLS 1.2 suites: forward secret AEAD only.  AES-128-GCM is preferred (the
 * server chooses): it is a full-strength AEAD and costs about a third less
 * CPU per byte than AES-256-GCM, which matters for a relay whose cost is
 * mostly encrypting screen updates.  A client that prefers AES-256 or
 * ChaCha20 still gets it when it offers nothing else. */
#define CERTS_TLS12_CIPHERS \
    "ECDHE+AES128+AESGCM:ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL:!EXPORT:!RC4:!3DES:!MD5:!PSK"
#define CERTS_TLS13_SUITES \
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"

void certs_seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

const char *certs_ossl_reason(const char *fallback)
{
    /* The earliest error is the root cause ("no start line", "bad
     * decrypt"); later ones only say which wrapper gave up ("PEM lib"). */
    unsigned long e = ERR_peek_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    ERR_clear_error();
    return r ? r : fallback;
}

/* Check that path names a readable regular file, so the common mistakes get
 * the plain errno text ("server.crt: No such file or directory") instead of
 * an OpenSSL error stack.  OpenSSL opens the file again right after; this
 * check only shapes the message, it is not a security boundary. */
static int certs_check_readable(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        certs_seterr(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    int rc = fstat(fd, &st);
    int saved = errno;
    close(fd);
    if (rc < 0) {
        certs_seterr(err, errlen, "%s: %s", path, strerror(saved));
        return -1;
    }
    if (S_ISDIR(st.st_mode)) {
        certs_seterr(err, errlen, "%s: %s", path, strerror(EISDIR));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        certs_seterr(err, errlen, "%s: not a regular file", path);
        return -1;
    }
    return 0;
}

/* Nonzero when the oldest or the newest entry of the error queue is
 * lib/reason: OpenSSL puts the cause at one end and wrappers in between, and
 * peeking at the ends leaves the queue for certs_ossl_reason(). */
static int certs_err_queue_has(int lib, int reason)
{
    unsigned long a = ERR_peek_error(), b = ERR_peek_last_error();
    return (ERR_GET_LIB(a) == lib && ERR_GET_REASON(a) == reason) ||
           (ERR_GET_LIB(b) == lib && ERR_GET_REASON(b) == reason);
}

/* Nonzero when a PEM file holds an encrypted private key, in PKCS#8
 * ("BEGIN ENCRYPTED PRIVATE KEY") or traditional ("Proc-Type: 4,ENCRYPTED")
 * form.  Only used to word an error message. */
static int certs_key_is_encrypted(const char *path)
{
    char buf[4096];
    FILE *fp = fopen(path, "re");
    if (!fp)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    int enc = strstr(buf, "BEGIN ENCRYPTED PRIVATE KEY") || strstr(buf, "Proc-Type: 4,ENCRYPTED");
    OPENSSL_cleanse(buf, sizeof buf);
    return enc;
}

/* Why the PEM file at path gave no certificate (is_key 0) or no key (1):
 * plain words for the common cases, OpenSSL's root reason otherwise.
 * Clears the error queue. */
static const char *certs_pem_reason(const char *path, int is_key)
{
    unsigned long e = ERR_peek_error();
    int lib = ERR_GET_LIB(e), reason = ERR_GET_REASON(e);
    if (is_key && certs_key_is_encrypted(path)) {
        ERR_clear_error();
        return "the key is encrypted (vmgate needs an unencrypted key)";
    }
    if ((lib == ERR_LIB_PEM && reason == PEM_R_NO_START_LINE) ||
        (lib == ERR_LIB_OSSL_DECODER && reason == ERR_R_UNSUPPORTED)) {
        ERR_clear_error();
        return is_key ? "no PEM private key in the file" : "no PEM certificate in the file";
    }
    return certs_ossl_reason(is_key ? "not a PEM private key" : "not a PEM certificate");
}

/* Passphrase callback: never prompt.  The gateway runs under systemd with no
 * terminal; an encrypted key must fail at once instead of blocking on a tty
 * read.  Returning 0 makes OpenSSL report a decrypt failure. */
static int certs_no_passphrase(char *buf, int size, int rwflag, void *userdata)
{
    (void)buf; (void)size; (void)rwflag; (void)userdata;
    return 0;
}

/* A context with every setting of the contract in certs.h but no
 * certificate yet; in particular the ticket count must stay 0 or TigerVNC
 * 1.12 hangs after the handshake.  NULL with err set. */
static SSL_CTX *certs_base_ctx(char *err, size_t errlen)
{
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        certs_seterr(err, errlen, "cannot create TLS context: %s",
                     certs_ossl_reason("out of memory"));
        return NULL;
    }

    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION)) {
        certs_seterr(err, errlen, "cannot set minimum TLS version: %s",
                     certs_ossl_reason("unknown error"));
        goto fail;
    }
    if (!SSL_CTX_set_cipher_list(ctx, CERTS_TLS12_CIPHERS)) {
        certs_seterr(err, errlen, "cannot set TLS 1.2 cipher list: %s",
                     certs_ossl_reason("no cipher matched"));
        goto fail;
    }
    if (!SSL_CTX_set_ciphersuites(ctx, CERTS_TLS13_SUITES)) {
        certs_seterr(err, errlen, "cannot set TLS 1.3 suites: %s",
                     certs_ossl_reason("no suite matched"));
        goto fail;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_COMPRESSION | SSL_OP_NO_TICKET);
    /* No TLS 1.3 NewSessionTicket messages at all (reference/vnc.md 1a). */
    if (!SSL_CTX_set_num_tickets(ctx, 0)) {
        certs_seterr(err, errlen, "cannot turn off TLS 1.3 session tickets: %s",
                     certs_ossl_reason("unknown error"));
        goto fail;
    }
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    return ctx;
fail:
    SSL_CTX_free(ctx);
    ERR_clear_error();
    return NULL;
}

/* Accepts the paths of a PEM certificate chain (leaf first, then any
 * intermediates) and of its PEM private key (unencrypted). */
SSL_CTX *certs_server_ctx(const char *cert_file, const char *key_file, char *err, size_t errlen)
{
    if (!cert_file || !*cert_file || !key_file || !*key_file) {
        certs_seterr(err, errlen, "no certificate or key file given");
        return NULL;
    }
    SSL_CTX *ctx = certs_base_ctx(err, errlen);
    if (!ctx)
        return NULL;
    SSL_CTX_set_default_passwd_cb(ctx, certs_no_passphrase);

    if (certs_check_readable(cert_file, err, errlen) < 0)
        goto fail;
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
        certs_seterr(err, errlen, "%s: cannot load certificate: %s", cert_file,
                     certs_pem_reason(cert_file, 0));
        goto fail;
    }
    if (certs_check_readable(key_file, err, errlen) < 0)
        goto fail;
    if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
        /* A key that does not fit the certificate already loaded: OpenSSL
         * may notice it here already (X509_check_private_key inside). */
        if (certs_err_queue_has(ERR_LIB_X509, X509_R_KEY_VALUES_MISMATCH) ||
            certs_err_queue_has(ERR_LIB_X509, X509_R_KEY_TYPE_MISMATCH)) {
            ERR_clear_error();
            certs_seterr(err, errlen, "%s: key does not match certificate %s", key_file,
                         cert_file);
        } else {
            certs_seterr(err, errlen, "%s: cannot load private key: %s", key_file,
                         certs_pem_reason(key_file, 1));
        }
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ERR_clear_error();
        certs_seterr(err, errlen, "%s: key does not match certificate %s", key_file, cert_file);
        goto fail;
    }
    /* The key was consumed into the context; do not keep the passphrase
     * callback pointing at a function nobody needs any more. */
    SSL_CTX_set_default_passwd_cb(ctx, NULL);
    return ctx;

fail:
    SSL_CTX_free(ctx);
    ERR_clear_error();
    return NULL;
}

/* Accepts the texts of the two files certs_server_ctx() reads (the auth
 * helper read them as root); cert_name/key_name only word the errors.  The
 * chain is the leaf then any intermediates, like
 * SSL_CTX_use_certificate_chain_file; the key must be unencrypted.  The
 * buffers are only read: the caller wipes the key text. */
SSL_CTX *certs_server_ctx_mem(const void *chain, size_t chain_len, const void *key,
                              size_t key_len, const char *cert_name, const char *key_name,
                              char *err, size_t errlen)
{
    if (!chain || !chain_len || !key || !key_len || chain_len > INT_MAX || key_len > INT_MAX) {
        certs_seterr(err, errlen, "no certificate or key given");
        return NULL;
    }
    SSL_CTX *ctx = certs_base_ctx(err, errlen);
    if (!ctx)
        return NULL;
    EVP_PKEY *pk = NULL;
    X509 *x = NULL;
    BIO *cb = BIO_new_mem_buf(chain, (int)chain_len);
    BIO *kb = BIO_new_mem_buf(key, (int)key_len);
    if (!cb || !kb) {
        certs_seterr(err, errlen, "out of memory");
        goto fail;
    }
    x = PEM_read_bio_X509_AUX(cb, NULL, certs_no_passphrase, NULL);
    if (!x || SSL_CTX_use_certificate(ctx, x) != 1) {
        certs_seterr(err, errlen, "%s: cannot load certificate: %s", cert_name,
                     certs_ossl_reason("no PEM certificate in the file"));
        goto fail;
    }
    for (;;) {
        X509 *ca = PEM_read_bio_X509(cb, NULL, certs_no_passphrase, NULL);
        if (!ca)
            break;
        if (SSL_CTX_add0_chain_cert(ctx, ca) != 1) {
            X509_free(ca);
            certs_seterr(err, errlen, "%s: cannot add a chain certificate: %s", cert_name,
                         certs_ossl_reason("unknown error"));
            goto fail;
        }
    }
    /* the end of the chain ends with "no start line"; anything else is bad */
    unsigned long e = ERR_peek_last_error();
    if (e && !(ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE)) {
        certs_seterr(err, errlen, "%s: cannot load a chain certificate: %s", cert_name,
                     certs_ossl_reason("unknown error"));
        goto fail;
    }
    ERR_clear_error();
    pk = PEM_read_bio_PrivateKey(kb, NULL, certs_no_passphrase, NULL);
    if (!pk) {
        certs_seterr(err, errlen, "%s: cannot load private key: %s", key_name,
                     certs_ossl_reason("no PEM private key in the file"));
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey(ctx, pk) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        ERR_clear_error();
        certs_seterr(err, errlen, "%s: key does not match certificate %s", key_name, cert_name);
        goto fail;
    }
    EVP_PKEY_free(pk);   /* the context holds its own reference */
    X509_free(x);
    BIO_free(cb);
    BIO_free(kb);
    return ctx;

fail:
    EVP_PKEY_free(pk);
    X509_free(x);
    BIO_free(cb);
    BIO_free(kb);
    SSL_CTX_free(ctx);
    ERR_clear_error();
    return NULL;
}
