/* hone sft — supervised fine-tuning of all weights: datasets rendered with the chat template (assistant-only loss
 * by default), packed into rows, trained with the common training loop. Adapters (LoRA, prompt, prefix tuning)
 * are not supported yet. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const hone_key_spec fixed[] = {
    {"model", HONE_KEY_STRING, NULL, "Hugging Face model folder to start from"},
    {"base_model", HONE_KEY_STRING, NULL, "same as --model (axolotl's name)"},
    {"datasets", HONE_KEY_STRING, NULL, "dataset files, comma-separated (any format of hone data convert)"},
    {"tokenizer", HONE_KEY_STRING, NULL, "tokenizer.json or its folder (default: the model folder's)"},
    {"output_dir", HONE_KEY_STRING, NULL, "where metrics.jsonl, checkpoints and the final model go"},
    {"adapter", HONE_KEY_STRING, NULL, "lora | prompt | prefix (not supported yet: full fine-tuning only)"},
    {"chat_template", HONE_KEY_STRING, NULL,
     "built-in template name or a Jinja file (default: the model's own, else alpaca)"},
    {"train_on_inputs", HONE_KEY_BOOL, "false", "train on every token, prompts included"},
    {"train_on_eos", HONE_KEY_STRING, "turn", "end-of-turn tokens trained: turn | last | all | none"},
    {"roles_to_train", HONE_KEY_STRING, "assistant", "comma-separated roles whose messages are trained"},
    {"sample_packing", HONE_KEY_BOOL, "true", "pack several samples per row (false: one per right-padded row)"},
    {"truncation", HONE_KEY_STRING, "drop", "samples longer than sequence_len: drop | truncate"},
    CLI_TRAIN_KEYS,
    CLI_THREADS_KEY,
};

/* Renders every dataset of the comma-separated list into one set. */
static hone_status render_datasets(const char *list, const hone_dataset_options *dopt, const hone_render_options *ro,
                                   hone_rendered_set *set) {
    char *paths = strdup(list);
    if (!paths) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    hone_status st = HONE_OK;
    for (char *save = NULL, *p = strtok_r(paths, ",", &save); p && st == HONE_OK; p = strtok_r(NULL, ",", &save)) {
        const size_t before = set->n;
        st = hone_render_file(p, dopt, ro, set);
        if (st == HONE_OK) fprintf(stderr, "%s: %zu examples\n", p, set->n - before);
    }
    free(paths);
    return st;
}

int cmd_sft(int argc, char **argv) {
    hone_settings *s;
    int rc;
    hone_key_spec *keys =
        cli_parse_with_dataset_options(&s, "sft", "--model DIR --datasets FILE[,FILE...] --output-dir OUT [options]",
                                       fixed, sizeof fixed / sizeof fixed[0], argc, argv, &rc);
    if (!keys) return rc;
    rc = 1;
    hone_model *m = NULL;
    hone_tokenizer *tok = NULL;
    hone_chat_template *tmpl = NULL;
    hone_rendered_set set = {0};
    hone_packed rows = {0};
    hone_train_config tc;
    hone_dataset_options dopt;
    hone_render_options ro = {.eos_id = -1};
    hone_pack_options po = {0};
    const char *model_dir = cli_model_path(s, "sft");
    if (!model_dir || !cli_train_config(s, &tc, "sft") || !cli_dataset_options(s, &dopt, "sft") ||
        !cli_threads(s, "sft"))
        goto done;
    if (hone_settings_is_set(s, "adapter")) {
        fprintf(stderr,
                "hone sft: error: adapter '%s' is not supported yet: hone sft trains all weights for now "
                "(leave out --adapter)\n",
                hone_settings_str(s, "adapter"));
        goto done;
    }
    if (hone_settings_require(s, "datasets") != HONE_OK || hone_settings_require(s, "output_dir") != HONE_OK ||
        hone_train_eos_parse(hone_settings_str(s, "train_on_eos"), &ro.train_on_eos) != HONE_OK ||
        hone_truncation_parse(hone_settings_str(s, "truncation"), &po.truncation) != HONE_OK ||
        hone_model_load(&m, model_dir) != HONE_OK ||
        hone_model_tokenizer(&tok, m, hone_settings_str(s, "tokenizer")) != HONE_OK) {
        cli_fail("sft");
        goto done;
    }
    if (!tok) {
        fprintf(stderr,
                "hone sft: error: %s has no tokenizer (tokenizer.json or vocab.json + merges.txt); give "
                "--tokenizer\n",
                model_dir);
        goto done;
    }
    if (hone_chat_template_pick(&tmpl, hone_settings_str(s, "chat_template"), model_dir) != HONE_OK) {
        cli_fail("sft");
        goto done;
    }
    tc.output_dir = hone_settings_str(s, "output_dir");
    const hone_special_tokens *sp = hone_tokenizer_special(tok);
    ro.tokenizer = tok;
    ro.chat_template = tmpl;
    ro.train_on_inputs = hone_settings_bool(s, "train_on_inputs");
    ro.roles_to_train = hone_settings_str(s, "roles_to_train");
    ro.eos_id = sp->eos_id;
    po.sequence_len = tc.sequence_len;
    po.sample_packing = hone_settings_bool(s, "sample_packing");
    po.pad_id = sp->pad_id >= 0 ? sp->pad_id : sp->eos_id >= 0 ? sp->eos_id : 0;
    if (render_datasets(hone_settings_str(s, "datasets"), &dopt, &ro, &set) != HONE_OK ||
        hone_pack(set.seqs, set.n, &po, &rows) != HONE_OK) {
        cli_fail("sft");
        goto done;
    }
    fprintf(stderr,
            "%zu examples (%zu rows read, %zu dropped by the dataset checks), %zu tokens, %zu trained "
            "(template %s)\n",
            set.n, set.stats.rows, set.stats.dropped, set.tokens, set.trained_tokens, hone_chat_template_name(tmpl));
    cli_render_warnings(set.flagged, set.n, tok);
    fprintf(stderr,
            "%zu rows of %d tokens (%s): %zu samples, %zu longer than sequence_len %s, %zu without a "
            "trained token skipped\n",
            rows.n_rows, rows.row_len, po.sample_packing ? "packed" : "one sample each", rows.n_samples,
            po.truncation == HONE_TRUNCATE_DROP ? rows.n_dropped : rows.n_truncated,
            po.truncation == HONE_TRUNCATE_DROP ? "dropped" : "truncated", rows.n_empty);
    hone_train_summary sum;
    if (hone_train_rows(m, &rows, &tc, cli_print_progress, &tc, &sum) != HONE_OK) {
        cli_fail("sft");
        goto done;
    }
    cli_print_train_summary(&sum, tc.output_dir);
    rc = 0;
done:
    hone_packed_free(&rows);
    hone_rendered_set_free(&set);
    hone_chat_template_free(tmpl);
    hone_tokenizer_free(tok);
    hone_model_free(m);
    hone_settings_free(s);
    free(keys);
    return rc;
}
