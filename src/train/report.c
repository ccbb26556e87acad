/* report.html: a self-contained page (inline SVG, no scripts) with the curves of metrics.jsonl and the resolved
 * settings; and the SVG line chart it is drawn with, for any caller that wants one. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hone/train.h"

void hone_html_escape(FILE *out, const char *text) {
    for (const char *p = text; *p; p++) {
        switch (*p) {
        case '&': fputs("&amp;", out); break;
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '"': fputs("&quot;", out); break;
        default: fputc(*p, out);
        }
    }
}

/* A step of 1, 2 or 5 × 10^k that cuts `range` into about `n` intervals. */
static double nice_step(double range, int n) {
    double raw = range / n, mag = pow(10, floor(log10(raw))), f = raw / mag;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * mag;
}

typedef struct {
    double lo, hi;
} span;

/* The finite range of x (or y) over every series; lo > hi when there is no finite point. */
static span data_span(const hone_chart *c, int of_y) {
    span s = {INFINITY, -INFINITY};
    for (size_t k = 0; k < c->n_series; k++)
        for (size_t i = 0; i < c->series[k].n; i++) {
            double x = c->series[k].x[i], y = c->series[k].y[i];
            if (!isfinite(x) || !isfinite(y)) continue;
            double v = of_y ? y : x;
            s.lo = v < s.lo ? v : s.lo;
            s.hi = v > s.hi ? v : s.hi;
        }
    return s;
}

/* Widens a span to whole ticks (a flat span gets room around it). */
static span tick_span(span s, double *step) {
    if (s.hi <= s.lo) {
        double pad = s.lo != 0 ? fabs(s.lo) * 0.05 : 0.5;
        s.lo -= pad;
        s.hi += pad;
    }
    *step = nice_step(s.hi - s.lo, 5);
    return (span){floor(s.lo / *step) * *step, ceil(s.hi / *step) * *step};
}

hone_status hone_svg_line_chart(FILE *out, const hone_chart *c) {
    const int W = c->width > 0 ? c->width : 640, H = c->height > 0 ? c->height : 300;
    const double left = 70, right = 16, top = 30, bottom = 42, pw = W - left - right, ph = H - top - bottom;
    fprintf(out, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                 "font-family=\"sans-serif\" font-size=\"11\" role=\"img\" aria-label=\"", W, H, W, H);
    hone_html_escape(out, c->title ? c->title : "chart");
    fprintf(out, "\">\n<text x=\"%g\" y=\"18\" font-size=\"14\" font-weight=\"bold\">", left);
    hone_html_escape(out, c->title ? c->title : "");
    fprintf(out, "</text>\n<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" fill=\"none\" stroke=\"#999\"/>\n", left,
            top, pw, ph);
    span xs = data_span(c, 0), ys = data_span(c, 1);
    if (xs.lo > xs.hi) {
        fprintf(out, "<text x=\"%g\" y=\"%g\" text-anchor=\"middle\" fill=\"#777\">no data</text>\n</svg>\n",
                left + pw / 2, top + ph / 2);
        return ferror(out) ? hone_errorf(HONE_ERR_IO, "cannot write the chart") : HONE_OK;
    }
    double xstep, ystep;
    xs = tick_span(xs, &xstep);
    ys = tick_span(ys, &ystep);
#define PX(v) (left + ((v) - xs.lo) / (xs.hi - xs.lo) * pw)
#define PY(v) (top + ph - ((v) - ys.lo) / (ys.hi - ys.lo) * ph)
    for (double t = xs.lo; t <= xs.hi + xstep * 1e-9; t += xstep)
        fprintf(out, "<line x1=\"%.1f\" y1=\"%g\" x2=\"%.1f\" y2=\"%g\" stroke=\"#eee\"/><text x=\"%.1f\" y=\"%g\" "
                     "text-anchor=\"middle\">%.6g</text>\n", PX(t), top, PX(t), top + ph, PX(t), top + ph + 14,
                fabs(t) < xstep * 1e-9 ? 0.0 : t);
    for (double t = ys.lo; t <= ys.hi + ystep * 1e-9; t += ystep)
        fprintf(out, "<line x1=\"%g\" y1=\"%.1f\" x2=\"%g\" y2=\"%.1f\" stroke=\"#eee\"/><text x=\"%g\" y=\"%.1f\" "
                     "text-anchor=\"end\">%.6g</text>\n", left, PY(t), left + pw, PY(t), left - 4, PY(t) + 4,
                fabs(t) < ystep * 1e-9 ? 0.0 : t);
    fprintf(out, "<text x=\"%g\" y=\"%d\" text-anchor=\"middle\">", left + pw / 2, H - 6);
    hone_html_escape(out, c->x_label ? c->x_label : "");
    fprintf(out, "</text>\n<text transform=\"translate(14 %g) rotate(-90)\" text-anchor=\"middle\">", top + ph / 2);
    hone_html_escape(out, c->y_label ? c->y_label : "");
    fputs("</text>\n", out);
    for (size_t k = 0; k < c->n_series; k++) {
        const hone_chart_series *s = &c->series[k];
        /* one polyline per run of finite points: a NaN is a gap, not a drop to zero */
        int open = 0;
        for (size_t i = 0; i < s->n; i++) {
            const int finite = isfinite(s->x[i]) && isfinite(s->y[i]);
            if (finite && !open)
                fprintf(out, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"", s->color);
            if (finite) fprintf(out, "%.1f,%.1f ", PX(s->x[i]), PY(s->y[i]));
            if (!finite && open) fputs("\"/>\n", out);
            open = finite;
        }
        if (open) fputs("\"/>\n", out);
        if (s->n <= 40)
            for (size_t i = 0; i < s->n; i++)
                if (isfinite(s->x[i]) && isfinite(s->y[i]))
                    fprintf(out, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"/>\n", PX(s->x[i]),
                            PY(s->y[i]), s->color);
        const double ly = top + 14 + 14 * (double)k;
        fprintf(out, "<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"%s\" stroke-width=\"2\"/><text x=\"%g\" "
                     "y=\"%g\" text-anchor=\"end\">", left + pw - 30, ly - 4, left + pw - 8, ly - 4, s->color,
                left + pw - 34, ly);
        hone_html_escape(out, s->name ? s->name : "");
        fputs("</text>\n", out);
    }
#undef PX
#undef PY
    fputs("</svg>\n", out);
    return ferror(out) ? hone_errorf(HONE_ERR_IO, "cannot write the chart") : HONE_OK;
}

/* Bars of equal width over the finite values' range (ticks as the line chart's), the count on the y axis. Declared
 * in hone/select.h, whose report draws it. */
hone_status hone_svg_histogram(FILE *out, const hone_histogram *h) {
    const int W = h->width > 0 ? h->width : 640, H = h->height > 0 ? h->height : 260;
    const int bins = h->bins > 0 ? h->bins : 30;
    span xs = {INFINITY, -INFINITY};
    for (size_t i = 0; i < h->n; i++)
        if (isfinite(h->values[i])) {
            xs.lo = h->values[i] < xs.lo ? h->values[i] : xs.lo;
            xs.hi = h->values[i] > xs.hi ? h->values[i] : xs.hi;
        }
    size_t *counts = calloc((size_t)bins, sizeof *counts), top = 1;
    if (!counts) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    const span raw = xs;
    double xstep = 1;
    if (xs.lo <= xs.hi) {
        xs = tick_span(raw, &xstep); /* what the line chart makes of the corners below */
        for (size_t i = 0; i < h->n; i++) {
            if (!isfinite(h->values[i])) continue;
            int b = (int)((h->values[i] - xs.lo) / (xs.hi - xs.lo) * bins);
            b = b < 0 ? 0 : b >= bins ? bins - 1 : b;
            top = ++counts[b] > top ? counts[b] : top;
        }
    }
    /* the outline, axes and labels are the line chart's: drawn by it from two invisible corner points */
    const double corner_x[2] = {raw.lo, raw.hi}, corner_y[2] = {0, (double)top};
    const hone_chart_series frame = {"", corner_x, corner_y, xs.lo <= xs.hi ? 2 : 0, "none"};
    const hone_chart c = {h->title, h->x_label, "count", &frame, 1, W, H};
    char *svg = NULL;
    size_t svg_size = 0;
    FILE *mem = open_memstream(&svg, &svg_size);
    hone_status st = mem ? hone_svg_line_chart(mem, &c) : hone_errorf(HONE_ERR_NOMEM, "out of memory");
    if (mem) fclose(mem);
    if (st == HONE_OK && xs.lo <= xs.hi) {
        /* the same mapping as the line chart: its plot area, and its y range widened to whole ticks */
        const double left = 70, right = 16, plot_top = 30, bottom = 42;
        const double pw = W - left - right, ph = H - plot_top - bottom;
        double ystep;
        const span ys = tick_span((span){0, (double)top}, &ystep);
        const size_t closing = svg_size - strlen("</svg>\n");
        fwrite(svg, 1, closing, out);
        for (int b = 0; b < bins; b++) {
            if (!counts[b]) continue;
            const double x0 = left + (double)b / bins * pw, bar_h = ((double)counts[b] - ys.lo) / (ys.hi - ys.lo) * ph;
            fprintf(out,
                    "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"><title>%zu</title></rect>\n",
                    x0, plot_top + ph - bar_h, pw / bins - 1 > 1 ? pw / bins - 1 : 1, bar_h,
                    h->color ? h->color : "#1f77b4", counts[b]);
        }
        fputs("</svg>\n", out);
    } else if (st == HONE_OK) {
        fwrite(svg, 1, svg_size, out);
    }
    free(svg);
    free(counts);
    return st == HONE_OK && ferror(out) ? hone_errorf(HONE_ERR_IO, "cannot write the histogram") : st;
}

/* ---- report.html ---------------------------------------------------------------------------------------------- */

typedef struct {
    double *v;
    size_t n, cap;
} column;

static int push(column *c, double v) {
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 256;
        double *grown = realloc(c->v, cap * sizeof *grown);
        if (!grown) return 0;
        c->v = grown;
        c->cap = cap;
    }
    c->v[c->n++] = v;
    return 1;
}

static double field(const json_t *line, const char *key) {
    const json_t *v = json_object_get(line, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

enum { STEP, LOSS, LR, TPS, MEM, TOKENS, ELAPSED, EVAL_STEP, EVAL_LOSS, N_COLUMNS };

/* The columns of metrics.jsonl: step lines (with "loss") and eval lines (with "eval_loss"). */
static hone_status read_metrics(const char *path, column *cols) {
    char *text;
    size_t size;
    HONE_TRY(hone_file_read(path, &text, &size));
    int ok = 1;
    for (char *line = text, *end; ok && line < text + size; line = end + 1) {
        end = strchr(line, '\n');
        if (!end) end = text + size;
        json_t *obj = json_loadb(line, (size_t)(end - line), 0, NULL);
        if (!obj) continue;
        if (json_object_get(obj, "eval_loss"))
            ok = push(&cols[EVAL_STEP], field(obj, "step")) && push(&cols[EVAL_LOSS], field(obj, "eval_loss"));
        else if (json_object_get(obj, "loss"))
            ok = push(&cols[STEP], field(obj, "step")) && push(&cols[LOSS], field(obj, "loss")) &&
                 push(&cols[LR], field(obj, "learning_rate")) && push(&cols[TPS], field(obj, "tokens_per_second")) &&
                 push(&cols[MEM], field(obj, "peak_memory_mb")) && push(&cols[TOKENS], field(obj, "tokens")) &&
                 push(&cols[ELAPSED], field(obj, "elapsed_seconds"));
        json_decref(obj);
    }
    free(text);
    return ok ? HONE_OK : hone_errorf(HONE_ERR_NOMEM, "%s: out of memory", path);
}

static double last_finite(const column *c) {
    for (size_t i = c->n; i-- > 0;)
        if (isfinite(c->v[i])) return c->v[i];
    return NAN;
}

static void chart(FILE *out, const char *heading, const char *title, const char *y_label,
                  const hone_chart_series *series, size_t n) {
    fprintf(out, "<h2>%s</h2>\n", heading);
    hone_chart c = {.title = title, .x_label = "optimizer step", .y_label = y_label, .series = series, .n_series = n};
    hone_svg_line_chart(out, &c);
}

static void summary_row(FILE *out, const char *name, const char *fmt, double v) {
    fprintf(out, "<tr><th>%s</th><td>", name);
    if (isfinite(v)) fprintf(out, fmt, v);
    else fputs("&ndash;", out);
    fputs("</td></tr>\n", out);
}

static void write_page(FILE *out, const char *output_dir, const column *cols, const char *config_json) {
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>hone training report</title>\n"
          "<style>body{font-family:sans-serif;max-width:980px;margin:2em auto;color:#222}"
          "table{border-collapse:collapse}th,td{padding:3px 12px;text-align:left;border-bottom:1px solid #eee}"
          "pre{background:#f6f6f6;padding:1em;overflow:auto}svg{display:block;margin:0.5em 0 1.5em}</style>\n"
          "</head>\n<body>\n<h1>Training report</h1>\n<p>",
          out);
    hone_html_escape(out, output_dir);
    fputs("</p>\n<table>\n", out);
    double tokens = 0, seconds = last_finite(&cols[ELAPSED]);
    for (size_t i = 0; i < cols[TOKENS].n; i++) tokens += isfinite(cols[TOKENS].v[i]) ? cols[TOKENS].v[i] : 0;
    summary_row(out, "optimizer steps", "%.0f", last_finite(&cols[STEP]));
    summary_row(out, "first loss", "%.4f", cols[LOSS].n ? cols[LOSS].v[0] : NAN);
    summary_row(out, "last loss", "%.4f", last_finite(&cols[LOSS]));
    summary_row(out, "last eval loss", "%.4f", last_finite(&cols[EVAL_LOSS]));
    summary_row(out, "tokens trained", "%.0f", tokens);
    summary_row(out, "training time (s)", "%.1f", seconds);
    summary_row(out, "mean tokens/s", "%.0f", seconds > 0 ? tokens / seconds : NAN);
    summary_row(out, "peak memory (MiB)", "%.1f", last_finite(&cols[MEM]));
    fputs("</table>\n", out);
    const hone_chart_series loss[] = {
        {"training loss", cols[STEP].v, cols[LOSS].v, cols[STEP].n, "#1f77b4"},
        {"eval loss", cols[EVAL_STEP].v, cols[EVAL_LOSS].v, cols[EVAL_STEP].n, "#d62728"},
    };
    chart(out, "Loss", "loss (mean NLL per target token)", "loss", loss, cols[EVAL_STEP].n ? 2 : 1);
    const hone_chart_series lr = {"learning rate", cols[STEP].v, cols[LR].v, cols[STEP].n, "#2ca02c"};
    chart(out, "Learning rate", "learning rate", "learning rate", &lr, 1);
    const hone_chart_series tps = {"tokens/s", cols[STEP].v, cols[TPS].v, cols[STEP].n, "#9467bd"};
    chart(out, "Throughput", "tokens per second", "tokens/s", &tps, 1);
    const hone_chart_series mem = {"peak memory", cols[STEP].v, cols[MEM].v, cols[STEP].n, "#8c564b"};
    chart(out, "Memory", "peak resident memory", "MiB", &mem, 1);
    fputs("<h2>Configuration</h2>\n<pre>", out);
    json_t *cfg = config_json ? json_loads(config_json, 0, NULL) : NULL;
    char *pretty = cfg ? json_dumps(cfg, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9)) : NULL;
    hone_html_escape(out, pretty ? pretty : config_json ? config_json : "(not given)");
    free(pretty);
    json_decref(cfg);
    fputs("</pre>\n</body>\n</html>\n", out);
}

hone_status hone_train_report_write(const char *output_dir, const char *config_json) {
    char *metrics = hone_path_join(output_dir, "metrics.jsonl"), *report = hone_path_join(output_dir, "report.html");
    column cols[N_COLUMNS] = {0};
    char *page = NULL;
    size_t page_size = 0;
    hone_status st = metrics && report ? read_metrics(metrics, cols) : hone_errorf(HONE_ERR_NOMEM, "out of memory");
    if (st == HONE_OK) {
        FILE *out = open_memstream(&page, &page_size);
        if (!out) st = hone_errorf(HONE_ERR_NOMEM, "out of memory writing %s", report);
        else {
            write_page(out, output_dir, cols, config_json);
            if (fclose(out) != 0) st = hone_errorf(HONE_ERR_NOMEM, "out of memory writing %s", report);
        }
    }
    if (st == HONE_OK) st = hone_file_write_atomic(report, page, page_size);
    for (int k = 0; k < N_COLUMNS; k++) free(cols[k].v);
    free(page);
    free(metrics);
    free(report);
    return st;
}
