/* Optimizers with torch.optim semantics (AdamW, SGD) and torch.nn.utils.clip_grad_norm_, over one flat
 * parameter buffer.
 *
 * The per-element arithmetic repeats torch's single-tensor (foreach=False) CPU kernels operation by
 * operation: scalars are formed in double as Python forms them, then rounded to float; where torch's kernels
 * fuse a multiply-add (add_ with alpha, addcmul_) we call fmaf, and everywhere else each product is rounded on
 * its own (a separate statement, so that no compiler contracts it). Given the same float32 hyperparameters,
 * hone and PyTorch then agree bit for bit (tests/fixtures/optim), and since fmaf, sqrtf and division are
 * correctly rounded the result does not depend on the machine or the thread count. */
#include "hone/optim.h"

#include <math.h>
#include <string.h>

static hone_status check_unit_interval(const char *name, float x) {
    if (!(x >= 0.0f && x < 1.0f)) return hone_errorf(HONE_ERR_INVALID, "adamw %s must be in [0, 1), got %g", name, x);
    return HONE_OK;
}

static hone_status check_non_negative(const char *what, float x) {
    if (!(x >= 0.0f) || isinf(x))
        return hone_errorf(HONE_ERR_INVALID, "%s must be a finite number >= 0, got %g", what, x);
    return HONE_OK;
}

static hone_status check_config(const hone_optim_config *cfg) {
    switch (cfg->kind) {
    case HONE_OPT_ADAMW:
        HONE_TRY(check_unit_interval("beta1", cfg->beta1));
        HONE_TRY(check_unit_interval("beta2", cfg->beta2));
        HONE_TRY(check_non_negative("adamw eps", cfg->eps));
        return check_non_negative("weight_decay", cfg->weight_decay);
    case HONE_OPT_SGD:
        HONE_TRY(check_non_negative("sgd momentum", cfg->momentum));
        return check_non_negative("weight_decay", cfg->weight_decay);
    }
    return hone_errorf(HONE_ERR_INVALID, "unknown optimizer kind %d (choose adamw or sgd)", (int)cfg->kind);
}

hone_status hone_optim_init(hone_optimizer *opt, const hone_optim_config *cfg, size_t n_params) {
    memset(opt, 0, sizeof *opt);
    HONE_TRY(check_config(cfg));
    opt->cfg = *cfg;
    opt->n = n_params;
    int needs_m = cfg->kind == HONE_OPT_ADAMW || cfg->momentum > 0.0f;
    if (needs_m && !(opt->m = hone_alloc(n_params * sizeof(float)))) return HONE_ERR_NOMEM;
    if (cfg->kind == HONE_OPT_ADAMW && !(opt->v = hone_alloc(n_params * sizeof(float)))) {
        hone_optim_free(opt);
        return HONE_ERR_NOMEM;
    }
    return HONE_OK;
}

void hone_optim_free(hone_optimizer *opt) {
    hone_free(opt->m);
    hone_free(opt->v);
    memset(opt, 0, sizeof *opt);
}

static void adamw_step(hone_optimizer *opt, float *params, const float *grads, const hone_param_segment *segs,
                       size_t n_segs, float lr, float grad_scale) {
    const hone_optim_config *c = &opt->cfg;
    double t = (double)(opt->step + 1);
    double bias_correction1 = 1.0 - pow((double)c->beta1, t);
    double bias_correction2 = 1.0 - pow((double)c->beta2, t);
    /* torch decays with param.mul_(1 - lr*wd) rather than subtracting lr*wd*p: same value, but the factor
     * form rounds like torch does. */
    const float decay_factor = (float)(1.0 - (double)lr * (double)c->weight_decay);
    const float beta1 = c->beta1, one_minus_beta1 = (float)(1.0 - (double)c->beta1);
    const float beta2 = c->beta2, one_minus_beta2 = (float)(1.0 - (double)c->beta2);
    const float step_size = (float)((double)lr / bias_correction1);
    const float bias_correction2_sqrt = (float)sqrt(bias_correction2);
    const float eps = c->eps;
    float *m = opt->m, *v = opt->v;

#pragma omp parallel
    for (size_t s = 0; s < n_segs; s++) {
        const size_t begin = segs[s].offset, end = segs[s].offset + segs[s].size;
        /* torch multiplies the no-decay groups by 1 - lr*0 too; a factor of exactly 1 keeps the loop free of
         * branches. */
        const float factor = segs[s].decay ? decay_factor : 1.0f;
#pragma omp for schedule(static)
        for (size_t i = begin; i < end; i++) {
            float p = params[i] * factor, g = grads[i] * grad_scale;
            float mi = fmaf(one_minus_beta1, g, m[i] * beta1);
            float vi = fmaf(one_minus_beta2 * g, g, v[i] * beta2);
            float denom = sqrtf(vi) / bias_correction2_sqrt + eps;
            m[i] = mi;
            v[i] = vi;
            params[i] = p - step_size * mi / denom;
        }
    }
}

static void sgd_step(hone_optimizer *opt, float *params, const float *grads, const hone_param_segment *segs,
                     size_t n_segs, float lr, float grad_scale) {
    const float wd = opt->cfg.weight_decay, momentum = opt->cfg.momentum;
    /* torch creates the momentum buffer as a copy of the first gradient (no 1-dampening scaling). */
    const int first = opt->step == 0;
    float *buf = opt->m;

#pragma omp parallel
    for (size_t s = 0; s < n_segs; s++) {
        const size_t begin = segs[s].offset, end = segs[s].offset + segs[s].size;
        const int decay = segs[s].decay && wd != 0.0f;
#pragma omp for schedule(static)
        for (size_t i = begin; i < end; i++) {
            float d = grads[i] * grad_scale;
            if (decay) d = fmaf(wd, params[i], d);
            if (buf) {
                if (!first) {
                    float kept = buf[i] * momentum; /* rounded before the add, as buf.mul_(momentum) */
                    d = kept + d;
                }
                buf[i] = d;
            }
            params[i] = fmaf(-lr, d, params[i]);
        }
    }
}

void hone_optim_step(hone_optimizer *opt, float *params, const float *grads, const hone_param_segment *segs,
                     size_t n_segs, float lr, float grad_scale) {
    for (size_t s = 0; s < n_segs; s++) HONE_ASSERT(segs[s].offset + segs[s].size <= opt->n);
    if (opt->cfg.kind == HONE_OPT_ADAMW) adamw_step(opt, params, grads, segs, n_segs, lr, grad_scale);
    else sgd_step(opt, params, grads, segs, n_segs, lr, grad_scale);
    opt->step++;
}

hone_status hone_optimizer_kind_parse(const char *name, hone_optimizer_kind *out) {
    if (!strcmp(name, "adamw") || !strcmp(name, "adamw_torch")) *out = HONE_OPT_ADAMW;
    else if (!strcmp(name, "sgd")) *out = HONE_OPT_SGD;
    else return hone_errorf(HONE_ERR_INVALID, "unknown optimizer '%s' (choose adamw or sgd)", name);
    return HONE_OK;
}

/* The sum of squares is split into a fixed number of chunks whose bounds depend only on n, and the chunk
 * sums are added in chunk order: the norm has the same bits whatever the thread count. */
#define CLIP_CHUNKS 1024

float hone_grad_norm(const float *grads, size_t n) {
    double partial[CLIP_CHUNKS];
    const size_t chunk = (n + CLIP_CHUNKS - 1) / CLIP_CHUNKS;
#pragma omp parallel for schedule(static)
    for (size_t c = 0; c < CLIP_CHUNKS; c++) {
        size_t begin = c * chunk < n ? c * chunk : n;
        size_t end = begin + chunk < n ? begin + chunk : n;
        /* eight independent accumulators, combined in a fixed order, let the compiler vectorise the loop */
        double acc[8] = {0};
        size_t i = begin;
        for (; i + 8 <= end; i += 8)
            for (int k = 0; k < 8; k++) acc[k] += (double)grads[i + k] * (double)grads[i + k];
        for (; i < end; i++) acc[0] += (double)grads[i] * (double)grads[i];
        partial[c] = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    }
    double total = 0.0;
    for (size_t c = 0; c < CLIP_CHUNKS; c++) total += partial[c];
    return (float)sqrt(total);
}

float hone_clip_coef(float norm, float max_norm) {
    if (!(max_norm > 0.0f) || !isfinite(norm)) return 1.0f;
    /* torch: clip_coef = max_norm / (total_norm + 1e-6) in float32, clamped to 1 (a no-op multiply). */
    const float coef = max_norm / (norm + 1e-6f);
    return coef < 1.0f ? coef : 1.0f;
}

float hone_grad_clip(float *grads, size_t n, float max_norm) {
    const float norm = hone_grad_norm(grads, n), coef = hone_clip_coef(norm, max_norm);
    if (coef < 1.0f) {
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) grads[i] *= coef;
    }
    return norm;
}
