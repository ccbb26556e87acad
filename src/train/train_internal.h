/* Shared by the training loop (trainer.c) and its checkpoints (checkpoint.c). */
#ifndef HONE_TRAIN_INTERNAL_H
#define HONE_TRAIN_INTERNAL_H

#include <jansson.h>

#include "hone/train.h"

/* Where the loop stands after `step` optimizer steps: with the weights and the optimizer, all a resumed run needs
 * (the data order, the schedule and every random stream are functions of the seed and the step). */
typedef struct {
    int64_t step;          /* optimizer steps done */
    int64_t skipped_steps; /* in the whole run */
    int bad_in_a_row;      /* consecutive non-finite steps ending at `step` */
    double first_loss, last_loss, eval_loss; /* NaN when not known yet */
    double elapsed_seconds;                  /* training time of every session up to `step` */
} train_progress;

/* The loop's position and shape written to trainer_state.json beside the progress (informative, for people). */
typedef struct {
    int epoch;
    int64_t total_steps, steps_per_epoch, rows_into_epoch, optimizer_step;
    const hone_scheduler *sched;
    uint64_t seed;
    int threads;
} train_position;

/* Row order of one epoch: file order, or a permutation drawn from the seed and the epoch number. */
void train_epoch_order(int64_t *order, int64_t n, int shuffle, uint64_t seed, int epoch);

/* OUT/checkpoint-<p->step>/: the trained weights (hone_model_save_trained), optimizer.safetensors (moments) and
 * trainer_state.json (progress, position, fingerprint), built in OUT/.checkpoint-<step>.partial and renamed into
 * place when complete; then checkpoints beyond save_total_limit (the oldest by step) are removed. */
hone_status train_checkpoint_save(const hone_model *m, const hone_optimizer *opt, const train_progress *p,
                                  const train_position *pos, const json_t *fingerprint, const char *out_dir,
                                  int save_total_limit);
/* Restores what train_checkpoint_save wrote to dir into m, opt (initialised for the same parameter count) and
 * *p, after checking that the checkpoint's fingerprint equals `fingerprint` (an error names the first setting
 * that differs). */
hone_status train_checkpoint_load(hone_model *m, hone_optimizer *opt, train_progress *p, const json_t *fingerprint,
                                  const char *dir);
/* Removes what interrupted saves left in out_dir (.checkpoint-*.partial and checkpoint-*.old.* folders). */
hone_status train_checkpoint_clean(const char *out_dir);
/* Rewrites OUT/metrics.jsonl atomically to its lines of steps <= step (a resumed run appends after them). */
hone_status train_metrics_truncate(const char *out_dir, int64_t step);

#endif
