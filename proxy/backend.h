/* proxy/backend.h — opening the connection to a VM's console. */
#ifndef VMGATE_BACKEND_H
#define VMGATE_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/buf.h"
#include "common/config.h"

/* Start a non-blocking stream connection to a unix path or host:port.
 * Returns 0 when connected, 1 when in progress (wait for writable, then
 * backend_connect_result), -1 on failure with why set ("connect
 * unix:/x: No such file or directory").  *fd is set in the first two cases. */
int backend_connect_unix(const char *path, int *fd, char *why, size_t whylen);
int backend_connect_tcp(const char *host, uint16_t port, int *fd, char *why, size_t whylen);
/* Connect to a configured backend: tcp for HOST:PORT, the socket path for
 * unix: and qmp: (same returns as above). */
int backend_connect(const struct cfg_backend *be, int *fd, char *why, size_t whylen);
/* Read what the socket has into dst's free tail.  Returns the count, 0 when
 * nothing is there (or dst is full), -1 on EOF or an error.  *ready (may be
 * NULL) is cleared once the socket is drained: EAGAIN or a short read.  dst's
 * storage is released again when the read brought nothing. */
ssize_t backend_read(int fd, struct buf *dst, bool *ready);
/* After a writable event on an in-progress connect: 0 ok, -1 failed (why). */
int backend_connect_result(int fd, char *why, size_t whylen);
/* Send a QMP command line with one file descriptor attached (SCM_RIGHTS). */
int backend_send_with_fd(int sock, const char *msg, size_t len, int fd_to_pass);

#endif
