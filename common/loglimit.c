/* common/loglimit.c — see loglimit.h. */
#include "common/loglimit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ll_entry {
    char key[LOGLIMIT_KEY_MAX];
    double tokens, last;         /* bucket level at `last` */
    unsigned long suppressed;
    double since;                /* first suppressed line of this count */
};

struct loglimit {
    unsigned burst;
    double rate, report_s;
    size_t cap, n;
    struct ll_entry *e;
};

struct loglimit *loglimit_new(unsigned burst, double rate, double report_s, size_t cap)
{
    if (burst == 0 || !(rate > 0) || cap == 0)
        return NULL;
    struct loglimit *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->e = calloc(cap, sizeof *l->e);
    if (!l->e) {
        free(l);
        return NULL;
    }
    l->burst = burst;
    l->rate = rate;
    l->report_s = report_s;
    l->cap = cap;
    return l;
}

void loglimit_free(struct loglimit *l)
{
    if (!l)
        return;
    free(l->e);
    free(l);
}

void loglimit_key(const char *source, char key[static LOGLIMIT_KEY_MAX])
{
    struct in6_addr a6;
    if (source && strchr(source, ':') && inet_pton(AF_INET6, source, &a6) == 1) {
        char tmp[INET6_ADDRSTRLEN];
        if (IN6_IS_ADDR_V4MAPPED(&a6)) {
            inet_ntop(AF_INET, &a6.s6_addr[12], tmp, sizeof tmp);
            snprintf(key, LOGLIMIT_KEY_MAX, "%s", tmp);
        } else {
            memset(&a6.s6_addr[8], 0, 8);
            inet_ntop(AF_INET6, &a6, tmp, sizeof tmp);
            snprintf(key, LOGLIMIT_KEY_MAX, "%s/64", tmp);
        }
        return;
    }
    snprintf(key, LOGLIMIT_KEY_MAX, "%s", source ? source : "");
}

/* Write e's summary (and reset its count). */
static void report(struct ll_entry *e, double now, char summary[static LOGLIMIT_SUMMARY_MAX])
{
    double span = now - e->since;
    snprintf(summary, LOGLIMIT_SUMMARY_MAX, "suppressed %lu lines from %s in the last %.0fs",
             e->suppressed, e->key, span < 1 ? 1 : span);
    e->suppressed = 0;
}

/* key's entry; a new one (full bucket) when missing, evicting the entry
 * seen longest ago when the table is full (its pending count goes to
 * summary). */
static struct ll_entry *lookup(struct loglimit *l, const char *key, double now,
                               char summary[static LOGLIMIT_SUMMARY_MAX])
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->e[i].key, key) == 0)
            return &l->e[i];
    struct ll_entry *e;
    if (l->n < l->cap) {
        e = &l->e[l->n++];
    } else {
        e = &l->e[0];
        for (size_t i = 1; i < l->n; i++)
            if (l->e[i].last < e->last)
                e = &l->e[i];
        if (e->suppressed)
            report(e, now, summary);
    }
    memset(e, 0, sizeof *e);
    snprintf(e->key, sizeof e->key, "%s", key);
    e->tokens = l->burst;
    e->last = now;
    return e;
}

bool loglimit_admit(struct loglimit *l, const char *source, double now,
                    char summary[static LOGLIMIT_SUMMARY_MAX])
{
    summary[0] = '\0';
    if (!l)
        return true;
    char key[LOGLIMIT_KEY_MAX];
    loglimit_key(source, key);
    struct ll_entry *e = lookup(l, key, now, summary);
    if (now > e->last) {
        e->tokens += (now - e->last) * l->rate;
        if (e->tokens > l->burst)
            e->tokens = l->burst;
    }
    e->last = now;
    if (e->tokens >= 1) {
        e->tokens -= 1;
        /* at most one summary per report_s: a steady flood gets a line
         * now and then, not a summary before each */
        if (e->suppressed && !summary[0] && now - e->since >= l->report_s)
            report(e, now, summary);
        return true;
    }
    if (e->suppressed++ == 0)
        e->since = now;
    return false;
}

bool loglimit_due(struct loglimit *l, double now, char summary[static LOGLIMIT_SUMMARY_MAX])
{
    summary[0] = '\0';
    if (!l)
        return false;
    for (size_t i = 0; i < l->n; i++) {
        struct ll_entry *e = &l->e[i];
        if (e->suppressed && now - e->since >= l->report_s) {
            report(e, now, summary);
            return true;
        }
    }
    return false;
}
