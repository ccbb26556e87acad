/* A frozen base under an adapter (issue 5 item 3), and the passes' access to the base's matrices wherever they are
 * kept.
 *
 * hone keeps fp32 parameters in one buffer with its own layout (fused qkv and gate/up, GPT-2's Conv1D transposed).
 * A frozen base needs no fp32 copy of its matrices — the linear weights, the token embedding and an untied lm_head:
 * each is an op_matrix of parts read where they lie. hone_model_load_frozen (model.c) points the parts into the
 * memory-mapped checkpoint in the files' own dtype (a fused qkv = the q, k and v tensors; GPT-2's Conv1D a transposed
 * part), or rounds them into one bf16 buffer (params16); hone_model_set_base_dtype below rounds the matrices of a
 * model already in memory into params16. The fp32 buffer shrinks to the vectors (norm gains, biases) and GPT-2's
 * position embeddings. The kernels widen up to OP_FROZEN_TILE rows of a matrix at a time into a small fp32 tile per
 * thread and call sgemm on it (y = x Wᵀ forward, dx = dy W backward; no dW since frozen), or call sgemm on the
 * mapping itself when it is f32; the embedding lookup widens the rows it reads. So no fp32 copy of a whole matrix
 * exists, and the model computes exactly what the fp32 model computes with the matrices' values (rounded to bf16
 * for params16), up to the summation order of the tiles. */
#include "model/model_internal.h"
#include "peft/peft_internal.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* 16 floats or 32 bf16 values: every tensor starts on a 64-byte boundary. */
static size_t round_up(size_t n, size_t k) { return (n + k - 1) / k * k; }

int model_is_base_matrix(const hone_model *m, size_t t) {
    return m->tensors[t].ndim == 2 && (int)t != m->global_tensor[1];
}

size_t model_vector_floats(const hone_model *m) {
    size_t n = 0;
    for (size_t t = 0; t < m->n_tensors; t++)
        if (!model_is_base_matrix(m, t)) n += round_up(m->tensors[t].size, 16);
    return n;
}

void model_freeze_layout(hone_model *m, float *to) {
    size_t o = 0;
    m->n_frozen = 0;
    for (size_t t = 0; t < m->n_tensors; t++) {
        hone_param_tensor *pt = &m->tensors[t];
        if (model_is_base_matrix(m, t)) {
            /* the optimizer never sees it: a full fine-tuning of this model is refused */
            m->segments[t].offset = m->segments[t].size = 0;
            m->n_frozen++;
            continue;
        }
        if (to) memcpy(to + o, m->params + pt->offset, pt->size * sizeof(float));
        pt->offset = m->segments[t].offset = o;
        o += round_up(pt->size, 16);
    }
    m->n_params = o;
}

hone_status model_alloc_tile(hone_model *m) {
    size_t widest = (size_t)m->cfg.hidden_size;
    for (size_t t = 0; t < m->n_tensors; t++)
        if (model_is_base_matrix(m, t) && (size_t)m->tensors[t].shape[1] > widest)
            widest = (size_t)m->tensors[t].shape[1];
    m->tile_slots = omp_get_max_threads();
    m->tile = hone_alloc((size_t)m->tile_slots * OP_FROZEN_TILE * widest * sizeof(float));
    if (!m->tile) return hone_errorf(HONE_ERR_NOMEM, "out of memory for the frozen kernels' tiles");
    return HONE_OK;
}

hone_status hone_model_set_base_dtype(hone_model *m, hone_dtype dtype) {
    if (m->n_frozen) {
        if (dtype == hone_model_base_dtype(m)) return HONE_OK;
        return hone_errorf(HONE_ERR_UNSUPPORTED, "this model's base is already frozen in %s and has no fp32 weights to "
                           "convert; load the model again for %s", hone_dtype_name(hone_model_base_dtype(m)),
                           hone_dtype_name(dtype));
    }
    if (dtype == HONE_DTYPE_F32) return HONE_OK;
    if (dtype != HONE_DTYPE_BF16)
        return hone_errorf(HONE_ERR_UNSUPPORTED, "base dtype %s is not supported (fp32 or bf16)",
                           hone_dtype_name(dtype));
    if (!m->adapter)
        return hone_errorf(HONE_ERR_INVALID, "base_dtype bf16 needs an adapter (lora, prompt or prefix): only a frozen "
                           "base can be kept in bf16; full fine-tuning keeps fp32 master weights, since bf16 cannot "
                           "hold small updates");
    if (m->grads)
        return hone_errorf(HONE_ERR_INVALID, "the model was prepared for full fine-tuning (it has fp32 gradients); "
                           "attach the adapter and set the base dtype before hone_model_prepare");
    size_t n16 = 0;
    for (size_t t = 0; t < m->n_tensors; t++)
        if (model_is_base_matrix(m, t)) n16 += round_up(m->tensors[t].size, 32);
    const size_t n32 = model_vector_floats(m);
    float *p32 = hone_alloc((n32 ? n32 : 1) * sizeof(float));
    /* not hone_alloc, which zeroes it: untouched pages take no memory until the conversion writes them */
    uint16_t *p16 = aligned_alloc(64, round_up(n16 * sizeof(uint16_t), 64));
    hone_status st = p32 && p16 ? model_alloc_tile(m) : HONE_ERR_NOMEM;
    if (st != HONE_OK) {
        hone_free(p32);
        hone_free(p16);
        return hone_errorf(HONE_ERR_NOMEM, "out of memory for a bf16 copy of the base (%.1f GB)",
                           (double)n16 * 2 / 1e9);
    }
    /* the vectors first: then every page of the fp32 buffer below the tensor being converted is dead */
    float *old = m->params;
    model_freeze_layout(m, p32);
    m->params = p32;
    /* Matrices lie in index order in the old buffer. Handing the converted pages back to the system as we go keeps
     * the peak near the fp32 model's size instead of 1.5 times it. */
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t released = ((uintptr_t)old + page - 1) & ~(page - 1);
    size_t o16 = 0;
    for (size_t t = 0; t < m->n_tensors; t++) {
        hone_param_tensor *pt = &m->tensors[t];
        if (!model_is_base_matrix(m, t)) continue;
        const float *src = old + pt->offset;
        uint16_t *dst = p16 + o16;
#pragma omp parallel for schedule(static)
        for (size_t k = 0; k < pt->size; k++) dst[k] = hone_f32_to_bf16(src[k]);
        const uintptr_t end = (uintptr_t)(src + pt->size) & ~(page - 1);
        if (end > released && madvise((void *)released, end - released, MADV_DONTNEED) == 0) released = end;
        pt->frozen = (op_matrix){.part = {{dst, HONE_DTYPE_BF16, (int)pt->shape[0], 0}}, .n_parts = 1};
        o16 += round_up(pt->size, 32);
    }
    hone_free(old);
    m->params16 = p16;
    model_carve(m, m->params, &m->w); /* the frozen matrices' views become NULL */
    return HONE_OK;
}

hone_dtype hone_model_base_dtype(const hone_model *m) {
    return m->n_frozen ? m->tensors[m->global_tensor[0]].frozen.part[0].dtype : HONE_DTYPE_F32;
}

int hone_model_base_mapped(const hone_model *m) { return m->mapped != NULL; }

hone_status hone_base_dtype_parse(const char *name, hone_dtype *out) {
    if (!strcmp(name, "fp32") || !strcmp(name, "float32")) *out = HONE_DTYPE_F32;
    else if (!strcmp(name, "bf16") || !strcmp(name, "bfloat16")) *out = HONE_DTYPE_BF16;
    else return hone_errorf(HONE_ERR_INVALID, "base_dtype '%s': expected fp32 or bf16", name);
    return HONE_OK;
}

hone_status hone_base_mode_parse(const char *name, hone_base_mode *out) {
    if (!strcmp(name, "auto")) {
        *out = HONE_BASE_AUTO;
        return HONE_OK;
    }
    hone_dtype d = HONE_DTYPE_F32;
    if (hone_base_dtype_parse(name, &d) != HONE_OK)
        return hone_errorf(HONE_ERR_INVALID, "base_dtype '%s': expected auto, fp32 or bf16", name);
    *out = d == HONE_DTYPE_BF16 ? HONE_BASE_BF16 : HONE_BASE_FP32;
    return HONE_OK;
}

/* Tensor t's frozen matrix, or NULL when it is in the fp32 buffer (or absent). */
static const op_matrix *frozen(const hone_model *m, int t) {
    return t >= 0 && m->tensors[t].frozen.n_parts ? &m->tensors[t].frozen : NULL;
}

void model_matrix_rows(const hone_model *m, int t, int64_t r0, int64_t rows, float *dst) {
    const int cols = (int)m->tensors[t].shape[1];
    const op_matrix *w = frozen(m, t);
    if (w) op_matrix_widen(dst, w, (int)r0, (int)rows, 0, cols, cols);
    else memcpy(dst, m->params + m->tensors[t].offset + (size_t)r0 * cols, sizeof(float) * (size_t)rows * cols);
}

void model_linear_forward(hone_model *m, float *out, const float *x, int layer, int weight, int N, int IC, int OC) {
    const int t = m->layer_tensor[layer][weight], tb = m->layer_tensor[layer][weight + 1];
    const float *b = tb < 0 ? NULL : m->params + m->tensors[tb].offset;
    const op_matrix *w = frozen(m, t);
    if (w) op_linear_forward_frozen(out, x, w, b, N, IC, OC, m->tile, m->tile_slots);
    else op_linear_forward(out, x, m->params + m->tensors[t].offset, b, N, IC, OC);
}

void model_linear_backward(hone_model *m, float *dx, float *dw, float *db, const float *dout, const float *x,
                           int layer, int weight, int N, int IC, int OC) {
    const int t = m->layer_tensor[layer][weight];
    const op_matrix *w = frozen(m, t);
    if (w) {
        HONE_ASSERT(!dw && !db); /* a frozen base has no gradients */
        op_linear_backward_dx_frozen(dx, dout, w, N, IC, OC, 0, m->tile, m->tile_slots);
    } else {
        op_linear_backward(dx, dw, db, dout, x, m->params + m->tensors[t].offset, N, IC, OC, 0);
    }
}

void model_embedding_forward(hone_model *m, float *out, const int32_t *ids, const int32_t *pos, int N, int T) {
    const float *wte = adapter_embedding(m);
    if (wte) op_embedding_forward(out, ids, wte, m->w.wpe, pos, N, T, m->cfg.hidden_size);
    else op_embedding_forward_frozen(out, ids, frozen(m, m->global_tensor[0]), m->w.wpe, pos, N, T,
                                     m->cfg.hidden_size);
}

void model_lm_head_forward(hone_model *m, float *logits, const float *x, int N) {
    const float *w = adapter_lm_head(m);
    const int C = m->cfg.hidden_size, V = m->cfg.vocab_size;
    if (w) op_linear_forward(logits, x, w, NULL, N, C, V);
    else op_linear_forward_frozen(logits, x, frozen(m, model_lm_head_tensor(m)), NULL, N, C, V, m->tile,
                                  m->tile_slots);
}

void model_lm_head_backward_dx(hone_model *m, float *dx, const float *dlogits, int N) {
    const float *w = adapter_lm_head(m);
    const int C = m->cfg.hidden_size, V = m->cfg.vocab_size;
    if (w) op_linear_backward(dx, NULL, NULL, dlogits, NULL, w, N, C, V, 0);
    else op_linear_backward_dx_frozen(dx, dlogits, frozen(m, model_lm_head_tensor(m)), N, C, V, 0, m->tile,
                                      m->tile_slots);
}
