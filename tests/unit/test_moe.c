/* merge-moe: Mixtral checkpoints from mergekit-moe configs against tools/make_moe_fixtures.py (mergekit's
 * get_gate_params and MixtralMoE writer, float64) on tiny Llama checkpoints: every output tensor, config.json, the
 * tokenizer copy; random gates (distribution, reproducibility for a seed); sharding in mergekit's tensor order; the
 * per-layer hidden states accessor; config and model errors. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hone/merge.h"
#include "hone/model.h"
#include "testutil.h"

#define FIX "tests/fixtures/moe"
#define MODELS FIX "/models/"

static hone_status run_yaml(const char *yaml, const char *out_dir, uint64_t seed, uint64_t max_shard_size) {
    hone_moe_config *c;
    HONE_TRY(hone_moe_config_parse(&c, yaml, strlen(yaml), "moe.yaml"));
    hone_merge_options o;
    hone_merge_options_defaults(&o);
    o.output_dir = out_dir;
    o.seed = seed;
    if (max_shard_size) o.max_shard_size = max_shard_size;
    hone_status st = hone_moe_run(c, &o, NULL);
    hone_moe_config_free(c);
    return st;
}

/* Every expected tensor is in the output with its shape, F32, and close values; nothing else is. */
static void assert_matches(const char *got_dir, const char *want_path, float rtol, const char *what) {
    hone_checkpoint got;
    hone_st_file want;
    TEST_OK(hone_checkpoint_open(&got, got_dir));
    TEST_OK(hone_st_open(&want, want_path));
    if (got.n_tensors != want.n_tensors)
        fail_msg("%s: %zu tensors written, %zu expected", what, got.n_tensors, want.n_tensors);
    for (size_t i = 0; i < want.n_tensors; i++) {
        const hone_st_tensor *w = &want.tensors[i], *g = hone_checkpoint_find(&got, w->name);
        if (!g) fail_msg("%s: tensor %s missing from the output", what, w->name);
        assert_int_equal(g->dtype, HONE_DTYPE_F32);
        assert_int_equal(g->ndim, w->ndim);
        for (int d = 0; d < w->ndim; d++) assert_int_equal(g->shape[d], w->shape[d]);
        float *a = test_tensor_f32(g), *b = test_tensor_f32(w);
        char label[512];
        snprintf(label, sizeof label, "%s: %s", what, w->name);
        test_assert_close(a, b, (size_t)w->numel, 1e-7f, rtol, label);
        free(a);
        free(b);
    }
    hone_st_close(&want);
    hone_checkpoint_close(&got);
}

static void test_fixture_cases(void **state) {
    (void)state;
    json_error_t err;
    json_t *cases = json_load_file(FIX "/cases.json", 0, &err);
    if (!cases) fail_msg("cases.json: %s", err.text);
    const char *name;
    json_t *c;
    size_t n_cases = 0;
    json_object_foreach(cases, name, c) {
        char *dir = test_tmpdir(), *out = hone_path_join(dir, "out");
        hone_moe_config *cfg;
        TEST_OK(hone_moe_config_load(&cfg, json_string_value(json_object_get(c, "config"))));
        hone_merge_options o;
        hone_merge_options_defaults(&o);
        o.output_dir = out;
        hone_merge_summary sum;
        TEST_OK(hone_moe_run(cfg, &o, &sum));
        assert_int_equal(sum.num_layers, 3);
        assert_matches(out, json_string_value(json_object_get(c, "expected")),
                       (float)json_real_value(json_object_get(c, "rtol")), name);
        json_t *config = test_load_json(out, "config.json"), *want = json_object_get(c, "config_json"), *v;
        const char *key;
        json_object_foreach(want, key, v) {
            if (!json_equal(json_object_get(config, key), v)) {
                char *got_text = json_dumps(json_object_get(config, key), JSON_ENCODE_ANY);
                fail_msg("%s: config.json %s is %s", name, key, got_text ? got_text : "absent");
            }
        }
        json_decref(config);
        char *tok = hone_path_join(out, "tokenizer.json");
        test_assert_same_file(tok, MODELS "base/tokenizer.json");
        free(tok);
        hone_moe_config_free(cfg);
        test_tmpdir_remove(dir);
        free(out);
        free(dir);
        n_cases++;
    }
    assert_int_equal(n_cases, 2);
    json_decref(cases);
}

/* With small shards the tensors come in mergekit's order: embeddings first, the routers last. */
static void test_sharded_order(void **state) {
    (void)state;
    char *dir = test_tmpdir(), *out = hone_path_join(dir, "out");
    char *yaml = NULL;
    size_t n;
    TEST_OK(hone_file_read(FIX "/configs/hidden.yaml", &yaml, &n));
    TEST_OK(run_yaml(yaml, out, 42, 2000));
    json_t *index = test_load_json(out, "model.safetensors.index.json"), *map = json_object_get(index, "weight_map");
    const char *first = json_string_value(json_object_get(map, "model.embed_tokens.weight"));
    const char *router = json_string_value(json_object_get(map, "model.layers.0.block_sparse_moe.gate.weight"));
    const char *last_expert =
        json_string_value(json_object_get(map, "model.layers.2.block_sparse_moe.experts.2.w2.weight"));
    assert_non_null(first);
    assert_non_null(router);
    assert_non_null(last_expert);
    assert_true(!strncmp(first, "model-00001-of-", 15));
    assert_true(strcmp(router, last_expert) >= 0 && strcmp(router, first) > 0);
    assert_int_equal(json_object_size(map), 51);
    json_decref(index);
    free(yaml);
    test_tmpdir_remove(dir);
    free(out);
    free(dir);
}

static float *router(const char *out, int layer, size_t *n) {
    hone_checkpoint ck;
    TEST_OK(hone_checkpoint_open(&ck, out));
    char name[128];
    snprintf(name, sizeof name, "model.layers.%d.block_sparse_moe.gate.weight", layer);
    const hone_st_tensor *t = hone_checkpoint_find(&ck, name);
    assert_non_null(t);
    *n = (size_t)t->numel;
    float *x = test_tensor_f32(t);
    hone_checkpoint_close(&ck);
    return x;
}

static const char *const random_yaml = "base_model: " MODELS "base\n"
                                       "gate_mode: %s\n"
                                       "experts:\n"
                                       "  - source_model: " MODELS "base\n"
                                       "  - source_model: " MODELS "base\n"
                                       "  - source_model: " MODELS "expert_a\n"
                                       "  - source_model: " MODELS "expert_b\n";

/* random: N(0, 1), layer-major, the same for a seed and different for another; uniform_random: U(-1/sqrt(C),
 * 1/sqrt(C)). Sparse upcycling (every expert the same model) is allowed with random gates, as in mergekit. */
static void test_random_gates(void **state) {
    (void)state;
    char yaml[1024], *dir = test_tmpdir();
    char *a = hone_path_join(dir, "a"), *b = hone_path_join(dir, "b"), *c = hone_path_join(dir, "c");
    snprintf(yaml, sizeof yaml, random_yaml, "random");
    TEST_OK(run_yaml(yaml, a, 42, 0));
    TEST_OK(run_yaml(yaml, b, 42, 0));
    TEST_OK(run_yaml(yaml, c, 43, 0));
    double sum = 0, sum2 = 0;
    size_t count = 0, n;
    for (int l = 0; l < 3; l++) {
        float *x = router(a, l, &n), *y = router(b, l, &n), *z = router(c, l, &n);
        assert_int_equal(n, 4 * 8);
        assert_memory_equal(x, y, n * sizeof *x);
        assert_memory_not_equal(x, z, n * sizeof *x);
        for (size_t i = 0; i < n; i++) sum += x[i], sum2 += (double)x[i] * x[i], count++;
        free(x);
        free(y);
        free(z);
    }
    double mean = sum / (double)count, sd = sqrt(sum2 / (double)count - mean * mean);
    /* 96 draws: the mean's standard error is 0.1, the standard deviation's about 0.07 */
    if (fabs(mean) > 0.4 || fabs(sd - 1) > 0.3) fail_msg("random gates: mean %g, sd %g; expected N(0, 1)", mean, sd);
    snprintf(yaml, sizeof yaml, random_yaml, "uniform_random");
    TEST_OK(run_yaml(yaml, c, 42, 0));
    float bound = (float)sqrt(1.0 / 8), lo = bound, hi = -bound;
    for (int l = 0; l < 3; l++) {
        float *x = router(c, l, &n);
        for (size_t i = 0; i < n; i++) lo = x[i] < lo ? x[i] : lo, hi = x[i] > hi ? x[i] : hi;
        free(x);
    }
    assert_true(lo >= -bound && hi <= bound && hi - lo > bound);
    test_tmpdir_remove(dir);
    free(a);
    free(b);
    free(c);
    free(dir);
}

static const char *const noise_yaml = "base_model: " MODELS "base\n"
                                      "gate_mode: random\n"
                                      "experts:\n"
                                      "  - source_model: " MODELS "expert_a\n%s"
                                      "  - source_model: " MODELS "expert_b\n%s"
                                      "    residual_scale: 0.5\n"
                                      "  - source_model: " MODELS "base\n";

/* Σ and Σ² of the differences (noisy - plain) / sd of one group of tensors, and their count. */
typedef struct {
    double sum, sum2;
    size_t n;
} noise_stats;

static void check_noise_stats(const noise_stats *g, const char *what) {
    double mean = g->sum / (double)g->n, sd = sqrt(g->sum2 / (double)g->n - mean * mean);
    /* N(0, 1) draws: the mean's standard error is 1/sqrt(n), the standard deviation's about 1/sqrt(2n) */
    if (g->n < 300 || fabs(mean) > 5 / sqrt((double)g->n) || fabs(sd - 1) > 5 / sqrt(2.0 * (double)g->n))
        fail_msg("%s: %zu differences / expected sd: mean %g, sd %g; expected N(0, 1)", what, g->n, mean, sd);
}

/* noise_scale (mergekit's noise_and_scale): the experts' w1, w2, w3 differ from a run without it by N(0, noise_scale²)
 * (w2 by that times residual_scale: the noise comes first); every other tensor (attention, norms, routers, an expert
 * without noise) is bit-identical; the same for a seed, different for another. */
static void test_noise_scale(void **state) {
    (void)state;
    char yaml[1024], *dir = test_tmpdir();
    char *plain = hone_path_join(dir, "plain"), *a = hone_path_join(dir, "a"), *b = hone_path_join(dir, "b"),
         *c = hone_path_join(dir, "c");
    snprintf(yaml, sizeof yaml, noise_yaml, "", "");
    TEST_OK(run_yaml(yaml, plain, 42, 0));
    snprintf(yaml, sizeof yaml, noise_yaml, "    noise_scale: 0.01\n", "    noise_scale: 0.02\n");
    TEST_OK(run_yaml(yaml, a, 42, 0));
    TEST_OK(run_yaml(yaml, b, 42, 0));
    TEST_OK(run_yaml(yaml, c, 43, 0));
    hone_checkpoint want, got, other;
    TEST_OK(hone_checkpoint_open(&want, plain));
    TEST_OK(hone_checkpoint_open(&got, a));
    TEST_OK(hone_checkpoint_open(&other, c));
    assert_int_equal(got.n_tensors, want.n_tensors);
    noise_stats groups[3] = {{0}}; /* expert 0; expert 1's w1 and w3; expert 1's w2 */
    for (size_t i = 0; i < want.n_tensors; i++) {
        const hone_st_tensor *w = want.by_name[i], *g = hone_checkpoint_find(&got, w->name);
        const hone_st_tensor *o = hone_checkpoint_find(&other, w->name);
        assert_non_null(g);
        assert_non_null(o);
        assert_int_equal(g->numel, w->numel);
        int group = -1; /* without noise */
        if (strstr(w->name, ".experts.0."))
            group = 0;
        else if (strstr(w->name, ".experts.1."))
            group = strstr(w->name, ".w2.") ? 2 : 1;
        if (group < 0) {
            const int router = strstr(w->name, ".gate.weight") != NULL; /* random gates: other values for seed 43 */
            if (memcmp(g->data, w->data, (size_t)w->numel * 4) ||
                (!router && memcmp(o->data, w->data, (size_t)w->numel * 4)))
                fail_msg("%s has no noise but differs from the run without noise_scale", w->name);
            continue;
        }
        const double sd = group == 0 ? 0.01 : group == 1 ? 0.02 : 0.02 * 0.5;
        float *x = test_tensor_f32(w), *y = test_tensor_f32(g), *z = test_tensor_f32(o);
        size_t same_as_other = 0;
        for (int64_t j = 0; j < w->numel; j++) {
            double d = ((double)y[j] - x[j]) / sd;
            groups[group].sum += d;
            groups[group].sum2 += d * d;
            same_as_other += y[j] == z[j];
        }
        groups[group].n += (size_t)w->numel;
        if (same_as_other > 2) fail_msg("%s: %zu values equal with seeds 42 and 43", w->name, same_as_other);
        free(x);
        free(y);
        free(z);
    }
    check_noise_stats(&groups[0], "expert 0 (noise_scale 0.01)");
    check_noise_stats(&groups[1], "expert 1's w1 and w3 (noise_scale 0.02)");
    check_noise_stats(&groups[2], "expert 1's w2 (noise_scale 0.02, residual_scale 0.5)");
    hone_checkpoint_close(&want);
    hone_checkpoint_close(&got);
    hone_checkpoint_close(&other);
    char *fa = hone_path_join(a, "model.safetensors"), *fb = hone_path_join(b, "model.safetensors");
    test_assert_same_file(fa, fb);
    free(fa);
    free(fb);
    test_tmpdir_remove(dir);
    free(plain);
    free(a);
    free(b);
    free(c);
    free(dir);
}

/* hone_model_layer_hidden: NULL unless prepared for training; layer 0 is the embeddings, layer L the input of the
 * final norm. */
static void test_layer_hidden(void **state) {
    (void)state;
    hone_model *m;
    TEST_OK(hone_model_load(&m, MODELS "base"));
    const int32_t ids[3] = {256, 72, 105};
    TEST_OK(hone_model_prepare(m, 1, 3, 0));
    TEST_OK(hone_model_forward(m, ids, 1, 3));
    assert_null(hone_model_layer_hidden(m, 1));
    TEST_OK(hone_model_prepare(m, 1, 3, 1));
    TEST_OK(hone_model_forward(m, ids, 1, 3));
    assert_null(hone_model_layer_hidden(m, -1));
    assert_null(hone_model_layer_hidden(m, 4));
    float want[8];
    hone_checkpoint ck;
    TEST_OK(hone_checkpoint_open(&ck, MODELS "base"));
    const hone_st_tensor *embed = hone_checkpoint_find(&ck, "model.embed_tokens.weight");
    const float *h0 = hone_model_layer_hidden(m, 0);
    assert_non_null(h0);
    for (int t = 0; t < 3; t++) {
        memcpy(want, embed->data + (size_t)ids[t] * 8 * sizeof(float), sizeof want);
        test_assert_close(h0 + t * 8, want, 8, 0, 0, "layer 0 = embeddings");
    }
    assert_true(hone_model_layer_hidden(m, 3) != hone_model_layer_hidden(m, 2));
    hone_checkpoint_close(&ck);
    hone_model_free(m);
}

static void config_fails(const char *yaml, const char *needle) {
    hone_moe_config *c = NULL;
    TEST_FAILS_WITH(hone_moe_config_parse(&c, yaml, strlen(yaml), "moe.yaml"), needle);
    assert_null(c);
}

#define BASE "base_model: " MODELS "base\n"
#define TWO_EXPERTS                                                                                                    \
    "experts:\n  - source_model: " MODELS "expert_a\n    positive_prompts: [\"math\"]\n"                               \
    "  - source_model: " MODELS "expert_b\n    positive_prompts: [\"story\"]\n"

static void test_config_errors(void **state) {
    (void)state;
    config_fails(BASE "gate_mod: hidden\n" TWO_EXPERTS, "moe.yaml:2: config: unknown key 'gate_mod' (did you mean "
                                                        "'gate_mode'?)");
    config_fails(BASE "gate_mode: hiden\n" TWO_EXPERTS, "unknown mode 'hiden' (did you mean 'hidden'?)");
    config_fails(BASE "gate_mode: hidden_avg\n" TWO_EXPERTS, "hidden_avg is not supported");
    config_fails(BASE "experts:\n  - source_model: x\n    positive_prompt: [a]\n  - source_model: y\n",
                 "unknown key 'positive_prompt' (did you mean 'positive_prompts'?)");
    config_fails(BASE "experts:\n  - source_model: x\n    positive_prompts: [a]\n    noise_scale: lots\n",
                 "moe.yaml:5: noise_scale: expected a number");
    config_fails(BASE "architecture: qwen\n" TWO_EXPERTS, "architecture: 'qwen' is not supported");
    config_fails(BASE "shared_experts:\n  - source_model: x\n" TWO_EXPERTS, "Mixtral has no shared expert");
    config_fails(BASE "experts_per_token: 3\n" TWO_EXPERTS, "2 experts but experts_per_token 3");
    config_fails(BASE "experts_per_token: 0\n" TWO_EXPERTS, "expected a positive integer");
    config_fails(BASE "experts:\n  - source_model: a\n    positive_prompts: [p]\n  - source_model: b\n",
                 "expert 1 ('b') has no positive_prompts");
    config_fails(BASE "experts:\n  - source_model: a\n    positive_prompts: [p]\n  - source_model: b\n"
                      "    positive_prompts: [p]\n",
                 "every expert has the same positive and negative prompts");
    config_fails(BASE "experts:\n  - source_model: a\n    positive_prompts: [p]\n  - source_model: a\n"
                      "    positive_prompts: [q]\n",
                 "every expert is 'a'");
    config_fails(BASE "experts:\n  - positive_prompts: [p]\n", "an expert needs 'source_model'");
    config_fails("gate_mode: random\n" TWO_EXPERTS, "no base_model");
    /* architecture: mixtral (or a prefix of it, as mergekit matches) is accepted */
    hone_moe_config *c;
    const char *ok = BASE "architecture: Mix\n" TWO_EXPERTS;
    TEST_OK(hone_moe_config_parse(&c, ok, strlen(ok), "moe.yaml"));
    hone_moe_config_free(c);
    /* hone merge points a mergekit-moe config at hone merge-moe */
    hone_merge_config *mc = NULL;
    const char *moe = BASE "gate_mode: hidden\n" TWO_EXPERTS;
    TEST_FAILS_WITH(hone_merge_config_parse(&mc, moe, strlen(moe), "moe.yaml"), "hone merge-moe moe.yaml");
}

static void test_model_errors(void **state) {
    (void)state;
    char *dir = test_tmpdir(), *out = hone_path_join(dir, "out");
    TEST_FAILS_WITH(run_yaml(BASE "gate_mode: cheap_embed\nexperts:\n  - source_model: " MODELS "expert_a\n"
                                  "    positive_prompts: [a]\n  - source_model: " MODELS "qwen\n"
                                  "    positive_prompts: [b]\n",
                             out, 42, 0),
                    "model '" MODELS "qwen' has model_type 'qwen2'; MoE assembly into Mixtral supports Llama and "
                    "Mistral");
    TEST_FAILS_WITH(run_yaml(BASE "gate_mode: cheap_embed\nexperts:\n  - source_model: " MODELS "expert_a\n"
                                  "    positive_prompts: [a]\n  - source_model: " MODELS "wide\n"
                                  "    positive_prompts: [b]\n",
                             out, 42, 0),
                    "tensor 'model.layers.0.mlp.up_proj.weight': shapes differ (" MODELS "base [16, 8], " MODELS
                    "wide [24, 8])");
    TEST_FAILS_WITH(run_yaml(BASE "gate_mode: random\nexperts:\n  - source_model: " MODELS "nowhere\n"
                                  "  - source_model: " MODELS "expert_a\n",
                             out, 42, 0),
                    "no such folder");
    assert_false(hone_dir_exists(out)); /* nothing is written when the plan fails */
    test_tmpdir_remove(dir);
    free(out);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_cases), cmocka_unit_test(test_sharded_order),
        cmocka_unit_test(test_random_gates),  cmocka_unit_test(test_noise_scale),
        cmocka_unit_test(test_layer_hidden),  cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_model_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
