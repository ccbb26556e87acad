/* Methods of the values a template can call: Python's str, dict, list and tuple methods, loop.cycle and
 * loop.changed, and the str helpers the filters share with them.
 *
 * The immutable sandbox decides what is callable: methods that change a list or dict (append, update, …) are
 * unsafe, and calling them is a SecurityError. A Python method hone does not implement is found (so `is
 * defined` stays true) but calling it is a HONE_ERR_UNSUPPORTED error. Indexes and lengths count code points, as
 * Python's str does. */
#include <stdio.h>
#include <stdlib.h>

#include "tokenizer/jinja.h"

/* ---- str helpers ---- */

static int in_chars(uint32_t c, const jinja_str *chars) {
    for (size_t i = 0; i < chars->len;)
        if (jinja_next_cp(chars->data, &i) == c) return 1;
    return 0;
}

hone_status jinja_str_strip(jinja_render *r, jinja_str *s, jv chars, int left, int right, jv *out) {
    if (chars.kind != JV_NONE && chars.kind != JV_STR)
        return hone_errorf(HONE_ERR_INVALID, "strip arg must be None or str");
    size_t from = 0, to = s->len;
    if (left)
        while (from < to) {
            size_t k = from;
            uint32_t c = jinja_next_cp(s->data, &k);
            if (chars.kind == JV_NONE ? !jinja_is_space(c) : !in_chars(c, chars.u.s)) break;
            from = k;
        }
    if (right) {
        size_t keep = from;
        for (size_t k = from; k < to;) {
            uint32_t c = jinja_next_cp(s->data, &k);
            if (chars.kind == JV_NONE ? !jinja_is_space(c) : !in_chars(c, chars.u.s)) keep = k;
        }
        to = keep;
    }
    if (from == 0 && to == s->len) {
        *out = (jv){.kind = JV_STR, .u.s = s};
        return HONE_OK;
    }
    return jv_str_new(jinja_render_arena(r), s->data + from, to - from, out);
}

/* Python's full case mappings where they differ from the one-to-one ones (Unicode SpecialCasing): what upper()
 * (title = 0) or title()/capitalize() (title = 1) make of the character, or NULL when the simple mapping holds. */
const char *jinja_special_upper(uint32_t c, int title) {
    switch (c) {
        case 0xDF:
            return title ? "Ss" : "SS"; /* ß */
        case 0x149:
            return "\xCA\xBCN"; /* ŉ → ʼN */
        case 0x587:
            return title ? "\xD4\xB5\xD6\x82" : "\xD4\xB5\xD5\x92"; /* և → Եւ / ԵՒ */
        case 0xFB00:
            return title ? "Ff" : "FF";
        case 0xFB01:
            return title ? "Fi" : "FI";
        case 0xFB02:
            return title ? "Fl" : "FL";
        case 0xFB03:
            return title ? "Ffi" : "FFI";
        case 0xFB04:
            return title ? "Ffl" : "FFL";
        case 0xFB05:
        case 0xFB06:
            return title ? "St" : "ST";
        default:
            return NULL;
    }
}

hone_status jinja_str_case(jinja_render *r, jinja_str *s, int mode, jv *out) {
    jinja_buf o = jinja_render_buffer(r);
    hone_status st = HONE_OK;
    int first = 1, prev_cased = 0;
    for (size_t i = 0; i < s->len && st == HONE_OK;) {
        uint32_t c = jinja_next_cp(s->data, &i), m = c;
        int up = 0, title = 0; /* whether c is upper-cased, and as a word's first letter */
        switch (mode) {
            case JC_UPPER:
                up = 1;
                break;
            case JC_LOWER:
                break;
            case JC_CAPITALIZE:
                up = title = first;
                break;
            case JC_TITLE:
                up = title = !prev_cased;
                break;
            case JC_SWAPCASE:
                up = jinja_upper(c) != c || jinja_special_upper(c, 0);
                break;
        }
        const char *full = up ? jinja_special_upper(c, title) : NULL;
        if (full)
            st = jinja_buf_adds(&o, full);
        else {
            m = title ? jinja_title(c) : up ? jinja_upper(c) : jinja_lower(c);
            if (!up && c == 0x130) /* İ lowercases to i + combining dot above */
                st = jinja_buf_adds(&o, "i\xCC\x87");
            else if (!up && c == 0x3A3) { /* Σ ends a word as ς (Final_Sigma: after a cased letter, none following) */
                size_t k = i;
                int next_cased = k < s->len && jinja_is_cased(jinja_next_cp(s->data, &k));
                st = jinja_buf_add_cp(&o, prev_cased && !next_cased ? 0x3C2 : 0x3C3);
            } else
                st = jinja_buf_add_cp(&o, m);
        }
        prev_cased = jinja_is_cased(c);
        first = 0;
    }
    return jinja_buf_to_str(jinja_render_arena(r), &o, st, out);
}

int jinja_str_is_case(jinja_str *s, int upper) {
    int cased = 0;
    for (size_t i = 0; i < s->len;) {
        uint32_t c = jinja_next_cp(s->data, &i);
        if (!jinja_is_cased(c)) continue;
        if ((upper ? jinja_lower(c) : jinja_upper(c)) == c && (upper ? jinja_upper(c) : jinja_lower(c)) != c) return 0;
        cased = 1;
    }
    return cased;
}

hone_status jinja_str_replace(jinja_render *r, jinja_str *s, jinja_str *old, jinja_str *rep, int64_t count, jv *out) {
    jinja_buf o = jinja_render_buffer(r);
    hone_status st = HONE_OK;
    if (count < 0) count = INT64_MAX;
    if (old->len == 0) { /* Python inserts the replacement before every character and at the end */
        int64_t done = 0;
        for (size_t i = 0; i <= s->len && st == HONE_OK;) {
            if (done < count) {
                st = jinja_buf_add(&o, rep->data, rep->len);
                done++;
            }
            if (i == s->len || st != HONE_OK) break;
            size_t at = i;
            jinja_next_cp(s->data, &i);
            st = jinja_buf_add(&o, s->data + at, i - at);
        }
        return jinja_buf_to_str(jinja_render_arena(r), &o, st, out);
    }
    size_t i = 0;
    int64_t done = 0;
    while (i <= s->len && st == HONE_OK) {
        const char *hit = done < count ? memmem(s->data + i, s->len - i, old->data, old->len) : NULL;
        if (!hit) {
            st = jinja_buf_add(&o, s->data + i, s->len - i);
            break;
        }
        size_t at = (size_t)(hit - s->data);
        st = jinja_buf_add(&o, s->data + i, at - i);
        if (st == HONE_OK) st = jinja_buf_add(&o, rep->data, rep->len);
        i = at + old->len;
        done++;
    }
    return jinja_buf_to_str(jinja_render_arena(r), &o, st, out);
}

/* Python's line boundaries: \n \r \r\n \v \f \x1c \x1d \x1e \x85 U+2028 U+2029. */
static int line_break(uint32_t c) {
    return c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || (c >= 0x1C && c <= 0x1E) || c == 0x85 || c == 0x2028 ||
           c == 0x2029;
}

hone_status jinja_str_splitlines(jinja_render *r, jinja_str *s, int keepends, jv *out) {
    jinja_arena *a = jinja_render_arena(r);
    size_t cap = 8, n = 0;
    jv *lines = jinja_alloc(a, cap * sizeof *lines);
    if (!lines) return a->fail;
    size_t start = 0, i = 0;
    while (i < s->len) {
        size_t at = i;
        uint32_t c = jinja_next_cp(s->data, &i);
        if (!line_break(c)) continue;
        size_t end = i;
        if (c == '\r' && i < s->len && s->data[i] == '\n') end = ++i;
        if (n == cap) {
            jv *more = jinja_alloc(a, 2 * cap * sizeof *more);
            if (!more) return a->fail;
            memcpy(more, lines, n * sizeof *more);
            lines = more;
            cap *= 2;
        }
        HONE_TRY(jv_str_new(a, s->data + start, (keepends ? end : at) - start, &lines[n++]));
        start = i;
    }
    if (start < s->len) {
        jv last = {0};
        HONE_TRY(jv_str_new(a, s->data + start, s->len - start, &last));
        HONE_TRY(jv_list_new(a, n + 1, NULL, JL_LIST, out));
        memcpy(out->u.l->items, lines, n * sizeof *lines);
        out->u.l->items[n] = last;
        return HONE_OK;
    }
    return jv_list_new(a, n, lines, JL_LIST, out);
}

/* where: 0 = center, 1 = ljust (pad right), 2 = rjust (pad left). fill: one character, or NULL for a space. */
hone_status jinja_str_pad(jinja_render *r, jinja_str *s, int64_t width, jinja_str *fill, int where, jv *out) {
    if (fill && jv_str_ncp(fill) != 1)
        return hone_errorf(HONE_ERR_INVALID, "The fill character must be exactly one character long");
    int64_t len = (int64_t)jv_str_ncp(s), marg = width - len;
    if (marg <= 0) {
        *out = (jv){.kind = JV_STR, .u.s = s};
        return HONE_OK;
    }
    if (width > (int64_t)1 << 24)
        return hone_errorf(HONE_ERR_INVALID, "padding to width %lld is too large", (long long)width);
    int64_t left = where == 0 ? marg / 2 + (marg & width & 1) : where == 1 ? 0 : marg;
    const char *f = fill ? fill->data : " ";
    size_t fl = fill ? fill->len : 1;
    jinja_buf o = jinja_render_buffer(r);
    hone_status st = HONE_OK;
    for (int64_t k = 0; k < left && st == HONE_OK; k++) st = jinja_buf_add(&o, f, fl);
    if (st == HONE_OK) st = jinja_buf_add(&o, s->data, s->len);
    for (int64_t k = left; k < marg && st == HONE_OK; k++) st = jinja_buf_add(&o, f, fl);
    return jinja_buf_to_str(jinja_render_arena(r), &o, st, out);
}

/* CPython's ADJUST_INDICES for the optional start / end of find, count, startswith: negative values count from
 * the end, end is clamped to n, start is not (so a start past the end makes an empty window). */
static hone_status str_bounds(jv start, jv end, size_t n, int64_t *from, int64_t *to) {
    int64_t b = 0, e = (int64_t)n;
    for (int which = 0; which < 2; which++) {
        jv v = which ? end : start;
        if (!jv_given(v) || v.kind == JV_NONE) continue;
        if (!jv_is_int(v))
            return hone_errorf(HONE_ERR_INVALID, "slice indices must be integers or None or have an __index__ method");
        int64_t x = v.u.i;
        if (which && x > (int64_t)n) x = (int64_t)n;
        if (x < 0) x = x + (int64_t)n < 0 ? 0 : x + (int64_t)n;
        if (which)
            e = x;
        else
            b = x;
    }
    *from = b;
    *to = e;
    return HONE_OK;
}

/* find / rfind / count of sub in s[start:end] (code point offsets); *pos = -1 when absent. */
static hone_status str_find(jinja_str *s, jv subv, jv start, jv end, int reverse, int count, int64_t *pos) {
    if (subv.kind != JV_STR) return hone_errorf(HONE_ERR_INVALID, "must be str, not %s", jv_type_name(subv));
    jinja_str *sub = subv.u.s;
    int64_t from = 0, to = 0;
    HONE_TRY(str_bounds(start, end, jv_str_ncp(s), &from, &to));
    *pos = count ? 0 : -1;
    if (to - from < (int64_t)jv_str_ncp(sub)) return HONE_OK;
    if (sub->len == 0) {
        *pos = count ? to - from + 1 : reverse ? to : from;
        return HONE_OK;
    }
    size_t bfrom = jv_str_offset(s, (size_t)from), bto = jv_str_offset(s, (size_t)to);
    int64_t hits = 0, last = -1;
    for (size_t i = bfrom; i + sub->len <= bto;) {
        const char *h = memmem(s->data + i, bto - i, sub->data, sub->len);
        if (!h) break;
        size_t at = (size_t)(h - s->data);
        if (!reverse && !count) {
            last = (int64_t)at;
            break;
        }
        hits++;
        last = (int64_t)at;
        i = count ? at + sub->len : at + 1;
    }
    if (count) {
        *pos = hits;
        return HONE_OK;
    }
    if (last < 0) return HONE_OK;
    /* byte offset → code point index */
    int64_t k = 0;
    for (size_t i = 0; i < (size_t)last;) {
        jinja_next_cp(s->data, &i);
        k++;
    }
    *pos = k;
    return HONE_OK;
}

/* startswith / endswith with a str or a tuple of str. */
static hone_status str_affix(jinja_render *r, jinja_str *s, jv affix, jv start, jv end, int suffix, int *res) {
    *res = 0;
    if (affix.kind == JV_LIST && affix.u.l->flavor == JL_TUPLE) {
        for (size_t i = 0; i < affix.u.l->n && !*res; i++)
            HONE_TRY(str_affix(r, s, affix.u.l->items[i], start, end, suffix, res));
        return HONE_OK;
    }
    if (affix.kind != JV_STR)
        return hone_errorf(HONE_ERR_INVALID, "%s first arg must be str or a tuple of str, not %s",
                           suffix ? "endswith" : "startswith", jv_type_name(affix));
    int64_t from = 0, to = 0;
    HONE_TRY(str_bounds(start, end, jv_str_ncp(s), &from, &to));
    if (to - (int64_t)jv_str_ncp(affix.u.s) < from) return HONE_OK;
    size_t bfrom = jv_str_offset(s, (size_t)from), bto = jv_str_offset(s, (size_t)to), n = affix.u.s->len;
    *res = memcmp(s->data + (suffix ? bto - n : bfrom), affix.u.s->data, n) == 0;
    return HONE_OK;
}

/* split / rsplit: sep = JV_NONE splits on whitespace runs. */
static hone_status str_split(jinja_render *r, jinja_str *s, jv sep, int64_t maxsplit, int reverse, jv *out) {
    jinja_arena *a = jinja_render_arena(r);
    if (sep.kind != JV_NONE && sep.kind != JV_STR)
        return hone_errorf(HONE_ERR_INVALID, "must be str or None, not %s", jv_type_name(sep));
    if (sep.kind == JV_STR && sep.u.s->len == 0) return hone_errorf(HONE_ERR_INVALID, "empty separator");
    if (maxsplit < 0) maxsplit = INT64_MAX;
    /* collect [start, end) byte ranges of the parts */
    size_t cap = 8, n = 0;
    size_t *ranges = malloc(2 * cap * sizeof *ranges);
    if (!ranges) return hone_errorf(HONE_ERR_NOMEM, "out of memory splitting a string");
    hone_status st = HONE_OK;
#define ADD_PART(b, e)                                                                                                 \
    do {                                                                                                               \
        if (n == cap) {                                                                                                \
            size_t *more = realloc(ranges, 4 * cap * sizeof *ranges);                                                  \
            if (!more) {                                                                                               \
                st = hone_errorf(HONE_ERR_NOMEM, "out of memory splitting a string");                                  \
                goto done;                                                                                             \
            }                                                                                                          \
            ranges = more;                                                                                             \
            cap *= 2;                                                                                                  \
        }                                                                                                              \
        ranges[2 * n] = (b);                                                                                           \
        ranges[2 * n + 1] = (e);                                                                                       \
        n++;                                                                                                           \
    } while (0)
    if (sep.kind == JV_STR) {
        const jinja_str *p = sep.u.s;
        if (!reverse) {
            size_t i = 0;
            int64_t done = 0;
            for (;;) {
                const char *h = done < maxsplit ? memmem(s->data + i, s->len - i, p->data, p->len) : NULL;
                if (!h) {
                    ADD_PART(i, s->len);
                    break;
                }
                ADD_PART(i, (size_t)(h - s->data));
                i = (size_t)(h - s->data) + p->len;
                done++;
            }
        } else {
            size_t end = s->len;
            int64_t done = 0;
            for (;;) {
                size_t hit = SIZE_MAX;
                if (done < maxsplit && end >= p->len)
                    for (size_t k = end - p->len + 1; k-- > 0;)
                        if (memcmp(s->data + k, p->data, p->len) == 0) {
                            hit = k;
                            break;
                        }
                if (hit == SIZE_MAX) {
                    ADD_PART(0, end);
                    break;
                }
                ADD_PART(hit + p->len, end);
                end = hit;
                done++;
            }
        }
    } else if (!reverse) {
        size_t i = 0;
        int64_t done = 0;
        for (;;) {
            while (i < s->len) { /* skip whitespace */
                size_t k = i;
                if (!jinja_is_space(jinja_next_cp(s->data, &k))) break;
                i = k;
            }
            if (i >= s->len) break;
            if (done >= maxsplit) {
                /* the rest, without trailing whitespace only when nothing follows it… Python keeps it as is */
                ADD_PART(i, s->len);
                break;
            }
            size_t b = i;
            while (i < s->len) {
                size_t k = i;
                if (jinja_is_space(jinja_next_cp(s->data, &k))) break;
                i = k;
            }
            ADD_PART(b, i);
            done++;
        }
    } else {
        /* rsplit on whitespace: code point positions, walked from the end */
        size_t ncp = jv_str_ncp(s);
        size_t *off = malloc((ncp + 1) * sizeof *off);
        if (!off) {
            st = hone_errorf(HONE_ERR_NOMEM, "out of memory splitting a string");
            goto done;
        }
        for (size_t k = 0, i = 0; k <= ncp; k++) {
            off[k] = i;
            if (k < ncp) jinja_next_cp(s->data, &i);
        }
        size_t k = ncp;
        int64_t done = 0;
        for (;;) {
            while (k > 0) {
                size_t i = off[k - 1];
                if (!jinja_is_space(jinja_next_cp(s->data, &i))) break;
                k--;
            }
            if (k == 0) break;
            if (done >= maxsplit) {
                ADD_PART(0, off[k]);
                break;
            }
            size_t e = k;
            while (k > 0) {
                size_t i = off[k - 1];
                if (jinja_is_space(jinja_next_cp(s->data, &i))) break;
                k--;
            }
            ADD_PART(off[k], off[e]);
            done++;
        }
        free(off);
    }
#undef ADD_PART
    st = jv_list_new(a, n, NULL, JL_LIST, out);
    for (size_t k = 0; k < n && st == HONE_OK; k++) {
        size_t idx = reverse ? n - 1 - k : k; /* rsplit collected the parts from the end */
        st = jv_str_new(a, s->data + ranges[2 * idx], ranges[2 * idx + 1] - ranges[2 * idx], &out->u.l->items[k]);
    }
done:
    free(ranges);
    return st;
}

/* ---- method table ---- */

enum { M_OK, M_UNSUPPORTED, M_UNSAFE };
enum {
    ON_STR = 1,
    ON_DICT = 2,
    ON_LIST = 4,
    ON_TUPLE = 8,
    ON_INT = 16,
    ON_FLOAT = 32,
    ON_LOOP = 64,
    ON_VIEW = 128,
    ON_ITER = 256,
    ON_RANGE = 512
};

enum {
    S_CAPITALIZE,
    S_CASEFOLD,
    S_CENTER,
    S_COUNT,
    S_ENDSWITH,
    S_FIND,
    S_INDEX,
    S_ISALNUM,
    S_ISALPHA,
    S_ISASCII,
    S_ISDECIMAL,
    S_ISDIGIT,
    S_ISLOWER,
    S_ISNUMERIC,
    S_ISSPACE,
    S_ISTITLE,
    S_ISUPPER,
    S_JOIN,
    S_LJUST,
    S_LOWER,
    S_LSTRIP,
    S_PARTITION,
    S_REMOVEPREFIX,
    S_REMOVESUFFIX,
    S_REPLACE,
    S_RFIND,
    S_RINDEX,
    S_RJUST,
    S_RPARTITION,
    S_RSPLIT,
    S_RSTRIP,
    S_SPLIT,
    S_SPLITLINES,
    S_STARTSWITH,
    S_STRIP,
    S_SWAPCASE,
    S_TITLE,
    S_UPPER,
    S_ZFILL,
    D_GET,
    D_ITEMS,
    D_KEYS,
    D_VALUES,
    D_COPY,
    L_COUNT,
    L_INDEX,
    L_COPY,
    LOOP_CYCLE,
    LOOP_CHANGED,
    M_NONE
};

static const struct {
    const char *name;
    int on, status, id;
} methods[] = {
    {"capitalize", ON_STR, M_OK, S_CAPITALIZE},
    {"casefold", ON_STR, M_OK, S_CASEFOLD},
    {"center", ON_STR, M_OK, S_CENTER},
    {"count", ON_STR, M_OK, S_COUNT},
    {"endswith", ON_STR, M_OK, S_ENDSWITH},
    {"find", ON_STR, M_OK, S_FIND},
    {"index", ON_STR, M_OK, S_INDEX},
    {"isalnum", ON_STR, M_OK, S_ISALNUM},
    {"isalpha", ON_STR, M_OK, S_ISALPHA},
    {"isascii", ON_STR, M_OK, S_ISASCII},
    {"isdecimal", ON_STR, M_OK, S_ISDECIMAL},
    {"isdigit", ON_STR, M_OK, S_ISDIGIT},
    {"islower", ON_STR, M_OK, S_ISLOWER},
    {"isnumeric", ON_STR, M_OK, S_ISNUMERIC},
    {"isspace", ON_STR, M_OK, S_ISSPACE},
    {"istitle", ON_STR, M_OK, S_ISTITLE},
    {"isupper", ON_STR, M_OK, S_ISUPPER},
    {"join", ON_STR, M_OK, S_JOIN},
    {"ljust", ON_STR, M_OK, S_LJUST},
    {"lower", ON_STR, M_OK, S_LOWER},
    {"lstrip", ON_STR, M_OK, S_LSTRIP},
    {"partition", ON_STR, M_OK, S_PARTITION},
    {"removeprefix", ON_STR, M_OK, S_REMOVEPREFIX},
    {"removesuffix", ON_STR, M_OK, S_REMOVESUFFIX},
    {"replace", ON_STR, M_OK, S_REPLACE},
    {"rfind", ON_STR, M_OK, S_RFIND},
    {"rindex", ON_STR, M_OK, S_RINDEX},
    {"rjust", ON_STR, M_OK, S_RJUST},
    {"rpartition", ON_STR, M_OK, S_RPARTITION},
    {"rsplit", ON_STR, M_OK, S_RSPLIT},
    {"rstrip", ON_STR, M_OK, S_RSTRIP},
    {"split", ON_STR, M_OK, S_SPLIT},
    {"splitlines", ON_STR, M_OK, S_SPLITLINES},
    {"startswith", ON_STR, M_OK, S_STARTSWITH},
    {"strip", ON_STR, M_OK, S_STRIP},
    {"swapcase", ON_STR, M_OK, S_SWAPCASE},
    {"title", ON_STR, M_OK, S_TITLE},
    {"upper", ON_STR, M_OK, S_UPPER},
    {"zfill", ON_STR, M_OK, S_ZFILL},
    {"encode", ON_STR, M_UNSUPPORTED, M_NONE},
    {"expandtabs", ON_STR, M_UNSUPPORTED, M_NONE},
    {"format", ON_STR, M_UNSUPPORTED, M_NONE},
    {"format_map", ON_STR, M_UNSUPPORTED, M_NONE},
    {"isidentifier", ON_STR, M_UNSUPPORTED, M_NONE},
    {"isprintable", ON_STR, M_UNSUPPORTED, M_NONE},
    {"maketrans", ON_STR, M_UNSUPPORTED, M_NONE},
    {"translate", ON_STR, M_UNSUPPORTED, M_NONE},
    {"get", ON_DICT, M_OK, D_GET},
    {"items", ON_DICT, M_OK, D_ITEMS},
    {"keys", ON_DICT, M_OK, D_KEYS},
    {"values", ON_DICT, M_OK, D_VALUES},
    {"copy", ON_DICT, M_OK, D_COPY},
    {"fromkeys", ON_DICT, M_UNSUPPORTED, M_NONE},
    {"clear", ON_DICT, M_UNSAFE, M_NONE},
    {"pop", ON_DICT, M_UNSAFE, M_NONE},
    {"popitem", ON_DICT, M_UNSAFE, M_NONE},
    {"setdefault", ON_DICT, M_UNSAFE, M_NONE},
    {"update", ON_DICT, M_UNSAFE, M_NONE},
    {"count", ON_LIST | ON_TUPLE | ON_RANGE, M_OK, L_COUNT},
    {"index", ON_LIST | ON_TUPLE | ON_RANGE, M_OK, L_INDEX},
    {"copy", ON_LIST, M_OK, L_COPY},
    {"pop", ON_LIST, M_UNSUPPORTED, M_NONE},
    {"clear", ON_LIST, M_UNSUPPORTED, M_NONE},
    {"append", ON_LIST, M_UNSAFE, M_NONE},
    {"extend", ON_LIST, M_UNSAFE, M_NONE},
    {"insert", ON_LIST, M_UNSAFE, M_NONE},
    {"remove", ON_LIST, M_UNSAFE, M_NONE},
    {"reverse", ON_LIST, M_UNSAFE, M_NONE},
    {"sort", ON_LIST, M_UNSAFE, M_NONE},
    {"start", ON_RANGE, M_UNSUPPORTED, M_NONE},
    {"stop", ON_RANGE, M_UNSUPPORTED, M_NONE},
    {"step", ON_RANGE, M_UNSUPPORTED, M_NONE},
    {"mapping", ON_VIEW, M_UNSUPPORTED, M_NONE},
    {"isdisjoint", ON_VIEW, M_UNSUPPORTED, M_NONE},
    {"send", ON_ITER, M_UNSUPPORTED, M_NONE},
    {"throw", ON_ITER, M_UNSUPPORTED, M_NONE},
    {"close", ON_ITER, M_UNSUPPORTED, M_NONE},
    {"real", ON_INT | ON_FLOAT, M_UNSUPPORTED, M_NONE},
    {"imag", ON_INT | ON_FLOAT, M_UNSUPPORTED, M_NONE},
    {"conjugate", ON_INT | ON_FLOAT, M_UNSUPPORTED, M_NONE},
    {"as_integer_ratio", ON_INT | ON_FLOAT, M_UNSUPPORTED, M_NONE},
    {"bit_length", ON_INT, M_UNSUPPORTED, M_NONE},
    {"bit_count", ON_INT, M_UNSUPPORTED, M_NONE},
    {"to_bytes", ON_INT, M_UNSUPPORTED, M_NONE},
    {"from_bytes", ON_INT, M_UNSUPPORTED, M_NONE},
    {"numerator", ON_INT, M_UNSUPPORTED, M_NONE},
    {"denominator", ON_INT, M_UNSUPPORTED, M_NONE},
    {"is_integer", ON_FLOAT, M_UNSUPPORTED, M_NONE},
    {"hex", ON_FLOAT, M_UNSUPPORTED, M_NONE},
    {"fromhex", ON_FLOAT, M_UNSUPPORTED, M_NONE},
    {"cycle", ON_LOOP, M_OK, LOOP_CYCLE},
    {"changed", ON_LOOP, M_OK, LOOP_CHANGED},
};

static int receiver_class(jv v) {
    switch (v.kind) {
        case JV_STR:
            return ON_STR;
        case JV_DICT:
            return ON_DICT;
        case JV_BOOL:
        case JV_INT:
            return ON_INT;
        case JV_FLOAT:
            return ON_FLOAT;
        case JV_LOOP:
            return ON_LOOP;
        case JV_LIST:
            switch (v.u.l->flavor) {
                case JL_LIST:
                    return ON_LIST;
                case JL_TUPLE:
                    return ON_TUPLE;
                case JL_RANGE:
                    return ON_RANGE;
                case JL_ITER:
                    return ON_ITER;
                default:
                    return ON_VIEW;
            }
        default:
            return 0;
    }
}

hone_status jinja_method_lookup(jinja_render *r, jv self, const char *name, size_t len, jv *out, int *found) {
    *found = 0;
    int cls = receiver_class(self);
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        if (!(methods[i].on & cls) || strlen(methods[i].name) != len || memcmp(methods[i].name, name, len) != 0)
            continue;
        *found = 1;
        jinja_arena *a = jinja_render_arena(r);
        if (methods[i].status == M_UNSAFE) {
            jinja_undef *u = jinja_alloc(a, sizeof *u);
            if (!u) return a->fail;
            u->why = JU_UNSAFE;
            u->name = methods[i].name;
            u->name_len = len;
            u->obj_kind = self.kind;
            u->obj_flavor = self.kind == JV_LIST ? self.u.l->flavor : 0;
            *out = (jv){.kind = JV_UNDEFINED, .u.u = u};
            return HONE_OK;
        }
        jinja_func *fn = jinja_alloc(a, sizeof *fn);
        char *qual = jinja_alloc(a, len + 32);
        if (!fn || !qual) return a->fail;
        snprintf(qual, len + 32, "%s.%s", jv_type_name(self), methods[i].name);
        fn->kind = methods[i].status == M_OK ? JF_METHOD : JF_UNSUPPORTED;
        fn->id = methods[i].id;
        fn->self = self;
        fn->name = qual;
        *out = (jv){.kind = JV_FUNC, .u.fn = fn};
        return HONE_OK;
    }
    return HONE_OK;
}

static hone_status no_args(const jinja_func *fn, const jinja_args *args) {
    if (args->n_args || args->n_kw)
        return hone_errorf(HONE_ERR_INVALID, "%s() takes no arguments (%zu given)", fn->name,
                           args->n_args + args->n_kw);
    return HONE_OK;
}

static hone_status int_or(jv v, int64_t dflt, int64_t *out) {
    if (!jv_given(v)) {
        *out = dflt;
        return HONE_OK;
    }
    if (!jv_is_int(v))
        return hone_errorf(HONE_ERR_INVALID, "'%s' object cannot be interpreted as an integer", jv_type_name(v));
    *out = v.u.i;
    return HONE_OK;
}

/* str.isX predicates: every character passes (and there is one), Python's definition for each. */
static int str_all(const jinja_str *s, int id) {
    if (id == S_ISASCII) {
        for (size_t i = 0; i < s->len; i++)
            if ((uint8_t)s->data[i] >= 0x80) return 0;
        return 1;
    }
    if (s->len == 0) return 0;
    if (id == S_ISLOWER || id == S_ISUPPER) return jinja_str_is_case((jinja_str *)s, id == S_ISUPPER);
    if (id == S_ISTITLE) {
        int prev_cased = 0, cased = 0;
        for (size_t i = 0; i < s->len;) {
            uint32_t c = jinja_next_cp(s->data, &i);
            int upper = jinja_is_cased(c) && jinja_lower(c) != c, lower = jinja_is_cased(c) && jinja_upper(c) != c;
            if (upper) {
                if (prev_cased) return 0;
                prev_cased = cased = 1;
            } else if (lower) {
                if (!prev_cased) return 0;
                prev_cased = cased = 1;
            } else
                prev_cased = 0;
        }
        return cased;
    }
    for (size_t i = 0; i < s->len;) {
        uint32_t c = jinja_next_cp(s->data, &i);
        int ok = id == S_ISALNUM   ? jinja_is_alnum(c)
                 : id == S_ISALPHA ? jinja_is_alpha(c)
                 : id == S_ISSPACE ? jinja_is_space(c)
                                   : jinja_is_digit(c);
        if (!ok) return 0;
    }
    return 1;
}

static hone_status str_partition(jinja_render *r, jinja_str *s, jv sep, int reverse, jv *out) {
    if (sep.kind != JV_STR) return hone_errorf(HONE_ERR_INVALID, "must be str, not %s", jv_type_name(sep));
    if (sep.u.s->len == 0) return hone_errorf(HONE_ERR_INVALID, "empty separator");
    jinja_arena *a = jinja_render_arena(r);
    const char *hit = NULL;
    if (!reverse)
        hit = memmem(s->data, s->len, sep.u.s->data, sep.u.s->len);
    else
        for (size_t k = s->len >= sep.u.s->len ? s->len - sep.u.s->len + 1 : 0; k-- > 0;)
            if (memcmp(s->data + k, sep.u.s->data, sep.u.s->len) == 0) {
                hit = s->data + k;
                break;
            }
    jv parts[3];
    if (!hit) {
        jv empty = {0};
        HONE_TRY(jv_str_new(a, "", 0, &empty));
        jv whole = {.kind = JV_STR, .u.s = s};
        parts[0] = reverse ? empty : whole;
        parts[1] = empty;
        parts[2] = reverse ? whole : empty;
    } else {
        size_t at = (size_t)(hit - s->data);
        HONE_TRY(jv_str_new(a, s->data, at, &parts[0]));
        parts[1] = sep;
        HONE_TRY(jv_str_new(a, hit + sep.u.s->len, s->len - at - sep.u.s->len, &parts[2]));
    }
    return jv_list_new(a, 3, parts, JL_TUPLE, out);
}

static hone_status str_method(jinja_render *r, const jinja_func *fn, const jinja_args *args, jv *out) {
    jinja_str *s = fn->self.u.s;
    jinja_arena *a = jinja_render_arena(r);
    switch (fn->id) {
        case S_CAPITALIZE:
        case S_CASEFOLD:
        case S_LOWER:
        case S_UPPER:
        case S_SWAPCASE:
        case S_TITLE: {
            HONE_TRY(no_args(fn, args));
            int mode = fn->id == S_CAPITALIZE ? JC_CAPITALIZE
                       : fn->id == S_UPPER    ? JC_UPPER
                       : fn->id == S_SWAPCASE ? JC_SWAPCASE
                       : fn->id == S_TITLE    ? JC_TITLE
                                              : JC_LOWER;
            return jinja_str_case(r, s, mode, out);
        }
        case S_CENTER:
        case S_LJUST:
        case S_RJUST: {
            JINJA_BIND(fn->name, 1, "width", "fillchar");
            int64_t w = 0;
            HONE_TRY(int_or(p[0], 0, &w));
            if (jv_given(p[1]) && p[1].kind != JV_STR)
                return hone_errorf(HONE_ERR_INVALID, "The fill character must be a unicode character");
            return jinja_str_pad(r, s, w, jv_given(p[1]) ? p[1].u.s : NULL,
                                 fn->id == S_CENTER  ? 0
                                 : fn->id == S_LJUST ? 1
                                                     : 2,
                                 out);
        }
        case S_ZFILL: {
            JINJA_BIND(fn->name, 1, "width");
            int64_t w = 0, len = (int64_t)jv_str_ncp(s);
            HONE_TRY(int_or(p[0], 0, &w));
            if (w <= len) {
                *out = fn->self;
                return HONE_OK;
            }
            if (w > (int64_t)1 << 24) return hone_errorf(HONE_ERR_INVALID, "zfill width is too large");
            jinja_buf o = jinja_render_buffer(r);
            size_t sign = s->len && (s->data[0] == '+' || s->data[0] == '-');
            hone_status st = jinja_buf_add(&o, s->data, sign);
            for (int64_t k = 0; k < w - len && st == HONE_OK; k++) st = jinja_buf_add(&o, "0", 1);
            if (st == HONE_OK) st = jinja_buf_add(&o, s->data + sign, s->len - sign);
            return jinja_buf_to_str(jinja_render_arena(r), &o, st, out);
        }
        case S_COUNT:
        case S_FIND:
        case S_RFIND:
        case S_INDEX:
        case S_RINDEX: {
            JINJA_BIND(fn->name, 1, "sub", "start", "end");
            int64_t pos = 0;
            HONE_TRY(str_find(s, p[0], p[1], p[2], fn->id == S_RFIND || fn->id == S_RINDEX, fn->id == S_COUNT, &pos));
            if (pos < 0 && (fn->id == S_INDEX || fn->id == S_RINDEX))
                return hone_errorf(HONE_ERR_INVALID, "substring not found");
            *out = jv_int(pos);
            return HONE_OK;
        }
        case S_STARTSWITH:
        case S_ENDSWITH: {
            JINJA_BIND(fn->name, 1, "prefix", "start", "end");
            int res = 0;
            HONE_TRY(str_affix(r, s, p[0], p[1], p[2], fn->id == S_ENDSWITH, &res));
            *out = jv_bool(res);
            return HONE_OK;
        }
        case S_ISALNUM:
        case S_ISALPHA:
        case S_ISASCII:
        case S_ISDECIMAL:
        case S_ISDIGIT:
        case S_ISNUMERIC:
        case S_ISSPACE:
        case S_ISLOWER:
        case S_ISUPPER:
        case S_ISTITLE:
            HONE_TRY(no_args(fn, args));
            *out = jv_bool(str_all(s, fn->id));
            return HONE_OK;
        case S_JOIN: {
            JINJA_BIND(fn->name, 1, "iterable");
            jv *items = NULL;
            size_t n = 0;
            HONE_TRY(jinja_iterate(r, p[0], &items, &n));
            jinja_buf o = jinja_render_buffer(r);
            hone_status st = HONE_OK;
            for (size_t i = 0; i < n && st == HONE_OK; i++) {
                if (items[i].kind != JV_STR)
                    st = hone_errorf(HONE_ERR_INVALID, "sequence item %zu: expected str instance, %s found", i,
                                     jv_type_name(items[i]));
                else {
                    if (i) st = jinja_buf_add(&o, s->data, s->len);
                    if (st == HONE_OK) st = jinja_buf_add(&o, items[i].u.s->data, items[i].u.s->len);
                }
            }
            return jinja_buf_to_str(jinja_render_arena(r), &o, st, out);
        }
        case S_STRIP:
        case S_LSTRIP:
        case S_RSTRIP: {
            JINJA_BIND(fn->name, 0, "chars");
            return jinja_str_strip(r, s, jv_given(p[0]) ? p[0] : jv_none(), fn->id != S_RSTRIP, fn->id != S_LSTRIP,
                                   out);
        }
        case S_PARTITION:
        case S_RPARTITION: {
            JINJA_BIND(fn->name, 1, "sep");
            return str_partition(r, s, p[0], fn->id == S_RPARTITION, out);
        }
        case S_REMOVEPREFIX:
        case S_REMOVESUFFIX: {
            JINJA_BIND(fn->name, 1, "affix");
            if (p[0].kind != JV_STR) return hone_errorf(HONE_ERR_INVALID, "must be str, not %s", jv_type_name(p[0]));
            size_t n = p[0].u.s->len;
            int suffix = fn->id == S_REMOVESUFFIX;
            if (n && n <= s->len && memcmp(s->data + (suffix ? s->len - n : 0), p[0].u.s->data, n) == 0)
                return jv_str_new(a, s->data + (suffix ? 0 : n), s->len - n, out);
            *out = fn->self;
            return HONE_OK;
        }
        case S_REPLACE: {
            JINJA_BIND(fn->name, 2, "old", "new", "count");
            if (p[0].kind != JV_STR || p[1].kind != JV_STR)
                return hone_errorf(HONE_ERR_INVALID, "replace() argument must be str");
            int64_t count = 0;
            HONE_TRY(int_or(p[2], -1, &count));
            return jinja_str_replace(r, s, p[0].u.s, p[1].u.s, count, out);
        }
        case S_SPLIT:
        case S_RSPLIT: {
            JINJA_BIND(fn->name, 0, "sep", "maxsplit");
            int64_t maxsplit = 0;
            HONE_TRY(int_or(p[1], -1, &maxsplit));
            return str_split(r, s, jv_given(p[0]) ? p[0] : jv_none(), maxsplit, fn->id == S_RSPLIT, out);
        }
        case S_SPLITLINES: {
            JINJA_BIND(fn->name, 0, "keepends");
            return jinja_str_splitlines(r, s, jv_given(p[0]) && jv_truthy(p[0]), out);
        }
    }
    return hone_errorf(HONE_ERR_INVALID, "unknown str method");
}

static hone_status call_method_inner(jinja_render *r, const jinja_func *fn, const jinja_args *args, jv *out) {
    jinja_arena *a = jinja_render_arena(r);
    jv self = fn->self;
    if (self.kind == JV_STR) return str_method(r, fn, args, out);
    switch (fn->id) {
        case D_GET: {
            JINJA_BIND(fn->name, 1, "key", "default");
            uint64_t h = 0;
            HONE_TRY(jv_hash(p[0], &h));
            long at = jv_dict_find(self.u.d, p[0]);
            *out = at >= 0 ? self.u.d->vals[at] : jv_given(p[1]) ? p[1] : jv_none();
            return HONE_OK;
        }
        case D_ITEMS:
        case D_KEYS:
        case D_VALUES: {
            HONE_TRY(no_args(fn, args));
            const jinja_dict *d = self.u.d;
            HONE_TRY(jv_list_new(a, d->n, NULL,
                                 fn->id == D_ITEMS  ? JL_ITEMS
                                 : fn->id == D_KEYS ? JL_KEYS
                                                    : JL_VALUES,
                                 out));
            for (size_t i = 0; i < d->n; i++) {
                if (fn->id == D_ITEMS) {
                    jv pair[2] = {d->keys[i], d->vals[i]};
                    HONE_TRY(jv_list_new(a, 2, pair, JL_TUPLE, &out->u.l->items[i]));
                } else
                    out->u.l->items[i] = fn->id == D_KEYS ? d->keys[i] : d->vals[i];
            }
            return HONE_OK;
        }
        case D_COPY: {
            HONE_TRY(no_args(fn, args));
            HONE_TRY(jv_dict_new(a, out));
            for (size_t i = 0; i < self.u.d->n; i++)
                HONE_TRY(jv_dict_set(a, out->u.d, self.u.d->keys[i], self.u.d->vals[i]));
            return HONE_OK;
        }
        case L_COPY:
            HONE_TRY(no_args(fn, args));
            return jv_list_new(a, self.u.l->n, self.u.l->items, JL_LIST, out);
        case L_COUNT:
        case L_INDEX: {
            JINJA_BIND(fn->name, 1, "value", "start", "stop");
            int64_t n = 0, found = -1, start = 0, stop = 0, len = (int64_t)self.u.l->n;
            HONE_TRY(int_or(p[1], 0, &start));
            HONE_TRY(int_or(p[2], len, &stop));
            if (start < 0) start = start + len < 0 ? 0 : start + len;
            if (stop < 0) stop = stop + len < 0 ? 0 : stop + len;
            if (stop > len) stop = len;
            for (int64_t i = fn->id == L_INDEX ? start : 0; i < (fn->id == L_INDEX ? stop : len); i++)
                if (jv_equal(self.u.l->items[i], p[0])) {
                    n++;
                    if (found < 0) found = i;
                    if (fn->id == L_INDEX) break;
                }
            if (fn->id == L_INDEX && found < 0)
                return hone_errorf(HONE_ERR_INVALID, "%s.index(x): x not in %s", jv_type_name(self),
                                   jv_type_name(self));
            *out = jv_int(fn->id == L_INDEX ? found : n);
            return HONE_OK;
        }
        case LOOP_CYCLE:
            if (args->n_kw) return hone_errorf(HONE_ERR_INVALID, "cycle() takes no keyword arguments");
            if (!args->n_args) return hone_errorf(HONE_ERR_INVALID, "no items for cycling given");
            *out = args->args[self.u.loop->index0 % args->n_args];
            return HONE_OK;
        case LOOP_CHANGED: {
            if (args->n_kw) return hone_errorf(HONE_ERR_INVALID, "changed() takes no keyword arguments");
            jv now = {0};
            HONE_TRY(jv_list_new(a, args->n_args, args->args, JL_TUPLE, &now));
            int changed = !jv_equal(self.u.loop->changed_last, now);
            if (changed) self.u.loop->changed_last = now;
            *out = jv_bool(changed);
            return HONE_OK;
        }
    }
    return hone_errorf(HONE_ERR_INVALID, "unknown method");
}

/* The str methods markupsafe.Markup overrides: they escape their str arguments and return Markup (lists and
 * tuples of Markup for the splitting ones). */
static int markup_wraps(int id) {
    switch (id) {
        case S_CAPITALIZE:
        case S_TITLE:
        case S_LOWER:
        case S_UPPER:
        case S_REPLACE:
        case S_LJUST:
        case S_RJUST:
        case S_LSTRIP:
        case S_RSTRIP:
        case S_CENTER:
        case S_STRIP:
        case S_SWAPCASE:
        case S_ZFILL:
        case S_SPLIT:
        case S_RSPLIT:
        case S_SPLITLINES:
        case S_PARTITION:
        case S_RPARTITION:
        case S_JOIN:
            return 1;
        default:
            return 0;
    }
}

hone_status jinja_call_method(jinja_render *r, const jinja_func *fn, const jinja_args *args, jv *out) {
    if (!(fn->self.kind == JV_STR && fn->self.markup && markup_wraps(fn->id)))
        return call_method_inner(r, fn, args, out);
    jinja_arena *a = jinja_render_arena(r);
    jv *pos = jinja_alloc(a, (args->n_args + 1) * sizeof *pos), *kw = jinja_alloc(a, (args->n_kw + 1) * sizeof *kw);
    if (!pos || !kw) return a->fail;
    for (size_t i = 0; i < args->n_args + args->n_kw; i++) {
        jv v = i < args->n_args ? args->args[i] : args->kw_vals[i - args->n_args];
        if (v.kind == JV_STR) HONE_TRY(jv_escape(a, v, 0, &v));
        if (fn->id == S_JOIN && i == 0) { /* Markup.join escapes every item */
            jv *items = NULL;
            size_t n = 0;
            HONE_TRY(jinja_iterate(r, v, &items, &n));
            HONE_TRY(jv_list_new(a, n, NULL, JL_LIST, &v));
            for (size_t k = 0; k < n; k++) HONE_TRY(jv_escape(a, items[k], 0, &v.u.l->items[k]));
        }
        if (i < args->n_args)
            pos[i] = v;
        else
            kw[i - args->n_args] = v;
    }
    jinja_args escaped = {pos, args->n_args, args->kw_names, kw, args->n_kw};
    HONE_TRY(call_method_inner(r, fn, &escaped, out));
    if (out->kind == JV_STR) {
        if (out->u.s == fn->self.u.s) *out = fn->self; /* returned unchanged */
        out->markup = 1;
    } else if (out->kind == JV_LIST)
        for (size_t k = 0; k < out->u.l->n; k++)
            if (out->u.l->items[k].kind == JV_STR) out->u.l->items[k].markup = 1;
    return HONE_OK;
}
