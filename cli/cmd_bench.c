/* hone bench train — time training steps (full fine-tuning or LoRA) of a built-in model shape.
 * hone bench tokenize — encoder speed of a tokenizer on a text corpus. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const hone_key_spec keys[] = {
    {"arch", HONE_KEY_STRING, NULL, "gpt2 | llama (checked against the preset)"},
    {"preset", HONE_KEY_STRING, "gpt2-124m", "model shape (gpt2-124m, smollm-135m, ...)"},
    {"micro_batch_size", HONE_KEY_INT, "4", "sequences per step"},
    {"sequence_len", HONE_KEY_INT, "64", "tokens per sequence"},
    {"steps", HONE_KEY_INT, "10", "timed steps"},
    {"warmup", HONE_KEY_INT, "2", "untimed steps first"},
    {"adapter", HONE_KEY_STRING, NULL, "lora: time LoRA steps (frozen base) instead of full fine-tuning"},
    {"lora_r", HONE_KEY_INT, "16", "LoRA rank"},
    {"lora_alpha", HONE_KEY_FLOAT, "8", "LoRA scale numerator: scale = lora_alpha / lora_r"},
    {"lora_target_modules", HONE_KEY_LIST, "all-linear", "module names (q_proj,v_proj) or all-linear"},
    {"lora_modules_to_save", HONE_KEY_LIST, NULL, "modules trained in full next to LoRA: embed_tokens, lm_head"},
    {"lora_dropout", HONE_KEY_FLOAT, "0", "dropout on the LoRA path's input, in [0, 1)"},
    {"base_dtype", HONE_KEY_STRING, "fp32", "fp32 | bf16: keep the frozen base's matrices in bf16 (needs --adapter)"},
    {"json", HONE_KEY_BOOL, "false", "print one JSON object on stdout"},
    CLI_THREADS_KEY,
};

static const hone_key_spec tokenize_keys[] = {
    {"tokenizer", HONE_KEY_STRING, NULL, "tokenizer.json or a folder with one (or vocab.json + merges.txt)"},
    {"data", HONE_KEY_STRING, NULL, "UTF-8 text corpus; paragraphs (cut after blank lines) are encoded in parallel"},
    {"repeat", HONE_KEY_INT, "3", "timed passes; the fastest is reported"},
    {"json", HONE_KEY_BOOL, "false", "print one JSON object on stdout"},
    CLI_THREADS_KEY,
};

static int bench_tokenize(int argc, char **argv) {
    hone_settings *s;
    int code;
    if (cli_parse(&s, "bench tokenize", "--tokenizer DIR --data FILE.txt [--threads N] [--repeat 3] [--json]",
                  tokenize_keys, sizeof tokenize_keys / sizeof tokenize_keys[0], argc, argv, &code))
        return code;
    int rc = 1;
    hone_tokenizer *tok = NULL;
    char *text = NULL;
    size_t n = 0;
    hone_bench_tokenize_result r;
    if (hone_settings_require(s, "tokenizer") != HONE_OK || hone_settings_require(s, "data") != HONE_OK ||
        !cli_threads(s, "bench tokenize") || hone_tokenizer_load(&tok, hone_settings_str(s, "tokenizer")) != HONE_OK ||
        hone_file_read(hone_settings_str(s, "data"), &text, &n) != HONE_OK ||
        hone_bench_tokenize(tok, text, n, (int)hone_settings_int(s, "repeat"), &r) != HONE_OK) {
        cli_fail("bench tokenize");
        goto done;
    }
    if (hone_settings_bool(s, "json"))
        printf("{\"threads\": %d, \"bytes\": %zu, \"paragraphs\": %zu, \"tokens\": %zu, \"first_seconds\": %.6f, "
               "\"first_mb_per_second\": %.2f, \"seconds\": %.6f, \"mb_per_second\": %.2f}\n",
               omp_get_max_threads(), r.bytes, r.paragraphs, r.tokens, r.first_seconds, r.first_mb_per_second,
               r.seconds, r.mb_per_second);
    else
        printf("%zu bytes, %zu paragraphs -> %zu tokens with %d threads: %.1f MB/s on the first pass (cold word "
               "caches), %.1f MB/s at best (warm)\n",
               r.bytes, r.paragraphs, r.tokens, omp_get_max_threads(), r.first_mb_per_second, r.mb_per_second);
    rc = 0;
done:
    free(text);
    hone_tokenizer_free(tok);
    hone_settings_free(s);
    return rc;
}

int cmd_bench(int argc, char **argv) {
    if (argc >= 1 && !strcmp(argv[0], "tokenize")) return bench_tokenize(argc - 1, argv + 1);
    if (argc < 1 || strcmp(argv[0], "train") != 0) {
        if (argc >= 1 && (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h"))) {
            printf("usage: hone bench train --preset NAME [--micro-batch-size B] [--sequence-len T] [--steps N]\n"
                   "                        [--adapter lora [--lora-r 16] [--lora-target-modules all-linear]\n"
                   "                        [--base-dtype bf16]]\n"
                   "       hone bench tokenize --tokenizer DIR --data FILE.txt [--threads N]\n");
            return 0;
        }
        fprintf(stderr, "hone bench: error: expected a benchmark name: `hone bench train ...` or "
                        "`hone bench tokenize ...`\n");
        return 2;
    }
    hone_settings *s;
    int code;
    if (cli_parse(&s, "bench train",
                  "--preset NAME [--micro-batch-size B] [--sequence-len T] [--steps N] [--adapter lora] [--json]",
                  keys, sizeof keys / sizeof keys[0], argc - 1, argv + 1, &code))
        return code;
    int rc = 1;
    hone_model_config c;
    if (hone_model_config_preset(&c, hone_settings_str(s, "preset")) != HONE_OK) {
        cli_fail("bench");
        goto done;
    }
    const char *arch = hone_settings_str(s, "arch");
    if (arch && strcmp(arch, c.arch == HONE_ARCH_GPT2 ? "gpt2" : "llama") != 0) {
        fprintf(stderr, "hone bench: error: preset %s is not a %s model\n", hone_settings_str(s, "preset"), arch);
        goto done;
    }
    if (!cli_threads(s, "bench")) goto done;
    int threads = omp_get_max_threads();
    const int B = (int)hone_settings_int(s, "micro_batch_size"), T = (int)hone_settings_int(s, "sequence_len");
    hone_peft_config pc;
    const int lora = hone_settings_is_set(s, "adapter");
    static const char *const lora_keys[] = {"lora_r", "lora_alpha", "lora_target_modules", "lora_dropout",
                                            "lora_modules_to_save"};
    for (size_t k = 0; k < sizeof lora_keys / sizeof lora_keys[0] && !lora; k++)
        if (hone_settings_is_set(s, lora_keys[k])) {
            fprintf(stderr, "hone bench: error: %s is set but no adapter is: add --adapter lora\n", lora_keys[k]);
            goto done;
        }
    if (lora) {
        hone_peft_config_defaults(&pc, HONE_PEFT_LORA);
        if (hone_peft_kind_parse(hone_settings_str(s, "adapter"), &pc.kind) != HONE_OK) {
            cli_fail("bench");
            goto done;
        }
        pc.r = (int)hone_settings_int(s, "lora_r");
        pc.alpha = (float)hone_settings_float(s, "lora_alpha");
        pc.dropout = (float)hone_settings_float(s, "lora_dropout");
        pc.target_modules = hone_settings_str(s, "lora_target_modules");
        pc.modules_to_save = hone_settings_str(s, "lora_modules_to_save");
    }
    hone_bench_result r;
    hone_dtype base_dtype;
    if (hone_base_dtype_parse(hone_settings_str(s, "base_dtype"), &base_dtype) != HONE_OK ||
        hone_bench_train_base(&c, lora ? &pc : NULL, base_dtype, B, T, (int)hone_settings_int(s, "steps"),
                              (int)hone_settings_int(s, "warmup"), &r) != HONE_OK) {
        cli_fail("bench");
        goto done;
    }
    const char *method = lora ? hone_settings_str(s, "adapter") : "full";
    if (hone_settings_bool(s, "json"))
        printf("{\"impl\": \"hone\", \"preset\": \"%s\", \"micro_batch_size\": %d, \"sequence_len\": %d, "
               "\"threads\": %d, \"params\": %zu, \"ms_per_step\": %.3f, \"tokens_per_second\": %.2f, "
               "\"gflops\": %.2f, \"peak_gflops\": %.2f, \"mfu\": %.4f, \"method\": \"%s\", "
               "\"trainable_params\": %zu, \"base_dtype\": \"%s\", \"peak_memory_mb\": %.1f, "
               "\"last_loss\": %.6f}\n",
               hone_settings_str(s, "preset"), B, T, threads, r.n_params, r.ms_per_step, r.tokens_per_second, r.gflops,
               r.peak_gflops, r.mfu, method, r.n_trainable, hone_settings_str(s, "base_dtype"), r.peak_memory_mb,
               r.last_loss);
    else
        printf("%s %s (%zu parameters, %zu trainable), B=%d T=%d, %d threads: %.1f ms/step, %.0f tokens/s, %.1f "
               "GFLOP/s of a %.1f GFLOP/s sgemm peak (MFU %.0f%%), %s base, peak memory %.0f MB\n",
               hone_settings_str(s, "preset"), method, r.n_params, r.n_trainable, B, T, threads, r.ms_per_step,
               r.tokens_per_second, r.gflops, r.peak_gflops, 100 * r.mfu, hone_settings_str(s, "base_dtype"),
               r.peak_memory_mb);
    rc = 0;
done:
    hone_settings_free(s);
    return rc;
}
