/* hone/data.h — token streams for pre-training and evaluation.
 *
 * A token stream is the concatenation of every token of a file: an llm.c shard (.bin: a 256 × int32
 * header — magic 20240520 version 1 with uint16 tokens, or magic 20240801 version 7 with uint32 tokens —
 * header[2] = token count, file size exactly 1024 + count × item size) or JSONL rows {"input_ids": [...]}
 * (one document per line, concatenated in file order; blank lines skipped; other keys ignored). The format
 * follows the extension: .bin, or .jsonl / .json. Every id is checked against the vocabulary size.
 */
#ifndef HONE_DATA_H
#define HONE_DATA_H

#include "hone/base.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int32_t *tokens;    /* 64-byte aligned; owned, released by hone_tokens_free */
    size_t n_tokens;
    size_t n_documents; /* JSONL rows (empty ones included); 1 for a shard */
} hone_token_stream;

/* vocab_size > 0: an id outside [0, vocab_size) is an error naming the file and line / position. Any
 * malformed header, size, line or id is an error naming the file (and line); nothing is skipped. On error
 * *s is left empty. */
hone_status hone_tokens_load(hone_token_stream *s, const char *path, int vocab_size);
void hone_tokens_free(hone_token_stream *s);

/* Writes an llm.c shard (version 7 / uint32 when any id >= 65536, else version 1 / uint16), atomically. */
hone_status hone_tokens_write_shard(const char *path, const int32_t *tokens, size_t n);

/* Built-in synthetic English-like text for the demo and tests: short sentences from a small grammar, simple
 * sums and counting, so that a tiny model's loss falls visibly within a minute. Deterministic in the seed.
 * Returns n_bytes of ASCII (free()). */
char *hone_synthetic_text(uint64_t seed, size_t n_bytes);
/* Byte-level token stream of a text (ids 0..255), for models with a 256-token vocabulary. */
hone_status hone_tokens_from_bytes(hone_token_stream *s, const char *text, size_t n);

#ifdef __cplusplus
}
#endif
#endif
