/* auth/peer.h — who is at the other end of a viewer's socket, as the auth
 * helper learns it from the socket itself.
 *
 * The network process passes the viewer's connected socket along with each
 * login request (SCM_RIGHTS); the helper asks the kernel who the peer is
 * instead of trusting an address the network process writes into the
 * request.  Two kinds of peer:
 *   - AUTH_PEER_INET: a TCP connection; addr is the numeric address, IPv4
 *     for a v4-mapped IPv6 peer (the form the ban table keys on);
 *   - AUTH_PEER_UNIX: an AF_UNIX connection; uid/gid/pid from SO_PEERCRED
 *     (for logins authorized by the connecting uid). */
#ifndef VMGATE_AUTH_PEER_H
#define VMGATE_AUTH_PEER_H

#include <netinet/in.h>
#include <stddef.h>
#include <sys/types.h>

enum auth_peer_kind {
    AUTH_PEER_NONE = 0,
    AUTH_PEER_INET,
    AUTH_PEER_UNIX,
};

struct auth_peer {
    enum auth_peer_kind kind;
    char addr[INET6_ADDRSTRLEN];   /* AUTH_PEER_INET: "192.0.2.7", "2001:db8::1" */
    uid_t uid;                     /* AUTH_PEER_UNIX: SO_PEERCRED */
    gid_t gid;
    pid_t pid;
    char local[108];               /* AUTH_PEER_UNIX: the socket's own path (getsockname:
                                      the listener it was accepted on), "" if unnamed */
    /* Which socket this is, so the helper can recognize a viewer it
     * authenticated when the same socket comes back with a power request:
     * the socket's inode (unique among live sockets), and for AUTH_PEER_INET
     * both ports (remote, and local from getsockname). */
    unsigned long long ino;
    unsigned port, lport;
};

/* Fill *p from the connected socket fd: getpeername() for a TCP socket
 * (AF_INET/AF_INET6, SOCK_STREAM), SO_PEERCRED for an AF_UNIX stream or
 * seqpacket socket (and its own path from getsockname, so the helper can
 * check which of vmgate's sockets it came in on).  Anything else (not a socket, UDP, unconnected, another
 * family) is refused.  Returns 0, or -1 with a reason in err.  fd is not
 * closed. */
int auth_peer_from_fd(int fd, struct auth_peer *p, char *err, size_t errlen);

/* The peer as one log word: the address, or "uid=N". */
const char *auth_peer_str(const struct auth_peer *p, char *out, size_t outlen);

#endif
