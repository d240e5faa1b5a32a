/* proxy/vdagent.c — see vdagent.h. */
#include "proxy/vdagent.h"

#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "proxy/spice_link.h"

enum { ACT_PASS = 0, ACT_DROP, ACT_TRUNC };

#define VDA_CLIP_NONE 0

void vda_init(struct vda *v, bool allow_to_vm, bool allow_from_vm, uint64_t max,
              const char *policy_name, vda_event_cb cb, void *ctx)
{
    memset(v, 0, sizeof *v);
    v->allow_to_vm = allow_to_vm;
    v->allow_from_vm = allow_from_vm;
    v->max = max;
    v->policy_name = policy_name ? policy_name : "?";
    v->cb = cb;
    v->ctx = ctx;
}

static void stream_clear(struct vda_stream *s)
{
    if (s->md)
        EVP_MD_CTX_free(s->md);
    memset(s, 0, sizeof *s);
}

void vda_reset(struct vda *v)
{
    stream_clear(&v->s[0]);
    stream_clear(&v->s[1]);
    v->client_caps0 = v->agent_caps0 = 0;
}

void vda_free(struct vda *v) { vda_reset(v); }

static bool blocked(const struct vda *v, enum vda_dir d)
{
    return d == VDA_TO_VM ? !v->allow_to_vm : !v->allow_from_vm;
}

/* The sender puts a 4-byte selection prefix before clipboard payloads when
 * its peer announced CLIPBOARD_SELECTION. */
static uint32_t prefix_len(const struct vda *v, enum vda_dir d)
{
    uint32_t peer = d == VDA_TO_VM ? v->agent_caps0 : v->client_caps0;
    return (peer >> VDA_CAP_CLIPBOARD_SELECTION) & 1 ? 4 : 0;
}

static void emit(const struct vda *v, const struct vda_event *ev)
{
    if (v->cb)
        v->cb(v->ctx, ev);
}

static void put(uint8_t *out, size_t *outlen, const void *p, size_t n)
{
    memcpy(out + *outlen, p, n);
    *outlen += n;
}

/* The header (and the first data bytes it needs) is complete: decide what
 * happens to this message and forward its head accordingly. */
static void decide(struct vda *v, enum vda_dir d, uint8_t *out, size_t *outlen)
{
    struct vda_stream *s = &v->s[d];
    s->action = ACT_PASS;
    s->clip = false;
    s->reason = NULL;
    switch (s->type) {
    case VDA_CLIPBOARD: {
        uint32_t skip = prefix_len(v, d) + 4;
        if (s->size >= skip) {
            s->clip = true;
            s->clip_skip = skip;
            s->clip_type = spice_get_u32(s->head + VDA_HDR_LEN + skip - 4);
            s->clip_bytes = s->size - skip;
            s->md = EVP_MD_CTX_new();
            if (!s->md || EVP_DigestInit_ex(s->md, EVP_sha256(), NULL) != 1) {
                EVP_MD_CTX_free(s->md);
                s->md = NULL;
            }
        }
        if (blocked(v, d)) {
            s->action = ACT_DROP;
            snprintf(s->reason_buf, sizeof s->reason_buf, "policy: clipboard = %s",
                     v->policy_name);
            s->reason = s->reason_buf;
        } else if (s->clip && s->clip_bytes > v->max) {
            s->action = ACT_TRUNC;
            snprintf(s->reason_buf, sizeof s->reason_buf, "over clipboard_max (%llu bytes)",
                     (unsigned long long)v->max);
            s->reason = s->reason_buf;
        }
        break;
    }
    case VDA_CLIPBOARD_GRAB:
    case VDA_CLIPBOARD_RELEASE:
        if (blocked(v, d)) {
            s->action = ACT_DROP;
            if (s->type == VDA_CLIPBOARD_GRAB) {
                char r[80];
                snprintf(r, sizeof r, "policy: clipboard = %s", v->policy_name);
                struct vda_event ev = { .dir = d, .kind = VDA_EV_OFFER_BLOCKED, .reason = r };
                emit(v, &ev);
            }
        }
        break;
    case VDA_CLIPBOARD_REQUEST:
        /* A request sent toward the VM asks for data coming from it. */
        if (blocked(v, d == VDA_TO_VM ? VDA_FROM_VM : VDA_TO_VM))
            s->action = ACT_DROP;
        break;
    case VDA_FILE_XFER_START:
    case VDA_FILE_XFER_DATA:
        if (d == VDA_TO_VM && !v->allow_to_vm)
            s->action = ACT_DROP;
        break;
    case VDA_ANNOUNCE_CAPS:
        if (s->size >= 8) {
            uint8_t *w = s->head + VDA_HDR_LEN + 4;
            uint32_t caps0 = spice_get_u32(w);
            if (d == VDA_FROM_VM) {
                if (!v->allow_to_vm) {
                    caps0 |= 1u << VDA_CAP_FILE_XFER_DISABLED;
                    spice_put_u32(w, caps0);
                }
                v->agent_caps0 = caps0;
            } else {
                v->client_caps0 = caps0;
            }
        }
        break;
    default:
        break;
    }
    if (s->action == ACT_PASS) {
        put(out, outlen, s->head, s->head_have);
    } else if (s->action == ACT_TRUNC) {
        /* An empty CLIPBOARD of type NONE, with the sender's selection. */
        spice_put_u32(s->head + 16, s->clip_skip);
        spice_put_u32(s->head + VDA_HDR_LEN + s->clip_skip - 4, VDA_CLIP_NONE);
        put(out, outlen, s->head, VDA_HDR_LEN + s->clip_skip);
    }
}

static void finish(struct vda *v, enum vda_dir d)
{
    struct vda_stream *s = &v->s[d];
    if (s->clip) {
        struct vda_event ev = {
            .dir = d, .kind = VDA_EV_DATA, .clip_type = s->clip_type, .bytes = s->clip_bytes,
            .allowed = s->action == ACT_PASS, .reason = s->reason,
        };
        unsigned l = 0;
        if (s->md)
            EVP_DigestFinal_ex(s->md, ev.sha256, &l);
        emit(v, &ev);
    }
    if (s->md)
        EVP_MD_CTX_free(s->md);
    s->md = NULL;
    s->in_msg = false;
    s->clip = false;
    s->head_have = s->head_need = 0;
}

int vda_feed(struct vda *v, enum vda_dir d, const uint8_t *in, size_t n, uint8_t *out,
             size_t *outlen)
{
    struct vda_stream *s = &v->s[d];
    *outlen = 0;
    while (n > 0) {
        if (!s->in_msg) {
            if (s->head_have < VDA_HDR_LEN) {
                size_t take = VDA_HDR_LEN - s->head_have;
                if (take > n)
                    take = n;
                memcpy(s->head + s->head_have, in, take);
                s->head_have += (uint32_t)take;
                in += take;
                n -= take;
                if (s->head_have < VDA_HDR_LEN)
                    break;
                uint32_t proto = spice_get_u32(s->head);
                if (proto != VDA_PROTOCOL) {
                    snprintf(v->why, sizeof v->why, "agent message with protocol %u (%s)",
                             proto, d == VDA_TO_VM ? "from the viewer" : "from the VM");
                    return -1;
                }
                s->type = spice_get_u32(s->head + 4);
                s->size = spice_get_u32(s->head + 16);
                s->pos = 0;
                uint32_t extra = 0;
                if (s->type == VDA_CLIPBOARD)
                    extra = prefix_len(v, d) + 4;
                else if (s->type == VDA_ANNOUNCE_CAPS)
                    extra = 8;
                if (extra > s->size)
                    extra = s->size;
                s->head_need = VDA_HDR_LEN + extra;
            }
            if (s->head_have < s->head_need) {
                size_t take = s->head_need - s->head_have;
                if (take > n)
                    take = n;
                memcpy(s->head + s->head_have, in, take);
                s->head_have += (uint32_t)take;
                in += take;
                n -= take;
                if (s->head_have < s->head_need)
                    break;
            }
            s->pos = s->head_have - VDA_HDR_LEN;
            s->in_msg = true;
            decide(v, d, out, outlen);
            if (s->pos == s->size)
                finish(v, d);
            continue;
        }
        size_t take = s->size - s->pos;
        if (take > n)
            take = n;
        if (s->clip && s->md) {
            /* hash only the payload, after the selection prefix and type */
            size_t skip = s->pos < s->clip_skip ? s->clip_skip - s->pos : 0;
            if (skip < take)
                EVP_DigestUpdate(s->md, in + skip, take - skip);
        }
        if (s->action == ACT_PASS)
            put(out, outlen, in, take);
        s->pos += (uint32_t)take;
        in += take;
        n -= take;
        if (s->pos == s->size)
            finish(v, d);
    }
    return 0;
}

const char *vda_clip_type_name(uint32_t t)
{
    static const char *const names[] = { "none", "utf8-text", "png", "bmp", "tiff", "jpg",
                                         "file-list" };
    return t < sizeof names / sizeof names[0] ? names[t] : "unknown";
}
