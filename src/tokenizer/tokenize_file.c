/* Tokenizing (or decoding) JSONL files line by line, in parallel, keeping the input order. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "hone/data.h"
#include "hone/tokenizer.h"

#define BATCH_LINES 4096

typedef struct {
    char *out; /* the output line (malloc'd), or NULL on error */
    char error[256];
} line_job;

/* {"ids":[1,2,3]} written by hand: building a JSON value per id and printing each through printf costs more
 * than the tokenization itself. */
static char *ids_line(const int32_t *ids, size_t n) {
    char *out = malloc(16 + 12 * n), *p = out;
    if (!out) return NULL;
    memcpy(p, "{\"ids\":[", 8);
    p = hone_format_int32s(p + 8, ids, n);
    memcpy(p, "]}", 3);
    return out;
}

/* {"text": ...} -> {"ids": [...]} */
static void encode_line(const hone_tokenizer *tok, const hone_line *l, line_job *j, int add_special, const char *path) {
    json_error_t err;
    json_t *row = json_loadb(l->text, l->len, 0, &err), *text = json_object_get(row, "text");
    if (!row || !json_is_string(text)) {
        snprintf(j->error, sizeof j->error, "%s:%zu: %s", path, l->line_no,
                 !row ? "invalid JSON" : "expected an object with a string field \"text\"");
        json_decref(row);
        return;
    }
    int32_t *ids = NULL;
    size_t n = 0;
    if (hone_tokenizer_encode(tok, json_string_value(text), json_string_length(text), add_special, &ids, &n) !=
        HONE_OK) {
        snprintf(j->error, sizeof j->error, "%s:%zu: %s", path, l->line_no, hone_error());
        json_decref(row);
        return;
    }
    j->out = ids_line(ids, n);
    if (!j->out) snprintf(j->error, sizeof j->error, "out of memory");
    json_decref(row);
    free(ids);
}

/* {"ids": [...]} -> {"text": ...} */
static void decode_line(const hone_tokenizer *tok, const hone_line *l, line_job *j, const char *path) {
    json_error_t err;
    json_t *row = json_loadb(l->text, l->len, 0, &err), *arr = json_object_get(row, "ids");
    if (!arr) arr = json_object_get(row, "input_ids");
    if (!row || !json_is_array(arr)) {
        snprintf(j->error, sizeof j->error, "%s:%zu: %s", path, l->line_no,
                 !row ? "invalid JSON" : "expected an object with an array field \"ids\"");
        json_decref(row);
        return;
    }
    size_t n = json_array_size(arr);
    int32_t *ids = malloc(sizeof(int32_t) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(arr, i);
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT32_MAX) {
            snprintf(j->error, sizeof j->error, "%s:%zu: ids[%zu] is not a token id", path, l->line_no, i);
            free(ids);
            json_decref(row);
            return;
        }
        ids[i] = (int32_t)json_integer_value(v);
    }
    char *text = NULL;
    size_t len = 0;
    if (hone_tokenizer_decode(tok, ids, n, 0, &text, &len) != HONE_OK) {
        snprintf(j->error, sizeof j->error, "%s:%zu: %s", path, l->line_no, hone_error());
    } else {
        json_t *out = json_pack("{s:s%}", "text", text, len);
        j->out = json_dumps(out, JSON_COMPACT);
        json_decref(out);
    }
    free(text);
    free(ids);
    json_decref(row);
}

hone_status hone_tokenize_jsonl(const hone_tokenizer *tok, const char *in_path, const char *out_path,
                                int add_special_tokens, int decode, size_t *n_lines) {
    *n_lines = 0;
    char *data;
    size_t size;
    HONE_TRY(hone_file_read(in_path, &data, &size));
    hone_atomic_file af;
    hone_status st = hone_atomic_open(&af, out_path);
    if (st != HONE_OK) {
        free(data);
        return st;
    }
    line_job *jobs = calloc(BATCH_LINES, sizeof *jobs);
    hone_line *lines = calloc(BATCH_LINES, sizeof *lines);
    if (!jobs || !lines) st = hone_errorf(HONE_ERR_NOMEM, "out of memory");
    size_t pos = 0, line_no = 0, n;
    while (st == HONE_OK && (n = hone_next_lines(data, size, &pos, &line_no, lines, BATCH_LINES)) > 0) {
#pragma omp parallel for schedule(dynamic, 16)
        for (size_t i = 0; i < n; i++) {
            if (decode) decode_line(tok, &lines[i], &jobs[i], in_path);
            else encode_line(tok, &lines[i], &jobs[i], add_special_tokens, in_path);
        }
        for (size_t i = 0; i < n; i++) {
            if (st == HONE_OK && !jobs[i].out) st = hone_errorf(HONE_ERR_FORMAT, "%s", jobs[i].error);
            if (st == HONE_OK) st = hone_atomic_write(&af, jobs[i].out, strlen(jobs[i].out));
            if (st == HONE_OK) st = hone_atomic_write(&af, "\n", 1);
            free(jobs[i].out);
            jobs[i].out = NULL;
        }
        *n_lines += n;
    }
    free(lines);
    free(jobs);
    free(data);
    if (st != HONE_OK) {
        hone_atomic_abort(&af);
        return st;
    }
    return hone_atomic_commit(&af);
}
