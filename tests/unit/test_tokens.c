/* data: token streams from llm.c shards and JSONL input_ids rows. */
#include <stdlib.h>
#include <string.h>

#include "hone/data.h"
#include "testutil.h"

/* An llm.c header: magic, version, count, then zeros. */
static void make_header(uint8_t h[1024], int32_t magic, int32_t version, int32_t count) {
    memset(h, 0, 1024);
    const int32_t v[3] = {magic, version, count};
    for (int k = 0; k < 3; k++)
        for (int b = 0; b < 4; b++) h[4 * k + b] = (uint8_t)((uint32_t)v[k] >> (8 * b));
}

/* A shard whose header says `count` tokens followed by `payload` bytes of uint16 ids 1, 2, 3, … */
static char *write_u16_shard(const char *dir, const char *name, int32_t magic, int32_t version, int32_t count,
                             size_t payload) {
    uint8_t *buf = calloc(1, 1024 + payload);
    make_header(buf, magic, version, count);
    for (size_t i = 0; i < payload; i++) buf[1024 + i] = i % 2 ? 0 : (uint8_t)(i / 2 + 1);
    char *path = test_write_file(dir, name, buf, 1024 + payload);
    free(buf);
    return path;
}

static void test_shard_round_trip_both_versions(void **state) {
    (void)state;
    char *dir = test_tmpdir();
    char *path = hone_path_join(dir, "a.bin");
    const int32_t narrow[] = {0, 1, 50256, 65535, 7};
    TEST_OK(hone_tokens_write_shard(path, narrow, 5));
    hone_mapped_file f;
    TEST_OK(hone_file_map(&f, path));
    assert_int_equal(f.size, 1024 + 5 * 2); /* every id < 65536: version 1, uint16 */
    assert_int_equal(f.data[0] | f.data[1] << 8 | f.data[2] << 16 | f.data[3] << 24, 20240520);
    assert_int_equal(f.data[4], 1);
    hone_file_unmap(&f);
    hone_token_stream s;
    TEST_OK(hone_tokens_load(&s, path, 65536));
    assert_int_equal(s.n_tokens, 5);
    assert_int_equal(s.n_documents, 1);
    assert_memory_equal(s.tokens, narrow, sizeof narrow);
    hone_tokens_free(&s);

    const int32_t wide[] = {3, 65536, 128255, 0};
    TEST_OK(hone_tokens_write_shard(path, wide, 4));
    TEST_OK(hone_file_map(&f, path));
    assert_int_equal(f.size, 1024 + 4 * 4); /* an id >= 65536: version 7, uint32 */
    assert_int_equal(f.data[0] | f.data[1] << 8 | f.data[2] << 16 | f.data[3] << 24, 20240801);
    assert_int_equal(f.data[4], 7);
    hone_file_unmap(&f);
    TEST_OK(hone_tokens_load(&s, path, 128256));
    assert_int_equal(s.n_tokens, 4);
    assert_memory_equal(s.tokens, wide, sizeof wide);
    hone_tokens_free(&s);

    TEST_OK(hone_tokens_write_shard(path, NULL, 0));
    TEST_OK(hone_tokens_load(&s, path, 0));
    assert_int_equal(s.n_tokens, 0);
    hone_tokens_free(&s);
    TEST_FAILS_WITH(hone_tokens_write_shard(path, (int32_t[]){1, -2}, 2), "token 1 has negative id -2");

    free(path);
    test_tmpdir_remove(dir);
    free(dir);
}

static void test_bad_shards(void **state) {
    (void)state;
    char *dir = test_tmpdir();
    hone_token_stream s;
    char *p = write_u16_shard(dir, "magic.bin", 12345, 1, 2, 4);
    TEST_FAILS_WITH(hone_tokens_load(&s, p, 0), "magic.bin: bad magic 12345");
    free(p);
    p = write_u16_shard(dir, "version.bin", 20240520, 7, 2, 4);
    TEST_FAILS_WITH(hone_tokens_load(&s, p, 0), "unsupported llm.c shard version 7 for magic 20240520");
    free(p);
    p = write_u16_shard(dir, "short.bin", 20240520, 1, 10, 8);
    TEST_FAILS_WITH(hone_tokens_load(&s, p, 0), "short.bin: truncated: header says 10 tokens, file holds 4");
    free(p);
    p = write_u16_shard(dir, "long.bin", 20240520, 1, 2, 7);
    TEST_FAILS_WITH(hone_tokens_load(&s, p, 0), "long.bin: 3 trailing bytes after the 2 tokens");
    free(p);
    p = test_write_file(dir, "tiny.bin", "abc", 3);
    TEST_FAILS_WITH(hone_tokens_load(&s, p, 0), "tiny.bin: truncated: 3 bytes");
    free(p);
    p = write_u16_shard(dir, "vocab.bin", 20240520, 1, 4, 8); /* ids 1, 2, 3, 4 */
    TEST_FAILS_WITH(hone_tokens_load(&s, p, 3),
                    "vocab.bin: token id 3 at position 2 is outside the vocabulary (size 3)");
    TEST_OK(hone_tokens_load(&s, p, 5));
    assert_memory_equal(s.tokens, ((int32_t[]){1, 2, 3, 4}), 4 * sizeof(int32_t));
    hone_tokens_free(&s);
    free(p);
    TEST_FAILS_WITH(hone_tokens_load(&s, "/nonexistent/x.bin", 0), "/nonexistent/x.bin: cannot open");
    test_tmpdir_remove(dir);
    free(dir);
}

static void test_jsonl_rows_and_blank_lines(void **state) {
    (void)state;
    char *dir = test_tmpdir();
    const char *text = "{\"input_ids\": [1, 2, 3], \"text\": \"abc\"}\n"
                       "\n"
                       "   \r\n"
                       "{\"input_ids\": []}\r\n"
                       "{\"labels\": [9], \"input_ids\": [4, 50256]}"; /* no final newline */
    char *p = test_write_file(dir, "rows.jsonl", text, strlen(text));
    hone_token_stream s;
    TEST_OK(hone_tokens_load(&s, p, 50257));
    assert_int_equal(s.n_documents, 3);
    assert_int_equal(s.n_tokens, 5);
    assert_memory_equal(s.tokens, ((int32_t[]){1, 2, 3, 4, 50256}), 5 * sizeof(int32_t));
    hone_tokens_free(&s);
    free(p);

    p = test_write_file(dir, "empty.json", "", 0);
    TEST_OK(hone_tokens_load(&s, p, 0));
    assert_int_equal(s.n_documents, 0);
    assert_int_equal(s.n_tokens, 0);
    hone_tokens_free(&s);
    free(p);
    test_tmpdir_remove(dir);
    free(dir);
}

/* The second row of a three-row file is `bad`; loading must fail with `needle`. */
static void check_bad_row(const char *dir, const char *bad, int vocab_size, const char *needle) {
    char text[512];
    snprintf(text, sizeof text, "{\"input_ids\": [1]}\n%s\n{\"input_ids\": [2]}\n", bad);
    char *p = test_write_file(dir, "bad.jsonl", text, strlen(text));
    hone_token_stream s;
    TEST_FAILS_WITH(hone_tokens_load(&s, p, vocab_size), needle);
    assert_null(s.tokens);
    free(p);
}

static void test_jsonl_errors_name_the_line(void **state) {
    (void)state;
    char *dir = test_tmpdir();
    check_bad_row(dir, "{\"input_ids\": [1, 2", 0, "bad.jsonl:2: invalid JSON at column");
    check_bad_row(dir, "{\"input_ids\": [1]} {}", 0, "bad.jsonl:2: invalid JSON");
    check_bad_row(dir, "[1, 2, 3]", 0, "bad.jsonl:2: expected a JSON object with \"input_ids\"");
    check_bad_row(dir, "{\"ids\": [1, 2]}", 0, "bad.jsonl:2: missing \"input_ids\"");
    check_bad_row(dir, "{\"input_ids\": \"1 2\"}", 0, "bad.jsonl:2: \"input_ids\" is not an array");
    check_bad_row(dir, "{\"input_ids\": [1, 2.5]}", 0, "bad.jsonl:2: input_ids[1] is not an integer: 2.5");
    check_bad_row(dir, "{\"input_ids\": [1, \"7\"]}", 0, "bad.jsonl:2: input_ids[1] is not an integer: \"7\"");
    check_bad_row(dir, "{\"input_ids\": [3, -5]}", 0, "bad.jsonl:2: input_ids[1] = -5 is negative");
    check_bad_row(dir, "{\"input_ids\": [70000]}", 50257,
                  "bad.jsonl:2: token id 70000 is outside the vocabulary (size 50257)");
    check_bad_row(dir, "{\"input_ids\": [4294967296]}", 0, "bad.jsonl:2: token id 4294967296 is too large");
    check_bad_row(dir, "{\"input_ids\": [1], \"input_ids\": [2]}", 0, "bad.jsonl:2: invalid JSON");
    test_tmpdir_remove(dir);
    free(dir);
}

static void test_unknown_extension(void **state) {
    (void)state;
    hone_token_stream s;
    TEST_FAILS_WITH(hone_tokens_load(&s, "data/tokens.csv", 0), "data/tokens.csv: unknown token file format");
    TEST_FAILS_WITH(hone_tokens_load(&s, "data/tokens.csv", 0), ".bin llm.c shards, .txt text, or .jsonl/.json");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shard_round_trip_both_versions),
        cmocka_unit_test(test_bad_shards),
        cmocka_unit_test(test_jsonl_rows_and_blank_lines),
        cmocka_unit_test(test_jsonl_errors_name_the_line),
        cmocka_unit_test(test_unknown_extension),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
