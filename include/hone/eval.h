/* hone/eval.h — evaluation: mean next-token loss and perplexity of a token stream.
 *
 *     hone_eval_result r;
 *     if (hone_eval_tokens(model, &tokens, 512, 4, &r) != HONE_OK) die(hone_error());
 *     printf("loss %.4f perplexity %.2f\n", r.loss, r.perplexity);
 */
#ifndef HONE_EVAL_H
#define HONE_EVAL_H

#include "hone/data.h"
#include "hone/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    double loss;       /* mean next-token NLL */
    double perplexity; /* exp(loss) */
    int64_t tokens;    /* predicted tokens */
    int64_t blocks;
} hone_eval_result;

/* Mean next-token loss over the blocks of sequence_len tokens (the last partial block is kept when it has at
 * least 2 tokens), micro_batch_size blocks per forward pass. */
hone_status hone_eval_tokens(hone_model *m, const hone_token_stream *data, int sequence_len, int micro_batch_size,
                             hone_eval_result *out);

#ifdef __cplusplus
}
#endif
#endif
