/* io/safetensors: round trips, the exact on-disk layout, every malformed-file error, sharded checkpoints and
 * files written by Hugging Face. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "hone/safetensors.h"

/* A hand-made file: the header's length (8 bytes, little-endian), the header text, then data_len bytes
 * counting up from 0. */
static char *write_raw(const char *dir, const char *name, const char *header, size_t data_len) {
    size_t hlen = strlen(header);
    uint8_t *buf = malloc(8 + hlen + data_len);
    uint64_t n = hlen;
    memcpy(buf, &n, 8);
    memcpy(buf + 8, header, hlen);
    for (size_t i = 0; i < data_len; i++) buf[8 + hlen + i] = (uint8_t)i;
    char *path = test_write_file(dir, name, buf, 8 + hlen + data_len);
    free(buf);
    return path;
}

static void assert_shape(const hone_st_tensor *t, int ndim, const int64_t *shape) {
    assert_non_null(t);
    assert_int_equal(t->ndim, ndim);
    for (int i = 0; i < ndim; i++) assert_int_equal(t->shape[i], shape[i]);
}

static void test_round_trip_f32_f16_bf16(void **state) {
    (void)state;
    char *dir = test_tmpdir();
    char *path = hone_path_join(dir, "m.safetensors");
    const float a[6] = {1.5f, -2.25f, 0.0f, 3e-8f, 65504.0f, -1e30f};
    const uint16_t h[5] = {0x3c00, 0x7c00, 0x0001, 0xc000, 0x8000}; /* 1, inf, 2^-24, -2, -0 */
    const uint16_t b[3] = {0x3f80, 0xc040, 0x0001};                 /* 1, -3, 2^-133 */
    const float scalar = 7.0f;
    const hone_st_entry entries[] = {
        {.name = "layer.a", .dtype = HONE_DTYPE_F32, .ndim = 2, .shape = {2, 3}, .data = a},
        {.name = "half", .dtype = HONE_DTYPE_F16, .ndim = 1, .shape = {5}, .data = h},
        {.name = "brain", .dtype = HONE_DTYPE_BF16, .ndim = 3, .shape = {1, 3, 1}, .data = b},
        {.name = "empty", .dtype = HONE_DTYPE_F32, .ndim = 2, .shape = {0, 4}, .data = NULL},
        {.name = "scalar", .dtype = HONE_DTYPE_F32, .ndim = 0, .data = &scalar},
    };
    TEST_OK(hone_st_write(path, entries, 5));

    hone_st_file f;
    TEST_OK(hone_st_open(&f, path));
    assert_int_equal(f.n_tensors, 5);
    for (size_t i = 0; i < 5; i++) assert_string_equal(f.tensors[i].name, entries[i].name); /* order kept */
    assert_string_equal(f.metadata_json, "{\"format\":\"pt\"}");
    float out[6];

    const hone_st_tensor *t = hone_st_find(&f, "layer.a");
    assert_shape(t, 2, (int64_t[]){2, 3});
    assert_int_equal(t->dtype, HONE_DTYPE_F32);
    assert_int_equal(t->numel, 6);
    assert_int_equal(t->nbytes, 24);
    assert_string_equal(t->file_path, path);
    TEST_OK(hone_st_tensor_to_f32(t, out));
    test_assert_close(out, a, 6, 0, 0, "F32");

    t = hone_st_find(&f, "half");
    assert_shape(t, 1, (int64_t[]){5});
    TEST_OK(hone_st_tensor_to_f32(t, out));
    assert_true(out[0] == 1.0f);
    assert_true(isinf(out[1]) && out[1] > 0);
    assert_true(out[2] == 0x1p-24f);
    assert_true(out[3] == -2.0f);
    assert_true(out[4] == 0.0f && signbit(out[4]));

    t = hone_st_find(&f, "brain");
    assert_shape(t, 3, (int64_t[]){1, 3, 1});
    TEST_OK(hone_st_tensor_to_f32(t, out));
    assert_true(out[0] == 1.0f && out[1] == -3.0f && out[2] == 0x1p-133f);

    t = hone_st_find(&f, "empty");
    assert_shape(t, 2, (int64_t[]){0, 4});
    assert_int_equal(t->numel, 0);
    assert_int_equal(t->nbytes, 0);
    TEST_OK(hone_st_tensor_to_f32(t, out));

    t = hone_st_find(&f, "scalar");
    assert_shape(t, 0, NULL);
    assert_int_equal(t->numel, 1);
    TEST_OK(hone_st_tensor_to_f32(t, out));
    assert_true(out[0] == 7.0f);

    assert_null(hone_st_find(&f, "absent"));
    /* Contiguous spans in the given order, starting 8-byte aligned after the header. */
    const uint8_t *base = f.tensors[0].data;
    assert_true((base - f.file.data) % 8 == 0);
    assert_ptr_equal(f.tensors[1].data, base + 24);
    assert_ptr_equal(f.tensors[2].data, base + 34);
    assert_ptr_equal(f.tensors[4].data, base + 40);
    assert_int_equal(f.file.size, (size_t)(base - f.file.data) + 44);
    hone_st_close(&f);
    free(path);
    test_tmpdir_remove(dir);
    free(dir);
}

/* The bytes follow the format exactly: u64 LE length, compact JSON with the metadata first, space padding to a
 * multiple of 8, then the data. */
static void test_written_layout(void **state) {
    (void)state;
    char *dir = test_tmpdir();
    char *path = hone_path_join(dir, "m.safetensors");
    const float w[3] = {1, 2, 3};
    const uint16_t v = 0x3f80;
    const hone_st_entry entries[] = {
        {.name = "w", .dtype = HONE_DTYPE_F32, .ndim = 1, .shape = {3}, .data = w},
        {.name = "v", .dtype = HONE_DTYPE_BF16, .ndim = 2, .shape = {1, 1}, .data = &v},
    };
    TEST_OK(hone_st_write(path, entries, 2));
    char *bytes;
    size_t size;
    TEST_OK(hone_file_read(path, &bytes, &size));
    uint64_t n;
    memcpy(&n, bytes, 8);
    assert_int_equal(n % 8, 0);
    assert_int_equal(size, 8 + n + 14);
    const char *want =
        "{\"__metadata__\":{\"format\":\"pt\"},\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]},"
        "\"v\":{\"dtype\":\"BF16\",\"shape\":[1,1],\"data_offsets\":[12,14]}}";
    size_t wlen = strlen(want);
    assert_true(n >= wlen && n < wlen + 8);
    assert_memory_equal(bytes + 8, want, wlen);
    for (size_t i = wlen; i < n; i++) assert_int_equal(bytes[8 + i], ' ');
    json_error_t err;
    json_t *root = json_loadb(bytes + 8, n, 0, &err);
    assert_non_null(root);
    assert_string_equal(json_string_value(json_object_get(json_object_get(root, "__metadata__"), "format")), "pt");
    json_decref(root);
    assert_memory_equal(bytes + 8 + n, w, 12);
    assert_memory_equal(bytes + 8 + n + 12, &v, 2);
    /* Nothing is left behind but the file itself. */
    char cmd[512];
    snprintf(cmd, sizeof cmd, "test $(ls -A '%s' | wc -l) -eq 1", dir);
    assert_int_equal(system(cmd), 0);
    free(bytes);
    free(path);
    test_tmpdir_remove(dir);
    free(dir);
}

static void test_writer_rejects_bad_entries(void **state) {
    (void)state;
    char *dir = test_tmpdir();
    char *path = hone_path_join(dir, "m.safetensors");
    const float x[4] = {0};
    hone_st_entry e[2] = {
        {.name = "a", .dtype = HONE_DTYPE_F32, .ndim = 1, .shape = {2}, .data = x},
        {.name = "a", .dtype = HONE_DTYPE_F32, .ndim = 1, .shape = {2}, .data = x},
    };
    TEST_FAILS_WITH(hone_st_write(path, e, 2), "tensor 'a' is given twice");
    e[1].name = "b";
    e[1].shape[0] = -2;
    TEST_FAILS_WITH(hone_st_write(path, e, 2), "tensor 'b': dimension 0 is negative");
    e[1].shape[0] = 2;
    e[1].ndim = HONE_ST_MAX_DIMS + 1;
    TEST_FAILS_WITH(hone_st_write(path, e, 2), "tensor 'b': 9 dimensions");
    e[1].ndim = 3;
    e[1].shape[0] = e[1].shape[1] = e[1].shape[2] = INT64_C(1) << 30;
    TEST_FAILS_WITH(hone_st_write(path, e, 2), "too large");
    e[1].ndim = 1;
    e[1].shape[0] = 2;
    e[1].data = NULL;
    TEST_FAILS_WITH(hone_st_write(path, e, 2), "tensor 'b': data is NULL");
    e[1].data = x;
    e[1].name = "__metadata__";
    TEST_FAILS_WITH(hone_st_write(path, e, 2), "not allowed");
    e[1].name = "";
    TEST_FAILS_WITH(hone_st_write(path, e, 2), "not allowed");
    e[1].name = "\xff\xfe";
    TEST_FAILS_WITH(hone_st_write(path, e, 2), "not valid UTF-8");
    e[1].name = "b";
    e[1].dtype = HONE_DTYPE_COUNT;
    TEST_FAILS_WITH(hone_st_write(path, e, 2), "invalid dtype");
    assert_false(hone_file_exists(path)); /* failures leave nothing behind */
    e[1].dtype = HONE_DTYPE_F32;
    TEST_OK(hone_st_write(path, e, 2));
    TEST_OK(hone_st_write(path, NULL, 0)); /* no tensors is a valid file */
    hone_st_file f;
    TEST_OK(hone_st_open(&f, path));
    assert_int_equal(f.n_tensors, 0);
    hone_st_close(&f);
    free(path);
    test_tmpdir_remove(dir);
    free(dir);
}

typedef struct {
    const char *header;
    size_t data_len;
    const char *needle;      /* the problem */
    const char *tensor_name; /* NULL when the problem is not a tensor's */
} malformed_case;

static const malformed_case malformed_cases[] = {
    {"{\"w\":", 0, "header is not valid JSON", NULL},
    {"{\"w\": {}, \"w\": {}}", 0, "duplicate object key", NULL},
    {"[1, 2]", 0, "not an object", NULL},
    {"\"text\"", 0, "not an object", NULL},
    {"{\"w\": 3}", 0, "entry is not a JSON object", "'w'"},
    {"{\"w\": {\"shape\": [1], \"data_offsets\": [0, 4]}}", 4, "\"dtype\" is missing", "'w'"},
    {"{\"w\": {\"dtype\": 32, \"shape\": [1], \"data_offsets\": [0, 4]}}", 4, "not a string", "'w'"},
    {"{\"w\": {\"dtype\": \"F17\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 4, "unknown dtype 'F17'", "'w'"},
    {"{\"w\": {\"dtype\": \"F32\", \"data_offsets\": [0, 4]}}", 4, "\"shape\" is missing", "'w'"},
    {"{\"w\": {\"dtype\": \"F32\", \"shape\": 4, \"data_offsets\": [0, 4]}}", 4, "not an array", "'w'"},
    {"{\"w\": {\"dtype\": \"F32\", \"shape\": [-1], \"data_offsets\": [0, 4]}}", 4, "shape dimension 0", "'w'"},
    {"{\"w\": {\"dtype\": \"F32\", \"shape\": [1, 2.5], \"data_offsets\": [0, 4]}}", 4, "shape dimension 1", "'w'"},
    {"{\"w\": {\"dtype\": \"F32\", \"shape\": [1,1,1,1,1,1,1,1,1], \"data_offsets\": [0, 4]}}", 4, "9 dimensions",
     "'w'"},
    {"{\"w\": {\"dtype\": \"F32\", \"shape\": [4294967296, 4294967296, 4], \"data_offsets\": [0, 4]}}", 4, "overflow",
     "'w'"},
    {"{\"w\": {\"dtype\": \"F32\", \"shape\": [1]}}", 4, "\"data_offsets\" is missing", "'w'"},
    {"{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0]}}", 4, "[begin, end]", "'w'"},
    {"{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [-4, 0]}}", 4, "[begin, end]", "'w'"},
    {"{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [\"0\", \"4\"]}}", 4, "[begin, end]", "'w'"},
    {"{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4, 8]}}", 8, "[begin, end]", "'w'"},
    {"{\"w\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [4, 0]}}", 4, "begin after end", "'w'"},
    {"{\"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}", 6, "past the data section", "'w'"},
    {"{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 18446744073709551615]}}", 4, "not valid JSON",
     NULL}, /* beyond int64: jansson refuses the number */
    {"{\"w\": {\"dtype\": \"F16\", \"shape\": [3], \"data_offsets\": [0, 4]}}", 4, "does not match", "'w'"},
    {"{\"w\": {\"dtype\": \"F32\", \"shape\": [2, 2], \"data_offsets\": [0, 8]}}", 16, "does not match", "'w'"},
    {"{\"u\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
     " \"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}",
     12, "overlap tensor 'u'", "'w'"},
    {"{\"w\": {\"dtype\": \"U8\", \"shape\": [16], \"data_offsets\": [0, 16]},"
     " \"u\": {\"dtype\": \"U8\", \"shape\": [4], \"data_offsets\": [4, 8]}}",
     16, "overlap tensor 'w'", "'u'"},
    {"{\"__metadata__\": [\"pt\"]}", 0, "\"__metadata__\" is not a JSON object", NULL},
    {"{\"__metadata__\": {\"format\": \"pt\", \"step\": 3}}", 0, "value 'step' is not a string", NULL},
};

static void test_malformed_headers(void **state) {
    (void)state;
    char *dir = test_tmpdir();
    for (size_t i = 0; i < sizeof malformed_cases / sizeof *malformed_cases; i++) {
        const malformed_case *c = &malformed_cases[i];
        char name[32];
        snprintf(name, sizeof name, "case%zu.safetensors", i);
        char *path = write_raw(dir, name, c->header, c->data_len);
        hone_st_file f;
        hone_status st = hone_st_open(&f, path);
        if (st == HONE_OK) fail_msg("case %zu (%s) opened, expected '%s'", i, c->header, c->needle);
        const char *msg = hone_error();
        if (!strstr(msg, c->needle) || !strstr(msg, path) || (c->tensor_name && !strstr(msg, c->tensor_name)))
            fail_msg("case %zu (%s): error '%s' should name %s, %s and '%s'", i, c->header, msg, path,
                     c->tensor_name ? c->tensor_name : "no tensor", c->needle);
        assert_null(f.tensors); /* a failed open leaves nothing to close */
        free(path);
    }
    test_tmpdir_remove(dir);
    free(dir);
}

static void test_malformed_lengths(void **state) {
    (void)state;
    char *dir = test_tmpdir();
    hone_st_file f;
    uint8_t buf[64] = {0};

    char *path = test_write_file(dir, "short", buf, 5);
    TEST_FAILS_WITH(hone_st_open(&f, path), "5 bytes, too short");
    free(path);
    path = test_write_file(dir, "empty", buf, 0);
    TEST_FAILS_WITH(hone_st_open(&f, path), "0 bytes, too short");
    free(path);

    uint64_t huge = UINT64_C(1) << 40;
    memcpy(buf, &huge, 8);
    path = test_write_file(dir, "huge", buf, 64);
    TEST_FAILS_WITH(hone_st_open(&f, path), "header length 1099511627776 exceeds");
    free(path);
    huge = UINT64_MAX; /* would wrap 8 + N */
    memcpy(buf, &huge, 8);
    path = test_write_file(dir, "wrap", buf, 64);
    TEST_FAILS_WITH(hone_st_open(&f, path), "exceeds");
    free(path);

    /* A truncated header: the length says 100, 56 bytes follow. */
    uint64_t len = 100;
    memcpy(buf, &len, 8);
    memcpy(buf + 8, "{\"w\": {\"dtype\": \"F32\"", 21);
    path = test_write_file(dir, "truncated", buf, 64);
    TEST_FAILS_WITH(hone_st_open(&f, path), "header length 100 but only 56 bytes follow it; the file is truncated");
    free(path);

    path = hone_path_join(dir, "absent.safetensors");
    TEST_FAILS_WITH(hone_st_open(&f, path), "absent.safetensors: cannot open");
    free(path);
    TEST_FAILS_WITH(hone_st_open(&f, dir), "not a regular file");
    test_tmpdir_remove(dir);
    free(dir);
}

/* Gaps between spans, empty spans anywhere, no trailing padding and unaligned data are all accepted. */
static void test_accepts_gaps_empty_spans_and_unaligned_data(void **state) {
    (void)state;
    char *dir = test_tmpdir();
    /* F32 data at an odd offset, after a header whose length is not a multiple of 8. */
    const char *header = "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [1, 9]},"
                         " \"z\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [4, 4]},"
                         " \"b\": {\"dtype\": \"BF16\", \"shape\": [1], \"data_offsets\": [13, 15]},"
                         " \"z2\": {\"dtype\": \"F32\", \"shape\": [0, 3], \"data_offsets\": [0, 0]}}";
    assert_true(strlen(header) % 8 != 0);
    char *path = write_raw(dir, "gaps.safetensors", header, 20);
    hone_st_file f;
    TEST_OK(hone_st_open(&f, path));
    assert_int_equal(f.n_tensors, 4);
    assert_null(f.metadata_json);
    float out[2];
    TEST_OK(hone_st_tensor_to_f32(hone_st_find(&f, "a"), out));
    uint8_t want_bytes[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    float want[2];
    memcpy(want, want_bytes, 8);
    assert_memory_equal(out, want, 8);
    TEST_OK(hone_st_tensor_to_f32(hone_st_find(&f, "b"), out));
    assert_true(out[0] == hone_bf16_to_f32(13 | 14 << 8));
    hone_st_close(&f);
    free(path);
    path = write_raw(dir, "none.safetensors", "{}", 0);
    TEST_OK(hone_st_open(&f, path));
    assert_int_equal(f.n_tensors, 0);
    hone_st_close(&f);
    free(path);
    test_tmpdir_remove(dir);
    free(dir);
}

static void test_open_memory_and_integer_tensors(void **state) {
    (void)state;
    const char *header = "{\"ids\": {\"dtype\": \"I32\", \"shape\": [2], \"data_offsets\": [0, 8]}}";
    size_t hlen = strlen(header);
    uint8_t buf[128];
    uint64_t n = hlen;
    int32_t ids[2] = {7, -1};
    memcpy(buf, &n, 8);
    memcpy(buf + 8, header, hlen);
    memcpy(buf + 8 + hlen, ids, 8);
    hone_st_file f;
    TEST_OK(hone_st_open_memory(&f, buf, 16 + hlen, "<memory>"));
    const hone_st_tensor *t = hone_st_find(&f, "ids");
    assert_int_equal(t->dtype, HONE_DTYPE_I32);
    assert_memory_equal(t->data, ids, 8);
    float out[2];
    TEST_FAILS_WITH(hone_st_tensor_to_f32(t, out), "<memory>: tensor 'ids': dtype I32 is not a floating type");
    hone_st_close(&f);
    TEST_FAILS_WITH(hone_st_open_memory(&f, buf, 12 + hlen, "<memory>"), "<memory>: tensor 'ids'");
}

/* Writes a shard holding the named F32 tensors, each [2] filled with its index. */
static void write_shard(const char *dir, const char *file, const char **names, size_t n) {
    static const float values[8][2] = {{0, 0}, {1, 1}, {2, 2}, {3, 3}, {4, 4}, {5, 5}, {6, 6}, {7, 7}};
    hone_st_entry e[8];
    for (size_t i = 0; i < n; i++)
        e[i] = (hone_st_entry){.name = names[i], .dtype = HONE_DTYPE_F32, .ndim = 1, .shape = {2}, .data = values[i]};
    char *path = hone_path_join(dir, file);
    TEST_OK(hone_st_write(path, e, n));
    free(path);
}

static void write_index(const char *dir, const char *weight_map) {
    char text[1024];
    snprintf(text, sizeof text, "{\"metadata\": {\"total_size\": 40}, \"weight_map\": %s}", weight_map);
    free(test_write_file(dir, "model.safetensors.index.json", text, strlen(text)));
}

static void test_checkpoint_single_file(void **state) {
    (void)state;
    char *dir = test_tmpdir();
    hone_checkpoint c;
    TEST_FAILS_WITH(hone_checkpoint_open(&c, dir), "no model.safetensors or model.safetensors.index.json");
    free(test_write_file(dir, "pytorch_model.bin", "x", 1));
    TEST_FAILS_WITH(hone_checkpoint_open(&c, dir), "pytorch_model.bin");
    write_shard(dir, "model.safetensors", (const char *[]){"b", "a", "c"}, 3);
    TEST_OK(hone_checkpoint_open(&c, dir));
    assert_int_equal(c.n_files, 1);
    assert_int_equal(c.n_tensors, 3);
    float out[2];
    TEST_OK(hone_st_tensor_to_f32(hone_checkpoint_find(&c, "a"), out));
    assert_true(out[0] == 1.0f);
    assert_null(hone_checkpoint_find(&c, "d"));
    assert_null(hone_checkpoint_find(&c, ""));
    hone_checkpoint_close(&c);
    /* A .safetensors file on its own is a checkpoint too. */
    char *path = hone_path_join(dir, "model.safetensors");
    TEST_OK(hone_checkpoint_open(&c, path));
    assert_non_null(hone_checkpoint_find(&c, "c"));
    hone_checkpoint_close(&c);
    free(path);
    test_tmpdir_remove(dir);
    free(dir);
}

static void test_checkpoint_sharded(void **state) {
    (void)state;
    char *dir = test_tmpdir();
    write_shard(dir, "model-00001-of-00002.safetensors", (const char *[]){"emb", "h.0.w"}, 2);
    write_shard(dir, "model-00002-of-00002.safetensors", (const char *[]){"h.1.w", "head", "norm"}, 3);
    write_index(dir, "{\"emb\": \"model-00001-of-00002.safetensors\", \"h.0.w\": \"model-00001-of-00002.safetensors\","
                     " \"h.1.w\": \"model-00002-of-00002.safetensors\", \"head\": \"model-00002-of-00002.safetensors\","
                     " \"norm\": \"model-00002-of-00002.safetensors\"}");
    hone_checkpoint c;
    TEST_OK(hone_checkpoint_open(&c, dir));
    assert_int_equal(c.n_files, 2);
    assert_int_equal(c.n_tensors, 5);
    const char *names[] = {"emb", "h.0.w", "h.1.w", "head", "norm"};
    const float want[] = {0, 1, 0, 1, 2};
    for (int i = 0; i < 5; i++) {
        const hone_st_tensor *t = hone_checkpoint_find(&c, names[i]);
        assert_non_null(t);
        assert_string_equal(t->name, names[i]);
        assert_non_null(strstr(t->file_path, i < 2 ? "00001-of" : "00002-of"));
        float out[2];
        TEST_OK(hone_st_tensor_to_f32(t, out));
        assert_true(out[0] == want[i] && out[1] == want[i]);
    }
    assert_null(hone_checkpoint_find(&c, "h.2.w"));
    assert_null(hone_checkpoint_find(&c, "a"));
    assert_null(hone_checkpoint_find(&c, "zzz"));
    hone_checkpoint_close(&c);
    test_tmpdir_remove(dir);
    free(dir);
}

static void test_checkpoint_index_disagreements(void **state) {
    (void)state;
    char *dir = test_tmpdir();
    write_shard(dir, "s1.safetensors", (const char *[]){"a", "b"}, 2);
    write_shard(dir, "s2.safetensors", (const char *[]){"c"}, 1);
    hone_checkpoint c;

    write_index(dir, "{\"a\": \"s1.safetensors\", \"b\": \"s1.safetensors\", \"c\": \"s2.safetensors\","
                     " \"d\": \"s2.safetensors\"}");
    TEST_FAILS_WITH(hone_checkpoint_open(&c, dir), "tensor 'd': the index maps it to");
    assert_null(c.files);

    write_index(dir, "{\"a\": \"s1.safetensors\", \"b\": \"s2.safetensors\", \"c\": \"s2.safetensors\"}");
    TEST_FAILS_WITH(hone_checkpoint_open(&c, dir), "tensor 'b': the index maps it to");

    write_index(dir, "{\"a\": \"s1.safetensors\", \"c\": \"s2.safetensors\"}");
    TEST_FAILS_WITH(hone_checkpoint_open(&c, dir), "tensor 'b': present in shard");

    write_index(dir, "{\"a\": \"s1.safetensors\", \"b\": \"s1.safetensors\", \"c\": \"s3.safetensors\"}");
    TEST_FAILS_WITH(hone_checkpoint_open(&c, dir), "s3.safetensors: cannot open");

    write_index(dir, "{\"a\": \"../s1.safetensors\"}");
    TEST_FAILS_WITH(hone_checkpoint_open(&c, dir), "tensor 'a': weight_map value must be a shard file name");

    write_index(dir, "{\"a\": 1}");
    TEST_FAILS_WITH(hone_checkpoint_open(&c, dir), "tensor 'a': weight_map value");

    free(test_write_file(dir, "model.safetensors.index.json", "{\"metadata\": {}}", 16));
    TEST_FAILS_WITH(hone_checkpoint_open(&c, dir), "no \"weight_map\"");

    free(test_write_file(dir, "model.safetensors.index.json", "{\"weight_map\": ", 15));
    TEST_FAILS_WITH(hone_checkpoint_open(&c, dir), "model.safetensors.index.json: not valid JSON");

    write_shard(dir, "s2.safetensors", (const char *[]){"c", "a"}, 2);
    write_index(dir, "{\"a\": \"s1.safetensors\", \"b\": \"s1.safetensors\", \"c\": \"s2.safetensors\"}");
    TEST_FAILS_WITH(hone_checkpoint_open(&c, dir), "tensor 'a' is also in");

    /* A shard that fails validation is named along with the index that lists it. */
    free(
        write_raw(dir, "s2.safetensors", "{\"c\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}", 4));
    TEST_FAILS_WITH(hone_checkpoint_open(&c, dir), "lists shard 's2.safetensors'");
    assert_non_null(strstr(hone_error(), "s2.safetensors: tensor 'c'"));
    test_tmpdir_remove(dir);
    free(dir);
}

/* Files written by Hugging Face (safetensors' Rust writer via transformers). */
static void test_real_hf_files(void **state) {
    (void)state;
    const char *data = test_shared_data();
    if (!data) skip();
    char *dir = hone_path_join(data, "models/fake_gpt2");
    char *path = hone_path_join(dir, "model.safetensors");
    hone_st_file f;
    TEST_OK(hone_st_open(&f, path));
    assert_int_equal(f.n_tensors, 16);
    assert_string_equal(f.metadata_json, "{\"format\":\"pt\"}");
    const hone_st_tensor *t = hone_st_find(&f, "transformer.wte.weight");
    assert_shape(t, 2, (int64_t[]){50257, 2});
    assert_int_equal(t->dtype, HONE_DTYPE_F32);
    float *wte = malloc((size_t)t->numel * sizeof(float));
    TEST_OK(hone_st_tensor_to_f32(t, wte));
    const float want[4] = {0x1.c17748p-6f, 0x1.7f4e72p-7f, -0x1.844ed4p-7f, -0x1.3fb80ep-6f};
    test_assert_close(wte, want, 4, 0, 0, "fake_gpt2 wte[0:4]");
    free(wte);
    assert_shape(hone_st_find(&f, "transformer.h.0.attn.c_attn.weight"), 2, (int64_t[]){2, 6});
    assert_shape(hone_st_find(&f, "transformer.wpe.weight"), 2, (int64_t[]){1024, 2});
    hone_st_close(&f);
    free(path);

    hone_checkpoint c;
    TEST_OK(hone_checkpoint_open(&c, dir));
    assert_int_equal(c.n_tensors, 16);
    assert_non_null(hone_checkpoint_find(&c, "transformer.ln_f.bias"));
    hone_checkpoint_close(&c);
    free(dir);

    dir = hone_path_join(data, "models/tiny_gpt2");
    TEST_OK(hone_checkpoint_open(&c, dir));
    assert_int_equal(c.n_tensors, 16);
    t = hone_checkpoint_find(&c, "wte.weight");
    assert_shape(t, 2, (int64_t[]){21, 2});
    float out[42];
    TEST_OK(hone_st_tensor_to_f32(t, out));
    const float want_tiny[4] = {0x1.05c4bp-5f, -0x1.37e51ep-8f, -0x1.34f4d6p-6f, -0x1.6749f8p-5f};
    test_assert_close(out, want_tiny, 4, 0, 0, "tiny_gpt2 wte[0:4]");
    assert_shape(hone_checkpoint_find(&c, "h.0.mlp.c_fc.weight"), 2, (int64_t[]){2, 8});
    hone_checkpoint_close(&c);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_f32_f16_bf16),
        cmocka_unit_test(test_written_layout),
        cmocka_unit_test(test_writer_rejects_bad_entries),
        cmocka_unit_test(test_malformed_headers),
        cmocka_unit_test(test_malformed_lengths),
        cmocka_unit_test(test_accepts_gaps_empty_spans_and_unaligned_data),
        cmocka_unit_test(test_open_memory_and_integer_tensors),
        cmocka_unit_test(test_checkpoint_single_file),
        cmocka_unit_test(test_checkpoint_sharded),
        cmocka_unit_test(test_checkpoint_index_disagreements),
        cmocka_unit_test(test_real_hf_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
