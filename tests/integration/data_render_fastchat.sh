#!/bin/sh
# hone data render --conversation: a FastChat template rendered turn by turn as axolotl's legacy type: sharegpt does,
# compared id by id and label by label with axolotl's own golden file (tests/fixtures/conversation.tokenized.json of
# axolotl-ai-cloud/axolotl: Vicuna v1.1 with the Llama tokenizer, which Llama 2 shares).
set -eu
. "$(dirname "$0")/lib/common.sh"
setup "$@"
DATA=../shared/data
if [ ! -d "$DATA" ]; then
    echo "skipping: $DATA is absent (the Llama 2 tokenizer and axolotl's golden tokenization live there)"
    exit 77
fi
CHAT=$DATA/datasets/chat

check "axolotl's conversation.json with vicuna_v1.1 and the Llama 2 tokenizer: axolotl's ids and labels, all of them"
run_ok "render vicuna" "$HONE" data render --tokenizer "$DATA/tokenizers/llama2" --conversation vicuna_v1.1 \
    --data "$CHAT/axolotl_conversation.json" --output "$W/vicuna.jsonl"
grep -q "FastChat template vicuna_v1.1" "$W/stderr" || fail "the template is not reported: $(cat "$W/stderr")"
/usr/bin/python3 - "$W/vicuna.jsonl" "$CHAT/axolotl_conversation.vicuna_llama2.tokenized.json" <<'PY' ||
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
golden = json.load(open(sys.argv[2]))
assert len(rows) == 1, f"{len(rows)} rendered rows, expected 1"
for key in ("input_ids", "labels"):
    got, want = rows[0][key], golden[key]
    diff = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), None)
    assert diff is None and len(got) == len(want), \
        f"{key}: {len(got)} vs {len(want)} golden, first difference at {diff}"
assert rows[0]["text"].startswith("A chat between a curious user")
PY
    fail "hone's ids or labels differ from axolotl's"

check "--conversation with --chat-template, or an unknown template name: clear errors"
expect_error "both" "give one of the two" "$HONE" data render --tokenizer "$DATA/tokenizers/llama2" \
    --conversation llama-2 --chat-template chatml --data "$CHAT/axolotl_conversation.json" --output "$W/x.jsonl"
expect_error "unknown" "known: vicuna_v1.1, llama-2, chatml" "$HONE" data render \
    --tokenizer "$DATA/tokenizers/llama2" --conversation vicuna --data "$CHAT/axolotl_conversation.json" \
    --output "$W/x.jsonl"
echo "ok"
