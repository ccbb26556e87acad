/* hone tokenize — JSONL {"text"} lines to {"ids"} lines with a Hugging Face tokenizer, or back with --decode. */
#include <stdio.h>

#include "cli.h"

static const hone_key_spec keys[] = {
    {"tokenizer", HONE_KEY_STRING, NULL, "tokenizer.json, or a model folder holding one"},
    {"input", HONE_KEY_STRING, NULL, "JSONL file: {\"text\": ...} lines (or {\"ids\": [...]} with --decode)"},
    {"output", HONE_KEY_STRING, NULL, "JSONL file to write, one line per input line, in the same order"},
    {"add_special_tokens", HONE_KEY_BOOL, "true", "add BOS/EOS as the tokenizer's post-processor does"},
    {"decode", HONE_KEY_BOOL, "false", "turn ids back into text"},
    CLI_THREADS_KEY,
};

int cmd_tokenize(int argc, char **argv) {
    hone_settings *s;
    int code;
    if (cli_parse(&s, "tokenize", "--tokenizer DIR|FILE --input IN.jsonl --output OUT.jsonl [--decode]", keys,
                  sizeof keys / sizeof keys[0], argc, argv, &code))
        return code;
    int rc = 1;
    hone_tokenizer *tok = NULL;
    if (hone_settings_require(s, "tokenizer") != HONE_OK || hone_settings_require(s, "input") != HONE_OK ||
        hone_settings_require(s, "output") != HONE_OK) {
        cli_fail("tokenize");
        goto done;
    }
    if (!cli_threads(s, "tokenize")) goto done;
    size_t lines;
    double t0 = hone_now_seconds();
    if (hone_tokenizer_load(&tok, hone_settings_str(s, "tokenizer")) != HONE_OK ||
        hone_tokenize_jsonl(tok, hone_settings_str(s, "input"), hone_settings_str(s, "output"),
                            hone_settings_bool(s, "add_special_tokens"), hone_settings_bool(s, "decode"),
                            &lines) != HONE_OK) {
        cli_fail("tokenize");
        goto done;
    }
    fprintf(stderr, "%s %zu lines into %s in %.2f s\n", hone_settings_bool(s, "decode") ? "decoded" : "tokenized",
            lines, hone_settings_str(s, "output"), hone_now_seconds() - t0);
    rc = 0;
done:
    hone_tokenizer_free(tok);
    hone_settings_free(s);
    return rc;
}
