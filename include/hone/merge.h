/* hone/merge.h — model merging: mergekit's YAML configs and merge methods, streamed tensor by tensor.
 *
 *     hone_merge_config *cfg;
 *     if (hone_merge_config_load(&cfg, "merge.yaml") != HONE_OK) die(hone_error());
 *     hone_merge_options opt;
 *     hone_merge_options_defaults(&opt);
 *     opt.output_dir = "merged";                 // config.json, model*.safetensors, tokenizer files
 *     hone_merge_summary sum;
 *     if (hone_merge_run(cfg, &opt, &sum) != HONE_OK) die(hone_error());
 *     hone_merge_config_free(cfg);
 *
 * A config is what mergekit reads: merge_method, base_model, models (each with parameters) or slices (sources
 * with layer_range), parameters as scalars, gradients (lists interpolated over the layers of a slice) or
 * filter lists ({filter, value}), dtype, out_dtype, tokenizer_source (union, base or a model; or tokenizer {source})
 * and chat_template. Keys, methods and parameters hone does not know are errors with a did-you-mean, never ignored.
 *
 * Methods follow mergekit's semantics: linear, slerp, task_arithmetic, ties, dare_linear, dare_ties,
 * breadcrumbs, breadcrumbs_ties, della, della_linear, model_stock, passthrough. The arithmetic is fp32 (sums
 * and norms in double) whatever `dtype` says; inputs are first rounded to `dtype` when it is set, as mergekit
 * loads them. DARE and DELLA draw their masks from hone's counter-based generator: the mask of an input
 * tensor depends only on the seed, the output tensor's name and the model's position, so a merge is
 * reproducible for a seed and thread count independent.
 *
 * The output tensors are those of the base model (or the first model): embeddings and final norm / lm_head
 * once, and for every layer of every output slice the tensors of that layer, renumbered. Peak memory is about
 * one tensor per input plus the output; tensors are read from memory-mapped inputs and computed by all
 * threads. Every output file is written atomically; the shards are renamed into place only once all of them
 * are complete, then the index.
 */
#ifndef HONE_MERGE_H
#define HONE_MERGE_H

#include "hone/base.h"
#include "hone/safetensors.h"
#include "hone/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    HONE_MERGE_LINEAR = 0,
    HONE_MERGE_SLERP,
    HONE_MERGE_TASK_ARITHMETIC,
    HONE_MERGE_TIES,
    HONE_MERGE_DARE_LINEAR,
    HONE_MERGE_DARE_TIES,
    HONE_MERGE_BREADCRUMBS,
    HONE_MERGE_BREADCRUMBS_TIES,
    HONE_MERGE_DELLA,
    HONE_MERGE_DELLA_LINEAR,
    HONE_MERGE_MODEL_STOCK,
    HONE_MERGE_PASSTHROUGH,
    HONE_MERGE_METHOD_COUNT
} hone_merge_method;

const char *hone_merge_method_name(hone_merge_method m); /* mergekit's spelling: "ties", "dare_linear", ... */

typedef struct hone_merge_config hone_merge_config;

/* Reads a mergekit YAML file. Errors name FILE:LINE and the key. Model paths are taken relative to the current
 * directory, as mergekit does. */
hone_status hone_merge_config_load(hone_merge_config **out, const char *path);
/* The same from text; `name` stands for the file in messages. */
hone_status hone_merge_config_parse(hone_merge_config **out, const char *text, size_t len, const char *name);
void hone_merge_config_free(hone_merge_config *c);
hone_merge_method hone_merge_config_method(const hone_merge_config *c);

typedef struct {
    size_t index, count; /* this is output tensor index + 1 of count */
    const char *name;
    uint64_t bytes_done, bytes_total; /* output bytes written so far (this tensor included) and in all */
    double seconds;                   /* since the merge started */
} hone_merge_progress;

typedef struct {
    const char *output_dir;
    uint64_t max_shard_size; /* bytes per output file before a new shard starts (default 5e9, as mergekit) */
    int out_dtype;           /* a hone_dtype (F32, F16, BF16), or -1: the config's out_dtype, else its dtype, else
                                the base model's tensor's own */
    uint64_t seed;           /* DARE / DELLA masks, MoE random gates and noise_scale */
    /* Called after each output tensor is written (from the calling thread), or NULL. */
    void (*progress)(const hone_merge_progress *p, void *user);
    void *user;
} hone_merge_options;

void hone_merge_options_defaults(hone_merge_options *o);

typedef struct {
    size_t n_tensors, n_shards;
    uint64_t bytes_written; /* tensor bytes in the output */
    int num_layers;         /* of the result */
    double seconds;
} hone_merge_summary;

hone_status hone_merge_run(const hone_merge_config *c, const hone_merge_options *o, hone_merge_summary *out);

/* ---- the plan: every output tensor with its inputs and resolved parameters, before any arithmetic ---- */

typedef struct {
    const char *model;  /* model folder */
    const char *tensor; /* its tensor that feeds this output */
    /* per-model parameters after mergekit's lookup (source, slice, then global; filters matched against the
     * input tensor's name); NAN where the method does not use one or (scale) none is given */
    double weight, density, gamma, epsilon, scale;
} hone_merge_input;

typedef struct {
    const char *name;
    hone_dtype dtype; /* written as */
    int ndim;
    int64_t shape[HONE_ST_MAX_DIMS];
    int is_embed; /* token embeddings / lm_head: vocabulary-size mismatches are reconciled as mergekit does */
    double t;     /* position of the layer in its slice, i/(n-1) (1 for a one-layer slice; 0 outside layers) */
    size_t n_inputs;
    const hone_merge_input *inputs;
    int base; /* index of the base model in inputs, or -1 */
    /* global parameters (filters matched against the output name) */
    int normalize, rescale, filter_wise;
    double lambda, slerp_t;
} hone_merge_tensor;

typedef struct hone_merge_plan hone_merge_plan;

/* Opens every referenced model and resolves the config into output tensors; nothing is computed or written.
 * Shape mismatches, missing tensors or parameters and unusable layer ranges are errors naming the tensor and
 * the models. The config must outlive the plan. */
hone_status hone_merge_plan_new(hone_merge_plan **out, const hone_merge_config *c, const hone_merge_options *o);
void hone_merge_plan_free(hone_merge_plan *p);
size_t hone_merge_plan_size(const hone_merge_plan *p);
const hone_merge_tensor *hone_merge_plan_tensor(const hone_merge_plan *p, size_t i);
int hone_merge_plan_num_layers(const hone_merge_plan *p);
/* Computes and writes the output folder: the tensors (one at a time), config.json, tokenizer files. */
hone_status hone_merge_plan_write(const hone_merge_plan *p, const hone_merge_options *o, hone_merge_summary *out);

/* LLaMA Pro block expansion: the model's L layers become num_layers by inserting, after every
 * L / (num_layers - L)-th layer, a copy of it whose output projections are zero (Llama family: o_proj and
 * down_proj; GPT-2: attn.c_proj and mlp.c_proj, weights and biases), so that the expanded model computes what
 * the original did. Written like a merge (o->output_dir, sharding, out_dtype). */
hone_status hone_expand(const char *model_dir, int num_layers, const hone_merge_options *o, hone_merge_summary *out);

/* ---- MoE assembly: mergekit-moe configs → a Mixtral checkpoint (moe.c) ----
 *
 * A mergekit-moe config: base_model, experts [{source_model, positive_prompts, negative_prompts, noise_scale,
 * residual_scale}], gate_mode (hidden | cheap_embed | random | uniform_random), dtype, experts_per_token,
 * architecture (mixtral).
 * The base and the experts must be Llama or Mistral models of one shape. The output is transformers' Mixtral layout:
 * the base model's embeddings, attention, norms and head; expert e of layer i is the MLP of layer i of experts[e]
 * (gate_proj → block_sparse_moe.experts.e.w1, down_proj → w2 (times residual_scale), up_proj → w3; with noise_scale
 * plus noise_scale × N(0, 1) from o->seed, before residual_scale: torch's distribution, not its values); the router
 * block_sparse_moe.gate.weight [E, C] of layer i has expert e's gate vector as row e, computed as mergekit's
 * get_gate_params: from the prompts' hidden states entering layer i in the base model (the last token, averaged
 * over the prompts; negative prompts subtracted; unit L2 norm), from the prompts' summed token embeddings (the same
 * for every layer), or random from o->seed (N(0, 1), or U(-1/sqrt(C), 1/sqrt(C))). Prompts are tokenized as the
 * base tokenizer's BOS text followed by the prompt, without other special tokens. Written like a merge. */
typedef struct hone_moe_config hone_moe_config;
hone_status hone_moe_config_load(hone_moe_config **out, const char *path);
hone_status hone_moe_config_parse(hone_moe_config **out, const char *text, size_t len, const char *name);
void hone_moe_config_free(hone_moe_config *c);
hone_status hone_moe_run(const hone_moe_config *c, const hone_merge_options *o, hone_merge_summary *out);

/* "5GB" (10^9), "500MB", "2GiB" (2^30), "1.5G", "1000000" (bytes) → bytes; mergekit's "5B" (billion) too. */
hone_status hone_merge_parse_size(const char *text, uint64_t *bytes);
/* "float32"/"f32"/"F32", "float16"/"f16", "bfloat16"/"bf16" (a "torch." prefix is allowed) → F32/F16/BF16. */
hone_status hone_merge_parse_dtype(const char *text, hone_dtype *out);

#ifdef __cplusplus
}
#endif
#endif
