#!/bin/sh
# Issue 6 item 6, reproduction at small scale: a synthetic instruction pool (hone's built-in task suite as alpaca
# rows) with injected defects — misaligned pairs (another example's answer), truncated answers (last character cut),
# wrong answers (perturbed), near duplicates (a clean row with one word of its instruction changed) — whose labels
# are kept aside. A small model that knows the tasks (the full fine-tune of `hone demo`, OUT/sft-all) scores the
# pool with `hone select --score-only`; then each selector runs on those scores and the script prints its precision
# and recall on the defects (a defect is caught when the selector drops it). With SFT=1 it also fine-tunes the demo's
# base with `hone sft` on the subset kept by the IFD threshold, on the whole pool, on the clean rows only and on
# random subsets of the same size, and prints the exact match of each on held-out problems (greedy `hone generate`).
#
# Usage: sh bench/select_defects.sh
# Environment: HONE (default build/hone), PYTHON (default /usr/bin/python3), WORK (default /tmp/hone-select-defects),
#              DEMO (a `hone demo` output folder; default WORK/demo, made with `hone demo` when missing; QUICK=1 makes
#              it with --quick), SEED (pool, default 1), SFT (1: also the fine-tunes, default 0),
#              SFT_EPOCHS (default 20), RANDOM_SEEDS (random subsets, default "1 2 3"), THREADS (default 1).

set -u
cd "$(dirname "$0")/.." || exit 1

HONE=${HONE:-build/hone}
PYTHON=${PYTHON:-/usr/bin/python3}
WORK=${WORK:-/tmp/hone-select-defects}
DEMO=${DEMO:-$WORK/demo}
SEED=${SEED:-1}
SFT=${SFT:-0}
SFT_EPOCHS=${SFT_EPOCHS:-20}
RANDOM_SEEDS=${RANDOM_SEEDS:-1 2 3}
THREADS=${THREADS:-1}
QUICK=${QUICK:-0}
HELPER=bench/select_defects.py

if [ ! -x "$HONE" ]; then
    echo "select_defects.sh: $HONE not found; build it first with 'make'" >&2
    exit 1
fi
mkdir -p "$WORK" || exit 1
. bench/common.sh
bench_header

die() {
    echo "select_defects.sh: $1 failed (see $WORK/log.txt)" >&2
    exit 1
}

if [ ! -f "$DEMO/sft-all/model.safetensors" ]; then
    quick_flag=
    [ "$QUICK" = 1 ] && quick_flag=--quick
    echo "making the scorer: hone demo $quick_flag --output-dir $DEMO"
    "$HONE" demo $quick_flag --output-dir "$DEMO" >>"$WORK/log.txt" 2>&1 || die "hone demo"
fi
"$PYTHON" "$HELPER" make "$WORK" "$SEED" || exit 1

# prompt_template chat: the demo's models were fine-tuned on the ChatML rendering of the same prompts
"$HONE" select --model "$DEMO/sft-all" --data "$WORK/pool.jsonl" --format alpaca --prompt-template chat \
    --sequence-len 256 --threads "$THREADS" --score-only --output "$WORK/scores.jsonl" >>"$WORK/log.txt" 2>&1 ||
    die "hone select --score-only"
# the mean ifd of each kind of row, to read the table by
"$PYTHON" - "$WORK" <<'EOF'
import json, sys
labels = [json.loads(l) for l in open(sys.argv[1] + "/labels.jsonl")]
scores = [json.loads(l) for l in open(sys.argv[1] + "/scores.jsonl")]
for kind in ["clean", "misaligned", "truncated", "wrong", "near_duplicate"]:
    ifd = sorted(s["ifd"] for s, l in zip(scores, labels) if l["defect"] == kind and s["ifd"] is not None)
    print("ifd of %-15s n %3d  median %.3f  min %.3f  max %.3f  share >= 1: %.2f" %
          (kind, len(ifd), ifd[len(ifd) // 2], ifd[0], ifd[-1], sum(x >= 1 for x in ifd) / len(ifd)))
EOF

# select NAME FLAGS...: selection from the cached scores (the scoring is not repeated), then its precision / recall
select_row() {
    name=$1
    shift
    "$HONE" select --model "$DEMO/sft-all" --data "$WORK/pool.jsonl" --format alpaca --prompt-template chat \
        --sequence-len 256 --threads "$THREADS" --scores "$WORK/scores.jsonl" --output "$WORK/sel-$name.jsonl" \
        --decisions "$WORK/sel-$name.decisions.jsonl" "$@" >>"$WORK/log.txt" 2>&1 || die "hone select $*"
    "$PYTHON" "$HELPER" catch "$WORK" "\`$*\`" "$WORK/sel-$name.decisions.jsonl"
}

echo
echo "| selector | kept | dropped | precision | misaligned | truncated | wrong | near duplicate | recall (all) |"
echo "|---|---|---|---|---|---|---|---|---|"
select_row threshold --max-ifd 1
# a threshold read off this pool's clean rows (their ifd stays below 0.09 with the full demo scorer): an upper bound
select_row threshold01 --max-ifd 0.1
select_row top --max-ifd 0 --top-fraction 0.8
select_row cherry --top-fraction 0.8
select_row deita --max-ifd 0 --top-fraction 0.8 --max-similarity 0.999
select_row dedup-words --max-ifd 0 --dedup near
select_row dedup-chars --max-ifd 0 --dedup near --minhash-chars true --dedup-threshold 0.7
select_row fl --top-fraction 0.9 --facility-location 0.8
select_row combined --max-ifd 1 --dedup near --minhash-chars true --dedup-threshold 0.7

[ "$SFT" = 1 ] || exit 0

# sft NAME LABEL DATA: the demo's base fine-tuned on DATA into WORK/sft-NAME, then greedy answers to the held-out
# prompts, exact match
sft_row() {
    out=$WORK/sft-$1
    "$HONE" sft --model "$DEMO/base" --datasets "$3" --format alpaca --output-dir "$out" --sequence-len 256 \
        --micro-batch-size 2 --num-epochs "$SFT_EPOCHS" --learning-rate 3e-3 --lr-scheduler cosine \
        --warmup-steps 10 --seed 42 --threads "$THREADS" >>"$WORK/log.txt" 2>&1 || die "hone sft on $3"
    : >"$out/answers.jsonl"
    "$PYTHON" "$HELPER" prompts "$WORK" | while IFS= read -r prompt; do
        # the x keeps the prompt's final newline, which $(...) would strip
        text=$("$PYTHON" -c 'import json, sys; print(json.loads(sys.argv[1]), end="x")' "$prompt")
        text=${text%x}
        "$HONE" generate --model "$out" --prompt "$text" --max-new-tokens 8 --json --threads "$THREADS" \
            >>"$out/answers.jsonl" 2>>"$WORK/log.txt" || die "hone generate"
    done
    echo "| $2 ($(grep -c . "$3") rows) | $("$PYTHON" "$HELPER" exact "$WORK" "$out/answers.jsonl") |"
}

kept=$(grep -c . "$WORK/sel-threshold.jsonl")
"$PYTHON" - "$WORK" <<'EOF'
import json, sys
w = sys.argv[1]
pool = open(w + "/pool.jsonl").readlines()
labels = [json.loads(l) for l in open(w + "/labels.jsonl")]
open(w + "/clean.jsonl", "w").writelines(p for p, l in zip(pool, labels) if l["defect"] == "clean")
keep = [json.loads(l) for l in open(w + "/sel-threshold.jsonl")]
open(w + "/kept-threshold.jsonl", "w").writelines(
    json.dumps({k: r[k] for k in ("instruction", "input", "output")}) + "\n" for r in keep)
EOF
echo
echo "| SFT data | reverse | sort | add | next | mean |"
echo "|---|---|---|---|---|---|"
sft_row threshold "kept by --max-ifd 1" "$WORK/kept-threshold.jsonl"
for s in $RANDOM_SEEDS; do
    "$PYTHON" "$HELPER" random "$WORK" "$kept" "$s" "$WORK/random-$s.jsonl"
    sft_row "random-$s" "random subset, seed $s" "$WORK/random-$s.jsonl"
done
sft_row pool "whole pool" "$WORK/pool.jsonl"
sft_row clean "clean rows only (oracle)" "$WORK/clean.jsonl"
