/* Prompt tuning and prefix tuning (src/peft/prompt.c) against PEFT's semantics as written out in PyTorch by
 * tools/make_prefix_fixtures.py (tests/fixtures/peft/{prompt,prefix,prefix_proj}_{gpt2,llama}): loss, logits and the
 * gradients of the trainable tensors on a right-padded batch and on a packed row (which must equal its samples run
 * alone), for GPT-2 and a grouped-query Llama; KV-cache generation against the full forward; PEFT files in and out;
 * the folded prefix MLP; initialisations; errors. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hone/peft.h"
#include "hone/safetensors.h"
#include "hone/eval.h"
#include "hone/pack.h"
#include "testutil.h"

#define FIXTURES "tests/fixtures/peft/"

static const char *base_dir(const char *base) {
    return strcmp(base, "gpt2") ? FIXTURES "prefix_base_llama" : "tests/fixtures/gpt2";
}

static char *case_dir(const char *kind, const char *base) {
    char *d = malloc(256);
    snprintf(d, 256, FIXTURES "%s_%s", kind, base);
    return d;
}

/* A reference tensor as f32 (floats) or int32 (ints); numel in *n. */
static float *ref_floats(const hone_st_file *f, const char *name, size_t *n) {
    const hone_st_tensor *t = hone_st_find(f, name);
    if (!t) fail_msg("reference tensor %s is missing", name);
    float *out = malloc((size_t)t->numel * sizeof(float));
    TEST_OK(hone_st_tensor_to_f32(t, out));
    if (n) *n = (size_t)t->numel;
    return out;
}

static int32_t *ref_ints(const hone_st_file *f, const char *name, size_t *n) {
    const hone_st_tensor *t = hone_st_find(f, name);
    if (!t || t->dtype != HONE_DTYPE_I32) fail_msg("reference tensor %s is missing or not I32", name);
    int32_t *out = malloc(t->nbytes);
    memcpy(out, t->data, t->nbytes);
    if (n) *n = (size_t)t->numel;
    return out;
}

static double ref_number(const char *dir, const char *key) {
    json_t *j = test_load_json(dir, "reference.json");
    double v = json_number_value(json_object_get(j, key));
    json_decref(j);
    return v;
}

static void open_reference(hone_st_file *ref, const char *dir) {
    char *path = hone_path_join(dir, "reference.safetensors");
    TEST_OK(hone_st_open(ref, path));
    free(path);
}

static const char *const tensor_names[] = {"embedding.weight", "transform.0.weight", "transform.0.bias",
                                           "transform.2.weight", "transform.2.bias"};

/* The adapter of a fixture: the PEFT files for prompt and prefix; for prefix_proj a new adapter that trains through
 * the MLP, given the reference's MLP weights (segments in PEFT's parameter order). */
static hone_adapter *fixture_adapter(hone_model *m, const char *kind, const char *dir, const hone_st_file *ref) {
    hone_adapter *a;
    if (strcmp(kind, "prefix_proj")) {
        TEST_OK(hone_adapter_load(&a, m, dir));
        return a;
    }
    hone_peft_config pc;
    hone_peft_config_defaults(&pc, HONE_PEFT_PREFIX);
    pc.num_virtual_tokens = (int)ref_number(dir, "num_virtual_tokens");
    pc.prefix_projection = 1;
    pc.encoder_hidden_size = (int)ref_number(dir, "encoder_hidden_size");
    TEST_OK(hone_adapter_create(&a, m, &pc, 1));
    TEST_OK(hone_model_attach(m, a));
    float *params, *grads;
    size_t n_seg, n_params;
    const hone_param_segment *seg = hone_model_trainable(m, &params, &grads, &n_seg, &n_params);
    assert_int_equal(n_seg, 5);
    for (size_t i = 0; i < n_seg; i++) {
        char name[64];
        size_t n;
        snprintf(name, sizeof name, "param.%s", tensor_names[i]);
        float *w = ref_floats(ref, name, &n);
        assert_int_equal(n, seg[i].size);
        memcpy(params + seg[i].offset, w, n * sizeof(float));
        free(w);
    }
    TEST_OK(hone_model_attach(m, NULL));
    return a;
}

/* Gradients within 1e-5 relative, or 1e-6 of the tensor's largest |gradient| for elements near 0. */
static void check_grads(hone_model *m, const hone_st_file *ref, const char *batch, const char *what) {
    float *params, *grads;
    size_t n_seg, n_params;
    const hone_param_segment *seg = hone_model_trainable(m, &params, &grads, &n_seg, &n_params);
    for (size_t i = 0; i < n_seg; i++) {
        char name[96];
        size_t n;
        snprintf(name, sizeof name, "grad.%s.%s", batch, tensor_names[i]);
        float *want = ref_floats(ref, name, &n);
        assert_int_equal(n, seg[i].size);
        float scale = 0;
        for (size_t k = 0; k < n; k++) scale = fmaxf(scale, fabsf(want[k]));
        snprintf(name, sizeof name, "%s %s d%s", what, batch, tensor_names[i]);
        test_assert_close(grads + seg[i].offset, want, n, 1e-6f * scale, 1e-5f, name);
        free(want);
    }
}

static double mean_loss(hone_model *m, const int32_t *targets, int grad) {
    hone_loss l;
    int64_t count = 0;
    /* first pass for the count, as the trainer does, then the gradient with 1 / count */
    TEST_OK(hone_head_cross_entropy(m, targets, 1.0f, 0, &l));
    count = l.count;
    TEST_OK(hone_head_cross_entropy(m, targets, 1.0f / (float)count, grad, &l));
    return l.sum_nll / (double)l.count;
}

static void check_case(const char *kind, const char *base) {
    char *dir = case_dir(kind, base);
    hone_model *m;
    TEST_OK(hone_model_load(&m, base_dir(base)));
    hone_st_file ref;
    open_reference(&ref, dir);
    hone_adapter *a = fixture_adapter(m, kind, dir, &ref);
    TEST_OK(hone_model_attach(m, a));
    char what[64];
    snprintf(what, sizeof what, "%s_%s", kind, base);

    /* right-padded batch [2, 8] */
    size_t n_ids, n_logits;
    int32_t *ids = ref_ints(&ref, "padded.ids", &n_ids), *tg = ref_ints(&ref, "padded.targets", NULL);
    float *want_logits = ref_floats(&ref, "padded.logits", &n_logits);
    const int B = 2, T = (int)n_ids / 2, V = hone_model_get_config(m)->vocab_size;
    TEST_OK(hone_model_prepare(m, B, 16, 1));
    hone_model_zero_grad(m);
    TEST_OK(hone_model_forward(m, ids, B, T));
    float *logits = malloc(n_logits * sizeof(float));
    hone_model_logits(m, 0, B * T, logits);
    assert_int_equal(n_logits, (size_t)B * T * V);
    test_assert_close(logits, want_logits, n_logits, 1e-5f, 1e-5f, what);
    double loss = mean_loss(m, tg, 1);
    TEST_OK(hone_model_backward(m));
    if (fabs(loss - ref_number(dir, "loss_padded")) > 1e-5 * fabs(ref_number(dir, "loss_padded")))
        fail_msg("%s: padded loss %.8f, reference %.8f", what, loss, ref_number(dir, "loss_padded"));
    check_grads(m, &ref, "padded", what);

    /* one packed row [1, 16] of two samples: the same as the samples alone */
    int32_t *pids = ref_ints(&ref, "packed.ids", &n_ids), *ppos = ref_ints(&ref, "packed.pos", NULL);
    int32_t *ptg = ref_ints(&ref, "packed.targets", NULL);
    hone_model_zero_grad(m);
    TEST_OK(hone_model_forward_positions(m, pids, ppos, 1, (int)n_ids));
    loss = mean_loss(m, ptg, 1);
    TEST_OK(hone_model_backward(m));
    if (fabs(loss - ref_number(dir, "loss_packed")) > 1e-5 * fabs(ref_number(dir, "loss_packed")))
        fail_msg("%s: packed loss %.8f, reference %.8f", what, loss, ref_number(dir, "loss_packed"));
    check_grads(m, &ref, "packed", what);

    /* gradient accumulation over micro-batches: the padded batch's gradients add to the packed row's */
    float *params, *grads;
    size_t n_seg, n_params;
    const hone_param_segment *seg = hone_model_trainable(m, &params, &grads, &n_seg, &n_params);
    TEST_OK(hone_model_forward(m, ids, B, T));
    mean_loss(m, tg, 1);
    TEST_OK(hone_model_backward(m));
    for (size_t i = 0; i < n_seg; i++) {
        char name[96];
        size_t n;
        snprintf(name, sizeof name, "grad.padded.%s", tensor_names[i]);
        float *want = ref_floats(&ref, name, &n);
        snprintf(name, sizeof name, "grad.packed.%s", tensor_names[i]);
        float *packed = ref_floats(&ref, name, NULL);
        for (size_t k = 0; k < n; k++) want[k] += packed[k];
        snprintf(name, sizeof name, "%s accumulated d%s", what, tensor_names[i]);
        test_assert_close(grads + seg[i].offset, want, n, 1e-5f, 1e-4f, name);
        free(want), free(packed);
    }
    /* the base stays frozen: no gradient buffer for it */
    assert_null(hone_model_grads(m));
    free(ids), free(tg), free(want_logits), free(logits), free(pids), free(ppos), free(ptg);
    hone_st_close(&ref);
    hone_model_free(m);
    hone_adapter_free(a);
    free(dir);
}

static void test_prompt_gpt2(void **state) { (void)state; check_case("prompt", "gpt2"); }
static void test_prompt_llama(void **state) { (void)state; check_case("prompt", "llama"); }
static void test_prefix_gpt2(void **state) { (void)state; check_case("prefix", "gpt2"); }
static void test_prefix_llama(void **state) { (void)state; check_case("prefix", "llama"); }
static void test_prefix_projection_gpt2(void **state) { (void)state; check_case("prefix_proj", "gpt2"); }
static void test_prefix_projection_llama(void **state) { (void)state; check_case("prefix_proj", "llama"); }

/* Logits of the padded batch of a fixture with the adapter a attached, [B*T, V]. */
static float *padded_logits(hone_model *m, hone_adapter *a, const hone_st_file *ref, size_t *n) {
    size_t n_ids;
    int32_t *ids = ref_ints(ref, "padded.ids", &n_ids);
    const int V = hone_model_get_config(m)->vocab_size, T = (int)n_ids / 2;
    TEST_OK(hone_model_attach(m, a));
    TEST_OK(hone_model_prepare(m, 2, T, 0));
    TEST_OK(hone_model_forward(m, ids, 2, T));
    float *logits = malloc(n_ids * V * sizeof(float));
    hone_model_logits(m, 0, 2 * T, logits);
    *n = n_ids * V;
    free(ids);
    return logits;
}

/* The folded file of a projection adapter (what PEFT saves and loads for inference) computes what the MLP does. */
static void check_folded(const char *base) {
    char *dir = case_dir("prefix_proj", base);
    hone_model *m;
    TEST_OK(hone_model_load(&m, base_dir(base)));
    hone_st_file ref;
    open_reference(&ref, dir);
    hone_adapter *mlp = fixture_adapter(m, "prefix_proj", dir, &ref), *folded;
    TEST_OK(hone_adapter_load(&folded, m, dir));
    assert_int_equal(hone_adapter_config(folded)->prefix_projection, 1);
    size_t n;
    float *a = padded_logits(m, mlp, &ref, &n), *b = padded_logits(m, folded, &ref, &n);
    float *want = ref_floats(&ref, "padded.logits", NULL);
    test_assert_close(b, a, n, 1e-5f, 1e-5f, "folded vs MLP");
    test_assert_close(b, want, n, 1e-5f, 1e-5f, "folded vs reference");
    /* hone's own save folds too: the saved folder loads to the same logits */
    char *tmp = test_tmpdir();
    TEST_OK(hone_adapter_save(mlp, tmp));
    hone_adapter *again;
    TEST_OK(hone_adapter_load(&again, m, tmp));
    float *c = padded_logits(m, again, &ref, &n);
    test_assert_close(c, a, n, 1e-5f, 1e-5f, "saved folded vs MLP");
    /* and the MLP itself comes back for resuming (prefix_encoder.safetensors) */
    hone_peft_config pc = *hone_adapter_config(mlp);
    hone_adapter *resumed;
    TEST_OK(hone_adapter_create(&resumed, m, &pc, 99));
    TEST_OK(hone_model_attach(m, resumed));
    TEST_OK(hone_model_load_trained(m, tmp));
    float *p1, *p2, *g;
    size_t ns, np1, np2;
    TEST_OK(hone_model_attach(m, mlp));
    hone_model_trainable(m, &p1, &g, &ns, &np1);
    TEST_OK(hone_model_attach(m, resumed));
    hone_model_trainable(m, &p2, &g, &ns, &np2);
    assert_int_equal(np1, np2);
    assert_memory_equal(p1, p2, np1 * sizeof(float));
    TEST_OK(hone_model_attach(m, NULL));
    test_tmpdir_remove(tmp);
    free(tmp), free(a), free(b), free(c), free(want);
    hone_adapter_free(mlp), hone_adapter_free(folded), hone_adapter_free(again), hone_adapter_free(resumed);
    hone_st_close(&ref);
    hone_model_free(m);
    free(dir);
}

static void test_folded_gpt2(void **state) { (void)state; check_folded("gpt2"); }
static void test_folded_llama(void **state) { (void)state; check_folded("llama"); }

/* hone_model_step token by token (and in one chunk) gives the logits of the full forward. */
static void check_generation(const char *base, hone_peft_kind kind, int projection) {
    hone_model *m;
    TEST_OK(hone_model_load(&m, base_dir(base)));
    hone_peft_config pc;
    hone_peft_config_defaults(&pc, kind);
    pc.num_virtual_tokens = 4;
    pc.prefix_projection = projection;
    hone_adapter *a;
    TEST_OK(hone_adapter_create(&a, m, &pc, 7));
    TEST_OK(hone_model_attach(m, a));
    const int T = 12, V = hone_model_get_config(m)->vocab_size, nv = hone_model_virtual_tokens(m);
    assert_int_equal(nv, kind == HONE_PEFT_PROMPT ? 4 : 0);
    int32_t ids[12];
    for (int t = 0; t < T; t++) ids[t] = t < nv ? 0 : (int32_t)((t * 7 + 3) % V);
    TEST_OK(hone_model_prepare(m, 1, T, 0));
    TEST_OK(hone_model_forward(m, ids, 1, T));
    float *full = malloc(sizeof(float) * T * V), *step = malloc(sizeof(float) * V);
    hone_model_logits(m, 0, T, full);
    hone_kv_cache *kv;
    TEST_OK(hone_kv_cache_new(&kv, m, T));
    assert_int_equal(hone_kv_cache_length(kv), kind == HONE_PEFT_PREFIX ? 4 : 0);
    for (int t = 0; t < T; t++) {
        TEST_OK(hone_model_step(m, kv, ids + t, 1, step));
        test_assert_close(step, full + (size_t)t * V, V, 1e-4f, 1e-4f, "step vs full forward");
    }
    hone_kv_cache_free(kv);
    TEST_OK(hone_kv_cache_new(&kv, m, T));
    TEST_OK(hone_model_step(m, kv, ids, T, step));
    test_assert_close(step, full + (size_t)(T - 1) * V, V, 1e-4f, 1e-4f, "chunk vs full forward");
    hone_kv_cache_free(kv);
    /* generation sees the adapter: greedy continuation differs from the base model's, which it must reproduce */
    hone_sampling s = {.max_new_tokens = 4, .temperature = 0, .top_p = 1};
    int32_t out[4];
    int n_out;
    TEST_OK(hone_generate(m, ids, T, &s, out, &n_out, NULL, NULL));
    assert_int_equal(n_out, 4);
    int32_t best = 0;
    for (int v = 1; v < V; v++)
        if (full[(size_t)(T - 1) * V + v] > full[(size_t)(T - 1) * V + best]) best = v;
    assert_int_equal(out[0], best);
    TEST_OK(hone_model_attach(m, NULL));
    free(full), free(step);
    hone_adapter_free(a);
    hone_model_free(m);
}

static void test_generation(void **state) {
    (void)state;
    const char *bases[] = {"gpt2", "llama"};
    for (int b = 0; b < 2; b++) {
        check_generation(bases[b], HONE_PEFT_PROMPT, 0);
        check_generation(bases[b], HONE_PEFT_PREFIX, 0);
        check_generation(bases[b], HONE_PEFT_PREFIX, 1);
    }
}

/* hone_eval_tokens with a prompt-tuning adapter scores each block after its virtual tokens (the last one predicting
 * the block's first token): the same sums as the block packed with hone_pack's placeholders and run through the
 * training head. */
static void test_eval_prompt_tuning(void **state) {
    (void)state;
    hone_model *m;
    hone_adapter *a;
    TEST_OK(hone_model_load(&m, "tests/fixtures/gpt2"));
    TEST_OK(hone_adapter_load(&a, m, "tests/fixtures/peft/prompt_gpt2"));
    TEST_OK(hone_model_attach(m, a));
    const int nv = hone_model_virtual_tokens(m), T = 6, V = hone_model_get_config(m)->vocab_size;
    int32_t tokens[15];
    for (int i = 0; i < 15; i++) tokens[i] = (int32_t)((i * 7 + 3) % V);
    hone_token_stream data = {.tokens = tokens, .n_tokens = 15, .n_documents = 1};
    hone_eval_result r;
    TEST_OK(hone_eval_tokens(m, &data, T, 2, &r));
    assert_int_equal(r.tokens, 15); /* 6 + 6 + 3: every token of a block is predicted */

    hone_sequence seqs[3];
    const int lens[3] = {6, 6, 3};
    for (int k = 0; k < 3; k++)
        seqs[k] = (hone_sequence){.input_ids = tokens + 6 * k, .labels = tokens + 6 * k, .n = (size_t)lens[k]};
    hone_pack_options po = {.sequence_len = nv + T, .virtual_tokens = nv};
    hone_packed rows;
    TEST_OK(hone_pack(seqs, 3, &po, &rows));
    assert_int_equal(rows.n_rows, 3);
    TEST_OK(hone_model_prepare(m, 3, nv + T, 0));
    TEST_OK(hone_model_forward_positions(m, rows.ids, rows.pos, 3, nv + T));
    hone_loss loss;
    TEST_OK(hone_head_cross_entropy(m, rows.labels, 1.0f, 0, &loss));
    assert_int_equal(loss.count, 15);
    const double want = loss.sum_nll / (double)loss.count;
    if (fabs(r.loss - want) > 1e-5 * fabs(want)) fail_msg("eval loss %.9g, packed rows %.9g", r.loss, want);
    hone_packed_free(&rows);
    TEST_OK(hone_model_attach(m, NULL));
    hone_adapter_free(a);
    hone_model_free(m);
}

static json_t *saved_config(const char *dir) { return test_load_json(dir, "adapter_config.json"); }

/* Save → load gives the same tensors and PEFT's config keys; initialisations do what PEFT's do. */
static void test_save_load_and_init(void **state) {
    (void)state;
    hone_model *m;
    TEST_OK(hone_model_load(&m, base_dir("llama")));
    const hone_model_config *mc = hone_model_get_config(m);
    const int C = mc->hidden_size;
    char *tmp = test_tmpdir();
    /* TEXT: the init ids' embeddings, cycled to n */
    hone_peft_config pc;
    hone_peft_config_defaults(&pc, HONE_PEFT_PROMPT);
    const int32_t init_ids[3] = {5, 9, 11};
    pc.num_virtual_tokens = 5;
    pc.init = HONE_PROMPT_INIT_TEXT;
    pc.init_ids = init_ids;
    pc.n_init_ids = 3;
    pc.init_text = "sort these";
    hone_adapter *a, *b;
    TEST_OK(hone_adapter_create(&a, m, &pc, 3));
    TEST_OK(hone_model_attach(m, a));
    float *p, *g;
    size_t ns, np;
    hone_model_trainable(m, &p, &g, &ns, &np);
    float *emb = malloc(sizeof(float) * (size_t)mc->vocab_size * C);
    TEST_OK(hone_model_hf_tensor_get(m, "model.embed_tokens.weight", 0, emb));
    for (int i = 0; i < 5; i++)
        assert_memory_equal(p + (size_t)i * C, emb + (size_t)init_ids[i % 3] * C, sizeof(float) * C);
    TEST_OK(hone_adapter_save(a, tmp));
    json_t *j = saved_config(tmp);
    assert_string_equal(json_string_value(json_object_get(j, "peft_type")), "PROMPT_TUNING");
    assert_string_equal(json_string_value(json_object_get(j, "prompt_tuning_init")), "TEXT");
    assert_string_equal(json_string_value(json_object_get(j, "prompt_tuning_init_text")), "sort these");
    assert_int_equal(json_integer_value(json_object_get(j, "num_virtual_tokens")), 5);
    assert_int_equal(json_integer_value(json_object_get(j, "token_dim")), C);
    assert_int_equal(json_integer_value(json_object_get(j, "num_transformer_submodules")), 1);
    assert_int_equal(json_integer_value(json_object_get(j, "num_layers")), mc->num_layers);
    json_decref(j);
    TEST_OK(hone_adapter_load(&b, m, tmp));
    float *q;
    TEST_OK(hone_model_attach(m, b));
    hone_model_trainable(m, &q, &g, &ns, &np);
    assert_memory_equal(p, q, sizeof(float) * 5 * C);
    assert_int_equal(hone_adapter_config(b)->init, HONE_PROMPT_INIT_TEXT);
    TEST_OK(hone_model_attach(m, NULL));
    hone_adapter_free(a), hone_adapter_free(b);

    /* SAMPLE_VOCAB: every row is some row of the embedding matrix */
    pc.init = HONE_PROMPT_INIT_SAMPLE_VOCAB;
    pc.init_ids = NULL, pc.n_init_ids = 0, pc.init_text = NULL;
    TEST_OK(hone_adapter_create(&a, m, &pc, 4));
    TEST_OK(hone_model_attach(m, a));
    hone_model_trainable(m, &p, &g, &ns, &np);
    for (int i = 0; i < 5; i++) {
        int found = 0;
        for (int v = 0; v < mc->vocab_size && !found; v++)
            found = !memcmp(p + (size_t)i * C, emb + (size_t)v * C, sizeof(float) * C);
        assert_true(found);
    }
    TEST_OK(hone_model_attach(m, NULL));
    hone_adapter_free(a);

    /* prefix tuning: [n, 2·L·kv_dim] under prompt_embeddings, token_dim = kv_dim, heads = NKV */
    hone_peft_config_defaults(&pc, HONE_PEFT_PREFIX);
    pc.num_virtual_tokens = 2;
    TEST_OK(hone_adapter_create(&a, m, &pc, 5));
    TEST_OK(hone_adapter_save(a, tmp));
    j = saved_config(tmp);
    const int kvd = mc->num_kv_heads * mc->head_dim;
    assert_string_equal(json_string_value(json_object_get(j, "peft_type")), "PREFIX_TUNING");
    assert_int_equal(json_integer_value(json_object_get(j, "token_dim")), kvd);
    assert_int_equal(json_integer_value(json_object_get(j, "num_attention_heads")), mc->num_kv_heads);
    assert_int_equal(json_integer_value(json_object_get(j, "encoder_hidden_size")), kvd);
    assert_true(json_is_false(json_object_get(j, "prefix_projection")));
    json_decref(j);
    char *path = hone_path_join(tmp, "adapter_model.safetensors");
    hone_st_file f;
    TEST_OK(hone_st_open(&f, path));
    free(path);
    assert_int_equal(f.n_tensors, 1);
    const hone_st_tensor *t = hone_st_find(&f, "prompt_embeddings");
    assert_non_null(t);
    assert_int_equal(t->shape[0], 2);
    assert_int_equal(t->shape[1], 2 * mc->num_layers * kvd);
    hone_st_close(&f);
    TEST_OK(hone_adapter_load(&b, m, tmp));
    TEST_OK(hone_model_attach(m, a));
    hone_model_trainable(m, &p, &g, &ns, &np);
    TEST_OK(hone_model_attach(m, b));
    hone_model_trainable(m, &q, &g, &ns, &np);
    assert_memory_equal(p, q, sizeof(float) * 2 * 2 * mc->num_layers * kvd);
    /* prefix tuning adds no placeholders; merging is not possible for either kind (nor in PEFT) */
    assert_int_equal(hone_model_virtual_tokens(m), 0);
    TEST_FAILS_WITH(hone_adapter_merge(m, b), "only LoRA");
    TEST_OK(hone_model_attach(m, NULL));
    hone_adapter_free(a), hone_adapter_free(b);
    free(emb);
    test_tmpdir_remove(tmp);
    free(tmp);
    hone_model_free(m);
}

/* Rewrites one key of a fixture's adapter_config.json into a copy of the folder. */
static char *config_with(const char *fixture, const char *key, json_t *value) {
    char *tmp = test_tmpdir(), path[300];
    snprintf(path, sizeof path, FIXTURES "%.200s", fixture);
    json_t *j = saved_config(path);
    json_object_set_new(j, key, value);
    char *text = json_dumps(j, JSON_INDENT(2));
    free(test_write_file(tmp, "adapter_config.json", text, strlen(text)));
    free(text);
    json_decref(j);
    snprintf(path, sizeof path, FIXTURES "%.200s/adapter_model.safetensors", fixture);
    char *data;
    size_t size;
    TEST_OK(hone_file_read(path, &data, &size));
    free(test_write_file(tmp, "adapter_model.safetensors", data, size));
    free(data);
    return tmp;
}

static void test_errors(void **state) {
    (void)state;
    hone_model *gpt2, *llama;
    TEST_OK(hone_model_load(&gpt2, base_dir("gpt2")));
    TEST_OK(hone_model_load(&llama, base_dir("llama")));
    hone_adapter *a;
    hone_peft_config pc;
    hone_peft_config_defaults(&pc, HONE_PEFT_PROMPT);
    pc.num_virtual_tokens = 0;
    TEST_FAILS_WITH(hone_adapter_create(&a, gpt2, &pc, 1), "num_virtual_tokens must be positive");
    pc.num_virtual_tokens = -3;
    TEST_FAILS_WITH(hone_adapter_create(&a, gpt2, &pc, 1), "num_virtual_tokens must be positive");
    pc.num_virtual_tokens = 4;
    pc.init = HONE_PROMPT_INIT_TEXT;
    TEST_FAILS_WITH(hone_adapter_create(&a, gpt2, &pc, 1), "init_ids");
    hone_peft_config_defaults(&pc, HONE_PEFT_PREFIX);
    pc.num_virtual_tokens = 40;
    TEST_FAILS_WITH(hone_adapter_create(&a, gpt2, &pc, 1), "no room");
    /* a GPT-2 adapter does not fit the Llama model, whose kv_dim and layers differ */
    TEST_FAILS_WITH(hone_adapter_load(&a, llama, FIXTURES "prefix_gpt2"), "token_dim is 32 but the model needs 16");
    char *tmp = config_with("prefix_llama", "num_virtual_tokens", json_integer(0));
    TEST_FAILS_WITH(hone_adapter_load(&a, llama, tmp), "num_virtual_tokens");
    test_tmpdir_remove(tmp), free(tmp);
    tmp = config_with("prefix_llama", "num_virtual_tokens", json_integer(5));
    TEST_FAILS_WITH(hone_adapter_load(&a, llama, tmp), "prompt_embeddings");
    test_tmpdir_remove(tmp), free(tmp);
    tmp = config_with("prefix_llama", "num_layers", json_integer(3));
    TEST_FAILS_WITH(hone_adapter_load(&a, llama, tmp), "num_layers is 3");
    test_tmpdir_remove(tmp), free(tmp);
    tmp = config_with("prompt_gpt2", "num_transformer_submodules", json_integer(2));
    TEST_FAILS_WITH(hone_adapter_load(&a, gpt2, tmp), "num_transformer_submodules");
    test_tmpdir_remove(tmp), free(tmp);
    /* a prefix plus the sequence must fit GPT-2's positions */
    TEST_OK(hone_adapter_load(&a, gpt2, FIXTURES "prefix_gpt2"));
    TEST_OK(hone_model_attach(gpt2, a));
    TEST_FAILS_WITH(hone_model_prepare(gpt2, 1, 31, 0), "prefix tokens");
    TEST_OK(hone_model_attach(gpt2, NULL));
    hone_adapter_free(a);
    hone_model_free(gpt2);
    hone_model_free(llama);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prompt_gpt2),        cmocka_unit_test(test_prompt_llama),
        cmocka_unit_test(test_prefix_gpt2),        cmocka_unit_test(test_prefix_llama),
        cmocka_unit_test(test_prefix_projection_gpt2), cmocka_unit_test(test_prefix_projection_llama),
        cmocka_unit_test(test_folded_gpt2),        cmocka_unit_test(test_folded_llama),
        cmocka_unit_test(test_generation),         cmocka_unit_test(test_save_load_and_init),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_eval_prompt_tuning),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
