/* Shared pieces of the command-line front end. Each cmd_*.c parses its settings, calls the library and prints;
 * no logic lives here that the library lacks. */
#ifndef HONE_CLI_H
#define HONE_CLI_H

#include "hone/hone.h"

typedef struct {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
} cli_command;

int cmd_pretrain(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_merge(int argc, char **argv);
int cmd_merge_moe(int argc, char **argv);
int cmd_expand(int argc, char **argv);
int cmd_data(int argc, char **argv);
int cmd_sft(int argc, char **argv);
int cmd_select(int argc, char **argv);
int cmd_merge_adapter(int argc, char **argv);

/* Parses argv against specs; handles --help. Returns 0 on success, else the exit code to return (0 for help). */
int cli_parse(hone_settings **s, const char *command, const char *usage, const hone_key_spec *specs, size_t n,
              int argc, char **argv, int *exit_code);
/* --adapter DIR (a PEFT adapter folder) when set: loads it for m and attaches it (*out: free after m is done with
 * it; NULL when unset). 0 after printing the error. (cmd_merge_adapter.c) */
int cli_load_adapter(hone_model *m, const hone_settings *s, const char *command, hone_adapter **out);
#define CLI_ADAPTER_KEY {"adapter", HONE_KEY_STRING, NULL, "PEFT adapter folder (LoRA, prompt or prefix tuning) to apply"}
/* Prints "hone COMMAND: error: <message>" and returns 1. */
int cli_fail(const char *command);
/* Applies --threads; 0 (after printing the error) when the value is invalid. */
int cli_threads(const hone_settings *s, const char *command);
/* Resolves `model` / `base_model` (axolotl's name); error when neither or both are set. */
const char *cli_model_path(const hone_settings *s, const char *command);
/* Fills a training configuration from the common training keys (CLI_TRAIN_KEYS); tc->config_json is the resolved
 * settings for report.html (free() it). */
int cli_train_config(const hone_settings *s, hone_train_config *tc, const char *command);

/* Output options of merge and expand (cmd_merge.c): --output-dir, --max-shard-size, --out-dtype, --threads;
 * 0 (after printing the error) when one is invalid. Progress goes to stderr, one line per tensor. */
int cli_merge_options(const hone_settings *s, hone_merge_options *o, const char *command);
/* Prints the summary line (stderr) or, with json, one JSON object (stdout). */
void cli_merge_report(const hone_merge_summary *sum, const char *output_dir, int json);
#define CLI_MERGE_OUTPUT_KEYS                                                                                   \
    {"max_shard_size", HONE_KEY_STRING, "5GB", "bytes per output safetensors shard (5GB, 500MB, 2GiB, ...)"},  \
    {"out_dtype", HONE_KEY_STRING, NULL, "float32 | float16 | bfloat16 (default: the config's out_dtype / dtype)"}

#define CLI_THREADS_KEY {"threads", HONE_KEY_INT, "0", "CPU threads for OpenMP and BLAS (0 = all cores)"}

/* cli_parse with fixed[0..n_fixed) followed by one key per dataset option (hone_dataset_option_list). Returns the
 * key table, which must outlive *s (free() it after hone_settings_free), or NULL when the command should return
 * *exit_code (help, bad flags, out of memory). */
hone_key_spec *cli_parse_with_dataset_options(hone_settings **s, const char *command, const char *usage,
                                              const hone_key_spec *fixed, size_t n_fixed, int argc, char **argv,
                                              int *exit_code);
/* The last line of a training command (stderr). */
void cli_print_train_summary(const hone_train_summary *sum, const char *output_dir);
/* Fills o from the dataset-option keys that are set; 0 (after printing the error) when one is invalid. The
 * option strings stay owned by s. */
int cli_dataset_options(const hone_settings *s, hone_dataset_options *o, const char *command);

/* Dataset mixtures (hone/mixture.h): the keys every command that reads a datasets list takes (plus `seed`, which
 * training commands have among CLI_TRAIN_KEYS), and the items a list entry may hold. */
#define CLI_MIXTURE_KEYS                                                                                        \
    {"mixture_size", HONE_KEY_INT, "0", "examples in a weighted mixture (0 = as many as the caps allow)"},      \
    {"mixture_with_replacement", HONE_KEY_BOOL, "false",                                                       \
     "draw a dataset's share with replacement when it exceeds the dataset (else an error)"},                   \
    {"dedup", HONE_KEY_STRING, "none", "remove duplicates: none | exact | near (MinHash; exact too)"},         \
    {"dedup_threshold", HONE_KEY_FLOAT, "0.8", "near duplicates: estimated Jaccard similarity at least this"}, \
    {"minhash_ngram", HONE_KEY_INT, "3", "MinHash shingle length in words (or characters)"},                  \
    {"minhash_chars", HONE_KEY_BOOL, "false", "MinHash shingles of characters instead of words"},             \
    {"minhash_permutations", HONE_KEY_INT, "128", "MinHash hash functions (signature length)"},               \
    {"minhash_bands", HONE_KEY_INT, "16", "LSH bands (must divide minhash_permutations)"},                    \
    {"inversion_rate", HONE_KEY_FLOAT, "0", "fraction of single-turn examples inverted (answer -> instruction)"}, \
    {"few_shot_rate", HONE_KEY_FLOAT, "0", "fraction of single-turn examples given few-shot exemplars"},      \
    {"few_shot_max_exemplars", HONE_KEY_INT, "3", "exemplars per few-shot example, at most (1..16)"},        \
    {"few_shot_max_chars", HONE_KEY_INT, "2000", "characters of exemplar text per few-shot example, at most"}
/* The mixture options from the CLI_MIXTURE_KEYS, `seed` and the RECORDS key `key`, whose items are paths or
 * mappings {path, type/format, weight, max_samples, fraction, few_shot_rate, inversion_rate, dataset options}; the
 * dataset-option keys set at the top level are every item's defaults. *sources (free()) holds pointers into s.
 * Errors name the config file, line and item. */
hone_status cli_mixture_options(const hone_settings *s, const char *key, hone_mixture_options *o,
                                hone_mixture_source **sources);
/* One stderr line per dataset of a built mixture: what was read, removed, capped and selected. */
void cli_print_mixture(const hone_mixture *m);

/* Loud, counted warnings of rendering (flagged[k]: examples with HONE_RENDER flag 1 << k) and the pad = eos note. */
void cli_render_warnings(const size_t flagged[3], size_t examples, const hone_tokenizer *tok);
/* The progress of training commands (user: the hone_train_config): on a terminal one bar redrawn in place (step,
 * loss, learning rate, tokens/s, ETA), else a plain line every logging_steps steps; evaluations always get a line. */
int cli_print_progress(const hone_step_info *s, void *user);

/* The token cache folder for text data (axolotl's name for its prepared-data folder). */
#define CLI_TOKEN_CACHE_KEY                                                                                     \
    {"dataset_prepared_path", HONE_KEY_STRING, NULL,                                                           \
     "token cache folder (default $HONE_CACHE_DIR/tokens, else ~/.cache/hone/tokens); none = no cache"}
/* The token cache folder from dataset_prepared_path: NULL when it is "none" (or no default exists). */
const char *cli_token_cache_dir(const hone_settings *s);

#define CLI_TRAIN_KEYS                                                                                          \
    {"sequence_len", HONE_KEY_INT, "512", "tokens per block"},                                                 \
    {"micro_batch_size", HONE_KEY_INT, "1", "blocks per forward/backward pass"},                               \
    {"gradient_accumulation_steps", HONE_KEY_INT, "1", "micro-batches per optimizer step"},                    \
    {"num_epochs", HONE_KEY_INT, "1", "passes over the data (ignored when max_steps > 0)"},                    \
    {"max_steps", HONE_KEY_INT, "0", "optimizer steps (0 = from num_epochs)"},                                 \
    {"learning_rate", HONE_KEY_FLOAT, "5e-5", "peak learning rate"},                                           \
    {"lr_scheduler", HONE_KEY_STRING, "linear", "constant | linear | cosine"},                                 \
    {"warmup_steps", HONE_KEY_INT, "0", "linear warm-up steps"},                                               \
    {"warmup_ratio", HONE_KEY_FLOAT, "0", "warm-up as a fraction of the steps (when warmup_steps is 0)"},      \
    {"optimizer", HONE_KEY_STRING, "adamw", "adamw | sgd"},                                                    \
    {"weight_decay", HONE_KEY_FLOAT, "0", "decoupled weight decay (AdamW) / L2 (SGD), on tensors of >= 2 dims"}, \
    {"adam_beta1", HONE_KEY_FLOAT, "0.9", "AdamW beta1"},                                                      \
    {"adam_beta2", HONE_KEY_FLOAT, "0.999", "AdamW beta2"},                                                    \
    {"adam_epsilon", HONE_KEY_FLOAT, "1e-8", "AdamW epsilon"},                                                 \
    {"momentum", HONE_KEY_FLOAT, "0", "SGD momentum"},                                                         \
    {"max_grad_norm", HONE_KEY_FLOAT, "1.0", "global gradient-norm clipping (0 = off)"},                       \
    {"seed", HONE_KEY_INT, "42", "random seed (data order, initialisation)"},                                  \
    {"shuffle", HONE_KEY_BOOL, "true", "shuffle blocks each epoch (false = file order)"},                      \
    {"save_steps", HONE_KEY_INT, "0", "save a checkpoint every N steps (0 = only at the end)"},                \
    {"save_total_limit", HONE_KEY_INT, "0", "keep the newest N checkpoints (0 = all)"},                        \
    {"resume_from_checkpoint", HONE_KEY_STRING, NULL,                                                          \
     "checkpoint folder to resume from, or auto (the newest complete one in output_dir; none: start fresh)"},  \
    {"logging_steps", HONE_KEY_INT, "10", "print progress every N steps (a live bar on a terminal)"}

#endif
