/* The per-tensor arithmetic of linear, slerp, model_stock and the task arithmetic family (mergekit's
 * LinearMergeTask, slerp(), ModelStockMergeTask and GTATask after sparsification).
 *
 * Element-wise work is split over OpenMP threads; every reduction (norms, dot products) is summed in double
 * over fixed chunks and the partial sums added in chunk order, so results do not depend on the thread count. */
#include "merge_internal.h"

#include <math.h>
#include <string.h>

#define REDUCE_CHUNKS 1024

/* Σ over [0, n) of f(lo, hi, ctx), evaluated on REDUCE_CHUNKS fixed chunks in parallel. */
static double chunked_sum(size_t n, double (*f)(size_t lo, size_t hi, const void *ctx), const void *ctx) {
    double partial[REDUCE_CHUNKS];
    size_t chunk = (n + REDUCE_CHUNKS - 1) / REDUCE_CHUNKS;
    if (chunk == 0) return 0;
#pragma omp parallel for schedule(static)
    for (size_t c = 0; c < REDUCE_CHUNKS; c++) {
        size_t lo = c * chunk < n ? c * chunk : n, hi = lo + chunk < n ? lo + chunk : n;
        partial[c] = f(lo, hi, ctx);
    }
    double sum = 0;
    for (size_t c = 0; c < REDUCE_CHUNKS; c++) sum += partial[c];
    return sum;
}

/* Σ (a_i - o_i)(b_i - o_i); o may be NULL (zero). */
typedef struct {
    const float *a, *b, *o;
} dot_args;

static double dot_chunk(size_t lo, size_t hi, const void *ctx) {
    const dot_args *d = ctx;
    double s = 0;
    if (d->o)
        for (size_t i = lo; i < hi; i++) s += ((double)d->a[i] - d->o[i]) * ((double)d->b[i] - d->o[i]);
    else
        for (size_t i = lo; i < hi; i++) s += (double)d->a[i] * d->b[i];
    return s;
}

static double offset_dot(const float *a, const float *b, const float *o, size_t n) {
    dot_args d = {a, b, o};
    return chunked_sum(n, dot_chunk, &d);
}

/* Element-wise kernels work on chunks of MERGE_CHUNK elements with the model loop outside the element loop, so
 * that the element loop vectorizes and branches become blends. */
#define CHUNK MERGE_CHUNK

void merge_linear_chunk(float *out, const float *const *x, const uint8_t *const *bf16, const double *w, size_t k,
                        size_t lo, size_t m, int normalize) {
    double wsum = 0;
    for (size_t j = 0; j < k; j++) wsum += w[j];
    const double scale = normalize ? 1.0 / wsum : 1.0;
    double acc[CHUNK];
    for (size_t i = 0; i < m; i++) acc[i] = 0;
    for (size_t j = 0; j < k; j++) {
        const double wj = w[j];
        if (bf16 && bf16[j]) {
            const uint8_t *bj = bf16[j] + 2 * lo;
            for (size_t i = 0; i < m; i++) {
                uint16_t b;
                memcpy(&b, bj + 2 * i, 2);
                acc[i] += wj * hone_bf16_to_f32(b);
            }
            continue;
        }
        const float *xj = x[j] + lo;
        for (size_t i = 0; i < m; i++) acc[i] += wj * xj[i];
    }
    for (size_t i = 0; i < m; i++) out[lo + i] = (float)(acc[i] * scale);
}

void merge_slerp(float *out, const float *a, const float *b, size_t n, double t) {
    /* mergekit normalises each vector only when its norm exceeds 1e-8 and falls back to lerp when the
     * normalised vectors are nearly colinear (|dot| > 0.9995). */
    double na = sqrt(offset_dot(a, a, NULL, n)), nb = sqrt(offset_dot(b, b, NULL, n));
    double dot = offset_dot(a, b, NULL, n) / ((na > 1e-8 ? na : 1) * (nb > 1e-8 ? nb : 1));
    double s0 = 1 - t, s1 = t;
    if (fabs(dot) <= 0.9995) {
        double theta = acos(dot), sin_theta = sin(theta);
        s0 = sin(theta - theta * t) / sin_theta;
        s1 = sin(theta * t) / sin_theta;
    }
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) out[i] = (float)(s0 * a[i] + s1 * b[i]);
}

/* Sequential Σ (a_i - o_i)(b_i - o_i), for rows handled by one thread each. */
static double row_dot(const float *a, const float *b, const float *o, size_t n) {
    return dot_chunk(0, n, &(dot_args){a, b, o});
}

/* Model Stock's interpolation factor for one row of `cols` elements at `off`: the mean over pairs of the cosine
 * between offsets w_i - w0 (each clamped to [-1, 1], the norm product clamped below at 1e-6), then
 * t = k cos / (1 + (k - 1) cos). `parallel`: reduce with all threads (one big row) or sequentially. */
static double stock_factor(const float *w0, const float *const *ws, size_t k, size_t off, size_t cols, int parallel) {
    double (*dot)(const float *, const float *, const float *, size_t) = parallel ? offset_dot : row_dot;
    double norms[HONE_MERGE_MAX_STOCK], cos_sum = 0;
    size_t pairs = 0;
    for (size_t i = 0; i < k; i++) norms[i] = sqrt(dot(ws[i] + off, ws[i] + off, w0 + off, cols));
    for (size_t i = 0; i < k; i++)
        for (size_t j = i + 1; j < k; j++) {
            double c = dot(ws[i] + off, ws[j] + off, w0 + off, cols) / fmax(norms[i] * norms[j], 1e-6);
            cos_sum += fmin(fmax(c, -1.0), 1.0);
            pairs++;
        }
    double cos_theta = cos_sum / (double)pairs;
    return (double)k * cos_theta / (1 + (double)(k - 1) * cos_theta);
}

/* out = t · mean(ws) + (1 - t) · w0 over [lo, hi); runs on all threads, or on the caller's alone when called
 * from inside a parallel loop (nested regions are inactive). */
static void stock_mix(float *out, const float *w0, const float *const *ws, size_t k, size_t lo, size_t hi, double t) {
#pragma omp parallel for schedule(static)
    for (size_t i = lo; i < hi; i++) {
        double avg = 0;
        for (size_t j = 0; j < k; j++) avg += ws[j][i];
        out[i] = (float)(t * (avg / (double)k) + (1 - t) * w0[i]);
    }
}

void merge_model_stock(float *out, const float *w0, const float *const *ws, size_t k, size_t rows, size_t cols) {
    if (rows == 1) {
        stock_mix(out, w0, ws, k, 0, cols, stock_factor(w0, ws, k, 0, cols, 1));
        return;
    }
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < rows; r++)
        stock_mix(out, w0, ws, k, r * cols, (r + 1) * cols, stock_factor(w0, ws, k, r * cols, cols, 0));
}

void merge_task_arithmetic_chunk(float *out, const float *base, float *const *d, const double *w, size_t k, size_t lo,
                                 size_t m, const merge_gta_params *p) {
    double wsum = 0;
    for (size_t j = 0; j < k; j++) wsum += w[j];
    if (fabs(wsum) < 1e-8) wsum = 1; /* mergekit: divisor[|divisor| < 1e-8] = 1 */
    double total[CHUNK], mixed[CHUNK], divisor[CHUNK];
    for (size_t i = 0; i < m; i++) total[i] = 0;
    for (size_t j = 0; j < k; j++) {
        const float *dj = d[j] + lo;
        const double wj = w[j];
        for (size_t i = 0; i < m; i++) total[i] += wj * dj[i];
    }
    if (p->consensus) {
        /* TIES sign election: the sign of the sum of the weighted deltas (>= 0 counts as +) wins; only
         * deltas of that sign (a zero delta has none) are mixed, and only their weights divide */
        for (size_t i = 0; i < m; i++) mixed[i] = divisor[i] = 0;
        for (size_t j = 0; j < k; j++) {
            const float *dj = d[j] + lo;
            const double wj = w[j];
            for (size_t i = 0; i < m; i++) {
                double wd = wj * dj[i];
                double keep = (double)(((wd > 0) & (total[i] >= 0)) | ((wd < 0) & (total[i] < 0)));
                mixed[i] += keep * wd;
                divisor[i] += keep * wj;
            }
        }
        for (size_t i = 0; i < m; i++) divisor[i] = divisor[i] == 0 ? 1.0 : divisor[i];
    } else {
        for (size_t i = 0; i < m; i++) {
            mixed[i] = total[i];
            divisor[i] = wsum;
        }
    }
    for (size_t i = 0; i < m; i++)
        out[lo + i] = (float)(base[lo + i] + p->lambda * (p->normalize ? mixed[i] / divisor[i] : mixed[i]));
}

void merge_task_arithmetic(float *out, const float *base, float *const *d, const double *w, size_t k, size_t n,
                           const merge_gta_params *p) {
#pragma omp parallel for schedule(static)
    for (size_t lo = 0; lo < n; lo += CHUNK)
        merge_task_arithmetic_chunk(out, base, d, w, k, lo, n - lo < CHUNK ? n - lo : CHUNK, p);
}
