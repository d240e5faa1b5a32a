/* Unit tests for proxy/rfbfilter.c: the policed relay, driven with
 * synthesized streams (no sockets): what is approved in place, what is held
 * and injected, what is dropped, for each clipboard policy and for legacy
 * and Extended Clipboard viewers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <stdio.h>
#include <unistd.h>
#include <zlib.h>

#include "common/buf.h"
#include "common/config.h"
#include "proxy/clip.h"
#include "proxy/rfbfilter.h"
#include "proxy/rfbmsg.h"

struct rig {
    struct cfg_vm vm;
    struct rfbfilter *f;
    struct buf b2f, f2b, to_viewer, to_vm;
    size_t b2f_ok, f2b_ok;
    char why[256];
};

/* The filter's events, logged as a connection would (the tests read the log). */
static void test_clip(void *ctx, const struct clip_event *ev)
{
    (void)ctx;
    char line[512];
    log_msg(LOG_LVL_INFO, "test: %s", clip_event_format(ev, line, sizeof line));
}

static void test_note(void *ctx, enum log_level lvl, const char *msg)
{
    (void)ctx;
    log_msg(lvl, "test: %s", msg);
}

static void rig_init(struct rig *r, enum cfg_clip pol, uint64_t max)
{
    memset(r, 0, sizeof *r);
    snprintf(r->vm.name, sizeof r->vm.name, "t");
    r->vm.clipboard = pol;
    r->vm.clipboard_max = max;
    static const struct rfbfilter_hooks hooks = { test_clip, test_note, NULL, NULL };
    r->f = rfbfilter_new(&r->vm, &hooks);
    assert_non_null(r->f);
    buf_init(&r->b2f, 256 * 1024);
    buf_init(&r->f2b, 64 * 1024);
    buf_init(&r->to_viewer, RFBFILTER_INJECT_CAP);
    buf_init(&r->to_vm, RFBFILTER_INJECT_CAP);
}

static void rig_free(struct rig *r)
{
    rfbfilter_free(r->f);
    buf_free(&r->b2f);
    buf_free(&r->f2b);
    buf_free(&r->to_viewer);
    buf_free(&r->to_vm);
}

/* Append bytes from the VM / the viewer and run the filter. */
static void from_vm(struct rig *r, const void *p, size_t n)
{
    assert_int_equal(buf_put(&r->b2f, p, n), 0);
    assert_int_equal(rfbfilter_s2c(r->f, &r->b2f, &r->b2f_ok, &r->to_viewer, &r->to_vm,
                                   r->why, sizeof r->why), 0);
}

static void from_viewer(struct rig *r, const void *p, size_t n)
{
    assert_int_equal(buf_put(&r->f2b, p, n), 0);
    assert_int_equal(rfbfilter_c2s(r->f, &r->f2b, &r->f2b_ok, &r->to_viewer, &r->to_vm,
                                   r->why, sizeof r->why), 0);
}

/* Pretend everything approved/injected was sent. */
static void drain(struct rig *r)
{
    buf_consume(&r->b2f, r->b2f_ok);
    r->b2f_ok = 0;
    buf_consume(&r->f2b, r->f2b_ok);
    r->f2b_ok = 0;
    buf_consume(&r->to_viewer, buf_len(&r->to_viewer));
    buf_consume(&r->to_vm, buf_len(&r->to_vm));
}

static void server_init(struct rig *r)
{
    static const uint8_t si[] = {
        0x02, 0xd0, 0x01, 0x90,                     /* 720 x 400 */
        32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0,
        0, 0, 0, 4, 'q', 'e', 'm', 'u',
    };
    from_vm(r, si, sizeof si);
    assert_int_equal(r->b2f_ok, sizeof si);
    drain(r);
}

static void set_encodings(struct rig *r, bool ext)
{
    uint8_t m[4 + 3 * 4] = { 2, 0, 0, ext ? 3 : 2 };
    rfb_put_u32(m + 4, 7);                                /* Tight */
    rfb_put_u32(m + 8, 0);                                /* Raw */
    rfb_put_u32(m + 12, (uint32_t)RFB_ENC_EXT_CLIPBOARD);
    from_viewer(r, m, ext ? sizeof m : sizeof m - 4);
}

/* A session past ServerInit and the viewer's SetEncodings (with or without
 * Extended Clipboard), everything so far sent. */
static void rig_start(struct rig *r, enum cfg_clip pol, uint64_t max, bool ext)
{
    rig_init(r, pol, max);
    server_init(r);
    set_encodings(r, ext);
    drain(r);
}

/* QEMU 7.2's Extended Clipboard caps, from the VM. */
static void vm_caps(struct rig *r)
{
    uint8_t caps[32];
    size_t n = clip_build_caps(3, CLIP_ACT_REQUEST | CLIP_ACT_NOTIFY | CLIP_ACT_PROVIDE, 0,
                               caps, sizeof caps);
    from_vm(r, caps, n);
}

static bool has_encoding(const uint8_t *msg, size_t n, int32_t enc)
{
    size_t cnt = (size_t)msg[2] << 8 | msg[3];
    for (size_t i = 0; i < cnt && 8 + 4 * i <= n; i++)
        if (rfb_get_u32(msg + 4 + 4 * i) == (uint32_t)enc)
            return true;
    return false;
}

static size_t provide_msg(uint8_t type, const char *text, uint8_t **out)
{
    size_t cap = clip_provide_bound(strlen(text));
    *out = malloc(cap);
    size_t n = clip_build_provide(type, (const uint8_t *)text, strlen(text), *out, cap);
    assert_true(n > 0);
    return n;
}

static void test_pixels_pass_in_place(void **state)
{
    (void)state;
    struct rig r;
    rig_start(&r, CFG_CLIP_BOTH, 1024, true);
    /* FramebufferUpdate, one 2x2 Raw rect of 32-bit pixels */
    uint8_t fu[4 + 12 + 16] = { 0, 0, 0, 1, 0, 0, 0, 0, 0, 2, 0, 2, 0, 0, 0, 0 };
    memset(fu + 16, 0xab, 16);
    from_vm(&r, fu, 10);                 /* split mid-rect header */
    size_t first = r.b2f_ok;
    from_vm(&r, fu + 10, sizeof fu - 10);
    assert_int_equal(first, 4);          /* the update's head; the rect waits */
    assert_int_equal(r.b2f_ok, sizeof fu);
    assert_memory_equal(buf_head(&r.b2f), fu, sizeof fu);   /* untouched, in place */
    assert_true(buf_empty(&r.to_viewer));
    rig_free(&r);
}

static void test_legacy_viewer_gets_translation(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r, CFG_CLIP_BOTH, 1024);
    server_init(&r);
    set_encodings(&r, false);
    /* the SetEncodings forwarded to the VM now asks for Extended Clipboard */
    assert_true(has_encoding(buf_head(&r.f2b), r.f2b_ok, RFB_ENC_EXT_CLIPBOARD));
    drain(&r);
    /* QEMU's caps: swallowed, never shown to a legacy viewer */
    vm_caps(&r);
    assert_int_equal(r.b2f_ok, 0);
    assert_true(buf_empty(&r.to_viewer));
    assert_true(buf_empty(&r.b2f));
    /* notify: the gateway requests the text on the viewer's behalf */
    uint8_t notify[16];
    size_t n = clip_build_flags(3, CLIP_ACT_NOTIFY | CLIP_FMT_TEXT, notify, sizeof notify);
    from_vm(&r, notify, n);
    assert_true(buf_empty(&r.to_viewer));
    assert_int_equal(buf_len(&r.to_vm), 12);
    assert_int_equal(buf_head(&r.to_vm)[0], 6);
    assert_int_equal(rfb_get_u32(buf_head(&r.to_vm) + 8), CLIP_ACT_REQUEST | CLIP_FMT_TEXT);
    drain(&r);
    /* provide: translated to legacy Latin-1 ServerCutText */
    uint8_t *prov;
    n = provide_msg(3, "h\xc3\xa9llo \xe2\x98\x83", &prov);
    from_vm(&r, prov, n);
    free(prov);
    const uint8_t *m = buf_head(&r.to_viewer);
    assert_int_equal(m[0], 3);
    assert_int_equal(rfb_get_u32(m + 4), 7);
    assert_memory_equal(m + 8, "h\xe9llo ?", 7);
    rig_free(&r);
}

/* The provide a peer gets carries the checked text, rebuilt (here equal to
 * the original, which was built the same way). */
static void test_ext_viewer_gets_text(void **state)
{
    (void)state;
    struct rig r;
    rig_start(&r, CFG_CLIP_BOTH, 1024, true);
    uint8_t *prov;
    size_t n = provide_msg(3, "snow \xe2\x98\x83", &prov);
    from_vm(&r, prov, n);
    assert_int_equal(buf_len(&r.to_viewer), n);
    assert_memory_equal(buf_head(&r.to_viewer), prov, n);
    free(prov);
    /* and a viewer's provide reaches the VM unchanged */
    n = provide_msg(6, "from viewer", &prov);
    from_viewer(&r, prov, n);
    assert_int_equal(buf_len(&r.to_vm), n);
    assert_memory_equal(buf_head(&r.to_vm), prov, n);
    free(prov);
    rig_free(&r);
}

static void test_policies(void **state)
{
    (void)state;
    static const enum cfg_clip pols[] = { CFG_CLIP_BOTH, CFG_CLIP_TO_VM, CFG_CLIP_FROM_VM,
                                          CFG_CLIP_NONE };
    for (size_t i = 0; i < 4; i++) {
        struct rig r;
        rig_start(&r, pols[i], 1024, true);
        uint8_t *prov;
        size_t n = provide_msg(3, "guest text", &prov);
        from_vm(&r, prov, n);
        free(prov);
        bool from_ok = pols[i] == CFG_CLIP_BOTH || pols[i] == CFG_CLIP_FROM_VM;
        assert_int_equal(!buf_empty(&r.to_viewer), from_ok);
        drain(&r);
        n = provide_msg(6, "viewer text", &prov);
        from_viewer(&r, prov, n);
        free(prov);
        bool to_ok = pols[i] == CFG_CLIP_BOTH || pols[i] == CFG_CLIP_TO_VM;
        assert_int_equal(!buf_empty(&r.to_vm), to_ok);
        drain(&r);
        /* legacy ClientCutText obeys the same rule */
        uint8_t legacy[8 + 3] = { 6, 0, 0, 0, 0, 0, 0, 3, 'a', 'b', 'c' };
        from_viewer(&r, legacy, sizeof legacy);
        assert_int_equal(!buf_empty(&r.to_vm), to_ok);
        /* the stream after a dropped message still flows */
        drain(&r);
        uint8_t key[8] = { 4, 1, 0, 0, 0, 0, 0, 0x61 };
        from_viewer(&r, key, sizeof key);
        assert_int_equal(r.f2b_ok, sizeof key);
        rig_free(&r);
    }
}

static void test_oversize_dropped(void **state)
{
    (void)state;
    struct rig r;
    rig_start(&r, CFG_CLIP_BOTH, 16, true);
    uint8_t *prov;
    size_t n = provide_msg(3, "this text is longer than sixteen bytes", &prov);
    from_vm(&r, prov, n);
    free(prov);
    assert_true(buf_empty(&r.to_viewer));
    /* legacy over the limit from the viewer: dropped, never collected */
    uint8_t big[8 + 100] = { 6, 0, 0, 0, 0, 0, 0, 100 };
    memset(big + 8, 'x', 100);
    from_viewer(&r, big, sizeof big);
    assert_true(buf_empty(&r.to_vm));
    assert_true(buf_empty(&r.f2b));
    /* a small one afterwards passes */
    n = provide_msg(3, "short", &prov);
    from_vm(&r, prov, n);
    free(prov);
    assert_false(buf_empty(&r.to_viewer));
    rig_free(&r);
}

static void test_legacy_viewer_to_ext_server(void **state)
{
    (void)state;
    struct rig r;
    rig_start(&r, CFG_CLIP_BOTH, 1024, false);
    vm_caps(&r);
    /* legacy Latin-1 from the viewer becomes a notify ... */
    uint8_t legacy[8 + 6] = { 6, 0, 0, 0, 0, 0, 0, 6, 'c', 'a', 'f', 0xe9, '\n', 'x' };
    from_viewer(&r, legacy, sizeof legacy);
    assert_int_equal(buf_len(&r.to_vm), 12);
    assert_int_equal(rfb_get_u32(buf_head(&r.to_vm) + 8), CLIP_ACT_NOTIFY | CLIP_FMT_TEXT);
    drain(&r);
    /* ... and the VM's request is answered with a UTF-8 provide */
    uint8_t req[16];
    size_t n = clip_build_flags(3, CLIP_ACT_REQUEST | CLIP_FMT_TEXT, req, sizeof req);
    from_vm(&r, req, n);
    assert_true(buf_empty(&r.to_viewer));
    assert_false(buf_empty(&r.to_vm));
    const uint8_t *m = buf_head(&r.to_vm);
    size_t ml = buf_len(&r.to_vm);
    assert_int_equal(m[0], 6);
    struct clip_msg cm;
    char why[128];
    assert_int_equal(clip_parse(m + 8, ml - 8, &cm, why, sizeof why), CLIP_OK);
    assert_int_equal(cm.action, CLIP_PROVIDE);
    struct clip_inflater zi;
    clip_inflater_init(&zi);
    uint8_t text[64];
    size_t tl;
    assert_int_equal(clip_provide_text(&zi, &cm, sizeof text, text, &tl, why, sizeof why),
                     CLIP_OK);
    clip_inflater_free(&zi);
    assert_int_equal(tl, 8);
    assert_memory_equal(text, "caf\xc3\xa9\r\nx", 8);
    rig_free(&r);
}

/* Latin-1 that fits the limit but not once it is UTF-8 must not reach an
 * Extended Clipboard VM (found by t52). */
static void test_limit_applies_after_utf8(void **state)
{
    (void)state;
    struct rig r;
    rig_start(&r, CFG_CLIP_BOTH, 8, false);
    vm_caps(&r);
    uint8_t legacy[8 + 6] = { 6, 0, 0, 0, 0, 0, 0, 6, 0xe9, 0xe9, 0xe9, 0xe9, 0xe9, 0xe9 };
    from_viewer(&r, legacy, sizeof legacy);      /* 6 bytes Latin-1, 12 bytes UTF-8 */
    assert_true(buf_empty(&r.to_vm));
    uint8_t ok[8 + 4] = { 6, 0, 0, 0, 0, 0, 0, 4, 0xe9, 0xe9, 'a', 'b' };   /* 6 bytes UTF-8 */
    from_viewer(&r, ok, sizeof ok);
    assert_false(buf_empty(&r.to_vm));
    rig_free(&r);
}

static void test_unparseable_server_closes(void **state)
{
    (void)state;
    struct rig r;
    rig_start(&r, CFG_CLIP_BOTH, 1024, true);
    uint8_t bad[4] = { 77, 0, 0, 0 };    /* no such server message */
    assert_int_equal(buf_put(&r.b2f, bad, sizeof bad), 0);
    assert_int_equal(rfbfilter_s2c(r.f, &r.b2f, &r.b2f_ok, &r.to_viewer, &r.to_vm, r.why,
                                   sizeof r.why), -1);
    assert_non_null(strstr(r.why, "cannot follow"));
    assert_int_equal(r.b2f_ok, 0);      /* nothing of it was approved */
    rig_free(&r);
}

/* A viewer -> VM buffer filled to the brim is still parsed: nothing waits
 * for room that only a longer SetEncodings needs. */
static void test_full_buffer_flows(void **state)
{
    (void)state;
    static const uint8_t key[8] = { 4, 1, 0, 0, 0, 0, 0, 0x61 };
    static const uint8_t ptr[6] = { 5, 0, 0, 10, 0, 20 };
    struct rig r;
    rig_start(&r, CFG_CLIP_BOTH, 1024, true);
    while (buf_room(&r.f2b) > 0)
        assert_int_equal(buf_put(&r.f2b, key, sizeof key), 0);
    assert_int_equal(rfbfilter_c2s(r.f, &r.f2b, &r.f2b_ok, &r.to_viewer, &r.to_vm, r.why,
                                   sizeof r.why), 0);
    assert_int_equal(r.f2b_ok, buf_len(&r.f2b));
    assert_int_equal(r.f2b_ok, 64 * 1024);
    drain(&r);
    /* a legacy viewer's SetEncodings first in a full buffer: it cannot grow
     * in place, so the rewrite is queued for the VM, and the rest follows */
    uint8_t se[4 + 2 * 4] = { 2, 0, 0, 2 };
    rfb_put_u32(se + 4, 7);
    rfb_put_u32(se + 8, 0);
    assert_int_equal(buf_put(&r.f2b, se, sizeof se), 0);
    assert_int_equal(buf_put(&r.f2b, ptr, sizeof ptr), 0);
    assert_int_equal(buf_put(&r.f2b, ptr, sizeof ptr), 0);
    while (buf_room(&r.f2b) > 0)
        assert_int_equal(buf_put(&r.f2b, key, sizeof key), 0);
    assert_int_equal(rfbfilter_c2s(r.f, &r.f2b, &r.f2b_ok, &r.to_viewer, &r.to_vm, r.why,
                                   sizeof r.why), 0);
    assert_int_equal(r.f2b_ok, 0);
    assert_int_equal(buf_len(&r.to_vm), sizeof se + 4);
    assert_true(has_encoding(buf_head(&r.to_vm), buf_len(&r.to_vm), RFB_ENC_EXT_CLIPBOARD));
    assert_int_equal(buf_len(&r.f2b), 64 * 1024 - sizeof se);
    drain(&r);
    assert_int_equal(rfbfilter_c2s(r.f, &r.f2b, &r.f2b_ok, &r.to_viewer, &r.to_vm, r.why,
                                   sizeof r.why), 0);
    assert_int_equal(r.f2b_ok, 64 * 1024 - sizeof se);
    rig_free(&r);
}

/* ---- the clipboard audit tells the truth ---- */

/* stderr (the log) into a temporary file between capture_start/_end. */
static int saved_err = -1;
static FILE *cap_file;

static void capture_start(void)
{
    fflush(stderr);
    cap_file = tmpfile();
    assert_non_null(cap_file);
    saved_err = dup(2);
    dup2(fileno(cap_file), 2);
}

/* The captured text (static, NUL-terminated); the log goes on to stderr. */
static const char *capture_end(void)
{
    static char text[8192];
    fflush(stderr);
    dup2(saved_err, 2);
    close(saved_err);
    rewind(cap_file);
    size_t n = fread(text, 1, sizeof text - 1, cap_file);
    text[n] = 0;
    fclose(cap_file);
    fputs(text, stderr);
    return text;
}

/* An Extended Clipboard provide (message type, flags) whose zlib data is
 * the records given: per record U32 size + bytes.  Caller frees. */
static size_t raw_provide(uint8_t type, uint32_t flags, const uint8_t *recs, size_t rlen,
                          uint8_t **out)
{
    uLongf zl = compressBound(rlen);
    *out = malloc(12 + zl);
    assert_int_equal(compress(*out + 12, &zl, recs, rlen), Z_OK);
    memset(*out, 0, 4);
    (*out)[0] = type;
    rfb_put_u32(*out + 4, (uint32_t)-(int32_t)(4 + zl));
    rfb_put_u32(*out + 8, flags);
    return 12 + zl;
}

/* A text record of "hello\0" followed by n more bytes, declared size 6 + n. */
static size_t hidden_record(size_t n, uint8_t **out)
{
    *out = malloc(4 + 6 + n);
    rfb_put_u32(*out, (uint32_t)(6 + n));
    memcpy(*out + 4, "hello", 6);
    memset(*out + 10, 'Z', n);
    return 4 + 6 + n;
}

/* The text of the one provide in m[0..n) (which must be just that). */
static void provide_text_is(const uint8_t *m, size_t n, uint8_t type, const char *want)
{
    assert_true(n >= 12);
    assert_int_equal(m[0], type);
    assert_int_equal(n, 8 + (size_t)-(int32_t)rfb_get_u32(m + 4));
    struct clip_msg cm;
    char why[128];
    assert_int_equal(clip_parse(m + 8, n - 8, &cm, why, sizeof why), CLIP_OK);
    assert_int_equal(cm.action, CLIP_PROVIDE);
    assert_int_equal(cm.formats, CLIP_FMT_TEXT);           /* text only */
    /* inflate all of it: exactly one record, size = text + NUL */
    uint8_t buf[256];
    uLongf bl = sizeof buf;
    assert_int_equal(uncompress(buf, &bl, cm.zdata, cm.zlen), Z_OK);
    assert_int_equal(bl, 4 + strlen(want) + 1);
    assert_int_equal(rfb_get_u32(buf), strlen(want) + 1);
    assert_memory_equal(buf + 4, want, strlen(want) + 1);
}

/* "hello\0" + 70000 bytes: the log said bytes=5 while all of it was
 * forwarded.  Now exactly the 5 counted bytes are forwarded, both ways. */
static void test_provide_hidden_after_nul(void **state)
{
    (void)state;
    uint8_t *rec, *m;
    size_t rl = hidden_record(70000, &rec);
    struct rig r;
    rig_start(&r, CFG_CLIP_BOTH, 256 * 1024, true);
    size_t n = raw_provide(6, CLIP_ACT_PROVIDE | CLIP_FMT_TEXT, rec, rl, &m);
    capture_start();
    from_viewer(&r, m, n);
    const char *log = capture_end();
    free(m);
    assert_non_null(strstr(log, "clipboard dir=to-vm bytes=5 type=utf8-text sha256="
                                "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
                                " result=allowed"));
    provide_text_is(buf_head(&r.to_vm), buf_len(&r.to_vm), 6, "hello");
    assert_int_equal(r.f2b_ok, 0);
    drain(&r);
    /* from the VM to an Extended Clipboard viewer */
    n = raw_provide(3, CLIP_ACT_PROVIDE | CLIP_FMT_TEXT, rec, rl, &m);
    capture_start();
    from_vm(&r, m, n);
    log = capture_end();
    free(m);
    assert_non_null(strstr(log, "clipboard dir=from-vm bytes=5 type=utf8-text sha256=2cf24dba"));
    provide_text_is(buf_head(&r.to_viewer), buf_len(&r.to_viewer), 3, "hello");
    rig_free(&r);
    free(rec);
}

/* A provide with text and other formats: only the text goes on. */
static void test_provide_other_formats_stripped(void **state)
{
    (void)state;
    uint8_t recs[4 + 3 + 4 + 5000], *m;
    rfb_put_u32(recs, 3);
    memcpy(recs + 4, "hi", 3);
    rfb_put_u32(recs + 7, 5000);                       /* RTF */
    memset(recs + 11, '{', 5000);
    struct rig r;
    rig_start(&r, CFG_CLIP_BOTH, 1024, true);
    size_t n = raw_provide(6, CLIP_ACT_PROVIDE | CLIP_FMT_TEXT | CLIP_FMT_RTF, recs,
                           sizeof recs, &m);
    from_viewer(&r, m, n);
    free(m);
    provide_text_is(buf_head(&r.to_vm), buf_len(&r.to_vm), 6, "hi");
    rig_free(&r);
}

/* A provide with no text format passed with bytes=0 and no size check:
 * now it is dropped, logged as such, whatever its size. */
static void test_provide_without_text_dropped(void **state)
{
    (void)state;
    static const uint32_t fmts[] = { CLIP_FMT_RTF, CLIP_FMT_HTML | CLIP_FMT_RTF, CLIP_FMT_DIB,
                                     1u << 9 };
    size_t big = 600 * 1024;                           /* well over clipboard_max */
    uint8_t *recs = malloc(8 + 2 * big), *m;
    rfb_put_u32(recs, (uint32_t)big);
    memset(recs + 4, 'R', big);
    rfb_put_u32(recs + 4 + big, (uint32_t)big);
    memset(recs + 8 + big, 'H', big);
    for (size_t i = 0; i < sizeof fmts / sizeof fmts[0]; i++) {
        struct rig r;
        /* 1.2 MB that deflates to ~1.2 KB: under the compressed bound, so
         * only the text check could stop it */
        rig_start(&r, CFG_CLIP_BOTH, 256 * 1024, true);
        size_t n = raw_provide(6, CLIP_ACT_PROVIDE | fmts[i], recs, 8 + 2 * big, &m);
        capture_start();
        from_viewer(&r, m, n);
        const char *log = capture_end();
        assert_true(buf_empty(&r.to_vm));
        assert_int_equal(r.f2b_ok, 0);
        assert_non_null(strstr(log, "result=dropped reason=\"no text in the clipboard data"));
        assert_null(strstr(log, "result=allowed"));
        free(m);
        /* and from the VM */
        n = raw_provide(3, CLIP_ACT_PROVIDE | fmts[i], recs, 8 + 2 * big, &m);
        from_vm(&r, m, n);
        free(m);
        assert_true(buf_empty(&r.to_viewer));
        assert_int_equal(r.b2f_ok, 0);
        rig_free(&r);
    }
    free(recs);
}

/* Legacy cut text: what is counted (up to a NUL) is what is forwarded. */
static void test_legacy_hidden_after_nul(void **state)
{
    (void)state;
    uint8_t m[8 + 6 + 500];
    memset(m, 0, 8);
    rfb_put_u32(m + 4, 6 + 500);
    memcpy(m + 8, "hello", 6);
    memset(m + 14, 'Z', 500);
    /* ServerCutText to a legacy viewer (the VM did not announce caps) */
    struct rig r;
    rig_start(&r, CFG_CLIP_BOTH, 1024, false);
    m[0] = 3;
    capture_start();
    from_vm(&r, m, sizeof m);
    const char *log = capture_end();
    assert_non_null(strstr(log, "clipboard dir=from-vm bytes=5 type=utf8-text sha256=2cf24dba"));
    assert_int_equal(buf_len(&r.to_viewer), 8 + 5);
    assert_int_equal(rfb_get_u32(buf_head(&r.to_viewer) + 4), 5);
    assert_memory_equal(buf_head(&r.to_viewer) + 8, "hello", 5);
    /* ClientCutText to a VM without Extended Clipboard */
    m[0] = 6;
    capture_start();
    from_viewer(&r, m, sizeof m);
    log = capture_end();
    assert_non_null(strstr(log, "clipboard dir=to-vm bytes=5 type=utf8-text sha256=2cf24dba"));
    assert_int_equal(buf_len(&r.to_vm), 8 + 5);
    assert_int_equal(rfb_get_u32(buf_head(&r.to_vm) + 4), 5);
    assert_memory_equal(buf_head(&r.to_vm) + 8, "hello", 5);
    rig_free(&r);
}

/* ---- the QEMU console-switch guard ---- */

#define XK_Shift_L   0xffe1u
#define XK_Control_L 0xffe3u
#define XK_Control_R 0xffe4u
#define XK_Meta_L    0xffe7u
#define XK_Alt_L     0xffe9u
#define XK_Alt_R     0xffeau
#define XK_KP_2      0xffb2u

/* What the VM was sent since the last call: the approved bytes, then the
 * injection buffer (the connection's order), into out (cap 4096). */
static size_t sent(struct rig *r, uint8_t *out)
{
    size_t n = 0;
    memcpy(out, buf_head(&r->f2b), r->f2b_ok);
    n = r->f2b_ok;
    memcpy(out + n, buf_head(&r->to_vm), buf_len(&r->to_vm));
    n += buf_len(&r->to_vm);
    drain(r);
    return n;
}

static void key_bytes(uint8_t m[8], bool down, uint32_t ks)
{
    memset(m, 0, 8);
    m[0] = 4;
    m[1] = down;
    rfb_put_u32(m + 4, ks);
}

static void ext_bytes(uint8_t m[12], bool down, uint32_t ks, uint32_t sc)
{
    memset(m, 0, 12);
    m[0] = 255;
    m[3] = down;
    rfb_put_u32(m + 4, ks);
    rfb_put_u32(m + 8, sc);
}

/* Feed one message byte by byte; return what the VM got for it. */
static size_t feed(struct rig *r, const uint8_t *m, size_t n, uint8_t *out)
{
    for (size_t i = 0; i < n; i++)
        from_viewer(r, m + i, 1);
    return sent(r, out);
}

static size_t key(struct rig *r, bool down, uint32_t ks, uint8_t *out)
{
    uint8_t m[8];
    key_bytes(m, down, ks);
    return feed(r, m, sizeof m, out);
}

static size_t ext(struct rig *r, bool down, uint32_t ks, uint32_t sc, uint8_t *out)
{
    uint8_t m[12];
    ext_bytes(m, down, ks, sc);
    return feed(r, m, sizeof m, out);
}

/* A modifier or other non-digit key: forwarded exactly as sent. */
static void key_passes(struct rig *r, bool down, uint32_t ks)
{
    uint8_t m[8], out[4096];
    key_bytes(m, down, ks);
    assert_int_equal(key(r, down, ks, out), 8);
    assert_memory_equal(out, m, 8);
}

static void ext_passes(struct rig *r, bool down, uint32_t ks, uint32_t sc)
{
    uint8_t m[12], out[4096];
    ext_bytes(m, down, ks, sc);
    assert_int_equal(ext(r, down, ks, sc, out), 12);
    assert_memory_equal(out, m, 12);
}

/* The last n bytes forwarded are message m, and what comes before it (if
 * anything) is key-ups only. */
static void ends_with(const uint8_t *out, size_t len, const uint8_t *m, size_t n)
{
    assert_true(len >= n);
    assert_memory_equal(out + len - n, m, n);
    assert_int_equal((len - n) % 8, 0);
    for (size_t i = 0; i + n < len; i += 8) {
        assert_int_equal(out[i], 4);
        assert_int_equal(out[i + 1], 0);           /* up */
    }
}

static void digit_passes(struct rig *r, uint32_t ks)
{
    uint8_t m[8], out[4096];
    key_bytes(m, true, ks);
    size_t n = key(r, true, ks, out);
    ends_with(out, n, m, 8);
}

static void digit_blocked(struct rig *r, uint32_t ks)
{
    uint8_t out[4096];
    assert_int_equal(key(r, true, ks, out), 0);
    /* its key-up goes on: QEMU ignores the up of a key it never saw down */
    key_passes(r, false, ks);
}

static void rig_keys(struct rig *r, enum cfg_qcons q)
{
    rig_init(r, CFG_CLIP_BOTH, 1024);
    r->vm.qemu_consoles = q;
    server_init(r);
    set_encodings(r, true);
    drain(r);
}

/* Every way of pressing Ctrl+Alt+key 1..9 measured on QEMU 7.2 is dropped. */
static void test_console_switch_blocked(void **state)
{
    (void)state;
    static const char digits[] = "123456789!@#$%^&*(";
    static const uint32_t ctrls[] = { XK_Control_L, XK_Control_R, 0x0100ffe3u };
    static const uint32_t alts[] = { XK_Alt_L, XK_Meta_L, 0xabcdffe9u };
    for (size_t c = 0; c < 3; c++) {
        for (size_t a = 0; a < 3; a++) {
            struct rig r;
            rig_keys(&r, CFG_QCONS_BLOCK);
            key_passes(&r, true, ctrls[c]);
            key_passes(&r, true, alts[a]);
            for (size_t d = 0; digits[d]; d++)
                digit_blocked(&r, (uint8_t)digits[d]);
            digit_blocked(&r, 0x01000032u);        /* QEMU cuts keysyms to 16 bits */
            digit_blocked(&r, 0x12340040u);        /* ... '@' */
            /* Shift held, as a viewer sends '@' */
            key_passes(&r, true, XK_Shift_L);
            digit_blocked(&r, '@');
            key_passes(&r, false, XK_Shift_L);
            /* extended key events, by scancode (keysym 0) and by keysym */
            uint8_t out[4096];
            assert_int_equal(ext(&r, true, 0, 0x03, out), 0);
            ext_passes(&r, false, 0, 0x03);
            assert_int_equal(ext(&r, true, 0, 0x10003, out), 0);   /* cut to 16 bits */
            assert_int_equal(ext(&r, true, '5', 0, out), 0);       /* QEMU with -k */
            key_passes(&r, false, alts[a]);
            digit_passes(&r, '2');                  /* Alt released: Ctrl+2 */
            key_passes(&r, false, ctrls[c]);
            rig_free(&r);
        }
    }
}

/* Modifiers from extended key events, by scancode or by keysym, count. */
static void test_console_switch_ext_modifiers(void **state)
{
    (void)state;
    uint8_t out[4096];
    struct rig r;
    /* scancodes only: Ctrl 0x1d / Ctrl_R 0x9d, Alt 0x38 */
    static const uint32_t ctrl_sc[] = { 0x1d, 0x9d };
    for (size_t i = 0; i < 2; i++) {
        rig_keys(&r, CFG_QCONS_BLOCK);
        ext_passes(&r, true, 0, ctrl_sc[i]);
        ext_passes(&r, true, 0, 0x38);
        assert_int_equal(ext(&r, true, 0, 0x03, out), 0);
        digit_blocked(&r, '2');                     /* and a plain KeyEvent after them */
        assert_int_equal(ext(&r, true, 0, 0x0a, out), 0);
        ext_passes(&r, false, 0, 0x38);
        ext_passes(&r, false, 0, ctrl_sc[i]);
        rig_free(&r);
    }
    /* keysyms with scancode 0 (QEMU with -k reads the keysym) */
    rig_keys(&r, CFG_QCONS_BLOCK);
    ext_passes(&r, true, XK_Control_L, 0);
    ext_passes(&r, true, XK_Meta_L, 0);
    assert_int_equal(ext(&r, true, '@', 0, out), 0);
    assert_int_equal(ext(&r, true, 0, 0x03, out) > 0, true);   /* by scancode: no Ctrl+Alt */
    rig_free(&r);
    /* a key-up under the other reading does not release a modifier:
     * Ctrl down by scancode, "up" by keysym with an unrelated scancode */
    rig_keys(&r, CFG_QCONS_BLOCK);
    ext_passes(&r, true, 0, 0x1d);
    ext_passes(&r, true, 0, 0x38);
    ext_passes(&r, false, XK_Control_L, 0x1e);
    assert_int_equal(ext(&r, true, 0, 0x03, out), 0);
    rig_free(&r);
}

/* Ctrl+2, Alt+2, AltGr+2 (Ctrl+Alt_R), keypad 2 and Ctrl+Alt+letter reach
 * the VM.  A digit that passes is preceded by key-ups that break Ctrl+Alt
 * in QEMU's keyboard state, which other sessions of the VM share. */
static void test_harmless_keys_pass(void **state)
{
    (void)state;
    uint8_t m[8], out[4096];
    struct rig r;
    rig_keys(&r, CFG_QCONS_BLOCK);
    /* a digit alone: Ctrl ups first */
    key_bytes(m, true, '2');
    size_t n = key(&r, true, '2', out);
    assert_int_equal(n, 24);
    assert_int_equal(rfb_get_u32(out + 4), XK_Control_L);
    assert_int_equal(rfb_get_u32(out + 12), XK_Control_R);
    ends_with(out, n, m, 8);
    key_passes(&r, false, '2');
    /* Ctrl+2: Alt up first, the Ctrl stays down */
    key_passes(&r, true, XK_Control_L);
    n = key(&r, true, '2', out);
    assert_int_equal(n, 16);
    assert_int_equal(rfb_get_u32(out + 4), XK_Alt_L);
    ends_with(out, n, m, 8);
    key_passes(&r, false, '2');
    /* AltGr+2 with Ctrl: right Alt is not QEMU's Alt */
    key_passes(&r, true, XK_Alt_R);
    digit_passes(&r, '2');
    key_passes(&r, false, '2');
    key_passes(&r, false, XK_Alt_R);
    key_passes(&r, false, XK_Control_L);
    /* Alt+2 */
    key_passes(&r, true, XK_Alt_L);
    n = key(&r, true, '2', out);
    assert_int_equal(n, 24);
    assert_int_equal(rfb_get_u32(out + 4), XK_Control_L);
    key_passes(&r, false, '2');
    /* Ctrl+Alt with keypad 2, a letter, F2: not QEMU's keys 1..9 */
    key_passes(&r, true, XK_Control_L);
    key_passes(&r, true, XK_KP_2);
    key_passes(&r, true, 'a');
    key_passes(&r, true, 0xffbfu);
    ext_passes(&r, true, 0, 0x50);                  /* keypad 2 by scancode */
    ext_passes(&r, true, 0, 0x3c);                  /* F2 by scancode */
    rig_free(&r);
}

/* qemu_consoles = allow: everything passes unchanged. */
static void test_consoles_allow(void **state)
{
    (void)state;
    struct rig r;
    rig_keys(&r, CFG_QCONS_ALLOW);
    key_passes(&r, true, XK_Control_L);
    key_passes(&r, true, XK_Alt_L);
    key_passes(&r, true, '2');
    key_passes(&r, false, '2');
    ext_passes(&r, true, 0, 0x03);
    key_passes(&r, true, '7');
    rig_free(&r);
}

/* Key events between other messages in one read: only the switch goes. */
static void test_console_switch_in_stream(void **state)
{
    (void)state;
    struct rig r;
    rig_keys(&r, CFG_QCONS_BLOCK);
    uint8_t in[8 * 5 + 6], exp[8 * 4 + 6], out[4096];
    static const uint8_t ptr[6] = { 5, 0, 0, 10, 0, 20 };
    key_bytes(in, true, XK_Control_L);
    key_bytes(in + 8, true, XK_Alt_L);
    key_bytes(in + 16, true, '2');
    key_bytes(in + 24, false, '2');
    memcpy(in + 32, ptr, 6);
    key_bytes(in + 38, false, XK_Alt_L);
    memcpy(exp, in, 16);
    memcpy(exp + 16, in + 24, 8 + 6 + 8);
    from_viewer(&r, in, sizeof in);
    assert_int_equal(sent(&r, out), sizeof exp);
    assert_memory_equal(out, exp, sizeof exp);
    rig_free(&r);
}

/* A digit at the end of a full viewer -> VM buffer: no room for its
 * key-ups in place, so they and the digit go to to_vm, after the rest. */
static void test_console_guard_full_buffer(void **state)
{
    (void)state;
    struct rig r;
    rig_keys(&r, CFG_QCONS_BLOCK);
    uint8_t a[8], two[8];
    key_bytes(a, true, 'a');
    key_bytes(two, true, '2');
    while (buf_room(&r.f2b) > 8)
        assert_int_equal(buf_put(&r.f2b, a, 8), 0);
    assert_int_equal(buf_put(&r.f2b, two, 8), 0);
    assert_true(buf_full(&r.f2b));
    assert_int_equal(rfbfilter_c2s(r.f, &r.f2b, &r.f2b_ok, &r.to_viewer, &r.to_vm, r.why,
                                   sizeof r.why), 0);
    assert_int_equal(r.f2b_ok, 64 * 1024 - 8);
    assert_int_equal(buf_len(&r.to_vm), 24);
    ends_with(buf_head(&r.to_vm), 24, two, 8);
    drain(&r);
    /* and the stream goes on */
    key_passes(&r, true, 'b');
    rig_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pixels_pass_in_place),
        cmocka_unit_test(test_legacy_viewer_gets_translation),
        cmocka_unit_test(test_ext_viewer_gets_text),
        cmocka_unit_test(test_policies),
        cmocka_unit_test(test_oversize_dropped),
        cmocka_unit_test(test_legacy_viewer_to_ext_server),
        cmocka_unit_test(test_limit_applies_after_utf8),
        cmocka_unit_test(test_unparseable_server_closes),
        cmocka_unit_test(test_full_buffer_flows),
        cmocka_unit_test(test_provide_hidden_after_nul),
        cmocka_unit_test(test_provide_other_formats_stripped),
        cmocka_unit_test(test_provide_without_text_dropped),
        cmocka_unit_test(test_legacy_hidden_after_nul),
        cmocka_unit_test(test_console_switch_blocked),
        cmocka_unit_test(test_console_switch_ext_modifiers),
        cmocka_unit_test(test_harmless_keys_pass),
        cmocka_unit_test(test_consoles_allow),
        cmocka_unit_test(test_console_switch_in_stream),
        cmocka_unit_test(test_console_guard_full_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
