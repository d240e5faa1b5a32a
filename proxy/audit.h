/* proxy/audit.h — the audit trail: one JSON object per event, to a file
 * (one per line) or to the systemd journal.
 *
 * Every object starts with the common keys, in this order: "time" (RFC 3339
 * UTC with milliseconds), "event", "conn", "vm", "user", "source", "via"
 * (null where not applicable), then the event's own keys (README.md,
 * "Audit trail", lists them).  Strings go through common/json.h, so no
 * user name or reason can end a line.
 *
 * The network process writes it without blocking its loop: the file is
 * opened O_APPEND|O_NONBLOCK (as root, before the privilege drop, and
 * handed to the unprivileged user so it can reopen it after logrotate);
 * each event is one write() of a whole line; what the kernel does not take
 * waits in a bounded queue flushed when the fd is writable.  An event that
 * does not fit the queue is dropped and counted; the count is logged and
 * written as an "audit-dropped" event once the queue drains.
 *
 * The functions are atrail_*, not audit_*: libaudit (which libpam loads
 * into the auth helper's workers) exports audit_open and audit_close, and
 * an executable's symbol of the same name would interpose on them. */
#ifndef VMGATE_PROXY_AUDIT_H
#define VMGATE_PROXY_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include <ev.h>

#define AUDIT_LINE_MAX  8192            /* one event, escaped */
#define AUDIT_QUEUE_MAX (256u * 1024)   /* bytes waiting for the fd */

/* Who an event is about; NULL / 0 fields are written as null. */
struct audit_who {
    uint64_t conn;                      /* 0: none */
    const char *vm, *user, *source, *via;
};

/* One event-specific key. */
enum audit_type { AUDIT_STR, AUDIT_U64, AUDIT_NULL };
struct audit_kv {
    const char *key;
    enum audit_type type;
    const char *s;                      /* AUDIT_STR (NULL: null) */
    uint64_t u;                         /* AUDIT_U64 */
};
#define AUDIT_S(k, v) { (k), AUDIT_STR, (v), 0 }
#define AUDIT_U(k, v) { (k), AUDIT_U64, NULL, (v) }

struct audit;

/* Format one event as a JSON object (no newline) into out.  now: the
 * event's wall-clock time.  Returns the length, or 0 if it does not fit
 * cap.  Pure. */
size_t atrail_format(char *out, size_t cap, const struct timespec *now, const char *event,
                    const struct audit_who *who, const struct audit_kv *kv, size_t n);

/* Open the trail named by spec ("journal" or an absolute path; "" gives
 * NULL and no error).  As root with uid/gid != -1, a file (and its
 * directory, when this creates it) is given to that user, mode 0640, so the
 * network process can reopen it.  NULL with err set on failure. */
struct audit *atrail_open(const char *spec, uid_t uid, gid_t gid, char *err, size_t errlen);
/* Attach to the network process's loop (the write watcher). */
void atrail_attach(struct audit *a, struct ev_loop *loop);
/* SIGUSR1 or a reload: reopen the file by its path (after logrotate moved
 * it); the queued events go to the new file.  why names the trigger in the
 * log line.  0, or -1 (the old fd stays; logged). */
int atrail_reopen(struct audit *a, const char *why);
/* Record one event (a == NULL: nothing). */
void atrail_emit(struct audit *a, const char *event, const struct audit_who *who,
                const struct audit_kv *kv, size_t n);
/* Events dropped so far (queue full, too long). */
uint64_t atrail_dropped(const struct audit *a);
/* Write what is queued (best effort, bounded) and free a. */
void atrail_close(struct audit *a);

#endif
