/* Preference pairs: a prompt conversation and two completions, chosen and rejected.
 *
 * chosen / rejected (field_chosen / field_rejected, else chosen_messages / rejected_messages) are both
 *   - message objects (sharegpt / messages ranking rows, LLaMA-Factory's dpo_en_demo): one assistant message
 *     each after the row's message list;
 *   - message lists: after an explicit prompt (a message list in field_prompt, or the row's message list), or
 *     whole conversations sharing their prompt (TRL's implicit prompt; a string prompt is then ignored, as TRL's
 *     maybe_extract_prompt does);
 *   - strings: hh-rlhf transcripts ("\n\nHuman: …\n\nAssistant: …", split into messages as TRL's
 *     hh-rlhf script does, then as lists), or completions of a string prompt, of the row's message list, of an
 *     alpaca prompt (instruction / input / system / history), or of the text they share (TRL's implicit prompt).
 * An implicit prompt is the longest common prefix (messages, or characters backed off before a space) as TRL's
 * extract_prompt computes it: when neither list differs within the shorter one, all but its last item. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset_internal.h"

int ds_is_transcript(const char *s) {
    size_t begin, end;
    ds_py_strip(s, strlen(s), &begin, &end);
    return !strncmp(s + begin, "Human:", 6);
}

/* TRL's extract_dialogue: the stripped text split at "\n\n"; a part starting with "Human:" or "Assistant:" opens a
 * user or assistant turn (the tag removed, the rest stripped), any other part continues the previous turn after
 * "\n\n" (stripped). */
static hone_status transcript(ds_row *r, const char *s, const char *field, ds_msgs *out) {
    size_t pos, end;
    ds_py_strip(s, strlen(s), &pos, &end);
    while (pos <= end) {
        const char *part = s + pos, *sep = memmem(part, end - pos, "\n\n", 2);
        const size_t len = sep ? (size_t)(sep - part) : end - pos;
        const char *role = !strncmp(part, "Human:", 6) ? "user" : !strncmp(part, "Assistant:", 10) ? "assistant" : NULL;
        const size_t tag = !role ? 0 : role[0] == 'u' ? 6 : 10;
        size_t b, e;
        ds_py_strip(part + tag, len - tag, &b, &e);
        if (role)
            HONE_TRY(ds_msgs_push(out, role, part + tag + b, e - b));
        else if (!out->n)
            return ds_error(r, HONE_ERR_FORMAT, "field \"%s\" is not a Human:/Assistant: transcript (hh-rlhf)", field);
        else {
            hone_message *last = &out->v[out->n - 1];
            size_t old = strlen(last->content);
            char *grown = realloc(last->content, old + 2 + (e - b) + 1);
            if (!grown) return hone_errorf(HONE_ERR_NOMEM, "out of memory for a transcript");
            memcpy(grown + old, "\n\n", 2);
            memcpy(grown + old + 2, part + tag + b, e - b);
            grown[old + 2 + (e - b)] = 0;
            last->content = grown;
        }
        pos += len + 2;
    }
    return HONE_OK;
}

static int str_eq(const char *a, const char *b) { return a == b || (a && b && !strcmp(a, b)); }

static int same_message(const hone_message *a, const hone_message *b) {
    return !strcmp(a->role, b->role) && !strcmp(a->content, b->content) && a->weight == b->weight &&
           str_eq(a->name, b->name) && str_eq(a->tool_calls_json, b->tool_calls_json) &&
           str_eq(a->tool_call_id, b->tool_call_id);
}

/* Moves messages [from, n) of src to the end of dst. */
static hone_status move_tail(ds_msgs *src, size_t from, ds_msgs *dst) {
    for (size_t i = from; i < src->n; i++) {
        HONE_TRY(ds_msgs_append(dst, src->v[i]));
        memset(&src->v[i], 0, sizeof src->v[i]);
    }
    src->n = from;
    return HONE_OK;
}

/* TRL's extract_prompt on two message lists: *p receives the shared prefix of full_c, ch and rj the rest. Takes
 * full_c and full_r. */
static hone_status split_lists(ds_msgs *full_c, ds_msgs *full_r, ds_msgs *p, ds_msgs *ch, ds_msgs *rj) {
    const size_t n = full_c->n < full_r->n ? full_c->n : full_r->n;
    size_t idx = 0;
    while (idx < n && same_message(&full_c->v[idx], &full_r->v[idx])) idx++;
    if (idx == n && n) idx = n - 1;
    hone_status st = move_tail(full_c, idx, ch);
    if (st == HONE_OK) st = move_tail(full_r, idx, rj);
    if (st == HONE_OK) st = move_tail(full_c, 0, p);
    ds_msgs_free(full_c);
    ds_msgs_free(full_r);
    return st;
}

/* TRL's extract_prompt on two strings, in characters (code points): the first difference, moved back over one
 * preceding space; when neither differs within the shorter one, its length minus one character. A first difference
 * at the very start gives an empty prompt (TRL would index character -1 there). */
static size_t split_strings(const char *c, const char *r) {
    const size_t nc = strlen(c), nr = strlen(r), n = nc < nr ? nc : nr;
    size_t d = 0;
    while (d < n && c[d] == r[d]) d++;
    if (d == n) {
        if (!n) return 0;
        d = n - 1;
        while (d && ((unsigned char)c[d] & 0xC0) == 0x80) d--;
        return d;
    }
    while (d && ((unsigned char)c[d] & 0xC0) == 0x80) d--;
    if (d && c[d - 1] == ' ') d--;
    return d;
}

/* chosen / rejected strings. */
static hone_status pair_strings(ds_row *r, const json_t *row, const json_t *cv, const json_t *rv, const char *ck,
                                const char *rk, ds_msgs *p, ds_msgs *ch, ds_msgs *rj, ds_verdict *v) {
    const ds_config *c = r->cfg;
    const char *cs = json_string_value(cv), *rs = json_string_value(rv), *msgs_name;
    const json_t *prompt = ds_get(row, c->prompt), *msgs = ds_row_messages(r, row, &msgs_name);
    if (ds_is_transcript(cs)) {
        ds_msgs full_c = {0}, full_r = {0};
        hone_status st = transcript(r, cs, ck, &full_c);
        if (st == HONE_OK) st = transcript(r, rs, rk, &full_r);
        if (st == HONE_OK && json_is_string(prompt) && ds_is_transcript(json_string_value(prompt))) {
            st = transcript(r, json_string_value(prompt), c->prompt, p);
            if (st == HONE_OK) st = move_tail(&full_c, 0, ch);
            if (st == HONE_OK) st = move_tail(&full_r, 0, rj);
        } else if (st == HONE_OK && json_is_array(prompt)) {
            st = ds_parse_messages(r, prompt, c->prompt, p, v);
            if (st == HONE_OK) st = move_tail(&full_c, 0, ch);
            if (st == HONE_OK) st = move_tail(&full_r, 0, rj);
        } else if (st == HONE_OK)
            return split_lists(&full_c, &full_r, p, ch, rj);
        ds_msgs_free(&full_c);
        ds_msgs_free(&full_r);
        return st;
    }
    if (json_is_string(prompt)) {
        const char *ps = json_string_value(prompt);
        if (*ps) HONE_TRY(ds_msgs_push(p, "user", ps, strlen(ps)));
    } else if (!prompt && json_is_array(msgs))
        HONE_TRY(ds_parse_messages(r, msgs, msgs_name, p, v));
    else if (!prompt && (ds_get(row, c->instruction) || ds_get(row, c->input)))
        HONE_TRY(ds_alpaca_prompt(r, row, p));
    else {
        const size_t d = split_strings(cs, rs);
        if (d) HONE_TRY(ds_msgs_push(p, "user", cs, d));
        cs += d;
        rs += d;
    }
    HONE_TRY(ds_msgs_push(ch, "assistant", cs, strlen(cs)));
    return ds_msgs_push(rj, "assistant", rs, strlen(rs));
}

/* chosen / rejected message lists. */
static hone_status pair_lists(ds_row *r, const json_t *row, const json_t *cv, const json_t *rv, const char *ck,
                              const char *rk, ds_msgs *p, ds_msgs *ch, ds_msgs *rj, ds_verdict *v) {
    const ds_config *c = r->cfg;
    const char *msgs_name;
    const json_t *prompt = ds_get(row, c->prompt), *msgs = ds_row_messages(r, row, &msgs_name);
    if (json_is_array(prompt) || (!prompt && json_is_array(msgs))) {
        HONE_TRY(json_is_array(prompt) ? ds_parse_messages(r, prompt, c->prompt, p, v)
                                       : ds_parse_messages(r, msgs, msgs_name, p, v));
        HONE_TRY(ds_parse_messages(r, cv, ck, ch, v));
        return ds_parse_messages(r, rv, rk, rj, v);
    }
    ds_msgs full_c = {0}, full_r = {0};
    hone_status st = ds_parse_messages(r, cv, ck, &full_c, v);
    if (st == HONE_OK) st = ds_parse_messages(r, rv, rk, &full_r, v);
    if (st == HONE_OK) return split_lists(&full_c, &full_r, p, ch, rj);
    ds_msgs_free(&full_c);
    ds_msgs_free(&full_r);
    return st;
}

/* chosen / rejected single messages after the row's message list (or a message-list prompt). */
static hone_status pair_objects(ds_row *r, const json_t *row, const json_t *cv, const json_t *rv, const char *ck,
                                const char *rk, ds_msgs *p, ds_msgs *ch, ds_msgs *rj, ds_verdict *v) {
    const char *msgs_name;
    const json_t *msgs = ds_row_messages(r, row, &msgs_name), *prompt = ds_get(row, r->cfg->prompt);
    if (!json_is_array(msgs) && json_is_array(prompt)) msgs = prompt, msgs_name = r->cfg->prompt;
    if (!msgs) return ds_error(r, HONE_ERR_FORMAT, "missing field \"%s\" (the prompt messages)", msgs_name);
    HONE_TRY(ds_parse_messages(r, msgs, msgs_name, p, v));
    HONE_TRY(ds_parse_message(r, cv, ck, ch, v));
    return ds_parse_message(r, rv, rk, rj, v);
}

/* A completion must start with an assistant turn and, after the prompt, make a conversation that passes the turn
 * checks. */
static hone_status check_completion(const ds_msgs *p, const ds_msgs *comp, const char *name, ds_verdict *v) {
    if (!comp->n || strcmp(comp->v[0].role, "assistant")) {
        ds_verdict_set(v, HONE_DROP_BAD_TURNS, "the %s completion does not start with an assistant turn", name);
        return HONE_OK;
    }
    hone_message *all = malloc((p->n + comp->n) * sizeof *all);
    if (!all) return hone_errorf(HONE_ERR_NOMEM, "out of memory for a preference pair");
    if (p->n) memcpy(all, p->v, p->n * sizeof *all);
    memcpy(all + p->n, comp->v, comp->n * sizeof *all);
    ds_check_turns(all, p->n + comp->n, 1, v);
    free(all);
    return HONE_OK;
}

static int same_list(const ds_msgs *a, const ds_msgs *b) {
    if (a->n != b->n) return 0;
    for (size_t i = 0; i < a->n; i++)
        if (!same_message(&a->v[i], &b->v[i])) return 0;
    return 1;
}

hone_status ds_parse_preference(ds_row *r, const json_t *row) {
    const ds_config *c = r->cfg;
    const char *ck = ds_get(row, c->chosen) || !c->chosen_alt ? c->chosen : c->chosen_alt;
    const char *rk = ds_get(row, c->rejected) || !c->rejected_alt ? c->rejected : c->rejected_alt;
    const json_t *cv = ds_get(row, ck), *rv = ds_get(row, rk);
    if (!cv || !rv) return ds_error(r, HONE_ERR_FORMAT, "missing field \"%s\" (a preference pair)", cv ? rk : ck);
    ds_verdict v = {.reason = HONE_DROP_COUNT};
    ds_msgs p = {0}, ch = {0}, rj = {0};
    hone_example ex = {.kind = HONE_EXAMPLE_PREFERENCE};
    hone_status st;
    if (json_is_string(cv) && json_is_string(rv))
        st = pair_strings(r, row, cv, rv, ck, rk, &p, &ch, &rj, &v);
    else if (json_is_array(cv) && json_is_array(rv))
        st = pair_lists(r, row, cv, rv, ck, rk, &p, &ch, &rj, &v);
    else if (json_is_object(cv) && json_is_object(rv))
        st = pair_objects(r, row, cv, rv, ck, rk, &p, &ch, &rj, &v);
    else
        st = ds_error(r, HONE_ERR_FORMAT,
                      "fields \"%s\" and \"%s\" must both be strings, message lists or message objects", ck, rk);
    if (st == HONE_OK) st = ds_add_row_system(r, row, &p);
    if (st == HONE_OK) st = ds_row_tools(r, row, &ex.conversation.tools_json);
    if (st == HONE_OK && same_list(&ch, &rj))
        ds_verdict_set(&v, HONE_DROP_IDENTICAL_PAIR, "\"%s\" and \"%s\" are the same", ck, rk);
    if (st == HONE_OK) st = check_completion(&p, &ch, "chosen", &v);
    if (st == HONE_OK) st = check_completion(&p, &rj, "rejected", &v);
    ds_msgs_take(&p, &ex.conversation);
    ds_msgs_take(&ch, &ex.chosen);
    ds_msgs_take(&rj, &ex.rejected);
    if (st == HONE_OK && v.reason == HONE_DROP_COUNT) return ds_emit(r, &ex);
    hone_example_free(&ex);
    return st == HONE_OK ? ds_drop(r, &v) : st;
}
