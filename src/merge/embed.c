/* tokenizer_source: the output takes one model's tokenizer, and every model's token embeddings (and LM head)
 * are first mapped onto that vocabulary by token text, as mergekit's BuildTokenizer and PermutedEmbeddings do:
 *   - the output vocabulary is tokenizer.json's (model.vocab and added_tokens), copied with the other tokenizer
 *     files; for `base`, mergekit first strips tokens whose id is not below the base model's vocab_size and
 *     rewrites tokenizer.json, which hone does not do yet: such a tokenizer is an error;
 *   - a model's row for output token s is the row of s in its own tokenizer (the base model's when it has
 *     none), if that id is below its vocab_size;
 *   - a model that lacks a token gets, in that row, the embedding of the only model that has it, else the base
 *     model's, else the mean over the models that have it, else zeros.
 * config.json's vocab_size becomes the output vocabulary's size. */
#include "merge_internal.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *token; /* points into root */
    int32_t id;
} vocab_entry;

typedef struct {
    json_t *root;
    vocab_entry *entries; /* sorted by token, unique */
    size_t n;
} vocab;

static int entry_cmp(const void *a, const void *b) {
    const vocab_entry *x = a, *y = b;
    int c = strcmp(x->token, y->token);
    /* equal tokens: the added token (appended later, larger position) must survive deduplication */
    return c ? c : (x < y ? -1 : 1);
}

static void vocab_free(vocab *v) {
    json_decref(v->root);
    free(v->entries);
    memset(v, 0, sizeof *v);
}

static hone_status add_entry(vocab *v, size_t cap, const char *path, const char *token, json_int_t id) {
    if (!token || id < 0 || id > INT32_MAX)
        return hone_errorf(HONE_ERR_FORMAT, "%s: a vocabulary entry has no text or an id outside [0, 2^31)", path);
    if (v->n == cap) return hone_errorf(HONE_ERR_FORMAT, "%s: vocabulary larger than announced", path);
    v->entries[v->n++] = (vocab_entry){token, (int32_t)id};
    return HONE_OK;
}

/* Reads DIR/tokenizer.json's vocabulary; *found = 0 (and OK) when the folder has no tokenizer.json. */
static hone_status vocab_load(vocab *v, const char *dir, int *found) {
    memset(v, 0, sizeof *v);
    char *path = hone_path_join(dir, "tokenizer.json");
    if (!path) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    *found = hone_file_exists(path);
    if (!*found) {
        free(path);
        return HONE_OK;
    }
    json_error_t err;
    hone_status st = HONE_OK;
    v->root = json_load_file(path, 0, &err);
    json_t *words = json_object_get(json_object_get(v->root, "model"), "vocab");
    json_t *added = json_object_get(v->root, "added_tokens");
    if (!v->root)
        st = hone_errorf(HONE_ERR_FORMAT, "%s: invalid JSON (%s, line %d)", path, err.text, err.line);
    else if (!json_is_object(words) && !json_is_array(words))
        st = hone_errorf(HONE_ERR_FORMAT, "%s: no model.vocab (an object of token ids, or Unigram's list)", path);
    size_t cap = st == HONE_OK ? (json_is_object(words) ? json_object_size(words) : json_array_size(words)) +
                                     json_array_size(added)
                               : 0;
    if (st == HONE_OK && !(v->entries = malloc((cap ? cap : 1) * sizeof *v->entries)))
        st = hone_errorf(HONE_ERR_NOMEM, "out of memory");
    const char *token;
    json_t *value;
    size_t i;
    if (st == HONE_OK && json_is_object(words)) {
        json_object_foreach(words, token, value) {
            if (st == HONE_OK) st = add_entry(v, cap, path, token, json_integer_value(value));
        }
    }
    if (st == HONE_OK && json_is_array(words)) { /* Unigram: [[piece, score], ...], the id is the position */
        json_array_foreach(words, i, value) {
            if (st == HONE_OK) st = add_entry(v, cap, path, json_string_value(json_array_get(value, 0)), (json_int_t)i);
        }
    }
    json_array_foreach(added, i, value) {
        if (st == HONE_OK)
            st = add_entry(v, cap, path, json_string_value(json_object_get(value, "content")),
                           json_integer_value(json_object_get(value, "id")));
    }
    if (st == HONE_OK) {
        qsort(v->entries, v->n, sizeof *v->entries, entry_cmp);
        size_t kept = 0;
        for (size_t j = 0; j < v->n; j++) {
            if (kept && !strcmp(v->entries[kept - 1].token, v->entries[j].token)) kept--;
            v->entries[kept++] = v->entries[j];
        }
        v->n = kept;
    }
    free(path);
    if (st != HONE_OK) vocab_free(v);
    return st;
}

static int32_t vocab_find(const vocab *v, const char *token) {
    size_t lo = 0, hi = v->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(v->entries[mid].token, token);
        if (c == 0) return v->entries[mid].id;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* config.json's vocab_size, or `fallback`. */
static int64_t config_vocab_size(const merge_model *m, int64_t fallback) {
    json_t *root = json_loads(m->config_json, 0, NULL);
    json_t *v = json_object_get(root, "vocab_size");
    int64_t n = json_is_integer(v) && json_integer_value(v) > 0 ? (int64_t)json_integer_value(v) : fallback;
    json_decref(root);
    return n;
}

hone_status merge_vocab_plan(hone_merge_plan *p) {
    const merge_model *ref = &p->models[p->reference];
    const char *donor = p->cfg->tokenizer_source == MERGE_TOKENIZER_MODEL ? p->cfg->tokenizer_model : ref->path;
    vocab out, base;
    int found;
    HONE_TRY(vocab_load(&out, donor, &found));
    if (!found)
        return hone_errorf(HONE_ERR_IO, "tokenizer_source: %s has no tokenizer.json to take the vocabulary from",
                           donor);
    hone_status st = vocab_load(&base, ref->path, &found);
    if (st != HONE_OK) {
        vocab_free(&out);
        return st;
    }
    /* the output vocabulary by id: ids 0..n-1, each once */
    const int64_t limit =
        p->cfg->tokenizer_source == MERGE_TOKENIZER_BASE ? config_vocab_size(ref, INT32_MAX) : INT32_MAX;
    const size_t rows = out.n;
    const char **by_id = calloc(rows ? rows : 1, sizeof *by_id);
    if (!by_id) st = hone_errorf(HONE_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < out.n && st == HONE_OK; i++) {
        int32_t id = out.entries[i].id;
        if (id >= limit)
            st = hone_errorf(HONE_ERR_UNSUPPORTED,
                             "tokenizer_source: base: %s/tokenizer.json has token '%s' (id %d) at or above the model's "
                             "vocab_size %lld; mergekit removes such tokens from the tokenizer it writes, which hone "
                             "does not do yet",
                             donor, out.entries[i].token, id, (long long)limit);
        else if ((size_t)id >= rows || by_id[id])
            st = hone_errorf(HONE_ERR_UNSUPPORTED,
                             "tokenizer_source: %s/tokenizer.json's ids are not 0..%zu (token '%s' has id %d); "
                             "vocabularies with gaps or shared ids are not supported",
                             donor, rows - 1, out.entries[i].token, id);
        else
            by_id[id] = out.entries[i].token;
    }
    p->vocab_rows = (int64_t)rows;
    for (size_t m = 0; m < p->n_models && st == HONE_OK; m++) {
        merge_model *mm = &p->models[m];
        vocab own;
        st = vocab_load(&own, mm->path, &found);
        /* mergekit: a model without a tokenizer is assumed to share the base model's */
        const vocab *v = found ? &own : &base;
        int64_t size = config_vocab_size(mm, (int64_t)v->n);
        if (st == HONE_OK && !(mm->vocab_map = malloc((rows ? rows : 1) * sizeof *mm->vocab_map)))
            st = hone_errorf(HONE_ERR_NOMEM, "out of memory");
        for (size_t r = 0; r < rows && st == HONE_OK; r++) {
            int32_t id = vocab_find(v, by_id[r]);
            mm->vocab_map[r] = id < size ? id : -1;
        }
        if (found) vocab_free(&own);
    }
    free(by_id);
    vocab_free(&out);
    vocab_free(&base);
    return st;
}

void merge_vocab_defaults(const hone_merge_plan *p, const merge_tensor *t, float *const *x) {
    const size_t k = t->pub.n_inputs, rows = (size_t)t->pub.shape[0], cols = (size_t)t->pub.shape[1];
    const int base = t->pub.base;
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < rows; r++) {
        size_t present = 0, donor = 0, first_missing = k;
        for (size_t i = 0; i < k; i++) {
            int32_t row = p->models[t->model[i]].vocab_map[r];
            if (row >= 0 && row < t->src[i]->shape[0]) {
                present++;
                donor = i;
            } else if (first_missing == k) {
                first_missing = i;
            }
        }
        if (first_missing == k || present == 0) continue; /* all have it, or none: the rows stay zero */
        float *fill = x[first_missing] + r * cols;
        if (present == 1) {
            memcpy(fill, x[donor] + r * cols, cols * sizeof *fill);
        } else if (base >= 0 && p->models[t->model[base]].vocab_map[r] >= 0 &&
                   p->models[t->model[base]].vocab_map[r] < t->src[base]->shape[0]) {
            memcpy(fill, x[base] + r * cols, cols * sizeof *fill);
        } else {
            for (size_t c = 0; c < cols; c++) {
                float sum = 0;
                for (size_t i = 0; i < k; i++) {
                    int32_t row = p->models[t->model[i]].vocab_map[r];
                    if (row >= 0 && row < t->src[i]->shape[0]) sum += x[i][r * cols + c];
                }
                fill[c] = sum / (float)present;
            }
        }
        for (size_t i = first_missing + 1; i < k; i++) {
            int32_t row = p->models[t->model[i]].vocab_map[r];
            if (!(row >= 0 && row < t->src[i]->shape[0])) memcpy(x[i] + r * cols, fill, cols * sizeof *fill);
        }
    }
}
