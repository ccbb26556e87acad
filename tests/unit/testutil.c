#include "testutil.h"

#include <jansson.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *test_shared_data(void) {
    static const char *path = "../shared/data";
    if (hone_dir_exists(path)) return path;
    fprintf(stderr, "skipping: %s is absent (real third-party files live there)\n", path);
    return NULL;
}

char *test_tmpdir(void) {
    char tmpl[] = "/tmp/hone-test-XXXXXX";
    char *d = mkdtemp(tmpl);
    if (!d) fail_msg("mkdtemp failed");
    return strdup(d);
}

void test_tmpdir_remove(const char *dir) {
    char cmd[1024];
    if (strncmp(dir, "/tmp/hone-test-", 15) != 0) return;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", dir);
}

char *test_write_file(const char *dir, const char *name, const void *data, size_t n) {
    char *path = hone_path_join(dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) fail_msg("cannot write %s", path);
    if (n && fwrite(data, 1, n, f) != n) fail_msg("short write %s", path);
    fclose(f);
    return path;
}

void test_assert_close(const float *got, const float *want, size_t n, float atol, float rtol, const char *what) {
    size_t worst = 0;
    double worst_excess = -1;
    for (size_t i = 0; i < n; i++) {
        double diff = fabs((double)got[i] - (double)want[i]);
        double allowed = atol + rtol * fabs((double)want[i]);
        double excess = isnan(diff) ? INFINITY : diff - allowed;
        if (excess > worst_excess) {
            worst_excess = excess;
            worst = i;
        }
    }
    if (n && worst_excess > 0)
        fail_msg("%s: element %zu of %zu: got %.9g, want %.9g (atol %g, rtol %g)", what, worst, n, got[worst],
                 want[worst], atol, rtol);
}

char *test_write_byte_level_tokenizer(const char *dir, const char *const *special, size_t n_special) {
    json_t *vocab = json_object(), *added = json_array();
    int next = 256;
    for (int b = 0; b < 256; b++) {
        /* GPT-2's bytes_to_unicode: printable bytes stand for themselves, the others become U+0100.. */
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        unsigned cp = printable ? (unsigned)b : (unsigned)next++;
        char utf8[3] = {0};
        if (cp < 0x80) utf8[0] = (char)cp;
        else {
            utf8[0] = (char)(0xC0 | cp >> 6);
            utf8[1] = (char)(0x80 | (cp & 0x3F));
        }
        json_object_set_new(vocab, utf8, json_integer(b));
    }
    for (size_t i = 0; i < n_special; i++) {
        json_object_set_new(vocab, special[i], json_integer(256 + (json_int_t)i));
        json_array_append_new(added, json_pack("{s:I, s:s, s:b, s:b, s:b, s:b, s:b}", "id", (json_int_t)(256 + i),
                                               "content", special[i], "single_word", 0, "lstrip", 0, "rstrip", 0,
                                               "normalized", 0, "special", 1));
    }
    json_t *doc = json_pack("{s:s, s:o, s:n, s:{s:s, s:b, s:b, s:b}, s:n, s:{s:s, s:o, s:[]}, s:{s:s}}", "version",
                            "1.0", "added_tokens", added, "normalizer", "pre_tokenizer", "type", "ByteLevel",
                            "add_prefix_space", 0, "trim_offsets", 1, "use_regex", 1, "post_processor", "model",
                            "type", "BPE", "vocab", vocab, "merges", "decoder", "type", "ByteLevel");
    char *text = json_dumps(doc, JSON_COMPACT);
    char *path = test_write_file(dir, "tokenizer.json", text, strlen(text));
    free(text);
    json_decref(doc);
    return path;
}

json_t *test_load_json(const char *dir, const char *name) {
    char *path = hone_path_join(dir, name);
    json_error_t err;
    json_t *j = json_load_file(path, 0, &err);
    if (!j) fail_msg("%s: %s", path, err.text);
    free(path);
    return j;
}

void test_assert_same_file(const char *a, const char *b) {
    char *x, *y;
    size_t nx, ny;
    TEST_OK(hone_file_read(a, &x, &nx));
    TEST_OK(hone_file_read(b, &y, &ny));
    if (nx != ny || memcmp(x, y, nx)) fail_msg("%s and %s differ", a, b);
    free(x);
    free(y);
}

float *test_tensor_f32(const hone_st_tensor *t) {
    float *x = malloc((size_t)t->numel * sizeof *x);
    TEST_OK(hone_st_tensor_to_f32(t, x));
    return x;
}

void test_reference_open(test_reference *r, const char *name, const char *dir, const char *ids_name) {
    memset(r, 0, sizeof *r);
    r->name = name;
    char *path = hone_path_join(dir, "reference.safetensors");
    TEST_OK(hone_st_open(&r->ref, path));
    free(path);
    r->json = test_load_json(dir, "reference.json");
    const hone_st_tensor *ids = hone_st_find(&r->ref, ids_name), *tg = hone_st_find(&r->ref, "targets");
    if (!ids || !tg) fail_msg("%s: the reference has no %s or targets tensor", dir, ids_name);
    r->B = (int)ids->shape[0];
    r->T = (int)ids->shape[1];
    r->ids = malloc(ids->nbytes);
    r->targets = malloc(tg->nbytes);
    memcpy(r->ids, ids->data, ids->nbytes);
    memcpy(r->targets, tg->data, tg->nbytes);
}

void test_reference_close(test_reference *r) {
    hone_st_close(&r->ref);
    json_decref(r->json);
    free(r->ids);
    free(r->targets);
}

float *test_reference_tensor(test_reference *r, const char *tensor, size_t *n) {
    const hone_st_tensor *t = hone_st_find(&r->ref, tensor);
    if (!t) fail_msg("%s: reference tensor %s missing", r->name, tensor);
    if (n) *n = (size_t)t->numel;
    return test_tensor_f32(t);
}
