/* Chat templates: the public API over the Jinja engine (compile, built-ins, a model's own template, render).
 *
 * Rendering builds the variables transformers' apply_chat_template passes to the template —
 * {**special_tokens_map, **kwargs, messages, tools, documents, add_generation_prompt} — in a per-render arena,
 * runs the engine, and turns its errors into messages that name the template (and, for a model's own template,
 * point at --chat-template).
 *
 * Built-in templates: the ones named after a model family are the official Hugging Face template of that model,
 * verbatim, so they render exactly what the model was trained with. Two formats have no official template:
 *   alpaca  Stanford Alpaca's prompt. The preamble "Below is an instruction that describes a task. Write a
 *           response that appropriately completes the request.\n\n" (a first system message replaces it, followed
 *           by "\n\n"); each user turn is "### Instruction:\n{content}\n\n### Response:", and each user turn
 *           after the first is preceded by "\n\n"; each assistant turn is its content followed by eos_token,
 *           right after "### Response:" as in Stanford's training script. The prompt of a user turn already
 *           ends with "### Response:", so add_generation_prompt adds nothing. (An instruction with an input is
 *           one user message "instruction\ninput", as data formats build it.)
 *   vicuna  FastChat's vicuna_v1.1: "{system} USER: {user} ASSISTANT: {assistant}{eos}USER: … ASSISTANT:"
 *           with FastChat's default system message unless the first message is a system one; eos is eos_token,
 *           or "</s>" when the tokenizer has none.
 * Both mark assistant text with {% generation %}, so return_assistant_tokens_mask-style spans come with them. */
#include <stdio.h>
#include <stdlib.h>

#include "hone/chat_template.h"
#include "tokenizer/jinja.h"
#include "tokenizer/tokenizer_internal.h"

/* Built-in templates: names (NULL-terminated) and their sources, in the same order. */
static const char *const builtin_names[] = {"chatml", "llama2", "llama3", "mistral", "zephyr",
                                            "gemma",  "phi3",   "alpaca", "vicuna",  NULL};

static const char *const builtin_sources[] = {
    /* chatml: ChatML as teknium/OpenHermes-2.5-Mistral-7B ships it (no default system message) */
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
    "{% endif %}",
    /* llama2: meta-llama/Llama-2-7b-chat-hf */
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message "
    "= messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = "
    "false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 "
    "% 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') "
    "}}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' "
    "+ system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] "
    "%}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' "
    "}}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif "
    "%}{% endfor %}",
    /* llama3: meta-llama/Meta-Llama-3-8B-Instruct */
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' "
    "+ message['role'] + '<|end_header_id|>\n"
    "\n"
    "'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token "
    "+ content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assista"
    "nt<|end_header_id|>\n"
    "\n"
    "' }}{% endif %}",
    /* mistral: mistralai/Mistral-7B-Instruct-v0.1: a system message joins the first user turn */
    "{%- if messages[0]['role'] == 'system' %}\n"
    "    {%- set system_message = messages[0]['content'] %}\n"
    "    {%- set loop_messages = messages[1:] %}\n"
    "{%- else %}\n"
    "    {%- set loop_messages = messages %}\n"
    "{%- endif %}\n"
    "\n"
    "{{- bos_token }}\n"
    "{%- for message in loop_messages %}\n"
    "    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}\n"
    "        {{- raise_exception('After the optional system message, conversation roles must alternate "
    "user/assistant/user/assistant/...') }}\n"
    "    {%- endif %}\n"
    "    {%- if message['role'] == 'user' %}\n"
    "        {%- if loop.first and system_message is defined %}\n"
    "            {{- ' [INST] ' + system_message + '\\n\\n' + message['content'] + ' [/INST]' }}\n"
    "        {%- else %}\n"
    "            {{- ' [INST] ' + message['content'] + ' [/INST]' }}\n"
    "        {%- endif %}\n"
    "    {%- elif message['role'] == 'assistant' %}\n"
    "        {{- ' ' + message['content'] + eos_token}}\n"
    "    {%- else %}\n"
    "        {{- raise_exception('Only user and assistant roles are supported, with the exception of "
    "an initial optional system message!') }}\n"
    "    {%- endif %}\n"
    "{%- endfor %}\n",
    /* zephyr: HuggingFaceH4/zephyr-7b-beta */
    "{% for message in messages %}\n"
    "{% if message['role'] == 'user' %}\n"
    "{{ '<|user|>\n"
    "' + message['content'] + eos_token }}\n"
    "{% elif message['role'] == 'system' %}\n"
    "{{ '<|system|>\n"
    "' + message['content'] + eos_token }}\n"
    "{% elif message['role'] == 'assistant' %}\n"
    "{{ '<|assistant|>\n"
    "'  + message['content'] + eos_token }}\n"
    "{% endif %}\n"
    "{% if loop.last and add_generation_prompt %}\n"
    "{{ '<|assistant|>' }}\n"
    "{% endif %}\n"
    "{% endfor %}",
    /* gemma: google/gemma-2-2b-it: no system role */
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') "
    "}}{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 "
    "== 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') "
    "}}{% endif %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set "
    "role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\n"
    "' + message['content'] | trim + '<end_of_turn>\n"
    "' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n"
    "'}}{% endif %}",
    /* phi3: microsoft/Phi-3-mini-4k-instruct */
    "{% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>\n"
    "' + message['content'] + '<|end|>\n"
    "'}}{% elif message['role'] == 'user' %}{{'<|user|>\n"
    "' + message['content'] + '<|end|>\n"
    "'}}{% elif message['role'] == 'assistant' %}{{'<|assistant|>\n"
    "' + message['content'] + '<|end|>\n"
    "'}}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n"
    "' }}{% else %}{{ eos_token }}{% endif %}",
    /* alpaca: Stanford Alpaca's prompt, multi-turn by the rule above */
    "{%- if messages and messages[0]['role'] == 'system' -%}\n"
    "    {{- messages[0]['content'] + '\\n\\n' -}}\n"
    "    {%- set loop_messages = messages[1:] -%}\n"
    "{%- else -%}\n"
    "    {{- 'Below is an instruction that describes a task. Write a response that appropriately completes "
    "the request.\\n\\n' -}}\n"
    "    {%- set loop_messages = messages -%}\n"
    "{%- endif -%}\n"
    "{%- for message in loop_messages -%}\n"
    "    {%- if message['role'] == 'user' -%}\n"
    "        {%- if not loop.first -%}\n"
    "            {{- '\\n\\n' -}}\n"
    "        {%- endif -%}\n"
    "        {{- '### Instruction:\\n' + message['content'] + '\\n\\n### Response:' -}}\n"
    "    {%- elif message['role'] == 'assistant' -%}\n"
    "        {%- generation -%}\n"
    "            {{- message['content'] + eos_token | default('') -}}\n"
    "        {%- endgeneration -%}\n"
    "    {%- else -%}\n"
    "        {{- raise_exception('The alpaca template takes a first system message, then user and assistant "
    "messages; not ' + message['role']) -}}\n"
    "    {%- endif -%}\n"
    "{%- endfor -%}\n",
    /* vicuna: FastChat's vicuna_v1.1 */
    "{%- if messages and messages[0]['role'] == 'system' -%}\n"
    "    {%- set system_message = messages[0]['content'] -%}\n"
    "    {%- set loop_messages = messages[1:] -%}\n"
    "{%- else -%}\n"
    "    {%- set system_message = \"A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions.\" -%}\n"
    "    {%- set loop_messages = messages -%}\n"
    "{%- endif -%}\n"
    "{{- system_message + ' ' -}}\n"
    "{%- for message in loop_messages -%}\n"
    "    {%- if message['role'] == 'user' -%}\n"
    "        {{- 'USER: ' + message['content'] + ' ' -}}\n"
    "    {%- elif message['role'] == 'assistant' -%}\n"
    "        {{- 'ASSISTANT: ' -}}\n"
    "        {%- generation -%}\n"
    "            {{- message['content'] + eos_token | default('</s>') -}}\n"
    "        {%- endgeneration -%}\n"
    "    {%- else -%}\n"
    "        {{- raise_exception('The vicuna template takes a first system message, then user and assistant "
    "messages; not ' + message['role']) -}}\n"
    "    {%- endif -%}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}\n"
    "    {{- 'ASSISTANT:' -}}\n"
    "{%- endif -%}\n",
};

#define N_BUILTINS (sizeof builtin_sources / sizeof builtin_sources[0])

struct hone_chat_template {
    jinja_template *jt;
    int from_model;
    json_t *special; /* the model's special tokens (name → string or list of strings), or NULL */
};

const char *const *hone_chat_template_builtin_names(void) { return builtin_names; }

const char *hone_chat_template_builtin_source(const char *name) {
    for (size_t i = 0; i < N_BUILTINS; i++)
        if (strcmp(builtin_names[i], name) == 0) return builtin_sources[i];
    return NULL;
}

/* "chatml, llama2, …" for messages, in buf (256 bytes). */
static const char *builtin_list(char *buf) {
    size_t k = 0;
    buf[0] = 0;
    for (size_t i = 0; i < N_BUILTINS && k < 256; i++)
        k += (size_t)snprintf(buf + k, 256 - k, "%s%s", i ? ", " : "", builtin_names[i]);
    return buf;
}

const char *hone_chat_template_name(const hone_chat_template *t) { return t->jt->name; }

void hone_chat_template_free(hone_chat_template *t) {
    if (!t) return;
    jinja_template_free(t->jt);
    json_decref(t->special);
    free(t);
}

/* Appends the way out to the current error of a template that came with a model: a built-in template. */
static hone_status suggest_builtin(hone_status st) {
    char *msg = strdup(hone_error());
    if (!msg) return st;
    st = hone_errorf(st,
                     "%s (the template came with the model; use --chat-template NAME to pick a built-in template: "
                     "%s)",
                     msg, builtin_list((char[256]){0}));
    free(msg);
    return st;
}

hone_status hone_chat_template_compile(hone_chat_template **out, const char *source, size_t len, const char *name,
                                       int from_model) {
    *out = NULL;
    hone_chat_template *t = calloc(1, sizeof *t);
    if (!t) return hone_errorf(HONE_ERR_NOMEM, "out of memory compiling chat template %s", name);
    hone_status st = jinja_compile(&t->jt, name, source, len);
    if (st != HONE_OK) {
        free(t);
        return from_model ? suggest_builtin(st) : st;
    }
    t->from_model = from_model;
    *out = t;
    return HONE_OK;
}

hone_status hone_chat_template_builtin(hone_chat_template **out, const char *name) {
    *out = NULL;
    const char *src = hone_chat_template_builtin_source(name);
    if (!src)
        return hone_errorf(HONE_ERR_INVALID, "unknown chat template '%s'; the built-in ones are: %s", name,
                           builtin_list((char[256]){0}));
    return hone_chat_template_compile(out, src, strlen(src), name, 0);
}

/* A special token's text: a string, or an AddedToken object's "content"; NULL otherwise. */
static const char *token_text(const json_t *v) {
    if (json_is_string(v)) return json_string_value(v);
    if (json_is_object(v)) return json_string_value(json_object_get(v, "content"));
    return NULL;
}

/* The special tokens of tokenizer_config.json as transformers' special_tokens_map has them. */
static hone_status read_special_tokens(const json_t *config, const char *path, json_t **out) {
    static const char *const keys[] = {"bos_token", "eos_token", "unk_token", "sep_token",
                                       "pad_token", "cls_token", "mask_token"};
    json_t *special = json_object();
    if (!special) return hone_errorf(HONE_ERR_NOMEM, "out of memory reading %s", path);
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *text = token_text(json_object_get(config, keys[i]));
        if (text) json_object_set_new(special, keys[i], json_string(text));
    }
    const json_t *extra = json_object_get(config, "additional_special_tokens");
    if (json_is_array(extra) && json_array_size(extra)) {
        json_t *list = json_array();
        size_t i = 0;
        const json_t *v;
        json_array_foreach(extra, i, v) {
            const char *text = token_text(v);
            if (text) json_array_append_new(list, json_string(text));
        }
        json_object_set_new(special, "additional_special_tokens", list);
    }
    *out = special;
    return HONE_OK;
}

hone_status hone_chat_template_from_model(hone_chat_template **out, const char *path) {
    *out = NULL;
    int is_dir = hone_dir_exists(path);
    char *config_path = is_dir ? hone_path_join(path, "tokenizer_config.json") : strdup(path);
    char *jinja_path = is_dir ? hone_path_join(path, "chat_template.jinja") : NULL;
    hone_status st = HONE_OK;
    json_t *config = NULL, *special = NULL;
    char *source = NULL;
    size_t source_len = 0;
    const char *source_name = config_path;
    if (!config_path || (is_dir && !jinja_path)) {
        st = hone_errorf(HONE_ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((st = tok_read_json_object(config_path, JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &config)) != HONE_OK)
        goto done;
    if (config && (st = read_special_tokens(config, config_path, &special)) != HONE_OK) goto done;
    if (jinja_path && hone_file_exists(jinja_path)) {
        if ((st = hone_file_read(jinja_path, &source, &source_len)) != HONE_OK) goto done;
        source_name = jinja_path;
    } else {
        const json_t *tpl = config ? json_object_get(config, "chat_template") : NULL;
        if (json_is_array(tpl)) { /* named templates: [{"name": "default", "template": "…"}, …] */
            size_t i = 0;
            const json_t *v, *found = NULL;
            json_array_foreach(tpl, i, v) {
                const char *name = json_string_value(json_object_get(v, "name"));
                if (name && strcmp(name, "default") == 0) found = json_object_get(v, "template");
            }
            tpl = found;
        }
        if (!json_is_string(tpl)) {
            st = hone_errorf(HONE_ERR_INVALID,
                             "%s has no chat template (no chat_template.jinja, no \"chat_template\" in "
                             "tokenizer_config.json); use --chat-template NAME to pick a built-in template: %s",
                             path, builtin_list((char[256]){0}));
            goto done;
        }
        source_len = json_string_length(tpl);
        source = malloc(source_len + 1);
        if (!source) {
            st = hone_errorf(HONE_ERR_NOMEM, "out of memory");
            goto done;
        }
        memcpy(source, json_string_value(tpl), source_len + 1);
    }
    if ((st = hone_chat_template_compile(out, source, source_len, source_name, 1)) == HONE_OK) {
        (*out)->special = special;
        special = NULL;
    }
done:
    json_decref(config);
    json_decref(special);
    free(source);
    free(config_path);
    free(jinja_path);
    return st;
}

/* JSON text → template value; `what` names it in errors. */
static hone_status parse_json(jinja_arena *a, const char *text, const char *what, jv *out) {
    json_error_t err;
    json_t *j = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    if (!j) return hone_errorf(HONE_ERR_FORMAT, "%s is not valid JSON (line %d: %s)", what, err.line, err.text);
    hone_status st = jv_from_json(a, j, out);
    json_decref(j);
    return st;
}

static hone_status set_var(jinja_arena *a, jv vars, const char *name, jv v) {
    jv key = {0};
    HONE_TRY(jv_str_cstr(a, name, &key));
    return jv_dict_set(a, vars.u.d, key, v);
}

static hone_status set_str(jinja_arena *a, jv dict, const char *name, const char *s) {
    jv v = {0};
    HONE_TRY(jv_str_cstr(a, s, &v));
    return set_var(a, dict, name, v);
}

/* The variables of apply_chat_template: special tokens, extra variables, messages, tools, documents,
 * add_generation_prompt. */
static hone_status build_vars(const hone_chat_template *t, const hone_conversation *c,
                              const hone_chat_render_options *opt, jinja_arena *a, jv *vars) {
    HONE_TRY(jv_dict_new(a, vars));
    if (t->special) {
        const char *key;
        json_t *v;
        json_object_foreach(t->special, key, v) {
            jv x = {0};
            HONE_TRY(jv_from_json(a, v, &x));
            HONE_TRY(set_var(a, *vars, key, x));
        }
    }
    if (opt->bos_token) HONE_TRY(set_str(a, *vars, "bos_token", opt->bos_token));
    if (opt->eos_token) HONE_TRY(set_str(a, *vars, "eos_token", opt->eos_token));
    if (opt->extra_json) {
        jv extra = {0};
        HONE_TRY(parse_json(a, opt->extra_json, "the extra template variables", &extra));
        if (extra.kind != JV_DICT)
            return hone_errorf(HONE_ERR_INVALID, "the extra template variables must be a JSON object");
        static const char *const reserved[] = {"messages", "tools", "documents", "add_generation_prompt"};
        for (size_t i = 0; i < extra.u.d->n; i++) {
            const jinja_str *k = extra.u.d->keys[i].u.s;
            for (size_t r = 0; r < sizeof reserved / sizeof reserved[0]; r++)
                if (strcmp(k->data, reserved[r]) == 0)
                    return hone_errorf(HONE_ERR_INVALID, "the extra template variable '%s' is set by hone itself",
                                       k->data);
            HONE_TRY(jv_dict_set(a, vars->u.d, extra.u.d->keys[i], extra.u.d->vals[i]));
        }
    }
    size_t n_messages = c ? c->n_messages : 0;
    jv messages = {0};
    HONE_TRY(jv_list_new(a, n_messages, NULL, JL_LIST, &messages));
    for (size_t i = 0; i < n_messages; i++) {
        const hone_message *m = &c->messages[i];
        jv msg = {0};
        HONE_TRY(jv_dict_new(a, &msg));
        if (!m->role) return hone_errorf(HONE_ERR_INVALID, "message %zu has no role", i);
        HONE_TRY(set_str(a, msg, "role", m->role));
        if (m->content) HONE_TRY(set_str(a, msg, "content", m->content));
        if (m->name) HONE_TRY(set_str(a, msg, "name", m->name));
        if (m->tool_call_id) HONE_TRY(set_str(a, msg, "tool_call_id", m->tool_call_id));
        if (m->tool_calls_json) {
            char what[64];
            snprintf(what, sizeof what, "the tool_calls of message %zu", i);
            jv calls = {0};
            HONE_TRY(parse_json(a, m->tool_calls_json, what, &calls));
            HONE_TRY(set_var(a, msg, "tool_calls", calls));
        }
        messages.u.l->items[i] = msg;
    }
    HONE_TRY(set_var(a, *vars, "messages", messages));
    const char *tools_json = opt->tools_json ? opt->tools_json : c ? c->tools_json : NULL;
    jv tools = jv_none();
    if (tools_json) {
        HONE_TRY(parse_json(a, tools_json, "the tool definitions", &tools));
        if (tools.kind != JV_LIST) return hone_errorf(HONE_ERR_INVALID, "the tool definitions must be a JSON array");
    }
    HONE_TRY(set_var(a, *vars, "tools", tools));
    HONE_TRY(set_var(a, *vars, "documents", jv_none()));
    return set_var(a, *vars, "add_generation_prompt", jv_bool(opt->add_generation_prompt));
}

hone_status hone_chat_template_render(const hone_chat_template *t, const hone_conversation *c,
                                      const hone_chat_render_options *opt, char **text, size_t *len,
                                      hone_text_span **spans, size_t *n_spans) {
    static const hone_chat_render_options defaults = {0};
    *text = NULL;
    *len = 0;
    if (spans) {
        *spans = NULL;
        *n_spans = 0;
    }
    if (!opt) opt = &defaults;
    jinja_arena arena = {.limit = jinja_default_limits.max_memory};
    jv vars = {0};
    hone_status st = build_vars(t, c, opt, &arena, &vars);
    if (st == HONE_OK)
        st = jinja_render_template(t->jt, &arena, vars, opt->now, &jinja_default_limits, text, len, spans, n_spans);
    jinja_arena_free(&arena);
    if (st == HONE_OK) return HONE_OK;
    st = hone_error_context(st, "chat template '%s'", t->jt->name);
    return t->from_model ? suggest_builtin(st) : st;
}
