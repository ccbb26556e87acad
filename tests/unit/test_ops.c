/* Finite-difference checks of every op's backward pass: for loss = sum(out * R) with a fixed random R, the
 * analytic input and parameter gradients must match central differences. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tensor/ops.h"
#include "testutil.h"

static hone_rng rng;

static float *randn(size_t n, float scale) {
    float *p = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = scale * hone_rng_normal(&rng);
    return p;
}

static float *zeros(size_t n) { return calloc(n, sizeof(float)); }

/* A closure over the op under test: computes out from the current inputs. */
typedef void (*forward_fn)(void *ctx, float *out);

static double loss_of(forward_fn f, void *ctx, float *out, const float *R, size_t n_out) {
    f(ctx, out);
    double s = 0;
    for (size_t i = 0; i < n_out; i++) s += (double)out[i] * R[i];
    return s;
}

/* Compares grad (analytic d loss / d x) with central differences on every element of x. */
static void check_fd(forward_fn f, void *ctx, float *x, const float *grad, size_t n, const float *R, size_t n_out,
                     const char *what) {
    float *out = malloc(n_out * sizeof(float));
    const float eps = 1e-2f;
    for (size_t i = 0; i < n; i++) {
        float keep = x[i];
        x[i] = keep + eps;
        double up = loss_of(f, ctx, out, R, n_out);
        x[i] = keep - eps;
        double down = loss_of(f, ctx, out, R, n_out);
        x[i] = keep;
        double fd = (up - down) / (2 * eps);
        double tol = 2e-2 * fabs(fd) + 2e-2;
        if (fabs(fd - grad[i]) > tol)
            fail_msg("%s: element %zu: analytic %.6g, finite difference %.6g", what, i, grad[i], fd);
    }
    free(out);
}

/* ---- linear ---- */
typedef struct { float *x, *w, *b; int N, IC, OC; } linear_ctx;
static void linear_fwd(void *p, float *out) {
    linear_ctx *c = p;
    op_linear_forward(out, c->x, c->w, c->b, c->N, c->IC, c->OC);
}
static void test_linear_backward(void **state) {
    (void)state;
    linear_ctx c = {randn(3 * 5, 1), randn(4 * 5, 1), randn(4, 1), 3, 5, 4};
    float *R = randn(3 * 4, 1), *dx = zeros(15), *dw = zeros(20), *db = zeros(4);
    op_linear_backward(dx, dw, db, R, c.x, c.w, c.N, c.IC, c.OC, 0);
    check_fd(linear_fwd, &c, c.x, dx, 15, R, 12, "linear dx");
    check_fd(linear_fwd, &c, c.w, dw, 20, R, 12, "linear dw");
    check_fd(linear_fwd, &c, c.b, db, 4, R, 12, "linear db");
    free(c.x), free(c.w), free(c.b), free(R), free(dx), free(dw), free(db);
}

/* ---- layernorm / rmsnorm ---- */
typedef struct { float *x, *w, *b; int N, C, rms; } norm_ctx;
static void norm_fwd(void *p, float *out) {
    norm_ctx *c = p;
    if (c->rms) op_rmsnorm_forward(out, NULL, c->x, c->w, c->N, c->C, 1e-5f);
    else op_layernorm_forward(out, NULL, NULL, c->x, c->w, c->b, c->N, c->C, 1e-5f);
}
static void check_norm(int rms) {
    const int N = 3, C = 8;
    norm_ctx c = {randn(N * C, 1), randn(C, 1), randn(C, 1), N, C, rms};
    float *R = randn(N * C, 1), *out = zeros(N * C), *mean = zeros(N), *rstd = zeros(N);
    float *dx = zeros(N * C), *dw = zeros(C), *db = zeros(C), *scratch = zeros(op_norm_scratch_floats(C));
    if (rms) {
        op_rmsnorm_forward(out, rstd, c.x, c.w, N, C, 1e-5f);
        op_rmsnorm_backward(dx, dw, R, c.x, c.w, rstd, N, C, scratch);
    } else {
        op_layernorm_forward(out, mean, rstd, c.x, c.w, c.b, N, C, 1e-5f);
        op_layernorm_backward(dx, dw, db, R, c.x, c.w, mean, rstd, N, C, scratch);
        check_fd(norm_fwd, &c, c.b, db, C, R, N * C, "layernorm db");
    }
    check_fd(norm_fwd, &c, c.x, dx, N * C, R, N * C, rms ? "rmsnorm dx" : "layernorm dx");
    check_fd(norm_fwd, &c, c.w, dw, C, R, N * C, rms ? "rmsnorm dw" : "layernorm dw");
    free(c.x), free(c.w), free(c.b), free(R), free(out), free(mean), free(rstd), free(dx), free(dw), free(db);
    free(scratch);
}
static void test_layernorm_backward(void **state) { (void)state; check_norm(0); }
static void test_rmsnorm_backward(void **state) { (void)state; check_norm(1); }

/* ---- activations ---- */
typedef struct { float *x; int N, I; op_activation act; int glu; } act_ctx;
static void act_fwd(void *p, float *out) {
    act_ctx *c = p;
    if (c->glu) op_glu_forward(out, c->x, c->N, c->I, c->act);
    else op_activation_forward(out, c->x, (size_t)c->N * c->I, c->act);
}
static void test_activation_backward(void **state) {
    (void)state;
    const char *names[] = {"gelu_tanh", "gelu_erf", "relu", "silu"};
    for (int a = 0; a < 4; a++) {
        for (int glu = 0; glu < 2; glu++) {
            const int N = 2, I = 6;
            size_t nin = (size_t)N * I * (glu ? 2 : 1);
            act_ctx c = {randn(nin, 1.5f), N, I, (op_activation)a, glu};
            /* keep ReLU inputs away from the kink where the derivative is undefined */
            for (size_t i = 0; i < nin; i++)
                if (fabsf(c.x[i]) < 0.05f) c.x[i] = 0.3f;
            float *R = randn((size_t)N * I, 1), *dx = zeros(nin);
            if (glu) op_glu_backward(dx, R, c.x, N, I, c.act);
            else op_activation_backward(dx, R, c.x, nin, c.act);
            char what[64];
            snprintf(what, sizeof what, "%s%s", glu ? "glu " : "", names[a]);
            check_fd(act_fwd, &c, c.x, dx, nin, R, (size_t)N * I, what);
            free(c.x), free(R), free(dx);
        }
    }
}

/* ---- rotary embeddings: the backward is the inverse rotation ---- */
typedef struct { float *x, *cos_t, *sin_t; int N, T, stride, heads, HD; } rope_ctx;
static void rope_fwd(void *p, float *out) {
    rope_ctx *c = p;
    memcpy(out, c->x, sizeof(float) * c->N * c->stride);
    op_rope(out, c->N, c->T, c->stride, c->heads, c->HD, c->cos_t, c->sin_t, NULL, 0);
}
static void test_rope_backward(void **state) {
    (void)state;
    const int T = 5, N = 10, HD = 8, heads = 3, stride = 4 * HD;
    rope_ctx c = {randn((size_t)N * stride, 1), zeros(T * HD / 2), zeros(T * HD / 2), N, T, stride, heads, HD};
    op_rope_tables(c.cos_t, c.sin_t, T, HD, 10000.0f);
    float *R = randn((size_t)N * stride, 1), *dx = malloc(sizeof(float) * N * stride);
    memcpy(dx, R, sizeof(float) * N * stride);
    op_rope(dx, N, T, stride, heads, HD, c.cos_t, c.sin_t, NULL, 1);
    check_fd(rope_fwd, &c, c.x, dx, (size_t)N * stride, R, (size_t)N * stride, "rope");
    free(c.x), free(c.cos_t), free(c.sin_t), free(R), free(dx);
}

/* ---- attention (with grouped-query heads) ---- */
typedef struct { float *qkv, *att; int B, T, NH, NKV, HD; } attn_ctx;
static void attn_fwd(void *p, float *out) {
    attn_ctx *c = p;
    op_attention_forward(out, c->att, c->qkv, NULL, c->B, c->T, c->NH, c->NKV, c->HD, 0.5f);
}
static void check_attention(int NH, int NKV) {
    const int B = 2, T = 4, HD = 3, S = (NH + 2 * NKV) * HD, n_out = B * T * NH * HD;
    attn_ctx c = {randn((size_t)B * T * S, 1), zeros((size_t)B * NH * T * T), B, T, NH, NKV, HD};
    float *R = randn(n_out, 1), *out = zeros(n_out), *dqkv = zeros((size_t)B * T * S);
    float *scratch = zeros(op_attention_scratch_floats(T));
    op_attention_forward(out, c.att, c.qkv, NULL, B, T, NH, NKV, HD, 0.5f);
    op_attention_backward(dqkv, R, c.qkv, c.att, NULL, B, T, NH, NKV, HD, 0.5f, scratch);
    check_fd(attn_fwd, &c, c.qkv, dqkv, (size_t)B * T * S, R, n_out, NKV < NH ? "attention (GQA)" : "attention");
    free(c.qkv), free(c.att), free(R), free(out), free(dqkv), free(scratch);
}
static void test_attention_backward(void **state) {
    (void)state;
    check_attention(2, 2);
    check_attention(4, 2);
}

/* ---- attention with a learned prefix (prefix tuning), on packed rows ---- */
typedef struct { float *qkv, *att, *prefix; const int32_t *pos; int B, T, NH, NKV, HD, n; } prefix_attn_ctx;
static op_prefix prefix_of(prefix_attn_ctx *c, float *dprefix) {
    const int D = c->NKV * c->HD; /* one layer: keys in slot 0, values in slot 1 of each virtual token */
    op_prefix p = {c->prefix, c->prefix + D, dprefix, dprefix ? dprefix + D : NULL, c->n, 2 * D};
    return p;
}
static void prefix_attn_fwd(void *p, float *out) {
    prefix_attn_ctx *c = p;
    op_prefix px = prefix_of(c, NULL);
    op_attention_prefix_forward(out, c->att, c->qkv, c->pos, c->B, c->T, c->NH, c->NKV, c->HD, 0.5f, &px);
}
static void test_attention_prefix_backward(void **state) {
    (void)state;
    const int B = 2, T = 5, NH = 4, NKV = 2, HD = 3, n = 2, S = (NH + 2 * NKV) * HD, n_out = B * T * NH * HD;
    const int32_t pos[10] = {0, 1, 2, 0, 1, 0, 1, 2, 3, 4}; /* row 0 packs two samples */
    const size_t n_prefix = (size_t)n * 2 * NKV * HD;
    prefix_attn_ctx c = {randn((size_t)B * T * S, 1), zeros((size_t)B * NH * T * (T + n)), randn(n_prefix, 1), pos,
                         B, T, NH, NKV, HD, n};
    float *R = randn(n_out, 1), *out = zeros(n_out), *dqkv = zeros((size_t)B * T * S), *dprefix = zeros(n_prefix);
    float *scratch = zeros(op_attention_prefix_scratch_floats(B, T, NH, n));
    op_prefix px = prefix_of(&c, dprefix);
    op_attention_prefix_forward(out, c.att, c.qkv, pos, B, T, NH, NKV, HD, 0.5f, &px);
    op_attention_prefix_backward(dqkv, R, c.qkv, c.att, pos, B, T, NH, NKV, HD, 0.5f, scratch, &px);
    check_fd(prefix_attn_fwd, &c, c.qkv, dqkv, (size_t)B * T * S, R, n_out, "prefix attention dqkv");
    check_fd(prefix_attn_fwd, &c, c.prefix, dprefix, n_prefix, R, n_out, "prefix attention dprefix");
    /* the prefix gradients accumulate (+=) */
    float *twice = zeros(n_prefix);
    for (size_t i = 0; i < n_prefix; i++) twice[i] = 2 * dprefix[i];
    op_attention_prefix_backward(dqkv, R, c.qkv, c.att, pos, B, T, NH, NKV, HD, 0.5f, scratch, &px);
    test_assert_close(dprefix, twice, n_prefix, 1e-6f, 1e-6f, "prefix gradients accumulate");
    /* without a prefix the variant is plain attention, bit for bit */
    float *plain = zeros(n_out), *att = zeros((size_t)B * NH * T * T);
    op_attention_forward(plain, att, c.qkv, pos, B, T, NH, NKV, HD, 0.5f);
    op_attention_prefix_forward(out, c.att, c.qkv, pos, B, T, NH, NKV, HD, 0.5f, NULL);
    assert_memory_equal(out, plain, sizeof(float) * n_out);
    free(c.qkv), free(c.att), free(c.prefix), free(R), free(out), free(dqkv), free(dprefix), free(scratch);
    free(twice), free(plain), free(att);
}

/* A row packed with several samples computes, forward and backward, what each sample computes as a row of its own;
 * the probabilities outside the samples' squares are never read (NaN there would show). */
static void test_attention_packed_matches_separate(void **state) {
    (void)state;
    const int T = 9, NH = 4, NKV = 2, HD = 3, S = (NH + 2 * NKV) * HD, OS = NH * HD;
    const int32_t pos[9] = {0, 1, 2, 3, 0, 1, 0, 1, 2}; /* samples of 4, 2 and 3 tokens */
    float *qkv = randn((size_t)T * S, 1), *R = randn((size_t)T * OS, 1), *att = zeros((size_t)NH * T * T);
    for (size_t i = 0; i < (size_t)NH * T * T; i++) att[i] = NAN;
    float *out = zeros((size_t)T * OS), *dqkv = zeros((size_t)T * S), *scratch = zeros(op_attention_scratch_floats(T));
    op_attention_forward(out, att, qkv, pos, 1, T, NH, NKV, HD, 0.5f);
    op_attention_backward(dqkv, R, qkv, att, pos, 1, T, NH, NKV, HD, 0.5f, scratch);
    for (int s0 = 0, L; s0 < T; s0 += L) {
        for (L = 1; s0 + L < T && pos[s0 + L] != 0; L++) {}
        float *att1 = zeros((size_t)NH * L * L), *out1 = zeros((size_t)L * OS), *dqkv1 = zeros((size_t)L * S);
        float *scratch1 = zeros(op_attention_scratch_floats(L));
        op_attention_forward(out1, att1, qkv + (size_t)s0 * S, NULL, 1, L, NH, NKV, HD, 0.5f);
        op_attention_backward(dqkv1, R + (size_t)s0 * OS, qkv + (size_t)s0 * S, att1, NULL, 1, L, NH, NKV, HD, 0.5f,
                              scratch1);
        test_assert_close(out + (size_t)s0 * OS, out1, (size_t)L * OS, 1e-6f, 1e-6f, "packed attention output");
        test_assert_close(dqkv + (size_t)s0 * S, dqkv1, (size_t)L * S, 1e-6f, 1e-6f, "packed attention gradient");
        free(att1), free(out1), free(dqkv1), free(scratch1);
    }
    free(qkv), free(R), free(att), free(out), free(dqkv), free(scratch);
}

/* op_exp, the branch-free e^x of the softmaxes and activations, against the C library's exp over its whole range. */
static void test_exp(void **state) {
    (void)state;
    double worst = 0;
    for (float x = -87.0f; x <= 88.0f; x += 0.001953125f) {
        const double want = exp((double)x), got = op_exp(x);
        const double ulp = nextafterf((float)want, INFINITY) - (float)want;
        const double err = fabs(got - want) / ulp;
        worst = err > worst ? err : worst;
    }
    if (worst > 1.0) fail_msg("op_exp is %.3f ulp from exp at worst (at most 1 expected)", worst);
    assert_true(op_exp(0.0f) == 1.0f);
    assert_true(op_exp(-87.5f) == 0.0f && op_exp(-INFINITY) == 0.0f);
    assert_true(isinf(op_exp(88.5f)) && isinf(op_exp(INFINITY)));
    assert_true(isnan(op_exp(NAN)));
}

/* The cached inference path computes the same outputs as the training path. */
static void test_attention_cached_matches_full(void **state) {
    (void)state;
    const int T = 6, NH = 4, NKV = 2, HD = 4, S = (NH + 2 * NKV) * HD;
    float *qkv = randn((size_t)T * S, 1), *att = zeros((size_t)NH * T * T), *full = zeros((size_t)T * NH * HD);
    op_attention_forward(full, att, qkv, NULL, 1, T, NH, NKV, HD, 0.5f);
    float *k = zeros((size_t)NKV * T * HD), *v = zeros((size_t)NKV * T * HD), *out = zeros((size_t)T * NH * HD);
    float *scratch = zeros((size_t)64 * T);
    for (int t = 0; t < T; t++)
        for (int h = 0; h < NKV; h++) {
            memcpy(k + ((size_t)h * T + t) * HD, qkv + (size_t)t * S + (NH + h) * HD, sizeof(float) * HD);
            memcpy(v + ((size_t)h * T + t) * HD, qkv + (size_t)t * S + (NH + NKV + h) * HD, sizeof(float) * HD);
        }
    /* two prefill rows, then one row at a time */
    op_attention_cached(out, qkv, S, k, v, 2, 0, T, NH, NKV, HD, 0.5f, scratch);
    for (int t = 2; t < T; t++)
        op_attention_cached(out + (size_t)t * NH * HD, qkv + (size_t)t * S, S, k, v, 1, t, T, NH, NKV, HD, 0.5f,
                            scratch);
    test_assert_close(out, full, (size_t)T * NH * HD, 1e-6f, 1e-5f, "cached attention");
    free(qkv), free(att), free(full), free(k), free(v), free(out), free(scratch);
}

/* ---- embeddings ---- */
typedef struct { float *wte, *wpe; int32_t *ids; int N, T, C; } emb_ctx;
static void emb_fwd(void *p, float *out) {
    emb_ctx *c = p;
    op_embedding_forward(out, c->ids, c->wte, c->wpe, NULL, c->N, c->T, c->C);
}
static void test_embedding_backward(void **state) {
    (void)state;
    const int V = 5, T = 3, N = 6, C = 4;
    int32_t ids[6] = {1, 3, 1, 4, 1, 0}; /* repeated ids accumulate */
    emb_ctx c = {randn(V * C, 1), randn(T * C, 1), ids, N, T, C};
    float *R = randn(N * C, 1), *dwte = zeros(V * C), *dwpe = zeros(T * C);
    op_embedding_backward(dwte, dwpe, R, ids, NULL, N, T, C);
    check_fd(emb_fwd, &c, c.wte, dwte, V * C, R, N * C, "embedding dwte");
    check_fd(emb_fwd, &c, c.wpe, dwpe, T * C, R, N * C, "embedding dwpe");
    free(c.wte), free(c.wpe), free(R), free(dwte), free(dwpe);
}

int main(void) {
    rng = hone_rng_new(1234, 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear_backward),     cmocka_unit_test(test_layernorm_backward),
        cmocka_unit_test(test_rmsnorm_backward),    cmocka_unit_test(test_activation_backward),
        cmocka_unit_test(test_rope_backward),       cmocka_unit_test(test_attention_backward),
        cmocka_unit_test(test_attention_cached_matches_full), cmocka_unit_test(test_embedding_backward),
        cmocka_unit_test(test_attention_prefix_backward), cmocka_unit_test(test_attention_packed_matches_separate),
        cmocka_unit_test(test_exp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
