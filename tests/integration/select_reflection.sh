#!/bin/sh
# hone select --method reflection against a local OpenAI-compatible endpoint (tests/helpers/fake_openai.c) with a
# GPT-2 student: every decision follows the rule on the reported scores, replies without markers are missing
# versions, the --report page has the counts of the decisions and journal files, a run killed with kill -9 resumes
# without asking the teacher again for journaled replies and writes the same files, a failing teacher is a clear
# error, a hone model can be the teacher (sampling reproducibly with --seed), and an endpoint gets the temperature.
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
run_ok "rerun" $SELECT --teacher-url "$URL" --output "$W/full/kept.jsonl" --report "$W/full/report.html"
[ "$(wc -l <"$W/main.log")" -eq 35 ] || fail "a finished run asked the teacher again"
grep -q "35 from the journal" "$W/stderr" || fail "journal not used: $(cat "$W/stderr")"

# check_report DIR REPORT: REPORT is one self-contained page whose counts are those of DIR's decisions and journal.
cat >"$W/check_report.py" <<'PY'
import json, math, re, sys
d = [json.loads(l) for l in open(sys.argv[1] + "/kept.decisions.jsonl")]
journal = [json.loads(l) for l in open(sys.argv[1] + "/kept.teacher.jsonl")]
page = open(sys.argv[2]).read()
assert page.startswith("<!DOCTYPE html>\n") and page.endswith("</html>\n"), "not one page"
assert "<script" not in page and not re.search(r"(src|href)=", page), "the page loads something"
rows = {m.group(1): [int(x) for x in re.findall(r"\d+", m.group(2))]
        for m in re.finditer(r"<tr><th>([\w ]+)</th>((?:<td>\d+</td>)+)</tr>", page)}
nan = float("nan")
def s(x, v, k):
    val = x["scores"][v][k]
    return nan if val is None else val
want = {"examples": [len(d)], "journal replies": [len(journal)]}
for r in ("kept", "missing", "not_improved", "ifd_gate", "rifd_gate"):
    want[r] = [sum(x["reason"] == r for x in d)]
for k in ("instruction", "response", "response_q"):
    want[k] = [sum(j["request"] == k for j in journal)]
failed = lambda x, v: x["missing"].get(v, "").startswith("teacher failed")
want["teacher failures"] = [sum(failed(x, v) for x in d for v in ("Q", "A", "QA"))]
for v in ("Q", "A", "QA"):
    cand = "QA" if v == "Q" else v
    base = lambda x: "Q" if cand == "QA" else "orig"
    # the comparison each version is in: Q's ifd against the original's, a candidate's rifd against its base's
    won = [x for x in d if (s(x, "Q", "ifd") > s(x, "orig", "ifd") if v == "Q" else
                            x["version"] == v and s(x, v, "rifd") < s(x, base(x), "rifd"))]
    want[v] = [sum(v in x["versions"] for x in d), sum(failed(x, v) for x in d),
               sum(x["missing"].get(v, "").startswith("no ") for x in d), len(won),
               sum(x["selected"] and x["version"] == cand for x in d)]
for k, v in want.items():
    assert rows.get(k) == v, (k, rows.get(k), v)
assert page.count("<svg") == 4, page.count("<svg")
shown = re.findall(r"<tr><td>(\d+)</td><td><b>(kept|dropped)", page)
assert [(int(i), k == "kept") for i, k in shown] == [(x["index"], x["selected"]) for x in d][:50], shown
PY
check "--report: one page with the counts, histograms and examples of the decisions file and the journal"
/usr/bin/python3 "$W/check_report.py" "$W/full" "$W/full/report.html" || fail "wrong report"
grep -q "report: $W/full/report.html" "$W/stderr" || fail "the report was not announced: $(cat "$W/stderr")"

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
    --output "$W/fail/kept.jsonl" --report "$W/fail/report.html"
grep -q "2 teacher requests failed" "$W/stderr" || fail "no failure count: $(cat "$W/stderr")"
[ -f "$W/fail/kept.decisions.jsonl" ] || fail "the examples that worked were not written"
/usr/bin/python3 "$W/check_report.py" "$W/fail" "$W/fail/report.html" || fail "wrong report of a failed run"
grep -q "<tr><th>teacher failures</th><td>2</td></tr>" "$W/fail/report.html" || fail "the failures are not reported"
expect_error "no teacher" "exactly one" $HONE select --model "$MODEL" --data "$W/fail.json" --method reflection \
    --threads 1 --output "$W/x.jsonl"
expect_error "missing key" "HONE_NO_SUCH_KEY is not set" $HONE select --model "$MODEL" --data "$W/fail.json" \
    --method reflection --threads 1 --teacher-url "$URL" --teacher-name t --teacher-api-key-env HONE_NO_SUCH_KEY \
    --output "$W/x.jsonl"
expect_error "negative temperature" "a finite --teacher-temperature >= 0" $HONE select --model "$MODEL" \
    --data "$W/fail.json" --method reflection --threads 1 --teacher-url "$URL" --teacher-name t \
    --teacher-temperature -1 --output "$W/x.jsonl"
expect_error "a seed that seeds nothing" "needs --teacher-model and --teacher-temperature > 0" $HONE select \
    --model "$MODEL" --data "$W/fail.json" --method reflection --threads 1 --teacher-url "$URL" --teacher-name t \
    --teacher-temperature 0.5 --seed 3 --output "$W/x.jsonl"

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

check "a sampling model teacher is seeded: the same seed gives the same replies, another seed others"
MT="$HONE select --model $MODEL --data $W/three.json --method reflection --threads 1 --teacher-model $MODEL
    --teacher-max-tokens 8 --teacher-temperature 1"
mkdir "$W/s7" "$W/s7b"
run_ok "seed 7" $MT --seed 7 --output "$W/s7/kept.jsonl"
run_ok "seed 7 again" $MT --seed 7 --output "$W/s7b/kept.jsonl"
cmp -s "$W/s7/kept.teacher.jsonl" "$W/s7b/kept.teacher.jsonl" || fail "same seed, other replies"
cmp -s "$W/s7/kept.decisions.jsonl" "$W/s7b/kept.decisions.jsonl" || fail "same seed, other decisions"
run_ok "seed 8 over the seed-7 journal" $MT --seed 8 --output "$W/s7b/kept.jsonl"
grep -q "requests (0 from the journal" "$W/stderr" || fail "replies of another seed were reused: $(cat "$W/stderr")"
$PY - "$W/s7" "$W/s7b" "$W/model" <<'PY' || fail "the seed or the temperature changed nothing"
import json, sys
# the last reply of each request wins, as when the journal is resumed
replies = lambda d: {(j["index"], j["request"]): j["reply"] for j in map(json.loads, open(d + "/kept.teacher.jsonl"))}
seed7, seed8, greedy = map(replies, sys.argv[1:])
assert len(seed7) == 6 and seed8.keys() == seed7.keys() and seed8 != seed7 and seed7 != greedy, (seed7, seed8)
PY

check "an endpoint teacher gets the temperature; replies at another temperature are not reused"
start_server temp --log "$W/temp.log"
mkdir "$W/temp"
run_ok "temperature 0" $HONE select --model "$MODEL" --data "$W/three.json" --method reflection --threads 1 \
    --teacher-url "$URL" --teacher-name t --output "$W/temp/kept.jsonl"
cp "$W/temp.log" "$W/temp0.log"
run_ok "temperature 0.5" $HONE select --model "$MODEL" --data "$W/three.json" --method reflection --threads 1 \
    --teacher-url "$URL" --teacher-name t --teacher-temperature 0.5 --output "$W/temp/kept.jsonl"
grep -q "requests (0 from the journal" "$W/stderr" || fail "replies at temperature 0 were reused: $(cat "$W/stderr")"
# the request bodies (their hashes in the log) all differ from those at temperature 0
[ "$(wc -l <"$W/temp0.log")" -eq 9 ] && [ "$(sort -u "$W/temp.log" | wc -l)" -eq 18 ] ||
    fail "requests: $(wc -l <"$W/temp0.log") at temperature 0, $(sort -u "$W/temp.log" | wc -l) distinct in all"
echo "ok"
