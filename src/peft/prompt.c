/* Prompt tuning (Lester et al. 2021) and prefix tuning (Li & Liang 2021) with PEFT's semantics and files
 * (ALGORITHMS.md §8; PEFT's PromptEmbedding, PrefixEncoder and PeftModelForCausalLM).
 *
 * Prompt tuning: n virtual token embeddings [n, C] replace the embeddings of the tokens at positions 0..n-1 of each
 * sample (callers put n placeholders there), which is PEFT's cat(prompt, inputs_embeds) with the positions already
 * counted; GPT-2 still adds wpe[p]. Prefix tuning: per layer, n key and value vectors that every query of every
 * sample attends to, not rotated, with the real tokens at positions n, n+1, ... as in Hugging Face with a cache of
 * length n. Its tensor [n, 2·L·kv_dim] is laid out (n, 2L, NKV, HD): layer l's keys in slot 2l, values in 2l+1,
 * PEFT's get_prompt view. With prefix_projection the prefix is computed by PEFT's MLP
 * Linear(H, 2·L·kv_dim)(tanh(Linear(kv_dim, H)(embedding [n, kv_dim]))) and trained through it; the file holds its
 * output (get_prompt_embedding_to_save), which is what PEFT loads for inference, so a loaded projection adapter
 * trains that prefix directly. hone also writes the MLP itself to prefix_encoder.safetensors beside it, so that a
 * checkpoint resumes exactly (PEFT ignores the file).
 *
 * For models with num_key_value_heads PEFT sets token_dim = kv_dim and num_attention_heads = NKV for prefix tuning
 * (utils/other.py _prepare_prompt_learning_config); for GPT-2 they are C and NH, which are the same numbers. */
#include "peft/peft_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PREFIX_ENCODER_FILE "prefix_encoder.safetensors"

static int kv_dim(const hone_model_config *c) { return c->num_kv_heads * c->head_dim; }
static int is_prefix(const hone_adapter *a) { return a->cfg.kind == HONE_PEFT_PREFIX; }

/* ---- adapter_config.json ----------------------------------------------------------------------------------- */

static const char *const init_names[] = {"RANDOM", "TEXT", "SAMPLE_VOCAB"};

hone_status hone_prompt_init_parse(const char *name, hone_prompt_init *out) {
    for (int i = 0; i < 3 && name; i++)
        if (!strcmp(name, init_names[i])) {
            *out = (hone_prompt_init)i;
            return HONE_OK;
        }
    return hone_errorf(HONE_ERR_INVALID, "prompt_tuning_init: unknown value '%s' (expected RANDOM, TEXT or "
                       "SAMPLE_VOCAB)", name ? name : "");
}

/* An integer key that must match what the model needs. */
static hone_status check_int_key(json_t *root, const char *key, int want, const char *what, const char *path) {
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) return HONE_OK;
    if (!json_is_integer(v)) return hone_errorf(HONE_ERR_FORMAT, "%s: \"%s\" must be an integer", path, key);
    if (json_integer_value(v) != want)
        return hone_errorf(HONE_ERR_INVALID, "%s: %s is %lld but the model needs %d (%s): the adapter was made for "
                           "another model", path, key, (long long)json_integer_value(v), want, what);
    return HONE_OK;
}

static hone_status prompt_config_read(hone_adapter *a, json_t *root, const char *path) {
    const hone_model_config *mc = &a->model_cfg;
    json_t *n = json_object_get(root, "num_virtual_tokens");
    if (!json_is_integer(n) || json_integer_value(n) <= 0 || json_integer_value(n) > 1 << 20)
        return hone_errorf(HONE_ERR_FORMAT, "%s: \"num_virtual_tokens\" must be a positive integer", path);
    a->cfg.num_virtual_tokens = (int)json_integer_value(n);
    const int prefix = is_prefix(a);
    HONE_TRY(check_int_key(root, "token_dim", prefix ? kv_dim(mc) : mc->hidden_size,
                           prefix ? "key/value heads × head_dim" : "hidden size", path));
    HONE_TRY(check_int_key(root, "num_layers", mc->num_layers, "layers", path));
    HONE_TRY(check_int_key(root, "num_transformer_submodules", 1, "a decoder-only model", path));
    if (prefix) HONE_TRY(check_int_key(root, "num_attention_heads", mc->num_kv_heads, "key/value heads", path));
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (!strcmp(key, "num_virtual_tokens") || !strcmp(key, "token_dim") || !strcmp(key, "num_layers") ||
            !strcmp(key, "num_transformer_submodules") || !strcmp(key, "num_attention_heads"))
            continue;
        if (!prefix && !strcmp(key, "prompt_tuning_init")) {
            if (hone_prompt_init_parse(json_string_value(v), &a->cfg.init) != HONE_OK)
                return hone_errorf(HONE_ERR_UNSUPPORTED, "%s: prompt_tuning_init must be RANDOM, TEXT or "
                                   "SAMPLE_VOCAB", path);
        } else if (!prefix && !strcmp(key, "prompt_tuning_init_text")) {
            if (json_is_string(v) && !(a->init_text = strdup(json_string_value(v))))
                return hone_errorf(HONE_ERR_NOMEM, "out of memory");
            a->cfg.init_text = a->init_text;
        } else if (!prefix && (!strcmp(key, "tokenizer_name_or_path") || !strcmp(key, "tokenizer_kwargs"))) {
            /* only used to initialise a new adapter from text */
        } else if (prefix && !strcmp(key, "prefix_projection")) {
            a->cfg.prefix_projection = json_is_true(v);
        } else if (prefix && !strcmp(key, "encoder_hidden_size")) {
            if (!json_is_null(v) && !json_is_integer(v))
                return hone_errorf(HONE_ERR_FORMAT, "%s: \"encoder_hidden_size\" must be an integer", path);
            a->cfg.encoder_hidden_size = json_is_integer(v) ? (int)json_integer_value(v) : 0;
        } else if (prefix && !strcmp(key, "init_weights")) {
            /* how PEFT initialises a new prefix; a loaded one has its values */
        } else {
            HONE_TRY(adapter_check_other_key(key, v, path));
        }
    }
    /* as PEFT in inference mode: the file holds the MLP's output, and that prefix is what trains from here */
    a->prefix_folded = a->cfg.prefix_projection;
    return HONE_OK;
}

static hone_status prompt_config_write(const hone_adapter *a, const hone_model_config *mc, json_t *root) {
    const int prefix = is_prefix(a);
    json_object_set_new(root, "num_virtual_tokens", json_integer(a->cfg.num_virtual_tokens));
    json_object_set_new(root, "token_dim", json_integer(a->token_dim));
    json_object_set_new(root, "num_transformer_submodules", json_integer(1));
    json_object_set_new(root, "num_attention_heads", json_integer(prefix ? mc->num_kv_heads : mc->num_heads));
    json_object_set_new(root, "num_layers", json_integer(mc->num_layers));
    json_object_set_new(root, "modules_to_save", json_null());
    if (prefix) {
        json_object_set_new(root, "encoder_hidden_size",
                            json_integer(a->cfg.encoder_hidden_size > 0 ? a->cfg.encoder_hidden_size : a->token_dim));
        json_object_set_new(root, "prefix_projection", json_boolean(a->cfg.prefix_projection));
        json_object_set_new(root, "init_weights", json_null());
        return HONE_OK;
    }
    const int text = a->cfg.init == HONE_PROMPT_INIT_TEXT;
    json_object_set_new(root, "prompt_tuning_init", json_string(init_names[a->cfg.init]));
    /* PEFT refuses a TEXT config without the text and a tokenizer; the base model folder holds the tokenizer */
    json_object_set_new(root, "prompt_tuning_init_text",
                        text && a->init_text ? json_string(a->init_text) : json_null());
    json_object_set_new(root, "tokenizer_name_or_path",
                        text && a->base_model ? json_string(a->base_model) : json_null());
    json_object_set_new(root, "tokenizer_kwargs", json_null());
    return HONE_OK;
}

/* ---- tensors ------------------------------------------------------------------------------------------------ */

/* The prefix MLP's tensors as PEFT names them in PrefixEncoder (prompt_encoder.<adapter>.<name>). */
enum { MLP_EMB, MLP_W1, MLP_B1, MLP_W2, MLP_B2, MLP_COUNT };
static const char *const mlp_names[MLP_COUNT] = {"embedding.weight", "transform.0.weight", "transform.0.bias",
                                                 "transform.2.weight", "transform.2.bias"};

static void mlp_shape(const hone_adapter *a, int i, int64_t shape[2], int *ndim) {
    const int64_t n = a->cfg.num_virtual_tokens, D = a->token_dim, H = a->mlp_hidden, P = a->prefix_dim;
    const int64_t rows[MLP_COUNT] = {n, H, H, P, P}, cols[MLP_COUNT] = {D, D, 1, H, 1};
    shape[0] = rows[i];
    shape[1] = cols[i];
    *ndim = cols[i] == 1 && i != MLP_EMB ? 1 : 2;
}

static hone_status prompt_layout(hone_adapter *a, const hone_model *m) {
    const hone_model_config *c = &m->cfg;
    const int n = a->cfg.num_virtual_tokens, prefix = is_prefix(a);
    if (n <= 0) return hone_errorf(HONE_ERR_INVALID, "num_virtual_tokens must be positive (got %d)", n);
    if (c->arch == HONE_ARCH_GPT2 && n >= c->max_position_embeddings)
        return hone_errorf(HONE_ERR_INVALID, "num_virtual_tokens %d leaves no room in the model's %d positions", n,
                           c->max_position_embeddings);
    if (a->cfg.encoder_hidden_size < 0)
        return hone_errorf(HONE_ERR_INVALID, "encoder_hidden_size must be positive (got %d)",
                           a->cfg.encoder_hidden_size);
    if (!prefix && a->cfg.prefix_projection)
        return hone_errorf(HONE_ERR_INVALID, "prefix_projection is an option of prefix tuning, not prompt tuning");
    a->token_dim = prefix ? kv_dim(c) : c->hidden_size;
    a->prefix_dim = prefix ? 2 * c->num_layers * kv_dim(c) : 0;
    a->mlp_hidden = prefix && a->cfg.prefix_projection && !a->prefix_folded
                        ? (a->cfg.encoder_hidden_size > 0 ? a->cfg.encoder_hidden_size : a->token_dim)
                        : 0;
    size_t sizes[MLP_COUNT], offsets[MLP_COUNT];
    int decay[MLP_COUNT];
    size_t count = 1;
    if (a->mlp_hidden) {
        for (int i = 0; i < MLP_COUNT; i++) {
            int64_t shape[2];
            int ndim;
            mlp_shape(a, i, shape, &ndim);
            sizes[i] = (size_t)shape[0] * (size_t)shape[1];
            decay[i] = ndim == 2;
        }
        count = MLP_COUNT;
    } else {
        sizes[0] = (size_t)n * (size_t)(prefix ? a->prefix_dim : a->token_dim);
        decay[0] = 1;
    }
    HONE_TRY(adapter_alloc_params(a, sizes, decay, count, offsets));
    memcpy(a->mlp_offset, offsets, count * sizeof *offsets);
    if (!prefix) return HONE_OK;
    a->layer_prefix = calloc((size_t)c->num_layers, sizeof *a->layer_prefix);
    if (!a->layer_prefix) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    if (!a->mlp_hidden) {
        a->prefix = a->params + offsets[0];
        return HONE_OK;
    }
    const size_t np = (size_t)n * a->prefix_dim, nh = (size_t)n * a->mlp_hidden;
    a->prefix = hone_alloc(np * sizeof(float));
    a->d_prefix = hone_alloc(np * sizeof(float));
    a->mlp_h = hone_alloc(nh * sizeof(float));
    a->mlp_dh = hone_alloc(nh * sizeof(float));
    if (!a->prefix || !a->d_prefix || !a->mlp_h || !a->mlp_dh)
        return hone_errorf(HONE_ERR_NOMEM, "out of memory for the prefix encoder");
    return HONE_OK;
}

/* U(-1/sqrt(fan_in), 1/sqrt(fan_in)): torch.nn.Linear's default for weight and bias (Kaiming-uniform, a = sqrt(5)). */
static void fill_uniform(hone_rng *rng, float *p, size_t n, int fan_in) {
    const float bound = 1.0f / sqrtf((float)fan_in);
    for (size_t i = 0; i < n; i++) p[i] = (2.0f * hone_rng_uniform(rng) - 1.0f) * bound;
}

static hone_status prompt_init(hone_adapter *a, const hone_model *m, uint64_t seed) {
    const hone_model_config *c = &m->cfg;
    const int n = a->cfg.num_virtual_tokens, C = c->hidden_size;
    hone_rng rng = hone_rng_new(seed, 0x70726d74 /* "prmt" */);
    float *emb = a->params + a->mlp_offset[MLP_EMB];
    if (is_prefix(a) && a->cfg.init != HONE_PROMPT_INIT_RANDOM)
        return hone_errorf(HONE_ERR_INVALID, "prefix tuning starts from random values (prompt_tuning_init TEXT and "
                           "SAMPLE_VOCAB are options of prompt tuning)");
    if (a->cfg.init == HONE_PROMPT_INIT_RANDOM) {
        /* torch.nn.Embedding's default N(0, 1), as PEFT's PromptEmbedding and PrefixEncoder */
        hone_rng_fill_normal(&rng, emb, a->segments[0].size, 1.0f);
        if (a->mlp_hidden) {
            const int64_t D = a->token_dim, H = a->mlp_hidden, P = a->prefix_dim;
            fill_uniform(&rng, a->params + a->mlp_offset[MLP_W1], (size_t)(H * D), (int)D);
            fill_uniform(&rng, a->params + a->mlp_offset[MLP_B1], (size_t)H, (int)D);
            fill_uniform(&rng, a->params + a->mlp_offset[MLP_W2], (size_t)(P * H), (int)H);
            fill_uniform(&rng, a->params + a->mlp_offset[MLP_B2], (size_t)P, (int)H);
        }
        return HONE_OK;
    }
    /* rows of the embedding matrix: the init text's ids cycled or cut to n (TEXT), or random ids (SAMPLE_VOCAB) */
    if (a->cfg.init == HONE_PROMPT_INIT_TEXT && a->cfg.n_init_ids <= 0)
        return hone_errorf(HONE_ERR_INVALID, "prompt_tuning_init TEXT needs the tokenized init text (init_ids)");
    for (int i = 0; i < n; i++) {
        int32_t id = a->cfg.init == HONE_PROMPT_INIT_TEXT ? a->cfg.init_ids[i % a->cfg.n_init_ids]
                                                           : (int32_t)(hone_rng_u64(&rng) % (uint64_t)c->vocab_size);
        if (id < 0 || id >= c->vocab_size)
            return hone_errorf(HONE_ERR_INVALID, "prompt_tuning_init_text: token id %d is outside the vocabulary "
                               "(size %d)", (int)id, c->vocab_size);
        model_matrix_rows(m, m->global_tensor[0], id, 1, emb + (size_t)i * C);
    }
    if (a->cfg.init_text && !(a->init_text = strdup(a->cfg.init_text)))
        return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    a->cfg.init_text = a->init_text;
    return HONE_OK;
}

/* prefix = W2 tanh(W1 emb + b1) + b2, keeping the tanh activations for the backward pass. */
static void mlp_forward(const hone_adapter *a, float *prefix, float *h) {
    const float *p = a->params;
    const size_t *o = a->mlp_offset;
    const int n = a->cfg.num_virtual_tokens, H = a->mlp_hidden;
    op_linear_forward(h, p + o[MLP_EMB], p + o[MLP_W1], p + o[MLP_B1], n, a->token_dim, H);
    for (size_t i = 0; i < (size_t)n * H; i++) h[i] = tanhf(h[i]);
    op_linear_forward(prefix, h, p + o[MLP_W2], p + o[MLP_B2], n, H, a->prefix_dim);
}

/* prefix_encoder.safetensors in the folder of path (NULL when out of memory; free()). */
static char *encoder_path(const char *path) {
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, (size_t)(slash - path)) : strdup(".");
    char *out = dir ? hone_path_join(dir, PREFIX_ENCODER_FILE) : NULL;
    free(dir);
    return out;
}

static hone_status prompt_tensors_read(hone_adapter *a, const hone_st_file *f) {
    const int64_t n = a->cfg.num_virtual_tokens;
    if (!a->mlp_hidden) {
        const int64_t shape[2] = {n, is_prefix(a) ? a->prefix_dim : a->token_dim};
        HONE_TRY(adapter_read_tensor(f, "prompt_embeddings", 2, shape, a->params + a->mlp_offset[0]));
        if (f->n_tensors != 1)
            return hone_errorf(HONE_ERR_FORMAT, "%s: %zu tensors, but a %s adapter holds only prompt_embeddings",
                               f->file.path, f->n_tensors, is_prefix(a) ? "prefix-tuning" : "prompt-tuning");
        return HONE_OK;
    }
    /* resuming a run that trains through the MLP: it is in the file beside adapter_model.safetensors */
    char *path = encoder_path(f->file.path);
    if (!path) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    if (!hone_file_exists(path)) {
        hone_status st = hone_errorf(HONE_ERR_IO, "%s: missing; it holds the prefix MLP that this run trains "
                                     "through (prefix_projection), which adapter_model.safetensors holds only folded",
                                     path);
        free(path);
        return st;
    }
    hone_st_file enc;
    hone_status st = hone_st_open(&enc, path);
    free(path);
    HONE_TRY(st);
    for (int i = 0; i < MLP_COUNT && st == HONE_OK; i++) {
        int64_t shape[2];
        int ndim;
        mlp_shape(a, i, shape, &ndim);
        st = adapter_read_tensor(&enc, mlp_names[i], ndim, shape, a->params + a->mlp_offset[i]);
    }
    hone_st_close(&enc);
    return st;
}

static hone_status prompt_tensors_write(const hone_adapter *a, const char *path) {
    const int n = a->cfg.num_virtual_tokens;
    hone_st_entry e = {"prompt_embeddings", HONE_DTYPE_F32, 2, {n, is_prefix(a) ? a->prefix_dim : a->token_dim}, NULL};
    if (!a->mlp_hidden) {
        e.data = a->params + a->mlp_offset[0];
        return hone_st_write(path, &e, 1);
    }
    /* folded, as PEFT's get_prompt_embedding_to_save; the MLP itself goes beside it for resuming */
    float *prefix = malloc(sizeof(float) * (size_t)n * a->prefix_dim);
    float *h = malloc(sizeof(float) * (size_t)n * a->mlp_hidden);
    hone_status st = prefix && h ? HONE_OK : hone_errorf(HONE_ERR_NOMEM, "out of memory");
    if (st == HONE_OK) {
        mlp_forward(a, prefix, h);
        e.data = prefix;
        st = hone_st_write(path, &e, 1);
    }
    free(prefix);
    free(h);
    char *enc_path = encoder_path(path);
    if (st == HONE_OK && !enc_path) st = hone_errorf(HONE_ERR_NOMEM, "out of memory");
    hone_st_entry enc[MLP_COUNT];
    for (int i = 0; i < MLP_COUNT && st == HONE_OK; i++) {
        memset(&enc[i], 0, sizeof enc[i]);
        enc[i].name = mlp_names[i];
        enc[i].dtype = HONE_DTYPE_F32;
        mlp_shape(a, i, enc[i].shape, &enc[i].ndim);
        enc[i].data = a->params + a->mlp_offset[i];
    }
    if (st == HONE_OK) st = hone_st_write(enc_path, enc, MLP_COUNT);
    free(enc_path);
    return st;
}

/* ---- activations -------------------------------------------------------------------------------------------- */

static hone_status prompt_prepare(hone_adapter *a, const hone_model *m, int B, int T, int training) {
    const hone_model_config *c = &m->cfg;
    const int n = a->cfg.num_virtual_tokens;
    if (!training) a->d_emb = NULL;
    else a->d_emb = a->grads + a->mlp_offset[0];
    if (!is_prefix(a)) return HONE_OK;
    /* the real tokens come after the prefix */
    if (c->arch == HONE_ARCH_GPT2 && T + n > c->max_position_embeddings)
        return hone_errorf(HONE_ERR_INVALID, "sequence length %d plus the %d prefix tokens exceeds the model's %d "
                           "positions (n_positions in config.json)", T, n, c->max_position_embeddings);
    HONE_TRY(model_ensure_rope((hone_model *)m, T + n));
    free(a->token_pos);
    a->token_pos = malloc(sizeof(int32_t) * (size_t)B * T);
    if (!a->token_pos) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    if (!a->mlp_hidden) a->d_prefix = a->d_emb;
    return HONE_OK;
}

static void prompt_free(hone_adapter *a) {
    free(a->init_text);
    free(a->layer_prefix);
    free(a->token_pos);
    if (a->mlp_hidden) {
        hone_free(a->prefix);
        hone_free(a->d_prefix);
        hone_free(a->mlp_h);
        hone_free(a->mlp_dh);
    }
}

const adapter_kind_ops prompt_ops = {prompt_config_read,  prompt_config_write,  prompt_layout, prompt_init,
                                     prompt_tensors_read, prompt_tensors_write, prompt_prepare, prompt_free};

/* ---- hooks of the model passes ------------------------------------------------------------------------------ */

static hone_adapter *prefix_adapter(const hone_model *m) {
    return m->adapter && m->adapter->cfg.kind == HONE_PEFT_PREFIX ? m->adapter : NULL;
}

int prefix_tokens(const hone_model *m) {
    const hone_adapter *a = prefix_adapter(m);
    return a ? a->cfg.num_virtual_tokens : 0;
}

const int32_t *prompt_forward_begin(hone_model *m, const int32_t *pos, int B, int T) {
    hone_adapter *a = prefix_adapter(m);
    if (!a) return pos;
    const int n = a->cfg.num_virtual_tokens;
    if (a->mlp_hidden) {
        mlp_forward(a, a->prefix, a->mlp_h);
        /* the attention backward accumulates into it; the MLP backward then adds it to the gradients */
        if (m->training) memset(a->d_prefix, 0, sizeof(float) * (size_t)n * a->prefix_dim);
    }
    for (int i = 0; i < B * T; i++) a->token_pos[i] = (pos ? pos[i] : i % T) + n;
    return a->token_pos;
}

void prompt_embed(const hone_model *m, float *x, const int32_t *pos, int N, int T) {
    const hone_adapter *a = m->adapter;
    if (!a || a->cfg.kind != HONE_PEFT_PROMPT) return;
    const int C = m->cfg.hidden_size, n = a->cfg.num_virtual_tokens;
    const float *emb = a->params + a->mlp_offset[0];
#pragma omp parallel for schedule(static)
    for (int r = 0; r < N; r++) {
        const int p = pos ? pos[r] : r % T;
        if (p >= n) continue;
        float *o = x + (size_t)r * C;
        const float *e = emb + (size_t)p * C, *wpe = m->w.wpe ? m->w.wpe + (size_t)p * C : NULL;
        for (int i = 0; i < C; i++) o[i] = wpe ? e[i] + wpe[i] : e[i];
    }
}

const op_prefix *prefix_layer(hone_model *m, int layer) {
    hone_adapter *a = prefix_adapter(m);
    if (!a) return NULL;
    const int D = a->token_dim;
    op_prefix *p = &a->layer_prefix[layer];
    p->k = a->prefix + (size_t)(2 * layer) * D;
    p->v = a->prefix + (size_t)(2 * layer + 1) * D;
    p->dk = m->training && a->d_prefix ? a->d_prefix + (size_t)(2 * layer) * D : NULL;
    p->dv = m->training && a->d_prefix ? a->d_prefix + (size_t)(2 * layer + 1) * D : NULL;
    p->n = a->cfg.num_virtual_tokens;
    p->stride = a->prefix_dim;
    return p;
}

void prompt_backward(hone_model *m, const float *dx, int N, int T) {
    hone_adapter *a = m->adapter;
    if (!a || !a->d_emb || a->cfg.kind == HONE_PEFT_LORA) return;
    const int n = a->cfg.num_virtual_tokens;
    if (a->cfg.kind == HONE_PEFT_PROMPT) {
        /* d prompt[p] += dx of every token at position p < n; split by columns so the sums keep their order */
        const int C = m->cfg.hidden_size;
        const int32_t *pos = m->last_pos;
#pragma omp parallel for schedule(static)
        for (int i = 0; i < C; i++)
            for (int r = 0; r < N; r++) {
                const int p = pos ? pos[r] : r % T;
                if (p < n) a->d_emb[(size_t)p * C + i] += dx[(size_t)r * C + i];
            }
        return;
    }
    if (!a->mlp_hidden) return; /* the attention backward wrote straight into the gradients */
    float *g = a->grads;
    const size_t *o = a->mlp_offset;
    const int H = a->mlp_hidden;
    op_linear_backward(a->mlp_dh, g + o[MLP_W2], g + o[MLP_B2], a->d_prefix, a->mlp_h, a->params + o[MLP_W2], n, H,
                       a->prefix_dim, 0);
    for (size_t i = 0; i < (size_t)n * H; i++) a->mlp_dh[i] *= 1.0f - a->mlp_h[i] * a->mlp_h[i];
    op_linear_backward(g + o[MLP_EMB], g + o[MLP_W1], g + o[MLP_B1], a->mlp_dh, a->params + o[MLP_EMB],
                       a->params + o[MLP_W1], n, a->token_dim, H, 1);
}

int prefix_fill_cache(const hone_model *m, float *const *k, float *const *v, int max_len) {
    hone_adapter *a = prefix_adapter(m);
    if (!a) return 0;
    const hone_model_config *c = &m->cfg;
    const int n = a->cfg.num_virtual_tokens, HD = c->head_dim;
    if (a->mlp_hidden) mlp_forward(a, a->prefix, a->mlp_h);
    for (int l = 0; l < c->num_layers; l++) {
        const op_prefix *p = prefix_layer((hone_model *)m, l);
        for (int h = 0; h < c->num_kv_heads; h++)
            for (int i = 0; i < n; i++) {
                const size_t src = (size_t)i * p->stride + (size_t)h * HD, dst = ((size_t)h * max_len + i) * HD;
                memcpy(k[l] + dst, p->k + src, sizeof(float) * HD);
                memcpy(v[l] + dst, p->v + src, sizeof(float) * HD);
            }
    }
    return n;
}
