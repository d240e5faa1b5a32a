/* auth/peer.c — see peer.h. */
#include "auth/peer.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

/* An inet peer's address as text; a v4-mapped IPv6 address becomes plain
 * IPv4, like proxy_addr_str and ban_key, so the helper, the log and the
 * ban set all name one source the same way.  The IPv6 scope is dropped. */
static int inet_str(const struct sockaddr_storage *ss, char *out, size_t outlen)
{
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        return inet_ntop(AF_INET, &a->sin_addr, out, (socklen_t)outlen) ? 0 : -1;
    }
    const struct in6_addr *a6 = &((const struct sockaddr_in6 *)ss)->sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(a6))
        return inet_ntop(AF_INET, &a6->s6_addr[12], out, (socklen_t)outlen) ? 0 : -1;
    return inet_ntop(AF_INET6, a6, out, (socklen_t)outlen) ? 0 : -1;
}

int auth_peer_from_fd(int fd, struct auth_peer *p, char *err, size_t errlen)
{
    char dummy[8];
    if (!err || errlen == 0) {
        err = dummy;
        errlen = sizeof dummy;
    }
    if (!p) {
        snprintf(err, errlen, "no peer");
        return -1;
    }
    memset(p, 0, sizeof *p);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) {
        snprintf(err, errlen, "not a socket");
        return -1;
    }
    int domain = 0, type = 0;
    socklen_t l = sizeof domain;
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &l) != 0) {
        snprintf(err, errlen, "SO_DOMAIN: %s", strerror(errno));
        return -1;
    }
    l = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l) != 0) {
        snprintf(err, errlen, "SO_TYPE: %s", strerror(errno));
        return -1;
    }
    if (domain == AF_INET || domain == AF_INET6) {
        if (type != SOCK_STREAM) {
            snprintf(err, errlen, "not a TCP socket");
            return -1;
        }
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        memset(&ss, 0, sizeof ss);
        if (getpeername(fd, (struct sockaddr *)&ss, &sl) != 0) {
            snprintf(err, errlen, "getpeername: %s", strerror(errno));
            return -1;
        }
        if ((ss.ss_family != AF_INET && ss.ss_family != AF_INET6) ||
            inet_str(&ss, p->addr, sizeof p->addr) != 0) {
            snprintf(err, errlen, "unexpected peer address");
            return -1;
        }
        p->port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                                : ((struct sockaddr_in6 *)&ss)->sin6_port);
        struct sockaddr_storage ls;
        socklen_t ll = sizeof ls;
        memset(&ls, 0, sizeof ls);
        if (getsockname(fd, (struct sockaddr *)&ls, &ll) == 0)
            p->lport = ntohs(ls.ss_family == AF_INET ? ((struct sockaddr_in *)&ls)->sin_port
                                                     : ((struct sockaddr_in6 *)&ls)->sin6_port);
        p->ino = (unsigned long long)st.st_ino;
        p->kind = AUTH_PEER_INET;
        return 0;
    }
    if (domain == AF_UNIX) {
        if (type != SOCK_STREAM && type != SOCK_SEQPACKET) {
            snprintf(err, errlen, "not a connected unix socket");
            return -1;
        }
        struct ucred uc;
        socklen_t cl = sizeof uc;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &cl) != 0 || cl != sizeof uc) {
            snprintf(err, errlen, "SO_PEERCRED: %s", strerror(errno));
            return -1;
        }
        /* an unconnected socket reports pid 0 and uid/gid -1 */
        if (uc.pid == 0 && uc.uid == (uid_t)-1) {
            snprintf(err, errlen, "unix socket not connected");
            return -1;
        }
        struct sockaddr_un sun;
        socklen_t sl = sizeof sun;
        memset(&sun, 0, sizeof sun);
        if (getsockname(fd, (struct sockaddr *)&sun, &sl) != 0) {
            snprintf(err, errlen, "getsockname: %s", strerror(errno));
            return -1;
        }
        /* a pathname address (not abstract, not unnamed), NUL-terminated */
        if (sl > offsetof(struct sockaddr_un, sun_path) && sun.sun_path[0]) {
            size_t n = strnlen(sun.sun_path, sl - offsetof(struct sockaddr_un, sun_path));
            if (n >= sizeof p->local)
                n = sizeof p->local - 1;
            memcpy(p->local, sun.sun_path, n);
            p->local[n] = '\0';
        }
        p->ino = (unsigned long long)st.st_ino;
        p->kind = AUTH_PEER_UNIX;
        p->uid = uc.uid;
        p->gid = uc.gid;
        p->pid = uc.pid;
        return 0;
    }
    snprintf(err, errlen, "socket family %d not supported", domain);
    return -1;
}

const char *auth_peer_str(const struct auth_peer *p, char *out, size_t outlen)
{
    if (!out || outlen == 0)
        return "";
    if (!p || p->kind == AUTH_PEER_NONE)
        snprintf(out, outlen, "unknown");
    else if (p->kind == AUTH_PEER_INET)
        snprintf(out, outlen, "%s", p->addr);
    else
        snprintf(out, outlen, "uid=%lu", (unsigned long)p->uid);
    return out;
}
