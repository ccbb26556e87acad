#!/bin/sh
# hone sft (full fine-tuning): an alpaca dataset rendered with the built-in alpaca template (fake_gpt2 has no chat
# template), packed and trained for a few steps; metrics per step, a Hugging Face folder that hone eval loads;
# adapters are a clear "not supported yet".
set -eu
. "$(dirname "$0")/lib/common.sh"
setup "$@"
DATA=../shared/data
if [ ! -d "$DATA" ]; then
    echo "skipping: $DATA is absent (the model with a tokenizer and the datasets live there)"
    exit 77
fi
MODEL=$DATA/models/fake_gpt2

check "four steps on alpaca_23.json: loss reported, metrics per step, model saved"
run_ok "sft" "$HONE" sft --model "$MODEL" --datasets "$DATA/datasets/instruct/alpaca_23.json" \
    --output-dir "$W/out" --sequence-len 256 --micro-batch-size 2 --max-steps 4 --learning-rate 1e-3 --threads 1
grep -q "template alpaca" "$W/stderr" || fail "the default template is not reported: $(cat "$W/stderr")"
grep -q "3 longer than sequence_len dropped" "$W/stderr" || fail "dropped samples are not counted: $(cat "$W/stderr")"
[ "$(wc -l <"$W/out/metrics.jsonl")" -eq 4 ] || fail "metrics.jsonl should have 4 lines"
[ -f "$W/out/model.safetensors" ] && [ -f "$W/out/tokenizer.json" ] || fail "the output folder is incomplete"
printf '{"text": "Below is an instruction."}\n' >"$W/eval.jsonl"
run_ok "eval the result" "$HONE" eval --model "$W/out" --data "$W/eval.jsonl" --sequence-len 16 --json \
    --dataset-prepared-path none

check "unpacked rows train too, and two datasets render into one run"
run_ok "sft unpacked" "$HONE" sft --model "$MODEL" \
    --datasets "$DATA/datasets/instruct/alpaca_23.json,$DATA/datasets/instruct/dolly_12.json" \
    --output-dir "$W/out2" --sequence-len 512 --sample-packing false --truncation truncate --max-steps 2 --threads 1
grep -q "one sample each" "$W/stderr" || fail "unpacked rows not reported: $(cat "$W/stderr")"

expect_error "adapters are not supported yet" "adapter 'lora' is not supported yet" "$HONE" sft --model "$MODEL" \
    --datasets "$DATA/datasets/instruct/alpaca_23.json" --output-dir "$W/x" --adapter lora
expect_error "a bad truncation value" "expected drop or truncate" "$HONE" sft --model "$MODEL" \
    --datasets "$DATA/datasets/instruct/alpaca_23.json" --output-dir "$W/x" --truncation cut
echo "ok"
