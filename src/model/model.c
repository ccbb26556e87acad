/* Parameter layout, random initialisation, loading from and saving to Hugging Face folders. */
#include "model/model_internal.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "hone/safetensors.h"

/* ---- layout ---------------------------------------------------------------------------------------------- */

typedef struct {
    hone_model *m;
    size_t cap_tensors, cap_pieces;
} layout_builder;

static int add_tensor(layout_builder *lb, const char *name, int ndim, int64_t d0, int64_t d1) {
    hone_model *m = lb->m;
    if (m->n_tensors == lb->cap_tensors) {
        lb->cap_tensors = lb->cap_tensors ? 2 * lb->cap_tensors : 64;
        m->tensors = realloc(m->tensors, lb->cap_tensors * sizeof *m->tensors);
        HONE_ASSERT(m->tensors);
    }
    hone_param_tensor *t = &m->tensors[m->n_tensors];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = ndim;
    t->shape[0] = d0;
    t->shape[1] = ndim == 2 ? d1 : 1;
    t->size = (size_t)d0 * (size_t)t->shape[1];
    /* 16-float alignment keeps every tensor on a 64-byte boundary */
    t->offset = m->n_params;
    m->n_params += (t->size + 15) & ~(size_t)15;
    return (int)m->n_tensors++;
}

static void add_piece(layout_builder *lb, const char *hf_name, int internal, int64_t row0, int64_t rows,
                      int transposed) {
    hone_model *m = lb->m;
    if (m->n_pieces == lb->cap_pieces) {
        lb->cap_pieces = lb->cap_pieces ? 2 * lb->cap_pieces : 64;
        m->pieces = realloc(m->pieces, lb->cap_pieces * sizeof *m->pieces);
        HONE_ASSERT(m->pieces);
    }
    const hone_param_tensor *t = &m->tensors[internal];
    hone_hf_piece *p = &m->pieces[m->n_pieces++];
    memset(p, 0, sizeof *p);
    snprintf(p->hf_name, sizeof p->hf_name, "%s", hf_name);
    p->internal = internal;
    p->row0 = row0;
    p->rows = rows;
    p->cols = t->ndim == 2 ? t->shape[1] : 1;
    p->ndim = t->ndim;
    p->transposed = transposed;
}

/* An internal tensor that maps one-to-one onto a Hugging Face tensor. */
static int add_simple(layout_builder *lb, const char *name, const char *hf_name, int ndim, int64_t d0, int64_t d1,
                      int transposed) {
    int t = add_tensor(lb, name, ndim, d0, d1);
    add_piece(lb, hf_name, t, 0, d0, transposed);
    return t;
}

static void build_layout(hone_model *m) {
    int (*layer_index)[LW_COUNT] = m->layer_tensor;
    int *global = m->global_tensor;
    const hone_model_config *c = &m->cfg;
    layout_builder lb = {m, 0, 0};
    const int64_t C = c->hidden_size, V = c->vocab_size, I = c->intermediate_size;
    const int64_t Q = (int64_t)c->num_heads * c->head_dim, K = (int64_t)c->num_kv_heads * c->head_dim;
    const int gpt2 = c->arch == HONE_ARCH_GPT2;
    char hf[160], name[64];
    for (int i = 0; i < 5; i++) global[i] = -1;
    if (gpt2) {
        global[0] = add_simple(&lb, "wte", "transformer.wte.weight", 2, V, C, 0);
        global[1] = add_simple(&lb, "wpe", "transformer.wpe.weight", 2, c->max_position_embeddings, C, 0);
    } else {
        global[0] = add_simple(&lb, "wte", "model.embed_tokens.weight", 2, V, C, 0);
    }
    for (int l = 0; l < c->num_layers; l++) {
        int *li = layer_index[l];
        for (int k = 0; k < LW_COUNT; k++) li[k] = -1;
#define NAME(fmt) (snprintf(name, sizeof name, "h%d." fmt, l), name)
#define HF(fmt) (snprintf(hf, sizeof hf, fmt, l), hf)
        if (gpt2) {
            li[LW_LN1_W] = add_simple(&lb, NAME("ln1_w"), HF("transformer.h.%d.ln_1.weight"), 1, C, 0, 0);
            li[LW_LN1_B] = add_simple(&lb, NAME("ln1_b"), HF("transformer.h.%d.ln_1.bias"), 1, C, 0, 0);
            li[LW_QKV_W] = add_simple(&lb, NAME("qkv_w"), HF("transformer.h.%d.attn.c_attn.weight"), 2, Q + 2 * K, C, 1);
            li[LW_QKV_B] = add_simple(&lb, NAME("qkv_b"), HF("transformer.h.%d.attn.c_attn.bias"), 1, Q + 2 * K, 0, 0);
            li[LW_O_W] = add_simple(&lb, NAME("o_w"), HF("transformer.h.%d.attn.c_proj.weight"), 2, C, Q, 1);
            li[LW_O_B] = add_simple(&lb, NAME("o_b"), HF("transformer.h.%d.attn.c_proj.bias"), 1, C, 0, 0);
            li[LW_LN2_W] = add_simple(&lb, NAME("ln2_w"), HF("transformer.h.%d.ln_2.weight"), 1, C, 0, 0);
            li[LW_LN2_B] = add_simple(&lb, NAME("ln2_b"), HF("transformer.h.%d.ln_2.bias"), 1, C, 0, 0);
            li[LW_FC_W] = add_simple(&lb, NAME("fc_w"), HF("transformer.h.%d.mlp.c_fc.weight"), 2, I, C, 1);
            li[LW_FC_B] = add_simple(&lb, NAME("fc_b"), HF("transformer.h.%d.mlp.c_fc.bias"), 1, I, 0, 0);
            li[LW_PROJ_W] = add_simple(&lb, NAME("proj_w"), HF("transformer.h.%d.mlp.c_proj.weight"), 2, C, I, 1);
            li[LW_PROJ_B] = add_simple(&lb, NAME("proj_b"), HF("transformer.h.%d.mlp.c_proj.bias"), 1, C, 0, 0);
        } else {
            li[LW_LN1_W] = add_simple(&lb, NAME("ln1_w"), HF("model.layers.%d.input_layernorm.weight"), 1, C, 0, 0);
            int t = li[LW_QKV_W] = add_tensor(&lb, NAME("qkv_w"), 2, Q + 2 * K, C);
            add_piece(&lb, HF("model.layers.%d.self_attn.q_proj.weight"), t, 0, Q, 0);
            add_piece(&lb, HF("model.layers.%d.self_attn.k_proj.weight"), t, Q, K, 0);
            add_piece(&lb, HF("model.layers.%d.self_attn.v_proj.weight"), t, Q + K, K, 0);
            if (c->qkv_bias) {
                t = li[LW_QKV_B] = add_tensor(&lb, NAME("qkv_b"), 1, Q + 2 * K, 0);
                add_piece(&lb, HF("model.layers.%d.self_attn.q_proj.bias"), t, 0, Q, 0);
                add_piece(&lb, HF("model.layers.%d.self_attn.k_proj.bias"), t, Q, K, 0);
                add_piece(&lb, HF("model.layers.%d.self_attn.v_proj.bias"), t, Q + K, K, 0);
            }
            li[LW_O_W] = add_simple(&lb, NAME("o_w"), HF("model.layers.%d.self_attn.o_proj.weight"), 2, C, Q, 0);
            if (c->o_bias)
                li[LW_O_B] = add_simple(&lb, NAME("o_b"), HF("model.layers.%d.self_attn.o_proj.bias"), 1, C, 0, 0);
            li[LW_LN2_W] =
                add_simple(&lb, NAME("ln2_w"), HF("model.layers.%d.post_attention_layernorm.weight"), 1, C, 0, 0);
            t = li[LW_FC_W] = add_tensor(&lb, NAME("fc_w"), 2, 2 * I, C);
            add_piece(&lb, HF("model.layers.%d.mlp.gate_proj.weight"), t, 0, I, 0);
            add_piece(&lb, HF("model.layers.%d.mlp.up_proj.weight"), t, I, I, 0);
            if (c->mlp_bias) {
                t = li[LW_FC_B] = add_tensor(&lb, NAME("fc_b"), 1, 2 * I, 0);
                add_piece(&lb, HF("model.layers.%d.mlp.gate_proj.bias"), t, 0, I, 0);
                add_piece(&lb, HF("model.layers.%d.mlp.up_proj.bias"), t, I, I, 0);
            }
            li[LW_PROJ_W] = add_simple(&lb, NAME("proj_w"), HF("model.layers.%d.mlp.down_proj.weight"), 2, C, I, 0);
            if (c->mlp_bias)
                li[LW_PROJ_B] = add_simple(&lb, NAME("proj_b"), HF("model.layers.%d.mlp.down_proj.bias"), 1, C, 0, 0);
        }
#undef NAME
#undef HF
    }
    if (gpt2) {
        global[2] = add_simple(&lb, "lnf_w", "transformer.ln_f.weight", 1, C, 0, 0);
        global[3] = add_simple(&lb, "lnf_b", "transformer.ln_f.bias", 1, C, 0, 0);
    } else {
        global[2] = add_simple(&lb, "lnf_w", "model.norm.weight", 1, C, 0, 0);
    }
    if (!c->tie_word_embeddings) global[4] = add_simple(&lb, "lm_head", "lm_head.weight", 2, V, C, 0);
}

static float *at(float *base, const hone_model *m, int t) {
    return t < 0 || m->tensors[t].frozen.n_parts ? NULL : base + m->tensors[t].offset;
}

void model_carve(const hone_model *m, float *base, hone_weights *w) {
    int (*li)[LW_COUNT] = m->layer_tensor;
    const int *global = m->global_tensor;
    w->wte = at(base, m, global[0]);
    w->wpe = at(base, m, global[1]);
    w->lnf_w = at(base, m, global[2]);
    w->lnf_b = at(base, m, global[3]);
    w->lm_head = global[4] >= 0 ? at(base, m, global[4]) : w->wte;
    for (int l = 0; l < m->cfg.num_layers; l++) {
        hone_layer_weights *lw = &w->layers[l];
        lw->ln1_w = at(base, m, li[l][LW_LN1_W]);
        lw->ln1_b = at(base, m, li[l][LW_LN1_B]);
        lw->qkv_w = at(base, m, li[l][LW_QKV_W]);
        lw->qkv_b = at(base, m, li[l][LW_QKV_B]);
        lw->o_w = at(base, m, li[l][LW_O_W]);
        lw->o_b = at(base, m, li[l][LW_O_B]);
        lw->ln2_w = at(base, m, li[l][LW_LN2_W]);
        lw->ln2_b = at(base, m, li[l][LW_LN2_B]);
        lw->fc_w = at(base, m, li[l][LW_FC_W]);
        lw->fc_b = at(base, m, li[l][LW_FC_B]);
        lw->proj_w = at(base, m, li[l][LW_PROJ_W]);
        lw->proj_b = at(base, m, li[l][LW_PROJ_B]);
    }
}

/* Allocates a model with its layout and zeroed parameters (no gradients yet); frozen: the base's matrices are left
 * out of the parameters, for the caller to point tensors[].frozen at. */
static hone_status model_new(hone_model **out, const hone_model_config *c, int frozen) {
    *out = NULL;
    if (c->hidden_size <= 0 || c->num_layers <= 0 || c->num_heads <= 0 || c->num_kv_heads <= 0 || c->head_dim <= 0 ||
        c->num_heads % c->num_kv_heads || c->vocab_size <= 0 || c->intermediate_size <= 0)
        return hone_errorf(HONE_ERR_INVALID, "invalid model configuration (%s)", c->model_type);
    hone_model *m = calloc(1, sizeof *m);
    if (!m) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    m->cfg = *c;
    m->layer_tensor = calloc((size_t)c->num_layers, sizeof *m->layer_tensor);
    m->w.layers = calloc((size_t)c->num_layers, sizeof(hone_layer_weights));
    m->g.layers = calloc((size_t)c->num_layers, sizeof(hone_layer_weights));
    if (!m->layer_tensor || !m->w.layers || !m->g.layers) {
        hone_model_free(m);
        return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    }
    build_layout(m);
    m->segments = calloc(m->n_tensors, sizeof *m->segments);
    if (m->segments) {
        for (size_t i = 0; i < m->n_tensors; i++) {
            m->segments[i].offset = m->tensors[i].offset;
            m->segments[i].size = m->tensors[i].size;
            m->segments[i].decay = m->tensors[i].ndim >= 2;
        }
        if (frozen) model_freeze_layout(m, NULL);
        m->params = hone_alloc((m->n_params ? m->n_params : 1) * sizeof(float));
    }
    hone_status st = m->segments && m->params
                         ? HONE_OK
                         : hone_errorf(HONE_ERR_NOMEM, "out of memory for %zu parameters", m->n_params);
    if (st == HONE_OK && frozen) st = model_alloc_tile(m);
    if (st != HONE_OK) {
        hone_model_free(m);
        return st;
    }
    if (!frozen) model_carve(m, m->params, &m->w); /* frozen: once the matrices' parts are known (load_model) */
    *out = m;
    return HONE_OK;
}

hone_status model_alloc_grads(hone_model *m) {
    if (m->grads) return HONE_OK;
    if (m->n_frozen)
        return hone_errorf(HONE_ERR_UNSUPPORTED, "full fine-tuning needs fp32 weights, and this model's base is frozen "
                           "(base_dtype bf16 or auto are for adapter training); load the model with base_dtype fp32");
    m->grads = hone_alloc(m->n_params * sizeof(float));
    if (!m->grads) return hone_errorf(HONE_ERR_NOMEM, "out of memory for gradients of %zu parameters", m->n_params);
    model_carve(m, m->grads, &m->g);
    return HONE_OK;
}

void hone_model_free(hone_model *m) {
    if (!m) return;
    free(m->source_dir);
    free(m->source_config);
    free(m->tensors);
    free(m->segments);
    free(m->pieces);
    free(m->layer_tensor);
    free(m->w.layers);
    free(m->g.layers);
    hone_free(m->params);
    hone_free(m->params16);
    hone_free(m->tile);
    if (m->mapped) hone_checkpoint_close(m->mapped);
    free(m->mapped);
    hone_free(m->grads);
    model_free_activations(m);
    hone_free(m->rope_cos);
    hone_free(m->rope_sin);
    free(m);
}

/* ---- random initialisation --------------------------------------------------------------------------------- */

hone_status hone_model_create(hone_model **out, const hone_model_config *c, uint64_t seed) {
    HONE_TRY(model_new(out, c, 0));
    hone_model *m = *out;
    hone_rng rng = hone_rng_new(seed, 0x696e6974 /* "init" */);
    const float std = 0.02f, proj_std = 0.02f / sqrtf(2.0f * (float)c->num_layers);
    for (size_t i = 0; i < m->n_tensors; i++) {
        const hone_param_tensor *t = &m->tensors[i];
        float *p = m->params + t->offset;
        const char *dot = strchr(t->name, '.');
        const char *base = dot ? dot + 1 : t->name;
        if (t->ndim == 1) {
            float v = strstr(base, "ln") == base ? (strstr(base, "_w") ? 1.0f : 0.0f) : 0.0f;
            for (size_t k = 0; k < t->size; k++) p[k] = v;
        } else {
            float s = (!strcmp(base, "o_w") || !strcmp(base, "proj_w")) ? proj_std : std;
            hone_rng_fill_normal(&rng, p, t->size, s);
        }
    }
    return HONE_OK;
}

/* ---- loading ------------------------------------------------------------------------------------------------ */

/* Tensors that Hugging Face checkpoints may hold but that are buffers, not parameters. */
static int is_known_buffer(const char *name) {
    size_t n = strlen(name);
    static const char *const suffixes[] = {".attn.bias", ".attn.masked_bias", ".rotary_emb.inv_freq"};
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        size_t k = strlen(suffixes[i]);
        if (n >= k && !strcmp(name + n - k, suffixes[i])) return 1;
    }
    return 0;
}

/* GPT-2 checkpoints saved from GPT2Model have no "transformer." prefix. */
static const char *checkpoint_name(const hone_model *m, const char *hf_name, int strip_prefix) {
    if (strip_prefix && m->cfg.arch == HONE_ARCH_GPT2 && !strncmp(hf_name, "transformer.", 12)) return hf_name + 12;
    return hf_name;
}

/* The checkpoint tensor of piece p, its shape checked. */
static hone_status find_piece(const hone_model *m, const hone_checkpoint *ck, const hone_hf_piece *p,
                              int strip_prefix, const hone_st_tensor **out) {
    const char *name = checkpoint_name(m, p->hf_name, strip_prefix);
    const hone_st_tensor *t = *out = hone_checkpoint_find(ck, name);
    if (!t)
        return hone_errorf(HONE_ERR_FORMAT, "tensor '%s' is missing from the checkpoint (expected for %s with %d layers)",
                           name, m->cfg.model_type, m->cfg.num_layers);
    int64_t want0 = p->transposed ? p->cols : p->rows, want1 = p->transposed ? p->rows : p->cols;
    int ok = t->ndim == p->ndim && t->shape[0] == want0 && (p->ndim == 1 || t->shape[1] == want1);
    if (!ok) {
        char got[128] = "", want[64];
        for (int d = 0; d < t->ndim; d++) {
            size_t len = strlen(got);
            snprintf(got + len, sizeof got - len, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
        }
        if (p->ndim == 1) snprintf(want, sizeof want, "%lld", (long long)want0);
        else snprintf(want, sizeof want, "%lld, %lld", (long long)want0, (long long)want1);
        return hone_errorf(HONE_ERR_FORMAT, "%s: tensor '%s' has shape [%s], config.json implies [%s]", t->file_path,
                           name, got, want);
    }
    return HONE_OK;
}

static hone_status load_piece(hone_model *m, const hone_st_tensor *t, const hone_hf_piece *p, float *scratch) {
    float *dst = m->params + m->tensors[p->internal].offset + (size_t)p->row0 * p->cols;
    if (!p->transposed) return hone_st_tensor_to_f32(t, dst);
    HONE_TRY(hone_st_tensor_to_f32(t, scratch));
    /* checkpoint [cols, rows] -> internal [rows, cols] */
    for (int64_t r = 0; r < p->rows; r++)
        for (int64_t c = 0; c < p->cols; c++) dst[r * p->cols + c] = scratch[c * p->rows + r];
    return HONE_OK;
}

/* Takes the mapped pages of a tensor that was copied out of them off this process's resident set (they stay in the
 * page cache): the peak of a load is then about the copy's size, not the copy's and the file's. */
static void release_pages(const hone_st_tensor *t) {
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE), at = (uintptr_t)t->data;
    const uintptr_t begin = (at + page - 1) & ~(page - 1), end = (at + t->nbytes) & ~(page - 1);
    if (end > begin) madvise((void *)begin, end - begin, MADV_DONTNEED);
}

/* A piece of a frozen matrix becomes its next part: read in place from the mapping, or for HONE_BASE_BF16 of another
 * dtype rounded into params16 at *o16, file row by file row through `row` (in hone's layout: GPT-2's Conv1D
 * transposed). Returns 1 in *in_place when the part reads the mapping. */
static hone_status freeze_piece(hone_model *m, const hone_st_tensor *t, const hone_hf_piece *p, hone_base_mode mode,
                                size_t *o16, float *row, int *in_place) {
    if (t->dtype != HONE_DTYPE_F32 && t->dtype != HONE_DTYPE_F16 && t->dtype != HONE_DTYPE_BF16)
        return hone_errorf(HONE_ERR_UNSUPPORTED, "%s: tensor '%s' is %s, which a frozen base cannot read in place "
                           "(f32, f16 or bf16); load the model with base_dtype fp32", t->file_path, t->name,
                           hone_dtype_name(t->dtype));
    op_matrix *w = &m->tensors[p->internal].frozen;
    HONE_ASSERT(w->n_parts < OP_MATRIX_PARTS);
    op_matrix_part *part = &w->part[w->n_parts++];
    *in_place = mode != HONE_BASE_BF16 || t->dtype == HONE_DTYPE_BF16;
    if (*in_place) {
        *part = (op_matrix_part){t->data, t->dtype, (int)p->rows, p->transposed};
        return HONE_OK;
    }
    uint16_t *dst = m->params16 + *o16;
    const int64_t n0 = t->shape[0], n1 = t->shape[1];
    for (int64_t r = 0; r < n0; r++) {
        hone_convert_to_f32(row, t->data + (size_t)(r * n1) * hone_dtype_size(t->dtype), t->dtype, (size_t)n1);
        for (int64_t c = 0; c < n1; c++) dst[p->transposed ? c * n0 + r : r * n1 + c] = hone_f32_to_bf16(row[c]);
    }
    *part = (op_matrix_part){dst, HONE_DTYPE_BF16, (int)p->rows, 0};
    *o16 += ((size_t)(n0 * n1) + 31) & ~(size_t)31;
    return HONE_OK;
}

/* Reads every piece: into the fp32 parameters, or for a frozen model's matrices (mode other than HONE_BASE_FP32)
 * as parts; *in_place counts the parts that read the mapping. */
static hone_status load_weights(hone_model *m, const hone_checkpoint *ck, const char *dir, hone_base_mode mode,
                                size_t *in_place) {
    int strip = m->cfg.arch == HONE_ARCH_GPT2 && !hone_checkpoint_find(ck, "transformer.wte.weight") &&
                hone_checkpoint_find(ck, "wte.weight");
    /* scratch for an fp32 transposed piece, a file row of a frozen one, and params16's size (bf16 of other dtypes) */
    size_t max_piece = 0, n16 = 0;
    for (size_t i = 0; i < m->n_pieces; i++) {
        const hone_hf_piece *p = &m->pieces[i];
        const size_t n = (size_t)(p->rows * p->cols);
        if (!m->n_frozen || !model_is_base_matrix(m, (size_t)p->internal)) {
            if (p->transposed && n > max_piece) max_piece = n;
            continue;
        }
        const size_t file_row = (size_t)(p->transposed ? p->rows : p->cols);
        if (file_row > max_piece) max_piece = file_row;
        const hone_st_tensor *t = hone_checkpoint_find(ck, checkpoint_name(m, p->hf_name, strip));
        if (mode == HONE_BASE_BF16 && t && t->dtype != HONE_DTYPE_BF16) n16 += (n + 31) & ~(size_t)31;
    }
    float *scratch = max_piece ? malloc(max_piece * sizeof(float)) : NULL;
    /* not hone_alloc, which zeroes it: the conversion writes every page */
    if (n16) m->params16 = aligned_alloc(64, n16 * sizeof(uint16_t));
    if ((max_piece && !scratch) || (n16 && !m->params16)) {
        free(scratch);
        return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    }
    hone_status st = HONE_OK;
    size_t o16 = 0;
    *in_place = 0;
    for (size_t i = 0; i < m->n_pieces && st == HONE_OK; i++) {
        const hone_hf_piece *p = &m->pieces[i];
        const hone_st_tensor *t;
        st = find_piece(m, ck, p, strip, &t);
        if (st != HONE_OK) break;
        int mapped = 0;
        if (m->n_frozen && model_is_base_matrix(m, (size_t)p->internal))
            st = freeze_piece(m, t, p, mode, &o16, scratch, &mapped);
        else
            st = load_piece(m, t, p, scratch);
        if (mapped) *in_place += 1;
        else release_pages(t);
    }
    free(scratch);
    HONE_TRY(st);
    /* Every tensor of the checkpoint must have been used: a leftover means an architecture variant this
     * engine would silently compute wrongly. */
    for (size_t i = 0; i < ck->n_tensors; i++) {
        const char *name = ck->by_name[i]->name;
        if (is_known_buffer(name)) continue;
        if (m->cfg.tie_word_embeddings && !strcmp(name, "lm_head.weight")) continue;
        int used = 0;
        for (size_t k = 0; k < m->n_pieces && !used; k++)
            used = !strcmp(checkpoint_name(m, m->pieces[k].hf_name, strip), name);
        if (!used)
            return hone_errorf(HONE_ERR_UNSUPPORTED,
                               "%s: checkpoint tensor '%s' has no place in a %s model as config.json describes it "
                               "(unsupported variant?)",
                               dir, name, m->cfg.model_type);
    }
    return HONE_OK;
}

/* A frozen model keeps the checkpoint open while its matrices read the mapping. */
hone_status hone_model_load_frozen(hone_model **out, const char *dir, hone_base_mode mode) {
    *out = NULL;
    char *config_path = hone_path_join(dir, "config.json");
    char *text = NULL;
    hone_status st = hone_file_read(config_path, &text, NULL);
    hone_model_config cfg;
    if (st == HONE_OK) st = hone_model_config_parse(&cfg, text, config_path);
    free(config_path);
    if (st != HONE_OK) {
        free(text);
        return st;
    }
    hone_checkpoint *ck = calloc(1, sizeof *ck);
    st = ck ? hone_checkpoint_open(ck, dir) : hone_errorf(HONE_ERR_NOMEM, "out of memory");
    if (st != HONE_OK) {
        free(ck);
        free(text);
        return st;
    }
    hone_model *m = NULL;
    size_t in_place = 0;
    st = model_new(&m, &cfg, mode != HONE_BASE_FP32);
    if (st == HONE_OK) st = load_weights(m, ck, dir, mode, &in_place);
    char *generation_config = st == HONE_OK ? hone_path_join(dir, "generation_config.json") : NULL;
    if (generation_config)
        st = model_read_generation_eos(generation_config, cfg.vocab_size, m->generation_eos_ids,
                                       &m->n_generation_eos_ids);
    free(generation_config);
    if (st == HONE_OK && in_place) {
        m->mapped = ck;
    } else {
        hone_checkpoint_close(ck);
        free(ck);
    }
    if (st != HONE_OK) {
        free(text);
        hone_model_free(m);
        return st;
    }
    model_carve(m, m->params, &m->w);
    m->source_dir = strdup(dir);
    m->source_config = text;
    *out = m;
    return HONE_OK;
}

hone_status hone_model_load(hone_model **out, const char *dir) {
    return hone_model_load_frozen(out, dir, HONE_BASE_FP32);
}

hone_status hone_model_read_weights(hone_model *m, const char *dir) {
    if (m->n_frozen)
        return hone_errorf(HONE_ERR_UNSUPPORTED, "%s: cannot read fp32 weights into a model whose base is frozen "
                           "(base_dtype bf16 or auto); load the model again", dir);
    hone_checkpoint ck;
    size_t in_place;
    HONE_TRY(hone_checkpoint_open(&ck, dir));
    hone_status st = load_weights(m, &ck, dir, HONE_BASE_FP32, &in_place);
    hone_checkpoint_close(&ck);
    return st;
}

/* ---- saving ------------------------------------------------------------------------------------------------- */

hone_status hone_model_hf_tensor_get(const hone_model *m, const char *name, int from_grads, float *out) {
    const float *base = from_grads ? m->grads : m->params;
    if (!base) return hone_errorf(HONE_ERR_INVALID, "the model has no gradients yet");
    for (size_t i = 0; i < m->n_pieces; i++) {
        const hone_hf_piece *p = &m->pieces[i];
        if (strcmp(p->hf_name, name)) continue;
        const op_matrix *w = &m->tensors[p->internal].frozen;
        if (w->n_parts && !from_grads) {
            const int r0 = (int)p->row0, rows = (int)p->rows, cols = (int)p->cols;
            if (!p->transposed) op_matrix_widen(out, w, r0, rows, 0, cols, cols);
            else /* out [cols, rows]: column c of the rows is out's row c */
                for (int c = 0; c < cols; c++) op_matrix_widen(out + (size_t)c * rows, w, r0, rows, c, 1, cols);
            return HONE_OK;
        }
        const float *src = base + m->tensors[p->internal].offset + (size_t)p->row0 * p->cols;
        if (!p->transposed) {
            memcpy(out, src, sizeof(float) * (size_t)(p->rows * p->cols));
        } else {
            for (int64_t r = 0; r < p->rows; r++)
                for (int64_t c = 0; c < p->cols; c++) out[c * p->rows + r] = src[r * p->cols + c];
        }
        return HONE_OK;
    }
    return hone_errorf(HONE_ERR_INVALID, "the model has no tensor '%s'", name);
}

size_t hone_model_hf_tensor_count(const hone_model *m) { return m->n_pieces; }

const char *hone_model_hf_tensor_name(const hone_model *m, size_t i, int *ndim, int64_t shape[2]) {
    const hone_hf_piece *p = &m->pieces[i];
    if (ndim) *ndim = p->ndim;
    if (shape) {
        shape[0] = p->transposed ? p->cols : p->rows;
        shape[1] = p->transposed ? p->rows : p->cols;
    }
    return p->hf_name;
}

/* Tokenizer and generation files travel with the weights so the output folder is usable as it is. */
static hone_status copy_side_files(const hone_model *m, const char *dir) {
    static const char *const files[] = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                                        "vocab.json", "merges.txt", "tokenizer.model", "generation_config.json"};
    if (!m->source_dir) return HONE_OK;
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char *src = hone_path_join(m->source_dir, files[i]);
        char *dst = hone_path_join(dir, files[i]);
        hone_status st = HONE_OK;
        if (hone_file_exists(src) && strcmp(src, dst) != 0) {
            char *data;
            size_t n;
            st = hone_file_read(src, &data, &n);
            if (st == HONE_OK) {
                st = hone_file_write_atomic(dst, data, n);
                free(data);
            }
        }
        free(src);
        free(dst);
        HONE_TRY(st);
    }
    return HONE_OK;
}

/* The loaded config.json, with every field the user had, only re-stating the dtype hone writes; a model made
 * from a preset gets a config.json written from scratch. */
static char *saved_config_json(const hone_model *m) {
    json_t *root = m->source_config ? json_loads(m->source_config, 0, NULL) : NULL;
    if (!root) return hone_model_config_to_json(&m->cfg);
    json_object_set_new(root, "torch_dtype", json_string("float32"));
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_REAL_PRECISION(17));
    json_decref(root);
    return text;
}

hone_status hone_model_save(const hone_model *m, const char *dir) {
    HONE_TRY(hone_dir_create(dir));
    float *buf = hone_alloc(hone_model_num_params(m) * sizeof(float)); /* every piece, whatever dtype it is kept in */
    hone_st_entry *entries = calloc(m->n_pieces, sizeof *entries);
    if (!buf || !entries) {
        hone_free(buf);
        free(entries);
        return hone_errorf(HONE_ERR_NOMEM, "out of memory while saving");
    }
    size_t off = 0;
    hone_status st = HONE_OK;
    for (size_t i = 0; i < m->n_pieces && st == HONE_OK; i++) {
        hone_st_entry *e = &entries[i];
        e->name = hone_model_hf_tensor_name(m, i, &e->ndim, e->shape);
        e->dtype = HONE_DTYPE_F32;
        e->data = buf + off;
        st = hone_model_hf_tensor_get(m, e->name, 0, buf + off);
        off += (size_t)(m->pieces[i].rows * m->pieces[i].cols);
    }
    char *path = hone_path_join(dir, "model.safetensors");
    if (st == HONE_OK) st = hone_st_write(path, entries, m->n_pieces);
    free(path);
    hone_free(buf);
    free(entries);
    HONE_TRY(st);
    char *config = saved_config_json(m);
    path = hone_path_join(dir, "config.json");
    st = hone_file_write_atomic(path, config, strlen(config));
    free(path);
    free(config);
    HONE_TRY(st);
    return copy_side_files(m, dir);
}

/* ---- accessors ---------------------------------------------------------------------------------------------- */

const hone_model_config *hone_model_get_config(const hone_model *m) { return &m->cfg; }

int hone_model_is_eos(const hone_model *m, int32_t id) {
    if (id < 0) return 0;
    if (id == m->cfg.eos_token_id) return 1;
    for (int i = 0; i < m->cfg.n_other_eos_ids; i++)
        if (id == m->cfg.other_eos_ids[i]) return 1;
    for (int i = 0; i < m->n_generation_eos_ids; i++)
        if (id == m->generation_eos_ids[i]) return 1;
    return 0;
}

const char *hone_model_source_dir(const hone_model *m) { return m->source_dir; }
size_t hone_model_num_params(const hone_model *m) {
    size_t n = 0;
    for (size_t i = 0; i < m->n_tensors; i++) n += m->tensors[i].size;
    return n;
}
float *hone_model_params(hone_model *m) { return m->params; }
float *hone_model_grads(hone_model *m) { return m->grads; }
const hone_param_segment *hone_model_segments(const hone_model *m, size_t *n) {
    *n = m->n_tensors;
    return m->segments;
}
