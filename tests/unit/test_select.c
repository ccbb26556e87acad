/* Instruction-data scores (src/select): IFD against the PyTorch oracle (tests/fixtures/select, written by
 * tools/make_select_fixtures.py, each pair scored alone in float64 while hone packs them), the prompt templates
 * against the texts of ALGORITHMS.md §1 (a byte-level tokenizer makes ids and text one-to-one), and scoring a file:
 * its rows, and resuming after an interrupted write. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hone/select.h"
#include "testutil.h"

/* ---- IFD against the oracle ---- */

static void check_ifd_fixture(const char *model_name, int micro_batch_size) {
    char dir[128], path[128];
    snprintf(dir, sizeof dir, "tests/fixtures/%s", model_name);
    snprintf(path, sizeof path, "tests/fixtures/select/ifd_%s.json", model_name);
    hone_model *m;
    TEST_OK(hone_model_load(&m, dir));
    json_error_t err;
    json_t *doc = json_load_file(path, 0, &err);
    if (!doc) fail_msg("%s: %s", path, err.text);
    const json_t *cases = json_object_get(doc, "cases");
    const size_t n = json_array_size(cases);
    hone_ifd_input *in = calloc(n, sizeof *in);
    int32_t **ids = calloc(2 * n, sizeof *ids);
    for (size_t i = 0; i < n; i++) {
        const json_t *c = json_array_get(cases, i);
        for (int part = 0; part < 2; part++) {
            const json_t *list = json_object_get(c, part ? "answer" : "prompt");
            ids[2 * i + part] = malloc((json_array_size(list) + 1) * sizeof(int32_t));
            for (size_t k = 0; k < json_array_size(list); k++)
                ids[2 * i + part][k] = (int32_t)json_integer_value(json_array_get(list, k));
        }
        in[i] = (hone_ifd_input){ids[2 * i], ids[2 * i + 1], json_array_size(json_object_get(c, "prompt")),
                                 json_array_size(json_object_get(c, "answer"))};
    }
    hone_ifd_score *sc = calloc(n, sizeof *sc);
    TEST_OK(hone_score_ifd(m, in, n, (int)json_integer_value(json_object_get(doc, "sequence_len")), micro_batch_size,
                           (int32_t)json_integer_value(json_object_get(doc, "start_id")), sc));
    for (size_t i = 0; i < n; i++) {
        const json_t *c = json_array_get(cases, i);
        const char *status = json_string_value(json_object_get(c, "status"));
        if (!strcmp(status, "scored")) {
            assert_int_equal(sc[i].status, HONE_IFD_SCORED);
            assert_int_equal(sc[i].n_answer_tokens, json_integer_value(json_object_get(c, "n_answer_tokens")));
            static const char *const fields[] = {"loss_cond", "loss_direct", "ifd", "ifd_loss"};
            const double got[] = {sc[i].loss_cond, sc[i].loss_direct, sc[i].ifd, sc[i].ifd_loss};
            for (int f = 0; f < 4; f++) {
                const double want = json_real_value(json_object_get(c, fields[f]));
                if (!(fabs(got[f] - want) <= 1e-5 * fabs(want)))
                    fail_msg("%s case %zu: %s = %.9g, oracle %.9g", model_name, i, fields[f], got[f], want);
            }
        } else {
            assert_int_equal(sc[i].status, !strcmp(status, "empty_answer") ? HONE_IFD_EMPTY_ANSWER
                                                                             : HONE_IFD_PROMPT_TOO_LONG);
            assert_true(isnan(sc[i].ifd));
        }
    }
    for (size_t i = 0; i < 2 * n; i++) free(ids[i]);
    free(ids);
    free(in);
    free(sc);
    json_decref(doc);
    hone_model_free(m);
}

static void test_ifd_gpt2(void **state) {
    (void)state;
    check_ifd_fixture("gpt2", 1);
    check_ifd_fixture("gpt2", 3);
}

static void test_ifd_llama(void **state) {
    (void)state;
    check_ifd_fixture("llama", 2);
}

static void test_ifd_rejects_bad_start(void **state) {
    (void)state;
    hone_model *m;
    TEST_OK(hone_model_load(&m, "tests/fixtures/gpt2"));
    const int32_t ids[] = {1, 2};
    hone_ifd_input in = {ids, ids, 1, 1};
    hone_ifd_score sc;
    TEST_FAILS_WITH(hone_score_ifd(m, &in, 1, 8, 1, 100000, &sc), "outside the vocabulary");
    hone_model_free(m);
}

/* ---- prompt texts ---- */

typedef struct {
    char *dir;
    hone_tokenizer *tok;
} fixture;

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    f->dir = test_tmpdir();
    static const char *const special[] = {"<|im_start|>", "<|im_end|>"};
    char *path = test_write_byte_level_tokenizer(f->dir, special, 2);
    TEST_OK(hone_tokenizer_load(&f->tok, path));
    free(path);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    hone_tokenizer_free(f->tok);
    test_tmpdir_remove(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

/* An alpaca-like example: instruction, input ("" = none), answer. */
static hone_example alpaca_example(const char *instruction, const char *input, const char *answer) {
    hone_example ex = {.kind = HONE_EXAMPLE_SFT, .line = 1};
    ex.instruction = strdup(instruction);
    ex.input = strdup(input);
    ex.conversation.n_messages = 2;
    ex.conversation.messages = calloc(2, sizeof(hone_message));
    ex.conversation.messages[0] = (hone_message){.role = strdup("user"), .weight = -1};
    ex.conversation.messages[1] = (hone_message){.role = strdup("assistant"), .content = strdup(answer), .weight = -1};
    size_t n = strlen(instruction) + strlen(input) + 2;
    ex.conversation.messages[0].content = malloc(n);
    snprintf(ex.conversation.messages[0].content, n, *input ? "%s\n%s" : "%s%s", instruction, input);
    return ex;
}

static char *decode(const hone_tokenizer *tok, const int32_t *ids, size_t n) {
    char *text;
    size_t len;
    TEST_OK(hone_tokenizer_decode(tok, ids, n, 0, &text, &len));
    return text;
}

static void expect_texts(const fixture *f, const hone_example *ex, hone_prompt_style style,
                         const hone_chat_template *ct, int reverse, const char *prompt, const char *target) {
    hone_ifd_options o = {.tokenizer = f->tok, .style = style, .chat_template = ct};
    hone_ifd_tokens t;
    TEST_OK(hone_ifd_tokenize(ex, &o, reverse, &t));
    char *p = decode(f->tok, t.prompt, t.n_prompt), *a = decode(f->tok, t.answer, t.n_answer);
    assert_string_equal(p, prompt);
    assert_string_equal(a, target);
    free(p);
    free(a);
    hone_ifd_tokens_free(&t);
}

static void test_prompt_templates(void **state) {
    fixture *f = *state;
    hone_example with_input = alpaca_example("Add the numbers.", "2 and 3", "5");
    hone_example no_input = alpaca_example("Name a colour.", "", "Blue.");
    expect_texts(f, &with_input, HONE_PROMPT_ALPACA, NULL, 0,
                 "Below is an instruction that describes a task, paired with an input that provides further context. "
                 "Write a response that appropriately completes the request.\n\n### Instruction:\nAdd the numbers."
                 "\n\n### Input:\n2 and 3\n\n### Response:",
                 "5");
    expect_texts(f, &no_input, HONE_PROMPT_ALPACA, NULL, 0,
                 "Below is an instruction that describes a task. Write a response that appropriately completes the "
                 "request.\n\n### Instruction:\nName a colour.\n\n### Response:",
                 "Blue.");
    expect_texts(f, &with_input, HONE_PROMPT_PLAIN, NULL, 0, "Add the numbers.\n2 and 3\n", "5");
    expect_texts(f, &with_input, HONE_PROMPT_VICUNA, NULL, 0,
                 "A chat between a curious user and an artificial intelligence assistant. The assistant gives "
                 "helpful, detailed, and polite answers to the user's questions. USER: Add the numbers.\n2 and 3 "
                 "ASSISTANT:",
                 "5");
    /* reverse: the response asks for the instruction, which (with its input) is the target */
    expect_texts(f, &with_input, HONE_PROMPT_ALPACA, NULL, 1,
                 "Below is an instruction that describes a task. Write a response that appropriately completes the "
                 "request.\n\n### Instruction:\nBelow is the response to an instruction, please guess the "
                 "corresponding instruction for the given response.\n5\nGenerate the instruction for the above "
                 "response.\n\n### Response:",
                 "Add the numbers.\n2 and 3");
    hone_chat_template *chatml;
    TEST_OK(hone_chat_template_builtin(&chatml, "chatml"));
    expect_texts(f, &no_input, HONE_PROMPT_CHAT, chatml, 0,
                 "<|im_start|>user\nName a colour.<|im_end|>\n<|im_start|>assistant\n", "Blue.");
    hone_chat_template_free(chatml);
    hone_example_free(&with_input);
    hone_example_free(&no_input);
}

static void test_tokenize_rejects_text_rows(void **state) {
    fixture *f = *state;
    hone_example ex = {.kind = HONE_EXAMPLE_TEXT, .line = 7, .text = "hello"};
    hone_ifd_options o = {.tokenizer = f->tok};
    hone_ifd_tokens t;
    TEST_FAILS_WITH(hone_ifd_tokenize(&ex, &o, 0, &t), "line 7 is a text row");
}

/* ---- scoring a file ---- */



static void test_score_file_resumes(void **state) {
    fixture *f = *state;
    hone_model_config c;
    TEST_OK(hone_model_config_preset(&c, "gpt2-tiny"));
    c.vocab_size = 260;
    c.max_position_embeddings = 512;
    hone_model *m;
    TEST_OK(hone_model_create(&m, &c, 7));
    static const char rows[] =
        "{\"instruction\": \"Reverse abc.\", \"input\": \"\", \"output\": \"cba\"}\n"
        "{\"instruction\": \"Add\", \"input\": \"1 and 2\", \"output\": \"3\"}\n"
        "{\"instruction\": \"Say nothing.\", \"input\": \"\", \"output\": \"\"}\n"
        "{\"instruction\": \"%s\", \"input\": \"\", \"output\": \"too late\"}\n"
        "{\"instruction\": \"Sort 3 1 2.\", \"input\": \"\", \"output\": \"1 2 3\"}\n"
        "{\"instruction\": \"Copy xyz.\", \"input\": \"\", \"output\": \"xyz\"}\n";
    char long_instruction[450], text[1024];
    memset(long_instruction, 'x', sizeof long_instruction - 1);
    long_instruction[sizeof long_instruction - 1] = 0;
    snprintf(text, sizeof text, rows, long_instruction);
    char *data = test_write_file(f->dir, "data.jsonl", text, strlen(text));
    char *out = hone_path_join(f->dir, "scores.jsonl");
    hone_score_file_options o = {.data_path = data, .ifd = {.tokenizer = f->tok}, .reverse = 1,
                                 .sequence_len = 512, .micro_batch_size = 2, .start_id = 0, .output_path = out,
                                 .chunk = 2};
    hone_score_file_summary sum;
    TEST_OK(hone_score_file(m, &o, NULL, NULL, &sum));
    assert_int_equal(sum.dataset.dropped_by[HONE_DROP_EMPTY_ANSWER], 1); /* counted by the dataset reader */
    assert_int_equal(sum.examples, 5);
    assert_int_equal(sum.scored, 5);
    assert_int_equal(sum.not_scored, 1);
    char *whole = NULL, *again = NULL;
    TEST_OK(hone_file_read(out, &whole, NULL));

    /* every row: its index, the example's fields, and the scores consistent with each other */
    json_t *row = json_loadb(whole, strchr(whole, '\n') - whole, 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(row, "index")), 0);
    assert_string_equal(json_string_value(json_object_get(row, "output")), "cba");
    const double cond = json_real_value(json_object_get(row, "loss_cond"));
    const double direct = json_real_value(json_object_get(row, "loss_direct"));
    assert_true(fabs(json_real_value(json_object_get(row, "ifd")) - exp(cond - direct)) < 1e-6);
    assert_int_equal(json_integer_value(json_object_get(row, "n_answer_tokens")), 3);
    assert_true(json_is_real(json_object_get(row, "rifd")));
    json_decref(row);
    assert_non_null(strstr(whole, "\"ifd\":null"));
    assert_non_null(strstr(whole, "\"not_scored\":\"prompt_longer_than_sequence_len\""));

    /* a run killed in the middle of writing the fourth row: the unfinished chunk (rows 2, 3) is scored again, so
     * that its examples are packed together as before and the file is the same to the bit */
    const char *third_end = whole;
    for (int k = 0; k < 3; k++) third_end = strchr(third_end, '\n') + 1;
    FILE *fp = fopen(out, "w");
    fwrite(whole, 1, (size_t)(third_end - whole) + 10, fp);
    fclose(fp);
    TEST_OK(hone_score_file(m, &o, NULL, NULL, &sum));
    assert_int_equal(sum.resumed, 2);
    assert_int_equal(sum.scored, 3);
    TEST_OK(hone_file_read(out, &again, NULL));
    assert_string_equal(again, whole);
    free(again);

    /* a complete output: nothing left to do */
    TEST_OK(hone_score_file(m, &o, NULL, NULL, &sum));
    assert_int_equal(sum.resumed, 5);
    assert_int_equal(sum.scored, 0);

    /* other options than the output was written with */
    o.sequence_len = 500;
    TEST_FAILS_WITH(hone_score_file(m, &o, NULL, NULL, &sum), "different sequence_len");
    free(whole);
    free(out);
    free(data);
    hone_model_free(m);
}

/* ---- selection ---- */

static void test_select_thresholds_and_cap(void **state) {
    (void)state;
    /* ifd:  0.5  nan  1.2  0.9  0.9  0.1  0.7 ; rifd of example 6 too high */
    const double ifd[] = {0.5, NAN, 1.2, 0.9, 0.9, 0.1, 0.7};
    const double rifd[] = {0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 1.5};
    hone_select_decision d[7];
    hone_select_options o = {.max_ifd = 1, .max_rifd = 1, .top_k = 3};
    TEST_OK(hone_select_ifd(ifd, rifd, 7, &o, d));
    const hone_select_reason want[] = {HONE_SELECT_KEPT,     HONE_SELECT_NOT_SCORED, HONE_SELECT_IFD_TOO_HIGH,
                                       HONE_SELECT_KEPT,     HONE_SELECT_KEPT,       HONE_SELECT_BELOW_CUT,
                                       HONE_SELECT_RIFD_TOO_HIGH};
    const size_t rank[] = {3, 0, 0, 1, 2, 4, 0}; /* ties in file order */
    for (int i = 0; i < 7; i++) {
        assert_int_equal(d[i].reason, want[i]);
        assert_int_equal(d[i].rank, rank[i]);
    }
    /* a fraction of all examples: round(0.3 × 7) = 2 */
    o = (hone_select_options){.max_ifd = 1, .top_fraction = 0.3};
    TEST_OK(hone_select_ifd(ifd, NULL, 7, &o, d));
    assert_int_equal(d[3].reason, HONE_SELECT_KEPT);
    assert_int_equal(d[4].reason, HONE_SELECT_KEPT);
    assert_int_equal(d[6].reason, HONE_SELECT_BELOW_CUT);
    /* no threshold: ifd 1.2 ranks first */
    o = (hone_select_options){.top_k = 1};
    TEST_OK(hone_select_ifd(ifd, NULL, 7, &o, d));
    assert_int_equal(d[2].reason, HONE_SELECT_KEPT);
    assert_int_equal(d[3].reason, HONE_SELECT_BELOW_CUT);
    o = (hone_select_options){.top_fraction = 1.5};
    TEST_FAILS_WITH(hone_select_ifd(ifd, NULL, 7, &o, d), "top_fraction");
    o = (hone_select_options){.max_similarity = 0.9};
    TEST_FAILS_WITH(hone_select_ifd(ifd, NULL, 7, &o, d), "embeddings");
}

static void test_select_diversity(void **state) {
    (void)state;
    /* in ifd order 0, 1, 2, 3: 1 is nearly parallel to 0 (cos 0.995), 2 is orthogonal to both, 3 is parallel to 2
     * but the cap (2 kept) comes first */
    const double ifd[] = {0.9, 0.8, 0.7, 0.6};
    const float emb[] = {1, 0, 0, 1, 0.1f, 0, 0, 0, 1, 0, 0, 2};
    hone_select_decision d[4];
    hone_select_options o = {.max_similarity = 0.9, .top_k = 2, .embeddings = emb, .dim = 3};
    TEST_OK(hone_select_ifd(ifd, NULL, 4, &o, d));
    assert_int_equal(d[0].reason, HONE_SELECT_KEPT);
    assert_int_equal(d[1].reason, HONE_SELECT_TOO_SIMILAR);
    assert_true(fabs(d[1].similarity - 1 / sqrt(1.01)) < 1e-6);
    assert_int_equal(d[2].reason, HONE_SELECT_KEPT);
    assert_int_equal(d[3].reason, HONE_SELECT_BELOW_CUT);
}

/* A file that is not a scores file (or was edited) is refused with the line that is wrong. */
static void test_select_file_rejects_bad_rows(void **state) {
    (void)state;
    char *dir = test_tmpdir();
    static const char bad_index[] = "{\"index\":0,\"ifd\":0.5}\n{\"index\":5,\"ifd\":0.7}\n";
    static const char not_json[] = "{\"index\":0,\"ifd\":0.5}\n{\"index\":1,\"ifd\":\n";
    static const char no_score[] = "{\"index\":0,\"instruction\":\"x\"}\n";
    const char *const files[] = {bad_index, not_json, no_score};
    const char *const lines[] = {":2: not the scores row of example 1", ":2: not the scores row of example 1",
                                 ":1: not the scores row of example 0"};
    char *out = hone_path_join(dir, "kept.jsonl");
    hone_select_options o = {.max_ifd = 1};
    hone_select_summary sum;
    for (int i = 0; i < 3; i++) {
        char *path = test_write_file(dir, "scores.jsonl", files[i], strlen(files[i]));
        TEST_FAILS_WITH(hone_select_file(path, &o, out, NULL, &sum), lines[i]);
        assert_false(hone_file_exists(out)); /* nothing written */
        free(path);
    }
    free(out);
    test_tmpdir_remove(dir);
    free(dir);
}

/* The packed embeddings equal the mean hidden state of each sequence run alone. */
static void test_embed_sequences(void **state) {
    (void)state;
    hone_model *m;
    TEST_OK(hone_model_load(&m, "tests/fixtures/llama"));
    const size_t C = (size_t)hone_model_get_config(m)->hidden_size;
    const int32_t a[] = {3, 9, 27, 1, 4}, b[] = {5, 8}, c[] = {7, 7, 7, 2, 6, 1, 9, 4, 3};
    const int32_t *ids[] = {a, b, c};
    const size_t lens[] = {5, 2, 9};
    float *packed = malloc(3 * C * sizeof(float)), *alone = calloc(C, sizeof(float));
    TEST_OK(hone_embed_sequences(m, ids, lens, 3, 12, 2, packed));
    for (int i = 0; i < 3; i++) {
        TEST_OK(hone_model_prepare(m, 1, (int)lens[i], 0));
        TEST_OK(hone_model_forward(m, ids[i], 1, (int)lens[i]));
        const float *h = hone_model_hidden(m);
        for (size_t dd = 0; dd < C; dd++) {
            double sum = 0;
            for (size_t t = 0; t < lens[i]; t++) sum += h[t * C + dd];
            alone[dd] = (float)(sum / (double)lens[i]);
        }
        test_assert_close(packed + i * C, alone, C, 1e-6f, 1e-5f, "packed embedding");
    }
    free(packed);
    free(alone);
    hone_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ifd_gpt2),
        cmocka_unit_test(test_ifd_llama),
        cmocka_unit_test(test_ifd_rejects_bad_start),
        cmocka_unit_test_setup_teardown(test_prompt_templates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tokenize_rejects_text_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_score_file_resumes, setup, teardown),
        cmocka_unit_test(test_select_thresholds_and_cap),
        cmocka_unit_test(test_select_diversity),
        cmocka_unit_test(test_embed_sequences),
        cmocka_unit_test(test_select_file_rejects_bad_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
