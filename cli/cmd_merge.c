/* hone merge — runs a mergekit YAML config: `hone merge CONFIG.yaml --output-dir OUT`. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static const hone_key_spec keys[] = {
    {"output_dir", HONE_KEY_STRING, NULL, "folder for the merged model (config.json, safetensors, tokenizer)"},
    CLI_MERGE_OUTPUT_KEYS,
    {"seed", HONE_KEY_INT, "42", "seed of the DARE / DELLA random masks"},
    {"json", HONE_KEY_BOOL, "false", "print one JSON object on stdout at the end"},
    CLI_THREADS_KEY,
};

/* One line per tensor; on a terminal the line is rewritten in place. */
static void print_progress(const hone_merge_progress *p, void *user) {
    (void)user;
    double mb = (double)p->bytes_done / 1e6, rate = p->seconds > 0 ? mb / p->seconds : 0;
    int tty = isatty(fileno(stderr));
    fprintf(stderr, "%s[%zu/%zu] %5.1f%%  %.1f/%.1f MB  %.0f MB/s  %s%s", tty ? "\r\033[K" : "", p->index + 1, p->count,
            p->bytes_total ? 100.0 * (double)p->bytes_done / (double)p->bytes_total : 100.0, mb,
            (double)p->bytes_total / 1e6, rate, p->name, tty && p->index + 1 < p->count ? "" : "\n");
}

int cli_merge_options(const hone_settings *s, hone_merge_options *o, const char *command) {
    hone_merge_options_defaults(o);
    o->output_dir = hone_settings_str(s, "output_dir");
    o->progress = print_progress;
    hone_dtype dtype;
    if (hone_settings_require(s, "output_dir") != HONE_OK ||
        hone_merge_parse_size(hone_settings_str(s, "max_shard_size"), &o->max_shard_size) != HONE_OK ||
        (hone_settings_is_set(s, "out_dtype") &&
         hone_merge_parse_dtype(hone_settings_str(s, "out_dtype"), &dtype) != HONE_OK)) {
        cli_fail(command);
        return 0;
    }
    if (hone_settings_is_set(s, "out_dtype")) o->out_dtype = (int)dtype;
    return cli_threads(s, command);
}

void cli_merge_report(const hone_merge_summary *sum, const char *output_dir, int json) {
    if (json)
        printf("{\"tensors\": %zu, \"shards\": %zu, \"bytes\": %llu, \"layers\": %d, \"seconds\": %.3f, "
               "\"mb_per_second\": %.1f}\n",
               sum->n_tensors, sum->n_shards, (unsigned long long)sum->bytes_written, sum->num_layers, sum->seconds,
               sum->seconds > 0 ? (double)sum->bytes_written / 1e6 / sum->seconds : 0.0);
    else
        fprintf(stderr, "wrote %zu tensors (%.1f MB, %d layers) in %zu shard%s to %s in %.2f s\n", sum->n_tensors,
                (double)sum->bytes_written / 1e6, sum->num_layers, sum->n_shards, sum->n_shards == 1 ? "" : "s",
                output_dir, sum->seconds);
}

int cmd_merge(int argc, char **argv) {
    const char *usage = "CONFIG.yaml --output-dir OUT [--threads N] [--max-shard-size 5GB] [--out-dtype bf16]\n"
                        "(CONFIG.yaml: a mergekit config; --config FILE: a YAML file of the options below)";
    /* the mergekit config is the one positional argument; the rest are hone's flags */
    const char *config_path = argc > 0 && argv[0][0] != '-' ? argv[0] : NULL;
    hone_settings *s;
    int code;
    if (cli_parse(&s, "merge", usage, keys, sizeof keys / sizeof keys[0], argc - (config_path != NULL),
                  argv + (config_path != NULL), &code))
        return code;
    int rc = 1;
    hone_merge_config *c = NULL;
    hone_merge_options o;
    hone_merge_summary sum;
    if (!config_path) {
        fprintf(stderr, "hone merge: error: missing the mergekit config: hone merge %s\n", usage);
        rc = 2;
        goto done;
    }
    if (!cli_merge_options(s, &o, "merge")) goto done;
    o.seed = (uint64_t)hone_settings_int(s, "seed");
    if (hone_merge_config_load(&c, config_path) != HONE_OK || hone_merge_run(c, &o, &sum) != HONE_OK) {
        cli_fail("merge");
        goto done;
    }
    cli_merge_report(&sum, o.output_dir, hone_settings_bool(s, "json"));
    rc = 0;
done:
    hone_merge_config_free(c);
    hone_settings_free(s);
    return rc;
}
