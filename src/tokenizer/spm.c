/* The SentencePiece-style components of tokenizer.json (Llama 2, Mistral,
 * TinyLlama): normalizers Sequence / Prepend / Replace (literal strings) — the
 * Unicode ones are in normalize.c —, the Metaspace pre-tokenizer, and the
 * decoders Replace, ByteFallback, Fuse, Strip, Metaspace (alone or in a
 * Sequence). Anything else is a HONE_ERR_UNSUPPORTED error naming the field. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer_internal.h"

static hone_status get_str(const hone_tokenizer *t, json_t *obj, const char *field, const char *name, const char **out,
                           size_t *len) {
    json_t *v = json_object_get(obj, field);
    if (!json_is_string(v)) return hone_errorf(HONE_ERR_FORMAT, "%s: %s.%s must be a string", t->path, name, field);
    *out = json_string_value(v);
    *len = json_string_length(v);
    return HONE_OK;
}

/* Replace's pattern: {"String": "..."} only (a Regex is not supported yet). */
static hone_status get_pattern(const hone_tokenizer *t, json_t *obj, const char *name, const char **out, size_t *len) {
    json_t *p = json_object_get(obj, "pattern");
    if (json_is_object(p) && json_object_get(p, "Regex"))
        return hone_errorf(HONE_ERR_UNSUPPORTED,
                           "%s: %s.pattern.Regex is not supported yet (only "
                           "String)",
                           t->path, name);
    if (!json_is_object(p)) return hone_errorf(HONE_ERR_FORMAT, "%s: %s.pattern must be an object", t->path, name);
    HONE_TRY(get_str(t, p, "String", name, out, len));
    if (!*len) return hone_errorf(HONE_ERR_FORMAT, "%s: %s.pattern.String is empty", t->path, name);
    return HONE_OK;
}

static hone_status dup2(const hone_tokenizer *t, const char *a, size_t la, const char *b, size_t lb, char **oa,
                        char **ob) {
    *oa = malloc(la + 1);
    *ob = malloc(lb + 1);
    if (!*oa || !*ob) return hone_errorf(HONE_ERR_NOMEM, "out of memory reading %s", t->path);
    memcpy(*oa, a, la);
    (*oa)[la] = 0;
    memcpy(*ob, b, lb);
    (*ob)[lb] = 0;
    return HONE_OK;
}

static const char *type_of(json_t *o) {
    json_t *v = json_object_get(o, "type");
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static hone_status norm_one(hone_tokenizer *t, json_t *o, const char *name, int depth) {
    const char *type = type_of(o);
    if (!json_is_object(o) || !type)
        return hone_errorf(HONE_ERR_FORMAT, "%s: %s must be an object with a string \"type\"", t->path, name);
    if (!strcmp(type, "Sequence") && depth == 0) return tok_load_sequence(t, o, "normalizers", name, norm_one);
    tok_norm_op op = {0};
    const char *a = "", *b = "";
    size_t la = 0, lb = 0;
    if (!strcmp(type, "Prepend")) {
        op.kind = TOK_NORM_PREPEND;
        HONE_TRY(get_str(t, o, "prepend", name, &a, &la));
    } else if (!strcmp(type, "Replace")) {
        op.kind = TOK_NORM_REPLACE;
        HONE_TRY(get_pattern(t, o, name, &a, &la));
        HONE_TRY(get_str(t, o, "content", name, &b, &lb));
    } else {
        int known;
        HONE_TRY(tok_norm_unicode_load(t, o, name, type, &op, &known));
        if (!known)
            return hone_errorf(HONE_ERR_UNSUPPORTED,
                               "%s: %s.type \"%s\" is not supported (only NFC, NFD, NFKC, NFKD, Lowercase, Strip, "
                               "Prepend, Replace, or a Sequence of them)",
                               t->path, name, type);
    }
    tok_norm_op *v = realloc(t->norm, (t->n_norm + 1) * sizeof *v);
    if (!v) return hone_errorf(HONE_ERR_NOMEM, "out of memory reading %s", t->path);
    t->norm = v;
    op.la = la;
    op.lb = lb;
    t->norm[t->n_norm++] = op;
    return dup2(t, a, la, b, lb, &t->norm[t->n_norm - 1].a, &t->norm[t->n_norm - 1].b);
}

hone_status tok_normalizer_load(hone_tokenizer *t, json_t *normalizer) {
    if (!normalizer || json_is_null(normalizer)) return HONE_OK;
    return norm_one(t, normalizer, "normalizer", 0);
}

static hone_status replace_all(const uint8_t *s, size_t n, const char *a, size_t la, const char *b, size_t lb,
                               tok_bytes *out) {
    size_t last = 0;
    for (size_t i = 0; i + la <= n;) {
        if (!memcmp(s + i, a, la)) {
            HONE_TRY(tok_bytes_append(out, s + last, i - last));
            HONE_TRY(tok_bytes_append(out, b, lb));
            i += la;
            last = i;
        } else {
            i++;
        }
    }
    return tok_bytes_append(out, s + last, n - last);
}

hone_status tok_normalize(const hone_tokenizer *t, const uint8_t *s, size_t n, tok_bytes *out) {
    tok_bytes tmp = {0};
    hone_status st = HONE_OK;
    out->n = 0;
    st = tok_bytes_append(out, s, n);
    for (size_t k = 0; k < t->n_norm && st == HONE_OK; k++) {
        const tok_norm_op *op = &t->norm[k];
        if (!out->n) break; /* every step leaves an empty string empty */
        tmp.n = 0;
        if (op->kind == TOK_NORM_PREPEND) {
            st = tok_bytes_append(&tmp, op->a, op->la);
            if (st == HONE_OK) st = tok_bytes_append(&tmp, out->v, out->n);
        } else if (op->kind == TOK_NORM_REPLACE) {
            st = replace_all((const uint8_t *)out->v, out->n, op->a, op->la, op->b, op->lb, &tmp);
        } else {
            st = tok_norm_unicode_apply(op, (const uint8_t *)out->v, out->n, &tmp);
        }
        if (st == HONE_OK) {
            tok_bytes swap = *out;
            *out = tmp;
            tmp = swap;
        }
    }
    free(tmp.v);
    return st;
}

hone_status tok_pre_tokenizer_metaspace_load(hone_tokenizer *t, json_t *pre) {
    const char *rep = NULL;
    size_t len = 0;
    HONE_TRY(get_str(t, pre, "replacement", "pre_tokenizer", &rep, &len));
    if (!len || len >= sizeof t->ms_rep)
        return hone_errorf(HONE_ERR_FORMAT, "%s: pre_tokenizer.replacement must be one character", t->path);
    memcpy(t->ms_rep, rep, len);
    t->ms_rep_len = len;
    t->metaspace = 1;
    json_t *scheme = json_object_get(pre, "prepend_scheme");
    json_t *aps = json_object_get(pre, "add_prefix_space");
    if (json_is_string(scheme)) {
        const char *s = json_string_value(scheme);
        if (!strcmp(s, "never"))
            t->ms_prepend = 0;
        else if (!strcmp(s, "always"))
            t->ms_prepend = 1;
        else if (!strcmp(s, "first"))
            t->ms_prepend = 2;
        else
            return hone_errorf(HONE_ERR_FORMAT,
                               "%s: pre_tokenizer.prepend_scheme \"%s\" must be "
                               "always, first or never",
                               t->path, s);
    } else if (scheme && !json_is_null(scheme)) {
        return hone_errorf(HONE_ERR_FORMAT, "%s: pre_tokenizer.prepend_scheme must be a string", t->path);
    } else {
        t->ms_prepend = !aps || json_is_true(aps) ? 1 : 0;
    }
    json_t *split = json_object_get(pre, "split");
    t->ms_split = !split || json_is_null(split) || json_is_true(split);
    return HONE_OK;
}

hone_status tok_metaspace_split(const hone_tokenizer *t, const uint8_t *s, size_t n, int first, tok_bytes *buf,
                                tok_word_fn word, void *ctx) {
    buf->n = 0;
    HONE_TRY(replace_all(s, n, " ", 1, t->ms_rep, t->ms_rep_len, buf));
    if ((t->ms_prepend == 1 || (t->ms_prepend == 2 && first)) &&
        !(buf->n >= t->ms_rep_len && !memcmp(buf->v, t->ms_rep, t->ms_rep_len))) {
        HONE_TRY(tok_bytes_append(buf, t->ms_rep, t->ms_rep_len)); /* grow */
        memmove(buf->v + t->ms_rep_len, buf->v, buf->n - t->ms_rep_len);
        memcpy(buf->v, t->ms_rep, t->ms_rep_len);
    }
    const uint8_t *w = (const uint8_t *)buf->v;
    size_t m = buf->n;
    if (!t->ms_split) return m ? word(ctx, w, m) : HONE_OK;
    /* split before each replacement character (it starts the next word) */
    size_t start = 0;
    for (size_t i = 1; i + t->ms_rep_len <= m; i++)
        if (!memcmp(w + i, t->ms_rep, t->ms_rep_len)) {
            HONE_TRY(word(ctx, w + start, i - start));
            start = i;
        }
    return m > start ? word(ctx, w + start, m - start) : HONE_OK;
}

static hone_status dec_one(hone_tokenizer *t, json_t *o, const char *name, int depth) {
    const char *type = type_of(o);
    if (!json_is_object(o) || !type)
        return hone_errorf(HONE_ERR_FORMAT, "%s: %s must be an object with a string \"type\"", t->path, name);
    if (!strcmp(type, "Sequence") && depth == 0) return tok_load_sequence(t, o, "decoders", name, dec_one);
    tok_dec_op op = {0};
    const char *a = "", *b = "";
    size_t la = 0, lb = 0;
    if (!strcmp(type, "Replace")) {
        op.kind = TOK_DEC_REPLACE;
        HONE_TRY(get_pattern(t, o, name, &a, &la));
        HONE_TRY(get_str(t, o, "content", name, &b, &lb));
    } else if (!strcmp(type, "ByteFallback")) {
        op.kind = TOK_DEC_BYTE_FALLBACK;
    } else if (!strcmp(type, "Fuse")) {
        op.kind = TOK_DEC_FUSE;
    } else if (!strcmp(type, "Strip")) {
        op.kind = TOK_DEC_STRIP;
        HONE_TRY(get_str(t, o, "content", name, &a, &la));
        json_t *start = json_object_get(o, "start"), *stop = json_object_get(o, "stop");
        uint32_t cp;
        size_t bad;
        if (!la || tok_utf8_next((const uint8_t *)a, la, &cp, &bad) != la)
            return hone_errorf(HONE_ERR_FORMAT, "%s: %s.content must be one character", t->path, name);
        if (!json_is_integer(start) || !json_is_integer(stop) || json_integer_value(start) < 0 ||
            json_integer_value(stop) < 0 || json_integer_value(start) > 1000000 || json_integer_value(stop) > 1000000)
            return hone_errorf(HONE_ERR_FORMAT, "%s: %s.start and .stop must be non-negative integers", t->path, name);
        op.start = (int)json_integer_value(start);
        op.stop = (int)json_integer_value(stop);
    } else if (!strcmp(type, "Metaspace")) {
        op.kind = TOK_DEC_METASPACE;
        HONE_TRY(get_str(t, o, "replacement", name, &a, &la));
        json_t *scheme = json_object_get(o, "prepend_scheme"), *aps = json_object_get(o, "add_prefix_space");
        if (json_is_string(scheme))
            op.start = strcmp(json_string_value(scheme), "never") != 0;
        else
            op.start = !aps || json_is_true(aps);
    } else {
        return hone_errorf(HONE_ERR_UNSUPPORTED,
                           "%s: %s.type \"%s\" is not supported yet (only "
                           "ByteLevel, or Replace, ByteFallback, Fuse, Strip, "
                           "Metaspace and a Sequence of them)",
                           t->path, name, type);
    }
    tok_dec_op *v = realloc(t->dec, (t->n_dec + 1) * sizeof *v);
    if (!v) return hone_errorf(HONE_ERR_NOMEM, "out of memory reading %s", t->path);
    t->dec = v;
    op.la = la;
    op.lb = lb;
    t->dec[t->n_dec++] = op;
    return dup2(t, a, la, b, lb, &t->dec[t->n_dec - 1].a, &t->dec[t->n_dec - 1].b);
}

hone_status tok_decoder_seq_load(hone_tokenizer *t, json_t *decoder) { return dec_one(t, decoder, "decoder", 0); }

void tok_spm_free(hone_tokenizer *t) {
    for (size_t i = 0; i < t->n_norm; i++) {
        free(t->norm[i].a);
        free(t->norm[i].b);
    }
    free(t->norm);
    for (size_t i = 0; i < t->n_dec; i++) {
        free(t->dec[i].a);
        free(t->dec[i].b);
    }
    free(t->dec);
}

/* ---- decoding: a list of token strings, transformed step by step ---- */

typedef struct {
    tok_bytes *v;
    size_t n, cap;
} str_list;

static void list_free(str_list *l) {
    for (size_t i = 0; i < l->cap; i++) free(l->v[i].v);
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* Appends a new (empty) string to l and returns it, or NULL. */
static tok_bytes *list_push(str_list *l) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        tok_bytes *v = realloc(l->v, cap * sizeof *v);
        if (!v) return NULL;
        memset(v + l->cap, 0, (cap - l->cap) * sizeof *v);
        l->v = v;
        l->cap = cap;
    }
    tok_bytes *b = &l->v[l->n++];
    b->n = 0;
    return b;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* The byte of a "<0xXX>" token, or -1. */
static int fallback_byte(const tok_bytes *s) {
    if (s->n != 6 || memcmp(s->v, "<0x", 3) || s->v[5] != '>') return -1;
    int hi = hexval(s->v[3]), lo = hexval(s->v[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

#define NOMEM() hone_errorf(HONE_ERR_NOMEM, "out of memory decoding")

static hone_status step(const tok_dec_op *op, str_list *in, str_list *out) {
    out->n = 0;
    if (op->kind == TOK_DEC_FUSE) {
        tok_bytes *o = list_push(out);
        if (!o) return NOMEM();
        for (size_t i = 0; i < in->n; i++) HONE_TRY(tok_bytes_append(o, in->v[i].v, in->v[i].n));
        return HONE_OK;
    }
    if (op->kind == TOK_DEC_BYTE_FALLBACK) {
        tok_bytes run = {0};
        size_t run_tokens = 0;
        hone_status st = HONE_OK;
        for (size_t i = 0; i <= in->n && st == HONE_OK; i++) {
            int b = i < in->n ? fallback_byte(&in->v[i]) : -1;
            if (b >= 0) {
                char c = (char)b;
                st = tok_bytes_append(&run, &c, 1);
                run_tokens++;
                continue;
            }
            if (run_tokens) { /* a run of byte tokens ends: one string if it is
                                 valid UTF-8, else one U+FFFD per byte token */
                if (tok_utf8_check((const uint8_t *)run.v, run.n) == run.n) {
                    tok_bytes *o = list_push(out);
                    st = o ? tok_bytes_append(o, run.v, run.n) : NOMEM();
                } else {
                    for (size_t k = 0; k < run_tokens && st == HONE_OK; k++) {
                        tok_bytes *o = list_push(out);
                        st = o ? tok_bytes_append(o, "\xEF\xBF\xBD", 3) : NOMEM();
                    }
                }
                run.n = 0;
                run_tokens = 0;
            }
            if (i < in->n && st == HONE_OK) {
                tok_bytes *o = list_push(out);
                st = o ? tok_bytes_append(o, in->v[i].v, in->v[i].n) : NOMEM();
            }
        }
        free(run.v);
        return st;
    }
    for (size_t i = 0; i < in->n; i++) {
        const tok_bytes *s = &in->v[i];
        tok_bytes *o = list_push(out);
        if (!o) return NOMEM();
        if (op->kind == TOK_DEC_REPLACE) {
            HONE_TRY(replace_all((const uint8_t *)s->v, s->n, op->a, op->la, op->b, op->lb, o));
        } else if (op->kind == TOK_DEC_METASPACE) {
            /* as Hugging Face: in the first token every replacement character is
             * dropped when a prefix was prepended, elsewhere it becomes a space */
            HONE_TRY(replace_all((const uint8_t *)s->v, s->n, op->a, op->la, " ", i == 0 && op->start ? 0 : 1, o));
        } else { /* Strip: up to start leading and stop trailing `a` chars */
            size_t b = 0, e = s->n;
            for (int k = 0; k < op->start && e - b >= op->la && !memcmp(s->v + b, op->a, op->la); k++) b += op->la;
            for (int k = 0; k < op->stop && e - b >= op->la && !memcmp(s->v + e - op->la, op->a, op->la); k++)
                e -= op->la;
            HONE_TRY(tok_bytes_append(o, s->v + b, e - b));
        }
    }
    return HONE_OK;
}

hone_status tok_decode_seq(const hone_tokenizer *t, const char *const *toks, const size_t *lens, size_t n,
                           tok_bytes *out) {
    str_list a = {0}, b = {0};
    hone_status st = HONE_OK;
    for (size_t i = 0; i < n && st == HONE_OK; i++) {
        tok_bytes *s = list_push(&a);
        st = s ? tok_bytes_append(s, toks[i], lens[i]) : NOMEM();
    }
    for (size_t k = 0; k < t->n_dec && st == HONE_OK; k++) {
        st = step(&t->dec[k], &a, &b);
        str_list tmp = a;
        a = b;
        b = tmp;
    }
    for (size_t i = 0; i < a.n && st == HONE_OK; i++) st = tok_bytes_append(out, a.v[i].v, a.v[i].n);
    list_free(&a);
    list_free(&b);
    return st;
}
