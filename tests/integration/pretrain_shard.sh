#!/bin/sh
# A tiny model trained from an llm.c shard lowers its loss, and the folder it saves reloads with the same
# weights and the same eval loss.
#
#   sh tests/integration/pretrain_shard.sh build/hone     (from the repository root)
set -eu
. "$(dirname "$0")/lib/common.sh"
setup "$@"

check "hone demo --max-steps 1 writes a randomly initialised llama-tiny folder and a byte-level train.bin"
# One step whose learning rate is 0 (the demo warms up over 20 steps): the saved weights are the initial ones.
run_ok "demo" "$HONE" demo --text-only --seconds 0 --max-steps 1 --output-dir "$W/init" --threads 1
for f in config.json model.safetensors train.bin; do
    [ -s "$W/init/$f" ] || fail "demo did not write $W/init/$f"
done
json_valid "$W/init/config.json" || fail "init/config.json is not valid JSON"
grep -q '"vocab_size": *256' "$W/init/config.json" || fail "init/config.json: vocab_size is not 256"
# train.bin: version 1 (uint16) shard of 1 MiB of text = 1048576 tokens.
[ "$(file_size "$W/init/train.bin")" -eq $((1024 + 2 * 1048576)) ] ||
    fail "train.bin is $(file_size "$W/init/train.bin") bytes, expected a 1024-byte header + 1048576 uint16 tokens"
n_init=$(safetensors_valid "$W/init/model.safetensors")
echo "   ok: config.json, model.safetensors ($n_init tensors), train.bin"

# Held-out data: 4096 tokens from the middle of train.bin, far from the 30 × 4 × 64 = 7680 tokens trained on.
slice_shard "$W/init/train.bin" 524288 4096 "$W/heldout.bin"
# The 4 blocks of 64 tokens that training step 1 uses (shuffle off: the first blocks of the file).
slice_shard "$W/init/train.bin" 0 256 "$W/step1.bin"

check "the untrained model's held-out loss is about ln(256) = 5.545"
run_ok "eval init" "$HONE" eval --model "$W/init" --data "$W/heldout.bin" --sequence-len 64 --json --threads 1
loss0=$(json_num loss <"$W/stdout")
tokens0=$(json_num tokens <"$W/stdout")
[ -n "$loss0" ] || fail "eval --json printed no loss: $(cat "$W/stdout")"
near "$loss0" 5.545 0.3 || fail "untrained held-out loss $loss0 is not near ln(256)"
[ "$tokens0" = $((64 * 63)) ] || fail "eval scored $tokens0 tokens, expected 64 blocks x 63 = 4032"
echo "   ok: loss $loss0 over $tokens0 tokens"

check "hone pretrain: 30 steps, B=4, T=64, lr 3e-3 (linear decay), file order"
run_ok "pretrain" "$HONE" pretrain --model "$W/init" --data "$W/init/train.bin" --output-dir "$W/trained" \
    --sequence-len 64 --micro-batch-size 4 --max-steps 30 --learning-rate 3e-3 --shuffle false --threads 1
grep -q "done: 30 steps (0 skipped)" "$W/stderr" || fail "pretrain did not report 30 steps: $(cat "$W/stderr")"
for f in config.json model.safetensors metrics.jsonl; do
    [ -s "$W/trained/$f" ] || fail "pretrain did not write trained/$f"
done
for d in "$W/trained"/checkpoint-*; do
    [ ! -e "$d" ] || fail "$d was written without --save-steps"
done

check "metrics.jsonl: 30 valid JSON lines with step, loss, learning_rate, grad_norm, tokens, tokens_per_second"
lines=$(wc -l <"$W/trained/metrics.jsonl" | tr -d ' ')
[ "$lines" -eq 30 ] || fail "metrics.jsonl has $lines lines, expected 30"
i=0
while IFS= read -r line; do
    i=$((i + 1))
    printf '%s\n' "$line" >"$W/line.json"
    json_valid "$W/line.json" || fail "metrics.jsonl line $i is not valid JSON: $line"
    for key in step epoch loss learning_rate grad_norm tokens tokens_per_second elapsed_seconds; do
        v=$(json_num "$key" <"$W/line.json")
        [ -n "$v" ] || fail "metrics.jsonl line $i: no numeric \"$key\": $line"
    done
    [ "$(json_num step <"$W/line.json")" = "$i" ] || fail "metrics.jsonl line $i has step $(json_num step <"$W/line.json")"
    [ "$(json_num tokens <"$W/line.json")" = 256 ] || fail "metrics.jsonl line $i: tokens is not B*T = 256: $line"
    grep -q '"skipped": *false' "$W/line.json" || fail "metrics.jsonl line $i: step skipped or no \"skipped\": $line"
done <"$W/trained/metrics.jsonl"
first=$(head -n 1 "$W/trained/metrics.jsonl" | json_num loss)
last=$(tail -n 1 "$W/trained/metrics.jsonl" | json_num loss)
lr1=$(head -n 1 "$W/trained/metrics.jsonl" | json_num learning_rate)
lr30=$(tail -n 1 "$W/trained/metrics.jsonl" | json_num learning_rate)
echo "   ok: 30 lines; loss $first -> $last; learning rate $lr1 -> $lr30"

check "the training loss falls clearly (by more than 1 nat)"
num_cmp "$last" "<" "$(awk -v f="$first" 'BEGIN { print f - 1.0 }')" ||
    fail "training loss went from $first to $last: expected a drop of more than 1"

check "linear schedule without warm-up: step 1 uses 3e-3, step 30 uses 3e-3 x 1/30 = 1e-4"
near "$lr1" 3e-3 1e-9 || fail "step 1 learning rate $lr1, expected 0.003"
near "$lr30" 1e-4 1e-9 || fail "step 30 learning rate $lr30, expected 0.0001"

check "step 1's loss equals eval's loss of the initial model on the same 4 blocks (same definition of the loss)"
run_ok "eval init on the first 4 blocks" "$HONE" eval --model "$W/init" --data "$W/step1.bin" --sequence-len 64 \
    --micro-batch-size 4 --json --threads 1
l1=$(json_num loss <"$W/stdout")
[ "$(json_num tokens <"$W/stdout")" = 252 ] || fail "eval of 4 blocks of 64 scored $(json_num tokens <"$W/stdout") tokens, not 252"
near "$l1" "$first" 1e-5 || fail "eval gives $l1 on step 1's blocks, metrics.jsonl says step 1 had loss $first"
echo "   ok: $l1 vs $first"

check "the trained model's held-out loss is clearly below the untrained model's"
run_ok "eval out" "$HONE" eval --model "$W/trained" --data "$W/heldout.bin" --sequence-len 64 --json --threads 1
loss1=$(json_num loss <"$W/stdout")
cp "$W/stdout" "$W/eval_out.json"
num_cmp "$loss1" "<" "$(awk -v f="$loss0" 'BEGIN { print f - 1.0 }')" ||
    fail "held-out loss $loss1 after training, $loss0 before: expected a drop of more than 1"
echo "   ok: $loss0 -> $loss1"

check "evaluating the saved folder again gives the identical result"
run_ok "eval out again" "$HONE" eval --model "$W/trained" --data "$W/heldout.bin" --sequence-len 64 --json --threads 1
cmp -s "$W/stdout" "$W/eval_out.json" || fail "two evals of the same folder differ: $(cat "$W/eval_out.json") vs $(cat "$W/stdout")"

check "the saved folder: valid config.json (llama, vocab 256) and a well-formed safetensors file with every tensor"
json_valid "$W/trained/config.json" || fail "trained/config.json is not valid JSON"
grep -q '"model_type": *"llama"' "$W/trained/config.json" || fail "trained/config.json: model_type is not llama"
grep -q '"vocab_size": *256' "$W/trained/config.json" || fail "trained/config.json: vocab_size is not 256"
n_out=$(safetensors_valid "$W/trained/model.safetensors")
[ "$n_out" = "$n_init" ] || fail "trained/model.safetensors has $n_out tensors, the initial model $n_init"
cmp -s "$W/init/model.safetensors" "$W/trained/model.safetensors" && fail "training did not change the saved weights"
echo "   ok: $n_out tensors"

check "reload and save (pretrain from the saved folder, 1 step at learning rate 0) gives the same bytes"
run_ok "pretrain lr 0" "$HONE" pretrain --model "$W/trained" --data "$W/step1.bin" --output-dir "$W/copy" \
    --sequence-len 64 --max-steps 1 --learning-rate 0 --threads 1
cmp -s "$W/trained/model.safetensors" "$W/copy/model.safetensors" ||
    fail "load + save changed model.safetensors"
cmp -s "$W/trained/config.json" "$W/copy/config.json" || fail "load + save changed config.json"
run_ok "eval copy" "$HONE" eval --model "$W/copy" --data "$W/heldout.bin" --sequence-len 64 --json --threads 1
cmp -s "$W/stdout" "$W/eval_out.json" || fail "the re-saved folder evaluates to $(cat "$W/stdout"), the original to $(cat "$W/eval_out.json")"

check "same settings give the same bits; --save-steps 10 writes checkpoint-10 and -20 (the end goes to the folder)"
run_ok "pretrain again" "$HONE" pretrain --model "$W/init" --data "$W/init/train.bin" --output-dir "$W/out2" \
    --sequence-len 64 --micro-batch-size 4 --max-steps 30 --learning-rate 3e-3 --shuffle false --threads 1 \
    --save-steps 10
cmp -s "$W/trained/model.safetensors" "$W/out2/model.safetensors" ||
    fail "a second identical run (with --save-steps 10) saved different weights"
# Same losses, learning rates and gradient norms; only the timings differ.
sed 's/, "tokens_per_second".*//' "$W/trained/metrics.jsonl" >"$W/m1"
sed 's/, "tokens_per_second".*//' "$W/out2/metrics.jsonl" >"$W/m2"
cmp -s "$W/m1" "$W/m2" || fail "a second identical run logged different metrics"
for s in 10 20; do
    [ -s "$W/out2/checkpoint-$s/model.safetensors" ] && [ -s "$W/out2/checkpoint-$s/config.json" ] ||
        fail "out2/checkpoint-$s is missing or incomplete"
done
[ ! -e "$W/out2/checkpoint-30" ] || fail "checkpoint-30 written although the final model is saved in the folder"

check "checkpoint-10 reloads and its held-out loss lies between the untrained and the final model's"
run_ok "eval checkpoint-10" "$HONE" eval --model "$W/out2/checkpoint-10" --data "$W/heldout.bin" \
    --sequence-len 64 --json --threads 1
loss10=$(json_num loss <"$W/stdout")
num_cmp "$loss10" "<" "$loss0" && num_cmp "$loss10" ">" "$loss1" ||
    fail "checkpoint-10 held-out loss $loss10 is not between $loss0 (step 0) and $loss1 (step 30)"
echo "   ok: $loss0 > $loss10 > $loss1"

check "a diverging run (learning rate 1e30): non-finite steps are skipped, warned about and logged as skipped"
run_ok "pretrain lr 1e30" "$HONE" pretrain --model "$W/init" --data "$W/step1.bin" --output-dir "$W/diverged" \
    --sequence-len 64 --max-steps 3 --learning-rate 1e30 --threads 1
grep -q "done: 3 steps (2 skipped)" "$W/stderr" || fail "expected 3 steps with 2 skipped: $(cat "$W/stderr")"
grep -q "warning: step 2: non-finite loss or gradient, update skipped" "$W/stderr" ||
    fail "no warning for the skipped step 2: $(cat "$W/stderr")"
[ "$(grep -c '"skipped": *true' "$W/diverged/metrics.jsonl")" -eq 2 ] ||
    fail "metrics.jsonl does not mark 2 steps skipped: $(cat "$W/diverged/metrics.jsonl")"
# Non-finite values are logged as null: metrics.jsonl stays JSONL exactly when it matters.
i=0
while IFS= read -r line; do
    i=$((i + 1))
    printf '%s\n' "$line" >"$W/line.json"
    json_valid "$W/line.json" || fail "diverged/metrics.jsonl line $i is not valid JSON: $line"
done <"$W/diverged/metrics.jsonl"

echo "PASS: pretrain_shard"
