/* hone/train.h — the training loop (pre-training on token streams) and the training-step benchmark.
 *
 *     hone_train_config tc;
 *     hone_train_config_defaults(&tc);
 *     tc.sequence_len = 256; tc.output_dir = "out";
 *     hone_train_summary sum;
 *     if (hone_pretrain(model, &tokens, &tc, NULL, NULL, &sum) != HONE_OK) die(hone_error());
 *
 * Data: the token stream is cut into consecutive, non-overlapping blocks of sequence_len tokens (the remainder
 * is dropped and reported); a block predicts its sequence_len - 1 next tokens. Optimizer step s uses blocks
 * [s·B·GA, (s+1)·B·GA) of the epoch's order (file order with shuffle off, a seeded permutation per epoch with
 * shuffle on). The loss of a step is the sum of the NLL over every predicted token of its micro-batches divided
 * by their number, and the gradient is that of this loss.
 */
#ifndef HONE_TRAIN_H
#define HONE_TRAIN_H

#include "hone/data.h"
#include "hone/model.h"
#include "hone/optim.h"
#include "hone/pack.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int sequence_len;
    int micro_batch_size;
    int gradient_accumulation_steps;
    int num_epochs;
    int64_t max_steps;     /* > 0 overrides num_epochs */
    float learning_rate;
    hone_sched_kind lr_scheduler;
    int64_t warmup_steps;
    float warmup_ratio;
    hone_optim_config optim;
    float max_grad_norm;   /* 0 = no clipping */
    uint64_t seed;
    int shuffle;
    int64_t save_steps;    /* 0 = only at the end */
    int64_t logging_steps; /* progress lines every N steps (metrics.jsonl gets every step) */
    const char *output_dir;/* NULL = nothing written */
    int max_bad_steps;     /* consecutive non-finite steps tolerated (skipped) before the run stops */
} hone_train_config;

void hone_train_config_defaults(hone_train_config *c);

typedef struct {
    int64_t step;          /* 1-based index of the optimizer step just done */
    int64_t total_steps;
    int epoch;
    double loss;           /* the loss the gradient was computed from */
    float learning_rate;
    float grad_norm;       /* before clipping */
    int64_t tokens;        /* real tokens in this step's rows (blocks: B · GA · sequence_len) */
    double tokens_per_second;
    double elapsed_seconds;
    int skipped;           /* non-finite loss or gradient: no update */
} hone_step_info;

/* Called after every optimizer step; return non-zero to stop early (the model is still saved). */
typedef int (*hone_step_callback)(const hone_step_info *info, void *user);

typedef struct {
    int64_t steps, skipped_steps, blocks, dropped_tokens; /* blocks: rows of the data (blocks or packed rows) */
    double first_loss, last_loss, seconds;
} hone_train_summary;

/* Trains m on the token stream. With output_dir: OUT/metrics.jsonl (one JSON object per step),
 * OUT/checkpoint-<step>/ every save_steps, and the final model in OUT/. */
hone_status hone_pretrain(hone_model *m, const hone_token_stream *data, const hone_train_config *cfg,
                          hone_step_callback cb, void *user, hone_train_summary *out);

/* Supervised fine-tuning of all weights on packed rows (hone_pack: rendered examples, targets −100 where not
 * trained, positions restarting per sample). The same loop, options and outputs as hone_pretrain; each step's
 * loss is the sum of NLL over all target tokens of its micro-batches divided by their number, and a micro-batch
 * runs only as long as its longest row. rows->row_len must equal cfg->sequence_len. */
hone_status hone_train_rows(hone_model *m, const hone_packed *rows, const hone_train_config *cfg,
                            hone_step_callback cb, void *user, hone_train_summary *out);

typedef struct {
    double ms_per_step, tokens_per_second, gflops, peak_gflops, mfu; /* median step */
    double first_loss, last_loss;
    size_t n_params;
} hone_bench_result;

/* Times full training steps (forward, cross-entropy, backward, clipping, AdamW) of a randomly initialised
 * model on random tokens and reports the median step; warmup steps are not timed. peak_gflops is an sgemm
 * measured on the spot. */
hone_status hone_bench_train(const hone_model_config *c, int B, int T, int steps, int warmup,
                             hone_bench_result *out);
typedef struct {
    double first_seconds, first_mb_per_second; /* the first pass: the per-thread word caches start empty */
    double seconds, mb_per_second;             /* the fastest pass (caches warm); MB = 1e6 bytes of UTF-8 text */
    size_t bytes, tokens, paragraphs;
} hone_bench_tokenize_result;

/* Encodes text[0..n) as a corpus of paragraphs (cut after each blank line, as documents would arrive) without
 * special tokens, `repeat` times, in parallel over paragraphs with the current thread count. Loading the
 * tokenizer is not timed: this is the encoder's speed, cold (first pass) and warm (fastest pass). The tokenizer
 * should be freshly loaded for the first pass to be cold. */
hone_status hone_bench_tokenize(const hone_tokenizer *tok, const char *text, size_t n, int repeat,
                                hone_bench_tokenize_result *out);

/* Single-precision matrix-multiply throughput of this machine (GFLOP/s), measured for about `seconds`. */
double hone_sgemm_peak_gflops(double seconds);

#ifdef __cplusplus
}
#endif
#endif
