/* common/cfgdiff.h — what a reload changes: the pure comparison of two
 * parsed configs (gateway/daemon.c and the auth helper both use it, so the
 * two sides of a reload agree on what is new, gone or changed).
 *
 * No I/O: everything here works on parsed configs or on the config text. */
#ifndef VMGATE_CFGDIFF_H
#define VMGATE_CFGDIFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/config.h"

enum cfg_change { CFG_SAME = 0, CFG_ADDED, CFG_CHANGED, CFG_REMOVED };

/* Do two VMs have the same effective settings (every key cfg_print shows
 * for a [vm], so a key someone adds there is compared without touching
 * this file)?  Names are compared too. */
bool cfg_vm_equal(const struct cfg_vm *a, const struct cfg_vm *b);

/* Compare old and nw by VM name: old_st[i] (old->n_vms entries) is
 * CFG_SAME, CFG_CHANGED or CFG_REMOVED for old->vms[i]; new_st[j]
 * (nw->n_vms entries) CFG_SAME, CFG_CHANGED or CFG_ADDED for nw->vms[j].
 * Either array may be NULL.  Returns how many VMs were added, removed or
 * changed (0: the VM sections are the same). */
size_t cfg_diff(const struct cfg *old, const struct cfg *nw, enum cfg_change *old_st,
                enum cfg_change *new_st);

/* The [gateway] keys (and the presence of [firewall]) a reload cannot
 * change, because they were used once at start-up as root (address, user,
 * socket_dir, processes, sandbox, audit, control, admin_group, metrics,
 * auth_workers): the name of the first one that differs, or NULL.
 * "firewall" stands for adding or removing the [firewall] section. */
const char *cfg_fixed_changed(const struct cfg *old, const struct cfg *nw);

/* The line of `key =` in [section] of text (len bytes; section "gateway",
 * "firewall" or "vm NAME"), or of the [section] header itself when key is
 * NULL; 0 when absent.  For reload errors that name FILE:LINE. */
int cfg_key_line(const char *text, size_t len, const char *section, const char *key);

/* One listening socket a config asks for.  A TCP listener is known by its
 * port (the address is fixed until a restart); a socket_dir listener by its
 * VM's name and its kind: NAME.vnc (CFG_L_LOCAL), NAME.serial
 * (CFG_L_SERIAL), NAME.spice (CFG_L_LOCAL_SPICE).  The values go on the
 * wire (auth/proto.h, reload answer): append, never renumber. */
enum cfg_lkind {
    CFG_L_VNC = 0, CFG_L_SPICE, CFG_L_WEB, CFG_L_LOCAL, CFG_L_SERIAL, CFG_L_LOCAL_SPICE,
    CFG_L_KINDS                    /* how many there are */
};
struct cfg_listen {
    enum cfg_lkind kind;
    uint16_t port;                 /* 0 for the socket_dir kinds */
    const struct cfg_vm *vm;       /* NULL for CFG_L_WEB */
};
/* Is kind one of socket_dir's (known by VM name, port 0)? */
static inline bool cfg_lkind_local(unsigned kind)
{
    return kind == CFG_L_LOCAL || kind == CFG_L_SERIAL || kind == CFG_L_LOCAL_SPICE;
}
/* The socket file's extension of a socket_dir kind ("vnc", "serial",
 * "spice"), NULL for a TCP kind. */
const char *cfg_lkind_ext(unsigned kind);
/* The listeners of c, in the order the daemon binds them at start (vnc and
 * spice ports VM by VM, web_port, then the socket_dir sockets: NAME.vnc of
 * the VMs with a vnc backend, NAME.serial of those with serial, NAME.spice
 * of those with a spice backend).  Writes at most max entries; returns how
 * many there are. */
size_t cfg_listeners(const struct cfg *c, struct cfg_listen *out, size_t max);
/* Is b the same socket as a (same port; or the same kind of socket_dir
 * socket of the same VM)? */
bool cfg_listen_same(const struct cfg_listen *a, const struct cfg_listen *b);

#endif
