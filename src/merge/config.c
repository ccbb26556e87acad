/* mergekit's YAML config → hone_merge_config, and the evaluation of parameter settings.
 *
 * The schema is mergekit's MergeConfiguration: merge_method, base_model, models [{model, parameters}] or slices
 * [{sources [{model, layer_range, parameters}], base_model, parameters}], parameters, dtype, out_dtype,
 * tokenizer_source, tokenizer {source} (union by default), chat_template. mergekit (pydantic) ignores keys it does not
 * know and parameters a method does not read; hone reports both, with a did-you-mean, so that a typo never goes
 * unnoticed. Everything is checked here except what needs the models (paths, layer counts, shapes). */
#include "merge_internal.h"
#include "hone/settings.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

/* Parameters per method (mergekit's parameters() and tensor_parameters()). */
#define GTA_GLOBALS                                                                                                    \
    { "int8_mask", "normalize", "rescale", "lambda", NULL }
const merge_method_info merge_methods[HONE_MERGE_METHOD_COUNT] = {
    [HONE_MERGE_LINEAR] = {"linear", 0, 0, MERGE_SPARSIFY_NONE, 1, 0, {"normalize", NULL}, {"weight", NULL}},
    [HONE_MERGE_SLERP] = {"slerp", 0, 0, MERGE_SPARSIFY_NONE, 0, 0, {"t", NULL}, {NULL}},
    [HONE_MERGE_TASK_ARITHMETIC] =
        {"task_arithmetic", 1, 0, MERGE_SPARSIFY_NONE, 0, 0, GTA_GLOBALS, {"weight", "density", NULL}},
    [HONE_MERGE_TIES] = {"ties", 1, 1, MERGE_MAGNITUDE, 1, 0, GTA_GLOBALS, {"weight", "density", NULL}},
    [HONE_MERGE_DARE_LINEAR] = {"dare_linear", 1, 0, MERGE_RANDOM, 0, 1, GTA_GLOBALS, {"weight", "density", NULL}},
    [HONE_MERGE_DARE_TIES] = {"dare_ties", 1, 1, MERGE_RANDOM, 0, 1, GTA_GLOBALS, {"weight", "density", NULL}},
    [HONE_MERGE_BREADCRUMBS] =
        {"breadcrumbs", 1, 0, MERGE_MAGNITUDE_OUTLIERS, 0, 0, GTA_GLOBALS, {"weight", "density", "gamma", NULL}},
    [HONE_MERGE_BREADCRUMBS_TIES] =
        {"breadcrumbs_ties", 1, 1, MERGE_MAGNITUDE_OUTLIERS, 0, 0, GTA_GLOBALS, {"weight", "density", "gamma", NULL}},
    [HONE_MERGE_DELLA] = {"della", 1, 1, MERGE_DELLA, 1, 1, GTA_GLOBALS, {"weight", "density", "epsilon", NULL}},
    [HONE_MERGE_DELLA_LINEAR] =
        {"della_linear", 1, 0, MERGE_DELLA, 0, 1, GTA_GLOBALS, {"weight", "density", "epsilon", NULL}},
    [HONE_MERGE_MODEL_STOCK] = {"model_stock", 0, 0, MERGE_SPARSIFY_NONE, 0, 0, {"filter_wise", NULL}, {NULL}},
    [HONE_MERGE_PASSTHROUGH] = {"passthrough", 0, 0, MERGE_SPARSIFY_NONE, 0, 0, {NULL}, {"scale", NULL}},
};

const char *hone_merge_method_name(hone_merge_method m) {
    return (unsigned)m < HONE_MERGE_METHOD_COUNT ? merge_methods[m].name : "?";
}

hone_merge_method hone_merge_config_method(const hone_merge_config *c) { return c->method; }

/* ---- did-you-mean ---- */

const char *merge_closest(const char *name, const char *const *candidates, size_t n) {
    size_t limit = strlen(name) / 3 > 2 ? strlen(name) / 3 : 2, best_d = SIZE_MAX;
    const char *best = NULL;
    for (size_t i = 0; i < n; i++) {
        size_t d = hone_edit_distance(name, candidates[i]);
        if (d < best_d) {
            best_d = d;
            best = candidates[i];
        }
    }
    return best_d <= limit ? best : NULL;
}

/* ---- settings ---- */

int merge_setting_eval(const merge_setting *s, const char *tensor, double t, double *out) {
    switch (s->kind) {
        case MERGE_SETTING_SCALAR:
            *out = s->scalar;
            return 1;
        case MERGE_SETTING_GRADIENT: {
            /* mergekit: scaled = t (n - 1), i0 = int(scaled), i1 = min(n - 1, i0 + 1), lerp by the fraction */
            double scaled = t * (double)(s->n_values - 1);
            size_t i0 = (size_t)scaled, i1 = i0 + 1 < s->n_values ? i0 + 1 : s->n_values - 1;
            if (i0 > s->n_values - 1) i0 = s->n_values - 1;
            double frac = scaled - (double)i0;
            *out = (1 - frac) * s->values[i0] + frac * s->values[i1];
            return 1;
        }
        case MERGE_SETTING_FILTERS:
            for (size_t i = 0; i < s->n_conds; i++)
                if (!s->conds[i].filter || strstr(tensor, s->conds[i].filter))
                    return merge_setting_eval(&s->conds[i].value, tensor, t, out);
            return 0;
    }
    return 0;
}

const merge_setting *merge_params_find(const merge_params *params, const char *name) {
    for (size_t i = 0; i < params->n; i++)
        if (!strcmp(params->items[i].name, name)) return &params->items[i].value;
    return NULL;
}

static void setting_free(merge_setting *s) {
    free(s->values);
    for (size_t i = 0; i < s->n_conds; i++) {
        free(s->conds[i].filter);
        setting_free(&s->conds[i].value);
    }
    free(s->conds);
}

static void params_free(merge_params *p) {
    for (size_t i = 0; i < p->n; i++) {
        free(p->items[i].name);
        setting_free(&p->items[i].value);
    }
    free(p->items);
}

static void source_free(merge_source *s) {
    free(s->model);
    params_free(&s->params);
}

void hone_merge_config_free(hone_merge_config *c) {
    if (!c) return;
    free(c->path);
    free(c->base_model);
    for (size_t i = 0; i < c->n_models; i++) source_free(&c->models[i]);
    free(c->models);
    for (size_t i = 0; i < c->n_slices; i++) {
        for (size_t j = 0; j < c->slices[i].n_sources; j++) source_free(&c->slices[i].sources[j]);
        free(c->slices[i].sources);
        free(c->slices[i].base_model);
        params_free(&c->slices[i].params);
    }
    free(c->slices);
    free(c->tokenizer_model);
    free(c->chat_template);
    params_free(&c->params);
    free(c);
}

/* ---- YAML ---- */

hone_status merge_yaml_error(const merge_yaml *r, const yaml_node_t *n, const char *where, const char *msg) {
    return hone_errorf(HONE_ERR_INVALID, "%s:%d: %s: %s", r->path, merge_yaml_line(n), where, msg);
}

int merge_yaml_is_null(const yaml_node_t *n) {
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return 0;
    const char *t = merge_yaml_text(n);
    return !*t || !strcmp(t, "~") || !strcmp(t, "null") || !strcmp(t, "Null") || !strcmp(t, "NULL");
}

int merge_yaml_number(const yaml_node_t *n, double *out) {
    static const char *const truths[] = {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"};
    static const char *const lies[] = {"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF"};
    if (n->type != YAML_SCALAR_NODE) return 0;
    const char *t = merge_yaml_text(n);
    for (size_t i = 0; n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && i < sizeof truths / sizeof *truths; i++) {
        if (!strcmp(t, truths[i])) return *out = 1, 1;
        if (!strcmp(t, lies[i])) return *out = 0, 1;
    }
    char *end;
    *out = strtod(t, &end);
    return *t && !*end && isfinite(*out);
}

hone_status merge_yaml_string(merge_yaml *r, const yaml_node_t *n, const char *where, char **out) {
    if (n->type != YAML_SCALAR_NODE || merge_yaml_is_null(n))
        return merge_yaml_error(r, n, where, "expected a text value");
    free(*out);
    *out = strdup(merge_yaml_text(n));
    return *out ? HONE_OK : hone_errorf(HONE_ERR_NOMEM, "out of memory");
}

hone_status merge_yaml_model(merge_yaml *r, const yaml_node_t *n, const char *where, char **out) {
    if (n->type == YAML_MAPPING_NODE)
        return merge_yaml_error(
            r, n, where,
            "model references given as mappings (path/revision/lora) are not supported; give the path of "
            "a local model folder");
    HONE_TRY(merge_yaml_string(r, n, where, out));
    if (!**out) return merge_yaml_error(r, n, where, "the model path is empty");
    return HONE_OK;
}

hone_status merge_yaml_mapping(merge_yaml *r, yaml_node_t *n, const char *where, const char *const *known,
                               merge_yaml_visitor visit, void *ctx) {
    if (n->type != YAML_MAPPING_NODE)
        return merge_yaml_error(r, n, where, "expected a mapping of 'key: value' entries");
    size_t n_known = 0;
    while (known[n_known]) n_known++;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = merge_yaml_node(r, p->key), *v = merge_yaml_node(r, p->value);
        if (k->type != YAML_SCALAR_NODE) return merge_yaml_error(r, k, where, "keys must be plain names");
        const char *key = merge_yaml_text(k);
        size_t i = 0;
        while (i < n_known && strcmp(known[i], key)) i++;
        if (i == n_known) {
            const char *hint = merge_closest(key, known, n_known);
            char msg[512];
            if (hint)
                snprintf(msg, sizeof msg, "unknown key '%s' (did you mean '%s'?)", key, hint);
            else {
                int len = snprintf(msg, sizeof msg, "unknown key '%s' (known here:", key);
                for (size_t j = 0; j < n_known && len < (int)sizeof msg; j++)
                    len += snprintf(msg + len, sizeof msg - (size_t)len, " %s", known[j]);
                if (len < (int)sizeof msg) snprintf(msg + len, sizeof msg - (size_t)len, ")");
            }
            return merge_yaml_error(r, k, where, msg);
        }
        for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < p; q++)
            if (!strcmp(merge_yaml_text(merge_yaml_node(r, q->key)), key)) {
                char msg[256];
                snprintf(msg, sizeof msg, "duplicate key '%s'", key);
                return merge_yaml_error(r, k, where, msg);
            }
        HONE_TRY(visit(r, key, v, ctx));
    }
    return HONE_OK;
}

static hone_status read_gradient(merge_yaml *r, yaml_node_t *n, const char *where, merge_setting *s) {
    size_t count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (count == 0) return merge_yaml_error(r, n, where, "a gradient needs at least one value");
    s->kind = MERGE_SETTING_GRADIENT;
    s->values = malloc(count * sizeof *s->values);
    if (!s->values) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < count; i++) {
        yaml_node_t *item = merge_yaml_node(r, n->data.sequence.items.start[i]);
        if (!merge_yaml_number(item, &s->values[i]))
            return merge_yaml_error(r, item, where, "gradient values must be numbers");
        s->n_values++;
    }
    return HONE_OK;
}

/* A number or a gradient (the value of a filter entry). */
static hone_status read_value(merge_yaml *r, yaml_node_t *n, const char *where, merge_setting *s) {
    s->line = merge_yaml_line(n);
    if (n->type == YAML_SEQUENCE_NODE) return read_gradient(r, n, where, s);
    s->kind = MERGE_SETTING_SCALAR;
    if (!merge_yaml_number(n, &s->scalar))
        return merge_yaml_error(r, n, where, "expected a number or a list of numbers (a gradient)");
    return HONE_OK;
}

typedef struct {
    merge_condition *cond;
    int has_value;
} condition_ctx;

static hone_status visit_condition(merge_yaml *r, const char *key, yaml_node_t *v, void *ctx) {
    condition_ctx *c = ctx;
    if (!strcmp(key, "filter")) {
        if (merge_yaml_is_null(v)) return HONE_OK;
        HONE_TRY(merge_yaml_string(r, v, "filter", &c->cond->filter));
        if (!strcmp(c->cond->filter, "*")) {
            free(c->cond->filter);
            c->cond->filter = NULL;
        }
        return HONE_OK;
    }
    c->has_value = 1;
    return read_value(r, v, "value", &c->cond->value);
}

static hone_status read_condition(merge_yaml *r, yaml_node_t *n, const char *where, merge_condition *cond) {
    static const char *const keys[] = {"filter", "value", NULL};
    condition_ctx ctx = {cond, 0};
    HONE_TRY(merge_yaml_mapping(r, n, where, keys, visit_condition, &ctx));
    if (!ctx.has_value) return merge_yaml_error(r, n, where, "a filter entry needs a 'value'");
    return HONE_OK;
}

/* A setting: number, gradient, {filter, value}, or a list of {filter, value}. */
static hone_status read_setting(merge_yaml *r, yaml_node_t *n, const char *where, merge_setting *s) {
    s->line = merge_yaml_line(n);
    int is_filter_list = n->type == YAML_MAPPING_NODE;
    size_t count = 1;
    if (n->type == YAML_SEQUENCE_NODE) {
        count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
        is_filter_list = count > 0 && merge_yaml_node(r, n->data.sequence.items.start[0])->type == YAML_MAPPING_NODE;
    }
    if (!is_filter_list) return read_value(r, n, where, s);
    s->kind = MERGE_SETTING_FILTERS;
    s->conds = calloc(count, sizeof *s->conds);
    if (!s->conds) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < count; i++) {
        yaml_node_t *item = n->type == YAML_MAPPING_NODE ? n : merge_yaml_node(r, n->data.sequence.items.start[i]);
        if (item->type != YAML_MAPPING_NODE)
            return merge_yaml_error(r, item, where, "a filter list holds only {filter, value} entries");
        s->n_conds++;
        HONE_TRY(read_condition(r, item, where, &s->conds[i]));
    }
    return HONE_OK;
}

static hone_status visit_param(merge_yaml *r, const char *key, yaml_node_t *v, void *ctx) {
    merge_params *p = ctx;
    merge_param *item = &p->items[p->n++];
    if (!(item->name = strdup(key))) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    return read_setting(r, v, key, &item->value);
}

/* Parameter names are checked against the method later (the method may come after them in the file). */
static hone_status read_params(merge_yaml *r, yaml_node_t *n, merge_params *p) {
    static const char *const any[] = {"int8_mask", "normalize", "rescale", "lambda",  "t",     "filter_wise",
                                      "weight",    "density",   "gamma",   "epsilon", "scale", NULL};
    if (merge_yaml_is_null(n)) return HONE_OK;
    if (n->type != YAML_MAPPING_NODE)
        return merge_yaml_error(r, n, "parameters", "expected a mapping of names to values");
    p->items = calloc((size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start) + 1, sizeof *p->items);
    if (!p->items) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    return merge_yaml_mapping(r, n, "parameters", any, visit_param, p);
}

static hone_status visit_source(merge_yaml *r, const char *key, yaml_node_t *v, void *ctx) {
    merge_source *s = ctx;
    if (!strcmp(key, "model")) return merge_yaml_model(r, v, "model", &s->model);
    if (!strcmp(key, "parameters")) return read_params(r, v, &s->params);
    /* layer_range */
    if (v->type != YAML_SEQUENCE_NODE || v->data.sequence.items.top - v->data.sequence.items.start != 2)
        return merge_yaml_error(r, v, "layer_range", "expected [first, end] (two layer indices)");
    for (int i = 0; i < 2; i++) {
        double x;
        yaml_node_t *item = merge_yaml_node(r, v->data.sequence.items.start[i]);
        if (!merge_yaml_number(item, &x) || x != floor(x) || x < 0 || x > 1e6)
            return merge_yaml_error(r, item, "layer_range", "layer indices are non-negative integers");
        s->layer_range[i] = (int)x;
    }
    if (s->layer_range[0] >= s->layer_range[1])
        return merge_yaml_error(r, v, "layer_range", "[first, end] must have first < end (end is exclusive)");
    s->has_range = 1;
    return HONE_OK;
}

static hone_status read_source(merge_yaml *r, yaml_node_t *n, merge_source *s, int in_slice) {
    static const char *const model_keys[] = {"model", "parameters", NULL};
    static const char *const source_keys[] = {"model", "layer_range", "parameters", NULL};
    s->line = merge_yaml_line(n);
    HONE_TRY(merge_yaml_mapping(r, n, in_slice ? "sources" : "models", in_slice ? source_keys : model_keys,
                                visit_source, s));
    if (!s->model) return merge_yaml_error(r, n, in_slice ? "sources" : "models", "an entry needs 'model'");
    if (in_slice && !s->has_range) return merge_yaml_error(r, n, "sources", "a slice source needs 'layer_range'");
    return HONE_OK;
}

hone_status merge_yaml_list(merge_yaml *r, yaml_node_t *n, const char *where, size_t size, void **items, size_t *count,
                            hone_status (*each)(merge_yaml *, yaml_node_t *, void *, int), int flag) {
    if (n->type != YAML_SEQUENCE_NODE || n->data.sequence.items.top == n->data.sequence.items.start)
        return merge_yaml_error(r, n, where, "expected a non-empty list");
    size_t k = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    *items = calloc(k, size);
    if (!*items) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < k; i++) {
        (*count)++;
        HONE_TRY(each(r, merge_yaml_node(r, n->data.sequence.items.start[i]), (char *)*items + i * size, flag));
    }
    return HONE_OK;
}

static hone_status each_source(merge_yaml *r, yaml_node_t *n, void *item, int in_slice) {
    return read_source(r, n, item, in_slice);
}

static hone_status visit_slice(merge_yaml *r, const char *key, yaml_node_t *v, void *ctx) {
    merge_slice *s = ctx;
    if (!strcmp(key, "sources"))
        return merge_yaml_list(r, v, "sources", sizeof *s->sources, (void **)&s->sources, &s->n_sources, each_source,
                               1);
    if (!strcmp(key, "base_model"))
        return merge_yaml_is_null(v) ? HONE_OK : merge_yaml_model(r, v, "base_model", &s->base_model);
    if (!strcmp(key, "parameters")) return read_params(r, v, &s->params);
    return merge_yaml_error(r, v, "residual_weight", "mergekit never reads residual_weight; remove it");
}

static hone_status each_slice(merge_yaml *r, yaml_node_t *n, void *item, int unused) {
    static const char *const keys[] = {"sources", "base_model", "parameters", "residual_weight", NULL};
    (void)unused;
    merge_slice *s = item;
    s->line = merge_yaml_line(n);
    HONE_TRY(merge_yaml_mapping(r, n, "slices", keys, visit_slice, s));
    if (!s->n_sources) return merge_yaml_error(r, n, "slices", "a slice needs 'sources'");
    return HONE_OK;
}

hone_status merge_yaml_dtype(merge_yaml *r, yaml_node_t *v, const char *where, int *out) {
    if (merge_yaml_is_null(v)) return HONE_OK;
    hone_dtype d = HONE_DTYPE_F32;
    if (v->type != YAML_SCALAR_NODE || hone_merge_parse_dtype(merge_yaml_text(v), &d) != HONE_OK)
        return merge_yaml_error(r, v, where, "expected float32, float16 or bfloat16");
    *out = (int)d;
    return HONE_OK;
}

static hone_status read_tokenizer_source(merge_yaml *r, yaml_node_t *v, hone_merge_config *c) {
    if (merge_yaml_is_null(v)) return HONE_OK;
    if (v->type != YAML_SCALAR_NODE)
        return merge_yaml_error(r, v, "tokenizer_source", "expected union, base or a model path");
    if (c->tokenizer_source != MERGE_TOKENIZER_NONE) /* set by the other of tokenizer_source / tokenizer */
        return merge_yaml_error(r, v, "tokenizer_source",
                                "give either tokenizer_source or tokenizer {source: ...}, not both (as mergekit)");
    const char *t = merge_yaml_text(v);
    if (!strcmp(t, "union") || !strcmp(t, "base")) {
        c->tokenizer_source = !strcmp(t, "union") ? MERGE_TOKENIZER_UNION : MERGE_TOKENIZER_BASE;
        return HONE_OK;
    }
    c->tokenizer_source = MERGE_TOKENIZER_MODEL;
    return merge_yaml_model(r, v, "tokenizer_source", &c->tokenizer_model);
}

static hone_status visit_tokenizer(merge_yaml *r, const char *key, yaml_node_t *v, void *ctx) {
    hone_merge_config *c = ctx;
    if (!strcmp(key, "source")) {
        c->tokenizer_source = MERGE_TOKENIZER_NONE; /* replaces the block's default, union */
        return merge_yaml_is_null(v)
                   ? merge_yaml_error(r, v, "tokenizer.source", "expected union, base or a model path")
                   : read_tokenizer_source(r, v, c);
    }
    return hone_errorf(HONE_ERR_UNSUPPORTED,
                       "%s:%d: tokenizer.%s is not supported yet; only tokenizer.source (union, base or a model) is",
                       r->path, merge_yaml_line(v), key);
}

static hone_status visit_top(merge_yaml *r, const char *key, yaml_node_t *v, void *ctx) {
    hone_merge_config *c = ctx;
    if (!strcmp(key, "merge_method")) {
        char *name = NULL;
        HONE_TRY(merge_yaml_string(r, v, key, &name));
        const char *names[HONE_MERGE_METHOD_COUNT];
        int found = -1;
        for (int m = 0; m < HONE_MERGE_METHOD_COUNT; m++) {
            names[m] = merge_methods[m].name;
            if (!strcmp(name, names[m])) found = m;
        }
        hone_status st = HONE_OK;
        if (found < 0) {
            const char *hint = merge_closest(name, names, HONE_MERGE_METHOD_COUNT);
            char msg[160] = "";
            if (hint) snprintf(msg, sizeof msg, " (did you mean '%s'?)", hint);
            st = hone_errorf(HONE_ERR_UNSUPPORTED,
                             "%s:%d: merge_method: unknown or unsupported method '%s'%s; hone supports linear, slerp, "
                             "task_arithmetic, ties, dare_linear, dare_ties, breadcrumbs, breadcrumbs_ties, della, "
                             "della_linear, model_stock, passthrough",
                             r->path, merge_yaml_line(v), name, msg);
        }
        free(name);
        c->method = (hone_merge_method)found;
        return st;
    }
    if (!strcmp(key, "base_model"))
        return merge_yaml_is_null(v) ? HONE_OK : merge_yaml_model(r, v, key, &c->base_model);
    if (!strcmp(key, "models"))
        return merge_yaml_list(r, v, key, sizeof *c->models, (void **)&c->models, &c->n_models, each_source, 0);
    if (!strcmp(key, "slices"))
        return merge_yaml_list(r, v, key, sizeof *c->slices, (void **)&c->slices, &c->n_slices, each_slice, 0);
    if (!strcmp(key, "parameters")) return read_params(r, v, &c->params);
    if (!strcmp(key, "dtype")) return merge_yaml_dtype(r, v, key, &c->dtype);
    if (!strcmp(key, "out_dtype")) return merge_yaml_dtype(r, v, key, &c->out_dtype);
    if (!strcmp(key, "tokenizer_source")) return read_tokenizer_source(r, v, c);
    if (!strcmp(key, "tokenizer")) {
        static const char *const keys[] = {"source", "tokens", "pad_to_multiple_of", NULL};
        if (merge_yaml_is_null(v)) return HONE_OK;
        if (c->tokenizer_source != MERGE_TOKENIZER_NONE)
            return merge_yaml_error(r, v, key,
                                    "give either tokenizer_source or tokenizer {source: ...}, not both "
                                    "(as mergekit)");
        c->tokenizer_source = MERGE_TOKENIZER_UNION; /* mergekit's TokenizerConfig.source default */
        return merge_yaml_mapping(r, v, key, keys, visit_tokenizer, c);
    }
    if (!strcmp(key, "chat_template")) {
        if (merge_yaml_is_null(v)) return HONE_OK;
        HONE_TRY(merge_yaml_string(r, v, key, &c->chat_template));
        /* mergekit's built-in names are files it ships; hone does not carry them. */
        if (strcmp(c->chat_template, "auto") && (strlen(c->chat_template) < 20 || !strchr(c->chat_template, '{')))
            return hone_errorf(HONE_ERR_UNSUPPORTED,
                               "%s:%d: chat_template: '%s' is not a Jinja template; hone takes 'auto' (the template "
                               "most input models share) or the template text itself, not mergekit's built-in names",
                               r->path, merge_yaml_line(v), c->chat_template);
        return HONE_OK;
    }
    if (!strcmp(key, "experts") || !strcmp(key, "gate_mode"))
        return hone_errorf(HONE_ERR_INVALID,
                           "%s:%d: %s: this is a mergekit-moe config (base_model, gate_mode, experts); run it with "
                           "`hone merge-moe %s --output-dir OUT`, as mergekit runs it with mergekit-moe",
                           r->path, merge_yaml_line(v), key, r->path);
    return hone_errorf(HONE_ERR_UNSUPPORTED,
                       "%s:%d: modules (per-module merges of multimodal models) are not supported; use models or "
                       "slices",
                       r->path, merge_yaml_line(v));
}

/* Parameter names must be ones the method reads. Global and per-model ones may stand at any level: mergekit
 * looks per-model parameters up in the source, then the slice, then the global parameters. */
static hone_status check_param_names(const hone_merge_config *c, const merge_params *p) {
    const merge_method_info *m = &merge_methods[c->method];
    const char *names[10] = {0};
    size_t n = 0;
    for (size_t i = 0; m->global_params[i]; i++) names[n++] = m->global_params[i];
    for (size_t i = 0; m->model_params[i]; i++) names[n++] = m->model_params[i];
    for (size_t i = 0; i < p->n; i++) {
        size_t j = 0;
        while (j < n && strcmp(names[j], p->items[i].name)) j++;
        if (j < n) continue;
        char list[256] = "";
        for (size_t k = 0, len = 0; k < n && len < sizeof list; k++)
            len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", k ? ", " : "", names[k]);
        const char *hint = merge_closest(p->items[i].name, names, n);
        char did[96] = "";
        if (hint) snprintf(did, sizeof did, " (did you mean '%s'?)", hint);
        return hone_errorf(HONE_ERR_INVALID, "%s:%d: parameter '%s' is not used by merge method %s%s; it takes: %s",
                           c->path, p->items[i].value.line, p->items[i].name, m->name, did, n ? list : "nothing");
    }
    return HONE_OK;
}

static hone_status check_config(const hone_merge_config *c) {
    if ((int)c->method < 0)
        return hone_errorf(HONE_ERR_INVALID, "%s: no merge_method; mergekit configs name one (e.g. merge_method: ties)",
                           c->path);
    if (!c->n_models == !c->n_slices)
        return hone_errorf(HONE_ERR_INVALID, "%s: give exactly one of 'models' and 'slices'", c->path);
    HONE_TRY(check_param_names(c, &c->params));
    for (size_t i = 0; i < c->n_models; i++) HONE_TRY(check_param_names(c, &c->models[i].params));
    for (size_t i = 0; i < c->n_slices; i++) {
        HONE_TRY(check_param_names(c, &c->slices[i].params));
        for (size_t j = 0; j < c->slices[i].n_sources; j++)
            HONE_TRY(check_param_names(c, &c->slices[i].sources[j].params));
    }
    return HONE_OK;
}

hone_status merge_yaml_parse(const char *text, size_t len, const char *name, const char *const *known,
                             merge_yaml_visitor visit, void *ctx) {
    yaml_parser_t parser;
    merge_yaml r = {.path = name};
    if (!yaml_parser_initialize(&parser)) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    hone_status st = HONE_OK;
    if (!yaml_parser_load(&parser, &r.doc)) {
        st = hone_errorf(HONE_ERR_INVALID, "%s:%d: invalid YAML: %s", name, (int)parser.problem_mark.line + 1,
                         parser.problem ? parser.problem : "syntax error");
    } else {
        yaml_node_t *root = yaml_document_get_root_node(&r.doc);
        if (!root)
            st = hone_errorf(HONE_ERR_INVALID, "%s: the file is empty; expected a mergekit config", name);
        else
            st = merge_yaml_mapping(&r, root, "config", known, visit, ctx);
        yaml_document_delete(&r.doc);
        if (st == HONE_OK) {
            yaml_document_t more;
            if (yaml_parser_load(&parser, &more)) {
                if (yaml_document_get_root_node(&more))
                    st = hone_errorf(HONE_ERR_INVALID, "%s: holds more than one YAML document", name);
                yaml_document_delete(&more);
            }
        }
    }
    yaml_parser_delete(&parser);
    return st;
}

hone_status hone_merge_config_parse(hone_merge_config **out, const char *text, size_t len, const char *name) {
    static const char *const keys[] = {"merge_method", "base_model", "models",           "slices",    "parameters",
                                       "dtype",        "out_dtype",  "tokenizer_source", "tokenizer", "chat_template",
                                       "modules",      "experts",    "gate_mode",        NULL};
    *out = NULL;
    hone_merge_config *c = calloc(1, sizeof *c);
    if (!c || !(c->path = strdup(name))) {
        free(c);
        return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    }
    c->method = (hone_merge_method)-1;
    c->dtype = c->out_dtype = -1;
    hone_status st = merge_yaml_parse(text, len, name, keys, visit_top, c);
    if (st == HONE_OK) st = check_config(c);
    if (st != HONE_OK) {
        hone_merge_config_free(c);
        return st;
    }
    *out = c;
    return HONE_OK;
}

hone_status hone_merge_config_load(hone_merge_config **out, const char *path) {
    char *text;
    size_t n;
    *out = NULL;
    HONE_TRY(hone_file_read(path, &text, &n));
    hone_status st = hone_merge_config_parse(out, text, n, path);
    free(text);
    return st;
}

/* ---- small parsers shared with the CLI ---- */

hone_status hone_merge_parse_dtype(const char *text, hone_dtype *out) {
    static const struct {
        const char *name;
        hone_dtype dtype;
    } names[] = {{"float32", HONE_DTYPE_F32}, {"f32", HONE_DTYPE_F32},     {"F32", HONE_DTYPE_F32},
                 {"fp32", HONE_DTYPE_F32},    {"float16", HONE_DTYPE_F16}, {"f16", HONE_DTYPE_F16},
                 {"F16", HONE_DTYPE_F16},     {"fp16", HONE_DTYPE_F16},    {"bfloat16", HONE_DTYPE_BF16},
                 {"bf16", HONE_DTYPE_BF16},   {"BF16", HONE_DTYPE_BF16}};
    const char *t = strncmp(text, "torch.", 6) ? text : text + 6;
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (!strcmp(t, names[i].name)) {
            *out = names[i].dtype;
            return HONE_OK;
        }
    return hone_errorf(HONE_ERR_INVALID, "unknown dtype '%s'; expected float32, float16 or bfloat16 (f32, f16, bf16)",
                       text);
}

hone_status hone_merge_parse_size(const char *text, uint64_t *bytes) {
    static const struct {
        const char *suffix;
        double scale;
    } units[] = {{"", 1},
                 {"B", 1e9},
                 {"K", 1e3},
                 {"KB", 1e3},
                 {"M", 1e6},
                 {"MB", 1e6},
                 {"G", 1e9},
                 {"GB", 1e9},
                 {"T", 1e12},
                 {"TB", 1e12},
                 {"KiB", 1024.0},
                 {"MiB", 1048576.0},
                 {"GiB", 1073741824.0},
                 {"TiB", 1099511627776.0}};
    char *end;
    double x = strtod(text, &end);
    while (*end == ' ') end++;
    for (size_t i = 0; end != text && i < sizeof units / sizeof *units; i++) {
        if (strcasecmp(end, units[i].suffix) != 0 || (strlen(units[i].suffix) == 3 && strcmp(end, units[i].suffix)))
            continue;
        double b = x * units[i].scale;
        if (!(b >= 1 && b < 1.8e19)) break;
        *bytes = (uint64_t)b;
        return HONE_OK;
    }
    return hone_errorf(HONE_ERR_INVALID,
                       "invalid size '%s'; expected a positive byte count such as 5GB, 500MB, 2GiB or 1000000", text);
}
