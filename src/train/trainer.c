/* The training loop: over blocks of a token stream (pretraining) or over packed rows of rendered examples
 * (supervised fine-tuning). Both are rows of sequence_len tokens with next-token targets; an optimizer step
 * takes micro_batch_size × gradient_accumulation_steps rows and normalises its loss by all their targets. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hone/train.h"

#define DATA_ORDER_STREAM 0x64617461u /* "data" */

void hone_train_config_defaults(hone_train_config *c) {
    memset(c, 0, sizeof *c);
    c->sequence_len = 512;
    c->micro_batch_size = 1;
    c->gradient_accumulation_steps = 1;
    c->num_epochs = 1;
    c->learning_rate = 5e-5f;
    c->lr_scheduler = HONE_SCHED_LINEAR;
    c->optim = (hone_optim_config){.kind = HONE_OPT_ADAMW, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f};
    c->max_grad_norm = 1.0f;
    c->seed = 42;
    c->shuffle = 1;
    c->logging_steps = 10;
    c->max_bad_steps = 5;
}

/* Block order of one epoch: file order, or a permutation drawn from the seed and the epoch number. */
static void epoch_order(int64_t *order, int64_t n, int shuffle, uint64_t seed, int epoch) {
    for (int64_t i = 0; i < n; i++) order[i] = i;
    if (!shuffle) return;
    hone_rng rng = hone_rng_new(seed, DATA_ORDER_STREAM + (uint64_t)epoch);
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(hone_rng_u64(&rng) % (uint64_t)(i + 1));
        int64_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

/* Where the rows come from: blocks of a token stream, or packed rows (hone/pack.h). */
typedef struct {
    const hone_token_stream *stream;
    const hone_packed *packed;
    int64_t n_rows;
    int T;
} row_source;

/* Row r into ids / targets / pos [T] (pos only for packed rows); returns its real tokens. A block's target of
 * position t is token t + 1, and its last position predicts nothing. */
static int fill_row(const row_source *src, int64_t r, int32_t *ids, int32_t *targets, int32_t *pos) {
    const int T = src->T;
    if (src->stream) {
        const int32_t *block = src->stream->tokens + r * T;
        memcpy(ids, block, sizeof(int32_t) * T);
        memcpy(targets, block + 1, sizeof(int32_t) * (T - 1));
        targets[T - 1] = -100;
        return T;
    }
    const size_t off = (size_t)r * (size_t)T;
    memcpy(ids, src->packed->ids + off, sizeof(int32_t) * T);
    memcpy(targets, src->packed->labels + off, sizeof(int32_t) * T);
    memcpy(pos, src->packed->pos + off, sizeof(int32_t) * T);
    return src->packed->used[r];
}

static hone_status validate(const hone_train_config *c) {
    if (c->sequence_len < 2) return hone_errorf(HONE_ERR_INVALID, "sequence_len must be at least 2");
    if (c->micro_batch_size < 1) return hone_errorf(HONE_ERR_INVALID, "micro_batch_size must be at least 1");
    if (c->gradient_accumulation_steps < 1)
        return hone_errorf(HONE_ERR_INVALID, "gradient_accumulation_steps must be at least 1");
    if (c->max_steps <= 0 && c->num_epochs < 1)
        return hone_errorf(HONE_ERR_INVALID, "num_epochs must be at least 1 (or set max_steps)");
    if (!(c->learning_rate >= 0) || !(c->max_grad_norm >= 0))
        return hone_errorf(HONE_ERR_INVALID, "learning_rate and max_grad_norm must be non-negative");
    if (c->save_steps < 0 || c->logging_steps < 0)
        return hone_errorf(HONE_ERR_INVALID, "save_steps and logging_steps must be non-negative");
    return HONE_OK;
}

/* JSON has no NaN or infinity: non-finite values are written as null. */
static const char *json_number(char *buf, size_t n, double v) {
    if (!isfinite(v)) return "null";
    snprintf(buf, n, "%.9g", v);
    return buf;
}

static hone_status write_metrics(FILE *f, const hone_step_info *s) {
    if (!f) return HONE_OK;
    char loss[32], norm[32];
    fprintf(f,
            "{\"step\": %lld, \"epoch\": %d, \"loss\": %s, \"learning_rate\": %.9g, \"grad_norm\": %s, "
            "\"tokens\": %lld, \"tokens_per_second\": %.6g, \"elapsed_seconds\": %.6g, \"skipped\": %s}\n",
            (long long)s->step, s->epoch, json_number(loss, sizeof loss, s->loss), (double)s->learning_rate,
            json_number(norm, sizeof norm, s->grad_norm), (long long)s->tokens, s->tokens_per_second,
            s->elapsed_seconds, s->skipped ? "true" : "false");
    if (fflush(f) != 0) return hone_errorf(HONE_ERR_IO, "cannot write metrics.jsonl");
    return HONE_OK;
}

static hone_status save_checkpoint(const hone_model *m, const char *out_dir, int64_t step) {
    char name[64];
    snprintf(name, sizeof name, "checkpoint-%lld", (long long)step);
    char *dir = hone_path_join(out_dir, name);
    hone_status st = hone_model_save(m, dir);
    free(dir);
    return st;
}

typedef struct {
    int64_t *order;
    int32_t *ids, *targets, *pos; /* the step's rows, [B·GA, T] */
    int *used;                    /* their real tokens */
    int32_t *mb_ids, *mb_targets, *mb_pos; /* one micro-batch, cut to its longest row */
    FILE *metrics;
    hone_optimizer opt;
} train_state;

static void state_free(train_state *s) {
    free(s->order);
    free(s->ids);
    free(s->targets);
    free(s->pos);
    free(s->used);
    free(s->mb_ids);
    free(s->mb_targets);
    free(s->mb_pos);
    if (s->metrics) fclose(s->metrics);
    hone_optim_free(&s->opt);
}

static hone_status run(hone_model *m, const row_source *src, const hone_train_config *c, hone_step_callback cb,
                       void *user, hone_train_summary *sum, train_state *s) {
    const int T = src->T, B = c->micro_batch_size, GA = c->gradient_accumulation_steps;
    const int64_t n_blocks = src->n_rows, per_step = (int64_t)B * GA;
    sum->blocks = n_blocks;
    if (n_blocks < per_step)
        return hone_errorf(HONE_ERR_INVALID,
                           "the data holds %lld rows of sequence_len %d, but one optimizer step needs "
                           "micro_batch_size × gradient_accumulation_steps = %lld rows; use more data or smaller "
                           "settings",
                           (long long)n_blocks, T, (long long)per_step);
    const int64_t steps_per_epoch = n_blocks / per_step;
    const int64_t total = c->max_steps > 0 ? c->max_steps : (int64_t)c->num_epochs * steps_per_epoch;
    if (n_blocks % per_step)
        hone_info("data: %lld rows of %d tokens; %lld rows per epoch left over", (long long)n_blocks, T,
                  (long long)(n_blocks % per_step));

    HONE_TRY(hone_model_prepare(m, B, T, 1));
    size_t n_segs;
    const hone_param_segment *segs = hone_model_segments(m, &n_segs);
    const size_t n_buf = segs[n_segs - 1].offset + segs[n_segs - 1].size;
    HONE_TRY(hone_optim_init(&s->opt, &c->optim, n_buf));
    hone_scheduler sched;
    HONE_TRY(hone_sched_init(&sched, c->lr_scheduler, c->learning_rate, c->warmup_steps, c->warmup_ratio, total));
    const size_t step_cells = (size_t)per_step * (size_t)T, mb_cells = (size_t)B * (size_t)T;
    s->order = malloc(sizeof(int64_t) * (size_t)n_blocks);
    s->ids = malloc(sizeof(int32_t) * step_cells);
    s->targets = malloc(sizeof(int32_t) * step_cells);
    s->pos = malloc(sizeof(int32_t) * step_cells);
    s->used = malloc(sizeof(int) * (size_t)per_step);
    s->mb_ids = malloc(sizeof(int32_t) * mb_cells);
    s->mb_targets = malloc(sizeof(int32_t) * mb_cells);
    s->mb_pos = malloc(sizeof(int32_t) * mb_cells);
    if (!s->order || !s->ids || !s->targets || !s->pos || !s->used || !s->mb_ids || !s->mb_targets || !s->mb_pos)
        return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    if (c->output_dir) {
        HONE_TRY(hone_dir_create(c->output_dir));
        char *path = hone_path_join(c->output_dir, "metrics.jsonl");
        s->metrics = fopen(path, "w");
        hone_status st = s->metrics ? HONE_OK : hone_errorf(HONE_ERR_IO, "%s: cannot create", path);
        free(path);
        HONE_TRY(st);
    }

    float *params = hone_model_params(m), *grads = hone_model_grads(m);
    const double t_start = hone_now_seconds();
    int epoch = -1, bad_in_a_row = 0;
    for (int64_t step = 0; step < total; step++) {
        const double t0 = hone_now_seconds();
        int e = (int)(step / steps_per_epoch);
        if (e != epoch) {
            epoch = e;
            epoch_order(s->order, n_blocks, c->shuffle, c->seed, epoch);
        }
        /* the whole step's rows first: its loss is normalised by all their targets */
        const int64_t first = (step % steps_per_epoch) * per_step;
        int64_t count = 0, tokens = 0;
        for (int64_t k = 0; k < per_step; k++) {
            const size_t off = (size_t)k * (size_t)T;
            s->used[k] = fill_row(src, s->order[first + k], s->ids + off, s->targets + off, s->pos + off);
            tokens += s->used[k];
            for (int t = 0; t < s->used[k]; t++) count += s->targets[off + (size_t)t] != -100;
        }
        hone_model_zero_grad(m);
        double nll = 0;
        for (int micro = 0; micro < GA && count > 0; micro++) {
            /* a micro-batch runs as long as its longest row: padding beyond it is never computed */
            const size_t row0 = (size_t)micro * (size_t)B;
            int Tm = 1;
            for (int b = 0; b < B; b++) Tm = s->used[row0 + b] > Tm ? s->used[row0 + b] : Tm;
            for (int b = 0; b < B; b++) {
                const size_t from = (row0 + b) * (size_t)T, to = (size_t)b * (size_t)Tm;
                memcpy(s->mb_ids + to, s->ids + from, sizeof(int32_t) * Tm);
                memcpy(s->mb_targets + to, s->targets + from, sizeof(int32_t) * Tm);
                memcpy(s->mb_pos + to, s->pos + from, sizeof(int32_t) * Tm);
            }
            hone_loss loss;
            HONE_TRY(hone_model_forward_positions(m, s->mb_ids, src->packed ? s->mb_pos : NULL, B, Tm));
            HONE_TRY(hone_head_cross_entropy(m, s->mb_targets, 1.0f / (float)count, 1, &loss));
            HONE_TRY(hone_model_backward(m));
            nll += loss.sum_nll;
        }
        hone_step_info info = {.step = step + 1, .total_steps = total, .epoch = epoch, .loss = nll / (double)count};
        info.grad_norm = hone_grad_norm(grads, n_buf);
        info.learning_rate = hone_lr_at(&sched, step);
        info.skipped = !isfinite(info.loss) || !isfinite(info.grad_norm);
        if (info.skipped) {
            sum->skipped_steps++;
            bad_in_a_row++;
        } else {
            bad_in_a_row = 0;
            hone_optim_step(&s->opt, params, grads, segs, n_segs, info.learning_rate,
                            hone_clip_coef(info.grad_norm, c->max_grad_norm));
        }
        const double now = hone_now_seconds();
        info.tokens = tokens;
        info.tokens_per_second = (double)info.tokens / (now - t0);
        info.elapsed_seconds = now - t_start;
        if (step == 0) sum->first_loss = info.loss;
        sum->last_loss = info.loss;
        sum->steps = step + 1;
        HONE_TRY(write_metrics(s->metrics, &info));
        if (bad_in_a_row >= c->max_bad_steps)
            return hone_errorf(HONE_ERR_NUMERIC,
                               "%d optimizer steps in a row had a non-finite loss or gradient (last at step %lld); "
                               "stopping. Lower the learning rate or check the data",
                               bad_in_a_row, (long long)(step + 1));
        if (info.skipped) hone_warn("step %lld: non-finite loss or gradient, update skipped", (long long)(step + 1));
        if (c->output_dir && c->save_steps > 0 && (step + 1) % c->save_steps == 0 && step + 1 < total)
            HONE_TRY(save_checkpoint(m, c->output_dir, step + 1));
        if (cb && cb(&info, user)) break;
    }
    sum->seconds = hone_now_seconds() - t_start;
    if (c->output_dir) HONE_TRY(hone_model_save(m, c->output_dir));
    return HONE_OK;
}

static hone_status train(hone_model *m, const row_source *src, const hone_train_config *cfg, hone_step_callback cb,
                         void *user, hone_train_summary *out) {
    HONE_TRY(validate(cfg));
    train_state s;
    memset(&s, 0, sizeof s);
    hone_status st = run(m, src, cfg, cb, user, out, &s);
    state_free(&s);
    return st;
}

hone_status hone_pretrain(hone_model *m, const hone_token_stream *data, const hone_train_config *cfg,
                          hone_step_callback cb, void *user, hone_train_summary *out) {
    memset(out, 0, sizeof *out);
    if (cfg->sequence_len < 2) return hone_errorf(HONE_ERR_INVALID, "sequence_len must be at least 2");
    const row_source src = {.stream = data, .n_rows = (int64_t)(data->n_tokens / (size_t)cfg->sequence_len),
                            .T = cfg->sequence_len};
    out->dropped_tokens = (int64_t)(data->n_tokens % (size_t)cfg->sequence_len);
    if (out->dropped_tokens)
        hone_info("data: %zu tokens -> %lld blocks of %d; %lld tail tokens left over", data->n_tokens,
                  (long long)src.n_rows, cfg->sequence_len, (long long)out->dropped_tokens);
    return train(m, &src, cfg, cb, user, out);
}

hone_status hone_train_rows(hone_model *m, const hone_packed *rows, const hone_train_config *cfg,
                            hone_step_callback cb, void *user, hone_train_summary *out) {
    memset(out, 0, sizeof *out);
    if (rows->row_len != cfg->sequence_len)
        return hone_errorf(HONE_ERR_INVALID, "the rows hold %d tokens each but sequence_len is %d", rows->row_len,
                           cfg->sequence_len);
    const row_source src = {.packed = rows, .n_rows = (int64_t)rows->n_rows, .T = rows->row_len};
    return train(m, &src, cfg, cb, user, out);
}
