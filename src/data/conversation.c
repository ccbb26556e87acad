/* Conversations: ownership of library-built message lists (see hone/conversation.h). */
#include <stdlib.h>
#include <string.h>

#include "hone/conversation.h"

void hone_message_free(hone_message *m) {
    free(m->role);
    free(m->content);
    free(m->name);
    free(m->tool_calls_json);
    free(m->tool_call_id);
    memset(m, 0, sizeof *m);
}

void hone_conversation_free(hone_conversation *c) {
    if (!c) return;
    for (size_t i = 0; i < c->n_messages; i++) hone_message_free(&c->messages[i]);
    free(c->messages);
    free(c->tools_json);
    memset(c, 0, sizeof *c);
}

hone_message *hone_conversation_last(const hone_conversation *c, const char *role) {
    for (size_t i = c->n_messages; i > 0; i--)
        if (!strcmp(c->messages[i - 1].role, role)) return &c->messages[i - 1];
    return NULL;
}
