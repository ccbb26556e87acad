#include "tensor/ops.h"

#include <string.h>

void op_embedding_forward(float *out, const int32_t *ids, const float *wte, const float *wpe, const int32_t *pos,
                          int N, int T, int C) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        float *o = out + (size_t)n * C;
        const float *e = wte + (size_t)ids[n] * C;
        if (wpe) {
            const float *p = wpe + (size_t)(pos ? pos[n] : n % T) * C;
            for (int i = 0; i < C; i++) o[i] = e[i] + p[i];
        } else {
            memcpy(o, e, sizeof(float) * C);
        }
    }
}

void op_embedding_forward_frozen(float *out, const int32_t *ids, const op_matrix *wte, const float *wpe,
                                 const int32_t *pos, int N, int T, int C) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        float *o = out + (size_t)n * C;
        op_matrix_widen(o, wte, ids[n], 1, 0, C, C);
        if (wpe) {
            const float *p = wpe + (size_t)(pos ? pos[n] : n % T) * C;
            for (int i = 0; i < C; i++) o[i] += p[i];
        }
    }
}

void op_embedding_backward(float *dwte, float *dwpe, const float *dout, const int32_t *ids, const int32_t *pos, int N,
                           int T, int C) {
    /* Rows may repeat a token, so the scatter into dwte is split by columns across threads instead of rows:
     * each thread owns a slice of C and visits the rows in order, which keeps the sums deterministic. */
#pragma omp parallel
    {
#pragma omp for schedule(static)
        for (int i = 0; i < C; i++) {
            for (int n = 0; n < N; n++) dwte[(size_t)ids[n] * C + i] += dout[(size_t)n * C + i];
        }
        if (dwpe) {
#pragma omp for schedule(static)
            for (int i = 0; i < C; i++) {
                for (int n = 0; n < N; n++) dwpe[(size_t)(pos ? pos[n] : n % T) * C + i] += dout[(size_t)n * C + i];
            }
        }
    }
}
