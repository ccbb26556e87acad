/* hone select — instruction-data selection with the student model's own scores (IFD and reverse IFD). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const hone_key_spec fixed[] = {
    {"model", HONE_KEY_STRING, NULL, "Hugging Face model folder that scores the data (the student)"},
    {"base_model", HONE_KEY_STRING, NULL, "same as --model"},
    {"data", HONE_KEY_STRING, NULL, "dataset file (alpaca, sharegpt, messages, dolly, ...: see hone data convert)"},
    {"tokenizer", HONE_KEY_STRING, NULL, "tokenizer.json or its folder (default: the model folder's)"},
    {"output", HONE_KEY_STRING, NULL, "JSONL with every example and its scores (resumed when it exists)"},
    {"method", HONE_KEY_STRING, "ifd", "scoring method: ifd"},
    {"reverse", HONE_KEY_BOOL, "false", "also score reverse IFD (rifd)"},
    {"score_only", HONE_KEY_BOOL, "false", "write the scores of every example (selection: not supported yet)"},
    {"prompt_template", HONE_KEY_STRING, "alpaca", "how instructions become prompts: alpaca | vicuna | plain | chat"},
    {"chat_template", HONE_KEY_STRING, NULL,
     "with --prompt-template chat: built-in template name or Jinja file (default: the model's own)"},
    {"sequence_len", HONE_KEY_INT, "1024", "longest scored sequence (answer tokens beyond it are not scored)"},
    {"micro_batch_size", HONE_KEY_INT, "4", "rows of sequence_len tokens per forward pass"},
    {"json", HONE_KEY_BOOL, "false", "print the summary as one JSON object on stdout"},
    CLI_THREADS_KEY,
};

static int show_progress(const hone_score_file_summary *s, void *user) {
    (void)user;
    fprintf(stderr, "scored %zu examples (%.0f tokens/s)\n", s->resumed + s->scored,
            s->seconds > 0 ? (double)s->tokens / s->seconds : 0.0);
    return 0;
}

/* The direct pass's start token: the tokenizer's BOS, else the model's, else EOS. */
static int32_t start_token(const hone_tokenizer *tok, const hone_model *m) {
    const hone_special_tokens *sp = hone_tokenizer_special(tok);
    const hone_model_config *c = hone_model_get_config(m);
    if (sp->bos_id >= 0) return sp->bos_id;
    if (c->bos_token_id >= 0) return c->bos_token_id;
    return sp->eos_id >= 0 ? sp->eos_id : c->eos_token_id;
}

int cmd_select(int argc, char **argv) {
    hone_settings *s;
    int rc;
    hone_key_spec *keys = cli_parse_with_dataset_options(
        &s, "select", "--model DIR --data FILE --method ifd [--reverse] --score-only --output OUT.jsonl", fixed,
        sizeof fixed / sizeof fixed[0], argc, argv, &rc);
    if (!keys) return rc;
    rc = 1;
    hone_model *m = NULL;
    hone_tokenizer *tok = NULL;
    hone_chat_template *tmpl = NULL;
    hone_dataset_options dopt;
    hone_score_file_options o = {0};
    const char *model_dir = cli_model_path(s, "select");
    if (!model_dir || !cli_dataset_options(s, &dopt, "select") || !cli_threads(s, "select")) goto done;
    if (strcmp(hone_settings_str(s, "method"), "ifd")) {
        fprintf(stderr, "hone select: error: --method '%s' is not known (expected ifd)\n",
                hone_settings_str(s, "method"));
        goto done;
    }
    if (!hone_settings_bool(s, "score_only")) {
        fprintf(stderr, "hone select: error: selecting examples is not supported yet; give --score-only to write "
                        "the scores of every example\n");
        goto done;
    }
    if (hone_settings_require(s, "data") != HONE_OK || hone_settings_require(s, "output") != HONE_OK ||
        hone_prompt_style_parse(hone_settings_str(s, "prompt_template"), &o.ifd.style) != HONE_OK ||
        hone_model_load(&m, model_dir) != HONE_OK ||
        hone_model_tokenizer(&tok, m, hone_settings_str(s, "tokenizer")) != HONE_OK) {
        cli_fail("select");
        goto done;
    }
    if (!tok) {
        fprintf(stderr, "hone select: error: %s has no tokenizer; give --tokenizer\n", model_dir);
        goto done;
    }
    if (o.ifd.style == HONE_PROMPT_CHAT &&
        hone_chat_template_pick(&tmpl, hone_settings_str(s, "chat_template"), model_dir) != HONE_OK) {
        cli_fail("select");
        goto done;
    }
    o.data_path = hone_settings_str(s, "data");
    o.dataset = &dopt;
    o.ifd.tokenizer = tok;
    o.ifd.chat_template = tmpl;
    o.reverse = hone_settings_bool(s, "reverse");
    o.sequence_len = (int)hone_settings_int(s, "sequence_len");
    o.micro_batch_size = (int)hone_settings_int(s, "micro_batch_size");
    o.output_path = hone_settings_str(s, "output");
    o.start_id = start_token(tok, m);
    if (o.start_id < 0) {
        fprintf(stderr, "hone select: error: the model has neither a BOS nor an EOS token to start the direct pass\n");
        goto done;
    }
    hone_score_file_summary sum;
    if (hone_score_file(m, &o, show_progress, NULL, &sum) != HONE_OK) {
        cli_fail("select");
        goto done;
    }
    if (hone_settings_bool(s, "json"))
        printf("{\"rows\": %zu, \"dropped\": %zu, \"examples\": %zu, \"resumed\": %zu, \"scored\": %zu, "
               "\"not_scored\": %zu, \"tokens\": %zu, "
               "\"seconds\": %.3f}\n",
               sum.dataset.rows, sum.dataset.dropped, sum.examples, sum.resumed, sum.scored, sum.not_scored, sum.tokens,
               sum.seconds);
    else
        fprintf(stderr,
                "%s: %zu examples (%zu rows read, %zu dropped by the dataset checks; %zu already scored, %zu scored "
                "now, %zu without scores) in %.1f s\n",
                o.output_path, sum.examples, sum.dataset.rows, sum.dataset.dropped, sum.resumed, sum.scored,
                sum.not_scored, sum.seconds);
    rc = 0;
done:
    hone_chat_template_free(tmpl);
    hone_tokenizer_free(tok);
    hone_model_free(m);
    hone_settings_free(s);
    free(keys);
    return rc;
}
