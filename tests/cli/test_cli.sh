#!/bin/bash
# The command-line programs as a user runs them (charrnn-convert, built next
# to charrnn-sample, in the errors case).
#
#   test_cli.sh CASE CHARRNN_TRAIN CHARRNN_SAMPLE ST_TOOL SOURCE_ROOT
#
# CASE is one of: errors, resume, sample, e2e, init, stream, bits, bf16. Every model here is tiny and
# every run uses --threads 1, so each case takes seconds even on a busy machine.
set -eu

case_name=$1
TRAIN=$2
SAMPLE=$3
ST_TOOL=$4
SRC=$5

WORK=$(mktemp -d /tmp/charrnn-cli-XXXXXX)
trap 'rm -rf "$WORK"' EXIT

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# run_err EXPECTED_SUBSTRING CMD...: the command must fail with a non-zero exit
# status below 128 (>= 128 is a crash or a signal) and say EXPECTED on stderr.
run_err() {
    local want=$1
    shift
    local rc=0
    "$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
    if [ "$rc" -eq 0 ]; then
        fail "succeeded, expected an error ($want): $*"
    fi
    if [ "$rc" -ge 128 ]; then
        fail "crashed with status $rc: $* -- $(cat "$WORK/err")"
    fi
    if ! grep -qF -- "$want" "$WORK/err"; then
        fail "stderr of '$*' lacks '$want': $(cat "$WORK/err")"
    fi
    if [ -s "$WORK/out" ]; then
        fail "wrote to stdout on error: $*"
    fi
    echo "ok: rc $rc, '$want'"
}

# A tiny, fast training run (extra flags appended).
tiny_train() {
    "$TRAIN" --cell lstm --rnn-size 16 --num-layers 1 --seq-length 8 --batch-size 4 \
        --threads 1 --quiet "$@"
}

# bits_same DIR_A DIR_B WHAT: the two runs' checkpoints (parameters, moments,
# state) and loss.svg are the same bytes.
bits_same() {
    python3 "$ST_TOOL" compare "$1/latest.safetensors" "$2/latest.safetensors" >"$WORK/cmp" ||
        fail "$3: $(cat "$WORK/cmp")"
    cmp -s "$1/loss.svg" "$2/loss.svg" || fail "$3: loss.svg differs"
    echo "ok: $3"
}

# bits_differ DIR_A DIR_B WHAT: the checkpoints' parameters differ.
bits_differ() {
    if python3 "$ST_TOOL" compare "$1/latest.safetensors" "$2/latest.safetensors" >/dev/null; then
        fail "$3"
    fi
}

text_file() { # text_file PATH LINES SEED
    python3 "$ST_TOOL" gen-text "$2" "$3" >"$1"
}

case_errors() {
    local T="$WORK/text.txt" CK="$WORK/ck"
    text_file "$T" 200 1

    echo "== charrnn-train: bad data"
    run_err "cannot open $WORK/missing.txt" tiny_train --data "$WORK/missing.txt" --checkpoint-dir "$CK"
    : >"$WORK/empty.txt"
    run_err "is empty" tiny_train --data "$WORK/empty.txt" --checkpoint-dir "$CK"
    printf 'hello w\xc3\x28rld\n' >"$WORK/bad.txt"
    run_err "invalid UTF-8 at byte offset 7" tiny_train --data "$WORK/bad.txt" --checkpoint-dir "$CK"
    printf '\xef\xbb\xbfok\xff' >"$WORK/bad2.txt"
    run_err "invalid UTF-8 at byte offset 5" tiny_train --data "$WORK/bad2.txt" --checkpoint-dir "$CK"
    printf 'just a few characters\n' >"$WORK/small.txt"
    run_err "one batch of 50 x 50 needs at least 2501" \
        "$TRAIN" --data "$WORK/small.txt" --checkpoint-dir "$CK" --quiet
    run_err "is not a regular file" tiny_train --data "$WORK" --checkpoint-dir "$CK"
    # NUL would end the text of every response (C strings) while still counted.
    printf 'hello\000world\n' >"$WORK/nul.txt"
    run_err "U+0000 (NUL) at byte offset 5" tiny_train --data "$WORK/nul.txt" --checkpoint-dir "$CK"

    echo "== charrnn-train: bad flags and values"
    run_err "unknown argument '--frobnicate'" tiny_train --data "$T" --checkpoint-dir "$CK" --frobnicate
    run_err "--data and --checkpoint-dir are required" "$TRAIN" --rnn-size 8
    run_err "--rnn-size: 0 is out of range" tiny_train --data "$T" --checkpoint-dir "$CK" --rnn-size 0
    run_err "--rnn-size: '12abc' is not an integer" tiny_train --data "$T" --checkpoint-dir "$CK" --rnn-size 12abc
    run_err "--dropout: 1.5 is out of range" tiny_train --data "$T" --checkpoint-dir "$CK" --dropout 1.5
    run_err "--dropout: 'nan' is not a number" tiny_train --data "$T" --checkpoint-dir "$CK" --dropout nan
    run_err "--learning-rate: 'abc' is not a number" tiny_train --data "$T" --checkpoint-dir "$CK" --learning-rate abc
    run_err "--seed: '-1' is not an unsigned integer" tiny_train --data "$T" --checkpoint-dir "$CK" --seed -1
    run_err "--seed: '99999999999999999999' is not an unsigned 64-bit integer" \
        tiny_train --data "$T" --checkpoint-dir "$CK" --seed 99999999999999999999
    # The training GEMMs are charrnn's own, single-threaded: no BLAS threads.
    run_err "unknown argument '--blas-threads'" tiny_train --data "$T" --checkpoint-dir "$CK" --blas-threads 2
    # CHARRNN_KERNEL picks the GEMMs' instruction set too: a bad value stops
    # charrnn-train before any work (no log, no checkpoint directory).
    run_err "CHARRNN_KERNEL: unknown inference kernel 'avx9' (auto, " \
        env CHARRNN_KERNEL=avx9 "$TRAIN" --data "$T" --checkpoint-dir "$WORK/ck-kernel" \
        --log "$WORK/kernel.log" --quiet
    [ ! -e "$WORK/ck-kernel" ] && [ ! -e "$WORK/kernel.log" ] ||
        fail "a bad CHARRNN_KERNEL left a checkpoint directory or a log behind"
    run_err "--num-layers: 17 is out of range" tiny_train --data "$T" --checkpoint-dir "$CK" --num-layers 17
    run_err "--cell: 'lstn' is not lstm, gru or rnn" tiny_train --data "$T" --checkpoint-dir "$CK" --cell lstn
    run_err "--optimizer: 'sgd' is not adam or rmsprop" tiny_train --data "$T" --checkpoint-dir "$CK" --optimizer sgd
    run_err "--max-iters needs a value" tiny_train --data "$T" --checkpoint-dir "$CK" --max-iters
    run_err "--train-frac + --val-frac must be at most 1" \
        tiny_train --data "$T" --checkpoint-dir "$CK" --train-frac 0.9 --val-frac 0.2
    run_err "cannot open $WORK/none.safetensors" \
        tiny_train --data "$T" --checkpoint-dir "$CK" --init-from "$WORK/none.safetensors"
    run_err "--init-range: 11 is out of range" tiny_train --data "$T" --checkpoint-dir "$CK" --init-range 11
    run_err "--init-range: -0.1 is out of range" tiny_train --data "$T" --checkpoint-dir "$CK" --init-range -0.1
    run_err "--forget-bias: 'off' is not a number" tiny_train --data "$T" --checkpoint-dir "$CK" --forget-bias off
    run_err "--stream-eval-chars: -1 is out of range" \
        tiny_train --data "$T" --checkpoint-dir "$CK" --stream-eval-chars -1

    echo "== charrnn-train: every flag its --help lists is one it takes"
    "$TRAIN" --help >"$WORK/help"
    n=0
    for f in $(grep -oE '^  --[a-z-]+' "$WORK/help"); do
        [ "$f" = --help ] && continue
        rc=0
        "$TRAIN" "$f" >/dev/null 2>"$WORK/err" </dev/null || rc=$?
        if grep -qF "unknown argument" "$WORK/err"; then
            fail "--help lists $f but the parser does not take it"
        fi
        n=$((n + 1))
    done
    [ "$n" -ge 25 ] || fail "--help lists only $n flags"
    echo "ok: $n flags"

    echo "== a good checkpoint to break"
    tiny_train --data "$T" --checkpoint-dir "$CK" --max-iters 3 --seed 1
    local GOOD="$CK/latest.safetensors"
    [ -f "$GOOD" ] || fail "no latest.safetensors"
    "$SAMPLE" --checkpoint "$GOOD" --length 20 --seed 1 >/dev/null || fail "good checkpoint"

    echo "== charrnn-sample: bad checkpoints"
    run_err "cannot open $WORK/nope.safetensors" "$SAMPLE" --checkpoint "$WORK/nope.safetensors"
    local size
    size=$(stat -c %s "$GOOD")
    for n in 0 4 8 20 100 $((size / 2)) $((size - 1)); do
        head -c "$n" "$GOOD" >"$WORK/trunc.safetensors"
        run_err "trunc.safetensors" "$SAMPLE" --checkpoint "$WORK/trunc.safetensors" --seed 1
    done
    # Header bytes overwritten with garbage.
    cp "$GOOD" "$WORK/corrupt.safetensors"
    printf 'XXXX' | dd of="$WORK/corrupt.safetensors" bs=1 seek=9 conv=notrunc status=none
    run_err "header is not a valid JSON object" "$SAMPLE" --checkpoint "$WORK/corrupt.safetensors"
    # Header size far beyond the file.
    cp "$GOOD" "$WORK/big.safetensors"
    printf '\xff\xff\xff\x00' | dd of="$WORK/big.safetensors" bs=1 seek=0 conv=notrunc status=none
    run_err "impossible for a" "$SAMPLE" --checkpoint "$WORK/big.safetensors"
    # Random bytes, and a foreign safetensors file (PyTorch reference fixture).
    head -c 3000 /dev/urandom >"$WORK/random.safetensors"
    run_err "random.safetensors" "$SAMPLE" --checkpoint "$WORK/random.safetensors"
    run_err "not a charrnn checkpoint" "$SAMPLE" --checkpoint "$SRC/tests/reference/fixture_gru.safetensors"
    run_err "is not a regular file" "$SAMPLE" --checkpoint "$WORK"
    python3 "$ST_TOOL" tiny "$WORK/nulvocab.safetensors" '["\u0000", "a"]'
    run_err "vocab entry 0 is U+0000 (NUL)" "$SAMPLE" --checkpoint "$WORK/nulvocab.safetensors"
    # Finite weights whose logits overflow (NaN log-probabilities) are refused.
    python3 "$ST_TOOL" tiny "$WORK/overflow.safetensors" '["a", "b"]' 3e38
    run_err "row 0 of tensor 'decoder.weight' and its bias can reach a logit of 3e+38" \
        "$SAMPLE" --checkpoint "$WORK/overflow.safetensors"

    echo "== charrnn-sample: bad requests"
    run_err "'#' (U+0023)" "$SAMPLE" --checkpoint "$GOOD" --prime 'The #1 cat'
    run_err "U+20AC" "$SAMPLE" --checkpoint "$GOOD" --prime "The €"
    run_err "--temperature: 11 is out of range" "$SAMPLE" --checkpoint "$GOOD" --temperature 11
    run_err "--length: 0 is out of range" "$SAMPLE" --checkpoint "$GOOD" --length 0
    run_err "--top-p: 0 is out of range" "$SAMPLE" --checkpoint "$GOOD" --top-p 0
    run_err "--checkpoint is required" "$SAMPLE" --length 5
    run_err "unknown argument '--temp'" "$SAMPLE" --checkpoint "$GOOD" --temp 1
    run_err "--stop: a string of 0 bytes is out of range 1..256" "$SAMPLE" --checkpoint "$GOOD" --stop ''
    run_err "--stop: a string that is not valid UTF-8 (byte 2 of 2, 0x94)" "$SAMPLE" --checkpoint "$GOOD" \
        --stop "$(printf 'e\x94')"
    run_err "--regex: 0 bytes is out of range 1..1024" "$SAMPLE" --checkpoint "$GOOD" --regex ''
    run_err "regex: does not compile: at byte 1: '[' is never closed" \
        "$SAMPLE" --checkpoint "$GOOD" --regex 'a[b'
    run_err "regex: too large: a repetition count above 1000" "$SAMPLE" --checkpoint "$GOOD" --regex 'a{1001}'
    run_err "regex: cannot be satisfied" "$SAMPLE" --checkpoint "$GOOD" --regex '#+'
    run_err "CHARRNN_KERNEL: unknown inference kernel 'avx9' (auto, " \
        env CHARRNN_KERNEL=avx9 "$SAMPLE" --checkpoint "$GOOD"

    echo "== charrnn-convert and --publish-dtype"
    local CONVERT X="$WORK/x.safetensors"
    CONVERT="$(dirname "$SAMPLE")/charrnn-convert" # built next to charrnn-sample
    run_err "--dtype, INPUT and OUTPUT are required" "$CONVERT" "$GOOD" "$X"
    run_err "--dtype: unknown dtype 'fp8' (f32, bf16, int8)" "$CONVERT" --dtype fp8 "$GOOD" "$X"
    run_err "cannot open $WORK/nope.safetensors" "$CONVERT" --dtype int8 "$WORK/nope.safetensors" "$X"
    run_err "one INPUT and one OUTPUT" "$CONVERT" --dtype int8 "$GOOD" "$X" "$X"
    "$CONVERT" --dtype int8 "$GOOD" "$WORK/q.safetensors" >/dev/null || fail "convert to int8"
    run_err "holds int8 weights; convert from the f32 checkpoint" \
        "$CONVERT" --dtype bf16 "$WORK/q.safetensors" "$X"
    [ ! -e "$X" ] || fail "a failed charrnn-convert wrote its output"
    # 268 bytes whose metadata asks for 3.2 GB: refused for what it lacks, within
    # 400 MB of address space (an allocation of the model would fail instead;
    # not under a sanitizer, whose shadow memory reserves terabytes of it).
    python3 "$ST_TOOL" hostile "$WORK/hostile.safetensors"
    local cap='ulimit -v 400000 && '
    if grep -qa -e __asan_init -e __tsan_init "$CONVERT"; then cap=''; fi
    run_err "tensor 'rnn.weight_ih_l0' is missing" \
        bash -c "$cap"'exec "$@"' - "$CONVERT" --dtype int8 "$WORK/hostile.safetensors" "$X"
    printf 'characters the model never saw: \x01\x02\x03\n' >"$WORK/alien.txt"
    run_err "not in the model's vocabulary" "$CONVERT" --dtype int8 "$GOOD" "$X" --eval "$WORK/alien.txt"
    [ ! -e "$X" ] || fail "a failed charrnn-convert --eval wrote its output"
    echo "ok: a failed --eval leaves no output"
    run_err "reduced-precision serving checkpoint; training starts from an f32 one" \
        tiny_train --data "$T" --checkpoint-dir "$CK" --init-from "$WORK/q.safetensors"
    run_err "--publish-dtype: 'f16' is not f32, bf16 or int8" \
        tiny_train --data "$T" --checkpoint-dir "$CK" --publish-dtype f16
    tiny_train --data "$T" --checkpoint-dir "$WORK/ckp" --max-iters 2 --seed 1 \
        --publish "$WORK/pub.safetensors" --publish-dtype bf16 || fail "--publish-dtype bf16"
    "$SAMPLE" --checkpoint "$WORK/pub.safetensors" --length 5 --seed 1 --verbose 2>&1 >/dev/null |
        grep -qF "lstm 1x16 bf16" || fail "the published file is not bf16"
    echo "ok: --publish-dtype bf16 publishes a bf16 model"
}

case_resume() {
    local T="$WORK/text.txt"
    text_file "$T" 400 2
    # Dropout consumes the RNG, so its state must be restored; two layers so dropout applies.
    local common=(--data "$T" --cell lstm --rnn-size 24 --num-layers 2 --dropout 0.3
        --seq-length 16 --batch-size 8 --seed 7 --threads 1 --quiet --eval-every 10)
    "$TRAIN" "${common[@]}" --checkpoint-dir "$WORK/straight" --max-iters 40
    "$TRAIN" "${common[@]}" --checkpoint-dir "$WORK/split" --max-iters 20
    grep -q '"iteration":20' <(python3 "$ST_TOOL" meta "$WORK/split/latest.safetensors" resume) ||
        fail "the first half did not stop at iteration 20"
    "$TRAIN" "${common[@]}" --checkpoint-dir "$WORK/split" --max-iters 40 \
        --init-from "$WORK/split/latest.safetensors"
    python3 "$ST_TOOL" compare "$WORK/straight/latest.safetensors" "$WORK/split/latest.safetensors" ||
        fail "40 iterations straight differ from 20 + resume + 20"
    # The loss history travels in the checkpoint: the resumed run's plot shows the whole run.
    cmp -s "$WORK/straight/loss.svg" "$WORK/split/loss.svg" ||
        fail "loss.svg after 20 + resume + 20 differs from the straight run's"
    grep -q '"plot":{"train":{"stride":1,"points":\[\[1,' \
        <(python3 "$ST_TOOL" meta "$WORK/split/latest.safetensors" resume) ||
        fail "the resume state lacks the loss history from iteration 1"
    # A different seed does give other parameters (the comparison can fail).
    "$TRAIN" "${common[@]}" --checkpoint-dir "$WORK/other" --max-iters 40 --seed 8
    if python3 "$ST_TOOL" compare "$WORK/straight/latest.safetensors" "$WORK/other/latest.safetensors" >/dev/null; then
        fail "seed 7 and seed 8 trained identical models"
    fi
    echo "ok: resume is bit-exact"

    # What a resume does is said, never silent. The checkpoint is at iteration 40.
    local R="$WORK/split/latest.safetensors"
    run_err "the checkpoint is at iteration 40, and this run stops at iteration 5 (--max-iters): nothing to train" \
        "$TRAIN" "${common[@]}" --checkpoint-dir "$WORK/r" --max-iters 5 --init-from "$R"
    run_err "stops at iteration 40 (--max-iters): nothing to train" \
        "$TRAIN" "${common[@]}" --checkpoint-dir "$WORK/r" --max-iters 40 --init-from "$R"
    run_err "--rnn-size 32 differs from the checkpoint's 24" \
        "$TRAIN" "${common[@]}" --rnn-size 32 --checkpoint-dir "$WORK/r" --max-iters 50 --init-from "$R"
    run_err "--num-layers 1 differs from the checkpoint's 2" \
        "$TRAIN" "${common[@]}" --num-layers 1 --checkpoint-dir "$WORK/r" --max-iters 50 --init-from "$R"
    run_err "--cell gru differs from the checkpoint's lstm" \
        "$TRAIN" "${common[@]}" --cell gru --checkpoint-dir "$WORK/r" --max-iters 50 --init-from "$R"
    [ ! -e "$WORK/r/latest.safetensors" ] || fail "a refused resume wrote a checkpoint"
    "$TRAIN" "${common[@]}" --checkpoint-dir "$WORK/r1" --max-iters 42 --init-from "$R" --log "$WORK/r1.log"
    grep -q '"info":"[^"]*, resumed exactly' "$WORK/r1.log" ||
        fail "the same settings do not say 'resumed exactly': $(head -1 "$WORK/r1.log")"
    "$TRAIN" "${common[@]}" --checkpoint-dir "$WORK/r2" --max-iters 42 --init-from "$R" \
        --learning-rate 0.01 --threads 2 --log "$WORK/r2.log"
    grep -qF 'continued with changes: learning_rate 0.002 -> 0.01, shards (threads x ranks) 1 -> 2' "$WORK/r2.log" ||
        fail "changed settings are not named: $(head -1 "$WORK/r2.log")"
    if grep -q 'resumed exactly' "$WORK/r2.log"; then fail "a changed run says 'resumed exactly'"; fi
    # char-rnn's default split (0.95 + 0.05) leaves no test text: the end says so.
    grep -qF '"test_loss":null,"test_loss_note":"no test split: --train-frac + --val-frac' "$WORK/r1.log" ||
        fail "a run without a test split does not say why its test loss is null: $(tail -1 "$WORK/r1.log")"
    echo "ok: a resume refuses what it cannot honour and names what changed"
}

case_sample() {
    local T="$WORK/text.txt" CK="$WORK/ck"
    text_file "$T" 300 3
    tiny_train --data "$T" --checkpoint-dir "$CK" --max-iters 30 --seed 3
    local M="$CK/latest.safetensors"
    "$SAMPLE" --checkpoint "$M" --seed 42 --length 300 --prime "The cat" >"$WORK/a"
    "$SAMPLE" --checkpoint "$M" --seed 42 --length 300 --prime "The cat" >"$WORK/b"
    "$SAMPLE" --checkpoint "$M" --seed 43 --length 300 --prime "The cat" >"$WORK/c"
    cmp -s "$WORK/a" "$WORK/b" || fail "same seed, different text"
    # Every build of the inference kernel gives the same text (plain C against the default).
    CHARRNN_KERNEL=portable "$SAMPLE" --checkpoint "$M" --seed 42 --length 300 --prime "The cat" >"$WORK/p"
    cmp -s "$WORK/a" "$WORK/p" || fail "the portable kernel gives other text than the default one"
    if cmp -s "$WORK/a" "$WORK/c"; then fail "seeds 42 and 43 gave the same text"; fi
    # stdout is exactly the prime and 300 more characters (valid UTF-8, no extra newline).
    python3 - "$WORK/a" <<'EOF' || fail "stdout is not prime + 300 characters"
import sys
text = open(sys.argv[1], "rb").read().decode("utf-8")  # raises on invalid UTF-8
assert text.startswith("The cat"), text[:20]
assert len(text) == len("The cat") + 300, len(text)
EOF
    # Greedy decoding ignores the seed; without --seed every run still works.
    "$SAMPLE" --checkpoint "$M" --seed 1 --temperature 0 --length 100 --prime "A" >"$WORK/g1"
    "$SAMPLE" --checkpoint "$M" --seed 2 --temperature 0 --length 100 --prime "A" >"$WORK/g2"
    cmp -s "$WORK/g1" "$WORK/g2" || fail "temperature 0 depends on the seed"
    "$SAMPLE" --checkpoint "$M" --length 10 >/dev/null
    # --verbose reports the seed on stderr, and that seed reproduces the text.
    "$SAMPLE" --checkpoint "$M" --length 50 --verbose >"$WORK/v1" 2>"$WORK/verr"
    local seed
    seed=$(sed -n 's/.*seed \([0-9][0-9]*\).*/\1/p' "$WORK/verr" | head -1)
    [ -n "$seed" ] || fail "--verbose does not report the seed: $(cat "$WORK/verr")"
    "$SAMPLE" --checkpoint "$M" --length 50 --seed "$seed" >"$WORK/v2"
    cmp -s "$WORK/v1" "$WORK/v2" || fail "the reported seed does not reproduce the text"
    # --threads splits each step's rows (products of 64 KB and more: 2x128 here) over threads;
    # the text stays the same bytes, for f32 and int8 weights.
    local W="$WORK/ckw"
    "$TRAIN" --data "$T" --checkpoint-dir "$W" --cell lstm --rnn-size 128 --num-layers 2 \
        --seq-length 8 --batch-size 4 --max-iters 3 --threads 1 --quiet
    "$(dirname "$SAMPLE")/charrnn-convert" --dtype int8 "$W/latest.safetensors" "$W/q.safetensors" >/dev/null
    local f
    for f in latest q; do
        "$SAMPLE" --checkpoint "$W/$f.safetensors" --seed 5 --length 400 >"$WORK/t1"
        "$SAMPLE" --checkpoint "$W/$f.safetensors" --seed 5 --length 400 --threads 3 >"$WORK/t3"
        cmp -s "$WORK/t1" "$WORK/t3" || fail "$f: --threads 3 gives other text than one thread"
    done
    run_err "--threads: 0 is out of range" "$SAMPLE" --checkpoint "$M" --threads 0
    echo "ok: sampling is deterministic"
}

case_e2e() {
    # A quote and a backslash in the directory: the log's lines stay valid JSON.
    local T="$WORK/text.txt" CK="$WORK/ck \"q\" \\" LOG="$WORK/log.jsonl"
    text_file "$T" 2000 4 # ~50 KB, so the 5% validation split holds several batches
    "$TRAIN" --data "$T" --checkpoint-dir "$CK" --cell lstm --rnn-size 64 --num-layers 1 \
        --seq-length 32 --batch-size 16 --max-iters 300 --eval-every 100 --threads 1 \
        --train-frac 0.9 --val-frac 0.05 --seed 1 --quiet --log "$LOG"
    python3 - "$LOG" "$T" "$CK" <<'EOF' || fail "validation loss did not fall far below ln(V)"
import json, math, sys
events = [json.loads(line) for line in open(sys.argv[1])]
assert all(e["checkpoint"].startswith(sys.argv[3] + "/") for e in events if e["event"] == "eval")
V = len(set(open(sys.argv[2], encoding="utf-8").read()))
evals = [e for e in events if e["event"] == "eval"]
assert [e["iter"] for e in evals] == [100, 200, 300], evals
val = evals[-1]["val_loss"]
done = [e for e in events if e["event"] == "done"][-1]
print(f"V={V} ln(V)={math.log(V):.3f} val loss {[e['val_loss'] for e in evals]} test {done['test_loss']}")
assert val is not None and val < 0.75 * math.log(V), (val, math.log(V))
assert evals[0]["val_loss"] > val
assert done["interrupted"] is False and done["test_loss"] is not None
# A healthy model read as one stream costs about what it costs in batches.
assert all(abs(e["val_stream_loss"] - e["val_loss"]) < 0.3 for e in evals), evals
EOF
    "$SAMPLE" --checkpoint "$CK/best.safetensors" --length 200 --seed 1 --prime "The " >"$WORK/s"
    [ "$(head -c 4 "$WORK/s")" = "The " ] || fail "sample does not start with the prime"

    echo "== SIGINT during training"
    local CK2="$WORK/ck2" LOG2="$WORK/log2.jsonl"
    "$TRAIN" --data "$T" --checkpoint-dir "$CK2" --rnn-size 32 --num-layers 1 --seq-length 16 \
        --batch-size 8 --max-iters 100000000 --eval-every 1000000 --threads 1 --quiet \
        --print-every 1 --log "$LOG2" &
    local pid=$! i rc=0
    for i in $(seq 1 200); do # up to 20 s for the first iterations
        if grep -q '"iter":5,' "$LOG2" 2>/dev/null; then break; fi
        sleep 0.1
    done
    grep -q '"iter":5,' "$LOG2" || { kill "$pid"; fail "training did not start"; }
    kill -INT "$pid"
    wait "$pid" || rc=$?
    [ "$rc" -eq 0 ] || fail "SIGINT: exit status $rc"
    grep -q '"interrupted":true' "$LOG2" || fail "SIGINT: no interrupted done event"
    "$SAMPLE" --checkpoint "$CK2/latest.safetensors" --length 20 --seed 1 >/dev/null ||
        fail "SIGINT left no loadable checkpoint"
    if ls "$CK2" | grep -q tmp; then fail "SIGINT left a temporary file"; fi

    echo "== temporaries of a killed run are tidied, nothing else"
    local CK3="$WORK/ck3" PUB="$WORK/pub" LOG3="$WORK/log3.jsonl" f
    mkdir -p "$CK3" "$PUB"
    # Every file is written by one atomic writer, so NAME.tmp.XXXXXX (mkstemp's
    # six letters and digits) is the only form a killed run leaves.
    local stale=("$CK3/best.safetensors.tmp.Ab12Cd" "$CK3/loss.svg.tmp.Pq42Rs"
        "$CK3/lm_lstm_epoch0.50_3.1000.safetensors.tmp.Old123" "$PUB/m.safetensors.tmp.Zz99Yy")
    local keep=("$CK3/notes.txt.tmp.1" "$CK3/best.safetensors.tmp.bak" "$CK3/loss.svg.tmp.4242"
        "$CK3/model.safetensors.tmp.Ab12Cd" "$CK3/lm_lstm_epoch0.90_3.0000.safetensors.tmp.Lock99"
        "$PUB/other.safetensors.tmp.Qq11Ww")
    for f in "${stale[@]}" "${keep[@]}"; do
        echo partial >"$f"
        touch -d '-1 hour' "$f"
    done
    echo partial >"$CK3/latest.safetensors.tmp.Young1" # as if a live writer's: too young
    keep+=("$CK3/latest.safetensors.tmp.Young1")
    exec 9<"$CK3/lm_lstm_epoch0.90_3.0000.safetensors.tmp.Lock99"
    flock -x 9 # old but locked: a live (stopped) writer's
    tiny_train --data "$T" --checkpoint-dir "$CK3" --max-iters 2 --eval-every 2 \
        --publish "$PUB/m.safetensors" --log "$LOG3"
    exec 9<&-
    for f in "${stale[@]}"; do
        [ ! -e "$f" ] || fail "stale $f was not removed"
    done
    for f in "${keep[@]}"; do
        [ -e "$f" ] || fail "removed $f, which was not a stale temporary of this run"
    done
    grep -q 'removed 4 stale temporary files' "$LOG3" || fail "start event does not say what was removed"
    [ -f "$PUB/m.safetensors" ] || fail "nothing published"
    echo "ok: end to end"
}

case_init() {
    local T="$WORK/text.txt"
    text_file "$T" 300 2
    # A learning rate of 1e-12 leaves the weights where the initialisation put
    # them (one Adam step moves each by about 1e-12).
    check_init() { # check_init NAME RANGE FORGET [FLAGS...]: the drawn weights and train.init
        local name=$1 range=$2 forget=$3
        shift 3
        tiny_train --data "$T" --checkpoint-dir "$WORK/$name" --max-iters 1 --learning-rate 1e-12 \
            --seed 3 "$@"
        python3 - "$ST_TOOL" "$WORK/$name/latest.safetensors" "$range" "$forget" <<'EOF' ||
import json, subprocess, sys
tool, ck, R, F = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
H = 16
def run(*args):
    return subprocess.check_output([sys.executable, tool, *args])
init = json.loads(run("meta", ck, "train"))["init"]
assert abs(init["range"] - R) < 1e-6, (init, R)
assert init["forget_bias"] == (None if F == "none" else float(F)), (init, F)
rest = []
for n in ("rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.bias_hh_l0", "decoder.weight", "decoder.bias"):
    rest += json.loads(run("tensor", ck, n))
b = json.loads(run("tensor", ck, "rnn.bias_ih_l0"))
forget, others = b[H:2 * H], b[:H] + b[2 * H:]
rest += others + (forget if F == "none" else [])
top = max(abs(x) for x in rest)
# Every weight inside the range, and the largest of ~3000 draws near its edge.
assert top <= R + 1e-6 and top > 0.95 * R, (top, R)
if F != "none":
    assert all(abs(x - float(F)) < 1e-6 for x in forget), forget[:4]
print(f"ok: range {R} (largest |w| {top:.4f}), forget bias {F}")
EOF
            fail "initialisation $name"
    }
    check_init lua 0.08 1 --init-range 0.08 --forget-bias 1
    check_init zero 0.08 0 --init-range 0.08 --forget-bias 0
    check_init torch 0.25 none --init-range 0 --forget-bias none # 1/sqrt(16)
    check_init wide 0.5 -2 --init-range 0.5 --forget-bias -2
    echo "ok: initialisation"
}

case_stream() {
    local T="$WORK/text.txt" LOG="$WORK/log.jsonl"
    text_file "$T" 2000 4 # ~50 KB: half of it validates, 50 streams of ~500 characters
    python3 "$ST_TOOL" drift "$T" "$WORK/drift.safetensors"
    echo "== a model that degrades over a long context: the warning"
    "$TRAIN" --data "$T" --checkpoint-dir "$WORK/ck" --init-from "$WORK/drift.safetensors" \
        --max-iters 1 --learning-rate 1e-12 --train-frac 0.5 --val-frac 0.5 --threads 1 \
        --quiet --log "$LOG" 2>"$WORK/err"
    cat "$WORK/err"
    grep -q "warning: at iteration 1 the validation text read as one stream costs" "$WORK/err" ||
        fail "no warning for a one-stream loss far above the batched one"
    python3 - "$LOG" "$ST_TOOL" "$WORK/ck/latest.safetensors" <<'EOF' || fail "one-stream loss not reported"
import json, math, subprocess, sys
ev = [json.loads(l) for l in open(sys.argv[1]) if '"eval"' in l][-1]
val, st = ev["val_loss"], ev["val_stream_loss"]
print(f"batched {val:.3f}, one stream {st:.3f}")
assert val < math.log(32) + 0.5 and st > val + 2, ev
train = json.loads(subprocess.check_output([sys.executable, sys.argv[2], "meta", sys.argv[3], "train"]))
assert abs(train["val_stream_loss"] - st) < 1e-5 and train["val_stream_chars"] == 10000, train
EOF
    grep -q 'stroke="#ff7f0e"' "$WORK/ck/loss.svg" || fail "loss.svg lacks the one-stream curve"
    echo "== the same model over a short stream: no warning"
    "$TRAIN" --data "$T" --checkpoint-dir "$WORK/ck2" --init-from "$WORK/drift.safetensors" \
        --max-iters 1 --learning-rate 1e-12 --train-frac 0.5 --val-frac 0.5 --threads 1 \
        --stream-eval-chars 300 --quiet --log "$WORK/log2" 2>"$WORK/err2"
    ! grep -q warning "$WORK/err2" || fail "warned over 300 characters: $(cat "$WORK/err2")"
    grep -q '"val_stream_loss":[0-9]' "$WORK/log2" || fail "no one-stream loss over 300 characters"
    echo "== off"
    "$TRAIN" --data "$T" --checkpoint-dir "$WORK/ck3" --init-from "$WORK/drift.safetensors" \
        --max-iters 1 --learning-rate 1e-12 --train-frac 0.5 --val-frac 0.5 --threads 1 \
        --stream-eval-chars 0 --quiet --log "$WORK/log3" 2>"$WORK/err3"
    grep -q '"val_stream_loss":null' "$WORK/log3" || fail "--stream-eval-chars 0 still measured"
    ! grep -q warning "$WORK/err3" || fail "warned with the one-stream loss off"
    echo "ok: one-stream validation"
}

# What decides the trained bits: the checkpoint, the seed and the flags, never
# the CPU's instruction set or a BLAS variable. Every GEMM of training is
# charrnn's own (model/core/gemm.h), with one summation order per element.
case_bits() {
    local T="$WORK/text.txt" cell k
    text_file "$T" 300 3
    # Two shards, dropout, 40 units (not a whole vector: the column edges),
    # the one-stream validation (its own forward pass).
    local common=(--data "$T" --rnn-size 40 --num-layers 2 --dropout 0.2 --seq-length 24
        --batch-size 10 --seed 5 --threads 2 --quiet --eval-every 10 --max-iters 20
        --stream-eval-chars 200)
    for cell in lstm gru rnn; do
        "$TRAIN" "${common[@]}" --cell "$cell" --checkpoint-dir "$WORK/$cell-auto"
        local ran=0
        for k in avx512 avx2 portable; do
            if ! CHARRNN_KERNEL=$k "$TRAIN" "${common[@]}" --cell "$cell" \
                --checkpoint-dir "$WORK/$cell-$k" 2>"$WORK/err"; then
                grep -q "needs instructions this CPU lacks" "$WORK/err" || fail "$k: $(cat "$WORK/err")"
                echo "note: this CPU does not run $k"
                continue
            fi
            ran=$((ran + 1))
            bits_same "$WORK/$cell-auto" "$WORK/$cell-$k" "$cell: CHARRNN_KERNEL=$k = the default kernel"
        done
        [ "$ran" -ge 2 ] || fail "fewer than two kernels ran: nothing was compared across them"
    done
    # OpenBLAS's kernel choice, set here for these child processes only.
    env OPENBLAS_CORETYPE=Sandybridge "$TRAIN" "${common[@]}" --cell lstm --checkpoint-dir "$WORK/sandy"
    bits_same "$WORK/lstm-auto" "$WORK/sandy" "OPENBLAS_CORETYPE=Sandybridge = as set (${OPENBLAS_CORETYPE:-unset})"
    env -u OPENBLAS_CORETYPE "$TRAIN" "${common[@]}" --cell lstm --checkpoint-dir "$WORK/unset"
    bits_same "$WORK/lstm-auto" "$WORK/unset" "OPENBLAS_CORETYPE unset = as set (${OPENBLAS_CORETYPE:-unset})"
    # ... because no BLAS takes part: charrnn-train neither links nor calls one.
    if ldd "$TRAIN" | grep -qi blas; then fail "charrnn-train links a BLAS: $(ldd "$TRAIN" | grep -i blas)"; fi
    if nm -D "$TRAIN" | grep -q 'cblas_\|sgemm'; then fail "charrnn-train references a BLAS symbol"; fi
    echo "ok: charrnn-train links no BLAS"
    # The comparison can fail: another seed gives other bits.
    "$TRAIN" "${common[@]}" --cell lstm --checkpoint-dir "$WORK/seed6" --seed 6
    bits_differ "$WORK/lstm-auto" "$WORK/seed6" "seeds 5 and 6 trained identical models: the comparison proves nothing"
    echo "ok: the trained bits do not depend on the instruction set or OPENBLAS_CORETYPE"
}

case_bf16() {
    local T="$WORK/text.txt" cell
    text_file "$T" 400 4
    echo "== --precision: bad values stop before any work"
    run_err "--precision: 'fp8' is not f32 or bf16" tiny_train --data "$T" --checkpoint-dir "$WORK/e" --precision fp8
    run_err "--precision needs a value" tiny_train --data "$T" --checkpoint-dir "$WORK/e" --precision
    [ ! -e "$WORK/e" ] || fail "a refused --precision created the checkpoint directory"
    if ! grep -qw avx512_bf16 /proc/cpuinfo; then
        # No bf16 training to test here: the refusal is the behaviour (before
        # the data is read: the file is missing and not named).
        run_err "--precision bf16: bf16 training needs a CPU with AVX512-BF16" \
            tiny_train --data "$WORK/missing.txt" --checkpoint-dir "$WORK/e" --precision bf16
        echo "note: this CPU lacks AVX512-BF16: checked the refusal, trained nothing in bf16"
        return
    fi
    run_err "CHARRNN_KERNEL selects 'avx2'" env CHARRNN_KERNEL=avx2 "$TRAIN" --quiet \
        --data "$WORK/missing.txt" --checkpoint-dir "$WORK/e" --precision bf16
    [ ! -e "$WORK/e" ] || fail "a refused --precision bf16 created the checkpoint directory"

    # As case_bits: two layers (layer 1's input side is a product), dropout,
    # 40 units (column edges), the one-stream validation.
    local common=(--data "$T" --rnn-size 40 --num-layers 2 --dropout 0.2 --seq-length 24
        --batch-size 10 --seed 5 --quiet --eval-every 10 --max-iters 20 --stream-eval-chars 200)
    for cell in lstm gru rnn; do
        "$TRAIN" "${common[@]}" --cell "$cell" --threads 2 --precision bf16 --checkpoint-dir "$WORK/$cell-a"
        "$TRAIN" "${common[@]}" --cell "$cell" --threads 2 --precision bf16 --checkpoint-dir "$WORK/$cell-b"
        bits_same "$WORK/$cell-a" "$WORK/$cell-b" "$cell bf16, 2 threads: a rerun gives the same bits"
        "$TRAIN" "${common[@]}" --cell "$cell" --threads 2 --checkpoint-dir "$WORK/$cell-f32"
        bits_differ "$WORK/$cell-a" "$WORK/$cell-f32" "$cell: bf16 trained the f32 bits (not used?)"
        echo "ok: $cell bf16 differs from f32"
    done
    "$TRAIN" "${common[@]}" --cell lstm --threads 1 --precision bf16 --checkpoint-dir "$WORK/t1a"
    "$TRAIN" "${common[@]}" --cell lstm --threads 1 --precision bf16 --checkpoint-dir "$WORK/t1b"
    bits_same "$WORK/t1a" "$WORK/t1b" "lstm bf16, 1 thread: a rerun gives the same bits"
    python3 "$ST_TOOL" meta "$WORK/t1a/latest.safetensors" train | grep -qF '"precision":"bf16"' ||
        fail "the checkpoint does not record precision bf16"
    python3 "$ST_TOOL" meta "$WORK/lstm-f32/latest.safetensors" train | grep -qF '"precision":"f32"' ||
        fail "the checkpoint does not record precision f32"

    echo "== it learns: the loss falls over a short run"
    "$TRAIN" --data "$T" --cell gru --rnn-size 64 --num-layers 2 --seq-length 32 --batch-size 16 \
        --seed 3 --quiet --threads 1 --max-iters 80 --eval-every 80 --precision bf16 --train-frac 0.8 --val-frac 0.2 \
        --checkpoint-dir "$WORK/learn" --log "$WORK/learn.log" --print-every 1
    python3 - "$WORK/learn.log" <<'PY' || fail "bf16 training did not learn"
import json, sys
ev = [json.loads(x) for x in open(sys.argv[1])]
it = [e["train_loss"] for e in ev if e["event"] == "iter"]
val = [e["val_loss"] for e in ev if e["event"] == "eval"][-1]
first, last = sum(it[:5]) / 5, sum(it[-5:]) / 5
print(f"train loss {first:.3f} -> {last:.3f}, val {val:.3f}")
sys.exit(0 if last < first - 0.5 and val < first - 0.5 else 1)
PY

    echo "== a bf16 checkpoint resumes exactly (in bf16) and serves like any other"
    local rc=(--data "$T" --cell lstm --rnn-size 24 --num-layers 2 --dropout 0.3 --seq-length 16
        --batch-size 8 --seed 7 --threads 1 --quiet --eval-every 10 --precision bf16)
    "$TRAIN" "${rc[@]}" --checkpoint-dir "$WORK/straight" --max-iters 40
    "$TRAIN" "${rc[@]}" --checkpoint-dir "$WORK/split" --max-iters 20
    "$TRAIN" "${rc[@]}" --checkpoint-dir "$WORK/split" --max-iters 40 \
        --init-from "$WORK/split/latest.safetensors" --log "$WORK/resume.log"
    bits_same "$WORK/straight" "$WORK/split" "bf16: 40 iterations straight = 20 + resume + 20"
    grep -q '"precision":"bf16","info":"[^"]*, resumed exactly' "$WORK/resume.log" ||
        fail "bf16 resume: $(head -1 "$WORK/resume.log")"
    "$TRAIN" "${rc[@]/bf16/f32}" --checkpoint-dir "$WORK/tof32" --max-iters 42 \
        --init-from "$WORK/split/latest.safetensors" --log "$WORK/tof32.log"
    grep -qF 'continued with changes: precision bf16 -> f32' "$WORK/tof32.log" ||
        fail "a bf16 checkpoint continued in f32 does not say so: $(head -1 "$WORK/tof32.log")"
    "$SAMPLE" --checkpoint "$WORK/split/latest.safetensors" --length 200 --seed 1 >"$WORK/sample.txt" ||
        fail "charrnn-sample cannot load a bf16-trained checkpoint"
    [ "$(wc -c <"$WORK/sample.txt")" -ge 200 ] || fail "charrnn-sample wrote $(wc -c <"$WORK/sample.txt") bytes"
    echo "ok: resumed, continued in f32 with the change named, sampled"
}

"case_$case_name"
