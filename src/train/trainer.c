/* The training loop: over blocks of a token stream (pretraining) or over packed rows of rendered examples
 * (supervised fine-tuning). Both are rows of sequence_len tokens with next-token targets; an optimizer step
 * takes micro_batch_size × gradient_accumulation_steps rows and normalises its loss by all their targets. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "hone/peft.h"
#include "train/train_internal.h"

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
    if (c->save_steps < 0 || c->logging_steps < 0 || c->eval_steps < 0 || c->save_total_limit < 0)
        return hone_errorf(HONE_ERR_INVALID, "save_steps, logging_steps, eval_steps and save_total_limit must be "
                                             "non-negative");
    if (c->eval_steps > 0 && !c->eval_rows)
        return hone_errorf(HONE_ERR_INVALID, "eval_steps is %lld but there is no eval set (val_set_size or "
                                             "test_datasets)", (long long)c->eval_steps);
    if (c->eval_rows && c->eval_rows->row_len != c->sequence_len)
        return hone_errorf(HONE_ERR_INVALID, "the eval rows hold %d tokens each but sequence_len is %d",
                           c->eval_rows->row_len, c->sequence_len);
    if (c->resume_from_checkpoint && !c->output_dir)
        return hone_errorf(HONE_ERR_INVALID, "resume_from_checkpoint needs output_dir (the run's folder)");
    return HONE_OK;
}

/* JSON has no NaN or infinity: non-finite values are written as null. */
static const char *json_number(char *buf, size_t n, double v) {
    if (!isfinite(v)) return "null";
    snprintf(buf, n, "%.9g", v);
    return buf;
}

static hone_status metrics_flush(FILE *f) {
    if (fflush(f) != 0) return hone_errorf(HONE_ERR_IO, "cannot write metrics.jsonl");
    return HONE_OK;
}

static hone_status write_step_line(FILE *f, const hone_step_info *s) {
    if (!f) return HONE_OK;
    char loss[32], norm[32];
    fprintf(f,
            "{\"step\": %lld, \"epoch\": %d, \"loss\": %s, \"learning_rate\": %.9g, \"grad_norm\": %s, "
            "\"tokens\": %lld, \"tokens_per_second\": %.6g, \"elapsed_seconds\": %.6g, \"peak_memory_mb\": %.1f, "
            "\"skipped\": %s}\n",
            (long long)s->step, s->epoch, json_number(loss, sizeof loss, s->loss), (double)s->learning_rate,
            json_number(norm, sizeof norm, s->grad_norm), (long long)s->tokens, s->tokens_per_second,
            s->elapsed_seconds, s->peak_memory_mb, s->skipped ? "true" : "false");
    return metrics_flush(f);
}

static hone_status write_eval_line(FILE *f, int64_t step, int epoch, double loss, int64_t tokens, double seconds) {
    if (!f) return HONE_OK;
    char buf[32];
    fprintf(f, "{\"step\": %lld, \"epoch\": %d, \"eval_loss\": %s, \"eval_tokens\": %lld, \"eval_seconds\": %.6g}\n",
            (long long)step, epoch, json_number(buf, sizeof buf, loss), (long long)tokens, seconds);
    return metrics_flush(f);
}

/* Content hash (hex) of the rows a run trains on: a resumed run must see the same data. */
static void rows_hash(const row_source *src, char hex[33]) {
    uint64_t h[2] = {0, 0};
    if (src->stream) {
        hone_hash128(src->stream->tokens, sizeof(int32_t) * (size_t)src->n_rows * (size_t)src->T, 0, h);
    } else {
        const size_t cells = src->packed->n_rows * (size_t)src->packed->row_len;
        hone_hash128(src->packed->ids, sizeof(int32_t) * cells, 0, h);
        hone_hash128(src->packed->labels, sizeof(int32_t) * cells, h[0] ^ h[1], h);
        hone_hash128(src->packed->pos, sizeof(int32_t) * cells, h[0] ^ h[1], h);
        hone_hash128(src->packed->used, sizeof(int) * src->packed->n_rows, h[0] ^ h[1], h);
    }
    hone_hash128_hex(h, hex);
}

/* What must not change when a run resumes, under the names of the settings (the CLI keys); model_config is a hash
 * of the model's config.json text (the architecture the weights belong to). */
static json_t *fingerprint_new(const hone_model *m, const hone_train_config *c, const row_source *src,
                               const hone_scheduler *sched, int64_t total, size_t n_trainable) {
    static const char *const sched_names[] = {"constant", "linear", "cosine"};
    char data[33], eval[33], model[33];
    rows_hash(src, data);
    char *config = hone_model_config_to_json(hone_model_get_config(m));
    if (!config) return NULL;
    uint64_t h[2];
    hone_hash128(config, strlen(config), 0, h);
    hone_hash128_hex(h, model);
    free(config);
    if (c->eval_rows) {
        const row_source ev = {.packed = c->eval_rows, .n_rows = (int64_t)c->eval_rows->n_rows, .T = src->T};
        rows_hash(&ev, eval);
    }
    return json_pack("{s:s, s:s, s:I, s:s*, s:I, s:i, s:i, s:i, s:I, s:f, s:s, s:I, s:s, s:f, s:f, s:f, s:f, s:f, "
                     "s:f, s:I, s:b, s:b}",
                     "model_config", model, "data", data, "rows", (json_int_t)src->n_rows, "eval_data",
                     c->eval_rows ? eval : NULL,
                     "trainable_parameters", (json_int_t)n_trainable, "sequence_len", c->sequence_len,
                     "micro_batch_size", c->micro_batch_size, "gradient_accumulation_steps",
                     c->gradient_accumulation_steps, "total_steps", (json_int_t)total, "learning_rate",
                     (double)c->learning_rate, "lr_scheduler", sched_names[c->lr_scheduler], "warmup_steps",
                     (json_int_t)sched->warmup_steps, "optimizer", c->optim.kind == HONE_OPT_ADAMW ? "adamw" : "sgd",
                     "adam_beta1", (double)c->optim.beta1, "adam_beta2", (double)c->optim.beta2, "adam_epsilon",
                     (double)c->optim.eps, "momentum", (double)c->optim.momentum, "weight_decay",
                     (double)c->optim.weight_decay, "max_grad_norm", (double)c->max_grad_norm, "seed",
                     (json_int_t)c->seed, "shuffle", c->shuffle != 0, "group_by_length", c->group_by_length != 0);
}

typedef struct {
    int64_t *order;
    int *lengths;                 /* real tokens of every row (group_by_length) */
    int32_t *ids, *targets, *pos; /* the step's rows, [B·GA, T] */
    int *used;                    /* their real tokens */
    int32_t *mb_ids, *mb_targets, *mb_pos; /* one micro-batch, cut to its longest row */
    FILE *metrics;
    hone_optimizer opt;
    json_t *fingerprint;
} train_state;

static void state_free(train_state *s) {
    free(s->order);
    free(s->lengths);
    free(s->ids);
    free(s->targets);
    free(s->pos);
    free(s->used);
    free(s->mb_ids);
    free(s->mb_targets);
    free(s->mb_pos);
    if (s->metrics) fclose(s->metrics);
    hone_optim_free(&s->opt);
    json_decref(s->fingerprint);
}

/* Copies rows [0, B) of the step buffers from row0 into the micro-batch buffers, cut to the longest row; returns
 * that length. Padding beyond it is never computed. */
static int cut_micro_batch(train_state *s, size_t row0, int B, int T) {
    int Tm = 1;
    for (int b = 0; b < B; b++) Tm = s->used[row0 + b] > Tm ? s->used[row0 + b] : Tm;
    for (int b = 0; b < B; b++) {
        const size_t from = (row0 + b) * (size_t)T, to = (size_t)b * (size_t)Tm;
        memcpy(s->mb_ids + to, s->ids + from, sizeof(int32_t) * Tm);
        memcpy(s->mb_targets + to, s->targets + from, sizeof(int32_t) * Tm);
        memcpy(s->mb_pos + to, s->pos + from, sizeof(int32_t) * Tm);
    }
    return Tm;
}

/* Mean NLL per target token over every eval row (forward only), B rows at a time in row order: the sum is taken in
 * the same order every time, so the value depends only on the weights and the thread count. */
static hone_status evaluate(hone_model *m, const hone_packed *rows, int B, train_state *s, double *loss,
                            int64_t *count) {
    const row_source src = {.packed = rows, .n_rows = (int64_t)rows->n_rows, .T = rows->row_len};
    double nll = 0;
    *count = 0;
    hone_model_set_dropout_key(m, 0); /* evaluation never drops */
    for (int64_t r0 = 0; r0 < src.n_rows; r0 += B) {
        const int b = src.n_rows - r0 < B ? (int)(src.n_rows - r0) : B;
        for (int k = 0; k < b; k++) {
            const size_t off = (size_t)k * (size_t)src.T;
            s->used[k] = fill_row(&src, r0 + k, s->ids + off, s->targets + off, s->pos + off);
        }
        const int Tm = cut_micro_batch(s, 0, b, src.T);
        hone_loss l;
        HONE_TRY(hone_model_forward_positions(m, s->mb_ids, s->mb_pos, b, Tm));
        HONE_TRY(hone_head_cross_entropy(m, s->mb_targets, 1.0f, 0, &l));
        nll += l.sum_nll;
        *count += l.count;
    }
    *loss = *count ? nll / (double)*count : NAN;
    return HONE_OK;
}

/* Opens OUT/metrics.jsonl: new, or (resuming at step > 0) cut back to the checkpoint's step and appended to. */
static hone_status open_metrics(train_state *s, const char *out_dir, int64_t resumed_step) {
    if (resumed_step > 0) HONE_TRY(train_metrics_truncate(out_dir, resumed_step));
    char *path = hone_path_join(out_dir, "metrics.jsonl");
    if (!path) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    s->metrics = fopen(path, resumed_step > 0 ? "a" : "w");
    hone_status st = s->metrics ? HONE_OK : hone_errorf(HONE_ERR_IO, "%s: cannot create", path);
    free(path);
    return st;
}

/* resume_from_checkpoint: "auto" takes the newest complete checkpoint of out_dir (none: a fresh start, said). */
static hone_status resume(hone_model *m, const hone_train_config *c, train_state *s, train_progress *p) {
    char *dir = NULL;
    if (!strcmp(c->resume_from_checkpoint, "auto")) {
        HONE_TRY(hone_train_latest_checkpoint(c->output_dir, &dir));
        if (!dir) {
            hone_info("resume_from_checkpoint auto: no checkpoint in %s yet; starting from step 0", c->output_dir);
            return HONE_OK;
        }
    } else if (!(dir = strdup(c->resume_from_checkpoint))) {
        return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    }
    hone_status st = hone_dir_exists(dir) ? train_checkpoint_load(m, &s->opt, p, s->fingerprint, dir)
                                          : hone_errorf(HONE_ERR_IO, "resume_from_checkpoint: %s is not a folder", dir);
    if (st == HONE_OK) hone_info("resuming from %s at step %lld", dir, (long long)p->step);
    free(dir);
    return st;
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
    float *params, *grads;
    size_t n_segs, n_buf;
    const hone_param_segment *segs = hone_model_trainable(m, &params, &grads, &n_segs, &n_buf);
    HONE_TRY(hone_optim_init(&s->opt, &c->optim, n_buf));
    hone_scheduler sched;
    HONE_TRY(hone_sched_init(&sched, c->lr_scheduler, c->learning_rate, c->warmup_steps, c->warmup_ratio, total));
    const size_t step_cells = (size_t)per_step * (size_t)T, mb_cells = (size_t)B * (size_t)T;
    s->order = malloc(sizeof(int64_t) * (size_t)n_blocks);
    s->lengths = malloc(sizeof(int) * (size_t)n_blocks);
    s->ids = malloc(sizeof(int32_t) * step_cells);
    s->targets = malloc(sizeof(int32_t) * step_cells);
    s->pos = malloc(sizeof(int32_t) * step_cells);
    s->used = malloc(sizeof(int) * (size_t)per_step);
    s->mb_ids = malloc(sizeof(int32_t) * mb_cells);
    s->mb_targets = malloc(sizeof(int32_t) * mb_cells);
    s->mb_pos = malloc(sizeof(int32_t) * mb_cells);
    s->fingerprint = fingerprint_new(m, c, src, &sched, total, n_buf);
    if (!s->order || !s->lengths || !s->ids || !s->targets || !s->pos || !s->used || !s->mb_ids || !s->mb_targets ||
        !s->mb_pos || !s->fingerprint)
        return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    for (int64_t r = 0; r < n_blocks; r++) s->lengths[r] = src->packed ? src->packed->used[r] : T;

    train_progress p = {.first_loss = NAN, .last_loss = NAN, .eval_loss = NAN};
    if (c->output_dir) {
        HONE_TRY(hone_dir_create(c->output_dir));
        HONE_TRY(train_checkpoint_clean(c->output_dir));
        if (c->resume_from_checkpoint) HONE_TRY(resume(m, c, s, &p));
        HONE_TRY(open_metrics(s, c->output_dir, p.step));
    }
    sum->resumed_step = p.step;
    const double t_session = hone_now_seconds(), t_start = t_session - p.elapsed_seconds;
    int epoch = -1;
    int64_t evaluated_at = -1;
    for (int64_t step = p.step; step < total; step++) {
        const double t0 = hone_now_seconds();
        int e = (int)(step / steps_per_epoch);
        if (e != epoch) {
            epoch = e;
            train_epoch_order(s->order, n_blocks, c->shuffle, c->seed, epoch);
            if (c->group_by_length) HONE_TRY(hone_length_grouped_order(s->order, n_blocks, s->lengths, (int)per_step));
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
            const int Tm = cut_micro_batch(s, (size_t)micro * (size_t)B, B, T);
            /* LoRA dropout: the masks of this micro-batch come from this key alone, so a resumed run draws them
             * again */
            hone_model_set_dropout_key(m, hone_train_dropout_key(c->seed, step, micro));
            hone_loss loss;
            HONE_TRY(hone_model_forward_positions(m, s->mb_ids, src->packed ? s->mb_pos : NULL, B, Tm));
            HONE_TRY(hone_head_cross_entropy(m, s->mb_targets, 1.0f / (float)count, 1, &loss));
            HONE_TRY(hone_model_backward(m));
            nll += loss.sum_nll;
        }
        hone_step_info info = {.step = step + 1, .total_steps = total, .epoch = epoch, .loss = nll / (double)count,
                               .eval_loss = NAN};
        info.grad_norm = hone_grad_norm(grads, n_buf);
        info.learning_rate = hone_lr_at(&sched, step);
        info.skipped = !isfinite(info.loss) || !isfinite(info.grad_norm);
        if (info.skipped) {
            p.skipped_steps++;
            p.bad_in_a_row++;
        } else {
            p.bad_in_a_row = 0;
            hone_optim_step(&s->opt, params, grads, segs, n_segs, info.learning_rate,
                            hone_clip_coef(info.grad_norm, c->max_grad_norm));
        }
        const double now = hone_now_seconds();
        info.tokens = tokens;
        info.tokens_per_second = (double)info.tokens / (now - t0);
        info.elapsed_seconds = now - t_start;
        info.peak_memory_mb = hone_peak_memory_mb();
        info.eta_seconds = (now - t_session) / (double)(step + 1 - sum->resumed_step) * (double)(total - step - 1);
        p.step = step + 1;
        if (step == 0) p.first_loss = info.loss;
        p.last_loss = info.loss;
        p.elapsed_seconds = info.elapsed_seconds;
        HONE_TRY(write_step_line(s->metrics, &info));
        if (p.bad_in_a_row >= c->max_bad_steps)
            return hone_errorf(HONE_ERR_NUMERIC,
                               "%d optimizer steps in a row had a non-finite loss or gradient (last at step %lld); "
                               "stopping. Lower the learning rate or check the data",
                               p.bad_in_a_row, (long long)(step + 1));
        if (info.skipped) hone_warn("step %lld: non-finite loss or gradient, update skipped", (long long)(step + 1));
        if (c->eval_rows && ((c->eval_steps > 0 && p.step % c->eval_steps == 0) || p.step == total)) {
            const double e0 = hone_now_seconds();
            int64_t eval_tokens;
            HONE_TRY(evaluate(m, c->eval_rows, B, s, &p.eval_loss, &eval_tokens));
            info.eval_loss = p.eval_loss;
            evaluated_at = p.step;
            HONE_TRY(write_eval_line(s->metrics, p.step, epoch, p.eval_loss, eval_tokens, hone_now_seconds() - e0));
        }
        if (c->output_dir && c->save_steps > 0 && p.step % c->save_steps == 0 && p.step < total) {
            const train_position pos = {.epoch = epoch, .total_steps = total, .steps_per_epoch = steps_per_epoch,
                                        .rows_into_epoch = (p.step - (int64_t)epoch * steps_per_epoch) * per_step,
                                        .optimizer_step = s->opt.step, .sched = &sched, .seed = c->seed,
                                        .threads = omp_get_max_threads()};
            HONE_TRY(train_checkpoint_save(m, &s->opt, &p, &pos, s->fingerprint, c->output_dir, c->save_total_limit));
        }
        if (cb && cb(&info, user)) break;
    }
    if (c->eval_rows && evaluated_at != p.step && p.step > sum->resumed_step) {
        /* stopped early by the callback: the end still gets its evaluation */
        const double e0 = hone_now_seconds();
        int64_t eval_tokens;
        HONE_TRY(evaluate(m, c->eval_rows, B, s, &p.eval_loss, &eval_tokens));
        HONE_TRY(write_eval_line(s->metrics, p.step, epoch, p.eval_loss, eval_tokens, hone_now_seconds() - e0));
    }
    sum->steps = p.step;
    sum->skipped_steps = p.skipped_steps;
    sum->first_loss = p.first_loss;
    sum->last_loss = p.last_loss;
    sum->eval_loss = p.eval_loss;
    hone_model_set_dropout_key(m, 0); /* what follows the run (saving, generation) sees no dropout */
    sum->seconds = p.elapsed_seconds;
    sum->peak_memory_mb = hone_peak_memory_mb();
    if (c->output_dir) {
        HONE_TRY(hone_model_save_trained(m, c->output_dir));
        if (s->metrics) HONE_TRY(metrics_flush(s->metrics));
        HONE_TRY(hone_train_report_write(c->output_dir, c->config_json));
    }
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
