/* Training and scoring passes: activation planning, the trunk forward/backward, and the cross-entropy head. */
#include "model/model_internal.h"
#include "peft/peft_internal.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

float model_attention_scale(const hone_model_config *c, int layer) {
    float s = c->scale_attn_weights ? 1.0f / sqrtf((float)c->head_dim) : 1.0f;
    if (c->scale_attn_by_inverse_layer_idx) s /= (float)(layer + 1);
    return s;
}

hone_status model_ensure_rope(hone_model *m, int len) {
    if (m->cfg.arch != HONE_ARCH_LLAMA || len <= m->rope_len) return HONE_OK;
    size_t n = (size_t)len * (m->cfg.head_dim / 2);
    float *c = hone_alloc(n * sizeof(float)), *s = hone_alloc(n * sizeof(float));
    if (!c || !s) {
        hone_free(c);
        hone_free(s);
        return hone_errorf(HONE_ERR_NOMEM, "out of memory for rotary tables");
    }
    op_rope_tables(c, s, len, m->cfg.head_dim, m->cfg.rope_theta);
    hone_free(m->rope_cos);
    hone_free(m->rope_sin);
    m->rope_cos = c;
    m->rope_sin = s;
    m->rope_len = len;
    return HONE_OK;
}

void model_free_activations(hone_model *m) {
    hone_free(m->act_mem);
    free(m->row_nll);
    m->row_nll = NULL;
    free(m->head_at);
    m->head_at = NULL;
    free(m->resid);
    free(m->acts);
    m->act_mem = NULL;
    m->resid = NULL;
    m->acts = NULL;
    m->B = m->T = 0;
}

static float *carve_floats(float **p, size_t n) {
    float *r = *p;
    *p += n;
    return r;
}

hone_status hone_model_prepare(hone_model *m, int B, int T, int training) {
    const hone_model_config *c = &m->cfg;
    if (B <= 0 || T <= 0) return hone_errorf(HONE_ERR_INVALID, "batch size and sequence length must be positive");
    if (c->arch == HONE_ARCH_GPT2 && T > c->max_position_embeddings)
        return hone_errorf(HONE_ERR_INVALID,
                           "sequence length %d exceeds the model's %d positions (n_positions in config.json)", T,
                           c->max_position_embeddings);
    if (c->sliding_window > 0 && T > c->sliding_window)
        return hone_errorf(HONE_ERR_UNSUPPORTED,
                           "sequence length %d exceeds the sliding window of %d; sliding-window attention is not "
                           "supported yet (use --sequence-len <= %d)",
                           T, c->sliding_window, c->sliding_window);
    if (m->act_mem && m->B == B && m->T == T && m->training >= training && m->planned_threads >= omp_get_max_threads())
        return HONE_OK;
    model_free_activations(m);
    if (training && !m->adapter) HONE_TRY(model_alloc_grads(m)); /* an adapter freezes the base */
    HONE_TRY(model_ensure_rope(m, T));
    HONE_TRY(adapter_prepare(m, B, T, training));

    const size_t N = (size_t)B * T, C = c->hidden_size, L = c->num_layers, V = c->vocab_size;
    const size_t QKV = model_qkv_dim(c), Q = (size_t)c->num_heads * c->head_dim, F = model_fc_dim(c);
    const int NP = prefix_tokens(m); /* prefix tuning: every query also scores the NP prefix slots */
    const size_t IM = c->intermediate_size, ATT = (size_t)B * c->num_heads * T * (T + NP);
    const size_t sets = training ? L : 1;
    const size_t resid_bufs = training ? L + 1 : 2;
    int chunk = (int)((1u << 24) / V); /* logits chunks of at most 64 MB */
    if (chunk < 1) chunk = 1;
    if ((size_t)chunk > N) chunk = (int)N;

    /* Sizes in floats, each rounded to 16 floats (64 bytes). */
#define R16(x) (((x) + 15) & ~(size_t)15)
    size_t per_set = R16(N * C) * 3 + R16(N) * 4 + R16(N * QKV) + R16(ATT) + R16(N * Q) + R16(N * F) + R16(N * IM);
    size_t total = resid_bufs * R16(N * C) + sets * per_set + R16(N * C) + 2 * R16(N) + R16((size_t)chunk * V) +
                   R16((size_t)chunk * C);
    if (training)
        total += R16(N * C) * 3 + R16(N * QKV) + R16(N * Q) + R16(N * F) + R16(N * IM) + R16(op_norm_scratch_floats(C)) +
                 R16(op_attention_prefix_scratch_floats(B, T, c->num_heads, NP));
    m->act_mem = hone_alloc(total * sizeof(float));
    m->resid = calloc(L + 1, sizeof(float *));
    m->acts = calloc(L, sizeof(hone_layer_acts));
    m->row_nll = calloc((size_t)chunk, sizeof(double));
    m->head_at = calloc((size_t)chunk, sizeof(int));
    if (!m->act_mem || !m->resid || !m->acts || !m->row_nll || !m->head_at) {
        model_free_activations(m);
        return hone_errorf(HONE_ERR_NOMEM, "out of memory planning activations for batch %d × %d (%.1f GB)", B, T,
                           (double)total * 4 / 1e9);
    }
    float *p = m->act_mem;
#define TAKE(n) carve_floats(&p, R16(n))
    float *rb[2] = {NULL, NULL};
    for (size_t i = 0; i <= L; i++) {
        if (training) m->resid[i] = TAKE(N * C);
        else {
            if (i < 2) rb[i] = TAKE(N * C);
            m->resid[i] = rb[i % 2];
        }
    }
    for (size_t s = 0; s < sets; s++) {
        hone_layer_acts *a = &m->acts[s];
        a->ln1 = TAKE(N * C);
        a->ln1_mean = TAKE(N);
        a->ln1_rstd = TAKE(N);
        a->qkv = TAKE(N * QKV);
        a->att = TAKE(ATT);
        a->atty = TAKE(N * Q);
        a->resmid = TAKE(N * C);
        a->ln2 = TAKE(N * C);
        a->ln2_mean = TAKE(N);
        a->ln2_rstd = TAKE(N);
        a->fc = TAKE(N * F);
        a->act = TAKE(N * IM);
    }
    for (size_t s = sets; s < L; s++) m->acts[s] = m->acts[0];
    m->lnf = TAKE(N * C);
    m->lnf_mean = TAKE(N);
    m->lnf_rstd = TAKE(N);
    m->logits_chunk = TAKE((size_t)chunk * V);
    m->head_x = TAKE((size_t)chunk * C);
    m->chunk_rows = chunk;
    if (training) {
        m->d_resid = TAKE(N * C);
        m->d_ln = TAKE(N * C);
        m->d_lnf = TAKE(N * C);
        m->d_qkv = TAKE(N * QKV);
        m->d_atty = TAKE(N * Q);
        m->d_fc = TAKE(N * F);
        m->d_act = TAKE(N * IM);
        m->norm_scratch = TAKE(op_norm_scratch_floats(C));
        m->attn_scratch = TAKE(op_attention_prefix_scratch_floats(B, T, c->num_heads, NP));
    }
    HONE_ASSERT((size_t)(p - m->act_mem) <= total);
#undef TAKE
#undef R16
    m->B = B;
    m->T = T;
    m->training = training;
    m->planned_threads = omp_get_max_threads();
    return HONE_OK;
}

static void norm_forward(const hone_model *m, float *out, float *mean, float *rstd, const float *x, const float *w,
                         const float *b, int N) {
    if (m->cfg.arch == HONE_ARCH_GPT2)
        op_layernorm_forward(out, mean, rstd, x, w, b, N, m->cfg.hidden_size, m->cfg.norm_eps);
    else
        op_rmsnorm_forward(out, rstd, x, w, N, m->cfg.hidden_size, m->cfg.norm_eps);
}

static void norm_backward(hone_model *m, float *dx, float *dw, float *db, const float *dout, const float *x,
                          const float *w, const float *mean, const float *rstd, int N) {
    if (m->cfg.arch == HONE_ARCH_GPT2)
        op_layernorm_backward(dx, dw, db, dout, x, w, mean, rstd, N, m->cfg.hidden_size, m->norm_scratch);
    else
        op_rmsnorm_backward(dx, dw, dout, x, w, rstd, N, m->cfg.hidden_size, m->norm_scratch);
}

hone_status hone_model_forward(hone_model *m, const int32_t *ids, int B, int T) {
    return hone_model_forward_positions(m, ids, NULL, B, T);
}

/* Position ids must restart at 0 or go up by one, so that each token's window [t - pos, t] is its own sample. */
static hone_status check_positions(const int32_t *pos, int B, int T) {
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            const int32_t p = pos[(size_t)b * T + t];
            if (p != 0 && (t == 0 || p != pos[(size_t)b * T + t - 1] + 1))
                return hone_errorf(HONE_ERR_INVALID,
                                   "position id %d at row %d, column %d: positions must start at 0 and go up by one "
                                   "within each packed sample",
                                   (int)p, b, t);
        }
    return HONE_OK;
}

hone_status hone_model_forward_positions(hone_model *m, const int32_t *ids, const int32_t *pos, int B, int T) {
    const hone_model_config *c = &m->cfg;
    if (!m->act_mem || B > m->B || T > m->T || (B * T > m->B * m->T))
        return hone_errorf(HONE_ERR_INVALID, "forward of %d × %d exceeds the prepared %d × %d", B, T, m->B, m->T);
    if (pos) HONE_TRY(check_positions(pos, B, T));
    const int N = B * T, C = c->hidden_size, QKV = model_qkv_dim(c), Q = c->num_heads * c->head_dim;
    const int F = model_fc_dim(c), IM = c->intermediate_size, L = c->num_layers;
    for (int n = 0; n < N; n++)
        if (ids[n] < 0 || ids[n] >= c->vocab_size)
            return hone_errorf(HONE_ERR_INVALID, "token id %d at position %d is outside the vocabulary (size %d)",
                               ids[n], n, c->vocab_size);
    /* the positions of embeddings and rotary tables: after a prefix they start at its length */
    const int32_t *token_pos = prompt_forward_begin(m, pos, B, T);
    m->last_ids = ids;
    m->last_pos = token_pos;
    m->last_attn_pos = pos;
    m->last_B = B;
    m->last_T = T;
    model_embedding_forward(m, m->resid[0], ids, token_pos, N, T);
    prompt_embed(m, m->resid[0], pos, N, T);
    for (int l = 0; l < L; l++) {
        const hone_layer_weights *w = &m->w.layers[l];
        hone_layer_acts *a = &m->acts[l];
        const float *x = m->resid[l];
        norm_forward(m, a->ln1, a->ln1_mean, a->ln1_rstd, x, w->ln1_w, w->ln1_b, N);
        model_linear_forward(m, a->qkv, a->ln1, l, LW_QKV_W, N, C, QKV);
        lora_linear_forward(m, l, LW_QKV_W, a->ln1, a->qkv, N, m->training);
        if (c->arch == HONE_ARCH_LLAMA)
            op_rope(a->qkv, N, T, QKV, c->num_heads + c->num_kv_heads, c->head_dim, m->rope_cos, m->rope_sin,
                    token_pos, 0);
        op_attention_prefix_forward(a->atty, a->att, a->qkv, pos, B, T, c->num_heads, c->num_kv_heads, c->head_dim,
                                    model_attention_scale(c, l), prefix_layer(m, l));
        model_linear_forward(m, a->resmid, a->atty, l, LW_O_W, N, Q, C);
        lora_linear_forward(m, l, LW_O_W, a->atty, a->resmid, N, m->training);
        op_add_inplace(a->resmid, x, (size_t)N * C);
        norm_forward(m, a->ln2, a->ln2_mean, a->ln2_rstd, a->resmid, w->ln2_w, w->ln2_b, N);
        model_linear_forward(m, a->fc, a->ln2, l, LW_FC_W, N, C, F);
        lora_linear_forward(m, l, LW_FC_W, a->ln2, a->fc, N, m->training);
        if (c->arch == HONE_ARCH_GPT2) op_activation_forward(a->act, a->fc, (size_t)N * IM, model_op_activation(c));
        else op_glu_forward(a->act, a->fc, N, IM, model_op_activation(c));
        float *out = m->resid[l + 1];
        model_linear_forward(m, out, a->act, l, LW_PROJ_W, N, IM, C);
        lora_linear_forward(m, l, LW_PROJ_W, a->act, out, N, m->training);
        op_add_inplace(out, a->resmid, (size_t)N * C);
    }
    norm_forward(m, m->lnf, m->lnf_mean, m->lnf_rstd, m->resid[L], m->w.lnf_w, m->w.lnf_b, N);
    return HONE_OK;
}

const float *hone_model_hidden(const hone_model *m) { return m->lnf; }

void hone_model_logits(hone_model *m, int row0, int n, float *out) {
    model_lm_head_forward(m, out, m->lnf + (size_t)row0 * m->cfg.hidden_size, n);
}

/* The cross-entropy head over the positions that have a target (not -100): their hidden states are gathered,
 * chunk_rows at a time, into a compact buffer, so prompt and padding positions cost no logits. position_nll (may be
 * NULL) receives each position's NLL (0 where not counted); with grad, d_lnf receives each counted position's
 * gradient (0 elsewhere) and the lm_head gradient accumulates. */
static hone_status cross_entropy(hone_model *m, const int32_t *targets, float grad_scale, int grad, hone_loss *out,
                                 double *position_nll) {
    const int N = m->last_B * m->last_T, C = m->cfg.hidden_size, V = m->cfg.vocab_size;
    if (grad && !m->training) return hone_errorf(HONE_ERR_INVALID, "model was not prepared for training");
    for (int n = 0; n < N; n++)
        if (targets[n] != -100 && (targets[n] < 0 || targets[n] >= V))
            return hone_errorf(HONE_ERR_INVALID, "target id %d at position %d is outside the vocabulary (size %d)",
                               targets[n], n, V);
    int *at = m->head_at;
    float *x = m->head_x;
    if (grad) memset(m->d_lnf, 0, sizeof(float) * (size_t)N * C);
    if (position_nll) memset(position_nll, 0, sizeof(double) * (size_t)N);
    /* an adapter freezes lm_head unless it trains a copy of it (modules_to_save) */
    float *d_lm_head = m->adapter ? adapter_lm_head_grad(m) : m->g.lm_head;
    double sum = 0;
    int64_t count = 0;
    for (int n = 0; n < N;) {
        int rows = 0;
        for (; n < N && rows < m->chunk_rows; n++)
            if (targets[n] != -100) at[rows++] = n;
        if (!rows) break;
        for (int r = 0; r < rows; r++) memcpy(x + (size_t)r * C, m->lnf + (size_t)at[r] * C, sizeof(float) * C);
        float *logits = m->logits_chunk;
        model_lm_head_forward(m, logits, x, rows);
        double *row_nll = m->row_nll;
#pragma omp parallel for schedule(static)
        for (int r = 0; r < rows; r++) {
            float *z = logits + (size_t)r * V;
            const int tgt = targets[at[r]];
            float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
            for (int v = 0; v < V; v++) mx = z[v] > mx ? z[v] : mx;
            const float z_target = z[tgt];
            /* exp(z - max) kept in place for the gradient, then summed in double (two loops: both vectorize) */
            for (int v = 0; v < V; v++) z[v] = op_exp(z[v] - mx);
            double se = 0;
#pragma omp simd reduction(+ : se)
            for (int v = 0; v < V; v++) se += z[v];
            row_nll[r] = mx + log(se) - z_target;
            if (grad) {
                /* d(nll)/dz = softmax(z) - onehot(target), scaled */
                const float k = (float)(grad_scale / se);
                for (int v = 0; v < V; v++) z[v] *= k;
                z[tgt] -= grad_scale;
            }
        }
        /* summed in position order so the reported loss has the same bits for any thread count */
        for (int r = 0; r < rows; r++) sum += row_nll[r];
        count += rows;
        if (position_nll)
            for (int r = 0; r < rows; r++) position_nll[at[r]] = row_nll[r];
        if (grad) {
            /* dW_lm += dz^T @ hidden[rows], then d_hidden[rows] = dz @ W_lm (over the gathered hidden states) */
            if (d_lm_head)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, V, C, rows, 1.0f, logits, V, x, C, 1.0f,
                            d_lm_head, C);
            model_lm_head_backward_dx(m, x, logits, rows);
            for (int r = 0; r < rows; r++)
                memcpy(m->d_lnf + (size_t)at[r] * C, x + (size_t)r * C, sizeof(float) * C);
        }
    }
    out->sum_nll = sum;
    out->count = count;
    return HONE_OK;
}

hone_status hone_head_cross_entropy(hone_model *m, const int32_t *targets, float grad_scale, int grad,
                                    hone_loss *out) {
    return cross_entropy(m, targets, grad_scale, grad, out, NULL);
}

hone_status hone_head_token_nll(hone_model *m, const int32_t *targets, double *nll, hone_loss *out) {
    return cross_entropy(m, targets, 1.0f, 0, out, nll);
}

void hone_model_zero_grad(hone_model *m) {
    if (m->adapter) {
        adapter_zero_grad(m->adapter); /* the base is frozen: its gradients are not computed */
        return;
    }
    if (!m->grads) return;
    /* one memset per thread: a single thread cannot fill memory at the machine's bandwidth */
    const size_t chunk = 1 << 16, n_chunks = (m->n_params + chunk - 1) / chunk;
#pragma omp parallel for schedule(static)
    for (size_t c = 0; c < n_chunks; c++) {
        size_t begin = c * chunk, len = begin + chunk <= m->n_params ? chunk : m->n_params - begin;
        memset(m->grads + begin, 0, len * sizeof(float));
    }
}

hone_status hone_model_backward(hone_model *m) {
    const hone_model_config *c = &m->cfg;
    if (!m->training || !m->last_ids) return hone_errorf(HONE_ERR_INVALID, "backward needs a training forward first");
    /* per-thread scratch was sized for the thread count of hone_model_prepare */
    if (omp_get_max_threads() > m->planned_threads)
        return hone_errorf(HONE_ERR_INVALID, "the thread count grew from %d to %d after hone_model_prepare; prepare again",
                           m->planned_threads, omp_get_max_threads());
    const int B = m->last_B, T = m->last_T, N = B * T, C = c->hidden_size, QKV = model_qkv_dim(c);
    const int Q = c->num_heads * c->head_dim, F = model_fc_dim(c), IM = c->intermediate_size, L = c->num_layers;
    float *dres = m->d_resid;
    memset(dres, 0, sizeof(float) * (size_t)N * C);
    /* with an adapter attached the base is frozen: NULL gradients make the ops skip dW, db and norm gains */
    const int frozen = m->adapter != NULL;
    static const hone_layer_weights no_grads;
    norm_backward(m, dres, frozen ? NULL : m->g.lnf_w, frozen ? NULL : m->g.lnf_b, m->d_lnf, m->resid[L], m->w.lnf_w,
                  m->lnf_mean, m->lnf_rstd, N);
    for (int l = L - 1; l >= 0; l--) {
        const hone_layer_weights *w = &m->w.layers[l];
        const hone_layer_weights *g = frozen ? &no_grads : &m->g.layers[l];
        hone_layer_acts *a = &m->acts[l];
        /* MLP: out = resmid + proj(act(fc(ln2(resmid)))) ; dres holds d(out) and becomes d(resmid) */
        model_linear_backward(m, m->d_act, g->proj_w, g->proj_b, dres, a->act, l, LW_PROJ_W, N, IM, C);
        lora_linear_backward(m, l, LW_PROJ_W, a->act, dres, m->d_act, N);
        if (c->arch == HONE_ARCH_GPT2)
            op_activation_backward(m->d_fc, m->d_act, a->fc, (size_t)N * IM, model_op_activation(c));
        else op_glu_backward(m->d_fc, m->d_act, a->fc, N, IM, model_op_activation(c));
        model_linear_backward(m, m->d_ln, g->fc_w, g->fc_b, m->d_fc, a->ln2, l, LW_FC_W, N, C, F);
        lora_linear_backward(m, l, LW_FC_W, a->ln2, m->d_fc, m->d_ln, N);
        norm_backward(m, dres, g->ln2_w, g->ln2_b, m->d_ln, a->resmid, w->ln2_w, a->ln2_mean, a->ln2_rstd, N);
        /* attention: resmid = x + o(attn(rope(qkv(ln1(x))))) ; dres becomes d(x) */
        model_linear_backward(m, m->d_atty, g->o_w, g->o_b, dres, a->atty, l, LW_O_W, N, Q, C);
        lora_linear_backward(m, l, LW_O_W, a->atty, dres, m->d_atty, N);
        op_attention_prefix_backward(m->d_qkv, m->d_atty, a->qkv, a->att, m->last_attn_pos, B, T, c->num_heads,
                                     c->num_kv_heads, c->head_dim, model_attention_scale(c, l), m->attn_scratch,
                                     prefix_layer(m, l));
        if (c->arch == HONE_ARCH_LLAMA)
            op_rope(m->d_qkv, N, T, QKV, c->num_heads + c->num_kv_heads, c->head_dim, m->rope_cos, m->rope_sin,
                    m->last_pos, 1);
        model_linear_backward(m, m->d_ln, g->qkv_w, g->qkv_b, m->d_qkv, a->ln1, l, LW_QKV_W, N, C, QKV);
        lora_linear_backward(m, l, LW_QKV_W, a->ln1, m->d_qkv, m->d_ln, N);
        norm_backward(m, dres, g->ln1_w, g->ln1_b, m->d_ln, m->resid[l], w->ln1_w, a->ln1_mean, a->ln1_rstd, N);
    }
    if (!frozen) op_embedding_backward(m->g.wte, m->g.wpe, dres, m->last_ids, m->last_pos, N, T, C);
    else if (adapter_embedding_grad(m)) /* a trained copy of the embedding (modules_to_save) */
        op_embedding_backward(adapter_embedding_grad(m), NULL, dres, m->last_ids, m->last_pos, N, T, C);
    prompt_backward(m, dres, N, T);
    return HONE_OK;
}
