/* A frozen base kept in bf16 under an adapter (issue 5 item 3), and the passes' access to the base's matrices
 * whatever dtype they are kept in.
 *
 * hone keeps fp32 parameters in one buffer with its own layout (fused qkv and gate/up, GPT-2's Conv1D transposed),
 * so the files' tensors cannot be mapped as they are. Instead, while an adapter freezes the base, its matrices — the
 * linear weights, the token embedding and an untied lm_head — move to one bf16 buffer (round to nearest even) and
 * the fp32 buffer shrinks to the vectors (norm gains, biases) and GPT-2's position embeddings: about half the memory
 * of the weights. The kernels widen up to OP_BF16_TILE rows of a matrix at a time into a small fp32 tile per thread
 * and call sgemm on it (y = x Wᵀ forward, dx = dy W backward; no dW since frozen), and the embedding lookup widens
 * the rows it reads, so no fp32 copy of a whole matrix exists. The model then computes exactly what the fp32 model
 * computes after its matrices were rounded to bf16 (up to the summation order of the tiles). */
#include "model/model_internal.h"
#include "peft/peft_internal.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* 16 floats or 32 bf16 values: every tensor starts on a 64-byte boundary. */
static size_t round_up(size_t n, size_t k) { return (n + k - 1) / k * k; }

/* The matrices that go to bf16: every 2-D tensor except GPT-2's position embeddings (small, and added to the
 * embedding rows in fp32). */
static int kept_in_bf16(const hone_model *m, size_t t) {
    return m->tensors[t].ndim == 2 && (int)t != m->global_tensor[1];
}

hone_status hone_model_set_base_dtype(hone_model *m, hone_dtype dtype) {
    if (dtype == HONE_DTYPE_F32) {
        if (m->params16)
            return hone_errorf(HONE_ERR_UNSUPPORTED, "this model's base is already kept in bf16 and the fp32 weights "
                               "are gone; load the model again for fp32");
        return HONE_OK;
    }
    if (dtype != HONE_DTYPE_BF16)
        return hone_errorf(HONE_ERR_UNSUPPORTED, "base dtype %s is not supported (fp32 or bf16)",
                           hone_dtype_name(dtype));
    if (m->params16) return HONE_OK;
    if (!m->adapter)
        return hone_errorf(HONE_ERR_INVALID, "base_dtype bf16 needs an adapter (lora, prompt or prefix): only a frozen "
                           "base can be kept in bf16; full fine-tuning keeps fp32 master weights, since bf16 cannot "
                           "hold small updates");
    if (m->grads)
        return hone_errorf(HONE_ERR_INVALID, "the model was prepared for full fine-tuning (it has fp32 gradients); "
                           "attach the adapter and set the base dtype before hone_model_prepare");
    size_t n32 = 0, n16 = 0, widest = m->cfg.hidden_size;
    for (size_t t = 0; t < m->n_tensors; t++) {
        if (kept_in_bf16(m, t)) {
            n16 += round_up(m->tensors[t].size, 32);
            if ((size_t)m->tensors[t].shape[1] > widest) widest = (size_t)m->tensors[t].shape[1];
        } else {
            n32 += round_up(m->tensors[t].size, 16);
        }
    }
    float *p32 = hone_alloc((n32 ? n32 : 1) * sizeof(float));
    const int slots = omp_get_max_threads();
    float *tile = hone_alloc((size_t)slots * OP_BF16_TILE * widest * sizeof(float));
    /* not hone_alloc, which zeroes it: untouched pages take no memory until the conversion writes them */
    uint16_t *p16 = aligned_alloc(64, round_up(n16 * sizeof(uint16_t), 64));
    if (!p32 || !p16 || !tile) {
        hone_free(p32);
        hone_free(p16);
        hone_free(tile);
        return hone_errorf(HONE_ERR_NOMEM, "out of memory for a bf16 copy of the base (%.1f GB)",
                           (double)n16 * 2 / 1e9);
    }
    /* the vectors first: then every page of the fp32 buffer below the tensor being converted is dead */
    size_t o32 = 0, o16 = 0;
    for (size_t t = 0; t < m->n_tensors; t++) {
        hone_param_tensor *pt = &m->tensors[t];
        if (kept_in_bf16(m, t)) continue;
        memcpy(p32 + o32, m->params + pt->offset, pt->size * sizeof(float));
        pt->offset = m->segments[t].offset = o32;
        o32 += round_up(pt->size, 16);
    }
    /* Tensors lie in index order in the buffer. Handing the converted pages back to the system as we go keeps the
     * peak near the fp32 model's size instead of 1.5 times it. */
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t released = ((uintptr_t)m->params + page - 1) & ~(page - 1);
    for (size_t t = 0; t < m->n_tensors; t++) {
        hone_param_tensor *pt = &m->tensors[t];
        if (!kept_in_bf16(m, t)) continue;
        const float *src = m->params + pt->offset;
        uint16_t *dst = p16 + o16;
#pragma omp parallel for schedule(static)
        for (size_t k = 0; k < pt->size; k++) dst[k] = hone_f32_to_bf16(src[k]);
        const uintptr_t end = (uintptr_t)(src + pt->size) & ~(page - 1);
        if (end > released && madvise((void *)released, end - released, MADV_DONTNEED) == 0) released = end;
        pt->offset = o16;
        pt->bf16 = 1;
        o16 += round_up(pt->size, 32);
        /* the optimizer never sees it: a full fine-tuning of this model is refused */
        m->segments[t].offset = m->segments[t].size = 0;
    }
    hone_free(m->params);
    m->params = p32;
    m->n_params = n32;
    m->params16 = p16;
    m->bf16_tile = tile;
    m->bf16_slots = slots;
    model_carve(m, m->params, &m->w);
    return HONE_OK;
}

hone_dtype hone_model_base_dtype(const hone_model *m) { return m->params16 ? HONE_DTYPE_BF16 : HONE_DTYPE_F32; }

hone_dtype hone_model_auto_base_dtype(const hone_model *m) {
    if (!m->adapter || m->params16) return hone_model_base_dtype(m);
    for (size_t t = 0; t < m->n_tensors; t++) {
        if (!kept_in_bf16(m, t)) continue;
        const float *p = m->params + m->tensors[t].offset;
        const size_t n = m->tensors[t].size;
        uint32_t low = 0;
#pragma omp parallel for schedule(static) reduction(| : low)
        for (size_t k = 0; k < n; k++) {
            uint32_t u;
            memcpy(&u, p + k, 4);
            low |= u & 0xffff;
        }
        if (low) return HONE_DTYPE_F32;
    }
    return HONE_DTYPE_BF16;
}
hone_status hone_base_dtype_parse(const char *name, hone_dtype *out) {
    if (!strcmp(name, "fp32") || !strcmp(name, "float32")) *out = HONE_DTYPE_F32;
    else if (!strcmp(name, "bf16") || !strcmp(name, "bfloat16")) *out = HONE_DTYPE_BF16;
    else return hone_errorf(HONE_ERR_INVALID, "base_dtype '%s': expected fp32 or bf16", name);
    return HONE_OK;
}

/* A bf16 tensor's values, or NULL when tensor t is fp32 (or absent). */
static const uint16_t *bf16_tensor(const hone_model *m, int t) {
    return t >= 0 && m->tensors[t].bf16 ? m->params16 + m->tensors[t].offset : NULL;
}

static const uint16_t *bf16_lm_head(const hone_model *m) {
    return bf16_tensor(m, m->global_tensor[4] >= 0 ? m->global_tensor[4] : m->global_tensor[0]);
}

void model_linear_forward(hone_model *m, float *out, const float *x, int layer, int weight, int N, int IC, int OC) {
    const int t = m->layer_tensor[layer][weight], tb = m->layer_tensor[layer][weight + 1];
    const float *b = tb < 0 ? NULL : m->params + m->tensors[tb].offset;
    const uint16_t *w16 = bf16_tensor(m, t);
    if (w16) op_linear_forward_bf16(out, x, w16, b, N, IC, OC, m->bf16_tile, m->bf16_slots);
    else op_linear_forward(out, x, m->params + m->tensors[t].offset, b, N, IC, OC);
}

void model_linear_backward(hone_model *m, float *dx, float *dw, float *db, const float *dout, const float *x,
                           int layer, int weight, int N, int IC, int OC) {
    const int t = m->layer_tensor[layer][weight];
    const uint16_t *w16 = bf16_tensor(m, t);
    if (w16) {
        HONE_ASSERT(!dw && !db); /* a bf16 base is frozen */
        op_linear_backward_dx_bf16(dx, dout, w16, N, IC, OC, 0, m->bf16_tile, m->bf16_slots);
    } else {
        op_linear_backward(dx, dw, db, dout, x, m->params + m->tensors[t].offset, N, IC, OC, 0);
    }
}

void model_embedding_forward(hone_model *m, float *out, const int32_t *ids, const int32_t *pos, int N, int T) {
    const float *wte = adapter_embedding(m);
    if (wte) op_embedding_forward(out, ids, wte, m->w.wpe, pos, N, T, m->cfg.hidden_size);
    else op_embedding_forward_bf16(out, ids, bf16_tensor(m, m->global_tensor[0]), m->w.wpe, pos, N, T,
                                   m->cfg.hidden_size);
}

void model_lm_head_forward(hone_model *m, float *logits, const float *x, int N) {
    const float *w = adapter_lm_head(m);
    const int C = m->cfg.hidden_size, V = m->cfg.vocab_size;
    if (w) op_linear_forward(logits, x, w, NULL, N, C, V);
    else op_linear_forward_bf16(logits, x, bf16_lm_head(m), NULL, N, C, V, m->bf16_tile, m->bf16_slots);
}

void model_lm_head_backward_dx(hone_model *m, float *dx, const float *dlogits, int N) {
    const float *w = adapter_lm_head(m);
    const int C = m->cfg.hidden_size, V = m->cfg.vocab_size;
    if (w) op_linear_backward(dx, NULL, NULL, dlogits, NULL, w, N, C, V, 0);
    else op_linear_backward_dx_bf16(dx, dlogits, bf16_lm_head(m), N, C, V, 0, m->bf16_tile, m->bf16_slots);
}
