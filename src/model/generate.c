/* Inference with a KV cache, and sampling (temperature, top-k, top-p). */
#include "model/model_internal.h"
#include "peft/peft_internal.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

struct hone_kv_cache {
    int max_len, len, chunk;
    int planned_threads; /* scratch holds one row of scores per thread */
    float *mem;
    float **k, **v;  /* per layer [NKV, max_len, HD] */
    int32_t *pos;    /* [chunk] positions of the rows being fed */
    float *x, *ln, *qkv, *atty, *fc, *act, *scratch;
};

hone_status hone_kv_cache_new(hone_kv_cache **out, const hone_model *m, int max_len) {
    const hone_model_config *c = &m->cfg;
    *out = NULL;
    if (max_len <= 0) return hone_errorf(HONE_ERR_INVALID, "KV cache length must be positive");
    max_len += prefix_tokens(m); /* prefix tuning: the prefix takes the first slots */
    if (c->arch == HONE_ARCH_GPT2 && max_len > c->max_position_embeddings)
        return hone_errorf(HONE_ERR_INVALID, "%d tokens exceed the model's %d positions", max_len,
                           c->max_position_embeddings);
    if (c->sliding_window > 0 && max_len > c->sliding_window)
        return hone_errorf(HONE_ERR_UNSUPPORTED, "%d tokens exceed the sliding window of %d (not supported yet)",
                           max_len, c->sliding_window);
    HONE_TRY(model_ensure_rope((hone_model *)m, max_len));
    hone_kv_cache *kv = calloc(1, sizeof *kv);
    if (!kv) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    kv->max_len = max_len;
    kv->planned_threads = omp_get_max_threads();
    kv->chunk = max_len < 256 ? max_len : 256;
    const size_t L = c->num_layers, per = (size_t)c->num_kv_heads * max_len * c->head_dim, ch = kv->chunk;
    const size_t C = c->hidden_size, QKV = model_qkv_dim(c), Q = (size_t)c->num_heads * c->head_dim;
    const size_t total = 2 * L * per + ch * (2 * C + QKV + Q + model_fc_dim(c) + c->intermediate_size) +
                         (size_t)omp_get_max_threads() * max_len;
    kv->mem = hone_alloc(total * sizeof(float));
    kv->k = calloc(L, sizeof(float *));
    kv->v = calloc(L, sizeof(float *));
    kv->pos = calloc(ch, sizeof(int32_t));
    if (!kv->mem || !kv->k || !kv->v || !kv->pos) {
        hone_kv_cache_free(kv);
        return hone_errorf(HONE_ERR_NOMEM, "out of memory for a KV cache of %d tokens", max_len);
    }
    float *p = kv->mem;
    for (size_t l = 0; l < L; l++) {
        kv->k[l] = p, p += per;
        kv->v[l] = p, p += per;
    }
    kv->x = p, p += ch * C;
    kv->ln = p, p += ch * C;
    kv->qkv = p, p += ch * QKV;
    kv->atty = p, p += ch * Q;
    kv->fc = p, p += ch * model_fc_dim(c);
    kv->act = p, p += ch * c->intermediate_size;
    kv->scratch = p;
    kv->len = prefix_fill_cache(m, kv->k, kv->v, max_len);
    *out = kv;
    return HONE_OK;
}

void hone_kv_cache_free(hone_kv_cache *kv) {
    if (!kv) return;
    hone_free(kv->mem);
    free(kv->k);
    free(kv->v);
    free(kv->pos);
    free(kv);
}

int hone_kv_cache_length(const hone_kv_cache *kv) { return kv->len; }

static void norm_rows(const hone_model *m, float *out, const float *x, const float *w, const float *b, int n) {
    if (m->cfg.arch == HONE_ARCH_GPT2)
        op_layernorm_forward(out, NULL, NULL, x, w, b, n, m->cfg.hidden_size, m->cfg.norm_eps);
    else op_rmsnorm_forward(out, NULL, x, w, n, m->cfg.hidden_size, m->cfg.norm_eps);
}

/* Feeds n <= kv->chunk tokens; leaves the final residual rows in kv->x. */
static void step_chunk(hone_model *m, hone_kv_cache *kv, const int32_t *ids, int n) {
    const hone_model_config *c = &m->cfg;
    const int C = c->hidden_size, QKV = model_qkv_dim(c), Q = c->num_heads * c->head_dim, HD = c->head_dim;
    const int F = model_fc_dim(c), IM = c->intermediate_size, pos0 = kv->len;
    for (int i = 0; i < n; i++) kv->pos[i] = pos0 + i;
    model_embedding_forward(m, kv->x, ids, kv->pos, n, 1);
    prompt_embed(m, kv->x, kv->pos, n, 1);
    for (int l = 0; l < c->num_layers; l++) {
        const hone_layer_weights *w = &m->w.layers[l];
        norm_rows(m, kv->ln, kv->x, w->ln1_w, w->ln1_b, n);
        model_linear_forward(m, kv->qkv, kv->ln, l, LW_QKV_W, n, C, QKV);
        lora_linear_forward(m, l, LW_QKV_W, kv->ln, kv->qkv, n, 0);
        if (c->arch == HONE_ARCH_LLAMA)
            op_rope(kv->qkv, n, 1, QKV, c->num_heads + c->num_kv_heads, HD, m->rope_cos, m->rope_sin, kv->pos, 0);
        for (int i = 0; i < n; i++)
            for (int h = 0; h < c->num_kv_heads; h++) {
                const float *row = kv->qkv + (size_t)i * QKV;
                size_t dst = ((size_t)h * kv->max_len + pos0 + i) * HD;
                memcpy(kv->k[l] + dst, row + Q + (size_t)h * HD, sizeof(float) * HD);
                memcpy(kv->v[l] + dst, row + Q + (size_t)(c->num_kv_heads + h) * HD, sizeof(float) * HD);
            }
        op_attention_cached(kv->atty, kv->qkv, QKV, kv->k[l], kv->v[l], n, pos0, kv->max_len, c->num_heads,
                            c->num_kv_heads, HD, model_attention_scale(c, l), kv->scratch);
        model_linear_forward(m, kv->ln, kv->atty, l, LW_O_W, n, Q, C);
        lora_linear_forward(m, l, LW_O_W, kv->atty, kv->ln, n, 0);
        op_add_inplace(kv->x, kv->ln, (size_t)n * C);
        norm_rows(m, kv->ln, kv->x, w->ln2_w, w->ln2_b, n);
        model_linear_forward(m, kv->fc, kv->ln, l, LW_FC_W, n, C, F);
        lora_linear_forward(m, l, LW_FC_W, kv->ln, kv->fc, n, 0);
        if (c->arch == HONE_ARCH_GPT2) op_activation_forward(kv->act, kv->fc, (size_t)n * IM, model_op_activation(c));
        else op_glu_forward(kv->act, kv->fc, n, IM, model_op_activation(c));
        model_linear_forward(m, kv->ln, kv->act, l, LW_PROJ_W, n, IM, C);
        lora_linear_forward(m, l, LW_PROJ_W, kv->act, kv->ln, n, 0);
        op_add_inplace(kv->x, kv->ln, (size_t)n * C);
    }
    kv->len += n;
}

hone_status hone_model_step(hone_model *m, hone_kv_cache *kv, const int32_t *ids, int n, float *out_logits) {
    const hone_model_config *c = &m->cfg;
    if (n <= 0) return hone_errorf(HONE_ERR_INVALID, "no tokens to feed");
    if (omp_get_max_threads() > kv->planned_threads)
        return hone_errorf(HONE_ERR_INVALID, "the thread count grew after the KV cache was made; make a new one");
    if (kv->len + n > kv->max_len)
        return hone_errorf(HONE_ERR_INVALID, "%d tokens do not fit the KV cache (%d of %d used)", n, kv->len,
                           kv->max_len);
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= c->vocab_size)
            return hone_errorf(HONE_ERR_INVALID, "token id %d is outside the vocabulary (size %d)", ids[i],
                               c->vocab_size);
    int last = 0;
    for (int done = 0; done < n; done += last) {
        last = n - done < kv->chunk ? n - done : kv->chunk;
        step_chunk(m, kv, ids + done, last);
    }
    const int C = c->hidden_size;
    float *row = kv->x + (size_t)(last - 1) * C;
    norm_rows(m, kv->ln, row, m->w.lnf_w, m->w.lnf_b, 1);
    model_lm_head_forward(m, out_logits, kv->ln, 1);
    return HONE_OK;
}

/* ---- sampling ----------------------------------------------------------------------------------------------- */

typedef struct {
    float p;
    int32_t id;
} prob_entry;

static int by_prob_desc(const void *a, const void *b) {
    const prob_entry *x = a, *y = b;
    if (x->p != y->p) return x->p < y->p ? 1 : -1;
    return x->id - y->id;
}

/* Temperature, then top-k, then top-p (the order transformers applies its logits warpers in). */
static int32_t sample_token(float *logits, int V, const hone_sampling *s, hone_rng *rng, prob_entry *work) {
    int32_t best = 0;
    for (int v = 1; v < V; v++)
        if (logits[v] > logits[best]) best = v;
    if (s->temperature <= 0) return best;
    float mx = logits[best];
    double sum = 0;
    for (int v = 0; v < V; v++) {
        work[v].id = v;
        work[v].p = expf((logits[v] - mx) / s->temperature);
        sum += work[v].p;
    }
    for (int v = 0; v < V; v++) work[v].p = (float)(work[v].p / sum);
    qsort(work, (size_t)V, sizeof *work, by_prob_desc);
    int keep = V;
    if (s->top_k > 0 && s->top_k < keep) keep = s->top_k;
    double total = 0;
    for (int i = 0; i < keep; i++) total += work[i].p;
    if (s->top_p < 1) {
        /* nucleus over what top-k kept, renormalised (transformers applies its warpers one after another) */
        double cum = 0;
        for (int i = 0; i < keep; i++) {
            cum += work[i].p;
            if (cum >= s->top_p * total) {
                keep = i + 1;
                total = cum;
                break;
            }
        }
    }
    double u = hone_rng_uniform(rng) * total, acc = 0;
    for (int i = 0; i < keep; i++) {
        acc += work[i].p;
        if (u < acc) return work[i].id;
    }
    return work[keep - 1].id;
}

hone_status hone_generate(hone_model *m, const int32_t *prompt, int n_prompt, const hone_sampling *s,
                          int32_t *out, int *n_out, hone_token_callback cb, void *user) {
    const int V = m->cfg.vocab_size;
    *n_out = 0;
    if (n_prompt <= 0) return hone_errorf(HONE_ERR_INVALID, "the prompt is empty (give at least one token)");
    if (s->max_new_tokens < 0 || s->top_k < 0 || s->top_p < 0 || s->top_p > 1 || s->temperature < 0)
        return hone_errorf(HONE_ERR_INVALID,
                           "invalid sampling settings (need max_new_tokens >= 0, temperature >= 0, top_k >= 0, "
                           "0 <= top_p <= 1)");
    if (s->max_new_tokens == 0) return HONE_OK;
    hone_kv_cache *kv;
    HONE_TRY(hone_kv_cache_new(&kv, m, n_prompt + s->max_new_tokens));
    float *logits = malloc(sizeof(float) * V);
    prob_entry *work = malloc(sizeof(prob_entry) * V);
    hone_status st = logits && work ? HONE_OK : hone_errorf(HONE_ERR_NOMEM, "out of memory");
    hone_rng rng = hone_rng_new(s->seed, 0x73616d70 /* "samp" */);
    if (st == HONE_OK) st = hone_model_step(m, kv, prompt, n_prompt, logits);
    while (st == HONE_OK && *n_out < s->max_new_tokens) {
        int32_t id = sample_token(logits, V, s, &rng, work);
        out[(*n_out)++] = id;
        if (cb && cb(id, user)) break;
        if (s->stop_at_eos && hone_model_is_eos(m, id)) break;
        if (*n_out < s->max_new_tokens) st = hone_model_step(m, kv, &id, 1, logits);
    }
    free(logits);
    free(work);
    hone_kv_cache_free(kv);
    return st;
}
