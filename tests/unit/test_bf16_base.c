/* A frozen base kept in bf16 under an adapter (hone_model_set_base_dtype) against its definition: the fp32 model
 * whose matrices were rounded to bf16 (round to nearest even; the fp32 path is checked against PyTorch in
 * test_model / test_lora) computes the same logits, loss, LoRA gradients, KV-cache logits and greedy generations,
 * to the order of fp32 sums that the tiles change (1e-5 relative). Vocabularies of 300 and Llama's 352-row
 * gate/up matrix make the kernels run over several tiles. Also: the kernels alone over tiles with one and three
 * threads, the conversion's rounding, the memory it frees, and what is refused. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hone/model.h"
#include "hone/peft.h"
#include "hone/tensor.h"
#include "model/model_internal.h"
#include "tensor/ops.h"
#include "testutil.h"

static float bf16_round(float x) { return hone_bf16_to_f32(hone_f32_to_bf16(x)); }

static float max_abs(const float *x, size_t n) {
    float mx = 0;
    for (size_t i = 0; i < n; i++) mx = fabsf(x[i]) > mx ? fabsf(x[i]) : mx;
    return mx;
}

/* The tiles only reorder fp32 sums: 1e-5 of the largest magnitude, and 1e-5 relative. */
static void assert_close_scaled(const float *got, const float *want, size_t n, const char *what) {
    assert_true(max_abs(want, n) > 0); /* a comparison of zeros would prove nothing */
    test_assert_close(got, want, n, 1e-5f * max_abs(want, n), 1e-5f, what);
}

static void test_kernels_over_tiles(void **state) {
    (void)state;
    const int N = 5, IC = 37, OC = 2 * OP_BF16_TILE + 45;
    hone_rng rng = hone_rng_new(3, 0);
    float *x = malloc(sizeof(float) * N * IC), *w = malloc(sizeof(float) * OC * IC), *b = malloc(sizeof(float) * OC);
    float *dy = malloc(sizeof(float) * N * OC), *want = malloc(sizeof(float) * N * OC);
    float *got = malloc(sizeof(float) * N * OC), *tile = malloc(sizeof(float) * 3 * OP_BF16_TILE * IC);
    uint16_t *w16 = malloc(sizeof(uint16_t) * OC * IC);
    hone_rng_fill_normal(&rng, x, (size_t)N * IC, 1.0f);
    hone_rng_fill_normal(&rng, w, (size_t)OC * IC, 0.5f);
    hone_rng_fill_normal(&rng, b, (size_t)OC, 0.5f);
    hone_rng_fill_normal(&rng, dy, (size_t)N * OC, 1.0f);
    for (int i = 0; i < OC * IC; i++) {
        w16[i] = hone_f32_to_bf16(w[i]);
        w[i] = hone_bf16_to_f32(w16[i]);
    }
    /* one thread, and three: tiles of rows forward, slices of columns backward */
    hone_threads_set(3);
    for (int slots = 1; slots <= 3; slots += 2) {
        op_linear_forward(want, x, w, b, N, IC, OC);
        op_linear_forward_bf16(got, x, w16, b, N, IC, OC, tile, slots);
        assert_close_scaled(got, want, (size_t)N * OC, "forward with bias");
        op_linear_forward(want, x, w, NULL, N, IC, OC);
        op_linear_forward_bf16(got, x, w16, NULL, N, IC, OC, tile, slots);
        assert_close_scaled(got, want, (size_t)N * OC, "forward without bias");
        op_linear_backward(want, NULL, NULL, dy, x, w, N, IC, OC, 0);
        op_linear_backward_dx_bf16(got, dy, w16, N, IC, OC, 0, tile, slots);
        assert_close_scaled(got, want, (size_t)N * IC, "dx");
        /* accumulating onto what dx held */
        op_linear_backward(want, NULL, NULL, dy, x, w, N, IC, OC, 1);
        op_linear_backward_dx_bf16(got, dy, w16, N, IC, OC, 1, tile, slots);
        assert_close_scaled(got, want, (size_t)N * IC, "dx accumulated");
    }
    hone_threads_set(0);
    /* the embedding lookup widens exactly: same bits, repeated ids included */
    const int32_t ids[6] = {0, OC - 1, 7, 7, OP_BF16_TILE, 1};
    const int32_t pos[6] = {0, 1, 2, 0, 1, 2};
    op_embedding_forward(want, ids, w, b, pos, 6, 3, IC);
    op_embedding_forward_bf16(got, ids, w16, b, pos, 6, 3, IC);
    assert_memory_equal(got, want, sizeof(float) * 6 * IC);
    free(x), free(w), free(b), free(dy), free(want), free(got), free(tile), free(w16);
}

/* The matrices a bf16 base keeps in bf16: every 2-D tensor but GPT-2's position embeddings. */
static int goes_to_bf16(const hone_model *m, size_t t) {
    return m->tensors[t].ndim == 2 && (int)t != m->global_tensor[1];
}

/* A model of preset `name` with vocab 300 and an attached adapter whose parameters are all random (PEFT's zero B
 * would leave A without gradient); round: its matrices rounded to bf16 in fp32 (the reference side). */
static void make_side(const char *name, const hone_peft_config *pc, int round, hone_model **m, hone_adapter **a) {
    hone_model_config c;
    TEST_OK(hone_model_config_preset(&c, name));
    c.vocab_size = 300;
    TEST_OK(hone_model_create(m, &c, 42));
    if (round)
        for (size_t t = 0; t < (*m)->n_tensors; t++) {
            if (!goes_to_bf16(*m, t)) continue;
            float *p = (*m)->params + (*m)->tensors[t].offset;
            for (size_t k = 0; k < (*m)->tensors[t].size; k++) p[k] = bf16_round(p[k]);
        }
    TEST_OK(hone_adapter_create(a, *m, pc, 7));
    TEST_OK(hone_model_attach(*m, *a));
    float *params, *grads;
    size_t n_segs, n_params;
    hone_model_trainable(*m, &params, &grads, &n_segs, &n_params);
    hone_rng rng = hone_rng_new(9, 0);
    hone_rng_fill_normal(&rng, params, n_params, 0.05f);
}

/* One training pass and a generation on both sides; everything must agree. */
static void compare_sides(hone_model *ref, hone_model *m, const char *what) {
    const int B = 2, T = 9, N = B * T, V = hone_model_get_config(m)->vocab_size;
    int32_t ids[18], targets[18];
    hone_rng rng = hone_rng_new(11, 0);
    for (int i = 0; i < N; i++) ids[i] = (int32_t)(hone_rng_u64(&rng) % (uint64_t)V);
    for (int i = 0; i < N; i++) targets[i] = (i + 1) % T ? ids[i + 1] : -100;
    hone_model *side[2] = {ref, m};
    hone_loss loss[2];
    float *logits[2], *grads[2];
    size_t n_grads = 0;
    for (int s = 0; s < 2; s++) {
        TEST_OK(hone_model_prepare(side[s], B, T, 1));
        hone_model_zero_grad(side[s]);
        TEST_OK(hone_model_forward(side[s], ids, B, T));
        TEST_OK(hone_head_cross_entropy(side[s], targets, 1.0f / (float)N, 1, &loss[s]));
        TEST_OK(hone_model_backward(side[s]));
        logits[s] = malloc(sizeof(float) * N * V);
        hone_model_logits(side[s], 0, N, logits[s]);
        float *params;
        size_t n_segs;
        hone_model_trainable(side[s], &params, &grads[s], &n_segs, &n_grads);
    }
    if (fabs(loss[1].sum_nll - loss[0].sum_nll) > 1e-5 * fabs(loss[0].sum_nll))
        fail_msg("%s: loss %.9g, the rounded fp32 model's %.9g", what, loss[1].sum_nll, loss[0].sum_nll);
    char label[128];
    snprintf(label, sizeof label, "%s logits", what);
    assert_close_scaled(logits[1], logits[0], (size_t)N * V, label);
    snprintf(label, sizeof label, "%s adapter gradients", what);
    assert_close_scaled(grads[1], grads[0], n_grads, label);

    /* KV cache: the prompt's last logits, then greedy tokens */
    float *step[2];
    int32_t gen[2][12];
    int n_gen[2];
    hone_sampling greedy = {.max_new_tokens = 12, .temperature = 0, .top_k = 0, .top_p = 1, .seed = 1};
    for (int s = 0; s < 2; s++) {
        hone_kv_cache *kv;
        step[s] = malloc(sizeof(float) * V);
        TEST_OK(hone_kv_cache_new(&kv, side[s], 16));
        TEST_OK(hone_model_step(side[s], kv, ids, 5, step[s]));
        hone_kv_cache_free(kv);
        TEST_OK(hone_generate(side[s], ids, 5, &greedy, gen[s], &n_gen[s], NULL, NULL));
    }
    snprintf(label, sizeof label, "%s KV-cache logits", what);
    assert_close_scaled(step[1], step[0], (size_t)V, label);
    assert_int_equal(n_gen[0], 12);
    assert_int_equal(n_gen[1], n_gen[0]);
    assert_memory_equal(gen[1], gen[0], sizeof(int32_t) * 12);
    for (int s = 0; s < 2; s++) free(logits[s]), free(step[s]);
}

/* Both sides, the bf16 one converted after attaching; the conversion's values and the memory it frees. */
static void check_preset(const char *name, const hone_peft_config *pc) {
    hone_model *ref, *m;
    hone_adapter *ra, *a;
    make_side(name, pc, 1, &ref, &ra);
    make_side(name, pc, 0, &m, &a);
    /* auto: bf16 only where that loses nothing */
    assert_int_equal(hone_model_auto_base_dtype(ref), HONE_DTYPE_BF16);
    assert_int_equal(hone_model_auto_base_dtype(m), HONE_DTYPE_F32);
    const size_t total = hone_model_num_params(m);
    TEST_OK(hone_model_set_base_dtype(m, HONE_DTYPE_BF16));
    assert_int_equal(hone_model_base_dtype(m), HONE_DTYPE_BF16);
    assert_int_equal(hone_model_num_params(m), total);
    /* what stays fp32 is the vectors (and GPT-2's position embeddings) */
    size_t fp32 = 0;
    for (size_t t = 0; t < m->n_tensors; t++) fp32 += goes_to_bf16(m, t) ? 0 : m->tensors[t].size;
    assert_true(m->n_params < fp32 + 16 * m->n_tensors);
    assert_true(fp32 < total / 4);
    /* round to nearest even, tensor by tensor in Hugging Face layout (GPT-2's transposed Conv1D too) */
    for (size_t i = 0; i < hone_model_hf_tensor_count(m); i++) {
        int ndim;
        int64_t shape[2];
        const char *hf = hone_model_hf_tensor_name(m, i, &ndim, shape);
        const size_t n = (size_t)shape[0] * (ndim == 2 ? (size_t)shape[1] : 1);
        float *got = malloc(sizeof(float) * n), *want = malloc(sizeof(float) * n);
        TEST_OK(hone_model_hf_tensor_get(m, hf, 0, got));
        TEST_OK(hone_model_hf_tensor_get(ref, hf, 0, want));
        if (memcmp(got, want, sizeof(float) * n)) fail_msg("%s: %s differs from the rounded fp32 tensor", name, hf);
        free(got), free(want);
    }
    compare_sides(ref, m, name);
    hone_model_free(ref);
    hone_model_free(m);
    hone_adapter_free(ra);
    hone_adapter_free(a);
}

static void test_gpt2_lora(void **state) {
    (void)state;
    hone_peft_config pc;
    hone_peft_config_defaults(&pc, HONE_PEFT_LORA);
    pc.r = 4;
    pc.alpha = 8;
    pc.target_modules = "all-linear";
    check_preset("gpt2-tiny", &pc); /* tied: the bf16 embedding is the lm_head too; wpe stays fp32 */
}

static void test_llama_lora_head_copy(void **state) {
    (void)state;
    hone_peft_config pc;
    hone_peft_config_defaults(&pc, HONE_PEFT_LORA);
    pc.r = 4;
    pc.alpha = 8;
    pc.target_modules = "q_proj,v_proj,down_proj";
    pc.modules_to_save = "lm_head";
    pc.ensure_weight_tying = 0; /* a trained fp32 lm_head copy; the embedding stays the bf16 base's */
    check_preset("llama-tiny", &pc);
}

static void test_refusals(void **state) {
    (void)state;
    hone_model_config c;
    TEST_OK(hone_model_config_preset(&c, "llama-tiny"));
    hone_model *m;
    TEST_OK(hone_model_create(&m, &c, 1));
    TEST_FAILS_WITH(hone_model_set_base_dtype(m, HONE_DTYPE_BF16), "needs an adapter");
    TEST_OK(hone_model_set_base_dtype(m, HONE_DTYPE_F32));
    TEST_FAILS_WITH(hone_model_set_base_dtype(m, HONE_DTYPE_F16), "not supported");
    hone_dtype d;
    TEST_FAILS_WITH(hone_base_dtype_parse("fp16", &d), "expected fp32 or bf16");
    TEST_OK(hone_base_dtype_parse("bf16", &d));
    assert_int_equal(d, HONE_DTYPE_BF16);
    hone_peft_config pc;
    hone_peft_config_defaults(&pc, HONE_PEFT_LORA);
    hone_adapter *a, *other;
    TEST_OK(hone_adapter_create(&a, m, &pc, 1));
    TEST_OK(hone_model_attach(m, a));
    TEST_OK(hone_model_set_base_dtype(m, HONE_DTYPE_BF16));
    TEST_OK(hone_model_set_base_dtype(m, HONE_DTYPE_BF16)); /* already */
    TEST_FAILS_WITH(hone_model_set_base_dtype(m, HONE_DTYPE_F32), "load the model again");
    TEST_FAILS_WITH(hone_adapter_merge(m, a), "merge into the model loaded in fp32");
    TEST_FAILS_WITH(hone_adapter_create(&other, m, &pc, 2), "before keeping the model's base in bf16");
    TEST_FAILS_WITH(hone_model_read_weights(m, "tests/fixtures"), "base is kept in bf16");
    /* without the adapter: inference still runs on the bf16 base, full fine-tuning is refused */
    TEST_OK(hone_model_attach(m, NULL));
    TEST_FAILS_WITH(hone_model_prepare(m, 1, 4, 1), "full fine-tuning needs fp32 weights");
    const int32_t ids[4] = {1, 2, 3, 4};
    TEST_OK(hone_model_prepare(m, 1, 4, 0));
    TEST_OK(hone_model_forward(m, ids, 1, 4));
    /* a model prepared for full fine-tuning has fp32 gradients: too late */
    hone_model *full;
    TEST_OK(hone_model_create(&full, &c, 1));
    TEST_OK(hone_model_prepare(full, 1, 4, 1));
    TEST_OK(hone_model_attach(full, a));
    TEST_FAILS_WITH(hone_model_set_base_dtype(full, HONE_DTYPE_BF16), "before hone_model_prepare");
    hone_model_free(full);
    hone_model_free(m);
    hone_adapter_free(a);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kernels_over_tiles),
        cmocka_unit_test(test_gpt2_lora),
        cmocka_unit_test(test_llama_lora_head_copy),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
