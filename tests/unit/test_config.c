/* config.json parsing: every field that changes the math is read; anything unsupported is an error. */
#include <stdlib.h>
#include <string.h>

#include "hone/model.h"
#include "testutil.h"

static void test_gpt2_fields(void **s) {
    (void)s;
    hone_model_config c;
    TEST_OK(hone_model_config_parse(&c,
                                    "{\"model_type\":\"gpt2\",\"vocab_size\":100,\"n_embd\":64,\"n_head\":4,\"n_layer\":3,"
                                    "\"n_positions\":128,\"n_inner\":null,\"layer_norm_epsilon\":1e-4,"
                                    "\"activation_function\":\"gelu\",\"scale_attn_by_inverse_layer_idx\":true,"
                                    "\"bos_token_id\":7,\"eos_token_id\":[8,9]}",
                                    "config.json"));
    assert_int_equal(c.arch, HONE_ARCH_GPT2);
    assert_int_equal(c.hidden_size, 64);
    assert_int_equal(c.intermediate_size, 256); /* n_inner null -> 4 C */
    assert_int_equal(c.head_dim, 16);
    assert_int_equal(c.num_kv_heads, 4);
    assert_int_equal(c.activation, HONE_ACT_GELU_ERF);
    assert_true(c.norm_eps == 1e-4f);
    assert_true(c.tie_word_embeddings);
    assert_true(c.scale_attn_by_inverse_layer_idx);
    assert_int_equal(c.bos_token_id, 7);
    assert_int_equal(c.eos_token_id, 8);
    assert_int_equal(c.n_other_eos_ids, 1);
    assert_int_equal(c.other_eos_ids[0], 9);
}

/* eos_token_id as a list (Llama 3.1: [128001, 128008, 128009]): the first is eos_token_id, the others are kept and
 * written back as the same list; too many ids, or one outside the vocabulary, is an error. */
static void test_eos_token_id_list(void **s) {
    (void)s;
    const char *fmt = "{\"model_type\":\"llama\",\"vocab_size\":100,\"hidden_size\":8,\"num_attention_heads\":2,"
                      "\"num_hidden_layers\":1,\"intermediate_size\":16,\"eos_token_id\":%s}";
    char text[512];
    hone_model_config c, again;
    snprintf(text, sizeof text, fmt, "[1, 8, 9]");
    TEST_OK(hone_model_config_parse(&c, text, "config.json"));
    assert_int_equal(c.eos_token_id, 1);
    assert_int_equal(c.n_other_eos_ids, 2);
    assert_int_equal(c.other_eos_ids[0], 8);
    assert_int_equal(c.other_eos_ids[1], 9);
    char *json = hone_model_config_to_json(&c);
    assert_non_null(strstr(json, "\"eos_token_id\": ["));
    TEST_OK(hone_model_config_parse(&again, json, "written config.json"));
    free(json);
    assert_int_equal(again.eos_token_id, 1);
    assert_int_equal(again.n_other_eos_ids, 2);
    assert_int_equal(again.other_eos_ids[1], 9);
    snprintf(text, sizeof text, fmt, "5");
    TEST_OK(hone_model_config_parse(&c, text, "config.json"));
    assert_int_equal(c.eos_token_id, 5);
    assert_int_equal(c.n_other_eos_ids, 0);
    snprintf(text, sizeof text, fmt, "[1, 2, 3, 4, 5, 6, 7, 8, 9]");
    TEST_FAILS_WITH(hone_model_config_parse(&c, text, "config.json"), "lists 9 ids; hone keeps at most 8");
    snprintf(text, sizeof text, fmt, "[1, 100]");
    TEST_FAILS_WITH(hone_model_config_parse(&c, text, "config.json"), "eos_token_id 100 lies outside the vocabulary");
    snprintf(text, sizeof text, fmt, "[1, \"x\"]");
    TEST_FAILS_WITH(hone_model_config_parse(&c, text, "config.json"), "must be a token id or a list of them");
}

static void test_llama_family_fields(void **s) {
    (void)s;
    hone_model_config c;
    TEST_OK(hone_model_config_parse(&c,
                                    "{\"model_type\":\"llama\",\"vocab_size\":100,\"hidden_size\":64,"
                                    "\"num_attention_heads\":8,\"num_key_value_heads\":2,\"head_dim\":16,"
                                    "\"num_hidden_layers\":2,\"intermediate_size\":96,\"rms_norm_eps\":1e-5,"
                                    "\"rope_theta\":500000.0,\"attention_bias\":true,\"mlp_bias\":true,"
                                    "\"rope_scaling\":null,\"eos_token_id\":null}",
                                    "config.json"));
    assert_int_equal(c.arch, HONE_ARCH_LLAMA);
    assert_int_equal(c.head_dim, 16);
    assert_int_equal(c.num_kv_heads, 2);
    assert_true(c.qkv_bias && c.o_bias && c.mlp_bias);
    assert_false(c.tie_word_embeddings);
    assert_true(c.rope_theta == 500000.0f);
    assert_int_equal(c.eos_token_id, -1);
    TEST_OK(hone_model_config_parse(&c,
                                    "{\"model_type\":\"qwen2\",\"vocab_size\":10,\"hidden_size\":8,"
                                    "\"num_attention_heads\":2,\"num_key_value_heads\":1,\"num_hidden_layers\":1,"
                                    "\"intermediate_size\":16,\"use_sliding_window\":false,\"sliding_window\":4}",
                                    "config.json"));
    assert_true(c.qkv_bias && !c.o_bias);
    assert_int_equal(c.sliding_window, 0); /* not used unless use_sliding_window */
    TEST_OK(hone_model_config_parse(&c,
                                    "{\"model_type\":\"mistral\",\"vocab_size\":10,\"hidden_size\":8,"
                                    "\"num_attention_heads\":2,\"num_hidden_layers\":1,\"intermediate_size\":16,"
                                    "\"sliding_window\":4}",
                                    "config.json"));
    assert_int_equal(c.sliding_window, 4);
}

static void test_config_round_trip(void **s) {
    (void)s;
    const char *presets[] = {"gpt2-tiny", "llama-tiny", "qwen2-0.5b"};
    for (int i = 0; i < 3; i++) {
        hone_model_config a, b;
        TEST_OK(hone_model_config_preset(&a, presets[i]));
        char *json = hone_model_config_to_json(&a);
        TEST_OK(hone_model_config_parse(&b, json, presets[i]));
        free(json);
        assert_memory_equal(&a, &b, sizeof a);
    }
}

static void test_unsupported_is_an_error(void **s) {
    (void)s;
    hone_model_config c;
    TEST_FAILS_WITH(hone_model_config_parse(&c, "{\"model_type\":\"bert\"}", "x/config.json"),
                    "model_type \"bert\" is not supported yet");
    TEST_FAILS_WITH(hone_model_config_parse(&c,
                                            "{\"model_type\":\"llama\",\"vocab_size\":10,\"hidden_size\":8,"
                                            "\"num_attention_heads\":2,\"num_hidden_layers\":1,\"intermediate_size\":16,"
                                            "\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":8.0}}",
                                            "x/config.json"),
                    "rope_scaling type \"llama3\" is not supported yet");
    TEST_FAILS_WITH(hone_model_config_parse(&c,
                                            "{\"model_type\":\"llama\",\"vocab_size\":10,\"hidden_size\":8,"
                                            "\"num_attention_heads\":2,\"num_hidden_layers\":1,\"intermediate_size\":16,"
                                            "\"hidden_act\":\"gelu_10\"}",
                                            "x/config.json"),
                    "hidden_act \"gelu_10\" is not supported yet");
    TEST_FAILS_WITH(hone_model_config_parse(&c,
                                            "{\"model_type\":\"llama\",\"vocab_size\":10,\"hidden_size\":8,"
                                            "\"num_attention_heads\":3,\"num_key_value_heads\":2,\"num_hidden_layers\":1,"
                                            "\"intermediate_size\":16}",
                                            "x/config.json"),
                    "not a multiple of num_key_value_heads");
    TEST_FAILS_WITH(hone_model_config_parse(&c, "{\"model_type\":\"gpt2\",\"n_embd\":\"big\"}", "x/config.json"),
                    "\"n_embd\" must be an integer");
    TEST_FAILS_WITH(hone_model_config_parse(&c, "{\"model_type\": ", "x/config.json"), "x/config.json:1: invalid JSON");
    TEST_FAILS_WITH(hone_model_config_parse(&c, "{\"vocab_size\": 3}", "x/config.json"), "\"model_type\" is missing");
    TEST_FAILS_WITH(hone_model_config_preset(&c, "gpt5"), "unknown model preset 'gpt5'");
}

/* A sliding window shorter than the sequence would change the math: refused, not ignored. */
static void test_sliding_window_refused_when_it_matters(void **s) {
    (void)s;
    hone_model_config c;
    TEST_OK(hone_model_config_parse(&c,
                                    "{\"model_type\":\"mistral\",\"vocab_size\":10,\"hidden_size\":8,"
                                    "\"num_attention_heads\":2,\"num_hidden_layers\":1,\"intermediate_size\":16,"
                                    "\"sliding_window\":4}",
                                    "config.json"));
    hone_model *m;
    TEST_OK(hone_model_create(&m, &c, 1));
    TEST_OK(hone_model_prepare(m, 1, 4, 1));
    TEST_FAILS_WITH(hone_model_prepare(m, 1, 5, 1), "sliding window of 4");
    hone_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gpt2_fields),
        cmocka_unit_test(test_eos_token_id_list),
        cmocka_unit_test(test_llama_family_fields),
        cmocka_unit_test(test_config_round_trip),
        cmocka_unit_test(test_unsupported_is_an_error),
        cmocka_unit_test(test_sliding_window_refused_when_it_matters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
