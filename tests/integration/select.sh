#!/bin/sh
# hone select --score-only: IFD and reverse IFD of every example of a real alpaca file with a Hugging Face-written
# GPT-2 checkpoint and its tokenizer; resuming after a kill gives the same file; duplicates, facility location,
# Cherry's pre-experience and the report; bad requests are clear errors.
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

check "duplicates: exact (case and spaces differ) and near copies lose to the best-scored copy, which stays"
/usr/bin/python3 - "$ALPACA" "$W/dups.json" <<'PY'
import json, sys
data = json.load(open(sys.argv[1]))[:10]
twin = dict(data[3]); twin["instruction"] = "  " + twin["instruction"].upper() + "  "
near = dict(data[5]); near["output"] = near["output"] + " Indeed."
json.dump(data + [twin, near], open(sys.argv[2], "w"))
PY
run_ok "dedup" "$HONE" select --model "$MODEL" --data "$W/dups.json" --max-ifd 0 --dedup near --dedup-threshold 0.7 \
    --sequence-len 256 --threads 2 --output "$W/dedup.jsonl" --report "$W/dedup.html"
/usr/bin/python3 - "$W/dedup.scores.jsonl" "$W/dedup.decisions.jsonl" <<'PY' || fail "wrong duplicates"
import json, sys
scores = [json.loads(l) for l in open(sys.argv[1])]
decisions = [json.loads(l) for l in open(sys.argv[2])]
dups = {d["index"]: d for d in decisions if d["reason"] == "duplicate"}
pairs = {frozenset((3, 10)), frozenset((5, 11))}
assert {frozenset((i, d["duplicate_of"])) for i, d in dups.items()} == pairs, dups
for i, d in dups.items():
    stay = d["duplicate_of"]
    assert decisions[stay]["selected"], d
    assert (-scores[stay]["ifd"], stay) < (-scores[i]["ifd"], i), (i, stay)  # the better-ranked copy stays
assert dups[min(dups, key=lambda i: i)]["similarity"] <= 1
assert sum(d["selected"] for d in decisions) == 10
PY
grep -q "<svg" "$W/dedup.html" && ! grep -q "<script" "$W/dedup.html" || fail "the report is not a script-free SVG page"

check "Superfiltering's diversity: top 50 %, then 3 by facility location"
run_ok "facility" "$HONE" select --model "$MODEL" --data "$W/dups.json" --max-ifd 0 --top-fraction 0.5 \
    --facility-location 3 --sequence-len 256 --threads 2 --output "$W/fl.jsonl" --scores "$W/dedup.scores.jsonl"
/usr/bin/python3 - "$W/fl.decisions.jsonl" <<'PY' || fail "wrong facility-location selection"
import json, sys
d = [json.loads(l) for l in open(sys.argv[1])]
reasons = [r["reason"] for r in d]
assert reasons.count("kept") == 3 and reasons.count("not_chosen_by_facility_location") == 3, reasons
assert all(r["rank"] <= 6 for r in d if r["reason"] != "below_cut")
PY

check "Cherry's pre-experience: a subset per cluster, one epoch of SFT, scores from the trained model; reused on rerun"
run_ok "cherry" "$HONE" select --model "$MODEL" --data "$W/dups.json" --method cherry --clusters 3 --per-cluster 2 \
    --learning-rate 1e-3 --sequence-len 256 --threads 2 --top-fraction 0.5 --output "$W/cherry.jsonl"
P=$W/cherry.pre_experience
[ -f "$P/pre_experience.jsonl" ] && [ -f "$P/model/model.safetensors" ] || fail "no pre-experience subset or model"
/usr/bin/python3 - "$P/pre_experience.jsonl" "$W/cherry.scores.jsonl.meta.json" "$W/dedup.scores.jsonl.meta.json" \
    <<'PY' || fail "wrong pre-experience"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
idx = [r["index"] for r in rows]
assert idx == sorted(idx) and 1 <= len(rows) <= 6, idx  # at most 2 per cluster
assert all(r["cluster"] in (0, 1, 2) and r["ppl"] > 0 for r in rows)
assert all(sum(r["cluster"] == c for r in rows) <= 2 for c in range(3))
trained, base = (json.load(open(p))["model_hash"] for p in sys.argv[2:4])
assert trained != base, "scored with the untrained model"
PY
cp "$P/pre_experience.jsonl" "$W/subset_before.jsonl"
run_ok "cherry again" "$HONE" select --model "$MODEL" --data "$W/dups.json" --method cherry --clusters 3 \
    --per-cluster 2 --learning-rate 1e-3 --sequence-len 256 --threads 2 --top-fraction 0.5 --output "$W/cherry.jsonl"
grep -q "pre_experience.jsonl reused" "$W/stderr" && grep -q "model.* reused" "$W/stderr" ||
    fail "stages not reused: $(cat "$W/stderr")"
grep -q "0 scored now" "$W/stderr" || fail "the scores were not reused"
cmp -s "$P/pre_experience.jsonl" "$W/subset_before.jsonl" || fail "the subset changed"
run_ok "cherry, another learning rate" "$HONE" select --model "$MODEL" --data "$W/dups.json" --method cherry \
    --clusters 3 --per-cluster 2 --learning-rate 2e-3 --sequence-len 256 --threads 2 --top-fraction 0.5 --output "$W/cherry2.jsonl" \
    --pre-experience-dir "$P"
grep -q "pre_experience.jsonl reused" "$W/stderr" && grep -q "one epoch on" "$W/stderr" ||
    fail "a new learning rate must retrain only: $(cat "$W/stderr")"

check "the same output with other options is refused"
expect_error "other sequence_len" "different sequence_len" "$HONE" select --model "$MODEL" --data "$ALPACA" \
    --method ifd --reverse --score-only --sequence-len 128 --threads 1 --output "$W/scores.jsonl"
expect_error "unknown method" "--method 'ppx' is not known" "$HONE" select --model "$MODEL" --data "$ALPACA" \
    --method ppx --score-only --output "$W/other.jsonl"
expect_error "training keys without training" "applies to --method cherry only" "$HONE" select --model "$MODEL" \
    --data "$ALPACA" --learning-rate 1e-4 --output "$W/other.jsonl"
expect_error "Cherry trains one epoch" "exactly one epoch" "$HONE" select --model "$MODEL" --data "$ALPACA" \
    --method cherry --num-epochs 3 --output "$W/other.jsonl"
expect_error "rifd threshold without reverse scores" "add --reverse" "$HONE" select --model "$MODEL" \
    --data "$ALPACA" --max-rifd 1 --output "$W/other.jsonl"
printf '{"text": "plain text"}\n' >"$W/text.jsonl"
expect_error "text rows" "scoring needs instruction / answer examples" "$HONE" select --model "$MODEL" \
    --data "$W/text.jsonl" --score-only --output "$W/other.jsonl"
echo "ok"
