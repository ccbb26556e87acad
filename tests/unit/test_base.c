/* base: errors, atomic files, RNG. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static void test_error_context(void **state) {
    (void)state;
    hone_status st = hone_errorf(HONE_ERR_FORMAT, "bad byte at %d", 7);
    assert_int_equal(st, HONE_ERR_FORMAT);
    hone_error_context(st, "reading %s", "x.bin");
    assert_string_equal(hone_error(), "reading x.bin: bad byte at 7");
}

static void test_atomic_write_replaces_whole_file(void **state) {
    (void)state;
    char *dir = test_tmpdir();
    char *path = hone_path_join(dir, "f.txt");
    TEST_OK(hone_file_write_atomic(path, "first", 5));
    hone_atomic_file af;
    TEST_OK(hone_atomic_open(&af, path));
    TEST_OK(hone_atomic_write(&af, "second", 6));
    /* Until commit, readers see the old content. */
    char *text;
    size_t n;
    TEST_OK(hone_file_read(path, &text, &n));
    assert_string_equal(text, "first");
    free(text);
    TEST_OK(hone_atomic_commit(&af));
    TEST_OK(hone_file_read(path, &text, &n));
    assert_string_equal(text, "second");
    free(text);
    free(path);
    test_tmpdir_remove(dir);
    free(dir);
}

static void test_rng_streams_are_reproducible_and_distinct(void **state) {
    (void)state;
    hone_rng a = hone_rng_new(42, 1), b = hone_rng_new(42, 1), c = hone_rng_new(42, 2);
    int same_ac = 0;
    for (int i = 0; i < 100; i++) {
        uint64_t x = hone_rng_u64(&a), y = hone_rng_u64(&b), z = hone_rng_u64(&c);
        assert_true(x == y);
        same_ac += x == z;
    }
    assert_true(same_ac == 0);
    hone_rng r = hone_rng_new(7, 0);
    double sum = 0, sumsq = 0;
    for (int i = 0; i < 20000; i++) {
        float u = hone_rng_uniform(&r);
        assert_true(u >= 0.0f && u < 1.0f);
        float g = hone_rng_normal(&r);
        sum += g;
        sumsq += (double)g * g;
    }
    assert_true(sum / 20000 < 0.05 && sum / 20000 > -0.05);
    assert_true(sumsq / 20000 > 0.95 && sumsq / 20000 < 1.05);
}

/* Parallel normal fill: the same values for any thread count, standard moments, counter advanced by n. */
static void test_rng_fill_normal(void **state) {
    (void)state;
    const size_t n = 100001;
    float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float));
    hone_rng r1 = hone_rng_new(5, 9), r2 = hone_rng_new(5, 9);
    omp_set_num_threads(1);
    hone_rng_fill_normal(&r1, a, n, 2.0f);
    omp_set_num_threads(2);
    hone_rng_fill_normal(&r2, b, n, 2.0f);
    assert_memory_equal(a, b, n * sizeof(float));
    assert_true(r1.counter == n + 1 && r2.counter == n + 1);
    double sum = 0, sumsq = 0;
    for (size_t i = 0; i < n; i++) {
        sum += a[i] / 2;
        sumsq += (double)a[i] / 2 * a[i] / 2;
    }
    assert_true(fabs(sum / n) < 0.02);
    assert_true(fabs(sumsq / n - 1) < 0.02);
    free(a);
    free(b);
}

/* Cache keys must not change between builds or hosts (pinned values), and every input bit, every length and the
 * seed must change the hash. */
static void test_hash128(void **state) {
    (void)state;
    uint64_t h[2], g[2];
    char hex[33];
    hone_hash128("", 0, 0, h);
    hone_hash128_hex(h, hex);
    assert_string_equal(hex, "20ba20800e87fe20ae7a414473d30f78");
    const char *fox = "The quick brown fox jumps over the lazy dog";
    hone_hash128(fox, strlen(fox), 0, h);
    hone_hash128_hex(h, hex);
    assert_string_equal(hex, "6f4c12380c73e3b127e34218aad9cf12");
    hone_hash128(fox, strlen(fox), 1, g);
    assert_true(g[0] != h[0] && g[1] != h[1]);

    uint8_t buf[100] = {0};
    uint64_t seen[100 * 8 + 101][2];
    size_t n = 0;
    for (size_t len = 0; len <= 100; len++) hone_hash128(buf, len, 0, seen[n++]); /* zero bytes of every length */
    for (size_t bit = 0; bit < 100 * 8; bit++) {
        buf[bit / 8] ^= (uint8_t)(1u << bit % 8);
        hone_hash128(buf, sizeof buf, 0, seen[n++]);
        buf[bit / 8] ^= (uint8_t)(1u << bit % 8);
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (seen[i][0] == seen[j][0] || seen[i][1] == seen[j][1]) fail_msg("hash collision between inputs %zu and %zu", i, j);
}

static void test_format_int32s(void **state) {
    (void)state;
    const int32_t v[] = {0, 7, -100, 2147483647, -2147483647 - 1, 50256};
    char buf[12 * 6 + 1];
    char *end = hone_format_int32s(buf, v, 6);
    *end = 0;
    assert_string_equal(buf, "0,7,-100,2147483647,-2147483648,50256");
    assert_ptr_equal(hone_format_int32s(buf, v, 0), buf);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_context),
        cmocka_unit_test(test_atomic_write_replaces_whole_file),
        cmocka_unit_test(test_rng_streams_are_reproducible_and_distinct),
        cmocka_unit_test(test_rng_fill_normal),
        cmocka_unit_test(test_hash128),
        cmocka_unit_test(test_format_int32s),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
