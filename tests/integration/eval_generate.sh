#!/bin/sh
# hone eval and hone generate on a small trained model: output formats, how blocks are counted, equivalence of
# the token-file formats, and determinism of greedy decoding and of seeded sampling.
#
#   sh tests/integration/eval_generate.sh build/hone     (from the repository root)
set -eu
. "$(dirname "$0")/lib/common.sh"
setup "$@"

check "setup: a llama-tiny model (vocab 256) trained for 150 steps on the demo's byte-level text"
run_ok "demo" "$HONE" demo --text-only --seconds 0 --max-steps 1 --output-dir "$W/init" --threads 1
run_ok "pretrain" "$HONE" pretrain --model "$W/init" --data "$W/init/train.bin" --output-dir "$W/m" \
    --sequence-len 64 --micro-batch-size 8 --max-steps 150 --learning-rate 5e-3 --lr-scheduler constant --threads 1
M=$W/m

# 10 tokens ("the cat sa") in one JSONL row.
printf '{"input_ids": [116, 104, 101, 32, 99, 97, 116, 32, 115, 97]}\n' >"$W/ten.jsonl"

check "eval --json prints one JSON object with loss, perplexity, tokens, blocks; perplexity = exp(loss)"
run_ok "eval --json" "$HONE" eval --model "$M" --data "$W/ten.jsonl" --sequence-len 4 --json --threads 1
[ "$(wc -l <"$W/stdout" | tr -d ' ')" -eq 1 ] || fail "eval --json printed more than one line: $(cat "$W/stdout")"
json_valid "$W/stdout" || fail "eval --json output is not valid JSON: $(cat "$W/stdout")"
loss=$(json_num loss <"$W/stdout")
ppl=$(json_num perplexity <"$W/stdout")
tokens=$(json_num tokens <"$W/stdout")
blocks=$(json_num blocks <"$W/stdout")
[ -n "$loss" ] && [ -n "$ppl" ] && [ -n "$tokens" ] && [ -n "$blocks" ] ||
    fail "eval --json lacks loss, perplexity, tokens or blocks: $(cat "$W/stdout")"
num_cmp "$loss" ">" 0 || fail "loss $loss is not positive"
awk -v l="$loss" -v p="$ppl" 'BEGIN { e = exp(l); d = (p - e) / e; if (d < 0) d = -d; exit !(d <= 1e-6) }' ||
    fail "perplexity $ppl is not exp(loss) = exp($loss)"
echo "   ok: $(cat "$W/stdout")"
cp "$W/stdout" "$W/ten.json_out"

check "10 tokens in blocks of 4: blocks of 4, 4 and a partial 2 → 3 + 3 + 1 = 7 predicted tokens in 3 blocks"
[ "$tokens" = 7 ] || fail "tokens = $tokens, expected 7"
[ "$blocks" = 3 ] || fail "blocks = $blocks, expected 3"

check "the loss is the token-weighted mean of the three blocks scored separately (no context carried over)"
printf '{"input_ids": [116, 104, 101, 32]}\n' >"$W/b1.jsonl"
printf '{"input_ids": [99, 97, 116, 32]}\n' >"$W/b2.jsonl"
printf '{"input_ids": [115, 97]}\n' >"$W/b3.jsonl"
block_loss() {
    run_ok "eval $1" "$HONE" eval --model "$M" --data "$W/$1" --sequence-len 4 --json --threads 1
    json_num loss <"$W/stdout"
}
lb1=$(block_loss b1.jsonl)
lb2=$(block_loss b2.jsonl)
lb3=$(block_loss b3.jsonl)
want=$(awk -v a="$lb1" -v b="$lb2" -v c="$lb3" 'BEGIN { printf "%.9g", (3 * a + 3 * b + c) / 7 }')
near "$loss" "$want" 1e-6 || fail "loss $loss, but the blocks' losses $lb1, $lb2, $lb3 give $want"
echo "   ok: (3 x $lb1 + 3 x $lb2 + $lb3) / 7 = $want"

check "a 1-token remainder predicts nothing: 9 tokens in blocks of 4 → 6 tokens in 2 blocks"
printf '{"input_ids": [116, 104, 101, 32, 99, 97, 116, 32, 115]}\n' >"$W/nine.jsonl"
run_ok "eval 9 tokens" "$HONE" eval --model "$M" --data "$W/nine.jsonl" --sequence-len 4 --json --threads 1
[ "$(json_num tokens <"$W/stdout")" = 6 ] && [ "$(json_num blocks <"$W/stdout")" = 2 ] ||
    fail "9 tokens, sequence_len 4: $(cat "$W/stdout"), expected 6 tokens in 2 blocks"

check "docs/CONFIG.md's example: 363 tokens with sequence_len 16 → 340 predicted tokens in 23 blocks"
awk 'BEGIN { printf "{\"input_ids\": ["; for (i = 0; i < 363; i++) printf "%s%d", (i ? ", " : ""), (i * 37) % 256; print "]}" }' \
    >"$W/363.jsonl"
run_ok "eval 363 tokens" "$HONE" eval --model "$M" --data "$W/363.jsonl" --sequence-len 16 --json --threads 1
[ "$(json_num tokens <"$W/stdout")" = 340 ] && [ "$(json_num blocks <"$W/stdout")" = 23 ] ||
    fail "363 tokens, sequence_len 16: $(cat "$W/stdout"), expected 340 tokens in 23 blocks"
l363=$(json_num loss <"$W/stdout")

check "micro_batch_size does not change the result"
run_ok "eval mbs 5" "$HONE" eval --model "$M" --data "$W/363.jsonl" --sequence-len 16 --micro-batch-size 5 --json \
    --threads 1
near "$(json_num loss <"$W/stdout")" "$l363" 1e-6 ||
    fail "micro_batch_size 5 gives loss $(json_num loss <"$W/stdout"), micro_batch_size 1 gives $l363"

check "the same tokens as JSONL split over rows (with a blank line and other keys), as .json, and as llm.c shards"
{
    printf '{"input_ids": [116, 104, 101], "source": "x"}\n'
    printf '\n'
    printf '{"input_ids": []}\n'
    printf '{"meta": {"a": 1}, "input_ids": [32, 99, 97, 116, 32, 115, 97]}\n'
} >"$W/rows.jsonl"
cp "$W/ten.jsonl" "$W/ten.json"
write_shard_header "$W/v1.bin" 20240520 1 10
write_shard_header "$W/v7.bin" 20240801 7 10
# shellcheck disable=SC2059
for t in 116 104 101 32 99 97 116 32 115 97; do
    printf "\\$(printf '%03o' "$t")\\000" >>"$W/v1.bin"
    printf "\\$(printf '%03o' "$t")\\000\\000\\000" >>"$W/v7.bin"
done
for f in rows.jsonl ten.json v1.bin v7.bin; do
    run_ok "eval $f" "$HONE" eval --model "$M" --data "$W/$f" --sequence-len 4 --json --threads 1
    cmp -s "$W/stdout" "$W/ten.json_out" || fail "$f evaluates to $(cat "$W/stdout"), ten.jsonl to $(cat "$W/ten.json_out")"
done
echo "   ok: identical results"

check "plain eval output: 'loss X  perplexity Y  (N predicted tokens in M blocks)'"
run_ok "eval plain" "$HONE" eval --model "$M" --data "$W/ten.jsonl" --sequence-len 4 --threads 1
grep -q '^loss [0-9.]*  perplexity [0-9.]*  (7 predicted tokens in 3 blocks)$' "$W/stdout" ||
    fail "unexpected plain output: $(cat "$W/stdout")"

PROMPT=116,104,101,32
check "generate --json --max-new-tokens 5 prints {\"ids\": [5 ids]} with ids in the vocabulary"
run_ok "generate" "$HONE" generate --model "$M" --prompt-ids "$PROMPT" --max-new-tokens 5 --json --threads 1
json_valid "$W/stdout" || fail "generate --json output is not valid JSON: $(cat "$W/stdout")"
ids=$(sed -n 's/^{"ids": \[\([0-9, ]*\)\]}$/\1/p' "$W/stdout")
[ -n "$ids" ] || fail "generate --json printed $(cat "$W/stdout"), expected {\"ids\": [...]}"
n=$(echo "$ids" | tr ',' '\n' | awk '$1 >= 0 && $1 < 256' | wc -l | tr -d ' ')
[ "$n" -eq 5 ] || fail "expected 5 ids in [0, 256), got: $(cat "$W/stdout")"
echo "   ok: $(cat "$W/stdout")"

check "greedy decoding is deterministic, and seed, top_k and top_p play no part in it"
run_ok "greedy" "$HONE" generate --model "$M" --prompt-ids "$PROMPT" --max-new-tokens 24 --json --threads 1
cp "$W/stdout" "$W/greedy"
run_ok "greedy again" "$HONE" generate --model "$M" --prompt-ids "$PROMPT" --max-new-tokens 24 --json --threads 1
cmp -s "$W/stdout" "$W/greedy" || fail "two greedy runs differ: $(cat "$W/greedy") vs $(cat "$W/stdout")"
run_ok "greedy seed" "$HONE" generate --model "$M" --prompt-ids "$PROMPT" --max-new-tokens 24 --json --seed 7 \
    --top-k 3 --top-p 0.5 --temperature 0 --threads 1
cmp -s "$W/stdout" "$W/greedy" || fail "greedy output changes with seed/top_k/top_p: $(cat "$W/stdout")"
echo "   ok: $(cat "$W/greedy")"
greedy=$(sed -n 's/^{"ids": \[\([0-9, ]*\)\]}$/\1/p' "$W/greedy" | tr -d ' ')

check "the plain output is the same ids separated by spaces"
run_ok "greedy plain" "$HONE" generate --model "$M" --prompt-ids "$PROMPT" --max-new-tokens 24 --threads 1
[ "$(tr ' ' ',' <"$W/stdout")" = "$greedy" ] || fail "plain output '$(cat "$W/stdout")' differs from --json's $greedy"

check "greedy continuation from a longer prompt (prompt + first 10 generated ids) gives the remaining 14"
head10=$(echo "$greedy" | cut -d, -f1-10)
rest=$(echo "$greedy" | cut -d, -f11-)
run_ok "greedy continued" "$HONE" generate --model "$M" --prompt-ids "$PROMPT,$head10" --max-new-tokens 14 \
    --json --threads 1
got=$(sed -n 's/^{"ids": \[\([0-9, ]*\)\]}$/\1/p' "$W/stdout" | tr -d ' ')
[ "$got" = "$rest" ] || fail "continuing from the longer prompt gave $got, the first run $rest"

check "sampling (temperature 1) with the same seed is deterministic; another seed gives another sample"
run_ok "sample" "$HONE" generate --model "$M" --prompt-ids "$PROMPT" --max-new-tokens 24 --temperature 1 --seed 123 \
    --json --threads 1
cp "$W/stdout" "$W/sample"
run_ok "sample again" "$HONE" generate --model "$M" --prompt-ids "$PROMPT" --max-new-tokens 24 --temperature 1 \
    --seed 123 --json --threads 1
cmp -s "$W/stdout" "$W/sample" || fail "same seed, different samples: $(cat "$W/sample") vs $(cat "$W/stdout")"
run_ok "sample seed 124" "$HONE" generate --model "$M" --prompt-ids "$PROMPT" --max-new-tokens 24 --temperature 1 \
    --seed 124 --json --threads 1
cmp -s "$W/stdout" "$W/sample" && fail "seeds 123 and 124 gave the same 24 sampled ids: $(cat "$W/sample")"
cmp -s "$W/sample" "$W/greedy" && fail "sampling at temperature 1 gave exactly the greedy ids"
echo "   ok: $(cat "$W/sample")"

check "top_k 1 and top_p 0 keep only the most likely token: sampling then equals greedy"
for opt in "--top-k 1" "--top-p 0"; do
    # shellcheck disable=SC2086
    run_ok "sample $opt" "$HONE" generate --model "$M" --prompt-ids "$PROMPT" --max-new-tokens 24 --temperature 1 \
        --seed 123 $opt --json --threads 1
    cmp -s "$W/stdout" "$W/greedy" || fail "temperature 1 with $opt gave $(cat "$W/stdout"), greedy $(cat "$W/greedy")"
done

check "--max-new-tokens 0 prints {\"ids\": []}"
run_ok "generate 0" "$HONE" generate --model "$M" --prompt-ids "$PROMPT" --max-new-tokens 0 --json --threads 1
[ "$(cat "$W/stdout")" = '{"ids": []}' ] || fail "got $(cat "$W/stdout")"

check "stop_at_eos: generation stops right after config.json's eos_token_id, which is included"
eos=$(echo "$greedy" | cut -d, -f3)
want=$(echo "$greedy" | tr ',' '\n' | awk -v e="$eos" '{ print } $1 == e { exit }' | paste -s -d, -)
mkdir "$W/eos"
cp "$M/model.safetensors" "$W/eos/"
sed "s/\"eos_token_id\": *[0-9]*/\"eos_token_id\": $eos/" "$M/config.json" >"$W/eos/config.json"
grep -Eq "\"eos_token_id\": *$eos([^0-9]|\$)" "$W/eos/config.json" || fail "could not set eos_token_id in config.json"
run_ok "generate eos" "$HONE" generate --model "$W/eos" --prompt-ids "$PROMPT" --max-new-tokens 24 --json --threads 1
got=$(sed -n 's/^{"ids": \[\([0-9, ]*\)\]}$/\1/p' "$W/stdout" | tr -d ' ')
[ "$got" = "$want" ] || fail "with eos_token_id $eos: got $got, expected $want"
run_ok "generate no eos stop" "$HONE" generate --model "$W/eos" --prompt-ids "$PROMPT" --max-new-tokens 24 \
    --stop-at-eos false --json --threads 1
cmp -s "$W/stdout" "$W/greedy" || fail "--stop-at-eos false gave $(cat "$W/stdout"), expected all of $(cat "$W/greedy")"
echo "   ok: eos $eos → $want"

echo "PASS: eval_generate"
