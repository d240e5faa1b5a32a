/* common/listen.c — binding the gateway's listening sockets (TCP on the
 * configured address, socket_dir unix sockets).  Used as root: by the
 * daemon at start, by the auth helper on a config reload. */
#include "common/listen.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/addr.h"

/* Bind one listener on addr:port.  "::" listens dual stack.  Returns the
 * fd, or -1 with why set. */
int addr_listen_tcp(const char *addr, uint16_t port, char *why, size_t whylen)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    struct addr_net n;
    if (addr_ip_parse(addr, &n) < 0 || addr_sockaddr(&n, port, &ss, &sl) < 0) {
        snprintf(why, whylen, "%s is not a numeric address", addr);
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        snprintf(why, whylen, "socket: %s", strerror(errno));
        return -1;
    }
    int one = 1, zero = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ss.ss_family == AF_INET6) {
        /* "::" means both families; a specific v6 address means just v6. */
        int v6only = addr_net_is_unspecified(&n) ? 0 : 1;
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, v6only ? &one : &zero, sizeof one);
    }
    if (bind(fd, (struct sockaddr *)&ss, sl) == -1 || listen(fd, 128) == -1) {
        snprintf(why, whylen, "%s", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* Bind the unix socket path for a local listener: the directory is created
 * 0755 if missing, a stale socket at path is replaced (anything else there
 * is an error), the socket is 0666 (any local user may connect; the auth
 * helper authorizes the uid).  Returns the fd, or -1 with why set and
 * *perm true when the error is a permission one (not running as root). */
int addr_listen_unix(const char *dir, const char *path, char *why, size_t whylen, bool *perm)
{
    struct stat st;
    *perm = false;
    if (stat(dir, &st) != 0) {
        if (errno != ENOENT || mkdir(dir, 0755) != 0 || chmod(dir, 0755) != 0) {
            *perm = errno == EACCES || errno == EPERM || errno == EROFS;
            snprintf(why, whylen, "socket_dir %s: %s", dir, strerror(errno));
            return -1;
        }
    } else if (!S_ISDIR(st.st_mode)) {
        snprintf(why, whylen, "socket_dir %s is not a directory", dir);
        return -1;
    }
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            snprintf(why, whylen, "%s exists and is not a socket", path);
            return -1;
        }
        if (unlink(path) != 0) {
            *perm = errno == EACCES || errno == EPERM || errno == EROFS;
            snprintf(why, whylen, "cannot replace %s: %s", path, strerror(errno));
            return -1;
        }
    }
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof sun.sun_path) {
        snprintf(why, whylen, "%s: path too long", path);
        return -1;
    }
    memcpy(sun.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        snprintf(why, whylen, "socket: %s", strerror(errno));
        return -1;
    }
    if (bind(fd, (struct sockaddr *)&sun, sizeof sun) == -1 || chmod(path, 0666) == -1 ||
        listen(fd, 128) == -1) {
        *perm = errno == EACCES || errno == EPERM || errno == EROFS;
        snprintf(why, whylen, "%s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

