/* proxy/spice.h — the SPICE side of the gateway: one TLS listener per VM
 * (spice_port), every SPICE channel a connection of its own, speaking
 * spice_proto (proxy.h) in the connection core.
 *
 * Each connection runs the link algorithm of docs/spice.md
 * (proxy/spice_conn.c): TLS, the viewer's link message, the backend link
 * (for the backend's real channel caps), vmgate's own reply offering only
 * SASL, SASL PLAIN checked by the auth helper and the VM's ACL (once per
 * session: later channels of the same session are accepted without a
 * second helper call), the backend ticket (set over QMP), then the relay --
 * with the clipboard policy on the main channel.
 *
 * The session registry and the per-VM tickets live in this module. */
#ifndef VMGATE_SPICE_H
#define VMGATE_SPICE_H

/* Forget every session and ticket (shutdown, after the connections closed). */
void spice_forget_all(void);

#endif
