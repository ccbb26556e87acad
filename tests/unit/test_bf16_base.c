/* A frozen base under an adapter against its definition: the fp32 model with the same matrix values (the fp32 path
 * is checked against PyTorch in test_model / test_lora) computes the same logits, loss, adapter gradients, KV-cache
 * logits and greedy generations, to the order of fp32 sums that the tiles change (1e-5 relative). Two ways in:
 * hone_model_set_base_dtype rounds a model in memory to bf16 (the reference: its matrices rounded in fp32), and
 * hone_model_load_frozen reads a checkpoint written here by hone's own writer in place (bf16, f16 or f32 files;
 * Llama with grouped-query heads and an untied lm_head, GPT-2 with its transposed Conv1D and tied head) or rounds
 * an f32 file to a bf16 copy (the reference: hone_model_load of the file, or of the same model written in bf16).
 * Vocabularies of 300 and Llama's 352-row gate/up matrix make the kernels run over several tiles. Also: the
 * kernels alone over tiles and parts with one and three threads, the rounding, that no fp32 copy of a matrix
 * remains, a checkpoint deleted after loading, and what is refused. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hone/model.h"
#include "hone/peft.h"
#include "hone/safetensors.h"
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

/* w [OC, IC] stored as the parts of `layout` (their dtype, rows and transposition) in buf, the first part `skew`
 * bytes off alignment; w becomes the values they hold (rounded to each part's dtype). */
static op_matrix store_parts(float *w, int IC, const op_matrix_part *layout, int n_parts, uint8_t *buf, int skew) {
    op_matrix m = {.n_parts = n_parts};
    uint8_t *at = buf + skew;
    for (int p = 0, r0 = 0; p < n_parts; r0 += layout[p++].rows) {
        const op_matrix_part *l = &layout[p];
        const size_t size = hone_dtype_size(l->dtype);
        m.part[p] = (op_matrix_part){at, l->dtype, l->rows, l->transposed};
        for (int r = 0; r < l->rows; r++)
            for (int c = 0; c < IC; c++) {
                float *v = &w[(size_t)(r0 + r) * IC + c];
                uint8_t *dst = at + (l->transposed ? (size_t)c * l->rows + r : (size_t)r * IC + c) * size;
                if (l->dtype == HONE_DTYPE_F32) {
                    memcpy(dst, v, 4);
                    continue;
                }
                const uint16_t h = l->dtype == HONE_DTYPE_BF16 ? hone_f32_to_bf16(*v) : hone_f32_to_f16(*v);
                memcpy(dst, &h, 2);
                hone_convert_to_f32(v, &h, l->dtype, 1);
            }
        at += (size_t)l->rows * IC * size;
    }
    return m;
}

/* The frozen kernels against the fp32 ones on the values the parts hold: one bf16 part (tiles), mixed dtypes with a
 * transposed part and part boundaries inside tiles, unaligned f32 (tiles), and aligned f32 parts, one transposed
 * (sgemm on the parts); one thread and three (tiles of rows forward, slices of columns backward). */
static void test_kernels_over_tiles_and_parts(void **state) {
    (void)state;
    const int N = 5, IC = 37, OC = 2 * OP_FROZEN_TILE + 45;
    const op_matrix_part layouts[4][3] = {
        {{NULL, HONE_DTYPE_BF16, OC, 0}},
        {{NULL, HONE_DTYPE_BF16, 100, 0}, {NULL, HONE_DTYPE_F16, 200, 1}, {NULL, HONE_DTYPE_F32, OC - 300, 0}},
        {{NULL, HONE_DTYPE_F32, OC, 0}},
        {{NULL, HONE_DTYPE_F32, 300, 0}, {NULL, HONE_DTYPE_F32, OC - 300, 1}},
    };
    const int n_parts[4] = {1, 3, 1, 2}, skew[4] = {0, 0, 2, 0};
    float *x = malloc(sizeof(float) * N * IC), *w = malloc(sizeof(float) * OC * IC), *b = malloc(sizeof(float) * OC);
    float *dy = malloc(sizeof(float) * N * OC), *want = malloc(sizeof(float) * N * OC);
    float *got = malloc(sizeof(float) * N * OC), *tile = malloc(sizeof(float) * 3 * OP_FROZEN_TILE * IC);
    float *block = malloc(sizeof(float) * 250 * 20);
    uint8_t *buf = malloc(sizeof(float) * OC * IC + 8);
    for (int k = 0; k < 4; k++) {
        hone_rng rng = hone_rng_new(3, (uint64_t)k);
        hone_rng_fill_normal(&rng, x, (size_t)N * IC, 1.0f);
        hone_rng_fill_normal(&rng, w, (size_t)OC * IC, 0.5f);
        hone_rng_fill_normal(&rng, b, (size_t)OC, 0.5f);
        hone_rng_fill_normal(&rng, dy, (size_t)N * OC, 1.0f);
        const op_matrix m = store_parts(w, IC, layouts[k], n_parts[k], buf, skew[k]);
        hone_threads_set(3);
        for (int slots = 1; slots <= 3; slots += 2) {
            op_linear_forward(want, x, w, b, N, IC, OC);
            op_linear_forward_frozen(got, x, &m, b, N, IC, OC, tile, slots);
            assert_close_scaled(got, want, (size_t)N * OC, "forward with bias");
            op_linear_forward(want, x, w, NULL, N, IC, OC);
            op_linear_forward_frozen(got, x, &m, NULL, N, IC, OC, tile, slots);
            assert_close_scaled(got, want, (size_t)N * OC, "forward without bias");
            op_linear_backward(want, NULL, NULL, dy, x, w, N, IC, OC, 0);
            op_linear_backward_dx_frozen(got, dy, &m, N, IC, OC, 0, tile, slots);
            assert_close_scaled(got, want, (size_t)N * IC, "dx");
            /* accumulating onto what dx held */
            op_linear_backward(want, NULL, NULL, dy, x, w, N, IC, OC, 1);
            op_linear_backward_dx_frozen(got, dy, &m, N, IC, OC, 1, tile, slots);
            assert_close_scaled(got, want, (size_t)N * IC, "dx accumulated");
        }
        hone_threads_set(0);
        /* the embedding lookup widens exactly: same bits, repeated ids and every part included */
        const int32_t ids[6] = {0, OC - 1, 7, 7, OP_FROZEN_TILE + 50, 150};
        const int32_t pos[6] = {0, 1, 2, 0, 1, 2};
        op_embedding_forward(want, ids, w, b, pos, 6, 3, IC);
        op_embedding_forward_frozen(got, ids, &m, b, pos, 6, 3, IC);
        assert_memory_equal(got, want, sizeof(float) * 6 * IC);
        /* a block of rows and columns across part boundaries */
        op_matrix_widen(block, &m, 90, 250, 5, 20, IC);
        for (int r = 0; r < 250; r++) assert_memory_equal(block + r * 20, w + (size_t)(90 + r) * IC + 5, 20 * 4);
    }
    free(x), free(w), free(b), free(dy), free(want), free(got), free(tile), free(buf), free(block);
}

/* An adapter of pc attached to m, its parameters then all random (PEFT's zero B would leave A without gradient);
 * returns their values at creation (free()), *n their count. */
static float *attach_random_adapter(hone_model *m, const hone_peft_config *pc, hone_adapter **a, size_t *n) {
    TEST_OK(hone_adapter_create(a, m, pc, 7));
    TEST_OK(hone_model_attach(m, *a));
    float *params, *grads;
    size_t n_segs, n_params;
    hone_model_trainable(m, &params, &grads, &n_segs, &n_params);
    float *init = malloc(sizeof(float) * n_params);
    memcpy(init, params, sizeof(float) * n_params);
    hone_rng rng = hone_rng_new(9, 0);
    hone_rng_fill_normal(&rng, params, n_params, 0.05f);
    if (n) *n = n_params;
    return init;
}

/* A model of preset `name` with vocab 300 and an attached random adapter; round: its matrices rounded to bf16 in
 * fp32 (the reference side). */
static void make_side(const char *name, const hone_peft_config *pc, int round, hone_model **m, hone_adapter **a) {
    hone_model_config c;
    TEST_OK(hone_model_config_preset(&c, name));
    c.vocab_size = 300;
    TEST_OK(hone_model_create(m, &c, 42));
    if (round)
        for (size_t t = 0; t < (*m)->n_tensors; t++) {
            if (!model_is_base_matrix(*m, t)) continue;
            float *p = (*m)->params + (*m)->tensors[t].offset;
            for (size_t k = 0; k < (*m)->tensors[t].size; k++) p[k] = bf16_round(p[k]);
        }
    free(attach_random_adapter(*m, pc, a, NULL));
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

/* m holds no fp32 copy of a matrix: its fp32 buffer is the vectors (and GPT-2's position embeddings) alone; every
 * tensor in Hugging Face layout (GPT-2's transposed Conv1D too) has the reference's values exactly. */
static void check_frozen_values(const hone_model *ref, const hone_model *m, const char *what) {
    const size_t total = hone_model_num_params(m);
    assert_int_equal(hone_model_num_params(ref), total);
    assert_true(m->n_frozen > 0);
    assert_int_equal(m->n_params, model_vector_floats(m));
    assert_true(m->n_params < total / 4);
    for (size_t t = 0; t < m->n_tensors; t++)
        assert_int_equal(m->tensors[t].frozen.n_parts > 0, model_is_base_matrix(m, t));
    for (size_t i = 0; i < hone_model_hf_tensor_count(m); i++) {
        int ndim;
        int64_t shape[2];
        const char *hf = hone_model_hf_tensor_name(m, i, &ndim, shape);
        const size_t n = (size_t)shape[0] * (ndim == 2 ? (size_t)shape[1] : 1);
        float *got = malloc(sizeof(float) * n), *want = malloc(sizeof(float) * n);
        TEST_OK(hone_model_hf_tensor_get(m, hf, 0, got));
        TEST_OK(hone_model_hf_tensor_get(ref, hf, 0, want));
        if (memcmp(got, want, sizeof(float) * n)) fail_msg("%s: %s differs from the reference's", what, hf);
        free(got), free(want);
    }
}

/* Both sides, the bf16 one converted after attaching: round to nearest even, and the memory it frees. */
static void check_preset(const char *name, const hone_peft_config *pc) {
    hone_model *ref, *m;
    hone_adapter *ra, *a;
    make_side(name, pc, 1, &ref, &ra);
    make_side(name, pc, 0, &m, &a);
    TEST_OK(hone_model_set_base_dtype(m, HONE_DTYPE_BF16));
    assert_int_equal(hone_model_base_dtype(m), HONE_DTYPE_BF16);
    assert_int_equal(hone_model_base_mapped(m), 0);
    check_frozen_values(ref, m, name);
    compare_sides(ref, m, name);
    hone_model_free(ref);
    hone_model_free(m);
    hone_adapter_free(ra);
    hone_adapter_free(a);
}

/* LoRA of rank 4, alpha 8, on `targets`. */
static hone_peft_config lora_config(const char *targets) {
    hone_peft_config pc;
    hone_peft_config_defaults(&pc, HONE_PEFT_LORA);
    pc.r = 4;
    pc.alpha = 8;
    pc.target_modules = targets;
    return pc;
}

static void test_gpt2_lora(void **state) {
    (void)state;
    hone_peft_config pc = lora_config("all-linear");
    check_preset("gpt2-tiny", &pc); /* tied: the bf16 embedding is the lm_head too; wpe stays fp32 */
}

static void test_llama_lora_head_copy(void **state) {
    (void)state;
    hone_peft_config pc = lora_config("q_proj,v_proj,down_proj");
    pc.modules_to_save = "lm_head";
    pc.ensure_weight_tying = 0; /* a trained fp32 lm_head copy; the embedding stays the bf16 base's */
    check_preset("llama-tiny", &pc);
}

/* dir/config.json and dir/model.safetensors of m, every tensor in `dtype`, by hone's writers. */
static void write_checkpoint(const hone_model *m, const char *dir, hone_dtype dtype) {
    TEST_OK(hone_model_save(m, dir));
    if (dtype == HONE_DTYPE_F32) return;
    const size_t n = hone_model_hf_tensor_count(m), total = hone_model_num_params(m);
    hone_st_entry *e = calloc(n, sizeof *e);
    uint16_t *data = malloc(sizeof(uint16_t) * total);
    float *f32 = malloc(sizeof(float) * total);
    for (size_t i = 0, off = 0; i < n; i++) {
        e[i].name = hone_model_hf_tensor_name(m, i, &e[i].ndim, e[i].shape);
        e[i].dtype = dtype;
        e[i].data = data + off;
        const size_t k = (size_t)e[i].shape[0] * (e[i].ndim == 2 ? (size_t)e[i].shape[1] : 1);
        TEST_OK(hone_model_hf_tensor_get(m, e[i].name, 0, f32));
        for (size_t j = 0; j < k; j++)
            data[off + j] = dtype == HONE_DTYPE_BF16 ? hone_f32_to_bf16(f32[j]) : hone_f32_to_f16(f32[j]);
        off += k;
    }
    char *path = hone_path_join(dir, "model.safetensors");
    TEST_OK(hone_st_write(path, e, n));
    free(path), free(e), free(data), free(f32);
}

/* Model c (random) written in `file` dtype and loaded frozen as `mode`, against the reference: the same model written
 * in `ref` dtype and loaded in fp32. Both get the same adapter of pc, whose values at creation (copies of the base's
 * rows for modules_to_save and prompt_tuning_init TEXT) must agree. remove: the folder is deleted once loaded (the
 * mapping keeps the file readable; nothing may open it again by name). */
static void check_mapped(const hone_model_config *c, const hone_peft_config *pc, hone_dtype file, hone_base_mode mode,
                         hone_dtype ref, int remove, const char *what) {
    char *dir = test_tmpdir(), *file_dir = hone_path_join(dir, "file"), *ref_dir = hone_path_join(dir, "ref");
    hone_model *orig, *side[2];
    hone_adapter *a[2];
    TEST_OK(hone_model_create(&orig, c, 42));
    write_checkpoint(orig, file_dir, file);
    write_checkpoint(orig, ref_dir, ref);
    hone_model_free(orig);
    TEST_OK(hone_model_load(&side[0], ref_dir));
    TEST_OK(hone_model_load_frozen(&side[1], file_dir, mode));
    assert_int_equal(hone_model_base_mapped(side[1]), mode == HONE_BASE_AUTO || file == HONE_DTYPE_BF16);
    assert_int_equal(hone_model_base_dtype(side[1]), mode == HONE_BASE_AUTO ? file : HONE_DTYPE_BF16);
    assert_true(hone_model_base_mapped(side[1]) == !side[1]->params16);
    check_frozen_values(side[0], side[1], what);
    size_t n;
    float *init0 = attach_random_adapter(side[0], pc, &a[0], &n), *init1 = attach_random_adapter(side[1], pc, &a[1], NULL);
    if (memcmp(init0, init1, sizeof(float) * n)) fail_msg("%s: the adapter's initial values differ", what);
    if (remove) test_tmpdir_remove(dir);
    compare_sides(side[0], side[1], what);
    if (!remove) test_tmpdir_remove(dir);
    for (int s = 0; s < 2; s++) hone_model_free(side[s]), hone_adapter_free(a[s]);
    free(init0), free(init1), free(dir), free(file_dir), free(ref_dir);
}

static void test_mapped_llama(void **state) {
    (void)state;
    hone_model_config c;
    TEST_OK(hone_model_config_preset(&c, "llama-tiny")); /* 4 query heads, 2 key/value heads */
    c.vocab_size = 300;
    c.tie_word_embeddings = 0;
    hone_peft_config pc = lora_config("all-linear");
    pc.modules_to_save = "lm_head"; /* a copy of the frozen untied lm_head */
    check_mapped(&c, &pc, HONE_DTYPE_BF16, HONE_BASE_AUTO, HONE_DTYPE_BF16, 0, "llama, bf16 file read in place");
    check_mapped(&c, &pc, HONE_DTYPE_F32, HONE_BASE_AUTO, HONE_DTYPE_F32, 0, "llama, f32 file read in place");
    check_mapped(&c, &pc, HONE_DTYPE_F16, HONE_BASE_AUTO, HONE_DTYPE_F16, 0, "llama, f16 file read in place");
    pc.modules_to_save = "embed_tokens,lm_head"; /* and of the frozen embedding */
    check_mapped(&c, &pc, HONE_DTYPE_F32, HONE_BASE_BF16, HONE_DTYPE_BF16, 0, "llama, f32 file rounded to bf16");
}

static void test_mapped_gpt2(void **state) {
    (void)state;
    hone_model_config c;
    TEST_OK(hone_model_config_preset(&c, "gpt2-tiny")); /* tied lm_head, Conv1D stored [in, out] */
    c.vocab_size = 300;
    hone_peft_config pc = lora_config("all-linear");
    check_mapped(&c, &pc, HONE_DTYPE_BF16, HONE_BASE_AUTO, HONE_DTYPE_BF16, 1, "gpt2, bf16 file deleted after load");
    check_mapped(&c, &pc, HONE_DTYPE_F32, HONE_BASE_AUTO, HONE_DTYPE_F32, 0, "gpt2, f32 file read in place");
    check_mapped(&c, &pc, HONE_DTYPE_BF16, HONE_BASE_BF16, HONE_DTYPE_BF16, 0, "gpt2, bf16 file as base_dtype bf16");
}

static void test_mapped_prompt_init(void **state) {
    (void)state;
    hone_model_config c;
    TEST_OK(hone_model_config_preset(&c, "llama-tiny"));
    c.vocab_size = 300;
    hone_peft_config pc;
    hone_peft_config_defaults(&pc, HONE_PEFT_PROMPT);
    const int32_t init_ids[3] = {5, 17, 299};
    pc.num_virtual_tokens = 4;
    pc.init = HONE_PROMPT_INIT_TEXT; /* rows of the frozen embedding */
    pc.init_ids = init_ids;
    pc.n_init_ids = 3;
    check_mapped(&c, &pc, HONE_DTYPE_BF16, HONE_BASE_AUTO, HONE_DTYPE_BF16, 0, "prompt tuning, bf16 file");
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
    hone_base_mode mode;
    TEST_FAILS_WITH(hone_base_mode_parse("fp16", &mode), "expected auto, fp32 or bf16");
    TEST_OK(hone_base_mode_parse("auto", &mode));
    assert_int_equal(mode, HONE_BASE_AUTO);
    hone_peft_config pc;
    hone_peft_config_defaults(&pc, HONE_PEFT_LORA);
    hone_adapter *a, *other;
    TEST_OK(hone_adapter_create(&a, m, &pc, 1));
    TEST_OK(hone_model_attach(m, a));
    TEST_OK(hone_model_set_base_dtype(m, HONE_DTYPE_BF16));
    TEST_OK(hone_model_set_base_dtype(m, HONE_DTYPE_BF16)); /* already */
    TEST_FAILS_WITH(hone_model_set_base_dtype(m, HONE_DTYPE_F32), "load the model again");
    TEST_FAILS_WITH(hone_adapter_merge(m, a), "merge into the model loaded in fp32");
    TEST_OK(hone_adapter_create(&other, m, &pc, 2)); /* reads the frozen base like any other */
    hone_adapter_free(other);
    TEST_FAILS_WITH(hone_model_read_weights(m, "tests/fixtures"), "base is frozen");
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
        cmocka_unit_test(test_kernels_over_tiles_and_parts),
        cmocka_unit_test(test_gpt2_lora),
        cmocka_unit_test(test_llama_lora_head_copy),
        cmocka_unit_test(test_mapped_llama),
        cmocka_unit_test(test_mapped_gpt2),
        cmocka_unit_test(test_mapped_prompt_init),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
