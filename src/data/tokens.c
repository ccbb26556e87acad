/* Token streams: llm.c shards and JSONL {"input_ids": [...]} rows, loaded into one int32 array. */
#include "hone/data.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SHARD_HEADER_INTS 256
#define SHARD_HEADER_BYTES (SHARD_HEADER_INTS * 4)
#define SHARD_MAGIC_U16 20240520
#define SHARD_VERSION_U16 1
#define SHARD_MAGIC_U32 20240801
#define SHARD_VERSION_U32 7

/* Shards are little-endian whatever the host. */
static uint32_t read_u32_le(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void write_u32_le(uint8_t *p, uint32_t x) {
    p[0] = (uint8_t)x;
    p[1] = (uint8_t)(x >> 8);
    p[2] = (uint8_t)(x >> 16);
    p[3] = (uint8_t)(x >> 24);
}

static hone_status parse_shard(hone_token_stream *s, const hone_mapped_file *f, int vocab_size) {
    const char *path = f->path;
    if (f->size < SHARD_HEADER_BYTES)
        return hone_errorf(HONE_ERR_FORMAT, "%s: truncated: %zu bytes, shorter than the %d-byte llm.c shard header",
                           path, f->size, SHARD_HEADER_BYTES);
    const int32_t magic = (int32_t)read_u32_le(f->data), version = (int32_t)read_u32_le(f->data + 4);
    const int32_t count = (int32_t)read_u32_le(f->data + 8);
    size_t itemsize;
    if (magic == SHARD_MAGIC_U16 && version == SHARD_VERSION_U16)
        itemsize = 2;
    else if (magic == SHARD_MAGIC_U32 && version == SHARD_VERSION_U32)
        itemsize = 4;
    else if (magic == SHARD_MAGIC_U16 || magic == SHARD_MAGIC_U32)
        return hone_errorf(HONE_ERR_FORMAT,
                           "%s: unsupported llm.c shard version %d for magic %d (expected version %d with magic %d "
                           "for uint16 tokens, or version %d with magic %d for uint32 tokens)",
                           path, version, magic, SHARD_VERSION_U16, SHARD_MAGIC_U16, SHARD_VERSION_U32,
                           SHARD_MAGIC_U32);
    else
        return hone_errorf(HONE_ERR_FORMAT, "%s: bad magic %d: not an llm.c token shard (expected %d or %d)", path,
                           magic, SHARD_MAGIC_U16, SHARD_MAGIC_U32);
    if (count < 0) return hone_errorf(HONE_ERR_FORMAT, "%s: header says %d tokens (negative)", path, count);

    const size_t n = (size_t)count, payload = f->size - SHARD_HEADER_BYTES;
    if (payload < n * itemsize)
        return hone_errorf(HONE_ERR_FORMAT, "%s: truncated: header says %zu tokens, file holds %zu", path, n,
                           payload / itemsize);
    if (payload > n * itemsize)
        return hone_errorf(HONE_ERR_FORMAT, "%s: %zu trailing bytes after the %zu tokens the header announces", path,
                           payload - n * itemsize, n);
    if (!(s->tokens = hone_alloc(n * sizeof(int32_t)))) return hone_error_context(HONE_ERR_NOMEM, "%s", path);
    const uint8_t *p = f->data + SHARD_HEADER_BYTES;
    for (size_t i = 0; i < n; i++) {
        uint32_t id = itemsize == 2 ? (uint32_t)p[2 * i] | (uint32_t)p[2 * i + 1] << 8 : read_u32_le(p + 4 * i);
        if (vocab_size > 0 && id >= (uint32_t)vocab_size)
            return hone_errorf(HONE_ERR_FORMAT, "%s: token id %u at position %zu is outside the vocabulary (size %d)",
                               path, id, i, vocab_size);
        if (id > INT32_MAX)
            return hone_errorf(HONE_ERR_FORMAT, "%s: token id %u at position %zu is too large (at most %d)", path, id,
                               i, INT32_MAX);
        s->tokens[i] = (int32_t)id;
    }
    s->n_tokens = n;
    s->n_documents = 1;
    return HONE_OK;
}

static hone_status load_shard(hone_token_stream *s, const char *path, int vocab_size) {
    hone_mapped_file f;
    HONE_TRY(hone_file_map(&f, path));
    hone_status st = parse_shard(s, &f, vocab_size);
    hone_file_unmap(&f);
    return st;
}

/* One JSONL row's tokens, produced on a worker thread: the ids of "input_ids" as given, or of "text" encoded
 * (then followed by EOS); error holds the message when the row is bad. */
typedef struct {
    int32_t *ids;
    size_t n;
    int is_text;
    char *error;
} row_tokens;

static void row_fail(row_tokens *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void row_fail(row_tokens *r, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&r->error, fmt, ap) < 0) r->error = NULL;
    va_end(ap);
    if (!r->error) r->error = strdup("out of memory");
}

static void parse_ids(row_tokens *r, const json_t *ids, const char *where, int vocab_size) {
    const size_t len = json_array_size(ids);
    if (!(r->ids = malloc(sizeof(int32_t) * (len ? len : 1)))) {
        row_fail(r, "%s: out of memory", where);
        return;
    }
    for (size_t j = 0; j < len; j++) {
        const json_t *e = json_array_get(ids, j);
        if (!json_is_integer(e)) {
            char *text = json_dumps(e, JSON_ENCODE_ANY | JSON_COMPACT);
            row_fail(r, "%s: input_ids[%zu] is not an integer: %.40s", where, j, text ? text : "?");
            free(text);
            return;
        }
        const json_int_t id = json_integer_value(e);
        if (id < 0) {
            row_fail(r, "%s: input_ids[%zu] = %lld is negative", where, j, (long long)id);
            return;
        }
        if (vocab_size > 0 && id >= vocab_size) {
            row_fail(r, "%s: token id %lld is outside the vocabulary (size %d)", where, (long long)id, vocab_size);
            return;
        }
        if (id > INT32_MAX) {
            row_fail(r, "%s: token id %lld is too large (at most %d)", where, (long long)id, INT32_MAX);
            return;
        }
        r->ids[j] = (int32_t)id;
    }
    r->n = len;
}

/* tokenizer(text); the ids must fit the model. */
static void encode_text(row_tokens *r, const char *text, size_t len, const char *where, int vocab_size,
                        const hone_text_options *opt) {
    r->is_text = 1;
    if (!opt || !opt->tokenizer) {
        row_fail(r, "%s: text needs a tokenizer: put tokenizer.json in the model folder or give --tokenizer", where);
        return;
    }
    if (hone_tokenizer_encode(opt->tokenizer, text, len, 1, &r->ids, &r->n) != HONE_OK) {
        row_fail(r, "%s: %s", where, hone_error());
        return;
    }
    for (size_t i = 0; i < r->n; i++)
        if (vocab_size > 0 && r->ids[i] >= vocab_size) {
            row_fail(r,
                     "%s: the tokenizer produced id %d, outside the model's vocabulary (size %d): the "
                     "tokenizer does not belong to this model",
                     where, r->ids[i], vocab_size);
            return;
        }
}

static void parse_row(row_tokens *r, const hone_line *l, const char *path, int vocab_size,
                      const hone_text_options *opt) {
    char where[512];
    snprintf(where, sizeof where, "%s:%zu", path, l->line_no);
    json_error_t err;
    json_t *row = json_loadb(l->text, l->len, JSON_REJECT_DUPLICATES, &err);
    if (!row) {
        row_fail(r, "%s: invalid JSON at column %d: %s", where, err.column, err.text);
        return;
    }
    const json_t *ids = json_is_object(row) ? json_object_get(row, "input_ids") : NULL;
    const json_t *doc = json_is_object(row) ? json_object_get(row, "text") : NULL;
    if (!json_is_object(row))
        row_fail(r, "%s: expected a JSON object with \"input_ids\" or \"text\" (one per line)", where);
    else if (!ids && json_is_string(doc))
        encode_text(r, json_string_value(doc), json_string_length(doc), where, vocab_size, opt);
    else if (!ids)
        row_fail(r, "%s: missing \"input_ids\" (or a string \"text\")", where);
    else if (!json_is_array(ids))
        row_fail(r, "%s: \"input_ids\" is not an array of integers", where);
    else
        parse_ids(r, ids, where, vocab_size);
    json_decref(row);
}

/* Appends n ids, growing the buffer by doubling. */
static hone_status append_ids(hone_token_stream *s, size_t *cap, const int32_t *ids, size_t n, const char *path) {
    if (!n) return HONE_OK;
    if (s->n_tokens + n > *cap) {
        size_t new_cap = *cap ? *cap : 4096;
        while (new_cap < s->n_tokens + n) new_cap *= 2;
        int32_t *grown = hone_alloc(new_cap * sizeof(int32_t));
        if (!grown) return hone_error_context(HONE_ERR_NOMEM, "%s", path);
        if (s->n_tokens) memcpy(grown, s->tokens, s->n_tokens * sizeof(int32_t));
        hone_free(s->tokens);
        s->tokens = grown;
        *cap = new_cap;
    }
    memcpy(s->tokens + s->n_tokens, ids, n * sizeof(int32_t));
    s->n_tokens += n;
    return HONE_OK;
}

/* A text document ends with EOS, unless the post-processor already put it there. */
static hone_status append_row(hone_token_stream *s, size_t *cap, const row_tokens *r, const char *path,
                              const hone_text_options *opt) {
    HONE_TRY(append_ids(s, cap, r->ids, r->n, path));
    if (r->is_text && opt->eos_id >= 0 && (r->n == 0 || r->ids[r->n - 1] != opt->eos_id))
        HONE_TRY(append_ids(s, cap, &opt->eos_id, 1, path));
    return HONE_OK;
}

#define BATCH_LINES 4096

/* Rows are parsed and tokenized in parallel batches and appended in file order. */
static hone_status load_jsonl(hone_token_stream *s, const char *path, int vocab_size, const hone_text_options *opt) {
    hone_mapped_file f;
    HONE_TRY(hone_file_map(&f, path));
    hone_line *lines = calloc(BATCH_LINES, sizeof *lines);
    row_tokens *rows = calloc(BATCH_LINES, sizeof *rows);
    hone_status st = lines && rows ? HONE_OK : hone_errorf(HONE_ERR_NOMEM, "%s: out of memory", path);
    size_t cap = 0, pos = 0, line_no = 0, n;
    while (st == HONE_OK && (n = hone_next_lines((const char *)f.data, f.size, &pos, &line_no, lines, BATCH_LINES))) {
#pragma omp parallel for schedule(dynamic, 16)
        for (size_t i = 0; i < n; i++) parse_row(&rows[i], &lines[i], path, vocab_size, opt);
        for (size_t i = 0; i < n; i++) {
            if (st == HONE_OK && rows[i].error) st = hone_errorf(HONE_ERR_FORMAT, "%s", rows[i].error);
            if (st == HONE_OK) st = append_row(s, &cap, &rows[i], path, opt);
            free(rows[i].ids);
            free(rows[i].error);
            memset(&rows[i], 0, sizeof rows[i]);
        }
        s->n_documents += n;
    }
    free(lines);
    free(rows);
    hone_file_unmap(&f);
    return st;
}

static int has_suffix(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcasecmp(s + a - b, suffix);
}

/* A .txt file is one document. */
static hone_status load_txt(hone_token_stream *s, const char *path, int vocab_size, const hone_text_options *opt) {
    hone_mapped_file f;
    HONE_TRY(hone_file_map(&f, path));
    row_tokens r = {0};
    encode_text(&r, (const char *)f.data, f.size, path, vocab_size, opt);
    size_t cap = 0;
    hone_status st = r.error ? hone_errorf(HONE_ERR_FORMAT, "%s", r.error) : append_row(s, &cap, &r, path, opt);
    s->n_documents = 1;
    free(r.ids);
    free(r.error);
    hone_file_unmap(&f);
    return st;
}

int hone_tokens_is_shard(const char *path) { return has_suffix(path, ".bin"); }

hone_status hone_tokens_load(hone_token_stream *s, const char *path, int vocab_size) {
    return hone_tokens_load_text(s, path, vocab_size, NULL);
}

hone_status hone_tokens_load_text(hone_token_stream *s, const char *path, int vocab_size,
                                  const hone_text_options *text) {
    memset(s, 0, sizeof *s);
    hone_status st;
    if (hone_tokens_is_shard(path))
        st = load_shard(s, path, vocab_size);
    else if (has_suffix(path, ".jsonl") || has_suffix(path, ".json"))
        st = load_jsonl(s, path, vocab_size, text);
    else if (has_suffix(path, ".txt"))
        st = load_txt(s, path, vocab_size, text);
    else
        return hone_errorf(HONE_ERR_UNSUPPORTED,
                           "%s: unknown token file format (accepted: .bin llm.c shards, .txt text, or .jsonl/.json "
                           "with one {\"input_ids\": [...]} or {\"text\": \"...\"} object per line)",
                           path);
    if (st != HONE_OK) hone_tokens_free(s);
    return st;
}

void hone_tokens_free(hone_token_stream *s) {
    if (s->cache_mapping.data)
        hone_file_unmap(&s->cache_mapping);
    else
        hone_free(s->tokens);
    memset(s, 0, sizeof *s);
}

hone_status hone_tokens_write_shard(const char *path, const int32_t *tokens, size_t n) {
    if (n > INT32_MAX)
        return hone_errorf(HONE_ERR_INVALID, "%s: %zu tokens do not fit in one llm.c shard (at most %d)", path, n,
                           INT32_MAX);
    int wide = 0;
    for (size_t i = 0; i < n; i++) {
        if (tokens[i] < 0)
            return hone_errorf(HONE_ERR_INVALID, "%s: token %zu has negative id %d", path, i, (int)tokens[i]);
        wide |= tokens[i] > UINT16_MAX;
    }
    uint8_t header[SHARD_HEADER_BYTES] = {0};
    write_u32_le(header, wide ? SHARD_MAGIC_U32 : SHARD_MAGIC_U16);
    write_u32_le(header + 4, wide ? SHARD_VERSION_U32 : SHARD_VERSION_U16);
    write_u32_le(header + 8, (uint32_t)n);

    hone_atomic_file af;
    HONE_TRY(hone_atomic_open(&af, path));
    hone_status st = hone_atomic_write(&af, header, sizeof header);
    /* Encode through a small buffer so that the bytes are little-endian on any host. */
    uint8_t buf[1 << 14];
    const size_t itemsize = wide ? 4 : 2, per_buf = sizeof buf / itemsize;
    for (size_t i = 0; i < n && st == HONE_OK; i += per_buf) {
        size_t m = n - i < per_buf ? n - i : per_buf;
        for (size_t j = 0; j < m; j++) {
            uint32_t id = (uint32_t)tokens[i + j];
            if (wide)
                write_u32_le(buf + 4 * j, id);
            else {
                buf[2 * j] = (uint8_t)id;
                buf[2 * j + 1] = (uint8_t)(id >> 8);
            }
        }
        st = hone_atomic_write(&af, buf, m * itemsize);
    }
    if (st != HONE_OK) {
        hone_atomic_abort(&af);
        return st;
    }
    return hone_atomic_commit(&af);
}
