/* Internals of the tokenizer module, shared by its files:
 *   tokenizer_json.c  loading + validation of tokenizer.json, the public
 * accessors bpe.c             merge table, the BPE merge loop of one word and
 * the per-thread word cache in front of it
 *   byte_level.c      byte↔unicode table, GPT-2 regex pre-tokenizer, ByteLevel
 * decoding of a token added_tokens.c    added tokens: loading, splitting the
 * input on them utf8.c            UTF-8 validation and lossy repair; the
 * growable buffers and hash the module shares encode.c          the encode /
 * decode pipelines and the post-processor */
#ifndef HONE_TOKENIZER_INTERNAL_H
#define HONE_TOKENIZER_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <jansson.h>
#include <pcre2.h>

#include "hone/tokenizer.h"

/* A growable array of ids / bytes; `cap` grows by doubling. */
typedef struct {
  int32_t *v;
  size_t n, cap;
} tok_ids;

typedef struct {
  char *v;
  size_t n, cap;
} tok_bytes;

hone_status tok_ids_push(tok_ids *a, int32_t id);
hone_status tok_bytes_append(tok_bytes *b, const void *data, size_t n);

/* Open-addressing hash from a byte string to an id, over strings owned
 * elsewhere (strs[id], lens[id]). slots[i] = id or -1; the table is at most
 * half full. */
typedef struct {
  int32_t *slots;
  uint32_t mask;
} tok_str_index;

uint64_t tok_hash_bytes(const void *data, size_t n);

/* One entry of added_tokens. Non-normalized ones are matched in the raw input,
 * normalized ones in the normalized text by their normalized content. */
typedef struct {
  int32_t id;
  char *content;
  size_t len;
  int special, lstrip, rstrip, normalized;
  /* what the input is searched for: content, or for a normalized token with a
   * normalizer the normalized content (as Hugging Face matches it in the
   * normalized text) */
  char *match;
  size_t match_len;
} tok_added;

/* normalizer steps, applied in order to each plain segment */
typedef struct {
  enum { TOK_NORM_PREPEND, TOK_NORM_REPLACE } kind;
  char *a, *b; /* Prepend: a = prefix; Replace: a → b */
  size_t la, lb;
} tok_norm_op;

/* decoder steps over the list of token strings, in order */
typedef struct {
  enum {
    TOK_DEC_REPLACE,
    TOK_DEC_BYTE_FALLBACK,
    TOK_DEC_FUSE,
    TOK_DEC_STRIP,
    TOK_DEC_METASPACE
  } kind;
  char *a, *b; /* Replace: a → b; Strip: a = the character; Metaspace: a */
  size_t la, lb;
  int start, stop; /* Strip; Metaspace: start = strip the first token's space */
} tok_dec_op;

struct hone_tokenizer {
  char *path; /* the tokenizer.json file, for messages */

  /* model.vocab: vocab[id] (NUL-terminated, NULL for ids no key maps to),
   * indexed by vocab_index */
  char **vocab;
  uint32_t *vocab_len;
  int32_t n_vocab; /* 1 + highest id in model.vocab */
  tok_str_index vocab_index;

  /* model.merges: (left id, right id) → rank and merged id, open addressing
   * keyed by left << 32 | right; key, rank and id share a slot so that a
   * lookup touches one cache line */
  struct tok_merge {
    uint64_t key; /* UINT64_MAX = empty */
    int32_t rank, id;
  } *merges;
  uint32_t merge_mask;

  int32_t unk_id; /* model.unk_token's id, or -1 */
  int fuse_unk, ignore_merges;

  /* ByteLevel: byte_id[b] = id of the one-character token that stands for byte
   * b (-1 if the vocab lacks it); byte_char[b] = that character in UTF-8 (1–2
   * bytes), byte_char_len[b] its length. */
  int32_t byte_id[256];
  char byte_char[256][3];
  uint8_t byte_char_len[256];
  int16_t char_byte[324]; /* inverse: code point of a byte character → byte, -1
                             for other code points */
  int add_prefix_space, use_regex;
  int byte_level; /* pre_tokenizer ByteLevel (+ decoder ByteLevel); otherwise
                     the vocabulary holds plain UTF-8 and BPE starts from
                     characters */
  int byte_fallback; /* model.byte_fallback: a character with no token becomes
                        its <0xXX> byte tokens */
  int32_t fallback_id[256]; /* id of "<0xXX>", or -1 */

  tok_norm_op *norm; /* normalizer steps (Sequence flattened), n_norm of them */
  size_t n_norm;
  /* pre_tokenizer Metaspace: replacement (ms_rep), prepend_scheme (0 never,
   * 1 always, 2 first), split */
  int metaspace, ms_prepend, ms_split;
  char ms_rep[8];
  size_t ms_rep_len;
  tok_dec_op *dec; /* decoder steps when not ByteLevel */
  size_t n_dec;
  pcre2_code *regex;
  int regex_jit; /* regex was JIT-compiled: match with pcre2_jit_match */

  tok_added *added; /* sorted by id */
  size_t n_added;
  /* added tokens by first byte, longest first:
   * added_by_byte[b][0..n_by_byte[b]) are indices into `added` */
  uint32_t *added_by_byte[256];
  uint32_t n_by_byte[256];
  /* the same by first byte of `match`, longest first, for splitting */
  uint32_t *match_by_byte[256];
  uint32_t n_match_by_byte[256];

  /* post_processor TemplateProcessing "single": ids before and after the
   * sequence */
  int32_t *post_prefix, *post_suffix;
  size_t n_post_prefix, n_post_suffix;

  int32_t vocab_size; /* 1 + highest id of vocab and added tokens */
  uint64_t serial;    /* unique per load (from 1): names the word caches' owner */
};

/* ---- utf8.c ---- */
/* Length (1–4) of the valid UTF-8 character at s[0..n), with its code point in
 * *cp; 0 when s starts with an invalid sequence, then *bad = length of its
 * maximal invalid prefix (≥ 1), the unit one U+FFFD replaces. */
size_t tok_utf8_next(const uint8_t *s, size_t n, uint32_t *cp, size_t *bad);
/* Offset of the first invalid byte of s[0..n), or n when all of it is valid
 * UTF-8. */
size_t tok_utf8_check(const uint8_t *s, size_t n);
/* Appends s[0..n) to out with every maximal invalid sequence replaced by
 * U+FFFD. */
hone_status tok_utf8_append_lossy(tok_bytes *out, const uint8_t *s, size_t n);
/* Unicode White_Space (what Rust's char::is_whitespace and Hugging Face's
 * lstrip/rstrip use). */
int tok_is_whitespace(uint32_t cp);

/* ---- bpe.c ---- */
typedef struct tok_word_cache tok_word_cache;
/* The calling thread's word cache, emptied first if it held another
 * tokenizer's words; NULL when none can be allocated (then nothing is cached).
 * Valid until the thread exits; never pass it to another thread. */
tok_word_cache *tok_word_cache_get(const hone_tokenizer *t);

/* Reads model.merges (array of "a b" strings or [a, b] pairs) into the merge
 * table; both halves and their concatenation must be in the vocab. */
hone_status tok_bpe_load_merges(hone_tokenizer *t, json_t *merges);
/* Scratch reused across words of one encode call (never shared between
 * threads). */
typedef struct {
  struct tok_symbol *sym;
  struct tok_pair *heap;
  size_t sym_cap, heap_cap;
  tok_bytes word; /* the word in vocabulary form, for ignore_merges */
  tok_word_cache *cache; /* this thread's, or NULL */
} tok_bpe_scratch;
void tok_bpe_scratch_free(tok_bpe_scratch *s);
/* Appends the BPE tokens of one pre-token word (raw bytes w[0..n), n ≥ 1) to
 * out. */
hone_status tok_bpe_encode_word(const hone_tokenizer *t, tok_bpe_scratch *s,
                                const uint8_t *w, size_t n, tok_ids *out);
/* Vocabulary lookup of s[0..n): id or -1. */
int32_t tok_vocab_find(const hone_tokenizer *t, const char *s, size_t n);

/* ---- byte_level.c ---- */
/* Fills byte_char / byte_char_len / byte_id (after the vocab is loaded) and
 * compiles the GPT-2 regex. */
hone_status tok_byte_level_init(hone_tokenizer *t);
/* Calls word(ctx, start, len) for each pre-token of text[0..n) (valid UTF-8) in
 * order. */
typedef hone_status (*tok_word_fn)(void *ctx, const uint8_t *w, size_t n);
hone_status tok_byte_level_split(const hone_tokenizer *t, pcre2_match_data *md,
                                 const uint8_t *text, size_t n,
                                 tok_word_fn word, void *ctx);
/* The same split by PCRE2 alone, without the ASCII fast path: the definition the tests hold the fast path to. */
hone_status tok_byte_level_split_pcre2(const hone_tokenizer *t, pcre2_match_data *md, const uint8_t *text, size_t n,
                                       tok_word_fn word, void *ctx);
/* Appends the bytes a token stands for: each character mapped back to its byte,
 * or — when some character is not one of the 256 byte characters (e.g. an added
 * token with a space) — the token's UTF-8 as it is. */
hone_status tok_byte_level_decode_token(const hone_tokenizer *t,
                                        const char *tok, size_t len,
                                        tok_bytes *out);

/* ---- added_tokens.c ---- */
/* Reads added_tokens (validating ids, flags and content) and builds the
 * first-byte index. */
hone_status tok_added_load(hone_tokenizer *t, json_t *added);
/* The added token with this id, or NULL. */
const tok_added *tok_added_by_id(const hone_tokenizer *t, int32_t id);
const tok_added *tok_added_by_content(const hone_tokenizer *t, const char *s,
                                      size_t n);
/* Splits text[0..n) on added tokens. A segment is either an added token (added
 * != NULL; its span includes the whitespace lstrip/rstrip absorbed) or plain
 * text between them. */
typedef struct {
  size_t start, end;
  const tok_added *added;
} tok_segment;
typedef struct {
  tok_segment *v;
  size_t n, cap;
} tok_segments;
hone_status tok_added_split(const hone_tokenizer *t, const uint8_t *text,
                            size_t n, tok_segments *out);

/* ---- spm.c: normalizers, Metaspace, the non-ByteLevel decoders ---- */
hone_status tok_normalizer_load(hone_tokenizer *t, json_t *normalizer);
hone_status tok_pre_tokenizer_metaspace_load(hone_tokenizer *t, json_t *pre);
hone_status tok_decoder_seq_load(hone_tokenizer *t, json_t *decoder);
void tok_spm_free(hone_tokenizer *t);
/* out = the normalizer steps applied to s[0..n) (out is reset first) */
hone_status tok_normalize(const hone_tokenizer *t, const uint8_t *s, size_t n,
                          tok_bytes *out);
/* Metaspace pre-tokenization of one segment (first: it starts the input):
 * calls word() for each piece */
hone_status tok_metaspace_split(const hone_tokenizer *t, const uint8_t *s,
                                size_t n, int first, tok_bytes *buf,
                                tok_word_fn word, void *ctx);
/* Runs the decoder steps over the token strings toks[0..n) (lens[i] bytes
 * each) and appends the text to out */
hone_status tok_decode_seq(const hone_tokenizer *t, const char *const *toks,
                           const size_t *lens, size_t n, tok_bytes *out);
/* split pass of added_tokens.c: matches tokens with this `normalized` flag */
hone_status tok_added_split_pass(const hone_tokenizer *t, const uint8_t *text,
                                 size_t a, size_t b, int normalized,
                                 tok_segments *out);
/* fills match / match_by_byte after the normalizer is loaded */
hone_status tok_added_build_match(hone_tokenizer *t);

/* Loads one tokenizer.json component (normalizer, decoder, post-processor...) at
 * JSON path `name`; depth 1 inside a Sequence. */
typedef hone_status (*tok_component_loader)(hone_tokenizer *t, json_t *o,
                                            const char *name, int depth);
/* A {"type": "Sequence", <key>: [...]} component: loads every element with
 * `load` at depth 1, naming each "<name>.<key>[i]" in errors. Sequences do
 * not nest (a nested one is handled by `load` like any other type). */
hone_status tok_load_sequence(hone_tokenizer *t, json_t *o, const char *key,
                              const char *name, tok_component_loader load);

#endif
