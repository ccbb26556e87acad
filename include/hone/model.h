/* hone/model.h — decoder-only transformers (GPT-2, Llama, Mistral, Qwen2) loaded from Hugging Face folders,
 * with exact fp32 forward and backward passes on the CPU.
 *
 *     hone_model *m;
 *     if (hone_model_load(&m, "models/gpt2") != HONE_OK) die(hone_error());
 *     hone_model_prepare(m, B, T, 1);                       // plan activation memory once
 *     hone_model_forward(m, input_ids, B, T);                // trunk: embeddings -> blocks -> final norm
 *     hone_loss loss;
 *     hone_model_zero_grad(m);
 *     hone_head_cross_entropy(m, targets, 1.0f / n_targets, 1, &loss);  // chunked logits, loss, d(hidden)
 *     hone_model_backward(m);                                // accumulates into the gradient buffer
 *     ...
 *     hone_model_save(m, "out");                             // config.json + model.safetensors
 *     hone_model_free(m);
 *
 * One engine, many heads: the trunk is shared; the head (cross-entropy here) turns final hidden states into a
 * loss chunk by chunk so B×T×V logits never exist at once, and hands back the gradient of the hidden states.
 *
 * Internally linear weights are stored as [out, in] (GPT-2's Conv1D weights are transposed on load and back on
 * save), and q/k/v (and gate/up) projections are fused into one matrix so each is one GEMM. Parameters,
 * gradients and optimizer moments are each one contiguous buffer with named pointers carved out of it.
 */
#ifndef HONE_MODEL_H
#define HONE_MODEL_H

#include "hone/base.h"
#include "hone/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { HONE_ARCH_GPT2 = 0, HONE_ARCH_LLAMA = 1 } hone_arch; /* llama covers mistral and qwen2 */
typedef enum { HONE_ACT_GELU_TANH = 0, HONE_ACT_GELU_ERF, HONE_ACT_RELU, HONE_ACT_SILU } hone_activation;

#define HONE_MAX_OTHER_EOS_IDS 7

typedef struct {
    char model_type[32];          /* "gpt2", "llama", "mistral", "qwen2" */
    hone_arch arch;
    int vocab_size;
    int hidden_size;              /* C */
    int num_layers;               /* L */
    int num_heads;                /* NH */
    int num_kv_heads;             /* NKV (grouped-query attention when < NH) */
    int head_dim;                 /* HD */
    int intermediate_size;        /* I (GPT-2: n_inner or 4C) */
    int max_position_embeddings;
    float norm_eps;               /* layer_norm_epsilon / rms_norm_eps */
    float rope_theta;
    hone_activation activation;
    int tie_word_embeddings;
    int qkv_bias;                 /* q/k/v projections have biases */
    int o_bias;                   /* output projection has a bias */
    int mlp_bias;
    int scale_attn_weights;       /* GPT-2: divide scores by sqrt(HD) (always for Llama) */
    int scale_attn_by_inverse_layer_idx; /* GPT-2: also divide by (layer index + 1) */
    int sliding_window;           /* 0 = none; sequences longer than this are refused */
    int bos_token_id, eos_token_id; /* -1 when absent */
    /* config.json's further end-of-sequence ids when eos_token_id is a list (Llama 3.1: <|end_of_text|>,
     * <|eom_id|>, <|eot_id|>): eos_token_id is the first, the one text loading appends; generation stops at any */
    int other_eos_ids[HONE_MAX_OTHER_EOS_IDS];
    int n_other_eos_ids;
} hone_model_config;

/* Parses a Hugging Face config.json text; unsupported architectures or options are errors naming the
 * field. `path` is used in messages. */
hone_status hone_model_config_parse(hone_model_config *c, const char *json_text, const char *path);
/* Built-in shapes for benchmarks and the demo: gpt2-124m, smollm-135m, gpt2-tiny, llama-tiny, ... */
hone_status hone_model_config_preset(hone_model_config *c, const char *name);
const char *hone_model_config_preset_names(void); /* comma-separated, for error messages and --help */
/* A config.json text (free()) that transformers reads back to the same model. */
char *hone_model_config_to_json(const hone_model_config *c);

typedef struct hone_model hone_model;

/* Loads config.json and the safetensors weights (F32/F16/BF16; sharded or not) of a model folder. */
hone_status hone_model_load(hone_model **out, const char *dir);
/* A randomly initialised model (GPT-2 initialisation: N(0, 0.02), residual projections scaled by 1/sqrt(2L)). */
hone_status hone_model_create(hone_model **out, const hone_model_config *c, uint64_t seed);
void hone_model_free(hone_model *m);
/* Reads the weights of a model folder of the same shape (a checkpoint of m) into m's parameters. */
hone_status hone_model_read_weights(hone_model *m, const char *dir);
/* Writes DIR/config.json and DIR/model.safetensors (F32, Hugging Face names and layouts) atomically, and
 * copies tokenizer files from the folder the model was loaded from, when there are any. */
hone_status hone_model_save(const hone_model *m, const char *dir);

/* How a model whose base stays frozen (adapter training, evaluation and generation with an adapter) keeps the
 * base's matrices — the linear weights, the token embedding and an untied lm_head; the base_dtype setting. Vectors
 * (norm gains, biases) and GPT-2's position embeddings are fp32 in every mode, and every pass computes in fp32. */
typedef enum {
    HONE_BASE_FP32, /* "fp32": an fp32 copy of every weight, as hone_model_load */
    HONE_BASE_BF16, /* "bf16": bf16 tensors of the files are read in place from the mapping; f32 and f16 ones are
                       rounded to bf16 (nearest even) into a buffer of half their fp32 size */
    HONE_BASE_AUTO, /* "auto": every matrix is read in place from the mapping, in the files' dtype (f32, f16, bf16) */
} hone_base_mode;
hone_status hone_base_mode_parse(const char *name, hone_base_mode *out); /* "auto" | "fp32" | "bf16" */
/* hone_model_load for a frozen base: with HONE_BASE_BF16 or HONE_BASE_AUTO the matrices are never copied to fp32 —
 * the model keeps the checkpoint's files mapped (until hone_model_free) and the kernels read them where they lie
 * (hone's fused qkv and gate/up from the separate tensors, GPT-2's Conv1D transposed), widening a tile of rows at a
 * time: loading takes no time and those matrices are clean page cache. The model computes what the fp32 model
 * computes with the same values (rounded to bf16 where bf16 rounds them). The base is final: full fine-tuning,
 * reading weights into it and merging an adapter into it are errors (load it with HONE_BASE_FP32); adapters are
 * created, loaded and attached as usual, and saving writes the values. (model.c, base_dtype.c) */
hone_status hone_model_load_frozen(hone_model **out, const char *dir, hone_base_mode mode);
/* The same for a model already in memory with an adapter attached: its matrices are rounded to a bf16 buffer and
 * their fp32 values freed (the peak stays near the fp32 size). HONE_DTYPE_F32 is a no-op on an fp32 model; on a
 * frozen one, asking for the dtype it has is a no-op and anything else an error. (base_dtype.c) */
hone_status hone_model_set_base_dtype(hone_model *m, hone_dtype dtype);
/* The dtype the base's matrices are read in: HONE_DTYPE_F32 for an fp32 copy, else the token embedding's (the
 * matrices of one checkpoint share a dtype). */
hone_dtype hone_model_base_dtype(const hone_model *m);
int hone_model_base_mapped(const hone_model *m); /* 1 when frozen matrices are read from the mapped checkpoint */
/* The base_dtype setting of hone bench: "fp32" | "bf16" (the error lists them). */
hone_status hone_base_dtype_parse(const char *name, hone_dtype *out);

const hone_model_config *hone_model_get_config(const hone_model *m);
/* The folder the model was loaded from, or NULL for a model made in memory. */
const char *hone_model_source_dir(const hone_model *m);
size_t hone_model_num_params(const hone_model *m);
float *hone_model_params(hone_model *m);
float *hone_model_grads(hone_model *m); /* NULL until prepared for training */
/* One segment per internal tensor, with decay set for tensors of >= 2 dimensions. */
const hone_param_segment *hone_model_segments(const hone_model *m, size_t *n);

/* Names of the tensors a Hugging Face checkpoint of this model holds (in save order). */
size_t hone_model_hf_tensor_count(const hone_model *m);
const char *hone_model_hf_tensor_name(const hone_model *m, size_t i, int *ndim, int64_t shape[2]);
/* Copies one tensor in Hugging Face layout out of the parameters (from_grads = 0) or gradients (1). */
hone_status hone_model_hf_tensor_get(const hone_model *m, const char *name, int from_grads, float *out);

/* Plans activation memory for batches of up to B×T tokens; `training` also allocates what backward needs.
 * Called once per run; forward/backward never allocate. */
hone_status hone_model_prepare(hone_model *m, int B, int T, int training);
/* Runs the trunk on ids [B, T] (positions 0..T-1). b <= prepared B, t <= prepared T. */
hone_status hone_model_forward(hone_model *m, const int32_t *ids, int B, int T);
/* The same with position ids pos [B, T] for packed rows: positions restart at 0 where a sample starts and go up by
 * one, and each token attends only to the earlier tokens of its own sample (block-diagonal causal attention), so
 * a packed row computes exactly what its samples would alone. pos must stay valid until the backward pass. */
hone_status hone_model_forward_positions(hone_model *m, const int32_t *ids, const int32_t *pos, int B, int T);
/* Final hidden states of the last forward, [B*T, C]. */
const float *hone_model_hidden(const hone_model *m);
/* The residual stream entering layer `layer` in the last forward, [B*T, C] (layer 0: the embeddings; layer L: the
 * last layer's output before the final norm; below L, transformers' hidden_states[layer]); NULL unless the model was
 * prepared for training (otherwise the layers reuse two buffers) or when layer is outside [0, L]. (hidden.c) */
const float *hone_model_layer_hidden(const hone_model *m, int layer);

typedef struct {
    double sum_nll;  /* sum of -log p(target) over counted positions */
    int64_t count;   /* positions whose target != -100 */
} hone_loss;

/* Cross-entropy head on the last forward: targets [B, T] (-100 = ignored). With grad != 0, writes the
 * gradient of (grad_scale * sum_nll) w.r.t. the hidden states and accumulates the lm_head gradient. */
hone_status hone_head_cross_entropy(hone_model *m, const int32_t *targets, float grad_scale, int grad,
                                    hone_loss *out);
/* The same head without gradients, also writing each position's NLL into nll [B, T] (0 where the target is -100):
 * per-example scores of packed rows. */
hone_status hone_head_token_nll(hone_model *m, const int32_t *targets, double *nll, hone_loss *out);
/* Logits of rows [row0, row0 + n) (row = b*T + t) of the last forward into out [n, V]. */
void hone_model_logits(hone_model *m, int row0, int n, float *out);
void hone_model_zero_grad(hone_model *m);
/* Back-propagates the head's gradient through the trunk, accumulating parameter gradients. */
hone_status hone_model_backward(hone_model *m);

/* ---- inference with a KV cache ---- */
typedef struct hone_kv_cache hone_kv_cache;
hone_status hone_kv_cache_new(hone_kv_cache **out, const hone_model *m, int max_len);
void hone_kv_cache_free(hone_kv_cache *kv);
/* Feeds n tokens at the next positions of the cache; writes the logits of the last one into out [V]. */
hone_status hone_model_step(hone_model *m, hone_kv_cache *kv, const int32_t *ids, int n, float *out_logits);
int hone_kv_cache_length(const hone_kv_cache *kv);

typedef struct {
    int max_new_tokens;
    float temperature; /* 0 = greedy */
    int top_k;         /* 0 = off */
    float top_p;       /* 1 = off */
    uint64_t seed;
    int stop_at_eos;
} hone_sampling;

/* Does id end a sequence for this model: config.json's eos_token_id (any id of its list), or, for a model loaded
 * from a folder, generation_config.json's (as transformers' generate, e.g. Llama 3 instruct's <|eot_id|>)? */
int hone_model_is_eos(const hone_model *m, int32_t id);

/* Called with each generated id; return non-zero to stop. */
typedef int (*hone_token_callback)(int32_t id, void *user);
/* Generates after prompt ids; writes up to max_new_tokens ids into out (count in *n_out). */
hone_status hone_generate(hone_model *m, const int32_t *prompt, int n_prompt, const hone_sampling *s,
                          int32_t *out, int *n_out, hone_token_callback cb, void *user);

/* Approximate training FLOPs per token (6 × matrix parameters + attention), for MFU reports. */
double hone_model_flops_per_token(const hone_model_config *c, int T);

#ifdef __cplusplus
}
#endif
#endif
