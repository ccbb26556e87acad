/* Built-in synthetic text: a tiny grammar of sentences, sums and counting sequences. */
#include <stdlib.h>
#include <string.h>

#include "hone/data.h"

static const char *const subjects[] = {"the cat", "the dog", "a bird", "the old man", "my sister", "the teacher",
                                       "a small child", "the farmer"};
static const char *const verbs[] = {"sees", "likes", "finds", "carries", "paints", "follows", "watches", "feeds"};
static const char *const objects[] = {"the red ball", "a green apple", "the big tree", "a blue boat", "the river",
                                      "an old book", "the yellow house", "a white cloud"};
static const char *const places[] = {"in the garden", "by the sea", "at home", "in the park", "near the hill"};

#define PICK(arr) arr[hone_rng_u64(&rng) % (sizeof arr / sizeof arr[0])]

char *hone_synthetic_text(uint64_t seed, size_t n_bytes) {
    char *out = malloc(n_bytes + 1);
    if (!out) return NULL;
    hone_rng rng = hone_rng_new(seed, 0x74657874 /* "text" */);
    size_t len = 0;
    char line[256];
    while (len < n_bytes) {
        int kind = (int)(hone_rng_u64(&rng) % 4);
        if (kind <= 1) {
            snprintf(line, sizeof line, "%s %s %s %s.\n", PICK(subjects), PICK(verbs), PICK(objects), PICK(places));
        } else if (kind == 2) {
            int a = (int)(hone_rng_u64(&rng) % 10), b = (int)(hone_rng_u64(&rng) % 10);
            snprintf(line, sizeof line, "%d + %d = %d.\n", a, b, a + b);
        } else {
            int start = (int)(hone_rng_u64(&rng) % 10);
            int n = snprintf(line, sizeof line, "count:");
            for (int i = 0; i < 5; i++) n += snprintf(line + n, sizeof line - (size_t)n, " %d", start + i);
            snprintf(line + n, sizeof line - (size_t)n, ".\n");
        }
        size_t k = strlen(line);
        if (k > n_bytes - len) k = n_bytes - len;
        memcpy(out + len, line, k);
        len += k;
    }
    out[len] = 0;
    return out;
}

hone_status hone_tokens_from_bytes(hone_token_stream *s, const char *text, size_t n) {
    memset(s, 0, sizeof *s);
    s->tokens = malloc(sizeof(int32_t) * (n ? n : 1));
    if (!s->tokens) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) s->tokens[i] = (unsigned char)text[i];
    s->n_tokens = n;
    s->n_documents = 1;
    return HONE_OK;
}
