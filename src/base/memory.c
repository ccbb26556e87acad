/* 64-byte aligned, zeroed allocations. */
#include "hone/base.h"

#include <stdlib.h>
#include <string.h>

void *hone_alloc(size_t bytes) {
    size_t rounded = (bytes + 63) & ~(size_t)63;
    if (rounded == 0) rounded = 64;
    void *p = aligned_alloc(64, rounded);
    if (!p) {
        hone_errorf(HONE_ERR_NOMEM, "out of memory allocating %zu bytes", bytes);
        return NULL;
    }
    memset(p, 0, rounded);
    return p;
}

void hone_free(void *p) { free(p); }
