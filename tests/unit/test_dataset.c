/* data: dataset formats → examples. Every case of tests/fixtures/dataset/expected.json (real files from
 * ../shared/data and the hand-written files beside it) is checked against tools/make_dataset_fixtures.py, an
 * independent Python reading of the same files: detected format and kind, counts, drops by reason and FNV-1a
 * digests of every parsed example. Then exact content of each hand-written format, each mapping option, each
 * error and drop reason, gzip, streaming and canonical round trips. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "hone/chat_template.h"
#include "hone/dataset.h"
#include "testutil.h"

#define FIXTURES "tests/fixtures/dataset/"

/* ---- the digest of tools/make_dataset_fixtures.py ---- */

#define FNV_BASIS 0xCBF29CE484222325ull

static void feed(uint64_t *h, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) *h = (*h ^ (uint8_t)s[i]) * 0x100000001B3ull;
}
static void feed_str(uint64_t *h, const char *s) { feed(h, s, strlen(s)); }

static void feed_canon(uint64_t *h, const json_t *v) {
    char num[64];
    const char *key;
    json_t *item;
    size_t i;
    switch (json_typeof(v)) {
        case JSON_OBJECT: {
            int first = 1;
            feed_str(h, "{");
            json_object_foreach((json_t *)v, key, item) {
                feed_str(h, first ? "\"" : ",\"");
                feed_str(h, key);
                feed_str(h, "\":");
                feed_canon(h, item);
                first = 0;
            }
            feed_str(h, "}");
            break;
        }
        case JSON_ARRAY:
            feed_str(h, "[");
            json_array_foreach(v, i, item) {
                if (i) feed_str(h, ",");
                feed_canon(h, item);
            }
            feed_str(h, "]");
            break;
        case JSON_STRING:
            feed_str(h, "\"");
            feed(h, json_string_value(v), json_string_length(v));
            feed_str(h, "\"");
            break;
        case JSON_INTEGER:
            snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
            feed_str(h, num);
            break;
        case JSON_REAL:
            snprintf(num, sizeof num, "%.17g", json_real_value(v));
            feed_str(h, num);
            break;
        case JSON_TRUE:
            feed_str(h, "true");
            break;
        case JSON_FALSE:
            feed_str(h, "false");
            break;
        case JSON_NULL:
            feed_str(h, "null");
            break;
    }
}

static void feed_json_text(uint64_t *h, const char *text) {
    if (!text) return;
    json_error_t err;
    json_t *v = json_loads(text, 0, &err);
    if (!v) fail_msg("hone wrote JSON that does not parse: %s (%s)", text, err.text);
    feed_canon(h, v);
    json_decref(v);
}

static void feed_conv(uint64_t *h, const hone_conversation *c) {
    char num[16];
    feed_json_text(h, c->tools_json);
    feed_str(h, "\x1d");
    for (size_t i = 0; i < c->n_messages; i++) {
        const hone_message *m = &c->messages[i];
        snprintf(num, sizeof num, "%d", m->weight);
        feed_str(h, m->role);
        feed_str(h, "\x1f");
        feed_str(h, m->content);
        feed_str(h, "\x1f");
        feed_str(h, num);
        feed_str(h, "\x1f");
        feed_str(h, m->name ? m->name : "");
        feed_str(h, "\x1f");
        feed_json_text(h, m->tool_calls_json);
        feed_str(h, "\x1d");
    }
}

static void feed_ids(uint64_t *h, const int32_t *ids, size_t n) {
    char num[16];
    for (size_t i = 0; i < n; i++) {
        snprintf(num, sizeof num, "%s%d", i ? "," : "", ids[i]);
        feed_str(h, num);
    }
}

static void feed_example(uint64_t *h, const hone_example *ex) {
    feed_str(h, hone_example_kind_name(ex->kind));
    feed_str(h, "\x1e");
    switch (ex->kind) {
        case HONE_EXAMPLE_SFT:
            feed_conv(h, &ex->conversation);
            break;
        case HONE_EXAMPLE_KTO:
            feed_conv(h, &ex->conversation);
            feed_str(h, ex->label ? "\x1etrue"
                                  : "\x1e"
                                    "false");
            break;
        case HONE_EXAMPLE_PREFERENCE:
            feed_conv(h, &ex->conversation);
            feed_str(h, "\x1e");
            feed_conv(h, &ex->chosen);
            feed_str(h, "\x1e");
            feed_conv(h, &ex->rejected);
            break;
        case HONE_EXAMPLE_TEXT:
            feed_str(h, ex->text);
            break;
        default:
            feed_ids(h, ex->input_ids, ex->n_tokens);
            feed_str(h, "\x1e");
            if (ex->labels)
                feed_ids(h, ex->labels, ex->n_tokens);
            else
                feed_str(h, "-");
    }
}

static uint64_t example_digest(const hone_example *ex) {
    uint64_t h = FNV_BASIS;
    feed_example(&h, ex);
    return h;
}

static uint64_t dataset_digest(const hone_dataset *ds) {
    uint64_t h = FNV_BASIS;
    for (size_t i = 0; i < ds->n_examples; i++) {
        feed_example(&h, &ds->examples[i]);
        feed_str(&h, "\x1c");
    }
    return h;
}

/* ---- helpers ---- */

/* Options from a JSON object of strings (they stay owned by the JSON value). */
static void options_from_json(hone_dataset_options *o, const json_t *obj) {
    const char *key;
    json_t *v;
    memset(o, 0, sizeof *o);
    json_object_foreach((json_t *)obj, key, v) TEST_OK(hone_dataset_option_set(o, key, json_string_value(v)));
}

static int drop_index(const char *name) {
    for (int r = 0; r < HONE_DROP_COUNT; r++)
        if (!strcmp(name, hone_drop_reason_name((hone_drop_reason)r))) return r;
    fail_msg("unknown drop reason %s in expected.json", name);
    return -1;
}

static void check_roles(const hone_example *ex, const json_t *want, const char *what) {
    const hone_conversation *convs[3] = {&ex->conversation, &ex->chosen, &ex->rejected};
    size_t i;
    json_t *list;
    json_array_foreach(want, i, list) {
        assert_true(i < 3);
        if (convs[i]->n_messages != json_array_size(list))
            fail_msg("%s: conversation %zu has %zu messages, the reference %zu", what, i, convs[i]->n_messages,
                     json_array_size(list));
        for (size_t k = 0; k < convs[i]->n_messages; k++)
            if (strcmp(convs[i]->messages[k].role, json_string_value(json_array_get(list, k))))
                fail_msg("%s: conversation %zu message %zu is %s, the reference %s", what, i, k,
                         convs[i]->messages[k].role, json_string_value(json_array_get(list, k)));
    }
}

static void check_one(const hone_example *ex, const json_t *want, const char *what) {
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)example_digest(ex));
    if ((json_int_t)ex->line != json_integer_value(json_object_get(want, "line")) ||
        (json_int_t)ex->index != json_integer_value(json_object_get(want, "index")))
        fail_msg("%s: line %zu index %zu, the reference line %lld index %lld", what, ex->line, ex->index,
                 json_integer_value(json_object_get(want, "line")), json_integer_value(json_object_get(want, "index")));
    check_roles(ex, json_object_get(want, "roles"), what);
    if (strcmp(hex, json_string_value(json_object_get(want, "digest")))) {
        char *got = hone_example_to_json(ex);
        fail_msg("%s: digest %s, the reference %s; hone read %s", what, hex,
                 json_string_value(json_object_get(want, "digest")), got);
    }
}

/* One case of expected.json. */
static void check_case(const json_t *c) {
    const char *path = json_string_value(json_object_get(c, "file"));
    hone_dataset_options o;
    options_from_json(&o, json_object_get(c, "options"));
    hone_dataset ds;
    TEST_OK(hone_dataset_load(&ds, path, &o));
    const hone_dataset_stats *s = &ds.stats;
    assert_string_equal(hone_dataset_format_name(s->format), json_string_value(json_object_get(c, "format")));
    assert_string_equal(hone_example_kind_name(s->kind), json_string_value(json_object_get(c, "kind")));
    assert_int_equal(s->rows, json_integer_value(json_object_get(c, "rows")));
    assert_int_equal(s->examples, json_integer_value(json_object_get(c, "examples")));
    assert_int_equal(ds.n_examples, s->examples);
    size_t want_dropped = 0, got_first[HONE_DROP_COUNT] = {0}, want_by[HONE_DROP_COUNT] = {0};
    const char *key;
    json_t *v;
    json_object_foreach(json_object_get(c, "dropped_by"), key, v) {
        want_by[drop_index(key)] = (size_t)json_integer_value(v);
        want_dropped += (size_t)json_integer_value(v);
    }
    json_object_foreach(json_object_get(c, "first_dropped_line"), key, v) got_first[drop_index(key)] =
        (size_t)json_integer_value(v);
    for (int r = 0; r < HONE_DROP_COUNT; r++) {
        if (s->dropped_by[r] != want_by[r] || s->first_dropped_line[r] != got_first[r])
            fail_msg("%s: %s: %zu dropped (first at line %zu), the reference %zu (line %zu)", path,
                     hone_drop_reason_name((hone_drop_reason)r), s->dropped_by[r], s->first_dropped_line[r], want_by[r],
                     got_first[r]);
    }
    assert_int_equal(s->dropped, want_dropped);
    if (ds.n_examples) {
        char what[600];
        snprintf(what, sizeof what, "%s, first example", path);
        check_one(&ds.examples[0], json_object_get(c, "first"), what);
        snprintf(what, sizeof what, "%s, last example", path);
        check_one(&ds.examples[ds.n_examples - 1], json_object_get(c, "last"), what);
    }
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)dataset_digest(&ds));
    if (strcmp(hex, json_string_value(json_object_get(c, "digest"))))
        fail_msg("%s: the examples differ from the Python reference (digest %s, want %s)", path, hex,
                 json_string_value(json_object_get(c, "digest")));
    hone_dataset_free(&ds);
}

static json_t *expected_cases(void) {
    json_error_t err;
    json_t *root = json_load_file(FIXTURES "expected.json", 0, &err);
    if (!root) fail_msg("%sexpected.json: %s", FIXTURES, err.text);
    return root;
}

static int is_shared(const char *path) { return !strncmp(path, "../shared/", 10); }

static void test_against_python_reference_fixtures(void **state) {
    (void)state;
    json_t *root = expected_cases(), *c;
    size_t i, n = 0;
    json_array_foreach(json_object_get(root, "cases"), i,
                       c) if (!is_shared(json_string_value(json_object_get(c, "file")))) {
        check_case(c);
        n++;
    }
    assert_true(n >= 20);
    json_decref(root);
}

static void test_against_python_reference_real_files(void **state) {
    (void)state;
    if (!test_shared_data()) skip();
    json_t *root = expected_cases(), *c;
    size_t i, n = 0;
    json_array_foreach(json_object_get(root, "cases"), i,
                       c) if (is_shared(json_string_value(json_object_get(c, "file")))) {
        check_case(c);
        n++;
    }
    assert_true(n >= 20);
    json_decref(root);
}

/* ---- exact content of the hand-written formats ---- */

static const hone_message *msg_at(const hone_conversation *c, size_t i) {
    if (i >= c->n_messages) fail_msg("message %zu of a %zu-message conversation", i, c->n_messages);
    return &c->messages[i];
}

#define ASSERT_MSG(conv, i, want_role, want_content)                                                                   \
    do {                                                                                                               \
        assert_string_equal(msg_at(conv, i)->role, want_role);                                                         \
        assert_string_equal(msg_at(conv, i)->content, want_content);                                                   \
    } while (0)

static void load(hone_dataset *ds, const char *path, const hone_dataset_options *o) {
    TEST_OK(hone_dataset_load(ds, path, o));
}

static void test_alpaca_and_dolly(void **state) {
    (void)state;
    hone_dataset ds;
    load(&ds, FIXTURES "alpaca.json", NULL);
    assert_int_equal(ds.n_examples, 4);
    const hone_conversation *c = &ds.examples[0].conversation;
    assert_int_equal(c->n_messages, 2);
    ASSERT_MSG(c, 0, "user", "Add the numbers.\n2 and 3"); /* instruction + "\n" + input */
    ASSERT_MSG(c, 1, "assistant", "5");
    assert_int_equal(c->messages[0].weight, -1);
    c = &ds.examples[1].conversation;
    ASSERT_MSG(c, 0, "system", "Be brief.");
    ASSERT_MSG(c, 1, "user", "Say hi."); /* empty input: no "\n" */
    c = &ds.examples[2].conversation;
    assert_int_equal(c->n_messages, 6);
    ASSERT_MSG(c, 0, "user", "2+3?");
    ASSERT_MSG(c, 1, "assistant", "5");
    ASSERT_MSG(c, 3, "assistant", "Yes.");
    ASSERT_MSG(c, 4, "user", "And now?");
    assert_int_equal(ds.examples[2].line, 4); /* the element spans lines 4-9 */
    assert_int_equal(ds.examples[2].index, 2);
    ASSERT_MSG(&ds.examples[3].conversation, 0, "user", "Only an input");
    assert_int_equal(ds.examples[3].index, 4);
    assert_int_equal(ds.stats.dropped_by[HONE_DROP_EMPTY_ANSWER], 1);
    assert_int_equal(ds.stats.first_dropped_line[HONE_DROP_EMPTY_ANSWER], 10);
    hone_dataset_free(&ds);

    load(&ds, FIXTURES "dolly.jsonl", NULL);
    assert_int_equal(ds.stats.format, HONE_FORMAT_DOLLY);
    ASSERT_MSG(&ds.examples[0].conversation, 0, "user", "When did it open?\nThe shop opened in 1990.");
    ASSERT_MSG(&ds.examples[0].conversation, 1, "assistant", "In 1990.");
    ASSERT_MSG(&ds.examples[1].conversation, 0, "user", "Name a colour.");
    hone_dataset_free(&ds);

    load(&ds, FIXTURES "self_instruct.jsonl", NULL);
    assert_int_equal(ds.stats.format, HONE_FORMAT_SELF_INSTRUCT);
    assert_int_equal(ds.stats.rows, 2);
    assert_int_equal(ds.n_examples, 3); /* one per instance */
    ASSERT_MSG(&ds.examples[0].conversation, 0, "user", "Suggest a breakfast.");
    ASSERT_MSG(&ds.examples[2].conversation, 0, "user", "Classify the sentiment.\nI hate it");
    ASSERT_MSG(&ds.examples[2].conversation, 1, "assistant", "negative");
    assert_int_equal(ds.examples[2].line, 2);
    hone_dataset_free(&ds);
}

static void test_sharegpt_tools_and_system(void **state) {
    (void)state;
    hone_dataset ds;
    load(&ds, FIXTURES "sharegpt.json", NULL);
    assert_int_equal(ds.stats.format, HONE_FORMAT_SHAREGPT);
    assert_int_equal(ds.n_examples, 3);
    const hone_conversation *c = &ds.examples[0].conversation;
    ASSERT_MSG(c, 0, "system", "S");
    ASSERT_MSG(c, 1, "user", "Q1");
    c = &ds.examples[1].conversation;
    assert_int_equal(c->n_messages, 4);
    ASSERT_MSG(c, 1, "assistant", ""); /* function_call: an assistant tool call, as LLaMA-Factory reads it */
    assert_string_equal(c->messages[1].tool_calls_json,
                        "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":{\"city\":"
                        "\"Paris\",\"days\":1.5}}}]");
    ASSERT_MSG(c, 2, "tool", "{\"temp\": 21}"); /* observation */
    ASSERT_MSG(c, 3, "assistant", "21 degrees.");
    assert_string_equal(c->tools_json, "[{\"name\":\"get_weather\",\"description\":\"Weather of a city\","
                                       "\"parameters\":{\"type\":\"object\"}}]");
    c = &ds.examples[2].conversation;
    ASSERT_MSG(c, 0, "system", "Row system"); /* the row's system field */
    ASSERT_MSG(c, 1, "user", "Q2");
    assert_int_equal(ds.stats.dropped_by[HONE_DROP_UNKNOWN_ROLE], 1);
    assert_int_equal(ds.stats.dropped_by[HONE_DROP_BAD_TOOL_CALL], 1);
    assert_int_equal(ds.stats.dropped_by[HONE_DROP_BAD_TURNS], 2);
    assert_int_equal(ds.stats.dropped, 4);
    hone_dataset_free(&ds);
}

static void test_openai_messages(void **state) {
    (void)state;
    hone_dataset ds;
    load(&ds, FIXTURES "messages.jsonl", NULL);
    assert_int_equal(ds.stats.format, HONE_FORMAT_MESSAGES);
    assert_int_equal(ds.n_examples, 3);
    const hone_conversation *c = &ds.examples[0].conversation;
    ASSERT_MSG(c, 1, "user", "Hello world"); /* text parts joined */
    assert_int_equal(c->messages[2].weight, 1);
    assert_int_equal(c->messages[1].weight, -1);
    c = &ds.examples[1].conversation;
    assert_int_equal(ds.examples[1].line, 3); /* after a blank line */
    assert_int_equal(ds.examples[1].index, 1);
    assert_int_equal(c->messages[0].weight, 0);
    ASSERT_MSG(c, 1, "assistant", ""); /* content null, tool calls kept */
    assert_string_equal(c->messages[1].tool_calls_json,
                        "[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"x\\\": 1}\"}}]");
    ASSERT_MSG(c, 2, "tool", "42");
    assert_string_equal(c->messages[2].name, "f");
    ASSERT_MSG(c, 3, "tool", "43"); /* consecutive tool results are one turn */
    assert_string_equal(c->tools_json, "[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]");
    c = &ds.examples[2].conversation;
    ASSERT_MSG(c, 0, "user", "v1 part"); /* LLaMA-Factory v1: {"type": "text", "value"}, loss_weight */
    assert_int_equal(c->messages[0].weight, 0);
    assert_int_equal(c->messages[1].weight, 1);
    assert_int_equal(ds.stats.dropped_by[HONE_DROP_EMPTY_ANSWER], 1);
    assert_int_equal(ds.stats.first_dropped_line[HONE_DROP_EMPTY_ANSWER], 5);
    assert_int_equal(ds.stats.dropped_by[HONE_DROP_BAD_TURNS], 1); /* a system message after the first turn */
    hone_dataset_free(&ds);
}

/* tool_call_id ties a tool result to its call: kept, written back, and handed to chat templates (Mistral v0.3's
 * template requires it). */
static void test_tool_call_id(void **state) {
    (void)state;
    char *dir = test_tmpdir();
    const char *row = "{\"messages\": [{\"role\": \"user\", \"content\": \"2+2?\"}, {\"role\": \"assistant\", "
                      "\"tool_calls\": [{\"id\": \"call_1\", \"type\": \"function\", \"function\": {\"name\": \"add\", "
                      "\"arguments\": \"{}\"}}]}, {\"role\": \"tool\", \"tool_call_id\": \"call_1\", \"content\": \"4\"}, "
                      "{\"role\": \"assistant\", \"content\": \"4\"}]}\n";
    char *path = test_write_file(dir, "calls.jsonl", row, strlen(row));
    hone_dataset ds;
    TEST_OK(hone_dataset_load(&ds, path, NULL));
    assert_int_equal(ds.n_examples, 1);
    const hone_conversation *c = &ds.examples[0].conversation;
    assert_string_equal(c->messages[2].tool_call_id, "call_1");
    assert_null(c->messages[0].tool_call_id);
    char *json = hone_example_to_json(&ds.examples[0]);
    assert_non_null(strstr(json, "\"tool_call_id\":\"call_1\""));
    free(json);
    hone_chat_template *t;
    const char *src = "{% for m in messages %}{{ m.role }}{% if m.tool_call_id is defined %}[{{ m.tool_call_id }}]"
                      "{% endif %};{% endfor %}";
    TEST_OK(hone_chat_template_compile(&t, src, strlen(src), "ids", 0));
    char *text;
    size_t len;
    TEST_OK(hone_chat_template_render(t, c, NULL, &text, &len, NULL, NULL));
    assert_string_equal(text, "user;assistant;tool[call_1];assistant;");
    free(text);
    hone_chat_template_free(t);
    hone_dataset_free(&ds);
    free(path);
    test_tmpdir_remove(dir);
    free(dir);
}

static void test_oasst_best_path(void **state) {
    (void)state;
    hone_dataset ds;
    load(&ds, FIXTURES "oasst.jsonl", NULL);
    assert_int_equal(ds.stats.format, HONE_FORMAT_OASST);
    assert_int_equal(ds.n_examples, 3);
    const hone_conversation *c = &ds.examples[0].conversation;
    assert_int_equal(c->n_messages, 4);
    ASSERT_MSG(c, 0, "user", "Root question");
    ASSERT_MSG(c, 1, "assistant", "Best answer"); /* rank 0; the deleted rank-0 reply is not followed */
    ASSERT_MSG(c, 2, "user", "Follow-up");
    ASSERT_MSG(c, 3, "assistant", "Unranked first"); /* no ranks: the first reply */
    c = &ds.examples[1].conversation;
    assert_int_equal(c->n_messages, 2); /* the unanswered prompter leaf is cut */
    ASSERT_MSG(c, 1, "assistant", "A");
    ASSERT_MSG(&ds.examples[2].conversation, 1, "assistant", "Better child"); /* "children", rank 0.5 < 2 */
    assert_int_equal(ds.stats.dropped_by[HONE_DROP_BAD_TURNS], 1);            /* a prompt nobody answered */
    hone_dataset_free(&ds);
}

static void test_super_natural_instructions(void **state) {
    (void)state;
    hone_dataset ds;
    load(&ds, FIXTURES "sni_task.json", NULL);
    assert_int_equal(ds.stats.format, HONE_FORMAT_SNI);
    assert_int_equal(ds.stats.rows, 1);
    assert_int_equal(ds.n_examples, 2);
    /* Tk-Instruct's rendering: definition + 2 positive examples, "." added after text not ending in punctuation */
    ASSERT_MSG(&ds.examples[0].conversation, 0, "user",
               "Definition: Given a sentence, answer whether it is a question.\n\n"
               " Positive Example 1 -\nInput: Is it raining?\n Output: yes.\n\n"
               " Positive Example 2 -\nInput: It is sunny.\n Output: no.\n\n"
               "Now complete the following example -\nInput: Where are you.\nOutput: ");
    ASSERT_MSG(&ds.examples[0].conversation, 1, "assistant", "yes");
    const char *second = ds.examples[1].conversation.messages[0].content;
    assert_non_null(strstr(second, "Input: I am here!\nOutput: "));
    ASSERT_MSG(&ds.examples[1].conversation, 1, "assistant", "no");
    hone_dataset_free(&ds);

    load(&ds, FIXTURES "sni_rows.jsonl", NULL);
    ASSERT_MSG(&ds.examples[0].conversation, 0, "user",
               "Definition: Translate to French.\n\nNow complete the following example -\nInput: cat.\nOutput: ");
    ASSERT_MSG(&ds.examples[0].conversation, 1, "assistant", "chat");
    ASSERT_MSG(&ds.examples[1].conversation, 0, "user",
               "Definition: Translate to French:\n\nNow complete the following example -\nInput: dog.\nOutput: ");
    hone_dataset_free(&ds);
}

static void test_text_and_tokens(void **state) {
    (void)state;
    hone_dataset ds;
    load(&ds, FIXTURES "text.jsonl", NULL);
    assert_int_equal(ds.stats.kind, HONE_EXAMPLE_TEXT);
    assert_int_equal(ds.n_examples, 2);
    assert_string_equal(ds.examples[1].text, "Second document,\nwith two lines.");
    assert_int_equal(ds.stats.dropped_by[HONE_DROP_EMPTY_TEXT], 1);
    hone_dataset_free(&ds);

    load(&ds, FIXTURES "tokens.jsonl", NULL);
    assert_int_equal(ds.stats.kind, HONE_EXAMPLE_TOKENS);
    assert_int_equal(ds.n_examples, 2);
    assert_int_equal(ds.examples[0].n_tokens, 3);
    assert_memory_equal(ds.examples[0].input_ids, ((int32_t[]){1, 2, 3}), 3 * sizeof(int32_t));
    assert_memory_equal(ds.examples[0].labels, ((int32_t[]){-100, 2, 3}), 3 * sizeof(int32_t));
    assert_null(ds.examples[1].labels);
    assert_int_equal(ds.stats.dropped_by[HONE_DROP_EMPTY_TEXT], 1);
    hone_dataset_free(&ds);

    hone_dataset_options o = {.format = "text"}; /* forced: alpaca rows read through their "text" */
    if (test_shared_data()) {
        load(&ds, "../shared/data/datasets/instruct/alpaca_tiny_100.json", &o);
        assert_int_equal(ds.stats.format, HONE_FORMAT_TEXT);
        assert_int_equal(ds.n_examples, 100);
        assert_non_null(strstr(ds.examples[0].text, "### Instruction:"));
        hone_dataset_free(&ds);
    }
}

static void test_preference_shapes(void **state) {
    (void)state;
    hone_dataset ds;
    load(&ds, FIXTURES "pref_strings.jsonl", NULL);
    assert_int_equal(ds.stats.kind, HONE_EXAMPLE_PREFERENCE);
    assert_int_equal(ds.n_examples, 2);
    const hone_example *ex = &ds.examples[0];
    ASSERT_MSG(&ex->conversation, 0, "user", "Capital of France?");
    ASSERT_MSG(&ex->chosen, 0, "assistant", "Paris.");
    ASSERT_MSG(&ex->rejected, 0, "assistant", "Lyon.");
    ex = &ds.examples[1]; /* TRL's implicit prompt: the common prefix, backed off before the space */
    ASSERT_MSG(&ex->conversation, 0, "user", "The sky is");
    ASSERT_MSG(&ex->chosen, 0, "assistant", " blue.");
    ASSERT_MSG(&ex->rejected, 0, "assistant", " green.");
    assert_int_equal(ds.stats.dropped_by[HONE_DROP_IDENTICAL_PAIR], 1);
    assert_int_equal(ds.stats.dropped_by[HONE_DROP_BAD_TURNS], 1); /* nothing shared: no prompt */
    hone_dataset_free(&ds);

    load(&ds, FIXTURES "pref_alpaca.jsonl", NULL);
    ex = &ds.examples[0];
    ASSERT_MSG(&ex->conversation, 0, "system", "Be short.");
    ASSERT_MSG(&ex->conversation, 1, "user", "Name a fruit.");
    ASSERT_MSG(&ex->rejected, 0, "assistant", "A car");
    hone_dataset_free(&ds);

    load(&ds, FIXTURES "pref_lists.jsonl", NULL);
    assert_int_equal(ds.n_examples, 4);
    ex = &ds.examples[0];
    assert_int_equal(ex->conversation.n_messages, 1);
    ASSERT_MSG(&ex->chosen, 0, "assistant", "Fix it.");
    ASSERT_MSG(&ex->rejected, 0, "assistant", "Take them off.");
    ASSERT_MSG(&ds.examples[1].conversation, 0, "system", "S"); /* explicit prompt list */
    ex = &ds.examples[2];                                       /* chosen_messages / rejected_messages with v1 parts */
    ASSERT_MSG(&ex->conversation, 0, "user", "Hi");
    assert_int_equal(ex->conversation.messages[0].weight, 0);
    ASSERT_MSG(&ex->chosen, 0, "assistant", "Hello!");
    ex = &ds.examples[3]; /* the string prompt is ignored; the lists differ from message 1 */
    assert_int_equal(ex->conversation.n_messages, 1);
    assert_int_equal(ex->chosen.n_messages, 3);
    ASSERT_MSG(&ex->chosen, 2, "assistant", "A2");
    assert_int_equal(ds.stats.dropped_by[HONE_DROP_EMPTY_ANSWER], 1);
    hone_dataset_free(&ds);

    load(&ds, FIXTURES "hh.jsonl", NULL);
    assert_int_equal(ds.n_examples, 2);
    ex = &ds.examples[0];
    assert_int_equal(ex->conversation.n_messages, 3);
    ASSERT_MSG(&ex->conversation, 1, "assistant", "Hello");
    ASSERT_MSG(&ex->conversation, 2, "user", "Tell me a joke?");
    ASSERT_MSG(&ex->chosen, 0, "assistant", "Knock knock.\n\nWho's there?"); /* a paragraph continues the turn */
    ASSERT_MSG(&ex->rejected, 0, "assistant", "No.");
    assert_int_equal(ds.stats.dropped_by[HONE_DROP_IDENTICAL_PAIR], 1); /* equal once stripped */
    hone_dataset_free(&ds);

    load(&ds, FIXTURES "dpo_sharegpt.json", NULL);
    assert_int_equal(ds.stats.format, HONE_FORMAT_SHAREGPT);
    assert_int_equal(ds.stats.kind, HONE_EXAMPLE_PREFERENCE);
    ex = &ds.examples[0];
    ASSERT_MSG(&ex->conversation, 0, "system", "Be kind.");
    ASSERT_MSG(&ex->chosen, 0, "assistant", "Hello, friend.");
    ASSERT_MSG(&ex->rejected, 0, "assistant", "What?");
    assert_int_equal(ds.stats.dropped_by[HONE_DROP_BAD_TURNS], 1); /* a rejected turn from the human */
    hone_dataset_free(&ds);
}

static void test_kto(void **state) {
    (void)state;
    hone_dataset ds;
    load(&ds, FIXTURES "kto.jsonl", NULL);
    assert_int_equal(ds.stats.kind, HONE_EXAMPLE_KTO);
    assert_int_equal(ds.examples[0].label, 1);
    assert_int_equal(ds.examples[1].label, 0);
    ASSERT_MSG(&ds.examples[1].conversation, 1, "assistant", "Bad");
    hone_dataset_free(&ds);
    load(&ds, FIXTURES "kto_alpaca.json", NULL); /* LLaMA-Factory's kto_tag on alpaca rows */
    assert_int_equal(ds.stats.format, HONE_FORMAT_ALPACA);
    assert_int_equal(ds.stats.kind, HONE_EXAMPLE_KTO);
    ASSERT_MSG(&ds.examples[1].conversation, 0, "user", "Q\nx");
    assert_int_equal(ds.examples[1].label, 0);
    hone_dataset_free(&ds);
}

/* ---- column mapping ---- */

static void test_mapping_options(void **state) {
    (void)state;
    hone_dataset ds;
    hone_dataset_options o = {.field_messages = "dialog",
                              .message_field_role = "speaker",
                              .message_field_content = "text",
                              .roles_user = "customer",
                              .roles_assistant = "agent",
                              .roles_system = "narrator",
                              .roles_tool = " api ,",
                              .field_tools = "functions",
                              .field_system = "sys"};
    load(&ds, FIXTURES "map_chat.jsonl", &o);
    const hone_conversation *c = &ds.examples[0].conversation;
    assert_int_equal(c->n_messages, 7);
    ASSERT_MSG(c, 0, "system", "A shop."); /* the dialog's own system turn wins over "sys" */
    ASSERT_MSG(c, 1, "user", "Price?");
    ASSERT_MSG(c, 4, "assistant", "Checking.");
    assert_string_equal(c->messages[4].tool_calls_json,
                        "[{\"type\":\"function\",\"function\":{\"name\":\"stock\",\"arguments\":{}}}]");
    ASSERT_MSG(c, 5, "tool", "3 left");
    assert_string_equal(c->tools_json, "[{\"name\":\"stock\"}]");
    hone_dataset_free(&ds);

    TEST_FAILS_WITH(hone_dataset_load(&ds, FIXTURES "map_chat.jsonl", NULL), "cannot tell the dataset format");
    o.roles_tool = NULL;
    TEST_OK(hone_dataset_load(&ds, FIXTURES "map_chat.jsonl", &o)); /* "api" unknown now: the row is dropped */
    assert_int_equal(ds.stats.dropped_by[HONE_DROP_UNKNOWN_ROLE], 1);
    hone_dataset_free(&ds);
    o.roles_tool = "agent";
    TEST_FAILS_WITH(hone_dataset_load(&ds, FIXTURES "map_chat.jsonl", &o),
                    "role alias 'agent' is already an alias of assistant");

    hone_dataset_options k = {.field_messages = "dialog",
                              .message_field_role = "speaker",
                              .message_field_content = "text",
                              .roles_user = "customer",
                              .roles_assistant = "agent",
                              .field_label = "desirable"};
    load(&ds, FIXTURES "map_kto.jsonl", &k);
    assert_int_equal(ds.stats.kind, HONE_EXAMPLE_KTO);
    assert_int_equal(ds.examples[1].label, 0);
    hone_dataset_free(&ds);

    hone_dataset_options a = {.field_instruction = "q",
                              .field_input = "ctx",
                              .field_output = "a",
                              .field_system = "sys",
                              .field_history = "hist"};
    load(&ds, FIXTURES "map_alpaca.jsonl", &a);
    assert_int_equal(ds.stats.format, HONE_FORMAT_ALPACA);
    c = &ds.examples[0].conversation;
    assert_int_equal(c->n_messages, 5);
    ASSERT_MSG(c, 0, "system", "You translate.");
    ASSERT_MSG(c, 1, "user", "Translate chien");
    ASSERT_MSG(c, 2, "assistant", "dog");
    ASSERT_MSG(c, 3, "user", "Translate\nchat");
    ASSERT_MSG(c, 4, "assistant", "cat");
    hone_dataset_free(&ds);

    hone_dataset_options p = {.field_prompt = "question", .field_chosen = "good", .field_rejected = "bad"};
    load(&ds, FIXTURES "map_pref.jsonl", &p);
    ASSERT_MSG(&ds.examples[0].conversation, 0, "user", "2+2?");
    ASSERT_MSG(&ds.examples[0].chosen, 0, "assistant", "4");
    ASSERT_MSG(&ds.examples[0].rejected, 0, "assistant", "5");
    hone_dataset_free(&ds);

    hone_dataset_options t = {.field_text = "body"};
    load(&ds, FIXTURES "map_text.jsonl", &t);
    assert_string_equal(ds.examples[0].text, "Some text.");
    hone_dataset_free(&ds);
}

static void test_option_api(void **state) {
    (void)state;
    hone_dataset_options o = {0};
    size_t n;
    const hone_dataset_option_info *list = hone_dataset_option_list(&n);
    assert_int_equal(n, 21);
    for (size_t i = 0; i < n; i++) /* format and conversation take names only */
        if (!list[i].is_bool && strcmp(list[i].name, "format") && strcmp(list[i].name, "conversation"))
            TEST_OK(hone_dataset_option_set(&o, list[i].name, "x" /* kept, not copied */));
    assert_string_equal(o.field_tools, "x");
    assert_string_equal(o.roles_tool, "x");
    TEST_FAILS_WITH(hone_dataset_option_set(&o, "format", "csv"), "unknown dataset format 'csv'");
    TEST_OK(hone_dataset_option_set(&o, "format", "openai"));
    hone_dataset_format f;
    TEST_OK(hone_dataset_format_parse(o.format, &f));
    assert_int_equal(f, HONE_FORMAT_MESSAGES);
    TEST_OK(hone_dataset_option_set(&o, "strict", "true"));
    assert_int_equal(o.strict, 1);
    TEST_FAILS_WITH(hone_dataset_option_set(&o, "strict", "yes"), "expected true or false");
    TEST_FAILS_WITH(hone_dataset_option_set(&o, "field_output_", "x"), "unknown dataset option 'field_output_'");
}

/* ---- bad input ---- */

/* Writes text to dir/name and expects loading it (with o) to fail with needle in the message. */
static void expect_error(const char *dir, const char *name, const char *text, const hone_dataset_options *o,
                         hone_status code, const char *needle) {
    char *path = test_write_file(dir, name, text, strlen(text));
    hone_dataset ds;
    hone_status st = hone_dataset_load(&ds, path, o);
    if (st == HONE_OK) fail_msg("%s loaded; expected an error containing '%s'", name, needle);
    if (!strstr(hone_error(), needle)) fail_msg("%s: error '%s' does not contain '%s'", name, hone_error(), needle);
    if (st != code) fail_msg("%s: status %d, expected %d (%s)", name, st, code, hone_error());
    assert_null(ds.examples);
    free(path);
}

static void test_errors_name_file_line_and_field(void **state) {
    (void)state;
    char *dir = test_tmpdir();
    expect_error(dir, "bad.jsonl", "{\"text\": \"a\"}\n{\"text\": \n", NULL, HONE_ERR_FORMAT,
                 "bad.jsonl:2: invalid JSON");
    expect_error(dir, "bad.json", "[\n{\"text\": \"a\"},\n{\"text\" \"b\"}\n]", NULL, HONE_ERR_FORMAT,
                 "bad.json:3 (element 1): invalid JSON");
    expect_error(dir, "utf8.jsonl", "{\"text\": \"ok\"}\n{\"text\": \"caf\xe9\"}\n", NULL, HONE_ERR_FORMAT,
                 "utf8.jsonl:2: invalid UTF-8");
    expect_error(dir, "utf8.json", "[{\"text\": \"ok\"},\n\n {\"text\": \"\xc3\x28\"}]", NULL, HONE_ERR_FORMAT,
                 "utf8.json:3 (element 1): invalid UTF-8");
    expect_error(dir, "noout.jsonl",
                 "{\"instruction\": \"a\", \"output\": \"b\"}\n{\"instruction\": \"c\", \"input\": \"\"}\n", NULL,
                 HONE_ERR_FORMAT, "noout.jsonl:2: missing field \"output\"");
    expect_error(dir, "type.json", "[{\"instruction\": \"a\", \"output\": 7}]", NULL, HONE_ERR_FORMAT,
                 "type.json:1 (element 0): field \"output\" must be a string, not a number");
    expect_error(dir, "novalue.jsonl",
                 "{\"conversations\": [{\"from\": \"human\", \"value\": \"a\"}, {\"from\": \"gpt\"}]}\n", NULL,
                 HONE_ERR_FORMAT, "novalue.jsonl:1: conversations[1]: missing field \"value\"");
    expect_error(dir, "image.jsonl",
                 "{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"image_url\", \"image_url\": "
                 "{\"url\": \"x\"}}]}, {\"role\": \"assistant\", \"content\": \"a\"}]}\n",
                 NULL, HONE_ERR_UNSUPPORTED, "messages[0]: content[0] has type \"image_url\": only text parts");
    expect_error(dir, "weight.jsonl",
                 "{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}, {\"role\": \"assistant\", \"content\": "
                 "\"a\", \"weight\": 0.5}]}\n",
                 NULL, HONE_ERR_UNSUPPORTED, "\"weight\" must be 0 or 1");
    expect_error(dir, "labels.jsonl", "{\"input_ids\": [1, 2], \"labels\": [1]}\n", NULL, HONE_ERR_FORMAT,
                 "labels.jsonl:1: field \"labels\" must be an array as long as \"input_ids\" (2)");
    expect_error(dir, "ids.jsonl", "{\"input_ids\": [1, -100]}\n", NULL, HONE_ERR_FORMAT,
                 "input_ids[1] must be an integer id");
    expect_error(dir, "mask.jsonl", "{\"input_ids\": [1, 2], \"attention_mask\": [1, 0]}\n", NULL, HONE_ERR_UNSUPPORTED,
                 "attention_mask[1] is not 1: padded rows are not supported");
    /* past the 16 rows that detection reads (where a non-boolean label would make the rows disagree) */
    char kto[2048] = "";
    for (int i = 0; i < 17; i++)
        strcat(kto, i < 16 ? "{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}, {\"role\": \"assistant\", "
                             "\"content\": \"a\"}], \"label\": true}\n"
                           : "{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}, {\"role\": \"assistant\", "
                             "\"content\": \"a\"}], \"label\": \"yes\"}\n");
    expect_error(dir, "label.jsonl", kto, NULL, HONE_ERR_FORMAT,
                 "label.jsonl:17: field \"label\" must be true or false (the KTO label), not a string");
    expect_error(dir, "gsm.jsonl", "{\"question\": \"q\", \"answer\": \"a\"}\n", NULL, HONE_ERR_FORMAT,
                 "gsm.jsonl:1: cannot tell the dataset format from the fields {question, answer}");
    expect_error(dir, "mixed.jsonl", "{\"text\": \"a\"}\n{\"instruction\": \"q\", \"output\": \"a\"}\n", NULL,
                 HONE_ERR_FORMAT, "mixed.jsonl:1 looks like text (text) but ");
    expect_error(dir, "trl.jsonl", "{\"prompt\": \"q\", \"completion\": \"a\"}\n", NULL, HONE_ERR_UNSUPPORTED,
                 "TRL prompt/completion rows are not supported yet");
    expect_error(dir, "empty.jsonl", "\n  \n", NULL, HONE_ERR_FORMAT, "empty.jsonl: no rows");
    expect_error(dir, "empty.json", "[ ]", NULL, HONE_ERR_FORMAT, "empty.json: no rows");
    expect_error(dir, "data.csv", "instruction,output\na,b\n", NULL, HONE_ERR_UNSUPPORTED, "data.csv: not JSON");
    expect_error(dir, "open.json", "[{\"text\": \"a\"},\n", NULL, HONE_ERR_FORMAT,
                 "open.json:2: the JSON array is not closed");
    expect_error(dir, "ends.json", "[{\"text\": \"a\"}", NULL, HONE_ERR_FORMAT,
                 "ends.json:1: expected ',' or ']' after element 0 of the JSON array (the file ends)");
    expect_error(dir, "comma.json", "[{\"text\": \"a\"} {\"text\": \"b\"}]", NULL, HONE_ERR_FORMAT,
                 "expected ',' or ']' after element 0");
    expect_error(dir, "after.json", "[{\"text\": \"a\"}]\n[]", NULL, HONE_ERR_FORMAT,
                 "after.json:2: data after the end of the JSON array");
    expect_error(dir, "scalar.json", "[{\"text\": \"a\"}, 3]", NULL, HONE_ERR_FORMAT,
                 "scalar.json:1 (element 1): invalid JSON");
    expect_error(dir, "nested.json", "[{\"text\": \"a\"}, [1]]", NULL, HONE_ERR_FORMAT,
                 "nested.json:1 (element 1): expected a JSON object");
    expect_error(dir, "dup.jsonl", "{\"text\": \"a\", \"text\": \"b\"}\n", NULL, HONE_ERR_FORMAT,
                 "dup.jsonl:1: invalid JSON");
    expect_error(dir, "tools.jsonl",
                 "{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}, {\"role\": \"assistant\", \"content\": "
                 "\"a\"}], \"tools\": \"{not json\"}\n",
                 NULL, HONE_ERR_FORMAT, "tools.jsonl:1: field \"tools\" is a string but not JSON");
    expect_error(dir, "hist.jsonl", "{\"instruction\": \"a\", \"output\": \"b\", \"history\": [[\"q\"]]}\n", NULL,
                 HONE_ERR_FORMAT, "history[0] must be a [query, answer] pair of strings");
    expect_error(dir, "mixedpair.jsonl",
                 "{\"chosen\": \"a\", \"rejected\": [{\"role\": \"assistant\", \"content\": \"b\"}]}\n", NULL,
                 HONE_ERR_FORMAT, "fields \"chosen\" and \"rejected\" must both be strings, message lists");
    expect_error(dir, "hhbad.jsonl", "{\"chosen\": \"Human: a\\n\\nAssistant: b\", \"rejected\": \"just text\"}\n",
                 NULL, HONE_ERR_FORMAT, "hhbad.jsonl:1: field \"rejected\" is not a Human:/Assistant: transcript");
    hone_dataset_options o = {.format = "sni"};
    expect_error(dir, "sni.jsonl", "{\"Definition\": [], \"input\": \"a\", \"output\": \"b\"}\n", &o, HONE_ERR_FORMAT,
                 "field \"Definition\" must be a string or a non-empty list of strings");
    test_tmpdir_remove(dir);
    free(dir);
}

/* Every drop reason is counted by default and an error naming file:line and the reason in strict mode. */
static void test_drops_and_strict_mode(void **state) {
    (void)state;
    static const struct {
        const char *row;
        hone_drop_reason reason;
        const char *detail;
    } cases[] = {
        {"{\"conversations\": [{\"from\": \"human\", \"value\": \"q\"}, {\"from\": \"wizard\", \"value\": \"a\"}]}",
         HONE_DROP_UNKNOWN_ROLE, "conversations[1]: unknown role \"wizard\""},
        {"{\"conversations\": [{\"from\": \"human\", \"value\": \"q\"}, {\"from\": \"function_call\", \"value\": "
         "\"{\\\"arguments\\\": {}}\"}, {\"from\": \"observation\", \"value\": \"r\"}, {\"from\": \"gpt\", "
         "\"value\": \"a\"}]}",
         HONE_DROP_BAD_TOOL_CALL, "conversations[1]: a function_call must hold JSON"},
        {"{\"chosen\": \"same\", \"rejected\": \"same\"}", HONE_DROP_IDENTICAL_PAIR,
         "\"chosen\" and \"rejected\" are the same"},
        {"{\"conversations\": [{\"from\": \"gpt\", \"value\": \"a\"}, {\"from\": \"human\", \"value\": \"q\"}]}",
         HONE_DROP_BAD_TURNS, "message 0 (assistant) follows the system message"},
        {"{\"instruction\": \"q\", \"output\": \"\\n\"}", HONE_DROP_EMPTY_ANSWER, "assistant message 1 is empty"},
        {"{\"text\": \" \"}", HONE_DROP_EMPTY_TEXT, "field \"text\" is empty"},
    };
    char *dir = test_tmpdir();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[1024], needle[512];
        snprintf(text, sizeof text, "%s\n%s\n", cases[i].row, cases[i].row);
        char *path = test_write_file(dir, "drop.jsonl", text, strlen(text));
        hone_dataset ds;
        TEST_OK(hone_dataset_load(&ds, path, NULL));
        assert_int_equal(ds.n_examples, 0);
        assert_int_equal(ds.stats.rows, 2);
        assert_int_equal(ds.stats.dropped, 2);
        assert_int_equal(ds.stats.dropped_by[cases[i].reason], 2);
        assert_int_equal(ds.stats.first_dropped_line[cases[i].reason], 1);
        hone_dataset_free(&ds);
        hone_dataset_options strict = {.strict = 1};
        snprintf(needle, sizeof needle, "drop.jsonl:1: %s: %s", hone_drop_reason_name(cases[i].reason),
                 cases[i].detail);
        TEST_FAILS_WITH(hone_dataset_load(&ds, path, &strict), needle);
        free(path);
    }
    test_tmpdir_remove(dir);
    free(dir);
}

/* ---- gzip, streaming, canonical round trips ---- */

static void gzip_file(const char *src, const char *dst, const char *mode, size_t from, size_t to) {
    char *data;
    size_t n;
    TEST_OK(hone_file_read(src, &data, &n));
    gzFile gz = gzopen(dst, mode);
    assert_non_null(gz);
    if (to > n) to = n;
    assert_int_equal(gzwrite(gz, data + from, (unsigned)(to - from)), (int)(to - from));
    gzclose(gz);
    free(data);
}

static void assert_same_examples(const hone_dataset *a, const hone_dataset *b) {
    assert_int_equal(a->n_examples, b->n_examples);
    for (size_t i = 0; i < a->n_examples; i++) {
        char *x = hone_example_to_json(&a->examples[i]), *y = hone_example_to_json(&b->examples[i]);
        assert_string_equal(x, y);
        assert_int_equal(a->examples[i].line, b->examples[i].line);
        free(x);
        free(y);
    }
}

static void test_gzip_equals_plain(void **state) {
    (void)state;
    char *dir = test_tmpdir();
    char *gz = hone_path_join(dir, "messages.jsonl.gz"), *two = hone_path_join(dir, "two.json.gz");
    gzip_file(FIXTURES "messages.jsonl", gz, "wb", 0, SIZE_MAX);
    hone_dataset plain, packed;
    load(&plain, FIXTURES "messages.jsonl", NULL);
    load(&packed, gz, NULL);
    assert_same_examples(&plain, &packed);
    assert_int_equal(packed.stats.dropped, plain.stats.dropped);
    hone_dataset_free(&packed);
    hone_dataset_free(&plain);

    /* two gzip members (cat a.gz b.gz) are one file; the extension does not matter */
    gzip_file(FIXTURES "alpaca.json", two, "wb", 0, 100);
    gzip_file(FIXTURES "alpaca.json", two, "ab", 100, SIZE_MAX);
    load(&plain, FIXTURES "alpaca.json", NULL);
    load(&packed, two, NULL);
    assert_same_examples(&plain, &packed);
    hone_dataset_free(&packed);
    hone_dataset_free(&plain);

    char *data;
    size_t n;
    TEST_OK(hone_file_read(gz, &data, &n));
    char *cut = test_write_file(dir, "cut.jsonl.gz", data, n / 2);
    TEST_FAILS_WITH(hone_dataset_load(&plain, cut, NULL), "cut.jsonl.gz: truncated gzip file");
    data[n / 2] ^= 0x55;
    char *bad = test_write_file(dir, "bad.jsonl.gz", data, n);
    TEST_FAILS_WITH(hone_dataset_load(&plain, bad, NULL), "bad.jsonl.gz: corrupt gzip data");
    free(data);
    free(cut);
    free(bad);
    free(gz);
    free(two);
    test_tmpdir_remove(dir);
    free(dir);
}

typedef struct {
    size_t seen, kept;
    hone_example first;
} stream_ctx;

static hone_status take_first(hone_example *ex, void *ctx) {
    stream_ctx *s = ctx;
    if (!s->seen++) {
        s->first = *ex; /* take it: the reader frees only what is left */
        memset(ex, 0, sizeof *ex);
        s->kept++;
    }
    return s->seen == 3 ? hone_errorf(HONE_ERR_INVALID, "stop after three") : HONE_OK;
}

static void test_streaming_callback(void **state) {
    (void)state;
    stream_ctx s = {0};
    hone_dataset_stats stats;
    TEST_FAILS_WITH(hone_dataset_read(FIXTURES "self_instruct.jsonl", NULL, take_first, &s, &stats),
                    "stop after three");
    assert_int_equal(s.seen, 3);
    assert_int_equal(stats.rows, 2);
    assert_int_equal(stats.examples, 3);
    ASSERT_MSG(&s.first.conversation, 1, "assistant", "Oatmeal.");
    hone_example_free(&s.first);
}

/* convert(x) reads back as the same examples, and convert(convert(x)) == convert(x) byte for byte. */
static void round_trip(const char *path, const hone_dataset_options *o, const char *dir) {
    char *once = hone_path_join(dir, "once.jsonl"), *twice = hone_path_join(dir, "twice.jsonl");
    hone_dataset_stats s1, s2;
    TEST_OK(hone_dataset_convert(path, once, o, &s1));
    TEST_OK(hone_dataset_convert(once, twice, NULL, &s2));
    assert_int_equal(s2.examples, s1.examples);
    assert_int_equal(s2.rows, s1.examples);
    assert_int_equal(s2.dropped, 0);
    assert_int_equal(s2.kind, s1.kind);
    char *a, *b;
    size_t na, nb;
    TEST_OK(hone_file_read(once, &a, &na));
    TEST_OK(hone_file_read(twice, &b, &nb));
    if (na != nb || memcmp(a, b, na)) fail_msg("%s: converting the converted file changed it", path);
    hone_dataset orig, back;
    load(&orig, path, o);
    load(&back, once, NULL);
    if (dataset_digest(&orig) != dataset_digest(&back)) fail_msg("%s: the canonical file reads differently", path);
    hone_dataset_free(&orig);
    hone_dataset_free(&back);
    free(a);
    free(b);
    free(once);
    free(twice);
}

static void test_canonical_round_trip(void **state) {
    (void)state;
    char *dir = test_tmpdir();
    json_t *root = expected_cases(), *c;
    size_t i;
    const int shared = test_shared_data() != NULL;
    json_array_foreach(json_object_get(root, "cases"), i, c) {
        const char *path = json_string_value(json_object_get(c, "file"));
        if (is_shared(path) && !shared) continue;
        hone_dataset_options o;
        options_from_json(&o, json_object_get(c, "options"));
        round_trip(path, &o, dir);
    }
    json_decref(root);
    /* the canonical form of one example, exactly */
    hone_dataset ds;
    load(&ds, FIXTURES "messages.jsonl", NULL);
    char *line = hone_example_to_json(&ds.examples[0]);
    assert_string_equal(line,
                        "{\"messages\":[{\"role\":\"system\",\"content\":\"Sys\"},{\"role\":\"user\","
                        "\"content\":\"Hello world\"},{\"role\":\"assistant\",\"content\":\"Hi\",\"weight\":1}]}");
    free(line);
    hone_dataset_free(&ds);
    test_tmpdir_remove(dir);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_against_python_reference_fixtures),
        cmocka_unit_test(test_against_python_reference_real_files),
        cmocka_unit_test(test_alpaca_and_dolly),
        cmocka_unit_test(test_sharegpt_tools_and_system),
        cmocka_unit_test(test_openai_messages),
        cmocka_unit_test(test_oasst_best_path),
        cmocka_unit_test(test_super_natural_instructions),
        cmocka_unit_test(test_text_and_tokens),
        cmocka_unit_test(test_preference_shapes),
        cmocka_unit_test(test_kto),
        cmocka_unit_test(test_mapping_options),
        cmocka_unit_test(test_option_api),
        cmocka_unit_test(test_errors_name_file_line_and_field),
        cmocka_unit_test(test_drops_and_strict_mode),
        cmocka_unit_test(test_gzip_equals_plain),
        cmocka_unit_test(test_streaming_callback),
        cmocka_unit_test(test_canonical_round_trip),
        cmocka_unit_test(test_tool_call_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
