/* proxy/serial_hub.h — one VM's serial console, shared by its sessions.
 *
 * QEMU's serial chardev socket (`-chardev socket,id=s0,path=PATH,server=on,
 * wait=off -serial chardev:s0`) takes one client and drops the guest's
 * output while nobody is connected.  So vmgate is that one client, all the
 * time: the hub connects at start, reconnects with a backoff (0.25 s
 * doubling to 5 s) when QEMU is not there or goes away, keeps the latest
 * SERIAL_RING bytes of output (serial_ring.h) and fans every byte out to
 * the attached sessions.  One session holds the keyboard: the latest to
 * attach; the others get a line saying who took it, and what they type is
 * read and dropped.  When the holder leaves, the newest remaining session
 * gets it (with a line).
 *
 * A session is one end of a socketpair: the other end is the backend fd of
 * a serial_proto connection (proxy/serial_conn.c), so the connection core
 * relays it like any VM socket and the hub never sees the viewer.  Each
 * session has a bounded backlog (SERIAL_SESSION_QUEUE, serial_outq): a
 * terminal that does not keep up loses its backlog for a marker line, and
 * nothing else waits for it.  A session ends when its end of the pair
 * closes (the core closed the connection).
 *
 * Hubs live in the network process that watches the NAME.serial listeners
 * (network process 1): only one process may be QEMU's client. */
#ifndef VMGATE_PROXY_SERIAL_HUB_H
#define VMGATE_PROXY_SERIAL_HUB_H

#include <stddef.h>
#include <stdint.h>

#include <ev.h>

#include "common/config.h"

#define SERIAL_RING           (64 * 1024)    /* output kept for the next attach */
#define SERIAL_SESSION_QUEUE  (SERIAL_RING + 4096)   /* a session's backlog */
#define SERIAL_MAX_SESSIONS   16             /* attached at once, per VM */

struct serial_hub;

/* Create a hub for every VM of cfg with `serial` and start connecting.
 * 0, or -1 (out of memory). */
int serial_hubs_start(struct ev_loop *loop, const struct cfg *cfg);
/* A reload took cfg: stop the hubs of VMs that are gone or lost `serial`
 * (their sessions get a line saying so, then the close), reconnect those
 * whose `serial` changed (sessions stay, told by a line), start hubs for
 * VMs that gained one.  Hubs hold copies, never pointers into cfg.  0, or
 * -1 (out of memory: a new hub is missing). */
int serial_hubs_reload(struct ev_loop *loop, const struct cfg *cfg);
/* Close every session and QEMU connection, free the hubs. */
void serial_hubs_stop(void);
/* The hub of the VM named vm->name in this process, or NULL. */
struct serial_hub *serial_hub_find(const struct cfg_vm *vm);
/* Attach a session of user (conn: its connection id, for the log): it gets
 * a greeting line, the ring's bytes and from then on the output, and the
 * keyboard.  Returns the connection's end of the socketpair (non-blocking),
 * or -1 with why ("too many sessions", a socketpair error). */
int serial_hub_attach(struct serial_hub *h, const char *user, uint64_t conn, char *why,
                      size_t whylen);

#endif
