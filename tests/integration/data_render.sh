#!/bin/sh
# hone data render: datasets through a chat template and a tokenizer, one {"text", "input_ids", "labels"} line per
# example; the loud warnings (no end-of-turn token) and the generation-prompt mode.
set -eu
. "$(dirname "$0")/lib/common.sh"
setup "$@"
DATA=../shared/data
if [ ! -d "$DATA" ]; then
    echo "skipping: $DATA is absent (real tokenizers and datasets live there)"
    exit 77
fi

check "alpaca rows with the GPT-2 tokenizer: no chat template, so the built-in alpaca one; one line per example"
run_ok "render alpaca" "$HONE" data render --tokenizer "$DATA/tokenizers/gpt2" \
    --data "$DATA/datasets/instruct/alpaca_23.json" --output "$W/alpaca.jsonl"
[ "$(wc -l <"$W/alpaca.jsonl")" -eq 23 ] || fail "expected 23 rendered examples"
grep -q "template alpaca" "$W/stderr" || fail "the default template is not reported: $(cat "$W/stderr")"
/usr/bin/python3 - "$W/alpaca.jsonl" <<'PY' || fail "rendered rows are inconsistent"
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    assert len(r["input_ids"]) == len(r["labels"]) > 0
    trained = [i for i, l in zip(r["input_ids"], r["labels"]) if l != -100]
    assert trained and all(l in (-100, i) for i, l in zip(r["input_ids"], r["labels"]))
    assert r["labels"][0] == -100  # the prompt is not trained
    assert "### Response:" in r["text"]
PY

check "ChatML with a tokenizer that lacks its special tokens: the missing end-of-turn token is a loud warning"
run_ok "render chatml" "$HONE" data render --tokenizer "$DATA/tokenizers/gpt2" --chat-template chatml \
    --data "$DATA/datasets/chat/sharegpt_tiny_1.json" --output "$W/chatml.jsonl"
grep -q "warning: 1 of 1 examples have a trained assistant turn that no special token ends" "$W/stderr" ||
    fail "no end-of-turn warning: $(cat "$W/stderr")"

check "--add-generation-prompt: the prompt only, nothing trained"
run_ok "render prompt" "$HONE" data render --tokenizer "$DATA/tokenizers/gpt2" --add-generation-prompt true \
    --data "$DATA/datasets/instruct/alpaca_23.json" --output "$W/prompt.jsonl"
/usr/bin/python3 - "$W/prompt.jsonl" <<'PY' || fail "prompts are trained or do not end with the response header"
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    assert all(l == -100 for l in r["labels"])
    assert r["text"].endswith("### Response:")
PY

check "errors: an unknown template name lists the built-in ones"
expect_error "unknown template" "chatml" "$HONE" data render --tokenizer "$DATA/tokenizers/gpt2" \
    --chat-template no-such --data "$DATA/datasets/instruct/alpaca_23.json" --output "$W/x.jsonl"
[ ! -e "$W/x.jsonl" ] || fail "a failed render left its output"
echo "ok"
