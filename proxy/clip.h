/* proxy/clip.h — clipboard codec: Extended Clipboard messages (RFB
 * pseudo-encoding 0xC0A1E5CE) and legacy cut-text conversion.
 *
 * Pure: no I/O.  Uses zlib (link with -lz); the only allocations are
 * zlib's own stream state.
 *
 * Wire format (rfbproto "Extended Clipboard"): a ServerCutText (3) or
 * ClientCutText (6) whose S32 length is negative carries |length| bytes of
 * payload: U32 flags, then by action
 *   caps     one U32 maximum size per format bit set, in bit order;
 *   request, peek, notify  nothing;
 *   provide  a zlib stream inflating to, per format bit set in bit order,
 *            U32 size + size bytes.  Text is UTF-8 with CRLF line ends and
 *            a terminating NUL counted in size.
 * The functions below take the payload (the bytes after the 8-byte cut
 * text header) or build whole messages (header included). */
#ifndef VMGATE_CLIP_H
#define VMGATE_CLIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CLIP_FMT_TEXT    (1u << 0)
#define CLIP_FMT_RTF     (1u << 1)
#define CLIP_FMT_HTML    (1u << 2)
#define CLIP_FMT_DIB     (1u << 3)
#define CLIP_FMT_FILES   (1u << 4)
#define CLIP_FMT_MASK    0x0000ffffu
#define CLIP_ACT_CAPS    (1u << 24)
#define CLIP_ACT_REQUEST (1u << 25)
#define CLIP_ACT_PEEK    (1u << 26)
#define CLIP_ACT_NOTIFY  (1u << 27)
#define CLIP_ACT_PROVIDE (1u << 28)
#define CLIP_ACT_MASK    0x1f000000u

/* Text is never inflated beyond this (QEMU's own limit), whatever the
 * caller asks for. */
#define CLIP_TEXT_HARD_MAX (1u << 20)

#define CLIP_OK       0
#define CLIP_BAD      (-1)   /* malformed: drop the message (why says what) */
#define CLIP_TOO_BIG  (-2)   /* well-formed but the text is over the limit */

enum clip_action { CLIP_CAPS = 1, CLIP_REQUEST, CLIP_PEEK, CLIP_NOTIFY, CLIP_PROVIDE };

struct clip_msg {
    uint32_t flags;            /* the raw flags word */
    enum clip_action action;
    uint32_t formats;          /* flags & CLIP_FMT_MASK */
    uint32_t actions;          /* caps only: actions the sender supports */
    uint32_t caps_size[16];    /* caps only: max unsolicited size per format bit */
    const uint8_t *zdata;      /* provide only: the zlib data (points into the payload) */
    size_t zlen;
};

/* Parse an extended clipboard payload (n >= 4).  A message with the caps
 * bit is caps (its other action bits list what the sender supports); any
 * other must have exactly one of request/peek/notify/provide.  Bytes after
 * what the action needs are ignored.  Returns CLIP_OK or CLIP_BAD. */
int clip_parse(const uint8_t *payload, size_t n, struct clip_msg *m, char *why, size_t whylen);

/* Inflater for one direction (one per peer).  Zero-initialise it
 * ({0} or clip_inflater_init) and free it with clip_inflater_free.
 *
 * Peers compress provides in two styles, both handled:
 *   - a complete zlib stream per message (QEMU: Z_FINISH);
 *   - a fresh stream per message that is only flushed, never finished
 *     (TigerVNC, noVNC): "input used up" counts as success.
 * A peer that keeps ONE stream across messages (only flushing it) is
 * handled too: when a provide does not start with a zlib header (or fails
 * as a fresh stream) and the previous provide's stream is still open, the
 * data is inflated as its continuation.  That open stream (~45 KB) is kept
 * between messages only while the peer's last stream is unfinished. */
struct clip_inflater {
    void *cont;                /* open z_stream from the last provide, or NULL */
};
void clip_inflater_init(struct clip_inflater *zi);
void clip_inflater_free(struct clip_inflater *zi);

/* Extract the text of a provide message m (from clip_parse).  max is the
 * largest text accepted, without its NUL (clamped to CLIP_TEXT_HARD_MAX);
 * out must have room for max bytes.
 *   CLIP_OK       text in out[0..*outlen), without NUL (cut at the first
 *                 NUL); *outlen = 0 if the provide carries no text format;
 *   CLIP_TOO_BIG  the declared text size is over max; *outlen = that size
 *                 (for the log).  Nothing over max is ever inflated;
 *   CLIP_BAD      not zlib, corrupt, or truncated. */
int clip_provide_text(struct clip_inflater *zi, const struct clip_msg *m, size_t max,
                      uint8_t *out, size_t *outlen, char *why, size_t whylen);

/* Build whole cut-text messages; msgtype is 3 (ServerCutText, to a viewer)
 * or 6 (ClientCutText, to a server).  Each returns the length written, or 0
 * if cap is too small. */
/* caps: flags = text | caps | actions, one size: text_max (16 bytes). */
size_t clip_build_caps(uint8_t msgtype, uint32_t actions, uint32_t text_max,
                       uint8_t *out, size_t cap);
/* request / peek / notify: flags only (12 bytes). */
size_t clip_build_flags(uint8_t msgtype, uint32_t flags, uint8_t *out, size_t cap);
/* provide of UTF-8 text (len <= CLIP_TEXT_HARD_MAX, cut at the first NUL),
 * NUL added, compressed as one complete zlib stream (which every peer
 * accepts).  Returns 0 if cap (see clip_provide_bound) is too small. */
size_t clip_build_provide(uint8_t msgtype, const uint8_t *text, size_t len,
                          uint8_t *out, size_t cap);
size_t clip_provide_bound(size_t len);
/* Legacy cut text: positive length + bytes (Latin-1 by the spec).  The
 * text may already be in place at out + 8. */
size_t clip_build_legacy(uint8_t msgtype, const uint8_t *text, size_t len,
                         uint8_t *out, size_t cap);

/* UTF-8 (extended clipboard text) -> Latin-1 (legacy ServerCutText).
 * Rule: code points U+0000..U+00FF map to their byte; every other code
 * point becomes '?', and so does each malformed sequence (one '?' per
 * maximal invalid subpart, overlongs and surrogates included).  Line ends:
 * CRLF and lone CR become LF (legacy text uses LF alone).  Conversion stops
 * at the first NUL.  out needs n bytes; returns the length. */
size_t clip_utf8_to_latin1(const uint8_t *in, size_t n, uint8_t *out);
/* Latin-1 (legacy ClientCutText) -> UTF-8 with CRLF line ends: LF and lone
 * CR become CRLF, CRLF stays.  Stops at the first NUL.  out needs 2n bytes;
 * returns the length. */
size_t clip_latin1_to_utf8(const uint8_t *in, size_t n, uint8_t *out);
/* Whether in[0..n) is well-formed UTF-8. */
bool clip_utf8_valid(const uint8_t *in, size_t n);

/* One clipboard event, whatever protocol carried it (the RFB filter and
 * the SPICE agent parser both emit it), formatted in one place so every
 * way in logs (and audits) the same fields. */
enum clip_event_kind { CLIP_EV_TRANSFER, CLIP_EV_OFFER };
struct clip_event {
    enum clip_event_kind kind;
    bool to_vm;                     /* direction: viewer -> VM */
    uint64_t bytes;                 /* text bytes counted (TRANSFER) */
    bool hashed;                    /* sha256 holds the text's hash */
    uint8_t sha256[32];
    const char *type;               /* "utf8-text", ... (TRANSFER) */
    const char *reason;             /* NULL: allowed; else why it was dropped */
};
/* "clipboard dir=to-vm bytes=N type=T sha256=HEX result=allowed" or
 * "... result=dropped reason=\"...\""; an offer refused by the policy is
 * "clipboard-offer dir=D result=dropped reason=\"...\"" (its own event, so
 * "clipboard dir=" lines stay one per transfer).  Returns out. */
const char *clip_event_format(const struct clip_event *ev, char *out, size_t outsz);

#endif
