/* proxy/rfbfilter.c — see rfbfilter.h. */
#include "proxy/rfbfilter.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "common/log.h"
#include "proxy/clip.h"
#include "proxy/rfbmsg.h"

enum { S2C = 0, C2S = 1 };   /* direction index: VM -> viewer, viewer -> VM */

/* A cut-text message being held back until it is complete. */
struct held {
    bool active;
    bool ext;            /* extended clipboard payload */
    bool over;           /* longer than we will look at: drop without collecting */
    uint32_t len;        /* body length from the head */
    uint8_t head[8];
    struct buf body;
};

struct rfbfilter {
    struct rfbmsg_state fm;
    const struct cfg_vm *vm;
    char *pfx;               /* log prefix, exact size: it lives as long as the session */
    bool si_done;            /* ServerInit passed */
    bool viewer_ext;         /* the viewer itself speaks Extended Clipboard */
    bool server_ext;         /* the VM sent Extended Clipboard caps */
    struct held held[2];
    struct clip_inflater zi[2];
    uint8_t *pending;        /* a legacy viewer's text (UTF-8), offered to the VM */
    size_t pending_len;
};

static bool allow_to_vm(const struct rfbfilter *f)
{
    return f->vm->clipboard == CFG_CLIP_BOTH || f->vm->clipboard == CFG_CLIP_TO_VM;
}

static bool allow_from_vm(const struct rfbfilter *f)
{
    return f->vm->clipboard == CFG_CLIP_BOTH || f->vm->clipboard == CFG_CLIP_FROM_VM;
}

struct rfbfilter *rfbfilter_new(const struct cfg_vm *vm, const char *logpfx)
{
    struct rfbfilter *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->vm = vm;
    f->pfx = strdup(logpfx);
    if (!f->pfx) {
        free(f);
        return NULL;
    }
    clip_inflater_init(&f->zi[S2C]);
    clip_inflater_init(&f->zi[C2S]);
    return f;
}

void rfbfilter_free(struct rfbfilter *f)
{
    if (!f)
        return;
    for (int d = 0; d < 2; d++) {
        buf_free(&f->held[d].body);
        clip_inflater_free(&f->zi[d]);
    }
    if (f->pending) {
        explicit_bzero(f->pending, f->pending_len);
        free(f->pending);
    }
    free(f->pfx);
    explicit_bzero(f, sizeof *f);
    free(f);
}

/* One audit line per transfer: never the text, only its size and hash. */
static void audit(struct rfbfilter *f, int dir, const uint8_t *text, size_t len, size_t bytes,
                  const char *reason)
{
    char hex[2 * 32 + 1] = "-";
    if (text) {
        unsigned char md[32];
        unsigned int mdlen = 0;
        if (EVP_Digest(text, len, md, &mdlen, EVP_sha256(), NULL) == 1)
            for (unsigned i = 0; i < mdlen && i < 32; i++)
                snprintf(hex + 2 * i, 3, "%02x", md[i]);
    }
    if (reason)
        log_info("%s: clipboard dir=%s bytes=%zu sha256=%s result=dropped reason=\"%s\"",
                 f->pfx, dir == C2S ? "to-vm" : "from-vm", bytes, hex, reason);
    else
        log_info("%s: clipboard dir=%s bytes=%zu sha256=%s result=allowed", f->pfx,
                 dir == C2S ? "to-vm" : "from-vm", bytes, hex);
}

/* A clipboard offer (Extended Clipboard notify) refused by the policy: no
 * text moved, but the person tried, so it is logged — as its own event
 * name, so "clipboard dir=" lines stay one per transfer. */
static void audit_offer(struct rfbfilter *f, int dir)
{
    log_info("%s: clipboard-offer dir=%s result=dropped reason=\"policy: clipboard = %s\"",
             f->pfx, dir == C2S ? "to-vm" : "from-vm", cfg_clip_name(f->vm->clipboard));
}

static void policy_reason(struct rfbfilter *f, char *out, size_t outsz)
{
    snprintf(out, outsz, "policy: clipboard = %s", cfg_clip_name(f->vm->clipboard));
}

/* Queue a whole message for one side.  A full injection buffer means the
 * peer is not reading at all; dropping a clipboard message then is the
 * least harmful choice, and it is logged. */
static void inject(struct rfbfilter *f, struct buf *to, const uint8_t *p, size_t n,
                   const char *what)
{
    if (buf_put(to, p, n) != 0)
        log_warn("%s: clipboard: dropped %s (%zu bytes): peer not reading", f->pfx, what, n);
}

static void inject_held(struct rfbfilter *f, struct held *h, struct buf *to, const char *what)
{
    if (buf_room(to) < 8 + buf_len(&h->body)) {
        log_warn("%s: clipboard: dropped %s: peer not reading", f->pfx, what);
        return;
    }
    buf_put(to, h->head, 8);
    if (!buf_empty(&h->body))
        buf_put(to, buf_head(&h->body), buf_len(&h->body));
}

/* The text limit for this VM, never above QEMU's 1 MiB. */
static size_t text_max(const struct rfbfilter *f)
{
    uint64_t m = f->vm->clipboard_max;
    return m > CLIP_TEXT_HARD_MAX ? CLIP_TEXT_HARD_MAX : (size_t)m;
}

/* Inflate a provide's text into a fresh allocation.  Returns CLIP_* and
 * sets *text (caller frees) and *tlen. */
static int provide_text(struct rfbfilter *f, int dir, const struct clip_msg *cm,
                        uint8_t **text, size_t *tlen, char *why, size_t whylen)
{
    size_t max = text_max(f);
    *text = malloc(max + 1);
    if (!*text) {
        snprintf(why, whylen, "out of memory");
        return CLIP_BAD;
    }
    int r = clip_provide_text(&f->zi[dir], cm, max, *text, tlen, why, whylen);
    if (r != CLIP_OK) {
        free(*text);
        *text = NULL;
    }
    return r;
}

static bool allowed(const struct rfbfilter *f, int dir)
{
    return dir == C2S ? allow_to_vm(f) : allow_from_vm(f);
}

/* Inflate a provide and apply the size limit and the policy for dir, with
 * its audit line.  Returns the text (free it with free_text) when it may
 * pass, else NULL. */
static uint8_t *police_provide(struct rfbfilter *f, int dir, const struct clip_msg *cm,
                               size_t wire_len, size_t *tlen)
{
    char why[128], reason[200];
    uint8_t *text = NULL;
    *tlen = 0;
    int r = provide_text(f, dir, cm, &text, tlen, why, sizeof why);
    if (r == CLIP_TOO_BIG) {
        if (*tlen)
            (*tlen)--;                      /* the declared size counts the NUL */
        snprintf(reason, sizeof reason, "over clipboard_max (%zu > %zu bytes)", *tlen,
                 text_max(f));
        audit(f, dir, NULL, 0, *tlen, reason);
        return NULL;
    }
    if (r != CLIP_OK) {
        snprintf(reason, sizeof reason, "malformed: %s", why);
        audit(f, dir, NULL, 0, wire_len, reason);
        return NULL;
    }
    if (!allowed(f, dir)) {
        policy_reason(f, reason, sizeof reason);
        audit(f, dir, text, *tlen, *tlen, reason);
        explicit_bzero(text, *tlen);
        free(text);
        return NULL;
    }
    audit(f, dir, text, *tlen, *tlen, NULL);
    return text;
}

static void free_text(uint8_t *text, size_t tlen)
{
    if (text) {
        explicit_bzero(text, tlen);
        free(text);
    }
}

/* A complete cut text from the VM (ServerCutText). */
static void finish_s2c(struct rfbfilter *f, struct held *h, struct buf *to_viewer,
                       struct buf *to_vm)
{
    char reason[200];
    const uint8_t *body = buf_head(&h->body);
    size_t blen = buf_len(&h->body);
    if (!h->ext) {
        if (h->over || blen > text_max(f)) {
            snprintf(reason, sizeof reason, "over clipboard_max (%u > %zu bytes)", h->len,
                     text_max(f));
            audit(f, S2C, NULL, 0, h->len, reason);
        } else if (!allow_from_vm(f)) {
            policy_reason(f, reason, sizeof reason);
            audit(f, S2C, body, blen, blen, reason);
        } else {
            audit(f, S2C, body, blen, blen, NULL);
            inject_held(f, h, to_viewer, "server cut text");
        }
        return;
    }
    if (h->over) {
        snprintf(reason, sizeof reason, "over clipboard_max (%u compressed bytes)", h->len);
        audit(f, S2C, NULL, 0, h->len, reason);
        return;
    }
    struct clip_msg cm;
    char why[128];
    if (clip_parse(body, blen, &cm, why, sizeof why) != CLIP_OK) {
        log_info("%s: clipboard: dropped malformed extended clipboard message from the VM: %s",
                 f->pfx, why);
        return;
    }
    uint8_t msg[16];
    size_t n;
    switch (cm.action) {
    case CLIP_CAPS:
        f->server_ext = true;
        if (f->viewer_ext)
            inject_held(f, h, to_viewer, "clipboard caps");
        break;
    case CLIP_NOTIFY:
        if (!allow_from_vm(f)) {
            if (cm.formats)
                audit_offer(f, S2C);
            break;
        }
        if (f->viewer_ext) {
            inject_held(f, h, to_viewer, "clipboard notify");
        } else if (cm.formats & CLIP_FMT_TEXT) {
            /* a legacy viewer cannot ask: ask for it, translate the answer */
            n = clip_build_flags(RFB_C2S_CUT_TEXT, CLIP_ACT_REQUEST | CLIP_FMT_TEXT, msg,
                                 sizeof msg);
            inject(f, to_vm, msg, n, "clipboard request");
        }
        break;
    case CLIP_REQUEST:
    case CLIP_PEEK:
        /* the VM asks for the viewer's clipboard */
        if (!allow_to_vm(f))
            break;
        if (f->viewer_ext) {
            inject_held(f, h, to_viewer, "clipboard request");
        } else if (f->pending && cm.action == CLIP_REQUEST) {
            size_t cap = clip_provide_bound(f->pending_len);
            uint8_t *out = malloc(cap);
            if (out) {
                n = clip_build_provide(RFB_C2S_CUT_TEXT, f->pending, f->pending_len, out, cap);
                if (n)
                    inject(f, to_vm, out, n, "clipboard provide");
                free(out);
            }
        }
        break;
    case CLIP_PROVIDE: {
        size_t tlen;
        uint8_t *text = police_provide(f, S2C, &cm, blen, &tlen);
        if (text && f->viewer_ext) {
            inject_held(f, h, to_viewer, "clipboard provide");
        } else if (text) {
            uint8_t *l1 = malloc(tlen + 8);
            if (l1) {
                size_t ll = clip_utf8_to_latin1(text, tlen, l1 + 8);
                size_t mlen = clip_build_legacy(RFB_S2C_CUT_TEXT, l1 + 8, ll, l1, ll + 8);
                if (mlen)
                    inject(f, to_viewer, l1, mlen, "server cut text");
                free(l1);
            }
        }
        free_text(text, tlen);
        break;
    }
    }
}

/* A complete cut text from the viewer (ClientCutText). */
static void finish_c2s(struct rfbfilter *f, struct held *h, struct buf *to_vm)
{
    char reason[200];
    const uint8_t *body = buf_head(&h->body);
    size_t blen = buf_len(&h->body);
    if (!h->ext) {
        if (h->over || blen > text_max(f)) {
            snprintf(reason, sizeof reason, "over clipboard_max (%u > %zu bytes)", h->len,
                     text_max(f));
            audit(f, C2S, NULL, 0, h->len, reason);
            return;
        }
        uint8_t *u8 = malloc(2 * blen + 1);
        if (!u8)
            return;
        size_t ulen = clip_latin1_to_utf8(body, blen, u8);
        /* what an Extended Clipboard VM gets is the UTF-8 form, up to twice
         * as long: the limit applies to that */
        if (f->server_ext && ulen > text_max(f)) {
            snprintf(reason, sizeof reason, "over clipboard_max (%zu > %zu bytes)", ulen,
                     text_max(f));
            audit(f, C2S, NULL, 0, ulen, reason);
            free(u8);
            return;
        }
        if (!allow_to_vm(f)) {
            policy_reason(f, reason, sizeof reason);
            audit(f, C2S, u8, ulen, ulen, reason);
            free(u8);
            return;
        }
        audit(f, C2S, u8, ulen, ulen, NULL);
        if (f->server_ext) {
            /* announce it; the VM asks for it with a request we answer */
            if (f->pending) {
                explicit_bzero(f->pending, f->pending_len);
                free(f->pending);
            }
            f->pending = u8;
            f->pending_len = ulen;
            uint8_t msg[16];
            size_t n = clip_build_flags(RFB_C2S_CUT_TEXT, CLIP_ACT_NOTIFY | CLIP_FMT_TEXT, msg,
                                        sizeof msg);
            inject(f, to_vm, msg, n, "clipboard notify");
        } else {
            free(u8);
            inject_held(f, h, to_vm, "client cut text");
        }
        return;
    }
    if (h->over) {
        snprintf(reason, sizeof reason, "over clipboard_max (%u compressed bytes)", h->len);
        audit(f, C2S, NULL, 0, h->len, reason);
        return;
    }
    struct clip_msg cm;
    char why[128];
    if (clip_parse(body, blen, &cm, why, sizeof why) != CLIP_OK) {
        log_info("%s: clipboard: dropped malformed extended clipboard message from the viewer: %s",
                 f->pfx, why);
        return;
    }
    switch (cm.action) {
    case CLIP_CAPS:
        inject_held(f, h, to_vm, "clipboard caps");
        break;
    case CLIP_NOTIFY:
        if (allow_to_vm(f))
            inject_held(f, h, to_vm, "clipboard notify");
        else if (cm.formats)
            audit_offer(f, C2S);
        break;
    case CLIP_REQUEST:
    case CLIP_PEEK:
        if (allow_from_vm(f))
            inject_held(f, h, to_vm, "clipboard request");
        break;
    case CLIP_PROVIDE: {
        size_t tlen;
        uint8_t *text = police_provide(f, C2S, &cm, blen, &tlen);
        if (text)
            inject_held(f, h, to_vm, "clipboard provide");
        free_text(text, tlen);
        break;
    }
    }
}

/* Take one cut-text span out of the stream (at b[*ok], r bytes) into the
 * held message; finish it when complete. */
static void hold_span(struct rfbfilter *f, int dir, const struct rfbmsg *m, struct buf *b,
                      size_t ok, size_t r, struct buf *to_viewer, struct buf *to_vm)
{
    struct held *h = &f->held[dir];
    const uint8_t *p = buf_head(b) + ok;
    if (m->kind == RFBMSG_HEAD) {
        h->active = true;
        h->ext = m->cut_ext;
        h->len = m->cut_len;
        h->over = m->cut_over || (!m->cut_ext && m->cut_len > text_max(f));
        memcpy(h->head, p, r < 8 ? r : 8);
        buf_free(&h->body);
        buf_init(&h->body, h->over ? 1 : (h->len ? h->len : 1));
    } else if (h->active && !h->over) {
        buf_put(&h->body, p, r);
    }
    buf_cut(b, ok, r);
    if (m->end && h->active) {
        if (dir == S2C)
            finish_s2c(f, h, to_viewer, to_vm);
        else
            finish_c2s(f, h, to_vm);
        h->active = false;
        buf_free(&h->body);
    }
}

int rfbfilter_s2c(struct rfbfilter *f, struct buf *b, size_t *ok, struct buf *to_viewer,
                  struct buf *to_vm, char *why, size_t whylen)
{
    for (;;) {
        if (!buf_empty(to_viewer))
            return 0;                      /* paused until our message is out */
        size_t avail = buf_len(b) - *ok;
        if (avail == 0)
            return 0;
        const uint8_t *p = buf_head(b) + *ok;
        int r;
        if (!f->si_done) {
            r = rfbmsg_server_init(&f->fm, p, avail);
            if (r == RFB_NEED)
                return 0;
            if (r < 0) {
                snprintf(why, whylen, "bad ServerInit from the VM: %s", f->fm.why);
                return -1;
            }
            f->si_done = true;
            size_t bound = clip_provide_bound(text_max(f));
            f->fm.cut_max = (uint32_t)(bound > 8 ? bound - 8 : bound);
            *ok += (size_t)r;
            continue;
        }
        struct rfbmsg m;
        r = rfbmsg_s2c(&f->fm, p, avail, &m);
        if (r == RFB_NEED)
            return 0;
        if (r < 0) {
            snprintf(why, whylen, "VM sent a message vmgate cannot follow: %s", f->fm.why);
            return -1;
        }
        if (m.type == RFB_S2C_CUT_TEXT && (m.kind == RFBMSG_HEAD || m.kind == RFBMSG_CUT ||
                                           m.kind == RFBMSG_MSG)) {
            hold_span(f, S2C, &m, b, *ok, (size_t)r, to_viewer, to_vm);
            continue;
        }
        *ok += (size_t)r;
    }
}

int rfbfilter_c2s(struct rfbfilter *f, struct buf *b, size_t *ok, struct buf *to_viewer,
                  struct buf *to_vm, char *why, size_t whylen)
{
    for (;;) {
        if (!buf_empty(to_vm))
            return 0;
        if (!f->si_done)
            return 0;                      /* nothing is sent before ServerInit */
        size_t avail = buf_len(b) - *ok;
        if (avail == 0 || buf_room(b) < 4)
            return 0;                      /* SetEncodings may grow by 4 bytes */
        const uint8_t *p = buf_head(b) + *ok;
        struct rfbmsg m;
        int r = rfbmsg_c2s(&f->fm, p, avail, &m);
        if (r == RFB_NEED)
            return 0;
        if (r < 0) {
            snprintf(why, whylen, "viewer sent a message vmgate cannot follow: %s", f->fm.why);
            return -1;
        }
        if (m.type == RFB_C2S_CUT_TEXT && (m.kind == RFBMSG_HEAD || m.kind == RFBMSG_CUT ||
                                           m.kind == RFBMSG_MSG)) {
            hold_span(f, C2S, &m, b, *ok, (size_t)r, to_viewer, to_vm);
            continue;
        }
        if (m.kind == RFBMSG_MSG && m.type == RFB_C2S_SET_ENCODINGS) {
            /* does the viewer itself speak Extended Clipboard? */
            bool ext = false;
            size_t cnt = r >= 4 ? ((size_t)p[2] << 8 | p[3]) : 0;
            for (size_t i = 0; i < cnt && 4 + 4 * i + 4 <= (size_t)r; i++)
                if (rfb_get_u32(p + 4 + 4 * i) == (uint32_t)RFB_ENC_EXT_CLIPBOARD)
                    ext = true;
            f->viewer_ext = ext;
            unsigned flags = 0;
            if (!ext && f->vm->clipboard != CFG_CLIP_NONE)
                flags |= RFBMSG_F_ADD_EXT_CLIPBOARD;
            uint8_t *out = malloc((size_t)r + 4);
            if (!out) {
                snprintf(why, whylen, "out of memory");
                return -1;
            }
            int nl = rfbmsg_filter_encodings(&f->fm, p, (size_t)r, flags, out, (size_t)r + 4);
            if (nl < 0) {
                free(out);
                snprintf(why, whylen, "cannot rewrite SetEncodings");
                return -1;
            }
            buf_cut(b, *ok, (size_t)r);
            if (buf_insert(b, *ok, out, (size_t)nl) != 0) {
                free(out);
                snprintf(why, whylen, "internal: no room to rewrite SetEncodings");
                return -1;
            }
            free(out);
            *ok += (size_t)nl;
            continue;
        }
        *ok += (size_t)r;
    }
}
