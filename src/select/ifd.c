/* Instruction-following difficulty (ALGORITHMS.md §1): the prompt and target ids of an example, and the packed
 * conditioned / direct passes that score them. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hone/mixture.h"
#include "hone/pack.h"
#include "hone/render.h"
#include "hone/select.h"
#include "select/select_internal.h"

static const char ALPACA_WITH_INPUT[] =
    "Below is an instruction that describes a task, paired with an input that provides further context. Write a "
    "response that appropriately completes the request.\n\n### Instruction:\n%s\n\n### Input:\n%s\n\n### Response:";
static const char ALPACA_NO_INPUT[] = "Below is an instruction that describes a task. Write a response that "
                                      "appropriately completes the request.\n\n### Instruction:\n%s\n\n### Response:";
/* FastChat's vicuna_v1.1 conversation template with one user turn and the assistant's turn opened. */
static const char VICUNA[] = "A chat between a curious user and an artificial intelligence assistant. The assistant "
                             "gives helpful, detailed, and polite answers to the user's questions. USER: %s ASSISTANT:";
/* reverse IFD asks for the instruction as the Flan-style inversion of a mixture does (ALGORITHMS.md §1) */
static const char REVERSE_INSTRUCTION[] = HONE_INVERSION_PROMPT_HEAD "%s" HONE_INVERSION_PROMPT_TAIL;

hone_status hone_prompt_style_parse(const char *name, hone_prompt_style *out) {
    static const char *const names[] = {"alpaca", "vicuna", "plain", "chat"};
    for (int i = 0; i < 4; i++)
        if (!strcmp(name, names[i])) {
            *out = (hone_prompt_style)i;
            return HONE_OK;
        }
    return hone_errorf(HONE_ERR_INVALID, "prompt template '%s' is not known (expected alpaca, vicuna, plain or chat)",
                       name);
}

void hone_ifd_tokens_free(hone_ifd_tokens *t) {
    free(t->prompt);
    free(t->answer);
    memset(t, 0, sizeof *t);
}

/* printf into a new string. */
static char *format(const char *fmt, const char *a, const char *b) {
    int n = snprintf(NULL, 0, fmt, a, b);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (s) snprintf(s, (size_t)n + 1, fmt, a, b);
    return s;
}

/* The instruction X as one text: instruction and input joined by "\n" (the input left out when empty). */
static char *instruction_text(const hone_example *ex, const hone_message *user) {
    if (!ex->instruction) return strdup(user->content ? user->content : "");
    return *ex->input ? format("%s\n%s", ex->instruction, ex->input) : strdup(ex->instruction);
}

/* The prompt text of a non-chat style for instruction (and input; "" = none). */
static char *template_text(hone_prompt_style style, const char *instruction, const char *input) {
    switch (style) {
    case HONE_PROMPT_ALPACA:
        return *input ? format(ALPACA_WITH_INPUT, instruction, input) : format(ALPACA_NO_INPUT, instruction, "");
    case HONE_PROMPT_VICUNA: {
        char *x = *input ? format("%s\n%s", instruction, input) : strdup(instruction);
        char *s = x ? format(VICUNA, x, "") : NULL;
        free(x);
        return s;
    }
    default:
        return format("%s\n%s\n", instruction, input);
    }
}

/* The chat-template prompt: the example's messages before its last assistant turn, or (reverse) one user turn,
 * rendered with the generation prompt exactly as hone_render_prompt renders what a model is asked. */
static hone_status chat_prompt(const hone_example *ex, const hone_ifd_options *o, const char *reverse_user,
                               hone_ifd_tokens *out) {
    hone_render_options ro = {.tokenizer = o->tokenizer, .chat_template = o->chat_template, .eos_id = -1};
    hone_example prompt_ex = {.kind = HONE_EXAMPLE_SFT, .line = ex->line, .index = ex->index};
    hone_message user = {.role = "user", .content = (char *)reverse_user, .weight = -1};
    const hone_conversation *c = &ex->conversation;
    if (reverse_user) {
        prompt_ex.conversation.messages = &user;
        prompt_ex.conversation.n_messages = 1;
    } else {
        size_t k = c->n_messages;
        while (k > 0 && strcmp(c->messages[k - 1].role, "assistant")) k--;
        prompt_ex.conversation = *c;
        prompt_ex.conversation.n_messages = k > 0 ? k - 1 : 0;
    }
    hone_sequence seq;
    HONE_TRY(hone_render_prompt(&prompt_ex, &ro, &seq));
    out->prompt = seq.input_ids;
    out->n_prompt = seq.n;
    seq.input_ids = NULL;
    hone_sequence_free(&seq);
    return HONE_OK;
}

hone_status hone_ifd_tokenize(const hone_example *ex, const hone_ifd_options *o, int reverse, hone_ifd_tokens *out) {
    memset(out, 0, sizeof *out);
    if (ex->kind != HONE_EXAMPLE_SFT)
        return hone_errorf(HONE_ERR_UNSUPPORTED,
                           "example at line %zu is a %s row: scoring needs instruction / answer examples", ex->line,
                           hone_example_kind_name(ex->kind));
    if (o->style == HONE_PROMPT_CHAT && !o->chat_template)
        return hone_errorf(HONE_ERR_INVALID, "the chat prompt template needs a chat template");
    const hone_message *user = hone_conversation_last(&ex->conversation, "user");
    const hone_message *answer = hone_conversation_last(&ex->conversation, "assistant");
    if (!user || !answer)
        return hone_errorf(HONE_ERR_FORMAT, "example at line %zu has no user turn followed by an assistant answer",
                           ex->line);
    const char *answer_text = answer->content ? answer->content : "";
    char *x = instruction_text(ex, user);
    char *reverse_prompt = reverse && x ? format(REVERSE_INSTRUCTION, answer_text, "") : NULL;
    char *prompt = NULL;
    hone_status st = x && (!reverse || reverse_prompt) ? HONE_OK : hone_errorf(HONE_ERR_NOMEM, "out of memory");
    if (st == HONE_OK && o->style == HONE_PROMPT_CHAT) {
        st = chat_prompt(ex, o, reverse_prompt, out);
    } else if (st == HONE_OK) {
        if (reverse) prompt = template_text(o->style, reverse_prompt, "");
        else if (ex->instruction) prompt = template_text(o->style, ex->instruction, ex->input);
        else prompt = template_text(o->style, x, "");
        st = prompt ? hone_tokenizer_encode(o->tokenizer, prompt, strlen(prompt), 1, &out->prompt, &out->n_prompt)
                    : hone_errorf(HONE_ERR_NOMEM, "out of memory");
    }
    const char *target = reverse ? x : answer_text;
    if (st == HONE_OK)
        st = hone_tokenizer_encode(o->tokenizer, target, strlen(target), 0, &out->answer, &out->n_answer);
    free(prompt);
    free(reverse_prompt);
    free(x);
    if (st != HONE_OK) hone_ifd_tokens_free(out);
    return st;
}

/* ---- scoring ------------------------------------------------------------------------------------------------ */

typedef struct {
    const hone_sequence *seqs;
    size_t n_seqs;
    double *sums; /* per sequence */
    double *nll;  /* per position of a batch */
} score_ctx;

/* Sequence `which` (0 = conditioned, 1 = direct) of example i: ids and labels, the scored answer tokens labelled. */
static hone_status make_sequence(const hone_ifd_input *in, int which, int n_answer, int32_t start_id,
                                 hone_sequence *s) {
    const size_t n_lead = which == 0 ? in->n_prompt : 1, n = n_lead + (size_t)n_answer;
    memset(s, 0, sizeof *s);
    s->input_ids = malloc(n * sizeof(int32_t));
    s->labels = malloc(n * sizeof(int32_t));
    if (!s->input_ids || !s->labels) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    if (which == 0) memcpy(s->input_ids, in->prompt, in->n_prompt * sizeof(int32_t));
    else s->input_ids[0] = start_id;
    memcpy(s->input_ids + n_lead, in->answer, (size_t)n_answer * sizeof(int32_t));
    for (size_t t = 0; t < n; t++) s->labels[t] = t < n_lead ? IGNORE_INDEX : s->input_ids[t];
    s->n = n;
    s->n_trained = (size_t)n_answer;
    return HONE_OK;
}

/* Adds each position's NLL of the batch (rows r0 .. r0 + b - 1, cut to T columns) into sums[sequence]. */
static hone_status sum_nll(hone_model *m, const hone_packed *rows, size_t r0, int b, int T, const int32_t *targets,
                           void *ctx) {
    const score_ctx *sc = ctx;
    hone_loss loss;
    HONE_TRY(hone_head_token_nll(m, targets, sc->nll, &loss));
    size_t k, col;
    for (size_t i = 0; i < sc->n_seqs; i++)
        if (select_in_batch(rows, i, r0, b, &k, &col))
            for (size_t t = 0; t < sc->seqs[i].n; t++) sc->sums[i] += sc->nll[k * T + col + t];
    return HONE_OK;
}

hone_status hone_score_ifd(hone_model *m, const hone_ifd_input *in, size_t n, int sequence_len, int micro_batch_size,
                           int32_t start_id, hone_ifd_score *out) {
    if (sequence_len < 2) return hone_errorf(HONE_ERR_INVALID, "sequence_len must be at least 2");
    if (micro_batch_size < 1) return hone_errorf(HONE_ERR_INVALID, "micro_batch_size must be at least 1");
    const int V = hone_model_get_config(m)->vocab_size;
    if (start_id < 0 || start_id >= V)
        return hone_errorf(HONE_ERR_INVALID, "the start token %d of the direct pass is outside the vocabulary (%d)",
                           (int)start_id, V);
    hone_sequence *seqs = calloc(2 * n + 1, sizeof *seqs);
    double *sums = calloc(2 * n + 1, sizeof *sums);
    size_t *example_of = malloc((2 * n + 1) * sizeof *example_of);
    hone_status st = seqs && sums && example_of ? HONE_OK : hone_errorf(HONE_ERR_NOMEM, "out of memory");
    size_t n_seqs = 0;
    for (size_t i = 0; i < n && st == HONE_OK; i++) {
        hone_ifd_score *sc = &out[i];
        memset(sc, 0, sizeof *sc);
        sc->loss_cond = sc->loss_direct = sc->ifd = sc->ifd_loss = NAN;
        const size_t room = in[i].n_prompt < (size_t)sequence_len ? (size_t)sequence_len - in[i].n_prompt : 0;
        if (in[i].n_answer == 0) sc->status = HONE_IFD_EMPTY_ANSWER;
        else if (room == 0) sc->status = HONE_IFD_PROMPT_TOO_LONG;
        if (sc->status != HONE_IFD_SCORED) continue;
        sc->n_answer_tokens = (int)(in[i].n_answer < room ? in[i].n_answer : room);
        for (int which = 0; which < 2 && st == HONE_OK; which++) {
            example_of[n_seqs] = i;
            st = make_sequence(&in[i], which, sc->n_answer_tokens, start_id, &seqs[n_seqs++]);
        }
    }
    hone_packed rows = {0};
    const hone_pack_options po = {.sequence_len = sequence_len, .sample_packing = 1, .pad_id = start_id};
    if (st == HONE_OK && n_seqs) st = hone_pack(seqs, n_seqs, &po, &rows);
    score_ctx ctx = {.seqs = seqs, .n_seqs = n_seqs, .sums = sums};
    if (st == HONE_OK && n_seqs) {
        ctx.nll = malloc(sizeof(double) * (size_t)micro_batch_size * (size_t)sequence_len);
        st = ctx.nll ? select_run_packed(m, &rows, micro_batch_size, sum_nll, &ctx)
                     : hone_errorf(HONE_ERR_NOMEM, "out of memory");
    }
    free(ctx.nll);
    for (size_t s = 0; s + 1 < n_seqs && st == HONE_OK; s += 2) {
        hone_ifd_score *sc = &out[example_of[s]];
        sc->loss_cond = sums[s] / sc->n_answer_tokens;
        sc->loss_direct = sums[s + 1] / sc->n_answer_tokens;
        sc->ifd = exp(sc->loss_cond - sc->loss_direct);
        sc->ifd_loss = sc->loss_cond / sc->loss_direct;
    }
    hone_packed_free(&rows);
    for (size_t s = 0; s < n_seqs; s++) hone_sequence_free(&seqs[s]);
    free(seqs);
    free(sums);
    free(example_of);
    return st;
}

int32_t hone_ifd_start_token(const hone_tokenizer *tok, const hone_model *m) {
    const hone_special_tokens *sp = hone_tokenizer_special(tok);
    const hone_model_config *c = hone_model_get_config(m);
    if (sp->bos_id >= 0) return sp->bos_id;
    if (c->bos_token_id >= 0) return c->bos_token_id;
    return sp->eos_id >= 0 ? sp->eos_id : c->eos_token_id;
}
