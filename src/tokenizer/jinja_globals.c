/* The global functions of the environment transformers renders with: jinja2's range (capped at MAX_RANGE =
 * 100000 items by the sandbox), dict and namespace; transformers' raise_exception(message) and
 * strftime_now(format). jinja2's lipsum, cycler and joiner exist but are not implemented: calling them is
 * HONE_ERR_UNSUPPORTED. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

#include "tokenizer/jinja.h"

enum { G_RANGE, G_DICT, G_NAMESPACE, G_RAISE_EXCEPTION, G_STRFTIME_NOW, G_LIPSUM, G_CYCLER, G_JOINER, G_COUNT };
static const char *const global_names[G_COUNT] = {"range",        "dict",   "namespace", "raise_exception",
                                                  "strftime_now", "lipsum", "cycler",    "joiner"};

int jinja_global_id(const char *name, size_t len) {
    for (int i = 0; i < G_COUNT; i++)
        if (strlen(global_names[i]) == len && memcmp(global_names[i], name, len) == 0) return i;
    return -1;
}

const char *jinja_global_name(int id) { return id >= 0 && id < G_COUNT ? global_names[id] : "?"; }

/* dict(*args, **kwargs) as Python builds it: a mapping or an iterable of pairs, then the keywords. */
static hone_status build_dict(jinja_render *r, const char *fname, const jinja_args *args, jv *out) {
    jinja_arena *a = jinja_render_arena(r);
    HONE_TRY(jv_dict_new(a, out));
    if (args->n_args > 1)
        return hone_errorf(HONE_ERR_INVALID, "%s expected at most 1 argument, got %zu", fname, args->n_args);
    if (args->n_args == 1) {
        jv src = args->args[0];
        if (src.kind == JV_DICT || src.kind == JV_NAMESPACE) {
            for (size_t i = 0; i < src.u.d->n; i++)
                HONE_TRY(jv_dict_set(a, out->u.d, src.u.d->keys[i], src.u.d->vals[i]));
        } else {
            jv *items = NULL;
            size_t n = 0;
            HONE_TRY(jinja_iterate(r, src, &items, &n));
            for (size_t i = 0; i < n; i++) {
                jv *pair = NULL;
                size_t k = 0;
                if (items[i].kind != JV_LIST && items[i].kind != JV_STR)
                    return hone_errorf(HONE_ERR_INVALID,
                                       "cannot convert dictionary update sequence element #%zu to "
                                       "a sequence",
                                       i);
                HONE_TRY(jinja_iterate(r, items[i], &pair, &k));
                if (k != 2)
                    return hone_errorf(HONE_ERR_INVALID,
                                       "dictionary update sequence element #%zu has length %zu; "
                                       "2 is required",
                                       i, k);
                HONE_TRY(jv_dict_set(a, out->u.d, pair[0], pair[1]));
            }
        }
    }
    for (size_t k = 0; k < args->n_kw; k++) {
        jv key = {0};
        HONE_TRY(jv_str_cstr(a, args->kw_names[k], &key));
        HONE_TRY(jv_dict_set(a, out->u.d, key, args->kw_vals[k]));
    }
    return HONE_OK;
}

static hone_status strftime_now(jinja_render *r, const jinja_args *args, jv *out) {
    JINJA_BIND("strftime_now", 1, "format");
    jv fmt = {0};
    HONE_TRY(jv_to_str(jinja_render_arena(r), p[0], &fmt));
    time_t t = (time_t)jinja_render_now(r);
    long usec = 0;
    if (t == 0) {
        struct timeval tv;
        gettimeofday(&tv, NULL);
        t = tv.tv_sec;
        usec = (long)tv.tv_usec;
    }
    struct tm tm;
    localtime_r(&t, &tm);
    /* Python handles %f itself, and %z / %Z are empty for the naive datetime that datetime.now() returns */
    jinja_buf f = jinja_render_buffer(r);
    hone_status st = HONE_OK;
    const jinja_str *s = fmt.u.s;
    for (size_t i = 0; i < s->len && st == HONE_OK; i++) {
        if (s->data[i] == '%' && i + 1 < s->len) {
            char c = s->data[i + 1];
            if (c == 'f') {
                char us[8];
                snprintf(us, sizeof us, "%06ld", usec);
                st = jinja_buf_adds(&f, us);
                i++;
                continue;
            }
            if (c == 'z' || c == 'Z') {
                i++;
                continue;
            }
            st = jinja_buf_add(&f, s->data + i, 2);
            i++;
            continue;
        }
        st = jinja_buf_add(&f, s->data + i, 1);
    }
    if (st == HONE_OK) st = jinja_buf_add(&f, "\x01", 1); /* so that an empty result is told from a short buffer */
    size_t cap = 256;
    char *buf = NULL;
    size_t n = 0;
    while (st == HONE_OK) {
        char *more = realloc(buf, cap);
        if (!more) {
            st = hone_errorf(HONE_ERR_NOMEM, "out of memory formatting a date");
            break;
        }
        buf = more;
        n = jinja_strftime_c(buf, cap, f.b.v, &tm);
        if (n > 0) break;
        if (cap > (1u << 20)) {
            st = hone_errorf(HONE_ERR_INVALID, "strftime_now: the formatted date is too long");
            break;
        }
        cap *= 4;
    }
    if (st == HONE_OK) st = jv_str_new(jinja_render_arena(r), buf, n - 1, out);
    free(buf);
    free(f.b.v);
    return st;
}

hone_status jinja_call_global(jinja_render *r, int id, const jinja_args *args, jv *out) {
    jinja_arena *a = jinja_render_arena(r);
    switch (id) {
        case G_RANGE: {
            if (args->n_kw) return hone_errorf(HONE_ERR_INVALID, "range() takes no keyword arguments");
            if (args->n_args < 1 || args->n_args > 3)
                return hone_errorf(HONE_ERR_INVALID, "range expected 1 to 3 arguments, got %zu", args->n_args);
            int64_t v[3] = {0, 0, 1};
            for (size_t i = 0; i < args->n_args; i++) {
                if (!jv_is_int(args->args[i]))
                    return hone_errorf(HONE_ERR_INVALID, "'%s' object cannot be interpreted as an integer",
                                       jv_type_name(args->args[i]));
                v[args->n_args == 1 ? 1 : i] = args->args[i].u.i;
            }
            if (v[2] == 0) return hone_errorf(HONE_ERR_INVALID, "range() arg 3 must not be zero");
            __int128 span = v[2] > 0 ? (__int128)v[1] - v[0] : (__int128)v[0] - v[1];
            __int128 step = v[2] > 0 ? v[2] : -(__int128)v[2];
            __int128 len = span > 0 ? (span - 1) / step + 1 : 0;
            if (len > 100000)
                return hone_errorf(HONE_ERR_INVALID, "Range too big. The sandbox blocks ranges larger than MAX_RANGE "
                                                     "(100000).");
            HONE_TRY(jv_list_new(a, (size_t)len, NULL, JL_RANGE, out));
            for (size_t i = 0; i < (size_t)len; i++) out->u.l->items[i] = jv_int(v[0] + (int64_t)i * v[2]);
            memcpy(out->u.l->range, v, sizeof v);
            return HONE_OK;
        }
        case G_DICT:
            return build_dict(r, "dict", args, out);
        case G_NAMESPACE:
            HONE_TRY(build_dict(r, "namespace", args, out));
            out->kind = JV_NAMESPACE;
            return HONE_OK;
        case G_RAISE_EXCEPTION: {
            JINJA_BIND("raise_exception", 1, "message");
            jinja_buf msg = jinja_render_buffer(r);
            hone_status st = jv_write_str(&msg, p[0]);
            if (st == HONE_OK)
                st = hone_errorf(HONE_ERR_INVALID, "the template raised an error: %s", msg.b.v ? msg.b.v : "");
            free(msg.b.v);
            return st;
        }
        case G_STRFTIME_NOW:
            return strftime_now(r, args, out);
        default:
            return hone_errorf(HONE_ERR_UNSUPPORTED, "the global function '%s' is not supported by hone's Jinja engine",
                               jinja_global_name(id));
    }
}
