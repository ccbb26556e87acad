/* libFuzzer target for the safetensors parser: any byte string must either open (and then every tensor must
 * lie inside the input and convert without faults) or fail with a message — never crash or read outside.
 * libFuzzer hands each input over in a heap block of exactly `size` bytes, so AddressSanitizer flags any read
 * past its end. */
#include <stdlib.h>
#include <string.h>

#include "hone/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    hone_st_file f;
    hone_error_clear();
    if (hone_st_open_memory(&f, data, size, "fuzz-input") != HONE_OK) {
        if (strcmp(hone_error(), "unknown error") == 0) abort(); /* every failure must explain itself */
        return 0;
    }
    for (size_t i = 0; i < f.n_tensors; i++) {
        const hone_st_tensor *t = &f.tensors[i];
        if (t->data < data || t->nbytes > size || (size_t)(t->data - data) > size - t->nbytes) abort();
        if (hone_st_find(&f, t->name) != t) abort();
        float *out = malloc((size_t)t->numel * sizeof(float) + 1);
        if (out) hone_st_tensor_to_f32(t, out);
        free(out);
    }
    hone_st_close(&f);
    return 0;
}
