/* Exact and near-duplicate detection (see hone/mixture.h): normalised texts, 128-bit hashes for exact
 * duplicates, MinHash signatures with LSH bands for near ones; the first occurrence is kept. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hone/mixture.h"

/* ---- the text dedup compares ---- */

typedef struct {
    char *p;
    size_t n, cap;
    int failed;
} text_buffer;

static void put(text_buffer *b, const char *s, size_t n) {
    if (b->failed) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *grown = realloc(b->p, cap);
        if (!grown) {
            b->failed = 1;
            return;
        }
        b->p = grown;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

/* One piece of the example's text; pieces are separated by a newline (one space once normalised). */
static void put_piece(text_buffer *b, const char *s) {
    if (!s) return;
    put(b, s, strlen(s));
    put(b, "\n", 1);
}

static void put_conversation(text_buffer *b, const hone_conversation *c) {
    for (size_t i = 0; i < c->n_messages; i++) {
        put_piece(b, c->messages[i].content);
        put_piece(b, c->messages[i].tool_calls_json);
    }
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

char *hone_dedup_text(const hone_example *ex, size_t *len) {
    text_buffer b = {0};
    put(&b, "", 0);
    put_conversation(&b, &ex->conversation);
    put_conversation(&b, &ex->chosen);
    put_conversation(&b, &ex->rejected);
    put_piece(&b, ex->text);
    for (size_t i = 0; i < ex->n_tokens; i++) {
        char num[16];
        put(&b, num, (size_t)snprintf(num, sizeof num, "%d ", (int)ex->input_ids[i]));
    }
    if (ex->kind == HONE_EXAMPLE_KTO) put_piece(&b, ex->label ? "label:1" : "label:0");
    if (b.failed) {
        free(b.p);
        hone_errorf(HONE_ERR_NOMEM, "out of memory");
        return NULL;
    }
    /* normalise in place: ASCII lower case, one space for each run of white space, trimmed */
    size_t w = 0;
    int space = 0;
    for (size_t r = 0; r < b.n; r++) {
        const char c = b.p[r];
        if (is_space(c)) {
            space = 1;
            continue;
        }
        if (space && w) b.p[w++] = ' ';
        space = 0;
        b.p[w++] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
    }
    b.p[w] = 0;
    *len = w;
    return b.p;
}

/* ---- MinHash ---- */

#define STREAM_MINHASH 0x6d696e6861736801ull /* the permutations' seeds */

hone_status hone_minhash_signature(const char *text, size_t len, const hone_minhash_params *p, uint32_t *sig) {
    const int k = p->permutations, n = p->ngram;
    HONE_ASSERT(k >= 1 && k <= HONE_MINHASH_MAX && n >= 1);
    for (int j = 0; j < k; j++) sig[j] = UINT32_MAX;
    if (!len) return HONE_OK;
    /* units: words (separated by single spaces in a normalised text) or code points; unit u spans
     * [start[u], end[u]) and a shingle is the bytes from the start of its first unit to the end of its last */
    size_t *start = malloc((len + 1) * sizeof *start), *end = malloc((len + 1) * sizeof *end);
    uint64_t *seeds = malloc((size_t)k * sizeof *seeds);
    if (!start || !end || !seeds) {
        free(start);
        free(end);
        free(seeds);
        return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    }
    size_t units = 0;
    for (size_t i = 0; i < len; i++) {
        const int begins = i == 0 || (p->chars ? ((unsigned char)text[i] & 0xC0) != 0x80 : text[i - 1] == ' ');
        if (!p->chars && text[i] == ' ') continue;
        if (begins) {
            if (units) end[units - 1] = p->chars ? i : end[units - 1];
            start[units++] = i;
        }
        if (!p->chars) end[units - 1] = i + 1;
    }
    if (p->chars) end[units - 1] = len; /* chars: unit 0 starts at byte 0, so there is at least one */
    hone_rng rng = hone_rng_new(p->seed, STREAM_MINHASH);
    for (int j = 0; j < k; j++) seeds[j] = hone_rng_u64(&rng);
    const size_t shingles = !units ? 0 /* only spaces */ : units >= (size_t)n ? units - (size_t)n + 1 : 1;
    for (size_t s = 0; s < shingles; s++) {
        const size_t a = start[s], b = units >= (size_t)n ? end[s + (size_t)n - 1] : len;
        uint64_t h[2];
        hone_hash128(text + a, b - a, 0, h);
        for (int j = 0; j < k; j++) {
            /* h_j(x): the counter-based generator keyed by x xor s_j, one draw */
            hone_rng hj = {h[0] ^ seeds[j], 0};
            const uint32_t v = (uint32_t)(hone_rng_u64(&hj) >> 32);
            if (v < sig[j]) sig[j] = v;
        }
    }
    free(start);
    free(end);
    free(seeds);
    return HONE_OK;
}

double hone_minhash_similarity(const uint32_t *a, const uint32_t *b, int permutations) {
    int equal = 0;
    for (int j = 0; j < permutations; j++) equal += a[j] == b[j];
    return (double)equal / permutations;
}

/* ---- marking ---- */

typedef struct {
    uint64_t key;
    size_t item; /* text index + 1; 0 = empty slot */
} slot;

static size_t table_size(size_t entries) {
    size_t cap = 16;
    while (cap < 2 * entries) cap *= 2;
    return cap;
}

/* The first entry under `key` whose signature matches sig well enough (its index + 1), else 0. */
static size_t near_twin(const slot *t, size_t mask, uint64_t key, const uint32_t *sigs, const uint32_t *sig,
                        const hone_minhash_params *p, double *similarity) {
    for (size_t i = key & mask; t[i].item; i = (i + 1) & mask) {
        if (t[i].key != key) continue;
        const double s =
            hone_minhash_similarity(sig, sigs + (t[i].item - 1) * (size_t)p->permutations, p->permutations);
        if (s >= p->threshold) {
            *similarity = s;
            return t[i].item;
        }
    }
    return 0;
}

static void table_put(slot *t, size_t mask, uint64_t key, size_t item) {
    size_t i = key & mask;
    while (t[i].item) i = (i + 1) & mask;
    t[i] = (slot){key, item + 1};
}

hone_status hone_dedup_texts(const char *const *texts, const size_t *lens, size_t n, hone_dedup_mode mode,
                             const hone_minhash_params *p, uint8_t *marks, size_t *twin, double *similarity) {
    for (size_t i = 0; i < n; i++) {
        marks[i] = HONE_DUP_KEPT;
        if (twin) twin[i] = SIZE_MAX;
        if (similarity) similarity[i] = 0;
    }
    if (mode == HONE_DEDUP_NONE || !n) return HONE_OK;
    const int near = mode == HONE_DEDUP_NEAR;
    if (near && (p->permutations < 1 || p->permutations > HONE_MINHASH_MAX || p->bands < 1 ||
                 p->permutations % p->bands || p->ngram < 1 || !(p->threshold > 0 && p->threshold <= 1)))
        return hone_errorf(HONE_ERR_INVALID,
                           "MinHash: permutations %d (1..%d), bands %d (must divide permutations), ngram %d (>= 1), "
                           "threshold %g (in (0, 1]): fix the minhash_* / dedup_threshold settings",
                           p->permutations, HONE_MINHASH_MAX, p->bands, p->ngram, p->threshold);
    const size_t k = near ? (size_t)p->permutations : 0, bands = near ? (size_t)p->bands : 0;
    const size_t rows = near ? k / bands : 0;
    uint64_t *hashes = malloc(2 * n * sizeof *hashes);
    uint32_t *sigs = near ? malloc(n * k * sizeof *sigs) : NULL;
    const size_t exact_mask = table_size(n) - 1, band_mask = near ? table_size(n * bands) - 1 : 0;
    slot *exact = calloc(exact_mask + 1, sizeof *exact), *lsh = near ? calloc(band_mask + 1, sizeof *lsh) : NULL;
    int failed = !hashes || !exact || (near && (!sigs || !lsh));
    if (!failed) {
        /* the hashes and signatures of texts are independent of each other: computed in parallel */
#pragma omp parallel for schedule(dynamic, 64) reduction(| : failed)
        for (size_t i = 0; i < n; i++) {
            hone_hash128(texts[i], lens[i], 0, hashes + 2 * i);
            if (near && hone_minhash_signature(texts[i], lens[i], p, sigs + i * k) != HONE_OK) failed = 1;
        }
    }
    hone_status st = failed ? hone_errorf(HONE_ERR_NOMEM, "out of memory for the dedup of %zu examples", n) : HONE_OK;
    for (size_t i = 0; st == HONE_OK && i < n; i++) {
        /* the exact table is keyed by the first half of the hash and compares the second too; only kept texts
         * enter it (and the LSH table) */
        const uint64_t *h = hashes + 2 * i;
        size_t found = 0;
        double sim = 1;
        for (size_t s = h[0] & exact_mask; exact[s].item && !found; s = (s + 1) & exact_mask)
            if (exact[s].key == h[0] && hashes[2 * (exact[s].item - 1) + 1] == h[1]) found = exact[s].item;
        if (found) marks[i] = HONE_DUP_EXACT;
        uint64_t band_keys[HONE_MINHASH_MAX];
        if (!found && near && lens[i]) {
            const uint32_t *sig = sigs + i * k;
            for (size_t b = 0; b < bands && !found; b++) {
                uint64_t bh[2];
                hone_hash128(sig + b * rows, rows * sizeof *sig, b, bh);
                band_keys[b] = bh[0];
                found = near_twin(lsh, band_mask, bh[0], sigs, sig, p, &sim);
            }
            if (found) marks[i] = HONE_DUP_NEAR;
            else
                for (size_t b = 0; b < bands; b++) table_put(lsh, band_mask, band_keys[b], i);
        }
        if (found) {
            if (twin) twin[i] = found - 1;
            if (similarity) similarity[i] = sim;
            continue;
        }
        table_put(exact, exact_mask, h[0], i);
    }
    free(hashes);
    free(sigs);
    free(exact);
    free(lsh);
    return st;
}

hone_status hone_dedup_mark(const hone_example *examples, size_t n, hone_dedup_mode mode,
                            const hone_minhash_params *p, uint8_t *marks) {
    if (mode == HONE_DEDUP_NONE || !n) return hone_dedup_texts(NULL, NULL, n, HONE_DEDUP_NONE, p, marks, NULL, NULL);
    char **texts = calloc(n, sizeof *texts);
    size_t *lens = malloc(n * sizeof *lens);
    int failed = !texts || !lens;
    if (!failed) {
#pragma omp parallel for schedule(dynamic, 64) reduction(| : failed)
        for (size_t i = 0; i < n; i++)
            if (!(texts[i] = hone_dedup_text(&examples[i], &lens[i]))) failed = 1;
    }
    hone_status st = failed ? hone_errorf(HONE_ERR_NOMEM, "out of memory for the dedup of %zu examples", n)
                            : hone_dedup_texts((const char *const *)texts, lens, n, mode, p, marks, NULL, NULL);
    for (size_t i = 0; texts && i < n; i++) free(texts[i]);
    free(texts);
    free(lens);
    return st;
}

hone_status hone_dedup_mode_parse(const char *name, hone_dedup_mode *out) {
    static const char *const names[] = {"none", "exact", "near"};
    for (int i = 0; i < 3; i++)
        if (!strcmp(name, names[i])) {
            *out = (hone_dedup_mode)i;
            return HONE_OK;
        }
    return hone_errorf(HONE_ERR_INVALID, "dedup: unknown value '%s' (expected none, exact or near)", name);
}

/* ---- length statistics ---- */

static int size_cmp(const void *a, const void *b) {
    const size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x > y) - (x < y);
}

hone_status hone_length_stats_compute(const size_t *lengths, size_t n, size_t limit, hone_length_stats *out) {
    memset(out, 0, sizeof *out);
    out->bin_width = 1;
    if (!n) return HONE_OK;
    size_t *sorted = malloc(n * sizeof *sorted);
    if (!sorted) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    memcpy(sorted, lengths, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, size_cmp);
    out->n = n;
    out->min = sorted[0];
    out->max = sorted[n - 1];
    for (size_t i = 0; i < n; i++) {
        out->total += sorted[i];
        out->over += sorted[i] > limit;
    }
    out->mean = (double)out->total / (double)n;
    /* nearest rank: index ceil(p n / 100) - 1 */
    out->p50 = sorted[(50 * n + 99) / 100 - 1];
    out->p90 = sorted[(90 * n + 99) / 100 - 1];
    out->p95 = sorted[(95 * n + 99) / 100 - 1];
    out->p99 = sorted[(99 * n + 99) / 100 - 1];
    static const size_t steps[3] = {1, 2, 5};
    for (size_t scale = 1, s = 0; out->bin_width * HONE_LENGTH_BINS <= out->max; s = (s + 1) % 3) {
        out->bin_width = steps[s] * scale;
        if (s == 2) scale *= 10;
    }
    for (size_t i = 0; i < n; i++) out->bins[sorted[i] / out->bin_width]++;
    free(sorted);
    return HONE_OK;
}
