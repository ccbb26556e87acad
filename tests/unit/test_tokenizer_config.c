/* Tokenizer: malformed and unsupported input (Split patterns, pre-tokenizer sequences, normalizers, merges.txt,
 * configuration files) is refused with a message naming the field, line or offset; and the transformers
 * configuration beside a tokenizer (tokenizer_config.json, chat templates) changes what it should, checked on the
 * real Llama 2 tokenizer.json with configurations written here. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hone/data.h"
#include "hone/model.h"
#include "hone/tokenizer.h"
#include "testutil.h"

/* A byte-level tokenizer.json with vocabulary a b c d e h l o (ids 0..7) and the merge "h e", with the given
 * pre_tokenizer (JSON text). */
static char *tokenizer_json(const char *pre_tokenizer, const char *normalizer) {
    static const char fmt[] = "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"c\": 2, \"d\": 3, "
                              "\"e\": 4, \"h\": 5, \"l\": 6, \"o\": 7, \"he\": 8}, \"merges\": [\"h e\"]}, "
                              "\"normalizer\": %s, \"pre_tokenizer\": %s, \"decoder\": {\"type\": \"ByteLevel\"}}";
    size_t n = sizeof fmt + strlen(pre_tokenizer) + strlen(normalizer);
    char *s = malloc(n);
    snprintf(s, n, fmt, normalizer, pre_tokenizer);
    return s;
}

static hone_status load_with(const char *pre_tokenizer, const char *normalizer) {
    char *dir = test_tmpdir(), *json = tokenizer_json(pre_tokenizer, normalizer);
    free(test_write_file(dir, "tokenizer.json", json, strlen(json)));
    hone_tokenizer *tok = NULL;
    hone_status st = hone_tokenizer_load(&tok, dir);
    hone_tokenizer_free(tok);
    test_tmpdir_remove(dir);
    free(dir);
    free(json);
    return st;
}

#define BL_LAST "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": false}"

/* A Sequence of a Split with this regex (a JSON string) and behavior, then ByteLevel. */
static hone_status load_split(const char *regex_json, const char *behavior) {
    char pre[512];
    snprintf(pre, sizeof pre,
             "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"Regex\": %s}, "
             "\"behavior\": \"%s\", \"invert\": false}, " BL_LAST "]}",
             regex_json, behavior);
    return load_with(pre, "null");
}

static void test_pre_tokenizer_errors(void **s) {
    (void)s;
    TEST_OK(load_split("\"\\\\w+|\\\\s+\"", "Isolated"));
    /* PCRE2's message, at the offset in the pattern as written: "\w" becomes a long class before PCRE2 sees it */
    TEST_FAILS_WITH(load_split("\"ab(c\"", "Isolated"),
                    "pre_tokenizer.pretokenizers[0].pattern.Regex: the regex does not compile at offset 4: missing "
                    "closing parenthesis");
    TEST_FAILS_WITH(load_split("\"\\\\w+)x\"", "Isolated"), "does not compile at offset 3");
    TEST_FAILS_WITH(load_split("\"a\"", "Weird"),
                    "pre_tokenizer.pretokenizers[0].behavior must be one of \"Removed\", \"Isolated\", "
                    "\"MergedWithPrevious\", \"MergedWithNext\", \"Contiguous\" (not \"Weird\")");
    /* constructs Oniguruma and PCRE2 read differently, refused at their offset */
    const struct {
        const char *regex, *message;
    } refused[] = {
        {"\"a{2}+\"", "an interval followed by '+' at offset 1"},
        {"\"x{3}?\"", "a fixed interval followed by '?' at offset 1"},
        {"\"[a[b]]\"", "a nested character class at offset 2"},
        {"\"[a&&b]\"", "a class intersection (&&) at offset 2"},
        {"\"[[:alpha:]]\"", "a POSIX bracket expression at offset 1"},
        {"\"(?W)a\"", "the option (?W) at offset 2"},
        {"\"[\\\\W]\"", "\\W inside a character class at offset 1"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
        hone_status st = load_split(refused[i].regex, "Isolated");
        assert_int_equal(st, HONE_ERR_UNSUPPORTED);
        if (!strstr(hone_error(), refused[i].message) || !strstr(hone_error(), "is not supported"))
            fail_msg("%s: error '%s' does not say '%s'", refused[i].regex, hone_error(), refused[i].message);
    }
    TEST_FAILS_WITH(load_with("{\"type\": \"Split\", \"pattern\": {\"String\": \"a\", \"Regex\": \"b\"}, "
                              "\"behavior\": \"Removed\", \"invert\": false}",
                              "null"),
                    "pre_tokenizer.pattern must be {\"String\": \"...\"} or {\"Regex\": \"...\"}");
    TEST_FAILS_WITH(load_with("{\"type\": \"Split\", \"pattern\": {\"String\": \"a\"}, \"behavior\": \"Removed\", "
                              "\"invert\": 1}",
                              "null"),
                    "pre_tokenizer.invert must be true or false");
    /* after ByteLevel only steps that cut may come: they see its byte characters */
    TEST_OK(load_with("{\"type\": \"Sequence\", \"pretokenizers\": [" BL_LAST ", {\"type\": \"Digits\"}]}", "null"));
    TEST_FAILS_WITH(load_with("{\"type\": \"Sequence\", \"pretokenizers\": [" BL_LAST ", {\"type\": \"Metaspace\", "
                              "\"replacement\": \"_\"}]}",
                              "null"),
                    "pre_tokenizer.pretokenizers[1]: a Metaspace pre-tokenizer after a ByteLevel one is not supported");
    /* nested Sequences are flattened */
    TEST_FAILS_WITH(load_with("{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Sequence\", "
                              "\"pretokenizers\": [" BL_LAST "]}, " BL_LAST "]}",
                              "null"),
                    "pre_tokenizer.pretokenizers[1]: a ByteLevel pre-tokenizer after a ByteLevel one is not supported");
    TEST_FAILS_WITH(
        load_with("{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"UnicodeScripts\"}, " BL_LAST "]}", "null"),
        "pre_tokenizer.pretokenizers[0].type \"UnicodeScripts\" is not supported (only ByteLevel, "
        "Metaspace, Split, Digits, Punctuation, Whitespace, WhitespaceSplit, or a Sequence of them)");
    TEST_FAILS_WITH(load_with("{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Punctuation\", "
                              "\"behavior\": \"Merged\"}, " BL_LAST "]}",
                              "null"),
                    "pre_tokenizer.pretokenizers[0].behavior must be one of");
    TEST_FAILS_WITH(load_with(BL_LAST, "{\"type\": \"Strip\", \"strip_left\": true}"),
                    "normalizer.strip_left and normalizer.strip_right must be true or false");
    TEST_FAILS_WITH(load_with(BL_LAST, "{\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"NFC\"}, "
                                       "{\"type\": \"Precompiled\"}]}"),
                    "normalizer.normalizers[1].type \"Precompiled\" is not supported (only NFC, NFD, NFKC, NFKD, "
                    "Lowercase, Strip, Prepend, Replace, or a Sequence of them)");
}

/* A folder with vocab.json {a b c d e h l o he ll hell} and the given merges.txt; loads it. */
static hone_status load_merges(const char *merges, hone_tokenizer **tok) {
    char *dir = test_tmpdir();
    static const char vocab[] = "{\"a\": 0, \"b\": 1, \"c\": 2, \"d\": 3, \"e\": 4, \"h\": 5, \"l\": 6, \"o\": 7, "
                                "\"he\": 8, \"ll\": 9, \"hell\": 10}";
    free(test_write_file(dir, "vocab.json", vocab, strlen(vocab)));
    free(test_write_file(dir, "merges.txt", merges, strlen(merges)));
    *tok = NULL;
    hone_status st = hone_tokenizer_load(tok, dir);
    test_tmpdir_remove(dir);
    free(dir);
    return st;
}

static void expect_encode(const hone_tokenizer *tok, const char *text, const int32_t *want, size_t n_want) {
    int32_t *ids;
    size_t n;
    TEST_OK(hone_tokenizer_encode(tok, text, strlen(text), 1, &ids, &n));
    if (n != n_want) fail_msg("\"%s\": %zu ids, expected %zu", text, n, n_want);
    for (size_t i = 0; i < n; i++)
        if (ids[i] != want[i]) fail_msg("\"%s\": ids[%zu] = %d, expected %d", text, i, ids[i], want[i]);
    free(ids);
}

static void test_vocab_merges_files(void **s) {
    (void)s;
    hone_tokenizer *tok;
    TEST_OK(load_merges("#version: 0.2\nh e\r\nl l\nhe ll\n", &tok));
    expect_encode(tok, "hello", (int32_t[]){10, 7}, 2);
    /* GPT2TokenizerFast's defaults: no tokenizer_config.json, so "<|endoftext|>", which this vocabulary lacks,
     * becomes an added token after it */
    const hone_special_tokens *sp = hone_tokenizer_special(tok);
    assert_string_equal(sp->eos_token, "<|endoftext|>");
    assert_int_equal(sp->eos_id, 11);
    assert_int_equal(sp->bos_id, 11);
    assert_int_equal(sp->unk_id, 11);
    assert_int_equal(sp->pad_id, -1);
    assert_int_equal(hone_tokenizer_vocab_size(tok), 12);
    expect_encode(tok, "he<|endoftext|>", (int32_t[]){8, 11}, 2);
    hone_tokenizer_free(tok);
    /* transformers drops line 1 even when it is a merge, and the last line when no newline ends it (a warning) */
    TEST_OK(load_merges("h e\nl l\nhe ll", &tok));
    expect_encode(tok, "hello", (int32_t[]){5, 4, 9, 7}, 4);
    hone_tokenizer_free(tok);

    TEST_FAILS_WITH(load_merges("#version: 0.2\nh e\nh e l\n", &tok),
                    "merges.txt:3: \"h e l\" is not a merge (two tokens separated by one space)");
    TEST_FAILS_WITH(load_merges("#version: 0.2\n\nh e\n", &tok), "merges.txt:2: \"\" is not a merge");
    TEST_FAILS_WITH(load_merges("#version: 0.2\nh e\nh  e\n", &tok), "merges.txt:3: \"h  e\" is not a merge");
    TEST_FAILS_WITH(load_merges("#version: 0.2\nh e\nl z\n", &tok), "merges.txt:3: \"z\" is not in vocab.json");
    TEST_FAILS_WITH(load_merges("#version: 0.2\nh o\n", &tok), "merges.txt:2: \"ho\" is not in vocab.json");
    TEST_FAILS_WITH(load_merges("h e", &tok), "merges.txt: no line ends in this file");
    assert_null(tok);

    char *dir = test_tmpdir();
    TEST_FAILS_WITH(hone_tokenizer_load(&tok, dir), "this folder has no tokenizer.json, nor vocab.json + merges.txt");
    free(test_write_file(dir, "merges.txt", "#version: 0.2\n", 14));
    free(test_write_file(dir, "vocab.json", "{\"a\": 0,", 8));
    TEST_FAILS_WITH(hone_tokenizer_load(&tok, dir), "vocab.json: invalid JSON at line 1");
    free(test_write_file(dir, "vocab.json", "{\"a\": -1}", 9));
    TEST_FAILS_WITH(hone_tokenizer_load(&tok, dir), "vocab.json[\"a\"] must be a non-negative integer id");
    free(test_write_file(dir, "vocab.json", "{\"a\": 0}", 8));
    free(test_write_file(dir, "tokenizer_config.json", "{\"tokenizer_class\": \"RobertaTokenizer\"}", 39));
    TEST_FAILS_WITH(hone_tokenizer_load(&tok, dir),
                    "tokenizer_class \"RobertaTokenizer\" with vocab.json + merges.txt and no tokenizer.json is not "
                    "supported");
    free(test_write_file(dir, "tokenizer_config.json", "{\"tokenizer_class\": \"GPT2Tokenizer\"}", 36));
    TEST_OK(hone_tokenizer_load(&tok, dir));
    hone_tokenizer_free(tok);
    free(test_write_file(dir, "vocab.json", "{\"a\": 0, \"b\": 5000}", 19));
    TEST_FAILS_WITH(hone_tokenizer_load(&tok, dir),
                    "vocab.json has 2 tokens but ids up to 5000; the ids should be 0..1");
    test_tmpdir_remove(dir);
    free(dir);
}

/* A temporary folder with the real Llama 2 tokenizer.json (linked) and the given tokenizer_config.json (NULL:
 * none). */
static char *llama2_folder(const char *config) {
    const char *data = test_shared_data();
    if (!data) return NULL;
    char *dir = test_tmpdir(), *rel = hone_path_join(data, "tokenizers/llama2/tokenizer.json");
    char *real = realpath(rel, NULL), *link = hone_path_join(dir, "tokenizer.json");
    if (!real || symlink(real, link)) fail_msg("cannot link %s", rel);
    if (config) free(test_write_file(dir, "tokenizer_config.json", config, strlen(config)));
    free(rel);
    free(real);
    free(link);
    return dir;
}

static hone_tokenizer *load_dir(const char *dir) {
    hone_tokenizer *tok;
    TEST_OK(hone_tokenizer_load(&tok, dir));
    return tok;
}

static void drop(char *dir) {
    test_tmpdir_remove(dir);
    free(dir);
}

static void test_config_llama2(void **s) {
    (void)s;
    char *dir = llama2_folder(NULL);
    if (!dir) skip();
    /* no configuration: what tokenizer.json implies */
    hone_tokenizer *tok = load_dir(dir);
    const hone_special_tokens *sp = hone_tokenizer_special(tok);
    assert_string_equal(sp->bos_token, "<s>");
    assert_int_equal(sp->bos_id, 1);
    assert_null(sp->eos_token);
    assert_int_equal(sp->eos_id, -1);
    assert_string_equal(sp->unk_token, "<unk>");
    assert_int_equal(sp->unk_id, 0);
    assert_int_equal(sp->add_bos_token, 1);
    assert_int_equal(sp->add_eos_token, 0);
    assert_int_equal(sp->n_chat_templates, 0);
    assert_null(hone_tokenizer_chat_template(tok, NULL));
    expect_encode(tok, "hello", (int32_t[]){1, 22172}, 2);
    hone_tokenizer_free(tok);
    drop(dir);

    /* add_bos_token / add_eos_token rewrite the post-processor; AddedToken objects name the tokens */
    dir = llama2_folder("{\"add_bos_token\": false, \"add_eos_token\": true, \"bos_token\": \"<s>\", \"eos_token\": "
                        "{\"__type\": \"AddedToken\", \"content\": \"</s>\", \"normalized\": true}, "
                        "\"model_max_length\": 1000000000000000019884624838656}");
    tok = load_dir(dir);
    sp = hone_tokenizer_special(tok);
    assert_int_equal(sp->eos_id, 2);
    assert_int_equal(sp->add_bos_token, 0);
    assert_int_equal(sp->add_eos_token, 1);
    expect_encode(tok, "hello", (int32_t[]){22172, 2}, 2);
    hone_tokenizer_free(tok);
    drop(dir);

    /* only add_eos_token: the BOS tokenizer.json adds stays */
    dir = llama2_folder("{\"add_eos_token\": true, \"eos_token\": \"</s>\"}");
    tok = load_dir(dir);
    expect_encode(tok, "hello", (int32_t[]){1, 22172, 2}, 3);
    hone_tokenizer_free(tok);
    drop(dir);

    /* a special token the vocabulary lacks becomes an added token after it, with its flags */
    dir = llama2_folder("{\"pad_token\": {\"content\": \"<pad>\", \"lstrip\": true}, \"eos_token\": \"</s>\"}");
    tok = load_dir(dir);
    sp = hone_tokenizer_special(tok);
    assert_int_equal(sp->pad_id, 32000);
    assert_int_equal(hone_tokenizer_vocab_size(tok), 32001);
    expect_encode(tok, "hello  <pad>", (int32_t[]){1, 22172, 32000}, 3);
    hone_tokenizer_free(tok);
    drop(dir);

    /* an added token of added_tokens_decoder takes the next free id whatever id it is listed with (a warning) */
    dir = llama2_folder("{\"added_tokens_decoder\": {\"1\": {\"content\": \"<new>\", \"special\": true}}}");
    tok = load_dir(dir);
    assert_int_equal(hone_tokenizer_token_to_id(tok, "<new>"), 32000);
    assert_int_equal(hone_tokenizer_token_to_id(tok, "<s>"), 1);
    assert_int_equal(hone_tokenizer_is_special(tok, 32000), 1);
    assert_int_equal(hone_tokenizer_is_special(tok, 22172), 0);
    hone_tokenizer_free(tok);
    drop(dir);

    /* chat templates: tokenizer_config.json's, replaced by chat_template.jinja and additional_chat_templates/ */
    dir = llama2_folder("{\"chat_template\": [{\"name\": \"default\", \"template\": \"A\"}, {\"name\": \"rag\", "
                        "\"template\": \"B\"}]}");
    tok = load_dir(dir);
    assert_string_equal(hone_tokenizer_chat_template(tok, NULL), "A");
    assert_string_equal(hone_tokenizer_chat_template(tok, "rag"), "B");
    assert_null(hone_tokenizer_chat_template(tok, "tool_use"));
    hone_tokenizer_free(tok);
    free(test_write_file(dir, "chat_template.jinja", "{{ x }}", 7));
    char *extra = hone_path_join(dir, "additional_chat_templates");
    mkdir(extra, 0755);
    free(test_write_file(extra, "tool_use.jinja", "T", 1));
    free(test_write_file(extra, "notes.txt", "not a template", 14));
    tok = load_dir(dir);
    sp = hone_tokenizer_special(tok);
    assert_int_equal(sp->n_chat_templates, 2);
    assert_string_equal(sp->chat_template_names[0], "default");
    assert_string_equal(sp->chat_templates[0], "{{ x }}");
    assert_string_equal(hone_tokenizer_chat_template(tok, "tool_use"), "T");
    assert_null(hone_tokenizer_chat_template(tok, "rag"));
    hone_tokenizer_free(tok);
    free(extra);
    drop(dir);

    /* malformed configuration */
    const struct {
        const char *config, *message;
    } bad[] = {
        {"{\"add_bos_token\": 1}", "tokenizer_config.json: add_bos_token must be true or false"},
        {"{\"add_eos_token\": true, \"eos_token\": null}",
         "tokenizer_config.json: add_eos_token is true but there is no eos_token"},
        {"{\"bos_token\": 5}", "tokenizer_config.json: bos_token must be a non-empty string, an AddedToken object"},
        {"{\"eos_token\": {\"content\": \"</s>\", \"lstrip\": \"yes\"}}", "eos_token.lstrip must be true or false"},
        {"{\"chat_template\": 5}", "tokenizer_config.json: chat_template must be a string or a list"},
        {"{\"chat_template\": [{\"name\": \"a\"}]}", "chat_template[0] must be {\"name\": ..., \"template\": ...}"},
        {"{\"added_tokens_decoder\": {\"x\": {\"content\": \"<x>\"}}}",
         "tokenizer_config.json: added_tokens_decoder: \"x\" does not give a token id"},
        {"{\"added_tokens_decoder\": {\"7\": \"<x>\"}}", "added_tokens_decoder[\"7\"] must be an AddedToken object"},
        {"{\"bos_token\": \"<s>\",", "tokenizer_config.json: invalid JSON at line 1"},
        {"[]", "tokenizer_config.json: the top level must be a JSON object"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        dir = llama2_folder(bad[i].config);
        hone_tokenizer *t = NULL;
        TEST_FAILS_WITH(hone_tokenizer_load(&t, dir), bad[i].message);
        assert_null(t);
        drop(dir);
    }
}

/* Text data for a model whose config.json has no eos_token_id ends each document with the tokenizer's eos
 * (src/data/model_data.c); the tiny Qwen2 fixture's weights, a 5-token tokenizer with eos "<e>". */
static void test_model_data_eos(void **s) {
    (void)s;
    char *dir = test_tmpdir(), *config_text;
    size_t len;
    TEST_OK(hone_file_read("tests/fixtures/qwen2/config.json", &config_text, &len));
    json_error_t jerr;
    json_t *config = json_loads(config_text, 0, &jerr);
    json_object_del(config, "eos_token_id");
    json_object_del(config, "bos_token_id");
    char *dumped = json_dumps(config, 0), *weights = realpath("tests/fixtures/qwen2/model.safetensors", NULL);
    free(test_write_file(dir, "config.json", dumped, strlen(dumped)));
    char *link = hone_path_join(dir, "model.safetensors");
    if (!weights || symlink(weights, link)) fail_msg("cannot link the fixture weights");
    static const char tokenizer[] =
        "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"<unk>\": 0, \"a\": 1, \"b\": 2, \"ab\": 3, \"<e>\": 4}, "
        "\"merges\": [\"a b\"], \"unk_token\": \"<unk>\"}, \"decoder\": {\"type\": \"Fuse\"}, \"added_tokens\": "
        "[{\"id\": 4, \"content\": \"<e>\", \"special\": true}]}";
    free(test_write_file(dir, "tokenizer.json", tokenizer, strlen(tokenizer)));
    free(test_write_file(dir, "tokenizer_config.json", "{\"eos_token\": \"<e>\"}", 20));
    char *text = test_write_file(dir, "doc.txt", "abab", 4);
    hone_model *m;
    TEST_OK(hone_model_load(&m, dir));
    hone_token_stream stream;
    TEST_OK(hone_tokens_load_for_model(&stream, text, m, NULL, NULL, NULL));
    assert_int_equal(stream.n_tokens, 3);
    assert_int_equal(stream.tokens[0], 3);
    assert_int_equal(stream.tokens[1], 3);
    assert_int_equal(stream.tokens[2], 4);
    hone_tokens_free(&stream);
    hone_model_free(m);
    json_decref(config);
    free(config_text);
    free(dumped);
    free(weights);
    free(link);
    free(text);
    test_tmpdir_remove(dir);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pre_tokenizer_errors),
        cmocka_unit_test(test_vocab_merges_files),
        cmocka_unit_test(test_config_llama2),
        cmocka_unit_test(test_model_data_eos),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
