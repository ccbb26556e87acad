/* Exact-match accuracy of greedy answers to task prompts (hone/eval.h). */
#include <stdlib.h>
#include <string.h>

#include "hone/eval.h"

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static int stop_at(int32_t id, void *user) { return id == *(const int32_t *)user; }

/* The model's answer to one prompt: *said (malloc'd) is the decoded text before the stop token; *ended tells whether
 * the model generated the stop token. gen: max_new_tokens slots. */
static hone_status answer_one(hone_model *m, const hone_answer_options *o, const char *prompt_text, int32_t *gen,
                              char **said, int *ended) {
    /* a task item with an empty answer: hone_render_prompt renders the user turn and the generation prompt only */
    const hone_task_item it = {.prompt = (char *)prompt_text, .answer = ""};
    hone_example ex;
    hone_sequence prompt = {0};
    *said = NULL;
    *ended = 0;
    HONE_TRY(hone_task_item_example(&it, &ex));
    hone_status st = hone_render_prompt(&ex, o->render, &prompt);
    hone_example_free(&ex);
    int n_gen = 0;
    /* stops at stop_id and at every id of the model's eos_token_id list */
    const hone_sampling greedy = {.max_new_tokens = o->max_new_tokens, .temperature = 0, .top_p = 1, .stop_at_eos = 1};
    int32_t stop = o->stop_id;
    if (st == HONE_OK) st = hone_generate(m, prompt.input_ids, (int)prompt.n, &greedy, gen, &n_gen, stop_at, &stop);
    hone_sequence_free(&prompt);
    if (st != HONE_OK) return st;
    *ended = n_gen > 0 && (gen[n_gen - 1] == stop || hone_model_is_eos(m, gen[n_gen - 1]));
    size_t len;
    return hone_tokenizer_decode(o->render->tokenizer, gen, (size_t)(n_gen - *ended), 0, said, &len);
}

static int matches(const char *said, const char *answer) {
    while (is_space(*said)) said++;
    size_t n = strlen(said);
    while (n > 0 && is_space(said[n - 1])) n--;
    return strlen(answer) == n && !memcmp(said, answer, n);
}

hone_status hone_eval_answer(hone_model *m, const hone_answer_options *o, const char *prompt, const char *answer,
                             int *correct, char **said) {
    *correct = 0;
    if (said) *said = NULL;
    if (o->max_new_tokens < 1) return hone_errorf(HONE_ERR_INVALID, "max_new_tokens must be at least 1");
    int32_t *gen = malloc(sizeof(int32_t) * (size_t)o->max_new_tokens);
    if (!gen) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    char *text;
    int ended;
    hone_status st = answer_one(m, o, prompt, gen, &text, &ended);
    free(gen);
    HONE_TRY(st);
    *correct = ended && matches(text, answer);
    if (said) *said = text;
    else free(text);
    return HONE_OK;
}

hone_status hone_eval_exact_match(hone_model *m, const hone_answer_options *o, const hone_task_item *items, size_t n,
                                  hone_task_scores *scores, char **answers) {
    memset(scores, 0, sizeof *scores);
    hone_status st = HONE_OK;
    for (size_t i = 0; i < n && st == HONE_OK; i++) {
        int correct;
        st = hone_eval_answer(m, o, items[i].prompt, items[i].answer, &correct, answers ? &answers[i] : NULL);
        if (st != HONE_OK) {
            st = hone_error_context(st, "task item %zu (%s)", i, hone_task_name(items[i].task));
            break;
        }
        scores->total[items[i].task]++;
        scores->correct[items[i].task] += correct;
    }
    return st;
}

hone_status hone_eval_answer_set(hone_model *m, const hone_answer_options *o, const hone_answer_set *set,
                                 size_t *correct, size_t *total) {
    memset(correct, 0, set->n_tasks * sizeof *correct);
    memset(total, 0, set->n_tasks * sizeof *total);
    for (size_t i = 0; i < set->n; i++) {
        const hone_answer_item *it = &set->items[i];
        int right;
        hone_status st = hone_eval_answer(m, o, it->prompt, it->answer, &right, NULL);
        if (st != HONE_OK) return hone_error_context(st, "%s:%zu", set->path, it->line);
        total[it->task]++;
        correct[it->task] += right;
    }
    return HONE_OK;
}
