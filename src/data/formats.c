/* Dataset formats: detection from a row's fields, role names, message lists, turn checks, emitting and dropping
 * examples, and the two simplest formats (text, token ids). The conversation formats live in formats_*.c. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset_internal.h"

/* ---- configuration ---- */

static const struct {
    const char *alias;
    ds_role role;
} builtin_roles[] = {
    {"user", DS_ROLE_USER},           {"human", DS_ROLE_USER},    {"prompter", DS_ROLE_USER},
    {"assistant", DS_ROLE_ASSISTANT}, {"gpt", DS_ROLE_ASSISTANT}, {"bot", DS_ROLE_ASSISTANT},
    {"model", DS_ROLE_ASSISTANT},     {"system", DS_ROLE_SYSTEM}, {"tool", DS_ROLE_TOOL},
    {"observation", DS_ROLE_TOOL},    {"function", DS_ROLE_TOOL}, {"function_call", DS_ROLE_FUNCTION_CALL},
};

const char *ds_role_name(ds_role role) {
    switch (role) {
        case DS_ROLE_SYSTEM:
            return "system";
        case DS_ROLE_USER:
            return "user";
        case DS_ROLE_TOOL:
            return "tool";
        case DS_ROLE_ASSISTANT:
        case DS_ROLE_FUNCTION_CALL:
            return "assistant";
    }
    return "?";
}

ds_role ds_role_lookup(const ds_config *c, const char *name, int *found) {
    *found = 1;
    for (size_t i = 0; i < c->n_aliases; i++)
        if (!strcmp(c->aliases[i].alias, name)) return c->aliases[i].role;
    for (size_t i = 0; i < sizeof builtin_roles / sizeof builtin_roles[0]; i++)
        if (!strcmp(builtin_roles[i].alias, name)) return builtin_roles[i].role;
    *found = 0;
    return DS_ROLE_USER;
}

/* Adds the comma-separated aliases of one roles_* option; an alias listed under two roles is an error. */
static hone_status add_aliases(ds_config *c, const char *list, ds_role role, const char *option) {
    if (!list) return HONE_OK;
    for (const char *p = list; *p;) {
        while (*p == ' ' || *p == ',') p++;
        size_t len = strcspn(p, ",");
        while (len && p[len - 1] == ' ') len--;
        if (len) {
            char *alias = strndup(p, len);
            if (!alias) return hone_errorf(HONE_ERR_NOMEM, "option %s: out of memory", option);
            for (size_t i = 0; i < c->n_aliases; i++)
                if (!strcmp(c->aliases[i].alias, alias) && c->aliases[i].role != role) {
                    hone_status st = hone_errorf(HONE_ERR_INVALID,
                                                 "option %s: role alias '%s' is already an alias of %s: an alias "
                                                 "maps to one role",
                                                 option, alias, ds_role_name(c->aliases[i].role));
                    free(alias);
                    return st;
                }
            ds_alias *grown = realloc(c->aliases, (c->n_aliases + 1) * sizeof *grown);
            if (!grown) {
                free(alias);
                return hone_errorf(HONE_ERR_NOMEM, "option %s: out of memory", option);
            }
            c->aliases = grown;
            c->aliases[c->n_aliases++] = (ds_alias){alias, role};
        }
        p += strcspn(p, ",");
    }
    return HONE_OK;
}

hone_status ds_config_init(ds_config *c, const hone_dataset_options *o) {
    memset(c, 0, sizeof *c);
    c->o = o;
    hone_status st = hone_dataset_format_parse(o->format, &c->format);
    if (st == HONE_OK) st = hone_conversation_style_parse(o->conversation, &c->conversation);
    if (st == HONE_OK) st = add_aliases(c, o->roles_user, DS_ROLE_USER, "roles_user");
    if (st == HONE_OK) st = add_aliases(c, o->roles_assistant, DS_ROLE_ASSISTANT, "roles_assistant");
    if (st == HONE_OK) st = add_aliases(c, o->roles_system, DS_ROLE_SYSTEM, "roles_system");
    if (st == HONE_OK) st = add_aliases(c, o->roles_tool, DS_ROLE_TOOL, "roles_tool");
    if (st != HONE_OK) ds_config_free(c);
    return st;
}

void ds_config_free(ds_config *c) {
    for (size_t i = 0; i < c->n_aliases; i++) free(c->aliases[i].alias);
    free(c->aliases);
    c->aliases = NULL;
    c->n_aliases = 0;
}

void ds_config_resolve(ds_config *c) {
    const hone_dataset_options *o = c->o;
    const int dolly = c->format == HONE_FORMAT_DOLLY;
    c->instruction = o->field_instruction ? o->field_instruction : "instruction";
    c->input = o->field_input ? o->field_input : dolly ? "context" : "input";
    c->output = o->field_output ? o->field_output : dolly ? "response" : "output";
    c->system = o->field_system ? o->field_system : "system";
    c->history = o->field_history ? o->field_history : "history";
    c->prompt = o->field_prompt ? o->field_prompt : "prompt";
    c->chosen = o->field_chosen ? o->field_chosen : "chosen";
    c->chosen_alt = o->field_chosen ? NULL : "chosen_messages";
    c->rejected = o->field_rejected ? o->field_rejected : "rejected";
    c->rejected_alt = o->field_rejected ? NULL : "rejected_messages";
    c->label = o->field_label ? o->field_label : "label";
    c->text = o->field_text ? o->field_text : "text";
    c->tools = o->field_tools ? o->field_tools : "tools";
}

/* ---- detection ---- */

const json_t *ds_get(const json_t *obj, const char *key) {
    const json_t *v = json_object_get(obj, key);
    return json_is_null(v) ? NULL : v;
}

/* The first of two field names the row has (the option when set, else the two defaults in order). */
static const char *field_or(const json_t *row, const char *option, const char *a, const char *b) {
    if (option) return option;
    return ds_get(row, a) || !b ? a : b;
}

/* sharegpt when the messages use "from" (or, for an empty list, when it is called "conversations"). */
static hone_dataset_format chat_format(const json_t *list, const char *name) {
    const json_t *first = json_array_get(list, 0);
    if (first) return json_object_get(first, "from") ? HONE_FORMAT_SHAREGPT : HONE_FORMAT_MESSAGES;
    return !strcmp(name, "conversations") ? HONE_FORMAT_SHAREGPT : HONE_FORMAT_MESSAGES;
}

static int is_oasst(const json_t *row) {
    const json_t *root = ds_get(row, "prompt");
    if (!json_is_object(root)) root = row;
    return (ds_get(root, "replies") || ds_get(root, "children")) && ds_get(root, "text");
}

/* The row's field names, for "cannot tell" errors: "a, b, c" (at most 12). */
static void field_list(const json_t *row, char *buf, size_t n) {
    const char *key;
    const json_t *v;
    size_t used = 0, count = 0;
    buf[0] = 0;
    json_object_foreach((json_t *)row, key, v) {
        if (count++ == 12) {
            snprintf(buf + used, n - used, ", …");
            return;
        }
        int w = snprintf(buf + used, n - used, "%s%s", used ? ", " : "", key);
        if (w < 0 || (size_t)w >= n - used) return;
        used += (size_t)w;
    }
}

hone_status ds_detect(const ds_config *c, const json_t *row, const char *where, hone_dataset_format *format,
                      hone_example_kind *kind) {
    const hone_dataset_options *o = c->o;
    const char *chosen = field_or(row, o->field_chosen, "chosen", "chosen_messages");
    const char *rejected = field_or(row, o->field_rejected, "rejected", "rejected_messages");
    const char *msgs_name = field_or(row, o->field_messages, "conversations", "messages");
    const char *instruction = o->field_instruction ? o->field_instruction : "instruction";
    const json_t *msgs = ds_get(row, msgs_name);
    const int pair = ds_get(row, chosen) && ds_get(row, rejected);
    const int labelled = json_is_boolean(ds_get(row, o->field_label ? o->field_label : "label"));
    hone_dataset_format f = c->format;
    if (f == HONE_FORMAT_AUTO) {
        if (ds_get(row, "input_ids"))
            f = HONE_FORMAT_TOKENS;
        else if (pair)
            f = json_is_array(msgs)        ? chat_format(msgs, msgs_name)
                : ds_get(row, instruction) ? HONE_FORMAT_ALPACA
                                           : HONE_FORMAT_PREFERENCE;
        else if (ds_get(row, "Definition"))
            f = HONE_FORMAT_SNI;
        else if (is_oasst(row))
            f = HONE_FORMAT_OASST;
        else if (ds_get(row, instruction) && json_is_array(ds_get(row, "instances")))
            f = HONE_FORMAT_SELF_INSTRUCT;
        else if (json_is_array(msgs))
            f = chat_format(msgs, msgs_name);
        else if (ds_get(row, instruction) && ds_get(row, "response") && !o->field_output)
            f = HONE_FORMAT_DOLLY;
        else if (ds_get(row, o->field_output ? o->field_output : "output") &&
                 (ds_get(row, instruction) || ds_get(row, o->field_input ? o->field_input : "input")))
            f = HONE_FORMAT_ALPACA;
        else if (ds_get(row, o->field_text ? o->field_text : "text"))
            f = HONE_FORMAT_TEXT;
        else if (ds_get(row, o->field_prompt ? o->field_prompt : "prompt") && ds_get(row, "completion"))
            return hone_errorf(HONE_ERR_UNSUPPORTED,
                               "%s: TRL prompt/completion rows are not supported yet: convert them to "
                               "{\"messages\": [...]} (and \"label\" for KTO)",
                               where);
        else {
            char fields[512];
            field_list(row, fields, sizeof fields);
            return hone_errorf(HONE_ERR_FORMAT,
                               "%s: cannot tell the dataset format from the fields {%s}: set format (alpaca, "
                               "sharegpt, messages, dolly, oasst, sni, self_instruct, text, tokens, preference) and "
                               "the field names (field_instruction, field_output, field_messages, field_prompt, …)",
                               where, fields);
        }
    }
    *format = f;
    switch (f) {
        case HONE_FORMAT_TEXT:
            *kind = HONE_EXAMPLE_TEXT;
            break;
        case HONE_FORMAT_TOKENS:
            *kind = HONE_EXAMPLE_TOKENS;
            break;
        case HONE_FORMAT_PREFERENCE:
            *kind = HONE_EXAMPLE_PREFERENCE;
            break;
        case HONE_FORMAT_ALPACA:
        case HONE_FORMAT_DOLLY:
        case HONE_FORMAT_SHAREGPT:
        case HONE_FORMAT_MESSAGES:
            *kind = pair ? HONE_EXAMPLE_PREFERENCE : labelled ? HONE_EXAMPLE_KTO : HONE_EXAMPLE_SFT;
            break;
        default:
            *kind = HONE_EXAMPLE_SFT;
    }
    return HONE_OK;
}

/* ---- rows: where, errors, drops, emitting ---- */

void ds_where(const ds_row *r, char *buf, size_t n) {
    if (r->in_array)
        snprintf(buf, n, "%s:%zu (element %zu)", r->path, r->line, r->index);
    else
        snprintf(buf, n, "%s:%zu", r->path, r->line);
}

hone_status ds_error(const ds_row *r, hone_status code, const char *fmt, ...) {
    char where[512], msg[1024];
    ds_where(r, where, sizeof where);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return hone_errorf(code, "%s: %s", where, msg);
}

void ds_verdict_set(ds_verdict *v, hone_drop_reason reason, const char *fmt, ...) {
    if (reason >= v->reason) return;
    v->reason = reason;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->detail, sizeof v->detail, fmt, ap);
    va_end(ap);
}

hone_status ds_drop(ds_row *r, const ds_verdict *v) {
    if (r->cfg->o->strict)
        return ds_error(r, HONE_ERR_INVALID, "%s: %s (strict mode: rows that would be dropped are errors)",
                        hone_drop_reason_name(v->reason), v->detail);
    hone_dataset_stats *s = r->stats;
    if (!s->dropped_by[v->reason]) s->first_dropped_line[v->reason] = r->line;
    s->dropped_by[v->reason]++;
    s->dropped++;
    return HONE_OK;
}

hone_status ds_emit(ds_row *r, hone_example *ex) {
    ex->line = r->line;
    ex->index = r->index;
    if (r->cfg->conversation != HONE_CONVERSATION_NONE && ex->kind != HONE_EXAMPLE_SFT) {
        const hone_example_kind kind = ex->kind;
        hone_example_free(ex);
        return ds_error(r, HONE_ERR_UNSUPPORTED,
                        "dataset option conversation (%s) renders conversations to train on, and this row is a %s "
                        "example; leave the option out for this dataset",
                        hone_conversation_style_name(r->cfg->conversation), hone_example_kind_name(kind));
    }
    ex->conversation_style = r->cfg->conversation;
    r->stats->examples++;
    hone_status st = r->fn ? r->fn(ex, r->ctx) : HONE_OK;
    hone_example_free(ex);
    return st;
}

static const char *json_type_name(const json_t *v) {
    switch (json_typeof(v)) {
        case JSON_OBJECT:
            return "an object";
        case JSON_ARRAY:
            return "an array";
        case JSON_STRING:
            return "a string";
        case JSON_INTEGER:
        case JSON_REAL:
            return "a number";
        case JSON_TRUE:
        case JSON_FALSE:
            return "a boolean";
        case JSON_NULL:
            return "null";
    }
    return "?";
}

hone_status ds_get_string(const ds_row *r, const json_t *obj, const char *key, int required, const char *what,
                          const char **out) {
    const json_t *v = ds_get(obj, key);
    *out = NULL;
    if (!v) {
        if (!required) return HONE_OK;
        return ds_error(r, HONE_ERR_FORMAT, "%s%smissing field \"%s\"", what ? what : "", what ? ": " : "", key);
    }
    if (!json_is_string(v))
        return ds_error(r, HONE_ERR_FORMAT, "%s%sfield \"%s\" must be a string, not %s", what ? what : "",
                        what ? ": " : "", key, json_type_name(v));
    *out = json_string_value(v);
    return HONE_OK;
}

/* ---- message lists ---- */

hone_status ds_msgs_append(ds_msgs *m, hone_message msg) {
    if (m->n == m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 8;
        hone_message *grown = realloc(m->v, cap * sizeof *grown);
        if (!grown) return hone_errorf(HONE_ERR_NOMEM, "out of memory for a message list");
        m->v = grown;
        m->cap = cap;
    }
    m->v[m->n++] = msg;
    return HONE_OK;
}

hone_status ds_msgs_push(ds_msgs *m, const char *role, const char *content, size_t len) {
    hone_message msg = {.role = strdup(role), .content = strndup(content, len), .weight = -1};
    hone_status st = msg.role && msg.content ? ds_msgs_append(m, msg) : hone_errorf(HONE_ERR_NOMEM, "out of memory");
    if (st != HONE_OK) {
        free(msg.role);
        free(msg.content);
    }
    return st;
}

void ds_msgs_take(ds_msgs *m, hone_conversation *out) {
    out->messages = m->v;
    out->n_messages = m->n;
    memset(m, 0, sizeof *m);
}

void ds_msgs_free(ds_msgs *m) {
    hone_conversation c = {0};
    ds_msgs_take(m, &c);
    hone_conversation_free(&c);
}

void ds_msgs_pop(ds_msgs *m) {
    HONE_ASSERT(m->n);
    hone_message_free(&m->v[--m->n]);
}

hone_status ds_add_row_system(ds_row *r, const json_t *row, ds_msgs *m) {
    const char *system;
    HONE_TRY(ds_get_string(r, row, r->cfg->system, 0, NULL, &system));
    if (!system || !*system || (m->n && !strcmp(m->v[0].role, "system"))) return HONE_OK;
    HONE_TRY(ds_msgs_push(m, "system", system, strlen(system)));
    hone_message sys = m->v[m->n - 1];
    memmove(m->v + 1, m->v, (m->n - 1) * sizeof *m->v);
    m->v[0] = sys;
    return HONE_OK;
}

hone_status ds_row_tools(ds_row *r, const json_t *row, char **out) {
    *out = NULL;
    const json_t *v = ds_get(row, r->cfg->tools);
    if (!v || (json_is_string(v) && !json_string_length(v))) return HONE_OK;
    json_t *parsed = NULL;
    if (json_is_string(v)) {
        json_error_t err;
        parsed = json_loadb(json_string_value(v), json_string_length(v), 0, &err);
        if (!parsed)
            return ds_error(r, HONE_ERR_FORMAT,
                            "field \"%s\" is a string but not JSON (%s): it must hold an array "
                            "of tool definitions",
                            r->cfg->tools, err.text);
        v = parsed;
    }
    hone_status st = HONE_OK;
    if (!json_is_array(v))
        st = ds_error(r, HONE_ERR_FORMAT, "field \"%s\" must be an array of tool definitions, not %s", r->cfg->tools,
                      json_type_name(v));
    else if (json_array_size(v) && !(*out = json_dumps(v, JSON_COMPACT)))
        st = hone_errorf(HONE_ERR_NOMEM, "out of memory for tool definitions");
    json_decref(parsed);
    return st;
}

hone_status ds_row_label(ds_row *r, const json_t *row, int *label) {
    const json_t *v = ds_get(row, r->cfg->label);
    if (!v) return ds_error(r, HONE_ERR_FORMAT, "missing field \"%s\" (the KTO label: true or false)", r->cfg->label);
    if (!json_is_boolean(v))
        return ds_error(r, HONE_ERR_FORMAT, "field \"%s\" must be true or false (the KTO label), not %s", r->cfg->label,
                        json_type_name(v));
    *label = json_is_true(v);
    return HONE_OK;
}

/* ---- turn checks ---- */

static int is_blank(const char *s) {
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r') return 0;
    return 1;
}

void ds_check_turns(const hone_message *m, size_t n, int must_end_assistant, ds_verdict *v) {
    const char *prev = NULL; /* role of the previous turn after the system message */
    for (size_t i = n && !strcmp(m[0].role, "system") ? 1 : 0; i < n; i++) {
        const char *role = m[i].role;
        int ok;
        if (!strcmp(role, "assistant"))
            ok = prev && strcmp(prev, "assistant");
        else if (!strcmp(role, "user"))
            ok = !prev || !strcmp(prev, "assistant");
        else if (!strcmp(role, "tool"))
            ok = !prev || strcmp(prev, "user");
        else
            ok = 0; /* a system message after the first turn */
        if (!ok) {
            ds_verdict_set(v, HONE_DROP_BAD_TURNS, "message %zu (%s) follows %s", i, role,
                           prev ? prev : "the system message");
            return;
        }
        prev = role;
    }
    if (!prev)
        ds_verdict_set(v, HONE_DROP_BAD_TURNS, "no user or assistant turn");
    else if (must_end_assistant && strcmp(prev, "assistant"))
        ds_verdict_set(v, HONE_DROP_BAD_TURNS, "the last turn is %s, not an assistant answer", prev);
    for (size_t i = 0; i < n; i++)
        if (!strcmp(m[i].role, "assistant") && !m[i].tool_calls_json && is_blank(m[i].content)) {
            ds_verdict_set(v, HONE_DROP_EMPTY_ANSWER, "assistant message %zu is empty", i);
            return;
        }
}

/* ---- Python's str.strip ---- */

static int py_isspace(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/* The code point starting at s[i] (s is valid UTF-8: strings come from the JSON parser) and its length. */
static uint32_t utf8_at(const unsigned char *s, size_t i, size_t *len) {
    unsigned char c = s[i];
    if (c < 0x80) return *len = 1, c;
    if (c < 0xE0) return *len = 2, (uint32_t)(c & 0x1F) << 6 | (s[i + 1] & 0x3F);
    if (c < 0xF0) return *len = 3, (uint32_t)(c & 0x0F) << 12 | (uint32_t)(s[i + 1] & 0x3F) << 6 | (s[i + 2] & 0x3F);
    return *len = 4, (uint32_t)(c & 0x07) << 18 | (uint32_t)(s[i + 1] & 0x3F) << 12 | (uint32_t)(s[i + 2] & 0x3F) << 6 |
                         (s[i + 3] & 0x3F);
}

void ds_py_strip(const char *str, size_t n, size_t *begin, size_t *end) {
    const unsigned char *s = (const unsigned char *)str;
    size_t b = 0, e = n, len;
    while (b < e && py_isspace(utf8_at(s, b, &len))) b += len;
    while (e > b) {
        size_t start = e - 1;
        while (start > b && (s[start] & 0xC0) == 0x80) start--;
        if (!py_isspace(utf8_at(s, start, &len))) break;
        e = start;
    }
    *begin = b;
    *end = e;
}

/* ---- text and token ids ---- */

static hone_status parse_text(ds_row *r, const json_t *row) {
    const char *text;
    HONE_TRY(ds_get_string(r, row, r->cfg->text, 1, NULL, &text));
    if (is_blank(text)) {
        ds_verdict v = {.reason = HONE_DROP_COUNT};
        ds_verdict_set(&v, HONE_DROP_EMPTY_TEXT, "field \"%s\" is empty", r->cfg->text);
        return ds_drop(r, &v);
    }
    hone_example ex = {.kind = HONE_EXAMPLE_TEXT, .text = strdup(text)};
    if (!ex.text) return hone_errorf(HONE_ERR_NOMEM, "out of memory for a text row");
    return ds_emit(r, &ex);
}

/* An array of ids into out[n]; allow_ignore accepts -100 (labels). */
static hone_status read_ids(ds_row *r, const json_t *arr, const char *name, int allow_ignore, int32_t *out) {
    for (size_t j = 0; j < json_array_size(arr); j++) {
        const json_t *e = json_array_get(arr, j);
        json_int_t id = json_is_integer(e) ? json_integer_value(e) : -1;
        if (!json_is_integer(e) || id > INT32_MAX || (id < 0 && !(allow_ignore && id == -100)))
            return ds_error(r, HONE_ERR_FORMAT, "%s[%zu] must be an integer id in [0, %d]%s", name, j, INT32_MAX,
                            allow_ignore ? " or -100 (not trained)" : "");
        out[j] = (int32_t)id;
    }
    return HONE_OK;
}

static hone_status parse_tokens(ds_row *r, const json_t *row) {
    const json_t *ids = ds_get(row, "input_ids"), *labels = ds_get(row, "labels"),
                 *mask = ds_get(row, "attention_mask");
    if (!ids) return ds_error(r, HONE_ERR_FORMAT, "missing field \"input_ids\"");
    if (!json_is_array(ids)) return ds_error(r, HONE_ERR_FORMAT, "field \"input_ids\" must be an array of ids");
    const size_t n = json_array_size(ids);
    if (mask && !json_is_array(mask))
        return ds_error(r, HONE_ERR_FORMAT, "field \"attention_mask\" must be an array of 1s");
    if (labels && (!json_is_array(labels) || json_array_size(labels) != n))
        return ds_error(r, HONE_ERR_FORMAT, "field \"labels\" must be an array as long as \"input_ids\" (%zu)", n);
    for (size_t j = 0; mask && j < json_array_size(mask); j++)
        if (!json_is_integer(json_array_get(mask, j)) || json_integer_value(json_array_get(mask, j)) != 1)
            return ds_error(r, HONE_ERR_UNSUPPORTED,
                            "attention_mask[%zu] is not 1: padded rows are not supported; remove the padding", j);
    if (!n) {
        ds_verdict v = {.reason = HONE_DROP_COUNT};
        ds_verdict_set(&v, HONE_DROP_EMPTY_TEXT, "\"input_ids\" is empty");
        return ds_drop(r, &v);
    }
    hone_example ex = {.kind = HONE_EXAMPLE_TOKENS, .n_tokens = n};
    ex.input_ids = malloc(n * sizeof(int32_t));
    ex.labels = labels ? malloc(n * sizeof(int32_t)) : NULL;
    hone_status st = !ex.input_ids || (labels && !ex.labels) ? hone_errorf(HONE_ERR_NOMEM, "out of memory for ids")
                                                             : read_ids(r, ids, "input_ids", 0, ex.input_ids);
    if (st == HONE_OK && labels) st = read_ids(r, labels, "labels", 1, ex.labels);
    if (st != HONE_OK) {
        hone_example_free(&ex);
        return st;
    }
    return ds_emit(r, &ex);
}

hone_status ds_parse_row(ds_row *r, const json_t *row) {
    if (r->cfg->kind == HONE_EXAMPLE_PREFERENCE) return ds_parse_preference(r, row);
    switch (r->cfg->format) {
        case HONE_FORMAT_ALPACA:
        case HONE_FORMAT_DOLLY:
            return ds_parse_alpaca(r, row);
        case HONE_FORMAT_SHAREGPT:
        case HONE_FORMAT_MESSAGES:
            return ds_parse_chat(r, row);
        case HONE_FORMAT_OASST:
            return ds_parse_oasst(r, row);
        case HONE_FORMAT_SNI:
            return ds_parse_sni(r, row);
        case HONE_FORMAT_SELF_INSTRUCT:
            return ds_parse_self_instruct(r, row);
        case HONE_FORMAT_TEXT:
            return parse_text(r, row);
        case HONE_FORMAT_TOKENS:
            return parse_tokens(r, row);
        default:
            break;
    }
    return ds_error(r, HONE_ERR_INVALID, "no parser for format %s", hone_dataset_format_name(r->cfg->format));
}
