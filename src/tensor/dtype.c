/* Element types: sizes, safetensors names, and exact conversions between f32 and the 16-bit float formats. */
#include "hone/tensor.h"

#include <string.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "hone reads and writes little-endian files by copying memory; big-endian hosts are not supported"
#endif

static const struct {
    const char *name;
    size_t size;
} dtype_info[HONE_DTYPE_COUNT] = {
    [HONE_DTYPE_F32] = {"F32", 4},   [HONE_DTYPE_F16] = {"F16", 2},         [HONE_DTYPE_BF16] = {"BF16", 2},
    [HONE_DTYPE_F64] = {"F64", 8},   [HONE_DTYPE_I64] = {"I64", 8},         [HONE_DTYPE_I32] = {"I32", 4},
    [HONE_DTYPE_I16] = {"I16", 2},   [HONE_DTYPE_I8] = {"I8", 1},           [HONE_DTYPE_U8] = {"U8", 1},
    [HONE_DTYPE_BOOL] = {"BOOL", 1}, [HONE_DTYPE_F8_E4M3] = {"F8_E4M3", 1}, [HONE_DTYPE_F8_E5M2] = {"F8_E5M2", 1},
    [HONE_DTYPE_U16] = {"U16", 2},   [HONE_DTYPE_U32] = {"U32", 4},         [HONE_DTYPE_U64] = {"U64", 8},
};

size_t hone_dtype_size(hone_dtype t) { return (unsigned)t < HONE_DTYPE_COUNT ? dtype_info[t].size : 0; }

const char *hone_dtype_name(hone_dtype t) { return (unsigned)t < HONE_DTYPE_COUNT ? dtype_info[t].name : "?"; }

int hone_dtype_from_name(const char *name, hone_dtype *out) {
    for (int t = 0; t < HONE_DTYPE_COUNT; t++) {
        if (strcmp(name, dtype_info[t].name) == 0) {
            *out = (hone_dtype)t;
            return 1;
        }
    }
    return 0;
}

static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float hone_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    if (exp == 0) {
        /* Zero or subnormal: mant × 2^-24 is exact in f32, and integer arithmetic keeps it independent of
         * the FPU's flush-to-zero settings. */
        if (mant == 0) return bits_f32(sign);
        int shift = 0;
        while (!(mant & 0x400)) {
            mant <<= 1;
            shift++;
        }
        return bits_f32(sign | (uint32_t)(113 - shift) << 23 | (mant & 0x3ff) << 13);
    }
    if (exp == 31) return bits_f32(sign | 0x7f800000 | mant << 13); /* inf, or NaN keeping its payload */
    return bits_f32(sign | (exp + 112) << 23 | mant << 13);
}

uint16_t hone_f32_to_f16(float f) {
    uint32_t x = f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7fffffff;
    if (ax > 0x7f800000) return sign | 0x7e00 | (uint16_t)((ax >> 13) & 0x3ff); /* NaN stays a quiet NaN */
    /* 65520 is halfway between the largest f16 (65504, odd mantissa) and 2^16, so it and above round to inf. */
    if (ax >= 0x477ff000) return sign | 0x7c00;
    uint32_t e = ax >> 23;
    uint32_t m = (ax & 0x7fffff) | 0x800000;
    if (e < 113) {
        /* f16 subnormal: round m × 2^(e-150) to a multiple of 2^-24. Below 2^-25 everything rounds to zero. */
        if (e < 102) return sign;
        uint32_t shift = 126 - e, r = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1))) r++;
        return sign | (uint16_t)r; /* r may carry into 0x400, the smallest normal, which is correct */
    }
    uint32_t h = (e - 112) << 10 | (ax & 0x7fffff) >> 13, rem = ax & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++; /* a carry into the exponent is the correct rounding */
    return sign | (uint16_t)h;
}

/* Below this many elements, starting threads costs more than the conversion. */
#define PARALLEL_MIN (1 << 16)

int hone_convert_to_f32(float *dst, const void *src, hone_dtype src_type, size_t n) {
    const uint8_t *s = src;
    /* Elements are read with memcpy because tensors in a mapped file need not be aligned. */
    switch (src_type) {
    case HONE_DTYPE_F32:
        if (n) memmove(dst, src, n * sizeof(float));
        return 1;
    case HONE_DTYPE_F16:
#pragma omp parallel for schedule(static) if (n >= PARALLEL_MIN)
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, s + 2 * i, 2);
            dst[i] = hone_f16_to_f32(h);
        }
        return 1;
    case HONE_DTYPE_BF16:
#pragma omp parallel for schedule(static) if (n >= PARALLEL_MIN)
        for (size_t i = 0; i < n; i++) {
            uint16_t b;
            memcpy(&b, s + 2 * i, 2);
            dst[i] = hone_bf16_to_f32(b);
        }
        return 1;
    case HONE_DTYPE_F64:
#pragma omp parallel for schedule(static) if (n >= PARALLEL_MIN)
        for (size_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, s + 8 * i, 8);
            dst[i] = (float)d;
        }
        return 1;
    default:
        return 0;
    }
}
