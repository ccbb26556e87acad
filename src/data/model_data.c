/* Data files for a given model: text is tokenized with the model's own tokenizer and ends with its EOS. */
#include <stdlib.h>

#include "hone/data.h"

/* The tokenizer for text data: the one named, else the one beside the model's weights (tokenizer.json, or a
 * GPT-2 style vocab.json + merges.txt, with their configuration files), else none. */
hone_status hone_model_tokenizer(hone_tokenizer **out, const hone_model *m, const char *tokenizer_path) {
    *out = NULL;
    if (tokenizer_path) return hone_tokenizer_load(out, tokenizer_path);
    const char *dir = hone_model_source_dir(m);
    if (!dir) return HONE_OK;
    char *json = hone_path_join(dir, "tokenizer.json"), *vocab = hone_path_join(dir, "vocab.json"),
         *merges = hone_path_join(dir, "merges.txt");
    int present = hone_file_exists(json) || (hone_file_exists(vocab) && hone_file_exists(merges));
    free(json);
    free(vocab);
    free(merges);
    return present ? hone_tokenizer_load(out, dir) : HONE_OK;
}

int32_t hone_model_eos_id(const hone_model *m, const hone_tokenizer *tok) {
    const int32_t eos = hone_model_get_config(m)->eos_token_id;
    return eos >= 0 || !tok ? eos : hone_tokenizer_special(tok)->eos_id;
}

hone_status hone_tokens_load_for_model(hone_token_stream *s, const char *path, const hone_model *m,
                                       const char *tokenizer_path, const char *cache_dir, hone_tokenizer **tok_out) {
    const hone_model_config *c = hone_model_get_config(m);
    hone_tokenizer *tok = NULL;
    if (tok_out) *tok_out = NULL;
    /* shards never need a tokenizer, so they do not pay for loading one */
    if (!hone_tokens_is_shard(path)) HONE_TRY(hone_model_tokenizer(&tok, m, tokenizer_path));
    hone_text_options text = {tok, hone_model_eos_id(m, tok)};
    hone_status st = hone_tokens_load_cached(s, path, c->vocab_size, &text, cache_dir);
    if (st == HONE_OK && tok_out) *tok_out = tok;
    else hone_tokenizer_free(tok);
    return st;
}
