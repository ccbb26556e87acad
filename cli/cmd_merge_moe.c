/* hone merge-moe — runs a mergekit-moe config: `hone merge-moe CONFIG.yaml --output-dir OUT` writes a Mixtral
 * checkpoint (mergekit-moe CONFIG.yaml OUT). */
#include <stdio.h>

#include "cli.h"

static const hone_key_spec keys[] = {
    {"output_dir", HONE_KEY_STRING, NULL, "folder for the Mixtral model (config.json, safetensors, tokenizer)"},
    CLI_MERGE_OUTPUT_KEYS,
    {"seed", HONE_KEY_INT, "42", "seed of the router weights for gate_mode random / uniform_random and of noise_scale"},
    {"json", HONE_KEY_BOOL, "false", "print one JSON object on stdout at the end"},
    CLI_THREADS_KEY,
};

int cmd_merge_moe(int argc, char **argv) {
    const char *usage = "CONFIG.yaml --output-dir OUT [--threads N] [--max-shard-size 5GB] [--out-dtype bf16]\n"
                        "(CONFIG.yaml: a mergekit-moe config; --config FILE: a YAML file of the options below)";
    /* the mergekit-moe config is the one positional argument; the rest are hone's flags */
    const char *config_path = argc > 0 && argv[0][0] != '-' ? argv[0] : NULL;
    hone_settings *s;
    int code;
    if (cli_parse(&s, "merge-moe", usage, keys, sizeof keys / sizeof keys[0], argc - (config_path != NULL),
                  argv + (config_path != NULL), &code))
        return code;
    int rc = 1;
    hone_moe_config *c = NULL;
    hone_merge_options o;
    hone_merge_summary sum;
    if (!config_path) {
        fprintf(stderr, "hone merge-moe: error: missing the mergekit-moe config: hone merge-moe %s\n", usage);
        rc = 2;
        goto done;
    }
    if (!cli_merge_options(s, &o, "merge-moe")) goto done;
    o.seed = (uint64_t)hone_settings_int(s, "seed");
    if (hone_moe_config_load(&c, config_path) != HONE_OK || hone_moe_run(c, &o, &sum) != HONE_OK) {
        cli_fail("merge-moe");
        goto done;
    }
    cli_merge_report(&sum, o.output_dir, hone_settings_bool(s, "json"));
    rc = 0;
done:
    hone_moe_config_free(c);
    hone_settings_free(s);
    return rc;
}
