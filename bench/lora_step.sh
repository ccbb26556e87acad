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
#
# CHECKPOINT=bf16|f32 times the frozen base as adapter training really loads it instead: a random checkpoint of each
# Llama preset (default PRESETS smollm-135m) in that dtype, with a byte-level tokenizer and pre-tokenized rows, is
# written to a temporary folder, and `hone sft --adapter lora` runs on it once per BASE_DTYPES (default
# "fp32 bf16 auto") and per binary of HONE and HONE_BEFORE (optional: an older build to compare with), alternating.
# Columns: load s = the run's wall seconds outside its steps (loading, data, saving the adapter), ms/step (median of
# the timed steps), peak MB = the process's peak resident set (pages of a mapped checkpoint included: they are clean
# page cache, shared and dropped under memory pressure).

set -u
cd "$(dirname "$0")/.." || exit 1

THREADS=${THREADS:-$(nproc)}
STEPS=${STEPS:-10}
WARMUP=${WARMUP:-2}
CHECKPOINT=${CHECKPOINT:-}
if [ -n "$CHECKPOINT" ]; then PRESETS=${PRESETS:-smollm-135m}; else PRESETS=${PRESETS:-smollm-135m gpt2-124m}; fi
LORA_R=${LORA_R:-16}
LORA_ALPHA=${LORA_ALPHA:-8}
LORA_TARGETS=${LORA_TARGETS:-all-linear}
BASE_DTYPE=${BASE_DTYPE:-fp32}
BASE_DTYPES=${BASE_DTYPES:-fp32 bf16 auto}
HONE=${HONE:-build/hone}
HONE_BEFORE=${HONE_BEFORE:-}
PYTHON=${PYTHON:-/usr/bin/python3}
B=4
T=64

if [ ! -x "$HONE" ]; then
    echo "lora_step.sh: $HONE not found; build it first with 'make'" >&2
    exit 1
fi

. bench/common.sh
bench_header

# $1 folder, $2 preset: config.json, model.safetensors (N(0, 0.02) matrices, unit norm gains, in $CHECKPOINT),
# tokenizer.json (256 bytes and <|endoftext|>) and rows.jsonl ((WARMUP + STEPS) * B pre-tokenized rows of T tokens)
write_checkpoint() {
    "$PYTHON" - "$1" "$2" "$CHECKPOINT" $((B * (WARMUP + STEPS))) $T <<'PY'
import json, os, struct, sys
import numpy as np
out, preset, dtype, n_rows, T = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
shapes = {"smollm-135m": (49152, 576, 30, 9, 3, 1536), "smollm-360m": (49152, 960, 32, 15, 5, 2560)}
if preset not in shapes: sys.exit("lora_step.sh: CHECKPOINT supports the Llama presets " + ", ".join(shapes))
V, C, L, H, KV, I = shapes[preset]
hd = C // H
os.makedirs(out, exist_ok=True)
json.dump({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": V, "hidden_size": C,
           "num_hidden_layers": L, "num_attention_heads": H, "num_key_value_heads": KV, "intermediate_size": I,
           "max_position_embeddings": 2048, "tie_word_embeddings": True, "rms_norm_eps": 1e-5,
           "rope_theta": 10000.0, "hidden_act": "silu", "eos_token_id": 256,
           "torch_dtype": "bfloat16" if dtype == "bf16" else "float32"}, open(os.path.join(out, "config.json"), "w"))
shapes = [("model.embed_tokens.weight", (V, C)), ("model.norm.weight", (C,))]
for l in range(L):
    p = "model.layers.%d." % l
    shapes += [(p + "input_layernorm.weight", (C,)), (p + "post_attention_layernorm.weight", (C,)),
               (p + "self_attn.q_proj.weight", (H * hd, C)), (p + "self_attn.k_proj.weight", (KV * hd, C)),
               (p + "self_attn.v_proj.weight", (KV * hd, C)), (p + "self_attn.o_proj.weight", (C, H * hd)),
               (p + "mlp.gate_proj.weight", (I, C)), (p + "mlp.up_proj.weight", (I, C)),
               (p + "mlp.down_proj.weight", (C, I))]
rng = np.random.default_rng(1337)
header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
for name, shape in shapes:
    w = np.ones(shape, np.float32) if len(shape) == 1 else rng.standard_normal(shape, np.float32) * np.float32(0.02)
    if dtype == "bf16":  # round to nearest even
        u = w.view(np.uint32).astype(np.uint64)
        w = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    blob = w.tobytes()
    header[name] = {"dtype": "BF16" if dtype == "bf16" else "F32", "shape": list(shape),
                    "data_offsets": [offset, offset + len(blob)]}
    blobs.append(blob)
    offset += len(blob)
text = json.dumps(header).encode()
text += b" " * (-len(text) % 8)
with open(os.path.join(out, "model.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(text)) + text)
    for blob in blobs: f.write(blob)
printable = [b for b in range(256) if 33 <= b <= 126 or 161 <= b <= 172 or 174 <= b <= 255]
extra = iter(range(256, 512))
vocab = {chr(b if b in printable else next(extra)): b for b in range(256)}
vocab["<|endoftext|>"] = 256
json.dump({"version": "1.0", "added_tokens": [{"id": 256, "content": "<|endoftext|>", "single_word": False,
           "lstrip": False, "rstrip": False, "normalized": False, "special": True}], "normalizer": None,
           "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
           "post_processor": None, "model": {"type": "BPE", "vocab": vocab, "merges": []},
           "decoder": {"type": "ByteLevel"}}, open(os.path.join(out, "tokenizer.json"), "w"))
with open(os.path.join(out, "rows.jsonl"), "w") as f:
    for r in range(n_rows):
        ids = rng.integers(0, 256, T).tolist()
        f.write(json.dumps({"input_ids": ids, "labels": ids}) + "\n")
PY
}

# hone sft with a LoRA adapter on folder $2 with binary $1 and base_dtype $3: prints "load ms/step peak_MB"
sft_run() {
    rm -rf "$work/out"
    t0=$(date +%s.%N)
    # shellcheck disable=SC2086
    "$1" sft --model "$2" --datasets "$2/rows.jsonl" --output-dir "$work/out" --adapter lora --lora-r $LORA_R \
        --lora-alpha $LORA_ALPHA --lora-target-modules $LORA_TARGETS --base-dtype "$3" --micro-batch-size $B \
        --sequence-len $T --sample-packing false --shuffle false --max-steps $((WARMUP + STEPS)) \
        --learning-rate 1e-4 --threads "$THREADS" >/dev/null 2>"$work/stderr" || { echo "- - -"; return 1; }
    t1=$(date +%s.%N)
    # metrics.jsonl: elapsed_seconds and peak_memory_mb after each step; the steps after WARMUP are timed
    field() { sed -n "s/.*\"$1\": *\([0-9.e+-]*\).*/\1/p" "$work/out/metrics.jsonl"; }
    ms=$(field elapsed_seconds | awk -v warmup="$WARMUP" 'NR > warmup { print 1000 * ($1 - prev) } { prev = $1 }' |
        sort -n | awk '{ d[NR] = $1 } END { printf "%.0f", NR % 2 ? d[(NR + 1) / 2] : (d[NR / 2] + d[NR / 2 + 1]) / 2 }')
    load=$(field elapsed_seconds | tail -n 1 | awk -v t0="$t0" -v t1="$t1" '{ printf "%.2f", t1 - t0 - $1 }')
    echo "$load $ms $(field peak_memory_mb | tail -n 1)"
}

if [ -n "$CHECKPOINT" ]; then
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    echo "run:     B=$B T=$T threads=$THREADS steps=$STEPS warmup=$WARMUP; hone sft, LoRA r=$LORA_R" \
        "alpha=$LORA_ALPHA targets=$LORA_TARGETS on a random $CHECKPOINT checkpoint"
    echo
    printf '%-12s %-8s %-10s | %7s %9s %8s\n' preset binary base_dtype "load s" ms/step "peak MB"
    status=0
    for p in $PRESETS; do
        write_checkpoint "$work/$p" "$p" || exit 1
        for dt in $BASE_DTYPES; do
            for bin in "$HONE" $HONE_BEFORE; do
                label=after
                [ "$bin" = "$HONE" ] || label=before
                r=$(sft_run "$bin" "$work/$p" "$dt") || { status=1; sed 's/^/    /' "$work/stderr" >&2; }
                # shellcheck disable=SC2086 # three columns
                printf '%-12s %-8s %-10s | %7s %9s %8s\n' "$p" "$label" "$dt" $r
            done
        done
    done
    exit $status
fi
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
