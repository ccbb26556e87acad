/* Star-Agents over a seed file (hone_star_run in hone/star_agents.h): teachers rewrite and answer, the student and
 * the large model score, a judge compares, p evolves; one log line per seed, resumable. */
#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hone/star_agents.h"

/* Our own prompts (the paper publishes none). The rewriter keeps the task so that the seed's answer stays a fair
 * reference for the judge. */
static const char REWRITE_PROMPT[] =
    "Rewrite the instruction below into a better one for training an AI assistant: clearer, more specific and, "
    "where it helps, more demanding in reasoning or detail. Keep its task, its facts and what a correct answer "
    "must contain. Reply with the new instruction only, as\n[New Instruction] ... [End]\n\n[Instruction]\n%s\n[End]";
static const char JUDGE_PROMPT[] =
    "You judge training data for an AI assistant. Below are two examples, each an instruction and a response. Decide "
    "which one is the better training example: the instruction is clear and sensible, and the response follows it "
    "correctly, helpfully and completely. Ignore length for its own sake and the order of the examples. Explain "
    "briefly, then give your verdict as [[A]] if example A is better, [[B]] if example B is better, or [[C]] for a "
    "tie.\n\n[Example A: instruction]\n%s\n[Example A: response]\n%s\n\n[Example B: instruction]\n%s\n"
    "[Example B: response]\n%s";

typedef struct {
    size_t pair;
    const char *source; /* base | memory | drawn */
    char *instruction, *response, *error;
    const char *verdicts[2]; /* candidate as A, then as B: "better", "worse", "tie", "unparsed", "failed" */
    hone_star_candidate s;
} cand;

typedef struct {
    const hone_star_options *o;
    size_t n_pairs;
    double *p;
    size_t *winner_of; /* per seed */
    size_t cap;
    float *unit; /* [n_embedded, hidden] unit-length prompt embeddings (l > 0) */
    size_t n_embedded, dim;
    FILE *log;
    hone_star_summary *sum;
    hone_star_progress progress;
    void *user;
    double t0;
} run_state;

static char *dup_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *dup_printf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    const int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (!s) return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* A copy of text[0..n) without leading and trailing white space. */
static char *trimmed(const char *text, size_t n) {
    while (n && isspace((unsigned char)*text)) text++, n--;
    while (n && isspace((unsigned char)text[n - 1])) n--;
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, text, n);
        s[n] = 0;
    }
    return s;
}

/* The rewriter's instruction: between [New Instruction] and [End] when it uses them, else the whole reply. */
static char *parse_rewrite(const char *reply) {
    const char *open = strstr(reply, "[New Instruction]");
    if (!open) return trimmed(reply, strlen(reply));
    open += strlen("[New Instruction]");
    const char *end = strstr(open, "[End]");
    return trimmed(open, end ? (size_t)(end - open) : strlen(open));
}

/* The last verdict mark of a judge reply: 'A', 'B', 'C', or 0 when there is none. */
static char parse_verdict(const char *reply) {
    char verdict = 0;
    for (const char *at = reply; (at = strstr(at, "[[")) != NULL; at += 2)
        if ((at[2] == 'A' || at[2] == 'B' || at[2] == 'C') && at[3] == ']' && at[4] == ']') verdict = at[2];
    return verdict;
}

/* ---- one seed ---------------------------------------------------------------------------------------------- */

static void cands_free(cand *c, size_t n) {
    for (size_t i = 0; i < n; i++) {
        free(c[i].instruction);
        free(c[i].response);
        free(c[i].error);
    }
}

/* Sends one user message to each of n teachers' batches grouped by teacher: texts[i] to teachers[i]; replies[i]
 * receives the reply (NULL on failure, with errors[i] set). */
static hone_status ask(run_state *rs, hone_teacher *const *teachers, char *const *texts, size_t n, char **replies,
                       char **errors) {
    for (size_t i = 0; i < n; i++) replies[i] = errors[i] = NULL;
    hone_message *turns = calloc(n + 1, sizeof *turns);
    hone_conversation *reqs = calloc(n + 1, sizeof *reqs);
    size_t *which = calloc(n + 1, sizeof *which);
    unsigned char *sent = calloc(n + 1, 1);
    hone_teacher_reply *out = calloc(n + 1, sizeof *out);
    hone_status st = turns && reqs && which && sent && out ? HONE_OK : hone_errorf(HONE_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n && st == HONE_OK; i++) {
        if (sent[i] || !texts[i]) continue;
        size_t b = 0; /* one batch per teacher: an endpoint runs its requests concurrently */
        for (size_t k = i; k < n; k++)
            if (!sent[k] && texts[k] && teachers[k] == teachers[i]) {
                turns[b] = (hone_message){.role = "user", .content = texts[k], .weight = -1};
                reqs[b] = (hone_conversation){.messages = &turns[b], .n_messages = 1};
                which[b++] = k;
                sent[k] = 1;
            }
        st = hone_teacher_chat_batch(teachers[i], reqs, b, NULL, NULL, out);
        for (size_t r = 0; r < b && st == HONE_OK; r++) {
            const size_t k = which[r];
            if (out[r].status == HONE_OK) {
                replies[k] = out[r].text;
                out[r].text = NULL;
            } else {
                errors[k] = dup_printf("%s: %s", hone_teacher_describe(teachers[i]), out[r].error);
                rs->sum->failed_requests++;
            }
        }
        if (st == HONE_OK) hone_teacher_replies_free(out, b);
    }
    free(turns);
    free(reqs);
    free(which);
    free(sent);
    free(out);
    return st;
}

/* The first of candidates 0..i with candidate i's rewriter: it asks for the rewrite the others share. */
static size_t rewrite_asker(const cand *c, size_t i, size_t n_responders) {
    size_t f = 0;
    while (c[f].pair / n_responders != c[i].pair / n_responders) f++;
    return f;
}

/* Rewrites (once per rewriter) and answers (once per pair): fills each candidate's instruction and response, or
 * its error. */
static hone_status generate(run_state *rs, const char *x, cand *c, size_t n) {
    const hone_star_options *o = rs->o;
    hone_teacher **teachers = calloc(n + 1, sizeof *teachers);
    char **texts = calloc(n + 1, sizeof *texts), **replies = calloc(n + 1, sizeof *replies);
    char **errors = calloc(n + 1, sizeof *errors), *prompt = dup_printf(REWRITE_PROMPT, x);
    hone_status st =
        teachers && texts && replies && errors && prompt ? HONE_OK : hone_errorf(HONE_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n && st == HONE_OK; i++) {
        teachers[i] = o->rewriters[c[i].pair / o->n_responders].teacher;
        texts[i] = rewrite_asker(c, i, o->n_responders) == i ? prompt : NULL;
    }
    if (st == HONE_OK) st = ask(rs, teachers, texts, n, replies, errors);
    for (size_t i = 0; i < n && st == HONE_OK; i++) {
        const size_t f = rewrite_asker(c, i, o->n_responders);
        if (!replies[f]) {
            c[i].error = strdup(errors[f]);
            continue;
        }
        c[i].instruction = parse_rewrite(replies[f]);
        if (!c[i].instruction)
            st = hone_errorf(HONE_ERR_NOMEM, "out of memory");
        else if (!*c[i].instruction)
            c[i].error = strdup("the rewriter's reply holds no instruction");
    }
    for (size_t i = 0; i < n; i++) {
        free(replies[i]);
        free(errors[i]);
    }
    /* answers: each responder answers the rewrites of its pairs */
    for (size_t i = 0; i < n && st == HONE_OK; i++) {
        teachers[i] = o->responders[c[i].pair % o->n_responders].teacher;
        texts[i] = c[i].error ? NULL : c[i].instruction;
    }
    if (st == HONE_OK) st = ask(rs, teachers, texts, n, replies, errors);
    for (size_t i = 0; i < n && st == HONE_OK; i++) {
        if (c[i].error) continue;
        c[i].response = replies[i];
        c[i].error = errors[i];
        replies[i] = errors[i] = NULL;
    }
    for (size_t i = 0; i < n; i++) {
        free(replies[i]);
        free(errors[i]);
    }
    free(prompt);
    free(teachers);
    free(texts);
    free(replies);
    free(errors);
    return st;
}

/* π_llm of every candidate with a response: the rule judges compare with the seed's answer; a teacher judge is
 * asked with the candidate as A, then as B (position bias cancels: only a preference both times counts). */
static hone_status judge(run_state *rs, const char *x, const char *y, cand *c, size_t n) {
    const hone_star_options *o = rs->o;
    if (o->judge_kind != HONE_STAR_JUDGE_TEACHER) {
        char *ref = trimmed(y, strlen(y));
        if (!ref) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < n; i++) {
            if (!c[i].response) continue;
            char *got = trimmed(c[i].response, strlen(c[i].response));
            if (!got) {
                free(ref);
                return hone_errorf(HONE_ERR_NOMEM, "out of memory");
            }
            const int right = o->judge_kind == HONE_STAR_JUDGE_EQUALS ? !strcmp(got, ref) : strstr(got, ref) != NULL;
            c[i].s.judge = right;
            c[i].verdicts[0] = right ? "right" : "wrong";
            free(got);
        }
        free(ref);
        return HONE_OK;
    }
    hone_teacher **teachers = calloc(2 * n + 1, sizeof *teachers);
    char **texts = calloc(2 * n + 1, sizeof *texts), **replies = calloc(2 * n + 1, sizeof *replies);
    char **errors = calloc(2 * n + 1, sizeof *errors);
    hone_status st = teachers && texts && replies && errors ? HONE_OK : hone_errorf(HONE_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n && st == HONE_OK; i++) {
        if (!c[i].response) continue;
        teachers[2 * i] = teachers[2 * i + 1] = o->judge->teacher;
        texts[2 * i] = dup_printf(JUDGE_PROMPT, c[i].instruction, c[i].response, x, y);
        texts[2 * i + 1] = dup_printf(JUDGE_PROMPT, x, y, c[i].instruction, c[i].response);
        if (!texts[2 * i] || !texts[2 * i + 1]) st = hone_errorf(HONE_ERR_NOMEM, "out of memory");
    }
    if (st == HONE_OK) st = ask(rs, teachers, texts, 2 * n, replies, errors);
    for (size_t i = 0; i < n && st == HONE_OK; i++) {
        if (!c[i].response) continue;
        int better = 0, worse = 0;
        for (int order = 0; order < 2; order++) {
            const char *reply = replies[2 * i + order];
            const char v = reply ? parse_verdict(reply) : 0, mine = order ? 'B' : 'A', theirs = order ? 'A' : 'B';
            c[i].verdicts[order] = !reply        ? "failed"
                                   : v == mine   ? "better"
                                   : v == theirs ? "worse"
                                   : v           ? "tie"
                                                 : "unparsed";
            rs->sum->unparsed_verdicts += reply && !v;
            better += v == mine;
            worse += v == theirs;
        }
        c[i].s.judge = better == 2 ? 1 : worse == 2 ? 0 : 0.5;
        if (!replies[2 * i] || !replies[2 * i + 1]) { /* unjudged: it cannot win, and the log says why */
            c[i].s.judge = 0;
            c[i].error = strdup(errors[replies[2 * i] ? 2 * i + 1 : 2 * i]);
        }
    }
    for (size_t i = 0; i < 2 * n; i++) {
        free(texts[i]);
        free(replies[i]);
        free(errors[i]);
    }
    free(teachers);
    free(texts);
    free(replies);
    free(errors);
    return st;
}

/* IFD of every candidate with a response under one model; NaN for the rest. */
static hone_status candidate_ifds(hone_model *m, const hone_ifd_options *io, int32_t start_id, const run_state *rs,
                                  const hone_example *seed, cand *c, size_t n, int large) {
    hone_ifd_tokens *toks = calloc(n + 1, sizeof *toks);
    hone_ifd_input *in = calloc(n + 1, sizeof *in);
    hone_ifd_score *sc = calloc(n + 1, sizeof *sc);
    size_t *which = calloc(n + 1, sizeof *which), k = 0;
    hone_status st = toks && in && sc && which ? HONE_OK : hone_errorf(HONE_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n && st == HONE_OK; i++) {
        *(large ? &c[i].s.ifd_large : &c[i].s.ifd_small) = NAN;
        if (!c[i].response) continue;
        hone_message turns[2] = {{.role = "user", .content = c[i].instruction, .weight = -1},
                                 {.role = "assistant", .content = c[i].response, .weight = -1}};
        hone_example ex = {.kind = HONE_EXAMPLE_SFT,
                           .line = seed->line,
                           .index = seed->index,
                           .instruction = c[i].instruction,
                           .input = "",
                           .conversation = {turns, 2, NULL}};
        st = hone_ifd_tokenize(&ex, io, 0, &toks[k]);
        in[k] = (hone_ifd_input){toks[k].prompt, toks[k].answer, toks[k].n_prompt, toks[k].n_answer};
        which[k++] = i;
    }
    if (st == HONE_OK && k) st = hone_score_ifd(m, in, k, rs->o->sequence_len, rs->o->micro_batch_size, start_id, sc);
    for (size_t j = 0; j < k && st == HONE_OK; j++)
        *(large ? &c[which[j]].s.ifd_large : &c[which[j]].s.ifd_small) = sc[j].ifd;
    for (size_t j = 0; j < k; j++) hone_ifd_tokens_free(&toks[j]);
    free(toks);
    free(in);
    free(sc);
    free(which);
    return st;
}

/* ---- the log ------------------------------------------------------------------------------------------------ */

static json_t *number(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static char *pair_name(const hone_star_options *o, size_t pair) {
    return dup_printf("%s/%s", o->rewriters[pair / o->n_responders].name, o->responders[pair % o->n_responders].name);
}

/* Appends one JSON line and syncs it: a kill loses at most the seed being worked on. */
static hone_status append_line(run_state *rs, json_t *line) {
    char *text = line ? json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17)) : NULL;
    json_decref(line);
    if (!text) return hone_errorf(HONE_ERR_NOMEM, "out of memory writing %s", rs->o->log_path);
    const int ok =
        fputs(text, rs->log) >= 0 && fputc('\n', rs->log) != EOF && fflush(rs->log) == 0 && fsync(fileno(rs->log)) == 0;
    free(text);
    return ok ? HONE_OK : hone_errorf(HONE_ERR_IO, "%s: cannot write", rs->o->log_path);
}

static hone_status log_seed(run_state *rs, const hone_example *ex, size_t i, const char *x, const char *y,
                            const cand *c, size_t n, size_t kept) {
    const hone_star_options *o = rs->o;
    json_t *line =
        json_pack("{s:I, s:s, s:s, s:s}", "seed", (json_int_t)i, "instruction", ex->instruction ? ex->instruction : x,
                  "input", ex->instruction ? ex->input : "", "output", y);
    json_t *list = json_array(), *p = json_array();
    int bad = !line || !list || !p;
    for (size_t k = 0; k < n && !bad; k++) {
        char *name = pair_name(o, c[k].pair);
        json_t *v = json_pack("{s:s?, s:I, s:s, s:s, s:s, s:s?, s:s?, s:s?}", "pair", name, "pair_index",
                              (json_int_t)c[k].pair, "rewriter", o->rewriters[c[k].pair / o->n_responders].name,
                              "responder", o->responders[c[k].pair % o->n_responders].name, "source", c[k].source,
                              "instruction", c[k].instruction, "response", c[k].response, "error", c[k].error);
        free(name);
        json_t *verdicts = json_array();
        for (int order = 0; order < 2 && verdicts; order++)
            if (c[k].verdicts[order]) json_array_append_new(verdicts, json_string(c[k].verdicts[order]));
        bad = !v || !verdicts || json_object_set_new(v, "ifd_small", number(c[k].s.ifd_small)) ||
              json_object_set_new(v, "ifd_large", number(c[k].s.ifd_large)) ||
              json_object_set_new(v, "gap", number(c[k].s.gap)) ||
              json_object_set_new(v, "pi_dual", number(c[k].s.dual)) || json_object_set_new(v, "verdicts", verdicts) ||
              json_object_set_new(v, "pi_llm", c[k].response ? json_real(c[k].s.judge) : json_null()) ||
              json_object_set_new(v, "pi", number(c[k].s.score)) || json_array_append_new(list, v);
    }
    for (size_t k = 0; k < rs->n_pairs && !bad; k++) bad = json_array_append_new(p, json_real(rs->p[k]));
    char *name = kept != HONE_STAR_KEEP_SEED ? pair_name(o, c[kept].pair) : NULL;
    if (!bad)
        bad = json_object_set_new(line, "candidates", list) ||
              json_object_set_new(line, "kept",
                                  kept != HONE_STAR_KEEP_SEED ? json_integer((json_int_t)kept) : json_null()) ||
              json_object_set_new(line, "kept_pair", name ? json_string(name) : json_null()) ||
              json_object_set_new(line, "kept_pair_index",
                                  kept != HONE_STAR_KEEP_SEED ? json_integer((json_int_t)c[kept].pair) : json_null()) ||
              json_object_set_new(line, "pi", kept != HONE_STAR_KEEP_SEED ? json_real(c[kept].s.score) : json_null()) ||
              json_object_set_new(line, "p", p);
    else {
        json_decref(list);
        json_decref(p);
    }
    free(name);
    if (bad) {
        json_decref(line);
        return hone_errorf(HONE_ERR_NOMEM, "out of memory writing %s", o->log_path);
    }
    return append_line(rs, line);
}

/* ---- seeds -------------------------------------------------------------------------------------------------- */

static hone_status run_seed(run_state *rs, const hone_example *ex, size_t i) {
    const hone_star_options *o = rs->o;
    const hone_message *user = hone_conversation_last(&ex->conversation, "user");
    const hone_message *answer = hone_conversation_last(&ex->conversation, "assistant");
    if (ex->kind != HONE_EXAMPLE_SFT || !user || !answer)
        return hone_errorf(HONE_ERR_FORMAT,
                           "%s:%zu: a seed must be an instruction with its answer (the judge's "
                           "reference)",
                           o->data_path, ex->line);
    if (o->l && i >= rs->n_embedded)
        return hone_errorf(HONE_ERR_INVALID, "%s changed while it was read: seed %zu has no embedding", o->data_path,
                           i);
    if (i >= rs->cap) {
        const size_t cap = rs->cap ? 2 * rs->cap : 256;
        size_t *grown = realloc(rs->winner_of, cap * sizeof *grown);
        if (!grown) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
        rs->winner_of = grown;
        rs->cap = cap;
    }
    char *x = ex->instruction
                  ? (*ex->input ? dup_printf("%s\n%s", ex->instruction, ex->input) : strdup(ex->instruction))
                  : strdup(user->content ? user->content : "");
    const char *y = answer->content ? answer->content : "";
    unsigned char *taken = calloc(rs->n_pairs, 1);
    size_t *pairs = calloc(rs->n_pairs, sizeof *pairs);
    cand *c = calloc(rs->n_pairs, sizeof *c);
    hone_star_candidate *s = calloc(rs->n_pairs, sizeof *s);
    hone_status st = x && taken && pairs && c && s ? HONE_OK : hone_errorf(HONE_ERR_NOMEM, "out of memory");
    size_t n = 0;
    for (size_t b = 0; b < o->n_base && st == HONE_OK; b++)
        if (!taken[o->base_pairs[b]]) {
            taken[o->base_pairs[b]] = 1;
            c[n++] = (cand){.pair = o->base_pairs[b], .source = "base"};
        }
    if (st == HONE_OK && o->l) {
        const size_t k = hone_star_memory_pairs(rs->unit, rs->dim, i, rs->winner_of, o->l, taken, pairs);
        for (size_t j = 0; j < k; j++) c[n++] = (cand){.pair = pairs[j], .source = "memory"};
    }
    if (st == HONE_OK) {
        const size_t k = hone_star_draw(rs->p, rs->n_pairs, o->m, o->seed, i, taken, pairs);
        for (size_t j = 0; j < k; j++) c[n++] = (cand){.pair = pairs[j], .source = "drawn"};
    }
    if (st == HONE_OK) st = generate(rs, x, c, n);
    if (st == HONE_OK) st = judge(rs, x, y, c, n);
    if (st == HONE_OK) st = candidate_ifds(o->small, &o->ifd_small, o->start_small, rs, ex, c, n, 0);
    if (st == HONE_OK) st = candidate_ifds(o->large, &o->ifd_large, o->start_large, rs, ex, c, n, 1);
    size_t kept = HONE_STAR_KEEP_SEED;
    if (st == HONE_OK) {
        for (size_t k = 0; k < n; k++) s[k] = c[k].s;
        kept = hone_star_score(s, n);
        for (size_t k = 0; k < n; k++) c[k].s = s[k];
        if (kept != HONE_STAR_KEEP_SEED) hone_star_update(rs->p, rs->n_pairs, c[kept].pair, o->beta, c[kept].s.score);
        rs->winner_of[i] = kept != HONE_STAR_KEEP_SEED ? c[kept].pair : HONE_STAR_KEEP_SEED;
        rs->sum->improved += kept != HONE_STAR_KEEP_SEED;
        st = log_seed(rs, ex, i, x, y, c, n, kept);
    }
    if (c) cands_free(c, n);
    free(c);
    free(s);
    free(x);
    free(taken);
    free(pairs);
    return st;
}

static hone_status take_seed(hone_example *ex, void *ctx) {
    run_state *rs = ctx;
    const size_t i = rs->sum->seeds++;
    if (i < rs->sum->resumed) return HONE_OK;
    HONE_TRY(run_seed(rs, ex, i));
    rs->sum->done++;
    rs->sum->seconds = hone_now_seconds() - rs->t0;
    if (rs->progress) rs->progress(rs->sum, rs->p, rs->n_pairs, rs->user);
    return HONE_OK;
}

/* ---- settings, resuming, the kept data ---------------------------------------------------------------------- */

static json_t *hash_json(const void *data, size_t n) {
    uint64_t h[2];
    char hex[33];
    hone_hash128(data, n, 0, h);
    hone_hash128_hex(h, hex);
    return json_string(hex);
}

/* What the log was written with: equal settings, equal decisions. */
static hone_status settings_json(const run_state *rs, json_t **out) {
    const hone_star_options *o = rs->o;
    hone_mapped_file f;
    HONE_TRY(hone_file_map(&f, o->data_path));
    json_t *s = json_object(), *pairs = json_array(), *agents = json_object(), *base = json_array();
    int bad = !s || !pairs || !agents || !base;
    for (size_t k = 0; k < rs->n_pairs && !bad; k++) {
        char *name = pair_name(o, k);
        bad = !name || json_array_append_new(pairs, json_string(name));
        free(name);
    }
    for (size_t k = 0; k < o->n_rewriters + o->n_responders && !bad; k++) {
        const hone_star_agent *a = k < o->n_rewriters ? &o->rewriters[k] : &o->responders[k - o->n_rewriters];
        bad = json_object_set_new(agents, a->name, json_string(hone_teacher_describe(a->teacher)));
    }
    for (size_t b = 0; b < o->n_base && !bad; b++)
        bad = json_array_append_new(base, json_integer((json_int_t)o->base_pairs[b]));
    static const char *const judges[] = {NULL, "contains", "equals"};
    const char *judge =
        o->judge_kind == HONE_STAR_JUDGE_TEACHER ? hone_teacher_describe(o->judge->teacher) : judges[o->judge_kind];
    static const char *const styles[] = {"alpaca", "vicuna", "plain", "chat"};
    if (!bad)
        bad = json_object_set_new(s, "pairs", pairs) || json_object_set_new(s, "agents", agents) ||
              json_object_set_new(s, "base_pairs", base) || json_object_set_new(s, "judge", json_string(judge)) ||
              json_object_set_new(s, "beta", json_real(o->beta)) ||
              json_object_set_new(s, "m", json_integer((json_int_t)o->m)) ||
              json_object_set_new(s, "l", json_integer((json_int_t)o->l)) ||
              json_object_set_new(s, "seed", json_integer((json_int_t)o->seed)) ||
              json_object_set_new(s, "data_hash", hash_json(f.data, f.size)) ||
              json_object_set_new(
                  s, "small_hash",
                  hash_json(hone_model_params(o->small), hone_model_num_params(o->small) * sizeof(float))) ||
              json_object_set_new(
                  s, "large_hash",
                  hash_json(hone_model_params(o->large), hone_model_num_params(o->large) * sizeof(float))) ||
              json_object_set_new(s, "prompt_template", json_string(styles[o->ifd_small.style])) ||
              json_object_set_new(s, "sequence_len", json_integer(o->sequence_len));
    hone_file_unmap(&f);
    *out = bad ? NULL : json_pack("{s:o}", "star_agents", s);
    if (bad) {
        json_decref(s);
        return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    }
    return *out ? HONE_OK : hone_errorf(HONE_ERR_NOMEM, "out of memory");
}

/* Reads back an earlier run's log: its settings must be these, its seed lines 0, 1, ... in order; p and the
 * winners come back from them; a partial last line (a kill while writing) is cut off. A new log gets the settings
 * line. */
static hone_status resume(run_state *rs, json_t *settings) {
    const char *path = rs->o->log_path;
    if (!hone_file_exists(path)) {
        rs->log = fopen(path, "w");
        if (!rs->log) return hone_errorf(HONE_ERR_IO, "%s: cannot create", path);
        return append_line(rs, json_incref(settings));
    }
    char *text;
    size_t size, end = 0, seeds = 0;
    HONE_TRY(hone_file_read(path, &text, &size));
    hone_status st = HONE_OK;
    for (size_t at = 0, line = 1; at < size && st == HONE_OK; line++) {
        const char *nl = memchr(text + at, '\n', size - at);
        if (!nl) break; /* the partial last line */
        json_t *row = json_loadb(text + at, (size_t)(nl - text) - at, 0, NULL), *p = json_object_get(row, "p");
        if (line == 1 && !json_equal(row, settings))
            st = hone_errorf(HONE_ERR_INVALID,
                             "%s was written with other settings (agents, judge, beta, m, l, seed, "
                             "data or models: see its first line): give another --star-log or "
                             "delete it",
                             path);
        else if (line > 1 && (json_integer_value(json_object_get(row, "seed")) != (json_int_t)seeds ||
                              json_array_size(p) != rs->n_pairs))
            st = hone_errorf(HONE_ERR_FORMAT,
                             "%s:%zu: expected the line of seed %zu with %zu probabilities; the file "
                             "was changed",
                             path, line, seeds, rs->n_pairs);
        else if (line > 1) {
            if (seeds >= rs->cap) {
                const size_t cap = rs->cap ? 2 * rs->cap : 256;
                size_t *grown = realloc(rs->winner_of, cap * sizeof *grown);
                if (!grown)
                    st = hone_errorf(HONE_ERR_NOMEM, "out of memory");
                else
                    rs->winner_of = grown, rs->cap = cap;
            }
            const json_t *w = json_object_get(row, "kept_pair_index");
            if (st == HONE_OK)
                rs->winner_of[seeds++] = json_is_integer(w) ? (size_t)json_integer_value(w) : HONE_STAR_KEEP_SEED;
            for (size_t k = 0; k < rs->n_pairs && st == HONE_OK; k++) rs->p[k] = json_real_value(json_array_get(p, k));
            rs->sum->improved += json_is_integer(w);
        }
        json_decref(row);
        at = (size_t)(nl - text) + 1;
        end = at;
    }
    free(text);
    if (st == HONE_OK && end == 0)
        st = hone_errorf(HONE_ERR_FORMAT,
                         "%s has no settings line: it was not written by "
                         "hone select; give another --star-log or delete it",
                         path);
    if (st == HONE_OK && end < size && truncate(path, (off_t)end) != 0)
        st = hone_errorf(HONE_ERR_IO, "%s: cannot cut the partial last line", path);
    HONE_TRY(st);
    rs->sum->resumed = seeds;
    rs->log = fopen(path, "a");
    return rs->log ? HONE_OK : hone_errorf(HONE_ERR_IO, "%s: cannot open for writing", path);
}

/* The kept data from the log: every seed's kept instruction and answer. */
static hone_status write_kept(const hone_star_options *o) {
    char *text;
    size_t size;
    HONE_TRY(hone_file_read(o->log_path, &text, &size));
    hone_atomic_file af;
    hone_status st = hone_atomic_open(&af, o->output_path);
    const char *at = strchr(text, '\n'); /* after the settings line */
    while (st == HONE_OK && at && *++at) {
        const char *nl = strchr(at, '\n');
        json_t *row = json_loadb(at, nl ? (size_t)(nl - at) : strlen(at), 0, NULL), *out = NULL;
        const json_t *kept = json_object_get(row, "kept");
        const json_t *c = json_array_get(json_object_get(row, "candidates"), (size_t)json_integer_value(kept));
        if (json_is_integer(kept))
            out = json_pack("{s:O, s:s, s:O, s:O, s:O, s:O}", "instruction", json_object_get(c, "instruction"), "input",
                            "", "output", json_object_get(c, "response"), "seed", json_object_get(row, "seed"), "pair",
                            json_object_get(row, "kept_pair"), "pi", json_object_get(row, "pi"));
        else
            out = json_pack("{s:O, s:O, s:O, s:O, s:n, s:n}", "instruction", json_object_get(row, "instruction"),
                            "input", json_object_get(row, "input"), "output", json_object_get(row, "output"), "seed",
                            json_object_get(row, "seed"), "pair", "pi");
        char *line = out ? json_dumps(out, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17)) : NULL;
        st = line ? hone_atomic_write(&af, line, strlen(line))
                  : hone_errorf(HONE_ERR_FORMAT,
                                "%s: a seed line is "
                                "damaged",
                                o->log_path);
        if (st == HONE_OK) st = hone_atomic_write(&af, "\n", 1);
        free(line);
        json_decref(out);
        json_decref(row);
        at = nl;
    }
    free(text);
    if (st == HONE_OK) return hone_atomic_commit(&af);
    hone_atomic_abort(&af);
    return st;
}

hone_status hone_star_run(const hone_star_options *o, hone_star_progress progress, void *user, hone_star_summary *out) {
    memset(out, 0, sizeof *out);
    const size_t n_pairs = o->n_rewriters * o->n_responders;
    if (!n_pairs) return hone_errorf(HONE_ERR_INVALID, "Star-Agents needs at least one rewriter and one responder");
    if (!(o->beta >= 0) || !isfinite(o->beta))
        return hone_errorf(HONE_ERR_INVALID, "star_beta must be a finite number >= 0 (got %g)", o->beta);
    if (o->m + o->n_base + o->l == 0)
        return hone_errorf(HONE_ERR_INVALID, "Star-Agents would try no pair: give star_pairs_per_seed (m) > 0 or "
                                             "star_base_pairs");
    for (size_t b = 0; b < o->n_base; b++)
        if (o->base_pairs[b] >= n_pairs)
            return hone_errorf(HONE_ERR_INVALID, "base pair %zu is not one of the %zu pairs", o->base_pairs[b],
                               n_pairs);
    if (o->judge_kind == HONE_STAR_JUDGE_TEACHER && (!o->judge || !o->judge->teacher))
        return hone_errorf(HONE_ERR_INVALID, "the Star-Agents judge is a teacher, but none was given");
    run_state rs = {.o = o,
                    .n_pairs = n_pairs,
                    .sum = out,
                    .progress = progress,
                    .user = user,
                    .t0 = hone_now_seconds(),
                    .p = malloc(n_pairs * sizeof(double))};
    if (!rs.p) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    hone_star_init(rs.p, n_pairs);
    json_t *settings = NULL;
    hone_status st = settings_json(&rs, &settings);
    if (st == HONE_OK && o->l) {
        /* the memory bank compares seeds by the student's embedding of their prompts */
        const hone_score_file_options so = {.data_path = o->data_path,
                                            .dataset = o->dataset,
                                            .ifd = o->ifd_small,
                                            .sequence_len = o->sequence_len,
                                            .micro_batch_size = o->micro_batch_size};
        rs.dim = (size_t)hone_model_get_config(o->small)->hidden_size;
        st = hone_embed_file_prompts(o->small, &so, &rs.unit, &rs.n_embedded);
        if (st == HONE_OK) hone_star_normalize(rs.unit, rs.n_embedded, rs.dim);
    }
    if (st == HONE_OK) st = resume(&rs, settings);
    json_decref(settings);
    if (st == HONE_OK) st = hone_dataset_read(o->data_path, o->dataset, take_seed, &rs, NULL);
    if (rs.log && fclose(rs.log) != 0 && st == HONE_OK) st = hone_errorf(HONE_ERR_IO, "%s: cannot write", o->log_path);
    if (st == HONE_OK && out->resumed > out->seeds)
        st = hone_errorf(HONE_ERR_FORMAT, "%s holds %zu seeds but %s has only %zu", o->log_path, out->resumed,
                         o->data_path, out->seeds);
    if (st == HONE_OK) st = write_kept(o);
    out->seconds = hone_now_seconds() - rs.t0;
    free(rs.p);
    free(rs.winner_of);
    free(rs.unit);
    return st;
}
