/* Internal to src/merge: the parsed config, the merge methods' properties, the per-tensor kernels. */
#ifndef HONE_MERGE_INTERNAL_H
#define HONE_MERGE_INTERNAL_H

#include "hone/merge.h"

#include <string.h>
#include <yaml.h>

/* ---- config (config.c) ---- */

/* A parameter value as mergekit's evaluate_setting sees it: a number (booleans are 1/0), a gradient (a list
 * of numbers interpolated at the layer's position t), or a filter list whose first matching entry's value (a
 * number or a gradient) applies. */
typedef enum { MERGE_SETTING_SCALAR, MERGE_SETTING_GRADIENT, MERGE_SETTING_FILTERS } merge_setting_kind;

typedef struct merge_condition merge_condition;

typedef struct {
    merge_setting_kind kind;
    int line;
    double scalar;
    double *values; /* GRADIENT */
    size_t n_values;
    merge_condition *conds; /* FILTERS */
    size_t n_conds;
} merge_setting;

struct merge_condition {
    char *filter; /* NULL: matches every tensor (no filter, or "*") */
    merge_setting value;
};

typedef struct {
    char *name;
    merge_setting value;
} merge_param;

typedef struct {
    merge_param *items;
    size_t n;
} merge_params;

typedef struct {
    char *model;
    int layer_range[2]; /* [first, end) */
    int has_range;      /* 0 under `models:` (all layers) */
    merge_params params;
    int line;
} merge_source;

typedef struct {
    merge_source *sources;
    size_t n_sources;
    char *base_model; /* NULL: the config's */
    merge_params params;
    int line;
} merge_slice;

typedef enum {
    MERGE_TOKENIZER_NONE,
    MERGE_TOKENIZER_BASE,
    MERGE_TOKENIZER_MODEL,
    MERGE_TOKENIZER_UNION
} merge_tokenizer_source;

struct hone_merge_config {
    char *path;
    hone_merge_method method;
    char *base_model;
    merge_source *models; /* `models:` form */
    size_t n_models;
    merge_slice *slices; /* `slices:` form */
    size_t n_slices;
    int dtype, out_dtype; /* hone_dtype, or -1 when not given */
    merge_tokenizer_source tokenizer_source;
    char *tokenizer_model; /* MERGE_TOKENIZER_MODEL */
    char *chat_template;   /* NULL, "auto" or a Jinja template */
    merge_params params;
};

/* Evaluates a setting for tensor `tensor` at layer position t. Returns 0 when a filter list has no entry for
 * the tensor (the lookup then goes on to the next level), 1 with *out set otherwise. */
int merge_setting_eval(const merge_setting *s, const char *tensor, double t, double *out);
/* The value of parameter `name` in `params`, or NULL. */
const merge_setting *merge_params_find(const merge_params *params, const char *name);

/* The candidate closest to `name` by edit distance, or NULL when none is a plausible typo. */
const char *merge_closest(const char *name, const char *const *candidates, size_t n);

/* YAML reading shared by the mergekit and mergekit-moe config readers (config.c). Errors name FILE:LINE. */
typedef struct {
    yaml_document_t doc;
    const char *path;
} merge_yaml;

static inline int merge_yaml_line(const yaml_node_t *n) { return (int)n->start_mark.line + 1; }
static inline yaml_node_t *merge_yaml_node(merge_yaml *r, int index) { return yaml_document_get_node(&r->doc, index); }
static inline const char *merge_yaml_text(const yaml_node_t *n) { return (const char *)n->data.scalar.value; }

/* Calls visit(key, value) for each pair of a mapping after checking that keys are known (did-you-mean) and
 * unique. `known` is NULL-terminated. */
typedef hone_status (*merge_yaml_visitor)(merge_yaml *r, const char *key, yaml_node_t *value, void *ctx);
/* Parses one YAML document whose root is a mapping with keys among `known`, visiting each pair. */
hone_status merge_yaml_parse(const char *text, size_t len, const char *name, const char *const *known,
                             merge_yaml_visitor visit, void *ctx);
hone_status merge_yaml_mapping(merge_yaml *r, yaml_node_t *n, const char *where, const char *const *known,
                               merge_yaml_visitor visit, void *ctx);
/* A sequence of mappings read by `each` into an array of `size`-byte elements. */
hone_status merge_yaml_list(merge_yaml *r, yaml_node_t *n, const char *where, size_t size, void **items, size_t *count,
                            hone_status (*each)(merge_yaml *, yaml_node_t *, void *, int), int flag);
hone_status merge_yaml_error(const merge_yaml *r, const yaml_node_t *n, const char *where, const char *msg);
int merge_yaml_is_null(const yaml_node_t *n);
/* A number: YAML 1.1 booleans (as PyYAML reads them) are 1 and 0; other text must be a finite number. */
int merge_yaml_number(const yaml_node_t *n, double *out);
hone_status merge_yaml_string(merge_yaml *r, const yaml_node_t *n, const char *where, char **out);
/* A model reference: a folder path. mergekit's mapping form ({model: {path, revision}, lora: ...}) names
 * remote models and LoRA adapters, which hone does not fetch or apply. */
hone_status merge_yaml_model(merge_yaml *r, const yaml_node_t *n, const char *where, char **out);
/* float32 / float16 / bfloat16 (or null: *out unchanged) → a hone_dtype in *out. */
hone_status merge_yaml_dtype(merge_yaml *r, yaml_node_t *v, const char *where, int *out);

/* ---- plan (plan.c) ---- */

typedef struct {
    char *path;
    hone_checkpoint ck;
    char *config_json; /* config.json text */
    int num_layers;
    char *layer_prefix; /* "model.layers." / "transformer.h.": layer i's tensors are <prefix><i>.<suffix> */
    /* tokenizer_source: output vocabulary row → this model's row, or -1 (NULL without tokenizer_source) */
    int32_t *vocab_map;
} merge_model;

typedef struct {
    hone_merge_tensor pub;
    hone_merge_input *inputs;
    size_t *model;              /* per input: index into plan->models */
    const hone_st_tensor **src; /* per input */
    int permuted;               /* inputs go through the models' vocab_map (embeddings with tokenizer_source) */
    uint64_t nbytes;            /* output bytes */
    size_t shard;
    float *values; /* a result computed before the merge (MoE router weights; no inputs), or NULL */
    /* passthrough: the standard deviation of Gaussian noise added to the input before its scale (MoE noise_scale),
     * drawn from hone's generator keyed by the plan's seed and the output name; 0: none */
    double noise;
} merge_tensor;

struct hone_merge_plan {
    const hone_merge_config *cfg;
    merge_model *models;
    size_t n_models;
    size_t reference; /* the model whose config.json and tokenizer the output takes (base_model or the first) */
    merge_tensor *tensors;
    size_t n_tensors;
    int num_layers;
    int input_dtype; /* the config's dtype: inputs are rounded to it on load, or -1 */
    uint64_t seed;
    size_t n_shards;
    int64_t vocab_rows; /* tokenizer_source: rows of the output vocabulary */
    char *union_tokens; /* tokenizer_source union: the tokens appended to the base tokenizer, a JSON array of
                           tokenizer.json added_tokens entries (NULL otherwise) */
    char *config_json;  /* config.json to write instead of the reference model's (MoE), or NULL */
};

/* Plans built by other code than the mergekit planner (MoE assembly): an empty plan for config c (whose method,
 * dtype and out_dtype apply), the models it reads, its output tensors in order, then the shards. */
hone_status merge_plan_alloc(hone_merge_plan **out, const hone_merge_config *c, const hone_merge_options *o);
/* Index of the model at `path` in p->models, opening it the first time. */
hone_status merge_plan_model(hone_merge_plan *p, const char *path, size_t *index);
/* Appends output tensor `name`: tensor `in_name` of model `model`, times `scale` (NAN: as it is); needs a
 * passthrough config. */
hone_status merge_plan_add_copy(hone_merge_plan *p, const char *name, size_t model, const char *in_name, double scale,
                                const hone_merge_options *o);
/* Appends output tensor `name` of the given shape, written as `dtype` from `values` (malloc'd; the plan owns them
 * from now on, even on error). */
hone_status merge_plan_add_values(hone_merge_plan *p, const char *name, float *values, int ndim, const int64_t *shape,
                                  hone_dtype dtype);
/* Assigns the output tensors to shards of at most o->max_shard_size bytes. */
void merge_plan_finish(hone_merge_plan *p, const hone_merge_options *o);

/* The layer count of a config.json text (num_hidden_layers, n_layer, ...); `config_path` is for messages. */
hone_status merge_num_layers(const char *config_json, const char *config_path, int *out);

/* tokenizer_source (embed.c): fills vocab_rows, every model's vocab_map and (union) union_tokens. */
hone_status merge_vocab_plan(hone_merge_plan *p);
/* tokenizer_source union: adds the union's tokens to the base tokenizer files copied into `dir` (tokenizer.json's
 * added_tokens, tokenizer_config.json's added_tokens_decoder), as transformers' save_pretrained writes them. */
hone_status merge_vocab_write(const hone_merge_plan *p, const char *dir);
/* Fills, in the inputs of a permuted embedding (loaded with zeros there), the rows of tokens a model lacks
 * as mergekit does: the only model that has the token, else the base model's row, else the mean of the models
 * that have it, else zeros. */
void merge_vocab_defaults(const hone_merge_plan *p, const merge_tensor *t, float *const *x);

/* ---- methods ---- */

typedef enum {
    MERGE_SPARSIFY_NONE,
    MERGE_MAGNITUDE,
    MERGE_RANDOM,
    MERGE_MAGNITUDE_OUTLIERS,
    MERGE_DELLA
} merge_sparsify;

typedef struct {
    const char *name;
    int task_arithmetic; /* the generalized task arithmetic family */
    int consensus;       /* TIES sign election ("sum") */
    merge_sparsify sparsify;
    int default_normalize, default_rescale;
    const char *global_params[5]; /* NULL-terminated */
    const char *model_params[5];
} merge_method_info;

extern const merge_method_info merge_methods[HONE_MERGE_METHOD_COUNT];

/* ---- kernels (methods.c, sparsify.c); all fp32 arrays of n elements, computed with every OpenMP thread ---- */

/* The element-wise kernels come as _chunk functions too: elements [lo, lo + m) only, m <= MERGE_CHUNK, on the
 * calling thread, for loops that are already parallel. */
#define MERGE_CHUNK 1024

/* out[lo, lo + m) = Σ w_i x_i (/ Σ w_i when normalize). Input i is the fp32 array x[i], or, where bf16 (which may be
 * NULL) has bf16[i], the BF16 array at bf16[i] (maybe unaligned: read in place from a mapped file), converted here:
 * the result of its fp32 conversion as x[i], without writing and reading back that copy. */
void merge_linear_chunk(float *out, const float *const *x, const uint8_t *const *bf16, const double *w, size_t k,
                        size_t lo, size_t m, int normalize);
/* mergekit's slerp of a (t = 0) and b (t = 1) over the flattened tensors, with its lerp fallback. */
void merge_slerp(float *out, const float *a, const float *b, size_t n, double t);
/* Model Stock: w0 the base, ws[k] the others (k <= HONE_MERGE_MAX_STOCK), rows × cols (one row of n when not
 * filter-wise). */
#define HONE_MERGE_MAX_STOCK 64
#define HONE_MERGE_MAX_STOCK_TEXT "64"
void merge_model_stock(float *out, const float *w0, const float *const *ws, size_t k, size_t rows, size_t cols);

/* Generalized task arithmetic on deltas already sparsified: d[i] = x_i - base (overwritten), weights w. */
typedef struct {
    int consensus, normalize;
    double lambda;
} merge_gta_params;
void merge_task_arithmetic(float *out, const float *base, float *const *d, const double *w, size_t k, size_t n,
                           const merge_gta_params *p);
void merge_task_arithmetic_chunk(float *out, const float *base, float *const *d, const double *w, size_t k, size_t lo,
                                 size_t m, const merge_gta_params *p);

/* Sparsification of one delta in place. rng_stream identifies the (output tensor, model) pair for the random
 * methods. `rows` × `cols` is the tensor seen as rows (DELLA ranks within rows; 1-D tensors are one row).
 * Errors (density too small for magnitude pruning, bad epsilon) name `what`. */
typedef struct {
    merge_sparsify method;
    double density, gamma, epsilon;
    int rescale; /* rescale to the original L1 norm */
    uint64_t seed, stream;
} merge_sparsify_params;
hone_status merge_sparsify_delta(float *d, size_t rows, size_t cols, const merge_sparsify_params *p, const char *what);

#endif
