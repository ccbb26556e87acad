#!/bin/sh
# Tokenizer encode speed on War and Peace, with 1 thread and with all threads: `hone tokenize` on one {"text"}
# JSONL line per paragraph (MB/s = UTF-8 text bytes / wall seconds of the whole command: tokenizer loading, JSON
# parsing and writing the ids included), and the encoder alone (`hone bench tokenize`, same paragraphs).
# Nothing else is run for comparison: Hugging Face `tokenizers` is not installable on the reference machine.
#
# Usage: sh bench/tokenize.sh
# Environment: HONE (default build/hone), CORPUS (default ../shared/data/corpora/war-and-peace.txt),
#              TOKENIZERS (default ../shared/data/tokenizers), THREADS (default nproc), REPEAT (default 3:
#              the best of that many runs is reported).

set -u
cd "$(dirname "$0")/.." || exit 1

HONE=${HONE:-build/hone}
CORPUS=${CORPUS:-../shared/data/corpora/war-and-peace.txt}
TOKENIZERS=${TOKENIZERS:-../shared/data/tokenizers}
THREADS=${THREADS:-$(nproc)}
REPEAT=${REPEAT:-3}

if [ ! -x "$HONE" ]; then
    echo "tokenize.sh: $HONE not found; build it first with 'make'" >&2
    exit 1
fi
if [ ! -r "$CORPUS" ]; then
    echo "tokenize.sh: cannot read $CORPUS" >&2
    exit 1
fi

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM

# One line per paragraph (blank-line separated, newlines kept), JSON-escaped by Python's json module.
/usr/bin/python3 - "$CORPUS" "$tmp/in.jsonl" <<'PY' || exit 1
import json, re, sys
text = open(sys.argv[1], encoding="utf-8").read()
with open(sys.argv[2], "w", encoding="utf-8") as out:
    for para in re.split(r"(?<=\n)\n+", text):
        if para.strip():
            out.write(json.dumps({"text": para}, ensure_ascii=False) + "\n")
PY
bytes=$(/usr/bin/python3 -c 'import json,sys; print(sum(len(json.loads(l)["text"].encode()) for l in open(sys.argv[1], encoding="utf-8")))' "$tmp/in.jsonl")

now() { date +%s.%N; }

# best-of-REPEAT MB/s of one tokenizer at one thread count
run() {
    best=
    i=0
    while [ "$i" -lt "$REPEAT" ]; do
        t0=$(now)
        "$HONE" tokenize --tokenizer "$1" --input "$tmp/in.jsonl" --output "$tmp/out.jsonl" \
            --add-special-tokens false --threads "$2" >/dev/null 2>&1 || return 1
        t1=$(now)
        mbs=$(awk -v b="$bytes" -v a="$t0" -v c="$t1" 'BEGIN { printf "%.1f", b / (c - a) / 1e6 }')
        best=$(awk -v x="$mbs" -v y="${best:-0}" 'BEGIN { print (x > y ? x : y) }')
        i=$((i + 1))
    done
    echo "$best"
}

cpu=$(sed -n 's/^model name[[:space:]]*: *//p' /proc/cpuinfo 2>/dev/null | head -n 1)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ "$commit" != unknown ] && ! git diff --quiet HEAD -- 2>/dev/null; then commit="$commit-dirty"; fi
echo "machine: ${cpu:-unknown CPU}, $(nproc) cores"
echo "date:    $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "load:    $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null) (1/5/15 min)"
echo "hone:    $commit"
echo "corpus:  $CORPUS ($bytes bytes, $(wc -l <"$tmp/in.jsonl") paragraphs), best of $REPEAT runs"
echo "compare: none (Hugging Face tokenizers is not installable here)"
echo
# encoder alone (`hone bench tokenize`: no loading, no JSON): the first pass (cold word caches) / the best pass
encoder() {
    "$HONE" bench tokenize --tokenizer "$1" --data "$CORPUS" --threads "$2" --repeat "$REPEAT" --json 2>/dev/null |
        /usr/bin/python3 -c 'import json,sys; r=json.load(sys.stdin); print("%.1f / %.1f" % (r["first_mb_per_second"], r["mb_per_second"]))'
}

echo "MB/s of the whole command (hone tokenize, JSONL in and out, tokenizer loading included), and of the encoder"
echo "alone (hone bench tokenize: first pass with cold word caches / best pass)"
printf '%-10s %10s %10s %20s %20s\n' tokenizer "cmd 1 thr" "cmd $THREADS thr" "encoder 1 thread" "encoder $THREADS threads"
for name in gpt2 llama2; do
    one=$(run "$TOKENIZERS/$name" 1) || exit 1
    all=$(run "$TOKENIZERS/$name" "$THREADS") || exit 1
    enc1=$(encoder "$TOKENIZERS/$name" 1) || exit 1
    encn=$(encoder "$TOKENIZERS/$name" "$THREADS") || exit 1
    printf '%-10s %10s %10s %20s %20s\n' "$name" "$one" "$all" "$enc1" "$encn"
done
