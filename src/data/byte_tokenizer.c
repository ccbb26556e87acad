/* The byte-level chat tokenizer of models trained on byte streams (hone/data.h): tokenizer.json and
 * tokenizer_config.json as Hugging Face writes them for a GPT-2-style byte-level BPE. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hone/chat_template.h"
#include "hone/data.h"

static const char *const chat_specials[HONE_BYTE_CHAT_VOCAB - 256] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};

static json_t *added_token(const char *content) {
    return json_pack("{s:s, s:b, s:b, s:b, s:b, s:b}", "content", content, "single_word", 0, "lstrip", 0, "rstrip", 0,
                     "normalized", 0, "special", 1);
}

static json_t *tokenizer_json(void) {
    json_t *vocab = json_object(), *added = json_array();
    unsigned next = 256;
    for (unsigned b = 0; b < 256; b++) {
        /* GPT-2's bytes_to_unicode: printable bytes stand for themselves, the others become U+0100 onwards */
        const int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        const unsigned cp = printable ? b : next++;
        char utf8[3] = {0};
        if (cp < 0x80) utf8[0] = (char)cp;
        else utf8[0] = (char)(0xC0 | cp >> 6), utf8[1] = (char)(0x80 | (cp & 0x3F));
        json_object_set_new(vocab, utf8, json_integer(b));
    }
    for (int i = 0; i < HONE_BYTE_CHAT_VOCAB - 256; i++) {
        json_t *t = added_token(chat_specials[i]);
        json_object_set_new(t, "id", json_integer(256 + i));
        json_array_append_new(added, t);
    }
    json_t *byte_level = json_pack("{s:s, s:b, s:b, s:b}", "type", "ByteLevel", "add_prefix_space", 0, "trim_offsets",
                                   1, "use_regex", 1);
    json_t *model = json_pack("{s:s, s:n, s:n, s:n, s:n, s:b, s:b, s:b, s:o, s:[]}", "type", "BPE", "dropout",
                              "unk_token", "continuing_subword_prefix", "end_of_word_suffix", "fuse_unk", 0,
                              "byte_fallback", 0, "ignore_merges", 0, "vocab", vocab, "merges");
    return json_pack("{s:s, s:n, s:n, s:o, s:n, s:O, s:n, s:o, s:o}", "version", "1.0", "truncation", "padding",
                     "added_tokens", added, "normalizer", "pre_tokenizer", byte_level, "post_processor", "decoder",
                     byte_level, "model", model);
}

static json_t *tokenizer_config_json(void) {
    json_t *decoder = json_object();
    for (int i = 0; i < HONE_BYTE_CHAT_VOCAB - 256; i++) {
        char id[8];
        snprintf(id, sizeof id, "%d", 256 + i);
        json_object_set_new(decoder, id, added_token(chat_specials[i]));
    }
    return json_pack("{s:o, s:s, s:b, s:s, s:i, s:s, s:s}", "added_tokens_decoder", decoder, "chat_template",
                     hone_chat_template_builtin_source("chatml"), "clean_up_tokenization_spaces", 0, "eos_token",
                     "<|im_end|>", "model_max_length", 4096, "pad_token", "<|endoftext|>", "tokenizer_class",
                     "PreTrainedTokenizerFast");
}

static hone_status write_json(const char *dir, const char *name, json_t *doc) {
    char *path = hone_path_join(dir, name);
    char *text = doc ? json_dumps(doc, JSON_INDENT(2)) : NULL;
    json_decref(doc);
    hone_status st = path && text ? hone_file_write_atomic(path, text, strlen(text))
                                  : hone_errorf(HONE_ERR_NOMEM, "out of memory writing %s", name);
    free(text);
    free(path);
    return st;
}

hone_status hone_byte_chat_tokenizer_write(const char *dir) {
    HONE_TRY(write_json(dir, "tokenizer.json", tokenizer_json()));
    return write_json(dir, "tokenizer_config.json", tokenizer_config_json());
}
