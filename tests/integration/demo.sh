#!/bin/sh
# hone demo --quick: every stage runs (base pretrained, scored, fine-tuned, specialists fine-tuned from the full
# SFT and merged over it), the accuracy table is printed, instruction tuning beats the base model, a second run
# reuses the base and gives the same table, and the output folder holds the models, the mergekit configs (over the
# full SFT, which hone merge runs to the same weights) and report.html.
#
#   sh tests/integration/demo.sh build/hone     (from the repository root)
set -eu
. "$(dirname "$0")/lib/common.sh"
setup "$@"

# mean_of LABEL < TABLE: the mean accuracy (last column, percent) of the table row that starts with LABEL.
mean_of() {
    grep -F "| $1" | head -n 1 | awk -F'|' '{ v = $(NF - 1); gsub(/[ %]/, "", v); print v }'
}

check "first run: the base model is pretrained, then every stage runs and the table is printed"
run_ok "demo" "$HONE" demo --quick --output-dir "$W/d" --threads 1
cp "$W/stdout" "$W/run1"
grep -q "base model: pretraining it into $W/d/base" "$W/run1" || fail "the first run did not pretrain the base"
for row in "base model (before)" "full SFT, all tasks" "LoRA r=16, all tasks" "specialist: SFT + sort" \
    "specialist: SFT + add" "merge over SFT: task arithmetic 0.7" "merge over SFT: TIES, density 0.5"; do
    grep -q -F "| $row" "$W/run1" || fail "the table has no row '$row': $(cat "$W/run1")"
done
grep -q "^| model *| *reverse *| *sort *| *add *| *next *| *mean *|$" "$W/run1" || fail "the table has no task header"
grep -q -F 'SFT = "full SFT, all tasks" (folder sft-all)' "$W/run1" || fail "the table does not say what SFT is"
for m in sft-sort sft-add; do
    grep -q -F "from $W/d/sft-all -> $W/d/$m" "$W/run1" || fail "the specialist $m did not start from the full SFT"
done
echo "   ok: $(grep -c -F '| ' "$W/run1") table lines"

check "instruction tuning beats the base model (mean exact match over the held-out prompts)"
before=$(mean_of "base model (before)" <"$W/run1")
after=$(mean_of "full SFT, all tasks" <"$W/run1")
[ -n "$before" ] && [ -n "$after" ] || fail "cannot read the mean accuracies from the table"
num_cmp "$after" ">" "$before" || fail "after SFT $after% is not above the base's $before%"
echo "   ok: $before% -> $after%"

check "the output folder: a Hugging Face base folder with hone's tokenizer, fine-tunes, merge configs and merges"
for f in base/config.json base/model.safetensors base/tokenizer.json base/tokenizer_config.json \
    sft-all/model.safetensors lora-all/adapter_model.safetensors lora-all/adapter_config.json \
    sft-sort/model.safetensors sft-add/model.safetensors \
    merge-ties.yaml merge-ties/config.json merge-ties/tokenizer.json merge-task-arithmetic.yaml \
    merge-task-arithmetic/model.safetensors report.html; do
    [ -s "$W/d/$f" ] || fail "demo did not write $W/d/$f"
done
grep -q "^merge_method: ties" "$W/d/merge-ties.yaml" || fail "merge-ties.yaml is not a TIES config"
grep -q "density:" "$W/d/merge-ties.yaml" || fail "merge-ties.yaml has no density"
for f in merge-ties.yaml merge-task-arithmetic.yaml; do
    grep -q "^base_model: $W/d/sft-all$" "$W/d/$f" || fail "$f is not taken over the full SFT: $(cat "$W/d/$f")"
    for m in sft-sort sft-add; do
        grep -q "^  - model: $W/d/$m$" "$W/d/$f" || fail "$f does not merge $m: $(cat "$W/d/$f")"
    done
done
grep -q "merges add their task vectors" "$W/d/report.html" || fail "report.html does not say what the merges are over"
grep -q "<svg" "$W/d/report.html" || fail "report.html has no chart"
grep -q "full SFT, all tasks" "$W/d/report.html" || fail "report.html has no accuracy table"
echo "   ok"

check "the written merge config runs unchanged with hone merge and gives the demo's merged weights"
run_ok "hone merge" "$HONE" merge "$W/d/merge-ties.yaml" --output-dir "$W/again" --threads 1
cmp -s "$W/again/model.safetensors" "$W/d/merge-ties/model.safetensors" ||
    fail "hone merge of merge-ties.yaml differs from the demo's merge"
echo "   ok"

check "second run: the base is reused, and the table is the same (deterministic for a seed and thread count)"
run_ok "demo again" "$HONE" demo --quick --output-dir "$W/d" --threads 1
grep -q "base model: reusing $W/d/base" "$W/stdout" || fail "the second run did not reuse the base: $(cat "$W/stdout")"
grep -F "| " "$W/run1" >"$W/table1"
grep -F "| " "$W/stdout" >"$W/table2"
cmp -s "$W/table1" "$W/table2" || fail "the tables differ: $(diff "$W/table1" "$W/table2")"
echo "   ok"

echo "PASS: demo"
