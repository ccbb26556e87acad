/* The model object shared by model.c (parameters, load, save), forward.c (training passes) and
 * generate.c (KV-cache inference). Not part of the public API. */
#ifndef HONE_MODEL_INTERNAL_H
#define HONE_MODEL_INTERNAL_H

#include "hone/model.h"
#include "hone/safetensors.h"
#include "tensor/ops.h"

/* Reads eos_token_id (an id or a list of at most 1 + HONE_MAX_OTHER_EOS_IDS, each below vocab_size) from the JSON
 * file at path into ids[0, *n); a missing file or key gives *n = 0. */
hone_status model_read_generation_eos(const char *path, int vocab_size, int *ids, int *n);

/* Named views into one parameter-shaped buffer (parameters or gradients). NULL where the architecture has
 * no such tensor. Linear weights are [out, in]. */
typedef struct {
    float *ln1_w, *ln1_b;   /* [C] (ln1_b: GPT-2) */
    float *qkv_w, *qkv_b;   /* [QKV, C], [QKV] with QKV = (NH + 2 NKV) HD: q heads | k heads | v heads */
    float *o_w, *o_b;       /* [C, NH HD], [C] */
    float *ln2_w, *ln2_b;   /* [C] */
    float *fc_w, *fc_b;     /* [F, C], [F]: GPT-2 F = I; gated F = 2I (gate rows, then up rows) */
    float *proj_w, *proj_b; /* [C, I], [C] */
} hone_layer_weights;

typedef struct {
    float *wte;     /* [V, C] */
    float *wpe;     /* [P, C] (GPT-2) */
    float *lnf_w, *lnf_b;
    float *lm_head; /* [V, C]; == wte when tied */
    hone_layer_weights *layers;
} hone_weights;

enum { LW_LN1_W, LW_LN1_B, LW_QKV_W, LW_QKV_B, LW_O_W, LW_O_B, LW_LN2_W, LW_LN2_B, LW_FC_W, LW_FC_B, LW_PROJ_W,
       LW_PROJ_B, LW_COUNT };

/* An internal tensor: a named slice of the parameter buffer. */
typedef struct {
    char name[64];
    int ndim;
    int64_t shape[2];
    size_t offset, size;
    op_matrix frozen; /* n_parts > 0: a matrix of a frozen base, read where it lies (the mapped checkpoint or params16)
                         instead of from params; offset is then meaningless */
} hone_param_tensor;

/* Where a Hugging Face tensor lives: rows [row0, row0 + rows) of an internal tensor, transposed when the
 * checkpoint stores it as [in, out] (GPT-2's Conv1D). */
typedef struct {
    char hf_name[128];
    int internal;
    int64_t row0, rows, cols;
    int ndim;
    int transposed;
} hone_hf_piece;

/* Activations of one layer, kept for the backward pass. */
typedef struct {
    float *ln1, *ln1_mean, *ln1_rstd; /* [N, C], [N], [N] */
    float *qkv;                       /* [N, QKV] after rotary embeddings */
    float *att;                       /* [B, NH, T, T] */
    float *atty;                      /* [N, NH HD] */
    float *resmid;                    /* [N, C] residual after attention */
    float *ln2, *ln2_mean, *ln2_rstd;
    float *fc;                        /* [N, F] */
    float *act;                       /* [N, I] */
} hone_layer_acts;

struct hone_model {
    hone_model_config cfg;
    char *source_dir;    /* folder loaded from (tokenizer files are copied from it on save) */
    char *source_config; /* its config.json text, written back on save */
    /* generation_config.json's eos_token_id (one or a list), which stops generation besides config.json's ids, as
     * in transformers' generate */
    int generation_eos_ids[1 + HONE_MAX_OTHER_EOS_IDS];
    int n_generation_eos_ids;

    hone_param_tensor *tensors;
    size_t n_tensors;
    hone_param_segment *segments;
    hone_hf_piece *pieces;
    size_t n_pieces;

    int (*layer_tensor)[LW_COUNT]; /* index into tensors of each layer's weights (-1 = absent) */
    int global_tensor[5];          /* wte, wpe, lnf_w, lnf_b, lm_head (-1 = absent) */

    size_t n_params;
    float *params, *grads;
    hone_weights w, g;    /* w: NULL for frozen matrices */
    int n_frozen;         /* matrices of a frozen base (tensors[].frozen): 0 = every weight is in params */
    uint16_t *params16;   /* frozen matrices rounded to bf16 (base_dtype bf16 of an fp32 or f16 model), or NULL */
    hone_checkpoint *mapped; /* the checkpoint that frozen matrices are read from, kept mapped, or NULL */
    float *tile;          /* [tile_slots, OP_FROZEN_TILE, widest matrix input]: where each thread of the frozen
                             kernels widens weight rows */
    int tile_slots;       /* the thread count when the base was frozen (the kernels use at most that many) */

    /* planned once by hone_model_prepare */
    int B, T, training;
    float *act_mem;
    float **resid;            /* [L + 1] of [N, C]: input of each layer, then the output of the last */
    hone_layer_acts *acts;    /* [L] (one shared set when not training) */
    float *lnf, *lnf_mean, *lnf_rstd;
    float *d_resid, *d_ln, *d_qkv, *d_atty, *d_fc, *d_act, *d_lnf, *norm_scratch, *attn_scratch;
    float *logits_chunk;      /* [chunk_rows, V] */
    double *row_nll;          /* [chunk_rows] */
    int *head_at;             /* [chunk_rows]: the positions the loss head gathered */
    float *head_x;            /* [chunk_rows, C]: their hidden states, then d(hidden) */
    int planned_threads;      /* per-thread scratch is sized for this many */
    int chunk_rows;
    const int32_t *last_ids;  /* ids of the last forward (for the embedding backward) */
    const int32_t *last_pos;  /* its position ids, or NULL for 0..T-1 */
    const int32_t *last_attn_pos; /* the position ids its attention was masked by (before a prompt's shift) */
    int last_B, last_T;

    float *rope_cos, *rope_sin; /* [rope_len, HD/2] */
    int rope_len;

    struct hone_adapter *adapter; /* attached adapter (not owned): the base weights are frozen while it is */
};

/* Sizes derived from the config. */
static inline int model_qkv_dim(const hone_model_config *c) { return (c->num_heads + 2 * c->num_kv_heads) * c->head_dim; }
static inline int model_fc_dim(const hone_model_config *c) {
    return c->arch == HONE_ARCH_GPT2 ? c->intermediate_size : 2 * c->intermediate_size;
}
static inline op_activation model_op_activation(const hone_model_config *c) { return (op_activation)c->activation; }
hone_status model_alloc_grads(hone_model *m);
/* Carves named pointers to the fp32 tensors out of a parameter-shaped buffer (NULL for frozen matrices). */
void model_carve(const hone_model *m, float *base, hone_weights *w);
/* Frozen bases (base_dtype.c). The matrices a frozen base keeps outside the fp32 buffer: every 2-D tensor but GPT-2's
 * position embeddings (small, and added to the embedding rows in fp32). */
int model_is_base_matrix(const hone_model *m, size_t t);
/* Floats the other tensors (the vectors) take in a buffer of only them. */
size_t model_vector_floats(const hone_model *m);
/* Lays the vectors out in such a buffer, copying them from the current params into `to` when `to` is not NULL, and
 * takes the base matrices out of the fp32 layout (and the optimizer's segments); sets n_params and n_frozen. Their
 * tensors[].frozen are for the caller to fill; then model_alloc_tile. */
void model_freeze_layout(hone_model *m, float *to);
hone_status model_alloc_tile(hone_model *m);
/* dst [rows, cols] = rows [r0, r0 + rows) of matrix tensor t, fp32 or frozen (widened) */
void model_matrix_rows(const hone_model *m, int t, int64_t r0, int64_t rows, float *dst);
/* The lm_head's tensor: its own, or the token embedding when tied. */
static inline int model_lm_head_tensor(const hone_model *m) {
    return m->global_tensor[4] >= 0 ? m->global_tensor[4] : m->global_tensor[0];
}
/* The base's matrices whatever dtype they are kept in (base_dtype.c). `weight` is LW_QKV_W, LW_O_W, LW_FC_W or
 * LW_PROJ_W of `layer`, its bias the next entry of the enum. The backward overwrites dx; dw and db must be NULL
 * for a bf16 weight (it is frozen). The embedding and lm_head are an attached adapter's modules_to_save copies
 * when it has them (adapter_embedding / adapter_lm_head), else the base's. */
void model_linear_forward(hone_model *m, float *out, const float *x, int layer, int weight, int N, int IC, int OC);
void model_linear_backward(hone_model *m, float *dx, float *dw, float *db, const float *dout, const float *x,
                           int layer, int weight, int N, int IC, int OC);
void model_embedding_forward(hone_model *m, float *out, const int32_t *ids, const int32_t *pos, int N, int T);
/* logits [N, V] = x [N, C] · lm_headᵀ, and dx [N, C] = dlogits [N, V] · lm_head */
void model_lm_head_forward(hone_model *m, float *logits, const float *x, int N);
void model_lm_head_backward_dx(hone_model *m, float *dx, const float *dlogits, int N);
void model_free_activations(hone_model *m);
float model_attention_scale(const hone_model_config *c, int layer);
/* Makes sure rotary tables cover positions [0, len). */
hone_status model_ensure_rope(hone_model *m, int len);

#endif
