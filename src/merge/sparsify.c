/* Sparsification of task vectors, as mergekit's sparsify.py:
 *   magnitude (TIES)            keep the int(density·n) largest |δ|;
 *   random (DARE)               keep each element with probability density;
 *   magnitude_outliers          drop the int(γ·n) largest and the smallest so that int(density·n) remain;
 *   (breadcrumbs)               when no large ones are dropped, mergekit's slice indices[n_bot:-0] is empty and
 *                               the whole delta goes: reproduced;
 *   della_magprune (DELLA)      keep with probability density - ε + 2ε·rank/(cols - 1), ranked by |δ| within
 *                               each row;
 * then, with rescale, multiply what is kept by ‖δ‖₁ / ‖kept‖₁ (unless either is below 1e-7).
 *
 * Ranks by magnitude are exact: an element's rank is the number of elements with a smaller |δ| plus those with
 * an equal |δ| at a lower position (mergekit's argsort leaves the order of equal magnitudes unspecified).
 * Selection uses a three-pass radix select on the bits of |δ| (for non-negative floats, integer order is
 * float order), so it is linear, parallel and independent of the thread count. Random draws come from hone's
 * counter-based generator: element i uses counter i of the stream (seed, p->stream). */
#include "merge_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CHUNKS 1024

static inline uint32_t mag_key(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    return u & 0x7fffffffu;
}

/* The key at ascending rank r of the magnitudes of d[0..n), how many keys are smaller and how many equal it. */
static uint32_t key_at_rank(const float *d, size_t n, size_t r, size_t *n_less, size_t *n_equal) {
    static const int shifts[3] = {21, 10, 0}, widths[3] = {11, 11, 10};
    uint32_t prefix = 0, prefix_mask = 0;
    size_t below = 0, equal = 0;
    for (int pass = 0; pass < 3; pass++) {
        const uint32_t bins = 1u << widths[pass], shift = (uint32_t)shifts[pass];
        size_t hist[2048] = {0};
#pragma omp parallel
        {
            size_t local[2048] = {0};
#pragma omp for schedule(static) nowait
            for (size_t i = 0; i < n; i++) {
                uint32_t k = mag_key(d[i]);
                if ((k & prefix_mask) == prefix) local[(k >> shift) & (bins - 1)]++;
            }
#pragma omp critical
            for (uint32_t b = 0; b < bins; b++) hist[b] += local[b];
        }
        uint32_t b = 0;
        while (below + hist[b] <= r) below += hist[b++];
        equal = hist[b];
        prefix |= b << shift;
        prefix_mask |= (bins - 1) << shift;
    }
    *n_less = below;
    *n_equal = equal;
    return prefix;
}

/* Rank boundary r: an element has rank < r iff its key is below `key`, or equals it at a position below `pos`
 * (equal magnitudes are ranked by position). */
typedef struct {
    uint32_t key;
    size_t pos;
} rank_cut;

static rank_cut make_cut(const float *d, size_t n, size_t r) {
    if (r == 0) return (rank_cut){0, 0};                 /* nothing is below */
    if (r >= n) return (rank_cut){UINT32_MAX, SIZE_MAX}; /* everything is */
    size_t less, equal;
    rank_cut c = {key_at_rank(d, n, r, &less, &equal), 0};
    size_t ties = r - less; /* how many of the elements equal to the key rank below r */
    if (ties == equal)
        c.pos = SIZE_MAX;
    else
        for (size_t i = 0, seen = 0; seen < ties; i++)
            if (mag_key(d[i]) == c.key && ++seen == ties) c.pos = i + 1;
    return c;
}

/* Zeroes the elements of d whose rank by magnitude is outside [lo, hi). */
static void keep_rank_range(float *d, size_t n, size_t lo, size_t hi) {
    if (lo >= hi) {
        memset(d, 0, n * sizeof *d);
        return;
    }
    const rank_cut a = make_cut(d, n, lo), b = make_cut(d, n, hi);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        uint32_t k = mag_key(d[i]);
        int below_lo = (k < a.key) | ((k == a.key) & (i < a.pos));
        int below_hi = (k < b.key) | ((k == b.key) & (i < b.pos));
        d[i] = below_lo | !below_hi ? 0.0f : d[i];
    }
}

/* Σ |d_i| in double over fixed chunks (the same for any thread count). */
static double l1_norm(const float *d, size_t n) {
    double partial[CHUNKS];
    size_t chunk = (n + CHUNKS - 1) / CHUNKS;
#pragma omp parallel for schedule(static)
    for (size_t c = 0; c < CHUNKS; c++) {
        size_t a = c * chunk < n ? c * chunk : n, b = a + chunk < n ? a + chunk : n;
        double s = 0;
        for (size_t i = a; i < b; i++) s += fabs((double)d[i]);
        partial[c] = s;
    }
    double s = 0;
    for (size_t c = 0; c < CHUNKS; c++) s += partial[c];
    return s;
}

static double uniform_at(uint64_t key, uint64_t counter) {
    hone_rng r = {key, counter};
    return (double)hone_rng_uniform(&r);
}

static int u64_cmp(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* One row of DELLA: keep element j with probability density - ε + 2ε·rank_j/(cols - 1). `order` is scratch
 * for cols entries. */
static void della_row(float *row, size_t cols, uint64_t key, uint64_t counter0, double density, double epsilon,
                      uint64_t *order) {
    /* sorting (magnitude, position) pairs as one integer ranks equal magnitudes by position */
    for (size_t j = 0; j < cols; j++) order[j] = (uint64_t)mag_key(row[j]) << 32 | j;
    qsort(order, cols, sizeof *order, u64_cmp);
    for (size_t rank = 0; rank < cols; rank++) {
        size_t j = (size_t)(order[rank] & 0xffffffffu);
        double p = (density - epsilon) + (double)rank / (double)(cols - 1) * 2 * epsilon;
        if (!(uniform_at(key, counter0 + j) < p)) row[j] = 0;
    }
}

hone_status merge_sparsify_delta(float *d, size_t rows, size_t cols, const merge_sparsify_params *p, const char *what) {
    const size_t n = rows * cols;
    if (p->method == MERGE_SPARSIFY_NONE || p->density >= 1 || n == 0) return HONE_OK;
    const uint64_t key = hone_rng_new(p->seed, p->stream).key;
    double before = p->rescale ? l1_norm(d, n) : 0;
    switch (p->method) {
        case MERGE_MAGNITUDE: {
            size_t k = (size_t)(p->density * (double)n);
            if (k == 0)
                return hone_errorf(HONE_ERR_INVALID,
                                   "%s: density %g keeps int(%g × %zu) = 0 elements; mergekit refuses this too (raise "
                                   "density)",
                                   what, p->density, p->density, n);
            keep_rank_range(d, n, n - k, n);
            break;
        }
        case MERGE_RANDOM:
#pragma omp parallel for schedule(static)
            for (size_t i = 0; i < n; i++)
                if (!(uniform_at(key, i) < p->density)) d[i] = 0;
            break;
        case MERGE_MAGNITUDE_OUTLIERS: {
            int64_t target = (int64_t)(p->density * (double)n), n_top = (int64_t)(p->gamma * (double)n);
            int64_t n_bot = (int64_t)n - target - n_top;
            if (n_bot < 0) {
                n_top += n_bot;
                n_bot = 0;
            }
            /* mergekit keeps sorted indices[n_bot:-n_top]: empty when n_top is 0 */
            if (n_top <= 0)
                keep_rank_range(d, n, 0, 0);
            else
                keep_rank_range(d, n, (size_t)n_bot, n - (size_t)n_top);
            break;
        }
        case MERGE_DELLA: {
            if (p->density <= 0) {
                memset(d, 0, n * sizeof *d);
                return HONE_OK;
            }
            if (p->density + p->epsilon >= 1 || p->density - p->epsilon <= 0)
                return hone_errorf(HONE_ERR_INVALID,
                                   "%s: density %g ± epsilon %g must stay inside (0, 1) (mergekit refuses this too)",
                                   what, p->density, p->epsilon);
            if (cols > UINT32_MAX)
                return hone_errorf(HONE_ERR_UNSUPPORTED, "%s: rows of more than 2^32 elements", what);
            if (cols < 2)
                return hone_errorf(HONE_ERR_UNSUPPORTED,
                                   "%s: DELLA ranks elements within rows, and these rows hold one element (mergekit "
                                   "fails on such tensors too)",
                                   what);
            int failed = 0;
#pragma omp parallel
            {
                uint64_t *order = malloc(cols * sizeof *order);
                if (!order) {
#pragma omp atomic write
                    failed = 1;
                }
#pragma omp for schedule(dynamic, 16)
                for (size_t r = 0; r < rows; r++)
                    if (order) della_row(d + r * cols, cols, key, r * cols, p->density, p->epsilon, order);
                free(order);
            }
            if (failed) return hone_errorf(HONE_ERR_NOMEM, "%s: out of memory for DELLA's ranks", what);
            break;
        }
        case MERGE_SPARSIFY_NONE:
            break;
    }
    if (p->rescale) {
        double after = l1_norm(d, n);
        if (before >= 1e-7 && after >= 1e-7) {
            float scale = (float)(before / after);
#pragma omp parallel for schedule(static)
            for (size_t i = 0; i < n; i++) d[i] *= scale;
        }
    }
    return HONE_OK;
}
