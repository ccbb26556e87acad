/* settings: flags, the --config YAML file, precedence, type checking and error messages. */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "hone/settings.h"

static const hone_key_spec keys[] = {
    {"model", HONE_KEY_STRING, NULL, "model folder"},
    {"learning_rate", HONE_KEY_FLOAT, "3e-4", "peak learning rate"},
    {"micro_batch_size", HONE_KEY_INT, "4", "examples per step"},
    {"num_epochs", HONE_KEY_INT, NULL, "passes over the data"},
    {"shuffle", HONE_KEY_BOOL, "true", "shuffle the examples"},
    {"train_on_inputs", HONE_KEY_BOOL, "false", "also learn the prompts"},
    {"lora_target_modules", HONE_KEY_LIST, "q_proj,v_proj", "modules to adapt"},
    {"datasets", HONE_KEY_LIST, NULL, "training files"},
};
#define N_KEYS (sizeof keys / sizeof keys[0])

#define ARGV(...) ((char *[]){__VA_ARGS__})
#define ARGC(...) ((int)(sizeof((char *[]){__VA_ARGS__}) / sizeof(char *)))
/* Parses the given arguments; the test fails with the error message if parsing fails. */
#define PARSE(s, ...) TEST_OK(hone_settings_parse(&(s), keys, N_KEYS, ARGC(__VA_ARGS__), ARGV(__VA_ARGS__)))
/* Expects parsing to fail with a message containing `needle`. */
#define PARSE_FAILS(needle, ...)                                                                               \
    do {                                                                                                       \
        hone_settings *failed_ = NULL;                                                                         \
        TEST_FAILS_WITH(hone_settings_parse(&failed_, keys, N_KEYS, ARGC(__VA_ARGS__), ARGV(__VA_ARGS__)),     \
                        needle);                                                                               \
        assert_null(failed_);                                                                                  \
    } while (0)

/* A temporary YAML file; remove with drop_yaml. */
typedef struct {
    char *dir, *path;
} yaml_file;

static yaml_file make_yaml(const char *text) {
    yaml_file f;
    f.dir = test_tmpdir();
    f.path = test_write_file(f.dir, "config.yaml", text, strlen(text));
    return f;
}

static void drop_yaml(yaml_file *f) {
    test_tmpdir_remove(f->dir);
    free(f->dir);
    free(f->path);
}

static void test_defaults(void **state) {
    (void)state;
    hone_settings *s;
    TEST_OK(hone_settings_parse(&s, keys, N_KEYS, 0, NULL));
    assert_false(hone_settings_is_set(s, "learning_rate"));
    assert_true(hone_settings_float(s, "learning_rate") == 3e-4);
    assert_int_equal(hone_settings_int(s, "micro_batch_size"), 4);
    assert_true(hone_settings_bool(s, "shuffle"));
    assert_false(hone_settings_bool(s, "train_on_inputs"));
    assert_string_equal(hone_settings_str(s, "learning_rate"), "3e-4");
    assert_null(hone_settings_str(s, "model"));
    const char *const *items;
    assert_int_equal(hone_settings_list(s, "lora_target_modules", &items), 2);
    assert_string_equal(items[0], "q_proj");
    assert_string_equal(items[1], "v_proj");
    assert_int_equal(hone_settings_list(s, "datasets", &items), 0);
    assert_null(items);
    TEST_FAILS_WITH(hone_settings_require(s, "model"), "missing required option --model");
    TEST_OK(hone_settings_require(s, "learning_rate"));
    hone_settings_free(s);
}

static void test_flag_spellings(void **state) {
    (void)state;
    hone_settings *s;
    PARSE(s, "--learning-rate", "2e-5", "--micro_batch_size=8", "--model=dir/with=sign", "--num-epochs", "+3");
    assert_true(hone_settings_is_set(s, "learning_rate"));
    assert_true(hone_settings_float(s, "learning_rate") == 2e-5);
    assert_int_equal(hone_settings_int(s, "micro_batch_size"), 8);
    assert_string_equal(hone_settings_str(s, "model"), "dir/with=sign");
    assert_int_equal(hone_settings_int(s, "num_epochs"), 3);
    assert_string_equal(hone_settings_str(s, "num_epochs"), "+3");
    hone_settings_free(s);
}

static void test_negative_number_is_a_value(void **state) {
    (void)state;
    hone_settings *s;
    PARSE(s, "--learning-rate", "-1.5", "--num-epochs", "-2");
    assert_true(hone_settings_float(s, "learning_rate") == -1.5);
    assert_int_equal(hone_settings_int(s, "num_epochs"), -2);
    hone_settings_free(s);
}

static void test_last_flag_wins(void **state) {
    (void)state;
    hone_settings *s;
    PARSE(s, "--num-epochs", "1", "--num-epochs=2");
    assert_int_equal(hone_settings_int(s, "num_epochs"), 2);
    hone_settings_free(s);
}

static void test_bool_forms(void **state) {
    (void)state;
    hone_settings *s;
    PARSE(s, "--train-on-inputs", "--shuffle=no");
    assert_true(hone_settings_bool(s, "train_on_inputs"));
    assert_false(hone_settings_bool(s, "shuffle"));
    hone_settings_free(s);
    PARSE(s, "--shuffle", "FALSE", "--train-on-inputs");
    assert_false(hone_settings_bool(s, "shuffle"));
    assert_true(hone_settings_bool(s, "train_on_inputs"));
    assert_string_equal(hone_settings_str(s, "train_on_inputs"), "true");
    hone_settings_free(s);
    static const char *const truths[] = {"true", "True", "YES", "yes", "1"}, *const lies[] = {"false", "No", "0"};
    for (size_t i = 0; i < 5; i++) {
        PARSE(s, "--shuffle", (char *)truths[i]);
        assert_true(hone_settings_bool(s, "shuffle"));
        hone_settings_free(s);
    }
    for (size_t i = 0; i < 3; i++) {
        PARSE(s, "--shuffle", (char *)lies[i]);
        assert_false(hone_settings_bool(s, "shuffle"));
        hone_settings_free(s);
    }
    PARSE_FAILS("--shuffle: expected true or false (or yes/no, 1/0), got 'maybe'", "--shuffle", "maybe");
}

static void test_list_from_flag(void **state) {
    (void)state;
    hone_settings *s;
    PARSE(s, "--lora-target-modules", " q_proj , k_proj,v_proj ");
    const char *const *items;
    assert_int_equal(hone_settings_list(s, "lora_target_modules", &items), 3);
    assert_string_equal(items[0], "q_proj");
    assert_string_equal(items[1], "k_proj");
    assert_string_equal(items[2], "v_proj");
    assert_string_equal(hone_settings_str(s, "lora_target_modules"), "q_proj,k_proj,v_proj");
    hone_settings_free(s);
    PARSE(s, "--datasets=a.jsonl");
    assert_int_equal(hone_settings_list(s, "datasets", &items), 1);
    assert_string_equal(items[0], "a.jsonl");
    hone_settings_free(s);
    PARSE_FAILS("--lora-target-modules: empty item in list 'q_proj,,v_proj'", "--lora-target-modules",
                "q_proj,,v_proj");
    PARSE_FAILS("--datasets: empty value", "--datasets=");
}

static void test_yaml_and_precedence(void **state) {
    (void)state;
    yaml_file f = make_yaml("# training run\n"
                            "model: models/tiny\n"
                            "learning_rate: 1e-4\n"
                            "micro_batch_size: 2\n"
                            "shuffle: no\n"
                            "num_epochs:\n" /* null: left to its (absent) default */
                            "lora_target_modules:\n"
                            "  - q_proj\n"
                            "  - o_proj\n"
                            "datasets: a.jsonl, b.jsonl\n");
    hone_settings *s;
    /* Flags override the file, even when they come before --config. */
    PARSE(s, "--learning-rate", "5e-5", "--config", f.path, "--shuffle");
    assert_true(hone_settings_float(s, "learning_rate") == 5e-5);
    assert_string_equal(hone_settings_str(s, "model"), "models/tiny");
    assert_int_equal(hone_settings_int(s, "micro_batch_size"), 2);
    assert_true(hone_settings_bool(s, "shuffle"));
    assert_false(hone_settings_is_set(s, "num_epochs"));
    assert_false(hone_settings_is_set(s, "train_on_inputs"));
    const char *const *items;
    assert_int_equal(hone_settings_list(s, "lora_target_modules", &items), 2);
    assert_string_equal(items[0], "q_proj");
    assert_string_equal(items[1], "o_proj");
    assert_int_equal(hone_settings_list(s, "datasets", &items), 2);
    assert_string_equal(items[1], "b.jsonl");
    hone_settings_free(s);

    char *arg = malloc(strlen(f.path) + 10);
    sprintf(arg, "--config=%s", f.path);
    PARSE(s, arg);
    assert_true(hone_settings_float(s, "learning_rate") == 1e-4);
    assert_false(hone_settings_bool(s, "shuffle"));
    hone_settings_free(s);
    free(arg);
    drop_yaml(&f);
}

static void test_yaml_flow_list_and_empty_file(void **state) {
    (void)state;
    yaml_file f = make_yaml("lora_target_modules: [gate_proj, up_proj]\n");
    hone_settings *s;
    PARSE(s, "--config", f.path);
    const char *const *items;
    assert_int_equal(hone_settings_list(s, "lora_target_modules", &items), 2);
    assert_string_equal(items[1], "up_proj");
    hone_settings_free(s);
    drop_yaml(&f);
    f = make_yaml("# nothing yet\n");
    PARSE(s, "--config", f.path);
    assert_true(hone_settings_float(s, "learning_rate") == 3e-4);
    hone_settings_free(s);
    drop_yaml(&f);
}

static void test_unknown_flag_suggests(void **state) {
    (void)state;
    PARSE_FAILS("unknown option --lerning-rate (did you mean --learning-rate?)", "--lerning-rate", "1");
    PARSE_FAILS("unknown option --micro-bacth-size (did you mean --micro-batch-size?)", "--micro_bacth_size=1");
    PARSE_FAILS("unknown option --confg (did you mean --config?)", "--confg", "x.yaml");
    PARSE_FAILS("unknown option --frobnicate (see --help for the options)", "--frobnicate");
}

static void test_unknown_yaml_key_suggests(void **state) {
    (void)state;
    yaml_file f = make_yaml("model: m\n\nlerning_rate: 1e-4\n");
    char want[512];
    snprintf(want, sizeof want, "%s:3: unknown key 'lerning_rate' (did you mean 'learning_rate'?)", f.path);
    PARSE_FAILS(want, "--config", f.path);
    drop_yaml(&f);
    f = make_yaml("learning-rate: 1e-4\n");
    snprintf(want, sizeof want, "%s:1: unknown key 'learning-rate' (did you mean 'learning_rate'?)", f.path);
    PARSE_FAILS(want, "--config", f.path);
    drop_yaml(&f);
}

static void test_type_errors(void **state) {
    (void)state;
    PARSE_FAILS("--micro-batch-size: expected an integer, got 'four'", "--micro-batch-size", "four");
    PARSE_FAILS("--micro-batch-size: expected an integer, got '1e3'", "--micro-batch-size", "1e3");
    PARSE_FAILS("--micro-batch-size: expected an integer, got '8 '", "--micro-batch-size", "8 ");
    PARSE_FAILS("--micro-batch-size: integer '99999999999999999999' is out of range", "--micro-batch-size",
                "99999999999999999999");
    PARSE_FAILS("--learning-rate: expected a number, got '1e-4x'", "--learning-rate=1e-4x");
    PARSE_FAILS("--learning-rate: expected a finite number, got 'nan'", "--learning-rate=nan");
    PARSE_FAILS("--learning-rate: expected a finite number, got '1e999'", "--learning-rate=1e999");
    yaml_file f = make_yaml("model: m\nmicro_batch_size: four\n");
    char want[512];
    snprintf(want, sizeof want, "%s:2: micro_batch_size: expected an integer, got 'four'", f.path);
    PARSE_FAILS(want, "--config", f.path);
    drop_yaml(&f);
}

static void test_yaml_shape_errors(void **state) {
    (void)state;
    char want[512];
    yaml_file f = make_yaml("learning_rate:\n  - 1\n  - 2\n");
    snprintf(want, sizeof want, "%s:2: learning_rate: expected a single value, got a list", f.path);
    PARSE_FAILS(want, "--config", f.path);
    drop_yaml(&f);
    f = make_yaml("model:\n  path: m\n");
    snprintf(want, sizeof want, "%s:2: model: expected a single value, got a mapping", f.path);
    PARSE_FAILS(want, "--config", f.path);
    drop_yaml(&f);
    f = make_yaml("datasets:\n  - a\n  - [b, c]\n");
    snprintf(want, sizeof want, "%s:3: datasets: list items must be plain values", f.path);
    PARSE_FAILS(want, "--config", f.path);
    drop_yaml(&f);
    f = make_yaml("datasets:\n  - a\n  -\n");
    snprintf(want, sizeof want, "%s:2: datasets: item 2 of the list is empty", f.path);
    PARSE_FAILS(want, "--config", f.path);
    drop_yaml(&f);
    f = make_yaml("- model\n- m\n");
    snprintf(want, sizeof want, "%s:1: the file must be a mapping of 'key: value' lines", f.path);
    PARSE_FAILS(want, "--config", f.path);
    drop_yaml(&f);
    f = make_yaml("model: &m a\nlora_target_modules: *m\n");
    snprintf(want, sizeof want, "%s:1: YAML anchors and aliases", f.path);
    PARSE_FAILS(want, "--config", f.path);
    drop_yaml(&f);
    f = make_yaml("model: a\n---\nmodel: b\n");
    snprintf(want, sizeof want, "%s:2: only one YAML document is allowed", f.path);
    PARSE_FAILS(want, "--config", f.path);
    drop_yaml(&f);
}

static void test_duplicate_yaml_key(void **state) {
    (void)state;
    yaml_file f = make_yaml("model: a\nseed: 1\nmodel: b\n");
    char want[512];
    /* The unknown `seed` is reported first, on its line; then the duplicate once `seed` is gone. */
    snprintf(want, sizeof want, "%s:2: unknown key 'seed'", f.path);
    PARSE_FAILS(want, "--config", f.path);
    drop_yaml(&f);
    f = make_yaml("model: a\nshuffle: true\nmodel: b\n");
    snprintf(want, sizeof want, "%s:3: duplicate key 'model' (first given on line 1)", f.path);
    PARSE_FAILS(want, "--config", f.path);
    drop_yaml(&f);
}

static void test_malformed_yaml(void **state) {
    (void)state;
    /* libyaml notices the missing ':' on the next line, and says where the key began. */
    yaml_file f = make_yaml("model: a\nlearning_rate 1e-4\nshuffle: true\n");
    char want[512];
    snprintf(want, sizeof want,
             "%s:3: invalid YAML: could not find expected ':' (while scanning a simple key, line 2)", f.path);
    PARSE_FAILS(want, "--config", f.path);
    drop_yaml(&f);
    f = make_yaml("model: a\n  bad indent: 1\n");
    snprintf(want, sizeof want, "%s:2: invalid YAML: mapping values are not allowed in this context", f.path);
    PARSE_FAILS(want, "--config", f.path);
    drop_yaml(&f);
    PARSE_FAILS("/nonexistent/c.yaml: cannot open", "--config", "/nonexistent/c.yaml");
}

static void test_argument_errors(void **state) {
    (void)state;
    PARSE_FAILS("--learning-rate: missing value (expected FLOAT)", "--learning-rate");
    PARSE_FAILS("--model: missing value (expected TEXT)", "--model", "--shuffle");
    PARSE_FAILS("--config: missing value", "--config");
    PARSE_FAILS("unexpected argument 'train.yaml' (options are given as --key value)", "train.yaml");
    PARSE_FAILS("unexpected argument 'extra'", "--shuffle", "true", "extra");
    PARSE_FAILS("unexpected argument '-lr'", "-lr", "1");
    PARSE_FAILS("unexpected argument '--'", "--");
    PARSE_FAILS("--config given twice", "--config", "a.yaml", "--config", "b.yaml");
}

static void test_to_json(void **state) {
    (void)state;
    hone_settings *s;
    PARSE(s, "--datasets", "a.jsonl,b.jsonl", "--learning-rate", "2e-5", "--model", "m \"q\"", "--num-epochs", "3");
    char *json = hone_settings_to_json(s);
    assert_non_null(json);
    assert_string_equal(json, "{\"model\":\"m \\\"q\\\"\",\"learning_rate\":2e-5,\"micro_batch_size\":4,"
                              "\"num_epochs\":3,\"shuffle\":true,\"train_on_inputs\":false,"
                              "\"lora_target_modules\":[\"q_proj\",\"v_proj\"],"
                              "\"datasets\":[\"a.jsonl\",\"b.jsonl\"]}");
    free(json);
    hone_settings_free(s);
    /* Values that need every digit keep them. */
    PARSE(s, "--learning-rate", "0.1234567890123456789");
    json = hone_settings_to_json(s);
    assert_non_null(strstr(json, "\"learning_rate\":0.12345678901234568"));
    free(json);
    hone_settings_free(s);
}

static void test_print_help(void **state) {
    (void)state;
    static const hone_key_spec few[] = {
        {"learning_rate", HONE_KEY_FLOAT, "3e-4", "peak learning rate"},
        {"model", HONE_KEY_STRING, NULL, "model folder"},
        {"shuffle", HONE_KEY_BOOL, "true", "shuffle the examples"},
    };
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    hone_settings_print_help(few, 3, out);
    fclose(out);
    assert_string_equal(text, "  --config FILE           read options from a YAML file (flags override it)\n"
                              "  --learning-rate FLOAT   peak learning rate (default: 3e-4)\n"
                              "  --model TEXT            model folder\n"
                              "  --shuffle [BOOL]        shuffle the examples (default: true)\n");
    free(text);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_flag_spellings),
        cmocka_unit_test(test_negative_number_is_a_value),
        cmocka_unit_test(test_last_flag_wins),
        cmocka_unit_test(test_bool_forms),
        cmocka_unit_test(test_list_from_flag),
        cmocka_unit_test(test_yaml_and_precedence),
        cmocka_unit_test(test_yaml_flow_list_and_empty_file),
        cmocka_unit_test(test_unknown_flag_suggests),
        cmocka_unit_test(test_unknown_yaml_key_suggests),
        cmocka_unit_test(test_type_errors),
        cmocka_unit_test(test_yaml_shape_errors),
        cmocka_unit_test(test_duplicate_yaml_key),
        cmocka_unit_test(test_malformed_yaml),
        cmocka_unit_test(test_argument_errors),
        cmocka_unit_test(test_to_json),
        cmocka_unit_test(test_print_help),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
