/* hone generate — sample tokens after a prompt. */
#include <errno.h>
#include <stdio.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const hone_key_spec keys[] = {
    {"model", HONE_KEY_STRING, NULL, "Hugging Face model folder"},
    {"base_model", HONE_KEY_STRING, NULL, "same as --model"},
    CLI_ADAPTER_KEY,
    {"prompt", HONE_KEY_STRING, NULL, "prompt text, tokenized with the model's tokenizer.json; prints text"},
    {"tokenizer", HONE_KEY_STRING, NULL, "tokenizer.json (or its folder) for --prompt (default: the model folder's)"},
    {"prompt_ids", HONE_KEY_LIST, NULL, "prompt as token ids, e.g. 1,2,3"},
    {"max_new_tokens", HONE_KEY_INT, "64", "tokens to generate at most"},
    {"temperature", HONE_KEY_FLOAT, "0", "sampling temperature (0 = greedy)"},
    {"top_k", HONE_KEY_INT, "0", "keep the k most likely tokens (0 = off)"},
    {"top_p", HONE_KEY_FLOAT, "1.0", "nucleus sampling mass (1 = off)"},
    {"seed", HONE_KEY_INT, "42", "sampling seed"},
    {"stop_at_eos", HONE_KEY_BOOL, "true",
     "stop after the model's end-of-sequence token (any id of config.json's eos_token_id list)"},
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

/* Prints generated text as it comes (each piece whole UTF-8 characters). */
typedef struct {
    hone_decode_stream *decoder;
    int print, failed;
} text_stream;

static int print_piece(int32_t id, void *user) {
    text_stream *t = user;
    char *piece = NULL;
    size_t len = 0;
    if (hone_decode_stream_push(t->decoder, id, &piece, &len) != HONE_OK) {
        t->failed = 1;
        return 1;
    }
    if (t->print && len) {
        fwrite(piece, 1, len, stdout);
        fflush(stdout);
    }
    free(piece);
    return 0;
}

int cmd_generate(int argc, char **argv) {
    hone_settings *s;
    int code;
    if (cli_parse(&s, "generate",
                  "--model DIR [--adapter DIR] (--prompt TEXT | --prompt-ids 1,2,3) [--max-new-tokens N] "
                  "[--temperature X] [--json]",
                  keys, sizeof keys / sizeof keys[0], argc, argv, &code))
        return code;
    int rc = 1, n_prompt = 0, n_out = 0;
    int32_t *prompt = NULL, *out = NULL;
    hone_tokenizer *tok = NULL;
    text_stream stream = {0};
    hone_model *m = NULL;
    hone_adapter *adapter = NULL;
    const char *model_dir = cli_model_path(s, "generate");
    if (!model_dir) goto done;
    const int text_mode = hone_settings_is_set(s, "prompt");
    if (text_mode == hone_settings_is_set(s, "prompt_ids")) {
        fprintf(stderr, "hone generate: error: give exactly one of --prompt TEXT and --prompt-ids 1,2,3\n");
        goto done;
    }
    if (!text_mode && !parse_ids(s, &prompt, &n_prompt)) goto done;
    if (!cli_threads(s, "generate")) goto done;
    hone_sampling samp = {.max_new_tokens = (int)hone_settings_int(s, "max_new_tokens"),
                          .temperature = (float)hone_settings_float(s, "temperature"),
                          .top_k = (int)hone_settings_int(s, "top_k"),
                          .top_p = (float)hone_settings_float(s, "top_p"),
                          .seed = (uint64_t)hone_settings_int(s, "seed"),
                          .stop_at_eos = hone_settings_bool(s, "stop_at_eos")};
    out = malloc(sizeof(int32_t) * (samp.max_new_tokens > 0 ? samp.max_new_tokens : 1));
    /* under an adapter the base is frozen: its matrices are read in place from the mapped checkpoint */
    if ((hone_settings_is_set(s, "adapter") ? hone_model_load_frozen(&m, model_dir, HONE_BASE_AUTO)
                                            : hone_model_load(&m, model_dir)) != HONE_OK) {
        cli_fail("generate");
        goto done;
    }
    if (!cli_load_adapter(m, s, "generate", &adapter)) goto done;
    const int json = hone_settings_bool(s, "json");
    if (text_mode) {
        const char *text = hone_settings_str(s, "prompt");
        size_t n = 0;
        if (hone_model_tokenizer(&tok, m, hone_settings_str(s, "tokenizer")) != HONE_OK ||
            (tok && hone_tokenizer_encode(tok, text, strlen(text), 1, &prompt, &n) != HONE_OK) ||
            (tok && hone_decode_stream_new(&stream.decoder, tok) != HONE_OK)) {
            cli_fail("generate");
            goto done;
        }
        if (!tok) {
            fprintf(stderr,
                    "hone generate: error: %s has no tokenizer.json; give --tokenizer, or the prompt as "
                    "--prompt-ids\n",
                    model_dir);
            goto done;
        }
        n_prompt = (int)n;
        stream.print = !json;
    }
    /* a prompt-tuning adapter replaces the first tokens by its virtual tokens: give it placeholders to replace */
    const int n_virtual = hone_model_virtual_tokens(m);
    if (n_virtual > 0) {
        int32_t *with = malloc(sizeof(int32_t) * (size_t)(n_virtual + n_prompt));
        if (!with) {
            fprintf(stderr, "hone generate: error: out of memory\n");
            goto done;
        }
        for (int i = 0; i < n_virtual; i++) with[i] = 0;
        memcpy(with + n_virtual, prompt, sizeof(int32_t) * (size_t)n_prompt);
        free(prompt);
        prompt = with;
        n_prompt += n_virtual;
    }
    if (hone_generate(m, prompt, n_prompt, &samp, out, &n_out, text_mode ? print_piece : NULL, &stream) != HONE_OK ||
        stream.failed) {
        cli_fail("generate");
        goto done;
    }
    if (text_mode) {
        char *rest = NULL, *all = NULL;
        size_t rest_len = 0, all_len = 0;
        if (hone_decode_stream_flush(stream.decoder, &rest, &rest_len) != HONE_OK ||
            hone_tokenizer_decode(tok, out, (size_t)n_out, 0, &all, &all_len) != HONE_OK) {
            free(rest);
            cli_fail("generate");
            goto done;
        }
        if (json) {
            json_t *o = json_object();
            json_t *ids = json_array();
            for (int i = 0; i < n_out; i++) json_array_append_new(ids, json_integer(out[i]));
            json_object_set_new(o, "ids", ids);
            json_object_set_new(o, "text", json_stringn(all, all_len));
            char *line = json_dumps(o, 0);
            printf("%s\n", line);
            free(line);
            json_decref(o);
        } else {
            fwrite(rest, 1, rest_len, stdout);
            printf("\n");
        }
        free(rest);
        free(all);
    } else {
        printf(json ? "{\"ids\": [" : "");
        for (int i = 0; i < n_out; i++) printf("%s%d", i ? (json ? ", " : " ") : "", out[i]);
        printf(json ? "]}\n" : "\n");
    }
    rc = 0;
done:
    free(prompt);
    free(out);
    hone_decode_stream_free(stream.decoder);
    hone_tokenizer_free(tok);
    hone_model_free(m);
    hone_adapter_free(adapter);
    hone_settings_free(s);
    return rc;
}
