/* tests/unit/test_xvp.c — XVP in the relay filter (proxy/rfbfilter.c):
 * -309 makes the filter ask for the power right; only a yes gives the
 * viewer XVP_INIT, between server messages; XVP messages are never
 * forwarded to QEMU; an action goes to the connection only with the right,
 * version 1 and a known code, and only at the rate; everything else is
 * XVP_FAIL and a reported refusal; a 250 without -309 closes the session.
 * Messages are fed byte by byte where it matters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "common/buf.h"
#include "proxy/rfb.h"
#include "proxy/rfbfilter.h"
#include "proxy/rfbmsg.h"

struct ev {
    enum rfbfilter_pwr ev;
    unsigned code;
    char why[128];
};

struct rig {
    struct cfg_vm vm;
    struct rfbfilter *f;
    struct buf b2f, f2b, to_viewer, to_vm;
    size_t b2f_ok, f2b_ok;
    char why[256];
    struct ev evs[64];
    int n_ev;
    double now;
};

static void on_note(void *ctx, enum log_level lvl, const char *msg)
{
    (void)ctx;
    (void)lvl;
    (void)msg;
}

static void on_power(void *ctx, enum rfbfilter_pwr ev, unsigned code, const char *why)
{
    struct rig *r = ctx;
    assert_true(r->n_ev < 64);
    struct ev *e = &r->evs[r->n_ev++];
    e->ev = ev;
    e->code = code;
    snprintf(e->why, sizeof e->why, "%s", why ? why : "");
}

static void set_clock(struct rig *r, double now)
{
    r->now = now;
    struct rfbfilter_link l = { .now = now };
    rfbfilter_link(r->f, &l);
}

static void rig_init(struct rig *r, bool with_hook)
{
    memset(r, 0, sizeof *r);
    snprintf(r->vm.name, sizeof r->vm.name, "t");
    r->vm.clipboard = CFG_CLIP_NONE;
    r->vm.clipboard_max = 1024;
    struct rfbfilter_hooks hooks = { NULL, on_note, r, with_hook ? on_power : NULL };
    r->f = rfbfilter_new(&r->vm, &hooks);
    assert_non_null(r->f);
    buf_init(&r->b2f, 256 * 1024);
    buf_init(&r->f2b, 64 * 1024);
    buf_init(&r->to_viewer, RFBFILTER_INJECT_CAP);
    buf_init(&r->to_vm, RFBFILTER_INJECT_CAP);
    set_clock(r, 100.0);
}

static void rig_free(struct rig *r)
{
    rfbfilter_free(r->f);
    buf_free(&r->b2f);
    buf_free(&r->f2b);
    buf_free(&r->to_viewer);
    buf_free(&r->to_vm);
}

static int vm_bytes(struct rig *r, const void *p, size_t n)
{
    assert_int_equal(buf_put(&r->b2f, p, n), 0);
    return rfbfilter_s2c(r->f, &r->b2f, &r->b2f_ok, &r->to_viewer, &r->to_vm, r->why,
                         sizeof r->why);
}

/* Feed the viewer's bytes one at a time (the filter must wait for a whole
 * message each time), then run the VM direction once, as the relay does. */
static int viewer_bytes(struct rig *r, const void *p, size_t n)
{
    const uint8_t *q = p;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(buf_put(&r->f2b, q + i, 1), 0);
        int rc = rfbfilter_c2s(r->f, &r->f2b, &r->f2b_ok, &r->to_viewer, &r->to_vm, r->why,
                               sizeof r->why);
        if (rc != 0)
            return rc;
    }
    return vm_bytes(r, "", 0);
}

/* What went to the VM (approved stream bytes + injections), then drop it. */
static size_t sent_to_vm(struct rig *r, uint8_t *out, size_t cap)
{
    size_t n = r->f2b_ok + buf_len(&r->to_vm);
    assert_true(n <= cap);
    memcpy(out, buf_head(&r->f2b), r->f2b_ok);
    memcpy(out + r->f2b_ok, buf_head(&r->to_vm), buf_len(&r->to_vm));
    buf_consume(&r->f2b, r->f2b_ok);
    r->f2b_ok = 0;
    buf_consume(&r->to_vm, buf_len(&r->to_vm));
    return n;
}

/* What went to the viewer (approved VM bytes + injections), then drop it. */
static size_t sent_to_viewer(struct rig *r, uint8_t *out, size_t cap)
{
    size_t n = r->b2f_ok + buf_len(&r->to_viewer);
    assert_true(n <= cap);
    memcpy(out, buf_head(&r->b2f), r->b2f_ok);
    memcpy(out + r->b2f_ok, buf_head(&r->to_viewer), buf_len(&r->to_viewer));
    buf_consume(&r->b2f, r->b2f_ok);
    r->b2f_ok = 0;
    buf_consume(&r->to_viewer, buf_len(&r->to_viewer));
    return n;
}

static const uint8_t XVP_INIT_MSG[4] = { 250, 0, 1, 1 };
static const uint8_t XVP_FAIL_MSG[4] = { 250, 0, 1, 0 };

/* ServerInit, then the viewer's SetEncodings (Raw, and -309 when xvp). */
static void rig_start(struct rig *r, bool with_hook, bool xvp)
{
    rig_init(r, with_hook);
    static const uint8_t si[] = {
        0x02, 0xd0, 0x01, 0x90, 32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0,
        0, 0, 0, 4, 'q', 'e', 'm', 'u',
    };
    assert_int_equal(vm_bytes(r, si, sizeof si), 0);
    uint8_t out[4096];
    assert_int_equal(sent_to_viewer(r, out, sizeof out), sizeof si);
    uint8_t se[12] = { 2, 0, 0, xvp ? 2 : 1 };
    rfb_put_u32(se + 4, 0);
    rfb_put_u32(se + 8, (uint32_t)RFB_ENC_XVP);
    assert_int_equal(viewer_bytes(r, se, xvp ? 12 : 8), 0);
    /* -309 never reaches QEMU */
    size_t n = sent_to_vm(r, out, sizeof out);
    assert_int_equal(n, 8);
    assert_int_equal(out[3], 1);
    assert_int_equal(rfb_get_u32(out + 4), 0);
}

/* A power user: ask once, XVP_INIT only after the yes and only between
 * server messages; shutdown/reboot/reset become actions, never bytes for
 * QEMU; a failed action is XVP_FAIL. */
static void test_power_user(void **state)
{
    (void)state;
    struct rig r;
    rig_start(&r, true, true);
    assert_int_equal(r.n_ev, 1);
    assert_int_equal(r.evs[0].ev, RFBFILTER_PWR_ASK);
    uint8_t out[4096];
    assert_int_equal(sent_to_viewer(&r, out, sizeof out), 0);   /* nothing before the answer */

    /* a FramebufferUpdate header from the VM is in flight when the yes comes */
    static const uint8_t upd_head[] = { 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0 };
    assert_int_equal(vm_bytes(&r, upd_head, sizeof upd_head), 0);
    rfbfilter_xvp_right(r.f, true);
    assert_int_equal(vm_bytes(&r, "", 0), 0);
    size_t n = sent_to_viewer(&r, out, sizeof out);
    assert_int_equal(n, sizeof upd_head);            /* no INIT inside the update */
    static const uint8_t px[4] = { 1, 2, 3, 4 };     /* the 1x1 raw pixel ends it */
    assert_int_equal(vm_bytes(&r, px, sizeof px), 0);
    assert_int_equal(vm_bytes(&r, "", 0), 0);
    n = sent_to_viewer(&r, out, sizeof out);
    assert_int_equal(n, 8);
    assert_memory_equal(out + 4, XVP_INIT_MSG, 4);
    /* a second SetEncodings does not ask again nor repeat INIT */
    uint8_t se[12] = { 2, 0, 0, 2 };
    rfb_put_u32(se + 8, (uint32_t)RFB_ENC_XVP);
    assert_int_equal(viewer_bytes(&r, se, sizeof se), 0);
    assert_int_equal(r.n_ev, 1);
    assert_int_equal(sent_to_viewer(&r, out, sizeof out), 0);
    sent_to_vm(&r, out, sizeof out);

    static const uint8_t codes[] = { 2, 3, 4 };
    for (size_t i = 0; i < 3; i++) {
        set_clock(&r, 200.0 + 10 * (double)i);
        uint8_t m[4] = { 250, 0, 1, codes[i] };
        assert_int_equal(viewer_bytes(&r, m, 4), 0);
        assert_int_equal(sent_to_vm(&r, out, sizeof out), 0);   /* never forwarded */
        assert_int_equal(r.n_ev, 2 + (int)i);
        assert_int_equal(r.evs[1 + i].ev, RFBFILTER_PWR_DO);
        assert_int_equal(r.evs[1 + i].code, codes[i]);
        rfbfilter_xvp_done(r.f, codes[i] != 3);                 /* reboot fails */
        assert_int_equal(vm_bytes(&r, "", 0), 0);
        n = sent_to_viewer(&r, out, sizeof out);
        if (codes[i] == 3) {
            assert_int_equal(n, 4);
            assert_memory_equal(out, XVP_FAIL_MSG, 4);
        } else {
            assert_int_equal(n, 0);
        }
    }
    /* the session goes on: a KeyEvent still passes */
    static const uint8_t key[8] = { 4, 1, 0, 0, 0, 0, 0, 0x61 };
    assert_int_equal(viewer_bytes(&r, key, 8), 0);
    assert_int_equal(sent_to_vm(&r, out, sizeof out), 8);
    rig_free(&r);
}

/* No right: never XVP_INIT; every XVP message is XVP_FAIL and a refusal,
 * and the session goes on. */
static void test_no_right(void **state)
{
    (void)state;
    struct rig r;
    rig_start(&r, true, true);
    rfbfilter_xvp_right(r.f, false);
    uint8_t out[4096];
    assert_int_equal(vm_bytes(&r, "", 0), 0);
    assert_int_equal(sent_to_viewer(&r, out, sizeof out), 0);
    uint8_t m[4] = { 250, 0, 1, 4 };
    assert_int_equal(viewer_bytes(&r, m, 4), 0);
    assert_int_equal(sent_to_vm(&r, out, sizeof out), 0);
    assert_int_equal(sent_to_viewer(&r, out, sizeof out), 4);
    assert_memory_equal(out, XVP_FAIL_MSG, 4);
    assert_int_equal(r.n_ev, 2);
    assert_int_equal(r.evs[1].ev, RFBFILTER_PWR_REFUSED);
    assert_non_null(strstr(r.evs[1].why, "power_users"));
    /* a session without the hook (the filter's other users) is the same */
    rig_free(&r);
    rig_start(&r, false, true);
    assert_int_equal(r.n_ev, 0);
    assert_int_equal(viewer_bytes(&r, m, 4), 0);
    assert_int_equal(sent_to_viewer(&r, out, sizeof out), 4);
    assert_memory_equal(out, XVP_FAIL_MSG, 4);
    static const uint8_t req[10] = { 3, 0, 0, 0, 0, 0, 0, 1, 0, 1 };
    assert_int_equal(viewer_bytes(&r, req, 10), 0);
    assert_int_equal(sent_to_vm(&r, out, sizeof out), 10);
    rig_free(&r);
}

/* Bad input: wrong version, unknown code, before XVP_INIT; each is
 * XVP_FAIL and a refusal with its reason, no action; a 250 from a viewer
 * that never announced -309 closes the session. */
static void test_bad_input(void **state)
{
    (void)state;
    struct rig r;
    uint8_t out[4096];
    rig_start(&r, true, true);
    /* before the helper answered: no INIT yet */
    uint8_t early[4] = { 250, 0, 1, 2 };
    assert_int_equal(viewer_bytes(&r, early, 4), 0);
    assert_int_equal(r.evs[1].ev, RFBFILTER_PWR_REFUSED);
    assert_string_equal(r.evs[1].why, "xvp message before XVP_INIT");
    assert_int_equal(sent_to_viewer(&r, out, sizeof out), 4);
    rfbfilter_xvp_right(r.f, true);
    assert_int_equal(vm_bytes(&r, "", 0), 0);
    assert_int_equal(sent_to_viewer(&r, out, sizeof out), 4);   /* INIT */
    set_clock(&r, 110);
    uint8_t badver[4] = { 250, 0, 2, 4 };
    assert_int_equal(viewer_bytes(&r, badver, 4), 0);
    assert_string_equal(r.evs[2].why, "xvp version 2 (only 1 exists)");
    assert_int_equal(sent_to_viewer(&r, out, sizeof out), 4);
    assert_memory_equal(out, XVP_FAIL_MSG, 4);
    set_clock(&r, 120);
    uint8_t badcode[4] = { 250, 0, 1, 1 };                      /* INIT is the server's */
    assert_int_equal(viewer_bytes(&r, badcode, 4), 0);
    assert_string_equal(r.evs[3].why, "unknown xvp code 1");
    set_clock(&r, 130);
    badcode[3] = 99;
    assert_int_equal(viewer_bytes(&r, badcode, 4), 0);
    assert_string_equal(r.evs[4].why, "unknown xvp code 99");
    for (int i = 1; i < r.n_ev; i++)
        assert_int_equal(r.evs[i].ev, RFBFILTER_PWR_REFUSED);
    assert_int_equal(sent_to_vm(&r, out, sizeof out), 0);
    /* an action while one runs */
    set_clock(&r, 140);
    uint8_t rst[4] = { 250, 0, 1, 4 };
    assert_int_equal(viewer_bytes(&r, rst, 4), 0);
    assert_int_equal(r.evs[5].ev, RFBFILTER_PWR_DO);
    set_clock(&r, 150);
    assert_int_equal(viewer_bytes(&r, rst, 4), 0);
    assert_int_equal(r.evs[6].ev, RFBFILTER_PWR_REFUSED);
    assert_string_equal(r.evs[6].why, "the previous power action still runs");
    rig_free(&r);

    /* no -309: a 250 is a protocol error (as in QEMU) */
    rig_start(&r, true, false);
    assert_int_equal(r.n_ev, 0);
    uint8_t m[4] = { 250, 0, 1, 2 };
    assert_int_equal(buf_put(&r.f2b, m, 4), 0);
    assert_int_equal(rfbfilter_c2s(r.f, &r.f2b, &r.f2b_ok, &r.to_viewer, &r.to_vm, r.why,
                                   sizeof r.why), -1);
    assert_non_null(strstr(r.why, "xvp message without the xvp pseudo-encoding"));
    assert_int_equal(r.f2b_ok, 0);
    rig_free(&r);
}

/* A flood: one message per RFBFILTER_XVP_INTERVAL is looked at, the rest
 * get (coalesced) XVP_FAIL; the flood is reported once per session. */
static void test_flood(void **state)
{
    (void)state;
    struct rig r;
    uint8_t out[8192];
    rig_start(&r, true, true);
    rfbfilter_xvp_right(r.f, true);
    assert_int_equal(vm_bytes(&r, "", 0), 0);
    sent_to_viewer(&r, out, sizeof out);
    int actions = 0, floods = 0;
    uint8_t burst[4 * 100];
    for (int i = 0; i < 100; i++) {
        burst[4 * i] = 250;
        burst[4 * i + 1] = 0;
        burst[4 * i + 2] = 1;
        burst[4 * i + 3] = 4;
    }
    /* 100 resets in one read at each of 3 moments 1 s apart */
    for (int t = 0; t < 3; t++) {
        set_clock(&r, 300.0 + t);
        assert_int_equal(buf_put(&r.f2b, burst, sizeof burst), 0);
        assert_int_equal(rfbfilter_c2s(r.f, &r.f2b, &r.f2b_ok, &r.to_viewer, &r.to_vm, r.why,
                                       sizeof r.why), 0);
        for (int i = 0; i < r.n_ev; i++)
            if (r.evs[i].ev == RFBFILTER_PWR_DO)
                rfbfilter_xvp_done(r.f, true);
        assert_int_equal(vm_bytes(&r, "", 0), 0);
        assert_int_equal(sent_to_vm(&r, out, sizeof out), 0);
        size_t n = sent_to_viewer(&r, out, sizeof out);
        assert_true(n == 4 && memcmp(out, XVP_FAIL_MSG, 4) == 0);   /* coalesced */
    }
    for (int i = 0; i < r.n_ev; i++) {
        actions += r.evs[i].ev == RFBFILTER_PWR_DO;
        floods += r.evs[i].ev == RFBFILTER_PWR_FLOOD;
    }
    assert_int_equal(actions, 2);       /* t=300 and t=302 */
    assert_int_equal(floods, 1);
    assert_int_equal(r.n_ev, 1 + 2 + 1);
    rig_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_power_user),
        cmocka_unit_test(test_no_right),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_flood),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
