/* hone/tasks.h — a built-in synthetic instruction suite whose answers can be checked exactly: small tasks a tiny
 * model learns in seconds, for the demo, tests and data-selection experiments.
 *
 *     hone_task_set train, test;
 *     if (hone_task_suite(42, 2000, 100, &train, &test) != HONE_OK) die(hone_error());
 *     // train.items[0].prompt = "Write backwards: qej", .answer = "jeq", .task = HONE_TASK_REVERSE
 *     hone_example ex;
 *     hone_task_item_example(&train.items[0], &ex);   // user prompt + assistant answer, ready to render
 *     hone_example_free(&ex);
 *     hone_task_set_free(&train);
 *     hone_task_set_free(&test);
 *
 * Tasks (each with four prompt phrasings, all ending with the operands; distinct problems in brackets):
 *   reverse  a random three-letter word, spelled backwards      "Reverse: qej" -> "jeq"        (17,576)
 *   sort     three digits in increasing order, space-separated  "Sort: 7 2 9" -> "2 7 9"       (1,000)
 *   add      a two-digit number plus a digit                    "Add: 47 + 8" -> "55"          (900)
 *   next     the number after a number from 10 to 998           "Successor of: 399" -> "400"   (989)
 * Every task has hundreds of problems or more, so a held-out problem combines steps that training shows on
 * other problems (the units sum and the carry, the digits' order) rather than being a fact never seen.
 * Everything follows from the seed (hone's counter-based generator, one stream for the test items and one for
 * the training items). Test items are distinct problems, and no training item poses a test problem, in any
 * phrasing: the problem (the word, the digits, the numbers) is what is compared,
 * not the prompt text, so held-out accuracy measures generalisation, not recall.
 */
#ifndef HONE_TASKS_H
#define HONE_TASKS_H

#include "hone/base.h"
#include "hone/dataset.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { HONE_TASK_REVERSE = 0, HONE_TASK_SORT, HONE_TASK_ADD, HONE_TASK_NEXT, HONE_TASK_COUNT } hone_task;

const char *hone_task_name(hone_task t); /* "reverse", "sort", "add", "next" */

typedef struct {
    hone_task task;
    char *prompt; /* the user's message */
    char *answer; /* the one correct reply, compared exactly */
} hone_task_item;

typedef struct {
    hone_task_item *items;
    size_t n;
} hone_task_set;

/* n_train training items and n_test test items of every task, the tasks interleaved (item i is of task
 * i % HONE_TASK_COUNT). An error when a task has fewer distinct problems than asked for. */
hone_status hone_task_suite(uint64_t seed, size_t n_train, size_t n_test, hone_task_set *train, hone_task_set *test);
void hone_task_set_free(hone_task_set *s);

/* The set as alpaca rows with a task label, one JSON object a line, written atomically (hone sft reads them as
 * alpaca; hone eval --tasks scores a model on them, see hone_answer_set_load):
 *     {"instruction": "Reverse: qej", "input": "", "output": "jeq", "task": "reverse"} */
hone_status hone_task_set_write_jsonl(const hone_task_set *s, const char *path);

/* The item as an SFT example: a user message (the prompt) and an assistant message (the answer). Free it with
 * hone_example_free. */
hone_status hone_task_item_example(const hone_task_item *it, hone_example *out);

#ifdef __cplusplus
}
#endif
#endif
