/* The transformers configuration beside a tokenizer: tokenizer_config.json, special_tokens_map.json,
 * added_tokens.json and the chat templates, read as transformers' from_pretrained reads them.
 *
 *   special tokens   bos_token, eos_token, unk_token, pad_token of tokenizer_config.json, each a string, an
 *                    AddedToken object {"content": ..., "lstrip": ..., ...} or null. When tokenizer_config.json
 *                    has no added_tokens_decoder (the legacy layout), special_tokens_map.json's values replace
 *                    them. A key given nowhere falls back to the class defaults of GPT2TokenizerFast
 *                    ("<|endoftext|>" for bos, eos and unk) for vocab.json + merges.txt folders, and to what
 *                    tokenizer.json implies otherwise: unk = model.unk_token, bos / eos = the one special token
 *                    a TemplateProcessing puts before / after the sequence.
 *   added tokens     added_tokens_decoder {"id": AddedToken} (or, in the legacy layout, added_tokens.json
 *                    {"content": id}) in id order, then the special tokens (with additional_special_tokens)
 *                    that are not added tokens yet, become added tokens; one that exists takes the flags given
 *                    in added_tokens_decoder, as tokenizers' add_tokens does.
 *   add_bos_token    when either of these booleans is given, encode(add_special_tokens) puts exactly [bos] before
 *   add_eos_token    and [eos] after the text as they say (transformers' LlamaTokenizerFast.update_post_processor);
 *                    the one not given keeps what tokenizer.json's post-processor did.
 *   chat templates   chat_template.jinja (the default) and additional_chat_templates/NAME.jinja when present,
 *                    else tokenizer_config.json's chat_template: a string (the default) or a list of
 *                    {"name", "template"}. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer_internal.h"

/* transformers' SPECIAL_TOKENS_ATTRIBUTES; the first four are reported by hone_tokenizer_special */
enum { BOS, EOS, UNK, PAD, N_REPORTED, N_NAMED = 7 };
static const char *const special_keys[N_NAMED] = {"bos_token", "eos_token", "unk_token", "pad_token",
                                                  "sep_token", "cls_token", "mask_token"};

hone_status tok_read_json_object(const char *path, size_t flags, json_t **out) {
    *out = NULL;
    hone_status st = HONE_OK;
    if (hone_file_exists(path)) {
        json_error_t jerr;
        *out = json_load_file(path, flags, &jerr);
        if (!*out)
            st = hone_errorf(HONE_ERR_FORMAT, "%s: invalid JSON at line %d, column %d: %s", path, jerr.line,
                             jerr.column, jerr.text);
        else if (!json_is_object(*out))
            st = hone_errorf(HONE_ERR_FORMAT, "%s: the top level must be a JSON object", path);
        if (st != HONE_OK) {
            json_decref(*out);
            *out = NULL;
        }
    }
    return st;
}

static hone_status read_object(const char *dir, const char *name, size_t flags, json_t **out) {
    char *path = hone_path_join(dir, name);
    if (!path) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    hone_status st = tok_read_json_object(path, flags, out);
    free(path);
    return st;
}

hone_status tok_config_read(tok_config *c, const char *dir) {
    memset(c, 0, sizeof *c);
    c->dir = strdup(dir);
    if (!c->dir) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    hone_status st = read_object(dir, "tokenizer_config.json", JSON_DECODE_INT_AS_REAL, &c->config);
    if (st == HONE_OK) st = read_object(dir, "special_tokens_map.json", JSON_DECODE_INT_AS_REAL, &c->special_map);
    if (st == HONE_OK) st = read_object(dir, "added_tokens.json", 0, &c->added);
    if (st != HONE_OK) tok_config_free(c);
    return st;
}

void tok_config_free(tok_config *c) {
    json_decref(c->config);
    json_decref(c->special_map);
    json_decref(c->added);
    free(c->dir);
    memset(c, 0, sizeof *c);
}

hone_status tok_config_gpt2(const tok_config *c, int *add_prefix_space) {
    /* other classes build other tokenizers from these files (RoBERTa adds <s> </s>, Qwen2 another regex and NFC) */
    json_t *cls = json_object_get(c->config, "tokenizer_class");
    if (json_is_string(cls) && strcmp(json_string_value(cls), "GPT2Tokenizer") &&
        strcmp(json_string_value(cls), "GPT2TokenizerFast"))
        return hone_errorf(HONE_ERR_UNSUPPORTED,
                           "%s/tokenizer_config.json: tokenizer_class \"%s\" with vocab.json + merges.txt and no "
                           "tokenizer.json is not supported (only GPT2Tokenizer); save the tokenizer with "
                           "transformers' save_pretrained to get its tokenizer.json",
                           c->dir, json_string_value(cls));
    json_t *v = json_object_get(c->config, "add_prefix_space");
    *add_prefix_space = json_is_true(v);
    if (v && !json_is_boolean(v) && !json_is_null(v))
        return hone_errorf(HONE_ERR_FORMAT, "%s/tokenizer_config.json: add_prefix_space must be true or false", c->dir);
    return HONE_OK;
}

/* A token written as "text" or as an AddedToken object; *content NULL for null. Flags absent from an object take
 * AddedToken's defaults (normalized = not special). */
static hone_status parse_token(const char *where, json_t *v, int special, tok_added *flags, const char **content,
                               size_t *len) {
    memset(flags, 0, sizeof *flags);
    flags->special = special;
    flags->normalized = !special;
    *content = NULL;
    *len = 0;
    if (json_is_null(v)) return HONE_OK;
    json_t *text = json_is_object(v) ? json_object_get(v, "content") : v;
    if (!json_is_string(text) || !json_string_length(text))
        return hone_errorf(HONE_ERR_FORMAT,
                           "%s must be a non-empty string, an AddedToken object {\"content\": ...} "
                           "or null",
                           where);
    *content = json_string_value(text);
    *len = json_string_length(text);
    if (!json_is_object(v)) return HONE_OK;
    static const char *const keys[] = {"special", "lstrip", "rstrip", "normalized", "single_word"};
    int *fields[] = {&flags->special, &flags->lstrip, &flags->rstrip, &flags->normalized, &flags->single_word};
    for (int k = 0; k < 5; k++) {
        json_t *f = json_object_get(v, keys[k]);
        if (f && !json_is_boolean(f))
            return hone_errorf(HONE_ERR_FORMAT, "%s.%s must be true or false", where, keys[k]);
        if (f) *fields[k] = json_is_true(f);
    }
    if (!json_object_get(v, "normalized")) flags->normalized = !flags->special;
    return HONE_OK;
}

/* The id of a token string (added tokens first), or -1; the added tokens are not indexed yet. */
static int32_t id_of(const hone_tokenizer *t, const char *s, size_t n) {
    const tok_added *a = tok_added_find(t, s, n);
    return a ? a->id : tok_vocab_find(t, s, n);
}

/* The token string of an id, or NULL. */
static const char *token_of(const hone_tokenizer *t, int32_t id) {
    for (size_t i = 0; i < t->n_added; i++)
        if (t->added[i].id == id) return t->added[i].content;
    return id >= 0 && id < t->n_vocab ? t->vocab[id] : NULL;
}

/* Adds a special token that is not an added token yet (transformers' tokens_to_add). */
static hone_status add_if_absent(hone_tokenizer *t, const tok_added *flags, const char *content, size_t len,
                                 const char *where) {
    if (tok_added_find(t, content, len)) return HONE_OK;
    tok_added special = *flags;
    special.special = 1;
    return tok_added_put(t, &special, content, len, -1, where);
}

typedef struct {
    json_t *value; /* the configured value, NULL when given nowhere */
    char where[160];
} named_token;

/* Where each special token is configured: tokenizer_config.json, or special_tokens_map.json in the legacy layout. */
static void find_named(const tok_config *c, int legacy, named_token named[N_NAMED]) {
    for (int k = 0; k < N_NAMED; k++) {
        json_t *v = json_object_get(c->config, special_keys[k]);
        const char *file = "tokenizer_config.json";
        if (legacy && json_object_get(c->special_map, special_keys[k])) {
            v = json_object_get(c->special_map, special_keys[k]);
            file = "special_tokens_map.json";
        }
        named[k].value = v;
        snprintf(named[k].where, sizeof named[k].where, "%s/%s: %s", c->dir, file, special_keys[k]);
    }
}

typedef struct {
    int32_t id;
    const char *key; /* added_tokens_decoder: the id as text; added_tokens.json: the token */
    json_t *value;   /* added_tokens_decoder: the AddedToken; added_tokens.json: the id */
} indexed_token;

static int cmp_indexed(const void *a, const void *b) {
    const indexed_token *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

/* 1 when a configured special token (a string or an AddedToken) is `content`. */
static int is_named(json_t *v, const char *content) {
    json_t *text = json_is_object(v) ? json_object_get(v, "content") : v;
    return json_is_string(text) && !strcmp(json_string_value(text), content);
}

/* added_tokens_decoder {"id": AddedToken}, or the legacy added_tokens.json {"content": id} whose tokens are special
 * when a special token names them. In id order, each added or updated. */
static hone_status apply_added(hone_tokenizer *t, const tok_config *c, const named_token named[N_NAMED],
                               json_t *additional) {
    json_t *decoder = json_object_get(c->config, "added_tokens_decoder");
    json_t *table = decoder ? decoder : c->added;
    const char *file = decoder ? "tokenizer_config.json: added_tokens_decoder" : "added_tokens.json";
    if (!table) return HONE_OK;
    if (!json_is_object(table)) return hone_errorf(HONE_ERR_FORMAT, "%s/%s must be an object", c->dir, file);
    size_t n = json_object_size(table), k = 0;
    indexed_token *v = calloc(n ? n : 1, sizeof *v);
    if (!v) return hone_errorf(HONE_ERR_NOMEM, "out of memory reading %s/%s", c->dir, file);
    hone_status st = HONE_OK;
    const char *key;
    json_t *value;
    json_object_foreach(table, key, value) {
        char *end = NULL;
        long long id = decoder ? strtoll(key, &end, 10) : json_is_integer(value) ? json_integer_value(value) : -1;
        if ((decoder && (*end || end == key)) || id < 0 || id >= INT32_MAX) {
            st = hone_errorf(HONE_ERR_FORMAT, "%s/%s: \"%s\" does not give a token id", c->dir, file, key);
            break;
        }
        v[k++] = (indexed_token){(int32_t)id, key, value};
    }
    if (st == HONE_OK) qsort(v, n, sizeof *v, cmp_indexed);
    for (size_t i = 0; i < n && st == HONE_OK; i++) {
        char where[512];
        snprintf(where, sizeof where, "%s/%s[\"%s\"]", c->dir, file, v[i].key);
        tok_added flags;
        const char *content = v[i].key;
        size_t len = strlen(content);
        if (decoder) {
            st = json_is_object(v[i].value) ? parse_token(where, v[i].value, 0, &flags, &content, &len)
                                            : hone_errorf(HONE_ERR_FORMAT, "%s must be an AddedToken object", where);
        } else {
            int special = 0;
            for (int s = 0; s < N_NAMED; s++) special |= is_named(named[s].value, content);
            for (size_t a = 0; a < json_array_size(additional); a++)
                special |= is_named(json_array_get(additional, a), content);
            memset(&flags, 0, sizeof flags);
            flags.special = special;
            flags.normalized = !special;
        }
        if (st == HONE_OK) st = tok_added_put(t, &flags, content, len, v[i].id, where);
    }
    free(v);
    return st;
}

/* ---- chat templates ---- */

static hone_status push_template(tok_special *sp, const char *name, size_t name_len, const char *text, size_t len) {
    char **names = realloc(sp->template_names, (sp->n_templates + 1) * sizeof *names);
    if (names) sp->template_names = names;
    char **texts = names ? realloc(sp->templates, (sp->n_templates + 1) * sizeof *texts) : NULL;
    if (texts) sp->templates = texts;
    char *n = texts ? strndup(name, name_len) : NULL, *x = n ? strndup(text, len) : NULL;
    if (!x) {
        free(n);
        return hone_errorf(HONE_ERR_NOMEM, "out of memory reading a chat template");
    }
    /* "default" comes first */
    size_t at = strcmp(n, "default") ? sp->n_templates : 0;
    memmove(names + at + 1, names + at, (sp->n_templates - at) * sizeof *names);
    memmove(texts + at + 1, texts + at, (sp->n_templates - at) * sizeof *texts);
    names[at] = n;
    texts[at] = x;
    sp->n_templates++;
    return HONE_OK;
}

static hone_status push_template_file(tok_special *sp, const char *name, size_t name_len, const char *path) {
    char *text;
    size_t len;
    HONE_TRY(hone_file_read(path, &text, &len));
    hone_status st = push_template(sp, name, name_len, text, len);
    free(text);
    return st;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* additional_chat_templates/NAME.jinja, in name order. */
static hone_status read_template_dir(tok_special *sp, const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return hone_errorf(HONE_ERR_IO, "%s: cannot list this folder", dir);
    char **files = NULL;
    size_t n = 0;
    hone_status st = HONE_OK;
    for (struct dirent *e; (e = readdir(d)) && st == HONE_OK;) {
        size_t len = strlen(e->d_name);
        if (len <= 6 || strcmp(e->d_name + len - 6, ".jinja")) continue;
        char **grown = realloc(files, (n + 1) * sizeof *grown);
        if (grown) files = grown;
        if (!grown || !(files[n] = strdup(e->d_name)))
            st = hone_errorf(HONE_ERR_NOMEM, "out of memory listing %s", dir);
        else
            n++;
    }
    closedir(d);
    if (n) qsort(files, n, sizeof *files, cmp_str);
    for (size_t i = 0; i < n; i++) {
        char *path = st == HONE_OK ? hone_path_join(dir, files[i]) : NULL;
        if (st == HONE_OK && !path) st = hone_errorf(HONE_ERR_NOMEM, "out of memory");
        if (st == HONE_OK) st = push_template_file(sp, files[i], strlen(files[i]) - 6, path);
        free(path);
        free(files[i]);
    }
    free(files);
    return st;
}

static hone_status load_templates(hone_tokenizer *t, const tok_config *c) {
    tok_special *sp = &t->special;
    char *file = hone_path_join(c->dir, "chat_template.jinja"),
         *dir = hone_path_join(c->dir, "additional_chat_templates");
    hone_status st = file && dir ? HONE_OK : hone_errorf(HONE_ERR_NOMEM, "out of memory");
    int files = st == HONE_OK && (hone_file_exists(file) || hone_dir_exists(dir));
    /* template files, when there are any, replace tokenizer_config.json's chat_template */
    if (files && hone_file_exists(file)) st = push_template_file(sp, "default", 7, file);
    if (files && st == HONE_OK && hone_dir_exists(dir)) st = read_template_dir(sp, dir);
    free(file);
    free(dir);
    json_t *ct = json_object_get(c->config, "chat_template");
    if (files || st != HONE_OK || !ct || json_is_null(ct)) return st;
    if (json_is_string(ct)) return push_template(sp, "default", 7, json_string_value(ct), json_string_length(ct));
    for (size_t i = 0; json_is_array(ct) && i < json_array_size(ct); i++) {
        json_t *e = json_array_get(ct, i), *name = json_object_get(e, "name"), *text = json_object_get(e, "template");
        if (!json_is_string(name) || !json_is_string(text))
            return hone_errorf(
                HONE_ERR_FORMAT,
                "%s/tokenizer_config.json: chat_template[%zu] must be {\"name\": ..., \"template\": ...}", c->dir, i);
        HONE_TRY(push_template(sp, json_string_value(name), json_string_length(name), json_string_value(text),
                               json_string_length(text)));
    }
    if (!json_is_array(ct))
        return hone_errorf(HONE_ERR_FORMAT,
                           "%s/tokenizer_config.json: chat_template must be a string or a list of {name, template}",
                           c->dir);
    return HONE_OK;
}

/* ---- add_bos_token / add_eos_token ---- */

static hone_status get_switch(const tok_config *c, const char *key, json_t **out) {
    *out = json_object_get(c->config, key);
    if (*out && !json_is_boolean(*out) && !json_is_null(*out))
        return hone_errorf(HONE_ERR_FORMAT, "%s/tokenizer_config.json: %s must be true or false", c->dir, key);
    return HONE_OK;
}

static hone_status set_ids(int32_t **ids, size_t *n, int32_t id, int on) {
    free(*ids);
    *ids = NULL;
    *n = 0;
    if (!on) return HONE_OK;
    if (!(*ids = malloc(sizeof **ids))) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    (*ids)[0] = id;
    *n = 1;
    return HONE_OK;
}

/* transformers' update_post_processor: the template becomes [bos] $A [eos] as the two switches say. */
static hone_status apply_bos_eos(hone_tokenizer *t, const tok_config *c, int32_t bos, int32_t eos) {
    json_t *add_bos, *add_eos;
    HONE_TRY(get_switch(c, "add_bos_token", &add_bos));
    HONE_TRY(get_switch(c, "add_eos_token", &add_eos));
    if (!json_is_boolean(add_bos) && !json_is_boolean(add_eos)) return HONE_OK;
    int with_bos = json_is_boolean(add_bos) ? json_is_true(add_bos)
                                            : bos >= 0 && t->n_post_prefix == 1 && t->post_prefix[0] == bos;
    int with_eos = json_is_boolean(add_eos) ? json_is_true(add_eos)
                                            : eos >= 0 && t->n_post_suffix == 1 && t->post_suffix[0] == eos;
    if ((with_bos && bos < 0) || (with_eos && eos < 0))
        return hone_errorf(HONE_ERR_FORMAT, "%s/tokenizer_config.json: %s is true but there is no %s", c->dir,
                           with_bos && bos < 0 ? "add_bos_token" : "add_eos_token",
                           with_bos && bos < 0 ? "bos_token" : "eos_token");
    HONE_TRY(set_ids(&t->post_prefix, &t->n_post_prefix, bos, with_bos));
    return set_ids(&t->post_suffix, &t->n_post_suffix, eos, with_eos);
}

/* ---- putting it together ---- */

hone_status tok_config_apply(hone_tokenizer *t, const tok_config *c, int from_vocab_json) {
    tok_special *sp = &t->special;
    int legacy = !json_object_get(c->config, "added_tokens_decoder");
    named_token named[N_NAMED];
    find_named(c, legacy, named);
    json_t *additional = json_object_get(c->config, "additional_special_tokens");
    if (legacy && json_object_get(c->special_map, "additional_special_tokens"))
        additional = json_object_get(c->special_map, "additional_special_tokens");
    if (additional && !json_is_array(additional) && !json_is_null(additional))
        return hone_errorf(HONE_ERR_FORMAT, "%s: additional_special_tokens must be a list", c->dir);
    HONE_TRY(apply_added(t, c, named, additional));

    int32_t ids[N_REPORTED] = {-1, -1, -1, -1};
    for (int k = 0; k < N_NAMED; k++) {
        tok_added flags;
        const char *content = NULL;
        size_t len = 0;
        if (named[k].value) {
            HONE_TRY(parse_token(named[k].where, named[k].value, 1, &flags, &content, &len));
        } else if (from_vocab_json && k < PAD) { /* GPT2Tokenizer's defaults */
            memset(&flags, 0, sizeof flags);
            content = "<|endoftext|>";
            len = strlen(content);
        } else if (k < N_REPORTED) { /* what tokenizer.json implies */
            ids[k] = k == UNK   ? t->unk_id
                     : k == BOS ? (t->n_post_prefix == 1 ? t->post_prefix[0] : -1)
                     : k == EOS ? (t->n_post_suffix == 1 ? t->post_suffix[0] : -1)
                                : -1;
            const char *tok = token_of(t, ids[k]);
            if (ids[k] >= 0 && tok && !(sp->strings[k] = strdup(tok)))
                return hone_errorf(HONE_ERR_NOMEM, "out of memory");
            if (!tok) ids[k] = -1;
            continue;
        }
        if (!content) continue; /* null, or a sep / cls / mask token given nowhere */
        HONE_TRY(add_if_absent(t, &flags, content, len, named[k].where));
        if (k >= N_REPORTED) continue;
        if (!(sp->strings[k] = strndup(content, len))) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
        ids[k] = id_of(t, content, len);
    }
    for (size_t a = 0; a < json_array_size(additional); a++) {
        char where[256];
        snprintf(where, sizeof where, "%s: additional_special_tokens[%zu]", c->dir, a);
        tok_added flags;
        const char *content;
        size_t len;
        HONE_TRY(parse_token(where, json_array_get(additional, a), 1, &flags, &content, &len));
        if (content) HONE_TRY(add_if_absent(t, &flags, content, len, where));
    }
    HONE_TRY(apply_bos_eos(t, c, ids[BOS], ids[EOS]));
    HONE_TRY(load_templates(t, c));

    hone_special_tokens *pub = &sp->pub;
    pub->bos_token = sp->strings[BOS];
    pub->eos_token = sp->strings[EOS];
    pub->unk_token = sp->strings[UNK];
    pub->pad_token = sp->strings[PAD];
    pub->bos_id = ids[BOS];
    pub->eos_id = ids[EOS];
    pub->unk_id = ids[UNK];
    pub->pad_id = ids[PAD];
    pub->add_bos_token = ids[BOS] >= 0 && t->n_post_prefix && t->post_prefix[0] == ids[BOS];
    pub->add_eos_token = ids[EOS] >= 0 && t->n_post_suffix && t->post_suffix[t->n_post_suffix - 1] == ids[EOS];
    pub->n_chat_templates = sp->n_templates;
    pub->chat_template_names = (const char *const *)sp->template_names;
    pub->chat_templates = (const char *const *)sp->templates;
    return HONE_OK;
}

void tok_special_free(hone_tokenizer *t) {
    tok_special *sp = &t->special;
    for (int k = 0; k < 4; k++) free(sp->strings[k]);
    for (size_t i = 0; i < sp->n_templates; i++) {
        free(sp->template_names[i]);
        free(sp->templates[i]);
    }
    free(sp->template_names);
    free(sp->templates);
    memset(sp, 0, sizeof *sp);
}

const hone_special_tokens *hone_tokenizer_special(const hone_tokenizer *t) { return &t->special.pub; }

int hone_tokenizer_is_special(const hone_tokenizer *t, int32_t id) {
    const tok_added *a = tok_added_by_id(t, id);
    return a && a->special;
}

const char *hone_tokenizer_chat_template(const hone_tokenizer *t, const char *name) {
    if (!name) name = "default";
    for (size_t i = 0; i < t->special.n_templates; i++)
        if (!strcmp(t->special.template_names[i], name)) return t->special.templates[i];
    return NULL;
}
