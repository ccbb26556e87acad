/* Cherry's pre-experience (Cherry_LLM): cluster the prompt embeddings, take a few middle-perplexity examples of
 * each cluster, and train the model one epoch on them, so that it has seen the task format before it scores the
 * data (see hone_cherry_pre_experience in hone/select.h). Each stage is atomic and reused when its inputs match. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "select/select_internal.h"

/* ---- stage 1: the pre-experience subset ---- */

typedef struct {
    const size_t *want; /* the indices to keep, increasing */
    size_t n_want, n_seen;
    hone_example *examples; /* the picked ones, file order */
    size_t *index;
    size_t n, cap;
} gather_state;

static hone_status gather_picked(hone_example *ex, void *ctx) {
    gather_state *g = ctx;
    const size_t i = g->n_seen++;
    if (g->n >= g->n_want || g->want[g->n] != i) return HONE_OK;
    if (g->n == g->cap) {
        const size_t cap = g->cap ? 2 * g->cap : 64;
        hone_example *grown = realloc(g->examples, cap * sizeof *grown);
        if (grown) g->examples = grown;
        size_t *index = grown ? realloc(g->index, cap * sizeof *index) : NULL;
        if (!index) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
        g->index = index;
        g->cap = cap;
    }
    g->examples[g->n] = *ex;
    g->index[g->n++] = i;
    memset(ex, 0, sizeof *ex);
    return HONE_OK;
}

static void gather_free(gather_state *g) {
    for (size_t i = 0; i < g->n; i++) hone_example_free(&g->examples[i]);
    free(g->examples);
    free(g->index);
}

/* What stage 1 depends on: the scoring fingerprint (data, model, tokenizer, template, sequence_len) and the
 * clustering options. */
static hone_status subset_fingerprint(hone_model *m, const hone_score_file_options *o, const hone_cherry_options *co,
                                      json_t **out) {
    HONE_TRY(select_fingerprint(m, o, out));
    json_object_del(*out, "data");
    json_object_del(*out, "reverse");
    json_object_del(*out, "chunk");
    json_t *cherry = json_pack("{s:I, s:f, s:f, s:I, s:I}", "clusters", (json_int_t)co->clusters, "low", co->low,
                               "high", co->high, "per_cluster", (json_int_t)co->per_cluster, "seed",
                               (json_int_t)co->seed);
    if (!cherry || json_object_set_new(*out, "pre_experience", cherry)) {
        json_decref(*out);
        return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    }
    return HONE_OK;
}

/* 1 when path holds exactly the JSON `want`. */
static int manifest_matches(const char *path, const json_t *want) {
    json_t *have = json_load_file(path, 0, NULL);
    const int same = have && json_equal(have, want);
    json_decref(have);
    return same;
}

static hone_status write_manifest(const char *path, const json_t *j) {
    char *text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    hone_status st = text ? hone_file_write_atomic(path, text, strlen(text)) : hone_errorf(HONE_ERR_NOMEM, "out of "
                                                                                                          "memory");
    free(text);
    return st;
}

/* The indices of an earlier run's subset file (its "index" fields, increasing): want[*n] (free()). */
static hone_status read_subset(const char *path, size_t **want, size_t *n) {
    char *text = NULL;
    size_t size = 0, line = 0;
    HONE_TRY(hone_file_read(path, &text, &size));
    *want = malloc((size + 1) * sizeof **want); /* a row takes more than one byte */
    *n = 0;
    hone_status st = *want ? HONE_OK : hone_errorf(HONE_ERR_NOMEM, "out of memory");
    for (char *p = text; st == HONE_OK && p < text + size; line++) {
        char *end = memchr(p, '\n', (size_t)(text + size - p));
        if (!end) end = text + size;
        json_t *row = json_loadb(p, (size_t)(end - p), 0, NULL);
        const json_int_t i = json_integer_value(json_object_get(row, "index"));
        if (!row || i < 0 || (*n && (size_t)i <= (*want)[*n - 1]))
            st = hone_errorf(HONE_ERR_FORMAT, "%s:%zu: not a pre-experience row written by hone select; delete the "
                             "file", path, line + 1);
        else (*want)[(*n)++] = (size_t)i;
        json_decref(row);
        p = end + 1;
    }
    free(text);
    return st;
}

static hone_status write_subset(const char *path, const gather_state *g, const uint32_t *labels, const double *ppl) {
    hone_atomic_file af;
    HONE_TRY(hone_atomic_open(&af, path));
    hone_status st = HONE_OK;
    for (size_t t = 0; t < g->n && st == HONE_OK; t++) {
        const size_t i = g->index[t];
        json_t *row = json_pack("{s:I, s:I, s:f}", "index", (json_int_t)i, "cluster", (json_int_t)labels[i], "ppl",
                                ppl[i]);
        json_t *body = select_example_row(&g->examples[t]);
        char *line = row && body && !json_object_update(row, body)
                         ? json_dumps(row, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9))
                         : NULL;
        st = line ? hone_atomic_write(&af, line, strlen(line)) : hone_errorf(HONE_ERR_NOMEM, "out of memory");
        if (st == HONE_OK) st = hone_atomic_write(&af, "\n", 1);
        free(line);
        json_decref(row);
        json_decref(body);
    }
    if (st != HONE_OK) {
        hone_atomic_abort(&af);
        return st;
    }
    return hone_atomic_commit(&af);
}

/* Embeddings and perplexities, K-means, the per-cluster pick: want[*n_want] the picked indices, increasing. */
static hone_status pick_subset(hone_model *m, const hone_score_file_options *o, const hone_cherry_options *co,
                               size_t **want, size_t *n_want, uint32_t **labels, double **ppl,
                               hone_cherry_summary *out) {
    float *emb = NULL;
    size_t n = 0;
    HONE_TRY(hone_embed_file_prompts_ppl(m, o, &emb, ppl, &n));
    const size_t k = co->clusters < n ? co->clusters : n;
    *labels = malloc((n + 1) * sizeof **labels);
    uint8_t *picked = malloc(n + 1);
    *want = malloc((n + 1) * sizeof **want);
    hone_status st = *labels && picked && *want ? HONE_OK : hone_errorf(HONE_ERR_NOMEM, "out of memory");
    hone_kmeans_info info = {0};
    if (st == HONE_OK && k)
        st = hone_kmeans(emb, n, (size_t)hone_model_get_config(m)->hidden_size, k, co->seed, 0, *labels, NULL,
                         &info);
    size_t n_picked = 0;
    if (st == HONE_OK)
        st = hone_cherry_pick(*labels, *ppl, n, k, co->low, co->high, co->per_cluster, picked, &n_picked);
    *n_want = 0;
    for (size_t i = 0; i < n && st == HONE_OK; i++)
        if (picked[i]) (*want)[(*n_want)++] = i;
    out->clusters = k;
    out->kmeans_iterations = info.iterations;
    free(emb);
    free(picked);
    return st;
}

/* ---- stage 2: one epoch of SFT ---- */

/* Prompt ids, then answer ids and EOS trained (Stanford Alpaca's format, as the examples are scored). */
static hone_status training_sequences(const gather_state *g, const hone_score_file_options *o, int32_t eos_id,
                                      hone_sequence *seqs) {
    for (size_t t = 0; t < g->n; t++) {
        hone_ifd_tokens tok;
        HONE_TRY(hone_ifd_tokenize(&g->examples[t], &o->ifd, 0, &tok));
        const size_t n = tok.n_prompt + tok.n_answer + (eos_id >= 0);
        hone_sequence *s = &seqs[t];
        s->input_ids = malloc((n + 1) * sizeof(int32_t));
        s->labels = malloc((n + 1) * sizeof(int32_t));
        if (s->input_ids && s->labels) {
            memcpy(s->input_ids, tok.prompt, tok.n_prompt * sizeof(int32_t));
            memcpy(s->input_ids + tok.n_prompt, tok.answer, tok.n_answer * sizeof(int32_t));
            if (eos_id >= 0) s->input_ids[n - 1] = eos_id;
            for (size_t i = 0; i < n; i++) s->labels[i] = i < tok.n_prompt ? IGNORE_INDEX : s->input_ids[i];
            s->n = n;
            s->n_trained = n - tok.n_prompt;
        }
        hone_ifd_tokens_free(&tok);
        if (!s->input_ids || !s->labels) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    }
    return HONE_OK;
}

/* What stage 2 depends on: the subset file, the model and the settings that change the training. */
static hone_status model_fingerprint(hone_model *m, const char *subset_path, const hone_train_config *tc,
                                     json_t **out) {
    char *text = NULL, subset_hex[33], model_hex[33];
    size_t size = 0;
    HONE_TRY(hone_file_read(subset_path, &text, &size));
    uint64_t h[2];
    hone_hash128(text, size, 0, h);
    hone_hash128_hex(h, subset_hex);
    free(text);
    hone_hash128(hone_model_params(m), hone_model_num_params(m) * sizeof(float), 0, h);
    hone_hash128_hex(h, model_hex);
    *out = json_pack("{s:s, s:s, s:i, s:i, s:i, s:f, s:i, s:I, s:f, s:i, s:f, s:f, s:f, s:f, s:f, s:f, s:I, s:b}",
                     "subset_hash", subset_hex, "model_hash", model_hex, "sequence_len", tc->sequence_len,
                     "micro_batch_size", tc->micro_batch_size, "gradient_accumulation_steps",
                     tc->gradient_accumulation_steps, "learning_rate", (double)tc->learning_rate, "lr_scheduler",
                     (int)tc->lr_scheduler, "warmup_steps", (json_int_t)tc->warmup_steps, "warmup_ratio",
                     (double)tc->warmup_ratio, "optimizer", (int)tc->optim.kind, "weight_decay",
                     (double)tc->optim.weight_decay, "adam_beta1", (double)tc->optim.beta1, "adam_beta2",
                     (double)tc->optim.beta2, "adam_epsilon", (double)tc->optim.eps, "momentum",
                     (double)tc->optim.momentum, "max_grad_norm", (double)tc->max_grad_norm, "seed",
                     (json_int_t)tc->seed, "shuffle", tc->shuffle);
    return *out ? HONE_OK : hone_errorf(HONE_ERR_NOMEM, "out of memory");
}

static hone_status train_on_subset(hone_model *m, const gather_state *g, const hone_score_file_options *o,
                                   const hone_train_config *tc, int32_t eos_id, hone_train_summary *sum,
                                   int *micro_batch_size, int *accumulation) {
    hone_sequence *seqs = calloc(g->n + 1, sizeof *seqs);
    hone_packed rows = {0};
    hone_status st = seqs ? training_sequences(g, o, eos_id, seqs) : hone_errorf(HONE_ERR_NOMEM, "out of memory");
    const hone_pack_options po = {.sequence_len = tc->sequence_len, .sample_packing = 1,
                                  .truncation = HONE_TRUNCATE_CUT, .pad_id = eos_id >= 0 ? eos_id : 0};
    if (st == HONE_OK) st = hone_pack(seqs, g->n, &po, &rows);
    if (st == HONE_OK && !rows.n_rows)
        st = hone_errorf(HONE_ERR_INVALID, "pre-experience: none of the %zu picked examples has an answer token to "
                                           "train on",
                         g->n);
    /* a subset too small for one step of micro_batch_size × gradient_accumulation_steps rows trains with smaller
     * micro-batches (reported) rather than not at all */
    hone_train_config small = *tc;
    const size_t step_rows = (size_t)tc->micro_batch_size * (size_t)tc->gradient_accumulation_steps;
    if (st == HONE_OK && rows.n_rows < step_rows) {
        const size_t fit = rows.n_rows / (size_t)tc->gradient_accumulation_steps;
        small.micro_batch_size = fit ? (int)fit : 1;
        small.gradient_accumulation_steps = fit ? tc->gradient_accumulation_steps : (int)rows.n_rows;
    }
    *micro_batch_size = small.micro_batch_size;
    *accumulation = small.gradient_accumulation_steps;
    if (st == HONE_OK) st = hone_train_rows(m, &rows, &small, NULL, NULL, sum);
    hone_packed_free(&rows);
    for (size_t t = 0; seqs && t < g->n; t++) hone_sequence_free(&seqs[t]);
    free(seqs);
    return st;
}

hone_status hone_cherry_pre_experience(hone_model *m, const hone_score_file_options *o, const hone_cherry_options *co,
                                       hone_train_config tc, int32_t eos_id, const char *dir,
                                       hone_cherry_summary *out) {
    memset(out, 0, sizeof *out);
    if (co->clusters < 1) return hone_errorf(HONE_ERR_INVALID, "pre-experience: at least one cluster is needed");
    HONE_TRY(hone_dir_create(dir));
    char *subset_path = hone_path_join(dir, "pre_experience.jsonl");
    char *subset_meta = hone_path_join(dir, "pre_experience.meta.json");
    char *model_dir = hone_path_join(dir, "model");
    char *model_meta = model_dir ? hone_path_join(model_dir, "pre_experience.json") : NULL;
    json_t *want_subset = NULL, *want_model = NULL;
    size_t *want = NULL, n_want = 0;
    uint32_t *labels = NULL;
    double *ppl = NULL;
    gather_state g = {0};
    hone_status st = subset_path && subset_meta && model_meta ? subset_fingerprint(m, o, co, &want_subset)
                                                             : hone_errorf(HONE_ERR_NOMEM, "out of memory");
    /* stage 2's fingerprint holds the untrained model's hash: taken before anything trains m */
    out->reused_subset = st == HONE_OK && hone_file_exists(subset_path) && manifest_matches(subset_meta, want_subset);
    if (st == HONE_OK && out->reused_subset) {
        st = read_subset(subset_path, &want, &n_want);
    } else if (st == HONE_OK) {
        unlink(subset_meta); /* a subset written from now on is this run's, whatever was there */
        st = pick_subset(m, o, co, &want, &n_want, &labels, &ppl, out);
    }
    g.want = want;
    g.n_want = n_want;
    if (st == HONE_OK) st = hone_dataset_read(o->data_path, o->dataset, gather_picked, &g, NULL);
    if (st == HONE_OK && g.n != n_want)
        st = hone_errorf(HONE_ERR_FORMAT, "%s names example %zu, but the data has %zu: delete it", subset_path,
                         want[g.n], g.n_seen);
    out->examples = g.n_seen;
    out->picked = g.n;
    if (st == HONE_OK && !out->reused_subset) {
        st = write_subset(subset_path, &g, labels, ppl);
        if (st == HONE_OK) st = write_manifest(subset_meta, want_subset);
    }
    if (st == HONE_OK) st = model_fingerprint(m, subset_path, &tc, &want_model);
    out->reused_model = st == HONE_OK && manifest_matches(model_meta, want_model);
    if (st == HONE_OK && !out->reused_model) {
        unlink(model_meta);
        tc.num_epochs = 1;
        tc.max_steps = 0;
        tc.output_dir = model_dir;
        st = train_on_subset(m, &g, o, &tc, eos_id, &out->train, &out->micro_batch_size,
                             &out->gradient_accumulation_steps);
        if (st == HONE_OK) st = write_manifest(model_meta, want_model);
    }
    gather_free(&g);
    json_decref(want_subset);
    json_decref(want_model);
    free(want);
    free(labels);
    free(ppl);
    free(subset_path);
    free(subset_meta);
    free(model_dir);
    free(model_meta);
    return st;
}
