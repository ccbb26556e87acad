/* The reflection report (hone_reflect_report_write): one self-contained HTML page from the decisions file and the
 * teacher journal of hone_reflect_file, in the selection report's frame (select_report_page). */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "select/select_internal.h"

static const char *const REQUESTS[] = {"instruction", "response", "response_q"}; /* the journal's "request" */

typedef struct {
    const char *decisions_path, *journal_path;
    const select_json_rows *decisions; /* NULL: the file does not exist (yet) */
    int have_journal;
    size_t journal[3];                 /* its replies, by request */
    size_t examples;                   /* rows of the examples table */
} reflection_page;

static const char *text_of(const json_t *obj, const char *key) {
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : "";
}

/* A decisions row's score of version v ("orig", "Q", …): kind "ifd" or "rifd"; NaN when null. */
static double score_of(const json_t *row, const char *v, const char *kind) {
    const json_t *x = json_object_get(json_object_get(json_object_get(row, "scores"), v), kind);
    return json_is_number(x) ? json_number_value(x) : NAN;
}

static int is_reason(const char *name) {
    for (int r = 0; r < HONE_REFLECT_REASON_COUNT; r++)
        if (!strcmp(name, hone_reflect_reason_name((hone_reflect_reason)r))) return 1;
    return 0;
}

/* Each row must be one hone_reflect_file wrote (the ifd selection's decisions, a journal, … are not). */
static hone_status check_decisions(const char *path, const select_json_rows *d) {
    for (size_t i = 0; i < d->n; i++) {
        const json_t *row = d->rows[i], *scores = json_object_get(row, "scores");
        if (!is_reason(text_of(row, "reason")) || !*text_of(row, "version") || !*text_of(row, "instruction_from") ||
            !json_is_object(json_object_get(scores, "orig")) || !json_is_object(json_object_get(row, "versions")))
            return hone_errorf(HONE_ERR_FORMAT,
                               "%s:%zu: not a reflection decisions file (expected {\"reason\", \"version\", "
                               "\"instruction_from\", \"scores\": {\"orig\": …}, \"versions\"}, as hone select "
                               "--method reflection writes)",
                               path, i + 1);
    }
    return HONE_OK;
}

typedef struct {
    const char *path;
    size_t *counts;   /* by request */
    size_t torn_line; /* a line that is not JSON: torn by a kill when it is the last one */
} journal_reader;

static hone_status count_reply(json_t *row, size_t line_no, void *user) {
    journal_reader *jr = user;
    int k = 0;
    while (k < 3 && strcmp(text_of(row, "request"), REQUESTS[k])) k++;
    const int ok = !jr->torn_line && (!row || (k < 3 && json_is_integer(json_object_get(row, "index"))));
    json_decref(row);
    if (!ok)
        return hone_errorf(HONE_ERR_FORMAT,
                           "%s:%zu: not a reflection journal (expected {\"index\", \"request\": instruction | "
                           "response | response_q, \"key\", \"reply\"})",
                           jr->path, jr->torn_line ? jr->torn_line : line_no);
    if (row) jr->counts[k]++;
    else jr->torn_line = line_no;
    return HONE_OK;
}

/* Version v (Q, A or QA) of a decisions row: [0] proposed by the teacher, [1] the teacher failed, [2] its reply had
 * no markers, [3] won its comparison of the rule (Q: ifd(Q) > ifd(orig); A, QA: the candidate lowered rifd), [4]
 * kept (Q: as QA's instruction). */
static void version_counts(const json_t *row, const char *v, size_t counts[5]) {
    const char *why = text_of(json_object_get(row, "missing"), v), *reason = text_of(row, "reason");
    const int q = !strcmp(v, "Q"), candidate = !strcmp(text_of(row, "version"), q ? "QA" : v);
    counts[0] += json_object_get(json_object_get(row, "versions"), v) != NULL;
    counts[1] += !strncmp(why, "teacher failed", 14);
    counts[2] += !strncmp(why, "no ", 3);
    counts[3] += q ? !strcmp(text_of(row, "instruction_from"), "Q")
                   : candidate && strcmp(reason, "missing") && strcmp(reason, "not_improved");
    counts[4] += candidate && json_is_true(json_object_get(row, "selected"));
}

static hone_status write_counts(FILE *out, void *user) {
    const reflection_page *p = user;
    if (p->decisions) {
        const select_json_rows *d = p->decisions;
        size_t counts[3][5] = {{0}}, failures = 0;
        for (size_t i = 0; i < d->n; i++)
            for (int v = 0; v < 3; v++) version_counts(d->rows[i], hone_reflect_version_name(v + 1), counts[v]);
        for (int v = 0; v < 3; v++) failures += counts[v][1];
        fprintf(out, "<table>\n<tr><th>examples</th><td>%zu</td></tr>\n", d->n);
        for (int r = 0; r < HONE_REFLECT_REASON_COUNT; r++) {
            const char *name = hone_reflect_reason_name((hone_reflect_reason)r);
            size_t n = 0;
            for (size_t i = 0; i < d->n; i++) n += !strcmp(text_of(d->rows[i], "reason"), name);
            fprintf(out, "<tr><th>%s</th><td>%zu</td></tr>\n", name, n);
        }
        fprintf(out, "<tr><th>teacher failures</th><td>%zu</td></tr>\n</table>\n", failures);
        fputs("<h2>Versions</h2>\n<p>Q: the teacher's instruction reflection (new instruction and answer); A: its "
              "response reflection of the original; QA: its response reflection of Q. Q wins when the student's "
              "ifd(Q) &gt; ifd(orig); A or QA wins when its rifd is below that of orig or Q; a winner is kept when it "
              "also passes the gates (ALGORITHMS.md &sect;2).</p>\n<table>\n<tr><th>version</th><th>proposed by the "
              "teacher</th><th>teacher failed</th><th>reply without markers</th><th>won the rule's comparison</th>"
              "<th>kept</th></tr>\n",
              out);
        for (int v = 0; v < 3; v++)
            fprintf(out, "<tr><th>%s</th><td>%zu</td><td>%zu</td><td>%zu</td><td>%zu</td><td>%zu</td></tr>\n",
                    hone_reflect_version_name(v + 1), counts[v][0], counts[v][1], counts[v][2], counts[v][3],
                    counts[v][4]);
        fputs("</table>\n", out);
    } else {
        fputs("<p>No decisions yet (", out);
        hone_html_escape(out, p->decisions_path);
        fputs(" does not exist): the run stopped before the student scored the versions.</p>\n", out);
    }
    if (!p->have_journal) return HONE_OK;
    fputs("<h2>Teacher journal</h2>\n<p>", out);
    hone_html_escape(out, p->journal_path);
    fputs(": the replies received so far (a rerun asks only for the others)</p>\n<table>\n", out);
    fprintf(out, "<tr><th>journal replies</th><td>%zu</td></tr>\n", p->journal[0] + p->journal[1] + p->journal[2]);
    for (int k = 0; k < 3; k++) fprintf(out, "<tr><th>%s</th><td>%zu</td></tr>\n", REQUESTS[k], p->journal[k]);
    fputs("</table>\n", out);
    return HONE_OK;
}

/* The scores each step of the rule compares: ifd of orig vs Q, then rifd of the base (orig, or Q when step 1 took
 * it) vs the candidate (A or QA). */
static hone_status write_histograms(FILE *out, void *user) {
    const reflection_page *p = user;
    const size_t n = p->decisions->n;
    double *v = malloc((4 * n + 1) * sizeof *v);
    if (!v) return hone_errorf(HONE_ERR_NOMEM, "out of memory for the histograms");
    for (size_t i = 0; i < n; i++) {
        const json_t *row = p->decisions->rows[i];
        v[i] = score_of(row, "orig", "ifd");
        v[n + i] = score_of(row, "Q", "ifd");
        v[2 * n + i] = score_of(row, text_of(row, "instruction_from"), "rifd");
        v[3 * n + i] = score_of(row, text_of(row, "version"), "rifd");
    }
    const hone_histogram charts[4] = {
        {"step 1: the student's ifd of the original instructions (orig)", "ifd", v, n, 0, "#1f77b4", 0, 0},
        {"step 1: the student's ifd of the reflected instructions (Q)", "ifd", v + n, n, 0, "#ff7f0e", 0, 0},
        {"step 2: rifd of the responses compared with (orig's, or Q's when step 1 took Q)", "rifd", v + 2 * n, n, 0,
         "#9467bd", 0, 0},
        {"step 2: rifd of the reflected responses (A, or QA when step 1 took Q)", "rifd", v + 3 * n, n, 0, "#2ca02c",
         0, 0},
    };
    hone_status st = HONE_OK;
    for (int c = 0; c < 4 && st == HONE_OK; c++) st = hone_svg_histogram(out, &charts[c]);
    free(v);
    return st;
}

/* What the rule did with a row, as text: step 1's instruction, then step 2's verdict on the candidate. */
static void write_why(FILE *out, const json_t *row) {
    const char *cand = text_of(row, "version"), *base = text_of(row, "instruction_from"), *r = text_of(row, "reason");
    fprintf(out, "step 1: %s; step 2: ",
            strcmp(base, "Q") ? "not ifd(Q) &gt; ifd(orig), the original instruction"
                              : "ifd(Q) &gt; ifd(orig), Q's instruction");
    if (!strcmp(r, "missing")) {
        fputs(cand, out);
        fputs(" is missing (", out);
        hone_html_escape(out, text_of(json_object_get(row, "missing"), cand));
        fputs(")", out);
    } else if (!strcmp(r, "not_improved")) {
        fprintf(out, "not rifd(%s) &lt; rifd(%s)", cand, base);
    } else {
        fprintf(out, "rifd(%s) &lt; rifd(%s)%s", cand, base,
                !strcmp(r, "ifd_gate")    ? " but its ifd is not below max_ifd"
                : !strcmp(r, "rifd_gate") ? " but its rifd is not below max_rifd"
                                          : ", gates passed");
    }
}

static void write_score(FILE *out, double v) {
    if (isnan(v)) fputs("&mdash;", out);
    else fprintf(out, "%.4f", v);
}

/* The first p->examples rows in file order: decision, original, the kept version (or the dropped candidate), scores. */
static hone_status write_examples(FILE *out, void *user) {
    const reflection_page *p = user;
    const size_t n = p->decisions->n, shown = n < p->examples ? n : p->examples;
    fputs("<table>\n<tr><th>index</th><th>decision</th><th>original instruction</th><th>original answer</th>"
          "<th>kept version (or the dropped candidate): instruction</th><th>answer</th><th>ifd / rifd</th></tr>\n",
          out);
    for (size_t i = 0; i < shown; i++) {
        const json_t *row = p->decisions->rows[i], *versions = json_object_get(row, "versions");
        const char *cand = text_of(row, "version");
        const int kept = json_is_true(json_object_get(row, "selected"));
        fprintf(out, "<tr><td>%lld</td><td><b>%s %s</b><br>",
                (long long)json_integer_value(json_object_get(row, "index")), kept ? "kept" : "dropped:",
                kept ? cand : text_of(row, "reason"));
        write_why(out, row);
        fputs("</td>", out);
        select_report_example_cells(out, json_object_get(versions, "orig"));
        if (json_object_get(versions, cand)) select_report_example_cells(out, json_object_get(versions, cand));
        else fprintf(out, "<td colspan=\"2\">%s missing</td>", cand);
        fputs("<td>", out);
        for (int v = 0; v < HONE_REFLECT_VERSIONS; v++) {
            const char *name = hone_reflect_version_name((hone_reflect_version)v);
            const double ifd = score_of(row, name, "ifd"), rifd = score_of(row, name, "rifd");
            fprintf(out, "%s%s: ", v ? "<br>" : "", name);
            write_score(out, ifd);
            fputs(" / ", out);
            write_score(out, rifd);
        }
        fputs("</td></tr>\n", out);
    }
    if (shown < n) {
        fprintf(out, "<tr><td colspan=\"7\">&hellip; %zu more in ", n - shown);
        hone_html_escape(out, p->decisions_path);
        fputs("</td></tr>\n", out);
    }
    fputs("</table>\n", out);
    return HONE_OK;
}

hone_status hone_reflect_report_write(const char *path, const char *decisions_path, const char *journal_path,
                                      size_t examples) {
    const int have_decisions = hone_file_exists(decisions_path), have_journal = hone_file_exists(journal_path);
    if (!have_decisions && !have_journal)
        return hone_errorf(HONE_ERR_IO, "nothing to report: neither %s nor %s exists (run hone select --method "
                                        "reflection first)",
                           decisions_path, journal_path);
    select_json_rows decisions = {0};
    reflection_page p = {decisions_path, journal_path, have_decisions ? &decisions : NULL, have_journal, {0}, examples};
    journal_reader jr = {journal_path, p.journal, 0};
    hone_status st = HONE_OK;
    if (have_decisions) st = select_json_rows_read(decisions_path, &decisions);
    if (st == HONE_OK && have_decisions) st = check_decisions(decisions_path, &decisions);
    if (st == HONE_OK && have_journal) st = select_jsonl_each(journal_path, count_reply, &jr);
    const hone_report_section sections[] = {{NULL, write_counts, &p},
                                            {"Scores the rule compares", write_histograms, &p},
                                            {"Examples", write_examples, &p}};
    if (st == HONE_OK) st = select_report_page(path, "Selective Reflection-Tuning", sections, have_decisions ? 3 : 1);
    select_json_rows_free(&decisions);
    return st;
}
