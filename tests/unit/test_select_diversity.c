/* Selection beyond the IFD cut (src/select): greedy facility location against a brute-force greedy that evaluates
 * the objective from scratch, duplicates (the best-scored copy stays), K-means on hand-made clusters, Cherry's
 * per-cluster percentile sampling on hand-made numbers (numpy's percentiles), the prompt perplexity against the
 * IFD scorer (itself checked against PyTorch in test_select), and the HTML report. */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hone/select.h"
#include "select/select_internal.h"
#include "testutil.h"

/* ---- facility location ---- */

/* F(S) = sum over i of max(0, max over j in S of cos(x_i, x_j)), from scratch. */
static double objective(const float *x, size_t n, size_t dim, const size_t *set, size_t m) {
    double f = 0;
    for (size_t i = 0; i < n; i++) {
        double best = 0;
        for (size_t s = 0; s < m; s++) {
            const float *a = x + i * dim, *b = x + set[s] * dim;
            double ab = 0, aa = 0, bb = 0;
            for (size_t d = 0; d < dim; d++) {
                ab += (double)a[d] * b[d];
                aa += (double)a[d] * a[d];
                bb += (double)b[d] * b[d];
            }
            const double c = aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : 0;
            best = c > best ? c : best;
        }
        f += best;
    }
    return f;
}

static void test_facility_location_brute_force(void **state) {
    (void)state;
    enum { N = 40, D = 6, K = 15 };
    float x[N * D];
    hone_rng rng = hone_rng_new(7, 1);
    hone_rng_fill_normal(&rng, x, N * D, 1.0f);
    memset(x + 30 * D, 0, D * sizeof *x); /* a zero row: similar to nothing */
    size_t chosen[K], want[K];
    double gains[K];
    TEST_OK(hone_facility_location(x, N, D, K, chosen, gains));
    int taken[N] = {0};
    double f_prev = 0;
    for (size_t t = 0; t < K; t++) {
        double best = -1;
        size_t best_j = 0;
        for (size_t j = 0; j < N; j++) {
            if (taken[j]) continue;
            want[t] = j;
            const double f = objective(x, N, D, want, t + 1);
            if (f > best) { /* strictly better: ties keep the lower index */
                best = f;
                best_j = j;
            }
        }
        want[t] = best_j;
        taken[want[t]] = 1;
        assert_int_equal(chosen[t], want[t]);
        assert_true(gains[t] >= 0);
        assert_true(best >= f_prev); /* F grows monotonically */
        assert_true(fabs((best - f_prev) - gains[t]) <= 1e-5); /* rows normalised in fp32 */
        f_prev = best;
    }
    /* ties: axis vectors (exact similarities 0 and 1) with twins; equal gains go to the lower index */
    const float axes[5 * 2] = {0, 1, 1, 0, 0, 1, 1, 0, 0, 2};
    size_t tie[2];
    TEST_OK(hone_facility_location(axes, 5, 2, 2, tie, gains));
    assert_int_equal(tie[0], 0); /* rows 0, 2, 4 (all e2) gain 3, rows 1 and 3 gain 2 */
    assert_int_equal(tie[1], 1);
    assert_true(gains[0] == 3 && gains[1] == 2);
    /* k beyond n stops at n; all chosen once */
    size_t all[N + 5];
    TEST_OK(hone_facility_location(x, N, D, N + 5, all, NULL));
    int seen[N] = {0};
    for (size_t t = 0; t < N; t++) seen[all[t]]++;
    for (size_t j = 0; j < N; j++) assert_int_equal(seen[j], 1);
}

/* hone_select_ifd with facility_location: the ground set is the examples within the top_fraction cut. */
static void test_select_facility_location(void **state) {
    (void)state;
    enum { N = 20, D = 4 };
    float x[N * D];
    double ifd[N];
    hone_rng rng = hone_rng_new(3, 2);
    hone_rng_fill_normal(&rng, x, N * D, 1.0f);
    for (int i = 0; i < N; i++) ifd[i] = 0.05 * ((i * 7) % N); /* distinct, in [0, 0.95] */
    ifd[2] = 1.5;                                             /* over max_ifd */
    hone_select_options o = {.max_ifd = 1, .top_fraction = 0.5, .facility_location = 3, .embeddings = x, .dim = D};
    hone_select_decision d[N];
    TEST_OK(hone_select_ifd(ifd, NULL, N, &o, d));
    /* the ground set: the 10 highest ifd below 1, in rank order */
    size_t pool[10], m = 0;
    for (int r = 1; r <= N; r++)
        for (int i = 0; i < N; i++)
            if (d[i].rank == (size_t)r && r <= 10) pool[m++] = (size_t)i;
    assert_int_equal(m, 10);
    float px[10 * D];
    for (size_t r = 0; r < m; r++) memcpy(px + r * D, x + pool[r] * D, D * sizeof *px);
    size_t chosen[3];
    TEST_OK(hone_facility_location(px, m, D, 3, chosen, NULL));
    size_t kept = 0;
    for (int i = 0; i < N; i++) {
        int in_pool = -1, picked = 0;
        for (size_t r = 0; r < m; r++) in_pool = pool[r] == (size_t)i ? (int)r : in_pool;
        for (int t = 0; t < 3 && in_pool >= 0; t++) picked |= chosen[t] == (size_t)in_pool;
        const hone_select_reason want = i == 2       ? HONE_SELECT_IFD_TOO_HIGH
                                        : in_pool < 0 ? HONE_SELECT_BELOW_CUT
                                        : picked      ? HONE_SELECT_KEPT
                                                      : HONE_SELECT_NOT_CHOSEN_BY_FACILITY_LOCATION;
        assert_int_equal(d[i].reason, want);
        kept += d[i].reason == HONE_SELECT_KEPT;
    }
    assert_int_equal(kept, 3);
    /* a fraction of all examples: round(0.1 × 20) = 2 */
    o.facility_location = 0.1;
    TEST_OK(hone_select_ifd(ifd, NULL, N, &o, d));
    kept = 0;
    for (int i = 0; i < N; i++) kept += d[i].reason == HONE_SELECT_KEPT;
    assert_int_equal(kept, 2);
    o.max_similarity = 0.9;
    TEST_FAILS_WITH(hone_select_ifd(ifd, NULL, N, &o, d), "not both");
}

/* ---- duplicates ---- */

static void test_select_duplicates(void **state) {
    (void)state;
    const char *raw[] = {
        "the quick brown fox jumps over the lazy dog near the river bank today", /* 0 */
        "a completely different sentence about cooking pasta with garlic",      /* 1 */
        "the quick brown fox jumps over the lazy dog near the river bank today", /* 2: exact twin of 0 */
        "the quick brown fox jumps over the lazy dog near the river bank toda",  /* 3: near twin of 0 and 2 */
        "yet another unrelated line on astronomy and the moons of jupiter",      /* 4 */
    };
    const double ifd[] = {0.5, 0.9, 0.7, 0.3, 0.8};
    size_t lens[5];
    for (int i = 0; i < 5; i++) lens[i] = strlen(raw[i]);
    hone_mixture_options mo;
    hone_mixture_defaults(&mo);
    hone_select_options o = {.max_ifd = 1, .top_k = 3, .dedup = HONE_DEDUP_EXACT, .minhash = mo.minhash,
                             .texts = raw, .text_lens = lens};
    o.minhash.threshold = 0.7;
    hone_select_decision d[5];
    TEST_OK(hone_select_ifd(ifd, NULL, 5, &o, d));
    /* ranks: 1 (0.9), 4 (0.8), 2 (0.7), 0 (0.5), 3 (0.3): 2 is the better-scored copy, 0 its duplicate */
    assert_int_equal(d[0].reason, HONE_SELECT_DUPLICATE);
    assert_int_equal(d[0].duplicate_of, 2);
    assert_true(d[0].similarity == 1);
    assert_int_equal(d[2].reason, HONE_SELECT_KEPT);
    assert_int_equal(d[3].reason, HONE_SELECT_BELOW_CUT); /* exact mode: 3 differs; the cap of 3 is 1, 4, 2 */
    o.dedup = HONE_DEDUP_NEAR;
    o.top_k = 0;
    TEST_OK(hone_select_ifd(ifd, NULL, 5, &o, d));
    assert_int_equal(d[3].reason, HONE_SELECT_DUPLICATE);
    assert_int_equal(d[3].duplicate_of, 2);
    assert_true(d[3].similarity >= 0.7 && d[3].similarity < 1);
    for (int i = 0; i < 5; i++)
        if (i != 0 && i != 3) assert_int_equal(d[i].reason, HONE_SELECT_KEPT);
    /* duplicates take no place in the cap: with top_k 3, the three distinct texts are kept */
    o.top_k = 3;
    TEST_OK(hone_select_ifd(ifd, NULL, 5, &o, d));
    assert_int_equal(d[1].reason + d[4].reason + d[2].reason, HONE_SELECT_KEPT);
    o.texts = NULL;
    TEST_FAILS_WITH(hone_select_ifd(ifd, NULL, 5, &o, d), "texts");
}

/* ---- K-means and Cherry's sampling ---- */

static void test_kmeans_known_clusters(void **state) {
    (void)state;
    /* three tight blobs around (0, 0), (10, 0) and (0, 10), ten points each, interleaved in file order */
    enum { N = 30 };
    float x[N * 2];
    hone_rng rng = hone_rng_new(11, 3);
    const float centre[3][2] = {{0, 0}, {10, 0}, {0, 10}};
    for (int i = 0; i < N; i++) {
        x[2 * i] = centre[i % 3][0] + 0.5f * hone_rng_normal(&rng);
        x[2 * i + 1] = centre[i % 3][1] + 0.5f * hone_rng_normal(&rng);
    }
    uint32_t labels[N], again[N];
    float c[3 * 2];
    hone_kmeans_info info;
    for (uint64_t seed = 1; seed <= 5; seed++) {
        TEST_OK(hone_kmeans(x, N, 2, 3, seed, 0, labels, c, &info));
        assert_true(info.converged);
        for (int i = 3; i < N; i++) assert_int_equal(labels[i], labels[i % 3]); /* the blobs, whatever the names */
        assert_true(labels[0] != labels[1] && labels[1] != labels[2] && labels[0] != labels[2]);
        for (int b = 0; b < 3; b++) { /* each centre is its blob's mean */
            double mx = 0, my = 0;
            for (int i = b; i < N; i += 3) mx += x[2 * i], my += x[2 * i + 1];
            assert_true(fabs(c[2 * labels[b]] - mx / 10) < 1e-5 && fabs(c[2 * labels[b] + 1] - my / 10) < 1e-5);
        }
        TEST_OK(hone_kmeans(x, N, 2, 3, seed, 0, again, NULL, &info));
        assert_memory_equal(labels, again, sizeof labels);
    }
    /* as many clusters as points, two of them equal: every label valid, the run ends */
    const float dup[] = {1, 1, 1, 1, 5, 5, 9, 9};
    uint32_t l4[4];
    TEST_OK(hone_kmeans(dup, 4, 2, 4, 1, 50, l4, NULL, &info));
    for (int i = 0; i < 4; i++) assert_true(l4[i] < 4);
    assert_int_equal(l4[0], l4[1]);
    TEST_FAILS_WITH(hone_kmeans(x, N, 2, N + 1, 1, 0, labels, NULL, &info), "clusters");
}

static void test_cherry_pick(void **state) {
    (void)state;
    /* cluster 0: 3 members (< per_cluster 4: all); cluster 1: 12 members, ppl percentiles 3.75 .. 9.25 (numpy),
     * middle 5, 9, 7, 8, 4, 6 in file order, step 6 / 4 = 1: 5, 9, 7, 8; cluster 2: ppl 1 .. 20 in order,
     * percentiles 5.75 .. 15.25, middle 6 .. 15, step 10 / 4 = 2: 6, 8, 10, 12; cluster 3: empty */
    const double ppl1[] = {5, 1, 9, 3, 7, 2, 8, 4, 6, 10, 11, 12};
    uint32_t labels[35];
    double ppl[35];
    size_t at1 = 0, at2 = 0;
    for (int i = 0; i < 35; i++) {
        labels[i] = i % 12 == 0 ? 0 : (i % 3 == 1 && at1 < 12) ? 1 : 2;
        if (labels[i] == 1) ppl[i] = ppl1[at1++];
        else if (labels[i] == 2) ppl[i] = (double)++at2;
        else ppl[i] = 100;
    }
    assert_int_equal(at1, 12);
    assert_int_equal(at2, 20);
    uint8_t picked[35];
    size_t n_picked;
    TEST_OK(hone_cherry_pick(labels, ppl, 35, 4, 25, 75, 4, picked, &n_picked));
    assert_int_equal(n_picked, 11);
    double got1[4], got2[4];
    size_t g1 = 0, g2 = 0, g0 = 0;
    for (int i = 0; i < 35; i++) {
        if (!picked[i]) continue;
        if (labels[i] == 0) g0++;
        if (labels[i] == 1) got1[g1++] = ppl[i];
        if (labels[i] == 2) got2[g2++] = ppl[i];
    }
    assert_int_equal(g0, 3);
    assert_int_equal(g1, 4);
    assert_int_equal(g2, 4);
    const double want1[] = {5, 9, 7, 8}, want2[] = {6, 8, 10, 12};
    assert_memory_equal(got1, want1, sizeof want1);
    assert_memory_equal(got2, want2, sizeof want2);
    TEST_FAILS_WITH(hone_cherry_pick(labels, ppl, 35, 4, 80, 20, 4, picked, &n_picked), "percentiles");
}

/* The perplexity of a whole sequence is exp of the mean NLL of its tokens after the first: what the IFD scorer
 * gives as loss_cond for prompt = the first token, answer = the rest. */
static void test_prompt_perplexity(void **state) {
    (void)state;
    hone_model *m;
    TEST_OK(hone_model_load(&m, "tests/fixtures/llama"));
    const int32_t a[] = {3, 9, 27, 1, 4}, b[] = {5, 8}, c[] = {7, 7, 7, 2, 6, 1, 9, 4, 3};
    const int32_t *ids[] = {a, b, c};
    const size_t lens[] = {5, 2, 9};
    const size_t C = (size_t)hone_model_get_config(m)->hidden_size;
    float *emb = malloc(3 * C * sizeof *emb);
    double ppl[3];
    TEST_OK(select_embed_ppl(m, ids, lens, 3, 12, 2, emb, ppl));
    for (int i = 0; i < 3; i++) {
        const hone_ifd_input in = {ids[i], ids[i] + 1, 1, lens[i] - 1};
        hone_ifd_score sc;
        TEST_OK(hone_score_ifd(m, &in, 1, 12, 1, 0, &sc));
        assert_true(fabs(ppl[i] - exp(sc.loss_cond)) <= 1e-6 * ppl[i]);
    }
    free(emb);
    hone_model_free(m);
}

/* ---- report ---- */

static void test_report(void **state) {
    (void)state;
    char *dir = test_tmpdir();
    const char scores[] = "{\"index\":0,\"instruction\":\"<b>bold</b> & co\",\"input\":\"\",\"output\":\"x\","
                          "\"ifd\":0.5}\n"
                          "{\"index\":1,\"instruction\":\"two\",\"input\":\"in\",\"output\":\"y\",\"ifd\":1.5}\n"
                          "{\"index\":2,\"messages\":[{\"role\":\"user\",\"content\":\"m\"}],\"ifd\":null}\n";
    const char decisions[] = "{\"index\":0,\"selected\":true,\"reason\":\"kept\"}\n"
                             "{\"index\":1,\"selected\":false,\"reason\":\"ifd_too_high\"}\n"
                             "{\"index\":2,\"selected\":false,\"reason\":\"not_scored\"}\n";
    char *sp = test_write_file(dir, "s.jsonl", scores, strlen(scores));
    char *dp = test_write_file(dir, "d.jsonl", decisions, strlen(decisions));
    char *out = hone_path_join(dir, "r.html");
    TEST_OK(hone_select_report_write(out, sp, dp, 10, NULL, 0));
    char *html;
    size_t size;
    TEST_OK(hone_file_read(out, &html, &size));
    assert_non_null(strstr(html, "&lt;b&gt;bold&lt;/b&gt; &amp; co"));
    assert_null(strstr(html, "<b>bold"));
    assert_null(strstr(html, "<script"));
    assert_non_null(strstr(html, "<tr><th>ifd_too_high</th><td>1</td></tr>"));
    assert_non_null(strstr(html, "<tr><th>kept</th><td>1</td></tr>"));
    size_t svgs = 0;
    for (const char *p = html; (p = strstr(p, "<svg")); p++) svgs++;
    assert_int_equal(svgs, 2); /* ifd of all, ifd of kept; no rifd */
    free(html);
    const char short_decisions[] = "{\"index\":0,\"selected\":true,\"reason\":\"kept\"}\n";
    char *dp2 = test_write_file(dir, "d2.jsonl", short_decisions, strlen(short_decisions));
    TEST_FAILS_WITH(hone_select_report_write(out, sp, dp2, 10, NULL, 0), "not the decisions of these scores");
    free(sp);
    free(dp);
    free(dp2);
    free(out);
    test_tmpdir_remove(dir);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_facility_location_brute_force),
        cmocka_unit_test(test_select_facility_location),
        cmocka_unit_test(test_select_duplicates),
        cmocka_unit_test(test_kmeans_known_clusters),
        cmocka_unit_test(test_cherry_pick),
        cmocka_unit_test(test_prompt_perplexity),
        cmocka_unit_test(test_report),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
