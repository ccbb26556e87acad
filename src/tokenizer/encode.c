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
  tok_pre_scratch pre; /* the pre-tokenizer pipeline's (pretokenize.c) */
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

/* Pre-tokenizes one plain piece (after normalization) and runs BPE on its
 * words. first: the piece starts the input (Metaspace prepend_scheme
 * "first"). */
static hone_status encode_piece(const hone_tokenizer *t, const uint8_t *seg,
                                size_t n, int first, encode_ctx *ctx,
                                pcre2_match_data *md, tok_bytes *buf) {
  if (!n)
    return HONE_OK;
  if (t->n_pre)
    return tok_pre_tokenize(t, &ctx->pre, md, seg, n, first, encode_word, ctx);
  if (t->metaspace)
    return tok_metaspace_split(t, seg, n, first, buf, encode_word, ctx);
  if (!t->byte_level)
    return encode_word(ctx, seg, n); /* no pre-tokenizer: one word */
  if (t->add_prefix_space &&
      seg[0] != ' ') { /* each plain segment gets its own prefix space */
    buf->n = 0;
    HONE_TRY(tok_bytes_append(buf, " ", 1));
    HONE_TRY(tok_bytes_append(buf, seg, n));
    seg = (const uint8_t *)buf->v;
    n = buf->n;
  }
  return tok_byte_level_split(t, md, seg, n, encode_word, ctx);
}

/* Encodes text[0..len) into out, as Hugging Face does: added tokens with
 * normalized=false are cut out of the raw text; each piece between them is
 * normalized, then added tokens with normalized=true (their normalized
 * content) are cut out of it; what remains is pre-tokenized and BPE'd. */
static hone_status encode_into(const hone_tokenizer *t, const uint8_t *text,
                               size_t len, int add_special, encode_ctx *ctx,
                               pcre2_match_data *md, tok_segments *segs,
                               tok_bytes *buf) {
  tok_segments segs2 = {0};
  tok_bytes norm = {0};
  hone_status st = HONE_OK;
  if (add_special)
    st = append_ids(ctx->out, t->post_prefix, t->n_post_prefix);
  segs->n = 0;
  if (st == HONE_OK)
    st = t->n_added ? tok_added_split_pass(t, text, 0, len, 0, segs)
                    : (len ? tok_added_split(t, text, len, segs) : HONE_OK);
  for (size_t i = 0; i < segs->n && st == HONE_OK; i++) {
    tok_segment s = segs->v[i];
    if (s.added) {
      st = tok_ids_push(ctx->out, s.added->id);
      continue;
    }
    const uint8_t *seg = text + s.start;
    size_t n = s.end - s.start;
    if (t->n_norm) {
      if ((st = tok_normalize(t, seg, n, &norm)) != HONE_OK)
        break;
      seg = (const uint8_t *)norm.v;
      n = norm.n;
    }
    segs2.n = 0;
    if (t->n_added)
      st = tok_added_split_pass(t, seg, 0, n, 1, &segs2);
    else
      st = encode_piece(t, seg, n, s.start == 0, ctx, md, buf);
    for (size_t k = 0; k < segs2.n && st == HONE_OK; k++) {
      tok_segment s2 = segs2.v[k];
      st = s2.added ? tok_ids_push(ctx->out, s2.added->id)
                    : encode_piece(t, seg + s2.start, s2.end - s2.start,
                                   s.start == 0 && s2.start == 0, ctx, md,
                                   buf);
    }
  }
  if (add_special && st == HONE_OK)
    st = append_ids(ctx->out, t->post_suffix, t->n_post_suffix);
  free(segs2.v);
  free(norm.v);
  return st;
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
  encode_ctx ctx = {.t = t, .bpe = {.cache = tok_word_cache_get(t)}, .out = &out};
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
  tok_pre_scratch_free(&ctx.pre);
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

/* Without ByteLevel: the token strings through the decoder steps. */
static hone_status decode_seq(const hone_tokenizer *t, const int32_t *ids,
                              size_t n, int skip_special, tok_bytes *raw) {
  const char **toks = malloc((n ? n : 1) * sizeof *toks);
  size_t *lens = malloc((n ? n : 1) * sizeof *lens), m = 0;
  hone_status st = HONE_OK;
  if (!toks || !lens)
    st = hone_errorf(HONE_ERR_NOMEM, "out of memory decoding %zu ids", n);
  for (size_t i = 0; i < n && st == HONE_OK; i++) {
    const tok_added *a = tok_added_by_id(t, ids[i]);
    if (a && a->special && skip_special)
      continue;
    const char *tok = hone_tokenizer_id_to_token(t, ids[i]);
    if (!tok) {
      st = hone_errorf(
          HONE_ERR_INVALID,
          "ids[%zu] = %d is not a token of %s (vocabulary size %d)", i, ids[i],
          t->path, t->vocab_size);
      break;
    }
    toks[m] = tok;
    lens[m++] = a ? a->len : t->vocab_len[ids[i]];
  }
  if (st == HONE_OK)
    st = tok_decode_seq(t, toks, lens, m, raw);
  free(toks);
  free(lens);
  return st;
}

static hone_status decode_bytes(const hone_tokenizer *t, const int32_t *ids,
                                size_t n, int skip_special, tok_bytes *raw) {
  if (!t->byte_level)
    return decode_seq(t, ids, n, skip_special, raw);
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
