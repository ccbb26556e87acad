/* Prompt/answer files for exact match (src/eval/answer_file.c, read by hone eval --tasks) and the task suite written
 * as such a file (hone_task_set_write_jsonl, hone demo --write-suite): fields, the prompt built from instruction and
 * input, task groups, errors naming the file and line, and the suite read back item for item. */
#include <stdlib.h>
#include <string.h>

#include "hone/eval.h"
#include "hone/tasks.h"
#include "testutil.h"

static char *write_text(const char *dir, const char *text) {
    return test_write_file(dir, "t.jsonl", text, strlen(text));
}

static void test_rows(void **state) {
    (void)state;
    char *dir = test_tmpdir();
    char *path =
        write_text(dir, "{\"instruction\": \"Add: 1 + 2\", \"output\": \"3\", \"task\": \"add\", \"x\": [1]}\n"
                        "\n"
                        "  \n"
                        "{\"instruction\": \"Translate\", \"input\": \"chat\", \"output\": \"cat\"}\n"
                        "{\"instruction\": \"\", \"input\": \"only input\", \"output\": \"\", \"task\": \"b\"}\n"
                        "{\"instruction\": \"Add: 2 + 2\", \"input\": \"\", \"output\": \"4\", \"task\": \"add\"}");
    hone_answer_set s;
    TEST_OK(hone_answer_set_load(&s, path));
    assert_int_equal(s.n, 4);
    assert_int_equal(s.n_tasks, 3);
    /* task names in order of first appearance; a row without one is "default" */
    assert_string_equal(s.tasks[0], "add");
    assert_string_equal(s.tasks[1], "default");
    assert_string_equal(s.tasks[2], "b");
    const size_t want_task[] = {0, 1, 2, 0}, want_line[] = {1, 4, 5, 6};
    const char *want_prompt[] = {"Add: 1 + 2", "Translate\nchat", "only input", "Add: 2 + 2"};
    const char *want_answer[] = {"3", "cat", "", "4"};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(s.items[i].task, want_task[i]);
        assert_int_equal(s.items[i].line, want_line[i]);
        assert_string_equal(s.items[i].prompt, want_prompt[i]);
        assert_string_equal(s.items[i].answer, want_answer[i]);
    }
    hone_answer_set_free(&s);
    assert_int_equal(s.n, 0);
    test_tmpdir_remove(dir);
    free(dir);
    free(path);
}

static void test_errors(void **state) {
    (void)state;
    char *dir = test_tmpdir();
    static const struct {
        const char *text, *needle;
    } bad[] = {
        {"{\"instruction\": \"a\", \"output\": \"b\"}\n{\"instruction\": \"a\", \"output\": }\n",
         "t.jsonl:2: not JSON"},
        {"\n{\"instruction\": \"a\"}\n", "t.jsonl:2: missing field \"output\""},
        {"{\"output\": \"b\"}\n", "t.jsonl:1: missing field \"instruction\""},
        {"{\"instruction\": 7, \"output\": \"b\"}\n", "t.jsonl:1: field \"instruction\" must be a string"},
        {"{\"instruction\": \"a\", \"output\": \"b\", \"task\": 3}\n", "t.jsonl:1: field \"task\" must be a string"},
        {"{\"instruction\": \"a\", \"output\": \"b\", \"input\": null}\n",
         "t.jsonl:1: field \"input\" must be a string"},
        {"{\"instruction\": \"\", \"output\": \"b\"}\n", "t.jsonl:1: empty prompt"},
        {"[\"a\", \"b\"]\n", "t.jsonl:1: a row must be a JSON object"},
        {"{\"instruction\": \"\xff\", \"output\": \"b\"}\n", "t.jsonl:1: not JSON"},
        {"\n \n", "t.jsonl has no rows"},
        {"", "t.jsonl has no rows"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *path = write_text(dir, bad[i].text);
        hone_answer_set s;
        TEST_FAILS_WITH(hone_answer_set_load(&s, path), bad[i].needle);
        assert_int_equal(s.n, 0);
        assert_null(s.items);
        free(path);
    }
    char *missing = hone_path_join(dir, "missing.jsonl");
    hone_answer_set s;
    TEST_FAILS_WITH(hone_answer_set_load(&s, missing), "missing.jsonl");
    free(missing);
    test_tmpdir_remove(dir);
    free(dir);
}

/* The suite written as JSONL and read back: the same prompts, answers and tasks, in the same order. */
static void test_suite_round_trip(void **state) {
    (void)state;
    char *dir = test_tmpdir(), *path = hone_path_join(dir, "train.jsonl");
    hone_task_set train, test;
    TEST_OK(hone_task_suite(3, 5, 2, &train, &test));
    TEST_OK(hone_task_set_write_jsonl(&train, path));
    char *text;
    size_t size;
    TEST_OK(hone_file_read(path, &text, &size));
    char first[256];
    snprintf(first, sizeof first,
             "{\"instruction\": \"%s\", \"input\": \"\", \"output\": \"%s\", \"task\": \"reverse\"}\n",
             train.items[0].prompt, train.items[0].answer);
    assert_memory_equal(text, first, strlen(first));
    free(text);
    hone_answer_set s;
    TEST_OK(hone_answer_set_load(&s, path));
    assert_int_equal(s.n, train.n);
    assert_string_equal(s.path, path);
    assert_int_equal(s.n_tasks, HONE_TASK_COUNT);
    for (size_t t = 0; t < HONE_TASK_COUNT; t++) assert_string_equal(s.tasks[t], hone_task_name((hone_task)t));
    for (size_t i = 0; i < s.n; i++) {
        assert_string_equal(s.items[i].prompt, train.items[i].prompt);
        assert_string_equal(s.items[i].answer, train.items[i].answer);
        assert_string_equal(s.tasks[s.items[i].task], hone_task_name(train.items[i].task));
        assert_int_equal(s.items[i].line, i + 1);
    }
    hone_answer_set_free(&s);
    hone_task_set_free(&train);
    hone_task_set_free(&test);
    test_tmpdir_remove(dir);
    free(dir);
    free(path);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_suite_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
