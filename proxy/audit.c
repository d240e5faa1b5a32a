/* proxy/audit.c — see audit.h. */
#include "proxy/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <systemd/sd-journal.h>

#include "common/json.h"
#include "common/log.h"

struct audit {
    bool journal;
    char path[4096];
    int fd;
    struct ev_loop *loop;
    ev_io w;
    char *q;                            /* queued bytes (whole lines) */
    size_t qlen;
    uint64_t dropped, dropped_reported;
};

size_t atrail_format(char *out, size_t cap, const struct timespec *now, const char *event,
                    const struct audit_who *who, const struct audit_kv *kv, size_t n)
{
    struct jw w;
    struct tm tm;
    char ts[96];
    time_t sec = now->tv_sec;
    gmtime_r(&sec, &tm);
    snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (long)((unsigned long)now->tv_nsec / 1000000u % 1000u));
    jw_init(&w, out, cap);
    jw_open(&w, '{');
    jw_kstr(&w, "time", ts);
    jw_kstr(&w, "event", event);
    if (who && who->conn)
        jw_ku64(&w, "conn", who->conn);
    else
        jw_knull(&w, "conn");
    jw_kstr(&w, "vm", who ? who->vm : NULL);
    jw_kstr(&w, "user", who ? who->user : NULL);
    jw_kstr(&w, "source", who ? who->source : NULL);
    jw_kstr(&w, "via", who ? who->via : NULL);
    for (size_t i = 0; i < n; i++) {
        switch (kv[i].type) {
        case AUDIT_STR: jw_kstr(&w, kv[i].key, kv[i].s); break;
        case AUDIT_U64: jw_ku64(&w, kv[i].key, kv[i].u); break;
        case AUDIT_NULL: jw_knull(&w, kv[i].key); break;
        }
    }
    jw_close(&w, '}');
    return w.overflow ? 0 : w.len;
}

/* Open path for appending, creating it 0640 (owned by uid when given). */
static int open_file(const char *path, uid_t uid, gid_t gid)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW,
                  0640);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        errno = EINVAL;
        return -1;
    }
    if (uid != (uid_t)-1 && geteuid() == 0 && st.st_uid != uid)
        (void)!fchown(fd, uid, gid);
    return fd;
}

struct audit *atrail_open(const char *spec, uid_t uid, gid_t gid, char *err, size_t errlen)
{
    if (!spec || !*spec)
        return NULL;
    struct audit *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    a->fd = -1;
    if (strcmp(spec, "journal") == 0) {
        a->journal = true;
        return a;
    }
    snprintf(a->path, sizeof a->path, "%s", spec);
    a->fd = open_file(a->path, uid, gid);
    if (a->fd < 0 && errno == ENOENT) {
        /* the directory (one level, e.g. /var/log/vmgate) */
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", spec);
        char *d = dirname(dir);
        if (mkdir(d, 0750) == 0 && uid != (uid_t)-1 && geteuid() == 0)
            (void)!chown(d, uid, gid);
        a->fd = open_file(a->path, uid, gid);
    }
    if (a->fd < 0) {
        snprintf(err, errlen, "audit = %s: %s", spec, strerror(errno));
        free(a);
        return NULL;
    }
    return a;
}

/* Write the queue: 0, or -1 when the fd takes no more now. */
static int flush(struct audit *a)
{
    while (a->qlen) {
        ssize_t k = write(a->fd, a->q, a->qlen);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        memmove(a->q, a->q + k, a->qlen - (size_t)k);
        a->qlen -= (size_t)k;
    }
    return 0;
}

static void put_line(struct audit *a, const char *line, size_t len);

/* After a drain: say how many events were lost (once per episode). */
static void report_drops(struct audit *a)
{
    if (a->dropped == a->dropped_reported || a->qlen)
        return;
    uint64_t lost = a->dropped - a->dropped_reported;
    a->dropped_reported = a->dropped;
    log_warn("audit: %llu event(s) dropped (the audit file did not keep up)",
             (unsigned long long)lost);
    char line[512];
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct audit_kv kv[] = { AUDIT_U("dropped", lost) };
    size_t len = atrail_format(line, sizeof line - 1, &now, "audit-dropped", NULL, kv, 1);
    line[len++] = '\n';
    put_line(a, line, len);
}

static void update_watch(struct audit *a)
{
    if (!a->loop)
        return;
    bool want = a->qlen > 0;
    if (want != (bool)ev_is_active(&a->w)) {
        if (want)
            ev_io_start(a->loop, &a->w);
        else
            ev_io_stop(a->loop, &a->w);
    }
}

static void writable_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct audit *a = w->data;
    (void)loop;
    (void)revents;
    if (flush(a) < 0 && errno != EAGAIN) {
        log_err("audit: write to %s failed: %s; %zu bytes discarded", a->path, strerror(errno),
                a->qlen);
        a->dropped++;
        a->qlen = 0;
    }
    report_drops(a);
    update_watch(a);
}

/* One whole line: straight to the fd when nothing waits, else (or for what
 * the fd did not take) into the queue; dropped when the queue is full. */
static void put_line(struct audit *a, const char *line, size_t len)
{
    size_t off = 0;
    if (a->qlen == 0) {
        ssize_t k;
        do
            k = write(a->fd, line, len);
        while (k < 0 && errno == EINTR);
        if (k > 0)
            off = (size_t)k;
        else if (k < 0 && errno != EAGAIN) {
            a->dropped++;
            return;
        }
        if (off == len)
            return;
    }
    if (!a->q)
        a->q = malloc(AUDIT_QUEUE_MAX);
    if (!a->q || len - off > AUDIT_QUEUE_MAX - a->qlen) {
        if (off == 0) {
            a->dropped++;
            return;
        }
        /* part of the line is out: the rest must follow or the file breaks */
        if (!a->q)
            return;
    }
    memcpy(a->q + a->qlen, line + off, len - off);
    a->qlen += len - off;
    update_watch(a);
}

void atrail_attach(struct audit *a, struct ev_loop *loop)
{
    if (!a || a->journal)
        return;
    a->loop = loop;
    ev_io_init(&a->w, writable_cb, a->fd, EV_WRITE);
    a->w.data = a;
    update_watch(a);
}

int atrail_reopen(struct audit *a, const char *why)
{
    if (!a || a->journal)
        return 0;
    int fd = open_file(a->path, (uid_t)-1, (gid_t)-1);
    if (fd < 0) {
        log_err("audit: cannot reopen %s: %s; still writing to the old file", a->path,
                strerror(errno));
        return -1;
    }
    bool active = a->loop && ev_is_active(&a->w);
    if (active)
        ev_io_stop(a->loop, &a->w);
    close(a->fd);
    a->fd = fd;
    if (a->loop) {
        ev_io_set(&a->w, fd, EV_WRITE);
        update_watch(a);
    }
    log_info("audit: reopened %s (%s)", a->path, why);
    return 0;
}

/* "MESSAGE=..." and one VMGATE_KEY=value per field, for sd_journal_sendv. */
static void journal_send(const char *line, const char *event, const struct audit_who *who,
                         const struct audit_kv *kv, size_t n)
{
    enum { MAXF = 24 };
    char store[MAXF][320];
    struct iovec iov[MAXF];
    size_t k = 0;
    char *msg = malloc(strlen(line) + 9);
    if (!msg)
        return;
    sprintf(msg, "MESSAGE=%s", line);
    iov[k++] = (struct iovec){ msg, strlen(msg) };
#define ADD(...)                                                                           \
    do {                                                                                   \
        if (k < MAXF) {                                                                    \
            snprintf(store[k], sizeof store[k], __VA_ARGS__);                              \
            iov[k] = (struct iovec){ store[k], strlen(store[k]) };                         \
            k++;                                                                           \
        }                                                                                  \
    } while (0)
    ADD("SYSLOG_IDENTIFIER=vmgate-audit");
    ADD("VMGATE_EVENT=%s", event);
    if (who && who->conn)
        ADD("VMGATE_CONN=%llu", (unsigned long long)who->conn);
    if (who && who->vm)
        ADD("VMGATE_VM=%s", who->vm);
    if (who && who->user)
        ADD("VMGATE_USER=%s", who->user);
    if (who && who->source)
        ADD("VMGATE_SOURCE=%s", who->source);
    if (who && who->via)
        ADD("VMGATE_VIA=%s", who->via);
    for (size_t i = 0; i < n; i++) {
        char key[64];
        size_t j = 0;
        for (; kv[i].key[j] && j < sizeof key - 1; j++) {
            char c = kv[i].key[j];
            key[j] = c >= 'a' && c <= 'z' ? (char)(c - 32) : c == '-' ? '_' : c;
        }
        key[j] = '\0';
        if (kv[i].type == AUDIT_STR && kv[i].s)
            ADD("VMGATE_%s=%s", key, kv[i].s);
        else if (kv[i].type == AUDIT_U64)
            ADD("VMGATE_%s=%llu", key, (unsigned long long)kv[i].u);
    }
#undef ADD
    /* journald's fields may hold any bytes; MESSAGE is the escaped line */
    sd_journal_sendv(iov, (int)k);
    free(msg);
}

void atrail_emit(struct audit *a, const char *event, const struct audit_who *who,
                const struct audit_kv *kv, size_t n)
{
    if (!a)
        return;
    char line[AUDIT_LINE_MAX];
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    size_t len = atrail_format(line, sizeof line - 1, &now, event, who, kv, n);
    if (len == 0) {
        a->dropped++;
        log_warn("audit: %s event too long to record", event);
        return;
    }
    if (a->journal) {
        journal_send(line, event, who, kv, n);
        return;
    }
    line[len++] = '\n';
    put_line(a, line, len);
}

uint64_t atrail_dropped(const struct audit *a) { return a ? a->dropped : 0; }

void atrail_close(struct audit *a)
{
    if (!a)
        return;
    if (a->loop && ev_is_active(&a->w))
        ev_io_stop(a->loop, &a->w);
    if (a->fd >= 0) {
        int fl = fcntl(a->fd, F_GETFL);
        if (fl >= 0)
            fcntl(a->fd, F_SETFL, fl & ~O_NONBLOCK);   /* the last lines, at exit */
        (void)flush(a);
        close(a->fd);
    }
    free(a->q);
    free(a);
}
