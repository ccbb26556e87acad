/* CPU kernels: forward and backward of each op, fp32. Shapes are in the comment above each function;
 * N = number of rows (B*T). Backward functions accumulate (+=) into parameter gradients and, unless said
 * otherwise, overwrite input gradients. */
#ifndef HONE_OPS_H
#define HONE_OPS_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "hone/tensor.h"

/* A frozen weight matrix w[rows, cols] read where it lies (a memory-mapped checkpoint, or a bf16 buffer): up to
 * OP_MATRIX_PARTS ranges of rows ("parts") in order, each of its own float dtype (F32, F16, BF16), row-major
 * [part rows, cols] or stored transposed [cols, part rows] (GPT-2's Conv1D). A fused qkv read from a checkpoint is
 * the parts q, k and v; gate|up is gate and up. Data need not be aligned. */
#define OP_MATRIX_PARTS 3
typedef struct {
    const void *data;
    hone_dtype dtype;
    int rows, transposed;
} op_matrix_part;
typedef struct {
    op_matrix_part part[OP_MATRIX_PARTS];
    int n_parts; /* 0: not a frozen matrix */
} op_matrix;
/* dst[rows, cols] (row-major) = w[r0 : r0 + rows, c0 : c0 + cols] widened to f32; w has `width` columns. One thread. */
void op_matrix_widen(float *dst, const op_matrix *w, int r0, int rows, int c0, int cols, int width);

/* e^x within 1 ulp of expf on [-87, 88]; 0 below -87 (where expf is under 1e-38), +inf above 88, NaN for NaN.
 * Cody-Waite reduction x = k ln2 + r, |r| <= ln2 / 2, Cephes' polynomial for e^r, and 2^k put into the exponent
 * bits. Branch-free, so that loops over it vectorize: glibc's expf is one call per element, which made SiLU and the
 * softmaxes (attention, the loss head) a quarter of a small model's training step. */
static inline float op_exp(float x) {
    const float xc = x > -87.0f ? (x < 88.0f ? x : 88.0f) : -87.0f;          /* NaN: -87, replaced below */
    const float k = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f; /* round to nearest: + 1.5 * 2^23 */
    const float r = fmaf(k, -1.428606765330187045e-06f, fmaf(k, -0.693145751953125f, xc)); /* ln2 in two parts */
    float p = 1.9875691500e-4f;
    p = fmaf(p, r, 1.3981999507e-3f);
    p = fmaf(p, r, 8.3334519073e-3f);
    p = fmaf(p, r, 4.1665795894e-2f);
    p = fmaf(p, r, 1.6666665459e-1f);
    p = fmaf(p, r, 5.0000001201e-1f);
    p = fmaf(p, r * r, r) + 1.0f;
    const int32_t bits = ((int32_t)k + 127) << 23; /* k in [-126, 127]: a normal power of two */
    float two_k;
    memcpy(&two_k, &bits, sizeof two_k);
    float y = p * two_k;
    y = x < -87.0f ? 0.0f : y;
    y = x > 88.0f ? INFINITY : y;
    return x == x ? y : x;
}

/* out[N,C] = wte[ids[n]] (+ wpe[pos[n]] when wpe != NULL; pos NULL = n % T) */
void op_embedding_forward(float *out, const int32_t *ids, const float *wte, const float *wpe, const int32_t *pos,
                          int N, int T, int C);
/* The same with a frozen wte (each row read is widened to f32). */
void op_embedding_forward_frozen(float *out, const int32_t *ids, const op_matrix *wte, const float *wpe,
                                 const int32_t *pos, int N, int T, int C);
/* dwte[ids[n]] += dout[n]; dwpe[pos[n]] += dout[n] (pos NULL: n % T) */
void op_embedding_backward(float *dwte, float *dwpe, const float *dout, const int32_t *ids, const int32_t *pos, int N,
                           int T, int C);

/* out[N,C] = (x - mean) * rstd * w + b; saves mean[N], rstd[N] (either may be NULL at inference) */
void op_layernorm_forward(float *out, float *mean, float *rstd, const float *x, const float *w, const float *b,
                          int N, int C, float eps);
/* dx[N,C] += ...; dw[C], db[C] += ... (dw, db NULL: frozen gains); scratch: op_norm_scratch_floats(C) floats */
void op_layernorm_backward(float *dx, float *dw, float *db, const float *dout, const float *x, const float *w,
                           const float *mean, const float *rstd, int N, int C, float *scratch);
/* out[N,C] = x * rstd * w, rstd = 1/sqrt(mean(x^2) + eps); saves rstd[N] (may be NULL) */
void op_rmsnorm_forward(float *out, float *rstd, const float *x, const float *w, int N, int C, float eps);
/* dx[N,C] += ...; dw[C] += ... (dw NULL: frozen gain); scratch: op_norm_scratch_floats(C) floats */
void op_rmsnorm_backward(float *dx, float *dw, const float *dout, const float *x, const float *w,
                         const float *rstd, int N, int C, float *scratch);
/* Per-thread partial sums for the norm backward passes. */
size_t op_norm_scratch_floats(int C);

/* out[N,OC] = x[N,IC] @ w[OC,IC]^T + b[OC] (b may be NULL) */
void op_linear_forward(float *out, const float *x, const float *w, const float *b, int N, int IC, int OC);
/* dx[N,IC] (+= when accumulate) dout @ w; dw[OC,IC] += dout^T @ x; db[OC] += sum dout (dx, dw, db may be NULL:
 * dw NULL for frozen weights) */
void op_linear_backward(float *dx, float *dw, float *db, const float *dout, const float *x, const float *w,
                        int N, int IC, int OC, int accumulate);

/* The same with a frozen weight w[OC,IC] (the base under an adapter, op_matrix). No fp32 copy of w ever exists:
 * when every part is aligned F32 sgemm reads the parts where they lie; otherwise each thread widens up to
 * OP_FROZEN_TILE rows of w at a time into its slot of scratch [slots, OP_FROZEN_TILE, IC] and multiplies it with
 * sgemm; at most `slots` threads run. Frozen: there is no dw, so the backward computes dx only (+= when
 * accumulate). */
#define OP_FROZEN_TILE 256
void op_linear_forward_frozen(float *out, const float *x, const op_matrix *w, const float *b, int N, int IC, int OC,
                              float *scratch, int slots);
void op_linear_backward_dx_frozen(float *dx, const float *dout, const op_matrix *w, int N, int IC, int OC,
                                  int accumulate, float *scratch, int slots);

/* Rotary embedding (Hugging Face rotate_half convention) applied in place to the first n_heads heads of
 * each row of x[N, stride] (head h at x + h*HD). cos/sin tables are [max_pos, HD/2]; pos[n] the position
 * of row n (NULL = n % T). inverse = 1 rotates by -theta (the backward pass). */
void op_rope(float *x, int N, int T, int stride, int n_heads, int HD, const float *cos_t, const float *sin_t,
             const int32_t *pos, int inverse);
void op_rope_tables(float *cos_t, float *sin_t, int max_pos, int HD, float theta);

/* Causal self-attention over qkv[B*T, (NH + 2*NKV)*HD] laid out q heads | k heads | v heads per row.
 * out[B*T, NH*HD]; att[B, NH, T, T] saves the probabilities for the backward (zero outside each row's window within
 * its sample's square; entries outside the squares of a packed row are not written). pos[B*T] (NULL: t) are
 * position ids: the token at t attends to [t - pos, t], so rows packed with several samples whose positions
 * restart at 0 keep each sample to itself, and such a row costs the sum of its samples' squares. */
void op_attention_forward(float *out, float *att, const float *qkv, const int32_t *pos, int B, int T, int NH, int NKV,
                          int HD, float scale);
/* dqkv[B*T, (NH+2NKV)*HD] = gradient of qkv (overwritten); pos as given to the forward. scratch:
 * op_attention_scratch_floats(T) floats */
void op_attention_backward(float *dqkv, const float *dout, const float *qkv, const float *att, const int32_t *pos,
                           int B, int T, int NH, int NKV, int HD, float scale, float *scratch);
size_t op_attention_scratch_floats(int T);
/* Prefix tuning: n learned key/value slots in front of every sample, seen by every query (each row's softmax runs
 * over the n slots plus its causal window). Slot i of kv head h: k + i*stride + h*HD (likewise v). dk, dv (NULL:
 * no prefix gradients) accumulate (+=) the gradients of the slots, laid out like k and v. */
typedef struct {
    const float *k, *v;
    float *dk, *dv;
    int n, stride;
} op_prefix;
/* op_attention_forward with a prefix (NULL: none): att is [B, NH, T, n + T], prefix columns first. */
void op_attention_prefix_forward(float *out, float *att, const float *qkv, const int32_t *pos, int B, int T, int NH,
                                 int NKV, int HD, float scale, const op_prefix *prefix);
/* op_attention_backward with a prefix; scratch: op_attention_prefix_scratch_floats(B, T, NH, n) floats. */
void op_attention_prefix_backward(float *dqkv, const float *dout, const float *qkv, const float *att,
                                  const int32_t *pos, int B, int T, int NH, int NKV, int HD, float scale,
                                  float *scratch, const op_prefix *prefix);
size_t op_attention_prefix_scratch_floats(int B, int T, int NH, int n);
/* n new query rows q[n, NH*HD] at positions pos0..pos0+n-1 against cached keys/values
 * k_cache, v_cache [NKV, max_len, HD] holding positions 0..pos0+n-1. out[n, NH*HD]; scratch[n_threads * len] */
void op_attention_cached(float *out, const float *q, int q_stride, const float *k_cache, const float *v_cache,
                         int n, int pos0, int max_len, int NH, int NKV, int HD, float scale, float *scratch);

typedef enum { OP_ACT_GELU_TANH = 0, OP_ACT_GELU_ERF, OP_ACT_RELU, OP_ACT_SILU } op_activation;
/* out[N*C] = act(x) */
void op_activation_forward(float *out, const float *x, size_t n, op_activation act);
/* dx = dout * act'(x) */
void op_activation_backward(float *dx, const float *dout, const float *x, size_t n, op_activation act);
/* Gated MLP: gu[N, 2I] = gate | up; out[N, I] = act(gate) * up */
void op_glu_forward(float *out, const float *gu, int N, int I, op_activation act);
/* dgu[N, 2I] from dout[N, I] */
void op_glu_backward(float *dgu, const float *dout, const float *gu, int N, int I, op_activation act);

/* y[n] += x[n] */
void op_add_inplace(float *y, const float *x, size_t n);

#endif
