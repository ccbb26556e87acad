/* The merge plan: a config resolved against the models into output tensors, each with its inputs and
 * parameters, following mergekit's MergePlanner.
 *
 * mergekit takes the tensor list from per-architecture JSON files; hone takes it from the reference model's
 * checkpoint (base_model, else the first model), which needs no table and covers any decoder:
 *   - layer tensors are <prefix><i>.<suffix>, where <prefix> is the commonest part of a name before its first
 *     all-digit component ("model.layers.", "transformer.h."); config.json gives the layer count;
 *   - other tensors are "pre" weights (token / position embeddings), taken from the first slice's models, or
 *     "post" weights (final norm, lm_head), taken from the last slice's models, as mergekit's pre_weights and
 *     post_weights;
 *   - the `models:` form is one slice over all layers of every model, with the base model added when it is not
 *     listed; layer i of a slice of n layers has t = i / (n - 1) (t = 1 when n = 1), other tensors t = 0.
 * Parameters are looked up as mergekit's ConfigReader does: for a model, in its sources' parameters, then the
 * slice's, then the global ones; a filter list with no matching entry falls through to the next level. Global
 * parameters match filters against the output tensor's name, per-model ones against the input tensor's. */
#include "merge_internal.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* An output slice as the planner walks it. */
typedef struct {
    size_t n;
    size_t *model;                   /* per source: index into plan->models */
    int *first;                      /* per source: first input layer */
    const merge_params **src_params; /* per source, or NULL */
    const merge_params *params;      /* the slice's, or NULL */
    const char *base;                /* base model path, or NULL */
    int length;                      /* layers */
} plan_slice;

static hone_status out_of_memory(void) { return hone_errorf(HONE_ERR_NOMEM, "out of memory"); }

static void format_shape(char *buf, size_t cap, int ndim, const int64_t *shape) {
    size_t n = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

/* Token embeddings and the LM head: mergekit's is_embed weights. */
static int is_embed_name(const char *name) {
    return ends_with(name, "embed_tokens.weight") || ends_with(name, "wte.weight") ||
           ends_with(name, "lm_head.weight") || ends_with(name, "embed_in.weight") ||
           ends_with(name, "embed_out.weight") || ends_with(name, "word_embeddings.weight");
}

/* Weights before the layers (mergekit's pre_weights); the rest of the non-layer tensors come after. */
static int is_pre_name(const char *name) {
    return strstr(name, "embed_tokens.") || strstr(name, "wte.") || strstr(name, "wpe.") || strstr(name, "embed_in.") ||
           strstr(name, "word_embeddings");
}

/* Buffers some checkpoints carry (GPT-2's causal mask, rotary tables): not parameters, not merged, as
 * transformers ignores them on load. */
static int is_buffer_name(const char *name) {
    return ends_with(name, ".attn.bias") || ends_with(name, ".attn.masked_bias") ||
           ends_with(name, ".rotary_emb.inv_freq");
}

/* Splits "model.layers.12.mlp.up_proj.weight" at its first all-digit component: prefix length 13, index 12,
 * suffix "mlp.up_proj.weight". 0 when the name has no such component followed by more. */
static int split_layer_name(const char *name, size_t *prefix_len, long *index, const char **suffix) {
    const char *c = name;
    for (;;) {
        const char *dot = strchr(c, '.');
        size_t len = dot ? (size_t)(dot - c) : strlen(c);
        size_t digits = 0;
        while (digits < len && c[digits] >= '0' && c[digits] <= '9') digits++;
        if (len > 0 && len < 9 && digits == len) {
            if (!dot) return 0;
            *prefix_len = (size_t)(c - name);
            *index = strtol(c, NULL, 10);
            *suffix = dot + 1;
            return 1;
        }
        if (!dot) return 0;
        c = dot + 1;
    }
}

/* Layer index of a tensor of model m, or -1 for a non-layer tensor; *suffix gets the part after the index. */
static long layer_of(const merge_model *m, const char *name, const char **suffix) {
    size_t plen;
    long index;
    if (!split_layer_name(name, &plen, &index, suffix)) return -1;
    if (plen != strlen(m->layer_prefix) || strncmp(name, m->layer_prefix, plen)) return -1;
    return index;
}

hone_status merge_num_layers(const char *config_json, const char *config_path, int *out) {
    static const char *const keys[] = {"num_hidden_layers", "n_layer", "num_layers", "n_layers"};
    json_error_t err;
    json_t *root = json_loads(config_json, 0, &err);
    if (!json_is_object(root)) {
        json_decref(root);
        return hone_errorf(HONE_ERR_FORMAT, "%s: not a JSON object (%s, line %d)", config_path, err.text, err.line);
    }
    *out = -1;
    for (size_t i = 0; i < sizeof keys / sizeof *keys && *out < 0; i++) {
        json_t *v = json_object_get(root, keys[i]);
        if (json_is_integer(v) && json_integer_value(v) > 0 && json_integer_value(v) < 100000)
            *out = (int)json_integer_value(v);
    }
    json_decref(root);
    if (*out < 0) return hone_errorf(HONE_ERR_FORMAT, "%s: no layer count (num_hidden_layers or n_layer)", config_path);
    return HONE_OK;
}

/* Finds the layer prefix (the commonest prefix before an all-digit name component) and checks that the
 * layers it numbers are those config.json announces. */
static hone_status find_layers(merge_model *m) {
    const char *best = NULL;
    size_t best_len = 0, best_count = 0;
    for (size_t i = 0; i < m->ck.n_tensors; i++) {
        const char *name = m->ck.by_name[i]->name, *suffix;
        size_t plen, count = 0;
        long index;
        if (!split_layer_name(name, &plen, &index, &suffix)) continue;
        if (best && plen == best_len && !strncmp(name, best, plen)) continue; /* that prefix is counted */
        for (size_t j = 0; j < m->ck.n_tensors; j++) {
            const char *other = m->ck.by_name[j]->name;
            size_t other_len;
            count += split_layer_name(other, &other_len, &index, &suffix) && other_len == plen &&
                     !strncmp(other, name, plen);
        }
        if (count > best_count) {
            best = name;
            best_len = plen;
            best_count = count;
        }
    }
    if (!best)
        return hone_errorf(HONE_ERR_UNSUPPORTED, "%s: no numbered layers (such as model.layers.0.*) among its tensors",
                           m->path);
    if (!(m->layer_prefix = strndup(best, best_len))) return out_of_memory();
    long max_index = -1;
    for (size_t i = 0; i < m->ck.n_tensors; i++) {
        const char *suffix;
        long index = layer_of(m, m->ck.by_name[i]->name, &suffix);
        if (index > max_index) max_index = index;
    }
    if (max_index + 1 != m->num_layers)
        return hone_errorf(HONE_ERR_FORMAT, "%s: config.json says %d layers but the checkpoint has %s* tensors for %ld",
                           m->path, m->num_layers, m->layer_prefix, max_index + 1);
    return HONE_OK;
}

static hone_status open_model(merge_model *m, const char *path) {
    if (!(m->path = strdup(path))) return out_of_memory();
    if (!hone_dir_exists(path)) {
        if (strchr(path, '+'))
            return hone_errorf(HONE_ERR_UNSUPPORTED,
                               "model '%s': no such folder; 'model+lora' references (LoRA applied before merging) are "
                               "not supported; merge the adapter into the model first",
                               path);
        return hone_errorf(HONE_ERR_IO,
                           "model '%s': no such folder; hone merges local Hugging Face model folders (download a hub "
                           "model first, e.g. huggingface-cli download ORG/NAME --local-dir DIR, and give DIR)",
                           path);
    }
    char *config_path = hone_path_join(path, "config.json");
    if (!config_path) return out_of_memory();
    size_t n;
    hone_status st = hone_file_read(config_path, &m->config_json, &n);
    if (st == HONE_OK) st = merge_num_layers(m->config_json, config_path, &m->num_layers);
    free(config_path);
    HONE_TRY(st);
    HONE_TRY(hone_checkpoint_open(&m->ck, path));
    return find_layers(m);
}

static void close_model(merge_model *m) {
    free(m->path);
    hone_checkpoint_close(&m->ck);
    free(m->config_json);
    free(m->layer_prefix);
    free(m->vocab_map);
}

hone_status merge_plan_model(hone_merge_plan *p, const char *path, size_t *out) {
    for (size_t i = 0; i < p->n_models; i++)
        if (!strcmp(p->models[i].path, path)) {
            *out = i;
            return HONE_OK;
        }
    merge_model *grown = realloc(p->models, (p->n_models + 1) * sizeof *grown);
    if (!grown) return out_of_memory();
    p->models = grown;
    memset(&p->models[p->n_models], 0, sizeof *p->models);
    *out = p->n_models++;
    return open_model(&p->models[*out], path);
}

/* The tensor `name` of model m, allowing GPT-2's two spellings ("transformer.h.0..." / "h.0..."), as mergekit's
 * aliases do. */
static const hone_st_tensor *find_alias(const merge_model *m, const char *name) {
    const hone_st_tensor *t = hone_checkpoint_find(&m->ck, name);
    char alt[1024];
    if (!t && !strncmp(name, "transformer.", 12))
        t = hone_checkpoint_find(&m->ck, name + 12);
    else if (!t && snprintf(alt, sizeof alt, "transformer.%s", name) < (int)sizeof alt)
        t = hone_checkpoint_find(&m->ck, alt);
    return t;
}

/* find_alias, and for lm_head a model's own token embedding when it ties them (mergekit's tied_names). */
static const hone_st_tensor *find_input(const merge_model *m, const char *name) {
    const hone_st_tensor *t = find_alias(m, name);
    if (t || !ends_with(name, "lm_head.weight")) return t;
    for (size_t i = 0; i < m->ck.n_tensors; i++) {
        const char *other = m->ck.by_name[i]->name, *suffix;
        if (layer_of(m, other, &suffix) < 0 && is_embed_name(other) && is_pre_name(other)) return m->ck.by_name[i];
    }
    return NULL;
}

/* The output takes its tensors from the reference model: a tensor outside the layers that another model has
 * and the reference lacks (typically an untied lm_head next to a tied base) would be dropped, so it is an
 * error instead. */
static hone_status check_outer_tensors(const hone_merge_plan *p) {
    const merge_model *ref = &p->models[p->reference];
    for (size_t m = 0; m < p->n_models; m++)
        for (size_t i = 0; i < p->models[m].ck.n_tensors; i++) {
            const char *name = p->models[m].ck.by_name[i]->name, *suffix;
            if (layer_of(&p->models[m], name, &suffix) >= 0 || is_buffer_name(name) || find_alias(ref, name)) continue;
            return hone_errorf(HONE_ERR_UNSUPPORTED,
                               "model '%s' has tensor '%s', which '%s' (the base_model, else the first model) lacks; "
                               "the output's tensors are the latter's, so make the model with the tensor the "
                               "base_model",
                               p->models[m].path, name, ref->path);
        }
    return HONE_OK;
}

/* ---- parameters ---- */

static int lookup(const hone_merge_plan *p, const plan_slice *s, const char *model, const char *name,
                  const char *tensor, double t, double *out) {
    for (size_t i = 0; model && i < s->n; i++) {
        const merge_setting *v = s->src_params[i] && !strcmp(p->models[s->model[i]].path, model)
                                     ? merge_params_find(s->src_params[i], name)
                                     : NULL;
        if (v && merge_setting_eval(v, tensor, t, out)) return 1;
    }
    const merge_setting *v = s->params ? merge_params_find(s->params, name) : NULL;
    if (v && merge_setting_eval(v, tensor, t, out)) return 1;
    v = merge_params_find(&p->cfg->params, name);
    return v && merge_setting_eval(v, tensor, t, out);
}

static int method_uses(const char *const *names, const char *name) {
    for (size_t i = 0; names[i]; i++)
        if (!strcmp(names[i], name)) return 1;
    return 0;
}

/* A global parameter, or its default; NAN when the method does not take it. */
static double global_param(const hone_merge_plan *p, const plan_slice *s, const char *name, const char *tensor,
                           double t, double fallback) {
    double v;
    if (!method_uses(merge_methods[p->cfg->method].global_params, name)) return NAN;
    return lookup(p, s, NULL, name, tensor, t, &v) ? v : fallback;
}

static double model_param(const hone_merge_plan *p, const plan_slice *s, const char *model, const char *name,
                          const char *tensor, double t, double fallback) {
    double v;
    if (!method_uses(merge_methods[p->cfg->method].model_params, name)) return NAN;
    return lookup(p, s, model, name, tensor, t, &v) ? v : fallback;
}

static hone_status resolve_params(const hone_merge_plan *p, const plan_slice *s, merge_tensor *t) {
    const merge_method_info *m = &merge_methods[p->cfg->method];
    hone_merge_tensor *pub = &t->pub;
    double x = global_param(p, s, "normalize", pub->name, pub->t, m->default_normalize);
    pub->normalize = !isnan(x) && x != 0;
    x = global_param(p, s, "rescale", pub->name, pub->t, m->default_rescale);
    pub->rescale = !isnan(x) && x != 0;
    x = global_param(p, s, "filter_wise", pub->name, pub->t, 0);
    pub->filter_wise = !isnan(x) && x != 0;
    pub->lambda = global_param(p, s, "lambda", pub->name, pub->t, 1.0);
    pub->slerp_t = global_param(p, s, "t", pub->name, pub->t, NAN);
    if (p->cfg->method == HONE_MERGE_SLERP && isnan(pub->slerp_t))
        return hone_errorf(
            HONE_ERR_INVALID,
            "%s: slerp needs parameter 't' for tensor '%s' (none is given, or none of its filters match)", p->cfg->path,
            pub->name);
    for (size_t i = 0; i < pub->n_inputs; i++) {
        hone_merge_input *in = &t->inputs[i];
        int is_base = (int)i == pub->base;
        in->weight = model_param(p, s, in->model, "weight", in->tensor, pub->t, NAN);
        in->density = model_param(p, s, in->model, "density", in->tensor, pub->t, 1.0);
        in->gamma = model_param(p, s, in->model, "gamma", in->tensor, pub->t, 0.01);
        in->epsilon = model_param(p, s, in->model, "epsilon", in->tensor, pub->t, 0.15);
        in->scale = model_param(p, s, in->model, "scale", in->tensor, pub->t, NAN);
        int needs_weight = method_uses(m->model_params, "weight") && (!is_base || !m->task_arithmetic);
        if (needs_weight && isnan(in->weight))
            return hone_errorf(HONE_ERR_INVALID,
                               "%s: model '%s' has no 'weight' for tensor '%s'%s; give it under the model's "
                               "parameters (or globally)",
                               p->cfg->path, in->model, in->tensor,
                               is_base ? " (it is the base model, which linear merges like the others)" : "");
    }
    return HONE_OK;
}

/* ---- shapes ---- */

static hone_status shape_mismatch(const merge_tensor *t, const char *why) {
    char msg[1024];
    size_t n = 0;
    for (size_t i = 0; i < t->pub.n_inputs && n < sizeof msg; i++) {
        char shape[96];
        format_shape(shape, sizeof shape, t->src[i]->ndim, t->src[i]->shape);
        n += (size_t)snprintf(msg + n, sizeof msg - n, "%s%s %s", i ? ", " : "", t->pub.inputs[i].model, shape);
    }
    return hone_errorf(HONE_ERR_INVALID, "tensor '%s': shapes differ (%s): %s", t->pub.name, msg, why);
}

/* The output shape. Token embeddings of different vocabulary sizes are reconciled as mergekit does: the task
 * arithmetic family keeps the base model's shape and cuts the others to it; the other methods take the
 * common sub-matrix; with tokenizer_source every input is mapped to the output vocabulary. Any other mismatch
 * is an error. */
static hone_status output_shape(const hone_merge_plan *p, merge_tensor *t) {
    hone_merge_tensor *pub = &t->pub;
    const hone_st_tensor *first = t->src[pub->base >= 0 ? pub->base : 0];
    pub->ndim = first->ndim;
    memcpy(pub->shape, first->shape, sizeof pub->shape);
    int same = 1, all_2d = 1;
    for (size_t i = 0; i < pub->n_inputs; i++) {
        const hone_st_tensor *x = t->src[i];
        all_2d &= x->ndim == 2;
        same &= x->ndim == first->ndim && !memcmp(x->shape, first->shape, (size_t)x->ndim * sizeof *x->shape);
    }
    if (t->permuted) {
        for (size_t i = 0; i < pub->n_inputs; i++)
            if (!all_2d || t->src[i]->shape[1] != first->shape[1])
                return shape_mismatch(t, "embeddings mapped to the output vocabulary must have the same width");
        pub->shape[0] = p->vocab_rows;
        return HONE_OK;
    }
    if (same) return HONE_OK;
    if (!pub->is_embed || !all_2d)
        return shape_mismatch(t, "the models must share an architecture (only token embeddings may differ in "
                                 "vocabulary size)");
    for (size_t i = 0; i < pub->n_inputs; i++)
        for (int d = 0; d < 2; d++) {
            if (merge_methods[p->cfg->method].task_arithmetic) {
                if (t->src[i]->shape[d] < pub->shape[d])
                    return shape_mismatch(t, "the task arithmetic family cuts embeddings to the base model's size, "
                                             "so none may be smaller than it");
            } else if (t->src[i]->shape[d] < pub->shape[d]) {
                pub->shape[d] = t->src[i]->shape[d];
            }
        }
    char shape[96];
    format_shape(shape, sizeof shape, 2, pub->shape);
    hone_warn("%s: vocabulary sizes differ; using the %s sub-matrix of each model, as mergekit does", pub->name, shape);
    return HONE_OK;
}

/* ---- tensors ---- */

/* Adds the output tensor `name` fed by `in_names[k]` of each source of slice s. */
static hone_status add_tensor(hone_merge_plan *p, const plan_slice *s, const char *name, char *const *in_names,
                              double t_pos, const hone_merge_options *o) {
    merge_tensor *grown = realloc(p->tensors, (p->n_tensors + 1) * sizeof *grown);
    if (!grown) return out_of_memory();
    p->tensors = grown;
    merge_tensor *t = &p->tensors[p->n_tensors++];
    memset(t, 0, sizeof *t);
    hone_merge_tensor *pub = &t->pub;
    pub->n_inputs = s->n;
    pub->base = -1;
    pub->t = t_pos;
    pub->is_embed = is_embed_name(name);
    if (!(pub->name = strdup(name)) || !(t->inputs = calloc(s->n, sizeof *t->inputs)) ||
        !(t->model = calloc(s->n, sizeof *t->model)) || !(t->src = calloc(s->n, sizeof *t->src)))
        return out_of_memory();
    pub->inputs = t->inputs;
    for (size_t i = 0; i < s->n; i++) {
        const merge_model *m = &p->models[s->model[i]];
        t->model[i] = s->model[i];
        t->src[i] = find_input(m, in_names[i]);
        if (!t->src[i])
            return hone_errorf(HONE_ERR_FORMAT,
                               "model '%s' has no tensor '%s' (needed for output tensor '%s'); the models of a merge "
                               "must share an architecture",
                               m->path, in_names[i], name);
        if (t->src[i]->dtype != HONE_DTYPE_F32 && t->src[i]->dtype != HONE_DTYPE_F16 &&
            t->src[i]->dtype != HONE_DTYPE_BF16)
            return hone_errorf(HONE_ERR_UNSUPPORTED, "%s: tensor '%s' is %s; hone merges F32, F16 and BF16 tensors",
                               m->path, t->src[i]->name, hone_dtype_name(t->src[i]->dtype));
        t->inputs[i].model = m->path;
        t->inputs[i].tensor = t->src[i]->name;
        if (s->base && !strcmp(m->path, s->base)) pub->base = (int)i;
    }
    t->permuted = pub->is_embed && p->cfg->tokenizer_source != MERGE_TOKENIZER_NONE;
    HONE_TRY(resolve_params(p, s, t));
    HONE_TRY(output_shape(p, t));
    int dtype = o->out_dtype >= 0 ? o->out_dtype : p->cfg->out_dtype >= 0 ? p->cfg->out_dtype : p->cfg->dtype;
    pub->dtype = dtype >= 0 ? (hone_dtype)dtype : t->src[pub->base >= 0 ? pub->base : 0]->dtype;
    int64_t numel = 1;
    for (int d = 0; d < pub->ndim; d++) numel *= pub->shape[d];
    t->nbytes = (uint64_t)numel * hone_dtype_size(pub->dtype);
    return HONE_OK;
}

static int name_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Non-layer tensors of the reference model, pre (1) or post (0) weights, sorted by name. */
static hone_status add_outer_tensors(hone_merge_plan *p, const plan_slice *s, int pre, const hone_merge_options *o) {
    const merge_model *ref = &p->models[p->reference];
    char **in_names = calloc(s->n + 1, sizeof *in_names);
    if (!in_names) return out_of_memory();
    hone_status st = HONE_OK;
    for (size_t i = 0; i < ref->ck.n_tensors && st == HONE_OK; i++) {
        const char *name = ref->ck.by_name[i]->name, *suffix;
        if (layer_of(ref, name, &suffix) >= 0 || is_buffer_name(name) || is_pre_name(name) != pre) continue;
        for (size_t k = 0; k < s->n; k++) in_names[k] = (char *)name;
        st = add_tensor(p, s, name, in_names, 0.0, o);
    }
    free(in_names);
    return st;
}

/* The tensors of output layer `out_layer`, from layer s->first[k] + offset of each source. The suffixes are
 * those of the first source's layer. */
static hone_status add_layer(hone_merge_plan *p, const plan_slice *s, int offset, int out_layer, double t,
                             const hone_merge_options *o) {
    const merge_model *m0 = &p->models[s->model[0]];
    size_t n_suffixes = 0;
    const char **suffixes = malloc((m0->ck.n_tensors + 1) * sizeof *suffixes);
    char **in_names = calloc(s->n, sizeof *in_names);
    char out_name[1024];
    hone_status st = suffixes && in_names ? HONE_OK : out_of_memory();
    for (size_t i = 0; i < m0->ck.n_tensors && st == HONE_OK; i++) {
        const char *suffix, *name = m0->ck.by_name[i]->name;
        if (layer_of(m0, name, &suffix) == s->first[0] + offset && !is_buffer_name(name))
            suffixes[n_suffixes++] = suffix;
    }
    if (st == HONE_OK && n_suffixes == 0)
        st = hone_errorf(HONE_ERR_FORMAT, "model '%s' has no tensors for layer %d", m0->path, s->first[0] + offset);
    if (st == HONE_OK) qsort(suffixes, n_suffixes, sizeof *suffixes, name_cmp);
    for (size_t j = 0; j < n_suffixes && st == HONE_OK; j++) {
        for (size_t k = 0; k < s->n && st == HONE_OK; k++) {
            const merge_model *m = &p->models[s->model[k]];
            free(in_names[k]);
            size_t len = strlen(m->layer_prefix) + strlen(suffixes[j]) + 24;
            if (!(in_names[k] = malloc(len)))
                st = out_of_memory();
            else
                snprintf(in_names[k], len, "%s%d.%s", m->layer_prefix, s->first[k] + offset, suffixes[j]);
        }
        if (st == HONE_OK && snprintf(out_name, sizeof out_name, "%s%d.%s", p->models[p->reference].layer_prefix,
                                      out_layer, suffixes[j]) >= (int)sizeof out_name)
            st = hone_errorf(HONE_ERR_INVALID, "tensor name too long: %s", suffixes[j]);
        if (st == HONE_OK) st = add_tensor(p, s, out_name, in_names, t, o);
    }
    for (size_t k = 0; in_names && k < s->n; k++) free(in_names[k]);
    free(in_names);
    free(suffixes);
    return st;
}

/* Checks what the method needs of a slice's models (mergekit fails on these at run time). */
static hone_status check_slice(const hone_merge_plan *p, const plan_slice *s, size_t index) {
    const merge_method_info *m = &merge_methods[p->cfg->method];
    int has_base = 0;
    for (size_t i = 0; i < s->n; i++) {
        const char *path = p->models[s->model[i]].path;
        has_base |= s->base && !strcmp(path, s->base);
        for (size_t j = 0; j < i; j++)
            if (s->model[j] == s->model[i])
                return hone_errorf(HONE_ERR_INVALID, "%s: slice %zu lists model '%s' twice", p->cfg->path, index + 1,
                                   path);
        const merge_model *mm = &p->models[s->model[i]];
        if (s->first[i] + s->length > mm->num_layers)
            return hone_errorf(HONE_ERR_INVALID, "%s: slice %zu: layers [%d, %d) of '%s', which has %d layers",
                               p->cfg->path, index + 1, s->first[i], s->first[i] + s->length, path, mm->num_layers);
    }
    const char *need = NULL;
    if (p->cfg->method == HONE_MERGE_PASSTHROUGH && s->n != 1)
        need = "exactly one model per slice";
    else if (p->cfg->method == HONE_MERGE_SLERP && s->n != 1 && !(s->n == 2 && has_base))
        need = "two models per slice, one of them the base_model";
    else if (p->cfg->method == HONE_MERGE_MODEL_STOCK && !(has_base && (s->n >= 3 || s->n == 1)))
        need = "the base_model and at least two other models";
    else if (p->cfg->method == HONE_MERGE_MODEL_STOCK && s->n - 1 > HONE_MERGE_MAX_STOCK)
        need = "at most " HONE_MERGE_MAX_STOCK_TEXT " models besides the base_model";
    else if (m->task_arithmetic && !has_base)
        need = "a base_model among the models";
    if (need)
        return hone_errorf(HONE_ERR_INVALID, "%s: %s needs %s (slice %zu has %zu model%s%s)", p->cfg->path, m->name,
                           need, index + 1, s->n, s->n == 1 ? "" : "s", s->base ? "" : " and no base_model");
    return HONE_OK;
}

static void slice_free(plan_slice *s) {
    free(s->model);
    free(s->first);
    free(s->src_params);
}

/* Builds the working slices: the config's, or for `models:` one slice over every layer of each model (plus
 * the base model when it is not listed). */
static hone_status make_slices(hone_merge_plan *p, plan_slice **out, size_t *n_out) {
    const hone_merge_config *c = p->cfg;
    size_t n = c->n_slices ? c->n_slices : 1;
    plan_slice *slices = calloc(n, sizeof *slices);
    if (!slices) return out_of_memory();
    *out = slices;
    *n_out = n;
    for (size_t i = 0; i < n; i++) {
        plan_slice *s = &slices[i];
        const merge_source *src = c->n_slices ? c->slices[i].sources : c->models;
        size_t n_src = c->n_slices ? c->slices[i].n_sources : c->n_models;
        int add_base = 0;
        s->base = c->n_slices && c->slices[i].base_model ? c->slices[i].base_model : c->base_model;
        s->params = c->n_slices ? &c->slices[i].params : NULL;
        if (!c->n_slices && s->base) {
            add_base = 1;
            for (size_t k = 0; k < n_src; k++) add_base &= strcmp(src[k].model, s->base) != 0;
        }
        s->n = n_src + (size_t)add_base;
        if (!(s->model = calloc(s->n, sizeof *s->model)) || !(s->first = calloc(s->n, sizeof *s->first)) ||
            !(s->src_params = calloc(s->n, sizeof *s->src_params)))
            return out_of_memory();
        for (size_t k = 0; k < s->n; k++) {
            HONE_TRY(merge_plan_model(p, k < n_src ? src[k].model : s->base, &s->model[k]));
            s->src_params[k] = k < n_src ? &src[k].params : NULL;
            int length = k < n_src && src[k].has_range ? src[k].layer_range[1] - src[k].layer_range[0]
                                                       : p->models[s->model[k]].num_layers;
            s->first[k] = k < n_src && src[k].has_range ? src[k].layer_range[0] : 0;
            if (k == 0)
                s->length = length;
            else if (length != s->length)
                return hone_errorf(HONE_ERR_INVALID,
                                   "%s: slice %zu: every source must span the same number of layers ('%s' has %d, "
                                   "'%s' has %d)",
                                   c->path, i + 1, p->models[s->model[0]].path, s->length, p->models[s->model[k]].path,
                                   length);
        }
        HONE_TRY(check_slice(p, s, i));
    }
    return HONE_OK;
}

hone_status merge_plan_add_copy(hone_merge_plan *p, const char *name, size_t model, const char *in_name, double scale,
                                const hone_merge_options *o) {
    merge_param scale_param = {(char *)"scale", {.kind = MERGE_SETTING_SCALAR, .scalar = scale}};
    const merge_params params = {&scale_param, !isnan(scale)}, *src_params = &params;
    int first = 0;
    plan_slice s = {.n = 1, .model = &model, .first = &first, .src_params = &src_params, .length = 1};
    char *in_names[1] = {(char *)in_name};
    return add_tensor(p, &s, name, in_names, 0.0, o);
}

hone_status merge_plan_add_values(hone_merge_plan *p, const char *name, float *values, int ndim, const int64_t *shape,
                                  hone_dtype dtype) {
    merge_tensor *grown = realloc(p->tensors, (p->n_tensors + 1) * sizeof *grown);
    if (!grown) {
        free(values);
        return out_of_memory();
    }
    p->tensors = grown;
    merge_tensor *t = &p->tensors[p->n_tensors++];
    memset(t, 0, sizeof *t);
    t->values = values;
    hone_merge_tensor *pub = &t->pub;
    pub->base = -1;
    pub->dtype = dtype;
    pub->ndim = ndim;
    memcpy(pub->shape, shape, (size_t)ndim * sizeof *shape);
    int64_t numel = 1;
    for (int d = 0; d < ndim; d++) numel *= shape[d];
    t->nbytes = (uint64_t)numel * hone_dtype_size(dtype);
    return (pub->name = strdup(name)) ? HONE_OK : out_of_memory();
}

static void assign_shards(hone_merge_plan *p, uint64_t max_shard_size) {
    uint64_t current = 0;
    size_t shard = 0;
    for (size_t i = 0; i < p->n_tensors; i++) {
        /* mergekit's TensorWriter: a tensor that would overflow a non-empty shard starts the next one */
        if (current > 0 && current + p->tensors[i].nbytes > max_shard_size) {
            shard++;
            current = 0;
        }
        p->tensors[i].shard = shard;
        current += p->tensors[i].nbytes;
    }
    p->n_shards = p->n_tensors ? shard + 1 : 0;
}

static hone_status build(hone_merge_plan *p, const hone_merge_options *o) {
    const hone_merge_config *c = p->cfg;
    /* The reference model is opened first: base_model, else the first model named. */
    const char *ref = c->base_model ? c->base_model : c->n_models ? c->models[0].model : c->slices[0].sources[0].model;
    HONE_TRY(merge_plan_model(p, ref, &p->reference));
    plan_slice *slices = NULL;
    size_t n_slices = 0;
    hone_status st = make_slices(p, &slices, &n_slices);
    if (st == HONE_OK) st = check_outer_tensors(p);
    if (st == HONE_OK && c->tokenizer_source != MERGE_TOKENIZER_NONE) st = merge_vocab_plan(p);
    if (st == HONE_OK) st = add_outer_tensors(p, &slices[0], 1, o);
    for (size_t i = 0; i < n_slices && st == HONE_OK; i++)
        for (int k = 0; k < slices[i].length && st == HONE_OK; k++) {
            double t = slices[i].length > 1 ? (double)k / (double)(slices[i].length - 1) : 1.0;
            st = add_layer(p, &slices[i], k, p->num_layers++, t, o);
        }
    if (st == HONE_OK) st = add_outer_tensors(p, &slices[n_slices - 1], 0, o);
    for (size_t i = 0; i < n_slices; i++) slice_free(&slices[i]);
    free(slices);
    if (st == HONE_OK) assign_shards(p, o->max_shard_size);
    return st;
}

void merge_plan_finish(hone_merge_plan *p, const hone_merge_options *o) { assign_shards(p, o->max_shard_size); }

hone_status merge_plan_alloc(hone_merge_plan **out, const hone_merge_config *c, const hone_merge_options *o) {
    *out = NULL;
    if (!o->max_shard_size) return hone_errorf(HONE_ERR_INVALID, "max_shard_size must be positive");
    if (o->out_dtype >= 0 && o->out_dtype != HONE_DTYPE_F32 && o->out_dtype != HONE_DTYPE_F16 &&
        o->out_dtype != HONE_DTYPE_BF16)
        return hone_errorf(HONE_ERR_INVALID, "out_dtype must be F32, F16 or BF16");
    hone_merge_plan *p = calloc(1, sizeof *p);
    if (!p) return out_of_memory();
    p->cfg = c;
    p->input_dtype = c->dtype;
    p->seed = o->seed;
    *out = p;
    return HONE_OK;
}

hone_status hone_merge_plan_new(hone_merge_plan **out, const hone_merge_config *c, const hone_merge_options *o) {
    HONE_TRY(merge_plan_alloc(out, c, o));
    hone_merge_plan *p = *out;
    *out = NULL;
    hone_status st = build(p, o);
    if (st != HONE_OK) {
        hone_merge_plan_free(p);
        return st;
    }
    *out = p;
    return HONE_OK;
}

void hone_merge_plan_free(hone_merge_plan *p) {
    if (!p) return;
    for (size_t i = 0; i < p->n_tensors; i++) {
        free((char *)p->tensors[i].pub.name);
        free(p->tensors[i].inputs);
        free(p->tensors[i].model);
        free(p->tensors[i].src);
        free(p->tensors[i].values);
    }
    free(p->tensors);
    for (size_t i = 0; i < p->n_models; i++) close_model(&p->models[i]);
    free(p->models);
    free(p->config_json);
    free(p->union_tokens);
    free(p);
}

size_t hone_merge_plan_size(const hone_merge_plan *p) { return p->n_tensors; }
const hone_merge_tensor *hone_merge_plan_tensor(const hone_merge_plan *p, size_t i) { return &p->tensors[i].pub; }
int hone_merge_plan_num_layers(const hone_merge_plan *p) { return p->num_layers; }
