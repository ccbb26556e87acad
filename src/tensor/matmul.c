/* Linear layers through CBLAS (OpenBLAS). Weights are [out, in] as in torch.nn.Linear. */
#include "tensor/ops.h"

#include <cblas.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>

/* out[n, :] = b: sgemm then adds x wᵀ onto it */
static void fill_bias(float *out, const float *b, int N, int OC) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) out[(size_t)n * OC + o] = b[o];
}

void op_linear_forward(float *out, const float *x, const float *w, const float *b, int N, int IC, int OC) {
    if (b) fill_bias(out, b, N, OC);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, IC, 1.0f, x, IC, w, IC, b ? 1.0f : 0.0f, out, OC);
}

void op_linear_backward(float *dx, float *dw, float *db, const float *dout, const float *x, const float *w,
                        int N, int IC, int OC, int accumulate) {
    if (dx)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, IC, OC, 1.0f, dout, OC, w, IC,
                    accumulate ? 1.0f : 0.0f, dx, IC);
    if (dw) cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, IC, N, 1.0f, dout, OC, x, IC, 1.0f, dw, IC);
    if (db) {
        /* Column sums: each thread owns a range of output channels and walks rows in order (deterministic). */
#pragma omp parallel for schedule(static)
        for (int o = 0; o < OC; o++) {
            float s = 0;
            for (int n = 0; n < N; n++) s += dout[(size_t)n * OC + o];
            db[o] += s;
        }
    }
}

void op_add_inplace(float *y, const float *x, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) y[i] += x[i];
}

/* n elements of dtype at src (any alignment) widened to f32 at dst, dst_stride floats apart. Inlined with stride 1
 * for the row-major runs, where the loops vectorise (bf16 is f32's top half). */
static inline void widen_run(float *dst, size_t dst_stride, const uint8_t *src, hone_dtype dtype, int n) {
    if (dtype == HONE_DTYPE_BF16) {
        for (int i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * (size_t)i, 2);
            dst[i * dst_stride] = hone_bf16_to_f32(h);
        }
    } else if (dtype == HONE_DTYPE_F16) {
        for (int i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * (size_t)i, 2);
            dst[i * dst_stride] = hone_f16_to_f32(h);
        }
    } else {
        for (int i = 0; i < n; i++) memcpy(dst + i * dst_stride, src + 4 * (size_t)i, 4);
    }
}

void op_matrix_widen(float *dst, const op_matrix *w, int r0, int rows, int c0, int cols, int width) {
    int first = 0; /* the matrix row where part p starts */
    for (int p = 0; p < w->n_parts && rows > 0; first += w->part[p++].rows) {
        const op_matrix_part *pt = &w->part[p];
        if (r0 >= first + pt->rows) continue;
        const int r = r0 - first, n = rows < pt->rows - r ? rows : pt->rows - r;
        const size_t size = hone_dtype_size(pt->dtype);
        const uint8_t *src = pt->data;
        if (pt->transposed) /* [cols, part rows]: a column's rows are contiguous */
            for (int c = 0; c < cols; c++)
                widen_run(dst + c, (size_t)cols, src + ((size_t)(c0 + c) * pt->rows + r) * size, pt->dtype, n);
        else
            for (int i = 0; i < n; i++)
                widen_run(dst + (size_t)i * cols, 1, src + ((size_t)(r + i) * width + c0) * size, pt->dtype, cols);
        dst += (size_t)n * cols;
        r0 += n;
        rows -= n;
    }
}

/* Every part is F32 on a float boundary: sgemm reads the parts where they lie, no tile. */
static int direct_f32(const op_matrix *w) {
    for (int p = 0; p < w->n_parts; p++)
        if (w->part[p].dtype != HONE_DTYPE_F32 || (uintptr_t)w->part[p].data % sizeof(float)) return 0;
    return 1;
}

/* Tiles of rows of w go to the threads, each widening its tile into its own scratch slot and calling a one-thread
 * sgemm (OpenBLAS runs single-threaded inside a parallel region): one parallel region per call, no full fp32 w.
 * Every output element is one sgemm's sum over all of IC. The tile count is a multiple of the thread count so the
 * threads get equal shares. Direct F32 parts: one multi-threaded sgemm per part into its columns of out (a
 * transposed part [IC, rows] is multiplied as it is: x · part). */
void op_linear_forward_frozen(float *out, const float *x, const op_matrix *w, const float *b, int N, int IC, int OC,
                              float *scratch, int slots) {
    if (direct_f32(w)) {
        if (b) fill_bias(out, b, N, OC);
        for (int p = 0, o0 = 0; p < w->n_parts; o0 += w->part[p++].rows) {
            const op_matrix_part *pt = &w->part[p];
            cblas_sgemm(CblasRowMajor, CblasNoTrans, pt->transposed ? CblasNoTrans : CblasTrans, N, pt->rows, IC,
                        1.0f, x, IC, pt->data, pt->transposed ? pt->rows : IC, b ? 1.0f : 0.0f, out + o0, OC);
        }
        return;
    }
    const int threads = omp_get_max_threads() < slots ? omp_get_max_threads() : slots;
    const int rounds = (OC + threads * OP_FROZEN_TILE - 1) / (threads * OP_FROZEN_TILE);
    const int tile = (OC + threads * rounds - 1) / (threads * rounds);
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int o0 = 0; o0 < OC; o0 += tile) {
        const int rows = OC - o0 < tile ? OC - o0 : tile;
        float *t = scratch + (size_t)omp_get_thread_num() * OP_FROZEN_TILE * IC;
        op_matrix_widen(t, w, o0, rows, 0, IC, IC);
        if (b)
            for (int n = 0; n < N; n++) memcpy(out + (size_t)n * OC + o0, b + o0, sizeof(float) * rows);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, rows, IC, 1.0f, x, IC, t, IC, b ? 1.0f : 0.0f,
                    out + o0, OC);
    }
}

/* Each thread owns a slice of dx's columns and walks the row tiles of w in order, widening the tile's columns of its
 * slice: no two threads write the same element, and each element sums the tiles in the same order every run. Direct
 * F32 parts: dx accumulates dout[:, part's columns] · part, part by part. */
void op_linear_backward_dx_frozen(float *dx, const float *dout, const op_matrix *w, int N, int IC, int OC,
                                  int accumulate, float *scratch, int slots) {
    if (direct_f32(w)) {
        for (int p = 0, o0 = 0; p < w->n_parts; o0 += w->part[p++].rows) {
            const op_matrix_part *pt = &w->part[p];
            cblas_sgemm(CblasRowMajor, CblasNoTrans, pt->transposed ? CblasTrans : CblasNoTrans, N, IC, pt->rows,
                        1.0f, dout + o0, OC, pt->data, pt->transposed ? pt->rows : IC, accumulate || p ? 1.0f : 0.0f,
                        dx, IC);
        }
        return;
    }
    const int threads = omp_get_max_threads() < slots ? omp_get_max_threads() : slots;
    const int width = (IC + threads - 1) / threads;
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int c0 = 0; c0 < IC; c0 += width) {
        const int cols = IC - c0 < width ? IC - c0 : width;
        float *t = scratch + (size_t)omp_get_thread_num() * OP_FROZEN_TILE * IC;
        for (int o0 = 0; o0 < OC; o0 += OP_FROZEN_TILE) {
            const int rows = OC - o0 < OP_FROZEN_TILE ? OC - o0 : OP_FROZEN_TILE;
            op_matrix_widen(t, w, o0, rows, c0, cols, IC);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, cols, rows, 1.0f, dout + o0, OC, t, cols,
                        accumulate || o0 ? 1.0f : 0.0f, dx + c0, IC);
        }
    }
}
