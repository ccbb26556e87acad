/* Rendering and loss masks (src/data/render.c): which tokens of a rendered conversation are trained, for every
 * option, checked against masks worked out by hand from the ChatML text. The tokenizer has one token per byte
 * plus <|im_start|> and <|im_end|>, so a token position is a text position; a real GPT-2 tokenizer (with merges)
 * checks that trained tokens decode to exactly the trained text. */
#include <stdlib.h>
#include <string.h>

#include "hone/render.h"
#include "testutil.h"

#define IM_START 256
#define IM_END 257

typedef struct {
    char *dir;
    hone_tokenizer *tok;
    hone_chat_template *chatml;
} fixture;

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    f->dir = test_tmpdir();
    static const char *const special[] = {"<|im_start|>", "<|im_end|>"};
    char *path = test_write_byte_level_tokenizer(f->dir, special, 2);
    TEST_OK(hone_tokenizer_load(&f->tok, path));
    free(path);
    TEST_OK(hone_chat_template_builtin(&f->chatml, "chatml"));
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    hone_chat_template_free(f->chatml);
    hone_tokenizer_free(f->tok);
    test_tmpdir_remove(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static hone_example conversation(hone_message *m, size_t n) {
    hone_example ex = {.kind = HONE_EXAMPLE_SFT, .line = 1};
    ex.conversation.messages = m;
    ex.conversation.n_messages = n;
    return ex;
}

/* The trained tokens as a string: bytes, with T for <|im_end|> and S for <|im_start|>. */
static char *trained_text(const hone_sequence *s) {
    char *out = malloc(s->n + 1);
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (s->labels[i] == -100) continue;
        assert_int_equal(s->labels[i], s->input_ids[i]);
        out[k++] = s->labels[i] == IM_END ? 'T' : s->labels[i] == IM_START ? 'S' : (char)s->labels[i];
    }
    out[k] = 0;
    return out;
}

static void check_trained(fixture *f, const hone_example *ex, const hone_render_options *o, const char *want) {
    hone_sequence s;
    TEST_OK(hone_render_example(ex, o, &s));
    char *got = trained_text(&s);
    assert_string_equal(got, want);
    assert_int_equal(s.n_trained, strlen(want));
    free(got);
    hone_sequence_free(&s);
    (void)f;
}

static void test_chatml_masks(void **state) {
    fixture *f = *state;
    hone_message m[] = {
        {.role = "system", .content = "S", .weight = -1},     {.role = "user", .content = "Hi", .weight = -1},
        {.role = "assistant", .content = "Yo", .weight = -1}, {.role = "user", .content = "Q", .weight = -1},
        {.role = "assistant", .content = "A", .weight = -1},
    };
    hone_example ex = conversation(m, 5);
    hone_render_options o = {.tokenizer = f->tok, .chat_template = f->chatml, .eos_id = -1};

    hone_sequence s;
    TEST_OK(hone_render_example(&ex, &o, &s));
    const char *text = "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
                       "Yo<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\nA<|im_end|>\n";
    assert_string_equal(s.text, text);
    assert_int_equal(s.flags, 0);
    assert_int_equal(s.input_ids[0], IM_START);
    hone_sequence_free(&s);

    /* assistant content and its <|im_end|>, not the header, not the newline after <|im_end|> */
    check_trained(f, &ex, &o, "YoTAT");
    o.train_on_eos = HONE_TRAIN_EOS_LAST;
    check_trained(f, &ex, &o, "YoAT");
    o.train_on_eos = HONE_TRAIN_EOS_NONE;
    check_trained(f, &ex, &o, "YoA");
    o.train_on_eos = HONE_TRAIN_EOS_ALL;
    check_trained(f, &ex, &o, "TTYoTTAT");
    o.train_on_eos = HONE_TRAIN_EOS_TURN;
    o.roles_to_train = "assistant,user";
    check_trained(f, &ex, &o, "HiTYoTQTAT");
    o.roles_to_train = NULL;
    m[2].weight = 0; /* the first answer is not trained; a user turn with weight 1 is */
    m[3].weight = 1;
    check_trained(f, &ex, &o, "QTAT");
    m[2].weight = m[3].weight = -1;
    o.train_on_inputs = 1;
    TEST_OK(hone_render_example(&ex, &o, &s));
    assert_int_equal(s.n_trained, s.n);
    hone_sequence_free(&s);
}

static void test_text_and_tokens(void **state) {
    fixture *f = *state;
    hone_example text = {.kind = HONE_EXAMPLE_TEXT, .text = "ab"};
    hone_render_options o = {.tokenizer = f->tok, .eos_id = IM_END};
    hone_sequence s;
    TEST_OK(hone_render_example(&text, &o, &s));
    const int32_t want[] = {'a', 'b', IM_END};
    assert_int_equal(s.n, 3);
    assert_memory_equal(s.input_ids, want, sizeof want);
    assert_memory_equal(s.labels, want, sizeof want);
    hone_sequence_free(&s);

    int32_t ids[] = {5, 6, 7}, labels[] = {-100, 6, 7};
    hone_example tokens = {.kind = HONE_EXAMPLE_TOKENS, .input_ids = ids, .labels = labels, .n_tokens = 3};
    TEST_OK(hone_render_example(&tokens, &o, &s));
    assert_memory_equal(s.labels, labels, sizeof labels);
    assert_int_equal(s.n_trained, 2);
    hone_sequence_free(&s);

    hone_example pref = {.kind = HONE_EXAMPLE_PREFERENCE, .line = 7};
    TEST_FAILS_WITH(hone_render_example(&pref, &o, &s), "line 7 is a preference row");
}

/* Templates that cannot be masked, or that forget the end of a turn, are reported. */
static void test_template_problems(void **state) {
    fixture *f = *state;
    hone_message m[] = {{.role = "user", .content = "Hi", .weight = -1},
                        {.role = "assistant", .content = "Yo", .weight = -1}};
    hone_example ex = conversation(m, 2);
    hone_chat_template *plain, *unstable;
    const char *plain_src = "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}";
    TEST_OK(hone_chat_template_compile(&plain, plain_src, strlen(plain_src), "plain", 0));
    hone_render_options o = {.tokenizer = f->tok, .chat_template = plain, .eos_id = -1};
    hone_sequence s;
    TEST_OK(hone_render_example(&ex, &o, &s));
    assert_true(s.flags & HONE_RENDER_NO_END_OF_TURN);
    hone_sequence_free(&s);
    /* the last message rendered differently from the others: turn 1 is not where a prefix says */
    const char *unstable_src = "{% for m in messages %}{% if loop.last %}<{{ m.content }}>{% else %}{{ m.content }}"
                               "{% endif %}{% endfor %}";
    TEST_OK(hone_chat_template_compile(&unstable, unstable_src, strlen(unstable_src), "unstable", 0));
    o.chat_template = unstable;
    TEST_FAILS_WITH(hone_render_example(&ex, &o, &s), "renders the first 1 messages differently");
    hone_chat_template_free(plain);
    hone_chat_template_free(unstable);
}

/* With real merges, the trained tokens decode to exactly the answers and their end-of-turn tokens. */
static void test_gpt2_merges(void **state) {
    (void)state;
    const char *data = test_shared_data();
    if (!data) skip();
    char path[512];
    snprintf(path, sizeof path, "%s/tokenizers/gpt2", data);
    hone_tokenizer *tok;
    TEST_OK(hone_tokenizer_load(&tok, path));
    hone_chat_template *t;
    /* GPT-2 has one special token; a Zephyr-like template ends each turn with it */
    const char *src = "{% for m in messages %}<|{{ m.role }}|>\n{{ m.content }}<|endoftext|>\n{% endfor %}"
                      "{% if add_generation_prompt %}<|assistant|>\n{% endif %}";
    TEST_OK(hone_chat_template_compile(&t, src, strlen(src), "zephyr-like", 0));
    hone_message m[] = {{.role = "user", .content = "What is 2+2?", .weight = -1},
                        {.role = "assistant", .content = "It is 4, of course.", .weight = -1},
                        {.role = "user", .content = "And 3+3?", .weight = -1},
                        {.role = "assistant", .content = "  Six.\n\nDone", .weight = -1}};
    hone_example ex = conversation(m, 4);
    hone_render_options o = {.tokenizer = tok, .chat_template = t, .eos_id = -1};
    hone_sequence s;
    TEST_OK(hone_render_example(&ex, &o, &s));
    int32_t *trained = malloc(s.n * sizeof *trained);
    size_t k = 0;
    for (size_t i = 0; i < s.n; i++)
        if (s.labels[i] != -100) trained[k++] = s.labels[i];
    char *text;
    size_t len;
    TEST_OK(hone_tokenizer_decode(tok, trained, k, 0, &text, &len));
    assert_string_equal(text, "It is 4, of course.<|endoftext|>  Six.\n\nDone<|endoftext|>");
    free(text);
    free(trained);
    hone_sequence_free(&s);
    hone_chat_template_free(t);
    hone_tokenizer_free(tok);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chatml_masks),
        cmocka_unit_test(test_text_and_tokens),
        cmocka_unit_test(test_template_problems),
        cmocka_unit_test(test_gpt2_merges),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
