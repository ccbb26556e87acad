/* Prompts with their one correct answer, read from JSONL (hone_answer_set_load in hone/eval.h): alpaca rows with a
 * task label. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "hone/eval.h"

void hone_answer_set_free(hone_answer_set *s) {
    for (size_t i = 0; i < s->n; i++) {
        free(s->items[i].prompt);
        free(s->items[i].answer);
    }
    for (size_t i = 0; i < s->n_tasks; i++) free(s->tasks[i]);
    free(s->items);
    free(s->tasks);
    free(s->path);
    memset(s, 0, sizeof *s);
}

/* The string field `key` of row (NULL when absent and optional); an error naming path:line otherwise. */
static hone_status string_field(const json_t *row, const char *key, int required, const char *path, size_t line,
                                const char **out) {
    const json_t *v = json_object_get(row, key);
    *out = NULL;
    if (!v && !required) return HONE_OK;
    if (!v)
        return hone_errorf(HONE_ERR_FORMAT,
                           "%s:%zu: missing field \"%s\" (rows are {\"instruction\", \"input\", "
                           "\"output\", \"task\"})",
                           path, line, key);
    if (!json_is_string(v))
        return hone_errorf(HONE_ERR_FORMAT, "%s:%zu: field \"%s\" must be a string", path, line, key);
    *out = json_string_value(v);
    return HONE_OK;
}

/* The index of task name `name` in s->tasks, added when new. */
static hone_status task_index(hone_answer_set *s, const char *name, size_t *out) {
    for (*out = 0; *out < s->n_tasks; ++*out)
        if (!strcmp(s->tasks[*out], name)) return HONE_OK;
    char **tasks = realloc(s->tasks, (s->n_tasks + 1) * sizeof *tasks);
    if (!tasks) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    s->tasks = tasks;
    if (!(s->tasks[s->n_tasks] = strdup(name))) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    *out = s->n_tasks++;
    return HONE_OK;
}

/* One row into s->items[s->n] (the array has room for it). */
static hone_status add_row(hone_answer_set *s, const json_t *row, const char *path, size_t line) {
    const char *instruction, *input, *output, *task;
    if (!json_is_object(row)) return hone_errorf(HONE_ERR_FORMAT, "%s:%zu: a row must be a JSON object", path, line);
    HONE_TRY(string_field(row, "instruction", 1, path, line, &instruction));
    HONE_TRY(string_field(row, "input", 0, path, line, &input));
    HONE_TRY(string_field(row, "output", 1, path, line, &output));
    HONE_TRY(string_field(row, "task", 0, path, line, &task));
    if (!input) input = "";
    if (!*instruction && !*input)
        return hone_errorf(HONE_ERR_FORMAT, "%s:%zu: empty prompt (\"instruction\" and \"input\" are both empty)", path,
                           line);
    hone_answer_item *it = &s->items[s->n];
    HONE_TRY(task_index(s, task ? task : "default", &it->task));
    /* instruction and input joined by a newline, an empty one left out: the user turn hone sft trains on */
    const size_t n_ins = strlen(instruction), n_in = strlen(input), sep = n_ins && n_in;
    it->prompt = malloc(n_ins + sep + n_in + 1);
    it->answer = strdup(output);
    it->line = line;
    s->n++; /* owns what was allocated, freed with the set on error */
    if (!it->prompt || !it->answer) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    memcpy(it->prompt, instruction, n_ins);
    memcpy(it->prompt + n_ins, "\n", sep);
    memcpy(it->prompt + n_ins + sep, input, n_in + 1);
    return HONE_OK;
}

hone_status hone_answer_set_load(hone_answer_set *out, const char *path) {
    memset(out, 0, sizeof *out);
    hone_mapped_file f;
    HONE_TRY(hone_file_map(&f, path));
    const char *text = (const char *)f.data;
    size_t lines = 0;
    for (size_t i = 0; i < f.size; i++) lines += text[i] == '\n';
    out->items = calloc(lines + 1, sizeof *out->items);
    out->path = strdup(path);
    hone_status st = out->items && out->path ? HONE_OK : hone_errorf(HONE_ERR_NOMEM, "out of memory");
    size_t pos = 0, line_no = 0;
    hone_line l;
    while (st == HONE_OK && hone_next_lines(text, f.size, &pos, &line_no, &l, 1)) {
        json_error_t err;
        json_t *row = json_loadb(l.text, l.len, 0, &err);
        st = row ? add_row(out, row, path, l.line_no)
                 : hone_errorf(HONE_ERR_FORMAT, "%s:%zu: not JSON (%s at column %d)", path, l.line_no, err.text,
                               err.column);
        json_decref(row);
    }
    if (st == HONE_OK && !out->n)
        st = hone_errorf(HONE_ERR_FORMAT,
                         "%s has no rows (one JSON object a line: {\"instruction\", \"output\", "
                         "\"task\"})",
                         path);
    hone_file_unmap(&f);
    if (st != HONE_OK) hone_answer_set_free(out);
    return st;
}
