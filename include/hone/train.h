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
#include "hone/peft.h"

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
    int save_total_limit;  /* keep the newest N checkpoint-<step>/ folders (0 = all) */
    const char *resume_from_checkpoint; /* NULL = fresh; a checkpoint folder; "auto" = the newest in output_dir */
    const hone_packed *eval_rows;       /* validation rows (row_len = sequence_len), or NULL */
    int64_t eval_steps;    /* evaluate every N steps (0 = only at the end); needs eval_rows */
    int group_by_length;   /* epoch order groups rows of similar length (hone_length_grouped_order) */
    const char *config_json; /* the resolved settings, shown in report.html (NULL = not shown) */
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
    double eval_loss;      /* mean NLL per target token of eval_rows after this step; NaN when not evaluated */
    double peak_memory_mb; /* peak resident memory of the process so far */
    double eta_seconds;    /* remaining steps at this session's average step time */
} hone_step_info;

/* Called after every optimizer step; return non-zero to stop early (the model is still saved). */
typedef int (*hone_step_callback)(const hone_step_info *info, void *user);

typedef struct {
    int64_t steps, skipped_steps, blocks, dropped_tokens; /* blocks: rows of the data (blocks or packed rows) */
    double first_loss, last_loss, seconds;                /* seconds: of every session of the run */
    double eval_loss;      /* the last evaluation, NaN without eval_rows */
    double peak_memory_mb;
    int64_t resumed_step;  /* the checkpoint's step this run resumed from (0 = started fresh) */
} hone_train_summary;

/* Trains m (its trainable parameters: hone_model_trainable, so adapter runs train the adapter) on the token stream.
 * With output_dir: OUT/metrics.jsonl (one JSON object per step, one per evaluation), OUT/checkpoint-<step>/ every
 * save_steps (hone_model_save_trained + optimizer.safetensors + trainer_state.json, built as a hidden sibling
 * and renamed into place when complete; the oldest removed beyond save_total_limit), the trained weights in OUT/
 * and OUT/report.html at the end.
 *
 * Resuming (resume_from_checkpoint) restores the weights, the optimizer moments and the loop's position; every
 * random stream is a function of (seed, step), so the rest of the run is bit-identical to an uninterrupted one
 * with the same thread count. Settings that would change the result (data, batch shape, schedule, optimizer,
 * seed, ...) are compared with the checkpoint's and a change is an error naming it. */
hone_status hone_pretrain(hone_model *m, const hone_token_stream *data, const hone_train_config *cfg,
                          hone_step_callback cb, void *user, hone_train_summary *out);

/* Supervised fine-tuning of all weights on packed rows (hone_pack: rendered examples, targets −100 where not
 * trained, positions restarting per sample). The same loop, options and outputs as hone_pretrain; each step's
 * loss is the sum of NLL over all target tokens of its micro-batches divided by their number, and a micro-batch
 * runs only as long as its longest row. rows->row_len must equal cfg->sequence_len. */
hone_status hone_train_rows(hone_model *m, const hone_packed *rows, const hone_train_config *cfg,
                            hone_step_callback cb, void *user, hone_train_summary *out);

/* Epoch order with group_by_length, as transformers' LengthGroupedSampler (get_length_grouped_indices) with
 * batch_size = micro_batch_size × gradient_accumulation_steps: `order` holds a permutation of [0, n) on entry
 * (the epoch's random order); it is cut into megabatches of min(50, max(1, n / (4·batch_size))) × batch_size
 * rows, each sorted by lengths[] descending (stable), and the first row of the megabatch holding the longest row
 * swaps places with the first row of the first megabatch, so the longest batch comes first. */
hone_status hone_length_grouped_order(int64_t *order, int64_t n, const int *lengths, int batch_size);

/* The key of the LoRA dropout masks of micro-batch `micro` of optimizer step `step` (0-based): a pure function of
 * (seed, step, micro), so a resumed run draws the masks an uninterrupted one draws. */
uint64_t hone_train_dropout_key(uint64_t seed, int64_t step, int micro);

/* The newest complete checkpoint-<step>/ folder in output_dir (one with trainer_state.json), in *path (free()),
 * or *path = NULL when there is none. */
hone_status hone_train_latest_checkpoint(const char *output_dir, char **path);

/* ---- report: self-contained HTML with inline SVG charts (no scripts) ---- */
typedef struct {
    const char *name;    /* legend text */
    const double *x, *y; /* n points; non-finite y values are gaps */
    size_t n;
    const char *color;   /* CSS colour, e.g. "#1f77b4" */
} hone_chart_series;

typedef struct {
    const char *title, *x_label, *y_label;
    const hone_chart_series *series;
    size_t n_series;
    int width, height;   /* pixels; 0 = 640 × 300 */
} hone_chart;

/* Writes one <svg> element plotting every series as a polyline (points as small circles when a series has few),
 * with axes, ticks, labels and a legend. Text is HTML-escaped. */
hone_status hone_svg_line_chart(FILE *out, const hone_chart *c);

typedef struct {
    const char *title, *x_label;
    const double *values; /* n; non-finite values are left out */
    size_t n;
    int bins;             /* 0 = 30 */
    const char *color;    /* CSS colour; NULL = "#1f77b4" */
    int width, height;    /* pixels; 0 = 640 × 260 */
} hone_histogram;

/* One <svg> element: a histogram with the axes, ticks and labels of hone_svg_line_chart. */
hone_status hone_svg_histogram(FILE *out, const hone_histogram *h);
/* Writes text with &, <, >, " escaped for HTML. */
void hone_html_escape(FILE *out, const char *text);
/* OUT/report.html from OUT/metrics.jsonl: training and eval loss, learning rate, tokens/s and peak memory over the
 * steps, the run's figures, and config_json (the resolved settings, pretty-printed; NULL = left out). Atomic. */
hone_status hone_train_report_write(const char *output_dir, const char *config_json);

typedef struct {
    double ms_per_step, tokens_per_second, gflops, peak_gflops, mfu; /* median step */
    double first_loss, last_loss;
    size_t n_params;       /* the model's parameters */
    size_t n_trainable;    /* what the optimizer updates: n_params, or the adapter's parameters */
    double peak_memory_mb; /* peak resident memory of the process after the timed steps */
} hone_bench_result;

/* Times training steps (forward, cross-entropy, backward, clipping at 1.0, AdamW) of a randomly initialised model
 * on random tokens and reports the median step; warmup steps are not timed. adapter NULL: full fine-tuning, every
 * weight trained. adapter a LoRA config: a new adapter (hone_adapter_create) is attached, the base is frozen and
 * gradients, clipping and AdamW cover the adapter's parameters only; LoRA dropout draws a new mask every step.
 * gflops counts the step's FLOPs: a frozen weight needs no weight gradient, so it costs 4 instead of 6 FLOPs per
 * token. peak_gflops is an sgemm measured on the spot (after peak_memory_mb is read). Peak memory is the
 * process's: measure full and LoRA steps in separate processes. */
hone_status hone_bench_train(const hone_model_config *c, const hone_peft_config *adapter, int B, int T, int steps,
                             int warmup, hone_bench_result *out);
/* The same with the frozen base kept in base_dtype (HONE_DTYPE_F32, or HONE_DTYPE_BF16 with an adapter:
 * hone_model_set_base_dtype). */
hone_status hone_bench_train_base(const hone_model_config *c, const hone_peft_config *adapter, hone_dtype base_dtype,
                                  int B, int T, int steps, int warmup, hone_bench_result *out);
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
