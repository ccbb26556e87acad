#!/bin/sh
# Every YAML file in examples/ is accepted by its command: keys exist and values have the right types. Paths in
# the examples are placeholders, so they are overridden with flags pointing at a tiny model built here.
set -eu
HONE=$1
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$HONE" demo --text-only --seconds 0 --max-steps 1 --output-dir "$W/m" --threads 1 >/dev/null
echo "examples/pretrain.yaml"
"$HONE" pretrain --config examples/pretrain.yaml --model "$W/m" --data "$W/m/train.bin" --output-dir "$W/out" \
    --max-steps 1 --sequence-len 32 --gradient-accumulation-steps 1 --threads 1 2>"$W/err" ||
    fail "pretrain rejected examples/pretrain.yaml: $(cat "$W/err")"
echo "examples/eval.yaml"
"$HONE" eval --config examples/eval.yaml --model "$W/m" --data "$W/m/train.bin" --sequence-len 32 --threads 1 \
    >/dev/null 2>"$W/err" || fail "eval rejected examples/eval.yaml: $(cat "$W/err")"
echo "examples/generate.yaml"
"$HONE" generate --config examples/generate.yaml --model "$W/m" --prompt-ids 116,104,101 --max-new-tokens 4 \
    --threads 1 >/dev/null 2>"$W/err" || fail "generate rejected examples/generate.yaml: $(cat "$W/err")"
echo "PASS: examples"
