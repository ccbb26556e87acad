/* hone generate — sample tokens after a prompt. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

static const hone_key_spec keys[] = {
    {"model", HONE_KEY_STRING, NULL, "Hugging Face model folder"},
    {"base_model", HONE_KEY_STRING, NULL, "same as --model"},
    {"prompt", HONE_KEY_STRING, NULL, "prompt text (needs the model's tokenizer: not supported yet)"},
    {"prompt_ids", HONE_KEY_LIST, NULL, "prompt as token ids, e.g. 1,2,3"},
    {"max_new_tokens", HONE_KEY_INT, "64", "tokens to generate at most"},
    {"temperature", HONE_KEY_FLOAT, "0", "sampling temperature (0 = greedy)"},
    {"top_k", HONE_KEY_INT, "0", "keep the k most likely tokens (0 = off)"},
    {"top_p", HONE_KEY_FLOAT, "1.0", "nucleus sampling mass (1 = off)"},
    {"seed", HONE_KEY_INT, "42", "sampling seed"},
    {"stop_at_eos", HONE_KEY_BOOL, "true", "stop after the model's end-of-sequence token"},
    {"json", HONE_KEY_BOOL, "false", "print {\"ids\": [...]} on stdout"},
    CLI_THREADS_KEY,
};

static int parse_ids(const hone_settings *s, int32_t **out, int *n) {
    const char *const *items;
    size_t count = hone_settings_list(s, "prompt_ids", &items);
    *out = malloc(sizeof(int32_t) * (count ? count : 1));
    for (size_t i = 0; i < count; i++) {
        char *end;
        errno = 0;
        long v = strtol(items[i], &end, 10);
        if (*end || errno || v < 0 || v > INT32_MAX) {
            fprintf(stderr, "hone generate: error: --prompt-ids item %zu ('%s') is not a token id\n", i + 1, items[i]);
            return 0;
        }
        (*out)[i] = (int32_t)v;
    }
    *n = (int)count;
    return 1;
}

int cmd_generate(int argc, char **argv) {
    hone_settings *s;
    int code;
    if (cli_parse(&s, "generate", "--model DIR --prompt-ids 1,2,3 [--max-new-tokens N] [--temperature X] [--json]",
                  keys, sizeof keys / sizeof keys[0], argc, argv, &code))
        return code;
    int rc = 1, n_prompt = 0, n_out = 0;
    int32_t *prompt = NULL, *out = NULL;
    hone_model *m = NULL;
    const char *model_dir = cli_model_path(s, "generate");
    if (!model_dir) goto done;
    if (hone_settings_is_set(s, "prompt")) {
        fprintf(stderr, "hone generate: error: --prompt TEXT needs tokenizer support, which is not supported yet; "
                        "give the prompt as --prompt-ids\n");
        goto done;
    }
    if (!hone_settings_is_set(s, "prompt_ids")) {
        fprintf(stderr, "hone generate: error: missing required option --prompt-ids\n");
        goto done;
    }
    if (!parse_ids(s, &prompt, &n_prompt)) goto done;
    if (!cli_threads(s, "generate")) goto done;
    hone_sampling samp = {.max_new_tokens = (int)hone_settings_int(s, "max_new_tokens"),
                          .temperature = (float)hone_settings_float(s, "temperature"),
                          .top_k = (int)hone_settings_int(s, "top_k"),
                          .top_p = (float)hone_settings_float(s, "top_p"),
                          .seed = (uint64_t)hone_settings_int(s, "seed"),
                          .stop_at_eos = hone_settings_bool(s, "stop_at_eos")};
    out = malloc(sizeof(int32_t) * (samp.max_new_tokens > 0 ? samp.max_new_tokens : 1));
    if (hone_model_load(&m, model_dir) != HONE_OK ||
        hone_generate(m, prompt, n_prompt, &samp, out, &n_out, NULL, NULL) != HONE_OK) {
        cli_fail("generate");
        goto done;
    }
    int json = hone_settings_bool(s, "json");
    printf(json ? "{\"ids\": [" : "");
    for (int i = 0; i < n_out; i++) printf(json ? "%s%d" : "%s%d", i ? (json ? ", " : " ") : "", out[i]);
    printf(json ? "]}\n" : "\n");
    rc = 0;
done:
    free(prompt);
    free(out);
    hone_model_free(m);
    hone_settings_free(s);
    return rc;
}
