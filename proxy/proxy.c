/* proxy/proxy.c — the proxy context and what both connection kinds share:
 * admission caps, connection log lines, login failure wording. */
#include "proxy/proxy_int.h"
#include "proxy/spice.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/addr.h"
#include "common/json.h"
#include "common/loglimit.h"
#include "proxy/audit.h"
#include "proxy/core.h"

void proxy_addr_str(const struct sockaddr *sa, char *out, size_t outsz)
{
    addr_sockaddr_str(sa, out, outsz);
}

void proxy_source_key(const struct sockaddr *sa, char *out, size_t outsz)
{
    char a[64];
    proxy_addr_str(sa, a, sizeof a);
    if (addr_source_key(a, out, outsz) != 0)
        snprintf(out, outsz, "%s", a);      /* "local" (unix sockets) */
}

void proxy_init(struct proxy *px, struct ev_loop *loop, const struct cfg *cfg,
                SSL_CTX *ssl_ctx, struct auth_client *auth)
{
    memset(px, 0, sizeof *px);
    px->loop = loop;
    px->cfg = cfg;
    px->ssl_ctx = ssl_ctx;
    px->auth = auth;
    px->next_id = 1;
    px->id_counter = NULL;
    px->st.vm_bytes = calloc(2 * (cfg->n_vms ? cfg->n_vms : 1), sizeof *px->st.vm_bytes);
}

struct proxy_vm_note {
    struct proxy_vm_note *next;
    char vm[CFG_NAME_MAX + 1];
    char note[PROXY_VM_NOTE_MAX];
};

int proxy_vm_note_set(struct proxy *px, const char *vm, const char *note)
{
    struct proxy_vm_note **pp = &px->vm_notes;
    while (*pp && strcmp((*pp)->vm, vm) != 0)
        pp = &(*pp)->next;
    if (!note || !*note) {
        if (*pp) {
            struct proxy_vm_note *gone = *pp;
            *pp = gone->next;
            free(gone);
        }
        return 0;
    }
    if (!*pp) {
        if (!(*pp = calloc(1, sizeof **pp)))
            return -1;
        snprintf((*pp)->vm, sizeof (*pp)->vm, "%s", vm);
    }
    snprintf((*pp)->note, sizeof (*pp)->note, "%s", note);
    return 0;
}

const char *proxy_vm_note(const struct proxy *px, const char *vm)
{
    for (const struct proxy_vm_note *n = px->vm_notes; n; n = n->next)
        if (strcmp(n->vm, vm) == 0)
            return n->note;
    return NULL;
}

void proxy_fini(struct proxy *px)
{
    free(px->st.vm_bytes);
    px->st.vm_bytes = NULL;
    while (px->vm_notes) {
        struct proxy_vm_note *n = px->vm_notes;
        px->vm_notes = n->next;
        free(n);
    }
}

const double proxy_login_buckets[PROXY_LOGIN_BUCKETS] = { 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10 };

/* printf into the metrics text. */
static void mprintf(struct jw *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void mprintf(struct jw *w, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    jw_raw(w, line);
}

void proxy_metrics_text(const struct proxy *px, struct jw *w)
{
    static const char *const vias[] = { "tls", "web", "unix" };
    const struct cfg *cfg = px->cfg;
    const struct proxy_stats *st = &px->st;
    jw_raw(w, "# HELP vmgate_sessions Console sessions open now.\n"
              "# TYPE vmgate_sessions gauge\n");
    for (size_t i = 0; i < cfg->n_vms; i++)
        for (size_t v = 0; v < sizeof vias / sizeof vias[0]; v++) {
            unsigned n = 0;
            for (const struct conn *c = px->conns; c; c = c->next)
                if (c->vm == &cfg->vms[i] && c->logged_start && !c->end.dead &&
                    strcmp(c->via, vias[v]) == 0)
                    n++;
            mprintf(w, "vmgate_sessions{vm=\"%s\",via=\"%s\"} %u\n", cfg->vms[i].name,
                    vias[v], n);
        }
    jw_raw(w, "# HELP vmgate_connections Viewer connections open now (any state).\n"
              "# TYPE vmgate_connections gauge\n");
    mprintf(w, "vmgate_connections %u\n", px->n_conns);
    jw_raw(w, "# HELP vmgate_logins_total Logins answered, by result.\n"
              "# TYPE vmgate_logins_total counter\n");
    mprintf(w, "vmgate_logins_total{result=\"ok\"} %llu\n", (unsigned long long)st->logins_ok);
    mprintf(w, "vmgate_logins_total{result=\"failed\"} %llu\n",
            (unsigned long long)st->logins_failed);
    jw_raw(w, "# HELP vmgate_bytes_total Bytes relayed, by VM and direction.\n"
              "# TYPE vmgate_bytes_total counter\n");
    for (size_t i = 0; i < cfg->n_vms; i++)
        for (int d = 0; d < 2; d++)
            mprintf(w, "vmgate_bytes_total{vm=\"%s\",direction=\"%s\"} %llu\n",
                    cfg->vms[i].name, d ? "from_vm" : "to_vm",
                    (unsigned long long)(st->vm_bytes ? st->vm_bytes[2 * i + (size_t)d] : 0));
    jw_raw(w, "# HELP vmgate_login_seconds Time from the credentials to the helper's answer.\n"
              "# TYPE vmgate_login_seconds histogram\n");
    uint64_t cum = 0;
    for (int i = 0; i < PROXY_LOGIN_BUCKETS; i++) {
        cum += st->login_le[i];
        mprintf(w, "vmgate_login_seconds_bucket{le=\"%g\"} %llu\n", proxy_login_buckets[i],
                (unsigned long long)cum);
    }
    mprintf(w, "vmgate_login_seconds_bucket{le=\"+Inf\"} %llu\n",
            (unsigned long long)st->login_count);
    mprintf(w, "vmgate_login_seconds_sum %.6f\n", st->login_sum);
    mprintf(w, "vmgate_login_seconds_count %llu\n", (unsigned long long)st->login_count);
    jw_raw(w, "# HELP vmgate_handshake_failures_total Viewer handshakes that failed, by kind.\n"
              "# TYPE vmgate_handshake_failures_total counter\n");
    mprintf(w, "vmgate_handshake_failures_total{kind=\"tls\"} %llu\n",
            (unsigned long long)st->tls_failed);
    jw_raw(w, "# HELP vmgate_audit_dropped_total Audit events lost (queue full).\n"
              "# TYPE vmgate_audit_dropped_total counter\n");
    mprintf(w, "vmgate_audit_dropped_total %llu\n", (unsigned long long)atrail_dropped(px->audit));
}

void proxy_set_ssl_ctx(struct proxy *px, SSL_CTX *ctx) { px->ssl_ctx = ctx; }

/* Log a cap refusal at most once a second, with a count of the silenced. */
static void cap_refused(struct proxy *px, const char *rhost, const char *which, unsigned limit,
                        const char *proto)
{
    ev_tstamp now = ev_now(px->loop);
    if (now - px->cap_log_at >= 1.0) {
        log_warn("refused %sconnection from %s: too many unauthenticated connections "
                 "(%s limit %u)%s", proto, rhost, which, limit,
                 px->cap_suppressed ? " (and more refusals since the last message)" : "");
        px->cap_log_at = now;
        px->cap_suppressed = 0;
    } else {
        px->cap_suppressed++;
    }
}

uint64_t proxy_new_id(struct proxy *px)
{
    if (px->id_counter)
        return __atomic_fetch_add(px->id_counter, 1, __ATOMIC_RELAXED);
    return px->next_id++;
}

bool proxy_admit(struct proxy *px, const char *rhost, const char *skey, const char *proto)
{
    if (conn_unauth_from(px, skey) >= px->cfg->max_unauth_per_source) {
        cap_refused(px, rhost, "per-source", px->cfg->max_unauth_per_source, proto);
        return false;
    }
    if (px->n_unauth >= px->cfg->max_unauth && !conn_evict_for(px, rhost, skey)) {
        cap_refused(px, rhost, "global", px->cfg->max_unauth, proto);
        return false;
    }
    return true;
}

/* Slots sorted by source key, then age (oldest first). */
static int slot_cmp(const void *a, const void *b)
{
    const struct proxy_slot *x = *(const struct proxy_slot *const *)a;
    const struct proxy_slot *y = *(const struct proxy_slot *const *)b;
    int r = strcmp(x->skey, y->skey);
    if (r)
        return r;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

ssize_t proxy_pick_evict(const struct proxy_slot *slots, size_t n, const char *newkey)
{
    if (n == 0)
        return -1;
    const struct proxy_slot **v = malloc(n * sizeof *v);
    if (!v)
        return -1;
    size_t mine = 0;
    for (size_t i = 0; i < n; i++) {
        v[i] = &slots[i];
        mine += strcmp(slots[i].skey, newkey) == 0;
    }
    qsort(v, n, sizeof *v, slot_cmp);
    const struct proxy_slot *best = NULL;   /* oldest evictable slot of the biggest holder */
    size_t best_held = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        const struct proxy_slot *oldest = NULL;
        for (; j < n && strcmp(v[j]->skey, v[i]->skey) == 0; j++)
            if (!oldest && v[j]->evictable)
                oldest = v[j];
        size_t held = j - i;
        if (oldest && (held > best_held || (held == best_held && oldest->seq < best->seq))) {
            best = oldest;
            best_held = held;
        }
        i = j;
    }
    ssize_t r = best && mine + 1 < best_held ? best - slots : -1;
    free(v);
    return r;
}

void conn_end_set(struct conn_end *e, enum log_level lvl, const char *fmt, va_list ap)
{
    if (e->dead)
        return;
    e->dead = true;
    e->level = lvl;
    vsnprintf(e->why, sizeof e->why, fmt, ap);
}

/* Lines of unauthenticated connections, per source (IPv6 per /64): 20 at
 * once, then one a second; the rest are counted and summarized every 10 s.
 * One limiter per network process (each has its own log budget). */
#define PRELOGIN_BURST    20
#define PRELOGIN_RATE     1.0
#define PRELOGIN_REPORT_S 10.0
#define PRELOGIN_SOURCES  1024

static struct loglimit *g_prelogin;

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Should a line of an unauthenticated connection from rhost be logged?
 * Logs the summaries that are due first. */
static bool prelogin_admit(const char *rhost)
{
    if (!g_prelogin)
        g_prelogin = loglimit_new(PRELOGIN_BURST, PRELOGIN_RATE, PRELOGIN_REPORT_S,
                                  PRELOGIN_SOURCES);
    if (!g_prelogin)
        return true;
    double now = mono_s();
    char summary[LOGLIMIT_SUMMARY_MAX];
    while (loglimit_due(g_prelogin, now, summary))
        log_warn("%s", summary);
    bool ok = loglimit_admit(g_prelogin, rhost, now, summary);
    if (summary[0])
        log_warn("%s", summary);
    return ok;
}

void proxy_conn_log(enum log_level lvl, uint64_t id, const char *vm, const char *user,
                    const char *rhost, const char *fmt, va_list ap)
{
    if (lvl > log_get_level())
        return;
    bool authed = user && user[0];
    if (!authed && !prelogin_admit(rhost))
        return;
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    char u[256];
    if (authed)
        log_msg(lvl, "conn=%llu vm=%s user=%s from=%s: %s", (unsigned long long)id, vm,
                log_safe_word(u, sizeof u, user, strlen(user)), rhost, msg);
    else
        log_msg(lvl, "conn=%llu vm=%s from=%s: %s", (unsigned long long)id, vm, rhost, msg);
}

const char *proxy_login_reason(enum authp_result r)
{
    switch (r) {
    case AUTHP_BAD_PASSWORD: return "bad password";
    case AUTHP_UNKNOWN_USER: return "unknown user";
    case AUTHP_NOT_ALLOWED:  return "not allowed on this vm";
    case AUTHP_ACCOUNT:      return "account refused";
    default:                 return "auth error";
    }
}

double proxy_fail_delay(const struct proxy *px)
{
    double d = (double)px->cfg->fail_delay_ms / 1000.0;
    return d > 0 ? d : 0.0001;
}

void proxy_close_all(struct proxy *px, const char *why)
{
    conn_close_all(px, why);
    spice_forget_all();
}

double proxy_fail_delay_from(const struct proxy *px, double submitted)
{
    double d = proxy_fail_delay(px) - (ev_now(px->loop) - submitted);
    if (submitted <= 0 || d > proxy_fail_delay(px))
        d = proxy_fail_delay(px);   /* no submit time, or a clock oddity */
    return d > 0.0001 ? d : 0.0001;
}
