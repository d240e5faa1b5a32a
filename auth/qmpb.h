/* auth/qmpb.h — the QMP broker: the only code that talks to QEMU's
 * monitors.
 *
 * QMP is QEMU's full control interface: `migrate "exec:..."` runs a shell
 * command as QEMU's user.  So the network-facing process never opens a QMP
 * socket.  It asks the privileged auth helper for one of a few fixed
 * operations on a VM by name; the helper looks the VM's `qmp` path up in
 * its own config, composes the commands itself (qmpb_script) and runs them
 * in a worker (qmpb_run), returning only the outcome.  A compromised
 * network process can therefore ask for a console handoff, a SPICE ticket
 * or (later) a power action on a configured VM — nothing else, and no JSON
 * of its own reaches QEMU. */
#ifndef VMGATE_AUTH_QMPB_H
#define VMGATE_AUTH_QMPB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/qmp.h"

enum qmpb_op {
    QMPB_VNC_HANDOFF = 1,   /* getfd (the attached socket) + add_client vnc skipauth */
    QMPB_SPICE_TICKET,      /* set_password spice ARG + expire_password never */
    QMPB_QUERY_STATUS,      /* query-status; the answer's "status" */
    QMPB_STOP,              /* stop: pause the VM's CPUs */
    QMPB_CONT,              /* cont: resume them */
    QMPB_POWERDOWN,         /* system_powerdown: ACPI power button */
    QMPB_RESET,             /* system_reset: hard reset */
    QMPB_OP_MAX,
};

#define QMPB_TICKET_LEN   48          /* the SPICE ticket: exactly 48 hex digits */
#define QMPB_ARG_MAX      63

/* The name of op for logs ("vnc-handoff"), or NULL if op is not one. */
const char *qmpb_op_name(unsigned op);
/* Whether op changes the VM's run state (stop, cont, powerdown, reset):
 * such an op needs an authorization of its own in the helper, never just
 * the network process's word. */
bool qmpb_op_is_power(unsigned op);
/* Whether op needs a socket attached to the request. */
bool qmpb_op_wants_fd(unsigned op);
/* Compose op's commands into cmds (room for QMP_RUN_MAX).  id names the
 * handed-off fd ("vmgate-ID"); arg is op's argument (the ticket), checked
 * here: a ticket that is not 48 lower-case hex digits is refused, so no
 * byte of it can change the JSON.  Returns the count, or -1 with why set. */
int qmpb_script(unsigned op, uint64_t id, const char *arg, struct qmp_cmd *cmds,
                char *why, size_t whylen);
/* Run cmds on the monitor socket at path (blocking, every read and write
 * bounded by the deadline timeout_ms from the start), with passfd attached
 * to the commands that ask for it.  Returns 0, or -1 with why set and
 * *refused true when QEMU answered with an error.  For QMPB_QUERY_STATUS
 * out gets the status word ("running", "paused", ...); out may be NULL. */
int qmpb_run(const char *path, const struct qmp_cmd *cmds, size_t n, int passfd, int timeout_ms,
             char *out, size_t outsz, bool *refused, char *why, size_t whylen);

/* Reboot the guest through the QEMU guest agent on the unix socket at
 * path: guest-sync-delimited (the agent must answer with our token within
 * the deadline, so a VM without a running agent fails here), then
 * guest-shutdown mode reboot, which the agent does not answer.  0 once it
 * is delivered, or -1 with why. */
int qmpb_qga_reboot(const char *path, int timeout_ms, char *why, size_t whylen);

/* Set the guest's clock to the host's (guest-set-time with the host's
 * CLOCK_REALTIME in ns since the Epoch; the agent also writes it to the
 * guest's RTC) through the guest agent at path: guest-sync-delimited, then
 * the command and its answer, all within timeout_ms.  For a guest resumed
 * after a pause, whose clock stood still meanwhile.  0 on {"return": ...},
 * or -1 with why (the agent's error, or no agent). */
int qmpb_qga_set_time(const char *path, int timeout_ms, char *why, size_t whylen);

#endif
