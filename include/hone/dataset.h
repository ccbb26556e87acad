/* hone/dataset.h — instruction, chat and preference datasets in their many public shapes, parsed into examples.
 *
 *     hone_dataset_options opt = {0};              // every field NULL / 0: auto-detect, default field names
 *     opt.field_instruction = "question";          // gsm8k: {"question", "answer"} rows read as alpaca
 *     opt.field_output = "answer";
 *     hone_dataset ds;
 *     if (hone_dataset_load(&ds, "train.jsonl", &opt) != HONE_OK) die(hone_error());
 *     for (size_t i = 0; i < ds.n_examples; i++) {
 *         const hone_example *ex = &ds.examples[i];  // ex->kind == HONE_EXAMPLE_SFT: ex->conversation
 *     }
 *     printf("%s: %zu rows, %zu examples, %zu dropped\n", hone_dataset_format_name(ds.stats.format),
 *            ds.stats.rows, ds.stats.examples, ds.stats.dropped);
 *     hone_dataset_free(&ds);
 *
 * Files: a JSON array of objects, JSONL (one object per line, blank lines skipped), or a single JSON object (one
 * row), optionally gzip-compressed (recognised by its magic bytes, whatever the extension). Rows must be UTF-8.
 * JSONL is read line by line from a memory mapping and JSON arrays element by element, so memory holds the
 * examples, not a parse tree of the file (a .gz file is inflated into memory first).
 *
 * An example is one of five kinds (hone_example_kind): a conversation to train on (SFT), plain text, token ids, a
 * preference pair (a prompt conversation and two completions, chosen and rejected) or a KTO row (a conversation
 * and a desirable/undesirable label). The format is detected from the fields of the first rows (up to 16, which
 * must agree) or forced with options.format; docs/FORMATS.md lists every format with its fields and rendering.
 *
 * Bad input: malformed JSON, invalid UTF-8, a missing required field or a field of the wrong type is an error
 * naming FILE:LINE (and the element index in a JSON array) and the field. Rows that parse but cannot train — an
 * unknown role, turns that do not alternate, an empty assistant answer… (hone_drop_reason) — are dropped and
 * counted in hone_dataset_stats, or are errors when options.strict is set. Nothing is skipped silently.
 */
#ifndef HONE_DATASET_H
#define HONE_DATASET_H

#include "hone/base.h"
#include "hone/conversation.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    HONE_FORMAT_AUTO = 0,
    HONE_FORMAT_ALPACA,        /* instruction, input, output [, system, history] */
    HONE_FORMAT_SHAREGPT,      /* conversations: [{from, value}] (human/gpt/system/function_call/observation) */
    HONE_FORMAT_MESSAGES,      /* OpenAI messages: [{role, content}] */
    HONE_FORMAT_DOLLY,         /* instruction, context, response [, category] */
    HONE_FORMAT_OASST,         /* OpenAssistant message trees: best-ranked path */
    HONE_FORMAT_SNI,           /* Super-NaturalInstructions tasks: Definition, Positive Examples, Instances */
    HONE_FORMAT_SELF_INSTRUCT, /* self-instruct seed tasks: instruction, instances: [{input, output}] */
    HONE_FORMAT_TEXT,          /* text */
    HONE_FORMAT_TOKENS,        /* input_ids [, labels] */
    HONE_FORMAT_PREFERENCE,    /* prompt / chosen / rejected (TRL), chosen_messages / rejected_messages, hh-rlhf */
    HONE_FORMAT_COUNT
} hone_dataset_format;

typedef enum {
    HONE_EXAMPLE_SFT = 0,    /* conversation */
    HONE_EXAMPLE_TEXT,       /* text */
    HONE_EXAMPLE_TOKENS,     /* input_ids, labels */
    HONE_EXAMPLE_PREFERENCE, /* conversation = the prompt; chosen, rejected = the two completions */
    HONE_EXAMPLE_KTO,        /* conversation, label */
    HONE_EXAMPLE_KIND_COUNT
} hone_example_kind;

/* Why a row was dropped (or, in strict mode, refused). */
typedef enum {
    HONE_DROP_UNKNOWN_ROLE = 0, /* a message's role is not a known role or alias */
    HONE_DROP_BAD_TOOL_CALL,    /* a sharegpt function_call whose value is not JSON {"name", "arguments"} */
    HONE_DROP_IDENTICAL_PAIR,   /* chosen and rejected are the same */
    HONE_DROP_BAD_TURNS,        /* turns do not alternate user/assistant, or do not end with an assistant turn */
    HONE_DROP_EMPTY_ANSWER,     /* an assistant message (or completion) with no text and no tool calls */
    HONE_DROP_EMPTY_TEXT,       /* an empty text or input_ids row */
    HONE_DROP_COUNT
} hone_drop_reason;

/* FastChat conversation templates, as axolotl's legacy `type: sharegpt` datasets name them (dataset option
 * `conversation`). A conversation with one is not rendered by the chat template: hone_render_example splits it into
 * the template's turns (FastChat's Conversation.get_turns as axolotl patches it: the system prompt, then one turn per
 * message, role prefix + content + separator) and tokenizes each turn on its own, with the tokenizer's special tokens,
 * BOS kept on the first (system) turn only and EOS appended to assistant turns that do not end with it — exactly
 * axolotl's ShareGPTPromptTokenizingStrategy. Labels: the system turn and the role prefix of each turn (the tokens of
 * the prefix without trailing whitespace) are never trained; the rest of a trained turn is, with its last special
 * token following train_on_eos (hone/render.h). */
typedef enum {
    HONE_CONVERSATION_NONE = 0,    /* the chat template renders the conversation whole */
    HONE_CONVERSATION_VICUNA_V1_1, /* "vicuna_v1.1": SYSTEM USER: q ASSISTANT: a</s>USER: ... */
    HONE_CONVERSATION_LLAMA_2,     /* "llama-2": [INST] <<SYS>>\n...\n<</SYS>>\n\nq [/INST] a</s><s> [INST] ... */
    HONE_CONVERSATION_CHATML,      /* "chatml" (axolotl's: default system "You are a helpful assistant.") */
    HONE_CONVERSATION_COUNT
} hone_conversation_style;

typedef struct {
    hone_example_kind kind;
    size_t line;  /* 1-based line of the file where the row starts */
    size_t index; /* 0-based index of the row: the JSON array element, or the count of non-blank JSONL lines before */
    hone_conversation conversation; /* SFT, KTO: the conversation; PREFERENCE: the prompt (ends with a user turn) */
    hone_conversation chosen;       /* PREFERENCE: the completions (start with an assistant turn) */
    hone_conversation rejected;
    int label;          /* KTO: 1 = desirable, 0 = undesirable */
    char *text;         /* TEXT */
    char *instruction;  /* alpaca, dolly, self_instruct rows: the instruction and input fields as given ("" when */
    char *input;        /* absent); the last user turn joins them. NULL for other formats */
    int32_t *input_ids; /* TOKENS: n_tokens ids, and labels (NULL when the row had none; -100 = not */
    int32_t *labels;    /* trained) */
    size_t n_tokens;
    hone_conversation_style conversation_style; /* SFT: the dataset option conversation (NONE: chat template) */
} hone_example;

typedef struct {
    hone_dataset_format format; /* detected, or the one forced */
    hone_example_kind kind;
    size_t rows;     /* JSON objects read */
    size_t examples; /* examples produced (an SNI task or self-instruct row gives several) */
    size_t dropped;  /* the sum of dropped_by */
    size_t dropped_by[HONE_DROP_COUNT];
    size_t first_dropped_line[HONE_DROP_COUNT]; /* line of the first drop of each reason; 0 when none */
} hone_dataset_stats;

/* Column mapping in the axolotl / LLaMA-Factory way. Plain strings, so that a YAML `datasets:` entry fills it
 * key by key (hone_dataset_option_set); NULL means the default written after each field. The struct keeps the
 * pointers: the strings must outlive every call that uses the options. */
typedef struct {
    const char *format; /* NULL or "auto": detect; else a hone_dataset_format_name ("openai" = "messages") */
    int strict;         /* 1: a row that would be dropped is an error instead */
    /* conversations (sharegpt, messages, oasst and message-list preference rows) */
    const char *field_messages;        /* NULL: "conversations", else "messages" (whichever the row has) */
    const char *message_field_role;    /* NULL: "from", else "role" (whichever the message has) */
    const char *message_field_content; /* NULL: "value", else "content" (oasst: "text") */
    /* Extra role aliases, comma-separated ("customer,client"); built in: user = user, human, prompter;
     * assistant = assistant, gpt, bot, model; system = system; tool = tool, observation, function. These take
     * precedence over the built-in ones; one alias under two roles is an error. */
    const char *roles_user;
    const char *roles_assistant;
    const char *roles_system;
    const char *roles_tool;
    /* instruction rows (alpaca, dolly, self_instruct) */
    const char *field_instruction; /* NULL: "instruction" */
    const char *field_input;       /* NULL: "input" (dolly: "context") */
    const char *field_output;      /* NULL: "output" (dolly: "response") */
    const char *field_system;      /* NULL: "system" (also a conversation's system prompt when it has none) */
    const char *field_history;     /* NULL: "history" ([[query, answer], ...] before the instruction) */
    /* preference and KTO rows */
    const char *field_prompt;   /* NULL: "prompt" */
    const char *field_chosen;   /* NULL: "chosen", else "chosen_messages" */
    const char *field_rejected; /* NULL: "rejected", else "rejected_messages" */
    const char *field_label;    /* NULL: "label" (LLaMA-Factory's kto_tag: a boolean) */
    /* other rows */
    const char *field_text;  /* NULL: "text" */
    const char *field_tools; /* NULL: "tools" (a JSON array, or a string holding one) */
    /* rendering: NULL, or a hone_conversation_style name (vicuna_v1.1, llama-2, chatml) set on every example; only
     * conversations to train on (SFT) take one: other rows are an error */
    const char *conversation;
} hone_dataset_options;

typedef struct {
    const char *name; /* the hone_dataset_options member, and its YAML key */
    int is_bool;      /* strict; every other option is a string */
    const char *help; /* one line, with the default */
} hone_dataset_option_info;

/* The options: strict, then the string options in struct order (n receives their count). */
const hone_dataset_option_info *hone_dataset_option_list(size_t *n);
/* Sets one option by name (strict takes "true" / "false"); the value is kept, not copied. An unknown name or
 * value is an HONE_ERR_INVALID error. */
hone_status hone_dataset_option_set(hone_dataset_options *o, const char *name, const char *value);

const char *hone_dataset_format_name(hone_dataset_format f);
/* "auto", a format name, or "openai" (= messages); anything else is an error listing the names. */
hone_status hone_dataset_format_parse(const char *name, hone_dataset_format *out);
const char *hone_example_kind_name(hone_example_kind k); /* sft, text, tokens, preference, kto */
const char *hone_drop_reason_name(hone_drop_reason r);   /* unknown_role, bad_tool_call, … */
const char *hone_conversation_style_name(hone_conversation_style s); /* "none", "vicuna_v1.1", … */
/* A FastChat template name, or NULL / "none" (= HONE_CONVERSATION_NONE); anything else is an error listing them. */
hone_status hone_conversation_style_parse(const char *name, hone_conversation_style *out);

/* Called once per example, in file order. The callback may take the example's contents (copy the struct and
 * zero *ex); whatever it leaves is freed after it returns. A non-OK return stops the reading with that status. */
typedef hone_status (*hone_example_fn)(hone_example *ex, void *ctx);

/* Streams the examples of a file to fn without keeping them. stats (may be NULL) receives the counts, also on
 * error (what was read until then). o may be NULL (all defaults). */
hone_status hone_dataset_read(const char *path, const hone_dataset_options *o, hone_example_fn fn, void *ctx,
                              hone_dataset_stats *stats);

typedef struct {
    hone_example *examples;
    size_t n_examples;
    hone_dataset_stats stats;
} hone_dataset;

/* Reads every example into memory. On error *ds is left empty. */
hone_status hone_dataset_load(hone_dataset *ds, const char *path, const hone_dataset_options *o);
void hone_dataset_free(hone_dataset *ds);
void hone_example_free(hone_example *ex);

/* One example as a canonical JSON object, one line, no newline (free with free()):
 *     SFT         {"messages": [M...], "tools": [...]}          (tools only when present)
 *     TEXT        {"text": "..."}
 *     TOKENS      {"input_ids": [...], "labels": [...]}          (labels only when present)
 *     PREFERENCE  {"prompt": [M...], "chosen": [M...], "rejected": [M...], "tools": [...]}
 *     KTO         {"messages": [M...], "label": true|false, "tools": [...]}
 * where M = {"role", "content", "weight" (0/1, only when set), "name", "tool_call_id", "tool_calls" (each when
 * set)}.
 * Reading such rows back gives the same examples, so converting a converted file changes nothing. */
char *hone_example_to_json(const hone_example *ex);

/* Reads `in` and writes its examples to `out` as canonical JSONL, atomically (nothing at `out` on error).
 * stats (may be NULL) receives the counts. */
hone_status hone_dataset_convert(const char *in, const char *out, const hone_dataset_options *o,
                                 hone_dataset_stats *stats);
/* The counts as one line of JSON (free with free()): {"format", "kind", "rows", "examples", "dropped",
 * "dropped_by": {reason: count, ...}}; NULL when out of memory. */
char *hone_dataset_stats_to_json(const hone_dataset_stats *s);

#ifdef __cplusplus
}
#endif
#endif
