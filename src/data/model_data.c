/* Data files for a given model: text is tokenized with the model's own tokenizer and ends with its EOS. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hone/data.h"

/* The tokenizer for text data: the one named, else tokenizer.json beside the model's weights, else none. */
hone_status hone_model_tokenizer(hone_tokenizer **out, const hone_model *m, const char *tokenizer_path) {
    *out = NULL;
    if (tokenizer_path) return hone_tokenizer_load(out, tokenizer_path);
    const char *dir = hone_model_source_dir(m);
    if (!dir) return HONE_OK;
    char *path = hone_path_join(dir, "tokenizer.json");
    hone_status st = hone_file_exists(path) ? hone_tokenizer_load(out, path) : HONE_OK;
    free(path);
    return st;
}

hone_status hone_tokens_load_for_model(hone_token_stream *s, const char *path, const hone_model *m,
                                       const char *tokenizer_path, const char *cache_dir, hone_tokenizer **tok_out) {
    const hone_model_config *c = hone_model_get_config(m);
    hone_tokenizer *tok = NULL;
    if (tok_out) *tok_out = NULL;
    /* shards never need a tokenizer, so they do not pay for loading one */
    size_t len = strlen(path);
    if (len < 4 || strcasecmp(path + len - 4, ".bin") != 0) HONE_TRY(hone_model_tokenizer(&tok, m, tokenizer_path));
    hone_text_options text = {tok, c->eos_token_id};
    hone_status st = hone_tokens_load_cached(s, path, c->vocab_size, &text, cache_dir);
    if (st == HONE_OK && tok_out) *tok_out = tok;
    else hone_tokenizer_free(tok);
    return st;
}
