/* train: optimizers, gradient clipping and lr schedules — by hand, against a double-precision AdamW, and
 * against PyTorch (tests/fixtures/optim/reference.json from tools/make_optim_fixtures.py). */
#include <jansson.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "hone/optim.h"
#include "testutil.h"

#define FIXTURE "tests/fixtures/optim/reference.json"

static json_t *load_fixture(void) {
    json_error_t err;
    json_t *root = json_load_file(FIXTURE, 0, &err);
    if (!root) fail_msg("%s:%d: %s", FIXTURE, err.line, err.text);
    return root;
}

/* A JSON array of numbers as a malloc'd float array of the expected length. */
static float *floats(const json_t *arr, size_t n) {
    if (json_array_size(arr) != n) fail_msg("fixture array has %zu numbers, expected %zu", json_array_size(arr), n);
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = (float)json_number_value(json_array_get(arr, i));
    return x;
}

static float number(const json_t *obj, const char *key) {
    const json_t *v = json_object_get(obj, key);
    if (!json_is_number(v)) fail_msg("fixture: missing number \"%s\"", key);
    return (float)json_number_value(v);
}

static void check_optimizer_against_torch(const char *case_name) {
    json_t *root = load_fixture();
    const json_t *segs_json = json_object_get(root, "segments");
    size_t n_segs = json_array_size(segs_json), n = json_array_size(json_object_get(root, "params0"));
    hone_param_segment segs[8];
    assert_true(n_segs <= 8);
    for (size_t s = 0; s < n_segs; s++) {
        const json_t *j = json_array_get(segs_json, s);
        segs[s] = (hone_param_segment){.offset = (size_t)json_integer_value(json_object_get(j, "offset")),
                                       .size = (size_t)json_integer_value(json_object_get(j, "size")),
                                       .decay = (int)json_integer_value(json_object_get(j, "decay"))};
    }
    const json_t *c = NULL;
    for (size_t i = 0; i < json_array_size(json_object_get(root, "cases")); i++) {
        const json_t *candidate = json_array_get(json_object_get(root, "cases"), i);
        if (!strcmp(json_string_value(json_object_get(candidate, "name")), case_name)) c = candidate;
    }
    if (!c) fail_msg("fixture has no case '%s'", case_name);

    hone_optim_config cfg = {.weight_decay = number(c, "weight_decay")};
    TEST_OK(hone_optimizer_kind_parse(json_string_value(json_object_get(c, "optimizer")), &cfg.kind));
    if (cfg.kind == HONE_OPT_ADAMW) {
        cfg.beta1 = number(c, "beta1");
        cfg.beta2 = number(c, "beta2");
        cfg.eps = number(c, "eps");
    } else {
        cfg.momentum = number(c, "momentum");
    }
    hone_optimizer opt;
    TEST_OK(hone_optim_init(&opt, &cfg, n));
    float *params = floats(json_object_get(root, "params0"), n);
    const json_t *grads = json_object_get(root, "grads"), *lrs = json_object_get(root, "lrs");
    const json_t *history = json_object_get(c, "params");
    for (size_t t = 0; t < json_array_size(history); t++) {
        float *g = floats(json_array_get(grads, t), n);
        float *want = floats(json_array_get(history, t), n);
        hone_optim_step(&opt, params, g, segs, n_segs, (float)json_number_value(json_array_get(lrs, t)), 1.0f);
        char what[64];
        snprintf(what, sizeof what, "%s step %zu", case_name, t + 1);
        /* Bit for bit: hone repeats torch's CPU kernels operation by operation (see src/train/optim.c). */
        test_assert_close(params, want, n, 0.0f, 0.0f, what);
        free(g);
        free(want);
    }
    assert_int_equal(opt.step, (int64_t)json_array_size(history));
    free(params);
    hone_optim_free(&opt);
    json_decref(root);
}

static void test_adamw_matches_torch(void **state) {
    (void)state;
    check_optimizer_against_torch("adamw");
}

static void test_sgd_matches_torch(void **state) {
    (void)state;
    check_optimizer_against_torch("sgd");
    check_optimizer_against_torch("sgd_momentum");
}

static void test_clip_matches_torch(void **state) {
    (void)state;
    json_t *root = load_fixture();
    const json_t *clip = json_object_get(root, "clip");
    size_t n = json_array_size(json_object_get(clip, "grads"));
    float *g = floats(json_object_get(clip, "grads"), n);
    float *want = floats(json_object_get(clip, "clipped"), n);
    float norm = hone_grad_clip(g, n, number(clip, "max_norm"));
    /* hone sums squares in double, torch in float32 per tensor: the norms may differ in the last bit. */
    test_assert_close(&norm, &(float){number(clip, "norm")}, 1, 0.0f, 1e-6f, "clip norm");
    test_assert_close(g, want, n, 1e-8f, 1e-6f, "clipped grads");
    free(g);
    free(want);
    json_decref(root);
}

/* torch's AdamW written out in double, one element at a time. */
static void adamw_reference(double *p, double *m, double *v, const float *g, int decay, size_t n, double lr,
                            const hone_optim_config *c, int t) {
    for (size_t i = 0; i < n; i++) {
        if (decay) p[i] -= lr * c->weight_decay * p[i];
        m[i] = c->beta1 * m[i] + (1.0 - c->beta1) * g[i];
        v[i] = c->beta2 * v[i] + (1.0 - c->beta2) * g[i] * g[i];
        double bc1 = 1.0 - pow(c->beta1, t), bc2 = 1.0 - pow(c->beta2, t);
        p[i] -= lr / bc1 * m[i] / (sqrt(v[i]) / sqrt(bc2) + c->eps);
    }
}

static void test_adamw_matches_double_reference(void **state) {
    (void)state;
    enum { N = 10, STEPS = 5 };
    const hone_optim_config cfg = {.kind = HONE_OPT_ADAMW, .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-6f,
                                   .weight_decay = 0.05f};
    /* A decaying matrix [0, 6) and a bias [6, 10) that does not decay. */
    const hone_param_segment segs[] = {{0, 6, 1}, {6, 4, 0}};
    hone_optimizer opt;
    TEST_OK(hone_optim_init(&opt, &cfg, N));
    float params[N];
    double p[N], m[N] = {0}, v[N] = {0};
    hone_rng rng = hone_rng_new(3, 0);
    for (int i = 0; i < N; i++) p[i] = params[i] = hone_rng_normal(&rng);
    for (int t = 1; t <= STEPS; t++) {
        float g[N], got[N], want[N];
        for (int i = 0; i < N; i++) g[i] = hone_rng_normal(&rng) * (float)t;
        float lr = 1e-2f / (float)t;
        hone_optim_step(&opt, params, g, segs, 2, lr, 1.0f);
        adamw_reference(p, m, v, g, 1, 6, lr, &cfg, t);
        adamw_reference(p + 6, m + 6, v + 6, g + 6, 0, 4, lr, &cfg, t);
        for (int i = 0; i < N; i++) {
            got[i] = params[i];
            want[i] = (float)p[i];
        }
        test_assert_close(got, want, N, 1e-6f, 1e-5f, "adamw vs double");
    }
    hone_optim_free(&opt);
}

static void test_adamw_first_step_is_lr_times_sign(void **state) {
    (void)state;
    /* With bias correction, m/sqrt(v) = g/|g| at step 1 whatever the gradient's scale. */
    const hone_optim_config cfg = {.kind = HONE_OPT_ADAMW, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f};
    const hone_param_segment seg = {0, 4, 0};
    hone_optimizer opt;
    TEST_OK(hone_optim_init(&opt, &cfg, 4));
    float params[4] = {1, 1, 1, 1}, g[4] = {5e-3f, -2.0f, 300.0f, -0.25f};
    hone_optim_step(&opt, params, g, &seg, 1, 0.1f, 1.0f);
    test_assert_close(params, (float[]){0.9f, 1.1f, 0.9f, 1.1f}, 4, 0.0f, 1e-6f, "first adamw step");
    hone_optim_free(&opt);
}

static void test_adamw_decay_only_on_decaying_segments(void **state) {
    (void)state;
    /* A zero gradient leaves only the decoupled decay p *= 1 - lr*wd. */
    const hone_optim_config cfg = {.kind = HONE_OPT_ADAMW, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
                                   .weight_decay = 0.5f};
    const hone_param_segment segs[] = {{0, 2, 1}, {2, 2, 0}};
    hone_optimizer opt;
    TEST_OK(hone_optim_init(&opt, &cfg, 4));
    float params[4] = {2, -4, 2, -4}, g[4] = {0};
    hone_optim_step(&opt, params, g, segs, 2, 0.1f, 1.0f);
    test_assert_close(params, (float[]){1.9f, -3.8f, 2, -4}, 4, 0.0f, 1e-7f, "decay");
    hone_optim_free(&opt);
}

static void test_sgd_by_hand(void **state) {
    (void)state;
    /* Element 2 lies outside every segment and must not move. */
    const hone_param_segment segs[] = {{0, 1, 1}, {1, 1, 0}};
    hone_optimizer opt;
    TEST_OK(hone_optim_init(&opt, &(hone_optim_config){.kind = HONE_OPT_SGD, .weight_decay = 0.1f}, 3));
    assert_null(opt.m);
    float params[3] = {1, 1, 1}, g[3] = {0.5f, 0.5f, 0.5f};
    hone_optim_step(&opt, params, g, segs, 2, 0.1f, 1.0f);
    /* decayed: g' = 0.5 + 0.1*1 = 0.6 → 0.94; not decayed: 0.95 */
    test_assert_close(params, (float[]){0.94f, 0.95f, 1}, 3, 0.0f, 1e-7f, "sgd");
    hone_optim_free(&opt);

    TEST_OK(hone_optim_init(&opt, &(hone_optim_config){.kind = HONE_OPT_SGD, .momentum = 0.9f}, 3));
    params[0] = params[1] = params[2] = 1;
    hone_optim_step(&opt, params, g, segs, 2, 0.1f, 1.0f); /* buf = g = 0.5 (no dampening) → 0.95 */
    test_assert_close(params, (float[]){0.95f, 0.95f, 1}, 3, 0.0f, 1e-7f, "sgd momentum step 1");
    hone_optim_step(&opt, params, g, segs, 2, 0.1f, 1.0f); /* buf = 0.9*0.5 + 0.5 = 0.95 → 0.855 */
    test_assert_close(params, (float[]){0.855f, 0.855f, 1}, 3, 0.0f, 1e-6f, "sgd momentum step 2");
    hone_optim_free(&opt);
}

static void test_clip(void **state) {
    (void)state;
    float g[2] = {3, 4};
    assert_float_equal(hone_grad_clip(g, 2, 10.0f), 5.0f, 0.0f);
    test_assert_close(g, (float[]){3, 4}, 2, 0.0f, 0.0f, "below max_norm: untouched");
    assert_float_equal(hone_grad_clip(g, 2, 0.0f), 5.0f, 0.0f);
    test_assert_close(g, (float[]){3, 4}, 2, 0.0f, 0.0f, "max_norm 0: off");
    assert_float_equal(hone_grad_clip(g, 2, 1.0f), 5.0f, 0.0f);
    test_assert_close(g, (float[]){0.6f, 0.8f}, 2, 0.0f, 1e-6f, "clipped to norm 1");

    float bad[3] = {1, NAN, 1};
    assert_true(isnan(hone_grad_clip(bad, 3, 1.0f)));
    assert_float_equal(bad[0], 1.0f, 0.0f); /* not scaled: the caller decides to skip the step */
    float inf[2] = {INFINITY, 1};
    assert_true(isinf(hone_grad_clip(inf, 2, 1.0f)));
    assert_float_equal(inf[1], 1.0f, 0.0f);
    assert_float_equal(hone_grad_clip(NULL, 0, 1.0f), 0.0f, 0.0f);
}

static void test_clip_norm_same_bits_for_any_thread_count(void **state) {
    (void)state;
    enum { N = 100003 };
    float *g = malloc(N * sizeof *g);
    hone_rng rng = hone_rng_new(9, 0);
    double exact = 0;
    for (int i = 0; i < N; i++) {
        g[i] = hone_rng_normal(&rng);
        exact += (double)g[i] * g[i];
    }
    int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    float one = hone_grad_clip(g, N, 0.0f);
    omp_set_num_threads(3);
    float three = hone_grad_clip(g, N, 0.0f);
    omp_set_num_threads(threads);
    assert_memory_equal(&one, &three, sizeof one);
    assert_float_equal(one, (float)sqrt(exact), 1e-6f * one);
    free(g);
}

static void test_schedules(void **state) {
    (void)state;
    hone_scheduler s;
    /* linear, 10 steps, 2 warmup: 0, lr/2, then (10 - step)/8 */
    TEST_OK(hone_sched_init(&s, HONE_SCHED_LINEAR, 1e-3f, 2, 0.0f, 10));
    assert_float_equal(hone_lr_at(&s, 0), 0.0f, 0.0f);
    assert_float_equal(hone_lr_at(&s, 1), 5e-4f, 1e-10f);
    assert_float_equal(hone_lr_at(&s, 2), 1e-3f, 1e-10f);
    assert_float_equal(hone_lr_at(&s, 6), 5e-4f, 1e-10f);
    assert_float_equal(hone_lr_at(&s, 9), 1.25e-4f, 1e-10f);
    assert_float_equal(hone_lr_at(&s, 10), 0.0f, 0.0f);
    assert_float_equal(hone_lr_at(&s, 12), 0.0f, 0.0f);

    /* cosine, 10 steps, 2 warmup: progress (step - 2)/8, 0.5*(1 + cos(pi*progress)) */
    TEST_OK(hone_sched_init(&s, HONE_SCHED_COSINE, 1e-3f, 2, 0.0f, 10));
    assert_float_equal(hone_lr_at(&s, 1), 5e-4f, 1e-10f);
    assert_float_equal(hone_lr_at(&s, 2), 1e-3f, 1e-10f);
    assert_float_equal(hone_lr_at(&s, 4), 1e-3f * 0.5f * (1.0f + (float)M_SQRT1_2), 1e-10f);
    assert_float_equal(hone_lr_at(&s, 6), 5e-4f, 1e-10f);
    assert_float_equal(hone_lr_at(&s, 10), 0.0f, 1e-12f);

    /* constant with warmup 3: 0, 1/3, 2/3, then flat */
    TEST_OK(hone_sched_init(&s, HONE_SCHED_CONSTANT, 2e-5f, 3, 0.0f, 100));
    assert_float_equal(hone_lr_at(&s, 0), 0.0f, 0.0f);
    assert_float_equal(hone_lr_at(&s, 1), 2e-5f / 3, 1e-12f);
    assert_float_equal(hone_lr_at(&s, 3), 2e-5f, 0.0f);
    assert_float_equal(hone_lr_at(&s, 99), 2e-5f, 0.0f);
    TEST_OK(hone_sched_init(&s, HONE_SCHED_CONSTANT, 2e-5f, 0, 0.0f, 100));
    assert_float_equal(hone_lr_at(&s, 0), 2e-5f, 0.0f);
}

static void test_warmup_ratio_rounds_like_transformers(void **state) {
    (void)state;
    hone_scheduler s;
    /* ceil(1000 * 0.1) = 100 in Python; the float 0.1f taken literally would give 101. */
    TEST_OK(hone_sched_init(&s, HONE_SCHED_LINEAR, 1.0f, 0, 0.1f, 1000));
    assert_int_equal(s.warmup_steps, 100);
    /* Python: 100 * 0.07 = 7.000000000000001, so transformers warms up for 8 steps. */
    TEST_OK(hone_sched_init(&s, HONE_SCHED_LINEAR, 1.0f, 0, 0.07f, 100));
    assert_int_equal(s.warmup_steps, 8);
    TEST_OK(hone_sched_init(&s, HONE_SCHED_LINEAR, 1.0f, 0, 0.3f, 10));
    assert_int_equal(s.warmup_steps, 3);
    TEST_OK(hone_sched_init(&s, HONE_SCHED_COSINE, 1.0f, 0, 0.15f, 10));
    assert_int_equal(s.warmup_steps, 2);
    TEST_OK(hone_sched_init(&s, HONE_SCHED_COSINE, 1.0f, 0, 0.0f, 10));
    assert_int_equal(s.warmup_steps, 0);
    /* warmup_steps, when given, wins over the ratio. */
    TEST_OK(hone_sched_init(&s, HONE_SCHED_LINEAR, 1.0f, 7, 0.5f, 100));
    assert_int_equal(s.warmup_steps, 7);
}

static void test_invalid_inputs_rejected(void **state) {
    (void)state;
    hone_optimizer_kind ok;
    TEST_OK(hone_optimizer_kind_parse("adamw_torch", &ok));
    assert_int_equal(ok, HONE_OPT_ADAMW);
    TEST_FAILS_WITH(hone_optimizer_kind_parse("adam", &ok), "unknown optimizer 'adam' (choose adamw or sgd)");
    hone_sched_kind sk;
    TEST_OK(hone_sched_kind_parse("constant_with_warmup", &sk));
    assert_int_equal(sk, HONE_SCHED_CONSTANT);
    TEST_FAILS_WITH(hone_sched_kind_parse("cosine_with_restarts", &sk),
                    "choose constant, constant_with_warmup, linear or cosine");

    hone_scheduler s;
    TEST_FAILS_WITH(hone_sched_init(&s, HONE_SCHED_LINEAR, 1.0f, -1, 0.0f, 10), "warmup_steps must be >= 0");
    TEST_FAILS_WITH(hone_sched_init(&s, HONE_SCHED_LINEAR, 1.0f, 0, 1.5f, 10), "warmup_ratio must be in [0, 1]");
    TEST_FAILS_WITH(hone_sched_init(&s, HONE_SCHED_LINEAR, 1.0f, 0, -0.1f, 10), "warmup_ratio");
    TEST_FAILS_WITH(hone_sched_init(&s, HONE_SCHED_LINEAR, 1.0f, 0, NAN, 10), "warmup_ratio");
    TEST_FAILS_WITH(hone_sched_init(&s, HONE_SCHED_LINEAR, -1e-3f, 0, 0.0f, 10), "learning_rate");
    TEST_FAILS_WITH(hone_sched_init(&s, HONE_SCHED_LINEAR, 1.0f, 0, 0.0f, -5), "steps must be >= 0");
    TEST_FAILS_WITH(hone_sched_init(&s, (hone_sched_kind)7, 1.0f, 0, 0.0f, 10), "unknown lr_scheduler kind");

    hone_optimizer opt;
    const hone_optim_config adamw = {.kind = HONE_OPT_ADAMW, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f};
    hone_optim_config c = adamw;
    c.beta1 = 1.0f;
    TEST_FAILS_WITH(hone_optim_init(&opt, &c, 4), "beta1 must be in [0, 1)");
    c = adamw;
    c.beta2 = -0.5f;
    TEST_FAILS_WITH(hone_optim_init(&opt, &c, 4), "beta2");
    c = adamw;
    c.eps = -1e-8f;
    TEST_FAILS_WITH(hone_optim_init(&opt, &c, 4), "eps");
    c = adamw;
    c.weight_decay = NAN;
    TEST_FAILS_WITH(hone_optim_init(&opt, &c, 4), "weight_decay");
    TEST_FAILS_WITH(hone_optim_init(&opt, &(hone_optim_config){.kind = HONE_OPT_SGD, .momentum = -0.9f}, 4),
                    "momentum");
    TEST_FAILS_WITH(hone_optim_init(&opt, &(hone_optim_config){.kind = (hone_optimizer_kind)5}, 4),
                    "unknown optimizer kind");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adamw_matches_torch),
        cmocka_unit_test(test_sgd_matches_torch),
        cmocka_unit_test(test_clip_matches_torch),
        cmocka_unit_test(test_adamw_matches_double_reference),
        cmocka_unit_test(test_adamw_first_step_is_lr_times_sign),
        cmocka_unit_test(test_adamw_decay_only_on_decaying_segments),
        cmocka_unit_test(test_sgd_by_hand),
        cmocka_unit_test(test_clip),
        cmocka_unit_test(test_clip_norm_same_bits_for_any_thread_count),
        cmocka_unit_test(test_schedules),
        cmocka_unit_test(test_warmup_ratio_rounds_like_transformers),
        cmocka_unit_test(test_invalid_inputs_rejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
