/* Internals of the dataset reader, shared by its files:
 *   dataset_read.c         files (mmap, gzip), rows of JSONL / JSON arrays / single objects, detection, the driver,
 *                          options
 *   dataset_write.c        canonical JSON of an example, hone_dataset_convert, the counts as JSON
 *   formats.c              format detection, role names, message lists, turn checks, emit / drop, text and tokens
 *   formats_chat.c         sharegpt / OpenAI messages (SFT, KTO) and oasst trees
 *   formats_instruct.c     alpaca, dolly, self-instruct, Super-NaturalInstructions
 *   formats_preference.c   preference pairs: TRL prompt/chosen/rejected, sharegpt and v1 pairs, hh-rlhf transcripts
 */
#ifndef HONE_DATASET_INTERNAL_H
#define HONE_DATASET_INTERNAL_H

#include <jansson.h>

#include "hone/dataset.h"

/* Canonical roles; FUNCTION_CALL is sharegpt's function_call turn, which becomes an assistant message. */
typedef enum { DS_ROLE_SYSTEM, DS_ROLE_USER, DS_ROLE_ASSISTANT, DS_ROLE_TOOL, DS_ROLE_FUNCTION_CALL } ds_role;

typedef struct {
    char *alias;
    ds_role role;
} ds_alias;

/* The options resolved for one file: the format and kind detected (or forced), the field names with the
 * format's defaults filled in (chosen_alt / rejected_alt: the v1 names tried when the defaults are absent), and
 * the configured role aliases. */
typedef struct {
    const hone_dataset_options *o;
    hone_dataset_format format;
    hone_example_kind kind;
    const char *instruction, *input, *output, *system, *history;
    const char *prompt, *chosen, *rejected, *chosen_alt, *rejected_alt, *label, *text, *tools;
    ds_alias *aliases;
    size_t n_aliases;
    hone_conversation_style conversation; /* set on every example (SFT only) */
} ds_config;

/* One row being parsed: where it is (for messages), where its examples go and what is counted. */
typedef struct {
    const ds_config *cfg;
    const char *path;
    size_t line, index;
    int in_array; /* messages name the element index too */
    hone_dataset_stats *stats;
    hone_example_fn fn;
    void *ctx;
} ds_row;

/* Why a parsed row cannot train: the lowest-numbered reason found wins (reason == HONE_DROP_COUNT: none). */
typedef struct {
    hone_drop_reason reason;
    char detail[200];
} ds_verdict;

/* A growable message list. */
typedef struct {
    hone_message *v;
    size_t n, cap;
} ds_msgs;

/* ---- formats.c ---- */
hone_status ds_config_init(ds_config *c, const hone_dataset_options *o);
void ds_config_free(ds_config *c);
/* Detects the format and kind of one row (cfg->format forced or AUTO); where names the row in errors. */
hone_status ds_detect(const ds_config *c, const json_t *row, const char *where, hone_dataset_format *format,
                      hone_example_kind *kind);
/* Fills the format's default field names once format and kind are known. */
void ds_config_resolve(ds_config *c);
/* Parses one row into zero or more examples (emitted through r->fn) or a counted drop. */
hone_status ds_parse_row(ds_row *r, const json_t *row);

/* "path:line" or "path:line (element i)". */
void ds_where(const ds_row *r, char *buf, size_t n);
/* An error about the row: "path:line: " + message. */
hone_status ds_error(const ds_row *r, hone_status code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Records reason (with a printf detail) unless a lower-numbered one is already recorded. */
void ds_verdict_set(ds_verdict *v, hone_drop_reason reason, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Counts the drop, or fails in strict mode. */
hone_status ds_drop(ds_row *r, const ds_verdict *v);
/* Hands ex (kind set by the caller) to the callback with the row's position, then frees what is left. */
hone_status ds_emit(ds_row *r, hone_example *ex);

/* A field's value; JSON null counts as absent. */
const json_t *ds_get(const json_t *obj, const char *key);
/* A string field: absent (NULL, or an error when required) or a string (else an error naming the field). */
hone_status ds_get_string(const ds_row *r, const json_t *obj, const char *key, int required, const char *what,
                          const char **out);
ds_role ds_role_lookup(const ds_config *c, const char *name, int *found);
const char *ds_role_name(ds_role role);

/* Appends a copy of role and content[0..len) (weight -1, no name or tool calls). */
hone_status ds_msgs_push(ds_msgs *m, const char *role, const char *content, size_t len);
/* Appends msg, taking its strings. */
hone_status ds_msgs_append(ds_msgs *m, hone_message msg);
void ds_msgs_free(ds_msgs *m);
void ds_msgs_pop(ds_msgs *m); /* frees the last message */
/* Moves the list into a conversation (m is left empty). */
void ds_msgs_take(ds_msgs *m, hone_conversation *out);

/* The system prompt (cfg->system field) as a leading message when the list has no system message yet. */
hone_status ds_add_row_system(ds_row *r, const json_t *row, ds_msgs *m);
/* The row's tools (cfg->tools: a JSON array or a string holding one) as compact JSON, or NULL. */
hone_status ds_row_tools(ds_row *r, const json_t *row, char **out);
/* The KTO label (cfg->label, a boolean). */
hone_status ds_row_label(ds_row *r, const json_t *row, int *label);

/* Turn checks, on a whole conversation: an optional leading system message, then user or tool turns and
 * assistant turns alternating (consecutive tool results count as one turn); with must_end_assistant, the last
 * message is an assistant message. Sets BAD_TURNS or EMPTY_ANSWER in v. */
void ds_check_turns(const hone_message *m, size_t n, int must_end_assistant, ds_verdict *v);

/* Python's str.strip(): the bounds of s[0..n) without leading and trailing Unicode whitespace (str.isspace). */
void ds_py_strip(const char *s, size_t n, size_t *begin, size_t *end);

/* ---- formats_chat.c ---- */
/* A JSON array of messages (what names it in errors, e.g. "conversations") → messages. Unknown roles and
 * malformed function calls are recorded in v; structural problems are errors. */
hone_status ds_parse_messages(ds_row *r, const json_t *list, const char *what, ds_msgs *out, ds_verdict *v);
/* One message object (a sharegpt/messages preference completion). */
hone_status ds_parse_message(ds_row *r, const json_t *msg, const char *what, ds_msgs *out, ds_verdict *v);
/* The row's message list: cfg->o->field_messages, else "conversations", else "messages"; NULL when absent. */
const json_t *ds_row_messages(const ds_row *r, const json_t *row, const char **name);
hone_status ds_parse_chat(ds_row *r, const json_t *row);
hone_status ds_parse_oasst(ds_row *r, const json_t *row);

/* ---- formats_instruct.c ---- */
/* The alpaca prompt of a row: system, history pairs, then instruction + "\n" + input (the non-empty ones). */
hone_status ds_alpaca_prompt(ds_row *r, const json_t *row, ds_msgs *m);
hone_status ds_parse_alpaca(ds_row *r, const json_t *row); /* alpaca and dolly */
hone_status ds_parse_self_instruct(ds_row *r, const json_t *row);
hone_status ds_parse_sni(ds_row *r, const json_t *row);

/* ---- formats_preference.c ---- */
hone_status ds_parse_preference(ds_row *r, const json_t *row);
/* hh-rlhf: does the string start (after whitespace) with "Human:" or "Assistant:"? */
int ds_is_transcript(const char *s);

/* ---- dataset_write.c ---- */
json_t *ds_example_json(const hone_example *ex);

#endif
