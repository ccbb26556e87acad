/* Batches of non-blank lines of a text buffer, for line-parallel processing of JSONL files. */
#include "hone/base.h"

#include <string.h>

static int is_blank(const char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r') return 0;
    return 1;
}

size_t hone_next_lines(const char *data, size_t size, size_t *pos, size_t *line_no, hone_line *out, size_t max) {
    size_t n = 0;
    while (n < max && *pos < size) {
        const char *start = data + *pos, *nl = memchr(start, '\n', size - *pos);
        size_t len = nl ? (size_t)(nl - start) : size - *pos;
        *pos += len + (nl ? 1 : 0);
        ++*line_no;
        if (!is_blank(start, len)) out[n++] = (hone_line){start, len, *line_no};
    }
    return n;
}
