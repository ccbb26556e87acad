/* libFuzzer target: any bytes as a chat template. Compiling must fail cleanly or succeed; a template that compiles
 * is rendered on a fixed conversation (system, user, assistant with a tool call, tool) with tools, special tokens
 * and add_generation_prompt, under small limits so that loops, recursion and output stay bounded. The engine must
 * neither crash nor leak nor hang (libFuzzer's timeout catches the last). */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/jinja.h"

static const char *const vars_json =
    "{\"messages\": ["
    "{\"role\": \"system\", \"content\": \"Be brief.\"},"
    "{\"role\": \"user\", \"content\": \"Hi \\u00e9\\ud83d\\ude00 {{ x }}\", \"name\": \"ann\"},"
    "{\"role\": \"assistant\", \"content\": \"\", \"tool_calls\": [{\"id\": \"call12345\", \"type\": \"function\","
    " \"function\": {\"name\": \"get_weather\", \"arguments\": {\"location\": \"Paris\", \"n\": 1.5}}}]},"
    "{\"role\": \"tool\", \"content\": \"22\"}],"
    " \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"parameters\":"
    " {\"type\": \"object\", \"properties\": {\"location\": {\"type\": \"string\"}}}}}],"
    " \"documents\": null, \"add_generation_prompt\": true, \"bos_token\": \"<s>\", \"eos_token\": \"</s>\"}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static json_t *vars_j;
    if (!vars_j && !(vars_j = json_loads(vars_json, 0, NULL))) abort();
    jinja_template *t;
    if (jinja_compile(&t, "fuzz", (const char *)data, size) != HONE_OK) return 0;
    const jinja_limits lim = {.max_output = 1 << 20, .max_memory = 64 << 20, .max_steps = 200000, .max_depth = 30};
    jinja_arena arena = {.limit = lim.max_memory};
    jv vars;
    if (jv_from_json(&arena, vars_j, &vars) == HONE_OK) {
        char *text = NULL;
        size_t len = 0, n_spans = 0;
        jinja_span *spans = NULL;
        if (jinja_render_template(t, &arena, vars, 1721952000, &lim, &text, &len, &spans, &n_spans) == HONE_OK) {
            for (size_t i = 0; i < n_spans; i++)
                if (spans[i].start > spans[i].end) abort();
            free(text);
            free(spans);
        }
    }
    jinja_arena_free(&arena);
    jinja_template_free(t);
    return 0;
}
