#!/bin/sh
# Full fine-tuning against LoRA, one fp32 training step on CPU (forward, cross-entropy, backward, clip 1.0, AdamW
# over the trained parameters): hone against PyTorch (PEFT's LoRA in plain torch), same model shapes, same thread
# count. For each preset the four runs alternate (hone full, pytorch full, hone LoRA, pytorch LoRA), each in its own
# process so that peak memory (the process's peak resident set after the timed steps) covers that run alone.
#
# Usage: sh bench/lora_step.sh
# Environment: THREADS (default: nproc), STEPS (timed steps, default 10), WARMUP (default 2),
#              PRESETS (default "smollm-135m gpt2-124m"), LORA_R (default 16), LORA_ALPHA (default 8),
#              LORA_TARGETS (default all-linear; e.g. q_proj,v_proj), BASE_DTYPE (default fp32; bf16 keeps hone's
#              frozen base in bf16 in the LoRA runs, PyTorch's stays fp32),
#              HONE (default build/hone), PYTHON (default /usr/bin/python3, Debian's python3-torch).
# Prints the machine, the date, the versions and a table; ratio = pytorch ms / hone ms (> 1: hone faster).

set -u
cd "$(dirname "$0")/.." || exit 1

THREADS=${THREADS:-$(nproc)}
STEPS=${STEPS:-10}
WARMUP=${WARMUP:-2}
PRESETS=${PRESETS:-smollm-135m gpt2-124m}
LORA_R=${LORA_R:-16}
LORA_ALPHA=${LORA_ALPHA:-8}
LORA_TARGETS=${LORA_TARGETS:-all-linear}
BASE_DTYPE=${BASE_DTYPE:-fp32}
HONE=${HONE:-build/hone}
PYTHON=${PYTHON:-/usr/bin/python3}
B=4
T=64

if [ ! -x "$HONE" ]; then
    echo "lora_step.sh: $HONE not found; build it first with 'make'" >&2
    exit 1
fi

. bench/common.sh
bench_header
echo "run:     B=$B T=$T threads=$THREADS steps=$STEPS warmup=$WARMUP (median ms per step);" \
    "LoRA r=$LORA_R alpha=$LORA_ALPHA targets=$LORA_TARGETS base_dtype=$BASE_DTYPE (hone)"
echo

rows=""
status=0
for p in $PRESETS; do
    for method in full lora; do
        lora_hone="" lora_torch=""
        if [ $method = lora ]; then
            lora_hone="--adapter lora --lora-r $LORA_R --lora-alpha $LORA_ALPHA --lora-target-modules $LORA_TARGETS"
            lora_hone="$lora_hone --base-dtype $BASE_DTYPE"
            lora_torch="--lora-r $LORA_R --lora-alpha $LORA_ALPHA --lora-target-modules $LORA_TARGETS"
        fi
        ticks0=$(cpu_ticks)
        echo "  $p $method: hone ..." >&2
        # shellcheck disable=SC2086 # the LoRA options are meant to split into words
        h=$("$HONE" bench train --preset "$p" --micro-batch-size $B --sequence-len $T --steps "$STEPS" \
            --warmup "$WARMUP" --threads "$THREADS" $lora_hone --json)
        if [ -z "$(json_get "$h" ms_per_step)" ]; then
            echo "lora_step.sh: hone failed on $p $method" >&2
            status=1
        fi
        t=""
        if [ -n "$torch_ver" ]; then
            echo "  $p $method: pytorch ..." >&2
            # shellcheck disable=SC2086
            t=$("$PYTHON" bench/pytorch_train_step.py --preset "$p" --micro-batch-size $B --sequence-len $T \
                --steps "$STEPS" --warmup "$WARMUP" --threads "$THREADS" $lora_torch)
            if [ -z "$(json_get "$t" ms_per_step)" ]; then
                echo "lora_step.sh: pytorch failed on $p $method" >&2
                status=1
            fi
        fi
        row="$p $method"
        for run in "$h" "$t"; do
            for key in trainable_params tokens_per_second ms_per_step peak_memory_mb; do
                v=$(json_get "$run" $key)
                row="$row ${v:--}"
            done
        done
        rows="$rows$row $(steal_since "$ticks0")
"
    done
done

# columns: preset method, hone: trainable tok/s ms MB, pytorch: trainable tok/s ms MB, steal
printf '%s' "$rows" | awk '
    function ratio(a, b) { return (a != "-" && b != "-" && a > 0) ? sprintf("%.2fx", b / a) : "-" }
    BEGIN {
        printf "%-12s %-6s %12s | %10s %9s %8s | %11s %9s %8s | %7s %7s | %6s\n", "preset", "method", "trainable",
            "hone tok/s", "ms/step", "peak MB", "torch tok/s", "ms/step", "peak MB", "speed", "memory", "steal"
    }
    {
        printf "%-12s %-6s %12s | %10s %9s %8s | %11s %9s %8s | %7s %7s | %6s\n", $1, $2, $3, $4, $5, $6, $8, $9,
            $10, ratio($5, $9), ratio($6, $10), $11
        if ($3 != "-" && $7 != "-" && $3 != $7) mismatch = mismatch " " $1 "/" $2 " (hone " $3 ", pytorch " $7 ")"
    }
    END { if (mismatch != "") print "WARNING: trainable parameter counts differ:" mismatch }'
echo
echo "trainable = parameters the optimizer updates; peak MB = the process's peak resident memory after the timed steps"
echo "(PyTorch's includes the interpreter and libtorch, a few hundred MB); speed = pytorch ms / hone ms and"
echo "memory = pytorch MB / hone MB (above 1: hone faster / smaller); steal = CPU time the hypervisor took during the"
echo "row's runs (above a few %: figures disturbed)"
exit $status
