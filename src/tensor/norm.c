#include "tensor/ops.h"

#include <math.h>
#include <omp.h>
#include <string.h>

void op_layernorm_forward(float *out, float *mean, float *rstd, const float *x, const float *w, const float *b,
                          int N, int C, float eps) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * C;
        float *o = out + (size_t)n * C;
        double s = 0;
        for (int i = 0; i < C; i++) s += xr[i];
        float m = (float)(s / C);
        double v = 0;
        for (int i = 0; i < C; i++) {
            float d = xr[i] - m;
            v += (double)d * d;
        }
        float r = 1.0f / sqrtf((float)(v / C) + eps);
        for (int i = 0; i < C; i++) o[i] = (xr[i] - m) * r * w[i] + b[i];
        if (mean) mean[n] = m;
        if (rstd) rstd[n] = r;
    }
}

/* The parameter gradients are sums over rows; each thread sums its rows into a private slice of `scratch`
 * and the slices are added in thread order afterwards, so results are deterministic for a thread count. */
static float *thread_partials(float *scratch, int C, int n_arrays) {
    memset(scratch, 0, sizeof(float) * (size_t)omp_get_max_threads() * n_arrays * C);
    return scratch;
}

void op_layernorm_backward(float *dx, float *dw, float *db, const float *dout, const float *x, const float *w,
                           const float *mean, const float *rstd, int N, int C, float *scratch) {
    int nt = omp_get_max_threads();
    float *part = thread_partials(scratch, C, 2);
#pragma omp parallel
    {
        int tid = omp_get_thread_num();
        float *pdw = part + (size_t)tid * 2 * C, *pdb = pdw + C;
#pragma omp for schedule(static)
        for (int n = 0; n < N; n++) {
            const float *xr = x + (size_t)n * C, *dy = dout + (size_t)n * C;
            float *dxr = dx + (size_t)n * C;
            float m = mean[n], r = rstd[n];
            float dnorm_mean = 0, dnorm_norm_mean = 0;
            for (int i = 0; i < C; i++) {
                float norm = (xr[i] - m) * r;
                float dnorm = w[i] * dy[i];
                dnorm_mean += dnorm;
                dnorm_norm_mean += dnorm * norm;
                pdb[i] += dy[i];
                pdw[i] += norm * dy[i];
            }
            dnorm_mean /= C;
            dnorm_norm_mean /= C;
            for (int i = 0; i < C; i++) {
                float norm = (xr[i] - m) * r;
                float dnorm = w[i] * dy[i];
                dxr[i] += (dnorm - dnorm_mean - norm * dnorm_norm_mean) * r;
            }
        }
    }
    for (int t = 0; t < nt && dw; t++) {
        const float *pdw = part + (size_t)t * 2 * C, *pdb = pdw + C;
        for (int i = 0; i < C; i++) {
            dw[i] += pdw[i];
            db[i] += pdb[i];
        }
    }
}

void op_rmsnorm_forward(float *out, float *rstd, const float *x, const float *w, int N, int C, float eps) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * C;
        float *o = out + (size_t)n * C;
        double ss = 0;
        for (int i = 0; i < C; i++) ss += (double)xr[i] * xr[i];
        float r = 1.0f / sqrtf((float)(ss / C) + eps);
        for (int i = 0; i < C; i++) o[i] = w[i] * (xr[i] * r);
        if (rstd) rstd[n] = r;
    }
}

void op_rmsnorm_backward(float *dx, float *dw, const float *dout, const float *x, const float *w,
                         const float *rstd, int N, int C, float *scratch) {
    int nt = omp_get_max_threads();
    float *part = thread_partials(scratch, C, 1);
#pragma omp parallel
    {
        float *pdw = part + (size_t)omp_get_thread_num() * C;
#pragma omp for schedule(static)
        for (int n = 0; n < N; n++) {
            const float *xr = x + (size_t)n * C, *dy = dout + (size_t)n * C;
            float *dxr = dx + (size_t)n * C;
            float r = rstd[n];
            /* y = w * x * r with r = (mean(x^2) + eps)^-1/2:
             * dx = r * (g - x * r^2 * mean(g * x)), g = w * dy */
            double gx = 0;
            for (int i = 0; i < C; i++) {
                gx += (double)w[i] * dy[i] * xr[i];
                pdw[i] += dy[i] * xr[i] * r;
            }
            float k = (float)(gx / C) * r * r;
            for (int i = 0; i < C; i++) dxr[i] += r * (w[i] * dy[i] - xr[i] * k);
        }
    }
    for (int t = 0; t < nt && dw; t++)
        for (int i = 0; i < C; i++) dw[i] += part[(size_t)t * C + i];
}

size_t op_norm_scratch_floats(int C) { return (size_t)omp_get_max_threads() * 2 * C; }
