/* The engine against the PyTorch oracle (tools/make_fixtures.py): logits, loss, every parameter gradient and
 * five AdamW steps of tiny GPT-2, Llama, Mistral and Qwen2 checkpoints, at fp32 tolerance. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hone/model.h"
#include "hone/optim.h"
#include "hone/safetensors.h"
#include "hone/tensor.h"
#include "testutil.h"

typedef struct {
    const char *name;
    hone_model *model;
    test_reference r;
} fixture;

static void fixture_open(fixture *f, const char *name) {
    memset(f, 0, sizeof *f);
    f->name = name;
    char dir[256];
    snprintf(dir, sizeof dir, "tests/fixtures/%s", name);
    TEST_OK(hone_model_load(&f->model, dir));
    test_reference_open(&f->r, name, dir, "input_ids");
}

static void fixture_close(fixture *f) {
    hone_model_free(f->model);
    test_reference_close(&f->r);
}

static double json_num(json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    if (!json_is_number(v)) fail_msg("reference.json: %s missing", key);
    return json_number_value(v);
}

/* Forward + cross-entropy (mean over targets) + backward; returns the loss. */
static double loss_and_grad(fixture *f) {
    hone_model *m = f->model;
    TEST_OK(hone_model_forward(m, f->r.ids, f->r.B, f->r.T));
    hone_model_zero_grad(m);
    int64_t count = 0;
    for (int i = 0; i < f->r.B * f->r.T; i++) count += f->r.targets[i] != -100;
    hone_loss loss;
    TEST_OK(hone_head_cross_entropy(m, f->r.targets, 1.0f / (float)count, 1, &loss));
    assert_int_equal(loss.count, count);
    TEST_OK(hone_model_backward(m));
    return loss.sum_nll / (double)loss.count;
}

static void check_forward_backward(const char *name) {
    fixture f;
    fixture_open(&f, name);
    hone_model *m = f.model;
    const int V = hone_model_get_config(m)->vocab_size, N = f.r.B * f.r.T;
    TEST_OK(hone_model_prepare(m, f.r.B, f.r.T, 1));
    double loss = loss_and_grad(&f);
    char what[512];
    snprintf(what, sizeof what, "%s loss", name);
    double want = json_num(f.r.json, "loss");
    if (fabs(loss - want) > 1e-5 * fabs(want)) fail_msg("%s: got %.9g want %.9g", what, loss, want);

    size_t n;
    float *ref_logits = test_reference_tensor(&f.r, "logits", &n);
    assert_int_equal(n, (size_t)N * V);
    float *logits = malloc(n * sizeof(float));
    hone_model_logits(m, 0, N, logits);
    snprintf(what, sizeof what, "%s logits", name);
    test_assert_close(logits, ref_logits, n, 2e-5f, 1e-5f, what);

    /* every parameter's gradient, in Hugging Face layout */
    for (size_t i = 0; i < hone_model_hf_tensor_count(m); i++) {
        const char *tn = hone_model_hf_tensor_name(m, i, NULL, NULL);
        char key[256];
        snprintf(key, sizeof key, "grad.%s", tn);
        size_t gn;
        float *want_g = test_reference_tensor(&f.r, key, &gn), *got = malloc(gn * sizeof(float));
        TEST_OK(hone_model_hf_tensor_get(m, tn, 1, got));
        snprintf(what, sizeof what, "%s %s", name, key);
        test_assert_close(got, want_g, gn, 2e-6f, 1e-4f, what);
        free(want_g);
        free(got);
    }
    free(logits);
    free(ref_logits);
    fixture_close(&f);
}

static void test_gpt2_forward_backward(void **s) { (void)s; check_forward_backward("gpt2"); }
static void test_llama_forward_backward(void **s) { (void)s; check_forward_backward("llama"); }
static void test_mistral_forward_backward(void **s) { (void)s; check_forward_backward("mistral"); }
static void test_qwen2_forward_backward(void **s) { (void)s; check_forward_backward("qwen2"); }

/* Five AdamW steps with global-norm clipping and weight decay on >= 2-D tensors only. */
static void check_adamw(const char *name) {
    fixture f;
    fixture_open(&f, name);
    hone_model *m = f.model;
    json_t *a = json_object_get(f.r.json, "adamw");
    hone_optim_config oc = {.kind = HONE_OPT_ADAMW,
                            .beta1 = (float)json_num(a, "beta1"),
                            .beta2 = (float)json_num(a, "beta2"),
                            .eps = (float)json_num(a, "eps"),
                            .weight_decay = (float)json_num(a, "weight_decay")};
    float lr = (float)json_num(a, "lr"), max_norm = (float)json_num(a, "max_grad_norm");
    json_t *losses = json_object_get(a, "losses"), *norms = json_object_get(a, "grad_norms");
    TEST_OK(hone_model_prepare(m, f.r.B, f.r.T, 1));
    hone_optimizer opt;
    size_t n_params = 0, n_segs;
    for (size_t i = 0; i < hone_model_hf_tensor_count(m); i++) {
        int nd;
        int64_t sh[2];
        hone_model_hf_tensor_name(m, i, &nd, sh);
        n_params += (size_t)(sh[0] * (nd == 2 ? sh[1] : 1));
    }
    assert_int_equal(n_params, hone_model_num_params(m));
    const hone_param_segment *segs = hone_model_segments(m, &n_segs);
    /* the optimizer runs over the whole padded buffer; segments say what is real */
    size_t buffer = segs[n_segs - 1].offset + segs[n_segs - 1].size;
    TEST_OK(hone_optim_init(&opt, &oc, buffer));
    for (size_t step = 0; step < json_array_size(losses); step++) {
        double loss = loss_and_grad(&f);
        double want = json_number_value(json_array_get(losses, step));
        if (fabs(loss - want) > 2e-5 * fabs(want) + 1e-6)
            fail_msg("%s AdamW step %zu: loss %.9g want %.9g", name, step, loss, want);
        float norm = hone_grad_norm(hone_model_grads(m), buffer);
        double want_norm = json_number_value(json_array_get(norms, step));
        if (fabs(norm - want_norm) > 1e-5 * want_norm)
            fail_msg("%s AdamW step %zu: grad norm %.9g want %.9g", name, step, norm, want_norm);
        hone_optim_step(&opt, hone_model_params(m), hone_model_grads(m), segs, n_segs, lr,
                        hone_clip_coef(norm, max_norm));
    }
    for (size_t i = 0; i < hone_model_hf_tensor_count(m); i++) {
        const char *tn = hone_model_hf_tensor_name(m, i, NULL, NULL);
        char key[256], what[512];
        snprintf(key, sizeof key, "adamw.%s", tn);
        size_t pn;
        float *want_p = test_reference_tensor(&f.r, key, &pn), *got = malloc(pn * sizeof(float));
        TEST_OK(hone_model_hf_tensor_get(m, tn, 0, got));
        /* Adam divides each gradient by its own magnitude, so where the true gradient is tiny next to the rest
         * of its tensor, fp32 rounding noise (relative to the tensor's scale) becomes a step of up to +-lr.
         * The key bias is the case: analytically zero for GPT-2 (softmax ignores a shift shared by a query's
         * scores), nearly zero in the slowly rotating dimensions of RoPE models. Those elements are left out;
         * the gradients themselves are checked tightly by the forward/backward tests. */
        snprintf(key, sizeof key, "grad.%s", tn);
        size_t gn;
        float *g0 = test_reference_tensor(&f.r, key, &gn), gmax = 0;
        for (size_t k = 0; k < gn; k++) gmax = fmaxf(gmax, fabsf(g0[k]));
        for (size_t k = 0; k < pn; k++)
            if (fabsf(g0[k]) < 1e-3f * gmax) got[k] = want_p[k];
        snprintf(what, sizeof what, "%s adamw.%s", name, tn);
        test_assert_close(got, want_p, pn, 1e-5f, 1e-4f, what);
        free(g0);
        free(want_p);
        free(got);
    }
    hone_optim_free(&opt);
    fixture_close(&f);
}

static void test_gpt2_adamw(void **s) { (void)s; check_adamw("gpt2"); }
static void test_llama_adamw(void **s) { (void)s; check_adamw("llama"); }
static void test_qwen2_adamw(void **s) { (void)s; check_adamw("qwen2"); }

/* KV-cache inference gives the training forward's logits, fed all at once or token by token. */
static void check_kv_cache(const char *name) {
    fixture f;
    fixture_open(&f, name);
    hone_model *m = f.model;
    const int V = hone_model_get_config(m)->vocab_size, T = f.r.T;
    size_t n;
    float *ref_logits = test_reference_tensor(&f.r, "logits", &n);
    float *logits = malloc(sizeof(float) * V);
    for (int b = 0; b < f.r.B; b++) {
        hone_kv_cache *kv;
        TEST_OK(hone_kv_cache_new(&kv, m, T));
        TEST_OK(hone_model_step(m, kv, f.r.ids + b * T, 3, logits));
        test_assert_close(logits, ref_logits + ((size_t)b * T + 2) * V, V, 2e-5f, 1e-5f, "prefill logits");
        for (int t = 3; t < T; t++) {
            TEST_OK(hone_model_step(m, kv, f.r.ids + b * T + t, 1, logits));
            test_assert_close(logits, ref_logits + ((size_t)b * T + t) * V, V, 2e-5f, 1e-5f, "decode logits");
        }
        assert_int_equal(hone_kv_cache_length(kv), T);
        TEST_FAILS_WITH(hone_model_step(m, kv, f.r.ids, 1, logits), "do not fit");
        hone_kv_cache_free(kv);
    }
    free(logits);
    free(ref_logits);
    fixture_close(&f);
}

/* All gradients in Hugging Face order, concatenated. */
static float *all_grads(hone_model *m, size_t *total) {
    size_t n = 0, k = hone_model_hf_tensor_count(m);
    for (size_t i = 0; i < k; i++) {
        int ndim;
        int64_t shape[2];
        hone_model_hf_tensor_name(m, i, &ndim, shape);
        n += (size_t)shape[0] * (ndim == 2 ? (size_t)shape[1] : 1);
    }
    float *g = malloc(n * sizeof *g);
    size_t off = 0;
    for (size_t i = 0; i < k; i++) {
        int ndim;
        int64_t shape[2];
        const char *name = hone_model_hf_tensor_name(m, i, &ndim, shape);
        TEST_OK(hone_model_hf_tensor_get(m, name, 1, g + off));
        off += (size_t)shape[0] * (ndim == 2 ? (size_t)shape[1] : 1);
    }
    *total = n;
    return g;
}

/* A row packed with two samples (positions restarting at 0) computes what the samples compute alone: the same
 * hidden states, the same summed loss and the same gradients. */
static void check_packing(const char *name) {
    fixture f;
    fixture_open(&f, name);
    hone_model *m = f.model;
    const int T = f.r.T, a = T / 2 + 1, b = T - a, C = hone_model_get_config(m)->hidden_size;
    int32_t *ids = malloc(sizeof(int32_t) * T), *pos = malloc(sizeof(int32_t) * T), *tg = malloc(sizeof(int32_t) * T);
    for (int t = 0; t < T; t++) {
        ids[t] = t < a ? f.r.ids[t] : f.r.ids[T + (t - a)]; /* sample 1 from row 0, sample 2 from row 1 */
        pos[t] = t < a ? t : t - a;
    }
    for (int t = 0; t < T; t++) tg[t] = (t + 1 == a || t + 1 == T) ? -100 : ids[t + 1];
    TEST_OK(hone_model_prepare(m, 1, T, 1));

    /* alone: sample 1, then sample 2, gradients accumulating */
    float *hidden = malloc(sizeof(float) * T * C);
    hone_loss l1, l2, lp;
    hone_model_zero_grad(m);
    TEST_OK(hone_model_forward(m, ids, 1, a));
    memcpy(hidden, hone_model_hidden(m), sizeof(float) * a * C);
    TEST_OK(hone_head_cross_entropy(m, tg, 1.0f, 1, &l1));
    TEST_OK(hone_model_backward(m));
    TEST_OK(hone_model_forward(m, ids + a, 1, b));
    memcpy(hidden + (size_t)a * C, hone_model_hidden(m), sizeof(float) * b * C);
    TEST_OK(hone_head_cross_entropy(m, tg + a, 1.0f, 1, &l2));
    TEST_OK(hone_model_backward(m));
    size_t n;
    float *alone = all_grads(m, &n);

    hone_model_zero_grad(m);
    TEST_OK(hone_model_forward_positions(m, ids, pos, 1, T));
    test_assert_close(hone_model_hidden(m), hidden, (size_t)T * C, 1e-5f, 1e-5f, "packed hidden states");
    TEST_OK(hone_head_cross_entropy(m, tg, 1.0f, 1, &lp));
    TEST_OK(hone_model_backward(m));
    assert_int_equal(lp.count, l1.count + l2.count);
    assert_true(fabs(lp.sum_nll - (l1.sum_nll + l2.sum_nll)) <= 1e-5 * fabs(lp.sum_nll));
    float *packed = all_grads(m, &n);
    test_assert_close(packed, alone, n, 1e-5f, 1e-4f, "packed gradients");

    /* positions that neither restart at 0 nor go up by one are refused */
    pos[3] = 7;
    TEST_FAILS_WITH(hone_model_forward_positions(m, ids, pos, 1, T), "positions must start at 0");
    free(packed);
    free(alone);
    free(hidden);
    free(ids);
    free(pos);
    free(tg);
    fixture_close(&f);
}

static void test_packing_gpt2(void **s) { (void)s; check_packing("gpt2"); }
static void test_packing_llama(void **s) { (void)s; check_packing("llama"); }
static void test_packing_qwen2(void **s) { (void)s; check_packing("qwen2"); }

static void test_kv_cache_gpt2(void **s) { (void)s; check_kv_cache("gpt2"); }
static void test_kv_cache_llama(void **s) { (void)s; check_kv_cache("llama"); }
static void test_kv_cache_qwen2(void **s) { (void)s; check_kv_cache("qwen2"); }

/* Generation stops at any id of config.json's eos_token_id list, not only the first, and at generation_config.json's:
 * greedy ids of a model without a list, then the same weights with the third of those ids as a further eos id stop
 * after three. */
static void test_generation_stops_at_every_eos_id(void **s) {
    (void)s;
    hone_model_config c;
    TEST_OK(hone_model_config_preset(&c, "llama-tiny"));
    hone_model *plain, *listed;
    TEST_OK(hone_model_create(&plain, &c, 5));
    const int32_t prompt[3] = {1, 2, 3};
    const hone_sampling greedy = {.max_new_tokens = 8, .temperature = 0, .top_p = 1, .stop_at_eos = 1};
    int32_t free_run[8], stopped[8];
    int n_free = 0, n_stopped = 0;
    TEST_OK(hone_generate(plain, prompt, 3, &greedy, free_run, &n_free, NULL, NULL));
    assert_int_equal(n_free, 8); /* the preset's eos id never came */
    int first = 0;               /* the first position of free_run[2]'s value */
    while (free_run[first] != free_run[2]) first++;
    c.other_eos_ids[0] = free_run[2];
    c.n_other_eos_ids = 1;
    TEST_OK(hone_model_create(&listed, &c, 5));
    assert_true(hone_model_is_eos(listed, free_run[2]) && !hone_model_is_eos(plain, free_run[2]));
    TEST_OK(hone_generate(listed, prompt, 3, &greedy, stopped, &n_stopped, NULL, NULL));
    assert_int_equal(n_stopped, first + 1);
    assert_memory_equal(stopped, free_run, sizeof(int32_t) * (size_t)n_stopped);
    /* the same id in generation_config.json of a saved plain model (config.json: one eos id) */
    char *dir = test_tmpdir(), *gen_config = hone_path_join(dir, "generation_config.json"), text[128];
    TEST_OK(hone_model_save(plain, dir));
    snprintf(text, sizeof text, "{\"bos_token_id\": 1, \"eos_token_id\": [0, %d]}", free_run[2]);
    TEST_OK(hone_file_write_atomic(gen_config, text, strlen(text)));
    hone_model *loaded;
    TEST_OK(hone_model_load(&loaded, dir));
    TEST_OK(hone_generate(loaded, prompt, 3, &greedy, stopped, &n_stopped, NULL, NULL));
    assert_int_equal(n_stopped, first + 1);
    hone_model_free(loaded);
    const char *bad = "{\"eos_token_id\": \"x\"}";
    TEST_OK(hone_file_write_atomic(gen_config, bad, strlen(bad)));
    TEST_FAILS_WITH(hone_model_load(&loaded, dir), "generation_config.json: field \"eos_token_id\" must be");
    TEST_OK(hone_file_write_atomic(gen_config, "{\"eos_token_id\": [0,", 20));
    TEST_FAILS_WITH(hone_model_load(&loaded, dir), "generation_config.json:1: invalid JSON");
    TEST_OK(hone_file_write_atomic(gen_config, "[0]", 3));
    TEST_FAILS_WITH(hone_model_load(&loaded, dir), "generation_config.json: expected a JSON object");
    test_tmpdir_remove(dir);
    free(gen_config);
    free(dir);
    hone_model_free(plain);
    hone_model_free(listed);
}

/* save -> load gives bit-identical parameters and therefore the identical loss. */
static void check_save_roundtrip(const char *name) {
    fixture f;
    fixture_open(&f, name);
    TEST_OK(hone_model_prepare(f.model, f.r.B, f.r.T, 0));
    TEST_OK(hone_model_forward(f.model, f.r.ids, f.r.B, f.r.T));
    hone_loss before, after;
    TEST_OK(hone_head_cross_entropy(f.model, f.r.targets, 1.0f, 0, &before));
    char *dir = test_tmpdir();
    TEST_OK(hone_model_save(f.model, dir));
    hone_model *again;
    TEST_OK(hone_model_load(&again, dir));
    assert_int_equal(hone_model_num_params(again), hone_model_num_params(f.model));
    TEST_OK(hone_model_prepare(again, f.r.B, f.r.T, 0));
    TEST_OK(hone_model_forward(again, f.r.ids, f.r.B, f.r.T));
    TEST_OK(hone_head_cross_entropy(again, f.r.targets, 1.0f, 0, &after));
    assert_true(before.sum_nll == after.sum_nll);
    assert_int_equal(before.count, after.count);
    /* the written checkpoint carries exactly the Hugging Face tensor names of the original */
    hone_checkpoint a, b;
    char src[256];
    snprintf(src, sizeof src, "tests/fixtures/%s", name);
    TEST_OK(hone_checkpoint_open(&a, src));
    TEST_OK(hone_checkpoint_open(&b, dir));
    assert_int_equal(a.n_tensors, b.n_tensors);
    for (size_t i = 0; i < a.n_tensors; i++) assert_string_equal(a.by_name[i]->name, b.by_name[i]->name);
    hone_checkpoint_close(&a);
    hone_checkpoint_close(&b);
    hone_model_free(again);
    test_tmpdir_remove(dir);
    free(dir);
    fixture_close(&f);
}

static void test_save_roundtrip_gpt2(void **s) { (void)s; check_save_roundtrip("gpt2"); }
static void test_save_roundtrip_llama(void **s) { (void)s; check_save_roundtrip("llama"); }
static void test_save_roundtrip_qwen2(void **s) { (void)s; check_save_roundtrip("qwen2"); }


/* ---- loading variants ---------------------------------------------------------------------------------------- */

typedef enum { REWRITE_KEEP, REWRITE_STRIP_PREFIX, REWRITE_DROP_FIRST, REWRITE_ADD_EXTRA, REWRITE_BAD_SHAPE } rewrite_kind;

/* Copies fixture `name` into a temporary folder, rewriting its checkpoint: dtype, names or contents. */
static char *rewrite_fixture(const char *name, hone_dtype dtype, rewrite_kind kind) {
    char src[256], path[300];
    snprintf(src, sizeof src, "tests/fixtures/%s", name);
    hone_checkpoint ck;
    TEST_OK(hone_checkpoint_open(&ck, src));
    char *dir = test_tmpdir();
    hone_st_entry *e = calloc(ck.n_tensors + 1, sizeof *e);
    void **bufs = calloc(ck.n_tensors + 1, sizeof *bufs);
    size_t n = 0;
    for (size_t i = 0; i < ck.n_tensors; i++) {
        const hone_st_tensor *t = ck.by_name[i];
        if (kind == REWRITE_DROP_FIRST && i == 0) continue;
        float *f = malloc(t->numel * sizeof(float));
        TEST_OK(hone_st_tensor_to_f32(t, f));
        e[n].name = kind == REWRITE_STRIP_PREFIX && !strncmp(t->name, "transformer.", 12) ? t->name + 12 : t->name;
        e[n].dtype = dtype;
        e[n].ndim = t->ndim;
        memcpy(e[n].shape, t->shape, sizeof t->shape);
        if (kind == REWRITE_BAD_SHAPE && i == 0) e[n].shape[0] -= 1;
        if (dtype == HONE_DTYPE_F32) {
            bufs[n] = f;
        } else {
            uint16_t *h = malloc(t->numel * sizeof(uint16_t));
            for (int64_t k = 0; k < t->numel; k++)
                h[k] = dtype == HONE_DTYPE_BF16 ? hone_f32_to_bf16(f[k]) : hone_f32_to_f16(f[k]);
            free(f);
            bufs[n] = h;
        }
        e[n].data = bufs[n];
        n++;
    }
    static const float extra[2] = {1, 2};
    if (kind == REWRITE_ADD_EXTRA)
        e[n++] = (hone_st_entry){.name = "model.layers.0.self_attn.q_norm.weight", .dtype = HONE_DTYPE_F32, .ndim = 1,
                                 .shape = {2}, .data = extra};
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    TEST_OK(hone_st_write(path, e, n));
    for (size_t i = 0; i < n; i++)
        if (bufs[i]) free(bufs[i]);
    free(bufs);
    free(e);
    hone_checkpoint_close(&ck);
    char *text;
    size_t len;
    snprintf(path, sizeof path, "%s/config.json", src);
    TEST_OK(hone_file_read(path, &text, &len));
    snprintf(path, sizeof path, "%s/config.json", dir);
    TEST_OK(hone_file_write_atomic(path, text, len));
    free(text);
    return dir;
}

/* BF16 and F16 checkpoints load converted to fp32 exactly (every half value is an f32 value). */
static void test_load_half_precision(void **s) {
    (void)s;
    hone_dtype types[2] = {HONE_DTYPE_BF16, HONE_DTYPE_F16};
    for (int k = 0; k < 2; k++) {
        char *dir = rewrite_fixture("llama", types[k], REWRITE_KEEP);
        hone_model *orig, *half;
        TEST_OK(hone_model_load(&orig, "tests/fixtures/llama"));
        TEST_OK(hone_model_load(&half, dir));
        for (size_t i = 0; i < hone_model_hf_tensor_count(orig); i++) {
            int nd;
            int64_t sh[2];
            const char *tn = hone_model_hf_tensor_name(orig, i, &nd, sh);
            size_t n = (size_t)(sh[0] * (nd == 2 ? sh[1] : 1));
            float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float));
            TEST_OK(hone_model_hf_tensor_get(orig, tn, 0, a));
            TEST_OK(hone_model_hf_tensor_get(half, tn, 0, b));
            for (size_t j = 0; j < n; j++) {
                float want = types[k] == HONE_DTYPE_BF16 ? hone_bf16_to_f32(hone_f32_to_bf16(a[j]))
                                                         : hone_f16_to_f32(hone_f32_to_f16(a[j]));
                if (b[j] != want) fail_msg("%s[%zu]: %g, want %g", tn, j, b[j], want);
            }
            free(a);
            free(b);
        }
        hone_model_free(orig);
        hone_model_free(half);
        test_tmpdir_remove(dir);
        free(dir);
    }
}

/* GPT2Model checkpoints name tensors without the "transformer." prefix. */
static void test_gpt2_without_prefix(void **s) {
    (void)s;
    char *dir = rewrite_fixture("gpt2", HONE_DTYPE_F32, REWRITE_STRIP_PREFIX);
    fixture f;
    fixture_open(&f, "gpt2");
    hone_model *m;
    TEST_OK(hone_model_load(&m, dir));
    hone_loss a, b;
    TEST_OK(hone_model_prepare(f.model, f.r.B, f.r.T, 0));
    TEST_OK(hone_model_forward(f.model, f.r.ids, f.r.B, f.r.T));
    TEST_OK(hone_head_cross_entropy(f.model, f.r.targets, 1, 0, &a));
    TEST_OK(hone_model_prepare(m, f.r.B, f.r.T, 0));
    TEST_OK(hone_model_forward(m, f.r.ids, f.r.B, f.r.T));
    TEST_OK(hone_head_cross_entropy(m, f.r.targets, 1, 0, &b));
    assert_true(a.sum_nll == b.sum_nll);
    hone_model_free(m);
    fixture_close(&f);
    test_tmpdir_remove(dir);
    free(dir);
}

static void test_checkpoint_mismatches_are_errors(void **s) {
    (void)s;
    hone_model *m;
    char *dir = rewrite_fixture("llama", HONE_DTYPE_F32, REWRITE_DROP_FIRST);
    TEST_FAILS_WITH(hone_model_load(&m, dir), "is missing from the checkpoint");
    test_tmpdir_remove(dir);
    free(dir);
    dir = rewrite_fixture("llama", HONE_DTYPE_F32, REWRITE_ADD_EXTRA);
    TEST_FAILS_WITH(hone_model_load(&m, dir), "'model.layers.0.self_attn.q_norm.weight' has no place");
    test_tmpdir_remove(dir);
    free(dir);
    dir = rewrite_fixture("llama", HONE_DTYPE_F32, REWRITE_BAD_SHAPE);
    TEST_FAILS_WITH(hone_model_load(&m, dir), "config.json implies");
    test_tmpdir_remove(dir);
    free(dir);
    TEST_FAILS_WITH(hone_model_load(&m, "tests/fixtures/no-such-model"), "config.json: cannot open");
}

/* Checkpoints written by Hugging Face transformers (random weights): they load, run and round-trip. */
static void test_real_hf_checkpoints(void **s) {
    (void)s;
    const char *data = test_shared_data();
    if (!data) skip();
    const char *names[] = {"fake_gpt2", "tiny_gpt2"};
    for (int k = 0; k < 2; k++) {
        char dir[512];
        snprintf(dir, sizeof dir, "%s/models/%s", data, names[k]);
        hone_model *m;
        TEST_OK(hone_model_load(&m, dir));
        const hone_model_config *c = hone_model_get_config(m);
        int32_t ids[6], targets[6];
        for (int i = 0; i < 6; i++) ids[i] = (i * 7 + 3) % c->vocab_size;
        for (int i = 0; i < 6; i++) targets[i] = i < 5 ? ids[i + 1] : -100;
        TEST_OK(hone_model_prepare(m, 1, 6, 0));
        TEST_OK(hone_model_forward(m, ids, 1, 6));
        hone_loss loss;
        TEST_OK(hone_head_cross_entropy(m, targets, 1, 0, &loss));
        assert_int_equal(loss.count, 5);
        double mean = loss.sum_nll / 5;
        /* random tiny models predict almost uniformly */
        if (!(fabs(mean - log((double)c->vocab_size)) < 0.5))
            fail_msg("%s: loss %g, expected about ln(V) = %g", names[k], mean, log((double)c->vocab_size));
        hone_model_free(m);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gpt2_forward_backward),
        cmocka_unit_test(test_llama_forward_backward),
        cmocka_unit_test(test_mistral_forward_backward),
        cmocka_unit_test(test_qwen2_forward_backward),
        cmocka_unit_test(test_gpt2_adamw),
        cmocka_unit_test(test_llama_adamw),
        cmocka_unit_test(test_qwen2_adamw),
        cmocka_unit_test(test_packing_gpt2),
        cmocka_unit_test(test_packing_llama),
        cmocka_unit_test(test_packing_qwen2),
        cmocka_unit_test(test_kv_cache_gpt2),
        cmocka_unit_test(test_kv_cache_llama),
        cmocka_unit_test(test_kv_cache_qwen2),
        cmocka_unit_test(test_save_roundtrip_gpt2),
        cmocka_unit_test(test_save_roundtrip_llama),
        cmocka_unit_test(test_save_roundtrip_qwen2),
        cmocka_unit_test(test_load_half_precision),
        cmocka_unit_test(test_gpt2_without_prefix),
        cmocka_unit_test(test_checkpoint_mismatches_are_errors),
        cmocka_unit_test(test_real_hf_checkpoints),
        cmocka_unit_test(test_generation_stops_at_every_eos_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
