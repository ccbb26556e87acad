/* Internals of the Jinja engine that renders chat templates the way Hugging Face transformers does (jinja2's
 * ImmutableSandboxedEnvironment with trim_blocks, lstrip_blocks and the loopcontrols extension):
 *   jinja_lexer.c    source → tokens: jinja2's lexer rules, whitespace control (-, +), trim_blocks, lstrip_blocks,
 *                    raw blocks, comments, string escapes, numbers
 *   jinja_parser.c   tokens → syntax tree; syntax errors name line:column and the offending text
 *   jinja_value.c    values with Python semantics: the per-render arena, strings (code points, Unicode spaces and
 *                    case), lists, dicts, str() / repr(), ==, <, hashing, JSON in and out (json.dumps)
 *   jinja_eval.c     the evaluator: scopes, statements, operators, attribute and item access, calls, macros,
 *                    loops, {% generation %} spans, resource limits
 *   jinja_filters.c  the filters and tests
 *   jinja_methods.c  str / dict / list methods, loop.cycle / loop.changed, str helpers the filters share
 *   jinja_globals.c  the global functions: range, dict, namespace, raise_exception, strftime_now
 *   jinja_format.c   Python's `str % args` formatting
 *
 * Memory: a compiled template owns its syntax tree (one arena, freed with the template). A render allocates every
 * value in a render arena freed when the render ends, so values are plain structs with pointers that need no
 * reference counts; lists, dicts and strings are immutable once built (the immutable sandbox forbids mutation),
 * namespaces and loop objects are the only mutable values. */
#ifndef HONE_JINJA_H
#define HONE_JINJA_H

#include <stdint.h>
#include <string.h>

#include "hone/base.h"
#include "hone/chat_template.h"
#include "tokenizer/tokenizer_internal.h"

/* ---- arena (jinja_value.c) ---- */
typedef struct jinja_chunk jinja_chunk;
typedef struct {
    jinja_chunk *head;
    size_t used, limit; /* bytes handed out so far, and the most allowed (0 = no limit) */
    hone_status fail;   /* why the last jinja_alloc returned NULL */
} jinja_arena;

/* n bytes, 16-byte aligned, zeroed; NULL past the limit or out of memory, with the error message set and the
 * status in a->fail. */
void *jinja_alloc(jinja_arena *a, size_t n);
/* Python's float("…") digits → double and back, in the C locale whatever the process locale is. */
double jinja_strtod(const char *s, char **end);
/* snprintf and strftime in the C locale (a decimal point, English month names, whatever the process locale). */
int jinja_snprintf_c(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
struct tm;
size_t jinja_strftime_c(char *buf, size_t n, const char *fmt, const struct tm *tm);
void jinja_arena_free(jinja_arena *a);

/* ---- values (jinja_value.c) ---- */
typedef enum {
    JV_UNDEFINED, /* jinja2's default Undefined: prints "", iterates empty, is falsy; most other uses are errors */
    JV_NONE,
    JV_BOOL,
    JV_INT, /* Python int limited to int64 (overflow is an error) */
    JV_FLOAT,
    JV_STR,
    JV_LIST, /* list, tuple, generator, dict views, range: see jinja_flavor */
    JV_DICT,
    JV_NAMESPACE,
    JV_FUNC,
    JV_LOOP,
} jinja_kind;

/* What a JV_LIST stands for in Python: it decides printing, indexing, len() and truthiness. */
typedef enum {
    JL_LIST,
    JL_TUPLE,
    JL_ITER,   /* a generator / iterator (map, select, reverse, …): one pass, no len(), always truthy */
    JL_ITEMS,  /* dict_items */
    JL_KEYS,   /* dict_keys */
    JL_VALUES, /* dict_values */
    JL_RANGE,
} jinja_flavor;

typedef struct jinja_str jinja_str;
typedef struct jinja_list jinja_list;
typedef struct jinja_dict jinja_dict;
typedef struct jinja_func jinja_func;
typedef struct jinja_loop jinja_loop;
typedef struct jinja_undef jinja_undef;

typedef struct {
    uint8_t kind;   /* jinja_kind */
    uint8_t markup; /* JV_STR: markupsafe.Markup (from |safe / |escape): `+` escapes the other operand */
    union {
        int64_t i; /* JV_BOOL, JV_INT */
        double f;
        jinja_str *s;
        jinja_list *l;
        jinja_dict *d; /* JV_DICT, JV_NAMESPACE */
        jinja_func *fn;
        jinja_loop *loop;
        jinja_undef *u; /* JV_UNDEFINED: why (NULL = no detail) */
    } u;
} jv;

struct jinja_str {
    size_t len;  /* bytes */
    size_t ncp;  /* code points, or SIZE_MAX until counted */
    char data[]; /* UTF-8, NUL-terminated */
};

struct jinja_list {
    size_t n;
    size_t pos;       /* JL_ITER: items already consumed */
    uint8_t flavor;   /* jinja_flavor */
    int64_t range[3]; /* JL_RANGE: start, stop, step (for repr) */
    jv *items;
};

struct jinja_dict {
    size_t n, cap;
    jv *keys, *vals;
    uint32_t *index; /* open addressing over entry numbers (UINT32_MAX = empty), once n > 8; mask = size - 1 */
    uint32_t mask;
};

/* Why a value is undefined, for the error raised when it is used. */
struct jinja_undef {
    enum { JU_NAME, JU_ATTR, JU_ITEM, JU_HINT, JU_UNSAFE } why;
    const char *name; /* variable / attribute name, or the hint text */
    size_t name_len;
    jv item;            /* JU_ITEM: the missing key or index */
    uint8_t obj_kind;   /* JU_ATTR, JU_ITEM, JU_UNSAFE: the object's kind */
    uint8_t obj_flavor; /* … and flavor for lists */
};

/* Callables. */
typedef enum {
    JF_GLOBAL, /* id = global function number (jinja_methods.c) */
    JF_METHOD, /* id = method number, self = receiver */
    JF_MACRO,
    JF_CALLER,
    JF_UNSUPPORTED, /* a Python attribute hone does not implement: calling or printing it is an error */
} jinja_func_kind;

typedef struct jinja_node jinja_node;
typedef struct jinja_scope jinja_scope;

struct jinja_func {
    uint8_t kind; /* jinja_func_kind */
    int id;
    jv self;
    const jinja_node *node; /* JF_MACRO: the macro; JF_CALLER: the call block */
    jinja_scope *closure;   /* JF_MACRO, JF_CALLER: the scope they were defined in */
    const char *name;       /* for messages and repr */
};

struct jinja_loop {
    jinja_list *items; /* the (filtered) items, materialised */
    size_t index0;
    jv changed_last; /* loop.changed(): the last arguments, kind JV_UNDEFINED before the first call */
};

/* Constructors (values live in the arena). */
static inline jv jv_undefined(void) { return (jv){.kind = JV_UNDEFINED}; }
static inline jv jv_none(void) { return (jv){.kind = JV_NONE}; }
static inline jv jv_bool(int b) { return (jv){.kind = JV_BOOL, .u.i = b != 0}; }
static inline jv jv_int(int64_t i) { return (jv){.kind = JV_INT, .u.i = i}; }
static inline jv jv_float(double f) { return (jv){.kind = JV_FLOAT, .u.f = f}; }
static inline int jv_is_num(jv v) { return v.kind == JV_BOOL || v.kind == JV_INT || v.kind == JV_FLOAT; }
static inline int jv_is_int(jv v) { return v.kind == JV_BOOL || v.kind == JV_INT; }
static inline double jv_to_double(jv v) { return v.kind == JV_FLOAT ? v.u.f : (double)v.u.i; }

hone_status jv_str_new(jinja_arena *a, const char *s, size_t n, jv *out);
static inline hone_status jv_str_cstr(jinja_arena *a, const char *s, jv *out) {
    return jv_str_new(a, s, strlen(s), out);
}
/* A list of n items (copied from items when not NULL, otherwise zeroed) with the given flavor. */
hone_status jv_list_new(jinja_arena *a, size_t n, const jv *items, int flavor, jv *out);
hone_status jv_dict_new(jinja_arena *a, jv *out);
/* Sets d[key] = val (keeps the position of an existing key, like a Python dict); key must be hashable. */
hone_status jv_dict_set(jinja_arena *a, jinja_dict *d, jv key, jv val);
/* Index of key in d, or -1 (also for an unhashable key: callers that must report that call jv_hash first). */
long jv_dict_find(const jinja_dict *d, jv key);
/* d[name] for a string key, or NULL. */
const jv *jv_dict_get(const jinja_dict *d, const char *name, size_t len);

/* Code points of a string (cached). */
size_t jv_str_ncp(jinja_str *s);
/* Byte offset of code point k of s (k ≤ ncp). */
size_t jv_str_offset(jinja_str *s, size_t k);

/* Python type name ("str", "int", "NoneType", "list", "generator", "Undefined", …) for messages. */
const char *jv_type_name(jv v);
/* jinja2's object_type_repr: "dict object", "None", … */
const char *jv_object_repr_name(jv v);
/* Python truth value. */
int jv_truthy(jv v);

/* Growing output text, NUL-terminated; appends past `limit` bytes (0 = none) fail. */
typedef struct {
    tok_bytes b;
    size_t limit;
} jinja_buf;
hone_status jinja_buf_add(jinja_buf *o, const void *s, size_t n);
static inline hone_status jinja_buf_adds(jinja_buf *o, const char *s) { return jinja_buf_add(o, s, strlen(s)); }

/* str(v) and repr(v) appended to o. Callables without a stable repr and generators are HONE_ERR_UNSUPPORTED. */
hone_status jv_write_str(jinja_buf *o, jv v);
hone_status jv_write_repr(jinja_buf *o, jv v);
/* The text of o as a string value when st is HONE_OK; frees o either way and returns the status. */
hone_status jinja_buf_to_str(jinja_arena *a, jinja_buf *o, hone_status st, jv *out);
/* str(v) as a value (strings are returned as they are). */
hone_status jv_to_str(jinja_arena *a, jv v, jv *out);
/* markupsafe.escape(v): a Markup string stays as it is (unless force); anything else becomes its str() with
 * & < > " ' escaped, marked as Markup. */
hone_status jv_escape(jinja_arena *a, jv v, int force, jv *out);
/* Python repr of a float ("0.5", "1e+16", "inf"). buf holds at least 32 bytes; returns the length. */
int jv_format_float(double x, char *buf);

/* json.dumps(v, ensure_ascii, indent, separators, sort_keys) as transformers' tojson filter calls it.
 * indent: NULL = None, otherwise the indent string per level. */
typedef struct {
    int ensure_ascii, sort_keys;
    const char *indent;
    size_t indent_len;
    const char *item_sep, *key_sep; /* NULL: json's defaults for the indent */
    size_t item_sep_len, key_sep_len;
} jinja_json_opts;
hone_status jv_write_json(jinja_buf *o, jv v, const jinja_json_opts *opt);
/* A jansson value → a template value (objects keep their key order, as json.loads does). */
hone_status jv_from_json(jinja_arena *a, const json_t *j, jv *out);

/* Python ==; a ValueError-free total operation. */
int jv_equal(jv a, jv b);
/* Python <: sets *lt; comparing unorderable types is a TypeError (error set). */
hone_status jv_less(jv a, jv b, int *lt);
/* Python hash for dict keys and unique; unhashable values are a TypeError (error set). */
hone_status jv_hash(jv v, uint64_t *h);

/* ---- Unicode helpers (jinja_value.c) ---- */
int jinja_is_space(uint32_t cp); /* Python str.isspace() */
uint32_t jinja_upper(uint32_t cp);
uint32_t jinja_lower(uint32_t cp);
uint32_t jinja_title(uint32_t cp);
int jinja_is_cased(uint32_t cp); /* has upper/lower case (title-casing word boundaries) */
int jinja_is_alnum(uint32_t cp); /* str.isalnum() / regex \w without the underscore */
int jinja_is_alpha(uint32_t cp);
int jinja_is_digit(uint32_t cp);
/* Appends the UTF-8 form of cp. */
hone_status jinja_buf_add_cp(jinja_buf *o, uint32_t cp);
/* Next code point of valid UTF-8 at s[*i] (advances *i). */
uint32_t jinja_next_cp(const char *s, size_t *i);

/* ---- tokens (jinja_lexer.c) ---- */
typedef enum {
    JT_DATA,
    JT_VAR_BEGIN,
    JT_VAR_END,
    JT_BLOCK_BEGIN,
    JT_BLOCK_END,
    JT_NAME,
    JT_STRING,
    JT_INT,
    JT_FLOAT,
    JT_OP,
    JT_EOF,
} jinja_tok_kind;

/* Operators: JT_OP tokens carry one of these in `op`. */
enum {
    JO_ADD = 1,
    JO_SUB,
    JO_DIV,
    JO_FLOORDIV,
    JO_MUL,
    JO_MOD,
    JO_POW,
    JO_TILDE,
    JO_LBRACKET,
    JO_RBRACKET,
    JO_LPAREN,
    JO_RPAREN,
    JO_LBRACE,
    JO_RBRACE,
    JO_EQ,
    JO_NE,
    JO_GT,
    JO_GTEQ,
    JO_LT,
    JO_LTEQ,
    JO_ASSIGN,
    JO_DOT,
    JO_COLON,
    JO_PIPE,
    JO_COMMA,
    JO_SEMICOLON,
    /* comparison operators the parser adds */
    JO_IN,
    JO_NOTIN,
};

typedef struct {
    uint8_t kind; /* jinja_tok_kind */
    uint8_t op;   /* JT_OP */
    int line, col;
    const char *text; /* JT_DATA / JT_STRING: the value (decoded); JT_NAME: the name; otherwise the source text */
    size_t len;
    int64_t ival;
    double fval;
} jinja_token;

/* Tokens of the (already newline-normalised) source src[0..n); text pointers point into src or into `arena`.
 * Errors name `name`:line:column. */
hone_status jinja_lex(const char *name, const char *src, size_t n, jinja_arena *arena, jinja_token **out,
                      size_t *n_out);
/* The source as jinja2 reads it: \r\n and \r become \n, and one trailing newline is dropped
 * (keep_trailing_newline=False). Returns an arena copy. */
hone_status jinja_normalize_source(jinja_arena *arena, const char *src, size_t n, char **out, size_t *n_out);

/* ---- syntax tree (jinja_parser.c) ---- */
typedef enum {
    /* statements */
    JN_BODY,         /* list: statements */
    JN_DATA,         /* text, len */
    JN_OUTPUT,       /* a: expression */
    JN_IF,           /* list: conditions, list2: bodies (JN_BODY), c: else body or NULL */
    JN_FOR,          /* a: target, b: iterable, c: filter condition or NULL, d: body, e: else body or NULL */
    JN_SET,          /* a: target, b: value */
    JN_SET_BLOCK,    /* a: target, b: filter chain (innermost input NULL) or NULL, d: body */
    JN_MACRO,        /* text: name, sym, list: parameters (JN_NAME), list2: defaults of the last n2, d: body */
    JN_CALL_BLOCK,   /* list / list2: caller parameters / defaults, a: the call (JN_CALL), d: body */
    JN_FILTER_BLOCK, /* a: filter chain (innermost input NULL), d: body */
    JN_WITH,         /* list: targets, list2: values, d: body */
    JN_BREAK,
    JN_CONTINUE,
    JN_GENERATION, /* d: body */
    /* expressions */
    JN_CONST,   /* value */
    JN_NAME,    /* text, sym */
    JN_GETATTR, /* a: object, text: attribute */
    JN_GETITEM, /* a: object, b: key (JN_SLICE for slices) */
    JN_SLICE,   /* a, b, c: start, stop, step (NULL when left out) */
    JN_CALL,    /* a: callee, list: arguments, list2: keyword arguments (JN_KEYWORD) */
    JN_KEYWORD, /* text: name (NUL-terminated), a: value */
    JN_FILTER,  /* a: input (NULL in filter blocks), text: name, op: filter id (-1 unknown), list, list2: arguments */
    JN_TEST,    /* a: input, text: name, op: test id (-1 unknown), list, list2: arguments */
    JN_BINOP,   /* op: JO_ADD … JO_POW, a, b */
    JN_CONCAT,  /* list */
    JN_COMPARE, /* a: first operand, list: JN_OPERAND (op, a) */
    JN_OPERAND,
    JN_AND, /* a, b */
    JN_OR,
    JN_NOT, /* a */
    JN_NEG,
    JN_POS,
    JN_COND,  /* a: condition, b: value if true, c: value if false or NULL */
    JN_LIST,  /* list */
    JN_TUPLE, /* list */
    JN_DICT,  /* list: keys, list2: values */
    JN_NSREF, /* assignment target ns.attr: sym: the namespace variable, text: the attribute */
} jinja_node_kind;

struct jinja_node {
    uint8_t kind;
    int8_t op;
    uint16_t height; /* expressions: 1 + the tallest child (evaluation recurses this deep) */
    int line, col;
    jinja_node *a, *b, *c, *d, *e;
    jinja_node **list, **list2;
    size_t n, n2;
    const char *text;
    size_t len;
    int sym; /* symbol number of a name (JN_NAME, JN_MACRO, JN_NSREF) */
    jv value;
    uint8_t uses_varargs, uses_kwargs, uses_caller; /* JN_MACRO: what the body refers to */
};

/* Special names the parser interns first, so their symbol numbers are fixed. */
enum { JS_LOOP, JS_VARARGS, JS_KWARGS, JS_CALLER, JS_FIXED };

/* A compiled template: its syntax tree and symbol table. Immutable: many threads may render it at once. */
typedef struct {
    char *name;        /* for messages */
    jinja_arena arena; /* nodes, tokens' text, the normalised source */
    jinja_node *root;  /* JN_BODY */
    const char **syms; /* symbol number → name */
    size_t *sym_lens;
    size_t n_syms;
} jinja_template;

/* Compiles src[0..n) (UTF-8). Syntax errors are HONE_ERR_FORMAT naming name:line:column and the offending text;
 * unsupported statements (include, extends, …) are HONE_ERR_UNSUPPORTED. */
hone_status jinja_compile(jinja_template **out, const char *name, const char *src, size_t n);
void jinja_template_free(jinja_template *t);

/* ---- rendering (jinja_eval.c) ---- */
typedef struct {
    size_t max_output;  /* bytes of rendered text */
    size_t max_memory;  /* bytes of values (the render arena) */
    uint64_t max_steps; /* evaluated nodes and loop iterations */
    int max_depth;      /* nested macro / caller calls */
} jinja_limits;
extern const jinja_limits jinja_default_limits;

typedef hone_text_span jinja_span; /* byte offsets into the rendered text */

typedef struct jinja_render jinja_render;

/* Renders t with the variables in `vars` (a JV_DICT whose values live in `arena`, which the caller created and
 * frees after using the output). now = Unix time for strftime_now. *text is malloc'd (free()), NUL-terminated.
 * spans: the {% generation %} blocks, as transformers' return_assistant_tokens_mask records them (NULL = not
 * wanted). Runtime errors carry "line L:C: " and the reason; raise_exception() is HONE_ERR_INVALID with the
 * template's own message. */
hone_status jinja_render_template(const jinja_template *t, jinja_arena *arena, jv vars, int64_t now,
                                  const jinja_limits *limits, char **text, size_t *len, jinja_span **spans,
                                  size_t *n_spans);

/* ---- evaluator services used by filters and methods ---- */
jinja_arena *jinja_render_arena(jinja_render *r);
/* An empty text buffer limited to the render's max_output: for text built from template values. */
jinja_buf jinja_render_buffer(jinja_render *r);
/* Python getattr / getitem with the sandbox's rules (jinja2 SandboxedEnvironment.getattr / getitem). */
hone_status jinja_getattr(jinja_render *r, jv obj, const char *name, size_t len, jv *out);
hone_status jinja_getitem(jinja_render *r, jv obj, jv key, jv *out);
/* Undefined values that explain themselves: a missing attribute of obj, or a hint (a static string). */
hone_status jinja_undefined_attr(jinja_render *r, jv obj, const char *name, size_t len, jv *out);
hone_status jinja_undefined_hint(jinja_render *r, const char *hint, jv *out);
/* The items a for loop / list() / join see when iterating v (dict → keys, str → characters, undefined → none);
 * consumes a generator. Non-iterables are a TypeError. */
hone_status jinja_iterate(jinja_render *r, jv v, jv **items, size_t *n);
/* Python `a in b`. */
hone_status jinja_contains(jv container, jv item, int *result);
/* The error for using an undefined value (UndefinedError, or SecurityError for unsafe attributes). */
hone_status jinja_undefined_error(jv v);
/* Python `%` string formatting (jinja_format.c: str % args and the format filter); markup: the format string is Markup,
 * whose % escapes what %s and %r insert and gives Markup. */
hone_status jinja_percent_format(jinja_render *r, jinja_str *fmt, int markup, jv args, jv *out);
/* strftime_now's time. */
int64_t jinja_render_now(jinja_render *r);

/* Argument binding for builtins: fills vals[0..n_names) from positional then keyword arguments (JV_UNDEFINED
 * with u.u == NULL marks "not given"); extra or unknown arguments are a TypeError naming `fname`. */
typedef struct {
    const jv *args;
    size_t n_args;
    const char *const *kw_names;
    const jv *kw_vals;
    size_t n_kw;
} jinja_args;
hone_status jinja_bind(const char *fname, const jinja_args *in, const char *const *names, size_t n_names,
                       size_t n_required, jv *vals);
/* Binds `args` (a const jinja_args *) to the parameter names given into `jv p[]`, the first n_required required. */
#define JINJA_BIND(fname, n_required, ...)                                                                             \
    static const char *const bind_names[] = {__VA_ARGS__};                                                             \
    jv p[sizeof bind_names / sizeof bind_names[0]];                                                                    \
    HONE_TRY(jinja_bind(fname, args, bind_names, sizeof bind_names / sizeof bind_names[0], n_required, p))
static inline int jv_given(jv v) { return !(v.kind == JV_UNDEFINED && v.u.u == NULL); }

/* Python binary operators (JO_ADD … JO_POW) and comparisons (JO_EQ … JO_LTEQ, JO_IN, JO_NOTIN). */
hone_status jinja_binop(jinja_render *r, int op, jv a, jv b, jv *out);
hone_status jinja_compare(jinja_render *r, int op, jv a, jv b, int *result);

/* ---- str helpers shared by filters and methods (jinja_methods.c) ---- */
enum { JC_UPPER, JC_LOWER, JC_CAPITALIZE, JC_TITLE, JC_SWAPCASE };
/* str.strip / lstrip / rstrip: chars is JV_NONE (whitespace) or a string of characters to remove. */
hone_status jinja_str_strip(jinja_render *r, jinja_str *s, jv chars, int left, int right, jv *out);
/* Python's full uppercase (title = 0) or titlecase (1) of c where it is not one character (ß → SS), else NULL. */
const char *jinja_special_upper(uint32_t c, int title);
/* upper(), lower(), capitalize(), title() (Python's str.title), swapcase(). */
hone_status jinja_str_case(jinja_render *r, jinja_str *s, int mode, jv *out);
hone_status jinja_str_replace(jinja_render *r, jinja_str *s, jinja_str *old, jinja_str *rep, int64_t count, jv *out);
/* str.splitlines(keepends): a list of strings. */
hone_status jinja_str_splitlines(jinja_render *r, jinja_str *s, int keepends, jv *out);
/* str.islower() (upper = 0) / str.isupper() (upper = 1). */
int jinja_str_is_case(jinja_str *s, int upper);
/* str.center / ljust / rjust(width, fill): where 0 = center, 1 = ljust, 2 = rjust; fill NULL = a space. */
hone_status jinja_str_pad(jinja_render *r, jinja_str *s, int64_t width, jinja_str *fill, int where, jv *out);

/* ---- filters and tests (jinja_filters.c), globals (jinja_globals.c), methods (jinja_methods.c) ---- */
int jinja_filter_id(const char *name, size_t len); /* -1 when jinja2 has no such filter */
int jinja_test_id(const char *name, size_t len);   /* -1 when jinja2 has no such test */
hone_status jinja_apply_filter(jinja_render *r, int id, jv value, const jinja_args *args, jv *out);
hone_status jinja_apply_test(jinja_render *r, int id, jv value, const jinja_args *args, int *result);

/* Global functions: id by name (-1 = not a global). */
int jinja_global_id(const char *name, size_t len);
const char *jinja_global_name(int id);
hone_status jinja_call_global(jinja_render *r, int id, const jinja_args *args, jv *out);
/* The method `name` of a str / dict / list / tuple / number: *found = 0 when Python has no such attribute;
 * a Python method hone lacks yields a JF_UNSUPPORTED function, a mutating one an unsafe undefined. */
hone_status jinja_method_lookup(jinja_render *r, jv self, const char *name, size_t len, jv *out, int *found);
hone_status jinja_call_method(jinja_render *r, const jinja_func *fn, const jinja_args *args, jv *out);

#endif
