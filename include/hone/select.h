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

#include "hone/base.h"
#include "hone/chat_template.h"
#include "hone/dataset.h"
#include "hone/model.h"
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
} hone_select_options;

typedef struct {
    hone_select_reason reason;
    size_t rank;       /* 1-based place in descending ifd among the examples past the thresholds; 0 for the rest */
    double similarity; /* TOO_SIMILAR: the cosine similarity to the nearest kept example */
} hone_select_decision;

/* Decides for each of n examples (ifd[i], rifd[i]; NaN = not scored, rifd may be NULL): thresholds first, then in
 * descending ifd (ties: file order) each example is kept unless too similar to one kept before it, until the
 * cap. Deterministic. */
hone_status hone_select_ifd(const double *ifd, const double *rifd, size_t n, const hone_select_options *o,
                            hone_select_decision *out);

typedef struct {
    size_t examples;
    size_t by_reason[HONE_SELECT_REASON_COUNT]; /* by_reason[HONE_SELECT_KEPT]: kept */
} hone_select_summary;

/* Selects from a scores file written by hone_score_file (embeddings, when o->max_similarity > 0, in its row order):
 * output_path gets the kept rows in file order, each its scores row plus "rank"; decisions_path (may be NULL)
 * gets one {"index", "selected", "reason", "rank", "ifd", "rifd"[, "similarity"]} line per example. Both atomic. */
hone_status hone_select_file(const char *scores_path, const hone_select_options *o, const char *output_path,
                             const char *decisions_path, hone_select_summary *out);

#ifdef __cplusplus
}
#endif
#endif
