/* Conversations: ownership of library-built message lists (see hone/conversation.h). */
#include <stdlib.h>
#include <string.h>

#include "hone/conversation.h"

void hone_conversation_free(hone_conversation *c) {
    if (!c) return;
    for (size_t i = 0; i < c->n_messages; i++) {
        hone_message *m = &c->messages[i];
        free(m->role);
        free(m->content);
        free(m->name);
        free(m->tool_calls_json);
    }
    free(c->messages);
    free(c->tools_json);
    memset(c, 0, sizeof *c);
}
