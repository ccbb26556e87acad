/* Tokenizer against tools/tokenizer_oracle.py, an independent Python implementation of Hugging Face's semantics:
 * every folder of tests/fixtures/tokenizer (small tokenizers built by the oracle: Split with each delimiter
 * behavior, Oniguruma constructs, Qwen2 / Llama 3 / o200k patterns, Digits, Punctuation, Whitespace(Split),
 * Metaspace in a Sequence, the Unicode normalizers, single_word / lstrip / rstrip / normalized added tokens,
 * vocab.json + merges.txt folders with their configuration files) and its expectations for real tokenizers in
 * ../shared/data (shared_expected.json). Each case: the ids with and without special tokens, the decoded text
 * with and without special tokens, or the error hone gives where Hugging Face silently drops a byte; and for
 * pre-tokenizer pipelines, the words the pipeline hands to BPE (read through the module's internals), since two
 * different cuts of a text may happen to give the same ids. */
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hone/tokenizer.h"
#include "testutil.h"
#include "tokenizer/tokenizer_internal.h"

#define FIXTURES "tests/fixtures/tokenizer"

static void check_ids(const char *what, const char *text, const int32_t *ids, size_t n, json_t *want) {
    if (n != json_array_size(want)) fail_msg("%s: \"%s\": %zu ids, expected %zu", what, text, n, json_array_size(want));
    for (size_t i = 0; i < n; i++)
        if (ids[i] != json_integer_value(json_array_get(want, i)))
            fail_msg("%s: \"%s\": ids[%zu] = %d, expected %lld", what, text, i, ids[i],
                     (long long)json_integer_value(json_array_get(want, i)));
}

static void check_decode(const char *what, const hone_tokenizer *tok, const int32_t *ids, size_t n, int skip,
                         json_t *want) {
    char *text;
    size_t len;
    TEST_OK(hone_tokenizer_decode(tok, ids, n, skip, &text, &len));
    if (len != json_string_length(want) || memcmp(text, json_string_value(want), len))
        fail_msg("%s: decode (skip_special_tokens=%d) gave \"%s\", expected \"%s\"", what, skip, text,
                 json_string_value(want));
    free(text);
}

typedef struct {
    const hone_tokenizer *t;
    json_t *words;
} recorder;

/* A word as the oracle writes it: in ByteLevel's byte characters when the tokenizer is byte-level. */
static hone_status record_word(void *ctx, const uint8_t *w, size_t n) {
    recorder *r = ctx;
    tok_bytes s = {0};
    for (size_t i = 0; i < n; i++)
        TEST_OK(r->t->byte_level ? tok_bytes_append(&s, r->t->byte_char[w[i]], r->t->byte_char_len[w[i]])
                                 : tok_bytes_append(&s, w + i, 1));
    json_array_append_new(r->words, json_stringn(s.v, s.n));
    free(s.v);
    return HONE_OK;
}

/* The words the normalizer and the pre-tokenizer pipeline make of text (which holds no added token). */
static void check_pieces(const char *what, const hone_tokenizer *t, const char *text, size_t len, json_t *want) {
    tok_bytes norm = {0};
    if (t->n_norm)
        TEST_OK(tok_normalize(t, (const uint8_t *)text, len, &norm));
    else
        TEST_OK(tok_bytes_append(&norm, text, len));
    tok_pre_scratch scratch = {0};
    pcre2_match_data *md = t->regex ? pcre2_match_data_create_from_pattern(t->regex, NULL) : NULL;
    json_t *got = json_array();
    recorder r = {t, got};
    TEST_OK(tok_pre_tokenize(t, &scratch, md, (const uint8_t *)norm.v, norm.n, 1, record_word, &r));
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_ENSURE_ASCII), *w = json_dumps(want, JSON_ENSURE_ASCII);
        fail_msg("%s: \"%s\": pre-tokenized as %s, expected %s", what, text, g, w);
    }
    json_decref(got);
    if (md) pcre2_match_data_free(md);
    tok_pre_scratch_free(&scratch);
    free(norm.v);
}

/* Runs the cases of one expectation object {"cases": [...], "special": {...}} against tok. */
static size_t check_cases(const char *what, const hone_tokenizer *tok, json_t *expected) {
    json_t *cases = json_object_get(expected, "cases"), *c;
    size_t i;
    assert_true(json_array_size(cases) > 0);
    json_array_foreach(cases, i, c) {
        const char *text = json_string_value(json_object_get(c, "text"));
        size_t len = json_string_length(json_object_get(c, "text"));
        int32_t *ids;
        size_t n;
        if (json_object_get(c, "error")) {
            TEST_FAILS_WITH(hone_tokenizer_encode(tok, text, len, 1, &ids, &n), "has no token in model.vocab");
            continue;
        }
        if (json_object_get(c, "pieces")) check_pieces(what, tok, text, len, json_object_get(c, "pieces"));
        TEST_OK(hone_tokenizer_encode(tok, text, len, 1, &ids, &n));
        check_ids(what, text, ids, n, json_object_get(c, "ids"));
        /* the oracle leaves out the variants without special tokens where they equal the plain ones */
        json_t *decoded = json_object_get(c, "decoded"), *skip = json_object_get(c, "decoded_skip_special"),
               *no_special = json_object_get(c, "ids_no_special");
        check_decode(what, tok, ids, n, 0, decoded);
        check_decode(what, tok, ids, n, 1, skip ? skip : decoded);
        free(ids);
        TEST_OK(hone_tokenizer_encode(tok, text, len, 0, &ids, &n));
        check_ids(what, text, ids, n, no_special ? no_special : json_object_get(c, "ids"));
        free(ids);
    }
    json_t *special = json_object_get(expected, "special");
    if (!special) return i;
    const hone_special_tokens *sp = hone_tokenizer_special(tok);
    const char *keys[4] = {"bos", "eos", "unk", "pad"};
    const char *strs[4] = {sp->bos_token, sp->eos_token, sp->unk_token, sp->pad_token};
    int32_t ids[4] = {sp->bos_id, sp->eos_id, sp->unk_id, sp->pad_id};
    for (int k = 0; k < 4; k++) {
        char key[16];
        snprintf(key, sizeof key, "%s_token", keys[k]);
        json_t *want = json_object_get(special, key);
        if (json_is_null(want) ? strs[k] != NULL : !strs[k] || strcmp(strs[k], json_string_value(want)))
            fail_msg("%s: %s is \"%s\", expected \"%s\"", what, key, strs[k] ? strs[k] : "(none)",
                     json_is_null(want) ? "(none)" : json_string_value(want));
        snprintf(key, sizeof key, "%s_id", keys[k]);
        if (ids[k] != json_integer_value(json_object_get(special, key)))
            fail_msg("%s: %s = %d, expected %lld", what, key, ids[k],
                     (long long)json_integer_value(json_object_get(special, key)));
    }
    assert_int_equal(sp->add_bos_token, json_is_true(json_object_get(special, "add_bos_token")));
    assert_int_equal(sp->add_eos_token, json_is_true(json_object_get(special, "add_eos_token")));
    json_t *templates = json_object_get(special, "chat_templates");
    assert_int_equal(sp->n_chat_templates, json_array_size(templates));
    for (size_t t = 0; t < sp->n_chat_templates; t++) {
        json_t *pair = json_array_get(templates, t);
        assert_string_equal(sp->chat_template_names[t], json_string_value(json_array_get(pair, 0)));
        assert_string_equal(sp->chat_templates[t], json_string_value(json_array_get(pair, 1)));
        assert_ptr_equal(hone_tokenizer_chat_template(tok, sp->chat_template_names[t]), sp->chat_templates[t]);
    }
    return i;
}

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void test_oracle_fixtures(void **s) {
    (void)s;
    DIR *d = opendir(FIXTURES);
    if (!d) fail_msg("%s is missing (tools/tokenizer_oracle.py writes it)", FIXTURES);
    char *names[64];
    size_t n_names = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.' && !strchr(e->d_name, '.') && n_names < 64) names[n_names++] = strdup(e->d_name);
    closedir(d);
    qsort(names, n_names, sizeof *names, cmp_names);
    assert_true(n_names >= 30);
    size_t total = 0;
    for (size_t k = 0; k < n_names; k++) {
        char *dir = hone_path_join(FIXTURES, names[k]), *path = hone_path_join(dir, "expected.json");
        json_error_t jerr;
        json_t *expected = json_load_file(path, 0, &jerr);
        if (!expected) fail_msg("%s: %s", path, jerr.text);
        hone_tokenizer *tok;
        TEST_OK(hone_tokenizer_load(&tok, dir)); /* the folder: tokenizer.json or vocab.json + merges.txt */
        total += check_cases(names[k], tok, expected);
        hone_tokenizer_free(tok);
        json_decref(expected);
        free(path);
        free(dir);
        free(names[k]);
    }
    fprintf(stderr, "oracle: %zu fixture tokenizers, %zu strings, each encoded and decoded both ways\n", n_names,
            total);
}

static void test_oracle_shared(void **s) {
    (void)s;
    const char *data = test_shared_data();
    if (!data) skip();
    json_error_t jerr;
    json_t *all = json_load_file(FIXTURES "/shared_expected.json", 0, &jerr);
    if (!all) fail_msg("%s/shared_expected.json: %s", FIXTURES, jerr.text);
    const char *rel;
    json_t *expected;
    size_t files = 0;
    json_object_foreach(all, rel, expected) {
        char *path = hone_path_join(data, rel);
        hone_tokenizer *tok;
        TEST_OK(hone_tokenizer_load(&tok, path));
        size_t n = check_cases(rel, tok, expected);
        fprintf(stderr, "oracle: %s: %zu strings\n", rel, n);
        hone_tokenizer_free(tok);
        free(path);
        files++;
    }
    assert_int_equal(files, 2);
    json_decref(all);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_oracle_fixtures),
        cmocka_unit_test(test_oracle_shared),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
