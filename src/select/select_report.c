/* The selection report (hone_select_report_write): one self-contained HTML page from the scores and decisions
 * files, with the sections other selectors add; and the page frame and example cells that the Star-Agents and
 * reflection reports share (select_report_page, select_report_text, select_report_example_cells). */
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
void select_report_text(FILE *out, const char *text) {
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

void select_report_example_cells(FILE *out, const json_t *row) {
    const char *instruction = json_string_value(json_object_get(row, "instruction"));
    fputs("<td>", out);
    if (instruction) {
        select_report_text(out, instruction);
        const char *input = json_string_value(json_object_get(row, "input"));
        if (input && *input) {
            fputs("<br><i>input:</i> ", out);
            select_report_text(out, input);
        }
        fputs("</td><td>", out);
        const char *output = json_string_value(json_object_get(row, "output"));
        select_report_text(out, output ? output : "");
    } else {
        char *messages = json_dumps(json_object_get(row, "messages"), JSON_COMPACT);
        select_report_text(out, messages ? messages : "");
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
        select_report_example_cells(out, scores->rows[i]);
        fputs("</tr>\n", out);
    }
    fputs("</table>\n", out);
}

/* The selection's numbers, gathered once for the page's sections: ifd [n], kept_ifd [n] (NaN when dropped), rifd
 * [n]; kept / dropped in descending ifd. */
typedef struct {
    const select_json_rows *scores, *decisions;
    size_t examples; /* shown at each end of a table */
    double *ifd, *kept_ifd, *rifd;
    select_ranked *kept, *dropped;
    size_t n_kept, n_dropped, n_rifd;
} selection_page;

static hone_status write_counts(FILE *out, void *user) {
    const selection_page *p = user;
    const size_t n = p->scores->n;
    fprintf(out, "<table>\n<tr><th>examples</th><td>%zu</td></tr>\n", n);
    for (int r = 0; r < HONE_SELECT_REASON_COUNT; r++) {
        const char *name = hone_select_reason_name((hone_select_reason)r);
        size_t count = 0;
        for (size_t i = 0; i < n; i++) {
            const char *reason = json_string_value(json_object_get(p->decisions->rows[i], "reason"));
            count += reason && !strcmp(reason, name);
        }
        fprintf(out, "<tr><th>%s</th><td>%zu</td></tr>\n", name, count);
    }
    fputs("</table>\n", out);
    return HONE_OK;
}

static hone_status write_histograms(FILE *out, void *user) {
    const selection_page *p = user;
    const size_t n = p->scores->n;
    const hone_histogram charts[3] = {
        {"ifd of every scored example", "ifd", p->ifd, n, 0, "#1f77b4", 0, 0},
        {"ifd of the kept examples", "ifd", p->kept_ifd, n, 0, "#2ca02c", 0, 0},
        {"rifd of every scored example", "rifd", p->rifd, n, 0, "#9467bd", 0, 0},
    };
    hone_status st = HONE_OK;
    for (int c = 0; c < (p->n_rifd ? 3 : 2) && st == HONE_OK; c++) st = hone_svg_histogram(out, &charts[c]);
    return st;
}

static hone_status write_tables(FILE *out, void *user) {
    const selection_page *p = user;
    example_table(out, "Kept examples, highest and lowest ifd", p->kept, p->n_kept, p->examples, p->scores,
                  p->decisions);
    example_table(out, "Dropped examples with scores, highest and lowest ifd", p->dropped, p->n_dropped, p->examples,
                  p->scores, p->decisions);
    return HONE_OK;
}

static hone_status selection_page_write(const char *path, selection_page *p, const hone_report_section *extra,
                                        size_t n_extra) {
    const size_t n = p->scores->n;
    p->ifd = malloc((3 * n + 1) * sizeof *p->ifd);
    p->kept = malloc((2 * n + 1) * sizeof *p->kept);
    hone_report_section *sections = malloc((3 + n_extra) * sizeof *sections);
    hone_status st =
        p->ifd && p->kept && sections ? HONE_OK : hone_errorf(HONE_ERR_NOMEM, "out of memory for %s", path);
    if (st == HONE_OK) {
        p->kept_ifd = p->ifd + n;
        p->rifd = p->ifd + 2 * n;
        p->dropped = p->kept + n;
        for (size_t i = 0; i < n; i++) {
            p->ifd[i] = number_of(p->scores->rows[i], "ifd");
            p->rifd[i] = number_of(p->scores->rows[i], "rifd");
            p->n_rifd += isfinite(p->rifd[i]) != 0;
            const int selected = json_is_true(json_object_get(p->decisions->rows[i], "selected"));
            p->kept_ifd[i] = selected ? p->ifd[i] : NAN;
            if (selected) p->kept[p->n_kept++] = (select_ranked){i, p->ifd[i]};
            else if (isfinite(p->ifd[i])) p->dropped[p->n_dropped++] = (select_ranked){i, p->ifd[i]};
        }
        qsort(p->kept, p->n_kept, sizeof *p->kept, select_by_ifd_desc);
        qsort(p->dropped, p->n_dropped, sizeof *p->dropped, select_by_ifd_desc);
        sections[0] = (hone_report_section){NULL, write_counts, p};
        sections[1] = (hone_report_section){"Scores", write_histograms, p};
        sections[2] = (hone_report_section){NULL, write_tables, p};
        memcpy(sections + 3, extra, n_extra * sizeof *extra);
        st = select_report_page(path, "Selection report", sections, 3 + n_extra);
    }
    free(p->ifd);
    free(p->kept);
    free(sections);
    return st;
}

hone_status select_report_page(const char *path, const char *title, const hone_report_section *sections,
                               size_t n) {
    char *page = NULL;
    size_t page_size = 0;
    FILE *out = open_memstream(&page, &page_size);
    if (!out) return hone_errorf(HONE_ERR_NOMEM, "out of memory writing %s", path);
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>hone: ", out);
    hone_html_escape(out, title);
    fputs("</title>\n"
          "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
          "table{border-collapse:collapse}th,td{padding:3px 10px;text-align:left;vertical-align:top;"
          "border-bottom:1px solid #eee}svg{display:block;margin:0.5em 0 1.5em}</style>\n"
          "</head>\n<body>\n<h1>",
          out);
    hone_html_escape(out, title);
    fputs("</h1>\n", out);
    hone_status st = HONE_OK;
    for (size_t k = 0; k < n && st == HONE_OK; k++) {
        if (sections[k].heading) {
            fputs("<h2>", out);
            hone_html_escape(out, sections[k].heading);
            fputs("</h2>\n", out);
        }
        st = sections[k].write(out, sections[k].user);
    }
    fputs("</body>\n</html>\n", out);
    if (fclose(out) != 0 && st == HONE_OK) st = hone_errorf(HONE_ERR_IO, "cannot write %s", path);
    if (st == HONE_OK) st = hone_file_write_atomic(path, page, page_size);
    free(page);
    return st;
}

hone_status hone_select_report_write(const char *path, const char *scores_path, const char *decisions_path,
                                     size_t examples, const hone_report_section *extra, size_t n_extra) {
    select_json_rows scores = {0}, decisions = {0};
    hone_status st = select_json_rows_read(scores_path, &scores);
    if (st == HONE_OK) st = select_json_rows_read(decisions_path, &decisions);
    if (st == HONE_OK && scores.n != decisions.n)
        st = hone_errorf(HONE_ERR_FORMAT, "%s has %zu rows but %s has %zu: not the decisions of these scores",
                         scores_path, scores.n, decisions_path, decisions.n);
    selection_page p = {.scores = &scores, .decisions = &decisions, .examples = examples};
    if (st == HONE_OK) st = selection_page_write(path, &p, extra, n_extra);
    select_json_rows_free(&scores);
    select_json_rows_free(&decisions);
    return st;
}
