/* Teachers: opening either kind, the batch call, and model teachers (a hone model generating in-process). The
 * endpoint client is teacher_http.c. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hone/data.h"
#include "hone/render.h"
#include "teacher_internal.h"

void teacher_reply_fail(hone_teacher_reply *r, hone_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    free(r->error);
    if (vasprintf(&r->error, fmt, ap) < 0) r->error = NULL;
    va_end(ap);
    free(r->text);
    r->text = NULL;
    r->status = status;
}

static hone_status open_model(hone_teacher *t, const hone_teacher_options *o) {
    HONE_TRY(hone_model_load(&t->model, o->model_dir));
    HONE_TRY(hone_model_tokenizer(&t->tokenizer, t->model, NULL));
    if (!t->tokenizer)
        return hone_errorf(HONE_ERR_INVALID, "teacher model %s has no tokenizer.json: a teacher must turn its replies "
                                             "into text",
                           o->model_dir);
    HONE_TRY(hone_chat_template_pick(&t->chat_template, o->chat_template, o->model_dir));
    if (asprintf(&t->description, "model %s", o->model_dir) < 0) t->description = NULL;
    return HONE_OK;
}

hone_status hone_teacher_open(hone_teacher **out, const hone_teacher_options *o) {
    *out = NULL;
    if (!o->model_dir == !o->base_url)
        return hone_errorf(HONE_ERR_INVALID, "a teacher is either a model folder or an endpoint URL: give exactly one "
                                             "of them (--teacher-model DIR or --teacher-url URL)");
    if (!(o->temperature >= 0 && isfinite(o->temperature)) || o->max_tokens < 0)
        return hone_errorf(HONE_ERR_INVALID,
                           "teacher temperature and max_tokens must be >= 0 (got %g and %d): temperature 0 is "
                           "greedy",
                           (double)o->temperature, o->max_tokens);
    hone_teacher *t = calloc(1, sizeof *t);
    if (!t) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    t->temperature = o->temperature;
    t->max_tokens = o->max_tokens ? o->max_tokens : 1024;
    t->seed = o->seed;
    hone_status st = o->model_dir ? open_model(t, o) : teacher_http_open(t, o);
    /* Sampled replies depend on the temperature (and a model's seed): they are part of the description, which keys
     * the reflection journal and the Star-Agents log, so that a rerun with other settings does not reuse replies. */
    if (st == HONE_OK && t->description && t->temperature > 0) {
        char *d;
        const int n = t->model ? asprintf(&d, "%s at temperature %g, seed %llu", t->description, (double)t->temperature,
                                          (unsigned long long)t->seed)
                               : asprintf(&d, "%s at temperature %g", t->description, (double)t->temperature);
        free(t->description);
        t->description = n < 0 ? NULL : d;
    }
    if (st == HONE_OK && !t->description) st = hone_errorf(HONE_ERR_NOMEM, "out of memory");
    if (st != HONE_OK) {
        hone_teacher_free(t);
        return st;
    }
    *out = t;
    return HONE_OK;
}

void hone_teacher_free(hone_teacher *t) {
    if (!t) return;
    hone_chat_template_free(t->chat_template);
    hone_tokenizer_free(t->tokenizer);
    hone_model_free(t->model);
    free(t->description);
    free(t->url);
    free(t->model_name);
    free(t->auth_header);
    free(t);
}

const char *hone_teacher_describe(const hone_teacher *t) {
    return t->description;
}

typedef struct {
    int32_t eos_id; /* the tokenizer's end of sequence (a chat model's end of turn), -1 when none */
} stop_rule;

static int stop_at_tokenizer_eos(int32_t id, void *user) {
    return id == ((const stop_rule *)user)->eos_id;
}

/* One reply of a model teacher: template, encode, generate, decode. Failures go into r. */
static void model_reply(hone_teacher *t, const hone_conversation *request, hone_teacher_reply *r) {
    const hone_chat_render_options ropt = {.add_generation_prompt = 1};
    const int context = hone_model_get_config(t->model)->max_position_embeddings;
    char *text = NULL;
    size_t len, n_prompt = 0;
    int32_t *prompt = NULL, *gen = NULL;
    r->attempts = 1;
    if (hone_chat_template_render(t->chat_template, request, &ropt, &text, &len, NULL, NULL) != HONE_OK ||
        hone_tokenizer_encode(t->tokenizer, text, len, 0, &prompt, &n_prompt) != HONE_OK) {
        teacher_reply_fail(r, HONE_ERR_INVALID, "teacher %s: %s", t->description, hone_error());
        goto done;
    }
    if (n_prompt == 0 || n_prompt >= (size_t)context) {
        teacher_reply_fail(r, HONE_ERR_INVALID,
                           "teacher %s: the request is %zu tokens but the model's context is %d tokens: shorten the "
                           "example or use a teacher with a longer context",
                           t->description, n_prompt, context);
        goto done;
    }
    /* Replies are cut at the end of the context as at max_tokens (both marked truncated). */
    const int max_new = t->max_tokens < context - (int)n_prompt ? t->max_tokens : context - (int)n_prompt;
    const hone_sampling samp = {.max_new_tokens = max_new, .temperature = t->temperature, .top_p = 1,
                                .seed = t->seed, .stop_at_eos = 1};
    stop_rule stop = {hone_tokenizer_special(t->tokenizer)->eos_id};
    int n_gen = 0;
    char *reply = NULL;
    if (!(gen = malloc(sizeof(int32_t) * (size_t)max_new)) ||
        hone_generate(t->model, prompt, (int)n_prompt, &samp, gen, &n_gen, stop_at_tokenizer_eos, &stop) != HONE_OK ||
        hone_tokenizer_decode(t->tokenizer, gen, (size_t)n_gen, 1, &reply, &len) != HONE_OK) {
        teacher_reply_fail(r, gen ? HONE_ERR_INVALID : HONE_ERR_NOMEM, "teacher %s: %s", t->description,
                           gen ? hone_error() : "out of memory");
        goto done;
    }
    const int32_t last = n_gen ? gen[n_gen - 1] : -1;
    r->truncated = n_gen == max_new && last != stop.eos_id && !hone_model_is_eos(t->model, last);
    r->text = reply;
    r->status = HONE_OK;
done:
    free(text);
    free(prompt);
    free(gen);
}

hone_status hone_teacher_chat_batch(hone_teacher *t, const hone_conversation *requests, size_t n,
                                    hone_teacher_reply_callback cb, void *user, hone_teacher_reply *replies) {
    memset(replies, 0, sizeof *replies * n);
    if (!t->model) return teacher_http_batch(t, requests, n, cb, user, replies);
    for (size_t i = 0; i < n; i++) {
        model_reply(t, &requests[i], &replies[i]);
        int stop = cb ? cb(i, &replies[i], user) : 0;
        if (stop) {
            for (size_t j = i + 1; j < n; j++)
                teacher_reply_fail(&replies[j], HONE_ERR_IO, "not run: the batch was stopped");
            return (hone_status)stop;
        }
    }
    return HONE_OK;
}

void hone_teacher_replies_free(hone_teacher_reply *replies, size_t n) {
    for (size_t i = 0; i < n; i++) {
        free(replies[i].text);
        free(replies[i].error);
        replies[i].text = replies[i].error = NULL;
    }
}

hone_status hone_teacher_chat(hone_teacher *t, const hone_conversation *request, char **reply) {
    hone_teacher_reply r;
    *reply = NULL;
    HONE_TRY(hone_teacher_chat_batch(t, request, 1, NULL, NULL, &r));
    hone_status st = r.status == HONE_OK ? HONE_OK : hone_errorf(r.status, "%s", r.error ? r.error : "out of memory");
    *reply = r.text;
    r.text = NULL;
    hone_teacher_replies_free(&r, 1);
    return st;
}
