/* proxy/rfbmsg.h — RFB message framer for the relay phase (after ServerInit).
 *
 * Pure: no I/O, no allocation.  One struct rfbmsg_state per viewer
 * connection covers both directions, because the viewer's SetPixelFormat
 * and SetEncodings decide how the server's stream is delimited.
 *
 * Calling convention (the same as proxy/rfb.h):
 *   rfbmsg_s2c(st, p, n, &m) / rfbmsg_c2s(st, p, n, &m) look at the bytes
 *   received so far and return
 *     RFB_NEED (0)  the next unit is not complete: nothing was consumed;
 *                   call again with the same bytes plus more.  NEED is only
 *                   ever returned while n < RFBMSG_HDR_MAX, so a receive
 *                   buffer of at least RFBMSG_HDR_MAX bytes never stalls;
 *     RFB_BAD (-1)  malformed or not delimitable: close the session and log
 *                   st->why.  The direction stays failed (every later call
 *                   returns RFB_BAD again);
 *     r > 0         the first r bytes of p form one span, described by m.
 *                   The caller consumes them and calls again for the rest.
 *
 * Spans (m.kind):
 *   RFBMSG_MSG   a whole message, all of it in p[0..r)  (KeyEvent,
 *                SetEncodings, SetPixelFormat, Bell, xvp, ...);
 *   RFBMSG_HEAD  the fixed head of a longer message (FramebufferUpdate 4,
 *                ServerCutText/ClientCutText 8, SetColourMapEntries 6, QEMU
 *                audio data 8); what follows comes as RECT/DATA/CUT spans;
 *   RFBMSG_RECT  a 12-byte rectangle header inside a FramebufferUpdate,
 *                decoded into m.x/y/w/h/enc;
 *   RFBMSG_DATA  opaque bytes (pixel data and the sub-headers inside an
 *                encoding, colour-map entries, audio samples): forward them
 *                untouched.  Chunked to whatever is available, so an 8 MB Raw
 *                rect needs no 8 MB buffer;
 *   RFBMSG_CUT   body bytes of a cut-text message (legacy text or extended
 *                clipboard payload), chunked like DATA.
 * m.end is set on the span that completes its message.
 *
 * SetPixelFormat must be forwarded unchanged (the framer applies it when it
 * returns it); SetEncodings is replaced by rfbmsg_filter_encodings' output.
 * Everything except cut text may be forwarded as soon as it is returned;
 * the relay can add up consecutive spans and write them in one go.  Cut
 * text is reported head first (m.cut_len, m.cut_ext, m.cut_over) so the
 * caller can decide before forwarding a byte: forward the head and the body,
 * or swallow both (collect the body to translate it, or skip it). */
#ifndef VMGATE_RFBMSG_H
#define VMGATE_RFBMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/rfb.h"

/* The longest unit the framer needs contiguous: SetEncodings with
 * RFBMSG_MAX_ENCODINGS entries.  Every other unit is shorter (Tight
 * sub-header <= 1030, Hextile tile <= 1540, SetDesktopSize <= 4088). */
#define RFBMSG_MAX_ENCODINGS 1024
#define RFBMSG_HDR_MAX       (4 + 4 * RFBMSG_MAX_ENCODINGS)
/* Longest desktop name accepted in ServerInit (QEMU's is < 1024). */
#define RFBMSG_NAME_MAX      2048
/* QEMU drops a ClientCutText over 1 MiB; also the default cut_max. */
#define RFBMSG_CUT_MAX_QEMU  (1u << 20)
/* Upper bound for one QEMU audio data message (QEMU sends a few KiB). */
#define RFBMSG_AUDIO_MAX     (4u << 20)

/* Encodings (S32 on the wire). */
#define RFB_ENC_RAW               0
#define RFB_ENC_COPYRECT          1
#define RFB_ENC_RRE               2
#define RFB_ENC_CORRE             4
#define RFB_ENC_HEXTILE           5
#define RFB_ENC_ZLIB              6
#define RFB_ENC_TIGHT             7
#define RFB_ENC_ZLIBHEX           8
#define RFB_ENC_TRLE              15
#define RFB_ENC_ZRLE              16
#define RFB_ENC_ZYWRLE            17
#define RFB_ENC_JPEG              21
#define RFB_ENC_H264              50
#define RFB_ENC_JPEG_QUALITY_0    (-32)     /* -32 .. -23 */
#define RFB_ENC_JPEG_QUALITY_9    (-23)
#define RFB_ENC_DESKTOP_SIZE      (-223)
#define RFB_ENC_LAST_RECT         (-224)
#define RFB_ENC_POINTER_POS       (-232)
#define RFB_ENC_CURSOR            (-239)
#define RFB_ENC_XCURSOR           (-240)
#define RFB_ENC_COMPRESS_0        (-256)    /* -256 .. -247 */
#define RFB_ENC_COMPRESS_9        (-247)
#define RFB_ENC_QEMU_POINTER      (-257)
#define RFB_ENC_QEMU_EXT_KEY      (-258)
#define RFB_ENC_QEMU_AUDIO        (-259)
#define RFB_ENC_TIGHT_PNG         (-260)
#define RFB_ENC_LED_STATE         (-261)
#define RFB_ENC_GII               (-305)
#define RFB_ENC_DESKTOP_NAME      (-307)
#define RFB_ENC_EXT_DESKTOP_SIZE  (-308)
#define RFB_ENC_XVP               (-309)
#define RFB_ENC_FENCE             (-312)
#define RFB_ENC_CONT_UPDATES      (-313)
#define RFB_ENC_ALPHA_CURSOR      (-314)
#define RFB_ENC_EXT_MOUSE_BUTTONS (-316)
#define RFB_ENC_TIGHT_NO_ZLIB     (-317)
#define RFB_ENC_VMWARE_CURSOR     0x574D5664
#define RFB_ENC_VMWARE_LED        0x574D5668
#define RFB_ENC_WMVI              0x574D5669
#define RFB_ENC_EXT_CLIPBOARD     ((int32_t)0xC0A1E5CE)   /* -1063131698 */

/* Client -> server message types. */
#define RFB_C2S_SET_PIXEL_FORMAT  0
#define RFB_C2S_SET_ENCODINGS     2
#define RFB_C2S_FB_UPDATE_REQ     3
#define RFB_C2S_KEY               4
#define RFB_C2S_POINTER           5
#define RFB_C2S_CUT_TEXT          6
#define RFB_C2S_ENABLE_CU         150
#define RFB_C2S_FENCE             248
#define RFB_C2S_XVP               250
#define RFB_C2S_SET_DESKTOP_SIZE  251
#define RFB_C2S_QEMU              255
/* Server -> client message types. */
#define RFB_S2C_FB_UPDATE         0
#define RFB_S2C_COLOUR_MAP        1
#define RFB_S2C_BELL              2
#define RFB_S2C_CUT_TEXT          3
#define RFB_S2C_END_CU            150
#define RFB_S2C_FENCE             248
#define RFB_S2C_XVP               250
#define RFB_S2C_QEMU              255
/* QEMU (255) submessages. */
#define RFB_QEMU_EXT_KEY          0
#define RFB_QEMU_AUDIO            1

enum rfbmsg_kind {
    RFBMSG_MSG = 1,
    RFBMSG_HEAD,
    RFBMSG_RECT,
    RFBMSG_DATA,
    RFBMSG_CUT,
};

/* One span, filled by rfbmsg_s2c / rfbmsg_c2s (zeroed first). */
struct rfbmsg {
    uint8_t type;        /* wire type byte of the message the span belongs to */
    uint8_t kind;        /* enum rfbmsg_kind */
    bool end;            /* this span completes the message */
    uint8_t sub;         /* QEMU (255) submessage */
    uint64_t len;        /* MSG/HEAD: total length of the message, head included,
                            when known (a FramebufferUpdate's is not: 0) */
    /* RFBMSG_RECT */
    uint16_t x, y, w, h;
    int32_t enc;
    uint16_t nrects;     /* FramebufferUpdate HEAD: rectangle count from the wire */
    /* cut text HEAD (ServerCutText 3 / ClientCutText 6) */
    bool cut_ext;        /* negative length: extended clipboard payload */
    bool cut_over;       /* cut_len > st->cut_max: the caller must not forward it */
    uint32_t cut_len;    /* body length: |S32| */
};

/* Pixel format as QEMU 7.2 applies it (set_pixel_format()): true-colour 0
 * forces 8 bpp BGR233; a max of 0 counts as 255; only 8/16/32 bpp. */
struct rfbmsg_pf {
    uint8_t bpp, depth, big_endian, true_colour;
    uint16_t rmax, gmax, bmax;
    uint8_t rshift, gshift, bshift;
};

/* Per-direction parser position (private). */
struct rfbmsg_dir {
    uint8_t state;
    uint8_t type;        /* message in progress */
    uint8_t skip_kind;   /* RFBMSG_DATA or RFBMSG_CUT */
    uint8_t after;       /* what follows the current skip */
    bool failed;
    uint64_t skip;       /* bytes left in the current DATA/CUT run */
    uint32_t rects_left;
    uint16_t rx, ry, rw, rh;
    int32_t renc;
    uint32_t tile, tiles;   /* Hextile: next tile, tile count */
};

struct rfbmsg_state {
    /* ---- readable by the caller ---- */
    struct rfbmsg_pf pf;        /* format the server->client stream is parsed with */
    uint8_t bypp;               /* bytes per pixel (pf.bpp / 8) */
    uint8_t tpixel;             /* Tight pixel size: 3 by QEMU's rule, else bypp */
    uint16_t fb_w, fb_h;        /* from ServerInit, DesktopSize, ExtendedDesktopSize */
    uint32_t cut_max;           /* cut text longer than this is reported cut_over
                                   (default RFBMSG_CUT_MAX_QEMU; set it freely) */
    char why[160];              /* reason for the last RFB_BAD */
    /* ---- private ---- */
    struct rfbmsg_pf pf_next;   /* forwarded SetPixelFormat, in force after the update in progress */
    bool pf_pending;
    bool cu_confirmed;          /* the server sent EndOfContinuousUpdates */
    bool fence_confirmed;       /* the server sent a Fence */
    uint32_t enc_req;           /* known encodings in the viewer's last SetEncodings */
    uint32_t enc_req_ever;
    uint32_t enc_fwd;           /* ... in the last SetEncodings forwarded to the server */
    uint32_t enc_fwd_ever;
    uint32_t enc_pending;       /* viewer's set, forwarded unchanged unless filtered */
    bool enc_pending_set;       /* ... before the next rfbmsg_s2c/c2s call */
    struct rfbmsg_dir s2c, c2s;
};

/* Decode a 16-byte PIXEL_FORMAT, normalised as QEMU does.  Returns 0, or -1
 * if bits-per-pixel is not 8, 16 or 32 (with true-colour set). */
int rfbmsg_pf_parse(const uint8_t p[static 16], struct rfbmsg_pf *pf);

/* Start a session from ServerInit's width, height and pixel format.
 * Returns 0, or RFB_BAD (reason in st->why). */
int rfbmsg_init(struct rfbmsg_state *st, uint16_t fb_w, uint16_t fb_h,
                const uint8_t pf[static 16]);
/* Delimit ServerInit (U16 w, U16 h, PIXEL_FORMAT, U32 name length, name)
 * and start the session from it: RFB_NEED, RFB_BAD, or its length (the
 * caller forwards it).  Names over RFBMSG_NAME_MAX are refused. */
int rfbmsg_server_init(struct rfbmsg_state *st, const uint8_t *p, size_t n);

/* The framers; see the top of this file. */
int rfbmsg_s2c(struct rfbmsg_state *st, const uint8_t *p, size_t n, struct rfbmsg *out);
int rfbmsg_c2s(struct rfbmsg_state *st, const uint8_t *p, size_t n, struct rfbmsg *out);

/* Options for rfbmsg_filter_encodings. */
#define RFBMSG_F_ADD_EXT_CLIPBOARD 0x01u  /* ask the server for it even if the viewer did not
                                             (to translate for a legacy-cut-text viewer) */
#define RFBMSG_F_NO_EXT_CLIPBOARD  0x02u  /* strip it even if the viewer asked */
#define RFBMSG_F_NO_AUDIO          0x04u  /* strip QEMU audio -259 (kept by default) */
#define RFBMSG_F_KEEP_XVP          0x08u  /* forward -309 (default: strip; the gateway
                                             answers xvp itself) */

/* Rewrite a SetEncodings message msg (n bytes, as returned whole by
 * rfbmsg_c2s) into out (cap >= n + 4 is always enough), keeping in order,
 * without duplicates, only what the framer can delimit:
 *   data:   Raw 0, CopyRect 1, Hextile 5, Zlib 6, Tight 7, ZRLE 16,
 *           ZYWRLE 17, TightPNG -260;
 *   pseudo: DesktopSize -223, LastRect -224, PointerPos -232, Cursor -239
 *           (dropped when AlphaCursor -314 is also listed: QEMU prefers -314
 *           and -239's size depends on the pixel format), XCursor -240,
 *           QEMU pointer -257, QEMU ext key -258, QEMU audio -259,
 *           LED state -261, ExtendedDesktopSize -308, AlphaCursor -314,
 *           Extended Clipboard 0xC0A1E5CE, JPEG quality -32..-23,
 *           compress level -256..-247; xvp -309 only with KEEP_XVP.
 * Everything else is stripped (WMVi, ExtendedMouseButtons, gii, Fence,
 * ContinuousUpdates, DesktopName, VMware, TightWithoutZlib, RRE, CoRRE,
 * TRLE, ZlibHex, JPEG 21, H.264, fine quality/subsampling, unknown).
 * Records the result as the set the server was sent.  Call it right after
 * rfbmsg_c2s returned the SetEncodings, before the next rfbmsg_s2c/c2s call;
 * a SetEncodings that is not filtered by then counts as forwarded unchanged.
 * Returns the new length, or -1 if msg is not a SetEncodings or out is too
 * small. */
int rfbmsg_filter_encodings(struct rfbmsg_state *st, const uint8_t *msg, size_t n,
                            unsigned flags, uint8_t *out, size_t cap);

/* Whether enc (a known encoding) was in the viewer's last SetEncodings /
 * in the last SetEncodings forwarded to the server.  For the clipboard:
 * rfbmsg_viewer_has(st, RFB_ENC_EXT_CLIPBOARD) says whether the viewer
 * speaks Extended Clipboard itself. */
bool rfbmsg_viewer_has(const struct rfbmsg_state *st, int32_t enc);
bool rfbmsg_server_has(const struct rfbmsg_state *st, int32_t enc);

/* The gateway itself confirmed ContinuousUpdates (cu) and/or Fence (fence)
 * to the viewer (it sent EndOfContinuousUpdates / a ServerFence of its own):
 * from now on the viewer's EnableContinuousUpdates / ClientFence are valid
 * messages.  The caller answers them itself and never forwards them to a
 * server that did not announce them (QEMU closes on both). */
void rfbmsg_confirm(struct rfbmsg_state *st, bool cu, bool fence);

/* Whether a FramebufferUpdate is in progress server->client. */
bool rfbmsg_in_update(const struct rfbmsg_state *st);
/* Whether the direction is between messages: every span returned so far
 * completed its message.  Only then may the gateway insert a message of its
 * own into that direction (a translated ServerCutText or an xvp reply to
 * the viewer; a clipboard caps/request/provide to the server). */
bool rfbmsg_s2c_idle(const struct rfbmsg_state *st);
bool rfbmsg_c2s_idle(const struct rfbmsg_state *st);

#endif
