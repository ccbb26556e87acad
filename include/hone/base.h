/* hone/base.h — errors, logging, memory, files and random numbers shared by every module.
 *
 * Errors: every fallible public function returns hone_status (HONE_OK = 0) and, on failure, leaves a message
 * in a thread-local buffer that hone_error() returns. Messages name the file / tensor / line at fault and
 * say what to do:
 *
 *     hone_status st = hone_st_open(&f, "model.safetensors");
 *     if (st != HONE_OK) { fprintf(stderr, "error: %s\n", hone_error()); return 1; }
 */
#ifndef HONE_BASE_H
#define HONE_BASE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    HONE_OK = 0,
    HONE_ERR_IO = 1,          /* a file could not be opened, read or written */
    HONE_ERR_FORMAT = 2,      /* a file's content is malformed */
    HONE_ERR_INVALID = 3,     /* an argument or configuration value is wrong */
    HONE_ERR_UNSUPPORTED = 4, /* valid, but not supported (yet) */
    HONE_ERR_NOMEM = 5,
    HONE_ERR_NUMERIC = 6,     /* NaN or inf where a finite number is required */
} hone_status;

/* Sets the thread-local error message (printf-style) and returns `code`, so that callers can write
 * `return hone_errorf(HONE_ERR_FORMAT, "%s: ...", path);`. */
hone_status hone_errorf(hone_status code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prepends context ("while loading X: ") to the current message and returns `code`. */
hone_status hone_error_context(hone_status code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *hone_error(void);
void hone_error_clear(void);

/* Violated internal invariants (programming errors, never bad input) abort with file:line. */
#define HONE_ASSERT(cond)                                                                                      \
    do {                                                                                                       \
        if (!(cond)) hone_assert_fail(#cond, __FILE__, __LINE__);                                              \
    } while (0)
_Noreturn void hone_assert_fail(const char *expr, const char *file, int line);

/* Propagates a non-OK status. */
#define HONE_TRY(expr)                                                                                         \
    do {                                                                                                       \
        hone_status hone_try_st_ = (expr);                                                                     \
        if (hone_try_st_ != HONE_OK) return hone_try_st_;                                                      \
    } while (0)

/* ---- logging: to stderr; level from HONE_LOG (error|warn|info|debug), default info ---- */
typedef enum { HONE_LOG_ERROR = 0, HONE_LOG_WARN = 1, HONE_LOG_INFO = 2, HONE_LOG_DEBUG = 3 } hone_log_level;
void hone_log(hone_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void hone_log_set_level(hone_log_level level);
#define hone_warn(...) hone_log(HONE_LOG_WARN, __VA_ARGS__)
#define hone_info(...) hone_log(HONE_LOG_INFO, __VA_ARGS__)

/* ---- memory: 64-byte aligned, zeroed; NULL on failure (with the error message set) ---- */
void *hone_alloc(size_t bytes);
void hone_free(void *p);

/* ---- files ---- */
typedef struct {
    const uint8_t *data; /* read-only mapping of the whole file (NULL when size is 0) */
    size_t size;
    char *path;
} hone_mapped_file;

hone_status hone_file_map(hone_mapped_file *f, const char *path);
void hone_file_unmap(hone_mapped_file *f);
/* Reads a whole file into a NUL-terminated heap buffer (free with free()). */
hone_status hone_file_read(const char *path, char **out, size_t *out_size);
int hone_file_exists(const char *path);
int hone_dir_exists(const char *path);
/* mkdir -p */
hone_status hone_dir_create(const char *path);
/* Joins a directory and a file name into a heap string (free with free()). */
char *hone_path_join(const char *dir, const char *name);

/* Lines of a text buffer, in batches for line-parallel work: fills out[0..max) with the next non-blank lines
 * (blank = only spaces, tabs and \r) of data[*pos, size), advancing *pos and the 1-based *line_no; returns how
 * many it found (0 at the end). */
typedef struct {
    const char *text; /* not NUL-terminated */
    size_t len;
    size_t line_no;
} hone_line;
size_t hone_next_lines(const char *data, size_t size, size_t *pos, size_t *line_no, hone_line *out, size_t max);

/* Atomic write: data goes to PATH.tmp.<pid>, which is fsynced and renamed over PATH, then the directory is
 * fsynced. A crash leaves either the old file or the new one, never a torn file. */
typedef struct {
    FILE *fp;
    char *path;
    char *tmp_path;
} hone_atomic_file;

hone_status hone_atomic_open(hone_atomic_file *af, const char *path);
hone_status hone_atomic_write(hone_atomic_file *af, const void *data, size_t n);
hone_status hone_atomic_commit(hone_atomic_file *af); /* fsync + rename; closes */
void hone_atomic_abort(hone_atomic_file *af);         /* removes the temp file; closes */
/* Convenience: the whole file in one call. */
hone_status hone_file_write_atomic(const char *path, const void *data, size_t n);
/* Atomic folders: fill a temporary sibling, then hone_dir_commit fsyncs it (and the files in it), renames it to
 * final_dir and fsyncs the parent. A final_dir that exists is first renamed aside and removed after the new one
 * is in place, so a crash leaves the old folder, the new one or neither, never a partial one under final_dir. */
hone_status hone_dir_commit(const char *tmp_dir, const char *final_dir);
/* rm -rf: removes path and everything under it (no error when it does not exist). */
hone_status hone_dir_remove(const char *path);

/* ---- random numbers: counter-based (Philox-like), reproducible, split per purpose ---- */
typedef struct {
    uint64_t key;
    uint64_t counter;
} hone_rng;

hone_rng hone_rng_new(uint64_t seed, uint64_t stream); /* stream separates purposes (data order, init, sampling) */
uint64_t hone_rng_u64(hone_rng *r);
float hone_rng_uniform(hone_rng *r);                   /* [0, 1) */
float hone_rng_normal(hone_rng *r);                    /* standard normal */
/* out[i] = scale × a standard normal that depends only on (r's key, r->counter + i): filled in parallel, the
 * same values for any thread count. Advances r->counter by n. */
void hone_rng_fill_normal(hone_rng *r, float *out, size_t n, float scale);

/* ---- number formatting ---- */
/* Writes v[0..n) as decimal integers separated by commas ("1,-100,7") at out, which has room for 12 bytes per
 * value; returns the end of what was written (no NUL). */
char *hone_format_int32s(char *out, const int32_t *v, size_t n);

/* ---- hashing: 128-bit content hashes for cache keys (not cryptographic; same value on every host) ---- */
void hone_hash128(const void *data, size_t n, uint64_t seed, uint64_t out[2]);
void hone_hash128_hex(const uint64_t h[2], char hex[33]); /* 32 lowercase hex digits + NUL */
/* 64-bit FNV-1a: tiny and stable, for hash tables of short strings and names that pick random streams. */
uint64_t hone_fnv1a64(const void *data, size_t n);

/* ---- time ---- */
double hone_now_seconds(void); /* monotonic */
/* Peak resident memory of this process so far, in MiB (getrusage's ru_maxrss). */
double hone_peak_memory_mb(void);

#ifdef __cplusplus
}
#endif
#endif
