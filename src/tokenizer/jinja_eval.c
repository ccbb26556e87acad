/* The Jinja evaluator: walks the syntax tree with jinja2's runtime semantics.
 *
 * Scopes: the template's top level is one scope; every for-loop iteration, macro call, caller call, with block
 * and captured body (set block, filter block, generation block) gets a child scope, so `set` inside a loop does
 * not leak out of it (nor into the next iteration), while `set` inside an `if` changes the enclosing scope. A
 * name is looked up through the scope chain, then in the render variables (messages, bos_token, …), then among
 * the global functions; otherwise it is undefined. Macros see their defining scope as it is when they are called.
 *
 * Errors carry "line L:C: " of the innermost node that failed. Limits bound the work a template can do: nodes
 * evaluated (loops cannot run away), output and value memory, and the depth of nested macro calls (recursion). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "tokenizer/jinja.h"

/* Evaluation recurses once per expression level and statement level, macro calls included: a template can
 * nest a few hundred levels (the parser's limits), macro recursion multiplies that, and this caps the total so
 * that the C stack (about 1 MiB of it at this depth) cannot overflow. */
#define MAX_RECURSION 2000

const jinja_limits jinja_default_limits = {
    .max_output = (size_t)256 << 20,
    .max_memory = (size_t)1 << 30,
    .max_steps = 100000000,
    .max_depth = 100,
};

struct jinja_scope {
    jinja_scope *parent;
    size_t n, cap;
    int *syms;
    jv *vals;
};

struct jinja_render {
    const jinja_template *t;
    jinja_arena *arena;
    jinja_buf root;   /* the rendered text */
    jinja_buf *out;   /* where output goes now: root, or the buffer of a captured body */
    int root_yielded; /* something was output at the top level (what activates transformers' span tracker) */
    int want_spans;
    jinja_span *spans;
    size_t n_spans, cap_spans;
    jv *ctx; /* symbol → render variable */
    uint8_t *ctx_set;
    int64_t now;
    jinja_limits lim;
    uint64_t steps;
    int depth;
    int nesting;  /* evaluation recursion depth now (MAX_RECURSION) */
    int loop_ctl; /* 1 = break, 2 = continue: set by the statement, cleared by the loop that handles it */
    int located;  /* the pending error already names its line */
};

jinja_arena *jinja_render_arena(jinja_render *r) { return r->arena; }
jinja_buf jinja_render_buffer(jinja_render *r) { return (jinja_buf){.limit = r->lim.max_output}; }
int64_t jinja_render_now(jinja_render *r) { return r->now; }

static hone_status locate(jinja_render *r, const jinja_node *n, hone_status st) {
    if (st != HONE_OK && !r->located) {
        r->located = 1;
        return hone_error_context(st, "line %d:%d", n->line, n->col);
    }
    return st;
}

/* Counts one unit of work: nodes evaluated and loop iterations. */
static hone_status step(jinja_render *r) {
    if (++r->steps > r->lim.max_steps)
        return hone_errorf(HONE_ERR_INVALID,
                           "the template did not finish within %llu steps (a loop over a huge range?)",
                           (unsigned long long)r->lim.max_steps);
    return HONE_OK;
}

/* One step and one level of recursion, undone by leave(). */
static hone_status enter(jinja_render *r) {
    HONE_TRY(step(r));
    if (r->nesting >= MAX_RECURSION)
        return hone_errorf(HONE_ERR_INVALID, "the template nests deeper than %d levels (runaway macro recursion?)",
                           MAX_RECURSION);
    r->nesting++;
    return HONE_OK;
}

static hone_status leave(jinja_render *r, hone_status st) {
    r->nesting--;
    return st;
}

static hone_status emit(jinja_render *r, const char *s, size_t n) {
    if (r->out == &r->root) r->root_yielded = 1;
    return jinja_buf_add(r->out, s, n);
}

/* Outputs str(v). */
static hone_status emit_value(jinja_render *r, jv v) {
    if (r->out == &r->root) r->root_yielded = 1;
    return jv_write_str(r->out, v);
}

/* ---- undefined values and their errors ---- */

static hone_status make_undef(jinja_render *r, int why, const char *name, size_t len, jv obj, jv item, jv *out) {
    jinja_undef *u = jinja_alloc(r->arena, sizeof *u);
    if (!u) return r->arena->fail;
    u->why = why;
    u->name = name;
    u->name_len = len;
    u->obj_kind = obj.kind;
    u->obj_flavor = obj.kind == JV_LIST ? obj.u.l->flavor : 0;
    u->item = item;
    *out = (jv){.kind = JV_UNDEFINED, .u.u = u};
    return HONE_OK;
}

hone_status jinja_undefined_hint(jinja_render *r, const char *hint, jv *out) {
    return make_undef(r, JU_HINT, hint, strlen(hint), jv_none(), jv_none(), out);
}

hone_status jinja_undefined_attr(jinja_render *r, jv obj, const char *name, size_t len, jv *out) {
    return make_undef(r, JU_ATTR, name, len, obj, jv_none(), out);
}

/* The same with a formatted hint (copied into the arena). */
static hone_status undef_hintf(jinja_render *r, jv *out, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static hone_status undef_hintf(jinja_render *r, jv *out, const char *fmt, ...) {
    char hint[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(hint, sizeof hint, fmt, ap);
    va_end(ap);
    size_t len = n < 0 ? 0 : (size_t)n < sizeof hint ? (size_t)n : sizeof hint - 1;
    char *copy = jinja_alloc(r->arena, len + 1);
    if (!copy) return r->arena->fail;
    memcpy(copy, hint, len);
    return make_undef(r, JU_HINT, copy, len, jv_none(), jv_none(), out);
}

/* jinja2's names for the object an undefined value came from: a jv of that kind stands in for it. */
static jv kind_stand_in(uint8_t kind, uint8_t flavor, jinja_list *l, jinja_func *f) {
    jv v = {.kind = kind};
    l->flavor = flavor;
    if (kind == JV_LIST) v.u.l = l;
    if (kind == JV_FUNC) v.u.fn = f;
    return v;
}

hone_status jinja_undefined_error(jv v) {
    const jinja_undef *u = v.u.u;
    if (!u) return hone_errorf(HONE_ERR_INVALID, "a value is undefined");
    jinja_list l = {0};
    jinja_func f = {.kind = JF_GLOBAL};
    jv stand_in = kind_stand_in(u->obj_kind, u->obj_flavor, &l, &f);
    const char *obj = jv_object_repr_name(stand_in);
    switch (u->why) {
        case JU_NAME:
            return hone_errorf(HONE_ERR_INVALID, "'%.*s' is undefined", (int)u->name_len, u->name);
        case JU_HINT:
            return hone_errorf(HONE_ERR_INVALID, "%.*s", (int)u->name_len, u->name);
        case JU_UNSAFE:
            return hone_errorf(HONE_ERR_INVALID, "access to attribute '%.*s' of '%s' object is unsafe.",
                               (int)u->name_len, u->name, jv_type_name(stand_in));
        case JU_ATTR:
            return hone_errorf(HONE_ERR_INVALID, "'%s' has no attribute '%.*s'", obj, (int)u->name_len, u->name);
        case JU_ITEM: {
            if (u->item.kind == JV_STR)
                return hone_errorf(HONE_ERR_INVALID, "'%s' has no attribute '%s'", obj, u->item.u.s->data);
            jinja_buf b = {0};
            hone_status st = jv_write_repr(&b, u->item);
            if (st == HONE_OK) st = hone_errorf(HONE_ERR_INVALID, "%s has no element %s", obj, b.b.v ? b.b.v : "");
            free(b.b.v);
            return st;
        }
    }
    return HONE_ERR_INVALID;
}

/* ---- scopes ---- */

static hone_status scope_new(jinja_render *r, jinja_scope *parent, jinja_scope **out) {
    jinja_scope *s = jinja_alloc(r->arena, sizeof *s);
    if (!s) return r->arena->fail;
    s->parent = parent;
    *out = s;
    return HONE_OK;
}

static hone_status scope_set(jinja_render *r, jinja_scope *s, int sym, jv v) {
    for (size_t i = 0; i < s->n; i++)
        if (s->syms[i] == sym) {
            s->vals[i] = v;
            return HONE_OK;
        }
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 8;
        int *syms = jinja_alloc(r->arena, cap * sizeof *syms);
        jv *vals = jinja_alloc(r->arena, cap * sizeof *vals);
        if (!syms || !vals) return r->arena->fail;
        if (s->n) {
            memcpy(syms, s->syms, s->n * sizeof *syms);
            memcpy(vals, s->vals, s->n * sizeof *vals);
        }
        s->syms = syms;
        s->vals = vals;
        s->cap = cap;
    }
    s->syms[s->n] = sym;
    s->vals[s->n] = v;
    s->n++;
    return HONE_OK;
}

static const jv *scope_find(const jinja_scope *s, int sym) {
    for (; s; s = s->parent)
        for (size_t i = 0; i < s->n; i++)
            if (s->syms[i] == sym) return &s->vals[i];
    return NULL;
}

static hone_status lookup(jinja_render *r, jinja_scope *s, const jinja_node *n, jv *out) {
    const jv *v = scope_find(s, n->sym);
    if (v) {
        *out = *v;
        return HONE_OK;
    }
    if (r->ctx_set[n->sym]) {
        *out = r->ctx[n->sym];
        return HONE_OK;
    }
    int g = jinja_global_id(n->text, n->len);
    if (g >= 0) {
        jinja_func *fn = jinja_alloc(r->arena, sizeof *fn);
        if (!fn) return r->arena->fail;
        fn->kind = JF_GLOBAL;
        fn->id = g;
        fn->name = jinja_global_name(g);
        *out = (jv){.kind = JV_FUNC, .u.fn = fn};
        return HONE_OK;
    }
    return make_undef(r, JU_NAME, n->text, n->len, jv_none(), jv_none(), out);
}

/* ---- iteration and membership ---- */

hone_status jinja_iterate(jinja_render *r, jv v, jv **items, size_t *n) {
    switch (v.kind) {
        case JV_UNDEFINED:
            *items = NULL;
            *n = 0;
            return HONE_OK;
        case JV_LIST: {
            jinja_list *l = v.u.l;
            if (l->flavor == JL_ITER) { /* a generator runs once */
                *items = l->items + l->pos;
                *n = l->n - l->pos;
                l->pos = l->n;
                return HONE_OK;
            }
            *items = l->items;
            *n = l->n;
            return HONE_OK;
        }
        case JV_DICT:
            *items = v.u.d->keys;
            *n = v.u.d->n;
            return HONE_OK;
        case JV_STR: {
            jinja_str *s = v.u.s;
            size_t k = jv_str_ncp(s);
            jv *chars = jinja_alloc(r->arena, (k ? k : 1) * sizeof *chars);
            if (!chars) return r->arena->fail;
            size_t i = 0;
            for (size_t c = 0; c < k; c++) {
                size_t at = i;
                jinja_next_cp(s->data, &i);
                HONE_TRY(jv_str_new(r->arena, s->data + at, i - at, &chars[c]));
            }
            *items = chars;
            *n = k;
            return HONE_OK;
        }
        default:
            return hone_errorf(HONE_ERR_INVALID, "'%s' object is not iterable", jv_type_name(v));
    }
}

hone_status jinja_contains(jv container, jv item, int *result) {
    *result = 0;
    switch (container.kind) {
        case JV_UNDEFINED:
            return HONE_OK;
        case JV_STR: {
            if (item.kind != JV_STR)
                return hone_errorf(HONE_ERR_INVALID, "'in <string>' requires string as left operand, not %s",
                                   jv_type_name(item));
            *result = item.u.s->len == 0 ||
                      memmem(container.u.s->data, container.u.s->len, item.u.s->data, item.u.s->len) != NULL;
            return HONE_OK;
        }
        case JV_DICT: {
            uint64_t h = 0;
            HONE_TRY(jv_hash(item, &h));
            *result = jv_dict_find(container.u.d, item) >= 0;
            return HONE_OK;
        }
        case JV_LIST: {
            jinja_list *l = container.u.l;
            size_t from = l->flavor == JL_ITER ? l->pos : 0;
            for (size_t i = from; i < l->n; i++)
                if (jv_equal(l->items[i], item)) {
                    if (l->flavor == JL_ITER) l->pos = i + 1;
                    *result = 1;
                    return HONE_OK;
                }
            if (l->flavor == JL_ITER) l->pos = l->n;
            return HONE_OK;
        }
        default:
            return hone_errorf(HONE_ERR_INVALID, "argument of type '%s' is not iterable", jv_type_name(container));
    }
}

/* ---- attribute and item access (jinja2.sandbox.SandboxedEnvironment.getattr / getitem) ---- */

static hone_status loop_attr(jinja_render *r, jinja_loop *lp, const char *name, size_t len, jv self, jv *out,
                             int *found) {
    size_t n = lp->items->n, i = lp->index0;
    *found = 1;
#define IS(s) (len == sizeof(s) - 1 && memcmp(name, s, len) == 0)
    if (IS("index"))
        *out = jv_int((int64_t)i + 1);
    else if (IS("index0"))
        *out = jv_int((int64_t)i);
    else if (IS("revindex"))
        *out = jv_int((int64_t)(n - i));
    else if (IS("revindex0"))
        *out = jv_int((int64_t)(n - i) - 1);
    else if (IS("first"))
        *out = jv_bool(i == 0);
    else if (IS("last"))
        *out = jv_bool(i + 1 == n);
    else if (IS("length"))
        *out = jv_int((int64_t)n);
    else if (IS("depth"))
        *out = jv_int(1);
    else if (IS("depth0"))
        *out = jv_int(0);
    else if (IS("previtem")) {
        if (i == 0) return jinja_undefined_hint(r, "there is no previous item", out);
        *out = lp->items->items[i - 1];
    } else if (IS("nextitem")) {
        if (i + 1 >= n) return jinja_undefined_hint(r, "there is no next item", out);
        *out = lp->items->items[i + 1];
    } else
        return jinja_method_lookup(r, self, name, len, out, found);
#undef IS
    return HONE_OK;
}

hone_status jinja_getattr(jinja_render *r, jv obj, const char *name, size_t len, jv *out) {
    if (obj.kind == JV_UNDEFINED) return jinja_undefined_error(obj);
    int found = 0;
    if (len >= 2 && name[0] == '_' && name[1] == '_') /* Python internals exist on every object and are unsafe */
        return make_undef(r, JU_UNSAFE, name, len, obj, jv_none(), out);
    switch (obj.kind) {
        case JV_NAMESPACE: {
            const jv *v = jv_dict_get(obj.u.d, name, len);
            if (v) {
                *out = *v;
                return HONE_OK;
            }
            break;
        }
        case JV_LOOP:
            HONE_TRY(loop_attr(r, obj.u.loop, name, len, obj, out, &found));
            if (found) return HONE_OK;
            break;
        case JV_FUNC:
            break;
        default:
            HONE_TRY(jinja_method_lookup(r, obj, name, len, out, &found));
            if (found) return HONE_OK;
            if (obj.kind == JV_DICT) { /* no such attribute: obj[name] */
                const jv *v = jv_dict_get(obj.u.d, name, len);
                if (v) {
                    *out = *v;
                    return HONE_OK;
                }
            }
    }
    return make_undef(r, JU_ATTR, name, len, obj, jv_none(), out);
}

/* Python's index adjustment: i (may be negative) into [0, n), or -1 out of range. */
static int64_t seq_index(jv key, size_t n) {
    int64_t i = key.u.i;
    if (i < 0) i += (int64_t)n;
    return i >= 0 && (uint64_t)i < n ? i : -1;
}

hone_status jinja_getitem(jinja_render *r, jv obj, jv key, jv *out) {
    if (obj.kind == JV_UNDEFINED) return jinja_undefined_error(obj);
    switch (obj.kind) {
        case JV_DICT: {
            uint64_t h = 0;
            if (jv_hash(key, &h) == HONE_OK) {
                long at = jv_dict_find(obj.u.d, key);
                if (at >= 0) {
                    *out = obj.u.d->vals[at];
                    return HONE_OK;
                }
            }
            break;
        }
        case JV_LIST: {
            jinja_list *l = obj.u.l;
            int indexable = l->flavor == JL_LIST || l->flavor == JL_TUPLE || l->flavor == JL_RANGE;
            if (indexable && jv_is_int(key)) {
                int64_t i = seq_index(key, l->n);
                if (i >= 0) {
                    *out = l->items[i];
                    return HONE_OK;
                }
                return make_undef(r, JU_ITEM, NULL, 0, obj, key, out);
            }
            break;
        }
        case JV_STR:
            if (jv_is_int(key)) {
                jinja_str *s = obj.u.s;
                int64_t i = seq_index(key, jv_str_ncp(s));
                if (i >= 0) {
                    size_t at = jv_str_offset(s, (size_t)i), end = at;
                    jinja_next_cp(s->data, &end);
                    HONE_TRY(jv_str_new(r->arena, s->data + at, end - at, out));
                    out->markup = obj.markup;
                    return HONE_OK;
                }
                return make_undef(r, JU_ITEM, NULL, 0, obj, key, out);
            }
            break;
        default:
            break;
    }
    /* the lookup failed (or the object has no items): a string key may name an attribute */
    if (key.kind == JV_STR && obj.kind != JV_DICT) {
        jv v = {0};
        HONE_TRY(jinja_getattr(r, obj, key.u.s->data, key.u.s->len, &v));
        if (v.kind != JV_UNDEFINED || (v.u.u && v.u.u->why == JU_UNSAFE)) {
            *out = v;
            return HONE_OK;
        }
    } else if (key.kind == JV_STR) {
        int found = 0;
        HONE_TRY(jinja_method_lookup(r, obj, key.u.s->data, key.u.s->len, out, &found));
        if (found) return HONE_OK;
    }
    return make_undef(r, JU_ITEM, NULL, 0, obj, key, out);
}

/* obj[start:stop:step] with Python's bound adjustment (JV_NONE for a left-out bound). Where Python raises
 * TypeError (not a sequence, non-int bounds) jinja2's getitem gives undefined, and so does this; a zero step is an
 * error. */
static hone_status get_slice(jinja_render *r, jv obj, jv start, jv stop, jv stepv, jv *out) {
    if (obj.kind == JV_UNDEFINED) return jinja_undefined_error(obj);
    int seq = (obj.kind == JV_LIST &&
               (obj.u.l->flavor == JL_LIST || obj.u.l->flavor == JL_TUPLE || obj.u.l->flavor == JL_RANGE)) ||
              obj.kind == JV_STR;
    jv parts[3] = {start, stop, stepv};
    for (int i = 0; i < 3; i++)
        if (parts[i].kind != JV_NONE && !jv_is_int(parts[i])) seq = 0;
    if (!seq) return undef_hintf(r, out, "%s cannot be sliced with these bounds", jv_object_repr_name(obj));
    int64_t st = stepv.kind == JV_NONE ? 1 : stepv.u.i;
    if (st == 0) return hone_errorf(HONE_ERR_INVALID, "slice step cannot be zero");
    int64_t len = (int64_t)(obj.kind == JV_STR ? jv_str_ncp(obj.u.s) : obj.u.l->n);
    int64_t b = 0, e = 0;
    for (int which = 0; which < 2; which++) {
        jv v = which ? stop : start;
        int64_t x = 0;
        if (v.kind == JV_NONE)
            x = which ? (st < 0 ? -1 : len) : (st < 0 ? len - 1 : 0);
        else {
            x = v.u.i;
            if (x < 0) {
                x = x < -len ? (st < 0 ? -1 : 0) : x + len;
            } else if (x >= len)
                x = st < 0 ? len - 1 : len;
        }
        if (which)
            e = x;
        else
            b = x;
    }
    size_t count = 0;
    if (st > 0 && b < e) count = (size_t)((e - b - 1) / st + 1);
    if (st < 0 && e < b) count = (size_t)((b - e - 1) / -st + 1);
    if (obj.kind == JV_STR) {
        jinja_str *s = obj.u.s;
        if (st == 1) {
            size_t from = jv_str_offset(s, (size_t)b), to = count ? jv_str_offset(s, (size_t)b + count) : from;
            HONE_TRY(jv_str_new(r->arena, s->data + from, to - from, out));
            out->markup = obj.markup;
            return HONE_OK;
        }
        jinja_buf o = jinja_render_buffer(r);
        hone_status stt = HONE_OK;
        for (size_t k = 0; k < count && stt == HONE_OK; k++) {
            size_t at = jv_str_offset(s, (size_t)(b + (int64_t)k * st)), end = at;
            jinja_next_cp(s->data, &end);
            stt = jinja_buf_add(&o, s->data + at, end - at);
        }
        if (stt == HONE_OK) stt = jv_str_new(r->arena, o.b.v ? o.b.v : "", o.b.n, out);
        free(o.b.v);
        out->markup = obj.markup;
        return stt;
    }
    jinja_list *l = obj.u.l;
    HONE_TRY(jv_list_new(r->arena, count, NULL, l->flavor, out));
    for (size_t k = 0; k < count; k++) out->u.l->items[k] = l->items[b + (int64_t)k * st];
    if (l->flavor == JL_RANGE) { /* range(a, z, s)[b:e:st] is range(a + b·s, a + e·s, s·st) */
        out->u.l->range[0] = l->range[0] + b * l->range[2];
        out->u.l->range[1] = l->range[0] + e * l->range[2];
        out->u.l->range[2] = l->range[2] * st;
    }
    return HONE_OK;
}

/* ---- operators ---- */

static hone_status type_error2(const char *op, jv a, jv b) {
    return hone_errorf(HONE_ERR_INVALID, "unsupported operand type(s) for %s: '%s' and '%s'", op, jv_type_name(a),
                       jv_type_name(b));
}

static hone_status overflow(void) {
    return hone_errorf(HONE_ERR_UNSUPPORTED, "integer result does not fit in 64 bits (Python's ints are unbounded)");
}

static int is_seq(jv v) {
    return v.kind == JV_STR || (v.kind == JV_LIST && (v.u.l->flavor == JL_LIST || v.u.l->flavor == JL_TUPLE));
}

static hone_status repeat(jinja_render *r, jv seq, int64_t times, jv *out) {
    if (times < 0) times = 0;
    size_t unit = seq.kind == JV_STR ? seq.u.s->len : seq.u.l->n * sizeof(jv);
    if (unit && (uint64_t)times > (r->arena->limit ? r->arena->limit : SIZE_MAX / 2) / unit)
        return hone_errorf(HONE_ERR_INVALID, "repeating a sequence %lld times needs too much memory", (long long)times);
    if (seq.kind == JV_STR) {
        size_t n = seq.u.s->len * (size_t)times;
        char *buf = jinja_alloc(r->arena, n + 1);
        if (!buf) return r->arena->fail;
        for (int64_t k = 0; k < times; k++) memcpy(buf + (size_t)k * seq.u.s->len, seq.u.s->data, seq.u.s->len);
        HONE_TRY(jv_str_new(r->arena, buf, n, out));
        out->markup = seq.markup;
        return HONE_OK;
    }
    size_t m = seq.u.l->n;
    HONE_TRY(jv_list_new(r->arena, m * (size_t)times, NULL, seq.u.l->flavor, out));
    for (int64_t k = 0; k < times; k++)
        if (m) memcpy(out->u.l->items + (size_t)k * m, seq.u.l->items, m * sizeof(jv));
    return HONE_OK;
}

/* str + str; with a Markup operand the other one is escaped and the result is Markup (Markup.__add__). */
static hone_status concat_str(jinja_render *r, jv a, jv b, jv *out) {
    int markup = a.markup || b.markup;
    if (markup) {
        HONE_TRY(jv_escape(r->arena, a, 0, &a));
        HONE_TRY(jv_escape(r->arena, b, 0, &b));
    }
    jinja_buf o = jinja_render_buffer(r);
    hone_status st = jinja_buf_add(&o, a.u.s->data, a.u.s->len);
    if (st == HONE_OK) st = jinja_buf_add(&o, b.u.s->data, b.u.s->len);
    if (st == HONE_OK) st = jv_str_new(r->arena, o.b.v ? o.b.v : "", o.b.n, out);
    free(o.b.v);
    out->markup = (uint8_t)markup;
    return st;
}

/* Python float // and %. */
static void float_divmod(double a, double b, double *div, double *mod) {
    double m = fmod(a, b), d = (a - m) / b;
    if (m != 0.0) {
        if ((b < 0) != (m < 0)) {
            m += b;
            d -= 1.0;
        }
    } else
        m = copysign(0.0, b);
    double fd = 0;
    if (d != 0.0) {
        fd = floor(d);
        if (d - fd > 0.5) fd += 1.0;
    } else
        fd = copysign(0.0, a / b);
    *div = fd;
    *mod = m;
}

hone_status jinja_binop(jinja_render *r, int op, jv a, jv b, jv *out) {
    if (op == JO_MOD && a.kind == JV_STR) return jinja_percent_format(r, a.u.s, a.markup, b, out);
    if (a.kind == JV_UNDEFINED) return jinja_undefined_error(a);
    if (b.kind == JV_UNDEFINED) return jinja_undefined_error(b);
    int ints = jv_is_int(a) && jv_is_int(b), nums = jv_is_num(a) && jv_is_num(b);
    switch (op) {
        case JO_ADD:
            if (ints) {
                int64_t s = 0;
                if (__builtin_add_overflow(a.u.i, b.u.i, &s)) return overflow();
                *out = jv_int(s);
                return HONE_OK;
            }
            if (nums) {
                *out = jv_float(jv_to_double(a) + jv_to_double(b));
                return HONE_OK;
            }
            if (a.kind == JV_STR && b.kind == JV_STR) return concat_str(r, a, b, out);
            if (a.kind == JV_LIST && b.kind == JV_LIST && a.u.l->flavor == b.u.l->flavor &&
                (a.u.l->flavor == JL_LIST || a.u.l->flavor == JL_TUPLE)) {
                size_t n = a.u.l->n + b.u.l->n;
                HONE_TRY(jv_list_new(r->arena, n, NULL, a.u.l->flavor, out));
                if (a.u.l->n) memcpy(out->u.l->items, a.u.l->items, a.u.l->n * sizeof(jv));
                if (b.u.l->n) memcpy(out->u.l->items + a.u.l->n, b.u.l->items, b.u.l->n * sizeof(jv));
                return HONE_OK;
            }
            if (is_seq(a) && !a.markup)
                return hone_errorf(HONE_ERR_INVALID, "can only concatenate %s (not \"%s\") to %s", jv_type_name(a),
                                   jv_type_name(b), jv_type_name(a));
            return type_error2("+", a, b);
        case JO_SUB:
            if (ints) {
                int64_t s = 0;
                if (__builtin_sub_overflow(a.u.i, b.u.i, &s)) return overflow();
                *out = jv_int(s);
                return HONE_OK;
            }
            if (nums) {
                *out = jv_float(jv_to_double(a) - jv_to_double(b));
                return HONE_OK;
            }
            return type_error2("-", a, b);
        case JO_MUL:
            if (ints) {
                int64_t s = 0;
                if (__builtin_mul_overflow(a.u.i, b.u.i, &s)) return overflow();
                *out = jv_int(s);
                return HONE_OK;
            }
            if (nums) {
                *out = jv_float(jv_to_double(a) * jv_to_double(b));
                return HONE_OK;
            }
            if (is_seq(a) && jv_is_int(b)) return repeat(r, a, b.u.i, out);
            if (is_seq(b) && jv_is_int(a)) return repeat(r, b, a.u.i, out);
            if ((is_seq(a) && b.kind == JV_FLOAT) || (is_seq(b) && a.kind == JV_FLOAT))
                return hone_errorf(HONE_ERR_INVALID, "can't multiply sequence by non-int of type 'float'");
            return type_error2("*", a, b);
        case JO_DIV:
            if (nums) {
                if (jv_to_double(b) == 0.0)
                    return hone_errorf(HONE_ERR_INVALID, ints ? "division by zero" : "float division by zero");
                *out = jv_float(jv_to_double(a) / jv_to_double(b));
                return HONE_OK;
            }
            return type_error2("/", a, b);
        case JO_FLOORDIV:
        case JO_MOD:
            if (ints) {
                if (b.u.i == 0)
                    return hone_errorf(HONE_ERR_INVALID,
                                       op == JO_MOD ? "integer modulo by zero" : "integer division or modulo by zero");
                if (a.u.i == INT64_MIN && b.u.i == -1) {
                    if (op == JO_MOD) {
                        *out = jv_int(0);
                        return HONE_OK;
                    }
                    return overflow();
                }
                int64_t q = a.u.i / b.u.i, m = a.u.i % b.u.i;
                if (m != 0 && ((m < 0) != (b.u.i < 0))) {
                    q -= 1;
                    m += b.u.i;
                }
                *out = jv_int(op == JO_MOD ? m : q);
                return HONE_OK;
            }
            if (nums) {
                double x = jv_to_double(a), y = jv_to_double(b), d, m;
                if (y == 0.0)
                    return hone_errorf(HONE_ERR_INVALID,
                                       op == JO_MOD ? "float modulo" : "float floor division by zero");
                float_divmod(x, y, &d, &m);
                *out = jv_float(op == JO_MOD ? m : d);
                return HONE_OK;
            }
            return type_error2(op == JO_MOD ? "%" : "//", a, b);
        case JO_POW:
            if (ints && b.u.i >= 0) {
                int64_t base = a.u.i, e = b.u.i, acc = 1;
                while (e > 0) {
                    if (e & 1 && __builtin_mul_overflow(acc, base, &acc)) return overflow();
                    e >>= 1;
                    if (e && __builtin_mul_overflow(base, base, &base)) return overflow();
                }
                *out = jv_int(acc);
                return HONE_OK;
            }
            if (nums) {
                double x = jv_to_double(a), y = jv_to_double(b);
                if (x == 0.0 && y < 0) return hone_errorf(HONE_ERR_INVALID, "0.0 cannot be raised to a negative power");
                if (x < 0 && y != floor(y))
                    return hone_errorf(HONE_ERR_UNSUPPORTED, "a negative number to a fractional power is complex");
                double p = pow(x, y);
                if (isinf(p) && !isinf(x) && !isinf(y))
                    return hone_errorf(HONE_ERR_INVALID, "(34, 'Numerical result out of range')");
                *out = jv_float(p);
                return HONE_OK;
            }
            return type_error2("** or pow()", a, b);
    }
    return hone_errorf(HONE_ERR_INVALID, "unknown operator");
}

/* a OP b for the comparison operators (Python semantics: lists compare at their first differing item). */
static hone_status compare_at(jinja_render *r, int op, jv a, jv b, int *result, int depth);

hone_status jinja_compare(jinja_render *r, int op, jv a, jv b, int *result) {
    return compare_at(r, op, a, b, result, 0);
}

static hone_status compare_at(jinja_render *r, int op, jv a, jv b, int *result, int depth) {
    switch (op) {
        case JO_EQ:
            *result = jv_equal(a, b);
            return HONE_OK;
        case JO_NE:
            *result = !jv_equal(a, b);
            return HONE_OK;
        case JO_IN:
            return jinja_contains(b, a, result);
        case JO_NOTIN:
            HONE_TRY(jinja_contains(b, a, result));
            *result = !*result;
            return HONE_OK;
    }
    if (a.kind == JV_UNDEFINED) return jinja_undefined_error(a);
    if (b.kind == JV_UNDEFINED) return jinja_undefined_error(b);
    if (jv_is_num(a) && jv_is_num(b) && (a.kind == JV_FLOAT || b.kind == JV_FLOAT)) {
        double x = jv_to_double(a), y = jv_to_double(b);
        *result = op == JO_LT ? x < y : op == JO_LTEQ ? x <= y : op == JO_GT ? x > y : x >= y;
        return HONE_OK;
    }
    if (a.kind == JV_LIST && b.kind == JV_LIST && a.u.l->flavor == b.u.l->flavor &&
        (a.u.l->flavor == JL_LIST || a.u.l->flavor == JL_TUPLE)) {
        const jinja_list *x = a.u.l, *y = b.u.l;
        for (size_t i = 0; i < x->n && i < y->n; i++)
            if (!jv_equal(x->items[i], y->items[i])) {
                if (depth > 500) return hone_errorf(HONE_ERR_INVALID, "comparing values nested over 500 levels");
                return compare_at(r, op, x->items[i], y->items[i], result, depth + 1);
            }
        size_t p = x->n, q = y->n;
        *result = op == JO_LT ? p < q : op == JO_LTEQ ? p <= q : op == JO_GT ? p > q : p >= q;
        return HONE_OK;
    }
    int lt = 0, gt = 0;
    static const char *const sym[] = {[JO_LT] = "<", [JO_LTEQ] = "<=", [JO_GT] = ">", [JO_GTEQ] = ">="};
    if (!((jv_is_num(a) && jv_is_num(b)) || (a.kind == JV_STR && b.kind == JV_STR)))
        return hone_errorf(HONE_ERR_INVALID, "'%s' not supported between instances of '%s' and '%s'", sym[op],
                           jv_type_name(a), jv_type_name(b));
    HONE_TRY(jv_less(a, b, &lt));
    HONE_TRY(jv_less(b, a, &gt));
    *result = op == JO_LT ? lt : op == JO_LTEQ ? !gt : op == JO_GT ? gt : !lt;
    return HONE_OK;
}

/* ---- evaluation ---- */

static hone_status eval(jinja_render *r, jinja_scope *s, const jinja_node *n, jv *out);
static hone_status exec_body(jinja_render *r, jinja_scope *s, const jinja_node *body);

/* Renders body into a string (with its own scope), as jinja2 does for set blocks, filter blocks and macros. */
static hone_status capture(jinja_render *r, jinja_scope *s, const jinja_node *body, jv *out) {
    jinja_buf buf = jinja_render_buffer(r);
    jinja_buf *saved = r->out;
    r->out = &buf;
    hone_status st = exec_body(r, s, body);
    r->out = saved;
    if (st == HONE_OK) st = jv_str_new(r->arena, buf.b.v ? buf.b.v : "", buf.b.n, out);
    free(buf.b.v);
    return st;
}

/* Binds names of an assignment target (name, tuple of targets, or namespace attribute) in scope s. */
static hone_status assign(jinja_render *r, jinja_scope *s, const jinja_node *target, jv v) {
    if (target->kind == JN_NAME) return scope_set(r, s, target->sym, v);
    if (target->kind == JN_NSREF) {
        const jv *ns = scope_find(s, target->sym);
        if (!ns && r->ctx_set[target->sym]) ns = &r->ctx[target->sym];
        if (!ns || ns->kind != JV_NAMESPACE)
            return hone_errorf(HONE_ERR_INVALID, "cannot assign attribute on non-namespace object");
        jv key = {0};
        HONE_TRY(jv_str_new(r->arena, target->text, target->len, &key));
        return jv_dict_set(r->arena, ns->u.d, key, v);
    }
    /* tuple unpacking */
    if (!(v.kind == JV_LIST || v.kind == JV_STR || v.kind == JV_DICT || v.kind == JV_UNDEFINED))
        return hone_errorf(HONE_ERR_INVALID, "cannot unpack non-iterable %s object", jv_type_name(v));
    jv *items = NULL;
    size_t n = 0;
    HONE_TRY(jinja_iterate(r, v, &items, &n));
    if (n > target->n) return hone_errorf(HONE_ERR_INVALID, "too many values to unpack (expected %zu)", target->n);
    if (n < target->n)
        return hone_errorf(HONE_ERR_INVALID, "not enough values to unpack (expected %zu, got %zu)", target->n, n);
    for (size_t i = 0; i < n; i++) HONE_TRY(assign(r, s, target->list[i], items[i]));
    return HONE_OK;
}

typedef struct {
    jv *args;
    size_t n_args;
    const char **kw_names;
    jv *kw_vals;
    size_t n_kw;
} call_args;

static hone_status eval_args(jinja_render *r, jinja_scope *s, const jinja_node *n, size_t extra_kw, call_args *ca) {
    ca->n_args = n->n;
    ca->n_kw = n->n2;
    ca->args = jinja_alloc(r->arena, (n->n + 1) * sizeof(jv));
    ca->kw_vals = jinja_alloc(r->arena, (n->n2 + extra_kw + 1) * sizeof(jv));
    ca->kw_names = jinja_alloc(r->arena, (n->n2 + extra_kw + 1) * sizeof(char *));
    if (!ca->args || !ca->kw_vals || !ca->kw_names) return r->arena->fail;
    for (size_t i = 0; i < n->n; i++) HONE_TRY(eval(r, s, n->list[i], &ca->args[i]));
    for (size_t i = 0; i < n->n2; i++) {
        ca->kw_names[i] = n->list2[i]->text; /* NUL-terminated by the parser */
        HONE_TRY(eval(r, s, n->list2[i]->a, &ca->kw_vals[i]));
    }
    return HONE_OK;
}

static hone_status apply_filter_node(jinja_render *r, jinja_scope *s, const jinja_node *f, jv input, jv *out) {
    call_args ca;
    HONE_TRY(eval_args(r, s, f, 0, &ca));
    if (f->op < 0) return hone_errorf(HONE_ERR_INVALID, "No filter named '%.*s'.", (int)f->len, f->text);
    jinja_args a = {ca.args, ca.n_args, ca.kw_names, ca.kw_vals, ca.n_kw};
    return jinja_apply_filter(r, f->op, input, &a, out);
}

/* A filter chain whose innermost input is NULL (set / filter blocks): applies it to `input`. */
static hone_status apply_chain(jinja_render *r, jinja_scope *s, const jinja_node *f, jv input, jv *out) {
    if (!f) {
        *out = input;
        return HONE_OK;
    }
    jv inner = {0};
    HONE_TRY(apply_chain(r, s, f->a, input, &inner));
    return locate(r, f, apply_filter_node(r, s, f, inner, out));
}

static hone_status call_macro(jinja_render *r, const jinja_func *fn, const jinja_args *a, jv *out);

static hone_status call_value(jinja_render *r, jv fn, const jinja_args *a, jv *out) {
    if (fn.kind == JV_UNDEFINED) return jinja_undefined_error(fn);
    if (fn.kind == JV_LOOP)
        return hone_errorf(HONE_ERR_UNSUPPORTED, "calling loop() needs a recursive for loop, which is not supported");
    if (fn.kind != JV_FUNC) return hone_errorf(HONE_ERR_INVALID, "'%s' object is not callable", jv_type_name(fn));
    switch (fn.u.fn->kind) {
        case JF_GLOBAL:
            return jinja_call_global(r, fn.u.fn->id, a, out);
        case JF_METHOD:
            return jinja_call_method(r, fn.u.fn, a, out);
        case JF_MACRO:
        case JF_CALLER:
            return call_macro(r, fn.u.fn, a, out);
        default:
            return hone_errorf(HONE_ERR_UNSUPPORTED, "the Python method %s is not supported by hone's Jinja engine",
                               fn.u.fn->name);
    }
}

/* jinja2.runtime.Macro.__call__: positional, then keyword arguments by name, then caller / kwargs / varargs. */
static hone_status call_macro(jinja_render *r, const jinja_func *fn, const jinja_args *a, jv *out) {
    const jinja_node *m = fn->node;
    int is_caller = fn->kind == JF_CALLER;
    if (r->depth >= r->lim.max_depth)
        return hone_errorf(HONE_ERR_INVALID, "macro calls nested deeper than %d levels (runaway recursion?)",
                           r->lim.max_depth);
    jinja_scope *s = NULL;
    HONE_TRY(scope_new(r, fn->closure, &s));
    size_t n_params = m->n, n_pos = a->n_args < n_params ? a->n_args : n_params;
    uint8_t *kw_used = jinja_alloc(r->arena, a->n_kw + 1);
    if (!kw_used) return r->arena->fail;
    int found_caller = 0;
    for (size_t i = 0; i < n_params; i++) {
        const jinja_node *p = m->list[i];
        jv v = {.kind = JV_UNDEFINED};
        int given = 0;
        if (i < n_pos) {
            v = a->args[i];
            given = 1;
        } else if (n_pos < n_params) {
            for (size_t k = 0; k < a->n_kw; k++)
                if (!kw_used[k] && strlen(a->kw_names[k]) == p->len && memcmp(a->kw_names[k], p->text, p->len) == 0) {
                    kw_used[k] = 1;
                    v = a->kw_vals[k];
                    given = 1;
                    break;
                }
            if (p->sym == JS_CALLER) found_caller = 1;
        }
        if (!given) {
            size_t first_default = n_params - m->n2;
            if (i >= first_default) {
                HONE_TRY(scope_set(r, s, p->sym, jv_undefined())); /* earlier parameters are visible */
                HONE_TRY(eval(r, s, m->list2[i - first_default], &v));
            } else
                HONE_TRY(undef_hintf(r, &v, "parameter '%.*s' was not provided", (int)p->len, p->text));
        }
        HONE_TRY(scope_set(r, s, p->sym, v));
    }
    if (!is_caller && m->uses_caller && !found_caller) {
        jv caller = {0};
        int have = 0;
        for (size_t k = 0; k < a->n_kw; k++)
            if (!kw_used[k] && strcmp(a->kw_names[k], "caller") == 0) {
                kw_used[k] = 1;
                caller = a->kw_vals[k];
                have = 1;
            }
        if (!have) HONE_TRY(jinja_undefined_hint(r, "No caller defined", &caller));
        HONE_TRY(scope_set(r, s, JS_CALLER, caller));
    }
    const char *name = fn->name;
    if (!is_caller && m->uses_kwargs) {
        jv kwargs = {0};
        HONE_TRY(jv_dict_new(r->arena, &kwargs));
        for (size_t k = 0; k < a->n_kw; k++)
            if (!kw_used[k]) {
                jv key = {0};
                HONE_TRY(jv_str_cstr(r->arena, a->kw_names[k], &key));
                HONE_TRY(jv_dict_set(r->arena, kwargs.u.d, key, a->kw_vals[k]));
            }
        HONE_TRY(scope_set(r, s, JS_KWARGS, kwargs));
    } else
        for (size_t k = 0; k < a->n_kw; k++)
            if (!kw_used[k]) {
                if (strcmp(a->kw_names[k], "caller") == 0)
                    return hone_errorf(HONE_ERR_INVALID,
                                       "macro '%s' was invoked with two values for the special "
                                       "caller argument",
                                       name);
                return hone_errorf(HONE_ERR_INVALID, "macro '%s' takes no keyword argument '%s'", name, a->kw_names[k]);
            }
    if (!is_caller && m->uses_varargs) {
        jv rest = {0};
        size_t extra = a->n_args > n_params ? a->n_args - n_params : 0;
        HONE_TRY(jv_list_new(r->arena, extra, extra ? a->args + n_params : NULL, JL_TUPLE, &rest));
        HONE_TRY(scope_set(r, s, JS_VARARGS, rest));
    } else if (a->n_args > n_params)
        return hone_errorf(HONE_ERR_INVALID, "macro '%s' takes not more than %zu argument(s)", name, n_params);
    r->depth++;
    int saved_ctl = r->loop_ctl;
    hone_status st = capture(r, s, m->d, out);
    r->loop_ctl = saved_ctl;
    r->depth--;
    return st;
}

static hone_status eval_call(jinja_render *r, jinja_scope *s, const jinja_node *n, const jv *caller, jv *out) {
    jv fn = {0};
    HONE_TRY(eval(r, s, n->a, &fn));
    call_args ca;
    HONE_TRY(eval_args(r, s, n, caller != NULL, &ca));
    if (caller) {
        ca.kw_names[ca.n_kw] = "caller";
        ca.kw_vals[ca.n_kw++] = *caller;
    }
    jinja_args a = {ca.args, ca.n_args, ca.kw_names, ca.kw_vals, ca.n_kw};
    return call_value(r, fn, &a, out);
}

static hone_status eval_inner(jinja_render *r, jinja_scope *s, const jinja_node *n, jv *out) {
    switch (n->kind) {
        case JN_CONST:
            *out = n->value;
            return HONE_OK;
        case JN_NAME:
            return lookup(r, s, n, out);
        case JN_GETATTR: {
            jv obj = {0};
            HONE_TRY(eval(r, s, n->a, &obj));
            return jinja_getattr(r, obj, n->text, n->len, out);
        }
        case JN_GETITEM: {
            jv obj = {0};
            HONE_TRY(eval(r, s, n->a, &obj));
            if (n->b->kind == JN_SLICE) {
                jv parts[3] = {jv_none(), jv_none(), jv_none()};
                const jinja_node *p[3] = {n->b->a, n->b->b, n->b->c};
                for (int i = 0; i < 3; i++)
                    if (p[i]) HONE_TRY(eval(r, s, p[i], &parts[i]));
                return get_slice(r, obj, parts[0], parts[1], parts[2], out);
            }
            jv key = {0};
            HONE_TRY(eval(r, s, n->b, &key));
            return jinja_getitem(r, obj, key, out);
        }
        case JN_CALL:
            return eval_call(r, s, n, NULL, out);
        case JN_FILTER: {
            jv input = {0};
            HONE_TRY(eval(r, s, n->a, &input));
            return apply_filter_node(r, s, n, input, out);
        }
        case JN_TEST: {
            jv input = {0};
            HONE_TRY(eval(r, s, n->a, &input));
            call_args ca;
            HONE_TRY(eval_args(r, s, n, 0, &ca));
            if (n->op < 0) return hone_errorf(HONE_ERR_INVALID, "No test named '%.*s'.", (int)n->len, n->text);
            jinja_args a = {ca.args, ca.n_args, ca.kw_names, ca.kw_vals, ca.n_kw};
            int result = 0;
            HONE_TRY(jinja_apply_test(r, n->op, input, &a, &result));
            *out = jv_bool(result);
            return HONE_OK;
        }
        case JN_BINOP: {
            jv a = {0}, b = {0};
            HONE_TRY(eval(r, s, n->a, &a));
            HONE_TRY(eval(r, s, n->b, &b));
            return jinja_binop(r, n->op, a, b, out);
        }
        case JN_CONCAT: {
            jinja_buf o = jinja_render_buffer(r);
            hone_status st = HONE_OK;
            for (size_t i = 0; i < n->n && st == HONE_OK; i++) {
                jv v = {0};
                st = eval(r, s, n->list[i], &v);
                if (st == HONE_OK) st = jv_write_str(&o, v);
            }
            if (st == HONE_OK) st = jv_str_new(r->arena, o.b.v ? o.b.v : "", o.b.n, out);
            free(o.b.v);
            return st;
        }
        case JN_COMPARE: {
            jv left = {0};
            HONE_TRY(eval(r, s, n->a, &left));
            for (size_t i = 0; i < n->n; i++) {
                jv right = {0};
                HONE_TRY(eval(r, s, n->list[i]->a, &right));
                int ok = 0;
                HONE_TRY(locate(r, n->list[i], jinja_compare(r, n->list[i]->op, left, right, &ok)));
                if (!ok) {
                    *out = jv_bool(0);
                    return HONE_OK;
                }
                left = right;
            }
            *out = jv_bool(1);
            return HONE_OK;
        }
        case JN_AND:
        case JN_OR: {
            jv a = {0};
            HONE_TRY(eval(r, s, n->a, &a));
            if (jv_truthy(a) == (n->kind == JN_OR)) {
                *out = a;
                return HONE_OK;
            }
            return eval(r, s, n->b, out);
        }
        case JN_NOT: {
            jv a = {0};
            HONE_TRY(eval(r, s, n->a, &a));
            *out = jv_bool(!jv_truthy(a));
            return HONE_OK;
        }
        case JN_NEG:
        case JN_POS: {
            jv a = {0};
            HONE_TRY(eval(r, s, n->a, &a));
            if (a.kind == JV_UNDEFINED) return jinja_undefined_error(a);
            if (a.kind == JV_FLOAT) {
                *out = jv_float(n->kind == JN_NEG ? -a.u.f : a.u.f);
                return HONE_OK;
            }
            if (jv_is_int(a)) {
                if (n->kind == JN_NEG && a.u.i == INT64_MIN) return overflow();
                *out = jv_int(n->kind == JN_NEG ? -a.u.i : a.u.i);
                return HONE_OK;
            }
            return hone_errorf(HONE_ERR_INVALID, "bad operand type for unary %c: '%s'", n->kind == JN_NEG ? '-' : '+',
                               jv_type_name(a));
        }
        case JN_COND: {
            jv c = {0};
            HONE_TRY(eval(r, s, n->a, &c));
            if (jv_truthy(c)) return eval(r, s, n->b, out);
            if (n->c) return eval(r, s, n->c, out);
            return undef_hintf(r, out,
                               "the inline if-expression on line %d evaluated to false and no else section was "
                               "defined.",
                               n->line);
        }
        case JN_LIST:
        case JN_TUPLE:
            HONE_TRY(jv_list_new(r->arena, n->n, NULL, n->kind == JN_LIST ? JL_LIST : JL_TUPLE, out));
            for (size_t i = 0; i < n->n; i++) HONE_TRY(eval(r, s, n->list[i], &out->u.l->items[i]));
            return HONE_OK;
        case JN_DICT: {
            jv d = {0};
            HONE_TRY(jv_dict_new(r->arena, &d));
            for (size_t i = 0; i < n->n; i++) {
                jv k = {0}, v = {0};
                HONE_TRY(eval(r, s, n->list[i], &k));
                HONE_TRY(eval(r, s, n->list2[i], &v));
                HONE_TRY(jv_dict_set(r->arena, d.u.d, k, v));
            }
            *out = d;
            return HONE_OK;
        }
        default:
            return hone_errorf(HONE_ERR_INVALID, "internal error: node %d is not an expression", n->kind);
    }
}

static hone_status eval(jinja_render *r, jinja_scope *s, const jinja_node *n, jv *out) {
    HONE_TRY(enter(r));
    return leave(r, locate(r, n, eval_inner(r, s, n, out)));
}

/* ---- statements ---- */

static hone_status exec_for(jinja_render *r, jinja_scope *s, const jinja_node *n) {
    jv seq = {0};
    HONE_TRY(eval(r, s, n->b, &seq));
    jv *items = NULL;
    size_t count = 0;
    HONE_TRY(locate(r, n->b, jinja_iterate(r, seq, &items, &count)));
    jinja_scope *it = NULL;
    HONE_TRY(scope_new(r, s, &it));
    if (n->c) { /* for x in xs if cond: the loop sees only the items that pass */
        jv *kept = jinja_alloc(r->arena, (count + 1) * sizeof *kept);
        if (!kept) return r->arena->fail;
        size_t k = 0;
        for (size_t i = 0; i < count; i++) {
            it->n = 0;
            HONE_TRY(locate(r, n->a, assign(r, it, n->a, items[i])));
            jv ok = {0};
            HONE_TRY(eval(r, it, n->c, &ok));
            if (jv_truthy(ok)) kept[k++] = items[i];
        }
        items = kept;
        count = k;
    }
    if (count == 0) {
        if (!n->e) return HONE_OK;
        jinja_scope *es = NULL;
        HONE_TRY(scope_new(r, s, &es));
        return exec_body(r, es, n->e);
    }
    jinja_loop *lp = jinja_alloc(r->arena, sizeof *lp);
    if (!lp) return r->arena->fail;
    jv list = {0};
    HONE_TRY(jv_list_new(r->arena, count, items, JL_LIST, &list));
    lp->items = list.u.l;
    lp->changed_last = jv_undefined();
    jv loop = {.kind = JV_LOOP, .u.loop = lp};
    for (size_t i = 0; i < count; i++) {
        HONE_TRY(step(r));
        lp->index0 = i;
        it->n = 0; /* each iteration starts from the enclosing scope again */
        HONE_TRY(scope_set(r, it, JS_LOOP, loop));
        HONE_TRY(locate(r, n->a, assign(r, it, n->a, items[i])));
        HONE_TRY(exec_body(r, it, n->d));
        int ctl = r->loop_ctl;
        r->loop_ctl = 0;
        if (ctl == 1) break;
    }
    return HONE_OK;
}

static hone_status exec_stmt(jinja_render *r, jinja_scope *s, const jinja_node *n) {
    switch (n->kind) {
        case JN_DATA:
            return emit(r, n->text, n->len);
        case JN_OUTPUT: {
            jv v = {0};
            HONE_TRY(eval(r, s, n->a, &v));
            return locate(r, n->a, emit_value(r, v));
        }
        case JN_BODY:
            return exec_body(r, s, n);
        case JN_IF:
            for (size_t i = 0; i < n->n; i++) {
                jv c = {0};
                HONE_TRY(eval(r, s, n->list[i], &c));
                if (jv_truthy(c)) return exec_body(r, s, n->list2[i]);
            }
            return n->c ? exec_body(r, s, n->c) : HONE_OK;
        case JN_FOR:
            return exec_for(r, s, n);
        case JN_SET: {
            jv v = {0};
            HONE_TRY(eval(r, s, n->b, &v));
            return assign(r, s, n->a, v);
        }
        case JN_SET_BLOCK: {
            jinja_scope *inner = NULL;
            HONE_TRY(scope_new(r, s, &inner));
            jv text = {0}, v = {0};
            HONE_TRY(capture(r, inner, n->d, &text));
            HONE_TRY(apply_chain(r, inner, n->b, text, &v));
            return assign(r, s, n->a, v);
        }
        case JN_MACRO: {
            jinja_func *fn = jinja_alloc(r->arena, sizeof *fn);
            char *name = jinja_alloc(r->arena, n->len + 1);
            if (!fn || !name) return r->arena->fail;
            memcpy(name, n->text, n->len);
            fn->kind = JF_MACRO;
            fn->node = n;
            fn->closure = s;
            fn->name = name;
            return scope_set(r, s, n->sym, (jv){.kind = JV_FUNC, .u.fn = fn});
        }
        case JN_CALL_BLOCK: {
            jinja_func *fn = jinja_alloc(r->arena, sizeof *fn);
            if (!fn) return r->arena->fail;
            fn->kind = JF_CALLER;
            fn->node = n;
            fn->closure = s;
            fn->name = "caller";
            jv caller = {.kind = JV_FUNC, .u.fn = fn}, v;
            HONE_TRY(locate(r, n->a, eval_call(r, s, n->a, &caller, &v)));
            return emit_value(r, v);
        }
        case JN_FILTER_BLOCK: {
            jinja_scope *inner = NULL;
            HONE_TRY(scope_new(r, s, &inner));
            jv text = {0}, v = {0};
            HONE_TRY(capture(r, inner, n->d, &text));
            HONE_TRY(apply_chain(r, inner, n->a, text, &v));
            return locate(r, n, emit_value(r, v));
        }
        case JN_WITH: {
            jinja_scope *inner = NULL;
            HONE_TRY(scope_new(r, s, &inner));
            for (size_t i = 0; i < n->n; i++) {
                jv v = {0};
                HONE_TRY(eval(r, s, n->list2[i], &v));
                HONE_TRY(locate(r, n->list[i], assign(r, inner, n->list[i], v)));
            }
            return exec_body(r, inner, n->d);
        }
        case JN_BREAK:
            r->loop_ctl = 1;
            return HONE_OK;
        case JN_CONTINUE:
            r->loop_ctl = 2;
            return HONE_OK;
        case JN_GENERATION: {
            /* transformers' AssistantTracker: the span starts at the length of what the top level has output so
             * far, and is recorded only once the tracker is active (something output, or an earlier span) */
            int active = r->root_yielded || r->n_spans > 0;
            jinja_scope *inner = NULL;
            HONE_TRY(scope_new(r, s, &inner));
            jv text = {0};
            HONE_TRY(capture(r, inner, n->d, &text));
            size_t start = r->root.b.n;
            if (r->want_spans && active) {
                if (r->n_spans == r->cap_spans) {
                    size_t cap = r->cap_spans ? 2 * r->cap_spans : 8;
                    jinja_span *sp = realloc(r->spans, cap * sizeof *sp);
                    if (!sp) return hone_errorf(HONE_ERR_NOMEM, "out of memory recording generation spans");
                    r->spans = sp;
                    r->cap_spans = cap;
                }
                r->spans[r->n_spans++] = (jinja_span){start, start + text.u.s->len};
            }
            return emit(r, text.u.s->data, text.u.s->len);
        }
        default:
            return hone_errorf(HONE_ERR_INVALID, "internal error: node %d is not a statement", n->kind);
    }
}

static hone_status exec_body(jinja_render *r, jinja_scope *s, const jinja_node *body) {
    for (size_t i = 0; i < body->n && !r->loop_ctl; i++) {
        HONE_TRY(enter(r));
        HONE_TRY(leave(r, locate(r, body->list[i], exec_stmt(r, s, body->list[i]))));
    }
    return HONE_OK;
}

hone_status jinja_render_template(const jinja_template *t, jinja_arena *arena, jv vars, int64_t now,
                                  const jinja_limits *limits, char **text, size_t *len, jinja_span **spans,
                                  size_t *n_spans) {
    *text = NULL;
    *len = 0;
    if (spans) {
        *spans = NULL;
        *n_spans = 0;
    }
    jinja_render r = {.t = t, .arena = arena, .now = now, .lim = *limits, .want_spans = spans != NULL};
    r.root.limit = limits->max_output;
    r.out = &r.root;
    hone_status st = HONE_OK;
    r.ctx = jinja_alloc(arena, (t->n_syms + 1) * sizeof *r.ctx);
    r.ctx_set = jinja_alloc(arena, t->n_syms + 1);
    if (!r.ctx || !r.ctx_set) st = arena->fail;
    for (size_t i = 0; i < t->n_syms && st == HONE_OK; i++) {
        const jv *v = jv_dict_get(vars.u.d, t->syms[i], t->sym_lens[i]);
        if (v) {
            r.ctx[i] = *v;
            r.ctx_set[i] = 1;
        }
    }
    jinja_scope *top = NULL;
    if (st == HONE_OK) st = scope_new(&r, NULL, &top);
    if (st == HONE_OK) st = exec_body(&r, top, t->root);
    if (st != HONE_OK) {
        free(r.root.b.v);
        free(r.spans);
        return st;
    }
    if (!r.root.b.v && tok_bytes_append(&r.root.b, "", 0) != HONE_OK) {
        free(r.spans);
        return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    }
    *text = r.root.b.v;
    *len = r.root.b.n;
    if (spans) {
        *spans = r.spans;
        *n_spans = r.n_spans;
    } else
        free(r.spans);
    return HONE_OK;
}
