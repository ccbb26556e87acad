#!/bin/sh
# hone select --method star-agents: agents served by the local fake OpenAI endpoint and a hone model, the student
# (a Hugging Face-written GPT-2) against a large model (the same after two SFT steps); the log is checked against
# the rule of ALGORITHMS.md §3 recomputed in Python (gaps, π, the winner, p += β·π then renormalised, distinct
# pairs, the memory bank), the kept data against the log; a run cut off mid-line resumes to the same bytes; a
# teacher judge and a failing agent; errors (among them an agent's temperature: another one is another log).
set -eu
. "$(dirname "$0")/lib/common.sh"
setup "$@"
DATA=../shared/data
if [ ! -d "$DATA" ]; then
    echo "skipping: $DATA is absent (the student model lives there)"
    exit 77
fi
FAKE=$(dirname "$HONE")/hone_fake_openai
[ -x "$FAKE" ] || fail "$FAKE is missing (built with hone)"
MODEL=$DATA/models/fake_gpt2
"$FAKE" >"$W/port" 2>/dev/null &
FAKE_PID=$!
trap 'kill $FAKE_PID 2>/dev/null; rm -rf "$W"' EXIT
for _ in 1 2 3 4 5 6 7 8 9 10; do [ -s "$W/port" ] && break; sleep 0.2; done
URL="http://127.0.0.1:$(cat "$W/port")/v1"

run_ok "the large model" "$HONE" sft --model "$MODEL" --datasets "$DATA/datasets/instruct/alpaca_23.json" \
    --max-steps 2 --learning-rate 1e-2 --sequence-len 128 --threads 1 --output-dir "$W/large"
cat >"$W/seeds.jsonl" <<'EOF'
{"instruction": "Repeat the word apple.", "input": "", "output": "apple"}
{"instruction": "Name a colour.", "input": "", "output": "blue"}
{"instruction": "Say hello", "input": "to Bob", "output": "Bob"}
{"instruction": "Repeat the word pear.", "input": "", "output": "pear"}
{"instruction": "Repeat the word plum.", "input": "", "output": "plum"}
{"instruction": "Count to three.", "input": "", "output": "1 2 3"}
EOF
cat >"$W/star.yaml" <<EOF
star_beta: 0.25
star_pairs_per_seed: 2
star_memory_pairs: 1
star_agents:
  - {name: e1, url: "$URL", model_name: fake}
  - {name: e2, url: "$URL", model_name: fake, role: responder}
  - {name: g, model: $MODEL, chat_template: chatml, max_tokens: 6}
  - {name: judge, url: "$URL", model_name: fake, role: judge}
EOF
{ cat "$W/star.yaml"; echo '  - {name: down, url: "http://127.0.0.1:1/v1", model_name: x, role: responder, max_retries: -1}'; } \
    >"$W/down.yaml"
STAR="$HONE select --method star-agents --model $MODEL --large-model $W/large
      --data $W/seeds.jsonl --sequence-len 256 --threads 1"

check "rule judge: every decision, score and probability follows the rule"
run_ok "star-agents" $STAR --config $W/star.yaml --star-judge contains --star-base-pairs g/g --output "$W/out.jsonl"
grep -q "6 seeds (0 resumed)" "$W/stderr" || fail "no summary: $(cat "$W/stderr")"
/usr/bin/python3 - "$W/out.star.jsonl" "$W/out.jsonl" "$W/seeds.jsonl" 0.25 2 1 <<'PY' || fail "the log breaks the rule"
import json, math, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
kept = [json.loads(l) for l in open(sys.argv[2])]
seeds = [json.loads(l) for l in open(sys.argv[3])]
beta, M, L = float(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
head = lines[0]["star_agents"]
pairs = head["pairs"]
assert head["beta"] == beta and head["m"] == M and head["l"] == L
p = [1 / len(pairs)] * len(pairs)
winners = []
improved = 0
assert [l["seed"] for l in lines[1:]] == list(range(len(seeds)))
for line, seed in zip(lines[1:], seeds):
    c = line["candidates"]
    assert (line["instruction"], line["input"], line["output"]) == (seed["instruction"], seed["input"], seed["output"])
    idx = [x["pair_index"] for x in c]
    assert len(set(idx)) == len(idx), "pairs repeat"
    assert [x["source"] for x in c][0] == "base" and pairs[idx[0]] == "g/g"
    mem = [x for x in c if x["source"] == "memory"]
    assert len(mem) <= L and all(x["pair_index"] in winners for x in mem)
    assert len([x for x in c if x["source"] == "drawn"]) == M
    for x in c:
        assert x["pair"] == pairs[x["pair_index"]] == x["rewriter"] + "/" + x["responder"]
        assert x["error"] is None and x["ifd_small"] > 0 and x["ifd_large"] > 0
        assert abs(x["gap"] - (x["ifd_small"] - x["ifd_large"])) < 1e-12
        right = seed["output"] in x["response"]
        assert x["verdicts"] == ["right" if right else "wrong"] and x["pi_llm"] == (1.0 if right else 0.0)
    top = max(x["gap"] for x in c)
    for x in c:
        dual = x["gap"] / top if top > 0 else 0.0
        assert abs(x["pi_dual"] - dual) < 1e-12 and abs(x["pi"] - x["pi_llm"] * dual) < 1e-12
    best = max(range(len(c)), key=lambda i: (c[i]["pi"], -i))
    if c[best]["pi"] > 0:
        assert line["kept"] == best and line["kept_pair_index"] == c[best]["pair_index"]
        w, pi = c[best]["pair_index"], c[best]["pi"]
        assert line["pi"] == pi
        p[w] += beta * pi
        p = [v / sum(p) for v in p]
        winners.append(w)
        improved += 1
        want = {"instruction": c[best]["instruction"], "input": "", "output": c[best]["response"]}
    else:
        assert line["kept"] is None and line["kept_pair"] is None
        want = seed
    assert all(abs(a - b) < 1e-12 for a, b in zip(line["p"], p)), (line["p"], p)
    assert abs(sum(line["p"]) - 1) < 1e-12
    row = kept[line["seed"]]
    assert (row["instruction"], row["input"], row["output"]) == (want["instruction"], want["input"], want["output"])
    assert row["seed"] == line["seed"] and row["pair"] == line["kept_pair"]
assert len(kept) == len(seeds) and improved >= 1, improved
assert any(x["source"] == "memory" for l in lines[1:] for x in l["candidates"]), "the memory bank was never used"
PY

check "--report: the pairs' wins and a chart of their probabilities, from the log"
run_ok "report" $STAR --config $W/star.yaml --star-judge contains --star-base-pairs g/g --output "$W/out.jsonl" \
    --report "$W/star.html"
grep -q "6 seeds (6 resumed)" "$W/stderr" || fail "the finished log was not reused: $(cat "$W/stderr")"
R=$W/star.html
head -n 1 "$R" | grep -q '^<!DOCTYPE html>$' && [ "$(tail -n 1 "$R")" = "</html>" ] || fail "report.html is not a page"
[ "$(grep -o '<svg' "$R" | wc -l)" -eq 1 ] && grep -q '<polyline' "$R" || fail "no probability chart in $R"
grep -q '<script' "$R" && fail "the report has a script"
pairs=$(/usr/bin/python3 -c 'import json, sys; print(len(json.loads(open(sys.argv[1]).readline())["star_agents"]["pairs"]))' \
    "$W/out.star.jsonl")
[ "$(grep -c '^<tr><td>' "$R")" -eq "$pairs" ] || fail "expected one table row per pair ($pairs) in $R"
echo "   ok"

check "cut off after three seeds and in the middle of the fourth: the rerun completes the log, byte for byte"
cp "$W/out.star.jsonl" "$W/whole.star.jsonl"
cp "$W/out.jsonl" "$W/whole.jsonl"
head -n 4 "$W/whole.star.jsonl" >"$W/out.star.jsonl"
sed -n 5p "$W/whole.star.jsonl" | head -c 200 >>"$W/out.star.jsonl"
run_ok "resume" $STAR --config $W/star.yaml --star-judge contains --star-base-pairs g/g --output "$W/out.jsonl"
grep -q "6 seeds (3 resumed)" "$W/stderr" || fail "did not resume at seed 3: $(cat "$W/stderr")"
cmp -s "$W/out.star.jsonl" "$W/whole.star.jsonl" || fail "the resumed log differs from the uninterrupted one"
cmp -s "$W/out.jsonl" "$W/whole.jsonl" || fail "the resumed kept data differ"

check "teacher judge (asked in both orders) and an agent whose endpoint is down"
run_ok "judge" $STAR --config "$W/down.yaml" --star-judge judge --star-base-pairs e1/e2,g/down \
    --star-pairs-per-seed 1 --output "$W/judged.jsonl"
FAILED=$(sed -n 's/.* \([0-9]*\) teacher requests failed.*/\1/p' "$W/stderr")
/usr/bin/python3 - "$W/judged.star.jsonl" "$FAILED" <<'PY' || fail "wrong judge or failure handling"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])][1:]
errors = sum(x["error"] is not None for l in lines for x in l["candidates"])
assert errors >= len(lines) and int(sys.argv[2]) == errors, (errors, sys.argv[2])
for line in lines:
    c = {x["pair"]: x for x in line["candidates"]}
    assert c["g/down"]["error"] and "127.0.0.1:1" in c["g/down"]["error"] and c["g/down"]["pi"] is None
    # the fake endpoint echoes the judge prompt, whose last mark is [[C]]: a tie both times
    assert c["e1/e2"]["verdicts"] == ["tie", "tie"] and c["e1/e2"]["pi_llm"] == 0.5
PY

check "errors"
expect_error "other settings" "written with other settings" $STAR --config $W/star.yaml --star-judge contains \
    --star-beta 0.5 --star-base-pairs g/g --output "$W/out.jsonl"
expect_error "unknown judge" "neither contains, equals nor the name of an agent" $STAR --config $W/star.yaml \
    --star-judge nobody --output "$W/x.jsonl"
expect_error "unknown pair" "star_base_pairs: 'e1/zz'" $STAR --config $W/star.yaml --star-judge contains \
    --star-base-pairs e1/zz --output "$W/x.jsonl"
# An agent's temperature is part of what it is: a log written at another one is not resumed; a negative one is an
# error naming the agent.
sed 's/max_tokens: 6}/max_tokens: 6, temperature: 0.5}/' "$W/star.yaml" >"$W/hot.yaml"
expect_error "another temperature" "written with other settings" $STAR --config $W/hot.yaml --star-judge contains \
    --star-base-pairs g/g --output "$W/out.jsonl"
sed 's/max_tokens: 6}/max_tokens: 6, temperature: -1}/' "$W/star.yaml" >"$W/cold.yaml"
expect_error "negative temperature" "star_agents item 3 ('g'): teacher temperature and max_tokens must be >= 0" \
    $STAR --config $W/cold.yaml --star-judge contains --output "$W/x.jsonl"
expect_error "no large model" "missing required option --large-model" "$HONE" select --config "$W/star.yaml" \
    --method star-agents --model "$MODEL" --data "$W/seeds.jsonl" --star-judge contains --output "$W/x.jsonl"
echo "ok"
