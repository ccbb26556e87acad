/* Mean next-token loss and perplexity of a token stream. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hone/eval.h"
#include "hone/peft.h"

/* Scores n_seq consecutive sequences of length T starting at tokens[0]; adds to sum/count. With a prompt-tuning
 * adapter each row is nv placeholders (its virtual tokens) then the block, and the last placeholder predicts the
 * block's first token, as PEFT's labels (−100 for the virtual tokens, then the block) have it. ids and targets hold
 * n_seq × (nv + T). */
static hone_status score(hone_model *m, const int32_t *tokens, int n_seq, int T, int nv, int32_t *ids,
                         int32_t *targets, double *sum, int64_t *count) {
    const int W = nv + T;
    for (int b = 0; b < n_seq; b++) {
        int32_t *row = ids + (size_t)b * W, *tgt = targets + (size_t)b * W;
        const int32_t *block = tokens + (size_t)b * T;
        for (int t = 0; t < nv; t++) {
            row[t] = 0;
            tgt[t] = t + 1 < nv ? -100 : block[0];
        }
        memcpy(row + nv, block, sizeof(int32_t) * T);
        memcpy(tgt + nv, block + 1, sizeof(int32_t) * (T - 1));
        tgt[W - 1] = -100;
    }
    HONE_TRY(hone_model_forward(m, ids, n_seq, W));
    hone_loss loss;
    HONE_TRY(hone_head_cross_entropy(m, targets, 1.0f, 0, &loss));
    *sum += loss.sum_nll;
    *count += loss.count;
    return HONE_OK;
}

hone_status hone_eval_tokens(hone_model *m, const hone_token_stream *data, int T, int B, hone_eval_result *out) {
    memset(out, 0, sizeof *out);
    if (T < 2) return hone_errorf(HONE_ERR_INVALID, "sequence_len must be at least 2");
    if (B < 1) return hone_errorf(HONE_ERR_INVALID, "micro_batch_size must be at least 1");
    const int64_t full = (int64_t)(data->n_tokens / (size_t)T);
    const int tail = (int)(data->n_tokens % (size_t)T);
    if (full == 0 && tail < 2)
        return hone_errorf(HONE_ERR_INVALID, "the data holds %zu tokens; at least 2 are needed to score anything",
                           data->n_tokens);
    int batch = full < B ? (int)(full > 0 ? full : 1) : B;
    const int nv = hone_model_virtual_tokens(m);
    HONE_TRY(hone_model_prepare(m, batch, nv + T, 0));
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)batch * (nv + T));
    int32_t *targets = malloc(sizeof(int32_t) * (size_t)batch * (nv + T));
    if (!ids || !targets) {
        free(ids);
        free(targets);
        return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    }
    double sum = 0;
    int64_t count = 0;
    hone_status st = HONE_OK;
    for (int64_t b0 = 0; b0 < full && st == HONE_OK; b0 += batch) {
        int n = full - b0 < batch ? (int)(full - b0) : batch;
        st = score(m, data->tokens + b0 * T, n, T, nv, ids, targets, &sum, &count);
    }
    if (st == HONE_OK && tail >= 2) st = score(m, data->tokens + full * T, 1, tail, nv, ids, targets, &sum, &count);
    free(ids);
    free(targets);
    HONE_TRY(st);
    out->blocks = full + (tail >= 2);
    out->tokens = count;
    out->loss = sum / (double)count;
    out->perplexity = exp(out->loss);
    if (!isfinite(out->loss))
        return hone_errorf(HONE_ERR_NUMERIC, "the loss is not finite (%g): the model produces NaN or infinity",
                           out->loss);
    return HONE_OK;
}
