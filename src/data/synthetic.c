/* Built-in synthetic text: a tiny grammar of sentences, sums and counting sequences. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hone/data.h"

static const char *const subjects[] = {"the cat", "the dog", "a bird", "the old man", "my sister", "the teacher",
                                       "a small child", "the farmer"};
static const char *const verbs[] = {"sees", "likes", "finds", "carries", "paints", "follows", "watches", "feeds"};
static const char *const objects[] = {"the red ball", "a green apple", "the big tree", "a blue boat", "the river",
                                      "an old book", "the yellow house", "a white cloud"};
static const char *const places[] = {"in the garden", "by the sea", "at home", "in the park", "near the hill"};

#define PICK(arr) arr[hone_rng_u64(rng) % (sizeof arr / sizeof arr[0])]

/* Line kinds 0-3 are hone_synthetic_text's: two sentence kinds, a one-digit sum, a count. */
static void grammar_line(hone_rng *rng, int kind, char *line, size_t size) {
    if (kind <= 1) {
        snprintf(line, size, "%s %s %s %s.\n", PICK(subjects), PICK(verbs), PICK(objects), PICK(places));
    } else if (kind == 2) {
        int a = (int)(hone_rng_u64(rng) % 10), b = (int)(hone_rng_u64(rng) % 10);
        snprintf(line, size, "%d + %d = %d.\n", a, b, a + b);
    } else {
        int start = (int)(hone_rng_u64(rng) % 10);
        int n = snprintf(line, size, "count:");
        for (int i = 0; i < 5; i++) n += snprintf(line + n, size - (size_t)n, " %d", start + i);
        snprintf(line + n, size - (size_t)n, ".\n");
    }
}

/* Line kinds 4-7 of hone_synthetic_skill_text: the skills of the instruction suite (hone/tasks.h) written as plain
 * text, in other words than its prompts. */
static void skill_line(hone_rng *rng, int kind, char *line, size_t size) {
    if (kind == 4) {
        int start = 10 + (int)(hone_rng_u64(rng) % 85);
        int n = snprintf(line, size, "count:");
        for (int i = 0; i < 5; i++) n += snprintf(line + n, size - (size_t)n, " %d", start + i);
        snprintf(line + n, size - (size_t)n, ".\n");
    } else if (kind == 5) {
        char word[4], back[4];
        for (int i = 0; i < 3; i++) word[i] = (char)('a' + hone_rng_u64(rng) % 26);
        for (int i = 0; i < 3; i++) back[i] = word[2 - i];
        word[3] = back[3] = 0;
        snprintf(line, size, "%s turned around is %s.\n", word, back);
    } else if (kind == 6) {
        int d[3];
        for (int i = 0; i < 3; i++) d[i] = (int)(hone_rng_u64(rng) % 10);
        const int lo = d[0] < d[1] ? (d[0] < d[2] ? d[0] : d[2]) : (d[1] < d[2] ? d[1] : d[2]);
        const int hi = d[0] > d[1] ? (d[0] > d[2] ? d[0] : d[2]) : (d[1] > d[2] ? d[1] : d[2]);
        snprintf(line, size, "%d %d %d in order is %d %d %d.\n", d[0], d[1], d[2], lo, d[0] + d[1] + d[2] - lo - hi,
                 hi);
    } else {
        const int n = 10 + (int)(hone_rng_u64(rng) % 89);
        snprintf(line, size, "one more than %d is %d.\n", n, n + 1);
    }
}

static char *text_of_lines(uint64_t seed, size_t n_bytes, int kinds) {
    char *out = malloc(n_bytes + 1);
    if (!out) return NULL;
    hone_rng r = hone_rng_new(seed, 0x74657874 /* "text" */), *rng = &r;
    size_t len = 0;
    char line[256];
    while (len < n_bytes) {
        const int kind = (int)(hone_rng_u64(rng) % (uint64_t)kinds);
        if (kind < 4) grammar_line(rng, kind, line, sizeof line);
        else skill_line(rng, kind, line, sizeof line);
        size_t k = strlen(line);
        if (k > n_bytes - len) k = n_bytes - len;
        memcpy(out + len, line, k);
        len += k;
    }
    out[len] = 0;
    return out;
}

char *hone_synthetic_text(uint64_t seed, size_t n_bytes) { return text_of_lines(seed, n_bytes, 4); }

char *hone_synthetic_skill_text(uint64_t seed, size_t n_bytes) { return text_of_lines(seed, n_bytes, 8); }

hone_status hone_tokens_from_bytes(hone_token_stream *s, const char *text, size_t n) {
    memset(s, 0, sizeof *s);
    s->tokens = malloc(sizeof(int32_t) * (n ? n : 1));
    if (!s->tokens) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) s->tokens[i] = (unsigned char)text[i];
    s->n_tokens = n;
    s->n_documents = 1;
    return HONE_OK;
}
