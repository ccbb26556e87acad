/* Safetensors: an 8-byte little-endian header length N, N bytes of JSON describing each tensor (dtype, shape,
 * [begin, end) byte offsets into the data section that follows), then the data. The whole file is mapped and
 * the header is checked completely before any tensor is handed out, so that a corrupt or hostile file is an
 * error message, never an out-of-bounds read. */
#include "hone/safetensors.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian and is used in place; big-endian hosts are not supported"
#endif

#define HINT_CORRUPT "the file is corrupted or was not written by a safetensors writer"

static void format_shape(char *buf, size_t cap, int ndim, const int64_t *shape) {
    size_t n = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
}

static void format_dtype_list(char *buf, size_t cap) {
    size_t n = 0;
    buf[0] = 0;
    for (int t = 0; t < HONE_DTYPE_COUNT && n < cap; t++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%s", t ? ", " : "", hone_dtype_name((hone_dtype)t));
}

/* numel = product of the dims, or -1 when it does not fit in int64. */
static int64_t shape_numel(int ndim, const int64_t *shape) {
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++)
        if (__builtin_mul_overflow(numel, shape[i], &numel)) return -1;
    return numel;
}

static int json_is_nonneg_int(const json_t *v) { return json_is_integer(v) && json_integer_value(v) >= 0; }

static hone_status parse_shape(const char *path, const char *name, const json_t *shape, hone_st_tensor *t) {
    if (!json_is_array(shape))
        return hone_errorf(HONE_ERR_FORMAT, "%s: tensor '%s': \"shape\" is missing or not an array; %s", path, name,
                           HINT_CORRUPT);
    size_t ndim = json_array_size(shape);
    if (ndim > HONE_ST_MAX_DIMS)
        return hone_errorf(HONE_ERR_UNSUPPORTED, "%s: tensor '%s': shape has %zu dimensions; at most %d are supported",
                           path, name, ndim, HONE_ST_MAX_DIMS);
    t->ndim = (int)ndim;
    for (size_t i = 0; i < ndim; i++) {
        const json_t *d = json_array_get(shape, i);
        if (!json_is_nonneg_int(d))
            return hone_errorf(HONE_ERR_FORMAT,
                               "%s: tensor '%s': shape dimension %zu is not a non-negative integer; %s", path, name, i,
                               HINT_CORRUPT);
        t->shape[i] = (int64_t)json_integer_value(d);
    }
    t->numel = shape_numel(t->ndim, t->shape);
    if (t->numel < 0) {
        char s[256];
        format_shape(s, sizeof s, t->ndim, t->shape);
        return hone_errorf(HONE_ERR_FORMAT, "%s: tensor '%s': shape %s has too many elements (overflow); %s", path,
                           name, s, HINT_CORRUPT);
    }
    return HONE_OK;
}

/* Fills t from one header entry; *begin and *end receive its span within the data section. */
static hone_status parse_entry(const char *path, const char *name, const json_t *entry, const uint8_t *data,
                               uint64_t data_size, hone_st_tensor *t, uint64_t *begin, uint64_t *end) {
    if (!json_is_object(entry))
        return hone_errorf(HONE_ERR_FORMAT,
                           "%s: tensor '%s': entry is not a JSON object; expected {\"dtype\", \"shape\", "
                           "\"data_offsets\"}; %s",
                           path, name, HINT_CORRUPT);
    const json_t *dtype = json_object_get(entry, "dtype");
    if (!json_is_string(dtype))
        return hone_errorf(HONE_ERR_FORMAT, "%s: tensor '%s': \"dtype\" is missing or not a string; %s", path, name,
                           HINT_CORRUPT);
    if (!hone_dtype_from_name(json_string_value(dtype), &t->dtype)) {
        char known[256];
        format_dtype_list(known, sizeof known);
        return hone_errorf(HONE_ERR_UNSUPPORTED, "%s: tensor '%s': unknown dtype '%s'; supported dtypes: %s", path,
                           name, json_string_value(dtype), known);
    }
    HONE_TRY(parse_shape(path, name, json_object_get(entry, "shape"), t));

    const json_t *offsets = json_object_get(entry, "data_offsets");
    if (!json_is_array(offsets) || json_array_size(offsets) != 2 || !json_is_nonneg_int(json_array_get(offsets, 0)) ||
        !json_is_nonneg_int(json_array_get(offsets, 1)))
        return hone_errorf(HONE_ERR_FORMAT,
                           "%s: tensor '%s': \"data_offsets\" is missing or not [begin, end] with non-negative "
                           "integers; %s",
                           path, name, HINT_CORRUPT);
    *begin = (uint64_t)json_integer_value(json_array_get(offsets, 0));
    *end = (uint64_t)json_integer_value(json_array_get(offsets, 1));
    if (*begin > *end)
        return hone_errorf(HONE_ERR_FORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] has begin after end; %s", path,
                           name, (unsigned long long)*begin, (unsigned long long)*end, HINT_CORRUPT);
    if (*end > data_size)
        return hone_errorf(HONE_ERR_FORMAT,
                           "%s: tensor '%s': data_offsets [%llu, %llu] end past the data section (%llu bytes); "
                           "the file is truncated or corrupted",
                           path, name, (unsigned long long)*begin, (unsigned long long)*end,
                           (unsigned long long)data_size);
    uint64_t nbytes;
    if (__builtin_mul_overflow((uint64_t)t->numel, (uint64_t)hone_dtype_size(t->dtype), &nbytes) ||
        nbytes != *end - *begin) {
        char s[256];
        format_shape(s, sizeof s, t->ndim, t->shape);
        return hone_errorf(HONE_ERR_FORMAT,
                           "%s: tensor '%s': dtype %s with shape %s does not match data_offsets [%llu, %llu] "
                           "(%llu bytes); %s",
                           path, name, hone_dtype_name(t->dtype), s, (unsigned long long)*begin,
                           (unsigned long long)*end, (unsigned long long)(*end - *begin), HINT_CORRUPT);
    }
    t->data = data + *begin;
    t->nbytes = (size_t)nbytes;
    return HONE_OK;
}

static hone_status parse_metadata(hone_st_file *f, const json_t *meta) {
    const char *key;
    const json_t *value;
    if (!json_is_object(meta))
        return hone_errorf(HONE_ERR_FORMAT, "%s: \"__metadata__\" is not a JSON object; %s", f->file.path,
                           HINT_CORRUPT);
    json_object_foreach((json_t *)meta, key, value) {
        if (!json_is_string(value))
            return hone_errorf(HONE_ERR_FORMAT, "%s: \"__metadata__\" value '%s' is not a string; %s", f->file.path,
                               key, HINT_CORRUPT);
    }
    f->metadata_json = json_dumps(meta, JSON_COMPACT);
    if (!f->metadata_json) return hone_errorf(HONE_ERR_NOMEM, "%s: out of memory", f->file.path);
    return HONE_OK;
}

typedef struct {
    uint64_t begin, end;
    size_t index;
} span;

static int span_cmp(const void *pa, const void *pb) {
    const span *a = pa, *b = pb;
    if (a->begin != b->begin) return a->begin < b->begin ? -1 : 1;
    if (a->end != b->end) return a->end < b->end ? -1 : 1;
    return 0;
}

/* Spans may leave gaps (the reference writer never does, but nothing breaks), yet two tensors sharing bytes
 * would alias each other. Empty spans hold no bytes and so overlap nothing. */
static hone_status check_overlaps(const hone_st_file *f, span *spans, size_t n) {
    qsort(spans, n, sizeof *spans, span_cmp);
    const span *widest = NULL; /* the non-empty span reaching furthest so far */
    for (size_t i = 0; i < n; i++) {
        const span *s = &spans[i];
        if (s->begin == s->end) continue;
        if (widest && s->begin < widest->end)
            return hone_errorf(HONE_ERR_FORMAT,
                               "%s: tensor '%s': data_offsets [%llu, %llu] overlap tensor '%s' [%llu, %llu]; %s",
                               f->file.path, f->tensors[s->index].name, (unsigned long long)s->begin,
                               (unsigned long long)s->end, f->tensors[widest->index].name,
                               (unsigned long long)widest->begin, (unsigned long long)widest->end, HINT_CORRUPT);
        if (!widest || s->end > widest->end) widest = s;
    }
    return HONE_OK;
}

static hone_status parse_tensors(hone_st_file *f, json_t *root, const uint8_t *data, uint64_t data_size) {
    size_t cap = json_object_size(root);
    f->tensors = calloc(cap ? cap : 1, sizeof *f->tensors);
    span *spans = calloc(cap ? cap : 1, sizeof *spans);
    if (!f->tensors || !spans) {
        free(spans);
        return hone_errorf(HONE_ERR_NOMEM, "%s: out of memory for %zu tensors", f->file.path, cap);
    }
    hone_status st = HONE_OK;
    const char *key;
    json_t *value;
    json_object_foreach(root, key, value) {
        if (strcmp(key, "__metadata__") == 0) {
            st = parse_metadata(f, value);
        } else {
            size_t i = f->n_tensors;
            f->tensors[i].name = strdup(key);
            if (!f->tensors[i].name) {
                st = hone_errorf(HONE_ERR_NOMEM, "%s: out of memory", f->file.path);
                break;
            }
            f->tensors[i].file_path = f->file.path;
            f->n_tensors++;
            spans[i].index = i;
            st = parse_entry(f->file.path, key, value, data, data_size, &f->tensors[i], &spans[i].begin, &spans[i].end);
        }
        if (st != HONE_OK) break;
    }
    if (st == HONE_OK) st = check_overlaps(f, spans, f->n_tensors);
    free(spans);
    return st;
}

/* Validates f->file (already mapped or borrowed) and indexes its tensors. */
static hone_status parse_image(hone_st_file *f) {
    const char *path = f->file.path;
    const uint8_t *bytes = f->file.data;
    size_t size = f->file.size;
    if (size < 8)
        return hone_errorf(HONE_ERR_FORMAT,
                           "%s: file is %zu bytes, too short to hold the 8-byte header length; it is truncated or "
                           "not a safetensors file",
                           path, size);
    uint64_t header_len;
    memcpy(&header_len, bytes, 8);
    if (header_len > HONE_ST_MAX_HEADER)
        return hone_errorf(HONE_ERR_FORMAT,
                           "%s: header length %llu exceeds the %u-byte limit; it is not a safetensors file or the "
                           "header is corrupted",
                           path, (unsigned long long)header_len, HONE_ST_MAX_HEADER);
    if (header_len > size - 8)
        return hone_errorf(HONE_ERR_FORMAT,
                           "%s: header length %llu but only %zu bytes follow it; the file is truncated (an "
                           "interrupted download or copy?)",
                           path, (unsigned long long)header_len, size - 8);
    json_error_t jerr;
    json_t *root =
        json_loadb((const char *)bytes + 8, (size_t)header_len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!root)
        return hone_errorf(HONE_ERR_FORMAT, "%s: header is not valid JSON: %s (at header byte %d); %s", path, jerr.text,
                           jerr.position, HINT_CORRUPT);
    hone_status st;
    if (!json_is_object(root))
        st = hone_errorf(HONE_ERR_FORMAT, "%s: header is JSON but not an object; %s", path, HINT_CORRUPT);
    else st = parse_tensors(f, root, bytes + 8 + header_len, size - 8 - header_len);
    json_decref(root);
    return st;
}

hone_status hone_st_open(hone_st_file *f, const char *path) {
    memset(f, 0, sizeof *f);
    HONE_TRY(hone_file_map(&f->file, path));
    hone_status st = parse_image(f);
    if (st != HONE_OK) hone_st_close(f);
    return st;
}

hone_status hone_st_open_memory(hone_st_file *f, const void *data, size_t size, const char *name) {
    memset(f, 0, sizeof *f);
    f->borrowed = 1;
    f->file.data = data;
    f->file.size = size;
    f->file.path = strdup(name);
    if (!f->file.path) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    hone_status st = parse_image(f);
    if (st != HONE_OK) hone_st_close(f);
    return st;
}

void hone_st_close(hone_st_file *f) {
    for (size_t i = 0; i < f->n_tensors; i++) free(f->tensors[i].name);
    free(f->tensors);
    free(f->metadata_json);
    if (f->borrowed) free(f->file.path);
    else hone_file_unmap(&f->file);
    memset(f, 0, sizeof *f);
}

const hone_st_tensor *hone_st_find(const hone_st_file *f, const char *name) {
    for (size_t i = 0; i < f->n_tensors; i++)
        if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}

hone_status hone_st_tensor_to_f32(const hone_st_tensor *t, float *out) {
    if (!hone_convert_to_f32(out, t->data, t->dtype, (size_t)t->numel))
        return hone_errorf(HONE_ERR_UNSUPPORTED,
                           "%s: tensor '%s': dtype %s is not a floating type and cannot be converted to f32",
                           t->file_path, t->name, hone_dtype_name(t->dtype));
    return HONE_OK;
}

/* ---- checkpoints ---- */

static int tensor_ptr_cmp(const void *pa, const void *pb) {
    const hone_st_tensor *a = *(const hone_st_tensor *const *)pa, *b = *(const hone_st_tensor *const *)pb;
    return strcmp(a->name, b->name);
}

/* Collects every tensor of every file into c->by_name, sorted; a name in two files is an error. */
static hone_status build_name_index(hone_checkpoint *c) {
    size_t total = 0;
    for (size_t i = 0; i < c->n_files; i++) total += c->files[i].n_tensors;
    c->by_name = malloc((total ? total : 1) * sizeof *c->by_name);
    if (!c->by_name) return hone_errorf(HONE_ERR_NOMEM, "out of memory for %zu tensor names", total);
    for (size_t i = 0; i < c->n_files; i++)
        for (size_t j = 0; j < c->files[i].n_tensors; j++) c->by_name[c->n_tensors++] = &c->files[i].tensors[j];
    qsort(c->by_name, c->n_tensors, sizeof *c->by_name, tensor_ptr_cmp);
    for (size_t i = 1; i < c->n_tensors; i++) {
        const hone_st_tensor *a = c->by_name[i - 1], *b = c->by_name[i];
        if (strcmp(a->name, b->name) == 0)
            return hone_errorf(HONE_ERR_FORMAT,
                               "%s: tensor '%s' is also in %s; a checkpoint's shards must not share tensors",
                               b->file_path, b->name, a->file_path);
    }
    return HONE_OK;
}

static hone_status open_single(hone_checkpoint *c, const char *path) {
    c->files = calloc(1, sizeof *c->files);
    if (!c->files) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    HONE_TRY(hone_st_open(&c->files[0], path));
    c->n_files = 1;
    return build_name_index(c);
}

static size_t shard_position(const char **shards, size_t n, const char *shard) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(shards[i], shard) == 0) return i;
    return n;
}

/* Opens the distinct shards named in weight_map and checks that the map and the shards agree. `shards` has
 * room for one entry per map entry. */
static hone_status open_shards(hone_checkpoint *c, const char *dir, const char *index_path, json_t *map,
                               const char **shards) {
    size_t n_shards = 0;
    const char *name;
    json_t *value;
    json_object_foreach(map, name, value) {
        const char *shard = json_string_value(value);
        if (!shard || !shard[0] || strchr(shard, '/'))
            return hone_errorf(HONE_ERR_FORMAT,
                               "%s: tensor '%s': weight_map value must be a shard file name in the same folder "
                               "(a non-empty string without '/')",
                               index_path, name);
        if (shard_position(shards, n_shards, shard) == n_shards) shards[n_shards++] = shard;
    }
    c->files = calloc(n_shards ? n_shards : 1, sizeof *c->files);
    if (!c->files) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n_shards; i++) {
        char *path = hone_path_join(dir, shards[i]);
        if (!path) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
        hone_status st = hone_st_open(&c->files[i], path);
        free(path);
        if (st != HONE_OK) return hone_error_context(st, "%s lists shard '%s'", index_path, shards[i]);
        c->n_files++;
    }
    HONE_TRY(build_name_index(c));

    json_object_foreach(map, name, value) {
        const hone_st_file *want = &c->files[shard_position(shards, n_shards, json_string_value(value))];
        const hone_st_tensor *t = hone_checkpoint_find(c, name);
        if (!t)
            return hone_errorf(HONE_ERR_FORMAT,
                               "%s: tensor '%s': the index maps it to %s, which does not contain it; the checkpoint "
                               "is incomplete or the index is stale",
                               index_path, name, want->file.path);
        if (t->file_path != want->file.path)
            return hone_errorf(HONE_ERR_FORMAT,
                               "%s: tensor '%s': the index maps it to %s but it is in %s; the index is stale",
                               index_path, name, want->file.path, t->file_path);
    }
    for (size_t i = 0; i < c->n_tensors; i++)
        if (!json_object_get(map, c->by_name[i]->name))
            return hone_errorf(HONE_ERR_FORMAT,
                               "%s: tensor '%s': present in shard %s but not listed in the index's weight_map; the "
                               "index is stale",
                               index_path, c->by_name[i]->name, c->by_name[i]->file_path);
    return HONE_OK;
}

static hone_status open_sharded(hone_checkpoint *c, const char *dir, const char *index_path) {
    json_error_t jerr;
    json_t *root = json_load_file(index_path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return hone_errorf(HONE_ERR_FORMAT, "%s: not valid JSON: %s (line %d); fix or regenerate the index", index_path,
                           jerr.text, jerr.line);
    json_t *map = json_object_get(root, "weight_map");
    hone_status st;
    if (!json_is_object(map)) {
        st = hone_errorf(HONE_ERR_FORMAT, "%s: no \"weight_map\" object mapping tensor names to shard files",
                         index_path);
    } else {
        const char **shards = malloc((json_object_size(map) + 1) * sizeof *shards);
        st = shards ? open_shards(c, dir, index_path, map, shards) : hone_errorf(HONE_ERR_NOMEM, "out of memory");
        free(shards);
    }
    json_decref(root);
    return st;
}

hone_status hone_checkpoint_open(hone_checkpoint *c, const char *dir) {
    memset(c, 0, sizeof *c);
    if (hone_file_exists(dir)) {
        hone_status st = open_single(c, dir);
        if (st != HONE_OK) hone_checkpoint_close(c);
        return st;
    }
    if (!hone_dir_exists(dir))
        return hone_errorf(HONE_ERR_IO, "%s: no such file or directory; expected a model folder or a .safetensors file",
                           dir);
    char *index_path = hone_path_join(dir, "model.safetensors.index.json");
    char *single_path = hone_path_join(dir, "model.safetensors");
    char *bin_path = hone_path_join(dir, "pytorch_model.bin");
    hone_status st;
    if (!index_path || !single_path || !bin_path) st = hone_errorf(HONE_ERR_NOMEM, "out of memory");
    else if (hone_file_exists(index_path)) st = open_sharded(c, dir, index_path);
    else if (hone_file_exists(single_path)) st = open_single(c, single_path);
    else if (hone_file_exists(bin_path))
        st = hone_errorf(HONE_ERR_UNSUPPORTED,
                         "%s: has only pytorch_model.bin; hone reads safetensors: convert it with transformers "
                         "(model.save_pretrained(dir, safe_serialization=True))",
                         dir);
    else
        st = hone_errorf(HONE_ERR_IO,
                         "%s: no model.safetensors or model.safetensors.index.json; is it a Hugging Face "
                         "model folder?",
                         dir);
    free(index_path);
    free(single_path);
    free(bin_path);
    if (st != HONE_OK) hone_checkpoint_close(c);
    return st;
}

void hone_checkpoint_close(hone_checkpoint *c) {
    for (size_t i = 0; i < c->n_files; i++) hone_st_close(&c->files[i]);
    free(c->files);
    free(c->by_name);
    memset(c, 0, sizeof *c);
}

static int name_vs_tensor_cmp(const void *key, const void *elem) {
    return strcmp(key, (*(const hone_st_tensor *const *)elem)->name);
}

const hone_st_tensor *hone_checkpoint_find(const hone_checkpoint *c, const char *name) {
    if (c->n_tensors == 0) return NULL;
    const hone_st_tensor *const *hit = bsearch(name, c->by_name, c->n_tensors, sizeof *c->by_name, name_vs_tensor_cmp);
    return hit ? *hit : NULL;
}

/* ---- writer ---- */

static int entry_ptr_cmp(const void *pa, const void *pb) {
    return strcmp((*(const hone_st_entry *const *)pa)->name, (*(const hone_st_entry *const *)pb)->name);
}

/* Checks one entry and returns its byte size in *nbytes. */
static hone_status check_entry(const char *path, const hone_st_entry *e, uint64_t *nbytes) {
    if (!e->name || !e->name[0] || strcmp(e->name, "__metadata__") == 0)
        return hone_errorf(HONE_ERR_INVALID,
                           "%s: tensor name '%s' is not allowed; names must be non-empty and not "
                           "\"__metadata__\"",
                           path, e->name ? e->name : "(null)");
    if ((unsigned)e->dtype >= HONE_DTYPE_COUNT)
        return hone_errorf(HONE_ERR_INVALID, "%s: tensor '%s': invalid dtype %d", path, e->name, (int)e->dtype);
    if (e->ndim < 0 || e->ndim > HONE_ST_MAX_DIMS)
        return hone_errorf(HONE_ERR_INVALID, "%s: tensor '%s': %d dimensions; between 0 and %d are allowed", path,
                           e->name, e->ndim, HONE_ST_MAX_DIMS);
    for (int i = 0; i < e->ndim; i++)
        if (e->shape[i] < 0)
            return hone_errorf(HONE_ERR_INVALID, "%s: tensor '%s': dimension %d is negative (%lld)", path, e->name, i,
                               (long long)e->shape[i]);
    int64_t numel = shape_numel(e->ndim, e->shape);
    if (numel < 0 || __builtin_mul_overflow((uint64_t)numel, (uint64_t)hone_dtype_size(e->dtype), nbytes) ||
        *nbytes > INT64_MAX) {
        char s[256];
        format_shape(s, sizeof s, e->ndim, e->shape);
        return hone_errorf(HONE_ERR_INVALID, "%s: tensor '%s': shape %s is too large", path, e->name, s);
    }
    if (*nbytes && !e->data)
        return hone_errorf(HONE_ERR_INVALID, "%s: tensor '%s': data is NULL for %llu bytes", path, e->name,
                           (unsigned long long)*nbytes);
    return HONE_OK;
}

static hone_status check_unique_names(const char *path, const hone_st_entry *entries, size_t n) {
    const hone_st_entry **sorted = malloc((n ? n : 1) * sizeof *sorted);
    if (!sorted) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) sorted[i] = &entries[i];
    qsort(sorted, n, sizeof *sorted, entry_ptr_cmp);
    hone_status st = HONE_OK;
    for (size_t i = 1; i < n && st == HONE_OK; i++)
        if (strcmp(sorted[i - 1]->name, sorted[i]->name) == 0)
            st = hone_errorf(HONE_ERR_INVALID, "%s: tensor '%s' is given twice; tensor names must be unique", path,
                             sorted[i]->name);
    free(sorted);
    return st;
}

/* Builds the header object: metadata first, then the tensors in order with contiguous offsets. */
static hone_status build_header(const char *path, const hone_st_entry *entries, size_t n, const uint64_t *nbytes,
                                json_t **out) {
    json_t *root = json_object(), *meta = json_object();
    if (!root || !meta || json_object_set_new(meta, "format", json_string("pt")) ||
        json_object_set_new(root, "__metadata__", meta)) {
        json_decref(root);
        return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    }
    uint64_t offset = 0;
    for (size_t i = 0; i < n; i++) {
        const hone_st_entry *e = &entries[i];
        /* The *_new setters take ownership even when they fail, so one flag covers every allocation. */
        json_t *info = json_object(), *shape = json_array();
        int failed = 0;
        for (int d = 0; d < e->ndim; d++) failed |= json_array_append_new(shape, json_integer(e->shape[d]));
        failed |= json_object_set_new(info, "dtype", json_string(hone_dtype_name(e->dtype)));
        failed |= json_object_set_new(info, "shape", shape);
        failed |= json_object_set_new(info, "data_offsets",
                                      json_pack("[II]", (json_int_t)offset, (json_int_t)(offset + nbytes[i])));
        if (failed) {
            json_decref(info);
            json_decref(root);
            return hone_errorf(HONE_ERR_NOMEM, "out of memory");
        }
        /* jansson refuses keys that are not valid UTF-8, which JSON requires. */
        if (json_object_set_new(root, e->name, info)) {
            json_decref(root);
            return hone_errorf(HONE_ERR_INVALID, "%s: tensor '%s': the name is not valid UTF-8", path, e->name);
        }
        offset += nbytes[i];
    }
    *out = root;
    return HONE_OK;
}

static hone_status write_file(const char *path, const char *header, const hone_st_entry *entries, size_t n,
                              const uint64_t *nbytes) {
    size_t len = strlen(header);
    /* The data section starts 8-byte aligned, as the reference writer pads the header with spaces. */
    size_t pad = (8 - len % 8) % 8;
    uint64_t header_len = (uint64_t)(len + pad);
    hone_atomic_file af;
    HONE_TRY(hone_atomic_open(&af, path));
    hone_status st = hone_atomic_write(&af, &header_len, 8);
    if (st == HONE_OK) st = hone_atomic_write(&af, header, len);
    if (st == HONE_OK) st = hone_atomic_write(&af, "        ", pad);
    for (size_t i = 0; i < n && st == HONE_OK; i++) st = hone_atomic_write(&af, entries[i].data, (size_t)nbytes[i]);
    if (st != HONE_OK) {
        hone_atomic_abort(&af);
        return st;
    }
    return hone_atomic_commit(&af);
}

hone_status hone_st_write(const char *path, const hone_st_entry *entries, size_t n_entries) {
    uint64_t *nbytes = malloc((n_entries ? n_entries : 1) * sizeof *nbytes);
    if (!nbytes) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    hone_status st = HONE_OK;
    uint64_t total = 0;
    for (size_t i = 0; i < n_entries && st == HONE_OK; i++) {
        st = check_entry(path, &entries[i], &nbytes[i]);
        if (st == HONE_OK && __builtin_add_overflow(total, nbytes[i], &total))
            st = hone_errorf(HONE_ERR_INVALID, "%s: tensors total more than 2^64 bytes", path);
    }
    if (st == HONE_OK && total > INT64_MAX)
        st = hone_errorf(HONE_ERR_INVALID, "%s: tensors total more than 2^63 bytes", path);
    if (st == HONE_OK) st = check_unique_names(path, entries, n_entries);
    json_t *root = NULL;
    if (st == HONE_OK) st = build_header(path, entries, n_entries, nbytes, &root);
    if (st == HONE_OK) {
        char *header = json_dumps(root, JSON_COMPACT);
        st = header ? write_file(path, header, entries, n_entries, nbytes)
                    : hone_errorf(HONE_ERR_NOMEM, "out of memory");
        free(header);
    }
    json_decref(root);
    free(nbytes);
    return st;
}

/* ---- streaming writer ---- */

hone_status hone_st_stream_open(hone_st_stream *s, const char *path, const hone_st_entry *entries, size_t n_entries) {
    memset(s, 0, sizeof *s);
    uint64_t *nbytes = malloc((n_entries ? n_entries : 1) * sizeof *nbytes);
    if (!nbytes) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    hone_status st = HONE_OK;
    for (size_t i = 0; i < n_entries && st == HONE_OK; i++) {
        /* The bytes come later: only the name, dtype and shape are checked here, so `data` stands in. */
        hone_st_entry e = entries[i];
        e.data = entries;
        st = check_entry(path, &e, &nbytes[i]);
        if (st == HONE_OK && __builtin_add_overflow(s->remaining, nbytes[i], &s->remaining))
            st = hone_errorf(HONE_ERR_INVALID, "%s: tensors total more than 2^64 bytes", path);
    }
    if (st == HONE_OK && s->remaining > INT64_MAX)
        st = hone_errorf(HONE_ERR_INVALID, "%s: tensors total more than 2^63 bytes", path);
    if (st == HONE_OK) st = check_unique_names(path, entries, n_entries);
    json_t *root = NULL;
    if (st == HONE_OK) st = build_header(path, entries, n_entries, nbytes, &root);
    char *header = root ? json_dumps(root, JSON_COMPACT) : NULL;
    if (st == HONE_OK && !header) st = hone_errorf(HONE_ERR_NOMEM, "out of memory");
    if (st == HONE_OK) st = hone_atomic_open(&s->af, path);
    if (st == HONE_OK) {
        size_t len = strlen(header), pad = (8 - len % 8) % 8;
        uint64_t header_len = (uint64_t)(len + pad);
        st = hone_atomic_write(&s->af, &header_len, 8);
        if (st == HONE_OK) st = hone_atomic_write(&s->af, header, len);
        if (st == HONE_OK) st = hone_atomic_write(&s->af, "        ", pad);
        if (st != HONE_OK) hone_atomic_abort(&s->af);
    }
    free(header);
    json_decref(root);
    free(nbytes);
    return st;
}

hone_status hone_st_stream_write(hone_st_stream *s, const void *data, size_t n) {
    if (n > s->remaining)
        return hone_errorf(HONE_ERR_INVALID, "%s: %zu more bytes than the header announces", s->af.path,
                           n - (size_t)s->remaining);
    s->remaining -= n;
    return hone_atomic_write(&s->af, data, n);
}

hone_status hone_st_stream_commit(hone_st_stream *s) {
    if (s->remaining) {
        hone_status st = hone_errorf(HONE_ERR_INVALID, "%s: %llu bytes of tensor data missing at commit", s->af.path,
                                     (unsigned long long)s->remaining);
        hone_st_stream_abort(s);
        return st;
    }
    return hone_atomic_commit(&s->af);
}

void hone_st_stream_abort(hone_st_stream *s) {
    hone_atomic_abort(&s->af);
    s->remaining = 0;
}
