/* tensor/dtype: names, sizes, and bit-exact f16/bf16 <-> f32 conversions. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "hone/tensor.h"

static uint32_t bits_of(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float float_of(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static void test_names_and_sizes(void **state) {
    (void)state;
    for (int t = 0; t < HONE_DTYPE_COUNT; t++) {
        hone_dtype back;
        assert_true(hone_dtype_from_name(hone_dtype_name((hone_dtype)t), &back));
        assert_int_equal(back, t);
        assert_true(hone_dtype_size((hone_dtype)t) >= 1);
    }
    assert_string_equal(hone_dtype_name(HONE_DTYPE_BF16), "BF16");
    assert_string_equal(hone_dtype_name(HONE_DTYPE_F8_E4M3), "F8_E4M3");
    assert_int_equal(hone_dtype_size(HONE_DTYPE_F32), 4);
    assert_int_equal(hone_dtype_size(HONE_DTYPE_F16), 2);
    assert_int_equal(hone_dtype_size(HONE_DTYPE_BF16), 2);
    assert_int_equal(hone_dtype_size(HONE_DTYPE_F64), 8);
    assert_int_equal(hone_dtype_size(HONE_DTYPE_BOOL), 1);
    assert_int_equal(hone_dtype_size(HONE_DTYPE_U64), 8);
    hone_dtype t;
    assert_false(hone_dtype_from_name("f32", &t)); /* the format's spelling is upper case */
    assert_false(hone_dtype_from_name("F4", &t));
    assert_false(hone_dtype_from_name("", &t));
}

static void test_f16_known_patterns(void **state) {
    (void)state;
    assert_true(hone_f16_to_f32(0x3c00) == 1.0f);
    assert_true(hone_f16_to_f32(0xc000) == -2.0f);
    assert_true(hone_f16_to_f32(0x7bff) == 65504.0f);
    assert_true(hone_f16_to_f32(0x3555) == 0x1.554p-2f);
    assert_true(hone_f16_to_f32(0x0001) == 0x1p-24f);   /* smallest subnormal */
    assert_true(hone_f16_to_f32(0x03ff) == 0x3ffp-24f); /* largest subnormal */
    assert_true(hone_f16_to_f32(0x0400) == 0x1p-14f);   /* smallest normal */
    assert_true(hone_f16_to_f32(0x8001) == -0x1p-24f);
    assert_true(isinf(hone_f16_to_f32(0x7c00)) && hone_f16_to_f32(0x7c00) > 0);
    assert_true(isinf(hone_f16_to_f32(0xfc00)) && hone_f16_to_f32(0xfc00) < 0);
    assert_true(isnan(hone_f16_to_f32(0x7e00)));
    assert_true(isnan(hone_f16_to_f32(0x7c01))); /* signalling NaN stays NaN, not inf */
    assert_int_equal(bits_of(hone_f16_to_f32(0x8000)), 0x80000000u);
    assert_int_equal(bits_of(hone_f16_to_f32(0x0000)), 0);
}

static void test_f32_to_f16_rounding(void **state) {
    (void)state;
    assert_int_equal(hone_f32_to_f16(1.0f), 0x3c00);
    assert_int_equal(hone_f32_to_f16(-2.0f), 0xc000);
    assert_int_equal(hone_f32_to_f16(65504.0f), 0x7bff);
    assert_int_equal(hone_f32_to_f16(65519.99f), 0x7bff);
    assert_int_equal(hone_f32_to_f16(65520.0f), 0x7c00); /* tie above the largest finite: to even = inf */
    assert_int_equal(hone_f32_to_f16(1e10f), 0x7c00);
    assert_int_equal(hone_f32_to_f16(-INFINITY), 0xfc00);
    assert_int_equal(hone_f32_to_f16(1.0f + 0x1p-11f), 0x3c00);     /* tie, to even (down) */
    assert_int_equal(hone_f32_to_f16(1.0f + 3 * 0x1p-11f), 0x3c02); /* tie, to even (up) */
    assert_int_equal(hone_f32_to_f16(1.0f + 0x1p-11f + 0x1p-20f), 0x3c01);
    assert_int_equal(hone_f32_to_f16(0x1p-24f), 0x0001);
    assert_int_equal(hone_f32_to_f16(0x1p-25f), 0x0000); /* tie between 0 and 2^-24: to 0 */
    assert_int_equal(hone_f32_to_f16(0x1.8p-25f), 0x0001);
    assert_int_equal(hone_f32_to_f16(0x1.8p-24f), 0x0002);   /* tie between 1 and 2 units: to 2 */
    assert_int_equal(hone_f32_to_f16(0x3ff.8p-24f), 0x0400); /* rounds up into the normals */
    assert_int_equal(hone_f32_to_f16(1e-30f), 0x0000);
    assert_int_equal(hone_f32_to_f16(-1e-30f), 0x8000);
    assert_int_equal(hone_f32_to_f16(FLT_TRUE_MIN), 0x0000);
    uint16_t nan = hone_f32_to_f16(NAN);
    assert_true((nan & 0x7c00) == 0x7c00 && (nan & 0x3ff) != 0);
    /* A NaN whose payload lives only in the low f32 bits must not become inf. */
    uint16_t low_nan = hone_f32_to_f16(float_of(0x7f800001));
    assert_true((low_nan & 0x7c00) == 0x7c00 && (low_nan & 0x3ff) != 0);
}

/* Every f16 survives f16 -> f32 -> f16 unchanged. */
static void test_f16_round_trip_exhaustive(void **state) {
    (void)state;
    for (uint32_t h = 0; h < 0x10000; h++) {
        float f = hone_f16_to_f32((uint16_t)h);
        if (isnan(f)) {
            uint16_t back = hone_f32_to_f16(f);
            assert_true((back & 0x7c00) == 0x7c00 && (back & 0x3ff) != 0);
            continue;
        }
        if (hone_f32_to_f16(f) != h) fail_msg("f16 0x%04x -> %a -> 0x%04x", h, f, hone_f32_to_f16(f));
    }
}

/* Every 997th f32 bit pattern: the result is the nearer f16 neighbour, ties to the even one (values from 65520
 * up round to inf, as if 2^16 were the next f16); and it matches the compiler's conversion where it has one. */
static void test_f32_to_f16_matches_reference(void **state) {
    (void)state;
    for (uint64_t x = 0; x <= 0xffffffffu; x += 997) {
        float f = float_of((uint32_t)x);
        if (isnan(f)) continue;
        uint16_t h = hone_f32_to_f16(f), mag = h & 0x7fff;
        if ((h >> 15) != (x >> 31)) fail_msg("f32 %a: sign lost (0x%04x)", f, h);
        double a = fabs((double)f);
        if (mag == 0x7c00) {
            if (a < 65520.0) fail_msg("f32 %a: rounded to inf", f);
        } else {
            double err = fabs(a - hone_f16_to_f32(mag));
            double up = fabs(a - (mag < 0x7bff ? hone_f16_to_f32(mag + 1) : 65536.0));
            double down = mag > 0 ? fabs(a - hone_f16_to_f32(mag - 1)) : INFINITY;
            if (err > up || err > down || ((err == up || err == down) && (mag & 1)))
                fail_msg("f32 %a: 0x%04x is not the nearest-even f16", f, h);
        }
#ifdef __FLT16_MAX__
        _Float16 ref = (_Float16)f;
        uint16_t ref_bits;
        memcpy(&ref_bits, &ref, 2);
        if (h != ref_bits) fail_msg("f32 %a: got 0x%04x, the compiler gives 0x%04x", f, h, ref_bits);
#endif
    }
}

static void test_bf16_known_patterns_and_rounding(void **state) {
    (void)state;
    assert_true(hone_bf16_to_f32(0x3f80) == 1.0f);
    assert_true(hone_bf16_to_f32(0xc040) == -3.0f);
    assert_true(hone_bf16_to_f32(0x0001) == 0x1p-133f); /* subnormal */
    assert_true(isinf(hone_bf16_to_f32(0x7f80)));
    assert_true(isnan(hone_bf16_to_f32(0x7fc0)));
    assert_int_equal(hone_f32_to_bf16(1.0f), 0x3f80);
    assert_int_equal(hone_f32_to_bf16(1.0f + 0x1p-8f), 0x3f80);     /* tie, to even (down) */
    assert_int_equal(hone_f32_to_bf16(1.0f + 3 * 0x1p-8f), 0x3f82); /* tie, to even (up) */
    assert_int_equal(hone_f32_to_bf16(1.0f + 0x1p-8f + 0x1p-20f), 0x3f81);
    assert_int_equal(hone_f32_to_bf16(FLT_MAX), 0x7f80);
    assert_int_equal(hone_f32_to_bf16(-INFINITY), 0xff80);
    assert_int_equal(hone_f32_to_bf16(FLT_TRUE_MIN), 0x0000);
    uint16_t nan = hone_f32_to_bf16(float_of(0x7f800001)); /* truncation alone would give inf */
    assert_true((nan & 0x7f80) == 0x7f80 && (nan & 0x7f) != 0);
    for (uint32_t b = 0; b < 0x10000; b++) {
        float f = hone_bf16_to_f32((uint16_t)b);
        if (!isnan(f) && hone_f32_to_bf16(f) != b) fail_msg("bf16 0x%04x did not round-trip", b);
    }
}

static void test_convert_to_f32(void **state) {
    (void)state;
    /* Large enough for the parallel path, and offset by one byte to exercise unaligned reads. */
    size_t n = 200001;
    uint8_t *raw = malloc(8 * n + 1);
    float *got = malloc(n * sizeof(float));
    float *want = malloc(n * sizeof(float));
    hone_rng r = hone_rng_new(1, 0);
    for (size_t i = 0; i < n; i++) {
        uint16_t h = (uint16_t)hone_rng_u64(&r);
        memcpy(raw + 1 + 2 * i, &h, 2);
        want[i] = hone_f16_to_f32(h);
    }
    assert_true(hone_convert_to_f32(got, raw + 1, HONE_DTYPE_F16, n));
    for (size_t i = 0; i < n; i++)
        if (bits_of(got[i]) != bits_of(want[i])) fail_msg("F16 element %zu differs", i);
    for (size_t i = 0; i < n; i++) {
        uint16_t b;
        memcpy(&b, raw + 1 + 2 * i, 2);
        want[i] = hone_bf16_to_f32(b);
    }
    assert_true(hone_convert_to_f32(got, raw + 1, HONE_DTYPE_BF16, n));
    for (size_t i = 0; i < n; i++)
        if (bits_of(got[i]) != bits_of(want[i])) fail_msg("BF16 element %zu differs", i);
    for (size_t i = 0; i < n; i++) {
        double d = (hone_rng_uniform(&r) - 0.5) * 1e6;
        memcpy(raw + 1 + 8 * i, &d, 8);
        want[i] = (float)d;
    }
    assert_true(hone_convert_to_f32(got, raw + 1, HONE_DTYPE_F64, n));
    test_assert_close(got, want, n, 0, 0, "F64 -> F32");
    assert_true(hone_convert_to_f32(got, want, HONE_DTYPE_F32, n));
    test_assert_close(got, want, n, 0, 0, "F32 copy");
    assert_false(hone_convert_to_f32(got, raw, HONE_DTYPE_I32, 4));
    assert_false(hone_convert_to_f32(got, raw, HONE_DTYPE_F8_E4M3, 4));
    free(raw);
    free(got);
    free(want);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_and_sizes),
        cmocka_unit_test(test_f16_known_patterns),
        cmocka_unit_test(test_f32_to_f16_rounding),
        cmocka_unit_test(test_f16_round_trip_exhaustive),
        cmocka_unit_test(test_f32_to_f16_matches_reference),
        cmocka_unit_test(test_bf16_known_patterns_and_rounding),
        cmocka_unit_test(test_convert_to_f32),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
