/* The adapter object shared by peft.c (config, adapter_config.json, create/load/save dispatch, attach, what trains),
 * lora.c (LoRA) and prompt.c (prompt and prefix tuning). Not part of the public API.
 *
 * Every trainable tensor of an adapter lives in ONE parameter buffer and ONE gradient buffer (16-float aligned
 * segments, as the model's), so the trainer's optimizer, clipping and checkpoints see one array whatever the kind.
 * A kind plugs in through adapter_kind_ops: peft.c calls layout (+ init for a new adapter, + tensors_read for a
 * loaded one), and writes the common keys of adapter_config.json around the kind's own. */
#ifndef HONE_PEFT_INTERNAL_H
#define HONE_PEFT_INTERNAL_H

#include <jansson.h>

#include "hone/peft.h"
#include "hone/safetensors.h"
#include "model/model_internal.h"

/* One LoRA-adapted module: rows [row0, row0 + out) of the output of the layer's fused linear `weight` (LW_QKV_W,
 * LW_O_W, LW_FC_W or LW_PROJ_W) gain scale · B A dropout(x), x [N, in] being that linear's input. */
typedef struct {
    char name[96];    /* Hugging Face module path, e.g. "model.layers.0.self_attn.q_proj" */
    int layer, weight;
    int slot;         /* index of the module within its layer (q, k, v, o, ...): picks its dropout stream */
    int row0, out, in;
    size_t a, b;      /* offsets of A [r, in] and B [out, r] in the parameter and gradient buffers */
    float *h;         /* [N, r] = dropout(x) A^T of the last training forward (activation memory) */
} lora_module;

typedef struct adapter_kind_ops adapter_kind_ops;

struct hone_adapter {
    hone_peft_config cfg;        /* owned copies: cfg.target_modules, cfg.init_ids */
    char *base_model;            /* base_model_name_or_path of adapter_config.json (NULL: none) */
    hone_model_config model_cfg; /* the model it was made for: attach refuses another shape */
    const adapter_kind_ops *ops;

    /* all trainable tensors of the adapter */
    size_t n_params;
    float *params, *grads;       /* grads: NULL until a model it is attached to is prepared for training */
    hone_param_segment *segments;
    size_t n_segments;
    uint64_t dropout_key;        /* 0 = no dropout; set by the trainer per micro-batch */

    /* ---- LoRA (lora.c) ---- */
    float scale;                 /* alpha / r, or alpha / sqrt(r) with use_rslora */
    lora_module *modules;        /* in Hugging Face order: layer by layer, then module order of the layer */
    int n_modules;
    int *lora_layer_start;       /* [L + 1]: the modules of layer l are [start[l], start[l + 1]) */
    int lora_max_in;             /* widest module input */
    float *lora_act;             /* [n_modules][N, r] saved for backward (training only) */
    float *lora_scratch;         /* a row block of dropout(x) [LORA_ROWS, max_in], of h or dh [LORA_ROWS, r], and
                                    of the dropout mask (bytes) [LORA_ROWS, max_in] */
    size_t lora_act_rows;        /* N the activations were planned for */
    uint64_t lora_forward_key;   /* dropout key of the last training forward (0: none), for its backward */
    /* modules_to_save: trainable copies [V, C] of the token embedding and of lm_head, after the LoRA tensors in
     * params; has_* say which exist; a tied model with ensure_weight_tying has ONE copy (both offsets equal) */
    int has_embed_copy, has_head_copy;
    size_t embed_copy, head_copy;

    /* ---- prompt and prefix tuning (prompt.c) ---- */
    int token_dim;               /* PEFT's token_dim: C (prompt tuning) or kv_dim = NKV·HD (prefix tuning) */
    int prefix_dim;              /* 2·L·kv_dim: one virtual token's keys and values in every layer (prefix tuning) */
    int mlp_hidden;              /* width of the prefix MLP trained through (prefix_projection), else 0 */
    int prefix_folded;           /* loaded: the file holds the MLP's output, which trains directly (as PEFT) */
    char *init_text;             /* prompt_tuning_init_text (owned; cfg.init_text points to it) */
    size_t mlp_offset[5];        /* offsets of the tensors: [0] the embeddings (prompt / prefix / MLP input), then
                                    the MLP's W1, b1, W2, b2 */
    float *d_emb;                /* gradient of tensor 0 (NULL unless prepared for training) */
    float *prefix, *d_prefix;    /* [n, prefix_dim] the keys/values attention reads, and their gradient */
    float *mlp_h, *mlp_dh;       /* [n, mlp_hidden] tanh activations of the MLP and their gradient */
    int32_t *token_pos;          /* [B·T] positions of the real tokens after the prefix (n + p) */
    op_prefix *layer_prefix;     /* [L] what each layer's attention reads */
};

/* What a kind provides. All are required. */
struct adapter_kind_ops {
    /* The kind's keys of adapter_config.json: read into a->cfg (unsupported options are HONE_ERR_UNSUPPORTED
     * errors naming the key), and written from it. path is for messages. */
    hone_status (*config_read)(hone_adapter *a, json_t *root, const char *path);
    hone_status (*config_write)(const hone_adapter *a, const hone_model_config *mc, json_t *root);
    /* Checks a->cfg against the model and lays out the tensors (adapter_alloc_params). */
    hone_status (*layout)(hone_adapter *a, const hone_model *m);
    /* Initialises the parameters of a new adapter (after layout). */
    hone_status (*init)(hone_adapter *a, const hone_model *m, uint64_t seed);
    /* adapter_model.safetensors: reads every tensor the layout has from f (checking names, shapes and that
     * nothing is left over), and writes them to path in PEFT's names and layouts. */
    hone_status (*tensors_read)(hone_adapter *a, const hone_st_file *f);
    hone_status (*tensors_write)(const hone_adapter *a, const char *path);
    /* Plans the kind's activation memory for batches of B×T tokens (training: what backward needs). */
    hone_status (*prepare)(hone_adapter *a, const hone_model *m, int B, int T, int training);
    /* Frees the kind's own allocations (not params/grads/segments). */
    void (*free)(hone_adapter *a);
};

extern const adapter_kind_ops lora_ops;   /* lora.c */
extern const adapter_kind_ops prompt_ops; /* prompt.c: HONE_PEFT_PROMPT and HONE_PEFT_PREFIX (peft.c dispatches to it
                                             once prompt.c defines it) */

/* ---- peft.c helpers for the kinds ---- */
/* Allocates a->params (zeroed) with one segment per tensor: sizes[i] floats, decay[i] (weight decay applies);
 * offsets[i] receives each tensor's offset. */
hone_status adapter_alloc_params(hone_adapter *a, const size_t *sizes, const int *decay, size_t n, size_t *offsets);
/* The safetensors entry name of a tensor saved under PEFT's prefix, e.g. adapter_key(buf, "model.layers.0..."
 * , ".lora_A.weight") -> "base_model.model.model.layers.0...lora_A.weight". */
void adapter_key(char *out, size_t size, const char *module, const char *suffix);
/* Finds tensor `key` in f, also under PEFT's adapter-named variant (".default" before ".weight"); checks ndim and
 * shape and converts it to f32 into out. */
hone_status adapter_read_tensor(const hone_st_file *f, const char *key, int ndim, const int64_t *shape, float *out);
/* A key of adapter_config.json the kind does not know: fine when it holds a neutral value (null, false, {}, [])
 * as newer PEFT versions write for features left off, else an HONE_ERR_UNSUPPORTED error naming it. */
hone_status adapter_check_other_key(const char *key, json_t *v, const char *path);
/* A JSON real for a float config value, printed as its shortest decimal (0.05, not 0.05000000074505806) when
 * dumped with JSON_REAL_PRECISION(15). */
json_t *adapter_json_number(float v);

/* ---- hooks of the model passes (each is a no-op when m has no adapter of its kind) ---- */
/* LoRA (lora.c): y [N, out of `weight`] += the LoRA path of the modules on (layer, weight), x its input [N, in].
 * save != 0 (a training forward) keeps what backward needs and applies dropout when a key is set. */
void lora_linear_forward(hone_model *m, int layer, int weight, const float *x, float *y, int N, int save);
/* dx [N, in] += the LoRA path's input gradient for dy [N, out]; dA, dB accumulate into the adapter's gradients. */
void lora_linear_backward(hone_model *m, int layer, int weight, const float *x, const float *dy, float *dx, int N);
/* W += scale · B A for every module, and the modules_to_save copies replace the base's (the public
 * hone_adapter_merge); an error when the copies cannot be written into a tied model. */
hone_status lora_merge(hone_model *m, const hone_adapter *a);
/* The token embedding and lm_head [V, C] m computes with: an attached LoRA adapter's modules_to_save copy, else the
 * base's; and the gradient buffers of those copies (NULL: the weight is frozen or not prepared for training). */
const float *adapter_embedding(const hone_model *m);
const float *adapter_lm_head(const hone_model *m);
float *adapter_embedding_grad(const hone_model *m);
float *adapter_lm_head_grad(const hone_model *m);
/* Prompt and prefix tuning (prompt.c). The prefix length n of an attached prefix-tuning adapter, else 0: attention
 * rows then hold n + T scores. */
int prefix_tokens(const hone_model *m);
/* Start of a forward pass over [B, T] tokens with position ids pos (NULL: 0..T-1): computes the prefix (through its
 * MLP) and returns the position ids of embeddings and rotary tables: pos itself, or n + pos after a prefix. */
const int32_t *prompt_forward_begin(hone_model *m, const int32_t *pos, int B, int T);
/* Prompt tuning: rows of x [N, C] (the embedding output) at position ids < n (pos NULL: r % T) become the virtual
 * tokens (+ wpe[p] for GPT-2). */
void prompt_embed(const hone_model *m, float *x, const int32_t *pos, int N, int T);
/* Prefix tuning: the prefix keys/values (and, training, their gradients) of a layer for op_attention_prefix_*, or
 * NULL. */
const op_prefix *prefix_layer(hone_model *m, int layer);
/* End of the backward pass: d(virtual tokens) from dx [N, C], the gradient of the embedding output, or the prefix
 * MLP's backward. */
void prompt_backward(hone_model *m, const float *dx, int N, int T);
/* A new KV cache (k, v per layer [NKV, max_len, HD]) starts with the prefix in slots 0..n-1; returns n (0: none). */
int prefix_fill_cache(const hone_model *m, float *const *k, float *const *v, int max_len);
/* Plans the attached adapter's activation memory, and its gradients when training (hone_model_prepare). */
hone_status adapter_prepare(hone_model *m, int B, int T, int training);
/* Zeroes the adapter's gradients (hone_model_zero_grad with an adapter attached). */
void adapter_zero_grad(hone_adapter *a);

#endif
