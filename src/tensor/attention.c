/* Causal scaled dot-product attention with grouped-query heads: query head h reads key/value head h / (NH / NKV),
 * optionally with a learned prefix of keys and values before every sample (prefix tuning). Probabilities are kept
 * for the backward pass, which costs O(T^2 * HD) per head. */
#include "tensor/ops.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

static inline float dot(const float *a, const float *b, int n) {
    float s = 0;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

static inline void axpy(float *y, float a, const float *x, int n) {
    for (int i = 0; i < n; i++) y[i] += a * x[i];
}

/* p[i] = e^(p[i] - mx) for i in [0, len); returns their sum (vectorized: lanes sum in their own order). */
static inline float exp_shifted_sum(float *p, int len, float mx) {
    float sum = 0;
#pragma omp simd reduction(+ : sum)
    for (int i = 0; i < len; i++) {
        p[i] = op_exp(p[i] - mx);
        sum += p[i];
    }
    return sum;
}

static inline void scale_in_place(float *p, int len, float s) {
    for (int i = 0; i < len; i++) p[i] *= s;
}

/* Softmax of scores[0..len) in place (scores already scaled). */
static inline void softmax_inplace(float *p, int len) {
    float mx = -INFINITY;
    for (int i = 0; i < len; i++) mx = p[i] > mx ? p[i] : mx;
    scale_in_place(p, len, 1.0f / exp_shifted_sum(p, len, mx));
}

/* Softmax of a row of scores in place (scores already scaled) over the live entries: the n prefix slots and
 * [lo, hi]; the rest of [start, end) becomes 0 — the row's part of its sample's square, which is all that the
 * products with V and the backward read (entries outside it are left as they are). With n = 0 this is
 * softmax_inplace on [lo, hi] bit for bit. */
static inline void softmax_window(float *p, int n, int start, int lo, int hi, int end) {
    float mx = -INFINITY;
    for (int i = 0; i < n; i++) mx = p[i] > mx ? p[i] : mx;
    for (int i = lo; i <= hi; i++) mx = p[i] > mx ? p[i] : mx;
    const float sum = exp_shifted_sum(p, n, mx) + exp_shifted_sum(p + lo, hi - lo + 1, mx);
    const float inv = 1.0f / sum;
    scale_in_place(p, n, inv);
    scale_in_place(p + lo, hi - lo + 1, inv);
    for (int i = start; i < lo; i++) p[i] = 0;
    for (int i = hi + 1; i < end; i++) p[i] = 0;
}

/* softmax_window's backward for one row: d holds dP on the live entries and becomes d(score) = P * (dP - sum(P *
 * dP)) * scale there, 0 on the rest of [start, end). */
static inline void softmax_window_backward(float *d, const float *p, int n, int start, int lo, int hi, int end,
                                           float scale) {
    float sum = 0;
#pragma omp simd reduction(+ : sum)
    for (int i = 0; i < n; i++) sum += p[i] * d[i];
#pragma omp simd reduction(+ : sum)
    for (int i = lo; i <= hi; i++) sum += p[i] * d[i];
    for (int i = 0; i < n; i++) d[i] = p[i] * (d[i] - sum) * scale;
    for (int i = lo; i <= hi; i++) d[i] = p[i] * (d[i] - sum) * scale;
    for (int i = start; i < lo; i++) d[i] = 0;
    for (int i = hi + 1; i < end; i++) d[i] = 0;
}

/* Does pos[0..T) describe whole samples laid end to end (0, 1, 2, ..., 0, 1, ...)? Then a sample's tokens attend
 * only to each other and attention can run sample by sample. */
static int whole_samples(const int32_t *pos, int T) {
    for (int t = 0; t < T; t++)
        if (pos[t] != 0 && (t == 0 || pos[t] != pos[t - 1] + 1)) return 0;
    return 1;
}

/* The end of the sample that starts at s0: where pos next restarts, or T (the whole row when it is not packed). */
static int sample_end(const int32_t *row_pos, int packed, int s0, int T) {
    if (!packed) return T;
    int s1 = s0 + 1;
    while (s1 < T && row_pos[s1] != 0) s1++;
    return s1;
}

/* Per (batch, head): scores = Q [K_prefix | K]^T over the whole T×(n+T) rectangle (GEMMs beat skipping the masked
 * half at the sizes that matter) — or, for a row of packed samples, over each sample's square on the diagonal only
 * (the rest is masked: a row of short samples costs the sum of their squares, not T²) —, softmax row by row over the
 * prefix and the causal window (which zeroes everything else), then out = P [V_prefix | V], again sample by sample
 * for packed rows. The GEMMs run single-threaded inside the parallel loop (OpenMP OpenBLAS does so by itself in a
 * parallel region). Without a prefix the extra GEMMs are skipped and the result is that of plain attention. */
void op_attention_prefix_forward(float *out, float *att, const float *qkv, const int32_t *pos, int B, int T, int NH,
                                 int NKV, int HD, float scale, const op_prefix *prefix) {
    const int S = (NH + 2 * NKV) * HD, group = NH / NKV, n = prefix ? prefix->n : 0, W = n + T;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            const int kvh = h / group;
            const float *base = qkv + (size_t)b * T * S;
            const float *q = base + (size_t)h * HD;
            const float *k = base + (size_t)NH * HD + (size_t)kvh * HD;
            const float *v = base + (size_t)(NH + NKV) * HD + (size_t)kvh * HD;
            float *P = att + ((size_t)b * NH + h) * T * W;
            float *y = out + (size_t)b * T * NH * HD + (size_t)h * HD;
            const int32_t *row_pos = pos ? pos + (size_t)b * T : NULL;
            const int packed = row_pos && whole_samples(row_pos, T);
            if (n)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, n, HD, scale, q, S,
                            prefix->k + (size_t)kvh * HD, prefix->stride, 0.0f, P, W);
            for (int s0 = 0, s1; s0 < T; s0 = s1) {
                s1 = sample_end(row_pos, packed, s0, T);
                const size_t at = (size_t)s0 * W + n + s0;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, s1 - s0, s1 - s0, HD, scale, q + (size_t)s0 * S, S,
                            k + (size_t)s0 * S, S, 0.0f, P + at, W);
                for (int t = s0; t < s1; t++) {
                    const int first = row_pos ? t - row_pos[t] : 0;
                    softmax_window(P + (size_t)t * W, n, n + s0, n + first, n + t, n + s1);
                }
            }
            if (n)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, HD, n, 1.0f, P, W,
                            prefix->v + (size_t)kvh * HD, prefix->stride, 0.0f, y, NH * HD);
            for (int s0 = 0, s1; s0 < T; s0 = s1) {
                s1 = sample_end(row_pos, packed, s0, T);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s1 - s0, HD, s1 - s0, 1.0f,
                            P + (size_t)s0 * W + n + s0, W, v + (size_t)s0 * S, S, n ? 1.0f : 0.0f,
                            y + (size_t)s0 * NH * HD, NH * HD);
            }
        }
}

void op_attention_forward(float *out, float *att, const float *qkv, const int32_t *pos, int B, int T, int NH, int NKV,
                          int HD, float scale) {
    op_attention_prefix_forward(out, att, qkv, pos, B, T, NH, NKV, HD, scale, NULL);
}

size_t op_attention_scratch_floats(int T) { return op_attention_prefix_scratch_floats(1, T, 1, 0); }

size_t op_attention_prefix_scratch_floats(int B, int T, int NH, int n) {
    return (size_t)omp_get_max_threads() * T * (n + T) + (size_t)B * NH * T * n;
}

void op_attention_backward(float *dqkv, const float *dout, const float *qkv, const float *att, const int32_t *pos,
                           int B, int T, int NH, int NKV, int HD, float scale, float *scratch) {
    op_attention_prefix_backward(dqkv, dout, qkv, att, pos, B, T, NH, NKV, HD, scale, scratch, NULL);
}

/* The forward's blocks in reverse: for a row of packed samples every product runs over each sample's square on
 * the diagonal only, as in the forward (which left the probabilities outside those squares unwritten). */
void op_attention_prefix_backward(float *dqkv, const float *dout, const float *qkv, const float *att,
                                  const int32_t *pos, int B, int T, int NH, int NKV, int HD, float scale,
                                  float *scratch, const op_prefix *prefix) {
    const int S = (NH + 2 * NKV) * HD, group = NH / NKV, OS = NH * HD, n = prefix ? prefix->n : 0, W = n + T;
    /* d(score) of the prefix columns of every (batch, head), kept for the prefix gradients below */
    float *dS_prefix = scratch + (size_t)omp_get_max_threads() * T * W;
    /* One task per (batch, kv head): it owns the key/value gradients of that head and the query gradients
     * of its query heads, so no two threads write the same element. */
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int kvh = 0; kvh < NKV; kvh++) {
            float *dS = scratch + (size_t)omp_get_thread_num() * T * W;
            const float *base = qkv + (size_t)b * T * S;
            float *dbase = dqkv + (size_t)b * T * S;
            const float *k = base + (size_t)NH * HD + (size_t)kvh * HD;
            const float *v = base + (size_t)(NH + NKV) * HD + (size_t)kvh * HD;
            float *dk = dbase + (size_t)NH * HD + (size_t)kvh * HD;
            float *dv = dbase + (size_t)(NH + NKV) * HD + (size_t)kvh * HD;
            const int32_t *row_pos = pos ? pos + (size_t)b * T : NULL;
            const int packed = row_pos && whole_samples(row_pos, T);
            for (int h = kvh * group; h < (kvh + 1) * group; h++) {
                const float *P = att + ((size_t)b * NH + h) * T * W;
                const float *dy = dout + (size_t)b * T * OS + (size_t)h * HD;
                const float *q = base + (size_t)h * HD;
                float *dq = dbase + (size_t)h * HD;
                const float first_head = h == kvh * group ? 0.0f : 1.0f; /* the group's first head overwrites dK, dV */
                /* dP = dY [V_prefix | V]^T, then d(score) = P * (dP - sum(P * dP)) * scale, row by row */
                if (n)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, n, HD, 1.0f, dy, OS,
                                prefix->v + (size_t)kvh * HD, prefix->stride, 0.0f, dS, W);
                for (int s0 = 0, s1; s0 < T; s0 = s1) {
                    s1 = sample_end(row_pos, packed, s0, T);
                    const int L = s1 - s0;
                    const size_t at = (size_t)s0 * W + n + s0, rows = (size_t)s0 * S;
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, L, L, HD, 1.0f, dy + (size_t)s0 * OS, OS,
                                v + rows, S, 0.0f, dS + at, W);
                    for (int t = s0; t < s1; t++)
                        softmax_window_backward(dS + (size_t)t * W, P + (size_t)t * W, n, n + s0,
                                                n + (row_pos ? t - row_pos[t] : 0), n + t, n + s1, scale);
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, L, HD, L, 1.0f, dS + at, W, k + rows, S,
                                0.0f, dq + rows, S);
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, L, HD, L, 1.0f, dS + at, W, q + rows, S,
                                first_head, dk + rows, S);
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, L, HD, L, 1.0f, P + at, W,
                                dy + (size_t)s0 * OS, OS, first_head, dv + rows, S);
                }
                if (n) {
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, HD, n, 1.0f, dS, W,
                                prefix->k + (size_t)kvh * HD, prefix->stride, 1.0f, dq, S);
                    float *keep = dS_prefix + ((size_t)b * NH + h) * T * n;
                    for (int t = 0; t < T; t++) memcpy(keep + (size_t)t * n, dS + (size_t)t * W, sizeof(float) * n);
                }
            }
        }
    if (!n || !prefix->dk) return;
    /* The prefix is shared by every sample: one task per kv head sums over the batch in a fixed order. */
#pragma omp parallel for schedule(static)
    for (int kvh = 0; kvh < NKV; kvh++)
        for (int b = 0; b < B; b++)
            for (int h = kvh * group; h < (kvh + 1) * group; h++) {
                const float *P = att + ((size_t)b * NH + h) * T * W;
                const float *q = qkv + (size_t)b * T * S + (size_t)h * HD;
                const float *dy = dout + (size_t)b * T * OS + (size_t)h * HD;
                const float *dSp = dS_prefix + ((size_t)b * NH + h) * T * n;
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, HD, T, 1.0f, dSp, n, q, S, 1.0f,
                            prefix->dk + (size_t)kvh * HD, prefix->stride);
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, HD, T, 1.0f, P, W, dy, OS, 1.0f,
                            prefix->dv + (size_t)kvh * HD, prefix->stride);
            }
}

void op_attention_cached(float *out, const float *q, int q_stride, const float *k_cache, const float *v_cache,
                         int n, int pos0, int max_len, int NH, int NKV, int HD, float scale, float *scratch) {
    const int group = NH / NKV;
#pragma omp parallel for collapse(2) schedule(static)
    for (int i = 0; i < n; i++)
        for (int h = 0; h < NH; h++) {
            float *p = scratch + (size_t)omp_get_thread_num() * max_len;
            const int kvh = h / group, len = pos0 + i + 1;
            const float *qh = q + (size_t)i * q_stride + (size_t)h * HD;
            const float *k = k_cache + (size_t)kvh * max_len * HD;
            const float *v = v_cache + (size_t)kvh * max_len * HD;
            for (int t2 = 0; t2 < len; t2++) p[t2] = dot(qh, k + (size_t)t2 * HD, HD) * scale;
            softmax_inplace(p, len);
            float *o = out + (size_t)i * NH * HD + (size_t)h * HD;
            memset(o, 0, sizeof(float) * HD);
            for (int t2 = 0; t2 < len; t2++) axpy(o, p[t2], v + (size_t)t2 * HD, HD);
        }
}
