/* Packed forward passes without a loss: running rows in micro-batches, and sequence embeddings (the mean of the
 * last-layer hidden states over a sequence's tokens) with, on request, each sequence's perplexity. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "select/select_internal.h"

hone_status select_run_packed(hone_model *m, const hone_packed *rows, int micro_batch_size, select_batch_fn fn,
                              void *ctx) {
    const int L = rows->row_len;
    const int B = rows->n_rows < (size_t)micro_batch_size ? (int)rows->n_rows : micro_batch_size;
    if (B < 1) return HONE_OK;
    HONE_TRY(hone_model_prepare(m, B, L, 0));
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)B * L), *pos = malloc(sizeof(int32_t) * (size_t)B * L);
    int32_t *targets = malloc(sizeof(int32_t) * (size_t)B * L);
    hone_status st = ids && pos && targets ? HONE_OK : hone_errorf(HONE_ERR_NOMEM, "out of memory");
    for (size_t r0 = 0; r0 < rows->n_rows && st == HONE_OK; r0 += (size_t)B) {
        const int b = rows->n_rows - r0 < (size_t)B ? (int)(rows->n_rows - r0) : B;
        int T = 1; /* the batch runs as long as its longest row */
        for (int k = 0; k < b; k++) T = rows->used[r0 + k] > T ? rows->used[r0 + k] : T;
        for (int k = 0; k < b; k++) {
            const size_t from = (r0 + k) * (size_t)L, to = (size_t)k * T;
            memcpy(ids + to, rows->ids + from, sizeof(int32_t) * T);
            memcpy(pos + to, rows->pos + from, sizeof(int32_t) * T);
            memcpy(targets + to, rows->labels + from, sizeof(int32_t) * T);
        }
        st = hone_model_forward_positions(m, ids, pos, b, T);
        if (st == HONE_OK) st = fn(m, rows, r0, b, T, targets, ctx);
    }
    free(ids);
    free(pos);
    free(targets);
    return st;
}

typedef struct {
    const size_t *lens; /* tokens of each sequence as packed */
    size_t n;
    size_t dim;
    double *sums;     /* [n, dim] */
    double *nll_sums; /* [n], or NULL: no perplexity */
    double *nll;      /* [micro_batch_size, sequence_len] */
} embed_ctx;

static hone_status add_hidden(hone_model *m, const hone_packed *rows, size_t r0, int b, int T, const int32_t *targets,
                              void *ctx) {
    (void)targets;
    const embed_ctx *e = ctx;
    const float *h = hone_model_hidden(m);
    size_t k, col;
    for (size_t i = 0; i < e->n; i++) {
        if (!select_in_batch(rows, i, r0, b, &k, &col)) continue;
        double *sum = e->sums + i * e->dim;
        for (size_t t = 0; t < e->lens[i]; t++) {
            const float *row = h + (k * (size_t)T + col + t) * e->dim;
            for (size_t d = 0; d < e->dim; d++) sum[d] += row[d];
        }
    }
    if (!e->nll_sums) return HONE_OK;
    hone_loss loss;
    HONE_TRY(hone_head_token_nll(m, targets, e->nll, &loss));
    for (size_t i = 0; i < e->n; i++)
        if (select_in_batch(rows, i, r0, b, &k, &col))
            for (size_t t = 0; t < e->lens[i]; t++) e->nll_sums[i] += e->nll[k * (size_t)T + col + t];
    return HONE_OK;
}

hone_status select_embed_ppl(hone_model *m, const int32_t *const *ids, const size_t *lens, size_t n, int sequence_len,
                             int micro_batch_size, float *out, double *ppl) {
    if (sequence_len < 2 || micro_batch_size < 1)
        return hone_errorf(HONE_ERR_INVALID, "sequence_len must be at least 2 and micro_batch_size at least 1");
    const size_t dim = (size_t)hone_model_get_config(m)->hidden_size;
    memset(out, 0, sizeof(float) * n * dim);
    hone_sequence *seqs = calloc(n + 1, sizeof *seqs);
    size_t *kept_lens = calloc(n + 1, sizeof *kept_lens);
    double *sums = calloc(n * dim + 1, sizeof *sums);
    hone_status st = seqs && kept_lens && sums ? HONE_OK : hone_errorf(HONE_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n && st == HONE_OK; i++) {
        /* labels only mark the tokens as part of the sample (packing skips samples with nothing labelled) */
        kept_lens[i] = lens[i] < (size_t)sequence_len ? lens[i] : (size_t)sequence_len;
        seqs[i].input_ids = (int32_t *)ids[i];
        seqs[i].labels = (int32_t *)ids[i];
        seqs[i].n = kept_lens[i];
    }
    hone_packed rows = {0};
    const hone_pack_options po = {.sequence_len = sequence_len, .sample_packing = 1, .truncation = HONE_TRUNCATE_CUT};
    if (st == HONE_OK) st = hone_pack(seqs, n, &po, &rows);
    embed_ctx ctx = {.lens = kept_lens, .n = n, .dim = dim, .sums = sums};
    if (st == HONE_OK && ppl) {
        ctx.nll_sums = calloc(n + 1, sizeof *ctx.nll_sums);
        ctx.nll = malloc(sizeof(double) * (size_t)micro_batch_size * (size_t)sequence_len);
        if (!ctx.nll_sums || !ctx.nll) st = hone_errorf(HONE_ERR_NOMEM, "out of memory");
    }
    if (st == HONE_OK) st = select_run_packed(m, &rows, micro_batch_size, add_hidden, &ctx);
    for (size_t i = 0; i < n && st == HONE_OK; i++) {
        if (rows.sample_at[i] >= 0)
            for (size_t d = 0; d < dim; d++) out[i * dim + d] = (float)(sums[i * dim + d] / (double)kept_lens[i]);
        /* the targets of a sequence are its tokens 1 .. len - 1 (the last position predicts nothing) */
        if (ppl) ppl[i] = rows.sample_at[i] >= 0 && kept_lens[i] > 1 ? exp(ctx.nll_sums[i] / (double)(kept_lens[i] - 1))
                                                                      : NAN;
    }
    free(ctx.nll_sums);
    free(ctx.nll);
    hone_packed_free(&rows);
    free(seqs);
    free(kept_lens);
    free(sums);
    return st;
}

hone_status hone_embed_sequences(hone_model *m, const int32_t *const *ids, const size_t *lens, size_t n,
                                 int sequence_len, int micro_batch_size, float *out) {
    return select_embed_ppl(m, ids, lens, n, sequence_len, micro_batch_size, out, NULL);
}
