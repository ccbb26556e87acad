/* The cross-entropy head gathers the positions that have a target into chunks of rows: checked with a vocabulary
 * large enough that a batch spans several chunks (chunk_rows = 2^24 / V = 128 rows for V = 2^17), against NLLs
 * computed here from hone_model_logits of every position, and gradients that must add up over a split of the
 * targets. Uses a randomly initialised one-layer model. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "hone/model.h"
#include "testutil.h"

enum { B = 2, T = 160, N = B * T, VOCAB = 1 << 17 };

static hone_model *wide_vocab_model(void) {
    hone_model_config c;
    TEST_OK(hone_model_config_preset(&c, "llama-tiny"));
    c.num_layers = 1;
    c.vocab_size = VOCAB;
    c.hidden_size = 16; /* the head's cost is V x C per position */
    c.head_dim = c.hidden_size / c.num_heads;
    hone_model *m;
    TEST_OK(hone_model_create(&m, &c, 11));
    return m;
}

/* Targets with runs that cross the chunk boundaries: row 0 is ignored up to column 150 (the first chunk gathers
 * from both rows), row 1 ignores every third position and its last 20. */
static void make_batch(int32_t *ids, int32_t *targets) {
    hone_rng rng = hone_rng_new(5, 0);
    for (int n = 0; n < N; n++) ids[n] = (int32_t)(hone_rng_u64(&rng) % VOCAB);
    for (int n = 0; n < N; n++) {
        const int b = n / T, t = n % T;
        const int ignored = t + 1 == T || (b == 0 ? t < 150 : t % 3 == 0 || t >= T - 20);
        targets[n] = ignored ? -100 : ids[n + 1];
    }
}

/* -log softmax(z)[target] in double */
static double reference_nll(const float *z, int target) {
    double mx = -INFINITY, se = 0;
    for (int v = 0; v < VOCAB; v++) mx = z[v] > mx ? z[v] : mx;
    for (int v = 0; v < VOCAB; v++) se += exp(z[v] - mx);
    return mx + log(se) - z[target];
}

static void test_position_nll_across_chunks(void **state) {
    (void)state;
    hone_model *m = wide_vocab_model();
    int32_t *ids = malloc(sizeof(int32_t) * N), *targets = malloc(sizeof(int32_t) * N);
    double *nll = malloc(sizeof(double) * N);
    float *logits = malloc(sizeof(float) * VOCAB);
    make_batch(ids, targets);
    TEST_OK(hone_model_prepare(m, B, T, 0));
    TEST_OK(hone_model_forward(m, ids, B, T));
    hone_loss loss;
    for (int n = 0; n < N; n++) nll[n] = -1; /* every position must be written */
    TEST_OK(hone_head_token_nll(m, targets, nll, &loss));
    double sum = 0;
    int64_t count = 0;
    for (int n = 0; n < N; n++) {
        if (targets[n] == -100) {
            if (nll[n] != 0) fail_msg("position %d has no target but NLL %g", n, nll[n]);
            continue;
        }
        hone_model_logits(m, n, 1, logits);
        const double want = reference_nll(logits, targets[n]);
        if (fabs(nll[n] - want) > 1e-5 * fabs(want)) fail_msg("position %d: NLL %.9g, expected %.9g", n, nll[n], want);
        sum += want;
        count++;
    }
    assert_int_equal(loss.count, count);
    assert_true(fabs(loss.sum_nll - sum) <= 1e-6 * sum);

    /* the summed loss has the same bits for any thread count */
    const int threads = omp_get_max_threads();
    hone_loss one, two;
    omp_set_num_threads(1);
    TEST_OK(hone_head_cross_entropy(m, targets, 1.0f, 0, &one));
    omp_set_num_threads(threads > 1 ? threads : 2);
    TEST_OK(hone_head_cross_entropy(m, targets, 1.0f, 0, &two));
    omp_set_num_threads(threads);
    assert_memory_equal(&one.sum_nll, &two.sum_nll, sizeof one.sum_nll);
    assert_memory_equal(&one.sum_nll, &loss.sum_nll, sizeof one.sum_nll);
    hone_model_free(m);
    free(ids);
    free(targets);
    free(nll);
    free(logits);
}

/* Gradients of every parameter after forward + head + backward, accumulated over `runs` target sets. */
static float *grads_of(hone_model *m, const int32_t *ids, int32_t *const *targets, int runs) {
    hone_model_zero_grad(m);
    for (int i = 0; i < runs; i++) {
        hone_loss loss;
        TEST_OK(hone_model_forward(m, ids, B, T));
        TEST_OK(hone_head_cross_entropy(m, targets[i], 1.0f, 1, &loss));
        TEST_OK(hone_model_backward(m));
    }
    const size_t n = hone_model_num_params(m);
    float *g = malloc(sizeof(float) * n);
    memcpy(g, hone_model_grads(m), sizeof(float) * n);
    return g;
}

/* The gradient of a sum of NLLs is the sum of the gradients: the targets split in two (positions alternating, so
 * each half is gathered into different chunks) give the gradients of all of them. */
static void test_gradients_add_up_across_chunks(void **state) {
    (void)state;
    hone_model *m = wide_vocab_model();
    int32_t *ids = malloc(sizeof(int32_t) * N), *all = malloc(sizeof(int32_t) * N);
    int32_t *even = malloc(sizeof(int32_t) * N), *odd = malloc(sizeof(int32_t) * N);
    make_batch(ids, all);
    int k = 0;
    for (int n = 0; n < N; n++) {
        const int counted = all[n] != -100, first_half = counted && k++ % 2 == 0;
        even[n] = first_half ? all[n] : -100;
        odd[n] = counted && !first_half ? all[n] : -100;
    }
    TEST_OK(hone_model_prepare(m, B, T, 1));
    float *whole = grads_of(m, ids, &all, 1);
    int32_t *halves[2] = {even, odd};
    float *split = grads_of(m, ids, halves, 2);
    test_assert_close(split, whole, hone_model_num_params(m), 1e-6f, 1e-4f, "gradients of the halves vs the whole");
    double norm = 0;
    for (size_t i = 0; i < hone_model_num_params(m); i++) norm += (double)whole[i] * whole[i];
    assert_true(norm > 0);
    hone_model_free(m);
    free(ids);
    free(all);
    free(even);
    free(odd);
    free(whole);
    free(split);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_position_nll_across_chunks),
        cmocka_unit_test(test_gradients_add_up_across_chunks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
