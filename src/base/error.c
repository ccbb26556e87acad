/* Thread-local error messages and logging. */
#include "hone/base.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define HONE_ERROR_CAP 4096

static _Thread_local char error_message[HONE_ERROR_CAP];

hone_status hone_errorf(hone_status code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(error_message, sizeof error_message, fmt, ap);
    va_end(ap);
    return code;
}

hone_status hone_error_context(hone_status code, const char *fmt, ...) {
    char prefix[1024];
    char previous[HONE_ERROR_CAP];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(previous, error_message, sizeof previous);
    size_t n = strlen(prefix);
    if (n > sizeof error_message - 3) n = sizeof error_message - 3;
    memcpy(error_message, prefix, n);
    memcpy(error_message + n, ": ", 2);
    size_t rest = sizeof error_message - n - 3;
    size_t m = strnlen(previous, rest);
    memcpy(error_message + n + 2, previous, m);
    error_message[n + 2 + m] = 0;
    return code;
}

const char *hone_error(void) { return error_message[0] ? error_message : "unknown error"; }

void hone_error_clear(void) { error_message[0] = 0; }

_Noreturn void hone_assert_fail(const char *expr, const char *file, int line) {
    fprintf(stderr, "hone: internal error: assertion `%s` failed at %s:%d\n", expr, file, line);
    abort();
}

static int log_level = -1;

void hone_log_set_level(hone_log_level level) { log_level = (int)level; }

static int current_log_level(void) {
    if (log_level < 0) {
        const char *env = getenv("HONE_LOG");
        log_level = HONE_LOG_INFO;
        if (env) {
            if (!strcmp(env, "error")) log_level = HONE_LOG_ERROR;
            else if (!strcmp(env, "warn")) log_level = HONE_LOG_WARN;
            else if (!strcmp(env, "debug")) log_level = HONE_LOG_DEBUG;
        }
    }
    return log_level;
}

void hone_log(hone_log_level level, const char *fmt, ...) {
    if ((int)level > current_log_level()) return;
    static const char *names[] = {"error", "warning", "info", "debug"};
    char line[HONE_ERROR_CAP];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (level == HONE_LOG_INFO) fprintf(stderr, "%s\n", line);
    else fprintf(stderr, "%s: %s\n", names[level], line);
}
