/* hone/pack.h — training sequences → fixed-length rows: sample packing (best-fit decreasing) with position ids
 * that restart in every sample, or one sample per right-padded row; over-long samples dropped or truncated, and
 * counted.
 *
 *     hone_pack_options o = {.sequence_len = 2048, .sample_packing = 1, .pad_id = eos};
 *     hone_packed rows;
 *     if (hone_pack(seqs, n, &o, &rows) != HONE_OK) die(hone_error());
 *     // row r: rows.ids + r * rows.row_len, .labels (−100 = not trained), .pos; rows.used[r] tokens are real
 *     hone_model_forward_positions(m, rows.ids + r * rows.row_len, rows.pos + r * rows.row_len, 1, rows.used[r]);
 *     hone_packed_free(&rows);
 *
 * Packing never lets samples see each other: hone_model_forward_positions confines attention to each sample, and
 * the rows hold next-token targets (labels shifted within each sample), so no sample predicts the next one's
 * first token.
 */
#ifndef HONE_PACK_H
#define HONE_PACK_H

#include "hone/render.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { HONE_TRUNCATE_DROP = 0, HONE_TRUNCATE_CUT } hone_truncation;

typedef struct {
    int sequence_len;           /* tokens per row */
    int sample_packing;         /* 1: several samples per row (best-fit decreasing); 0: one per row, right-padded */
    hone_truncation truncation; /* a sample longer than sequence_len: dropped, or its tail cut */
    int32_t pad_id;             /* id of padding tokens (their labels are −100) */
    int virtual_tokens;         /* prompt tuning: this many placeholder tokens (pad_id, label −100, positions
                                   0..n−1) go before every sample and count in its length; 0 = none. Pass
                                   hone_model_virtual_tokens(model). */
} hone_pack_options;

typedef struct {
    int32_t *ids, *labels, *pos; /* n_rows × row_len each; labels are the next-token targets (already shifted) */
    int *used;                   /* real tokens of each row (the rest is padding) */
    int64_t *sample_at; /* per input sequence: row * row_len + column of its first token; -1 when not placed */
    size_t n_rows;
    int row_len;
    size_t n_samples;   /* samples placed in rows */
    size_t n_dropped;   /* longer than sequence_len, truncation drop */
    size_t n_truncated; /* longer than sequence_len, cut to it */
    size_t n_empty;     /* with no trained token left (after a cut): skipped */
    size_t n_tokens;    /* real tokens in all rows */
} hone_packed;

/* Places seqs[0..n) into rows. A sample's targets are its labels shifted left by one (the label of token t+1 is
 * the target at t), and the last token of a sample has no target, so nothing is predicted across samples.
 * Deterministic: rows and their order depend only on the input. */
hone_status hone_pack(const hone_sequence *seqs, size_t n, const hone_pack_options *o, hone_packed *out);
void hone_packed_free(hone_packed *p);
/* "drop" | "truncate"; anything else is an error. */
hone_status hone_truncation_parse(const char *name, hone_truncation *out);

#ifdef __cplusplus
}
#endif
#endif
