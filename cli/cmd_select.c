/* hone select — instruction-data selection with the student model's own scores (IFD and reverse IFD). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "select_reflection.h"
#include "select_star.h"

static const hone_key_spec fixed[] = {
    {"model", HONE_KEY_STRING, NULL, "Hugging Face model folder that scores the data (the student)"},
    {"base_model", HONE_KEY_STRING, NULL, "same as --model"},
    {"data", HONE_KEY_STRING, NULL, "dataset file (alpaca, sharegpt, messages, dolly, ...: see hone data convert)"},
    {"tokenizer", HONE_KEY_STRING, NULL, "tokenizer.json or its folder (default: the model folder's)"},
    {"output", HONE_KEY_STRING, NULL,
     "JSONL of the selected examples (with --score-only: every example and its scores, resumed when it exists)"},
    {"scores", HONE_KEY_STRING, NULL, "where the scores of every example go (default: OUTPUT.scores.jsonl; resumed)"},
    {"decisions", HONE_KEY_STRING, NULL,
     "one line per example: selected or not, and why (default: OUTPUT.decisions.jsonl)"},
    {"method", HONE_KEY_STRING, "ifd",
     "ifd | cherry (IFD after Cherry's pre-experience training) | reflection (a teacher rewrites, the student "
     "keeps the better version: see teacher_*) | star-agents (teachers rewrite and answer each "
     "seed: see star_*)"},
    {"reverse", HONE_KEY_BOOL, "false", "also score reverse IFD (rifd)"},
    {"score_only", HONE_KEY_BOOL, "false", "write the scores of every example, select nothing"},
    {"max_ifd", HONE_KEY_FLOAT, "1", "drop examples with ifd >= this (0 = keep any ifd)"},
    {"max_rifd", HONE_KEY_FLOAT, "0", "drop examples with rifd >= this (needs --reverse; 0 = no threshold)"},
    {"top_k", HONE_KEY_INT, "0", "keep at most this many, highest ifd first (0 = no cap)"},
    {"top_fraction", HONE_KEY_FLOAT, "0", "keep at most this fraction of all examples, highest ifd first (0 = no cap)"},
    {"max_similarity", HONE_KEY_FLOAT, "0",
     "DEITA diversity: skip an example whose prompt embedding has cosine similarity above this with a kept one "
     "(0 = off)"},
    {"prompt_template", HONE_KEY_STRING, "alpaca", "how instructions become prompts: alpaca | vicuna | plain | chat"},
    {"chat_template", HONE_KEY_STRING, NULL,
     "with --prompt-template chat: built-in template name or Jinja file (default: the model's own)"},
    {"sequence_len", HONE_KEY_INT, "1024", "longest scored sequence (answer tokens beyond it are not scored)"},
    {"micro_batch_size", HONE_KEY_INT, "4", "rows of sequence_len tokens per forward pass"},
    {"json", HONE_KEY_BOOL, "false", "print the summary as one JSON object on stdout"},
    {"dedup", HONE_KEY_STRING, "none",
     "drop duplicates, keeping the best-scored copy: none | exact | near (MinHash; exact too)"},
    {"dedup_threshold", HONE_KEY_FLOAT, "0.8", "near duplicates: estimated Jaccard similarity at least this"},
    {"minhash_ngram", HONE_KEY_INT, "3", "MinHash shingle length in words (or characters)"},
    {"minhash_chars", HONE_KEY_BOOL, "false", "MinHash shingles of characters instead of words"},
    {"minhash_permutations", HONE_KEY_INT, "128", "MinHash hash functions (signature length)"},
    {"minhash_bands", HONE_KEY_INT, "16", "LSH bands (must divide minhash_permutations)"},
    {"facility_location", HONE_KEY_FLOAT, "0",
     "Superfiltering's diversity: keep this many (>= 1) or this fraction of all examples (< 1) of those within the "
     "top_k / top_fraction cut (default cut 0.2) by facility location on prompt embeddings (0 = off)"},
    {"pre_experience_dir", HONE_KEY_STRING, NULL,
     "--method cherry: folder of the pre-experience subset and model (default: OUTPUT.pre_experience)"},
    {"clusters", HONE_KEY_INT, "100", "--method cherry: K-means clusters (capped at the number of examples)"},
    {"ppl_low", HONE_KEY_FLOAT, "25", "--method cherry: lowest perplexity percentile taken in a cluster"},
    {"ppl_high", HONE_KEY_FLOAT, "75", "--method cherry: highest perplexity percentile taken in a cluster"},
    {"per_cluster", HONE_KEY_INT, "10", "--method cherry: examples taken per cluster, evenly spaced"},
    {"report", HONE_KEY_STRING, NULL,
     "write an HTML report of the selection here (histograms, examples; star-agents: the pairs' probabilities; "
     "reflection: the versions, the scores the rule compares)"},
    CLI_THREADS_KEY,
    CLI_STAR_KEYS,
    CLI_REFLECTION_KEYS,
};

/* Cherry's pre-experience SFT trains with the hone sft keys; those select defines itself (sequence_len, ...) keep
 * select's meaning. */
static const hone_key_spec train_keys[] = {CLI_TRAIN_KEYS};

static int in_fixed(const char *name) {
    for (size_t k = 0; k < sizeof fixed / sizeof fixed[0]; k++)
        if (!strcmp(fixed[k].name, name)) return 1;
    return 0;
}

static size_t all_keys(hone_key_spec *out) {
    size_t n = sizeof fixed / sizeof fixed[0];
    memcpy(out, fixed, sizeof fixed);
    for (size_t t = 0; t < sizeof train_keys / sizeof train_keys[0]; t++)
        if (!in_fixed(train_keys[t].name)) out[n++] = train_keys[t];
    return n;
}

/* A training key given where nothing trains (or one Cherry's single epoch cannot honour) is an error, not a no-op.
 * Star-Agents draws its pairs with `seed`, and its agents and the reflection teacher sample with it. */
static int training_keys_fit(const hone_settings *s, int cherry, int seeded) {
    for (size_t t = 0; t < sizeof train_keys / sizeof train_keys[0]; t++) {
        const char *name = train_keys[t].name;
        if (in_fixed(name) || !hone_settings_is_set(s, name) || (seeded && !strcmp(name, "seed"))) continue;
        if (!cherry) {
            fprintf(stderr, "hone select: error: %s is a training setting: it applies to --method cherry only\n",
                    name);
            return 0;
        }
        if ((!strcmp(name, "num_epochs") && hone_settings_int(s, name) != 1) || !strcmp(name, "max_steps")) {
            fprintf(stderr, "hone select: error: %s: Cherry's pre-experience trains exactly one epoch\n", name);
            return 0;
        }
    }
    return 1;
}

static int show_progress(const hone_score_file_summary *s, void *user) {
    (void)user;
    fprintf(stderr, "scored %zu examples (%.0f tokens/s)\n", s->resumed + s->scored,
            s->seconds > 0 ? (double)s->tokens / s->seconds : 0.0);
    return 0;
}

/* The value of `key`, or OUTPUT with its .jsonl suffix replaced by `suffix` (free()). */
static char *derived_path(const hone_settings *s, const char *key, const char *suffix) {
    if (hone_settings_is_set(s, key)) return strdup(hone_settings_str(s, key));
    const char *out = hone_settings_str(s, "output");
    size_t n = strlen(out);
    if (n > 6 && !strcmp(out + n - 6, ".jsonl")) n -= 6;
    char *path = malloc(n + strlen(suffix) + 1);
    if (path) {
        memcpy(path, out, n);
        strcpy(path + n, suffix);
    }
    return path;
}

/* The selection keys; 0 (after printing the error) when one is invalid. */
static int selection_options(const hone_settings *s, int reverse, hone_select_options *so) {
    *so = (hone_select_options){.max_ifd = hone_settings_float(s, "max_ifd"),
                                .max_rifd = hone_settings_float(s, "max_rifd"),
                                .top_fraction = hone_settings_float(s, "top_fraction"),
                                .max_similarity = hone_settings_float(s, "max_similarity")};
    if (hone_settings_int(s, "top_k") < 0) {
        fprintf(stderr, "hone select: error: --top-k must be >= 0\n");
        return 0;
    }
    so->top_k = (size_t)hone_settings_int(s, "top_k");
    so->facility_location = hone_settings_float(s, "facility_location");
    if (so->facility_location > 0 && !so->top_k && so->top_fraction == 0) so->top_fraction = 0.2; /* Superfiltering */
    so->minhash = (hone_minhash_params){(int)hone_settings_int(s, "minhash_ngram"),
                                        hone_settings_bool(s, "minhash_chars"),
                                        (int)hone_settings_int(s, "minhash_permutations"),
                                        (int)hone_settings_int(s, "minhash_bands"),
                                        hone_settings_float(s, "dedup_threshold"),
                                        (uint64_t)hone_settings_int(s, "seed")};
    if (hone_dedup_mode_parse(hone_settings_str(s, "dedup"), &so->dedup) != HONE_OK) {
        cli_fail("select");
        return 0;
    }
    if (so->max_rifd > 0 && !reverse) {
        fprintf(stderr, "hone select: error: --max-rifd needs the reverse scores: add --reverse\n");
        return 0;
    }
    return 1;
}

/* Selection from the scores file: thresholds, top-k / fraction, DEITA diversity on prompt embeddings. */
static int select_examples(const hone_settings *s, hone_model *m, const hone_score_file_options *o,
                           hone_select_options so, const char *scores_path, const char *decisions_path,
                           hone_select_summary *sel) {
    float *embeddings = NULL;
    char **texts = NULL;
    size_t *text_lens = NULL, n_embedded = 0, n_texts = 0;
    hone_status st = HONE_OK;
    if (so.max_similarity > 0 || so.facility_location > 0) {
        st = hone_embed_file_prompts(m, o, &embeddings, &n_embedded);
        so.embeddings = embeddings;
        so.dim = (size_t)hone_model_get_config(m)->hidden_size;
    }
    if (st == HONE_OK && so.dedup != HONE_DEDUP_NONE) {
        st = hone_dedup_texts_file(o->data_path, o->dataset, &texts, &text_lens, &n_texts);
        so.texts = (const char *const *)texts;
        so.text_lens = text_lens;
    }
    const char *output = hone_settings_str(s, "output");
    if (st == HONE_OK) st = hone_select_file(scores_path, &so, output, decisions_path, sel);
    if (st == HONE_OK && hone_settings_is_set(s, "report"))
        st = hone_select_report_write(hone_settings_str(s, "report"), scores_path, decisions_path, 10, NULL, 0);
    free(embeddings);
    for (size_t i = 0; i < n_texts; i++) free(texts[i]);
    free(texts);
    free(text_lens);
    if (st != HONE_OK) {
        cli_fail("select");
        return 0;
    }
    if (so.max_similarity > 0 && n_embedded != sel->examples) {
        fprintf(stderr, "hone select: error: %zu prompt embeddings for %zu scored examples\n", n_embedded,
                sel->examples);
        return 0;
    }
    fprintf(stderr, "%s: %zu of %zu examples selected; dropped: ", output, sel->by_reason[HONE_SELECT_KEPT],
            sel->examples);
    for (int r = 1; r < HONE_SELECT_REASON_COUNT; r++)
        fprintf(stderr, "%s%zu %s", r > 1 ? ", " : "", sel->by_reason[r],
                hone_select_reason_name((hone_select_reason)r));
    fprintf(stderr, " (each decision in %s)\n", decisions_path);
    return 1;
}

/* Cherry's pre-experience (hone_cherry_pre_experience), then *m becomes the trained model, which scores the data. */
static int pre_experience(const hone_settings *s, hone_model **m, const hone_score_file_options *o,
                          const hone_tokenizer *tok) {
    hone_train_config tc;
    if (!cli_train_config(s, &tc, "select")) return 0;
    const int64_t clusters = hone_settings_int(s, "clusters"), per_cluster = hone_settings_int(s, "per_cluster");
    const hone_cherry_options co = {clusters > 0 ? (size_t)clusters : 0, hone_settings_float(s, "ppl_low"),
                                    hone_settings_float(s, "ppl_high"), per_cluster > 0 ? (size_t)per_cluster : 0,
                                    tc.seed};
    const int32_t eos = hone_tokenizer_special(tok)->eos_id >= 0 ? hone_tokenizer_special(tok)->eos_id
                                                                  : hone_model_get_config(*m)->eos_token_id;
    char *dir = derived_path(s, "pre_experience_dir", ".pre_experience");
    char *model_dir = dir ? hone_path_join(dir, "model") : NULL;
    hone_cherry_summary sum;
    int ok = model_dir && hone_cherry_pre_experience(*m, o, &co, tc, eos, dir, &sum) == HONE_OK;
    if (ok) {
        hone_model_free(*m);
        *m = NULL;
        ok = hone_model_load(m, model_dir) == HONE_OK;
    }
    if (ok && sum.reused_subset) fprintf(stderr, "pre-experience: %s/pre_experience.jsonl reused\n", dir);
    if (ok && !sum.reused_subset)
        fprintf(stderr, "pre-experience: %zu of %zu examples from %zu clusters (K-means: %zu iterations) -> "
                        "%s/pre_experience.jsonl\n",
                sum.picked, sum.examples, sum.clusters, sum.kmeans_iterations, dir);
    if (ok && sum.reused_model) fprintf(stderr, "pre-experience: model %s reused\n", model_dir);
    if (ok && !sum.reused_model)
        fprintf(stderr, "pre-experience: one epoch on %zu examples, %lld steps (micro_batch_size %d, "
                        "gradient_accumulation_steps %d), loss %.4f -> %.4f, model in %s\n", sum.picked,
                (long long)sum.train.steps, sum.micro_batch_size, sum.gradient_accumulation_steps,
                sum.train.first_loss, sum.train.last_loss, model_dir);
    if (!ok) cli_fail("select");
    free((char *)tc.config_json);
    free(dir);
    free(model_dir);
    return ok;
}

int cmd_select(int argc, char **argv) {
    hone_settings *s;
    int rc;
    hone_key_spec key_table[sizeof fixed / sizeof fixed[0] + sizeof train_keys / sizeof train_keys[0]];
    hone_key_spec *keys = cli_parse_with_dataset_options(
        &s, "select", "--model DIR --data FILE [--reverse] [--score-only | --top-fraction F ...] --output OUT.jsonl",
        key_table, all_keys(key_table), argc, argv, &rc);
    if (!keys) return rc;
    rc = 1;
    hone_model *m = NULL;
    hone_tokenizer *tok = NULL;
    hone_chat_template *tmpl = NULL;
    hone_dataset_options dopt;
    hone_score_file_options o = {0};
    const char *model_dir = cli_model_path(s, "select");
    if (!model_dir || !cli_dataset_options(s, &dopt, "select") || !cli_threads(s, "select")) goto done;
    const int star = !strcmp(hone_settings_str(s, "method"), "star-agents");
    const int cherry = !strcmp(hone_settings_str(s, "method"), "cherry");
    const int reflection = !strcmp(hone_settings_str(s, "method"), "reflection");
    if (strcmp(hone_settings_str(s, "method"), "ifd") && !star && !cherry && !reflection) {
        fprintf(stderr,
                "hone select: error: --method '%s' is not known (expected ifd, cherry, reflection or star-agents)\n",
                hone_settings_str(s, "method"));
        goto done;
    }
    if (!training_keys_fit(s, cherry, star || reflection)) goto done;
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
    o.start_id = hone_ifd_start_token(tok, m);
    if (o.start_id < 0) {
        fprintf(stderr, "hone select: error: the model has neither a BOS nor an EOS token to start the direct pass\n");
        goto done;
    }
    if (star) {
        char *log_path = derived_path(s, "star_log", ".star.jsonl");
        rc = log_path ? cli_select_star(s, m, &o, log_path) : 1;
        free(log_path);
        goto done;
    }
    if (reflection) {
        char *decisions = derived_path(s, "decisions", ".decisions.jsonl");
        char *journal = derived_path(s, "reflection_journal", ".teacher.jsonl");
        rc = decisions && journal ? cli_select_reflection(s, m, &o, decisions, journal) : 1;
        free(decisions);
        free(journal);
        goto done;
    }
    if (cherry && !pre_experience(s, &m, &o, tok)) goto done;
    const int score_only = hone_settings_bool(s, "score_only");
    hone_select_options so;
    if (!score_only && !selection_options(s, o.reverse, &so)) goto done;
    char *scores_path = derived_path(s, "scores", ".scores.jsonl"), *decisions_path = NULL;
    o.output_path = score_only ? hone_settings_str(s, "output") : scores_path;
    hone_score_file_summary sum;
    if (!scores_path || hone_score_file(m, &o, show_progress, NULL, &sum) != HONE_OK) {
        cli_fail("select");
        free(scores_path);
        goto done;
    }
    fprintf(stderr,
            "%s: %zu examples (%zu rows read, %zu dropped by the dataset checks; %zu already scored, %zu scored now, "
            "%zu without scores) in %.1f s\n",
            o.output_path, sum.examples, sum.dataset.rows, sum.dataset.dropped, sum.resumed, sum.scored,
            sum.not_scored, sum.seconds);
    hone_select_summary sel = {0};
    if (!score_only) {
        decisions_path = derived_path(s, "decisions", ".decisions.jsonl");
        rc = select_examples(s, m, &o, so, scores_path, decisions_path, &sel) ? 0 : 1;
    } else {
        rc = 0;
    }
    if (rc == 0 && hone_settings_bool(s, "json")) {
        printf("{\"rows\": %zu, \"dropped\": %zu, \"examples\": %zu, \"resumed\": %zu, \"scored\": %zu, "
               "\"not_scored\": %zu, \"tokens\": %zu, \"seconds\": %.3f",
               sum.dataset.rows, sum.dataset.dropped, sum.examples, sum.resumed, sum.scored, sum.not_scored, sum.tokens,
               sum.seconds);
        if (!score_only) {
            printf(", \"selection\": {");
            for (int r = 0; r < HONE_SELECT_REASON_COUNT; r++)
                printf("%s\"%s\": %zu", r ? ", " : "", hone_select_reason_name((hone_select_reason)r),
                       sel.by_reason[r]);
            printf("}");
        }
        printf("}\n");
    }
    free(scores_path);
    free(decisions_path);
    if (rc) goto done;
    rc = 0;
done:
    hone_chat_template_free(tmpl);
    hone_tokenizer_free(tok);
    hone_model_free(m);
    hone_settings_free(s);
    free(keys);
    return rc;
}
