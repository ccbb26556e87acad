#!/bin/sh
# hone sft (full fine-tuning): an alpaca dataset rendered with the built-in alpaca template (fake_gpt2 has no chat
# template), packed and trained for a few steps; metrics per step, a Hugging Face folder that hone eval loads. LoRA,
# prompt and prefix tuning: PEFT adapter folders, resumed runs identical to uninterrupted ones, continuing from an
# adapter, and bad adapter settings as clear errors.
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

ALPACA=$DATA/datasets/instruct/alpaca_23.json
for kind in lora prompt prefix; do
    check "$kind: an adapter folder; killed after step 2 and resumed, the same adapter as without the stop"
    run_ok "sft $kind" "$HONE" sft --model "$MODEL" --datasets "$ALPACA" --output-dir "$W/$kind" --adapter $kind \
        --lora-target-modules c_attn,c_fc --lora-dropout 0.1 --num-virtual-tokens 4 --sequence-len 256 \
        --micro-batch-size 2 --max-steps 4 --save-steps 2 --learning-rate 1e-2 --threads 1
    grep -q "training a $kind adapter" "$W/stderr" || fail "no adapter line: $(cat "$W/stderr")"
    [ -f "$W/$kind/adapter_config.json" ] && [ -f "$W/$kind/adapter_model.safetensors" ] ||
        fail "no PEFT adapter in the output folder"
    [ ! -f "$W/$kind/model.safetensors" ] || fail "an adapter run wrote the full model"
    mkdir "$W/$kind-resumed"
    cp -r "$W/$kind/checkpoint-2" "$W/$kind-resumed/"
    run_ok "resume $kind" "$HONE" sft --model "$MODEL" --datasets "$ALPACA" --output-dir "$W/$kind-resumed" \
        --adapter $kind --lora-target-modules c_attn,c_fc --lora-dropout 0.1 --num-virtual-tokens 4 \
        --sequence-len 256 --micro-batch-size 2 --max-steps 4 --save-steps 2 --learning-rate 1e-2 --threads 1 \
        --resume-from-checkpoint auto
    cmp -s "$W/$kind/adapter_model.safetensors" "$W/$kind-resumed/adapter_model.safetensors" ||
        fail "$kind: the resumed run ends with another adapter"

    check "$kind: continuing from the adapter with learning rate 0 writes it back unchanged"
    run_ok "continue $kind" "$HONE" sft --model "$MODEL" --datasets "$ALPACA" --output-dir "$W/$kind-again" \
        --lora-model-dir "$W/$kind" --sequence-len 256 --max-steps 1 --learning-rate 0 --threads 1
    cmp -s "$W/$kind/adapter_model.safetensors" "$W/$kind-again/adapter_model.safetensors" ||
        fail "$kind: the adapter changed through load and save"
done

check "lora with the frozen base in bf16: the first loss is the fp32 base's up to bf16 rounding"
for dt in fp32 bf16; do
    run_ok "sft lora base $dt" "$HONE" sft --model "$MODEL" --datasets "$ALPACA" --output-dir "$W/base-$dt" \
        --adapter lora --base-dtype $dt --sequence-len 256 --micro-batch-size 2 --max-steps 2 --threads 1
done
l32=$(sed -n '1s/.*"loss": \([-0-9.e]*\).*/\1/p' "$W/base-fp32/metrics.jsonl")
l16=$(sed -n '1s/.*"loss": \([-0-9.e]*\).*/\1/p' "$W/base-bf16/metrics.jsonl")
awk -v a="$l32" -v b="$l16" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a > 0 && d <= 1e-3 * a && a != b) }' ||
    fail "first loss with a bf16 base $l16, with an fp32 base $l32: expected close but not equal"
expect_error "a bf16 base without an adapter" "full fine-tuning keeps fp32" "$HONE" sft --model "$MODEL" \
    --datasets "$ALPACA" --output-dir "$W/x" --base-dtype bf16
echo "   ok: $l32 (fp32) vs $l16 (bf16)"

expect_error "an unknown adapter kind" "choose lora, prompt or prefix" "$HONE" sft --model "$MODEL" \
    --datasets "$ALPACA" --output-dir "$W/x" --adapter dora
expect_error "a target module the model lacks" "matches no module of this gpt2 model" "$HONE" sft \
    --model "$MODEL" --datasets "$ALPACA" --output-dir "$W/x" --adapter lora --lora-target-modules q_proj
expect_error "a zero rank" "lora_r must be positive" "$HONE" sft --model "$MODEL" --datasets "$ALPACA" \
    --output-dir "$W/x" --adapter lora --lora-r 0
expect_error "an unknown prompt initialisation" "expected RANDOM, TEXT or SAMPLE_VOCAB" "$HONE" sft \
    --model "$MODEL" --datasets "$ALPACA" --output-dir "$W/x" --adapter prompt --prompt-tuning-init WORDS
expect_error "TEXT initialisation without its text" "prompt_tuning_init_text" "$HONE" sft --model "$MODEL" \
    --datasets "$ALPACA" --output-dir "$W/x" --adapter prompt --prompt-tuning-init TEXT
expect_error "an adapter of another kind than asked" "another kind" "$HONE" sft --model "$MODEL" \
    --datasets "$ALPACA" --output-dir "$W/x" --adapter prefix --lora-model-dir "$W/lora"
expect_error "a bad truncation value" "expected drop or truncate" "$HONE" sft --model "$MODEL" \
    --datasets "$DATA/datasets/instruct/alpaca_23.json" --output-dir "$W/x" --truncation cut
echo "ok"
