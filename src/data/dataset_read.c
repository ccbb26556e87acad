/* Dataset files → rows → examples: memory-mapped (or inflated, for gzip) files; rows of JSONL, JSON arrays (parsed
 * one element at a time) or a single JSON object; format detection on the first rows; the reading loop; options
 * and names. The formats themselves are in formats*.c. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "data/dataset_internal.h"

#define DETECT_ROWS 16 /* rows whose detected formats must agree */

/* ---- names and options ---- */

static const char *const format_names[HONE_FORMAT_COUNT] = {
    "auto", "alpaca", "sharegpt", "messages", "dolly", "oasst", "sni", "self_instruct", "text", "tokens", "preference",
};
static const char *const kind_names[HONE_EXAMPLE_KIND_COUNT] = {"sft", "text", "tokens", "preference", "kto"};
static const char *const drop_names[HONE_DROP_COUNT] = {
    "unknown_role", "bad_tool_call", "identical_pair", "bad_turns", "empty_answer", "empty_text",
};

/* The FastChat template names (the templates themselves are in render_fastchat.c). */
static const char *const conversation_names[HONE_CONVERSATION_COUNT] = {"none", "vicuna_v1.1", "llama-2", "chatml"};

const char *hone_conversation_style_name(hone_conversation_style s) {
    return (unsigned)s < HONE_CONVERSATION_COUNT ? conversation_names[s] : "?";
}

hone_status hone_conversation_style_parse(const char *name, hone_conversation_style *out) {
    *out = HONE_CONVERSATION_NONE;
    if (!name) return HONE_OK;
    for (int s = 0; s < HONE_CONVERSATION_COUNT; s++)
        if (!strcmp(name, conversation_names[s])) {
            *out = (hone_conversation_style)s;
            return HONE_OK;
        }
    return hone_errorf(HONE_ERR_INVALID,
                       "unknown conversation template '%s' (known: vicuna_v1.1, llama-2, chatml: FastChat templates "
                       "rendered turn by turn as axolotl's type: sharegpt does; none: the chat template)",
                       name);
}

const char *hone_dataset_format_name(hone_dataset_format f) {
    return (unsigned)f < HONE_FORMAT_COUNT ? format_names[f] : "?";
}
const char *hone_example_kind_name(hone_example_kind k) {
    return (unsigned)k < HONE_EXAMPLE_KIND_COUNT ? kind_names[k] : "?";
}
const char *hone_drop_reason_name(hone_drop_reason r) { return (unsigned)r < HONE_DROP_COUNT ? drop_names[r] : "?"; }

hone_status hone_dataset_format_parse(const char *name, hone_dataset_format *out) {
    *out = HONE_FORMAT_AUTO;
    if (!name) return HONE_OK;
    if (!strcmp(name, "openai")) name = "messages";
    for (int f = 0; f < HONE_FORMAT_COUNT; f++)
        if (!strcmp(name, format_names[f])) {
            *out = (hone_dataset_format)f;
            return HONE_OK;
        }
    return hone_errorf(HONE_ERR_INVALID,
                       "unknown dataset format '%s' (known: auto, alpaca, sharegpt, messages (or openai), dolly, "
                       "oasst, sni, self_instruct, text, tokens, preference)",
                       name);
}

/* The string options, in struct order: name and help (with the default). */
#define STRING_OPTIONS(X)                                                                                              \
    X(format, "dataset format: auto (detect) | alpaca | sharegpt | messages | dolly | oasst | sni | "                  \
              "self_instruct | text | tokens | preference (default: auto)")                                            \
    X(field_messages, "field holding the message list (default: conversations, else messages)")                        \
    X(message_field_role, "message key holding the role (default: from, else role)")                                   \
    X(message_field_content, "message key holding the text (default: value, else content; oasst: text)")               \
    X(roles_user, "extra role names meaning user, comma-separated (built in: user, human, prompter)")                  \
    X(roles_assistant, "extra role names meaning assistant (built in: assistant, gpt, bot, model)")                    \
    X(roles_system, "extra role names meaning system (built in: system)")                                              \
    X(roles_tool, "extra role names meaning tool (built in: tool, observation, function)")                             \
    X(field_instruction, "instruction field (default: instruction)")                                                   \
    X(field_input, "input field (default: input; dolly: context)")                                                     \
    X(field_output, "output field (default: output; dolly: response)")                                                 \
    X(field_system, "system prompt field (default: system)")                                                           \
    X(field_history, "history field: [[query, answer], ...] (default: history)")                                       \
    X(field_prompt, "preference prompt field (default: prompt)")                                                       \
    X(field_chosen, "preferred completion field (default: chosen, else chosen_messages)")                              \
    X(field_rejected, "dispreferred completion field (default: rejected, else rejected_messages)")                     \
    X(field_label, "KTO label field, a boolean (default: label)")                                                      \
    X(field_text, "plain text field (default: text)")                                                                  \
    X(field_tools, "tool definitions field (default: tools)")                                                          \
    X(conversation, "render turn by turn with a FastChat template as axolotl's type: sharegpt does: vicuna_v1.1 | "    \
                    "llama-2 | chatml (default: none, the chat template)")

#define OPTION_INFO(field, help) {#field, 0, help},
#define OPTION_OFFSET(field, help) offsetof(hone_dataset_options, field),
static const hone_dataset_option_info option_info[] = {
    {"strict", 1, "rows that would be dropped (unknown role, bad turns, empty answer…) are errors"},
    STRING_OPTIONS(OPTION_INFO)};
static const size_t string_option_offset[] = {STRING_OPTIONS(OPTION_OFFSET)};
#undef OPTION_INFO
#undef OPTION_OFFSET
#define N_OPTIONS (sizeof option_info / sizeof option_info[0])

const hone_dataset_option_info *hone_dataset_option_list(size_t *n) {
    *n = N_OPTIONS;
    return option_info;
}

hone_status hone_dataset_option_set(hone_dataset_options *o, const char *name, const char *value) {
    if (!strcmp(name, "strict")) {
        if (strcmp(value, "true") && strcmp(value, "false"))
            return hone_errorf(HONE_ERR_INVALID, "dataset option strict: expected true or false, not '%s'", value);
        o->strict = !strcmp(value, "true");
        return HONE_OK;
    }
    for (size_t i = 1; i < N_OPTIONS; i++) {
        if (strcmp(name, option_info[i].name)) continue;
        hone_dataset_format f;
        hone_conversation_style style;
        if (!strcmp(name, "format")) HONE_TRY(hone_dataset_format_parse(value, &f));
        if (!strcmp(name, "conversation")) HONE_TRY(hone_conversation_style_parse(value, &style));
        *(const char **)((char *)o + string_option_offset[i - 1]) = value;
        return HONE_OK;
    }
    return hone_errorf(HONE_ERR_INVALID,
                       "unknown dataset option '%s' (known: format, strict, field_messages, "
                       "message_field_role, message_field_content, roles_*, field_instruction, field_input, "
                       "field_output, field_system, field_history, field_prompt, field_chosen, field_rejected, "
                       "field_label, field_text, field_tools, conversation)",
                       name);
}

/* ---- files ---- */

typedef struct {
    hone_mapped_file map;
    uint8_t *inflated; /* gzip input, decompressed */
    const uint8_t *data;
    size_t size;
} source;

/* Inflates every gzip member of in[0..n) into one heap buffer. */
static hone_status gunzip(const char *path, const uint8_t *in, size_t n, uint8_t **out, size_t *out_n) {
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) return hone_errorf(HONE_ERR_NOMEM, "%s: cannot start zlib", path);
    size_t cap = n < SIZE_MAX / 8 ? 4 * n + 4096 : n, used = 0, fed = 0;
    uint8_t *buf = malloc(cap);
    hone_status st = buf ? HONE_OK : hone_errorf(HONE_ERR_NOMEM, "%s: out of memory inflating", path);
    while (st == HONE_OK) {
        if (!z.avail_in && fed < n) { /* avail_in is 32-bit: feed at most 1 GiB at a time */
            z.next_in = (Bytef *)(in + fed);
            z.avail_in = (uInt)(n - fed < (1u << 30) ? n - fed : (1u << 30));
            fed += z.avail_in;
        }
        if (used == cap) {
            uint8_t *grown = realloc(buf, cap * 2);
            if (!grown) {
                st = hone_errorf(HONE_ERR_NOMEM, "%s: out of memory inflating (%zu bytes so far)", path, used);
                break;
            }
            buf = grown;
            cap *= 2;
        }
        z.next_out = buf + used;
        z.avail_out = (uInt)(cap - used < (1u << 30) ? cap - used : (1u << 30));
        const uInt room = z.avail_out;
        const int ret = inflate(&z, Z_NO_FLUSH);
        used += room - z.avail_out;
        if (ret == Z_STREAM_END) {
            if (!z.avail_in && fed == n) break;
            inflateReset(&z); /* another gzip member follows (as `cat a.gz b.gz` makes) */
        } else if (ret == Z_BUF_ERROR && z.avail_out && !z.avail_in && fed == n)
            st = hone_errorf(HONE_ERR_FORMAT, "%s: truncated gzip file", path);
        else if (ret != Z_OK && ret != Z_BUF_ERROR)
            st = hone_errorf(HONE_ERR_FORMAT, "%s: corrupt gzip data: %s", path, z.msg ? z.msg : "inflate failed");
    }
    inflateEnd(&z);
    if (st != HONE_OK) {
        free(buf);
        return st;
    }
    *out = buf;
    *out_n = used;
    return HONE_OK;
}

static void source_close(source *s) {
    hone_file_unmap(&s->map);
    free(s->inflated);
    memset(s, 0, sizeof *s);
}

static hone_status source_open(source *s, const char *path) {
    memset(s, 0, sizeof *s);
    HONE_TRY(hone_file_map(&s->map, path));
    s->data = s->map.data;
    s->size = s->map.size;
    if (s->size >= 2 && s->data[0] == 0x1f && s->data[1] == 0x8b) {
        hone_status st = gunzip(path, s->map.data, s->map.size, &s->inflated, &s->size);
        if (st != HONE_OK) {
            source_close(s);
            return st;
        }
        s->data = s->inflated;
    }
    return HONE_OK;
}

/* ---- rows ---- */

typedef enum { LAYOUT_JSONL, LAYOUT_ARRAY, LAYOUT_OBJECT } layout;

typedef struct {
    const char *path;
    const uint8_t *data;
    size_t size;
    layout layout;
    size_t start, start_line; /* the first row's offset and line (after '[' for an array) */
    size_t pos, line;         /* where the next row is looked for, and its line */
    size_t index;             /* rows returned so far */
    int done;
} row_iter;

static size_t count_newlines(const uint8_t *p, size_t n) {
    size_t count = 0;
    for (const uint8_t *end = p + n; (p = memchr(p, '\n', (size_t)(end - p))); p++) count++;
    return count;
}

static int is_space(uint8_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static void skip_space(row_iter *it) {
    while (it->pos < it->size && is_space(it->data[it->pos])) it->line += it->data[it->pos++] == '\n';
}

static int has_suffix(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcasecmp(s + a - b, suffix);
}

/* A parse error of a row starting on `line`: invalid UTF-8 (jansson checks every byte it reads) or bad JSON. */
static hone_status json_failure(const char *path, size_t line, const char *element, const json_error_t *err) {
    const size_t at = line + (err->line > 0 ? (size_t)err->line - 1 : 0);
    if (json_error_code(err) == json_error_invalid_utf8)
        return hone_errorf(HONE_ERR_FORMAT, "%s:%zu%s: invalid UTF-8 (%s): the file must be UTF-8 text", path, at,
                           element, err->text);
    return hone_errorf(HONE_ERR_FORMAT, "%s:%zu%s: invalid JSON at column %d: %s", path, at, element, err->column,
                       err->text);
}

static void iter_rewind(row_iter *it) {
    it->pos = it->start;
    it->line = it->start_line;
    it->index = 0;
    it->done = 0;
}

static hone_status iter_init(row_iter *it, const char *path, const uint8_t *data, size_t size) {
    memset(it, 0, sizeof *it);
    it->path = path;
    it->data = data;
    it->size = size;
    it->line = 1;
    if (size >= 3 && !memcmp(data, "\xEF\xBB\xBF", 3)) it->pos = 3; /* a UTF-8 byte-order mark */
    skip_space(it);
    if (it->pos == size) return hone_errorf(HONE_ERR_FORMAT, "%s: no rows: the file is empty", path);
    const uint8_t first = data[it->pos];
    if (first == '[') {
        it->layout = LAYOUT_ARRAY;
        it->pos++;
    } else if (first != '{')
        return hone_errorf(HONE_ERR_UNSUPPORTED,
                           "%s: not JSON: expected a JSON array, JSONL or a JSON object (optionally gzipped); CSV, "
                           "Parquet and plain text are not supported",
                           path);
    else if (has_suffix(path, ".jsonl") || has_suffix(path, ".jsonl.gz"))
        it->layout = LAYOUT_JSONL;
    else {
        /* .json holding '{': JSONL when its first line is a whole object, else one (multi-line) object */
        const uint8_t *nl = memchr(data + it->pos, '\n', size - it->pos);
        json_error_t err;
        json_t *row =
            json_loadb((const char *)data + it->pos, nl ? (size_t)(nl - data) - it->pos : size - it->pos, 0, &err);
        it->layout = row ? LAYOUT_JSONL : LAYOUT_OBJECT;
        json_decref(row);
    }
    it->start = it->pos;
    it->start_line = it->line;
    return HONE_OK;
}

/* The next row (*row = NULL at the end), with its line and index. */
static hone_status iter_next(row_iter *it, json_t **row, size_t *line, size_t *index) {
    *row = NULL;
    json_error_t err;
    char element[48] = "";
    if (it->done) return HONE_OK;
    if (it->layout == LAYOUT_JSONL) {
        while (it->pos < it->size) {
            const uint8_t *start = it->data + it->pos, *nl = memchr(start, '\n', it->size - it->pos);
            const size_t len = nl ? (size_t)(nl - start) : it->size - it->pos;
            const size_t this_line = it->line;
            it->pos += len + 1;
            it->line++;
            size_t k = 0;
            while (k < len && is_space(start[k])) k++;
            if (k == len) continue;
            *row = json_loadb((const char *)start, len, JSON_REJECT_DUPLICATES, &err);
            if (!*row) return json_failure(it->path, this_line, "", &err);
            *line = this_line;
            break;
        }
        if (!*row) it->done = 1;
    } else if (it->layout == LAYOUT_OBJECT) {
        *row = json_loadb((const char *)it->data + it->pos, it->size - it->pos, JSON_REJECT_DUPLICATES, &err);
        if (!*row) return json_failure(it->path, it->line, "", &err);
        *line = it->line;
        it->done = 1;
    } else {
        skip_space(it);
        if (it->pos < it->size && it->data[it->pos] == ']') {
            it->pos++;
            skip_space(it);
            it->done = 1;
            if (it->pos < it->size)
                return hone_errorf(HONE_ERR_FORMAT, "%s:%zu: data after the end of the JSON array", it->path, it->line);
            return HONE_OK;
        }
        if (it->index && (it->pos == it->size || it->data[it->pos] != ','))
            return hone_errorf(HONE_ERR_FORMAT, "%s:%zu: expected ',' or ']' after element %zu of the JSON array%s",
                               it->path, it->line, it->index - 1, it->pos == it->size ? " (the file ends)" : "");
        if (it->index) {
            it->pos++;
            skip_space(it);
        }
        snprintf(element, sizeof element, " (element %zu)", it->index);
        if (it->pos == it->size)
            return hone_errorf(HONE_ERR_FORMAT, "%s:%zu: the JSON array is not closed with ']'", it->path, it->line);
        const uint8_t *start = it->data + it->pos;
        *row =
            json_loadb((const char *)start, it->size - it->pos, JSON_DISABLE_EOF_CHECK | JSON_REJECT_DUPLICATES, &err);
        if (!*row) return json_failure(it->path, it->line, element, &err);
        *line = it->line;
        it->line += count_newlines(start, (size_t)err.position);
        it->pos += (size_t)err.position;
    }
    if (*row && !json_is_object(*row)) {
        json_decref(*row);
        *row = NULL;
        return hone_errorf(HONE_ERR_FORMAT, "%s:%zu%s: expected a JSON object (one row)", it->path, *line, element);
    }
    if (*row) *index = it->index++;
    return HONE_OK;
}

/* ---- detection and the reading loop ---- */

static void row_where(const row_iter *it, size_t line, size_t index, char *buf, size_t n) {
    if (it->layout == LAYOUT_ARRAY)
        snprintf(buf, n, "%s:%zu (element %zu)", it->path, line, index);
    else
        snprintf(buf, n, "%s:%zu", it->path, line);
}

/* Detects the format on the first rows: those whose format can be told must agree (the others fail later, when
 * parsed, with the field they lack); when none can be told, the first one's error. Then rewinds. */
static hone_status detect(ds_config *cfg, row_iter *it) {
    char first_where[512] = "", *first_error = NULL;
    hone_status first_st = HONE_OK, st = HONE_OK;
    hone_dataset_format format = HONE_FORMAT_AUTO;
    hone_example_kind kind = HONE_EXAMPLE_SFT;
    size_t rows = 0;
    for (size_t k = 0; k < DETECT_ROWS && st == HONE_OK; k++) {
        json_t *row;
        size_t line, index;
        st = iter_next(it, &row, &line, &index);
        if (st != HONE_OK || !row) break;
        rows++;
        char where[512];
        row_where(it, line, index, where, sizeof where);
        hone_dataset_format f;
        hone_example_kind kd;
        hone_status dst = ds_detect(cfg, row, where, &f, &kd);
        json_decref(row);
        if (dst != HONE_OK) {
            if (!first_error) first_st = dst, first_error = strdup(hone_error());
        } else if (!first_where[0]) {
            snprintf(first_where, sizeof first_where, "%s", where);
            format = f;
            kind = kd;
        } else if (f != format || kd != kind)
            st = hone_errorf(HONE_ERR_FORMAT,
                             "%s looks like %s (%s) but %s like %s (%s): the rows must share one format (set format "
                             "and the field names to choose)",
                             first_where, hone_dataset_format_name(format), hone_example_kind_name(kind), where,
                             hone_dataset_format_name(f), hone_example_kind_name(kd));
    }
    if (st == HONE_OK && !rows)
        st = hone_errorf(HONE_ERR_FORMAT, "%s: no rows: the file holds no JSON object", it->path);
    else if (st == HONE_OK && !first_where[0])
        st = hone_errorf(first_st, "%s", first_error ? first_error : "out of memory");
    free(first_error);
    cfg->format = format;
    cfg->kind = kind;
    iter_rewind(it);
    return st;
}

hone_status hone_dataset_read(const char *path, const hone_dataset_options *o, hone_example_fn fn, void *ctx,
                              hone_dataset_stats *stats) {
    static const hone_dataset_options defaults;
    hone_dataset_stats counts;
    memset(&counts, 0, sizeof counts);
    ds_config cfg;
    source src;
    row_iter it;
    hone_status st = ds_config_init(&cfg, o ? o : &defaults);
    if (st != HONE_OK) {
        if (stats) *stats = counts;
        return st;
    }
    st = source_open(&src, path);
    if (st == HONE_OK) {
        st = iter_init(&it, path, src.data, src.size);
        if (st == HONE_OK) st = detect(&cfg, &it);
        ds_config_resolve(&cfg);
        counts.format = cfg.format;
        counts.kind = cfg.kind;
        ds_row r = {
            .cfg = &cfg, .path = path, .in_array = it.layout == LAYOUT_ARRAY, .stats = &counts, .fn = fn, .ctx = ctx};
        while (st == HONE_OK) {
            json_t *row;
            st = iter_next(&it, &row, &r.line, &r.index);
            if (st != HONE_OK || !row) break;
            counts.rows++;
            st = ds_parse_row(&r, row);
            json_decref(row);
        }
        source_close(&src);
    }
    ds_config_free(&cfg);
    if (stats) *stats = counts;
    return st;
}

/* ---- whole datasets in memory ---- */

typedef struct {
    hone_dataset *ds;
    size_t cap;
} collector;

static hone_status collect(hone_example *ex, void *ctx) {
    collector *c = ctx;
    hone_dataset *ds = c->ds;
    if (ds->n_examples == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 1024;
        hone_example *grown = realloc(ds->examples, cap * sizeof *grown);
        if (!grown) return hone_errorf(HONE_ERR_NOMEM, "out of memory after %zu examples", ds->n_examples);
        ds->examples = grown;
        c->cap = cap;
    }
    ds->examples[ds->n_examples++] = *ex;
    memset(ex, 0, sizeof *ex);
    return HONE_OK;
}

hone_status hone_dataset_load(hone_dataset *ds, const char *path, const hone_dataset_options *o) {
    memset(ds, 0, sizeof *ds);
    collector c = {ds, 0};
    hone_status st = hone_dataset_read(path, o, collect, &c, &ds->stats);
    if (st != HONE_OK) hone_dataset_free(ds);
    return st;
}

void hone_example_free(hone_example *ex) {
    hone_conversation_free(&ex->conversation);
    hone_conversation_free(&ex->chosen);
    hone_conversation_free(&ex->rejected);
    free(ex->text);
    free(ex->instruction);
    free(ex->input);
    free(ex->input_ids);
    free(ex->labels);
    memset(ex, 0, sizeof *ex);
}

void hone_dataset_free(hone_dataset *ds) {
    for (size_t i = 0; i < ds->n_examples; i++) hone_example_free(&ds->examples[i]);
    free(ds->examples);
    memset(ds, 0, sizeof *ds);
}
