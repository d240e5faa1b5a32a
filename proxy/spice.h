/* proxy/spice.h — the SPICE side of the gateway: one TLS listener per VM
 * (spice_port), every SPICE channel a connection of its own.
 *
 * The gateway owns the listeners and hands every accepted socket to
 * spice_accept().  Each connection then runs the link algorithm of
 * docs/spice.md (proxy/spice_conn.c): TLS, the viewer's link message, the
 * backend link (for the backend's real channel caps), vmgate's own reply
 * offering only SASL, SASL PLAIN checked by the auth helper and the VM's ACL
 * (once per session: later channels of the same session are accepted
 * without a second helper call), the backend ticket (set over QMP), then the
 * relay -- with the clipboard policy on the main channel.
 *
 * State lives in this module (a static registry of connections and
 * sessions), not in struct proxy; spice_accept() shares px's loop, config,
 * TLS context, auth client, connection ids, unauthenticated-connection
 * count and failure hook with the VNC side. */
#ifndef VMGATE_SPICE_H
#define VMGATE_SPICE_H

#include <sys/socket.h>

#include "common/config.h"
#include "proxy/proxy.h"

/* Take over an accepted, non-blocking socket fd for vm's SPICE listener.
 * Enforces the unauthenticated-connection caps (closing fd with a log line
 * when one bites) and starts the TLS handshake. */
void spice_accept(struct proxy *px, const struct cfg_vm *vm, int fd, const struct sockaddr *sa,
                  socklen_t salen);
/* Close every connection and forget every SPICE session (shutdown). */
void spice_close_all(struct proxy *px, const char *why);
/* Number of live SPICE connections (for status and tests). */
unsigned spice_conn_count(void);

#endif
