/* Selective Reflection-Tuning over a dataset file: teacher requests (journaled, so a killed run resumes), marker
 * extraction, the student's IFD / r-IFD of the four versions of every example, the rule, and the output files. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hone/teacher.h"
#include "select_internal.h"

/* The teacher requests of one example: both reflections of the original, then the response reflection of Q. */
typedef enum { REQ_INSTRUCTION = 0, REQ_RESPONSE, REQ_RESPONSE_Q, REQ_KINDS } request_kind;
static const char *const REQUEST_NAMES[REQ_KINDS] = {"instruction", "response", "response_q"};

typedef struct {
    const hone_example *ex;
    char *text[HONE_REFLECT_VERSIONS][2]; /* instruction and answer of each version; NULL when missing */
    char *why_missing[HONE_REFLECT_VERSIONS];
    char *reply[REQ_KINDS];  /* the teacher's replies */
    char *error[REQ_KINDS];  /* or why the teacher failed */
    char key[REQ_KINDS][33]; /* hash of teacher + request */
} item;

typedef struct {
    FILE *journal;
    const char *journal_path;
    item *items;
    const size_t *index; /* batch position → example */
    request_kind kind;
    hone_reflect_summary *sum;
} batch_ctx;

static char *dup_or_null(const char *s, size_t n) {
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = 0;
    }
    return p;
}

/* The text between the last `marker` of reply and the next "[End]" (or the end of the reply), trimmed; NULL when
 * there is no marker or nothing after it. The last one, because teachers restate the format before answering. */
static char *extract(const char *reply, const char *marker) {
    const char *at = NULL;
    for (const char *p = reply; (p = strstr(p, marker)); p++) at = p;
    if (!at) return NULL;
    at += strlen(marker);
    const char *end = strstr(at, "[End]");
    if (!end) end = at + strlen(at);
    while (at < end && strchr(" \t\r\n", *at)) at++;
    while (end > at && strchr(" \t\r\n", end[-1])) end--;
    return end > at ? dup_or_null(at, (size_t)(end - at)) : NULL;
}

/* template with {instruction} and {answer} replaced (malloc'd). */
static char *fill(const char *template, const char *instruction, const char *answer) {
    size_t cap = strlen(template) + 1, len = 0;
    for (const char *p = template; (p = strchr(p, '{')); p++)
        cap += strlen(instruction) + strlen(answer); /* enough for any placeholder at any brace */
    char *out = malloc(cap);
    if (!out) return NULL;
    for (const char *p = template; *p;) {
        const char *value = !strncmp(p, "{instruction}", 13) ? instruction : !strncmp(p, "{answer}", 8) ? answer : NULL;
        if (value) {
            strcpy(out + len, value);
            len += strlen(value);
            p += value == instruction ? 13 : 8;
        } else {
            out[len++] = *p++;
        }
    }
    out[len] = 0;
    return out;
}

static void request_key(const hone_teacher *t, const char *prompt, char hex[33]) {
    const char *who = hone_teacher_describe(t);
    uint64_t a[2], h[2];
    hone_hash128(who, strlen(who), 0, a);
    hone_hash128(prompt, strlen(prompt), a[0] ^ a[1], h);
    hone_hash128_hex(h, hex);
}

/* ---- the journal: one {"index", "request", "key", "reply"} line per teacher reply ---- */

/* Reads the replies of an earlier run into journal[kind][index] (the last line of each wins); a torn last line
 * (a kill during a write) is cut off so that appending goes on from a whole line. */
static hone_status journal_load(const char *path, size_t n, char *(*replies)[REQ_KINDS],
                                char (*keys)[REQ_KINDS][33]) {
    if (!hone_file_exists(path)) return HONE_OK;
    char *data;
    size_t size, pos = 0, line_no = 0, good_end = 0;
    HONE_TRY(hone_file_read(path, &data, &size));
    hone_status st = HONE_OK;
    while (st == HONE_OK && pos < size) {
        const char *nl = memchr(data + pos, '\n', size - pos);
        const size_t end = nl ? (size_t)(nl - data) : size;
        line_no++;
        json_t *row = json_loadb(data + pos, end - pos, 0, NULL);
        const json_t *index = json_object_get(row, "index");
        const char *kind = json_string_value(json_object_get(row, "request"));
        const char *key = json_string_value(json_object_get(row, "key"));
        const char *reply = json_string_value(json_object_get(row, "reply"));
        int k = 0;
        while (k < REQ_KINDS && kind && strcmp(kind, REQUEST_NAMES[k])) k++;
        if (!nl) {
            json_decref(row);
            break; /* torn by a kill (every line is written with its newline): asked again */
        }
        if (!json_is_integer(index) || json_integer_value(index) < 0 || (size_t)json_integer_value(index) >= n ||
            k == REQ_KINDS || !key || strlen(key) != 32 || !reply) {
            st = hone_errorf(HONE_ERR_FORMAT,
                             "%s:%zu: not a reflection journal line for this data (expected {\"index\" < %zu, "
                             "\"request\", \"key\", \"reply\"}): delete the journal to start over",
                             path, line_no, n);
        } else {
            const size_t i = (size_t)json_integer_value(index);
            char *copy = strdup(reply);
            if (!copy) st = hone_errorf(HONE_ERR_NOMEM, "out of memory");
            free(replies[i][k]);
            replies[i][k] = copy;
            memcpy(keys[i][k], key, 33);
            good_end = end + 1;
        }
        json_decref(row);
        pos = end + 1;
    }
    free(data);
    if (st == HONE_OK && good_end < size && truncate(path, (off_t)good_end) != 0)
        st = hone_errorf(HONE_ERR_IO, "%s: cannot cut its torn last line: check permissions", path);
    return st;
}

static int journal_reply(size_t b, const hone_teacher_reply *reply, void *user) {
    batch_ctx *c = user;
    item *it = &c->items[c->index[b]];
    if (reply->status != HONE_OK) {
        c->sum->failed++;
        hone_warn("example %zu: the teacher's %s reflection failed: %s", c->index[b], REQUEST_NAMES[c->kind],
                  reply->error ? reply->error : "out of memory");
        return 0;
    }
    json_t *row = json_pack("{s:I, s:s, s:s, s:s}", "index", (json_int_t)c->index[b], "request",
                            REQUEST_NAMES[c->kind], "key", it->key[c->kind], "reply", reply->text);
    char *line = row ? json_dumps(row, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(row);
    int bad = !line || fprintf(c->journal, "%s\n", line) < 0 || fflush(c->journal) != 0;
    free(line);
    if (bad) return hone_errorf(HONE_ERR_IO, "%s: cannot append a teacher reply (disk full?)", c->journal_path);
    it->reply[c->kind] = strdup(reply->text);
    return it->reply[c->kind] ? 0 : hone_errorf(HONE_ERR_NOMEM, "out of memory");
}

/* Asks the teacher request `kind` of every example whose version `from` exists and that has no journaled reply
 * with the same key. */
static hone_status ask(const hone_reflect_options *o, item *items, size_t n, request_kind kind,
                       hone_reflect_version from, char *(*journal)[REQ_KINDS], char (*keys)[REQ_KINDS][33],
                       FILE *jf, hone_reflect_summary *sum) {
    const char *template = kind == REQ_INSTRUCTION ? o->instruction_prompt : o->response_prompt;
    size_t *index = malloc(sizeof *index * (n ? n : 1));
    hone_conversation *reqs = calloc(n ? n : 1, sizeof *reqs);
    hone_message *msgs = calloc(n ? n : 1, sizeof *msgs);
    hone_status st = index && reqs && msgs ? HONE_OK : hone_errorf(HONE_ERR_NOMEM, "out of memory");
    size_t m = 0;
    for (size_t i = 0; st == HONE_OK && i < n; i++) {
        item *it = &items[i];
        if (!it->text[from][0]) continue;
        char *prompt = fill(template, it->text[from][0], it->text[from][1]);
        if (!prompt) {
            st = hone_errorf(HONE_ERR_NOMEM, "out of memory");
            break;
        }
        request_key(o->teacher, prompt, it->key[kind]);
        sum->requests++;
        if (journal[i][kind] && !strcmp(keys[i][kind], it->key[kind])) {
            it->reply[kind] = journal[i][kind];
            journal[i][kind] = NULL;
            sum->resumed++;
            free(prompt);
            continue;
        }
        msgs[m] = (hone_message){.role = "user", .content = prompt, .weight = -1};
        reqs[m] = (hone_conversation){.messages = &msgs[m], .n_messages = 1};
        index[m++] = i;
    }
    if (st == HONE_OK && m > 0) {
        hone_info("asking the teacher (%s) for %zu %s reflections", hone_teacher_describe(o->teacher), m,
                  REQUEST_NAMES[kind]);
        hone_teacher_reply *replies = calloc(m, sizeof *replies);
        batch_ctx ctx = {jf, o->journal_path, items, index, kind, sum};
        st = replies ? hone_teacher_chat_batch(o->teacher, reqs, m, journal_reply, &ctx, replies)
                     : hone_errorf(HONE_ERR_NOMEM, "out of memory");
        for (size_t b = 0; replies && b < m; b++) {
            items[index[b]].error[kind] = replies[b].error;
            replies[b].error = NULL;
        }
        if (replies) hone_teacher_replies_free(replies, m);
        free(replies);
    }
    for (size_t b = 0; msgs && b < m; b++) free(msgs[b].content);
    free(index);
    free(reqs);
    free(msgs);
    return st;
}

/* Fills version `v` from reply `kind` (markers: Q = new instruction + new answer; A, QA = better answer), or says
 * why it is missing. */
static hone_status parse_version(item *it, hone_reflect_version v, request_kind kind, const char *instruction) {
    const char *reply = it->reply[kind];
    char *ins = NULL, *ans = NULL;
    int len;
    if (!reply) {
        len = asprintf(&it->why_missing[v], "teacher failed: %s", it->error[kind] ? it->error[kind] : "no reply");
    } else {
        ins = v == HONE_REFLECT_Q ? extract(reply, "[New Instruction]") : strdup(instruction);
        ans = extract(reply, v == HONE_REFLECT_Q ? "[New Answer]" : "[Better Answer]");
        if (ins && ans) {
            it->text[v][0] = ins;
            it->text[v][1] = ans;
            return HONE_OK;
        }
        free(ins);
        free(ans);
        len = asprintf(&it->why_missing[v], "no %s in the teacher's reply",
                       v == HONE_REFLECT_Q ? "[New Instruction]…[End] and [New Answer]…[End]"
                                           : "[Better Answer]…[End]");
    }
    if (len < 0) {
        it->why_missing[v] = NULL;
        return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    }
    return HONE_OK;
}

/* The example as version v: the last user turn (and an alpaca row's instruction, its input folded in) replaced by
 * the version's instruction, the last assistant turn by its answer. Borrows everything; free *msgs. */
static hone_status version_example(const item *it, hone_reflect_version v, hone_example *out, hone_message **msgs) {
    const hone_example *ex = it->ex;
    *out = *ex;
    *msgs = NULL;
    if (v == HONE_REFLECT_ORIG) return HONE_OK;
    const hone_conversation *c = &ex->conversation;
    if (!(*msgs = malloc(sizeof **msgs * c->n_messages))) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    memcpy(*msgs, c->messages, sizeof **msgs * c->n_messages);
    out->conversation.messages = *msgs;
    hone_message *user = hone_conversation_last(&out->conversation, "user");
    hone_message *answer = hone_conversation_last(&out->conversation, "assistant");
    answer->content = it->text[v][1];
    if (v == HONE_REFLECT_Q || v == HONE_REFLECT_QA) {
        user->content = it->text[v][0];
        if (ex->instruction) {
            out->instruction = it->text[v][0];
            out->input = "";
        }
    }
    return HONE_OK;
}

/* IFD and r-IFD of every present version, in one batched pass each. */
static hone_status score_versions(hone_model *m, const hone_reflect_options *o, item *items, size_t n,
                                  hone_reflect_scores *scores) {
    const size_t cap = n * HONE_REFLECT_VERSIONS;
    hone_ifd_tokens *tokens = calloc(2 * (cap ? cap : 1), sizeof *tokens);
    hone_ifd_input *in = calloc(2 * (cap ? cap : 1), sizeof *in);
    hone_ifd_score *sc = calloc(2 * (cap ? cap : 1), sizeof *sc);
    size_t *slot = malloc(sizeof *slot * (cap ? cap : 1)); /* which (example, version) each input is */
    hone_status st = tokens && in && sc && slot ? HONE_OK : hone_errorf(HONE_ERR_NOMEM, "out of memory");
    size_t k = 0;
    for (size_t i = 0; st == HONE_OK && i < n; i++)
        for (int v = 0; v < HONE_REFLECT_VERSIONS; v++) {
            scores[i].ifd[v] = scores[i].rifd[v] = NAN;
            if (!items[i].text[v][1]) continue;
            hone_example ex;
            hone_message *msgs;
            st = version_example(&items[i], (hone_reflect_version)v, &ex, &msgs);
            for (int r = 0; st == HONE_OK && r < 2; r++) {
                st = hone_ifd_tokenize(&ex, &o->ifd, r, &tokens[r * cap + k]);
                const hone_ifd_tokens *t = &tokens[r * cap + k];
                in[r * cap + k] = (hone_ifd_input){t->prompt, t->answer, t->n_prompt, t->n_answer};
            }
            free(msgs);
            slot[k++] = i * HONE_REFLECT_VERSIONS + (size_t)v;
        }
    for (int r = 0; st == HONE_OK && k > 0 && r < 2; r++)
        st = hone_score_ifd(m, in + r * cap, k, o->sequence_len, o->micro_batch_size, o->start_id, sc + r * cap);
    for (size_t j = 0; st == HONE_OK && j < k; j++) {
        scores[slot[j] / HONE_REFLECT_VERSIONS].ifd[slot[j] % HONE_REFLECT_VERSIONS] = sc[j].ifd;
        scores[slot[j] / HONE_REFLECT_VERSIONS].rifd[slot[j] % HONE_REFLECT_VERSIONS] = sc[cap + j].ifd;
    }
    for (size_t j = 0; tokens && j < 2 * cap; j++) hone_ifd_tokens_free(&tokens[j]);
    free(tokens);
    free(in);
    free(sc);
    free(slot);
    return st;
}

static json_t *number(double v) {
    return isfinite(v) ? json_real(v) : json_null();
}

static hone_status write_line(hone_atomic_file *af, json_t *row) {
    char *line = row ? json_dumps(row, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9)) : NULL;
    json_decref(row);
    if (!line) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    hone_status st = hone_atomic_write(af, line, strlen(line));
    if (st == HONE_OK) st = hone_atomic_write(af, "\n", 1);
    free(line);
    return st;
}

/* The kept example (its row as hone select writes examples, with index, version and scores) and the decision. */
static hone_status write_outputs(const hone_reflect_options *o, const item *items, size_t n,
                                 const hone_reflect_scores *scores, const hone_reflect_decision *d) {
    hone_atomic_file out, dec;
    HONE_TRY(hone_atomic_open(&out, o->output_path));
    hone_status st = hone_atomic_open(&dec, o->decisions_path);
    if (st != HONE_OK) {
        hone_atomic_abort(&out);
        return st;
    }
    for (size_t i = 0; st == HONE_OK && i < n; i++) {
        const item *it = &items[i];
        const hone_reflect_version v = d[i].version;
        if (d[i].reason == HONE_REFLECT_KEPT) {
            hone_example ex;
            hone_message *msgs;
            st = version_example(it, v, &ex, &msgs);
            json_t *body = st == HONE_OK ? select_example_row(&ex) : NULL;
            free(msgs);
            json_t *row = json_pack("{s:I, s:s}", "index", (json_int_t)it->ex->index, "version",
                                    hone_reflect_version_name(v));
            if (st == HONE_OK && (!row || !body || json_object_update(row, body) ||
                                  json_object_set_new(row, "ifd", number(scores[i].ifd[v])) ||
                                  json_object_set_new(row, "rifd", number(scores[i].rifd[v]))))
                st = hone_errorf(HONE_ERR_NOMEM, "out of memory");
            json_decref(body);
            if (st == HONE_OK) st = write_line(&out, row);
            else json_decref(row);
        }
        json_t *sc = json_object(), *missing = json_object(), *versions = json_object();
        for (int w = 0; w < HONE_REFLECT_VERSIONS; w++) {
            const char *name = hone_reflect_version_name((hone_reflect_version)w);
            json_object_set_new(sc, name, json_pack("{s:o, s:o}", "ifd", number(scores[i].ifd[w]), "rifd",
                                                    number(scores[i].rifd[w])));
            if (it->why_missing[w]) json_object_set_new(missing, name, json_string(it->why_missing[w]));
            if (it->text[w][1])
                json_object_set_new(versions, name, json_pack("{s:s, s:s}", "instruction", it->text[w][0], "output",
                                                              it->text[w][1]));
        }
        json_t *row = json_pack("{s:I, s:b, s:s, s:s, s:s, s:o, s:o, s:o}", "index", (json_int_t)it->ex->index,
                                "selected", d[i].reason == HONE_REFLECT_KEPT, "version",
                                hone_reflect_version_name(v), "reason", hone_reflect_reason_name(d[i].reason),
                                "instruction_from", hone_reflect_version_name(d[i].instruction_from), "scores", sc,
                                "missing", missing, "versions", versions);
        if (st == HONE_OK) st = write_line(&dec, row);
        else json_decref(row);
    }
    if (st == HONE_OK) st = hone_atomic_commit(&out);
    else hone_atomic_abort(&out);
    if (st == HONE_OK) st = hone_atomic_commit(&dec);
    else hone_atomic_abort(&dec);
    return st;
}

static hone_status check_prompt(const char *template, const char *which) {
    if (!strstr(template, "{instruction}") || !strstr(template, "{answer}"))
        return hone_errorf(HONE_ERR_INVALID, "the %s reflection prompt must contain {instruction} and {answer} (where "
                                             "the example's instruction and answer go)",
                           which);
    return HONE_OK;
}

/* The instruction X of an example as one text: an alpaca row's instruction and input joined by "\n", else the last
 * user turn. */
static char *instruction_text(const hone_example *ex) {
    if (!ex->instruction) {
        const hone_message *user = hone_conversation_last(&ex->conversation, "user");
        return strdup(user && user->content ? user->content : "");
    }
    char *x;
    if (!*ex->input) return strdup(ex->instruction);
    return asprintf(&x, "%s\n%s", ex->instruction, ex->input) < 0 ? NULL : x;
}

hone_status hone_reflect_file(hone_model *student, const hone_reflect_options *o, hone_reflect_summary *out) {
    memset(out, 0, sizeof *out);
    const double t0 = hone_now_seconds();
    hone_reflect_options opt = *o;
    if (!opt.instruction_prompt) opt.instruction_prompt = hone_reflect_default_prompt(0);
    if (!opt.response_prompt) opt.response_prompt = hone_reflect_default_prompt(1);
    HONE_TRY(check_prompt(opt.instruction_prompt, "instruction"));
    HONE_TRY(check_prompt(opt.response_prompt, "response"));
    if (!opt.teacher || !opt.output_path || !opt.decisions_path || !opt.journal_path)
        return hone_errorf(HONE_ERR_INVALID, "reflection needs a teacher, an output, a decisions and a journal path");
    hone_dataset ds;
    HONE_TRY(hone_dataset_load(&ds, opt.data_path, opt.dataset));
    const size_t n = ds.n_examples;
    item *items = calloc(n ? n : 1, sizeof *items);
    char *(*journal)[REQ_KINDS] = calloc(n ? n : 1, sizeof *journal);
    char(*keys)[REQ_KINDS][33] = calloc(n ? n : 1, sizeof *keys);
    hone_reflect_scores *scores = calloc(n ? n : 1, sizeof *scores);
    hone_reflect_decision *d = calloc(n ? n : 1, sizeof *d);
    FILE *jf = NULL;
    hone_status st = items && journal && keys && scores && d ? HONE_OK : hone_errorf(HONE_ERR_NOMEM, "out of memory");
    for (size_t i = 0; st == HONE_OK && i < n; i++) {
        const hone_example *ex = &ds.examples[i];
        const hone_message *answer = hone_conversation_last(&ex->conversation, "assistant");
        if (ex->kind != HONE_EXAMPLE_SFT || !hone_conversation_last(&ex->conversation, "user") || !answer) {
            st = hone_errorf(HONE_ERR_UNSUPPORTED,
                             "%s:%zu: reflection needs instruction / answer examples (a user turn and an assistant "
                             "answer), not a %s row",
                             opt.data_path, ex->line, hone_example_kind_name(ex->kind));
            break;
        }
        items[i].ex = ex;
        items[i].text[HONE_REFLECT_ORIG][0] = instruction_text(ex);
        items[i].text[HONE_REFLECT_ORIG][1] = strdup(answer->content ? answer->content : "");
        if (!items[i].text[HONE_REFLECT_ORIG][0] || !items[i].text[HONE_REFLECT_ORIG][1])
            st = hone_errorf(HONE_ERR_NOMEM, "out of memory");
    }
    if (st == HONE_OK) st = journal_load(opt.journal_path, n, journal, keys);
    if (st == HONE_OK && !(jf = fopen(opt.journal_path, "a")))
        st = hone_errorf(HONE_ERR_IO, "%s: cannot open the teacher journal for appending: check the folder",
                         opt.journal_path);
    /* Both reflections of the original, then the response reflection of the reflected instruction. */
    if (st == HONE_OK) st = ask(&opt, items, n, REQ_INSTRUCTION, HONE_REFLECT_ORIG, journal, keys, jf, out);
    if (st == HONE_OK) st = ask(&opt, items, n, REQ_RESPONSE, HONE_REFLECT_ORIG, journal, keys, jf, out);
    for (size_t i = 0; st == HONE_OK && i < n; i++) {
        st = parse_version(&items[i], HONE_REFLECT_Q, REQ_INSTRUCTION, NULL);
        if (st == HONE_OK)
            st = parse_version(&items[i], HONE_REFLECT_A, REQ_RESPONSE, items[i].text[HONE_REFLECT_ORIG][0]);
    }
    if (st == HONE_OK) st = ask(&opt, items, n, REQ_RESPONSE_Q, HONE_REFLECT_Q, journal, keys, jf, out);
    for (size_t i = 0; st == HONE_OK && i < n; i++) {
        if (items[i].text[HONE_REFLECT_Q][0])
            st = parse_version(&items[i], HONE_REFLECT_QA, REQ_RESPONSE_Q, items[i].text[HONE_REFLECT_Q][0]);
        else if (!(items[i].why_missing[HONE_REFLECT_QA] = strdup("Q is missing")))
            st = hone_errorf(HONE_ERR_NOMEM, "out of memory");
    }
    if (jf && fclose(jf) != 0 && st == HONE_OK) st = hone_errorf(HONE_ERR_IO, "%s: cannot close", opt.journal_path);
    if (st == HONE_OK) st = score_versions(student, &opt, items, n, scores);
    for (size_t i = 0; st == HONE_OK && i < n; i++) {
        d[i] = hone_reflect_decide(&scores[i], opt.max_ifd, opt.max_rifd);
        out->by_reason[d[i].reason]++;
        if (d[i].reason == HONE_REFLECT_KEPT) out->kept[d[i].version]++;
        for (int v = 0; v < HONE_REFLECT_VERSIONS; v++) {
            out->missing[v] += items[i].why_missing[v] != NULL;
            out->no_markers += items[i].why_missing[v] && !strncmp(items[i].why_missing[v], "no ", 3);
        }
    }
    if (st == HONE_OK) st = write_outputs(&opt, items, n, scores, d);
    for (size_t i = 0; items && i < n; i++) {
        for (int v = 0; v < HONE_REFLECT_VERSIONS; v++) {
            free(items[i].text[v][0]);
            free(items[i].text[v][1]);
            free(items[i].why_missing[v]);
        }
        for (int k = 0; k < REQ_KINDS; k++) {
            free(items[i].reply[k]);
            free(items[i].error[k]);
            if (journal) free(journal[i][k]);
        }
    }
    out->examples = n;
    out->seconds = hone_now_seconds() - t0;
    free(items);
    free(journal);
    free(keys);
    free(scores);
    free(d);
    hone_dataset_free(&ds);
    return st;
}
