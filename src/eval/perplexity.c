/* Mean next-token loss and perplexity of a token stream. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hone/eval.h"

/* Scores n_seq consecutive sequences of length T starting at tokens[0]; adds to sum/count. */
static hone_status score(hone_model *m, const int32_t *tokens, int n_seq, int T, int32_t *targets, double *sum,
                         int64_t *count) {
    for (int b = 0; b < n_seq; b++) {
        memcpy(targets + (size_t)b * T, tokens + (size_t)b * T + 1, sizeof(int32_t) * (T - 1));
        targets[(size_t)b * T + T - 1] = -100;
    }
    HONE_TRY(hone_model_forward(m, tokens, n_seq, T));
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
    HONE_TRY(hone_model_prepare(m, batch, T, 0));
    int32_t *targets = malloc(sizeof(int32_t) * (size_t)batch * T);
    if (!targets) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    double sum = 0;
    int64_t count = 0;
    hone_status st = HONE_OK;
    for (int64_t b0 = 0; b0 < full && st == HONE_OK; b0 += batch) {
        int n = full - b0 < batch ? (int)(full - b0) : batch;
        st = score(m, data->tokens + b0 * T, n, T, targets, &sum, &count);
    }
    if (st == HONE_OK && tail >= 2) st = score(m, data->tokens + full * T, 1, tail, targets, &sum, &count);
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
