/* hone select --method reflection (cmd_select_reflection.c), called by cmd_select.c. */
#ifndef HONE_CLI_SELECT_REFLECTION_H
#define HONE_CLI_SELECT_REFLECTION_H

#include "cli.h"

/* The keys of the method (and of its teacher), for cmd_select.c's table. */
#define CLI_REFLECTION_KEYS                                                                                    \
    {"teacher_model", HONE_KEY_STRING, NULL, "reflection: the teacher, a hone model folder (or --teacher-url)"}, \
    {"teacher_chat_template", HONE_KEY_STRING, NULL,                                                           \
     "reflection: the teacher model's chat template, a built-in name or Jinja file (default: its own)"},      \
    {"teacher_url", HONE_KEY_STRING, NULL,                                                                     \
     "reflection: the teacher, an OpenAI-compatible API base URL (e.g. http://127.0.0.1:8000/v1)"},           \
    {"teacher_name", HONE_KEY_STRING, NULL, "reflection: the endpoint's model name (the request's \"model\")"}, \
    {"teacher_api_key_env", HONE_KEY_STRING, NULL,                                                             \
     "reflection: NAME of the environment variable holding the endpoint's API key (default: no key)"},        \
    {"teacher_timeout", HONE_KEY_FLOAT, "120", "reflection: seconds per endpoint request attempt"},           \
    {"teacher_retries", HONE_KEY_INT, "4",                                                                     \
     "reflection: retries of an endpoint request after a timeout, connection error, HTTP 429 or 5xx"},        \
    {"teacher_concurrency", HONE_KEY_INT, "4", "reflection: endpoint requests in flight at once"},             \
    {"teacher_max_tokens", HONE_KEY_INT, "1024", "reflection: longest teacher reply, in tokens"},             \
    {"teacher_temperature", HONE_KEY_FLOAT, "0",                                                               \
     "reflection: the teacher's sampling temperature (0 = greedy; a teacher model samples with --seed)"},      \
    {"reflection_instruction_prompt", HONE_KEY_STRING, NULL,                                                   \
     "reflection: file with the instruction-reflection prompt ({instruction}, {answer}; default: hone's)"},   \
    {"reflection_response_prompt", HONE_KEY_STRING, NULL,                                                      \
     "reflection: file with the response-reflection prompt ({instruction}, {answer}; default: hone's)"},      \
    {"reflection_journal", HONE_KEY_STRING, NULL,                                                              \
     "reflection: the teacher's replies, appended as they arrive (default: OUTPUT.teacher.jsonl; resumed)"}

/* Runs Selective Reflection-Tuning with the student m and the scoring options o (data, prompt style,
 * sequence_len, start token, ...) that cmd_select prepared, writing OUTPUT, decisions_path and the teacher journal
 * journal_path. Returns the exit code. */
int cli_select_reflection(const hone_settings *s, hone_model *m, const hone_score_file_options *o,
                          const char *decisions_path, const char *journal_path);

#endif
