/* hone/peft.h — parameter-efficient fine-tuning: LoRA, prompt tuning and prefix tuning, with PEFT's semantics and
 * file formats (adapter_config.json + adapter_model.safetensors; ../shared/reference/ALGORITHMS.md §8).
 *
 *     hone_peft_config pc;
 *     hone_peft_config_defaults(&pc, HONE_PEFT_LORA);
 *     pc.r = 8; pc.alpha = 16; pc.target_modules = "q_proj,v_proj";
 *     hone_adapter *a;
 *     if (hone_adapter_create(&a, model, &pc, seed) != HONE_OK) die(hone_error());
 *     hone_model_attach(model, a);          // the base weights are frozen from now on
 *     ... train: hone_model_trainable() hands the adapter's parameters and gradients to the optimizer ...
 *     hone_model_save_trained(model, "out"); // adapter files for an adapter run, the full model otherwise
 *     hone_model_attach(model, NULL);
 *     hone_adapter_free(a);
 *
 * An attached adapter changes what the model computes everywhere — training passes, scoring, KV-cache
 * generation — and hone_model_prepare(training) then allocates no gradients for the base weights.
 *
 * Prompt tuning needs room in the sequence: the tokens at positions 0..n-1 of every sample (position ids, so each
 * packed sample has its own) are replaced by the n virtual token embeddings, whatever their ids; callers put n
 * placeholder tokens with label -100 in front of each sample (hone_model_virtual_tokens() says how many). Prefix
 * tuning needs nothing from callers: the learned keys and values come before every sample and real tokens take
 * positions n, n+1, ... as in Hugging Face with a cache of length n. A KV cache made with a prefix-tuning adapter
 * attached starts with the prefix in its first n slots (hone_kv_cache_length counts them; max_len stays the number
 * of tokens callers can feed): make caches after attaching.
 *
 * Trainable tensors (hone_model_trainable's segments): prompt tuning the embeddings [n, C]; prefix tuning the
 * prefix [n, 2·L·kv_dim]; prefix tuning with prefix_projection PEFT's PrefixEncoder parameters in its order:
 * embedding.weight [n, kv_dim], transform.0.weight [H, kv_dim], transform.0.bias [H], transform.2.weight
 * [2·L·kv_dim, H], transform.2.bias [2·L·kv_dim]. Saving folds that MLP into the single prompt_embeddings tensor of
 * PEFT's file (and writes the MLP to prefix_encoder.safetensors beside it, which hone_model_load_trained reads to
 * resume); hone_adapter_load, like PEFT for inference, reads the folded prefix, which then trains directly.
 */
#ifndef HONE_PEFT_H
#define HONE_PEFT_H

#include "hone/base.h"
#include "hone/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { HONE_PEFT_LORA = 1, HONE_PEFT_PROMPT = 2, HONE_PEFT_PREFIX = 3 } hone_peft_kind;
typedef enum { HONE_PROMPT_INIT_RANDOM = 0, HONE_PROMPT_INIT_TEXT, HONE_PROMPT_INIT_SAMPLE_VOCAB } hone_prompt_init;

typedef struct {
    hone_peft_kind kind;
    /* LoRA */
    int r;                      /* rank (> 0) */
    float alpha;                /* scale = alpha / r, or alpha / sqrt(r) with use_rslora */
    float dropout;              /* on the LoRA path's input, training only */
    const char *target_modules; /* comma-separated names ("q_proj,v_proj", "c_attn") or "all-linear" */
    int use_rslora;
    const char *modules_to_save; /* comma-separated modules trained in full as copies (PEFT's modules_to_save): the
                                    token embedding ("embed_tokens", GPT-2 "wte") and "lm_head"; NULL = none */
    int ensure_weight_tying;     /* with tie_word_embeddings: ONE copy serves the embedding and lm_head (PEFT's
                                    ensure_weight_tying; hone's default 1, PEFT's 0: separate copies, not mergeable) */
    /* prompt and prefix tuning */
    int num_virtual_tokens;
    hone_prompt_init init;      /* prompt tuning */
    const int32_t *init_ids;    /* HONE_PROMPT_INIT_TEXT: the tokenized init text, cycled to n */
    int n_init_ids;
    const char *init_text;      /* HONE_PROMPT_INIT_TEXT: that text, for adapter_config.json (PEFT requires it) */
    int prefix_projection;      /* prefix tuning: train through a reparameterisation MLP, folded in at save */
    int encoder_hidden_size;    /* its hidden width (0 = token_dim = kv_dim, as PEFT) */
} hone_peft_config;

/* PEFT's defaults for a kind: r 8, alpha 8, dropout 0, target_modules NULL (= the model type's defaults, as PEFT),
 * modules_to_save NULL, num_virtual_tokens 20, init RANDOM; and ensure_weight_tying 1 (PEFT: 0). */
void hone_peft_config_defaults(hone_peft_config *c, hone_peft_kind kind);
/* "lora" | "prompt" | "prefix" (the error lists the choices). */
hone_status hone_peft_kind_parse(const char *name, hone_peft_kind *out);
/* PEFT's prompt_tuning_init names: "RANDOM" | "TEXT" | "SAMPLE_VOCAB" (the error lists them). */
hone_status hone_prompt_init_parse(const char *name, hone_prompt_init *out);

typedef struct hone_adapter hone_adapter;

/* A new adapter for m (LoRA: Kaiming-uniform A, zero B, as PEFT initialises them). Target modules that match no
 * layer of m are an error naming them and listing the model's module names. */
hone_status hone_adapter_create(hone_adapter **out, const hone_model *m, const hone_peft_config *c, uint64_t seed);
/* Reads a PEFT adapter folder (adapter_config.json + adapter_model.safetensors or .bin-less) written by PEFT or
 * hone, checking it fits m. */
hone_status hone_adapter_load(hone_adapter **out, const hone_model *m, const char *dir);
/* Writes DIR/adapter_config.json and DIR/adapter_model.safetensors atomically, in PEFT's format. */
hone_status hone_adapter_save(const hone_adapter *a, const char *dir);
void hone_adapter_free(hone_adapter *a);
const hone_peft_config *hone_adapter_config(const hone_adapter *a);
size_t hone_adapter_num_params(const hone_adapter *a); /* trainable parameters */
/* Dropout on the LoRA path during training passes: the mask is a pure function of (key, layer, module, element),
 * so the backward pass regenerates it and a resumed run draws the same masks. 0 turns dropout off (the default;
 * evaluation passes must use 0). The trainer sets a new key for every micro-batch. */
void hone_adapter_set_dropout_key(hone_adapter *a, uint64_t key);
/* The same for the adapter attached to m (nothing without one): what training loops call. */
void hone_model_set_dropout_key(hone_model *m, uint64_t key);

/* Attaches a (NULL detaches). The model does not own the adapter; it must outlive the attachment. Activation
 * memory planned before is planned again by the next hone_model_prepare. */
hone_status hone_model_attach(hone_model *m, hone_adapter *a);
const hone_adapter *hone_model_adapter(const hone_model *m);
/* Placeholder tokens callers put before each sample: num_virtual_tokens of an attached prompt-tuning adapter,
 * else 0. */
int hone_model_virtual_tokens(const hone_model *m);
/* Writes W += scale · B A into the base weights of m (LoRA only; other kinds are an error): after it, m computes
 * without the adapter what it computed with it, to fp32 rounding. */
hone_status hone_adapter_merge(hone_model *m, const hone_adapter *a);

/* What the optimizer trains: the attached adapter's parameters and gradients, else the model's own. The
 * segments cover the whole buffer (*n_params floats). grads is NULL until the model is prepared for training. */
const hone_param_segment *hone_model_trainable(hone_model *m, float **params, float **grads, size_t *n_segments,
                                               size_t *n_params);
/* The adapter files for a model with an adapter attached, the full model (hone_model_save) otherwise. */
hone_status hone_model_save_trained(const hone_model *m, const char *dir);
/* Reads back into the trainable parameters what hone_model_save_trained wrote to dir (resuming a run). */
hone_status hone_model_load_trained(hone_model *m, const char *dir);

#ifdef __cplusplus
}
#endif
#endif
