/* The adapter object: configuration, adapter_config.json, create/load/save dispatch to the kinds, attaching to a
 * model, what the optimizer trains and what a run saves. */
#include "peft/peft_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void hone_peft_config_defaults(hone_peft_config *c, hone_peft_kind kind) {
    memset(c, 0, sizeof *c);
    c->kind = kind;
    c->r = 8;
    c->alpha = 8;
    c->num_virtual_tokens = 20;
    c->init = HONE_PROMPT_INIT_RANDOM;
    c->ensure_weight_tying = 1; /* a tied model keeps one embedding/lm_head copy, so the adapter merges */
}

hone_status hone_peft_kind_parse(const char *name, hone_peft_kind *out) {
    static const struct {
        const char *name;
        hone_peft_kind kind;
    } kinds[] = {{"lora", HONE_PEFT_LORA}, {"prompt", HONE_PEFT_PROMPT}, {"prefix", HONE_PEFT_PREFIX}};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (!strcmp(name, kinds[i].name)) {
            *out = kinds[i].kind;
            return HONE_OK;
        }
    return hone_errorf(HONE_ERR_INVALID, "unknown adapter '%s' (choose lora, prompt or prefix)", name);
}

/* peft_type of adapter_config.json for each kind. */
static const char *peft_type_name(hone_peft_kind kind) {
    switch (kind) {
    case HONE_PEFT_LORA: return "LORA";
    case HONE_PEFT_PROMPT: return "PROMPT_TUNING";
    case HONE_PEFT_PREFIX: return "PREFIX_TUNING";
    }
    return "?";
}

static hone_status kind_ops(hone_peft_kind kind, const adapter_kind_ops **out) {
    *out = NULL;
    switch (kind) {
    case HONE_PEFT_LORA: *out = &lora_ops; return HONE_OK;
    case HONE_PEFT_PROMPT:
    case HONE_PEFT_PREFIX: *out = &prompt_ops; return HONE_OK;
    }
    return hone_errorf(HONE_ERR_UNSUPPORTED, "adapter kind %d is not available in this build", (int)kind);
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

/* An empty adapter with an owned copy of c, for model m. */
static hone_status adapter_new(hone_adapter **out, const hone_model *m, const hone_peft_config *c) {
    *out = NULL;
    const adapter_kind_ops *ops;
    HONE_TRY(kind_ops(c->kind, &ops));
    if (c->kind != HONE_PEFT_LORA && c->modules_to_save && *c->modules_to_save)
        return hone_errorf(HONE_ERR_UNSUPPORTED, "modules_to_save (%s) is implemented for LoRA adapters only",
                           c->modules_to_save);
    hone_adapter *a = calloc(1, sizeof *a);
    if (!a) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    a->cfg = *c;
    a->cfg.target_modules = dup_or_null(c->target_modules);
    a->cfg.modules_to_save = dup_or_null(c->modules_to_save);
    a->cfg.init_ids = NULL;
    if (c->n_init_ids > 0) {
        int32_t *ids = malloc(sizeof(int32_t) * (size_t)c->n_init_ids);
        if (ids) memcpy(ids, c->init_ids, sizeof(int32_t) * (size_t)c->n_init_ids);
        a->cfg.init_ids = ids;
    }
    a->base_model = dup_or_null(hone_model_source_dir(m));
    a->model_cfg = m->cfg;
    a->ops = ops;
    if ((c->target_modules && !a->cfg.target_modules) || (c->modules_to_save && !a->cfg.modules_to_save) ||
        (c->n_init_ids > 0 && !a->cfg.init_ids) ||
        (hone_model_source_dir(m) && !a->base_model)) {
        hone_adapter_free(a);
        return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    }
    *out = a;
    return HONE_OK;
}

void hone_adapter_free(hone_adapter *a) {
    if (!a) return;
    if (a->ops) a->ops->free(a);
    free((char *)a->cfg.target_modules);
    free((char *)a->cfg.modules_to_save);
    free((int32_t *)a->cfg.init_ids);
    free(a->base_model);
    hone_free(a->params);
    hone_free(a->grads);
    free(a->segments);
    free(a);
}

const hone_peft_config *hone_adapter_config(const hone_adapter *a) { return &a->cfg; }

void hone_adapter_set_dropout_key(hone_adapter *a, uint64_t key) { a->dropout_key = key; }

size_t hone_adapter_num_params(const hone_adapter *a) { return a->n_params; }

void hone_model_set_dropout_key(hone_model *m, uint64_t key) {
    if (m->adapter) hone_adapter_set_dropout_key(m->adapter, key);
}

hone_status adapter_alloc_params(hone_adapter *a, const size_t *sizes, const int *decay, size_t n, size_t *offsets) {
    size_t total = 0;
    a->segments = calloc(n ? n : 1, sizeof *a->segments);
    if (!a->segments) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        a->segments[i].offset = offsets[i] = total;
        a->segments[i].size = sizes[i];
        a->segments[i].decay = decay[i];
        total += (sizes[i] + 15) & ~(size_t)15; /* 64-byte aligned tensors, as the model's */
    }
    a->n_segments = n;
    a->n_params = total;
    a->params = hone_alloc((total ? total : 1) * sizeof(float));
    if (!a->params) return hone_errorf(HONE_ERR_NOMEM, "out of memory for %zu adapter parameters", total);
    return HONE_OK;
}

void adapter_key(char *out, size_t size, const char *module, const char *suffix) {
    snprintf(out, size, "base_model.model.%s%s", module, suffix);
}

/* PEFT's in-memory state dict names the adapter ("...lora_A.default.weight"); files saved by PEFT drop it, but
 * files saved from a raw state dict keep it. */
static const hone_st_tensor *find_tensor(const hone_st_file *f, const char *key) {
    const hone_st_tensor *t = hone_st_find(f, key);
    if (t) return t;
    const char *dot = strrchr(key, '.');
    char alt[320];
    if (!dot || snprintf(alt, sizeof alt, "%.*s.default%s", (int)(dot - key), key, dot) >= (int)sizeof alt)
        return NULL;
    return hone_st_find(f, alt);
}

hone_status adapter_read_tensor(const hone_st_file *f, const char *key, int ndim, const int64_t *shape, float *out) {
    const hone_st_tensor *t = find_tensor(f, key);
    if (!t) return hone_errorf(HONE_ERR_FORMAT, "%s: tensor '%s' is missing", f->file.path, key);
    int ok = t->ndim == ndim;
    for (int d = 0; ok && d < ndim; d++) ok = t->shape[d] == shape[d];
    if (!ok)
        return hone_errorf(HONE_ERR_FORMAT, "%s: tensor '%s' has %d dimensions [%lld, %lld], the model needs [%lld, %lld]",
                           f->file.path, t->name, t->ndim, (long long)t->shape[0],
                           (long long)(t->ndim > 1 ? t->shape[1] : 1), (long long)shape[0],
                           (long long)(ndim > 1 ? shape[1] : 1));
    return hone_st_tensor_to_f32(t, out);
}

hone_status adapter_check_other_key(const char *key, json_t *v, const char *path) {
    int neutral = json_is_null(v) || json_is_false(v) || (json_is_object(v) && json_object_size(v) == 0) ||
                  (json_is_array(v) && json_array_size(v) == 0);
    if (neutral) return HONE_OK;
    return hone_errorf(HONE_ERR_UNSUPPORTED, "%s: option \"%s\" is set but hone does not implement it (remove it or "
                       "set it to null/false)", path, key);
}

json_t *adapter_json_number(float v) {
    char buf[32];
    for (int digits = 6; digits <= 9; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, (double)v);
        if (strtof(buf, NULL) == v) break;
    }
    return json_real(strtod(buf, NULL));
}

/* ---- create, load, save ------------------------------------------------------------------------------------ */

hone_status hone_adapter_create(hone_adapter **out, const hone_model *m, const hone_peft_config *c, uint64_t seed) {
    hone_adapter *a;
    HONE_TRY(adapter_new(&a, m, c));
    hone_status st = a->ops->layout(a, m);
    if (st == HONE_OK) st = a->ops->init(a, m, seed);
    if (st != HONE_OK) {
        hone_adapter_free(a);
        return st;
    }
    *out = a;
    return HONE_OK;
}

/* Reads the common keys of adapter_config.json (removing them from root) into c / *base_model. */
static hone_status read_common_keys(json_t *root, const char *path, hone_peft_config *c, char **base_model) {
    json_t *type = json_object_get(root, "peft_type");
    if (!json_is_string(type))
        return hone_errorf(HONE_ERR_FORMAT, "%s: \"peft_type\" is missing (is this a PEFT adapter folder?)", path);
    const char *t = json_string_value(type);
    hone_peft_kind kinds[] = {HONE_PEFT_LORA, HONE_PEFT_PROMPT, HONE_PEFT_PREFIX};
    int found = 0;
    for (size_t i = 0; i < 3 && !found; i++)
        if (!strcmp(t, peft_type_name(kinds[i]))) {
            hone_peft_config_defaults(c, kinds[i]);
            found = 1;
        }
    if (!found)
        return hone_errorf(HONE_ERR_UNSUPPORTED, "%s: peft_type \"%s\" is not supported (LORA, PROMPT_TUNING, "
                           "PREFIX_TUNING are)", path, t);
    json_t *task = json_object_get(root, "task_type");
    if (task && !json_is_null(task) && !(json_is_string(task) && !strcmp(json_string_value(task), "CAUSAL_LM")))
        return hone_errorf(HONE_ERR_UNSUPPORTED, "%s: task_type %s is not supported (CAUSAL_LM is)", path,
                           json_is_string(task) ? json_string_value(task) : "(not a string)");
    json_t *base = json_object_get(root, "base_model_name_or_path");
    if (json_is_string(base)) *base_model = strdup(json_string_value(base));
    /* bookkeeping that does not change what the adapter computes */
    static const char *const common[] = {"peft_type", "task_type", "base_model_name_or_path", "revision",
                                         "inference_mode", "auto_mapping", "peft_version"};
    for (size_t i = 0; i < sizeof common / sizeof common[0]; i++) json_object_del(root, common[i]);
    return HONE_OK;
}

static hone_status load_into(hone_adapter **out, const hone_model *m, const char *dir, json_t *root,
                             const char *config_path) {
    hone_peft_config c;
    char *base_model = NULL;
    HONE_TRY(read_common_keys(root, config_path, &c, &base_model));
    hone_adapter *a;
    hone_status st = adapter_new(&a, m, &c);
    if (st != HONE_OK) {
        free(base_model);
        return st;
    }
    free(a->base_model);
    a->base_model = base_model;
    st = a->ops->config_read(a, root, config_path);
    if (st == HONE_OK) st = a->ops->layout(a, m);
    char *weights = hone_path_join(dir, "adapter_model.safetensors");
    if (st == HONE_OK) {
        hone_st_file f;
        st = hone_st_open(&f, weights);
        if (st == HONE_OK) {
            st = a->ops->tensors_read(a, &f);
            hone_st_close(&f);
        }
    }
    free(weights);
    if (st != HONE_OK) {
        hone_adapter_free(a);
        return st;
    }
    *out = a;
    return HONE_OK;
}

hone_status hone_adapter_load(hone_adapter **out, const hone_model *m, const char *dir) {
    *out = NULL;
    char *config_path = hone_path_join(dir, "adapter_config.json");
    char *weights = hone_path_join(dir, "adapter_model.safetensors");
    char *bin = hone_path_join(dir, "adapter_model.bin");
    hone_status st = HONE_OK;
    if (!hone_file_exists(config_path))
        st = hone_errorf(HONE_ERR_IO, "%s: no adapter_config.json (not a PEFT adapter folder)", dir);
    else if (!hone_file_exists(weights) && hone_file_exists(bin))
        st = hone_errorf(HONE_ERR_UNSUPPORTED, "%s: adapter_model.bin (a pickled PyTorch file) is not supported: "
                         "convert it to adapter_model.safetensors (PEFT: save_pretrained(..., "
                         "safe_serialization=True))", dir);
    else if (!hone_file_exists(weights))
        st = hone_errorf(HONE_ERR_IO, "%s: no adapter_model.safetensors", dir);
    free(weights);
    free(bin);
    char *text = NULL;
    if (st == HONE_OK) st = hone_file_read(config_path, &text, NULL);
    json_t *root = NULL;
    if (st == HONE_OK) {
        json_error_t jerr;
        root = json_loads(text, 0, &jerr);
        if (!json_is_object(root))
            st = hone_errorf(HONE_ERR_FORMAT, "%s:%d: %s", config_path, jerr.line,
                             root ? "not a JSON object" : jerr.text);
    }
    if (st == HONE_OK) st = load_into(out, m, dir, root, config_path);
    json_decref(root);
    free(text);
    free(config_path);
    return st;
}

hone_status hone_adapter_save(const hone_adapter *a, const char *dir) {
    HONE_TRY(hone_dir_create(dir));
    json_t *root = json_object();
    if (!root) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    json_object_set_new(root, "peft_type", json_string(peft_type_name(a->cfg.kind)));
    json_object_set_new(root, "task_type", json_string("CAUSAL_LM"));
    json_object_set_new(root, "base_model_name_or_path", a->base_model ? json_string(a->base_model) : json_null());
    json_object_set_new(root, "revision", json_null());
    json_object_set_new(root, "inference_mode", json_true());
    json_object_set_new(root, "auto_mapping", json_null());
    hone_status st = a->ops->config_write(a, &a->model_cfg, root);
    /* indent 2 and sorted keys, as PEFT's save_pretrained */
    char *text = st == HONE_OK ? json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(15)) : NULL;
    json_decref(root);
    if (st == HONE_OK && !text) st = hone_errorf(HONE_ERR_NOMEM, "out of memory");
    /* the weights first: a folder whose config is there always has the tensors that go with it */
    char *path = hone_path_join(dir, "adapter_model.safetensors");
    if (st == HONE_OK) st = a->ops->tensors_write(a, path);
    free(path);
    path = hone_path_join(dir, "adapter_config.json");
    if (st == HONE_OK) st = hone_file_write_atomic(path, text, strlen(text));
    free(path);
    free(text);
    return st;
}

/* ---- the model side ---------------------------------------------------------------------------------------- */

/* The shape fields an adapter depends on. */
static int same_shape(const hone_model_config *x, const hone_model_config *y) {
    return x->arch == y->arch && x->vocab_size == y->vocab_size && x->hidden_size == y->hidden_size &&
           x->num_layers == y->num_layers && x->num_heads == y->num_heads && x->num_kv_heads == y->num_kv_heads &&
           x->head_dim == y->head_dim && x->intermediate_size == y->intermediate_size;
}

hone_status hone_model_attach(hone_model *m, hone_adapter *a) {
    if (a && !same_shape(&a->model_cfg, &m->cfg))
        return hone_errorf(HONE_ERR_INVALID, "the adapter was made for a %s model of another shape (hidden %d, %d "
                           "layers) than this %s model (hidden %d, %d layers)", a->model_cfg.model_type,
                           a->model_cfg.hidden_size, a->model_cfg.num_layers, m->cfg.model_type, m->cfg.hidden_size,
                           m->cfg.num_layers);
    m->adapter = a;
    /* the next hone_model_prepare plans the adapter's activations (and no base gradients) */
    model_free_activations(m);
    return HONE_OK;
}

const hone_adapter *hone_model_adapter(const hone_model *m) { return m->adapter; }

int hone_model_virtual_tokens(const hone_model *m) {
    const hone_adapter *a = m->adapter;
    return a && a->cfg.kind == HONE_PEFT_PROMPT ? a->cfg.num_virtual_tokens : 0;
}

hone_status hone_adapter_merge(hone_model *m, const hone_adapter *a) {
    if (a->cfg.kind != HONE_PEFT_LORA)
        return hone_errorf(HONE_ERR_UNSUPPORTED, "only LoRA adapters can be merged into the weights (%s cannot, in "
                           "PEFT either)", peft_type_name(a->cfg.kind));
    if (!same_shape(&a->model_cfg, &m->cfg))
        return hone_errorf(HONE_ERR_INVALID, "the adapter was made for a model of another shape");
    return lora_merge(m, a);
}

hone_status adapter_prepare(hone_model *m, int B, int T, int training) {
    hone_adapter *a = m->adapter;
    if (!a) return HONE_OK;
    if (training && !a->grads) {
        a->grads = hone_alloc((a->n_params ? a->n_params : 1) * sizeof(float));
        if (!a->grads) return hone_errorf(HONE_ERR_NOMEM, "out of memory for adapter gradients");
    }
    return a->ops->prepare(a, m, B, T, training);
}

void adapter_zero_grad(hone_adapter *a) {
    if (a->grads) memset(a->grads, 0, a->n_params * sizeof(float));
}

const hone_param_segment *hone_model_trainable(hone_model *m, float **params, float **grads, size_t *n_segments,
                                               size_t *n_params) {
    if (m->adapter) {
        *params = m->adapter->params;
        *grads = m->adapter->grads;
        *n_segments = m->adapter->n_segments;
        *n_params = m->adapter->n_params;
        return m->adapter->segments;
    }
    *params = m->params;
    *grads = m->grads;
    *n_segments = m->n_tensors;
    *n_params = m->n_params;
    return m->segments;
}

hone_status hone_model_save_trained(const hone_model *m, const char *dir) {
    return m->adapter ? hone_adapter_save(m->adapter, dir) : hone_model_save(m, dir);
}

hone_status hone_model_load_trained(hone_model *m, const char *dir) {
    if (!m->adapter) return hone_model_read_weights(m, dir);
    char *path = hone_path_join(dir, "adapter_model.safetensors");
    hone_st_file f;
    hone_status st = hone_st_open(&f, path);
    free(path);
    HONE_TRY(st);
    st = m->adapter->ops->tensors_read(m->adapter, &f);
    hone_st_close(&f);
    return st;
}
