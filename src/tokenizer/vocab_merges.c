/* GPT-2 style folders: vocab.json + merges.txt and no tokenizer.json. transformers loads them as
 * GPT2TokenizerFast, converting the slow GPT2Tokenizer (GPT2Converter): a byte-level BPE over vocab.json with the
 * merges of merges.txt in file order, the ByteLevel pre-tokenizer (add_prefix_space from tokenizer_config.json,
 * default false) and decoder, no normalizer, no unk_token in the model. The special tokens come from the
 * configuration files (special_tokens.c).
 *
 * merges.txt is read as GPT2Tokenizer reads it: the text split on "\n", the first line (the "#version" header)
 * and the last (what follows the final newline) dropped; every other line must be two tokens of vocab.json
 * separated by one space ("\r" before the newline is allowed). transformers drops the first line even when it is
 * not a header and the last even when it is not empty, losing a merge; hone does the same, to give the same ids,
 * and warns. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer_internal.h"

/* Reads merges.txt into a JSON array of [a, b] pairs, each token checked against the vocabulary. */
static hone_status read_merges(hone_tokenizer *t, const char *path, json_t *pairs) {
    char *text;
    size_t size;
    HONE_TRY(hone_file_read(path, &text, &size));
    hone_status st = HONE_OK;
    tok_bytes joined = {0};
    size_t line_no = 1, pos = 0;
    const char *nl = memchr(text, '\n', size);
    if (!nl) {
        free(text);
        return hone_errorf(HONE_ERR_FORMAT,
                           "%s: no line ends in this file; a merges.txt starts with a "
                           "\"#version\" line and has one merge per line",
                           path);
    }
    if (strncmp(text, "#version", 8))
        hone_warn("%s:1: \"%.*s\" is not a \"#version\" header; it is skipped as transformers skips line 1", path,
                  (int)(nl - text > 60 ? 60 : nl - text), text);
    pos = (size_t)(nl - text) + 1;
    for (;;) {
        line_no++;
        nl = memchr(text + pos, '\n', size - pos);
        if (!nl) {
            if (pos < size)
                hone_warn("%s:%zu: the last line has no newline; it is skipped as transformers skips it", path,
                          line_no);
            break;
        }
        const char *line = text + pos;
        size_t len = (size_t)(nl - line);
        pos += len + 1;
        if (len && line[len - 1] == '\r') len--;
        const char *space = memchr(line, ' ', len);
        if (!space || space == line || space == line + len - 1 || memchr(space + 1, ' ', len - (space + 1 - line))) {
            st = hone_errorf(HONE_ERR_FORMAT, "%s:%zu: \"%.*s\" is not a merge (two tokens separated by one space)",
                             path, line_no, (int)(len > 80 ? 80 : len), line);
            break;
        }
        size_t la = (size_t)(space - line), lb = len - la - 1;
        joined.n = 0;
        st = tok_bytes_append(&joined, line, la);
        if (st == HONE_OK) st = tok_bytes_append(&joined, space + 1, lb);
        /* both halves and what they merge into */
        const char *tok[3] = {line, space + 1, joined.v};
        size_t tok_len[3] = {la, lb, la + lb};
        for (int k = 0; k < 3 && st == HONE_OK; k++)
            if (tok_vocab_find(t, tok[k], tok_len[k]) < 0)
                st = hone_errorf(HONE_ERR_FORMAT, "%s:%zu: \"%.*s\" is not in vocab.json", path, line_no,
                                 (int)tok_len[k], tok[k]);
        json_t *pair = st == HONE_OK ? json_pack("[s#s#]", line, la, space + 1, lb) : NULL;
        if (st == HONE_OK && (!pair || json_array_append_new(pairs, pair)))
            st = hone_errorf(HONE_ERR_NOMEM, "out of memory reading %s", path);
        if (st != HONE_OK) break;
    }
    free(text);
    free(joined.v);
    return st;
}

hone_status tok_vocab_merges_load(hone_tokenizer *t, const char *dir, int add_prefix_space) {
    json_error_t jerr;
    json_t *vocab = json_load_file(t->path, 0, &jerr);
    if (!vocab)
        return hone_errorf(HONE_ERR_FORMAT, "%s: invalid JSON at line %d, column %d: %s", t->path, jerr.line,
                           jerr.column, jerr.text);
    hone_status st = tok_vocab_load(t, vocab, "vocab.json");
    json_decref(vocab);
    HONE_TRY(st);
    char *path = hone_path_join(dir, "merges.txt");
    json_t *pairs = json_array();
    if (!path || !pairs) st = hone_errorf(HONE_ERR_NOMEM, "out of memory reading %s", dir);
    if (st == HONE_OK) st = read_merges(t, path, pairs);
    if (st == HONE_OK) st = tok_bpe_load_merges(t, pairs);
    free(path);
    json_decref(pairs);
    HONE_TRY(st);
    t->unk_id = -1;
    t->byte_level = 1;
    t->use_regex = 1;
    t->add_prefix_space = add_prefix_space;
    return HONE_OK;
}
