/* The encode and decode pipelines:
 *   encode: validate UTF-8 → split on added tokens → per plain segment:
 * optional prefix space, GPT-2 regex words, BPE per word → post-processor ids
 * around the whole (when add_special_tokens) decode: id → token (added tokens
 * first) → ByteLevel bytes → UTF-8 with U+FFFD for invalid sequences */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer_internal.h"

typedef struct {
  const hone_tokenizer *t;
  tok_bpe_scratch bpe;
  tok_ids *out;
} encode_ctx;

static hone_status encode_word(void *ctx, const uint8_t *w, size_t n) {
  encode_ctx *c = ctx;
  return tok_bpe_encode_word(c->t, &c->bpe, w, n, c->out);
}

static hone_status append_ids(tok_ids *out, const int32_t *ids, size_t n) {
  for (size_t i = 0; i < n; i++)
    HONE_TRY(tok_ids_push(out, ids[i]));
  return HONE_OK;
}

/* Encodes text[0..len) into out; the caller owns and frees everything passed
 * in. */
static hone_status encode_into(const hone_tokenizer *t, const uint8_t *text,
                               size_t len, int add_special, encode_ctx *ctx,
                               pcre2_match_data *md, tok_segments *segs,
                               tok_bytes *prefixed) {
  HONE_TRY(tok_added_split(t, text, len, segs));
  if (add_special)
    HONE_TRY(append_ids(ctx->out, t->post_prefix, t->n_post_prefix));
  for (size_t i = 0; i < segs->n; i++) {
    tok_segment s = segs->v[i];
    if (s.added) {
      HONE_TRY(tok_ids_push(ctx->out, s.added->id));
      continue;
    }
    const uint8_t *seg = text + s.start;
    size_t n = s.end - s.start;
    if (t->add_prefix_space &&
        seg[0] != ' ') { /* each plain segment gets its own prefix space */
      prefixed->n = 0;
      HONE_TRY(tok_bytes_append(prefixed, " ", 1));
      HONE_TRY(tok_bytes_append(prefixed, seg, n));
      seg = (const uint8_t *)prefixed->v;
      n = prefixed->n;
    }
    HONE_TRY(tok_byte_level_split(t, md, seg, n, encode_word, ctx));
  }
  if (add_special)
    HONE_TRY(append_ids(ctx->out, t->post_suffix, t->n_post_suffix));
  return HONE_OK;
}

hone_status hone_tokenizer_encode(const hone_tokenizer *t, const char *text,
                                  size_t len, int add_special_tokens,
                                  int32_t **ids, size_t *n) {
  *ids = NULL;
  *n = 0;
  size_t bad = tok_utf8_check((const uint8_t *)text, len);
  if (bad < len)
    return hone_errorf(
        HONE_ERR_INVALID,
        "invalid UTF-8 at byte %zu of the text to encode (byte 0x%02X)", bad,
        (uint8_t)text[bad]);
  tok_ids out = {0};
  encode_ctx ctx = {t, {.cache = tok_word_cache_get(t)}, &out};
  tok_segments segs = {0};
  tok_bytes prefixed = {0};
  pcre2_match_data *md = NULL;
  hone_status st = HONE_OK;
  if (t->regex && !(md = pcre2_match_data_create_from_pattern(t->regex, NULL)))
    st = hone_errorf(HONE_ERR_NOMEM, "out of memory for PCRE2 match data");
  if (st == HONE_OK)
    st = encode_into(t, (const uint8_t *)text, len, add_special_tokens, &ctx,
                     md, &segs, &prefixed);
  if (md)
    pcre2_match_data_free(md);
  tok_bpe_scratch_free(&ctx.bpe);
  free(segs.v);
  free(prefixed.v);
  if (st != HONE_OK || !out.n) {
    free(out.v);
    return st;
  }
  *ids = out.v;
  *n = out.n;
  return HONE_OK;
}

static hone_status decode_bytes(const hone_tokenizer *t, const int32_t *ids,
                                size_t n, int skip_special, tok_bytes *raw) {
  for (size_t i = 0; i < n; i++) {
    const tok_added *a = tok_added_by_id(t, ids[i]);
    if (a && a->special && skip_special)
      continue;
    const char *tok = hone_tokenizer_id_to_token(t, ids[i]);
    if (!tok)
      return hone_errorf(
          HONE_ERR_INVALID,
          "ids[%zu] = %d is not a token of %s (vocabulary size %d)", i, ids[i],
          t->path, t->vocab_size);
    HONE_TRY(tok_byte_level_decode_token(
        t, tok, a ? a->len : t->vocab_len[ids[i]], raw));
  }
  return HONE_OK;
}

hone_status hone_tokenizer_decode(const hone_tokenizer *t, const int32_t *ids,
                                  size_t n, int skip_special_tokens,
                                  char **text, size_t *len) {
  *text = NULL;
  *len = 0;
  tok_bytes raw = {0}, out = {0};
  hone_status st = decode_bytes(t, ids, n, skip_special_tokens, &raw);
  if (st == HONE_OK)
    st = tok_utf8_append_lossy(&out, (const uint8_t *)raw.v, raw.n);
  if (st == HONE_OK)
    st = tok_bytes_append(&out, "",
                          0); /* a NUL-terminated buffer even for no text */
  free(raw.v);
  if (st != HONE_OK) {
    free(out.v);
    return st;
  }
  *text = out.v;
  *len = out.n;
  return HONE_OK;
}
