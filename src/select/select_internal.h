/* Shared by the scoring passes of src/select. Not part of the public API. */
#ifndef HONE_SELECT_INTERNAL_H
#define HONE_SELECT_INTERNAL_H

#include "hone/pack.h"
#include "hone/select.h"

#include <jansson.h>

#define IGNORE_INDEX (-100)

/* A JSON object naming the data, model, tokenizer and scoring options as hashes: equal objects, equal scores. */
hone_status select_fingerprint(hone_model *m, const hone_score_file_options *o, json_t **out);
/* The example's row: alpaca-like single-turn rows keep their fields ({"instruction", "input", "output"[, "system"]}),
 * the rest are canonical {"messages"} rows. NULL when out of memory. */
json_t *select_example_row(const hone_example *ex);

/* Called for each micro-batch after its forward pass: rows r0 .. r0 + b - 1 of `rows`, run cut to their longest
 * used length T; targets [b, T] are the rows' labels. */
typedef hone_status (*select_batch_fn)(hone_model *m, const hone_packed *rows, size_t r0, int b, int T,
                                       const int32_t *targets, void *ctx);

/* Where packed sequence i lies in the batch of rows r0 .. r0 + b - 1: its row within the batch and its first
 * column; 0 when it is not in this batch (or was not placed). */
static inline int select_in_batch(const hone_packed *rows, size_t i, size_t r0, int b, size_t *k, size_t *col) {
    const int64_t at = rows->sample_at[i], L = rows->row_len;
    if (at < 0 || (size_t)(at / L) < r0 || (size_t)(at / L) >= r0 + (size_t)b) return 0;
    *k = (size_t)(at / L) - r0;
    *col = (size_t)(at % L);
    return 1;
}

/* Runs the packed rows through the model's trunk (no gradients) micro_batch_size rows at a time. */
hone_status select_run_packed(hone_model *m, const hone_packed *rows, int micro_batch_size, select_batch_fn fn,
                              void *ctx);

/* hone_embed_sequences, and with ppl (may be NULL) each sequence's perplexity as a whole text: exp of the mean NLL
 * of its tokens 1 .. len - 1 (NaN for one token). */
hone_status select_embed_ppl(hone_model *m, const int32_t *const *ids, const size_t *lens, size_t n, int sequence_len,
                             int micro_batch_size, float *out, double *ppl);

/* Calls each(row, line_no, user) for every non-blank line of a JSONL file in order, row parsed (NULL when the line
 * is not JSON; each owns the reference); stops at the first error each returns. */
hone_status select_jsonl_each(const char *path, hone_status (*each)(json_t *row, size_t line_no, void *user),
                              void *user);

/* The rows of a JSONL file, each a JSON object (select_json_rows_read fails naming the line of one that is not). */
typedef struct {
    json_t **rows;
    size_t n, cap;
} select_json_rows;
hone_status select_json_rows_read(const char *path, select_json_rows *r);
void select_json_rows_free(select_json_rows *r);

/* ---- report pages (select_report.c) ---- */

/* path (atomically): one self-contained HTML page (inline SVG, no scripts) with the shared style, <h1>title</h1>,
 * then each section in order, an <h2> with its heading (none when the heading is NULL) and what its write puts
 * out. The first section that fails fails the page, which is then not written. */
hone_status select_report_page(const char *path, const char *title, const hone_report_section *sections,
                               size_t n);
/* text cut to 400 bytes at a UTF-8 character boundary (then "…"), HTML-escaped. */
void select_report_text(FILE *out, const char *text);
/* Two table cells, an example's prompt side and its answer: a row's "instruction" (with its "input") and "output",
 * else its "messages" as JSON and an empty cell. */
void select_report_example_cells(FILE *out, const json_t *row);

/* An example and its ifd, for sorting: select_by_ifd_desc orders by descending ifd, ties in file order, so the order
 * is total and the result deterministic (a qsort comparator). */
typedef struct {
    size_t index;
    double ifd;
} select_ranked;
int select_by_ifd_desc(const void *a, const void *b);

/* Duplicates among the examples order[0..m) (indices, best-ranked first; see hone_select_options.dedup): twin[r]
 * = the index of the earlier-ranked copy example order[r] duplicates, SIZE_MAX when it is none; similarity[r] = 1
 * (exact) or the MinHash estimate (near). */
hone_status select_mark_duplicates(const size_t *order, size_t m, const hone_select_options *o, size_t *twin,
                                   double *similarity);

#endif
