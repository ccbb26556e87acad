/* Text everywhere: streaming decode, and text files / JSONL {"text"} rows as token streams. Uses the real GPT-2
 * tokenizer from ../shared/data (skipped when absent) and a tiny tokenizer.json written here. */
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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_stream_pieces_are_whole_characters),
        cmocka_unit_test(test_text_files_become_token_streams),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
