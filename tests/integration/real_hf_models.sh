#!/bin/sh
# Checkpoints written by Hugging Face transformers (../shared/data/models, random weights): hone evaluates and
# generates with them, matching values computed independently from the same files, and a folder it saves
# from them reloads to the same results.
#
#   sh tests/integration/real_hf_models.sh build/hone     (from the repository root)
#
# The expected values come from a plain-Python re-implementation of transformers' GPT2LMHeadModel (eval mode:
# no dropout; gelu_new; Conv1D weights stored [in, out]; lm_head tied to wte) run on the same safetensors files:
#   fake_gpt2 (vocab 50257, "transformer." prefix), ids below, sequence_len 8 → loss 10.8295533 over 11 tokens
#   tiny_gpt2 (vocab 21, no prefix),                ids below, sequence_len 8 → loss 3.0488857 over 20 tokens
#   tiny_gpt2 greedy after 1,2,3: 8, 8, 8, 8 (each with a logit margin of about 2e-3 over the runner-up)
set -eu
. "$(dirname "$0")/lib/common.sh"
setup "$@"

DATA=../shared/data
if [ ! -d "$DATA/models/fake_gpt2" ] || [ ! -d "$DATA/models/tiny_gpt2" ]; then
    echo "skipping: $DATA/models/{fake_gpt2,tiny_gpt2} not found (run from the repository root, next to ../shared)"
    exit 77
fi
FAKE=$DATA/models/fake_gpt2
TINY=$DATA/models/tiny_gpt2

# 13 ids < 50257 in two rows: blocks of 8 and a partial 5 → 7 + 4 = 11 predicted tokens.
printf '{"input_ids": [464, 3290, 318, 257, 50256, 40, 588]}\n{"input_ids": [1000, 20000, 30000, 12, 13, 14]}\n' \
    >"$W/fake.jsonl"
# 23 ids < 21: blocks 8, 8 and a partial 7 → 7 + 7 + 6 = 20 predicted tokens.
printf '{"input_ids": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}\n{"input_ids": [11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 0, 5, 7]}\n' \
    >"$W/tiny.jsonl"

# eval_model NAME DIR DATA TOKENS BLOCKS REFERENCE
eval_model() {
    check "$1: eval --json gives a finite loss near ln(vocab), equal to the reference $6"
    run_ok "$1 eval" "$HONE" eval --model "$2" --data "$3" --sequence-len 8 --json --threads 1
    [ "$(wc -l <"$W/stdout" | tr -d ' ')" -eq 1 ] && json_valid "$W/stdout" ||
        fail "$1: stdout is not one JSON object (warnings belong on stderr): $(cat "$W/stdout")"
    _loss=$(json_num loss <"$W/stdout")
    [ -n "$_loss" ] || fail "$1: no finite loss in $(cat "$W/stdout")"
    [ "$(json_num tokens <"$W/stdout")" = "$4" ] && [ "$(json_num blocks <"$W/stdout")" = "$5" ] ||
        fail "$1: $(cat "$W/stdout"), expected $4 tokens in $5 blocks"
    _vocab=$(sed -n 's/.*"vocab_size": *\([0-9]*\).*/\1/p' "$2/config.json")
    awk -v l="$_loss" -v v="$_vocab" 'BEGIN { d = l - log(v); if (d < 0) d = -d; exit !(d < 0.5) }' ||
        fail "$1: loss $_loss is far from ln($_vocab) for a model with random weights"
    near "$_loss" "$6" 2e-5 || fail "$1: loss $_loss, the reference implementation gives $6"
    echo "   ok: $(cat "$W/stdout")"
    check "$1: the config's dropout is reported as a warning (hone computes model.eval()'s math)"
    grep -q "warning: .*pdrop = 0.1: hone trains without dropout" "$W/stderr" ||
        fail "$1: no dropout warning on stderr: $(cat "$W/stderr")"
}

eval_model fake_gpt2 "$FAKE" "$W/fake.jsonl" 11 2 10.8295533
eval_model tiny_gpt2 "$TINY" "$W/tiny.jsonl" 20 3 3.0488857
cp "$W/stdout" "$W/tiny_eval"

check "tiny_gpt2: greedy generate --prompt-ids 1,2,3 --max-new-tokens 4 gives the reference's [8, 8, 8, 8]"
run_ok "tiny generate" "$HONE" generate --model "$TINY" --prompt-ids 1,2,3 --max-new-tokens 4 --json --threads 1
[ "$(cat "$W/stdout")" = '{"ids": [8, 8, 8, 8]}' ] || fail "tiny_gpt2 generated $(cat "$W/stdout")"

check "fake_gpt2: sampled generation gives 6 ids below 50257"
run_ok "fake generate" "$HONE" generate --model "$FAKE" --prompt-ids 464,3290 --max-new-tokens 6 --temperature 1 \
    --stop-at-eos false --json --threads 1
n=$(sed -n 's/^{"ids": \[\([0-9, ]*\)\]}$/\1/p' "$W/stdout" | tr ',' '\n' | awk '$1 >= 0 && $1 < 50257' | wc -l)
[ "$n" -eq 6 ] || fail "fake_gpt2 generated $(cat "$W/stdout")"

check "GPT-2's n_positions is a limit: a longer sequence_len or generation is an error, not a crash"
expect_error "eval with sequence_len above n_positions" "exceeds the model's 1024 positions" \
    "$HONE" eval --model "$TINY" --data "$W/tiny.jsonl" --sequence-len 2000 --threads 1
expect_error "generate past n_positions" "exceed the model's 1024 positions" \
    "$HONE" generate --model "$TINY" --prompt-ids 1,2,3 --max-new-tokens 1022 --threads 1

check "tiny_gpt2 saved by hone (1 step at learning rate 0): same eval, tokenizer files copied, valid files"
run_ok "tiny pretrain lr 0" "$HONE" pretrain --model "$TINY" --data "$W/tiny.jsonl" --output-dir "$W/copy" \
    --sequence-len 8 --max-steps 1 --learning-rate 0 --threads 1
for f in vocab.json merges.txt tokenizer_config.json special_tokens_map.json; do
    cmp -s "$TINY/$f" "$W/copy/$f" || fail "$f was not copied unchanged to the output folder"
done
json_valid "$W/copy/config.json" || fail "the saved config.json is not valid JSON"
grep -q '"model_type": *"gpt2"' "$W/copy/config.json" && grep -q '"vocab_size": *21' "$W/copy/config.json" ||
    fail "the saved config.json lost model_type gpt2 or vocab_size 21"
safetensors_valid "$W/copy/model.safetensors" >/dev/null
run_ok "eval the copy" "$HONE" eval --model "$W/copy" --data "$W/tiny.jsonl" --sequence-len 8 --json --threads 1
cmp -s "$W/stdout" "$W/tiny_eval" || fail "the saved copy evaluates to $(cat "$W/stdout"), the original to $(cat "$W/tiny_eval")"

check "tiny_gpt2 trains: 20 steps on its own data lower the loss"
run_ok "tiny pretrain" "$HONE" pretrain --model "$TINY" --data "$W/tiny.jsonl" --output-dir "$W/trained" \
    --sequence-len 8 --micro-batch-size 2 --max-steps 20 --learning-rate 0.1 --lr-scheduler constant --threads 1
first=$(head -n 1 "$W/trained/metrics.jsonl" | json_num loss)
last=$(tail -n 1 "$W/trained/metrics.jsonl" | json_num loss)
num_cmp "$last" "<" "$first" || fail "tiny_gpt2 training loss went from $first to $last"
echo "   ok: $first -> $last"

check "fake_gpt2 with its tokenizer.json: text data and text prompts"
# the same text as a .txt file and as a JSONL {"text"} row gives the same tokens, hence the same loss
printf 'It was the best of times, it was the worst of times.' >"$W/doc.txt"
printf '{"text": "It was the best of times, it was the worst of times."}\n' >"$W/doc.jsonl"
run_ok "eval .txt" "$HONE" eval --model "$FAKE" --data "$W/doc.txt" --sequence-len 64 --json --threads 1
cp "$W/stdout" "$W/txt_eval"
run_ok "eval text jsonl" "$HONE" eval --model "$FAKE" --data "$W/doc.jsonl" --sequence-len 64 --json --threads 1
cmp -s "$W/stdout" "$W/txt_eval" || fail "the .txt and the JSONL text row evaluate differently"
# 14 GPT-2 tokens + EOS = 15 tokens in one block: 14 predictions
grep -q '"tokens": 14' "$W/stdout" || fail "expected 14 predicted tokens: $(cat "$W/stdout")"
run_ok "generate from text" "$HONE" generate --model "$FAKE" --prompt "Hello, my name is" --max-new-tokens 5 --json \
    --threads 1
grep -q '"text": ' "$W/stdout" || fail "generate --prompt --json prints no text: $(cat "$W/stdout")"
run_ok "pretrain on text" "$HONE" pretrain --model "$FAKE" --data "$W/doc.txt" --output-dir "$W/fake_text" \
    --sequence-len 7 --max-steps 1 --threads 1
[ -f "$W/fake_text/tokenizer.json" ] || fail "the trained folder lacks the tokenizer files"

echo "PASS: real_hf_models"
