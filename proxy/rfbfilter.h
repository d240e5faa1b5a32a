/* proxy/rfbfilter.h — the policed RFB relay: every message after ServerInit
 * is delimited by the framer (rfbmsg.h), SetEncodings is rewritten to what
 * the framer can follow, and cut text is held, checked against the VM's
 * clipboard policy, audited, and forwarded, translated or dropped.
 *
 * No I/O.  The connection owns four buffers and hands them in:
 *   - the stream buffer of one direction (b2f: VM -> viewer, f2b: viewer ->
 *     VM) and *ok, the length of its head that is approved for sending.
 *     The filter parses the bytes past *ok, advances *ok over what may pass
 *     untouched (pixel data passes without a copy), and cuts out what it
 *     holds back (cut text, SetEncodings, which it re-inserts rewritten,
 *     or queues in to_vm when the buffer is too full for it to grow);
 *   - two injection buffers, to_viewer and to_vm, for messages the filter
 *     generates or releases (a held cut text, a translation, a clipboard
 *     request on a legacy viewer's behalf).  The connection sends a
 *     direction's approved bytes first, then its injection buffer.  The
 *     filter does not parse a direction while that direction's injection
 *     buffer is not empty, so injections always land between messages.
 *
 * Clipboard rules (policy = the VM's `clipboard`, limit `clipboard_max`):
 *   - text VM -> viewer passes only with both/from-vm, viewer -> VM only
 *     with both/to-vm, and never above the limit; dropped text is never
 *     forwarded, and neither side is stalled by it;
 *   - a viewer without Extended Clipboard (gtk-vnc, Remmina) gets the VM's
 *     text as legacy ServerCutText in Latin-1 (characters outside Latin-1
 *     become '?'), and its legacy ClientCutText reaches an Extended
 *     Clipboard server as notify + provide in UTF-8;
 *   - every transfer is one audit line: direction, byte count, SHA-256 of
 *     the text, allowed or dropped and why.  Never the text;
 *   - text ends at its first NUL, and what passes is a message rebuilt from
 *     exactly the bytes counted and hashed; other formats and a provide
 *     without text go nowhere.
 *
 * Keys (qemu_consoles = block, the default): a key 1..9 going down while
 * Ctrl and Alt are down, which switches QEMU's virtual consoles (where a
 * QEMU without -qmp/-monitor keeps its monitor), is dropped; see the key
 * guard in rfbfilter.c for QEMU's exact rules.
 *
 * Continuous updates (continuous_updates = auto, the default): QEMU knows
 * neither ContinuousUpdates (-313) nor Fence (-312), so both are hidden from
 * it, and a viewer that announces them gets them from vmgate: a ServerFence
 * request (for -312) and EndOfContinuousUpdates, between server messages.
 * vmgate answers the viewer's fence requests itself, in stream order (the
 * answer goes after everything already approved for the viewer; with
 * BlockAfter or SyncNext the viewer's later messages wait until it is
 * queued); no Fence ever reaches QEMU.  While continuous updates are on,
 * one incremental FramebufferUpdateRequest for the enabled rectangle is kept
 * outstanding at QEMU, re-sent as each update begins; the viewer's
 * incremental requests are dropped, its non-incremental ones pass.  When
 * the viewer disables them, its later messages wait until the update QEMU
 * owes has been forwarded (or the link clock says RFBFILTER_CU_HOLD passed
 * without one), then EndOfContinuousUpdates goes out and they are released:
 * TigerVNC switches its pixel format at EndOfContinuousUpdates, so nothing
 * QEMU encoded in the old format may follow it.
 *
 * Flow control: a viewer with fences gets a fence request after each update
 * (payload: the stream position and the time); the bytes in flight
 * (position now, or the guessed end of the update passing, minus where the
 * viewer probably is: its last echo plus what its rate carried since) are
 * kept under a window that follows the measured round trip, Vegas-style
 * (RFBFILTER_WIN_MIN .. RFBFILTER_WIN_MAX), and never under the delivery
 * rate measured from the echoes times the base round trip; when it is
 * full, vmgate stops asking QEMU for more.  A viewer with -313 alone is
 * paced by the kernel: no new request while the bytes queued for it (ours,
 * and the kernel's unsent + unacknowledged bytes from TCP_INFO, what
 * SIOCOUTQ counts) exceed the TCP congestion window.  The filter does no I/O: the connection passes the
 * clock and those numbers in with rfbfilter_link() before each call. */
#ifndef VMGATE_RFBFILTER_H
#define VMGATE_RFBFILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/config.h"

#define RFBFILTER_INJECT_CAP ((size_t)2 << 20)   /* capacity for the injection buffers */

#include "common/log.h"
#include "proxy/clip.h"

struct rfbfilter;

/* XVP (power buttons, pseudo-encoding -309), which vmgate answers itself
 * (QEMU never sees -309 or a message 250):
 *   - a viewer that announces -309 makes the filter ask (RFBFILTER_PWR_ASK)
 *     whether this session's user may control the VM's power; the
 *     connection asks the auth helper and answers rfbfilter_xvp_right();
 *     only a yes queues XVP_INIT (250, 0, 1, 1) for the viewer, between
 *     server messages;
 *   - an XVP message (250, pad, version, code) is never forwarded.  Version
 *     1 with code 2 (shutdown), 3 (reboot) or 4 (reset) after XVP_INIT is
 *     an action (RFBFILTER_PWR_DO; the connection has the helper run it and
 *     reports with rfbfilter_xvp_done()); anything else — another version,
 *     another code, a message before XVP_INIT (no right, or the check not
 *     answered yet), an action while one runs — is refused here
 *     (RFBFILTER_PWR_REFUSED with the reason) and answered XVP_FAIL
 *     (250, 0, 1, 0); the session goes on.  A message 250 from a viewer
 *     that never announced -309 is a protocol error: the session closes
 *     with that reason (the framer's rule, as QEMU does);
 *   - rate: one XVP message per RFBFILTER_XVP_INTERVAL seconds (by the
 *     link clock, rfbfilter_link) is looked at; the others get XVP_FAIL
 *     without a look, and the first of them is reported once per session
 *     (RFBFILTER_PWR_FLOOD);
 *   - XVP_FAILs are coalesced: at most one waits for a message boundary. */
#define RFBFILTER_XVP_INTERVAL 2.0
enum rfbfilter_pwr {
    RFBFILTER_PWR_ASK,       /* the viewer wants XVP: may this session's user power? */
    RFBFILTER_PWR_DO,        /* run code (2 shutdown, 3 reboot, 4 reset) */
    RFBFILTER_PWR_REFUSED,   /* code refused by the filter, why says so (XVP_FAIL queued) */
    RFBFILTER_PWR_FLOOD,     /* messages over the rate: refused unseen (once per session) */
};

/* The filter does no logging itself: what it has to say goes to these
 * (the connection adds its prefix and logs, or audits). */
struct rfbfilter_hooks {
    void (*clip)(void *ctx, const struct clip_event *ev);        /* every transfer, offer */
    void (*note)(void *ctx, enum log_level lvl, const char *msg);  /* anything else */
    void *ctx;
    /* XVP (see above); NULL: no power for this session (never XVP_INIT).
     * code: the XVP code (0 with ASK); why: with REFUSED and FLOOD. */
    void (*power)(void *ctx, enum rfbfilter_pwr ev, unsigned code, const char *why);
};

/* Returns NULL on allocation failure. */
struct rfbfilter *rfbfilter_new(const struct cfg_vm *vm, const struct rfbfilter_hooks *hooks);
void rfbfilter_free(struct rfbfilter *f);

#define RFBFILTER_WIN_MIN  (16u * 1024)        /* flow control window, bytes */
#define RFBFILTER_WIN_MAX  (4u * 1024 * 1024)
#define RFBFILTER_CU_HOLD  0.2                  /* seconds, see "disables" above */

/* What the connection knows about the viewer's link, passed in before each
 * rfbfilter_s2c / rfbfilter_c2s call. */
struct rfbfilter_link {
    double now;            /* monotonic seconds */
    uint64_t queued;       /* VM -> viewer bytes not yet acknowledged by the viewer's TCP:
                              the connection's buffers, OpenSSL's, and SIOCOUTQ */
    uint64_t cwnd;         /* the TCP congestion window in bytes (TCP_INFO), 0: unknown */
};
void rfbfilter_link(struct rfbfilter *f, const struct rfbfilter_link *l);

/* Whether the filter paces by the kernel's queue (continuous updates on,
 * no fences): only then does it need rfbfilter_link's queued and cwnd. */
bool rfbfilter_wants_queue(const struct rfbfilter *f);

/* The flow control window now (bytes in flight allowed with fences). */
uint32_t rfbfilter_window(const struct rfbfilter *f);

/* How soon (seconds) the filter wants to be called again without any I/O
 * (a disable waiting for RFBFILTER_CU_HOLD, the kernel's queue draining
 * with requests held back), or a negative number for never. */
double rfbfilter_wake(const struct rfbfilter *f);

/* The answer to RFBFILTER_PWR_ASK: with yes, XVP_INIT goes to the viewer
 * at the next boundary of the VM's stream (run rfbfilter_s2c). */
void rfbfilter_xvp_right(struct rfbfilter *f, bool yes);
/* The action RFBFILTER_PWR_DO asked for is over: ok false queues XVP_FAIL. */
void rfbfilter_xvp_done(struct rfbfilter *f, bool ok);

/* Parse VM -> viewer bytes in b past *ok.  Returns 0, or -1 with why set
 * when the VM sent something the framer cannot follow (the session must
 * close: a half-understood stream is never forwarded). */
int rfbfilter_s2c(struct rfbfilter *f, struct buf *b, size_t *ok, struct buf *to_viewer,
                  struct buf *to_vm, char *why, size_t whylen);
/* Parse viewer -> VM bytes in f past *ok (same contract). */
int rfbfilter_c2s(struct rfbfilter *f, struct buf *b, size_t *ok, struct buf *to_viewer,
                  struct buf *to_vm, char *why, size_t whylen);

#endif
