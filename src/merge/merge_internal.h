/* Internal to src/merge: the parsed config, the merge methods' properties, the per-tensor kernels. */
#ifndef HONE_MERGE_INTERNAL_H
#define HONE_MERGE_INTERNAL_H

#include "hone/merge.h"

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

typedef enum { MERGE_TOKENIZER_NONE, MERGE_TOKENIZER_BASE, MERGE_TOKENIZER_MODEL } merge_tokenizer_source;

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
};

/* The layer count of a config.json text (num_hidden_layers, n_layer, ...); `config_path` is for messages. */
hone_status merge_num_layers(const char *config_json, const char *config_path, int *out);

/* tokenizer_source (embed.c): fills vocab_rows and every model's vocab_map. */
hone_status merge_vocab_plan(hone_merge_plan *p);
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

/* out = Σ w_i x_i (/ Σ w_i when normalize). */
void merge_linear(float *out, const float *const *x, const double *w, size_t k, size_t n, int normalize);
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
