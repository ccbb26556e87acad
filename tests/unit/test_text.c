/* Text everywhere: streaming decode, and text files / JSONL {"text"} rows as token streams. Uses the real GPT-2
 * tokenizer from ../shared/data (skipped when absent) and a byte-level tokenizer.json written here. */
#include <stdlib.h>
#include <string.h>

#include "hone/data.h"
#include "hone/tokenizer.h"
#include "testutil.h"

static hone_tokenizer *gpt2(void) {
    const char *data = test_shared_data();
    if (!data) return NULL;
    char path[512];
    snprintf(path, sizeof path, "%s/tokenizers/gpt2/tokenizer.json", data);
    hone_tokenizer *tok;
    TEST_OK(hone_tokenizer_load(&tok, path));
    return tok;
}

static int valid_utf8(const char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t k = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (!k || i + k > n) return 0;
        for (size_t j = 1; j < k; j++)
            if (((unsigned char)s[i + j] >> 6) != 2) return 0;
        i += k;
    }
    return 1;
}

/* Characters split across byte-level tokens come out whole; the pieces add up to the decoded text. */
static void test_decode_stream_pieces_are_whole_characters(void **state) {
    (void)state;
    hone_tokenizer *tok = gpt2();
    if (!tok) skip();
    const char *text = "Stra\xc3\x9f" "e \xe4\xb8\x96\xe7\x95\x8c \xf0\x9f\x8e\x89 caf\xc3\xa9!";
    int32_t *ids;
    size_t n;
    TEST_OK(hone_tokenizer_encode(tok, text, strlen(text), 0, &ids, &n));
    hone_decode_stream *d;
    TEST_OK(hone_decode_stream_new(&d, tok));
    char joined[256] = "";
    size_t total = 0, held_back = 0;
    for (size_t i = 0; i < n; i++) {
        char *piece;
        size_t len;
        TEST_OK(hone_decode_stream_push(d, ids[i], &piece, &len));
        if (!len) held_back++;
        if (!valid_utf8(piece ? piece : "", len)) fail_msg("piece %zu is not valid UTF-8", i);
        memcpy(joined + total, piece ? piece : "", len);
        total += len;
        free(piece);
    }
    char *rest;
    size_t rest_len;
    TEST_OK(hone_decode_stream_flush(d, &rest, &rest_len));
    assert_int_equal(rest_len, 0);
    free(rest);
    joined[total] = 0;
    assert_string_equal(joined, text);
    assert_true(held_back > 0); /* the emoji and CJK characters span several GPT-2 tokens */
    hone_decode_stream_free(d);
    free(ids);
    hone_tokenizer_free(tok);
}

/* .txt is one document, JSONL rows are one each; EOS follows every document. */
static void test_text_files_become_token_streams(void **state) {
    (void)state;
    hone_tokenizer *tok = gpt2();
    if (!tok) skip();
    char *dir = test_tmpdir();
    const char *doc = "Hello world";
    char *txt = test_write_file(dir, "a.txt", doc, strlen(doc));
    const char *rows = "{\"text\": \"Hello world\"}\n\n{\"input_ids\": [1, 2]}\n{\"text\": \"Hello world\"}\n";
    char *jsonl = test_write_file(dir, "b.jsonl", rows, strlen(rows));
    hone_text_options opt = {tok, 50256};
    hone_token_stream s;
    TEST_OK(hone_tokens_load_text(&s, txt, 50257, &opt));
    assert_int_equal(s.n_tokens, 3);
    assert_int_equal(s.tokens[0], 15496);
    assert_int_equal(s.tokens[1], 995);
    assert_int_equal(s.tokens[2], 50256);
    hone_tokens_free(&s);
    TEST_OK(hone_tokens_load_text(&s, jsonl, 50257, &opt));
    const int32_t want[] = {15496, 995, 50256, 1, 2, 15496, 995, 50256};
    assert_int_equal(s.n_tokens, 8);
    assert_memory_equal(s.tokens, want, sizeof want);
    assert_int_equal(s.n_documents, 3);
    hone_tokens_free(&s);
    /* without a tokenizer, text is an error that says what to do */
    TEST_FAILS_WITH(hone_tokens_load_text(&s, jsonl, 50257, NULL), "b.jsonl:1: text needs a tokenizer");
    TEST_FAILS_WITH(hone_tokens_load(&s, txt, 50257), "a.txt: text needs a tokenizer");
    /* a tokenizer whose ids do not fit the model */
    TEST_FAILS_WITH(hone_tokens_load_text(&s, txt, 1000, &opt), "does not belong to this model");
    free(txt);
    free(jsonl);
    test_tmpdir_remove(dir);
    free(dir);
    hone_tokenizer_free(tok);
}

static size_t count_entries(const char *dir) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -c '\\.tokens$'", dir);
    FILE *p = popen(cmd, "r");
    size_t n = 0;
    if (p && fscanf(p, "%zu", &n) != 1) n = 0;
    if (p) pclose(p);
    return n;
}

/* The second load of the same text with the same tokenizer comes from the cache, with the same tokens; changing
 * the data, the tokenizer's files or the options misses; a damaged entry is rebuilt. */
static void test_token_cache(void **state) {
    (void)state;
    char *dir = test_tmpdir();
    char *cache = hone_path_join(dir, "cache");
    char *tok_path = test_write_byte_level_tokenizer(dir, NULL, 0);
    hone_tokenizer *tok;
    TEST_OK(hone_tokenizer_load(&tok, tok_path));
    const char *rows = "{\"text\": \"hi there\"}\n{\"input_ids\": [7, 8]}\n{\"text\": \"caf\\u00e9\"}\n";
    char *jsonl = test_write_file(dir, "d.jsonl", rows, strlen(rows));
    hone_text_options opt = {tok, 255};
    hone_token_stream plain, first, again;
    TEST_OK(hone_tokens_load_text(&plain, jsonl, 256, &opt));
    assert_int_equal(plain.n_tokens, 8 + 1 + 2 + 5 + 1);
    TEST_OK(hone_tokens_load_cached(&first, jsonl, 256, &opt, cache));
    assert_null(first.cache_mapping.data); /* a miss: tokenized, then stored */
    assert_int_equal(count_entries(cache), 1);
    TEST_OK(hone_tokens_load_cached(&again, jsonl, 256, &opt, cache));
    assert_non_null(again.cache_mapping.data);
    assert_int_equal(again.n_tokens, plain.n_tokens);
    assert_int_equal(again.n_documents, plain.n_documents);
    assert_memory_equal(again.tokens, plain.tokens, plain.n_tokens * sizeof(int32_t));
    assert_int_equal((uintptr_t)again.tokens % 64, 0);
    /* the cached ids are still checked against the model's vocabulary */
    hone_token_stream s;
    TEST_FAILS_WITH(hone_tokens_load_cached(&s, jsonl, 200, &opt, cache), "does not belong to this model");
    assert_null(s.tokens);
    hone_tokens_free(&again);
    hone_tokens_free(&first);

    /* other options, other data, other tokenizer files: new entries */
    hone_text_options no_eos = {tok, -1};
    TEST_OK(hone_tokens_load_cached(&s, jsonl, 256, &no_eos, cache));
    assert_int_equal(s.n_tokens, plain.n_tokens - 2);
    hone_tokens_free(&s);
    assert_int_equal(count_entries(cache), 2);
    const char *rows2 = "{\"text\": \"hi there!\"}\n";
    free(test_write_file(dir, "d.jsonl", rows2, strlen(rows2)));
    TEST_OK(hone_tokens_load_cached(&s, jsonl, 256, &opt, cache));
    assert_null(s.cache_mapping.data);
    assert_int_equal(s.n_tokens, 10);
    hone_tokens_free(&s);
    assert_int_equal(count_entries(cache), 3);
    free(test_write_file(dir, "tokenizer_config.json", "{}", 2));
    TEST_OK(hone_tokens_load_cached(&s, jsonl, 256, &opt, cache));
    assert_null(s.cache_mapping.data);
    hone_tokens_free(&s);
    assert_int_equal(count_entries(cache), 4);

    /* damage every entry: each is reported, ignored and rewritten */
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "for f in '%s'/*.tokens; do head -c 100 \"$f\" > \"$f.x\" && mv \"$f.x\" \"$f\"; done",
             cache);
    assert_int_equal(system(cmd), 0);
    TEST_OK(hone_tokens_load_cached(&s, jsonl, 256, &opt, cache));
    assert_null(s.cache_mapping.data);
    hone_tokens_free(&s);
    TEST_OK(hone_tokens_load_cached(&s, jsonl, 256, &opt, cache));
    assert_non_null(s.cache_mapping.data);
    assert_int_equal(s.n_tokens, 10);
    hone_tokens_free(&s);

    /* an unwritable cache folder costs time, not correctness */
    TEST_OK(hone_tokens_load_cached(&s, jsonl, 256, &opt, "/proc/hone-no-such-dir"));
    assert_int_equal(s.n_tokens, 10);
    hone_tokens_free(&s);

    hone_tokens_free(&plain);
    hone_tokenizer_free(tok);
    free(jsonl);
    free(tok_path);
    free(cache);
    test_tmpdir_remove(dir);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_stream_pieces_are_whole_characters),
        cmocka_unit_test(test_text_files_become_token_streams),
        cmocka_unit_test(test_token_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
