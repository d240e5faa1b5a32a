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
#include "auth/idle.h"
#include "auth/proto.h"
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

/* The index of vm in the config, or -1 (a stand-in such as web's "?NAME"). */
static ssize_t vm_index(const struct proxy *px, const char *vm)
{
    for (size_t i = 0; i < px->cfg->n_vms; i++)
        if (strcmp(px->cfg->vms[i].name, vm) == 0)
            return (ssize_t)i;
    return -1;
}

/* AUTHP_NOTE_IDLE: keep the VM's state for `vmgate status`; the copy that
 * carries the audit flag writes the `power` event (by vmgate). */
static void idle_note(void *ctx, const struct authp_idle_note *note)
{
    struct proxy *px = ctx;
    ssize_t i = px->idle ? vm_index(px, note->vm) : -1;
    if (i < 0)
        return;
    struct idle_view *v = &px->idle[i];
    v->state = note->state;
    v->since = note->since;
    snprintf(v->status, sizeof v->status, "%s", note->status);
    if (!note->audit || !px->audit ||
        (note->event != IDLE_EV_PAUSED && note->event != IDLE_EV_RESUMED))
        return;
    struct audit_who who = { 0, px->cfg->vms[i].name, NULL, NULL, NULL };
    struct audit_kv kv[] = {
        AUDIT_S("action", note->event == IDLE_EV_PAUSED ? "pause" : "resume"),
        AUDIT_S("result", "ok"),
        AUDIT_S("by", "vmgate"),
        AUDIT_S("reason", note->why[0] ? note->why : NULL),
    };
    atrail_emit(px->audit, "power", &who, kv, sizeof kv / sizeof kv[0]);
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
    px->bans = calloc(PROXY_BANS_MAX, sizeof *px->bans);
    px->idle = calloc(cfg->n_vms ? cfg->n_vms : 1, sizeof *px->idle);
    px->idle_reported = calloc(cfg->n_vms ? cfg->n_vms : 1, sizeof *px->idle_reported);
    auth_client_on_idle_note(auth, idle_note, px);
    /* A network process that replaces a dead one reuses its socket: say
     * "none" for every idle_pause VM, so the dead one's count is gone. */
    for (size_t i = 0; i < cfg->n_vms; i++)
        if (cfg->vms[i].idle_pause_ms && auth)
            (void)auth_client_report_sessions(auth, cfg->vms[i].name, 0);
}

int proxy_cfg_changed(struct proxy *px, const struct cfg *old)
{
    const struct cfg *cfg = px->cfg;
    uint64_t *nb = calloc(2 * (cfg->n_vms ? cfg->n_vms : 1), sizeof *nb);
    int rc = nb ? 0 : -1;
    for (size_t i = 0; i < cfg->n_vms && px->st.vm_bytes && nb; i++) {
        const struct cfg_vm *o = cfg_find_vm(old, cfg->vms[i].name);
        if (o) {
            size_t oi = (size_t)(o - old->vms);
            nb[2 * i] = px->st.vm_bytes[2 * oi];
            nb[2 * i + 1] = px->st.vm_bytes[2 * oi + 1];
        }
    }
    free(px->st.vm_bytes);
    px->st.vm_bytes = nb;
    /* idle_pause views and reported counts are per cfg->vms[i]: carry them
     * over by name into arrays of the new size (a VM added by the reload
     * would index past the old ones) */
    size_t n = cfg->n_vms ? cfg->n_vms : 1;
    struct idle_view *iv = calloc(n, sizeof *iv);
    unsigned *ir = calloc(n, sizeof *ir);
    if (!iv || !ir) {
        free(iv), free(ir);
        free(px->idle), free(px->idle_reported);
        px->idle = NULL;
        px->idle_reported = NULL;
        return -1;                    /* (idle views read NULL as "unknown") */
    }
    for (size_t i = 0; i < cfg->n_vms && px->idle && px->idle_reported; i++) {
        const struct cfg_vm *o = cfg_find_vm(old, cfg->vms[i].name);
        if (o && cfg->vms[i].idle_pause_ms) {   /* what the helper said last of it */
            iv[i] = px->idle[o - old->vms];
            ir[i] = px->idle_reported[o - old->vms];
        }
    }
    free(px->idle);
    free(px->idle_reported);
    px->idle = iv;
    px->idle_reported = ir;
    /* a VM that has idle_pause now: the helper made a fresh slot that
     * counts 0 sessions; tell it ours (also 0, so a network process whose
     * count it lost never keeps a VM from pausing) */
    for (size_t i = 0; i < cfg->n_vms && px->auth; i++) {
        const struct cfg_vm *o = cfg_find_vm(old, cfg->vms[i].name);
        if (!cfg->vms[i].idle_pause_ms || (o && o->idle_pause_ms))
            continue;
        unsigned k = proxy_vm_sessions(px, cfg->vms[i].name);
        if (auth_client_report_sessions(px->auth, cfg->vms[i].name, k) == 0)
            px->idle_reported[i] = k;
    }
    return rc;
}

uint64_t proxy_oldest_id(const struct proxy *px)
{
    uint64_t m = UINT64_MAX;
    for (const struct conn *c = px->conns; c; c = c->next)
        if (c->id < m)
            m = c->id;
    return m;
}

uint64_t proxy_last_id(const struct proxy *px)
{
    uint64_t next = px->id_counter ? __atomic_load_n(px->id_counter, __ATOMIC_RELAXED)
                                   : px->next_id;
    return next - 1;
}

void proxy_fini(struct proxy *px)
{
    auth_client_on_idle_note(px->auth, NULL, NULL);
    free(px->st.vm_bytes);
    px->st.vm_bytes = NULL;
    free(px->bans);
    px->bans = NULL;
    px->n_bans = 0;
    free(px->idle);
    px->idle = NULL;
    free(px->idle_reported);
    px->idle_reported = NULL;
}

void proxy_time_str(uint64_t ms, char *out, size_t outsz)
{
    struct tm tm;
    time_t sec = (time_t)(ms / 1000);
    gmtime_r(&sec, &tm);
    snprintf(out, outsz, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (unsigned)(ms % 1000));
}

/* Keep px->bans: key banned until until_ms, or (banned false) no more. */
static void ban_list_set(struct proxy *px, const char *key, uint64_t until_ms, bool banned)
{
    struct proxy_ban *b = NULL;
    for (size_t i = 0; px->bans && i < px->n_bans && !b; i++)
        if (strcmp(px->bans[i].key, key) == 0)
            b = &px->bans[i];
    if (banned && px->bans) {
        if (!b && px->n_bans < PROXY_BANS_MAX)
            b = &px->bans[px->n_bans++];
        if (!b) {                           /* full: forget the one that ends first */
            b = &px->bans[0];
            for (size_t i = 1; i < px->n_bans; i++)
                if (px->bans[i].until_ms < b->until_ms)
                    b = &px->bans[i];
        }
        snprintf(b->key, sizeof b->key, "%s", key);
        b->until_ms = until_ms;
    } else if (!banned && b) {
        *b = px->bans[--px->n_bans];
    }
}

static uint64_t wall_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u;
}

/* The audit event ban / unban of key (by "vmgate" or "admin"). */
static void ban_audit(struct proxy *px, const char *key, uint64_t until_ms, bool banned,
                      const char *by, const char *admin)
{
    char until[40];
    struct audit_who who = { .source = key };
    proxy_time_str(until_ms, until, sizeof until);
    struct audit_kv kv[] = { AUDIT_S("until", until), AUDIT_S("by", by), AUDIT_S("admin", admin) };
    atrail_emit(px->audit, banned ? "ban" : "unban", &who, kv,
                admin ? 3 : 2);
}

void proxy_ban_event(void *ctx, const struct authp_ban_evt *evt)
{
    struct proxy *px = ctx;
    char key[PROXY_SKEY_MAX];
    /* the helper's keys are addr_source_key()'s: check, so a garbled one
     * never lands in the list or the audit trail */
    struct addr_net n;
    if (addr_net_parse(evt->key, true, &n, NULL, 0) < 0) {
        log_warn("ban event for \"%.*s\" is not a source key, ignored", 64, evt->key);
        return;
    }
    snprintf(key, sizeof key, "%s", evt->key);
    ban_list_set(px, key, evt->until_ms, evt->banned);
    if (px->audit_bans)
        ban_audit(px, key, evt->until_ms, evt->banned, "vmgate", NULL);
}

int proxy_ban_manual(struct proxy *px, const char *key, uint64_t until_ms, bool banned,
                     const char *admin, bool audit)
{
    struct addr_net n;
    if (strlen(key) >= PROXY_SKEY_MAX || addr_net_parse(key, true, &n, NULL, 0) < 0)
        return -1;
    ban_list_set(px, key, until_ms, banned);
    if (audit)
        ban_audit(px, key, banned ? until_ms : wall_ms(), banned, "admin", admin);
    return 0;
}

unsigned proxy_bans_now(const struct proxy *px)
{
    uint64_t now = wall_ms();
    unsigned n = 0;
    for (size_t i = 0; px->bans && i < px->n_bans; i++)
        n += px->bans[i].until_ms > now;
    return n;
}

bool proxy_banned(const struct proxy *px, const char *skey, uint64_t now_ms, uint64_t *until)
{
    for (size_t i = 0; px->bans && i < px->n_bans; i++)
        if (strcmp(px->bans[i].key, skey) == 0 && px->bans[i].until_ms > now_ms) {
            if (until)
                *until = px->bans[i].until_ms;
            return true;
        }
    return false;
}

void proxy_idle_report(struct proxy *px, const char *vm)
{
    /* by name, in the config in force: a session that started before a
     * reload points into the old config, whose idle_pause may differ */
    ssize_t i = px->idle_reported ? vm_index(px, vm) : -1;
    if (i < 0 || !px->cfg->vms[i].idle_pause_ms)
        return;
    unsigned n = proxy_vm_sessions(px, vm);
    if (n != px->idle_reported[i] && auth_client_report_sessions(px->auth, vm, n) == 0)
        px->idle_reported[i] = n;
}

const char *proxy_vm_state(const struct proxy *px, const char *vm, char *out, size_t outsz)
{
    ssize_t i = px->idle ? vm_index(px, vm) : -1;
    if (i < 0 || !px->cfg->vms[i].idle_pause_ms) {
        snprintf(out, outsz, "unknown");
        return out;
    }
    return idle_describe(&px->idle[i], out, outsz);
}

const char *proxy_hs_kind_name(enum proxy_hs_kind k)
{
    static const char *const names[PROXY_HS_KINDS] = {
        [PROXY_HS_TLS] = "tls", [PROXY_HS_RFB] = "rfb", [PROXY_HS_SPICE] = "spice",
        [PROXY_HS_HTTP] = "http", [PROXY_HS_PROXY] = "proxy_protocol",
        [PROXY_HS_TIMEOUT] = "timeout",
    };
    return k < PROXY_HS_KINDS ? names[k] : "?";
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
                /* by name: a session from before a reload has the old
                 * config's VM */
                if (c->logged_start && !c->end.dead && strcmp(c->vm->name, cfg->vms[i].name) == 0 &&
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
    for (int k = 0; k < PROXY_HS_KINDS; k++)
        mprintf(w, "vmgate_handshake_failures_total{kind=\"%s\"} %llu\n",
                proxy_hs_kind_name((enum proxy_hs_kind)k), (unsigned long long)st->hs_failed[k]);
    /* every network process keeps the same list: gateway/metrics.c takes
     * this gauge from one process, not the sum */
    jw_raw(w, "# HELP vmgate_bans Sources banned now (by the auth helper and by hand).\n"
              "# TYPE vmgate_bans gauge\n");
    mprintf(w, "vmgate_bans %u\n", proxy_bans_now(px));
    jw_raw(w, "# HELP vmgate_auth_queue Requests to the auth helper not answered yet.\n"
              "# TYPE vmgate_auth_queue gauge\n");
    mprintf(w, "vmgate_auth_queue %u\n", auth_client_pending(px->auth));
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
    if (!fmt || (!authed && !prelogin_admit(rhost)))
        return;                  /* (no fmt: gcc's sanitizer build asks) */
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
