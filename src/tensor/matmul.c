/* Linear layers through CBLAS (OpenBLAS). Weights are [out, in] as in torch.nn.Linear. */
#include "tensor/ops.h"

#include <cblas.h>

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
