/* hone/data.h — token streams for pre-training and evaluation.
 *
 * A token stream is the concatenation of every token of a file: an llm.c shard (.bin: a 256 × int32
 * header — magic 20240520 version 1 with uint16 tokens, or magic 20240801 version 7 with uint32 tokens —
 * header[2] = token count, file size exactly 1024 + count × item size) or JSONL rows {"input_ids": [...]}
 * (one document per line, concatenated in file order; blank lines skipped; other keys ignored). The format
 * follows the extension: .bin, or .jsonl / .json. Every id is checked against the vocabulary size.
 *
 * With a tokenizer (hone_tokens_load_text), text works too: a .txt file is one document, and JSONL rows may hold
 * {"text": "..."} instead of "input_ids". Text is encoded as Hugging Face's tokenizer(text) does (with the
 * post-processor's special tokens, e.g. Llama's BOS), and the end-of-sequence id follows every text document
 * when there is one (unless the post-processor already put it there).
 */
#ifndef HONE_DATA_H
#define HONE_DATA_H

#include "hone/base.h"
#include "hone/model.h"
#include "hone/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int32_t *tokens;    /* 64-byte aligned; owned, released by hone_tokens_free; read-only when from the cache */
    size_t n_tokens;
    size_t n_documents; /* JSONL rows (empty ones included); 1 for a shard */
    hone_mapped_file cache_mapping; /* the token cache entry tokens points into (data NULL otherwise) */
} hone_token_stream;

/* vocab_size > 0: an id outside [0, vocab_size) is an error naming the file and line / position. Any
 * malformed header, size, line or id is an error naming the file (and line); nothing is skipped. On error
 * *s is left empty. */
hone_status hone_tokens_load(hone_token_stream *s, const char *path, int vocab_size);
void hone_tokens_free(hone_token_stream *s);
/* 1 when path names an llm.c shard (.bin, any case): tokens already, no tokenizer needed. */
int hone_tokens_is_shard(const char *path);

typedef struct {
    const hone_tokenizer *tokenizer; /* NULL: text is an error that says a tokenizer is needed */
    int32_t eos_id;                  /* appended after each text document; -1 = none */
} hone_text_options;

/* hone_tokens_load that also accepts text (.txt files, JSONL {"text"} rows); text may be NULL. */
hone_status hone_tokens_load_text(hone_token_stream *s, const char *path, int vocab_size,
                                  const hone_text_options *text);

/* The token cache: text tokenized once is kept as a memory-mapped entry in cache_dir, keyed by content hashes
 * of the data file, every tokenizer file, the options and the tokenizing code, and reused on the next load of
 * the same file with the same tokenizer. cache_dir NULL = no cache (hone_tokens_load_text). Shards and loads
 * without a tokenizer bypass it. An entry that does not validate is reported and rewritten; one that cannot be
 * written is a warning. */
hone_status hone_tokens_load_cached(hone_token_stream *s, const char *path, int vocab_size,
                                    const hone_text_options *text, const char *cache_dir);
/* $HONE_CACHE_DIR/tokens, else $XDG_CACHE_HOME/hone/tokens, else ~/.cache/hone/tokens; NULL when none is set. */
const char *hone_token_cache_default_dir(void);

/* The tokenizer for a model: the one at tokenizer_path (tokenizer.json or a folder) when given, else the
 * model folder's tokenizer (tokenizer.json, or vocab.json + merges.txt); *out = NULL (and HONE_OK) when there is
 * none. */
hone_status hone_model_tokenizer(hone_tokenizer **out, const hone_model *m, const char *tokenizer_path);

/* The model's end-of-sequence id: config.json's eos_token_id, else (tok may be NULL) the tokenizer's EOS
 * (tokenizer_config.json, or what tokenizer.json implies); -1 when neither has one. */
int32_t hone_model_eos_id(const hone_model *m, const hone_tokenizer *tok);

/* Loads a data file for a model: token files as they are; text (.txt, JSONL {"text"}) with the tokenizer at
 * tokenizer_path (tokenizer.json or a folder), or else the model folder's tokenizer.json, and the model's EOS
 * after each document, through the token cache in cache_dir (NULL = none). *tok_out (may be NULL) receives the
 * tokenizer used, or NULL; free it with hone_tokenizer_free. */
hone_status hone_tokens_load_for_model(hone_token_stream *s, const char *path, const hone_model *m,
                                       const char *tokenizer_path, const char *cache_dir, hone_tokenizer **tok_out);

/* Writes an llm.c shard (version 7 / uint32 when any id >= 65536, else version 1 / uint16), atomically. */
hone_status hone_tokens_write_shard(const char *path, const int32_t *tokens, size_t n);

/* Built-in synthetic English-like text for the demo and tests: short sentences from a small grammar, simple
 * sums and counting, so that a tiny model's loss falls visibly within a minute. Deterministic in the seed.
 * Returns n_bytes of ASCII (free()). */
char *hone_synthetic_text(uint64_t seed, size_t n_bytes);
/* hone_synthetic_text with, on half of its lines, the skills of the instruction suite (hone/tasks.h) written as
 * plain text: counting on from two-digit numbers, three-letter words turned around, three digits put in order, one
 * more than a two-digit number — the pre-training text of the demo's base model, which instruction tuning then
 * teaches to answer requests (and to carry further: the suite's next goes to 998, its sums have a two-digit term,
 * where this text has single-digit sums only). */
char *hone_synthetic_skill_text(uint64_t seed, size_t n_bytes);
/* Byte-level token stream of a text (ids 0..255), for models with a 256-token vocabulary. */
hone_status hone_tokens_from_bytes(hone_token_stream *s, const char *text, size_t n);

/* The tokenizer of byte-level chat models (the demo's): DIR/tokenizer.json, a GPT-2-style byte-level BPE whose
 * vocabulary is the 256 bytes in byte order with no merges (so its ids are those of hone_tokens_from_bytes), with
 * the added special tokens <|endoftext|> = 256, <|im_start|> = 257 and <|im_end|> = 258; and
 * DIR/tokenizer_config.json with the ChatML chat template, eos <|im_end|> and pad <|endoftext|>. Both written
 * atomically. A model for it needs a vocabulary of HONE_BYTE_CHAT_VOCAB. */
#define HONE_BYTE_CHAT_VOCAB 259
#define HONE_BYTE_CHAT_IM_END 258
hone_status hone_byte_chat_tokenizer_write(const char *dir);

#ifdef __cplusplus
}
#endif
#endif
