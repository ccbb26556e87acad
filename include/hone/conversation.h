/* hone/conversation.h — a conversation: the common form every instruction-data format parses into and every chat
 * template renders from.
 *
 *     hone_message turns[] = {
 *         {.role = "system", .content = "You are terse.", .weight = -1},
 *         {.role = "user", .content = "2+2?", .weight = -1},
 *         {.role = "assistant", .content = "4", .weight = -1},
 *     };
 *     hone_conversation c = {.messages = turns, .n_messages = 3};
 *
 * Roles are the strings chat templates test for: "system", "user", "assistant" and "tool" (dataset roles such as
 * sharegpt's human/gpt/observation are mapped onto these when a dataset is parsed). All strings are UTF-8 and
 * NUL-terminated; a conversation owns them when it was built by the library (hone_conversation_free releases it).
 */
#ifndef HONE_CONVERSATION_H
#define HONE_CONVERSATION_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    char *role;            /* "system" | "user" | "assistant" | "tool" */
    char *content;         /* the message text (typed text parts already joined) */
    int weight;            /* 1 = train on this message, 0 = do not, -1 = the default for its role */
    char *name;            /* optional speaker or function name; NULL when absent */
    char *tool_calls_json; /* optional OpenAI-style tool_calls as a JSON array; NULL when absent */
    char *tool_call_id;    /* optional: the id of the tool call a "tool" message answers; NULL when absent */
} hone_message;

typedef struct {
    hone_message *messages;
    size_t n_messages;
    char *tools_json; /* optional tool/function definitions as a JSON array; NULL when absent */
} hone_conversation;

/* Releases the strings of one library-built message and zeroes it. */
void hone_message_free(hone_message *m);
/* Releases the strings and the message array of a library-built conversation and zeroes it. */
void hone_conversation_free(hone_conversation *c);
/* The last message whose role is `role`, or NULL. */
hone_message *hone_conversation_last(const hone_conversation *c, const char *role);

#ifdef __cplusplus
}
#endif

#endif
