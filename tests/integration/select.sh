#!/bin/sh
# hone select --score-only: IFD and reverse IFD of every example of a real alpaca file with a Hugging Face-written
# GPT-2 checkpoint and its tokenizer; resuming after a kill gives the same file; bad requests are clear errors.
set -eu
. "$(dirname "$0")/lib/common.sh"
setup "$@"
DATA=../shared/data
if [ ! -d "$DATA" ]; then
    echo "skipping: $DATA is absent (the checkpoint and the datasets live there)"
    exit 77
fi
MODEL=$DATA/models/fake_gpt2
ALPACA=$DATA/datasets/instruct/alpaca_23.json

check "every example gets ifd, ifd_loss, losses and rifd, consistent with each other"
run_ok "score" "$HONE" select --model "$MODEL" --data "$ALPACA" --method ifd --reverse --score-only \
    --sequence-len 512 --threads 1 --output "$W/scores.jsonl"
[ "$(wc -l <"$W/scores.jsonl")" -eq 23 ] || fail "expected 23 rows"
[ -f "$W/scores.jsonl.meta.json" ] || fail "no manifest beside the output"
/usr/bin/python3 - "$W/scores.jsonl" "$ALPACA" <<'PY' || fail "rows are inconsistent"
import json, math, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
data = json.load(open(sys.argv[2]))
assert [r["index"] for r in rows] == list(range(len(data)))
for r, d in zip(rows, data):
    assert (r["instruction"], r["input"], r["output"]) == (d["instruction"], d.get("input", ""), d["output"])
    assert r["n_answer_tokens"] > 0
    assert abs(r["ifd"] - math.exp(r["loss_cond"] - r["loss_direct"])) <= 1e-6 * r["ifd"]
    assert abs(r["ifd_loss"] - r["loss_cond"] / r["loss_direct"]) <= 1e-6 * r["ifd_loss"]
    assert r["rifd"] > 0 and "not_scored" not in r
PY

check "a run killed while writing: running again completes the file, byte for byte the same"
cp "$W/scores.jsonl" "$W/whole.jsonl"
head -c 3000 "$W/whole.jsonl" >"$W/scores.jsonl"
run_ok "resume" "$HONE" select --model "$MODEL" --data "$ALPACA" --method ifd --reverse --score-only \
    --sequence-len 512 --threads 1 --output "$W/scores.jsonl"
cmp -s "$W/scores.jsonl" "$W/whole.jsonl" || fail "the resumed output differs from the uninterrupted one"

check "selection: ifd < 1, then the hardest 30 % of all examples; every decision written with its reason"
run_ok "select" "$HONE" select --model "$MODEL" --data "$ALPACA" --method ifd --reverse --top-fraction 0.3 \
    --sequence-len 512 --threads 1 --output "$W/selected.jsonl" --scores "$W/scores.jsonl"
grep -q "selected; dropped:" "$W/stderr" || fail "no selection summary: $(cat "$W/stderr")"
/usr/bin/python3 - "$W/scores.jsonl" "$W/selected.jsonl" "$W/selected.decisions.jsonl" <<'PY' || fail "wrong selection"
import json, sys
scores = [json.loads(l) for l in open(sys.argv[1])]
kept = [json.loads(l) for l in open(sys.argv[2])]
decisions = [json.loads(l) for l in open(sys.argv[3])]
candidates = sorted((r for r in scores if r["ifd"] < 1), key=lambda r: (-r["ifd"], r["index"]))
want = sorted(r["index"] for r in candidates[: round(0.3 * len(scores))])
assert [r["index"] for r in kept] == want, ([r["index"] for r in kept], want)
assert all(k["instruction"] == scores[k["index"]]["instruction"] for k in kept)
assert [d["index"] for d in decisions] == list(range(len(scores)))
for d, r in zip(decisions, scores):
    assert d["selected"] == (d["index"] in want)
    assert d["reason"] == ("kept" if d["selected"] else "ifd_too_high" if r["ifd"] >= 1 else "below_cut")
PY

check "the same output with other options is refused"
expect_error "other sequence_len" "different sequence_len" "$HONE" select --model "$MODEL" --data "$ALPACA" \
    --method ifd --reverse --score-only --sequence-len 128 --threads 1 --output "$W/scores.jsonl"
expect_error "unknown method" "--method 'ppx' is not known" "$HONE" select --model "$MODEL" --data "$ALPACA" \
    --method ppx --score-only --output "$W/other.jsonl"
expect_error "rifd threshold without reverse scores" "add --reverse" "$HONE" select --model "$MODEL" \
    --data "$ALPACA" --max-rifd 1 --output "$W/other.jsonl"
printf '{"text": "plain text"}\n' >"$W/text.jsonl"
expect_error "text rows" "scoring needs instruction / answer examples" "$HONE" select --model "$MODEL" \
    --data "$W/text.jsonl" --score-only --output "$W/other.jsonl"
echo "ok"
