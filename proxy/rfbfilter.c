/* proxy/rfbfilter.c — see rfbfilter.h. */
#include "proxy/rfbfilter.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "common/log.h"
#include "proxy/clip.h"
#include "proxy/rfbmsg.h"

enum { S2C = 0, C2S = 1 };   /* direction index: VM -> viewer, viewer -> VM */

/* A cut-text message being held back until it is complete.  The body is a
 * plain allocation of exactly len bytes, wiped when freed (not a struct buf:
 * those of relay size go back to the shared pool, keyed by their size). */
struct held {
    bool active;
    bool ext;            /* extended clipboard payload */
    bool over;           /* longer than we will look at: drop without collecting */
    uint32_t len;        /* body length from the head */
    uint8_t head[8];
    uint8_t *body;       /* NULL when over or empty */
    size_t got;          /* body bytes collected so far */
};

/* QEMU's keyboard state as far as its console switch is concerned, in the
 * two ways QEMU may read an extended key event (see the key guard below):
 * bits for the qnum keys Ctrl 0x1d, Ctrl_R 0x9d and Alt 0x38 that are down. */
enum { KG_CTRL = 1, KG_CTRL_R = 2, KG_ALT = 4 };
enum { KG_SYM = 0, KG_SCAN = 1 };

struct rfbfilter {
    struct rfbmsg_state fm;
    const struct cfg_vm *vm;
    struct rfbfilter_hooks hooks;
    bool si_done;            /* ServerInit passed */
    bool server_ext;         /* the VM sent Extended Clipboard caps */
    struct held held[2];
    struct clip_inflater zi[2];
    uint8_t *pending;        /* a legacy viewer's text (UTF-8), offered to the VM */
    size_t pending_len;
    uint8_t kmods[2];        /* KG_* bits down, by KG_SYM / KG_SCAN reading */
    bool switch_logged;      /* a blocked console switch was logged */
};

static bool allow_to_vm(const struct rfbfilter *f)
{
    return f->vm->clipboard == CFG_CLIP_BOTH || f->vm->clipboard == CFG_CLIP_TO_VM;
}

static bool allow_from_vm(const struct rfbfilter *f)
{
    return f->vm->clipboard == CFG_CLIP_BOTH || f->vm->clipboard == CFG_CLIP_FROM_VM;
}

static bool allowed(const struct rfbfilter *f, int dir)
{
    return dir == C2S ? allow_to_vm(f) : allow_from_vm(f);
}

/* Whether the viewer speaks Extended Clipboard itself (its last SetEncodings). */
static bool viewer_ext(const struct rfbfilter *f)
{
    return rfbmsg_viewer_has(&f->fm, RFB_ENC_EXT_CLIPBOARD);
}

/* The text limit for this VM, never above QEMU's 1 MiB. */
static size_t text_max(const struct rfbfilter *f)
{
    uint64_t m = f->vm->clipboard_max;
    return m > CLIP_TEXT_HARD_MAX ? CLIP_TEXT_HARD_MAX : (size_t)m;
}

/* Release clipboard text (NULL is fine), wiping its n bytes first. */
static void free_text(uint8_t *text, size_t n)
{
    if (text) {
        explicit_bzero(text, n);
        free(text);
    }
}

struct rfbfilter *rfbfilter_new(const struct cfg_vm *vm, const struct rfbfilter_hooks *hooks)
{
    struct rfbfilter *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->vm = vm;
    f->hooks = *hooks;
    clip_inflater_init(&f->zi[S2C]);
    clip_inflater_init(&f->zi[C2S]);
    return f;
}

void rfbfilter_free(struct rfbfilter *f)
{
    if (!f)
        return;
    for (int d = 0; d < 2; d++) {
        free_text(f->held[d].body, f->held[d].got);
        clip_inflater_free(&f->zi[d]);
    }
    free_text(f->pending, f->pending_len);
    explicit_bzero(f, sizeof *f);
    free(f);
}

/* Something to say that is not a transfer (a warning, a dropped message). */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void note(struct rfbfilter *f, enum log_level lvl, const char *fmt, ...)
{
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (f->hooks.note)
        f->hooks.note(f->hooks.ctx, lvl, msg);
}

/* One event per transfer: never the text, only its size and (when text is
 * given: its bytes bytes) hash.  reason NULL: allowed. */
static void audit(struct rfbfilter *f, int dir, const uint8_t *text, size_t bytes,
                  const char *reason)
{
    struct clip_event ev = { .kind = CLIP_EV_TRANSFER, .to_vm = dir == C2S, .bytes = bytes,
                             .type = "utf8-text", .reason = reason };
    unsigned int mdlen = 0;
    if (text && EVP_Digest(text, bytes, ev.sha256, &mdlen, EVP_sha256(), NULL) == 1 &&
        mdlen == 32)
        ev.hashed = true;
    if (f->hooks.clip)
        f->hooks.clip(f->hooks.ctx, &ev);
}

/* The audit line of a dropped transfer, its reason formatted. */
#if defined(__GNUC__)
__attribute__((format(printf, 5, 6)))
#endif
static void drop(struct rfbfilter *f, int dir, const uint8_t *text, size_t bytes,
                 const char *fmt, ...)
{
    char reason[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    audit(f, dir, text, bytes, reason);
}

static void drop_policy(struct rfbfilter *f, int dir, const uint8_t *text, size_t bytes)
{
    drop(f, dir, text, bytes, "policy: clipboard = %s", cfg_clip_name(f->vm->clipboard));
}

static void drop_over(struct rfbfilter *f, int dir, size_t bytes)
{
    drop(f, dir, NULL, bytes, "over clipboard_max (%zu > %zu bytes)", bytes, text_max(f));
}

/* A clipboard offer (Extended Clipboard notify) refused by the policy: no
 * text moved, but the person tried, so it is logged — as its own event
 * name, so "clipboard dir=" lines stay one per transfer. */
static void audit_offer(struct rfbfilter *f, int dir)
{
    char reason[64];
    snprintf(reason, sizeof reason, "policy: clipboard = %s", cfg_clip_name(f->vm->clipboard));
    struct clip_event ev = { .kind = CLIP_EV_OFFER, .to_vm = dir == C2S, .reason = reason };
    if (f->hooks.clip)
        f->hooks.clip(f->hooks.ctx, &ev);
}

/* Queue a whole message for one side.  A full injection buffer means the
 * peer is not reading at all; dropping a clipboard message then is the
 * least harmful choice, and it is logged. */
static void inject(struct rfbfilter *f, struct buf *to, const uint8_t *p, size_t n,
                   const char *what)
{
    if (buf_put(to, p, n) != 0)
        note(f, LOG_LVL_WARN, "clipboard: dropped %s (%zu bytes): peer not reading", what, n);
}

/* Release the held message unchanged. */
static void inject_held(struct rfbfilter *f, struct held *h, struct buf *to, const char *what)
{
    if (buf_room(to) < 8 + h->got) {
        note(f, LOG_LVL_WARN, "clipboard: dropped %s: peer not reading", what);
        return;
    }
    buf_put(to, h->head, 8);
    if (h->got)
        buf_put(to, h->body, h->got);
}

/* Inflate a provide and apply the size limit and the policy for dir, with
 * its audit line.  Returns the text (free it with free_text) when it may
 * pass, else NULL.  The text ends at its first NUL; the audit line counts
 * and hashes exactly those *tlen bytes, and only they are forwarded (in a
 * provide or cut text rebuilt from them, see send_provide / send_legacy):
 * whatever else the peer's message carried (bytes after a NUL, other
 * formats) goes nowhere. */
static uint8_t *police_provide(struct rfbfilter *f, int dir, const struct clip_msg *cm,
                               size_t wire_len, size_t *tlen)
{
    char why[128];
    size_t max = text_max(f);
    uint8_t *text = malloc(max + 1);
    *tlen = 0;
    if (!text) {
        drop(f, dir, NULL, wire_len, "malformed: out of memory");
        return NULL;
    }
    int r = clip_provide_text(&f->zi[dir], cm, max, text, tlen, why, sizeof why);
    if (r == CLIP_OK && !(cm->formats & CLIP_FMT_TEXT)) {
        /* Only text is policed and passed: QEMU 7.2 takes nothing else, and
         * TigerVNC and noVNC offer nothing else.  Never inflated, never
         * forwarded, so it is no way around clipboard_max either. */
        drop(f, dir, NULL, wire_len, "no text in the clipboard data (formats 0x%04x)",
             cm->formats);
        free_text(text, max + 1);
        return NULL;
    }
    if (r == CLIP_OK && allowed(f, dir)) {
        audit(f, dir, text, *tlen, NULL);
        return text;
    }
    if (r == CLIP_OK)
        drop_policy(f, dir, text, *tlen);
    else if (r == CLIP_TOO_BIG)
        drop_over(f, dir, *tlen ? *tlen - 1 : 0);   /* the declared size counts the NUL */
    else
        drop(f, dir, NULL, wire_len, "malformed: %s", why);
    free_text(text, r == CLIP_OK ? *tlen : max + 1);
    return NULL;
}

/* A provide of text (tlen bytes, no NUL) built afresh, to the viewer
 * (msgtype 3) or the VM (6). */
static void send_provide(struct rfbfilter *f, uint8_t msgtype, const uint8_t *text, size_t tlen,
                         struct buf *to)
{
    size_t cap = clip_provide_bound(tlen);
    uint8_t *msg = malloc(cap);
    size_t n = msg ? clip_build_provide(msgtype, text, tlen, msg, cap) : 0;
    if (n)
        inject(f, to, msg, n, "clipboard provide");
    else
        note(f, LOG_LVL_WARN, "clipboard: dropped a %zu-byte provide: out of memory", tlen);
    free(msg);
}

/* Legacy cut text (msgtype 3 or 6) of the len bytes at text, built afresh. */
static void send_legacy(struct rfbfilter *f, uint8_t msgtype, const uint8_t *text, size_t len,
                        struct buf *to, const char *what)
{
    uint8_t *msg = malloc(len + 8);
    size_t n = msg ? clip_build_legacy(msgtype, text, len, msg, len + 8) : 0;
    if (n)
        inject(f, to, msg, n, what);
    else
        note(f, LOG_LVL_WARN, "clipboard: dropped %s (%zu bytes): out of memory", what, len);
    free_text(msg, len + 8);
}

/* The text of a legacy cut text: its bytes up to the first NUL. */
static size_t legacy_len(const struct held *h)
{
    const uint8_t *nul = h->got ? memchr(h->body, 0, h->got) : NULL;
    return nul ? (size_t)(nul - h->body) : h->got;
}

/* Legacy ServerCutText, policed; its text (up to a NUL) passed on. */
static void legacy_s2c(struct rfbfilter *f, struct held *h, struct buf *to_viewer)
{
    size_t len = legacy_len(h);
    if (!allow_from_vm(f)) {
        drop_policy(f, S2C, h->body, len);
        return;
    }
    audit(f, S2C, h->body, len, NULL);
    send_legacy(f, RFB_S2C_CUT_TEXT, h->body, len, to_viewer, "server cut text");
}

/* Legacy ClientCutText (Latin-1): its text (up to a NUL) passed on to a VM
 * without Extended Clipboard; an Extended Clipboard VM is told there is
 * text and gets it as UTF-8 when it asks (see CLIP_REQUEST in ext_s2c).
 * An allowed line counts and hashes the bytes the VM gets (Latin-1, or
 * UTF-8); a dropped one, the text in UTF-8, whatever the VM speaks. */
static void legacy_c2s(struct rfbfilter *f, struct held *h, struct buf *to_vm)
{
    uint8_t *u8 = malloc(2 * h->got + 1);
    if (!u8)
        return;
    size_t ulen = clip_latin1_to_utf8(h->body, h->got, u8);
    /* what an Extended Clipboard VM gets is the UTF-8 form, up to twice
     * as long: the limit applies to that */
    if (f->server_ext && ulen > text_max(f)) {
        drop_over(f, C2S, ulen);
        free_text(u8, ulen);
        return;
    }
    if (!allow_to_vm(f)) {
        drop_policy(f, C2S, u8, ulen);
        free_text(u8, ulen);
        return;
    }
    if (!f->server_ext) {
        free_text(u8, ulen);
        size_t len = legacy_len(h);
        audit(f, C2S, h->body, len, NULL);
        send_legacy(f, RFB_C2S_CUT_TEXT, h->body, len, to_vm, "client cut text");
        return;
    }
    audit(f, C2S, u8, ulen, NULL);
    /* announce it; the VM asks for it with a request we answer */
    free_text(f->pending, f->pending_len);
    f->pending = u8;
    f->pending_len = ulen;
    uint8_t msg[16];
    size_t n = clip_build_flags(RFB_C2S_CUT_TEXT, CLIP_ACT_NOTIFY | CLIP_FMT_TEXT, msg, sizeof msg);
    inject(f, to_vm, msg, n, "clipboard notify");
}

/* Text from the VM for a viewer without Extended Clipboard: legacy
 * ServerCutText in Latin-1. */
static void send_latin1(struct rfbfilter *f, const uint8_t *text, size_t tlen,
                        struct buf *to_viewer)
{
    uint8_t *msg = malloc(tlen + 8);
    if (!msg)
        return;
    size_t ll = clip_utf8_to_latin1(text, tlen, msg + 8);
    size_t mlen = clip_build_legacy(RFB_S2C_CUT_TEXT, msg + 8, ll, msg, ll + 8);
    if (mlen)
        inject(f, to_viewer, msg, mlen, "server cut text");
    free_text(msg, tlen + 8);
}

/* A legacy viewer's pending text, as the provide answering the VM's request. */
static void send_pending(struct rfbfilter *f, struct buf *to_vm)
{
    send_provide(f, RFB_C2S_CUT_TEXT, f->pending, f->pending_len, to_vm);
}

/* An Extended Clipboard message from the VM. */
static void ext_s2c(struct rfbfilter *f, struct held *h, const struct clip_msg *cm,
                    struct buf *to_viewer, struct buf *to_vm)
{
    switch (cm->action) {
    case CLIP_CAPS:
        f->server_ext = true;
        if (viewer_ext(f))
            inject_held(f, h, to_viewer, "clipboard caps");
        break;
    case CLIP_NOTIFY:
        if (!allow_from_vm(f)) {
            if (cm->formats)
                audit_offer(f, S2C);
        } else if (viewer_ext(f)) {
            inject_held(f, h, to_viewer, "clipboard notify");
        } else if (cm->formats & CLIP_FMT_TEXT) {
            /* a legacy viewer cannot ask: ask for it, translate the answer */
            uint8_t msg[16];
            size_t n = clip_build_flags(RFB_C2S_CUT_TEXT, CLIP_ACT_REQUEST | CLIP_FMT_TEXT, msg,
                                        sizeof msg);
            inject(f, to_vm, msg, n, "clipboard request");
        }
        break;
    case CLIP_REQUEST:
    case CLIP_PEEK:
        /* the VM asks for the viewer's clipboard */
        if (!allow_to_vm(f))
            break;
        if (viewer_ext(f))
            inject_held(f, h, to_viewer, "clipboard request");
        else if (f->pending && cm->action == CLIP_REQUEST)
            send_pending(f, to_vm);
        break;
    case CLIP_PROVIDE: {
        size_t tlen;
        uint8_t *text = police_provide(f, S2C, cm, h->got, &tlen);
        if (text && viewer_ext(f))
            send_provide(f, RFB_S2C_CUT_TEXT, text, tlen, to_viewer);
        else if (text)
            send_latin1(f, text, tlen, to_viewer);
        free_text(text, tlen);
        break;
    }
    }
}

/* An Extended Clipboard message from the viewer. */
static void ext_c2s(struct rfbfilter *f, struct held *h, const struct clip_msg *cm,
                    struct buf *to_vm)
{
    switch (cm->action) {
    case CLIP_CAPS:
        inject_held(f, h, to_vm, "clipboard caps");
        break;
    case CLIP_NOTIFY:
        if (allow_to_vm(f))
            inject_held(f, h, to_vm, "clipboard notify");
        else if (cm->formats)
            audit_offer(f, C2S);
        break;
    case CLIP_REQUEST:
    case CLIP_PEEK:
        if (allow_from_vm(f))
            inject_held(f, h, to_vm, "clipboard request");
        break;
    case CLIP_PROVIDE: {
        size_t tlen;
        uint8_t *text = police_provide(f, C2S, cm, h->got, &tlen);
        if (text)
            send_provide(f, RFB_C2S_CUT_TEXT, text, tlen, to_vm);
        free_text(text, tlen);
        break;
    }
    }
}

/* A complete cut text held from direction dir. */
static void finish(struct rfbfilter *f, int dir, struct held *h, struct buf *to_viewer,
                   struct buf *to_vm)
{
    if (h->over && h->ext) {
        drop(f, dir, NULL, h->len, "over clipboard_max (%u compressed bytes)", h->len);
        return;
    }
    if (h->over) {
        drop_over(f, dir, h->len);
        return;
    }
    if (!h->ext) {
        if (dir == S2C)
            legacy_s2c(f, h, to_viewer);
        else
            legacy_c2s(f, h, to_vm);
        return;
    }
    struct clip_msg cm;
    char why[128];
    if (clip_parse(h->body, h->got, &cm, why, sizeof why) != CLIP_OK) {
        note(f, LOG_LVL_INFO,
             "clipboard: dropped malformed extended clipboard message from the %s: %s",
             dir == S2C ? "VM" : "viewer", why);
        return;
    }
    if (dir == S2C)
        ext_s2c(f, h, &cm, to_viewer, to_vm);
    else
        ext_c2s(f, h, &cm, to_vm);
}

/* Take one cut-text span out of the stream (at b[ok], r bytes) into the
 * held message; finish it when complete. */
static void hold_span(struct rfbfilter *f, int dir, const struct rfbmsg *m, struct buf *b,
                      size_t ok, size_t r, struct buf *to_viewer, struct buf *to_vm)
{
    struct held *h = &f->held[dir];
    const uint8_t *p = buf_head(b) + ok;
    if (m->kind == RFBMSG_HEAD) {                 /* always the 8-byte head */
        free_text(h->body, h->got);
        *h = (struct held){
            .active = true,
            .ext = m->cut_ext,
            .len = m->cut_len,
            /* the framer's cut_max is the compressed bound; plain text is
             * held to the text limit itself */
            .over = m->cut_ext ? m->cut_over : m->cut_len > text_max(f),
        };
        memcpy(h->head, p, sizeof h->head);
        if (!h->over && h->len && !(h->body = malloc(h->len))) {
            note(f, LOG_LVL_WARN, "clipboard: dropped a %u-byte cut text: out of memory",
                 h->len);
            h->active = false;
        }
    } else if (h->body && r <= h->len - h->got) {
        memcpy(h->body + h->got, p, r);
        h->got += r;
    }
    buf_cut(b, ok, r);
    if (m->end && h->active) {
        finish(f, dir, h, to_viewer, to_vm);
        free_text(h->body, h->got);
        *h = (struct held){ 0 };
    }
}

/* ------------------------------------------------------------ key guard
 *
 * QEMU's VNC server switches its virtual consoles on Ctrl-Alt-1..9 (ui/vnc.c
 * do_key_event: the qcode of a key 1..9 going down while its keyboard state
 * has Ctrl (left or right) and Alt (left only; right Alt is AltGr)).  A QEMU
 * started without -qmp/-monitor/-mon keeps its HMP monitor on console 2, so
 * that is a host shell for anyone at the viewer.  With qemu_consoles =
 * block the key-down that would switch is dropped.  QEMU's rules, exactly:
 *   - a KeyEvent's keysym is cut to 16 bits and mapped to a qnum through
 *     QEMU's keymap (en-us unless -k): so '2' and '@' (Shift+2) are both
 *     key 2, Meta_L is the Alt key, Control_R the right Ctrl key;
 *   - a QEMU extended key event (255/0, honoured whether or not -258 was
 *     announced) is read by its scancode cut to 16 bits (qnum: 0x02..0x0a
 *     keys 1..9, 0x1d/0x9d Ctrl, 0x38 Alt), or, when QEMU runs with -k, by
 *     its keysym as above.  We cannot know which, so both readings are
 *     tracked (kmods[KG_SYM], kmods[KG_SCAN]) and a key is dropped if it
 *     would switch in either;
 *   - the keyboard state is QEMU's, one per VNC display: modifiers held in
 *     another session of the same VM count too.  So a key 1..9 going down
 *     that passes is preceded by key-ups that break Ctrl+Alt in QEMU's
 *     state (QEMU drops the key-up of a key that is not down, so these
 *     reach the guest only when some session really holds that key).
 * Key-ups are always forwarded: QEMU ignores the key-up of a key it never
 * saw go down, and a digit that was down before Ctrl+Alt must still be
 * released in the guest. */

#define KS_CONTROL_L 0xffe3u
#define KS_CONTROL_R 0xffe4u
#define KS_META_L    0xffe7u
#define KS_ALT_L     0xffe9u

/* The qnum a keysym (already cut to 16 bits) has in QEMU's en-us keymap,
 * for the keys that matter here; 0 for the rest. */
static unsigned keysym_qnum(uint32_t ks)
{
    static const char shifted[] = "!@#$%^&*(";      /* Shift+1 .. Shift+9 */
    if (ks >= '1' && ks <= '9')
        return 0x02 + (ks - '1');
    if (ks > 0 && ks < 0x80) {
        const char *c = memchr(shifted, (int)ks, sizeof shifted - 1);
        if (c)
            return 0x02 + (unsigned)(c - shifted);
    }
    switch (ks) {
    case KS_CONTROL_L: return 0x1d;
    case KS_CONTROL_R: return 0x9d;
    case KS_ALT_L:
    case KS_META_L:    return 0x38;
    }
    return 0;
}

/* Apply one key event, as qnum q, to modifier state *m; returns whether it
 * is a key 1..9 going down while Ctrl and Alt are down (a console switch). */
static bool kg_apply(uint8_t *m, unsigned q, bool down)
{
    uint8_t bit = q == 0x1d ? KG_CTRL : q == 0x9d ? KG_CTRL_R : q == 0x38 ? KG_ALT : 0;
    if (bit) {
        *m = down ? (uint8_t)(*m | bit) : (uint8_t)(*m & ~bit);
        return false;
    }
    return down && q >= 0x02 && q <= 0x0a && (*m & (KG_CTRL | KG_CTRL_R)) && (*m & KG_ALT);
}

static void put_key(uint8_t *out, bool down, uint32_t ks)
{
    out[0] = RFB_C2S_KEY;
    out[1] = down;
    out[2] = out[3] = 0;
    rfb_put_u32(out + 4, ks);
}

enum { KG_PASS, KG_DROP, KG_PREFIX };

/* Police one key event p[0..n) from the viewer (a KeyEvent, 8 bytes, or a
 * QEMU extended key event, 12) and update the modifier state.  Returns
 * KG_PASS (forward it unchanged), KG_DROP (a console switch: *digit says
 * which), or KG_PREFIX: forward it after the *plen bytes of key-ups put in
 * pre[]. */
static int keyguard(struct rfbfilter *f, const uint8_t *p, size_t n, uint8_t pre[static 24],
                    size_t *plen, unsigned *digit)
{
    bool down;
    unsigned q[2];
    if (n == 8) {                              /* type, down-flag, pad, keysym */
        down = p[1] != 0;
        q[KG_SYM] = q[KG_SCAN] = keysym_qnum(rfb_get_u32(p + 4) & 0xffffu);
    } else {                                   /* 255, 0, U16 down, U32 keysym, U32 scancode */
        down = ((unsigned)p[2] << 8 | p[3]) != 0;
        q[KG_SYM] = keysym_qnum(rfb_get_u32(p + 4) & 0xffffu);
        q[KG_SCAN] = rfb_get_u32(p + 8) & 0xffffu;
    }
    bool sw = false, is_digit = false;
    for (int k = 0; k < 2; k++) {
        sw |= kg_apply(&f->kmods[k], q[k], down);
        if (down && q[k] >= 0x02 && q[k] <= 0x0a) {
            is_digit = true;
            *digit = q[k] - 0x01;
        }
    }
    *plen = 0;
    if (sw)
        return KG_DROP;
    if (!is_digit)
        return KG_PASS;
    /* Break Ctrl+Alt in QEMU's shared state: release what this session
     * does not hold in both readings (Ctrl, else Alt: not both are held in
     * both, or this would have been a switch). */
    uint8_t both = f->kmods[KG_SYM] & f->kmods[KG_SCAN];
    if (!(both & (KG_CTRL | KG_CTRL_R))) {
        put_key(pre, false, KS_CONTROL_L);
        put_key(pre + 8, false, KS_CONTROL_R);
        *plen = 16;
        for (int k = 0; k < 2; k++)
            f->kmods[k] &= (uint8_t)~(KG_CTRL | KG_CTRL_R);
    } else {
        put_key(pre, false, KS_ALT_L);
        *plen = 8;
        for (int k = 0; k < 2; k++)
            f->kmods[k] &= (uint8_t)~KG_ALT;
    }
    return KG_PREFIX;
}

/* The key event at b[ok], r bytes, under qemu_consoles = block: dropped,
 * passed in place, or passed after key-ups (in place, or when the buffer
 * has no room for them, the ups and the event go to the empty to_vm).
 * Returns the bytes approved in place. */
static size_t guard_key(struct rfbfilter *f, struct buf *b, size_t ok, size_t r,
                        struct buf *to_vm)
{
    uint8_t out[24 + 12];
    size_t plen;
    unsigned digit = 0;
    int v = keyguard(f, buf_head(b) + ok, r, out, &plen, &digit);
    if (v == KG_PASS)
        return r;
    if (v == KG_DROP) {
        buf_cut(b, ok, r);
        if (!f->switch_logged) {
            f->switch_logged = true;
            note(f, LOG_LVL_WARN, "blocked a QEMU console switch (Ctrl+Alt+%u) from the viewer "
                 "(qemu_consoles = block); later ones are dropped without a log line", digit);
        }
        return 0;
    }
    memcpy(out + plen, buf_head(b) + ok, r);
    buf_cut(b, ok, r);
    if (buf_insert(b, ok, out, plen + r) == 0)
        return plen + r;
    if (buf_put(to_vm, out, plen + r) != 0)
        note(f, LOG_LVL_WARN, "dropped a key event: VM not reading");
    return 0;
}

/* ServerInit: delimited and forwarded, and the framer started from it.
 * Returns 1 once it has passed, 0 while incomplete, -1 if malformed. */
static int server_init(struct rfbfilter *f, struct buf *b, size_t *ok, char *why, size_t whylen)
{
    int r = rfbmsg_server_init(&f->fm, buf_head(b) + *ok, buf_len(b) - *ok);
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
    return 1;
}

/* Replace the viewer's SetEncodings (at b[ok], r bytes) with what the
 * framer can follow, asking the VM for Extended Clipboard on behalf of a
 * viewer without it.  The rewrite goes in place, or, when it is longer and
 * the stream buffer is too full for that, to the (empty) to_vm, which is
 * sent right after the approved bytes.  Returns the bytes approved in
 * place (the new length, or 0), or -1 (why set). */
static int rewrite_encodings(struct rfbfilter *f, struct buf *b, size_t ok, size_t r,
                             struct buf *to_vm, char *why, size_t whylen)
{
    uint8_t out[RFBMSG_HDR_MAX + 4];
    unsigned flags = 0;
    if (!viewer_ext(f) && f->vm->clipboard != CFG_CLIP_NONE)
        flags |= RFBMSG_F_ADD_EXT_CLIPBOARD;
    int nl = rfbmsg_filter_encodings(&f->fm, buf_head(b) + ok, r, flags, out, sizeof out);
    if (nl < 0) {
        snprintf(why, whylen, "cannot rewrite SetEncodings");
        return -1;
    }
    buf_cut(b, ok, r);
    if (buf_insert(b, ok, out, (size_t)nl) == 0)
        return nl;
    if (buf_put(to_vm, out, (size_t)nl) != 0) {
        snprintf(why, whylen, "internal: no room to rewrite SetEncodings");
        return -1;
    }
    return 0;
}

int rfbfilter_s2c(struct rfbfilter *f, struct buf *b, size_t *ok, struct buf *to_viewer,
                  struct buf *to_vm, char *why, size_t whylen)
{
    if (!f->si_done) {
        int r = server_init(f, b, ok, why, whylen);
        if (r <= 0)
            return r;
    }
    for (;;) {
        if (!buf_empty(to_viewer))
            return 0;                      /* paused until our message is out */
        size_t avail = buf_len(b) - *ok;
        if (avail == 0)
            return 0;
        struct rfbmsg m;
        int r = rfbmsg_s2c(&f->fm, buf_head(b) + *ok, avail, &m);
        if (r == RFB_NEED)
            return 0;
        if (r < 0) {
            snprintf(why, whylen, "VM sent a message vmgate cannot follow: %s", f->fm.why);
            return -1;
        }
        if (m.type == RFB_S2C_CUT_TEXT)    /* its head or its body */
            hold_span(f, S2C, &m, b, *ok, (size_t)r, to_viewer, to_vm);
        else
            *ok += (size_t)r;
    }
}

int rfbfilter_c2s(struct rfbfilter *f, struct buf *b, size_t *ok, struct buf *to_viewer,
                  struct buf *to_vm, char *why, size_t whylen)
{
    if (!f->si_done)
        return 0;                          /* nothing is sent before ServerInit */
    for (;;) {
        if (!buf_empty(to_vm))
            return 0;
        size_t avail = buf_len(b) - *ok;
        if (avail == 0)
            return 0;
        struct rfbmsg m;
        int r = rfbmsg_c2s(&f->fm, buf_head(b) + *ok, avail, &m);
        if (r == RFB_NEED)
            return 0;
        if (r < 0) {
            snprintf(why, whylen, "viewer sent a message vmgate cannot follow: %s", f->fm.why);
            return -1;
        }
        if (m.type == RFB_C2S_CUT_TEXT) {  /* its head or its body */
            hold_span(f, C2S, &m, b, *ok, (size_t)r, to_viewer, to_vm);
        } else if (m.type == RFB_C2S_SET_ENCODINGS) {
            int nl = rewrite_encodings(f, b, *ok, (size_t)r, to_vm, why, whylen);
            if (nl < 0)
                return -1;
            *ok += (size_t)nl;
        } else if (f->vm->qemu_consoles == CFG_QCONS_BLOCK &&
                   (m.type == RFB_C2S_KEY ||
                    (m.type == RFB_C2S_QEMU && m.sub == RFB_QEMU_EXT_KEY))) {
            *ok += guard_key(f, b, *ok, (size_t)r, to_vm);
        } else {
            *ok += (size_t)r;
        }
    }
}
