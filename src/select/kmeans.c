/* K-means (k-means++ seeding, Lloyd iterations) and Cherry's per-cluster sampling by perplexity percentiles: the
 * pre-experience subset of Cherry_LLM (see hone_kmeans and hone_cherry_pick in hone/select.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hone/select.h"

#define STREAM_KMEANS 0x6b6d65616e73ull
#define DEFAULT_MAX_ITERATIONS 300

static double squared_distance(const float *a, const float *b, size_t dim) {
    double s = 0;
    for (size_t d = 0; d < dim; d++) {
        const double t = (double)a[d] - b[d];
        s += t * t;
    }
    return s;
}

/* k-means++: the first centre uniform, each next one with probability ∝ the squared distance to the nearest
 * centre so far (a point at distance 0 is never drawn again, so centres are distinct when the points are). */
static void seed_centres(const float *x, size_t n, size_t dim, size_t k, hone_rng *rng, float *c, double *nearest) {
    size_t first = (size_t)(hone_rng_u64(rng) % n);
    memcpy(c, x + first * dim, dim * sizeof *c);
    for (size_t i = 0; i < n; i++) nearest[i] = squared_distance(x + i * dim, c, dim);
    for (size_t j = 1; j < k; j++) {
        double total = 0;
        for (size_t i = 0; i < n; i++) total += nearest[i];
        const double at = (double)hone_rng_uniform(rng) * total;
        size_t pick = 0;
        double run = 0;
        for (size_t i = 0; i < n; i++) {
            if (nearest[i] > 0) pick = i; /* the last point with weight, should rounding overshoot the total */
            run += nearest[i];
            if (run > at && nearest[i] > 0) break;
        }
        memcpy(c + j * dim, x + pick * dim, dim * sizeof *c);
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) {
            const double d = squared_distance(x + i * dim, c + j * dim, dim);
            if (d < nearest[i]) nearest[i] = d;
        }
    }
}

hone_status hone_kmeans(const float *x, size_t n, size_t dim, size_t k, uint64_t seed, int max_iterations,
                        uint32_t *labels, float *centroids, hone_kmeans_info *info) {
    memset(info, 0, sizeof *info);
    if (k < 1 || k > n || k > UINT32_MAX)
        return hone_errorf(HONE_ERR_INVALID, "K-means: %zu clusters for %zu points (need 1 <= k <= points)", k, n);
    const size_t iterations = max_iterations > 0 ? (size_t)max_iterations : DEFAULT_MAX_ITERATIONS;
    float *c = malloc(k * dim * sizeof *c);
    double *nearest = malloc(n * sizeof *nearest), *sums = malloc(k * dim * sizeof *sums);
    size_t *counts = malloc(k * sizeof *counts);
    if (!c || !nearest || !sums || !counts) {
        free(c);
        free(nearest);
        free(sums);
        free(counts);
        return hone_errorf(HONE_ERR_NOMEM, "out of memory for K-means of %zu points", n);
    }
    /* scikit-learn's tolerance: the centres moved less than 1e-4 × the mean per-feature variance in total */
    double tolerance = 0;
    for (size_t d = 0; d < dim; d++) {
        double mean = 0, var = 0;
        for (size_t i = 0; i < n; i++) mean += x[i * dim + d];
        mean /= (double)n;
        for (size_t i = 0; i < n; i++) var += ((double)x[i * dim + d] - mean) * ((double)x[i * dim + d] - mean);
        tolerance += var / (double)n;
    }
    tolerance = dim ? 1e-4 * tolerance / (double)dim : 0;
    hone_rng rng = hone_rng_new(seed, STREAM_KMEANS);
    seed_centres(x, n, dim, k, &rng, c, nearest);
    for (size_t i = 0; i < n; i++) labels[i] = UINT32_MAX;
    int settled = 0; /* the centres barely moved: one more assignment to match them, then stop */
    for (size_t it = 0; it < iterations; it++) {
        size_t changed = 0;
#pragma omp parallel for schedule(static) reduction(+ : changed)
        for (size_t i = 0; i < n; i++) {
            uint32_t best = 0;
            double best_d = INFINITY;
            for (size_t j = 0; j < k; j++) {
                const double d = squared_distance(x + i * dim, c + j * dim, dim);
                if (d < best_d) {
                    best_d = d;
                    best = (uint32_t)j;
                }
            }
            changed += labels[i] != best;
            labels[i] = best;
            nearest[i] = best_d;
        }
        info->iterations = it + 1;
        if (!changed || settled) {
            info->converged = 1;
            break;
        }
        memset(sums, 0, k * dim * sizeof *sums);
        memset(counts, 0, k * sizeof *counts);
        for (size_t i = 0; i < n; i++) {
            counts[labels[i]]++;
            for (size_t d = 0; d < dim; d++) sums[labels[i] * dim + d] += x[i * dim + d];
        }
        double shift = 0;
        for (size_t j = 0; j < k; j++) {
            if (counts[j]) {
                for (size_t d = 0; d < dim; d++) {
                    const float moved = (float)(sums[j * dim + d] / (double)counts[j]);
                    shift += ((double)moved - c[j * dim + d]) * ((double)moved - c[j * dim + d]);
                    c[j * dim + d] = moved;
                }
                continue;
            }
            /* an empty cluster takes the point farthest from its centre, which then counts as covered */
            size_t far = 0;
            for (size_t i = 1; i < n; i++)
                if (nearest[i] > nearest[far]) far = i;
            memcpy(c + j * dim, x + far * dim, dim * sizeof *c);
            nearest[far] = 0;
            info->relocated++;
            shift = INFINITY;
        }
        settled = shift <= tolerance;
    }
    info->inertia = 0;
    for (size_t i = 0; i < n; i++) info->inertia += squared_distance(x + i * dim, c + labels[i] * dim, dim);
    if (centroids) memcpy(centroids, c, k * dim * sizeof *c);
    free(c);
    free(nearest);
    free(sums);
    free(counts);
    return HONE_OK;
}

static int double_cmp(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* numpy.percentile (linear): sorted[(m - 1) q / 100] interpolated between its neighbours. */
static double percentile(const double *sorted, size_t m, double q) {
    const double at = (double)(m - 1) * q / 100;
    const size_t lo = (size_t)floor(at), hi = lo + 1 < m ? lo + 1 : lo;
    return sorted[lo] + (sorted[hi] - sorted[lo]) * (at - (double)lo);
}

hone_status hone_cherry_pick(const uint32_t *labels, const double *ppl, size_t n, size_t k, double low, double high,
                             size_t per_cluster, uint8_t *picked, size_t *n_picked) {
    if (!(low >= 0 && low <= high && high <= 100) || per_cluster < 1)
        return hone_errorf(HONE_ERR_INVALID, "pre-experience: percentiles %g..%g must satisfy 0 <= low <= high <= "
                                             "100, and at least 1 example per cluster is needed",
                           low, high);
    size_t *members = malloc((n + 1) * sizeof *members);
    double *values = malloc((n + 1) * sizeof *values);
    if (!members || !values) {
        free(members);
        free(values);
        return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    }
    memset(picked, 0, n);
    *n_picked = 0;
    for (size_t c = 0; c < k; c++) {
        size_t m = 0, v = 0;
        for (size_t i = 0; i < n; i++)
            if (labels[i] == c) {
                members[m++] = i;
                if (!isnan(ppl[i])) values[v++] = ppl[i];
            }
        if (m < per_cluster) {
            for (size_t t = 0; t < m; t++) picked[members[t]] = 1;
            *n_picked += m;
            continue;
        }
        if (!v) continue;
        qsort(values, v, sizeof *values, double_cmp);
        const double lo = percentile(values, v, low), hi = percentile(values, v, high);
        size_t middle = 0; /* members within [lo, hi], compacted in place, file order */
        for (size_t t = 0; t < m; t++)
            if (ppl[members[t]] >= lo && ppl[members[t]] <= hi) members[middle++] = members[t];
        const size_t step = middle < per_cluster ? 1 : middle / per_cluster;
        for (size_t t = 0, taken = 0; t < middle && taken < per_cluster; t += step, taken++) {
            picked[members[t]] = 1;
            ++*n_picked;
        }
    }
    free(members);
    free(values);
    return HONE_OK;
}
