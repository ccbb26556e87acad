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

/* A contiguous run of parameters (one tensor). Weight decay applies only where decay != 0; the model sets it
 * for tensors with >= 2 dimensions (matrices and embeddings), not for biases and norm gains. */
typedef struct {
    size_t offset, size;
    int decay;
} hone_param_segment;

typedef struct {
    hone_optim_config cfg;
    size_t n;
    float *m;     /* AdamW first moment / SGD momentum buffer */
    float *v;     /* AdamW second moment */
    int64_t step; /* number of completed steps (for bias correction) */
} hone_optimizer;

hone_status hone_optim_init(hone_optimizer *opt, const hone_optim_config *cfg, size_t n_params);
void hone_optim_free(hone_optimizer *opt);
/* One update of params with grads at learning rate lr. */
void hone_optim_step(hone_optimizer *opt, float *params, const float *grads, const hone_param_segment *segs,
                     size_t n_segs, float lr);
/* Parses "adamw" / "adamw_torch" / "sgd" (error lists the choices). */
hone_status hone_optimizer_kind_parse(const char *name, hone_optimizer_kind *out);

typedef enum { HONE_SCHED_CONSTANT = 0, HONE_SCHED_LINEAR = 1, HONE_SCHED_COSINE = 2 } hone_sched_kind;

typedef struct {
    hone_sched_kind kind;
    float base_lr;
    int64_t warmup_steps; /* resolved: warmup_steps, or ceil(warmup_ratio * total_steps) */
    int64_t total_steps;
} hone_scheduler;

/* Resolves warmup: warmup_steps when > 0, else ceil(warmup_ratio * total_steps) (as transformers does). */
hone_status hone_sched_init(hone_scheduler *s, hone_sched_kind kind, float base_lr, int64_t warmup_steps,
                            float warmup_ratio, int64_t total_steps);
/* Learning rate used by the optimizer step with 0-based index `step` (transformers' LambdaLR: the first
 * step of a warmup uses lr 0). */
float hone_lr_at(const hone_scheduler *s, int64_t step);
/* Parses "constant" / "linear" / "cosine" (also "constant_with_warmup"). */
hone_status hone_sched_kind_parse(const char *name, hone_sched_kind *out);

/* Global L2 norm of the gradient; when max_norm > 0 and the norm exceeds it, scales grads by
 * max_norm / (norm + 1e-6) as torch.nn.utils.clip_grad_norm_ does. Returns the norm before clipping. */
float hone_grad_clip(float *grads, size_t n, float max_norm);

#ifdef __cplusplus
}
#endif
#endif
