/* FastChat conversation templates rendered turn by turn (hone_conversation_style in hone/dataset.h): the ids and
 * labels of axolotl's legacy `type: sharegpt` + `conversation: NAME` datasets. What this follows (axolotl until
 * axolotl-ai-cloud/axolotl fd3b80716 "remove fastchat and sharegpt"; its tests/fixtures/conversation.tokenized.json
 * is the golden output):
 *   prompters.py ShareGPTPrompter._build_result  a leading system message replaces the template's system message;
 *                                                user and assistant messages take the template's two roles
 *   monkeypatch/fastchat_conversation_turns.py   get_turns: the (role prefix, content) pairs of each separator style
 *   prompt_tokenizers.py ShareGPTPromptTokenizingStrategy.tokenize_prompt, _tokenize
 *                                                each pair tokenized on its own with the tokenizer's special tokens;
 *                                                the first token dropped when it is BOS, except for the empty-role
 *                                                (system) pair; EOS appended to an assistant pair not ending with it
 *                                                (unless chatml's separator is the EOS token); in assistant pairs the
 *                                                tokens of the role prefix without trailing whitespace are masked
 * The templates are FastChat's (lm-sys/FastChat 27a05b04, the commit axolotl pinned) but chatml, which axolotl
 * registers itself. axolotl's truncation of each turn at sequence_len is not done: hone cuts whole sequences. */
#include <stdlib.h>
#include <string.h>

#include "data/render_internal.h"

typedef struct {
    const char *system_head, *system_tail; /* FastChat's system_template: head {system_message} tail */
    const char *default_system;
    const char *user, *assistant; /* FastChat's roles */
    const char *sep, *sep2;       /* sep2: after assistant messages (vicuna) */
} fastchat_template;

static const fastchat_template templates[HONE_CONVERSATION_COUNT] = {
    [HONE_CONVERSATION_VICUNA_V1_1] = {.system_head = "", /* SeparatorStyle.ADD_COLON_TWO */
                                       .system_tail = "",
                                       .default_system = "A chat between a curious user and an artificial "
                                                         "intelligence assistant. The assistant gives helpful, "
                                                         "detailed, and polite answers to the user's questions.",
                                       .user = "USER",
                                       .assistant = "ASSISTANT",
                                       .sep = " ",
                                       .sep2 = "</s>"},
    [HONE_CONVERSATION_LLAMA_2] = {.system_head = "[INST] <<SYS>>\n", /* SeparatorStyle.LLAMA2: no separators */
                                   .system_tail = "\n<</SYS>>\n\n",
                                   .default_system = "",
                                   .user = "[INST]",
                                   .assistant = "[/INST]"},
    [HONE_CONVERSATION_CHATML] = {.system_head = "<|im_start|>system\n", /* SeparatorStyle.CHATML */
                                  .system_tail = "",
                                  .default_system = "You are a helpful assistant.",
                                  .user = "<|im_start|>user",
                                  .assistant = "<|im_start|>assistant",
                                  .sep = "<|im_end|>"},
};

/* ---- the turns as text ---- */

typedef struct {
    char *p;
    size_t n, cap;
    int failed; /* out of memory */
} text_buf;

static void put(text_buf *t, const char *s) {
    const size_t len = strlen(s);
    if (t->failed) return;
    if (t->n + len + 1 > t->cap) {
        const size_t cap = 2 * (t->n + len + 1) + 256;
        char *grown = realloc(t->p, cap);
        if (!grown) {
            t->failed = 1;
            return;
        }
        t->p = grown;
        t->cap = cap;
    }
    memcpy(t->p + t->n, s, len + 1);
    t->n += len;
}

typedef enum { PART_SYSTEM, PART_USER, PART_ASSISTANT } part_kind;

/* One (role prefix, content) pair of get_turns: text [at, content_at) is the prefix, [content_at, end) the rest. */
typedef struct {
    size_t at, content_at, end;
    part_kind kind;
    const hone_message *message; /* NULL for the system part and the generation prompt */
} part;

typedef struct {
    text_buf text;
    part *parts;
    size_t n_parts;
} turns;

static part *open_part(turns *r, part_kind kind, const hone_message *m) {
    part *p = &r->parts[r->n_parts++];
    *p = (part){.at = r->text.n, .content_at = r->text.n, .kind = kind, .message = m};
    return p;
}

/* The system part: prefix "", content as the caller puts it. */
static part *open_system(turns *r) { return open_part(r, PART_SYSTEM, NULL); }

/* The pairs of get_turns for messages m[0..n) (system message taken out) and, with add_gen, an empty assistant
 * message (FastChat's append_message(roles[1], None), the generation prompt). */
static void layout(turns *r, hone_conversation_style style, const char *sys, const hone_message *m, size_t n,
                   int add_gen) {
    const fastchat_template *f = &templates[style];
    text_buf *t = &r->text;
    part *p;
    size_t first = 0;
    if (style == HONE_CONVERSATION_VICUNA_V1_1 || style == HONE_CONVERSATION_CHATML) {
        p = open_system(r);
        put(t, f->system_head), put(t, sys), put(t, f->system_tail), put(t, f->sep);
        if (style == HONE_CONVERSATION_CHATML) put(t, "\n");
        p->end = t->n;
    } else if (*sys) { /* llama-2: the system prompt only when there is one, holding the first user message */
        p = open_system(r);
        put(t, f->system_head), put(t, sys), put(t, f->system_tail);
        if (n && !strcmp(m[0].role, "user")) put(t, m[0].content ? m[0].content : ""), first = 1;
        p->end = t->n;
    }
    for (size_t j = first; j < n + (size_t)add_gen; j++) {
        const size_t i = j - first; /* FastChat's index into its message list */
        const hone_message *msg = j < n ? &m[j] : NULL;
        const int user = msg && !strcmp(msg->role, "user");
        const char *role = user ? f->user : f->assistant, *content = msg && msg->content ? msg->content : "";
        p = open_part(r, user ? PART_USER : PART_ASSISTANT, msg);
        if (style == HONE_CONVERSATION_VICUNA_V1_1) {
            put(t, role), put(t, *content ? ": " : ":");
            p->content_at = t->n;
            if (*content) put(t, content), put(t, i % 2 ? f->sep2 : f->sep);
        } else if (style == HONE_CONVERSATION_LLAMA_2) {
            if (*content && (i % 2 == 0) == !*sys) put(t, "<s> ");
            put(t, role);
            if (*content) put(t, " ");
            p->content_at = t->n;
            put(t, content);
        } else {
            put(t, role), put(t, "\n");
            p->content_at = t->n;
            if (*content) put(t, content), put(t, f->sep), put(t, "\n");
        }
        p->end = t->n;
    }
}

/* ---- the turns as tokens ---- */

typedef struct {
    int32_t *v;
    size_t n, cap;
} ids_buf;

/* axolotl's _tokenize: text[0..len) with special tokens, EOS appended when add_eos and it is not last, then the
 * first token dropped when strip_bos and it is BOS. The ids go to the end of out; *n receives their count. */
static hone_status tokenize_part(const hone_tokenizer *tok, const char *text, size_t len, int add_eos, int strip_bos,
                                 ids_buf *out, size_t *n) {
    *n = 0;
    if (!len) return HONE_OK;
    const hone_special_tokens *sp = hone_tokenizer_special(tok);
    int32_t *ids = NULL;
    size_t m = 0;
    HONE_TRY(hone_tokenizer_encode(tok, text, len, 1, &ids, &m));
    if (out->n + m + 1 > out->cap) {
        const size_t cap = 2 * (out->n + m + 1) + 256;
        int32_t *grown = realloc(out->v, cap * sizeof *grown);
        if (!grown) {
            free(ids);
            return hone_errorf(HONE_ERR_NOMEM, "out of memory for %zu token ids", cap);
        }
        out->v = grown;
        out->cap = cap;
    }
    const size_t start = out->n, skip = strip_bos && m && ids[0] == sp->bos_id;
    for (size_t k = skip; k < m; k++) out->v[out->n++] = ids[k];
    if (m && add_eos && ids[m - 1] != sp->eos_id) out->v[out->n++] = sp->eos_id;
    *n = out->n - start;
    free(ids);
    return HONE_OK;
}

/* The token count of a role prefix without its trailing whitespace (Python's str.rstrip), as axolotl masks it. */
static hone_status role_tokens(const hone_tokenizer *tok, const char *prefix, size_t len, size_t *n) {
    while (len && strchr(" \t\n\r\v\f", prefix[len - 1])) len--;
    ids_buf scratch = {0};
    const hone_status st = tokenize_part(tok, prefix, len, 0, 1, &scratch, n);
    free(scratch.v);
    return st;
}

/* Checks that the messages after a leading system message are user and assistant messages without tool calls. */
static hone_status check_messages(const hone_example *ex, const hone_message *m, size_t n, size_t offset) {
    const char *name = hone_conversation_style_name(ex->conversation_style);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(m[i].role, "user") && strcmp(m[i].role, "assistant"))
            return hone_errorf(HONE_ERR_UNSUPPORTED,
                               "example at line %zu: message %zu is a %s message, and the FastChat template %s has "
                               "only a leading system message and user and assistant turns",
                               ex->line, i + 1 + offset, m[i].role, name);
        if (m[i].tool_calls_json)
            return hone_errorf(HONE_ERR_UNSUPPORTED,
                               "example at line %zu: message %zu has tool calls, which the FastChat template %s "
                               "cannot show; use a chat template with tools instead of the conversation option",
                               ex->line, i + 1 + offset, name);
    }
    return HONE_OK;
}

hone_status render_fastchat(const hone_example *ex, const hone_render_options *o, int prompt_only, hone_sequence *out) {
    const hone_conversation *c = &ex->conversation;
    const fastchat_template *f = &templates[ex->conversation_style];
    const hone_special_tokens *sp = hone_tokenizer_special(o->tokenizer);
    const hone_message *m = c->messages;
    size_t n = c->n_messages;
    const int has_system = n && !strcmp(m[0].role, "system");
    const char *sys = has_system ? (m[0].content ? m[0].content : "") : f->default_system;
    m += has_system, n -= (size_t)has_system;
    if (prompt_only)
        while (n && !strcmp(m[n - 1].role, "assistant")) n--;
    HONE_TRY(check_messages(ex, m, n, (size_t)has_system));
    if (sp->eos_id < 0 && !prompt_only)
        return hone_errorf(HONE_ERR_INVALID,
                           "example at line %zu: the tokenizer %s has no EOS token, which the FastChat template %s "
                           "appends to every answer",
                           ex->line, hone_tokenizer_path(o->tokenizer),
                           hone_conversation_style_name(ex->conversation_style));

    turns r = {.parts = malloc((n + 2) * sizeof *r.parts)};
    render_turn *spans = calloc(n + 2, sizeof *spans);
    ids_buf ids = {0};
    size_t n_spans = 0;
    hone_status st = r.parts && spans ? HONE_OK : hone_errorf(HONE_ERR_NOMEM, "out of memory");
    if (st == HONE_OK) {
        layout(&r, ex->conversation_style, sys, m, n, prompt_only);
        if (r.text.failed || !r.text.p) st = hone_errorf(HONE_ERR_NOMEM, "out of memory rendering line %zu", ex->line);
    }
    /* chatml whose separator is the EOS token already ends answers with it */
    const int add_eos =
        !(ex->conversation_style == HONE_CONVERSATION_CHATML && sp->eos_token && !strcmp(f->sep, sp->eos_token));
    for (size_t i = 0; i < r.n_parts && st == HONE_OK; i++) {
        const part *p = &r.parts[i];
        const size_t start = ids.n;
        size_t len = 0, role_len = 0;
        /* answers end with EOS; the generation prompt's empty assistant part (no message) does not */
        st = tokenize_part(o->tokenizer, r.text.p + p->at, p->end - p->at,
                           p->kind == PART_ASSISTANT && p->message && add_eos, p->kind != PART_SYSTEM, &ids, &len);
        if (st == HONE_OK && p->message)
            st = role_tokens(o->tokenizer, r.text.p + p->at, p->content_at - p->at, &role_len);
        if (st != HONE_OK || !p->message) continue;
        render_turn *t = &spans[n_spans++];
        t->a = start + (role_len < len ? role_len : len);
        t->end = start + len;
        const size_t eot = render_last_special(o->tokenizer, ids.v, t->a, t->end);
        t->eot = eot < t->end ? eot : RENDER_NO_EOT;
        t->trained = render_message_trained(p->message, o);
        t->assistant = p->kind == PART_ASSISTANT;
    }
    if (st == HONE_OK && !(out->labels = malloc((ids.n ? ids.n : 1) * sizeof *out->labels)))
        st = hone_errorf(HONE_ERR_NOMEM, "out of memory");
    if (st == HONE_OK) {
        out->text = r.text.p, out->text_len = r.text.n;
        out->input_ids = ids.v, out->n = ids.n;
        r.text.p = NULL, ids.v = NULL;
        const int all = o->train_on_inputs && !prompt_only;
        for (size_t k = 0; k < out->n; k++) out->labels[k] = all ? out->input_ids[k] : IGNORE_INDEX;
        if (!prompt_only) render_apply_turns(o, spans, n_spans, out);
    }
    free(r.text.p);
    free(r.parts);
    free(spans);
    free(ids.v);
    return st;
}
