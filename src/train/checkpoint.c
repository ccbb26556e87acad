/* Training checkpoints: OUT/checkpoint-<step>/ with the trained weights, the optimizer's moments and
 * trainer_state.json, written as a whole or not at all, and read back to resume a run exactly. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "hone/peft.h"
#include "hone/safetensors.h"
#include "train/train_internal.h"

#define STATE_FORMAT "hone trainer_state"
#define STATE_VERSION 1
#define PARTIAL_SUFFIX ".partial"
#define REMOVING_SUFFIX ".removing"

/* The optimizer's buffers under torch's state names. */
static size_t optimizer_buffers(const hone_optimizer *opt, const char **names, float **bufs) {
    size_t n = 0;
    if (opt->cfg.kind == HONE_OPT_ADAMW) {
        names[n] = "exp_avg", bufs[n++] = opt->m;
        names[n] = "exp_avg_sq", bufs[n++] = opt->v;
    } else if (opt->m) {
        names[n] = "momentum_buffer", bufs[n++] = opt->m;
    }
    return n;
}

/* JSON has no NaN: unknown losses are null. */
static json_t *json_loss(double v) { return isfinite(v) ? json_real(v) : json_null(); }
static double loss_from_json(const json_t *v) { return json_is_number(v) ? json_number_value(v) : NAN; }

static char *state_json(const train_progress *p, const train_position *pos, const json_t *fingerprint) {
    static const char *const sched_names[] = {"constant", "linear", "cosine"};
    json_t *sched = json_pack("{s:s, s:f, s:I, s:I, s:I}", "kind", sched_names[pos->sched->kind], "base_lr",
                              (double)pos->sched->base_lr, "warmup_steps", (json_int_t)pos->sched->warmup_steps,
                              "total_steps", (json_int_t)pos->sched->total_steps, "next_step", (json_int_t)p->step);
    json_t *root = json_pack(
        "{s:s, s:i, s:I, s:i, s:I, s:I, s:I, s:I, s:I, s:o, s:I, s:i, s:o, s:o, s:o, s:f, s:i, s:O}", "format",
        STATE_FORMAT, "version", STATE_VERSION, "global_step", (json_int_t)p->step, "epoch", pos->epoch,
        "total_steps", (json_int_t)pos->total_steps, "steps_per_epoch", (json_int_t)pos->steps_per_epoch,
        "rows_into_epoch", (json_int_t)pos->rows_into_epoch, "seed", (json_int_t)pos->seed, "optimizer_step",
        (json_int_t)pos->optimizer_step, "scheduler", sched, "skipped_steps", (json_int_t)p->skipped_steps,
        "bad_steps_in_a_row", p->bad_in_a_row, "first_loss", json_loss(p->first_loss), "last_loss",
        json_loss(p->last_loss), "eval_loss", json_loss(p->eval_loss), "elapsed_seconds", p->elapsed_seconds,
        "threads", pos->threads, "fingerprint", fingerprint);
    char *text = root ? json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17)) : NULL;
    json_decref(root);
    return text;
}

/* checkpoint-<digits> exactly: the only names a resumed run looks at. Returns the step, or -1. */
static int64_t checkpoint_step(const char *name) {
    static const char prefix[] = "checkpoint-";
    if (strncmp(name, prefix, sizeof prefix - 1)) return -1;
    const char *digits = name + sizeof prefix - 1;
    size_t n = strspn(digits, "0123456789");
    if (n == 0 || n > 18 || digits[n]) return -1;
    return strtoll(digits, NULL, 10);
}

static int has_state(const char *out_dir, const char *name) {
    char *dir = hone_path_join(out_dir, name), *state = dir ? hone_path_join(dir, "trainer_state.json") : NULL;
    int ok = state && hone_file_exists(state);
    free(state);
    free(dir);
    return ok;
}

/* Steps of the checkpoint folders in out_dir that hold a trainer_state.json, unordered. */
static hone_status list_checkpoints(const char *out_dir, int64_t **steps, size_t *n) {
    *steps = NULL;
    *n = 0;
    DIR *d = opendir(out_dir);
    if (!d) return hone_errorf(HONE_ERR_IO, "%s: cannot open folder", out_dir);
    size_t cap = 0;
    hone_status st = HONE_OK;
    for (struct dirent *e; st == HONE_OK && (e = readdir(d));) {
        int64_t step = checkpoint_step(e->d_name);
        if (step < 0 || !has_state(out_dir, e->d_name)) continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            int64_t *grown = realloc(*steps, cap * sizeof **steps);
            if (!grown) {
                st = hone_errorf(HONE_ERR_NOMEM, "out of memory");
                break;
            }
            *steps = grown;
        }
        (*steps)[(*n)++] = step;
    }
    closedir(d);
    return st;
}

static char *checkpoint_path(const char *out_dir, int64_t step, const char *prefix, const char *suffix) {
    char name[96];
    snprintf(name, sizeof name, "%scheckpoint-%lld%s", prefix, (long long)step, suffix);
    return hone_path_join(out_dir, name);
}

hone_status hone_train_latest_checkpoint(const char *output_dir, char **path) {
    *path = NULL;
    if (!hone_dir_exists(output_dir)) return HONE_OK;
    int64_t *steps;
    size_t n;
    HONE_TRY(list_checkpoints(output_dir, &steps, &n));
    int64_t best = -1;
    for (size_t i = 0; i < n; i++) best = steps[i] > best ? steps[i] : best;
    free(steps);
    if (best < 0) return HONE_OK;
    *path = checkpoint_path(output_dir, best, "", "");
    return *path ? HONE_OK : hone_errorf(HONE_ERR_NOMEM, "out of memory");
}

static int by_step_descending(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x < y) - (x > y);
}

/* Keeps the checkpoint just written and the newest limit - 1 others. */
static hone_status prune(const char *out_dir, int64_t current, int limit) {
    int64_t *steps;
    size_t n;
    HONE_TRY(list_checkpoints(out_dir, &steps, &n));
    qsort(steps, n, sizeof *steps, by_step_descending);
    hone_status st = HONE_OK;
    int kept = 1;
    for (size_t i = 0; i < n && st == HONE_OK; i++) {
        if (steps[i] == current) continue;
        if (kept < limit) {
            kept++;
            continue;
        }
        /* renamed out of the checkpoint namespace first: a kill during the removal leaves a hidden folder that the
         * next run deletes, never a checkpoint-N missing some of its files */
        char *dir = checkpoint_path(out_dir, steps[i], "", ""), *doomed = checkpoint_path(out_dir, steps[i], ".",
                                                                                          REMOVING_SUFFIX);
        st = dir && doomed ? HONE_OK : hone_errorf(HONE_ERR_NOMEM, "out of memory");
        if (st == HONE_OK && rename(dir, doomed) != 0)
            st = hone_errorf(HONE_ERR_IO, "%s: cannot move aside to delete it: %s", dir, strerror(errno));
        if (st == HONE_OK) st = hone_dir_remove(doomed);
        free(dir);
        free(doomed);
    }
    free(steps);
    return st;
}

static hone_status write_contents(const hone_model *m, const hone_optimizer *opt, const train_progress *p,
                                  const train_position *pos, const json_t *fingerprint, const char *dir) {
    HONE_TRY(hone_dir_create(dir));
    HONE_TRY(hone_model_save_trained(m, dir));
    const char *names[2];
    float *bufs[2];
    hone_st_entry entries[2];
    size_t n = optimizer_buffers(opt, names, bufs);
    for (size_t i = 0; i < n; i++)
        entries[i] = (hone_st_entry){.name = names[i], .dtype = HONE_DTYPE_F32, .ndim = 1, .shape = {(int64_t)opt->n},
                                     .data = bufs[i]};
    char *path = hone_path_join(dir, "optimizer.safetensors");
    hone_status st = path ? hone_st_write(path, entries, n) : hone_errorf(HONE_ERR_NOMEM, "out of memory");
    free(path);
    HONE_TRY(st);
    char *text = state_json(p, pos, fingerprint);
    path = hone_path_join(dir, "trainer_state.json");
    st = text && path ? hone_file_write_atomic(path, text, strlen(text)) : hone_errorf(HONE_ERR_NOMEM, "out of memory");
    free(path);
    free(text);
    return st;
}

hone_status train_checkpoint_save(const hone_model *m, const hone_optimizer *opt, const train_progress *p,
                                  const train_position *pos, const json_t *fingerprint, const char *out_dir,
                                  int save_total_limit) {
    char *partial = checkpoint_path(out_dir, p->step, ".", PARTIAL_SUFFIX);
    char *final = checkpoint_path(out_dir, p->step, "", "");
    hone_status st = partial && final ? hone_dir_remove(partial) : hone_errorf(HONE_ERR_NOMEM, "out of memory");
    if (st == HONE_OK) st = write_contents(m, opt, p, pos, fingerprint, partial);
    if (st == HONE_OK) st = hone_dir_commit(partial, final);
    if (st != HONE_OK) hone_error_context(st, "saving checkpoint %s: ", final ? final : "");
    if (st == HONE_OK && save_total_limit > 0) st = prune(out_dir, p->step, save_total_limit);
    free(partial);
    free(final);
    return st;
}

hone_status train_checkpoint_clean(const char *out_dir) {
    DIR *d = opendir(out_dir);
    if (!d) return hone_errorf(HONE_ERR_IO, "%s: cannot open folder", out_dir);
    hone_status st = HONE_OK;
    for (struct dirent *e; st == HONE_OK && (e = readdir(d));) {
        const size_t len = strlen(e->d_name), partial_len = sizeof PARTIAL_SUFFIX - 1,
                     removing_len = sizeof REMOVING_SUFFIX - 1;
        int partial = !strncmp(e->d_name, ".checkpoint-", 12) &&
                      ((len > partial_len && !strcmp(e->d_name + len - partial_len, PARTIAL_SUFFIX)) ||
                       (len > removing_len && !strcmp(e->d_name + len - removing_len, REMOVING_SUFFIX)));
        int aside = !strncmp(e->d_name, "checkpoint-", 11) && strstr(e->d_name, ".old.");
        if (!partial && !aside) continue;
        char *path = hone_path_join(out_dir, e->d_name);
        st = path ? hone_dir_remove(path) : hone_errorf(HONE_ERR_NOMEM, "out of memory");
        free(path);
    }
    closedir(d);
    return st;
}

/* A fingerprint value as people wrote it: reals are float settings, shown with the fewest digits that give the
 * float back (0.001, not 0.00100000005). */
static void format_value(const json_t *v, char *buf, size_t n) {
    if (!v) {
        snprintf(buf, n, "(absent)");
    } else if (json_is_real(v)) {
        const float f = (float)json_real_value(v);
        for (int digits = 6; digits <= 9; digits++) {
            snprintf(buf, n, "%.*g", digits, (double)f);
            if ((float)strtod(buf, NULL) == f) break;
        }
    } else {
        char *text = json_dumps(v, JSON_ENCODE_ANY);
        snprintf(buf, n, "%s", text ? text : "?");
        free(text);
    }
}

/* The first setting of `now` whose value the checkpoint's fingerprint does not share, as an error. */
static hone_status compare_fingerprints(const json_t *saved, const json_t *now, const char *dir) {
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)now, key, value) {
        json_t *old = json_object_get(saved, key);
        if (old && json_equal(old, value)) continue;
        char a[64], b[64];
        format_value(old, a, sizeof a);
        format_value(value, b, sizeof b);
        return hone_errorf(HONE_ERR_INVALID,
                           "%s: cannot resume: %s was %s when the checkpoint was written and is %s now; resume with "
                           "the same %s (or train into a new output_dir)",
                           dir, key, a, b, strstr(key, "data") ? "data" : "settings");
    }
    return HONE_OK;
}

static hone_status load_optimizer(hone_optimizer *opt, const char *dir) {
    char *path = hone_path_join(dir, "optimizer.safetensors");
    if (!path) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    hone_st_file f;
    hone_status st = hone_st_open(&f, path);
    if (st != HONE_OK) {
        free(path);
        return st;
    }
    const char *names[2];
    float *bufs[2];
    size_t n = optimizer_buffers(opt, names, bufs);
    for (size_t i = 0; i < n && st == HONE_OK; i++) {
        const hone_st_tensor *t = hone_st_find(&f, names[i]);
        if (!t || t->ndim != 1 || t->numel != (int64_t)opt->n)
            st = hone_errorf(HONE_ERR_FORMAT, "%s: no tensor '%s' of %zu values (the optimizer state of this run)",
                             path, names[i], opt->n);
        else
            st = hone_st_tensor_to_f32(t, bufs[i]);
    }
    hone_st_close(&f);
    free(path);
    return st;
}

hone_status train_checkpoint_load(hone_model *m, hone_optimizer *opt, train_progress *p, const json_t *fingerprint,
                                  const char *dir) {
    char *path = hone_path_join(dir, "trainer_state.json");
    if (!path) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    json_error_t err;
    json_t *root = json_load_file(path, 0, &err);
    hone_status st = HONE_OK;
    json_int_t step = -1, opt_step = -1, skipped = -1;
    int bad = -1;
    if (!root) {
        st = hone_errorf(HONE_ERR_FORMAT, "%s: %s (line %d); is this a checkpoint folder of hone?", path, err.text,
                         err.line);
    } else if (!json_is_string(json_object_get(root, "format")) ||
               strcmp(json_string_value(json_object_get(root, "format")), STATE_FORMAT) ||
               json_integer_value(json_object_get(root, "version")) != STATE_VERSION) {
        st = hone_errorf(HONE_ERR_FORMAT, "%s: not a trainer state of this hone version (format \"%s\", version %d)",
                         path, STATE_FORMAT, STATE_VERSION);
    } else if (json_unpack_ex(root, &err, 0, "{s:I, s:I, s:I, s:i}", "global_step", &step, "optimizer_step",
                              &opt_step, "skipped_steps", &skipped, "bad_steps_in_a_row", &bad) != 0 ||
               step < 0 || opt_step < 0 || opt_step > step || skipped < 0 || bad < 0) {
        st = hone_errorf(HONE_ERR_FORMAT, "%s: bad or missing progress fields (%s)", path, err.text);
    } else {
        st = compare_fingerprints(json_object_get(root, "fingerprint"), fingerprint, dir);
    }
    if (st == HONE_OK) {
        p->step = step;
        p->skipped_steps = skipped;
        p->bad_in_a_row = bad;
        p->first_loss = loss_from_json(json_object_get(root, "first_loss"));
        p->last_loss = loss_from_json(json_object_get(root, "last_loss"));
        p->eval_loss = loss_from_json(json_object_get(root, "eval_loss"));
        p->elapsed_seconds = json_number_value(json_object_get(root, "elapsed_seconds"));
        opt->step = opt_step;
        const json_int_t threads = json_integer_value(json_object_get(root, "threads"));
        if (threads != omp_get_max_threads())
            hone_warn("%s was written by a run with %lld threads and this one has %d: the result will not be "
                      "bit-identical to an uninterrupted run (use --threads %lld for that)",
                      dir, (long long)threads, omp_get_max_threads(), (long long)threads);
    }
    json_decref(root);
    free(path);
    HONE_TRY(st);
    HONE_TRY(hone_model_load_trained(m, dir));
    return load_optimizer(opt, dir);
}

hone_status train_metrics_truncate(const char *out_dir, int64_t step) {
    char *path = hone_path_join(out_dir, "metrics.jsonl");
    if (!path) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    char *text = NULL;
    size_t size = 0;
    if (hone_file_exists(path) && hone_file_read(path, &text, &size) != HONE_OK) {
        free(path);
        return HONE_ERR_IO;
    }
    /* lines of later steps, and a line cut short by a kill, are dropped */
    size_t kept = 0;
    for (size_t pos = 0; pos < size;) {
        char *nl = memchr(text + pos, '\n', size - pos);
        if (!nl) break;
        const size_t len = (size_t)(nl - (text + pos)) + 1;
        json_t *line = json_loadb(text + pos, len, 0, NULL);
        json_t *s = line ? json_object_get(line, "step") : NULL;
        if (json_is_integer(s) && json_integer_value(s) <= step) {
            memmove(text + kept, text + pos, len);
            kept += len;
        }
        json_decref(line);
        pos += len;
    }
    hone_status st = hone_file_write_atomic(path, text ? text : "", kept);
    free(text);
    free(path);
    return st;
}
