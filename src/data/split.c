/* The validation split: examples set aside from the training set before packing, chosen by the seed. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hone/render.h"

#define SPLIT_STREAM 0x73706c74u /* "splt" */

static void count_tokens(hone_rendered_set *s) {
    s->tokens = s->trained_tokens = 0;
    for (size_t i = 0; i < s->n; i++) {
        s->tokens += s->seqs[i].n;
        s->trained_tokens += s->seqs[i].n_trained;
    }
}

hone_status hone_rendered_split(hone_rendered_set *set, double val_set_size, uint64_t seed, hone_rendered_set *eval) {
    memset(eval, 0, sizeof *eval);
    if (!(val_set_size > 0) || !isfinite(val_set_size) || (val_set_size >= 1 && val_set_size != floor(val_set_size)))
        return hone_errorf(HONE_ERR_INVALID,
                           "val_set_size must be a fraction in (0, 1) or a whole count of examples >= 1, not %g",
                           val_set_size);
    /* a fraction is read as the decimal written: 0.1 of 30 is 3, not ceil(3.0000000000000004) = 4 */
    const size_t n = set->n,
                 n_eval = val_set_size < 1 ? (size_t)ceil(val_set_size * (double)n - 1e-9) : (size_t)val_set_size;
    if (n_eval == 0 || n_eval >= n)
        return hone_errorf(HONE_ERR_INVALID,
                           "val_set_size %g takes %zu of the %zu examples for evaluation: leave at least one for "
                           "training and take at least one",
                           val_set_size, n_eval, n);
    size_t *perm = malloc(sizeof *perm * n);
    unsigned char *to_eval = calloc(n, 1);
    eval->seqs = calloc(n_eval, sizeof *eval->seqs);
    if (!perm || !to_eval || !eval->seqs) {
        free(perm);
        free(to_eval);
        free(eval->seqs);
        eval->seqs = NULL;
        return hone_errorf(HONE_ERR_NOMEM, "out of memory splitting %zu examples", n);
    }
    /* the first n_eval of a seeded permutation go to evaluation; both sets keep the examples' order */
    for (size_t i = 0; i < n; i++) perm[i] = i;
    hone_rng rng = hone_rng_new(seed, SPLIT_STREAM);
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)(hone_rng_u64(&rng) % (uint64_t)(i + 1)), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    for (size_t i = 0; i < n_eval; i++) to_eval[perm[i]] = 1;
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        if (to_eval[i]) eval->seqs[eval->n++] = set->seqs[i];
        else set->seqs[kept++] = set->seqs[i];
    }
    set->n = kept;
    count_tokens(set);
    count_tokens(eval);
    free(perm);
    free(to_eval);
    return HONE_OK;
}
