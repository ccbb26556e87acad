#!/bin/sh
# hone data stats / hone data preview on real datasets, and a YAML datasets list (weights, caps, dedup, shaping)
# through stats and a one-step hone sft. Token lengths are checked against hone data render's rows, mixture counts
# against the documented formula computed here in Python.
set -eu
. "$(dirname "$0")/lib/common.sh"
setup "$@"
DATA=../shared/data
if [ ! -d "$DATA" ]; then
    echo "skipping: $DATA is absent (real tokenizers and datasets live there)"
    exit 77
fi
TOK=$DATA/tokenizers/gpt2
ALPACA=$DATA/datasets/instruct/alpaca_23.json
DOLLY=$DATA/datasets/instruct/dolly_12.json
SHAREGPT=$DATA/datasets/chat/sharegpt_500.json
PY=/usr/bin/python3

check "stats of two files: counts, and token lengths equal to hone data render's rows"
run_ok "stats" "$HONE" data stats --data "$ALPACA,$DOLLY" --tokenizer "$TOK" --sequence-len 300 --json
cp "$W/stdout" "$W/stats.json"
json_valid "$W/stats.json" || fail "stats --json is not one JSON object"
run_ok "render alpaca" "$HONE" data render --tokenizer "$TOK" --data "$ALPACA" --output "$W/a.jsonl"
run_ok "render dolly" "$HONE" data render --tokenizer "$TOK" --data "$DOLLY" --output "$W/d.jsonl"
$PY - "$W/stats.json" "$W/a.jsonl" "$W/d.jsonl" <<'PY' || fail "stats disagree with the rendered rows"
import json, math, sys
s = json.load(open(sys.argv[1]))
rows = [json.loads(l) for f in sys.argv[2:] for l in open(f)]
lens = sorted(len(r["input_ids"]) for r in rows)
n = len(lens)
assert s["examples"] == n == 35 and s["rows"] == 35 and s["dropped"] == 0, s
assert [d["selected"] for d in s["datasets"]] == [23, 12] and not s["weighted"]
t = s["tokens"]
assert t["total"] == sum(lens) and t["min"] == lens[0] and t["max"] == lens[-1], t
assert t["trained"] == sum(sum(1 for l in r["labels"] if l != -100) for r in rows)
for p in (50, 90, 95, 99):
    assert t["p%d" % p] == lens[math.ceil(p * n / 100) - 1], (p, t)
assert t["over_sequence_len"] == sum(1 for l in lens if l > 300)
assert sum(b["count"] for b in t["histogram"]) == n
assert all(b["count"] == sum(1 for l in lens if b["from"] <= l < b["to"]) for b in t["histogram"])
assert [d["tokens"] for d in s["datasets"]] == [sum(len(r["input_ids"]) for r in rows[:23]),
                                                sum(len(r["input_ids"]) for r in rows[23:])]
PY

check "the human-readable stats: a histogram with bars and the examples over sequence_len"
run_ok "stats text" "$HONE" data stats --data "$ALPACA" --tokenizer "$TOK" --sequence-len 300
grep -q '^  \[ *0, *[0-9]*)  #' "$W/stdout" || fail "no histogram: $(cat "$W/stdout")"
grep -q "longer than sequence_len 300: 2 (dropped by truncation drop)" "$W/stdout" || fail "$(cat "$W/stdout")"
run_ok "stats without a tokenizer" "$HONE" data stats --data "$DOLLY"
grep -q "token lengths: give --tokenizer" "$W/stdout" || fail "$(cat "$W/stdout")"

check "a weighted YAML mixture: counts by the documented formula, dedup, shaping, same bits for the same seed"
cat >"$W/mix.yaml" <<YAML
data:
  - path: $ALPACA
    weight: 3
  - {path: $DOLLY, weight: 1, max_samples: 10}
  - path: $SHAREGPT
    fraction: 0.2
dedup: near
seed: 5
few_shot_rate: 0.5
inversion_rate: 0.25
YAML
run_ok "stats mixture" "$HONE" data stats --config "$W/mix.yaml" --json
cp "$W/stdout" "$W/mix1.json"
run_ok "stats mixture again" "$HONE" data stats --config "$W/mix.yaml" --json
cmp -s "$W/mix1.json" "$W/stdout" || fail "the same seed gave another mixture"
run_ok "stats mixture, another seed" "$HONE" data stats --config "$W/mix.yaml" --json --seed 6
cmp -s "$W/mix1.json" "$W/stdout" && fail "another seed gave the same mixture"
$PY - "$W/mix1.json" <<'PY' || fail "mixture counts differ from the formula"
import json, math, sys
s = json.load(open(sys.argv[1]))
d = s["datasets"]
assert s["weighted"]
caps = [x["unique"] for x in d]
caps[1] = min(caps[1], 10)
caps[2] = min(caps[2], round(0.2 * d[2]["unique"] + 1e-9))
assert [x["capped"] for x in d] == caps, (caps, d)
w = [3, 1, 1]
W = sum(w)
N = min(math.floor(c * W / wi + 1e-9) for c, wi in zip(caps, w))
want = [min(c, math.floor(wi / W * N + 0.5)) for c, wi in zip(caps, w)]
assert [x["selected"] for x in d] == want and s["examples"] == sum(want), (want, d)
assert d[2]["near_duplicates"] > 0  # FastChat's dummy conversations repeat themselves
assert sum(x["inverted"] for x in d) > 0 and sum(x["few_shot"] for x in d) > 0
assert all(x["exemplars"] >= x["few_shot"] for x in d)
PY

check "hone sft trains one step on the YAML datasets list"
cat >"$W/sft.yaml" <<YAML
datasets:
  - path: $ALPACA
    weight: 2
  - path: $DOLLY
    type: dolly
YAML
run_ok "sft" "$HONE" sft --config "$W/sft.yaml" --model "$DATA/models/fake_gpt2" --output-dir "$W/out" \
    --sequence-len 256 --max-steps 1 --threads 1
grep -q "alpaca_23.json: 23 examples (.*weight 2, share 67.6%)" "$W/stderr" || fail "$(cat "$W/stderr")"
grep -q "dolly_12.json: 11 examples" "$W/stderr" || fail "$(cat "$W/stderr")"
[ "$(wc -l <"$W/out/metrics.jsonl")" -eq 1 ] || fail "metrics.jsonl should have 1 line"

check "errors inside a datasets item name the file, the line and the item"
printf 'datasets:\n  - path: %s\n    wieght: 2\n' "$ALPACA" >"$W/bad.yaml"
expect_error "unknown item key" "bad.yaml:3: datasets item 1: unknown key 'wieght' (did you mean 'weight'?)" \
    "$HONE" sft --config "$W/bad.yaml" --model "$DATA/models/fake_gpt2" --output-dir "$W/x"
printf 'data:\n  - path: %s\n    fraction: 2\n' "$ALPACA" >"$W/bad.yaml"
expect_error "a fraction above 1" "bad.yaml:3: data item 1: fraction must be in (0, 1], got 2" \
    "$HONE" data stats --config "$W/bad.yaml"
expect_error "an unknown dedup mode" "expected none, exact or near" "$HONE" data stats --data "$ALPACA" --dedup fuzzy

check "preview: the trained text between markers off a terminal, (token, label) pairs with --tokens, colour on demand"
run_ok "preview" "$HONE" data preview --data "$ALPACA" --tokenizer "$TOK" -n 2
[ "$(grep -c '^== example' "$W/stdout")" -eq 2 ] || fail "expected 2 examples: $(cat "$W/stdout")"
grep -q '### Response:«' "$W/stdout" || fail "the answer is not marked as trained: $(cat "$W/stdout")"
grep -q '<|endoftext|>»' "$W/stdout" || fail "the eos token is not marked as trained"
grep -q '«.*### Instruction' "$W/stdout" && fail "the prompt is marked as trained"
run_ok "preview tokens" "$HONE" data preview --data "$ALPACA" --tokenizer "$TOK" -n 1 --tokens
grep -q 'Below(-100, 21106)' "$W/stdout" || fail "no (label, id) pairs: $(head -c 300 "$W/stdout")"
grep -q '<|endoftext|>(50256, 50256)' "$W/stdout" || fail "the trained eos has no label"
run_ok "preview colour" "$HONE" data preview --data "$ALPACA" --tokenizer "$TOK" -n 1 --color always
grep -q "$(printf '\033\\[32m')" "$W/stdout" || fail "no green trained text with --color always"
expect_error "preview needs a tokenizer" "missing required option --tokenizer" "$HONE" data preview --data "$ALPACA"
echo "ok"
