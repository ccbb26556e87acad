/* hone_fake_openai — a local OpenAI-compatible chat endpoint with scripted behaviours, for the teacher tests.
 *
 *     hone_fake_openai [--key SECRET] [--log FILE] [--delay-ms N]
 *
 * Listens on 127.0.0.1 at a port the OS picks and prints "PORT\n" on stdout once it accepts connections. Serves
 * POST /v1/chat/completions (one request per connection, HTTP/1.1 with Connection: close). The last user message
 * picks the behaviour:
 *   "@slow"       answers after 3 s (to trip a client timeout)
 *   "@malformed"  200 with a truncated JSON body
 *   "@429"        429 with Retry-After: 1 the first time this exact message is seen, then a normal answer
 *   "@drop"       closes the connection without answering the first time, then a normal answer
 *   "@500"        500 every time
 *   "@wait"       answers after 300 ms with "max_inflight=N": the most requests it has seen in flight at once
 *   "@nomarkers"  a plain answer without reflection markers
 * otherwise a normal answer derived from the prompt: a reflection prompt that asks for "[New Instruction]" gets
 * "[New Instruction]INSTRUCTION Answer in one sentence.[End][New Answer]In short: ANSWER[End]", one that asks for
 * "[Better Answer]" gets "[Better Answer]In short: ANSWER[End]" (INSTRUCTION and ANSWER: the lines after the
 * prompt's "[Instruction]" and "[Answer]" lines), anything else "echo: MESSAGE".
 * With --key, requests without "Authorization: Bearer SECRET" get 401. With --log, every normal answer appends
 * one line "<FNV-1a hash of the request body>" to FILE, so tests can count how often a request was answered. With
 * --delay-ms, normal answers take that long (so that a test can kill its client mid-run).
 * It runs until killed.
 */
#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char *api_key;
static FILE *log_file;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int inflight, max_inflight, delay_ms;
/* This thread's request has left the in-flight count: set just before its reply is sent, since the client may send
 * its next request as soon as it has the reply, before this thread would otherwise get to count it out. */
static _Thread_local int counted_out;

static void count_out(void) {
    if (counted_out) return;
    counted_out = 1;
    pthread_mutex_lock(&lock);
    inflight--;
    pthread_mutex_unlock(&lock);
}
#define MAX_SEEN 1024
static uint64_t seen[MAX_SEEN]; /* hashes of "@429" / "@drop" messages already refused once */
static int n_seen;

static uint64_t fnv1a(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h;
}

/* 1 the first time this message is seen (then remembered). */
static int first_time(const char *message) {
    uint64_t h = fnv1a(message, strlen(message));
    pthread_mutex_lock(&lock);
    int fresh = 1;
    for (int i = 0; i < n_seen; i++) fresh &= seen[i] != h;
    if (fresh && n_seen < MAX_SEEN) seen[n_seen++] = h;
    pthread_mutex_unlock(&lock);
    return fresh;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void send_all(int fd, const char *data, size_t n) {
    while (n > 0) {
        ssize_t w = send(fd, data, n, MSG_NOSIGNAL);
        if (w <= 0) return;
        data += w;
        n -= (size_t)w;
    }
}

static void respond(int fd, int status, const char *extra_headers, const char *body) {
    const char *reason = status == 200   ? "OK"
                         : status == 400 ? "Bad Request"
                         : status == 401 ? "Unauthorized"
                         : status == 404 ? "Not Found"
                         : status == 429 ? "Too Many Requests"
                                         : "Internal Server Error";
    char head[512];
    count_out();
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n%sConnection: "
                     "close\r\n\r\n",
                     status, reason, strlen(body), extra_headers);
    send_all(fd, head, (size_t)n);
    send_all(fd, body, strlen(body));
}

/* The line after the line `label` in prompt, or "" (malloc'd). */
static char *line_after(const char *prompt, const char *label) {
    const char *p = strstr(prompt, label);
    if (!p || !(p = strchr(p, '\n'))) return strdup("");
    p++;
    size_t n = strcspn(p, "\n");
    return strndup(p, n);
}

static char *normal_answer(const char *message) {
    char *out;
    char *ins = line_after(message, "[Instruction]"), *ans = line_after(message, "[Answer]");
    if (strstr(message, "[New Instruction]"))
        out = (asprintf(&out, "Critique: fine.\n[New Instruction]%s Answer in one sentence.[End]\n[New Answer]In "
                              "short: %s[End]",
                        ins, ans) < 0) ? NULL : out;
    else if (strstr(message, "[Better Answer]"))
        out = (asprintf(&out, "Critique: fine.\n[Better Answer]In short: %s[End]", ans) < 0) ? NULL : out;
    else
        out = (asprintf(&out, "echo: %s", message) < 0) ? NULL : out;
    free(ins);
    free(ans);
    return out;
}

static void answer(int fd, const char *body, size_t body_len, const char *model, const char *message) {
    if (strstr(message, "@slow")) sleep_ms(3000);
    if (strstr(message, "@500")) {
        respond(fd, 500, "", "{\"error\": {\"message\": \"scripted failure\"}}");
        return;
    }
    if (strstr(message, "@malformed")) {
        respond(fd, 200, "", "{\"choices\": [{\"message\": {\"content\": \"trunc");
        return;
    }
    if (strstr(message, "@429") && first_time(message)) {
        respond(fd, 429, "Retry-After: 1\r\n", "{\"error\": {\"message\": \"rate limited\"}}");
        return;
    }
    if (strstr(message, "@drop") && first_time(message)) return;
    char *content;
    if (strstr(message, "@wait")) {
        sleep_ms(300);
        pthread_mutex_lock(&lock);
        content = (asprintf(&content, "max_inflight=%d", max_inflight) < 0) ? NULL : content;
        pthread_mutex_unlock(&lock);
    } else if (strstr(message, "@nomarkers")) {
        content = strdup("I would not change anything.");
    } else {
        sleep_ms(delay_ms);
        content = normal_answer(message);
    }
    json_t *reply = json_pack("{s:s, s:s, s:s, s:[{s:i, s:{s:s, s:s}, s:s}]}", "id", "chatcmpl-fake", "object",
                              "chat.completion", "model", model, "choices", "index", 0, "message", "role",
                              "assistant", "content", content ? content : "", "finish_reason", "stop");
    char *text = json_dumps(reply, 0);
    respond(fd, 200, "", text);
    if (log_file) {
        pthread_mutex_lock(&lock);
        fprintf(log_file, "%016llx\n", (unsigned long long)fnv1a(body, body_len));
        fflush(log_file);
        pthread_mutex_unlock(&lock);
    }
    free(text);
    json_decref(reply);
    free(content);
}

/* Reads one request (headers and a Content-Length body) and answers it. */
static void *serve(void *arg) {
    int fd = (int)(intptr_t)arg;
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap + 1);
    size_t need = 0; /* header and body bytes, once the header is in */
    while (buf) {
        if (len == cap && !(buf = realloc(buf, (cap *= 2) + 1))) break;
        ssize_t r = recv(fd, buf + len, cap - len, 0);
        if (r <= 0) break;
        len += (size_t)r;
        buf[len] = 0;
        const char *end = need ? NULL : strstr(buf, "\r\n\r\n");
        if (end) {
            const char *cl = strcasestr(buf, "\r\nContent-Length:");
            need = (size_t)(end + 4 - buf) + (cl ? strtoul(cl + 17, NULL, 10) : 0);
        }
        if (need && len >= need) break;
    }
    char *body;
    pthread_mutex_lock(&lock);
    if (++inflight > max_inflight) max_inflight = inflight;
    pthread_mutex_unlock(&lock);
    if (buf && need && len >= need && (body = strstr(buf, "\r\n\r\n"))) {
        body += 4;
        char auth[300];
        snprintf(auth, sizeof auth, "\r\nAuthorization: Bearer %s\r\n", api_key ? api_key : "");
        json_t *req = json_loadb(body, len - (size_t)(body - buf), 0, NULL);
        json_t *msgs = json_object_get(req, "messages");
        const char *message = "", *model = json_string_value(json_object_get(req, "model"));
        for (size_t i = 0; i < json_array_size(msgs); i++) {
            json_t *m = json_array_get(msgs, i);
            if (!strcmp(json_string_value(json_object_get(m, "role")) ?: "", "user"))
                message = json_string_value(json_object_get(m, "content")) ?: "";
        }
        if (strncmp(buf, "POST /v1/chat/completions ", 26))
            respond(fd, 404, "", "{\"error\": {\"message\": \"no such route\"}}");
        else if (api_key && !strcasestr(buf, auth))
            respond(fd, 401, "", "{\"error\": {\"message\": \"bad API key\"}}");
        else if (!req || !model)
            respond(fd, 400, "", "{\"error\": {\"message\": \"bad request body\"}}");
        else
            answer(fd, body, len - (size_t)(body - buf), model, message);
        json_decref(req);
    }
    count_out();
    free(buf);
    close(fd);
    return NULL;
}

int main(int argc, char **argv) {
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--key")) api_key = argv[i + 1];
        else if (!strcmp(argv[i], "--delay-ms")) delay_ms = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--log") && !(log_file = fopen(argv[i + 1], "a"))) return perror(argv[i + 1]), 1;
    }
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof addr;
    if (s < 0 || bind(s, (struct sockaddr *)&addr, sizeof addr) || listen(s, 64) ||
        getsockname(s, (struct sockaddr *)&addr, &alen))
        return perror("hone_fake_openai"), 1;
    printf("%d\n", ntohs(addr.sin_port));
    fflush(stdout);
    for (;;) {
        int fd = accept(s, NULL, NULL);
        if (fd < 0) continue;
        pthread_t th;
        if (pthread_create(&th, NULL, serve, (void *)(intptr_t)fd) == 0) pthread_detach(th);
        else close(fd);
    }
}
