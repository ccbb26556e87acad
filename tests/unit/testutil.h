/* Helpers shared by the unit tests (cmocka). Tests run from the repository root. */
#ifndef HONE_TESTUTIL_H
#define HONE_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>

#include "hone/base.h"
#include "hone/safetensors.h"

/* ../shared/data, or NULL when absent (the test then calls skip() after printing why). */
const char *test_shared_data(void);
/* A fresh empty temporary directory (removed by test_tmpdir_remove); free() the string. */
char *test_tmpdir(void);
void test_tmpdir_remove(const char *dir);
/* Writes bytes to dir/name; returns the path (free()). */
char *test_write_file(const char *dir, const char *name, const void *data, size_t n);

/* Writes dir/tokenizer.json: a GPT-2-style byte-level BPE with one token per byte (ids 0..255 in byte order) and
 * no merges, plus the given special added tokens (ids 256, 257, ...). Returns the path (free()). */
char *test_write_byte_level_tokenizer(const char *dir, const char *const *special, size_t n_special);

/* DIR/NAME parsed as JSON (json_decref it); fails the test with the parse error. */
json_t *test_load_json(const char *dir, const char *name);
/* Fails the test unless files a and b have the same bytes. */
void test_assert_same_file(const char *a, const char *b);
/* A tensor of any floating dtype as f32 (free()). */
float *test_tensor_f32(const hone_st_tensor *t);

/* A reference fixture a tools/ oracle wrote: DIR/reference.safetensors (the batch as I32 tensors `ids_name` [B, T]
 * and "targets" [B, T], and the reference values) and DIR/reference.json. */
typedef struct {
    const char *name; /* for messages */
    hone_st_file ref;
    json_t *json;
    int B, T;
    int32_t *ids, *targets;
} test_reference;
void test_reference_open(test_reference *r, const char *name, const char *dir, const char *ids_name);
void test_reference_close(test_reference *r);
/* Reference tensor `tensor` as f32 (free()); *n (may be NULL) receives its element count. */
float *test_reference_tensor(test_reference *r, const char *tensor, size_t *n);

/* Fails the test with the library's error message when st != HONE_OK. */
#define TEST_OK(expr)                                                                                          \
    do {                                                                                                       \
        hone_status test_st_ = (expr);                                                                         \
        if (test_st_ != HONE_OK) fail_msg("%s failed: %s", #expr, hone_error());                             \
    } while (0)

/* Asserts that expr fails and that the error message contains `needle`. */
#define TEST_FAILS_WITH(expr, needle)                                                                          \
    do {                                                                                                       \
        hone_status test_st_ = (expr);                                                                         \
        if (test_st_ == HONE_OK) fail_msg("%s succeeded, expected an error containing '%s'", #expr, needle);   \
        if (!strstr(hone_error(), needle))                                                                     \
            fail_msg("%s: error '%s' does not contain '%s'", #expr, hone_error(), needle);                     \
    } while (0)

/* |a - b| <= atol + rtol * |b| for every element; reports the worst element. */
void test_assert_close(const float *got, const float *want, size_t n, float atol, float rtol, const char *what);

#endif
