/* tests/unit/test_serial_ring.c — the serial console's pure parts: the
 * output ring (proxy/serial_ring.c: wrap, replay order, bounded), a
 * session's backlog (drop for a marker when full, never more than its
 * capacity), and `vmgate console --serial`'s first-line watcher
 * (gateway/console.c: refusal vs greeting, fed whole and byte by byte). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "gateway/console.h"
#include "proxy/serial_ring.h"

/* The ring's bytes, oldest first, into out (NUL-terminated). */
static size_t replay(const struct serial_ring *r, char *out, size_t outsz)
{
    const uint8_t *a, *b;
    size_t al, bl;
    serial_ring_runs(r, &a, &al, &b, &bl);
    assert_true(al + bl < outsz);
    memcpy(out, a, al);
    memcpy(out + al, b, bl);
    out[al + bl] = '\0';
    return al + bl;
}

static void ring_empty_and_partial(void **state)
{
    (void)state;
    struct serial_ring r;
    char out[64];
    assert_int_equal(serial_ring_init(&r, 8), 0);
    assert_int_equal(replay(&r, out, sizeof out), 0);
    serial_ring_put(&r, "abc", 3);
    assert_int_equal(replay(&r, out, sizeof out), 3);
    assert_string_equal(out, "abc");
    serial_ring_free(&r);
}

static void ring_wraps_keeping_the_latest(void **state)
{
    (void)state;
    struct serial_ring r;
    char out[64];
    assert_int_equal(serial_ring_init(&r, 8), 0);
    serial_ring_put(&r, "abcdef", 6);
    serial_ring_put(&r, "ghij", 4);              /* wraps: 10 bytes into 8 */
    assert_int_equal(replay(&r, out, sizeof out), 8);
    assert_string_equal(out, "cdefghij");
    serial_ring_put(&r, "k", 1);
    replay(&r, out, sizeof out);
    assert_string_equal(out, "defghijk");
    assert_int_equal(r.total, 11);
    serial_ring_free(&r);
}

static void ring_put_larger_than_cap(void **state)
{
    (void)state;
    struct serial_ring r;
    char out[64];
    assert_int_equal(serial_ring_init(&r, 8), 0);
    serial_ring_put(&r, "xy", 2);
    serial_ring_put(&r, "0123456789ABCDEF", 16);   /* only the last 8 stay */
    assert_int_equal(replay(&r, out, sizeof out), 8);
    assert_string_equal(out, "89ABCDEF");
    serial_ring_free(&r);
}

/* Byte by byte across many wraps: always the last cap bytes, in order. */
static void ring_byte_by_byte(void **state)
{
    (void)state;
    struct serial_ring r;
    char out[64], want[64];
    assert_int_equal(serial_ring_init(&r, 7), 0);
    for (int i = 0; i < 100; i++) {
        char ch = (char)('a' + i % 26);
        serial_ring_put(&r, &ch, 1);
        size_t n = replay(&r, out, sizeof out);
        size_t keep = i + 1 < 7 ? (size_t)i + 1 : 7;
        assert_int_equal(n, keep);
        for (size_t k = 0; k < keep; k++)
            want[k] = (char)('a' + (i + 1 - (int)keep + (int)k) % 26);
        want[keep] = '\0';
        assert_string_equal(out, want);
    }
    serial_ring_free(&r);
}

static void outq_fits(void **state)
{
    (void)state;
    struct serial_outq q;
    serial_outq_init(&q, 256);
    assert_int_equal(serial_outq_put(&q, "hello", 5), 0);
    assert_int_equal(buf_len(&q.b), 5);
    assert_int_equal(q.dropped, 0);
    serial_outq_free(&q);
}

/* Full: the backlog goes, a marker says how many bytes, the new bytes follow. */
static void outq_drops_backlog_for_a_marker(void **state)
{
    (void)state;
    struct serial_outq q;
    char big[200];
    memset(big, 'x', sizeof big);
    serial_outq_init(&q, 256);
    assert_int_equal(serial_outq_put(&q, big, 200), 0);
    assert_int_equal(serial_outq_put(&q, "NEW", 3), 0);       /* 203: fits */
    size_t lost = serial_outq_put(&q, big, 100);              /* 303 > 256 */
    assert_int_equal(lost, 203);
    assert_int_equal(q.dropped, 203);
    assert_int_equal(q.drops, 1);
    char m[SERIAL_MARKER_MAX];
    size_t ml = serial_marker(203, m, sizeof m);
    assert_int_equal(buf_len(&q.b), ml + 100);
    assert_memory_equal(buf_head(&q.b), m, ml);
    assert_non_null(strstr(m, "[vmgate: 203 bytes dropped"));
    assert_true(buf_len(&q.b) <= 256);
    serial_outq_free(&q);
}

/* One put larger than the queue: its tail stays (after the marker), the
 * rest counts as dropped; the queue never exceeds its capacity. */
static void outq_huge_put_keeps_tail(void **state)
{
    (void)state;
    struct serial_outq q;
    char big[1000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)('0' + i % 10);
    serial_outq_init(&q, 256);
    size_t lost = serial_outq_put(&q, big, sizeof big);
    size_t room = 256 - SERIAL_MARKER_MAX;
    assert_int_equal(lost, sizeof big - room);
    assert_true(buf_len(&q.b) <= 256);
    const uint8_t *h = buf_head(&q.b);
    assert_memory_equal(h + buf_len(&q.b) - room, big + sizeof big - room, room);
    for (int i = 0; i < 50; i++)
        serial_outq_put(&q, big, sizeof big);
    assert_true(buf_len(&q.b) <= 256);
    assert_int_equal(q.drops, 51);
    serial_outq_free(&q);
}

static enum serial_watch_state watch(struct serial_watch *w, const char *s, size_t step)
{
    serial_watch_init(w);
    size_t n = strlen(s), i = 0;
    while (i < n && w->state == SW_WATCHING) {
        size_t k = n - i < step ? n - i : step;
        i += serial_watch_feed(w, (const uint8_t *)s + i, k);
    }
    return w->state;
}

static void watch_refusal(void **state)
{
    (void)state;
    struct serial_watch w;
    for (size_t step = 1; step < 64; step += 7) {
        assert_int_equal(watch(&w, "vmgate: user bob may not open VM dev0\r\n", step),
                         SW_REFUSED);
        assert_string_equal(w.reason, "user bob may not open VM dev0");
    }
}

static void watch_greeting_passes_at_once(void **state)
{
    (void)state;
    struct serial_watch w;
    /* "[vmgate: ..." differs from "vmgate: " at the first byte */
    serial_watch_init(&w);
    const char *g = "[vmgate: serial console of VM a, alice has the keyboard]\r\nboot";
    size_t took = serial_watch_feed(&w, (const uint8_t *)g, strlen(g));
    assert_int_equal(w.state, SW_PASSED);
    assert_int_equal(took, 1);
    /* output that starts like the prefix but is not it */
    assert_int_equal(watch(&w, "vmgatX", 1), SW_PASSED);
}

static void watch_control_bytes_and_overlong(void **state)
{
    (void)state;
    struct serial_watch w;
    assert_int_equal(watch(&w, "vmgate: a\x1b[31mb\r\n", 3), SW_REFUSED);
    assert_string_equal(w.reason, "a?[31mb");
    char longline[600];
    memset(longline, 'z', sizeof longline - 1);
    memcpy(longline, "vmgate: ", 8);
    longline[sizeof longline - 1] = '\0';
    assert_int_equal(watch(&w, longline, 50), SW_REFUSED);   /* bounded: decided when full */
    assert_true(strlen(w.reason) <= CONSOLE_REASON_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ring_empty_and_partial),
        cmocka_unit_test(ring_wraps_keeping_the_latest),
        cmocka_unit_test(ring_put_larger_than_cap),
        cmocka_unit_test(ring_byte_by_byte),
        cmocka_unit_test(outq_fits),
        cmocka_unit_test(outq_drops_backlog_for_a_marker),
        cmocka_unit_test(outq_huge_put_keeps_tail),
        cmocka_unit_test(watch_refusal),
        cmocka_unit_test(watch_greeting_passes_at_once),
        cmocka_unit_test(watch_control_bytes_and_overlong),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
