/* auth/idle.c — see idle.h.  Transitions:
 *
 *   RUNNING --(no session for idle_ms: tick)--> CHECKING [query-status]
 *   CHECKING --("running", no session, no login meanwhile)--> STOPPING [stop]
 *   CHECKING --(anything else)--> RUNNING (checked again after idle_ms)
 *   STOPPING --(ok)--> PAUSED; with a login meanwhile at once WAKE_CHECK [query-status]
 *   STOPPING --(failed)--> RUNNING
 *   PAUSED --(login)--> WAKE_CHECK [query-status]
 *   WAKE_CHECK --("paused")--> WAKING [cont]
 *   WAKE_CHECK --(another status)--> RUNNING (someone resumed or stopped it otherwise:
 *                                    the record is void)
 *   WAKE_CHECK --(query failed)--> PAUSED (the viewer gets the paused screen)
 *   WAKING --(ok)--> RUNNING, resumed;  --(failed)--> PAUSED
 *
 * Logins that arrive in CHECKING, STOPPING, WAKE_CHECK or WAKING wait
 * (idle_login returns true) and are released when the machine settles in
 * RUNNING or PAUSED. */
#include "auth/idle.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *const state_names[IDLE_STATE_MAX] = {
    [IDLE_RUNNING] = "running", [IDLE_CHECKING] = "checking", [IDLE_STOPPING] = "stopping",
    [IDLE_PAUSED] = "paused", [IDLE_WAKE_CHECK] = "wake-check", [IDLE_WAKING] = "waking",
};

const char *idle_state_name(unsigned st)
{
    return st < IDLE_STATE_MAX ? state_names[st] : "?";
}

static void out_clear(struct idle_out *o)
{
    memset(o, 0, sizeof *o);
}

/* A human duration for the reason of a pause ("2s", "10m", "1500ms"). */
static void fmt_ms(uint64_t ms, char *out, size_t n)
{
    if (ms % 3600000 == 0)
        snprintf(out, n, "%lluh", (unsigned long long)(ms / 3600000));
    else if (ms % 60000 == 0)
        snprintf(out, n, "%llum", (unsigned long long)(ms / 60000));
    else if (ms % 1000 == 0)
        snprintf(out, n, "%llus", (unsigned long long)(ms / 1000));
    else
        snprintf(out, n, "%llums", (unsigned long long)ms);
}

static void set_status(struct idle_vm *v, const char *status, struct idle_out *o)
{
    const char *s = status ? status : "";
    if (strncmp(v->status, s, sizeof v->status) != 0) {
        snprintf(v->status, sizeof v->status, "%s", s);
        o->changed = true;
    }
}

static void go(struct idle_vm *v, enum idle_state st, struct idle_out *o)
{
    if (v->st != st)
        o->changed = true;
    v->st = st;
}

void idle_init(struct idle_vm *v, uint64_t idle_ms, uint64_t now, uint64_t wall)
{
    memset(v, 0, sizeof *v);
    v->idle_ms = idle_ms;
    v->st = IDLE_RUNNING;
    v->deadline = now + idle_ms;
    v->idle_since = wall;
}

void idle_sessions(struct idle_vm *v, unsigned n, uint64_t now, uint64_t wall,
                   struct idle_out *o)
{
    out_clear(o);
    unsigned before = v->sessions;
    v->sessions = n;
    if (n == 0 && before > 0) {
        v->deadline = now + v->idle_ms;   /* idle from now */
        v->idle_since = wall;
    }
}

bool idle_login(struct idle_vm *v, uint64_t now, struct idle_out *o)
{
    out_clear(o);
    switch (v->st) {
    case IDLE_RUNNING:
        /* the session is about to open: the idle time starts again here, so
         * the VM is not paused between the login and the session */
        if (v->sessions == 0)
            v->deadline = now + v->idle_ms;
        return false;
    case IDLE_CHECKING:
    case IDLE_STOPPING:
        v->wake_wanted = true;            /* decided when the answer comes */
        return true;
    case IDLE_PAUSED:
        go(v, IDLE_WAKE_CHECK, o);
        o->act = IDLE_ACT_QUERY;
        return true;
    case IDLE_WAKE_CHECK:
    case IDLE_WAKING:
    default:
        return true;                      /* released with the one in flight */
    }
}

void idle_tick(struct idle_vm *v, uint64_t now, struct idle_out *o)
{
    out_clear(o);
    if (v->idle_ms == 0 || v->st != IDLE_RUNNING || v->sessions > 0 || now < v->deadline)
        return;
    go(v, IDLE_CHECKING, o);
    o->act = IDLE_ACT_QUERY;
}

/* Back to RUNNING after a check or stop that did not pause: look again
 * after another idle period; logins that waited may go. */
static void settle_running(struct idle_vm *v, uint64_t now, struct idle_out *o)
{
    go(v, IDLE_RUNNING, o);
    v->deadline = now + v->idle_ms;
    if (v->wake_wanted) {
        v->wake_wanted = false;
        o->release = true;
    }
}

void idle_answer(struct idle_vm *v, bool ok, const char *status, uint64_t now, uint64_t wall,
                 struct idle_out *o)
{
    out_clear(o);
    (void)wall;
    switch (v->st) {
    case IDLE_CHECKING:
        if (ok)
            set_status(v, status, o);
        if (ok && status && strcmp(status, "running") == 0 && v->sessions == 0 &&
            !v->wake_wanted) {
            go(v, IDLE_STOPPING, o);
            o->act = IDLE_ACT_STOP;
            return;
        }
        if (!ok) {
            o->ev = IDLE_EV_FAILED;
            snprintf(o->why, sizeof o->why, "query-status failed: not paused");
        } else if (!status || strcmp(status, "running") != 0) {
            o->ev = IDLE_EV_LEFT;
            snprintf(o->why, sizeof o->why, "status is %s, not running: left alone",
                     status && *status ? status : "unknown");
        }
        settle_running(v, now, o);
        return;
    case IDLE_STOPPING:
        if (!ok) {
            o->ev = IDLE_EV_FAILED;
            snprintf(o->why, sizeof o->why, "stop failed");
            settle_running(v, now, o);
            return;
        }
        {
            char d[24];
            fmt_ms(v->idle_ms, d, sizeof d);
            o->ev = IDLE_EV_PAUSED;
            snprintf(o->why, sizeof o->why, "no session for %s", d);
        }
        set_status(v, "paused", o);
        go(v, IDLE_PAUSED, o);
        if (v->wake_wanted) {             /* a login came while pausing */
            v->wake_wanted = false;
            go(v, IDLE_WAKE_CHECK, o);
            o->act = IDLE_ACT_QUERY;
        }
        return;
    case IDLE_WAKE_CHECK:
        o->release = !ok || !status || strcmp(status, "paused") != 0;
        if (!ok) {
            o->ev = IDLE_EV_FAILED;
            snprintf(o->why, sizeof o->why, "query-status failed: not resumed");
            go(v, IDLE_PAUSED, o);
            return;
        }
        set_status(v, status, o);
        if (strcmp(status, "paused") == 0) {
            go(v, IDLE_WAKING, o);
            o->act = IDLE_ACT_CONT;
            return;
        }
        /* not paused any more (resumed by someone, or shut down): our
         * record is void and nothing is resumed */
        o->ev = IDLE_EV_LEFT;
        snprintf(o->why, sizeof o->why, "status is %s, not paused: nothing to resume",
                 status[0] ? status : "unknown");
        go(v, IDLE_RUNNING, o);
        v->deadline = now + v->idle_ms;
        return;
    case IDLE_WAKING:
        o->release = true;
        if (!ok) {
            o->ev = IDLE_EV_FAILED;
            snprintf(o->why, sizeof o->why, "cont failed");
            go(v, IDLE_PAUSED, o);
            return;
        }
        o->ev = IDLE_EV_RESUMED;
        snprintf(o->why, sizeof o->why, "login");
        set_status(v, "running", o);
        go(v, IDLE_RUNNING, o);
        v->deadline = now + v->idle_ms;
        return;
    case IDLE_RUNNING:
    case IDLE_PAUSED:
    default:
        return;                           /* no operation was in flight: ignore */
    }
}

void idle_forget(struct idle_vm *v, struct idle_out *o)
{
    out_clear(o);
    if (v->st == IDLE_PAUSED)
        go(v, IDLE_RUNNING, o);
    /* in flight: the answer decides (query-status first in every wake) */
}

uint64_t idle_deadline(const struct idle_vm *v)
{
    if (v->idle_ms == 0 || v->st != IDLE_RUNNING || v->sessions > 0)
        return 0;
    return v->deadline ? v->deadline : 1;
}

bool idle_busy(const struct idle_vm *v)
{
    return v->st == IDLE_CHECKING || v->st == IDLE_STOPPING || v->st == IDLE_WAKE_CHECK ||
           v->st == IDLE_WAKING;
}

void idle_view_of(const struct idle_vm *v, struct idle_view *out)
{
    memset(out, 0, sizeof *out);
    out->state = (uint8_t)v->st;
    out->since = v->idle_since;
    snprintf(out->status, sizeof out->status, "%s", v->status);
}

char *idle_describe(const struct idle_view *v, char *out, size_t outsz)
{
    char since[32];
    time_t t = (time_t)(v->since / 1000);
    struct tm tm;
    if (gmtime_r(&t, &tm))
        strftime(since, sizeof since, "%Y-%m-%dT%H:%M:%SZ", &tm);
    else
        snprintf(since, sizeof since, "?");
    switch (v->state) {
    case IDLE_PAUSED:
        snprintf(out, outsz, "paused by vmgate (idle since %s)", since);
        break;
    case IDLE_CHECKING:
    case IDLE_STOPPING:
        snprintf(out, outsz, "pausing (idle since %s)", since);
        break;
    case IDLE_WAKE_CHECK:
    case IDLE_WAKING:
        snprintf(out, outsz, "resuming (paused by vmgate, idle since %s)", since);
        break;
    default:
        snprintf(out, outsz, "%s", v->status[0] ? v->status : "unknown");
        break;
    }
    return out;
}
