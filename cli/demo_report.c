/* hone demo's report.html: one page, no scripts — the loss curves of the fine-tunes (hone_svg_line_chart) and the
 * exact-match table, each cell shaded by its accuracy. */
#include <stdio.h>
#include <stdlib.h>

#include "demo.h"

static const char *const colors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"};

static void write_table(FILE *f, const demo_row *rows, size_t n_rows) {
    fputs("<table><tr><th>model</th>", f);
    for (int t = 0; t < HONE_TASK_COUNT; t++) fprintf(f, "<th>%s</th>", hone_task_name((hone_task)t));
    fputs("<th>mean</th><th>training / merging</th><th>folder</th></tr>\n", f);
    for (size_t i = 0; i < n_rows; i++) {
        const demo_row *r = &rows[i];
        fputs("<tr><td>", f);
        hone_html_escape(f, r->label);
        fputs("</td>", f);
        double sum = 0;
        for (int t = 0; t <= HONE_TASK_COUNT; t++) {
            const size_t total = t < HONE_TASK_COUNT ? r->scores.total[t] : 0;
            const double acc = t < HONE_TASK_COUNT ? (total ? (double)r->scores.correct[t] / (double)total : 0)
                                                   : sum / HONE_TASK_COUNT;
            sum += t < HONE_TASK_COUNT ? acc : 0;
            /* green in proportion to the accuracy */
            fprintf(f, "<td style=\"background: rgba(44, 160, 44, %.2f)\">%.0f%%", 0.1 + 0.6 * acc, 100 * acc);
            if (t < HONE_TASK_COUNT) fprintf(f, " <small>(%zu/%zu)</small>", r->scores.correct[t], total);
            fputs("</td>", f);
        }
        if (r->seconds > 0) fprintf(f, "<td>%.1f s</td>", r->seconds);
        else fputs("<td></td>", f);
        fputs("<td><code>", f);
        hone_html_escape(f, r->dir);
        fputs("</code></td></tr>\n", f);
    }
    fputs("</table>\n", f);
}

hone_status demo_report_write(const char *output_dir, const demo_row *rows, size_t n_rows, const char *summary,
                              const char *merge_note) {
    hone_chart_series series[sizeof colors / sizeof colors[0]];
    size_t n_series = 0;
    for (size_t i = 0; i < n_rows && n_series < sizeof series / sizeof series[0]; i++)
        if (rows[i].curve.n)
            series[n_series] = (hone_chart_series){rows[i].label, rows[i].curve.step, rows[i].curve.loss,
                                                   rows[i].curve.n, colors[n_series]},
            n_series++;
    const hone_chart chart = {"Training loss of the fine-tunes", "optimizer step", "loss (NLL per answer token)",
                              series, n_series, 760, 340};
    char *page = NULL, *path = hone_path_join(output_dir, "report.html");
    size_t size = 0;
    FILE *f = path ? open_memstream(&page, &size) : NULL;
    if (!f) {
        free(path);
        return hone_errorf(HONE_ERR_NOMEM, "out of memory writing report.html");
    }
    fputs("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>hone demo</title><style>body{font-family:"
          "sans-serif;margin:2em;max-width:60em}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
          "padding:4px 8px;text-align:right}td:first-child,th:first-child{text-align:left}</style></head><body>\n"
          "<h1>hone demo: instruction tuning, then merging</h1>\n<p>",
          f);
    hone_html_escape(f, summary);
    fputs("</p>\n<h2>Exact-match accuracy on held-out prompts</h2>\n", f);
    write_table(f, rows, n_rows);
    fputs("<p>", f);
    hone_html_escape(f, merge_note);
    fputs("</p>\n<p>Greedy answers with the KV cache, up to the end-of-turn token; an answer counts when it equals the "
          "expected one exactly.</p>\n<h2>Training</h2>\n",
          f);
    hone_status st = hone_svg_line_chart(f, &chart);
    fputs("</body></html>\n", f);
    if (fclose(f) != 0 && st == HONE_OK) st = hone_errorf(HONE_ERR_NOMEM, "out of memory writing %s", path);
    if (st == HONE_OK) st = hone_file_write_atomic(path, page, size);
    free(page);
    free(path);
    return st;
}
