/* common/listen.h — see listen.c. */
#ifndef VMGATE_LISTEN_H
#define VMGATE_LISTEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bind and listen on addr:port (numeric; "::" listens dual stack),
 * non-blocking, close-on-exec.  Returns the fd, or -1 with why set. */
int addr_listen_tcp(const char *addr, uint16_t port, char *why, size_t whylen);
/* Bind and listen on the unix socket path inside dir (created 0755 when
 * missing; a stale socket at path is replaced; the socket is 0666).
 * Returns the fd, or -1 with why set and *perm true for a permission
 * error. */
int addr_listen_unix(const char *dir, const char *path, char *why, size_t whylen, bool *perm);

#endif
