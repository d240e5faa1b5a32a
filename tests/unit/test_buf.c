/* tests/unit/test_buf.c — common/buf.c: lazy storage, bounds, compaction,
 * cut and insert at every offset, the pool of relay-sized blocks, and the
 * wipe of every byte ever written (up to the high-water mark) before a
 * block goes back to malloc.  free() is wrapped (-Wl,--wrap=free, see the
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
