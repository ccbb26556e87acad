/* The token cache: a text file tokenized once is stored as a memory-mappable token stream under a key made of
 * content hashes (the data file, every tokenizer file, the options, and the code that tokenizes), so the same
 * file with the same tokenizer is never tokenized twice. Entries are written atomically; an entry that does not
 * validate is reported, ignored and rewritten.
 *
 * Entry file <dir>/<key>.tokens, native byte order (the header's byte-order mark rejects a foreign one):
 *   [0, 8)    magic "HONETOKS"
 *   [8, 12)   uint32 format version (1)          [12, 16) uint32 0x01020304 byte-order mark
 *   [16, 24)  uint64 header bytes H (multiple of 64, so that the tokens are 64-byte aligned in the mapping)
 *   [24, 32)  uint64 token count N               [32, 40) uint64 document count
 *   [40, 72)  the key (32 hex digits)            [72, H)  the key material as text, NUL-padded (for people)
 *   [H, H+4N) int32 token ids
 */
#include "hone/data.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hone_code_id.h"

#define CACHE_MAGIC "HONETOKS"
#define CACHE_VERSION 1u
#define CACHE_BOM 0x01020304u
#define CACHE_FIXED_HEADER 72

typedef struct {
    char key[33];
    char *material; /* what the key hashes: one "name=value" per line */
} cache_key;

/* Files beside a tokenizer that can change how it encodes. */
static const char *const tokenizer_files[] = {
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "vocab.json",
    "merges.txt",     "tokenizer.model"};

static hone_status append_line(char **buf, const char *fmt, const char *name, const char *value) {
    size_t old = *buf ? strlen(*buf) : 0, add = strlen(fmt) + strlen(name) + strlen(value);
    char *grown = realloc(*buf, old + add + 1);
    if (!grown) return hone_errorf(HONE_ERR_NOMEM, "out of memory building a token cache key");
    snprintf(grown + old, add + 1, fmt, name, value);
    *buf = grown;
    return HONE_OK;
}

static hone_status hash_file_into(char **material, const char *label, const char *path) {
    hone_mapped_file f;
    HONE_TRY(hone_file_map(&f, path));
    uint64_t h[2];
    char hex[33];
    hone_hash128(f.data, f.size, 0, h);
    hone_hash128_hex(h, hex);
    hone_file_unmap(&f);
    return append_line(material, "%s=%s\n", label, hex);
}

/* The tokenizer's own file plus its configuration siblings (or, for a folder, every tokenizer file in it). */
static hone_status hash_tokenizer_files(char **material, const char *tok_path) {
    const int is_dir = hone_dir_exists(tok_path);
    char *dir = strdup(tok_path);
    if (!dir) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    if (!is_dir) {
        char *slash = strrchr(dir, '/');
        if (slash)
            *slash = '\0';
        else
            strcpy(dir, ".");
        hone_status st = hash_file_into(material, "tokenizer", tok_path);
        if (st != HONE_OK) {
            free(dir);
            return st;
        }
    }
    hone_status st = HONE_OK;
    for (size_t i = 0; i < sizeof tokenizer_files / sizeof *tokenizer_files && st == HONE_OK; i++) {
        char *p = hone_path_join(dir, tokenizer_files[i]);
        if (!p)
            st = hone_errorf(HONE_ERR_NOMEM, "out of memory");
        else if (hone_file_exists(p))
            st = hash_file_into(material, tokenizer_files[i], p);
        free(p);
    }
    free(dir);
    return st;
}

static hone_status make_key(cache_key *k, const hone_mapped_file *data, const hone_text_options *opt) {
    memset(k, 0, sizeof *k);
    uint64_t h[2];
    char hex[33], num[32];
    hone_hash128(data->data, data->size, 0, h);
    hone_hash128_hex(h, hex);
    snprintf(num, sizeof num, "%d", (int)opt->eos_id);
    const char *name = strrchr(data->path, '/');
    hone_status st = append_line(&k->material, "%s=%s\n", "format", "hone token cache 1");
    if (st == HONE_OK) st = append_line(&k->material, "%s=%s\n", "code", HONE_TEXT_CODE_ID);
    if (st == HONE_OK) st = append_line(&k->material, "%s=%s\n", "data", hex);
    /* the extension decides how the file is read (.txt: one document; .jsonl: one per line) */
    if (st == HONE_OK) st = append_line(&k->material, "%s=%s\n", "data_name", name ? name + 1 : data->path);
    if (st == HONE_OK) st = append_line(&k->material, "%s=%s\n", "eos_id", num);
    if (st == HONE_OK) st = append_line(&k->material, "%s=%s\n", "add_special_tokens", "1");
    if (st == HONE_OK) st = hash_tokenizer_files(&k->material, hone_tokenizer_path(opt->tokenizer));
    if (st != HONE_OK) {
        free(k->material);
        k->material = NULL;
        return st;
    }
    hone_hash128(k->material, strlen(k->material), 0, h);
    hone_hash128_hex(h, k->key);
    return HONE_OK;
}

static size_t header_bytes(const cache_key *k) {
    size_t n = CACHE_FIXED_HEADER + strlen(k->material) + 1;
    return (n + 63) / 64 * 64;
}

static uint64_t get_u64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static uint32_t get_u32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* Why the mapped entry is unusable, or NULL when it is sound. */
static const char *entry_problem(const hone_mapped_file *f, const cache_key *k) {
    if (f->size < CACHE_FIXED_HEADER || memcmp(f->data, CACHE_MAGIC, 8) != 0) return "not a hone token cache file";
    if (get_u32(f->data + 8) != CACHE_VERSION) return "written by another version of the cache format";
    if (get_u32(f->data + 12) != CACHE_BOM) return "written on a host of the other byte order";
    const uint64_t header = get_u64(f->data + 16), n = get_u64(f->data + 24);
    if (header % 64 || header < CACHE_FIXED_HEADER || header > f->size) return "bad header size";
    if (memcmp(f->data + 40, k->key, 32) != 0) return "its key differs from its file name";
    if (n > (f->size - header) / 4 || f->size - header != n * 4) return "truncated or padded token array";
    const int32_t *ids = (const int32_t *)(f->data + header);
    for (uint64_t i = 0; i < n; i++)
        if (ids[i] < 0) return "holds negative ids";
    return NULL;
}

/* 1 and a filled stream when a sound entry exists; 0 otherwise (a broken entry is reported). */
static int lookup(hone_token_stream *s, const char *entry, const cache_key *k) {
    if (!hone_file_exists(entry)) return 0;
    hone_mapped_file f;
    if (hone_file_map(&f, entry) != HONE_OK) {
        hone_log(HONE_LOG_WARN, "token cache: cannot read %s (%s); tokenizing again", entry, hone_error());
        return 0;
    }
    const char *problem = entry_problem(&f, k);
    if (problem) {
        hone_log(HONE_LOG_WARN, "token cache: ignoring %s: %s; tokenizing again", entry, problem);
        hone_file_unmap(&f);
        return 0;
    }
    memset(s, 0, sizeof *s);
    s->n_tokens = get_u64(f.data + 24);
    s->n_documents = get_u64(f.data + 32);
    s->tokens = (int32_t *)(f.data + get_u64(f.data + 16));
    s->cache_mapping = f;
    return 1;
}

static hone_status store(const char *entry, const cache_key *k, const hone_token_stream *s) {
    const size_t header = header_bytes(k);
    uint8_t *h = calloc(1, header);
    if (!h) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    const uint32_t version = CACHE_VERSION, bom = CACHE_BOM;
    const uint64_t header64 = header, n = s->n_tokens, docs = s->n_documents;
    memcpy(h, CACHE_MAGIC, 8);
    memcpy(h + 8, &version, 4);
    memcpy(h + 12, &bom, 4);
    memcpy(h + 16, &header64, 8);
    memcpy(h + 24, &n, 8);
    memcpy(h + 32, &docs, 8);
    memcpy(h + 40, k->key, 32);
    memcpy(h + CACHE_FIXED_HEADER, k->material, strlen(k->material));
    hone_atomic_file af;
    hone_status st = hone_atomic_open(&af, entry);
    if (st == HONE_OK) {
        st = hone_atomic_write(&af, h, header);
        if (st == HONE_OK) st = hone_atomic_write(&af, s->tokens, s->n_tokens * sizeof(int32_t));
        st = st == HONE_OK ? hone_atomic_commit(&af) : (hone_atomic_abort(&af), st);
    }
    free(h);
    return st;
}

const char *hone_token_cache_default_dir(void) {
    static char dir[4096];
    const char *env = getenv("HONE_CACHE_DIR"), *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (env && *env)
        snprintf(dir, sizeof dir, "%s/tokens", env);
    else if (xdg && *xdg)
        snprintf(dir, sizeof dir, "%s/hone/tokens", xdg);
    else if (home && *home)
        snprintf(dir, sizeof dir, "%s/.cache/hone/tokens", home);
    else
        return NULL;
    return dir;
}

hone_status hone_tokens_load_cached(hone_token_stream *s, const char *path, int vocab_size,
                                    const hone_text_options *text, const char *cache_dir) {
    memset(s, 0, sizeof *s);
    /* shards are already tokens; without a tokenizer there is no text to cache */
    if (!cache_dir || hone_tokens_is_shard(path) || !text || !text->tokenizer)
        return hone_tokens_load_text(s, path, vocab_size, text);
    hone_mapped_file data;
    HONE_TRY(hone_file_map(&data, path));
    cache_key k;
    hone_status st = make_key(&k, &data, text);
    hone_file_unmap(&data);
    HONE_TRY(st);
    char name[64];
    snprintf(name, sizeof name, "%s.tokens", k.key);
    char *entry = hone_path_join(cache_dir, name);
    if (!entry)
        st = hone_errorf(HONE_ERR_NOMEM, "out of memory");
    else if (lookup(s, entry, &k)) {
        hone_log(HONE_LOG_INFO, "%s: %zu tokens from the token cache (%s)", path, s->n_tokens, entry);
        for (size_t i = 0; i < s->n_tokens && st == HONE_OK; i++)
            if (vocab_size > 0 && s->tokens[i] >= vocab_size)
                st = hone_errorf(HONE_ERR_INVALID,
                                 "%s: token %zu is id %d, outside the model's vocabulary (size %d): the tokenizer "
                                 "does not belong to this model",
                                 path, i, s->tokens[i], vocab_size);
        if (st != HONE_OK) hone_tokens_free(s);
    } else {
        st = hone_tokens_load_text(s, path, vocab_size, text);
        hone_status cst = HONE_OK;
        if (st == HONE_OK) {
            cst = hone_dir_create(cache_dir);
            if (cst == HONE_OK) cst = store(entry, &k, s);
        }
        /* a cache that cannot be written costs time, not correctness */
        if (cst != HONE_OK) hone_log(HONE_LOG_WARN, "token cache: not saved: %s", hone_error());
    }
    free(entry);
    free(k.material);
    return st;
}
