/* hone sft — supervised fine-tuning: datasets rendered with the chat template (assistant-only loss by default),
 * packed into rows, trained with the common training loop — all weights, or a PEFT adapter (LoRA, prompt tuning,
 * prefix tuning) on the frozen model. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const hone_key_spec fixed[] = {
    {"model", HONE_KEY_STRING, NULL, "Hugging Face model folder to start from"},
    {"base_model", HONE_KEY_STRING, NULL, "same as --model (axolotl's name)"},
    {"datasets", HONE_KEY_RECORDS, NULL,
     "dataset files, comma-separated (any format of hone data convert); in the file a list of paths or mappings "
     "{path, type, weight, max_samples, fraction, ...}"},
    {"tokenizer", HONE_KEY_STRING, NULL, "tokenizer.json or its folder (default: the model folder's)"},
    {"output_dir", HONE_KEY_STRING, NULL, "where metrics.jsonl, checkpoints and the final model go"},
    {"adapter", HONE_KEY_STRING, NULL, "lora | prompt | prefix: train a PEFT adapter (default: all weights)"},
    {"lora_model_dir", HONE_KEY_STRING, NULL, "continue training this PEFT adapter folder (LoRA, prompt or prefix)"},
    {"lora_r", HONE_KEY_INT, "8", "LoRA rank"},
    {"lora_alpha", HONE_KEY_FLOAT, "8", "LoRA scale numerator: scale = lora_alpha / lora_r"},
    {"lora_dropout", HONE_KEY_FLOAT, "0", "dropout on the LoRA path's input while training, in [0, 1)"},
    {"lora_target_modules", HONE_KEY_LIST, NULL,
     "module names (q_proj, v_proj, c_attn, ...) or all-linear (default: PEFT's for the model type)"},
    {"lora_modules_to_save", HONE_KEY_LIST, NULL,
     "modules trained in full next to LoRA (PEFT's modules_to_save): embed_tokens (GPT-2: wte), lm_head"},
    {"use_rslora", HONE_KEY_BOOL, "false", "rank-stabilised LoRA: scale = lora_alpha / sqrt(lora_r)"},
    {"num_virtual_tokens", HONE_KEY_INT, "20", "prompt / prefix tuning: virtual tokens"},
    {"prompt_tuning_init", HONE_KEY_STRING, "RANDOM", "prompt tuning: RANDOM | TEXT | SAMPLE_VOCAB"},
    {"prompt_tuning_init_text", HONE_KEY_STRING, NULL, "prompt tuning: the text of prompt_tuning_init TEXT"},
    {"prefix_projection", HONE_KEY_BOOL, "false", "prefix tuning: train through PEFT's reparameterisation MLP"},
    {"encoder_hidden_size", HONE_KEY_INT, "0", "prefix tuning: the MLP's hidden width (0 = the key/value width)"},
    {"base_dtype", HONE_KEY_STRING, "auto",
     "with an adapter, the frozen base's matrices: auto (read in place from the memory-mapped checkpoint in its own "
     "dtype) | bf16 (in place when the files are bf16, else rounded to a bf16 copy) | fp32 (an fp32 copy)"},
    {"chat_template", HONE_KEY_STRING, NULL,
     "built-in template name or a Jinja file (default: the model's own, else alpaca)"},
    {"train_on_inputs", HONE_KEY_BOOL, "false", "train on every token, prompts included"},
    {"train_on_eos", HONE_KEY_STRING, "turn", "end-of-turn tokens trained: turn | last | all | none"},
    {"roles_to_train", HONE_KEY_STRING, "assistant", "comma-separated roles whose messages are trained"},
    {"sample_packing", HONE_KEY_BOOL, "true", "pack several samples per row (false: one per right-padded row)"},
    {"truncation", HONE_KEY_STRING, "drop", "samples longer than sequence_len: drop | truncate"},
    {"group_by_length", HONE_KEY_BOOL, "false",
     "batch rows of similar length together (transformers' LengthGroupedSampler; for sample_packing false)"},
    {"val_set_size", HONE_KEY_FLOAT, "0",
     "examples held out for evaluation: a fraction in (0, 1) or a count >= 1, chosen by the seed (0 = none)"},
    {"test_datasets", HONE_KEY_RECORDS, NULL,
     "evaluation dataset files, rendered like datasets (instead of val_set_size)"},
    {"eval_steps", HONE_KEY_INT, "0", "evaluate every N steps (0 = only at the end, when there is an eval set)"},
    CLI_TRAIN_KEYS,
    CLI_THREADS_KEY,
    CLI_MIXTURE_KEYS,
};

/* The mixture of the `key` list (datasets or test_datasets; weights, caps, dedup, shaping: hone/mixture.h), one line
 * per dataset, rendered into one set. */
static hone_status render_datasets(const hone_settings *s, const char *key, const hone_render_options *ro,
                                   hone_rendered_set *set) {
    hone_mixture_options mo;
    hone_mixture_source *sources;
    hone_mixture m;
    hone_status st = cli_mixture_options(s, key, &mo, &sources);
    if (strcmp(key, "datasets")) mo.size = 0; /* mixture_size sizes the training mixture only */
    if (st == HONE_OK && (st = hone_mixture_build(&m, &mo)) == HONE_OK) {
        cli_print_mixture(&m);
        st = hone_mixture_render(&m, ro, set);
        hone_mixture_free(&m);
    }
    free(sources);
    return st;
}

/* The adapter the settings ask for, attached to m: lora_model_dir loaded, or a new one of kind `adapter`; NULL
 * for full fine-tuning. */
static hone_status make_adapter(const hone_settings *s, hone_model *m, const hone_tokenizer *tok,
                                hone_adapter **out) {
    *out = NULL;
    hone_peft_kind kind = 0;
    if (hone_settings_is_set(s, "adapter")) HONE_TRY(hone_peft_kind_parse(hone_settings_str(s, "adapter"), &kind));
    if (hone_settings_is_set(s, "lora_model_dir")) {
        HONE_TRY(hone_adapter_load(out, m, hone_settings_str(s, "lora_model_dir")));
        if (kind && hone_adapter_config(*out)->kind != kind) {
            hone_adapter_free(*out);
            *out = NULL;
            return hone_errorf(HONE_ERR_INVALID, "lora_model_dir %s holds another kind of adapter than adapter: %s",
                               hone_settings_str(s, "lora_model_dir"), hone_settings_str(s, "adapter"));
        }
    } else if (kind) {
        hone_peft_config pc;
        hone_peft_config_defaults(&pc, kind);
        pc.r = (int)hone_settings_int(s, "lora_r");
        pc.alpha = (float)hone_settings_float(s, "lora_alpha");
        pc.dropout = (float)hone_settings_float(s, "lora_dropout");
        pc.use_rslora = hone_settings_bool(s, "use_rslora");
        pc.num_virtual_tokens = (int)hone_settings_int(s, "num_virtual_tokens");
        pc.prefix_projection = hone_settings_bool(s, "prefix_projection");
        pc.encoder_hidden_size = (int)hone_settings_int(s, "encoder_hidden_size");
        pc.target_modules = hone_settings_str(s, "lora_target_modules"); /* a list's items joined with ',' */
        pc.modules_to_save = hone_settings_str(s, "lora_modules_to_save");
        int32_t *init_ids = NULL;
        hone_status st = hone_prompt_init_parse(hone_settings_str(s, "prompt_tuning_init"), &pc.init);
        if (st == HONE_OK && pc.init == HONE_PROMPT_INIT_TEXT) {
            pc.init_text = hone_settings_str(s, "prompt_tuning_init_text");
            size_t n = 0;
            st = pc.init_text ? hone_tokenizer_encode(tok, pc.init_text, strlen(pc.init_text), 0, &init_ids, &n)
                              : hone_errorf(HONE_ERR_INVALID, "prompt_tuning_init TEXT needs prompt_tuning_init_text");
            pc.init_ids = init_ids;
            pc.n_init_ids = (int)n;
        }
        if (st == HONE_OK) st = hone_adapter_create(out, m, &pc, (uint64_t)hone_settings_int(s, "seed"));
        free(init_ids);
        HONE_TRY(st);
    }
    if (*out && hone_model_attach(m, *out) != HONE_OK) {
        hone_adapter_free(*out);
        *out = NULL;
        return HONE_ERR_INVALID;
    }
    return HONE_OK;
}

/* The model: for adapter training its base is frozen and base_dtype says how its matrices are kept (decided at load,
 * so that no fp32 copy of a mapped or bf16 base ever exists); full fine-tuning loads fp32 master weights. */
static hone_status load_model(const hone_settings *s, const char *dir, hone_model **m) {
    const char *name = hone_settings_str(s, "base_dtype");
    hone_base_mode mode;
    HONE_TRY(hone_base_mode_parse(name, &mode));
    if (!hone_settings_is_set(s, "adapter") && !hone_settings_is_set(s, "lora_model_dir")) {
        if (mode == HONE_BASE_BF16)
            return hone_errorf(HONE_ERR_INVALID, "base_dtype bf16 needs an adapter (lora, prompt or prefix): only a "
                               "frozen base can be kept in bf16; full fine-tuning keeps fp32 master weights, since "
                               "bf16 cannot hold small updates");
        return hone_model_load(m, dir);
    }
    HONE_TRY(hone_model_load_frozen(m, dir, mode));
    if (mode != HONE_BASE_FP32)
        fprintf(stderr, "the frozen base's matrices are %s (%s; base_dtype: %s)\n",
                hone_model_base_mapped(*m) ? "read in place from the memory-mapped checkpoint" : "kept in a bf16 copy",
                hone_dtype_name(hone_model_base_dtype(*m)), name);
    return HONE_OK;
}

/* The eval set: test_datasets rendered like the datasets, or val_set_size examples split off the training set. */
static hone_status render_eval_set(const hone_settings *s, const hone_render_options *ro, uint64_t seed,
                                   hone_rendered_set *train, hone_rendered_set *eval) {
    const double size = hone_settings_float(s, "val_set_size");
    if (hone_settings_is_set(s, "test_datasets")) {
        if (size != 0) return hone_errorf(HONE_ERR_INVALID, "give val_set_size or test_datasets, not both");
        return render_datasets(s, "test_datasets", ro, eval);
    }
    return size != 0 ? hone_rendered_split(train, size, seed, eval) : HONE_OK;
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
    hone_adapter *adapter = NULL;
    hone_rendered_set set = {0};
    hone_packed rows = {0}, eval_rows = {0};
    hone_rendered_set eval_set = {0};
    hone_train_config tc = {0};
    hone_dataset_options dopt;
    hone_render_options ro = {.eos_id = -1};
    hone_pack_options po = {0};
    const char *model_dir = cli_model_path(s, "sft");
    if (!model_dir || !cli_train_config(s, &tc, "sft") || !cli_dataset_options(s, &dopt, "sft") ||
        !cli_threads(s, "sft"))
        goto done;
    if (hone_settings_require(s, "datasets") != HONE_OK || hone_settings_require(s, "output_dir") != HONE_OK ||
        hone_train_eos_parse(hone_settings_str(s, "train_on_eos"), &ro.train_on_eos) != HONE_OK ||
        hone_truncation_parse(hone_settings_str(s, "truncation"), &po.truncation) != HONE_OK ||
        load_model(s, model_dir, &m) != HONE_OK ||
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
    if (hone_chat_template_pick(&tmpl, hone_settings_str(s, "chat_template"), model_dir) != HONE_OK ||
        make_adapter(s, m, tok, &adapter) != HONE_OK) {
        cli_fail("sft");
        goto done;
    }
    if (adapter)
        fprintf(stderr, "training a %s adapter (%zu parameters); the model's %zu weights are frozen\n",
                hone_settings_str(s, "adapter") ? hone_settings_str(s, "adapter") : "loaded",
                hone_adapter_num_params(adapter), hone_model_num_params(m));
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
    po.virtual_tokens = hone_model_virtual_tokens(m); /* prompt tuning: room for the virtual tokens */
    if (render_datasets(s, "datasets", &ro, &set) != HONE_OK) {
        cli_fail("sft");
        goto done;
    }
    fprintf(stderr,
            "%zu examples (%zu rows read, %zu dropped by the dataset checks), %zu tokens, %zu trained "
            "(template %s)\n",
            set.n, set.stats.rows, set.stats.dropped, set.tokens, set.trained_tokens, hone_chat_template_name(tmpl));
    cli_render_warnings(set.flagged, set.n, tok);
    if (render_eval_set(s, &ro, tc.seed, &set, &eval_set) != HONE_OK ||
        hone_pack(set.seqs, set.n, &po, &rows) != HONE_OK ||
        (eval_set.n && hone_pack(eval_set.seqs, eval_set.n, &po, &eval_rows) != HONE_OK)) {
        cli_fail("sft");
        goto done;
    }
    if (eval_set.n) {
        fprintf(stderr, "eval set: %zu examples (%zu left for training), %zu tokens (%zu trained) in %zu rows\n",
                eval_set.n, set.n, eval_set.tokens, eval_set.trained_tokens, eval_rows.n_rows);
        tc.eval_rows = &eval_rows;
    }
    tc.eval_steps = hone_settings_int(s, "eval_steps");
    tc.group_by_length = hone_settings_bool(s, "group_by_length");
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
    free((char *)tc.config_json);
    hone_packed_free(&eval_rows);
    hone_rendered_set_free(&eval_set);
    hone_packed_free(&rows);
    hone_rendered_set_free(&set);
    hone_chat_template_free(tmpl);
    hone_tokenizer_free(tok);
    hone_model_free(m);
    hone_adapter_free(adapter);
    hone_settings_free(s);
    free(keys);
    return rc;
}
