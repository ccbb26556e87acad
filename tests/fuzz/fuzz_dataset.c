/* libFuzzer target: dataset files (JSONL, JSON arrays, single objects, gzip) in every format must load or fail
 * cleanly, and every example read must serialise. The first input byte picks the file name's extension (bit 0:
 * .jsonl or .json), strict mode (bit 1) and the format option (bits 2-5: auto, then each format); the rest is the
 * file, written to a temporary path (the reader maps files). */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "hone/dataset.h"

static hone_status serialise(hone_example *ex, void *ctx) {
    (void)ctx;
    char *json = hone_example_to_json(ex);
    if (!json) return HONE_ERR_NOMEM;
    free(json);
    return HONE_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char jsonl[64], json[64];
    if (size < 1) return 0;
    if (!jsonl[0]) {
        snprintf(jsonl, sizeof jsonl, "/tmp/hone-fuzz-%ld.jsonl", (long)getpid());
        snprintf(json, sizeof json, "/tmp/hone-fuzz-%ld.json", (long)getpid());
    }
    const char *path = data[0] & 1 ? jsonl : json;
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    fwrite(data + 1, 1, size - 1, f);
    fclose(f);
    hone_dataset_options o = {.strict = (data[0] >> 1) & 1};
    const int format = (data[0] >> 2) & 15;
    if (format < HONE_FORMAT_COUNT) o.format = hone_dataset_format_name((hone_dataset_format)format);
    hone_dataset_stats stats;
    hone_dataset_read(path, &o, serialise, NULL, &stats);
    unlink(path);
    return 0;
}
