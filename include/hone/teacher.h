/* hone/teacher.h — teachers: a model that answers chat requests (a conversation → one reply), either a hone model
 * folder run in-process or any OpenAI-compatible chat endpoint (POST {base_url}/chat/completions through libcurl).
 * Selective Reflection-Tuning and Star-Agents ask teachers to rewrite instruction data.
 *
 *     hone_teacher_options o = {.base_url = "http://127.0.0.1:8000/v1", .model_name = "qwen2.5-7b-instruct",
 *                               .api_key_env = "OPENAI_API_KEY"};  // the key is read from the environment
 *     hone_teacher *t;
 *     if (hone_teacher_open(&t, &o) != HONE_OK) die(hone_error());
 *     hone_message turns[] = {{.role = "user", .content = "Improve this answer: ...", .weight = -1}};
 *     hone_conversation requests[] = {{.messages = turns, .n_messages = 1}};
 *     hone_teacher_reply replies[1];
 *     if (hone_teacher_chat_batch(t, requests, 1, NULL, NULL, replies) != HONE_OK) die(hone_error());
 *     if (replies[0].status == HONE_OK) puts(replies[0].text);
 *     else fprintf(stderr, "error: %s\n", replies[0].error);  // this request failed; the others are still there
 *     hone_teacher_replies_free(replies, 1);
 *     hone_teacher_free(t);
 *
 * A model teacher (o.model_dir) renders each request with the model's chat template (or o.chat_template) and its
 * generation prompt, encodes it with the folder's tokenizer.json and generates up to max_tokens tokens, greedily at
 * temperature 0, else sampling with a generator seeded by `seed` afresh for every request (a reply depends on the
 * request, the model and the settings only: a rerun, or a resumed run, gets the same replies), stopping at the
 * model's or the tokenizer's end-of-sequence token; the reply is the decoded text without special tokens. Requests
 * run one after the other (the model uses every thread).
 *
 * An endpoint teacher sends {"model", "messages": [{"role", "content"}…], "temperature", "max_tokens"} and reads
 * choices[0].message.content. Up to `concurrency` requests are in flight at once (curl multi, one thread). A
 * timeout, a connection error, HTTP 429 or a 5xx is retried up to max_retries times, waiting backoff_seconds ×
 * 2^attempt (or the server's Retry-After, when it sends one); any other HTTP status, or a body that is not the
 * expected JSON, fails that request at once. Errors name the URL, the HTTP status, the attempts and what to do; a
 * malformed body is quoted (its first 200 bytes). One failed request never loses the replies of the others.
 *
 * A teacher is used by one thread at a time.
 */
#ifndef HONE_TEACHER_H
#define HONE_TEACHER_H

#include <stddef.h>

#include "hone/base.h"
#include "hone/conversation.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hone_teacher hone_teacher;

/* Exactly one of model_dir and base_url is set. Zero values mean the defaults given. */
typedef struct {
    /* a hone model folder (config.json, weights, tokenizer.json; a chat template in it or chat_template) */
    const char *model_dir;
    const char *chat_template; /* NULL = the model's own; else a built-in name (chatml, llama3, …) or a .jinja file */

    /* an OpenAI-compatible endpoint */
    const char *base_url;    /* e.g. "http://127.0.0.1:8000/v1" (a URL already ending in /chat/completions is used
                                as is) */
    const char *model_name;  /* the request's "model" (required for endpoints) */
    const char *api_key_env; /* NAME of the environment variable holding the API key (sent as "Authorization:
                                Bearer …"); NULL = no key. Set but the variable is unset or empty: an error. */
    double timeout_seconds;  /* per attempt, whole request (0 = 120) */
    int max_retries;         /* attempts after the first on timeouts, connection errors, 429, 5xx (0 = 4; < 0 =
                                none) */
    double backoff_seconds;  /* first wait before a retry, doubled each retry, capped at 60 s (0 = 1) */
    int concurrency;         /* requests in flight at once (0 = 4) */

    /* both */
    float temperature; /* finite, >= 0: 0 = greedy (model) / "temperature": 0 (endpoint) */
    int max_tokens;    /* new tokens per reply (0 = 1024) */
    uint64_t seed;     /* model teachers' sampling seed when temperature > 0 (endpoints are not sent one) */
} hone_teacher_options;

/* Loads the model (and tokenizer and chat template: a folder without one gets the built-in alpaca template, as
 * hone_chat_template_pick says), or checks the endpoint options and reads the API key; no request is sent. Errors:
 * both or neither of model_dir / base_url, a missing model_name, an unset key variable, a URL that is not http://
 * or https://, a model folder without a tokenizer. */
hone_status hone_teacher_open(hone_teacher **out, const hone_teacher_options *o);
void hone_teacher_free(hone_teacher *t);

/* "model DIR" or "endpoint URL (model NAME)", followed by " at temperature T" (and ", seed S" for a model) when the
 * teacher samples: for logs, journals and reports, and as the key of what it answers. */
const char *hone_teacher_describe(const hone_teacher *t);

typedef struct {
    hone_status status; /* HONE_OK: text holds the reply */
    char *text;         /* the reply's content (malloc'd); NULL on failure */
    char *error;        /* on failure: what went wrong, naming the URL / HTTP status / attempts (malloc'd) */
    int http_status;    /* endpoints: the last response's HTTP status (0: no response; model teachers: 0) */
    int attempts;       /* requests sent (1 + retries); model teachers: 1 */
    int truncated;      /* the reply stopped at max_tokens (finish_reason "length") */
} hone_teacher_reply;

/* Called once per request as it finishes (success or failure), in the calling thread, one call at a time, in
 * completion order (not index order). Returning non-zero stops the batch: requests not finished are abandoned with
 * status HONE_ERR_IO ("not run: the batch was stopped"), and hone_teacher_chat_batch returns that value as its
 * status — a callback that failed to save a reply returns its hone_status with the message set. */
typedef int (*hone_teacher_reply_callback)(size_t index, const hone_teacher_reply *reply, void *user);

/* Answers requests[0..n): replies[i] is request i's reply or its own error. Returns HONE_OK when the batch ran,
 * whatever the outcome of each request (check replies[i].status); an error only for invalid arguments, out of
 * memory, or a callback that stopped the batch. cb may be NULL. Free the replies with hone_teacher_replies_free. */
hone_status hone_teacher_chat_batch(hone_teacher *t, const hone_conversation *requests, size_t n,
                                    hone_teacher_reply_callback cb, void *user, hone_teacher_reply *replies);
void hone_teacher_replies_free(hone_teacher_reply *replies, size_t n);

/* One request: *reply (malloc'd) on success; on failure the request's error message is the current error. */
hone_status hone_teacher_chat(hone_teacher *t, const hone_conversation *request, char **reply);

#ifdef __cplusplus
}
#endif
#endif
