/* Helpers shared by the unit tests (cmocka). Tests run from the repository root. */
#ifndef HONE_TESTUTIL_H
#define HONE_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "hone/base.h"

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
