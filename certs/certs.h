/* certs/certs.h — TLS contexts and certificate generation (OpenSSL 3). */
#ifndef VMGATE_CERTS_H
#define VMGATE_CERTS_H

#include <stddef.h>
#include <openssl/ssl.h>

/* Build the server SSL_CTX for the viewer side: TLS 1.2 minimum (1.3
 * preferred), no anonymous or export ciphers, no renegotiation, no TLS 1.3
 * session tickets (they hang TigerVNC 1.12, see reference/vnc.md 1a),
 * partial writes and moving write buffers allowed, cert + key from files
 * with the key checked against the cert.  Returns NULL with a message in err
 * ("FILE: reason"). */
SSL_CTX *certs_server_ctx(const char *cert_file, const char *key_file, char *err, size_t errlen);

/* `vmgate certs init --dir DIR [--name NAME,...] [--days N] [--force]`:
 * argv[0] is "init". Returns the process exit code. */
int certs_cmd(int argc, char **argv);

/* Generate ca.crt ca.key server.crt server.key in dir (ECDSA P-256, SANs from
 * names: DNS names or IP addresses).  Refuses to overwrite existing files
 * unless force.  Keys are written 0600.  Returns 0 or -1 with err set. */
int certs_generate(const char *dir, const char *const *names, size_t n_names, int days,
                   int force, char *err, size_t errlen);

/* SHA-256 fingerprint of the first certificate in a PEM file, as upper-case
 * hex pairs joined by ':' ("AB:CD:..."; needs outlen >= 96).  Returns 0, or
 * -1 with err set ("FILE: reason"). */
int certs_fingerprint(const char *cert_file, char *out, size_t outlen, char *err, size_t errlen);

#endif
