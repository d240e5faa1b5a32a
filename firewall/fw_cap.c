/* firewall/fw_cap.c — may this process change nftables? */
#include "firewall/firewall.h"

#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

/* True when the effective capability set holds CAP_NET_ADMIN (root
 * usually does; a unit with AmbientCapabilities=CAP_NET_ADMIN does too). */
bool fw_can_manage(void)
{
    struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
    struct __user_cap_data_struct d[2];
    if (syscall(SYS_capget, &h, d) != 0)
        return geteuid() == 0;
    return (d[CAP_NET_ADMIN / 32].effective & (1u << (CAP_NET_ADMIN % 32))) != 0;
}
