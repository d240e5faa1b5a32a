/* proxy/vdagent.h — clipboard policy on the SPICE agent stream.
 *
 * The bodies of the main channel's AGENT_DATA messages (viewer -> VM 107,
 * VM -> viewer 109) are, per direction, one byte stream of VDAgentMessage:
 *   u32 protocol (1), u32 type, u64 opaque, u32 size, then size bytes.
 * spice-gtk starts every message on a new chunk, but the stream may split a
 * header anywhere, so this is a byte-stream parser: vda_feed() takes one
 * chunk's bytes and returns the bytes to forward (possibly none, possibly
 * rewritten); the caller wraps them in a new AGENT_DATA message, or drops
 * the message when nothing is left (and gives the viewer its token back).
 *
 * Policy (allow_to_vm / allow_from_vm / max):
 *   CLIPBOARD (4) data in a blocked direction is dropped; over max it is
 *   replaced by an empty CLIPBOARD of type NONE (the requester gets an
 *   answer instead of waiting forever) and the rest is dropped;
 *   GRAB (7) and RELEASE (9) in a blocked direction are dropped; REQUEST (8)
 *   is dropped when the data it asks for would flow in a blocked direction;
 *   FILE_XFER_START/DATA (10, 12) to the VM are dropped when to-vm is
 *   blocked, and the agent's capabilities then say FILE_XFER_DISABLED.
 * Every CLIPBOARD data message gives one event (direction, type, bytes,
 * SHA-256 of the data, allowed or dropped and why) when it ends; a blocked
 * GRAB gives an "offer blocked" event.  The data itself is never kept.
 *
 * Pure apart from OpenSSL's SHA-256; no I/O. */
#ifndef VMGATE_VDAGENT_H
#define VMGATE_VDAGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VDA_HDR_LEN        20
#define VDA_HEAD_MAX       (VDA_HDR_LEN + 8)   /* header + selection prefix + type */
#define VDA_PROTOCOL       1

#define VDA_MOUSE_STATE        1
#define VDA_CLIPBOARD          4
#define VDA_ANNOUNCE_CAPS      6
#define VDA_CLIPBOARD_GRAB     7
#define VDA_CLIPBOARD_REQUEST  8
#define VDA_CLIPBOARD_RELEASE  9
#define VDA_FILE_XFER_START    10
#define VDA_FILE_XFER_STATUS   11
#define VDA_FILE_XFER_DATA     12

#define VDA_CAP_CLIPBOARD_SELECTION  6
#define VDA_CAP_FILE_XFER_DISABLED   13

enum vda_dir { VDA_TO_VM = 0, VDA_FROM_VM = 1 };
enum vda_ev_kind { VDA_EV_DATA = 1, VDA_EV_OFFER_BLOCKED };

struct vda_event {
    enum vda_dir dir;
    enum vda_ev_kind kind;
    uint32_t clip_type;            /* VD_AGENT_CLIPBOARD_* of the data (DATA) */
    uint64_t bytes;                /* data bytes, without selection prefix and type */
    uint8_t sha256[32];
    bool allowed;
    const char *reason;            /* why it was dropped */
};
typedef void (*vda_event_cb)(void *ctx, const struct vda_event *ev);

struct vda_stream {
    uint8_t head[VDA_HEAD_MAX];    /* header (+ first data bytes) being collected */
    uint32_t head_have, head_need;
    bool in_msg;                   /* header decided; data of the message follows */
    uint32_t type, size, pos;      /* pos: data bytes seen so far */
    int action;                    /* internal: pass, drop, truncate */
    bool clip;                     /* CLIPBOARD: hash the data */
    uint32_t clip_skip;            /* selection prefix + type field */
    uint32_t clip_type;
    uint64_t clip_bytes;
    void *md;                      /* EVP_MD_CTX * while hashing */
    const char *reason;
    char reason_buf[80];
};

struct vda {
    struct vda_stream s[2];        /* [VDA_TO_VM], [VDA_FROM_VM] */
    bool allow_to_vm, allow_from_vm;
    uint64_t max;                  /* largest clipboard data passed */
    uint32_t client_caps0, agent_caps0;   /* first capability words announced */
    const char *policy_name;       /* "both", "to-vm", ... for reasons */
    vda_event_cb cb;
    void *ctx;
    char why[160];                 /* what was malformed */
};

void vda_init(struct vda *v, bool allow_to_vm, bool allow_from_vm, uint64_t max,
              const char *policy_name, vda_event_cb cb, void *ctx);
/* Forget partial messages (the agent connected or disconnected). */
void vda_reset(struct vda *v);
void vda_free(struct vda *v);
/* Feed n bytes of direction dir's agent stream.  Bytes to forward are
 * written to out, which must have room for n + VDA_HEAD_MAX bytes; *outlen
 * gets their count.  Returns 0, or -1 if the stream is malformed (v->why). */
int vda_feed(struct vda *v, enum vda_dir dir, const uint8_t *in, size_t n, uint8_t *out,
             size_t *outlen);

const char *vda_clip_type_name(uint32_t t);

#endif
