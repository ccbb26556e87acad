/* Python's printf-style string formatting, `str % args` and the format filter: %s %r %a %d %i %u %x %X %o %e %E
 * %f %F %g %G %c %% with flags (-+ #0), width and precision (numbers or *), and %(key)s with a mapping. */
#include <stdio.h>
#include <stdlib.h>

#include "tokenizer/jinja.h"

static hone_status fmt_int(jinja_buf *o, int64_t v, char conv, const char *flags, int width, int prec) {
    int left = strchr(flags, '-') != NULL, zero = strchr(flags, '0') != NULL && !left, alt = strchr(flags, '#') != NULL;
    char sign[2] = {0};
    if (v < 0)
        sign[0] = '-';
    else if (strchr(flags, '+'))
        sign[0] = '+';
    else if (strchr(flags, ' '))
        sign[0] = ' ';
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    char digits[80];
    int nd = conv == 'x'   ? snprintf(digits, sizeof digits, "%llx", (unsigned long long)u)
             : conv == 'X' ? snprintf(digits, sizeof digits, "%llX", (unsigned long long)u)
             : conv == 'o' ? snprintf(digits, sizeof digits, "%llo", (unsigned long long)u)
                           : snprintf(digits, sizeof digits, "%llu", (unsigned long long)u);
    const char *prefix = alt && conv == 'x' ? "0x" : alt && conv == 'X' ? "0X" : alt && conv == 'o' ? "0o" : "";
    int body = nd > prec ? nd : prec;
    int total = (int)strlen(sign) + (int)strlen(prefix) + body;
    int pad = width > total ? width - total : 0;
    if (!left && !zero)
        for (int i = 0; i < pad; i++) HONE_TRY(jinja_buf_add(o, " ", 1));
    HONE_TRY(jinja_buf_adds(o, sign));
    HONE_TRY(jinja_buf_adds(o, prefix));
    if (zero)
        for (int i = 0; i < pad; i++) HONE_TRY(jinja_buf_add(o, "0", 1));
    for (int i = nd; i < prec; i++) HONE_TRY(jinja_buf_add(o, "0", 1));
    HONE_TRY(jinja_buf_add(o, digits, (size_t)nd));
    if (left)
        for (int i = 0; i < pad; i++) HONE_TRY(jinja_buf_add(o, " ", 1));
    return HONE_OK;
}

/* Pads or truncates a str conversion by code points. */
static hone_status fmt_text(jinja_buf *o, const char *s, size_t n, int left, int width, int prec) {
    size_t cut = n, k = 0;
    if (prec >= 0) {
        size_t i = 0;
        while (i < n && (int)k < prec) {
            jinja_next_cp(s, &i);
            k++;
        }
        cut = i;
    }
    size_t chars = 0;
    for (size_t i = 0; i < cut;) {
        jinja_next_cp(s, &i);
        chars++;
    }
    int pad = width > (int)chars ? width - (int)chars : 0;
    if (!left)
        for (int i = 0; i < pad; i++) HONE_TRY(jinja_buf_add(o, " ", 1));
    HONE_TRY(jinja_buf_add(o, s, cut));
    if (left)
        for (int i = 0; i < pad; i++) HONE_TRY(jinja_buf_add(o, " ", 1));
    return HONE_OK;
}

hone_status jinja_percent_format(jinja_render *r, jinja_str *fmt, int markup, jv args, jv *out) {
    const jv *pos = &args;
    size_t n_pos = 1, next = 0;
    if (args.kind == JV_LIST && args.u.l->flavor == JL_TUPLE) {
        pos = args.u.l->items;
        n_pos = args.u.l->n;
    }
    const jinja_dict *mapping = args.kind == JV_DICT ? args.u.d : NULL;
    jinja_buf o = jinja_render_buffer(r);
    hone_status st = HONE_OK;
    const char *s = fmt->data;
    size_t n = fmt->len, i = 0;
    int used_mapping = 0;
    while (i < n && st == HONE_OK) {
        if (s[i] != '%') {
            size_t j = i;
            while (j < n && s[j] != '%') j++;
            st = jinja_buf_add(&o, s + i, j - i);
            i = j;
            continue;
        }
        i++;
        jv arg = jv_none();
        int have_arg = 0;
        if (i < n && s[i] == '(') {
            size_t depth = 1, k = ++i;
            while (k < n && depth) depth += s[k] == '(' ? 1 : s[k] == ')' ? -1 : 0, k++;
            if (depth) {
                st = hone_errorf(HONE_ERR_INVALID, "incomplete format key");
                break;
            }
            if (!mapping) {
                st = hone_errorf(HONE_ERR_INVALID, "format requires a mapping");
                break;
            }
            const jv *v = jv_dict_get(mapping, s + i, k - 1 - i);
            if (!v) {
                st = hone_errorf(HONE_ERR_INVALID, "KeyError: '%.*s'", (int)(k - 1 - i), s + i);
                break;
            }
            arg = *v;
            have_arg = used_mapping = 1;
            i = k;
        }
        char flags[8] = {0};
        int nf = 0;
        while (i < n && strchr("-+ #0", s[i]) && nf < 7) flags[nf++] = s[i++];
        int width = 0, prec = -1;
        for (int part = 0; part < 2 && st == HONE_OK; part++) {
            if (part == 1) {
                if (i >= n || s[i] != '.') break;
                i++;
                prec = 0;
            }
            int *dst = part ? &prec : &width;
            if (i < n && s[i] == '*') {
                i++;
                if (next >= n_pos) {
                    st = hone_errorf(HONE_ERR_INVALID, "not enough arguments for format string");
                    break;
                }
                jv w = pos[next++];
                if (!jv_is_int(w)) {
                    st = hone_errorf(HONE_ERR_INVALID, "* wants int");
                    break;
                }
                *dst = (int)(w.u.i > 1 << 20 ? 1 << 20 : w.u.i < -(1 << 20) ? -(1 << 20) : w.u.i);
                if (!part && *dst < 0) {
                    flags[nf < 7 ? nf++ : 6] = '-';
                    *dst = -*dst;
                }
            } else
                while (i < n && s[i] >= '0' && s[i] <= '9') {
                    int d = s[i++] - '0';
                    if (*dst <= 1 << 24) *dst = *dst * 10 + d;
                }
            if (*dst > 1 << 24) st = hone_errorf(HONE_ERR_INVALID, "a format width or precision is too large");
        }
        if (st != HONE_OK) break;
        while (i < n && (s[i] == 'h' || s[i] == 'l' || s[i] == 'L')) i++;
        if (i >= n) {
            st = hone_errorf(HONE_ERR_INVALID, "incomplete format");
            break;
        }
        char conv = s[i++];
        if (conv == '%') {
            st = jinja_buf_add(&o, "%", 1);
            continue;
        }
        if (!have_arg) {
            if (next >= n_pos) {
                st = hone_errorf(HONE_ERR_INVALID, "not enough arguments for format string");
                break;
            }
            arg = pos[next++];
        }
        int left = strchr(flags, '-') != NULL;
        switch (conv) {
            case 's':
            case 'r':
            case 'a': {
                jinja_buf t = jinja_render_buffer(r);
                st = conv == 's' ? jv_write_str(&t, arg) : jv_write_repr(&t, arg);
                jv text = {0};
                if (st == HONE_OK) st = jv_str_new(jinja_render_arena(r), t.b.v ? t.b.v : "", t.b.n, &text);
                free(t.b.v);
                /* Markup % escapes what it inserts, unless that is Markup itself (its str, not its repr) */
                text.markup = conv == 's' && arg.kind == JV_STR && arg.markup;
                if (st == HONE_OK && markup) st = jv_escape(jinja_render_arena(r), text, 0, &text);
                if (st == HONE_OK) st = fmt_text(&o, text.u.s->data, text.u.s->len, left, width, prec);
                break;
            }
            case 'd':
            case 'i':
            case 'u':
            case 'x':
            case 'X':
            case 'o': {
                int64_t v = 0;
                if (jv_is_int(arg))
                    v = arg.u.i;
                else if (arg.kind == JV_FLOAT && (conv == 'd' || conv == 'i' || conv == 'u')) {
                    if (!(arg.u.f > -9.2e18 && arg.u.f < 9.2e18)) {
                        st = hone_errorf(HONE_ERR_UNSUPPORTED, "%%%c format: the value does not fit in 64 bits", conv);
                        break;
                    }
                    v = (int64_t)arg.u.f;
                } else {
                    st = hone_errorf(HONE_ERR_INVALID, "%%%c format: %s is required, not %s", conv,
                                     conv == 'x' || conv == 'X' || conv == 'o' ? "an integer" : "a real number",
                                     jv_type_name(arg));
                    break;
                }
                st = fmt_int(&o, v, conv == 'i' || conv == 'u' ? 'd' : conv, flags, width, prec < 0 ? 1 : prec);
                break;
            }
            case 'e':
            case 'E':
            case 'f':
            case 'F':
            case 'g':
            case 'G': {
                if (!jv_is_num(arg)) {
                    st = hone_errorf(HONE_ERR_INVALID, "must be real number, not %s", jv_type_name(arg));
                    break;
                }
                char cfmt[32], num[1100];
                snprintf(cfmt, sizeof cfmt, "%%%s%d.%d%c", flags, width,
                         prec < 0      ? 6
                         : prec > 1000 ? 1000
                                       : prec,
                         conv);
                int k = jinja_snprintf_c(num, sizeof num, cfmt, jv_to_double(arg));
                st = jinja_buf_add(&o, num, k < 0 ? 0 : (size_t)k < sizeof num ? (size_t)k : sizeof num - 1);
                break;
            }
            case 'c': {
                jinja_buf t = jinja_render_buffer(r);
                if (jv_is_int(arg) && arg.u.i >= 0 && arg.u.i <= 0x10FFFF && !(arg.u.i >= 0xD800 && arg.u.i <= 0xDFFF))
                    st = jinja_buf_add_cp(&t, (uint32_t)arg.u.i);
                else if (arg.kind == JV_STR && jv_str_ncp(arg.u.s) == 1)
                    st = jinja_buf_add(&t, arg.u.s->data, arg.u.s->len);
                else
                    st = hone_errorf(HONE_ERR_INVALID, "%%c requires int or char");
                if (st == HONE_OK) st = fmt_text(&o, t.b.v, t.b.n, left, width, -1);
                free(t.b.v);
                break;
            }
            default:
                st = hone_errorf(HONE_ERR_INVALID, "unsupported format character '%c' (0x%x) at index %zu", conv,
                                 (unsigned)(uint8_t)conv, i - 1);
        }
    }
    /* Python skips this check when the argument is a mapping: anything with __getitem__ but a tuple or a str */
    int mapping_like = args.kind == JV_DICT || args.kind == JV_UNDEFINED ||
                       (args.kind == JV_LIST && (args.u.l->flavor == JL_LIST || args.u.l->flavor == JL_RANGE));
    if (st == HONE_OK && next < n_pos && !mapping_like && !used_mapping)
        st = hone_errorf(HONE_ERR_INVALID, "not all arguments converted during string formatting");
    HONE_TRY(jinja_buf_to_str(jinja_render_arena(r), &o, st, out));
    out->markup = (uint8_t)markup;
    return HONE_OK;
}
