/* hone/mixture.h — dataset mixtures in the Flan Collection's way: several datasets, each capped (max_samples,
 * fraction) and weighted (sampling probability), exact and near-duplicate removal (MinHash), zero-/few-shot mixing
 * and input inversion; all deterministic from one seed. The result is examples ready for hone_render_example,
 * each with the index of the dataset it came from.
 *
 *     hone_mixture_source src[2] = {{.path = "alpaca.json", .weight = 3}, {.path = "dolly.jsonl", .weight = 1}};
 *     hone_mixture_options o;
 *     hone_mixture_defaults(&o);
 *     o.sources = src, o.n_sources = 2, o.seed = 42, o.dedup = HONE_DEDUP_NEAR;
 *     hone_mixture m;
 *     if (hone_mixture_build(&m, &o) != HONE_OK) die(hone_error());
 *     // m.examples[0..m.n), m.source[i] = index into src; m.reports[d]: counts of dataset d
 *     hone_mixture_free(&m);
 *
 * The steps, in this order (docs/CONFIG.md, "Dataset mixtures", says the same for users):
 *  1. Read each dataset (hone_dataset_load with its options; drops counted as ever).
 *  2. Duplicates (dedup exact or near): across all datasets in list order, the first occurrence is kept.
 *  3. Caps: a dataset of n examples keeps c = min(n, max_samples, round(fraction × n)) of them: the first c of a
 *     seeded permutation of its examples (stream seed, dataset index), in file order.
 *  4. Counts. No weight anywhere (and no size): every dataset contributes its c examples (weights ∝ sizes).
 *     Otherwise a dataset's weight (default 1) over the sum of weights is its share p; the mixture's size N is
 *     `size` when given, else the largest N that no dataset runs out of, min over datasets of floor(c / p); each
 *     contributes round(p × N) examples: the first ones of the same permutation (so a smaller mixture is a subset
 *     of a larger one), in file order. A share larger than c is an error, unless with_replacement: then that
 *     dataset's examples are drawn uniformly with replacement from its c.
 *  5. Shaping, per example in mixture order with a stream of its own, for single-turn conversations (system
 *     messages, then one user and one assistant message): with probability inversion_rate the example is
 *     inverted; otherwise, with probability few_shot_rate, exemplars are prepended (hone_mixture_options).
 * Examples of other kinds and multi-turn conversations pass unchanged.
 */
#ifndef HONE_MIXTURE_H
#define HONE_MIXTURE_H

#include "hone/dataset.h"
#include "hone/render.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The instruction of an inverted example; the original answer goes between the two parts (the reverse-IFD
 * prompt of ALGORITHMS.md §1). The original user message becomes the answer to train on. */
#define HONE_INVERSION_PROMPT_HEAD                                                                               \
    "Below is the response to an instruction, please guess the corresponding instruction for the given response.\n"
#define HONE_INVERSION_PROMPT_TAIL "\nGenerate the instruction for the above response."

typedef struct {
    const char *path;
    hone_dataset_options options;
    double weight;         /* sampling weight, > 0; 0 = not given (1 when another dataset has one) */
    int64_t max_samples;   /* 0 = no cap */
    double fraction;       /* 0 = no cap; else in (0, 1] */
    double few_shot_rate;  /* < 0: the mixture's */
    double inversion_rate; /* < 0: the mixture's */
} hone_mixture_source;

typedef enum { HONE_DEDUP_NONE = 0, HONE_DEDUP_EXACT, HONE_DEDUP_NEAR } hone_dedup_mode;

/* MinHash near-duplicate detection. A text is normalised (hone_dedup_text), cut into shingles — n consecutive
 * words, or n consecutive characters (code points) with chars — each shingle hashed to 64 bits and, for each of
 * `permutations` seeded hash functions h_j(x) = high 32 bits of mix(x xor s_j), the minimum over the shingles
 * kept: P(sig_j(A) = sig_j(B)) = Jaccard(A, B), so the fraction of equal slots estimates it (standard error
 * sqrt(J(1 − J) / permutations)). LSH: the signature is cut into `bands` bands of permutations / bands slots; two
 * texts are compared only when a band matches exactly (probability 1 − (1 − J^r)^b), and a later text whose
 * estimated Jaccard with an earlier kept one is ≥ threshold is a near duplicate. A text with fewer than n units is
 * one shingle; an empty text has none and is never a near duplicate. */
typedef struct {
    int ngram;         /* shingle length (default 3) */
    int chars;         /* 0: word shingles (default); 1: character shingles */
    int permutations;  /* default 128 */
    int bands;         /* must divide permutations; default 16 (8 slots each) */
    double threshold;  /* default 0.8 */
    uint64_t seed;     /* of the permutations */
} hone_minhash_params;

typedef struct {
    const hone_mixture_source *sources;
    size_t n_sources;
    uint64_t seed;
    int64_t size;         /* 0 = as large as the caps allow */
    int with_replacement; /* a share above a dataset's cap is drawn with replacement instead of being an error */
    hone_dedup_mode dedup;
    hone_minhash_params minhash; /* seed: set from `seed` by hone_mixture_build */
    double inversion_rate;
    /* Few-shot: an example picked for it gets exemplars — other single-turn examples of the same dataset's capped
     * pool, drawn uniformly with the example's stream — prepended as earlier user/assistant turns with weight 0
     * (rendered by the chat template like any conversation, never trained): up to few_shot_max_exemplars of them
     * whose user and assistant texts together hold at most few_shot_max_chars characters (code points); a
     * candidate that does not fit the room left is skipped, and at most 4 × few_shot_max_exemplars candidates are
     * tried. An example that gets no exemplar stays zero-shot. Exemplars' system messages are left out. */
    double few_shot_rate;
    int few_shot_max_exemplars; /* default 3, at most 16 */
    int64_t few_shot_max_chars; /* default 2000 */
} hone_mixture_options;

/* Defaults of everything but sources: seed 42, no dedup, no shaping, MinHash as documented above. */
void hone_mixture_defaults(hone_mixture_options *o);

typedef struct {
    const char *path;
    hone_dataset_stats stats;  /* the reading */
    size_t exact_duplicates;   /* removed (dedup exact or near) */
    size_t near_duplicates;    /* removed (dedup near) */
    size_t unique;             /* examples after dedup */
    size_t capped;             /* after max_samples / fraction */
    size_t selected;           /* in the mixture (with repeats when drawn with replacement) */
    double weight;             /* as used: 0 when the mixture is unweighted */
    double share;              /* selected / the mixture's size */
    size_t few_shot, exemplars, inverted;
} hone_mixture_report;

typedef struct {
    hone_example *examples;
    uint32_t *source; /* dataset index of each example */
    size_t n;
    hone_mixture_report *reports; /* one per source */
    size_t n_sources;
    int weighted;
    /* the shape of the conversations in the mixture (after shaping) */
    size_t conversations, messages, assistant_turns, max_assistant_turns;
} hone_mixture;

hone_status hone_mixture_build(hone_mixture *out, const hone_mixture_options *o);
void hone_mixture_free(hone_mixture *m);
/* Renders every example of the mixture into set (appending; zero it first), with its reading statistics summed
 * into set->stats. An error names the dataset file and the example's line. */
hone_status hone_mixture_render(const hone_mixture *m, const hone_render_options *ro, hone_rendered_set *set);
/* "none" | "exact" | "near"; anything else is an error. */
hone_status hone_dedup_mode_parse(const char *name, hone_dedup_mode *out);
/* The per-dataset counts as one JSON array (free()): [{"path", "format", "rows", "examples", "dropped",
 * "exact_duplicates", "near_duplicates", "unique", "capped", "selected", "weight", "share", "few_shot",
 * "exemplars", "inverted"}]; NULL when out of memory. */
char *hone_mixture_reports_to_json(const hone_mixture *m);

/* ---- deduplication (src/data/dedup.c) ---- */

/* What dedup compares: the example's texts (message contents and tool calls; text; ids in decimal; prompt, chosen
 * and rejected; a KTO label), ASCII letters lower-cased, every run of white space one space, trimmed. Free with
 * free(); NULL when out of memory. */
char *hone_dedup_text(const hone_example *ex, size_t *len);
/* sig[0..p->permutations) of a normalised text (permutations at most HONE_MINHASH_MAX). */
#define HONE_MINHASH_MAX 1024
hone_status hone_minhash_signature(const char *text, size_t len, const hone_minhash_params *p, uint32_t *sig);
/* The fraction of equal slots: the estimate of the Jaccard similarity of the two shingle sets. */
double hone_minhash_similarity(const uint32_t *a, const uint32_t *b, int permutations);

enum { HONE_DUP_KEPT = 0, HONE_DUP_EXACT = 1, HONE_DUP_NEAR = 2 };
/* marks[i] for examples[0..n), in order: EXACT when its dedup text equals an earlier kept one's (by a 128-bit
 * hash), NEAR (mode near) when its MinHash estimate against an earlier kept one reaches the threshold, else
 * KEPT. mode none marks everything KEPT. */
hone_status hone_dedup_mark(const hone_example *examples, size_t n, hone_dedup_mode mode,
                            const hone_minhash_params *p, uint8_t *marks);
/* The same over normalised texts (hone_dedup_text) taken in order, also naming for each duplicate the earlier kept
 * text it duplicates: twin[i] its index (SIZE_MAX when kept) and similarity[i] 1 for an exact duplicate, else the
 * MinHash estimate (0 when kept). twin and similarity may be NULL. */
hone_status hone_dedup_texts(const char *const *texts, const size_t *lens, size_t n, hone_dedup_mode mode,
                             const hone_minhash_params *p, uint8_t *marks, size_t *twin, double *similarity);

/* ---- length statistics (hone data stats) ---- */

#define HONE_LENGTH_BINS 16
typedef struct {
    size_t n, total, min, max;
    double mean;
    size_t p50, p90, p95, p99; /* nearest rank: the smallest length with at least p % of lengths at or below */
    size_t bin_width;          /* bin k holds lengths in [k × width, (k + 1) × width); 1, 2 or 5 × 10^j */
    size_t bins[HONE_LENGTH_BINS];
    size_t over;               /* longer than the limit given */
} hone_length_stats;

hone_status hone_length_stats_compute(const size_t *lengths, size_t n, size_t limit, hone_length_stats *out);

#ifdef __cplusplus
}
#endif
#endif
