/* Shared by the scoring passes of src/select. Not part of the public API. */
#ifndef HONE_SELECT_INTERNAL_H
#define HONE_SELECT_INTERNAL_H

#include "hone/pack.h"
#include "hone/select.h"

/* Called for each micro-batch after its forward pass: rows r0 .. r0 + b - 1 of `rows`, run cut to their longest
 * used length T; targets [b, T] are the rows' labels. */
typedef hone_status (*select_batch_fn)(hone_model *m, const hone_packed *rows, size_t r0, int b, int T,
                                       const int32_t *targets, void *ctx);

/* Where packed sequence i lies in the batch of rows r0 .. r0 + b - 1: its row within the batch and its first
 * column; 0 when it is not in this batch (or was not placed). */
static inline int select_in_batch(const hone_packed *rows, size_t i, size_t r0, int b, size_t *k, size_t *col) {
    const int64_t at = rows->sample_at[i], L = rows->row_len;
    if (at < 0 || (size_t)(at / L) < r0 || (size_t)(at / L) >= r0 + (size_t)b) return 0;
    *k = (size_t)(at / L) - r0;
    *col = (size_t)(at % L);
    return 1;
}

/* Runs the packed rows through the model's trunk (no gradients) micro_batch_size rows at a time. */
hone_status select_run_packed(hone_model *m, const hone_packed *rows, int micro_batch_size, select_batch_fn fn,
                              void *ctx);

#endif
