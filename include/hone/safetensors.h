/* hone/safetensors.h — validated, memory-mapped safetensors files, sharded checkpoints, atomic writer.
 *
 *     hone_checkpoint ck;
 *     if (hone_checkpoint_open(&ck, "models/gpt2") != HONE_OK) die(hone_error());
 *     const hone_st_tensor *t = hone_checkpoint_find(&ck, "transformer.wte.weight");
 *     float *w = malloc(t->numel * sizeof(float));
 *     hone_st_tensor_to_f32(t, w);     // F32, F16, BF16 converted on load
 *     hone_checkpoint_close(&ck);
 *
 * Opening validates everything before any tensor is touched: the 8-byte header length is within the file and
 * at most HONE_ST_MAX_HEADER bytes; the header is a JSON object; every tensor has a known dtype, a shape whose
 * element count × item size equals its byte span, and a span inside the data section; spans do not overlap.
 * Every violation is an error naming the file and the tensor.
 */
#ifndef HONE_SAFETENSORS_H
#define HONE_SAFETENSORS_H

#include "hone/base.h"
#include "hone/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#define HONE_ST_MAX_HEADER (100u * 1024u * 1024u) /* 100 MB, as the reference implementation */
#define HONE_ST_MAX_DIMS 8

typedef struct {
    char *name;
    hone_dtype dtype;
    int ndim;
    int64_t shape[HONE_ST_MAX_DIMS];
    int64_t numel;
    const uint8_t *data; /* points into the mapping; aligned to the item size only when the writer aligned it
                            (all common writers do) — hone_st_tensor_to_f32 copes with either */
    size_t nbytes;
    const char *file_path; /* the file that holds it (for error messages) */
} hone_st_tensor;

typedef struct {
    hone_mapped_file file;
    hone_st_tensor *tensors; /* in header order */
    size_t n_tensors;
    char *metadata_json; /* the "__metadata__" object serialised, or NULL */
    int borrowed;        /* file.data is the caller's buffer (hone_st_open_memory), not a mapping */
} hone_st_file;

hone_status hone_st_open(hone_st_file *f, const char *path);
/* Validates and indexes a safetensors image already in memory, with the same checks as hone_st_open. The
 * bytes are not copied: they must outlive `f`. `name` stands for the file in error messages. */
hone_status hone_st_open_memory(hone_st_file *f, const void *data, size_t size, const char *name);
void hone_st_close(hone_st_file *f);
const hone_st_tensor *hone_st_find(const hone_st_file *f, const char *name);
/* Converts a floating tensor to f32 into `out` (numel floats). Error for non-float dtypes. */
hone_status hone_st_tensor_to_f32(const hone_st_tensor *t, float *out);

/* A model folder's weights: model.safetensors, or the shards listed by model.safetensors.index.json
 * (every shard validated; the index's weight_map must agree with the shards' contents: each listed tensor is
 * in the shard named for it, and no shard holds a tensor the index does not list or another shard holds).
 * `dir` may also be the path of a single .safetensors file. */
typedef struct {
    hone_st_file *files;
    size_t n_files;
    const hone_st_tensor **by_name; /* all tensors sorted by name, for lookup */
    size_t n_tensors;
} hone_checkpoint;

hone_status hone_checkpoint_open(hone_checkpoint *c, const char *dir);
void hone_checkpoint_close(hone_checkpoint *c);
const hone_st_tensor *hone_checkpoint_find(const hone_checkpoint *c, const char *name);

/* Writer. Tensors are written in the given order with 8-byte aligned header padding, metadata
 * {"format":"pt"}, atomically (temp file, fsync, rename). `data` holds numel elements of `dtype` (may be NULL
 * when numel is 0). Names must be non-empty, unique and not "__metadata__". */
typedef struct {
    const char *name;
    hone_dtype dtype;
    int ndim;
    int64_t shape[HONE_ST_MAX_DIMS];
    const void *data;
} hone_st_entry;

hone_status hone_st_write(const char *path, const hone_st_entry *entries, size_t n_entries);

/* Streaming writer, for files larger than memory: the header is written from the entries' names, dtypes and
 * shapes (their `data` is not read and may be NULL), then the tensors' bytes are appended in entry order by
 * any number of hone_st_stream_write calls. Commit checks that exactly the announced bytes arrived, then
 * fsyncs and renames the file into place; abort removes it. Same checks and layout as hone_st_write. */
typedef struct {
    hone_atomic_file af;
    uint64_t remaining; /* data bytes still expected */
} hone_st_stream;

hone_status hone_st_stream_open(hone_st_stream *s, const char *path, const hone_st_entry *entries, size_t n_entries);
hone_status hone_st_stream_write(hone_st_stream *s, const void *data, size_t n);
hone_status hone_st_stream_commit(hone_st_stream *s);
void hone_st_stream_abort(hone_st_stream *s);

#ifdef __cplusplus
}
#endif
#endif
