/* hone data — dataset tools. `hone data convert` reads any supported dataset (hone/dataset.h) and writes its
 * examples as canonical JSONL, with the counts of rows read, examples written and rows dropped by reason.
 * `hone data render` renders them with a chat template and tokenizes them (hone/render.h): one JSON line per
 * example with the text, the ids and the labels a training run would use. `hone data stats` and `hone data preview`
 * look at the mixture a datasets list makes (hone/mixture.h): counts, lengths and duplicates, or a few rendered
 * examples with their trained tokens highlighted. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static void data_usage(FILE *out) {
    fprintf(out,
            "usage: hone data SUBCOMMAND [--key value ...]\n\nsub-commands:\n"
            "  convert    any supported dataset to canonical JSONL (hone data convert --help)\n"
            "  render     chat template + tokenizer: text, input_ids, labels per example (hone data render --help)\n"
            "  stats      counts, token lengths, duplicates and mixture shares of datasets (hone data stats --help)\n"
            "  preview    a few rendered examples with their trained tokens highlighted (hone data preview --help)\n");
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
    hone_conversation_style style = HONE_CONVERSATION_NONE;
    const char *tok_path = hone_settings_str(s, "tokenizer"), *chat_template = hone_settings_str(s, "chat_template");
    if (hone_settings_require(s, "data") != HONE_OK || hone_settings_require(s, "output") != HONE_OK ||
        hone_settings_require(s, "tokenizer") != HONE_OK || !cli_dataset_options(s, &o, "data render") ||
        hone_conversation_style_parse(o.conversation, &style) != HONE_OK ||
        (style && chat_template &&
         hone_errorf(HONE_ERR_INVALID, "--conversation %s renders with a FastChat template, so --chat-template %s "
                                       "would not be used; give one of the two",
                     o.conversation, chat_template)) ||
        hone_tokenizer_load(&tok, tok_path) != HONE_OK ||
        (!style && hone_chat_template_pick(&tmpl, chat_template, hone_dir_exists(tok_path) ? tok_path : NULL) !=
                       HONE_OK) ||
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
    fprintf(stderr, "%zu tokens, %zu trained (%s %s)\n", job.tokens, job.trained_tokens,
            style ? "FastChat template" : "template",
            style ? hone_conversation_style_name(style) : hone_chat_template_name(tmpl));
    cli_render_warnings(job.flagged, job.examples, tok);
    rc = 0;
done:
    hone_chat_template_free(tmpl);
    hone_tokenizer_free(tok);
    hone_settings_free(s);
    free(keys);
    return rc;
}

/* ---- what hone data stats and hone data preview share: the mixture of --data, rendered with --tokenizer ---- */

#define VIEW_KEYS                                                                                               \
    {"data", HONE_KEY_RECORDS, NULL,                                                                           \
     "datasets, comma-separated; in the --config file a list of paths or mappings, as hone sft's datasets"},   \
    {"tokenizer", HONE_KEY_STRING, NULL, "model folder or tokenizer.json (its chat template is the default)"}, \
    {"chat_template", HONE_KEY_STRING, NULL,                                                                   \
     "built-in template name or a Jinja file (default: the tokenizer folder's, else alpaca)"},                 \
    {"train_on_inputs", HONE_KEY_BOOL, "false", "train on every token, prompts included"},                    \
    {"train_on_eos", HONE_KEY_STRING, "turn", "end-of-turn tokens trained: turn | last | all | none"},        \
    {"roles_to_train", HONE_KEY_STRING, "assistant", "comma-separated roles whose messages are trained"},     \
    {"seed", HONE_KEY_INT, "42", "seed of the mixture's subsets, shares, shaping and MinHash"},               \
    CLI_MIXTURE_KEYS

typedef struct {
    hone_mixture_options mo;
    hone_mixture_source *sources;
    hone_mixture m;
    hone_tokenizer *tok; /* NULL without --tokenizer */
    hone_chat_template *tmpl;
    hone_render_options ro;
} data_view;

static void view_close(data_view *v) {
    hone_mixture_free(&v->m);
    free(v->sources);
    hone_chat_template_free(v->tmpl);
    hone_tokenizer_free(v->tok);
}

/* Builds the mixture and, when --tokenizer is given, loads what rendering needs. 0 after printing the error. */
static int view_open(data_view *v, const hone_settings *s, const char *command) {
    memset(v, 0, sizeof *v);
    const char *tok_path = hone_settings_str(s, "tokenizer");
    v->ro.eos_id = -1;
    if (cli_mixture_options(s, "data", &v->mo, &v->sources) != HONE_OK ||
        hone_mixture_build(&v->m, &v->mo) != HONE_OK ||
        (tok_path && (hone_tokenizer_load(&v->tok, tok_path) != HONE_OK ||
                      hone_chat_template_pick(&v->tmpl, hone_settings_str(s, "chat_template"),
                                              hone_dir_exists(tok_path) ? tok_path : NULL) != HONE_OK ||
                      hone_train_eos_parse(hone_settings_str(s, "train_on_eos"), &v->ro.train_on_eos) != HONE_OK))) {
        cli_fail(command);
        view_close(v);
        return 0;
    }
    if (v->tok) {
        v->ro.tokenizer = v->tok;
        v->ro.chat_template = v->tmpl;
        v->ro.train_on_inputs = hone_settings_bool(s, "train_on_inputs");
        v->ro.roles_to_train = hone_settings_str(s, "roles_to_train");
        v->ro.eos_id = hone_tokenizer_special(v->tok)->eos_id;
    }
    return 1;
}

/* ---- hone data stats ---- */

/* One histogram line per bin up to the last non-empty one: "  [  100,   200)  ######   12" (bars of up to 40). */
static void print_histogram(const hone_length_stats *ls) {
    size_t last = 0, most = 1;
    for (size_t k = 0; k < HONE_LENGTH_BINS; k++) {
        if (ls->bins[k]) last = k;
        if (ls->bins[k] > most) most = ls->bins[k];
    }
    for (size_t k = 0; k <= last && ls->n; k++) {
        const size_t bar = (ls->bins[k] * 40 + most - 1) / most;
        printf("  [%6zu, %6zu)  %-40.*s %zu\n", k * ls->bin_width, (k + 1) * ls->bin_width, (int)bar,
               "########################################", ls->bins[k]);
    }
}

typedef struct {
    size_t exact, near;              /* duplicates left in the mixture */
    int rendered;                    /* with --tokenizer */
    hone_length_stats tokens;        /* rendered lengths */
    size_t trained;                  /* trained tokens */
    size_t *dataset_tokens;          /* per dataset */
    int sequence_len;
    hone_truncation truncation;
} stats_result;

static json_t *stats_json(const data_view *v, const stats_result *r) {
    char *reports = hone_mixture_reports_to_json(&v->m);
    json_t *datasets = reports ? json_loads(reports, 0, NULL) : NULL;
    free(reports);
    json_t *o = json_object(), *dropped_by = json_object();
    size_t rows = 0, dropped = 0;
    for (size_t d = 0; d < v->m.n_sources; d++) {
        const hone_dataset_stats *st = &v->m.reports[d].stats;
        rows += st->rows;
        dropped += st->dropped;
        if (r->rendered)
            json_object_set_new(json_array_get(datasets, d), "tokens",
                                json_integer((json_int_t)r->dataset_tokens[d]));
    }
    for (int k = 0; k < HONE_DROP_COUNT; k++) {
        size_t n = 0;
        for (size_t d = 0; d < v->m.n_sources; d++) n += v->m.reports[d].stats.dropped_by[k];
        json_object_set_new(dropped_by, hone_drop_reason_name((hone_drop_reason)k), json_integer((json_int_t)n));
    }
    json_object_set_new(o, "datasets", datasets);
    json_object_set_new(o, "rows", json_integer((json_int_t)rows));
    json_object_set_new(o, "dropped", json_integer((json_int_t)dropped));
    json_object_set_new(o, "dropped_by", dropped_by);
    json_object_set_new(o, "examples", json_integer((json_int_t)v->m.n));
    json_object_set_new(o, "weighted", json_boolean(v->m.weighted));
    json_object_set_new(o, "conversations", json_integer((json_int_t)v->m.conversations));
    json_object_set_new(o, "messages", json_integer((json_int_t)v->m.messages));
    json_object_set_new(o, "assistant_turns", json_integer((json_int_t)v->m.assistant_turns));
    json_object_set_new(o, "max_assistant_turns", json_integer((json_int_t)v->m.max_assistant_turns));
    json_object_set_new(o, "duplicates_left", json_pack("{s:I, s:I}", "exact", (json_int_t)r->exact, "near",
                                                        (json_int_t)r->near));
    if (r->rendered) {
        const hone_length_stats *ls = &r->tokens;
        json_t *hist = json_array();
        for (size_t k = 0; k < HONE_LENGTH_BINS; k++)
            if (ls->bins[k])
                json_array_append_new(hist, json_pack("{s:I, s:I, s:I}", "from", (json_int_t)(k * ls->bin_width), "to",
                                                      (json_int_t)((k + 1) * ls->bin_width), "count",
                                                      (json_int_t)ls->bins[k]));
        json_object_set_new(
            o, "tokens",
            json_pack("{s:s, s:I, s:I, s:I, s:I, s:f, s:I, s:I, s:I, s:I, s:o, s:i, s:I, s:s}", "template",
                      hone_chat_template_name(v->tmpl), "total", (json_int_t)ls->total, "trained",
                      (json_int_t)r->trained, "min", (json_int_t)ls->min, "max", (json_int_t)ls->max, "mean", ls->mean,
                      "p50", (json_int_t)ls->p50, "p90", (json_int_t)ls->p90, "p95", (json_int_t)ls->p95, "p99",
                      (json_int_t)ls->p99, "histogram", hist, "sequence_len", r->sequence_len, "over_sequence_len",
                      (json_int_t)ls->over, "over_action",
                      r->truncation == HONE_TRUNCATE_DROP ? "dropped" : "truncated"));
    }
    return o;
}

static void stats_print(const data_view *v, const stats_result *r) {
    printf("%zu examples in the mixture (%s)\n", v->m.n, v->m.weighted ? "weighted" : "every example of each dataset");
    for (size_t d = 0; d < v->m.n_sources; d++) {
        const hone_mixture_report *p = &v->m.reports[d];
        printf("  %s: %s, %zu rows, %zu examples, %zu dropped", p->path, hone_dataset_format_name(p->stats.format),
               p->stats.rows, p->stats.examples, p->stats.dropped);
        for (int k = 0; k < HONE_DROP_COUNT; k++)
            if (p->stats.dropped_by[k])
                printf(" (%s %zu, first at line %zu)", hone_drop_reason_name((hone_drop_reason)k),
                       p->stats.dropped_by[k], p->stats.first_dropped_line[k]);
        printf("; duplicates removed %zu exact, %zu near; %zu after caps; %zu selected (%.1f%%", p->exact_duplicates,
               p->near_duplicates, p->capped, p->selected, 100 * p->share);
        if (v->m.weighted) printf(", weight %g", p->weight);
        if (r->rendered && r->tokens.total)
            printf(", %.1f%% of the tokens", 100.0 * (double)r->dataset_tokens[d] / (double)r->tokens.total);
        printf(")");
        if (p->few_shot || p->inverted)
            printf("; %zu few-shot (%zu exemplars), %zu inverted", p->few_shot, p->exemplars, p->inverted);
        printf("\n");
    }
    if (v->m.conversations)
        printf("conversations: %zu, %zu messages, assistant turns %.2f on average, at most %zu\n", v->m.conversations,
               v->m.messages, (double)v->m.assistant_turns / (double)v->m.conversations, v->m.max_assistant_turns);
    printf("duplicates left in the mixture: %zu exact, %zu near (MinHash %d-%s shingles, %d permutations, %d bands, "
           "threshold %g)\n",
           r->exact, r->near, v->mo.minhash.ngram, v->mo.minhash.chars ? "character" : "word",
           v->mo.minhash.permutations, v->mo.minhash.bands, v->mo.minhash.threshold);
    if (!r->rendered) {
        printf("token lengths: give --tokenizer\n");
        return;
    }
    const hone_length_stats *ls = &r->tokens;
    printf("tokens (template %s): %zu, %zu trained; per example min %zu, mean %.1f, p50 %zu, p90 %zu, p95 %zu, "
           "p99 %zu, max %zu\n",
           hone_chat_template_name(v->tmpl), ls->total, r->trained, ls->min, ls->mean, ls->p50, ls->p90, ls->p95,
           ls->p99, ls->max);
    print_histogram(ls);
    printf("longer than sequence_len %d: %zu (%s)\n", r->sequence_len, ls->over,
           r->truncation == HONE_TRUNCATE_DROP ? "dropped by truncation drop" : "cut by truncation truncate");
}

static int data_stats(int argc, char **argv) {
    static const hone_key_spec fixed[] = {
        VIEW_KEYS,
        {"sequence_len", HONE_KEY_INT, "512", "count the examples longer than this"},
        {"truncation", HONE_KEY_STRING, "drop", "what training does with them: drop | truncate"},
        {"json", HONE_KEY_BOOL, "false", "print one JSON object on stdout"},
        CLI_THREADS_KEY,
    };
    hone_settings *s;
    int rc;
    hone_key_spec *keys = cli_parse_with_dataset_options(
        &s, "data stats", "--data FILE[,FILE...] [--tokenizer DIR] [--chat-template NAME|FILE] [--json]", fixed,
        sizeof fixed / sizeof fixed[0], argc, argv, &rc);
    if (!keys) return rc;
    rc = 1;
    data_view v;
    stats_result r = {.sequence_len = (int)hone_settings_int(s, "sequence_len")};
    hone_rendered_set set = {0};
    size_t *lengths = NULL;
    if (!cli_threads(s, "data stats")) goto done;
    if (hone_truncation_parse(hone_settings_str(s, "truncation"), &r.truncation) != HONE_OK) {
        cli_fail("data stats");
        goto done;
    }
    if (!view_open(&v, s, "data stats")) goto done;
    uint8_t *marks = malloc(v.m.n + 1);
    hone_minhash_params mh = v.mo.minhash;
    mh.seed = v.mo.seed;
    hone_status st = marks ? hone_dedup_mark(v.m.examples, v.m.n, HONE_DEDUP_NEAR, &mh, marks)
                           : hone_errorf(HONE_ERR_NOMEM, "out of memory");
    for (size_t i = 0; st == HONE_OK && i < v.m.n; i++) {
        r.exact += marks[i] == HONE_DUP_EXACT;
        r.near += marks[i] == HONE_DUP_NEAR;
    }
    free(marks);
    if (st == HONE_OK && v.tok) {
        r.rendered = 1;
        st = hone_mixture_render(&v.m, &v.ro, &set);
        lengths = malloc((set.n + 1) * sizeof *lengths);
        r.dataset_tokens = calloc(v.m.n_sources, sizeof *r.dataset_tokens);
        if (st == HONE_OK && (!lengths || !r.dataset_tokens)) st = hone_errorf(HONE_ERR_NOMEM, "out of memory");
        for (size_t i = 0; st == HONE_OK && i < set.n; i++) {
            lengths[i] = set.seqs[i].n;
            r.dataset_tokens[v.m.source[i]] += set.seqs[i].n;
        }
        r.trained = set.trained_tokens;
        if (st == HONE_OK) st = hone_length_stats_compute(lengths, set.n, (size_t)r.sequence_len, &r.tokens);
        if (st == HONE_OK) cli_render_warnings(set.flagged, set.n, v.tok);
    }
    if (st != HONE_OK) {
        cli_fail("data stats");
    } else if (hone_settings_bool(s, "json")) {
        json_t *o = stats_json(&v, &r);
        char *text = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        json_decref(o);
        if (text) printf("%s\n", text);
        else fprintf(stderr, "hone data stats: error: out of memory\n");
        rc = text ? 0 : 1;
        free(text);
    } else {
        stats_print(&v, &r);
        rc = 0;
    }
    view_close(&v);
done:
    free(lengths);
    free(r.dataset_tokens);
    hone_rendered_set_free(&set);
    hone_settings_free(s);
    free(keys);
    return rc;
}

/* ---- hone data preview ---- */

#define GREEN "\033[32m"
#define DIM "\033[2m"
#define RESET "\033[0m"

/* Token text made visible on one line: newline, tab and other control bytes escaped. */
static void print_visible(const char *text, size_t len) {
    for (size_t i = 0; i < len; i++) {
        const unsigned char c = (unsigned char)text[i];
        if (c == '\n') fputs("\\n", stdout);
        else if (c == '\t') fputs("\\t", stdout);
        else if (c < 0x20 || c == 0x7f) printf("\\x%02x", c);
        else putchar(c);
    }
}

/* The text view: runs of trained / untrained tokens decoded together; trained runs green and the rest dim on a
 * terminal, else trained runs between « and ». The tokens view: every token as axolotl's preprocess --debug prints
 * it, TEXT(label, id), label -100 when not trained. */
static hone_status preview_sequence(const hone_tokenizer *tok, const hone_sequence *seq, int tokens_view, int color) {
    for (size_t a = 0; a < seq->n;) {
        const int trained = seq->labels[a] != -100;
        size_t b = a + 1;
        while (!tokens_view && b < seq->n && (seq->labels[b] != -100) == trained) b++;
        char *text;
        size_t len;
        HONE_TRY(hone_tokenizer_decode(tok, seq->input_ids + a, b - a, 0, &text, &len));
        if (color) fputs(trained ? GREEN : DIM, stdout);
        else if (trained && !tokens_view) fputs("\u00ab", stdout);
        if (tokens_view) {
            print_visible(text, len);
            printf("(%d, %d)%s", (int)seq->labels[a], (int)seq->input_ids[a], b < seq->n ? " " : "");
        } else {
            fwrite(text, 1, len, stdout);
        }
        if (color) fputs(RESET, stdout);
        else if (trained && !tokens_view) fputs("\u00bb", stdout);
        free(text);
        a = b;
    }
    putchar('\n');
    return HONE_OK;
}

static int data_preview(int argc, char **argv) {
    static const hone_key_spec fixed[] = {
        VIEW_KEYS,
        {"n", HONE_KEY_INT, "3", "examples to show, the first of the mixture (-n N works too)"},
        {"tokens", HONE_KEY_BOOL, "false", "one TEXT(label, id) per token, as axolotl's preprocess --debug"},
        {"color", HONE_KEY_STRING, "auto", "auto (on a terminal, unless NO_COLOR is set) | always | never"},
    };
    /* -n N is the short spelling every pager user types */
    char **args = calloc((size_t)argc + 1, sizeof *args);
    if (!args) return cli_fail("data preview");
    for (int i = 0; i < argc; i++) args[i] = strcmp(argv[i], "-n") ? argv[i] : "--n";
    hone_settings *s;
    int rc;
    hone_key_spec *keys = cli_parse_with_dataset_options(
        &s, "data preview", "--data FILE[,FILE...] --tokenizer DIR [-n N] [--tokens] [--color auto|always|never]",
        fixed, sizeof fixed / sizeof fixed[0], argc, args, &rc);
    free(args);
    if (!keys) return rc;
    rc = 1;
    const char *color_mode = hone_settings_str(s, "color");
    const int64_t n = hone_settings_int(s, "n");
    int color = 0;
    if (!strcmp(color_mode, "auto")) color = isatty(STDOUT_FILENO) && !getenv("NO_COLOR");
    else if (!strcmp(color_mode, "always")) color = 1;
    else if (strcmp(color_mode, "never")) {
        fprintf(stderr, "hone data preview: error: color: unknown value '%s' (expected auto, always or never)\n",
                color_mode);
        goto done;
    }
    if (n < 0) {
        fprintf(stderr, "hone data preview: error: -n must be >= 0, got %lld\n", (long long)n);
        goto done;
    }
    if (hone_settings_require(s, "tokenizer") != HONE_OK) {
        cli_fail("data preview");
        goto done;
    }
    data_view v;
    if (!view_open(&v, s, "data preview")) goto done;
    cli_print_mixture(&v.m);
    hone_status st = HONE_OK;
    for (size_t i = 0; st == HONE_OK && i < v.m.n && i < (size_t)n; i++) {
        hone_sequence seq;
        st = hone_render_example(&v.m.examples[i], &v.ro, &seq);
        if (st != HONE_OK) {
            hone_error_context(st, "%s", v.m.reports[v.m.source[i]].path);
            break;
        }
        printf("== example %zu of %zu: %s line %zu, %zu tokens, %zu trained ==\n", i + 1, v.m.n,
               v.m.reports[v.m.source[i]].path, v.m.examples[i].line, seq.n, seq.n_trained);
        st = preview_sequence(v.tok, &seq, hone_settings_bool(s, "tokens"), color);
        hone_sequence_free(&seq);
    }
    if (st == HONE_OK) rc = 0;
    else cli_fail("data preview");
    view_close(&v);
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
    if (!strcmp(argv[0], "render")) return data_render(argc - 1, argv + 1);
    if (!strcmp(argv[0], "stats")) return data_stats(argc - 1, argv + 1);
    if (!strcmp(argv[0], "preview")) return data_preview(argc - 1, argv + 1);
    fprintf(stderr, "hone data: '%s' is not supported yet (sub-commands: convert, render, stats, preview)\n", argv[0]);
    return 2;
}
