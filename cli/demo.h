/* hone demo's shared pieces: a run's results (cmd_demo.c) and the report that shows them (demo_report.c). */
#ifndef HONE_CLI_DEMO_H
#define HONE_CLI_DEMO_H

#include "cli.h"

/* The loss after each optimizer step of one training run. */
typedef struct {
    double *step, *loss;
    size_t n, cap;
} demo_curve;

/* One row of the accuracy table: a model and how it scored; curve is empty for models that were not trained
 * here (the reused base, merges). */
typedef struct {
    const char *label;
    const char *dir; /* the model folder */
    hone_task_scores scores;
    demo_curve curve;
    double seconds; /* training (or merging) time */
} demo_row;

/* OUT/report.html: the loss curves of the trained rows and the accuracy table, with merge_note (what the merges
 * are taken over) under it; atomic. */
hone_status demo_report_write(const char *output_dir, const demo_row *rows, size_t n_rows, const char *summary,
                              const char *merge_note);

#endif
