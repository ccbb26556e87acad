/* The pre-tokenizer pipeline: Split, Digits, Punctuation, Whitespace, WhitespaceSplit, Metaspace and ByteLevel
 * steps, alone or in a Sequence (a lone ByteLevel or Metaspace keeps its direct path in encode.c).
 *
 * Hugging Face applies each step of a Sequence to every piece the previous step left, and a step only ever looks
 * inside one piece, so hone runs the steps depth first: a step cuts its piece and hands each part straight to the
 * next step, the last one to BPE. Nothing is collected and nothing is allocated per piece.
 *
 * ByteLevel writes every byte as a printable character. When it is the last step (GPT-2, Llama 3, Qwen2) BPE
 * gets raw bytes and maps them itself; when steps follow it (Falcon: Punctuation, ByteLevel, Digits, Split) they
 * see the pieces in byte characters, as in Hugging Face, and the final pieces are mapped back to bytes for BPE.
 *
 * A step finds "matches" in its piece (regex matches, or single characters of a class) and splits the piece
 * around them as NormalizedString::split does for its delimiter behavior, seen as a sequence of (span, is_match)
 * covering the piece:
 *   Removed              the matches are dropped
 *   Isolated             every span is a piece
 *   MergedWithPrevious   a match joins the span before it
 *   MergedWithNext       a match joins the span after it (the last match of a run of them does)
 *   Contiguous           consecutive spans that are all matches, or all not, form one piece
 * invert swaps which spans are matches. Empty pieces are dropped after merging, so an empty match still cuts.
 * Hugging Face merges over the whole list of spans (MergedWithNext backwards); the same merges come out of one
 * span of look-behind, which is what `splitter` holds. */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "tokenizer/tokenizer_internal.h"

/* Hugging Face's Whitespace pre-tokenizer: the pieces are the matches of Rust's \w+|[^\w\s]+ */
static const char whitespace_pattern[] = "[" TOK_RUST_WORD_CLASS "]+|[^" TOK_RUST_WORD_CLASS "\\p{White_Space}]+";

/* Rust's char::is_numeric: general category Nd, Nl or No */
static int is_numeric(uint32_t cp) {
    utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
    return c == UTF8PROC_CATEGORY_ND || c == UTF8PROC_CATEGORY_NL || c == UTF8PROC_CATEGORY_NO;
}

/* Hugging Face's is_punc: ASCII punctuation (symbols such as $ + < = > ^ ` | ~ included) or a P* category */
static int is_punctuation(uint32_t cp) {
    if (cp < 0x80)
        return (cp >= '!' && cp <= '/') || (cp >= ':' && cp <= '@') || (cp >= '[' && cp <= '`') ||
               (cp >= '{' && cp <= '~');
    switch (utf8proc_category((utf8proc_int32_t)cp)) {
        case UTF8PROC_CATEGORY_PC:
        case UTF8PROC_CATEGORY_PD:
        case UTF8PROC_CATEGORY_PS:
        case UTF8PROC_CATEGORY_PE:
        case UTF8PROC_CATEGORY_PI:
        case UTF8PROC_CATEGORY_PF:
        case UTF8PROC_CATEGORY_PO:
            return 1;
        default:
            return 0;
    }
}

/* ---- loading ---- */

static const char *const behavior_names[] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext",
                                             "Contiguous"};

static hone_status get_behavior(const hone_tokenizer *t, json_t *o, const char *name, int required,
                                tok_split_behavior *out) {
    json_t *v = json_object_get(o, "behavior");
    if (!v && !required) {
        *out = TOK_SPLIT_ISOLATED;
        return HONE_OK;
    }
    for (int b = 0; json_is_string(v) && b < 5; b++)
        if (!strcmp(json_string_value(v), behavior_names[b])) {
            *out = (tok_split_behavior)b;
            return HONE_OK;
        }
    return hone_errorf(HONE_ERR_FORMAT,
                       "%s: %s.behavior must be one of \"Removed\", \"Isolated\", \"MergedWithPrevious\", "
                       "\"MergedWithNext\", \"Contiguous\"%s%s%s",
                       t->path, name, json_is_string(v) ? " (not \"" : "",
                       json_is_string(v) ? json_string_value(v) : "", json_is_string(v) ? "\")" : "");
}

static hone_status get_flag(const hone_tokenizer *t, json_t *o, const char *name, const char *key, int fallback,
                            int *out) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) {
        *out = fallback;
        return HONE_OK;
    }
    if (!json_is_boolean(v)) return hone_errorf(HONE_ERR_FORMAT, "%s: %s.%s must be true or false", t->path, name, key);
    *out = json_is_true(v);
    return HONE_OK;
}

/* Split: {"pattern": {"String": ...} or {"Regex": ...}, "behavior": ..., "invert": ...} */
static hone_status load_split(hone_tokenizer *t, json_t *o, const char *name, tok_pre_op *op) {
    json_t *p = json_object_get(o, "pattern"), *str = json_object_get(p, "String"), *rx = json_object_get(p, "Regex");
    if (!json_is_object(p) || json_object_size(p) != 1 || !(json_is_string(str) || json_is_string(rx)))
        return hone_errorf(HONE_ERR_FORMAT, "%s: %s.pattern must be {\"String\": \"...\"} or {\"Regex\": \"...\"}",
                           t->path, name);
    json_t *text = str ? str : rx;
    char field[128];
    snprintf(field, sizeof field, "%s.pattern.%s", name, str ? "String" : "Regex");
    op->kind = TOK_PRE_REGEX;
    HONE_TRY(get_behavior(t, o, name, 1, &op->behavior));
    HONE_TRY(get_flag(t, o, name, "invert", 0, &op->invert));
    return tok_regex_compile(t, json_string_value(text), json_string_length(text), str ? TOK_RE_LITERAL : TOK_RE_ONIG,
                             field, &op->re, &op->jit);
}

/* One pre-tokenizer; a Sequence, nested or not, adds its steps in order (applying a Sequence is applying its steps
 * one after the other, so nesting changes nothing). */
static hone_status load_one(hone_tokenizer *t, json_t *o, const char *name, int depth) {
    (void)depth;
    json_t *tv = json_object_get(o, "type");
    if (!json_is_object(o) || !json_is_string(tv))
        return hone_errorf(HONE_ERR_FORMAT, "%s: %s must be an object with a string \"type\"", t->path, name);
    const char *type = json_string_value(tv);
    if (!strcmp(type, "Sequence")) return tok_load_sequence(t, o, "pretokenizers", name, load_one);
    int after_byte_level = 0;
    for (size_t k = 0; k < t->n_pre; k++) after_byte_level |= t->pre[k].kind == TOK_PRE_BYTE_LEVEL;
    if (after_byte_level && (!strcmp(type, "ByteLevel") || !strcmp(type, "Metaspace")))
        return hone_errorf(HONE_ERR_UNSUPPORTED,
                           "%s: %s: a %s pre-tokenizer after a ByteLevel one is not supported (only Split, Digits, "
                           "Punctuation, Whitespace and WhitespaceSplit may follow ByteLevel)",
                           t->path, name, type);
    if (t->n_pre == TOK_PRE_MAX)
        return hone_errorf(HONE_ERR_UNSUPPORTED, "%s: %s: more than %d pre-tokenizers are not supported", t->path, name,
                           TOK_PRE_MAX);
    tok_pre_op op = {.behavior = TOK_SPLIT_ISOLATED};
    if (!strcmp(type, "Split")) {
        HONE_TRY(load_split(t, o, name, &op));
    } else if (!strcmp(type, "Digits")) {
        int individual = 0;
        HONE_TRY(get_flag(t, o, name, "individual_digits", 0, &individual));
        op.kind = TOK_PRE_CHARS;
        op.in_class = is_numeric;
        op.behavior = individual ? TOK_SPLIT_ISOLATED : TOK_SPLIT_CONTIGUOUS;
    } else if (!strcmp(type, "Punctuation")) {
        op.kind = TOK_PRE_CHARS;
        op.in_class = is_punctuation;
        HONE_TRY(get_behavior(t, o, name, 0, &op.behavior));
    } else if (!strcmp(type, "WhitespaceSplit")) {
        op.kind = TOK_PRE_CHARS;
        op.in_class = tok_is_whitespace;
        op.behavior = TOK_SPLIT_REMOVED;
    } else if (!strcmp(type, "Whitespace")) {
        op.kind = TOK_PRE_REGEX;
        op.behavior = TOK_SPLIT_REMOVED;
        op.invert = 1;
        HONE_TRY(
            tok_regex_compile(t, whitespace_pattern, strlen(whitespace_pattern), TOK_RE_PCRE2, name, &op.re, &op.jit));
    } else if (!strcmp(type, "ByteLevel")) {
        op.kind = TOK_PRE_BYTE_LEVEL;
        HONE_TRY(get_flag(t, o, name, "add_prefix_space", 1, &op.add_prefix_space));
        HONE_TRY(get_flag(t, o, name, "use_regex", 1, &t->use_regex));
        t->byte_level = 1;
    } else if (!strcmp(type, "Metaspace")) {
        if (t->metaspace)
            return hone_errorf(HONE_ERR_UNSUPPORTED, "%s: %s: a second Metaspace pre-tokenizer is not supported",
                               t->path, name);
        op.kind = TOK_PRE_METASPACE;
        HONE_TRY(tok_pre_tokenizer_metaspace_load(t, o));
    } else {
        return hone_errorf(HONE_ERR_UNSUPPORTED,
                           "%s: %s.type \"%s\" is not supported (only ByteLevel, Metaspace, Split, Digits, "
                           "Punctuation, Whitespace, WhitespaceSplit, or a Sequence of them)",
                           t->path, name, type);
    }
    tok_pre_op *grown = realloc(t->pre, (t->n_pre + 1) * sizeof *grown);
    if (!grown) {
        if (op.re) pcre2_code_free(op.re);
        return hone_errorf(HONE_ERR_NOMEM, "out of memory reading %s", t->path);
    }
    t->pre = grown;
    t->pre[t->n_pre++] = op;
    return HONE_OK;
}

hone_status tok_pre_tokenizer_load(hone_tokenizer *t, json_t *pre) { return load_one(t, pre, "pre_tokenizer", 0); }

void tok_pre_free(hone_tokenizer *t) {
    for (size_t i = 0; i < t->n_pre; i++)
        if (t->pre[i].re) pcre2_code_free(t->pre[i].re);
    free(t->pre);
}

void tok_pre_scratch_free(tok_pre_scratch *s) {
    if (s->md) pcre2_match_data_free(s->md);
    for (int k = 0; k < TOK_PRE_MAX; k++) free(s->buf[k].v);
    free(s->mapped.v);
    free(s->unmapped.v);
    memset(s, 0, sizeof *s);
}

/* ---- running ---- */

typedef struct {
    const hone_tokenizer *t;
    tok_pre_scratch *s;
    pcre2_match_data *byte_level_md;
    tok_word_fn word; /* BPE, after the last step */
    void *ctx;
    int mapped; /* a ByteLevel step is followed by others: the last step's pieces are in byte characters */
} pipeline;

static hone_status run_step(const pipeline *p, size_t k, const uint8_t *w, size_t n, int first);

/* Step k's pieces go on to step k + 1 (the callback form, for the steps that call a tok_word_fn). */
typedef struct {
    const pipeline *p;
    size_t k;
} next_step;

static hone_status to_next_step(void *c, const uint8_t *w, size_t n) {
    const next_step *ns = c;
    return run_step(ns->p, ns->k, w, n, 0);
}

/* A ByteLevel step that others follow hands them its pieces as Hugging Face does: each byte written as its
 * character (so that a Digits step after it sees "¼" in the bytes of "м"). */
static hone_status map_to_next_step(void *c, const uint8_t *w, size_t n) {
    const next_step *ns = c;
    const hone_tokenizer *t = ns->p->t;
    tok_bytes *m = &ns->p->s->mapped;
    m->n = 0;
    for (size_t i = 0; i < n; i++) HONE_TRY(tok_bytes_append(m, t->byte_char[w[i]], t->byte_char_len[w[i]]));
    return run_step(ns->p, ns->k, (const uint8_t *)m->v, m->n, 0);
}

/* The bytes of a piece written in byte characters, for BPE, which maps bytes itself. */
static hone_status unmap(const hone_tokenizer *t, const uint8_t *w, size_t n, tok_bytes *out) {
    out->n = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t bad, k = tok_utf8_next(w + i, n - i, &cp, &bad);
        /* the steps after ByteLevel only cut, so every character is a byte character */
        HONE_ASSERT(k && cp < 324 && t->char_byte[cp] >= 0);
        char b = (char)t->char_byte[cp];
        HONE_TRY(tok_bytes_append(out, &b, 1));
        i += k;
    }
    return HONE_OK;
}

/* The behavior applied to the spans of one piece, holding back at most one span. */
typedef struct {
    const pipeline *p;
    const tok_pre_op *op;
    size_t k; /* the step */
    const uint8_t *w;
    int first;
    size_t start, end; /* the span held back, when held */
    int held, held_match;
    int prev_match; /* the last span seen was a match */
} splitter;

static hone_status emit(splitter *sp, size_t a, size_t b) {
    if (a == b) return HONE_OK;
    return run_step(sp->p, sp->k + 1, sp->w + a, b - a, sp->first && a == 0);
}

static hone_status flush(splitter *sp) {
    if (!sp->held) return HONE_OK;
    sp->held = 0;
    return emit(sp, sp->start, sp->end);
}

static hone_status hold(splitter *sp, size_t a, size_t b, int match) {
    HONE_TRY(flush(sp));
    sp->held = 1;
    sp->start = a;
    sp->end = b;
    sp->held_match = match;
    return HONE_OK;
}

/* The next span [a, b) of the piece, in order. */
static hone_status feed(splitter *sp, size_t a, size_t b, int match) {
    match ^= sp->op->invert;
    int prev = sp->prev_match;
    sp->prev_match = match;
    switch (sp->op->behavior) {
        case TOK_SPLIT_ISOLATED:
            return emit(sp, a, b);
        case TOK_SPLIT_REMOVED:
            return match ? HONE_OK : emit(sp, a, b);
        case TOK_SPLIT_CONTIGUOUS:
            if (sp->held && match == prev) {
                sp->end = b;
                return HONE_OK;
            }
            return hold(sp, a, b, match);
        case TOK_SPLIT_MERGED_WITH_PREVIOUS:
            if (sp->held && match && !prev) {
                sp->end = b;
                return HONE_OK;
            }
            return hold(sp, a, b, match);
        case TOK_SPLIT_MERGED_WITH_NEXT:
            if (sp->held && sp->held_match && !match) {
                sp->held = 0;
                return emit(sp, sp->start, b);
            }
            return hold(sp, a, b, match);
    }
    return HONE_OK;
}

static hone_status split_regex(splitter *sp, const uint8_t *w, size_t n) {
    const pipeline *p = sp->p;
    if (!p->s->md && !(p->s->md = pcre2_match_data_create(1, NULL)))
        return hone_errorf(HONE_ERR_NOMEM, "out of memory for PCRE2 match data");
    tok_regex_iter it = {0};
    size_t prev = 0, start, end;
    for (;;) {
        int found;
        /* the match data is shared by all steps: the positions are copied out before going deeper */
        HONE_TRY(tok_regex_next(sp->op->re, sp->op->jit, p->s->md, w, n, &it, &start, &end, &found));
        if (!found) break;
        if (start > prev) HONE_TRY(feed(sp, prev, start, 0));
        HONE_TRY(feed(sp, start, end, 1));
        prev = end;
    }
    if (prev < n) HONE_TRY(feed(sp, prev, n, 0));
    return flush(sp);
}

static hone_status split_chars(splitter *sp, const uint8_t *w, size_t n) {
    size_t prev = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t bad, k = tok_utf8_next(w + i, n - i, &cp, &bad);
        if (!k) k = bad; /* the input was validated; never happens */
        if (sp->op->in_class(cp)) {
            if (i > prev) HONE_TRY(feed(sp, prev, i, 0));
            HONE_TRY(feed(sp, i, i + k, 1));
            prev = i + k;
        }
        i += k;
    }
    if (prev < n) HONE_TRY(feed(sp, prev, n, 0));
    return flush(sp);
}

/* Step k over the piece w[0..n) (n > 0); first: the piece starts the input. */
static hone_status run_step(const pipeline *p, size_t k, const uint8_t *w, size_t n, int first) {
    const hone_tokenizer *t = p->t;
    if (k == t->n_pre) {
        if (!p->mapped) return p->word(p->ctx, w, n);
        HONE_TRY(unmap(t, w, n, &p->s->unmapped));
        return p->word(p->ctx, (const uint8_t *)p->s->unmapped.v, p->s->unmapped.n);
    }
    const tok_pre_op *op = &t->pre[k];
    tok_bytes *buf = &p->s->buf[k];
    if (op->kind == TOK_PRE_BYTE_LEVEL) {
        if (op->add_prefix_space && w[0] != ' ') {
            buf->n = 0;
            HONE_TRY(tok_bytes_append(buf, " ", 1));
            HONE_TRY(tok_bytes_append(buf, w, n));
            w = (const uint8_t *)buf->v;
            n = buf->n;
        }
        if (k + 1 == t->n_pre) /* the last step: its pieces go to BPE as bytes */
            return t->use_regex ? tok_byte_level_split(t, p->byte_level_md, w, n, p->word, p->ctx)
                                : p->word(p->ctx, w, n);
        next_step ns = {p, k + 1};
        return t->use_regex ? tok_byte_level_split(t, p->byte_level_md, w, n, map_to_next_step, &ns)
                            : map_to_next_step(&ns, w, n);
    }
    if (op->kind == TOK_PRE_METASPACE) {
        next_step ns = {p, k + 1};
        return tok_metaspace_split(t, w, n, first, buf, to_next_step, &ns);
    }
    splitter sp = {.p = p, .op = op, .k = k, .w = w, .first = first};
    return op->kind == TOK_PRE_REGEX ? split_regex(&sp, w, n) : split_chars(&sp, w, n);
}

hone_status tok_pre_tokenize(const hone_tokenizer *t, tok_pre_scratch *s, pcre2_match_data *byte_level_md,
                             const uint8_t *text, size_t n, int first, tok_word_fn word, void *ctx) {
    if (!n) return HONE_OK;
    pipeline p = {t, s, byte_level_md, word, ctx, 0};
    for (size_t k = 0; k + 1 < t->n_pre; k++) p.mapped |= t->pre[k].kind == TOK_PRE_BYTE_LEVEL;
    return run_step(&p, 0, text, n, first);
}
