/* proxy/rfbfilter.c — see rfbfilter.h. */
#include "proxy/rfbfilter.h"

#include <stdarg.h>
#include <stdbool.h>
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

/* Continuous updates and fences, which vmgate offers itself (see the header). */
#define FENCE_BLOCK_BEFORE 0x1u
#define FENCE_BLOCK_AFTER  0x2u
#define FENCE_SYNC_NEXT    0x4u
#define FENCE_REQUEST      0x80000000u
#define FENCE_KNOWN        (FENCE_BLOCK_BEFORE | FENCE_BLOCK_AFTER | FENCE_SYNC_NEXT)
#define FENCE_MSG_MAX      (9 + 64)
#define OUR_FENCE_LEN      12          /* U64 stream position, U32 milliseconds */
#define CU_VQ_CAP          (8 * FENCE_MSG_MAX)
#define VEGAS_ALPHA        (16u * 1024)  /* queued bytes below which the window grows */
#define VEGAS_BETA         (64u * 1024)  /* ... above which it shrinks */
#define VEGAS_STEP         (16u * 1024)
#define KERNEL_WAKE        0.01        /* seconds between looks at a full kernel queue */
#define CU_PINGS           16          /* our fences remembered until echoed */
#define CU_RATES           8           /* delivery rate samples kept (the max counts) */

struct cu {
    bool logged;             /* the session's mode line is out */
    bool cu_offered;         /* EndOfContinuousUpdates queued: the viewer may enable */
    bool fence_offered;      /* our first ServerFence queued: the viewer may fence */
    bool on;                 /* the viewer enabled continuous updates */
    uint8_t rect[8];         /* their area: x, y, w, h as on the wire */
    bool outstanding;        /* a FramebufferUpdateRequest is pending at QEMU */
    bool disabling;          /* the viewer disabled them: its messages wait */
    double disable_at;
    bool fence_hold;         /* a BlockAfter/SyncNext answer waits in vq: so does c2s */
    bool fence_due;          /* an update ended: fence it at the boundary */
    uint8_t vq[CU_VQ_CAP];   /* our messages for the viewer, out at the next boundary */
    size_t vq_len;
    uint64_t pos;            /* VM -> viewer bytes approved or injected so far */
    size_t ok0, inj0;        /* *ok and to_viewer's length when rfbfilter_s2c began */
    uint64_t acked;          /* the position the viewer echoed last */
    uint64_t fenced;         /* the position of our last fence */
    uint32_t window;         /* bytes in flight allowed (with fences) */
    bool slow_start;
    double base_rtt, last_adjust;
    double ack_at;           /* when the last echo came */
    /* Bytes put out faster than the window carries them (TigerVNC's
     * "extra buffer"): an update is sent whole, so right after a large one
     * far more than the window waits on the path, and the round trip of the
     * fence behind it includes the time to carry those bytes.  Grows with
     * the position, drains at window / base_rtt. */
    uint64_t extra, extra_pos;
    double extra_at;
    struct { uint64_t pos, extra; } ping[CU_PINGS];   /* ring: our fences not echoed */
    unsigned ping_next;
    /* The delivery rate: bytes the viewer echoed over spans of at least a
     * base round trip; the largest of the last CU_RATES samples counts (a
     * span where vmgate had little to send measures less than the link). */
    double rates[CU_RATES];
    unsigned rate_next;
    uint64_t rate_pos;       /* the echo a span starts from */
    double rate_at;          /* ... and when it came (0: none yet) */
    bool in_update;          /* an update from QEMU is passing */
    uint64_t upd_start;      /* ... from this position */
    uint64_t upd_size;       /* the size of the last whole update */
    struct rfbfilter_link link;
};

/* XVP (see the header). */
#define XVP_MSG_LEN 4
#define XVP_VERSION 1
enum { XVP_FAIL = 0, XVP_INIT = 1, XVP_SHUTDOWN = 2, XVP_REBOOT = 3, XVP_RESET = 4 };
enum xvp_right { XR_UNKNOWN, XR_YES, XR_NO };
struct xvp {
    bool asked;              /* RFBFILTER_PWR_ASK went out */
    enum xvp_right right;
    bool init_due, init_sent;
    bool fail_due;           /* one XVP_FAIL waits for a boundary */
    bool busy;               /* an action runs (RFBFILTER_PWR_DO, not done yet) */
    bool flood_told;
    bool seen;               /* next_ok is valid */
    double next_ok;          /* link clock: the next message looked at */
};

struct rfbfilter {
    struct rfbmsg_state fm;
    struct cu cu;
    struct xvp xvp;
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
    f->cu.window = RFBFILTER_WIN_MIN;
    f->cu.slow_start = true;
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


/* -------------------------------------------------------------------- XVP */

static void xvp_hook(struct rfbfilter *f, enum rfbfilter_pwr ev, unsigned code, const char *why)
{
    if (f->hooks.power)
        f->hooks.power(f->hooks.ctx, ev, code, why);
}

/* The viewer's SetEncodings passed: if it announces -309 for the first
 * time, ask whether this session may have power buttons. */
static void xvp_offer(struct rfbfilter *f)
{
    struct xvp *x = &f->xvp;
    if (x->asked || !rfbmsg_viewer_has(&f->fm, RFB_ENC_XVP))
        return;
    x->asked = true;
    if (!f->hooks.power)
        x->right = XR_NO;
    else
        xvp_hook(f, RFBFILTER_PWR_ASK, 0, NULL);
}

void rfbfilter_xvp_right(struct rfbfilter *f, bool yes)
{
    struct xvp *x = &f->xvp;
    if (x->right != XR_UNKNOWN)
        return;
    x->right = yes ? XR_YES : XR_NO;
    x->init_due = yes && !x->init_sent;
}

void rfbfilter_xvp_done(struct rfbfilter *f, bool ok)
{
    f->xvp.busy = false;
    if (!ok)
        f->xvp.fail_due = true;
}

/* The VM's stream is between messages: XVP_INIT and a pending XVP_FAIL go
 * out.  Returns false when to_viewer has no room (try again later). */
static bool xvp_boundary(struct rfbfilter *f, struct buf *to_viewer)
{
    struct xvp *x = &f->xvp;
    if (x->init_due) {
        static const uint8_t init[XVP_MSG_LEN] = { RFB_S2C_XVP, 0, XVP_VERSION, XVP_INIT };
        if (buf_put(to_viewer, init, sizeof init) != 0)
            return false;
        x->init_due = false;
        x->init_sent = true;
    }
    if (x->fail_due) {
        static const uint8_t fail[XVP_MSG_LEN] = { RFB_S2C_XVP, 0, XVP_VERSION, XVP_FAIL };
        if (buf_put(to_viewer, fail, sizeof fail) != 0)
            return false;
        x->fail_due = false;
    }
    return true;
}

/* One XVP message from the viewer (4 bytes at p; the framer has checked
 * that it announced -309): rate, then version, code, right. */
static void xvp_message(struct rfbfilter *f, const uint8_t *p)
{
    struct xvp *x = &f->xvp;
    double now = f->cu.link.now;
    unsigned version = p[2], code = p[3];
    if (x->seen && now < x->next_ok) {
        x->fail_due = true;
        if (!x->flood_told) {
            x->flood_told = true;
            xvp_hook(f, RFBFILTER_PWR_FLOOD, code, "more than one xvp message in 2 s: refused "
                     "without a look (told once per session)");
        }
        return;
    }
    x->seen = true;
    x->next_ok = now + RFBFILTER_XVP_INTERVAL;
    char why[96];
    if (version != XVP_VERSION)
        snprintf(why, sizeof why, "xvp version %u (only 1 exists)", version);
    else if (code != XVP_SHUTDOWN && code != XVP_REBOOT && code != XVP_RESET)
        snprintf(why, sizeof why, "unknown xvp code %u", code);
    else if (x->right == XR_NO)
        snprintf(why, sizeof why, "no power right (not in the VM's power_users/power_groups)");
    else if (!x->init_sent)
        snprintf(why, sizeof why, "xvp message before XVP_INIT");
    else if (x->busy)
        snprintf(why, sizeof why, "the previous power action still runs");
    else {
        x->busy = true;
        xvp_hook(f, RFBFILTER_PWR_DO, code, NULL);
        return;
    }
    x->fail_due = true;
    xvp_hook(f, RFBFILTER_PWR_REFUSED, code, why);
}

/* ------------------------------------------------------- continuous updates
 *
 * QEMU 7.2 has neither ContinuousUpdates nor Fence; vmgate plays the server
 * side of both for viewers that announce them (see the header).  Messages
 * for the viewer that come from the viewer's own stream (fence answers, the
 * offer, EndOfContinuousUpdates) wait in vq until the VM's stream is between
 * messages; requests for QEMU go to to_vm, after what the viewer sent before
 * (the approved bytes of f2b always end between messages: cut text is cut
 * out).  Positions count the VM -> viewer stream as the filter approves and
 * injects it, so a position echoed in a fence answer says how much of it the
 * viewer has processed. */

void rfbfilter_link(struct rfbfilter *f, const struct rfbfilter_link *l)
{
    f->cu.link = *l;
}

/* The position of the VM -> viewer stream right now, inside rfbfilter_s2c
 * (ok and to_viewer as they are) or, with ok NULL, as of its last return. */
static uint64_t s2c_pos(const struct rfbfilter *f, const size_t *ok, const struct buf *to_viewer)
{
    if (!ok)
        return f->cu.pos;
    return f->cu.pos + (*ok - f->cu.ok0) + (buf_len(to_viewer) - f->cu.inj0);
}

/* A Fence message (either direction: the type byte is the same) into out. */
static size_t put_fence(uint8_t *out, uint32_t flags, const uint8_t *payload, uint8_t len)
{
    out[0] = RFB_S2C_FENCE;
    out[1] = out[2] = out[3] = 0;
    rfb_put_u32(out + 4, flags);
    out[8] = len;
    if (len)
        memcpy(out + 9, payload, len);
    return 9u + len;
}

/* The delivery rate measured (bytes a second), or 0. */
static double cu_delivery(const struct cu *u)
{
    double m = 0;
    for (unsigned i = 0; i < CU_RATES; i++)
        if (u->rates[i] > m)
            m = u->rates[i];
    return m;
}

/* The rate the viewer takes bytes at, as far as vmgate can tell: what the
 * window allows per base round trip, or the delivery rate measured if that
 * is more (a rate measured while vmgate had little to send is less than the
 * link's, so it only ever raises the figure); 0 before the first round trip
 * is known. */
static double cu_rate(const struct cu *u)
{
    if (u->base_rtt <= 0)
        return 0;
    double d = cu_delivery(u), w = (double)u->window / u->base_rtt;
    return d > w ? d : w;
}

/* The window in force: Vegas's, never under the bandwidth-delay product
 * measured (the delivery rate times the base round trip) plus alpha.  An
 * update is sent whole, so on a link where one frame takes longer than a
 * round trip every echo comes late by the frame's own sending time and
 * Vegas alone would settle under what the link carries; at the product, the
 * next frame is asked for while about one round trip of the last one is
 * still on its way — no standing queue, and no idle link. */
static uint64_t cu_window(const struct cu *u)
{
    double bdp = cu_delivery(u) * u->base_rtt + VEGAS_ALPHA;
    uint64_t w = u->window;
    if (u->base_rtt > 0 && bdp > (double)w)
        w = bdp > RFBFILTER_WIN_MAX ? RFBFILTER_WIN_MAX : (uint64_t)bdp;
    return w;
}

/* A new echo at pos: a delivery rate sample once a base round trip has
 * passed since the span began. */
static void cu_rate_sample(struct cu *u, uint64_t pos)
{
    if (u->rate_at <= 0 || pos < u->rate_pos) {
        u->rate_pos = pos;
        u->rate_at = u->link.now;
        return;
    }
    double dt = u->link.now - u->rate_at;
    if (u->base_rtt <= 0 || dt < u->base_rtt)
        return;
    u->rates[u->rate_next++ % CU_RATES] = (double)(pos - u->rate_pos) / dt;
    u->rate_pos = pos;
    u->rate_at = u->link.now;
}

/* The stream has reached pos: add what came since the last look to the
 * extra buffer and drain it by what the window carried in the meantime. */
static void cu_extra(struct cu *u, uint64_t pos)
{
    double rate = cu_rate(u);
    if (rate > 0) {
        if (pos > u->extra_pos)
            u->extra += pos - u->extra_pos;
        double dt = u->link.now - u->extra_at;
        double gone = dt > 0 ? dt * rate : 0;
        u->extra = gone >= (double)u->extra ? 0 : u->extra - (uint64_t)gone;
    }
    u->extra_pos = pos;
    u->extra_at = u->link.now;
}

/* How far the viewer has probably got: the position it echoed last, plus
 * what the window's rate carried since the echo (never past pos).  Fences
 * come only between updates, so without this a window smaller than one
 * large update would wait for the whole of it to be echoed before vmgate
 * asks QEMU for the next one, and the link would idle a round trip per
 * frame; with it, the next frame is asked for while the last bytes of the
 * one before are still on their way. */
static uint64_t cu_acked_now(const struct cu *u, uint64_t pos)
{
    double rate = cu_rate(u);
    if (rate <= 0 || u->link.now <= u->ack_at)
        return u->acked;
    if (pos <= u->acked)
        return u->acked;
    double more = (u->link.now - u->ack_at) * rate;
    return more >= (double)(pos - u->acked) ? pos : u->acked + (uint64_t)more;
}

/* Our own fence request at stream position pos (BlockBefore: the viewer
 * answers once it has processed everything before it). */
static size_t our_fence(struct rfbfilter *f, uint64_t pos, uint8_t out[static FENCE_MSG_MAX])
{
    uint8_t pl[OUR_FENCE_LEN];
    rfb_put_u32(pl, (uint32_t)(pos >> 32));
    rfb_put_u32(pl + 4, (uint32_t)pos);
    rfb_put_u32(pl + 8, (uint32_t)(uint64_t)(f->cu.link.now * 1000.0));
    f->cu.fenced = pos;
    cu_extra(&f->cu, pos);
    f->cu.ping[f->cu.ping_next % CU_PINGS].pos = pos;
    f->cu.ping[f->cu.ping_next % CU_PINGS].extra = f->cu.extra;
    f->cu.ping_next++;
    return put_fence(out, FENCE_REQUEST | FENCE_BLOCK_BEFORE, pl, sizeof pl);
}

static bool vq_put(struct cu *u, const uint8_t *p, size_t n)
{
    if (n > CU_VQ_CAP - u->vq_len)
        return false;
    memcpy(u->vq + u->vq_len, p, n);
    u->vq_len += n;
    return true;
}

/* The position the stream will reach when the update passing now is
 * through, guessed from the size of the last one: vmgate asks QEMU for the
 * next update as this one begins, when only its head has been seen, and a
 * window checked against that head alone would let a second large frame
 * queue behind the first. */
static uint64_t cu_ahead(const struct cu *u, uint64_t pos)
{
    if (!u->in_update)
        return pos;
    uint64_t done = pos - u->upd_start;
    return done >= u->upd_size ? pos : pos + (u->upd_size - done);
}

/* Whether vmgate may ask QEMU for another update with the stream at pos:
 * with fences, the bytes the viewer has not echoed yet are under the
 * window; without, the kernel's queue is under its congestion window. */
static bool window_open(const struct rfbfilter *f, uint64_t pos)
{
    const struct cu *u = &f->cu;
    if (u->fence_offered)
        return cu_ahead(u, pos) - cu_acked_now(u, pos) < cu_window(u);
    uint64_t w = u->link.cwnd > RFBFILTER_WIN_MIN ? u->link.cwnd : RFBFILTER_WIN_MIN;
    return u->link.queued < w;
}

/* Keep one incremental request for the enabled area outstanding at QEMU,
 * as long as the window allows. */
static void cu_pump(struct rfbfilter *f, uint64_t pos, struct buf *to_vm)
{
    struct cu *u = &f->cu;
    if (!u->on || u->outstanding || u->disabling || !window_open(f, pos))
        return;
    uint8_t req[10] = { RFB_C2S_FB_UPDATE_REQ, 1 };
    memcpy(req + 2, u->rect, 8);
    if (buf_put(to_vm, req, sizeof req) == 0)
        u->outstanding = true;
}

uint32_t rfbfilter_window(const struct rfbfilter *f)
{
    return (uint32_t)cu_window(&f->cu);
}

bool rfbfilter_wants_queue(const struct rfbfilter *f)
{
    return f->cu.on && !f->cu.fence_offered;
}

double rfbfilter_wake(const struct rfbfilter *f)
{
    const struct cu *u = &f->cu;
    if (u->disabling && u->outstanding) {
        double left = u->disable_at + RFBFILTER_CU_HOLD - u->link.now;
        return left > 0 ? left : 0;
    }
    if (!u->on || u->outstanding || u->disabling || window_open(f, u->pos))
        return -1;
    if (!u->fence_offered)
        return KERNEL_WAKE;
    /* fences: when the estimate of what the viewer has taken opens the
     * window (an echo may come sooner and call us anyway) */
    double rate = cu_rate(u);
    if (rate <= 0)
        return -1;                           /* the first echo opens it */
    double over = (double)(cu_ahead(u, u->pos) - cu_acked_now(u, u->pos)) - (double)cu_window(u) + 1;
    double t = over / rate;
    return t < 0.002 ? 0.002 : t > 1.0 ? 1.0 : t;
}

/* One sample of the round trip from an echo of our fence: Vegas.  The
 * bytes queued on the path are window * (rtt - base) / rtt; below alpha the
 * window grows (doubling until the first congestion), above beta it
 * shrinks; at most one change per round trip. */
static void vegas(struct cu *u, double rtt, uint64_t extra)
{
    if (rtt < 0 || rtt > 60)
        return;                              /* clock wrap or nonsense */
    if (u->base_rtt <= 0 || rtt < u->base_rtt)
        u->base_rtt = rtt;
    /* a fence sent before the last change says nothing of the window now
     * (as TigerVNC): without this, slow start doubles once per base round
     * trip on echoes of bytes sent under a window a quarter the size, and
     * overshoots a thin link by megabytes */
    if (u->link.now - rtt < u->last_adjust)
        return;
    /* the time the extra buffer behind this fence needed at the window's
     * rate is not queueing: take it off (as TigerVNC's Congestion.cxx) */
    double carry = cu_rate(u) > 0 ? (double)extra / cu_rate(u) : 0;
    rtt = rtt - carry < u->base_rtt ? u->base_rtt : rtt - carry;
    u->last_adjust = u->link.now;
    double queued = rtt > 0 ? (double)u->window * (rtt - u->base_rtt) / rtt : 0;
    uint64_t w = u->window;
    if (queued < VEGAS_ALPHA) {
        w = u->slow_start ? 2 * w : w + VEGAS_STEP;
    } else if (queued > VEGAS_BETA) {
        /* down to what the path carried in this round trip (the window
         * less what it queued) plus alpha, in one step, as FAST TCP: a
         * step of 16 KiB a round trip takes seconds to undo a slow start
         * that overshot a thin link by a megabyte */
        u->slow_start = false;
        double carried = (double)w - queued + VEGAS_ALPHA;
        w = carried > 0 ? (uint64_t)carried : 0;
    }
    u->window = (uint32_t)(w < RFBFILTER_WIN_MIN ? RFBFILTER_WIN_MIN
                           : w > RFBFILTER_WIN_MAX ? RFBFILTER_WIN_MAX : w);
}

/* The viewer's SetEncodings passed: offer what it asked for (once), and
 * say once per session which mode runs. */
static void cu_offer(struct rfbfilter *f)
{
    struct cu *u = &f->cu;
    bool want_cu = rfbmsg_viewer_has(&f->fm, RFB_ENC_CONT_UPDATES);
    bool want_fence = rfbmsg_viewer_has(&f->fm, RFB_ENC_FENCE);
    bool auto_mode = f->vm->continuous_updates == CFG_CU_AUTO;
    if (!u->logged) {
        u->logged = true;
        if (!want_cu)
            note(f, LOG_LVL_INFO, "continuous updates: not asked for by the viewer "
                 "(it requests each update)");
        else if (!auto_mode)
            note(f, LOG_LVL_INFO, "continuous updates: off (continuous_updates = off)");
        else if (want_fence)
            note(f, LOG_LVL_INFO, "continuous updates: on, by vmgate; flow control by fence "
                 "round trips");
        else
            note(f, LOG_LVL_INFO, "continuous updates: on, by vmgate; flow control by the "
                 "kernel's send queue");
    }
    if (!auto_mode)
        return;
    if (want_fence && !u->fence_offered) {
        uint8_t m[FENCE_MSG_MAX];
        size_t n = our_fence(f, u->pos, m);
        if (vq_put(u, m, n)) {
            u->fence_offered = true;
            u->acked = u->pos;
        }
    }
    if (want_cu && !u->cu_offered) {
        static const uint8_t end_cu = RFB_S2C_END_CU;
        u->cu_offered = vq_put(u, &end_cu, 1);
    }
    rfbmsg_confirm(&f->fm, u->cu_offered, u->fence_offered);
}

/* EnableContinuousUpdates (10 bytes at p), never forwarded. */
static void cu_enable(struct rfbfilter *f, const uint8_t *p)
{
    struct cu *u = &f->cu;
    if (p[1]) {
        u->on = true;
        memcpy(u->rect, p + 2, 8);
        return;
    }
    /* Disabled: what the viewer sends next (TigerVNC: SetPixelFormat) must
     * not reach QEMU before the update it owes us has gone by. */
    u->on = false;
    u->disabling = true;
    u->disable_at = u->link.now;
}

/* A ClientFence (n bytes at p, payload <= 64: the framer checked), never
 * forwarded.  A request is answered through vq; an answer to ours is a
 * round trip.  Returns false when vq has no room yet (try again later). */
static bool cu_fence(struct rfbfilter *f, const uint8_t *p, size_t n)
{
    struct cu *u = &f->cu;
    uint32_t flags = rfb_get_u32(p + 4);
    uint8_t len = p[8];
    if (flags & FENCE_REQUEST) {
        uint8_t m[FENCE_MSG_MAX];
        size_t mn = put_fence(m, flags & FENCE_KNOWN, p + 9, len);
        if (!vq_put(u, m, mn))
            return false;
        if (flags & (FENCE_BLOCK_AFTER | FENCE_SYNC_NEXT))
            u->fence_hold = true;
        return true;
    }
    if (len != OUR_FENCE_LEN || n != 9u + OUR_FENCE_LEN || !u->fence_offered)
        return true;                          /* not an echo of ours: nothing to learn */
    uint64_t pos = (uint64_t)rfb_get_u32(p + 9) << 32 | rfb_get_u32(p + 13);
    uint32_t ms = rfb_get_u32(p + 17);
    if (pos < u->acked || pos > u->fenced)
        return true;
    u->acked = pos;
    u->ack_at = u->link.now;
    cu_rate_sample(u, pos);
    uint64_t extra = 0;
    for (unsigned i = 0; i < CU_PINGS; i++)
        if (u->ping[i].pos == pos) {
            extra = u->ping[i].extra;
            break;
        }
    uint32_t now_ms = (uint32_t)(uint64_t)(u->link.now * 1000.0);
    vegas(u, (double)(uint32_t)(now_ms - ms) / 1000.0, extra);
    return true;
}

/* The VM's stream is between messages (at *ok): put out what waits for
 * that — fence answers and offers, EndOfContinuousUpdates after a disable,
 * our fence after an update or when the window is full with bytes not
 * fenced yet. */
static void cu_boundary(struct rfbfilter *f, const size_t *ok, struct buf *to_viewer)
{
    struct cu *u = &f->cu;
    if (u->vq_len) {
        if (buf_put(to_viewer, u->vq, u->vq_len) != 0)
            return;
        u->vq_len = 0;
        u->fence_hold = false;
    }
    if (u->disabling &&
        (!u->outstanding || u->link.now - u->disable_at >= RFBFILTER_CU_HOLD)) {
        static const uint8_t end_cu = RFB_S2C_END_CU;
        if (buf_put(to_viewer, &end_cu, 1) != 0)
            return;
        u->disabling = false;
    }
    if (!u->fence_offered)
        return;
    uint64_t pos = s2c_pos(f, ok, to_viewer);
    bool stuck = u->on && !window_open(f, pos) && u->acked >= u->fenced && u->fenced < pos;
    if ((u->fence_due && u->on) || stuck) {
        uint8_t m[FENCE_MSG_MAX];
        size_t n = our_fence(f, pos, m);
        if (buf_put(to_viewer, m, n) != 0)
            return;
    }
    u->fence_due = false;
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

static int s2c(struct rfbfilter *f, struct buf *b, size_t *ok, struct buf *to_viewer,
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
        if (rfbmsg_s2c_idle(&f->fm)) {
            if (!xvp_boundary(f, to_viewer))
                return 0;
            cu_boundary(f, ok, to_viewer);
            if (!buf_empty(to_viewer))
                return 0;
        }
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
        if (m.type == RFB_S2C_CUT_TEXT) {  /* its head or its body */
            hold_span(f, S2C, &m, b, *ok, (size_t)r, to_viewer, to_vm);
            continue;
        }
        *ok += (size_t)r;
        if (m.type == RFB_S2C_FB_UPDATE && m.kind == RFBMSG_HEAD) {
            /* this update answers what was outstanding: ask for the next */
            f->cu.outstanding = false;
            f->cu.in_update = true;
            f->cu.upd_start = s2c_pos(f, ok, to_viewer);
            cu_pump(f, f->cu.upd_start, to_vm);
        }
        if (m.type == RFB_S2C_FB_UPDATE && m.end) {
            f->cu.fence_due = true;
            f->cu.in_update = false;
            f->cu.upd_size = s2c_pos(f, ok, to_viewer) - f->cu.upd_start;
        }
    }
}

int rfbfilter_s2c(struct rfbfilter *f, struct buf *b, size_t *ok, struct buf *to_viewer,
                  struct buf *to_vm, char *why, size_t whylen)
{
    f->cu.ok0 = *ok;
    f->cu.inj0 = buf_len(to_viewer);
    int r = s2c(f, b, ok, to_viewer, to_vm, why, whylen);
    f->cu.pos = s2c_pos(f, ok, to_viewer);
    if (f->cu.fence_offered)                /* only fences' round trips use it */
        cu_extra(&f->cu, f->cu.pos);
    if (r == 0)
        cu_pump(f, f->cu.pos, to_vm);
    return r;
}

/* The viewer's FramebufferUpdateRequest (at b[ok], r bytes): while
 * continuous updates are on, incremental ones are dropped (vmgate keeps its
 * own outstanding); anything that passes is outstanding at QEMU.  Returns
 * the bytes approved in place. */
static size_t fb_request(struct rfbfilter *f, struct buf *b, size_t ok, size_t r)
{
    if (f->cu.on && buf_head(b)[ok + 1]) {
        buf_cut(b, ok, r);
        return 0;
    }
    f->cu.outstanding = true;
    return r;
}

static int c2s(struct rfbfilter *f, struct buf *b, size_t *ok, struct buf *to_viewer,
               struct buf *to_vm, char *why, size_t whylen)
{
    if (!f->si_done)
        return 0;                          /* nothing is sent before ServerInit */
    for (;;) {
        if (!buf_empty(to_vm))
            return 0;
        if (f->cu.disabling || f->cu.fence_hold)
            return 0;                      /* see cu_enable, cu_fence */
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
            cu_offer(f);
            xvp_offer(f);
        } else if (m.type == RFB_C2S_ENABLE_CU) {
            cu_enable(f, buf_head(b) + *ok);
            buf_cut(b, *ok, (size_t)r);
        } else if (m.type == RFB_C2S_FENCE) {
            if (!cu_fence(f, buf_head(b) + *ok, (size_t)r))
                return 0;                  /* vq full: again once it is out */
            buf_cut(b, *ok, (size_t)r);
        } else if (m.type == RFB_C2S_XVP) {
            xvp_message(f, buf_head(b) + *ok);     /* never forwarded */
            buf_cut(b, *ok, (size_t)r);
        } else if (m.type == RFB_C2S_FB_UPDATE_REQ) {
            *ok += fb_request(f, b, *ok, (size_t)r);
        } else if (f->vm->qemu_consoles == CFG_QCONS_BLOCK &&
                   (m.type == RFB_C2S_KEY ||
                    (m.type == RFB_C2S_QEMU && m.sub == RFB_QEMU_EXT_KEY))) {
            *ok += guard_key(f, b, *ok, (size_t)r, to_vm);
        } else {
            *ok += (size_t)r;
        }
    }
}

int rfbfilter_c2s(struct rfbfilter *f, struct buf *b, size_t *ok, struct buf *to_viewer,
                  struct buf *to_vm, char *why, size_t whylen)
{
    int r = c2s(f, b, ok, to_viewer, to_vm, why, whylen);
    if (r == 0)
        cu_pump(f, f->cu.pos, to_vm);
    return r;
}
