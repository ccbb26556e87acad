/* hone demo — the Quick start's main job: pretrain a tiny built-in Llama-architecture model on built-in
 * synthetic text for about a minute, show the loss falling, and sample from it. */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

static const hone_key_spec keys[] = {
    {"output_dir", HONE_KEY_STRING, "demo-out", "where the trained model, train.bin and metrics.jsonl go"},
    {"seconds", HONE_KEY_FLOAT, "60", "training time budget"},
    {"max_steps", HONE_KEY_INT, "2000", "stop earlier after this many steps"},
    {"seed", HONE_KEY_INT, "42", "random seed"},
    CLI_THREADS_KEY,
};

typedef struct {
    double budget;
} demo_state;

static int show(const hone_step_info *s, void *user) {
    demo_state *d = user;
    int stop = s->elapsed_seconds >= d->budget;
    if (s->step == 1 || s->step % 50 == 0 || stop)
        printf("  step %4lld  loss %.3f  (%.0f tokens/s, %.0f s)\n", (long long)s->step, s->loss, s->tokens_per_second,
               s->elapsed_seconds);
    fflush(stdout);
    return stop;
}

static void print_bytes(const int32_t *ids, int n) {
    for (int i = 0; i < n; i++) putchar(ids[i] >= 32 && ids[i] < 127 ? ids[i] : (ids[i] == '\n' ? '\n' : '?'));
}

int cmd_demo(int argc, char **argv) {
    hone_settings *s;
    int code;
    if (cli_parse(&s, "demo", "[--seconds 60] [--output-dir demo-out]", keys, sizeof keys / sizeof keys[0], argc,
                  argv, &code))
        return code;
    int rc = 1;
    if (!cli_threads(s, "demo")) {
        hone_settings_free(s);
        return 1;
    }
    const char *out = hone_settings_str(s, "output_dir");
    const uint64_t seed = (uint64_t)hone_settings_int(s, "seed");
    hone_model_config c;
    hone_model *m = NULL;
    hone_token_stream data = {0};
    const size_t n_bytes = 1 << 20;
    char *text = hone_synthetic_text(seed, n_bytes);
    char *shard = hone_path_join(out, "train.bin");
    if (!text || hone_model_config_preset(&c, "llama-tiny") != HONE_OK || hone_model_create(&m, &c, seed) != HONE_OK ||
        hone_tokens_from_bytes(&data, text, n_bytes) != HONE_OK || hone_dir_create(out) != HONE_OK ||
        hone_tokens_write_shard(shard, data.tokens, data.n_tokens) != HONE_OK) {
        cli_fail("demo");
        goto done;
    }
    printf("hone demo: a %zu-parameter Llama-architecture model learns byte-level synthetic text.\n",
           hone_model_num_params(m));
    printf("sample of the training text:\n%.*s\n", 160, text);
    hone_train_config tc;
    hone_train_config_defaults(&tc);
    tc.sequence_len = 128;
    tc.micro_batch_size = 8;
    tc.max_steps = hone_settings_int(s, "max_steps");
    tc.learning_rate = 3e-3f;
    tc.lr_scheduler = HONE_SCHED_CONSTANT;
    tc.warmup_steps = 20;
    tc.optim.weight_decay = 0.01f;
    tc.seed = seed;
    tc.output_dir = out;
    demo_state d = {hone_settings_float(s, "seconds")};
    hone_train_summary sum;
    printf("training for up to %.0f seconds:\n", d.budget);
    if (hone_pretrain(m, &data, &tc, show, &d, &sum) != HONE_OK) {
        cli_fail("demo");
        goto done;
    }
    printf("loss fell from %.3f to %.3f in %lld steps (%.0f s).\n", sum.first_loss, sum.last_loss,
           (long long)sum.steps, sum.seconds);
    const char *prompt = "the cat ";
    int32_t ids[16], gen[120];
    int n_prompt = 0, n_gen = 0;
    for (const char *p = prompt; *p; p++) ids[n_prompt++] = (unsigned char)*p;
    hone_sampling samp = {.max_new_tokens = 120, .temperature = 0, .top_p = 1, .seed = seed};
    if (hone_generate(m, ids, n_prompt, &samp, gen, &n_gen, NULL, NULL) != HONE_OK) {
        cli_fail("demo");
        goto done;
    }
    printf("greedy sample after \"%s\":\n%s", prompt, prompt);
    print_bytes(gen, n_gen);
    printf("\n\nmodel saved to %s/ (config.json, model.safetensors, metrics.jsonl). Try:\n"
           "  build/hone eval --model %s --data %s --sequence-len 128\n"
           "  build/hone generate --model %s --prompt-ids 116,104,101,32 --max-new-tokens 40\n",
           out, out, shard, out);
    rc = 0;
done:
    free(text);
    free(shard);
    hone_tokens_free(&data);
    hone_model_free(m);
    hone_settings_free(s);
    return rc;
}
