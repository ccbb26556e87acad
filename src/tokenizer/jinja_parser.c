/* The Jinja parser: tokens → syntax tree, following jinja2.parser.Parser function by function so that precedence
 * and the corner cases match (filters bind tighter than binary operators, `not` looser than comparisons, tuples
 * without parentheses, adjacent string literals joined, `x if c` without else). Extensions as transformers
 * enables them: loopcontrols (break / continue) and {% generation %}.
 *
 * After parsing, one pass checks names of filters and tests: an unknown one is a compile error, except inside
 * an `if` statement or an inline if-expression where jinja2 defers the error to the moment it runs. The same
 * pass records which of varargs / kwargs / caller each macro body refers to. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "tokenizer/jinja.h"

#define MAX_NESTING 200 /* nested statements and parenthesised expressions: bounds the parser's recursion */
#define MAX_HEIGHT 500  /* the deepest expression tree (chains like a.b.c… or 1+1+… grow it without recursion) */

typedef struct {
    jinja_template *t;
    const jinja_token *tok;
    size_t n, i;
    int depth;                        /* current recursion depth */
    int loop_depth;                   /* enclosing for loops (break / continue), reset in macro bodies */
    const jinja_token *tag_stack[64]; /* names of the open statements, for "unexpected end" messages */
    int n_tags;
    const char *const *end_tags; /* what the innermost body waits for */
    size_t syms_cap;
} parser;

static const char *tok_desc(const jinja_token *t, char *buf, size_t n) {
    switch (t->kind) {
        case JT_EOF:
            return "end of template";
        case JT_BLOCK_END:
            return "end of statement block";
        case JT_VAR_END:
            return "end of print statement";
        case JT_BLOCK_BEGIN:
            return "begin of statement block";
        case JT_VAR_BEGIN:
            return "begin of print statement";
        case JT_STRING:
            return "string";
        case JT_INT:
            return "integer";
        case JT_FLOAT:
            return "float";
        case JT_DATA:
            return "template data";
        default:
            snprintf(buf, n, "%.*s", (int)(t->len < 40 ? t->len : 40), t->text);
            return buf;
    }
}

static hone_status fail_at(parser *ps, const jinja_token *t, hone_status code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static hone_status fail_at(parser *ps, const jinja_token *t, hone_status code, const char *fmt, ...) {
    char msg[512], near[64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (t->kind == JT_EOF) return hone_errorf(code, "%s:%d:%d: %s", ps->t->name, t->line, t->col, msg);
    size_t len = t->len < 30 ? t->len : 30;
    while (len < t->len && len > 0 && ((uint8_t)t->text[len] & 0xC0) == 0x80) len--; /* whole characters */
    size_t k = 0;
    for (size_t i = 0; i < len && k + 1 < sizeof near; i++) near[k++] = t->text[i] == '\n' ? ' ' : t->text[i];
    near[k] = 0;
    return hone_errorf(code, "%s:%d:%d: %s (near '%s%s')", ps->t->name, t->line, t->col, msg, near,
                       t->len > 30 ? "…" : "");
}

static const jinja_token *cur(parser *ps) { return &ps->tok[ps->i]; }
static const jinja_token *look(parser *ps) { return &ps->tok[ps->i + 1 < ps->n ? ps->i + 1 : ps->i]; }
static const jinja_token *next(parser *ps) {
    const jinja_token *t = cur(ps);
    if (ps->i + 1 < ps->n) ps->i++;
    return t;
}
static int is_op(const jinja_token *t, int op) { return t->kind == JT_OP && t->op == op; }
static int is_name(const jinja_token *t, const char *name) {
    return t->kind == JT_NAME && t->len == strlen(name) && memcmp(t->text, name, t->len) == 0;
}
static int skip_op(parser *ps, int op) {
    if (!is_op(cur(ps), op)) return 0;
    next(ps);
    return 1;
}
static int skip_name(parser *ps, const char *name) {
    if (!is_name(cur(ps), name)) return 0;
    next(ps);
    return 1;
}

static const char *op_text(int op) {
    static const char *const text[] = {
        [JO_ADD] = "+",       [JO_SUB] = "-",    [JO_DIV] = "/",    [JO_FLOORDIV] = "//", [JO_MUL] = "*",
        [JO_MOD] = "%",       [JO_POW] = "**",   [JO_TILDE] = "~",  [JO_LBRACKET] = "[",  [JO_RBRACKET] = "]",
        [JO_LPAREN] = "(",    [JO_RPAREN] = ")", [JO_LBRACE] = "{", [JO_RBRACE] = "}",    [JO_EQ] = "==",
        [JO_NE] = "!=",       [JO_GT] = ">",     [JO_GTEQ] = ">=",  [JO_LT] = "<",        [JO_LTEQ] = "<=",
        [JO_ASSIGN] = "=",    [JO_DOT] = ".",    [JO_COLON] = ":",  [JO_PIPE] = "|",      [JO_COMMA] = ",",
        [JO_SEMICOLON] = ";",
    };
    return op > 0 && op <= JO_SEMICOLON ? text[op] : "?";
}

static hone_status expect_op(parser *ps, int op) {
    if (skip_op(ps, op)) return HONE_OK;
    char buf[64];
    return fail_at(ps, cur(ps), HONE_ERR_FORMAT, "expected token '%s', got '%s'", op_text(op),
                   tok_desc(cur(ps), buf, sizeof buf));
}

static hone_status expect_kind(parser *ps, int kind, const char *what) {
    if (cur(ps)->kind == kind) {
        next(ps);
        return HONE_OK;
    }
    char buf[64];
    return fail_at(ps, cur(ps), HONE_ERR_FORMAT, "expected %s, got '%s'", what, tok_desc(cur(ps), buf, sizeof buf));
}

static hone_status expect_name(parser *ps, const char *name) {
    if (skip_name(ps, name)) return HONE_OK;
    char buf[64];
    return fail_at(ps, cur(ps), HONE_ERR_FORMAT, "expected token '%s', got '%s'", name,
                   tok_desc(cur(ps), buf, sizeof buf));
}

/* ---- nodes and symbols ---- */

static jinja_node *new_node(parser *ps, int kind, const jinja_token *at) {
    jinja_node *n = jinja_alloc(&ps->t->arena, sizeof *n);
    if (!n) return NULL;
    n->kind = (uint8_t)kind;
    n->line = at->line;
    n->col = at->col;
    n->sym = -1;
    n->height = 1;
    return n;
}

/* Records that child (may be NULL) hangs below parent: evaluating the tree recurses once per level, so too tall a
 * tree is refused here rather than overflowing the stack later. */
static hone_status adopt(parser *ps, jinja_node *parent, const jinja_node *child) {
    if (!child || child->height < parent->height) return HONE_OK;
    parent->height = (uint16_t)(child->height + 1);
    if (parent->height > MAX_HEIGHT) {
        char what[80];
        snprintf(what, sizeof what, "the expression is nested too deeply (over %d levels)", MAX_HEIGHT);
        return hone_errorf(HONE_ERR_FORMAT, "%s:%d:%d: %s", ps->t->name, parent->line, parent->col, what);
    }
    return HONE_OK;
}

#define NEW(var, kind, at)                                                                                             \
    do {                                                                                                               \
        if (!((var) = new_node(ps, (kind), (at)))) return ps->t->arena.fail;                                           \
    } while (0)

/* A growing list of nodes in the arena. */
typedef struct {
    jinja_node **v;
    size_t n, cap;
} node_vec;

static hone_status vec_push(parser *ps, node_vec *v, jinja_node *x) {
    if (v->n == v->cap) {
        size_t cap = v->cap ? 2 * v->cap : 4;
        jinja_node **nv = jinja_alloc(&ps->t->arena, cap * sizeof *nv);
        if (!nv) return ps->t->arena.fail;
        if (v->n) memcpy(nv, v->v, v->n * sizeof *nv);
        v->v = nv;
        v->cap = cap;
    }
    v->v[v->n++] = x;
    return HONE_OK;
}

static hone_status intern(parser *ps, const char *name, size_t len, int *sym) {
    jinja_template *t = ps->t;
    for (size_t i = 0; i < t->n_syms; i++)
        if (t->sym_lens[i] == len && memcmp(t->syms[i], name, len) == 0) {
            *sym = (int)i;
            return HONE_OK;
        }
    if (t->n_syms == ps->syms_cap) {
        size_t cap = ps->syms_cap ? 2 * ps->syms_cap : 32;
        const char **s = realloc(t->syms, cap * sizeof *s);
        if (!s) return hone_errorf(HONE_ERR_NOMEM, "out of memory compiling a template");
        t->syms = s;
        size_t *l = realloc(t->sym_lens, cap * sizeof *l);
        if (!l) return hone_errorf(HONE_ERR_NOMEM, "out of memory compiling a template");
        t->sym_lens = l;
        ps->syms_cap = cap;
    }
    t->syms[t->n_syms] = name;
    t->sym_lens[t->n_syms] = len;
    *sym = (int)t->n_syms++;
    return HONE_OK;
}

/* ---- expressions ---- */

static hone_status parse_expression(parser *ps, int with_condexpr, jinja_node **out);
static hone_status parse_tuple(parser *ps, int simplified, int with_condexpr, const char *const *extra_end,
                               int explicit_parens, jinja_node **out);
static hone_status parse_unary(parser *ps, int with_filter, jinja_node **out);
static hone_status parse_primary(parser *ps, jinja_node **out);
static hone_status parse_postfix(parser *ps, jinja_node *node, jinja_node **out);
static hone_status parse_filter(parser *ps, jinja_node *node, int start_inline, jinja_node **out);

static hone_status enter(parser *ps) {
    if (++ps->depth > MAX_NESTING)
        return fail_at(ps, cur(ps), HONE_ERR_FORMAT, "the template is nested too deeply (over %d levels)", MAX_NESTING);
    return HONE_OK;
}

/* Arguments of a call, filter or test: (a, b, name=c). *args / **kwargs are not supported. */
static hone_status parse_call_args(parser *ps, jinja_node *call) {
    const jinja_token *open = cur(ps);
    HONE_TRY(expect_op(ps, JO_LPAREN));
    node_vec args = {0}, kwargs = {0};
    int need_comma = 0;
    while (!is_op(cur(ps), JO_RPAREN)) {
        if (need_comma) {
            HONE_TRY(expect_op(ps, JO_COMMA));
            if (is_op(cur(ps), JO_RPAREN)) break;
        }
        if (is_op(cur(ps), JO_MUL) || is_op(cur(ps), JO_POW))
            return fail_at(ps, cur(ps), HONE_ERR_UNSUPPORTED, "*args and **kwargs in calls are not supported");
        if (cur(ps)->kind == JT_NAME && is_op(look(ps), JO_ASSIGN)) {
            jinja_node *kw = NULL;
            NEW(kw, JN_KEYWORD, cur(ps));
            char *name = jinja_alloc(&ps->t->arena, cur(ps)->len + 1); /* NUL-terminated: builtins compare names */
            if (!name) return ps->t->arena.fail;
            memcpy(name, cur(ps)->text, cur(ps)->len);
            kw->text = name;
            kw->len = cur(ps)->len;
            next(ps);
            next(ps);
            HONE_TRY(parse_expression(ps, 1, &kw->a));
            HONE_TRY(adopt(ps, kw, kw->a));
            HONE_TRY(adopt(ps, call, kw));
            HONE_TRY(vec_push(ps, &kwargs, kw));
        } else {
            if (kwargs.n)
                return fail_at(ps, open, HONE_ERR_FORMAT,
                               "invalid syntax for function call expression "
                               "(a positional argument follows a keyword argument)");
            jinja_node *arg = NULL;
            HONE_TRY(parse_expression(ps, 1, &arg));
            HONE_TRY(adopt(ps, call, arg));
            HONE_TRY(vec_push(ps, &args, arg));
        }
        need_comma = 1;
    }
    HONE_TRY(expect_op(ps, JO_RPAREN));
    call->list = args.v;
    call->n = args.n;
    call->list2 = kwargs.v;
    call->n2 = kwargs.n;
    return HONE_OK;
}

static hone_status parse_subscribed(parser *ps, jinja_node **out) {
    const jinja_token *at = cur(ps);
    jinja_node *parts[3] = {NULL, NULL, NULL};
    if (is_op(cur(ps), JO_COLON)) {
        next(ps);
    } else {
        HONE_TRY(parse_expression(ps, 1, &parts[0]));
        if (!is_op(cur(ps), JO_COLON)) {
            *out = parts[0];
            return HONE_OK;
        }
        next(ps);
    }
    if (!is_op(cur(ps), JO_COLON) && !is_op(cur(ps), JO_RBRACKET) && !is_op(cur(ps), JO_COMMA))
        HONE_TRY(parse_expression(ps, 1, &parts[1]));
    if (is_op(cur(ps), JO_COLON)) {
        next(ps);
        if (!is_op(cur(ps), JO_RBRACKET) && !is_op(cur(ps), JO_COMMA)) HONE_TRY(parse_expression(ps, 1, &parts[2]));
    }
    jinja_node *s = NULL;
    NEW(s, JN_SLICE, at);
    s->a = parts[0];
    s->b = parts[1];
    s->c = parts[2];
    for (int i = 0; i < 3; i++) HONE_TRY(adopt(ps, s, parts[i]));
    *out = s;
    return HONE_OK;
}

/* obj.attr, obj.0, obj[key] or obj[a:b:c]; the node's position is the object's, the start of the expression an
 * error message should point at. */
static hone_status parse_subscript(parser *ps, jinja_node *node, jinja_node **out) {
    const jinja_token *t = next(ps);
    const jinja_token *at = &(jinja_token){.line = node->line, .col = node->col};
    if (is_op(t, JO_DOT)) {
        const jinja_token *attr = next(ps);
        if (attr->kind == JT_NAME) {
            jinja_node *g = NULL;
            NEW(g, JN_GETATTR, at);
            g->a = node;
            g->text = attr->text;
            g->len = attr->len;
            HONE_TRY(adopt(ps, g, node));
            *out = g;
            return HONE_OK;
        }
        if (attr->kind != JT_INT) return fail_at(ps, attr, HONE_ERR_FORMAT, "expected name or number");
        jinja_node *g = NULL, *k = NULL;
        NEW(g, JN_GETITEM, at);
        NEW(k, JN_CONST, attr);
        k->value = jv_int(attr->ival);
        g->a = node;
        g->b = k;
        HONE_TRY(adopt(ps, g, node));
        *out = g;
        return HONE_OK;
    }
    /* '[' */
    node_vec args = {0};
    while (!is_op(cur(ps), JO_RBRACKET)) {
        if (args.n) HONE_TRY(expect_op(ps, JO_COMMA));
        jinja_node *a = NULL;
        HONE_TRY(parse_subscribed(ps, &a));
        HONE_TRY(vec_push(ps, &args, a));
    }
    HONE_TRY(expect_op(ps, JO_RBRACKET));
    jinja_node *g = NULL;
    NEW(g, JN_GETITEM, at);
    g->a = node;
    if (args.n == 1)
        g->b = args.v[0];
    else {
        jinja_node *tup = NULL;
        NEW(tup, JN_TUPLE, t);
        tup->list = args.v;
        tup->n = args.n;
        for (size_t i = 0; i < args.n; i++) HONE_TRY(adopt(ps, tup, args.v[i]));
        g->b = tup;
    }
    HONE_TRY(adopt(ps, g, node));
    HONE_TRY(adopt(ps, g, g->b));
    *out = g;
    return HONE_OK;
}

static hone_status parse_call(parser *ps, jinja_node *node, jinja_node **out) {
    jinja_node *c = NULL;
    NEW(c, JN_CALL, cur(ps));
    c->line = node->line; /* errors of a call point at what is called */
    c->col = node->col;
    c->a = node;
    HONE_TRY(adopt(ps, c, node));
    HONE_TRY(parse_call_args(ps, c));
    *out = c;
    return HONE_OK;
}

static hone_status parse_postfix(parser *ps, jinja_node *node, jinja_node **out) {
    for (;;) {
        if (is_op(cur(ps), JO_DOT) || is_op(cur(ps), JO_LBRACKET))
            HONE_TRY(parse_subscript(ps, node, &node));
        else if (is_op(cur(ps), JO_LPAREN))
            HONE_TRY(parse_call(ps, node, &node));
        else
            break;
    }
    *out = node;
    return HONE_OK;
}

/* A dotted filter or test name (jinja2 allows "a.b"). */
static hone_status parse_dotted_name(parser *ps, jinja_node *n) {
    const jinja_token *t = cur(ps);
    HONE_TRY(expect_kind(ps, JT_NAME, "a name"));
    n->text = t->text;
    n->len = t->len;
    while (is_op(cur(ps), JO_DOT)) {
        next(ps);
        const jinja_token *part = cur(ps);
        HONE_TRY(expect_kind(ps, JT_NAME, "a name"));
        n->len = (size_t)(part->text + part->len - n->text); /* names and dots are contiguous in the source */
    }
    return HONE_OK;
}

static hone_status parse_filter(parser *ps, jinja_node *node, int start_inline, jinja_node **out) {
    while (is_op(cur(ps), JO_PIPE) || start_inline) {
        if (!start_inline) next(ps);
        jinja_node *f = NULL;
        NEW(f, JN_FILTER, cur(ps));
        HONE_TRY(parse_dotted_name(ps, f));
        f->op = (int8_t)jinja_filter_id(f->text, f->len);
        if (is_op(cur(ps), JO_LPAREN)) HONE_TRY(parse_call_args(ps, f));
        f->a = node;
        HONE_TRY(adopt(ps, f, node));
        node = f;
        start_inline = 0;
    }
    *out = node;
    return HONE_OK;
}

static hone_status parse_test(parser *ps, jinja_node *node, jinja_node **out) {
    const jinja_token *is_tok = next(ps);
    int negated = skip_name(ps, "not");
    jinja_node *t = NULL;
    NEW(t, JN_TEST, cur(ps));
    HONE_TRY(parse_dotted_name(ps, t));
    t->op = (int8_t)jinja_test_id(t->text, t->len);
    t->a = node;
    HONE_TRY(adopt(ps, t, node));
    const jinja_token *c = cur(ps);
    if (is_op(c, JO_LPAREN)) {
        HONE_TRY(parse_call_args(ps, t));
    } else if ((c->kind == JT_NAME || c->kind == JT_STRING || c->kind == JT_INT || c->kind == JT_FLOAT ||
                is_op(c, JO_LPAREN) || is_op(c, JO_LBRACKET) || is_op(c, JO_LBRACE)) &&
               !is_name(c, "else") && !is_name(c, "or") && !is_name(c, "and")) {
        if (is_name(c, "is")) return fail_at(ps, c, HONE_ERR_FORMAT, "You cannot chain multiple tests with is");
        jinja_node *arg = NULL;
        HONE_TRY(parse_primary(ps, &arg));
        HONE_TRY(parse_postfix(ps, arg, &arg));
        jinja_node **list = jinja_alloc(&ps->t->arena, sizeof *list);
        if (!list) return ps->t->arena.fail;
        list[0] = arg;
        t->list = list;
        t->n = 1;
        HONE_TRY(adopt(ps, t, arg));
    }
    if (negated) {
        jinja_node *n = NULL;
        NEW(n, JN_NOT, is_tok);
        n->a = t;
        HONE_TRY(adopt(ps, n, t));
        t = n;
    }
    *out = t;
    return HONE_OK;
}

static hone_status parse_filter_expr(parser *ps, jinja_node *node, jinja_node **out) {
    for (;;) {
        if (is_op(cur(ps), JO_PIPE))
            HONE_TRY(parse_filter(ps, node, 0, &node));
        else if (is_name(cur(ps), "is"))
            HONE_TRY(parse_test(ps, node, &node));
        else if (is_op(cur(ps), JO_LPAREN))
            HONE_TRY(parse_call(ps, node, &node));
        else
            break;
    }
    *out = node;
    return HONE_OK;
}

static hone_status parse_list_literal(parser *ps, jinja_node **out) {
    jinja_node *l = NULL;
    NEW(l, JN_LIST, cur(ps));
    HONE_TRY(expect_op(ps, JO_LBRACKET));
    node_vec items = {0};
    while (!is_op(cur(ps), JO_RBRACKET)) {
        if (items.n) HONE_TRY(expect_op(ps, JO_COMMA));
        if (is_op(cur(ps), JO_RBRACKET)) break;
        jinja_node *x = NULL;
        HONE_TRY(parse_expression(ps, 1, &x));
        HONE_TRY(adopt(ps, l, x));
        HONE_TRY(vec_push(ps, &items, x));
    }
    HONE_TRY(expect_op(ps, JO_RBRACKET));
    l->list = items.v;
    l->n = items.n;
    *out = l;
    return HONE_OK;
}

static hone_status parse_dict_literal(parser *ps, jinja_node **out) {
    jinja_node *d = NULL;
    NEW(d, JN_DICT, cur(ps));
    HONE_TRY(expect_op(ps, JO_LBRACE));
    node_vec keys = {0}, vals = {0};
    while (!is_op(cur(ps), JO_RBRACE)) {
        if (keys.n) HONE_TRY(expect_op(ps, JO_COMMA));
        if (is_op(cur(ps), JO_RBRACE)) break;
        jinja_node *k = NULL, *v = NULL;
        HONE_TRY(parse_expression(ps, 1, &k));
        HONE_TRY(expect_op(ps, JO_COLON));
        HONE_TRY(parse_expression(ps, 1, &v));
        HONE_TRY(adopt(ps, d, k));
        HONE_TRY(adopt(ps, d, v));
        HONE_TRY(vec_push(ps, &keys, k));
        HONE_TRY(vec_push(ps, &vals, v));
    }
    HONE_TRY(expect_op(ps, JO_RBRACE));
    d->list = keys.v;
    d->list2 = vals.v;
    d->n = keys.n;
    d->n2 = vals.n;
    *out = d;
    return HONE_OK;
}

static hone_status parse_primary(parser *ps, jinja_node **out) {
    const jinja_token *t = cur(ps);
    jinja_node *n = NULL;
    if (t->kind == JT_NAME) {
        next(ps);
        if (is_name(t, "true") || is_name(t, "True") || is_name(t, "false") || is_name(t, "False")) {
            NEW(n, JN_CONST, t);
            n->value = jv_bool(t->text[0] == 't' || t->text[0] == 'T');
        } else if (is_name(t, "none") || is_name(t, "None")) {
            NEW(n, JN_CONST, t);
            n->value = jv_none();
        } else {
            NEW(n, JN_NAME, t);
            n->text = t->text;
            n->len = t->len;
            HONE_TRY(intern(ps, t->text, t->len, &n->sym));
        }
    } else if (t->kind == JT_STRING) {
        /* adjacent string literals are one string */
        size_t total = 0, k = ps->i;
        while (k < ps->n && ps->tok[k].kind == JT_STRING) total += ps->tok[k++].len;
        char *s = jinja_alloc(&ps->t->arena, total + 1);
        if (!s) return ps->t->arena.fail;
        size_t at = 0;
        while (cur(ps)->kind == JT_STRING) {
            memcpy(s + at, cur(ps)->text, cur(ps)->len);
            at += cur(ps)->len;
            next(ps);
        }
        NEW(n, JN_CONST, t);
        HONE_TRY(jv_str_new(&ps->t->arena, s, total, &n->value));
    } else if (t->kind == JT_INT || t->kind == JT_FLOAT) {
        next(ps);
        NEW(n, JN_CONST, t);
        n->value = t->kind == JT_INT ? jv_int(t->ival) : jv_float(t->fval);
    } else if (is_op(t, JO_LPAREN)) {
        next(ps);
        HONE_TRY(parse_tuple(ps, 0, 1, NULL, 1, &n));
        HONE_TRY(expect_op(ps, JO_RPAREN));
    } else if (is_op(t, JO_LBRACKET)) {
        HONE_TRY(parse_list_literal(ps, &n));
    } else if (is_op(t, JO_LBRACE)) {
        HONE_TRY(parse_dict_literal(ps, &n));
    } else {
        char buf[64];
        return fail_at(ps, t, HONE_ERR_FORMAT, "unexpected '%s'", tok_desc(t, buf, sizeof buf));
    }
    *out = n;
    return HONE_OK;
}

static hone_status parse_unary(parser *ps, int with_filter, jinja_node **out) {
    HONE_TRY(enter(ps));
    const jinja_token *t = cur(ps);
    jinja_node *node = NULL;
    if (is_op(t, JO_SUB) || is_op(t, JO_ADD)) {
        next(ps);
        NEW(node, is_op(t, JO_SUB) ? JN_NEG : JN_POS, t);
        HONE_TRY(parse_unary(ps, 0, &node->a));
        HONE_TRY(adopt(ps, node, node->a));
    } else {
        HONE_TRY(parse_primary(ps, &node));
    }
    HONE_TRY(parse_postfix(ps, node, &node));
    if (with_filter) HONE_TRY(parse_filter_expr(ps, node, &node));
    ps->depth--;
    *out = node;
    return HONE_OK;
}

static hone_status binop(parser *ps, const jinja_token *at, int op, jinja_node *l, jinja_node *r, jinja_node **out) {
    jinja_node *n = NULL;
    NEW(n, JN_BINOP, at);
    n->op = (int8_t)op;
    n->a = l;
    n->b = r;
    HONE_TRY(adopt(ps, n, l));
    HONE_TRY(adopt(ps, n, r));
    *out = n;
    return HONE_OK;
}

static hone_status parse_pow(parser *ps, jinja_node **out) {
    jinja_node *left = NULL;
    HONE_TRY(parse_unary(ps, 1, &left));
    while (is_op(cur(ps), JO_POW)) {
        const jinja_token *at = next(ps);
        jinja_node *right = NULL;
        HONE_TRY(parse_unary(ps, 1, &right));
        HONE_TRY(binop(ps, at, JO_POW, left, right, &left));
    }
    *out = left;
    return HONE_OK;
}

static hone_status parse_math2(parser *ps, jinja_node **out) {
    jinja_node *left = NULL;
    HONE_TRY(parse_pow(ps, &left));
    while (is_op(cur(ps), JO_MUL) || is_op(cur(ps), JO_DIV) || is_op(cur(ps), JO_FLOORDIV) || is_op(cur(ps), JO_MOD)) {
        const jinja_token *at = next(ps);
        jinja_node *right = NULL;
        HONE_TRY(parse_pow(ps, &right));
        HONE_TRY(binop(ps, at, at->op, left, right, &left));
    }
    *out = left;
    return HONE_OK;
}

static hone_status parse_concat(parser *ps, jinja_node **out) {
    jinja_node *first = NULL;
    HONE_TRY(parse_math2(ps, &first));
    if (!is_op(cur(ps), JO_TILDE)) {
        *out = first;
        return HONE_OK;
    }
    jinja_node *c = NULL;
    NEW(c, JN_CONCAT, cur(ps));
    node_vec args = {0};
    HONE_TRY(vec_push(ps, &args, first));
    while (skip_op(ps, JO_TILDE)) {
        jinja_node *x = NULL;
        HONE_TRY(parse_math2(ps, &x));
        HONE_TRY(vec_push(ps, &args, x));
    }
    c->list = args.v;
    c->n = args.n;
    for (size_t i = 0; i < args.n; i++) HONE_TRY(adopt(ps, c, args.v[i]));
    *out = c;
    return HONE_OK;
}

static hone_status parse_math1(parser *ps, jinja_node **out) {
    jinja_node *left = NULL;
    HONE_TRY(parse_concat(ps, &left));
    while (is_op(cur(ps), JO_ADD) || is_op(cur(ps), JO_SUB)) {
        const jinja_token *at = next(ps);
        jinja_node *right = NULL;
        HONE_TRY(parse_concat(ps, &right));
        HONE_TRY(binop(ps, at, at->op, left, right, &left));
    }
    *out = left;
    return HONE_OK;
}

static hone_status parse_compare(parser *ps, jinja_node **out) {
    jinja_node *expr = NULL;
    HONE_TRY(parse_math1(ps, &expr));
    node_vec ops = {0};
    for (;;) {
        const jinja_token *t = cur(ps);
        int op = 0;
        if (t->kind == JT_OP && (t->op == JO_EQ || t->op == JO_NE || t->op == JO_LT || t->op == JO_LTEQ ||
                                 t->op == JO_GT || t->op == JO_GTEQ)) {
            op = t->op;
            next(ps);
        } else if (is_name(t, "in")) {
            op = JO_IN;
            next(ps);
        } else if (is_name(t, "not") && is_name(look(ps), "in")) {
            op = JO_NOTIN;
            next(ps);
            next(ps);
        } else
            break;
        jinja_node *operand = NULL;
        NEW(operand, JN_OPERAND, t);
        operand->op = (int8_t)op;
        HONE_TRY(parse_math1(ps, &operand->a));
        HONE_TRY(adopt(ps, operand, operand->a));
        HONE_TRY(vec_push(ps, &ops, operand));
    }
    if (!ops.n) {
        *out = expr;
        return HONE_OK;
    }
    jinja_node *c = NULL;
    NEW(c, JN_COMPARE, (&(jinja_token){.line = ops.v[0]->line, .col = ops.v[0]->col}));
    c->a = expr;
    c->list = ops.v;
    c->n = ops.n;
    HONE_TRY(adopt(ps, c, expr));
    for (size_t i = 0; i < ops.n; i++) HONE_TRY(adopt(ps, c, ops.v[i]));
    *out = c;
    return HONE_OK;
}

static hone_status parse_not(parser *ps, jinja_node **out) {
    if (is_name(cur(ps), "not")) {
        HONE_TRY(enter(ps));
        jinja_node *n = NULL;
        NEW(n, JN_NOT, next(ps));
        HONE_TRY(parse_not(ps, &n->a));
        HONE_TRY(adopt(ps, n, n->a));
        ps->depth--;
        *out = n;
        return HONE_OK;
    }
    return parse_compare(ps, out);
}

/* left (WORD right)*: a left-leaning chain of `kind` nodes whose operands come from `operand`. */
static hone_status parse_chain(parser *ps, jinja_node **out, const char *word, int kind,
                               hone_status (*operand)(parser *, jinja_node **)) {
    jinja_node *left = NULL;
    HONE_TRY(operand(ps, &left));
    while (is_name(cur(ps), word)) {
        jinja_node *n = NULL;
        NEW(n, kind, next(ps));
        n->a = left;
        HONE_TRY(operand(ps, &n->b));
        HONE_TRY(adopt(ps, n, n->a));
        HONE_TRY(adopt(ps, n, n->b));
        left = n;
    }
    *out = left;
    return HONE_OK;
}

static hone_status parse_and(parser *ps, jinja_node **out) { return parse_chain(ps, out, "and", JN_AND, parse_not); }

static hone_status parse_or(parser *ps, jinja_node **out) { return parse_chain(ps, out, "or", JN_OR, parse_and); }

static hone_status parse_condexpr(parser *ps, jinja_node **out) {
    jinja_node *expr1 = NULL;
    HONE_TRY(parse_or(ps, &expr1));
    while (is_name(cur(ps), "if")) {
        HONE_TRY(enter(ps));
        jinja_node *c = NULL;
        NEW(c, JN_COND, next(ps));
        c->b = expr1;
        HONE_TRY(parse_or(ps, &c->a));
        if (skip_name(ps, "else")) HONE_TRY(parse_condexpr(ps, &c->c));
        HONE_TRY(adopt(ps, c, c->a));
        HONE_TRY(adopt(ps, c, c->b));
        HONE_TRY(adopt(ps, c, c->c));
        ps->depth--;
        expr1 = c;
    }
    *out = expr1;
    return HONE_OK;
}

static hone_status parse_expression(parser *ps, int with_condexpr, jinja_node **out) {
    HONE_TRY(enter(ps));
    HONE_TRY(with_condexpr ? parse_condexpr(ps, out) : parse_or(ps, out));
    ps->depth--;
    return HONE_OK;
}

static int matches_any(const jinja_token *t, const char *const *names) {
    for (; names && *names; names++)
        if (is_name(t, *names)) return 1;
    return 0;
}

static int is_tuple_end(parser *ps, const char *const *extra_end) {
    const jinja_token *t = cur(ps);
    return t->kind == JT_VAR_END || t->kind == JT_BLOCK_END || is_op(t, JO_RPAREN) || t->kind == JT_EOF ||
           matches_any(t, extra_end);
}

static hone_status parse_tuple(parser *ps, int simplified, int with_condexpr, const char *const *extra_end,
                               int explicit_parens, jinja_node **out) {
    const jinja_token *start = cur(ps);
    node_vec args = {0};
    int is_tuple = 0;
    for (;;) {
        if (args.n) HONE_TRY(expect_op(ps, JO_COMMA));
        if (is_tuple_end(ps, extra_end)) break;
        jinja_node *x = NULL;
        if (simplified)
            HONE_TRY(parse_primary(ps, &x));
        else
            HONE_TRY(parse_expression(ps, with_condexpr, &x));
        HONE_TRY(vec_push(ps, &args, x));
        if (is_op(cur(ps), JO_COMMA))
            is_tuple = 1;
        else
            break;
    }
    if (!is_tuple) {
        if (args.n) {
            *out = args.v[0];
            return HONE_OK;
        }
        if (!explicit_parens) {
            char buf[64];
            return fail_at(ps, cur(ps), HONE_ERR_FORMAT, "Expected an expression, got '%s'",
                           tok_desc(cur(ps), buf, sizeof buf));
        }
    }
    jinja_node *t = NULL;
    NEW(t, JN_TUPLE, start);
    t->list = args.v;
    t->n = args.n;
    for (size_t i = 0; i < args.n; i++) HONE_TRY(adopt(ps, t, args.v[i]));
    *out = t;
    return HONE_OK;
}

/* ---- assignment targets ---- */

static hone_status check_target(parser *ps, jinja_node *n) {
    if (n->kind == JN_NAME || n->kind == JN_NSREF) return HONE_OK;
    if (n->kind == JN_TUPLE) {
        for (size_t i = 0; i < n->n; i++) HONE_TRY(check_target(ps, n->list[i]));
        return HONE_OK;
    }
    const char *what = n->kind == JN_CONST     ? "const"
                       : n->kind == JN_GETATTR ? "getattr"
                       : n->kind == JN_GETITEM ? "getitem"
                                               : "expression";
    return fail_at(ps, &(jinja_token){.line = n->line, .col = n->col, .kind = JT_EOF}, HONE_ERR_FORMAT,
                   "can't assign to '%s'", what);
}

static hone_status parse_assign_target(parser *ps, int name_only, const char *const *extra_end, int with_namespace,
                                       jinja_node **out) {
    jinja_node *target = NULL;
    if (with_namespace && cur(ps)->kind == JT_NAME && is_op(look(ps), JO_DOT)) {
        const jinja_token *ns = next(ps);
        next(ps);
        const jinja_token *attr = cur(ps);
        HONE_TRY(expect_kind(ps, JT_NAME, "an attribute name"));
        NEW(target, JN_NSREF, ns);
        HONE_TRY(intern(ps, ns->text, ns->len, &target->sym));
        target->text = attr->text;
        target->len = attr->len;
    } else if (name_only) {
        const jinja_token *t = cur(ps);
        HONE_TRY(expect_kind(ps, JT_NAME, "a name"));
        NEW(target, JN_NAME, t);
        target->text = t->text;
        target->len = t->len;
        HONE_TRY(intern(ps, t->text, t->len, &target->sym));
    } else {
        HONE_TRY(parse_tuple(ps, 1, 1, extra_end, 0, &target));
    }
    HONE_TRY(check_target(ps, target));
    *out = target;
    return HONE_OK;
}

/* ---- statements ---- */

static hone_status subparse(parser *ps, const char *const *end_tags, jinja_node **out);

/* jinja2's help for a misplaced or missing end tag: " Jinja was looking for the following tags: 'endfor' or
 * 'else'. The innermost block that needs to be closed is 'for'." (parts left out when unknown), into buf. */
static const char *tag_context(const parser *ps, const char *const *end_tags, char *buf, size_t n) {
    size_t k = 0;
    buf[0] = 0;
    for (const char *const *e = end_tags; e && *e && k < n / 2; e++)
        k += (size_t)snprintf(buf + k, n - k, "%s'%s'",
                              e == end_tags ? " Jinja was looking for the following tags: " : " or ", *e);
    if (k && k < n) k += (size_t)snprintf(buf + k, n - k, ".");
    if (ps->n_tags && k < n / 2) {
        const jinja_token *inner = ps->tag_stack[ps->n_tags - 1];
        snprintf(buf + k, n - k, " The innermost block that needs to be closed is '%.*s'.", (int)inner->len,
                 inner->text);
    }
    return buf;
}

static hone_status fail_eof(parser *ps, const char *const *end_tags) {
    char context[256];
    return fail_at(ps, cur(ps), HONE_ERR_FORMAT, "Unexpected end of template.%s",
                   tag_context(ps, end_tags, context, sizeof context));
}

/* Body of a statement: ":"? "%}" statements… up to one of end_tags (left current unless drop_needle). */
static hone_status parse_statements(parser *ps, const char *const *end_tags, int drop_needle, jinja_node **out) {
    skip_op(ps, JO_COLON);
    HONE_TRY(expect_kind(ps, JT_BLOCK_END, "end of statement block"));
    HONE_TRY(subparse(ps, end_tags, out));
    if (cur(ps)->kind == JT_EOF) return fail_eof(ps, end_tags);
    if (drop_needle) next(ps);
    return HONE_OK;
}

static hone_status parse_signature(parser *ps, jinja_node *n) {
    HONE_TRY(expect_op(ps, JO_LPAREN));
    node_vec args = {0}, defaults = {0};
    while (!is_op(cur(ps), JO_RPAREN)) {
        if (args.n) HONE_TRY(expect_op(ps, JO_COMMA));
        jinja_node *arg = NULL;
        HONE_TRY(parse_assign_target(ps, 1, NULL, 0, &arg));
        if (skip_op(ps, JO_ASSIGN)) {
            jinja_node *d = NULL;
            HONE_TRY(parse_expression(ps, 1, &d));
            HONE_TRY(vec_push(ps, &defaults, d));
        } else if (defaults.n)
            return fail_at(ps, cur(ps), HONE_ERR_FORMAT, "non-default argument follows default argument");
        HONE_TRY(vec_push(ps, &args, arg));
    }
    HONE_TRY(expect_op(ps, JO_RPAREN));
    n->list = args.v;
    n->n = args.n;
    n->list2 = defaults.v;
    n->n2 = defaults.n;
    return HONE_OK;
}

static hone_status parse_for(parser *ps, jinja_node *n) {
    static const char *const in_end[] = {"in", NULL}, *const rec_end[] = {"recursive", NULL};
    static const char *const body_end[] = {"endfor", "else", NULL}, *const else_end[] = {"endfor", NULL};
    HONE_TRY(parse_assign_target(ps, 0, in_end, 0, &n->a));
    HONE_TRY(expect_name(ps, "in"));
    HONE_TRY(parse_tuple(ps, 0, 0, rec_end, 0, &n->b));
    if (skip_name(ps, "if")) HONE_TRY(parse_expression(ps, 1, &n->c));
    if (is_name(cur(ps), "recursive"))
        return fail_at(ps, cur(ps), HONE_ERR_UNSUPPORTED, "recursive for loops are not supported");
    ps->loop_depth++;
    HONE_TRY(parse_statements(ps, body_end, 0, &n->d));
    ps->loop_depth--;
    if (is_name(next(ps), "else")) HONE_TRY(parse_statements(ps, else_end, 1, &n->e));
    return HONE_OK;
}

static hone_status parse_if(parser *ps, jinja_node *n) {
    static const char *const body_end[] = {"elif", "else", "endif", NULL}, *const else_end[] = {"endif", NULL};
    node_vec conds = {0}, bodies = {0};
    for (;;) {
        jinja_node *cond = NULL, *body = NULL;
        HONE_TRY(parse_tuple(ps, 0, 0, NULL, 0, &cond));
        HONE_TRY(parse_statements(ps, body_end, 0, &body));
        HONE_TRY(vec_push(ps, &conds, cond));
        HONE_TRY(vec_push(ps, &bodies, body));
        const jinja_token *t = next(ps);
        if (is_name(t, "elif")) continue;
        if (is_name(t, "else")) HONE_TRY(parse_statements(ps, else_end, 1, &n->c));
        break;
    }
    n->list = conds.v;
    n->list2 = bodies.v;
    n->n = n->n2 = conds.n;
    return HONE_OK;
}

/* One statement after "{%"; the current token is its name. */
static hone_status parse_statement(parser *ps, jinja_node **out) {
    const jinja_token *t = cur(ps);
    if (t->kind != JT_NAME) return fail_at(ps, t, HONE_ERR_FORMAT, "tag name expected");
    static const char *const unsupported[] = {"block", "extends", "include", "import", "from", "autoescape", NULL};
    if (matches_any(t, unsupported))
        return fail_at(ps, t, HONE_ERR_UNSUPPORTED,
                       "the '%.*s' tag is not supported (chat templates are single, "
                       "self-contained templates)",
                       (int)t->len, t->text);
    if (ps->n_tags == (int)(sizeof ps->tag_stack / sizeof ps->tag_stack[0]))
        return fail_at(ps, t, HONE_ERR_FORMAT, "statements nested too deeply");
    HONE_TRY(enter(ps));
    ps->tag_stack[ps->n_tags++] = t;
    jinja_node *n = NULL;
    static const char *const end_set[] = {"endset", NULL}, *const end_macro[] = {"endmacro", NULL},
                             *const end_call[] = {"endcall", NULL}, *const end_filter[] = {"endfilter", NULL},
                             *const end_with[] = {"endwith", NULL}, *const end_gen[] = {"endgeneration", NULL};
    if (is_name(t, "for")) {
        NEW(n, JN_FOR, next(ps));
        HONE_TRY(parse_for(ps, n));
    } else if (is_name(t, "if")) {
        NEW(n, JN_IF, next(ps));
        HONE_TRY(parse_if(ps, n));
    } else if (is_name(t, "set")) {
        next(ps);
        jinja_node *target = NULL;
        HONE_TRY(parse_assign_target(ps, 0, NULL, 1, &target));
        if (skip_op(ps, JO_ASSIGN)) {
            NEW(n, JN_SET, t);
            n->a = target;
            HONE_TRY(parse_tuple(ps, 0, 1, NULL, 0, &n->b));
        } else {
            NEW(n, JN_SET_BLOCK, t);
            n->a = target;
            if (is_op(cur(ps), JO_PIPE)) HONE_TRY(parse_filter(ps, NULL, 0, &n->b));
            HONE_TRY(parse_statements(ps, end_set, 1, &n->d));
        }
    } else if (is_name(t, "macro")) {
        next(ps);
        NEW(n, JN_MACRO, t);
        jinja_node *name = NULL;
        HONE_TRY(parse_assign_target(ps, 1, NULL, 0, &name));
        n->text = name->text;
        n->len = name->len;
        n->sym = name->sym;
        HONE_TRY(parse_signature(ps, n));
        int loops = ps->loop_depth;
        ps->loop_depth = 0; /* a macro body cannot break its caller's loop */
        HONE_TRY(parse_statements(ps, end_macro, 1, &n->d));
        ps->loop_depth = loops;
    } else if (is_name(t, "call")) {
        next(ps);
        NEW(n, JN_CALL_BLOCK, t);
        if (is_op(cur(ps), JO_LPAREN)) HONE_TRY(parse_signature(ps, n));
        HONE_TRY(parse_expression(ps, 1, &n->a));
        if (n->a->kind != JN_CALL) return fail_at(ps, t, HONE_ERR_FORMAT, "expected call");
        int loops = ps->loop_depth;
        ps->loop_depth = 0;
        HONE_TRY(parse_statements(ps, end_call, 1, &n->d));
        ps->loop_depth = loops;
    } else if (is_name(t, "filter")) {
        next(ps);
        NEW(n, JN_FILTER_BLOCK, t);
        HONE_TRY(parse_filter(ps, NULL, 1, &n->a));
        HONE_TRY(parse_statements(ps, end_filter, 1, &n->d));
    } else if (is_name(t, "with")) {
        next(ps);
        NEW(n, JN_WITH, t);
        node_vec targets = {0}, values = {0};
        while (cur(ps)->kind != JT_BLOCK_END && cur(ps)->kind != JT_EOF) {
            if (targets.n) HONE_TRY(expect_op(ps, JO_COMMA));
            jinja_node *target = NULL, *value = NULL;
            HONE_TRY(parse_assign_target(ps, 0, NULL, 0, &target));
            HONE_TRY(expect_op(ps, JO_ASSIGN));
            HONE_TRY(parse_expression(ps, 1, &value));
            HONE_TRY(vec_push(ps, &targets, target));
            HONE_TRY(vec_push(ps, &values, value));
        }
        n->list = targets.v;
        n->list2 = values.v;
        n->n = n->n2 = targets.n;
        HONE_TRY(parse_statements(ps, end_with, 1, &n->d));
    } else if (is_name(t, "print")) {
        next(ps);
        jinja_node *body = NULL;
        NEW(body, JN_BODY, t);
        node_vec outs = {0};
        while (cur(ps)->kind != JT_BLOCK_END && cur(ps)->kind != JT_EOF) {
            if (outs.n) HONE_TRY(expect_op(ps, JO_COMMA));
            jinja_node *o = NULL;
            NEW(o, JN_OUTPUT, cur(ps));
            HONE_TRY(parse_expression(ps, 1, &o->a));
            HONE_TRY(vec_push(ps, &outs, o));
        }
        body->list = outs.v;
        body->n = outs.n;
        n = body;
    } else if (is_name(t, "break") || is_name(t, "continue")) {
        if (!ps->loop_depth) return fail_at(ps, t, HONE_ERR_FORMAT, "'%.*s' outside a for loop", (int)t->len, t->text);
        NEW(n, is_name(t, "break") ? JN_BREAK : JN_CONTINUE, next(ps));
    } else if (is_name(t, "generation")) {
        NEW(n, JN_GENERATION, next(ps));
        HONE_TRY(parse_statements(ps, end_gen, 1, &n->d));
    } else {
        ps->n_tags--;
        char context[256];
        return fail_at(ps, t, HONE_ERR_FORMAT, "Encountered unknown tag '%.*s'.%s", (int)t->len, t->text,
                       tag_context(ps, ps->end_tags, context, sizeof context));
    }
    ps->n_tags--;
    ps->depth--;
    *out = n;
    return HONE_OK;
}

static hone_status subparse(parser *ps, const char *const *end_tags, jinja_node **out) {
    jinja_node *body = NULL;
    NEW(body, JN_BODY, cur(ps));
    node_vec stmts = {0};
    const char *const *saved_end = ps->end_tags;
    ps->end_tags = end_tags;
    for (;;) {
        const jinja_token *t = cur(ps);
        if (t->kind == JT_EOF) break;
        jinja_node *n = NULL;
        if (t->kind == JT_DATA) {
            NEW(n, JN_DATA, t);
            n->text = t->text;
            n->len = t->len;
            next(ps);
        } else if (t->kind == JT_VAR_BEGIN) {
            next(ps);
            NEW(n, JN_OUTPUT, cur(ps));
            HONE_TRY(parse_tuple(ps, 0, 1, NULL, 0, &n->a));
            HONE_TRY(expect_kind(ps, JT_VAR_END, "end of print statement"));
        } else if (t->kind == JT_BLOCK_BEGIN) {
            next(ps);
            if (end_tags && matches_any(cur(ps), end_tags)) break;
            HONE_TRY(parse_statement(ps, &n));
            HONE_TRY(expect_kind(ps, JT_BLOCK_END, "end of statement block"));
        } else {
            char buf[64];
            return fail_at(ps, t, HONE_ERR_FORMAT, "unexpected '%s'", tok_desc(t, buf, sizeof buf));
        }
        HONE_TRY(vec_push(ps, &stmts, n));
    }
    ps->end_tags = saved_end;
    body->list = stmts.v;
    body->n = stmts.n;
    *out = body;
    return HONE_OK;
}

/* ---- the checking pass ---- */

typedef struct {
    parser *ps;
    jinja_node *macro; /* innermost macro being scanned (records varargs / kwargs / caller use) */
} checker;

static hone_status check(checker *ck, jinja_node *n, int soft);

static hone_status check_list(checker *ck, jinja_node **list, size_t n, int soft) {
    for (size_t i = 0; i < n; i++) HONE_TRY(check(ck, list[i], soft));
    return HONE_OK;
}

static hone_status check(checker *ck, jinja_node *n, int soft) {
    if (!n) return HONE_OK;
    parser *ps = ck->ps;
    if ((n->kind == JN_FILTER || n->kind == JN_TEST) && n->op < 0 && !soft)
        return fail_at(ps, &(jinja_token){.line = n->line, .col = n->col, .kind = JT_EOF}, HONE_ERR_FORMAT,
                       "No %s named '%.*s'.", n->kind == JN_FILTER ? "filter" : "test", (int)n->len, n->text);
    if (n->kind == JN_NAME && ck->macro) {
        if (n->sym == JS_VARARGS) ck->macro->uses_varargs = 1;
        if (n->sym == JS_KWARGS) ck->macro->uses_kwargs = 1;
        if (n->sym == JS_CALLER) ck->macro->uses_caller = 1;
    }
    switch (n->kind) {
        case JN_IF:
            HONE_TRY(check_list(ck, n->list, n->n, 1));
            HONE_TRY(check_list(ck, n->list2, n->n2, 1));
            return check(ck, n->c, 1);
        case JN_COND:
            HONE_TRY(check(ck, n->a, 1));
            HONE_TRY(check(ck, n->b, 1));
            return check(ck, n->c, 1);
        case JN_FOR:
            HONE_TRY(check(ck, n->b, soft)); /* the iterable is evaluated in the enclosing frame */
            HONE_TRY(check(ck, n->c, 0));
            HONE_TRY(check(ck, n->d, 0));
            return check(ck, n->e, 0);
        case JN_MACRO: {
            jinja_node *outer = ck->macro;
            ck->macro = n;
            hone_status st = check_list(ck, n->list2, n->n2, 0);
            if (st == HONE_OK) st = check(ck, n->d, 0);
            ck->macro = outer;
            /* names used in a nested macro count for the enclosing one too, as jinja2's scan does */
            if (outer) {
                outer->uses_varargs |= n->uses_varargs;
                outer->uses_kwargs |= n->uses_kwargs;
                outer->uses_caller |= n->uses_caller;
            }
            return st;
        }
        case JN_CALL_BLOCK:
            HONE_TRY(check(ck, n->a, soft));
            HONE_TRY(check_list(ck, n->list2, n->n2, 0));
            return check(ck, n->d, 0);
        case JN_SET_BLOCK:
        case JN_FILTER_BLOCK:
        case JN_GENERATION:
            HONE_TRY(check(ck, n->a, 0));
            HONE_TRY(check(ck, n->b, 0));
            return check(ck, n->d, 0);
        case JN_WITH:
            HONE_TRY(check_list(ck, n->list2, n->n2, soft));
            return check(ck, n->d, 0);
        default:
            HONE_TRY(check(ck, n->a, soft));
            HONE_TRY(check(ck, n->b, soft));
            HONE_TRY(check(ck, n->c, soft));
            HONE_TRY(check(ck, n->d, soft));
            HONE_TRY(check(ck, n->e, soft));
            HONE_TRY(check_list(ck, n->list, n->n, soft));
            return check_list(ck, n->list2, n->n2, soft);
    }
}

/* ---- entry points ---- */

void jinja_template_free(jinja_template *t) {
    if (!t) return;
    jinja_arena_free(&t->arena);
    free(t->syms);
    free(t->sym_lens);
    free(t->name);
    free(t);
}

hone_status jinja_compile(jinja_template **out, const char *name, const char *src, size_t n) {
    *out = NULL;
    size_t bad = tok_utf8_check((const uint8_t *)src, n);
    if (bad < n) return hone_errorf(HONE_ERR_FORMAT, "%s: the template is not valid UTF-8 (byte %zu)", name, bad);
    jinja_template *t = calloc(1, sizeof *t);
    if (!t || !(t->name = strdup(name))) {
        free(t);
        return hone_errorf(HONE_ERR_NOMEM, "out of memory compiling template %s", name);
    }
    parser ps = {.t = t};
    static const char *const fixed[JS_FIXED] = {"loop", "varargs", "kwargs", "caller"};
    hone_status st = HONE_OK;
    for (int i = 0; i < JS_FIXED && st == HONE_OK; i++) {
        int sym = 0;
        st = intern(&ps, fixed[i], strlen(fixed[i]), &sym);
    }
    char *norm = NULL;
    size_t norm_len = 0;
    jinja_token *toks = NULL;
    size_t n_toks = 0;
    if (st == HONE_OK) st = jinja_normalize_source(&t->arena, src, n, &norm, &norm_len);
    if (st == HONE_OK) st = jinja_lex(t->name, norm, norm_len, &t->arena, &toks, &n_toks);
    if (st == HONE_OK) {
        ps.tok = toks;
        ps.n = n_toks;
        st = subparse(&ps, NULL, &t->root);
    }
    if (st == HONE_OK) {
        checker ck = {.ps = &ps};
        st = check(&ck, t->root, 0);
    }
    free(toks);
    if (st != HONE_OK) {
        jinja_template_free(t);
        return st;
    }
    *out = t;
    return HONE_OK;
}
