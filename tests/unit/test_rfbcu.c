/* Unit tests for the continuous updates / fence / flow control part of
 * proxy/rfbfilter.c: vmgate plays the server side of ContinuousUpdates and
 * Fence for QEMU, which has neither.  Streams are fed byte by byte where the
 * order matters, and every assertion looks at what would go on the wire:
 * the approved bytes and the injection buffers of both directions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <stdio.h>

#include "common/buf.h"
#include "common/config.h"
#include "proxy/rfbfilter.h"
#include "proxy/rfbmsg.h"

struct rig {
    struct cfg_vm vm;
    struct rfbfilter *f;
    struct buf b2f, f2b, to_viewer, to_vm;
    size_t b2f_ok, f2b_ok;
    struct rfbfilter_link link;
    char why[256];
    char notes[1024];
};

static void rig_note(void *ctx, enum log_level lvl, const char *msg)
{
    struct rig *r = ctx;
    (void)lvl;
    size_t l = strlen(r->notes);
    snprintf(r->notes + l, sizeof r->notes - l, "%s\n", msg);
}

static int run_s2c(struct rig *r)
{
    rfbfilter_link(r->f, &r->link);
    return rfbfilter_s2c(r->f, &r->b2f, &r->b2f_ok, &r->to_viewer, &r->to_vm, r->why,
                         sizeof r->why);
}

static int run_c2s(struct rig *r)
{
    rfbfilter_link(r->f, &r->link);
    return rfbfilter_c2s(r->f, &r->f2b, &r->f2b_ok, &r->to_viewer, &r->to_vm, r->why,
                         sizeof r->why);
}

/* Bytes from the VM / the viewer, one at a time, each followed by a relay
 * round of both filters (as the connection runs them). */
static void from_vm(struct rig *r, const void *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(buf_put(&r->b2f, (const uint8_t *)p + i, 1), 0);
        assert_int_equal(run_c2s(r), 0);
        assert_int_equal(run_s2c(r), 0);
    }
}

static void from_viewer(struct rig *r, const void *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(buf_put(&r->f2b, (const uint8_t *)p + i, 1), 0);
        assert_int_equal(run_c2s(r), 0);
        assert_int_equal(run_s2c(r), 0);
    }
}

static void round_trip(struct rig *r)
{
    assert_int_equal(run_c2s(r), 0);
    assert_int_equal(run_s2c(r), 0);
}

/* What the viewer / the VM would get now, in wire order (approved bytes,
 * then the injections), appended to out; then it counts as sent. */
static size_t take(struct buf *stream, size_t *ok, struct buf *inj, uint8_t *out, size_t cap)
{
    size_t n = 0;
    assert_true(*ok + buf_len(inj) <= cap);
    memcpy(out, buf_head(stream), *ok);
    n += *ok;
    buf_consume(stream, *ok);
    *ok = 0;
    memcpy(out + n, buf_head(inj), buf_len(inj));
    n += buf_len(inj);
    buf_consume(inj, buf_len(inj));
    return n;
}

static size_t to_viewer(struct rig *r, uint8_t *out, size_t cap)
{
    return take(&r->b2f, &r->b2f_ok, &r->to_viewer, out, cap);
}

static size_t to_vm(struct rig *r, uint8_t *out, size_t cap)
{
    return take(&r->f2b, &r->f2b_ok, &r->to_vm, out, cap);
}

static void rig_init(struct rig *r, enum cfg_cu mode)
{
    memset(r, 0, sizeof *r);
    snprintf(r->vm.name, sizeof r->vm.name, "t");
    r->vm.clipboard = CFG_CLIP_NONE;    /* no Extended Clipboard added to SetEncodings */
    r->vm.clipboard_max = 1024;
    r->vm.continuous_updates = mode;
    const struct rfbfilter_hooks hooks = { NULL, rig_note, r, NULL };
    r->f = rfbfilter_new(&r->vm, &hooks);
    assert_non_null(r->f);
    buf_init(&r->b2f, 256 * 1024);
    buf_init(&r->f2b, 64 * 1024);
    buf_init(&r->to_viewer, RFBFILTER_INJECT_CAP);
    buf_init(&r->to_vm, RFBFILTER_INJECT_CAP);
    r->link.now = 1000.0;
    static const uint8_t si[] = {
        0x02, 0xd0, 0x01, 0x90,                     /* 720 x 400, 32 bpp */
        32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0,
        0, 0, 0, 4, 'q', 'e', 'm', 'u',
    };
    assert_int_equal(buf_put(&r->b2f, si, sizeof si), 0);
    round_trip(r);
    uint8_t out[64];
    assert_int_equal(to_viewer(r, out, sizeof out), sizeof si);
}

static void rig_free(struct rig *r)
{
    rfbfilter_free(r->f);
    buf_free(&r->b2f);
    buf_free(&r->f2b);
    buf_free(&r->to_viewer);
    buf_free(&r->to_vm);
}

/* The viewer's SetEncodings: Raw, and -313 / -312 as asked. */
static void set_encodings(struct rig *r, bool cu, bool fence)
{
    uint8_t m[4 + 4 * 3] = { 2, 0, 0, 1 };
    size_t n = 8;
    rfb_put_u32(m + 4, 0);
    if (cu) {
        rfb_put_u32(m + n, (uint32_t)RFB_ENC_CONT_UPDATES);
        n += 4;
    }
    if (fence) {
        rfb_put_u32(m + n, (uint32_t)RFB_ENC_FENCE);
        n += 4;
    }
    m[3] = (uint8_t)((n - 4) / 4);
    from_viewer(r, m, n);
}

static const uint8_t END_CU = 150;

/* A session whose viewer asked for both, the offer taken off the wire. */
static void rig_cu(struct rig *r, bool fence)
{
    rig_init(r, CFG_CU_AUTO);
    set_encodings(r, true, fence);
    uint8_t vm[64], v[64];
    size_t n = to_vm(r, vm, sizeof vm);
    assert_int_equal(n, 8);                           /* SetEncodings [Raw] only */
    assert_int_equal(vm[3], 1);
    n = to_viewer(r, v, sizeof v);
    if (fence) {
        assert_int_equal(n, 9 + 12 + 1);              /* our fence, then EndOfCU */
        assert_int_equal(v[0], 248);
        assert_int_equal(rfb_get_u32(v + 4), 0x80000001u);
        assert_int_equal(v[8], 12);
        assert_int_equal(v[21], END_CU);
    } else {
        assert_int_equal(n, 1);
        assert_int_equal(v[0], END_CU);
    }
}

static void enable(struct rig *r, bool on, uint16_t w, uint16_t h)
{
    uint8_t m[10] = { 150, on, 0, 0, 0, 0, (uint8_t)(w >> 8), (uint8_t)w, (uint8_t)(h >> 8),
                      (uint8_t)h };
    from_viewer(r, m, sizeof m);
}

/* A FramebufferUpdate with one Raw rect of w x h at 4 bytes per pixel. */
static size_t raw_update(uint8_t *out, uint16_t w, uint16_t h, unsigned bypp)
{
    uint8_t hdr[16] = { 0, 0, 0, 1, 0, 0, 0, 0, (uint8_t)(w >> 8), (uint8_t)w,
                        (uint8_t)(h >> 8), (uint8_t)h, 0, 0, 0, 0 };
    memcpy(out, hdr, sizeof hdr);
    memset(out + 16, 0x5a, (size_t)w * h * bypp);
    return 16 + (size_t)w * h * bypp;
}

static bool is_request(const uint8_t *p, bool incremental)
{
    return p[0] == 3 && p[1] == incremental;
}

/* The offer: -313/-312 never reach QEMU, the fence and EndOfCU come in
 * that order, one mode line; a viewer without -313 gets nothing. */
static void test_offer(void **state)
{
    (void)state;
    struct rig r;
    rig_cu(&r, true);
    assert_non_null(strstr(r.notes, "continuous updates: on, by vmgate; flow control by fence"));
    rig_free(&r);

    rig_cu(&r, false);
    assert_non_null(strstr(r.notes, "flow control by the kernel's send queue"));
    rig_free(&r);

    rig_init(&r, CFG_CU_AUTO);
    set_encodings(&r, false, true);
    uint8_t v[64];
    assert_int_equal(to_viewer(&r, v, sizeof v), 9 + 12);   /* a fence only */
    assert_non_null(strstr(r.notes, "not asked for by the viewer"));
    /* EnableContinuousUpdates was never offered: the session ends */
    buf_put(&r.f2b, (const uint8_t[]){ 150, 1, 0, 0, 0, 0, 0, 1, 0, 1 }, 10);
    assert_int_equal(run_c2s(&r), -1);
    rig_free(&r);
}

/* continuous_updates = off: nothing offered, -313 still hidden from QEMU,
 * and the viewer may not use what it was not offered. */
static void test_off(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r, CFG_CU_OFF);
    set_encodings(&r, true, true);
    uint8_t vm[64], v[64];
    assert_int_equal(to_vm(&r, vm, sizeof vm), 8);
    assert_int_equal(to_viewer(&r, v, sizeof v), 0);
    assert_non_null(strstr(r.notes, "continuous updates: off (continuous_updates = off)"));
    buf_put(&r.f2b, (const uint8_t[]){ 248, 0, 0, 0, 0x80, 0, 0, 0, 0 }, 9);
    assert_int_equal(run_c2s(&r), -1);
    assert_non_null(strstr(r.why, "ClientFence"));
    rig_free(&r);
}

/* Enabled: one incremental request at QEMU, re-sent as each update begins;
 * the viewer's incremental requests are dropped, its full ones pass; after
 * each update our fence follows the update's last byte. */
static void test_enable_requests(void **state)
{
    (void)state;
    struct rig r;
    rig_cu(&r, true);
    enable(&r, true, 720, 400);
    uint8_t vm[256], v[4096];
    size_t n = to_vm(&r, vm, sizeof vm);
    assert_int_equal(n, 10);
    assert_true(is_request(vm, true));
    assert_int_equal(vm[6] << 8 | vm[7], 720);
    assert_int_equal(vm[8] << 8 | vm[9], 400);
    /* the viewer's own incremental request: dropped (ours is outstanding) */
    from_viewer(&r, (const uint8_t[]){ 3, 1, 0, 0, 0, 0, 2, 0xd0, 1, 0x90 }, 10);
    assert_int_equal(to_vm(&r, vm, sizeof vm), 0);
    /* a full one passes */
    from_viewer(&r, (const uint8_t[]){ 3, 0, 0, 0, 0, 0, 2, 0xd0, 1, 0x90 }, 10);
    n = to_vm(&r, vm, sizeof vm);
    assert_int_equal(n, 10);
    assert_true(is_request(vm, false));
    /* an update: at its first byte the next request goes out */
    uint8_t u[16 + 4 * 4 * 4];
    size_t un = raw_update(u, 4, 4, 4);
    from_vm(&r, u, 4);
    n = to_vm(&r, vm, sizeof vm);
    assert_int_equal(n, 10);
    assert_true(is_request(vm, true));
    from_vm(&r, u + 4, un - 4);
    assert_int_equal(to_vm(&r, vm, sizeof vm), 0);       /* one outstanding, not two */
    n = to_viewer(&r, v, sizeof v);
    assert_int_equal(n, un + 9 + 12);
    assert_memory_equal(v, u, un);
    assert_int_equal(v[un], 248);                         /* our fence after it */
    assert_int_equal(rfb_get_u32(v + un + 4), 0x80000001u);
    rig_free(&r);
}

/* Disabling while an update is owed: the viewer's SetPixelFormat and
 * re-enable wait until the update has been forwarded; EndOfCU follows the
 * update's last byte and precedes anything in the new format; the framer
 * then reads 16-bit pixels. */
static void test_disable_pending(void **state)
{
    (void)state;
    struct rig r;
    rig_cu(&r, false);
    enable(&r, true, 720, 400);
    uint8_t vm[256], v[4096];
    assert_int_equal(to_vm(&r, vm, sizeof vm), 10);
    /* disable, SetPixelFormat 16 bpp, enable: byte by byte */
    uint8_t seq[10 + 20 + 10] = { 150, 0, 0, 0, 0, 0, 2, 0xd0, 1, 0x90,
                                  0, 0, 0, 0, 16, 16, 0, 1, 0, 31, 0, 63, 0, 31, 11, 5, 0,
                                  0, 0, 0,
                                  150, 1, 0, 0, 0, 0, 2, 0xd0, 1, 0x90 };
    from_viewer(&r, seq, sizeof seq);
    assert_int_equal(to_vm(&r, vm, sizeof vm), 0);       /* held */
    assert_int_equal(to_viewer(&r, v, sizeof v), 0);     /* no EndOfCU yet */
    /* the owed update, 32 bpp, byte by byte: nothing released before its end */
    uint8_t u[16 + 2 * 2 * 4];
    size_t un = raw_update(u, 2, 2, 4);
    from_vm(&r, u, un - 1);
    assert_int_equal(to_vm(&r, vm, sizeof vm), 0);
    size_t n = to_viewer(&r, v, sizeof v);
    assert_int_equal(n, un - 1);
    from_vm(&r, u + un - 1, 1);
    n = to_viewer(&r, v, sizeof v);
    assert_int_equal(n, 2);
    assert_int_equal(v[0], 0x5a);                         /* the update's last byte */
    assert_int_equal(v[1], END_CU);
    /* released: SetPixelFormat, then our request for the re-enabled area */
    round_trip(&r);
    n = to_vm(&r, vm, sizeof vm);
    assert_int_equal(n, 20 + 10);
    assert_int_equal(vm[0], 0);
    assert_true(is_request(vm + 20, true));
    /* the next update is 16 bpp: 2x2 Raw = 8 bytes, then a Bell */
    uint8_t u2[16 + 8 + 1];
    size_t un2 = raw_update(u2, 2, 2, 2);
    u2[un2++] = 2;
    from_vm(&r, u2, un2);
    n = to_viewer(&r, v, sizeof v);
    assert_int_equal(n, un2);                             /* no fences: -312 not asked */
    assert_int_equal(v[n - 1], 2);
    rig_free(&r);
}

/* Disabling with an update owed that never comes (an idle screen): after
 * RFBFILTER_CU_HOLD on the link clock, EndOfCU and the held messages go. */
static void test_disable_idle(void **state)
{
    (void)state;
    struct rig r;
    rig_cu(&r, false);
    enable(&r, true, 720, 400);
    uint8_t vm[256], v[64];
    assert_int_equal(to_vm(&r, vm, sizeof vm), 10);
    enable(&r, false, 0, 0);
    from_viewer(&r, (const uint8_t[]){ 4, 1, 0, 0, 0, 0, 0, 0x61 }, 8);
    assert_int_equal(to_vm(&r, vm, sizeof vm), 0);
    assert_true(rfbfilter_wake(r.f) > 0);
    r.link.now += RFBFILTER_CU_HOLD / 2;
    round_trip(&r);
    assert_int_equal(to_viewer(&r, v, sizeof v), 0);
    r.link.now += RFBFILTER_CU_HOLD;
    rfbfilter_link(r.f, &r.link);
    assert_true(rfbfilter_wake(r.f) == 0);
    round_trip(&r);
    assert_int_equal(to_viewer(&r, v, sizeof v), 1);
    assert_int_equal(v[0], END_CU);
    round_trip(&r);
    assert_int_equal(to_vm(&r, vm, sizeof vm), 8);       /* the key event */
    assert_int_equal(vm[0], 4);
    rig_free(&r);
}

/* The viewer's fence requests, every flag combination (and unknown bits):
 * answered by vmgate with the known flags and the payload, never sent to
 * QEMU, placed after everything already approved for the viewer (not in
 * the middle of an update); with BlockAfter or SyncNext, the viewer's next
 * message waits until the answer is queued. */
static void test_fence_flags(void **state)
{
    (void)state;
    for (uint32_t fl = 0; fl < 8; fl++) {
        struct rig r;
        rig_cu(&r, true);
        uint8_t vm[256], v[4096];
        /* an update is half-way through */
        uint8_t u[16 + 4 * 4];
        size_t un = raw_update(u, 2, 2, 4);
        from_vm(&r, u, 20);
        uint32_t flags = 0x80000000u | fl | 0x00000100u;
        uint8_t f[9 + 3] = { 248, 0, 0, 0 };
        rfb_put_u32(f + 4, flags);
        f[8] = 3;
        f[9] = 'a'; f[10] = 'b'; f[11] = (uint8_t)fl;
        from_viewer(&r, f, sizeof f);
        from_viewer(&r, (const uint8_t[]){ 4, 1, 0, 0, 0, 0, 0, 0x61 }, 8);
        size_t n = to_vm(&r, vm, sizeof vm);
        bool hold = fl & 6;
        assert_int_equal(n, hold ? 0 : 8);                /* never the fence */
        n = to_viewer(&r, v, sizeof v);
        assert_int_equal(n, 20);                          /* no answer mid-update */
        from_vm(&r, u + 20, un - 20);
        n = to_viewer(&r, v, sizeof v);
        /* the rest of the update, then the answer */
        assert_int_equal(n, un - 20 + 12);
        const uint8_t *a = v + un - 20;
        assert_int_equal(a[0], 248);
        assert_int_equal(rfb_get_u32(a + 4), fl);
        assert_int_equal(a[8], 3);
        assert_memory_equal(a + 9, f + 9, 3);
        round_trip(&r);
        n = to_vm(&r, vm, sizeof vm);
        assert_int_equal(n, hold ? 8 : 0);                /* released after the answer */
        rig_free(&r);
    }
}

/* A fence payload over 64 bytes from the viewer ends the session, with a
 * reason. */
static void test_fence_oversize(void **state)
{
    (void)state;
    struct rig r;
    rig_cu(&r, true);
    uint8_t f[9] = { 248, 0, 0, 0, 0x80, 0, 0, 0, 65 };
    buf_put(&r.f2b, f, sizeof f);
    assert_int_equal(run_c2s(&r), -1);
    assert_non_null(strstr(r.why, "ClientFence with 65 bytes of payload"));
    uint8_t vm[64];
    assert_int_equal(to_vm(&r, vm, sizeof vm), 0);
    rig_free(&r);
}

/* Flow control with fences: with over 16 KiB in flight and not echoed, no
 * new request; the echo of our first fence opens the window (and grows it:
 * the round trip equals the base, nothing is queued). */
static void test_flow_fence(void **state)
{
    (void)state;
    struct rig r;
    rig_cu(&r, true);
    uint8_t first[64];
    /* the offer's fence: echo it so the base round trip is known */
    enable(&r, true, 720, 400);
    uint8_t vm[256];
    assert_int_equal(to_vm(&r, vm, sizeof vm), 10);
    static uint8_t u[16 + 80 * 60 * 4], v[2 * sizeof u];
    size_t un = raw_update(u, 80, 60, 4);                 /* 19216 bytes > 16 KiB */
    from_vm(&r, u, un);
    assert_int_equal(to_vm(&r, vm, sizeof vm), 10);      /* asked at its start */
    size_t n = to_viewer(&r, v, sizeof v);
    assert_int_equal(n, un + 21);
    memcpy(first, v + un, 21);
    from_vm(&r, u, 4);                                    /* the next update begins */
    assert_int_equal(to_vm(&r, vm, sizeof vm), 0);       /* window full: no request */
    from_vm(&r, u + 4, un - 4);
    n = to_viewer(&r, v, sizeof v);
    assert_int_equal(n, un + 21);
    /* the viewer echoes the first update's fence, 50 ms later */
    r.link.now += 0.05;
    first[4] = first[5] = first[6] = first[7] = 0;        /* flags 0: an answer */
    from_viewer(&r, first, 21);
    /* the first round trip sample: nothing queued, slow start doubles the
     * window to 32 KiB, and the one update in flight fits: ask again */
    n = to_vm(&r, vm, sizeof vm);
    assert_int_equal(n, 10);
    assert_true(is_request(vm, true));
    rig_free(&r);
}

/* One small update, and the viewer's echo of the fence that follows it as
 * if it came rtt_ms after the fence was sent. */
static void echo_after(struct rig *r, unsigned rtt_ms)
{
    uint8_t u[16 + 4], v[256], vm[64];
    size_t un = raw_update(u, 1, 1, 4);
    from_vm(r, u, un);
    to_vm(r, vm, sizeof vm);
    size_t n = to_viewer(r, v, sizeof v);
    assert_int_equal(n, un + 21);
    uint8_t *f = v + un;
    assert_int_equal(f[0], 248);
    r->link.now += 2.0;                                   /* one change per round trip */
    rfb_put_u32(f + 4, 0);                                /* flags 0: an answer */
    rfb_put_u32(f + 17, (uint32_t)(uint64_t)(r->link.now * 1000.0) - rtt_ms);
    from_viewer(r, f, 21);
}

/* Vegas: the window doubles while the round trip stays at its base; when
 * it grows enough to mean more than 64 KiB queued on the path, the window
 * drops in one step to what the path carried plus alpha (FAST TCP's rule);
 * after that it grows by steps, and holds while 16..64 KiB are queued. */
static void test_vegas(void **state)
{
    (void)state;
    struct rig r;
    rig_cu(&r, true);
    enable(&r, true, 1, 1);
    uint8_t vm[64];
    to_vm(&r, vm, sizeof vm);
    assert_int_equal(rfbfilter_window(r.f), 16 * 1024);
    echo_after(&r, 10);
    assert_int_equal(rfbfilter_window(r.f), 32 * 1024);
    echo_after(&r, 10);
    echo_after(&r, 10);
    assert_int_equal(rfbfilter_window(r.f), 128 * 1024);
    echo_after(&r, 1000);              /* 126.7 KiB of 128 queued: 1.3 + 16 left */
    assert_int_equal(rfbfilter_window(r.f), 17694);  /* 131072 - 129761.28 + 16384 */
    echo_after(&r, 20);                /* 8.6 KiB queued: a step up */
    assert_int_equal(rfbfilter_window(r.f), 17694 + 16384);
    echo_after(&r, 30);                /* 22.7 KiB queued: hold */
    assert_int_equal(rfbfilter_window(r.f), 34078);
    rig_free(&r);
}

/* Updates larger than the window: vmgate guesses the size of the update
 * passing from the last one and does not ask for the next at its head; it
 * asks once what the viewer has probably taken (the echo plus the window's
 * rate since) leaves room, without waiting for the next echo, and says
 * when to call it for that. */
static void test_flow_estimate(void **state)
{
    (void)state;
    struct rig r;
    rig_cu(&r, true);
    enable(&r, true, 720, 400);
    uint8_t vm[256];
    assert_int_equal(to_vm(&r, vm, sizeof vm), 10);
    static uint8_t u[16 + 160 * 100 * 4], v[2 * sizeof u];
    size_t un = raw_update(u, 160, 100, 4);               /* 64016 bytes */
    from_vm(&r, u, un);
    assert_int_equal(to_vm(&r, vm, sizeof vm), 10);      /* nothing known yet: asked */
    size_t n = to_viewer(&r, v, sizeof v);
    assert_int_equal(n, un + 21);
    uint8_t f1[21];
    memcpy(f1, v + un, 21);
    r.link.now += 0.1;                                    /* echoed after 100 ms */
    rfb_put_u32(f1 + 4, 0);
    from_viewer(&r, f1, 21);
    assert_int_equal(rfbfilter_window(r.f), 32 * 1024);   /* base 0.1 s, slow start */
    assert_int_equal(to_vm(&r, vm, sizeof vm), 0);       /* the one asked for is due */
    from_vm(&r, u, 20);                                   /* its head */
    assert_int_equal(to_vm(&r, vm, sizeof vm), 0);       /* 64 KiB expected > 32 KiB */
    from_vm(&r, u + 20, un - 20);
    n = to_viewer(&r, v, sizeof v);
    assert_int_equal(n, un + 21);
    assert_int_equal(to_vm(&r, vm, sizeof vm), 0);
    /* 64037 bytes in flight, 32768 allowed, 327680 bytes/s: ~95 ms */
    double t = rfbfilter_wake(r.f);
    assert_true(t > 0.09 && t < 0.1);
    r.link.now += t / 2;
    round_trip(&r);
    assert_int_equal(to_vm(&r, vm, sizeof vm), 0);
    r.link.now += t / 2 + 0.001;
    round_trip(&r);
    n = to_vm(&r, vm, sizeof vm);                         /* no echo came: asked */
    assert_int_equal(n, 10);
    assert_true(is_request(vm, true));
    rig_free(&r);
}

/* Flow control without fences: the kernel's queue over its congestion
 * window holds the request back, and the filter asks to be woken. */
static void test_flow_kernel(void **state)
{
    (void)state;
    struct rig r;
    rig_cu(&r, false);
    r.link.queued = 200000;
    r.link.cwnd = 64000;
    enable(&r, true, 720, 400);
    uint8_t vm[64];
    assert_int_equal(to_vm(&r, vm, sizeof vm), 0);
    assert_true(rfbfilter_wake(r.f) > 0);
    r.link.queued = 1000;
    round_trip(&r);
    assert_int_equal(to_vm(&r, vm, sizeof vm), 10);
    assert_true(rfbfilter_wake(r.f) < 0);
    rig_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_offer),
        cmocka_unit_test(test_off),
        cmocka_unit_test(test_enable_requests),
        cmocka_unit_test(test_disable_pending),
        cmocka_unit_test(test_disable_idle),
        cmocka_unit_test(test_fence_flags),
        cmocka_unit_test(test_fence_oversize),
        cmocka_unit_test(test_flow_fence),
        cmocka_unit_test(test_flow_kernel),
        cmocka_unit_test(test_vegas),
        cmocka_unit_test(test_flow_estimate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
