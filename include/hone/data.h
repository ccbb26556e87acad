/* hone/data.h — token streams for pre-training and evaluation.
 *
 * A token stream is the concatenation of every token of a file: an llm.c shard (.bin: a 256 × int32
 * header — magic 20240520 version 1 with uint16 tokens, or magic 20240801 version 7 with uint32 tokens —
 * header[2] = token count) or JSONL rows {"input_ids": [...]} (one document per line, concatenated in file
 * order). Every id is checked against the vocabulary size.
 */
#ifndef HONE_DATA_H
#define HONE_DATA_H

#include "hone/base.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int32_t *tokens;
    size_t n_tokens;
    size_t n_documents;
} hone_token_stream;

/* vocab_size > 0: an id outside [0, vocab_size) is an error naming the file and line / position. */
hone_status hone_tokens_load(hone_token_stream *s, const char *path, int vocab_size);
void hone_tokens_free(hone_token_stream *s);

/* Writes an llm.c shard (version 7 / uint32 when any id >= 65536, else version 1 / uint16), atomically. */
hone_status hone_tokens_write_shard(const char *path, const int32_t *tokens, size_t n);

#ifdef __cplusplus
}
#endif
#endif
