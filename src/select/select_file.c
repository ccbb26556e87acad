/* Selection over a scores file (hone_select_file): read the rows back, decide, write the kept rows and every
 * decision. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "select/select_internal.h"

typedef struct {
    json_t **rows;
    double *ifd, *rifd;
    size_t n, cap;
} score_rows;

static void rows_free(score_rows *r) {
    for (size_t i = 0; i < r->n; i++) json_decref(r->rows[i]);
    free(r->rows);
    free(r->ifd);
    free(r->rifd);
}

/* A number, or NaN for null / absent. */
static double score_of(const json_t *row, const char *key) {
    const json_t *v = json_object_get(row, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static hone_status add_row(score_rows *r, json_t *row) {
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 256;
        json_t **rows = realloc(r->rows, cap * sizeof *rows);
        if (rows) r->rows = rows;
        double *ifd = rows ? realloc(r->ifd, cap * sizeof *ifd) : NULL;
        if (ifd) r->ifd = ifd;
        double *rifd = ifd ? realloc(r->rifd, cap * sizeof *rifd) : NULL;
        if (rifd) r->rifd = rifd;
        if (!rifd) return hone_errorf(HONE_ERR_NOMEM, "out of memory reading scores");
        r->cap = cap;
    }
    r->rows[r->n] = row;
    r->ifd[r->n] = score_of(row, "ifd");
    r->rifd[r->n] = score_of(row, "rifd");
    r->n++;
    return HONE_OK;
}

hone_status select_jsonl_each(const char *path, hone_status (*each)(json_t *row, size_t line_no, void *user),
                              void *user) {
    hone_mapped_file f;
    HONE_TRY(hone_file_map(&f, path));
    hone_line lines[256];
    size_t pos = 0, line_no = 0, got;
    hone_status st = HONE_OK;
    while (st == HONE_OK && (got = hone_next_lines((const char *)f.data, f.size, &pos, &line_no, lines, 256)) > 0)
        for (size_t k = 0; k < got && st == HONE_OK; k++)
            st = each(json_loadb(lines[k].text, lines[k].len, 0, NULL), lines[k].line_no, user);
    hone_file_unmap(&f);
    return st;
}

typedef struct {
    const char *path;
    score_rows *rows;
} score_reader;

static hone_status take_score_row(json_t *row, size_t line_no, void *user) {
    score_reader *sr = user;
    score_rows *r = sr->rows;
    hone_status st = HONE_OK;
    if (!row || json_integer_value(json_object_get(row, "index")) != (json_int_t)r->n || !json_object_get(row, "ifd"))
        st = hone_errorf(HONE_ERR_FORMAT,
                         "%s:%zu: not the scores row of example %zu (a file of hone select --score-only is expected)",
                         sr->path, line_no, r->n);
    if (st == HONE_OK) st = add_row(r, row);
    if (st != HONE_OK) json_decref(row);
    return st;
}

static hone_status read_scores(const char *path, score_rows *r) {
    score_reader sr = {path, r};
    return select_jsonl_each(path, take_score_row, &sr);
}

static hone_status write_line(hone_atomic_file *af, json_t *obj) {
    char *line = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
    hone_status st = line ? hone_atomic_write(af, line, strlen(line)) : hone_errorf(HONE_ERR_NOMEM, "out of memory");
    if (st == HONE_OK) st = hone_atomic_write(af, "\n", 1);
    free(line);
    return st;
}

static json_t *number(double v) { return isfinite(v) ? json_real(v) : json_null(); }

hone_status hone_select_file(const char *scores_path, const hone_select_options *o, const char *output_path,
                             const char *decisions_path, hone_select_summary *out) {
    memset(out, 0, sizeof *out);
    score_rows r = {0};
    hone_select_decision *d = NULL;
    hone_atomic_file kept_file, decisions_file;
    int kept_open = 0, decisions_open = 0;
    hone_status st = read_scores(scores_path, &r);
    if (st == HONE_OK) {
        d = malloc((r.n ? r.n : 1) * sizeof *d);
        st = d ? hone_select_ifd(r.ifd, r.rifd, r.n, o, d) : hone_errorf(HONE_ERR_NOMEM, "out of memory");
    }
    if (st == HONE_OK) st = hone_atomic_open(&kept_file, output_path);
    kept_open = st == HONE_OK;
    if (st == HONE_OK && decisions_path) {
        st = hone_atomic_open(&decisions_file, decisions_path);
        decisions_open = st == HONE_OK;
    }
    for (size_t i = 0; i < r.n && st == HONE_OK; i++) {
        out->by_reason[d[i].reason]++;
        if (d[i].reason == HONE_SELECT_KEPT) {
            json_object_set_new(r.rows[i], "rank", json_integer((json_int_t)d[i].rank));
            st = write_line(&kept_file, r.rows[i]);
        }
        if (st != HONE_OK || !decisions_open) continue;
        json_t *line = json_pack("{s:I, s:b, s:s, s:I, s:o, s:o}", "index", (json_int_t)i, "selected",
                                 d[i].reason == HONE_SELECT_KEPT, "reason", hone_select_reason_name(d[i].reason),
                                 "rank", (json_int_t)d[i].rank, "ifd", number(r.ifd[i]), "rifd", number(r.rifd[i]));
        if (line && (d[i].reason == HONE_SELECT_TOO_SIMILAR || d[i].reason == HONE_SELECT_DUPLICATE))
            json_object_set_new(line, "similarity", json_real(d[i].similarity));
        if (line && d[i].reason == HONE_SELECT_DUPLICATE)
            json_object_set_new(line, "duplicate_of", json_integer((json_int_t)d[i].duplicate_of));
        st = line ? write_line(&decisions_file, line) : hone_errorf(HONE_ERR_NOMEM, "out of memory");
        json_decref(line);
    }
    out->examples = r.n;
    if (st == HONE_OK && decisions_open) {
        decisions_open = 0;
        st = hone_atomic_commit(&decisions_file);
    }
    if (st == HONE_OK && kept_open) {
        kept_open = 0;
        st = hone_atomic_commit(&kept_file);
    }
    if (decisions_open) hone_atomic_abort(&decisions_file);
    if (kept_open) hone_atomic_abort(&kept_file);
    free(d);
    rows_free(&r);
    return st;
}
