/* UTF-8 validation and lossy repair. The replacement rule is Unicode's "maximal
 * subpart" substitution (one U+FFFD per maximal invalid prefix), which is what
 * Rust's String::from_utf8_lossy — and so Hugging Face's decoders — do. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer_internal.h"

size_t tok_utf8_next(const uint8_t *s, size_t n, uint32_t *cp, size_t *bad) {
  uint8_t c = s[0];
  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  /* need = continuation bytes; [lo, hi] = allowed range of the second byte
   * (excludes overlongs, surrogates and code points above U+10FFFF) */
  size_t need;
  uint8_t lo = 0x80, hi = 0xBF;
  uint32_t v;
  if (c >= 0xC2 && c <= 0xDF)
    need = 1, v = c & 0x1F;
  else if (c >= 0xE0 && c <= 0xEF)
    need = 2, v = c & 0x0F, lo = c == 0xE0 ? 0xA0 : 0x80,
    hi = c == 0xED ? 0x9F : 0xBF;
  else if (c >= 0xF0 && c <= 0xF4)
    need = 3, v = c & 0x07, lo = c == 0xF0 ? 0x90 : 0x80,
    hi = c == 0xF4 ? 0x8F : 0xBF;
  else {
    *bad = 1;
    return 0;
  }
  for (size_t k = 1; k <= need; k++) {
    uint8_t b = k < n ? s[k] : 0;
    int ok =
        k < n && (k == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF));
    if (!ok) {
      *bad = k;
      return 0;
    }
    v = (v << 6) | (b & 0x3F);
  }
  *cp = v;
  return need + 1;
}

size_t tok_utf8_check(const uint8_t *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    if (s[i] < 0x80) { /* ASCII fast path: most text */
      i++;
      continue;
    }
    uint32_t cp;
    size_t bad;
    size_t k = tok_utf8_next(s + i, n - i, &cp, &bad);
    if (!k)
      return i;
    i += k;
  }
  return n;
}

hone_status tok_utf8_append_lossy(tok_bytes *out, const uint8_t *s, size_t n) {
  static const char replacement[3] = {(char)0xEF, (char)0xBF, (char)0xBD};
  size_t i = 0;
  while (i < n) {
    size_t valid = tok_utf8_check(s + i, n - i);
    HONE_TRY(tok_bytes_append(out, s + i, valid));
    i += valid;
    if (i == n)
      break;
    uint32_t cp;
    size_t bad = 1;
    tok_utf8_next(s + i, n - i, &cp, &bad);
    HONE_TRY(tok_bytes_append(out, replacement, 3));
    i += bad;
  }
  return HONE_OK;
}

int tok_is_whitespace(uint32_t cp) {
  /* the complete White_Space property of Unicode (25 code points) */
  if (cp <= 0x20)
    return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D);
  if (cp < 0x85)
    return 0;
  return cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
         cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

hone_status tok_ids_push(tok_ids *a, int32_t id) {
  if (a->n == a->cap) {
    size_t cap = a->cap ? 2 * a->cap : 256;
    int32_t *v = realloc(a->v, cap * sizeof *v);
    if (!v)
      return hone_errorf(HONE_ERR_NOMEM,
                         "out of memory growing a token id array to %zu ids",
                         cap);
    a->v = v;
    a->cap = cap;
  }
  a->v[a->n++] = id;
  return HONE_OK;
}

hone_status tok_bytes_append(tok_bytes *b, const void *data, size_t n) {
  if (b->n + n + 1 > b->cap) { /* +1: room for a terminating NUL */
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + n + 1)
      cap *= 2;
    char *v = realloc(b->v, cap);
    if (!v)
      return hone_errorf(HONE_ERR_NOMEM,
                         "out of memory growing a text buffer to %zu bytes",
                         cap);
    b->v = v;
    b->cap = cap;
  }
  if (n)
    memcpy(b->v + b->n, data, n);
  b->n += n;
  b->v[b->n] = 0;
  return HONE_OK;
}

uint64_t tok_hash_bytes(const void *data, size_t n) {
  /* FNV-1a, then a final mix so that the low bits used by the table are well
   * spread */
  uint64_t h = hone_fnv1a64(data, n);
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h;
}
