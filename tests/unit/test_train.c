/* The training loop: block order, loss normalisation across gradient accumulation, schedules, reproducibility,
 * non-finite steps, checkpoints and exact resume, evaluation, length grouping, the validation split and the
 * report. Uses a randomly initialised tiny model on built-in synthetic bytes. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hone/eval.h"
#include "hone/safetensors.h"
#include "hone/train.h"
#include "testutil.h"

static hone_model *tiny_model(void) {
    hone_model_config c;
    TEST_OK(hone_model_config_preset(&c, "llama-tiny"));
    c.num_layers = 1;
    hone_model *m;
    TEST_OK(hone_model_create(&m, &c, 3));
    return m;
}

static hone_token_stream synthetic(size_t n) {
    char *text = hone_synthetic_text(1, n);
    hone_token_stream s;
    TEST_OK(hone_tokens_from_bytes(&s, text, n));
    free(text);
    return s;
}

typedef struct {
    double loss[64];
    float lr[64];
    int n;
} record;

static int keep(const hone_step_info *i, void *user) {
    record *r = user;
    r->loss[r->n] = i->loss;
    r->lr[r->n++] = i->learning_rate;
    return 0;
}

static void base_config(hone_train_config *tc) {
    hone_train_config_defaults(tc);
    tc->sequence_len = 16;
    tc->learning_rate = 1e-3f;
    tc->shuffle = 0;
    tc->lr_scheduler = HONE_SCHED_CONSTANT;
}

/* With shuffle off, step 1 trains on blocks 0 .. B·GA-1: its loss is those blocks' loss at the initial weights. */
static void test_first_step_uses_first_blocks(void **s) {
    (void)s;
    hone_token_stream data = synthetic(16 * 40 + 5);
    hone_model *m = tiny_model();
    hone_token_stream first = {.tokens = data.tokens, .n_tokens = 16 * 4, .n_documents = 1};
    hone_eval_result ev;
    TEST_OK(hone_eval_tokens(m, &first, 16, 4, &ev));
    hone_train_config tc;
    base_config(&tc);
    tc.micro_batch_size = 2;
    tc.gradient_accumulation_steps = 2;
    tc.max_steps = 3;
    record r = {0};
    hone_train_summary sum;
    TEST_OK(hone_pretrain(m, &data, &tc, keep, &r, &sum));
    assert_int_equal(r.n, 3);
    if (fabs(r.loss[0] - ev.loss) > 1e-6 * ev.loss) fail_msg("step 1 loss %.9g, eval of blocks 0-3 %.9g", r.loss[0], ev.loss);
    assert_int_equal(sum.blocks, 40);
    assert_int_equal(sum.dropped_tokens, 5);
    hone_model_free(m);
    hone_tokens_free(&data);
}

/* B=2, GA=1 and B=1, GA=2 see the same tokens per step: same losses, same updates (up to rounding). */
static void test_gradient_accumulation_matches_bigger_batch(void **s) {
    (void)s;
    hone_token_stream data = synthetic(16 * 20);
    hone_model *a = tiny_model(), *b = tiny_model();
    hone_train_config tc;
    base_config(&tc);
    tc.max_steps = 5;
    record ra = {0}, rb = {0};
    hone_train_summary sum;
    tc.micro_batch_size = 2;
    TEST_OK(hone_pretrain(a, &data, &tc, keep, &ra, &sum));
    tc.micro_batch_size = 1;
    tc.gradient_accumulation_steps = 2;
    TEST_OK(hone_pretrain(b, &data, &tc, keep, &rb, &sum));
    for (int i = 0; i < 5; i++)
        if (fabs(ra.loss[i] - rb.loss[i]) > 1e-5 * ra.loss[i])
            fail_msg("step %d: loss %.9g (B=2) vs %.9g (GA=2)", i + 1, ra.loss[i], rb.loss[i]);
    size_t n_segs;
    const hone_param_segment *segs = hone_model_segments(a, &n_segs);
    size_t total = segs[n_segs - 1].offset + segs[n_segs - 1].size;
    test_assert_close(hone_model_params(b), hone_model_params(a), total, 1e-6f, 1e-4f, "parameters after 5 steps");
    hone_model_free(a);
    hone_model_free(b);
    hone_tokens_free(&data);
}

/* Same seed, same thread count: the same bits, shuffled or not. */
static void test_runs_are_reproducible(void **s) {
    (void)s;
    hone_token_stream data = synthetic(16 * 30);
    hone_model *a = tiny_model(), *b = tiny_model();
    hone_train_config tc;
    base_config(&tc);
    tc.shuffle = 1;
    tc.max_steps = 6;
    tc.lr_scheduler = HONE_SCHED_COSINE;
    tc.warmup_steps = 2;
    record ra = {0}, rb = {0};
    hone_train_summary sum;
    TEST_OK(hone_pretrain(a, &data, &tc, keep, &ra, &sum));
    TEST_OK(hone_pretrain(b, &data, &tc, keep, &rb, &sum));
    size_t n_segs;
    const hone_param_segment *segs = hone_model_segments(a, &n_segs);
    size_t total = segs[n_segs - 1].offset + segs[n_segs - 1].size;
    assert_memory_equal(hone_model_params(a), hone_model_params(b), total * sizeof(float));
    /* the learning rate follows the schedule (warm-up from 0, then cosine) */
    hone_scheduler sched;
    TEST_OK(hone_sched_init(&sched, HONE_SCHED_COSINE, tc.learning_rate, 2, 0, 6));
    assert_true(ra.lr[0] == 0.0f);
    for (int i = 0; i < 6; i++) assert_true(ra.lr[i] == hone_lr_at(&sched, i));
    hone_model_free(a);
    hone_model_free(b);
    hone_tokens_free(&data);
}

/* A model that produces NaN: every step is skipped, then the run stops with a clear message. */
static void test_non_finite_steps_stop_the_run(void **s) {
    (void)s;
    hone_token_stream data = synthetic(16 * 20);
    hone_model *m = tiny_model();
    hone_model_params(m)[0] = NAN; /* poisons the embedding row of token 0... */
    for (size_t i = 0; i < data.n_tokens; i++) data.tokens[i] = 0; /* ...which every position then reads */
    hone_train_config tc;
    base_config(&tc);
    tc.max_steps = 10;
    tc.max_bad_steps = 3;
    hone_train_summary sum;
    TEST_FAILS_WITH(hone_pretrain(m, &data, &tc, NULL, NULL, &sum), "3 optimizer steps in a row");
    hone_model_free(m);
    hone_tokens_free(&data);
}

static void test_too_little_data_is_an_error(void **s) {
    (void)s;
    hone_token_stream data = synthetic(16 * 3);
    hone_model *m = tiny_model();
    hone_train_config tc;
    base_config(&tc);
    tc.micro_batch_size = 4;
    hone_train_summary sum;
    TEST_FAILS_WITH(hone_pretrain(m, &data, &tc, NULL, NULL, &sum), "one optimizer step needs");
    hone_model_free(m);
    hone_tokens_free(&data);
}

/* Rows cut from the blocks (one sample per row, every token trained) train exactly as pretraining on the blocks:
 * the row loop and the block loop are the same loop. */
static void test_rows_train_like_blocks(void **s) {
    (void)s;
    const int T = 16, n_blocks = 24;
    hone_token_stream data = synthetic((size_t)T * n_blocks);
    hone_sequence *seqs = calloc(n_blocks, sizeof *seqs);
    for (int i = 0; i < n_blocks; i++) {
        seqs[i].n = (size_t)T;
        seqs[i].input_ids = data.tokens + (size_t)i * T;
        seqs[i].labels = data.tokens + (size_t)i * T;
    }
    hone_pack_options po = {.sequence_len = T, .sample_packing = 0, .pad_id = 0};
    hone_packed rows;
    TEST_OK(hone_pack(seqs, n_blocks, &po, &rows));
    assert_int_equal(rows.n_rows, n_blocks);
    hone_train_config tc;
    base_config(&tc);
    tc.shuffle = 1;
    tc.micro_batch_size = 2;
    tc.gradient_accumulation_steps = 2;
    tc.max_steps = 8;
    hone_model *a = tiny_model(), *b = tiny_model();
    record ra = {0}, rb = {0};
    hone_train_summary sum;
    TEST_OK(hone_pretrain(a, &data, &tc, keep, &ra, &sum));
    TEST_OK(hone_train_rows(b, &rows, &tc, keep, &rb, &sum));
    assert_int_equal(ra.n, rb.n);
    assert_memory_equal(ra.loss, rb.loss, sizeof(double) * ra.n);
    size_t n_segs;
    const hone_param_segment *segs = hone_model_segments(a, &n_segs);
    const size_t n = segs[n_segs - 1].offset + segs[n_segs - 1].size;
    assert_memory_equal(hone_model_params(a), hone_model_params(b), n * sizeof(float));
    tc.sequence_len = 32;
    TEST_FAILS_WITH(hone_train_rows(b, &rows, &tc, NULL, NULL, &sum), "sequence_len is 32");
    hone_model_free(a);
    hone_model_free(b);
    hone_packed_free(&rows);
    free(seqs);
    hone_tokens_free(&data);
}

/* Packed rows of samples of different lengths with partly masked labels: the first step's loss is the summed NLL
 * of the trained targets of each sample run alone, over their number. */
static void test_packed_rows_loss(void **s) {
    (void)s;
    const int T = 24, n = 9;
    hone_token_stream data = synthetic(400);
    hone_sequence *seqs = calloc(n, sizeof *seqs);
    int32_t *labels = malloc(sizeof(int32_t) * 400);
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        seqs[i].n = (size_t)(5 + (i * 7) % 13);
        seqs[i].input_ids = data.tokens + off;
        seqs[i].labels = labels + off;
        for (size_t t = 0; t < seqs[i].n; t++) labels[off + t] = t < seqs[i].n / 2 ? -100 : data.tokens[off + t];
        off += seqs[i].n;
    }
    hone_pack_options po = {.sequence_len = T, .sample_packing = 1, .pad_id = 0};
    hone_packed rows;
    TEST_OK(hone_pack(seqs, n, &po, &rows));
    hone_train_config tc;
    base_config(&tc);
    tc.sequence_len = T;
    tc.micro_batch_size = 1;
    tc.gradient_accumulation_steps = (int)rows.n_rows; /* one step over everything */
    tc.max_steps = 1;
    hone_model *m = tiny_model();
    /* the reference: every sample alone, at the initial weights */
    TEST_OK(hone_model_prepare(m, 1, T, 0));
    double nll = 0;
    int64_t count = 0;
    int32_t tg[64];
    for (int i = 0; i < n; i++) {
        const int len = (int)seqs[i].n;
        for (int t = 0; t < len; t++) tg[t] = t + 1 < len ? seqs[i].labels[t + 1] : -100;
        hone_loss l;
        TEST_OK(hone_model_forward(m, seqs[i].input_ids, 1, len));
        TEST_OK(hone_head_cross_entropy(m, tg, 1.0f, 0, &l));
        nll += l.sum_nll;
        count += l.count;
    }
    record r = {0};
    hone_train_summary sum;
    TEST_OK(hone_train_rows(m, &rows, &tc, keep, &r, &sum));
    assert_int_equal(r.n, 1);
    assert_true(fabs(r.loss[0] - nll / (double)count) <= 1e-5 * fabs(r.loss[0]));
    hone_model_free(m);
    hone_packed_free(&rows);
    free(labels);
    free(seqs);
    hone_tokens_free(&data);
}

/* ---- checkpoints, resume, evaluation, length grouping, report ------------------------------------------------ */

static size_t n_params(hone_model *m) {
    size_t n_segs;
    const hone_param_segment *segs = hone_model_segments(m, &n_segs);
    return segs[n_segs - 1].offset + segs[n_segs - 1].size;
}

static char *path2(const char *dir, const char *name) {
    char *p = hone_path_join(dir, name);
    assert_non_null(p);
    return p;
}

static int exists_in(const char *dir, const char *name) {
    char *p = path2(dir, name);
    int ok = hone_file_exists(p) || hone_dir_exists(p);
    free(p);
    return ok;
}

/* metrics.jsonl with the timing fields cut off: what must be identical between two runs. */
static char *metrics_without_timings(const char *dir) {
    char *path = path2(dir, "metrics.jsonl"), *text;
    TEST_OK(hone_file_read(path, &text, NULL));
    free(path);
    char *out = malloc(strlen(text) + 1), *o = out;
    for (char *line = text, *nl; (nl = strchr(line, '\n')); line = nl + 1) {
        char *cut = strstr(line, ", \"tokens_per_second\"");
        if (!cut || cut > nl) cut = strstr(line, ", \"eval_seconds\"");
        if (!cut || cut > nl) cut = nl;
        memcpy(o, line, (size_t)(cut - line));
        o += cut - line;
        *o++ = '\n';
    }
    *o = 0;
    free(text);
    return out;
}

static int stop_at(const hone_step_info *i, void *user) { return i->step >= *(int64_t *)user; }

/* Packed rows of variable-length samples (one per row unless packing): the SFT shape of the data. */
static hone_packed make_rows(const hone_token_stream *data, int T, int n, int packing, size_t first_token) {
    hone_sequence *seqs = calloc((size_t)n, sizeof *seqs);
    size_t off = first_token;
    for (int i = 0; i < n; i++) {
        seqs[i].n = (size_t)(4 + (i * 7) % (T - 4));
        seqs[i].input_ids = data->tokens + off;
        seqs[i].labels = data->tokens + off;
        off += seqs[i].n;
    }
    assert_true(off <= data->n_tokens);
    hone_pack_options po = {.sequence_len = T, .sample_packing = packing, .pad_id = 0};
    hone_packed rows;
    TEST_OK(hone_pack(seqs, (size_t)n, &po, &rows));
    free(seqs);
    return rows;
}

/* Run `tc` once uninterrupted, then again stopped (by the callback) at each of `stops` and resumed with "auto"
 * until done: same final weights and the same metrics.jsonl (losses, learning rates, norms, eval losses). */
static void check_resume(const hone_token_stream *data, const hone_packed *rows, hone_train_config *tc,
                         const int64_t *stops, int n_stops) {
    char *dir = test_tmpdir();
    char *full = path2(dir, "full");
    hone_model *a = tiny_model();
    hone_train_summary sa, sb;
    tc->output_dir = full;
    tc->resume_from_checkpoint = NULL;
    TEST_OK(data ? hone_pretrain(a, data, tc, NULL, NULL, &sa) : hone_train_rows(a, rows, tc, NULL, NULL, &sa));
    char *want = metrics_without_timings(full);
    for (int k = 0; k < n_stops; k++) {
        char name[32];
        snprintf(name, sizeof name, "stop%lld", (long long)stops[k]);
        char *out = path2(dir, name);
        hone_model *b = tiny_model();
        tc->output_dir = out;
        tc->resume_from_checkpoint = "auto"; /* nothing there yet: a fresh start */
        int64_t stop = stops[k];
        TEST_OK(data ? hone_pretrain(b, data, tc, stop_at, &stop, &sb)
                     : hone_train_rows(b, rows, tc, stop_at, &stop, &sb));
        assert_int_equal(sb.steps, stop);
        hone_model_free(b);
        b = tiny_model(); /* a new process: nothing but the folder carries over */
        TEST_OK(data ? hone_pretrain(b, data, tc, NULL, NULL, &sb) : hone_train_rows(b, rows, tc, NULL, NULL, &sb));
        assert_int_equal(sb.resumed_step, tc->save_steps * (stop / tc->save_steps));
        assert_int_equal(sb.steps, sa.steps);
        assert_memory_equal(&sb.first_loss, &sa.first_loss, sizeof(double));
        assert_memory_equal(&sb.last_loss, &sa.last_loss, sizeof(double));
        if (memcmp(hone_model_params(a), hone_model_params(b), n_params(a) * sizeof(float)))
            fail_msg("stopped at step %lld and resumed: the final weights differ from an uninterrupted run",
                     (long long)stop);
        char *got = metrics_without_timings(out);
        if (strcmp(got, want))
            fail_msg("resumed at %lld: metrics.jsonl\n%s\nuninterrupted:\n%s", (long long)stop, got, want);
        free(got);
        hone_model_free(b);
        free(out);
    }
    free(want);
    hone_model_free(a);
    free(full);
    test_tmpdir_remove(dir);
    free(dir);
}

/* Pre-training with shuffle on and gradient accumulation, stopped mid-epoch, at an epoch boundary and in the second
 * epoch (7 steps per epoch), resumes bit for bit. */
static void test_resume_pretrain_is_exact(void **s) {
    (void)s;
    hone_token_stream data = synthetic(16 * 30 + 3);
    hone_train_config tc;
    base_config(&tc);
    tc.shuffle = 1;
    tc.micro_batch_size = 2;
    tc.gradient_accumulation_steps = 2;
    tc.max_steps = 12;
    tc.save_steps = 2;
    tc.lr_scheduler = HONE_SCHED_COSINE;
    tc.warmup_steps = 3;
    tc.optim.weight_decay = 0.1f;
    const int64_t stops[] = {3, 7, 8, 11};
    check_resume(&data, NULL, &tc, stops, 4);
    tc.optim = (hone_optim_config){.kind = HONE_OPT_SGD, .momentum = 0.9f}; /* SGD's momentum buffer too */
    check_resume(&data, NULL, &tc, stops + 1, 1);
    hone_tokens_free(&data);
}

/* Right-padded rows of SFT shape, shuffled, grouped by length, with an eval set every 3 steps: resumes bit for bit,
 * eval lines included. */
static void test_resume_rows_is_exact(void **s) {
    (void)s;
    hone_token_stream data = synthetic(4000);
    hone_packed rows = make_rows(&data, 24, 40, 0, 0), eval = make_rows(&data, 24, 6, 1, 3000);
    hone_train_config tc;
    base_config(&tc);
    tc.sequence_len = 24;
    tc.shuffle = 1;
    tc.group_by_length = 1;
    tc.micro_batch_size = 3;
    tc.gradient_accumulation_steps = 2;
    tc.num_epochs = 2; /* 40 / 6 = 6 steps per epoch */
    tc.save_steps = 4;
    tc.eval_rows = &eval;
    tc.eval_steps = 3;
    const int64_t stops[] = {5, 6, 9};
    check_resume(NULL, &rows, &tc, stops, 3);
    hone_packed_free(&eval);
    hone_packed_free(&rows);
    hone_tokens_free(&data);
}

/* checkpoint-<step>/ holds the weights, the optimizer's moments (as many as parameters) and trainer_state.json;
 * nothing partial is left; save_total_limit keeps the newest; the report is written. */
static void test_checkpoint_contents(void **s) {
    (void)s;
    hone_token_stream data = synthetic(16 * 20);
    hone_model *m = tiny_model();
    char *dir = test_tmpdir();
    hone_train_config tc;
    base_config(&tc);
    tc.max_steps = 7;
    tc.save_steps = 2;
    tc.save_total_limit = 2;
    tc.output_dir = dir;
    tc.config_json = "{\"learning_rate\": 0.001, \"note\": \"<b>&\"}";
    hone_train_summary sum;
    TEST_OK(hone_pretrain(m, &data, &tc, NULL, NULL, &sum));
    assert_false(exists_in(dir, "checkpoint-2")); /* removed by save_total_limit 2 after checkpoint-6 */
    assert_true(exists_in(dir, "checkpoint-4"));
    assert_true(exists_in(dir, "checkpoint-6"));
    assert_false(exists_in(dir, "checkpoint-7")); /* the end goes to the folder itself */
    char *ck = path2(dir, "checkpoint-6");
    for (const char *f = "model.safetensors\0config.json\0optimizer.safetensors\0trainer_state.json\0"; *f;
         f += strlen(f) + 1)
        if (!exists_in(ck, f)) fail_msg("checkpoint-6 has no %s", f);
    hone_st_file opt;
    char *p = path2(ck, "optimizer.safetensors");
    TEST_OK(hone_st_open(&opt, p));
    for (const char *name = "exp_avg\0exp_avg_sq\0"; *name; name += strlen(name) + 1) {
        const hone_st_tensor *t = hone_st_find(&opt, name);
        assert_non_null(t);
        assert_int_equal(t->numel, (int64_t)n_params(m));
    }
    hone_st_close(&opt);
    free(p);
    json_t *state = test_load_json(ck, "trainer_state.json");
    assert_int_equal(json_integer_value(json_object_get(state, "global_step")), 6);
    assert_int_equal(json_integer_value(json_object_get(state, "optimizer_step")), 6);
    assert_int_equal(json_integer_value(json_object_get(state, "total_steps")), 7);
    assert_int_equal(json_integer_value(json_object_get(state, "rows_into_epoch")), 6);
    json_t *fp = json_object_get(state, "fingerprint");
    assert_int_equal(json_integer_value(json_object_get(fp, "sequence_len")), 16);
    assert_int_equal(json_integer_value(json_object_get(fp, "trainable_parameters")), (json_int_t)n_params(m));
    assert_int_equal(strlen(json_string_value(json_object_get(fp, "data"))), 32);
    json_decref(state);
    /* no temporary folder is left behind */
    char cmd[512];
    snprintf(cmd, sizeof cmd, "ls -a '%s' | grep -q -e partial -e '\\.old\\.'", dir);
    assert_int_not_equal(system(cmd), 0);
    /* the report: one page, inline SVG, the config escaped, no script */
    char *html, *rp = path2(dir, "report.html");
    TEST_OK(hone_file_read(rp, &html, NULL));
    assert_non_null(strstr(html, "<!DOCTYPE html>"));
    assert_non_null(strstr(html, "</html>"));
    assert_non_null(strstr(html, "<polyline"));
    assert_non_null(strstr(html, "&lt;b&gt;&amp;"));
    assert_null(strstr(html, "<script"));
    int svgs = 0;
    for (const char *q = html; (q = strstr(q, "<svg")); q++) svgs++;
    assert_int_equal(svgs, 4);
    free(html);
    free(rp);
    free(ck);
    hone_model_free(m);
    test_tmpdir_remove(dir);
    free(dir);
    hone_tokens_free(&data);
}

/* Resuming with a setting or data that changes the result is an error naming it; a missing folder too. */
static void test_resume_refuses_changes(void **s) {
    (void)s;
    hone_token_stream data = synthetic(16 * 20), other = synthetic(16 * 20);
    other.tokens[5] ^= 1;
    hone_model *m = tiny_model();
    char *dir = test_tmpdir();
    hone_train_config tc;
    base_config(&tc);
    tc.max_steps = 4;
    tc.save_steps = 2;
    tc.output_dir = dir;
    hone_train_summary sum;
    TEST_OK(hone_pretrain(m, &data, &tc, NULL, NULL, &sum));
    tc.resume_from_checkpoint = "auto";
    tc.learning_rate = 2e-3f;
    TEST_FAILS_WITH(hone_pretrain(m, &data, &tc, NULL, NULL, &sum),
                    "learning_rate was 0.001 when the checkpoint was written and is 0.002 now");
    tc.learning_rate = 1e-3f;
    tc.micro_batch_size = 2;
    TEST_FAILS_WITH(hone_pretrain(m, &data, &tc, NULL, NULL, &sum), "micro_batch_size was 1");
    tc.micro_batch_size = 1;
    TEST_FAILS_WITH(hone_pretrain(m, &other, &tc, NULL, NULL, &sum), "data was");
    tc.resume_from_checkpoint = "/nonexistent/checkpoint-2";
    TEST_FAILS_WITH(hone_pretrain(m, &data, &tc, NULL, NULL, &sum), "is not a folder");
    tc.resume_from_checkpoint = "auto";
    TEST_OK(hone_pretrain(m, &data, &tc, NULL, NULL, &sum)); /* unchanged: resumes */
    assert_int_equal(sum.resumed_step, 2);
    /* a damaged or foreign trainer_state.json is refused with its path */
    char *ck = hone_path_join(dir, "checkpoint-2");
    static const char *const states[] = {"{\"format\": ", "{\"format\": \"other\", \"version\": 1}",
                                         "{\"format\": \"hone trainer_state\", \"version\": 1}"};
    static const char *const errors[] = {"is this a checkpoint folder of hone?", "not a trainer state of this hone",
                                         "bad or missing progress fields"};
    for (int i = 0; i < 3; i++) {
        free(test_write_file(ck, "trainer_state.json", states[i], strlen(states[i])));
        TEST_FAILS_WITH(hone_pretrain(m, &data, &tc, NULL, NULL, &sum), errors[i]);
    }
    free(ck);
    hone_model_free(m);
    test_tmpdir_remove(dir);
    free(dir);
    hone_tokens_free(&other);
    hone_tokens_free(&data);
}

typedef struct {
    double eval[8];
    int64_t at[8];
    int n;
} eval_record;

static int keep_eval(const hone_step_info *i, void *user) {
    eval_record *r = user;
    if (!isnan(i->eval_loss)) {
        r->eval[r->n] = i->eval_loss;
        r->at[r->n++] = i->step;
    }
    return 0;
}

/* The eval loss is the mean NLL per target token over the eval rows, computed here row by row with the model's
 * forward and head at the final weights; evaluations come every eval_steps and at the end. */
static void test_eval_loss(void **s) {
    (void)s;
    hone_token_stream data = synthetic(4000);
    hone_packed rows = make_rows(&data, 24, 30, 1, 0), eval = make_rows(&data, 24, 9, 1, 2500);
    hone_train_config tc;
    base_config(&tc);
    tc.sequence_len = 24;
    tc.micro_batch_size = 2;
    tc.max_steps = 5;
    tc.eval_rows = &eval;
    tc.eval_steps = 2;
    hone_model *m = tiny_model();
    eval_record r = {0};
    hone_train_summary sum;
    TEST_OK(hone_train_rows(m, &rows, &tc, keep_eval, &r, &sum));
    assert_int_equal(r.n, 3);
    assert_int_equal(r.at[0], 2);
    assert_int_equal(r.at[1], 4);
    assert_int_equal(r.at[2], 5);
    assert_memory_equal(&sum.eval_loss, &r.eval[2], sizeof(double));
    double nll = 0;
    int64_t count = 0;
    for (size_t i = 0; i < eval.n_rows; i++) {
        const size_t off = i * (size_t)eval.row_len;
        hone_loss l;
        TEST_OK(hone_model_forward_positions(m, eval.ids + off, eval.pos + off, 1, eval.used[i]));
        TEST_OK(hone_head_cross_entropy(m, eval.labels + off, 1.0f, 0, &l));
        nll += l.sum_nll;
        count += l.count;
    }
    const double want = nll / (double)count;
    if (fabs(r.eval[2] - want) > 1e-6 * want) fail_msg("eval_loss %.9g, row by row %.9g", r.eval[2], want);
    tc.eval_steps = 0; /* only at the end */
    eval_record r0 = {0};
    TEST_OK(hone_train_rows(m, &rows, &tc, keep_eval, &r0, &sum));
    assert_int_equal(r0.n, 1);
    assert_int_equal(r0.at[0], 5);
    tc.eval_rows = NULL;
    tc.eval_steps = 2;
    TEST_FAILS_WITH(hone_train_rows(m, &rows, &tc, NULL, NULL, &sum), "no eval set");
    hone_model_free(m);
    hone_packed_free(&eval);
    hone_packed_free(&rows);
    hone_tokens_free(&data);
}

/* Worked by hand from transformers' get_length_grouped_indices (batch 1: megabatches of 2). */
static void test_length_grouped_order_by_hand(void **s) {
    (void)s;
    int64_t order[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    const int lengths[8] = {3, 9, 2, 7, 5, 5, 1, 8};
    TEST_OK(hone_length_grouped_order(order, 8, lengths, 1));
    const int64_t want[8] = {1, 0, 3, 2, 4, 5, 7, 6}; /* ties keep their order; the first megabatch is the longest */
    assert_memory_equal(order, want, sizeof want);
    int64_t order2[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    const int lengths2[8] = {3, 4, 2, 7, 5, 5, 1, 8};
    TEST_OK(hone_length_grouped_order(order2, 8, lengths2, 1));
    const int64_t want2[8] = {7, 0, 3, 2, 4, 5, 1, 6}; /* the longest row (7) swaps with the first megabatch's head */
    assert_memory_equal(order2, want2, sizeof want2);
}

/* On 1000 random-length rows: a permutation, sorted within megabatches of 50 batches, the longest row first, and far
 * less padding than the random order (a micro-batch runs as long as its longest row). */
static void test_length_grouped_order_saves_padding(void **s) {
    (void)s;
    enum { N = 1000, B = 4, MEGA = 50 * B };
    int lengths[N];
    int64_t order[N], random_order[N];
    hone_rng rng = hone_rng_new(1, 2);
    int longest = 0;
    for (int i = 0; i < N; i++) {
        lengths[i] = 1 + (int)(hone_rng_u64(&rng) % 512);
        longest = lengths[i] > longest ? lengths[i] : longest;
        random_order[i] = (i * 7919) % N;
        order[i] = random_order[i];
    }
    TEST_OK(hone_length_grouped_order(order, N, lengths, B));
    assert_int_equal(lengths[order[0]], longest);
    char seen[N] = {0};
    for (int i = 0; i < N; i++) seen[order[i]]++;
    for (int i = 0; i < N; i++) assert_int_equal(seen[i], 1);
    for (int mb = 0; mb < N / MEGA; mb++) {
        int64_t sum_grouped = 0, sum_random = 0;
        for (int i = 0; i < MEGA; i++) {
            sum_grouped += lengths[order[mb * MEGA + i]];
            sum_random += lengths[random_order[mb * MEGA + i]];
            if (i > 1 && lengths[order[mb * MEGA + i]] > lengths[order[mb * MEGA + i - 1]])
                fail_msg("megabatch %d is not sorted at %d", mb, i);
        }
        if (mb > 0) assert_int_equal(sum_grouped, sum_random); /* same rows, reordered (megabatch 0 swapped) */
    }
    int64_t pad_grouped = 0, pad_random = 0;
    for (int b = 0; b < N; b += B) {
        int mg = 0, mr = 0;
        for (int i = b; i < b + B; i++) {
            mg = lengths[order[i]] > mg ? lengths[order[i]] : mg;
            mr = lengths[random_order[i]] > mr ? lengths[random_order[i]] : mr;
        }
        for (int i = b; i < b + B; i++) {
            pad_grouped += mg - lengths[order[i]];
            pad_random += mr - lengths[random_order[i]];
        }
    }
    print_message("padding tokens: %lld grouped by length, %lld in random order\n", (long long)pad_grouped,
                  (long long)pad_random);
    assert_true(pad_grouped * 10 < pad_random);
}

/* The dropout key depends on (seed, step, micro) and on nothing else. */
static void test_dropout_key(void **s) {
    (void)s;
    assert_true(hone_train_dropout_key(1, 5, 0) == hone_train_dropout_key(1, 5, 0));
    assert_true(hone_train_dropout_key(1, 5, 0) != hone_train_dropout_key(1, 5, 1));
    assert_true(hone_train_dropout_key(1, 5, 0) != hone_train_dropout_key(1, 6, 0));
    assert_true(hone_train_dropout_key(1, 5, 0) != hone_train_dropout_key(2, 5, 0));
}

/* val_set_size: a fraction (read as the decimal written) or a count, drawn from the seed, order kept. */
static void test_validation_split(void **s) {
    (void)s;
    hone_rendered_set set = {0}, eval;
    set.n = 30;
    set.seqs = calloc(30, sizeof *set.seqs);
    for (size_t i = 0; i < 30; i++) {
        set.seqs[i].n = i + 1;
        set.seqs[i].n_trained = 1;
        set.seqs[i].input_ids = malloc(sizeof(int32_t));
        set.seqs[i].input_ids[0] = (int32_t)i;
    }
    TEST_OK(hone_rendered_split(&set, 0.1, 7, &eval));
    assert_int_equal(eval.n, 3);
    assert_int_equal(set.n, 27);
    assert_int_equal(set.tokens + eval.tokens, 30 * 31 / 2);
    assert_int_equal(eval.trained_tokens, 3);
    for (size_t i = 1; i < eval.n; i++) assert_true(eval.seqs[i].input_ids[0] > eval.seqs[i - 1].input_ids[0]);
    for (size_t i = 1; i < set.n; i++) assert_true(set.seqs[i].input_ids[0] > set.seqs[i - 1].input_ids[0]);
    hone_rendered_set again = {0}, eval2;
    again.n = 30;
    again.seqs = calloc(30, sizeof *again.seqs);
    for (size_t i = 0; i < 30; i++) again.seqs[i] = (hone_sequence){.n = i + 1, .input_ids = NULL};
    TEST_OK(hone_rendered_split(&again, 3, 7, &eval2)); /* a count; the same seed picks the same examples */
    assert_int_equal(eval2.n, 3);
    for (size_t i = 0; i < 3; i++) assert_int_equal(eval2.seqs[i].n, eval.seqs[i].n);
    TEST_FAILS_WITH(hone_rendered_split(&again, 1.5, 7, &eval2), "whole count");
    TEST_FAILS_WITH(hone_rendered_split(&again, 27, 7, &eval2), "leave at least one");
    TEST_FAILS_WITH(hone_rendered_split(&again, 0, 7, &eval2), "a fraction in (0, 1)");
    free(again.seqs);
    free(eval2.seqs);
    hone_rendered_set_free(&eval);
    hone_rendered_set_free(&set);
}

/* The training-step benchmark with a LoRA adapter trains r·(in + out) parameters per linear module (all-linear:
 * q, k, v, o, gate, up, down) instead of the whole model, and its first loss is the full step's: B starts at zero,
 * so the adapter changes nothing before its first update (dropout on the LoRA path included). */
static void test_bench_lora_step(void **s) {
    (void)s;
    hone_model_config c;
    TEST_OK(hone_model_config_preset(&c, "llama-tiny"));
    hone_bench_result full, lora;
    TEST_OK(hone_bench_train(&c, NULL, 2, 8, 2, 1, &full));
    hone_peft_config pc;
    hone_peft_config_defaults(&pc, HONE_PEFT_LORA);
    pc.r = 4;
    pc.dropout = 0.1f;
    pc.target_modules = "all-linear";
    TEST_OK(hone_bench_train(&c, &pc, 2, 8, 2, 1, &lora));
    const size_t C = (size_t)c.hidden_size, q = (size_t)c.num_heads * c.head_dim,
                 kv = (size_t)c.num_kv_heads * c.head_dim, I = (size_t)c.intermediate_size;
    const size_t per_layer = (C + q) + 2 * (C + kv) + (q + C) + 3 * (C + I);
    assert_int_equal(full.n_trainable, full.n_params);
    assert_int_equal(lora.n_params, full.n_params);
    assert_int_equal(lora.n_trainable, (size_t)pc.r * per_layer * (size_t)c.num_layers);
    assert_true(isfinite(lora.first_loss) && isfinite(lora.last_loss));
    if (fabs(lora.first_loss - full.first_loss) > 1e-6 * full.first_loss)
        fail_msg("first LoRA loss %.9g, first full loss %.9g", lora.first_loss, full.first_loss);
    assert_true(lora.ms_per_step > 0 && lora.peak_memory_mb > 0);
    pc.kind = HONE_PEFT_PROMPT;
    TEST_FAILS_WITH(hone_bench_train(&c, &pc, 2, 8, 2, 1, &lora), "LoRA only");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_step_uses_first_blocks),
        cmocka_unit_test(test_gradient_accumulation_matches_bigger_batch),
        cmocka_unit_test(test_runs_are_reproducible),
        cmocka_unit_test(test_non_finite_steps_stop_the_run),
        cmocka_unit_test(test_too_little_data_is_an_error),
        cmocka_unit_test(test_rows_train_like_blocks),
        cmocka_unit_test(test_packed_rows_loss),
        cmocka_unit_test(test_checkpoint_contents),
        cmocka_unit_test(test_resume_pretrain_is_exact),
        cmocka_unit_test(test_resume_rows_is_exact),
        cmocka_unit_test(test_resume_refuses_changes),
        cmocka_unit_test(test_eval_loss),
        cmocka_unit_test(test_length_grouped_order_by_hand),
        cmocka_unit_test(test_length_grouped_order_saves_padding),
        cmocka_unit_test(test_dropout_key),
        cmocka_unit_test(test_validation_split),
        cmocka_unit_test(test_bench_lora_step),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
