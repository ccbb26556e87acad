/* FastChat conversation templates rendered turn by turn (src/data/render_fastchat.c, dataset option conversation),
 * checked against ids and masks worked out by hand from axolotl's ShareGPTPromptTokenizingStrategy and FastChat's
 * get_turns (the derivation is written above each expectation). The tokenizer has one token per byte plus <s>,
 * </s>, <|im_start|>, <|im_end|>, and puts <s> first as Llama's does (add_bos_token), so a sequence reads as text:
 * B = <s>, E = </s>, S = <|im_start|>, T = <|im_end|>, and '.' marks an untrained label. axolotl's real golden file
 * (Vicuna with the Llama 2 tokenizer) is compared id by id in tests/integration/data_render_fastchat.sh. */
#include <stdlib.h>
#include <string.h>

#include "hone/render.h"
#include "testutil.h"

typedef struct {
    char *dir;
    hone_tokenizer *tok;
} fixture;

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    f->dir = test_tmpdir();
    static const char *const special[] = {"<s>", "</s>", "<|im_start|>", "<|im_end|>"};
    free(test_write_byte_level_tokenizer(f->dir, special, 4));
    const char *config = "{\"bos_token\": \"<s>\", \"eos_token\": \"</s>\", \"add_bos_token\": true}";
    free(test_write_file(f->dir, "tokenizer_config.json", config, strlen(config)));
    TEST_OK(hone_tokenizer_load(&f->tok, f->dir));
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

/* ids (or, with labels, the labels: '.' where -100) as the letters above */
static char *letters(const int32_t *v, size_t n) {
    char *out = malloc(n + 1);
    for (size_t i = 0; i < n; i++) {
        static const char special[] = "BEST";
        out[i] = v[i] == -100 ? '.' : v[i] >= 256 ? special[v[i] - 256] : (char)v[i];
    }
    out[n] = 0;
    return out;
}

static void check(const hone_example *ex, const hone_render_options *o, int prompt, const char *ids,
                  const char *labels) {
    hone_sequence s;
    TEST_OK(prompt ? hone_render_prompt(ex, o, &s) : hone_render_example(ex, o, &s));
    char *got_ids = letters(s.input_ids, s.n), *got_labels = letters(s.labels, s.n);
    assert_string_equal(got_ids, ids);
    assert_string_equal(got_labels, labels);
    size_t trained = 0;
    for (size_t i = 0; i < s.n; i++) trained += s.labels[i] != -100;
    assert_int_equal(s.n_trained, trained);
    free(got_ids);
    free(got_labels);
    hone_sequence_free(&s);
}

static hone_message msgs[] = {
    {.role = "system", .content = "S", .weight = -1},     {.role = "user", .content = "Hi", .weight = -1},
    {.role = "assistant", .content = "Yo", .weight = -1}, {.role = "user", .content = "Q", .weight = -1},
    {.role = "assistant", .content = "A", .weight = -1},
};

static hone_example example(hone_conversation_style style, int with_system) {
    hone_example ex = {.kind = HONE_EXAMPLE_SFT, .line = 1, .conversation_style = style};
    ex.conversation.messages = msgs + !with_system;
    ex.conversation.n_messages = 5 - !with_system;
    return ex;
}

/* vicuna_v1.1 (ADD_COLON_TWO): ("", system + " ") with BOS; (role + ": ", message + sep) where sep alternates " "
 * and "</s>"; each assistant pair ends with EOS (here the text's </s>) and its role tokens "ASSISTANT:" (10) are
 * masked: the trained part starts with the space after the colon. */
static void test_vicuna(void **state) {
    fixture *f = *state;
    hone_example ex = example(HONE_CONVERSATION_VICUNA_V1_1, 1);
    hone_render_options o = {.tokenizer = f->tok, .eos_id = -1};
    const char *ids = "BS USER: Hi ASSISTANT: YoEUSER: Q ASSISTANT: AE";
    check(&ex, &o, 0, ids, "...................... YoE.................. AE");
    o.train_on_eos = HONE_TRAIN_EOS_NONE;
    check(&ex, &o, 0, ids, "...................... Yo................... A.");
    o.train_on_eos = HONE_TRAIN_EOS_LAST;
    check(&ex, &o, 0, ids, "...................... Yo................... AE");
    o.train_on_eos = HONE_TRAIN_EOS_TURN;
    msgs[2].weight = 0; /* weights and roles_to_train as for chat templates; user turns lose their role too */
    o.roles_to_train = "assistant,user";
    check(&ex, &o, 0, ids, "........ Hi ................... Q .......... AE");
    msgs[2].weight = -1;
    o.roles_to_train = NULL;
    o.train_on_inputs = 1;
    check(&ex, &o, 0, ids, ids);
    o.train_on_inputs = 0;
    /* the generation prompt: FastChat's empty assistant message is "ASSISTANT:" with no space */
    check(&ex, &o, 1, "BS USER: Hi ASSISTANT: YoEUSER: Q ASSISTANT:", "............................................");

    /* no system message: FastChat's default one */
    ex = example(HONE_CONVERSATION_VICUNA_V1_1, 0);
    hone_sequence s;
    TEST_OK(hone_render_example(&ex, &o, &s));
    const char *head = "A chat between a curious user and an artificial intelligence assistant. The assistant gives "
                       "helpful, detailed, and polite answers to the user's questions. USER: Hi ASSISTANT: Yo</s>";
    assert_int_equal(strncmp(s.text, head, strlen(head)), 0);
    assert_int_equal(s.input_ids[0], 256);
    hone_sequence_free(&s);
}

/* llama-2 (LLAMA2): with a system message, ("", "[INST] <<SYS>>\nS\n<</SYS>>\n\n" + first user message) keeps BOS;
 * then ("[/INST] ", answer) + EOS, and ("<s> [INST] ", question) on odd indices, whose tokenizer BOS is dropped and
 * whose text <s> stays. Without one, every user turn is "<s> [INST] " + question. Role tokens "[/INST]" (7) masked. */
static void test_llama2(void **state) {
    fixture *f = *state;
    hone_render_options o = {.tokenizer = f->tok, .eos_id = -1};
    hone_example ex = example(HONE_CONVERSATION_LLAMA_2, 1);
    check(&ex, &o, 0, "B[INST] <<SYS>>\nS\n<</SYS>>\n\nHi[/INST] YoEB [INST] Q[/INST] AE",
          "..................................... YoE................. AE");
    ex = example(HONE_CONVERSATION_LLAMA_2, 0);
    check(&ex, &o, 0, "B [INST] Hi[/INST] YoEB [INST] Q[/INST] AE", ".................. YoE................. AE");
    /* the generation prompt: the empty assistant message is "[/INST]", no space, no EOS */
    check(&ex, &o, 1, "B [INST] Hi[/INST] YoEB [INST] Q[/INST]", ".......................................");
}

/* chatml (axolotl's registration): ("", "<|im_start|>system\nS<|im_end|>\n"), (role + "\n", message +
 * "<|im_end|>\n"); EOS </s> is not the separator, so it is appended to answers; the masked role is
 * "<|im_start|>assistant" (10 tokens), so the newline after it is trained, as in axolotl. */
static void test_chatml(void **state) {
    fixture *f = *state;
    hone_render_options o = {.tokenizer = f->tok, .eos_id = -1};
    hone_example ex = example(HONE_CONVERSATION_CHATML, 1);
    check(&ex, &o, 0, "BSsystem\nST\nSuser\nHiT\nSassistant\nYoT\nESuser\nQT\nSassistant\nAT\nE",
          "................................\nYoT\nE...................\nAT\nE");
}

static void test_errors(void **state) {
    fixture *f = *state;
    hone_render_options o = {.tokenizer = f->tok, .eos_id = -1};
    hone_conversation_style style;
    TEST_FAILS_WITH(hone_conversation_style_parse("vicuna", &style), "known: vicuna_v1.1, llama-2, chatml");
    TEST_OK(hone_conversation_style_parse("llama-2", &style));
    assert_int_equal(style, HONE_CONVERSATION_LLAMA_2);
    hone_dataset_options dopt = {0};
    TEST_FAILS_WITH(hone_dataset_option_set(&dopt, "conversation", "vicuna_v1"), "unknown conversation template");

    hone_message tool[] = {{.role = "user", .content = "Hi", .weight = -1},
                           {.role = "assistant", .content = "", .weight = -1, .tool_calls_json = "[]"},
                           {.role = "tool", .content = "4", .weight = -1},
                           {.role = "assistant", .content = "Yo", .weight = -1}};
    hone_example ex = {.kind = HONE_EXAMPLE_SFT, .line = 3, .conversation_style = HONE_CONVERSATION_VICUNA_V1_1};
    ex.conversation.messages = tool;
    ex.conversation.n_messages = 4;
    hone_sequence s;
    TEST_FAILS_WITH(hone_render_example(&ex, &o, &s), "line 3: message 2 has tool calls");
    tool[1].tool_calls_json = NULL;
    TEST_FAILS_WITH(hone_render_example(&ex, &o, &s), "message 3 is a tool message");
}

/* The dataset option reaches every example; rows that are not conversations refuse it. */
static void test_dataset_option(void **state) {
    (void)state;
    hone_dataset_options dopt = {0};
    TEST_OK(hone_dataset_option_set(&dopt, "conversation", "vicuna_v1.1"));
    hone_dataset ds;
    TEST_OK(hone_dataset_load(&ds, "tests/fixtures/dataset/sharegpt.json", &dopt));
    assert_true(ds.n_examples > 0);
    for (size_t i = 0; i < ds.n_examples; i++)
        assert_int_equal(ds.examples[i].conversation_style, HONE_CONVERSATION_VICUNA_V1_1);
    hone_dataset_free(&ds);
    TEST_FAILS_WITH(hone_dataset_load(&ds, "tests/fixtures/dataset/text.jsonl", &dopt), "this row is a text example");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vicuna), cmocka_unit_test(test_llama2),         cmocka_unit_test(test_chatml),
        cmocka_unit_test(test_errors), cmocka_unit_test(test_dataset_option),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
