/* hone data — dataset tools. `hone data convert` reads any supported dataset (hone/dataset.h) and writes its
 * examples as canonical JSONL, with the counts of rows read, examples written and rows dropped by reason. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void data_usage(FILE *out) {
    fprintf(out, "usage: hone data SUBCOMMAND [--key value ...]\n\nsub-commands:\n"
                 "  convert    any supported dataset to canonical JSONL (hone data convert --help)\n");
}

/* The stderr summary: counts, then the drops by reason with the first line of each. */
static void print_summary(const hone_dataset_stats *st, const char *in, const char *out, double seconds) {
    fprintf(stderr, "read %zu rows of %s (format %s, %s): %zu examples written to %s in %.2f s\n", st->rows, in,
            hone_dataset_format_name(st->format), hone_example_kind_name(st->kind), st->examples, out, seconds);
    fprintf(stderr, "dropped %zu", st->dropped);
    const char *sep = ":";
    for (int r = 0; r < HONE_DROP_COUNT; r++)
        if (st->dropped_by[r]) {
            fprintf(stderr, "%s %s %zu (first at %s:%zu)", sep, hone_drop_reason_name((hone_drop_reason)r),
                    st->dropped_by[r], in, st->first_dropped_line[r]);
            sep = ",";
        }
    fprintf(stderr, "\n");
}

static int data_convert(int argc, char **argv) {
    static const hone_key_spec fixed[] = {
        {"data", HONE_KEY_STRING, NULL, "dataset: a JSON array, JSONL or one JSON object, optionally gzipped"},
        {"output", HONE_KEY_STRING, NULL, "canonical JSONL file to write (atomically)"},
        {"json", HONE_KEY_BOOL, "false", "print the counts as one JSON object on stdout"},
    };
    const size_t n_fixed = sizeof fixed / sizeof fixed[0];
    size_t n_opt;
    const hone_dataset_option_info *opts = hone_dataset_option_list(&n_opt);
    hone_key_spec *keys = calloc(n_fixed + n_opt, sizeof *keys);
    if (!keys) {
        fprintf(stderr, "hone data convert: error: out of memory\n");
        return 1;
    }
    memcpy(keys, fixed, sizeof fixed);
    for (size_t i = 0; i < n_opt; i++)
        keys[n_fixed + i] = (hone_key_spec){opts[i].name, opts[i].is_bool ? HONE_KEY_BOOL : HONE_KEY_STRING,
                                            opts[i].is_bool ? "false" : NULL, opts[i].help};
    hone_settings *s;
    int rc;
    if (cli_parse(&s, "data convert", "--data FILE --output OUT.jsonl [--format F] [--strict] [--field-* NAME ...]",
                  keys, n_fixed + n_opt, argc, argv, &rc)) {
        free(keys);
        return rc;
    }
    rc = 1;
    hone_dataset_options o = {0};
    if (hone_settings_require(s, "data") != HONE_OK || hone_settings_require(s, "output") != HONE_OK) {
        cli_fail("data convert");
        goto done;
    }
    for (size_t i = 0; i < n_opt; i++) {
        if (!hone_settings_is_set(s, opts[i].name)) continue;
        if (opts[i].is_bool)
            o.strict = hone_settings_bool(s, opts[i].name);
        else if (hone_dataset_option_set(&o, opts[i].name, hone_settings_str(s, opts[i].name)) != HONE_OK) {
            cli_fail("data convert");
            goto done;
        }
    }
    const char *in = hone_settings_str(s, "data"), *out = hone_settings_str(s, "output");
    hone_dataset_stats stats;
    const double t0 = hone_now_seconds();
    if (hone_dataset_convert(in, out, &o, &stats) != HONE_OK) {
        cli_fail("data convert");
        goto done;
    }
    print_summary(&stats, in, out, hone_now_seconds() - t0);
    if (hone_settings_bool(s, "json")) {
        char *json = hone_dataset_stats_to_json(&stats);
        if (!json) {
            fprintf(stderr, "hone data convert: error: out of memory\n");
            goto done;
        }
        printf("%s\n", json);
        free(json);
    }
    rc = 0;
done:
    hone_settings_free(s);
    free(keys);
    return rc;
}

int cmd_data(int argc, char **argv) {
    if (argc < 1 || argv[0][0] == '-') {
        const int help = argc >= 1 && (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h"));
        data_usage(help ? stdout : stderr);
        return help ? 0 : 2;
    }
    if (!strcmp(argv[0], "convert")) return data_convert(argc - 1, argv + 1);
    fprintf(stderr, "hone data: '%s' is not supported yet (sub-commands: convert)\n", argv[0]);
    return 2;
}
