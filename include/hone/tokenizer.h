/* hone/tokenizer.h — Hugging Face tokenizers: encode text to token ids and decode ids to text, with the same ids
 * as the Hugging Face `tokenizers` library (and transformers' AutoTokenizer for the configuration files).
 *
 *     hone_tokenizer *tok;
 *     if (hone_tokenizer_load(&tok, "models/gpt2") != HONE_OK) {      // a folder, or a tokenizer.json file
 *         fprintf(stderr, "error: %s\n", hone_error());
 *         return 1;
 *     }
 *     int32_t *ids;
 *     size_t n;
 *     if (hone_tokenizer_encode(tok, "Hello world", 11, 1, &ids, &n) == HONE_OK) {   // ids = {15496, 995}
 *         char *text;
 *         size_t len;
 *         if (hone_tokenizer_decode(tok, ids, n, 0, &text, &len) == HONE_OK) {      // "Hello world"
 *             fwrite(text, 1, len, stdout);
 *             free(text);
 *         }
 *         free(ids);
 *     }
 *     printf("eos %s = %d\n", hone_tokenizer_special(tok)->eos_token, hone_tokenizer_special(tok)->eos_id);
 *     hone_tokenizer_free(tok);
 *
 * Files: a folder with tokenizer.json, or with vocab.json + merges.txt and no tokenizer.json (GPT-2 style: the
 * tokenizer transformers' GPT2TokenizerFast builds from them, merges.txt errors name the line); beside either,
 * tokenizer_config.json / special_tokens_map.json / added_tokens.json as transformers reads them (special tokens
 * may be strings or AddedToken objects {"content": ...}; special and added tokens they name become added tokens;
 * add_bos_token / add_eos_token rewrite the post-processor as transformers' LlamaTokenizerFast does), and the chat
 * templates (tokenizer_config.json "chat_template", a string or a list of {name, template}; chat_template.jinja
 * and additional_chat_templates/NAME.jinja replace those when present). Without configuration files the special
 * tokens are those tokenizer.json implies: unk = model.unk_token, bos / eos = the single special token before /
 * after the sequence in a TemplateProcessing.
 *
 * Supported in tokenizer.json (anything else is a HONE_ERR_UNSUPPORTED error naming the field, never ignored):
 *   model           BPE: merges as "a b" strings or ["a", "b"] pairs; unk_token, fuse_unk, ignore_merges,
 *                   byte_fallback (<0xXX> tokens) over plain UTF-8 vocabularies
 *   normalizer      NFC, NFD, NFKC, NFKD (utf8proc), Lowercase, Strip, Prepend, Replace (String patterns), or a
 *                   Sequence of those (GPT-2: none; Llama 2 / Mistral: Prepend + Replace; Qwen2: NFC)
 *   pre_tokenizer   ByteLevel (GPT-2 regex; add_prefix_space, use_regex), Metaspace (replacement, prepend_scheme,
 *                   split), Split (String or Regex pattern, every behavior, invert), Digits (individual_digits),
 *                   Whitespace, WhitespaceSplit, Punctuation, a Sequence of those, nested or not (Llama 3, Qwen2:
 *                   Split + ByteLevel with use_regex false; SmolLM: Digits + ByteLevel; Falcon: Punctuation,
 *                   ByteLevel, Digits, Split, the steps after ByteLevel seeing its byte characters), or null; at most
 *                   one ByteLevel and one Metaspace, and no Metaspace after ByteLevel. Split regexes are Oniguruma
 *                   syntax, which Hugging Face compiles with the onig crate; hone rewrites what PCRE2 reads
 *                   differently (\w \b \s \h \v \uHHHH {,n} (?m), and ^ $ as line anchors) and refuses what it cannot
 *                   rewrite ({n}? {n,m}+, nested classes, &&, POSIX brackets)
 *   decoder         ByteLevel; Replace (String), ByteFallback, Fuse, Strip, Metaspace, or a Sequence of those
 *   post_processor  null, ByteLevel, TemplateProcessing (single sequences), or a Sequence of those
 *   added_tokens    special or not; lstrip, rstrip, single_word, normalized (normalized ones are matched in the
 *                   normalized text by their normalized content)
 * "truncation" and "padding" in tokenizer.json are not applied, as in Hugging Face transformers, whose tokenizers
 * ignore them unless asked to truncate or pad; callers truncate and pad themselves. Unicode data comes from the
 * system's PCRE2 and utf8proc, whose Unicode versions may differ from Hugging Face's for recent characters.
 *
 * A tokenizer is immutable once loaded: encode and decode may run on many threads at once.
 */
#ifndef HONE_TOKENIZER_H
#define HONE_TOKENIZER_H

#include "hone/base.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hone_tokenizer hone_tokenizer;

/* Loads `path`: a tokenizer.json file (with the configuration files beside it), or a folder holding tokenizer.json
 * or vocab.json + merges.txt. Malformed or unsupported content is an error naming the file and the field (or line).
 * Duplicate keys in model.vocab (the JSON object keeps the last one) load with a warning. */
hone_status hone_tokenizer_load(hone_tokenizer **out, const char *path);
void hone_tokenizer_free(hone_tokenizer *tok);
/* The file the tokenizer was loaded from: its tokenizer.json, or vocab.json for a vocab.json + merges.txt folder. */
const char *hone_tokenizer_path(const hone_tokenizer *tok);

/* text[0..len) (UTF-8; invalid UTF-8 is a HONE_ERR_INVALID error naming the byte offset) → *ids (malloc'd, free
 * with free(); NULL when *n is 0). add_special_tokens: apply the post-processor (e.g. BOS/EOS of a
 * TemplateProcessing), as Hugging Face's encode(..., add_special_tokens=True). Added tokens written in the text
 * (e.g. "<|endoftext|>") always become their ids. */
hone_status hone_tokenizer_encode(const hone_tokenizer *tok, const char *text, size_t len, int add_special_tokens,
                                  int32_t **ids, size_t *n);

/* ids[0..n) → *text (malloc'd, NUL-terminated, free with free()) of *len bytes. skip_special_tokens: leave out
 * added tokens marked special. Byte sequences that are not valid UTF-8 (ids cut inside a multi-byte character)
 * become U+FFFD, as in Hugging Face. An id outside the vocabulary is a HONE_ERR_INVALID error. */
hone_status hone_tokenizer_decode(const hone_tokenizer *tok, const int32_t *ids, size_t n, int skip_special_tokens,
                                  char **text, size_t *len);

/* 1 + the highest id of the vocabulary and the added tokens: the number of rows an embedding needs. */
int32_t hone_tokenizer_vocab_size(const hone_tokenizer *tok);
/* The id of a token given in its vocabulary form (e.g. "Ġthe" for GPT-2), or -1. */
int32_t hone_tokenizer_token_to_id(const hone_tokenizer *tok, const char *token);
/* The vocabulary form of a token (NUL-terminated, owned by the tokenizer), or NULL for an unknown id. */
const char *hone_tokenizer_id_to_token(const hone_tokenizer *tok, int32_t id);
/* 1 when id is an added token marked special (what decoding with skip_special_tokens leaves out), else 0. */
int hone_tokenizer_is_special(const hone_tokenizer *tok, int32_t id);

/* The special tokens as transformers' tokenizer sees them (strings owned by the tokenizer, NULL when absent; ids -1
 * when absent), and the chat templates. */
typedef struct {
    const char *bos_token, *eos_token, *unk_token, *pad_token;
    int32_t bos_id, eos_id, unk_id, pad_id;
    int add_bos_token, add_eos_token; /* 1 when encode with add_special_tokens puts bos first / eos last */
    size_t n_chat_templates;          /* chat_template_names[i] names chat_templates[i]; "default" comes first */
    const char *const *chat_template_names;
    const char *const *chat_templates;
} hone_special_tokens;
const hone_special_tokens *hone_tokenizer_special(const hone_tokenizer *tok);
/* The chat template called `name` (NULL or "default": the default one), or NULL when there is none. */
const char *hone_tokenizer_chat_template(const hone_tokenizer *tok, const char *name);

/* Tokenizes a JSONL file of {"text": ...} lines into {"ids": [...]} lines (or, with decode, {"ids"} /
 * {"input_ids"} lines back into {"text"} lines), in parallel, one output line per non-blank input line in the
 * same order, written atomically. Errors name the file and line. *n_lines = lines written. */
hone_status hone_tokenize_jsonl(const hone_tokenizer *tok, const char *in_path, const char *out_path,
                                int add_special_tokens, int decode, size_t *n_lines);

/* Streaming decode for generation: push each generated id and get the text it adds (malloc'd, NUL-terminated,
 * possibly empty), always whole UTF-8 characters — a character split across tokens comes out once its last
 * token has arrived. Flush at the end for whatever is held back. The pieces concatenated equal
 * hone_tokenizer_decode of all the ids. (Each push decodes the ids so far: O(n²) over a generation.) */
typedef struct hone_decode_stream hone_decode_stream;
hone_status hone_decode_stream_new(hone_decode_stream **out, const hone_tokenizer *tok);
void hone_decode_stream_free(hone_decode_stream *d);
hone_status hone_decode_stream_push(hone_decode_stream *d, int32_t id, char **piece, size_t *len);
hone_status hone_decode_stream_flush(hone_decode_stream *d, char **piece, size_t *len);

#ifdef __cplusplus
}
#endif
#endif
