/* Chat templates against Python: every case of tests/fixtures/chat_templates/expected.json (official Hugging Face
 * templates and hone's built-ins rendered by jinja2 3.1 set up as transformers sets it up, written by
 * tools/make_chat_template_fixtures.py) must come out byte for byte, with the same {% generation %} spans and the
 * same refusals; the built-ins named after a model must render what that model's official template renders. Also
 * the public API around it: built-in lookup, a model folder's own template and special tokens, option errors and
 * error messages. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hone/chat_template.h"
#include "testutil.h"

#define FIXTURES "tests/fixtures/chat_templates"

static json_t *load_expected(void) {
    json_error_t err;
    json_t *root = json_load_file(FIXTURES "/expected.json", JSON_ALLOW_NUL, &err);
    if (!root) fail_msg("%s/expected.json:%d: %s", FIXTURES, err.line, err.text);
    setenv("TZ", json_string_value(json_object_get(root, "timezone")), 1); /* strftime_now renders local time */
    tzset();
    return root;
}

static char *dumps(const json_t *j) {
    char *s = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);
    if (!s) fail_msg("json_dumps failed");
    return s;
}

/* A conversation of the fixture as a hone_conversation (strings point into / are owned by the JSON and *owned). */
static hone_conversation to_conversation(const json_t *msgs, char ***owned, size_t *n_owned) {
    size_t n = json_array_size(msgs);
    hone_conversation c = {.messages = calloc(n + 1, sizeof(hone_message)), .n_messages = n};
    *owned = calloc(n + 1, sizeof(char *));
    *n_owned = 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *m = json_array_get(msgs, i);
        c.messages[i].role = (char *)json_string_value(json_object_get(m, "role"));
        c.messages[i].content = (char *)json_string_value(json_object_get(m, "content"));
        c.messages[i].name = (char *)json_string_value(json_object_get(m, "name"));
        c.messages[i].weight = -1;
        const json_t *calls = json_object_get(m, "tool_calls");
        if (calls) c.messages[i].tool_calls_json = (*owned)[(*n_owned)++] = dumps(calls);
    }
    return c;
}

/* Renders one fixture case with template t; returns 1 when it matched (failures are reported by cmocka). */
static void check_case(const hone_chat_template *t, const json_t *root, const json_t *cs, const char *what) {
    const json_t *conv =
        json_object_get(json_object_get(root, "conversations"), json_string_value(json_object_get(cs, "conversation")));
    char **owned;
    size_t n_owned;
    hone_conversation c = to_conversation(conv, &owned, &n_owned);
    hone_chat_render_options opt = {.add_generation_prompt = json_is_true(json_object_get(cs, "add_generation_prompt")),
                                    .now = json_integer_value(json_object_get(root, "now"))};
    /* bos / eos through the options, the other special tokens and extra variables as extra JSON */
    json_t *extra = json_object();
    const char *key;
    json_t *v;
    json_object_foreach(json_object_get(cs, "special"), key, v) {
        if (strcmp(key, "bos_token") == 0)
            opt.bos_token = json_string_value(v);
        else if (strcmp(key, "eos_token") == 0)
            opt.eos_token = json_string_value(v);
        else
            json_object_set(extra, key, v);
    }
    json_object_update(extra, json_object_get(cs, "extra"));
    char *extra_json = json_object_size(extra) ? dumps(extra) : NULL;
    opt.extra_json = extra_json;
    char *tools = json_object_get(cs, "tools") ? dumps(json_object_get(cs, "tools")) : NULL;
    opt.tools_json = tools;

    char *text = NULL;
    size_t len = 0, n_spans = 0;
    hone_text_span *spans = NULL;
    hone_status st = hone_chat_template_render(t, &c, &opt, &text, &len, &spans, &n_spans);
    const json_t *want = json_object_get(cs, "expected");
    if (!want) {
        if (st == HONE_OK)
            fail_msg("%s: rendered, but jinja2 raised %s", what, json_string_value(json_object_get(cs, "error")));
        /* the template's own raise_exception message must reach the user */
        if (strcmp(json_string_value(json_object_get(cs, "error_type")), "TemplateError") == 0 &&
            !strstr(hone_error(), json_string_value(json_object_get(cs, "error"))))
            fail_msg("%s: error '%s' lacks the template's message '%s'", what, hone_error(),
                     json_string_value(json_object_get(cs, "error")));
    } else {
        if (st != HONE_OK) fail_msg("%s: %s", what, hone_error());
        const char *w = json_string_value(want);
        size_t wlen = json_string_length(want);
        if (len != wlen || memcmp(text, w, len) != 0) {
            size_t at = 0;
            while (at < len && at < wlen && text[at] == w[at]) at++;
            fail_msg("%s: differs at byte %zu of %zu/%zu\n  got:  \"%.60s\"\n  want: \"%.60s\"", what, at, len, wlen,
                     text + at, w + at);
        }
        const json_t *want_spans = json_object_get(cs, "spans");
        if (want_spans) {
            if (n_spans != json_array_size(want_spans))
                fail_msg("%s: %zu generation spans, expected %zu", what, n_spans, json_array_size(want_spans));
            for (size_t i = 0; i < n_spans; i++) {
                const json_t *sp = json_array_get(want_spans, i);
                if (spans[i].start != (size_t)json_integer_value(json_array_get(sp, 0)) ||
                    spans[i].end != (size_t)json_integer_value(json_array_get(sp, 1)))
                    fail_msg("%s: span %zu is [%zu, %zu), expected [%lld, %lld)", what, i, spans[i].start, spans[i].end,
                             json_integer_value(json_array_get(sp, 0)), json_integer_value(json_array_get(sp, 1)));
            }
        } else if (n_spans)
            fail_msg("%s: %zu generation spans from a template without generation blocks", what, n_spans);
    }
    free(text);
    free(spans);
    free(tools);
    free(extra_json);
    json_decref(extra);
    for (size_t i = 0; i < n_owned; i++) free(owned[i]);
    free(owned);
    free(c.messages);
}

static hone_chat_template *load_fixture_template(const char *name) {
    char path[256];
    snprintf(path, sizeof path, FIXTURES "/%s.jinja", name);
    char *src;
    size_t n;
    TEST_OK(hone_file_read(path, &src, &n));
    hone_chat_template *t;
    TEST_OK(hone_chat_template_compile(&t, src, n, path, 1));
    free(src);
    return t;
}

static void test_official_templates_match_jinja2(void **state) {
    (void)state;
    json_t *root = load_expected();
    const json_t *cases = json_object_get(root, "cases");
    const json_t *official = json_object_get(root, "builtin_official");
    size_t n_checked = 0, n_builtin = 0;
    for (size_t i = 0; i < json_array_size(cases); i++) {
        const json_t *cs = json_array_get(cases, i);
        const char *name = json_string_value(json_object_get(cs, "template"));
        char what[256];
        snprintf(what, sizeof what, "case %zu (%s, %s, add_generation_prompt=%d%s)", i, name,
                 json_string_value(json_object_get(cs, "conversation")),
                 json_is_true(json_object_get(cs, "add_generation_prompt")),
                 json_object_get(cs, "extra") || json_object_get(cs, "tools") ? ", extra/tools" : "");
        hone_chat_template *t;
        if (strncmp(name, "builtin:", 8) == 0)
            TEST_OK(hone_chat_template_builtin(&t, name + 8));
        else
            t = load_fixture_template(name);
        check_case(t, root, cs, what);
        hone_chat_template_free(t);
        n_checked++;
        /* a built-in named after this model renders the same */
        const char *bname;
        json_t *v;
        json_object_foreach((json_t *)official, bname, v) {
            if (strcmp(json_string_value(v), name) != 0) continue;
            TEST_OK(hone_chat_template_builtin(&t, bname));
            char bwhat[300];
            snprintf(bwhat, sizeof bwhat, "built-in '%s' on %s", bname, what);
            check_case(t, root, cs, bwhat);
            hone_chat_template_free(t);
            n_builtin++;
        }
    }
    assert_true(n_checked > 300);
    assert_true(n_builtin > 100);
    json_decref(root);
}

static void test_builtins(void **state) {
    (void)state;
    const char *const *names = hone_chat_template_builtin_names();
    static const char *const want[] = {"chatml", "llama2", "llama3", "mistral", "zephyr",
                                       "gemma",  "phi3",   "alpaca", "vicuna"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        assert_non_null(names[i]);
        assert_string_equal(names[i], want[i]);
        hone_chat_template *t;
        TEST_OK(hone_chat_template_builtin(&t, names[i]));
        assert_string_equal(hone_chat_template_name(t), want[i]);
        assert_non_null(hone_chat_template_builtin_source(names[i]));
        hone_chat_template_free(t);
    }
    assert_null(names[sizeof want / sizeof want[0]]);
    assert_null(hone_chat_template_builtin_source("nope"));
    hone_chat_template *t = NULL;
    TEST_FAILS_WITH(hone_chat_template_builtin(&t, "chatml2"), "chatml, llama2, llama3, mistral");
    assert_null(t);
}

static hone_message msg(const char *role, const char *content) {
    return (hone_message){.role = (char *)role, .content = (char *)content, .weight = -1};
}

/* A model folder: its tokenizer_config.json's template and special tokens, chat_template.jinja taking precedence. */
static void test_from_model(void **state) {
    (void)state;
    char *dir = test_tmpdir();
    const char *config =
        "{\"bos_token\": {\"__type\": \"AddedToken\", \"content\": \"<s>\", \"lstrip\": false},"
        " \"eos_token\": \"</s>\", \"unk_token\": null, \"pad_token\": \"<pad>\","
        " \"additional_special_tokens\": [\"<x>\", {\"content\": \"<y>\"}],"
        " \"chat_template\": \"{{ bos_token }}|{{ eos_token }}|{{ unk_token is defined }}|{{ pad_token }}|"
        "{{ additional_special_tokens }}|{% for m in messages %}{{ m.role }}={{ m.content }};{% endfor %}\"}";
    free(test_write_file(dir, "tokenizer_config.json", config, strlen(config)));
    hone_message turns[] = {msg("user", "hi")};
    hone_conversation c = {.messages = turns, .n_messages = 1};
    hone_chat_template *t;
    TEST_OK(hone_chat_template_from_model(&t, dir));
    char *text;
    size_t len;
    TEST_OK(hone_chat_template_render(t, &c, NULL, &text, &len, NULL, NULL));
    assert_string_equal(text, "<s>|</s>|False|<pad>|['<x>', '<y>']|user=hi;");
    free(text);
    /* options override the model's tokens */
    hone_chat_render_options opt = {.bos_token = "[B]"};
    TEST_OK(hone_chat_template_render(t, &c, &opt, &text, &len, NULL, NULL));
    assert_string_equal(text, "[B]|</s>|False|<pad>|['<x>', '<y>']|user=hi;");
    free(text);
    hone_chat_template_free(t);

    /* chat_template.jinja wins over tokenizer_config.json, and keeps the config's special tokens */
    const char *jinja = "{{ eos_token }}!{{ messages | length }}\n";
    free(test_write_file(dir, "chat_template.jinja", jinja, strlen(jinja)));
    TEST_OK(hone_chat_template_from_model(&t, dir));
    TEST_OK(hone_chat_template_render(t, &c, NULL, &text, &len, NULL, NULL));
    assert_string_equal(text, "</s>!1"); /* the trailing newline is dropped, as jinja2 does */
    free(text);
    hone_chat_template_free(t);

    /* a named list of templates: "default" is taken */
    char *sub = hone_path_join(dir, "named");
    TEST_OK(hone_dir_create(sub));
    const char *named = "{\"chat_template\": [{\"name\": \"tool_use\", \"template\": \"T\"},"
                        " {\"name\": \"default\", \"template\": \"D{{ add_generation_prompt }}\"}]}";
    free(test_write_file(sub, "tokenizer_config.json", named, strlen(named)));
    TEST_OK(hone_chat_template_from_model(&t, sub));
    TEST_OK(hone_chat_template_render(t, &c, NULL, &text, &len, NULL, NULL));
    assert_string_equal(text, "DFalse");
    free(text);
    /* a runtime error of a model's template says how to pick a built-in one */
    hone_chat_template_free(t);
    const char *bad = "{\"chat_template\": \"{{ raise_exception('no system messages') }}\"}";
    free(test_write_file(sub, "tokenizer_config.json", bad, strlen(bad)));
    TEST_OK(hone_chat_template_from_model(&t, sub));
    TEST_FAILS_WITH(hone_chat_template_render(t, &c, NULL, &text, &len, NULL, NULL), "no system messages");
    assert_non_null(strstr(hone_error(), "--chat-template"));
    assert_non_null(strstr(hone_error(), "line 1:4"));
    hone_chat_template_free(t);

    /* no template at all */
    const char *none = "{\"eos_token\": \"</s>\"}";
    free(test_write_file(sub, "tokenizer_config.json", none, strlen(none)));
    TEST_FAILS_WITH(hone_chat_template_from_model(&t, sub), "--chat-template NAME");

    /* the config is read as the tokenizer reads it: integers beyond jansson's range (model_max_length 1e30) load,
     * malformed JSON is an error naming the file */
    const char *huge = "{\"model_max_length\": 1000000000000000019884624838656, \"chat_template\": \"H\"}";
    free(test_write_file(sub, "tokenizer_config.json", huge, strlen(huge)));
    TEST_OK(hone_chat_template_from_model(&t, sub));
    hone_chat_template_free(t);
    const char *broken = "{\"chat_template\": ";
    free(test_write_file(sub, "tokenizer_config.json", broken, strlen(broken)));
    TEST_FAILS_WITH(hone_chat_template_from_model(&t, sub), "tokenizer_config.json: invalid JSON at line 1");
    free(sub);
    test_tmpdir_remove(dir);
    free(dir);
}

static void test_render_errors(void **state) {
    (void)state;
    hone_chat_template *t;
    const char *src = "{% for m in messages %}{{ m.content }}{% endfor %}{{ tools | tojson }}";
    TEST_OK(hone_chat_template_compile(&t, src, strlen(src), "mine", 0));
    hone_message turns[] = {msg("user", "a"), msg("assistant", NULL)};
    turns[1].tool_calls_json = "[{\"function\": {\"name\": \"f\", \"arguments\": {\"x\": 1.5}}}]";
    hone_conversation c = {.messages = turns, .n_messages = 2, .tools_json = "[{\"name\": \"f\"}]"};
    char *text;
    size_t len;
    TEST_OK(hone_chat_template_render(t, &c, NULL, &text, &len, NULL, NULL));
    assert_string_equal(text, "a[{\"name\": \"f\"}]"); /* a NULL content leaves the key out: m.content is "" */
    free(text);
    hone_chat_render_options opt = {.tools_json = "{\"not\": \"a list\"}"};
    TEST_FAILS_WITH(hone_chat_template_render(t, &c, &opt, &text, &len, NULL, NULL), "must be a JSON array");
    opt.tools_json = "[1,";
    TEST_FAILS_WITH(hone_chat_template_render(t, &c, &opt, &text, &len, NULL, NULL),
                    "tool definitions is not valid JSON");
    opt = (hone_chat_render_options){.extra_json = "{\"messages\": []}"};
    TEST_FAILS_WITH(hone_chat_template_render(t, &c, &opt, &text, &len, NULL, NULL), "'messages' is set by hone");
    opt.extra_json = "[1]";
    TEST_FAILS_WITH(hone_chat_template_render(t, &c, &opt, &text, &len, NULL, NULL), "must be a JSON object");
    turns[1].tool_calls_json = "{oops";
    TEST_FAILS_WITH(hone_chat_template_render(t, &c, NULL, &text, &len, NULL, NULL), "tool_calls of message 1");
    turns[1].tool_calls_json = NULL;
    turns[0].role = NULL;
    TEST_FAILS_WITH(hone_chat_template_render(t, &c, NULL, &text, &len, NULL, NULL), "message 0 has no role");
    hone_chat_template_free(t);

    /* runtime errors name the template and the place; a template not from a model does not mention
     * --chat-template */
    src = "line one\n{{ messages[0].content + 1 }}";
    TEST_OK(hone_chat_template_compile(&t, src, strlen(src), "mine", 0));
    turns[0].role = "user";
    TEST_FAILS_WITH(hone_chat_template_render(t, &c, NULL, &text, &len, NULL, NULL), "chat template 'mine': line 2:");
    assert_non_null(strstr(hone_error(), "can only concatenate str (not \"int\") to str"));
    assert_null(strstr(hone_error(), "--chat-template"));
    hone_chat_template_free(t);

    /* compile errors: line:column and the offending text */
    src = "{% for m in messages %}\n  {{ m.content | nosuchfilter }}\n{% endfor %}";
    TEST_FAILS_WITH(hone_chat_template_compile(&t, src, strlen(src), "mine", 0), "mine:2:");
    assert_non_null(strstr(hone_error(), "No filter named 'nosuchfilter'"));
    src = "{% if x %}never closed";
    TEST_FAILS_WITH(hone_chat_template_compile(&t, src, strlen(src), "mine", 0), "Unexpected end of template");
    src = "{{ 'a' ~ }}";
    TEST_FAILS_WITH(hone_chat_template_compile(&t, src, strlen(src), "mine", 0), "mine:1:10: unexpected 'end of print");
    src = "{% include 'other.jinja' %}";
    assert_int_equal(hone_chat_template_compile(&t, src, strlen(src), "mine", 0), HONE_ERR_UNSUPPORTED);
    src = "bad \xff byte";
    TEST_FAILS_WITH(hone_chat_template_compile(&t, src, strlen(src), "mine", 0), "not valid UTF-8 (byte 4)");
}

/* strftime_now formats the given time, or the current one when now is 0 (Llama 3.2's date line). */
static void test_strftime_now(void **state) {
    (void)state;
    setenv("TZ", "UTC", 1);
    tzset();
    hone_chat_template *t;
    const char *src = "{{ strftime_now('%d %b %Y %H:%M:%S.%f%z') }}";
    TEST_OK(hone_chat_template_compile(&t, src, strlen(src), "date", 0));
    hone_conversation c = {0};
    hone_chat_render_options opt = {.now = 1721952000 + 3661};
    char *text;
    size_t len;
    TEST_OK(hone_chat_template_render(t, &c, &opt, &text, &len, NULL, NULL));
    assert_string_equal(text, "26 Jul 2024 01:01:01.000000"); /* naive datetime: %z is empty */
    free(text);
    opt.now = 0;
    TEST_OK(hone_chat_template_render(t, &c, &opt, &text, &len, NULL, NULL));
    char year[8];
    time_t now = time(NULL);
    strftime(year, sizeof year, "%Y", gmtime(&now));
    assert_non_null(strstr(text, year));
    free(text);
    hone_chat_template_free(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_official_templates_match_jinja2),
        cmocka_unit_test(test_builtins),
        cmocka_unit_test(test_from_model),
        cmocka_unit_test(test_render_errors),
        cmocka_unit_test(test_strftime_now),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
