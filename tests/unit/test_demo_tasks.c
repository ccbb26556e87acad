/* The synthetic instruction suite (src/data/tasks.c), the demo's byte-level chat tokenizer
 * (src/data/byte_tokenizer.c) and exact-match scoring by generation (src/eval/exact_match.c): every answer is
 * recomputed here from the prompt alone, by a parser that knows only what the prompts look like; held-out problems
 * never appear in training in any phrasing; the suite is a function of the seed; the tokenizer loads with hone's
 * loader, keeps byte ids and renders ChatML; an answer counts only when the model ends its turn after exactly the
 * expected text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hone/chat_template.h"
#include "hone/data.h"
#include "hone/eval.h"
#include "hone/model.h"
#include "hone/render.h"
#include "hone/tasks.h"
#include "hone/tokenizer.h"
#include "testutil.h"

/* ---- an independent reading of each task's prompt: its answer, and its problem without the phrasing ---- */

/* Every phrasing ends with ": " and the operands, or (add) with the sum "AB + C". */
static const char *operands(const char *prompt) {
    const char *colon = strrchr(prompt, ':');
    return colon ? colon + 2 : prompt;
}

static void solve_reverse(const char *prompt, char *answer, char *problem) {
    const char *word = operands(prompt);
    assert_int_equal(strlen(word), 3);
    for (size_t i = 0; i < 3; i++) {
        assert_true(word[i] >= 'a' && word[i] <= 'z');
        answer[i] = word[2 - i];
    }
    answer[3] = 0;
    strcpy(problem, word);
}

static int cmp_char(const void *a, const void *b) { return *(const char *)a - *(const char *)b; }

static void solve_sort(const char *prompt, char *answer, char *problem) {
    char digits[16];
    size_t n = 0;
    for (const char *p = operands(prompt); *p; p++)
        if (*p >= '0' && *p <= '9') digits[n++] = *p;
        else assert_int_equal(*p, ' ');
    assert_int_equal(n, 3);
    digits[n] = 0;
    strcpy(problem, digits); /* in the order given: a different order is a different problem */
    qsort(digits, n, 1, cmp_char);
    for (size_t i = 0; i < n; i++) answer[2 * i] = digits[i], answer[2 * i + 1] = ' ';
    answer[2 * n - 1] = 0;
}

static void solve_add(const char *prompt, char *answer, char *problem) {
    int a, b, used = 0;
    const char *plus = strstr(prompt, " + "), *start = plus;
    assert_non_null(plus);
    while (start > prompt && start[-1] >= '0' && start[-1] <= '9') start--;
    assert_int_equal(sscanf(start, "%d + %d%n", &a, &b, &used), 2);
    assert_int_equal(start[used], 0);
    assert_true(a >= 10 && a <= 99 && b >= 0 && b <= 9);
    sprintf(answer, "%d", a + b);
    sprintf(problem, "%d+%d", a, b);
}

static void solve_next(const char *prompt, char *answer, char *problem) {
    char *end;
    const long n = strtol(operands(prompt), &end, 10);
    assert_int_equal(*end, 0);
    assert_true(n >= 10 && n <= 998);
    sprintf(answer, "%ld", n + 1);
    sprintf(problem, "%ld", n);
}

static void solve(const hone_task_item *it, char *answer, char *problem) {
    switch (it->task) {
    case HONE_TASK_REVERSE: solve_reverse(it->prompt, answer, problem); break;
    case HONE_TASK_SORT: solve_sort(it->prompt, answer, problem); break;
    case HONE_TASK_ADD: solve_add(it->prompt, answer, problem); break;
    case HONE_TASK_NEXT: solve_next(it->prompt, answer, problem); break;
    default: fail_msg("unknown task %d", (int)it->task);
    }
}

static void test_answers_are_correct(void **state) {
    (void)state;
    hone_task_set train, test;
    TEST_OK(hone_task_suite(7, 500, 50, &train, &test));
    assert_int_equal(train.n, 500 * HONE_TASK_COUNT);
    assert_int_equal(test.n, 50 * HONE_TASK_COUNT);
    const hone_task_set *sets[2] = {&train, &test};
    for (int s = 0; s < 2; s++) {
        size_t seen_prompt_starts[HONE_TASK_COUNT] = {0};
        char first_words[HONE_TASK_COUNT][8][16];
        for (size_t i = 0; i < sets[s]->n; i++) {
            const hone_task_item *it = &sets[s]->items[i];
            assert_int_equal(it->task, (hone_task)(i % HONE_TASK_COUNT)); /* interleaved */
            char answer[64], problem[256];
            solve(it, answer, problem);
            if (strcmp(answer, it->answer))
                fail_msg("'%s': answer '%s', expected '%s'", it->prompt, it->answer, answer);
            /* several phrasings: count distinct first words */
            char w[16];
            sscanf(it->prompt, "%15s", w);
            size_t k = 0, *n = &seen_prompt_starts[it->task];
            while (k < *n && strcmp(first_words[it->task][k], w)) k++;
            if (k == *n && *n < 8) strcpy(first_words[it->task][(*n)++], w);
        }
        for (int t = 0; t < HONE_TASK_COUNT; t++)
            if (seen_prompt_starts[t] < 3)
                fail_msg("task %s: only %zu phrasings seen", hone_task_name((hone_task)t), seen_prompt_starts[t]);
    }
    hone_task_set_free(&train);
    hone_task_set_free(&test);
}

static void test_train_and_test_are_disjoint(void **state) {
    (void)state;
    hone_task_set train, test;
    TEST_OK(hone_task_suite(11, 2000, 100, &train, &test)); /* the demo's sizes */
    char (*test_problems)[256] = malloc(test.n * sizeof *test_problems);
    for (size_t j = 0; j < test.n; j++) {
        char answer[64];
        solve(&test.items[j], answer, test_problems[j]);
        for (size_t k = 0; k < j; k++) /* held-out problems are distinct among themselves */
            if (test.items[k].task == test.items[j].task && !strcmp(test_problems[k], test_problems[j]))
                fail_msg("test items %zu and %zu pose the same problem '%s'", k, j, test_problems[j]);
    }
    for (size_t i = 0; i < train.n; i++) {
        char answer[64], problem[256];
        solve(&train.items[i], answer, problem);
        for (size_t j = 0; j < test.n; j++) {
            if (!strcmp(train.items[i].prompt, test.items[j].prompt))
                fail_msg("test prompt '%s' is also a training prompt", test.items[j].prompt);
            if (train.items[i].task == test.items[j].task && !strcmp(problem, test_problems[j]))
                fail_msg("training prompt '%s' poses held-out problem '%s' ('%s')", train.items[i].prompt,
                         test_problems[j], test.items[j].prompt);
        }
    }
    free(test_problems);
    hone_task_set_free(&train);
    hone_task_set_free(&test);
}

static void test_deterministic_in_the_seed(void **state) {
    (void)state;
    hone_task_set a_train, a_test, b_train, b_test, c_train, c_test;
    TEST_OK(hone_task_suite(3, 40, 10, &a_train, &a_test));
    TEST_OK(hone_task_suite(3, 40, 10, &b_train, &b_test));
    TEST_OK(hone_task_suite(4, 40, 10, &c_train, &c_test));
    size_t differ = 0;
    for (size_t i = 0; i < a_train.n; i++) {
        assert_string_equal(a_train.items[i].prompt, b_train.items[i].prompt);
        assert_string_equal(a_train.items[i].answer, b_train.items[i].answer);
        differ += strcmp(a_train.items[i].prompt, c_train.items[i].prompt) != 0;
    }
    for (size_t i = 0; i < a_test.n; i++) assert_string_equal(a_test.items[i].prompt, b_test.items[i].prompt);
    assert_true(differ > a_train.n / 2);
    hone_task_set *sets[] = {&a_train, &a_test, &b_train, &b_test, &c_train, &c_test};
    for (size_t k = 0; k < 6; k++) hone_task_set_free(sets[k]);
}

static void test_too_many_held_out_problems(void **state) {
    (void)state;
    hone_task_set train, test;
    /* add has 900 problems (10..99 + 0..9), the fewest */
    TEST_FAILS_WITH(hone_task_suite(1, 10, 901, &train, &test), "task 'add' has too few distinct problems");
    assert_null(train.items);
    assert_null(test.items);
}

static void test_item_example_and_byte_chat_tokenizer(void **state) {
    (void)state;
    char *dir = test_tmpdir();
    TEST_OK(hone_byte_chat_tokenizer_write(dir));
    hone_tokenizer *tok;
    TEST_OK(hone_tokenizer_load(&tok, dir));
    const hone_special_tokens *sp = hone_tokenizer_special(tok);
    assert_int_equal(hone_tokenizer_vocab_size(tok), HONE_BYTE_CHAT_VOCAB);
    assert_int_equal(sp->eos_id, 258);
    assert_string_equal(sp->eos_token, "<|im_end|>");
    assert_int_equal(sp->pad_id, 256);
    assert_int_equal(hone_tokenizer_token_to_id(tok, "<|im_start|>"), 257);
    /* bytes keep their values as ids, so byte streams (hone_tokens_from_bytes) and the tokenizer agree */
    const char text[] = "Reverse: qej\nSort: 7 2 9 \xc3\xa9";
    int32_t *ids;
    size_t n;
    TEST_OK(hone_tokenizer_encode(tok, text, sizeof text - 1, 1, &ids, &n));
    assert_int_equal(n, sizeof text - 1);
    for (size_t i = 0; i < n; i++) assert_int_equal(ids[i], (unsigned char)text[i]);
    free(ids);

    hone_task_set train, test;
    TEST_OK(hone_task_suite(5, 1, 1, &train, &test));
    hone_example ex;
    TEST_OK(hone_task_item_example(&train.items[0], &ex));
    assert_int_equal(ex.kind, HONE_EXAMPLE_SFT);
    assert_int_equal(ex.conversation.n_messages, 2);
    assert_string_equal(ex.conversation.messages[0].role, "user");
    assert_string_equal(ex.conversation.messages[0].content, train.items[0].prompt);
    assert_string_equal(ex.conversation.messages[1].role, "assistant");
    assert_string_equal(ex.conversation.messages[1].content, train.items[0].answer);
    /* the folder's chat template is ChatML: the rendered example, and only the answer and <|im_end|> trained */
    hone_chat_template *tmpl;
    TEST_OK(hone_chat_template_from_model(&tmpl, dir));
    hone_render_options ro = {.tokenizer = tok, .chat_template = tmpl, .eos_id = sp->eos_id};
    hone_sequence seq;
    TEST_OK(hone_render_example(&ex, &ro, &seq));
    char want[512];
    snprintf(want, sizeof want, "<|im_start|>user\n%s<|im_end|>\n<|im_start|>assistant\n%s<|im_end|>\n",
             train.items[0].prompt, train.items[0].answer);
    assert_string_equal(seq.text, want);
    assert_int_equal(seq.n_trained, strlen(train.items[0].answer) + 1);
    assert_int_equal(seq.labels[seq.n - 2], 258);
    hone_sequence_free(&seq);
    hone_chat_template_free(tmpl);
    hone_example_free(&ex);
    hone_task_set_free(&train);
    hone_task_set_free(&test);
    hone_tokenizer_free(tok);
    test_tmpdir_remove(dir);
    free(dir);
}

/* A model that always predicts `token`, whatever the input: every layer and norm zero but the final norm, so the
 * residual stream stays the input embedding; every embedding row (tied to the output) is the unit vector e0 except
 * token's, which is 2 e0, so its logit is twice the others'. */
static hone_model *constant_model(int32_t token) {
    hone_model_config c;
    TEST_OK(hone_model_config_preset(&c, "llama-tiny"));
    c.vocab_size = HONE_BYTE_CHAT_VOCAB;
    c.eos_token_id = 258;
    hone_model *m;
    TEST_OK(hone_model_create(&m, &c, 1));
    size_t n_seg;
    const hone_param_segment *seg = hone_model_segments(m, &n_seg);
    float *p = hone_model_params(m);
    memset(p, 0, hone_model_num_params(m) * sizeof *p);
    for (int v = 0; v < c.vocab_size; v++) p[seg[0].offset + (size_t)v * c.hidden_size] = v == token ? 2 : 1;
    for (size_t i = 0; i < seg[n_seg - 1].size; i++) p[seg[n_seg - 1].offset + i] = 1; /* final norm gain */
    return m;
}

static void test_exact_match_by_generation(void **state) {
    (void)state;
    char *dir = test_tmpdir();
    TEST_OK(hone_byte_chat_tokenizer_write(dir));
    hone_tokenizer *tok;
    hone_chat_template *tmpl;
    TEST_OK(hone_tokenizer_load(&tok, dir));
    TEST_OK(hone_chat_template_from_model(&tmpl, dir));
    hone_render_options ro = {.tokenizer = tok, .chat_template = tmpl, .eos_id = 258};
    hone_answer_options ao = {.render = &ro, .stop_id = 258, .max_new_tokens = 5};
    hone_task_item items[3] = {{HONE_TASK_ADD, "Add: 0 + 0", ""}, {HONE_TASK_ADD, "Add: 1 + 1", "2"},
                               {HONE_TASK_NEXT, "Successor of: 10", ""}};
    char *said[3];
    hone_task_scores sc;
    /* ends its turn at once: the empty answers match, "2" does not */
    hone_model *stops = constant_model(258);
    TEST_OK(hone_eval_exact_match(stops, &ao, items, 3, &sc, said));
    assert_int_equal(sc.total[HONE_TASK_ADD], 2);
    assert_int_equal(sc.correct[HONE_TASK_ADD], 1);
    assert_int_equal(sc.total[HONE_TASK_NEXT], 1);
    assert_int_equal(sc.correct[HONE_TASK_NEXT], 1);
    assert_int_equal(sc.total[HONE_TASK_REVERSE] + sc.total[HONE_TASK_SORT], 0);
    for (int i = 0; i < 3; i++) assert_string_equal(said[i], ""), free(said[i]);
    /* says "2" forever: the right text, but the turn never ends within max_new_tokens, so nothing counts */
    hone_model *twos = constant_model('2');
    TEST_OK(hone_eval_exact_match(twos, &ao, items, 3, &sc, said));
    assert_int_equal(sc.correct[HONE_TASK_ADD] + sc.correct[HONE_TASK_NEXT], 0);
    for (int i = 0; i < 3; i++) assert_string_equal(said[i], "22222"), free(said[i]);
    /* the same with one new token allowed: "2" alone, not ended */
    ao.max_new_tokens = 1;
    TEST_OK(hone_eval_exact_match(twos, &ao, items + 1, 1, &sc, said));
    assert_int_equal(sc.correct[HONE_TASK_ADD], 0);
    assert_string_equal(said[0], "2");
    free(said[0]);
    ao.max_new_tokens = 0;
    TEST_FAILS_WITH(hone_eval_exact_match(twos, &ao, items, 3, &sc, NULL), "max_new_tokens must be at least 1");
    hone_model_free(stops);
    hone_model_free(twos);
    hone_chat_template_free(tmpl);
    hone_tokenizer_free(tok);
    test_tmpdir_remove(dir);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_answers_are_correct),
        cmocka_unit_test(test_train_and_test_are_disjoint),
        cmocka_unit_test(test_deterministic_in_the_seed),
        cmocka_unit_test(test_too_many_held_out_problems),
        cmocka_unit_test(test_item_example_and_byte_chat_tokenizer),
        cmocka_unit_test(test_exact_match_by_generation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
