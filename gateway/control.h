/* gateway/control.h — the control socket (`control`, default
 * /run/vmgate/control): `vmgate status`, `vmgate kick`, and later `vmgate
 * vm` and `vmgate reload`.
 *
 * Request: one line, at most CTL_REQ_MAX bytes with its '\n':
 *
 *     vmgate1 VERB [KEY=VALUE ...]\n
 *
 * words separated by single spaces; VERB and KEY are [a-z0-9_-]; VALUE is
 * percent-encoded (every byte outside '!'..'~', and '%', as %XX; %00 is
 * refused), so any user name or reason fits one line.  "vmgate1" is the
 * version: a later format gets another word.  Verbs now:
 *
 *     status [format=json|text]
 *     kick (id=N | user=U | vm=V)... [reason=TEXT]
 *     vm name=V action=status|shutdown|reset|reboot|pause|resume
 *
 * Reply: a line "ok" or "error MESSAGE", then the body (status: JSON or
 * text; kick: "kicked N session(s)"), then the server closes.  A request
 * that is not a line within CTL_REQ_MAX bytes, or not well-formed, gets
 * "error ..." and the close.  One request per connection.
 *
 * Authorization: the peer's uid and groups from the kernel (SO_PEERCRED,
 * SO_PEERGROUPS): root, or a member of `admin_group`.  Except `vm`, which
 * any local user may send: the client's socket goes to the auth helper
 * with the request, and the helper decides from its uid (auth/helper.c
 * power_request); its errors start "refused:", "failed:", "unavailable:"
 * or "usage:". */
#ifndef VMGATE_GATEWAY_CONTROL_H
#define VMGATE_GATEWAY_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <ev.h>

#define CTL_VERSION   "vmgate1"
#define CTL_REQ_MAX   4096
#define CTL_ARGS_MAX  16
#define CTL_WORD_MAX  32
#define CTL_VALUE_MAX 1024
#define CTL_CLIENTS_MAX 8               /* requests served at once */
#define CTL_TIMEOUT   5.0               /* seconds for a request to arrive and its reply to go */
#define CTL_VM_TIMEOUT 25.0             /* seconds for a `vm` answer (the monitor may be busy) */

struct ctl_req {
    char verb[CTL_WORD_MAX];
    size_t n;
    struct {
        char key[CTL_WORD_MAX];
        char val[CTL_VALUE_MAX + 1];    /* decoded, NUL-terminated (no NUL inside) */
    } arg[CTL_ARGS_MAX];
};

/* Parse one request line (without its '\n').  0, or -1 with why set.  Pure. */
int ctl_parse(const char *line, size_t len, struct ctl_req *r, char *why, size_t whylen);
/* The value of key in r, or NULL. */
const char *ctl_arg(const struct ctl_req *r, const char *key);
/* Append " key=" + the percent-encoded value to out (a NUL-terminated
 * string of capacity cap).  0, or -1 if it does not fit.  Pure. */
int ctl_append_arg(char *out, size_t cap, const char *key, const char *val);

/* Create the listening socket at path (as root, before the privilege
 * drop): its directory (0755) if missing, a stale socket removed (one that
 * still answers is another vmgate's: an error), mode 0666 (the kernel's
 * peer credentials decide).  The fd, or -1 with why. */
int ctl_listen(const char *path, char *why, size_t whylen);

struct proxy;
struct cfg;
struct ctl_server;
/* Serve fd on loop: sessions from px, VMs from cfg.  admin_gid: the
 * admin_group's gid (have_gid false: root only).  nproc > 1: the replies say
 * they cover this network process only. */
struct ctl_server *ctl_server_new(struct ev_loop *loop, int fd, struct proxy *px,
                                  const struct cfg *cfg, bool have_gid, gid_t admin_gid,
                                  unsigned nproc);
void ctl_server_free(struct ctl_server *s);
/* `reload`: fn(arg, by) starts a config reload for the authorized peer
 * named by; the answer waits until the daemon calls ctl_reload_done (ok:
 * "ok" + msg; else "error " + msg, one line).  Without fn, reload is
 * refused. */
/* processes > 1: status and kick also ask the other network processes. */
struct peer_client;
void ctl_server_set_peers(struct ctl_server *s, struct peer_client *pc);
typedef void (*ctl_reload_fn)(void *arg, const char *by);
void ctl_server_on_reload(struct ctl_server *s, ctl_reload_fn fn, void *arg);
/* Answer the waiting `reload` request, if its client is still there. */
void ctl_reload_done(struct ctl_server *s, bool ok, const char *msg);

/* The client commands: vmgate status, vmgate kick (argv[0] is the command). */
int ctl_status_cmd(int argc, char **argv);
int ctl_kick_cmd(int argc, char **argv);
int ctl_reload_cmd(int argc, char **argv);
/* `vmgate vm VM ACTION`: exit 0 ok, 1 refused or failed, 2 usage, 3 the VM
 * cannot be reached (not running, no qmp/qga configured). */
int ctl_vm_cmd(int argc, char **argv);
/* firewall/firewall.h's fw_ban_note_fn: tell the running vmgate about a
 * ban made by hand (its audit trail, its metrics). */
void ctl_note_ban(const char *cfgpath, bool banned, const char *key, uint64_t until_ms);

#endif
