/* Token streams: llm.c shards and JSONL {"input_ids": [...]} rows, loaded into one int32 array. */
#include "hone/data.h"

#include <jansson.h>
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
    if (magic == SHARD_MAGIC_U16 && version == SHARD_VERSION_U16) itemsize = 2;
    else if (magic == SHARD_MAGIC_U32 && version == SHARD_VERSION_U32) itemsize = 4;
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
            return hone_errorf(HONE_ERR_FORMAT, "%s: token id %u at position %zu is too large (at most %d)", path,
                               id, i, INT32_MAX);
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

static hone_status not_an_integer(const json_t *e, const char *path, size_t line, size_t j) {
    char *text = json_dumps(e, JSON_ENCODE_ANY | JSON_COMPACT);
    hone_status st = hone_errorf(HONE_ERR_FORMAT, "%s:%zu: input_ids[%zu] is not an integer: %.40s", path, line, j,
                                 text ? text : "?");
    free(text);
    return st;
}

/* Appends one row's "input_ids" to the stream, growing the buffer by doubling. */
static hone_status append_ids(hone_token_stream *s, size_t *cap, const json_t *ids, const char *path, size_t line,
                              int vocab_size) {
    const size_t len = json_array_size(ids);
    if (s->n_tokens + len > *cap) {
        size_t new_cap = *cap ? *cap : 4096;
        while (new_cap < s->n_tokens + len) new_cap *= 2;
        int32_t *grown = hone_alloc(new_cap * sizeof(int32_t));
        if (!grown) return hone_error_context(HONE_ERR_NOMEM, "%s:%zu", path, line);
        if (s->n_tokens) memcpy(grown, s->tokens, s->n_tokens * sizeof(int32_t));
        hone_free(s->tokens);
        s->tokens = grown;
        *cap = new_cap;
    }
    for (size_t j = 0; j < len; j++) {
        const json_t *e = json_array_get(ids, j);
        if (!json_is_integer(e)) return not_an_integer(e, path, line, j);
        json_int_t id = json_integer_value(e);
        if (id < 0)
            return hone_errorf(HONE_ERR_FORMAT, "%s:%zu: input_ids[%zu] = %lld is negative", path, line, j,
                               (long long)id);
        if (vocab_size > 0 && id >= vocab_size)
            return hone_errorf(HONE_ERR_FORMAT, "%s:%zu: token id %lld is outside the vocabulary (size %d)", path,
                               line, (long long)id, vocab_size);
        if (id > INT32_MAX)
            return hone_errorf(HONE_ERR_FORMAT, "%s:%zu: token id %lld is too large (at most %d)", path, line,
                               (long long)id, INT32_MAX);
        s->tokens[s->n_tokens + j] = (int32_t)id;
    }
    s->n_tokens += len;
    return HONE_OK;
}

/* Appends n ids, checking each against the vocabulary (where = "file:line" for messages). */
static hone_status append_raw(hone_token_stream *s, size_t *cap, const int32_t *ids, size_t n, const char *where,
                              int vocab_size) {
    if (s->n_tokens + n > *cap) {
        size_t new_cap = *cap ? *cap : 4096;
        while (new_cap < s->n_tokens + n) new_cap *= 2;
        int32_t *grown = hone_alloc(new_cap * sizeof(int32_t));
        if (!grown) return hone_error_context(HONE_ERR_NOMEM, "%s", where);
        if (s->n_tokens) memcpy(grown, s->tokens, s->n_tokens * sizeof(int32_t));
        hone_free(s->tokens);
        s->tokens = grown;
        *cap = new_cap;
    }
    for (size_t i = 0; i < n; i++) {
        if (vocab_size > 0 && ids[i] >= vocab_size)
            return hone_errorf(HONE_ERR_INVALID,
                               "%s: the tokenizer produced id %d, outside the model's vocabulary (size %d): the "
                               "tokenizer does not belong to this model",
                               where, ids[i], vocab_size);
        s->tokens[s->n_tokens++] = ids[i];
    }
    return HONE_OK;
}

/* One text document: tokenizer(text) then EOS. */
static hone_status append_text(hone_token_stream *s, size_t *cap, const char *text, size_t len, const char *where,
                               int vocab_size, const hone_text_options *opt) {
    if (!opt || !opt->tokenizer)
        return hone_errorf(HONE_ERR_INVALID,
                           "%s: text needs a tokenizer: put tokenizer.json in the model folder or give --tokenizer",
                           where);
    int32_t *ids = NULL;
    size_t n = 0;
    hone_status st = hone_tokenizer_encode(opt->tokenizer, text, len, 1, &ids, &n);
    if (st != HONE_OK) return hone_error_context(st, "%s", where);
    st = append_raw(s, cap, ids, n, where, vocab_size);
    if (st == HONE_OK && opt->eos_id >= 0 && (n == 0 || ids[n - 1] != opt->eos_id))
        st = append_raw(s, cap, &opt->eos_id, 1, where, vocab_size);
    free(ids);
    return st;
}

static hone_status parse_row(hone_token_stream *s, size_t *cap, const char *text, size_t len, const char *path,
                             size_t line, int vocab_size, const hone_text_options *opt) {
    json_error_t err;
    json_t *row = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
    if (!row)
        return hone_errorf(HONE_ERR_FORMAT, "%s:%zu: invalid JSON at column %d: %s", path, line, err.column,
                           err.text);
    hone_status st = HONE_OK;
    const json_t *ids = json_is_object(row) ? json_object_get(row, "input_ids") : NULL;
    const json_t *doc = json_is_object(row) ? json_object_get(row, "text") : NULL;
    if (!json_is_object(row))
        st = hone_errorf(HONE_ERR_FORMAT, "%s:%zu: expected a JSON object with \"input_ids\" or \"text\" (one per line)",
                         path, line);
    else if (!ids && json_is_string(doc)) {
        char where[512];
        snprintf(where, sizeof where, "%s:%zu", path, line);
        st = append_text(s, cap, json_string_value(doc), json_string_length(doc), where, vocab_size, opt);
    } else if (!ids) st = hone_errorf(HONE_ERR_FORMAT, "%s:%zu: missing \"input_ids\" (or a string \"text\")", path, line);
    else if (!json_is_array(ids))
        st = hone_errorf(HONE_ERR_FORMAT, "%s:%zu: \"input_ids\" is not an array of integers", path, line);
    else st = append_ids(s, cap, ids, path, line, vocab_size);
    json_decref(row);
    return st;
}

static int is_blank(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r') return 0;
    return 1;
}

static hone_status load_jsonl(hone_token_stream *s, const char *path, int vocab_size,
                              const hone_text_options *opt) {
    hone_mapped_file f;
    HONE_TRY(hone_file_map(&f, path));
    hone_status st = HONE_OK;
    size_t cap = 0, line = 0;
    for (size_t pos = 0; pos < f.size && st == HONE_OK; line++) {
        const uint8_t *start = f.data + pos, *nl = memchr(start, '\n', f.size - pos);
        size_t len = nl ? (size_t)(nl - start) : f.size - pos;
        pos += len + 1;
        if (is_blank(start, len)) continue;
        st = parse_row(s, &cap, (const char *)start, len, path, line + 1, vocab_size, opt);
        s->n_documents++;
    }
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
    size_t cap = 0;
    hone_status st = append_text(s, &cap, (const char *)f.data, f.size, path, vocab_size, opt);
    s->n_documents = 1;
    hone_file_unmap(&f);
    return st;
}

hone_status hone_tokens_load(hone_token_stream *s, const char *path, int vocab_size) {
    return hone_tokens_load_text(s, path, vocab_size, NULL);
}

hone_status hone_tokens_load_text(hone_token_stream *s, const char *path, int vocab_size,
                                  const hone_text_options *text) {
    memset(s, 0, sizeof *s);
    hone_status st;
    if (has_suffix(path, ".bin")) st = load_shard(s, path, vocab_size);
    else if (has_suffix(path, ".jsonl") || has_suffix(path, ".json")) st = load_jsonl(s, path, vocab_size, text);
    else if (has_suffix(path, ".txt")) st = load_txt(s, path, vocab_size, text);
    else
        return hone_errorf(HONE_ERR_UNSUPPORTED,
                           "%s: unknown token file format (accepted: .bin llm.c shards, .txt text, or .jsonl/.json "
                           "with one {\"input_ids\": [...]} or {\"text\": \"...\"} object per line)",
                           path);
    if (st != HONE_OK) hone_tokens_free(s);
    return st;
}

void hone_tokens_free(hone_token_stream *s) {
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
            if (wide) write_u32_le(buf + 4 * j, id);
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

