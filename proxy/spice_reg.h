/* proxy/spice_reg.h — what outlives one SPICE channel connection: per VM
 * the backend ticket and the channel caps its server announced, and the
 * sessions (the main channel's login, which later channels of the session
 * join).  The registry lives in the network process that takes SPICE
 * (network process 1); spice_conn.c is its only user. */
#ifndef VMGATE_SPICE_REG_H
#define VMGATE_SPICE_REG_H

#include <stdbool.h>
#include <stdint.h>

#include <ev.h>

#include "common/config.h"
#include "proxy/spice_link.h"

#define TICKET_BYTES    24               /* 48 hex characters, SPICE allows 60 */
#define N_CHAN_TYPES    (SPICE_CH_WEBDAV + 1)

struct conn;

/* Per VM: the backend ticket (random, for this process's lifetime) and
 * the channel caps its SPICE server announced in the last backend link of
 * each channel type (what the next viewer of that type is promised). */
struct spice_vmstate {
    struct spice_vmstate *next;
    const struct cfg_vm *vm;           /* the last caller's (see name) */
    char name[CFG_NAME_MAX + 1];       /* the key */
    char ticket[2 * TICKET_BYTES + 1];
    bool caps_known[N_CHAN_TYPES];
    struct spice_chan_caps caps[N_CHAN_TYPES];
};

/* A SPICE session: the main channel's login, for the channels that follow. */
struct spice_session {
    struct spice_session *next;
    const struct cfg_vm *vm;
    uint32_t id;                       /* connection_id = INIT session_id */
    char user[SPICE_SASL_USER_MAX + 1];
    uint8_t secret[32];                /* SHA-256(salt, user, password) */
    ev_tstamp login_at;
    struct conn *main;
};

/* c's VM's state, made (with a fresh random ticket) on first use; NULL when
 * out of memory. */
struct spice_vmstate *spice_vm_state(const struct cfg_vm *vm);
/* The session id of vm, or NULL. */
struct spice_session *spice_session_find(const struct cfg_vm *vm, uint32_t id);
/* Create or update session id of vm: its user, login secret and time, and
 * its main channel.  NULL when out of memory. */
struct spice_session *spice_session_put(const struct cfg_vm *vm, uint32_t id, const char *user,
                                        const uint8_t secret[32], ev_tstamp now,
                                        struct conn *main);
/* The main channel main is gone: forget its session. */
void spice_session_drop_main(const struct conn *main);
/* SHA-256 of (a per-process random salt, user, password): what a later
 * channel's credentials are compared with, so no password is kept. */
void spice_secret_hash(const char *user, const char *pass, uint8_t out[32]);

#endif
