/* Instruction rows: alpaca (instruction, input, output [, system, history]) and dolly (instruction, context,
 * response) as LLaMA-Factory's alpaca converter reads them; stanford_alpaca's self-instruct seed tasks; and
 * Super-NaturalInstructions tasks rendered as Tk-Instruct's collator does. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset_internal.h"

/* A growable string. */
typedef struct {
    char *s;
    size_t n, cap;
} text_buf;

static hone_status buf_add(text_buf *b, const char *s, size_t n) {
    if (n > SIZE_MAX / 4 - b->n) return hone_errorf(HONE_ERR_NOMEM, "a prompt of %zu bytes is too long", n);
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *grown = realloc(b->s, cap);
        if (!grown) return hone_errorf(HONE_ERR_NOMEM, "out of memory for a prompt");
        b->s = grown;
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
    return HONE_OK;
}

static hone_status buf_str(text_buf *b, const char *s) { return buf_add(b, s, strlen(s)); }

/* The user turn: instruction and input joined by "\n", empty ones left out (LLaMA-Factory). */
static hone_status push_query(ds_msgs *m, const char *instruction, const char *input) {
    text_buf q = {0};
    hone_status st = buf_str(&q, "");
    if (st == HONE_OK && instruction && *instruction) st = buf_str(&q, instruction);
    if (st == HONE_OK && input && *input && q.n) st = buf_str(&q, "\n");
    if (st == HONE_OK && input && *input) st = buf_str(&q, input);
    if (st == HONE_OK) st = ds_msgs_push(m, "user", q.s, q.n);
    free(q.s);
    return st;
}

hone_status ds_alpaca_prompt(ds_row *r, const json_t *row, ds_msgs *m) {
    const ds_config *c = r->cfg;
    const char *system, *instruction, *input;
    HONE_TRY(ds_get_string(r, row, c->system, 0, NULL, &system));
    HONE_TRY(ds_get_string(r, row, c->instruction, 0, NULL, &instruction));
    HONE_TRY(ds_get_string(r, row, c->input, 0, NULL, &input));
    if (!instruction && !input) return ds_error(r, HONE_ERR_FORMAT, "missing field \"%s\"", c->instruction);
    if (system && *system) HONE_TRY(ds_msgs_push(m, "system", system, strlen(system)));
    const json_t *history = ds_get(row, c->history);
    if (history && !json_is_array(history))
        return ds_error(r, HONE_ERR_FORMAT, "field \"%s\" must be a list of [query, answer] pairs", c->history);
    for (size_t i = 0; i < json_array_size(history); i++) {
        const json_t *pair = json_array_get(history, i), *q = json_array_get(pair, 0), *a = json_array_get(pair, 1);
        if (json_array_size(pair) != 2 || !json_is_string(q) || !json_is_string(a))
            return ds_error(r, HONE_ERR_FORMAT, "%s[%zu] must be a [query, answer] pair of strings", c->history, i);
        HONE_TRY(ds_msgs_push(m, "user", json_string_value(q), json_string_length(q)));
        HONE_TRY(ds_msgs_push(m, "assistant", json_string_value(a), json_string_length(a)));
    }
    return push_query(m, instruction, input);
}

/* Checks the finished conversation and emits it, or counts the drop; takes m. */
static hone_status finish(ds_row *r, ds_msgs *m, hone_example *ex) {
    ds_verdict v = {.reason = HONE_DROP_COUNT};
    ds_check_turns(m->v, m->n, 1, &v);
    ds_msgs_take(m, &ex->conversation);
    if (v.reason == HONE_DROP_COUNT) return ds_emit(r, ex);
    hone_example_free(ex);
    return ds_drop(r, &v);
}

/* The example keeps the row's instruction and input apart (instruction-data scoring templates use both). */
static hone_status keep_instruction(hone_example *ex, const char *instruction, const char *input) {
    ex->instruction = strdup(instruction ? instruction : "");
    ex->input = strdup(input ? input : "");
    if (!ex->instruction || !ex->input) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    return HONE_OK;
}

hone_status ds_parse_alpaca(ds_row *r, const json_t *row) {
    ds_msgs m = {0};
    hone_example ex = {.kind = r->cfg->kind};
    const char *output;
    hone_status st = ds_alpaca_prompt(r, row, &m);
    if (st == HONE_OK) st = ds_get_string(r, row, r->cfg->output, 1, NULL, &output);
    if (st == HONE_OK) st = ds_msgs_push(&m, "assistant", output, strlen(output));
    const char *instruction = NULL, *input = NULL;
    if (st == HONE_OK) st = ds_get_string(r, row, r->cfg->instruction, 0, NULL, &instruction);
    if (st == HONE_OK) st = ds_get_string(r, row, r->cfg->input, 0, NULL, &input);
    if (st == HONE_OK) st = keep_instruction(&ex, instruction, input);
    if (st == HONE_OK) st = ds_row_tools(r, row, &ex.conversation.tools_json);
    if (st == HONE_OK && ex.kind == HONE_EXAMPLE_KTO) st = ds_row_label(r, row, &ex.label);
    if (st == HONE_OK) return finish(r, &m, &ex);
    ds_msgs_free(&m);
    hone_example_free(&ex);
    return st;
}

/* stanford_alpaca's seed_tasks.jsonl: {"instruction", "instances": [{"input", "output"}]}; each instance is one
 * alpaca example (generate_instruction.py takes instances[0]; every seed task has one). */
hone_status ds_parse_self_instruct(ds_row *r, const json_t *row) {
    const char *instruction;
    HONE_TRY(ds_get_string(r, row, r->cfg->instruction, 1, NULL, &instruction));
    const json_t *instances = ds_get(row, "instances");
    if (!json_is_array(instances))
        return ds_error(r, HONE_ERR_FORMAT, "%s \"instances\" (a list of {\"input\", \"output\"})",
                        instances ? "expected a list in field" : "missing field");
    for (size_t i = 0; i < json_array_size(instances); i++) {
        const json_t *inst = json_array_get(instances, i);
        char what[48];
        snprintf(what, sizeof what, "instances[%zu]", i);
        const char *input, *output;
        HONE_TRY(ds_get_string(r, inst, "input", 0, what, &input));
        HONE_TRY(ds_get_string(r, inst, "output", 1, what, &output));
        ds_msgs m = {0};
        hone_example ex = {.kind = HONE_EXAMPLE_SFT};
        hone_status st = push_query(&m, instruction, input);
        if (st == HONE_OK) st = ds_msgs_push(&m, "assistant", output, strlen(output));
        if (st == HONE_OK) st = keep_instruction(&ex, instruction, input);
        if (st == HONE_OK) {
            st = finish(r, &m, &ex);
        } else {
            ds_msgs_free(&m);
            hone_example_free(&ex);
        }
        HONE_TRY(st);
    }
    return HONE_OK;
}

/* ---- Super-NaturalInstructions ---- */

/* Appends s stripped as Python's str.strip() does. */
static hone_status buf_stripped(text_buf *b, const char *s) {
    size_t begin, end;
    ds_py_strip(s, strlen(s), &begin, &end);
    return buf_add(b, s + begin, end - begin);
}

/* Tk-Instruct: `if not text[-1] in string.punctuation: text += "."` (ASCII punctuation; the last byte of a
 * multi-byte character is never ASCII). */
static hone_status buf_end_sentence(text_buf *b) {
    if (b->n && strchr("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", b->s[b->n - 1])) return HONE_OK;
    return buf_str(b, ".");
}

/* A string, or the first string of a list (Definition; an instance's acceptable outputs). */
static hone_status first_string(ds_row *r, const json_t *v, const char *what, const char **out) {
    if (json_is_array(v)) v = json_array_get(v, 0);
    if (!json_is_string(v))
        return ds_error(r, HONE_ERR_FORMAT, "%s must be a string or a non-empty list of strings", what);
    *out = json_string_value(v);
    return HONE_OK;
}

/* The prompt before the instance: "Definition: …\n\n" and up to two positive examples. */
static hone_status sni_preamble(ds_row *r, const json_t *row, text_buf *b) {
    const char *definition = NULL;
    HONE_TRY(first_string(r, ds_get(row, "Definition"), "field \"Definition\"", &definition));
    HONE_TRY(buf_str(b, "Definition: "));
    HONE_TRY(buf_stripped(b, definition));
    HONE_TRY(buf_end_sentence(b));
    HONE_TRY(buf_str(b, "\n\n"));
    const json_t *pos = ds_get(row, "Positive Examples");
    if (pos && !json_is_array(pos))
        return ds_error(r, HONE_ERR_FORMAT, "field \"Positive Examples\" must be a list of {input, output}");
    for (size_t i = 0; i < json_array_size(pos) && i < 2; i++) {
        char what[64], head[48];
        snprintf(what, sizeof what, "Positive Examples[%zu]", i);
        const char *input, *output;
        HONE_TRY(ds_get_string(r, json_array_get(pos, i), "input", 1, what, &input));
        HONE_TRY(ds_get_string(r, json_array_get(pos, i), "output", 1, what, &output));
        snprintf(head, sizeof head, " Positive Example %zu -\nInput: ", i + 1);
        HONE_TRY(buf_str(b, head));
        HONE_TRY(buf_stripped(b, input));
        HONE_TRY(buf_end_sentence(b));
        HONE_TRY(buf_str(b, "\n Output: "));
        HONE_TRY(buf_stripped(b, output));
        HONE_TRY(buf_end_sentence(b));
        HONE_TRY(buf_str(b, "\n\n"));
    }
    return HONE_OK;
}

/* One instance: the preamble, "Now complete the following example -\nInput: {input}.\nOutput: " as the user turn,
 * the first acceptable output (stripped) as the answer. */
static hone_status sni_instance(ds_row *r, const text_buf *preamble, const json_t *inst, const char *what) {
    const char *input, *output = NULL;
    HONE_TRY(ds_get_string(r, inst, "input", 1, what, &input));
    const json_t *out = ds_get(inst, "output");
    char out_what[96];
    snprintf(out_what, sizeof out_what, "%s: field \"output\"", what);
    if (!out) return ds_error(r, HONE_ERR_FORMAT, "%s: missing field \"output\"", what);
    HONE_TRY(first_string(r, out, out_what, &output));
    text_buf q = {0};
    ds_msgs m = {0};
    hone_status st = buf_add(&q, preamble->s, preamble->n);
    if (st == HONE_OK) st = buf_str(&q, "Now complete the following example -\nInput: ");
    if (st == HONE_OK) st = buf_stripped(&q, input);
    if (st == HONE_OK) st = buf_end_sentence(&q);
    if (st == HONE_OK) st = buf_str(&q, "\nOutput: ");
    if (st == HONE_OK) st = ds_msgs_push(&m, "user", q.s, q.n);
    size_t begin, end;
    ds_py_strip(output, strlen(output), &begin, &end);
    if (st == HONE_OK) st = ds_msgs_push(&m, "assistant", output + begin, end - begin);
    free(q.s);
    hone_example ex = {.kind = HONE_EXAMPLE_SFT};
    if (st == HONE_OK) return finish(r, &m, &ex);
    ds_msgs_free(&m);
    return st;
}

/* A task file ({"Definition", "Positive Examples", "Instances": [...]}, one example per instance), a row with one
 * "Instance" object, or a row with the instance's "input" and "output" beside the definition. */
hone_status ds_parse_sni(ds_row *r, const json_t *row) {
    text_buf preamble = {0};
    hone_status st = sni_preamble(r, row, &preamble);
    const json_t *instances = ds_get(row, "Instances"), *one = ds_get(row, "Instance");
    if (st == HONE_OK && instances) {
        if (!json_is_array(instances))
            st = ds_error(r, HONE_ERR_FORMAT, "field \"Instances\" must be a list of {input, output}");
        for (size_t i = 0; st == HONE_OK && i < json_array_size(instances); i++) {
            char what[48];
            snprintf(what, sizeof what, "Instances[%zu]", i);
            st = sni_instance(r, &preamble, json_array_get(instances, i), what);
        }
    } else if (st == HONE_OK)
        st = sni_instance(r, &preamble, one ? one : row, one ? "Instance" : "the row");
    free(preamble.s);
    return st;
}
