/* firewall/fw_watch.c — notice when someone deletes `table inet vmgate`.
 *
 * The same events `nft monitor` shows: a netlink socket subscribed to the
 * NFNLGRP_NFTABLES group.  We only look for NFT_MSG_DELTABLE of family inet
 * named "vmgate" (what `flush ruleset`, `delete table` and a reload of
 * Debian's nftables.service produce).  Other changes, including our own
 * apply and the run-time allow/deny/ban commands, are ignored, so the
 * daemon never undoes an admin's run-time change. */
#include "firewall/firewall.h"
#include "firewall/fw_int.h"

#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int fw_watch_open(char *err, size_t errlen)
{
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_NETFILTER);
    if (fd < 0) {
        snprintf(err, errlen, "netlink socket: %s", strerror(errno));
        return -1;
    }
    struct sockaddr_nl sa = { .nl_family = AF_NETLINK,
                              .nl_groups = 1u << (NFNLGRP_NFTABLES - 1) };
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        snprintf(err, errlen, "subscribing to nftables events: %s%s", strerror(errno),
                 errno == EPERM ? " (needs CAP_NET_ADMIN)" : "");
        close(fd);
        return -1;
    }
    int sz = 1 << 20;   /* a ruleset flush sends one message per object */
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    return fd;
}

/* Does this DELTABLE message name our table? */
static bool is_our_table(const struct nlmsghdr *nlh)
{
    if (nlh->nlmsg_len < NLMSG_LENGTH(sizeof(struct nfgenmsg)))
        return false;
    const struct nfgenmsg *g = NLMSG_DATA(nlh);
    if (g->nfgen_family != NFPROTO_INET)
        return false;
    const char *p = (const char *)g + NLMSG_ALIGN(sizeof *g);
    size_t left = nlh->nlmsg_len - NLMSG_LENGTH(sizeof *g);
    while (left >= sizeof(struct nlattr)) {
        const struct nlattr *a = (const struct nlattr *)p;
        if (a->nla_len < sizeof *a || a->nla_len > left)
            return false;
        if ((a->nla_type & NLA_TYPE_MASK) == NFTA_TABLE_NAME) {
            size_t n = a->nla_len - NLA_HDRLEN;
            const char *name = p + NLA_HDRLEN;
            return n >= sizeof FW_TABLE - 1 && strncmp(name, FW_TABLE, n) == 0 &&
                   (n == sizeof FW_TABLE - 1 || name[sizeof FW_TABLE - 1] == '\0');
        }
        size_t step = NLA_ALIGN(a->nla_len);
        if (step > left)
            break;
        p += step;
        left -= step;
    }
    return false;
}

int fw_watch_read(int fd)
{
    int hit = 0;
    for (;;) {
        union {
            struct nlmsghdr h;
            char b[64 * 1024];
        } u;
        ssize_t n = recv(fd, u.b, sizeof u.b, MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return hit;
            if (errno == ENOBUFS) {   /* events were lost: assume the worst */
                hit = 1;
                continue;
            }
            return -1;
        }
        if (n == 0)
            return hit;
        size_t len = (size_t)n;
        for (const struct nlmsghdr *h = &u.h; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
            unsigned type = h->nlmsg_type;
            if ((type >> 8) == NFNL_SUBSYS_NFTABLES && (type & 0xff) == NFT_MSG_DELTABLE &&
                is_our_table(h))
                hit = 1;
        }
    }
}
