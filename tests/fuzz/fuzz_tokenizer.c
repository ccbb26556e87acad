/* libFuzzer target: tokenizer.json loading must fail cleanly on any input, and a tokenizer that loads must
 * encode any text (valid or not) and decode its ids without crashing. The first 2 input bytes give the length
 * of the text part, the rest is the tokenizer.json (written to a temporary path: the loader reads files). */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "hone/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    size_t text_len = ((size_t)data[0] << 8 | data[1]) % 512;
    if (text_len > size - 2) text_len = size - 2;
    const char *text = (const char *)data + 2;
    char path[64];
    snprintf(path, sizeof path, "/tmp/hone-fuzz-tokenizer-%ld.json", (long)getpid());
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    fwrite(data + 2 + text_len, 1, size - 2 - text_len, f);
    fclose(f);
    hone_log_set_level(HONE_LOG_ERROR);
    hone_tokenizer *tok;
    if (hone_tokenizer_load(&tok, path) == HONE_OK) {
        int32_t *ids = NULL;
        size_t n = 0;
        if (hone_tokenizer_encode(tok, text, text_len, 1, &ids, &n) == HONE_OK) {
            char *back = NULL;
            size_t len = 0;
            if (hone_tokenizer_decode(tok, ids, n, 0, &back, &len) == HONE_OK) free(back);
            free(ids);
        }
        hone_tokenizer_free(tok);
    }
    unlink(path);
    return 0;
}
