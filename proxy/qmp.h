/* proxy/qmp.h — the QMP handoff: ask QEMU for a fresh VNC client on a
 * socketpair (getfd + add_client skipauth=true), so QEMU needs no console
 * listener at all.
 *
 * The parser part is pure: qmp_next_line() finds one complete JSON line in a
 * buffer and qmp_classify() says whether it is the greeting, an event, a
 * success or an error (with QEMU's "desc").  QMP answers are one object per
 * line; events may arrive between a command and its answer and are skipped. */
#ifndef VMGATE_QMP_H
#define VMGATE_QMP_H

#include <stddef.h>

#define QMP_LINE_MAX 65536   /* a longer line is a broken or hostile peer */

enum qmp_kind { QMP_GREETING, QMP_EVENT, QMP_RETURN, QMP_ERROR, QMP_UNKNOWN };

/* Find a complete line in p[0..n).  Returns its length including '\n', 0 if
 * none yet, or -1 if n reached QMP_LINE_MAX without a newline. */
long qmp_next_line(const char *p, size_t n);
/* Classify one line; for QMP_ERROR copy QEMU's "desc" into desc. */
enum qmp_kind qmp_classify(const char *line, size_t n, char *desc, size_t desclen);

#endif
