#!/bin/sh
# hone data convert: every format to canonical JSONL with the counts on stderr (--json: one object on stdout);
# converting the output again changes nothing; .gz reads as the plain file; bad input names file:line; strict
# mode turns drops into errors; a failed run leaves no output file.
set -eu
. "$(dirname "$0")/lib/common.sh"
setup "$@"
FIX=tests/fixtures/dataset

# convert IN OUT [options...]: converts with --json; the counts are in $W/stdout.
convert() {
    _in=$1
    _out=$2
    shift 2
    run_ok "convert $_in" "$HONE" data convert --data "$_in" --output "$_out" --json "$@"
}

check "every hand-written format converts, and converting the result again gives the same bytes"
for f in alpaca.json sharegpt.json messages.jsonl dolly.jsonl oasst.jsonl sni_task.json sni_rows.jsonl \
    self_instruct.jsonl text.jsonl tokens.jsonl pref_strings.jsonl pref_alpaca.jsonl pref_lists.jsonl hh.jsonl \
    dpo_sharegpt.json kto.jsonl kto_alpaca.json; do
    convert "$FIX/$f" "$W/once.jsonl"
    examples=$(json_num examples <"$W/stdout")
    [ "$(wc -l <"$W/once.jsonl")" -eq "$examples" ] || fail "$f: $examples examples but $(wc -l <"$W/once.jsonl") lines"
    convert "$W/once.jsonl" "$W/twice.jsonl"
    [ "$(json_num examples <"$W/stdout")" = "$examples" ] || fail "$f: the canonical file has other counts"
    [ "$(json_num dropped <"$W/stdout")" = 0 ] || fail "$f: the canonical file drops rows"
    cmp -s "$W/once.jsonl" "$W/twice.jsonl" || fail "$f: convert(convert(x)) != convert(x)"
done

check "counts: rows read, examples written, drops by reason, on stderr and as JSON"
convert "$FIX/sharegpt.json" "$W/out.jsonl"
json_valid "$W/stdout" || fail "--json printed invalid JSON: $(cat "$W/stdout")"
grep -q '"format":"sharegpt"' "$W/stdout" || fail "no format in $(cat "$W/stdout")"
[ "$(json_num rows <"$W/stdout")" = 7 ] && [ "$(json_num examples <"$W/stdout")" = 3 ] &&
    [ "$(json_num dropped <"$W/stdout")" = 4 ] && [ "$(json_num unknown_role <"$W/stdout")" = 1 ] &&
    [ "$(json_num bad_tool_call <"$W/stdout")" = 1 ] && [ "$(json_num bad_turns <"$W/stdout")" = 2 ] ||
    fail "wrong counts: $(cat "$W/stdout")"
grep -q "read 7 rows of $FIX/sharegpt.json (format sharegpt, sft): 3 examples written" "$W/stderr" ||
    fail "stderr summary: $(cat "$W/stderr")"
grep -q "dropped 4: unknown_role 1 (first at $FIX/sharegpt.json:8), bad_tool_call 1" "$W/stderr" ||
    fail "stderr drops: $(cat "$W/stderr")"
[ "$(sed -n 2p "$W/out.jsonl")" = '{"messages":[{"role":"user","content":"Weather in Paris?"},{"role":"assistant","content":"","tool_calls":[{"type":"function","function":{"name":"get_weather","arguments":{"city":"Paris","days":1.5}}}]},{"role":"tool","content":"{\"temp\": 21}"},{"role":"assistant","content":"21 degrees."}],"tools":[{"name":"get_weather","description":"Weather of a city","parameters":{"type":"object"}}]}' ] ||
    fail "canonical tool-call row: $(sed -n 2p "$W/out.jsonl")"
convert "$FIX/alpaca.json" "$W/a.jsonl"
grep -q "dropped 1: empty_answer 1 (first at $FIX/alpaca.json:10)" "$W/stderr" || fail "stderr drops: $(cat "$W/stderr")"
run_ok "plain output" "$HONE" data convert --data "$FIX/text.jsonl" --output "$W/t.jsonl"
[ ! -s "$W/stdout" ] || fail "without --json, stdout must stay empty: $(cat "$W/stdout")"

check "column mapping flags"
convert "$FIX/map_pref.jsonl" "$W/p.jsonl" --field-prompt question --field-chosen good --field-rejected bad
[ "$(cat "$W/p.jsonl")" = '{"prompt":[{"role":"user","content":"2+2?"}],"chosen":[{"role":"assistant","content":"4"}],"rejected":[{"role":"assistant","content":"5"}]}' ] ||
    fail "mapped preference row: $(cat "$W/p.jsonl")"
convert "$FIX/map_chat.jsonl" "$W/c.jsonl" --field-messages dialog --message-field-role speaker \
    --message-field-content text --roles-user customer --roles-assistant agent --roles-system narrator \
    --roles-tool api --field-tools functions
grep -q '"role":"tool","content":"3 left"' "$W/c.jsonl" || fail "mapped chat row: $(cat "$W/c.jsonl")"

check "examples/data-convert.yaml is accepted (its paths overridden)"
printf '%s\n' '{"question": "1+1?", "answer": "2"}' >"$W/qa.jsonl"
run_ok "examples/data-convert.yaml" "$HONE" data convert --config examples/data-convert.yaml --data "$W/qa.jsonl" \
    --output "$W/qa.out.jsonl"
[ "$(cat "$W/qa.out.jsonl")" = '{"messages":[{"role":"user","content":"1+1?"},{"role":"assistant","content":"2"}]}' ] ||
    fail "examples/data-convert.yaml: $(cat "$W/qa.out.jsonl")"

check ".gz reads as the plain file"
gzip -c "$FIX/messages.jsonl" >"$W/m.jsonl.gz"
convert "$FIX/messages.jsonl" "$W/plain.jsonl"
convert "$W/m.jsonl.gz" "$W/gz.jsonl"
cmp -s "$W/plain.jsonl" "$W/gz.jsonl" || fail "the .gz converts differently"

expect_error "malformed JSON names file:line" "bad.jsonl:2: invalid JSON" \
    sh -c "printf '{\"text\": \"a\"}\n{oops\n' >'$W/bad.jsonl' && '$HONE' data convert --data '$W/bad.jsonl' --output '$W/o.jsonl'"
[ ! -e "$W/o.jsonl" ] || fail "a failed conversion left an output file"
expect_error "strict mode: a drop is an error naming file:line and the reason" "sharegpt.json:8 (element 2): unknown_role" \
    "$HONE" data convert --data "$FIX/sharegpt.json" --output "$W/o.jsonl" --strict
expect_error "unknown format" "unknown dataset format 'csv'" \
    "$HONE" data convert --data "$FIX/text.jsonl" --output "$W/o.jsonl" --format csv
expect_error "unknown sub-command" "'shuffle' is not supported yet (sub-commands: convert, render, stats, preview)" "$HONE" data shuffle
expect_error "no sub-command" "usage: hone data SUBCOMMAND" "$HONE" data
expect_error "missing --output" "missing required option --output" "$HONE" data convert --data "$FIX/text.jsonl"

DATA=../shared/data/datasets
if [ ! -d "$DATA" ]; then
    echo "skipping the real files: ../shared/data is absent"
    echo "PASS: data_convert"
    exit 0
fi
check "real files: detected format, counts, idempotent"
# file expected-format expected-kind rows examples dropped [options]
while read -r f fmt kind rows examples dropped opts; do
    # shellcheck disable=SC2086
    convert "$DATA/$f" "$W/once.jsonl" $opts
    grep -q "\"format\":\"$fmt\",\"kind\":\"$kind\"" "$W/stdout" || fail "$f: $(cat "$W/stdout")"
    [ "$(json_num rows <"$W/stdout")" = "$rows" ] && [ "$(json_num examples <"$W/stdout")" = "$examples" ] &&
        [ "$(json_num dropped <"$W/stdout")" = "$dropped" ] || fail "$f: $(cat "$W/stdout")"
    convert "$W/once.jsonl" "$W/twice.jsonl"
    cmp -s "$W/once.jsonl" "$W/twice.jsonl" || fail "$f: convert(convert(x)) != convert(x)"
done <<EOF
instruct/alpaca_en_demo_999.json alpaca sft 999 999 0
instruct/dolly_12.json dolly sft 12 12 0
instruct/gsm8k_train.jsonl alpaca sft 7473 7473 0 --field-instruction question --field-output answer
instruct/selfinstruct_seed_tasks_175.jsonl self_instruct sft 175 175 0
chat/messages_500.jsonl messages sft 500 500 0
chat/sharegpt_toolcall_300.json sharegpt sft 300 300 0
chat/axolotl_conversation.vicuna_llama2.tokenized.json tokens tokens 1 1 0
preference/dpo_sharegpt_300.json sharegpt preference 300 300 0
preference/dpo_messages_10.jsonl preference preference 10 10 0
preference/hh_rlhf_harmless_test_2312.jsonl.gz preference preference 2312 2299 13
preference/kto_messages_300.json messages kto 300 300 0
preference/stack_exchange_paired_25.json preference preference 25 25 0 --field-prompt question --field-chosen response_j --field-rejected response_k
EOF
check "the real .gz converts like its plain JSONL"
gzip -dc "$DATA/preference/hh_rlhf_harmless_test_2312.jsonl.gz" >"$W/hh.jsonl"
convert "$DATA/preference/hh_rlhf_harmless_test_2312.jsonl.gz" "$W/a.jsonl"
convert "$W/hh.jsonl" "$W/b.jsonl"
cmp -s "$W/a.jsonl" "$W/b.jsonl" || fail "hh-rlhf .gz and plain JSONL convert differently"
echo "PASS: data_convert"
