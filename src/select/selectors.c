/* Selection from IFD scores (ALGORITHMS.md §1): thresholds, then the hardest examples first without duplicates,
 * with DEITA's diversity filter up to a cap, or Superfiltering's facility location within it. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "select/select_internal.h"

const char *hone_select_reason_name(hone_select_reason r) {
    static const char *const names[HONE_SELECT_REASON_COUNT] = {"kept",         "not_scored",   "ifd_too_high",
                                                                "rifd_too_high", "too_similar", "below_cut",
                                                                "duplicate",    "not_chosen_by_facility_location"};
    return r < HONE_SELECT_REASON_COUNT ? names[r] : "unknown";
}

int select_by_ifd_desc(const void *a, const void *b) {
    const select_ranked *x = a, *y = b;
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

/* Keeps target of the examples order[0..m) (ranked first to last, all within the cut) by facility location on
 * their embeddings; the others are NOT_CHOSEN_BY_FACILITY_LOCATION. */
static hone_status facility_pick(const select_ranked *order, size_t m, size_t target, const hone_select_options *o,
                                 hone_select_decision *out) {
    float *x = malloc((m * o->dim + 1) * sizeof *x);
    size_t *chosen = malloc((m + 1) * sizeof *chosen);
    hone_status st = x && chosen ? HONE_OK : hone_errorf(HONE_ERR_NOMEM, "out of memory for facility location");
    for (size_t r = 0; r < m && st == HONE_OK; r++) {
        memcpy(x + r * o->dim, o->embeddings + order[r].index * o->dim, o->dim * sizeof *x);
        out[order[r].index].reason = HONE_SELECT_NOT_CHOSEN_BY_FACILITY_LOCATION;
    }
    if (target > m) target = m;
    if (st == HONE_OK) st = hone_facility_location(x, m, o->dim, target, chosen, NULL);
    for (size_t t = 0; t < target && st == HONE_OK; t++) out[order[chosen[t]].index].reason = HONE_SELECT_KEPT;
    free(x);
    free(chosen);
    return st;
}

hone_status hone_select_ifd(const double *ifd, const double *rifd, size_t n, const hone_select_options *o,
                            hone_select_decision *out) {
    if (o->max_ifd < 0 || o->max_rifd < 0 || o->top_fraction < 0 || o->top_fraction > 1 || o->max_similarity < 0 ||
        o->max_similarity > 1 || o->facility_location < 0)
        return hone_errorf(HONE_ERR_INVALID, "selection: max_ifd, max_rifd and facility_location must be >= 0, "
                                             "top_fraction and max_similarity in [0, 1]");
    if ((o->max_similarity > 0 || o->facility_location > 0) && (!o->embeddings || !o->dim))
        return hone_errorf(HONE_ERR_INVALID, "selection: max_similarity and facility_location need the examples' "
                                             "embeddings");
    if (o->max_similarity > 0 && o->facility_location > 0)
        return hone_errorf(HONE_ERR_INVALID, "selection: give max_similarity (DEITA) or facility_location "
                                             "(Superfiltering), not both");
    select_ranked *order = malloc((n ? n : 1) * sizeof *order);
    size_t *twin = malloc((n ? n : 1) * sizeof *twin);
    size_t *indices = malloc((n ? n : 1) * sizeof *indices);
    double *twin_similarity = malloc((n ? n : 1) * sizeof *twin_similarity);
    if (!order || !twin || !indices || !twin_similarity) {
        free(order);
        free(twin);
        free(indices);
        free(twin_similarity);
        return hone_errorf(HONE_ERR_NOMEM, "out of memory selecting %zu examples", n);
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        out[i] = (hone_select_decision){HONE_SELECT_KEPT, 0, 0, 0};
        if (isnan(ifd[i])) out[i].reason = HONE_SELECT_NOT_SCORED;
        else if (o->max_ifd > 0 && ifd[i] >= o->max_ifd) out[i].reason = HONE_SELECT_IFD_TOO_HIGH;
        else if (o->max_rifd > 0 && rifd && !(rifd[i] < o->max_rifd)) out[i].reason = HONE_SELECT_RIFD_TOO_HIGH;
        else order[m++] = (select_ranked){i, ifd[i]};
    }
    qsort(order, m, sizeof *order, select_by_ifd_desc);
    for (size_t r = 0; r < m; r++) {
        indices[r] = order[r].index;
        twin[r] = SIZE_MAX;
    }
    hone_status st = o->dedup != HONE_DEDUP_NONE ? select_mark_duplicates(indices, m, o, twin, twin_similarity)
                                                 : HONE_OK;
    size_t cap = n;
    if (o->top_k) cap = o->top_k;
    if (o->top_fraction > 0) {
        const size_t by_fraction = (size_t)llround(o->top_fraction * (double)n);
        cap = by_fraction < cap ? by_fraction : cap;
    }
    size_t n_kept = 0;
    for (size_t r = 0; r < m && st == HONE_OK; r++) {
        hone_select_decision *d = &out[order[r].index];
        d->rank = r + 1;
        if (twin[r] != SIZE_MAX) {
            *d = (hone_select_decision){HONE_SELECT_DUPLICATE, r + 1, twin_similarity[r], twin[r]};
            continue;
        }
        if (n_kept >= cap) {
            d->reason = HONE_SELECT_BELOW_CUT;
            continue;
        }
        if (o->max_similarity > 0) {
            const float *e = o->embeddings + order[r].index * o->dim;
            double nearest = -1;
            for (size_t k = 0; k < n_kept; k++) {
                const double c = cosine(e, o->embeddings + order[k].index * o->dim, o->dim);
                nearest = c > nearest ? c : nearest;
            }
            if (nearest > o->max_similarity) {
                d->reason = HONE_SELECT_TOO_SIMILAR;
                d->similarity = nearest;
                continue;
            }
        }
        order[n_kept++] = order[r]; /* the kept so far, in rank order: the ground set of facility location */
    }
    if (st == HONE_OK && o->facility_location > 0) {
        const double f = o->facility_location;
        st = facility_pick(order, n_kept, f >= 1 ? (size_t)f : (size_t)llround(f * (double)n), o, out);
    }
    free(order);
    free(twin);
    free(indices);
    free(twin_similarity);
    return st;
}
