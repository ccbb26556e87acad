#!/bin/sh
# LoRA adapters on the command line: eval --adapter and generate --adapter apply a PEFT adapter folder, and
# merge-adapter writes a full model that computes the same thing without it. Uses the committed tiny base models
# (tests/fixtures/gpt2: Conv1D weights; tests/fixtures/qwen2: grouped-query attention with q/k/v biases) and the
# PEFT-format adapters of tools/make_lora_fixtures.py, two of them with modules_to_save (llama_mts: embedding and
# lm_head copies of an untied model; qwen2_mts_tied: one shared copy of a tied one).
#
#   sh tests/integration/lora.sh build/hone     (from the repository root)
set -eu
. "$(dirname "$0")/lib/common.sh"
setup "$@"

# 40 tokens of a vocabulary of 64 in one JSONL row.
awk 'BEGIN { printf "{\"input_ids\": ["; for (i = 0; i < 40; i++) printf "%s%d", (i ? ", " : ""), (i * 37 + 5) % 64; print "]}" }' \
    >"$W/tokens.jsonl"
PROMPT=5,42,15,52

for case in gpt2:gpt2_all qwen2:qwen2_all qwen2:qwen2_q_bf16 llama:llama_mts qwen2:qwen2_mts_tied; do
    base=tests/fixtures/${case%%:*}
    adapter=tests/fixtures/peft/lora_${case#*:}

    check "$case: eval --adapter changes the loss"
    run_ok "eval base" "$HONE" eval --model "$base" --data "$W/tokens.jsonl" --sequence-len 8 --json --threads 1
    base_loss=$(json_num loss <"$W/stdout")
    run_ok "eval adapter" "$HONE" eval --model "$base" --adapter "$adapter" --data "$W/tokens.jsonl" \
        --sequence-len 8 --json --threads 1
    json_valid "$W/stdout" || fail "eval --adapter --json is not valid JSON: $(cat "$W/stdout")"
    adapter_loss=$(json_num loss <"$W/stdout")
    near "$base_loss" "$adapter_loss" 1e-3 && fail "the adapter does not change the loss ($base_loss)"
    echo "   ok: base $base_loss, with the adapter $adapter_loss"

    check "$case: merge-adapter writes a model whose loss is the base + adapter loss"
    run_ok "merge-adapter" "$HONE" merge-adapter --model "$base" --adapter "$adapter" --output-dir "$W/merged" \
        --json --threads 1
    json_valid "$W/stdout" || fail "merge-adapter --json is not valid JSON: $(cat "$W/stdout")"
    [ -s "$W/merged/config.json" ] && safetensors_valid "$W/merged/model.safetensors" >/dev/null ||
        fail "merge-adapter did not write config.json and a valid model.safetensors"
    run_ok "eval merged" "$HONE" eval --model "$W/merged" --data "$W/tokens.jsonl" --sequence-len 8 --json --threads 1
    merged_loss=$(json_num loss <"$W/stdout")
    near "$merged_loss" "$adapter_loss" 1e-5 || fail "merged loss $merged_loss, base + adapter $adapter_loss"
    echo "   ok: $merged_loss"

    check "$case: generate --adapter (KV cache) gives the merged model's greedy ids"
    run_ok "generate adapter" "$HONE" generate --model "$base" --adapter "$adapter" --prompt-ids "$PROMPT" \
        --max-new-tokens 12 --stop-at-eos false --json --threads 1
    cp "$W/stdout" "$W/with_adapter"
    run_ok "generate merged" "$HONE" generate --model "$W/merged" --prompt-ids "$PROMPT" --max-new-tokens 12 \
        --stop-at-eos false --json --threads 1
    cmp -s "$W/stdout" "$W/with_adapter" ||
        fail "greedy ids differ: adapter $(cat "$W/with_adapter"), merged $(cat "$W/stdout")"
    echo "   ok: $(cat "$W/stdout")"
    rm -rf "$W/merged"
done

expect_error "eval --adapter with a folder that is not an adapter" "no adapter_config.json" \
    "$HONE" eval --model tests/fixtures/qwen2 --adapter "$W" --data "$W/tokens.jsonl" --sequence-len 8 --threads 1
expect_error "an adapter of another model" "the model needs" \
    "$HONE" generate --model tests/fixtures/llama --adapter tests/fixtures/peft/lora_qwen2_all --prompt-ids 1,2 \
    --threads 1
expect_error "merge-adapter of an lm_head copy into a model that ties it" "ensure_weight_tying" \
    "$HONE" merge-adapter --model tests/fixtures/gpt2 --adapter tests/fixtures/peft/lora_gpt2_mts_head \
    --output-dir "$W/x" --threads 1
expect_error "merge-adapter without --adapter" "adapter" \
    "$HONE" merge-adapter --model tests/fixtures/qwen2 --output-dir "$W/x" --threads 1
expect_error "merge-adapter without --output-dir" "output_dir" \
    "$HONE" merge-adapter --model tests/fixtures/qwen2 --adapter tests/fixtures/peft/lora_qwen2_all --threads 1

echo "PASS: lora"
