/* A command's settings: defaults from its key table, then the --config YAML file, then command-line flags.
 *
 * Every value is parsed and type-checked as soon as it is read, so that errors can name the flag or the
 * file and line, and so that the getters cannot fail: asking for a key the table does not declare, with
 * the wrong type, or without a value is a programming error (HONE_ASSERT). */
#include "hone/settings.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

typedef struct {
    int present;
    char *text;    /* as given; LIST: the items joined with ',' */
    char **items;  /* LIST only */
    size_t n_items;
    hone_settings_record *records; /* RECORDS only; the strings are owned */
    size_t n_records;
    union {
        int64_t i;
        double f;
        int b;
    } num;
} value;

struct hone_settings {
    const hone_key_spec *specs; /* the caller's table, not copied: command tables are static */
    size_t n_specs;
    value *given;    /* from the file or the command line */
    value *defaults; /* parsed from the table */
    char *config_path; /* the --config file, for errors about RECORDS fields; NULL when none */
};

/* One flag from argv, checked but not yet applied: flags are applied after the file whatever their order. */
typedef struct {
    size_t key;
    value v;
} assignment;

static hone_status out_of_memory(void) { return hone_errorf(HONE_ERR_NOMEM, "out of memory"); }

static void value_free(value *v) {
    free(v->text);
    for (size_t i = 0; i < v->n_items; i++) free(v->items[i]);
    free(v->items);
    for (size_t i = 0; i < v->n_records; i++) {
        hone_settings_record *r = &v->records[i];
        free((char *)r->scalar);
        for (size_t j = 0; j < r->n_fields; j++) {
            free((char *)r->fields[j].name);
            free((char *)r->fields[j].value);
        }
        free((hone_settings_field *)r->fields);
    }
    free(v->records);
    memset(v, 0, sizeof *v);
}

static const char *type_metavar(hone_key_type type) {
    switch (type) {
    case HONE_KEY_STRING: return "TEXT";
    case HONE_KEY_INT: return "INT";
    case HONE_KEY_FLOAT: return "FLOAT";
    case HONE_KEY_BOOL: return "[BOOL]";
    case HONE_KEY_LIST:
    case HONE_KEY_RECORDS: return "LIST";
    }
    return "?";
}

/* "learning_rate" -> "learning-rate" (the caller frees the result). */
static char *flag_spelling(const char *key) {
    char *flag = strdup(key);
    if (flag)
        for (char *p = flag; *p; p++)
            if (*p == '_') *p = '-';
    return flag;
}

static long find_key(const hone_key_spec *specs, size_t n_specs, const char *name) {
    for (size_t i = 0; i < n_specs; i++)
        if (!strcmp(specs[i].name, name)) return (long)i;
    return -1;
}

/* ---- did-you-mean ---- */

size_t hone_edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    size_t *rows = malloc(3 * (lb + 1) * sizeof *rows);
    if (!rows) return SIZE_MAX;
    size_t *before = rows, *prev = rows + lb + 1, *cur = rows + 2 * (lb + 1);
    for (size_t j = 0; j <= lb; j++) prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] != b[j - 1];
            size_t d = prev[j] + 1;
            if (cur[j - 1] + 1 < d) d = cur[j - 1] + 1;
            if (prev[j - 1] + cost < d) d = prev[j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && before[j - 2] + 1 < d)
                d = before[j - 2] + 1;
            cur[j] = d;
        }
        size_t *t = before;
        before = prev;
        prev = cur;
        cur = t;
    }
    size_t d = prev[lb];
    free(rows);
    return d;
}

/* The declared key closest to `name` (underscore spelling), or NULL when none is close enough to be a
 * plausible typo. `extra` is one more candidate outside the table ("config" for flags), or NULL. */
static const char *closest_key(const hone_key_spec *specs, size_t n_specs, const char *name, const char *extra) {
    size_t limit = strlen(name) / 3 > 2 ? strlen(name) / 3 : 2;
    size_t best_d = SIZE_MAX;
    const char *best = NULL;
    for (size_t i = 0; i <= n_specs; i++) {
        const char *candidate = i < n_specs ? specs[i].name : extra;
        if (!candidate) continue;
        size_t d = hone_edit_distance(name, candidate);
        if (d < best_d) {
            best_d = d;
            best = candidate;
        }
    }
    return best_d <= limit ? best : NULL;
}

/* ---- values ---- */

static hone_status parse_int(const char *text, int64_t *out) {
    errno = 0;
    char *end;
    long long x = strtoll(text, &end, 10);
    if (!*text || isspace((unsigned char)*text) || *end)
        return hone_errorf(HONE_ERR_INVALID, "expected an integer, got '%s'", text);
    if (errno == ERANGE) return hone_errorf(HONE_ERR_INVALID, "integer '%s' is out of range", text);
    *out = x;
    return HONE_OK;
}

static hone_status parse_float(const char *text, double *out) {
    char *end;
    double x = strtod(text, &end);
    if (!*text || isspace((unsigned char)*text) || *end)
        return hone_errorf(HONE_ERR_INVALID, "expected a number, got '%s'", text);
    if (!isfinite(x)) return hone_errorf(HONE_ERR_INVALID, "expected a finite number, got '%s'", text);
    *out = x;
    return HONE_OK;
}

static hone_status parse_bool(const char *text, int *out) {
    static const char *const truths[] = {"true", "yes", "1"}, *const lies[] = {"false", "no", "0"};
    for (size_t i = 0; i < 3; i++) {
        if (!strcasecmp(text, truths[i])) {
            *out = 1;
            return HONE_OK;
        }
        if (!strcasecmp(text, lies[i])) {
            *out = 0;
            return HONE_OK;
        }
    }
    return hone_errorf(HONE_ERR_INVALID, "expected true or false (or yes/no, 1/0), got '%s'", text);
}

/* Takes ownership of `items` (which must hold n heap strings) and checks that none is empty. */
static hone_status set_list(value *v, char **items, size_t n) {
    v->items = items;
    v->n_items = n;
    size_t len = 1;
    for (size_t i = 0; i < n; i++) {
        if (!items[i][0]) return hone_errorf(HONE_ERR_INVALID, "item %zu of the list is empty", i + 1);
        len += strlen(items[i]) + 1;
    }
    v->text = malloc(len);
    if (!v->text) return out_of_memory();
    char *p = v->text;
    for (size_t i = 0; i < n; i++) p += sprintf(p, i ? ",%s" : "%s", items[i]);
    *p = 0;
    v->present = 1;
    return HONE_OK;
}

/* "q_proj, v_proj" -> {"q_proj", "v_proj"}: items are trimmed, empty ones rejected. */
static hone_status split_list(const char *text, value *v) {
    size_t n = 1;
    for (const char *p = text; *p; p++) n += *p == ',';
    char **items = calloc(n, sizeof *items);
    if (!items) return out_of_memory();
    const char *start = text;
    for (size_t i = 0; i < n; i++) {
        const char *end = strchr(start, ',');
        if (!end) end = start + strlen(start);
        const char *next = *end ? end + 1 : end;
        while (start < end && isspace((unsigned char)*start)) start++;
        while (end > start && isspace((unsigned char)end[-1])) end--;
        items[i] = strndup(start, (size_t)(end - start));
        if (!items[i]) {
            v->items = items;
            v->n_items = i;
            return out_of_memory();
        }
        start = next;
    }
    hone_status st = set_list(v, items, n);
    if (st == HONE_ERR_INVALID) return hone_errorf(st, "empty item in list '%s'", text);
    return st;
}

/* A RECORDS value as JSON: plain items as strings, mappings as objects of strings. */
static json_t *records_json(const value *v) {
    json_t *array = json_array();
    for (size_t i = 0; array && i < v->n_records; i++) {
        const hone_settings_record *r = &v->records[i];
        json_t *item = r->scalar ? json_string_nocheck(r->scalar) : json_object();
        for (size_t j = 0; item && !r->scalar && j < r->n_fields; j++)
            if (json_object_set_new_nocheck(item, r->fields[j].name, json_string_nocheck(r->fields[j].value)) != 0) {
                json_decref(item);
                item = NULL;
            }
        if (!item || json_array_append_new(array, item) != 0) {
            json_decref(array);
            array = NULL;
        }
    }
    return array;
}

/* Once the records are in place: the text (their JSON) and present. */
static hone_status records_finish(value *v) {
    json_t *array = records_json(v);
    v->text = array ? json_dumps(array, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(array);
    if (!v->text) return out_of_memory();
    v->present = 1;
    return HONE_OK;
}

/* "a.json, b.json" -> two plain records (at `line` of the file, 0 on the command line). */
static hone_status records_from_list(const char *text, int line, value *v) {
    value list = {0};
    hone_status st = split_list(text, &list);
    if (st == HONE_OK && !(v->records = calloc(list.n_items, sizeof *v->records))) st = out_of_memory();
    for (size_t i = 0; st == HONE_OK && i < list.n_items; i++) {
        v->records[i] = (hone_settings_record){.scalar = list.items[i], .line = line};
        list.items[i] = NULL;
        v->n_records++;
    }
    value_free(&list);
    return st == HONE_OK ? records_finish(v) : st;
}

/* Parses `text` as a value of `type` into `v` (which the caller frees, also on error). The message of an
 * error says what is wrong with the value; the caller adds where it came from. */
static hone_status parse_value(hone_key_type type, const char *text, value *v) {
    if (!*text) return hone_errorf(HONE_ERR_INVALID, "empty value");
    if (type == HONE_KEY_LIST) return split_list(text, v);
    if (type == HONE_KEY_RECORDS) return records_from_list(text, 0, v);
    v->text = strdup(text);
    if (!v->text) return out_of_memory();
    v->present = 1;
    switch (type) {
    case HONE_KEY_INT: return parse_int(text, &v->num.i);
    case HONE_KEY_FLOAT: return parse_float(text, &v->num.f);
    case HONE_KEY_BOOL: return parse_bool(text, &v->num.b);
    default: return HONE_OK;
    }
}

/* ---- YAML ---- */

typedef struct {
    yaml_parser_t parser;
    const char *path;
    hone_settings *s;
    int *first_line; /* per key: the line where the file gave it, 0 if not yet */
} yaml_reader;

static int line_of(const yaml_event_t *ev) { return (int)ev->start_mark.line + 1; }

static const yaml_char_t *event_anchor(const yaml_event_t *ev) {
    switch (ev->type) {
    case YAML_SCALAR_EVENT: return ev->data.scalar.anchor;
    case YAML_SEQUENCE_START_EVENT: return ev->data.sequence_start.anchor;
    case YAML_MAPPING_START_EVENT: return ev->data.mapping_start.anchor;
    default: return NULL;
    }
}

/* The next event; syntax errors and anchors/aliases (which a flat config has no use for, and which would
 * let one value silently stand for another) are reported with their line. */
static hone_status next_event(yaml_reader *r, yaml_event_t *ev) {
    if (!yaml_parser_parse(&r->parser, ev)) {
        const yaml_parser_t *p = &r->parser;
        if (p->error == YAML_MEMORY_ERROR) return out_of_memory();
        int line = (int)p->problem_mark.line + 1;
        const char *problem = p->problem ? p->problem : "syntax error";
        if (p->context)
            return hone_errorf(HONE_ERR_FORMAT, "%s:%d: invalid YAML: %s (%s, line %d)", r->path, line, problem,
                               p->context, (int)p->context_mark.line + 1);
        return hone_errorf(HONE_ERR_FORMAT, "%s:%d: invalid YAML: %s", r->path, line, problem);
    }
    if (ev->type == YAML_ALIAS_EVENT || event_anchor(ev)) {
        int line = line_of(ev);
        yaml_event_delete(ev);
        return hone_errorf(HONE_ERR_UNSUPPORTED, "%s:%d: YAML anchors and aliases (&name, *name) are not supported "
                           "in config files; write the value out", r->path, line);
    }
    return HONE_OK;
}

static const char *scalar_text(const yaml_event_t *ev) { return (const char *)ev->data.scalar.value; }

/* An unquoted empty value, ~ or null: the key is mentioned but left to its default. */
static int is_null_scalar(const yaml_event_t *ev) {
    if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return 0;
    const char *t = scalar_text(ev);
    return !*t || !strcmp(t, "~") || !strcmp(t, "null") || !strcmp(t, "Null") || !strcmp(t, "NULL");
}

/* Adds "FILE:LINE: key: " to an error about a value; errors from the parser already carry their place. */
static hone_status value_error(const yaml_reader *r, int line, const char *key, hone_status st) {
    if (st != HONE_ERR_INVALID) return st;
    return hone_error_context(st, "%s:%d: %s", r->path, line, key);
}

/* Reads the items of a sequence, whose start event (at `line`) is already consumed, into `v`. */
static hone_status read_sequence(yaml_reader *r, const char *key, int line, value *v) {
    size_t n = 0, cap = 0;
    char **items = NULL;
    hone_status st = HONE_OK;
    for (;;) {
        yaml_event_t ev;
        st = next_event(r, &ev);
        if (st != HONE_OK) break;
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            return value_error(r, line, key, set_list(v, items, n));
        }
        if (ev.type != YAML_SCALAR_EVENT) {
            st = value_error(r, line_of(&ev), key,
                             hone_errorf(HONE_ERR_INVALID, "list items must be plain values, not lists or mappings"));
            yaml_event_delete(&ev);
            break;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 8;
            char **grown = realloc(items, cap * sizeof *items);
            if (!grown) st = out_of_memory();
            else items = grown;
        }
        /* A null item is kept as "" so that set_list reports it like any other empty item. */
        if (st == HONE_OK && !(items[n] = strdup(is_null_scalar(&ev) ? "" : scalar_text(&ev)))) st = out_of_memory();
        if (st == HONE_OK) n++;
        yaml_event_delete(&ev);
        if (st != HONE_OK) break;
    }
    for (size_t i = 0; i < n; i++) free(items[i]);
    free(items);
    return st;
}

/* The fields of mapping item `index` (1-based) of `key`, whose start event is already consumed. */
static hone_status read_record_fields(yaml_reader *r, const char *key, size_t index, hone_settings_record *rec) {
    hone_settings_field *fields = NULL;
    size_t cap = 0;
    for (;;) {
        yaml_event_t kev, vev;
        HONE_TRY(next_event(r, &kev));
        if (kev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&kev);
            return HONE_OK;
        }
        const int line = line_of(&kev);
        if (kev.type != YAML_SCALAR_EVENT) {
            yaml_event_delete(&kev);
            return hone_errorf(HONE_ERR_INVALID, "%s:%d: %s item %zu: keys must be plain names", r->path, line, key,
                               index);
        }
        char *name = strdup(scalar_text(&kev));
        yaml_event_delete(&kev);
        if (!name) return out_of_memory();
        hone_status st = next_event(r, &vev);
        if (st != HONE_OK) {
            free(name);
            return st;
        }
        for (size_t j = 0; j < rec->n_fields && vev.type == YAML_SCALAR_EVENT; j++)
            if (!strcmp(rec->fields[j].name, name))
                st = hone_errorf(HONE_ERR_INVALID, "%s:%d: %s item %zu: duplicate key '%s' (first given on line %d)",
                                 r->path, line, key, index, name, rec->fields[j].line);
        if (st == HONE_OK && vev.type != YAML_SCALAR_EVENT)
            st = hone_errorf(HONE_ERR_INVALID, "%s:%d: %s item %zu: %s: expected a single value, got a %s", r->path,
                             line, key, index, name, vev.type == YAML_SEQUENCE_START_EVENT ? "list" : "mapping");
        if (st == HONE_OK && !is_null_scalar(&vev)) {
            if (rec->n_fields == cap) {
                cap = cap ? 2 * cap : 8;
                hone_settings_field *grown = realloc(fields, cap * sizeof *grown);
                if (!grown) st = out_of_memory();
                else rec->fields = fields = grown;
            }
            char *text = st == HONE_OK ? strdup(scalar_text(&vev)) : NULL;
            if (text) {
                fields[rec->n_fields++] = (hone_settings_field){.name = name, .value = text, .line = line};
                name = NULL;
            } else if (st == HONE_OK) {
                st = out_of_memory();
            }
        }
        free(name);
        yaml_event_delete(&vev);
        HONE_TRY(st);
    }
}

/* The items of a RECORDS sequence, whose start event is already consumed: plain values or flat mappings. Errors
 * carry their own FILE:LINE. */
static hone_status read_records(yaml_reader *r, const char *key, value *v) {
    size_t cap = 0;
    for (;;) {
        yaml_event_t ev;
        HONE_TRY(next_event(r, &ev));
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            return records_finish(v);
        }
        hone_status st = HONE_OK;
        if (v->n_records == cap) {
            cap = cap ? 2 * cap : 8;
            hone_settings_record *grown = realloc(v->records, cap * sizeof *grown);
            if (!grown) st = out_of_memory();
            else v->records = grown;
        }
        if (st == HONE_OK) {
            hone_settings_record *rec = &v->records[v->n_records++];
            *rec = (hone_settings_record){.line = line_of(&ev)};
            if (ev.type == YAML_MAPPING_START_EVENT)
                st = read_record_fields(r, key, v->n_records, rec);
            else if (ev.type != YAML_SCALAR_EVENT)
                st = hone_errorf(HONE_ERR_INVALID, "%s:%d: %s item %zu: expected a value or a mapping, got a list",
                                 r->path, rec->line, key, v->n_records);
            else if (is_null_scalar(&ev))
                st = hone_errorf(HONE_ERR_INVALID, "%s:%d: %s item %zu is empty", r->path, rec->line, key,
                                 v->n_records);
            else if (!(rec->scalar = strdup(scalar_text(&ev))))
                st = out_of_memory();
        }
        yaml_event_delete(&ev);
        HONE_TRY(st);
    }
}

/* Reads the value of `spec` (the next event) into `v`. */
static hone_status read_value(yaml_reader *r, const hone_key_spec *spec, value *v) {
    yaml_event_t ev;
    HONE_TRY(next_event(r, &ev));
    int line = line_of(&ev);
    hone_status st = HONE_OK;
    if (ev.type == YAML_SCALAR_EVENT && spec->type == HONE_KEY_RECORDS) {
        if (!is_null_scalar(&ev)) st = records_from_list(scalar_text(&ev), line, v);
    } else if (ev.type == YAML_SCALAR_EVENT) {
        if (!is_null_scalar(&ev)) st = parse_value(spec->type, scalar_text(&ev), v);
    } else if (ev.type == YAML_SEQUENCE_START_EVENT && spec->type == HONE_KEY_RECORDS) {
        yaml_event_delete(&ev);
        return read_records(r, spec->name, v);
    } else if (ev.type == YAML_SEQUENCE_START_EVENT && spec->type == HONE_KEY_LIST) {
        st = read_sequence(r, spec->name, line, v);
    } else if (ev.type == YAML_SEQUENCE_START_EVENT) {
        st = hone_errorf(HONE_ERR_INVALID, "expected a single value, got a list");
    } else {
        st = hone_errorf(HONE_ERR_INVALID, "expected %s, got a mapping",
                         spec->type == HONE_KEY_RECORDS ? "a list (of values or mappings)"
                         : spec->type == HONE_KEY_LIST  ? "a list of values"
                                                        : "a single value");
    }
    yaml_event_delete(&ev);
    return value_error(r, line, spec->name, st);
}

/* One `key: value` entry of the top-level mapping, given its key event. */
static hone_status read_entry(yaml_reader *r, const yaml_event_t *key_ev) {
    int line = line_of(key_ev);
    if (key_ev->type != YAML_SCALAR_EVENT)
        return hone_errorf(HONE_ERR_INVALID, "%s:%d: keys must be plain names", r->path, line);
    const char *name = scalar_text(key_ev);
    hone_settings *s = r->s;
    long k = find_key(s->specs, s->n_specs, name);
    if (k < 0) {
        const char *hint = closest_key(s->specs, s->n_specs, name, NULL);
        if (hint)
            return hone_errorf(HONE_ERR_INVALID, "%s:%d: unknown key '%s' (did you mean '%s'?)", r->path, line,
                               name, hint);
        return hone_errorf(HONE_ERR_INVALID, "%s:%d: unknown key '%s' (see --help for the keys)", r->path, line,
                           name);
    }
    if (r->first_line[k])
        return hone_errorf(HONE_ERR_INVALID, "%s:%d: duplicate key '%s' (first given on line %d)", r->path, line,
                           name, r->first_line[k]);
    r->first_line[k] = line;
    return read_value(r, &s->specs[k], &s->given[k]);
}

/* The document: nothing at all, or one mapping of keys. */
static hone_status read_document(yaml_reader *r) {
    yaml_event_t ev;
    HONE_TRY(next_event(r, &ev)); /* stream start */
    yaml_event_delete(&ev);
    HONE_TRY(next_event(r, &ev));
    int no_document = ev.type == YAML_STREAM_END_EVENT; /* only comments, or nothing */
    yaml_event_delete(&ev);
    if (no_document) return HONE_OK;
    HONE_TRY(next_event(r, &ev));
    int empty = ev.type == YAML_SCALAR_EVENT && is_null_scalar(&ev);
    if (ev.type != YAML_MAPPING_START_EVENT && !empty) {
        int line = line_of(&ev);
        yaml_event_delete(&ev);
        return hone_errorf(HONE_ERR_INVALID, "%s:%d: the file must be a mapping of 'key: value' lines", r->path,
                           line);
    }
    yaml_event_delete(&ev);
    for (;;) {
        if (empty) break;
        HONE_TRY(next_event(r, &ev));
        if (ev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        hone_status st = read_entry(r, &ev);
        yaml_event_delete(&ev);
        HONE_TRY(st);
    }
    HONE_TRY(next_event(r, &ev)); /* document end */
    yaml_event_delete(&ev);
    HONE_TRY(next_event(r, &ev));
    int line = line_of(&ev);
    int more = ev.type != YAML_STREAM_END_EVENT;
    yaml_event_delete(&ev);
    if (more) return hone_errorf(HONE_ERR_INVALID, "%s:%d: only one YAML document is allowed", r->path, line);
    return HONE_OK;
}

static hone_status load_yaml(hone_settings *s, const char *path) {
    char *text;
    size_t size;
    HONE_TRY(hone_file_read(path, &text, &size));
    yaml_reader r = {.path = path, .s = s};
    r.first_line = calloc(s->n_specs + 1, sizeof *r.first_line);
    if (!r.first_line || !yaml_parser_initialize(&r.parser)) {
        free(r.first_line);
        free(text);
        return out_of_memory();
    }
    yaml_parser_set_input_string(&r.parser, (const unsigned char *)text, size);
    hone_status st = read_document(&r);
    yaml_parser_delete(&r.parser);
    free(r.first_line);
    free(text);
    return st;
}

/* ---- command line ---- */

static hone_status unknown_flag(const hone_settings *s, const char *name) {
    char *flag = flag_spelling(name);
    if (!flag) return out_of_memory();
    const char *hint = closest_key(s->specs, s->n_specs, name, "config");
    char *hint_flag = hint ? flag_spelling(hint) : NULL;
    hone_status st;
    if (hint && !hint_flag) st = out_of_memory();
    else if (hint)
        st = hone_errorf(HONE_ERR_INVALID, "unknown option --%s (did you mean --%s?)", flag, hint_flag);
    else st = hone_errorf(HONE_ERR_INVALID, "unknown option --%s (see --help for the options)", flag);
    free(flag);
    free(hint_flag);
    return st;
}

static int is_flag(const char *arg) { return arg[0] == '-' && arg[1] == '-'; }

/* Reads argv into checked assignments (in order) and the --config path, without applying anything. */
static hone_status parse_args(const hone_settings *s, int argc, char **argv, assignment *out, size_t *n_out,
                              const char **config_path) {
    *n_out = 0;
    *config_path = NULL;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (!is_flag(arg) || !arg[2] || arg[2] == '=')
            return hone_errorf(HONE_ERR_INVALID, "unexpected argument '%s' (options are given as --key value)", arg);
        const char *eq = strchr(arg, '=');
        char *name = strndup(arg + 2, eq ? (size_t)(eq - arg - 2) : strlen(arg + 2));
        if (!name) return out_of_memory();
        for (char *p = name; *p; p++)
            if (*p == '-') *p = '_';
        int is_config = !strcmp(name, "config");
        long k = is_config ? -1 : find_key(s->specs, s->n_specs, name);
        if (!is_config && k < 0) {
            hone_status st = unknown_flag(s, name);
            free(name);
            return st;
        }
        free(name);
        const char *text = eq ? eq + 1 : NULL;
        if (!text && i + 1 < argc && !is_flag(argv[i + 1])) text = argv[++i];
        if (!text && k >= 0 && s->specs[k].type == HONE_KEY_BOOL) text = "true";
        if (is_config) {
            if (!text || !*text) return hone_errorf(HONE_ERR_INVALID, "--config: missing value (a YAML file)");
            if (*config_path) return hone_errorf(HONE_ERR_INVALID, "--config given twice (only one file is read)");
            *config_path = text;
            continue;
        }
        char *flag = flag_spelling(s->specs[k].name);
        if (!flag) return out_of_memory();
        hone_status st;
        if (!text) {
            st = hone_errorf(HONE_ERR_INVALID, "--%s: missing value (expected %s)", flag,
                             type_metavar(s->specs[k].type));
        } else {
            assignment *a = &out[(*n_out)++];
            a->key = (size_t)k;
            st = parse_value(s->specs[k].type, text, &a->v);
            if (st == HONE_ERR_INVALID) hone_error_context(st, "--%s", flag);
        }
        free(flag);
        HONE_TRY(st);
    }
    return HONE_OK;
}

/* ---- public API ---- */

/* Table mistakes are programming errors: caught on every run, whatever the arguments. */
static void check_specs(const hone_key_spec *specs, size_t n_specs) {
    for (size_t i = 0; i < n_specs; i++) {
        HONE_ASSERT(specs[i].name && specs[i].name[0] && !strchr(specs[i].name, '-'));
        HONE_ASSERT(strcmp(specs[i].name, "config") != 0);
        HONE_ASSERT(specs[i].type >= HONE_KEY_STRING && specs[i].type <= HONE_KEY_RECORDS);
        HONE_ASSERT(find_key(specs, i, specs[i].name) < 0);
    }
}

static hone_status parse_defaults(hone_settings *s) {
    for (size_t k = 0; k < s->n_specs; k++) {
        const hone_key_spec *spec = &s->specs[k];
        if (!spec->default_value) continue;
        hone_status st = parse_value(spec->type, spec->default_value, &s->defaults[k]);
        if (st == HONE_ERR_NOMEM) return st;
        if (st != HONE_OK) hone_log(HONE_LOG_ERROR, "default of key '%s': %s", spec->name, hone_error());
        HONE_ASSERT(st == HONE_OK);
    }
    return HONE_OK;
}

static hone_status parse_all(hone_settings *s, int argc, char **argv, assignment *flags, size_t *n_flags) {
    HONE_TRY(parse_defaults(s));
    const char *config_path;
    HONE_TRY(parse_args(s, argc, argv, flags, n_flags, &config_path));
    if (config_path && !(s->config_path = strdup(config_path))) return out_of_memory();
    if (config_path) HONE_TRY(load_yaml(s, config_path));
    for (size_t i = 0; i < *n_flags; i++) {
        value_free(&s->given[flags[i].key]);
        s->given[flags[i].key] = flags[i].v;
        memset(&flags[i].v, 0, sizeof flags[i].v);
    }
    return HONE_OK;
}

hone_status hone_settings_parse(hone_settings **out, const hone_key_spec *specs, size_t n_specs, int argc,
                                char **argv) {
    *out = NULL;
    check_specs(specs, n_specs);
    hone_settings *s = calloc(1, sizeof *s);
    assignment *flags = calloc((size_t)argc + 1, sizeof *flags);
    if (s) {
        s->specs = specs;
        s->n_specs = n_specs;
        s->given = calloc(n_specs + 1, sizeof *s->given);
        s->defaults = calloc(n_specs + 1, sizeof *s->defaults);
    }
    if (!s || !flags || !s->given || !s->defaults) {
        hone_settings_free(s);
        free(flags);
        return out_of_memory();
    }
    size_t n_flags = 0;
    hone_status st = parse_all(s, argc, argv, flags, &n_flags);
    for (size_t i = 0; i < n_flags; i++) value_free(&flags[i].v);
    free(flags);
    if (st != HONE_OK) {
        hone_settings_free(s);
        return st;
    }
    *out = s;
    return HONE_OK;
}

void hone_settings_free(hone_settings *s) {
    if (!s) return;
    for (size_t k = 0; k < s->n_specs; k++) {
        if (s->given) value_free(&s->given[k]);
        if (s->defaults) value_free(&s->defaults[k]);
    }
    free(s->given);
    free(s->defaults);
    free(s->config_path);
    free(s);
}

static size_t key_index(const hone_settings *s, const char *key) {
    long k = find_key(s->specs, s->n_specs, key);
    HONE_ASSERT(k >= 0);
    return (size_t)k;
}

/* The value in force for key k: given, else default; NULL when neither. */
static const value *current(const hone_settings *s, size_t k) {
    if (s->given[k].present) return &s->given[k];
    if (s->defaults[k].present) return &s->defaults[k];
    return NULL;
}

static const value *typed_value(const hone_settings *s, const char *key, hone_key_type type) {
    size_t k = key_index(s, key);
    HONE_ASSERT(s->specs[k].type == type);
    const value *v = current(s, k);
    HONE_ASSERT(v != NULL);
    return v;
}

int hone_settings_is_set(const hone_settings *s, const char *key) { return s->given[key_index(s, key)].present; }

const char *hone_settings_str(const hone_settings *s, const char *key) {
    const value *v = current(s, key_index(s, key));
    return v ? v->text : NULL;
}

int64_t hone_settings_int(const hone_settings *s, const char *key) {
    return typed_value(s, key, HONE_KEY_INT)->num.i;
}

double hone_settings_float(const hone_settings *s, const char *key) {
    return typed_value(s, key, HONE_KEY_FLOAT)->num.f;
}

int hone_settings_bool(const hone_settings *s, const char *key) { return typed_value(s, key, HONE_KEY_BOOL)->num.b; }

size_t hone_settings_list(const hone_settings *s, const char *key, const char *const **items) {
    size_t k = key_index(s, key);
    HONE_ASSERT(s->specs[k].type == HONE_KEY_LIST);
    const value *v = current(s, k);
    *items = v ? (const char *const *)v->items : NULL;
    return v ? v->n_items : 0;
}

const char *hone_settings_config_path(const hone_settings *s) { return s->config_path; }

size_t hone_settings_records(const hone_settings *s, const char *key, const hone_settings_record **items) {
    size_t k = key_index(s, key);
    HONE_ASSERT(s->specs[k].type == HONE_KEY_RECORDS);
    const value *v = current(s, k);
    *items = v ? v->records : NULL;
    return v ? v->n_records : 0;
}

hone_status hone_settings_check_record(const hone_settings *s, const char *key, size_t index,
                                       const hone_key_spec *specs, size_t n_specs) {
    const hone_settings_record *items;
    HONE_ASSERT(index < hone_settings_records(s, key, &items));
    const hone_settings_record *rec = &items[index];
    for (size_t i = 0; i < rec->n_fields; i++) {
        const hone_settings_field *f = &rec->fields[i];
        long k = find_key(specs, n_specs, f->name);
        if (k < 0) {
            const char *hint = closest_key(specs, n_specs, f->name, NULL);
            if (hint)
                return hone_errorf(HONE_ERR_INVALID, "%s:%d: %s item %zu: unknown key '%s' (did you mean '%s'?)",
                                   s->config_path, f->line, key, index + 1, f->name, hint);
            return hone_errorf(HONE_ERR_INVALID, "%s:%d: %s item %zu: unknown key '%s' (see --help for the keys)",
                               s->config_path, f->line, key, index + 1, f->name);
        }
        value parsed = {0};
        hone_status st = parse_value(specs[k].type, f->value, &parsed);
        value_free(&parsed);
        if (st == HONE_ERR_INVALID)
            return hone_error_context(st, "%s:%d: %s item %zu: %s", s->config_path, f->line, key, index + 1, f->name);
        HONE_TRY(st);
    }
    return HONE_OK;
}

const char *hone_settings_record_str(const hone_settings_record *r, const char *name) {
    for (size_t i = 0; i < r->n_fields; i++)
        if (!strcmp(r->fields[i].name, name)) return r->fields[i].value;
    return NULL;
}

int64_t hone_settings_record_int(const hone_settings_record *r, const char *name, int64_t fallback) {
    const char *text = hone_settings_record_str(r, name);
    if (!text) return fallback;
    int64_t x = 0;
    HONE_ASSERT(parse_int(text, &x) == HONE_OK);
    return x;
}

double hone_settings_record_float(const hone_settings_record *r, const char *name, double fallback) {
    const char *text = hone_settings_record_str(r, name);
    if (!text) return fallback;
    double x = 0;
    HONE_ASSERT(parse_float(text, &x) == HONE_OK);
    return x;
}

int hone_settings_record_bool(const hone_settings_record *r, const char *name, int fallback) {
    const char *text = hone_settings_record_str(r, name);
    if (!text) return fallback;
    int x = 0;
    HONE_ASSERT(parse_bool(text, &x) == HONE_OK);
    return x;
}

hone_status hone_settings_require(const hone_settings *s, const char *key) {
    if (current(s, key_index(s, key))) return HONE_OK;
    char *flag = flag_spelling(key);
    if (!flag) return out_of_memory();
    hone_errorf(HONE_ERR_INVALID, "missing required option --%s (or '%s:' in the --config file)", flag, key);
    free(flag);
    return HONE_ERR_INVALID;
}

/* jansson prints reals with a fixed number of significant digits (17 unless told otherwise), which turns
 * 2e-5 into 2.0000000000000002e-05. The fewest digits that still read back exactly keep the JSON both
 * exact and as the user wrote it. */
static int round_trip_digits(double x) {
    char buf[64];
    for (int digits = 1; digits < 17; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, x);
        if (strtod(buf, NULL) == x) return digits;
    }
    return 17;
}

static json_t *value_to_json(hone_key_type type, const value *v) {
    switch (type) {
    case HONE_KEY_INT: return json_integer((json_int_t)v->num.i);
    case HONE_KEY_FLOAT: return json_real(v->num.f);
    case HONE_KEY_BOOL: return json_boolean(v->num.b);
    case HONE_KEY_RECORDS: return records_json(v);
    case HONE_KEY_LIST: {
        json_t *array = json_array();
        for (size_t i = 0; array && i < v->n_items; i++)
            if (json_array_append_new(array, json_string(v->items[i])) != 0) {
                json_decref(array);
                array = NULL;
            }
        return array;
    }
    default: return json_string(v->text);
    }
}

char *hone_settings_to_json(const hone_settings *s) {
    json_t *obj = json_object();
    int digits = 1;
    for (size_t k = 0; obj && k < s->n_specs; k++) {
        const value *v = current(s, k);
        if (!v) continue;
        int needed = s->specs[k].type == HONE_KEY_FLOAT ? round_trip_digits(v->num.f) : 1;
        if (needed > digits) digits = needed;
        if (json_object_set_new(obj, s->specs[k].name, value_to_json(s->specs[k].type, v)) != 0) {
            json_decref(obj);
            obj = NULL;
        }
    }
    char *text = obj ? json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(digits)) : NULL;
    json_decref(obj);
    if (!text) out_of_memory();
    return text;
}

void hone_settings_print_help(const hone_key_spec *specs, size_t n_specs, FILE *out) {
    /* Each line's left column ("--learning-rate FLOAT") is padded to the widest one so the help aligns. */
    static const char config_left[] = "--config FILE";
    int width = (int)strlen(config_left);
    for (size_t i = 0; i < n_specs; i++) {
        int w = (int)(strlen(specs[i].name) + 3 + strlen(type_metavar(specs[i].type)));
        if (w > width) width = w;
    }
    fprintf(out, "  %-*s   read options from a YAML file (flags override it)\n", width, config_left);
    for (size_t i = 0; i < n_specs; i++) {
        const char *metavar = type_metavar(specs[i].type);
        int w = (int)(strlen(specs[i].name) + 3 + strlen(metavar));
        fputs("  --", out);
        for (const char *p = specs[i].name; *p; p++) fputc(*p == '_' ? '-' : *p, out);
        fprintf(out, " %s%*s   %s", metavar, width - w, "", specs[i].help ? specs[i].help : "");
        if (specs[i].default_value) fprintf(out, " (default: %s)", specs[i].default_value);
        fputc('\n', out);
    }
}
