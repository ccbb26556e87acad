/* Greedy facility location (Superfiltering's diversity variant; see hone_facility_location in hone/select.h) with
 * lazy evaluation: a candidate's gain only shrinks as the set grows, so a stale gain is an upper bound and only the
 * top of a max-heap needs recomputing. The n × n similarities are one SGEMM up front (n² floats), so a gain costs
 * O(n), not O(n · dim): on spread-out embeddings lazy evaluation saves little and most gains are recomputed. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hone/select.h"

typedef struct {
    double bound; /* the gain when last computed: an upper bound of the gain now */
    size_t index;
    size_t stamp; /* the size of the set when the bound was computed */
} candidate;

/* Heap order: larger bound first, then lower index (the plain greedy's tie rule). */
static int before(const candidate *a, const candidate *b) {
    return a->bound != b->bound ? a->bound > b->bound : a->index < b->index;
}

static void sift_down(candidate *h, size_t n, size_t i) {
    for (;;) {
        size_t best = i;
        const size_t l = 2 * i + 1, r = l + 1;
        if (l < n && before(&h[l], &h[best])) best = l;
        if (r < n && before(&h[r], &h[best])) best = r;
        if (best == i) return;
        const candidate t = h[i];
        h[i] = h[best];
        h[best] = t;
        i = best;
    }
}

/* F(S + j) - F(S) = sum over i of max(0, sim(i, j) - cover[i]), sim(i, j) = row j of the similarities. */
static double gain_of(const float *sim_j, size_t n, const double *cover) {
    double g = 0;
    for (size_t i = 0; i < n; i++) g += sim_j[i] > cover[i] ? sim_j[i] - cover[i] : 0;
    return g;
}

#define MAX_SIMILARITY_BYTES (8ull << 30)

hone_status hone_facility_location(const float *x, size_t n, size_t dim, size_t k, size_t *chosen, double *gains) {
    if (k > n) k = n;
    if ((double)n * (double)n * sizeof(float) > (double)MAX_SIMILARITY_BYTES || n > INT32_MAX || dim > INT32_MAX)
        return hone_errorf(HONE_ERR_INVALID,
                           "facility location over %zu examples needs their %zu x %zu similarities (over 8 GiB): "
                           "lower top_k / top_fraction",
                           n, n, n);
    float *unit = malloc((n * dim + 1) * sizeof *unit), *sim = malloc((n * n + 1) * sizeof *sim);
    double *cover = calloc(n + 1, sizeof *cover);
    candidate *heap = malloc((n + 1) * sizeof *heap);
    if (!unit || !sim || !cover || !heap) {
        free(unit);
        free(sim);
        free(cover);
        free(heap);
        return hone_errorf(HONE_ERR_NOMEM, "out of memory for facility location over %zu examples", n);
    }
    for (size_t i = 0; i < n; i++) {
        double norm = 0;
        for (size_t d = 0; d < dim; d++) norm += (double)x[i * dim + d] * x[i * dim + d];
        const double inv = norm > 0 ? 1 / sqrt(norm) : 0;
        for (size_t d = 0; d < dim; d++) unit[i * dim + d] = (float)(x[i * dim + d] * inv);
    }
    if (n)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)n, (int)dim, 1.0f, unit, (int)dim, unit,
                    (int)dim, 0.0f, sim, (int)n);
    /* every bound starts at +inf: each candidate is computed once before it can be picked */
    for (size_t i = 0; i < n; i++) heap[i] = (candidate){INFINITY, i, SIZE_MAX};
    size_t size = n;
    for (size_t t = 0; t < k; t++) {
        while (heap[0].stamp != t) {
            heap[0].bound = gain_of(sim + heap[0].index * n, n, cover);
            heap[0].stamp = t;
            sift_down(heap, size, 0);
        }
        const size_t j = heap[0].index;
        chosen[t] = j;
        if (gains) gains[t] = heap[0].bound;
        heap[0] = heap[--size];
        sift_down(heap, size, 0);
        for (size_t i = 0; i < n; i++) cover[i] = sim[j * n + i] > cover[i] ? sim[j * n + i] : cover[i];
    }
    free(unit);
    free(sim);
    free(cover);
    free(heap);
    return HONE_OK;
}
