#!/bin/sh
# hone tokenize: JSONL text -> ids with the real GPT-2 tokenizer.json, in input order, and back with --decode; a
# Qwen2-style tokenizer.json and a vocab.json + merges.txt folder.
set -eu
HONE=$1
TOK=../shared/data/tokenizers/gpt2
if [ ! -d "$TOK" ]; then
    echo "skipping: ../shared/data is absent (the real GPT-2 tokenizer lives there)"
    exit 77
fi
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

printf '%s\n' '{"text": "Hello world"}' '' '{"text": " tabs\tand  spaces\n"}' '{"text": "<|endoftext|>x"}' >"$W/in.jsonl"
"$HONE" tokenize --tokenizer "$TOK" --input "$W/in.jsonl" --output "$W/ids.jsonl" --threads 2 2>"$W/err" ||
    fail "tokenize failed: $(cat "$W/err")"
[ "$(wc -l <"$W/ids.jsonl")" -eq 3 ] || fail "expected 3 output lines (blank input line skipped), got $(cat "$W/ids.jsonl")"
# GPT-2: "Hello world" = 15496, 995 (Hugging Face); the special token written in text becomes its id
[ "$(sed -n 1p "$W/ids.jsonl")" = '{"ids":[15496,995]}' ] || fail "line 1: $(sed -n 1p "$W/ids.jsonl")"
[ "$(sed -n 3p "$W/ids.jsonl")" = '{"ids":[50256,87]}' ] || fail "line 3: $(sed -n 3p "$W/ids.jsonl")"

"$HONE" tokenize --tokenizer "$TOK/tokenizer.json" --input "$W/ids.jsonl" --output "$W/back.jsonl" --decode 2>"$W/err" ||
    fail "decode failed: $(cat "$W/err")"
grep -v '^$' "$W/in.jsonl" | sed 's/{"text": /{"text":/' >"$W/want.jsonl"
cmp -s "$W/want.jsonl" "$W/back.jsonl" || fail "decode(encode(x)) != x: $(cat "$W/back.jsonl")"

# Qwen2 style (NFC + Split + ByteLevel without regex): torchtune's tiny_bpe_tokenizer.json, with the ids
# torchtune's tests expect; and a GPT-2 style folder with vocab.json + merges.txt and no tokenizer.json
printf '%s\n' '{"text": "Hello world!"}' '{"text": "<|im_start|>user\n"}' >"$W/qwen.jsonl"
"$HONE" tokenize --tokenizer ../shared/data/tokenizers/bpe-train/tiny_bpe_tokenizer.json --input "$W/qwen.jsonl" \
    --output "$W/qwen_ids.jsonl" 2>"$W/err" || fail "tokenize (Split) failed: $(cat "$W/err")"
[ "$(sed -n 1p "$W/qwen_ids.jsonl")" = '{"ids":[39,385,78,675,0]}' ] || fail "Split 1: $(sed -n 1p "$W/qwen_ids.jsonl")"
[ "$(sed -n 2p "$W/qwen_ids.jsonl")" = '{"ids":[2001,273,105,94]}' ] || fail "Split 2: $(sed -n 2p "$W/qwen_ids.jsonl")"
printf '%s\n' '{"text": "lower newer<|endoftext|>"}' >"$W/gpt2.jsonl"
"$HONE" tokenize --tokenizer ../shared/data/models/tiny_gpt2 --input "$W/gpt2.jsonl" --output "$W/gpt2_ids.jsonl" \
    2>"$W/err" || fail "tokenize (vocab.json + merges.txt) failed: $(cat "$W/err")"
[ "$(cat "$W/gpt2_ids.jsonl")" = '{"ids":[0,1,2,15,10,9,3,2,15,20]}' ] || fail "vocab.json: $(cat "$W/gpt2_ids.jsonl")"

# hone bench tokenize encodes the same paragraphs as tokenize does line by line: the same token count
printf 'One paragraph.\n\nAnother, longer paragraph with words.\n\n  Spaces  and\ttabs.\n' >"$W/corpus.txt"
/usr/bin/python3 - "$W/corpus.txt" "$W/paras.jsonl" <<'PY' || fail "could not write the paragraphs"
import json, re, sys
text = open(sys.argv[1]).read()
with open(sys.argv[2], "w") as out:
    for p in re.findall(r".*?\n\n|.+$", text, re.S):
        out.write(json.dumps({"text": p}) + "\n")
PY
"$HONE" tokenize --tokenizer "$TOK" --input "$W/paras.jsonl" --output "$W/paras_ids.jsonl" --add-special-tokens false \
    2>"$W/err" || fail "tokenize of the paragraphs failed: $(cat "$W/err")"
want=$(/usr/bin/python3 -c 'import json,sys; print(sum(len(json.loads(l)["ids"]) for l in open(sys.argv[1])))' \
    "$W/paras_ids.jsonl")
"$HONE" bench tokenize --tokenizer "$TOK" --data "$W/corpus.txt" --repeat 2 --threads 2 --json >"$W/bench.json" \
    2>"$W/err" || fail "bench tokenize failed: $(cat "$W/err")"
got=$(/usr/bin/python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["tokens"], r["paragraphs"])' \
    "$W/bench.json")
[ "$got" = "$want 3" ] || fail "bench tokenize: $(cat "$W/bench.json"), want $want tokens in 3 paragraphs"

printf '%s\n' '{"text": "ok"}' '{"txt": "no"}' >"$W/bad.jsonl"
if "$HONE" tokenize --tokenizer "$TOK" --input "$W/bad.jsonl" --output "$W/o.jsonl" 2>"$W/err"; then
    fail "a line without \"text\" was accepted"
fi
grep -q 'bad.jsonl:2' "$W/err" || fail "the error does not name file:line: $(cat "$W/err")"
[ ! -e "$W/o.jsonl" ] || fail "a failed run left a partial output file"
echo "PASS: tokenize"
