#!/bin/sh
# Issue 6 item 6, reproduction at the demo's scale: a synthetic instruction pool (hone's built-in task suite, written
# by `hone demo --write-suite`, as alpaca rows) with injected defects — misaligned pairs (another task's answer),
# truncated answers (last character cut), wrong answers (perturbed), near duplicates (a clean row with one word of its
# instruction changed) — whose labels are kept aside. A small model that knows the tasks (the full fine-tune of
# `hone demo`, DEMO/sft-all) scores the pool with `hone select --score-only`; then each selector runs on those scores
# and the script prints its precision and recall on the defects (a defect is caught when the selector drops it).
# With SFT=1 it also fine-tunes the demo's base with `hone sft` (the demo's sft-all recipe: SFT_STEPS steps of 2
# packed rows) on the subset kept by the IFD threshold, on random subsets of the same size, on the whole pool and on
# the clean rows only, and scores each by exact match on the suite's held-out prompts (`hone eval --tasks`).
#
# Usage: sh bench/select_defects.sh
# Environment: HONE (default build/hone), PYTHON (default /usr/bin/python3), WORK (default /tmp/hone-select-defects),
#              DEMO (a `hone demo` output folder; default WORK/demo, made with `hone demo` when missing; QUICK=1 makes
#              it with --quick), SEED (suite and pool, default 1), N_CLEAN (clean rows per task, default 500),
#              N_DEFECT (rows of each defect type, default 125: 20 % of the pool), N_TEST (held-out prompts per task,
#              default 100), SFT (1: also the fine-tunes, default 0), SFT_STEPS (default 1600), RANDOM_SEEDS (random
#              subsets, default "1 2 3"), SFT_SEEDS (training seeds: each subset is fine-tuned once per seed, default
#              42), JOBS (fine-tunes run side by side, default 2), THREADS (each, default 1). A fine-tune whose
#              WORK/sft-NAME-sSEED/exact.json exists is not run again.

set -u
cd "$(dirname "$0")/.." || exit 1

HONE=${HONE:-build/hone}
PYTHON=${PYTHON:-/usr/bin/python3}
WORK=${WORK:-/tmp/hone-select-defects}
DEMO=${DEMO:-$WORK/demo}
SEED=${SEED:-1}
SFT=${SFT:-0}
SFT_STEPS=${SFT_STEPS:-1600}
SFT_SEEDS=${SFT_SEEDS:-42}
N_CLEAN=${N_CLEAN:-500}
N_DEFECT=${N_DEFECT:-125}
N_TEST=${N_TEST:-100}
JOBS=${JOBS:-2}
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
# the suite: N_CLEAN clean rows per task, then spare rows the defects are made from (3 types per task, some answers
# too short to truncate), and N_TEST held-out prompts per task that no training row poses in any phrasing
"$HONE" demo --write-suite "$WORK/suite" --seed "$SEED" --suite-train $((N_CLEAN + N_DEFECT)) \
    --suite-test "$N_TEST" >>"$WORK/log.txt" 2>&1 || die "hone demo --write-suite"
"$PYTHON" "$HELPER" make "$WORK" "$N_CLEAN" "$N_DEFECT" "$SEED" || exit 1

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
# a lower threshold, read off the clean rows of a 320-row pool scored by the same model (all below 0.09 there)
select_row threshold01 --max-ifd 0.1
select_row top --max-ifd 0 --top-fraction 0.8
select_row cherry --top-fraction 0.8
select_row deita --max-ifd 0 --top-fraction 0.8 --max-similarity 0.999
select_row dedup-words --max-ifd 0 --dedup near
select_row dedup-chars --max-ifd 0 --dedup near --minhash-chars true --dedup-threshold 0.7
select_row fl --top-fraction 0.9 --facility-location 0.8
select_row combined --max-ifd 1 --dedup near --minhash-chars true --dedup-threshold 0.7

[ "$SFT" = 1 ] || exit 0

# sft NAME LABEL DATA SEED: the demo's base fine-tuned on DATA into WORK/sft-NAME-sSEED as the demo trains sft-all
# (training seed SEED), then exact match on the held-out prompts (greedy, 8 new tokens as the demo); the table row
# goes to row.md there
sft_row() {
    out=$WORK/sft-$1-s$4
    if [ ! -f "$out/exact.json" ]; then
        "$HONE" sft --model "$DEMO/base" --datasets "$3" --format alpaca --output-dir "$out" --sequence-len 256 \
            --micro-batch-size 2 --max-steps "$SFT_STEPS" --learning-rate 3e-3 --lr-scheduler cosine \
            --warmup-steps 10 --seed "$4" --threads "$THREADS" >"$out.log" 2>&1 || die "hone sft on $3 (see $out.log)"
        "$HONE" eval --model "$out" --tasks "$WORK/suite/test.jsonl" --max-new-tokens 8 --json --threads "$THREADS" \
            >"$out/exact.json.tmp" 2>>"$out.log" && mv "$out/exact.json.tmp" "$out/exact.json" ||
            die "hone eval --tasks on $out"
    fi
    "$PYTHON" - "$2 ($(grep -c . "$3") rows) | $4" "$out/exact.json" >"$out/row.md" <<'EOF'
import json, sys
r = json.load(open(sys.argv[2]))
print("| %s | %s | %.1f%% |" % (sys.argv[1], " | ".join("%.0f%%" % (100 * r["tasks"][t]["exact_match"])
      for t in ["reverse", "sort", "add", "next"]), 100 * r["exact_match"]))
EOF
}

kept=$(grep -c . "$WORK/sel-threshold.jsonl")
"$PYTHON" "$HELPER" subset "$WORK" clean "$WORK/clean.jsonl"
set -- threshold "kept by --max-ifd 1" "$WORK/sel-threshold.jsonl"
for s in $RANDOM_SEEDS; do
    "$PYTHON" "$HELPER" random "$WORK" "$kept" "$s" "$WORK/random-$s.jsonl"
    set -- "$@" "random-$s" "random subset, seed $s" "$WORK/random-$s.jsonl"
done
set -- "$@" pool "whole pool" "$WORK/pool.jsonl" clean "clean rows only (oracle)" "$WORK/clean.jsonl"
# every subset with every training seed, JOBS fine-tunes at a time, each on THREADS threads
runs=
while [ $# -gt 0 ]; do
    for seed in $SFT_SEEDS; do
        runs="$runs$1|$2|$3|$seed
"
    done
    shift 3
done
# the fine-tunes not done yet, JOBS at a time (a round each)
printf '%s' "$runs" | while IFS='|' read -r name label data seed; do
    [ -f "$WORK/sft-$name-s$seed/exact.json" ] || echo "$name|$label|$data|$seed"
done >"$WORK/todo"
round=0
while [ "$((round * JOBS))" -lt "$(wc -l <"$WORK/todo")" ]; do
    awk -v jobs="$JOBS" -v r="$round" 'int((NR - 1) / jobs) == r' "$WORK/todo" >"$WORK/round"
    while IFS='|' read -r name label data seed; do
        sft_row "$name" "$label" "$data" "$seed" &
    done <"$WORK/round"
    wait
    round=$((round + 1))
done
echo
echo "| SFT data | training seed | reverse | sort | add | next | all |"
echo "|---|---|---|---|---|---|---|"
printf '%s' "$runs" | while IFS='|' read -r name label data seed; do
    [ -f "$WORK/sft-$name-s$seed/exact.json" ] || die "the fine-tune $name, seed $seed"
    sft_row "$name" "$label" "$data" "$seed"
    cat "$WORK/sft-$name-s$seed/row.md"
done
