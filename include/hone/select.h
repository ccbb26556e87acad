/* hone/select.h — instruction-data selection: the student model scores every example (IFD, reverse IFD), and
 * selectors keep what is worth learning from (../shared/reference/ALGORITHMS.md §1).
 *
 *     hone_ifd_options o = {.tokenizer = tok, .style = HONE_PROMPT_ALPACA};
 *     hone_ifd_tokens t;
 *     if (hone_ifd_tokenize(&ex, &o, 0, &t) != HONE_OK) die(hone_error());  // ids_Q and ids_A of one example
 *     hone_ifd_input in = {t.prompt, t.n_prompt, t.answer, t.n_answer};
 *     hone_ifd_score sc;
 *     if (hone_score_ifd(model, &in, 1, 2048, 8, start_id, &sc) != HONE_OK) die(hone_error());
 *     printf("IFD %.4f over %d answer tokens\n", sc.ifd, sc.n_answer_tokens);
 *     hone_ifd_tokens_free(&t);
 *
 * IFD of an example with instruction X, prompt Q = template(X) and answer A: the conditioned pass scores A after
 * Q, the direct pass scores the same answer tokens after one start token (BOS, or EOS when there is none); s(A|Q)
 * and s(A) are their mean NLL, ifd = exp(s(A|Q) − s(A)), ifd_loss = s(A|Q) / s(A). Reverse IFD swaps the roles:
 * the prompt asks to guess the instruction from the response and the target is X. Scoring packs the sequences of
 * many examples into rows (attention stays within each sequence, as hone_model_forward_positions guarantees), so
 * it runs at the engine's forward speed on every thread.
 */
#ifndef HONE_SELECT_H
#define HONE_SELECT_H

#include <stdio.h>

#include "hone/base.h"
#include "hone/chat_template.h"
#include "hone/dataset.h"
#include "hone/mixture.h"
#include "hone/model.h"
#include "hone/train.h"
#include "hone/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

/* How an instruction becomes the prompt Q: Stanford Alpaca's template (with and without input), FastChat's vicuna
 * v1.1, plain "{instruction}\n{input}\n", or the model's chat template with the generation prompt. */
typedef enum { HONE_PROMPT_ALPACA = 0, HONE_PROMPT_VICUNA, HONE_PROMPT_PLAIN, HONE_PROMPT_CHAT } hone_prompt_style;
/* "alpaca" | "vicuna" | "plain" | "chat" (the error lists them). */
hone_status hone_prompt_style_parse(const char *name, hone_prompt_style *out);

typedef struct {
    const hone_tokenizer *tokenizer;
    hone_prompt_style style;
    const hone_chat_template *chat_template; /* HONE_PROMPT_CHAT only */
} hone_ifd_options;

typedef struct {
    int32_t *prompt, *answer; /* ids_Q (special tokens as the tokenizer adds them), ids_A (none) */
    size_t n_prompt, n_answer;
} hone_ifd_tokens;

/* The prompt and target ids of a conversation example (reverse = 0: Q and A; 1: Q' and X). X is the example's
 * instruction and input (alpaca-like rows keep them apart; other conversations use the last user turn as the
 * instruction), A its last assistant turn; with HONE_PROMPT_CHAT the earlier turns and the system prompt are part
 * of Q. Other example kinds (text, tokens, preference, KTO) are an error. */
hone_status hone_ifd_tokenize(const hone_example *ex, const hone_ifd_options *o, int reverse, hone_ifd_tokens *out);
void hone_ifd_tokens_free(hone_ifd_tokens *t);

typedef struct {
    const int32_t *prompt, *answer;
    size_t n_prompt, n_answer;
} hone_ifd_input;

typedef enum {
    HONE_IFD_SCORED = 0,
    HONE_IFD_EMPTY_ANSWER,    /* no answer token */
    HONE_IFD_PROMPT_TOO_LONG, /* the prompt alone fills sequence_len: no answer token fits */
} hone_ifd_status;

typedef struct {
    double loss_cond, loss_direct; /* s(A|Q), s(A): mean NLL of the scored answer tokens */
    double ifd, ifd_loss;          /* exp(loss_cond − loss_direct), loss_cond / loss_direct */
    int n_answer_tokens;           /* answer tokens scored in both passes (those that fit after Q) */
    hone_ifd_status status;        /* not SCORED: the scores are NaN */
} hone_ifd_score;

/* Scores n examples: the conditioned sequence Q + A is cut to sequence_len and the answer tokens that do not fit
 * are dropped from both passes. micro_batch_size rows of sequence_len tokens per forward pass. start_id: the
 * direct pass's first token. Deterministic for a thread count. */
hone_status hone_score_ifd(hone_model *m, const hone_ifd_input *in, size_t n, int sequence_len, int micro_batch_size,
                           int32_t start_id, hone_ifd_score *out);
/* The direct pass's start token (ALGORITHMS.md §1): the tokenizer's BOS, else the model's bos_token_id, else EOS
 * (the tokenizer's, else the model's); -1 when there is none. */
int32_t hone_ifd_start_token(const hone_tokenizer *tok, const hone_model *m);

/* ---- scoring a dataset file ---- */

typedef struct {
    const char *data_path;
    const hone_dataset_options *dataset; /* may be NULL */
    hone_ifd_options ifd;
    int reverse;          /* also score reverse IFD (rifd) */
    int sequence_len;
    int micro_batch_size;
    int32_t start_id;     /* first token of the direct pass: BOS, else EOS */
    const char *output_path;
    size_t chunk;         /* examples tokenized and scored together (0 = 512); each chunk is flushed to disk, and
                           * a resumed run starts again at the first unfinished chunk (same packing, same bits) */
} hone_score_file_options;

typedef struct {
    hone_dataset_stats dataset; /* what the dataset reader read and dropped (rows that cannot be examples) */
    size_t examples;   /* examples in the data */
    size_t resumed;    /* already in the output from an earlier run, not scored again */
    size_t scored;     /* scored by this run */
    size_t not_scored; /* of those, without scores (empty answer, prompt longer than sequence_len) */
    size_t tokens;     /* tokens run through the model by this run */
    double seconds;
} hone_score_file_summary;

/* Called after each chunk with the running summary; non-zero stops (what was written stays). */
typedef int (*hone_score_progress)(const hone_score_file_summary *s, void *user);

/* Scores every example of a dataset file and writes one JSON object per example, in file order, to
 * output_path: "index" (0-based), the example (alpaca-like rows as {"instruction", "input", "output"[, "system"]},
 * other conversations as canonical {"messages"}), then "ifd", "ifd_loss", "loss_cond", "loss_direct",
 * "n_answer_tokens" (and "rifd", "rifd_loss", "rifd_loss_cond", "rifd_loss_direct" with reverse), with null
 * scores and a "not_scored" reason when an example cannot be scored. Resumable: a manifest beside the output
 * (OUTPUT.meta.json) records what it was written from (data, model weights, options); running again with the
 * same inputs keeps the finished chunks and scores only what is missing — the file is then byte for byte what
 * an uninterrupted run writes with the same thread count — and different inputs are an error. */
hone_status hone_score_file(hone_model *m, const hone_score_file_options *o, hone_score_progress progress,
                            void *user, hone_score_file_summary *out);

/* Embeds the prompt Q of every example of the data file (hone_embed_sequences of the ids hone_ifd_tokenize gives,
 * reverse 0) in file order: *out [*n, hidden_size] (free()). */
hone_status hone_embed_file_prompts(hone_model *m, const hone_score_file_options *o, float **out, size_t *n);

/* ---- embeddings ---- */

/* Mean of the model's last-layer hidden states (after the final norm, as Hugging Face's hidden_states[-1]) over the
 * tokens of each sequence (cut to sequence_len): Cherry's instruction embedding. out [n, hidden_size]. Empty
 * sequences get zeros. */
hone_status hone_embed_sequences(hone_model *m, const int32_t *const *ids, const size_t *lens, size_t n,
                                 int sequence_len, int micro_batch_size, float *out);

/* ---- selection ---- */

typedef enum {
    HONE_SELECT_KEPT = 0,
    HONE_SELECT_NOT_SCORED,    /* no IFD (empty answer, or the prompt fills sequence_len) */
    HONE_SELECT_IFD_TOO_HIGH,  /* ifd >= max_ifd: the instruction does not help predict the answer */
    HONE_SELECT_RIFD_TOO_HIGH, /* rifd >= max_rifd: the response does not make the instruction predictable */
    HONE_SELECT_TOO_SIMILAR,   /* cosine similarity to an example kept before it above max_similarity */
    HONE_SELECT_BELOW_CUT,     /* ranked below the top_k / top_fraction cut */
    HONE_SELECT_DUPLICATE,     /* the same text (normalised) or a near duplicate (MinHash) of a better-scored one */
    HONE_SELECT_NOT_CHOSEN_BY_FACILITY_LOCATION, /* past the cut, but not among the facility-location picks */
    HONE_SELECT_REASON_COUNT
} hone_select_reason;
const char *hone_select_reason_name(hone_select_reason r); /* kept, not_scored, ifd_too_high, ... */

typedef struct {
    double max_ifd;        /* drop ifd >= this (Cherry, Superfiltering: 1); 0 = no threshold */
    double max_rifd;       /* drop rifd >= this; 0 = no threshold */
    size_t top_k;          /* keep at most this many, highest ifd first; 0 = no cap */
    double top_fraction;   /* or at most round(top_fraction × n) (of all n examples); 0 = no cap */
    double max_similarity; /* DEITA: in ifd order, skip an example whose cosine similarity to a kept one exceeds
                              this; 0 = off (then embeddings may be NULL) */
    const float *embeddings; /* [n, dim] */
    size_t dim;
    /* Duplicates: in descending ifd, an example whose text equals (EXACT, NEAR) or whose MinHash estimate of the
     * Jaccard similarity with an earlier-ranked, non-duplicate example reaches minhash.threshold (NEAR) is a
     * DUPLICATE of it, so the best-scored copy stays. Checked before the cut: duplicates take no place in it. */
    hone_dedup_mode dedup;        /* NONE = off (then texts may be NULL) */
    hone_minhash_params minhash;  /* NEAR: as in hone/mixture.h */
    const char *const *texts;     /* [n] hone_dedup_text of each example */
    const size_t *text_lens;      /* [n] */
    /* Superfiltering's diversity variant: the examples past the cut (top_k / top_fraction) are the ground set of
     * hone_facility_location on the embeddings, which keeps facility_location of them (>= 1: a count; in (0, 1):
     * that fraction of all n examples, rounded); 0 = off. Not combined with max_similarity. */
    double facility_location;
} hone_select_options;

typedef struct {
    hone_select_reason reason;
    size_t rank;       /* 1-based place in descending ifd among the examples past the thresholds; 0 for the rest */
    double similarity; /* TOO_SIMILAR: the cosine similarity to the nearest kept example; DUPLICATE: 1 for an
                          exact duplicate, else the MinHash estimate of the Jaccard similarity */
    size_t duplicate_of; /* DUPLICATE: the index of the better-scored copy that stays */
} hone_select_decision;

/* Decides for each of n examples (ifd[i], rifd[i]; NaN = not scored, rifd may be NULL): thresholds first, then
 * in descending ifd (ties: file order) duplicates are dropped, then each example is kept unless too similar to
 * one kept before it, until the cap; with facility_location, the examples within the cap are the ground set of
 * the facility-location picks instead. Deterministic. */
hone_status hone_select_ifd(const double *ifd, const double *rifd, size_t n, const hone_select_options *o,
                            hone_select_decision *out);

typedef struct {
    size_t examples;
    size_t by_reason[HONE_SELECT_REASON_COUNT]; /* by_reason[HONE_SELECT_KEPT]: kept */
} hone_select_summary;

/* Selects from a scores file written by hone_score_file (embeddings, when o->max_similarity > 0 or
 * o->facility_location > 0, and texts, when o->dedup is set, in its row order): output_path gets the kept rows in
 * file order, each its scores row plus "rank"; decisions_path (may be NULL) gets one {"index", "selected",
 * "reason", "rank", "ifd", "rifd"[, "similarity"][, "duplicate_of"]} line per example. Both atomic. */
hone_status hone_select_file(const char *scores_path, const hone_select_options *o, const char *output_path,
                             const char *decisions_path, hone_select_summary *out);

/* ---- duplicates, diversity, clustering ---- */

/* The dedup text (hone_dedup_text) of every example of the data file, in file order: texts[*n] and lens[*n]
 * (free each text, then both arrays). */
hone_status hone_dedup_texts_file(const char *data_path, const hone_dataset_options *dataset, char ***texts,
                                  size_t **lens, size_t *n);

/* Greedy facility location (Superfiltering's diversity step): maximises F(S) = sum over i of max(0, max over j
 * in S of sim(i, j)), sim the cosine similarity of rows of x [n, dim] (rows L2-normalised; a zero row is similar
 * to nothing), by adding at each step the example with the largest gain F(S + j) - F(S), the lowest index on
 * ties, until k are chosen (k is capped at n). chosen[k] gets them in the order picked, gains[k] (may be NULL)
 * each one's gain: F grows by gains[t] >= 0 at step t. Lazy evaluation (gains only shrink as S grows: F is
 * submodular) picks exactly what the plain greedy picks. */
hone_status hone_facility_location(const float *x, size_t n, size_t dim, size_t k, size_t *chosen, double *gains);

typedef struct {
    size_t iterations; /* Lloyd iterations run */
    int converged;     /* the assignment stopped changing before max_iterations */
    size_t relocated;  /* empty clusters re-seeded with the point farthest from its centre */
    double inertia;    /* sum of squared distances to the assigned centres */
} hone_kmeans_info;

/* K-means of the rows of x [n, dim] into k clusters (k <= n): k-means++ seeding (the first centre uniform, each
 * next one drawn with probability proportional to the squared distance to the nearest centre chosen, from the
 * seeded generator), then Lloyd iterations until no assignment changes, or the centres moved in total (sum of
 * squared shifts) at most scikit-learn's tolerance, 1e-4 × the mean per-feature variance (then the points are
 * assigned once more), or max_iterations (0 = 300). A cluster
 * left empty is re-seeded with the point farthest from its centre (the lowest index on ties). Ties in the
 * assignment go to the lower cluster. labels[n]; centroids [k, dim] may be NULL. Deterministic for a seed. */
hone_status hone_kmeans(const float *x, size_t n, size_t dim, size_t k, uint64_t seed, int max_iterations,
                        uint32_t *labels, float *centroids, hone_kmeans_info *info);

/* Cherry's per-cluster sampling (Cherry_LLM data_by_cluster.py): for each cluster c in [0, k) with members in file
 * order, a cluster of fewer than per_cluster members gives all of them; otherwise the members whose ppl lies
 * within [percentile(low), percentile(high)] of the cluster's ppl (numpy's linear interpolation) are taken, all of
 * them when fewer than per_cluster, else every (m / per_cluster)-th (integer division) from the first, the first
 * per_cluster of those. picked[n] gets 1 for the chosen; *n_picked their count. ppl NaN: never in the middle. */
hone_status hone_cherry_pick(const uint32_t *labels, const double *ppl, size_t n, size_t k, double low, double high,
                             size_t per_cluster, uint8_t *picked, size_t *n_picked);

/* The prompt embeddings (as hone_embed_sequences) and the perplexity of each prompt as a whole text (exp of the
 * mean NLL of tokens 1 .. len - 1 given those before them, Hugging Face's loss with labels = input_ids: Cherry's
 * "ppl_ins_alone"; NaN for a prompt of one token) of every example of the data file, in file order:
 * *embeddings [*n, hidden_size], *ppl [*n] (free() both). */
hone_status hone_embed_file_prompts_ppl(hone_model *m, const hone_score_file_options *o, float **embeddings,
                                        double **ppl, size_t *n);

/* ---- report ---- */

/* A section another selector adds to the report (Star-Agents' probability trajectories, ...): an <h2> with the
 * heading (none when it is NULL), then whatever write puts out (escaped text, inline SVG; no scripts). */
typedef struct {
    const char *heading;
    hone_status (*write)(FILE *out, void *user);
    void *user;
} hone_report_section;

/* A self-contained HTML page (inline SVG, no scripts) about a selection, from its scores file (hone_score_file) and
 * decisions file (hone_select_file): the counts of each decision reason, histograms of ifd (and rifd when the
 * scores have it) for all, kept and dropped examples, the `examples` highest- and lowest-ifd kept and dropped
 * examples (text escaped, cut to 400 characters), then the extra sections in order. Atomic. */
hone_status hone_select_report_write(const char *path, const char *scores_path, const char *decisions_path,
                                     size_t examples, const hone_report_section *extra, size_t n_extra);

/* ---- Cherry's pre-experience (Cherry_LLM) ---- */

typedef struct {
    size_t clusters;     /* K-means k (default 100; capped at the number of examples) */
    double low, high;    /* perplexity percentiles kept in a cluster (25, 75) */
    size_t per_cluster;  /* examples taken per cluster (10) */
    uint64_t seed;       /* of K-means */
} hone_cherry_options;

typedef struct {
    size_t examples, clusters, picked; /* the data, the clusters used, the pre-experience subset */
    size_t kmeans_iterations;
    int reused_subset, reused_model;   /* finished stages of an earlier run taken as they are */
    hone_train_summary train;          /* the SFT (zeros when reused) */
    int micro_batch_size, gradient_accumulation_steps; /* as trained: a subset of fewer rows than one step of tc's
                                                          takes smaller micro-batches (then fewer accumulations) */
} hone_cherry_summary;

/* Stages 1 and 2 of Cherry's pipeline into the folder dir (created when missing): (1) the prompt embeddings and
 * perplexities of m, K-means, hone_cherry_pick → dir/pre_experience.jsonl (one {"index", "cluster", "ppl",
 * example fields} row per picked example, file order); (2) one epoch of supervised fine-tuning of all of m's
 * weights on those examples, each the prompt ids and the answer ids plus EOS (eos_id; < 0: none), the loss on the
 * answer (Stanford Alpaca's training format, as scored), with tc (num_epochs forced to 1, max_steps to 0,
 * output_dir to dir/model) → dir/model/, the trained model. Each stage's output is atomic and records what it was
 * made from (dir/pre_experience.meta.json, dir/model/pre_experience.json): a rerun with the same inputs reuses a
 * finished stage, different inputs redo it. m is trained in place; load dir/model to score with it. */
hone_status hone_cherry_pre_experience(hone_model *m, const hone_score_file_options *o, const hone_cherry_options *co,
                                       hone_train_config tc, int32_t eos_id, const char *dir,
                                       hone_cherry_summary *out);

/* ---- Selective Reflection-Tuning (ALGORITHMS.md §2) ---- */

/* The four versions of an example, as the released code names them: the original, the teacher's instruction
 * reflection (new instruction and its new answer), the response reflection of the original (original instruction,
 * better answer) and the response reflection of Q (Q's instruction, a better answer to it). */
typedef enum {
    HONE_REFLECT_ORIG = 0,
    HONE_REFLECT_Q,
    HONE_REFLECT_A,
    HONE_REFLECT_QA,
    HONE_REFLECT_VERSIONS
} hone_reflect_version;
const char *hone_reflect_version_name(hone_reflect_version v); /* "orig", "Q", "A", "QA" */

typedef enum {
    HONE_REFLECT_KEPT = 0,
    HONE_REFLECT_MISSING,      /* the response version the rule compares (A or QA) has no scores: the teacher
                                  failed, its reply had no markers, or Q (for QA) is missing */
    HONE_REFLECT_NOT_IMPROVED, /* that response version does not lower r-IFD */
    HONE_REFLECT_IFD_GATE,     /* the winner's ifd >= max_ifd (or not scored) */
    HONE_REFLECT_RIFD_GATE,    /* the winner's rifd >= max_rifd (or not scored) */
    HONE_REFLECT_REASON_COUNT
} hone_reflect_reason;
const char *hone_reflect_reason_name(hone_reflect_reason r); /* kept, missing, not_improved, ifd_gate, rifd_gate */

typedef struct {
    double ifd[HONE_REFLECT_VERSIONS], rifd[HONE_REFLECT_VERSIONS]; /* NaN: version missing or not scored */
} hone_reflect_scores;

typedef struct {
    hone_reflect_version instruction_from; /* step 1: Q when IFD(Q) > IFD(orig), else orig */
    hone_reflect_version version;          /* step 2's candidate: QA after Q, A after orig; kept when reason is KEPT */
    hone_reflect_reason reason;
} hone_reflect_decision;

/* The rule: if IFD(Q) > IFD(orig), the candidate is QA, kept when r-IFD(QA) < r-IFD(Q); otherwise the candidate is
 * A, kept when r-IFD(A) < r-IFD(orig); a kept candidate must also pass ifd < max_ifd and rifd < max_rifd (0 = gate
 * off). A NaN (missing) score compares false: a missing Q leaves the original instruction, a missing candidate
 * drops the example. */
hone_reflect_decision hone_reflect_decide(const hone_reflect_scores *s, double max_ifd, double max_rifd);

typedef struct {
    const char *data_path;
    const hone_dataset_options *dataset; /* may be NULL */
    hone_ifd_options ifd;                /* how the student scores (prompt style, tokenizer, chat template) */
    int sequence_len, micro_batch_size;
    int32_t start_id;
    struct hone_teacher *teacher;        /* hone/teacher.h */
    const char *instruction_prompt;      /* the reflection prompts: text with {instruction} and {answer}; NULL = */
    const char *response_prompt;         /* hone's own (hone_reflect_default_prompt) */
    double max_ifd, max_rifd;            /* the gates (0 = off) */
    const char *output_path;             /* the kept examples */
    const char *decisions_path;          /* one line per example: the version chosen and why, every version's scores */
    const char *journal_path;            /* the teacher's replies, appended as they arrive (resumes a run) */
} hone_reflect_options;

typedef struct {
    size_t examples;
    size_t requests;          /* teacher requests this run needed */
    size_t resumed;           /* of those, answered by the journal of an earlier run */
    size_t failed;            /* requests the teacher failed (not journaled: a rerun asks again) */
    size_t no_markers;        /* replies without the markers */
    size_t missing[HONE_REFLECT_VERSIONS]; /* versions missing, per version */
    size_t by_reason[HONE_REFLECT_REASON_COUNT];
    size_t kept[HONE_REFLECT_VERSIONS];    /* kept examples by version */
    double seconds;
} hone_reflect_summary;

/* hone's reflection prompts: 0 = instruction reflection ([New Instruction]…[End] [New Answer]…[End]), 1 = response
 * reflection ([Better Answer]…[End]). */
const char *hone_reflect_default_prompt(int response);

/* Selective Reflection-Tuning of a dataset file: the teacher reflects on every example (instruction reflection and
 * response reflection of the original, then response reflection of Q), the student scores IFD and r-IFD of the
 * four versions and hone_reflect_decide keeps one or none. output_path gets the kept examples in file order as
 * alpaca rows {"index", "version", "instruction", "input", "output", "ifd", "rifd"}; decisions_path one line per
 * example {"index", "selected", "version", "reason", "instruction_from", "scores": {"orig": {"ifd", "rifd"}, …},
 * "missing": {"Q": "why", …}, "versions": {"orig": {"instruction", "output"}, "Q": …, …}} (the instruction of the
 * original: its instruction and input joined by "\n"). Both are written atomically at the end.
 * Every teacher reply is appended to journal_path (and flushed) as it arrives, keyed by a hash of the teacher (its
 * hone_teacher_describe: with the temperature and seed when it samples) and the request: a run killed at any
 * moment asks again only what had no reply, and a changed prompt, teacher or sampling setting asks anew. Requests
 * the teacher fails are errors of that version only (counted; the rest goes on). */
hone_status hone_reflect_file(hone_model *student, const hone_reflect_options *o, hone_reflect_summary *out);

/* A self-contained HTML page (inline SVG, no scripts) about a reflection run, from what its files hold: the
 * decisions file and the teacher journal of hone_reflect_file, either of which may not exist yet (a run killed
 * before the scoring has only its journal, whose torn last line is skipped; both missing is an error). From the
 * decisions: the number of examples, of each reason and of teacher failures; per version (Q, A, QA) the variants
 * the teacher proposed, its failures, its replies without markers, those that won the rule's comparison and those
 * kept; histograms of the student's ifd of the original and of the reflected instructions (step 1) and of the rifd
 * of the responses compared with and of the reflected ones (step 2); the first `examples` examples, the original
 * beside the kept version (or the dropped candidate) with every version's scores and what the rule decided. From
 * the journal: the replies received, by request. A file that is not what hone_reflect_file writes is an error
 * naming its line. Atomic. */
hone_status hone_reflect_report_write(const char *path, const char *decisions_path, const char *journal_path,
                                      size_t examples);

#ifdef __cplusplus
}
#endif
#endif
