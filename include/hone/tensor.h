/* hone/tensor.h — element types and conversions. */
#ifndef HONE_TENSOR_H
#define HONE_TENSOR_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The element types of safetensors files. Only the floating types convert to f32. */
typedef enum {
    HONE_DTYPE_F32 = 0,
    HONE_DTYPE_F16,
    HONE_DTYPE_BF16,
    HONE_DTYPE_F64,
    HONE_DTYPE_I64,
    HONE_DTYPE_I32,
    HONE_DTYPE_I16,
    HONE_DTYPE_I8,
    HONE_DTYPE_U8,
    HONE_DTYPE_BOOL,
    HONE_DTYPE_F8_E4M3,
    HONE_DTYPE_F8_E5M2,
    HONE_DTYPE_U16,
    HONE_DTYPE_U32,
    HONE_DTYPE_U64,
    HONE_DTYPE_COUNT
} hone_dtype;

size_t hone_dtype_size(hone_dtype t);
const char *hone_dtype_name(hone_dtype t);              /* safetensors spelling: "F32", "BF16", ... */
int hone_dtype_from_name(const char *name, hone_dtype *out); /* 1 when known */

float hone_f16_to_f32(uint16_t h);
uint16_t hone_f32_to_f16(float f); /* round to nearest even */

/* bf16 <-> f32 are inline: they sit in the inner loops of merges and of the bf16 base's kernels, where a call per
 * element keeps the loops from vectorising (2.5x slower for a bf16 linear merge). */
static inline float hone_bf16_to_f32(uint16_t b) {
    uint32_t x = (uint32_t)b << 16;
    float f;
    memcpy(&f, &x, 4);
    return f;
}

/* round to nearest even; NaN stays NaN (truncating its payload could make it inf) */
static inline uint16_t hone_f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 0x40);
    return (uint16_t)((x + 0x7fff + ((x >> 16) & 1)) >> 16);
}

/* Converts n elements of a floating dtype (F32, F16, BF16, F64) to f32; returns 0 for other dtypes. */
int hone_convert_to_f32(float *dst, const void *src, hone_dtype src_type, size_t n);

/* A contiguous run of parameters (one tensor). Weight decay applies only where decay != 0; the model sets it
 * for tensors with >= 2 dimensions (matrices and embeddings), not for biases and norm gains. Elements that no
 * segment covers are left untouched by hone_optim_step. */
typedef struct {
    size_t offset, size;
    int decay;
} hone_param_segment;

/* Sets the thread count of both OpenMP loops and the BLAS (n <= 0: the number of cores). Returns it. */
int hone_threads_set(int n);

#ifdef __cplusplus
}
#endif
#endif
