/* Running a merge plan: one output tensor at a time, inputs read from the memory-mapped checkpoints, the
 * method's arithmetic on all threads, the result converted to its dtype and streamed into its shard. Shards
 * stay temporary files until every tensor is written; then they are renamed into place, the index follows,
 * then config.json and the tokenizer files, as mergekit writes them.
 *
 * Memory: element-wise methods (linear, passthrough, task_arithmetic) stream each tensor in blocks of 64K
 * elements, each block in one parallel loop whose threads take 16K-element chunks through conversion, arithmetic
 * and output rounding while they are in cache (blocks of 1M elements measured slower: the output buffer the
 * write copies from no longer fits in L2); the others (norms, ranks) hold one fp32 copy of the largest tensor
 * per input, one for the result and one for its 16-bit conversion. F32 inputs that need no conversion are read
 * in place from the mapping, and so are linear's BF16 inputs, converted inside its weighted sum (a separate
 * conversion pass into fp32 buffers cost a third of a bf16 linear merge's CPU time). A streamed 16-bit result is
 * written one block behind, by one thread while the others compute the next block into the other half buffer. */
#include "merge_internal.h"

#include <dirent.h>
#include <fnmatch.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SHARD_PATTERN "model-[0-9][0-9][0-9][0-9][0-9]-of-[0-9][0-9][0-9][0-9][0-9].safetensors"

void hone_merge_options_defaults(hone_merge_options *o) {
    memset(o, 0, sizeof *o);
    o->max_shard_size = 5000000000ull;
    o->out_dtype = -1;
    o->seed = 42;
}

static hone_status out_of_memory(void) { return hone_errorf(HONE_ERR_NOMEM, "out of memory"); }

static size_t numel_of(const hone_merge_tensor *t) {
    size_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= (size_t)t->shape[d];
    return n;
}

/* ---- inputs ---- */

/* Elements converted per call of load_chunk: hone_convert_to_f32 enters an OpenMP region (of one thread below its
 * threshold) on every call, which costs more than converting a few hundred elements. */
#define LOAD_CHUNK ((size_t)16 * MERGE_CHUNK)

/* Elements [lo, lo + n) of src as fp32 in dst, on the calling thread (n below hone_convert_to_f32's threshold for
 * threads). mergekit loads the inputs as `dtype` before any arithmetic: they are rounded to it. */
static void load_chunk(const hone_merge_plan *p, const hone_st_tensor *src, size_t lo, size_t n, float *dst) {
    hone_convert_to_f32(dst, src->data + lo * hone_dtype_size(src->dtype), src->dtype, n);
    if (p->input_dtype == HONE_DTYPE_F16)
        for (size_t j = 0; j < n; j++) dst[j] = hone_f16_to_f32(hone_f32_to_f16(dst[j]));
    else if (p->input_dtype == HONE_DTYPE_BF16)
        for (size_t j = 0; j < n; j++) dst[j] = hone_bf16_to_f32(hone_f32_to_bf16(dst[j]));
}

/* Input i of t as fp32 in the output's shape: the whole tensor, the leading sub-matrix of a larger embedding,
 * or the rows the output vocabulary maps to (rows the model lacks stay zero for merge_vocab_defaults). */
static void load_input(const hone_merge_plan *p, const merge_tensor *t, size_t i, float *dst) {
    const hone_st_tensor *src = t->src[i];
    const hone_merge_tensor *o = &t->pub;
    const size_t n = numel_of(o);
    if (!t->permuted && (int64_t)n == src->numel) {
#pragma omp parallel for schedule(static)
        for (size_t c = 0; c < n; c += LOAD_CHUNK)
            load_chunk(p, src, c, n - c < LOAD_CHUNK ? n - c : LOAD_CHUNK, dst + c);
        return;
    }
    const size_t rows = (size_t)o->shape[0], cols = (size_t)o->shape[1], src_cols = (size_t)src->shape[1];
    const int32_t *map = t->permuted ? p->models[t->model[i]].vocab_map : NULL;
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < rows; r++) {
        int64_t from = map ? map[r] : (int64_t)r;
        if (from >= 0 && from < src->shape[0])
            load_chunk(p, src, (size_t)from * src_cols, cols, dst + r * cols);
        else
            memset(dst + r * cols, 0, cols * sizeof *dst);
    }
}

/* ---- arithmetic ---- */

typedef struct {
    size_t max_inputs, max_numel;
    float **scratch;      /* max_inputs buffers of max_numel floats */
    const float **x;      /* the inputs of the current tensor */
    const uint8_t **bf16; /* linear: BF16 inputs read in place (merge_linear_chunk), else NULL */
    float **deltas;
    double *weights;
    float *out;
    uint16_t *half;      /* the result as F16 / BF16 */
    uint16_t *half_next; /* a streamed block's F16 / BF16 result while `half` holds the previous one, being written */
} workspace;

static void workspace_free(workspace *w) {
    for (size_t i = 0; w->scratch && i < w->max_inputs; i++) hone_free(w->scratch[i]);
    free(w->scratch);
    free(w->x);
    free(w->bf16);
    free(w->deltas);
    free(w->weights);
    hone_free(w->out);
    hone_free(w->half);
    hone_free(w->half_next);
}

static int is_elementwise(const hone_merge_plan *p, const merge_tensor *t);
#define BLOCK ((size_t)1 << 16)

/* Buffers for the largest tensor computed whole, or one block of those streamed element-wise. */
static hone_status workspace_new(workspace *w, const hone_merge_plan *p) {
    memset(w, 0, sizeof *w);
    int half = 0;
    for (size_t i = 0; i < p->n_tensors; i++) {
        const hone_merge_tensor *t = &p->tensors[i].pub;
        size_t need =
            (p->tensors[i].values || is_elementwise(p, &p->tensors[i])) && numel_of(t) > BLOCK ? BLOCK : numel_of(t);
        if (t->n_inputs > w->max_inputs) w->max_inputs = t->n_inputs;
        if (need > w->max_numel) w->max_numel = need;
        half |= t->dtype != HONE_DTYPE_F32;
    }
    size_t bytes = (w->max_numel ? w->max_numel : 1) * sizeof(float);
    w->scratch = calloc(w->max_inputs, sizeof *w->scratch);
    w->x = calloc(w->max_inputs, sizeof *w->x);
    w->bf16 = calloc(w->max_inputs, sizeof *w->bf16);
    w->deltas = calloc(w->max_inputs, sizeof *w->deltas);
    w->weights = calloc(w->max_inputs, sizeof *w->weights);
    w->out = hone_alloc(bytes);
    w->half = half ? hone_alloc(bytes / 2) : NULL;
    w->half_next = half ? hone_alloc(BLOCK * sizeof *w->half_next) : NULL;
    int ok = w->scratch && w->x && w->bf16 && w->deltas && w->weights && w->out &&
             ((w->half && w->half_next) || !half);
    for (size_t i = 0; ok && i < w->max_inputs; i++) ok = (w->scratch[i] = hone_alloc(bytes)) != NULL;
    if (!ok) {
        workspace_free(w);
        return hone_errorf(HONE_ERR_NOMEM, "out of memory for merge buffers (%zu inputs of %zu floats)",
                           p->tensors ? w->max_inputs : 0, w->max_numel);
    }
    return HONE_OK;
}

/* F32 data used in place: an input that needs no conversion, reshaping or rounding. */
static int usable_in_place(const hone_merge_plan *p, const merge_tensor *t, size_t i) {
    const hone_st_tensor *src = t->src[i];
    return src->dtype == HONE_DTYPE_F32 && !t->permuted && src->numel == (int64_t)numel_of(&t->pub) &&
           p->input_dtype < 0 && (uintptr_t)src->data % sizeof(float) == 0;
}

/* A BF16 input that linear's kernel reads in place (w->bf16): one needing no reshaping or rounding to another dtype. */
static int bf16_in_place(const hone_merge_plan *p, const merge_tensor *t, size_t i) {
    const hone_st_tensor *src = t->src[i];
    return p->cfg->method == HONE_MERGE_LINEAR && src->dtype == HONE_DTYPE_BF16 && !t->permuted &&
           src->numel == (int64_t)numel_of(&t->pub) && (p->input_dtype < 0 || p->input_dtype == HONE_DTYPE_BF16);
}

/* Input i of t, read-only, into w->x[i]. */
static void input_view(const hone_merge_plan *p, const merge_tensor *t, size_t i, workspace *w) {
    if (usable_in_place(p, t, i)) {
        w->x[i] = (const float *)t->src[i]->data;
        return;
    }
    load_input(p, t, i, w->scratch[i]);
    w->x[i] = w->scratch[i];
}

/* FNV-1a of the output tensor's name: with the input's position it picks the random stream of its mask. */
static uint64_t name_hash(const char *s) { return hone_fnv1a64(s, strlen(s)); }

/* The sparsified task arithmetic family on loaded inputs (w->x[base], the others in their scratch buffers): deltas
 * from the base, sparsified, mixed. */
static hone_status mix_deltas(const hone_merge_plan *p, const merge_tensor *t, workspace *w, size_t n,
                              const float **result) {
    const hone_merge_tensor *o = &t->pub;
    const merge_method_info *m = &merge_methods[p->cfg->method];
    const size_t base = (size_t)o->base, rows = o->ndim == 2 && o->shape[0] > 0 ? (size_t)o->shape[0] : 1;
    const size_t cols = n / rows;
    const float *b = w->x[base];
    size_t k = 0;
    for (size_t i = 0; i < o->n_inputs; i++) {
        if (i == base) continue;
        float *d = w->scratch[i];
#pragma omp parallel for schedule(static)
        for (size_t j = 0; j < n; j++) d[j] -= b[j];
        const hone_merge_input *in = &o->inputs[i];
        merge_sparsify_params sp = {m->sparsify, in->density,           in->gamma, in->epsilon, o->rescale,
                                    p->seed,     name_hash(o->name) + i};
        char what[1024];
        snprintf(what, sizeof what, "%s: tensor '%s' of model '%s'", m->name, o->name, in->model);
        HONE_TRY(merge_sparsify_delta(d, rows, cols, &sp, what));
        w->deltas[k] = d;
        w->weights[k++] = in->weight;
    }
    *result = b;
    if (k == 0) return HONE_OK;
    merge_gta_params gp = {m->consensus, o->normalize, o->lambda};
    merge_task_arithmetic(w->out, b, w->deltas, w->weights, k, n, &gp);
    *result = w->out;
    return HONE_OK;
}

/* Combines the loaded inputs w->x[0..k) (n elements each) by the config's method, one that needs whole tensors
 * (elementwise_method is 0); *result is w->out or an input used as it is. */
static hone_status combine(const hone_merge_plan *p, const merge_tensor *t, workspace *w, size_t n,
                           const float **result) {
    const hone_merge_tensor *o = &t->pub;
    const size_t k = o->n_inputs;
    const hone_merge_method method = p->cfg->method;
    if (merge_methods[method].task_arithmetic) return mix_deltas(p, t, w, n, result);
    *result = w->out;
    switch (method) {
        case HONE_MERGE_SLERP:
            if (k == 1)
                *result = w->x[0];
            else
                merge_slerp(w->out, w->x[o->base], w->x[1 - o->base], n, o->slerp_t);
            return HONE_OK;
        case HONE_MERGE_MODEL_STOCK: {
            if (k == 1) {
                *result = w->x[0];
                return HONE_OK;
            }
            const float *others[HONE_MERGE_MAX_STOCK];
            size_t n_others = 0;
            for (size_t i = 0; i < k; i++)
                if ((int)i != o->base) others[n_others++] = w->x[i];
            size_t cols = o->filter_wise && o->ndim >= 1 ? (size_t)o->shape[o->ndim - 1] : n;
            merge_model_stock(w->out, w->x[o->base], others, n_others, cols ? n / cols : 0, cols);
            return HONE_OK;
        }
        default:
            return hone_errorf(HONE_ERR_UNSUPPORTED, "merge method %s", merge_methods[method].name);
    }
}

/* Linear, passthrough and plain task arithmetic combine each element on its own (elementwise_block); the other
 * methods need whole tensors (norms, ranks). */
static int elementwise_method(const hone_merge_plan *p) {
    const hone_merge_method m = p->cfg->method;
    return m == HONE_MERGE_LINEAR || m == HONE_MERGE_PASSTHROUGH ||
           (merge_methods[m].task_arithmetic && merge_methods[m].sparsify == MERGE_SPARSIFY_NONE);
}

/* Tensors of an element-wise method whose inputs need no reshaping are streamed in blocks of BLOCK elements, each
 * written as soon as it is computed. */
static int is_elementwise(const hone_merge_plan *p, const merge_tensor *t) {
    if (t->permuted || !elementwise_method(p)) return 0;
    for (size_t i = 0; i < t->pub.n_inputs; i++)
        if (t->src[i]->numel != (int64_t)numel_of(&t->pub)) return 0;
    return 1;
}

/* n fp32 values rounded to a 16-bit dtype, on the calling thread. */
static void round_to_half(hone_dtype dtype, const float *x, uint16_t *h, size_t n) {
    if (dtype == HONE_DTYPE_F16)
        for (size_t i = 0; i < n; i++) h[i] = hone_f32_to_f16(x[i]);
    else
        for (size_t i = 0; i < n; i++) h[i] = hone_f32_to_bf16(x[i]);
}

/* Writes n fp32 values as the tensor's dtype. */
static hone_status write_values(hone_dtype dtype, const float *x, size_t n, workspace *w, hone_st_stream *stream) {
    if (dtype == HONE_DTYPE_F32) return hone_st_stream_write(stream, x, n * sizeof(float));
#pragma omp parallel for schedule(static)
    for (size_t c = 0; c < n; c += MERGE_CHUNK)
        round_to_half(dtype, x + c, w->half + c, n - c < MERGE_CHUNK ? n - c : MERGE_CHUNK);
    return hone_st_stream_write(stream, w->half, n * sizeof *w->half);
}

/* Before elementwise_block: the weights (and, for task arithmetic, the deltas: the inputs other than the base,
 * which must be in scratch buffers) the chunks use, and where the result will be: w->out, or an input used as it
 * is (passthrough without scale, task arithmetic over the base alone). */
static hone_status elementwise_setup(const hone_merge_plan *p, const merge_tensor *t, workspace *w, size_t *n_deltas,
                                     const float **result) {
    const hone_merge_tensor *o = &t->pub;
    *result = w->out;
    *n_deltas = 0;
    if (p->cfg->method == HONE_MERGE_LINEAR) {
        double sum = 0;
        for (size_t i = 0; i < o->n_inputs; i++) sum += w->weights[i] = o->inputs[i].weight;
        if (o->normalize && sum == 0)
            return hone_errorf(HONE_ERR_INVALID,
                               "linear: the weights of tensor '%s' sum to 0 and normalize divides by their sum; "
                               "change the weights or set normalize: false",
                               o->name);
    } else if (p->cfg->method == HONE_MERGE_PASSTHROUGH) {
        if (isnan(o->inputs[0].scale) && t->noise == 0) *result = w->x[0];
    } else {
        for (size_t i = 0; i < o->n_inputs; i++) {
            if ((int)i == o->base) continue;
            w->deltas[*n_deltas] = w->scratch[i];
            w->weights[(*n_deltas)++] = o->inputs[i].weight;
        }
        if (*n_deltas == 0) *result = w->x[o->base];
    }
    return HONE_OK;
}

/* Elements [lo, lo + m) of an element-wise method's result into w->out, on the calling thread; `at` is the index of
 * element lo in the tensor (even). Task arithmetic turns its deltas' elements into differences from the base first;
 * passthrough with noise adds, as mergekit-moe's noise_and_scale, t->noise times a standard normal (the one of the
 * element's index: the same whatever the blocks and threads) before the scale. */
static void elementwise_chunk(const hone_merge_plan *p, const merge_tensor *t, workspace *w, size_t n_deltas, size_t lo,
                              size_t m, size_t at) {
    const hone_merge_tensor *o = &t->pub;
    if (p->cfg->method == HONE_MERGE_LINEAR) {
        merge_linear_chunk(w->out, w->x, w->bf16, w->weights, o->n_inputs, lo, m, o->normalize);
    } else if (p->cfg->method == HONE_MERGE_PASSTHROUGH) {
        const float s = isnan(o->inputs[0].scale) ? 1.0f : (float)o->inputs[0].scale, *x = w->x[0];
        if (t->noise != 0) {
            float noise[MERGE_CHUNK];
            hone_rng rng = hone_rng_new(p->seed, name_hash(o->name));
            rng.counter = at; /* element i's normal comes from counters 2⌊i/2⌋ and 2⌊i/2⌋ + 1 (Box-Muller pairs) */
            hone_rng_fill_normal(&rng, noise, m, (float)t->noise);
            for (size_t j = 0; j < m; j++) w->out[lo + j] = (x[lo + j] + noise[j]) * s;
        } else {
            for (size_t j = lo; j < lo + m; j++) w->out[j] = x[j] * s;
        }
    } else {
        const float *b = w->x[o->base];
        for (size_t i = 0; i < n_deltas; i++)
            for (size_t j = lo; j < lo + m; j++) w->deltas[i][j] -= b[j];
        const merge_gta_params gp = {merge_methods[p->cfg->method].consensus, o->normalize, o->lambda};
        merge_task_arithmetic_chunk(w->out, b, w->deltas, w->weights, n_deltas, lo, m, &gp);
    }
}

/* The bytes of a streamed block's result not yet written to the shard (NULL: none). */
typedef struct {
    const void *data;
    size_t bytes;
} pending_write;

/* Elements [lo, lo + m) of tensor t by an element-wise method, written to its shard. w->x[i] point at element lo
 * of each input (in place), or at its scratch buffer, which `load` fills here. One parallel loop whose threads take
 * chunks of LOAD_CHUNK elements through loading, the method and the output rounding while they are in cache: one
 * fork-join per block rather than one per stage, which on a busy machine cost more in thread wake-ups than the
 * arithmetic. With `pending` (streamed F16 / BF16 results), the previous block is written by one thread while the
 * others compute this one, into the other half buffer, and this block is left pending: the write (the kernel's copy
 * into the page cache, a quarter of a bf16 linear merge's time) overlaps the arithmetic instead of following it. */
static hone_status elementwise_block(const hone_merge_plan *p, const merge_tensor *t, workspace *w, size_t lo, size_t m,
                                     int load, hone_st_stream *stream, pending_write *pending) {
    const hone_merge_tensor *o = &t->pub;
    size_t n_deltas;
    const float *result;
    HONE_TRY(elementwise_setup(p, t, w, &n_deltas, &result));
    const int half = o->dtype != HONE_DTYPE_F32, overlap = half && pending;
    uint16_t *h = overlap && pending->data == w->half ? w->half_next : w->half;
    hone_status written = HONE_OK;
#pragma omp parallel
    {
#pragma omp single nowait
        if (overlap && pending->data) written = hone_st_stream_write(stream, pending->data, pending->bytes);
#pragma omp for schedule(dynamic)
        for (size_t c = 0; c < m; c += LOAD_CHUNK) {
            const size_t len = m - c < LOAD_CHUNK ? m - c : LOAD_CHUNK;
            for (size_t i = 0; load && i < o->n_inputs; i++)
                if (w->x[i] == w->scratch[i]) load_chunk(p, t->src[i], lo + c, len, w->scratch[i] + c);
            for (size_t j = c; j < c + len; j += MERGE_CHUNK) { /* rounded while still in L1 */
                const size_t mj = c + len - j < MERGE_CHUNK ? c + len - j : MERGE_CHUNK;
                if (result == w->out) elementwise_chunk(p, t, w, n_deltas, j, mj, lo + j);
                if (half) round_to_half(o->dtype, result + j, h + j, mj);
            }
        }
    }
    HONE_TRY(written);
    if (overlap) {
        pending->data = h;
        pending->bytes = m * sizeof *h;
        return HONE_OK;
    }
    return half ? hone_st_stream_write(stream, h, m * sizeof *h)
                : hone_st_stream_write(stream, result, m * sizeof *result);
}

/* Computes tensor t and appends it to its shard. */
static hone_status write_tensor(const hone_merge_plan *p, const merge_tensor *t, workspace *w, hone_st_stream *stream) {
    const hone_merge_tensor *o = &t->pub;
    const size_t n = numel_of(o), k = o->n_inputs;
    const int deltas = merge_methods[p->cfg->method].task_arithmetic; /* inputs other than the base are modified */
    const float *result = NULL;
    for (size_t lo = 0; t->values && lo < n; lo += BLOCK) /* in blocks: the half buffer may hold only one */
        HONE_TRY(write_values(o->dtype, t->values + lo, n - lo < BLOCK ? n - lo : BLOCK, w, stream));
    if (t->values) return HONE_OK;
    if (is_elementwise(p, t)) {
        pending_write pending = {NULL, 0};
        for (size_t lo = 0; lo < n; lo += BLOCK) {
            for (size_t i = 0; i < k; i++) {
                w->bf16[i] = bf16_in_place(p, t, i) ? t->src[i]->data + lo * 2 : NULL;
                if (usable_in_place(p, t, i) && (!deltas || (int)i == o->base))
                    w->x[i] = (const float *)t->src[i]->data + lo;
                else
                    w->x[i] = w->bf16[i] ? NULL : w->scratch[i]; /* scratch: filled by elementwise_block */
            }
            HONE_TRY(elementwise_block(p, t, w, lo, n - lo < BLOCK ? n - lo : BLOCK, 1, stream, &pending));
        }
        return pending.data ? hone_st_stream_write(stream, pending.data, pending.bytes) : HONE_OK;
    }
    if (merge_methods[p->cfg->method].sparsify == MERGE_DELLA && o->ndim > 2)
        return hone_errorf(HONE_ERR_UNSUPPORTED, "tensor '%s': DELLA on tensors of more than 2 dimensions", o->name);
    for (size_t i = 0; i < k; i++) {
        w->bf16[i] = NULL;
        if (deltas && (int)i != o->base) {
            load_input(p, t, i, w->scratch[i]);
            w->x[i] = w->scratch[i];
        } else {
            input_view(p, t, i, w);
        }
    }
    if (t->permuted) merge_vocab_defaults(p, t, w->scratch);
    if (elementwise_method(p)) return elementwise_block(p, t, w, 0, n, 0, stream, NULL);
    HONE_TRY(combine(p, t, w, n, &result));
    return write_values(o->dtype, result, n, w, stream);
}

/* ---- output files ---- */

static void shard_name(char *buf, size_t cap, size_t shard, size_t n_shards) {
    if (n_shards == 1)
        snprintf(buf, cap, "model.safetensors");
    else
        snprintf(buf, cap, "model-%05zu-of-%05zu.safetensors", shard + 1, n_shards);
}

/* Opens the stream of shard s, announcing its tensors' names, dtypes and shapes. */
static hone_status open_shard(const hone_merge_plan *p, const char *dir, size_t s, size_t first,
                              hone_st_stream *stream) {
    size_t count = 0;
    while (first + count < p->n_tensors && p->tensors[first + count].shard == s) count++;
    hone_st_entry *entries = calloc(count, sizeof *entries);
    if (!entries) return out_of_memory();
    for (size_t i = 0; i < count; i++) {
        const hone_merge_tensor *t = &p->tensors[first + i].pub;
        entries[i] = (hone_st_entry){.name = t->name, .dtype = t->dtype, .ndim = t->ndim};
        memcpy(entries[i].shape, t->shape, sizeof t->shape);
    }
    char name[64];
    shard_name(name, sizeof name, s, p->n_shards);
    char *path = hone_path_join(dir, name);
    hone_status st = path ? hone_st_stream_open(stream, path, entries, count) : out_of_memory();
    free(path);
    free(entries);
    return st;
}

static hone_status write_index(const hone_merge_plan *p, const char *dir) {
    json_t *root = json_object(), *meta = json_object(), *map = json_object();
    uint64_t total = 0;
    int failed = !root || !meta || !map;
    for (size_t i = 0; i < p->n_tensors && !failed; i++) {
        char name[64];
        shard_name(name, sizeof name, p->tensors[i].shard, p->n_shards);
        failed |= json_object_set_new(map, p->tensors[i].pub.name, json_string(name));
        total += p->tensors[i].nbytes;
    }
    failed |= json_object_set_new(meta, "total_size", json_integer((json_int_t)total));
    failed |= json_object_set_new(root, "metadata", meta);
    failed |= json_object_set_new(root, "weight_map", map);
    char *text = failed ? NULL : json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(root);
    if (!text) return out_of_memory();
    char *path = hone_path_join(dir, "model.safetensors.index.json");
    hone_status st = path ? hone_file_write_atomic(path, text, strlen(text)) : out_of_memory();
    free(path);
    free(text);
    return st;
}

/* Weight files of another layout left in the folder by an earlier run would shadow or contradict the new ones
 * (transformers prefers model.safetensors over an index): they go. */
static void remove_stale_weights(const char *dir, size_t n_shards) {
    DIR *d = opendir(dir);
    if (!d) return;
    char ours[64];
    snprintf(ours, sizeof ours, "-of-%05zu.safetensors", n_shards);
    for (struct dirent *e; (e = readdir(d));) {
        const char *name = e->d_name;
        int stale = n_shards == 1 ? !strcmp(name, "model.safetensors.index.json") || !fnmatch(SHARD_PATTERN, name, 0)
                                  : !strcmp(name, "model.safetensors") ||
                                        (!fnmatch(SHARD_PATTERN, name, 0) && !strstr(name, ours));
        char *path = stale ? hone_path_join(dir, name) : NULL;
        if (path && unlink(path) == 0) hone_info("removed %s, left by an earlier run with another shard layout", path);
        free(path);
    }
    closedir(d);
}

static const char *dtype_torch_name(hone_dtype t) {
    return t == HONE_DTYPE_F16 ? "float16" : t == HONE_DTYPE_BF16 ? "bfloat16" : "float32";
}

/* The reference model's config.json (or the plan's own) with the result's layer count, dtype and (with
 * tokenizer_source) vocabulary size, every other field kept. */
static hone_status write_config(const hone_merge_plan *p, const hone_merge_options *o, const char *dir) {
    static const char *const layer_keys[] = {"num_hidden_layers", "n_layer", "num_layers", "n_layers"};
    json_t *root = json_loads(p->config_json ? p->config_json : p->models[p->reference].config_json, 0, NULL);
    if (!root) return out_of_memory();
    for (size_t i = 0; i < sizeof layer_keys / sizeof *layer_keys; i++)
        if (json_is_integer(json_object_get(root, layer_keys[i])))
            json_object_set_new(root, layer_keys[i], json_integer(p->num_layers));
    int dtype = o->out_dtype >= 0 ? o->out_dtype : p->cfg->out_dtype >= 0 ? p->cfg->out_dtype : p->cfg->dtype;
    if (dtype >= 0) json_object_set_new(root, "torch_dtype", json_string(dtype_torch_name((hone_dtype)dtype)));
    if (p->cfg->tokenizer_source != MERGE_TOKENIZER_NONE)
        json_object_set_new(root, "vocab_size", json_integer(p->vocab_rows));
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_REAL_PRECISION(17));
    json_decref(root);
    char *path = hone_path_join(dir, "config.json");
    hone_status st = text && path ? hone_file_write_atomic(path, text, strlen(text)) : out_of_memory();
    free(text);
    free(path);
    return st;
}

static hone_status copy_file(const char *src, const char *dst) {
    char *data;
    size_t n;
    HONE_TRY(hone_file_read(src, &data, &n));
    hone_status st = hone_file_write_atomic(dst, data, n);
    free(data);
    return st;
}

/* A model folder's chat template (chat_template.jinja, else tokenizer_config.json's chat_template: a string,
 * or the entry named "default" of a list), trimmed; NULL when it has none. */
static char *read_chat_template(const char *dir) {
    char *path = hone_path_join(dir, "chat_template.jinja"), *text = NULL;
    size_t n;
    if (path && hone_file_exists(path) && hone_file_read(path, &text, &n) != HONE_OK) text = NULL;
    free(path);
    if (!text && (path = hone_path_join(dir, "tokenizer_config.json"))) {
        json_t *root = json_load_file(path, 0, NULL), *t = json_object_get(root, "chat_template"), *item;
        if (json_is_array(t)) { /* named templates: [{"name": ..., "template": ...}] */
            json_t *list = t;
            size_t i;
            t = NULL;
            json_array_foreach(list, i, item) {
                const char *name = json_string_value(json_object_get(item, "name"));
                if (name && !strcmp(name, "default")) t = json_object_get(item, "template");
            }
        }
        if (json_is_string(t)) text = strdup(json_string_value(t));
        json_decref(root);
        free(path);
    }
    if (!text) return NULL;
    /* Python's str.strip() */
    size_t len = strlen(text), start = 0;
    while (start < len && strchr(" \t\n\r\f\v", text[start])) start++;
    while (len > start && strchr(" \t\n\r\f\v", text[len - 1])) len--;
    memmove(text, text + start, len - start);
    text[len - start] = 0;
    return text;
}

/* chat_template: auto → the template most input models share (the first of equals, as Counter.most_common). */
static char *resolve_chat_template(const hone_merge_plan *p) {
    if (strcmp(p->cfg->chat_template, "auto")) return strdup(p->cfg->chat_template);
    char **all = calloc(p->n_models, sizeof *all);
    char *best = NULL;
    size_t best_count = 0;
    for (size_t i = 0; all && i < p->n_models; i++) all[i] = read_chat_template(p->models[i].path);
    for (size_t i = 0; all && i < p->n_models; i++) {
        size_t count = 0;
        for (size_t j = 0; all[i] && j < p->n_models; j++) count += all[j] && !strcmp(all[i], all[j]);
        if (count > best_count) {
            best_count = count;
            best = all[i];
        }
    }
    char *out = best ? strdup(best) : NULL;
    for (size_t i = 0; all && i < p->n_models; i++) free(all[i]);
    free(all);
    return out;
}

static hone_status set_chat_template(const char *dir, const char *template) {
    char *path = hone_path_join(dir, "tokenizer_config.json");
    if (!path) return out_of_memory();
    json_t *root = hone_file_exists(path) ? json_load_file(path, 0, NULL) : json_object();
    hone_status st = HONE_OK;
    if (!json_is_object(root))
        st = hone_errorf(HONE_ERR_FORMAT, "%s: not a JSON object", path);
    else
        json_object_set_new(root, "chat_template", json_string(template));
    char *text = st == HONE_OK ? json_dumps(root, JSON_INDENT(2)) : NULL;
    if (st == HONE_OK) st = text ? hone_file_write_atomic(path, text, strlen(text)) : out_of_memory();
    json_decref(root);
    free(text);
    free(path);
    return st;
}

/* mergekit's _copy_tokenizer: the tokenizer files of the base model (or the first model, or tokenizer_source),
 * with the union's tokens added (tokenizer_source union), then the chat template when one is asked for. */
static hone_status write_tokenizer(const hone_merge_plan *p, const char *dir) {
    static const char *const files[] = {"tokenizer_config.json",
                                        "special_tokens_map.json",
                                        "tokenizer.json",
                                        "tokenizer.model",
                                        "added_tokens.json",
                                        "merges.txt",
                                        "vocab.json",
                                        "chat_template.jinja",
                                        "generation_config.json",
                                        "chat_template.json"};
    const char *donor =
        p->cfg->tokenizer_source == MERGE_TOKENIZER_MODEL ? p->cfg->tokenizer_model : p->models[p->reference].path;
    char *template = p->cfg->chat_template ? resolve_chat_template(p) : NULL;
    size_t copied = 0;
    hone_status st = HONE_OK;
    for (size_t i = 0; i < sizeof files / sizeof *files && st == HONE_OK; i++) {
        if (template && strstr(files[i], "chat_template")) continue; /* the new template replaces them */
        char *src = hone_path_join(donor, files[i]), *dst = hone_path_join(dir, files[i]);
        if (!src || !dst)
            st = out_of_memory();
        else if (hone_file_exists(src)) {
            st = copy_file(src, dst);
            copied++;
        }
        free(src);
        free(dst);
    }
    if (st == HONE_OK && !copied) hone_warn("%s has no tokenizer files; the merged model has none either", donor);
    if (st == HONE_OK) st = merge_vocab_write(p, dir);
    if (st == HONE_OK && template) st = set_chat_template(dir, template);
    free(template);
    return st;
}

/* Refuses to write into a folder the merge reads from. */
static hone_status check_output_dir(const hone_merge_plan *p, const char *dir) {
    char out[PATH_MAX], in[PATH_MAX];
    if (!realpath(dir, out)) return HONE_OK;
    for (size_t i = 0; i < p->n_models; i++)
        if (realpath(p->models[i].path, in) && !strcmp(in, out))
            return hone_errorf(HONE_ERR_INVALID, "output_dir %s is the folder of input model '%s'; write elsewhere",
                               dir, p->models[i].path);
    return HONE_OK;
}

hone_status hone_merge_plan_write(const hone_merge_plan *p, const hone_merge_options *o, hone_merge_summary *out) {
    if (!o->output_dir || !*o->output_dir) return hone_errorf(HONE_ERR_INVALID, "no output directory given");
    HONE_TRY(check_output_dir(p, o->output_dir));
    HONE_TRY(hone_dir_create(o->output_dir));
    workspace w;
    HONE_TRY(workspace_new(&w, p));
    hone_st_stream *streams = calloc(p->n_shards ? p->n_shards : 1, sizeof *streams);
    size_t n_open = 0;
    uint64_t done = 0, total = 0;
    for (size_t i = 0; i < p->n_tensors; i++) total += p->tensors[i].nbytes;
    const double t0 = hone_now_seconds();
    hone_status st = streams ? HONE_OK : out_of_memory();
    for (size_t i = 0; i < p->n_tensors && st == HONE_OK; i++) {
        const merge_tensor *t = &p->tensors[i];
        if (t->shard == n_open) st = open_shard(p, o->output_dir, n_open, i, &streams[n_open]);
        if (st != HONE_OK) break;
        n_open += t->shard == n_open;
        st = write_tensor(p, t, &w, &streams[t->shard]);
        done += t->nbytes;
        if (st == HONE_OK && o->progress) {
            hone_merge_progress pr = {i, p->n_tensors, t->pub.name, done, total, hone_now_seconds() - t0};
            o->progress(&pr, o->user);
        }
    }
    /* all shards complete: rename them into place, then the index */
    for (size_t s = 0; s < n_open; s++) {
        if (st == HONE_OK)
            st = hone_st_stream_commit(&streams[s]);
        else
            hone_st_stream_abort(&streams[s]);
    }
    free(streams);
    workspace_free(&w);
    if (st == HONE_OK && p->n_shards > 1) st = write_index(p, o->output_dir);
    if (st == HONE_OK) remove_stale_weights(o->output_dir, p->n_shards);
    if (st == HONE_OK) st = write_config(p, o, o->output_dir);
    if (st == HONE_OK) st = write_tokenizer(p, o->output_dir);
    if (st == HONE_OK && out) {
        *out = (hone_merge_summary){p->n_tensors, p->n_shards, total, p->num_layers, hone_now_seconds() - t0};
    }
    return st;
}

hone_status hone_merge_run(const hone_merge_config *c, const hone_merge_options *o, hone_merge_summary *out) {
    hone_merge_plan *p;
    HONE_TRY(hone_merge_plan_new(&p, c, o));
    hone_status st = hone_merge_plan_write(p, o, out);
    hone_merge_plan_free(p);
    return st;
}
