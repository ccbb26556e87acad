/* Conversation rows: sharegpt ({"conversations": [{"from", "value"}]}), OpenAI messages ({"messages": [{"role",
 * "content"}]}) — for SFT and, with a boolean label, KTO — and OpenAssistant message trees.
 *
 * A message's role key is message_field_role, else "from" when the message has it, else "role"; its content key
 * is message_field_content, else "value", else "content". Content is a string or a list of typed parts whose
 * text parts ({"type": "text", "text"|"value": ...}, OpenAI and LLaMA-Factory v1) are joined with nothing in
 * between; other part types are unsupported. "weight" or "loss_weight" (0 or 1), "name" and "tool_calls" (an
 * array, kept as JSON) are read; other keys are ignored. A sharegpt function_call turn holds JSON {"name",
 * "arguments"} (or a list of them) and becomes an assistant message with empty content and tool_calls
 * [{"type": "function", "function": {"name", "arguments"}}], as LLaMA-Factory's converter reads it; observation
 * turns become role "tool". */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset_internal.h"

/* sharegpt's function_call value → an OpenAI-style tool_calls array (NULL and a verdict when malformed). */
static char *function_call_json(const char *value, const char *what, ds_verdict *v) {
    json_error_t err;
    json_t *calls = json_loads(value, 0, &err), *out = json_array();
    if (calls && json_is_object(calls)) {
        json_t *one = json_array();
        json_array_append_new(one, calls);
        calls = one;
    }
    int ok = calls && json_is_array(calls) && json_array_size(calls) && out;
    for (size_t i = 0; ok && i < json_array_size(calls); i++) {
        json_t *call = json_array_get(calls, i), *name = json_object_get(call, "name"),
               *args = json_object_get(call, "arguments");
        ok = json_is_object(call) && json_is_string(name) && args;
        if (ok)
            ok = !json_array_append_new(
                out, json_pack("{s:s, s:{s:O, s:O}}", "type", "function", "function", "name", name, "arguments", args));
    }
    char *text = ok ? json_dumps(out, JSON_COMPACT) : NULL;
    if (!text)
        ds_verdict_set(v, HONE_DROP_BAD_TOOL_CALL,
                       "%s: a function_call must hold JSON {\"name\", \"arguments\"} "
                       "or a list of them",
                       what);
    json_decref(calls);
    json_decref(out);
    return text;
}

/* Content: a string, or typed parts whose text is joined. *out is malloc'ed. */
static hone_status read_content(ds_row *r, const json_t *c, const char *what, const char *key, char **out) {
    if (json_is_string(c)) {
        *out = strdup(json_string_value(c));
        return *out ? HONE_OK : hone_errorf(HONE_ERR_NOMEM, "out of memory for a message");
    }
    if (!json_is_array(c))
        return ds_error(r, HONE_ERR_FORMAT, "%s: field \"%s\" must be a string or a list of text parts", what, key);
    size_t total = 0;
    for (size_t i = 0; i < json_array_size(c); i++) {
        const json_t *part = json_array_get(c, i), *type = json_object_get(part, "type");
        const json_t *text = ds_get(part, "text") ? ds_get(part, "text") : ds_get(part, "value");
        if (!json_is_string(type))
            return ds_error(r, HONE_ERR_FORMAT, "%s: %s[%zu] must be an object with a string \"type\"", what, key, i);
        if (strcmp(json_string_value(type), "text"))
            return ds_error(r, HONE_ERR_UNSUPPORTED,
                            "%s: %s[%zu] has type \"%s\": only text parts are supported (no images, audio or files)",
                            what, key, i, json_string_value(type));
        if (!json_is_string(text))
            return ds_error(r, HONE_ERR_FORMAT, "%s: %s[%zu] is a text part without a string \"text\" (or \"value\")",
                            what, key, i);
        total += json_string_length(text);
    }
    char *s = malloc(total + 1);
    if (!s) return hone_errorf(HONE_ERR_NOMEM, "out of memory for a message");
    size_t used = 0;
    for (size_t i = 0; i < json_array_size(c); i++) {
        const json_t *part = json_array_get(c, i);
        const json_t *text = ds_get(part, "text") ? ds_get(part, "text") : ds_get(part, "value");
        memcpy(s + used, json_string_value(text), json_string_length(text));
        used += json_string_length(text);
    }
    s[used] = 0;
    *out = s;
    return HONE_OK;
}

/* "weight" / "loss_weight": 0 or 1 (-1 when absent). */
static hone_status read_weight(ds_row *r, const json_t *msg, const char *what, int *weight) {
    const char *key = ds_get(msg, "weight") ? "weight" : "loss_weight";
    const json_t *w = ds_get(msg, key);
    *weight = -1;
    if (!w) return HONE_OK;
    double x = json_is_number(w) ? json_number_value(w) : NAN;
    if (x != 0 && x != 1)
        return ds_error(r, HONE_ERR_UNSUPPORTED, "%s: \"%s\" must be 0 or 1 (fractional weights are not supported)",
                        what, key);
    *weight = (int)x;
    return HONE_OK;
}

hone_status ds_parse_message(ds_row *r, const json_t *msg, const char *what, ds_msgs *out, ds_verdict *v) {
    const hone_dataset_options *o = r->cfg->o;
    if (!json_is_object(msg)) return ds_error(r, HONE_ERR_FORMAT, "%s must be a message object", what);
    const char *role_key = o->message_field_role          ? o->message_field_role
                           : json_object_get(msg, "from") ? "from"
                                                          : "role";
    /* a message with neither content key is named after its role key's family in the error */
    const char *content_key = o->message_field_content                                      ? o->message_field_content
                              : json_object_get(msg, "value")                               ? "value"
                              : json_object_get(msg, "content") || strcmp(role_key, "from") ? "content"
                                                                                            : "value";
    const char *role_text, *name, *call_id;
    HONE_TRY(ds_get_string(r, msg, role_key, 1, what, &role_text));
    HONE_TRY(ds_get_string(r, msg, "name", 0, what, &name));
    HONE_TRY(ds_get_string(r, msg, "tool_call_id", 0, what, &call_id));
    int weight, known;
    HONE_TRY(read_weight(r, msg, what, &weight));
    const json_t *calls = ds_get(msg, "tool_calls"), *content = ds_get(msg, content_key);
    if (calls && !json_is_array(calls))
        return ds_error(r, HONE_ERR_FORMAT, "%s: field \"tool_calls\" must be an array", what);
    if (calls && !json_array_size(calls)) calls = NULL;
    if (!content && !calls) return ds_error(r, HONE_ERR_FORMAT, "%s: missing field \"%s\"", what, content_key);
    char *text = NULL;
    if (content) HONE_TRY(read_content(r, content, what, content_key, &text));

    const ds_role role = ds_role_lookup(r->cfg, role_text, &known);
    char *calls_json = NULL;
    hone_status st = HONE_OK;
    if (!known)
        ds_verdict_set(v, HONE_DROP_UNKNOWN_ROLE, "%s: unknown role \"%s\"", what, role_text);
    else if (role == DS_ROLE_FUNCTION_CALL) {
        if ((calls_json = function_call_json(text ? text : "", what, v)) && text) text[0] = 0;
    } else if (calls && !(calls_json = json_dumps(calls, JSON_COMPACT)))
        st = hone_errorf(HONE_ERR_NOMEM, "out of memory for tool calls");
    if (st == HONE_OK && known) st = ds_msgs_push(out, ds_role_name(role), text ? text : "", text ? strlen(text) : 0);
    if (st == HONE_OK && known) {
        hone_message *m = &out->v[out->n - 1];
        m->weight = weight;
        m->tool_calls_json = calls_json;
        calls_json = NULL;
        if ((name && !(m->name = strdup(name))) || (call_id && !(m->tool_call_id = strdup(call_id))))
            st = hone_errorf(HONE_ERR_NOMEM, "out of memory for a message");
    }
    free(calls_json);
    free(text);
    return st;
}

hone_status ds_parse_messages(ds_row *r, const json_t *list, const char *what, ds_msgs *out, ds_verdict *v) {
    if (!json_is_array(list)) return ds_error(r, HONE_ERR_FORMAT, "field \"%s\" must be a list of messages", what);
    for (size_t i = 0; i < json_array_size(list); i++) {
        char item[160];
        snprintf(item, sizeof item, "%s[%zu]", what, i);
        HONE_TRY(ds_parse_message(r, json_array_get(list, i), item, out, v));
    }
    return HONE_OK;
}

const json_t *ds_row_messages(const ds_row *r, const json_t *row, const char **name) {
    const char *option = r->cfg->o->field_messages;
    *name = option ? option : ds_get(row, "conversations") ? "conversations" : "messages";
    return ds_get(row, *name);
}

/* Ends a conversation row: the turn check, then the example is emitted, or dropped with its verdict. */
static hone_status finish_conversation(ds_row *r, ds_msgs *m, ds_verdict *v, hone_example *ex, hone_status st) {
    if (st == HONE_OK && v->reason == HONE_DROP_COUNT) ds_check_turns(m->v, m->n, 1, v);
    ds_msgs_take(m, &ex->conversation);
    if (st == HONE_OK && v->reason != HONE_DROP_COUNT) st = ds_drop(r, v);
    else if (st == HONE_OK) return ds_emit(r, ex);
    hone_example_free(ex);
    return st;
}

hone_status ds_parse_chat(ds_row *r, const json_t *row) {
    const char *name;
    const json_t *list = ds_row_messages(r, row, &name);
    if (!list) return ds_error(r, HONE_ERR_FORMAT, "missing field \"%s\" (the list of messages)", name);
    ds_verdict v = {.reason = HONE_DROP_COUNT};
    ds_msgs m = {0};
    hone_example ex = {.kind = r->cfg->kind};
    hone_status st = ds_parse_messages(r, list, name, &m, &v);
    if (st == HONE_OK) st = ds_add_row_system(r, row, &m);
    if (st == HONE_OK) st = ds_row_tools(r, row, &ex.conversation.tools_json);
    if (st == HONE_OK && ex.kind == HONE_EXAMPLE_KTO) st = ds_row_label(r, row, &ex.label);
    return finish_conversation(r, &m, &v, &ex, st);
}

/* ---- OpenAssistant trees ---- */

/* The reply to follow: the lowest "rank" (0 = best); unranked replies come after ranked ones, ties and unranked
 * replies in list order; replies marked "deleted": true are never followed. NULL when there is none. */
static const json_t *best_reply(ds_row *r, const json_t *node, const char *what, hone_status *st) {
    const char *key = ds_get(node, "replies") ? "replies" : "children";
    const json_t *replies = ds_get(node, key), *best = NULL;
    double best_rank = INFINITY;
    *st = HONE_OK;
    if (!replies) return NULL;
    if (!json_is_array(replies)) {
        *st = ds_error(r, HONE_ERR_FORMAT, "%s: field \"%s\" must be a list of messages", what, key);
        return NULL;
    }
    for (size_t i = 0; i < json_array_size(replies); i++) {
        const json_t *reply = json_array_get(replies, i), *rank = ds_get(reply, "rank");
        if (!json_is_object(reply)) {
            *st = ds_error(r, HONE_ERR_FORMAT, "%s: %s[%zu] must be a message object", what, key, i);
            return NULL;
        }
        if (json_is_true(json_object_get(reply, "deleted"))) continue;
        if (rank && !json_is_number(rank)) {
            *st = ds_error(r, HONE_ERR_FORMAT, "%s: %s[%zu]: field \"rank\" must be a number", what, key, i);
            return NULL;
        }
        const double x = rank ? json_number_value(rank) : INFINITY;
        if (!best || x < best_rank) best = reply, best_rank = x;
    }
    return best;
}

hone_status ds_parse_oasst(ds_row *r, const json_t *row) {
    const hone_dataset_options *o = r->cfg->o;
    const char *role_key = o->message_field_role ? o->message_field_role : "role";
    const char *text_key = o->message_field_content ? o->message_field_content : "text";
    const json_t *node = json_is_object(ds_get(row, "prompt")) ? ds_get(row, "prompt") : row;
    ds_verdict v = {.reason = HONE_DROP_COUNT};
    ds_msgs m = {0};
    hone_status st = HONE_OK;
    char what[64] = "the root message";
    for (size_t depth = 0; node && st == HONE_OK; depth++) {
        const char *role_text, *text;
        int known;
        st = ds_get_string(r, node, role_key, 1, what, &role_text);
        if (st == HONE_OK) st = ds_get_string(r, node, text_key, 1, what, &text);
        if (st != HONE_OK) break;
        const ds_role role = ds_role_lookup(r->cfg, role_text, &known);
        if (!known || role == DS_ROLE_FUNCTION_CALL)
            ds_verdict_set(&v, HONE_DROP_UNKNOWN_ROLE, "%s: unknown role \"%s\"", what, role_text);
        else
            st = ds_msgs_push(&m, ds_role_name(role), text, strlen(text));
        if (st == HONE_OK) node = best_reply(r, node, what, &st);
        snprintf(what, sizeof what, "the message at depth %zu", depth + 1);
    }
    /* A path may end with a prompter message nobody answered: the conversation stops at the last answer. */
    while (st == HONE_OK && m.n && strcmp(m.v[m.n - 1].role, "assistant")) ds_msgs_pop(&m);
    hone_example ex = {.kind = HONE_EXAMPLE_SFT};
    return finish_conversation(r, &m, &v, &ex, st);
}
