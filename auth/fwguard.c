/* auth/fwguard.c — see fwguard.h. */
#include "auth/fwguard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth/auth_int.h"
#include "auth/bans.h"
#include "common/log.h"
#include "firewall/firewall.h"

#define FWGUARD_CHECK_MS 30000    /* safety net besides the netlink watch */
#define FWGUARD_SOURCES  4096
#define FWGUARD_ACTIVE   1024     /* bans remembered for the unban event */

struct active_ban {
    char key[BAN_KEY_MAX];
    uint64_t end_mono;            /* auth_mono_ms() when it ends */
};

struct fwguard {
    const struct cfg *cfg;
    struct ban_table *bans;
    int watch_fd;
    uint64_t next_check;
    fwguard_ban_fn on_ban;
    void *on_ban_ctx;
    struct active_ban active[FWGUARD_ACTIVE];
    size_t n_active;
};

struct fwguard *fwguard_new(const struct cfg *cfg)
{
    if (!cfg->fw.present || !fw_can_manage())
        return NULL;
    struct fwguard *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->cfg = cfg;
    g->bans = ban_table_new(cfg->fw.ban_after, cfg->fw.ban_window_ms, cfg->fw.ban_time_ms,
                            FWGUARD_SOURCES);
    char err[256];
    g->watch_fd = fw_watch_open(err, sizeof err);
    if (g->watch_fd < 0)
        log_warn("firewall: cannot watch nftables for changes (%s); checking every %d s",
                 err, FWGUARD_CHECK_MS / 1000);
    g->next_check = auth_mono_ms() + FWGUARD_CHECK_MS;
    return g;
}

void fwguard_free(struct fwguard *g)
{
    if (!g)
        return;
    if (g->watch_fd >= 0)
        close(g->watch_fd);
    ban_table_free(g->bans);
    free(g);
}

void fwguard_on_ban(struct fwguard *g, fwguard_ban_fn fn, void *ctx)
{
    if (!g)
        return;
    g->on_ban = fn;
    g->on_ban_ctx = ctx;
}

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Remember key's ban until end (replacing an earlier one of the same key;
 * when full, the one that ends first is forgotten without an event). */
static void remember(struct fwguard *g, const char *key, uint64_t end)
{
    struct active_ban *a = NULL;
    for (size_t i = 0; i < g->n_active && !a; i++)
        if (strcmp(g->active[i].key, key) == 0)
            a = &g->active[i];
    if (!a && g->n_active < FWGUARD_ACTIVE)
        a = &g->active[g->n_active++];
    if (!a) {
        a = &g->active[0];
        for (size_t i = 1; i < g->n_active; i++)
            if (g->active[i].end_mono < a->end_mono)
                a = &g->active[i];
    }
    snprintf(a->key, sizeof a->key, "%s", key);
    a->end_mono = end;
}

/* Bans whose time is over: forget them and say so. */
static void expire(struct fwguard *g, uint64_t now)
{
    for (size_t i = 0; i < g->n_active;) {
        if (g->active[i].end_mono > now) {
            i++;
            continue;
        }
        char key[BAN_KEY_MAX];
        snprintf(key, sizeof key, "%s", g->active[i].key);
        g->active[i] = g->active[--g->n_active];
        log_info("firewall: ban of %s ended", key);
        if (g->on_ban)
            g->on_ban(g->on_ban_ctx, key, false, wall_ms());
    }
}

void fwguard_set_cfg(struct fwguard *g, const struct cfg *cfg)
{
    if (!g)
        return;
    g->cfg = cfg;
    ban_table_set(g->bans, cfg->fw.ban_after, cfg->fw.ban_window_ms, cfg->fw.ban_time_ms);
}

int fwguard_fd(const struct fwguard *g) { return g ? g->watch_fd : -1; }

int fwguard_timeout(const struct fwguard *g)
{
    if (!g)
        return -1;
    uint64_t now = auth_mono_ms(), next = g->next_check;
    for (size_t i = 0; i < g->n_active; i++)
        if (g->active[i].end_mono < next)
            next = g->active[i].end_mono;
    return next > now ? (int)(next - now) : 0;
}

static void restore(struct fwguard *g)
{
    if (fw_table_present() != 0)
        return;
    char err[512];
    if (fw_apply(g->cfg, err, sizeof err) == 0)
        log_warn("firewall: table inet vmgate had been removed; put it back");
    else
        log_err("firewall: table inet vmgate was removed and could not be restored: %s", err);
}

void fwguard_tick(struct fwguard *g)
{
    if (!g)
        return;
    bool check = false;
    if (g->watch_fd >= 0 && fw_watch_read(g->watch_fd) != 0)
        check = true;
    uint64_t now = auth_mono_ms();
    if (now >= g->next_check) {
        check = true;
        g->next_check = now + FWGUARD_CHECK_MS;
    }
    if (check)
        restore(g);
    expire(g, now);
}

/* Count one failure (what: for the ban line) from rhost; ban its key when
 * that crosses ban_after. */
static void note(struct fwguard *g, const char *rhost, const char *what)
{
    if (fw_is_exempt(g->cfg, rhost) != 0)
        return;
    if (cfg_proxy_source(g->cfg, rhost)) {
        log_debug("firewall: not counting %s from the balancer %s itself", what, rhost);
        return;
    }
    char key[BAN_KEY_MAX], err[256];
    uint64_t ms = ban_note_failure(g->bans, rhost, auth_mono_ms(), key);
    if (!ms)
        return;
    if (fw_ban(key, ms, err, sizeof err) == 0) {
        log_warn("firewall: banned %s for %llus after %u %s within %llus", key,
                 (unsigned long long)(ms / 1000), g->cfg->fw.ban_after, what,
                 (unsigned long long)(g->cfg->fw.ban_window_ms / 1000));
        remember(g, key, auth_mono_ms() + ms);
        if (g->on_ban)
            g->on_ban(g->on_ban_ctx, key, true, wall_ms() + ms);
    } else {
        log_err("firewall: could not ban %s: %s", key, err);
    }
}

void fwguard_result(struct fwguard *g, const char *rhost, enum authp_result result)
{
    if (!g || !g->bans)
        return;
    /* Only the person's failures count: a helper error or a dead VM never. */
    if (result != AUTHP_BAD_PASSWORD && result != AUTHP_UNKNOWN_USER &&
        result != AUTHP_NOT_ALLOWED && result != AUTHP_ACCOUNT)
        return;
    note(g, rhost, "failed logins");
}

void fwguard_idle(struct fwguard *g, const char *rhost)
{
    if (!g || !g->bans)
        return;
    note(g, rhost, "failed logins or idle connections");
}
