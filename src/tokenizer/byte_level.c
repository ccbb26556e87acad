/* ByteLevel (GPT-2): every byte is written as one printable character so that
 * BPE never sees raw bytes or spaces, and text is split into words by the GPT-2
 * regex before BPE.
 *
 * The byte → character table is GPT-2's bytes_to_unicode: the printable bytes
 * '!'..'~', '¡'..'¬' and '®'..'ÿ' stand for themselves; the 68 others
 * (controls, space, DEL, NBSP, soft hyphen) become U+0100.. in byte order, so
 * that a space is 'Ġ' (U+0120) and a newline 'Ċ' (U+010A). */
#include <stdlib.h>
#include <string.h>
#include <threads.h>

#include "tokenizer/tokenizer_internal.h"

/* Contractions, letters, numbers and other symbols each with an optional
 * leading space; whitespace runs keep their last space for the next word. UCP
 * makes \s, \p{L} and \p{N} use Unicode properties. */
static const char gpt2_pattern[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| "
                                   "?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

static int byte_is_printable(int b) { return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE; }

hone_status tok_byte_level_init(hone_tokenizer *t) {
    int extra = 0;
    for (int i = 0; i < 324; i++) t->char_byte[i] = -1;
    for (int b = 0; b < 256; b++) {
        uint32_t cp = byte_is_printable(b) ? (uint32_t)b : 256u + (uint32_t)extra++;
        if (cp < 0x80) {
            t->byte_char[b][0] = (char)cp;
            t->byte_char_len[b] = 1;
        } else {
            t->byte_char[b][0] = (char)(0xC0 | cp >> 6);
            t->byte_char[b][1] = (char)(0x80 | (cp & 0x3F));
            t->byte_char_len[b] = 2;
        }
        t->char_byte[cp] = (int16_t)b;
        t->byte_id[b] = tok_vocab_find(t, t->byte_char[b], t->byte_char_len[b]);
    }
    if (!t->use_regex) return HONE_OK;
    int err;
    PCRE2_SIZE at;
    t->regex = pcre2_compile((PCRE2_SPTR)gpt2_pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &err, &at, NULL);
    if (!t->regex) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        return hone_errorf(HONE_ERR_UNSUPPORTED, "%s: PCRE2 cannot compile the ByteLevel regex (offset %zu): %s",
                           t->path, (size_t)at, (const char *)msg);
    }
    /* JIT is several times faster; where PCRE2 was built without it the
     * interpreter gives the same matches */
    t->regex_jit = pcre2_jit_compile(t->regex, PCRE2_JIT_COMPLETE) == 0;
    return HONE_OK;
}

/* ---- The ASCII fast path of the GPT-2 pattern.
 *
 * PCRE2's JIT spends about a hundred instructions per byte on this pattern, more than BPE itself. Where every
 * character a match depends on is ASCII, the pattern's leftmost-alternative semantics are simple enough to
 * follow directly: a contraction; an optional space and a run of letters, of digits or of other symbols; or a
 * whitespace run that leaves its last character for the next word when a non-space follows. As soon as a
 * decision would look at a non-ASCII character, that one match is left to PCRE2, so the regex stays the
 * definition (the tests compare both paths on every corpus). The ASCII classes are read off PCRE2 once, not
 * written by hand. */
enum { CLASS_OTHER, CLASS_LETTER, CLASS_NUMBER, CLASS_SPACE };

static uint8_t ascii_class[128];
static once_flag ascii_class_once = ONCE_FLAG_INIT;
static int ascii_class_ok;

static void ascii_class_init(void) {
    static const char *const class_pattern[] = {[CLASS_LETTER] = "\\p{L}", [CLASS_NUMBER] = "\\p{N}",
                                                [CLASS_SPACE] = "\\s"};
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    int ok = md != NULL;
    for (int k = CLASS_LETTER; k <= CLASS_SPACE && ok; k++) {
        int err;
        PCRE2_SIZE at;
        pcre2_code *re = pcre2_compile((PCRE2_SPTR)class_pattern[k], PCRE2_ZERO_TERMINATED,
                                       PCRE2_UTF | PCRE2_UCP | PCRE2_ANCHORED, &err, &at, NULL);
        ok = re != NULL;
        for (int c = 0; c < 128 && ok; c++) {
            const uint8_t ch = (uint8_t)c;
            if (pcre2_match(re, &ch, 1, 0, 0, md, NULL) > 0) ascii_class[c] = (uint8_t)k;
        }
        pcre2_code_free(re);
    }
    pcre2_match_data_free(md);
    ascii_class_ok = ok;
}

/* End of a run of ASCII characters of class k from q, or 0 when the run reaches a non-ASCII character (which
 * might continue it). */
static size_t ascii_run(const uint8_t *text, size_t n, size_t q, int k) {
    while (q < n && text[q] < 0x80 && ascii_class[text[q]] == k) q++;
    return q < n && text[q] >= 0x80 ? 0 : q;
}

/* Length of the pattern's match at text[p] when it depends on ASCII characters only; 0 otherwise. */
static size_t ascii_match(const uint8_t *text, size_t n, size_t p) {
    const uint8_t c = text[p];
    if (c >= 0x80) return 0;
    if (c == '\'' && p + 1 < n) {
        const uint8_t a = text[p + 1], b = p + 2 < n ? text[p + 2] : 0;
        if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    }
    size_t start = p;
    if (c == ' ' && p + 1 < n) {
        if (text[p + 1] >= 0x80) return 0;
        if (ascii_class[text[p + 1]] != CLASS_SPACE) start = p + 1; /* " ?" takes the space */
    }
    const int k = ascii_class[text[start]];
    if (k != CLASS_SPACE || start != p) {
        const size_t end = ascii_run(text, n, start, k);
        return end ? end - p : 0;
    }
    /* \s+(?!\S) backs off one character when a non-space follows the run; a single space then matches \s+ */
    const size_t end = ascii_run(text, n, p, CLASS_SPACE);
    if (!end) return 0;
    if (end == n || end - p == 1) return end - p;
    return end - p - 1;
}

static hone_status split(const hone_tokenizer *t, pcre2_match_data *md, const uint8_t *text, size_t n,
                         tok_word_fn word, void *ctx, int fast) {
    if (!t->use_regex) return n ? word(ctx, text, n) : HONE_OK;
    call_once(&ascii_class_once, ascii_class_init);
    size_t pos = 0;
    while (pos < n) {
        const size_t len = fast && ascii_class_ok ? ascii_match(text, n, pos) : 0;
        if (len) {
            HONE_TRY(word(ctx, text + pos, len));
            pos += len;
            continue;
        }
        /* the text was validated as UTF-8 once, up front; pcre2_jit_match skips
         * pcre2_match's per-call checks, which cost as much as a short match */
        int rc = t->regex_jit ? pcre2_jit_match(t->regex, text, n, pos, 0, md, NULL)
                              : pcre2_match(t->regex, text, n, pos, PCRE2_NO_UTF_CHECK, md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) return word(ctx, text + pos, n - pos);
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return hone_errorf(HONE_ERR_INVALID, "ByteLevel regex failed at byte %zu: %s", pos, (const char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        HONE_ASSERT(ov[1] > ov[0]); /* no alternative of the pattern matches the empty string */
        if (ov[0] > pos) HONE_TRY(word(ctx, text + pos, ov[0] - pos)); /* text no alternative matched stays a word */
        HONE_TRY(word(ctx, text + ov[0], ov[1] - ov[0]));
        pos = ov[1];
    }
    return HONE_OK;
}

hone_status tok_byte_level_split(const hone_tokenizer *t, pcre2_match_data *md, const uint8_t *text, size_t n,
                                 tok_word_fn word, void *ctx) {
    return split(t, md, text, n, word, ctx, 1);
}

hone_status tok_byte_level_split_pcre2(const hone_tokenizer *t, pcre2_match_data *md, const uint8_t *text, size_t n,
                                       tok_word_fn word, void *ctx) {
    return split(t, md, text, n, word, ctx, 0);
}

hone_status tok_byte_level_decode_token(const hone_tokenizer *t, const char *tok, size_t len, tok_bytes *out) {
    size_t start = out->n;
    const uint8_t *s = (const uint8_t *)tok;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t bad, k = tok_utf8_next(s + i, len - i, &cp, &bad);
        if (!k || cp >= 324 || t->char_byte[cp] < 0) { /* not a byte character: the token stands for itself */
            out->n = start;
            return tok_bytes_append(out, tok, len);
        }
        char b = (char)t->char_byte[cp];
        HONE_TRY(tok_bytes_append(out, &b, 1));
        i += k;
    }
    return HONE_OK;
}
