/* The Jinja engine on its own: every case of tests/fixtures/chat_templates/engine.json (small templates for each
 * statement, operator, filter, test, method and whitespace rule, rendered by jinja2 3.1 in transformers'
 * environment by tools/make_chat_template_fixtures.py) must render byte for byte or fail where jinja2 fails.
 * Then what Python cannot serve as the reference for: line:column in error messages, unsupported features,
 * and the limits that keep a hostile template from hanging, exhausting memory or the stack. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testutil.h"
#include "tokenizer/jinja.h"

/* Renders src[0..n) with the variables in vars_json (a JSON object); *text is malloc'd on success. */
static hone_status render_n(const char *src, size_t n, const json_t *vars_json, const jinja_limits *lim, char **text,
                            size_t *len, jinja_span **spans, size_t *n_spans) {
    jinja_template *t;
    HONE_TRY(jinja_compile(&t, "case", src, n));
    jinja_arena arena = {.limit = lim->max_memory};
    jv vars;
    hone_status st = vars_json ? jv_from_json(&arena, vars_json, &vars) : jv_dict_new(&arena, &vars);
    if (st == HONE_OK) st = jinja_render_template(t, &arena, vars, 1721952000, lim, text, len, spans, n_spans);
    jinja_arena_free(&arena);
    jinja_template_free(t);
    return st;
}

static hone_status render_with(const char *src, const json_t *vars_json, const jinja_limits *lim, char **text,
                               size_t *len, jinja_span **spans, size_t *n_spans) {
    return render_n(src, strlen(src), vars_json, lim, text, len, spans, n_spans);
}

static void test_engine_matches_jinja2(void **state) {
    (void)state;
    json_error_t err;
    json_t *root = json_load_file("tests/fixtures/chat_templates/engine.json", JSON_ALLOW_NUL, &err);
    if (!root) fail_msg("engine.json:%d: %s", err.line, err.text);
    setenv("TZ", json_string_value(json_object_get(root, "timezone")), 1);
    tzset();
    const json_t *cases = json_object_get(root, "cases");
    assert_true(json_array_size(cases) > 100);
    for (size_t i = 0; i < json_array_size(cases); i++) {
        const json_t *cs = json_array_get(cases, i);
        const char *src = json_string_value(json_object_get(cs, "template"));
        char *text = NULL;
        size_t len = 0, n_spans = 0;
        jinja_span *spans = NULL;
        hone_status st = render_n(src, json_string_length(json_object_get(cs, "template")), json_object_get(cs, "vars"),
                                  &jinja_default_limits, &text, &len, &spans, &n_spans);
        const json_t *want = json_object_get(cs, "expected");
        if (!want) {
            if (st == HONE_OK)
                fail_msg("case %zu: rendered \"%s\", but jinja2 raised %s: %s\n  template: %s", i, text,
                         json_string_value(json_object_get(cs, "error_type")),
                         json_string_value(json_object_get(cs, "error")), src);
            continue;
        }
        if (st != HONE_OK) fail_msg("case %zu: %s\n  template: %s", i, hone_error(), src);
        if (len != json_string_length(want) || memcmp(text, json_string_value(want), len) != 0)
            fail_msg("case %zu:\n  got:  \"%s\"\n  want: \"%s\"\n  template: %s", i, text, json_string_value(want),
                     src);
        const json_t *want_spans = json_object_get(cs, "spans");
        if (want_spans) {
            if (n_spans != json_array_size(want_spans))
                fail_msg("case %zu: %zu spans, expected %zu", i, n_spans, json_array_size(want_spans));
            for (size_t k = 0; k < n_spans; k++)
                if ((json_int_t)spans[k].start !=
                        json_integer_value(json_array_get(json_array_get(want_spans, k), 0)) ||
                    (json_int_t)spans[k].end != json_integer_value(json_array_get(json_array_get(want_spans, k), 1)))
                    fail_msg("case %zu: span %zu is [%zu, %zu)", i, k, spans[k].start, spans[k].end);
        }
        free(text);
        free(spans);
    }
    json_decref(root);
}

/* Fails with status `code` and a message containing `needle`. */
static void expect_error(const char *src, hone_status code, const char *needle) {
    char *text = NULL;
    size_t len;
    hone_status st = render_with(src, NULL, &jinja_default_limits, &text, &len, NULL, NULL);
    if (st == HONE_OK) fail_msg("\"%s\" rendered \"%s\"; expected an error containing '%s'", src, text, needle);
    if (st != code) fail_msg("\"%s\": status %d, expected %d (%s)", src, st, code, hone_error());
    if (!strstr(hone_error(), needle)) fail_msg("\"%s\": error '%s' lacks '%s'", src, hone_error(), needle);
}

static void test_error_positions(void **state) {
    (void)state;
    /* runtime errors point at the innermost expression that failed: line and column of its first token */
    expect_error("ok\n  {{ 1 + 'a' }}", HONE_ERR_INVALID,
                 "line 2:8: unsupported operand type(s) for +: 'int' and 'str'");
    expect_error("{% for m in [1] %}\n{{ m.x.y }}{% endfor %}", HONE_ERR_INVALID,
                 "line 2:4: 'int object' has no attribute 'x'");
    expect_error("{{ x.y }}", HONE_ERR_INVALID, "line 1:4: 'x' is undefined");
    expect_error("{{ raise_exception('stop ' ~ 42) }}", HONE_ERR_INVALID,
                 "line 1:4: the template raised an error: stop 42");
    /* syntax errors: name:line:column and the text there */
    expect_error("a\n{% if %}", HONE_ERR_FORMAT, "case:2:7: Expected an expression, got 'end of statement block'");
    expect_error("{% for x in y %}", HONE_ERR_FORMAT, "Jinja was looking for the following tags: 'endfor' or 'else'");
    expect_error("{% endfor %}", HONE_ERR_FORMAT, "case:1:4: Encountered unknown tag 'endfor'");
    expect_error("{{ a ! b }}", HONE_ERR_FORMAT, "case:1:6: unexpected character '!'");
    expect_error("{{ (1, 2] }}", HONE_ERR_FORMAT, "case:1:9: unexpected ']', expected ')'");
    expect_error("{{ 'unterminated }}", HONE_ERR_FORMAT, "case:1:4: unexpected character");
    expect_error("{# never closed", HONE_ERR_FORMAT, "missing end of comment tag");
    expect_error("{% raw %}never closed", HONE_ERR_FORMAT, "missing end of raw directive");
    expect_error("{{ 'bad \\x4' }}", HONE_ERR_FORMAT, "truncated \\x escape");
    expect_error("{% break %}", HONE_ERR_FORMAT, "'break' outside a for loop");
    expect_error("{{ x | nosuchfilter }}", HONE_ERR_FORMAT, "case:1:8: No filter named 'nosuchfilter'.");
    expect_error("{{ x is nosuchtest }}", HONE_ERR_FORMAT, "No test named 'nosuchtest'.");
    expect_error("{% set 1 = 2 %}", HONE_ERR_FORMAT, "can't assign to 'const'");
    expect_error("{{ 99999999999999999999 }}", HONE_ERR_UNSUPPORTED, "does not fit in 64 bits");
}

/* What hone does not implement is an error naming it, never a different text. */
static void test_unsupported(void **state) {
    (void)state;
    expect_error("{% include 'x' %}", HONE_ERR_UNSUPPORTED, "the 'include' tag is not supported");
    expect_error("{% extends 'x' %}", HONE_ERR_UNSUPPORTED, "'extends' tag");
    expect_error("{% for x in y recursive %}{% endfor %}", HONE_ERR_UNSUPPORTED, "recursive for loops");
    expect_error("{{ f(*args) }}", HONE_ERR_UNSUPPORTED, "*args and **kwargs");
    expect_error("{{ 'x' | truncate(3) }}", HONE_ERR_UNSUPPORTED, "filter 'truncate' is not supported");
    expect_error("{{ 'x'.zfill is defined }}{{ '{}'.format(1) }}", HONE_ERR_UNSUPPORTED, "str.format");
    expect_error("{{ [1].pop() }}", HONE_ERR_UNSUPPORTED, "list.pop");
    expect_error("{{ cycler(1, 2) }}", HONE_ERR_UNSUPPORTED, "'cycler' is not supported");
    expect_error("{{ [1, 2] | map('string') }}", HONE_ERR_UNSUPPORTED, "printing a generator");
    expect_error("{{ 'a'.upper }}", HONE_ERR_UNSUPPORTED, "printing the function 'str.upper'");
    expect_error("{{ 2 ** 64 }}", HONE_ERR_UNSUPPORTED, "does not fit in 64 bits");
    expect_error("{{ (-8) ** 0.5 }}", HONE_ERR_UNSUPPORTED, "complex");
}

/* Limits: loops, recursion, output and memory are bounded, and deep nesting is refused, not a stack overflow. */
static void test_limits(void **state) {
    (void)state;
    jinja_limits small = {.max_output = 1 << 16, .max_memory = 16 << 20, .max_steps = 100000, .max_depth = 20};
    char *text = NULL;
    size_t len;
    assert_int_equal(render_with("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
                                 NULL, &small, &text, &len, NULL, NULL),
                     HONE_ERR_INVALID);
    assert_non_null(strstr(hone_error(), "did not finish within 100000 steps"));
    assert_int_equal(
        render_with("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", NULL, &small, &text, &len, NULL, NULL),
        HONE_ERR_INVALID);
    assert_non_null(strstr(hone_error(), "nested deeper than 20 levels"));
    assert_int_equal(
        render_with("{% for i in range(1000) %}{{ 'x' * 1000 }}{% endfor %}", NULL, &small, &text, &len, NULL, NULL),
        HONE_ERR_INVALID);
    assert_non_null(strstr(hone_error(), "rendered text would exceed"));
    assert_int_equal(render_with("{{ 'x' * 100000000 }}", NULL, &small, &text, &len, NULL, NULL), HONE_ERR_INVALID);
    assert_non_null(strstr(hone_error(), "needs too much memory"));
    /* the default limits let a big but finite loop through */
    TEST_OK(render_with("{% for i in range(100000) %}{% endfor %}done", NULL, &jinja_default_limits, &text, &len, NULL,
                        NULL));
    assert_string_equal(text, "done");
    free(text);

    /* 10 000 nested parentheses, lists and ifs are compile errors, not crashes */
    size_t n = 10000;
    char *deep = malloc(4 * n + 16);
    strcpy(deep, "{{ ");
    for (size_t i = 0; i < n; i++) strcat(deep + 3 + i, "(");
    strcat(deep, "1");
    for (size_t i = 0; i < n; i++) strcat(deep, ")");
    strcat(deep, " }}");
    jinja_template *t;
    assert_int_equal(jinja_compile(&t, "deep", deep, strlen(deep)), HONE_ERR_FORMAT);
    assert_non_null(strstr(hone_error(), "nested too deeply"));
    deep[0] = 0;
    for (size_t i = 0; i < 300; i++) strcat(deep, "{% if 1 %}");
    assert_int_equal(jinja_compile(&t, "deep", deep, strlen(deep)), HONE_ERR_FORMAT);
    assert_non_null(strstr(hone_error(), "nested too deeply"));
    free(deep);
    /* long chains build tall trees without recursion in the parser: refused before evaluation could recurse */
    for (int kind = 0; kind < 2; kind++) {
        deep = malloc(3 * 100000 + 16);
        strcpy(deep, "{{ 1");
        for (size_t i = 0; i < 100000; i++) strcat(deep + 4 + 2 * i, kind ? ".b" : "+1");
        strcat(deep, " }}");
        assert_int_equal(jinja_compile(&t, "deep", deep, strlen(deep)), HONE_ERR_FORMAT);
        assert_non_null(strstr(hone_error(), "the expression is nested too deeply"));
        free(deep);
    }
    /* recursion through tall expressions stops at the evaluator's depth limit, not at the end of the stack */
    deep = malloc(16 * 400 + 128);
    strcpy(deep, "{% macro f(n) %}{{ f(n + 1)");
    for (size_t i = 0; i < 400; i++) strcat(deep, "|string");
    strcat(deep, " }}{% endmacro %}{{ f(0) }}");
    assert_int_equal(render_with(deep, NULL, &jinja_default_limits, &text, &len, NULL, NULL), HONE_ERR_INVALID);
    assert_non_null(strstr(hone_error(), "the template nests deeper than"));
    free(deep);
    /* values nested by a loop cannot overflow the stack when printed, hashed or compared */
    assert_int_equal(render_with("{% set ns = namespace(v=1) %}{% for i in range(2000) %}{% set ns.v = (ns.v,) %}"
                                 "{% endfor %}{{ {ns.v: 1} }}",
                                 NULL, &jinja_default_limits, &text, &len, NULL, NULL),
                     HONE_ERR_INVALID);
    assert_non_null(strstr(hone_error(), "nested over 500 levels"));
    assert_int_equal(
        render_with("{% set ns = namespace(a=[1], b=[2]) %}{% for i in range(2000) %}{% set ns.a = [ns.a] %}"
                    "{% set ns.b = [ns.b] %}{% endfor %}{{ ns.a < ns.b }}",
                    NULL, &jinja_default_limits, &text, &len, NULL, NULL),
        HONE_ERR_INVALID);
    assert_non_null(strstr(hone_error(), "nested over 500 levels"));
    assert_int_equal(render_with("{% set ns = namespace(v=[]) %}{% for i in range(2000) %}{% set ns.v = [ns.v] %}"
                                 "{% endfor %}{{ ns.v }}",
                                 NULL, &jinja_default_limits, &text, &len, NULL, NULL),
                     HONE_ERR_INVALID);
    assert_non_null(strstr(hone_error(), "nested too deeply"));
}

/* Values: Python's float repr, and the JSON writer, over values that the fixtures exercise only in part. */
static void test_float_repr(void **state) {
    (void)state;
    static const struct {
        double x;
        const char *want;
    } cases[] = {
        {0.5, "0.5"},
        {3.0, "3.0"},
        {1e16, "1e+16"},
        {1e15, "1000000000000000.0"},
        {0.0001, "0.0001"},
        {0.00001, "1e-05"},
        {-0.0, "-0.0"},
        {1.0 / 3, "0.3333333333333333"},
        {5e-324, "5e-324"},
        {1.7976931348623157e308, "1.7976931348623157e+308"},
        {123456789012345678.0, "1.2345678901234568e+17"},
        {0.1 + 0.2, "0.30000000000000004"},
        {-2.5e-7, "-2.5e-07"},
        {100.0, "100.0"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[40];
        jv_format_float(cases[i].x, buf);
        assert_string_equal(buf, cases[i].want);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_engine_matches_jinja2),
        cmocka_unit_test(test_error_positions),
        cmocka_unit_test(test_unsupported),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_float_repr),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
