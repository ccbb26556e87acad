/* hone expand — LLaMA Pro block expansion: `hone expand --model DIR --num-layers N --output-dir OUT`. */
#include <stdio.h>

#include "cli.h"

static const hone_key_spec keys[] = {
    {"model", HONE_KEY_STRING, NULL, "Hugging Face model folder to expand"},
    {"base_model", HONE_KEY_STRING, NULL, "same as --model"},
    {"num_layers", HONE_KEY_INT, NULL, "layer count of the result (original + inserted identity blocks)"},
    {"output_dir", HONE_KEY_STRING, NULL, "folder for the expanded model"},
    CLI_MERGE_OUTPUT_KEYS,
    {"json", HONE_KEY_BOOL, "false", "print one JSON object on stdout at the end"},
    CLI_THREADS_KEY,
};

int cmd_expand(int argc, char **argv) {
    hone_settings *s;
    int code;
    if (cli_parse(&s, "expand", "--model DIR --num-layers N --output-dir OUT", keys, sizeof keys / sizeof keys[0], argc,
                  argv, &code))
        return code;
    int rc = 1;
    hone_merge_options o;
    hone_merge_summary sum;
    const char *model_dir = cli_model_path(s, "expand");
    if (!model_dir || !cli_merge_options(s, &o, "expand")) goto done;
    if (hone_settings_require(s, "num_layers") != HONE_OK) {
        cli_fail("expand");
        goto done;
    }
    int64_t n = hone_settings_int(s, "num_layers");
    if (n < 1 || n > 100000) {
        fprintf(stderr, "hone expand: error: --num-layers must be a positive layer count, not %lld\n", (long long)n);
        goto done;
    }
    if (hone_expand(model_dir, (int)n, &o, &sum) != HONE_OK) {
        cli_fail("expand");
        goto done;
    }
    cli_merge_report(&sum, o.output_dir, hone_settings_bool(s, "json"));
    rc = 0;
done:
    hone_settings_free(s);
    return rc;
}
