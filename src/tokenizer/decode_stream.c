/* Streaming decode for generation: text comes out as tokens arrive, each piece valid UTF-8. */
#include <stdlib.h>
#include <string.h>

#include "hone/tokenizer.h"

struct hone_decode_stream {
    const hone_tokenizer *tok;
    int32_t *ids;
    size_t n, cap;
    size_t emitted; /* bytes of the decoded text already handed out */
};

hone_status hone_decode_stream_new(hone_decode_stream **out, const hone_tokenizer *tok) {
    *out = calloc(1, sizeof **out);
    if (!*out) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    (*out)->tok = tok;
    return HONE_OK;
}

void hone_decode_stream_free(hone_decode_stream *d) {
    if (!d) return;
    free(d->ids);
    free(d);
}

/* A replacement character at the very end may be a multi-byte character whose remaining tokens have not come yet:
 * hold it back until they do (or until the stream is flushed). */
static size_t stable_length(const char *text, size_t len) {
    if (len >= 3 && (unsigned char)text[len - 3] == 0xEF && (unsigned char)text[len - 2] == 0xBF &&
        (unsigned char)text[len - 1] == 0xBD)
        return len - 3;
    return len;
}

static hone_status emit(hone_decode_stream *d, int flush, char **piece, size_t *len) {
    char *text = NULL;
    size_t n = 0;
    *piece = NULL;
    *len = 0;
    HONE_TRY(hone_tokenizer_decode(d->tok, d->ids, d->n, 0, &text, &n));
    size_t stable = flush ? n : stable_length(text, n);
    /* Decoding a longer id sequence extends the text of a shorter one; if a decoder ever rewrote the already
     * emitted part, nothing is emitted until the text catches up again. */
    if (stable > d->emitted) {
        *len = stable - d->emitted;
        *piece = malloc(*len + 1);
        if (!*piece) {
            free(text);
            return hone_errorf(HONE_ERR_NOMEM, "out of memory");
        }
        memcpy(*piece, text + d->emitted, *len);
        (*piece)[*len] = 0;
        d->emitted = stable;
    }
    free(text);
    return HONE_OK;
}

hone_status hone_decode_stream_push(hone_decode_stream *d, int32_t id, char **piece, size_t *len) {
    if (d->n == d->cap) {
        size_t cap = d->cap ? 2 * d->cap : 64;
        int32_t *grown = realloc(d->ids, cap * sizeof(int32_t));
        if (!grown) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
        d->ids = grown;
        d->cap = cap;
    }
    d->ids[d->n++] = id;
    return emit(d, 0, piece, len);
}

hone_status hone_decode_stream_flush(hone_decode_stream *d, char **piece, size_t *len) { return emit(d, 1, piece, len); }
