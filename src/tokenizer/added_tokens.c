/* Added tokens (tokenizer.json "added_tokens"): strings such as "<|endoftext|>"
 * that are cut out of the input before pre-tokenization and map straight to
 * their ids.
 *
 * Matching follows Hugging Face: tokens with normalized=false are searched
 * first in the raw text, then tokens with normalized=true in the pieces left
 * between those (with no normalizer the text is the same, but the order decides
 * overlaps). Within a pass the leftmost match wins, and the longest token at
 * that position. lstrip / rstrip widen a match over the Unicode whitespace on
 * its left / right, which then disappears. A single_word token whose match
 * touches a word character (Rust regex's \w: Alphabetic, Mark, Nd, Pc,
 * Join_Control) on either side is not a match: the search goes on after it,
 * as Hugging Face's non-overlapping search does, so no shorter token is tried
 * inside it. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer_internal.h"

static hone_status get_flag(const hone_tokenizer *t, json_t *o, size_t i, const char *key, int fallback, int *out) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) {
        *out = fallback;
        return HONE_OK;
    }
    if (!json_is_boolean(v))
        return hone_errorf(HONE_ERR_FORMAT, "%s: added_tokens[%zu].%s must be true or false", t->path, i, key);
    *out = json_is_true(v);
    return HONE_OK;
}

static int cmp_added_id(const void *a, const void *b) {
    const tok_added *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

/* Orders one first-byte list longest first. qsort's comparator cannot see the
 * table; the lists are short. */
static void sort_longest_first(const tok_added *added, uint32_t *idx, uint32_t n) {
    for (uint32_t i = 1; i < n; i++) {
        uint32_t x = idx[i], j = i;
        while (j > 0 && added[idx[j - 1]].len < added[x].len) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = x;
    }
}

static hone_status load_one(hone_tokenizer *t, json_t *o, size_t i, tok_added *a) {
    if (!json_is_object(o)) return hone_errorf(HONE_ERR_FORMAT, "%s: added_tokens[%zu] must be an object", t->path, i);
    json_t *id = json_object_get(o, "id"), *content = json_object_get(o, "content");
    if (!json_is_integer(id) || json_integer_value(id) < 0 || json_integer_value(id) >= INT32_MAX)
        return hone_errorf(HONE_ERR_FORMAT, "%s: added_tokens[%zu].id must be a non-negative integer", t->path, i);
    if (!json_is_string(content) || !json_string_length(content))
        return hone_errorf(HONE_ERR_FORMAT, "%s: added_tokens[%zu].content must be a non-empty string", t->path, i);
    a->id = (int32_t)json_integer_value(id);
    HONE_TRY(get_flag(t, o, i, "special", 0, &a->special));
    HONE_TRY(get_flag(t, o, i, "lstrip", 0, &a->lstrip));
    HONE_TRY(get_flag(t, o, i, "rstrip", 0, &a->rstrip));
    HONE_TRY(get_flag(t, o, i, "normalized", !a->special, &a->normalized));
    HONE_TRY(get_flag(t, o, i, "single_word", 0, &a->single_word));
    a->len = json_string_length(content);
    a->content = strdup(json_string_value(content));
    if (!a->content) return hone_errorf(HONE_ERR_NOMEM, "out of memory reading %s", t->path);
    return HONE_OK;
}

hone_status tok_added_load(hone_tokenizer *t, json_t *added) {
    if (!added || json_is_null(added)) return HONE_OK;
    if (!json_is_array(added)) return hone_errorf(HONE_ERR_FORMAT, "%s: added_tokens must be an array", t->path);
    size_t n = json_array_size(added);
    t->added = calloc(n ? n : 1, sizeof *t->added);
    if (!t->added) return hone_errorf(HONE_ERR_NOMEM, "out of memory reading %s", t->path);
    for (size_t i = 0; i < n; i++) {
        HONE_TRY(load_one(t, json_array_get(added, i), i, &t->added[i]));
        t->n_added++;
    }
    return HONE_OK;
}

tok_added *tok_added_find(const hone_tokenizer *t, const char *content, size_t len) {
    for (size_t i = 0; i < t->n_added; i++)
        if (t->added[i].len == len && !memcmp(t->added[i].content, content, len)) return &t->added[i];
    return NULL;
}

hone_status tok_added_put(hone_tokenizer *t, const tok_added *flags, const char *content, size_t len, int32_t id,
                          const char *what) {
    if (!len) return hone_errorf(HONE_ERR_FORMAT, "%s is an empty token", what);
    tok_added *known = tok_added_find(t, content, len);
    if (known) {
        known->special = flags->special;
        known->lstrip = flags->lstrip;
        known->rstrip = flags->rstrip;
        known->normalized = flags->normalized;
        known->single_word = flags->single_word;
        return HONE_OK;
    }
    int32_t next = t->n_vocab;
    for (size_t i = 0; i < t->n_added; i++)
        if (t->added[i].id >= next) next = t->added[i].id + 1;
    tok_added a = *flags;
    a.id = tok_vocab_find(t, content, len);
    if (a.id < 0) a.id = next;
    if (id >= 0 && id != a.id)
        hone_warn("%s: \"%.*s\" is listed with id %d but takes id %d, as in Hugging Face (the id of the vocabulary, "
                  "else the next free one)",
                  what, (int)len, content, id, a.id);
    for (size_t i = 0; i < t->n_added; i++)
        if (t->added[i].id == a.id)
            return hone_errorf(HONE_ERR_FORMAT, "%s: \"%.*s\" would take id %d, which \"%s\" has", what, (int)len,
                               content, a.id, t->added[i].content);
    a.len = len;
    a.content = malloc(len + 1);
    a.match = NULL;
    tok_added *grown = realloc(t->added, (t->n_added + 1) * sizeof *grown);
    if (!a.content || !grown) {
        free(a.content);
        if (grown) t->added = grown;
        return hone_errorf(HONE_ERR_NOMEM, "out of memory adding %s", what);
    }
    memcpy(a.content, content, len);
    a.content[len] = 0;
    t->added = grown;
    t->added[t->n_added++] = a;
    return HONE_OK;
}

static hone_status build_match(hone_tokenizer *t);

hone_status tok_added_finish(hone_tokenizer *t) {
    size_t n = t->n_added;
    if (!n) return HONE_OK;
    qsort(t->added, n, sizeof *t->added, cmp_added_id);
    for (size_t i = 1; i < n; i++)
        if (t->added[i].id == t->added[i - 1].id)
            return hone_errorf(HONE_ERR_FORMAT, "%s: added_tokens: id %d is given to \"%s\" and \"%s\"", t->path,
                               t->added[i].id, t->added[i - 1].content, t->added[i].content);
    for (size_t i = 0; i < n; i++) t->n_by_byte[(uint8_t)t->added[i].content[0]]++;
    for (int b = 0; b < 256; b++) {
        if (!t->n_by_byte[b]) continue;
        t->added_by_byte[b] = malloc(t->n_by_byte[b] * sizeof(uint32_t));
        if (!t->added_by_byte[b]) return hone_errorf(HONE_ERR_NOMEM, "out of memory reading %s", t->path);
        t->n_by_byte[b] = 0;
    }
    for (size_t i = 0; i < n; i++) {
        uint8_t b = (uint8_t)t->added[i].content[0];
        t->added_by_byte[b][t->n_by_byte[b]++] = (uint32_t)i;
    }
    for (int b = 0; b < 256; b++) sort_longest_first(t->added, t->added_by_byte[b], t->n_by_byte[b]);
    for (size_t i = 0; i < n && !t->word_re; i++)
        if (t->added[i].single_word) {
            static const char word[] = "[" TOK_RUST_WORD_CLASS "]";
            int jit;
            HONE_TRY(tok_regex_compile(t, word, strlen(word), TOK_RE_PCRE2, "the word class of single_word",
                                       &t->word_re, &jit));
        }
    return build_match(t);
}

const tok_added *tok_added_by_id(const hone_tokenizer *t, int32_t id) {
    size_t lo = 0, hi = t->n_added;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (t->added[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < t->n_added && t->added[lo].id == id ? &t->added[lo] : NULL;
}

const tok_added *tok_added_by_content(const hone_tokenizer *t, const char *s, size_t n) {
    if (!n) return NULL;
    uint8_t b = (uint8_t)s[0];
    for (uint32_t k = 0; k < t->n_by_byte[b]; k++) {
        const tok_added *a = &t->added[t->added_by_byte[b][k]];
        if (a->len == n && !memcmp(a->content, s, n)) return a;
    }
    return NULL;
}

static hone_status push_segment(tok_segments *out, size_t start, size_t end, const tok_added *added) {
    if (start == end && !added) return HONE_OK;
    if (out->n == out->cap) {
        size_t cap = out->cap ? 2 * out->cap : 16;
        tok_segment *v = realloc(out->v, cap * sizeof *v);
        if (!v) return hone_errorf(HONE_ERR_NOMEM, "out of memory splitting text on added tokens");
        out->v = v;
        out->cap = cap;
    }
    out->v[out->n++] = (tok_segment){start, end, added};
    return HONE_OK;
}

/* Code point of the character that ends at text[end) (text is valid UTF-8), and
 * its start in *start. */
static uint32_t char_before(const uint8_t *text, size_t end, size_t *start) {
    size_t s = end - 1;
    while (s > 0 && (text[s] & 0xC0) == 0x80) s--;
    uint32_t cp;
    size_t bad;
    tok_utf8_next(text + s, end - s, &cp, &bad);
    *start = s;
    return cp;
}

/* 1 when the character at text[at..b) is a word character (t->word_re). */
static int word_char_at(const hone_tokenizer *t, const uint8_t *text, size_t at, size_t b) {
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    int rc = md ? pcre2_match(t->word_re, text, b, at, PCRE2_ANCHORED | PCRE2_NO_UTF_CHECK, md, NULL) : -1;
    if (md) pcre2_match_data_free(md);
    return rc >= 0;
}

/* Hugging Face's single_word test of a match text[start..end) inside the
 * sentence text[a..b): no word character right before or right after it. */
static int stands_alone(const hone_tokenizer *t, const uint8_t *text, size_t a, size_t b, size_t start, size_t end) {
    if (start > a) {
        size_t prev = start - 1;
        while (prev > a && (text[prev] & 0xC0) == 0x80) prev--;
        if (word_char_at(t, text, prev, start)) return 0;
    }
    return end == b || !word_char_at(t, text, end, b);
}

/* One matching pass over text[a..b): appends the added tokens with this
 * `normalized` flag and the plain pieces between them. */
hone_status tok_added_split_pass(const hone_tokenizer *t, const uint8_t *text, size_t a, size_t b, int normalized,
                                 tok_segments *out) {
    size_t last = a; /* end of the previous match */
    for (size_t pos = a; pos < b;) {
        const tok_added *hit = NULL;
        uint8_t c = text[pos];
        for (uint32_t k = 0; k < t->n_match_by_byte[c] && !hit; k++) {
            const tok_added *cand = &t->added[t->match_by_byte[c][k]];
            if (cand->normalized == normalized && cand->match_len <= b - pos &&
                !memcmp(text + pos, cand->match, cand->match_len))
                hit = cand;
        }
        if (!hit) {
            pos++;
            continue;
        }
        size_t start = pos, end = pos + hit->match_len;
        if (hit->single_word && !stands_alone(t, text, a, b, start, end)) {
            pos = end;
            continue;
        }
        while (hit->lstrip && start > last) {
            size_t prev;
            if (!tok_is_whitespace(char_before(text, start, &prev))) break;
            start = prev;
        }
        while (hit->rstrip && end < b) {
            uint32_t cp;
            size_t bad, k = tok_utf8_next(text + end, b - end, &cp, &bad);
            if (!k || !tok_is_whitespace(cp)) break;
            end += k;
        }
        HONE_TRY(push_segment(out, last, start, NULL));
        HONE_TRY(push_segment(out, start, end, hit));
        last = pos = end;
    }
    return push_segment(out, last, b, NULL);
}

hone_status tok_added_split(const hone_tokenizer *t, const uint8_t *text, size_t n, tok_segments *out) {
    out->n = 0;
    if (!t->n_added) return push_segment(out, 0, n, NULL);
    tok_segments raw = {0};
    hone_status st = tok_added_split_pass(t, text, 0, n, 0, &raw);
    for (size_t i = 0; i < raw.n && st == HONE_OK; i++) {
        tok_segment s = raw.v[i];
        st = s.added ? push_segment(out, s.start, s.end, s.added)
                     : tok_added_split_pass(t, text, s.start, s.end, 1, out);
    }
    free(raw.v);
    return st;
}

/* Sorts one first-byte list of match strings longest first. */
static void sort_match_longest_first(const tok_added *added, uint32_t *idx, uint32_t n) {
    for (uint32_t i = 1; i < n; i++) {
        uint32_t x = idx[i], j = i;
        while (j > 0 && added[idx[j - 1]].match_len < added[x].match_len) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = x;
    }
}

/* Fills match / match_by_byte (the normalizer is loaded). */
static hone_status build_match(hone_tokenizer *t) {
    tok_bytes nb = {0};
    for (size_t i = 0; i < t->n_added; i++) {
        tok_added *a = &t->added[i];
        a->match = a->content;
        a->match_len = a->len;
        if (!a->normalized || !t->n_norm) continue;
        hone_status st = tok_normalize(t, (const uint8_t *)a->content, a->len, &nb);
        if (st == HONE_OK && !nb.n)
            st = hone_errorf(HONE_ERR_FORMAT, "%s: added_tokens: \"%s\" normalizes to nothing", t->path, a->content);
        char *m = st == HONE_OK ? malloc(nb.n + 1) : NULL;
        if (st == HONE_OK && !m) st = hone_errorf(HONE_ERR_NOMEM, "out of memory reading %s", t->path);
        if (st != HONE_OK) {
            free(nb.v);
            return st;
        }
        memcpy(m, nb.v, nb.n);
        m[nb.n] = 0;
        a->match = m;
        a->match_len = nb.n;
    }
    free(nb.v);
    for (size_t i = 0; i < t->n_added; i++) t->n_match_by_byte[(uint8_t)t->added[i].match[0]]++;
    for (int b = 0; b < 256; b++) {
        if (!t->n_match_by_byte[b]) continue;
        t->match_by_byte[b] = malloc(t->n_match_by_byte[b] * sizeof(uint32_t));
        if (!t->match_by_byte[b]) return hone_errorf(HONE_ERR_NOMEM, "out of memory reading %s", t->path);
        t->n_match_by_byte[b] = 0;
    }
    for (size_t i = 0; i < t->n_added; i++) {
        uint8_t b = (uint8_t)t->added[i].match[0];
        t->match_by_byte[b][t->n_match_by_byte[b]++] = (uint32_t)i;
    }
    for (int b = 0; b < 256; b++) sort_match_longest_first(t->added, t->match_by_byte[b], t->n_match_by_byte[b]);
    return HONE_OK;
}
