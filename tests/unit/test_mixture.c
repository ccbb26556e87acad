/* Mixtures (src/data/mixture.c), dedup (src/data/dedup.c) and the datasets-list settings (RECORDS): counts from
 * weights worked out by hand, seeded subsets, determinism, the few-shot budget, the inversion rate against its
 * binomial spread, and MinHash's estimate against the exact Jaccard similarity of the shingle sets computed here. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hone/mixture.h"
#include "hone/settings.h"
#include "testutil.h"

/* An alpaca JSONL file of n rows: instruction "<tag> task i: ...", output "<tag> answer i ..." (lengths vary). */
static char *write_alpaca(const char *dir, const char *name, const char *tag, size_t n) {
    size_t cap = 256 * n + 16, len = 0;
    char *text = malloc(cap);
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(text + len, cap - len,
                                "{\"instruction\": \"%s task %zu: say it %zu times\", \"input\": \"\", "
                                "\"output\": \"%s answer %zu%.*s\"}\n",
                                tag, i, i % 7, tag, i, (int)(i % 5) * 4, " pad pad pad pad pad");
    char *path = test_write_file(dir, name, text, len);
    free(text);
    return path;
}

static const char *user_of(const hone_example *ex) { return ex->conversation.messages[0].content; }

static void build(hone_mixture *m, hone_mixture_source *src, size_t n, uint64_t seed,
                  void (*adjust)(hone_mixture_options *)) {
    hone_mixture_options o;
    hone_mixture_defaults(&o);
    o.sources = src;
    o.n_sources = n;
    o.seed = seed;
    if (adjust) adjust(&o);
    TEST_OK(hone_mixture_build(m, &o));
}

static size_t from_source(const hone_mixture *m, uint32_t d) {
    size_t n = 0;
    for (size_t i = 0; i < m->n; i++) n += m->source[i] == d;
    return n;
}

/* Examples of each source appear once each, in file order, and are that source's. */
static void check_order(const hone_mixture *m, const char *const *tags) {
    for (size_t i = 1; i < m->n; i++)
        if (m->source[i] == m->source[i - 1]) assert_true(m->examples[i].line > m->examples[i - 1].line);
    for (size_t i = 0; i < m->n; i++) assert_true(!strncmp(user_of(&m->examples[i]), tags[m->source[i]], 1));
}

static void test_weights_and_caps(void **state) {
    (void)state;
    char *dir = test_tmpdir();
    char *a = write_alpaca(dir, "a.jsonl", "A", 100), *b = write_alpaca(dir, "b.jsonl", "B", 50);
    static const char *const tags[] = {"A", "B"};
    hone_mixture m;

    /* no weight: everything, in file order */
    hone_mixture_source plain[2] = {{.path = a, .few_shot_rate = -1, .inversion_rate = -1},
                                    {.path = b, .few_shot_rate = -1, .inversion_rate = -1}};
    build(&m, plain, 2, 1, NULL);
    assert_int_equal(m.n, 150);
    assert_false(m.weighted);
    check_order(&m, tags);
    assert_int_equal(m.examples[0].line, 1);
    assert_int_equal(m.reports[1].selected, 50);
    hone_mixture_free(&m);

    /* weights 3 : 1 → shares 0.75, 0.25; N = min(floor(100 / 0.75), floor(50 / 0.25)) = 133;
     * counts round(99.75) = 100, round(33.25) = 33 */
    hone_mixture_source w[2] = {{.path = a, .weight = 3, .few_shot_rate = -1, .inversion_rate = -1},
                                {.path = b, .weight = 1, .few_shot_rate = -1, .inversion_rate = -1}};
    build(&m, w, 2, 1, NULL);
    assert_true(m.weighted);
    assert_int_equal(from_source(&m, 0), 100);
    assert_int_equal(from_source(&m, 1), 33);
    assert_int_equal(m.reports[1].selected, 33);
    assert_true(fabs(m.reports[0].share - 100.0 / 133) < 1e-12);
    check_order(&m, tags);
    hone_mixture_free(&m);

    /* caps: max_samples 10 of A and fraction 0.25 of B's 50 (round(12.5) = 13); weight 1 : 1 → N = min(20, 26) =
     * 20, 10 each */
    hone_mixture_source c[2] = {{.path = a, .weight = 1, .max_samples = 10, .few_shot_rate = -1, .inversion_rate = -1},
                                {.path = b, .weight = 1, .fraction = 0.25, .few_shot_rate = -1, .inversion_rate = -1}};
    build(&m, c, 2, 1, NULL);
    assert_int_equal(m.reports[0].capped, 10);
    assert_int_equal(m.reports[1].capped, 13);
    assert_int_equal(from_source(&m, 0), 10);
    assert_int_equal(from_source(&m, 1), 10);
    check_order(&m, tags);
    hone_mixture_free(&m);

    /* an explicit size beyond a dataset: an error, or draws with replacement when asked */
    hone_mixture_source one[1] = {{.path = b, .weight = 1, .few_shot_rate = -1, .inversion_rate = -1}};
    hone_mixture_options o;
    hone_mixture_defaults(&o);
    o.sources = one;
    o.n_sources = 1;
    o.size = 120;
    TEST_FAILS_WITH(hone_mixture_build(&m, &o), "fewer than its share 120");
    o.with_replacement = 1;
    TEST_OK(hone_mixture_build(&m, &o));
    assert_int_equal(m.n, 120);
    size_t repeats = 0;
    for (size_t i = 1; i < m.n; i++) repeats += m.examples[i].line == m.examples[i - 1].line;
    assert_true(repeats >= 70); /* 120 draws from 50: at least 70 are repeats */
    hone_mixture_free(&m);

    /* bad options name the dataset */
    hone_mixture_source bad[1] = {{.path = a, .fraction = 1.5, .few_shot_rate = -1, .inversion_rate = -1}};
    o.sources = bad;
    TEST_FAILS_WITH(hone_mixture_build(&m, &o), "dataset 1");
    free(a);
    free(b);
    test_tmpdir_remove(dir);
    free(dir);
}

/* The lines of the examples of a mixture, as one string, to compare selections. */
static char *lines_of(const hone_mixture *m) {
    char *s = calloc(m->n * 12 + 1, 1);
    for (size_t i = 0; i < m->n; i++) sprintf(s + strlen(s), "%zu,", m->examples[i].line);
    return s;
}

static void test_seeded_subsets(void **state) {
    (void)state;
    char *dir = test_tmpdir();
    char *a = write_alpaca(dir, "a.jsonl", "A", 100);
    hone_mixture m;
    hone_mixture_source src = {.path = a, .max_samples = 10, .few_shot_rate = -1, .inversion_rate = -1};
    build(&m, &src, 1, 5, NULL);
    char *first = lines_of(&m);
    hone_mixture_free(&m);
    build(&m, &src, 1, 5, NULL);
    char *again = lines_of(&m);
    hone_mixture_free(&m);
    assert_string_equal(first, again); /* same seed, same subset */
    build(&m, &src, 1, 6, NULL);
    char *other = lines_of(&m);
    hone_mixture_free(&m);
    assert_string_not_equal(first, other); /* another seed, another subset */
    /* a smaller cap is a subset of a larger one with the same seed */
    src.max_samples = 4;
    build(&m, &src, 1, 5, NULL);
    for (size_t i = 0; i < m.n; i++) {
        char key[16];
        snprintf(key, sizeof key, "%zu,", m.examples[i].line);
        assert_non_null(strstr(first, key));
    }
    hone_mixture_free(&m);
    free(first);
    free(again);
    free(other);
    free(a);
    test_tmpdir_remove(dir);
    free(dir);
}

static void few_shot_options(hone_mixture_options *o) {
    o->few_shot_rate = 1;
    o->few_shot_max_exemplars = 3;
    o->few_shot_max_chars = 60;
}

static size_t code_points(const char *s) {
    size_t n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static void test_few_shot(void **state) {
    (void)state;
    char *dir = test_tmpdir();
    char *a = write_alpaca(dir, "a.jsonl", "A", 60);
    hone_mixture m;
    hone_mixture_source src = {.path = a, .few_shot_rate = -1, .inversion_rate = -1};
    build(&m, &src, 1, 9, few_shot_options);
    size_t shots = 0, exemplars = 0;
    for (size_t i = 0; i < m.n; i++) {
        const hone_conversation *c = &m.examples[i].conversation;
        assert_true(c->n_messages % 2 == 0 && c->n_messages >= 2 && c->n_messages <= 8);
        size_t chars = 0;
        for (size_t k = 0; k + 2 < c->n_messages; k += 2) {
            /* exemplars: untrained user/assistant pairs of the same dataset, not the example itself */
            assert_string_equal(c->messages[k].role, "user");
            assert_string_equal(c->messages[k + 1].role, "assistant");
            assert_int_equal(c->messages[k].weight, 0);
            assert_int_equal(c->messages[k + 1].weight, 0);
            assert_true(!strncmp(c->messages[k].content, "A task", 6));
            assert_string_not_equal(c->messages[k].content, c->messages[c->n_messages - 2].content);
            chars += code_points(c->messages[k].content) + code_points(c->messages[k + 1].content);
        }
        assert_true(chars <= 60); /* the budget */
        assert_int_equal(c->messages[c->n_messages - 1].weight, -1);
        shots += c->n_messages > 2;
        exemplars += c->n_messages / 2 - 1;
    }
    /* every exemplar pair costs 34..52 characters, so one fits in 60 and two do not... */
    assert_int_equal(exemplars, shots);
    assert_int_equal(m.reports[0].few_shot, shots);
    assert_int_equal(m.reports[0].exemplars, exemplars);
    assert_true(shots > 50); /* ...and almost every example finds one within 12 draws */
    hone_mixture_free(&m);

    /* the exemplars render untrained: only the example's own answer and end of turn are trained */
    static const char *const special[] = {"<|im_start|>", "<|im_end|>"};
    char *tok_path = test_write_byte_level_tokenizer(dir, special, 2);
    hone_tokenizer *tok;
    hone_chat_template *chatml;
    TEST_OK(hone_tokenizer_load(&tok, tok_path));
    TEST_OK(hone_chat_template_builtin(&chatml, "chatml"));
    build(&m, &src, 1, 9, few_shot_options);
    const hone_render_options ro = {.tokenizer = tok, .chat_template = chatml, .eos_id = -1};
    for (size_t i = 0; i < m.n; i++) {
        hone_sequence seq;
        TEST_OK(hone_render_example(&m.examples[i], &ro, &seq));
        const char *answer = m.examples[i].conversation.messages[m.examples[i].conversation.n_messages - 1].content;
        assert_int_equal(seq.n_trained, strlen(answer) + 1); /* one token per byte, plus <|im_end|> */
        hone_sequence_free(&seq);
    }
    hone_mixture_free(&m);
    hone_chat_template_free(chatml);
    hone_tokenizer_free(tok);
    free(tok_path);

    /* a budget no exemplar fits: every example stays zero-shot */
    hone_mixture_options o;
    hone_mixture_defaults(&o);
    o.sources = &src;
    o.n_sources = 1;
    o.few_shot_rate = 1;
    o.few_shot_max_chars = 30;
    TEST_OK(hone_mixture_build(&m, &o));
    for (size_t i = 0; i < m.n; i++) assert_int_equal(m.examples[i].conversation.n_messages, 2);
    assert_int_equal(m.reports[0].few_shot, 0);
    hone_mixture_free(&m);
    free(a);
    test_tmpdir_remove(dir);
    free(dir);
}

static void inversion_options(hone_mixture_options *o) { o->inversion_rate = 0.3; }

static void test_inversion(void **state) {
    (void)state;
    char *dir = test_tmpdir();
    char *a = write_alpaca(dir, "a.jsonl", "A", 1000);
    hone_mixture m;
    hone_mixture_source src = {.path = a, .few_shot_rate = -1, .inversion_rate = -1};
    build(&m, &src, 1, 11, inversion_options);
    size_t inverted = 0;
    for (size_t i = 0; i < m.n; i++) {
        const hone_message *msg = m.examples[i].conversation.messages;
        if (!strncmp(msg[0].content, HONE_INVERSION_PROMPT_HEAD, strlen(HONE_INVERSION_PROMPT_HEAD))) {
            inverted++;
            /* the prompt holds the original answer; the original instruction is the answer now */
            char want[512];
            snprintf(want, sizeof want, "%sA answer %zu", HONE_INVERSION_PROMPT_HEAD, i);
            assert_true(!strncmp(msg[0].content, want, strlen(want)));
            assert_true(strstr(msg[0].content, HONE_INVERSION_PROMPT_TAIL) != NULL);
            snprintf(want, sizeof want, "A task %zu: say it %zu times", i, i % 7);
            assert_string_equal(msg[1].content, want);
        }
    }
    assert_int_equal(m.reports[0].inverted, inverted);
    /* Binomial(1000, 0.3): mean 300, standard deviation 14.5; 4 sigma */
    assert_true(inverted > 242 && inverted < 358);
    hone_mixture_free(&m);
    free(a);
    test_tmpdir_remove(dir);
    free(dir);
}

/* ---- MinHash ---- */

/* n words drawn from a 100000-word vocabulary, so that distinct texts share almost no shingle. */
static char *random_words(hone_rng *r, size_t n, char **words) {
    const size_t cap = n * 16 + 1;
    char *text = calloc(cap, 1);
    for (size_t i = 0, len = 0; i < n; i++) {
        snprintf(words[i], 16, "w%llu", (unsigned long long)(hone_rng_u64(r) % 100000));
        len += (size_t)snprintf(text + len, cap - len, i ? " %s" : "%s", words[i]);
    }
    return text;
}

static int str_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The set of word 3-grams of a text, sorted and without repeats. */
static size_t shingle_set(const char *text, char ***out) {
    char *copy = strdup(text), *save = NULL, *w[512];
    size_t n = 0;
    for (char *t = strtok_r(copy, " ", &save); t; t = strtok_r(NULL, " ", &save)) w[n++] = t;
    char **set = calloc(n + 1, sizeof *set);
    size_t m = 0;
    for (size_t i = 0; i + 3 <= n; i++) {
        set[m] = malloc(strlen(w[i]) + strlen(w[i + 1]) + strlen(w[i + 2]) + 3);
        sprintf(set[m++], "%s %s %s", w[i], w[i + 1], w[i + 2]);
    }
    qsort(set, m, sizeof *set, str_cmp);
    size_t k = 0;
    for (size_t i = 0; i < m; i++) {
        if (k && !strcmp(set[k - 1], set[i])) free(set[i]);
        else set[k++] = set[i];
    }
    free(copy);
    *out = set;
    return k;
}

static double exact_jaccard(const char *a, const char *b) {
    char **sa, **sb;
    const size_t na = shingle_set(a, &sa), nb = shingle_set(b, &sb);
    size_t both = 0, i = 0, j = 0;
    while (i < na && j < nb) {
        const int c = strcmp(sa[i], sb[j]);
        both += c == 0;
        i += c <= 0;
        j += c >= 0;
    }
    for (size_t k = 0; k < na; k++) free(sa[k]);
    for (size_t k = 0; k < nb; k++) free(sb[k]);
    free(sa);
    free(sb);
    return (double)both / (double)(na + nb - both);
}

/* b = a with `changes` random words replaced. */
static char *variant(hone_rng *r, char **words, size_t n, size_t changes) {
    const size_t cap = n * 16 + 1;
    char *text = calloc(cap, 1);
    const char **chosen = calloc(n, sizeof *chosen);
    static const char *const fresh[] = {"x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11"};
    for (size_t i = 0; i < n; i++) chosen[i] = words[i];
    for (size_t c = 0; c < changes; c++) chosen[hone_rng_u64(r) % n] = fresh[c % 12];
    for (size_t i = 0, len = 0; i < n; i++) len += (size_t)snprintf(text + len, cap - len, i ? " %s" : "%s", chosen[i]);
    free(chosen);
    return text;
}

static void test_minhash_estimate(void **state) {
    (void)state;
    hone_minhash_params p = {.ngram = 3, .permutations = 128, .bands = 16, .threshold = 0.8, .seed = 3};
    hone_rng r = hone_rng_new(1, 2);
    char *words[80], buf[80][16];
    for (int i = 0; i < 80; i++) words[i] = buf[i];
    double sum_err = 0, sum_z2 = 0;
    size_t pairs = 0;
    uint32_t sa[128], sb[128];
    for (size_t t = 0; t < 300; t++) {
        char *a = random_words(&r, 80, words), *b = variant(&r, words, 80, 1 + t % 12);
        const double j = exact_jaccard(a, b), var = j * (1 - j) / p.permutations;
        TEST_OK(hone_minhash_signature(a, strlen(a), &p, sa));
        TEST_OK(hone_minhash_signature(b, strlen(b), &p, sb));
        const double est = hone_minhash_similarity(sa, sb, p.permutations);
        if (var > 0) {
            sum_err += est - j;
            sum_z2 += (est - j) * (est - j) / var;
            pairs++;
        }
        free(a);
        free(b);
    }
    /* unbiased: the mean error is within 4 standard errors of 0 (each error has variance <= 1/(4k)) */
    const double mean_err = sum_err / (double)pairs;
    assert_true(fabs(mean_err) < 4 * sqrt(0.25 / p.permutations / (double)pairs));
    /* and the errors have the binomial variance J(1 - J)/k: mean squared z close to 1 */
    const double z2 = sum_z2 / (double)pairs;
    if (z2 < 0.7 || z2 > 1.4) fail_msg("mean squared z of the MinHash estimate is %g, expected about 1", z2);

    /* identical texts estimate 1, texts without a common shingle 0 */
    char *a = random_words(&r, 50, words), *b = random_words(&r, 50, words);
    TEST_OK(hone_minhash_signature(a, strlen(a), &p, sa));
    TEST_OK(hone_minhash_signature(a, strlen(a), &p, sb));
    assert_true(hone_minhash_similarity(sa, sb, 128) == 1.0);
    TEST_OK(hone_minhash_signature(b, strlen(b), &p, sb));
    assert_true(exact_jaccard(a, b) == 0 && hone_minhash_similarity(sa, sb, 128) < 0.05);
    free(a);
    free(b);
}

/* Dedup over examples: near duplicates at known Jaccard are found, distinct texts and distant variants kept; exact
 * duplicates after normalisation are exact. */
static void test_dedup_marks(void **state) {
    (void)state;
    enum { BASES = 40 };
    hone_rng r = hone_rng_new(7, 8);
    char *words[80], buf[80][16];
    for (int i = 0; i < 80; i++) words[i] = buf[i];
    hone_example ex[4 * BASES + 2];
    double jacc[4 * BASES + 2];
    memset(ex, 0, sizeof ex);
    size_t n = 0;
    for (size_t t = 0; t < BASES; t++) {
        char *base = random_words(&r, 80, words);
        ex[n] = (hone_example){.kind = HONE_EXAMPLE_TEXT, .text = base};
        jacc[n++] = 0;
        ex[n] = (hone_example){.kind = HONE_EXAMPLE_TEXT, .text = variant(&r, words, 80, 1)}; /* J ~ 0.93 */
        jacc[n] = exact_jaccard(base, ex[n].text);
        n++;
        ex[n] = (hone_example){.kind = HONE_EXAMPLE_TEXT, .text = variant(&r, words, 80, 12)}; /* J ~ 0.4 */
        jacc[n] = exact_jaccard(base, ex[n].text);
        n++;
        ex[n] = (hone_example){.kind = HONE_EXAMPLE_TEXT, .text = random_words(&r, 80, words)}; /* distinct */
        jacc[n++] = 0;
    }
    ex[n++] = (hone_example){.kind = HONE_EXAMPLE_TEXT, .text = strdup("Hello,   World\n again")};
    ex[n++] = (hone_example){.kind = HONE_EXAMPLE_TEXT, .text = strdup(" hello, world AGAIN ")};
    hone_minhash_params p = {.ngram = 3, .permutations = 128, .bands = 16, .threshold = 0.8, .seed = 1};
    uint8_t marks[4 * BASES + 2];
    TEST_OK(hone_dedup_mark(ex, n, HONE_DEDUP_NEAR, &p, marks));
    for (size_t i = 0; i < 4 * BASES; i++) {
        const size_t kind = i % 4;
        if (kind == 1) {
            if (jacc[i] < 0.9) fail_msg("variant %zu has Jaccard %g, expected >= 0.9", i, jacc[i]);
            if (marks[i] != HONE_DUP_NEAR) fail_msg("variant %zu (Jaccard %.3f) is not a near duplicate", i, jacc[i]);
        } else {
            if (kind == 2 && jacc[i] > 0.6) fail_msg("distant variant %zu has Jaccard %g", i, jacc[i]);
            if (marks[i] != HONE_DUP_KEPT) fail_msg("example %zu (Jaccard %.3f) is marked %d", i, jacc[i], marks[i]);
        }
    }
    assert_int_equal(marks[n - 2], HONE_DUP_KEPT);
    assert_int_equal(marks[n - 1], HONE_DUP_EXACT);
    /* exact mode: no near duplicates; the same marks again (deterministic) */
    uint8_t again[4 * BASES + 2];
    TEST_OK(hone_dedup_mark(ex, n, HONE_DEDUP_EXACT, &p, again));
    for (size_t i = 0; i < n - 1; i++) assert_int_equal(again[i], HONE_DUP_KEPT);
    assert_int_equal(again[n - 1], HONE_DUP_EXACT);
    TEST_OK(hone_dedup_mark(ex, n, HONE_DEDUP_NEAR, &p, again));
    assert_memory_equal(marks, again, n);
    p.bands = 7;
    TEST_FAILS_WITH(hone_dedup_mark(ex, n, HONE_DEDUP_NEAR, &p, again), "bands 7");
    for (size_t i = 0; i < n; i++) free(ex[i].text);
}

static void test_length_stats(void **state) {
    (void)state;
    size_t lengths[1000];
    hone_rng r = hone_rng_new(3, 4);
    for (size_t i = 0; i < 1000; i++) lengths[i] = 10 + hone_rng_u64(&r) % 2000;
    hone_length_stats ls;
    TEST_OK(hone_length_stats_compute(lengths, 1000, 1500, &ls));
    /* against brute force: the p-th percentile is the smallest length with at least p % at or below it */
    const size_t ps[4] = {50, 90, 95, 99}, got[4] = {ls.p50, ls.p90, ls.p95, ls.p99};
    for (int k = 0; k < 4; k++) {
        size_t at_or_below = 0, below = 0;
        for (size_t i = 0; i < 1000; i++) {
            at_or_below += lengths[i] <= got[k];
            below += lengths[i] < got[k];
        }
        assert_true(at_or_below * 100 >= ps[k] * 1000 && below * 100 < ps[k] * 1000);
    }
    size_t over = 0, total = 0, binned = 0;
    for (size_t i = 0; i < 1000; i++) {
        over += lengths[i] > 1500;
        total += lengths[i];
    }
    for (int k = 0; k < HONE_LENGTH_BINS; k++) binned += ls.bins[k];
    assert_int_equal(ls.over, over);
    assert_int_equal(ls.total, total);
    assert_int_equal(binned, 1000);
    assert_int_equal(ls.bin_width, 200); /* the smallest 1/2/5 × 10^j with 16 bins past the max (< 2010) */
}

/* ---- the datasets list in settings ---- */

static const hone_key_spec list_keys[] = {
    {"datasets", HONE_KEY_RECORDS, NULL, "datasets"},
    {"seed", HONE_KEY_INT, "42", "seed"},
};
static const hone_key_spec item_keys[] = {
    {"path", HONE_KEY_STRING, NULL, ""},
    {"weight", HONE_KEY_FLOAT, NULL, ""},
    {"max_samples", HONE_KEY_INT, NULL, ""},
};

static hone_status parse_yaml(const char *dir, const char *yaml, hone_settings **s) {
    char *path = test_write_file(dir, "c.yaml", yaml, strlen(yaml));
    char *argv[] = {"--config", path};
    hone_status st = hone_settings_parse(s, list_keys, 2, 2, argv);
    free(path);
    return st;
}

static void test_records_settings(void **state) {
    (void)state;
    char *dir = test_tmpdir();
    hone_settings *s;
    const hone_settings_record *items;
    TEST_OK(parse_yaml(dir,
                       "datasets:\n  - a.json\n  - path: b.json\n    weight: 2.5\n  - {path: c.json, max_samples: 7}\n",
                       &s));
    assert_int_equal(hone_settings_records(s, "datasets", &items), 3);
    assert_string_equal(items[0].scalar, "a.json");
    assert_null(items[1].scalar);
    assert_int_equal(items[1].line, 3);
    assert_string_equal(hone_settings_record_str(&items[1], "path"), "b.json");
    for (size_t i = 0; i < 3; i++) TEST_OK(hone_settings_check_record(s, "datasets", i, item_keys, 3));
    assert_true(hone_settings_record_float(&items[1], "weight", 0) == 2.5);
    assert_int_equal(hone_settings_record_int(&items[2], "max_samples", 0), 7);
    assert_int_equal(hone_settings_record_int(&items[1], "max_samples", -1), -1);
    char *json = hone_settings_to_json(s);
    assert_non_null(strstr(json, "\"datasets\":[\"a.json\",{\"path\":\"b.json\",\"weight\":\"2.5\"}"));
    free(json);
    hone_settings_free(s);

    /* unknown and ill-typed keys inside an item: FILE:LINE, the item, did-you-mean */
    TEST_OK(parse_yaml(dir, "seed: 1\ndatasets:\n  - path: a.json\n    wieght: 2\n  - path: b.json\n    weight: x\n", &s));
    TEST_FAILS_WITH(hone_settings_check_record(s, "datasets", 0, item_keys, 3),
                    "c.yaml:4: datasets item 1: unknown key 'wieght' (did you mean 'weight'?)");
    TEST_FAILS_WITH(hone_settings_check_record(s, "datasets", 1, item_keys, 3),
                    "c.yaml:6: datasets item 2: weight: expected a number, got 'x'");
    hone_settings_free(s);
    TEST_FAILS_WITH(parse_yaml(dir, "datasets:\n  - path: a.json\n    path: b.json\n", &s),
                    "c.yaml:3: datasets item 1: duplicate key 'path' (first given on line 2)");
    TEST_FAILS_WITH(parse_yaml(dir, "datasets:\n  - path: [a, b]\n", &s), "c.yaml:2: datasets item 1: path: expected");
    TEST_FAILS_WITH(parse_yaml(dir, "datasets:\n  -\n", &s), "datasets item 1 is empty");

    /* the command line: comma-separated plain items */
    char *argv[] = {"--datasets", "x.json, y.json"};
    TEST_OK(hone_settings_parse(&s, list_keys, 2, 2, argv));
    assert_int_equal(hone_settings_records(s, "datasets", &items), 2);
    assert_string_equal(items[1].scalar, "y.json");
    assert_int_equal(items[1].line, 0);
    hone_settings_free(s);
    test_tmpdir_remove(dir);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_weights_and_caps), cmocka_unit_test(test_seeded_subsets),
        cmocka_unit_test(test_few_shot),         cmocka_unit_test(test_inversion),
        cmocka_unit_test(test_minhash_estimate), cmocka_unit_test(test_dedup_marks),
        cmocka_unit_test(test_length_stats),     cmocka_unit_test(test_records_settings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
