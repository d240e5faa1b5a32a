/* auth/fwguard.c — see fwguard.h. */
#include "auth/fwguard.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "auth/auth_int.h"
#include "auth/bans.h"
#include "common/log.h"
#include "firewall/firewall.h"

#define FWGUARD_CHECK_MS 30000    /* safety net besides the netlink watch */
#define FWGUARD_SOURCES  4096

struct fwguard {
    const struct cfg *cfg;
    struct ban_table *bans;
    int watch_fd;
    uint64_t next_check;
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

void fwguard_set_cfg(struct fwguard *g, const struct cfg *cfg)
{
    if (g)
        g->cfg = cfg;
}

int fwguard_fd(const struct fwguard *g) { return g ? g->watch_fd : -1; }

int fwguard_timeout(const struct fwguard *g)
{
    if (!g)
        return -1;
    uint64_t now = auth_mono_ms();
    return g->next_check > now ? (int)(g->next_check - now) : 0;
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
}

/* Count one failure (what: for the ban line) from rhost; ban its key when
 * that crosses ban_after. */
static void note(struct fwguard *g, const char *rhost, const char *what)
{
    if (fw_is_exempt(g->cfg, rhost) != 0)
        return;
    char key[BAN_KEY_MAX], err[256];
    uint64_t ms = ban_note_failure(g->bans, rhost, auth_mono_ms(), key);
    if (!ms)
        return;
    if (fw_ban(key, ms, err, sizeof err) == 0)
        log_warn("firewall: banned %s for %llus after %u %s within %llus", key,
                 (unsigned long long)(ms / 1000), g->cfg->fw.ban_after, what,
                 (unsigned long long)(g->cfg->fw.ban_window_ms / 1000));
    else
        log_err("firewall: could not ban %s: %s", key, err);
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
