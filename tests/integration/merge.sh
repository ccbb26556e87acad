#!/bin/sh
# hone merge and hone expand end to end: a mergekit config through the CLI (output folder, progress, sharding,
# JSON summary), the examples/merge-*.yaml configs on tiny models, error exits, and LLaMA Pro expansion whose
# result scores exactly the same loss as the original with hone eval.
#
#   sh tests/integration/merge.sh build/hone     (from the repository root)
set -eu
. "$(dirname "$0")/lib/common.sh"
setup "$@"
FIX=tests/fixtures/merge

check "merge a TIES config: config.json, weights, tokenizer files; one progress line per tensor on stderr"
run_ok "merge ties" "$HONE" merge "$FIX/configs/ties.yaml" --output-dir "$W/ties" --threads 1 --json
json_valid "$W/stdout" || fail "--json output is not valid JSON: $(cat "$W/stdout")"
[ "$(json_num tensors <"$W/stdout")" = 39 ] || fail "expected 39 tensors: $(cat "$W/stdout")"
[ "$(json_num layers <"$W/stdout")" = 4 ] || fail "expected 4 layers: $(cat "$W/stdout")"
n=$(safetensors_valid "$W/ties/model.safetensors")
[ "$n" = 39 ] || fail "model.safetensors holds $n tensors, expected 39"
for f in config.json tokenizer.json tokenizer_config.json; do
    [ -f "$W/ties/$f" ] || fail "no $f in the output"
done
[ "$(grep -c '^\[[0-9]*/39\]' "$W/stderr")" = 39 ] || fail "expected 39 progress lines: $(cat "$W/stderr")"
! ls "$W/ties" | grep -q '\.tmp\.' || fail "temporary files left in the output: $(ls "$W/ties")"
echo "   ok: $(tail -n 1 "$W/stderr")"

check "the merged model loads and scores finite loss"
printf '{"input_ids": [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8, 4, 6, 2, 6, 4]}\n' >"$W/ids.jsonl"
run_ok "eval merged" "$HONE" eval --model "$W/ties" --data "$W/ids.jsonl" --sequence-len 8 --json --threads 1
loss=$(json_num loss <"$W/stdout")
num_cmp "$loss" ">" 0 || fail "loss $loss"
echo "   ok: loss $loss"

check "--max-shard-size splits the output into shards with an index; the same tensors come out"
run_ok "merge sharded" "$HONE" merge "$FIX/configs/ties.yaml" --output-dir "$W/sharded" --max-shard-size 4KB \
    --threads 1
[ -f "$W/sharded/model.safetensors.index.json" ] || fail "no index"
shards=$(ls "$W/sharded" | grep -c 'model-[0-9]*-of-[0-9]*\.safetensors')
[ "$shards" -gt 1 ] || fail "expected several shards, found $shards"
total=0
for f in "$W"/sharded/model-*.safetensors; do total=$((total + $(safetensors_valid "$f"))); done
[ "$total" = 39 ] || fail "the shards hold $total tensors, expected 39"
run_ok "eval sharded" "$HONE" eval --model "$W/sharded" --data "$W/ids.jsonl" --sequence-len 8 --json --threads 1
[ "$(json_num loss <"$W/stdout")" = "$loss" ] || fail "sharded output scores $(json_num loss <"$W/stdout"), not $loss"
echo "   ok: $shards shards, same loss"

check "every examples/merge-*.yaml runs (paths and layer ranges pointed at the tiny fixture models)"
for ex in examples/merge-*.yaml; do
    sed -e "s#path/to/base-model#$FIX/models/base#; s#path/to/finetune-a#$FIX/models/ft_a#" \
        -e "s#path/to/finetune-b#$FIX/models/ft_b#; s#\[0, 32\]#[0, 4]#; s#\[0, 24\]#[0, 2]#; s#\[8, 32\]#[2, 4]#" \
        "$ex" >"$W/example.yaml"
    run_ok "$ex" "$HONE" merge "$W/example.yaml" --output-dir "$W/example" --threads 1
    echo "   ok: $ex: $(tail -n 1 "$W/stderr")"
done

check "errors: unknown method, unknown key, missing config, missing model folder"
printf 'merge_method: tiez\nmodels: [{model: a}]\n' >"$W/bad.yaml"
expect_error "unknown method" "did you mean 'ties'?" "$HONE" merge "$W/bad.yaml" --output-dir "$W/x"
printf 'merge_method: ties\nbase_model: a\nmodels: [{model: a, parameters: {wieght: 1}}]\n' >"$W/bad.yaml"
expect_error "unknown parameter" "unknown key 'wieght' (did you mean 'weight'?)" "$HONE" merge "$W/bad.yaml" \
    --output-dir "$W/x"
expect_error "no config" "missing the mergekit config" "$HONE" merge --output-dir "$W/x"
expect_error "no output dir" "missing required option --output-dir" "$HONE" merge "$FIX/configs/ties.yaml"
expect_error "bad shard size" "invalid size" "$HONE" merge "$FIX/configs/ties.yaml" --output-dir "$W/x" \
    --max-shard-size lots
printf 'merge_method: linear\nmodels: [{model: %s/nowhere, parameters: {weight: 1}}]\n' "$W" >"$W/bad.yaml"
expect_error "missing model" "no such folder" "$HONE" merge "$W/bad.yaml" --output-dir "$W/x"

check "expand: LLaMA Pro blocks leave the loss exactly unchanged (Llama 2 -> 4 layers, GPT-2 2 -> 3)"
printf '{"input_ids": [10, 20, 30, 40, 50, 60, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15]}\n' >"$W/e.jsonl"
for spec in llama:4 gpt2:3; do
    model=tests/fixtures/${spec%:*}
    layers=${spec#*:}
    run_ok "eval $model" "$HONE" eval --model "$model" --data "$W/e.jsonl" --sequence-len 10 --json --threads 1
    before=$(json_num loss <"$W/stdout")
    run_ok "expand $model" "$HONE" expand --model "$model" --num-layers "$layers" --output-dir "$W/expanded" \
        --threads 1 --json
    [ "$(json_num layers <"$W/stdout")" = "$layers" ] || fail "expand reported $(cat "$W/stdout")"
    grep -q "\"\\(num_hidden_layers\\|n_layer\\)\": $layers" "$W/expanded/config.json" ||
        fail "config.json does not say $layers layers: $(cat "$W/expanded/config.json")"
    run_ok "eval expanded" "$HONE" eval --model "$W/expanded" --data "$W/e.jsonl" --sequence-len 10 --json --threads 1
    after=$(json_num loss <"$W/stdout")
    [ "$before" = "$after" ] || fail "$model: loss $before before expansion, $after after"
    echo "   ok: $model -> $layers layers, loss $after both"
    rm -rf "$W/expanded"
done
expect_error "expand to as many layers" "after every split-th layer" "$HONE" expand --model tests/fixtures/llama \
    --num-layers 2 --output-dir "$W/x"
echo "PASS: merge"
