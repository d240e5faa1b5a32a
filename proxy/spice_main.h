/* proxy/spice_main.h — the SPICE main channel after the link: mini-header
 * framing in both directions, the clipboard policy (proxy/vdagent.h) on
 * AGENT_DATA, agent token bookkeeping, the session id from INIT, and no
 * migration.
 *
 * Mini header: u16 type, u32 size, then size bytes (little-endian).
 *
 * spice_main_feed() moves bytes of one direction from an input span to an
 * output buffer, as far as both allow, and returns how many input bytes it
 * consumed (0: it needs more input, or more output room), or -1 when the
 * stream is malformed (m->why).  Messages it only passes are streamed in
 * pieces, so a 256 KB PING needs no 256 KB buffer; AGENT_DATA, INIT and
 * AGENT_START must be whole in the input (at most SMAIN_BUFFERED_MAX body
 * bytes), so the input buffer must hold SMAIN_HDR_LEN + SMAIN_BUFFERED_MAX.
 *
 * What it changes:
 *   - AGENT_DATA bodies go through the vdagent filter; an AGENT_DATA left
 *     empty is dropped.  The viewer spent a token on each chunk it sent, so
 *     for each dropped viewer chunk an AGENT_TOKEN(1..n) is injected toward
 *     the viewer; if the viewer granted the server finite tokens
 *     (AGENT_START != ~0), each dropped VM chunk is answered with an
 *     AGENT_TOKEN toward the VM likewise.  Injections go out at the next
 *     message boundary of their direction.
 *   - MIGRATE_BEGIN (101), MIGRATE_SWITCH_HOST (111) and
 *     MIGRATE_BEGIN_SEAMLESS (116) from the VM are dropped: they would send
 *     the viewer to another host around the gateway.
 * Everything else passes unchanged. */
#ifndef VMGATE_SPICE_MAIN_H
#define VMGATE_SPICE_MAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "proxy/vdagent.h"

#define SMAIN_HDR_LEN       6
#define SMAIN_BUFFERED_MAX  16384     /* AGENT_DATA chunks are <= 2048 */

/* message types */
#define SMAIN_MSG_MIGRATE_BEGIN          101
#define SMAIN_MSG_INIT                   103
#define SMAIN_MSG_AGENT_CONNECTED        107
#define SMAIN_MSG_AGENT_DISCONNECTED     108
#define SMAIN_MSG_AGENT_DATA             109
#define SMAIN_MSG_AGENT_TOKEN            110
#define SMAIN_MSG_MIGRATE_SWITCH_HOST    111
#define SMAIN_MSG_AGENT_CONNECTED_TOKENS 115
#define SMAIN_MSG_MIGRATE_BEGIN_SEAMLESS 116
#define SMAIN_MSGC_AGENT_START           106
#define SMAIN_MSGC_AGENT_DATA            107
#define SMAIN_MSGC_AGENT_TOKEN           108

enum smain_dir { SMAIN_C2S = 0, SMAIN_S2C = 1 };   /* viewer -> VM, VM -> viewer */

struct smain_dirstate {
    int mode;                      /* internal: between messages, pass, drop */
    uint16_t type;
    uint32_t left;                 /* body bytes still to pass or drop */
};

struct spice_main {
    struct smain_dirstate d[2];
    struct vda vda;
    uint32_t session_id;
    bool server_tokens_finite;     /* the viewer's AGENT_START was not ~0 */
    uint32_t tokens_to_viewer, tokens_to_vm;   /* AGENT_TOKENs to inject */
    void (*on_init)(void *ctx, uint32_t session_id);
    void (*on_note)(void *ctx, const char *msg);   /* something worth a log line */
    void *ctx;
    char why[200];
};

/* Set up with the clipboard policy (see vdagent.h); callbacks may be NULL. */
void spice_main_init(struct spice_main *m, bool allow_to_vm, bool allow_from_vm, uint64_t max,
                     const char *policy_name, vda_event_cb clip_cb,
                     void (*on_init)(void *, uint32_t), void (*on_note)(void *, const char *),
                     void *ctx);
void spice_main_free(struct spice_main *m);
long spice_main_feed(struct spice_main *m, enum smain_dir dir, const uint8_t *p, size_t n,
                     struct buf *out);

#endif
