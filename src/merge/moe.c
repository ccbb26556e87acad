/* MoE assembly (mergekit-moe): Llama / Mistral models of one shape → a Mixtral checkpoint.
 *
 * The config is mergekit's MoEMergeConfig (mergekit/moe/config.py) and is checked as its is_bad_config does; the
 * output follows mergekit's MixtralMoE writer in transformers' Mixtral layout (model.layers.i.block_sparse_moe.
 * experts.e.w1 / w2 / w3, block_sparse_moe.gate.weight), in its tensor order: embeddings, then per layer the base
 * model's norms and attention and the experts' up (w3), gate (w1) and down (w2) projections, then the final norm
 * and head, then the routers. The gate vectors follow mergekit/moe/router.py's get_gate_params:
 *   hidden       per prompt, the hidden state entering layer i (transformers' hidden_states[i]) at the last token,
 *                averaged over the prompts; the negative prompts' average is subtracted; unit L2 norm per layer
 *                (norms clamped at 1e-8). mergekit batches the prompts with left padding, which changes nothing
 *                for the last token, so hone runs them one at a time. mergekit runs the base model in bfloat16,
 *                hone in fp32.
 *   cheap_embed  the token embeddings of all tokens of all prompts summed and scaled to unit norm (negatives:
 *                the same, subtracted, then normalized again); one vector for every layer.
 *   random       N(0, 1); uniform_random U(-1/sqrt(C), 1/sqrt(C)), as torch.nn.Linear's default init. Drawn from
 *                hone's generator (seed o->seed), layer-major like torch.randn((L, E, C)).
 * An expert's noise_scale adds noise_scale times a standard normal to every element of its w1, w2 and w3 (before
 * residual_scale), as mergekit's noise_and_scale. The normals come from hone's generator (seed o->seed, a stream per
 * output tensor): the same distribution as torch.randn_like, not its values; the sum is fp32, rounded once to the
 * output dtype (mergekit adds in the expert's dtype).
 * The tensors are written through the merge planner and writer (plan.c, merge.c) as a passthrough plan whose
 * routers are precomputed tensors, so sharding, dtypes, atomicity and the tokenizer copy are those of a merge. */
#include "merge_internal.h"
#include "hone/model.h"
#include "hone/tokenizer.h"

#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef enum { GATE_HIDDEN, GATE_CHEAP_EMBED, GATE_RANDOM, GATE_UNIFORM_RANDOM } gate_mode;

typedef struct {
    char **items;
    size_t n;
} prompt_list;

typedef struct {
    char *source_model;
    prompt_list positive, negative;
    double residual_scale; /* NAN: none */
    double noise_scale;    /* 0: none */
    int line;
} moe_expert;

struct hone_moe_config {
    char *path, *base_model;
    moe_expert *experts;
    size_t n_experts;
    gate_mode gate;
    int dtype; /* hone_dtype, or -1: the base model's torch_dtype */
    int experts_per_token;
};

static hone_status out_of_memory(void) { return hone_errorf(HONE_ERR_NOMEM, "out of memory"); }

static void prompts_free(prompt_list *l) {
    for (size_t i = 0; i < l->n; i++) free(l->items[i]);
    free(l->items);
}

void hone_moe_config_free(hone_moe_config *c) {
    if (!c) return;
    for (size_t i = 0; i < c->n_experts; i++) {
        free(c->experts[i].source_model);
        prompts_free(&c->experts[i].positive);
        prompts_free(&c->experts[i].negative);
    }
    free(c->experts);
    free(c->base_model);
    free(c->path);
    free(c);
}

/* ---- config ---- */

static hone_status read_prompts(merge_yaml *r, yaml_node_t *n, const char *where, prompt_list *l) {
    if (merge_yaml_is_null(n)) return HONE_OK;
    if (n->type != YAML_SEQUENCE_NODE) return merge_yaml_error(r, n, where, "expected a list of prompt texts");
    size_t count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (!(l->items = calloc(count ? count : 1, sizeof *l->items))) return out_of_memory();
    for (size_t i = 0; i < count; i++) {
        yaml_node_t *item = merge_yaml_node(r, n->data.sequence.items.start[i]);
        if (item->type != YAML_SCALAR_NODE) return merge_yaml_error(r, item, where, "prompts are texts");
        l->n++;
        HONE_TRY(merge_yaml_string(r, item, where, &l->items[i]));
    }
    return HONE_OK;
}

static hone_status visit_expert(merge_yaml *r, const char *key, yaml_node_t *v, void *ctx) {
    moe_expert *e = ctx;
    if (!strcmp(key, "source_model")) return merge_yaml_model(r, v, key, &e->source_model);
    if (!strcmp(key, "positive_prompts")) return read_prompts(r, v, key, &e->positive);
    if (!strcmp(key, "negative_prompts")) return read_prompts(r, v, key, &e->negative);
    if (merge_yaml_is_null(v)) return HONE_OK;
    if (!merge_yaml_number(v, !strcmp(key, "noise_scale") ? &e->noise_scale : &e->residual_scale))
        return merge_yaml_error(r, v, key, "expected a number");
    return HONE_OK;
}

static hone_status each_expert(merge_yaml *r, yaml_node_t *n, void *item, int unused) {
    static const char *const keys[] = {"source_model", "positive_prompts", "negative_prompts",
                                       "noise_scale",  "residual_scale",   NULL};
    (void)unused;
    moe_expert *e = item;
    e->line = merge_yaml_line(n);
    e->residual_scale = NAN;
    HONE_TRY(merge_yaml_mapping(r, n, "experts", keys, visit_expert, e));
    if (!e->source_model) return merge_yaml_error(r, n, "experts", "an expert needs 'source_model'");
    return HONE_OK;
}

static hone_status read_gate_mode(merge_yaml *r, yaml_node_t *v, hone_moe_config *c) {
    static const char *const names[] = {"hidden", "cheap_embed", "random", "uniform_random", "hidden_last"};
    static const gate_mode modes[] = {GATE_HIDDEN, GATE_CHEAP_EMBED, GATE_RANDOM, GATE_UNIFORM_RANDOM, GATE_HIDDEN};
    char *name = NULL;
    HONE_TRY(merge_yaml_string(r, v, "gate_mode", &name));
    hone_status st = HONE_OK;
    size_t i = 0;
    while (i < 5 && strcmp(name, names[i])) i++;
    if (i < 5) {
        c->gate = modes[i];
    } else if (!strcmp(name, "hidden_avg")) {
        /* mergekit averages over the padded batch, pad positions included, so the result depends on padding */
        st = hone_errorf(HONE_ERR_UNSUPPORTED,
                         "%s:%d: gate_mode: hidden_avg is not supported (mergekit averages over padded positions "
                         "too); use hidden (the last token) or cheap_embed",
                         r->path, merge_yaml_line(v));
    } else {
        const char *hint = merge_closest(name, names, 4);
        char did[96] = "";
        if (hint) snprintf(did, sizeof did, " (did you mean '%s'?)", hint);
        st = hone_errorf(HONE_ERR_INVALID,
                         "%s:%d: gate_mode: unknown mode '%s'%s; expected hidden, cheap_embed, random or "
                         "uniform_random",
                         r->path, merge_yaml_line(v), name, did);
    }
    free(name);
    return st;
}

static hone_status visit_moe_top(merge_yaml *r, const char *key, yaml_node_t *v, void *ctx) {
    hone_moe_config *c = ctx;
    if (!strcmp(key, "base_model")) return merge_yaml_model(r, v, key, &c->base_model);
    if (!strcmp(key, "experts"))
        return merge_yaml_list(r, v, key, sizeof *c->experts, (void **)&c->experts, &c->n_experts, each_expert, 0);
    if (!strcmp(key, "gate_mode")) return read_gate_mode(r, v, c);
    if (!strcmp(key, "dtype")) return merge_yaml_dtype(r, v, key, &c->dtype);
    if (!strcmp(key, "experts_per_token")) {
        double k;
        if (!merge_yaml_number(v, &k) || k != floor(k) || k < 1 || k > 1e6)
            return merge_yaml_error(r, v, key, "expected a positive integer (experts must be >= 1, as mergekit)");
        c->experts_per_token = (int)k;
        return HONE_OK;
    }
    if (merge_yaml_is_null(v)) return HONE_OK;
    if (!strcmp(key, "architecture")) {
        /* mergekit picks the output architectures whose name starts with the value, case-insensitively */
        const char *a = merge_yaml_text(v), *m = "mixtral";
        size_t i = 0;
        while (a[i] && m[i] && tolower((unsigned char)a[i]) == m[i]) i++;
        if (v->type == YAML_SCALAR_NODE && !a[i]) return HONE_OK;
        return hone_errorf(HONE_ERR_UNSUPPORTED,
                           "%s:%d: architecture: '%s' is not supported: hone writes Mixtral checkpoints only "
                           "(mergekit's DeepSeek and Qwen MoE outputs are not supported yet); set architecture: "
                           "mixtral or remove the key",
                           r->path, merge_yaml_line(v), v->type == YAML_SCALAR_NODE ? a : "?");
    }
    /* shared_experts */
    return hone_errorf(HONE_ERR_UNSUPPORTED,
                       "%s:%d: shared_experts: Mixtral has no shared expert (mergekit writes them only for its "
                       "DeepSeek and Qwen MoE outputs, which hone does not support yet); remove shared_experts",
                       r->path, merge_yaml_line(v));
}

static int same_prompts(const prompt_list *a, const prompt_list *b) {
    if (a->n != b->n) return 0;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->items[i], b->items[i])) return 0;
    return 1;
}

/* mergekit's is_bad_config (without --i-understand-this-is-not-useful-without-training), except that uniform_random
 * gates, like random ones, need no prompts: mergekit checks the prompts of uniform_random configs, which it never
 * reads. */
static hone_status check_moe_config(const hone_moe_config *c) {
    if (!c->base_model) return hone_errorf(HONE_ERR_INVALID, "%s: no base_model (the attention donor)", c->path);
    if (!c->n_experts) return hone_errorf(HONE_ERR_INVALID, "%s: no experts", c->path);
    if (c->n_experts < (size_t)c->experts_per_token)
        return hone_errorf(HONE_ERR_INVALID, "%s: %zu experts but experts_per_token %d; give at least as many experts",
                           c->path, c->n_experts, c->experts_per_token);
    if (c->gate == GATE_RANDOM || c->gate == GATE_UNIFORM_RANDOM) return HONE_OK;
    for (size_t i = 0; i < c->n_experts; i++)
        if (!c->experts[i].positive.n)
            return hone_errorf(HONE_ERR_INVALID,
                               "%s:%d: expert %zu ('%s') has no positive_prompts, which gate_mode hidden and "
                               "cheap_embed need",
                               c->path, c->experts[i].line, i, c->experts[i].source_model);
    int all_same_prompts = 1, all_same_model = 1;
    for (size_t i = 1; i < c->n_experts; i++) {
        all_same_prompts &= same_prompts(&c->experts[i].positive, &c->experts[0].positive) &&
                            same_prompts(&c->experts[i].negative, &c->experts[0].negative);
        all_same_model &= !strcmp(c->experts[i].source_model, c->experts[0].source_model);
    }
    if (all_same_prompts && c->n_experts > 1)
        return hone_errorf(HONE_ERR_INVALID,
                           "%s: every expert has the same positive and negative prompts, which gives every expert the "
                           "same gate; give each expert prompts typical of what it should receive",
                           c->path);
    if (all_same_model && c->n_experts > 1)
        return hone_errorf(HONE_ERR_INVALID,
                           "%s: every expert is '%s': the MoE would compute what that model does at a higher cost; "
                           "for sparse upcycling (training afterwards) use gate_mode: random",
                           c->path, c->experts[0].source_model);
    return HONE_OK;
}

hone_status hone_moe_config_parse(hone_moe_config **out, const char *text, size_t len, const char *name) {
    static const char *const keys[] = {"base_model",        "experts",        "gate_mode",    "dtype",
                                       "experts_per_token", "shared_experts", "architecture", NULL};
    *out = NULL;
    hone_moe_config *c = calloc(1, sizeof *c);
    if (!c || !(c->path = strdup(name))) {
        free(c);
        return out_of_memory();
    }
    c->dtype = -1;
    c->experts_per_token = 2;
    hone_status st = merge_yaml_parse(text, len, name, keys, visit_moe_top, c);
    if (st == HONE_OK) st = check_moe_config(c);
    if (st != HONE_OK) {
        hone_moe_config_free(c);
        return st;
    }
    *out = c;
    return HONE_OK;
}

hone_status hone_moe_config_load(hone_moe_config **out, const char *path) {
    char *text;
    size_t n;
    *out = NULL;
    HONE_TRY(hone_file_read(path, &text, &n));
    hone_status st = hone_moe_config_parse(out, text, n, path);
    free(text);
    return st;
}

/* ---- models ---- */

/* A model's config.json field as text, or NULL. */
static char *config_string(const merge_model *m, const char *key) {
    json_t *root = json_loads(m->config_json, 0, NULL);
    const char *v = json_string_value(json_object_get(root, key));
    char *out = v ? strdup(v) : NULL;
    json_decref(root);
    return out;
}

/* mergekit's MixtralMoE.supports_config: every model Llama or Mistral, all of one model_type. */
static hone_status check_model_types(const hone_merge_plan *p) {
    char *first = config_string(&p->models[0], "model_type");
    hone_status st = HONE_OK;
    for (size_t i = 0; i < p->n_models && st == HONE_OK; i++) {
        char *type = config_string(&p->models[i], "model_type");
        if (!type || (strcmp(type, "llama") && strcmp(type, "mistral")))
            st = hone_errorf(HONE_ERR_UNSUPPORTED,
                             "model '%s' has model_type '%s'; MoE assembly into Mixtral supports Llama and Mistral "
                             "models (gate_proj / up_proj / down_proj MLPs) only",
                             p->models[i].path, type ? type : "(none)");
        else if (strcmp(type, first))
            st = hone_errorf(HONE_ERR_UNSUPPORTED,
                             "model '%s' is %s but '%s' is %s; a Mixtral MoE needs models of one architecture",
                             p->models[i].path, type, p->models[0].path, first);
        free(type);
    }
    free(first);
    return st;
}

/* Tensors of a Mistral layer as mergekit's architecture table lists them; the MLP ones become experts. */
static const char *const attention_part[] = {"input_layernorm.weight",  "self_attn.q_proj.weight",
                                             "self_attn.k_proj.weight", "self_attn.v_proj.weight",
                                             "self_attn.o_proj.weight", "post_attention_layernorm.weight"};
static const char *const mlp_part[] = {"up_proj", "gate_proj", "down_proj"}; /* → w3, w1, w2 */
static const char *const expert_part[] = {"w3", "w1", "w2"};
#define N_ATTENTION (sizeof attention_part / sizeof *attention_part)

/* Every tensor of the base model must have a place in the Mixtral checkpoint: biases (attention_bias, mlp_bias)
 * would be dropped, as mergekit drops them, so they are an error instead. */
static hone_status check_base_tensors(const merge_model *b) {
    if (strcmp(b->layer_prefix, "model.layers."))
        return hone_errorf(HONE_ERR_UNSUPPORTED, "%s: layers named %s*, not model.layers.*", b->path, b->layer_prefix);
    for (size_t i = 0; i < b->ck.n_tensors; i++) {
        const char *name = b->ck.by_name[i]->name, *rest = name + strlen("model.layers.");
        int known = !strcmp(name, "model.embed_tokens.weight") || !strcmp(name, "model.norm.weight") ||
                    !strcmp(name, "lm_head.weight") || strstr(name, ".rotary_emb.inv_freq");
        if (!strncmp(name, "model.layers.", 13)) {
            while (*rest >= '0' && *rest <= '9') rest++;
            for (size_t k = 0; !known && k < N_ATTENTION; k++) known = !strcmp(rest + 1, attention_part[k]);
            for (size_t k = 0; !known && k < 3; k++)
                known = !strncmp(rest + 1, "mlp.", 4) && !strncmp(rest + 5, mlp_part[k], strlen(mlp_part[k])) &&
                        !strcmp(rest + 5 + strlen(mlp_part[k]), ".weight");
        }
        if (!known)
            return hone_errorf(HONE_ERR_UNSUPPORTED,
                               "base model '%s' has tensor '%s', which has no place in a Mixtral checkpoint (Mixtral "
                               "has no attention or MLP biases)",
                               b->path, name);
    }
    return HONE_OK;
}

static void format_shape(char *buf, size_t cap, const hone_st_tensor *t) {
    size_t n = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < t->ndim && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
}

/* An expert's MLP tensor must have the shape of the base model's (which config.json's intermediate_size and
 * hidden_size describe). */
static hone_status check_expert_shape(const merge_model *base, const merge_model *expert, const char *name) {
    const hone_st_tensor *b = hone_checkpoint_find(&base->ck, name), *e = hone_checkpoint_find(&expert->ck, name);
    if (!e) return HONE_OK; /* merge_plan_add_copy names the missing tensor */
    if (!b) return hone_errorf(HONE_ERR_FORMAT, "base model '%s' has no tensor '%s'", base->path, name);
    if (b->ndim == e->ndim && !memcmp(b->shape, e->shape, (size_t)b->ndim * sizeof *b->shape)) return HONE_OK;
    char bs[96], es[96];
    format_shape(bs, sizeof bs, b);
    format_shape(es, sizeof es, e);
    return hone_errorf(HONE_ERR_INVALID,
                       "tensor '%s': shapes differ (%s %s, %s %s): the experts of a Mixtral MoE must have the base "
                       "model's hidden and intermediate sizes",
                       name, base->path, bs, expert->path, es);
}

/* ---- gates ---- */

/* The prompt's ids as mergekit's tokenize_prompts makes them: the BOS token's text, then the prompt, encoded
 * without adding special tokens (the BOS text becomes its id as an added token). */
static hone_status tokenize_prompt(const hone_tokenizer *tok, const char *prompt, int32_t **ids, size_t *n) {
    const char *bos = hone_tokenizer_special(tok)->bos_token;
    size_t len = (bos ? strlen(bos) : 0) + strlen(prompt);
    char *text = malloc(len + 1);
    if (!text) return out_of_memory();
    snprintf(text, len + 1, "%s%s", bos ? bos : "", prompt);
    hone_status st = hone_tokenizer_encode(tok, text, len, 0, ids, n);
    free(text);
    if (st == HONE_OK && *n == 0)
        st = hone_errorf(HONE_ERR_INVALID, "the prompt '%s' has no tokens (and the tokenizer no BOS token)", prompt);
    return st;
}

typedef struct {
    const hone_moe_config *cfg;
    const hone_tokenizer *tok;
    hone_model *model;           /* hidden */
    const hone_st_tensor *embed; /* cheap_embed */
    int L, C;
    float *row; /* [C] */
} gate_ctx;

/* hidden: the mean over the prompts of the last token's hidden state entering each layer, into out [L, C]. */
static hone_status hidden_mean(gate_ctx *g, const prompt_list *prompts, double *out) {
    memset(out, 0, (size_t)g->L * g->C * sizeof *out);
    for (size_t i = 0; i < prompts->n; i++) {
        int32_t *ids;
        size_t n;
        HONE_TRY(tokenize_prompt(g->tok, prompts->items[i], &ids, &n));
        hone_status st = hone_model_forward(g->model, ids, 1, (int)n);
        free(ids);
        HONE_TRY(st);
        for (int l = 0; l < g->L; l++) {
            const float *h = hone_model_layer_hidden(g->model, l) + (n - 1) * (size_t)g->C;
            for (int c = 0; c < g->C; c++) out[(size_t)l * g->C + c] += h[c];
        }
    }
    for (size_t j = 0; j < (size_t)g->L * g->C; j++) out[j] /= (double)prompts->n;
    return HONE_OK;
}

/* Plans the model's activations once for the longest prompt; training mode keeps every layer's input. */
static hone_status prepare_for_prompts(gate_ctx *g) {
    size_t longest = 0;
    for (size_t e = 0; e < g->cfg->n_experts; e++)
        for (int neg = 0; neg < 2; neg++) {
            const prompt_list *l = neg ? &g->cfg->experts[e].negative : &g->cfg->experts[e].positive;
            for (size_t i = 0; i < l->n; i++) {
                int32_t *ids;
                size_t n;
                HONE_TRY(tokenize_prompt(g->tok, l->items[i], &ids, &n));
                free(ids);
                if (n > longest) longest = n;
            }
        }
    if (longest > (size_t)1 << 20) return hone_errorf(HONE_ERR_INVALID, "a prompt of %zu tokens is too long", longest);
    return hone_model_prepare(g->model, 1, (int)longest, 1);
}

static void normalize(double *v, int n) {
    double sum = 0;
    for (int i = 0; i < n; i++) sum += v[i] * v[i];
    double norm = sqrt(sum) > 1e-8 ? sqrt(sum) : 1e-8;
    for (int i = 0; i < n; i++) v[i] /= norm;
}

/* cheap_embed: the sum of the embeddings of every token of every prompt, at unit norm, into out [C]. */
static hone_status embedding_sum(gate_ctx *g, const prompt_list *prompts, double *out) {
    memset(out, 0, (size_t)g->C * sizeof *out);
    const size_t row_bytes = (size_t)g->C * hone_dtype_size(g->embed->dtype);
    for (size_t i = 0; i < prompts->n; i++) {
        int32_t *ids;
        size_t n;
        HONE_TRY(tokenize_prompt(g->tok, prompts->items[i], &ids, &n));
        for (size_t t = 0; t < n; t++) {
            if (ids[t] < 0 || ids[t] >= g->embed->shape[0]) {
                hone_status st = hone_errorf(HONE_ERR_INVALID,
                                             "prompt '%s': token id %d is outside the base model's embedding (%lld "
                                             "rows)",
                                             prompts->items[i], ids[t], (long long)g->embed->shape[0]);
                free(ids);
                return st;
            }
            hone_convert_to_f32(g->row, g->embed->data + (size_t)ids[t] * row_bytes, g->embed->dtype, (size_t)g->C);
            for (int c = 0; c < g->C; c++) out[c] += g->row[c];
        }
        free(ids);
    }
    normalize(out, g->C);
    return HONE_OK;
}

/* Expert e's gate vectors [L, C] (unit norm per layer) into gates [L, E, C]. */
static hone_status expert_gate(gate_ctx *g, size_t e, float *gates, double *pos, double *neg) {
    const moe_expert *x = &g->cfg->experts[e];
    const int rows = g->cfg->gate == GATE_HIDDEN ? g->L : 1; /* cheap_embed: one vector for every layer */
    const size_t C = (size_t)g->C, E = g->cfg->n_experts;
    if (g->cfg->gate == GATE_HIDDEN) {
        HONE_TRY(hidden_mean(g, &x->positive, pos));
        if (x->negative.n) HONE_TRY(hidden_mean(g, &x->negative, neg));
    } else {
        HONE_TRY(embedding_sum(g, &x->positive, pos));
        if (x->negative.n) HONE_TRY(embedding_sum(g, &x->negative, neg));
    }
    for (int r = 0; r < rows; r++) {
        double *v = pos + r * C;
        for (size_t c = 0; x->negative.n && c < C; c++) v[c] -= neg[r * C + c];
        normalize(v, g->C);
    }
    for (int l = 0; l < g->L; l++)
        for (size_t c = 0; c < C; c++) gates[((size_t)l * E + e) * C + c] = (float)pos[(rows > 1 ? l : 0) * C + c];
    return HONE_OK;
}

/* All routers' weights, [L, E, C]. */
static hone_status gate_weights(const hone_moe_config *c, const hone_merge_plan *p, const hone_merge_options *o, int L,
                                int C, float *gates) {
    const size_t n = (size_t)L * c->n_experts * C;
    if (c->gate == GATE_RANDOM || c->gate == GATE_UNIFORM_RANDOM) {
        hone_rng rng = hone_rng_new(o->seed, hone_fnv1a64("moe gates", 9));
        if (c->gate == GATE_RANDOM) {
            hone_rng_fill_normal(&rng, gates, n, 1.0f);
        } else {
            const float scale = (float)sqrt(1.0 / C);
            for (size_t i = 0; i < n; i++) gates[i] = hone_rng_uniform(&rng) * 2 * scale - scale;
        }
        return HONE_OK;
    }
    const merge_model *base = &p->models[p->reference];
    gate_ctx g = {.cfg = c, .L = L, .C = C};
    hone_tokenizer *tok = NULL;
    double *pos = malloc((size_t)L * C * sizeof *pos), *neg = malloc((size_t)L * C * sizeof *neg);
    g.row = malloc((size_t)C * sizeof *g.row);
    hone_status st = pos && neg && g.row ? hone_tokenizer_load(&tok, base->path) : out_of_memory();
    g.tok = tok;
    if (st == HONE_OK && c->gate == GATE_HIDDEN) {
        st = hone_model_load(&g.model, base->path);
        if (st == HONE_OK) st = prepare_for_prompts(&g);
    } else if (st == HONE_OK) {
        g.embed = hone_checkpoint_find(&base->ck, "model.embed_tokens.weight");
        if (!g.embed || g.embed->ndim != 2 || g.embed->shape[1] != C)
            st = hone_errorf(HONE_ERR_FORMAT, "base model '%s' has no model.embed_tokens.weight of width %d",
                             base->path, C);
    }
    for (size_t e = 0; e < c->n_experts && st == HONE_OK; e++) st = expert_gate(&g, e, gates, pos, neg);
    hone_model_free(g.model);
    hone_tokenizer_free(tok);
    free(g.row);
    free(pos);
    free(neg);
    return st;
}

/* ---- output ---- */

/* mergekit's MixtralMoE._generate_config: the base config as a MixtralConfig (via MistralConfig for Llama: no
 * sliding window) with the expert counts. Mixtral's router options get their transformers defaults. */
static hone_status mixtral_config(const hone_moe_config *c, const merge_model *base, char **out) {
    json_t *root = json_loads(base->config_json, 0, NULL), *arch = json_array();
    if (!root || !arch) {
        json_decref(root);
        json_decref(arch);
        return out_of_memory();
    }
    json_array_append_new(arch, json_string("MixtralForCausalLM"));
    json_object_set_new(root, "architectures", arch);
    json_object_set_new(root, "model_type", json_string("mixtral"));
    json_object_set_new(root, "num_local_experts", json_integer((json_int_t)c->n_experts));
    json_object_set_new(root, "num_experts_per_tok", json_integer(c->experts_per_token));
    json_object_set_new(root, "sliding_window", json_null());
    json_object_set_new(root, "output_router_logits", json_false());
    json_object_set_new(root, "router_aux_loss_coef", json_real(0.001));
    json_object_set_new(root, "router_jitter_noise", json_real(0.0));
    *out = json_dumps(root, JSON_INDENT(2) | JSON_REAL_PRECISION(17));
    json_decref(root);
    return *out ? HONE_OK : out_of_memory();
}

/* The output dtype when neither the options nor the config give one: the base model's torch_dtype, as mergekit's
 * select_dtype; -1 when it has none (tensors keep their own). */
static int base_dtype(const merge_model *base) {
    char *name = config_string(base, "torch_dtype");
    hone_dtype d;
    int out = name && hone_merge_parse_dtype(name, &d) == HONE_OK ? (int)d : -1;
    hone_error_clear();
    free(name);
    return out;
}

static hone_status add_tensors(const hone_moe_config *c, hone_merge_plan *p, const size_t *experts,
                               const hone_merge_options *o, float *gates, int L, int C) {
    const merge_model *base = &p->models[p->reference];
    char name[256], out_name[256];
    HONE_TRY(merge_plan_add_copy(p, "model.embed_tokens.weight", p->reference, "model.embed_tokens.weight", NAN, o));
    for (int l = 0; l < L; l++) {
        for (size_t k = 0; k < N_ATTENTION; k++) {
            snprintf(name, sizeof name, "model.layers.%d.%s", l, attention_part[k]);
            HONE_TRY(merge_plan_add_copy(p, name, p->reference, name, NAN, o));
        }
        for (size_t k = 0; k < 3; k++)
            for (size_t e = 0; e < c->n_experts; e++) {
                snprintf(name, sizeof name, "model.layers.%d.mlp.%s.weight", l, mlp_part[k]);
                snprintf(out_name, sizeof out_name, "model.layers.%d.block_sparse_moe.experts.%zu.%s.weight", l, e,
                         expert_part[k]);
                HONE_TRY(check_expert_shape(base, &p->models[experts[e]], name));
                double scale = !strcmp(mlp_part[k], "down_proj") ? c->experts[e].residual_scale : NAN;
                HONE_TRY(merge_plan_add_copy(p, out_name, experts[e], name, scale, o));
                p->tensors[p->n_tensors - 1].noise = c->experts[e].noise_scale;
            }
    }
    HONE_TRY(merge_plan_add_copy(p, "model.norm.weight", p->reference, "model.norm.weight", NAN, o));
    if (hone_checkpoint_find(&base->ck, "lm_head.weight"))
        HONE_TRY(merge_plan_add_copy(p, "lm_head.weight", p->reference, "lm_head.weight", NAN, o));
    int dtype = o->out_dtype >= 0 ? o->out_dtype : p->cfg->out_dtype;
    if (dtype < 0) dtype = hone_checkpoint_find(&base->ck, "model.embed_tokens.weight")->dtype;
    const size_t E = c->n_experts, size = E * (size_t)C;
    for (int l = 0; l < L; l++) {
        float *values = malloc(size * sizeof *values);
        if (!values) return out_of_memory();
        memcpy(values, gates + (size_t)l * size, size * sizeof *values);
        snprintf(name, sizeof name, "model.layers.%d.block_sparse_moe.gate.weight", l);
        HONE_TRY(merge_plan_add_values(p, name, values, 2, (int64_t[]){(int64_t)E, C}, (hone_dtype)dtype));
    }
    return HONE_OK;
}

static hone_status hidden_size(const merge_model *base, int *C) {
    json_t *root = json_loads(base->config_json, 0, NULL);
    json_t *v = json_object_get(root, "hidden_size");
    *C = json_is_integer(v) ? (int)json_integer_value(v) : 0;
    json_decref(root);
    if (*C <= 0 || *C > 1 << 20) return hone_errorf(HONE_ERR_FORMAT, "%s: config.json has no hidden_size", base->path);
    return HONE_OK;
}

static hone_status build(const hone_moe_config *c, hone_merge_plan *p, const hone_merge_options *o, size_t *experts) {
    HONE_TRY(merge_plan_model(p, c->base_model, &p->reference));
    for (size_t e = 0; e < c->n_experts; e++) HONE_TRY(merge_plan_model(p, c->experts[e].source_model, &experts[e]));
    HONE_TRY(check_model_types(p));
    const merge_model *base = &p->models[p->reference];
    HONE_TRY(check_base_tensors(base));
    int C;
    HONE_TRY(hidden_size(base, &C));
    const int L = base->num_layers;
    p->num_layers = L;
    HONE_TRY(mixtral_config(c, base, &p->config_json));
    float *gates = malloc((size_t)L * c->n_experts * C * sizeof *gates);
    hone_status st = gates ? gate_weights(c, p, o, L, C, gates) : out_of_memory();
    if (st == HONE_OK) st = add_tensors(c, p, experts, o, gates, L, C);
    free(gates);
    if (st == HONE_OK) merge_plan_finish(p, o);
    return st;
}

hone_status hone_moe_run(const hone_moe_config *c, const hone_merge_options *o, hone_merge_summary *out) {
    /* the plan is a passthrough: tensors copied (down_proj scaled by residual_scale), routers precomputed */
    hone_merge_config pass = {.path = c->path, .method = HONE_MERGE_PASSTHROUGH, .dtype = -1, .out_dtype = c->dtype};
    hone_merge_plan *p = NULL;
    size_t *experts = calloc(c->n_experts, sizeof *experts);
    hone_status st = experts ? merge_plan_alloc(&p, &pass, o) : out_of_memory();
    if (st == HONE_OK && pass.out_dtype < 0) {
        st = merge_plan_model(p, c->base_model, &p->reference);
        if (st == HONE_OK) pass.out_dtype = base_dtype(&p->models[p->reference]);
    }
    if (st == HONE_OK) st = build(c, p, o, experts);
    if (st == HONE_OK) st = hone_merge_plan_write(p, o, out);
    hone_merge_plan_free(p);
    free(experts);
    return st;
}
