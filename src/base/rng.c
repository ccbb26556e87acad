/* Counter-based random numbers: output i of stream (seed, purpose) is a pure function of (key, i), so a
 * run can be resumed by restoring the counter and different purposes never share draws. */
#include "hone/base.h"

#include <math.h>
#include <time.h>

/* SplitMix64 finaliser: a strong 64-bit mixing function. */
static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

hone_rng hone_rng_new(uint64_t seed, uint64_t stream) {
    hone_rng r;
    r.key = mix64(seed * 0x9e3779b97f4a7c15ULL + mix64(stream + 0x632be59bd9b4e019ULL));
    r.counter = 0;
    return r;
}

uint64_t hone_rng_u64(hone_rng *r) {
    uint64_t c = r->counter++;
    return mix64(r->key ^ mix64(c + 0x9e3779b97f4a7c15ULL));
}

float hone_rng_uniform(hone_rng *r) { return (float)(hone_rng_u64(r) >> 40) * (1.0f / 16777216.0f); }

float hone_rng_normal(hone_rng *r) {
    /* Box-Muller with one draw per call (the second value is discarded to keep the counter simple). */
    double u1 = ((double)(hone_rng_u64(r) >> 11) + 1.0) * (1.0 / 9007199254740993.0);
    double u2 = (double)(hone_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

void hone_rng_fill_normal(hone_rng *r, float *out, size_t n, float scale) {
    const uint64_t key = r->key, base = r->counter;
    /* Box-Muller makes two normals from two uniforms: element pair (2j, 2j+1) uses counters base + 2j and
     * base + 2j + 1, so each pair is computed independently of the others */
#pragma omp parallel for schedule(static)
    for (size_t j = 0; j < (n + 1) / 2; j++) {
        hone_rng pair = {key, base + 2 * j};
        double u1 = ((double)(hone_rng_u64(&pair) >> 11) + 1.0) * (1.0 / 9007199254740993.0);
        double u2 = (double)(hone_rng_u64(&pair) >> 11) * (1.0 / 9007199254740992.0);
        double radius = sqrt(-2.0 * log(u1)), angle = 6.283185307179586 * u2;
        out[2 * j] = scale * (float)(radius * cos(angle));
        if (2 * j + 1 < n) out[2 * j + 1] = scale * (float)(radius * sin(angle));
    }
    r->counter = base + 2 * ((n + 1) / 2);
}

double hone_now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
