#!/bin/sh
# hone merge-moe end to end: a mergekit-moe config through the CLI (Mixtral config.json, weights, tokenizer,
# progress, JSON summary), sharding, --out-dtype, noise_scale with --seed, and error exits.
#
#   sh tests/integration/merge_moe.sh build/hone     (from the repository root)
set -eu
. "$(dirname "$0")/lib/common.sh"
setup "$@"
FIX=tests/fixtures/moe

check "assemble a 3-expert Mixtral (gate_mode hidden): config.json, 51 tensors, tokenizer; one progress line each"
run_ok "merge-moe hidden" "$HONE" merge-moe "$FIX/configs/hidden.yaml" --output-dir "$W/moe" --threads 1 --json
json_valid "$W/stdout" || fail "--json output is not valid JSON: $(cat "$W/stdout")"
[ "$(json_num tensors <"$W/stdout")" = 51 ] || fail "expected 51 tensors: $(cat "$W/stdout")"
[ "$(json_num layers <"$W/stdout")" = 3 ] || fail "expected 3 layers: $(cat "$W/stdout")"
n=$(safetensors_valid "$W/moe/model.safetensors")
[ "$n" = 51 ] || fail "model.safetensors holds $n tensors, expected 51"
for f in config.json tokenizer.json tokenizer_config.json; do
    [ -f "$W/moe/$f" ] || fail "no $f in the output"
done
grep -q '"model_type": "mixtral"' "$W/moe/config.json" || fail "config.json: $(cat "$W/moe/config.json")"
grep -q '"num_local_experts": 3' "$W/moe/config.json" || fail "config.json: $(cat "$W/moe/config.json")"
grep -q '"num_experts_per_tok": 2' "$W/moe/config.json" || fail "config.json: $(cat "$W/moe/config.json")"
grep -q 'model.layers.2.block_sparse_moe.experts.2.w2.weight' "$W/moe/model.safetensors" || fail "no expert w2"
[ "$(grep -c '^\[[0-9]*/51\]' "$W/stderr")" = 51 ] || fail "expected 51 progress lines: $(cat "$W/stderr")"
echo "   ok: $(tail -n 1 "$W/stderr")"

check "--max-shard-size splits the output with an index; --out-dtype bfloat16 writes BF16 tensors"
run_ok "merge-moe sharded" "$HONE" merge-moe "$FIX/configs/cheap_embed.yaml" --output-dir "$W/sharded" \
    --max-shard-size 4KB --out-dtype bfloat16 --threads 1 --json
[ -f "$W/sharded/model.safetensors.index.json" ] || fail "no index"
total=0
for f in "$W"/sharded/model-*.safetensors; do total=$((total + $(safetensors_valid "$f"))); done
[ "$total" = 42 ] || fail "the shards hold $total tensors, expected 42"
grep -q '"torch_dtype": "bfloat16"' "$W/sharded/config.json" || fail "torch_dtype: $(cat "$W/sharded/config.json")"
grep -q '"BF16"' "$W/sharded/model-00001-of-"*.safetensors || fail "the tensors are not BF16"
echo "   ok: $total tensors in $(ls "$W"/sharded/model-*.safetensors | wc -l) shards"

check "noise_scale: --seed picks the noise (the same output for a seed, another for another seed)"
cat >"$W/noise.yaml" <<EOF
base_model: $FIX/models/base
gate_mode: cheap_embed
experts:
  - source_model: $FIX/models/expert_a
    positive_prompts: ["math"]
    noise_scale: 0.01
  - source_model: $FIX/models/expert_b
    positive_prompts: ["story"]
EOF
for run in a:7 b:7 c:8; do
    run_ok "merge-moe noise_scale ${run%%:*}" "$HONE" merge-moe "$W/noise.yaml" --output-dir "$W/noise_${run%%:*}" \
        --seed "${run#*:}" --threads 1
done
cmp -s "$W/noise_a/model.safetensors" "$W/noise_b/model.safetensors" || fail "--seed 7 twice gave different weights"
! cmp -s "$W/noise_a/model.safetensors" "$W/noise_c/model.safetensors" || fail "--seed 7 and 8 gave the same weights"
echo "   ok"

expect_error "hone merge on a mergekit-moe config points to merge-moe" "hone merge-moe" \
    "$HONE" merge "$FIX/configs/hidden.yaml" --output-dir "$W/x"
printf 'base_model: %s/models/base\ngate_mode: hidden\nexperts_per_tokn: 2\nexperts:\n  - source_model: a\n' "$FIX" \
    >"$W/typo.yaml"
expect_error "an unknown key is an error with a did-you-mean" "did you mean 'experts_per_token'?" \
    "$HONE" merge-moe "$W/typo.yaml" --output-dir "$W/x"
printf 'base_model: %s/models/base\ngate_mode: random\nexperts:\n  - source_model: %s/models/expert_a\n  - source_model: %s/models/qwen\n' \
    "$FIX" "$FIX" "$FIX" >"$W/qwen.yaml"
expect_error "a non-Llama expert is not supported" "supports Llama and Mistral" \
    "$HONE" merge-moe "$W/qwen.yaml" --output-dir "$W/x"
expect_error "the config is required" "missing the mergekit-moe config" "$HONE" merge-moe --output-dir "$W/x"
[ ! -e "$W/x" ] || fail "a failed run left $W/x"
echo "PASS"
