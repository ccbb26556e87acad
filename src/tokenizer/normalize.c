/* The Unicode normalizers of tokenizer.json: NFC, NFD, NFKC, NFKD (utf8proc, over the whole segment as Hugging
 * Face's unicode-normalization crate does), Lowercase and Strip. The other normalizers (Prepend, Replace) and the
 * Sequence that chains them are in spm.c.
 *
 * Lowercase is Rust's char::to_lowercase applied to each character: the full lowercase mapping without context,
 * which is utf8proc's simple mapping except for U+0130 (İ → "i̇", two characters); there is no final-sigma rule.
 * Strip removes White_Space characters (Rust's char::is_whitespace) from the start and/or the end. */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "tokenizer/tokenizer_internal.h"

static const struct {
    const char *type;
    int kind;
} unicode_types[] = {
    {"NFC", TOK_NORM_NFC},
    {"NFD", TOK_NORM_NFD},
    {"NFKC", TOK_NORM_NFKC},
    {"NFKD", TOK_NORM_NFKD},
    {"Lowercase", TOK_NORM_LOWERCASE},
    {"Strip", TOK_NORM_STRIP},
};

hone_status tok_norm_unicode_load(const hone_tokenizer *t, json_t *o, const char *name, const char *type,
                                  tok_norm_op *op, int *known) {
    *known = 0;
    for (size_t i = 0; i < sizeof unicode_types / sizeof *unicode_types; i++)
        if (!strcmp(type, unicode_types[i].type)) {
            *known = 1;
            op->kind = unicode_types[i].kind;
        }
    if (!*known || op->kind != TOK_NORM_STRIP) return HONE_OK;
    json_t *left = json_object_get(o, "strip_left"), *right = json_object_get(o, "strip_right");
    if (!json_is_boolean(left) || !json_is_boolean(right))
        return hone_errorf(HONE_ERR_FORMAT, "%s: %s.strip_left and %s.strip_right must be true or false", t->path, name,
                           name);
    op->strip_left = json_is_true(left);
    op->strip_right = json_is_true(right);
    return HONE_OK;
}

/* One of the four forms of s[0..n), appended to out.
 *
 * Most text is ASCII, which every form leaves as it is, so only the pieces around other characters go through
 * utf8proc. The text may be cut before any ASCII character: no ASCII character is the second half of a canonical
 * composition, and being a starter (combining class 0) it blocks every composition and reordering across it. So a
 * piece is an ASCII character with the non-ASCII characters after it (which may combine with it, as "e" + U+0301),
 * and an ASCII character followed by another is copied. */
static hone_status unicode_form(utf8proc_option_t options, const uint8_t *s, size_t n, tok_bytes *out) {
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && s[j] < 0x80) j++;
        /* the ASCII run, but its last character when a non-ASCII one follows: that piece starts there */
        size_t piece = j < n && j > i ? j - 1 : j;
        HONE_TRY(tok_bytes_append(out, s + i, piece - i));
        if (piece == n) break;
        size_t end = j;
        while (end < n && s[end] >= 0x80) end++;
        utf8proc_uint8_t *mapped = NULL;
        /* the text is valid UTF-8 (checked up front), so the only failure left is memory */
        utf8proc_ssize_t len = utf8proc_map(s + piece, (utf8proc_ssize_t)(end - piece), &mapped, options);
        hone_status st = len < 0 ? hone_errorf(HONE_ERR_NOMEM, "Unicode normalization of %zu bytes failed: %s",
                                               end - piece, utf8proc_errmsg(len))
                                 : tok_bytes_append(out, mapped, (size_t)len);
        free(mapped);
        HONE_TRY(st);
        i = end;
    }
    return HONE_OK;
}

static hone_status lowercase(const uint8_t *s, size_t n, tok_bytes *out) {
    for (size_t i = 0; i < n;) {
        if (s[i] < 0x80) { /* an ASCII run at once */
            size_t j = i, at = out->n;
            while (j < n && s[j] < 0x80) j++;
            HONE_TRY(tok_bytes_append(out, s + i, j - i));
            for (char *c = out->v + at; c < out->v + out->n; c++)
                if (*c >= 'A' && *c <= 'Z') *c = (char)(*c + 32);
            i = j;
            continue;
        }
        uint32_t cp;
        size_t bad, k = tok_utf8_next(s + i, n - i, &cp, &bad);
        if (!k) k = bad; /* the input was validated; never happens */
        if (cp == 0x130) {
            HONE_TRY(tok_bytes_append(out, "i\xCC\x87", 3));
        } else {
            utf8proc_uint8_t enc[4];
            utf8proc_ssize_t len = utf8proc_encode_char(utf8proc_tolower((utf8proc_int32_t)cp), enc);
            HONE_TRY(tok_bytes_append(out, enc, (size_t)len));
        }
        i += k;
    }
    return HONE_OK;
}

static hone_status strip(const tok_norm_op *op, const uint8_t *s, size_t n, tok_bytes *out) {
    size_t a = 0, b = n;
    while (op->strip_left && a < b) {
        uint32_t cp;
        size_t bad, k = tok_utf8_next(s + a, b - a, &cp, &bad);
        if (!k || !tok_is_whitespace(cp)) break;
        a += k;
    }
    while (op->strip_right && b > a) {
        size_t c = b - 1;
        while (c > a && (s[c] & 0xC0) == 0x80) c--;
        uint32_t cp;
        size_t bad;
        if (!tok_utf8_next(s + c, b - c, &cp, &bad) || !tok_is_whitespace(cp)) break;
        b = c;
    }
    return tok_bytes_append(out, s + a, b - a);
}

hone_status tok_norm_unicode_apply(const tok_norm_op *op, const uint8_t *s, size_t n, tok_bytes *out) {
    out->n = 0;
    switch (op->kind) {
        case TOK_NORM_NFC:
            return unicode_form(UTF8PROC_STABLE | UTF8PROC_COMPOSE, s, n, out);
        case TOK_NORM_NFD:
            return unicode_form(UTF8PROC_STABLE | UTF8PROC_DECOMPOSE, s, n, out);
        case TOK_NORM_NFKC:
            return unicode_form(UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT, s, n, out);
        case TOK_NORM_NFKD:
            return unicode_form(UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT, s, n, out);
        case TOK_NORM_LOWERCASE:
            return lowercase(s, n, out);
        case TOK_NORM_STRIP:
            return strip(op, s, n, out);
        default:
            HONE_ASSERT(!"a normalizer step that normalize.c does not own");
    }
    return HONE_OK;
}
