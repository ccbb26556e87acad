/* Causal scaled dot-product attention with grouped-query heads: query head h reads key/value head
 * h / (NH / NKV). Probabilities are kept for the backward pass, which costs O(T^2 * HD) per head. */
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

/* Softmax of scores[0..len) in place (scores already scaled). */
static inline void softmax_inplace(float *p, int len) {
    float mx = -INFINITY;
    for (int i = 0; i < len; i++) mx = p[i] > mx ? p[i] : mx;
    float sum = 0;
    for (int i = 0; i < len; i++) {
        p[i] = expf(p[i] - mx);
        sum += p[i];
    }
    float inv = 1.0f / sum;
    for (int i = 0; i < len; i++) p[i] *= inv;
}

/* Per (batch, head): scores = Q K^T over the whole T×T square (GEMMs beat skipping the masked half at the sizes
 * that matter), causal softmax row by row, then out = P V. The GEMMs run single-threaded inside the parallel
 * loop (OpenMP OpenBLAS does so by itself in a parallel region). */
void op_attention_forward(float *out, float *att, const float *qkv, const int32_t *pos, int B, int T, int NH, int NKV,
                          int HD, float scale) {
    const int S = (NH + 2 * NKV) * HD, group = NH / NKV;
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            const int kvh = h / group;
            const float *base = qkv + (size_t)b * T * S;
            const float *q = base + (size_t)h * HD;
            const float *k = base + (size_t)NH * HD + (size_t)kvh * HD;
            const float *v = base + (size_t)(NH + NKV) * HD + (size_t)kvh * HD;
            float *P = att + ((size_t)b * NH + h) * T * T;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, HD, scale, q, S, k, S, 0.0f, P, T);
            for (int t = 0; t < T; t++) {
                float *p = P + (size_t)t * T;
                const int first = pos ? t - pos[(size_t)b * T + t] : 0;
                for (int t2 = 0; t2 < first; t2++) p[t2] = 0;
                softmax_inplace(p + first, t - first + 1);
                for (int t2 = t + 1; t2 < T; t2++) p[t2] = 0;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, HD, T, 1.0f, P, T, v, S, 0.0f,
                        out + (size_t)b * T * NH * HD + (size_t)h * HD, NH * HD);
        }
}

size_t op_attention_scratch_floats(int T) { return (size_t)omp_get_max_threads() * T * T; }

void op_attention_backward(float *dqkv, const float *dout, const float *qkv, const float *att, int B, int T,
                           int NH, int NKV, int HD, float scale, float *scratch) {
    const int S = (NH + 2 * NKV) * HD, group = NH / NKV, OS = NH * HD;
    /* One task per (batch, kv head): it owns the key/value gradients of that head and the query gradients
     * of its query heads, so no two threads write the same element. */
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int kvh = 0; kvh < NKV; kvh++) {
            float *dS = scratch + (size_t)omp_get_thread_num() * T * T;
            const float *base = qkv + (size_t)b * T * S;
            float *dbase = dqkv + (size_t)b * T * S;
            const float *k = base + (size_t)NH * HD + (size_t)kvh * HD;
            const float *v = base + (size_t)(NH + NKV) * HD + (size_t)kvh * HD;
            float *dk = dbase + (size_t)NH * HD + (size_t)kvh * HD;
            float *dv = dbase + (size_t)(NH + NKV) * HD + (size_t)kvh * HD;
            for (int h = kvh * group; h < (kvh + 1) * group; h++) {
                const float *P = att + ((size_t)b * NH + h) * T * T;
                const float *dy = dout + (size_t)b * T * OS + (size_t)h * HD;
                const float *q = base + (size_t)h * HD;
                /* dP = dY V^T, then d(score) = P * (dP - sum(P * dP)) * scale, row by row */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, HD, 1.0f, dy, OS, v, S, 0.0f, dS, T);
                for (int t = 0; t < T; t++) {
                    const float *p = P + (size_t)t * T;
                    float *d = dS + (size_t)t * T;
                    float sum = 0;
                    for (int t2 = 0; t2 <= t; t2++) sum += p[t2] * d[t2];
                    for (int t2 = 0; t2 <= t; t2++) d[t2] = p[t2] * (d[t2] - sum) * scale;
                    for (int t2 = t + 1; t2 < T; t2++) d[t2] = 0;
                }
                const float first = h == kvh * group ? 0.0f : 1.0f; /* the group's first head overwrites dK, dV */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, HD, T, 1.0f, dS, T, k, S, 0.0f,
                            dbase + (size_t)h * HD, S);
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, HD, T, 1.0f, dS, T, q, S, first, dk, S);
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, HD, T, 1.0f, P, T, dy, OS, first, dv, S);
            }
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
