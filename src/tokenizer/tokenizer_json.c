/* Loading a tokenizer: tokenizer.json, or a folder holding it or vocab.json + merges.txt (vocab_merges.c), then
 * the configuration files beside it (special_tokens.c). Every field that changes the ids is read and validated;
 * anything this module cannot honour is a HONE_ERR_UNSUPPORTED error naming the field. Also the small public
 * accessors. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer_internal.h"

/* A string field that may only be absent, null or one of the values that mean
 * "off". */
static hone_status require_off(const hone_tokenizer *t, json_t *obj, const char *field, const char *name) {
    json_t *v = json_object_get(obj, field);
    if (!v || json_is_null(v) || json_is_false(v)) return HONE_OK;
    if (json_is_string(v) && !json_string_length(v)) return HONE_OK;
    if (json_is_number(v) && json_number_value(v) == 0) return HONE_OK;
    return hone_errorf(HONE_ERR_UNSUPPORTED, "%s: %s is set; it is not supported yet", t->path, name);
}

static hone_status get_bool(const hone_tokenizer *t, json_t *obj, const char *field, const char *name, int fallback,
                            int *out) {
    json_t *v = json_object_get(obj, field);
    if (!v || json_is_null(v)) {
        *out = fallback;
        return HONE_OK;
    }
    if (!json_is_boolean(v)) return hone_errorf(HONE_ERR_FORMAT, "%s: %s must be true or false", t->path, name);
    *out = json_is_true(v);
    return HONE_OK;
}

/* The "type" of a component object (normalizer, pre_tokenizer, ...), or an
 * error. */
static hone_status get_type(const hone_tokenizer *t, json_t *obj, const char *name, const char **type) {
    if (!json_is_object(obj)) return hone_errorf(HONE_ERR_FORMAT, "%s: %s must be an object or null", t->path, name);
    json_t *v = json_object_get(obj, "type");
    if (!json_is_string(v)) return hone_errorf(HONE_ERR_FORMAT, "%s: %s.type must be a string", t->path, name);
    *type = json_string_value(v);
    return HONE_OK;
}

hone_status tok_vocab_load(hone_tokenizer *t, json_t *vocab, const char *what) {
    if (!json_is_object(vocab)) return hone_errorf(HONE_ERR_FORMAT, "%s: %s must be an object", t->path, what);
    const char *key;
    json_t *v;
    json_int_t max_id = -1;
    json_object_foreach(vocab, key, v) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= INT32_MAX / 2)
            return hone_errorf(HONE_ERR_FORMAT, "%s: %s[\"%s\"] must be a non-negative integer id", t->path, what, key);
        if (json_integer_value(v) > max_id) max_id = json_integer_value(v);
    }
    size_t n_keys = json_object_size(vocab);
    /* the tables are indexed by id: a few holes are fine (duplicate keys leave some), a sparse vocabulary is not */
    if ((size_t)max_id >= 2 * n_keys + 1024)
        return hone_errorf(HONE_ERR_FORMAT, "%s: %s has %zu tokens but ids up to %lld; the ids should be 0..%zu",
                           t->path, what, n_keys, (long long)max_id, n_keys - 1);
    t->n_vocab = (int32_t)(max_id + 1);
    uint32_t cap = 16;
    while (cap < 2 * n_keys + 16) cap *= 2;
    t->vocab = calloc((size_t)t->n_vocab + 1, sizeof *t->vocab);
    t->vocab_len = calloc((size_t)t->n_vocab + 1, sizeof *t->vocab_len);
    t->vocab_index.slots = malloc(cap * sizeof *t->vocab_index.slots);
    t->vocab_index.mask = cap - 1;
    if (!t->vocab || !t->vocab_len || !t->vocab_index.slots)
        return hone_errorf(HONE_ERR_NOMEM, "out of memory for the %zu tokens of %s", n_keys, t->path);
    memset(t->vocab_index.slots, 0xFF, cap * sizeof *t->vocab_index.slots);
    json_object_foreach(vocab, key, v) {
        int32_t id = (int32_t)json_integer_value(v);
        size_t len = strlen(key);
        if (t->vocab[id])
            return hone_errorf(HONE_ERR_FORMAT, "%s: %s gives id %d to both \"%s\" and \"%s\"", t->path, what, id,
                               t->vocab[id], key);
        t->vocab[id] = strdup(key);
        if (!t->vocab[id]) return hone_errorf(HONE_ERR_NOMEM, "out of memory reading %s", t->path);
        t->vocab_len[id] = (uint32_t)len;
        uint32_t s = (uint32_t)tok_hash_bytes(key, len) & t->vocab_index.mask;
        while (t->vocab_index.slots[s] >= 0) s = (s + 1) & t->vocab_index.mask;
        t->vocab_index.slots[s] = id;
    }
    return HONE_OK;
}

static hone_status load_model(hone_tokenizer *t, json_t *model) {
    if (!json_is_object(model)) return hone_errorf(HONE_ERR_FORMAT, "%s: model must be an object", t->path);
    json_t *type = json_object_get(model, "type");
    /* files written by old versions of tokenizers omit the type of a BPE model */
    if (type && !json_is_string(type)) return hone_errorf(HONE_ERR_FORMAT, "%s: model.type must be a string", t->path);
    if (type && strcmp(json_string_value(type), "BPE"))
        return hone_errorf(HONE_ERR_UNSUPPORTED, "%s: model.type \"%s\" is not supported yet (only BPE)", t->path,
                           json_string_value(type));
    HONE_TRY(require_off(t, model, "dropout", "model.dropout"));
    HONE_TRY(require_off(t, model, "continuing_subword_prefix", "model.continuing_subword_prefix"));
    HONE_TRY(require_off(t, model, "end_of_word_suffix", "model.end_of_word_suffix"));
    HONE_TRY(get_bool(t, model, "byte_fallback", "model.byte_fallback", 0, &t->byte_fallback));
    HONE_TRY(get_bool(t, model, "fuse_unk", "model.fuse_unk", 0, &t->fuse_unk));
    HONE_TRY(get_bool(t, model, "ignore_merges", "model.ignore_merges", 0, &t->ignore_merges));
    HONE_TRY(tok_vocab_load(t, json_object_get(model, "vocab"), "model.vocab"));
    json_t *unk = json_object_get(model, "unk_token");
    t->unk_id = -1;
    if (unk && !json_is_null(unk)) {
        if (!json_is_string(unk)) return hone_errorf(HONE_ERR_FORMAT, "%s: model.unk_token must be a string", t->path);
        t->unk_id = tok_vocab_find(t, json_string_value(unk), json_string_length(unk));
        if (t->unk_id < 0)
            return hone_errorf(HONE_ERR_FORMAT, "%s: model.unk_token \"%s\" is not in model.vocab", t->path,
                               json_string_value(unk));
    }
    json_t *merges = json_object_get(model, "merges");
    if (!json_is_array(merges)) return hone_errorf(HONE_ERR_FORMAT, "%s: model.merges must be an array", t->path);
    return tok_bpe_load_merges(t, merges);
}

/* Appends the ids of TemplateProcessing special_tokens[name] to *ids. */
static hone_status template_ids(const hone_tokenizer *t, json_t *specials, const char *name, int32_t **ids, size_t *n) {
    json_t *entry = json_object_get(specials, name), *list = json_object_get(entry, "ids");
    if (!json_is_array(list))
        return hone_errorf(HONE_ERR_FORMAT, "%s: post_processor.special_tokens[\"%s\"].ids must be an array", t->path,
                           name);
    size_t k = json_array_size(list);
    int32_t *v = realloc(*ids, (*n + k + 1) * sizeof *v);
    if (!v) return hone_errorf(HONE_ERR_NOMEM, "out of memory reading %s", t->path);
    *ids = v;
    for (size_t i = 0; i < k; i++) {
        json_t *id = json_array_get(list, i);
        if (!json_is_integer(id) || json_integer_value(id) < 0 || json_integer_value(id) >= INT32_MAX)
            return hone_errorf(HONE_ERR_FORMAT, "%s: post_processor.special_tokens[\"%s\"].ids[%zu] must be an id",
                               t->path, name, i);
        v[(*n)++] = (int32_t)json_integer_value(id);
    }
    return HONE_OK;
}

/* TemplateProcessing "single": [{"SpecialToken": {"id": "<s>"}}, {"Sequence":
 * {"id": "A"}}, ...] → the ids before and after the one sequence. */
static hone_status load_template(hone_tokenizer *t, json_t *pp, const char *name) {
    json_t *single = json_object_get(pp, "single"), *specials = json_object_get(pp, "special_tokens");
    if (!json_is_array(single)) return hone_errorf(HONE_ERR_FORMAT, "%s: %s.single must be an array", t->path, name);
    if (!json_is_object(specials))
        return hone_errorf(HONE_ERR_FORMAT, "%s: %s.special_tokens must be an object", t->path, name);
    int seen_sequence = 0;
    for (size_t i = 0; i < json_array_size(single); i++) {
        json_t *item = json_array_get(single, i), *spec = json_object_get(item, "SpecialToken"),
               *seq = json_object_get(item, "Sequence");
        if (seq) {
            json_t *id = json_object_get(seq, "id");
            if (!json_is_string(id) || strcmp(json_string_value(id), "A") || seen_sequence)
                return hone_errorf(HONE_ERR_UNSUPPORTED,
                                   "%s: %s.single[%zu]: only one Sequence \"A\" is "
                                   "supported in a single template",
                                   t->path, name, i);
            seen_sequence = 1;
        } else if (spec && json_is_string(json_object_get(spec, "id"))) {
            const char *sname = json_string_value(json_object_get(spec, "id"));
            if (seen_sequence)
                HONE_TRY(template_ids(t, specials, sname, &t->post_suffix, &t->n_post_suffix));
            else
                HONE_TRY(template_ids(t, specials, sname, &t->post_prefix, &t->n_post_prefix));
        } else {
            return hone_errorf(HONE_ERR_FORMAT, "%s: %s.single[%zu] must be a SpecialToken or a Sequence", t->path,
                               name, i);
        }
    }
    if (!seen_sequence) return hone_errorf(HONE_ERR_FORMAT, "%s: %s.single has no Sequence \"A\"", t->path, name);
    return HONE_OK;
}

hone_status tok_load_sequence(hone_tokenizer *t, json_t *o, const char *key, const char *name,
                              tok_component_loader load) {
    json_t *list = json_object_get(o, key);
    if (!json_is_array(list)) return hone_errorf(HONE_ERR_FORMAT, "%s: %s.%s must be an array", t->path, name, key);
    for (size_t i = 0; i < json_array_size(list); i++) {
        char sub[96];
        snprintf(sub, sizeof sub, "%s.%s[%zu]", name, key, i);
        HONE_TRY(load(t, json_array_get(list, i), sub, 1));
    }
    return HONE_OK;
}

static hone_status load_post_processor(hone_tokenizer *t, json_t *pp, const char *name, int depth) {
    if (!pp || json_is_null(pp)) return HONE_OK;
    const char *type = NULL;
    HONE_TRY(get_type(t, pp, name, &type));
    if (!strcmp(type, "ByteLevel")) return HONE_OK; /* it only adjusts offsets, which hone does not return */
    if (!strcmp(type, "TemplateProcessing")) {
        if (t->n_post_prefix || t->n_post_suffix)
            return hone_errorf(HONE_ERR_UNSUPPORTED, "%s: %s: more than one TemplateProcessing is not supported yet",
                               t->path, name);
        return load_template(t, pp, name);
    }
    if (!strcmp(type, "Sequence") && depth == 0)
        return tok_load_sequence(t, pp, "processors", name, load_post_processor);
    return hone_errorf(HONE_ERR_UNSUPPORTED, "%s: %s.type \"%s\" is not supported yet", t->path, name, type);
}

static hone_status load_components(hone_tokenizer *t, json_t *root) {
    const char *type = NULL;
    HONE_TRY(tok_normalizer_load(t, json_object_get(root, "normalizer")));
    json_t *pre = json_object_get(root, "pre_tokenizer");
    t->use_regex = 0;
    if (pre && !json_is_null(pre)) {
        HONE_TRY(get_type(t, pre, "pre_tokenizer", &type));
        if (!strcmp(type, "ByteLevel")) {
            t->byte_level = 1;
            HONE_TRY(get_bool(t, pre, "add_prefix_space", "pre_tokenizer.add_prefix_space", 1, &t->add_prefix_space));
            HONE_TRY(get_bool(t, pre, "use_regex", "pre_tokenizer.use_regex", 1, &t->use_regex));
        } else if (!strcmp(type, "Metaspace")) {
            HONE_TRY(tok_pre_tokenizer_metaspace_load(t, pre));
        } else {
            HONE_TRY(tok_pre_tokenizer_load(t, pre));
        }
    }
    if (t->byte_fallback && t->byte_level)
        return hone_errorf(HONE_ERR_UNSUPPORTED,
                           "%s: model.byte_fallback with a ByteLevel pre_tokenizer "
                           "is not supported yet",
                           t->path);

    json_t *decoder = json_object_get(root, "decoder");
    if (!decoder || json_is_null(decoder))
        return hone_errorf(HONE_ERR_UNSUPPORTED, "%s: decoder null is not supported yet", t->path);
    HONE_TRY(get_type(t, decoder, "decoder", &type));
    if (t->byte_level != !strcmp(type, "ByteLevel"))
        return hone_errorf(HONE_ERR_UNSUPPORTED,
                           t->byte_level ? "%s: decoder.type \"%s\" with a ByteLevel pre_tokenizer is not "
                                           "supported yet (only ByteLevel)"
                                         : "%s: decoder.type \"%s\" without a ByteLevel pre_tokenizer is "
                                           "not supported yet",
                           t->path, type);
    if (!t->byte_level) HONE_TRY(tok_decoder_seq_load(t, decoder));
    return load_post_processor(t, json_object_get(root, "post_processor"), "post_processor", 0);
}

/* Ids below the highest one that neither model.vocab nor added_tokens name:
 * what duplicate keys in the vocab object leave behind, since the JSON parser
 * keeps the last of them. Warned about, not fatal. */
static void warn_holes(const hone_tokenizer *t) {
    int32_t holes = 0, first = -1;
    for (int32_t id = 0; id < t->n_vocab; id++)
        if (!t->vocab[id] && !tok_added_by_id(t, id)) {
            if (first < 0) first = id;
            holes++;
        }
    if (holes)
        hone_warn("%s: %d id(s) below %d have no token in model.vocab (the first "
                  "is %d); duplicate keys in the "
                  "vocab object, of which only the last is kept, leave such gaps. "
                  "Decoding these ids is an error.",
                  t->path, holes, t->n_vocab, first);
}

/* tokenizer.json: the model, the components and the added tokens it lists. */
static hone_status load_root(hone_tokenizer *t, json_t *root) {
    if (!json_is_object(root)) return hone_errorf(HONE_ERR_FORMAT, "%s: the top level must be a JSON object", t->path);
    json_t *model = json_object_get(root, "model");
    if (!model) return hone_errorf(HONE_ERR_FORMAT, "%s: field \"model\" is missing", t->path);
    HONE_TRY(load_model(t, model));
    HONE_TRY(load_components(t, root));
    return tok_added_load(t, json_object_get(root, "added_tokens"));
}

/* What every tokenizer needs once its model is in: the byte tables, the
 * configuration files beside it, the added-token indexes, and the checks that
 * need every id. */
static hone_status finish(hone_tokenizer *t, const tok_config *cfg, int from_vocab_json) {
    HONE_TRY(tok_byte_level_init(t));
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        t->fallback_id[b] = tok_vocab_find(t, name, 6);
    }
    HONE_TRY(tok_config_apply(t, cfg, from_vocab_json));
    HONE_TRY(tok_added_finish(t));
    t->vocab_size = t->n_vocab;
    for (size_t i = 0; i < t->n_added; i++)
        if (t->added[i].id >= t->vocab_size) t->vocab_size = t->added[i].id + 1;
    for (size_t i = 0; i < t->n_post_prefix + t->n_post_suffix; i++) {
        int32_t id = i < t->n_post_prefix ? t->post_prefix[i] : t->post_suffix[i - t->n_post_prefix];
        if (id >= t->vocab_size)
            return hone_errorf(HONE_ERR_FORMAT, "%s: post_processor uses id %d, outside the vocabulary of %d", t->path,
                               id, t->vocab_size);
    }
    warn_holes(t);
    return HONE_OK;
}

/* Load serials name a tokenizer in the per-thread word caches (word_cache.c). */
static atomic_uint_fast64_t next_serial;

/* Loads t (t->path set) from tokenizer.json or, from_vocab_json, from
 * dir/vocab.json + dir/merges.txt, with the configuration files of dir. */
static hone_status load_files(hone_tokenizer *t, const char *dir, int from_vocab_json) {
    tok_config cfg;
    HONE_TRY(tok_config_read(&cfg, dir));
    hone_status st = HONE_OK;
    if (from_vocab_json) {
        int add_prefix_space = 0;
        st = tok_config_gpt2(&cfg, &add_prefix_space);
        if (st == HONE_OK) st = tok_vocab_merges_load(t, dir, add_prefix_space);
    } else {
        json_error_t jerr;
        json_t *root = json_load_file(t->path, 0, &jerr);
        if (!root)
            st = hone_errorf(HONE_ERR_FORMAT, "%s: invalid JSON at line %d, column %d: %s", t->path, jerr.line,
                             jerr.column, jerr.text);
        if (st == HONE_OK) st = load_root(t, root);
        json_decref(root);
    }
    if (st == HONE_OK) st = finish(t, &cfg, from_vocab_json);
    tok_config_free(&cfg);
    return st;
}

hone_status hone_tokenizer_load(hone_tokenizer **out, const char *path) {
    *out = NULL;
    int is_dir = hone_dir_exists(path);
    /* the folder whose configuration files apply: path, or the file's folder */
    char *dir = strdup(path);
    if (dir && !is_dir) {
        char *slash = strrchr(dir, '/');
        if (slash)
            slash[slash == dir] = 0; /* "/tokenizer.json" keeps "/" */
        else
            strcpy(dir, ".");
    }
    char *file = !dir ? NULL : is_dir ? hone_path_join(path, "tokenizer.json") : strdup(path);
    char *vocab = dir ? hone_path_join(dir, "vocab.json") : NULL,
         *merges = dir ? hone_path_join(dir, "merges.txt") : NULL;
    hone_tokenizer *t = calloc(1, sizeof *t);
    hone_status st = HONE_OK;
    if (!file || !vocab || !merges || !t) st = hone_errorf(HONE_ERR_NOMEM, "out of memory loading %s", path);
    int from_vocab_json =
        st == HONE_OK && is_dir && !hone_file_exists(file) && hone_file_exists(vocab) && hone_file_exists(merges);
    if (st == HONE_OK && !from_vocab_json && !hone_file_exists(file))
        st = is_dir ? hone_errorf(HONE_ERR_IO,
                                  "%s: this folder has no tokenizer.json, nor "
                                  "vocab.json + merges.txt",
                                  path)
                    : hone_errorf(HONE_ERR_IO, "%s: no such file", path);
    if (st == HONE_OK) {
        t->path = from_vocab_json ? vocab : file;
        if (from_vocab_json)
            vocab = NULL;
        else
            file = NULL;
        t->serial = atomic_fetch_add(&next_serial, 1) + 1;
        st = load_files(t, dir, from_vocab_json);
    }
    free(dir);
    free(file);
    free(vocab);
    free(merges);
    if (st != HONE_OK) {
        hone_tokenizer_free(t);
        return st;
    }
    *out = t;
    return HONE_OK;
}

const char *hone_tokenizer_path(const hone_tokenizer *t) { return t->path; }

void hone_tokenizer_free(hone_tokenizer *t) {
    if (!t) return;
    for (int32_t i = 0; t->vocab && i < t->n_vocab; i++) free(t->vocab[i]);
    free(t->vocab);
    free(t->vocab_len);
    free(t->vocab_index.slots);
    free(t->merges);
    if (t->regex) pcre2_code_free(t->regex);
    for (size_t i = 0; i < t->n_added; i++) {
        if (t->added[i].match != t->added[i].content) free(t->added[i].match);
        free(t->added[i].content);
    }
    for (int b = 0; b < 256; b++) free(t->match_by_byte[b]);
    tok_spm_free(t);
    free(t->added);
    for (int b = 0; b < 256; b++) free(t->added_by_byte[b]);
    free(t->post_prefix);
    free(t->post_suffix);
    tok_pre_free(t);
    if (t->word_re) pcre2_code_free(t->word_re);
    tok_special_free(t);
    free(t->path);
    free(t);
}

int32_t hone_tokenizer_vocab_size(const hone_tokenizer *t) { return t->vocab_size; }

int32_t hone_tokenizer_token_to_id(const hone_tokenizer *t, const char *token) {
    size_t n = strlen(token);
    const tok_added *a = tok_added_by_content(t, token, n);
    return a ? a->id : tok_vocab_find(t, token, n);
}

const char *hone_tokenizer_id_to_token(const hone_tokenizer *t, int32_t id) {
    const tok_added *a = tok_added_by_id(t, id);
    if (a) return a->content;
    return id >= 0 && id < t->n_vocab ? t->vocab[id] : NULL;
}
