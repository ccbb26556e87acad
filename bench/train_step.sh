#!/bin/sh
# One full fp32 training step (forward, cross-entropy, backward, clip 1.0, AdamW) on CPU:
# hone against PyTorch, same model shapes, same thread count, run alternately in the same session.
#
# Usage: sh bench/train_step.sh        (or: make bench)
# Environment: THREADS (default: nproc), STEPS (timed steps, default 10), WARMUP (default 2),
#              HONE (default build/hone), PYTHON (default /usr/bin/python3, Debian's python3-torch).
# Prints the machine, the date, the versions and a table; ratio = pytorch ms / hone ms (> 1: hone faster).

set -u
cd "$(dirname "$0")/.." || exit 1

THREADS=${THREADS:-$(nproc)}
STEPS=${STEPS:-10}
WARMUP=${WARMUP:-2}
HONE=${HONE:-build/hone}
PYTHON=${PYTHON:-/usr/bin/python3}
B=4
T=64
PRESETS="gpt2-124m smollm-135m"

if [ ! -x "$HONE" ]; then
    echo "train_step.sh: $HONE not found; build it first with 'make'" >&2
    exit 1
fi

. bench/common.sh
bench_header
echo "run:     B=$B T=$T threads=$THREADS steps=$STEPS warmup=$WARMUP (median ms per step)"
echo

rows=""
status=0
for p in $PRESETS; do
    echo "  $p: hone ..." >&2
    ticks0=$(cpu_ticks)
    h=$("$HONE" bench train --preset "$p" --micro-batch-size $B --sequence-len $T \
        --steps "$STEPS" --warmup "$WARMUP" --threads "$THREADS" --json)
    h_ms=$(json_get "$h" ms_per_step)
    if [ -z "$h_ms" ]; then
        echo "train_step.sh: hone failed on $p" >&2
        status=1
        h_ms=-
    fi
    mfu=$(json_get "$h" mfu)
    peak=$(json_get "$h" peak_gflops)
    t_ms=-
    if [ -n "$torch_ver" ]; then
        echo "  $p: pytorch ..." >&2
        t=$("$PYTHON" bench/pytorch_train_step.py --preset "$p" --micro-batch-size $B --sequence-len $T \
            --steps "$STEPS" --warmup "$WARMUP" --threads "$THREADS")
        t_ms=$(json_get "$t" ms_per_step)
        if [ -z "$t_ms" ]; then
            echo "train_step.sh: pytorch failed on $p" >&2
            status=1
            t_ms=-
        fi
    fi
    steal=$(steal_since "$ticks0")
    rows="$rows$p ${h_ms:--} $t_ms ${mfu:--} ${peak:--} $steal
"
done

printf '%s' "$rows" | awk '
    BEGIN {
        printf "%-12s %14s %17s %8s %9s %12s %6s\n", "preset", "hone ms/step", "pytorch ms/step", "ratio", "hone MFU", "sgemm GFLOPS", "steal"
    }
    {
        ratio = ($2 != "-" && $3 != "-" && $2 > 0) ? sprintf("%.2fx", $3 / $2) : "-"
        mfu = ($4 != "-") ? sprintf("%.1f%%", 100 * $4) : "-"
        printf "%-12s %14s %17s %8s %9s %12s %6s\n", $1, $2, $3, ratio, mfu, $5, $6
    }'
echo
echo "ratio = pytorch ms / hone ms (above 1: hone is faster); MFU = hone's model FLOPs / sgemm peak measured by hone;"
echo "steal = CPU time the hypervisor took from this machine during the row's runs (above a few %: figures disturbed)"
exit $status
