/* Tokenizer on real third-party files of ../shared/data:
 *   - torchtune's tiny_bpe_tokenizer.json (Qwen2 style: NFC + Split + ByteLevel without regex) against the ids
 *     torchtune's own tests expect (tests/torchtune/models/qwen2/test_qwen2_tokenizer.py and
 *     qwen2_5/test_tokenizer.py at pytorch/torchtune bd2a0fc7), and decode(encode(x)) == x over the corpora;
 *   - the GPT-2 folder loaded from vocab.json + merges.txt (transformers' GPT2TokenizerFast) against the same
 *     folder's tokenizer.json: identical ids on every corpus;
 *   - a model folder with only vocab.json + merges.txt (tiny_gpt2) tokenizing text data for the model. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hone/data.h"
#include "hone/model.h"
#include "hone/tokenizer.h"
#include "testutil.h"

static hone_tokenizer *load_shared(const char *rel) {
    const char *data = test_shared_data();
    if (!data) return NULL;
    char *path = hone_path_join(data, rel);
    hone_tokenizer *tok;
    TEST_OK(hone_tokenizer_load(&tok, path));
    free(path);
    return tok;
}

/* Appends the ids of text (no special tokens) to out[*n..]. */
static void append_text(const hone_tokenizer *tok, const char *text, int32_t *out, size_t *n, size_t cap) {
    int32_t *ids;
    size_t k;
    TEST_OK(hone_tokenizer_encode(tok, text, strlen(text), 0, &ids, &k));
    if (*n + k > cap) {
        fail_msg("more ids than expected");
    } else {
        memcpy(out + *n, ids, k * sizeof *ids);
        *n += k;
    }
    free(ids);
}

static void append_id(int32_t id, int32_t *out, size_t *n, size_t cap) {
    if (*n < cap)
        out[(*n)++] = id;
    else
        fail_msg("more ids than expected");
}

static void expect_same(const int32_t *got, size_t n, const int32_t *want, size_t n_want, const char *what) {
    if (n != n_want) fail_msg("%s: %zu ids, expected %zu", what, n, n_want);
    for (size_t i = 0; i < n; i++)
        if (got[i] != want[i]) fail_msg("%s: ids[%zu] = %d, expected %d", what, i, got[i], want[i]);
}

/* torchtune's Qwen2Tokenizer.tokenize_messages encodes each piece of ChatML on its own: <|im_start|>, then the
 * role and "\n", the content, <|im_end|> and "\n" (the last assistant message ends with the eos <|im_end|>). */
static void test_torchtune_qwen2(void **s) {
    (void)s;
    hone_tokenizer *tok = load_shared("tokenizers/bpe-train/tiny_bpe_tokenizer.json");
    if (!tok) skip();
    const int32_t im_start = 2001, im_end = 2002;
    assert_int_equal(hone_tokenizer_token_to_id(tok, "<|im_start|>"), im_start);
    assert_int_equal(hone_tokenizer_token_to_id(tok, "<|im_end|>"), im_end);
    static const int32_t want[] = {
        2001, 273, 105, 94,   33,   214,  174,  156,  194,  130,  197,  184,  446, 789,  113,  98,   1914, 13,   346,
        788,  98,  706, 102,  182,  184,  1916, 176,  762,  83,   113,  103,  874, 269,  13,   94,   94,   2,    2,
        2,    483, 197, 25,   94,   885,  98,   1226, 1960, 348,  114,  1123, 399, 1583, 78,   13,   94,   94,   2,
        2,    2,   360, 1733, 102,  182,  25,   94,   2002, 94,   2001, 397,  251, 249,  94,   40,   1791, 194,  453,
        70,   78,  114, 120,  967,  176,  618,  628,  1275, 794,  294,  1095, 445, 212,  1356, 120,  1299, 13,   223,
        1791, 451, 98,  127,  181,  1047, 375,  915,  380,  120,  1448, 1732, 114, 453,  447,  1219, 64,   187,  921,
        120,  742, 107, 84,   122,  893,  13,   223,  1791, 98,   127,  181,  123, 124,  131,  103,  744,  82,   120,
        1506, 416, 114, 128,  1429, 182,  253,  82,   120,  163,  330,  105,  262, 13,   223,  1791, 155,  1551, 171,
        1951, 628, 296, 64,   237,  886,  1390, 130,  883,  1678, 447,  306,  279, 113,  11,   215,  785,  215,  1951,
        628,  378, 101, 66,   72,   593,  98,   984,  208,  1580, 167,  510,  737, 318,  1278, 13,   2002};
    int32_t got[256];
    size_t n = 0, cap = 256;
    append_id(im_start, got, &n, cap);
    append_text(tok, "user\n", got, &n, cap);
    append_text(tok,
                "Below is an instruction that describes a task. Write a response that appropriately completes the "
                "request.\n\n### Instruction:\nGenerate a realistic dating profile bio.\n\n### Response:\n",
                got, &n, cap);
    append_id(im_end, got, &n, cap);
    append_text(tok, "\n", got, &n, cap);
    append_id(im_start, got, &n, cap);
    append_text(tok, "assistant\n", got, &n, cap);
    append_text(tok,
                "I'm an outgoing and friendly person who loves spending time with friends and family. I'm also a "
                "big-time foodie and love trying out new restaurants and different cuisines. I'm a big fan of the arts "
                "and enjoy going to museums and galleries. I'm looking for someone who shares my interest in exploring "
                "new places, as well as someone who appreciates a good conversation over coffee.",
                got, &n, cap);
    append_id(im_end, got, &n, cap);
    expect_same(got, n, want, sizeof want / sizeof *want, "qwen2 test_tokenize_messages");
    char *text;
    size_t len;
    TEST_OK(hone_tokenizer_decode(tok, got, n, 0, &text, &len));
    assert_non_null(strstr(text, "<|im_start|>assistant\nI'm an outgoing"));
    free(text);

    /* qwen2_5/test_tokenizer.py: the text pieces of its ChatML turns (its special ids are Qwen2.5's own) */
    static const struct {
        const char *text;
        int32_t ids[32];
        size_t n;
    } pieces[] = {
        {"system\n", {82, 88, 479, 94}, 4},
        {"You are a helpful assistant.", {56, 119, 230, 98, 374, 494, 1318, 249, 13}, 9},
        {"Give me a short introduction to LLMs.",
         {38, 229, 362, 98, 1695, 310, 1305, 165, 128, 432, 43, 44, 82, 13},
         14},
        {"\ntest call\n", {94, 83, 269, 107, 330, 94}, 6},
        {"<tool_response>\ntest response\n</tool_response>",
         {27,  83,  1364, 62,   237, 79,   102, 182, 29, 94,  83,  269, 706,
          102, 182, 94,   1932, 83,  1364, 62,  237, 79, 102, 182, 29},
         25},
        {"a", {64}, 1},
        {"b", {65}, 1},
    };
    for (size_t i = 0; i < sizeof pieces / sizeof *pieces; i++) {
        n = 0;
        append_text(tok, pieces[i].text, got, &n, cap);
        expect_same(got, n, pieces[i].ids, pieces[i].n, pieces[i].text);
    }
    /* the example of Qwen2Tokenizer's docstring, "Hello world!" */
    n = 0;
    append_text(tok, "Hello world!", got, &n, cap);
    expect_same(got, n, (int32_t[]){39, 385, 78, 675, 0}, 5, "Hello world!");
    hone_tokenizer_free(tok);
}

/* GPT-2's byte → character table, written independently of the library (as in test_tokenizer.c). */
static void byte_char(int b, char out[3]) {
    int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE, extra = 0;
    for (int i = 0; i < b; i++) extra += !((i >= '!' && i <= '~') || (i >= 0xA1 && i <= 0xAC) || i >= 0xAE);
    int cp = printable ? b : 256 + extra;
    out[0] = cp < 0x80 ? (char)cp : (char)(0xC0 | cp >> 6);
    out[1] = cp < 0x80 ? 0 : (char)(0x80 | (cp & 0x3F));
    out[2] = 0;
}

/* decode(encode(x)) == x over the corpora wherever the tiny vocabulary can represent the text: it lacks all the
 * non-ASCII bytes and most controls (even "\r"), so each corpus is cut into maximal runs of bytes it has, which
 * must round-trip, and runs of bytes it lacks, which must be refused (never silently changed). All of
 * tinyshakespeare, which it covers, is also done in one piece and timed. */
static void test_tiny_bpe_round_trips(void **s) {
    (void)s;
    hone_tokenizer *tok = load_shared("tokenizers/bpe-train/tiny_bpe_tokenizer.json");
    if (!tok) skip();
    int has_byte[256];
    for (int b = 0; b < 256; b++) {
        char c[3];
        byte_char(b, c);
        has_byte[b] = hone_tokenizer_token_to_id(tok, c) >= 0;
    }
    const char *names[] = {"tinyshakespeare.txt", "botchan.txt", "war-and-peace.txt", "wiki_demo.txt",
                           "c4_demo_300.jsonl"};
    for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
        char rel[128];
        snprintf(rel, sizeof rel, "corpora/%s", names[k]);
        char *path = hone_path_join(test_shared_data(), rel), *text;
        size_t len, covered = 0, runs = 0;
        TEST_OK(hone_file_read(path, &text, &len));
        for (size_t a = 0; a < len;) {
            int ok = has_byte[(uint8_t)text[a]];
            size_t b = a;
            while (b < len && has_byte[(uint8_t)text[b]] == ok) b++;
            int32_t *ids;
            size_t n;
            if (!ok) {
                TEST_FAILS_WITH(hone_tokenizer_encode(tok, text + a, b - a, 0, &ids, &n), "has no token");
            } else {
                TEST_OK(hone_tokenizer_encode(tok, text + a, b - a, 0, &ids, &n));
                char *back;
                size_t back_len;
                TEST_OK(hone_tokenizer_decode(tok, ids, n, 0, &back, &back_len));
                if (back_len != b - a || memcmp(back, text + a, back_len))
                    fail_msg("%s: decode(encode(x)) != x for the %zu bytes at %zu", names[k], b - a, a);
                free(back);
                free(ids);
                covered += b - a;
                runs++;
            }
            a = b;
        }
        fprintf(stderr, "tiny_bpe: %s: %zu of %zu bytes round-trip (%zu runs)\n", names[k], covered, len, runs);
        assert_true(covered > len * 9 / 10);
        if (k == 0) {
            assert_int_equal(covered, len);
            int32_t *ids;
            size_t n;
            char *back;
            size_t back_len;
            double t0 = hone_now_seconds();
            TEST_OK(hone_tokenizer_encode(tok, text, len, 0, &ids, &n));
            double t1 = hone_now_seconds();
            TEST_OK(hone_tokenizer_decode(tok, ids, n, 0, &back, &back_len));
            if (back_len != len || memcmp(back, text, len)) fail_msg("tinyshakespeare: decode(encode(x)) != x");
            fprintf(stderr, "tiny_bpe: tinyshakespeare: %zu bytes -> %zu ids, encode %.1f MB/s (one thread)\n", len, n,
                    len / 1e6 / (t1 - t0));
            free(back);
            free(ids);
        }
        free(text);
        free(path);
    }
    hone_tokenizer_free(tok);
}

/* The GPT-2 folder without its tokenizer.json: vocab.json + merges.txt + the configuration files, linked into a
 * temporary folder. */
static void test_gpt2_vocab_merges(void **s) {
    (void)s;
    const char *data = test_shared_data();
    if (!data) skip();
    char *src = hone_path_join(data, "tokenizers/gpt2"), *dir = test_tmpdir(), *real = realpath(src, NULL);
    const char *files[] = {"vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"};
    for (int i = 0; i < 4; i++) {
        char *from = hone_path_join(real, files[i]), *to = hone_path_join(dir, files[i]);
        if (symlink(from, to)) fail_msg("symlink %s", to);
        free(from);
        free(to);
    }
    hone_tokenizer *files_tok, *json_tok;
    TEST_OK(hone_tokenizer_load(&files_tok, dir));
    TEST_OK(hone_tokenizer_load(&json_tok, src));
    assert_int_equal(hone_tokenizer_vocab_size(files_tok), hone_tokenizer_vocab_size(json_tok));
    const hone_special_tokens *a = hone_tokenizer_special(files_tok), *b = hone_tokenizer_special(json_tok);
    assert_string_equal(a->eos_token, "<|endoftext|>");
    assert_int_equal(a->eos_id, 50256);
    assert_int_equal(a->bos_id, b->bos_id);
    assert_int_equal(a->unk_id, b->unk_id);
    assert_int_equal(a->pad_id, -1);
    const char *names[] = {"botchan.txt", "tinyshakespeare.txt", "war-and-peace.txt", "wiki_demo.txt",
                           "c4_demo_300.jsonl"};
    size_t total = 0;
    for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
        char rel[128];
        snprintf(rel, sizeof rel, "corpora/%s", names[k]);
        char *path = hone_path_join(data, rel), *text;
        size_t len;
        TEST_OK(hone_file_read(path, &text, &len));
        int32_t *x, *y;
        size_t nx, ny;
        TEST_OK(hone_tokenizer_encode(files_tok, text, len, 1, &x, &nx));
        TEST_OK(hone_tokenizer_encode(json_tok, text, len, 1, &y, &ny));
        expect_same(x, nx, y, ny, names[k]);
        total += nx;
        free(x);
        free(y);
        free(text);
        free(path);
    }
    fprintf(stderr, "gpt2: vocab.json + merges.txt and tokenizer.json agree on %zu ids of 5 corpora\n", total);
    hone_tokenizer_free(files_tok);
    hone_tokenizer_free(json_tok);
    test_tmpdir_remove(dir);
    free(dir);
    free(real);
    free(src);
}

/* A model folder with vocab.json + merges.txt and no tokenizer.json (lm-buddy's tiny_gpt2): text data is
 * tokenized with it and each document ends with its eos. */
static void test_model_folder_vocab_merges(void **s) {
    (void)s;
    const char *data = test_shared_data();
    if (!data) skip();
    char *dir = hone_path_join(data, "models/tiny_gpt2"), *tmp = test_tmpdir();
    char *text = test_write_file(tmp, "doc.txt", "lower newer", 11);
    hone_model *m;
    TEST_OK(hone_model_load(&m, dir));
    hone_tokenizer *tok;
    TEST_OK(hone_model_tokenizer(&tok, m, NULL));
    assert_non_null(tok);
    assert_int_equal(hone_tokenizer_special(tok)->eos_id, 20);
    hone_tokenizer_free(tok);
    hone_token_stream stream;
    TEST_OK(hone_tokens_load_for_model(&stream, text, m, NULL, NULL, NULL));
    static const int32_t want[] = {0, 1, 2, 15, 10, 9, 3, 2, 15, 20};
    expect_same(stream.tokens, stream.n_tokens, want, 10, "tiny_gpt2 text");
    hone_tokens_free(&stream);
    hone_model_free(m);
    free(text);
    test_tmpdir_remove(tmp);
    free(tmp);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_torchtune_qwen2),
        cmocka_unit_test(test_tiny_bpe_round_trips),
        cmocka_unit_test(test_gpt2_vocab_merges),
        cmocka_unit_test(test_model_folder_vocab_merges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
