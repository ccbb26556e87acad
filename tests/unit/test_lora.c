/* LoRA against the PyTorch oracle (tools/make_lora_fixtures.py: PEFT's semantics written out): logits, loss and the
 * gradient of every LoRA tensor for GPT-2 (Conv1D, c_attn / all-linear), Qwen2 (grouped-query, q/k/v biases:
 * all-linear, q_proj only with BF16 weights) and Llama (head_dim != hidden / heads, rsLoRA, ".default" keys);
 * merging; KV-cache generation; PEFT files; finite differences with and without dropout; the frozen base; errors.
 * modules_to_save: trainable copies of embed_tokens and lm_head (Llama untied, Qwen2 tied with ensure_weight_tying:
 * one shared copy, GPT-2 tied with a separate lm_head copy) against the same oracle. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hone/model.h"
#include "hone/optim.h"
#include "hone/peft.h"
#include "hone/safetensors.h"
#include "peft/peft_internal.h"
#include "testutil.h"

typedef struct {
    const char *name, *base;
    hone_model *model;
    hone_adapter *adapter;
    test_reference r;
} fixture;

static void fixture_open(fixture *f, const char *name, const char *base) {
    memset(f, 0, sizeof *f);
    f->name = name;
    f->base = base;
    char dir[256];
    snprintf(dir, sizeof dir, "tests/fixtures/%s", base);
    TEST_OK(hone_model_load(&f->model, dir));
    snprintf(dir, sizeof dir, "tests/fixtures/peft/lora_%s", name);
    TEST_OK(hone_adapter_load(&f->adapter, f->model, dir));
    TEST_OK(hone_model_attach(f->model, f->adapter));
    test_reference_open(&f->r, name, dir, "ids");
}

static void fixture_close(fixture *f) {
    hone_model_free(f->model);
    hone_adapter_free(f->adapter);
    test_reference_close(&f->r);
}

/* fp32 logits computed in another order (KV cache, merged weights): |got - want| <= 4e-6 · max|want| + 1e-5 |want| */
static void assert_logits_close(const float *got, const float *want, size_t n, const char *what) {
    float scale = 0;
    for (size_t i = 0; i < n; i++) scale = fmaxf(scale, fabsf(want[i]));
    test_assert_close(got, want, n, 4e-6f * scale, 1e-5f, what);
}

static int count_targets(const int32_t *targets, int n) {
    int c = 0;
    for (int i = 0; i < n; i++) c += targets[i] != -100;
    return c;
}

/* Forward + mean cross-entropy + backward; returns the loss. */
static double loss_and_grad(hone_model *m, const int32_t *ids, const int32_t *targets, int B, int T) {
    TEST_OK(hone_model_forward(m, ids, B, T));
    hone_model_zero_grad(m);
    hone_loss loss;
    TEST_OK(hone_head_cross_entropy(m, targets, 1.0f / (float)count_targets(targets, B * T), 1, &loss));
    TEST_OK(hone_model_backward(m));
    return loss.sum_nll / (double)loss.count;
}

/* The gradient (or parameter) of the LoRA tensor "<module>.lora_A.weight" / "lora_B". */
static const float *lora_tensor(const hone_adapter *a, const float *base, const char *module, char ab, size_t *n) {
    for (int k = 0; k < a->n_modules; k++)
        if (!strcmp(a->modules[k].name, module)) {
            const lora_module *mod = &a->modules[k];
            *n = (size_t)a->cfg.r * (ab == 'A' ? mod->in : mod->out);
            return base + (ab == 'A' ? mod->a : mod->b);
        }
    fail_msg("no LoRA module %s", module);
    return NULL;
}

/* The modules_to_save copy of module ("lm_head" or the embedding) in base (params or grads), [V, C]. */
static const float *copy_tensor(const hone_adapter *a, const float *base, const char *module) {
    const int head = !strcmp(module, "lm_head");
    assert_true(head ? a->has_head_copy : a->has_embed_copy);
    return base + (head ? a->head_copy : a->embed_copy);
}

static void check_reference(const char *name, const char *base) {
    fixture f;
    fixture_open(&f, name, base);
    hone_model *m = f.model;
    const hone_adapter *a = f.adapter;
    const int V = hone_model_get_config(m)->vocab_size, N = f.r.B * f.r.T;
    json_t *mods = json_object_get(f.r.json, "modules");
    assert_int_equal(a->n_modules, (int)json_array_size(mods));
    assert_float_equal(a->scale, json_number_value(json_object_get(f.r.json, "scale")), 1e-6);

    TEST_OK(hone_model_prepare(m, f.r.B, f.r.T, 1));
    assert_null(hone_model_grads(m)); /* the base is frozen: no gradient memory for it */
    double loss = loss_and_grad(m, f.r.ids, f.r.targets, f.r.B, f.r.T);
    double want = json_number_value(json_object_get(f.r.json, "loss"));
    if (fabs(loss - want) > 1e-5 * fabs(want)) fail_msg("%s loss: got %.9g want %.9g", name, loss, want);
    size_t n;
    float *ref_logits = test_reference_tensor(&f.r, "logits", &n), *logits = malloc(n * sizeof(float));
    assert_int_equal(n, (size_t)N * V);
    hone_model_logits(m, 0, N, logits);
    char what[400];
    snprintf(what, sizeof what, "%s logits", name);
    test_assert_close(logits, ref_logits, n, 2e-5f, 1e-5f, what);

    size_t i;
    json_t *mod;
    json_array_foreach(mods, i, mod) {
        for (int ab = 0; ab < 2; ab++) {
            const char *module = json_string_value(mod);
            char key[300];
            snprintf(key, sizeof key, "grad.base_model.model.%s.lora_%c.weight", module, "AB"[ab]);
            size_t gn = 0, want_n = 0;
            const float *got = lora_tensor(a, a->grads, module, "AB"[ab], &gn);
            float *want_g = test_reference_tensor(&f.r, key, &want_n);
            assert_int_equal(gn, want_n);
            float scale = 0;
            for (size_t k = 0; k < gn; k++) scale = fmaxf(scale, fabsf(want_g[k]));
            snprintf(what, sizeof what, "%s %s", name, key);
            /* fp32 sums over the batch: 2e-6 of the largest (one element of llama_mts needs more than 1e-6) */
            test_assert_close(got, want_g, gn, 2e-6f * scale, 1e-5f, what);
            free(want_g);
        }
    }
    json_array_foreach(json_object_get(f.r.json, "modules_to_save"), i, mod) {
        char key[300];
        snprintf(key, sizeof key, "grad.base_model.model.%s.weight", json_string_value(mod));
        size_t gn = 0;
        float *want_g = test_reference_tensor(&f.r, key, &gn);
        assert_int_equal(gn, (size_t)V * hone_model_get_config(m)->hidden_size);
        float scale = 0;
        for (size_t k = 0; k < gn; k++) scale = fmaxf(scale, fabsf(want_g[k]));
        snprintf(what, sizeof what, "%s %s", name, key);
        test_assert_close(copy_tensor(a, a->grads, json_string_value(mod)), want_g, gn, 1e-6f * scale, 1e-5f, what);
        free(want_g);
    }
    free(logits);
    free(ref_logits);
    fixture_close(&f);
}

static void test_reference_gpt2(void **s) { (void)s; check_reference("gpt2", "gpt2"); }
static void test_reference_gpt2_all_linear(void **s) { (void)s; check_reference("gpt2_all", "gpt2"); }
static void test_reference_qwen2_all_linear(void **s) { (void)s; check_reference("qwen2_all", "qwen2"); }
static void test_reference_qwen2_q_proj_bf16(void **s) { (void)s; check_reference("qwen2_q_bf16", "qwen2"); }
static void test_reference_llama_rslora(void **s) { (void)s; check_reference("llama_rslora", "llama"); }
static void test_reference_llama_modules_to_save(void **s) { (void)s; check_reference("llama_mts", "llama"); }
static void test_reference_qwen2_tied_copy(void **s) { (void)s; check_reference("qwen2_mts_tied", "qwen2"); }
static void test_reference_gpt2_head_copy(void **s) { (void)s; check_reference("gpt2_mts_head", "gpt2"); }

/* Merging: the base weights (Hugging Face layout, Conv1D transposed) against the oracle's W + s·B A, and the merged
 * model without the adapter against the base with it. */
static void check_merge(const char *name, const char *base) {
    fixture f;
    fixture_open(&f, name, base);
    hone_model *m = f.model;
    const int V = hone_model_get_config(m)->vocab_size, N = f.r.B * f.r.T;
    TEST_OK(hone_model_prepare(m, f.r.B, f.r.T, 0));
    TEST_OK(hone_model_forward(m, f.r.ids, f.r.B, f.r.T));
    float *with = malloc(sizeof(float) * N * V), *merged = malloc(sizeof(float) * N * V);
    hone_model_logits(m, 0, N, with);
    TEST_OK(hone_adapter_merge(m, f.adapter));
    TEST_OK(hone_model_attach(m, NULL));
    TEST_OK(hone_model_prepare(m, f.r.B, f.r.T, 0));
    TEST_OK(hone_model_forward(m, f.r.ids, f.r.B, f.r.T));
    hone_model_logits(m, 0, N, merged);
    assert_logits_close(merged, with, (size_t)N * V, "merged logits");
    size_t i;
    json_t *mod;
    int checked = 0;
    json_array_foreach(json_object_get(f.r.json, "modules"), i, mod) {
        char key[320], hf[300];
        snprintf(hf, sizeof hf, "%s.weight", json_string_value(mod));
        snprintf(key, sizeof key, "merged.%s", hf);
        size_t n;
        float *want = test_reference_tensor(&f.r, key, &n), *got = malloc(n * sizeof(float));
        TEST_OK(hone_model_hf_tensor_get(m, hf, 0, got));
        test_assert_close(got, want, n, 1e-6f, 1e-5f, key);
        free(want);
        free(got);
        checked++;
    }
    /* the copies replace the base's modules; a tied model holds the shared copy once, as its embedding */
    json_array_foreach(json_object_get(f.r.json, "modules_to_save"), i, mod) {
        if (hone_model_get_config(m)->tie_word_embeddings && !strcmp(json_string_value(mod), "lm_head")) continue;
        char key[320], hf[300];
        snprintf(hf, sizeof hf, "%s.weight", json_string_value(mod));
        snprintf(key, sizeof key, "merged.%s", hf);
        size_t n;
        float *want = test_reference_tensor(&f.r, key, &n), *got = malloc(n * sizeof(float));
        TEST_OK(hone_model_hf_tensor_get(m, hf, 0, got));
        assert_memory_equal(got, want, n * sizeof(float));
        free(want);
        free(got);
    }
    assert_true(checked > 0);
    free(with);
    free(merged);
    fixture_close(&f);
}

static void test_merge_gpt2(void **s) { (void)s; check_merge("gpt2_all", "gpt2"); }
static void test_merge_qwen2(void **s) { (void)s; check_merge("qwen2_all", "qwen2"); }
static void test_merge_llama(void **s) { (void)s; check_merge("llama_rslora", "llama"); }
static void test_merge_llama_modules_to_save(void **s) { (void)s; check_merge("llama_mts", "llama"); }
static void test_merge_qwen2_tied_copy(void **s) { (void)s; check_merge("qwen2_mts_tied", "qwen2"); }

/* A tied model cannot take an lm_head copy that differs from its embedding: merging refuses and changes nothing. */
static void test_merge_refuses_untied_copy(void **s) {
    (void)s;
    fixture f;
    fixture_open(&f, "gpt2_mts_head", "gpt2");
    const size_t n = hone_model_num_params(f.model);
    float *before = malloc(sizeof(float) * n);
    memcpy(before, hone_model_params(f.model), sizeof(float) * n);
    TEST_FAILS_WITH(hone_adapter_merge(f.model, f.adapter), "ensure_weight_tying");
    assert_memory_equal(before, hone_model_params(f.model), sizeof(float) * n);
    free(before);
    fixture_close(&f);
}

/* Generation with the KV cache computes what the full forward computes, adapter included. */
static void check_kv_cache(const char *name, const char *base) {
    fixture f;
    fixture_open(&f, name, base);
    hone_model *m = f.model;
    const int V = hone_model_get_config(m)->vocab_size, T = f.r.T;
    float *ref = test_reference_tensor(&f.r, "logits", NULL), *logits = malloc(sizeof(float) * V);
    for (int b = 0; b < f.r.B; b++) {
        hone_kv_cache *kv;
        TEST_OK(hone_kv_cache_new(&kv, m, T));
        TEST_OK(hone_model_step(m, kv, f.r.ids + b * T, 3, logits));
        assert_logits_close(logits, ref + ((size_t)b * T + 2) * V, V, "prefill logits");
        for (int t = 3; t < T; t++) {
            TEST_OK(hone_model_step(m, kv, f.r.ids + b * T + t, 1, logits));
            assert_logits_close(logits, ref + ((size_t)b * T + t) * V, V, "decode logits");
        }
        hone_kv_cache_free(kv);
    }
    free(logits);
    free(ref);
    fixture_close(&f);
}

static void test_kv_cache_gpt2(void **s) { (void)s; check_kv_cache("gpt2_all", "gpt2"); }
static void test_kv_cache_qwen2(void **s) { (void)s; check_kv_cache("qwen2_all", "qwen2"); }
static void test_kv_cache_modules_to_save(void **s) {
    (void)s;
    check_kv_cache("llama_mts", "llama");
    check_kv_cache("gpt2_mts_head", "gpt2");
}

/* ---- created adapters ---------------------------------------------------------------------------------------- */

static hone_model *load_base(const char *base) {
    char dir[256];
    snprintf(dir, sizeof dir, "tests/fixtures/%s", base);
    hone_model *m;
    TEST_OK(hone_model_load(&m, dir));
    return m;
}

static hone_adapter *create(hone_model *m, const char *targets, int r, float alpha, float dropout) {
    hone_peft_config c;
    hone_peft_config_defaults(&c, HONE_PEFT_LORA);
    c.r = r;
    c.alpha = alpha;
    c.dropout = dropout;
    c.target_modules = targets;
    hone_adapter *a;
    TEST_OK(hone_adapter_create(&a, m, &c, 7));
    return a;
}

/* Fills every LoRA tensor with seeded values of the given size (B included, so the path is not zero). */
static void randomize(hone_adapter *a, float size, uint64_t seed) {
    hone_rng rng = hone_rng_new(seed, 1);
    for (size_t k = 0; k < a->n_segments; k++)
        for (size_t i = 0; i < a->segments[k].size; i++)
            a->params[a->segments[k].offset + i] = size * (2 * hone_rng_uniform(&rng) - 1);
}

static void test_create_matches_peft_rules(void **s) {
    (void)s;
    hone_model *gpt2 = load_base("gpt2"), *llama = load_base("llama");
    hone_adapter *a = create(gpt2, NULL, 8, 16, 0);
    assert_string_equal(hone_adapter_config(a)->target_modules, "c_attn"); /* PEFT's default for gpt2 */
    assert_int_equal(a->n_modules, 2);
    assert_float_equal(a->scale, 2.0, 0);
    /* A ~ U(-1/sqrt(in), 1/sqrt(in)) filling the range, B = 0 */
    size_t n = 0;
    const float *A = lora_tensor(a, a->params, "transformer.h.0.attn.c_attn", 'A', &n);
    float lo = 1, hi = -1;
    for (size_t i = 0; i < n; i++) lo = fminf(lo, A[i]), hi = fmaxf(hi, A[i]);
    const float bound = 1.0f / sqrtf(32.0f);
    assert_true(lo >= -bound && hi <= bound && lo < -0.8f * bound && hi > 0.8f * bound);
    const float *Bw = lora_tensor(a, a->params, "transformer.h.1.attn.c_attn", 'B', &n);
    assert_int_equal(n, 96 * 8);
    for (size_t i = 0; i < n; i++) assert_true(Bw[i] == 0.0f);
    hone_adapter_free(a);
    /* "c_proj" matches attn.c_proj and mlp.c_proj, as in PEFT; all-linear resolves to the base names */
    a = create(gpt2, "c_proj", 2, 2, 0);
    assert_int_equal(a->n_modules, 4);
    assert_string_equal(a->modules[1].name, "transformer.h.0.mlp.c_proj");
    hone_adapter_free(a);
    a = create(gpt2, "mlp.c_proj", 2, 2, 0);
    assert_int_equal(a->n_modules, 2);
    hone_adapter_free(a);
    a = create(gpt2, "all-linear", 2, 2, 0);
    assert_string_equal(hone_adapter_config(a)->target_modules, "c_attn,c_proj,c_fc");
    assert_int_equal(a->n_modules, 8);
    hone_adapter_free(a);
    a = create(llama, NULL, 4, 8, 0);
    assert_string_equal(hone_adapter_config(a)->target_modules, "q_proj,v_proj");
    assert_int_equal(a->n_modules, 4);
    hone_adapter_free(a);
    a = create(llama, "model.layers.1.mlp.down_proj, k_proj ", 4, 8, 0);
    assert_int_equal(a->n_modules, 3);
    assert_string_equal(hone_adapter_config(a)->target_modules, "model.layers.1.mlp.down_proj,k_proj");
    assert_string_equal(a->modules[2].name, "model.layers.1.mlp.down_proj");
    hone_adapter_free(a);
    /* rsLoRA */
    hone_peft_config c;
    hone_peft_config_defaults(&c, HONE_PEFT_LORA);
    c.r = 16;
    c.alpha = 8;
    c.use_rslora = 1;
    TEST_OK(hone_adapter_create(&a, llama, &c, 1));
    assert_float_equal(a->scale, 2.0, 1e-7);
    hone_adapter_free(a);
    hone_model_free(gpt2);
    hone_model_free(llama);
}

/* A new adapter (B = 0) leaves the model's output unchanged. */
static void test_fresh_adapter_is_identity(void **s) {
    (void)s;
    hone_model *m = load_base("qwen2");
    const int V = hone_model_get_config(m)->vocab_size, T = 6;
    const int32_t ids[6] = {1, 5, 9, 33, 2, 60};
    float *base = malloc(sizeof(float) * T * V), *with = malloc(sizeof(float) * T * V);
    TEST_OK(hone_model_prepare(m, 1, T, 0));
    TEST_OK(hone_model_forward(m, ids, 1, T));
    hone_model_logits(m, 0, T, base);
    hone_adapter *a = create(m, "all-linear", 4, 8, 0);
    TEST_OK(hone_model_attach(m, a));
    TEST_OK(hone_model_prepare(m, 1, T, 0));
    TEST_OK(hone_model_forward(m, ids, 1, T));
    hone_model_logits(m, 0, T, with);
    assert_memory_equal(base, with, sizeof(float) * T * V);
    free(base);
    free(with);
    hone_model_free(m);
    hone_adapter_free(a);
}

/* Sum of the NLL (float64 accumulation of the fp32 forward) of one batch. */
static double sum_nll(hone_model *m, const int32_t *ids, const int32_t *targets, int B, int T) {
    TEST_OK(hone_model_forward(m, ids, B, T));
    hone_loss loss;
    TEST_OK(hone_head_cross_entropy(m, targets, 1.0f, 0, &loss));
    return loss.sum_nll;
}

/* Central differences on the largest-gradient elements of a few tensors against the analytic LoRA backward. */
static void check_finite_differences(hone_model *m, hone_adapter *a, const int32_t *ids, const int32_t *targets, int B,
                                     int T) {
    TEST_OK(hone_model_forward(m, ids, B, T));
    hone_model_zero_grad(m);
    hone_loss loss;
    TEST_OK(hone_head_cross_entropy(m, targets, 1.0f, 1, &loss));
    TEST_OK(hone_model_backward(m));
    const int picks[3] = {0, a->n_modules / 2, a->n_modules - 1};
    for (int p = 0; p < 3; p++) {
        const lora_module *mod = &a->modules[picks[p]];
        for (int ab = 0; ab < 2; ab++) {
            const size_t off = ab ? mod->b : mod->a, n = (size_t)a->cfg.r * (ab ? mod->out : mod->in);
            size_t best = 0;
            for (size_t i = 1; i < n; i++)
                if (fabsf(a->grads[off + i]) > fabsf(a->grads[off + best])) best = i;
            const float h = 1e-2f, old = a->params[off + best], g = a->grads[off + best];
            a->params[off + best] = old + h;
            const double up = sum_nll(m, ids, targets, B, T);
            a->params[off + best] = old - h;
            const double down = sum_nll(m, ids, targets, B, T);
            a->params[off + best] = old;
            const double fd = (up - down) / (2 * h);
            if (fabs(fd - g) > 2e-2 * fabs(g) + 1e-3)
                fail_msg("%s lora_%c[%zu]: backward %.6g, finite differences %.6g", mod->name, "AB"[ab], best, g, fd);
        }
    }
}

static const int32_t FD_IDS[16] = {3, 17, 42, 8, 61, 5, 29, 30, 11, 2, 47, 56, 19, 23, 7, 40};
static const int32_t FD_TARGETS[16] = {17, 42, 8, 61, -100, 29, 30, 1, 2, 47, 56, 19, -100, 7, 40, 9};

static void test_finite_differences(void **s) {
    (void)s;
    const char *bases[2] = {"gpt2", "llama"};
    for (int k = 0; k < 2; k++) {
        hone_model *m = load_base(bases[k]);
        hone_adapter *a = create(m, "all-linear", 3, 6, 0);
        randomize(a, 0.2f, 11);
        TEST_OK(hone_model_attach(m, a));
        TEST_OK(hone_model_prepare(m, 2, 8, 1));
        check_finite_differences(m, a, FD_IDS, FD_TARGETS, 2, 8);
        hone_model_free(m);
        hone_adapter_free(a);
    }
}

/* Dropout: the mask is a function of the key, drops about p, is scaled by 1/(1-p), and backward regenerates it. */
static void test_dropout(void **s) {
    (void)s;
    hone_model *m = load_base("llama");
    const int V = hone_model_get_config(m)->vocab_size, N = 16;
    hone_adapter *a = create(m, "q_proj,down_proj", 32, 32, 0.3f);
    randomize(a, 0.2f, 5);
    TEST_OK(hone_model_attach(m, a));
    TEST_OK(hone_model_prepare(m, 2, 8, 1));
    float *l1 = malloc(sizeof(float) * N * V), *l2 = malloc(sizeof(float) * N * V), *l0 = malloc(sizeof(float) * N * V);
    hone_adapter_set_dropout_key(a, 0);
    TEST_OK(hone_model_forward(m, FD_IDS, 2, 8));
    hone_model_logits(m, 0, N, l0);
    hone_adapter_set_dropout_key(a, 99);
    TEST_OK(hone_model_forward(m, FD_IDS, 2, 8));
    hone_model_logits(m, 0, N, l1);
    TEST_OK(hone_model_forward(m, FD_IDS, 2, 8));
    hone_model_logits(m, 0, N, l2);
    assert_memory_equal(l1, l2, sizeof(float) * N * V); /* same key, same masks */
    assert_memory_not_equal(l0, l1, sizeof(float) * N * V);
    hone_adapter_set_dropout_key(a, 100);
    TEST_OK(hone_model_forward(m, FD_IDS, 2, 8));
    hone_model_logits(m, 0, N, l2);
    assert_memory_not_equal(l1, l2, sizeof(float) * N * V);
    /* inference passes (the KV cache) never drop */
    hone_kv_cache *kv;
    TEST_OK(hone_kv_cache_new(&kv, m, 8));
    TEST_OK(hone_model_step(m, kv, FD_IDS, 8, l2));
    assert_logits_close(l2, l0 + 7 * V, V, "KV cache with a dropout key set");
    hone_kv_cache_free(kv);

    /* the fraction dropped and the scaling, through the q_proj hook with A = I, B = I on the first 32 rows */
    const lora_module *q = &a->modules[0];
    assert_string_equal(q->name, "model.layers.0.self_attn.q_proj");
    memset(a->params + q->a, 0, sizeof(float) * 32 * 32);
    memset(a->params + q->b, 0, sizeof(float) * q->out * 32);
    for (int i = 0; i < 32; i++) a->params[q->a + i * 32 + i] = a->params[q->b + i * 32 + i] = 1;
    const int QKV = 64 + 2 * 32, rows = 16;
    float *x = malloc(sizeof(float) * rows * 32), *y = calloc((size_t)rows * QKV, sizeof(float));
    for (int i = 0; i < rows * 32; i++) x[i] = 1;
    lora_linear_forward(m, 0, LW_QKV_W, x, y, rows, 1);
    int dropped = 0;
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < QKV; j++) {
            const float v = y[r * QKV + j];
            if (j >= 32) assert_true(v == 0.0f);
            else if (v == 0.0f) dropped++;
            else assert_float_equal(v, 1.0 / 0.7, 1e-6); /* scale alpha/r = 1, kept x scaled by 1/(1-p) */
        }
    const double frac = dropped / (double)(rows * 32); /* 512 draws: sd 0.02 */
    if (fabs(frac - 0.3) > 0.08) fail_msg("dropped fraction %.3f, p = 0.3", frac);
    free(x);
    free(y);

    /* backward under the same key is the derivative of the forward under it */
    randomize(a, 0.2f, 6);
    hone_adapter_set_dropout_key(a, 12345);
    check_finite_differences(m, a, FD_IDS, FD_TARGETS, 2, 8);
    free(l0);
    free(l1);
    free(l2);
    hone_model_free(m);
    hone_adapter_free(a);
}

/* Training steps change the adapter only: the base parameters keep every bit, and no base gradients exist. */
static void test_frozen_base(void **s) {
    (void)s;
    hone_model *m = load_base("qwen2");
    const size_t n_base = hone_model_num_params(m);
    float *before = malloc(sizeof(float) * n_base);
    memcpy(before, hone_model_params(m), sizeof(float) * n_base);
    hone_adapter *a = create(m, "all-linear", 4, 8, 0.1f);
    TEST_OK(hone_model_attach(m, a));
    TEST_OK(hone_model_prepare(m, 2, 8, 1));
    assert_null(hone_model_grads(m));
    float *params, *grads;
    size_t n_seg, n_params;
    const hone_param_segment *seg = hone_model_trainable(m, &params, &grads, &n_seg, &n_params);
    assert_ptr_equal(params, a->params);
    assert_ptr_equal(grads, a->grads);
    assert_int_equal(n_seg, 2 * (size_t)a->n_modules);
    assert_true(seg[n_seg - 1].offset + seg[n_seg - 1].size <= n_params);
    float *adapter_before = malloc(sizeof(float) * n_params);
    memcpy(adapter_before, params, sizeof(float) * n_params);
    hone_optimizer opt;
    TEST_OK(hone_optim_init(&opt, &(hone_optim_config){.kind = HONE_OPT_ADAMW, .beta1 = 0.9f, .beta2 = 0.999f,
                                                        .eps = 1e-8f, .weight_decay = 0.1f}, n_params));
    for (int step = 0; step < 3; step++) {
        hone_adapter_set_dropout_key(a, 1000 + step);
        loss_and_grad(m, FD_IDS, FD_TARGETS, 2, 8);
        hone_optim_step(&opt, params, grads, seg, n_seg, 1e-2f, 1.0f);
    }
    assert_memory_equal(before, hone_model_params(m), sizeof(float) * n_base);
    assert_null(hone_model_grads(m));
    assert_memory_not_equal(adapter_before, params, sizeof(float) * n_params);
    /* zero_grad clears the adapter's gradients */
    hone_model_zero_grad(m);
    for (size_t i = 0; i < n_params; i++) assert_true(grads[i] == 0.0f);
    hone_optim_free(&opt);
    free(before);
    free(adapter_before);
    hone_model_free(m);
    hone_adapter_free(a);
}

/* ---- files --------------------------------------------------------------------------------------------------- */

static void test_save_load_roundtrip(void **s) {
    (void)s;
    const char *bases[2] = {"gpt2", "qwen2"};
    for (int k = 0; k < 2; k++) {
        hone_model *m = load_base(bases[k]);
        hone_peft_config c;
        hone_peft_config_defaults(&c, HONE_PEFT_LORA);
        c.r = 3;
        c.alpha = 4.5f;
        c.dropout = 0.05f;
        c.use_rslora = 1;
        c.target_modules = "all-linear";
        hone_adapter *a, *b;
        TEST_OK(hone_adapter_create(&a, m, &c, 3));
        randomize(a, 0.5f, 21);
        char *dir = test_tmpdir();
        TEST_OK(hone_model_attach(m, a));
        TEST_OK(hone_model_save_trained(m, dir)); /* an adapter run saves the adapter */
        TEST_OK(hone_adapter_load(&b, m, dir));
        assert_int_equal(a->n_params, b->n_params);
        assert_memory_equal(a->params, b->params, sizeof(float) * a->n_params);
        const hone_peft_config *ca = hone_adapter_config(a), *cb = hone_adapter_config(b);
        assert_int_equal(cb->kind, HONE_PEFT_LORA);
        assert_int_equal(ca->r, cb->r);
        assert_true(ca->alpha == cb->alpha && ca->dropout == cb->dropout && cb->use_rslora == 1);
        assert_string_equal(ca->target_modules, cb->target_modules);
        /* exactly the keys PEFT writes (the fixture folder is what PEFT 0.13 writes) */
        json_t *mine = test_load_json(dir, "adapter_config.json"), *peft = test_load_json("tests/fixtures/peft/lora_gpt2",
                                                                                 "adapter_config.json");
        const char *key;
        json_t *v;
        json_object_foreach(peft, key, v) if (!json_object_get(mine, key)) fail_msg("saved config lacks %s", key);
        json_object_foreach(mine, key, v) if (!json_object_get(peft, key)) fail_msg("saved config has extra %s", key);
        assert_true(json_is_true(json_object_get(mine, "fan_in_fan_out")) == (k == 0));
        assert_float_equal(json_real_value(json_object_get(mine, "lora_dropout")), 0.05, 1e-12);
        assert_float_equal(json_real_value(json_object_get(mine, "lora_alpha")), 4.5, 0);
        json_decref(mine);
        json_decref(peft);
        /* resuming reads the saved tensors back into the attached adapter */
        float *saved = malloc(sizeof(float) * a->n_params);
        memcpy(saved, a->params, sizeof(float) * a->n_params);
        randomize(a, 0.1f, 22);
        TEST_OK(hone_model_load_trained(m, dir));
        assert_memory_equal(saved, a->params, sizeof(float) * a->n_params);
        free(saved);
        hone_adapter_free(b);
        test_tmpdir_remove(dir);
        free(dir);
        hone_model_free(m);
        hone_adapter_free(a);
    }
}

/* modules_to_save on a created adapter: copies of the base's modules (one shared copy for tied Qwen2, an lm_head
 * copy for untied Llama) train while the base stays untouched, and save, load and resume bit for bit. */
static void test_modules_to_save_train_save_resume(void **s) {
    (void)s;
    const char *bases[2] = {"qwen2", "llama"}, *saved[2] = {"embed_tokens, lm_head", "lm_head"};
    for (int k = 0; k < 2; k++) {
        hone_model *m = load_base(bases[k]);
        const hone_model_config *mc = hone_model_get_config(m);
        const size_t VC = (size_t)mc->vocab_size * mc->hidden_size, n_base = hone_model_num_params(m);
        hone_peft_config c;
        hone_peft_config_defaults(&c, HONE_PEFT_LORA);
        c.target_modules = "q_proj";
        c.modules_to_save = saved[k];
        hone_adapter *a, *b;
        TEST_OK(hone_adapter_create(&a, m, &c, 3));
        assert_string_equal(a->cfg.modules_to_save, k ? "lm_head" : "embed_tokens,lm_head");
        assert_true(a->has_head_copy && a->has_embed_copy == (k == 0));
        assert_int_equal(a->n_segments, 2 * (size_t)a->n_modules + 1); /* tied: one shared copy */
        TEST_OK(hone_model_attach(m, a));
        assert_memory_equal(copy_tensor(a, a->params, "lm_head"), k ? hone_model_params(m) + n_base - VC
                                                                      : adapter_embedding(m), VC * sizeof(float));
        float *before = malloc(sizeof(float) * n_base), *copy_before = malloc(sizeof(float) * VC);
        memcpy(before, hone_model_params(m), sizeof(float) * n_base);
        memcpy(copy_before, copy_tensor(a, a->params, "lm_head"), sizeof(float) * VC);
        TEST_OK(hone_model_prepare(m, 2, 8, 1));
        float *params, *grads;
        size_t n_seg, n_params;
        const hone_param_segment *seg = hone_model_trainable(m, &params, &grads, &n_seg, &n_params);
        hone_optimizer opt;
        TEST_OK(hone_optim_init(&opt, &(hone_optim_config){.kind = HONE_OPT_ADAMW, .beta1 = 0.9f, .beta2 = 0.999f,
                                                            .eps = 1e-8f, .weight_decay = 0.1f}, n_params));
        for (int step = 0; step < 2; step++) {
            loss_and_grad(m, FD_IDS, FD_TARGETS, 2, 8);
            hone_optim_step(&opt, params, grads, seg, n_seg, 1e-2f, 1.0f);
        }
        hone_optim_free(&opt);
        assert_memory_equal(before, hone_model_params(m), sizeof(float) * n_base);
        assert_memory_not_equal(copy_before, copy_tensor(a, a->params, "lm_head"), sizeof(float) * VC);
        char *dir = test_tmpdir();
        TEST_OK(hone_model_save_trained(m, dir));
        json_t *cfg = test_load_json(dir, "adapter_config.json");
        assert_int_equal(json_array_size(json_object_get(cfg, "modules_to_save")), k ? 1 : 2);
        assert_true(json_is_true(json_object_get(cfg, "ensure_weight_tying")));
        json_decref(cfg);
        hone_st_file f;
        char path[512];
        snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
        TEST_OK(hone_st_open(&f, path));
        assert_non_null(hone_st_find(&f, "base_model.model.lm_head.weight"));
        /* PEFT writes the shared copy under both names */
        assert_true((hone_st_find(&f, "base_model.model.model.embed_tokens.weight") != NULL) == (k == 0));
        hone_st_close(&f);
        TEST_OK(hone_adapter_load(&b, m, dir));
        assert_int_equal(a->n_params, b->n_params);
        assert_memory_equal(a->params, b->params, sizeof(float) * a->n_params);
        assert_int_equal(b->embed_copy == b->head_copy, k == 0);
        hone_adapter_free(b);
        /* resuming reads the copies back */
        float *trained = malloc(sizeof(float) * n_params);
        memcpy(trained, params, sizeof(float) * n_params);
        randomize(a, 0.1f, 23);
        TEST_OK(hone_model_load_trained(m, dir));
        assert_memory_equal(trained, params, sizeof(float) * n_params);
        free(trained);
        free(before);
        free(copy_before);
        test_tmpdir_remove(dir);
        free(dir);
        hone_model_free(m);
        hone_adapter_free(a);
    }
}

/* A copy of a fixture adapter with one config key replaced (value NULL: removed), and the tensors given. */
static char *adapter_variant(const char *fixture_name, const char *key, json_t *value, int copy_weights) {
    char src[256];
    snprintf(src, sizeof src, "tests/fixtures/peft/lora_%s", fixture_name);
    json_t *cfg = test_load_json(src, "adapter_config.json");
    if (value) json_object_set_new(cfg, key, value);
    else if (key) json_object_del(cfg, key);
    char *dir = test_tmpdir(), path[512];
    snprintf(path, sizeof path, "%s/adapter_config.json", dir);
    assert_int_equal(json_dump_file(cfg, path, JSON_INDENT(2)), 0);
    json_decref(cfg);
    if (copy_weights) {
        char from[512], *data;
        size_t n;
        snprintf(from, sizeof from, "%s/adapter_model.safetensors", src);
        TEST_OK(hone_file_read(from, &data, &n));
        free(test_write_file(dir, "adapter_model.safetensors", data, n));
        free(data);
    }
    return dir;
}

static void expect_load_error(hone_model *m, char *dir, const char *needle) {
    hone_adapter *a = NULL;
    TEST_FAILS_WITH(hone_adapter_load(&a, m, dir), needle);
    assert_null(a);
    test_tmpdir_remove(dir);
    free(dir);
}

static void test_errors(void **s) {
    (void)s;
    hone_model *gpt2 = load_base("gpt2"), *llama = load_base("llama"), *qwen2 = load_base("qwen2");
    hone_peft_config c;
    hone_peft_config_defaults(&c, HONE_PEFT_LORA);
    hone_adapter *a = NULL;
    c.target_modules = "q_proj,qq_proj";
    TEST_FAILS_WITH(hone_adapter_create(&a, llama, &c, 1), "'qq_proj' matches no module");
    TEST_FAILS_WITH(hone_adapter_create(&a, llama, &c, 1), "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj");
    c.target_modules = "q_proj";
    TEST_FAILS_WITH(hone_adapter_create(&a, gpt2, &c, 1), "c_attn,c_proj,c_fc");
    c.target_modules = "q_proj,,v_proj";
    TEST_FAILS_WITH(hone_adapter_create(&a, llama, &c, 1), "empty LoRA target module name");
    c.target_modules = "lm_head";
    TEST_FAILS_WITH(hone_adapter_create(&a, llama, &c, 1), "not a linear layer of the transformer blocks");
    c.target_modules = "q_proj";
    c.r = 0;
    TEST_FAILS_WITH(hone_adapter_create(&a, llama, &c, 1), "lora_r must be positive");
    c.r = 4;
    c.dropout = 1;
    TEST_FAILS_WITH(hone_adapter_create(&a, llama, &c, 1), "lora_dropout must be in [0, 1)");
    c.dropout = 0;
    c.alpha = 0;
    TEST_FAILS_WITH(hone_adapter_create(&a, llama, &c, 1), "lora_alpha must be positive");
    assert_null(a);
    hone_peft_kind kind;
    TEST_FAILS_WITH(hone_peft_kind_parse("ia3", &kind), "lora, prompt or prefix");

    /* an adapter for another model shape */
    c.alpha = 8;
    TEST_OK(hone_adapter_create(&a, llama, &c, 1));
    TEST_FAILS_WITH(hone_model_attach(qwen2, a), "another shape");
    TEST_FAILS_WITH(hone_adapter_merge(qwen2, a), "another shape");
    hone_adapter_free(a);
    a = NULL;
    expect_load_error(llama, adapter_variant("qwen2_all", NULL, NULL, 1), "the model needs");

    /* files */
    expect_load_error(llama, adapter_variant("llama_rslora", NULL, NULL, 0), "no adapter_model.safetensors");
    char *dir = test_tmpdir();
    free(test_write_file(dir, "adapter_config.json", "{}", 2));
    free(test_write_file(dir, "adapter_model.bin", "PK", 2));
    expect_load_error(llama, dir, "not supported: convert it to adapter_model.safetensors");
    dir = test_tmpdir();
    expect_load_error(llama, dir, "no adapter_config.json");
    dir = adapter_variant("llama_rslora", NULL, NULL, 1);
    free(test_write_file(dir, "adapter_config.json", "{\"r\": 4,", 8));
    expect_load_error(llama, dir, "adapter_config.json:1");
    expect_load_error(llama, adapter_variant("llama_rslora", "peft_type", json_string("IA3"), 1),
                      "peft_type \"IA3\" is not supported");
    expect_load_error(llama, adapter_variant("llama_rslora", "task_type", json_string("SEQ_CLS"), 1),
                      "task_type SEQ_CLS");
    expect_load_error(llama, adapter_variant("llama_rslora", "bias", json_string("all"), 1), "bias \"all\"");
    expect_load_error(llama, adapter_variant("llama_rslora", "use_dora", json_true(), 1), "\"use_dora\" is set");
    expect_load_error(llama, adapter_variant("llama_rslora", "modules_to_save", json_pack("[s]", "lm_head"), 1),
                      "'base_model.model.lm_head.weight' is missing");
    expect_load_error(llama, adapter_variant("llama_rslora", "modules_to_save", json_pack("[s]", "norm"), 1),
                      "hone trains full copies of the token embedding (model.embed_tokens) and lm_head only");
    expect_load_error(llama, adapter_variant("llama_rslora", "modules_to_save", json_string("lm_head"), 1),
                      "modules_to_save must be a non-empty list");
    /* a copy the config does not list is an unknown tensor */
    expect_load_error(llama, adapter_variant("llama_mts", "modules_to_save", json_pack("[s]", "lm_head"), 1),
                      "embed_tokens.weight' is not a lora_A/lora_B weight");
    c.modules_to_save = "wte";
    TEST_FAILS_WITH(hone_adapter_create(&a, llama, &c, 1), "'wte'");
    c.modules_to_save = NULL;
    hone_peft_config pt;
    hone_peft_config_defaults(&pt, HONE_PEFT_PROMPT);
    pt.modules_to_save = "lm_head";
    TEST_FAILS_WITH(hone_adapter_create(&a, llama, &pt, 1), "LoRA adapters only");
    expect_load_error(llama, adapter_variant("llama_rslora", "layers_to_transform", json_pack("[i]", 0), 1),
                      "\"layers_to_transform\" is set");
    expect_load_error(llama, adapter_variant("llama_rslora", "rank_pattern", json_pack("{s:i}", "q_proj", 2), 1),
                      "\"rank_pattern\" is set");
    expect_load_error(llama, adapter_variant("llama_rslora", "init_lora_weights", json_string("pissa"), 1),
                      "changes the base weights");
    expect_load_error(llama, adapter_variant("llama_rslora", "target_modules", json_string(".*q_proj"), 1),
                      "regular expression");
    expect_load_error(llama, adapter_variant("llama_rslora", "r", json_integer(2), 1), "the model needs [2, 32]");
    expect_load_error(llama, adapter_variant("llama_rslora", "target_modules", json_pack("[s]", "q_proj"), 1),
                      "is not a lora_A/lora_B weight of the target modules");
    expect_load_error(llama, adapter_variant("llama_rslora", "target_modules", json_pack("[s,s]", "q_proj", "k_proj"), 1),
                      "lora_A.weight' is missing");
    /* newer PEFT keys with their neutral values load */
    dir = adapter_variant("llama_rslora", "qalora_group_size", json_integer(16), 1);
    hone_adapter *ok;
    TEST_OK(hone_adapter_load(&ok, llama, dir));
    hone_adapter_free(ok);
    test_tmpdir_remove(dir);
    free(dir);
    dir = adapter_variant("llama_rslora", "exclude_modules", json_null(), 1);
    TEST_OK(hone_adapter_load(&ok, llama, dir));
    hone_adapter_free(ok);
    test_tmpdir_remove(dir);
    free(dir);
    expect_load_error(llama, adapter_variant("llama_rslora", "exclude_modules", json_pack("[s]", "o_proj"), 1),
                      "\"exclude_modules\" is set");
    hone_model_free(gpt2);
    hone_model_free(llama);
    hone_model_free(qwen2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_gpt2),          cmocka_unit_test(test_reference_gpt2_all_linear),
        cmocka_unit_test(test_reference_qwen2_all_linear), cmocka_unit_test(test_reference_qwen2_q_proj_bf16),
        cmocka_unit_test(test_reference_llama_rslora),  cmocka_unit_test(test_merge_gpt2),
        cmocka_unit_test(test_merge_qwen2),             cmocka_unit_test(test_merge_llama),
        cmocka_unit_test(test_kv_cache_gpt2),           cmocka_unit_test(test_kv_cache_qwen2),
        cmocka_unit_test(test_create_matches_peft_rules), cmocka_unit_test(test_fresh_adapter_is_identity),
        cmocka_unit_test(test_finite_differences),      cmocka_unit_test(test_dropout),
        cmocka_unit_test(test_frozen_base),             cmocka_unit_test(test_save_load_roundtrip),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_reference_llama_modules_to_save), cmocka_unit_test(test_reference_qwen2_tied_copy),
        cmocka_unit_test(test_reference_gpt2_head_copy), cmocka_unit_test(test_merge_llama_modules_to_save),
        cmocka_unit_test(test_merge_qwen2_tied_copy), cmocka_unit_test(test_merge_refuses_untied_copy),
        cmocka_unit_test(test_kv_cache_modules_to_save), cmocka_unit_test(test_modules_to_save_train_save_resume),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
