/* hone/optim.h — optimizers (PyTorch semantics), learning-rate schedules (Hugging Face semantics) and
 * global-norm gradient clipping, all over one flat parameter buffer split into segments (one per tensor).
 *
 *     hone_optimizer opt;
 *     hone_optim_init(&opt, &(hone_optim_config){.kind = HONE_OPT_ADAMW, .beta1 = 0.9f, .beta2 = 0.999f,
 *                                                .eps = 1e-8f, .weight_decay = 0.01f}, n_params);
 *     float norm = hone_grad_clip(grads, n_params, 1.0f);
 *     float lr = hone_lr_at(&sched, step);
 *     hone_optim_step(&opt, params, grads, segments, n_segments, lr);
 */
#ifndef HONE_OPTIM_H
#define HONE_OPTIM_H

#include "hone/base.h"
#include "hone/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { HONE_OPT_ADAMW = 0, HONE_OPT_SGD = 1 } hone_optimizer_kind;

typedef struct {
    hone_optimizer_kind kind;
    float beta1, beta2, eps; /* AdamW */
    float momentum;          /* SGD (0 = plain SGD) */
    float weight_decay;      /* AdamW: decoupled; SGD: L2 added to the gradient */
} hone_optim_config;

typedef struct {
    hone_optim_config cfg;
    size_t n;
    float *m;     /* AdamW first moment / SGD momentum buffer (NULL for SGD without momentum) */
    float *v;     /* AdamW second moment */
    int64_t step; /* number of completed steps (for bias correction) */
} hone_optimizer;

/* Validates cfg as torch does (betas in [0, 1), eps, momentum and weight_decay >= 0) and allocates zeroed
 * state for n_params parameters. */
hone_status hone_optim_init(hone_optimizer *opt, const hone_optim_config *cfg, size_t n_params);
void hone_optim_free(hone_optimizer *opt);
/* One update of params with grads × grad_scale (the clipping coefficient, folded in to save a pass over the
 * gradient; 1 = as they are) at learning rate lr, bit for bit as torch.optim.AdamW / torch.optim.SGD
 * (foreach=False, no amsgrad / dampening / nesterov) on CPU with the same float32 hyperparameters:
 *   AdamW, t = step + 1: p *= 1 - lr*wd (decaying segments), m = b1*m + (1-b1)*g, v = b2*v + (1-b2)*g*g,
 *         p -= lr/(1 - b1^t) * m / (sqrt(v)/sqrt(1 - b2^t) + eps)
 *   SGD:  d = g + wd*p (decaying segments); with momentum: buf = d at the first step, else momentum*buf + d,
 *         d = buf; p -= lr*d
 * Threads split every segment statically; the result does not depend on the thread count. */
void hone_optim_step(hone_optimizer *opt, float *params, const float *grads, const hone_param_segment *segs,
                     size_t n_segs, float lr, float grad_scale);
/* Parses "adamw" / "adamw_torch" / "sgd" (error lists the choices). */
hone_status hone_optimizer_kind_parse(const char *name, hone_optimizer_kind *out);

typedef enum { HONE_SCHED_CONSTANT = 0, HONE_SCHED_LINEAR = 1, HONE_SCHED_COSINE = 2 } hone_sched_kind;

typedef struct {
    hone_sched_kind kind;
    float base_lr;
    int64_t warmup_steps; /* resolved: warmup_steps, or ceil(warmup_ratio * total_steps) */
    int64_t total_steps;
} hone_scheduler;

/* Resolves warmup: warmup_steps when > 0, else ceil(warmup_ratio * total_steps) as transformers'
 * TrainingArguments.get_warmup_steps does (with the ratio read as the decimal the user wrote, so 0.1 of 1000
 * steps is 100, not 101). Errors for negative steps or learning rate, a ratio outside [0, 1] or an unknown
 * kind; warns when the warmup is longer than the run. HONE_SCHED_CONSTANT warms up like transformers'
 * constant_with_warmup (its plain "constant" would ignore a warmup the user asked for). */
hone_status hone_sched_init(hone_scheduler *s, hone_sched_kind kind, float base_lr, int64_t warmup_steps,
                            float warmup_ratio, int64_t total_steps);
/* Learning rate used by the optimizer step with 0-based index `step`: base_lr * factor(step) as transformers'
 * get_{constant,linear,cosine}_schedule_with_warmup under LambdaLR (so the first step of a warmup uses lr 0):
 *   step < warmup: step / max(1, warmup)
 *   constant: 1;  linear: max(0, (total - step) / max(1, total - warmup));
 *   cosine: max(0, 0.5 * (1 + cos(pi * (step - warmup) / max(1, total - warmup))))  (num_cycles 0.5) */
float hone_lr_at(const hone_scheduler *s, int64_t step);
/* Parses "constant" / "linear" / "cosine" (also "constant_with_warmup"). */
hone_status hone_sched_kind_parse(const char *name, hone_sched_kind *out);

/* Global L2 norm of the gradient (accumulated in double, in a fixed order: the same bits for any thread
 * count); when max_norm > 0 and the norm exceeds it, scales grads by max_norm / (norm + 1e-6) as
 * torch.nn.utils.clip_grad_norm_ does. max_norm <= 0 only measures. Returns the norm before clipping; a NaN or
 * infinite norm is returned without touching grads, for the caller to skip the step. */
float hone_grad_clip(float *grads, size_t n, float max_norm);
/* The two halves of hone_grad_clip, for callers that fold the coefficient into hone_optim_step: the norm, and
 * the factor clipping would scale by (1 when max_norm <= 0, the norm is within it, or not finite). */
float hone_grad_norm(const float *grads, size_t n);
float hone_clip_coef(float norm, float max_norm);

#ifdef __cplusplus
}
#endif
#endif
