#!/bin/sh
# The reproduction of issue 6 item 6 in miniature, on the quick demo's fine-tune (one run shared by both parts):
# 1. hone select --max-ifd T on a pool of the demo's own training rows with misaligned rows injected (answers of
#    another task): every row has a decision, the kept rows are the output, and what is dropped is exactly the rows
#    scored at or above T (T chosen from a --score-only run so that 8 rows are). Whether the misaligned rows are
#    the ones scored highest is printed, not checked: with a model this small it depends on the run (after the
#    end-of-text token that starts IFD's direct pass, any answer can be very unlikely), and a change to training's
#    last bits once turned a wide margin into none. IFD's detection of defects is measured at scale instead, by
#    bench/select_defects.sh (docs/RESULTS.md).
# 2. hone eval --tasks: exact match of greedy answers from a prompt/answer file: the demo's held-out prompts
#    (hone demo --write-suite) give the demo's own accuracy row; answers computed by hand from hone generate's
#    output are counted right or wrong as they should be; bad files are errors naming the file and line.
#
#   sh tests/integration/select_defects.sh build/hone     (from the repository root)
set -eu
. "$(dirname "$0")/lib/common.sh"
setup "$@"

check "setup: hone demo --quick (a base and its fine-tune sft-all on the four tasks) and its task suite as JSONL"
run_ok "demo" "$HONE" demo --quick --output-dir "$W/d" --threads 1
cp "$W/stdout" "$W/demo.txt"
M=$W/d/sft-all
# the quick demo's seed and sizes: the very rows sft-all was trained on, and its held-out prompts
run_ok "write suite" "$HONE" demo --quick --write-suite "$W/s" --threads 1
[ "$(grep -c . "$W/s/train.jsonl")" = 1200 ] && [ "$(grep -c . "$W/s/test.jsonl")" = 100 ] ||
    fail "--write-suite --quick wrote $(grep -c . "$W/s/train.jsonl") training and $(grep -c . "$W/s/test.jsonl") held-out rows, expected 300 and 25 per task"
grep -q '^{"instruction": "[^"]*", "input": "", "output": "[^"]*", "task": "\(reverse\|sort\|add\|next\)"}$' \
    "$W/s/train.jsonl" || fail "unexpected row format: $(head -n 1 "$W/s/train.jsonl")"

# The rows are {"instruction": I, "input": "", "output": O, "task": T}: split on quotes, O is field 12, T field 16.
check "the pool: the first 32 sort and next rows; every 4th (indices 3, 7, ..., 31) answered with a reversed word"
awk -F'"' -v OFS='"' -v mis="$W/misaligned.txt" '
    $16 == "reverse" { word[++m] = $12 }
    $16 == "sort" || $16 == "next" { row[++n] = $0 }
    END {
        for (i = 1; i <= 32; i++) {
            $0 = row[i]
            if (i % 4 == 0) { $12 = word[i]; print i - 1 >mis }
            print
        }
    }' "$W/s/train.jsonl" >"$W/pool.jsonl"
[ "$(wc -l <"$W/pool.jsonl" | tr -d ' ')" = 32 ] && [ "$(wc -l <"$W/misaligned.txt" | tr -d ' ')" = 8 ] ||
    fail "the pool was not built: $(wc -l <"$W/pool.jsonl") rows"
sed -n 4p "$W/pool.jsonl" | grep -q '"output": "[a-z][a-z][a-z]", "task": "\(sort\|next\)"' ||
    fail "row 3 is not misaligned: $(sed -n 4p "$W/pool.jsonl")"

check "hone select --max-ifd T: every row accounted for, the drops exactly the rows scored at or above T, each with its reason"
run_ok "score" "$HONE" select --model "$M" --data "$W/pool.jsonl" --format alpaca --prompt-template chat \
    --score-only --threads 1 --output "$W/scores.jsonl"
[ "$(wc -l <"$W/scores.jsonl" | tr -d ' ')" = 32 ] || fail "$(wc -l <"$W/scores.jsonl") scored rows for 32"
# T halfway between the 24th and 25th lowest IFD: the 8 highest-scored rows are at or above it
T=$(sed 's/.*"ifd":\([^,}]*\).*/\1/' "$W/scores.jsonl" | sort -g | awk 'NR == 24 { a = $1 } NR == 25 { printf "%.9g", (a + $1) / 2 }')
want=$(awk -v t="$T" '{ ifd = $0; sub(/.*"ifd":/, "", ifd); sub(/[,}].*/, "", ifd); if (ifd + 0 >= t) printf "%d ", NR - 1 }' \
    "$W/scores.jsonl")
[ "$(echo "$want" | wc -w | tr -d ' ')" = 8 ] || fail "the 24th and 25th lowest IFDs tie (T = $T): $(cat "$W/scores.jsonl")"
run_ok "select" "$HONE" select --model "$M" --data "$W/pool.jsonl" --format alpaca --prompt-template chat \
    --scores "$W/scores.jsonl" --max-ifd "$T" --threads 1 --output "$W/sel.jsonl"
D=$W/sel.decisions.jsonl
[ "$(wc -l <"$D" | tr -d ' ')" = 32 ] || fail "$(wc -l <"$D") decisions for 32 rows"
# index i on line i + 1; kept rows "kept" with ifd < T, dropped ones "ifd_too_high" with ifd >= T
bad=$(awk -v t="$T" '{
        if (index($0, "{\"index\":" NR - 1 ",") != 1) { print "line " NR ": " $0; next }
        ifd = $0
        sub(/.*"ifd":/, "", ifd)
        sub(/[,}].*/, "", ifd)
        if (!($0 ~ /"selected":true,"reason":"kept"/ && ifd + 0 < t) &&
            !($0 ~ /"selected":false,"reason":"ifd_too_high"/ && ifd + 0 >= t))
            print "line " NR ": " $0
    }' "$D")
[ -z "$bad" ] || fail "decisions out of order or without a reason: $bad"
kept=$(grep -c '"selected":true' "$D" || true)
dropped=$(grep -c '"selected":false' "$D" || true)
[ "$((kept + dropped))" = 32 ] && [ "$(wc -l <"$W/sel.jsonl" | tr -d ' ')" = "$kept" ] ||
    fail "kept $kept + dropped $dropped, $(wc -l <"$W/sel.jsonl") rows in the output"
drops=$(sed -n 's/^{"index":\([0-9]*\),"selected":false.*/\1/p' "$D" | tr '\n' ' ')
[ "$drops" = "$want" ] || fail "dropped rows $drops, the rows scored at or above $T are $want; decisions: $(cat "$D")"
# the output is the kept rows, in pool order
sed -n 's/.*"instruction": *"\([^"]*\)".*/\1/p' "$W/sel.jsonl" >"$W/kept_instructions"
awk -v drop=" $want" 'index(drop, " " NR - 1 " ") == 0' "$W/pool.jsonl" |
    sed -n 's/.*"instruction": *"\([^"]*\)".*/\1/p' | cmp -s - "$W/kept_instructions" ||
    fail "the output is not the pool without the dropped rows"
caught=$(for i in $drops; do grep -qx "$i" "$W/misaligned.txt" && echo "$i"; done | wc -l | tr -d ' ')
echo "   ok: kept $kept, dropped $dropped at ifd >= $T: rows $drops ($caught of the 8 misaligned; not checked)"

check "hone eval --tasks on the demo's held-out prompts gives the demo's row for sft-all"
run_ok "eval tasks" "$HONE" eval --model "$M" --tasks "$W/s/test.jsonl" --max-new-tokens 8 --json --threads 1
json_valid "$W/stdout" || fail "not valid JSON: $(cat "$W/stdout")"
row=$(grep '^| full SFT, all tasks' "$W/demo.txt" | tr -d '|%' | awk '{ print $(NF-4), $(NF-3), $(NF-2), $(NF-1) }')
got=$(for t in reverse sort add next; do
    sed "s/.*\"$t\": {[^}]*\"correct\": \([0-9]*\).*/\1/" "$W/stdout"
done | awk '{ printf "%s%.0f", (NR > 1 ? " " : ""), 100 * $1 / 25 }')
[ -n "$row" ] && [ "$got" = "$row" ] || fail "eval --tasks gives $got (percent per task), the demo printed $row"
# the overall counts come before "tasks" (json_num would find a task's)
overall() { sed 's/, "tasks".*//' "$W/stdout" | json_num "$1"; }
[ "$(overall total)" = 100 ] || fail "total is not 100: $(cat "$W/stdout")"
echo "   ok: reverse sort add next = $got %"

check "exact match against answers computed by hand from hone generate (greedy, same template, 8 new tokens)"
: >"$W/hand.jsonl"
right=0
for n in 1 2 3 4 5 6; do
    line=$(sed -n "${n}p" "$W/s/test.jsonl")
    prompt=$(echo "$line" | awk -F'"' '{ print $4 }')
    task=$(echo "$line" | awk -F'"' '{ print $16 }')
    # the ChatML prompt the model was trained with (a literal string: its final newline must stay)
    run_ok "generate $n" "$HONE" generate --model "$M" --max-new-tokens 8 --threads 1 --prompt "<|im_start|>user
$prompt<|im_end|>
<|im_start|>assistant
"
    said=$(cat "$W/stdout")
    # an answer counts when the turn ended: the text before <|im_end|>, surrounding spaces stripped
    answer=
    case $said in
    *'<|im_end|>'*) answer=$(printf '%s' "${said%%'<|im_end|>'*}" | sed 's/^[[:space:]]*//; s/[[:space:]]*$//') ;;
    esac
    answer=$(printf '%s' "$answer" | sed 's/\\/\\\\/g; s/"/\\"/g')
    if [ -n "$answer" ]; then
        printf '{"instruction": "%s", "output": "%s", "task": "%s"}\n' "$prompt" "$answer" "$task" >>"$W/hand.jsonl"
        printf '{"instruction": "%s", "output": "%s!", "task": "%s"}\n' "$prompt" "$answer" "$task" >>"$W/hand.jsonl"
        right=$((right + 1))
    else # no answer: whatever the reference, the item is wrong
        printf '{"instruction": "%s", "output": "x", "task": "%s"}\n' "$prompt" "$task" >>"$W/hand.jsonl"
    fi
done
rows=$(wc -l <"$W/hand.jsonl" | tr -d ' ')
run_ok "eval hand" "$HONE" eval --model "$M" --tasks "$W/hand.jsonl" --max-new-tokens 8 --json --threads 1
[ "$(overall correct)" = "$right" ] && [ "$(overall total)" = "$rows" ] ||
    fail "expected $right right of $rows, got $(cat "$W/stdout")"
[ "$right" -gt 0 ] || fail "no generated answer ended its turn: the check above proves nothing"
run_ok "eval hand plain" "$HONE" eval --model "$M" --tasks "$W/hand.jsonl" --max-new-tokens 8 --threads 1
tail -n 1 "$W/stdout" | grep -q "^all  *[0-9.]*%  ($right/$rows exact matches" ||
    fail "unexpected plain output: $(cat "$W/stdout")"
echo "   ok: $right of $rows right"

check "bad files and requests are errors naming the file and line"
printf '{"instruction": "a", "output": "b"}\n{"instruction": "a" "output": "b"}\n' >"$W/bad.jsonl"
expect_error "bad JSON" "bad.jsonl:2: not JSON" "$HONE" eval --model "$M" --tasks "$W/bad.jsonl" --threads 1
printf '\n{"instruction": "a", "answer": "b"}\n' >"$W/noout.jsonl"
expect_error "no output" 'noout.jsonl:2: missing field "output"' "$HONE" eval --model "$M" --tasks "$W/noout.jsonl" \
    --threads 1
printf '{"instruction": "a", "output": 5}\n' >"$W/num.jsonl"
expect_error "number" 'num.jsonl:1: field "output" must be a string' "$HONE" eval --model "$M" --tasks "$W/num.jsonl" \
    --threads 1
: >"$W/empty.jsonl"
expect_error "empty" "empty.jsonl has no rows" "$HONE" eval --model "$M" --tasks "$W/empty.jsonl" --threads 1
expect_error "missing" "absent.jsonl" "$HONE" eval --model "$M" --tasks "$W/absent.jsonl" --threads 1
expect_error "both" "not both" "$HONE" eval --model "$M" --tasks "$W/hand.jsonl" --data "$W/hand.jsonl" --threads 1
expect_error "a perplexity key with --tasks" "sequence_len applies to --data (perplexity) only" "$HONE" eval \
    --model "$M" --tasks "$W/hand.jsonl" --sequence-len 64 --threads 1
expect_error "a tasks key with --data" "max_new_tokens applies to --tasks (exact match) only" "$HONE" eval \
    --model "$M" --data "$W/hand.jsonl" --max-new-tokens 8 --threads 1
expect_error "max_new_tokens 0" "max_new_tokens must be from 1" "$HONE" eval --model "$M" \
    --tasks "$W/hand.jsonl" --max-new-tokens 0 --threads 1

echo "PASS: select_defects"
