/* Learning-rate schedules with the semantics of transformers' get_{constant,linear,cosine}_schedule_with_warmup
 * driven by torch's LambdaLR: the lr of the step with 0-based index `step` is base_lr * factor(step), the
 * factor computed in double as Python does. */
#include "hone/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The decimal value the user most likely wrote for x (the shortest that rounds back to the same float).
 * transformers computes ceil(total * warmup_ratio) with the ratio as a Python double: for 0.1 and 1000 steps
 * that is exactly 100, whereas the float nearest 0.1 (0.100000001…) would give 101. */
static double as_typed(float x) {
    char text[32];
    for (int digits = 1; digits <= 9; digits++) {
        snprintf(text, sizeof text, "%.*g", digits, (double)x);
        double d = strtod(text, NULL);
        if ((float)d == x) return d;
    }
    return (double)x;
}

hone_status hone_sched_init(hone_scheduler *s, hone_sched_kind kind, float base_lr, int64_t warmup_steps,
                            float warmup_ratio, int64_t total_steps) {
    memset(s, 0, sizeof *s);
    if (kind != HONE_SCHED_CONSTANT && kind != HONE_SCHED_LINEAR && kind != HONE_SCHED_COSINE)
        return hone_errorf(HONE_ERR_INVALID, "unknown lr_scheduler kind %d (choose constant, linear or cosine)",
                           (int)kind);
    if (!(base_lr >= 0.0f) || isinf(base_lr))
        return hone_errorf(HONE_ERR_INVALID, "learning_rate must be a finite number >= 0, got %g", base_lr);
    if (warmup_steps < 0)
        return hone_errorf(HONE_ERR_INVALID, "warmup_steps must be >= 0, got %lld", (long long)warmup_steps);
    if (!(warmup_ratio >= 0.0f && warmup_ratio <= 1.0f))
        return hone_errorf(HONE_ERR_INVALID, "warmup_ratio must be in [0, 1], got %g", warmup_ratio);
    if (total_steps < 0)
        return hone_errorf(HONE_ERR_INVALID, "total number of steps must be >= 0, got %lld", (long long)total_steps);

    s->kind = kind;
    s->base_lr = base_lr;
    s->total_steps = total_steps;
    s->warmup_steps = warmup_steps > 0 ? warmup_steps : (int64_t)ceil((double)total_steps * as_typed(warmup_ratio));
    if (s->warmup_steps > total_steps)
        hone_warn("%lld warmup steps exceed the %lld training steps: the learning rate never reaches %g",
                  (long long)s->warmup_steps, (long long)total_steps, base_lr);
    return HONE_OK;
}

static double lr_factor(const hone_scheduler *s, int64_t step) {
    const double warmup = (double)s->warmup_steps, total = (double)s->total_steps, t = (double)step;
    if (step < s->warmup_steps) return t / fmax(1.0, warmup);
    switch (s->kind) {
    case HONE_SCHED_CONSTANT:
        return 1.0;
    case HONE_SCHED_LINEAR:
        return fmax(0.0, (total - t) / fmax(1.0, total - warmup));
    case HONE_SCHED_COSINE: {
        /* num_cycles = 0.5: one half cosine from 1 down to 0. Past total_steps the curve rises again, as in
         * transformers. */
        const double num_cycles = 0.5, progress = (t - warmup) / fmax(1.0, total - warmup);
        return fmax(0.0, 0.5 * (1.0 + cos(M_PI * num_cycles * 2.0 * progress)));
    }
    }
    HONE_ASSERT(!"scheduler kind validated by hone_sched_init");
}

float hone_lr_at(const hone_scheduler *s, int64_t step) {
    HONE_ASSERT(step >= 0);
    return (float)((double)s->base_lr * lr_factor(s, step));
}

hone_status hone_sched_kind_parse(const char *name, hone_sched_kind *out) {
    if (!strcmp(name, "constant") || !strcmp(name, "constant_with_warmup")) *out = HONE_SCHED_CONSTANT;
    else if (!strcmp(name, "linear")) *out = HONE_SCHED_LINEAR;
    else if (!strcmp(name, "cosine")) *out = HONE_SCHED_COSINE;
    else
        return hone_errorf(HONE_ERR_INVALID,
                           "unknown lr_scheduler '%s' (choose constant, constant_with_warmup, linear or cosine)",
                           name);
    return HONE_OK;
}
