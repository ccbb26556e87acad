/* Which rows an optimizer step trains on, and the keys of its random masks: pure functions of the seed, the epoch
 * and the step, so that a resumed run needs nothing else to continue exactly. */
#include <stdlib.h>

#include "train/train_internal.h"

#define DATA_ORDER_STREAM 0x64617461u /* "data" */
#define DROPOUT_STREAM 0x64726f70u    /* "drop" */

void train_epoch_order(int64_t *order, int64_t n, int shuffle, uint64_t seed, int epoch) {
    for (int64_t i = 0; i < n; i++) order[i] = i;
    if (!shuffle) return;
    hone_rng rng = hone_rng_new(seed, DATA_ORDER_STREAM + (uint64_t)epoch);
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(hone_rng_u64(&rng) % (uint64_t)(i + 1));
        int64_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

typedef struct {
    int length;
    int64_t rank; /* place in the megabatch before sorting: equal lengths keep it, as Python's stable sort */
    int64_t row;
} keyed_row;

static int by_length_descending(const void *a, const void *b) {
    const keyed_row *x = a, *y = b;
    if (x->length != y->length) return x->length < y->length ? 1 : -1;
    return (x->rank > y->rank) - (x->rank < y->rank);
}

hone_status hone_length_grouped_order(int64_t *order, int64_t n, const int *lengths, int batch_size) {
    if (n <= 0) return HONE_OK;
    int64_t mult = n / ((int64_t)batch_size * 4);
    mult = mult > 50 ? 50 : mult < 1 ? 1 : mult;
    const int64_t mega = mult * batch_size;
    keyed_row *rows = malloc(sizeof *rows * (size_t)(mega < n ? mega : n));
    if (!rows) return hone_errorf(HONE_ERR_NOMEM, "out of memory grouping %lld rows by length", (long long)n);
    int64_t longest_start = 0;
    for (int64_t start = 0; start < n; start += mega) {
        const int64_t len = n - start < mega ? n - start : mega;
        for (int64_t i = 0; i < len; i++) rows[i] = (keyed_row){lengths[order[start + i]], i, order[start + i]};
        qsort(rows, (size_t)len, sizeof *rows, by_length_descending);
        for (int64_t i = 0; i < len; i++) order[start + i] = rows[i].row;
        /* torch.argmax: the first megabatch with the greatest maximum */
        if (lengths[order[start]] > lengths[order[longest_start]]) longest_start = start;
    }
    free(rows);
    const int64_t t = order[0];
    order[0] = order[longest_start];
    order[longest_start] = t;
    return HONE_OK;
}

uint64_t hone_train_dropout_key(uint64_t seed, int64_t step, int micro) {
    hone_rng rng = hone_rng_new(seed, DROPOUT_STREAM + (uint64_t)step);
    rng.counter = (uint64_t)micro;
    return hone_rng_u64(&rng);
}
