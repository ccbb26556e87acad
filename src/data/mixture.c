/* Dataset mixtures (see hone/mixture.h): reading, dedup, seeded caps, weighted shares, Flan-style shaping (input
 * inversion, few-shot exemplars), and rendering of the result. Every random choice draws from a stream named by its
 * purpose and the dataset or mixture position it concerns, so one choice never shifts another. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hone/mixture.h"

/* stream = purpose << 56 | dataset index or mixture position */
#define STREAM_SUBSET (1ull << 56) /* the permutation of a dataset behind its cap and its share */
#define STREAM_DRAW (2ull << 56)   /* draws with replacement from a dataset */
#define STREAM_SHAPE (3ull << 56)  /* the shaping of one example of the mixture */
#define MAX_EXEMPLARS 16

void hone_mixture_defaults(hone_mixture_options *o) {
    memset(o, 0, sizeof *o);
    o->seed = 42;
    o->minhash = (hone_minhash_params){.ngram = 3, .permutations = 128, .bands = 16, .threshold = 0.8};
    o->few_shot_max_exemplars = 3;
    o->few_shot_max_chars = 2000;
}

/* ---- copies ---- */

static char *copy_string(const char *s, int *failed) {
    if (!s) return NULL;
    char *d = strdup(s);
    if (!d) *failed = 1;
    return d;
}

static void copy_message(hone_message *d, const hone_message *s, int *failed) {
    d->role = copy_string(s->role, failed);
    d->content = copy_string(s->content, failed);
    d->weight = s->weight;
    d->name = copy_string(s->name, failed);
    d->tool_calls_json = copy_string(s->tool_calls_json, failed);
    d->tool_call_id = copy_string(s->tool_call_id, failed);
}

static void copy_conversation(hone_conversation *d, const hone_conversation *s, int *failed) {
    d->tools_json = copy_string(s->tools_json, failed);
    if (!s->n_messages) return;
    if (!(d->messages = calloc(s->n_messages, sizeof *d->messages))) {
        *failed = 1;
        return;
    }
    d->n_messages = s->n_messages;
    for (size_t i = 0; i < s->n_messages; i++) copy_message(&d->messages[i], &s->messages[i], failed);
}

static int32_t *copy_ids(const int32_t *s, size_t n, int *failed) {
    if (!s) return NULL;
    int32_t *d = malloc((n ? n : 1) * sizeof *d);
    if (d) memcpy(d, s, n * sizeof *d);
    else *failed = 1;
    return d;
}

/* A deep copy of the parts a mixture carries: kind, place, conversations, instruction fields, text, tokens, label,
 * conversation style. */
static hone_status copy_example(hone_example *d, const hone_example *s) {
    int failed = 0;
    *d = (hone_example){
        .kind = s->kind, .line = s->line, .index = s->index, .label = s->label, .n_tokens = s->n_tokens,
        .conversation_style = s->conversation_style};
    copy_conversation(&d->conversation, &s->conversation, &failed);
    copy_conversation(&d->chosen, &s->chosen, &failed);
    copy_conversation(&d->rejected, &s->rejected, &failed);
    d->text = copy_string(s->text, &failed);
    d->instruction = copy_string(s->instruction, &failed);
    d->input = copy_string(s->input, &failed);
    d->input_ids = copy_ids(s->input_ids, s->n_tokens, &failed);
    d->labels = copy_ids(s->labels, s->n_tokens, &failed);
    if (!failed) return HONE_OK;
    hone_example_free(d);
    return hone_errorf(HONE_ERR_NOMEM, "out of memory copying the example at line %zu", s->line);
}

/* ---- shaping ---- */

/* The index of the user message of a single-turn conversation — system messages, then one user message and one
 * plain assistant answer (no tool calls) — or -1. */
static long single_turn(const hone_example *ex) {
    if (ex->kind != HONE_EXAMPLE_SFT) return -1;
    const hone_conversation *c = &ex->conversation;
    size_t u = 0;
    while (u < c->n_messages && !strcmp(c->messages[u].role, "system")) u++;
    if (c->n_messages != u + 2 || strcmp(c->messages[u].role, "user") || strcmp(c->messages[u + 1].role, "assistant") ||
        c->messages[u + 1].tool_calls_json)
        return -1;
    return (long)u;
}

static size_t code_points(const char *s) {
    size_t n = 0;
    for (; s && *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

/* A shaped example's conversation no longer is its row's instruction and input: scoring reads the conversation. */
static void forget_instruction(hone_example *ex) {
    free(ex->instruction);
    free(ex->input);
    ex->instruction = ex->input = NULL;
}

/* The answer becomes the instruction's input, and the instruction the answer to train on. */
static hone_status invert(hone_example *ex, size_t u) {
    forget_instruction(ex);
    hone_message *user = &ex->conversation.messages[u], *answer = user + 1;
    const char *a = answer->content ? answer->content : "";
    const size_t len = strlen(HONE_INVERSION_PROMPT_HEAD) + strlen(a) + strlen(HONE_INVERSION_PROMPT_TAIL) + 1;
    char *prompt = malloc(len);
    if (!prompt) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    snprintf(prompt, len, "%s%s%s", HONE_INVERSION_PROMPT_HEAD, a, HONE_INVERSION_PROMPT_TAIL);
    free(answer->content);
    answer->content = user->content;
    user->content = prompt;
    return HONE_OK;
}

/* Prepends exemplars (single-turn examples, their user message at ex_u[i]) as untrained turns after the system
 * messages of ex. */
static hone_status prepend_exemplars(hone_example *ex, size_t u, const hone_example *const *exemplars,
                                     const long *ex_u, size_t m) {
    hone_conversation *c = &ex->conversation;
    forget_instruction(ex);
    const size_t n = c->n_messages + 2 * m;
    hone_message *messages = calloc(n, sizeof *messages);
    if (!messages) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    int failed = 0;
    memcpy(messages, c->messages, u * sizeof *messages); /* the system messages move */
    for (size_t i = 0; i < m; i++)
        for (size_t t = 0; t < 2; t++) {
            hone_message *d = &messages[u + 2 * i + t];
            copy_message(d, &exemplars[i]->conversation.messages[(size_t)ex_u[i] + t], &failed);
            d->weight = 0;
        }
    memcpy(messages + u + 2 * m, c->messages + u, 2 * sizeof *messages); /* so do the user and assistant turns */
    free(c->messages);
    c->messages = messages;
    c->n_messages = n;
    return failed ? hone_errorf(HONE_ERR_NOMEM, "out of memory") : HONE_OK;
}

/* Draws exemplars for the example at mixture position pos (all[self], single-turn, user message at u) from its
 * dataset's pool and prepends them; *taken receives how many. */
static hone_status few_shot(hone_example *ex, size_t u, size_t self, const hone_example *all, const size_t *pool,
                            size_t pool_n, const hone_mixture_options *o, hone_rng *rng, size_t *taken) {
    const hone_example *chosen[MAX_EXEMPLARS];
    long chosen_u[MAX_EXEMPLARS];
    size_t chosen_at[MAX_EXEMPLARS], m = 0;
    int64_t room = o->few_shot_max_chars;
    const size_t want = (size_t)o->few_shot_max_exemplars;
    for (size_t attempt = 0; pool_n && attempt < 4 * want && m < want; attempt++) {
        const size_t j = pool[hone_rng_u64(rng) % pool_n];
        int seen = j == self;
        for (size_t i = 0; i < m; i++) seen |= chosen_at[i] == j;
        const long ju = seen ? -1 : single_turn(&all[j]);
        if (ju < 0) continue;
        const hone_message *q = &all[j].conversation.messages[ju];
        const int64_t cost = (int64_t)(code_points(q[0].content) + code_points(q[1].content));
        if (cost > room) continue;
        room -= cost;
        chosen[m] = &all[j];
        chosen_u[m] = ju;
        chosen_at[m++] = j;
    }
    *taken = m;
    return m ? prepend_exemplars(ex, u, chosen, chosen_u, m) : HONE_OK;
}

/* ---- building ---- */

static hone_status check_options(const hone_mixture_options *o) {
    if (!o->n_sources) return hone_errorf(HONE_ERR_INVALID, "a mixture needs at least one dataset");
    if (o->size < 0) return hone_errorf(HONE_ERR_INVALID, "mixture_size must be >= 0, got %lld", (long long)o->size);
    if (!(o->inversion_rate >= 0 && o->inversion_rate <= 1) || !(o->few_shot_rate >= 0 && o->few_shot_rate <= 1))
        return hone_errorf(HONE_ERR_INVALID, "inversion_rate and few_shot_rate must be in [0, 1], got %g and %g",
                           o->inversion_rate, o->few_shot_rate);
    if (o->few_shot_max_exemplars < 1 || o->few_shot_max_exemplars > MAX_EXEMPLARS || o->few_shot_max_chars < 1)
        return hone_errorf(HONE_ERR_INVALID,
                           "few_shot_max_exemplars must be in 1..%d and few_shot_max_chars >= 1, got %d and %lld",
                           MAX_EXEMPLARS, o->few_shot_max_exemplars, (long long)o->few_shot_max_chars);
    for (size_t d = 0; d < o->n_sources; d++) {
        const hone_mixture_source *s = &o->sources[d];
        if (!s->path) return hone_errorf(HONE_ERR_INVALID, "dataset %zu of the mixture has no path", d + 1);
        if (!(s->weight >= 0 && isfinite(s->weight)) || s->max_samples < 0 || !(s->fraction >= 0 && s->fraction <= 1))
            return hone_errorf(HONE_ERR_INVALID,
                               "dataset %zu (%s): weight must be > 0, max_samples >= 1 and fraction in (0, 1]; got "
                               "weight %g, max_samples %lld, fraction %g",
                               d + 1, s->path, s->weight, (long long)s->max_samples, s->fraction);
        if (s->few_shot_rate > 1 || s->inversion_rate > 1)
            return hone_errorf(HONE_ERR_INVALID, "dataset %zu (%s): few_shot_rate and inversion_rate must be <= 1",
                               d + 1, s->path);
    }
    return HONE_OK;
}

static int index_cmp(const void *a, const void *b) {
    const size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x > y) - (x < y);
}

/* Working state of one build, freed together. */
typedef struct {
    hone_example *all; /* every example read, in list then file order */
    uint32_t *all_source;
    size_t n_all, cap_all;
    uint8_t *marks;
    size_t **pool; /* per dataset: its kept examples (indices into all), in permuted order; the first capped[d]
                      are its capped pool */
    size_t *pool_n, *capped, *count;
    size_t *picked; /* per mixture example: its index into all */
} build_state;

static void build_state_free(build_state *b, size_t n_sources) {
    for (size_t i = 0; i < b->n_all; i++) hone_example_free(&b->all[i]);
    free(b->all);
    free(b->all_source);
    free(b->marks);
    for (size_t d = 0; b->pool && d < n_sources; d++) free(b->pool[d]);
    free(b->pool);
    free(b->pool_n);
    free(b->capped);
    free(b->count);
    free(b->picked);
}

/* Step 1: every dataset's examples appended to b->all. */
static hone_status read_sources(const hone_mixture_options *o, build_state *b, hone_mixture *out) {
    for (size_t d = 0; d < o->n_sources; d++) {
        hone_dataset ds;
        HONE_TRY(hone_dataset_load(&ds, o->sources[d].path, &o->sources[d].options));
        out->reports[d].stats = ds.stats;
        if (b->n_all + ds.n_examples > b->cap_all) {
            const size_t cap = 2 * (b->n_all + ds.n_examples);
            hone_example *all = realloc(b->all, cap * sizeof *all);
            uint32_t *src = all ? realloc(b->all_source, cap * sizeof *src) : NULL;
            if (all) b->all = all;
            if (src) b->all_source = src;
            if (!all || !src) {
                hone_dataset_free(&ds);
                return hone_errorf(HONE_ERR_NOMEM, "out of memory for %zu examples", cap);
            }
            b->cap_all = cap;
        }
        memcpy(b->all + b->n_all, ds.examples, ds.n_examples * sizeof *ds.examples);
        for (size_t i = 0; i < ds.n_examples; i++) b->all_source[b->n_all + i] = (uint32_t)d;
        b->n_all += ds.n_examples;
        free(ds.examples); /* the examples' contents now belong to b->all */
    }
    return HONE_OK;
}

/* Steps 2 and 3: duplicates marked and counted, each dataset's kept examples permuted, caps. */
static hone_status make_pools(const hone_mixture_options *o, build_state *b, hone_mixture *out) {
    const size_t ns = o->n_sources;
    b->marks = malloc(b->n_all ? b->n_all : 1);
    b->pool = calloc(ns, sizeof *b->pool);
    b->pool_n = calloc(ns, sizeof *b->pool_n);
    b->capped = calloc(ns, sizeof *b->capped);
    b->count = calloc(ns, sizeof *b->count);
    if (!b->marks || !b->pool || !b->pool_n || !b->capped || !b->count)
        return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    hone_minhash_params mh = o->minhash;
    mh.seed = o->seed;
    HONE_TRY(hone_dedup_mark(b->all, b->n_all, o->dedup, &mh, b->marks));
    for (size_t i = 0; i < b->n_all; i++) {
        hone_mixture_report *r = &out->reports[b->all_source[i]];
        r->exact_duplicates += b->marks[i] == HONE_DUP_EXACT;
        r->near_duplicates += b->marks[i] == HONE_DUP_NEAR;
        r->unique += b->marks[i] == HONE_DUP_KEPT;
    }
    for (size_t d = 0; d < ns; d++)
        if (!(b->pool[d] = malloc((out->reports[d].unique + 1) * sizeof *b->pool[d])))
            return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < b->n_all; i++)
        if (b->marks[i] == HONE_DUP_KEPT) b->pool[b->all_source[i]][b->pool_n[b->all_source[i]]++] = i;
    for (size_t d = 0; d < ns; d++) {
        const hone_mixture_source *s = &o->sources[d];
        size_t *p = b->pool[d], n = b->pool_n[d];
        hone_rng rng = hone_rng_new(o->seed, STREAM_SUBSET | d);
        for (size_t i = n; i > 1; i--) { /* Fisher-Yates */
            const size_t j = hone_rng_u64(&rng) % i, t = p[i - 1];
            p[i - 1] = p[j];
            p[j] = t;
        }
        size_t c = n;
        if (s->max_samples > 0 && (uint64_t)s->max_samples < c) c = (size_t)s->max_samples;
        const size_t of_fraction = (size_t)llround(s->fraction * (double)n);
        if (s->fraction > 0 && of_fraction < c) c = of_fraction;
        b->capped[d] = out->reports[d].capped = c;
    }
    return HONE_OK;
}

/* Step 4: how many examples each dataset contributes. */
static hone_status shares(const hone_mixture_options *o, build_state *b, hone_mixture *out) {
    const size_t ns = o->n_sources;
    out->weighted = o->size > 0;
    for (size_t d = 0; d < ns; d++) out->weighted |= o->sources[d].weight > 0;
    if (!out->weighted) {
        memcpy(b->count, b->capped, ns * sizeof *b->count);
        return HONE_OK;
    }
    double total_weight = 0;
    for (size_t d = 0; d < ns; d++) total_weight += o->sources[d].weight > 0 ? o->sources[d].weight : 1;
    double size = (double)o->size;
    if (!o->size) {
        size = INFINITY; /* the largest mixture no dataset runs out of */
        for (size_t d = 0; d < ns; d++) {
            const double w = o->sources[d].weight > 0 ? o->sources[d].weight : 1;
            const double most = floor((double)b->capped[d] * total_weight / w + 1e-9);
            if (most < size) size = most;
        }
    }
    for (size_t d = 0; d < ns; d++) {
        const hone_mixture_source *s = &o->sources[d];
        const double w = s->weight > 0 ? s->weight : 1;
        size_t n = (size_t)floor(w / total_weight * size + 0.5);
        if (!o->size && n > b->capped[d]) n = b->capped[d]; /* rounding up past the cap by a hair */
        if (n > b->capped[d] && (!o->with_replacement || !b->capped[d]))
            return hone_errorf(HONE_ERR_INVALID,
                               "dataset %zu (%s) holds %zu examples after dedup and caps, fewer than its share %zu of "
                               "a mixture of %lld: lower mixture_size%s",
                               d + 1, s->path, b->capped[d], n, (long long)o->size,
                               b->capped[d] ? ", or set mixture_with_replacement to draw with replacement" : "");
        b->count[d] = n;
        out->reports[d].weight = w;
    }
    return HONE_OK;
}

/* Step 5: the selected examples, copied into the mixture, dataset by dataset, each in file order. */
static hone_status select_examples(const hone_mixture_options *o, build_state *b, hone_mixture *out) {
    size_t total = 0;
    for (size_t d = 0; d < o->n_sources; d++) total += b->count[d];
    out->examples = calloc(total ? total : 1, sizeof *out->examples);
    out->source = malloc((total ? total : 1) * sizeof *out->source);
    b->picked = malloc((total ? total : 1) * sizeof *b->picked);
    if (!out->examples || !out->source || !b->picked) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    for (size_t d = 0; d < o->n_sources; d++) {
        size_t *picked = b->picked + out->n;
        const size_t n = b->count[d], c = b->capped[d];
        if (n <= c) {
            memcpy(picked, b->pool[d], n * sizeof *picked);
        } else {
            hone_rng rng = hone_rng_new(o->seed, STREAM_DRAW | d);
            for (size_t i = 0; i < n; i++) picked[i] = b->pool[d][hone_rng_u64(&rng) % c];
        }
        qsort(picked, n, sizeof *picked, index_cmp);
        for (size_t i = 0; i < n; i++) {
            HONE_TRY(copy_example(&out->examples[out->n], &b->all[picked[i]]));
            out->source[out->n++] = (uint32_t)d;
        }
        out->reports[d].selected = n;
    }
    for (size_t d = 0; d < o->n_sources; d++)
        out->reports[d].share = out->n ? (double)out->reports[d].selected / (double)out->n : 0;
    return HONE_OK;
}

/* Step 6: inversion and few-shot exemplars. */
static hone_status shape(const hone_mixture_options *o, build_state *b, hone_mixture *out) {
    for (size_t pos = 0; pos < out->n; pos++) {
        const size_t d = out->source[pos];
        const hone_mixture_source *s = &o->sources[d];
        const double inversion = s->inversion_rate >= 0 ? s->inversion_rate : o->inversion_rate;
        const double few = s->few_shot_rate >= 0 ? s->few_shot_rate : o->few_shot_rate;
        hone_example *ex = &out->examples[pos];
        const long u = single_turn(ex);
        if ((inversion <= 0 && few <= 0) || u < 0) continue;
        hone_rng rng = hone_rng_new(o->seed, STREAM_SHAPE | pos);
        hone_mixture_report *r = &out->reports[d];
        if (hone_rng_uniform(&rng) < inversion) {
            HONE_TRY(invert(ex, (size_t)u));
            r->inverted++;
        } else if (hone_rng_uniform(&rng) < few) {
            size_t taken;
            HONE_TRY(few_shot(ex, (size_t)u, b->picked[pos], b->all, b->pool[d], b->capped[d], o, &rng, &taken));
            r->few_shot += taken > 0;
            r->exemplars += taken;
        }
    }
    return HONE_OK;
}

hone_status hone_mixture_build(hone_mixture *out, const hone_mixture_options *o) {
    memset(out, 0, sizeof *out);
    HONE_TRY(check_options(o));
    if (!(out->reports = calloc(o->n_sources, sizeof *out->reports)))
        return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    out->n_sources = o->n_sources;
    for (size_t d = 0; d < o->n_sources; d++) out->reports[d].path = o->sources[d].path;
    build_state b = {0};
    hone_status st = read_sources(o, &b, out);
    if (st == HONE_OK) st = make_pools(o, &b, out);
    if (st == HONE_OK) st = shares(o, &b, out);
    if (st == HONE_OK) st = select_examples(o, &b, out);
    if (st == HONE_OK) st = shape(o, &b, out);
    build_state_free(&b, o->n_sources);
    if (st != HONE_OK) {
        hone_mixture_free(out);
        return st;
    }
    for (size_t i = 0; i < out->n; i++) {
        const hone_conversation *c = &out->examples[i].conversation;
        if (out->examples[i].kind != HONE_EXAMPLE_SFT) continue;
        size_t turns = 0;
        for (size_t k = 0; k < c->n_messages; k++) turns += !strcmp(c->messages[k].role, "assistant");
        out->conversations++;
        out->messages += c->n_messages;
        out->assistant_turns += turns;
        if (turns > out->max_assistant_turns) out->max_assistant_turns = turns;
    }
    return HONE_OK;
}

void hone_mixture_free(hone_mixture *m) {
    for (size_t i = 0; m->examples && i < m->n; i++) hone_example_free(&m->examples[i]);
    free(m->examples);
    free(m->source);
    free(m->reports);
    memset(m, 0, sizeof *m);
}

hone_status hone_mixture_render(const hone_mixture *m, const hone_render_options *ro, hone_rendered_set *set) {
    hone_sequence *grown = realloc(set->seqs, (set->n + m->n + 1) * sizeof *grown);
    if (!grown) return hone_errorf(HONE_ERR_NOMEM, "out of memory for %zu rendered examples", set->n + m->n);
    set->seqs = grown;
    for (size_t d = 0; d < m->n_sources; d++) {
        const hone_dataset_stats *st = &m->reports[d].stats;
        set->stats.rows += st->rows;
        set->stats.examples += st->examples;
        set->stats.dropped += st->dropped;
        for (int r = 0; r < HONE_DROP_COUNT; r++) set->stats.dropped_by[r] += st->dropped_by[r];
    }
    for (size_t i = 0; i < m->n; i++) {
        hone_sequence *seq = &set->seqs[set->n];
        const hone_status st = hone_render_example(&m->examples[i], ro, seq);
        if (st != HONE_OK) return hone_error_context(st, "%s", m->reports[m->source[i]].path);
        set->n++;
        for (int k = 0; k < 3; k++) set->flagged[k] += (seq->flags >> k) & 1;
        set->tokens += seq->n;
        set->trained_tokens += seq->n_trained;
    }
    return HONE_OK;
}

char *hone_mixture_reports_to_json(const hone_mixture *m) {
    json_t *array = json_array();
    for (size_t d = 0; array && d < m->n_sources; d++) {
        const hone_mixture_report *r = &m->reports[d];
        json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:I, s:I, s:I}", "path",
                              r->path, "format", hone_dataset_format_name(r->stats.format), "rows",
                              (json_int_t)r->stats.rows, "examples", (json_int_t)r->stats.examples, "dropped",
                              (json_int_t)r->stats.dropped, "exact_duplicates", (json_int_t)r->exact_duplicates,
                              "near_duplicates", (json_int_t)r->near_duplicates, "unique", (json_int_t)r->unique,
                              "capped", (json_int_t)r->capped, "selected", (json_int_t)r->selected, "weight",
                              r->weight, "share", r->share, "few_shot", (json_int_t)r->few_shot, "exemplars",
                              (json_int_t)r->exemplars, "inverted", (json_int_t)r->inverted);
        if (!o || json_array_append_new(array, o) != 0) {
            json_decref(array);
            array = NULL;
        }
    }
    char *text = array ? json_dumps(array, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(array);
    return text;
}
