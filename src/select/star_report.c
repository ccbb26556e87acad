/* The Star-Agents report (hone_star_report_write): one self-contained HTML page from the run's log — the agent
 * pairs' probabilities after every seed as a line chart, and each pair's wins. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hone/star_agents.h"
#include "select/select_internal.h"

/* One colour per pair, cycling (matplotlib's tab10). */
static const char *const colors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                     "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

/* The page, from the log's rows: rows[0] holds the settings, rows[1..n) one seed each. x [n], y [pairs × n] and
 * wins [pairs] are the caller's scratch. */
static hone_status write_page(FILE *out, const char *log_path, const select_json_rows *log, const json_t *pairs,
                              double *x, double *y, size_t *wins) {
    const size_t n_pairs = json_array_size(pairs), n = log->n;
    /* point 0: the uniform start; point s: p after seed s */
    for (size_t k = 0; k < n_pairs; k++) y[k * n] = 1.0 / (double)n_pairs;
    x[0] = 0;
    size_t improved = 0;
    for (size_t s = 1; s < n; s++) {
        const json_t *row = log->rows[s], *p = json_object_get(row, "p"), *w = json_object_get(row, "kept_pair_index");
        if (json_array_size(p) != n_pairs)
            return hone_errorf(HONE_ERR_FORMAT, "%s:%zu: \"p\" does not hold one probability per pair (%zu)", log_path,
                               s + 1, n_pairs);
        x[s] = (double)s;
        for (size_t k = 0; k < n_pairs; k++) y[k * n + s] = json_number_value(json_array_get(p, k));
        if (json_is_integer(w) && (size_t)json_integer_value(w) < n_pairs) {
            wins[json_integer_value(w)]++;
            improved++;
        }
    }
    fputs("<p>log: ", out);
    hone_html_escape(out, log_path);
    fprintf(out, "; %zu seeds, %zu replaced by a candidate, %zu kept as they were</p>\n", n - 1, improved,
            n - 1 - improved);
    fputs("<table>\n<tr><th>pair (rewriter/responder)</th><th>wins</th><th>final p</th></tr>\n", out);
    for (size_t k = 0; k < n_pairs; k++) {
        fputs("<tr><td>", out);
        hone_html_escape(out, json_string_value(json_array_get(pairs, k)));
        fprintf(out, "</td><td>%zu</td><td>%.4f</td></tr>\n", wins[k], y[k * n + n - 1]);
    }
    fputs("</table>\n<h2>Agent-pair probabilities</h2>\n", out);
    hone_chart_series *series = calloc(n_pairs ? n_pairs : 1, sizeof *series);
    if (!series) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    for (size_t k = 0; k < n_pairs; k++)
        series[k] = (hone_chart_series){json_string_value(json_array_get(pairs, k)), x, y + k * n, n,
                                        colors[k % (sizeof colors / sizeof colors[0])]};
    const hone_chart chart = {"probability of each agent pair after each seed", "seed", "p", series, n_pairs, 0, 0};
    hone_status st = hone_svg_line_chart(out, &chart);
    free(series);
    return st;
}

typedef struct {
    const char *log_path;
    const select_json_rows *log;
    const json_t *pairs;
    double *x, *y;
    size_t *wins;
} star_page;

static hone_status write_section(FILE *out, void *user) {
    const star_page *p = user;
    return write_page(out, p->log_path, p->log, p->pairs, p->x, p->y, p->wins);
}

hone_status hone_star_report_write(const char *path, const char *log_path) {
    select_json_rows log = {0};
    HONE_TRY(select_json_rows_read(log_path, &log));
    const json_t *settings = log.n ? json_object_get(log.rows[0], "star_agents") : NULL;
    const json_t *pairs = json_object_get(settings, "pairs");
    hone_status st = json_array_size(pairs)
                         ? HONE_OK
                         : hone_errorf(HONE_ERR_FORMAT, "%s: not a Star-Agents log (its first line holds no "
                                                        "{\"star_agents\": {\"pairs\": [...]}})",
                                       log_path);
    const size_t n_pairs = json_array_size(pairs);
    double *x = st == HONE_OK ? malloc(log.n * sizeof *x) : NULL;
    double *y = x ? malloc(n_pairs * log.n * sizeof *y) : NULL;
    size_t *wins = y ? calloc(n_pairs, sizeof *wins) : NULL;
    if (st == HONE_OK && !wins) st = hone_errorf(HONE_ERR_NOMEM, "out of memory for the report of %s", log_path);
    star_page sp = {log_path, &log, pairs, x, y, wins};
    const hone_report_section page = {NULL, write_section, &sp};
    if (st == HONE_OK) st = select_report_page(path, "Star-Agents", &page, 1);
    free(x);
    free(y);
    free(wins);
    select_json_rows_free(&log);
    return st;
}
