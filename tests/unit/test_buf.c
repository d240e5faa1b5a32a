/* tests/unit/test_buf.c — common/buf.c: lazy storage, bounds, compaction,
 * cut and insert at every offset, the pool of relay-sized blocks, and the
 * wipe of every byte ever written (up to the high-water mark) before a
 * block goes back to malloc; headroom (buf_init_headroom) kept in front of
 * the data through every consume, compaction, cut and insert, at every
 * offset, and covered by the wipe.  free() is wrapped (-Wl,--wrap=free, see the
 * Makefile) so the test sees each block's bytes as it is freed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "common/buf.h"

/* ---- free() seen from the inside ---- */
void __real_free(void *p);
void __wrap_free(void *p);
static const uint8_t *watch_p;      /* the block to check when it is freed */
static size_t watch_n;              /* how many leading bytes must be zero */
static int watch_hits, watch_dirty;

void __wrap_free(void *p)
{
    if (p && p == watch_p) {
        watch_hits++;
        for (size_t i = 0; i < watch_n; i++)
            if (watch_p[i] != 0)
                watch_dirty++;
        watch_p = NULL;
    }
    __real_free(p);
}

static void fill(struct buf *b, size_t n, uint8_t v)
{
    uint8_t tmp[4096];
    memset(tmp, v, sizeof tmp);
    while (n) {
        size_t k = n < sizeof tmp ? n : sizeof tmp;
        assert_int_equal(buf_put(b, tmp, k), 0);
        n -= k;
    }
}

static void test_lazy_and_bounded(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 64);
    assert_null(b.data);
    assert_int_equal(buf_room(&b), 64);
    assert_int_equal(buf_put(&b, "0123456789", 10), 0);
    assert_non_null(b.data);
    assert_int_equal(buf_len(&b), 10);
    uint8_t big[64] = { 0 };
    assert_int_equal(buf_put(&b, big, 55), -1);           /* does not fit: nothing added */
    assert_int_equal(buf_len(&b), 10);
    assert_int_equal(buf_put(&b, big, 54), 0);
    assert_true(buf_full(&b));
    size_t avail;
    assert_null(buf_tail(&b, &avail));
    assert_int_equal(avail, 0);
    buf_consume(&b, 64);
    assert_true(buf_empty(&b));
    buf_trim(&b);
    assert_null(b.data);                                   /* idle: no memory */
    buf_free(&b);
}

static void test_compaction(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 16);
    assert_int_equal(buf_put(&b, "abcdefghijklmnop", 16), 0);
    buf_consume(&b, 10);                                   /* "klmnop" left at the end */
    assert_int_equal(buf_put(&b, "0123456789", 10), 0);    /* needs the front */
    assert_int_equal(buf_len(&b), 16);
    assert_memory_equal(buf_head(&b), "klmnop0123456789", 16);
    buf_free(&b);
}

static void test_cut_every_offset(void **state)
{
    (void)state;
    const char *s = "0123456789";
    for (size_t off = 0; off <= 10; off++) {
        for (size_t n = 0; off + n <= 10; n++) {
            struct buf b;
            buf_init(&b, 32);
            assert_int_equal(buf_put(&b, "xx", 2), 0);
            buf_consume(&b, 2);                            /* start > 0 */
            assert_int_equal(buf_put(&b, s, 10), 0);
            buf_cut(&b, off, n);
            char want[16];
            memcpy(want, s, off);
            memcpy(want + off, s + off + n, 10 - off - n);
            assert_int_equal(buf_len(&b), 10 - n);
            if (10 - n)
                assert_memory_equal(buf_head(&b), want, 10 - n);
            else
                assert_int_equal(b.start, 0);
            buf_free(&b);
        }
    }
}

static void test_insert_every_offset(void **state)
{
    (void)state;
    const char *s = "0123456789";
    for (size_t off = 0; off <= 10; off++) {
        struct buf b;
        buf_init(&b, 14);
        assert_int_equal(buf_put(&b, "yyyy", 4), 0);
        buf_consume(&b, 4);                                /* forces a compaction later */
        assert_int_equal(buf_put(&b, s, 10), 0);
        assert_int_equal(buf_insert(&b, off, "ABCD", 4), 0);
        char want[16];
        memcpy(want, s, off);
        memcpy(want + off, "ABCD", 4);
        memcpy(want + off + 4, s + off, 10 - off);
        assert_int_equal(buf_len(&b), 14);
        assert_memory_equal(buf_head(&b), want, 14);
        /* full: another insert fails and changes nothing */
        assert_int_equal(buf_insert(&b, 0, "Z", 1), -1);
        assert_memory_equal(buf_head(&b), want, 14);
        buf_free(&b);
    }
    struct buf b;
    buf_init(&b, 8);
    assert_int_equal(buf_insert(&b, 1, "a", 1), -1);       /* past the end */
    assert_int_equal(buf_insert(&b, 0, "a", 1), 0);        /* into an empty buffer */
    assert_memory_equal(buf_head(&b), "a", 1);
    buf_free(&b);
}

static void test_small_buffers_wiped(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 1024);                                    /* below BUF_POOL_MIN: never pooled */
    fill(&b, 700, 0xAA);
    buf_consume(&b, 700);
    fill(&b, 10, 0xBB);                                    /* hiwater stays 700 */
    watch_p = b.data;
    watch_n = 700;
    watch_hits = watch_dirty = 0;
    buf_free(&b);
    assert_int_equal(watch_hits, 1);
    assert_int_equal(watch_dirty, 0);
}

static void test_pool_reuse_and_wipe(void **state)
{
    (void)state;
    buf_pool_drain();
    struct buf a, b;
    buf_init(&a, BUF_POOL_MIN * 4);
    fill(&a, 5000, 0xCC);
    uint8_t *block = a.data;
    buf_free(&a);                                          /* to the pool, not wiped yet */
    buf_init(&b, BUF_POOL_MIN * 4);
    fill(&b, 10, 0xDD);
    assert_ptr_equal(b.data, block);                       /* the same block came back */
    assert_int_equal(b.hiwater, 5000);                     /* its high-water mark kept */
    buf_free(&b);
    watch_p = block;
    watch_n = 5000;
    watch_hits = watch_dirty = 0;
    buf_pool_drain();                                      /* leaves the pool: wiped */
    assert_int_equal(watch_hits, 1);
    assert_int_equal(watch_dirty, 0);
}

static void test_pool_depth(void **state)
{
    (void)state;
    buf_pool_drain();
    struct buf bs[BUF_POOL_DEPTH + 1];
    for (int i = 0; i <= BUF_POOL_DEPTH; i++) {
        buf_init(&bs[i], BUF_POOL_MIN);
        fill(&bs[i], 100, 0xEE);
    }
    for (int i = 0; i < BUF_POOL_DEPTH; i++)
        buf_free(&bs[i]);
    /* the pool is full: the next block goes back to malloc, wiped */
    watch_p = bs[BUF_POOL_DEPTH].data;
    watch_n = 100;
    watch_hits = watch_dirty = 0;
    buf_free(&bs[BUF_POOL_DEPTH]);
    assert_int_equal(watch_hits, 1);
    assert_int_equal(watch_dirty, 0);
    buf_pool_drain();
}

/* ---- headroom ---- */

#define HR 16

/* The headroom invariant: data sits at or after the reserve, the reserve
 * comes out of the capacity, and an empty buffer starts at the reserve. */
static void check_hr(const struct buf *b, size_t cap)
{
    assert_int_equal(buf_room(b), cap - HR - buf_len(b));
    if (!b->data)
        return;
    assert_true(b->start >= HR);
    assert_true(buf_headroom(b) >= HR);
    assert_true(b->end <= b->cap);
    if (buf_empty(b))
        assert_int_equal(b->start, HR);
}

static void test_headroom_capacity(void **state)
{
    (void)state;
    struct buf b;
    buf_init_headroom(&b, 64, HR);
    assert_null(b.data);
    assert_int_equal(buf_room(&b), 64 - HR);
    uint8_t big[64];
    memset(big, 'x', sizeof big);
    assert_int_equal(buf_put(&b, big, 64 - HR + 1), -1);  /* the headroom is not capacity */
    assert_int_equal(buf_put(&b, big, 64 - HR), 0);
    assert_ptr_equal(buf_head(&b), b.data + HR);           /* the first byte after the reserve */
    assert_true(buf_full(&b));
    size_t avail;
    assert_null(buf_tail(&b, &avail));
    check_hr(&b, 64);
    buf_consume(&b, 64 - HR);
    check_hr(&b, 64);                                      /* reset to the reserve, not 0 */
    assert_int_equal(buf_insert(&b, 0, big, 64 - HR + 1), -1);
    buf_free(&b);
    /* a headroom as large as the buffer is refused: a plain buffer */
    buf_init_headroom(&b, 8, 8);
    assert_int_equal(buf_room(&b), 8);
    buf_free(&b);
}

/* put, consume i, put again (compacting through buf_tail or buf_put) at
 * every offset: the bytes stay right and the reserve stays free */
static void test_headroom_consume_compact(void **state)
{
    (void)state;
    enum { CAP = 48, N = CAP - HR };
    uint8_t s[N];
    for (size_t i = 0; i < N; i++)
        s[i] = (uint8_t)('a' + i % 26);
    for (size_t i = 0; i <= N; i++) {
        for (int via_tail = 0; via_tail < 2; via_tail++) {
            struct buf b;
            buf_init_headroom(&b, CAP, HR);
            assert_int_equal(buf_put(&b, s, N), 0);
            check_hr(&b, CAP);
            buf_consume(&b, i);
            check_hr(&b, CAP);
            assert_int_equal(buf_headroom(&b), i == N ? HR : HR + i);
            if (via_tail) {
                size_t avail;
                uint8_t *t = buf_tail(&b, &avail);         /* compacts when the end is at cap */
                assert_int_equal(avail, i);
                if (i) {
                    assert_non_null(t);
                    memcpy(t, s, i);
                    buf_produce(&b, i);
                }
            } else if (i) {
                assert_int_equal(buf_put(&b, s, i), 0);   /* needs the front */
            }
            check_hr(&b, CAP);
            assert_int_equal(buf_len(&b), N);
            assert_memory_equal(buf_head(&b), s + i, N - i);
            assert_memory_equal(buf_head(&b) + (N - i), s, i);
            assert_int_equal(buf_headroom(&b), HR);       /* full again: compacted to the reserve */
            buf_free(&b);
        }
    }
}

static void test_headroom_cut_every_offset(void **state)
{
    (void)state;
    const char *s = "0123456789";
    for (size_t pre = 0; pre <= 2; pre += 2) {
        for (size_t off = 0; off <= 10; off++) {
            for (size_t n = 0; off + n <= 10; n++) {
                struct buf b;
                buf_init_headroom(&b, 32, HR);
                if (pre) {
                    assert_int_equal(buf_put(&b, "xx", pre), 0);
                    buf_consume(&b, pre);                  /* back to the reserve */
                }
                assert_int_equal(buf_put(&b, s, 10), 0);
                buf_cut(&b, off, n);
                check_hr(&b, 32);
                char want[16];
                memcpy(want, s, off);
                memcpy(want + off, s + off + n, 10 - off - n);
                assert_int_equal(buf_len(&b), 10 - n);
                if (10 - n)
                    assert_memory_equal(buf_head(&b), want, 10 - n);
                else
                    assert_int_equal(b.start, HR);
                buf_free(&b);
            }
        }
    }
}

static void test_headroom_insert_every_offset(void **state)
{
    (void)state;
    const char *s = "0123456789";
    for (size_t off = 0; off <= 10; off++) {
        struct buf b;
        buf_init_headroom(&b, 14 + HR, HR);
        assert_int_equal(buf_put(&b, "yyyy", 4), 0);
        assert_int_equal(buf_put(&b, s, 10), 0);
        buf_consume(&b, 4);                                /* the insert must compact */
        assert_int_equal(buf_headroom(&b), HR + 4);
        assert_int_equal(buf_insert(&b, off, "ABCD", 4), 0);
        check_hr(&b, 14 + HR);
        assert_int_equal(buf_headroom(&b), HR);
        char want[16];
        memcpy(want, s, off);
        memcpy(want + off, "ABCD", 4);
        memcpy(want + off + 4, s + off, 10 - off);
        assert_int_equal(buf_len(&b), 14);
        assert_memory_equal(buf_head(&b), want, 14);
        assert_int_equal(buf_insert(&b, 0, "Z", 1), -1);   /* full */
        assert_memory_equal(buf_head(&b), want, 14);
        buf_free(&b);
    }
    struct buf b;
    buf_init_headroom(&b, 8 + HR, HR);
    assert_int_equal(buf_insert(&b, 0, "a", 1), 0);        /* into an empty buffer */
    check_hr(&b, 8 + HR);
    assert_ptr_equal(buf_head(&b), b.data + HR);
    buf_free(&b);
}

/* A header written into the headroom (what tside does) is wiped with the
 * rest: small buffers at release, pooled ones when they leave the pool. */
static void test_headroom_wiped(void **state)
{
    (void)state;
    struct buf b;
    buf_init_headroom(&b, 1024, HR);
    fill(&b, 300, 0xAA);
    memset(buf_head_mut(&b) - 4, 0x82, 4);                 /* a frame header in front */
    buf_consume(&b, 300);
    fill(&b, 10, 0xBB);
    memset(buf_head_mut(&b) - 10, 0x82, 10);
    watch_p = b.data;
    watch_n = HR + 300;                                    /* the reserve and every byte written */
    watch_hits = watch_dirty = 0;
    buf_free(&b);
    assert_int_equal(watch_hits, 1);
    assert_int_equal(watch_dirty, 0);

    buf_pool_drain();
    buf_init_headroom(&b, BUF_POOL_MIN * 4, HR);
    fill(&b, 5000, 0xCC);
    memset(buf_head_mut(&b) - HR, 0x82, HR);
    uint8_t *block = b.data;
    assert_int_equal(b.hiwater, HR + 5000);
    buf_free(&b);
    struct buf c;                                          /* the pool is shared with plain buffers */
    buf_init(&c, BUF_POOL_MIN * 4);
    fill(&c, 10, 0xDD);
    assert_ptr_equal(c.data, block);
    assert_ptr_equal(buf_head(&c), block);                 /* no headroom: offset 0 */
    buf_free(&c);
    watch_p = block;
    watch_n = HR + 5000;
    watch_hits = watch_dirty = 0;
    buf_pool_drain();
    assert_int_equal(watch_hits, 1);
    assert_int_equal(watch_dirty, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lazy_and_bounded),
        cmocka_unit_test(test_compaction),
        cmocka_unit_test(test_cut_every_offset),
        cmocka_unit_test(test_insert_every_offset),
        cmocka_unit_test(test_small_buffers_wiped),
        cmocka_unit_test(test_pool_reuse_and_wipe),
        cmocka_unit_test(test_pool_depth),
        cmocka_unit_test(test_headroom_capacity),
        cmocka_unit_test(test_headroom_consume_compact),
        cmocka_unit_test(test_headroom_cut_every_offset),
        cmocka_unit_test(test_headroom_insert_every_offset),
        cmocka_unit_test(test_headroom_wiped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
