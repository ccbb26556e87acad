/* The GPT-2 pre-tokenizer's ASCII fast path (src/tokenizer/byte_level.c) against its definition, the GPT-2 regex
 * run by PCRE2: the same words on every corpus in ../shared/data/corpora, on hand-picked edge cases and on
 * random strings that mix ASCII with non-ASCII letters, digits and spaces. */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "tokenizer/tokenizer_internal.h"

static hone_tokenizer *byte_level_tokenizer(const char *dir) {
    char *path = test_write_byte_level_tokenizer(dir, NULL, 0);
    hone_tokenizer *tok;
    TEST_OK(hone_tokenizer_load(&tok, path));
    free(path);
    return tok;
}

typedef struct {
    size_t *start;
    size_t n, cap;
    const uint8_t *base;
} word_list;

static hone_status collect(void *ctx, const uint8_t *w, size_t n) {
    word_list *l = ctx;
    if (l->n + 2 > l->cap) {
        l->cap = l->cap ? 2 * l->cap : 1024;
        l->start = realloc(l->start, l->cap * sizeof *l->start);
    }
    l->start[l->n++] = (size_t)(w - l->base);
    l->start[l->n++] = (size_t)(w - l->base) + n;
    return HONE_OK;
}

/* Fails with the first differing word when the two paths split text differently. */
static void check_same_split(const hone_tokenizer *tok, pcre2_match_data *md, const char *text, size_t n,
                             const char *what) {
    word_list fast = {.base = (const uint8_t *)text}, ref = {.base = (const uint8_t *)text};
    TEST_OK(tok_byte_level_split(tok, md, (const uint8_t *)text, n, collect, &fast));
    TEST_OK(tok_byte_level_split_pcre2(tok, md, (const uint8_t *)text, n, collect, &ref));
    for (size_t i = 0; i < fast.n && i < ref.n; i += 2)
        if (fast.start[i] != ref.start[i] || fast.start[i + 1] != ref.start[i + 1])
            fail_msg("%s: word %zu differs: fast path \"%.*s\", PCRE2 \"%.*s\"", what, i / 2,
                     (int)(fast.start[i + 1] - fast.start[i]), text + fast.start[i],
                     (int)(ref.start[i + 1] - ref.start[i]), text + ref.start[i]);
    assert_int_equal(fast.n, ref.n);
    free(fast.start);
    free(ref.start);
}

static void test_fast_path_equals_pcre2(void **state) {
    (void)state;
    char *dir = test_tmpdir();
    hone_tokenizer *tok = byte_level_tokenizer(dir);
    pcre2_match_data *md = pcre2_match_data_create(8, NULL);
    static const char *const cases[] = {
        "", " ", "  ", "\n", "\n\n", " \n", "\n ", "Hello world", "  Hello", "a\n\n b", "x  \t\n y", "trailing  ",
        "'s 'S 're 'll 'd 've 'm 't 'x", "can't won't I'm you're", "'", "''", "' ", "'\n", "'é", "'sé",
        "1,000.50 and 42nd", "a1b2", " 123", "  123", "...!?", " ...", "a...b", "tab\tsep", "\r\n", " \r\n x",
        "café", "caf é", "é", " é", "aé", "a é", "日本語 text", "text 日本語", "1２3", " Ⅻ", "emoji 😀 here",
        "a\u00a0b", "a \u00a0b", "\u00a0 a", "x\u2003 y", "x \u2028y", "line\xc2\x85next", "mixed 'é 'sé",
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        check_same_split(tok, md, cases[i], strlen(cases[i]), cases[i]);

    /* random strings over an alphabet chosen to hit every branch */
    static const char *const alphabet[] = {" ",  " ",  "\t", "\n", "a", "Z", "0",  "'",  "s",  "r", "e", "l",
                                           ".",  ",",  "é",  "日", "\u00a0", "\u2028", "１", "Ⅻ", "😀", "\r"};
    hone_rng rng = hone_rng_new(7, 0);
    char buf[256];
    for (int trial = 0; trial < 20000; trial++) {
        size_t len = 0, parts = hone_rng_u64(&rng) % 24;
        for (size_t p = 0; p < parts; p++) {
            const char *piece = alphabet[hone_rng_u64(&rng) % (sizeof alphabet / sizeof *alphabet)];
            memcpy(buf + len, piece, strlen(piece));
            len += strlen(piece);
        }
        buf[len] = 0;
        check_same_split(tok, md, buf, len, buf);
    }

    /* whole corpora */
    const char *data = test_shared_data();
    if (data) {
        static const char *const corpora[] = {"botchan.txt", "tinyshakespeare.txt", "war-and-peace.txt",
                                              "wiki_demo.txt", "c4_demo_300.jsonl"};
        for (size_t i = 0; i < sizeof corpora / sizeof *corpora; i++) {
            char path[512];
            snprintf(path, sizeof path, "%s/corpora/%s", data, corpora[i]);
            char *text;
            size_t n;
            TEST_OK(hone_file_read(path, &text, &n));
            check_same_split(tok, md, text, n, corpora[i]);
            free(text);
        }
    } else {
        printf("../shared/data is absent: corpora not compared\n");
    }
    pcre2_match_data_free(md);
    hone_tokenizer_free(tok);
    test_tmpdir_remove(dir);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fast_path_equals_pcre2),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
