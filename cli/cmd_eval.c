/* hone eval — mean next-token loss and perplexity on a token file; or, with --tasks, exact-match accuracy of greedy
 * answers to prompts with known answers. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

static const hone_key_spec keys[] = {
    {"model", HONE_KEY_STRING, NULL, "Hugging Face model folder"},
    {"base_model", HONE_KEY_STRING, NULL, "same as --model"},
    CLI_ADAPTER_KEY,
    {"data", HONE_KEY_STRING, NULL, "llm.c shard (.bin), text (.txt), or JSONL rows with \"input_ids\" or \"text\""},
    {"tasks", HONE_KEY_STRING, NULL,
     "instead of --data: JSONL of prompts with answers ({\"instruction\", \"input\", \"output\", \"task\"}), scored "
     "by exact match of greedy answers"},
    {"tokenizer", HONE_KEY_STRING, NULL,
     "tokenizer.json (or its folder) for text data and task prompts (default: the model folder's)"},
    {"chat_template", HONE_KEY_STRING, NULL,
     "tasks: built-in template name or a Jinja file (default: the model folder's, else alpaca)"},
    {"max_new_tokens", HONE_KEY_INT, "32", "tasks: an answer that has not ended after this many tokens is wrong"},
    {"sequence_len", HONE_KEY_INT, "512", "tokens per block (the last partial block counts when >= 2 tokens)"},
    {"micro_batch_size", HONE_KEY_INT, "1", "blocks per forward pass"},
    {"json", HONE_KEY_BOOL, "false", "print one JSON object on stdout"},
    CLI_TOKEN_CACHE_KEY,
    CLI_THREADS_KEY,
};

/* Keys of one mode given in the other are errors, not ignored: 0 after printing the first such key. */
static int keys_fit_mode(const hone_settings *s, int tasks) {
    static const char *const perplexity_only[] = {"sequence_len", "micro_batch_size", "dataset_prepared_path"};
    static const char *const tasks_only[] = {"chat_template", "max_new_tokens"};
    const char *const *other = tasks ? perplexity_only : tasks_only;
    const size_t n = tasks ? sizeof perplexity_only / sizeof *perplexity_only : sizeof tasks_only / sizeof *tasks_only;
    for (size_t i = 0; i < n; i++)
        if (hone_settings_is_set(s, other[i])) {
            fprintf(stderr, "hone eval: error: %s applies to %s only\n", other[i],
                    tasks ? "--data (perplexity)" : "--tasks (exact match)");
            return 0;
        }
    return 1;
}

static double share(size_t correct, size_t total) { return total ? (double)correct / (double)total : 0; }

/* Greedy answers to every prompt of the --tasks file, judged by hone_eval_answer_set; prints the exact match per task
 * (in the file's order of first appearance) and overall. */
static hone_status eval_tasks(hone_model *m, const hone_settings *s, const char *model_dir) {
    hone_answer_set set;
    hone_tokenizer *tok = NULL;
    hone_chat_template *tmpl = NULL;
    size_t *correct = NULL, *total = NULL;
    const char *path = hone_settings_str(s, "tasks");
    const int64_t max_new_tokens = hone_settings_int(s, "max_new_tokens");
    if (max_new_tokens < 1 || max_new_tokens > INT32_MAX)
        return hone_errorf(HONE_ERR_INVALID, "max_new_tokens must be from 1 to %d (it is %lld)", INT32_MAX,
                           (long long)max_new_tokens);
    HONE_TRY(hone_answer_set_load(&set, path));
    hone_status st = hone_model_tokenizer(&tok, m, hone_settings_str(s, "tokenizer"));
    if (st == HONE_OK && !tok)
        st = hone_errorf(HONE_ERR_INVALID, "cannot tokenize the prompts of %s: %s has no tokenizer; give --tokenizer",
                         path, model_dir);
    if (st == HONE_OK) st = hone_chat_template_pick(&tmpl, hone_settings_str(s, "chat_template"), model_dir);
    /* the answer ends where generation stops by default: config.json's eos_token_id, else the tokenizer's EOS */
    const int32_t stop = st == HONE_OK ? hone_model_eos_id(m, tok) : -1;
    if (st == HONE_OK && stop < 0)
        st = hone_errorf(HONE_ERR_INVALID,
                         "%s has no eos_token_id in config.json and its tokenizer no EOS token: "
                         "an answer's end cannot be told",
                         model_dir);
    const hone_render_options ro = {.tokenizer = tok, .chat_template = tmpl, .eos_id = stop};
    const hone_answer_options ao = {.render = &ro, .stop_id = stop, .max_new_tokens = (int)max_new_tokens};
    if (st == HONE_OK &&
        (!(correct = calloc(set.n_tasks, sizeof *correct)) || !(total = calloc(set.n_tasks, sizeof *total))))
        st = hone_errorf(HONE_ERR_NOMEM, "out of memory");
    if (st == HONE_OK) st = hone_eval_answer_set(m, &ao, &set, correct, total);
    size_t all_correct = 0;
    for (size_t t = 0; st == HONE_OK && t < set.n_tasks; t++) all_correct += correct[t];
    json_t *o = NULL, *tasks = NULL;
    if (st == HONE_OK && hone_settings_bool(s, "json")) {
        o = json_pack("{s:f, s:I, s:I, s:o}", "exact_match", share(all_correct, set.n), "correct",
                      (json_int_t)all_correct, "total", (json_int_t)set.n, "tasks", tasks = json_object());
        for (size_t t = 0; o && t < set.n_tasks; t++)
            json_object_set_new(tasks, set.tasks[t],
                                json_pack("{s:f, s:I, s:I}", "exact_match", share(correct[t], total[t]), "correct",
                                          (json_int_t)correct[t], "total", (json_int_t)total[t]));
        char *text = o ? json_dumps(o, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9)) : NULL;
        if (text)
            printf("%s\n", text);
        else
            st = hone_errorf(HONE_ERR_NOMEM, "out of memory");
        free(text);
    } else if (st == HONE_OK) {
        for (size_t t = 0; t < set.n_tasks; t++)
            printf("%-16s %6.1f%%  (%zu/%zu)\n", set.tasks[t], 100 * share(correct[t], total[t]), correct[t], total[t]);
        printf("%-16s %6.1f%%  (%zu/%zu exact matches, greedy, chat template %s)\n", "all",
               100 * share(all_correct, set.n), all_correct, set.n, hone_chat_template_name(tmpl));
    }
    json_decref(o);
    free(correct);
    free(total);
    hone_chat_template_free(tmpl);
    hone_tokenizer_free(tok);
    hone_answer_set_free(&set);
    return st;
}

int cmd_eval(int argc, char **argv) {
    hone_settings *s;
    int code;
    if (cli_parse(&s, "eval",
                  "--model DIR [--adapter DIR] (--data FILE --sequence-len T | --tasks FILE.jsonl "
                  "[--max-new-tokens N]) [--json]",
                  keys, sizeof keys / sizeof keys[0], argc, argv, &code))
        return code;
    int rc = 1;
    hone_model *m = NULL;
    hone_adapter *adapter = NULL;
    hone_token_stream data = {0};
    const char *model_dir = cli_model_path(s, "eval");
    const int tasks = hone_settings_str(s, "tasks") != NULL;
    if (!model_dir) goto done;
    if (tasks && hone_settings_str(s, "data")) {
        fprintf(stderr, "hone eval: error: give --data (perplexity) or --tasks (exact match), not both\n");
        goto done;
    }
    if (!tasks && hone_settings_require(s, "data") != HONE_OK) {
        cli_fail("eval");
        goto done;
    }
    if (!keys_fit_mode(s, tasks)) goto done;
    if (!cli_threads(s, "eval")) goto done;
    hone_eval_result r;
    /* under an adapter the base is frozen: its matrices are read in place from the mapped checkpoint */
    if ((hone_settings_is_set(s, "adapter") ? hone_model_load_frozen(&m, model_dir, HONE_BASE_AUTO)
                                            : hone_model_load(&m, model_dir)) != HONE_OK) {
        cli_fail("eval");
        goto done;
    }
    if (!cli_load_adapter(m, s, "eval", &adapter)) goto done;
    if (tasks) {
        rc = eval_tasks(m, s, model_dir) == HONE_OK ? 0 : cli_fail("eval");
        goto done;
    }
    if (hone_tokens_load_for_model(&data, hone_settings_str(s, "data"), m, hone_settings_str(s, "tokenizer"),
                                   cli_token_cache_dir(s), NULL) != HONE_OK ||
        hone_eval_tokens(m, &data, (int)hone_settings_int(s, "sequence_len"),
                         (int)hone_settings_int(s, "micro_batch_size"), &r) != HONE_OK) {
        cli_fail("eval");
        goto done;
    }
    if (hone_settings_bool(s, "json"))
        printf("{\"loss\": %.9g, \"perplexity\": %.9g, \"tokens\": %lld, \"blocks\": %lld}\n", r.loss, r.perplexity,
               (long long)r.tokens, (long long)r.blocks);
    else
        printf("loss %.6f  perplexity %.4f  (%lld predicted tokens in %lld blocks)\n", r.loss, r.perplexity,
               (long long)r.tokens, (long long)r.blocks);
    rc = 0;
done:
    hone_tokens_free(&data);
    hone_model_free(m);
    hone_adapter_free(adapter);
    hone_settings_free(s);
    return rc;
}
