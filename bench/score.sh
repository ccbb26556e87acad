#!/bin/sh
# IFD scoring throughput: `hone select --score-only` on alpaca-format data (the first N examples of
# ../shared/data/datasets/instruct/alpaca_cherry_3111.json, Cherry_LLM's Alpaca data) with a randomly initialised
# model of the smollm-135m shape (GPT-2's tokenizer, so vocab 50257), against
#   - PyTorch scoring the same token ids the way Cherry_LLM does (one example at a time, two forward passes), and
#   - hone's own training throughput on the same model and data (`hone sft`, full fine-tuning): issue 6 asks for
#     scoring at >= 3x the training tokens/s.
# Tokens are those run through the model: prompt + answer of the conditioned pass, start token + answer of the
# direct one. max_ifd_diff compares PyTorch's IFD with hone's for every example (fp32 both).
#
# Usage: sh bench/score.sh
# Environment: THREADS (default: nproc), N (examples, default 64), SEQ (sequence_len, default 1024),
#              MB (hone's micro_batch_size when scoring, default 4), TRAIN_SEQ (default 512), TRAIN_STEPS (default 3),
#              HONE (default build/hone), PYTHON (default /usr/bin/python3), DATA (default ../shared/data).

set -u
cd "$(dirname "$0")/.." || exit 1

THREADS=${THREADS:-$(nproc)}
N=${N:-64}
SEQ=${SEQ:-1024}
MB=${MB:-4}
TRAIN_SEQ=${TRAIN_SEQ:-512}
TRAIN_STEPS=${TRAIN_STEPS:-3}
HONE=${HONE:-build/hone}
PYTHON=${PYTHON:-/usr/bin/python3}
DATA=${DATA:-../shared/data}

if [ ! -x "$HONE" ]; then
    echo "score.sh: $HONE not found; build it first with 'make'" >&2
    exit 1
fi
if [ ! -d "$DATA" ]; then
    echo "score.sh: $DATA is absent (the Alpaca data and GPT-2's tokenizer live there)" >&2
    exit 1
fi
. bench/common.sh
bench_header
if [ -z "$torch_ver" ]; then
    echo "score.sh: the model is written by PyTorch; install python3-torch" >&2
    exit 1
fi
echo "run:     smollm-135m shape (vocab 50257), $N examples, sequence_len $SEQ, micro_batch_size $MB," \
    "threads $THREADS"
echo

W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
M=$W/model
"$PYTHON" bench/pytorch_score.py --make-model "$M" --preset smollm-135m --vocab-size 50257 || exit 1
cp "$DATA"/tokenizers/gpt2/tokenizer.json "$DATA"/tokenizers/gpt2/tokenizer_config.json "$M/"

# The first N examples, and their Alpaca prompts and answers as {"text"} lines for `hone tokenize`.
"$PYTHON" - "$DATA/datasets/instruct/alpaca_cherry_3111.json" "$N" "$W" <<'EOF' || exit 1
import json, sys
rows = json.load(open(sys.argv[1]))[: int(sys.argv[2])]
w = sys.argv[3]
json.dump(rows, open(w + "/data.json", "w"))
HEAD = "Below is an instruction that describes a task"
with open(w + "/prompts.jsonl", "w") as p, open(w + "/answers.jsonl", "w") as a:
    for r in rows:
        if r.get("input"):
            q = (HEAD + ", paired with an input that provides further context. Write a response that appropriately "
                 "completes the request.\n\n### Instruction:\n%s\n\n### Input:\n%s\n\n### Response:"
                 % (r["instruction"], r["input"]))
        else:
            q = (HEAD + ". Write a response that appropriately completes the request.\n\n### Instruction:\n%s\n\n"
                 "### Response:" % r["instruction"])
        p.write(json.dumps({"text": q}) + "\n")
        a.write(json.dumps({"text": r["output"]}) + "\n")
EOF
"$HONE" tokenize --tokenizer "$M" --input "$W/prompts.jsonl" --output "$W/prompt_ids.jsonl" \
    --add-special-tokens true >/dev/null 2>&1 &&
    "$HONE" tokenize --tokenizer "$M" --input "$W/answers.jsonl" --output "$W/answer_ids.jsonl" \
        --add-special-tokens false >/dev/null 2>&1 || {
    echo "score.sh: hone tokenize failed" >&2
    exit 1
}
paste -d '\t' "$W/prompt_ids.jsonl" "$W/answer_ids.jsonl" |
    sed 's/^{"ids": *\(\[[^]]*\]\)}\t{"ids": *\(\[[^]]*\]\)}$/{"prompt": \1, "answer": \2}/' >"$W/pairs.jsonl"

ticks0=$(cpu_ticks)
echo "  hone select --score-only ..." >&2
h=$("$HONE" select --model "$M" --data "$W/data.json" --score-only --output "$W/scores.jsonl" \
    --sequence-len "$SEQ" --micro-batch-size "$MB" --threads "$THREADS" --json 2>"$W/hone.log") || {
    cat "$W/hone.log" >&2
    exit 1
}
echo "  pytorch (one example at a time, as Cherry_LLM) ..." >&2
t=$("$PYTHON" bench/pytorch_score.py --model "$M" --pairs "$W/pairs.jsonl" --sequence-len "$SEQ" \
    --start-id 50256 --threads "$THREADS" --hone-scores "$W/scores.jsonl") || exit 1
echo "  hone sft (training throughput of the same model) ..." >&2
"$HONE" sft --model "$M" --datasets "$W/data.json" --output-dir "$W/sft" --sequence-len "$TRAIN_SEQ" \
    --micro-batch-size 1 --max-steps "$TRAIN_STEPS" --threads "$THREADS" --save-steps 0 >"$W/sft.log" 2>&1 || {
    cat "$W/sft.log" >&2
    exit 1
}
# median tokens/s of the steps after the first
train_tps=$(sed -n '2,$s/.*"tokens_per_second": *\([0-9.]*\).*/\1/p' "$W/sft/metrics.jsonl" | sort -n |
    awk '{ v[NR] = $1 } END { if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }')
steal=$(steal_since "$ticks0")

hone_tps=$(awk -v t="$(json_get "$h" tokens)" -v s="$(json_get "$h" seconds)" 'BEGIN { printf "%.0f", t / s }')
hone_eps=$(awk -v n="$N" -v s="$(json_get "$h" seconds)" 'BEGIN { printf "%.2f", n / s }')
torch_tps=$(json_get "$t" tokens_per_second)
torch_eps=$(json_get "$t" examples_per_second)
printf '%-34s %12s %12s\n' "" "tokens/s" "examples/s"
printf '%-34s %12s %12s\n' "hone select --score-only" "$hone_tps" "$hone_eps"
printf '%-34s %12.0f %12s\n' "pytorch, one example at a time" "$torch_tps" "$torch_eps"
printf '%-34s %12.0f %12s\n' "hone sft (training, T=$TRAIN_SEQ)" "$train_tps" "-"
echo
awk -v h="$hone_tps" -v t="$torch_tps" -v tr="$train_tps" 'BEGIN {
    printf "scoring: hone / pytorch = %.2fx; hone scoring / hone training = %.2fx (target >= 3x)\n", h / t, h / tr }'
echo "max |ifd_pytorch - ifd_hone| over the examples: $(json_get "$t" max_ifd_diff)"
echo "steal:   $steal of the CPU time during the runs"
