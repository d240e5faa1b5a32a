/* auth/bans.c — see bans.h. */
#include "auth/bans.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/addr.h"

_Static_assert(BAN_KEY_MAX >= ADDR_KEY_MAX, "a source key fits a ban key");

struct ban_entry {
    char key[BAN_KEY_MAX];
    uint64_t *fails;               /* ring of failure times, `after` slots */
    unsigned nfail, head;
    unsigned offences;             /* bans so far: the next lasts 2^offences x */
    uint64_t last_seen;
};

struct ban_table {
    unsigned after;
    uint64_t window_ms, ban_ms;
    size_t cap, n;
    struct ban_entry *e;
};

struct ban_table *ban_table_new(unsigned after, uint64_t window_ms, uint64_t ban_ms,
                                size_t capacity)
{
    /* after is ban_after, 1..1000 in any parsed config */
    if (after == 0 || capacity == 0)
        return NULL;
    struct ban_table *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->e = calloc(capacity, sizeof *t->e);
    if (!t->e) {
        free(t);
        return NULL;
    }
    t->after = after;
    t->window_ms = window_ms;
    t->ban_ms = ban_ms;
    t->cap = capacity;
    return t;
}

void ban_table_set(struct ban_table *t, unsigned after, uint64_t window_ms, uint64_t ban_ms)
{
    if (!t || after == 0)
        return;
    if (after != t->after) {
        /* each entry's ring has `after` slots: a new count starts over
         * (the offences, which double the next ban, are kept) */
        for (size_t i = 0; i < t->n; i++) {
            struct ban_entry *e = &t->e[i];
            free(e->fails);
            e->fails = calloc(after, sizeof *e->fails);
            e->nfail = e->head = 0;
            if (!e->fails)
                e->key[0] = '\0';      /* as lookup() does: the slot counts nothing */
        }
    }
    t->after = after;
    t->window_ms = window_ms;
    t->ban_ms = ban_ms;
}

void ban_table_free(struct ban_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++)
        free(t->e[i].fails);
    free(t->e);
    free(t);
}

int ban_key(const char *addr, char *key, size_t keylen)
{
    return addr_source_key(addr, key, keylen);
}

/* Find key's entry, or make one (evicting the least recently seen). */
static struct ban_entry *lookup(struct ban_table *t, const char *key, uint64_t now)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->e[i].key, key) == 0)
            return &t->e[i];
    struct ban_entry *e;
    if (t->n < t->cap) {
        e = &t->e[t->n++];
    } else {
        e = &t->e[0];
        for (size_t i = 1; i < t->n; i++)
            if (t->e[i].last_seen < e->last_seen)
                e = &t->e[i];
        free(e->fails);
    }
    memset(e, 0, sizeof *e);
    e->fails = calloc(t->after, sizeof *e->fails);
    if (!e->fails) {
        /* keep the slot consistent; a failed allocation just skips counting */
        e->key[0] = '\0';
        return NULL;
    }
    snprintf(e->key, sizeof e->key, "%s", key);
    e->last_seen = now;
    return e;
}

uint64_t ban_note_failure(struct ban_table *t, const char *addr, uint64_t now_ms,
                          char key[static BAN_KEY_MAX])
{
    if (ban_key(addr, key, BAN_KEY_MAX) != 0)
        return 0;
    struct ban_entry *e = lookup(t, key, now_ms);
    if (!e)
        return 0;
    /* Offences are forgiven after a day without failures. */
    if (e->offences && now_ms - e->last_seen > BAN_MAX_MS)
        e->offences = 0;
    e->last_seen = now_ms;
    /* ring of the last `after` failure times */
    e->fails[e->head] = now_ms;
    e->head = (e->head + 1) % t->after;
    if (e->nfail < t->after)
        e->nfail++;
    if (e->nfail < t->after)
        return 0;
    uint64_t oldest = e->fails[e->head];   /* head now points at the oldest */
    if (now_ms - oldest > t->window_ms)
        return 0;
    uint64_t ms = t->ban_ms;
    for (unsigned i = 0; i < e->offences && ms < BAN_MAX_MS; i++)
        ms *= 2;
    if (ms > BAN_MAX_MS)
        ms = BAN_MAX_MS;
    e->offences++;
    e->nfail = 0;
    e->head = 0;
    return ms;
}
