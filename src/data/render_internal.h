/* Internals shared by render.c (a conversation rendered whole by its chat template) and render_fastchat.c (a
 * conversation rendered turn by turn with a FastChat template, as axolotl's legacy sharegpt strategy does). */
#ifndef HONE_RENDER_INTERNAL_H
#define HONE_RENDER_INTERNAL_H

#include <stdint.h>

#include "hone/render.h"

#define IGNORE_INDEX (-100)
#define RENDER_NO_EOT SIZE_MAX

/* One turn of a tokenized conversation: tokens [a, end) are its content, trained when `trained`; eot is its
 * end-of-turn token (RENDER_NO_EOT: none), trained as train_on_eos says (it may lie inside [a, end): eot decides). */
typedef struct {
    size_t a, end, eot;
    int trained;
    int assistant;
} render_turn;

/* Is the message trained: its weight (0 never, 1 always), else its role listed in roles_to_train? */
int render_message_trained(const hone_message *m, const hone_render_options *o);
/* The last special token in ids[a..b), or b when there is none. */
size_t render_last_special(const hone_tokenizer *tok, const int32_t *ids, size_t a, size_t b);
/* Labels of out (already filled with ids or IGNORE_INDEX, as train_on_inputs says) from the turns, in order;
 * flags HONE_RENDER_NO_END_OF_TURN for a trained assistant turn without an end-of-turn token. */
void render_apply_turns(const hone_render_options *o, const render_turn *turns, size_t n, hone_sequence *out);

/* hone_render_example / hone_render_prompt (prompt_only) of an SFT example with a conversation style. */
hone_status render_fastchat(const hone_example *ex, const hone_render_options *o, int prompt_only, hone_sequence *out);

#endif
