/* The Jinja lexer: jinja2.lexer.Lexer's rules for an environment with trim_blocks=True and lstrip_blocks=True,
 * written as a hand-made state machine with the same matching order:
 *   root     data up to the first "{{", "{%" or "{#" (a "{% raw %}" directive is tried first at a "{%");
 *            the data before a tag loses its trailing whitespace when the tag starts with "-", and — for blocks,
 *            comments and raw, unless the tag starts with "+" — the spaces between the last newline (or the start
 *            of a line) and the tag (lstrip_blocks)
 *   block    tokens up to "%}"; "-%}" eats all following whitespace, "+%}" nothing, "%}" one newline
 *            (trim_blocks); an end tag only counts while (), [] and {} are balanced
 *   variable tokens up to "}}" ("-}}" eats following whitespace)
 *   comment  skipped up to "#}" (same end rules as a block)
 *   raw      data up to "{% endraw %}"
 * Whitespace means Python's str.isspace(), as the regular expressions' \s does for str patterns. Columns are
 * 1-based code point counts. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "tokenizer/jinja.h"

typedef struct {
    const char *name;
    const char *src;
    size_t n;
    size_t pos;
    /* position tracking: line number, byte offset of the line start, and the column of byte `at` */
    int line;
    size_t line_start, at;
    int col;
    int line_starting; /* the previous match ended with a newline (jinja2's line_starting) */
    jinja_arena *arena;
    jinja_token *toks;
    size_t n_toks, cap;
    char balance[256]; /* expected closing brackets */
    int depth;
} lexer;

/* Moves the line/column tracking to byte offset p (p ≥ the last position asked for). */
static void track(lexer *lx, size_t p) {
    for (; lx->at < p; lx->at++) {
        uint8_t c = (uint8_t)lx->src[lx->at];
        if (c == '\n') {
            lx->line++;
            lx->line_start = lx->at + 1;
            lx->col = 1;
        } else if ((c & 0xC0) != 0x80)
            lx->col++;
    }
}

static hone_status fail(lexer *lx, size_t p, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static hone_status fail(lexer *lx, size_t p, const char *fmt, ...) {
    track(lx, p);
    char what[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return hone_errorf(HONE_ERR_FORMAT, "%s:%d:%d: %s", lx->name, lx->line, lx->col, what);
}

static hone_status push(lexer *lx, int kind, int op, size_t at, const char *text, size_t len) {
    if (lx->n_toks == lx->cap) {
        size_t cap = lx->cap ? 2 * lx->cap : 256;
        jinja_token *t = realloc(lx->toks, cap * sizeof *t);
        if (!t) return hone_errorf(HONE_ERR_NOMEM, "%s: out of memory reading the template", lx->name);
        lx->toks = t;
        lx->cap = cap;
    }
    track(lx, at);
    jinja_token *t = &lx->toks[lx->n_toks++];
    memset(t, 0, sizeof *t);
    t->kind = (uint8_t)kind;
    t->op = (uint8_t)op;
    t->line = lx->line;
    t->col = lx->col;
    t->text = text;
    t->len = len;
    return HONE_OK;
}

/* Length of the whitespace run at s[i..n). */
static size_t space_run(const char *s, size_t i, size_t n) {
    size_t j = i;
    while (j < n) {
        size_t k = j;
        if (!jinja_is_space(jinja_next_cp(s, &k))) break;
        j = k;
    }
    return j - i;
}

/* Length of s[0..n) without its trailing whitespace (Python str.rstrip()). */
static size_t rstrip_len(const char *s, size_t n) {
    size_t i = 0, keep = 0;
    while (i < n)
        if (!jinja_is_space(jinja_next_cp(s, &i))) keep = i;
    return keep;
}

/* The data before a tag, after the tag's whitespace control: sign is '-', '+' or 0; lstrip applies to block,
 * comment and raw tags. */
static size_t strip_data(lexer *lx, const char *text, size_t len, char sign, int lstrip) {
    if (sign == '-') return rstrip_len(text, len);
    if (sign == '+' || !lstrip) return len;
    size_t l_pos = len;
    while (l_pos > 0 && text[l_pos - 1] != '\n') l_pos--;
    /* only whitespace (at least one character) between the line start and the tag */
    if ((l_pos > 0 || lx->line_starting) && l_pos < len && space_run(text, l_pos, len) == len - l_pos) return l_pos;
    return len;
}

/* "{%" sign? \s* "raw" \s* ("-%}" \s* | "%}") at p; returns the length matched, 0 if none. */
static size_t match_raw_begin(const lexer *lx, size_t p) {
    size_t i = p + 2;
    if (i < lx->n && (lx->src[i] == '-' || lx->src[i] == '+')) i++;
    i += space_run(lx->src, i, lx->n);
    if (lx->n - i < 3 || memcmp(lx->src + i, "raw", 3) != 0) return 0;
    i += 3;
    i += space_run(lx->src, i, lx->n);
    if (lx->n - i >= 3 && memcmp(lx->src + i, "-%}", 3) == 0) return i + 3 + space_run(lx->src, i + 3, lx->n) - p;
    if (lx->n - i >= 2 && memcmp(lx->src + i, "%}", 2) == 0) return i + 2 - p;
    return 0;
}

/* The end of a block / comment ("%}" or "#}" given as `close`) at p: '+' form, '-' form eating whitespace, or the
 * plain form eating one newline. Returns the length matched (0 if none). */
static size_t match_block_end(const lexer *lx, size_t p, const char *close) {
    const char *s = lx->src + p;
    size_t left = lx->n - p;
    if (left >= 3 && s[0] == '+' && memcmp(s + 1, close, 2) == 0) return 3;
    if (left >= 3 && s[0] == '-' && memcmp(s + 1, close, 2) == 0) return 3 + space_run(lx->src, p + 3, lx->n);
    if (left >= 2 && memcmp(s, close, 2) == 0) return 2 + (left > 2 && s[2] == '\n');
    return 0;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }
static int is_word(uint8_t c) { return c == '_' || ((c | 32) >= 'a' && (c | 32) <= 'z') || is_digit((char)c); }

/* (\d+_)*\d+ at i: returns the end, or i when there is none. */
static size_t digits(const char *s, size_t i, size_t n) {
    size_t j = i;
    while (j < n && is_digit(s[j])) {
        while (j < n && is_digit(s[j])) j++;
        if (j + 1 < n && s[j] == '_' && is_digit(s[j + 1])) j++;
    }
    return j;
}

/* jinja2's float_re at p: digits with a fraction and/or an exponent, not preceded by a '.'. Returns the end or p. */
static size_t match_float(const lexer *lx, size_t p) {
    const char *s = lx->src;
    if (p > 0 && s[p - 1] == '.') return p;
    size_t i = digits(s, p, lx->n);
    if (i == p) return p;
    size_t frac = i;
    if (i + 1 < lx->n && s[i] == '.' && is_digit(s[i + 1])) frac = digits(s, i + 1, lx->n);
    size_t e = frac;
    if (e < lx->n && (s[e] | 32) == 'e') {
        size_t k = e + 1;
        if (k < lx->n && (s[k] == '+' || s[k] == '-')) k++;
        size_t end = digits(s, k, lx->n);
        if (end > k) return end;
    }
    return frac > i ? frac : p;
}

/* jinja2's integer_re at p (0b / 0o / 0x prefixes, [1-9](_?\d)*, 0(_?0)*). Returns the end or p; *base. */
static size_t match_int(const lexer *lx, size_t p, int *base) {
    const char *s = lx->src;
    size_t n = lx->n;
    if (s[p] == '0' && p + 2 < n) {
        char c = (char)(s[p + 1] | 32);
        int b = c == 'b' ? 2 : c == 'o' ? 8 : c == 'x' ? 16 : 0;
        if (b) {
            size_t i = p + 2;
            for (;;) {
                size_t k = i < n && s[i] == '_' ? i + 1 : i;
                if (k >= n) break;
                char d = (char)(s[k] | 32);
                int ok = b == 16 ? (is_digit(d) || (d >= 'a' && d <= 'f')) : d >= '0' && d < '0' + b;
                if (!ok) break;
                i = k + 1;
            }
            if (i > p + 2) {
                *base = b;
                return i;
            }
        }
    }
    *base = 10;
    if (s[p] == '0') {
        size_t i = p + 1;
        while (i < n && (s[i] == '0' || (s[i] == '_' && i + 1 < n && s[i + 1] == '0'))) i += s[i] == '_' ? 2 : 1;
        return i;
    }
    if (s[p] < '1' || s[p] > '9') return p;
    size_t i = p + 1;
    while (i < n && (is_digit(s[i]) || (s[i] == '_' && i + 1 < n && is_digit(s[i + 1])))) i += s[i] == '_' ? 2 : 1;
    return i;
}

static hone_status number_token(lexer *lx, size_t p, size_t end, int is_float, int base) {
    char buf[128];
    size_t k = 0;
    for (size_t i = p; i < end && k + 1 < sizeof buf; i++)
        if (lx->src[i] != '_') buf[k++] = lx->src[i];
    buf[k] = 0;
    if (end - p >= sizeof buf) return fail(lx, p, "number literal too long");
    HONE_TRY(push(lx, is_float ? JT_FLOAT : JT_INT, 0, p, lx->src + p, end - p));
    jinja_token *t = &lx->toks[lx->n_toks - 1];
    if (is_float) {
        t->fval = jinja_strtod(buf, NULL);
        return HONE_OK;
    }
    uint64_t v = 0;
    for (const char *c = buf + (base == 10 ? 0 : 2); *c; c++) {
        int d = is_digit(*c) ? *c - '0' : (*c | 32) - 'a' + 10;
        if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base || v * (uint64_t)base + (uint64_t)d > INT64_MAX)
            return hone_errorf(HONE_ERR_UNSUPPORTED, "%s:%d:%d: integer literal %s does not fit in 64 bits", lx->name,
                               t->line, t->col, buf);
        v = v * (uint64_t)base + (uint64_t)d;
    }
    t->ival = (int64_t)v;
    return HONE_OK;
}

static int hexval(char c) {
    if (is_digit(c)) return c - '0';
    c = (char)(c | 32);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* A string literal's value: Python's unicode-escape decoding of its (backslash-replaced) text. */
static hone_status string_token(lexer *lx, size_t p, size_t end) {
    const char *s = lx->src + p + 1;
    size_t n = end - p - 2;
    jinja_buf o = {0};
    hone_status st = HONE_OK;
    size_t i = 0;
    while (i < n && st == HONE_OK) {
        if (s[i] != '\\') {
            size_t j = i;
            while (j < n && s[j] != '\\') j++;
            st = jinja_buf_add(&o, s + i, j - i);
            i = j;
            continue;
        }
        char c = s[i + 1]; /* the string rule guarantees a character after every backslash */
        i += 2;
        static const char simple_from[] = "\\'\"abfnrtv", simple_to[] = "\\'\"\a\b\f\n\r\t\v";
        const char *k = c ? strchr(simple_from, c) : NULL;
        if (c == '\n') continue; /* line continuation */
        if (k) {
            st = jinja_buf_add(&o, simple_to + (k - simple_from), 1);
        } else if (c >= '0' && c <= '7') {
            uint32_t v = (uint32_t)(c - '0');
            for (int d = 0; d < 2 && i < n && s[i] >= '0' && s[i] <= '7'; d++) v = v * 8 + (uint32_t)(s[i++] - '0');
            st = jinja_buf_add_cp(&o, v);
        } else if (c == 'x' || c == 'u' || c == 'U') {
            int want = c == 'x' ? 2 : c == 'u' ? 4 : 8;
            uint32_t v = 0;
            for (int d = 0; d < want; d++) {
                int h = i < n ? hexval(s[i]) : -1;
                if (h < 0) {
                    free(o.b.v);
                    return fail(lx, p, "truncated \\%c escape in a string (it needs %d hex digits)", c, want);
                }
                v = v * 16 + (uint32_t)h;
                i++;
            }
            if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
                free(o.b.v);
                return fail(lx, p, "a string escape names an invalid code point (surrogate or above U+10FFFF)");
            }
            st = jinja_buf_add_cp(&o, v);
        } else if (c == 'N') {
            free(o.b.v);
            return hone_errorf(HONE_ERR_UNSUPPORTED, "%s: \\N{...} escapes in strings are not supported", lx->name);
        } else if ((uint8_t)c >= 0x80) {
            /* Python sees the backslash-replaced form: "\" + "\xe9" decodes to a backslash and the text "xe9" */
            size_t at = i - 1;
            uint32_t cp = jinja_next_cp(s, &at);
            i = at;
            char esc[16];
            int len = cp <= 0xFF     ? snprintf(esc, sizeof esc, "\\x%02x", cp)
                      : cp <= 0xFFFF ? snprintf(esc, sizeof esc, "\\u%04x", cp)
                                     : snprintf(esc, sizeof esc, "\\U%08x", cp);
            st = jinja_buf_add(&o, esc, (size_t)len);
        } else {
            char keep[2] = {'\\', c}; /* unknown escapes stay as they are */
            st = jinja_buf_add(&o, keep, 2);
        }
    }
    char *text = NULL;
    if (st == HONE_OK && !(text = jinja_alloc(lx->arena, o.b.n + 1))) st = lx->arena->fail;
    if (st == HONE_OK) {
        if (o.b.n) memcpy(text, o.b.v, o.b.n);
        st = push(lx, JT_STRING, 0, p, text, o.b.n);
    }
    free(o.b.v);
    return st;
}

static const struct {
    const char *text;
    int op;
} operators[] = {
    {"//", JO_FLOORDIV}, {"**", JO_POW},      {"==", JO_EQ},    {"!=", JO_NE},    {">=", JO_GTEQ},  {"<=", JO_LTEQ},
    {"+", JO_ADD},       {"-", JO_SUB},       {"/", JO_DIV},    {"*", JO_MUL},    {"%", JO_MOD},    {"~", JO_TILDE},
    {"[", JO_LBRACKET},  {"]", JO_RBRACKET},  {"(", JO_LPAREN}, {")", JO_RPAREN}, {"{", JO_LBRACE}, {"}", JO_RBRACE},
    {">", JO_GT},        {"<", JO_LT},        {"=", JO_ASSIGN}, {".", JO_DOT},    {":", JO_COLON},  {"|", JO_PIPE},
    {",", JO_COMMA},     {";", JO_SEMICOLON},
};

/* Tokens inside a block or variable tag, up to and including its end; block = 1 for "{%". */
static hone_status lex_tag(lexer *lx, int block) {
    const char *s = lx->src;
    while (lx->pos < lx->n) {
        size_t p = lx->pos;
        if (lx->depth == 0) {
            size_t end = 0;
            if (block)
                end = match_block_end(lx, p, "%}");
            else if (lx->n - p >= 3 && memcmp(s + p, "-}}", 3) == 0)
                end = 3 + space_run(s, p + 3, lx->n);
            else if (lx->n - p >= 2 && memcmp(s + p, "}}", 2) == 0)
                end = 2;
            if (end) {
                HONE_TRY(push(lx, block ? JT_BLOCK_END : JT_VAR_END, 0, p, s + p, end));
                lx->pos = p + end;
                lx->line_starting = s[p + end - 1] == '\n';
                return HONE_OK;
            }
        }
        size_t ws = space_run(s, p, lx->n);
        if (ws) {
            lx->pos = p + ws;
            continue;
        }
        size_t end = match_float(lx, p);
        if (end > p) {
            HONE_TRY(number_token(lx, p, end, 1, 10));
            lx->pos = end;
            continue;
        }
        int base = 0;
        end = match_int(lx, p, &base);
        if (end > p) {
            HONE_TRY(number_token(lx, p, end, 0, base));
            lx->pos = end;
            continue;
        }
        uint8_t c = (uint8_t)s[p];
        if (is_word(c) || c >= 0x80) {
            end = p;
            while (end < lx->n) {
                size_t k = end;
                uint32_t cp = jinja_next_cp(s, &k);
                if (!(cp < 0x80 ? is_word((uint8_t)cp) : jinja_is_alnum(cp))) break;
                end = k;
            }
            if (end > p) {
                HONE_TRY(push(lx, JT_NAME, 0, p, s + p, end - p));
                lx->pos = end;
                continue;
            }
        }
        if (c == '\'' || c == '"') {
            size_t i = p + 1;
            while (i < lx->n && s[i] != (char)c) i += s[i] == '\\' && i + 1 < lx->n ? 2 : 1;
            if (i < lx->n) {
                HONE_TRY(string_token(lx, p, i + 1));
                lx->pos = i + 1;
                continue;
            }
        }
        int op = 0;
        size_t op_len = 0;
        for (size_t k = 0; k < sizeof operators / sizeof operators[0]; k++) {
            size_t len = strlen(operators[k].text);
            if (lx->n - p >= len && memcmp(s + p, operators[k].text, len) == 0) {
                op = operators[k].op;
                op_len = len;
                break;
            }
        }
        if (!op) {
            char ch[8] = {0};
            size_t k = p;
            jinja_next_cp(s, &k);
            memcpy(ch, s + p, k - p < 7 ? k - p : 7);
            return fail(lx, p, "unexpected character '%s'", ch);
        }
        if (op == JO_LBRACE || op == JO_LPAREN || op == JO_LBRACKET) {
            if (lx->depth == (int)sizeof lx->balance) return fail(lx, p, "brackets nested too deeply");
            lx->balance[lx->depth++] = op == JO_LBRACE ? '}' : op == JO_LPAREN ? ')' : ']';
        } else if (op == JO_RBRACE || op == JO_RPAREN || op == JO_RBRACKET) {
            char got[2] = {s[p], 0};
            if (lx->depth == 0) return fail(lx, p, "unexpected '%s'", got);
            if (lx->balance[lx->depth - 1] != s[p]) {
                return fail(lx, p, "unexpected '%s', expected '%c'", got, lx->balance[lx->depth - 1]);
            }
            lx->depth--;
        }
        HONE_TRY(push(lx, JT_OP, op, p, s + p, op_len));
        lx->pos = p + op_len;
    }
    return HONE_OK; /* the source ended inside the tag: the parser reports the missing end */
}

/* The first "{{", "{%" or "{#" at or after p, or n. */
static size_t next_tag(const lexer *lx, size_t p) {
    for (;;) {
        const char *b = memchr(lx->src + p, '{', lx->n - p);
        if (!b) return lx->n;
        size_t i = (size_t)(b - lx->src);
        if (i + 1 < lx->n && (b[1] == '{' || b[1] == '%' || b[1] == '#')) return i;
        p = i + 1;
    }
}

static hone_status lex_root(lexer *lx) {
    const char *s = lx->src;
    while (lx->pos < lx->n) {
        size_t p = next_tag(lx, lx->pos);
        if (p == lx->n) {
            HONE_TRY(push(lx, JT_DATA, 0, lx->pos, s + lx->pos, lx->n - lx->pos));
            lx->pos = lx->n;
            break;
        }
        char kind = s[p + 1];
        size_t raw = kind == '%' ? match_raw_begin(lx, p) : 0;
        char sign = p + 2 < lx->n && (s[p + 2] == '-' || s[p + 2] == '+') ? s[p + 2] : 0;
        size_t keep = strip_data(lx, s + lx->pos, p - lx->pos, sign, kind != '{');
        if (keep) HONE_TRY(push(lx, JT_DATA, 0, lx->pos, s + lx->pos, keep));
        size_t open = 2 + (sign != 0);
        if (raw) {
            lx->line_starting = s[p + raw - 1] == '\n';
            size_t q = p + raw; /* find {% [-+] \s* endraw \s* end */
            for (;;) {
                q = next_tag(lx, q);
                if (q == lx->n) return fail(lx, p, "missing end of raw directive ({%% endraw %%})");
                if (s[q + 1] != '%') {
                    q++;
                    continue;
                }
                size_t i = q + 2;
                char esign = i < lx->n && (s[i] == '-' || s[i] == '+') ? s[i] : 0;
                i += esign != 0;
                i += space_run(s, i, lx->n);
                size_t end = 0;
                if (lx->n - i >= 6 && memcmp(s + i, "endraw", 6) == 0) {
                    i += 6;
                    i += space_run(s, i, lx->n);
                    end = match_block_end(lx, i, "%}");
                }
                if (!end) {
                    q++;
                    continue;
                }
                size_t body = p + raw;
                size_t body_keep = strip_data(lx, s + body, q - body, esign, 1);
                if (body_keep) HONE_TRY(push(lx, JT_DATA, 0, body, s + body, body_keep));
                lx->pos = i + end;
                lx->line_starting = s[lx->pos - 1] == '\n';
                break;
            }
            continue;
        }
        lx->line_starting = 0;
        if (kind == '#') {
            size_t q = p + open;
            for (;;) {
                const char *h = q < lx->n ? memchr(s + q, '#', lx->n - q) : NULL;
                if (!h || (size_t)(h - s) + 1 >= lx->n) return fail(lx, p, "missing end of comment tag");
                size_t at = (size_t)(h - s);
                if (s[at + 1] != '}') {
                    q = at + 1;
                    continue;
                }
                /* a sign right before "#}" (and inside the comment) is the end tag's */
                size_t start = at > p + open && (s[at - 1] == '-' || s[at - 1] == '+') ? at - 1 : at;
                size_t end = match_block_end(lx, start, "#}");
                lx->pos = start + end;
                lx->line_starting = s[lx->pos - 1] == '\n';
                break;
            }
            continue;
        }
        HONE_TRY(push(lx, kind == '%' ? JT_BLOCK_BEGIN : JT_VAR_BEGIN, 0, p, s + p, open));
        lx->pos = p + open;
        lx->depth = 0;
        HONE_TRY(lex_tag(lx, kind == '%'));
    }
    return push(lx, JT_EOF, 0, lx->n, s + lx->n, 0);
}

hone_status jinja_normalize_source(jinja_arena *arena, const char *src, size_t n, char **out, size_t *n_out) {
    char *d = jinja_alloc(arena, n + 1);
    if (!d) return arena->fail;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (src[i] == '\r') {
            d[k++] = '\n';
            if (i + 1 < n && src[i + 1] == '\n') i++;
        } else
            d[k++] = src[i];
    }
    if (k > 0 && d[k - 1] == '\n') k--; /* keep_trailing_newline=False drops one */
    d[k] = 0;
    *out = d;
    *n_out = k;
    return HONE_OK;
}

hone_status jinja_lex(const char *name, const char *src, size_t n, jinja_arena *arena, jinja_token **out,
                      size_t *n_out) {
    lexer lx = {.name = name, .src = src, .n = n, .line = 1, .col = 1, .line_starting = 1, .arena = arena};
    hone_status st = lex_root(&lx);
    if (st != HONE_OK) {
        free(lx.toks);
        return st;
    }
    *out = lx.toks;
    *n_out = lx.n_toks;
    return HONE_OK;
}
