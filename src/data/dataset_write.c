/* Examples out: the canonical JSON of an example (what `hone data convert` writes, and reads back unchanged),
 * converting a file, and the counts as JSON. */
#include <stdlib.h>
#include <string.h>

#include "data/dataset_internal.h"

/* [{"role", "content", "weight"?, "name"?, "tool_call_id"?, "tool_calls"?}, ...]; NULL when out of memory. */
static json_t *messages_json(const hone_conversation *c) {
    json_t *list = json_array();
    for (size_t i = 0; list && i < c->n_messages; i++) {
        const hone_message *m = &c->messages[i];
        json_t *calls = m->tool_calls_json ? json_loads(m->tool_calls_json, 0, NULL) : NULL;
        json_t *msg = json_pack("{s:s, s:s}", "role", m->role, "content", m->content);
        int failed = !msg || (m->tool_calls_json && !calls);
        if (!failed && m->weight >= 0) failed = json_object_set_new(msg, "weight", json_integer(m->weight));
        if (!failed && m->name) failed = json_object_set_new(msg, "name", json_string(m->name));
        if (!failed && m->tool_call_id) failed = json_object_set_new(msg, "tool_call_id", json_string(m->tool_call_id));
        if (!failed && calls) failed = json_object_set(msg, "tool_calls", calls);
        json_decref(calls);
        if (failed || json_array_append_new(list, msg)) {
            if (!failed) msg = NULL; /* the failed append took it */
            json_decref(msg);
            json_decref(list);
            return NULL;
        }
    }
    return list;
}

static json_t *ids_json(const int32_t *ids, size_t n) {
    json_t *list = json_array();
    for (size_t i = 0; list && i < n; i++)
        if (json_array_append_new(list, json_integer(ids[i]))) {
            json_decref(list);
            return NULL;
        }
    return list;
}

/* obj[key] = value (taken); a NULL value (out of memory) fails. */
static int set(json_t *obj, const char *key, json_t *value) { return !value || json_object_set_new(obj, key, value); }

json_t *ds_example_json(const hone_example *ex) {
    json_t *obj = json_object();
    int failed = !obj;
    const hone_conversation *c = &ex->conversation;
    switch (ex->kind) {
        case HONE_EXAMPLE_TEXT:
            failed = failed || set(obj, "text", json_string(ex->text));
            break;
        case HONE_EXAMPLE_TOKENS:
            failed = failed || set(obj, "input_ids", ids_json(ex->input_ids, ex->n_tokens));
            if (ex->labels) failed = failed || set(obj, "labels", ids_json(ex->labels, ex->n_tokens));
            break;
        case HONE_EXAMPLE_PREFERENCE:
            failed = failed || set(obj, "prompt", messages_json(c)) || set(obj, "chosen", messages_json(&ex->chosen)) ||
                     set(obj, "rejected", messages_json(&ex->rejected));
            break;
        default:
            failed = failed || set(obj, "messages", messages_json(c));
            if (ex->kind == HONE_EXAMPLE_KTO) failed = failed || set(obj, "label", json_boolean(ex->label));
    }
    if (!failed && c->tools_json) failed = set(obj, "tools", json_loads(c->tools_json, 0, NULL));
    if (failed) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

char *hone_example_to_json(const hone_example *ex) {
    json_t *obj = ds_example_json(ex);
    char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (!text) hone_errorf(HONE_ERR_NOMEM, "out of memory writing an example as JSON");
    return text;
}

static hone_status write_example(hone_example *ex, void *ctx) {
    char *line = hone_example_to_json(ex);
    if (!line) return HONE_ERR_NOMEM;
    hone_status st = hone_atomic_write(ctx, line, strlen(line));
    if (st == HONE_OK) st = hone_atomic_write(ctx, "\n", 1);
    free(line);
    return st;
}

hone_status hone_dataset_convert(const char *in, const char *out, const hone_dataset_options *o,
                                 hone_dataset_stats *stats) {
    hone_atomic_file af;
    HONE_TRY(hone_atomic_open(&af, out));
    hone_status st = hone_dataset_read(in, o, write_example, &af, stats);
    if (st != HONE_OK) {
        hone_atomic_abort(&af);
        return st;
    }
    return hone_atomic_commit(&af);
}

char *hone_dataset_stats_to_json(const hone_dataset_stats *s) {
    json_t *by = json_object();
    for (int r = 0; by && r < HONE_DROP_COUNT; r++)
        json_object_set_new(by, hone_drop_reason_name((hone_drop_reason)r), json_integer((json_int_t)s->dropped_by[r]));
    json_t *obj = json_pack("{s:s, s:s, s:I, s:I, s:I, s:o}", "format", hone_dataset_format_name(s->format), "kind",
                            hone_example_kind_name(s->kind), "rows", (json_int_t)s->rows, "examples",
                            (json_int_t)s->examples, "dropped", (json_int_t)s->dropped, "dropped_by", by);
    char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    return text;
}
