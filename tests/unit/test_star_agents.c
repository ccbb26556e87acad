/* Star-Agents on numbers (hone/star_agents.h, ALGORITHMS.md §3): the evolution of p, the seeded draws of pairs
 * (their frequencies against the probabilities of sampling without replacement), the memory bank, and the
 * candidate scores with the cases of the rule (a negative gap, no positive gap, missing IFDs, judges of 0). */
#include <math.h>
#include <string.h>

#include "hone/star_agents.h"
#include "testutil.h"

static void test_update_adds_beta_times_score_then_renormalises(void **state) {
    (void)state;
    double p[4];
    hone_star_init(p, 4);
    for (int i = 0; i < 4; i++) assert_true(p[i] == 0.25);
    hone_star_update(p, 4, 2, 0.5, 0.8); /* 0.25 + 0.4 = 0.65, total 1.4 */
    const double want[4] = {0.25 / 1.4, 0.25 / 1.4, 0.65 / 1.4, 0.25 / 1.4};
    double total = 0;
    for (int i = 0; i < 4; i++) {
        assert_true(fabs(p[i] - want[i]) < 1e-15);
        total += p[i];
    }
    assert_true(fabs(total - 1) < 1e-15);
    hone_star_update(p, 4, 0, 0.5, 0); /* a score of 0 changes nothing */
    for (int i = 0; i < 4; i++) assert_true(fabs(p[i] - want[i]) < 1e-15);
}

static void test_draw_is_distinct_seeded_and_skips_taken(void **state) {
    (void)state;
    const double p[5] = {0.1, 0.2, 0.0, 0.3, 0.4};
    unsigned char taken[5] = {0, 0, 0, 1, 0}, again[5];
    memcpy(again, taken, sizeof again);
    size_t out[5], out2[5];
    /* pair 2 has p = 0 and pair 3 is taken: three pairs remain, however many are asked for */
    const size_t n = hone_star_draw(p, 5, 5, 7, 3, taken, out);
    assert_int_equal(n, 3);
    const size_t n2 = hone_star_draw(p, 5, 5, 7, 3, again, out2);
    assert_int_equal(n2, 3);
    assert_memory_equal(out, out2, n * sizeof *out);
    for (size_t i = 0; i < n; i++) {
        assert_true(out[i] != 2 && out[i] != 3);
        for (size_t j = 0; j < i; j++) assert_true(out[i] != out[j]);
    }
    assert_memory_equal(taken, ((unsigned char[5]){1, 1, 0, 1, 1}), 5);
    /* other seeds, other orders: 64 seed indices do not all draw the same first pair */
    int firsts[5] = {0};
    for (size_t s = 0; s < 64; s++) {
        unsigned char t[5] = {0};
        hone_star_draw(p, 5, 1, 7, s, t, out);
        firsts[out[0]]++;
    }
    assert_int_equal(firsts[2], 0);
    assert_true(firsts[4] < 64 && firsts[4] > 0);
}

/* Without replacement: P(first a, then b) = p_a · p_b / (1 − p_a). */
static void test_draw_frequencies_follow_p(void **state) {
    (void)state;
    const double p[3] = {0.5, 0.3, 0.2};
    const int N = 20000;
    int count[3][3] = {{0}};
    for (int s = 0; s < N; s++) {
        unsigned char taken[3] = {0};
        size_t out[2];
        assert_int_equal(hone_star_draw(p, 3, 2, 11, (size_t)s, taken, out), 2);
        count[out[0]][out[1]]++;
    }
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++) {
            const double want = a == b ? 0 : p[a] * p[b] / (1 - p[a]), got = (double)count[a][b] / N;
            if (fabs(got - want) > 0.015) fail_msg("P(%d then %d) = %.4f, expected %.4f", a, b, got, want);
        }
}

static void test_memory_pairs_follow_similarity(void **state) {
    (void)state;
    /* seeds 0..3 in 2-D; seed 4 is the one being processed, closest to seed 2, then 0, then 3, then 1 */
    float e[5 * 2] = {1, 0.2f, -1, 0, 3, 2.5f, 0, -1, 1, 1};
    hone_star_normalize(e, 5, 2);
    assert_true(fabsf(e[4] * e[4] + e[5] * e[5] - 1) < 1e-6f);
    const size_t winner_of[4] = {5, 6, 7, HONE_STAR_KEEP_SEED};
    unsigned char taken[8] = {0};
    size_t out[4];
    assert_int_equal(hone_star_memory_pairs(e, 2, 4, winner_of, 2, taken, out), 2);
    assert_int_equal(out[0], 7);
    assert_int_equal(out[1], 5);
    /* a pair already taken (a base pair) is skipped; seed 3 kept the seed and brings none */
    memset(taken, 0, sizeof taken);
    taken[7] = 1;
    assert_int_equal(hone_star_memory_pairs(e, 2, 4, winner_of, 3, taken, out), 2);
    assert_int_equal(out[0], 5);
    assert_int_equal(out[1], 6);
    assert_int_equal(hone_star_memory_pairs(e, 2, 0, winner_of, 3, taken, out), 0); /* no earlier seed */
}

static void score_case(hone_star_candidate *c, size_t n, size_t want_winner, const double *want_dual,
                       const double *want_score) {
    const size_t w = hone_star_score(c, n);
    if (w != want_winner) fail_msg("winner %zu, expected %zu", w, want_winner);
    for (size_t i = 0; i < n; i++) {
        if (isnan(want_dual[i])) {
            assert_true(isnan(c[i].dual) && isnan(c[i].score));
            continue;
        }
        if (fabs(c[i].dual - want_dual[i]) > 1e-12 || fabs(c[i].score - want_score[i]) > 1e-12)
            fail_msg("candidate %zu: dual %g score %g, expected %g and %g", i, c[i].dual, c[i].score, want_dual[i],
                     want_score[i]);
    }
}

static void test_score_cases(void **state) {
    (void)state;
    /* gaps 0.5, 0.25, -0.125 (exact in binary, so that equal scores are equal): π_dual 1, 0.5, -0.25 */
    hone_star_candidate a[3] = {{.ifd_small = 0.75, .ifd_large = 0.25, .judge = 1},
                                {.ifd_small = 0.5, .ifd_large = 0.25, .judge = 1},
                                {.ifd_small = 0.5, .ifd_large = 0.625, .judge = 1}};
    score_case(a, 3, 0, (double[]){1, 0.5, -0.25}, (double[]){1, 0.5, -0.25});
    assert_true(a[2].gap == -0.125);
    /* the judge moves the choice: worse than the seed scores 0 whatever the gap */
    a[0].judge = 0;
    a[2].judge = 0.5;
    score_case(a, 3, 1, (double[]){1, 0.5, -0.25}, (double[]){0, 0.5, -0.125});
    /* equal scores: the first candidate wins */
    a[0].judge = 0.5;
    score_case(a, 3, 0, (double[]){1, 0.5, -0.25}, (double[]){0.5, 0.5, -0.125});
    /* no gap above 0: every π_dual is 0 and the seed is kept */
    hone_star_candidate b[2] = {{.ifd_small = 0.5, .ifd_large = 0.5, .judge = 1},
                                {.ifd_small = 0.4, .ifd_large = 0.6, .judge = 1}};
    score_case(b, 2, HONE_STAR_KEEP_SEED, (double[]){0, 0}, (double[]){0, 0});
    /* a candidate without an IFD cannot win and does not set the scale */
    hone_star_candidate c[3] = {{.ifd_small = NAN, .ifd_large = 0.1, .judge = 1},
                                {.ifd_small = 0.8, .ifd_large = 0.6, .judge = 1},
                                {.ifd_small = 0.9, .ifd_large = NAN, .judge = 1}};
    score_case(c, 3, 1, (double[]){NAN, 1, NAN}, (double[]){NAN, 1, NAN});
    /* every judge says worse: the seed is kept */
    c[1].judge = 0;
    score_case(c, 3, HONE_STAR_KEEP_SEED, (double[]){NAN, 1, NAN}, (double[]){NAN, 0, NAN});
    assert_true(hone_star_score(NULL, 0) == HONE_STAR_KEEP_SEED);
}

/* The report reads the log back: what is not a Star-Agents log is an error naming the file and line. */
static void test_report_rejects_other_files(void **state) {
    (void)state;
    char *dir = test_tmpdir();
    const char *not_json = "{\"star_agents\": {\"pairs\": [\"a/b\"]}}\n{\"seed\": 0, \"p\": [1]\n";
    const char *no_pairs = "{\"index\": 0, \"ifd\": 0.5}\n";
    const char *short_p = "{\"star_agents\": {\"pairs\": [\"a/b\", \"a/c\"]}}\n{\"seed\": 0, \"p\": [1]}\n";
    char *bad = test_write_file(dir, "bad.jsonl", not_json, strlen(not_json));
    char *other = test_write_file(dir, "scores.jsonl", no_pairs, strlen(no_pairs));
    char *mismatch = test_write_file(dir, "short.jsonl", short_p, strlen(short_p));
    char *html = test_write_file(dir, "r.html", "", 0);
    TEST_FAILS_WITH(hone_star_report_write(html, bad), "bad.jsonl:2: not a JSON object");
    TEST_FAILS_WITH(hone_star_report_write(html, other), "not a Star-Agents log");
    TEST_FAILS_WITH(hone_star_report_write(html, mismatch), "short.jsonl:2: \"p\" does not hold one probability");
    const char *good = "{\"star_agents\": {\"pairs\": [\"a/b\", \"a/c\"]}}\n"
                       "{\"seed\": 0, \"kept_pair_index\": 1, \"p\": [0.4, 0.6]}\n";
    char *log = test_write_file(dir, "star.jsonl", good, strlen(good));
    TEST_OK(hone_star_report_write(html, log));
    free(bad);
    free(other);
    free(mismatch);
    free(html);
    free(log);
    test_tmpdir_remove(dir);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_update_adds_beta_times_score_then_renormalises),
        cmocka_unit_test(test_draw_is_distinct_seeded_and_skips_taken),
        cmocka_unit_test(test_draw_frequencies_follow_p),
        cmocka_unit_test(test_memory_pairs_follow_similarity),
        cmocka_unit_test(test_score_cases),
        cmocka_unit_test(test_report_rejects_other_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
