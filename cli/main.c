/* hone — command-line entry point: dispatches to one cmd_*.c per command. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const cli_command commands[] = {
    {"demo", "instruction-tune and merge a tiny built-in model on built-in tasks, with before/after accuracy", cmd_demo},
    {"sft", "supervised fine-tuning (full weights) on instruction / chat datasets with the chat template", cmd_sft},
    {"select", "score instruction data with the student model (IFD, reverse IFD)", cmd_select},
    {"pretrain", "continued pre-training on token shards or JSONL input_ids", cmd_pretrain},
    {"eval", "mean next-token loss and perplexity of a model on a token file", cmd_eval},
    {"generate", "generate tokens from a prompt with a KV cache", cmd_generate},
    {"tokenize", "JSONL text to token ids with a Hugging Face tokenizer.json (or back with --decode)", cmd_tokenize},
    {"merge", "merge models with a mergekit YAML config (linear, slerp, ties, dare, della, ...)", cmd_merge},
    {"merge-moe", "assemble a Mixtral MoE from Llama / Mistral experts with a mergekit-moe YAML config", cmd_merge_moe},
    {"merge-adapter", "fold a LoRA adapter into its base model and write the merged model", cmd_merge_adapter},
    {"expand", "LLaMA Pro block expansion: insert identity blocks (zeroed output projections)", cmd_expand},
    {"bench", "benchmarks (bench train: training steps of a model shape; bench tokenize: encoder speed)", cmd_bench},
    {"data", "dataset tools (convert: any dataset to canonical JSONL; render: chat template + tokenizer -> ids and labels)",
     cmd_data},
};

static void usage(FILE *out) {
    fprintf(out, "usage: hone COMMAND [--config FILE.yaml] [--key value ...]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n`hone COMMAND --help` lists the command's options.\n");
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 2, argv + 2);
    fprintf(stderr, "hone: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
