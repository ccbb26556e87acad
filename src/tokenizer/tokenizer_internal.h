/* Internals of the tokenizer module, shared by its files:
 *   tokenizer_json.c   loading + validation of tokenizer.json (and the folder around it), the public accessors
 *   vocab_merges.c     GPT-2 style folders: vocab.json + merges.txt
 *   special_tokens.c   tokenizer_config.json, special_tokens_map.json, added_tokens.json, chat templates
 *   bpe.c              merge table, the BPE merge loop of one word and the per-thread word cache in front of it
 *   byte_level.c       byte↔unicode table, GPT-2 regex pre-tokenizer, ByteLevel decoding of a token
 *   pretokenize.c      the pre-tokenizer pipeline: Split, Digits, Punctuation, Whitespace(Split), Sequence
 *   onig_regex.c       Split patterns: Oniguruma syntax rewritten for PCRE2, Oniguruma's match iteration
 *   normalize.c        NFC, NFD, NFKC, NFKD, Lowercase, Strip normalizers
 *   spm.c              Prepend / Replace normalizers, Metaspace, the SentencePiece-style decoders
 *   added_tokens.c     added tokens: loading, splitting the input on them
 *   utf8.c             UTF-8 validation and lossy repair; the growable buffers and hash the module shares
 *   encode.c           the encode / decode pipelines and the post-processor */
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
/* The JSON object in the file at path, or *out = NULL (and HONE_OK) when there is no such file; invalid JSON or
 * another top-level value is an error naming the file. flags: JSON_DECODE_INT_AS_REAL for configuration files
 * whose integers hone does not read, such as tokenizer_config.json's model_max_length of 1e30 written as an
 * integer, beyond jansson's range. */
hone_status tok_read_json_object(const char *path, size_t flags, json_t **out);
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
    int single_word; /* matched only where no word character touches it */
    /* what the input is searched for: content, or for a normalized token with a
     * normalizer the normalized content (as Hugging Face matches it in the
     * normalized text) */
    char *match;
    size_t match_len;
} tok_added;

/* normalizer steps, applied in order to each plain segment */
typedef struct {
    enum {
        TOK_NORM_PREPEND,
        TOK_NORM_REPLACE,
        /* normalize.c */
        TOK_NORM_NFC,
        TOK_NORM_NFD,
        TOK_NORM_NFKC,
        TOK_NORM_NFKD,
        TOK_NORM_LOWERCASE,
        TOK_NORM_STRIP
    } kind;
    char *a, *b; /* Prepend: a = prefix; Replace: a → b */
    size_t la, lb;
    int strip_left, strip_right; /* Strip */
} tok_norm_op;

/* decoder steps over the list of token strings, in order */
typedef struct {
    enum { TOK_DEC_REPLACE, TOK_DEC_BYTE_FALLBACK, TOK_DEC_FUSE, TOK_DEC_STRIP, TOK_DEC_METASPACE } kind;
    char *a, *b; /* Replace: a → b; Strip: a = the character; Metaspace: a */
    size_t la, lb;
    int start, stop; /* Strip; Metaspace: start = strip the first token's space */
} tok_dec_op;

/* One step of the pre-tokenizer pipeline (pretokenize.c): a Split, Digits, Punctuation, Whitespace,
 * WhitespaceSplit, Metaspace or ByteLevel pre-tokenizer, alone or in a Sequence. */
typedef enum {
    TOK_SPLIT_REMOVED,
    TOK_SPLIT_ISOLATED,
    TOK_SPLIT_MERGED_WITH_PREVIOUS,
    TOK_SPLIT_MERGED_WITH_NEXT,
    TOK_SPLIT_CONTIGUOUS
} tok_split_behavior;

typedef struct {
    enum {
        TOK_PRE_REGEX,     /* Split, Whitespace: the matches of re */
        TOK_PRE_CHARS,     /* Digits, Punctuation, WhitespaceSplit: each character of the class is a match */
        TOK_PRE_METASPACE, /* the Metaspace fields of the tokenizer */
        TOK_PRE_BYTE_LEVEL /* prefix space, the GPT-2 regex when use_regex; the steps after it see byte characters */
    } kind;
    tok_split_behavior behavior;
    int invert;                   /* matches and the text between them swap roles */
    pcre2_code *re;               /* TOK_PRE_REGEX */
    int jit;                      /* re was JIT-compiled */
    int (*in_class)(uint32_t cp); /* TOK_PRE_CHARS */
    int add_prefix_space;         /* TOK_PRE_BYTE_LEVEL */
} tok_pre_op;

enum { TOK_PRE_MAX = 16 }; /* steps of a pre-tokenizer Sequence */

/* The public view of the special tokens (hone_tokenizer_special) and the chat templates, with their storage. */
typedef struct {
    hone_special_tokens pub;
    char *strings[4];      /* bos, eos, unk, pad token strings */
    char **template_names; /* n_templates each; "default" first when there is one */
    char **templates;
    size_t n_templates;
} tok_special;

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
    } * merges;
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
    int byte_level;           /* pre_tokenizer ByteLevel (+ decoder ByteLevel); otherwise
                                 the vocabulary holds plain UTF-8 and BPE starts from
                                 characters */
    int byte_fallback;        /* model.byte_fallback: a character with no token becomes
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

    tok_pre_op *pre; /* pre-tokenizer pipeline (pretokenize.c) when not a lone ByteLevel / Metaspace; n_pre steps */
    size_t n_pre;
    /* [TOK_RUST_WORD_CLASS], compiled when an added token is single_word */
    pcre2_code *word_re;
    tok_special special; /* special_tokens.c */

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
    tok_bytes word;        /* the word in vocabulary form, for ignore_merges */
    tok_word_cache *cache; /* this thread's, or NULL */
} tok_bpe_scratch;
void tok_bpe_scratch_free(tok_bpe_scratch *s);
/* Appends the BPE tokens of one pre-token word (raw bytes w[0..n), n ≥ 1) to
 * out. */
hone_status tok_bpe_encode_word(const hone_tokenizer *t, tok_bpe_scratch *s, const uint8_t *w, size_t n, tok_ids *out);
/* Vocabulary lookup of s[0..n): id or -1. */
int32_t tok_vocab_find(const hone_tokenizer *t, const char *s, size_t n);

/* ---- byte_level.c ---- */
/* Fills byte_char / byte_char_len / byte_id (after the vocab is loaded) and
 * compiles the GPT-2 regex. */
hone_status tok_byte_level_init(hone_tokenizer *t);
/* Calls word(ctx, start, len) for each pre-token of text[0..n) (valid UTF-8) in
 * order. */
typedef hone_status (*tok_word_fn)(void *ctx, const uint8_t *w, size_t n);
hone_status tok_byte_level_split(const hone_tokenizer *t, pcre2_match_data *md, const uint8_t *text, size_t n,
                                 tok_word_fn word, void *ctx);
/* The same split by PCRE2 alone, without the ASCII fast path: the definition the tests hold the fast path to. */
hone_status tok_byte_level_split_pcre2(const hone_tokenizer *t, pcre2_match_data *md, const uint8_t *text, size_t n,
                                       tok_word_fn word, void *ctx);
/* Appends the bytes a token stands for: each character mapped back to its byte,
 * or — when some character is not one of the 256 byte characters (e.g. an added
 * token with a space) — the token's UTF-8 as it is. */
hone_status tok_byte_level_decode_token(const hone_tokenizer *t, const char *tok, size_t len, tok_bytes *out);

/* ---- added_tokens.c ---- */
/* Reads added_tokens (validating ids, flags and content) and builds the
 * first-byte index. */
hone_status tok_added_load(hone_tokenizer *t, json_t *added);
/* The added token with this id, or NULL. */
const tok_added *tok_added_by_id(const hone_tokenizer *t, int32_t id);
const tok_added *tok_added_by_content(const hone_tokenizer *t, const char *s, size_t n);
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
hone_status tok_added_split(const hone_tokenizer *t, const uint8_t *text, size_t n, tok_segments *out);

/* ---- spm.c: normalizers, Metaspace, the non-ByteLevel decoders ---- */
hone_status tok_normalizer_load(hone_tokenizer *t, json_t *normalizer);
hone_status tok_pre_tokenizer_metaspace_load(hone_tokenizer *t, json_t *pre);
hone_status tok_decoder_seq_load(hone_tokenizer *t, json_t *decoder);
void tok_spm_free(hone_tokenizer *t);
/* out = the normalizer steps applied to s[0..n) (out is reset first) */
hone_status tok_normalize(const hone_tokenizer *t, const uint8_t *s, size_t n, tok_bytes *out);
/* Metaspace pre-tokenization of one segment (first: it starts the input):
 * calls word() for each piece */
hone_status tok_metaspace_split(const hone_tokenizer *t, const uint8_t *s, size_t n, int first, tok_bytes *buf,
                                tok_word_fn word, void *ctx);
/* Runs the decoder steps over the token strings toks[0..n) (lens[i] bytes
 * each) and appends the text to out */
hone_status tok_decode_seq(const hone_tokenizer *t, const char *const *toks, const size_t *lens, size_t n,
                           tok_bytes *out);
/* split pass of added_tokens.c: matches tokens with this `normalized` flag */
hone_status tok_added_split_pass(const hone_tokenizer *t, const uint8_t *text, size_t a, size_t b, int normalized,
                                 tok_segments *out);

/* Loads one tokenizer.json component (normalizer, decoder, post-processor...) at
 * JSON path `name`; depth 1 inside a Sequence. */
typedef hone_status (*tok_component_loader)(hone_tokenizer *t, json_t *o, const char *name, int depth);
/* A {"type": "Sequence", <key>: [...]} component: loads every element with
 * `load` at depth 1, naming each "<name>.<key>[i]" in errors. Sequences do
 * not nest (a nested one is handled by `load` like any other type). */
hone_status tok_load_sequence(hone_tokenizer *t, json_t *o, const char *key, const char *name,
                              tok_component_loader load);

/* ---- tokenizer_json.c ---- */
/* Reads a {token: id} object (model.vocab, or a vocab.json; `what` names it in errors) into the vocabulary. */
hone_status tok_vocab_load(hone_tokenizer *t, json_t *vocab, const char *what);

/* ---- added_tokens.c ---- */
/* Adds an added token with the flags of `flags` (its id and content are ignored), or, when one with this content
 * exists, gives it these flags: what transformers does with the tokens of tokenizer_config.json. A new token takes
 * its id from the vocabulary when it is there, else the next free id, as tokenizers' add_tokens does; `id` (-1:
 * none) is the id the configuration lists, and a different one is warned about. `what` names it in messages. */
hone_status tok_added_put(hone_tokenizer *t, const tok_added *flags, const char *content, size_t len, int32_t id,
                          const char *what);
/* The added token with this content, or NULL; a linear search, valid before tok_added_finish. */
tok_added *tok_added_find(const hone_tokenizer *t, const char *content, size_t len);
/* Once the normalizer is loaded and every added token is in: sorts them by id, checks the ids, and builds the
 * first-byte indexes of their contents and of what the input is searched for (match). */
hone_status tok_added_finish(hone_tokenizer *t);

/* ---- onig_regex.c: Split patterns ---- */
/* Rust regex's \w, which Hugging Face's Whitespace pre-tokenizer and single_word test use (PCRE2 syntax, the
 * inside of a character class) */
#define TOK_RUST_WORD_CLASS "\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}"
typedef enum {
    TOK_RE_LITERAL, /* {"String": ...}: the text itself */
    TOK_RE_ONIG,    /* {"Regex": ...}: Oniguruma syntax, rewritten for PCRE2 */
    TOK_RE_PCRE2    /* a pattern of this module, already PCRE2 syntax */
} tok_re_syntax;
/* Compiles pattern[0..len) (UTF + UCP, ^ $ at line ends, JIT when available) into *re; `name` names the field in
 * errors, which give PCRE2's message and the offset in the pattern as written. */
hone_status tok_regex_compile(const hone_tokenizer *t, const char *pattern, size_t len, tok_re_syntax syntax,
                              const char *name, pcre2_code **re, int *jit);
/* Iterates over the matches of re in s[0..n) as Oniguruma's find_iter (the onig crate) does: each search starts
 * at the end of the previous match, and an empty match right at that end is skipped by stepping one character.
 * Zero-initialise it; *found = 0 at the end. */
typedef struct {
    size_t pos, last_match_end;
    int matched_before;
} tok_regex_iter;
hone_status tok_regex_next(const pcre2_code *re, int jit, pcre2_match_data *md, const uint8_t *s, size_t n,
                           tok_regex_iter *it, size_t *start, size_t *end, int *found);

/* ---- pretokenize.c: the pre-tokenizer pipeline ---- */
/* Loads a pre_tokenizer other than a lone ByteLevel or Metaspace (Split, Digits, Punctuation, Whitespace,
 * WhitespaceSplit, or a Sequence of those and at most one ByteLevel and one Metaspace) into t->pre. */
hone_status tok_pre_tokenizer_load(hone_tokenizer *t, json_t *pre);
void tok_pre_free(hone_tokenizer *t);
/* Per-encode scratch of the pipeline (never shared between threads); zero-initialise it. */
typedef struct {
    pcre2_match_data *md;       /* for the Split steps */
    tok_bytes buf[TOK_PRE_MAX]; /* buf[k]: the piece step k rewrote (prefix space, Metaspace) */
    tok_bytes mapped;           /* a piece in byte characters, after a ByteLevel step others follow */
    tok_bytes unmapped;         /* a final piece in byte characters, as bytes again */
} tok_pre_scratch;
void tok_pre_scratch_free(tok_pre_scratch *s);
/* Runs the pipeline over text[0..n) (first: it starts the input) and calls word() for each final piece, in order.
 * byte_level_md: match data for the GPT-2 regex (t->regex), when a ByteLevel step uses it. */
hone_status tok_pre_tokenize(const hone_tokenizer *t, tok_pre_scratch *s, pcre2_match_data *byte_level_md,
                             const uint8_t *text, size_t n, int first, tok_word_fn word, void *ctx);

/* ---- normalize.c: NFC, NFD, NFKC, NFKD, Lowercase, Strip ---- */
/* Fills op for one of those types (*known = 1), or sets *known = 0 for any other type. */
hone_status tok_norm_unicode_load(const hone_tokenizer *t, json_t *o, const char *name, const char *type,
                                  tok_norm_op *op, int *known);
/* out = op applied to s[0..n) (out is reset first) */
hone_status tok_norm_unicode_apply(const tok_norm_op *op, const uint8_t *s, size_t n, tok_bytes *out);

/* ---- vocab_merges.c ---- */
/* The tokenizer transformers' GPT2TokenizerFast builds from dir/vocab.json + dir/merges.txt: byte-level BPE,
 * ByteLevel pre-tokenizer (add_prefix_space as given) and decoder, no normalizer. */
hone_status tok_vocab_merges_load(hone_tokenizer *t, const char *dir, int add_prefix_space);

/* ---- special_tokens.c: tokenizer_config.json, special_tokens_map.json, added_tokens.json, chat templates ---- */
typedef struct {
    json_t *config;      /* tokenizer_config.json, or NULL */
    json_t *special_map; /* special_tokens_map.json, or NULL */
    json_t *added;       /* added_tokens.json, or NULL */
    char *dir;
} tok_config;
/* Reads the configuration files present in dir (none is an error when absent). */
hone_status tok_config_read(tok_config *c, const char *dir);
void tok_config_free(tok_config *c);
/* For a vocab.json + merges.txt folder: checks that tokenizer_config.json's tokenizer_class, if any, is GPT-2's,
 * and reads its add_prefix_space (default 0). */
hone_status tok_config_gpt2(const tok_config *c, int *add_prefix_space);
/* Applies the configuration as transformers does: the special tokens and the added tokens it names become added
 * tokens, add_bos_token / add_eos_token rewrite the post-processor, the chat templates are kept; without a
 * configuration the special tokens are those tokenizer.json implies. from_vocab_json: the folder has no
 * tokenizer.json (GPT2TokenizerFast's defaults apply). Run before tok_added_finish. */
hone_status tok_config_apply(hone_tokenizer *t, const tok_config *c, int from_vocab_json);
void tok_special_free(hone_tokenizer *t);

#endif
