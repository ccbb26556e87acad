/* Star-Agents on numbers (hone/star_agents.h, ALGORITHMS.md §3): pair probabilities, seeded draws, the memory
 * bank, candidate scores and the evolution of p. */
#include <math.h>
#include <string.h>

#include "hone/star_agents.h"

void hone_star_init(double *p, size_t n_pairs) {
    for (size_t i = 0; i < n_pairs; i++) p[i] = 1.0 / (double)n_pairs;
}

/* A uniform double in [0, 1) with 53 random bits (hone_rng_uniform's 24 bits would tie close probabilities). */
static double uniform53(hone_rng *r) { return (double)(hone_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0); }

size_t hone_star_draw(const double *p, size_t n_pairs, size_t m, uint64_t seed, size_t seed_index, unsigned char *taken,
                      size_t *out) {
    /* one stream per seed instruction: the draws of seed i do not depend on how many were made before it */
    hone_rng rng = hone_rng_new(seed, 0x57a2a6e7ull + seed_index);
    size_t n = 0;
    while (n < m) {
        double total = 0;
        size_t last = n_pairs;
        for (size_t i = 0; i < n_pairs; i++)
            if (!taken[i] && p[i] > 0) {
                total += p[i];
                last = i;
            }
        if (last == n_pairs) break;
        const double u = uniform53(&rng) * total;
        double below = 0;
        size_t pick = last; /* rounding can leave u at the very end of the range: the last open pair takes it */
        for (size_t i = 0; i < n_pairs; i++) {
            if (taken[i] || !(p[i] > 0)) continue;
            below += p[i];
            if (u < below) {
                pick = i;
                break;
            }
        }
        taken[pick] = 1;
        out[n++] = pick;
    }
    return n;
}

void hone_star_normalize(float *v, size_t n, size_t dim) {
    for (size_t i = 0; i < n; i++) {
        float *row = v + i * dim;
        double norm = 0;
        for (size_t d = 0; d < dim; d++) norm += (double)row[d] * row[d];
        if (norm > 0)
            for (size_t d = 0; d < dim; d++) row[d] = (float)(row[d] / sqrt(norm));
    }
}

static double dot(const float *a, const float *b, size_t dim) {
    double s = 0;
    for (size_t d = 0; d < dim; d++) s += (double)a[d] * b[d];
    return s;
}

size_t hone_star_memory_pairs(const float *unit, size_t dim, size_t seed_index, const size_t *winner_of, size_t l,
                              unsigned char *taken, size_t *out) {
    const float *self = unit + seed_index * dim;
    size_t n = 0;
    /* l passes, each taking the most similar earlier winner whose pair is not taken yet: l is small */
    while (n < l) {
        size_t best = HONE_STAR_KEEP_SEED;
        double best_sim = -INFINITY;
        for (size_t i = 0; i < seed_index; i++) {
            if (winner_of[i] == HONE_STAR_KEEP_SEED || taken[winner_of[i]]) continue;
            const double sim = dot(self, unit + i * dim, dim);
            if (sim > best_sim) {
                best_sim = sim;
                best = i;
            }
        }
        if (best == HONE_STAR_KEEP_SEED) break;
        taken[winner_of[best]] = 1;
        out[n++] = winner_of[best];
    }
    return n;
}

size_t hone_star_score(hone_star_candidate *c, size_t n) {
    double max_gap = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        c[i].gap = c[i].ifd_small - c[i].ifd_large; /* NaN when either IFD is missing */
        if (c[i].gap > max_gap) max_gap = c[i].gap;
    }
    size_t best = HONE_STAR_KEEP_SEED;
    double best_score = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(c[i].gap)) {
            c[i].dual = c[i].score = NAN;
            continue;
        }
        c[i].dual = max_gap > 0 ? c[i].gap / max_gap : 0;
        c[i].score = c[i].judge > 0 ? c[i].judge * c[i].dual : 0; /* worse than the seed: 0, never -0 */
        if (c[i].score > best_score) {
            best_score = c[i].score;
            best = i;
        }
    }
    return best;
}

void hone_star_update(double *p, size_t n_pairs, size_t pair, double beta, double score) {
    p[pair] += beta * score;
    double total = 0;
    for (size_t i = 0; i < n_pairs; i++) total += p[i];
    for (size_t i = 0; i < n_pairs; i++) p[i] /= total;
}
