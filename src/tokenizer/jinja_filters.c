/* Jinja filters and tests, each with the semantics of its jinja2 3.1 implementation (jinja2/filters.py,
 * jinja2/tests.py), except tojson, which is transformers' override: json.dumps(x, ensure_ascii=False,
 * indent=None, separators=None, sort_keys=False) without HTML escaping.
 *
 * Filters that return generators in jinja2 (map, select*, reject*, unique, batch, slice, items, reverse of a
 * sequence) return JL_ITER lists: one pass, no len(), always truthy, like the generators they stand for.
 * Filters jinja2 has but hone does not implement are HONE_ERR_UNSUPPORTED when a template runs them. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "tokenizer/jinja.h"

enum {
    F_ABS,
    F_ATTR,
    F_BATCH,
    F_CAPITALIZE,
    F_CENTER,
    F_COUNT,
    F_D,
    F_DEFAULT,
    F_DICTSORT,
    F_E,
    F_ESCAPE,
    F_FILESIZEFORMAT,
    F_FIRST,
    F_FLOAT,
    F_FORCEESCAPE,
    F_FORMAT,
    F_GROUPBY,
    F_INDENT,
    F_INT,
    F_ITEMS,
    F_JOIN,
    F_LAST,
    F_LENGTH,
    F_LIST,
    F_LOWER,
    F_MAP,
    F_MAX,
    F_MIN,
    F_PPRINT,
    F_RANDOM,
    F_REJECT,
    F_REJECTATTR,
    F_REPLACE,
    F_REVERSE,
    F_ROUND,
    F_SAFE,
    F_SELECT,
    F_SELECTATTR,
    F_SLICE,
    F_SORT,
    F_STRING,
    F_STRIPTAGS,
    F_SUM,
    F_TITLE,
    F_TOJSON,
    F_TRIM,
    F_TRUNCATE,
    F_UNIQUE,
    F_UPPER,
    F_URLENCODE,
    F_URLIZE,
    F_WORDCOUNT,
    F_WORDWRAP,
    F_XMLATTR,
    F_COUNT_ALL
};

static const char *const filter_names[F_COUNT_ALL] = {
    [F_ABS] = "abs",
    [F_ATTR] = "attr",
    [F_BATCH] = "batch",
    [F_CAPITALIZE] = "capitalize",
    [F_CENTER] = "center",
    [F_COUNT] = "count",
    [F_D] = "d",
    [F_DEFAULT] = "default",
    [F_DICTSORT] = "dictsort",
    [F_E] = "e",
    [F_ESCAPE] = "escape",
    [F_FILESIZEFORMAT] = "filesizeformat",
    [F_FIRST] = "first",
    [F_FLOAT] = "float",
    [F_FORCEESCAPE] = "forceescape",
    [F_FORMAT] = "format",
    [F_GROUPBY] = "groupby",
    [F_INDENT] = "indent",
    [F_INT] = "int",
    [F_ITEMS] = "items",
    [F_JOIN] = "join",
    [F_LAST] = "last",
    [F_LENGTH] = "length",
    [F_LIST] = "list",
    [F_LOWER] = "lower",
    [F_MAP] = "map",
    [F_MAX] = "max",
    [F_MIN] = "min",
    [F_PPRINT] = "pprint",
    [F_RANDOM] = "random",
    [F_REJECT] = "reject",
    [F_REJECTATTR] = "rejectattr",
    [F_REPLACE] = "replace",
    [F_REVERSE] = "reverse",
    [F_ROUND] = "round",
    [F_SAFE] = "safe",
    [F_SELECT] = "select",
    [F_SELECTATTR] = "selectattr",
    [F_SLICE] = "slice",
    [F_SORT] = "sort",
    [F_STRING] = "string",
    [F_STRIPTAGS] = "striptags",
    [F_SUM] = "sum",
    [F_TITLE] = "title",
    [F_TOJSON] = "tojson",
    [F_TRIM] = "trim",
    [F_TRUNCATE] = "truncate",
    [F_UNIQUE] = "unique",
    [F_UPPER] = "upper",
    [F_URLENCODE] = "urlencode",
    [F_URLIZE] = "urlize",
    [F_WORDCOUNT] = "wordcount",
    [F_WORDWRAP] = "wordwrap",
    [F_XMLATTR] = "xmlattr",
};

enum {
    T_ODD,
    T_EVEN,
    T_DIVISIBLEBY,
    T_DEFINED,
    T_UNDEFINED,
    T_FILTER,
    T_TEST,
    T_NONE,
    T_BOOLEAN,
    T_FALSE,
    T_TRUE,
    T_INTEGER,
    T_FLOAT,
    T_LOWER,
    T_UPPER,
    T_STRING,
    T_MAPPING,
    T_NUMBER,
    T_SEQUENCE,
    T_ITERABLE,
    T_CALLABLE,
    T_SAMEAS,
    T_ESCAPED,
    T_IN,
    T_EQ_SYM,
    T_EQ,
    T_EQUALTO,
    T_NE_SYM,
    T_NE,
    T_GT_SYM,
    T_GT,
    T_GREATERTHAN,
    T_GE,
    T_GE_SYM,
    T_LT_SYM,
    T_LT,
    T_LESSTHAN,
    T_LE_SYM,
    T_LE,
    T_COUNT_ALL
};

static const char *const test_names[T_COUNT_ALL] = {
    [T_ODD] = "odd",
    [T_EVEN] = "even",
    [T_DIVISIBLEBY] = "divisibleby",
    [T_DEFINED] = "defined",
    [T_UNDEFINED] = "undefined",
    [T_FILTER] = "filter",
    [T_TEST] = "test",
    [T_NONE] = "none",
    [T_BOOLEAN] = "boolean",
    [T_FALSE] = "false",
    [T_TRUE] = "true",
    [T_INTEGER] = "integer",
    [T_FLOAT] = "float",
    [T_LOWER] = "lower",
    [T_UPPER] = "upper",
    [T_STRING] = "string",
    [T_MAPPING] = "mapping",
    [T_NUMBER] = "number",
    [T_SEQUENCE] = "sequence",
    [T_ITERABLE] = "iterable",
    [T_CALLABLE] = "callable",
    [T_SAMEAS] = "sameas",
    [T_ESCAPED] = "escaped",
    [T_IN] = "in",
    [T_EQ_SYM] = "==",
    [T_EQ] = "eq",
    [T_EQUALTO] = "equalto",
    [T_NE_SYM] = "!=",
    [T_NE] = "ne",
    [T_GT_SYM] = ">",
    [T_GT] = "gt",
    [T_GREATERTHAN] = "greaterthan",
    [T_GE] = "ge",
    [T_GE_SYM] = ">=",
    [T_LT_SYM] = "<",
    [T_LT] = "lt",
    [T_LESSTHAN] = "lessthan",
    [T_LE_SYM] = "<=",
    [T_LE] = "le",
};

static int find_name(const char *const *names, int n, const char *name, size_t len) {
    for (int i = 0; i < n; i++)
        if (strlen(names[i]) == len && memcmp(names[i], name, len) == 0) return i;
    return -1;
}

int jinja_filter_id(const char *name, size_t len) { return find_name(filter_names, F_COUNT_ALL, name, len); }
int jinja_test_id(const char *name, size_t len) { return find_name(test_names, T_COUNT_ALL, name, len); }

hone_status jinja_bind(const char *fname, const jinja_args *in, const char *const *names, size_t n_names,
                       size_t n_required, jv *vals) {
    for (size_t i = 0; i < n_names; i++) vals[i] = jv_undefined();
    if (in->n_args > n_names)
        return hone_errorf(HONE_ERR_INVALID, "%s() takes at most %zu argument(s) (%zu given)", fname, n_names,
                           in->n_args);
    for (size_t i = 0; i < in->n_args; i++) vals[i] = in->args[i];
    for (size_t k = 0; k < in->n_kw; k++) {
        size_t i = 0;
        while (i < n_names && strcmp(names[i], in->kw_names[k]) != 0) i++;
        if (i == n_names)
            return hone_errorf(HONE_ERR_INVALID, "%s() got an unexpected keyword argument '%s'", fname,
                               in->kw_names[k]);
        if (i < in->n_args)
            return hone_errorf(HONE_ERR_INVALID, "%s() got multiple values for argument '%s'", fname, names[i]);
        vals[i] = in->kw_vals[k];
    }
    for (size_t i = 0; i < n_required; i++)
        if (!jv_given(vals[i]))
            return hone_errorf(HONE_ERR_INVALID, "%s() missing required argument '%s'", fname, names[i]);
    return HONE_OK;
}

static hone_status no_args(const char *fname, const jinja_args *args) {
    if (args->n_args || args->n_kw)
        return hone_errorf(HONE_ERR_INVALID, "%s() takes no arguments (%zu given)", fname, args->n_args + args->n_kw);
    return HONE_OK;
}

static int flag(jv v, int dflt) { return jv_given(v) ? jv_truthy(v) : dflt; }

/* An int argument (bool counts); not given → dflt. */
static hone_status int_arg(const char *what, jv v, int64_t dflt, int64_t *out) {
    if (!jv_given(v)) {
        *out = dflt;
        return HONE_OK;
    }
    if (!jv_is_int(v))
        return hone_errorf(HONE_ERR_INVALID, "%s: '%s' object cannot be interpreted as an integer", what,
                           jv_type_name(v));
    *out = v.u.i;
    return HONE_OK;
}

static hone_status to_str(jinja_render *r, jv v, jv *out) {
    if (v.kind == JV_STR) {
        *out = v;
        return HONE_OK;
    }
    return jv_to_str(jinja_render_arena(r), v, out);
}

/* A new JL_ITER list holding items[0..n). */
static hone_status make_iter(jinja_render *r, const jv *items, size_t n, jv *out) {
    return jv_list_new(jinja_render_arena(r), n, items, JL_ITER, out);
}

/* ---- attribute getters (make_attrgetter / make_multi_attrgetter) ---- */

/* item looked up along the dotted path attr (digit parts are int indexes); default replaces undefined results. */
static hone_status get_path(jinja_render *r, jv item, jv attr, jv dflt, int ignore_case, jv *out) {
    if (attr.kind == JV_STR) {
        const char *s = attr.u.s->data;
        size_t n = attr.u.s->len, i = 0;
        for (;;) {
            size_t j = i;
            while (j < n && s[j] != '.') j++;
            int digits = j > i;
            int64_t idx = 0;
            for (size_t k = i; k < j && digits; k++) {
                if (s[k] < '0' || s[k] > '9' || idx > INT64_MAX / 10 - 9) digits = 0;
                idx = idx * 10 + (s[k] - '0');
            }
            jv key = {0};
            if (digits)
                key = jv_int(idx);
            else
                HONE_TRY(jv_str_new(jinja_render_arena(r), s + i, j - i, &key));
            HONE_TRY(jinja_getitem(r, item, key, &item));
            if (jv_given(dflt) && dflt.kind != JV_NONE && item.kind == JV_UNDEFINED) item = dflt;
            if (j >= n) break;
            i = j + 1;
        }
    } else if (jv_given(attr) && attr.kind != JV_NONE) {
        HONE_TRY(jinja_getitem(r, item, attr, &item));
        if (jv_given(dflt) && dflt.kind != JV_NONE && item.kind == JV_UNDEFINED) item = dflt;
    }
    if (ignore_case && item.kind == JV_STR) return jinja_str_case(r, item.u.s, JC_LOWER, out);
    *out = item;
    return HONE_OK;
}

/* Sort keys of make_multi_attrgetter: one list of values per item ("a,b" looks up both). */
static hone_status multi_key(jinja_render *r, jv item, jv attr, int ignore_case, jv *out) {
    jinja_arena *a = jinja_render_arena(r);
    if (attr.kind != JV_STR) {
        HONE_TRY(jv_list_new(a, 1, NULL, JL_LIST, out));
        return get_path(r, item, attr, jv_undefined(), ignore_case, &out->u.l->items[0]);
    }
    size_t parts = 1;
    for (size_t i = 0; i < attr.u.s->len; i++) parts += attr.u.s->data[i] == ',';
    HONE_TRY(jv_list_new(a, parts, NULL, JL_LIST, out));
    const char *s = attr.u.s->data;
    size_t i = 0;
    for (size_t k = 0; k < parts; k++) {
        size_t j = i;
        while (j < attr.u.s->len && s[j] != ',') j++;
        jv part = {0};
        HONE_TRY(jv_str_new(a, s + i, j - i, &part));
        HONE_TRY(get_path(r, item, part, jv_undefined(), ignore_case, &out->u.l->items[k]));
        i = j + 1;
    }
    return HONE_OK;
}

/* Stable merge sort of items by keys with Python's < (reverse keeps equal items in order, as sorted() does). */
static hone_status merge_sort(jv *items, jv *keys, jv *tmp_i, jv *tmp_k, size_t n, int reverse) {
    if (n < 2) return HONE_OK;
    size_t h = n / 2;
    HONE_TRY(merge_sort(items, keys, tmp_i, tmp_k, h, reverse));
    HONE_TRY(merge_sort(items + h, keys + h, tmp_i, tmp_k, n - h, reverse));
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n) {
        int take_right = 0;
        HONE_TRY(reverse ? jv_less(keys[i], keys[j], &take_right) : jv_less(keys[j], keys[i], &take_right));
        size_t from = take_right ? j++ : i++;
        tmp_i[k] = items[from];
        tmp_k[k++] = keys[from];
    }
    while (i < h) {
        tmp_i[k] = items[i];
        tmp_k[k++] = keys[i++];
    }
    while (j < n) {
        tmp_i[k] = items[j];
        tmp_k[k++] = keys[j++];
    }
    memcpy(items, tmp_i, n * sizeof *items);
    memcpy(keys, tmp_k, n * sizeof *keys);
    return HONE_OK;
}

static hone_status sort_by_keys(jinja_render *r, jv *items, jv *keys, size_t n, int reverse) {
    jinja_arena *a = jinja_render_arena(r);
    jv *ti = jinja_alloc(a, (n + 1) * sizeof *ti), *tk = jinja_alloc(a, (n + 1) * sizeof *tk);
    if (!ti || !tk) return a->fail;
    return merge_sort(items, keys, ti, tk, n, reverse);
}

/* ---- individual filters ---- */

static hone_status f_indent(jinja_render *r, jv v, const jinja_args *args, jv *out) {
    JINJA_BIND("indent", 0, "width", "first", "blank");
    if (v.kind == JV_UNDEFINED) return jinja_undefined_error(v);
    if (v.kind != JV_STR)
        return hone_errorf(HONE_ERR_INVALID, "unsupported operand type(s) for +=: '%s' and 'str'", jv_type_name(v));
    jinja_arena *a = jinja_render_arena(r);
    jv ind = {0};
    if (p[0].kind == JV_STR)
        ind = p[0];
    else {
        int64_t w = 0;
        HONE_TRY(int_arg("indent", p[0], 4, &w));
        if (w < 0) w = 0;
        if (w > 1 << 20) return hone_errorf(HONE_ERR_INVALID, "indent width %lld is too large", (long long)w);
        char *sp = jinja_alloc(a, (size_t)w + 1);
        if (!sp) return a->fail;
        memset(sp, ' ', (size_t)w);
        HONE_TRY(jv_str_new(a, sp, (size_t)w, &ind));
    }
    jinja_buf tmp = jinja_render_buffer(r);
    hone_status st = jinja_buf_add(&tmp, v.u.s->data, v.u.s->len);
    if (st == HONE_OK) st = jinja_buf_add(&tmp, "\n", 1); /* jinja2's "s += newline" before splitlines */
    jv sv = {0}, lines = {0};
    if (st == HONE_OK) st = jv_str_new(a, tmp.b.v, tmp.b.n, &sv);
    free(tmp.b.v);
    HONE_TRY(st);
    HONE_TRY(jinja_str_splitlines(r, sv.u.s, 0, &lines));
    jinja_buf o = jinja_render_buffer(r);
    const jinja_list *l = lines.u.l;
    int first = flag(p[1], 0), blank = flag(p[2], 0);
    if (first) st = jinja_buf_add(&o, ind.u.s->data, ind.u.s->len);
    for (size_t i = 0; i < l->n && st == HONE_OK; i++) {
        const jinja_str *line = l->items[i].u.s;
        if (i) {
            st = jinja_buf_add(&o, "\n", 1);
            if (st == HONE_OK && (blank || line->len)) st = jinja_buf_add(&o, ind.u.s->data, ind.u.s->len);
        }
        if (st == HONE_OK) st = jinja_buf_add(&o, line->data, line->len);
    }
    if (st == HONE_OK) st = jv_str_new(a, o.b.v ? o.b.v : "", o.b.n, out);
    free(o.b.v);
    if (st == HONE_OK) out->markup = v.markup;
    return st;
}

/* jinja2's title filter: words start after runs of [-\s({[<]; each piece is item[0].upper() + item[1:].lower(). */
static hone_status f_title(jinja_render *r, jv v, jv *out) {
    jv sv = {0};
    HONE_TRY(to_str(r, v, &sv));
    const jinja_str *s = sv.u.s;
    jinja_buf o = jinja_render_buffer(r);
    hone_status st = HONE_OK;
    size_t i = 0;
    int prev_sep = -1; /* kind of the previous character: 1 separator, 0 word, -1 none */
    while (i < s->len && st == HONE_OK) {
        uint32_t c = jinja_next_cp(s->data, &i);
        int sep = c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || jinja_is_space(c);
        int piece_start = sep != prev_sep;
        const char *full = piece_start ? jinja_special_upper(c, 0) : NULL;
        st = full ? jinja_buf_adds(&o, full) : jinja_buf_add_cp(&o, piece_start ? jinja_upper(c) : jinja_lower(c));
        prev_sep = sep;
    }
    if (st == HONE_OK) st = jv_str_new(jinja_render_arena(r), o.b.v ? o.b.v : "", o.b.n, out);
    free(o.b.v);
    return st;
}

static hone_status f_join(jinja_render *r, jv v, const jinja_args *args, jv *out) {
    JINJA_BIND("join", 0, "d", "attribute");
    jv *items = NULL;
    size_t n = 0;
    HONE_TRY(jinja_iterate(r, v, &items, &n));
    jv sep = {0};
    if (jv_given(p[0]))
        HONE_TRY(to_str(r, p[0], &sep));
    else
        HONE_TRY(jv_str_new(jinja_render_arena(r), "", 0, &sep));
    jinja_buf o = jinja_render_buffer(r);
    hone_status st = HONE_OK;
    for (size_t i = 0; i < n && st == HONE_OK; i++) {
        jv item = items[i];
        if (jv_given(p[1])) st = get_path(r, item, p[1], jv_undefined(), 0, &item);
        if (st == HONE_OK && i) st = jinja_buf_add(&o, sep.u.s->data, sep.u.s->len);
        if (st == HONE_OK) st = jv_write_str(&o, item);
    }
    if (st == HONE_OK) st = jv_str_new(jinja_render_arena(r), o.b.v ? o.b.v : "", o.b.n, out);
    free(o.b.v);
    return st;
}

static hone_status f_length(jv v, jv *out) {
    switch (v.kind) {
        case JV_UNDEFINED:
            *out = jv_int(0);
            return HONE_OK;
        case JV_STR:
            *out = jv_int((int64_t)jv_str_ncp(v.u.s));
            return HONE_OK;
        case JV_DICT:
            *out = jv_int((int64_t)v.u.d->n);
            return HONE_OK;
        case JV_LOOP:
            *out = jv_int((int64_t)v.u.loop->items->n);
            return HONE_OK;
        case JV_LIST:
            if (v.u.l->flavor != JL_ITER) {
                *out = jv_int((int64_t)v.u.l->n);
                return HONE_OK;
            }
            break;
        default:
            break;
    }
    return hone_errorf(HONE_ERR_INVALID, "object of type '%s' has no len()", jv_type_name(v));
}

/* Items in reverse order, or NULL with *n = SIZE_MAX when Python's reversed() refuses the value. */
static hone_status reversed_items(jinja_render *r, jv v, jv **out, size_t *n) {
    jv *items = NULL;
    size_t count = 0;
    if (v.kind == JV_LIST && v.u.l->flavor == JL_ITER) {
        *out = NULL;
        *n = SIZE_MAX;
        return HONE_OK;
    }
    HONE_TRY(jinja_iterate(r, v, &items, &count));
    jv *rev = jinja_alloc(jinja_render_arena(r), (count + 1) * sizeof *rev);
    if (!rev) return jinja_render_arena(r)->fail;
    for (size_t i = 0; i < count; i++) rev[i] = items[count - 1 - i];
    *out = rev;
    *n = count;
    return HONE_OK;
}

static hone_status f_reverse(jinja_render *r, jv v, jv *out) {
    if (v.kind == JV_STR) {
        jinja_buf o = jinja_render_buffer(r);
        jv *chars = NULL;
        size_t n = 0;
        hone_status st = jinja_iterate(r, v, &chars, &n);
        for (size_t i = n; i > 0 && st == HONE_OK; i--)
            st = jinja_buf_add(&o, chars[i - 1].u.s->data, chars[i - 1].u.s->len);
        if (st == HONE_OK) st = jv_str_new(jinja_render_arena(r), o.b.v ? o.b.v : "", o.b.n, out);
        free(o.b.v);
        return st;
    }
    jv *rev = NULL;
    size_t n = 0;
    HONE_TRY(reversed_items(r, v, &rev, &n));
    if (n != SIZE_MAX) return make_iter(r, rev, n, out);
    /* not reversible (a generator): list(value), reversed in place */
    jv *items = NULL;
    HONE_TRY(jinja_iterate(r, v, &items, &n));
    HONE_TRY(jv_list_new(jinja_render_arena(r), n, NULL, JL_LIST, out));
    for (size_t i = 0; i < n; i++) out->u.l->items[i] = items[n - 1 - i];
    return HONE_OK;
}

static hone_status f_first_last(jinja_render *r, jv v, int last, jv *out) {
    if (last) {
        jv *rev = NULL;
        size_t n = 0;
        HONE_TRY(reversed_items(r, v, &rev, &n));
        if (n == SIZE_MAX) return hone_errorf(HONE_ERR_INVALID, "'generator' object is not reversible");
        if (n) {
            *out = rev[0];
            return HONE_OK;
        }
    } else if (v.kind == JV_LIST && v.u.l->flavor == JL_ITER) {
        if (v.u.l->pos < v.u.l->n) {
            *out = v.u.l->items[v.u.l->pos++];
            return HONE_OK;
        }
    } else {
        jv *items = NULL;
        size_t n = 0;
        HONE_TRY(jinja_iterate(r, v, &items, &n));
        if (n) {
            *out = items[0];
            return HONE_OK;
        }
    }
    return jinja_undefined_hint(r, last ? "No last item, sequence was empty." : "No first item, sequence was empty.",
                                out);
}

/* [*from, *to) of s without leading and trailing whitespace. */
static void trim_range(const jinja_str *s, size_t *from, size_t *to) {
    size_t i = 0, end = 0;
    while (i < s->len) {
        size_t k = i;
        if (!jinja_is_space(jinja_next_cp(s->data, &k))) break;
        i = k;
    }
    for (size_t k = i; k < s->len;)
        if (!jinja_is_space(jinja_next_cp(s->data, &k))) end = k;
    *from = i;
    *to = end > i ? end : i;
}

/* Python's int(str, base) grammar: whitespace, sign, optional prefix (base 0 or matching), digits with single
 * underscores between them. Returns 1 when parsed, 0 when not a number, -1 when it does not fit in 64 bits. */
static int parse_py_int(const jinja_str *s, int64_t base, int64_t *out) {
    size_t i = 0, n = 0;
    trim_range(s, &i, &n);
    int neg = 0;
    if (i < n && (s->data[i] == '+' || s->data[i] == '-')) neg = s->data[i++] == '-';
    if (base == 0 || base == 16 || base == 8 || base == 2) {
        if (n - i >= 2 && s->data[i] == '0') {
            char c = (char)(s->data[i + 1] | 32);
            int b = c == 'x' ? 16 : c == 'o' ? 8 : c == 'b' ? 2 : 0;
            if (b && (base == 0 || base == b)) {
                base = b;
                i += 2;
                if (i < n && s->data[i] == '_') i++;
            }
        }
        if (base == 0) base = 10;
    }
    if (base < 2 || base > 36 || i >= n) return 0;
    uint64_t v = 0;
    int prev_digit = 0;
    for (; i < n; i++) {
        char c = s->data[i];
        if (c == '_') {
            if (!prev_digit || i + 1 >= n) return 0;
            prev_digit = 0;
            continue;
        }
        int d = c >= '0' && c <= '9' ? c - '0' : (c | 32) >= 'a' && (c | 32) <= 'z' ? (c | 32) - 'a' + 10 : 99;
        if (d >= base) return 0;
        if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base) return -1;
        v = v * (uint64_t)base + (uint64_t)d;
        prev_digit = 1;
    }
    if (v > (uint64_t)INT64_MAX + (uint64_t)neg) return -1;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 1;
}

/* Python's float(str) grammar: whitespace, sign, digits with underscores, fraction, exponent, inf / nan. */
static int parse_py_float(const jinja_str *s, double *out) {
    size_t i = 0, end = 0;
    trim_range(s, &i, &end);
    char buf[512];
    size_t m = 0;
    if (end - i >= sizeof buf) return 0;
    const char *p = s->data + i;
    size_t len = end - i, j = 0;
    if (j < len && (p[j] == '+' || p[j] == '-')) buf[m++] = p[j++];
    const char *words[] = {"infinity", "inf", "nan"};
    for (int w = 0; w < 3; w++)
        if (len - j == strlen(words[w]) && strncasecmp(p + j, words[w], len - j) == 0) {
            double v = w == 2 ? NAN : INFINITY;
            *out = m && buf[0] == '-' ? -v : v;
            return 1;
        }
    int digits = 0, prev_digit = 0;
    for (; j < len; j++) {
        char c = p[j];
        if (c >= '0' && c <= '9') {
            buf[m++] = c;
            digits++;
            prev_digit = 1;
        } else if (c == '_') {
            if (!prev_digit || j + 1 >= len || p[j + 1] < '0' || p[j + 1] > '9') return 0;
            prev_digit = 0;
        } else if (c == '.' || c == 'e' || c == 'E' || ((c == '+' || c == '-') && m && (buf[m - 1] | 32) == 'e')) {
            buf[m++] = c;
            prev_digit = 0;
        } else
            return 0;
    }
    buf[m] = 0;
    if (!digits) return 0;
    char *stop;
    double v = jinja_strtod(buf, &stop);
    if (*stop) return 0;
    *out = v;
    return 1;
}

static hone_status float_to_int(double f, int64_t *out, int *ok) {
    *ok = 1;
    if (isnan(f)) {
        *ok = 0;
        return HONE_OK;
    }
    if (isinf(f)) return hone_errorf(HONE_ERR_INVALID, "cannot convert float infinity to integer");
    double t = trunc(f);
    if (t < -9223372036854775808.0 || t >= 9223372036854775808.0)
        return hone_errorf(HONE_ERR_UNSUPPORTED, "integer %.17g does not fit in 64 bits", t);
    *out = (int64_t)t;
    return HONE_OK;
}

static hone_status f_int(jv v, const jinja_args *args, jv *out) {
    JINJA_BIND("int", 0, "default", "base");
    int64_t base = 0;
    HONE_TRY(int_arg("int", p[1], 10, &base));
    jv dflt = jv_given(p[0]) ? p[0] : jv_int(0);
    if (v.kind == JV_UNDEFINED) return jinja_undefined_error(v);
    if (jv_is_int(v)) {
        *out = jv_int(v.u.i);
        return HONE_OK;
    }
    double f = 0;
    int have_float = 0;
    if (v.kind == JV_STR) {
        int64_t i = 0;
        int got = parse_py_int(v.u.s, base, &i);
        if (got < 0) return hone_errorf(HONE_ERR_UNSUPPORTED, "int: '%s' does not fit in 64 bits", v.u.s->data);
        if (got) {
            *out = jv_int(i);
            return HONE_OK;
        }
        have_float = parse_py_float(v.u.s, &f); /* "42.23"|int is 42 */
    } else if (v.kind == JV_FLOAT) {
        f = v.u.f;
        have_float = 1;
    }
    if (have_float) {
        int64_t i = 0;
        int ok = 0;
        HONE_TRY(float_to_int(f, &i, &ok));
        if (ok) {
            *out = jv_int(i);
            return HONE_OK;
        }
    }
    *out = dflt;
    return HONE_OK;
}

static hone_status f_float(jv v, const jinja_args *args, jv *out) {
    JINJA_BIND("float", 0, "default");
    if (v.kind == JV_UNDEFINED) return jinja_undefined_error(v);
    double f = 0;
    if (jv_is_num(v)) {
        *out = jv_float(jv_to_double(v));
        return HONE_OK;
    }
    if (v.kind == JV_STR && parse_py_float(v.u.s, &f)) {
        *out = jv_float(f);
        return HONE_OK;
    }
    *out = jv_given(p[0]) ? p[0] : jv_float(0.0);
    return HONE_OK;
}

/* Python's round(x, nd) for floats: the correctly rounded decimal (ties to even) of x's exact value. */
static double round_float(double x, int64_t nd) {
    if (!isfinite(x) || x == 0.0) return x;
    if (nd > 323) return x;
    if (nd < -308) return 0.0 * x;
    char local[1600];
    jinja_snprintf_c(local, sizeof local, "%.1100f", fabs(x)); /* exact: every double has a finite expansion */
    char digits[1600] = {0};
    size_t nd_int = 0, n = 0;
    for (const char *c = local; *c; c++) {
        if (*c == '.') continue;
        digits[n++] = *c;
        if (c < strchr(local, '.')) nd_int++;
    }
    /* keep the first `keep` digits: nd_int integer digits plus nd fractional ones */
    int64_t keep = (int64_t)nd_int + nd;
    char out[1700];
    size_t m = 0;
    if (keep <= 0) {
        /* the result is 0 or one unit at the rounding position */
        int up = 0;
        if (keep == 0) {
            up = digits[0] > '5';
            if (digits[0] == '5') {
                for (size_t i = 1; i < n; i++)
                    if (digits[i] != '0') up = 1;
            }
            /* an exact tie rounds to even: the kept part is 0, which is even */
        }
        if (!up) return copysign(0.0, x);
        snprintf(out, sizeof out, "1e%lld", (long long)-nd);
        return copysign(jinja_strtod(out, NULL), x);
    }
    if ((size_t)keep >= n) return x;
    int up = digits[keep] > '5';
    if (digits[keep] == '5') {
        int rest = 0;
        for (size_t i = (size_t)keep + 1; i < n; i++)
            if (digits[i] != '0') rest = 1;
        up = rest || ((digits[keep - 1] - '0') & 1);
    }
    memcpy(out, digits, (size_t)keep);
    m = (size_t)keep;
    if (up) { /* propagate the carry */
        int64_t i = keep - 1;
        while (i >= 0 && out[i] == '9') out[i--] = '0';
        if (i >= 0)
            out[i]++;
        else {
            memmove(out + 1, out, m);
            out[0] = '1';
            m++;
            nd_int++;
        }
    }
    snprintf(out + m, sizeof out - m, "e%lld", (long long)((int64_t)nd_int - (int64_t)m));
    return copysign(jinja_strtod(out, NULL), x);
}

static hone_status f_round(jv v, const jinja_args *args, jv *out) {
    JINJA_BIND("round", 0, "precision", "method");
    int64_t nd = 0;
    HONE_TRY(int_arg("round", p[0], 0, &nd));
    const char *method = "common";
    if (jv_given(p[1])) {
        if (p[1].kind != JV_STR ||
            (strcmp(p[1].u.s->data, "common") && strcmp(p[1].u.s->data, "ceil") && strcmp(p[1].u.s->data, "floor")))
            return hone_errorf(HONE_ERR_INVALID, "round: method must be common, ceil or floor");
        method = p[1].u.s->data;
    }
    if (v.kind == JV_UNDEFINED && strcmp(method, "common") == 0)
        return hone_errorf(HONE_ERR_INVALID, "type Undefined doesn't define __round__ method");
    if (!jv_is_num(v)) {
        if (v.kind == JV_UNDEFINED) return jinja_undefined_error(v);
        return hone_errorf(HONE_ERR_INVALID, "type %s doesn't define __round__ method", jv_type_name(v));
    }
    if (strcmp(method, "common") == 0) {
        if (v.kind != JV_FLOAT) {
            int64_t i = v.u.i;
            if (nd < 0) { /* round an int to tens, hundreds, …: ties to even */
                if (nd < -18) {
                    *out = jv_int(0);
                    return HONE_OK;
                }
                int64_t unit = 1;
                for (int64_t k = 0; k < -nd; k++) unit *= 10;
                int64_t q = i / unit, rem = i % unit;
                if (rem < 0) {
                    q -= 1;
                    rem += unit;
                }
                if (2 * rem > unit || (2 * rem == unit && (q & 1))) q++;
                int64_t res = 0;
                if (__builtin_mul_overflow(q, unit, &res))
                    return hone_errorf(HONE_ERR_UNSUPPORTED, "round: the result does not fit in 64 bits");
                i = res;
            }
            *out = jv_int(i);
            return HONE_OK;
        }
        *out = jv_float(round_float(v.u.f, nd));
        return HONE_OK;
    }
    /* ceil / floor: math.ceil(value * 10**precision) / 10**precision */
    double scale = pow(10.0, (double)nd), x = jv_to_double(v) * scale;
    if (isinf(x)) return hone_errorf(HONE_ERR_INVALID, "cannot convert float infinity to integer");
    if (isnan(x)) return hone_errorf(HONE_ERR_INVALID, "cannot convert float NaN to integer");
    double c = method[0] == 'c' ? ceil(x) : floor(x);
    *out = jv_float(c / scale);
    return HONE_OK;
}

static hone_status f_tojson(jinja_render *r, jv v, const jinja_args *args, jv *out) {
    JINJA_BIND("tojson", 0, "ensure_ascii", "indent", "separators", "sort_keys");
    jinja_json_opts o = {.ensure_ascii = flag(p[0], 0), .sort_keys = flag(p[3], 0)};
    char spaces[256];
    if (jv_given(p[1]) && p[1].kind != JV_NONE) {
        if (p[1].kind == JV_STR) {
            o.indent = p[1].u.s->data;
            o.indent_len = p[1].u.s->len;
        } else if (jv_is_int(p[1])) {
            int64_t w = p[1].u.i < 0 ? 0 : p[1].u.i;
            if (w >= (int64_t)sizeof spaces)
                return hone_errorf(HONE_ERR_INVALID, "tojson: indent %lld is too large", (long long)w);
            memset(spaces, ' ', (size_t)w);
            spaces[w] = 0;
            o.indent = spaces;
            o.indent_len = (size_t)w;
        } else
            return hone_errorf(HONE_ERR_INVALID, "tojson: indent must be an int or a string, not %s",
                               jv_type_name(p[1]));
    }
    if (jv_given(p[2]) && p[2].kind != JV_NONE) {
        jv *sep = NULL;
        size_t n = 0;
        if (p[2].kind != JV_LIST || jinja_iterate(r, p[2], &sep, &n) != HONE_OK || n != 2 || sep[0].kind != JV_STR ||
            sep[1].kind != JV_STR)
            return hone_errorf(HONE_ERR_INVALID, "tojson: separators must be a pair of strings");
        o.item_sep = sep[0].u.s->data;
        o.item_sep_len = sep[0].u.s->len;
        o.key_sep = sep[1].u.s->data;
        o.key_sep_len = sep[1].u.s->len;
    }
    jinja_buf b = jinja_render_buffer(r);
    hone_status st = jv_write_json(&b, v, &o);
    if (st == HONE_OK) st = jv_str_new(jinja_render_arena(r), b.b.v ? b.b.v : "", b.b.n, out);
    free(b.b.v);
    return st;
}

static hone_status f_dictsort(jinja_render *r, jv v, const jinja_args *args, jv *out) {
    JINJA_BIND("dictsort", 0, "case_sensitive", "by", "reverse");
    int pos = 0;
    if (jv_given(p[1])) {
        if (p[1].kind == JV_STR && strcmp(p[1].u.s->data, "value") == 0)
            pos = 1;
        else if (!(p[1].kind == JV_STR && strcmp(p[1].u.s->data, "key") == 0))
            return hone_errorf(HONE_ERR_INVALID, "dictsort: You can only sort by either \"key\" or \"value\"");
    }
    if (v.kind == JV_UNDEFINED) return jinja_undefined_error(v);
    if (v.kind != JV_DICT)
        return hone_errorf(HONE_ERR_INVALID, "'%s' object has no attribute 'items'", jv_type_name(v));
    jinja_arena *a = jinja_render_arena(r);
    size_t n = v.u.d->n;
    HONE_TRY(jv_list_new(a, n, NULL, JL_LIST, out));
    jv *keys = jinja_alloc(a, (n + 1) * sizeof *keys);
    if (!keys) return a->fail;
    int ci = !flag(p[0], 0);
    for (size_t i = 0; i < n; i++) {
        jv pair[2] = {v.u.d->keys[i], v.u.d->vals[i]};
        HONE_TRY(jv_list_new(a, 2, pair, JL_TUPLE, &out->u.l->items[i]));
        keys[i] = pair[pos];
        if (ci && keys[i].kind == JV_STR) HONE_TRY(jinja_str_case(r, keys[i].u.s, JC_LOWER, &keys[i]));
    }
    return sort_by_keys(r, out->u.l->items, keys, n, flag(p[2], 0));
}

static hone_status f_sort(jinja_render *r, jv v, const jinja_args *args, jv *out) {
    JINJA_BIND("sort", 0, "reverse", "case_sensitive", "attribute");
    jv *items = NULL;
    size_t n = 0;
    HONE_TRY(jinja_iterate(r, v, &items, &n));
    jinja_arena *a = jinja_render_arena(r);
    HONE_TRY(jv_list_new(a, n, items, JL_LIST, out));
    jv *keys = jinja_alloc(a, (n + 1) * sizeof *keys);
    if (!keys) return a->fail;
    jv attr = jv_given(p[2]) ? p[2] : jv_none();
    for (size_t i = 0; i < n; i++) HONE_TRY(multi_key(r, items[i], attr, !flag(p[1], 0), &keys[i]));
    return sort_by_keys(r, out->u.l->items, keys, n, flag(p[0], 0));
}

static hone_status f_unique(jinja_render *r, jv v, const jinja_args *args, jv *out) {
    JINJA_BIND("unique", 0, "case_sensitive", "attribute");
    jv *items = NULL;
    size_t n = 0;
    HONE_TRY(jinja_iterate(r, v, &items, &n));
    jinja_arena *a = jinja_render_arena(r);
    jv seen, *kept = jinja_alloc(a, (n + 1) * sizeof *kept);
    if (!kept) return a->fail;
    HONE_TRY(jv_dict_new(a, &seen));
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        jv key = {0};
        HONE_TRY(get_path(r, items[i], jv_given(p[1]) ? p[1] : jv_none(), jv_undefined(), !flag(p[0], 0), &key));
        uint64_t h = 0;
        HONE_TRY(jv_hash(key, &h));
        if (jv_dict_find(seen.u.d, key) >= 0) continue;
        HONE_TRY(jv_dict_set(a, seen.u.d, key, jv_none()));
        kept[k++] = items[i];
    }
    return make_iter(r, kept, k, out);
}

static hone_status f_minmax(jinja_render *r, jv v, const jinja_args *args, int max, jv *out) {
    JINJA_BIND(max ? "max" : "min", 0, "case_sensitive", "attribute");
    jv *items = NULL;
    size_t n = 0;
    HONE_TRY(jinja_iterate(r, v, &items, &n));
    if (n == 0) return jinja_undefined_hint(r, "No aggregated item, sequence was empty.", out);
    jv attr = jv_given(p[1]) ? p[1] : jv_none();
    int ci = !flag(p[0], 0);
    size_t best = 0;
    jv best_key = {0};
    HONE_TRY(get_path(r, items[0], attr, jv_undefined(), ci, &best_key));
    for (size_t i = 1; i < n; i++) {
        jv key = {0};
        HONE_TRY(get_path(r, items[i], attr, jv_undefined(), ci, &key));
        int better = 0;
        HONE_TRY(max ? jv_less(best_key, key, &better) : jv_less(key, best_key, &better));
        if (better) {
            best = i;
            best_key = key;
        }
    }
    *out = items[best];
    return HONE_OK;
}

static hone_status f_sum(jinja_render *r, jv v, const jinja_args *args, jv *out) {
    JINJA_BIND("sum", 0, "attribute", "start");
    jv *items = NULL;
    size_t n = 0;
    HONE_TRY(jinja_iterate(r, v, &items, &n));
    jv acc = jv_given(p[1]) ? p[1] : jv_int(0);
    if (acc.kind == JV_STR) return hone_errorf(HONE_ERR_INVALID, "sum() can't sum strings [use ''.join(seq) instead]");
    for (size_t i = 0; i < n; i++) {
        jv item = items[i];
        if (jv_given(p[0])) HONE_TRY(get_path(r, item, p[0], jv_undefined(), 0, &item));
        HONE_TRY(jinja_binop(r, JO_ADD, acc, item, &acc));
    }
    *out = acc;
    return HONE_OK;
}

/* map(attribute=…, default=…) or map('filter', args…). Like select and reject, a false value (0, None,
 * False, "") maps to nothing without being iterated, as jinja2's `if value:` guard does. */
static hone_status f_map(jinja_render *r, jv v, const jinja_args *args, jv *out) {
    jv *items = NULL;
    size_t n = 0;
    if (!jv_truthy(v)) return make_iter(r, NULL, 0, out);
    HONE_TRY(jinja_iterate(r, v, &items, &n));
    jinja_arena *a = jinja_render_arena(r);
    jv *mapped = jinja_alloc(a, (n + 1) * sizeof *mapped);
    if (!mapped) return a->fail;
    if (args->n_args == 0) {
        jv attr = jv_undefined(), dflt = jv_undefined();
        for (size_t k = 0; k < args->n_kw; k++) {
            if (strcmp(args->kw_names[k], "attribute") == 0)
                attr = args->kw_vals[k];
            else if (strcmp(args->kw_names[k], "default") == 0)
                dflt = args->kw_vals[k];
            else
                return hone_errorf(HONE_ERR_INVALID, "map: Unexpected keyword argument '%s'", args->kw_names[k]);
        }
        if (!jv_given(attr)) return hone_errorf(HONE_ERR_INVALID, "map requires a filter argument");
        for (size_t i = 0; i < n; i++) HONE_TRY(get_path(r, items[i], attr, dflt, 0, &mapped[i]));
    } else {
        jv name = args->args[0];
        if (name.kind != JV_STR) return hone_errorf(HONE_ERR_INVALID, "map: the filter name must be a string");
        int id = jinja_filter_id(name.u.s->data, name.u.s->len);
        if (id < 0) return hone_errorf(HONE_ERR_INVALID, "No filter named '%s'.", name.u.s->data);
        jinja_args rest = {args->args + 1, args->n_args - 1, args->kw_names, args->kw_vals, args->n_kw};
        for (size_t i = 0; i < n; i++) HONE_TRY(jinja_apply_filter(r, id, items[i], &rest, &mapped[i]));
    }
    return make_iter(r, mapped, n, out);
}

/* select / reject (lookup_attr = 0) and selectattr / rejectattr (1). */
static hone_status f_select(jinja_render *r, jv v, const jinja_args *args, int lookup_attr, int keep_if, jv *out) {
    size_t off = (size_t)lookup_attr;
    if (lookup_attr && args->n_args == 0) return hone_errorf(HONE_ERR_INVALID, "Missing parameter for attribute name");
    jv *items = NULL;
    size_t n = 0;
    if (!jv_truthy(v)) return make_iter(r, NULL, 0, out);
    HONE_TRY(jinja_iterate(r, v, &items, &n));
    jinja_arena *a = jinja_render_arena(r);
    jv *kept = jinja_alloc(a, (n + 1) * sizeof *kept);
    if (!kept) return a->fail;
    int have_test = args->n_args > off;
    int test_id = -1;
    if (have_test) {
        jv name = args->args[off];
        if (name.kind != JV_STR) return hone_errorf(HONE_ERR_INVALID, "the test name must be a string");
        test_id = jinja_test_id(name.u.s->data, name.u.s->len);
        if (test_id < 0) return hone_errorf(HONE_ERR_INVALID, "No test named '%s'.", name.u.s->data);
    }
    jinja_args targs = {have_test ? args->args + off + 1 : NULL, have_test ? args->n_args - off - 1 : 0, args->kw_names,
                        args->kw_vals, args->n_kw};
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        jv x = items[i];
        if (lookup_attr) HONE_TRY(get_path(r, x, args->args[0], jv_undefined(), 0, &x));
        int ok = 0;
        if (have_test)
            HONE_TRY(jinja_apply_test(r, test_id, x, &targs, &ok));
        else
            ok = jv_truthy(x);
        if (ok == keep_if) kept[k++] = items[i];
    }
    return make_iter(r, kept, k, out);
}

static hone_status f_batch_slice(jinja_render *r, jv v, const jinja_args *args, int is_slice, jv *out) {
    static const char *const slice_names[] = {"slices", "fill_with"}, *const batch_names[] = {"linecount", "fill_with"};
    jv p[2];
    HONE_TRY(jinja_bind(is_slice ? "slice" : "batch", args, is_slice ? slice_names : batch_names, 2, 1, p));
    int64_t count = 0;
    HONE_TRY(int_arg(is_slice ? "slice" : "batch", p[0], 0, &count));
    jv *items = NULL;
    size_t n = 0;
    HONE_TRY(jinja_iterate(r, v, &items, &n));
    jinja_arena *a = jinja_render_arena(r);
    int fill = jv_given(p[1]) && p[1].kind != JV_NONE;
    if (is_slice) {
        if (count <= 0)
            return hone_errorf(HONE_ERR_INVALID,
                               count == 0 ? "integer division or modulo by zero" : "slice: the count must be positive");
        if (count > (int64_t)1 << 20) return hone_errorf(HONE_ERR_INVALID, "slice: too many slices");
        size_t per = n / (size_t)count, extra = n % (size_t)count, offset = 0;
        jv *groups = jinja_alloc(a, (size_t)count * sizeof *groups);
        if (!groups) return a->fail;
        for (size_t s = 0; s < (size_t)count; s++) {
            size_t start = offset + s * per;
            if (s < extra) offset++;
            size_t end = offset + (s + 1) * per;
            size_t len = end - start + (fill && s >= extra);
            HONE_TRY(jv_list_new(a, len, NULL, JL_LIST, &groups[s]));
            for (size_t i = start; i < end; i++) groups[s].u.l->items[i - start] = items[i];
            if (fill && s >= extra) groups[s].u.l->items[end - start] = p[1];
        }
        return make_iter(r, groups, (size_t)count, out);
    }
    /* batch: yields a full group when the next item arrives, and the rest (padded) at the end */
    size_t cap = n + 2, n_groups = 0;
    jv *groups = jinja_alloc(a, cap * sizeof *groups);
    jv *tmp = jinja_alloc(a, (n + 1) * sizeof *tmp);
    if (!groups || !tmp) return a->fail;
    size_t t = 0;
    for (size_t i = 0; i < n; i++) {
        if ((int64_t)t == count) {
            HONE_TRY(jv_list_new(a, t, tmp, JL_LIST, &groups[n_groups++]));
            t = 0;
        }
        tmp[t++] = items[i];
    }
    if (t) {
        size_t len = t;
        if (fill && (int64_t)t < count) {
            if (count > (int64_t)1 << 20) return hone_errorf(HONE_ERR_INVALID, "batch: the group size is too large");
            len = (size_t)count;
        }
        HONE_TRY(jv_list_new(a, len, NULL, JL_LIST, &groups[n_groups]));
        for (size_t i = 0; i < len; i++) groups[n_groups].u.l->items[i] = i < t ? tmp[i] : p[1];
        n_groups++;
    }
    return make_iter(r, groups, n_groups, out);
}

static hone_status f_attr(jinja_render *r, jv v, const jinja_args *args, jv *out) {
    JINJA_BIND("attr", 1, "name");
    jv name = {0};
    HONE_TRY(to_str(r, p[0], &name));
    if (v.kind == JV_UNDEFINED) return jinja_undefined_error(v);
    /* getattr only: a dict key is not an attribute */
    if (v.kind == JV_DICT) {
        int found = 0;
        HONE_TRY(jinja_method_lookup(r, v, name.u.s->data, name.u.s->len, out, &found));
        return found ? HONE_OK : jinja_undefined_attr(r, v, name.u.s->data, name.u.s->len, out);
    }
    return jinja_getattr(r, v, name.u.s->data, name.u.s->len, out);
}

hone_status jinja_apply_filter(jinja_render *r, int id, jv v, const jinja_args *args, jv *out) {
    jinja_arena *a = jinja_render_arena(r);
    switch (id) {
        case F_ABS: {
            HONE_TRY(no_args("abs", args));
            if (v.kind == JV_FLOAT)
                *out = jv_float(fabs(v.u.f));
            else if (jv_is_int(v)) {
                if (v.u.i == INT64_MIN)
                    return hone_errorf(HONE_ERR_UNSUPPORTED, "abs(): the result does not fit in 64 bits");
                *out = jv_int(v.u.i < 0 ? -v.u.i : v.u.i);
            } else
                return hone_errorf(HONE_ERR_INVALID, "bad operand type for abs(): '%s'", jv_type_name(v));
            return HONE_OK;
        }
        case F_ATTR:
            return f_attr(r, v, args, out);
        case F_BATCH:
            return f_batch_slice(r, v, args, 0, out);
        case F_SLICE:
            return f_batch_slice(r, v, args, 1, out);
        case F_CAPITALIZE:
        case F_LOWER:
        case F_UPPER: {
            jv s = {0};
            HONE_TRY(to_str(r, v, &s));
            HONE_TRY(jinja_str_case(r, s.u.s,
                                    id == F_CAPITALIZE ? JC_CAPITALIZE
                                    : id == F_LOWER    ? JC_LOWER
                                                       : JC_UPPER,
                                    out));
            out->markup = s.markup;
            return HONE_OK;
        }
        case F_TITLE:
            return f_title(r, v, out);
        case F_CENTER: {
            JINJA_BIND("center", 0, "width");
            int64_t w = 0;
            HONE_TRY(int_arg("center", p[0], 80, &w));
            jv s = {0};
            HONE_TRY(to_str(r, v, &s));
            return jinja_str_pad(r, s.u.s, w, NULL, 0, out);
        }
        case F_COUNT:
        case F_LENGTH:
            return f_length(v, out);
        case F_D:
        case F_DEFAULT: {
            JINJA_BIND("default", 0, "default_value", "boolean");
            if (v.kind == JV_UNDEFINED || (flag(p[1], 0) && !jv_truthy(v))) {
                if (jv_given(p[0]))
                    *out = p[0];
                else
                    HONE_TRY(jv_str_new(a, "", 0, out));
            } else
                *out = v;
            return HONE_OK;
        }
        case F_DICTSORT:
            return f_dictsort(r, v, args, out);
        case F_E:
        case F_ESCAPE:
            return jv_escape(a, v, 0, out);
        case F_FORCEESCAPE:
            return jv_escape(a, v, 1, out);
        case F_FIRST:
            return f_first_last(r, v, 0, out);
        case F_LAST:
            return f_first_last(r, v, 1, out);
        case F_FLOAT:
            return f_float(v, args, out);
        case F_INT:
            return f_int(v, args, out);
        case F_FORMAT: {
            if (args->n_args && args->n_kw)
                return hone_errorf(HONE_ERR_INVALID, "format: can't handle positional and keyword arguments at the "
                                                     "same time");
            jv s = {0}, fargs = {0};
            HONE_TRY(to_str(r, v, &s));
            if (args->n_kw) {
                HONE_TRY(jv_dict_new(a, &fargs));
                for (size_t k = 0; k < args->n_kw; k++) {
                    jv key = {0};
                    HONE_TRY(jv_str_cstr(a, args->kw_names[k], &key));
                    HONE_TRY(jv_dict_set(a, fargs.u.d, key, args->kw_vals[k]));
                }
            } else
                HONE_TRY(jv_list_new(a, args->n_args, args->args, JL_TUPLE, &fargs));
            return jinja_percent_format(r, s.u.s, s.markup, fargs, out);
        }
        case F_INDENT:
            return f_indent(r, v, args, out);
        case F_ITEMS: {
            HONE_TRY(no_args("items", args));
            if (v.kind == JV_UNDEFINED) return make_iter(r, NULL, 0, out);
            if (v.kind != JV_DICT) return hone_errorf(HONE_ERR_INVALID, "Can only get item pairs from a mapping.");
            HONE_TRY(jv_list_new(a, v.u.d->n, NULL, JL_ITER, out));
            for (size_t i = 0; i < v.u.d->n; i++) {
                jv pair[2] = {v.u.d->keys[i], v.u.d->vals[i]};
                HONE_TRY(jv_list_new(a, 2, pair, JL_TUPLE, &out->u.l->items[i]));
            }
            return HONE_OK;
        }
        case F_JOIN:
            return f_join(r, v, args, out);
        case F_LIST: {
            jv *items = NULL;
            size_t n = 0;
            HONE_TRY(jinja_iterate(r, v, &items, &n));
            return jv_list_new(a, n, items, JL_LIST, out);
        }
        case F_MAP:
            return f_map(r, v, args, out);
        case F_MAX:
            return f_minmax(r, v, args, 1, out);
        case F_MIN:
            return f_minmax(r, v, args, 0, out);
        case F_REJECT:
            return f_select(r, v, args, 0, 0, out);
        case F_REJECTATTR:
            return f_select(r, v, args, 1, 0, out);
        case F_SELECT:
            return f_select(r, v, args, 0, 1, out);
        case F_SELECTATTR:
            return f_select(r, v, args, 1, 1, out);
        case F_REPLACE: {
            JINJA_BIND("replace", 2, "old", "new", "count");
            jv s = {0}, old = {0}, rep = {0};
            int64_t count = 0;
            HONE_TRY(to_str(r, v, &s));
            HONE_TRY(to_str(r, p[0], &old));
            HONE_TRY(to_str(r, p[1], &rep));
            HONE_TRY(int_arg("replace", p[2].kind == JV_NONE ? jv_undefined() : p[2], -1, &count));
            return jinja_str_replace(r, s.u.s, old.u.s, rep.u.s, count, out);
        }
        case F_REVERSE:
            return f_reverse(r, v, out);
        case F_ROUND:
            return f_round(v, args, out);
        case F_SAFE:
            HONE_TRY(to_str(r, v, out));
            out->markup = 1;
            return HONE_OK;
        case F_SORT:
            return f_sort(r, v, args, out);
        case F_STRING:
            return to_str(r, v, out);
        case F_SUM:
            return f_sum(r, v, args, out);
        case F_TOJSON:
            return f_tojson(r, v, args, out);
        case F_TRIM: {
            JINJA_BIND("trim", 0, "chars");
            jv s = {0};
            HONE_TRY(to_str(r, v, &s));
            HONE_TRY(jinja_str_strip(r, s.u.s, jv_given(p[0]) ? p[0] : jv_none(), 1, 1, out));
            out->markup = s.markup;
            return HONE_OK;
        }
        case F_UNIQUE:
            return f_unique(r, v, args, out);
        case F_WORDCOUNT: {
            jv s = {0};
            HONE_TRY(to_str(r, v, &s));
            int64_t words = 0;
            int in_word = 0;
            for (size_t i = 0; i < s.u.s->len;) {
                uint32_t c = jinja_next_cp(s.u.s->data, &i);
                int w = c == '_' || jinja_is_alnum(c);
                words += w && !in_word;
                in_word = w;
            }
            *out = jv_int(words);
            return HONE_OK;
        }
        default:
            return hone_errorf(HONE_ERR_UNSUPPORTED, "the filter '%s' is not supported by hone's Jinja engine",
                               id >= 0 && id < F_COUNT_ALL ? filter_names[id] : "?");
    }
}

/* ---- tests ---- */

static int is_callable(jv v) { return v.kind == JV_FUNC || v.kind == JV_UNDEFINED || v.kind == JV_LOOP; }

hone_status jinja_apply_test(jinja_render *r, int id, jv v, const jinja_args *args, int *res) {
    jv other = args->n_args ? args->args[0] : args->n_kw ? args->kw_vals[0] : jv_undefined();
    int need_arg = id == T_DIVISIBLEBY || id == T_SAMEAS || id >= T_IN;
    if (need_arg && !(args->n_args || args->n_kw))
        return hone_errorf(HONE_ERR_INVALID, "the test '%s' needs an argument", test_names[id]);
    if (args->n_args + args->n_kw > (size_t)need_arg)
        return hone_errorf(HONE_ERR_INVALID, "the test '%s' takes %d argument(s)", test_names[id], need_arg);
    jv m = {0};
    switch (id) {
        case T_ODD:
        case T_EVEN:
        case T_DIVISIBLEBY:
            HONE_TRY(jinja_binop(r, JO_MOD, v, id == T_DIVISIBLEBY ? other : jv_int(2), &m));
            *res = jv_equal(m, jv_int(id == T_ODD));
            return HONE_OK;
        case T_DEFINED:
            *res = v.kind != JV_UNDEFINED;
            return HONE_OK;
        case T_UNDEFINED:
            *res = v.kind == JV_UNDEFINED;
            return HONE_OK;
        case T_FILTER:
            *res = v.kind == JV_STR && jinja_filter_id(v.u.s->data, v.u.s->len) >= 0;
            return HONE_OK;
        case T_TEST:
            *res = v.kind == JV_STR && jinja_test_id(v.u.s->data, v.u.s->len) >= 0;
            return HONE_OK;
        case T_NONE:
            *res = v.kind == JV_NONE;
            return HONE_OK;
        case T_BOOLEAN:
            *res = v.kind == JV_BOOL;
            return HONE_OK;
        case T_FALSE:
            *res = v.kind == JV_BOOL && !v.u.i;
            return HONE_OK;
        case T_TRUE:
            *res = v.kind == JV_BOOL && v.u.i;
            return HONE_OK;
        case T_INTEGER:
            *res = v.kind == JV_INT;
            return HONE_OK;
        case T_FLOAT:
            *res = v.kind == JV_FLOAT;
            return HONE_OK;
        case T_LOWER:
        case T_UPPER: {
            jv s = {0};
            HONE_TRY(to_str(r, v, &s));
            *res = jinja_str_is_case(s.u.s, id == T_UPPER);
            return HONE_OK;
        }
        case T_STRING:
            *res = v.kind == JV_STR;
            return HONE_OK;
        case T_MAPPING:
            *res = v.kind == JV_DICT;
            return HONE_OK;
        case T_NUMBER:
            *res = jv_is_num(v);
            return HONE_OK;
        case T_SEQUENCE:
            *res = v.kind == JV_STR || v.kind == JV_DICT || v.kind == JV_UNDEFINED ||
                   (v.kind == JV_LIST &&
                    (v.u.l->flavor == JL_LIST || v.u.l->flavor == JL_TUPLE || v.u.l->flavor == JL_RANGE));
            return HONE_OK;
        case T_ITERABLE:
            *res = v.kind == JV_STR || v.kind == JV_DICT || v.kind == JV_UNDEFINED || v.kind == JV_LIST ||
                   v.kind == JV_LOOP;
            return HONE_OK;
        case T_CALLABLE:
            *res = is_callable(v);
            return HONE_OK;
        case T_SAMEAS:
            /* identity: None, True and False are singletons, small ints are cached; other values are equal only
             * when they are the same object */
            if (v.kind != other.kind)
                *res = 0;
            else if (v.kind == JV_NONE)
                *res = 1;
            else if (v.kind == JV_BOOL)
                *res = v.u.i == other.u.i;
            else if (v.kind == JV_INT)
                *res = v.u.i == other.u.i && v.u.i >= -5 && v.u.i <= 256;
            else if (v.kind == JV_UNDEFINED || v.kind == JV_FLOAT)
                *res = 0;
            else
                *res = v.u.s == other.u.s;
            return HONE_OK;
        case T_ESCAPED:
            *res = v.kind == JV_STR && v.markup;
            return HONE_OK;
        case T_IN:
            return jinja_contains(other, v, res);
        case T_EQ_SYM:
        case T_EQ:
        case T_EQUALTO:
            *res = jv_equal(v, other);
            return HONE_OK;
        case T_NE_SYM:
        case T_NE:
            *res = !jv_equal(v, other);
            return HONE_OK;
        case T_GT_SYM:
        case T_GT:
        case T_GREATERTHAN:
            return jinja_compare(r, JO_GT, v, other, res);
        case T_GE:
        case T_GE_SYM:
            return jinja_compare(r, JO_GTEQ, v, other, res);
        case T_LT_SYM:
        case T_LT:
        case T_LESSTHAN:
            return jinja_compare(r, JO_LT, v, other, res);
        case T_LE_SYM:
        case T_LE:
            return jinja_compare(r, JO_LTEQ, v, other, res);
    }
    return hone_errorf(HONE_ERR_INVALID, "unknown test");
}
