/* The training loop: block order, loss normalisation across gradient accumulation, schedules, reproducibility
 * and non-finite steps. Uses a randomly initialised tiny model on built-in synthetic bytes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hone/eval.h"
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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_step_uses_first_blocks),
        cmocka_unit_test(test_gradient_accumulation_matches_bigger_batch),
        cmocka_unit_test(test_runs_are_reproducible),
        cmocka_unit_test(test_non_finite_steps_stop_the_run),
        cmocka_unit_test(test_too_little_data_is_an_error),
        cmocka_unit_test(test_rows_train_like_blocks),
        cmocka_unit_test(test_packed_rows_loss),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
