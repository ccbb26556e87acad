#!/bin/sh
# Kill -9 safety and exact resume: a `hone pretrain` run killed with SIGKILL again and again at random moments (while
# loading, training and writing checkpoints) and restarted each time with --resume-from-checkpoint auto ends with the
# bytes of an uninterrupted run; every checkpoint folder that exists after a kill is complete. Then report.html,
# checkpoint pruning, resume errors, and hone sft's validation split, eval loss lines and length grouping.
set -eu
. "$(dirname "$0")/lib/common.sh"
setup "$@"
DATA=../shared/data
if [ ! -d "$DATA" ]; then
    echo "skipping: $DATA is absent (the model with a tokenizer and the datasets live there)"
    exit 77
fi
MODEL=$DATA/models/fake_gpt2
# The pretrain runs use fake_gpt2's weights without its tokenizer files (a checkpoint copies them: 3 MB each), on
# random token ids.
mkdir "$W/model"
cp "$MODEL/config.json" "$MODEL/model.safetensors" "$W/model/"
awk 'BEGIN { srand(1); for (l = 0; l < 40; l++) { printf "{\"input_ids\": ["
    for (i = 0; i < 100; i++) printf "%s%d", (i ? ", " : ""), int(rand() * 2000); print "]}" } }' >"$W/ids.jsonl"
# 16 steps, shuffled, gradient accumulation 2, a checkpoint every 2 steps of which the newest 3 are kept.
set -- pretrain --model "$W/model" --data "$W/ids.jsonl" --sequence-len 32 --micro-batch-size 2 \
    --gradient-accumulation-steps 2 --max-steps 16 --save-steps 2 --save-total-limit 3 --learning-rate 1e-3 \
    --lr-scheduler cosine --warmup-steps 3 --seed 7 --threads 1 --dataset-prepared-path none

# metrics.jsonl without its timing fields: what two runs of the same settings must share.
metrics_core() {
    sed -e 's/, "tokens_per_second".*//' -e 's/, "eval_seconds".*//' "$1"
}

# checkpoints_complete DIR: every checkpoint-N folder holds all its files, well-formed, for step N.
checkpoints_complete() {
    for _d in "$1"/checkpoint-*; do
        [ -e "$_d" ] || continue
        case "$_d" in *.old.*) continue ;; esac
        _n=${_d##*/checkpoint-}
        for _f in model.safetensors config.json optimizer.safetensors trainer_state.json; do
            [ -s "$_d/$_f" ] || fail "after a kill, $_d exists without $_f: a partial checkpoint"
        done
        json_valid "$_d/trainer_state.json" || fail "$_d/trainer_state.json is not valid JSON"
        [ "$(json_num global_step <"$_d/trainer_state.json")" = "$_n" ] || fail "$_d/trainer_state.json: wrong step"
        safetensors_valid "$_d/model.safetensors" >/dev/null
        safetensors_valid "$_d/optimizer.safetensors" >/dev/null
    done
}

check "an uninterrupted run"
start=$(date +%s%N)
run_ok "uninterrupted" "$HONE" "$@" --output-dir "$W/ref"
ms=$((($(date +%s%N) - start) / 1000000))
echo "   ok: $ms ms"

check "killed with SIGKILL at random moments and resumed with auto until it finishes: the same bytes"
# Odd runs are killed after a random delay (up to a quarter of the uninterrupted run); even runs as soon as a
# checkpoint is being written (its .partial folder appears), so that kills land inside checkpoint writes. After 12
# kills, at least one of them inside a checkpoint write, the next run that has a checkpoint to resume from is left
# to finish.
kills=0 partial=0 resumed=0 runs=0 rc=1
while [ "$rc" -ne 0 ]; do
    runs=$((runs + 1))
    [ "$runs" -le 80 ] || fail "the run did not finish after 80 restarts"
    "$HONE" "$@" --output-dir "$W/run" --resume-from-checkpoint auto >"$W/log" 2>&1 &
    pid=$!
    # The last run must have a complete checkpoint to resume from: a run that got to the end before its kill (a
    # fast machine) leaves none, since its folder is removed.
    if [ "$kills" -ge 12 ] && [ "$partial" -ge 1 ] && ls -d "$W/run"/checkpoint-[0-9]* >/dev/null 2>&1; then
        rc=0
        wait "$pid" || rc=$?
        [ "$rc" -eq 0 ] || fail "the last resumed run failed with exit status $rc: $(cat "$W/log")"
        grep -q "resuming from .*checkpoint-" "$W/log" || fail "the last run did not resume: $(cat "$W/log")"
        break
    fi
    if [ $((runs % 2)) -eq 0 ]; then
        while kill -0 "$pid" 2>/dev/null && ! ls -a "$W/run" 2>/dev/null | grep -q '\.partial$'; do sleep 0.002; done
    else
        sleep "$(awk -v seed="$runs$$" -v ms="$ms" 'BEGIN { srand(seed); printf "%.3f", rand() * ms / 4000 }')"
    fi
    kill -9 "$pid" 2>/dev/null || true
    rc=0
    wait "$pid" 2>/dev/null || rc=$?
    grep -q "resuming from .*checkpoint-" "$W/log" && resumed=$((resumed + 1))
    if [ "$rc" -eq 137 ]; then
        kills=$((kills + 1))
        ls -a "$W/run" 2>/dev/null | grep -q '\.partial$' && partial=$((partial + 1))
        checkpoints_complete "$W/run"
    elif [ "$rc" -eq 0 ]; then
        # the run got to the end before its kill (a fast machine): start another one, the counts go on
        rm -rf "$W/run"
        rc=1
    elif [ "$rc" -ne 0 ]; then
        sed 's/^/  log: /' "$W/log" >&2
        fail "a resumed run failed with exit status $rc"
    fi
done
[ "$partial" -ge 1 ] || fail "no kill landed inside a checkpoint write ($kills kills)"
[ "$resumed" -ge 3 ] || fail "only $resumed of $runs runs resumed from a checkpoint"
cmp -s "$W/ref/model.safetensors" "$W/run/model.safetensors" ||
    fail "after $kills kills and resumes the final model differs from the uninterrupted run's"
metrics_core "$W/ref/metrics.jsonl" >"$W/m_ref"
metrics_core "$W/run/metrics.jsonl" >"$W/m_run"
cmp -s "$W/m_ref" "$W/m_run" || fail "metrics.jsonl differs from the uninterrupted run's: $(diff "$W/m_ref" "$W/m_run")"
[ "$(wc -l <"$W/run/metrics.jsonl")" -eq 16 ] || fail "metrics.jsonl should hold 16 lines after the resumes"
echo "   ok: $kills kills ($partial during a checkpoint write, left as .partial folders and never resumed from)," \
    "$runs runs ($resumed resumed); model.safetensors and metrics.jsonl identical"

check "save_total_limit 3: only the newest three checkpoints remain, and no temporary folder"
[ "$(ls -d "$W/ref"/checkpoint-* | wc -l)" -eq 3 ] || fail "expected 3 checkpoints: $(ls "$W/ref")"
for s in 10 12 14; do [ -d "$W/ref/checkpoint-$s" ] || fail "checkpoint-$s is missing"; done
ls -a "$W/ref" | grep -q -e '\.partial$' -e '\.old\.' && fail "a temporary folder was left in $W/ref"
checkpoints_complete "$W/ref"

check "report.html: one self-contained page with four inline SVG charts and the resolved config"
R=$W/ref/report.html
[ -s "$R" ] || fail "no report.html"
head -n 1 "$R" | grep -q '^<!DOCTYPE html>$' || fail "report.html does not start with <!DOCTYPE html>"
[ "$(tail -n 1 "$R")" = "</html>" ] || fail "report.html does not end with </html>"
for tag in html head body table pre svg h1; do
    o=$(grep -o "<$tag[ >]" "$R" | wc -l)
    c=$(grep -o "</$tag>" "$R" | wc -l)
    [ "$o" -eq "$c" ] && [ "$o" -ge 1 ] || fail "report.html: $o <$tag> but $c </$tag>"
done
[ "$(grep -o '<svg' "$R" | wc -l)" -eq 4 ] || fail "report.html should hold 4 charts"
[ "$(grep -o '<polyline' "$R" | wc -l)" -ge 4 ] || fail "report.html charts have no curves"
grep -q '<script' "$R" && fail "report.html has a script"
grep -q 'http://www.w3.org/2000/svg' "$R" || fail "report.html: SVG without its namespace"
grep -Eo '(src|href)="[^"]*"' "$R" | grep -q . && fail "report.html refers to outside resources"
grep -q '&quot;save_total_limit&quot;: 3' "$R" || fail "report.html does not show the resolved config"
grep -q 'peak memory' "$R" || fail "report.html does not show the peak memory"
grep -q '"peak_memory_mb": [0-9]' "$W/ref/metrics.jsonl" || fail "metrics.jsonl has no peak_memory_mb"
grep -q "peak memory [0-9]* MiB" "$W/stderr" || fail "the summary line does not give the peak memory"
echo "   ok"

check "resuming with other settings is refused, naming the setting; a bad path is an error"
expect_error "resume with another learning rate" \
    "learning_rate was 0.001 when the checkpoint was written and is 0.002" \
    "$HONE" "$@" --output-dir "$W/ref" --resume-from-checkpoint auto --learning-rate 2e-3
expect_error "resume with another batch" "micro_batch_size was 2" \
    "$HONE" "$@" --output-dir "$W/ref" --resume-from-checkpoint auto --micro-batch-size 1
expect_error "resume from a folder that does not exist" "is not a folder" \
    "$HONE" "$@" --output-dir "$W/ref" --resume-from-checkpoint "$W/nowhere"
run_ok "resume from an explicit checkpoint" "$HONE" "$@" --output-dir "$W/ref" \
    --resume-from-checkpoint "$W/ref/checkpoint-10"
grep -q "resuming from .*checkpoint-10 at step 10" "$W/stderr" || fail "did not resume at step 10: $(cat "$W/stderr")"
cmp -s "$W/run/model.safetensors" "$W/ref/model.safetensors" || fail "resuming from checkpoint-10 changed the result"
checkpoints_complete "$W/ref" # checkpoint-12 and -14 were written again over the old ones

check "hone sft: val_set_size splits off an eval set, eval_loss every eval_steps and at the end; group_by_length"
run_ok "sft with eval" "$HONE" sft --model "$MODEL" --datasets "$DATA/datasets/instruct/alpaca_23.json" \
    --output-dir "$W/sft" --sequence-len 256 --micro-batch-size 2 --max-steps 5 --learning-rate 1e-3 --threads 1 \
    --val-set-size 0.25 --eval-steps 2 --sample-packing false --group-by-length true
grep -q "eval set: 6 examples (17 left for training)" "$W/stderr" ||
    fail "the eval set (ceil(0.25 x 23) = 6 examples) is not reported: $(cat "$W/stderr")"
[ "$(grep -c '"eval_loss"' "$W/sft/metrics.jsonl")" -eq 3 ] || fail "expected eval lines at steps 2, 4 and 5"
[ "$(sed -n 's/^{"step": \([0-9]*\), .*"eval_loss".*/\1/p' "$W/sft/metrics.jsonl" | tr '\n' ' ')" = "2 4 5 " ] ||
    fail "eval lines at the wrong steps: $(grep eval_loss "$W/sft/metrics.jsonl")"
grep -q "eval_loss [0-9]" "$W/stderr" || fail "the progress shows no eval_loss"
grep -q "<svg" "$W/sft/report.html" && grep -q "eval loss" "$W/sft/report.html" || fail "no eval curve in the report"
run_ok "sft with test_datasets" "$HONE" sft --model "$MODEL" --datasets "$DATA/datasets/instruct/alpaca_23.json" \
    --test-datasets "$DATA/datasets/instruct/dolly_12.json" --output-dir "$W/sft2" --sequence-len 256 \
    --max-steps 2 --threads 1
grep -q "eval set: 12 examples (23 left for training)" "$W/stderr" ||
    fail "test_datasets is not the eval set: $(cat "$W/stderr")"
[ "$(grep -c '"eval_loss"' "$W/sft2/metrics.jsonl")" -eq 1 ] || fail "expected one eval line (at the end)"
expect_error "eval_steps without an eval set" "no eval set" "$HONE" sft --model "$MODEL" \
    --datasets "$DATA/datasets/instruct/alpaca_23.json" --output-dir "$W/x" --sequence-len 256 --eval-steps 2 \
    --threads 1
expect_error "val_set_size and test_datasets together" "not both" "$HONE" sft --model "$MODEL" \
    --datasets "$DATA/datasets/instruct/alpaca_23.json" --output-dir "$W/x" --sequence-len 256 --val-set-size 0.1 \
    --test-datasets "$DATA/datasets/instruct/dolly_12.json" --threads 1
echo "PASS: resume"
