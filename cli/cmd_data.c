/* hone data — dataset tools. `hone data convert` reads any supported dataset (hone/dataset.h) and writes its
 * examples as canonical JSONL, with the counts of rows read, examples written and rows dropped by reason.
 * `hone data render` renders them with a chat template and tokenizes them (hone/render.h): one JSON line per
 * example with the text, the ids and the labels a training run would use. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void data_usage(FILE *out) {
    fprintf(out,
            "usage: hone data SUBCOMMAND [--key value ...]\n\nsub-commands:\n"
            "  convert    any supported dataset to canonical JSONL (hone data convert --help)\n"
            "  render     chat template + tokenizer: text, input_ids, labels per example (hone data render --help)\n");
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
    hone_settings *s;
    int rc;
    hone_key_spec *keys = cli_parse_with_dataset_options(
        &s, "data convert", "--data FILE --output OUT.jsonl [--format F] [--strict] [--field-* NAME ...]", fixed,
        sizeof fixed / sizeof fixed[0], argc, argv, &rc);
    if (!keys) return rc;
    rc = 1;
    hone_dataset_options o;
    if (hone_settings_require(s, "data") != HONE_OK || hone_settings_require(s, "output") != HONE_OK) {
        cli_fail("data convert");
        goto done;
    }
    if (!cli_dataset_options(s, &o, "data convert")) goto done;
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

/* ---- hone data render ---- */

typedef struct {
    hone_render_options ro;
    int prompt_only;
    hone_atomic_file out;
    size_t examples, trained_tokens, tokens;
    size_t flagged[3]; /* examples with HONE_RENDER_NO_END_OF_TURN, _PROMPT_MISMATCH, _STRADDLING_TOKEN */
} render_job;

static hone_status render_one(hone_example *ex, void *ctx) {
    render_job *job = ctx;
    hone_sequence seq;
    HONE_TRY(job->prompt_only ? hone_render_prompt(ex, &job->ro, &seq) : hone_render_example(ex, &job->ro, &seq));
    char *line = hone_sequence_to_json(&seq);
    hone_status st =
        line ? hone_atomic_write(&job->out, line, strlen(line)) : hone_errorf(HONE_ERR_NOMEM, "out of memory");
    if (st == HONE_OK) st = hone_atomic_write(&job->out, "\n", 1);
    for (int k = 0; k < 3; k++) job->flagged[k] += (seq.flags >> k) & 1;
    job->examples++;
    job->tokens += seq.n;
    job->trained_tokens += seq.n_trained;
    free(line);
    hone_sequence_free(&seq);
    return st;
}

static int data_render(int argc, char **argv) {
    static const hone_key_spec fixed[] = {
        {"data", HONE_KEY_STRING, NULL, "dataset: a JSON array, JSONL or one JSON object, optionally gzipped"},
        {"output", HONE_KEY_STRING, NULL, "JSONL file to write: {\"text\", \"input_ids\", \"labels\"} per example"},
        {"tokenizer", HONE_KEY_STRING, NULL, "model folder or tokenizer.json (its chat template is the default)"},
        {"chat_template", HONE_KEY_STRING, NULL,
         "built-in template name or a Jinja file (default: the tokenizer folder's, else alpaca)"},
        {"add_generation_prompt", HONE_KEY_BOOL, "false",
         "render each conversation's prompt for generation (trailing assistant turns left out, nothing trained)"},
        {"train_on_inputs", HONE_KEY_BOOL, "false", "train on every token, prompts included"},
        {"train_on_eos", HONE_KEY_STRING, "turn", "end-of-turn tokens trained: turn | last | all | none"},
        {"roles_to_train", HONE_KEY_STRING, "assistant", "comma-separated roles whose messages are trained"},
    };
    hone_settings *s;
    int rc;
    hone_key_spec *keys = cli_parse_with_dataset_options(
        &s, "data render", "--tokenizer DIR --data FILE --output OUT.jsonl [--chat-template NAME|FILE]", fixed,
        sizeof fixed / sizeof fixed[0], argc, argv, &rc);
    if (!keys) return rc;
    rc = 1;
    hone_tokenizer *tok = NULL;
    hone_chat_template *tmpl = NULL;
    hone_dataset_options o;
    render_job job = {.ro = {.eos_id = -1}};
    const char *tok_path = hone_settings_str(s, "tokenizer");
    if (hone_settings_require(s, "data") != HONE_OK || hone_settings_require(s, "output") != HONE_OK ||
        hone_settings_require(s, "tokenizer") != HONE_OK || !cli_dataset_options(s, &o, "data render") ||
        hone_tokenizer_load(&tok, tok_path) != HONE_OK ||
        hone_chat_template_pick(&tmpl, hone_settings_str(s, "chat_template"),
                                hone_dir_exists(tok_path) ? tok_path : NULL) != HONE_OK ||
        hone_train_eos_parse(hone_settings_str(s, "train_on_eos"), &job.ro.train_on_eos) != HONE_OK) {
        cli_fail("data render");
        goto done;
    }
    job.ro.tokenizer = tok;
    job.ro.chat_template = tmpl;
    job.ro.train_on_inputs = hone_settings_bool(s, "train_on_inputs");
    job.ro.roles_to_train = hone_settings_str(s, "roles_to_train");
    job.ro.eos_id = hone_tokenizer_special(tok)->eos_id;
    job.prompt_only = hone_settings_bool(s, "add_generation_prompt");
    const char *in = hone_settings_str(s, "data"), *out = hone_settings_str(s, "output");
    hone_dataset_stats stats;
    const double t0 = hone_now_seconds();
    hone_status st = hone_atomic_open(&job.out, out);
    if (st == HONE_OK) {
        st = hone_dataset_read(in, &o, render_one, &job, &stats);
        if (st == HONE_OK)
            st = hone_atomic_commit(&job.out);
        else
            hone_atomic_abort(&job.out);
    }
    if (st != HONE_OK) {
        cli_fail("data render");
        goto done;
    }
    print_summary(&stats, in, out, hone_now_seconds() - t0);
    fprintf(stderr, "%zu tokens, %zu trained (template %s)\n", job.tokens, job.trained_tokens,
            hone_chat_template_name(tmpl));
    cli_render_warnings(job.flagged, job.examples, tok);
    rc = 0;
done:
    hone_chat_template_free(tmpl);
    hone_tokenizer_free(tok);
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
    if (!strcmp(argv[0], "render")) return data_render(argc - 1, argv + 1);
    fprintf(stderr, "hone data: '%s' is not supported yet (sub-commands: convert, render)\n", argv[0]);
    return 2;
}
