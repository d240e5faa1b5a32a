/* auth/idle.h — wake on connect: the per-VM idle state machine (pure).
 *
 * idle_pause = DURATION: when a VM has had no session for that long,
 * vmgate pauses it (QMP stop) and remembers that it did; the next
 * successful login for the VM resumes it (cont) before the viewer hears
 * that its login succeeded, so its first frame is live.  vmgate never
 * resumes a VM somebody else paused: before stop it asks query-status and
 * stops only a "running" VM; on wake it sends cont only when its own record
 * says it paused the VM and query-status says "paused".
 *
 * This module is the decision alone: no I/O, no clock of its own.  Inputs
 * are events with the time passed in (monotonic ms for timers, wall ms for
 * what is shown); each returns what to do in a struct idle_out: at most one
 * QMP operation to run now (one at a time per VM), whether the login
 * answers held for the VM may go, and whether the shown state changed.  The
 * auth helper (auth/helper.c) feeds it and carries the actions out; see
 * docs/ARCHITECTURE.md, "Wake on connect".
 *
 * idle_describe() turns the state the helper publishes (struct idle_view)
 * into the text `vmgate status` and `vmgate vm VM status` print. */
#ifndef VMGATE_AUTH_IDLE_H
#define VMGATE_AUTH_IDLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum idle_state {
    IDLE_RUNNING = 0,   /* not paused by vmgate (running, or paused by someone else) */
    IDLE_CHECKING,      /* idle long enough: query-status in flight before stop */
    IDLE_STOPPING,      /* stop in flight */
    IDLE_PAUSED,        /* paused by vmgate */
    IDLE_WAKE_CHECK,    /* a login: query-status in flight before cont */
    IDLE_WAKING,        /* cont in flight */
    IDLE_STATE_MAX,
};

enum idle_act {
    IDLE_ACT_NONE = 0,
    IDLE_ACT_QUERY,     /* run query-status, then idle_answer() with the status word */
    IDLE_ACT_STOP,      /* run stop, then idle_answer() */
    IDLE_ACT_CONT,      /* run cont, then idle_answer() */
};

/* What happened, for the log line and the audit event. */
enum idle_event {
    IDLE_EV_NONE = 0,
    IDLE_EV_PAUSED,     /* vmgate paused the VM (stop succeeded) */
    IDLE_EV_RESUMED,    /* vmgate resumed it (cont succeeded) */
    IDLE_EV_LEFT,       /* a check found the VM not running: left alone (why says) */
    IDLE_EV_FAILED,     /* a QMP operation failed (why says which) */
};

struct idle_vm {
    uint64_t idle_ms;           /* idle_pause; 0 = off (nothing ever happens) */
    enum idle_state st;
    unsigned sessions;          /* live sessions, over every network process */
    uint64_t deadline;          /* mono ms: may pause from then (sessions 0, RUNNING) */
    bool wake_wanted;           /* a login came while checking or stopping */
    uint64_t idle_since;        /* wall ms: the last session ended (or vmgate started) */
    char status[16];            /* QEMU's status word last seen ("" = not asked yet) */
};

struct idle_out {
    enum idle_act act;
    bool release;               /* the login answers held for this VM may go now */
    bool changed;               /* the published view changed */
    enum idle_event ev;
    char why[96];               /* for the log line and the audit event */
};

/* What the network processes are told and show. */
struct idle_view {
    uint8_t state;              /* enum idle_state */
    uint64_t since;             /* wall ms: idle since (IDLE_PAUSED and the moves around it) */
    char status[16];            /* QEMU's status word last seen, "" = unknown */
};

/* Start tracking: idle time counts from now for a VM nobody has opened. */
void idle_init(struct idle_vm *v, uint64_t idle_ms, uint64_t now, uint64_t wall);
/* The VM now has n live sessions (the sum over the network processes). */
void idle_sessions(struct idle_vm *v, unsigned n, uint64_t now, uint64_t wall,
                   struct idle_out *o);
/* A login for the VM succeeded.  Returns true when its answer must wait
 * until an idle_out says release (the VM is being paused or resumed). */
bool idle_login(struct idle_vm *v, uint64_t now, struct idle_out *o);
/* The clock moved: pause when idle long enough.  Call at idle_deadline(). */
void idle_tick(struct idle_vm *v, uint64_t now, struct idle_out *o);
/* The QMP operation asked for last finished: ok, and for a query the status
 * word (NULL or "" when it failed). */
void idle_answer(struct idle_vm *v, bool ok, const char *status, uint64_t now, uint64_t wall,
                 struct idle_out *o);
/* Someone else changed the VM's run state on purpose (`vmgate vm VM pause`
 * or `resume`): vmgate's record that it paused the VM is void. */
void idle_forget(struct idle_vm *v, struct idle_out *o);
/* When idle_tick() has something to do (mono ms), or 0: nothing to wait for. */
uint64_t idle_deadline(const struct idle_vm *v);
/* Whether a QMP operation is in flight (an answer is awaited). */
bool idle_busy(const struct idle_vm *v);
void idle_view_of(const struct idle_vm *v, struct idle_view *out);

/* The state as text: "paused by vmgate (idle since 2026-12-07T06:10:00Z)",
 * "pausing (idle since ...)", "resuming", or the status word QEMU gave last
 * ("running", "paused", ...), or "unknown".  Returns out. */
char *idle_describe(const struct idle_view *v, char *out, size_t outsz);
const char *idle_state_name(unsigned st);

#endif
