#!/bin/sh
# hone select --method reflection against a local OpenAI-compatible endpoint (tests/helpers/fake_openai.c) with a
# GPT-2 student: every decision follows the rule on the reported scores, replies without markers are missing
# versions, a run killed with kill -9 resumes without asking the teacher again for journaled replies and writes
# the same files, a failing teacher is a clear error, and a hone model can be the teacher.
set -eu
. "$(dirname "$0")/lib/common.sh"
setup "$@"
DATA=../shared/data
if [ ! -d "$DATA" ]; then
    echo "skipping: $DATA is absent (the checkpoint and the datasets live there)"
    exit 77
fi
FAKE=$(dirname "$HONE")/hone_fake_openai
[ -x "$FAKE" ] || fail "$FAKE is not built"
MODEL=$DATA/models/fake_gpt2
PY=/usr/bin/python3

# start_server NAME ARGS...: runs the fake endpoint in the background; sets URL and the server's pid in $W/NAME.pid.
start_server() {
    _name=$1
    shift
    "$FAKE" "$@" >"$W/$_name.port" &
    echo $! >"$W/$_name.pid"
    _i=0
    while [ ! -s "$W/$_name.port" ] && [ $_i -lt 100 ]; do sleep 0.05; _i=$((_i + 1)); done
    URL="http://127.0.0.1:$(cat "$W/$_name.port")/v1"
}
trap 'for p in "$W"/*.pid; do [ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null; done; rm -rf "$W"' EXIT

# 12 alpaca examples, one of which makes the endpoint answer without markers.
$PY - "$DATA/datasets/instruct/alpaca_23.json" "$W/data.json" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))[:12]
rows[4]["instruction"] += " @nomarkers"
json.dump(rows, open(sys.argv[2], "w"))
PY
start_server main --log "$W/main.log"
SELECT="$HONE select --model $MODEL --data $W/data.json --method reflection --sequence-len 256 --threads 1
    --teacher-name fake-teacher --teacher-concurrency 2"

check "an uninterrupted run: every decision follows the rule on its scores; the kept rows are the winners"
mkdir "$W/full"
run_ok "reflection" $SELECT --teacher-url "$URL" --output "$W/full/kept.jsonl" --json
grep -q "examples kept" "$W/stderr" || fail "no summary: $(cat "$W/stderr")"
$PY - "$W/data.json" "$W/full" "$W/stdout" <<'PY' || fail "wrong decisions"
import json, math, sys
data = json.load(open(sys.argv[1]))
d = [json.loads(l) for l in open(sys.argv[2] + "/kept.decisions.jsonl")]
kept = [json.loads(l) for l in open(sys.argv[2] + "/kept.jsonl")]
journal = [json.loads(l) for l in open(sys.argv[2] + "/kept.teacher.jsonl")]
summary = json.loads(open(sys.argv[3]).read())
assert [x["index"] for x in d] == list(range(len(data)))
nan = float("nan")
def s(x, v, k):
    val = x["scores"][v][k]
    return nan if val is None else val
for x in d:
    # the rule, written independently: Q vs orig on IFD, then the candidate vs its base on r-IFD, then the gates
    base, cand = ("Q", "QA") if s(x, "Q", "ifd") > s(x, "orig", "ifd") else ("orig", "A")
    if math.isnan(s(x, cand, "ifd")) and math.isnan(s(x, cand, "rifd")): reason = "missing"
    elif not s(x, cand, "rifd") < s(x, base, "rifd"): reason = "not_improved"
    elif not s(x, cand, "ifd") < 1: reason = "ifd_gate"
    elif not s(x, cand, "rifd") < 1: reason = "rifd_gate"
    else: reason = "kept"
    assert (x["instruction_from"], x["version"], x["reason"], x["selected"]) == (base, cand, reason, reason == "kept"), x
    row = data[x["index"]]
    ins = row["instruction"] + ("\n" + row["input"] if row.get("input") else "")
    if x["index"] == 4:
        assert set(x["missing"]) == {"Q", "A", "QA"} and x["reason"] == "missing", x
        assert x["missing"]["Q"].startswith("no [New Instruction]") and x["missing"]["QA"] == "Q is missing"
    else:
        # the endpoint's deterministic rewrites (tests/helpers/fake_openai.c) reached the right versions
        first = lambda t: t.split("\n")[0]
        assert x["versions"]["A"] == {"instruction": ins, "output": ("In short: " + first(row["output"])).rstrip()}, x
        assert x["versions"]["Q"]["instruction"] == (first(ins) + " Answer in one sentence.").strip(), x
        assert x["versions"]["QA"]["output"] == "In short: " + x["versions"]["Q"]["output"].split("\n")[0], x
        assert all(s(x, v, "ifd") > 0 for v in ("orig", "Q", "A", "QA")), x  # (rifd: long answers may not fit)
winners = [x for x in d if x["selected"]]
assert [k["index"] for k in kept] == [x["index"] for x in winners]
for k, x in zip(kept, winners):
    v = x["version"]
    assert k["version"] == v and k["ifd"] == x["scores"][v]["ifd"] and k["rifd"] == x["scores"][v]["rifd"]
    assert k["output"] == x["versions"][v]["output"]
    row = data[k["index"]]
    if v == "A": assert (k["instruction"], k["input"]) == (row["instruction"], row.get("input", ""))
    else: assert (k["instruction"], k["input"]) == (x["versions"]["QA"]["instruction"], "")
assert len(journal) == 12 * 2 + 11, len(journal)  # both reflections of each, then QA where Q exists
assert summary["examples"] == 12 and summary["no_markers"] == 2 and summary["requests"] == 35, summary
assert summary["kept"] == len(kept) and summary["by_reason"]["missing"] >= 1
PY
[ "$(wc -l <"$W/main.log")" -eq 35 ] || fail "the teacher answered $(wc -l <"$W/main.log") requests, expected 35"

check "running again asks the teacher nothing and writes the same files"
run_ok "rerun" $SELECT --teacher-url "$URL" --output "$W/full/kept.jsonl"
[ "$(wc -l <"$W/main.log")" -eq 35 ] || fail "a finished run asked the teacher again"
grep -q "35 from the journal" "$W/stderr" || fail "journal not used: $(cat "$W/stderr")"

check "kill -9 during the teacher phase, then resume: same files, finished requests not asked again"
start_server slow --log "$W/slow.log" --delay-ms 120
mkdir "$W/killed"
$SELECT --teacher-url "$URL" --output "$W/killed/kept.jsonl" >/dev/null 2>&1 &
PID=$!
i=0
while [ "$(cat "$W/killed/kept.teacher.jsonl" 2>/dev/null | wc -l)" -lt 10 ] && [ $i -lt 400 ]; do
    sleep 0.02
    i=$((i + 1))
done
kill -9 $PID
wait $PID 2>/dev/null || true
before=$(wc -l <"$W/killed/kept.teacher.jsonl")
[ "$before" -ge 10 ] && [ "$before" -lt 35 ] || fail "the kill did not land in the teacher phase ($before replies)"
[ ! -f "$W/killed/kept.jsonl" ] || fail "a killed run left an output file"
printf '{"index": 3, "request": "resp' >>"$W/killed/kept.teacher.jsonl" # a line torn by the kill
run_ok "resume" $SELECT --teacher-url "$URL" --output "$W/killed/kept.jsonl"
cmp -s "$W/full/kept.jsonl" "$W/killed/kept.jsonl" || fail "the resumed output differs from the uninterrupted one"
cmp -s "$W/full/kept.decisions.jsonl" "$W/killed/kept.decisions.jsonl" || fail "the resumed decisions differ"
[ "$(wc -l <"$W/killed/kept.teacher.jsonl")" -eq 35 ] || fail "the journal does not have exactly 35 replies"
# Each request answered once, except those in flight at the kill (at most --teacher-concurrency of them).
dups=$(sort "$W/slow.log" | uniq -d | wc -l)
[ "$(sort -u "$W/slow.log" | wc -l)" -eq 35 ] && [ "$dups" -le 2 ] ||
    fail "requests answered: $(wc -l <"$W/slow.log"), distinct $(sort -u "$W/slow.log" | wc -l), repeated $dups"

check "a teacher that keeps failing: the run says which requests failed and why, and exits non-zero"
$PY - "$W/data.json" "$W/fail.json" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))[:3]
rows[1]["instruction"] += " @500"
json.dump(rows, open(sys.argv[2], "w"))
PY
mkdir "$W/fail" "$W/model"
expect_error "HTTP 500" "HTTP 500 after 2 attempts" $HONE select --model "$MODEL" --data "$W/fail.json" \
    --method reflection --threads 1 --teacher-url "$URL" --teacher-name t --teacher-retries 1 \
    --output "$W/fail/kept.jsonl"
grep -q "2 teacher requests failed" "$W/stderr" || fail "no failure count: $(cat "$W/stderr")"
[ -f "$W/fail/kept.decisions.jsonl" ] || fail "the examples that worked were not written"
expect_error "no teacher" "exactly one" $HONE select --model "$MODEL" --data "$W/fail.json" --method reflection \
    --threads 1 --output "$W/x.jsonl"
expect_error "missing key" "HONE_NO_SUCH_KEY is not set" $HONE select --model "$MODEL" --data "$W/fail.json" \
    --method reflection --threads 1 --teacher-url "$URL" --teacher-name t --teacher-api-key-env HONE_NO_SUCH_KEY \
    --output "$W/x.jsonl"
expect_error "a report with reflection" "--report is not supported yet with --method reflection" $HONE select \
    --model "$MODEL" --data "$W/fail.json" --method reflection --threads 1 --teacher-url "$URL" --teacher-name t \
    --report "$W/x.html" --output "$W/x.jsonl"

check "a hone model as the teacher (greedy): its replies are journaled; without markers every version is missing"
$PY - "$W/data.json" "$W/three.json" <<'PY'
import json, sys
json.dump(json.load(open(sys.argv[1]))[:3], open(sys.argv[2], "w"))
PY
run_ok "model teacher" $HONE select --model "$MODEL" --data "$W/three.json" --method reflection --threads 1 \
    --teacher-model "$MODEL" --teacher-max-tokens 8 --output "$W/model/kept.jsonl"
$PY - "$W/model" <<'PY' || fail "wrong model-teacher run"
import json, sys
journal = [json.loads(l) for l in open(sys.argv[1] + "/kept.teacher.jsonl")]
d = [json.loads(l) for l in open(sys.argv[1] + "/kept.decisions.jsonl")]
assert sorted((j["index"], j["request"]) for j in journal) == [(i, r) for i in range(3) for r in ("instruction", "response")]
assert all(x["reason"] == "missing" and x["missing"]["QA"] == "Q is missing" for x in d), d
PY
run_ok "model teacher again" $HONE select --model "$MODEL" --data "$W/three.json" --method reflection --threads 1 \
    --teacher-model "$MODEL" --teacher-max-tokens 8 --output "$W/model/kept.jsonl"
grep -q "6 from the journal" "$W/stderr" || fail "the model teacher's replies were not reused: $(cat "$W/stderr")"
echo "ok"
