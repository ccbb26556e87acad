/* Duplicates among ranked examples (hone_select_ifd with dedup): hone_dedup_texts over the examples' texts in rank
 * order, so the best-ranked copy stays and the others name it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "select/select_internal.h"

hone_status select_mark_duplicates(const size_t *order, size_t m, const hone_select_options *o, size_t *twin,
                                   double *similarity) {
    if (!o->texts || !o->text_lens) return hone_errorf(HONE_ERR_INVALID, "selection: dedup needs the examples' texts");
    const char **texts = calloc(m + 1, sizeof *texts);
    size_t *lens = calloc(m + 1, sizeof *lens);
    uint8_t *marks = malloc(m + 1);
    hone_status st = texts && lens && marks ? HONE_OK : hone_errorf(HONE_ERR_NOMEM, "out of memory");
    for (size_t r = 0; st == HONE_OK && r < m; r++) {
        texts[r] = o->texts[order[r]];
        lens[r] = o->text_lens[order[r]];
    }
    if (st == HONE_OK) st = hone_dedup_texts(texts, lens, m, o->dedup, &o->minhash, marks, twin, similarity);
    for (size_t r = 0; st == HONE_OK && r < m; r++)
        if (twin[r] != SIZE_MAX) twin[r] = order[twin[r]];
    free(texts);
    free(lens);
    free(marks);
    return st;
}

typedef struct {
    char **texts;
    size_t *lens;
    size_t n, cap;
} text_list;

static hone_status take_text(hone_example *ex, void *ctx) {
    text_list *l = ctx;
    if (l->n == l->cap) {
        const size_t cap = l->cap ? 2 * l->cap : 256;
        char **texts = realloc(l->texts, cap * sizeof *texts);
        if (texts) l->texts = texts;
        size_t *lens = texts ? realloc(l->lens, cap * sizeof *lens) : NULL;
        if (!lens) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
        l->lens = lens;
        l->cap = cap;
    }
    l->texts[l->n] = hone_dedup_text(ex, &l->lens[l->n]);
    if (!l->texts[l->n]) return HONE_ERR_NOMEM;
    l->n++;
    return HONE_OK;
}

hone_status hone_dedup_texts_file(const char *data_path, const hone_dataset_options *dataset, char ***texts,
                                  size_t **lens, size_t *n) {
    text_list l = {0};
    hone_status st = hone_dataset_read(data_path, dataset, take_text, &l, NULL);
    if (st != HONE_OK) {
        for (size_t i = 0; i < l.n; i++) free(l.texts[i]);
        free(l.texts);
        free(l.lens);
        return st;
    }
    *texts = l.texts;
    *lens = l.lens;
    *n = l.n;
    return HONE_OK;
}
