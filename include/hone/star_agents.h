/* hone/star_agents.h — Star-Agents (Zhou et al., NeurIPS 2024; ../shared/reference/ALGORITHMS.md §3): agent
 * pairs (an instruction rewriter j and a responder k) turn each seed instruction into candidates; the student
 * keeps the candidate that is hard for it but not for a larger model and that a judge finds no worse than the seed;
 * pairs whose candidates win are drawn more often.
 *
 * The pure parts, on numbers:
 *
 *     double p[6];                                   // 2 rewriters x 3 responders: pair j*3 + k
 *     hone_star_init(p, 6);                          // uniform
 *     unsigned char taken[6] = {0};
 *     size_t pairs[2];
 *     size_t m = hone_star_draw(p, 6, 2, seed, i, taken, pairs);     // 2 distinct pairs for seed i
 *     hone_star_candidate c[2] = {{.ifd_small = 0.9, .ifd_large = 0.5, .judge = 1}, ...};
 *     size_t w = hone_star_score(c, m);              // the index kept, or HONE_STAR_KEEP_SEED
 *     if (w != HONE_STAR_KEEP_SEED) hone_star_update(p, 6, pairs[w], beta, c[w].score);
 *
 * Scoring, for the candidates of one seed: gap = IFD_small − IFD_large (small = the student, large = a stronger
 * model; a candidate without both IFDs has gap NaN and cannot win); π_dual = gap / (the largest gap of the seed's
 * candidates); π_llm ∈ {0, 0.5, 1} from a pairwise judge against the seed itself (worse, tie, better); π =
 * π_llm·π_dual; the candidate with the largest π is kept (the first one on ties). When the largest gap is ≤ 0 (no
 * candidate is harder for the student than for the large model) every π_dual is 0; when the largest π is ≤ 0 no
 * candidate is both no worse than the seed and harder for the student, and the seed itself is kept with p
 * unchanged, since nothing shows which pair did better. Evolution: p[winner] += β·π, then p is renormalised. */
#ifndef HONE_STAR_AGENTS_H
#define HONE_STAR_AGENTS_H

#include "hone/base.h"
#include "hone/dataset.h"
#include "hone/select.h"
#include "hone/teacher.h"

#ifdef __cplusplus
extern "C" {
#endif

#define HONE_STAR_KEEP_SEED ((size_t)-1)

/* p[i] = 1 / n_pairs. */
void hone_star_init(double *p, size_t n_pairs);

/* Draws up to m distinct pairs with probability proportional to p, without replacement, skipping and then marking
 * the pairs taken[] already holds (the base and memory pairs of this seed); out[] receives them in draw order and
 * the count is returned (fewer than m when fewer pairs with p > 0 remain). The draws depend only on (seed,
 * seed_index, p, taken), so a resumed run draws what an uninterrupted one drew. */
size_t hone_star_draw(const double *p, size_t n_pairs, size_t m, uint64_t seed, size_t seed_index, unsigned char *taken,
                      size_t *out);

/* The memory bank: up to l distinct pairs that won on the earlier seeds most similar to seed `seed_index` (cosine of
 * the unit-length embeddings unit[i·dim ..], most similar first, earlier seed first on ties), skipping and then
 * marking taken[]; winner_of[i] (i < seed_index) is the pair that won seed i, or HONE_STAR_KEEP_SEED. Returns the
 * count written to out[]. */
size_t hone_star_memory_pairs(const float *unit, size_t dim, size_t seed_index, const size_t *winner_of, size_t l,
                              unsigned char *taken, size_t *out);

/* Scales each of n rows of v [n, dim] to unit length (a zero row stays zero). */
void hone_star_normalize(float *v, size_t n, size_t dim);

typedef struct {
    double ifd_small, ifd_large; /* in: the candidate's IFD under the student and the large model (NaN: none) */
    double judge;                /* in: π_llm, 0 (worse than the seed), 0.5 (tie) or 1 (better) */
    double gap, dual, score;     /* out: IFD_small − IFD_large, π_dual, π = π_llm·π_dual (NaN: cannot win) */
} hone_star_candidate;

/* Fills gap, dual and score of the n candidates of one seed; returns the index of the one kept, or
 * HONE_STAR_KEEP_SEED when the largest score is not > 0. */
size_t hone_star_score(hone_star_candidate *c, size_t n);

/* p[pair] += beta·score, then p /= Σp. */
void hone_star_update(double *p, size_t n_pairs, size_t pair, double beta, double score);

/* ---- a run over a seed file ---- */

typedef struct {
    const char *name;
    hone_teacher *teacher;
} hone_star_agent;

typedef enum {
    HONE_STAR_JUDGE_TEACHER = 0, /* a teacher compares candidate and seed, in both orders (see hone_star_run) */
    HONE_STAR_JUDGE_CONTAINS,    /* verifiable tasks: 1 when the candidate's response contains the seed's, else 0 */
    HONE_STAR_JUDGE_EQUALS,      /* ... equals the seed's (both trimmed), else 0 */
} hone_star_judge_kind;

typedef struct {
    const char *data_path; /* the seeds: instruction / answer examples (the answer is the judge's reference) */
    const hone_dataset_options *dataset;   /* may be NULL */
    hone_model *small, *large;             /* the student, and a stronger model */
    hone_ifd_options ifd_small, ifd_large; /* one prompt style; each model's tokenizer (and chat template) */
    int32_t start_small, start_large;      /* first token of each model's direct pass */
    int sequence_len, micro_batch_size;
    const hone_star_agent *rewriters, *responders; /* pair j·n_responders + k = (rewriters[j], responders[k]) */
    size_t n_rewriters, n_responders;
    const size_t *base_pairs; /* pairs tried on every seed */
    size_t n_base;
    size_t m;    /* pairs drawn by p per seed */
    size_t l;    /* pairs from the memory bank per seed (prompt embeddings of the student) */
    double beta; /* evolution step */
    uint64_t seed;
    hone_star_judge_kind judge_kind;
    const hone_star_agent *judge; /* HONE_STAR_JUDGE_TEACHER */
    const char *log_path;         /* JSONL: the run's settings, then one line per seed (resumed) */
    const char *output_path;      /* the kept data, alpaca JSONL (written atomically at the end) */
} hone_star_options;

typedef struct {
    size_t seeds;             /* seeds in the data */
    size_t resumed;           /* done by an earlier run (read back from the log) */
    size_t done;              /* done by this run */
    size_t improved;          /* of all seeds, replaced by a candidate */
    size_t failed_requests;   /* teacher requests that failed (their candidates cannot win; errors in the log) */
    size_t unparsed_verdicts; /* judge replies without [[A]], [[B]] or [[C]] (counted as ties) */
    double seconds;
} hone_star_summary;

/* Called after each seed with the running summary and p. */
typedef void (*hone_star_progress)(const hone_star_summary *s, const double *p, size_t n_pairs, void *user);

/* Star-Agents over every seed of data_path, in file order. Per seed i with instruction X (instruction and input
 * joined by "\n") and answer Y: the base pairs, then up to l memory pairs, then m pairs drawn by p (all distinct);
 * each rewriter j among them is asked once to rewrite X (its reply between [New Instruction] and [End], or the
 * whole reply), each pair's responder k answers j's rewrite; every candidate gets its IFD under both models (the
 * prompt style of hone_ifd_tokenize) and a judge score against (X, Y): a teacher judge is asked twice, the
 * candidate first and then second, to name the better training example with [[A]], [[B]] or [[C]] (tie); better
 * both times scores 1, worse both times 0, anything else 0.5. hone_star_score decides and hone_star_update evolves
 * p. A failed teacher request leaves its candidate without a score (it cannot win); it is logged and counted.
 *
 * The log's first line is {"star_agents": settings} (pair names, agents, judge, β, m, l, seed, data and model
 * hashes); each seed then gets one line {"seed", "instruction", "input", "output", "candidates": [{"pair",
 * "rewriter", "responder", "source", "instruction", "response", "error", "ifd_small", "ifd_large", "gap",
 * "pi_dual", "verdicts", "pi_llm", "pi"}], "kept" (candidate index or null), "kept_pair", "pi", "p"}: p after the
 * seed's update, so the lines are the probability trajectory. Each line reaches the disk before the next seed
 * starts; a run over the same log with the same settings resumes at the first seed without a line (a partial last
 * line is removed; p and the memory bank come back from the log), other settings are an error. At the end
 * output_path gets, for every seed, the kept (instruction, input, output) with "seed", "pair" and "pi". */
hone_status hone_star_run(const hone_star_options *o, hone_star_progress progress, void *user, hone_star_summary *out);

/* A self-contained HTML page (inline SVG, no scripts) from a Star-Agents log: the seeds replaced and kept, each
 * pair's wins and final probability, and a line chart of every pair's probability after each seed (point 0: the
 * uniform start). Atomic. */
hone_status hone_star_report_write(const char *path, const char *log_path);

#ifdef __cplusplus
}
#endif
#endif
