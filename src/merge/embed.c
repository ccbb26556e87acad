/* tokenizer_source: the output takes one vocabulary, and every model's token embeddings (and LM head) are first
 * mapped onto it by token text, as mergekit's BuildTokenizer and PermutedEmbeddings do:
 *   - `base` or a model: that model's tokenizer.json vocabulary (model.vocab and added_tokens), copied with the
 *     other tokenizer files; for `base`, mergekit first strips tokens whose id is not below the base model's
 *     vocab_size and rewrites tokenizer.json, which hone does not do yet: such a tokenizer is an error;
 *   - `union`: the base vocabulary (checked the same way), then every token of the other models (ids below their
 *     vocab_size) that the base lacks, appended to the base tokenizer as added tokens (union_extend);
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
    json_t *added; /* its added_tokens entry, or NULL for a model.vocab token */
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

static hone_status add_entry(vocab *v, size_t cap, const char *path, const char *token, json_int_t id, json_t *added) {
    if (!token || id < 0 || id > INT32_MAX)
        return hone_errorf(HONE_ERR_FORMAT, "%s: a vocabulary entry has no text or an id outside [0, 2^31)", path);
    if (v->n == cap) return hone_errorf(HONE_ERR_FORMAT, "%s: vocabulary larger than announced", path);
    v->entries[v->n++] = (vocab_entry){token, (int32_t)id, added};
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
            if (st == HONE_OK) st = add_entry(v, cap, path, token, json_integer_value(value), NULL);
        }
    }
    if (st == HONE_OK && json_is_array(words)) { /* Unigram: [[piece, score], ...], the id is the position */
        json_array_foreach(words, i, value) {
            if (st == HONE_OK)
                st = add_entry(v, cap, path, json_string_value(json_array_get(value, 0)), (json_int_t)i, NULL);
        }
    }
    json_array_foreach(added, i, value) {
        if (st == HONE_OK)
            st = add_entry(v, cap, path, json_string_value(json_object_get(value, "content")),
                           json_integer_value(json_object_get(value, "id")), value);
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

/* A token of another model that the base vocabulary lacks (union_extend). */
typedef struct {
    const char *token;
    size_t model; /* its position in the plan (config order, the base first) */
    int32_t id;   /* in that model */
    json_t *added;
} union_candidate;

static int candidate_cmp(const void *a, const void *b) {
    const union_candidate *x = a, *y = b;
    int c = strcmp(x->token, y->token);
    if (c) return c;
    return x->model != y->model ? (x->model < y->model ? -1 : 1) : (x->id > y->id) - (x->id < y->id);
}

/* First appearance: the model, then the id; plain tokens before added ones. */
static int appearance_cmp(const void *a, const void *b) {
    const union_candidate *x = a, *y = b;
    if (!x->added != !y->added) return x->added ? 1 : -1;
    return x->model != y->model ? (x->model < y->model ? -1 : 1) : (x->id > y->id) - (x->id < y->id);
}

/* mergekit's build_union_tokenizer: the tokens of the other models' vocabularies (ids below their vocab_size)
 * that the base lacks follow the base's *rows ids: first the plain tokens, in order of first appearance (models
 * in config order, ids ascending), then those that some model has as an added token, in order of the first model
 * that has them as one. mergekit takes
 * them in the order of Python dicts filled from the tokenizers' hash maps, which no run repeats; this is that
 * order made reproducible. A plain token is added as transformers' add_tokens adds a string (normalized, not
 * special); an added token keeps the entry of the first model that has it as one. Grows *by_id and *rows and sets
 * p->union_tokens. */
static hone_status union_extend(hone_merge_plan *p, const vocab *vocabs, const int *has, const char ***by_id,
                                size_t *rows) {
    const vocab *base = &vocabs[p->reference];
    size_t n = 0, cap = 0;
    for (size_t m = 0; m < p->n_models; m++) cap += has[m] && m != p->reference ? vocabs[m].n : 0;
    union_candidate *cands = malloc((cap ? cap : 1) * sizeof *cands);
    if (!cands) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    for (size_t m = 0; m < p->n_models; m++) {
        if (!has[m] || m == p->reference) continue; /* mergekit: a model without a tokenizer shares the base's */
        const int64_t size = config_vocab_size(&p->models[m], (int64_t)vocabs[m].n);
        for (size_t i = 0; i < vocabs[m].n; i++) {
            const vocab_entry *e = &vocabs[m].entries[i];
            if (e->id < size && vocab_find(base, e->token) < 0)
                cands[n++] = (union_candidate){e->token, m, e->id, e->added};
        }
    }
    /* one candidate per token: its first appearance, marked added when any model has it as an added token */
    qsort(cands, n, sizeof *cands, candidate_cmp);
    size_t kept = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i, first = i;
        for (; j < n && !strcmp(cands[j].token, cands[i].token); j++)
            if (!cands[first].added && cands[j].added) first = j;
        cands[kept++] = cands[first];
        i = j;
    }
    qsort(cands, kept, sizeof *cands, appearance_cmp);
    const char **grown = realloc(*by_id, (*rows + kept ? *rows + kept : 1) * sizeof *grown);
    json_t *entries = json_array();
    hone_status st = grown && entries ? HONE_OK : hone_errorf(HONE_ERR_NOMEM, "out of memory");
    if (grown) *by_id = grown;
    for (size_t i = 0; i < kept && st == HONE_OK; i++) {
        const json_int_t id = (json_int_t)(*rows + i);
        json_t *e = cands[i].added
                        ? json_deep_copy(cands[i].added)
                        : json_pack("{s:I, s:s, s:b, s:b, s:b, s:b, s:b}", "id", id, "content", cands[i].token,
                                    "single_word", 0, "lstrip", 0, "rstrip", 0, "normalized", 1, "special", 0);
        if (!e || json_object_set_new(e, "id", json_integer(id)) || json_array_append_new(entries, e))
            st = hone_errorf(HONE_ERR_NOMEM, "out of memory");
        else
            grown[*rows + i] = cands[i].token;
    }
    if (st == HONE_OK && !(p->union_tokens = json_dumps(entries, JSON_COMPACT)))
        st = hone_errorf(HONE_ERR_NOMEM, "out of memory");
    if (st == HONE_OK) *rows += kept;
    json_decref(entries);
    free(cands);
    return st;
}

hone_status merge_vocab_plan(hone_merge_plan *p) {
    const merge_tokenizer_source source = p->cfg->tokenizer_source;
    const merge_model *ref = &p->models[p->reference];
    const char *donor = source == MERGE_TOKENIZER_MODEL ? p->cfg->tokenizer_model : ref->path;
    vocab *vocabs = calloc(p->n_models, sizeof *vocabs), donor_vocab = {0};
    int *has = calloc(p->n_models, sizeof *has), found = 1;
    hone_status st = vocabs && has ? HONE_OK : hone_errorf(HONE_ERR_NOMEM, "out of memory");
    for (size_t m = 0; m < p->n_models && st == HONE_OK; m++) st = vocab_load(&vocabs[m], p->models[m].path, &has[m]);
    if (st == HONE_OK && source == MERGE_TOKENIZER_MODEL) st = vocab_load(&donor_vocab, donor, &found);
    if (st == HONE_OK && source != MERGE_TOKENIZER_MODEL) found = has[p->reference];
    if (st == HONE_OK && !found)
        st = hone_errorf(HONE_ERR_IO, "tokenizer_source: %s has no tokenizer.json to take the vocabulary from", donor);
    const vocab *out = source == MERGE_TOKENIZER_MODEL ? &donor_vocab : st == HONE_OK ? &vocabs[p->reference] : NULL;
    /* the output vocabulary by id: ids 0..n-1, each once */
    const int64_t limit = source != MERGE_TOKENIZER_MODEL ? config_vocab_size(ref, INT32_MAX) : INT32_MAX;
    size_t rows = out ? out->n : 0;
    const char **by_id = calloc(rows ? rows : 1, sizeof *by_id);
    if (st == HONE_OK && !by_id) st = hone_errorf(HONE_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < rows && st == HONE_OK; i++) {
        int32_t id = out->entries[i].id;
        if (id >= limit)
            st = hone_errorf(HONE_ERR_UNSUPPORTED,
                             "tokenizer_source: %s: %s/tokenizer.json has token '%s' (id %d) at or above the model's "
                             "vocab_size %lld; mergekit removes such tokens from the tokenizer it writes, which hone "
                             "does not do yet",
                             source == MERGE_TOKENIZER_UNION ? "union" : "base", donor, out->entries[i].token, id,
                             (long long)limit);
        else if ((size_t)id >= rows || by_id[id])
            st = hone_errorf(HONE_ERR_UNSUPPORTED,
                             "tokenizer_source: %s/tokenizer.json's ids are not 0..%zu (token '%s' has id %d); "
                             "vocabularies with gaps or shared ids are not supported",
                             donor, rows - 1, out->entries[i].token, id);
        else
            by_id[id] = out->entries[i].token;
    }
    if (st == HONE_OK && source == MERGE_TOKENIZER_UNION) st = union_extend(p, vocabs, has, &by_id, &rows);
    p->vocab_rows = (int64_t)rows;
    for (size_t m = 0; m < p->n_models && st == HONE_OK; m++) {
        merge_model *mm = &p->models[m];
        /* mergekit: a model without a tokenizer is assumed to share the base model's */
        const vocab *v = has[m] ? &vocabs[m] : &vocabs[p->reference];
        int64_t size = config_vocab_size(mm, (int64_t)v->n);
        if (!(mm->vocab_map = malloc((rows ? rows : 1) * sizeof *mm->vocab_map)))
            st = hone_errorf(HONE_ERR_NOMEM, "out of memory");
        for (size_t r = 0; r < rows && st == HONE_OK; r++) {
            int32_t id = vocab_find(v, by_id[r]);
            mm->vocab_map[r] = id < size ? id : -1;
        }
    }
    free(by_id);
    for (size_t m = 0; vocabs && m < p->n_models; m++) vocab_free(&vocabs[m]);
    free(vocabs);
    free(has);
    vocab_free(&donor_vocab);
    return st;
}

/* Loads DIR/NAME (a JSON object), lets `edit` change it, writes it back atomically; nothing when it is absent. */
static hone_status edit_json_file(const char *dir, const char *name,
                                  hone_status (*edit)(json_t *, const char *, json_t *), json_t *tokens) {
    char *path = hone_path_join(dir, name);
    if (!path) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    hone_status st = HONE_OK;
    json_t *root = NULL;
    char *text = NULL;
    if (hone_file_exists(path)) {
        json_error_t err;
        root = json_load_file(path, 0, &err);
        st = json_is_object(root) ? edit(root, path, tokens)
                                  : hone_errorf(HONE_ERR_FORMAT, "%s: not a JSON object (%s)", path, err.text);
        if (st == HONE_OK && !(text = json_dumps(root, JSON_INDENT(2) | JSON_REAL_PRECISION(17))))
            st = hone_errorf(HONE_ERR_NOMEM, "out of memory");
        if (st == HONE_OK) st = hone_file_write_atomic(path, text, strlen(text));
    }
    free(text);
    json_decref(root);
    free(path);
    return st;
}

static hone_status append_added_tokens(json_t *root, const char *path, json_t *tokens) {
    json_t *list = json_object_get(root, "added_tokens");
    if (!list && json_object_set_new(root, "added_tokens", list = json_array()))
        return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    if (!json_is_array(list)) return hone_errorf(HONE_ERR_FORMAT, "%s: added_tokens is not a list", path);
    if (json_array_extend(list, tokens)) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    return HONE_OK;
}

/* transformers' added_tokens_decoder: {"<id>": {content, lstrip, normalized, rstrip, single_word, special}}. */
static hone_status add_tokens_decoder(json_t *root, const char *path, json_t *tokens) {
    static const char *const fields[] = {"content", "lstrip", "normalized", "rstrip", "single_word", "special"};
    json_t *decoder = json_object_get(root, "added_tokens_decoder"), *e;
    if (!decoder && json_object_set_new(root, "added_tokens_decoder", decoder = json_object()))
        return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    if (!json_is_object(decoder))
        return hone_errorf(HONE_ERR_FORMAT, "%s: added_tokens_decoder is not an object", path);
    size_t i;
    int failed = 0;
    json_array_foreach(tokens, i, e) {
        json_t *info = json_object();
        char key[24];
        snprintf(key, sizeof key, "%" JSON_INTEGER_FORMAT, json_integer_value(json_object_get(e, "id")));
        for (size_t f = 0; f < sizeof fields / sizeof *fields; f++) {
            json_t *v = json_object_get(e, fields[f]);
            if (v) failed |= json_object_set(info, fields[f], v);
        }
        failed |= json_object_set_new(decoder, key, info);
    }
    return failed ? hone_errorf(HONE_ERR_NOMEM, "out of memory") : HONE_OK;
}

hone_status merge_vocab_write(const hone_merge_plan *p, const char *dir) {
    if (!p->union_tokens) return HONE_OK;
    json_t *tokens = json_loads(p->union_tokens, 0, NULL);
    if (!tokens) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    hone_status st = edit_json_file(dir, "tokenizer.json", append_added_tokens, tokens);
    if (st == HONE_OK) st = edit_json_file(dir, "tokenizer_config.json", add_tokens_decoder, tokens);
    json_decref(tokens);
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
