/* The selection report (hone_select_report_write): one self-contained HTML page from the scores and decisions
 * files, with the sections other selectors add. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "select/select_internal.h"

#define SHOWN_CHARS 400

void select_json_rows_free(select_json_rows *r) {
    for (size_t i = 0; i < r->n; i++) json_decref(r->rows[i]);
    free(r->rows);
}

typedef struct {
    const char *path;
    select_json_rows *rows;
} rows_reader;

static hone_status take_object(json_t *row, size_t line_no, void *user) {
    rows_reader *rr = user;
    select_json_rows *r = rr->rows;
    if (!json_is_object(row)) {
        json_decref(row);
        return hone_errorf(HONE_ERR_FORMAT, "%s:%zu: not a JSON object", rr->path, line_no);
    }
    if (r->n == r->cap) {
        const size_t cap = r->cap ? 2 * r->cap : 256;
        json_t **grown = realloc(r->rows, cap * sizeof *grown);
        if (!grown) {
            json_decref(row);
            return hone_errorf(HONE_ERR_NOMEM, "out of memory reading %s", rr->path);
        }
        r->rows = grown;
        r->cap = cap;
    }
    r->rows[r->n++] = row;
    return HONE_OK;
}

hone_status select_json_rows_read(const char *path, select_json_rows *r) {
    rows_reader rr = {path, r};
    return select_jsonl_each(path, take_object, &rr);
}

static double number_of(const json_t *row, const char *key) {
    const json_t *v = json_object_get(row, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

/* Text cut to SHOWN_CHARS bytes at a UTF-8 character boundary, escaped. */
static void shown_text(FILE *out, const char *text) {
    size_t n = strlen(text);
    const int cut = n > SHOWN_CHARS;
    if (cut) {
        n = SHOWN_CHARS;
        while (n && ((unsigned char)text[n] & 0xC0) == 0x80) n--;
    }
    char *copy = strndup(text, n);
    if (!copy) return;
    hone_html_escape(out, copy);
    if (cut) fputs("&hellip;", out);
    free(copy);
}

/* An example's prompt side and answer: alpaca-like rows' fields, else the messages as JSON. */
static void example_cells(FILE *out, const json_t *row) {
    const char *instruction = json_string_value(json_object_get(row, "instruction"));
    fputs("<td>", out);
    if (instruction) {
        shown_text(out, instruction);
        const char *input = json_string_value(json_object_get(row, "input"));
        if (input && *input) {
            fputs("<br><i>input:</i> ", out);
            shown_text(out, input);
        }
        fputs("</td><td>", out);
        const char *output = json_string_value(json_object_get(row, "output"));
        shown_text(out, output ? output : "");
    } else {
        char *messages = json_dumps(json_object_get(row, "messages"), JSON_COMPACT);
        shown_text(out, messages ? messages : "");
        free(messages);
        fputs("</td><td>", out);
    }
    fputs("</td>", out);
}

/* The first and last `examples` of list (descending ifd) as one table. */
static void example_table(FILE *out, const char *heading, const select_ranked *list, size_t m, size_t examples,
                          const select_json_rows *scores, const select_json_rows *decisions) {
    fprintf(out, "<h2>%s (%zu)</h2>\n", heading, m);
    if (!m) {
        fputs("<p>none</p>\n", out);
        return;
    }
    fputs("<table>\n<tr><th>index</th><th>ifd</th><th>reason</th><th>instruction</th><th>answer</th></tr>\n", out);
    for (size_t r = 0; r < m; r++) {
        if (r == examples && m > 2 * examples) {
            fprintf(out, "<tr><td colspan=\"5\">&hellip; %zu more &hellip;</td></tr>\n", m - 2 * examples);
            r = m - examples;
        }
        const size_t i = list[r].index;
        fprintf(out, "<tr><td>%zu</td><td>%.4f</td><td>", i, list[r].ifd);
        hone_html_escape(out, json_string_value(json_object_get(decisions->rows[i], "reason"))
                                  ? json_string_value(json_object_get(decisions->rows[i], "reason"))
                                  : "");
        fputs("</td>", out);
        example_cells(out, scores->rows[i]);
        fputs("</tr>\n", out);
    }
    fputs("</table>\n", out);
}

static hone_status write_page(FILE *out, const select_json_rows *scores, const select_json_rows *decisions,
                              size_t examples, const hone_report_section *extra, size_t n_extra) {
    const size_t n = scores->n;
    double *ifd = malloc((3 * n + 1) * sizeof *ifd), *kept_ifd = ifd + n, *rifd = ifd + 2 * n;
    select_ranked *kept = malloc((2 * n + 1) * sizeof *kept), *dropped = kept + n;
    if (!ifd || !kept) {
        free(ifd);
        free(kept);
        return hone_errorf(HONE_ERR_NOMEM, "out of memory writing the report");
    }
    size_t n_kept = 0, n_dropped = 0, n_rifd = 0;
    for (size_t i = 0; i < n; i++) {
        ifd[i] = number_of(scores->rows[i], "ifd");
        rifd[i] = number_of(scores->rows[i], "rifd");
        n_rifd += isfinite(rifd[i]) != 0;
        const int selected = json_is_true(json_object_get(decisions->rows[i], "selected"));
        kept_ifd[i] = selected ? ifd[i] : NAN;
        if (selected) kept[n_kept++] = (select_ranked){i, ifd[i]};
        else if (isfinite(ifd[i])) dropped[n_dropped++] = (select_ranked){i, ifd[i]};
    }
    qsort(kept, n_kept, sizeof *kept, select_by_ifd_desc);
    qsort(dropped, n_dropped, sizeof *dropped, select_by_ifd_desc);
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<title>hone selection report</title>\n"
          "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
          "table{border-collapse:collapse}th,td{padding:3px 10px;text-align:left;vertical-align:top;"
          "border-bottom:1px solid #eee}svg{display:block;margin:0.5em 0 1.5em}</style>\n"
          "</head>\n<body>\n<h1>Selection report</h1>\n",
          out);
    fprintf(out, "<table>\n<tr><th>examples</th><td>%zu</td></tr>\n", n);
    for (int r = 0; r < HONE_SELECT_REASON_COUNT; r++) {
        const char *name = hone_select_reason_name((hone_select_reason)r);
        size_t count = 0;
        for (size_t i = 0; i < n; i++) {
            const char *reason = json_string_value(json_object_get(decisions->rows[i], "reason"));
            count += reason && !strcmp(reason, name);
        }
        fprintf(out, "<tr><th>%s</th><td>%zu</td></tr>\n", name, count);
    }
    fputs("</table>\n<h2>Scores</h2>\n", out);
    const hone_histogram charts[3] = {
        {"ifd of every scored example", "ifd", ifd, n, 0, "#1f77b4", 0, 0},
        {"ifd of the kept examples", "ifd", kept_ifd, n, 0, "#2ca02c", 0, 0},
        {"rifd of every scored example", "rifd", rifd, n, 0, "#9467bd", 0, 0},
    };
    hone_status st = HONE_OK;
    for (int c = 0; c < (n_rifd ? 3 : 2) && st == HONE_OK; c++) st = hone_svg_histogram(out, &charts[c]);
    if (st == HONE_OK) {
        example_table(out, "Kept examples, highest and lowest ifd", kept, n_kept, examples, scores, decisions);
        example_table(out, "Dropped examples with scores, highest and lowest ifd", dropped, n_dropped, examples,
                      scores, decisions);
    }
    for (size_t k = 0; k < n_extra && st == HONE_OK; k++) {
        fputs("<h2>", out);
        hone_html_escape(out, extra[k].heading);
        fputs("</h2>\n", out);
        st = extra[k].write(out, extra[k].user);
    }
    fputs("</body>\n</html>\n", out);
    free(ifd);
    free(kept);
    return st;
}

hone_status hone_select_report_write(const char *path, const char *scores_path, const char *decisions_path,
                                     size_t examples, const hone_report_section *extra, size_t n_extra) {
    select_json_rows scores = {0}, decisions = {0};
    char *page = NULL;
    size_t page_size = 0;
    hone_status st = select_json_rows_read(scores_path, &scores);
    if (st == HONE_OK) st = select_json_rows_read(decisions_path, &decisions);
    if (st == HONE_OK && scores.n != decisions.n)
        st = hone_errorf(HONE_ERR_FORMAT, "%s has %zu rows but %s has %zu: not the decisions of these scores",
                         scores_path, scores.n, decisions_path, decisions.n);
    if (st == HONE_OK) {
        FILE *out = open_memstream(&page, &page_size);
        st = out ? write_page(out, &scores, &decisions, examples, extra, n_extra)
                 : hone_errorf(HONE_ERR_NOMEM, "out of memory writing %s", path);
        if (out && fclose(out) != 0 && st == HONE_OK) st = hone_errorf(HONE_ERR_IO, "cannot write %s", path);
    }
    if (st == HONE_OK) st = hone_file_write_atomic(path, page, page_size);
    free(page);
    select_json_rows_free(&scores);
    select_json_rows_free(&decisions);
    return st;
}
