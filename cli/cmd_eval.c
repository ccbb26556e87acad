/* hone eval — mean next-token loss and perplexity on a token file. */
#include <stdio.h>

#include "cli.h"

static const hone_key_spec keys[] = {
    {"model", HONE_KEY_STRING, NULL, "Hugging Face model folder"},
    {"base_model", HONE_KEY_STRING, NULL, "same as --model"},
    CLI_ADAPTER_KEY,
    {"data", HONE_KEY_STRING, NULL, "llm.c shard (.bin), text (.txt), or JSONL rows with \"input_ids\" or \"text\""},
    {"tokenizer", HONE_KEY_STRING, NULL, "tokenizer.json (or its folder) for text data (default: the model folder's)"},
    {"sequence_len", HONE_KEY_INT, "512", "tokens per block (the last partial block counts when >= 2 tokens)"},
    {"micro_batch_size", HONE_KEY_INT, "1", "blocks per forward pass"},
    {"json", HONE_KEY_BOOL, "false", "print one JSON object on stdout"},
    CLI_TOKEN_CACHE_KEY,
    CLI_THREADS_KEY,
};

int cmd_eval(int argc, char **argv) {
    hone_settings *s;
    int code;
    if (cli_parse(&s, "eval", "--model DIR [--adapter DIR] --data FILE --sequence-len T [--json]", keys,
                  sizeof keys / sizeof keys[0], argc, argv, &code))
        return code;
    int rc = 1;
    hone_model *m = NULL;
    hone_adapter *adapter = NULL;
    hone_token_stream data = {0};
    const char *model_dir = cli_model_path(s, "eval");
    if (!model_dir) goto done;
    if (hone_settings_require(s, "data") != HONE_OK) {
        cli_fail("eval");
        goto done;
    }
    if (!cli_threads(s, "eval")) goto done;
    hone_eval_result r;
    if (hone_model_load(&m, model_dir) != HONE_OK) {
        cli_fail("eval");
        goto done;
    }
    if (!cli_load_adapter(m, s, "eval", &adapter)) goto done;
    if (hone_tokens_load_for_model(&data, hone_settings_str(s, "data"), m, hone_settings_str(s, "tokenizer"),
                                   cli_token_cache_dir(s), NULL) != HONE_OK ||
        hone_eval_tokens(m, &data, (int)hone_settings_int(s, "sequence_len"),
                         (int)hone_settings_int(s, "micro_batch_size"), &r) != HONE_OK) {
        cli_fail("eval");
        goto done;
    }
    if (hone_settings_bool(s, "json"))
        printf("{\"loss\": %.9g, \"perplexity\": %.9g, \"tokens\": %lld, \"blocks\": %lld}\n", r.loss, r.perplexity,
               (long long)r.tokens, (long long)r.blocks);
    else
        printf("loss %.6f  perplexity %.4f  (%lld predicted tokens in %lld blocks)\n", r.loss, r.perplexity,
               (long long)r.tokens, (long long)r.blocks);
    rc = 0;
done:
    hone_tokens_free(&data);
    hone_model_free(m);
    hone_adapter_free(adapter);
    hone_settings_free(s);
    return rc;
}
