#!/bin/sh
# Bad input gives a clear error and a non-zero exit status (1 or 2), never a crash: every case checks the exit
# status, that stdout stays empty and that stderr holds a helpful fragment (the file, line, option or value at
# fault, or a hint).
#
#   sh tests/integration/cli_errors.sh build/hone     (from the repository root)
set -eu
. "$(dirname "$0")/lib/common.sh"
setup "$@"

check "setup: a llama-tiny model folder and its byte-level train.bin from hone demo"
run_ok "demo" "$HONE" demo --text-only --seconds 0 --max-steps 1 --output-dir "$W/m" --threads 1
M=$W/m
printf '{"input_ids": [116, 104, 101, 32, 99, 97, 116]}\n' >"$W/ok.jsonl"
run_ok "a valid eval" "$HONE" eval --model "$M" --data "$W/ok.jsonl" --sequence-len 4 --threads 1

echo "== command line"
expect_error "unknown command" "unknown command 'frobnicate'" "$HONE" frobnicate
expect_error "no command at all" "usage: hone COMMAND" "$HONE"
expect_error "misspelled option: did-you-mean" "unknown option --learning-rat (did you mean --learning-rate?)" \
    "$HONE" pretrain --model "$M" --data "$M/train.bin" --output-dir "$W/o" --learning-rat 1e-3
expect_error "option of another command" "unknown option --temperature" \
    "$HONE" eval --model "$M" --data "$W/ok.jsonl" --temperature 0.5
expect_error "a bare word instead of --key value" "unexpected argument" \
    "$HONE" eval --model "$M" "$W/ok.jsonl"
expect_error "option without its value" "--sequence-len: missing value" \
    "$HONE" eval --model "$M" --data "$W/ok.jsonl" --sequence-len
expect_error "integer option given a word" "--sequence-len: expected an integer, got 'four'" \
    "$HONE" eval --model "$M" --data "$W/ok.jsonl" --sequence-len four
expect_error "number option given nan" "--learning-rate: expected a finite number, got 'nan'" \
    "$HONE" pretrain --model "$M" --data "$M/train.bin" --output-dir "$W/o" --learning-rate nan
expect_error "boolean option given a word" "--json: expected true or false" \
    "$HONE" eval --model "$M" --data "$W/ok.jsonl" --json maybe
expect_error "missing --model" "missing required option --model" "$HONE" eval --data "$W/ok.jsonl"
expect_error "both --model and --base-model" "give --model or --base-model, not both" \
    "$HONE" eval --model "$M" --base-model "$M" --data "$W/ok.jsonl"
expect_error "missing --data" "--data" "$HONE" eval --model "$M"
expect_error "pretrain without --output-dir" "missing required option --output-dir" \
    "$HONE" pretrain --model "$M" --data "$W/ok.jsonl"
expect_error "unknown lr_scheduler" "unknown lr_scheduler 'cosinus'" \
    "$HONE" pretrain --model "$M" --data "$M/train.bin" --output-dir "$W/o" --lr-scheduler cosinus
expect_error "unknown optimizer" "unknown optimizer 'adam'" \
    "$HONE" pretrain --model "$M" --data "$M/train.bin" --output-dir "$W/o" --optimizer adam

echo "== config files"
expect_error "missing --config file" "nope.yaml: cannot open" "$HONE" eval --config "$W/nope.yaml"
printf 'model: %s\ndata: %s\nsequence_lenght: 4\n' "$M" "$W/ok.jsonl" >"$W/typo.yaml"
expect_error "misspelled key in the config file: file:line and did-you-mean" \
    "typo.yaml:3: unknown key 'sequence_lenght' (did you mean 'sequence_len'?)" "$HONE" eval --config "$W/typo.yaml"
printf 'model: "%s\n' "$M" >"$W/broken.yaml"
expect_error "invalid YAML names file:line" "broken.yaml:2: invalid YAML" "$HONE" eval --config "$W/broken.yaml"
printf 'model: [%s]\n' "$M" >"$W/list.yaml"
expect_error "a list where one value is expected" "list.yaml:1: model: expected a single value, got a list" \
    "$HONE" eval --config "$W/list.yaml"

echo "== settings out of range"
expect_error "sequence_len 1" "sequence_len must be at least 2" \
    "$HONE" eval --model "$M" --data "$W/ok.jsonl" --sequence-len 1
expect_error "micro_batch_size 0" "micro_batch_size must be at least 1" \
    "$HONE" eval --model "$M" --data "$W/ok.jsonl" --micro-batch-size 0
expect_error "gradient_accumulation_steps 0" "gradient_accumulation_steps must be at least 1" \
    "$HONE" pretrain --model "$M" --data "$M/train.bin" --output-dir "$W/o" --gradient-accumulation-steps 0
expect_error "warmup_ratio above 1" "warmup_ratio must be in [0, 1], got 2" \
    "$HONE" pretrain --model "$M" --data "$M/train.bin" --output-dir "$W/o" --warmup-ratio 2
expect_error "adam_beta1 of 1" "beta1 must be in [0, 1), got 1" \
    "$HONE" pretrain --model "$M" --data "$M/train.bin" --output-dir "$W/o" --adam-beta1 1
expect_error "negative learning rate" "learning_rate and max_grad_norm must be non-negative" \
    "$HONE" pretrain --model "$M" --data "$M/train.bin" --output-dir "$W/o" --learning-rate -1
expect_error "data shorter than one training step" "use more data or smaller settings" \
    "$HONE" pretrain --model "$M" --data "$W/ok.jsonl" --output-dir "$W/o" --sequence-len 64 --max-steps 1
expect_error "five non-finite steps in a row stop the run" \
    "5 optimizer steps in a row had a non-finite loss or gradient (last at step 6); stopping" \
    "$HONE" pretrain --model "$M" --data "$M/train.bin" --output-dir "$W/diverged" --sequence-len 64 --max-steps 10 \
    --learning-rate 1e30 --threads 1
printf 'x\n' >"$W/afile"
expect_error "output_dir is a file" "exists and is not a directory" \
    "$HONE" pretrain --model "$M" --data "$M/train.bin" --output-dir "$W/afile" --sequence-len 64 --max-steps 1

echo "== model folders"
expect_error "nonexistent model folder" "no-such-model/config.json: cannot open" \
    "$HONE" eval --model "$W/no-such-model" --data "$W/ok.jsonl"
mkdir "$W/bert"
sed 's/"model_type": *"llama"/"model_type": "bert"/' "$M/config.json" >"$W/bert/config.json"
cp "$M/model.safetensors" "$W/bert/"
expect_error "unsupported model_type" 'model_type "bert" is not supported' \
    "$HONE" eval --model "$W/bert" --data "$W/ok.jsonl"
mkdir "$W/badjson"
head -c 100 "$M/config.json" >"$W/badjson/config.json"
cp "$M/model.safetensors" "$W/badjson/"
expect_error "config.json that is not valid JSON" "badjson/config.json" \
    "$HONE" eval --model "$W/badjson" --data "$W/ok.jsonl"
mkdir "$W/trunc"
cp "$M/config.json" "$W/trunc/"
head -c 100000 "$M/model.safetensors" >"$W/trunc/model.safetensors"
expect_error "truncated model.safetensors" "trunc/model.safetensors: tensor" \
    "$HONE" eval --model "$W/trunc" --data "$W/ok.jsonl"
grep -q "truncated" "$W/stderr" || fail "the truncated-safetensors error does not say 'truncated': $(cat "$W/stderr")"
mkdir "$W/noweights"
cp "$M/config.json" "$W/noweights/"
mkdir "$W/nan"
sed 's/"rms_norm_eps": *[-0-9.e]*/"rms_norm_eps": -1/' "$M/config.json" >"$W/nan/config.json"
cp "$M/model.safetensors" "$W/nan/"
grep -q '"rms_norm_eps": -1' "$W/nan/config.json" || fail "could not set rms_norm_eps in config.json"
expect_error "negative rms_norm_eps" "norm epsilon must be a positive number" "$HONE" eval --model "$W/nan" --data "$W/ok.jsonl" --json
expect_error "model folder without weights" "noweights" "$HONE" eval --model "$W/noweights" --data "$W/ok.jsonl"
mkdir "$W/shape"
sed 's/"hidden_size": *64/"hidden_size": 32/' "$M/config.json" >"$W/shape/config.json"
cp "$M/model.safetensors" "$W/shape/"
expect_error "weights that do not match config.json" "shape/model.safetensors" \
    "$HONE" eval --model "$W/shape" --data "$W/ok.jsonl"

echo "== token files"
expect_error "nonexistent data file" "nofile.bin: cannot open" "$HONE" eval --model "$M" --data "$W/nofile.bin"
{
    printf 'garbage!'
    head -c 1016 /dev/zero
    printf 'ab'
} >"$W/magic.bin"
expect_error "shard with a bad magic" "magic.bin: bad magic" "$HONE" eval --model "$M" --data "$W/magic.bin"
head -c 5000 "$M/train.bin" >"$W/trunc.bin"
expect_error "truncated shard" "trunc.bin: truncated: header says 1048576 tokens" \
    "$HONE" eval --model "$M" --data "$W/trunc.bin"
slice_shard "$M/train.bin" 0 100 "$W/trailing.bin"
printf 'xy' >>"$W/trailing.bin"
expect_error "shard with trailing bytes" "trailing.bin" "$HONE" eval --model "$M" --data "$W/trailing.bin"
write_shard_header "$W/version.bin" 20240520 7 2
printf 'ab' >>"$W/version.bin"
expect_error "shard whose version does not match its magic" "version.bin" \
    "$HONE" eval --model "$M" --data "$W/version.bin"
: >"$W/empty.bin"
expect_error "empty shard file" "empty.bin: truncated" "$HONE" eval --model "$M" --data "$W/empty.bin"
write_shard_header "$W/oov.bin" 20240520 1 3
printf 'a\000b\000\001\001' >>"$W/oov.bin"
expect_error "shard with an id outside the vocabulary" "oov.bin" "$HONE" eval --model "$M" --data "$W/oov.bin"
grep -q "257" "$W/stderr" || fail "the out-of-vocabulary error does not name the id 257: $(cat "$W/stderr")"
printf '{"input_ids": [1, 2, 3]}\n{"input_ids": [4, 300, 5]}\n' >"$W/oov.jsonl"
expect_error "JSONL id outside the vocabulary names file:line" \
    "oov.jsonl:2: token id 300 is outside the vocabulary (size 256)" "$HONE" eval --model "$M" --data "$W/oov.jsonl"
expect_error "pretrain checks ids too" "oov.jsonl:2: token id 300" \
    "$HONE" pretrain --model "$M" --data "$W/oov.jsonl" --output-dir "$W/o"
printf '{"input_ids": [1, 2, 3]}\n{"input_ids": [1, 2\n' >"$W/badline.jsonl"
expect_error "JSONL line that is not JSON" "badline.jsonl:2: invalid JSON" \
    "$HONE" eval --model "$M" --data "$W/badline.jsonl"
printf '{"txt": "hello"}\n' >"$W/noids.jsonl"
expect_error "JSONL row without input_ids or text" 'noids.jsonl:1: missing "input_ids" (or a string "text")' \
    "$HONE" eval --model "$M" --data "$W/noids.jsonl"
printf '{"text": "hello"}\n' >"$W/text.jsonl"
expect_error "text rows for a model without tokenizer.json" 'text.jsonl:1: text needs a tokenizer' \
    "$HONE" eval --model "$M" --data "$W/text.jsonl"
printf '{"input_ids": [1, -2, 3]}\n' >"$W/neg.jsonl"
expect_error "negative id" "neg.jsonl:1: input_ids[1] = -2 is negative" "$HONE" eval --model "$M" --data "$W/neg.jsonl"
printf '{"input_ids": [1, 2.5, 3]}\n' >"$W/float.jsonl"
expect_error "fractional id" "float.jsonl:1: input_ids[1] is not an integer" \
    "$HONE" eval --model "$M" --data "$W/float.jsonl"
printf '{"input_ids": [7]}\n' >"$W/one.jsonl"
expect_error "a single token cannot be scored" "at least 2 are needed" "$HONE" eval --model "$M" --data "$W/one.jsonl"
printf '116 104 101\n' >"$W/ids.csv"
expect_error "unknown token file extension" "ids.csv: unknown token file format" \
    "$HONE" eval --model "$M" --data "$W/ids.csv"

echo "== generate"
expect_error "--prompt text for a model without tokenizer.json" "has no tokenizer.json; give --tokenizer" \
    "$HONE" generate --model "$M" --prompt "the cat"
expect_error "no prompt" "give exactly one of --prompt TEXT and --prompt-ids" "$HONE" generate --model "$M"
expect_error "both prompts" "give exactly one of --prompt TEXT and --prompt-ids" \
    "$HONE" generate --model "$M" --prompt "the cat" --prompt-ids 1
expect_error "prompt id that is not a number" "--prompt-ids item 2 ('x') is not a token id" \
    "$HONE" generate --model "$M" --prompt-ids 1,x,3
expect_error "negative prompt id" "--prompt-ids item 1 ('-1') is not a token id" \
    "$HONE" generate --model "$M" --prompt-ids -1
expect_error "empty item in the prompt list" "empty item" "$HONE" generate --model "$M" --prompt-ids 1,,3
expect_error "prompt id outside the vocabulary" "token id 300 is outside the vocabulary (size 256)" \
    "$HONE" generate --model "$M" --prompt-ids 1,2,300
expect_error "negative temperature" "temperature >= 0" \
    "$HONE" generate --model "$M" --prompt-ids 1,2 --temperature -1
expect_error "top_p above 1" "0 <= top_p <= 1" "$HONE" generate --model "$M" --prompt-ids 1,2 --top-p 1.5
expect_error "negative max_new_tokens" "max_new_tokens >= 0" \
    "$HONE" generate --model "$M" --prompt-ids 1,2 --max-new-tokens -3

echo "== bench"
expect_error "bench without a benchmark name" "expected a benchmark name" "$HONE" bench
expect_error "unknown bench preset lists the presets" "unknown model preset 'gpt2-huge' (choose one of:" \
    "$HONE" bench train --preset gpt2-huge
expect_error "bench preset of another architecture" "is not a llama model" \
    "$HONE" bench train --preset gpt2-tiny --arch llama

echo "PASS: cli_errors"
