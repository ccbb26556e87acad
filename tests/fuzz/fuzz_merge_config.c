/* libFuzzer target: mergekit config parsing (hone merge's YAML) must reject any input with an error, never crash;
 * a config it accepts must evaluate each of its global parameters for any tensor and layer position. */
#include <stdlib.h>
#include <string.h>

#include "merge/merge_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    hone_merge_config *c;
    if (hone_merge_config_parse(&c, (const char *)data, size, "fuzz/merge.yaml") != HONE_OK) return 0;
    static const char *const tensors[] = {"model.layers.0.mlp.down_proj.weight", "model.embed_tokens.weight", ""};
    for (size_t i = 0; i < c->params.n; i++)
        for (size_t k = 0; k < sizeof tensors / sizeof *tensors; k++) {
            double value;
            merge_setting_eval(&c->params.items[i].value, tensors[k], k * 0.5, &value);
        }
    hone_merge_config_free(c);
    return 0;
}
