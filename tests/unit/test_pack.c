/* Sample packing (src/data/pack.c): every sample lands in exactly one row, whole, with positions restarting at 0
 * and targets shifted inside it; rows hold what a brute-force best-fit decreasing packs; padding and over-long
 * samples are handled and counted as documented. */
#include <stdlib.h>
#include <string.h>

#include "hone/pack.h"
#include "testutil.h"

#define IGNORE (-100)

static hone_sequence *random_sequences(size_t n, int max_len, uint64_t seed) {
    hone_sequence *s = calloc(n, sizeof *s);
    hone_rng rng = hone_rng_new(seed, 1);
    for (size_t i = 0; i < n; i++) {
        s[i].n = 1 + hone_rng_u64(&rng) % (uint64_t)max_len;
        s[i].input_ids = malloc(s[i].n * sizeof(int32_t));
        s[i].labels = malloc(s[i].n * sizeof(int32_t));
        for (size_t t = 0; t < s[i].n; t++) {
            s[i].input_ids[t] = (int32_t)(i * 1000 + t); /* sample and position readable from the id */
            s[i].labels[t] = hone_rng_u64(&rng) % 3 ? s[i].input_ids[t] : IGNORE;
        }
    }
    return s;
}

static void free_sequences(hone_sequence *s, size_t n) {
    for (size_t i = 0; i < n; i++) hone_sequence_free(&s[i]);
    free(s);
}

static int trains(const hone_sequence *s, size_t len) {
    for (size_t t = 1; t < len; t++)
        if (s->labels[t] != IGNORE) return 1;
    return 0;
}

static int cmp_int_desc(const void *a, const void *b) { return *(const int *)b - *(const int *)a; }

/* Row fills of best-fit decreasing, the slow obvious way (the multiset of fills does not depend on ties). */
static int *reference_fills(const int *len, size_t n, int L, size_t *rows) {
    int *sorted = malloc((n ? n : 1) * sizeof *sorted), *fill = calloc(n ? n : 1, sizeof *fill);
    memcpy(sorted, len, n * sizeof *len);
    qsort(sorted, n, sizeof *sorted, cmp_int_desc);
    *rows = 0;
    for (size_t k = 0; k < n; k++) {
        size_t best = SIZE_MAX;
        for (size_t r = 0; r < *rows; r++)
            if (L - fill[r] >= sorted[k] && (best == SIZE_MAX || fill[r] > fill[best])) best = r;
        if (best == SIZE_MAX) best = (*rows)++;
        fill[best] += sorted[k];
    }
    free(sorted);
    qsort(fill, *rows, sizeof *fill, cmp_int_desc);
    return fill;
}

static void check_packing(size_t n, int L, int max_len, hone_truncation trunc, uint64_t seed) {
    hone_sequence *s = random_sequences(n, max_len, seed);
    hone_pack_options o = {.sequence_len = L, .sample_packing = 1, .truncation = trunc, .pad_id = 7};
    hone_packed p;
    TEST_OK(hone_pack(s, n, &o, &p));
    /* which samples must be there, with how many tokens */
    int *want_len = calloc(n, sizeof *want_len), *kept_len = malloc(n * sizeof *kept_len);
    size_t kept = 0, dropped = 0, truncated = 0, empty = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = s[i].n;
        if (len > (size_t)L) {
            if (trunc == HONE_TRUNCATE_DROP) {
                dropped++;
                continue;
            }
            truncated++;
            len = (size_t)L;
        }
        if (!trains(&s[i], len)) {
            empty++;
            continue;
        }
        want_len[i] = (int)len;
        kept_len[kept++] = (int)len;
    }
    assert_int_equal(p.n_dropped, dropped);
    assert_int_equal(p.n_truncated, truncated);
    assert_int_equal(p.n_empty, empty);
    assert_int_equal(p.n_samples, kept);
    /* walk the rows: each sample starts at a position 0 and is whole */
    int *seen = calloc(n, sizeof *seen);
    int *fills = malloc((p.n_rows ? p.n_rows : 1) * sizeof *fills);
    for (size_t r = 0; r < p.n_rows; r++) {
        const int32_t *ids = p.ids + r * (size_t)L, *lab = p.labels + r * (size_t)L, *pos = p.pos + r * (size_t)L;
        assert_true(p.used[r] > 0 && p.used[r] <= L);
        fills[r] = p.used[r];
        for (int t = 0; t < p.used[r];) {
            assert_int_equal(pos[t], 0);
            const size_t i = (size_t)ids[t] / 1000;
            assert_true(i < n && want_len[i] && !seen[i]);
            seen[i] = 1;
            for (int k = 0; k < want_len[i]; k++) {
                assert_int_equal(ids[t + k], s[i].input_ids[k]);
                assert_int_equal(pos[t + k], k);
                assert_int_equal(lab[t + k], k + 1 < want_len[i] ? s[i].labels[k + 1] : IGNORE);
            }
            t += want_len[i];
        }
        for (int t = p.used[r]; t < L; t++) {
            assert_int_equal(ids[t], 7);
            assert_int_equal(lab[t], IGNORE);
            assert_int_equal(pos[t], pos[t - 1] + 1);
        }
    }
    for (size_t i = 0; i < n; i++) assert_int_equal(seen[i], want_len[i] != 0);
    size_t ref_rows;
    int *ref = reference_fills(kept_len, kept, L, &ref_rows);
    assert_int_equal(p.n_rows, ref_rows);
    qsort(fills, p.n_rows, sizeof *fills, cmp_int_desc);
    assert_memory_equal(fills, ref, ref_rows * sizeof *ref);
    free(ref);
    free(fills);
    free(seen);
    free(want_len);
    free(kept_len);
    hone_packed_free(&p);
    free_sequences(s, n);
}

static void test_best_fit_decreasing(void **state) {
    (void)state;
    check_packing(1, 8, 6, HONE_TRUNCATE_DROP, 1);
    check_packing(200, 64, 50, HONE_TRUNCATE_DROP, 2);
    check_packing(500, 128, 160, HONE_TRUNCATE_DROP, 3);
    check_packing(500, 128, 160, HONE_TRUNCATE_CUT, 4);
    check_packing(2000, 1000, 300, HONE_TRUNCATE_DROP, 5);
}

/* Without packing: one sample per row, in input order, right-padded. */
static void test_padded_rows(void **state) {
    (void)state;
    hone_sequence *s = random_sequences(50, 40, 9);
    if (s[3].n > 1) s[3].labels[1] = 5; /* make sure sample 3 trains something (random lengths may be 1) */
    hone_pack_options o = {.sequence_len = 32, .sample_packing = 0, .truncation = HONE_TRUNCATE_CUT, .pad_id = 0};
    hone_packed p;
    TEST_OK(hone_pack(s, 50, &o, &p));
    size_t r = 0;
    for (size_t i = 0; i < 50; i++) {
        size_t len = s[i].n > 32 ? 32 : s[i].n;
        if (!trains(&s[i], len)) continue;
        assert_int_equal(p.used[r], len);
        assert_int_equal(p.ids[r * 32], s[i].input_ids[0]);
        r++;
    }
    assert_int_equal(p.n_rows, r);
    hone_packed_free(&p);
    o.sequence_len = 1;
    TEST_FAILS_WITH(hone_pack(s, 50, &o, &p), "sequence_len must be at least 2");
    free_sequences(s, 50);
    hone_truncation t;
    TEST_FAILS_WITH(hone_truncation_parse("cut", &t), "expected drop or truncate");
}

/* Prompt tuning: virtual_tokens placeholders (pad_id, never a target) open every sample and count in its length;
 * the last placeholder predicts the sample's first label, as PEFT's concatenated labels do. */
static void check_virtual_tokens(int packing) {
    enum { NV = 3, L = 12, N = 40 };
    hone_sequence *s = random_sequences(N, 12, 21 + (uint64_t)packing);
    for (size_t i = 0; i < N; i++) s[i].labels[0] = s[i].input_ids[0];
    hone_pack_options o = {.sequence_len = L, .sample_packing = packing, .truncation = HONE_TRUNCATE_DROP,
                           .pad_id = 7, .virtual_tokens = NV};
    hone_packed p;
    TEST_OK(hone_pack(s, N, &o, &p));
    size_t placed = 0, dropped = 0, tokens = 0;
    for (size_t i = 0; i < N; i++) {
        if (s[i].n + NV > L) {
            assert_int_equal(p.sample_at[i], -1);
            dropped++;
            continue;
        }
        assert_true(p.sample_at[i] >= 0); /* the first label always trains here */
        const int32_t *ids = p.ids + p.sample_at[i], *lab = p.labels + p.sample_at[i], *pos = p.pos + p.sample_at[i];
        const int len = (int)s[i].n + NV;
        for (int t = 0; t < len; t++) {
            assert_int_equal(pos[t], t);
            assert_int_equal(ids[t], t < NV ? 7 : s[i].input_ids[t - NV]);
            const int32_t want = t + 1 == len ? IGNORE : t + 1 < NV ? IGNORE : s[i].labels[t + 1 - NV];
            assert_int_equal(lab[t], want);
        }
        placed++;
        tokens += (size_t)len;
    }
    assert_int_equal(p.n_samples, placed);
    assert_int_equal(p.n_dropped, dropped);
    assert_int_equal(p.n_tokens, tokens);
    hone_packed_free(&p);
    /* cut instead of dropped: the placeholders stay, the tail goes */
    o.truncation = HONE_TRUNCATE_CUT;
    TEST_OK(hone_pack(s, N, &o, &p));
    for (size_t i = 0; i < N; i++) {
        assert_true(p.sample_at[i] >= 0);
        assert_int_equal(p.ids[p.sample_at[i] + NV - 1], 7);
        assert_int_equal(p.labels[p.sample_at[i] + NV - 1], s[i].labels[0]);
    }
    hone_packed_free(&p);
    o.virtual_tokens = L;
    TEST_FAILS_WITH(hone_pack(s, N, &o, &p), "virtual tokens leave no room");
    free_sequences(s, N);
}

static void test_virtual_tokens(void **state) {
    (void)state;
    check_virtual_tokens(1);
    check_virtual_tokens(0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_best_fit_decreasing),
        cmocka_unit_test(test_padded_rows),
        cmocka_unit_test(test_virtual_tokens),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
