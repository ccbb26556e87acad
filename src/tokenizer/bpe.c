/* BPE: the merge table and the merge loop of one word.
 *
 * A word starts as one symbol per byte (ByteLevel maps each byte to one
 * vocabulary character). The loop repeatedly merges the adjacent pair with the
 * lowest merge rank — the leftmost one on ties — exactly the order Hugging
 * Face's BPE uses. Symbols form a doubly linked list over a fixed array, and
 * candidate pairs sit in a binary min-heap keyed by (rank, position); entries
 * made stale by an earlier merge are dropped when popped. A word of m bytes
 * costs O(m log m), never O(m²). */
#include <stdlib.h>
#include <string.h>
#include <threads.h>

#include "tokenizer/tokenizer_internal.h"

struct tok_symbol {
    int32_t id;         /* token id; -1 once merged into its left neighbour */
    int32_t prev, next; /* neighbours in the list, -1 at the ends */
};

struct tok_pair {
    int32_t rank; /* merge rank of (sym[pos], sym[pos].next) when pushed */
    int32_t pos;
};

static uint32_t merge_slot(uint64_t key, uint32_t mask) {
    uint64_t h = key * 0x9E3779B97F4A7C15ull;
    return (uint32_t)(h >> 32 ^ h) & mask;
}

/* Rank of merging (left, right) and the merged id, or -1 when no merge exists.
 */
static int32_t merge_find(const hone_tokenizer *t, int32_t left, int32_t right, int32_t *merged) {
    uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    for (uint32_t i = merge_slot(key, t->merge_mask);; i = (i + 1) & t->merge_mask) {
        const struct tok_merge *m = &t->merges[i];
        if (m->key == key) {
            *merged = m->id;
            return m->rank;
        }
        if (m->key == UINT64_MAX) return -1;
    }
}

int32_t tok_vocab_find(const hone_tokenizer *t, const char *s, size_t n) {
    const tok_str_index *ix = &t->vocab_index;
    for (uint32_t i = (uint32_t)tok_hash_bytes(s, n) & ix->mask;; i = (i + 1) & ix->mask) {
        int32_t id = ix->slots[i];
        if (id < 0) return -1;
        if (t->vocab_len[id] == n && !memcmp(t->vocab[id], s, n)) return id;
    }
}

/* Splits merge i into its two halves (borrowed from the JSON, or copied into
 * buf for the "a b" form). */
static hone_status merge_halves(const hone_tokenizer *t, json_t *m, size_t i, char **buf, const char **a,
                                const char **b) {
    if (json_is_array(m)) {
        if (json_array_size(m) != 2 || !json_is_string(json_array_get(m, 0)) || !json_is_string(json_array_get(m, 1)))
            return hone_errorf(HONE_ERR_FORMAT, "%s: model.merges[%zu] must be a pair of strings", t->path, i);
        *a = json_string_value(json_array_get(m, 0));
        *b = json_string_value(json_array_get(m, 1));
        return HONE_OK;
    }
    if (!json_is_string(m))
        return hone_errorf(HONE_ERR_FORMAT,
                           "%s: model.merges[%zu] must be a string \"a b\" or a "
                           "pair [\"a\", \"b\"]",
                           t->path, i);
    const char *s = json_string_value(m);
    const char *space = strchr(s, ' ');
    if (space && strchr(space + 1, ' ')) {
        /* tokens that contain spaces (e.g. Llama 2's tokenizer.json where U+00A0
         * was written as a space): the first separating space for which both
         * halves and their concatenation are tokens */
        size_t len = strlen(s);
        for (const char *sp = space; sp; sp = strchr(sp + 1, ' ')) {
            size_t la = (size_t)(sp - s), lb = len - la - 1;
            char *joined = malloc(len + 1);
            if (!joined) return hone_errorf(HONE_ERR_NOMEM, "out of memory reading %s", t->path);
            memcpy(joined, s, la);
            memcpy(joined + la, sp + 1, lb);
            int ok = la && lb && tok_vocab_find(t, s, la) >= 0 && tok_vocab_find(t, sp + 1, lb) >= 0 &&
                     tok_vocab_find(t, joined, la + lb) >= 0;
            free(joined);
            if (ok) {
                space = sp;
                break;
            }
        }
    }
    if (!space)
        return hone_errorf(HONE_ERR_FORMAT,
                           "%s: model.merges[%zu] = \"%s\" must be two tokens "
                           "separated by one space",
                           t->path, i, s);
    free(*buf);
    *buf = strdup(s);
    if (!*buf) return hone_errorf(HONE_ERR_NOMEM, "out of memory reading %s", t->path);
    (*buf)[space - s] = 0;
    *a = *buf;
    *b = *buf + (space - s) + 1;
    return HONE_OK;
}

static hone_status merge_token(const hone_tokenizer *t, const char *s, size_t n, size_t i, int32_t *id) {
    *id = tok_vocab_find(t, s, n);
    if (*id < 0)
        return hone_errorf(HONE_ERR_FORMAT, "%s: model.merges[%zu] refers to \"%.*s\", which is not in model.vocab",
                           t->path, i, (int)n, s);
    return HONE_OK;
}

hone_status tok_bpe_load_merges(hone_tokenizer *t, json_t *merges) {
    size_t n = json_array_size(merges);
    uint32_t cap = 16;
    while (cap < 2 * n + 16) cap *= 2;
    t->merge_mask = cap - 1;
    t->merges = malloc(cap * sizeof *t->merges);
    if (!t->merges) return hone_errorf(HONE_ERR_NOMEM, "out of memory for %zu merges of %s", n, t->path);
    for (uint32_t i = 0; i < cap; i++) t->merges[i].key = UINT64_MAX;

    char *buf = NULL, *joined = NULL;
    size_t joined_cap = 0;
    hone_status st = HONE_OK;
    for (size_t i = 0; i < n && st == HONE_OK; i++) {
        const char *a = NULL, *b = NULL;
        int32_t ia, ib, im;
        if ((st = merge_halves(t, json_array_get(merges, i), i, &buf, &a, &b)) != HONE_OK) break;
        size_t la = strlen(a), lb = strlen(b);
        if (la + lb + 1 > joined_cap) {
            joined_cap = 2 * (la + lb + 1);
            char *p = realloc(joined, joined_cap);
            if (!p) {
                st = hone_errorf(HONE_ERR_NOMEM, "out of memory reading %s", t->path);
                break;
            }
            joined = p;
        }
        memcpy(joined, a, la);
        memcpy(joined + la, b, lb);
        if ((st = merge_token(t, a, la, i, &ia)) != HONE_OK || (st = merge_token(t, b, lb, i, &ib)) != HONE_OK ||
            (st = merge_token(t, joined, la + lb, i, &im)) != HONE_OK)
            break;
        /* a pair listed twice keeps its last rank, as Hugging Face's map built from
         * the list does */
        uint64_t key = (uint64_t)(uint32_t)ia << 32 | (uint32_t)ib;
        uint32_t s = merge_slot(key, t->merge_mask);
        while (t->merges[s].key != UINT64_MAX && t->merges[s].key != key) s = (s + 1) & t->merge_mask;
        t->merges[s] = (struct tok_merge){key, (int32_t)i, im};
    }
    free(buf);
    free(joined);
    return st;
}

void tok_bpe_scratch_free(tok_bpe_scratch *s) {
    free(s->sym);
    free(s->heap);
    free(s->word.v);
    memset(s, 0, sizeof *s);
}

static int pair_less(struct tok_pair a, struct tok_pair b) {
    return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos);
}

static void heap_push(struct tok_pair *h, size_t *n, struct tok_pair p) {
    size_t i = (*n)++;
    while (i > 0 && pair_less(p, h[(i - 1) / 2])) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = p;
}

static struct tok_pair heap_pop(struct tok_pair *h, size_t *n) {
    struct tok_pair top = h[0], last = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && pair_less(h[c + 1], h[c])) c++;
        if (!pair_less(h[c], last)) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = last;
    return top;
}

/* Pushes the pair starting at symbol `pos` when a merge exists for it. */
static void push_pair(const hone_tokenizer *t, const struct tok_symbol *sym, struct tok_pair *h, size_t *nh,
                      int32_t pos) {
    int32_t next = sym[pos].next, merged;
    if (next < 0) return;
    int32_t rank = merge_find(t, sym[pos].id, sym[next].id, &merged);
    if (rank >= 0) heap_push(h, nh, (struct tok_pair){rank, pos});
}

static hone_status grow_scratch(tok_bpe_scratch *s, size_t n) {
    if (n <= s->sym_cap) return HONE_OK;
    size_t cap = s->sym_cap ? s->sym_cap : 64;
    while (cap < n) cap *= 2;
    free(s->sym);
    free(s->heap);
    s->sym = malloc(cap * sizeof *s->sym);
    /* each merge pushes at most 2 pairs on top of the initial m − 1 */
    s->heap = malloc(3 * cap * sizeof *s->heap);
    s->sym_cap = s->heap_cap = 0;
    if (!s->sym || !s->heap) return hone_errorf(HONE_ERR_NOMEM, "out of memory for a word of %zu bytes", n);
    s->sym_cap = cap;
    s->heap_cap = 3 * cap;
    return HONE_OK;
}

static hone_status merge_and_emit(const hone_tokenizer *t, tok_bpe_scratch *s, size_t m, tok_ids *out);

/* Without ByteLevel: the word starts as one symbol per UTF-8 character (its
 * vocabulary id), or — with byte_fallback, for a character the vocabulary
 * lacks — one <0xXX> symbol per byte, or else unk_token. */
static hone_status bpe_chars(const hone_tokenizer *t, tok_bpe_scratch *s, const uint8_t *w, size_t n, tok_ids *out) {
    struct tok_symbol *sym = s->sym;
    size_t m = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t bad, k = tok_utf8_next(w + i, n - i, &cp, &bad);
        if (!k) k = bad; /* the input was validated; never happens */
        int32_t id = tok_vocab_find(t, (const char *)w + i, k);
        int fell_back = 0;
        if (id < 0 && t->byte_fallback) {
            size_t j = 0;
            while (j < k && t->fallback_id[w[i + j]] >= 0) j++;
            if (j == k) {
                for (j = 0; j < k; j++) sym[m++] = (struct tok_symbol){t->fallback_id[w[i + j]], 0, 0};
                fell_back = 1;
            }
        }
        if (!fell_back) {
            if (id < 0) id = t->unk_id;
            if (id < 0)
                return hone_errorf(HONE_ERR_UNSUPPORTED,
                                   "%s: \"%.*s\" has no token in model.vocab and "
                                   "model.unk_token is null",
                                   t->path, (int)k, (const char *)w + i);
            sym[m++] = (struct tok_symbol){id, 0, 0};
        }
        i += k;
    }
    for (size_t i = 0; i < m; i++) {
        sym[i].prev = (int32_t)i - 1;
        sym[i].next = i + 1 < m ? (int32_t)i + 1 : -1;
    }
    return merge_and_emit(t, s, m, out);
}

/* The BPE of one word, without the cache. */
static hone_status bpe_word(const hone_tokenizer *t, tok_bpe_scratch *s, const uint8_t *w, size_t n, tok_ids *out) {
    if (n > INT32_MAX / 4) return hone_errorf(HONE_ERR_INVALID, "a word of %zu bytes is too long to encode", n);
    if (t->ignore_merges && !t->byte_level) {
        int32_t id = tok_vocab_find(t, (const char *)w, n);
        if (id >= 0) return tok_ids_push(out, id);
    }
    if (t->ignore_merges && t->byte_level) { /* a word that is itself a token is
                                                emitted whole, without merging */
        s->word.n = 0;
        for (size_t i = 0; i < n; i++) HONE_TRY(tok_bytes_append(&s->word, t->byte_char[w[i]], t->byte_char_len[w[i]]));
        int32_t id = tok_vocab_find(t, s->word.v, s->word.n);
        if (id >= 0) return tok_ids_push(out, id);
    }
    HONE_TRY(grow_scratch(s, n));
    struct tok_symbol *sym = s->sym;
    if (!t->byte_level) return bpe_chars(t, s, w, n, out);
    for (size_t i = 0; i < n; i++) {
        int32_t id = t->byte_id[w[i]];
        if (id < 0) id = t->unk_id;
        if (id < 0)
            return hone_errorf(HONE_ERR_UNSUPPORTED,
                               "%s: byte 0x%02X has no token in model.vocab and "
                               "model.unk_token is null",
                               t->path, w[i]);
        sym[i] = (struct tok_symbol){id, (int32_t)i - 1, i + 1 < n ? (int32_t)i + 1 : -1};
    }
    return merge_and_emit(t, s, n, out);
}

/* Appends the final symbols, fusing runs of unk_token into one when fuse_unk is set. */
static hone_status emit(const hone_tokenizer *t, const int32_t *ids, size_t m, tok_ids *out) {
    int prev_unk = 0;
    for (size_t i = 0; i < m; i++) {
        int is_unk = ids[i] == t->unk_id;
        if (!(is_unk && prev_unk && t->fuse_unk)) HONE_TRY(tok_ids_push(out, ids[i]));
        prev_unk = is_unk;
    }
    return HONE_OK;
}

/* Short words (most of natural text) skip the heap: the ids stay in a compact array and each step scans the
 * m − 1 pair ranks for the lowest, leftmost on ties — the same order as the heap's (rank, position), in
 * O(m²) steps that are cheaper than heap operations while m is small. */
enum { BPE_LINEAR_MAX = 32 };

static hone_status merge_short(const hone_tokenizer *t, const struct tok_symbol *sym, size_t m, tok_ids *out) {
    int32_t ids[BPE_LINEAR_MAX], rank[BPE_LINEAR_MAX], merged[BPE_LINEAR_MAX];
    for (size_t i = 0; i < m; i++) ids[i] = sym[i].id;
    for (size_t i = 0; i + 1 < m; i++) rank[i] = merge_find(t, ids[i], ids[i + 1], &merged[i]);
    while (m > 1) {
        size_t best = 0;
        int32_t best_rank = -1;
        for (size_t i = 0; i + 1 < m; i++)
            if (rank[i] >= 0 && (best_rank < 0 || rank[i] < best_rank)) best_rank = rank[i], best = i;
        if (best_rank < 0) break;
        /* symbols best and best+1 become one; pair best+1 and later move down one place */
        ids[best] = merged[best];
        memmove(ids + best + 1, ids + best + 2, (m - best - 2) * sizeof *ids);
        if (m > best + 3) {
            memmove(rank + best + 1, rank + best + 2, (m - best - 3) * sizeof *rank);
            memmove(merged + best + 1, merged + best + 2, (m - best - 3) * sizeof *merged);
        }
        m--;
        if (best > 0) rank[best - 1] = merge_find(t, ids[best - 1], ids[best], &merged[best - 1]);
        if (best + 1 < m) rank[best] = merge_find(t, ids[best], ids[best + 1], &merged[best]);
    }
    return emit(t, ids, m, out);
}

/* Runs the merge loop over sym[0..m) (a linked list from 0) and appends the resulting ids. */
static hone_status merge_and_emit(const hone_tokenizer *t, tok_bpe_scratch *s, size_t m, tok_ids *out) {
    struct tok_symbol *sym = s->sym;
    if (m <= BPE_LINEAR_MAX) return merge_short(t, sym, m, out);
    size_t nh = 0;
    for (size_t i = 0; i + 1 < m; i++) push_pair(t, sym, s->heap, &nh, (int32_t)i);
    while (nh) {
        struct tok_pair p = heap_pop(s->heap, &nh);
        int32_t left = p.pos, right = sym[left].next, merged = -1;
        if (sym[left].id < 0 || right < 0) continue;
        /* a rank names one (left, right) pair, so an unchanged rank means the entry is still current */
        if (merge_find(t, sym[left].id, sym[right].id, &merged) != p.rank) continue;
        sym[left].id = merged;
        sym[left].next = sym[right].next;
        if (sym[right].next >= 0) sym[sym[right].next].prev = left;
        sym[right].id = -1;
        if (sym[left].prev >= 0) push_pair(t, sym, s->heap, &nh, sym[left].prev);
        push_pair(t, sym, s->heap, &nh, left);
    }
    /* compact the surviving symbols (in list order) into the front of the array for emit */
    size_t n = 0;
    int32_t *ids = (int32_t *)s->heap; /* the heap is empty now and holds at least 2m int32s */
    for (int32_t i = 0; i >= 0; i = sym[i].next) ids[n++] = sym[i].id;
    return emit(t, ids, n, out);
}

/* ---- The word cache: per-thread BPE results, pre-token word → token ids.
 *
 * Natural text repeats a small set of words ("Ġthe", "Ġand", ","), and BPE of a word depends on nothing but the
 * tokenizer and the word's bytes, so most words can skip the merge loop. The cache is 2-way set associative
 * with least-recently-used replacement inside a set, bounded, and only memoises a pure function: the ids are the
 * same whether or not a word hits. A word is kept zero-padded in two 64-bit halves so that a probe compares
 * two integers instead of calling memcmp.
 *
 * hone_tokenizer_encode takes a const tokenizer and runs on many threads at once, so the cache is never shared:
 * each thread has its own (a C11 tss_t whose destructor frees it when the thread exits). It belongs to one
 * tokenizer at a time, named by the tokenizer's load serial rather than its address, which a freed and reloaded
 * tokenizer could reuse. */
enum {
    CACHE_SETS = 16384,  /* power of 2; a set is one 64-byte cache line: 1 MB per thread, about one L2 */
    CACHE_WORD_MAX = 16, /* longer words are rare enough to not cache */
    CACHE_IDS_MAX = 3,   /* so that a slot is 32 bytes; words of more tokens are rare */
};

struct tok_cache_slot {
    uint64_t lo, hi; /* the word's bytes 0–7 and 8–15, zero-padded */
    uint8_t len;     /* 0: empty (a word has at least one byte) */
    uint8_t n_ids;
    int32_t ids[CACHE_IDS_MAX];
};

/* The probe of a word touches one cache line: latency, not arithmetic, is what a lookup costs. */
struct tok_word_cache {
    _Alignas(64) struct tok_cache_slot set[CACHE_SETS][2]; /* [0] is the more recently used */
    uint64_t owner;                                         /* serial of the tokenizer the entries belong to */
};

static tss_t cache_key;
static once_flag cache_once = ONCE_FLAG_INIT;
static int cache_key_ok;

static void cache_key_create(void) { cache_key_ok = tss_create(&cache_key, free) == thrd_success; }

tok_word_cache *tok_word_cache_get(const hone_tokenizer *t) {
    call_once(&cache_once, cache_key_create);
    if (!cache_key_ok) return NULL;
    tok_word_cache *c = tss_get(cache_key);
    if (!c) {
        c = aligned_alloc(64, sizeof *c);
        if (!c || tss_set(cache_key, c) != thrd_success) {
            free(c); /* encoding still works, only uncached */
            return NULL;
        }
        c->owner = 0; /* serials start at 1: the slots get cleared below */
    }
    if (c->owner != t->serial) {
        for (size_t i = 0; i < CACHE_SETS; i++) c->set[i][0].len = c->set[i][1].len = 0;
        c->owner = t->serial;
    }
    return c;
}

/* A word of at most CACHE_WORD_MAX bytes as two zero-padded halves, and its set. */
typedef struct {
    uint64_t lo, hi;
    uint32_t set;
} cache_probe;

static cache_probe cache_probe_of(const uint8_t *w, size_t n) {
    cache_probe p = {0, 0, 0};
    memcpy(&p.lo, w, n < 8 ? n : 8);
    if (n > 8) memcpy(&p.hi, w + 8, n - 8);
    uint64_t h = p.lo * 0x9E3779B97F4A7C15ull ^ (p.hi + n) * 0xC2B2AE3D27D4EB4Full;
    h ^= h >> 29;
    h *= 0x165667B19E3779F9ull;
    p.set = (uint32_t)(h >> 40) & (CACHE_SETS - 1);
    return p;
}

static int slot_holds(const struct tok_cache_slot *s, const cache_probe *p, size_t n) {
    return s->len == n && s->lo == p->lo && s->hi == p->hi;
}

/* Appends ids[0..n) to out: one copy when there is room. */
static hone_status append_ids(tok_ids *out, const int32_t *ids, size_t n) {
    if (out->cap - out->n >= n) {
        memcpy(out->v + out->n, ids, n * sizeof *ids);
        out->n += n;
        return HONE_OK;
    }
    for (size_t i = 0; i < n; i++) HONE_TRY(tok_ids_push(out, ids[i]));
    return HONE_OK;
}

hone_status tok_bpe_encode_word(const hone_tokenizer *t, tok_bpe_scratch *s, const uint8_t *w, size_t n, tok_ids *out) {
    if (!s->cache || n > CACHE_WORD_MAX) return bpe_word(t, s, w, n, out);
    const cache_probe p = cache_probe_of(w, n);
    struct tok_cache_slot *set = s->cache->set[p.set];
    if (slot_holds(&set[0], &p, n)) return append_ids(out, set[0].ids, set[0].n_ids);
    if (slot_holds(&set[1], &p, n)) {
        const struct tok_cache_slot hit = set[1];
        set[1] = set[0];
        set[0] = hit;
        return append_ids(out, hit.ids, hit.n_ids);
    }
    const size_t start = out->n;
    HONE_TRY(bpe_word(t, s, w, n, out));
    const size_t n_ids = out->n - start;
    if (n_ids <= CACHE_IDS_MAX) {
        set[1] = set[0];
        set[0] = (struct tok_cache_slot){.lo = p.lo, .hi = p.hi, .len = (uint8_t)n, .n_ids = (uint8_t)n_ids};
        memcpy(set[0].ids, out->v + start, n_ids * sizeof *out->v);
    }
    return HONE_OK;
}
