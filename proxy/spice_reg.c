/* proxy/spice_reg.c — see spice_reg.h. */
#include "proxy/spice_reg.h"
#include "proxy/spice.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "common/log.h"

static struct {
    struct spice_session *sessions;
    struct spice_vmstate *vms;
    uint8_t salt[32];
    bool salted;
} g;

static void random_hex(char *out, size_t nbytes)
{
    uint8_t r[64];
    if (nbytes > sizeof r || RAND_bytes(r, (int)nbytes) != 1)
        log_fatal("cannot get random bytes for a SPICE ticket");
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < nbytes; i++) {
        out[2 * i] = hex[r[i] >> 4];
        out[2 * i + 1] = hex[r[i] & 15];
    }
    out[2 * nbytes] = '\0';
    explicit_bzero(r, sizeof r);
}

struct spice_vmstate *spice_vm_state(const struct cfg_vm *vm)
{
    /* by name: a config reload gives the same VM a new cfg_vm (and may
     * free the old one once its sessions are gone) */
    for (struct spice_vmstate *s = g.vms; s; s = s->next)
        if (strcmp(s->name, vm->name) == 0) {
            s->vm = vm;
            return s;
        }
    struct spice_vmstate *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->vm = vm;
    snprintf(s->name, sizeof s->name, "%s", vm->name);
    random_hex(s->ticket, TICKET_BYTES);
    s->next = g.vms;
    g.vms = s;
    return s;
}

struct spice_session *spice_session_find(const struct cfg_vm *vm, uint32_t id)
{
    /* by name: a channel that connects after a config reload has the new
     * config's cfg_vm, its main channel the old one's (alive while the
     * main channel is, see gateway/daemon.c reload_apply) */
    for (struct spice_session *s = g.sessions; s; s = s->next)
        if (s->id == id && strcmp(s->vm->name, vm->name) == 0)
            return s;
    return NULL;
}

static void session_remove(struct spice_session *s)
{
    for (struct spice_session **pp = &g.sessions; *pp; pp = &(*pp)->next) {
        if (*pp == s) {
            *pp = s->next;
            explicit_bzero(s, sizeof *s);
            free(s);
            return;
        }
    }
}

struct spice_session *spice_session_put(const struct cfg_vm *vm, uint32_t id, const char *user,
                                        const uint8_t secret[32], ev_tstamp now,
                                        struct conn *main)
{
    struct spice_session *s = spice_session_find(vm, id);
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s)
            return NULL;
        s->next = g.sessions;
        g.sessions = s;
    }
    s->vm = vm;
    s->id = id;
    snprintf(s->user, sizeof s->user, "%s", user);
    memcpy(s->secret, secret, sizeof s->secret);
    s->login_at = now;
    s->main = main;
    return s;
}

void spice_session_drop_main(const struct conn *main)
{
    for (struct spice_session *s = g.sessions; s; s = s->next)
        if (s->main == main) {
            session_remove(s);
            return;
        }
}

void spice_secret_hash(const char *user, const char *pass, uint8_t out[32])
{
    if (!g.salted) {
        if (RAND_bytes(g.salt, sizeof g.salt) != 1)
            log_fatal("cannot get random bytes");
        g.salted = true;
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned l = 0;
    if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(md, g.salt, sizeof g.salt) != 1 ||
        EVP_DigestUpdate(md, user, strlen(user) + 1) != 1 ||
        EVP_DigestUpdate(md, pass, strlen(pass)) != 1 || EVP_DigestFinal_ex(md, out, &l) != 1)
        RAND_bytes(out, 32);     /* never matches anything */
    EVP_MD_CTX_free(md);
}

void spice_forget_all(void)
{
    while (g.sessions)
        session_remove(g.sessions);
    while (g.vms) {
        struct spice_vmstate *s = g.vms;
        g.vms = s->next;
        explicit_bzero(s, sizeof *s);
        free(s);
    }
}
