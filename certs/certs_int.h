/* certs/certs_int.h — helpers shared by the files of certs/ only.  Nothing
 * outside certs/ includes this. */
#ifndef VMGATE_CERTS_INT_H
#define VMGATE_CERTS_INT_H

#include <stddef.h>

/* The most --name values one certificate takes. */
#define CERTS_MAX_NAMES 64
/* Longest DNS name (RFC 1035) and so the longest name we accept at all. */
#define CERTS_NAME_MAX 253

enum { CERTS_NAME_DNS = 1, CERTS_NAME_IP4, CERTS_NAME_IP6 };

/* What a --name value is: CERTS_NAME_IP4/IP6 when inet_pton accepts it,
 * CERTS_NAME_DNS for a valid DNS name, else -1 with err set. */
int certs_name_kind(const char *name, char *err, size_t errlen);
/* Nonzero when a and b give the same SAN (same address, or DNS names equal
 * ignoring case). */
int certs_name_same(const char *a, const char *b);
/* Drop later duplicates (certs_name_same) in place, keeping order; returns
 * the new count. */
size_t certs_names_dedupe(const char **names, size_t n);

/* out = dir + "/" + name, without doubling a trailing slash of dir.
 * Returns 0, or -1 when it does not fit in outsz. */
int certs_path_join(char *out, size_t outsz, const char *dir, const char *name);

/* snprintf into err (may be NULL or errlen 0: then nothing is written). */
void certs_seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The reason of the most recent OpenSSL error on this thread's queue
 * ("no start line", "bad decrypt"), or fallback when the queue is empty.
 * Clears the queue, so one failure never leaks into the next message. */
const char *certs_ossl_reason(const char *fallback);

#endif
