/* Linear layers through CBLAS (OpenBLAS). Weights are [out, in] as in torch.nn.Linear. */
#include "tensor/ops.h"

#include <cblas.h>
#include <omp.h>
#include <string.h>

void op_linear_forward(float *out, const float *x, const float *w, const float *b, int N, int IC, int OC) {
    if (b) {
#pragma omp parallel for schedule(static)
        for (int n = 0; n < N; n++)
            for (int o = 0; o < OC; o++) out[(size_t)n * OC + o] = b[o];
    }
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

/* dst [rows, cols] = w [rows, cols of a row stride] widened to f32: one thread, vectorised (bf16 is f32's top half). */
static void widen_rows(float *dst, const uint16_t *w, int rows, int cols, int stride) {
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) {
            const uint32_t u = (uint32_t)w[(size_t)r * stride + c] << 16;
            memcpy(dst + (size_t)r * cols + c, &u, 4);
        }
}

/* Tiles of rows of w go to the threads, each widening its tile into its own scratch slot and calling a one-thread
 * sgemm (OpenBLAS runs single-threaded inside a parallel region): one parallel region per call, no full fp32 w.
 * Every output element is one sgemm's sum over all of IC. The tile count is a multiple of the thread count so the
 * threads get equal shares. */
void op_linear_forward_bf16(float *out, const float *x, const uint16_t *w, const float *b, int N, int IC, int OC,
                            float *scratch, int slots) {
    const int threads = omp_get_max_threads() < slots ? omp_get_max_threads() : slots;
    const int rounds = (OC + threads * OP_BF16_TILE - 1) / (threads * OP_BF16_TILE);
    const int tile = (OC + threads * rounds - 1) / (threads * rounds);
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int o0 = 0; o0 < OC; o0 += tile) {
        const int rows = OC - o0 < tile ? OC - o0 : tile;
        float *t = scratch + (size_t)omp_get_thread_num() * OP_BF16_TILE * IC;
        widen_rows(t, w + (size_t)o0 * IC, rows, IC, IC);
        if (b)
            for (int n = 0; n < N; n++) memcpy(out + (size_t)n * OC + o0, b + o0, sizeof(float) * rows);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, rows, IC, 1.0f, x, IC, t, IC, b ? 1.0f : 0.0f,
                    out + o0, OC);
    }
}

/* Each thread owns a slice of dx's columns and walks the row tiles of w in order, widening the tile's columns of its
 * slice: no two threads write the same element, and each element sums the tiles in the same order every run. */
void op_linear_backward_dx_bf16(float *dx, const float *dout, const uint16_t *w, int N, int IC, int OC, int accumulate,
                                float *scratch, int slots) {
    const int threads = omp_get_max_threads() < slots ? omp_get_max_threads() : slots;
    const int width = (IC + threads - 1) / threads;
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int c0 = 0; c0 < IC; c0 += width) {
        const int cols = IC - c0 < width ? IC - c0 : width;
        float *t = scratch + (size_t)omp_get_thread_num() * OP_BF16_TILE * IC;
        for (int o0 = 0; o0 < OC; o0 += OP_BF16_TILE) {
            const int rows = OC - o0 < OP_BF16_TILE ? OC - o0 : OP_BF16_TILE;
            widen_rows(t, w + (size_t)o0 * IC + c0, rows, cols, IC);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, cols, rows, 1.0f, dout + o0, OC, t, cols,
                        accumulate || o0 ? 1.0f : 0.0f, dx + c0, IC);
        }
    }
}
