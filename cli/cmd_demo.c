/* hone demo — the Quick start's main job, everything built in: a tiny Llama-architecture base model pretrained on
 * synthetic text (once; later runs reuse it), instruction-tuned on a synthetic multi-task suite through the same
 * path as hone sft (chat template → pack → hone_train_rows); two task specialists, short fine-tunes of that
 * instruction-tuned model on one task each, merged back into one model over it through the same path as hone merge
 * (a mergekit config → hone_merge_run); every model scored by exact match on held-out prompts, greedy generation
 * with the KV cache. Ends with the accuracy table and OUT/report.html. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "demo.h"

static const hone_key_spec keys[] = {
    {"output_dir", HONE_KEY_STRING, "demo-out", "where the base model, the fine-tunes, the merges and report.html go"},
    {"seed", HONE_KEY_INT, "42", "random seed: tasks, initialisation, data order"},
    {"quick", HONE_KEY_BOOL, "false",
     "about 40 s instead of two and a half minutes: fewer prompts, a shorter base and SFT (for tests)"},
    {"text_only", HONE_KEY_BOOL, "false",
     "only pretrain a byte-level llama-tiny (vocabulary 256) on synthetic text and sample from it: OUT/config.json, "
     "model.safetensors, train.bin (tests build small models with it)"},
    {"seconds", HONE_KEY_FLOAT, "60", "text_only: training time budget"},
    {"max_steps", HONE_KEY_INT, "2000", "text_only: stop earlier after this many steps"},
    {"write_suite", HONE_KEY_STRING, NULL,
     "only write the task suite to DIR/train.jsonl and DIR/test.jsonl (alpaca rows with a \"task\" field, for hone "
     "sft, hone select and hone eval --tasks) and stop"},
    {"suite_train", HONE_KEY_INT, "0", "write_suite: training prompts per task (0 = the demo's)"},
    {"suite_test", HONE_KEY_INT, "0", "write_suite: held-out prompts per task (0 = the demo's)"},
    /* not CLI_THREADS_KEY's 0 (all cores): at two rows of a 64-wide model per step, a second thread costs more in
     * synchronisation than it saves (measured: 2 threads several times slower on a busy 2-core machine) */
    {"threads", HONE_KEY_INT, "1", "CPU threads for OpenMP and BLAS (0 = all cores)"},
};

/* How much of everything: the defaults take two and a half minutes on one core the first time (the base
 * pretraining, a minute of it, is reused after); quick is for tests. Batches are small (two rows a step) because a
 * model this size learns more from many small steps than from few large ones. Shorter bases or SFTs make a lottery of
 * the seed (docs/PERFORMANCE.md): at 1,200 pretraining or 800 SFT steps, some seeds' SFT learns next to nothing. */
typedef struct {
    int base_steps;       /* pretraining steps of the base model (2 blocks of 128 bytes each) */
    size_t n_train;       /* training prompts per task */
    size_t n_test;        /* held-out prompts per task */
    int sft_steps;        /* steps of the fine-tune on every task (2 packed rows of 256 tokens each) */
    int specialist_steps; /* steps of each specialist (half of the tasks, from the full SFT) */
} demo_plan;

static const demo_plan full_plan = {5000, 2000, 100, 1600, 400};
/* quick: its full SFT still learns something (36 % mean at seed 42; with a 300-step base 9 %), so that the tests'
 * "SFT beats the base" does not hang on a few lucky prompts */
static const demo_plan quick_plan = {1000, 300, 25, 800, 20};

#define ALL_TASKS ((1u << HONE_TASK_COUNT) - 1)
#define SPECIALIST_A (1u << HONE_TASK_SORT)
#define SPECIALIST_B (1u << HONE_TASK_ADD)

/* The specialists start from the full SFT on every task, the shared instruction-tuned model, and the merges are
 * taken over it (mergekit's base_model), as merging is used in practice: fine-tunes of one instruct model. Each
 * trains on its task plus as many prompts of the others (rehearsal): trained on its task alone, a model this size
 * forgets the others, and the merges then kept less of either gain. Measured over seeds (docs/PERFORMANCE.md):
 * specialists trained from the pretrained base (from scratch), or from the SFT without rehearsal, as LoRA adapters,
 * or from a longer SFT (which leaves them little to gain on held-out prompts) all merged worse. */
#define SHARED_SFT "sft-all"

/* The fine-tunes, one row of the table each. */
typedef struct {
    const char *label, *dir;
    unsigned tasks;   /* bit t: trained on task t */
    int replay;       /* 1: also as many prompts of the other tasks, in every k-th round of the suite (rehearsal) */
    const char *from; /* NULL: starts from the base model; SHARED_SFT: a specialist, merged */
    int lora_r;       /* > 0: a LoRA adapter of this rank on every linear layer (alpha 2r), the base frozen */
    float learning_rate;
    /* LoRA: modules trained in full beside it. The base never saw the chat tokens, and LoRA alone cannot move the
     * embeddings or lm_head they need (loss plateaus near 3 where full fine-tuning reaches 0.8) */
    const char *lora_modules_to_save;
} demo_finetune;

/* In training order: SHARED_SFT before the specialists that start from it. */
static const demo_finetune finetunes[] = {
    {"full SFT, all tasks", SHARED_SFT, ALL_TASKS, 0, NULL, 0, 3e-3f, NULL},
    {"LoRA r=16, all tasks", "lora-all", ALL_TASKS, 0, NULL, 16, 3e-3f, "embed_tokens,lm_head"},
    {"specialist: SFT + sort", "sft-sort", SPECIALIST_A, 1, SHARED_SFT, 0, 1e-3f, NULL},
    {"specialist: SFT + add", "sft-add", SPECIALIST_B, 1, SHARED_SFT, 0, 1e-3f, NULL},
};

/* The merges of the two specialists over the full SFT (mergekit methods and parameters, the same for both models):
 * task arithmetic adds 0.7 of each task vector; TIES keeps the larger half of each (sign election, disjoint mean).
 * At 0.2M parameters a merge keeps part of each specialist's gain, how much depending on the run
 * (docs/PERFORMANCE.md: weights 0.5-1.0 and densities 0.2-0.5 compared over seeds). */
typedef struct {
    const char *label, *name, *method;
    double weight, density; /* density NAN: not a parameter of the method */
} demo_merge;

static const demo_merge merges[] = {
    {"merge over SFT: task arithmetic 0.7", "merge-task-arithmetic", "task_arithmetic", 0.7, NAN},
    {"merge over SFT: TIES, density 0.5", "merge-ties", "ties", 1.0, 0.5},
};

#define N_FINETUNES (sizeof finetunes / sizeof finetunes[0])
#define N_MERGES (sizeof merges / sizeof merges[0])
#define N_ROWS (1 + N_FINETUNES + N_MERGES)

/* Everything the stages share. */
typedef struct {
    const demo_plan *plan;
    const char *out;
    char *base_dir;
    uint64_t seed;
    double t0;
    int threads;
    hone_tokenizer *tok;
    hone_chat_template *tmpl;
    hone_render_options render;
    hone_answer_options answer;
    hone_task_set train, test;
    hone_sequence *seqs; /* train.items rendered, same order */
    demo_row rows[N_ROWS];
    size_t n_rows;
} demo;

static double since(const demo *d) { return hone_now_seconds() - d->t0; }

/* ---- base model ------------------------------------------------------------------------------------------- */

/* The base: llama-tiny (width 64, 4 heads, 2 key/value heads) with 4 layers and the byte-level vocabulary plus the
 * three chat tokens (hone_byte_chat_tokenizer_write). */
static void base_config(hone_model_config *c) {
    hone_model_config_preset(c, "llama-tiny");
    c->vocab_size = HONE_BYTE_CHAT_VOCAB;
    c->num_layers = 4;
    c->max_position_embeddings = 512;
    c->bos_token_id = -1;
    c->eos_token_id = HONE_BYTE_CHAT_IM_END; /* a turn ends the answer */
}

/* OUT/base.json, written once the base folder is complete: what made it. A base is reused only when it matches. */
static char *base_marker(const demo *d) {
    hone_model_config c;
    base_config(&c);
    char *config = hone_model_config_to_json(&c), *text = config ? malloc(strlen(config) + 128) : NULL;
    if (text)
        sprintf(text, "{\"text\": \"skills\", \"seed\": %llu, \"base_steps\": %d, \"config\": %s}\n",
                (unsigned long long)d->seed, d->plan->base_steps, config);
    free(config);
    return text;
}

/* The progress lines of a training stage: about ten of them, each with the mean loss of the steps since the last
 * one (one step of two rows is too noisy to read). */
typedef struct {
    double loss_sum;
    int n_steps;
} step_printer;

static void print_step(step_printer *p, const hone_step_info *s, double seconds, int last) {
    p->loss_sum += s->loss;
    p->n_steps++;
    const int64_t every = s->total_steps >= 20 ? s->total_steps / 10 : 1;
    if (s->step != 1 && s->step % every != 0 && s->step != s->total_steps && !last) return;
    printf("      step %5lld/%lld  loss %.3f (mean of %d step%s)  %.0f tokens/s  %.0f s\n", (long long)s->step,
           (long long)s->total_steps, p->loss_sum / p->n_steps, p->n_steps, p->n_steps == 1 ? "" : "s",
           s->tokens_per_second, seconds);
    fflush(stdout);
    p->loss_sum = 0;
    p->n_steps = 0;
}

typedef struct {
    double t0, budget; /* stop once budget seconds have passed since t0 */
    step_printer printer;
} pretrain_watch;

static int show_pretrain(const hone_step_info *s, void *user) {
    pretrain_watch *w = user;
    const double t = hone_now_seconds() - w->t0;
    const int stop = t >= w->budget;
    print_step(&w->printer, s, t, stop);
    return stop;
}

/* Pretrains m on the bytes of text, `batch` blocks of 128 bytes a step, for up to max_steps steps or until w's budget
 * is spent (constant learning rate after a 20-step warm-up), and saves it to dir. */
static hone_status pretrain_tokens(hone_model *m, const hone_token_stream *data, const char *dir, int batch,
                                   int64_t max_steps, uint64_t seed, pretrain_watch *w, hone_train_summary *sum) {
    hone_train_config tc;
    hone_train_config_defaults(&tc);
    tc.sequence_len = 128;
    tc.micro_batch_size = batch;
    tc.max_steps = max_steps;
    tc.learning_rate = 3e-3f;
    tc.lr_scheduler = HONE_SCHED_CONSTANT;
    tc.warmup_steps = 20;
    tc.optim.weight_decay = 0.01f;
    tc.seed = seed;
    tc.output_dir = dir;
    return hone_pretrain(m, data, &tc, show_pretrain, w, sum);
}

static hone_status pretrain_base(demo *d) {
    hone_model_config c;
    base_config(&c);
    hone_model *m = NULL;
    const size_t n_bytes = 1 << 20;
    hone_token_stream data = {0};
    char *text = hone_synthetic_skill_text(d->seed, n_bytes);
    hone_status st = text ? hone_tokens_from_bytes(&data, text, n_bytes) : hone_errorf(HONE_ERR_NOMEM, "out of memory");
    free(text);
    if (st == HONE_OK) st = hone_model_create(&m, &c, d->seed);
    hone_train_summary sum;
    if (st == HONE_OK) {
        printf("      a %.2fM-parameter Llama (%d layers, width %d) reads %zu KiB of synthetic text for %d steps:\n",
               hone_model_num_params(m) / 1e6, c.num_layers, c.hidden_size, n_bytes >> 10, d->plan->base_steps);
        pretrain_watch w = {.t0 = d->t0, .budget = INFINITY};
        st = pretrain_tokens(m, &data, d->base_dir, 2, d->plan->base_steps, d->seed, &w, &sum);
    }
    if (st == HONE_OK) st = hone_byte_chat_tokenizer_write(d->base_dir);
    hone_tokens_free(&data);
    hone_model_free(m);
    return st;
}

static hone_status ensure_base(demo *d) {
    char *marker = hone_path_join(d->out, "base.json"), *want = base_marker(d), *have = NULL;
    size_t n;
    hone_status st = marker && want ? HONE_OK : hone_errorf(HONE_ERR_NOMEM, "out of memory");
    const int reuse = st == HONE_OK && hone_file_exists(marker) && hone_file_read(marker, &have, &n) == HONE_OK &&
                      !strcmp(have, want);
    if (reuse) printf("[1/5] base model: reusing %s (pretrained by an earlier run; delete it to pretrain again)\n",
                      d->base_dir);
    else if (st == HONE_OK) {
        printf("[1/5] base model: pretraining it into %s (later runs reuse it)\n", d->base_dir);
        remove(marker); /* a run stopped halfway must not leave a folder that looks complete */
        st = pretrain_base(d);
        if (st == HONE_OK) st = hone_file_write_atomic(marker, want, strlen(want));
        if (st == HONE_OK) printf("      done at %.0f s\n", since(d));
    }
    free(marker);
    free(want);
    free(have);
    return st;
}

/* ---- tasks, rendering, evaluation ------------------------------------------------------------------------- */

static hone_status load_chat(demo *d) {
    HONE_TRY(hone_tokenizer_load(&d->tok, d->base_dir));
    HONE_TRY(hone_chat_template_from_model(&d->tmpl, d->base_dir));
    const hone_special_tokens *sp = hone_tokenizer_special(d->tok);
    d->render = (hone_render_options){.tokenizer = d->tok, .chat_template = d->tmpl, .eos_id = sp->eos_id};
    d->answer = (hone_answer_options){.render = &d->render, .stop_id = sp->eos_id, .max_new_tokens = 8};
    return HONE_OK;
}

static hone_status make_suite(demo *d) {
    HONE_TRY(hone_task_suite(d->seed, d->plan->n_train, d->plan->n_test, &d->train, &d->test));
    d->seqs = calloc(d->train.n, sizeof *d->seqs);
    if (!d->seqs) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < d->train.n; i++) {
        hone_example ex;
        HONE_TRY(hone_task_item_example(&d->train.items[i], &ex));
        hone_status st = hone_render_example(&ex, &d->render, &d->seqs[i]);
        hone_example_free(&ex);
        HONE_TRY(st);
    }
    printf("[2/5] tasks: %d tasks x %zu training prompts, %zu held-out prompts each (no held-out problem is trained "
           "on), rendered with the base model's ChatML template; for example:\n",
           HONE_TASK_COUNT, d->plan->n_train, d->plan->n_test);
    for (int t = 0; t < HONE_TASK_COUNT; t++)
        printf("      %-8s %-24s -> %s\n", hone_task_name((hone_task)t), d->test.items[t].prompt,
               d->test.items[t].answer);
    return HONE_OK;
}

static demo_row *new_row(demo *d, const char *label, const char *dir) {
    demo_row *r = &d->rows[d->n_rows++];
    r->label = label;
    r->dir = dir;
    return r;
}

static double accuracy(const hone_task_scores *s, int t) {
    return s->total[t] ? (double)s->correct[t] / (double)s->total[t] : 0;
}

static double mean_accuracy(const hone_task_scores *s) {
    double sum = 0;
    for (int t = 0; t < HONE_TASK_COUNT; t++) sum += accuracy(s, t);
    return sum / HONE_TASK_COUNT;
}

#define LABEL_WIDTH 35 /* the longest row label */

static hone_status evaluate(demo *d, hone_model *m, demo_row *r) {
    HONE_TRY(hone_eval_exact_match(m, &d->answer, d->test.items, d->test.n, &r->scores, NULL));
    printf("      %-*s", LABEL_WIDTH, r->label);
    for (int t = 0; t < HONE_TASK_COUNT; t++)
        printf("  %s %3.0f%%", hone_task_name((hone_task)t), 100 * accuracy(&r->scores, t));
    printf("   (%.0f s)\n", since(d));
    fflush(stdout);
    return HONE_OK;
}

static hone_status evaluate_dir(demo *d, demo_row *r) {
    hone_model *m;
    HONE_TRY(hone_model_load(&m, r->dir));
    hone_status st = evaluate(d, m, r);
    hone_model_free(m);
    return st;
}

/* ---- fine-tunes ------------------------------------------------------------------------------------------- */

static int curve_push(demo_curve *c, double step, double loss) {
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 256;
        double *s = realloc(c->step, cap * sizeof *s);
        if (s) c->step = s;
        double *l = s ? realloc(c->loss, cap * sizeof *l) : NULL;
        if (!l) return 0;
        c->loss = l;
        c->cap = cap;
    }
    c->step[c->n] = step;
    c->loss[c->n++] = loss;
    return 1;
}

typedef struct {
    demo *d;
    demo_row *row;
    int ok;
    step_printer printer;
} train_watch;

static int show_finetune(const hone_step_info *s, void *user) {
    train_watch *w = user;
    w->ok &= curve_push(&w->row->curve, (double)s->step, s->loss);
    print_step(&w->printer, s, since(w->d), !w->ok);
    return !w->ok;
}

/* Trains a copy of the base (or of OUT/f->from) on the training prompts of f->tasks (packed as hone sft packs
 * them), saves it to OUT/f->dir and scores it. */
static hone_status finetune(demo *d, const demo_finetune *f, int steps) {
    demo_row *r = new_row(d, f->label, hone_path_join(d->out, f->dir));
    hone_sequence *subset = malloc(d->train.n * sizeof *subset);
    char *from = f->from ? hone_path_join(d->out, f->from) : strdup(d->base_dir);
    if (!r->dir || !subset || !from) {
        free(subset);
        free(from);
        return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    }
    int own = 0;
    for (int t = 0; t < HONE_TASK_COUNT; t++) own += f->tasks >> t & 1;
    const size_t stride = f->replay && own ? (size_t)(HONE_TASK_COUNT - own) / (size_t)own : 0; /* item i: round i/4 */
    size_t n = 0;
    for (size_t i = 0; i < d->train.n; i++)
        if (f->tasks >> d->train.items[i].task & 1 || (stride && i / HONE_TASK_COUNT % stride == 0))
            subset[n++] = d->seqs[i];
    hone_train_config tc;
    hone_train_config_defaults(&tc);
    tc.sequence_len = 256;
    tc.micro_batch_size = 2;
    tc.max_steps = steps;
    tc.learning_rate = f->learning_rate;
    tc.lr_scheduler = HONE_SCHED_COSINE;
    tc.warmup_steps = 10;
    tc.seed = d->seed;
    tc.output_dir = r->dir;
    const hone_special_tokens *sp = hone_tokenizer_special(d->tok);
    const hone_pack_options po = {.sequence_len = tc.sequence_len, .sample_packing = 1, .pad_id = sp->pad_id};
    hone_packed rows = {0};
    hone_model *m = NULL;
    hone_adapter *adapter = NULL;
    train_watch w = {.d = d, .row = r, .ok = 1};
    hone_train_summary sum;
    hone_status st = hone_pack(subset, n, &po, &rows);
    if (st == HONE_OK) st = hone_model_load(&m, from);
    if (st == HONE_OK && f->lora_r) {
        hone_peft_config pc;
        hone_peft_config_defaults(&pc, HONE_PEFT_LORA);
        pc.r = f->lora_r;
        pc.alpha = 2.0f * (float)f->lora_r;
        pc.target_modules = "all-linear";
        pc.modules_to_save = f->lora_modules_to_save;
        st = hone_adapter_create(&adapter, m, &pc, d->seed);
        if (st == HONE_OK) st = hone_model_attach(m, adapter);
    }
    if (st == HONE_OK) {
        printf("      %s: %zu prompts in %zu packed rows, %d steps of %d rows at lr %g, from %s -> %s\n", f->label, n,
               rows.n_rows, steps, tc.micro_batch_size, (double)tc.learning_rate, from, r->dir);
        const double t = hone_now_seconds();
        st = hone_train_rows(m, &rows, &tc, show_finetune, &w, &sum);
        r->seconds = hone_now_seconds() - t;
    }
    if (st == HONE_OK && !w.ok) st = hone_errorf(HONE_ERR_NOMEM, "out of memory recording the loss curve");
    if (st == HONE_OK) st = evaluate(d, m, r);
    hone_model_free(m);
    hone_adapter_free(adapter);
    hone_packed_free(&rows);
    free(subset);
    free(from);
    return st;
}

/* ---- merges ----------------------------------------------------------------------------------------------- */

/* OUT/<name>.yaml: a mergekit config of the specialists over the model they start from (base_model: their task
 * vectors are taken against it); *path receives its path (free()). */
static hone_status write_merge_config(const demo *d, const demo_merge *mg, char **path) {
    char name[96], *text = NULL;
    size_t size = 0;
    snprintf(name, sizeof name, "%s.yaml", mg->name);
    *path = hone_path_join(d->out, name);
    FILE *f = *path ? open_memstream(&text, &size) : NULL;
    if (!f) return hone_errorf(HONE_ERR_NOMEM, "out of memory writing %s", name);
    fprintf(f, "# written by hone demo: the two specialists merged over the full SFT they both start from; run it "
               "again with\n#   hone merge %s --output-dir %s/%s\n"
               "merge_method: %s\nbase_model: %s/%s\nmodels:\n",
            *path, d->out, mg->name, mg->method, d->out, SHARED_SFT);
    for (size_t i = 0; i < N_FINETUNES; i++) {
        if (!finetunes[i].from) continue;
        fprintf(f, "  - model: %s/%s\n    parameters:\n      weight: %g\n", d->out, finetunes[i].dir, mg->weight);
        if (!isnan(mg->density)) fprintf(f, "      density: %g\n", mg->density);
    }
    fputs("dtype: float32\n", f);
    hone_status st = fclose(f) == 0 ? hone_file_write_atomic(*path, text, size)
                                    : hone_errorf(HONE_ERR_NOMEM, "out of memory writing %s", *path);
    free(text);
    return st;
}

/* Writes the merge's config, runs it as hone merge does into OUT/<name>/ and scores the result. */
static hone_status merge(demo *d, const demo_merge *mg) {
    demo_row *r = new_row(d, mg->label, hone_path_join(d->out, mg->name));
    char *config_path = NULL;
    hone_merge_config *cfg = NULL;
    hone_merge_options o;
    hone_merge_options_defaults(&o);
    o.output_dir = r->dir;
    o.seed = d->seed;
    hone_merge_summary sum;
    hone_status st = r->dir ? write_merge_config(d, mg, &config_path) : hone_errorf(HONE_ERR_NOMEM, "out of memory");
    if (st == HONE_OK) st = hone_merge_config_load(&cfg, config_path);
    if (st == HONE_OK) st = hone_merge_run(cfg, &o, &sum);
    if (st == HONE_OK) {
        r->seconds = sum.seconds;
        printf("      %s: %s -> %s (%zu tensors, %.2f s)\n", mg->label, config_path, r->dir, sum.n_tensors,
               sum.seconds);
        st = evaluate_dir(d, r);
    }
    hone_merge_config_free(cfg);
    free(config_path);
    return st;
}

/* ---- the table -------------------------------------------------------------------------------------------- */

static char *results_table(const demo *d) {
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    if (!f) return NULL;
    fprintf(f, "| %-*s |", LABEL_WIDTH, "model");
    for (int t = 0; t < HONE_TASK_COUNT; t++) fprintf(f, " %7s |", hone_task_name((hone_task)t));
    fprintf(f, "    mean |\n|");
    for (int i = 0; i < LABEL_WIDTH + 2; i++) fputc('-', f);
    fputc('|', f);
    for (int t = 0; t <= HONE_TASK_COUNT; t++) fprintf(f, "---------|");
    fputc('\n', f);
    for (size_t i = 0; i < d->n_rows; i++) {
        const demo_row *r = &d->rows[i];
        fprintf(f, "| %-*s |", LABEL_WIDTH, r->label);
        for (int t = 0; t < HONE_TASK_COUNT; t++) fprintf(f, " %6.0f%% |", 100 * accuracy(&r->scores, t));
        fprintf(f, " %6.0f%% |\n", 100 * mean_accuracy(&r->scores));
    }
    return fclose(f) == 0 ? text : (free(text), NULL);
}

static hone_status run(demo *d) {
    HONE_TRY(hone_dir_create(d->out));
    HONE_TRY(ensure_base(d));
    HONE_TRY(load_chat(d));
    HONE_TRY(make_suite(d));
    printf("[3/5] scoring the base model (greedy answers, exact match):\n");
    demo_row *base = new_row(d, "base model (before)", d->base_dir);
    HONE_TRY(evaluate_dir(d, base));
    printf("[4/5] fine-tuning the base model on all tasks, then the full SFT on one task each (chat template -> "
           "packed rows -> hone_train_rows, as hone sft):\n");
    for (size_t i = 0; i < N_FINETUNES; i++)
        HONE_TRY(finetune(d, &finetunes[i], finetunes[i].from ? d->plan->specialist_steps : d->plan->sft_steps));
    printf("[5/5] merging the two specialists into one model over the full SFT they start from (mergekit configs run "
           "by hone_merge_run, as hone merge):\n");
    for (size_t i = 0; i < N_MERGES; i++) HONE_TRY(merge(d, &merges[i]));
    char *table = results_table(d);
    if (!table) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    char summary[256], merge_note[512];
    snprintf(summary, sizeof summary, "seed %llu, %d thread%s, %.0f s in all", (unsigned long long)d->seed,
             d->threads, d->threads == 1 ? "" : "s", since(d));
    snprintf(merge_note, sizeof merge_note,
             "SFT = \"%s\" (folder %s). The specialists are fine-tunes of it on one task each (plus as many prompts "
             "of the others); the merges add "
             "their task vectors (specialist - SFT) to it (base_model: %s in merge-*.yaml).",
             finetunes[0].label, SHARED_SFT, SHARED_SFT);
    printf("\nexact-match accuracy on %zu held-out prompts per task:\n%s%s\n", d->plan->n_test, table, merge_note);
    hone_status st = demo_report_write(d->out, d->rows, d->n_rows, summary, merge_note);
    free(table);
    HONE_TRY(st);
    printf("\nreport: %s/report.html; models: %s/{base,%s,...}; total %.0f s\n", d->out, d->out, finetunes[0].dir,
           since(d));
    return HONE_OK;
}

/* --text-only: a byte-level llama-tiny (vocabulary 256) pretrained on hone_synthetic_text, with its text as an
 * llm.c shard beside it, and a greedy sample. */
static hone_status text_only(const char *out, uint64_t seed, int64_t max_steps, double seconds) {
    hone_model_config c;
    hone_model *m = NULL;
    const size_t n_bytes = 1 << 20;
    char *text = hone_synthetic_text(seed, n_bytes), *shard = hone_path_join(out, "train.bin");
    hone_token_stream data = {0};
    hone_status st = text && shard ? hone_model_config_preset(&c, "llama-tiny")
                                   : hone_errorf(HONE_ERR_NOMEM, "out of memory");
    if (st == HONE_OK) st = hone_model_create(&m, &c, seed);
    if (st == HONE_OK) st = hone_dir_create(out);
    if (st == HONE_OK) st = hone_tokens_from_bytes(&data, text, n_bytes);
    if (st == HONE_OK) st = hone_tokens_write_shard(shard, data.tokens, data.n_tokens);
    hone_train_summary sum;
    if (st == HONE_OK) {
        printf("hone demo --text-only: a %zu-parameter Llama-architecture model learns byte-level synthetic text for "
               "up to %.0f seconds; a sample of the text:\n%.*s\n",
               hone_model_num_params(m), seconds, 160, text);
        pretrain_watch w = {.t0 = hone_now_seconds(), .budget = seconds};
        st = pretrain_tokens(m, &data, out, 8, max_steps, seed, &w, &sum);
    }
    int32_t prompt[8], gen[120];
    int n_gen = 0;
    const char *start = "the cat ";
    for (int i = 0; start[i]; i++) prompt[i] = (unsigned char)start[i];
    const hone_sampling greedy = {.max_new_tokens = 120, .temperature = 0, .top_p = 1};
    if (st == HONE_OK) st = hone_generate(m, prompt, (int)strlen(start), &greedy, gen, &n_gen, NULL, NULL);
    if (st == HONE_OK) {
        printf("loss fell from %.3f to %.3f in %lld steps (%.0f s). Greedy sample after \"%s\":\n%s", sum.first_loss,
               sum.last_loss, (long long)sum.steps, sum.seconds, start, start);
        for (int i = 0; i < n_gen; i++) putchar(gen[i] >= 32 && gen[i] < 127 ? gen[i] : gen[i] == '\n' ? '\n' : '?');
        printf("\n\nmodel saved to %s/ (config.json, model.safetensors, metrics.jsonl, train.bin)\n", out);
    }
    free(text);
    free(shard);
    hone_tokens_free(&data);
    hone_model_free(m);
    return st;
}

/* --write-suite DIR: the demo's tasks (train and held-out items as make_suite draws them) as JSONL files. */
static hone_status write_suite(const char *dir, uint64_t seed, size_t n_train, size_t n_test) {
    hone_task_set train, test;
    char *train_path = hone_path_join(dir, "train.jsonl"), *test_path = hone_path_join(dir, "test.jsonl");
    hone_status st = train_path && test_path ? hone_dir_create(dir) : hone_errorf(HONE_ERR_NOMEM, "out of memory");
    if (st == HONE_OK) st = hone_task_suite(seed, n_train, n_test, &train, &test);
    if (st == HONE_OK) {
        st = hone_task_set_write_jsonl(&train, train_path);
        if (st == HONE_OK) st = hone_task_set_write_jsonl(&test, test_path);
        if (st == HONE_OK)
            printf("hone demo --write-suite: %zu training prompts -> %s, %zu held-out prompts -> %s (seed %llu)\n",
                   train.n, train_path, test.n, test_path, (unsigned long long)seed);
        hone_task_set_free(&train);
        hone_task_set_free(&test);
    }
    free(train_path);
    free(test_path);
    return st;
}

int cmd_demo(int argc, char **argv) {
    hone_settings *s;
    int code;
    if (cli_parse(&s, "demo", "[--output-dir demo-out] [--seed 42] [--threads N] [--quick] [--text-only]", keys,
                  sizeof keys / sizeof keys[0], argc, argv, &code))
        return code;
    if (!cli_threads(s, "demo")) {
        hone_settings_free(s);
        return 1;
    }
    if (hone_settings_str(s, "write_suite")) {
        const demo_plan *plan = hone_settings_bool(s, "quick") ? &quick_plan : &full_plan;
        const int64_t n_train = hone_settings_int(s, "suite_train"), n_test = hone_settings_int(s, "suite_test");
        int rc = 1;
        if (n_train < 0 || n_test < 0) fprintf(stderr, "hone demo: error: suite_train and suite_test must be >= 0\n");
        else
            rc = write_suite(hone_settings_str(s, "write_suite"), (uint64_t)hone_settings_int(s, "seed"),
                             n_train ? (size_t)n_train : plan->n_train, n_test ? (size_t)n_test : plan->n_test) ==
                         HONE_OK
                     ? 0
                     : cli_fail("demo");
        hone_settings_free(s);
        return rc;
    }
    if (hone_settings_bool(s, "text_only")) {
        const int rc = text_only(hone_settings_str(s, "output_dir"), (uint64_t)hone_settings_int(s, "seed"),
                                 hone_settings_int(s, "max_steps"), hone_settings_float(s, "seconds")) == HONE_OK
                           ? 0
                           : cli_fail("demo");
        hone_settings_free(s);
        return rc;
    }
    demo d = {.plan = hone_settings_bool(s, "quick") ? &quick_plan : &full_plan,
              .out = hone_settings_str(s, "output_dir"),
              .seed = (uint64_t)hone_settings_int(s, "seed"),
              .threads = hone_threads_set((int)hone_settings_int(s, "threads")), /* the count cli_threads set */
              .t0 = hone_now_seconds()};
    d.base_dir = hone_path_join(d.out, "base");
    printf("hone demo: instruction tuning you can watch work (seed %llu, %d thread%s)\n", (unsigned long long)d.seed,
           d.threads, d.threads == 1 ? "" : "s");
    const int rc = d.base_dir && run(&d) == HONE_OK ? 0 : cli_fail("demo");
    for (size_t i = 0; i < d.n_rows; i++) {
        if (d.rows[i].dir != d.base_dir) free((char *)d.rows[i].dir);
        free(d.rows[i].curve.step);
        free(d.rows[i].curve.loss);
    }
    for (size_t i = 0; d.seqs && i < d.train.n; i++) hone_sequence_free(&d.seqs[i]);
    free(d.seqs);
    hone_task_set_free(&d.train);
    hone_task_set_free(&d.test);
    hone_chat_template_free(d.tmpl);
    hone_tokenizer_free(d.tok);
    free(d.base_dir);
    hone_settings_free(s);
    return rc;
}
