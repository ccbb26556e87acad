#!/bin/sh
# Merge throughput: hone merge (linear and TIES) of two smollm-135m-shaped checkpoints against plain copies of the
# same number of bytes on the same disk. Every command ends with the data on disk (hone fsyncs every file it writes;
# the copies are followed by `sync FILE`), and all read inputs the page cache already holds (the checkpoints were
# just written), so the figures compare write paths and arithmetic, not cold reads. Two copies: `cp` (coreutils 9
# copies with copy_file_range, inside the kernel; no reflinks on ext4) and `cat A > B` (the bytes pass through user
# space, as hone's output does).
#
# Usage: sh bench/merge.sh          (from anywhere; needs build/hone and Debian's python3-numpy)
# Environment: HONE (default build/hone), BASELINE (another hone binary, e.g. one built before a change: timed in the
#              same runs, interleaved), THREADS (default nproc), DTYPE (bf16 | f32, default bf16: the checkpoints'
#              and the output's dtype), WORK (a folder on the disk to measure, default $TMPDIR or /tmp), PYTHON
#              (default /usr/bin/python3), RUNS (default 5).
# Each run times every command once, in turn, so that load from other jobs hits all alike; the table gives the
# median of RUNS. MB/s = output bytes / wall seconds of the whole command; CPU s = user + system seconds of the
# command (from /usr/bin/time; what a busy machine must find). OpenMP threads wait passively (OMP_WAIT_POLICY,
# default passive here) so that a busy machine does not turn their spinning into lost time.

set -u
cd "$(dirname "$0")/.." || exit 1
HONE=${HONE:-build/hone}
THREADS=${THREADS:-$(nproc)}
DTYPE=${DTYPE:-bf16}
PYTHON=${PYTHON:-/usr/bin/python3}
RUNS=${RUNS:-5}
BASELINE=${BASELINE:-}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
[ -x "$HONE" ] || { echo "merge.sh: $HONE not found; build it first with 'make'" >&2; exit 1; }
[ -z "$BASELINE" ] || [ -x "$BASELINE" ] || { echo "merge.sh: BASELINE $BASELINE is not an executable" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "merge.sh: /usr/bin/time not found (apt-get install time)" >&2; exit 1; }
"$PYTHON" -c 'import numpy' 2>/dev/null ||
    { echo "merge.sh: $PYTHON lacks numpy (apt-get install python3-numpy)" >&2; exit 1; }
W=$(mktemp -d "${WORK:-${TMPDIR:-/tmp}}/hone-bench-merge.XXXXXX") || exit 1
trap 'rm -rf "$W"' EXIT

# Two random checkpoints of smollm-135m's shapes (Llama layout, tied embeddings), the second a perturbed copy of
# the first, so that TIES has deltas to prune.
"$PYTHON" - "$W" "$DTYPE" <<'EOF' || exit 1
import json, os, struct, sys
import numpy as np
out, dtype = sys.argv[1], sys.argv[2]
V, C, L, NH, NKV, I = 49152, 576, 30, 9, 3, 1536
HD = C // NH
shapes = {"model.embed_tokens.weight": (V, C), "model.norm.weight": (C,)}
for i in range(L):
    p = "model.layers.%d." % i
    shapes.update({p + "input_layernorm.weight": (C,), p + "post_attention_layernorm.weight": (C,),
                   p + "self_attn.q_proj.weight": (NH * HD, C), p + "self_attn.k_proj.weight": (NKV * HD, C),
                   p + "self_attn.v_proj.weight": (NKV * HD, C), p + "self_attn.o_proj.weight": (C, NH * HD),
                   p + "mlp.gate_proj.weight": (I, C), p + "mlp.up_proj.weight": (I, C),
                   p + "mlp.down_proj.weight": (C, I)})
config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": C, "intermediate_size": I,
          "num_hidden_layers": L, "num_attention_heads": NH, "num_key_value_heads": NKV, "vocab_size": V,
          "max_position_embeddings": 2048, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": True,
          "hidden_act": "silu", "torch_dtype": "bfloat16" if dtype == "bf16" else "float32"}
rng = np.random.default_rng(0)
base = {n: (rng.standard_normal(s, dtype=np.float32) * 0.02) for n, s in shapes.items()}
for name, scale in [("a", 0.0), ("b", 0.002)]:
    d = os.path.join(out, name)
    os.makedirs(d)
    json.dump(config, open(os.path.join(d, "config.json"), "w"), indent=2)
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for n in sorted(shapes):
        x = base[n] + (rng.standard_normal(shapes[n], dtype=np.float32) * scale if scale else 0)
        if dtype == "bf16":  # round to nearest even, keep the top 16 bits
            u = x.astype(np.float32).view(np.uint32)
            b = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16).tobytes()
        else:
            b = x.astype(np.float32).tobytes()
        header[n] = {"dtype": "BF16" if dtype == "bf16" else "F32", "shape": list(shapes[n]),
                     "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(os.path.join(d, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for b in blobs:
            f.write(b)
EOF

out_dtype=$([ "$DTYPE" = bf16 ] && echo bfloat16 || echo float32)
cat >"$W/linear.yaml" <<EOF
merge_method: linear
models:
  - model: $W/a
    parameters: {weight: 0.5}
  - model: $W/b
    parameters: {weight: 0.5}
out_dtype: $out_dtype
EOF
cat >"$W/ties.yaml" <<EOF
merge_method: ties
base_model: $W/a
models:
  - model: $W/b
    parameters: {weight: 1.0, density: 0.5}
out_dtype: $out_dtype
EOF

bytes=$(wc -c <"$W/a/model.safetensors" | tr -d ' ')
# the commands, run by /usr/bin/time (so no shell functions)
copy_cp='cp "$0" "$1" && sync "$1"'
copy_cat='cat "$0" >"$1" && sync "$1"'
# one timed run of a command (the outputs are removed first): appends "wall cpu" to $W/times.NAME
timed() {
    _name=$1
    shift
    rm -rf "$W/out" "$W/copy.safetensors"
    /usr/bin/time -f '%e %U %S' -o "$W/time" "$@" >/dev/null 2>"$W/stderr" || { cat "$W/stderr" >&2; exit 1; }
    awk '{ print $1, $2 + $3 }' "$W/time" >>"$W/times.$_name"
}
# median of column $2 of $W/times.$1
median() {
    sort -g -k "$2" "$W/times.$1" |
        awk -v c="$2" '{ v[NR] = $c } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

load0=$(cut -d ' ' -f 1-3 /proc/loadavg 2>/dev/null)
for _i in $(seq "$RUNS"); do
    timed cp sh -c "$copy_cp" "$W/a/model.safetensors" "$W/copy.safetensors"
    timed cat sh -c "$copy_cat" "$W/a/model.safetensors" "$W/copy.safetensors"
    for _method in linear ties; do
        _order="hone base"
        [ $((_i % 2)) = 1 ] || _order="base hone" # which of the two goes first alternates: order effects cancel
        for _who in $_order; do
            if [ "$_who" = hone ]; then
                timed "$_method" "$HONE" merge "$W/$_method.yaml" --output-dir "$W/out" --threads "$THREADS"
            elif [ -n "$BASELINE" ]; then
                timed "base_$_method" "$BASELINE" merge "$W/$_method.yaml" --output-dir "$W/out" --threads "$THREADS"
            fi
        done
    done
done
load1=$(cut -d ' ' -f 1-3 /proc/loadavg 2>/dev/null)

cpu=$(sed -n 's/^model name[[:space:]]*: *//p' /proc/cpuinfo 2>/dev/null | head -n 1)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
echo "machine: ${cpu:-unknown CPU}, $(nproc) cores, $THREADS threads"
echo "disk:    $(df -T "$W" | awk 'NR == 2 { print $1 " (" $2 ")" }')"
echo "date:    $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "load:    ${load0:-?} before, ${load1:-?} after (1, 5, 15 min averages)"
echo "hone:    $commit ($HONE)${BASELINE:+, baseline $BASELINE}"
echo "input:   two smollm-135m-shaped checkpoints, $DTYPE, $(echo "$bytes / 1000000" | bc) MB each; median of $RUNS"
echo
t_cp=$(median cp 1)
printf '| %-30s | %8s | %8s | %8s | %8s |\n' "operation" "seconds" "MB/s" "vs cp" "CPU s"
printf '|%s|%s|%s|%s|%s|\n' "--------------------------------" "----------" "----------" "----------" "----------"
row() {
    _t=$(median "$2" 1)
    printf '| %-30s | %8.2f | %8.0f | %7.0f%% | %8.2f |\n' "$1" "$_t" "$(echo "$bytes / 1000000 / $_t" | bc -l)" \
        "$(echo "100 * $t_cp / $_t" | bc -l)" "$(median "$2" 2)"
}
row "cp + sync (same bytes)" cp
row "cat > file + sync" cat
row "hone merge linear" linear
row "hone merge ties (density 0.5)" ties
[ -z "$BASELINE" ] || row "baseline merge linear" base_linear
[ -z "$BASELINE" ] || row "baseline merge ties" base_ties
