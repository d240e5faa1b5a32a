/* proxy/spice_main.c — see spice_main.h. */
#include "proxy/spice_main.h"

#include <stdio.h>
#include <string.h>

#include "proxy/spice_link.h"

enum { M_IDLE = 0, M_PASS, M_DROP };

void spice_main_init(struct spice_main *m, bool allow_to_vm, bool allow_from_vm, uint64_t max,
                     const char *policy_name, vda_event_cb clip_cb,
                     void (*on_init)(void *, uint32_t), void (*on_note)(void *, const char *),
                     void *ctx)
{
    memset(m, 0, sizeof *m);
    vda_init(&m->vda, allow_to_vm, allow_from_vm, max, policy_name, clip_cb, ctx);
    m->on_init = on_init;
    m->on_note = on_note;
    m->ctx = ctx;
}

void spice_main_free(struct spice_main *m) { vda_free(&m->vda); }

static void note_migration(struct spice_main *m, unsigned type)
{
    if (m->on_note) {
        char msg[160];
        snprintf(msg, sizeof msg, "dropped migration message %u from the VM (migration "
                 "would bypass the gateway)", type);
        m->on_note(m->ctx, msg);
    }
}

static void put_hdr(uint8_t *h, uint16_t type, uint32_t size)
{
    spice_put_u16(h, type);
    spice_put_u32(h + 2, size);
}

/* Inject owed AGENT_TOKENs into this direction (at a message boundary). */
static void inject(struct spice_main *m, enum smain_dir dir, struct buf *out)
{
    uint32_t *owed = dir == SMAIN_S2C ? &m->tokens_to_viewer : &m->tokens_to_vm;
    if (!*owed || buf_room(out) < SMAIN_HDR_LEN + 4)
        return;
    uint8_t msg[SMAIN_HDR_LEN + 4];
    put_hdr(msg, dir == SMAIN_S2C ? SMAIN_MSG_AGENT_TOKEN : SMAIN_MSGC_AGENT_TOKEN, 4);
    spice_put_u32(msg + SMAIN_HDR_LEN, *owed);
    buf_put(out, msg, sizeof msg);
    *owed = 0;
}

/* One whole buffered message (header + body in p).  Returns 0 or -1. */
static int handle_whole(struct spice_main *m, enum smain_dir dir, uint16_t type,
                        const uint8_t *body, uint32_t size, struct buf *out)
{
    if ((dir == SMAIN_C2S && type == SMAIN_MSGC_AGENT_DATA) ||
        (dir == SMAIN_S2C && type == SMAIN_MSG_AGENT_DATA)) {
        uint8_t tmp[SMAIN_HDR_LEN + SMAIN_BUFFERED_MAX + VDA_HEAD_MAX];
        size_t kept = 0;
        enum vda_dir vd = dir == SMAIN_C2S ? VDA_TO_VM : VDA_FROM_VM;
        if (vda_feed(&m->vda, vd, body, size, tmp + SMAIN_HDR_LEN, &kept) != 0) {
            snprintf(m->why, sizeof m->why, "%s", m->vda.why);
            return -1;
        }
        if (kept == 0) {
            if (dir == SMAIN_C2S)
                m->tokens_to_viewer++;
            else if (m->server_tokens_finite)
                m->tokens_to_vm++;
            return 0;
        }
        put_hdr(tmp, type, (uint32_t)kept);
        buf_put(out, tmp, SMAIN_HDR_LEN + kept);
        return 0;
    }
    if (dir == SMAIN_S2C && type == SMAIN_MSG_INIT) {
        if (size < 32) {
            snprintf(m->why, sizeof m->why, "main INIT of %u bytes", size);
            return -1;
        }
        m->session_id = spice_get_u32(body);
        if (m->on_init)
            m->on_init(m->ctx, m->session_id);
    } else if (dir == SMAIN_C2S && type == SMAIN_MSGC_AGENT_START) {
        if (size < 4) {
            snprintf(m->why, sizeof m->why, "AGENT_START of %u bytes", size);
            return -1;
        }
        m->server_tokens_finite = spice_get_u32(body) != UINT32_MAX;
    }
    uint8_t h[SMAIN_HDR_LEN];
    put_hdr(h, type, size);
    buf_put(out, h, sizeof h);
    buf_put(out, body, size);
    return 0;
}

static bool buffered(enum smain_dir dir, uint16_t type)
{
    if (dir == SMAIN_C2S)
        return type == SMAIN_MSGC_AGENT_DATA || type == SMAIN_MSGC_AGENT_START;
    return type == SMAIN_MSG_AGENT_DATA || type == SMAIN_MSG_INIT;
}

long spice_main_feed(struct spice_main *m, enum smain_dir dir, const uint8_t *p, size_t n,
                     struct buf *out)
{
    struct smain_dirstate *d = &m->d[dir];
    size_t used = 0;
    for (;;) {
        if (d->mode == M_IDLE) {
            inject(m, dir, out);
            if (n - used < SMAIN_HDR_LEN)
                break;
            const uint8_t *h = p + used;
            uint16_t type = spice_get_u16(h);
            uint32_t size = spice_get_u32(h + 2);
            if (buffered(dir, type)) {
                if (size > SMAIN_BUFFERED_MAX) {
                    snprintf(m->why, sizeof m->why, "main channel message %u of %u bytes "
                             "(max %u) %s", type, size, SMAIN_BUFFERED_MAX,
                             dir == SMAIN_C2S ? "from the viewer" : "from the VM");
                    return -1;
                }
                if (n - used < SMAIN_HDR_LEN + (size_t)size)
                    break;
                /* room for the message, grown by a held agent header, and
                 * a token injection */
                if (buf_room(out) < SMAIN_HDR_LEN + (size_t)size + VDA_HEAD_MAX + 10)
                    break;
                if (handle_whole(m, dir, type, h + SMAIN_HDR_LEN, size, out) != 0)
                    return -1;
                used += SMAIN_HDR_LEN + size;
                continue;
            }
            if (dir == SMAIN_S2C) {
                switch (type) {
                case SMAIN_MSG_MIGRATE_BEGIN:
                case SMAIN_MSG_MIGRATE_SWITCH_HOST:
                case SMAIN_MSG_MIGRATE_BEGIN_SEAMLESS:
                    note_migration(m, type);
                    d->mode = M_DROP;
                    d->type = type;
                    d->left = size;
                    used += SMAIN_HDR_LEN;
                    continue;
                case SMAIN_MSG_AGENT_CONNECTED:
                case SMAIN_MSG_AGENT_DISCONNECTED:
                case SMAIN_MSG_AGENT_CONNECTED_TOKENS:
                    vda_reset(&m->vda);
                    break;
                default:
                    break;
                }
            }
            if (buf_room(out) < SMAIN_HDR_LEN)
                break;
            buf_put(out, h, SMAIN_HDR_LEN);
            used += SMAIN_HDR_LEN;
            d->mode = M_PASS;
            d->type = type;
            d->left = size;
        }
        if (d->left == 0) {
            d->mode = M_IDLE;
            continue;
        }
        size_t take = n - used;
        if (take > d->left)
            take = d->left;
        if (d->mode == M_PASS) {
            size_t room = buf_room(out);
            if (take > room)
                take = room;
            if (take)
                buf_put(out, p + used, take);
        }
        if (take == 0)
            break;
        used += take;
        d->left -= (uint32_t)take;
        if (d->left == 0)
            d->mode = M_IDLE;
    }
    return (long)used;
}
