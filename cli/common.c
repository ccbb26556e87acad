#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cli_parse(hone_settings **s, const char *command, const char *usage, const hone_key_spec *specs, size_t n, int argc,
              char **argv, int *exit_code) {
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: hone %s %s\n\noptions (flags, or keys of the --config YAML file):\n", command, usage);
            hone_settings_print_help(specs, n, stdout);
            *exit_code = 0;
            return 1;
        }
    if (hone_settings_parse(s, specs, n, argc, argv) != HONE_OK) {
        fprintf(stderr, "hone %s: error: %s\n(see hone %s --help)\n", command, hone_error(), command);
        *exit_code = 2;
        return 1;
    }
    return 0;
}

int cli_fail(const char *command) {
    fprintf(stderr, "hone %s: error: %s\n", command, hone_error());
    return 1;
}

int cli_threads(const hone_settings *s, const char *command) {
    int64_t n = hone_settings_int(s, "threads");
    if (n < 0 || n > 4096) {
        fprintf(stderr, "hone %s: error: --threads must be 0 (all cores) or a positive count, not %lld\n", command,
                (long long)n);
        return 0;
    }
    hone_threads_set((int)n);
    return 1;
}

const char *cli_model_path(const hone_settings *s, const char *command) {
    int a = hone_settings_is_set(s, "model"), b = hone_settings_is_set(s, "base_model");
    if (a && b) {
        fprintf(stderr, "hone %s: error: give --model or --base-model, not both\n", command);
        return NULL;
    }
    if (!a && !b) {
        fprintf(stderr, "hone %s: error: missing required option --model (a Hugging Face model folder)\n", command);
        return NULL;
    }
    return hone_settings_str(s, a ? "model" : "base_model");
}

int cli_train_config(const hone_settings *s, hone_train_config *tc, const char *command) {
    hone_train_config_defaults(tc);
    tc->sequence_len = (int)hone_settings_int(s, "sequence_len");
    tc->micro_batch_size = (int)hone_settings_int(s, "micro_batch_size");
    tc->gradient_accumulation_steps = (int)hone_settings_int(s, "gradient_accumulation_steps");
    tc->num_epochs = (int)hone_settings_int(s, "num_epochs");
    tc->max_steps = hone_settings_int(s, "max_steps");
    tc->learning_rate = (float)hone_settings_float(s, "learning_rate");
    tc->warmup_steps = hone_settings_int(s, "warmup_steps");
    tc->warmup_ratio = (float)hone_settings_float(s, "warmup_ratio");
    tc->optim.weight_decay = (float)hone_settings_float(s, "weight_decay");
    tc->optim.beta1 = (float)hone_settings_float(s, "adam_beta1");
    tc->optim.beta2 = (float)hone_settings_float(s, "adam_beta2");
    tc->optim.eps = (float)hone_settings_float(s, "adam_epsilon");
    tc->optim.momentum = (float)hone_settings_float(s, "momentum");
    tc->max_grad_norm = (float)hone_settings_float(s, "max_grad_norm");
    tc->seed = (uint64_t)hone_settings_int(s, "seed");
    tc->shuffle = hone_settings_bool(s, "shuffle");
    tc->save_steps = hone_settings_int(s, "save_steps");
    tc->logging_steps = hone_settings_int(s, "logging_steps");
    if (hone_sched_kind_parse(hone_settings_str(s, "lr_scheduler"), &tc->lr_scheduler) != HONE_OK ||
        hone_optimizer_kind_parse(hone_settings_str(s, "optimizer"), &tc->optim.kind) != HONE_OK) {
        cli_fail(command);
        return 0;
    }
    return 1;
}

const char *cli_token_cache_dir(const hone_settings *s) {
    const char *dir = hone_settings_str(s, "dataset_prepared_path");
    if (!dir) return hone_token_cache_default_dir();
    return strcmp(dir, "none") ? dir : NULL;
}

static hone_key_spec *keys_with_dataset_options(const hone_key_spec *fixed, size_t n_fixed, size_t *n) {
    size_t n_opt;
    const hone_dataset_option_info *opts = hone_dataset_option_list(&n_opt);
    hone_key_spec *keys = calloc(n_fixed + n_opt, sizeof *keys);
    if (!keys) return NULL;
    memcpy(keys, fixed, n_fixed * sizeof *keys);
    for (size_t i = 0; i < n_opt; i++)
        keys[n_fixed + i] = (hone_key_spec){opts[i].name, opts[i].is_bool ? HONE_KEY_BOOL : HONE_KEY_STRING,
                                            opts[i].is_bool ? "false" : NULL, opts[i].help};
    *n = n_fixed + n_opt;
    return keys;
}

int cli_dataset_options(const hone_settings *s, hone_dataset_options *o, const char *command) {
    size_t n_opt;
    const hone_dataset_option_info *opts = hone_dataset_option_list(&n_opt);
    memset(o, 0, sizeof *o);
    for (size_t i = 0; i < n_opt; i++) {
        if (!hone_settings_is_set(s, opts[i].name)) continue;
        const char *value = opts[i].is_bool ? (hone_settings_bool(s, opts[i].name) ? "true" : "false")
                                            : hone_settings_str(s, opts[i].name);
        if (hone_dataset_option_set(o, opts[i].name, value) != HONE_OK) {
            cli_fail(command);
            return 0;
        }
    }
    return 1;
}

void cli_render_warnings(const size_t flagged[3], size_t examples, const hone_tokenizer *tok) {
    static const char *const what[3] = {
        "have a trained assistant turn that no special token ends: the model will not learn to stop",
        "train on text that differs from the generation prompt (add_generation_prompt): inference will see "
        "another format",
        "have a token across the boundary of a trained part (counted as trained)",
    };
    for (int k = 0; k < 3; k++) /* a straddling token is BPE at work, not a fault: a note, not a warning */
        if (flagged[k])
            fprintf(stderr, "%s: %zu of %zu examples %s\n", k == 2 ? "note" : "warning", flagged[k], examples, what[k]);
    const hone_special_tokens *sp = hone_tokenizer_special(tok);
    if (sp->pad_id >= 0 && sp->pad_id == sp->eos_id)
        fprintf(stderr, "note: the pad token is the eos token; hone masks padding by position, never by id, so the "
                        "real end-of-sequence tokens stay trained\n");
}

int cli_print_progress(const hone_step_info *s, void *user) {
    const hone_train_config *tc = user;
    if (s->step == 1 || s->step == s->total_steps || (tc->logging_steps > 0 && s->step % tc->logging_steps == 0))
        fprintf(stderr, "step %lld/%lld  loss %.4f  lr %.3g  grad_norm %.3f  %.0f tok/s%s\n", (long long)s->step,
                (long long)s->total_steps, s->loss, (double)s->learning_rate, (double)s->grad_norm,
                s->tokens_per_second, s->skipped ? "  (skipped)" : "");
    return 0;
}

hone_key_spec *cli_parse_with_dataset_options(hone_settings **s, const char *command, const char *usage,
                                              const hone_key_spec *fixed, size_t n_fixed, int argc, char **argv,
                                              int *exit_code) {
    size_t n_keys;
    hone_key_spec *keys = keys_with_dataset_options(fixed, n_fixed, &n_keys);
    if (!keys) {
        fprintf(stderr, "hone %s: error: out of memory\n", command);
        *exit_code = 1;
        return NULL;
    }
    if (cli_parse(s, command, usage, keys, n_keys, argc, argv, exit_code)) {
        free(keys);
        return NULL;
    }
    return keys;
}

void cli_print_train_summary(const hone_train_summary *sum, const char *output_dir) {
    fprintf(stderr, "done: %lld steps (%lld skipped) in %.1f s, loss %.4f -> %.4f; model saved to %s\n",
            (long long)sum->steps, (long long)sum->skipped_steps, sum->seconds, sum->first_loss, sum->last_loss,
            output_dir);
}
