/* Hugging Face config.json → hone_model_config, presets, and back to config.json. Every field that changes
 * the math is read; anything this engine cannot honour is an error naming the field. */
#include "hone/model.h"
#include "model/model_internal.h"

#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    json_t *root;
    const char *path;
} cfg_reader;

/* Integer field; `fallback` when absent or null; error when present with another type. */
static hone_status get_int(const cfg_reader *r, const char *key, int fallback, int *out) {
    json_t *v = json_object_get(r->root, key);
    if (!v || json_is_null(v)) {
        *out = fallback;
        return HONE_OK;
    }
    if (!json_is_integer(v))
        return hone_errorf(HONE_ERR_FORMAT, "%s: field \"%s\" must be an integer", r->path, key);
    json_int_t x = json_integer_value(v);
    if (x < -1 || x > 1000000000)
        return hone_errorf(HONE_ERR_FORMAT, "%s: field \"%s\" = %lld is out of range", r->path, key, (long long)x);
    *out = (int)x;
    return HONE_OK;
}

static hone_status get_float(const cfg_reader *r, const char *key, float fallback, float *out) {
    json_t *v = json_object_get(r->root, key);
    if (!v || json_is_null(v)) {
        *out = fallback;
        return HONE_OK;
    }
    if (!json_is_number(v)) return hone_errorf(HONE_ERR_FORMAT, "%s: field \"%s\" must be a number", r->path, key);
    *out = (float)json_number_value(v);
    return HONE_OK;
}

static hone_status get_bool(const cfg_reader *r, const char *key, int fallback, int *out) {
    json_t *v = json_object_get(r->root, key);
    if (!v || json_is_null(v)) {
        *out = fallback;
        return HONE_OK;
    }
    if (!json_is_boolean(v)) return hone_errorf(HONE_ERR_FORMAT, "%s: field \"%s\" must be true or false", r->path, key);
    *out = json_is_true(v);
    return HONE_OK;
}

static const char *get_string(const cfg_reader *r, const char *key) {
    json_t *v = json_object_get(r->root, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* A token id, or a list of them: *out the first (-1 when absent), others[0, *n_others) the rest (others NULL: only
 * the first is kept, as for bos_token_id). */
static hone_status get_token_ids(const cfg_reader *r, const char *key, int *out, int *others, int *n_others) {
    json_t *v = json_object_get(r->root, key);
    *out = -1;
    if (n_others) *n_others = 0;
    if (!v || json_is_null(v)) return HONE_OK;
    const size_t n = json_is_array(v) ? json_array_size(v) : 1;
    if (others && n > 1 + HONE_MAX_OTHER_EOS_IDS)
        return hone_errorf(HONE_ERR_UNSUPPORTED, "%s: field \"%s\" lists %zu ids; hone keeps at most %d", r->path, key,
                           n, 1 + HONE_MAX_OTHER_EOS_IDS);
    for (size_t i = 0; i < n && (i == 0 || others); i++) {
        json_t *e = json_is_array(v) ? json_array_get(v, i) : v;
        if (!json_is_integer(e) || json_integer_value(e) < INT32_MIN || json_integer_value(e) > INT32_MAX)
            return hone_errorf(HONE_ERR_FORMAT, "%s: field \"%s\" must be a token id or a list of them", r->path, key);
        if (i == 0)
            *out = (int)json_integer_value(e);
        else
            others[(*n_others)++] = (int)json_integer_value(e);
    }
    return HONE_OK;
}

/* ids[0, n) of path's eos_token_id list all lie inside the vocabulary. */
static hone_status eos_ids_in_vocabulary(const char *path, const int *ids, int n, int vocab_size) {
    for (int i = 0; i < n; i++)
        if (ids[i] >= vocab_size)
            return hone_errorf(HONE_ERR_FORMAT, "%s: eos_token_id %d lies outside the vocabulary (size %d)", path,
                               ids[i], vocab_size);
    return HONE_OK;
}

hone_status model_read_generation_eos(const char *path, int vocab_size, int *ids, int *n) {
    *n = 0;
    char *text = NULL;
    if (access(path, F_OK) != 0) return HONE_OK;
    HONE_TRY(hone_file_read(path, &text, NULL));
    json_error_t jerr;
    json_t *root = json_loads(text, 0, &jerr);
    free(text);
    if (!root) return hone_errorf(HONE_ERR_FORMAT, "%s:%d: invalid JSON: %s", path, jerr.line, jerr.text);
    if (!json_is_object(root)) {
        json_decref(root);
        return hone_errorf(HONE_ERR_FORMAT, "%s: expected a JSON object", path);
    }
    const cfg_reader r = {root, path};
    hone_status st = get_token_ids(&r, "eos_token_id", &ids[0], ids + 1, n);
    if (st == HONE_OK && ids[0] >= 0)
        *n += 1;
    else if (st == HONE_OK)
        *n = 0;
    if (st == HONE_OK) st = eos_ids_in_vocabulary(path, ids, *n, vocab_size);
    json_decref(root);
    return st;
}

static hone_status parse_activation(const cfg_reader *r, const char *key, const char *name, hone_activation *out) {
    if (!name) return hone_errorf(HONE_ERR_FORMAT, "%s: field \"%s\" is missing", r->path, key);
    if (!strcmp(name, "gelu_new") || !strcmp(name, "gelu_pytorch_tanh") || !strcmp(name, "gelu_fast"))
        *out = HONE_ACT_GELU_TANH;
    else if (!strcmp(name, "gelu")) *out = HONE_ACT_GELU_ERF;
    else if (!strcmp(name, "relu")) *out = HONE_ACT_RELU;
    else if (!strcmp(name, "silu") || !strcmp(name, "swish")) *out = HONE_ACT_SILU;
    else
        return hone_errorf(HONE_ERR_UNSUPPORTED,
                           "%s: %s \"%s\" is not supported yet (supported: gelu_new, gelu_pytorch_tanh, gelu_fast, "
                           "gelu, relu, silu)",
                           r->path, key, name);
    return HONE_OK;
}

static hone_status warn_dropout(const cfg_reader *r, const char *const *keys) {
    for (const char *const *k = keys; *k; k++) {
        float p = 0;
        HONE_TRY(get_float(r, *k, 0.0f, &p));
        if (p != 0.0f)
            hone_warn("%s: %s = %g: hone trains without dropout (not supported yet); the math is that of "
                      "model.eval()",
                      r->path, *k, (double)p);
    }
    return HONE_OK;
}

static hone_status parse_gpt2(const cfg_reader *r, hone_model_config *c) {
    c->arch = HONE_ARCH_GPT2;
    HONE_TRY(get_int(r, "n_embd", 768, &c->hidden_size));
    HONE_TRY(get_int(r, "n_layer", 12, &c->num_layers));
    HONE_TRY(get_int(r, "n_head", 12, &c->num_heads));
    HONE_TRY(get_int(r, "n_positions", 1024, &c->max_position_embeddings));
    HONE_TRY(get_int(r, "n_inner", 4 * c->hidden_size, &c->intermediate_size));
    HONE_TRY(get_float(r, "layer_norm_epsilon", 1e-5f, &c->norm_eps));
    const char *act = get_string(r, "activation_function");
    HONE_TRY(parse_activation(r, "activation_function", act ? act : "gelu_new", &c->activation));
    HONE_TRY(get_bool(r, "scale_attn_weights", 1, &c->scale_attn_weights));
    HONE_TRY(get_bool(r, "scale_attn_by_inverse_layer_idx", 0, &c->scale_attn_by_inverse_layer_idx));
    HONE_TRY(get_bool(r, "tie_word_embeddings", 1, &c->tie_word_embeddings));
    c->num_kv_heads = c->num_heads;
    if (c->num_heads <= 0 || c->hidden_size % c->num_heads)
        return hone_errorf(HONE_ERR_FORMAT, "%s: n_embd %d is not divisible by n_head %d", r->path, c->hidden_size,
                           c->num_heads);
    c->head_dim = c->hidden_size / c->num_heads;
    c->qkv_bias = c->o_bias = c->mlp_bias = 1;
    static const char *const dropouts[] = {"attn_pdrop", "resid_pdrop", "embd_pdrop", NULL};
    return warn_dropout(r, dropouts);
}

static hone_status parse_llama_family(const cfg_reader *r, hone_model_config *c) {
    c->arch = HONE_ARCH_LLAMA;
    HONE_TRY(get_int(r, "hidden_size", 4096, &c->hidden_size));
    HONE_TRY(get_int(r, "num_hidden_layers", 32, &c->num_layers));
    HONE_TRY(get_int(r, "num_attention_heads", 32, &c->num_heads));
    HONE_TRY(get_int(r, "num_key_value_heads", c->num_heads, &c->num_kv_heads));
    if (c->num_heads <= 0)
        return hone_errorf(HONE_ERR_FORMAT, "%s: num_attention_heads must be positive", r->path);
    HONE_TRY(get_int(r, "head_dim", c->hidden_size / c->num_heads, &c->head_dim));
    HONE_TRY(get_int(r, "intermediate_size", 11008, &c->intermediate_size));
    HONE_TRY(get_int(r, "max_position_embeddings", 2048, &c->max_position_embeddings));
    HONE_TRY(get_float(r, "rms_norm_eps", 1e-6f, &c->norm_eps));
    HONE_TRY(get_float(r, "rope_theta", 10000.0f, &c->rope_theta));
    const char *act = get_string(r, "hidden_act");
    HONE_TRY(parse_activation(r, "hidden_act", act ? act : "silu", &c->activation));
    HONE_TRY(get_bool(r, "tie_word_embeddings", 0, &c->tie_word_embeddings));
    c->scale_attn_weights = 1;
    if (!strcmp(c->model_type, "qwen2")) {
        c->qkv_bias = 1;
        int use_sliding = 0;
        HONE_TRY(get_bool(r, "use_sliding_window", 0, &use_sliding));
        if (use_sliding) HONE_TRY(get_int(r, "sliding_window", 0, &c->sliding_window));
    } else {
        int attention_bias = 0;
        HONE_TRY(get_bool(r, "attention_bias", 0, &attention_bias));
        c->qkv_bias = c->o_bias = attention_bias;
        HONE_TRY(get_bool(r, "mlp_bias", 0, &c->mlp_bias));
        /* transformers' MistralConfig defaults to a 4096 window; an explicit null means none */
        if (!strcmp(c->model_type, "mistral"))
            HONE_TRY(get_int(r, "sliding_window", json_object_get(r->root, "sliding_window") ? 0 : 4096,
                             &c->sliding_window));
    }
    json_t *scaling = json_object_get(r->root, "rope_scaling");
    if (scaling && !json_is_null(scaling)) {
        json_t *type = json_object_get(scaling, "rope_type");
        if (!type) type = json_object_get(scaling, "type");
        const char *name = json_is_string(type) ? json_string_value(type) : "?";
        if (strcmp(name, "default") != 0)
            return hone_errorf(HONE_ERR_UNSUPPORTED, "%s: rope_scaling type \"%s\" is not supported yet", r->path,
                               name);
    }
    float partial = 1.0f;
    HONE_TRY(get_float(r, "partial_rotary_factor", 1.0f, &partial));
    if (partial != 1.0f)
        return hone_errorf(HONE_ERR_UNSUPPORTED, "%s: partial_rotary_factor %g is not supported yet", r->path,
                           (double)partial);
    if (c->num_kv_heads <= 0 || c->num_heads % c->num_kv_heads)
        return hone_errorf(HONE_ERR_FORMAT, "%s: num_attention_heads %d is not a multiple of num_key_value_heads %d",
                           r->path, c->num_heads, c->num_kv_heads);
    if (c->head_dim <= 0 || c->head_dim % 2)
        return hone_errorf(HONE_ERR_FORMAT, "%s: head_dim %d must be positive and even for rotary embeddings",
                           r->path, c->head_dim);
    static const char *const dropouts[] = {"attention_dropout", NULL};
    return warn_dropout(r, dropouts);
}

hone_status hone_model_config_parse(hone_model_config *c, const char *json_text, const char *path) {
    memset(c, 0, sizeof *c);
    json_error_t jerr;
    json_t *root = json_loads(json_text, 0, &jerr);
    if (!root) return hone_errorf(HONE_ERR_FORMAT, "%s:%d: invalid JSON: %s", path, jerr.line, jerr.text);
    cfg_reader r = {root, path};
    hone_status st = HONE_OK;
    const char *type = get_string(&r, "model_type");
    if (!json_is_object(root)) st = hone_errorf(HONE_ERR_FORMAT, "%s: expected a JSON object", path);
    else if (!type)
        st = hone_errorf(HONE_ERR_FORMAT, "%s: field \"model_type\" is %s", path,
                         json_object_get(root, "model_type") ? "not a string" : "missing");
    else if (strlen(type) >= sizeof c->model_type)
        st = hone_errorf(HONE_ERR_UNSUPPORTED, "%s: model_type \"%.40s...\" is not supported", path, type);
    if (st == HONE_OK) {
        strcpy(c->model_type, type);
        if (!strcmp(type, "gpt2")) st = parse_gpt2(&r, c);
        else if (!strcmp(type, "llama") || !strcmp(type, "mistral") || !strcmp(type, "qwen2"))
            st = parse_llama_family(&r, c);
        else
            st = hone_errorf(HONE_ERR_UNSUPPORTED,
                             "%s: model_type \"%s\" is not supported yet (supported: gpt2, llama, mistral, qwen2)",
                             path, type);
    }
    if (st == HONE_OK) st = get_int(&r, "vocab_size", 0, &c->vocab_size);
    if (st == HONE_OK) st = get_token_ids(&r, "bos_token_id", &c->bos_token_id, NULL, NULL);
    if (st == HONE_OK) st = get_token_ids(&r, "eos_token_id", &c->eos_token_id, c->other_eos_ids, &c->n_other_eos_ids);
    if (st == HONE_OK) st = eos_ids_in_vocabulary(path, c->other_eos_ids, c->n_other_eos_ids, c->vocab_size);
    if (st == HONE_OK && !(c->norm_eps > 0 && isfinite(c->norm_eps)))
        st = hone_errorf(HONE_ERR_FORMAT, "%s: the norm epsilon must be a positive number, not %g", path,
                         (double)c->norm_eps);
    if (st == HONE_OK && c->arch == HONE_ARCH_LLAMA && !(c->rope_theta > 0 && isfinite(c->rope_theta)))
        st = hone_errorf(HONE_ERR_FORMAT, "%s: rope_theta must be a positive number, not %g", path,
                         (double)c->rope_theta);
    if (st == HONE_OK && (c->bos_token_id >= c->vocab_size || c->eos_token_id >= c->vocab_size))
        st = hone_errorf(HONE_ERR_FORMAT, "%s: bos_token_id %d / eos_token_id %d lie outside the vocabulary (size %d)",
                         path, c->bos_token_id, c->eos_token_id, c->vocab_size);
    if (st == HONE_OK && (c->vocab_size <= 0 || c->hidden_size <= 0 || c->num_layers <= 0 ||
                          c->intermediate_size <= 0 || c->max_position_embeddings <= 0))
        st = hone_errorf(HONE_ERR_FORMAT,
                         "%s: vocab_size, hidden size, layer count, intermediate size and maximum positions must all "
                         "be positive",
                         path);
    json_decref(root);
    return st;
}

typedef struct {
    const char *name;
    const char *model_type;
    int vocab, hidden, layers, heads, kv_heads, intermediate, max_pos, tied;
} preset;

static const preset presets[] = {
    {"gpt2-124m", "gpt2", 50257, 768, 12, 12, 12, 3072, 1024, 1},
    {"gpt2-355m", "gpt2", 50257, 1024, 24, 16, 16, 4096, 1024, 1},
    {"smollm-135m", "llama", 49152, 576, 30, 9, 3, 1536, 2048, 1},
    {"smollm-360m", "llama", 49152, 960, 32, 15, 5, 2560, 2048, 1},
    {"qwen2-0.5b", "qwen2", 151936, 896, 24, 14, 2, 4864, 32768, 1},
    {"gpt2-tiny", "gpt2", 256, 64, 2, 4, 4, 256, 256, 1},
    {"llama-tiny", "llama", 256, 64, 2, 4, 2, 176, 256, 1},
};

const char *hone_model_config_preset_names(void) {
    return "gpt2-124m, gpt2-355m, smollm-135m, smollm-360m, qwen2-0.5b, gpt2-tiny, llama-tiny";
}

hone_status hone_model_config_preset(hone_model_config *c, const char *name) {
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++) {
        const preset *p = &presets[i];
        if (strcmp(p->name, name) != 0) continue;
        memset(c, 0, sizeof *c);
        strcpy(c->model_type, p->model_type);
        c->arch = strcmp(p->model_type, "gpt2") ? HONE_ARCH_LLAMA : HONE_ARCH_GPT2;
        c->vocab_size = p->vocab;
        c->hidden_size = p->hidden;
        c->num_layers = p->layers;
        c->num_heads = p->heads;
        c->num_kv_heads = p->kv_heads;
        c->head_dim = p->hidden / p->heads;
        c->intermediate_size = p->intermediate;
        c->max_position_embeddings = p->max_pos;
        c->tie_word_embeddings = p->tied;
        c->scale_attn_weights = 1;
        c->bos_token_id = c->eos_token_id = p->vocab == 50257 ? 50256 : 0;
        if (c->arch == HONE_ARCH_GPT2) {
            c->norm_eps = 1e-5f;
            c->activation = HONE_ACT_GELU_TANH;
            c->qkv_bias = c->o_bias = c->mlp_bias = 1;
        } else {
            c->norm_eps = 1e-5f;
            c->rope_theta = strcmp(p->model_type, "qwen2") ? 10000.0f : 1000000.0f;
            c->activation = HONE_ACT_SILU;
            c->qkv_bias = !strcmp(p->model_type, "qwen2");
        }
        return HONE_OK;
    }
    return hone_errorf(HONE_ERR_INVALID, "unknown model preset '%s' (choose one of: %s)", name,
                       hone_model_config_preset_names());
}

static const char *activation_name(hone_activation a) {
    switch (a) {
    case HONE_ACT_GELU_TANH: return "gelu_new";
    case HONE_ACT_GELU_ERF: return "gelu";
    case HONE_ACT_RELU: return "relu";
    case HONE_ACT_SILU: return "silu";
    }
    return "?";
}

static json_t *token_id_json(int id) { return id >= 0 ? json_integer(id) : json_null(); }

char *hone_model_config_to_json(const hone_model_config *c) {
    json_t *o = json_object();
    json_object_set_new(o, "model_type", json_string(c->model_type));
    json_object_set_new(o, "vocab_size", json_integer(c->vocab_size));
    json_object_set_new(o, "bos_token_id", token_id_json(c->bos_token_id));
    if (c->n_other_eos_ids && c->eos_token_id >= 0) {
        json_t *ids = json_array();
        json_array_append_new(ids, json_integer(c->eos_token_id));
        for (int i = 0; i < c->n_other_eos_ids; i++) json_array_append_new(ids, json_integer(c->other_eos_ids[i]));
        json_object_set_new(o, "eos_token_id", ids);
    } else {
        json_object_set_new(o, "eos_token_id", token_id_json(c->eos_token_id));
    }
    json_object_set_new(o, "tie_word_embeddings", json_boolean(c->tie_word_embeddings));
    json_object_set_new(o, "torch_dtype", json_string("float32"));
    if (c->arch == HONE_ARCH_GPT2) {
        json_object_set_new(o, "architectures", json_pack("[s]", "GPT2LMHeadModel"));
        json_object_set_new(o, "n_embd", json_integer(c->hidden_size));
        json_object_set_new(o, "n_layer", json_integer(c->num_layers));
        json_object_set_new(o, "n_head", json_integer(c->num_heads));
        json_object_set_new(o, "n_positions", json_integer(c->max_position_embeddings));
        json_object_set_new(o, "n_ctx", json_integer(c->max_position_embeddings));
        json_object_set_new(o, "n_inner", c->intermediate_size == 4 * c->hidden_size
                                              ? json_null()
                                              : json_integer(c->intermediate_size));
        json_object_set_new(o, "layer_norm_epsilon", json_real(c->norm_eps));
        json_object_set_new(o, "activation_function", json_string(activation_name(c->activation)));
        json_object_set_new(o, "scale_attn_weights", json_boolean(c->scale_attn_weights));
        json_object_set_new(o, "scale_attn_by_inverse_layer_idx",
                            json_boolean(c->scale_attn_by_inverse_layer_idx));
        json_object_set_new(o, "attn_pdrop", json_real(0.0));
        json_object_set_new(o, "resid_pdrop", json_real(0.0));
        json_object_set_new(o, "embd_pdrop", json_real(0.0));
    } else {
        const char *arch = !strcmp(c->model_type, "qwen2")     ? "Qwen2ForCausalLM"
                           : !strcmp(c->model_type, "mistral") ? "MistralForCausalLM"
                                                               : "LlamaForCausalLM";
        json_object_set_new(o, "architectures", json_pack("[s]", arch));
        json_object_set_new(o, "hidden_size", json_integer(c->hidden_size));
        json_object_set_new(o, "num_hidden_layers", json_integer(c->num_layers));
        json_object_set_new(o, "num_attention_heads", json_integer(c->num_heads));
        json_object_set_new(o, "num_key_value_heads", json_integer(c->num_kv_heads));
        json_object_set_new(o, "head_dim", json_integer(c->head_dim));
        json_object_set_new(o, "intermediate_size", json_integer(c->intermediate_size));
        json_object_set_new(o, "max_position_embeddings", json_integer(c->max_position_embeddings));
        json_object_set_new(o, "rms_norm_eps", json_real(c->norm_eps));
        json_object_set_new(o, "rope_theta", json_real(c->rope_theta));
        json_object_set_new(o, "rope_scaling", json_null());
        json_object_set_new(o, "hidden_act", json_string(activation_name(c->activation)));
        json_object_set_new(o, "attention_dropout", json_real(0.0));
        if (!strcmp(c->model_type, "qwen2")) {
            json_object_set_new(o, "use_sliding_window", json_boolean(c->sliding_window > 0));
            json_object_set_new(o, "sliding_window", c->sliding_window ? json_integer(c->sliding_window) : json_null());
        } else {
            json_object_set_new(o, "attention_bias", json_boolean(c->qkv_bias));
            json_object_set_new(o, "mlp_bias", json_boolean(c->mlp_bias));
            if (!strcmp(c->model_type, "mistral"))
                json_object_set_new(o, "sliding_window",
                                    c->sliding_window ? json_integer(c->sliding_window) : json_null());
        }
    }
    char *text = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(9));
    json_decref(o);
    return text;
}

double hone_model_flops_per_token(const hone_model_config *c, int T) {
    double C = c->hidden_size, L = c->num_layers, HD = c->head_dim;
    double q = (double)c->num_heads * HD, kv = (double)c->num_kv_heads * HD;
    double mlp = c->arch == HONE_ARCH_GPT2 ? 2.0 * C * c->intermediate_size : 3.0 * C * c->intermediate_size;
    double per_layer = C * (q + 2 * kv) + q * C + mlp;
    double matrix_params = L * per_layer + (double)c->vocab_size * C;
    /* causal attention: QK^T and PV, half the T×T matrix on average, forward + backward = 3 × forward */
    double attention = L * 2.0 * 2.0 * q * T / 2.0;
    return 6.0 * matrix_params + 3.0 * attention;
}
