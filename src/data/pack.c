/* Sample packing (see hone/pack.h). Best-fit decreasing: samples in decreasing length (ties in input order), each
 * into the open row with the least room that still fits it, else a new row. A segment tree over "room left"
 * finds that row in O(log sequence_len), so a million samples pack in well under a second. */
#include <stdlib.h>
#include <string.h>

#include "hone/pack.h"

#define IGNORE_INDEX (-100)

hone_status hone_truncation_parse(const char *name, hone_truncation *out) {
    if (!strcmp(name, "drop")) *out = HONE_TRUNCATE_DROP;
    else if (!strcmp(name, "truncate")) *out = HONE_TRUNCATE_CUT;
    else return hone_errorf(HONE_ERR_INVALID, "truncation: unknown value '%s' (expected drop or truncate)", name);
    return HONE_OK;
}

void hone_packed_free(hone_packed *p) {
    free(p->ids);
    free(p->labels);
    free(p->pos);
    free(p->used);
    free(p->sample_at);
    memset(p, 0, sizeof *p);
}

typedef struct {
    size_t index;
    int len; /* tokens it will take (after a cut) */
} sample_ref;

static int by_length_desc(const void *a, const void *b) {
    const sample_ref *x = a, *y = b;
    if (x->len != y->len) return x->len > y->len ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* Rows grouped by the room they have left: count[r] rows have r tokens free, in a segment tree over r that
 * answers "the smallest r >= len with a row". */
typedef struct {
    int size;        /* leaves: a power of two > sequence_len */
    int *count;      /* tree: 2 * size nodes, leaf i at size + i holds the number of rows with room i */
    size_t **rows;   /* per room: a stack of row indices */
    size_t *n_rows, *cap_rows;
} room_index;

static hone_status room_init(room_index *ri, int sequence_len) {
    memset(ri, 0, sizeof *ri);
    ri->size = 1;
    while (ri->size <= sequence_len) ri->size *= 2;
    ri->count = calloc(2 * (size_t)ri->size, sizeof *ri->count);
    ri->rows = calloc((size_t)ri->size, sizeof *ri->rows);
    ri->n_rows = calloc((size_t)ri->size, sizeof *ri->n_rows);
    ri->cap_rows = calloc((size_t)ri->size, sizeof *ri->cap_rows);
    if (!ri->count || !ri->rows || !ri->n_rows || !ri->cap_rows)
        return hone_errorf(HONE_ERR_NOMEM, "out of memory packing samples");
    return HONE_OK;
}

static void room_free(room_index *ri) {
    for (int i = 0; ri->rows && i < ri->size; i++) free(ri->rows[i]);
    free(ri->rows);
    free(ri->count);
    free(ri->n_rows);
    free(ri->cap_rows);
}

static void room_add(room_index *ri, int room, int delta) {
    for (int i = ri->size + room; i >= 1; i /= 2) ri->count[i] += delta;
}

static hone_status room_push(room_index *ri, int room, size_t row) {
    if (ri->n_rows[room] == ri->cap_rows[room]) {
        size_t cap = ri->cap_rows[room] ? 2 * ri->cap_rows[room] : 16;
        size_t *grown = realloc(ri->rows[room], cap * sizeof *grown);
        if (!grown) return hone_errorf(HONE_ERR_NOMEM, "out of memory packing samples");
        ri->rows[room] = grown;
        ri->cap_rows[room] = cap;
    }
    ri->rows[room][ri->n_rows[room]++] = row;
    room_add(ri, room, 1);
    return HONE_OK;
}

/* The smallest room in [len, hi] under `node` (covering [lo, hi]) that some row has, or -1. */
static int first_room(const room_index *ri, int node, int lo, int hi, int len) {
    if (hi < len || !ri->count[node]) return -1;
    if (lo == hi) return lo;
    const int mid = lo + (hi - lo) / 2, left = first_room(ri, 2 * node, lo, mid, len);
    return left >= 0 ? left : first_room(ri, 2 * node + 1, mid + 1, hi, len);
}

static int room_best_fit(const room_index *ri, int len) { return first_room(ri, 1, 0, ri->size - 1, len); }

static size_t room_pop(room_index *ri, int room) {
    room_add(ri, room, -1);
    return ri->rows[room][--ri->n_rows[room]];
}

/* Token t of a sample as packed: nv placeholders (o->pad_id, label -100) for prompt tuning's virtual tokens, then
 * the sample's own tokens. */
static int32_t token_id(const hone_sequence *s, const hone_pack_options *o, int t) {
    return t < o->virtual_tokens ? o->pad_id : s->input_ids[t - o->virtual_tokens];
}
static int32_t token_label(const hone_sequence *s, const hone_pack_options *o, int t) {
    return t < o->virtual_tokens ? IGNORE_INDEX : s->labels[t - o->virtual_tokens];
}

/* Writes sample s (its first len tokens, placeholders included) into row r at column c: ids, positions 0..,
 * shifted targets. */
static void place(hone_packed *p, const hone_sequence *s, const hone_pack_options *o, int len, size_t r, int c) {
    const size_t base = r * (size_t)p->row_len + (size_t)c;
    for (int t = 0; t < len; t++) {
        p->ids[base + t] = token_id(s, o, t);
        p->pos[base + t] = t;
        p->labels[base + t] = t + 1 < len ? token_label(s, o, t + 1) : IGNORE_INDEX;
    }
    p->used[r] = c + len;
}

static int trains_something(const hone_sequence *s, const hone_pack_options *o, int len) {
    for (int t = 1; t < len; t++)
        if (token_label(s, o, t) != IGNORE_INDEX) return 1;
    return 0;
}

hone_status hone_pack(const hone_sequence *seqs, size_t n, const hone_pack_options *o, hone_packed *out) {
    memset(out, 0, sizeof *out);
    const int L = o->sequence_len;
    if (L < 2) return hone_errorf(HONE_ERR_INVALID, "sequence_len must be at least 2 (got %d)", L);
    if (o->virtual_tokens < 0 || o->virtual_tokens >= L)
        return hone_errorf(HONE_ERR_INVALID, "%d virtual tokens leave no room in sequence_len %d", o->virtual_tokens,
                           L);
    sample_ref *refs = malloc((n ? n : 1) * sizeof *refs);
    if (!refs) return hone_errorf(HONE_ERR_NOMEM, "out of memory packing %zu samples", n);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        const size_t full = seqs[i].n + (size_t)o->virtual_tokens;
        int len = full > (size_t)L ? L : (int)full;
        if (full > (size_t)L) {
            if (o->truncation == HONE_TRUNCATE_DROP) {
                out->n_dropped++;
                continue;
            }
            out->n_truncated++;
        }
        if (!trains_something(&seqs[i], o, len)) {
            out->n_empty++;
            continue;
        }
        refs[m++] = (sample_ref){i, len};
    }
    if (o->sample_packing) qsort(refs, m, sizeof *refs, by_length_desc);

    /* assign rows: row_of[k], col_of[k] for refs[k] */
    size_t *row_of = malloc((m ? m : 1) * sizeof *row_of);
    int *col_of = malloc((m ? m : 1) * sizeof *col_of);
    int *fill = malloc((m ? m : 1) * sizeof *fill);
    room_index ri;
    hone_status st = row_of && col_of && fill ? room_init(&ri, L) : hone_errorf(HONE_ERR_NOMEM, "out of memory");
    size_t rows = 0;
    for (size_t k = 0; k < m && st == HONE_OK; k++) {
        const int len = refs[k].len;
        const int room = o->sample_packing ? room_best_fit(&ri, len) : -1;
        const size_t r = room >= 0 ? room_pop(&ri, room) : rows++;
        if (room < 0) fill[r] = 0;
        row_of[k] = r;
        col_of[k] = fill[r];
        fill[r] += len;
        if (o->sample_packing && L - fill[r] > 0) st = room_push(&ri, L - fill[r], r);
    }
    if (st == HONE_OK) {
        const size_t cells = rows * (size_t)L;
        out->row_len = L;
        out->n_rows = rows;
        out->ids = malloc((cells ? cells : 1) * sizeof *out->ids);
        out->labels = malloc((cells ? cells : 1) * sizeof *out->labels);
        out->pos = malloc((cells ? cells : 1) * sizeof *out->pos);
        out->used = calloc(rows ? rows : 1, sizeof *out->used);
        out->sample_at = malloc((n ? n : 1) * sizeof *out->sample_at);
        if (!out->ids || !out->labels || !out->pos || !out->used || !out->sample_at)
            st = hone_errorf(HONE_ERR_NOMEM, "out of memory for %zu packed rows of %d tokens", rows, L);
    }
    if (st == HONE_OK) {
        /* padding continues the positions of the row's last sample, so it stays a valid (ignored) tail */
        for (size_t i = 0; i < n; i++) out->sample_at[i] = -1;
        for (size_t k = 0; k < m; k++) {
            place(out, &seqs[refs[k].index], o, refs[k].len, row_of[k], col_of[k]);
            out->sample_at[refs[k].index] = (int64_t)(row_of[k] * (size_t)L) + col_of[k];
        }
        for (size_t r = 0; r < rows; r++) {
            int32_t *ids = out->ids + r * (size_t)L, *lab = out->labels + r * (size_t)L, *pos = out->pos + r * (size_t)L;
            for (int t = out->used[r]; t < L; t++) {
                ids[t] = o->pad_id;
                lab[t] = IGNORE_INDEX;
                pos[t] = pos[t - 1] + 1;
            }
            out->n_tokens += (size_t)out->used[r];
        }
        out->n_samples = m;
    }
    if (row_of && col_of && fill) room_free(&ri);
    free(row_of);
    free(col_of);
    free(fill);
    free(refs);
    if (st != HONE_OK) hone_packed_free(out);
    return st;
}
