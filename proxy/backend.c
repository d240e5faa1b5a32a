/* proxy/backend.c — see backend.h. */
#include "proxy/backend.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/addr.h"

#define WHY(...) snprintf(why, whylen, __VA_ARGS__)

int backend_connect_unix(const char *path, int *fd, char *why, size_t whylen)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof sun.sun_path) {
        WHY("unix:%s: path too long", path);
        return -1;
    }
    memcpy(sun.sun_path, path, strlen(path) + 1);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s == -1) {
        WHY("socket: %s", strerror(errno));
        return -1;
    }
    if (connect(s, (struct sockaddr *)&sun, sizeof sun) == 0) {
        *fd = s;
        return 0;
    }
    if (errno == EINPROGRESS || errno == EAGAIN) {
        /* EAGAIN on a unix socket means the listen backlog is full; treat it
         * as "in progress" would be wrong (no completion event follows). */
        if (errno == EAGAIN) {
            WHY("connect unix:%s: backlog full", path);
            close(s);
            return -1;
        }
        *fd = s;
        return 1;
    }
    WHY("connect unix:%s: %s", path, strerror(errno));
    close(s);
    return -1;
}

int backend_connect_tcp(const char *host, uint16_t port, int *fd, char *why, size_t whylen)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    if (addr_host_sockaddr(host, port, &ss, &sl) < 0) {
        WHY("%s: not a numeric address", host);
        return -1;
    }
    int s = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s == -1) {
        WHY("socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(s, (struct sockaddr *)&ss, sl) == 0) {
        *fd = s;
        return 0;
    }
    if (errno == EINPROGRESS) {
        *fd = s;
        return 1;
    }
    char hp[ADDR_PORT_MAX + CFG_HOST_MAX];
    addr_hostport_str(host, port, hp, sizeof hp);
    WHY("connect %s: %s", hp, strerror(errno));
    close(s);
    return -1;
}

int backend_connect(const struct cfg_backend *be, int *fd, char *why, size_t whylen)
{
    switch (be->kind) {
    case CFG_BE_TCP:
        return backend_connect_tcp(be->host, be->port, fd, why, whylen);
    case CFG_BE_UNIX:
    case CFG_BE_QMP:
        return backend_connect_unix(be->path, fd, why, whylen);
    default:
        WHY("no backend configured");
        return -1;
    }
}

ssize_t backend_read(int fd, struct buf *dst, bool *ready)
{
    size_t avail;
    uint8_t *t = buf_tail(dst, &avail);
    if (!t)
        return 0;
    ssize_t n = read(fd, t, avail);
    if (n > 0) {
        buf_produce(dst, (size_t)n);
        if ((size_t)n < avail && ready)
            *ready = false;                 /* a short read drained the socket */
        return n;
    }
    buf_trim(dst);
    if (n == -1 && (errno == EAGAIN || errno == EINTR)) {
        if (ready)
            *ready = false;
        return 0;
    }
    return -1;   /* EOF or error: the caller decides what that means */
}

int backend_connect_result(int fd, char *why, size_t whylen)
{
    int err = 0;
    socklen_t el = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) == -1)
        err = errno;
    if (err) {
        WHY("connect: %s", strerror(err));
        return -1;
    }
    return 0;
}

int backend_send_with_fd(int sock, const char *msg, size_t len, int fd_to_pass)
{
    struct iovec iov = { .iov_base = (void *)msg, .iov_len = len };
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    memset(&u, 0, sizeof u);
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
    if (fd_to_pass >= 0) {
        mh.msg_control = u.buf;
        mh.msg_controllen = sizeof u.buf;
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &fd_to_pass, sizeof(int));
    }
    ssize_t n = sendmsg(sock, &mh, MSG_NOSIGNAL);
    return n == (ssize_t)len ? 0 : -1;
}
