/* Template values with Python's semantics: the render arena, strings, lists, dicts, str() / repr(), equality,
 * ordering, hashing, and JSON in (jansson) and out (json.dumps exactly as transformers' tojson filter calls it). */
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <utf8proc.h>

#include "tokenizer/jinja.h"

/* ---- arena ---- */

struct jinja_chunk {
    jinja_chunk *next;
    size_t size, used;
    _Alignas(16) unsigned char data[];
};

void *jinja_alloc(jinja_arena *a, size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (n == 0) n = 16;
    if (a->limit && a->used + n > a->limit) {
        a->fail = hone_errorf(HONE_ERR_INVALID, "the template needs more than %zu MiB of memory for its values",
                              a->limit >> 20);
        return NULL;
    }
    jinja_chunk *c = a->head;
    if (!c || c->size - c->used < n) {
        size_t size = n > (64u << 10) ? n : (64u << 10);
        c = malloc(sizeof *c + size);
        if (!c) {
            a->fail = hone_errorf(HONE_ERR_NOMEM, "out of memory allocating %zu bytes for template values", size);
            return NULL;
        }
        c->size = size;
        c->used = 0;
        /* a chunk made for one large block goes behind the current one, which keeps its free space */
        if (a->head && n > (64u << 10)) {
            c->next = a->head->next;
            a->head->next = c;
        } else {
            c->next = a->head;
            a->head = c;
        }
    }
    void *p = c->data + c->used;
    c->used += n;
    a->used += n;
    memset(p, 0, n);
    return p;
}

void jinja_arena_free(jinja_arena *a) {
    jinja_chunk *c = a->head;
    while (c) {
        jinja_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
    a->used = 0;
}

/* ---- output buffers ---- */

hone_status jinja_buf_add(jinja_buf *o, const void *s, size_t n) {
    if (o->limit && o->b.n + n > o->limit)
        return hone_errorf(HONE_ERR_INVALID, "the rendered text would exceed %zu MiB", o->limit >> 20);
    return tok_bytes_append(&o->b, s, n);
}

hone_status jinja_buf_add_cp(jinja_buf *o, uint32_t cp) {
    char u[4];
    size_t n = 0;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | cp >> 6);
        u[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | cp >> 12);
        u[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        u[0] = (char)(0xF0 | cp >> 18);
        u[1] = (char)(0x80 | (cp >> 12 & 0x3F));
        u[2] = (char)(0x80 | (cp >> 6 & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    return jinja_buf_add(o, u, n);
}

uint32_t jinja_next_cp(const char *s, size_t *i) {
    const uint8_t *p = (const uint8_t *)s + *i;
    uint32_t cp;
    size_t bad, k = tok_utf8_next(p, 4, &cp, &bad);
    /* strings are validated on the way in, so k is never 0; stepping one byte keeps loops finite regardless */
    *i += k ? k : 1;
    return k ? cp : 0xFFFD;
}

/* ---- Unicode classification and case (utf8proc's tables; Python uses the same Unicode data) ---- */

static locale_t c_loc;
static pthread_once_t c_once = PTHREAD_ONCE_INIT;
static void c_init(void) { c_loc = newlocale(LC_ALL_MASK, "C", (locale_t)0); }
/* The "C" locale, for number formatting and parsing that must not follow the process locale (a decimal comma). */
static locale_t c_locale(void) {
    pthread_once(&c_once, c_init);
    return c_loc;
}

double jinja_strtod(const char *s, char **end) {
    locale_t l = c_locale();
    return l ? strtod_l(s, end, l) : strtod(s, end);
}

int jinja_snprintf_c(char *buf, size_t n, const char *fmt, ...) {
    locale_t l = c_locale(), old = l ? uselocale(l) : (locale_t)0;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(buf, n, fmt, ap);
    va_end(ap);
    if (l) uselocale(old);
    return k;
}

size_t jinja_strftime_c(char *buf, size_t n, const char *fmt, const struct tm *tm) {
    locale_t l = c_locale();
    return l ? strftime_l(buf, n, fmt, tm, l) : strftime(buf, n, fmt, tm);
}

int jinja_is_space(uint32_t cp) { return tok_is_whitespace(cp) || (cp >= 0x1C && cp <= 0x1F); }
uint32_t jinja_upper(uint32_t cp) { return (uint32_t)utf8proc_toupper((utf8proc_int32_t)cp); }
uint32_t jinja_lower(uint32_t cp) { return (uint32_t)utf8proc_tolower((utf8proc_int32_t)cp); }
uint32_t jinja_title(uint32_t cp) { return (uint32_t)utf8proc_totitle((utf8proc_int32_t)cp); }

static utf8proc_category_t category(uint32_t cp) { return utf8proc_category((utf8proc_int32_t)cp); }

int jinja_is_cased(uint32_t cp) {
    utf8proc_category_t c = category(cp);
    return c == UTF8PROC_CATEGORY_LU || c == UTF8PROC_CATEGORY_LL || c == UTF8PROC_CATEGORY_LT;
}

int jinja_is_alpha(uint32_t cp) {
    utf8proc_category_t c = category(cp);
    return c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO;
}

int jinja_is_digit(uint32_t cp) { return category(cp) == UTF8PROC_CATEGORY_ND; }

int jinja_is_alnum(uint32_t cp) {
    utf8proc_category_t c = category(cp);
    return jinja_is_alpha(cp) || (c >= UTF8PROC_CATEGORY_ND && c <= UTF8PROC_CATEGORY_NO);
}

/* Python str.isprintable() of one code point: not Cc, Cf, Cs, Co, Cn, Zl, Zp, nor Zs other than the space. */
static int is_printable(uint32_t cp) {
    if (cp == ' ') return 1;
    utf8proc_category_t c = category(cp);
    return c != UTF8PROC_CATEGORY_CN && (c < UTF8PROC_CATEGORY_ZS || c > UTF8PROC_CATEGORY_CO);
}

/* ---- strings ---- */

hone_status jv_str_new(jinja_arena *a, const char *s, size_t n, jv *out) {
    jinja_str *str = jinja_alloc(a, sizeof *str + n + 1);
    if (!str) return a->fail;
    str->len = n;
    str->ncp = SIZE_MAX;
    if (n) memcpy(str->data, s, n);
    str->data[n] = 0;
    *out = (jv){.kind = JV_STR, .u.s = str};
    return HONE_OK;
}

size_t jv_str_ncp(jinja_str *s) {
    if (s->ncp == SIZE_MAX) {
        size_t k = 0;
        for (size_t i = 0; i < s->len; i++) k += ((uint8_t)s->data[i] & 0xC0) != 0x80;
        s->ncp = k;
    }
    return s->ncp;
}

size_t jv_str_offset(jinja_str *s, size_t k) {
    if (jv_str_ncp(s) == s->len) return k;
    size_t i = 0;
    while (k > 0 && i < s->len) {
        i++;
        while (i < s->len && ((uint8_t)s->data[i] & 0xC0) == 0x80) i++;
        k--;
    }
    return i;
}

/* ---- lists and dicts ---- */

hone_status jv_list_new(jinja_arena *a, size_t n, const jv *items, int flavor, jv *out) {
    if (n > SIZE_MAX / sizeof(jv) / 2) return hone_errorf(HONE_ERR_INVALID, "a list of %zu items is too large", n);
    jinja_list *l = jinja_alloc(a, sizeof *l);
    if (!l || !(l->items = jinja_alloc(a, n * sizeof(jv)))) return a->fail;
    if (items && n) memcpy(l->items, items, n * sizeof(jv));
    l->n = n;
    l->flavor = (uint8_t)flavor;
    *out = (jv){.kind = JV_LIST, .u.l = l};
    return HONE_OK;
}

hone_status jv_dict_new(jinja_arena *a, jv *out) {
    jinja_dict *d = jinja_alloc(a, sizeof *d);
    if (!d) return a->fail;
    *out = (jv){.kind = JV_DICT, .u.d = d};
    return HONE_OK;
}

static long dict_scan(const jinja_dict *d, jv key, uint64_t h) {
    if (!d->index) {
        for (size_t i = 0; i < d->n; i++)
            if (jv_equal(d->keys[i], key)) return (long)i;
        return -1;
    }
    for (uint32_t slot = (uint32_t)h & d->mask;; slot = (slot + 1) & d->mask) {
        uint32_t e = d->index[slot];
        if (e == UINT32_MAX) return -1;
        if (jv_equal(d->keys[e], key)) return (long)e;
    }
}

long jv_dict_find(const jinja_dict *d, jv key) {
    uint64_t h = 0;
    if (jv_hash(key, &h) != HONE_OK) return -1;
    return dict_scan(d, key, h);
}

const jv *jv_dict_get(const jinja_dict *d, const char *name, size_t len) {
    for (size_t i = 0; i < d->n; i++) {
        jv k = d->keys[i];
        if (k.kind == JV_STR && k.u.s->len == len && memcmp(k.u.s->data, name, len) == 0) return &d->vals[i];
    }
    return NULL;
}

static hone_status dict_reindex(jinja_arena *a, jinja_dict *d) {
    uint32_t size = 16;
    while (size < 2 * d->cap) size *= 2;
    uint32_t *index = jinja_alloc(a, size * sizeof *index);
    if (!index) return a->fail;
    memset(index, 0xFF, size * sizeof *index);
    for (size_t i = 0; i < d->n; i++) {
        uint64_t h = 0;
        HONE_TRY(jv_hash(d->keys[i], &h));
        uint32_t slot = (uint32_t)h & (size - 1);
        while (index[slot] != UINT32_MAX) slot = (slot + 1) & (size - 1);
        index[slot] = (uint32_t)i;
    }
    d->index = index;
    d->mask = size - 1;
    return HONE_OK;
}

hone_status jv_dict_set(jinja_arena *a, jinja_dict *d, jv key, jv val) {
    uint64_t h = 0;
    HONE_TRY(jv_hash(key, &h));
    long at = dict_scan(d, key, h);
    if (at >= 0) {
        d->vals[at] = val;
        return HONE_OK;
    }
    if (d->n == d->cap) {
        if (d->cap >= UINT32_MAX / 4) return hone_errorf(HONE_ERR_INVALID, "a dict of %zu items is too large", d->n);
        size_t cap = d->cap ? 2 * d->cap : 4;
        jv *keys = jinja_alloc(a, cap * sizeof(jv)), *vals = jinja_alloc(a, cap * sizeof(jv));
        if (!keys || !vals) return a->fail;
        if (d->n) {
            memcpy(keys, d->keys, d->n * sizeof(jv));
            memcpy(vals, d->vals, d->n * sizeof(jv));
        }
        d->keys = keys;
        d->vals = vals;
        d->cap = cap;
        d->index = NULL;
    }
    d->keys[d->n] = key;
    d->vals[d->n] = val;
    d->n++;
    if (d->n > 8 && !d->index) return dict_reindex(a, d);
    if (d->index) {
        uint32_t slot = (uint32_t)h & d->mask;
        while (d->index[slot] != UINT32_MAX) slot = (slot + 1) & d->mask;
        d->index[slot] = (uint32_t)(d->n - 1);
    }
    return HONE_OK;
}

/* ---- type names and truth ---- */

const char *jv_type_name(jv v) {
    switch (v.kind) {
        case JV_UNDEFINED:
            return "Undefined";
        case JV_NONE:
            return "NoneType";
        case JV_BOOL:
            return "bool";
        case JV_INT:
            return "int";
        case JV_FLOAT:
            return "float";
        case JV_STR:
            return v.markup ? "Markup" : "str";
        case JV_DICT:
            return "dict";
        case JV_NAMESPACE:
            return "Namespace";
        case JV_LOOP:
            return "LoopContext";
        case JV_FUNC:
            return v.u.fn->kind == JF_MACRO || v.u.fn->kind == JF_CALLER ? "Macro" : "function";
        case JV_LIST:
            switch (v.u.l->flavor) {
                case JL_LIST:
                    return "list";
                case JL_TUPLE:
                    return "tuple";
                case JL_ITEMS:
                    return "dict_items";
                case JL_KEYS:
                    return "dict_keys";
                case JL_VALUES:
                    return "dict_values";
                case JL_RANGE:
                    return "range";
                default:
                    return "generator";
            }
    }
    return "object";
}

const char *jv_object_repr_name(jv v) {
    switch (v.kind) {
        case JV_NONE:
            return "None";
        case JV_STR:
            return "str object";
        case JV_INT:
            return "int object";
        case JV_BOOL:
            return "bool object";
        case JV_FLOAT:
            return "float object";
        case JV_DICT:
            return "dict object";
        case JV_NAMESPACE:
            return "jinja2.utils.Namespace object";
        case JV_LOOP:
            return "jinja2.runtime.LoopContext object";
        case JV_FUNC:
            return "function object";
        case JV_UNDEFINED:
            return "jinja2.runtime.Undefined object";
        case JV_LIST:
            switch (v.u.l->flavor) {
                case JL_LIST:
                    return "list object";
                case JL_TUPLE:
                    return "tuple object";
                case JL_ITEMS:
                    return "dict_items object";
                case JL_KEYS:
                    return "dict_keys object";
                case JL_VALUES:
                    return "dict_values object";
                case JL_RANGE:
                    return "range object";
                default:
                    return "generator object";
            }
    }
    return "object";
}

int jv_truthy(jv v) {
    switch (v.kind) {
        case JV_UNDEFINED:
        case JV_NONE:
            return 0;
        case JV_BOOL:
        case JV_INT:
            return v.u.i != 0;
        case JV_FLOAT:
            return v.u.f != 0.0;
        case JV_STR:
            return v.u.s->len != 0;
        case JV_LIST:
            return v.u.l->flavor == JL_ITER || v.u.l->n != 0;
        case JV_DICT:
            return v.u.d->n != 0;
        default:
            return 1;
    }
}

/* ---- str() and repr() ---- */

int jv_format_float(double x, char *buf) {
    if (isnan(x)) return sprintf(buf, "nan");
    if (isinf(x)) return sprintf(buf, x > 0 ? "inf" : "-inf");
    /* the shortest digit string that reads back as x (Python's repr), from the correctly rounded %e forms */
    char tmp[40];
    locale_t l = c_locale(), old = l ? uselocale(l) : (locale_t)0;
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, x);
        if (jinja_strtod(tmp, NULL) == x) break;
    }
    if (l) uselocale(old);
    const char *p = tmp;
    int neg = *p == '-';
    if (neg) p++;
    char digits[20];
    int nd = 0;
    for (; *p && *p != 'e'; p++)
        if (*p != '.') digits[nd++] = *p;
    int exp10 = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    int decpt = exp10 + 1; /* x = 0.DIGITS × 10^decpt */
    int n = 0;
    if (neg) buf[n++] = '-';
    if (decpt > -4 && decpt <= 16) {
        if (decpt <= 0) {
            buf[n++] = '0';
            buf[n++] = '.';
            for (int i = 0; i < -decpt; i++) buf[n++] = '0';
            for (int i = 0; i < nd; i++) buf[n++] = digits[i];
        } else if (decpt >= nd) {
            for (int i = 0; i < nd; i++) buf[n++] = digits[i];
            for (int i = nd; i < decpt; i++) buf[n++] = '0';
            buf[n++] = '.';
            buf[n++] = '0';
        } else {
            for (int i = 0; i < nd; i++) {
                if (i == decpt) buf[n++] = '.';
                buf[n++] = digits[i];
            }
        }
    } else {
        buf[n++] = digits[0];
        if (nd > 1) {
            buf[n++] = '.';
            for (int i = 1; i < nd; i++) buf[n++] = digits[i];
        }
        n += sprintf(buf + n, "e%c%02d", decpt - 1 < 0 ? '-' : '+', abs(decpt - 1));
    }
    buf[n] = 0;
    return n;
}

static hone_status write_str_repr(jinja_buf *o, const jinja_str *s) {
    int has_single = memchr(s->data, '\'', s->len) != NULL, has_double = memchr(s->data, '"', s->len) != NULL;
    char quote = has_single && !has_double ? '"' : '\'';
    HONE_TRY(jinja_buf_add(o, &quote, 1));
    size_t i = 0;
    while (i < s->len) {
        size_t at = i;
        uint32_t c = jinja_next_cp(s->data, &i);
        char esc[12];
        int n = 0;
        if (c == (uint32_t)quote || c == '\\')
            n = sprintf(esc, "\\%c", (char)c);
        else if (c == '\t')
            n = sprintf(esc, "\\t");
        else if (c == '\n')
            n = sprintf(esc, "\\n");
        else if (c == '\r')
            n = sprintf(esc, "\\r");
        else if (!is_printable(c))
            n = c <= 0xFF     ? sprintf(esc, "\\x%02x", c)
                : c <= 0xFFFF ? sprintf(esc, "\\u%04x", c)
                              : sprintf(esc, "\\U%08x", c);
        HONE_TRY(n ? jinja_buf_add(o, esc, (size_t)n) : jinja_buf_add(o, s->data + at, i - at));
    }
    return jinja_buf_add(o, &quote, 1);
}

static hone_status write_value(jinja_buf *o, jv v, int repr, int depth);

static hone_status write_items(jinja_buf *o, const jinja_list *l, const char *open, const char *close, int depth) {
    HONE_TRY(jinja_buf_adds(o, open));
    for (size_t i = 0; i < l->n; i++) {
        if (i) HONE_TRY(jinja_buf_adds(o, ", "));
        HONE_TRY(write_value(o, l->items[i], 1, depth + 1));
    }
    if (l->flavor == JL_TUPLE && l->n == 1) HONE_TRY(jinja_buf_adds(o, ","));
    return jinja_buf_adds(o, close);
}

static hone_status write_dict(jinja_buf *o, const jinja_dict *d, int depth) {
    HONE_TRY(jinja_buf_adds(o, "{"));
    for (size_t i = 0; i < d->n; i++) {
        if (i) HONE_TRY(jinja_buf_adds(o, ", "));
        HONE_TRY(write_value(o, d->keys[i], 1, depth + 1));
        HONE_TRY(jinja_buf_adds(o, ": "));
        HONE_TRY(write_value(o, d->vals[i], 1, depth + 1));
    }
    return jinja_buf_adds(o, "}");
}

static hone_status write_value(jinja_buf *o, jv v, int repr, int depth) {
    if (depth > 500) return hone_errorf(HONE_ERR_INVALID, "a value is nested too deeply to print (over 500 levels)");
    char num[40];
    switch (v.kind) {
        case JV_UNDEFINED:
            return repr ? jinja_buf_adds(o, "Undefined") : HONE_OK;
        case JV_NONE:
            return jinja_buf_adds(o, "None");
        case JV_BOOL:
            return jinja_buf_adds(o, v.u.i ? "True" : "False");
        case JV_INT:
            return jinja_buf_add(o, num, (size_t)sprintf(num, "%lld", (long long)v.u.i));
        case JV_FLOAT:
            return jinja_buf_add(o, num, (size_t)jv_format_float(v.u.f, num));
        case JV_STR:
            if (!repr) return jinja_buf_add(o, v.u.s->data, v.u.s->len);
            if (v.markup) {
                HONE_TRY(jinja_buf_adds(o, "Markup("));
                HONE_TRY(write_str_repr(o, v.u.s));
                return jinja_buf_adds(o, ")");
            }
            return write_str_repr(o, v.u.s);
        case JV_DICT:
            return write_dict(o, v.u.d, depth);
        case JV_NAMESPACE:
            HONE_TRY(jinja_buf_adds(o, "<Namespace "));
            HONE_TRY(write_dict(o, v.u.d, depth));
            return jinja_buf_adds(o, ">");
        case JV_LOOP: {
            int n = snprintf(num, sizeof num, "<LoopContext %zu/%zu>", v.u.loop->index0 + 1, v.u.loop->items->n);
            return jinja_buf_add(o, num, (size_t)n);
        }
        case JV_FUNC:
            if (v.u.fn->kind == JF_MACRO || v.u.fn->kind == JF_CALLER) {
                HONE_TRY(jinja_buf_adds(o, "<Macro '"));
                HONE_TRY(jinja_buf_adds(o, v.u.fn->name));
                return jinja_buf_adds(o, "'>");
            }
            return hone_errorf(HONE_ERR_UNSUPPORTED,
                               "printing the function '%s' is not supported (Python prints its memory address)",
                               v.u.fn->name);
        case JV_LIST: {
            const jinja_list *l = v.u.l;
            switch (l->flavor) {
                case JL_LIST:
                    return write_items(o, l, "[", "]", depth);
                case JL_TUPLE:
                    return write_items(o, l, "(", ")", depth);
                case JL_ITEMS:
                    return write_items(o, l, "dict_items([", "])", depth);
                case JL_KEYS:
                    return write_items(o, l, "dict_keys([", "])", depth);
                case JL_VALUES:
                    return write_items(o, l, "dict_values([", "])", depth);
                case JL_RANGE: {
                    int n = l->range[2] == 1
                                ? snprintf(num, sizeof num, "range(%lld, %lld)", (long long)l->range[0],
                                           (long long)l->range[1])
                                : snprintf(num, sizeof num, "range(%lld, %lld, %lld)", (long long)l->range[0],
                                           (long long)l->range[1], (long long)l->range[2]);
                    return jinja_buf_add(o, num, (size_t)n);
                }
                default:
                    return hone_errorf(HONE_ERR_UNSUPPORTED, "printing a generator is not supported (Python prints "
                                                             "its memory address); convert it with |list first");
            }
        }
    }
    return HONE_OK;
}

hone_status jv_write_str(jinja_buf *o, jv v) { return write_value(o, v, 0, 0); }
hone_status jv_write_repr(jinja_buf *o, jv v) { return write_value(o, v, 1, 0); }

hone_status jinja_buf_to_str(jinja_arena *a, jinja_buf *o, hone_status st, jv *out) {
    if (st == HONE_OK) st = jv_str_new(a, o->b.v ? o->b.v : "", o->b.n, out);
    free(o->b.v);
    o->b = (tok_bytes){0};
    return st;
}

hone_status jv_to_str(jinja_arena *a, jv v, jv *out) {
    if (v.kind == JV_STR) {
        *out = v;
        return HONE_OK;
    }
    jinja_buf o = {0};
    hone_status st = jv_write_str(&o, v);
    if (st == HONE_OK) st = jv_str_new(a, o.b.v ? o.b.v : "", o.b.n, out);
    free(o.b.v);
    return st;
}

static hone_status add_escaped(jinja_buf *o, const char *s, size_t n) {
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        const char *e = NULL;
        switch (s[i]) {
            case '&':
                e = "&amp;";
                break;
            case '<':
                e = "&lt;";
                break;
            case '>':
                e = "&gt;";
                break;
            case '"':
                e = "&#34;";
                break;
            case '\'':
                e = "&#39;";
                break;
        }
        if (!e) continue;
        HONE_TRY(jinja_buf_add(o, s + run, i - run));
        HONE_TRY(jinja_buf_adds(o, e));
        run = i + 1;
    }
    return jinja_buf_add(o, s + run, n - run);
}

hone_status jv_escape(jinja_arena *a, jv v, int force, jv *out) {
    if (v.kind == JV_STR && v.markup && !force) {
        *out = v;
        return HONE_OK;
    }
    jv s = v;
    if (v.kind != JV_STR) HONE_TRY(jv_to_str(a, v, &s));
    jinja_buf o = {0};
    hone_status st = add_escaped(&o, s.u.s->data, s.u.s->len);
    if (st == HONE_OK) st = jv_str_new(a, o.b.v ? o.b.v : "", o.b.n, out);
    free(o.b.v);
    out->markup = 1;
    return st;
}

/* ---- JSON ---- */

static hone_status json_write_string(jinja_buf *o, const char *s, size_t n, int ensure_ascii) {
    HONE_TRY(jinja_buf_add(o, "\"", 1));
    size_t i = 0, run = 0; /* run: start of the bytes copied as they are */
    while (i < n) {
        uint8_t c = (uint8_t)s[i];
        const char *esc = NULL;
        char buf[16];
        size_t at = i;
        if (c == '"')
            esc = "\\\"";
        else if (c == '\\')
            esc = "\\\\";
        else if (c == '\n')
            esc = "\\n";
        else if (c == '\r')
            esc = "\\r";
        else if (c == '\t')
            esc = "\\t";
        else if (c == '\b')
            esc = "\\b";
        else if (c == '\f')
            esc = "\\f";
        else if (c < 0x20 || (ensure_ascii && c == 0x7F)) {
            snprintf(buf, sizeof buf, "\\u%04x", c);
            esc = buf;
        } else if (ensure_ascii && c >= 0x80) {
            uint32_t cp = jinja_next_cp(s, &i);
            if (cp >= 0x10000)
                snprintf(buf, sizeof buf, "\\u%04x\\u%04x", 0xD800 + ((cp - 0x10000) >> 10),
                         0xDC00 + ((cp - 0x10000) & 0x3FF));
            else
                snprintf(buf, sizeof buf, "\\u%04x", cp);
            HONE_TRY(jinja_buf_add(o, s + run, at - run));
            HONE_TRY(jinja_buf_adds(o, buf));
            run = i;
            continue;
        }
        i++;
        if (esc) {
            HONE_TRY(jinja_buf_add(o, s + run, at - run));
            HONE_TRY(jinja_buf_adds(o, esc));
            run = i;
        }
    }
    HONE_TRY(jinja_buf_add(o, s + run, n - run));
    return jinja_buf_add(o, "\"", 1);
}

static hone_status json_float(jinja_buf *o, double x) {
    if (isnan(x)) return jinja_buf_adds(o, "NaN");
    if (isinf(x)) return jinja_buf_adds(o, x > 0 ? "Infinity" : "-Infinity");
    char num[40];
    return jinja_buf_add(o, num, (size_t)jv_format_float(x, num));
}

static hone_status json_newline(jinja_buf *o, const jinja_json_opts *opt, int level) {
    HONE_TRY(jinja_buf_add(o, "\n", 1));
    for (int i = 0; i < level; i++) HONE_TRY(jinja_buf_add(o, opt->indent, opt->indent_len));
    return HONE_OK;
}

static hone_status json_not_serializable(jv v) {
    const char *name = jv_type_name(v);
    return hone_errorf(HONE_ERR_INVALID, "tojson: Object of type %s is not JSON serializable", name);
}

/* A dict key as json.dumps writes it: str as is; int, float, bool and None converted; anything else a TypeError. */
static hone_status json_key(jinja_buf *o, jv k, const jinja_json_opts *opt) {
    char num[40];
    switch (k.kind) {
        case JV_STR:
            return json_write_string(o, k.u.s->data, k.u.s->len, opt->ensure_ascii);
        case JV_NONE:
            return jinja_buf_adds(o, "\"null\"");
        case JV_BOOL:
            return jinja_buf_adds(o, k.u.i ? "\"true\"" : "\"false\"");
        case JV_INT:
            return jinja_buf_add(o, num, (size_t)sprintf(num, "\"%lld\"", (long long)k.u.i));
        case JV_FLOAT: {
            jinja_buf tmp = {0};
            hone_status st = json_float(&tmp, k.u.f);
            if (st == HONE_OK) st = json_write_string(o, tmp.b.v, tmp.b.n, 0);
            free(tmp.b.v);
            return st;
        }
        default:
            return hone_errorf(HONE_ERR_INVALID, "tojson: keys must be str, int, float, bool or None, not %s",
                               jv_type_name(k));
    }
}

static hone_status json_value(jinja_buf *o, jv v, const jinja_json_opts *opt, int level);

static hone_status json_dict(jinja_buf *o, const jinja_dict *d, const jinja_json_opts *opt, int level) {
    if (d->n == 0) return jinja_buf_adds(o, "{}");
    size_t *order = malloc(d->n * sizeof *order);
    if (!order) return hone_errorf(HONE_ERR_NOMEM, "out of memory writing JSON");
    for (size_t i = 0; i < d->n; i++) order[i] = i;
    hone_status st = HONE_OK;
    if (opt->sort_keys) /* sorted(dct.items()): insertion sort by key with Python's < (keys are unique) */
        for (size_t i = 1; i < d->n && st == HONE_OK; i++)
            for (size_t j = i; j > 0; j--) {
                int lt = 0;
                if ((st = jv_less(d->keys[order[j]], d->keys[order[j - 1]], &lt)) != HONE_OK || !lt) break;
                size_t t = order[j];
                order[j] = order[j - 1];
                order[j - 1] = t;
            }
    if (st == HONE_OK) st = jinja_buf_adds(o, "{");
    for (size_t i = 0; i < d->n && st == HONE_OK; i++) {
        if (i) st = jinja_buf_add(o, opt->item_sep, opt->item_sep_len);
        if (st == HONE_OK && opt->indent) st = json_newline(o, opt, level + 1);
        if (st == HONE_OK) st = json_key(o, d->keys[order[i]], opt);
        if (st == HONE_OK) st = jinja_buf_add(o, opt->key_sep, opt->key_sep_len);
        if (st == HONE_OK) st = json_value(o, d->vals[order[i]], opt, level + 1);
    }
    if (st == HONE_OK && opt->indent) st = json_newline(o, opt, level);
    if (st == HONE_OK) st = jinja_buf_adds(o, "}");
    free(order);
    return st;
}

static hone_status json_value(jinja_buf *o, jv v, const jinja_json_opts *opt, int level) {
    if (level > 500) return hone_errorf(HONE_ERR_INVALID, "tojson: a value is nested too deeply (over 500 levels)");
    char num[40];
    switch (v.kind) {
        case JV_NONE:
            return jinja_buf_adds(o, "null");
        case JV_BOOL:
            return jinja_buf_adds(o, v.u.i ? "true" : "false");
        case JV_INT:
            return jinja_buf_add(o, num, (size_t)sprintf(num, "%lld", (long long)v.u.i));
        case JV_FLOAT:
            return json_float(o, v.u.f);
        case JV_STR:
            return json_write_string(o, v.u.s->data, v.u.s->len, opt->ensure_ascii);
        case JV_DICT:
            return json_dict(o, v.u.d, opt, level);
        case JV_LIST: {
            const jinja_list *l = v.u.l;
            if (l->flavor != JL_LIST && l->flavor != JL_TUPLE) return json_not_serializable(v);
            if (l->n == 0) return jinja_buf_adds(o, "[]");
            HONE_TRY(jinja_buf_adds(o, "["));
            for (size_t i = 0; i < l->n; i++) {
                if (i) HONE_TRY(jinja_buf_add(o, opt->item_sep, opt->item_sep_len));
                if (opt->indent) HONE_TRY(json_newline(o, opt, level + 1));
                HONE_TRY(json_value(o, l->items[i], opt, level + 1));
            }
            if (opt->indent) HONE_TRY(json_newline(o, opt, level));
            return jinja_buf_adds(o, "]");
        }
        default:
            return json_not_serializable(v);
    }
}

hone_status jv_write_json(jinja_buf *o, jv v, const jinja_json_opts *opt) {
    jinja_json_opts o2 = *opt;
    if (!o2.item_sep) {
        o2.item_sep = o2.indent ? "," : ", ";
        o2.item_sep_len = strlen(o2.item_sep);
    }
    if (!o2.key_sep) {
        o2.key_sep = ": ";
        o2.key_sep_len = 2;
    }
    return json_value(o, v, &o2, 0);
}

hone_status jv_from_json(jinja_arena *a, const json_t *j, jv *out) {
    switch (json_typeof(j)) {
        case JSON_NULL:
            *out = jv_none();
            return HONE_OK;
        case JSON_TRUE:
            *out = jv_bool(1);
            return HONE_OK;
        case JSON_FALSE:
            *out = jv_bool(0);
            return HONE_OK;
        case JSON_INTEGER:
            *out = jv_int(json_integer_value(j));
            return HONE_OK;
        case JSON_REAL:
            *out = jv_float(json_real_value(j));
            return HONE_OK;
        case JSON_STRING:
            return jv_str_new(a, json_string_value(j), json_string_length(j), out);
        case JSON_ARRAY: {
            size_t n = json_array_size(j);
            HONE_TRY(jv_list_new(a, n, NULL, JL_LIST, out));
            for (size_t i = 0; i < n; i++) HONE_TRY(jv_from_json(a, json_array_get(j, i), &out->u.l->items[i]));
            return HONE_OK;
        }
        case JSON_OBJECT: {
            HONE_TRY(jv_dict_new(a, out));
            const char *key;
            size_t key_len = 0;
            json_t *val;
            json_object_keylen_foreach((json_t *)j, key, key_len, val) {
                jv k = {0}, v = {0};
                HONE_TRY(jv_str_new(a, key, key_len, &k));
                HONE_TRY(jv_from_json(a, val, &v));
                HONE_TRY(jv_dict_set(a, out->u.d, k, v));
            }
            return HONE_OK;
        }
    }
    return hone_errorf(HONE_ERR_FORMAT, "unknown JSON value type");
}

/* ---- equality, ordering, hashing ---- */

static int num_equal(jv a, jv b) {
    if (a.kind != JV_FLOAT && b.kind != JV_FLOAT) return a.u.i == b.u.i;
    if (a.kind == JV_FLOAT && b.kind == JV_FLOAT) return a.u.f == b.u.f;
    double f = a.kind == JV_FLOAT ? a.u.f : b.u.f;
    int64_t i = a.kind == JV_FLOAT ? b.u.i : a.u.i;
    /* exact: the float must be integral and equal to the int (no rounding of large ints) */
    return f == floor(f) && f >= -9223372036854775808.0 && f < 9223372036854775808.0 && (int64_t)f == i;
}

static int equal_at(jv a, jv b, int depth) {
    if (depth > 500) return 0; /* Python would raise RecursionError; such values only come from runaway templates */
    if (jv_is_num(a) && jv_is_num(b)) return num_equal(a, b);
    if (a.kind != b.kind) return 0;
    switch (a.kind) {
        case JV_UNDEFINED:
        case JV_NONE:
            return 1;
        case JV_STR:
            return a.u.s->len == b.u.s->len && memcmp(a.u.s->data, b.u.s->data, a.u.s->len) == 0;
        case JV_LIST: {
            const jinja_list *x = a.u.l, *y = b.u.l;
            if (x == y) return 1;
            int seq = x->flavor == JL_LIST || x->flavor == JL_TUPLE || x->flavor == JL_RANGE || x->flavor == JL_ITEMS ||
                      x->flavor == JL_KEYS;
            if (!seq || x->flavor != y->flavor || x->n != y->n) return 0;
            for (size_t i = 0; i < x->n; i++)
                if (!equal_at(x->items[i], y->items[i], depth + 1)) return 0;
            return 1;
        }
        case JV_DICT: {
            const jinja_dict *x = a.u.d, *y = b.u.d;
            if (x->n != y->n) return 0;
            for (size_t i = 0; i < x->n; i++) {
                long k = jv_dict_find(y, x->keys[i]);
                if (k < 0 || !equal_at(x->vals[i], y->vals[k], depth + 1)) return 0;
            }
            return 1;
        }
        case JV_NAMESPACE:
            return a.u.d == b.u.d;
        case JV_FUNC:
            return a.u.fn == b.u.fn;
        case JV_LOOP:
            return a.u.loop == b.u.loop;
        default:
            return 0;
    }
}

int jv_equal(jv a, jv b) { return equal_at(a, b, 0); }

static hone_status less_at(jv a, jv b, int *lt, int depth) {
    if (a.kind == JV_UNDEFINED) return jinja_undefined_error(a);
    if (b.kind == JV_UNDEFINED) return jinja_undefined_error(b);
    if (jv_is_num(a) && jv_is_num(b)) {
        if (a.kind != JV_FLOAT && b.kind != JV_FLOAT)
            *lt = a.u.i < b.u.i;
        else
            *lt = jv_to_double(a) < jv_to_double(b);
        return HONE_OK;
    }
    if (a.kind == JV_STR && b.kind == JV_STR) {
        size_t n = a.u.s->len < b.u.s->len ? a.u.s->len : b.u.s->len;
        int c = memcmp(a.u.s->data, b.u.s->data, n); /* UTF-8 byte order is code point order */
        *lt = c < 0 || (c == 0 && a.u.s->len < b.u.s->len);
        return HONE_OK;
    }
    if (a.kind == JV_LIST && b.kind == JV_LIST && a.u.l->flavor == b.u.l->flavor &&
        (a.u.l->flavor == JL_LIST || a.u.l->flavor == JL_TUPLE)) {
        const jinja_list *x = a.u.l, *y = b.u.l;
        for (size_t i = 0; i < x->n && i < y->n; i++)
            if (!jv_equal(x->items[i], y->items[i])) {
                if (depth > 500) return hone_errorf(HONE_ERR_INVALID, "comparing values nested over 500 levels");
                return less_at(x->items[i], y->items[i], lt, depth + 1);
            }
        *lt = x->n < y->n;
        return HONE_OK;
    }
    return hone_errorf(HONE_ERR_INVALID, "'<' not supported between instances of '%s' and '%s'", jv_type_name(a),
                       jv_type_name(b));
}

hone_status jv_less(jv a, jv b, int *lt) { return less_at(a, b, lt, 0); }

static hone_status hash_at(jv v, uint64_t *h, int depth) {
    switch (v.kind) {
        case JV_UNDEFINED:
            *h = 0x5bd1e995;
            return HONE_OK;
        case JV_NONE:
            *h = 0x27d4eb2f;
            return HONE_OK;
        case JV_BOOL:
        case JV_INT:
            *h = tok_hash_bytes(&v.u.i, sizeof v.u.i);
            return HONE_OK;
        case JV_FLOAT:
            /* equal numbers hash alike: an integral float hashes as the int */
            if (v.u.f == floor(v.u.f) && fabs(v.u.f) < 9.2e18) {
                int64_t i = (int64_t)v.u.f;
                *h = tok_hash_bytes(&i, sizeof i);
            } else
                *h = tok_hash_bytes(&v.u.f, sizeof v.u.f);
            return HONE_OK;
        case JV_STR:
            *h = tok_hash_bytes(v.u.s->data, v.u.s->len);
            return HONE_OK;
        case JV_LIST:
            if (v.u.l->flavor == JL_TUPLE) {
                uint64_t acc = 0x345678;
                if (depth > 500) return hone_errorf(HONE_ERR_INVALID, "hashing a tuple nested over 500 levels");
                for (size_t i = 0; i < v.u.l->n; i++) {
                    uint64_t x = 0;
                    HONE_TRY(hash_at(v.u.l->items[i], &x, depth + 1));
                    acc = (acc ^ x) * 0x100000001b3ull;
                }
                *h = acc;
                return HONE_OK;
            }
            if (v.u.l->flavor == JL_LIST || v.u.l->flavor == JL_KEYS || v.u.l->flavor == JL_ITEMS ||
                v.u.l->flavor == JL_VALUES)
                break;
            *h = (uint64_t)(uintptr_t)v.u.l;
            return HONE_OK;
        case JV_DICT:
            break;
        default:
            *h = (uint64_t)(uintptr_t)v.u.fn;
            return HONE_OK;
    }
    return hone_errorf(HONE_ERR_INVALID, "unhashable type: '%s'", jv_type_name(v));
}

hone_status jv_hash(jv v, uint64_t *h) { return hash_at(v, h, 0); }
