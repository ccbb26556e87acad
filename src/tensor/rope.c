/* Rotary position embeddings, Hugging Face convention ("rotate_half"): dimension i of a head pairs with
 * dimension i + HD/2, and the pair rotates by pos * theta^(-2i/HD). */
#include "tensor/ops.h"

#include <math.h>

void op_rope_tables(float *cos_t, float *sin_t, int max_pos, int HD, float theta) {
    int half = HD / 2;
    for (int i = 0; i < half; i++) {
        /* transformers computes inv_freq and the angles in fp32; doing it in double and rounding once is at
         * least as accurate, which is what the fp32 tolerance of the tests asks for. */
        double inv_freq = 1.0 / pow((double)theta, (double)(2 * i) / (double)HD);
        for (int p = 0; p < max_pos; p++) {
            double a = (double)p * inv_freq;
            cos_t[(size_t)p * half + i] = (float)cos(a);
            sin_t[(size_t)p * half + i] = (float)sin(a);
        }
    }
}

void op_rope(float *x, int N, int T, int stride, int n_heads, int HD, const float *cos_t, const float *sin_t,
             const int32_t *pos, int inverse) {
    int half = HD / 2;
    float sign = inverse ? -1.0f : 1.0f;
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        int p = pos ? pos[n] : n % T;
        const float *c = cos_t + (size_t)p * half, *s = sin_t + (size_t)p * half;
        for (int h = 0; h < n_heads; h++) {
            float *v = x + (size_t)n * stride + (size_t)h * HD;
            for (int i = 0; i < half; i++) {
                float a = v[i], b = v[i + half], sn = sign * s[i];
                v[i] = a * c[i] - b * sn;
                v[i + half] = b * c[i] + a * sn;
            }
        }
    }
}
