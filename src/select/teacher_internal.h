/* Shared by the two kinds of teacher (teacher.c: common code and model teachers; teacher_http.c: endpoints). Not
 * part of the public API. */
#ifndef HONE_TEACHER_INTERNAL_H
#define HONE_TEACHER_INTERNAL_H

#include "hone/chat_template.h"
#include "hone/model.h"
#include "hone/teacher.h"
#include "hone/tokenizer.h"

struct hone_teacher {
    char *description;
    float temperature;
    int max_tokens;
    uint64_t seed;
    /* model teachers */
    hone_model *model;
    hone_tokenizer *tokenizer;
    hone_chat_template *chat_template;
    /* endpoint teachers */
    char *url, *model_name;
    char *auth_header; /* "Authorization: Bearer …", or NULL */
    double timeout_seconds, backoff_seconds;
    int max_retries, concurrency;
};

/* Fills in reply r as a failure with a printf-style message (malloc'd). */
void teacher_reply_fail(hone_teacher_reply *r, hone_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Checks the endpoint options and fills in t's endpoint fields (teacher_http.c). */
hone_status teacher_http_open(hone_teacher *t, const hone_teacher_options *o);
/* hone_teacher_chat_batch for endpoints: replies[] start zeroed. */
hone_status teacher_http_batch(hone_teacher *t, const hone_conversation *requests, size_t n,
                               hone_teacher_reply_callback cb, void *user, hone_teacher_reply *replies);

#endif
