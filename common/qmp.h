/* common/qmp.h — QMP exchanges as data.
 *
 * Every conversation vmgate has with QEMU's monitor has the same shape:
 * greeting, qmp_capabilities, then a short script of commands, each
 * answered by "return" or "error" (events may arrive anywhere and are
 * skipped).  The VNC handoff is getfd (with a socketpair end attached) +
 * add_client skipauth=true; the SPICE ticket is set_password +
 * expire_password; power and wake-on-connect will be query-status / stop /
 * cont / system_powerdown.  qmp_run_feed() runs such a script over the
 * bytes received so far and says what to do next; it does no I/O, so the
 * unit test and the fuzzer drive it directly.
 *
 * The parser part: qmp_next_line() finds one complete JSON line in a
 * buffer and qmp_classify() says whether it is the greeting, an event, a
 * success or an error (with QEMU's "desc"). */
#ifndef VMGATE_QMP_H
#define VMGATE_QMP_H

#include <stdbool.h>
#include <stddef.h>

#define QMP_LINE_MAX 65536   /* a longer line is a broken or hostile peer */

enum qmp_kind { QMP_GREETING, QMP_EVENT, QMP_RETURN, QMP_ERROR, QMP_UNKNOWN };

/* Find a complete line in p[0..n).  Returns its length including '\n', 0 if
 * none yet, or -1 if n reached QMP_LINE_MAX without a newline. */
long qmp_next_line(const char *p, size_t n);
/* Classify one line; for QMP_ERROR copy QEMU's "desc" into desc. */
enum qmp_kind qmp_classify(const char *line, size_t n, char *desc, size_t desclen);

/* One command of a script: a complete JSON line (ending in '\n'). */
#define QMP_CMD_MAX  512
#define QMP_RUN_MAX  4
struct qmp_cmd {
    char json[QMP_CMD_MAX];
    bool pass_fd;                /* attach the caller's fd (SCM_RIGHTS) */
};

enum qmp_step {
    QMP_NEED,                    /* wait for more bytes */
    QMP_SEND,                    /* send *send now, then feed again */
    QMP_DONE,                    /* every command returned */
    QMP_FAIL,                    /* run->err says why; run->refused: QEMU said "error" */
};

struct qmp_run {
    struct qmp_cmd cmd[QMP_RUN_MAX];
    size_t n;
    size_t answered;             /* commands answered so far (caps counts as one) */
    bool greeted, sent;          /* greeting seen; a command is waiting for its answer */
    bool refused;
    char err[200];
};

/* Copy a script of n (<= QMP_RUN_MAX) commands.  Returns 0, or -1 if n is
 * too large. */
int qmp_run_init(struct qmp_run *r, const struct qmp_cmd *cmds, size_t n);
/* Advance the script over the received bytes p[0..n): consumes complete
 * lines (*used says how many bytes) and returns the next step.  After
 * QMP_SEND the caller sends *send and feeds the rest again. */
enum qmp_step qmp_run_feed(struct qmp_run *r, const char *p, size_t n, size_t *used,
                           const struct qmp_cmd **send);
/* Wipe the script (commands may hold a ticket). */
void qmp_run_wipe(struct qmp_run *r);

#endif
