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

#ifdef __cplusplus
}
#endif
#endif
