/* hone/render.h — examples → training sequences: the rendered text, its token ids, and labels (−100 where a
 * token is not trained), with the loss mask of axolotl / TRL's assistant-only training.
 *
 *     hone_render_options o = {.tokenizer = tok, .chat_template = tmpl};   // defaults: assistant turns only
 *     hone_sequence seq;
 *     if (hone_render_example(&ds.examples[i], &o, &seq) != HONE_OK) die(hone_error());
 *     // seq.input_ids[0..seq.n), seq.labels[0..seq.n); seq.flags says what looked wrong
 *     hone_sequence_free(&seq);
 *
 * A conversation is rendered whole by its chat template and tokenized whole (add_special_tokens false, as
 * transformers' apply_chat_template(tokenize=True) does: the template writes BOS itself), so the ids are exactly
 * what the model sees at inference. The trained part of turn i is the text between
 * render(messages[:i], add_generation_prompt = (turn i is an assistant turn)) and render(messages[:i+1]): the
 * turn's content and its end-of-turn marker, not the role header (for turns of other roles, which have no
 * generation prompt, the part starts where the message's content first appears in its turn). Text offsets become
 * token positions by tokenizing each boundary's prefix: a token that straddles a boundary counts as inside the trained part (as
 * transformers' char_to_token marks it). Trailing text after the turn's last special token (ChatML's "\n" after
 * <|im_end|>) is not trained.
 *
 * Which turns are trained: messages whose role is in roles_to_train (default "assistant"), unless the message's
 * weight says otherwise (0 never, 1 always); train_on_inputs trains every token. train_on_eos decides the
 * end-of-turn token (the last special token of a turn): turn = with every trained turn, last = only with the last
 * trained turn, all = also after untrained turns, none = never.
 *
 * Plain text examples are tokenized with the tokenizer's special tokens and end with eos_id (every token
 * trained); token examples keep their ids and labels (labels = ids when the row had none). Preference and KTO
 * rows are not SFT data: an error says so.
 */
#ifndef HONE_RENDER_H
#define HONE_RENDER_H

#include "hone/chat_template.h"
#include "hone/dataset.h"
#include "hone/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { HONE_TRAIN_EOS_TURN = 0, HONE_TRAIN_EOS_LAST, HONE_TRAIN_EOS_ALL, HONE_TRAIN_EOS_NONE } hone_train_eos;

typedef struct {
    const hone_tokenizer *tokenizer;         /* required */
    const hone_chat_template *chat_template; /* required for conversations */
    int train_on_inputs;                     /* 1: every token is trained */
    hone_train_eos train_on_eos;
    const char *roles_to_train; /* comma-separated roles; NULL = "assistant" */
    int32_t eos_id;             /* appended to plain text examples; -1 = none */
} hone_render_options;

/* What a rendering noticed; the caller counts these and warns once with the counts. */
enum {
    HONE_RENDER_NO_END_OF_TURN = 1,     /* a trained assistant turn has no special token to end it: the model
                                           would not learn to stop */
    HONE_RENDER_PROMPT_MISMATCH = 2,    /* the generation prompt (add_generation_prompt) is not how the training
                                           text continues: inference would see a different format */
    HONE_RENDER_STRADDLING_TOKEN = 4,   /* a token spans the boundary of a trained part */
};

typedef struct {
    char *text; /* the rendered conversation or the text, NUL-terminated; NULL for token rows */
    size_t text_len;
    int32_t *input_ids, *labels; /* n each */
    size_t n;
    size_t n_trained; /* labels that are not −100 */
    int flags;        /* HONE_RENDER_* */
} hone_sequence;

hone_status hone_render_example(const hone_example *ex, const hone_render_options *o, hone_sequence *out);
/* The generation prompt of a conversation: its messages up to the last user turn (trailing assistant turns left
 * out), rendered with add_generation_prompt; every label is −100. What a model sees when asked to answer. */
hone_status hone_render_prompt(const hone_example *ex, const hone_render_options *o, hone_sequence *out);
void hone_sequence_free(hone_sequence *s);
/* One line of `hone data render`: {"text": "...", "input_ids": [...], "labels": [...]} (no newline; free()). */
char *hone_sequence_to_json(const hone_sequence *s);

/* The chat template to train with: `choice` is a built-in name (hone_chat_template_builtin_names) or a Jinja
 * file; NULL takes the model folder's own template (tokenizer_config.json / chat_template.jinja), and a model
 * without one gets the built-in "alpaca" (said in an info line). */
hone_status hone_chat_template_pick(hone_chat_template **out, const char *choice, const char *model_dir);

/* Every example of a dataset file, rendered. flagged[k] counts the examples with flag 1 << k (HONE_RENDER_*). */
typedef struct {
    hone_sequence *seqs;
    size_t n;
    hone_dataset_stats stats;
    size_t flagged[3];
    size_t tokens, trained_tokens;
} hone_rendered_set;

/* Reads the dataset at path (hone_dataset_read with dopt) and renders each example with o, appending to out
 * (zero it before the first call; several files may go into one set). */
hone_status hone_render_file(const char *path, const hone_dataset_options *dopt, const hone_render_options *o,
                             hone_rendered_set *out);
void hone_rendered_set_free(hone_rendered_set *set);
/* The validation split (val_set_size), before packing: a fraction in (0, 1) (ceil of the fraction of set->n, the
 * fraction read as the decimal written) or a whole count >= 1 of examples moves from set to *eval, chosen by a
 * permutation drawn from the seed; both keep the examples' order, and their token counts are recounted. At least
 * one example must stay for training. */
hone_status hone_rendered_split(hone_rendered_set *set, double val_set_size, uint64_t seed, hone_rendered_set *eval);

/* "turn" | "last" | "all" | "none"; anything else is an error listing them. */
hone_status hone_train_eos_parse(const char *name, hone_train_eos *out);

#ifdef __cplusplus
}
#endif
#endif
