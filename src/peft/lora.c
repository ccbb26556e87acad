/* LoRA (Hu et al. 2021) with PEFT's semantics: y = W x + scale · B A dropout(x) on the targeted linear modules,
 * scale = alpha / r (alpha / sqrt(r) with rsLoRA), A [r, in] Kaiming-uniform, B [out, r] zero.
 *
 * The model fuses q/k/v (and gate/up) into one linear, so a module is a row range of a fused output: the LoRA path
 * writes into those rows through the GEMM's output stride, without copies. Rows are processed in blocks of
 * LORA_ROWS so dropout(x) and the rank-r intermediate of inference need only a small fixed scratch; a training
 * forward keeps h = dropout(x) A^T [N, r] per module for the backward pass, which regenerates the dropout mask
 * from its key instead of storing it. */
#include "peft/peft_internal.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { LORA_ROWS = 256, LORA_SLOTS = 7 };

/* ---- the modules of a model ---------------------------------------------------------------------------------- */

/* Output width of the fused linear `weight`, i.e. the row stride of its output. */
static int fused_out(const hone_model_config *c, int weight) {
    switch (weight) {
    case LW_QKV_W: return model_qkv_dim(c);
    case LW_FC_W: return model_fc_dim(c);
    default: return c->hidden_size; /* LW_O_W, LW_PROJ_W */
    }
}

/* Every linear module of layer l in Hugging Face order; returns how many. */
static int layer_modules(const hone_model_config *c, int l, lora_module out[LORA_SLOTS]) {
    const int C = c->hidden_size, IM = c->intermediate_size, Q = c->num_heads * c->head_dim;
    const int K = c->num_kv_heads * c->head_dim;
    static const struct {
        const char *fmt;
        int weight;
    } gpt2[] = {{"transformer.h.%d.attn.c_attn", LW_QKV_W},
                {"transformer.h.%d.attn.c_proj", LW_O_W},
                {"transformer.h.%d.mlp.c_fc", LW_FC_W},
                {"transformer.h.%d.mlp.c_proj", LW_PROJ_W}},
      llama[] = {{"model.layers.%d.self_attn.q_proj", LW_QKV_W}, {"model.layers.%d.self_attn.k_proj", LW_QKV_W},
                 {"model.layers.%d.self_attn.v_proj", LW_QKV_W}, {"model.layers.%d.self_attn.o_proj", LW_O_W},
                 {"model.layers.%d.mlp.gate_proj", LW_FC_W},     {"model.layers.%d.mlp.up_proj", LW_FC_W},
                 {"model.layers.%d.mlp.down_proj", LW_PROJ_W}};
    const int is_gpt2 = c->arch == HONE_ARCH_GPT2;
    const int n = is_gpt2 ? 4 : 7;
    /* row ranges within the fused outputs, in the same order */
    const int gpt2_rows[4][3] = {{0, Q + 2 * K, C}, {0, C, Q}, {0, IM, C}, {0, C, IM}};
    const int llama_rows[7][3] = {{0, Q, C}, {Q, K, C}, {Q + K, K, C}, {0, C, Q}, {0, IM, C}, {IM, IM, C}, {0, C, IM}};
    for (int s = 0; s < n; s++) {
        lora_module *mod = &out[s];
        memset(mod, 0, sizeof *mod);
        snprintf(mod->name, sizeof mod->name, is_gpt2 ? gpt2[s].fmt : llama[s].fmt, l);
        mod->layer = l;
        mod->weight = is_gpt2 ? gpt2[s].weight : llama[s].weight;
        mod->slot = s;
        const int *rows = is_gpt2 ? gpt2_rows[s] : llama_rows[s];
        mod->row0 = rows[0];
        mod->out = rows[1];
        mod->in = rows[2];
    }
    return n;
}

/* PEFT's rule: the target is the module's full name or its last dot-separated component(s). */
static int name_matches(const char *name, const char *target, size_t target_len) {
    size_t n = strlen(name);
    if (n == target_len && !strncmp(name, target, target_len)) return 1;
    return n > target_len && name[n - target_len - 1] == '.' && !strncmp(name + n - target_len, target, target_len);
}

/* PEFT's default targets for a model type (TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING). */
static const char *default_targets(const hone_model_config *c) {
    if (!strcmp(c->model_type, "gpt2")) return "c_attn";
    if (!strcmp(c->model_type, "llama") || !strcmp(c->model_type, "mistral") || !strcmp(c->model_type, "qwen2"))
        return "q_proj,v_proj";
    return NULL;
}

/* The distinct last name components of the linear modules, comma-separated ("all-linear" as PEFT resolves it). */
static void linear_base_names(const hone_model_config *c, char *out, size_t size) {
    lora_module mods[LORA_SLOTS];
    int n = layer_modules(c, 0, mods);
    out[0] = '\0';
    for (int s = 0; s < n; s++) {
        const char *base = strrchr(mods[s].name, '.') + 1;
        int seen = 0;
        for (int k = 0; k < s && !seen; k++) seen = !strcmp(strrchr(mods[k].name, '.') + 1, base);
        if (seen) continue;
        size_t len = strlen(out);
        snprintf(out + len, size - len, "%s%s", len ? "," : "", base);
    }
}

/* A target that names no linear module: unsupported when it names another kind of module, else not found. */
static hone_status target_error(const hone_model_config *c, const char *target, size_t len) {
    static const char *const others[] = {"lm_head", "model.embed_tokens", "transformer.wte", "transformer.wpe",
                                         "model.norm", "transformer.ln_f"};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++)
        if (name_matches(others[i], target, len))
            return hone_errorf(HONE_ERR_UNSUPPORTED, "LoRA target '%.*s' is not a linear layer of the transformer "
                               "blocks; hone supports LoRA on those only", (int)len, target);
    char names[160];
    linear_base_names(c, names, sizeof names);
    lora_module mods[LORA_SLOTS];
    layer_modules(c, 0, mods);
    return hone_errorf(HONE_ERR_INVALID, "LoRA target module '%.*s' matches no module of this %s model; its linear "
                       "modules are %s (full names like %s)", (int)len, target, c->model_type, names, mods[0].name);
}

/* ---- layout and initialisation ------------------------------------------------------------------------------- */

/* One modules_to_save copy serves the embedding and lm_head (a tied model with ensure_weight_tying). */
static int shared_copy(const hone_adapter *a) {
    return a->has_embed_copy && a->has_head_copy && a->embed_copy == a->head_copy;
}

/* Hugging Face name of the token embedding module. */
static const char *embedding_name(const hone_model_config *c) {
    return c->arch == HONE_ARCH_GPT2 ? "transformer.wte" : "model.embed_tokens";
}

/* modules_to_save: which copies exist. Each name must be the token embedding or lm_head (PEFT's suffix match). A
 * tied model with ensure_weight_tying gets one copy for both, as PEFT's _add_modules_to_save_to_tie; otherwise each
 * listed module gets its own copy (PEFT's default, which unties them). Rewrites the list without spaces. */
static hone_status resolve_modules_to_save(hone_adapter *a, const hone_model_config *c) {
    const char *list = a->cfg.modules_to_save;
    if (!list) return HONE_OK;
    char *clean = calloc(strlen(list) + 1, 1);
    if (!clean) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    for (const char *t = list;;) {
        const char *end = strchr(t, ',');
        size_t len = end ? (size_t)(end - t) : strlen(t);
        while (len && t[0] == ' ') t++, len--;
        while (len && t[len - 1] == ' ') len--;
        if (len && name_matches(embedding_name(c), t, len)) a->has_embed_copy = 1;
        else if (len && name_matches("lm_head", t, len)) a->has_head_copy = 1;
        else if (len) {
            free(clean);
            return hone_errorf(HONE_ERR_UNSUPPORTED, "modules_to_save '%.*s': hone trains full copies of the token "
                               "embedding (%s) and lm_head only", (int)len, t, embedding_name(c));
        }
        if (len) sprintf(clean + strlen(clean), "%s%.*s", *clean ? "," : "", (int)len, t);
        if (!end) break;
        t = end + 1;
    }
    free((char *)a->cfg.modules_to_save);
    a->cfg.modules_to_save = *clean ? clean : NULL;
    if (!*clean) free(clean);
    if (c->tie_word_embeddings && a->cfg.ensure_weight_tying && (a->has_embed_copy || a->has_head_copy))
        a->has_embed_copy = a->has_head_copy = 1;
    return HONE_OK;
}

static hone_status lora_layout(hone_adapter *a, const hone_model *m) {
    const hone_model_config *c = &m->cfg;
    hone_peft_config *pc = &a->cfg;
    if (pc->r <= 0) return hone_errorf(HONE_ERR_INVALID, "lora_r must be positive (got %d)", pc->r);
    if (!(pc->dropout >= 0 && pc->dropout < 1))
        return hone_errorf(HONE_ERR_INVALID, "lora_dropout must be in [0, 1) (got %g)", (double)pc->dropout);
    if (!isfinite(pc->alpha)) return hone_errorf(HONE_ERR_INVALID, "lora_alpha must be a finite number");
    const char *targets = pc->target_modules;
    char resolved[160];
    if (!targets) {
        targets = default_targets(c);
        if (!targets)
            return hone_errorf(HONE_ERR_INVALID, "no default LoRA target modules for model type '%s'; set "
                               "lora_target_modules", c->model_type);
    } else if (!strcasecmp(targets, "all-linear")) {
        linear_base_names(c, resolved, sizeof resolved);
        targets = resolved;
    }
    /* which of the modules each target matches: every target must match one */
    const int L = c->num_layers;
    lora_module *all = calloc((size_t)L * LORA_SLOTS, sizeof *all);
    char *chosen = calloc((size_t)L * LORA_SLOTS, 1);
    if (!all || !chosen) {
        free(all);
        free(chosen);
        return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    }
    int per_layer = 0;
    for (int l = 0; l < L; l++) per_layer = layer_modules(c, l, all + (size_t)l * LORA_SLOTS);
    /* the list as it will be saved: names without the spaces around them */
    char *list = calloc(strlen(targets) + 1, 1);
    hone_status st = list ? HONE_OK : hone_errorf(HONE_ERR_NOMEM, "out of memory");
    for (const char *t = targets; st == HONE_OK;) {
        const char *end = strchr(t, ',');
        const char *next = end ? end + 1 : t + strlen(t);
        size_t len = (size_t)((end ? end : next) - t);
        while (len && t[0] == ' ') t++, len--;
        while (len && t[len - 1] == ' ') len--;
        int hits = 0;
        for (int l = 0; l < L; l++)
            for (int s = 0; s < per_layer; s++)
                if (len && name_matches(all[(size_t)l * LORA_SLOTS + s].name, t, len)) {
                    chosen[(size_t)l * LORA_SLOTS + s] = 1;
                    hits++;
                }
        if (!hits) st = len ? target_error(c, t, len) : hone_errorf(HONE_ERR_INVALID, "empty LoRA target module name "
                                                                    "in '%s'", targets);
        else sprintf(list + strlen(list), "%s%.*s", *list ? "," : "", (int)len, t);
        if (!end) break;
        t = next;
    }
    int n = 0;
    for (size_t i = 0; i < (size_t)L * LORA_SLOTS; i++) n += chosen[i];
    if (st == HONE_OK && !n) st = hone_errorf(HONE_ERR_INVALID, "no LoRA target modules given");
    if (st == HONE_OK) {
        free((char *)pc->target_modules);
        pc->target_modules = list;
        list = NULL;
    }
    free(list);
    size_t *sizes = NULL, *offsets = NULL;
    int *decay = NULL;
    if (st == HONE_OK) st = resolve_modules_to_save(a, c);
    /* one copy when tied (both flags set by ensure_weight_tying), else one per listed module */
    const int shared = c->tie_word_embeddings && a->has_embed_copy && a->has_head_copy && a->cfg.ensure_weight_tying;
    const size_t n_copies = shared ? 1 : (size_t)a->has_embed_copy + (size_t)a->has_head_copy;
    if (st == HONE_OK) {
        a->modules = calloc((size_t)n, sizeof *a->modules);
        a->lora_layer_start = calloc((size_t)L + 1, sizeof(int));
        sizes = calloc(2 * (size_t)n + 2, sizeof *sizes);
        offsets = calloc(2 * (size_t)n + 2, sizeof *offsets);
        decay = calloc(2 * (size_t)n + 2, sizeof *decay);
        if (!a->modules || !a->lora_layer_start || !sizes || !offsets || !decay)
            st = hone_errorf(HONE_ERR_NOMEM, "out of memory");
    }
    int max_in = 0;
    if (st == HONE_OK) {
        for (int l = 0, k = 0; l < L; l++) {
            a->lora_layer_start[l] = k;
            for (int s = 0; s < per_layer; s++)
                if (chosen[(size_t)l * LORA_SLOTS + s]) {
                    lora_module *mod = &a->modules[k];
                    *mod = all[(size_t)l * LORA_SLOTS + s];
                    sizes[2 * k] = (size_t)pc->r * mod->in;
                    sizes[2 * k + 1] = (size_t)mod->out * pc->r;
                    decay[2 * k] = decay[2 * k + 1] = 1; /* the Trainer decays every weight but biases and norms */
                    if (mod->in > max_in) max_in = mod->in;
                    k++;
                }
            a->lora_layer_start[l + 1] = k;
        }
        a->n_modules = n;
        for (size_t i = 2 * (size_t)n; i < 2 * (size_t)n + n_copies; i++) {
            sizes[i] = (size_t)c->vocab_size * c->hidden_size;
            decay[i] = 1; /* the Trainer decays embeddings and lm_head too */
        }
        st = adapter_alloc_params(a, sizes, decay, 2 * (size_t)n + n_copies, offsets);
    }
    if (st == HONE_OK) {
        for (int k = 0; k < n; k++) {
            a->modules[k].a = offsets[2 * k];
            a->modules[k].b = offsets[2 * k + 1];
        }
        a->embed_copy = a->has_embed_copy ? offsets[2 * n] : 0;
        a->head_copy = a->has_head_copy ? offsets[2 * n + (a->has_embed_copy && !shared)] : 0;
        a->scale = pc->use_rslora ? pc->alpha / sqrtf((float)pc->r) : pc->alpha / (float)pc->r;
        a->lora_max_in = max_in;
        a->lora_scratch = hone_alloc(sizeof(float) * LORA_ROWS * ((size_t)max_in + pc->r) + LORA_ROWS * (size_t)max_in);
        if (!a->lora_scratch) st = hone_errorf(HONE_ERR_NOMEM, "out of memory");
    }
    free(all);
    free(chosen);
    free(sizes);
    free(offsets);
    free(decay);
    return st;
}

/* PEFT's reset_lora_parameters: A ~ kaiming_uniform_(a = sqrt(5)) = U(-1/sqrt(in), 1/sqrt(in)), B = 0. */
static hone_status lora_init(hone_adapter *a, const hone_model *m, uint64_t seed) {
    if (!(a->cfg.alpha > 0))
        return hone_errorf(HONE_ERR_INVALID, "lora_alpha must be positive (got %g): the LoRA path is scaled by "
                           "alpha / r", (double)a->cfg.alpha);
    hone_rng rng = hone_rng_new(seed, 0x6c6f7261 /* "lora" */);
    for (int k = 0; k < a->n_modules; k++) {
        const lora_module *mod = &a->modules[k];
        float *A = a->params + mod->a;
        const float bound = 1.0f / sqrtf((float)mod->in);
        for (size_t i = 0; i < (size_t)a->cfg.r * mod->in; i++) A[i] = bound * (2.0f * hone_rng_uniform(&rng) - 1.0f);
        memset(a->params + mod->b, 0, sizeof(float) * (size_t)mod->out * a->cfg.r);
    }
    /* modules_to_save start as copies of the base's modules (PEFT's deepcopy) */
    const int64_t V = m->cfg.vocab_size;
    if (a->has_embed_copy) model_matrix_rows(m, m->global_tensor[0], 0, V, a->params + a->embed_copy);
    if (a->has_head_copy && !shared_copy(a))
        model_matrix_rows(m, model_lm_head_tensor(m), 0, V, a->params + a->head_copy);
    return HONE_OK;
}

/* ---- passes -------------------------------------------------------------------------------------------------- */

/* The dropout stream of a module: element e of its input is kept when uniform(key, e) >= p. */
static uint64_t dropout_stream(uint64_t key, const lora_module *mod) {
    return hone_rng_new(key, (uint64_t)mod->layer * LORA_SLOTS + (uint64_t)mod->slot).key;
}

/* SplitMix64's finaliser, as hone_rng_u64 uses it; inline here so that the mask loop vectorises. */
static inline uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* out[rows, in] = dropout(x rows [r0, r0 + rows)), kept elements scaled by 1 / (1 - p) as torch does; keep (may be
 * NULL) receives the mask. Element e is kept when its 24-bit uniform, bits of the hash of (stream, e / 2), is >= p:
 * a pure function of the key, the module and e, so backward regenerates it and a resumed run draws the same. */
static void dropout_rows(float *out, uint8_t *keep, const float *x, int rows, int in, int r0, uint64_t stream,
                         float p) {
    const float keep_scale = 1.0f / (1.0f - p);
    const uint32_t threshold = (uint32_t)ceil((double)p * 16777216.0); /* u >= p  <=>  bits >= threshold */
#pragma omp parallel for schedule(static)
    for (int i = 0; i < rows; i++) {
        const uint64_t e0 = ((uint64_t)r0 + i) * (uint64_t)in;
        const float *xr = x + (size_t)i * in;
        float *o = out + (size_t)i * in;
        uint8_t *kr = keep ? keep + (size_t)i * in : NULL;
        for (int j = 0; j < in; j++) {
            const uint64_t e = e0 + (uint64_t)j;
            const uint64_t h = mix64(stream ^ mix64((e >> 1) + 0x9e3779b97f4a7c15ULL));
            const int kept = ((uint32_t)(h >> (e & 1 ? 0 : 32)) & 0xffffffu) >= threshold;
            o[j] = kept ? xr[j] * keep_scale : 0.0f;
            if (kr) kr[j] = (uint8_t)kept;
        }
    }
}

void lora_linear_forward(hone_model *m, int layer, int weight, const float *x, float *y, int N, int save) {
    hone_adapter *a = m->adapter;
    if (!a || a->cfg.kind != HONE_PEFT_LORA) return;
    const int r = a->cfg.r, ldy = fused_out(&m->cfg, weight);
    const float p = a->cfg.dropout;
    /* the key the backward pass must regenerate the masks with */
    if (save) a->lora_forward_key = p > 0 ? a->dropout_key : 0;
    const uint64_t key = save ? a->lora_forward_key : 0;
    for (int k = a->lora_layer_start[layer]; k < a->lora_layer_start[layer + 1]; k++) {
        const lora_module *mod = &a->modules[k];
        if (mod->weight != weight) continue;
        const float *A = a->params + mod->a, *B = a->params + mod->b;
        const int in = mod->in;
        const uint64_t stream = key ? dropout_stream(key, mod) : 0;
        for (int r0 = 0; r0 < N; r0 += LORA_ROWS) {
            const int rows = N - r0 < LORA_ROWS ? N - r0 : LORA_ROWS;
            const float *xin = x + (size_t)r0 * in;
            float *xd = a->lora_scratch, *h = save ? mod->h + (size_t)r0 * r : xd + (size_t)LORA_ROWS * a->lora_max_in;
            if (key) {
                dropout_rows(xd, NULL, xin, rows, in, r0, stream, p);
                xin = xd;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, r, in, 1.0f, xin, in, A, in, 0.0f, h, r);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, mod->out, r, a->scale, h, r, B, r, 1.0f,
                        y + (size_t)r0 * ldy + mod->row0, ldy);
        }
    }
}

/* With y += s·h B^T, h = x' A^T, x' = dropout(x): dB += s·dy^T h, dh = s·dy B, dA += dh^T x', dx += dropout'(dh A). */
void lora_linear_backward(hone_model *m, int layer, int weight, const float *x, const float *dy, float *dx, int N) {
    hone_adapter *a = m->adapter;
    if (!a || a->cfg.kind != HONE_PEFT_LORA) return;
    const int r = a->cfg.r, ldy = fused_out(&m->cfg, weight);
    const float p = a->cfg.dropout, keep_scale = 1.0f / (1.0f - p);
    const uint64_t key = a->lora_forward_key;
    for (int k = a->lora_layer_start[layer]; k < a->lora_layer_start[layer + 1]; k++) {
        const lora_module *mod = &a->modules[k];
        if (mod->weight != weight) continue;
        const float *A = a->params + mod->a, *B = a->params + mod->b;
        float *dA = a->grads + mod->a, *dB = a->grads + mod->b;
        const int in = mod->in, out = mod->out;
        const uint64_t stream = key ? dropout_stream(key, mod) : 0;
        for (int r0 = 0; r0 < N; r0 += LORA_ROWS) {
            const int rows = N - r0 < LORA_ROWS ? N - r0 : LORA_ROWS;
            const float *dyb = dy + (size_t)r0 * ldy + mod->row0, *h = mod->h + (size_t)r0 * r;
            const float *xin = x + (size_t)r0 * in;
            float *xd = a->lora_scratch, *dh = xd + (size_t)LORA_ROWS * a->lora_max_in, *dxb = dx + (size_t)r0 * in;
            uint8_t *keep = (uint8_t *)(dh + (size_t)LORA_ROWS * r);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, r, out, a->scale, dyb, ldy, B, r, 0.0f, dh, r);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, r, rows, a->scale, dyb, ldy, h, r, 1.0f, dB, r);
            if (key) {
                dropout_rows(xd, keep, xin, rows, in, r0, stream, p);
                xin = xd;
            }
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, r, in, rows, 1.0f, dh, r, xin, in, 1.0f, dA, in);
            if (!key) {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, in, r, 1.0f, dh, r, A, in, 1.0f, dxb, in);
                continue;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, in, r, 1.0f, dh, r, A, in, 0.0f, xd, in);
#pragma omp parallel for schedule(static)
            for (int i = 0; i < rows; i++)
                for (int j = 0; j < in; j++)
                    if (keep[(size_t)i * in + j]) dxb[(size_t)i * in + j] += xd[(size_t)i * in + j] * keep_scale;
        }
    }
}

static const hone_adapter *attached_lora(const hone_model *m) {
    return m->adapter && m->adapter->cfg.kind == HONE_PEFT_LORA ? m->adapter : NULL;
}

const float *adapter_embedding(const hone_model *m) {
    const hone_adapter *a = attached_lora(m);
    return a && a->has_embed_copy ? a->params + a->embed_copy : m->w.wte;
}

const float *adapter_lm_head(const hone_model *m) {
    const hone_adapter *a = attached_lora(m);
    return a && a->has_head_copy ? a->params + a->head_copy : m->w.lm_head;
}

float *adapter_embedding_grad(const hone_model *m) {
    const hone_adapter *a = attached_lora(m);
    return a && a->has_embed_copy && a->grads ? a->grads + a->embed_copy : NULL;
}

float *adapter_lm_head_grad(const hone_model *m) {
    const hone_adapter *a = attached_lora(m);
    return a && a->has_head_copy && a->grads ? a->grads + a->head_copy : NULL;
}

hone_status lora_merge(hone_model *m, const hone_adapter *a) {
    if (m->n_frozen)
        return hone_errorf(HONE_ERR_UNSUPPORTED, "cannot merge into a frozen base (base_dtype bf16 or auto: its "
                           "matrices are read-only); merge into the model loaded in fp32, as hone merge-adapter does");
    const size_t VC = (size_t)m->cfg.vocab_size * m->cfg.hidden_size;
    /* a tied model has one tensor for both: only one shared copy can go into it */
    if (m->cfg.tie_word_embeddings && (a->has_embed_copy || a->has_head_copy) && !shared_copy(a))
        return hone_errorf(HONE_ERR_UNSUPPORTED, "the adapter's modules_to_save (%s) hold an embedding and lm_head that "
                           "differ, but this model ties them (tie_word_embeddings): the merged model cannot hold "
                           "both; train with ensure_weight_tying (hone's default) to merge", a->cfg.modules_to_save);
    if (a->has_embed_copy) memcpy(m->w.wte, a->params + a->embed_copy, sizeof(float) * VC);
    if (a->has_head_copy && !m->cfg.tie_word_embeddings)
        memcpy(m->w.lm_head, a->params + a->head_copy, sizeof(float) * VC);
    for (int k = 0; k < a->n_modules; k++) {
        const lora_module *mod = &a->modules[k];
        float *W = m->params + m->tensors[m->layer_tensor[mod->layer][mod->weight]].offset + (size_t)mod->row0 * mod->in;
        /* W [out, in] (rows of the fused weight, internal [out, in] layout for every architecture) += s·B A */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, mod->out, mod->in, a->cfg.r, a->scale,
                    a->params + mod->b, a->cfg.r, a->params + mod->a, mod->in, 1.0f, W, mod->in);
    }
    return HONE_OK;
}

static hone_status lora_prepare(hone_adapter *a, const hone_model *m, int B, int T, int training) {
    (void)m;
    const size_t N = (size_t)B * T;
    hone_free(a->lora_act);
    a->lora_act = NULL;
    a->lora_act_rows = 0;
    for (int k = 0; k < a->n_modules; k++) a->modules[k].h = NULL;
    if (!training) return HONE_OK;
    a->lora_act = hone_alloc(sizeof(float) * N * a->cfg.r * (size_t)a->n_modules);
    if (!a->lora_act) return hone_errorf(HONE_ERR_NOMEM, "out of memory for LoRA activations");
    for (int k = 0; k < a->n_modules; k++) a->modules[k].h = a->lora_act + (size_t)k * N * a->cfg.r;
    a->lora_act_rows = N;
    return HONE_OK;
}

static void lora_free(hone_adapter *a) {
    free(a->modules);
    free(a->lora_layer_start);
    hone_free(a->lora_act);
    hone_free(a->lora_scratch);
}

/* ---- files --------------------------------------------------------------------------------------------------- */

/* The file keys of the modules_to_save copies (PEFT strips "modules_to_save.default"):
 * base_model.model.model.embed_tokens.weight and base_model.model.lm_head.weight. A shared copy is written under
 * both, as PEFT does (it clones aliased tensors for safetensors), and read from the embedding's. */
static int copy_keys(const hone_adapter *a, char keys[2][160]) {
    int n = 0;
    if (a->has_embed_copy) adapter_key(keys[n++], sizeof keys[0], embedding_name(&a->model_cfg), ".weight");
    if (a->has_head_copy) adapter_key(keys[n++], sizeof keys[0], "lm_head", ".weight");
    return n;
}

static hone_status lora_tensors_read(hone_adapter *a, const hone_st_file *f) {
    char key[160], copies[2][160];
    const int n_copies = copy_keys(a, copies);
    const int64_t shape_vc[2] = {a->model_cfg.vocab_size, a->model_cfg.hidden_size};
    if (a->has_embed_copy) HONE_TRY(adapter_read_tensor(f, copies[0], 2, shape_vc, a->params + a->embed_copy));
    if (a->has_head_copy && !shared_copy(a))
        HONE_TRY(adapter_read_tensor(f, copies[n_copies - 1], 2, shape_vc, a->params + a->head_copy));
    for (int k = 0; k < a->n_modules; k++) {
        const lora_module *mod = &a->modules[k];
        const int64_t shape_a[2] = {a->cfg.r, mod->in}, shape_b[2] = {mod->out, a->cfg.r};
        adapter_key(key, sizeof key, mod->name, ".lora_A.weight");
        HONE_TRY(adapter_read_tensor(f, key, 2, shape_a, a->params + mod->a));
        adapter_key(key, sizeof key, mod->name, ".lora_B.weight");
        HONE_TRY(adapter_read_tensor(f, key, 2, shape_b, a->params + mod->b));
    }
    /* a tensor this layout does not read would silently change nothing: name it */
    for (size_t i = 0; i < f->n_tensors; i++) {
        const char *name = f->tensors[i].name;
        int used = 0;
        for (int k = 0; k < a->n_modules && !used; k++)
            for (int ab = 0; ab < 2 && !used; ab++)
                for (int dflt = 0; dflt < 2 && !used; dflt++) {
                    snprintf(key, sizeof key, "base_model.model.%s.lora_%c%s.weight", a->modules[k].name, "AB"[ab],
                             dflt ? ".default" : "");
                    used = !strcmp(key, name);
                }
        for (int k = 0; k < n_copies && !used; k++) {
            const char *dot = strrchr(copies[k], '.');
            snprintf(key, sizeof key, "%.*s.default.weight", (int)(dot - copies[k]), copies[k]);
            used = !strcmp(copies[k], name) || !strcmp(key, name);
        }
        if (!used)
            return hone_errorf(HONE_ERR_UNSUPPORTED, "%s: tensor '%s' is not a lora_A/lora_B weight of the target "
                               "modules in adapter_config.json (%s) nor a copy of its modules_to_save (%s); extra "
                               "modules, biases and DoRA magnitudes are not supported", f->file.path, name,
                               a->cfg.target_modules, a->cfg.modules_to_save ? a->cfg.modules_to_save : "none");
    }
    return HONE_OK;
}

static hone_status lora_tensors_write(const hone_adapter *a, const char *path) {
    char copies[2][160];
    const int n_copies = copy_keys(a, copies);
    hone_st_entry *e = calloc(2 * (size_t)a->n_modules + 2, sizeof *e);
    char (*names)[160] = calloc(2 * (size_t)a->n_modules, sizeof *names);
    if (!e || !names) {
        free(e);
        free(names);
        return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    }
    for (int k = 0; k < a->n_modules; k++) {
        const lora_module *mod = &a->modules[k];
        for (int ab = 0; ab < 2; ab++) {
            hone_st_entry *x = &e[2 * k + ab];
            adapter_key(names[2 * k + ab], sizeof names[0], mod->name, ab ? ".lora_B.weight" : ".lora_A.weight");
            x->name = names[2 * k + ab];
            x->dtype = HONE_DTYPE_F32;
            x->ndim = 2;
            x->shape[0] = ab ? mod->out : a->cfg.r;
            x->shape[1] = ab ? a->cfg.r : mod->in;
            x->data = a->params + (ab ? mod->b : mod->a);
        }
    }
    for (int k = 0; k < n_copies; k++) {
        hone_st_entry *x = &e[2 * a->n_modules + k];
        x->name = copies[k];
        x->dtype = HONE_DTYPE_F32;
        x->ndim = 2;
        x->shape[0] = a->model_cfg.vocab_size;
        x->shape[1] = a->model_cfg.hidden_size;
        x->data = a->params + (k == n_copies - 1 && a->has_head_copy ? a->head_copy : a->embed_copy);
    }
    hone_status st = hone_st_write(path, e, 2 * (size_t)a->n_modules + (size_t)n_copies);
    free(e);
    free(names);
    return st;
}

static hone_status read_number(json_t *root, const char *key, const char *path, double *out) {
    json_t *v = json_object_get(root, key);
    if (!v) return HONE_OK;
    if (!json_is_number(v)) return hone_errorf(HONE_ERR_FORMAT, "%s: \"%s\" must be a number", path, key);
    *out = json_number_value(v);
    return HONE_OK;
}

/* A JSON list of module names (key, for messages) into *out, comma-joined as the config holds lists. */
static hone_status read_name_list(json_t *v, const char *path, const char *key, const char **out) {
    if (!json_is_array(v) || !json_array_size(v))
        return hone_errorf(HONE_ERR_FORMAT, "%s: %s must be a non-empty list of module names", path, key);
    size_t len = 1, i;
    json_t *t;
    json_array_foreach(v, i, t) {
        if (!json_is_string(t) || !json_string_length(t) || strchr(json_string_value(t), ','))
            return hone_errorf(HONE_ERR_FORMAT, "%s: %s[%zu] is not a module name", path, key, i);
        len += json_string_length(t) + 1;
    }
    char *list = calloc(len, 1);
    if (!list) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    json_array_foreach(v, i, t) {
        if (i) strcat(list, ",");
        strcat(list, json_string_value(t));
    }
    *out = list;
    return HONE_OK;
}

/* The JSON list of a comma-joined list of names. */
static json_t *name_list_json(const char *list) {
    json_t *arr = json_array();
    for (const char *t = list; arr && *t;) {
        const char *end = strchr(t, ',');
        size_t len = end ? (size_t)(end - t) : strlen(t);
        json_array_append_new(arr, json_stringn(t, len));
        t = end ? end + 1 : t + len;
    }
    return arr;
}

/* target_modules: a list of names, "all-linear", or null (the model type's default). */
static hone_status read_targets(hone_adapter *a, json_t *v, const char *path) {
    if (!v || json_is_null(v)) return HONE_OK;
    if (json_is_string(v)) {
        if (strcasecmp(json_string_value(v), "all-linear"))
            return hone_errorf(HONE_ERR_UNSUPPORTED, "%s: target_modules \"%s\" is a regular expression, which hone "
                               "does not support; list the module names instead", path, json_string_value(v));
        a->cfg.target_modules = strdup("all-linear");
        return a->cfg.target_modules ? HONE_OK : hone_errorf(HONE_ERR_NOMEM, "out of memory");
    }
    return read_name_list(v, path, "target_modules", &a->cfg.target_modules);
}

static hone_status lora_config_read(hone_adapter *a, json_t *root, const char *path) {
    json_t *r = json_object_get(root, "r");
    if (!json_is_integer(r)) return hone_errorf(HONE_ERR_FORMAT, "%s: \"r\" must be an integer", path);
    a->cfg.r = (int)json_integer_value(r);
    double alpha = a->cfg.alpha, dropout = a->cfg.dropout;
    HONE_TRY(read_number(root, "lora_alpha", path, &alpha));
    HONE_TRY(read_number(root, "lora_dropout", path, &dropout));
    a->cfg.alpha = (float)alpha;
    a->cfg.dropout = (float)dropout;
    HONE_TRY(read_targets(a, json_object_get(root, "target_modules"), path));
    json_t *saved = json_object_get(root, "modules_to_save");
    if (saved && !json_is_null(saved)) HONE_TRY(read_name_list(saved, path, "modules_to_save", &a->cfg.modules_to_save));
    /* absent in PEFT before 0.18, whose tied models then got separate copies */
    a->cfg.ensure_weight_tying = json_is_true(json_object_get(root, "ensure_weight_tying"));
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (!strcmp(key, "r") || !strcmp(key, "lora_alpha") || !strcmp(key, "lora_dropout") ||
            !strcmp(key, "target_modules") || !strcmp(key, "modules_to_save") || !strcmp(key, "ensure_weight_tying"))
            continue;
        if (!strcmp(key, "bias")) {
            if (!json_is_string(v) || strcmp(json_string_value(v), "none"))
                return hone_errorf(HONE_ERR_UNSUPPORTED, "%s: bias \"%s\" is not supported (only \"none\": hone "
                                   "trains no biases)", path, json_is_string(v) ? json_string_value(v) : "?");
        } else if (!strcmp(key, "use_rslora")) {
            a->cfg.use_rslora = json_is_true(v);
        } else if (!strcmp(key, "init_lora_weights")) {
            /* initialisations that rewrite the base weights (PiSSA, OLoRA, LoftQ, CorDA) need that base */
            if (!json_is_boolean(v) && !(json_is_string(v) && !strcmp(json_string_value(v), "gaussian")))
                return hone_errorf(HONE_ERR_UNSUPPORTED, "%s: init_lora_weights \"%s\" changes the base weights, "
                                   "which hone does not support; convert the adapter to plain LoRA (PEFT: "
                                   "path_initial_model_for_weight_conversion)", path,
                                   json_is_string(v) ? json_string_value(v) : "?");
        } else if (!strcmp(key, "fan_in_fan_out") || !strcmp(key, "layers_pattern") || !strcmp(key, "megatron_core") ||
                   !strcmp(key, "loftq_config") || !strcmp(key, "qalora_group_size")) {
            /* layout hints hone derives from the model, or settings of options that are off (layers_to_transform,
             * megatron_config, init_lora_weights "loftq", use_qalora are checked on their own) */
        } else {
            /* layers_to_transform, rank/alpha_pattern, use_dora, layer_replication, ... */
            HONE_TRY(adapter_check_other_key(key, v, path));
        }
    }
    return HONE_OK;
}

static hone_status lora_config_write(const hone_adapter *a, const hone_model_config *mc, json_t *root) {
    json_t *targets = name_list_json(a->cfg.target_modules);
    json_t *saved = a->cfg.modules_to_save ? name_list_json(a->cfg.modules_to_save) : json_null();
    if (!targets || !saved) {
        json_decref(targets);
        json_decref(saved);
        return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    }
    /* the keys PEFT 0.13 writes for LoRA */
    json_object_set_new(root, "r", json_integer(a->cfg.r));
    const float alpha = a->cfg.alpha; /* an int in PEFT's LoraConfig: integral values are written as integers */
    json_object_set_new(root, "lora_alpha", alpha == floorf(alpha) && fabsf(alpha) < 1e9f
                                                ? json_integer((json_int_t)alpha) : adapter_json_number(alpha));
    json_object_set_new(root, "lora_dropout", adapter_json_number(a->cfg.dropout));
    json_object_set_new(root, "target_modules", targets);
    json_object_set_new(root, "bias", json_string("none"));
    json_object_set_new(root, "fan_in_fan_out", json_boolean(mc->arch == HONE_ARCH_GPT2)); /* Conv1D [in, out] */
    json_object_set_new(root, "use_rslora", json_boolean(a->cfg.use_rslora));
    json_object_set_new(root, "modules_to_save", saved);
    /* PEFT >= 0.18's key; written only where it matters, so files without copies stay PEFT 0.13's */
    if (a->cfg.modules_to_save)
        json_object_set_new(root, "ensure_weight_tying", json_boolean(a->cfg.ensure_weight_tying));
    json_object_set_new(root, "init_lora_weights", json_true());
    json_object_set_new(root, "layers_to_transform", json_null());
    json_object_set_new(root, "layers_pattern", json_null());
    json_object_set_new(root, "rank_pattern", json_object());
    json_object_set_new(root, "alpha_pattern", json_object());
    json_object_set_new(root, "megatron_config", json_null());
    json_object_set_new(root, "megatron_core", json_string("megatron.core"));
    json_object_set_new(root, "loftq_config", json_object());
    json_object_set_new(root, "use_dora", json_false());
    json_object_set_new(root, "layer_replication", json_null());
    return HONE_OK;
}

const adapter_kind_ops lora_ops = {lora_config_read, lora_config_write, lora_layout,   lora_init,
                                   lora_tensors_read, lora_tensors_write, lora_prepare, lora_free};
