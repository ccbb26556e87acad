#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
    tc->resume_from_checkpoint = hone_settings_str(s, "resume_from_checkpoint");
    const int64_t limit = hone_settings_int(s, "save_total_limit");
    if (limit < 0 || limit > 1000000) {
        fprintf(stderr, "hone %s: error: --save-total-limit must be 0 (keep all) or a count, not %lld\n", command,
                (long long)limit);
        return 0;
    }
    tc->save_total_limit = (int)limit;
    if (hone_sched_kind_parse(hone_settings_str(s, "lr_scheduler"), &tc->lr_scheduler) != HONE_OK ||
        hone_optimizer_kind_parse(hone_settings_str(s, "optimizer"), &tc->optim.kind) != HONE_OK) {
        cli_fail(command);
        return 0;
    }
    tc->config_json = hone_settings_to_json(s);
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

static hone_status dataset_options(const hone_settings *s, hone_dataset_options *o) {
    size_t n_opt;
    const hone_dataset_option_info *opts = hone_dataset_option_list(&n_opt);
    memset(o, 0, sizeof *o);
    for (size_t i = 0; i < n_opt; i++) {
        if (!hone_settings_is_set(s, opts[i].name)) continue;
        const char *value = opts[i].is_bool ? (hone_settings_bool(s, opts[i].name) ? "true" : "false")
                                            : hone_settings_str(s, opts[i].name);
        HONE_TRY(hone_dataset_option_set(o, opts[i].name, value));
    }
    return HONE_OK;
}

int cli_dataset_options(const hone_settings *s, hone_dataset_options *o, const char *command) {
    if (dataset_options(s, o) == HONE_OK) return 1;
    cli_fail(command);
    return 0;
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

/* h:mm:ss, or m:ss under an hour. */
static void format_duration(char *buf, size_t n, double seconds) {
    long long t = isfinite(seconds) && seconds > 0 ? (long long)(seconds + 0.5) : 0;
    if (t >= 3600) snprintf(buf, n, "%lld:%02lld:%02lld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(buf, n, "%lld:%02lld", t / 60, t % 60);
}

int cli_print_progress(const hone_step_info *s, void *user) {
    const hone_train_config *tc = user;
    static int tty = -1;
    if (tty < 0) tty = isatty(fileno(stderr));
    const int last = s->step == s->total_steps;
    char eta[32];
    format_duration(eta, sizeof eta, s->eta_seconds);
    if (tty) {
        enum { WIDTH = 24 };
        char bar[WIDTH + 1];
        const int filled = (int)((double)WIDTH * (double)s->step / (double)(s->total_steps > 0 ? s->total_steps : 1));
        for (int i = 0; i < WIDTH; i++) bar[i] = i < filled ? '#' : '.';
        bar[WIDTH] = 0;
        fprintf(stderr, "\r\033[K[%s] %lld/%lld  loss %.4f  lr %.3g  %.0f tok/s  ETA %s%s", bar, (long long)s->step,
                (long long)s->total_steps, s->loss, (double)s->learning_rate, s->tokens_per_second, eta,
                s->skipped ? "  (skipped)" : "");
        if (!isnan(s->eval_loss))
            fprintf(stderr, "\n  eval_loss %.4f at step %lld\n", s->eval_loss, (long long)s->step);
        else if (last) fputc('\n', stderr);
        fflush(stderr);
        return 0;
    }
    if (s->step == 1 || last || (tc->logging_steps > 0 && s->step % tc->logging_steps == 0))
        fprintf(stderr, "step %lld/%lld  loss %.4f  lr %.3g  grad_norm %.3f  %.0f tok/s  ETA %s%s\n",
                (long long)s->step, (long long)s->total_steps, s->loss, (double)s->learning_rate,
                (double)s->grad_norm, s->tokens_per_second, eta, s->skipped ? "  (skipped)" : "");
    if (!isnan(s->eval_loss)) fprintf(stderr, "step %lld/%lld  eval_loss %.4f\n", (long long)s->step,
                                      (long long)s->total_steps, s->eval_loss);
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
    char eval[48] = "";
    if (!isnan(sum->eval_loss)) snprintf(eval, sizeof eval, ", eval_loss %.4f", sum->eval_loss);
    fprintf(stderr,
            "done: %lld steps (%lld skipped) in %.1f s, loss %.4f -> %.4f%s, peak memory %.0f MiB; saved to %s "
            "(report.html)\n",
            (long long)sum->steps, (long long)sum->skipped_steps, sum->seconds, sum->first_loss, sum->last_loss, eval,
            sum->peak_memory_mb, output_dir);
}

/* The keys of a datasets-list item: these, then the dataset options. */
static const hone_key_spec mixture_item_fixed[] = {
    {"path", HONE_KEY_STRING, NULL, "dataset file"},
    {"type", HONE_KEY_STRING, NULL, "same as format (axolotl's name)"},
    {"weight", HONE_KEY_FLOAT, NULL, "sampling weight"},
    {"max_samples", HONE_KEY_INT, NULL, "at most this many examples (a seeded subset)"},
    {"fraction", HONE_KEY_FLOAT, NULL, "this fraction of the examples (a seeded subset)"},
    {"few_shot_rate", HONE_KEY_FLOAT, NULL, "overrides few_shot_rate for this dataset"},
    {"inversion_rate", HONE_KEY_FLOAT, NULL, "overrides inversion_rate for this dataset"},
};

/* Range checks of an item's numbers, with the place of the field: the library only knows the values. */
static hone_status item_number_error(const hone_settings *s, const hone_settings_record *r, const char *key,
                                     size_t index, const char *name, const char *want) {
    for (size_t i = 0; i < r->n_fields; i++)
        if (!strcmp(r->fields[i].name, name))
            return hone_errorf(HONE_ERR_INVALID, "%s:%d: %s item %zu: %s must be %s, got %s",
                               hone_settings_config_path(s), r->fields[i].line, key, index + 1, name, want,
                               r->fields[i].value);
    return HONE_ERR_INVALID;
}

static hone_status mixture_item(const hone_settings *s, const char *key, size_t index, const hone_key_spec *specs,
                                size_t n_specs, const hone_dataset_options *defaults, hone_mixture_source *src) {
    const hone_settings_record *items;
    hone_settings_records(s, key, &items);
    const hone_settings_record *r = &items[index];
    HONE_TRY(hone_settings_check_record(s, key, index, specs, n_specs));
    *src = (hone_mixture_source){.options = *defaults, .few_shot_rate = -1, .inversion_rate = -1};
    src->path = r->scalar ? r->scalar : hone_settings_record_str(r, "path");
    if (!src->path)
        return hone_errorf(HONE_ERR_INVALID, "%s:%d: %s item %zu has no 'path'", hone_settings_config_path(s), r->line,
                           key, index + 1);
    if (hone_settings_record_str(r, "type") && hone_settings_record_str(r, "format"))
        return hone_errorf(HONE_ERR_INVALID, "%s:%d: %s item %zu: give 'type' or 'format', not both",
                           hone_settings_config_path(s), r->line, key, index + 1);
    size_t n_opt;
    const hone_dataset_option_info *opts = hone_dataset_option_list(&n_opt);
    for (size_t i = 0; i <= n_opt; i++) {
        const char *name = i < n_opt ? opts[i].name : "type";
        const char *value = hone_settings_record_str(r, name);
        if (!value) continue;
        if (i < n_opt && opts[i].is_bool) value = hone_settings_record_bool(r, name, 0) ? "true" : "false";
        hone_status st = hone_dataset_option_set(&src->options, i < n_opt ? name : "format", value);
        if (st != HONE_OK)
            return hone_error_context(st, "%s:%d: %s item %zu", hone_settings_config_path(s), r->line, key,
                                      index + 1);
    }
    src->weight = hone_settings_record_float(r, "weight", 0);
    src->max_samples = hone_settings_record_int(r, "max_samples", 0);
    src->fraction = hone_settings_record_float(r, "fraction", 0);
    src->few_shot_rate = hone_settings_record_float(r, "few_shot_rate", -1);
    src->inversion_rate = hone_settings_record_float(r, "inversion_rate", -1);
    if (hone_settings_record_str(r, "weight") && !(src->weight > 0))
        return item_number_error(s, r, key, index, "weight", "> 0");
    if (hone_settings_record_str(r, "max_samples") && src->max_samples < 1)
        return item_number_error(s, r, key, index, "max_samples", ">= 1");
    if (hone_settings_record_str(r, "fraction") && !(src->fraction > 0 && src->fraction <= 1))
        return item_number_error(s, r, key, index, "fraction", "in (0, 1]");
    if (hone_settings_record_str(r, "few_shot_rate") && !(src->few_shot_rate >= 0 && src->few_shot_rate <= 1))
        return item_number_error(s, r, key, index, "few_shot_rate", "in [0, 1]");
    if (hone_settings_record_str(r, "inversion_rate") && !(src->inversion_rate >= 0 && src->inversion_rate <= 1))
        return item_number_error(s, r, key, index, "inversion_rate", "in [0, 1]");
    return HONE_OK;
}

hone_status cli_mixture_options(const hone_settings *s, const char *key, hone_mixture_options *o,
                                hone_mixture_source **sources) {
    *sources = NULL;
    hone_mixture_defaults(o);
    HONE_TRY(hone_settings_require(s, key));
    hone_dataset_options defaults;
    HONE_TRY(dataset_options(s, &defaults));
    const size_t n_fixed = sizeof mixture_item_fixed / sizeof mixture_item_fixed[0];
    size_t n_keys;
    hone_key_spec *item_keys = keys_with_dataset_options(mixture_item_fixed, n_fixed, &n_keys);
    const hone_settings_record *items;
    const size_t n = hone_settings_records(s, key, &items);
    hone_mixture_source *src = calloc(n ? n : 1, sizeof *src);
    hone_status st = item_keys && src ? HONE_OK : hone_errorf(HONE_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n && st == HONE_OK; i++) st = mixture_item(s, key, i, item_keys, n_keys, &defaults, &src[i]);
    free(item_keys);
    if (st != HONE_OK) {
        free(src);
        return st;
    }
    o->sources = *sources = src;
    o->n_sources = n;
    o->seed = (uint64_t)hone_settings_int(s, "seed");
    o->size = hone_settings_int(s, "mixture_size");
    o->with_replacement = hone_settings_bool(s, "mixture_with_replacement");
    HONE_TRY(hone_dedup_mode_parse(hone_settings_str(s, "dedup"), &o->dedup));
    o->minhash.threshold = hone_settings_float(s, "dedup_threshold");
    o->minhash.ngram = (int)hone_settings_int(s, "minhash_ngram");
    o->minhash.chars = hone_settings_bool(s, "minhash_chars");
    o->minhash.permutations = (int)hone_settings_int(s, "minhash_permutations");
    o->minhash.bands = (int)hone_settings_int(s, "minhash_bands");
    o->inversion_rate = hone_settings_float(s, "inversion_rate");
    o->few_shot_rate = hone_settings_float(s, "few_shot_rate");
    o->few_shot_max_exemplars = (int)hone_settings_int(s, "few_shot_max_exemplars");
    o->few_shot_max_chars = hone_settings_int(s, "few_shot_max_chars");
    return HONE_OK;
}

void cli_print_mixture(const hone_mixture *m) {
    for (size_t d = 0; d < m->n_sources; d++) {
        const hone_mixture_report *r = &m->reports[d];
        fprintf(stderr, "%s: %zu examples (format %s: %zu rows, %zu dropped; %zu exact + %zu near duplicates removed; "
                        "%zu after caps",
                r->path, r->selected, hone_dataset_format_name(r->stats.format), r->stats.rows, r->stats.dropped,
                r->exact_duplicates, r->near_duplicates, r->capped);
        if (m->weighted) fprintf(stderr, "; weight %g, share %.1f%%", r->weight, 100 * r->share);
        if (r->few_shot || r->inverted)
            fprintf(stderr, "; %zu few-shot with %zu exemplars, %zu inverted", r->few_shot, r->exemplars, r->inverted);
        fprintf(stderr, ")\n");
    }
}
