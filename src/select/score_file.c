/* Scoring a dataset file into JSONL, chunk by chunk, resumable (see hone_score_file in hone/select.h). */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "select/select_internal.h"

#define DEFAULT_CHUNK 512

static size_t chunk_size(const hone_score_file_options *o) { return o->chunk ? o->chunk : DEFAULT_CHUNK; }

/* ---- what the output was written from ---- */

static hone_status hash_file(const char *path, char hex[33]) {
    hone_mapped_file f;
    HONE_TRY(hone_file_map(&f, path));
    uint64_t h[2];
    hone_hash128(f.data, f.size, 0, h);
    hone_hash128_hex(h, hex);
    hone_file_unmap(&f);
    return HONE_OK;
}

hone_status select_fingerprint(hone_model *m, const hone_score_file_options *o, json_t **out) {
    char data_hex[33], tok_hex[33], model_hex[33];
    HONE_TRY(hash_file(o->data_path, data_hex));
    HONE_TRY(hash_file(hone_tokenizer_path(o->ifd.tokenizer), tok_hex));
    uint64_t h[2];
    hone_hash128(hone_model_params(m), hone_model_num_params(m) * sizeof(float), 0, h);
    hone_hash128_hex(h, model_hex);
    static const char *const styles[] = {"alpaca", "vicuna", "plain", "chat"};
    *out = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s?, s:b, s:i, s:i, s:s?, s:I}", "data", o->data_path, "data_hash",
                     data_hex, "tokenizer_hash", tok_hex, "model_hash", model_hex, "prompt_template",
                     styles[o->ifd.style], "chat_template",
                     o->ifd.chat_template ? hone_chat_template_name(o->ifd.chat_template) : NULL, "reverse",
                     o->reverse, "sequence_len", o->sequence_len, "start_id", (int)o->start_id, "format",
                     o->dataset ? o->dataset->format : NULL, "chunk", (json_int_t)chunk_size(o));
    return *out ? HONE_OK : hone_errorf(HONE_ERR_NOMEM, "out of memory");
}

/* The manifest must describe the same inputs as this run; "data" (the path) may differ. */
static hone_status check_manifest(const char *manifest_path, const char *output_path, json_t *want) {
    json_error_t err;
    json_t *have = json_load_file(manifest_path, 0, &err);
    if (!have)
        return hone_errorf(HONE_ERR_FORMAT,
                           "%s exists but its manifest %s cannot be read (%s): it was not written by hone select; "
                           "give another --output or delete it",
                           output_path, manifest_path, err.text);
    const char *key;
    json_t *value;
    hone_status st = HONE_OK;
    json_object_foreach(want, key, value) {
        if (!strcmp(key, "data")) continue;
        if (!json_equal(value, json_object_get(have, key))) {
            st = hone_errorf(HONE_ERR_INVALID,
                             "%s was scored with a different %s (see %s): resuming would mix scores; give another "
                             "--output or delete it",
                             output_path, key, manifest_path);
            break;
        }
    }
    json_decref(have);
    return st;
}

/* Where an earlier run stopped: *whole_rows rows of finished chunks end at byte *whole_end, and *tail_rows complete
 * rows of an unfinished chunk follow (a partial last line, cut by a kill, is removed). The tail is written again
 * if more examples join its chunk, so that every chunk is scored with the same examples packed together as in
 * an uninterrupted run, to the bit; at the end of the data it is kept as it is. */
static hone_status finished_rows(const char *path, size_t chunk, size_t *whole_rows, size_t *whole_end,
                                 size_t *tail_rows) {
    char *text = NULL;
    size_t size = 0, lines = 0, end = 0, last = 0;
    HONE_TRY(hone_file_read(path, &text, &size));
    *whole_rows = *whole_end = 0;
    for (size_t i = 0; i < size; i++)
        if (text[i] == '\n') {
            last = end;
            end = i + 1;
            if (++lines % chunk == 0) *whole_end = end;
        }
    *whole_rows = lines / chunk * chunk;
    *tail_rows = lines - *whole_rows;
    hone_status st = HONE_OK;
    if (end < size && truncate(path, (off_t)end) != 0)
        st = hone_errorf(HONE_ERR_IO, "%s: cannot cut the partial last line", path);
    if (st == HONE_OK && lines) {
        /* the last row must be the example before the first one still to score */
        json_t *row = json_loadb(text + last, end - last, 0, NULL);
        if (json_integer_value(json_object_get(row, "index")) != (json_int_t)lines - 1)
            st = hone_errorf(HONE_ERR_FORMAT, "%s:%zu: expected the row of example %zu; the file was changed", path,
                             lines, lines - 1);
        json_decref(row);
    }
    free(text);
    return st;
}

/* ---- one chunk ---- */

typedef struct {
    hone_example *examples;
    size_t n, cap;
} chunk_buf;

typedef struct {
    hone_model *m;
    const hone_score_file_options *o;
    FILE *out;
    chunk_buf chunk;
    hone_score_file_summary *sum;
    hone_score_progress progress;
    void *user;
    double t0;
    int stop;
    size_t tail_rows, tail_start; /* rows of an unfinished chunk already in the output, and where they start */
} run_state;

static json_t *number(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static const char *not_scored_name(hone_ifd_status s) {
    return s == HONE_IFD_EMPTY_ANSWER ? "empty_answer" : "prompt_longer_than_sequence_len";
}

json_t *select_example_row(const hone_example *ex) {
    const hone_conversation *c = &ex->conversation;
    const int has_system = c->n_messages == 3 && !strcmp(c->messages[0].role, "system");
    if (ex->instruction && c->n_messages == 2u + has_system) {
        json_t *row = json_pack("{s:s, s:s, s:s}", "instruction", ex->instruction, "input", ex->input, "output",
                                c->messages[c->n_messages - 1].content ? c->messages[c->n_messages - 1].content : "");
        if (row && has_system) json_object_set_new(row, "system", json_string(c->messages[0].content));
        return row;
    }
    char *text = hone_example_to_json(ex);
    json_t *row = text ? json_loads(text, 0, NULL) : NULL;
    free(text);
    return row;
}

static hone_status write_row(run_state *rs, const hone_example *ex, size_t index, const hone_ifd_score *f,
                             const hone_ifd_score *r) {
    json_t *row = json_object(), *body = select_example_row(ex);
    int bad = !row || !body || json_object_set_new(row, "index", json_integer((json_int_t)index)) ||
              json_object_update(row, body) || json_object_set_new(row, "ifd", number(f->ifd)) ||
              json_object_set_new(row, "ifd_loss", number(f->ifd_loss)) ||
              json_object_set_new(row, "loss_cond", number(f->loss_cond)) ||
              json_object_set_new(row, "loss_direct", number(f->loss_direct)) ||
              json_object_set_new(row, "n_answer_tokens", json_integer(f->n_answer_tokens));
    if (!bad && r)
        bad = json_object_set_new(row, "rifd", number(r->ifd)) ||
              json_object_set_new(row, "rifd_loss", number(r->ifd_loss)) ||
              json_object_set_new(row, "rifd_loss_cond", number(r->loss_cond)) ||
              json_object_set_new(row, "rifd_loss_direct", number(r->loss_direct));
    const hone_ifd_status why = f->status != HONE_IFD_SCORED ? f->status : r ? r->status : HONE_IFD_SCORED;
    if (!bad && why != HONE_IFD_SCORED) bad = json_object_set_new(row, "not_scored", json_string(not_scored_name(why)));
    char *line = bad ? NULL : json_dumps(row, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
    json_decref(row);
    json_decref(body);
    if (!line) return hone_errorf(HONE_ERR_NOMEM, "out of memory writing the row of example %zu", index);
    const int ok = fputs(line, rs->out) >= 0 && fputc('\n', rs->out) != EOF;
    free(line);
    if (!ok) return hone_errorf(HONE_ERR_IO, "%s: cannot write", rs->o->output_path);
    rs->sum->not_scored += why != HONE_IFD_SCORED;
    return HONE_OK;
}

/* Tokenizes n examples in parallel into toks[n] (the first error, naming the data file, is returned). */
static hone_status tokenize_examples(const hone_example *ex, size_t n, const hone_score_file_options *o, int reverse,
                                     hone_ifd_tokens *toks) {
    hone_status *status = calloc(n + 1, sizeof *status);
    char(*errors)[256] = calloc(n + 1, sizeof *errors);
    if (!status || !errors) {
        free(status);
        free(errors);
        return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    }
#pragma omp parallel for schedule(dynamic, 8)
    for (size_t i = 0; i < n; i++) {
        status[i] = hone_ifd_tokenize(&ex[i], &o->ifd, reverse, &toks[i]);
        if (status[i] != HONE_OK) snprintf(errors[i], sizeof errors[i], "%s", hone_error());
    }
    hone_status st = HONE_OK;
    for (size_t i = 0; i < n && st == HONE_OK; i++)
        if (status[i] != HONE_OK) st = hone_errorf(status[i], "%s: %s", o->data_path, errors[i]);
    free(status);
    free(errors);
    return st;
}

/* Tokenizes and scores the examples of one direction into scores[n]. */
static hone_status score_direction(run_state *rs, int reverse, hone_ifd_score *scores) {
    const size_t n = rs->chunk.n;
    hone_ifd_tokens *toks = calloc(n, sizeof *toks);
    hone_ifd_input *in = calloc(n, sizeof *in);
    hone_status st = toks && in ? tokenize_examples(rs->chunk.examples, n, rs->o, reverse, toks)
                                : hone_errorf(HONE_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n && st == HONE_OK; i++)
        in[i] = (hone_ifd_input){toks[i].prompt, toks[i].answer, toks[i].n_prompt, toks[i].n_answer};
    if (st == HONE_OK)
        st = hone_score_ifd(rs->m, in, n, rs->o->sequence_len, rs->o->micro_batch_size, rs->o->start_id, scores);
    for (size_t i = 0; toks && i < n; i++) {
        if (st == HONE_OK && scores[i].status == HONE_IFD_SCORED)
            rs->sum->tokens += toks[i].n_prompt + 1 + 2 * (size_t)scores[i].n_answer_tokens;
        hone_ifd_tokens_free(&toks[i]);
    }
    free(toks);
    free(in);
    return st;
}

/* Drops the chunk's examples; with write = 0 they are the rows an earlier run wrote (kept). */
static void clear_chunk(run_state *rs) {
    for (size_t i = 0; i < rs->chunk.n; i++) hone_example_free(&rs->chunk.examples[i]);
    rs->chunk.n = 0;
}

/* Scores and writes the gathered examples. At the end of the data (last = 1), a chunk that holds only the rows an
 * earlier run wrote is left as it is; otherwise those rows are written again with the new ones. */
static hone_status flush_chunk(run_state *rs, int last) {
    const size_t n = rs->chunk.n;
    if (!n) return HONE_OK;
    if (rs->tail_rows && last && n == rs->tail_rows) {
        rs->sum->resumed += n;
        rs->tail_rows = 0;
        clear_chunk(rs);
        return HONE_OK;
    }
    if (rs->tail_rows) {
        if (fflush(rs->out) != 0 || ftruncate(fileno(rs->out), (off_t)rs->tail_start) != 0)
            return hone_errorf(HONE_ERR_IO, "%s: cannot rewrite the unfinished chunk", rs->o->output_path);
        rs->tail_rows = 0;
    }
    hone_ifd_score *fwd = calloc(n, sizeof *fwd), *rev = rs->o->reverse ? calloc(n, sizeof *rev) : NULL;
    hone_status st = fwd && (rev || !rs->o->reverse) ? HONE_OK : hone_errorf(HONE_ERR_NOMEM, "out of memory");
    if (st == HONE_OK) st = score_direction(rs, 0, fwd);
    if (st == HONE_OK && rev) st = score_direction(rs, 1, rev);
    const size_t first = rs->sum->resumed + rs->sum->scored;
    for (size_t i = 0; i < n && st == HONE_OK; i++)
        st = write_row(rs, &rs->chunk.examples[i], first + i, &fwd[i], rev ? &rev[i] : NULL);
    /* each chunk reaches the disk before the next starts: a kill loses at most one chunk */
    if (st == HONE_OK && (fflush(rs->out) != 0 || fsync(fileno(rs->out)) != 0))
        st = hone_errorf(HONE_ERR_IO, "%s: cannot write", rs->o->output_path);
    clear_chunk(rs);
    free(fwd);
    free(rev);
    if (st != HONE_OK) return st;
    rs->sum->scored += n;
    rs->sum->seconds = hone_now_seconds() - rs->t0;
    if (rs->progress && rs->progress(rs->sum, rs->user)) rs->stop = 1;
    return HONE_OK;
}

/* Takes the example (the reader's copy is left empty). */
static hone_status chunk_push(chunk_buf *c, hone_example *ex) {
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 64;
        hone_example *grown = realloc(c->examples, cap * sizeof *grown);
        if (!grown) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
        c->examples = grown;
        c->cap = cap;
    }
    c->examples[c->n++] = *ex;
    memset(ex, 0, sizeof *ex);
    return HONE_OK;
}

/* hone_dataset_read callback: skips what the output has, gathers the rest into chunks. */
static hone_status take_example(hone_example *ex, void *ctx) {
    run_state *rs = ctx;
    rs->sum->examples++;
    if (rs->stop || rs->sum->examples <= rs->sum->resumed) return HONE_OK;
    HONE_TRY(chunk_push(&rs->chunk, ex));
    return rs->chunk.n >= chunk_size(rs->o) ? flush_chunk(rs, 0) : HONE_OK;
}

hone_status hone_score_file(hone_model *m, const hone_score_file_options *o, hone_score_progress progress,
                            void *user, hone_score_file_summary *out) {
    memset(out, 0, sizeof *out);
    json_t *want = NULL;
    HONE_TRY(select_fingerprint(m, o, &want));
    size_t n = strlen(o->output_path) + 16;
    char *manifest = malloc(n);
    if (!manifest) {
        json_decref(want);
        return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    }
    snprintf(manifest, n, "%s.meta.json", o->output_path);
    hone_status st = HONE_OK;
    size_t tail_rows = 0, tail_start = 0;
    if (hone_file_exists(o->output_path)) {
        st = check_manifest(manifest, o->output_path, want);
        if (st == HONE_OK) st = finished_rows(o->output_path, chunk_size(o), &out->resumed, &tail_start, &tail_rows);
    } else {
        char *text = json_dumps(want, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        st = text ? hone_file_write_atomic(manifest, text, strlen(text)) : hone_errorf(HONE_ERR_NOMEM, "out of memory");
        free(text);
    }
    json_decref(want);
    free(manifest);
    HONE_TRY(st);
    run_state rs = {.m = m, .o = o, .sum = out, .progress = progress, .user = user, .t0 = hone_now_seconds(),
                    .tail_rows = tail_rows, .tail_start = tail_start};
    rs.out = fopen(o->output_path, "a");
    if (!rs.out) return hone_errorf(HONE_ERR_IO, "%s: cannot open for writing", o->output_path);
    st = hone_dataset_read(o->data_path, o->dataset, take_example, &rs, &out->dataset);
    if (st == HONE_OK && !rs.stop) st = flush_chunk(&rs, 1);
    clear_chunk(&rs);
    free(rs.chunk.examples);
    if (fclose(rs.out) != 0 && st == HONE_OK) st = hone_errorf(HONE_ERR_IO, "%s: cannot write", o->output_path);
    if (st == HONE_OK && out->resumed + rs.tail_rows > out->examples)
        st = hone_errorf(HONE_ERR_FORMAT, "%s holds %zu rows but the data has only %zu examples", o->output_path,
                         out->resumed + rs.tail_rows, out->examples);
    out->seconds = hone_now_seconds() - rs.t0;
    return st;
}

/* ---- prompt embeddings of a file ---- */

typedef struct {
    hone_model *m;
    const hone_score_file_options *o;
    chunk_buf chunk;
    float *out;  /* [n, dim] */
    double *ppl; /* [n], or NULL when not asked for */
    int want_ppl;
    size_t n, cap, dim;
} embed_state;

static hone_status embed_chunk(embed_state *es) {
    const size_t n = es->chunk.n;
    if (!n) return HONE_OK;
    if (es->n + n > es->cap) {
        size_t cap = es->cap ? 2 * es->cap : 1024;
        while (cap < es->n + n) cap *= 2;
        float *grown = realloc(es->out, cap * es->dim * sizeof(float));
        if (grown) es->out = grown;
        double *ppl = grown && es->want_ppl ? realloc(es->ppl, cap * sizeof *ppl) : NULL;
        if (ppl) es->ppl = ppl;
        if (!grown || (es->want_ppl && !ppl))
            return hone_errorf(HONE_ERR_NOMEM, "out of memory for %zu embeddings", cap);
        es->cap = cap;
    }
    hone_ifd_tokens *toks = calloc(n, sizeof *toks);
    const int32_t **ids = calloc(n, sizeof *ids);
    size_t *lens = calloc(n, sizeof *lens);
    hone_status st = toks && ids && lens ? tokenize_examples(es->chunk.examples, n, es->o, 0, toks)
                                         : hone_errorf(HONE_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n && st == HONE_OK; i++) {
        ids[i] = toks[i].prompt;
        lens[i] = toks[i].n_prompt;
    }
    if (st == HONE_OK)
        st = select_embed_ppl(es->m, ids, lens, n, es->o->sequence_len, es->o->micro_batch_size,
                              es->out + es->n * es->dim, es->want_ppl ? es->ppl + es->n : NULL);
    for (size_t i = 0; toks && i < n; i++) hone_ifd_tokens_free(&toks[i]);
    for (size_t i = 0; i < n; i++) hone_example_free(&es->chunk.examples[i]);
    es->chunk.n = 0;
    es->n += n;
    free(toks);
    free(ids);
    free(lens);
    return st;
}

static hone_status take_for_embedding(hone_example *ex, void *ctx) {
    embed_state *es = ctx;
    HONE_TRY(chunk_push(&es->chunk, ex));
    return es->chunk.n >= chunk_size(es->o) ? embed_chunk(es) : HONE_OK;
}

static hone_status embed_file(hone_model *m, const hone_score_file_options *o, float **out, double **ppl, size_t *n) {
    *out = NULL;
    *n = 0;
    embed_state es = {.m = m, .o = o, .dim = (size_t)hone_model_get_config(m)->hidden_size, .want_ppl = ppl != NULL};
    hone_status st = hone_dataset_read(o->data_path, o->dataset, take_for_embedding, &es, NULL);
    if (st == HONE_OK) st = embed_chunk(&es);
    for (size_t i = 0; i < es.chunk.n; i++) hone_example_free(&es.chunk.examples[i]);
    free(es.chunk.examples);
    if (st != HONE_OK) {
        free(es.out);
        free(es.ppl);
        return st;
    }
    *out = es.out;
    if (ppl) *ppl = es.ppl;
    *n = es.n;
    return HONE_OK;
}

hone_status hone_embed_file_prompts(hone_model *m, const hone_score_file_options *o, float **out, size_t *n) {
    return embed_file(m, o, out, NULL, n);
}

hone_status hone_embed_file_prompts_ppl(hone_model *m, const hone_score_file_options *o, float **embeddings,
                                        double **ppl, size_t *n) {
    *ppl = NULL;
    return embed_file(m, o, embeddings, ppl, n);
}
