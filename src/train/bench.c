/* The training-step benchmark and the on-the-spot sgemm peak it is compared against; the encoder benchmark. */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "hone/train.h"

double hone_sgemm_peak_gflops(double seconds) {
    const int n = 1024;
    float *a = hone_alloc(sizeof(float) * n * n), *b = hone_alloc(sizeof(float) * n * n);
    float *c = hone_alloc(sizeof(float) * n * n);
    if (!a || !b || !c) {
        hone_free(a), hone_free(b), hone_free(c);
        return 0;
    }
    for (int i = 0; i < n * n; i++) a[i] = b[i] = 1.0f / (float)(1 + i % 7);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n); /* warm up */
    double best = 0, start = hone_now_seconds();
    do {
        double t0 = hone_now_seconds();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
        double g = 2.0 * n * n * (double)n / (hone_now_seconds() - t0) / 1e9;
        best = g > best ? g : best;
    } while (hone_now_seconds() - start < seconds);
    hone_free(a), hone_free(b), hone_free(c);
    return best;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* FLOPs per token of the benchmarked step. hone_model_flops_per_token counts 6 per weight (forward, input gradient,
 * weight gradient) plus attention, which is 0 at T = 0: that isolates the weights. Frozen weights skip their weight
 * gradient (2 of the 6); each trainable LoRA weight costs all 6. */
static double step_flops_per_token(const hone_model_config *c, int T, size_t n_lora) {
    const double full = hone_model_flops_per_token(c, T);
    return n_lora ? full - 2.0 * hone_model_flops_per_token(c, 0) / 6.0 + 6.0 * (double)n_lora : full;
}

hone_status hone_bench_train(const hone_model_config *c, const hone_peft_config *adapter, int B, int T, int steps,
                             int warmup, hone_bench_result *out) {
    return hone_bench_train_base(c, adapter, HONE_DTYPE_F32, B, T, steps, warmup, out);
}

hone_status hone_bench_train_base(const hone_model_config *c, const hone_peft_config *adapter, hone_dtype base_dtype,
                                  int B, int T, int steps, int warmup, hone_bench_result *out) {
    memset(out, 0, sizeof *out);
    if (B < 1 || T < 2 || steps < 1 || warmup < 0)
        return hone_errorf(HONE_ERR_INVALID, "bench needs micro_batch_size >= 1, sequence_len >= 2, steps >= 1");
    if (adapter && adapter->kind != HONE_PEFT_LORA)
        return hone_errorf(HONE_ERR_UNSUPPORTED, "the training-step benchmark times full fine-tuning and LoRA only; "
                           "prompt and prefix tuning are not benchmarked");
    hone_model *m;
    HONE_TRY(hone_model_create(&m, c, 1337));
    hone_adapter *a = NULL;
    hone_status st = adapter ? hone_adapter_create(&a, m, adapter, 1337) : HONE_OK;
    if (st == HONE_OK && a) st = hone_model_attach(m, a);
    if (st == HONE_OK) st = hone_model_set_base_dtype(m, base_dtype);
    if (st == HONE_OK) st = hone_model_prepare(m, B, T, 1); /* after attaching: no base gradients for LoRA */
    float *params, *grads;
    size_t n_segs, n_buf;
    const hone_param_segment *segs = hone_model_trainable(m, &params, &grads, &n_segs, &n_buf);
    hone_optimizer opt;
    memset(&opt, 0, sizeof opt);
    hone_optim_config oc = {.kind = HONE_OPT_ADAMW, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.01f};
    if (st == HONE_OK) st = hone_optim_init(&opt, &oc, n_buf);
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)B * T), *targets = malloc(sizeof(int32_t) * (size_t)B * T);
    if (st == HONE_OK && (!ids || !targets)) st = hone_errorf(HONE_ERR_NOMEM, "out of memory");
    hone_rng rng = hone_rng_new(7, 0x62656e63 /* "benc" */);
    double *times = calloc((size_t)steps, sizeof(double));
    if (st == HONE_OK && !times) st = hone_errorf(HONE_ERR_NOMEM, "out of memory");
    for (int s = 0; s < warmup + steps && st == HONE_OK; s++) {
        for (int i = 0; i < B * T; i++) ids[i] = (int32_t)(hone_rng_u64(&rng) % (uint64_t)c->vocab_size);
        for (int i = 0; i < B * T; i++) targets[i] = (i + 1) % T ? ids[i + 1] : -100;
        double t0 = hone_now_seconds();
        hone_loss loss;
        hone_model_zero_grad(m);
        hone_model_set_dropout_key(m, hone_train_dropout_key(7, s, 0)); /* a new LoRA dropout mask, as training */
        st = hone_model_forward(m, ids, B, T);
        if (st == HONE_OK) st = hone_head_cross_entropy(m, targets, 1.0f / (float)(B * (T - 1)), 1, &loss);
        if (st == HONE_OK) st = hone_model_backward(m);
        if (st != HONE_OK) break;
        float coef = hone_clip_coef(hone_grad_norm(grads, n_buf), 1.0f);
        hone_optim_step(&opt, params, grads, segs, n_segs, 1e-4f, coef);
        double dt = hone_now_seconds() - t0;
        if (s >= warmup) times[s - warmup] = dt;
        if (s == 0) out->first_loss = loss.sum_nll / (double)loss.count;
        out->last_loss = loss.sum_nll / (double)loss.count;
    }
    if (st == HONE_OK) {
        out->peak_memory_mb = hone_peak_memory_mb(); /* before the sgemm below allocates its matrices */
        out->n_params = hone_model_num_params(m);
        out->n_trainable = n_buf;
        qsort(times, (size_t)steps, sizeof(double), by_value);
        double median = steps % 2 ? times[steps / 2] : 0.5 * (times[steps / 2 - 1] + times[steps / 2]);
        out->ms_per_step = 1000.0 * median;
        out->tokens_per_second = (double)B * T / median;
        out->gflops = step_flops_per_token(c, T, a ? n_buf : 0) * out->tokens_per_second / 1e9;
        out->peak_gflops = hone_sgemm_peak_gflops(1.0);
        out->mfu = out->peak_gflops > 0 ? out->gflops / out->peak_gflops : 0;
    }
    free(times);
    free(ids);
    free(targets);
    hone_optim_free(&opt);
    hone_model_free(m);
    hone_adapter_free(a); /* after the model it is attached to */
    return st;
}

/* Offsets of the paragraphs of text: each ends after a blank line ("\n\n") or at the end. */
static size_t *paragraph_starts(const char *text, size_t n, size_t *count) {
    size_t cap = 1024, k = 0;
    size_t *at = malloc(cap * sizeof *at);
    for (size_t pos = 0; at && pos < n;) {
        if (k + 2 > cap) {
            size_t *grown = realloc(at, 2 * cap * sizeof *at);
            if (!grown) {
                free(at);
                return NULL;
            }
            at = grown;
            cap *= 2;
        }
        at[k++] = pos;
        const char *blank = memmem(text + pos, n - pos, "\n\n", 2);
        pos = blank ? (size_t)(blank - text) + 2 : n;
    }
    if (at) at[k] = n;
    *count = k;
    return at;
}

hone_status hone_bench_tokenize(const hone_tokenizer *tok, const char *text, size_t n, int repeat,
                                hone_bench_tokenize_result *out) {
    memset(out, 0, sizeof *out);
    size_t n_par;
    size_t *at = paragraph_starts(text, n, &n_par);
    if (!at) return hone_errorf(HONE_ERR_NOMEM, "out of memory splitting %zu bytes into paragraphs", n);
    hone_status st = HONE_OK;
    for (int r = 0; r < (repeat > 0 ? repeat : 1) && st == HONE_OK; r++) {
        size_t tokens = 0;
        int failed = 0;
        const double t0 = hone_now_seconds();
#pragma omp parallel for schedule(dynamic, 16) reduction(+ : tokens, failed)
        for (size_t i = 0; i < n_par; i++) {
            int32_t *ids = NULL;
            size_t m = 0;
            if (hone_tokenizer_encode(tok, text + at[i], at[i + 1] - at[i], 0, &ids, &m) != HONE_OK) failed++;
            tokens += m;
            free(ids);
        }
        const double seconds = hone_now_seconds() - t0;
        if (failed) st = hone_errorf(HONE_ERR_INVALID, "%d paragraphs could not be encoded", failed);
        else if (r == 0 || seconds < out->seconds) {
            if (r == 0) out->first_seconds = seconds;
            out->seconds = seconds;
            out->tokens = tokens;
        }
    }
    out->bytes = n;
    out->paragraphs = n_par;
    out->mb_per_second = out->seconds > 0 ? (double)n / out->seconds / 1e6 : 0;
    out->first_mb_per_second = out->first_seconds > 0 ? (double)n / out->first_seconds / 1e6 : 0;
    free(at);
    return st;
}
