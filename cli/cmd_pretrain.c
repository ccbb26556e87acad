/* hone pretrain — continued pre-training on a token file. */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

static const hone_key_spec keys[] = {
    {"model", HONE_KEY_STRING, NULL, "Hugging Face model folder to start from"},
    {"base_model", HONE_KEY_STRING, NULL, "same as --model (axolotl's name)"},
    {"data", HONE_KEY_STRING, NULL, "llm.c shard (.bin), text (.txt), or JSONL rows with \"input_ids\" or \"text\""},
    {"tokenizer", HONE_KEY_STRING, NULL, "tokenizer.json (or its folder) for text data (default: the model folder's)"},
    {"output_dir", HONE_KEY_STRING, NULL, "where metrics.jsonl, checkpoints and the final model go"},
    CLI_TRAIN_KEYS,
    CLI_TOKEN_CACHE_KEY,
    CLI_THREADS_KEY,
};

int cmd_pretrain(int argc, char **argv) {
    hone_settings *s;
    int code;
    if (cli_parse(&s, "pretrain", "--model DIR --data FILE --output-dir OUT [options]", keys,
                  sizeof keys / sizeof keys[0], argc, argv, &code))
        return code;
    int rc = 1;
    hone_model *m = NULL;
    hone_token_stream data = {0};
    hone_train_config tc = {0};
    const char *model_dir = cli_model_path(s, "pretrain");
    if (!model_dir || !cli_train_config(s, &tc, "pretrain")) goto done;
    if (hone_settings_require(s, "data") != HONE_OK || hone_settings_require(s, "output_dir") != HONE_OK) {
        cli_fail("pretrain");
        goto done;
    }
    if (!cli_threads(s, "pretrain")) goto done;
    tc.output_dir = hone_settings_str(s, "output_dir");
    if (hone_model_load(&m, model_dir) != HONE_OK ||
        hone_tokens_load_for_model(&data, hone_settings_str(s, "data"), m, hone_settings_str(s, "tokenizer"),
                                   cli_token_cache_dir(s), NULL) !=
            HONE_OK) {
        cli_fail("pretrain");
        goto done;
    }
    fprintf(stderr, "model %s: %s, %zu parameters; data: %zu tokens in %zu documents\n", model_dir,
            hone_model_get_config(m)->model_type, hone_model_num_params(m), data.n_tokens, data.n_documents);
    hone_train_summary sum;
    if (hone_pretrain(m, &data, &tc, cli_print_progress, &tc, &sum) != HONE_OK) {
        cli_fail("pretrain");
        goto done;
    }
    cli_print_train_summary(&sum, tc.output_dir);
    rc = 0;
done:
    free((char *)tc.config_json);
    hone_tokens_free(&data);
    hone_model_free(m);
    hone_settings_free(s);
    return rc;
}
