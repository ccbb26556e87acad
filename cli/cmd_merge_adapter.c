/* hone merge-adapter — folds a LoRA adapter into its base model: `hone merge-adapter --model BASE --adapter DIR
 * --output-dir OUT` writes a full model that computes what BASE + adapter computed. Also home of cli_load_adapter,
 * the --adapter option of eval and generate. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

int cli_load_adapter(hone_model *m, const hone_settings *s, const char *command, hone_adapter **out) {
    *out = NULL;
    if (!hone_settings_is_set(s, "adapter")) return 1;
    const char *dir = hone_settings_str(s, "adapter");
    if (hone_adapter_load(out, m, dir) != HONE_OK || hone_model_attach(m, *out) != HONE_OK) {
        cli_fail(command);
        hone_adapter_free(*out);
        *out = NULL;
        return 0;
    }
    return 1;
}

static const hone_key_spec keys[] = {
    {"model", HONE_KEY_STRING, NULL, "Hugging Face model folder the adapter was trained on"},
    {"base_model", HONE_KEY_STRING, NULL, "same as --model"},
    {"adapter", HONE_KEY_STRING, NULL, "PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors)"},
    {"output_dir", HONE_KEY_STRING, NULL, "folder for the merged model (config.json, model.safetensors, tokenizer)"},
    {"json", HONE_KEY_BOOL, "false", "print one JSON object on stdout at the end"},
    CLI_THREADS_KEY,
};

int cmd_merge_adapter(int argc, char **argv) {
    hone_settings *s;
    int code;
    if (cli_parse(&s, "merge-adapter", "--model BASE --adapter DIR --output-dir OUT", keys,
                  sizeof keys / sizeof keys[0], argc, argv, &code))
        return code;
    int rc = 1;
    hone_model *m = NULL;
    hone_adapter *a = NULL;
    const char *model_dir = cli_model_path(s, "merge-adapter");
    if (!model_dir || !cli_threads(s, "merge-adapter")) goto done;
    if (hone_settings_require(s, "adapter") != HONE_OK || hone_settings_require(s, "output_dir") != HONE_OK) {
        cli_fail("merge-adapter");
        goto done;
    }
    const char *out_dir = hone_settings_str(s, "output_dir");
    if (hone_model_load(&m, model_dir) != HONE_OK) {
        cli_fail("merge-adapter");
        goto done;
    }
    if (!cli_load_adapter(m, s, "merge-adapter", &a)) goto done;
    /* merged weights must not be computed with the adapter on top: detach before saving */
    if (hone_adapter_merge(m, a) != HONE_OK || hone_model_attach(m, NULL) != HONE_OK ||
        hone_model_save(m, out_dir) != HONE_OK) {
        cli_fail("merge-adapter");
        goto done;
    }
    if (hone_settings_bool(s, "json")) {
        json_t *o = json_pack("{s:s, s:s}", "output_dir", out_dir, "target_modules",
                              hone_adapter_config(a)->target_modules);
        char *line = o ? json_dumps(o, 0) : NULL;
        if (line) printf("%s\n", line);
        free(line);
        json_decref(o);
    } else
        fprintf(stderr, "merged %s (LoRA on %s) into %s; wrote %s\n", hone_settings_str(s, "adapter"),
                hone_adapter_config(a)->target_modules, model_dir, out_dir);
    rc = 0;
done:
    hone_model_free(m);
    hone_adapter_free(a);
    hone_settings_free(s);
    return rc;
}
