/* Teachers against a local OpenAI-compatible endpoint (tests/helpers/fake_openai.c, scripted by markers in the
 * last user message): normal replies, the API key, retries after 429 (honouring Retry-After) and dropped
 * connections, timeouts, malformed JSON, permanent 500s, one failure among successes, the concurrency limit, a
 * callback that stops the batch; and a model teacher (greedy, deterministic) on a tiny checkpoint. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hone/teacher.h"
#include "testutil.h"

typedef struct {
    pid_t pid;
    char base_url[64];
} fake_server;

/* Starts hone_fake_openai with the given extra arguments and reads the port it prints. */
static void server_start(fake_server *s, const char *key) {
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    s->pid = fork();
    assert_true(s->pid >= 0);
    if (s->pid == 0) {
        /* dies with the test, even when an assertion ends it early (or ctest would wait on its stderr) */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(fds[1], 1);
        close(fds[0]);
        if (key) execl(HONE_FAKE_OPENAI, HONE_FAKE_OPENAI, "--key", key, (char *)NULL);
        else execl(HONE_FAKE_OPENAI, HONE_FAKE_OPENAI, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    char line[32] = {0};
    ssize_t n = read(fds[0], line, sizeof line - 1);
    close(fds[0]);
    if (n <= 0) fail_msg("%s did not start", HONE_FAKE_OPENAI);
    snprintf(s->base_url, sizeof s->base_url, "http://127.0.0.1:%d/v1", atoi(line));
}

static void server_stop(fake_server *s) {
    kill(s->pid, SIGTERM);
    waitpid(s->pid, NULL, 0);
}

/* Runs one single-message request per text through a fresh endpoint teacher. */
static void ask(const fake_server *s, hone_teacher_options o, const char *const *texts, size_t n,
                hone_teacher_reply *replies) {
    o.base_url = s->base_url;
    o.model_name = "fake-teacher";
    hone_teacher *t;
    TEST_OK(hone_teacher_open(&t, &o));
    hone_message *msgs = calloc(n, sizeof *msgs);
    hone_conversation *reqs = calloc(n, sizeof *reqs);
    for (size_t i = 0; i < n; i++) {
        msgs[i] = (hone_message){.role = "user", .content = (char *)texts[i], .weight = -1};
        reqs[i] = (hone_conversation){.messages = &msgs[i], .n_messages = 1};
    }
    TEST_OK(hone_teacher_chat_batch(t, reqs, n, NULL, NULL, replies));
    free(msgs);
    free(reqs);
    hone_teacher_free(t);
}

static void assert_contains(const char *text, const char *needle) {
    if (!text || !strstr(text, needle)) fail_msg("'%s' does not contain '%s'", text ? text : "(null)", needle);
}

static void test_replies_and_failures(void **state) {
    (void)state;
    fake_server s;
    server_start(&s, NULL);
    /* the timeout leaves a busy machine 1.5 s for an ordinary reply, and is still half of @slow's 3 s */
    const hone_teacher_options fast = {.backoff_seconds = 0.01, .max_retries = 2, .timeout_seconds = 1.5};
    const char *texts[] = {"hello", "@500 boom", "@malformed", "@slow", "@drop once", "world"};
    hone_teacher_reply r[6];
    ask(&s, fast, texts, 6, r);
    /* Replies come back to their own request, whatever fails around them. */
    assert_int_equal(r[0].status, HONE_OK);
    assert_string_equal(r[0].text, "echo: hello");
    assert_int_equal(r[0].attempts, 1);
    assert_int_equal(r[0].http_status, 200);
    assert_int_equal(r[5].status, HONE_OK);
    assert_string_equal(r[5].text, "echo: world");
    /* A permanent 500: retried max_retries times, then an error naming the URL and the status. */
    assert_int_equal(r[1].status, HONE_ERR_IO);
    assert_null(r[1].text);
    assert_int_equal(r[1].attempts, 3);
    assert_int_equal(r[1].http_status, 500);
    assert_contains(r[1].error, s.base_url);
    assert_contains(r[1].error, "HTTP 500 after 3 attempts");
    assert_contains(r[1].error, "scripted failure");
    /* Malformed JSON is not retried, and the body is quoted. */
    assert_int_equal(r[2].status, HONE_ERR_FORMAT);
    assert_int_equal(r[2].attempts, 1);
    assert_contains(r[2].error, "not an OpenAI chat completion");
    assert_contains(r[2].error, "{\"choices\": [{\"message\": {\"content\": \"trunc'");
    /* A server slower than the timeout: every attempt times out. */
    assert_int_equal(r[3].status, HONE_ERR_IO);
    assert_int_equal(r[3].attempts, 3);
    assert_contains(r[3].error, "no reply within 1.5 s (3 attempts)");
    assert_contains(r[3].error, "/v1/chat/completions");
    /* A dropped connection is retried and then succeeds. */
    assert_int_equal(r[4].status, HONE_OK);
    assert_int_equal(r[4].attempts, 2);
    assert_string_equal(r[4].text, "echo: @drop once");
    hone_teacher_replies_free(r, 6);
    server_stop(&s);
}

static void test_retry_after(void **state) {
    (void)state;
    fake_server s;
    server_start(&s, NULL);
    const char *texts[] = {"@429 please"};
    hone_teacher_reply r[1];
    const double t0 = hone_now_seconds();
    ask(&s, (hone_teacher_options){.backoff_seconds = 0.01}, texts, 1, r);
    assert_int_equal(r[0].status, HONE_OK);
    assert_int_equal(r[0].attempts, 2);
    /* The server's Retry-After: 1 wins over the 10 ms backoff. */
    assert_true(hone_now_seconds() - t0 >= 0.95);
    hone_teacher_replies_free(r, 1);
    /* No retries: the 429 of a fresh message is the answer. */
    const char *again[] = {"@429 no retries"};
    ask(&s, (hone_teacher_options){.max_retries = -1}, again, 1, r);
    assert_int_equal(r[0].status, HONE_ERR_IO);
    assert_int_equal(r[0].attempts, 1);
    assert_contains(r[0].error, "HTTP 429 after 1 attempts");
    hone_teacher_replies_free(r, 1);
    server_stop(&s);
}

static void test_api_key(void **state) {
    (void)state;
    fake_server s;
    server_start(&s, "sekret");
    hone_teacher *t;
    hone_teacher_options o = {.base_url = s.base_url, .model_name = "m", .api_key_env = "HONE_TEST_TEACHER_KEY"};
    unsetenv("HONE_TEST_TEACHER_KEY");
    TEST_FAILS_WITH(hone_teacher_open(&t, &o), "HONE_TEST_TEACHER_KEY is not set");
    setenv("HONE_TEST_TEACHER_KEY", "sekret", 1);
    const char *texts[] = {"hi"};
    hone_teacher_reply r[1];
    ask(&s, o, texts, 1, r);
    assert_int_equal(r[0].status, HONE_OK);
    hone_teacher_replies_free(r, 1);
    setenv("HONE_TEST_TEACHER_KEY", "wrong", 1);
    ask(&s, o, texts, 1, r);
    assert_int_equal(r[0].http_status, 401);
    assert_int_equal(r[0].attempts, 1);
    assert_contains(r[0].error, "check the API key");
    hone_teacher_replies_free(r, 1);
    server_stop(&s);
}

static void test_concurrency(void **state) {
    (void)state;
    fake_server s;
    server_start(&s, NULL);
    const char *texts[8];
    char buf[8][16];
    for (int i = 0; i < 8; i++) {
        snprintf(buf[i], sizeof buf[i], "@wait %d", i);
        texts[i] = buf[i];
    }
    hone_teacher_reply r[8];
    /* One at a time: the server never sees two requests at once. */
    ask(&s, (hone_teacher_options){.concurrency = 1}, texts, 2, r);
    for (int i = 0; i < 2; i++) assert_string_equal(r[i].text, "max_inflight=1");
    hone_teacher_replies_free(r, 2);
    /* Three at a time: 8 requests of 300 ms take at least 3 rounds, and the server sees exactly 3 at once (no upper
     * bound on the time: a busy machine may be slower). */
    const double t0 = hone_now_seconds();
    ask(&s, (hone_teacher_options){.concurrency = 3}, texts, 8, r);
    const double seconds = hone_now_seconds() - t0;
    int most = 0;
    for (int i = 0; i < 8; i++) {
        assert_int_equal(r[i].status, HONE_OK);
        int k = atoi(r[i].text + strlen("max_inflight="));
        most = k > most ? k : most;
    }
    assert_int_equal(most, 3);
    assert_true(seconds >= 0.85);
    hone_teacher_replies_free(r, 8);
    server_stop(&s);
}

typedef struct {
    size_t calls;
} stop_state;

static int stop_after_first(size_t index, const hone_teacher_reply *reply, void *user) {
    (void)index;
    (void)reply;
    ((stop_state *)user)->calls++;
    return hone_errorf(HONE_ERR_IO, "journal full");
}

static void test_callback_stops(void **state) {
    (void)state;
    fake_server s;
    server_start(&s, NULL);
    hone_teacher *t;
    TEST_OK(hone_teacher_open(&t, &(hone_teacher_options){.base_url = s.base_url, .model_name = "m",
                                                           .concurrency = 1}));
    hone_message m[3] = {{.role = "user", .content = "a"}, {.role = "user", .content = "b"},
                         {.role = "user", .content = "c"}};
    hone_conversation reqs[3] = {{&m[0], 1, NULL}, {&m[1], 1, NULL}, {&m[2], 1, NULL}};
    hone_teacher_reply r[3];
    stop_state st = {0};
    TEST_FAILS_WITH(hone_teacher_chat_batch(t, reqs, 3, stop_after_first, &st, r), "journal full");
    assert_int_equal(st.calls, 1);
    assert_string_equal(r[0].text, "echo: a");
    assert_int_equal(r[2].status, HONE_ERR_IO);
    assert_contains(r[2].error, "not run");
    hone_teacher_replies_free(r, 3);
    /* The single-request call reports the request's own error. */
    hone_conversation bad = {&(hone_message){.role = "user", .content = "@malformed"}, 1, NULL};
    char *reply;
    TEST_FAILS_WITH(hone_teacher_chat(t, &bad, &reply), "body starts with");
    assert_null(reply);
    hone_teacher_free(t);
    server_stop(&s);
}

static void test_bad_options(void **state) {
    (void)state;
    hone_teacher *t;
    TEST_FAILS_WITH(hone_teacher_open(&t, &(hone_teacher_options){0}), "exactly one");
    TEST_FAILS_WITH(hone_teacher_open(&t, &(hone_teacher_options){.base_url = "ftp://x", .model_name = "m"}),
                    "not http");
    TEST_FAILS_WITH(hone_teacher_open(&t, &(hone_teacher_options){.base_url = "http://127.0.0.1:1/v1"}),
                    "needs a model name");
    /* Nothing listens on port 1: a connection error that names the URL. */
    TEST_OK(hone_teacher_open(&t, &(hone_teacher_options){.base_url = "http://127.0.0.1:1/v1/", .model_name = "m",
                                                           .max_retries = 1, .backoff_seconds = 0.01}));
    assert_string_equal(hone_teacher_describe(t), "endpoint http://127.0.0.1:1/v1/chat/completions (model m)");
    hone_conversation req = {&(hone_message){.role = "user", .content = "hi"}, 1, NULL};
    char *reply;
    TEST_FAILS_WITH(hone_teacher_chat(t, &req, &reply), "http://127.0.0.1:1/v1/chat/completions: ");
    assert_true(strstr(hone_error(), "(2 attempts)") != NULL);
    hone_teacher_free(t);
}

/* A model teacher answers greedily: the same reply every time, and a reply that stops at max_tokens is marked. */
static void test_model_teacher(void **state) {
    (void)state;
    const char *data = test_shared_data();
    if (!data) skip();
    char *dir = hone_path_join(data, "models/fake_gpt2");
    hone_teacher *t;
    TEST_OK(hone_teacher_open(&t, &(hone_teacher_options){.model_dir = dir, .max_tokens = 6}));
    assert_true(strncmp(hone_teacher_describe(t), "model ", 6) == 0);
    hone_message msgs[] = {{.role = "user", .content = "Name three colors.", .weight = -1}};
    hone_conversation reqs[2] = {{msgs, 1, NULL}, {msgs, 1, NULL}};
    hone_teacher_reply r[2];
    TEST_OK(hone_teacher_chat_batch(t, reqs, 2, NULL, NULL, r));
    assert_int_equal(r[0].status, HONE_OK);
    assert_string_equal(r[0].text, r[1].text);
    assert_int_equal(r[0].attempts, 1);
    hone_teacher_replies_free(r, 2);
    hone_teacher_free(t);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replies_and_failures), cmocka_unit_test(test_retry_after),
        cmocka_unit_test(test_api_key),              cmocka_unit_test(test_concurrency),
        cmocka_unit_test(test_callback_stops),       cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_model_teacher),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
