/* libFuzzer target: JSONL token rows ({"input_ids": [...]}) and llm.c shards must load or fail cleanly. The
 * first input byte picks the format; the rest is the file, written to a temporary path (the loader reads files). */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "hone/data.h"

static char jsonl_path[64], shard_path[64];

static void make_paths(void) {
    if (jsonl_path[0]) return;
    snprintf(jsonl_path, sizeof jsonl_path, "/tmp/hone-fuzz-%ld.jsonl", (long)getpid());
    snprintf(shard_path, sizeof shard_path, "/tmp/hone-fuzz-%ld.bin", (long)getpid());
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    make_paths();
    const char *path = data[0] & 1 ? shard_path : jsonl_path;
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    fwrite(data + 1, 1, size - 1, f);
    fclose(f);
    hone_token_stream s;
    if (hone_tokens_load(&s, path, 1000) == HONE_OK) hone_tokens_free(&s);
    unlink(path);
    return 0;
}
