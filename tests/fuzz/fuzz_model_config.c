/* libFuzzer target: config.json parsing must reject any input with an error, never crash. */
#include <stdlib.h>
#include <string.h>

#include "hone/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    hone_log_set_level(HONE_LOG_ERROR); /* dropout warnings would flood the output */
    hone_model_config c;
    if (hone_model_config_parse(&c, text, "fuzz/config.json") == HONE_OK) {
        char *again = hone_model_config_to_json(&c);
        free(again);
    }
    free(text);
    return 0;
}
