/* hone/eval.h — evaluation: mean next-token loss and perplexity of a token stream; exact-match accuracy of
 * generated answers.
 *
 *     hone_eval_result r;
 *     if (hone_eval_tokens(model, &tokens, 512, 4, &r) != HONE_OK) die(hone_error());
 *     printf("loss %.4f perplexity %.2f\n", r.loss, r.perplexity);
 *
 *     hone_render_options ro = {.tokenizer = tok, .chat_template = tmpl};
 *     hone_answer_options ao = {.render = &ro, .stop_id = im_end, .max_new_tokens = 16};
 *     hone_task_scores sc;
 *     if (hone_eval_exact_match(model, &ao, test.items, test.n, &sc, NULL) != HONE_OK) die(hone_error());
 *
 *     hone_answer_set set;                              // prompts with answers from a file (hone eval --tasks)
 *     if (hone_answer_set_load(&set, "test.jsonl") != HONE_OK) die(hone_error());
 *     int right;
 *     hone_eval_answer(model, &ao, set.items[0].prompt, set.items[0].answer, &right, NULL);
 *     hone_answer_set_free(&set);
 */
#ifndef HONE_EVAL_H
#define HONE_EVAL_H

#include "hone/data.h"
#include "hone/model.h"
#include "hone/render.h"
#include "hone/tasks.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    double loss;       /* mean next-token NLL */
    double perplexity; /* exp(loss) */
    int64_t tokens;    /* predicted tokens */
    int64_t blocks;
} hone_eval_result;

/* Mean next-token loss over the blocks of sequence_len tokens (the last partial block is kept when it has at
 * least 2 tokens), micro_batch_size blocks per forward pass. With a prompt-tuning adapter attached, each block is
 * preceded by its virtual tokens, and the last of them predicts the block's first token (PEFT's labels). */
hone_status hone_eval_tokens(hone_model *m, const hone_token_stream *data, int sequence_len, int micro_batch_size,
                             hone_eval_result *out);

typedef struct {
    const hone_render_options *render; /* tokenizer and chat template: how a prompt is put to the model */
    int32_t stop_id;                   /* the end-of-turn token: generation stops there (and at the model's eos ids) */
    int max_new_tokens;                /* an answer that has not ended by then is wrong */
} hone_answer_options;

typedef struct {
    size_t correct[HONE_TASK_COUNT], total[HONE_TASK_COUNT];
} hone_task_scores;

/* Asks the model each item's prompt (a one-turn conversation rendered with the generation prompt, as
 * hone_render_prompt does), decodes greedily with the KV cache, and counts the item correct when the model ends
 * its turn (generates stop_id) within max_new_tokens and the text before it, stripped of surrounding whitespace,
 * equals the answer byte for byte (special tokens included, so a stray one is an error). answers (NULL or n
 * slots) receive what the model said, stop token left out (free() each). */
hone_status hone_eval_exact_match(hone_model *m, const hone_answer_options *o, const hone_task_item *items, size_t n,
                                  hone_task_scores *scores, char **answers);

/* One prompt asked and judged as hone_eval_exact_match does: *correct is 1 when the model ends its turn within
 * max_new_tokens with exactly `answer`; *said (when not NULL) receives what it said (free()). */
hone_status hone_eval_answer(hone_model *m, const hone_answer_options *o, const char *prompt, const char *answer,
                             int *correct, char **said);

/* Prompts with their one correct answer, from a JSONL file: alpaca rows with a task label, as `hone demo
 * --write-suite` writes them, one JSON object a line (blank lines skipped, other fields ignored):
 *     {"instruction": "Reverse: qej", "input": "", "output": "jeq", "task": "reverse"}
 * "instruction" and "output" are strings (required); "input" (a string, optional) follows the instruction after a
 * newline when not empty, as hone sft reads alpaca rows; "task" (a string, optional, "default" when absent) groups
 * the scores. */
typedef struct {
    size_t task;  /* index into the set's task names */
    char *prompt; /* the user's message */
    char *answer; /* "output" */
    size_t line;  /* 1-based line of the file */
} hone_answer_item;

typedef struct {
    hone_answer_item *items;
    size_t n;
    char **tasks; /* the distinct task names in order of first appearance */
    size_t n_tasks;
    char *path; /* the file it was read from (for messages) */
} hone_answer_set;

/* Reads the file; bad JSON, a missing or non-string field, an empty prompt or a file without rows is an error
 * naming FILE:LINE and the field. On error *out is left empty. */
hone_status hone_answer_set_load(hone_answer_set *out, const char *path);
void hone_answer_set_free(hone_answer_set *s);

/* Every item of the set asked and judged as hone_eval_answer does (hone eval --tasks): correct[t] and total[t] for
 * each task t (set->n_tasks slots each, overwritten). An error names the item's FILE:LINE. */
hone_status hone_eval_answer_set(hone_model *m, const hone_answer_options *o, const hone_answer_set *set,
                                 size_t *correct, size_t *total);

#ifdef __cplusplus
}
#endif
#endif
