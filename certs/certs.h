/* certs/certs.h — TLS contexts and certificate generation (OpenSSL 3). */
#ifndef VMGATE_CERTS_H
#define VMGATE_CERTS_H

#include <stddef.h>
#include <stdio.h>
#include <openssl/ssl.h>

/* Build the server SSL_CTX for the viewer side: TLS 1.2 minimum (1.3
 * preferred), no anonymous or export ciphers, no renegotiation, no TLS 1.3
 * session tickets (they hang TigerVNC 1.12, see reference/vnc.md 1a),
 * partial writes and moving write buffers allowed, cert + key from files
 * with the key checked against the cert.  Returns NULL with a message in err
 * ("FILE: reason"). */
SSL_CTX *certs_server_ctx(const char *cert_file, const char *key_file, char *err, size_t errlen);

/* The same context from PEM texts in memory (what the auth helper read
 * from cert = and key = for a reload after the privilege drop).  cert_name
 * and key_name name the files in errors.  The buffers are only read. */
SSL_CTX *certs_server_ctx_mem(const void *chain, size_t chain_len, const void *key,
                              size_t key_len, const char *cert_name, const char *key_name,
                              char *err, size_t errlen);

/* `vmgate certs init --dir DIR [--name NAME,...] [--days N] [--force]`:
 * argv[0] is "init". Returns the process exit code. */
int certs_cmd(int argc, char **argv);

/* Where `certs init` puts the CA key when no --ca-dir is given: DIR/ca/. */
#define CERTS_CA_SUBDIR "ca"

/* Generate ca.crt server.crt server.key in dir and ca.key in ca_dir (NULL:
 * dir/ca, created 0700; an existing one must not be open to group/others).
 * ECDSA P-256; SANs from names (DNS names or IP addresses); the CA carries
 * critical nameConstraints permitting exactly those names (addresses as
 * /32 or /128, DNS names with their subdomains), so it cannot sign for
 * anything else.  Refuses to overwrite existing files unless force.  Keys
 * are written 0600.  Returns 0 or -1 with err set. */
int certs_generate(const char *dir, const char *ca_dir, const char *const *names,
                   size_t n_names, int days, int force, char *err, size_t errlen);

/* A warning for a CA private key lying in the directory of key_file
 * ("DIR/ca.key": the layout of vmgate before 0.2, or a hand-made one): 1
 * with the path in out, 0 when there is none. */
int certs_ca_key_beside(const char *key_file, char *out, size_t outlen);

/* `vmgate certs show`: print cert_file's subject, issuer, SANs, validity
 * and SHA-256 fingerprint (the form viewers show) to fp.  Returns 0, or -1
 * with err set. */
int certs_show(const char *cert_file, FILE *fp, char *err, size_t errlen);

/* SHA-256 fingerprint of the first certificate in a PEM file, as upper-case
 * hex pairs joined by ':' ("AB:CD:..."; needs outlen >= 96).  Returns 0, or
 * -1 with err set ("FILE: reason"). */
int certs_fingerprint(const char *cert_file, char *out, size_t outlen, char *err, size_t errlen);

#endif
