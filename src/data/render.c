/* Examples → training sequences (see hone/render.h): chat-template rendering, whole-text tokenization, and the
 * label mask from the text spans of the trained turns. Conversations with a FastChat conversation style go to
 * render_fastchat.c instead. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "data/render_internal.h"

hone_status hone_chat_template_pick(hone_chat_template **out, const char *choice, const char *model_dir) {
    *out = NULL;
    if (choice && hone_file_exists(choice)) {
        char *src;
        size_t len;
        HONE_TRY(hone_file_read(choice, &src, &len));
        hone_status st = hone_chat_template_compile(out, src, len, choice, 0);
        free(src);
        return st;
    }
    if (choice) return hone_chat_template_builtin(out, choice);
    if (model_dir) {
        /* a template that is there but broken is an error; only a missing one falls back */
        const hone_status st = hone_chat_template_from_model(out, model_dir);
        if (st != HONE_ERR_INVALID) return st;
    }
    hone_log(HONE_LOG_INFO, "%s has no chat template: using the built-in alpaca template",
             model_dir ? model_dir : "the model");
    return hone_chat_template_builtin(out, "alpaca");
}

hone_status hone_train_eos_parse(const char *name, hone_train_eos *out) {
    static const char *const names[] = {"turn", "last", "all", "none"};
    for (int i = 0; i < 4; i++)
        if (!strcmp(name, names[i])) {
            *out = (hone_train_eos)i;
            return HONE_OK;
        }
    return hone_errorf(HONE_ERR_INVALID, "train_on_eos: unknown value '%s' (expected turn, last, all or none)", name);
}

void hone_sequence_free(hone_sequence *s) {
    free(s->text);
    free(s->input_ids);
    free(s->labels);
    memset(s, 0, sizeof *s);
}

char *hone_sequence_to_json(const hone_sequence *s) {
    json_t *text = json_stringn(s->text ? s->text : "", s->text_len);
    char *text_json = text ? json_dumps(text, JSON_ENCODE_ANY) : NULL;
    json_decref(text);
    const size_t len = text_json ? strlen(text_json) : 0;
    char *out = text_json ? malloc(64 + len + 24 * s->n) : NULL;
    if (out) {
        char *p = out;
        p += sprintf(p, "{\"text\": %s, \"input_ids\": [", text_json);
        p = hone_format_int32s(p, s->input_ids, s->n);
        p += sprintf(p, "], \"labels\": [");
        p = hone_format_int32s(p, s->labels, s->n);
        strcpy(p, "]}");
    }
    free(text_json);
    return out;
}

/* Is `role` one of the comma-separated roles? */
static int role_listed(const char *roles, const char *role) {
    const size_t n = strlen(role);
    for (const char *p = roles; *p;) {
        const char *comma = strchr(p, ',');
        const size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == n && !strncmp(p, role, n)) return 1;
        if (!comma) break;
        p = comma + 1;
    }
    return 0;
}

int render_message_trained(const hone_message *m, const hone_render_options *o) {
    if (m->weight == 0 || m->weight == 1) return m->weight;
    return role_listed(o->roles_to_train ? o->roles_to_train : "assistant", m->role);
}

/* The template's text for the first k messages. */
static hone_status render_first(const hone_render_options *o, const hone_conversation *c, size_t k, int add_gen,
                                char **text, size_t *len) {
    const hone_conversation head = {.messages = c->messages, .n_messages = k, .tools_json = c->tools_json};
    /* the tokenizer's special tokens, as transformers passes them (built-in templates have no model of their own) */
    const hone_special_tokens *sp = hone_tokenizer_special(o->tokenizer);
    const hone_chat_render_options ro = {
        .bos_token = sp->bos_token, .eos_token = sp->eos_token, .add_generation_prompt = add_gen};
    return hone_chat_template_render(o->chat_template, &head, &ro, text, len, NULL, NULL);
}

static int is_prefix(const char *a, size_t la, const char *b, size_t lb) { return la <= lb && !memcmp(a, b, la); }

/* Token position of text offset b of the rendered text: the tokens of text[0..b) are compared with those of the
 * whole text; *first = the first token that is not wholly before b, *straddles = 1 when that token starts before
 * b (the two tokenizations part inside it). */
static hone_status token_position(const hone_render_options *o, const char *text, size_t b, const int32_t *ids,
                                  size_t n, size_t *first, int *straddles) {
    *straddles = 0;
    if (b == 0) {
        *first = 0;
        return HONE_OK;
    }
    int32_t *pre = NULL;
    size_t m = 0;
    HONE_TRY(hone_tokenizer_encode(o->tokenizer, text, b, 0, &pre, &m));
    size_t k = 0;
    while (k < m && k < n && pre[k] == ids[k]) k++;
    free(pre);
    *first = k;
    *straddles = k < m;
    return HONE_OK;
}

size_t render_last_special(const hone_tokenizer *tok, const int32_t *ids, size_t a, size_t b) {
    for (size_t i = b; i > a; i--)
        if (hone_tokenizer_is_special(tok, ids[i - 1])) return i - 1;
    return b;
}

void render_apply_turns(const hone_render_options *o, const render_turn *turns, size_t n, hone_sequence *out) {
    size_t last_trained = SIZE_MAX;
    for (size_t i = 0; i < n; i++)
        if (turns[i].trained) last_trained = i;
    for (size_t i = 0; i < n; i++) {
        const render_turn *t = &turns[i];
        if (t->trained) {
            for (size_t k = t->a; k < t->end; k++) out->labels[k] = out->input_ids[k];
            if (t->eot == RENDER_NO_EOT && t->assistant) out->flags |= HONE_RENDER_NO_END_OF_TURN;
        }
        if (t->eot == RENDER_NO_EOT) continue;
        const int eot_trained = o->train_on_eos == HONE_TRAIN_EOS_ALL ||
                                (t->trained && o->train_on_eos == HONE_TRAIN_EOS_TURN) ||
                                (t->trained && o->train_on_eos == HONE_TRAIN_EOS_LAST && i == last_trained);
        if (eot_trained) out->labels[t->eot] = out->input_ids[t->eot];
        else if (!o->train_on_inputs) out->labels[t->eot] = IGNORE_INDEX;
    }
}

static hone_status render_conversation(const hone_example *ex, const hone_render_options *o, hone_sequence *out) {
    const hone_conversation *c = &ex->conversation;
    if (!o->chat_template)
        return hone_errorf(HONE_ERR_INVALID, "example at line %zu is a conversation, and no chat template was given",
                           ex->line);
    HONE_TRY(render_first(o, c, c->n_messages, 0, &out->text, &out->text_len));
    HONE_TRY(hone_tokenizer_encode(o->tokenizer, out->text, out->text_len, 0, &out->input_ids, &out->n));
    const size_t n = out->n;
    out->labels = malloc((n ? n : 1) * sizeof *out->labels);
    render_turn *turns = calloc(c->n_messages ? c->n_messages : 1, sizeof *turns);
    if (!out->labels || !turns) {
        free(turns);
        return hone_errorf(HONE_ERR_NOMEM, "out of memory rendering the example at line %zu", ex->line);
    }
    for (size_t i = 0; i < n; i++) out->labels[i] = o->train_on_inputs ? out->input_ids[i] : IGNORE_INDEX;

    hone_status st = HONE_OK;
    for (size_t i = 0; i < c->n_messages && st == HONE_OK; i++) {
        render_turn *t = &turns[i];
        t->trained = render_message_trained(&c->messages[i], o);
        const int assistant = t->assistant = !strcmp(c->messages[i].role, "assistant");
        char *pre = NULL, *post = NULL;
        size_t lpre = 0, lpost = 0;
        st = render_first(o, c, i, assistant, &pre, &lpre);
        if (st == HONE_OK && !is_prefix(pre, lpre, out->text, out->text_len)) {
            /* the generation prompt is not how the conversation goes on: train from where the text agrees */
            if (assistant) out->flags |= HONE_RENDER_PROMPT_MISMATCH;
            free(pre);
            pre = NULL;
            st = render_first(o, c, i, 0, &pre, &lpre);
        }
        if (st == HONE_OK) st = render_first(o, c, i + 1, 0, &post, &lpost);
        if (st == HONE_OK && (!is_prefix(pre, lpre, out->text, out->text_len) ||
                              !is_prefix(post, lpost, out->text, out->text_len) || lpre > lpost))
            st = hone_errorf(HONE_ERR_UNSUPPORTED,
                             "example at line %zu: the chat template %s renders the first %zu messages differently "
                             "when more follow, so turn %zu cannot be located in the text; choose another template "
                             "with --chat-template NAME",
                             ex->line, hone_chat_template_name(o->chat_template), i + 1, i + 1);
        if (st == HONE_OK && !assistant && t->trained) {
            /* no generation prompt marks where another role's content starts: find the content in its turn */
            const char *content = c->messages[i].content ? c->messages[i].content : "";
            const char *at = *content ? memmem(out->text + lpre, lpost - lpre, content, strlen(content)) : NULL;
            if (at) lpre = (size_t)(at - out->text);
        }
        int straddle_a = 0, straddle_b = 0;
        size_t b = 0;
        if (st == HONE_OK) st = token_position(o, out->text, lpre, out->input_ids, n, &t->a, &straddle_a);
        if (st == HONE_OK) st = token_position(o, out->text, lpost, out->input_ids, n, &b, &straddle_b);
        free(pre);
        free(post);
        if (st != HONE_OK) break;
        b += (size_t)straddle_b; /* a straddling token at the end still holds text of this turn */
        if (straddle_a || straddle_b) out->flags |= HONE_RENDER_STRADDLING_TOKEN;
        /* content ends at the end-of-turn token: text after it (e.g. a newline) is the template's, not the answer's */
        t->end = render_last_special(o->tokenizer, out->input_ids, t->a, b);
        t->eot = t->end < b ? t->end : RENDER_NO_EOT;
    }
    if (st == HONE_OK) render_apply_turns(o, turns, c->n_messages, out);
    free(turns);
    return st;
}

static hone_status render_text(const hone_example *ex, const hone_render_options *o, hone_sequence *out) {
    const size_t len = strlen(ex->text);
    if (!(out->text = strdup(ex->text))) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    out->text_len = len;
    int32_t *ids = NULL;
    size_t n = 0;
    HONE_TRY(hone_tokenizer_encode(o->tokenizer, ex->text, len, 1, &ids, &n));
    const int add_eos = o->eos_id >= 0 && (n == 0 || ids[n - 1] != o->eos_id);
    out->input_ids = malloc((n + 1) * sizeof *ids);
    out->labels = malloc((n + 1) * sizeof *ids);
    if (!out->input_ids || !out->labels) {
        free(ids);
        return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    }
    if (n) memcpy(out->input_ids, ids, n * sizeof *ids);
    free(ids);
    if (add_eos) out->input_ids[n++] = o->eos_id;
    memcpy(out->labels, out->input_ids, n * sizeof *ids);
    out->n = n;
    return HONE_OK;
}

static hone_status copy_tokens(const hone_example *ex, hone_sequence *out) {
    const size_t n = ex->n_tokens;
    out->input_ids = malloc((n ? n : 1) * sizeof *out->input_ids);
    out->labels = malloc((n ? n : 1) * sizeof *out->labels);
    if (!out->input_ids || !out->labels) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    memcpy(out->input_ids, ex->input_ids, n * sizeof *out->input_ids);
    memcpy(out->labels, ex->labels ? ex->labels : ex->input_ids, n * sizeof *out->labels);
    out->n = n;
    return HONE_OK;
}

hone_status hone_render_prompt(const hone_example *ex, const hone_render_options *o, hone_sequence *out) {
    memset(out, 0, sizeof *out);
    if (ex->kind != HONE_EXAMPLE_SFT)
        return hone_errorf(HONE_ERR_UNSUPPORTED, "example at line %zu is a %s row: only conversations have prompts",
                           ex->line, hone_example_kind_name(ex->kind));
    if (ex->conversation_style) {
        const hone_status st = render_fastchat(ex, o, 1, out);
        if (st != HONE_OK) hone_sequence_free(out);
        return st;
    }
    if (!o->chat_template)
        return hone_errorf(HONE_ERR_INVALID, "example at line %zu is a conversation, and no chat template was given",
                           ex->line);
    const hone_conversation *c = &ex->conversation;
    size_t k = c->n_messages;
    while (k > 0 && !strcmp(c->messages[k - 1].role, "assistant")) k--;
    hone_status st = render_first(o, c, k, 1, &out->text, &out->text_len);
    if (st == HONE_OK) st = hone_tokenizer_encode(o->tokenizer, out->text, out->text_len, 0, &out->input_ids, &out->n);
    if (st == HONE_OK && !(out->labels = malloc((out->n ? out->n : 1) * sizeof *out->labels)))
        st = hone_errorf(HONE_ERR_NOMEM, "out of memory");
    for (size_t i = 0; st == HONE_OK && i < out->n; i++) out->labels[i] = IGNORE_INDEX;
    if (st != HONE_OK) hone_sequence_free(out);
    return st;
}

hone_status hone_render_example(const hone_example *ex, const hone_render_options *o, hone_sequence *out) {
    memset(out, 0, sizeof *out);
    hone_status st;
    switch (ex->kind) {
    case HONE_EXAMPLE_SFT:
        st = ex->conversation_style ? render_fastchat(ex, o, 0, out) : render_conversation(ex, o, out);
        break;
    case HONE_EXAMPLE_TEXT: st = render_text(ex, o, out); break;
    case HONE_EXAMPLE_TOKENS: st = copy_tokens(ex, out); break;
    default:
        st = hone_errorf(HONE_ERR_UNSUPPORTED,
                         "example at line %zu is a %s row: preference and KTO data are for preference training, "
                         "not for supervised fine-tuning",
                         ex->line, hone_example_kind_name(ex->kind));
    }
    if (st != HONE_OK) {
        hone_sequence_free(out);
        return st;
    }
    for (size_t i = 0; i < out->n; i++) out->n_trained += out->labels[i] != IGNORE_INDEX;
    return HONE_OK;
}

typedef struct {
    const hone_render_options *o;
    hone_rendered_set *set;
    size_t cap;
} render_file_job;

static hone_status render_into_set(hone_example *ex, void *ctx) {
    render_file_job *job = ctx;
    hone_rendered_set *set = job->set;
    if (set->n == job->cap) {
        const size_t cap = job->cap ? 2 * job->cap : 256;
        hone_sequence *grown = realloc(set->seqs, cap * sizeof *grown);
        if (!grown) return hone_errorf(HONE_ERR_NOMEM, "out of memory for %zu rendered examples", cap);
        set->seqs = grown;
        job->cap = cap;
    }
    hone_sequence *seq = &set->seqs[set->n];
    HONE_TRY(hone_render_example(ex, job->o, seq));
    set->n++;
    for (int k = 0; k < 3; k++) set->flagged[k] += (seq->flags >> k) & 1;
    set->tokens += seq->n;
    set->trained_tokens += seq->n_trained;
    return HONE_OK;
}

hone_status hone_render_file(const char *path, const hone_dataset_options *dopt, const hone_render_options *o,
                             hone_rendered_set *out) {
    render_file_job job = {.o = o, .set = out, .cap = out->n};
    hone_dataset_stats stats;
    const hone_status st = hone_dataset_read(path, dopt, render_into_set, &job, &stats);
    out->stats.rows += stats.rows;
    out->stats.examples += stats.examples;
    out->stats.dropped += stats.dropped;
    for (int r = 0; r < HONE_DROP_COUNT; r++) out->stats.dropped_by[r] += stats.dropped_by[r];
    return st;
}

void hone_rendered_set_free(hone_rendered_set *set) {
    for (size_t i = 0; i < set->n; i++) hone_sequence_free(&set->seqs[i]);
    free(set->seqs);
    memset(set, 0, sizeof *set);
}
