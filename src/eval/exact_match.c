/* Exact-match accuracy of greedy answers to task prompts (hone/eval.h). */
#include <stdlib.h>
#include <string.h>

#include "hone/eval.h"

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static int stop_at(int32_t id, void *user) { return id == *(const int32_t *)user; }

/* The model's answer to one item: *said (malloc'd) is the decoded text before the stop token; *ended tells whether
 * the model generated the stop token. */
static hone_status answer_one(hone_model *m, const hone_answer_options *o, const hone_task_item *it, int32_t *gen,
                              char **said, int *ended) {
    hone_example ex;
    hone_sequence prompt = {0};
    *said = NULL;
    *ended = 0;
    HONE_TRY(hone_task_item_example(it, &ex));
    hone_status st = hone_render_prompt(&ex, o->render, &prompt);
    hone_example_free(&ex);
    int n_gen = 0;
    const hone_sampling greedy = {.max_new_tokens = o->max_new_tokens, .temperature = 0, .top_p = 1};
    int32_t stop = o->stop_id;
    if (st == HONE_OK) st = hone_generate(m, prompt.input_ids, (int)prompt.n, &greedy, gen, &n_gen, stop_at, &stop);
    hone_sequence_free(&prompt);
    if (st != HONE_OK) return st;
    *ended = n_gen > 0 && gen[n_gen - 1] == stop;
    size_t len;
    return hone_tokenizer_decode(o->render->tokenizer, gen, (size_t)(n_gen - *ended), 0, said, &len);
}

static int matches(const char *said, const char *answer) {
    while (is_space(*said)) said++;
    size_t n = strlen(said);
    while (n > 0 && is_space(said[n - 1])) n--;
    return strlen(answer) == n && !memcmp(said, answer, n);
}

hone_status hone_eval_exact_match(hone_model *m, const hone_answer_options *o, const hone_task_item *items, size_t n,
                                  hone_task_scores *scores, char **answers) {
    memset(scores, 0, sizeof *scores);
    if (o->max_new_tokens < 1) return hone_errorf(HONE_ERR_INVALID, "max_new_tokens must be at least 1");
    int32_t *gen = malloc(sizeof(int32_t) * (size_t)o->max_new_tokens);
    if (!gen) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    hone_status st = HONE_OK;
    for (size_t i = 0; i < n && st == HONE_OK; i++) {
        char *said;
        int ended;
        st = answer_one(m, o, &items[i], gen, &said, &ended);
        if (st != HONE_OK) {
            st = hone_error_context(st, "task item %zu (%s)", i, hone_task_name(items[i].task));
            break;
        }
        scores->total[items[i].task]++;
        scores->correct[items[i].task] += ended && matches(said, items[i].answer);
        if (answers) answers[i] = said;
        else free(said);
    }
    free(gen);
    return st;
}
