/* Endpoint teachers: OpenAI-compatible POST {base_url}/chat/completions through libcurl's multi interface, up to
 * `concurrency` requests in flight from one thread, each retried with exponential backoff (or the server's
 * Retry-After) on timeouts, connection errors, HTTP 429 and 5xx. */
#include <curl/curl.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "teacher_internal.h"

#define BODY_QUOTE 200        /* bytes of a bad body quoted in errors */
#define MAX_BACKOFF_SECONDS 60

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_code;
static void curl_init(void) {
    curl_init_code = curl_global_init(CURL_GLOBAL_DEFAULT);
}

hone_status teacher_http_open(hone_teacher *t, const hone_teacher_options *o) {
    pthread_once(&curl_once, curl_init);
    if (curl_init_code != CURLE_OK)
        return hone_errorf(HONE_ERR_IO, "libcurl failed to start: %s", curl_easy_strerror(curl_init_code));
    if (strncmp(o->base_url, "http://", 7) && strncmp(o->base_url, "https://", 8))
        return hone_errorf(HONE_ERR_INVALID, "teacher URL '%s' is not http:// or https:// (give the API's base, e.g. "
                                             "http://127.0.0.1:8000/v1)",
                           o->base_url);
    if (!o->model_name || !*o->model_name)
        return hone_errorf(HONE_ERR_INVALID, "the teacher endpoint %s needs a model name (--teacher-name)",
                           o->base_url);
    if (o->timeout_seconds < 0 || o->backoff_seconds < 0 || o->concurrency < 0)
        return hone_errorf(HONE_ERR_INVALID, "teacher timeout, backoff and concurrency must be >= 0");
    const char *suffix = "/chat/completions";
    size_t n = strlen(o->base_url), ns = strlen(suffix);
    while (n > 0 && o->base_url[n - 1] == '/') n--;
    const int has_suffix = n >= ns && !strncmp(o->base_url + n - ns, suffix, ns);
    if (asprintf(&t->url, "%.*s%s", (int)n, o->base_url, has_suffix ? "" : suffix) < 0 ||
        !(t->model_name = strdup(o->model_name)) ||
        asprintf(&t->description, "endpoint %s (model %s)", t->url, t->model_name) < 0) {
        t->description = NULL;
        return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    }
    if (o->api_key_env) {
        const char *key = getenv(o->api_key_env);
        if (!key || !*key)
            return hone_errorf(HONE_ERR_INVALID, "the teacher's API key variable %s is not set (or empty): export %s=… "
                                                 "before running, or leave out --teacher-api-key-env",
                               o->api_key_env, o->api_key_env);
        if (asprintf(&t->auth_header, "Authorization: Bearer %s", key) < 0) {
            t->auth_header = NULL;
            return hone_errorf(HONE_ERR_NOMEM, "out of memory");
        }
    }
    t->timeout_seconds = o->timeout_seconds > 0 ? o->timeout_seconds : 120;
    t->max_retries = o->max_retries < 0 ? 0 : o->max_retries > 0 ? o->max_retries : 4;
    t->backoff_seconds = o->backoff_seconds > 0 ? o->backoff_seconds : 1;
    t->concurrency = o->concurrency > 0 ? o->concurrency : 4;
    return HONE_OK;
}

typedef enum { JOB_WAITING = 0, JOB_RUNNING, JOB_DONE } job_state;

typedef struct {
    char *request;      /* the JSON body */
    char *body;         /* the response body of the current attempt */
    size_t len, cap;
    CURL *easy;
    struct curl_slist *headers;
    char curl_error[CURL_ERROR_SIZE];
    job_state state;
    double ready_at;    /* monotonic seconds at which a waiting job may be sent */
} http_job;

static size_t collect(char *data, size_t size, size_t nmemb, void *user) {
    http_job *j = user;
    size_t n = size * nmemb;
    if (j->len + n + 1 > j->cap) {
        size_t cap = (j->len + n + 1) * 2;
        char *p = realloc(j->body, cap);
        if (!p) return 0; /* curl reports a write error */
        j->body = p;
        j->cap = cap;
    }
    memcpy(j->body + j->len, data, n);
    j->len += n;
    j->body[j->len] = 0;
    return n;
}

/* {"model", "messages": [{"role", "content"}…], "temperature", "max_tokens"} (malloc'd), or NULL. */
static char *request_json(const hone_teacher *t, const hone_conversation *c) {
    json_t *msgs = json_array();
    for (size_t i = 0; i < c->n_messages; i++)
        json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", c->messages[i].role ? c->messages[i].role : "user",
                                              "content", c->messages[i].content ? c->messages[i].content : ""));
    json_t *req = json_pack("{s:s, s:o, s:f, s:i}", "model", t->model_name, "messages", msgs, "temperature",
                            (double)t->temperature, "max_tokens", t->max_tokens);
    char *text = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    return text;
}

static hone_status start_attempt(const hone_teacher *t, http_job *j, hone_teacher_reply *r) {
    j->len = 0;
    j->curl_error[0] = 0;
    if (!j->easy && !(j->easy = curl_easy_init())) return hone_errorf(HONE_ERR_NOMEM, "curl_easy_init failed");
    if (!j->headers) {
        j->headers = curl_slist_append(NULL, "Content-Type: application/json");
        if (j->headers && t->auth_header) j->headers = curl_slist_append(j->headers, t->auth_header);
        if (!j->headers) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    }
    curl_easy_setopt(j->easy, CURLOPT_URL, t->url);
    curl_easy_setopt(j->easy, CURLOPT_HTTPHEADER, j->headers);
    curl_easy_setopt(j->easy, CURLOPT_POSTFIELDS, j->request);
    curl_easy_setopt(j->easy, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(j->easy, CURLOPT_WRITEDATA, j);
    curl_easy_setopt(j->easy, CURLOPT_ERRORBUFFER, j->curl_error);
    curl_easy_setopt(j->easy, CURLOPT_TIMEOUT_MS, (long)(t->timeout_seconds * 1000));
    curl_easy_setopt(j->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(j->easy, CURLOPT_PRIVATE, j);
    j->state = JOB_RUNNING;
    r->attempts++;
    return HONE_OK;
}

/* The reply's content from a 200 body; a body without choices[0].message.content is an error quoting it. */
static void parse_reply(const hone_teacher *t, const http_job *j, hone_teacher_reply *r) {
    json_t *root = json_loadb(j->body ? j->body : "", j->len, 0, NULL);
    json_t *choice = json_array_get(json_object_get(root, "choices"), 0);
    const char *content = json_string_value(json_object_get(json_object_get(choice, "message"), "content"));
    if (!content) {
        teacher_reply_fail(r, HONE_ERR_FORMAT,
                           "POST %s: HTTP 200 but the reply is not an OpenAI chat completion (no "
                           "choices[0].message.content; body starts with '%.*s'): check that --teacher-url is an "
                           "OpenAI-compatible API",
                           t->url, (int)(j->len < BODY_QUOTE ? j->len : BODY_QUOTE), j->body ? j->body : "");
    } else if (!(r->text = strdup(content))) {
        teacher_reply_fail(r, HONE_ERR_NOMEM, "out of memory");
    } else {
        r->status = HONE_OK;
        const char *finish = json_string_value(json_object_get(choice, "finish_reason"));
        r->truncated = finish && !strcmp(finish, "length");
    }
    json_decref(root);
}

/* What a finished attempt means: 1 = done (reply r filled), 0 = retry after *wait seconds. */
static int finish_attempt(const hone_teacher *t, http_job *j, CURLcode code, hone_teacher_reply *r, double *wait) {
    long http = 0;
    curl_off_t retry_after = 0;
    curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &http);
    curl_easy_getinfo(j->easy, CURLINFO_RETRY_AFTER, &retry_after);
    r->http_status = (int)http;
    if (code == CURLE_OK && http == 200) {
        parse_reply(t, j, r);
        return 1;
    }
    const int transient = code != CURLE_OK || http == 429 || http >= 500;
    if (transient && r->attempts <= t->max_retries) {
        *wait = retry_after > 0 ? (double)retry_after : t->backoff_seconds * pow(2, r->attempts - 1);
        if (*wait > MAX_BACKOFF_SECONDS) *wait = MAX_BACKOFF_SECONDS;
        return 0;
    }
    const int quote = (int)(j->len < BODY_QUOTE ? j->len : BODY_QUOTE);
    const char *body = j->body ? j->body : "";
    if (code == CURLE_OPERATION_TIMEDOUT)
        teacher_reply_fail(r, HONE_ERR_IO,
                           "POST %s: no reply within %g s (%d attempts): raise --teacher-timeout, or lower "
                           "--teacher-concurrency if the server is overloaded",
                           t->url, t->timeout_seconds, r->attempts);
    else if (code != CURLE_OK)
        teacher_reply_fail(r, HONE_ERR_IO, "POST %s: %s (%d attempts): check --teacher-url and that the server runs",
                           t->url, j->curl_error[0] ? j->curl_error : curl_easy_strerror(code), r->attempts);
    else if (http == 401 || http == 403)
        teacher_reply_fail(r, HONE_ERR_IO, "POST %s: HTTP %ld (body starts with '%.*s'): check the API key "
                                           "(--teacher-api-key-env)",
                           t->url, http, quote, body);
    else if (transient)
        teacher_reply_fail(r, HONE_ERR_IO,
                           "POST %s: HTTP %ld after %d attempts (body starts with '%.*s'): the server keeps failing; "
                           "check it, or raise --teacher-retries",
                           t->url, http, r->attempts, quote, body);
    else
        teacher_reply_fail(r, HONE_ERR_IO,
                           "POST %s: HTTP %ld (body starts with '%.*s'): check --teacher-url (the API base, ending "
                           "in /v1) and --teacher-name",
                           t->url, http, quote, body);
    return 1;
}

hone_status teacher_http_batch(hone_teacher *t, const hone_conversation *requests, size_t n,
                               hone_teacher_reply_callback cb, void *user, hone_teacher_reply *replies) {
    http_job *jobs = calloc(n ? n : 1, sizeof *jobs);
    CURLM *multi = curl_multi_init();
    hone_status st = jobs && multi ? HONE_OK : hone_errorf(HONE_ERR_NOMEM, "out of memory");
    for (size_t i = 0; st == HONE_OK && i < n; i++)
        if (!(jobs[i].request = request_json(t, &requests[i])))
            st = hone_errorf(HONE_ERR_INVALID, "request %zu cannot be written as JSON (invalid UTF-8?)", i);
    size_t done = 0, first = 0; /* jobs before `first` are all done */
    int running = 0;
    while (st == HONE_OK && done < n) {
        const double now = hone_now_seconds();
        double soonest = now + 1; /* the next moment a job waiting for its retry may be sent */
        while (first < n && jobs[first].state == JOB_DONE) first++;
        for (size_t i = first; i < n && running < t->concurrency; i++) {
            if (jobs[i].state != JOB_WAITING) continue;
            if (jobs[i].ready_at > now) {
                if (jobs[i].ready_at < soonest) soonest = jobs[i].ready_at;
                continue;
            }
            if ((st = start_attempt(t, &jobs[i], &replies[i])) != HONE_OK) break;
            curl_multi_add_handle(multi, jobs[i].easy);
            running++;
        }
        int still;
        CURLMcode mc = st == HONE_OK ? curl_multi_perform(multi, &still) : CURLM_OK;
        if (mc != CURLM_OK) st = hone_errorf(HONE_ERR_IO, "curl: %s", curl_multi_strerror(mc));
        CURLMsg *msg;
        int queued;
        while (st == HONE_OK && (msg = curl_multi_info_read(multi, &queued))) {
            if (msg->msg != CURLMSG_DONE) continue;
            char *priv;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
            http_job *j = (http_job *)priv;
            const size_t i = (size_t)(j - jobs);
            const CURLcode code = msg->data.result;
            curl_multi_remove_handle(multi, j->easy);
            running--;
            double wait = 0;
            if (!finish_attempt(t, j, code, &replies[i], &wait)) {
                j->state = JOB_WAITING;
                j->ready_at = hone_now_seconds() + wait;
                if (j->ready_at < soonest) soonest = j->ready_at;
                continue;
            }
            j->state = JOB_DONE;
            done++;
            int stop = cb ? cb(i, &replies[i], user) : 0;
            if (stop) st = (hone_status)stop;
        }
        if (st != HONE_OK || done == n) break;
        /* Sleep until a transfer has news (curl also wakes for its own timeouts) or a retry is due. */
        const double until = soonest - hone_now_seconds();
        mc = curl_multi_poll(multi, NULL, 0, until <= 0 ? 0 : (int)(until * 1000) + 1, NULL);
        if (mc != CURLM_OK) st = hone_errorf(HONE_ERR_IO, "curl: %s", curl_multi_strerror(mc));
    }
    for (size_t i = 0; jobs && i < n; i++) {
        if (jobs[i].state != JOB_DONE) teacher_reply_fail(&replies[i], HONE_ERR_IO, "not run: the batch was stopped");
        if (jobs[i].easy) {
            if (jobs[i].state == JOB_RUNNING) curl_multi_remove_handle(multi, jobs[i].easy);
            curl_easy_cleanup(jobs[i].easy);
        }
        curl_slist_free_all(jobs[i].headers);
        free(jobs[i].request);
        free(jobs[i].body);
    }
    curl_multi_cleanup(multi);
    free(jobs);
    return st;
}
