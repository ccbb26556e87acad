/* merge: every method against the reference of tools/make_merge_fixtures.py (mergekit semantics, float64) on
 * tiny checkpoints; parameter resolution (gradients, filters, fall-through, t per layer); sharded output and
 * its atomicity; DARE / DELLA statistics and reproducibility; block expansion (the expanded model's logits
 * equal the original's); the streaming safetensors writer; linear's in-place BF16 path; error messages. */
#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hone/merge.h"
#include "hone/model.h"
#include "hone/tokenizer.h"
#include "merge/merge_internal.h"
#include "testutil.h"

#define FIX "tests/fixtures/merge"

static void options(hone_merge_options *o, const char *dir) {
    hone_merge_options_defaults(o);
    o->output_dir = dir;
}

static hone_merge_config *parse(const char *yaml) {
    hone_merge_config *c;
    TEST_OK(hone_merge_config_parse(&c, yaml, strlen(yaml), "test.yaml"));
    return c;
}

/* Runs a YAML text; returns the status and leaves the error message. */
static hone_status run_yaml(const char *yaml, const char *out_dir) {
    hone_merge_config *c;
    HONE_TRY(hone_merge_config_parse(&c, yaml, strlen(yaml), "test.yaml"));
    hone_merge_options o;
    options(&o, out_dir);
    hone_status st = hone_merge_run(c, &o, NULL);
    hone_merge_config_free(c);
    return st;
}

/* Every tensor of `want` is in `got` with the same shape (and dtype, when same_dtype) and close values, and
 * nothing else is. */
static void assert_checkpoint_matches(const char *got_dir, const char *want_path, float atol, float rtol,
                                      int same_dtype, const char *what) {
    hone_checkpoint got;
    hone_st_file want;
    TEST_OK(hone_checkpoint_open(&got, got_dir));
    TEST_OK(hone_st_open(&want, want_path));
    if (got.n_tensors != want.n_tensors)
        fail_msg("%s: %zu tensors written, %zu expected", what, got.n_tensors, want.n_tensors);
    for (size_t i = 0; i < want.n_tensors; i++) {
        const hone_st_tensor *w = &want.tensors[i], *g = hone_checkpoint_find(&got, w->name);
        if (!g) fail_msg("%s: tensor %s missing from the output", what, w->name);
        if (same_dtype && g->dtype != w->dtype)
            fail_msg("%s: %s is %s, expected %s", what, w->name, hone_dtype_name(g->dtype), hone_dtype_name(w->dtype));
        assert_int_equal(g->ndim, w->ndim);
        for (int d = 0; d < w->ndim; d++)
            if (g->shape[d] != w->shape[d])
                fail_msg("%s: %s dim %d is %lld, expected %lld", what, w->name, d, (long long)g->shape[d],
                         (long long)w->shape[d]);
        float *a = test_tensor_f32(g), *b = test_tensor_f32(w);
        char label[512];
        snprintf(label, sizeof label, "%s: %s", what, w->name);
        test_assert_close(a, b, (size_t)w->numel, atol, rtol, label);
        free(a);
        free(b);
    }
    hone_st_close(&want);
    hone_checkpoint_close(&got);
}

/* ---- every method against the reference ---- */

static void test_fixture_cases(void **state) {
    (void)state;
    json_error_t err;
    json_t *cases = json_load_file(FIX "/cases.json", 0, &err);
    if (!cases) fail_msg("cases.json: %s", err.text);
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c) {
        const char *name = json_string_value(json_object_get(c, "name"));
        char cfg_path[256], want[256];
        snprintf(cfg_path, sizeof cfg_path, FIX "/configs/%s.yaml", name);
        snprintf(want, sizeof want, FIX "/expected/%s.safetensors", name);
        char *dir = test_tmpdir(), *out = hone_path_join(dir, "out");
        hone_merge_config *cfg;
        TEST_OK(hone_merge_config_load(&cfg, cfg_path));
        hone_merge_options o;
        options(&o, out);
        hone_merge_summary sum;
        TEST_OK(hone_merge_run(cfg, &o, &sum));
        assert_checkpoint_matches(out, want, (float)json_real_value(json_object_get(c, "atol")),
                                  (float)json_real_value(json_object_get(c, "rtol")), 1, name);
        /* config.json: the result's layer count, vocabulary size, dtype */
        json_t *config = test_load_json(out, "config.json");
        int layers = (int)json_integer_value(json_object_get(c, "layers"));
        json_t *n = json_object_get(config, "num_hidden_layers");
        if (!n) n = json_object_get(config, "n_layer");
        assert_int_equal(json_integer_value(n), layers);
        assert_int_equal(sum.num_layers, layers);
        json_t *vocab = json_object_get(c, "vocab_size");
        if (json_is_integer(vocab))
            assert_int_equal(json_integer_value(json_object_get(config, "vocab_size")), json_integer_value(vocab));
        if (json_is_string(json_object_get(c, "out_dtype")))
            assert_string_equal(json_string_value(json_object_get(config, "torch_dtype")),
                                json_string_value(json_object_get(c, "out_dtype")));
        json_decref(config);
        /* the tokenizer comes from the base model, else the first model, else tokenizer_source */
        char *tok = hone_path_join(out, "tokenizer.json");
        assert_true(hone_file_exists(tok));
        if (!strcmp(name, "tokenizer_model")) test_assert_same_file(tok, FIX "/models/big_vocab/tokenizer.json");
        free(tok);
        /* tokenizer_source union: the base tokenizer files with the union's tokens added */
        const char *tokenizer_files[] = {"tokenizer.json", "tokenizer_config.json"};
        for (size_t f = 0; f < 2; f++) {
            char expected[256];
            snprintf(expected, sizeof expected, "%s.%s", name, tokenizer_files[f]);
            char *expected_path = hone_path_join(FIX "/expected", expected);
            if (hone_file_exists(expected_path)) {
                json_t *got = test_load_json(out, tokenizer_files[f]), *exp = test_load_json(FIX "/expected", expected);
                if (!json_equal(got, exp)) fail_msg("%s: %s differs from %s", name, tokenizer_files[f], expected_path);
                json_decref(got);
                json_decref(exp);
            }
            free(expected_path);
        }
        if (!strcmp(name, "tokenizer_union")) { /* the written tokenizer loads and knows the new ids */
            hone_tokenizer *union_tok;
            int32_t *ids;
            size_t n_ids;
            TEST_OK(hone_tokenizer_load(&union_tok, out));
            assert_int_equal(hone_tokenizer_vocab_size(union_tok), 38);
            TEST_OK(hone_tokenizer_encode(union_tok, "y0<|sep|>x2", 11, 0, &ids, &n_ids));
            assert_int_equal(n_ids, 3);
            assert_int_equal(ids[0], 35);
            assert_int_equal(ids[1], 36);
            assert_int_equal(ids[2], 37);
            free(ids);
            hone_tokenizer_free(union_tok);
        }
        hone_merge_config_free(cfg);
        test_tmpdir_remove(dir);
        free(out);
        free(dir);
    }
    json_decref(cases);
}

/* The thread count changes nothing: DARE / DELLA masks and every reduction give the same bits. */
static void test_thread_count_independent(void **state) {
    (void)state;
    const char *names[] = {"dare_ties", "della", "slerp", "model_stock", "ties"};
    for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
        char cfg_path[256], *dir = test_tmpdir(), *one = hone_path_join(dir, "one"),
                            *four = hone_path_join(dir, "four");
        snprintf(cfg_path, sizeof cfg_path, FIX "/configs/%s.yaml", names[k]);
        hone_merge_config *cfg;
        TEST_OK(hone_merge_config_load(&cfg, cfg_path));
        hone_merge_options o;
        options(&o, one);
        hone_threads_set(1);
        TEST_OK(hone_merge_run(cfg, &o, NULL));
        o.output_dir = four;
        hone_threads_set(4);
        TEST_OK(hone_merge_run(cfg, &o, NULL));
        hone_threads_set(2);
        char *a = hone_path_join(one, "model.safetensors"), *b = hone_path_join(four, "model.safetensors");
        test_assert_same_file(a, b);
        free(a);
        free(b);
        hone_merge_config_free(cfg);
        test_tmpdir_remove(dir);
        free(one);
        free(four);
        free(dir);
    }
}

/* ---- parameters ---- */

static void test_setting_eval(void **state) {
    (void)state;
    hone_merge_config *c = parse("merge_method: task_arithmetic\n"
                                 "models: [{model: a}]\n"
                                 "parameters:\n"
                                 "  weight: [0, 1, 3]\n"
                                 "  normalize: {filter: mlp, value: [2, 4]}\n"
                                 "  lambda: [{filter: self_attn, value: 7}, {filter: '*', value: 9}]\n");
    const merge_setting *w = merge_params_find(&c->params, "weight"), *f = merge_params_find(&c->params, "normalize");
    const merge_setting *l = merge_params_find(&c->params, "lambda");
    double v;
    /* gradient: s = t (n - 1); value = (1 - frac) v[floor s] + frac v[min(n - 1, floor s + 1)] */
    assert_true(merge_setting_eval(w, "x", 0.0, &v) && v == 0.0);
    assert_true(merge_setting_eval(w, "x", 0.25, &v) && fabs(v - 0.5) < 1e-15);
    assert_true(merge_setting_eval(w, "x", 0.5, &v) && v == 1.0);
    assert_true(merge_setting_eval(w, "x", 0.75, &v) && fabs(v - 2.0) < 1e-15);
    assert_true(merge_setting_eval(w, "x", 1.0, &v) && v == 3.0);
    /* a single {filter, value}: no match falls through (0), a match interpolates its gradient */
    assert_false(merge_setting_eval(f, "model.layers.0.self_attn.q_proj.weight", 0.5, &v));
    assert_true(merge_setting_eval(f, "model.layers.0.mlp.up_proj.weight", 0.5, &v) && v == 3.0);
    /* filter lists: first match wins, '*' matches everything */
    assert_true(merge_setting_eval(l, "model.layers.3.self_attn.o_proj.weight", 0, &v) && v == 7.0);
    assert_true(merge_setting_eval(l, "model.norm.weight", 0, &v) && v == 9.0);
    hone_merge_config_free(c);
}

static const hone_merge_tensor *plan_find(const hone_merge_plan *p, const char *name) {
    for (size_t i = 0; i < hone_merge_plan_size(p); i++)
        if (!strcmp(hone_merge_plan_tensor(p, i)->name, name)) return hone_merge_plan_tensor(p, i);
    fail_msg("no output tensor %s in the plan", name);
    return NULL;
}

/* mergekit's lookup: layer i of n has t = i/(n-1); embeddings and head t = 0; source, then slice, then global;
 * per-model filters match the input tensor's name. */
static void test_plan_parameters(void **state) {
    (void)state;
    hone_merge_config *c;
    TEST_OK(hone_merge_config_load(&c, FIX "/configs/linear.yaml"));
    hone_merge_options o;
    options(&o, "unused");
    hone_merge_plan *p;
    TEST_OK(hone_merge_plan_new(&p, c, &o));
    assert_int_equal(hone_merge_plan_num_layers(p), 4);
    assert_int_equal(hone_merge_plan_size(p), 3 + 4 * 9);
    const hone_merge_tensor *t = plan_find(p, "model.layers.1.mlp.up_proj.weight");
    assert_true(fabs(t->t - 1.0 / 3) < 1e-15);
    assert_int_equal(t->n_inputs, 3);
    assert_int_equal(t->base, -1);
    /* ft_a: gradient [1.0, 0.2, 0.6] at t = 1/3: s = 2/3 → 1/3 · 1.0 + 2/3 · 0.2 */
    assert_true(fabs(t->inputs[0].weight - (1.0 / 3 + 0.4 / 3)) < 1e-12);
    assert_true(t->inputs[1].weight == 0.1); /* ft_b: the mlp filter */
    assert_true(t->inputs[2].weight == 0.4);
    assert_true(t->normalize);
    assert_true(isnan(t->inputs[0].density)); /* linear has no density */
    t = plan_find(p, "model.layers.1.self_attn.q_proj.weight");
    assert_true(t->inputs[1].weight == 0.7); /* ft_b: the catch-all */
    t = plan_find(p, "model.embed_tokens.weight");
    assert_true(t->t == 0 && t->is_embed && t->inputs[0].weight == 1.0);
    t = plan_find(p, "model.layers.3.self_attn.q_proj.weight");
    assert_true(t->t == 1 && t->inputs[0].weight == 0.6);
    hone_merge_plan_free(p);
    hone_merge_config_free(c);

    /* slices: sources renumbered, per-slice t, slice parameters under source parameters */
    TEST_OK(hone_merge_config_load(&c, FIX "/configs/passthrough.yaml"));
    TEST_OK(hone_merge_plan_new(&p, c, &o));
    assert_int_equal(hone_merge_plan_num_layers(p), 5);
    t = plan_find(p, "model.layers.2.self_attn.o_proj.weight"); /* ft_a layer 1 */
    assert_string_equal(t->inputs[0].model, FIX "/models/ft_a");
    assert_string_equal(t->inputs[0].tensor, "model.layers.1.self_attn.o_proj.weight");
    assert_true(t->inputs[0].scale == 0.5 && t->t == 0);
    t = plan_find(p, "model.layers.3.mlp.down_proj.weight"); /* ft_a layer 2 */
    assert_true(t->inputs[0].scale == 0.25 && t->t == 1);
    assert_true(isnan(plan_find(p, "model.layers.3.mlp.up_proj.weight")->inputs[0].scale));
    t = plan_find(p, "model.layers.4.mlp.up_proj.weight"); /* ft_b layer 3, slice scale */
    assert_string_equal(t->inputs[0].tensor, "model.layers.3.mlp.up_proj.weight");
    assert_true(t->inputs[0].scale == 2.0 && t->t == 1);
    assert_string_equal(plan_find(p, "model.embed_tokens.weight")->inputs[0].model, FIX "/models/base");
    assert_string_equal(plan_find(p, "model.norm.weight")->inputs[0].model, FIX "/models/ft_b");
    hone_merge_plan_free(p);
    hone_merge_config_free(c);

    /* task arithmetic: the base model is appended to the models when not listed; defaults per method */
    TEST_OK(hone_merge_config_load(&c, FIX "/configs/dare_linear.yaml"));
    TEST_OK(hone_merge_plan_new(&p, c, &o));
    t = plan_find(p, "model.layers.0.mlp.up_proj.weight");
    assert_int_equal(t->n_inputs, 3);
    assert_int_equal(t->base, 2);
    assert_true(t->rescale && !t->normalize && t->lambda == 1.0);
    assert_true(t->inputs[1].density == 0.3 && t->inputs[0].epsilon != t->inputs[0].epsilon);
    hone_merge_plan_free(p);
    hone_merge_config_free(c);
}

/* ---- output files ---- */

static size_t count_files(const char *dir, const char *needle) {
    DIR *d = opendir(dir);
    size_t n = 0;
    for (struct dirent *e; d && (e = readdir(d));) n += strstr(e->d_name, needle) != NULL;
    if (d) closedir(d);
    return n;
}

static void test_sharded_output(void **state) {
    (void)state;
    char *dir = test_tmpdir(), *out = hone_path_join(dir, "out");
    hone_merge_config *c;
    TEST_OK(hone_merge_config_load(&c, FIX "/configs/ties.yaml"));
    hone_merge_options o;
    options(&o, out);
    o.max_shard_size = 1500; /* bytes: the 11.5 KB of tensors spread over many shards */
    hone_merge_summary sum;
    TEST_OK(hone_merge_run(c, &o, &sum));
    assert_true(sum.n_shards > 5);
    char name[64];
    snprintf(name, sizeof name, "-of-%05zu.safetensors", sum.n_shards);
    assert_int_equal(count_files(out, name), sum.n_shards);
    assert_int_equal(count_files(out, ".tmp."), 0);
    json_t *index = test_load_json(out, "model.safetensors.index.json");
    assert_int_equal(json_object_size(json_object_get(index, "weight_map")), sum.n_tensors);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(index, "metadata"), "total_size")),
                     sum.bytes_written);
    json_decref(index);
    assert_checkpoint_matches(out, FIX "/expected/ties.safetensors", 2e-6f, 2e-6f, 1, "sharded ties");

    /* the same folder again as one file: the shards and the index of the earlier run go */
    o.max_shard_size = 5000000000ull;
    TEST_OK(hone_merge_run(c, &o, &sum));
    assert_int_equal(sum.n_shards, 1);
    assert_int_equal(count_files(out, "-of-"), 0);
    assert_int_equal(count_files(out, "index.json"), 0);
    assert_checkpoint_matches(out, FIX "/expected/ties.safetensors", 2e-6f, 2e-6f, 1, "single-file ties");

    /* out_dtype from the options overrides the config; bf16 values are the rounded fp32 ones */
    o.out_dtype = HONE_DTYPE_BF16;
    TEST_OK(hone_merge_run(c, &o, &sum));
    hone_checkpoint ck;
    TEST_OK(hone_checkpoint_open(&ck, out));
    assert_int_equal(hone_checkpoint_find(&ck, "model.norm.weight")->dtype, HONE_DTYPE_BF16);
    hone_checkpoint_close(&ck);
    assert_checkpoint_matches(out, FIX "/expected/ties.safetensors", 0, 1.0f / 128, 0, "bf16 ties");
    json_t *config = test_load_json(out, "config.json");
    assert_string_equal(json_string_value(json_object_get(config, "torch_dtype")), "bfloat16");
    json_decref(config);
    hone_merge_config_free(c);
    test_tmpdir_remove(dir);
    free(out);
    free(dir);
}

/* A failure in the middle of the tensors leaves no weight file behind (the shards are temporary until the
 * end). Here TIES with a density that keeps no element of the first tensor. */
static void test_failure_leaves_nothing(void **state) {
    (void)state;
    char *dir = test_tmpdir(), *out = hone_path_join(dir, "out");
    TEST_FAILS_WITH(run_yaml("merge_method: ties\n"
                             "base_model: " FIX "/models/base\n"
                             "models:\n"
                             "  - model: " FIX "/models/ft_a\n"
                             "    parameters: {weight: 1, density: [0.5, 0.001]}\n",
                             out),
                    "keeps int(0.001 × 8) = 0 elements");
    assert_int_equal(count_files(out, "safetensors"), 0);
    assert_int_equal(count_files(out, ".tmp."), 0);
    test_tmpdir_remove(dir);
    free(out);
    free(dir);
}

static void test_chat_template(void **state) {
    (void)state;
    char *dir = test_tmpdir(), *out = hone_path_join(dir, "out");
    /* auto: the template most models share (ft_a and base share one; ft_b has another) */
    TEST_OK(run_yaml("merge_method: linear\n"
                     "models: [{model: " FIX "/models/ft_b, parameters: {weight: 1}},\n"
                     "         {model: " FIX "/models/ft_a, parameters: {weight: 1}},\n"
                     "         {model: " FIX "/models/base, parameters: {weight: 1}}]\n"
                     "chat_template: auto\n",
                     out));
    json_t *tc = test_load_json(out, "tokenizer_config.json"),
           *want = test_load_json(FIX "/models/ft_a", "tokenizer_config.json");
    assert_string_equal(json_string_value(json_object_get(tc, "chat_template")),
                        json_string_value(json_object_get(want, "chat_template")));
    json_decref(tc);
    json_decref(want);
    /* a template given in the config */
    TEST_OK(run_yaml("merge_method: linear\n"
                     "models: [{model: " FIX "/models/ft_b, parameters: {weight: 1}}]\n"
                     "chat_template: \"{% for m in messages %}{{ m['content'] }}{% endfor %}\"\n",
                     out));
    tc = test_load_json(out, "tokenizer_config.json");
    assert_string_equal(json_string_value(json_object_get(tc, "chat_template")),
                        "{% for m in messages %}{{ m['content'] }}{% endfor %}");
    json_decref(tc);
    test_tmpdir_remove(dir);
    free(out);
    free(dir);
}

/* Writes model folder dst: model.safetensors holding the entries, and src's config.json (with tie_word_embeddings
 * false when untie). */
static void write_model_folder(const char *src, const char *dst, const hone_st_entry *e, size_t n, int untie) {
    char *path = hone_path_join(dst, "model.safetensors");
    TEST_OK(hone_st_write(path, e, n));
    free(path);
    json_t *config = test_load_json(src, "config.json");
    if (untie) json_object_set_new(config, "tie_word_embeddings", json_false());
    path = hone_path_join(dst, "config.json");
    assert_int_equal(json_dump_file(config, path, 0), 0);
    free(path);
    json_decref(config);
}

/* Copies a tied model folder (config.json, model.safetensors) with an lm_head of its own: the embedding + 1. */
static void write_untied_copy(const char *src, const char *dst) {
    hone_checkpoint ck;
    TEST_OK(hone_checkpoint_open(&ck, src));
    TEST_OK(hone_dir_create(dst));
    hone_st_entry *e = calloc(ck.n_tensors + 1, sizeof *e);
    float **data = calloc(ck.n_tensors + 1, sizeof *data);
    for (size_t i = 0; i < ck.n_tensors; i++) {
        const hone_st_tensor *t = ck.by_name[i];
        data[i] = test_tensor_f32(t);
        e[i] = (hone_st_entry){.name = t->name, .dtype = HONE_DTYPE_F32, .ndim = t->ndim, .data = data[i]};
        memcpy(e[i].shape, t->shape, sizeof t->shape);
    }
    const hone_st_tensor *wte = hone_checkpoint_find(&ck, "model.embed_tokens.weight");
    data[ck.n_tensors] = test_tensor_f32(wte);
    for (int64_t j = 0; j < wte->numel; j++) data[ck.n_tensors][j] += 1;
    e[ck.n_tensors] = (hone_st_entry){.name = "lm_head.weight",
                                      .dtype = HONE_DTYPE_F32,
                                      .ndim = 2,
                                      .shape = {wte->shape[0], wte->shape[1]},
                                      .data = data[ck.n_tensors]};
    write_model_folder(src, dst, e, ck.n_tensors + 1, 1);
    for (size_t i = 0; i <= ck.n_tensors; i++) free(data[i]);
    free(data);
    free(e);
    hone_checkpoint_close(&ck);
}

/* Copies a model folder (config.json, model.safetensors) with its tensors rounded to BF16, plus "model.extra.weight"
 * [300, 251] of random values: more than a streamed block of elements, an odd count. */
static void write_bf16_copy(const char *src, const char *dst, uint64_t seed) {
    hone_checkpoint ck;
    TEST_OK(hone_checkpoint_open(&ck, src));
    TEST_OK(hone_dir_create(dst));
    hone_st_entry *e = calloc(ck.n_tensors + 1, sizeof *e);
    uint16_t **data = calloc(ck.n_tensors + 1, sizeof *data);
    float *extra = malloc(300 * 251 * sizeof *extra);
    hone_rng r = hone_rng_new(seed, 7);
    hone_rng_fill_normal(&r, extra, 300 * 251, 0.02f);
    for (size_t i = 0; i <= ck.n_tensors; i++) {
        const hone_st_tensor *t = i < ck.n_tensors ? ck.by_name[i] : NULL;
        const size_t n = t ? (size_t)t->numel : 300 * 251;
        float *x = t ? test_tensor_f32(t) : extra;
        data[i] = malloc(n * sizeof *data[i]);
        for (size_t j = 0; j < n; j++) data[i][j] = hone_f32_to_bf16(x[j]);
        if (t) {
            e[i] = (hone_st_entry){.name = t->name, .dtype = HONE_DTYPE_BF16, .ndim = t->ndim, .data = data[i]};
            memcpy(e[i].shape, t->shape, sizeof t->shape);
            free(x);
        } else {
            e[i] = (hone_st_entry){.name = "model.extra.weight",
                                   .dtype = HONE_DTYPE_BF16,
                                   .ndim = 2,
                                   .shape = {300, 251},
                                   .data = data[i]};
        }
    }
    write_model_folder(src, dst, e, ck.n_tensors + 1, 0);
    for (size_t i = 0; i <= ck.n_tensors; i++) free(data[i]);
    free(data);
    free(extra);
    free(e);
    hone_checkpoint_close(&ck);
}

/* Linear reads BF16 inputs in place, converting them inside its weighted sum: the same bytes as with the inputs
 * converted to fp32 buffers first (dtype: float32 forces that path), and the formula to fp32 rounding. */
static void test_linear_bf16_in_place(void **state) {
    (void)state;
    char *dir = test_tmpdir(), *a = hone_path_join(dir, "a"), *b = hone_path_join(dir, "b");
    char *fused = hone_path_join(dir, "fused"), *converted = hone_path_join(dir, "converted"), yaml[1024];
    write_bf16_copy(FIX "/models/ft_a", a, 1);
    write_bf16_copy(FIX "/models/ft_b", b, 2);
    const char *format = "merge_method: linear\nmodels:\n  - model: %s\n    parameters: {weight: 0.3}\n"
                         "  - model: %s\n    parameters: {weight: 0.9}\nout_dtype: bfloat16\n%s";
    snprintf(yaml, sizeof yaml, format, a, b, "");
    TEST_OK(run_yaml(yaml, fused));
    snprintf(yaml, sizeof yaml, format, a, b, "dtype: float32\n");
    TEST_OK(run_yaml(yaml, converted));
    char *f = hone_path_join(fused, "model.safetensors"), *c = hone_path_join(converted, "model.safetensors");
    test_assert_same_file(f, c);
    hone_checkpoint out, in_a, in_b;
    TEST_OK(hone_checkpoint_open(&out, fused));
    TEST_OK(hone_checkpoint_open(&in_a, a));
    TEST_OK(hone_checkpoint_open(&in_b, b));
    const hone_st_tensor *t = hone_checkpoint_find(&out, "model.extra.weight");
    assert_non_null(t);
    assert_int_equal(t->dtype, HONE_DTYPE_BF16);
    float *got = test_tensor_f32(t), *xa = test_tensor_f32(hone_checkpoint_find(&in_a, "model.extra.weight")),
          *xb = test_tensor_f32(hone_checkpoint_find(&in_b, "model.extra.weight"));
    for (int64_t j = 0; j < t->numel; j++) xa[j] = (float)((0.3 * xa[j] + 0.9 * xb[j]) / 1.2);
    test_assert_close(got, xa, (size_t)t->numel, 1e-7f, 1.0f / 256, "model.extra.weight (bf16 rounding)");
    free(got);
    free(xa);
    free(xb);
    hone_checkpoint_close(&out);
    hone_checkpoint_close(&in_a);
    hone_checkpoint_close(&in_b);
    free(f);
    free(c);
    test_tmpdir_remove(dir);
    free(a);
    free(b);
    free(fused);
    free(converted);
    free(dir);
}

/* mergekit's tied_names: a tied model feeds its embedding where an untied one has lm_head. A tied reference
 * with an untied model would drop the latter's lm_head: an error. */
static void test_tied_lm_head(void **state) {
    (void)state;
    char *dir = test_tmpdir(), *untied = hone_path_join(dir, "untied"), *out = hone_path_join(dir, "out");
    char yaml[1024];
    write_untied_copy("tests/fixtures/qwen2", untied);
    snprintf(yaml, sizeof yaml,
             "merge_method: linear\nmodels:\n  - {model: tests/fixtures/qwen2, parameters: {weight: 1}}\n"
             "  - {model: %s, parameters: {weight: 1}}\n",
             untied);
    TEST_FAILS_WITH(run_yaml(yaml, out), "has tensor 'lm_head.weight', which 'tests/fixtures/qwen2'");
    snprintf(yaml, sizeof yaml,
             "merge_method: linear\nmodels:\n  - {model: %s, parameters: {weight: 1}}\n"
             "  - {model: tests/fixtures/qwen2, parameters: {weight: 3}}\n",
             untied);
    TEST_OK(run_yaml(yaml, out));
    /* lm_head = (1 · (embedding + 1) + 3 · embedding) / 4 = embedding + 0.25 */
    hone_checkpoint got, tied;
    TEST_OK(hone_checkpoint_open(&got, out));
    TEST_OK(hone_checkpoint_open(&tied, "tests/fixtures/qwen2"));
    const hone_st_tensor *head = hone_checkpoint_find(&got, "lm_head.weight");
    assert_non_null(head);
    float *h = test_tensor_f32(head), *wte = test_tensor_f32(hone_checkpoint_find(&tied, "model.embed_tokens.weight"));
    for (int64_t j = 0; j < head->numel; j++) wte[j] += 0.25f;
    test_assert_close(h, wte, (size_t)head->numel, 1e-6f, 1e-6f, "lm_head from a tied model");
    free(h);
    free(wte);
    hone_checkpoint_close(&got);
    hone_checkpoint_close(&tied);
    test_tmpdir_remove(dir);
    free(untied);
    free(out);
    free(dir);
}

/* ---- DARE and DELLA, statistically ---- */

static float *random_delta(size_t n, uint64_t seed) {
    float *d = malloc(n * sizeof *d);
    hone_rng r = hone_rng_new(seed, 99);
    hone_rng_fill_normal(&r, d, n, 0.01f);
    return d;
}

static double l1(const float *d, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += fabs(d[i]);
    return s;
}

static size_t nonzero(const float *d, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += d[i] != 0;
    return k;
}

static void test_dare_statistics(void **state) {
    (void)state;
    const size_t n = 1 << 20;
    const double densities[] = {0.1, 0.5, 0.9};
    float *orig = random_delta(n, 1), *d = malloc(n * sizeof *d), *again = malloc(n * sizeof *again);
    for (size_t k = 0; k < 3; k++) {
        merge_sparsify_params p = {MERGE_RANDOM, densities[k], 0, 0, 1, 42, 1234};
        memcpy(d, orig, n * sizeof *d);
        TEST_OK(merge_sparsify_delta(d, 1, n, &p, "dare"));
        /* kept fraction: binomial, within 6 standard deviations */
        double kept = (double)nonzero(d, n) / (double)n, sd = sqrt(densities[k] * (1 - densities[k]) / (double)n);
        if (fabs(kept - densities[k]) > 6 * sd) fail_msg("density %g: kept %g", densities[k], kept);
        /* rescaled: the L1 norm of what is kept equals the original's; kept values are scaled copies */
        assert_true(fabs(l1(d, n) / l1(orig, n) - 1) < 1e-5);
        float scale = 0;
        for (size_t i = 0; i < n && !scale; i++) scale = d[i] ? d[i] / orig[i] : 0;
        assert_true(fabs(scale * densities[k] - 1) < 0.02); /* ≈ 1/density */
        for (size_t i = 0; i < n; i++)
            if (d[i] && fabsf(d[i] - orig[i] * scale) > 1e-6f * fabsf(d[i]))
                fail_msg("element %zu not a scaled copy", i);
        /* reproducible for a seed (same bits), different for another seed or stream */
        memcpy(again, orig, n * sizeof *again);
        TEST_OK(merge_sparsify_delta(again, 1, n, &p, "dare"));
        assert_memory_equal(d, again, n * sizeof *d);
        p.seed = 43;
        memcpy(again, orig, n * sizeof *again);
        TEST_OK(merge_sparsify_delta(again, 1, n, &p, "dare"));
        size_t differ = 0;
        for (size_t i = 0; i < n; i++) differ += (d[i] != 0) != (again[i] != 0);
        assert_true(differ > n / 20);
    }
    /* without rescale the kept values are untouched */
    merge_sparsify_params p = {MERGE_RANDOM, 0.3, 0, 0, 0, 42, 7};
    memcpy(d, orig, n * sizeof *d);
    TEST_OK(merge_sparsify_delta(d, 1, n, &p, "dare"));
    for (size_t i = 0; i < n; i++) assert_true(d[i] == 0 || d[i] == orig[i]);
    free(orig);
    free(d);
    free(again);
}

static void test_della_statistics(void **state) {
    (void)state;
    const size_t rows = 64, cols = 4096, n = rows * cols;
    float *orig = random_delta(n, 2), *d = malloc(n * sizeof *d);
    merge_sparsify_params p = {MERGE_DELLA, 0.4, 0, 0.2, 1, 42, 5};
    memcpy(d, orig, n * sizeof *d);
    TEST_OK(merge_sparsify_delta(d, rows, cols, &p, "della"));
    double kept = (double)nonzero(d, n) / (double)n;
    assert_true(fabs(kept - 0.4) < 0.005);
    assert_true(fabs(l1(d, n) / l1(orig, n) - 1) < 1e-5);
    /* the keep probability rises linearly with the rank by magnitude within a row: 0.2 for the smallest,
     * 0.6 for the largest; check the bottom and top tenths of every row */
    size_t low = 0, high = 0, low_n = 0, high_n = 0;
    float *mag = malloc(cols * sizeof *mag);
    for (size_t r = 0; r < rows; r++) {
        for (size_t j = 0; j < cols; j++) mag[j] = fabsf(orig[r * cols + j]);
        for (size_t j = 0; j < cols; j++) {
            size_t rank = 0;
            for (size_t k = 0; k < cols; k += 7) rank += mag[k] < mag[j]; /* rank estimated on a sample */
            double q = (double)rank / (double)((cols + 6) / 7);
            if (q < 0.1) low_n++, low += d[r * cols + j] != 0;
            if (q > 0.9) high_n++, high += d[r * cols + j] != 0;
        }
    }
    double p_low = (double)low / (double)low_n, p_high = (double)high / (double)high_n;
    if (!(p_low > 0.2 && p_low < 0.26 && p_high > 0.54 && p_high < 0.6))
        fail_msg("DELLA keep rates: bottom tenth %g (want ~0.22), top tenth %g (want ~0.58)", p_low, p_high);
    free(mag);
    free(orig);
    free(d);
}

/* TIES magnitude pruning keeps exactly int(density·n) elements, the largest; ties by position. */
static void test_magnitude_selection(void **state) {
    (void)state;
    float d[10] = {0.5f, -3, 2, -0.5f, 0.5f, 1, -2, 0.25f, 0.5f, 4};
    merge_sparsify_params p = {MERGE_MAGNITUDE, 0.5, 0, 0, 0, 0, 0};
    TEST_OK(merge_sparsify_delta(d, 1, 10, &p, "ties"));
    const float want[10] = {0, -3, 2, 0, 0, 1, -2, 0, 0, 4};
    assert_memory_equal(d, want, sizeof want);
    /* |0.5| appears 4 times: ranks 1..4 (after 0.25) go to positions 0, 3, 4, 8 in that order, so keeping 7 =
     * ranks 3..9 keeps positions 4 and 8, and keeping 6 = ranks 4..9 keeps position 8 */
    float e[10] = {0.5f, -3, 2, -0.5f, 0.5f, 1, -2, 0.25f, 0.5f, 4};
    p.density = 0.7;
    TEST_OK(merge_sparsify_delta(e, 1, 10, &p, "ties"));
    const float want_e[10] = {0, -3, 2, 0, 0.5f, 1, -2, 0, 0.5f, 4};
    assert_memory_equal(e, want_e, sizeof want_e);
    float f[10] = {0.5f, -3, 2, -0.5f, 0.5f, 1, -2, 0.25f, 0.5f, 4};
    p.density = 0.6;
    TEST_OK(merge_sparsify_delta(f, 1, 10, &p, "ties"));
    const float want_f[10] = {0, -3, 2, 0, 0, 1, -2, 0, 0.5f, 4};
    assert_memory_equal(f, want_f, sizeof want_f);
}

/* ---- block expansion ---- */

static void assert_same_logits(const char *a_dir, const char *b_dir) {
    hone_model *a, *b;
    TEST_OK(hone_model_load(&a, a_dir));
    TEST_OK(hone_model_load(&b, b_dir));
    const int T = 6, V = hone_model_get_config(a)->vocab_size;
    const int32_t ids[6] = {3, 1, 4, 1, 5, 9};
    float *la = malloc((size_t)T * V * sizeof *la), *lb = malloc((size_t)T * V * sizeof *lb);
    TEST_OK(hone_model_prepare(a, 1, T, 0));
    TEST_OK(hone_model_prepare(b, 1, T, 0));
    TEST_OK(hone_model_forward(a, ids, 1, T));
    TEST_OK(hone_model_forward(b, ids, 1, T));
    hone_model_logits(a, 0, T, la);
    hone_model_logits(b, 0, T, lb);
    assert_memory_equal(la, lb, (size_t)T * V * sizeof *la); /* exactly: the inserted blocks add zeros */
    free(la);
    free(lb);
    hone_model_free(a);
    hone_model_free(b);
}

static void test_expand(void **state) {
    (void)state;
    const struct {
        const char *model;
        int layers;
        const char *zeroed, *kept;
    } cases[] = {
        {"tests/fixtures/llama", 3, "model.layers.2.self_attn.o_proj.weight", "model.layers.2.mlp.up_proj.weight"},
        {"tests/fixtures/llama", 4, "model.layers.1.mlp.down_proj.weight", "model.layers.1.self_attn.q_proj.weight"},
        {"tests/fixtures/gpt2", 4, "transformer.h.3.mlp.c_proj.bias", "transformer.h.3.attn.c_attn.weight"},
        {"tests/fixtures/qwen2", 3, "model.layers.2.self_attn.o_proj.weight", "model.layers.2.self_attn.k_proj.bias"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        char *dir = test_tmpdir(), *out = hone_path_join(dir, "out");
        hone_merge_options o;
        options(&o, out);
        hone_merge_summary sum;
        TEST_OK(hone_expand(cases[k].model, cases[k].layers, &o, &sum));
        assert_int_equal(sum.num_layers, cases[k].layers);
        hone_checkpoint ck;
        TEST_OK(hone_checkpoint_open(&ck, out));
        const hone_st_tensor *z = hone_checkpoint_find(&ck, cases[k].zeroed),
                             *c = hone_checkpoint_find(&ck, cases[k].kept);
        assert_non_null(z);
        assert_non_null(c);
        float *x = test_tensor_f32(z);
        for (int64_t i = 0; i < z->numel; i++) assert_true(x[i] == 0);
        free(x);
        x = test_tensor_f32(c);
        double s = 0;
        for (int64_t i = 0; i < c->numel; i++) s += fabs(x[i]);
        assert_true(s > 0);
        free(x);
        hone_checkpoint_close(&ck);
        assert_same_logits(cases[k].model, out);
        test_tmpdir_remove(dir);
        free(out);
        free(dir);
    }
    hone_merge_options o;
    options(&o, "unused");
    TEST_FAILS_WITH(hone_expand("tests/fixtures/llama", 2, &o, NULL),
                    "LLaMA Pro expansion inserts a copy after every split-th layer");
    TEST_FAILS_WITH(hone_expand("tests/fixtures/llama", 5, &o, NULL), "(e.g. N = 3 or 4), not N = 5");
}

/* ---- streaming safetensors writer ---- */

static void test_stream_writer(void **state) {
    (void)state;
    char *dir = test_tmpdir(), *a = hone_path_join(dir, "a.safetensors"), *b = hone_path_join(dir, "b.safetensors");
    const float x[6] = {1, 2, 3, 4, 5, 6};
    const uint16_t h[3] = {0x3c00, 0x4000, 0xc000};
    hone_st_entry e[2] = {{.name = "x", .dtype = HONE_DTYPE_F32, .ndim = 2, .shape = {2, 3}, .data = x},
                          {.name = "h", .dtype = HONE_DTYPE_BF16, .ndim = 1, .shape = {3}, .data = h}};
    TEST_OK(hone_st_write(a, e, 2));
    e[0].data = e[1].data = NULL; /* the stream announces shapes only */
    hone_st_stream s;
    TEST_OK(hone_st_stream_open(&s, b, e, 2));
    TEST_OK(hone_st_stream_write(&s, x, 8));
    TEST_OK(hone_st_stream_write(&s, (const char *)x + 8, 16));
    TEST_OK(hone_st_stream_write(&s, h, 6));
    TEST_FAILS_WITH(hone_st_stream_write(&s, h, 1), "more bytes than the header announces");
    TEST_OK(hone_st_stream_commit(&s));
    test_assert_same_file(a, b);
    /* too few bytes: commit refuses and nothing is left */
    char *c = hone_path_join(dir, "c.safetensors");
    TEST_OK(hone_st_stream_open(&s, c, e, 2));
    TEST_OK(hone_st_stream_write(&s, x, 24));
    TEST_FAILS_WITH(hone_st_stream_commit(&s), "6 bytes of tensor data missing");
    assert_false(hone_file_exists(c));
    assert_int_equal(count_files(dir, ".tmp."), 0);
    test_tmpdir_remove(dir);
    free(a);
    free(b);
    free(c);
    free(dir);
}

/* ---- errors ---- */

static void test_config_errors(void **state) {
    (void)state;
    hone_merge_config *c;
#define PARSE_FAILS(yaml, needle) TEST_FAILS_WITH(hone_merge_config_parse(&c, yaml, strlen(yaml), "m.yaml"), needle)
    PARSE_FAILS("merge_method: tiez\nmodels: [{model: a}]\n",
                "unknown or unsupported method 'tiez' (did you mean 'ties'?)");
    PARSE_FAILS("merge_methd: ties\nmodels: [{model: a}]\n",
                "m.yaml:1: config: unknown key 'merge_methd' (did you mean "
                "'merge_method'?)");
    PARSE_FAILS("merge_method: ties\nmodels:\n  - model: a\n    parameters: {desnity: 0.5}\n",
                "m.yaml:4: parameters: unknown key 'desnity' (did you mean 'density'?)");
    PARSE_FAILS("merge_method: linear\nmodels:\n  - model: a\n    parameters: {weight: 1, density: 0.5}\n",
                "m.yaml:4: parameter 'density' is not used by merge method linear; it takes: normalize, weight");
    PARSE_FAILS("merge_method: ties\nmodels:\n  - model: a\n    parameters: {weight: [1, x]}\n",
                "m.yaml:4: weight: gradient values must be numbers");
    PARSE_FAILS("merge_method: ties\nmodels:\n  - model: a\n    parameters: {weight: [{filter: mlp}]}\n",
                "a filter entry needs a 'value'");
    PARSE_FAILS("merge_method: linear\nmodels: [{model: a}]\nslices: [{sources: [{model: a, layer_range: [0, 1]}]}]\n",
                "give exactly one of 'models' and 'slices'");
    PARSE_FAILS("merge_method: passthrough\nslices:\n  - sources:\n      - model: a\n        layer_range: [3, 1]\n",
                "m.yaml:5: layer_range: [first, end] must have first < end");
    PARSE_FAILS("merge_method: passthrough\nslices:\n  - sources:\n      - model: a\n", "needs 'layer_range'");
    PARSE_FAILS("merge_method: linear\nmodels: [{model: a}]\ntokenizer_source: union\ntokenizer: {source: base}\n",
                "tokenizer: give either tokenizer_source or tokenizer {source: ...}, not both");
    PARSE_FAILS("merge_method: linear\nmodels: [{model: a}]\ntokenizer: {pad_to_multiple_of: 8}\n",
                "tokenizer.pad_to_multiple_of is not supported yet");
    PARSE_FAILS("merge_method: linear\nmodels: [{model: a}]\nchat_template: chatml\n", "not mergekit's built-in names");
    PARSE_FAILS("merge_method: linear\nmodules: {text: {models: [{model: a}]}}\n", "modules");
    PARSE_FAILS("merge_method: linear\nmodels: [{model: {path: a}}]\n", "give the path of a local model folder");
    PARSE_FAILS("merge_method: linear\nmodels: [{model: a}\n", "m.yaml:3: invalid YAML");
    PARSE_FAILS("merge_method: linear\nmodels: [{model: a}]\ndtype: float8\n", "expected float32, float16 or bfloat16");
    PARSE_FAILS("models: [{model: a}]\n", "no merge_method");
    PARSE_FAILS("", "empty");
#undef PARSE_FAILS
}

static void test_plan_errors(void **state) {
    (void)state;
    char *dir = test_tmpdir(), *out = hone_path_join(dir, "out");
    /* a missing folder, a hub id, a LoRA reference */
    TEST_FAILS_WITH(run_yaml("merge_method: linear\nmodels: [{model: no/such_model, parameters: {weight: 1}}]\n", out),
                    "model 'no/such_model': no such folder; hone merges local Hugging Face model folders");
    TEST_FAILS_WITH(run_yaml("merge_method: linear\nmodels: [{model: a+b, parameters: {weight: 1}}]\n", out),
                    "'model+lora' references");
    /* shapes that differ outside the embeddings name the tensor and every model */
    TEST_FAILS_WITH(run_yaml("merge_method: linear\nmodels:\n"
                             "  - {model: tests/fixtures/llama, parameters: {weight: 1}}\n"
                             "  - {model: tests/fixtures/mistral, parameters: {weight: 1}}\n",
                             out),
                    "tensor 'model.layers.0.mlp.down_proj.weight': shapes differ (tests/fixtures/llama [32, 48], "
                    "tests/fixtures/mistral [32, 56])");
    /* the task arithmetic family cannot grow a smaller embedding */
    TEST_FAILS_WITH(run_yaml("merge_method: task_arithmetic\nbase_model: " FIX "/models/big_vocab\n"
                             "models: [{model: " FIX "/models/base, parameters: {weight: 1}}]\n",
                             out),
                    "none may be smaller than it");
    TEST_FAILS_WITH(
        run_yaml("merge_method: ties\nmodels: [{model: " FIX "/models/base, parameters: {weight: 1}}]\n", out),
        "ties needs a base_model among the models");
    TEST_FAILS_WITH(run_yaml("merge_method: slerp\nbase_model: " FIX "/models/base\nparameters: {t: 0.5}\n"
                             "models: [{model: " FIX "/models/ft_a}, {model: " FIX "/models/ft_b}]\n",
                             out),
                    "slerp needs two models per slice, one of them the base_model (slice 1 has 3 models)");
    TEST_FAILS_WITH(run_yaml("merge_method: slerp\nbase_model: " FIX "/models/base\n"
                             "parameters: {t: [{filter: mlp, value: 0.5}]}\n"
                             "models: [{model: " FIX "/models/ft_a}]\n",
                             out),
                    "slerp needs parameter 't' for tensor 'model.embed_tokens.weight'");
    TEST_FAILS_WITH(run_yaml("merge_method: passthrough\nmodels: [{model: " FIX "/models/base}, {model: " FIX
                             "/models/ft_a}]\n",
                             out),
                    "passthrough needs exactly one model per slice");
    TEST_FAILS_WITH(run_yaml("merge_method: linear\nmodels: [{model: " FIX "/models/base}]\n", out),
                    "has no 'weight' for tensor 'model.embed_tokens.weight'");
    TEST_FAILS_WITH(run_yaml("merge_method: linear\nmodels:\n  - {model: " FIX
                             "/models/base, parameters: {weight: 1}}\n"
                             "  - {model: " FIX "/models/ft_a, parameters: {weight: -1}}\n",
                             out),
                    "weights of tensor 'model.embed_tokens.weight' sum to 0");
    TEST_FAILS_WITH(run_yaml("merge_method: passthrough\nslices:\n  - sources: [{model: " FIX
                             "/models/base, layer_range: [2, 6]}]\n",
                             out),
                    "slice 1: layers [2, 6) of '" FIX "/models/base', which has 4 layers");
    TEST_FAILS_WITH(run_yaml("merge_method: slerp\nbase_model: " FIX "/models/base\nparameters: {t: 0.5}\nslices:\n"
                             "  - sources: [{model: " FIX "/models/base, layer_range: [0, 2]},\n"
                             "              {model: " FIX "/models/ft_a, layer_range: [0, 3]}]\n",
                             out),
                    "every source must span the same number of layers");
    TEST_FAILS_WITH(run_yaml("merge_method: della\nbase_model: " FIX "/models/base\n"
                             "models: [{model: " FIX "/models/ft_a, parameters: {weight: 1, density: 0.9}}]\n",
                             out),
                    "density 0.9 ± epsilon 0.15 must stay inside (0, 1)");
    TEST_FAILS_WITH(run_yaml("merge_method: linear\nmodels: [{model: " FIX "/models/base, parameters: {weight: 1}}]\n",
                             FIX "/models/base"),
                    "is the folder of input model");
    /* tokenizer_source: base with tokens beyond the base model's vocab_size (mergekit rewrites the tokenizer) */
    char *small = hone_path_join(dir, "small");
    TEST_OK(hone_dir_create(small));
    const char *files[] = {"model.safetensors", "tokenizer.json"};
    for (size_t i = 0; i < 2; i++) {
        char *from = hone_path_join(FIX "/models/base", files[i]), *to = hone_path_join(small, files[i]), *data;
        size_t n;
        TEST_OK(hone_file_read(from, &data, &n));
        TEST_OK(hone_file_write_atomic(to, data, n));
        free(data);
        free(from);
        free(to);
    }
    json_t *config = test_load_json(FIX "/models/base", "config.json");
    json_object_set_new(config, "vocab_size", json_integer(30));
    char *config_path = hone_path_join(small, "config.json"), yaml[512];
    assert_int_equal(json_dump_file(config, config_path, 0), 0);
    json_decref(config);
    snprintf(yaml, sizeof yaml,
             "merge_method: linear\nbase_model: %s\nmodels: [{model: %s, parameters: {weight: 1}}]\n"
             "tokenizer_source: base\n",
             small, small);
    TEST_FAILS_WITH(run_yaml(yaml, out), "has token 't30' (id 30) at or above the model's vocab_size 30");
    free(config_path);
    free(small);
    test_tmpdir_remove(dir);
    free(out);
    free(dir);
}

static void test_parse_size_dtype(void **state) {
    (void)state;
    uint64_t b;
    TEST_OK(hone_merge_parse_size("5GB", &b));
    assert_true(b == 5000000000ull);
    TEST_OK(hone_merge_parse_size("2GiB", &b));
    assert_true(b == 2147483648ull);
    TEST_OK(hone_merge_parse_size("500mb", &b));
    assert_true(b == 500000000ull);
    TEST_OK(hone_merge_parse_size("5B", &b)); /* mergekit's --out-shard-size 5B: five billion */
    assert_true(b == 5000000000ull);
    TEST_OK(hone_merge_parse_size("1048576", &b));
    assert_true(b == 1048576);
    TEST_FAILS_WITH(hone_merge_parse_size("5 parsecs", &b), "invalid size");
    TEST_FAILS_WITH(hone_merge_parse_size("0", &b), "invalid size");
    TEST_FAILS_WITH(hone_merge_parse_size("5gib", &b), "invalid size");
    hone_dtype t;
    TEST_OK(hone_merge_parse_dtype("torch.bfloat16", &t));
    assert_int_equal(t, HONE_DTYPE_BF16);
    TEST_OK(hone_merge_parse_dtype("f16", &t));
    assert_int_equal(t, HONE_DTYPE_F16);
    TEST_FAILS_WITH(hone_merge_parse_dtype("int8", &t), "unknown dtype 'int8'");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_cases),        cmocka_unit_test(test_thread_count_independent),
        cmocka_unit_test(test_setting_eval),         cmocka_unit_test(test_plan_parameters),
        cmocka_unit_test(test_sharded_output),       cmocka_unit_test(test_failure_leaves_nothing),
        cmocka_unit_test(test_chat_template),        cmocka_unit_test(test_tied_lm_head),
        cmocka_unit_test(test_dare_statistics),      cmocka_unit_test(test_della_statistics),
        cmocka_unit_test(test_magnitude_selection),  cmocka_unit_test(test_expand),
        cmocka_unit_test(test_stream_writer),        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_plan_errors),          cmocka_unit_test(test_parse_size_dtype),
        cmocka_unit_test(test_linear_bf16_in_place),
    };
    hone_log_set_level(HONE_LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
