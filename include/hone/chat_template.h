/* hone/chat_template.h — chat templates: a conversation → the exact text a model was trained on, byte for byte
 * what Hugging Face transformers' tokenizer.apply_chat_template(messages, tokenize=False) returns.
 *
 *     hone_chat_template *t;
 *     if (hone_chat_template_from_model(&t, "models/Qwen2-0.5B-Instruct") != HONE_OK   // the model's own
 *         && hone_chat_template_builtin(&t, "chatml") != HONE_OK) {                   // or a built-in one
 *         fprintf(stderr, "error: %s\n", hone_error());
 *         return 1;
 *     }
 *     hone_chat_render_options opt = {.add_generation_prompt = 1};
 *     char *text;
 *     size_t len;
 *     if (hone_chat_template_render(t, &conversation, &opt, &text, &len, NULL, NULL) == HONE_OK) {
 *         fwrite(text, 1, len, stdout);   // "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n…"
 *         free(text);
 *     }
 *     hone_chat_template_free(t);
 *
 * Templates are Jinja, run by hone's own engine with the environment transformers uses: jinja2's
 * ImmutableSandboxedEnvironment with trim_blocks and lstrip_blocks, the loopcontrols extension (break,
 * continue), {% generation %} blocks, the globals raise_exception(message) and strftime_now(format), and a tojson
 * filter that is json.dumps(x, ensure_ascii=False, indent=…, separators=…, sort_keys=…). Values follow Python:
 * 1/2 is 0.5, 3.0 prints "3.0", None prints "None", lists print as Python reprs. What the engine does not
 * implement (a few rarely used filters and str methods, recursive loops, include/extends) is a clear
 * HONE_ERR_UNSUPPORTED error when a template uses it, never a silently different text.
 *
 * The template sees what transformers passes: messages (a list of dicts with role, content and, when set, name,
 * tool_call_id and tool_calls parsed from JSON; a NULL content leaves the key out), tools (the parsed JSON list,
 * or None), documents (None), add_generation_prompt, the model's special tokens (bos_token, eos_token, unk_token,
 * pad_token, … from tokenizer_config.json) and any extra variables given as JSON. A compiled template is
 * immutable: many threads may render with it at once. */
#ifndef HONE_CHAT_TEMPLATE_H
#define HONE_CHAT_TEMPLATE_H

#include <stddef.h>
#include <stdint.h>

#include "hone/base.h"
#include "hone/conversation.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hone_chat_template hone_chat_template;

/* Compiles Jinja source[0..len) (UTF-8). `name` names the template in messages (a path, a model id or a
 * built-in's name). Syntax errors are HONE_ERR_FORMAT and read "NAME:LINE:COLUMN: what (near 'text')".
 * from_model = 1 marks a template that came with a model: its render errors then suggest --chat-template. */
hone_status hone_chat_template_compile(hone_chat_template **out, const char *source, size_t len, const char *name,
                                       int from_model);

/* The built-in template `name` (see hone_chat_template_builtin_names); an unknown name is HONE_ERR_INVALID and
 * lists the names. */
hone_status hone_chat_template_builtin(hone_chat_template **out, const char *name);
/* NULL-terminated list of built-in names: chatml, llama2, llama3, mistral, zephyr, gemma, phi3, alpaca, vicuna. */
const char *const *hone_chat_template_builtin_names(void);
/* Jinja source of a built-in, or NULL. */
const char *hone_chat_template_builtin_source(const char *name);

/* The chat template of a Hugging Face model folder (or its tokenizer_config.json): chat_template.jinja when
 * present, otherwise tokenizer_config.json's "chat_template" (a string, or a list of {name, template} from which
 * "default" is taken). The special tokens of tokenizer_config.json (bos_token, eos_token, unk_token, sep_token,
 * pad_token, cls_token, mask_token, additional_special_tokens; strings or {"content": …} objects) become
 * template variables, as transformers passes them. A model without a template is HONE_ERR_INVALID, and the
 * message says how to pick a built-in one. */
hone_status hone_chat_template_from_model(hone_chat_template **out, const char *path);

const char *hone_chat_template_name(const hone_chat_template *t);
void hone_chat_template_free(hone_chat_template *t);

typedef struct {
    const char *bos_token; /* overrides the model's; NULL = the model's, or undefined in the template */
    const char *eos_token;
    int add_generation_prompt; /* end with the header of an assistant turn */
    const char *tools_json;    /* JSON array of tool definitions; NULL = the conversation's tools_json; neither:
                                  tools is None */
    const char *extra_json;    /* JSON object of more template variables (e.g. {"enable_thinking": false}); they
                                  override special tokens; messages, tools, documents and add_generation_prompt
                                  cannot be set this way */
    int64_t now;               /* the time strftime_now formats, in Unix seconds (local time, as datetime.now());
                                  0 = the current time */
} hone_chat_render_options;

/* A byte range [start, end) of the rendered text. */
typedef struct {
    size_t start, end;
} hone_text_span;

/* Renders conversation c (NULL = no messages). *text is malloc'd and NUL-terminated (free with free()), *len bytes.
 * When spans is not NULL it receives the {% generation %} blocks of the template as transformers'
 * return_assistant_tokens_mask records them (byte ranges, malloc'd, NULL when there are none; free with free()). opt
 * may be NULL (all defaults). Errors name the template and the line:column in it: raise_exception() in the template,
 * type errors, unknown filters, invalid JSON in the conversation or the options; a runaway template stops at its
 * resource limits. */
hone_status hone_chat_template_render(const hone_chat_template *t, const hone_conversation *c,
                                      const hone_chat_render_options *opt, char **text, size_t *len,
                                      hone_text_span **spans, size_t *n_spans);

#ifdef __cplusplus
}
#endif

#endif
