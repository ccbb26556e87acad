/* The patterns of Split pre-tokenizers, and how Hugging Face iterates over their matches.
 *
 * Hugging Face compiles a Split "Regex" with the onig crate, whose default syntax is ONIG_SYNTAX_ONIGURUMA;
 * hone compiles it with PCRE2 (UTF + UCP, JIT). The two read most patterns the same way. Where they differ, the
 * pattern is rewritten construct by construct before PCRE2 sees it:
 *   \w \W      Oniguruma's word = Alphabetic | Mark | Decimal_Number | Connector_Punctuation, while PCRE2 10.42's
 *              is Letter | Number | '_'          → [\p{Alphabetic}\p{M}\p{Nd}\p{Pc}] and its complement
 *   \b \B      boundaries of that word class     → lookarounds on it
 *   \s \S      White_Space (PCRE2 adds U+180E)   → \p{White_Space}, \P{White_Space}
 *   \h \H      a hexadecimal digit (PCRE2: horizontal space) → [0-9a-fA-F], [^0-9a-fA-F]
 *   \v         the vertical tab (PCRE2: any vertical space)  → \x{0B}
 *   \uHHHH     → \x{HHHH}
 *   {,n}       Oniguruma's {0,n} (PCRE2 10.42 reads it as text) → {0,n}
 *   (?m)       Oniguruma's "dot matches newline" → (?s); ^ and $ are always line anchors → PCRE2_MULTILINE
 * Refused with HONE_ERR_UNSUPPORTED, because the meaning differs and no local rewrite keeps it: {n}? and {n,m}+
 * (an optional or a repeated interval in Oniguruma, a lazy or possessive one in PCRE2), a class nested in a class,
 * && inside a class, POSIX brackets such as [:alpha:], \W and \H inside a class, and the options W D S P y.
 * Everything else passes through; PCRE2 reports what it cannot compile, with the offset in the pattern as written.
 * Left as they are: case-insensitive matching folds single characters only in PCRE2 (Oniguruma also matches "ss"
 * to "ß"), and the Unicode versions of the two libraries differ for recently added characters.
 * A "String" pattern is matched literally (PCRE2_LITERAL), as Hugging Face's escaped regex is. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer_internal.h"

#define WORD_CLASS "\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}"

/* The rewritten pattern and, for every byte of it, the offset in the original pattern it came from. */
typedef struct {
    tok_bytes out;
    size_t *from;
    size_t cap;
} rewrite;

static hone_status put(rewrite *r, const char *s, size_t n, size_t from) {
    if (r->out.n + n > r->cap) {
        size_t cap = 2 * (r->out.n + n) + 64;
        size_t *grown = realloc(r->from, cap * sizeof *grown);
        if (!grown) return hone_errorf(HONE_ERR_NOMEM, "out of memory rewriting a regex");
        r->from = grown;
        r->cap = cap;
    }
    for (size_t i = 0; i < n; i++) r->from[r->out.n + i] = from;
    return tok_bytes_append(&r->out, s, n);
}

static hone_status put_str(rewrite *r, const char *s, size_t from) { return put(r, s, strlen(s), from); }

static hone_status refuse(const hone_tokenizer *t, const char *name, size_t at, const char *what) {
    return hone_errorf(HONE_ERR_UNSUPPORTED,
                       "%s: %s: %s at offset %zu of the regex is not supported (Oniguruma and PCRE2 read it "
                       "differently)",
                       t->path, name, what, at);
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }
static int is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

/* Length of the interval quantifier {n}, {n,}, {n,m} or {,m} at p[0..n) (p[0] == '{'), or 0 when it is none
 * (then the brace is a literal character in both syntaxes). *fixed: it is {n}; *no_min: it is {,m}. */
static size_t interval_length(const char *p, size_t n, int *fixed, int *no_min) {
    size_t i = 1, lo = 0, hi = 0;
    while (i < n && is_digit(p[i])) i++, lo++;
    int comma = i < n && p[i] == ',';
    if (comma) {
        i++;
        while (i < n && is_digit(p[i])) i++, hi++;
    }
    if (i >= n || p[i] != '}' || (!lo && !hi)) return 0;
    *fixed = !comma;
    *no_min = !lo;
    return i + 1;
}

/* Copies an escape's {...} argument (\x{..}, \p{..}, \k<..> is copied character by character by the caller). */
static size_t brace_argument(const char *p, size_t n) {
    if (!n || p[0] != '{') return 0;
    const char *close = memchr(p, '}', n);
    return close ? (size_t)(close - p) + 1 : 0;
}

/* One backslash escape at p[0..n) (p[0] == '\\'); *used = bytes consumed. */
static hone_status rewrite_escape(const hone_tokenizer *t, const char *name, rewrite *r, const char *p, size_t n,
                                  size_t at, int in_class, size_t *used) {
    char c = n > 1 ? p[1] : 0;
    *used = n > 1 ? 2 : 1;
    switch (c) {
        case 'w':
            return put_str(r, in_class ? WORD_CLASS : "[" WORD_CLASS "]", at);
        case 'W':
            if (in_class) return refuse(t, name, at, "\\W inside a character class");
            return put_str(r, "[^" WORD_CLASS "]", at);
        case 'b':
            if (in_class) break; /* a backspace in both */
            return put_str(r, "(?:(?<=[" WORD_CLASS "])(?![" WORD_CLASS "])|(?<![" WORD_CLASS "])(?=[" WORD_CLASS "]))",
                           at);
        case 'B':
            if (in_class) break;
            return put_str(r, "(?:(?<=[" WORD_CLASS "])(?=[" WORD_CLASS "])|(?<![" WORD_CLASS "])(?![" WORD_CLASS "]))",
                           at);
        case 's':
            return put_str(r, "\\p{White_Space}", at);
        case 'S':
            return put_str(r, "\\P{White_Space}", at);
        case 'h':
            return put_str(r, in_class ? "0-9a-fA-F" : "[0-9a-fA-F]", at);
        case 'H':
            if (in_class) return refuse(t, name, at, "\\H inside a character class");
            return put_str(r, "[^0-9a-fA-F]", at);
        case 'v':
            return put_str(r, "\\x{0B}", at);
        case 'u':
            if (n >= 6 && is_hex(p[2]) && is_hex(p[3]) && is_hex(p[4]) && is_hex(p[5])) {
                char hex[16];
                snprintf(hex, sizeof hex, "\\x{%.4s}", p + 2);
                *used = 6;
                return put_str(r, hex, at);
            }
            break;
        case 'p':
        case 'P':
        case 'x':
        case 'o': {
            size_t arg = brace_argument(p + 2, n - 2);
            *used = 2 + arg;
            return put(r, p, *used, at);
        }
        default:
            break;
    }
    if (n > 1 && (uint8_t)c >= 0x80) { /* an escaped non-ASCII character: keep it whole */
        uint32_t cp;
        size_t bad, k = tok_utf8_next((const uint8_t *)p + 1, n - 1, &cp, &bad);
        *used = 1 + (k ? k : 1);
    }
    return put(r, p, *used, at);
}

/* (?imx-imx) or (?imx-imx: at p[0..n) (p starts with "(?"): rewrites Oniguruma's m (dot matches newline) as
 * PCRE2's s. *used = 0 when this is another kind of group. */
static hone_status rewrite_options(const hone_tokenizer *t, const char *name, rewrite *r, const char *p, size_t n,
                                   size_t at, size_t *used) {
    size_t i = 2;
    while (i < n && strchr("imxWDSPy-", p[i]) && p[i]) i++;
    *used = 0;
    if (i == 2 || i >= n || (p[i] != ')' && p[i] != ':')) return HONE_OK;
    HONE_TRY(put(r, "(?", 2, at));
    for (size_t k = 2; k < i; k++) {
        char o = p[k];
        if (strchr("WDSPy", o)) {
            char what[32];
            snprintf(what, sizeof what, "the option (?%c)", o);
            return refuse(t, name, at + k, what);
        }
        HONE_TRY(put(r, o == 'm' ? "s" : &p[k], 1, at + k));
    }
    HONE_TRY(put(r, &p[i], 1, at + i));
    *used = i + 1;
    return HONE_OK;
}

/* The Oniguruma pattern p[0..n) rewritten for PCRE2 into r. */
static hone_status rewrite_onig(const hone_tokenizer *t, const char *name, const char *p, size_t n, rewrite *r) {
    int in_class = 0;
    size_t class_body = 0; /* where the current class's body starts: a ']' there is a literal */
    for (size_t i = 0; i < n;) {
        char c = p[i];
        size_t used = 1;
        if (c == '\\') {
            HONE_TRY(rewrite_escape(t, name, r, p + i, n - i, i, in_class, &used));
        } else if (in_class) {
            if (c == ']' && i > class_body) {
                in_class = 0;
                HONE_TRY(put(r, p + i, 1, i));
            } else if (c == '[') {
                return refuse(t, name, i, p[i + 1] == ':' ? "a POSIX bracket expression" : "a nested character class");
            } else if (c == '&' && i + 1 < n && p[i + 1] == '&') {
                return refuse(t, name, i, "a class intersection (&&)");
            } else {
                HONE_TRY(put(r, p + i, 1, i));
            }
        } else if (c == '[') {
            in_class = 1;
            class_body = i + 1 + (i + 1 < n && p[i + 1] == '^');
            HONE_TRY(put(r, p + i, class_body - i, i));
            used = class_body - i;
        } else if (c == '(' && i + 1 < n && p[i + 1] == '?') {
            HONE_TRY(rewrite_options(t, name, r, p + i, n - i, i, &used));
            if (!used) HONE_TRY(put(r, p + i, used = 2, i));
        } else if (c == '{') {
            int fixed = 0, no_min = 0;
            size_t len = interval_length(p + i, n - i, &fixed, &no_min);
            if (len) {
                char next = i + len < n ? p[i + len] : 0;
                if (next == '+') return refuse(t, name, i, "an interval followed by '+'");
                if (next == '?' && fixed) return refuse(t, name, i, "a fixed interval followed by '?'");
                if (no_min) HONE_TRY(put(r, "{0", 2, i));
                HONE_TRY(put(r, p + i + no_min, len - no_min, i));
                used = len;
            } else {
                HONE_TRY(put(r, p + i, 1, i));
            }
        } else {
            HONE_TRY(put(r, p + i, 1, i));
        }
        i += used;
    }
    return HONE_OK;
}

hone_status tok_regex_compile(const hone_tokenizer *t, const char *pattern, size_t len, tok_re_syntax syntax,
                              const char *name, pcre2_code **re, int *jit) {
    *re = NULL;
    *jit = 0;
    rewrite r = {0};
    hone_status st = HONE_OK;
    if (syntax == TOK_RE_ONIG) st = rewrite_onig(t, name, pattern, len, &r);
    const char *src = syntax == TOK_RE_ONIG ? r.out.v : pattern;
    size_t src_len = syntax == TOK_RE_ONIG ? r.out.n : len;
    pcre2_compile_context *cc = st == HONE_OK ? pcre2_compile_context_create(NULL) : NULL;
    if (st == HONE_OK && !cc) st = hone_errorf(HONE_ERR_NOMEM, "out of memory compiling %s", name);
    if (st == HONE_OK) {
        /* Oniguruma's newline is "\n" alone: it decides what '.' and the line anchors see */
        pcre2_set_newline(cc, PCRE2_NEWLINE_LF);
        uint32_t options =
            syntax == TOK_RE_LITERAL ? PCRE2_LITERAL | PCRE2_UTF : PCRE2_UTF | PCRE2_UCP | PCRE2_MULTILINE;
        int err;
        PCRE2_SIZE at;
        *re = pcre2_compile((PCRE2_SPTR)(src ? src : ""), src_len, options, &err, &at, cc);
        if (!*re) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(err, msg, sizeof msg);
            /* the offset in the pattern as written (the end stays the end) */
            size_t where = syntax != TOK_RE_ONIG ? (size_t)at : at < r.out.n ? r.from[at] : len;
            st = hone_errorf(HONE_ERR_FORMAT, "%s: %s: the regex does not compile at offset %zu: %s", t->path, name,
                             where, (const char *)msg);
        }
        pcre2_compile_context_free(cc);
    }
    free(r.out.v);
    free(r.from);
    if (st != HONE_OK) return st;
    /* JIT is several times faster; where PCRE2 was built without it the interpreter gives the same matches */
    *jit = pcre2_jit_compile(*re, PCRE2_JIT_COMPLETE) == 0;
    return HONE_OK;
}

hone_status tok_regex_next(const pcre2_code *re, int jit, pcre2_match_data *md, const uint8_t *s, size_t n,
                           tok_regex_iter *it, size_t *start, size_t *end, int *found) {
    for (;;) {
        *found = 0;
        if (it->pos > n) return HONE_OK;
        /* the text was validated as UTF-8 up front */
        int rc = jit ? pcre2_jit_match(re, s, n, it->pos, 0, md, NULL)
                     : pcre2_match(re, s, n, it->pos, PCRE2_NO_UTF_CHECK, md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) return HONE_OK;
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return hone_errorf(HONE_ERR_INVALID, "a pre-tokenizer regex failed at byte %zu: %s", it->pos,
                               (const char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        if (ov[0] == ov[1] && it->matched_before && it->last_match_end == ov[1]) {
            uint32_t cp;
            size_t bad, k = it->pos < n ? tok_utf8_next(s + it->pos, n - it->pos, &cp, &bad) : 1;
            it->pos += k ? k : 1;
            continue;
        }
        it->pos = it->last_match_end = ov[1];
        it->matched_before = 1;
        *start = ov[0];
        *end = ov[1];
        *found = 1;
        return HONE_OK;
    }
}
