/* Selection from IFD scores (ALGORITHMS.md §1): thresholds, then the hardest examples first, with DEITA's
 * diversity filter, up to a cap. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hone/select.h"

const char *hone_select_reason_name(hone_select_reason r) {
    static const char *const names[HONE_SELECT_REASON_COUNT] = {"kept",         "not_scored",   "ifd_too_high",
                                                                "rifd_too_high", "too_similar", "below_cut"};
    return r < HONE_SELECT_REASON_COUNT ? names[r] : "unknown";
}

typedef struct {
    size_t index;
    double ifd;
} ranked;

/* Descending ifd; ties in file order, so the order is total and the result deterministic. */
static int by_ifd_desc(const void *a, const void *b) {
    const ranked *x = a, *y = b;
    if (x->ifd != y->ifd) return x->ifd > y->ifd ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

static double cosine(const float *a, const float *b, size_t dim) {
    double ab = 0, aa = 0, bb = 0;
    for (size_t d = 0; d < dim; d++) {
        ab += (double)a[d] * b[d];
        aa += (double)a[d] * a[d];
        bb += (double)b[d] * b[d];
    }
    return aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : 0;
}

hone_status hone_select_ifd(const double *ifd, const double *rifd, size_t n, const hone_select_options *o,
                            hone_select_decision *out) {
    if (o->max_ifd < 0 || o->max_rifd < 0 || o->top_fraction < 0 || o->top_fraction > 1 || o->max_similarity < 0 ||
        o->max_similarity > 1)
        return hone_errorf(HONE_ERR_INVALID, "selection: max_ifd and max_rifd must be >= 0, top_fraction and "
                                             "max_similarity in [0, 1]");
    if (o->max_similarity > 0 && (!o->embeddings || !o->dim))
        return hone_errorf(HONE_ERR_INVALID, "selection: max_similarity needs the examples' embeddings");
    ranked *order = malloc((n ? n : 1) * sizeof *order);
    size_t *kept = malloc((n ? n : 1) * sizeof *kept);
    if (!order || !kept) {
        free(order);
        free(kept);
        return hone_errorf(HONE_ERR_NOMEM, "out of memory selecting %zu examples", n);
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        out[i] = (hone_select_decision){HONE_SELECT_KEPT, 0, 0};
        if (isnan(ifd[i])) out[i].reason = HONE_SELECT_NOT_SCORED;
        else if (o->max_ifd > 0 && ifd[i] >= o->max_ifd) out[i].reason = HONE_SELECT_IFD_TOO_HIGH;
        else if (o->max_rifd > 0 && rifd && !(rifd[i] < o->max_rifd)) out[i].reason = HONE_SELECT_RIFD_TOO_HIGH;
        else order[m++] = (ranked){i, ifd[i]};
    }
    qsort(order, m, sizeof *order, by_ifd_desc);
    size_t cap = n;
    if (o->top_k) cap = o->top_k;
    if (o->top_fraction > 0) {
        const size_t by_fraction = (size_t)llround(o->top_fraction * (double)n);
        cap = by_fraction < cap ? by_fraction : cap;
    }
    size_t n_kept = 0;
    for (size_t r = 0; r < m; r++) {
        hone_select_decision *d = &out[order[r].index];
        d->rank = r + 1;
        if (n_kept >= cap) {
            d->reason = HONE_SELECT_BELOW_CUT;
            continue;
        }
        if (o->max_similarity > 0) {
            const float *e = o->embeddings + order[r].index * o->dim;
            double nearest = -1;
            for (size_t k = 0; k < n_kept; k++) {
                const double c = cosine(e, o->embeddings + kept[k] * o->dim, o->dim);
                nearest = c > nearest ? c : nearest;
            }
            if (nearest > o->max_similarity) {
                d->reason = HONE_SELECT_TOO_SIMILAR;
                d->similarity = nearest;
                continue;
            }
        }
        kept[n_kept++] = order[r].index;
    }
    free(order);
    free(kept);
    return HONE_OK;
}
