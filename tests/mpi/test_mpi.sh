#!/bin/bash
# charrnn-train as an MPI job, on this machine (ranks oversubscribe its cores).
#
#   test_mpi.sh CASE HAVE_MPI CHARRNN_TRAIN CHARRNN_TRAIN_NOMPI CHARRNN_SAMPLE ST_TOOL SOURCE_ROOT
#
# CASE: identity, resume, signals, kill, refuse, nompi, isa, bf16. Every case but nompi
# needs a charrnn-train built with MPI and mpirun; without them it fails (a
# skip would let CI pass without testing MPI). Models are tiny: each case
# takes seconds.
set -eu

case_name=$1
HAVE_MPI=$2
TRAIN=$3
TRAIN_NOMPI=$4
SAMPLE=$5
ST_TOOL=$6
SRC=$7

if [ "$case_name" != nompi ] && { [ "$HAVE_MPI" != true ] || ! command -v mpirun >/dev/null; }; then
    echo "FAIL: charrnn-train is built without MPI or mpirun is missing: deploy/install-deps.sh --test" \
        "installs Open MPI, then reconfigure (meson setup --reconfigure build)" >&2
    exit 1
fi

WORK=$(mktemp -d /tmp/charrnn-mpi-XXXXXX)
cleanup() {
    # Nothing of this test may outlive it (a hung rank would hold the CI job):
    # a background job is a process group of its own (setsid), killed whole.
    if [ -n "${bg:-}" ]; then kill -KILL -- "-$bg" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# In a sanitizer build (tests/hardening): Open MPI leaves allocations of
# plugins it has already unloaded at exit, which no suppression can name, so
# leak checking is off for these processes; memory errors and undefined
# behaviour are still reported.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"

# Root in CI containers; more ranks than this machine's cores.
MPIRUN=(mpirun --allow-run-as-root --oversubscribe)
export OMPI_MCA_btl_vader_single_copy_mechanism=none # no ptrace in containers

text_file() { # text_file PATH LINES SEED
    python3 "$ST_TOOL" gen-text "$2" "$3" >"$1"
}

same() { # same A B WHAT
    python3 "$ST_TOOL" compare "$1" "$2" >"$WORK/cmp" || fail "$3: $(cat "$WORK/cmp")"
    echo "ok: $3"
}

# Two layers and dropout: the masks must come from one RNG for the whole
# batch; B = 8 over 3 shards gives uneven shards (2, 3, 3 streams).
common() {
    echo --data "$WORK/text.txt" --cell lstm --rnn-size 24 --num-layers 2 --dropout 0.3 \
        --seq-length 16 --batch-size 8 --seed 7 --quiet --eval-every 10
}

case_identity() {
    text_file "$WORK/text.txt" 400 2
    local R
    for R in 2 3; do
        # shellcheck disable=SC2046
        "$TRAIN" $(common) --threads "$R" --max-iters 30 --checkpoint-dir "$WORK/one$R" \
            --log "$WORK/one$R.log"
        # shellcheck disable=SC2046
        "${MPIRUN[@]}" -np "$R" "$TRAIN" $(common) --threads 1 --max-iters 30 \
            --checkpoint-dir "$WORK/mpi$R" --log "$WORK/mpi$R.log"
        same "$WORK/one$R/latest.safetensors" "$WORK/mpi$R/latest.safetensors" \
            "$R ranks x 1 thread = 1 process x $R threads after 30 iterations (parameters, moments, state)"
        # The same losses, validation included.
        diff <(grep -o '"val_loss":[^,]*' "$WORK/one$R.log") \
            <(grep -o '"val_loss":[^,]*' "$WORK/mpi$R.log") >/dev/null ||
            fail "$R ranks: other validation losses than one process"
        grep -q "\"ranks\":$R,\"threads_per_rank\":1,\"hosts\":\\[\"" "$WORK/mpi$R.log" ||
            fail "the start event does not record $R ranks, threads and hosts: $(head -1 "$WORK/mpi$R.log")"
        [ "$(grep -c '"event":"start"' "$WORK/mpi$R.log")" = 1 ] || fail "more than one rank logged"
    done
    # 2 ranks x 2 threads = 4 threads.
    # shellcheck disable=SC2046
    "$TRAIN" $(common) --threads 4 --max-iters 30 --checkpoint-dir "$WORK/one4"
    # shellcheck disable=SC2046
    "${MPIRUN[@]}" -np 2 "$TRAIN" $(common) --threads 2 --max-iters 30 --checkpoint-dir "$WORK/mpi22"
    same "$WORK/one4/latest.safetensors" "$WORK/mpi22/latest.safetensors" \
        "2 ranks x 2 threads = 1 process x 4 threads"
    # Another shard count gives other bits: the comparison can fail.
    # shellcheck disable=SC2046
    "$TRAIN" $(common) --threads 1 --max-iters 30 --checkpoint-dir "$WORK/one1"
    if python3 "$ST_TOOL" compare "$WORK/one1/latest.safetensors" "$WORK/mpi2/latest.safetensors" >/dev/null; then
        fail "1 shard and 2 shards gave identical bits: the comparison proves nothing"
    fi
    echo "ok: 1 shard differs from 2"
}

case_resume() {
    text_file "$WORK/text.txt" 400 2
    # shellcheck disable=SC2046
    "$TRAIN" $(common) --threads 2 --max-iters 40 --checkpoint-dir "$WORK/straight"
    # 2 ranks for 20 iterations, then one process with 2 threads.
    # shellcheck disable=SC2046
    "${MPIRUN[@]}" -np 2 "$TRAIN" $(common) --threads 1 --max-iters 20 --checkpoint-dir "$WORK/a"
    # shellcheck disable=SC2046
    "$TRAIN" $(common) --threads 2 --max-iters 40 --checkpoint-dir "$WORK/a" \
        --init-from "$WORK/a/latest.safetensors"
    same "$WORK/straight/latest.safetensors" "$WORK/a/latest.safetensors" \
        "2 ranks to 20, then 1 process x 2 threads to 40 = 40 straight"
    # The reverse: one process first, then 2 ranks.
    # shellcheck disable=SC2046
    "$TRAIN" $(common) --threads 2 --max-iters 20 --checkpoint-dir "$WORK/b"
    # shellcheck disable=SC2046
    "${MPIRUN[@]}" -np 2 "$TRAIN" $(common) --threads 1 --max-iters 40 --checkpoint-dir "$WORK/b" \
        --init-from "$WORK/b/latest.safetensors"
    same "$WORK/straight/latest.safetensors" "$WORK/b/latest.safetensors" \
        "1 process x 2 threads to 20, then 2 ranks to 40 = 40 straight"
    cmp -s "$WORK/straight/loss.svg" "$WORK/b/loss.svg" || fail "loss.svg differs after resuming on 2 ranks"
    echo "ok: resume across layouts is bit-exact"
}

# A long run in the background: bg is its launcher's pid (and process
# group), its log $1.log.
long_run() { # long_run NAME LAUNCHER...
    local name=$1
    shift
    setsid "$@" "$TRAIN" --data "$WORK/text.txt" --rnn-size 32 --num-layers 1 --seq-length 16 \
        --batch-size 8 --max-iters 100000000 --max-epochs 1000000000 --eval-every 40 --threads 1 --quiet \
        --print-every 1 --checkpoint-dir "$WORK/$name" --log "$WORK/$name.log" \
        >"$WORK/$name.out" 2>&1 &
    bg=$!
    local _
    for _ in $(seq 1 300); do # up to 30 s for the first iterations
        if grep -q '"iter":50,' "$WORK/$name.log" 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    fail "$name: training did not start: $(cat "$WORK/$name.out")"
}

# Waits up to $1 seconds for the background job to end; rc is its status.
wait_bg() { # wait_bg SECONDS WHAT
    local _
    for _ in $(seq 1 $(($1 * 10))); do
        kill -0 "$bg" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$bg" 2>/dev/null && fail "$2: the job did not end within $1 s"
    rc=0 && wait "$bg" || rc=$?
    bg=
}

# The run stopped cleanly: a done event (interrupted) and a checkpoint of the
# last iteration that loads and from which 2 ranks resume.
stopped_cleanly() { # stopped_cleanly NAME
    local name=$1 last
    grep -q '"interrupted":true' "$WORK/$name.log" || fail "$name: no interrupted done event"
    last=$(grep -o '"event":"done","iter":[0-9]*' "$WORK/$name.log" | grep -o '[0-9]*$')
    grep -q "\"iteration\":$last," <(python3 "$ST_TOOL" meta "$WORK/$name/latest.safetensors" resume) ||
        fail "$name: latest.safetensors is not of the last iteration $last"
    "$SAMPLE" --checkpoint "$WORK/$name/latest.safetensors" --length 20 --seed 1 >/dev/null ||
        fail "$name: no loadable checkpoint"
    if compgen -G "$WORK/$name/*.tmp.*" >/dev/null; then fail "$name: a temporary file was left"; fi
}

case_signals() {
    text_file "$WORK/text.txt" 400 3
    local rc
    echo "== SIGUSR1 to mpirun: forwarded, all ranks stop at one iteration, exit 0"
    long_run usr1 "${MPIRUN[@]}" -np 2
    kill -USR1 "$bg"
    wait_bg 30 SIGUSR1
    [ "$rc" -eq 0 ] || fail "SIGUSR1: exit status $rc: $(cat "$WORK/usr1.out")"
    stopped_cleanly usr1
    echo "ok: SIGUSR1"

    echo "== SIGTERM to charrnn-mpirun (the wrapper for Kubernetes and Slurm): exit 0"
    long_run term env MPIRUN=mpirun "$SRC/deploy/mpi/charrnn-mpirun" --allow-run-as-root --oversubscribe -np 3
    kill -TERM "$bg"
    wait_bg 30 "SIGTERM to charrnn-mpirun"
    [ "$rc" -eq 0 ] || fail "SIGTERM to charrnn-mpirun: exit status $rc: $(cat "$WORK/term.out")"
    stopped_cleanly term
    echo "ok: SIGTERM through charrnn-mpirun"

    # A signal reaches the ranks at different steps (here: one rank only, as
    # when one machine is shut down); they agree on the stop at every step.
    echo "== SIGTERM to one rank only: every rank stops at the same iteration, exit 0"
    long_run one "${MPIRUN[@]}" -np 3
    local victim
    victim=$(pgrep -P "$bg" -f "charrnn-train" | tail -1)
    [ -n "$victim" ] || fail "no rank to signal"
    kill -TERM "$victim"
    wait_bg 30 "SIGTERM to one rank"
    [ "$rc" -eq 0 ] || fail "SIGTERM to one rank: exit status $rc: $(cat "$WORK/one.out")"
    stopped_cleanly one
    echo "ok: SIGTERM to one rank"

    # mpirun waits odls_base_sigkill_timeout seconds, sends SIGTERM, waits as
    # long again and sends SIGKILL: 10 s to save a tiny model, even on a loaded machine.
    echo "== SIGTERM to mpirun itself: the ranks still stop together and save (mpirun exits 1)"
    OMPI_MCA_odls_base_sigkill_timeout=10 long_run rawterm "${MPIRUN[@]}" -np 2
    kill -TERM "$bg"
    wait_bg 30 "SIGTERM to mpirun"
    stopped_cleanly rawterm
    echo "ok: SIGTERM to mpirun (status $rc)"
}

case_kill() {
    text_file "$WORK/text.txt" 400 4
    long_run kill "${MPIRUN[@]}" -np 3
    # Wait for a checkpoint, then kill one rank (not rank 0) without warning.
    local victim t0 t1 _
    for _ in $(seq 1 300); do
        if [ -f "$WORK/kill/latest.safetensors" ]; then break; fi
        sleep 0.1
    done
    victim=$(pgrep -P "$bg" -f "charrnn-train" | tail -1 || true)
    [ -n "$victim" ] || victim=$(pgrep -f "charrnn-train.*$WORK/kill" | tail -1)
    [ -n "$victim" ] || fail "no rank to kill"
    t0=$(date +%s)
    kill -KILL "$victim"
    wait_bg 30 "after a rank was killed"
    t1=$(date +%s)
    [ "$rc" -ne 0 ] || fail "the job exited 0 after a rank was killed"
    [ $((t1 - t0)) -lt 30 ] || fail "the job took $((t1 - t0)) s to end after a rank was killed"
    if pgrep -f "charrnn-train.*$WORK/kill" >/dev/null; then fail "a rank outlived the job"; fi
    echo "ok: the job ended in $((t1 - t0)) s with status $rc"
    "$SAMPLE" --checkpoint "$WORK/kill/latest.safetensors" --length 20 --seed 1 >/dev/null ||
        fail "the last checkpoint does not load"
    local it
    it=$(python3 "$ST_TOOL" meta "$WORK/kill/latest.safetensors" resume | grep -o '"iteration":[0-9]*' | grep -o '[0-9]*$')
    "${MPIRUN[@]}" -np 2 "$TRAIN" --data "$WORK/text.txt" --rnn-size 32 --num-layers 1 \
        --seq-length 16 --batch-size 8 --max-iters $((it + 5)) --eval-every 5 --threads 1 --quiet \
        --checkpoint-dir "$WORK/kill" --init-from "$WORK/kill/latest.safetensors" ||
        fail "2 ranks did not resume from the last checkpoint"
    grep -q "\"iteration\":$((it + 5))," <(python3 "$ST_TOOL" meta "$WORK/kill/latest.safetensors" resume) ||
        fail "the resumed run did not reach iteration $((it + 5))"
    echo "ok: resumed from iteration $it"
}

run_err() { # run_err EXPECTED CMD...
    local want=$1 rc=0
    shift
    "$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
    [ "$rc" -ne 0 ] || fail "succeeded, expected an error ($want): $*"
    grep -qF -- "$want" "$WORK/err" || fail "stderr of '$*' lacks '$want': $(cat "$WORK/err")"
    echo "ok: rc $rc, '$want'"
}

case_refuse() {
    text_file "$WORK/text.txt" 400 5
    text_file "$WORK/other.txt" 400 6
    local host args=(--rnn-size 16 --num-layers 1 --seq-length 8 --batch-size 6 --max-iters 3
        --threads 1 --quiet --checkpoint-dir "$WORK/ck")
    host=$(hostname)
    echo "== one rank with other data: refused before the first step, naming ranks and hosts"
    run_err "rank 1 ($host) read other training data than rank 0 ($host): sha256" \
        "${MPIRUN[@]}" -np 1 "$TRAIN" --data "$WORK/text.txt" "${args[@]}" \
        : -np 1 "$TRAIN" --data "$WORK/other.txt" "${args[@]}"
    [ ! -e "$WORK/ck/latest.safetensors" ] || fail "a checkpoint was written"
    run_err "ranks 1 ($host), 2 ($host) read other training data" \
        "${MPIRUN[@]}" -np 1 "$TRAIN" --data "$WORK/text.txt" "${args[@]}" \
        : -np 2 "$TRAIN" --data "$WORK/other.txt" "${args[@]}"
    echo "== other starting parameters (another checkpoint on one rank)"
    "$TRAIN" --data "$WORK/text.txt" "${args[@]}" --checkpoint-dir "$WORK/s1" --seed 1
    "$TRAIN" --data "$WORK/text.txt" "${args[@]}" --checkpoint-dir "$WORK/s2" --seed 2
    run_err "rank 1 ($host) start from other parameters" \
        "${MPIRUN[@]}" -np 1 "$TRAIN" --data "$WORK/text.txt" "${args[@]}" --max-iters 6 \
        --init-from "$WORK/s1/latest.safetensors" \
        : -np 1 "$TRAIN" --data "$WORK/text.txt" "${args[@]}" --max-iters 6 \
        --init-from "$WORK/s2/latest.safetensors"
    echo "== other options on one rank (they would change the numbers or the schedule)"
    run_err "rank 1 ($host) run with other options than rank 0 ($host): learning_rate=0.001 vs learning_rate=0.002" \
        "${MPIRUN[@]}" -np 1 "$TRAIN" --data "$WORK/text.txt" "${args[@]}" \
        : -np 1 "$TRAIN" --data "$WORK/text.txt" "${args[@]}" --learning-rate 0.001
    run_err "run with other options than rank 0 ($host): eval_every=2 vs eval_every=1000" \
        "${MPIRUN[@]}" -np 1 "$TRAIN" --data "$WORK/text.txt" "${args[@]}" \
        : -np 1 "$TRAIN" --data "$WORK/text.txt" "${args[@]}" --eval-every 2
    echo "== a batch smaller than the shards of the layout"
    run_err "--batch-size 6 is smaller than 2 ranks x 4 threads: the smallest batch for this layout is 8" \
        "${MPIRUN[@]}" -np 2 "$TRAIN" --data "$WORK/text.txt" "${args[@]}" --threads 4
    echo "== the same layout with a big enough batch trains"
    "${MPIRUN[@]}" -np 2 "$TRAIN" --data "$WORK/text.txt" "${args[@]}" --threads 3
    [ -f "$WORK/ck/latest.safetensors" ] || fail "no checkpoint from 2 ranks x 3 threads"
}

case_nompi() {
    text_file "$WORK/text.txt" 200 1
    local args=(--data "$WORK/text.txt" --rnn-size 16 --num-layers 1 --seq-length 8 --batch-size 4
        --max-iters 2 --threads 1 --quiet --checkpoint-dir "$WORK/ck")
    # As each launcher announces a multi-rank job.
    local var
    for var in OMPI_COMM_WORLD_SIZE PMI_SIZE SLURM_STEP_NUM_TASKS MV2_COMM_WORLD_SIZE; do
        run_err "started as one of 4 processes ($var=4), but this build has no MPI support" \
            env "$var=4" "$TRAIN_NOMPI" "${args[@]}"
    done
    [ ! -e "$WORK/ck" ] || fail "a refused launch created the checkpoint directory"
    # A job of one is fine.
    env OMPI_COMM_WORLD_SIZE=1 SLURM_STEP_NUM_TASKS=1 "$TRAIN_NOMPI" "${args[@]}"
    [ -f "$WORK/ck/latest.safetensors" ] || fail "a job of one did not train"
    echo "ok: a build without MPI refuses a multi-rank launch"
}

# Ranks on CPUs of different generations: each rank forced to another build
# of the GEMM (CHARRNN_KERNEL), still the bits of one process.
case_isa() {
    text_file "$WORK/text.txt" 400 2
    local kernels=() k
    for k in avx512 avx2 portable; do
        # shellcheck disable=SC2046
        if CHARRNN_KERNEL=$k "$TRAIN" $(common) --threads 1 --max-iters 1 \
            --checkpoint-dir "$WORK/probe-$k" 2>"$WORK/err"; then
            kernels+=("$k")
        else
            grep -q "needs instructions this CPU lacks" "$WORK/err" || fail "$k: $(cat "$WORK/err")"
        fi
    done
    [ "${#kernels[@]}" -ge 2 ] || fail "fewer than two kernels run here: nothing to mix"
    # One rank per kernel (MPMD: each app context its own environment).
    local ctx=() sep=()
    for k in "${kernels[@]}"; do
        # shellcheck disable=SC2046
        ctx+=("${sep[@]}" -np 1 env CHARRNN_KERNEL="$k" "$TRAIN" $(common) --threads 1 --max-iters 30
            --checkpoint-dir "$WORK/mixed")
        sep=(:)
    done
    "${MPIRUN[@]}" "${ctx[@]}"
    # shellcheck disable=SC2046
    "$TRAIN" $(common) --threads "${#kernels[@]}" --max-iters 30 --checkpoint-dir "$WORK/one"
    same "$WORK/one/latest.safetensors" "$WORK/mixed/latest.safetensors" \
        "${#kernels[@]} ranks on ${kernels[*]} = 1 process x ${#kernels[@]} threads"
    cmp -s "$WORK/one/loss.svg" "$WORK/mixed/loss.svg" || fail "loss.svg differs with mixed kernels"
}

# --precision bf16 keeps the layout contract: R ranks x T threads = one
# process with R*T threads; a rank in another precision is refused.
case_bf16() {
    text_file "$WORK/text.txt" 400 3
    if ! grep -qw avx512_bf16 /proc/cpuinfo; then
        # shellcheck disable=SC2046
        run_err "bf16 training needs a CPU with AVX512-BF16" \
            "${MPIRUN[@]}" -np 2 "$TRAIN" $(common) --threads 1 --max-iters 3 --precision bf16 \
            --checkpoint-dir "$WORK/no"
        echo "note: this CPU lacks AVX512-BF16: checked the refusal, trained nothing in bf16"
        return
    fi
    # shellcheck disable=SC2046
    "$TRAIN" $(common) --threads 4 --max-iters 30 --precision bf16 --checkpoint-dir "$WORK/one4"
    # shellcheck disable=SC2046
    "${MPIRUN[@]}" -np 2 "$TRAIN" $(common) --threads 2 --max-iters 30 --precision bf16 \
        --checkpoint-dir "$WORK/mpi22"
    same "$WORK/one4/latest.safetensors" "$WORK/mpi22/latest.safetensors" \
        "bf16: 2 ranks x 2 threads = 1 process x 4 threads"
    # shellcheck disable=SC2046
    "$TRAIN" $(common) --threads 4 --max-iters 30 --checkpoint-dir "$WORK/f32"
    if python3 "$ST_TOOL" compare "$WORK/one4/latest.safetensors" "$WORK/f32/latest.safetensors" >/dev/null; then
        fail "bf16 and f32 gave identical bits: the comparison proves nothing"
    fi
    # shellcheck disable=SC2046
    run_err "run with other options than rank 0 ($(hostname)): " \
        "${MPIRUN[@]}" -np 1 "$TRAIN" $(common) --threads 1 --max-iters 3 --precision bf16 \
        --checkpoint-dir "$WORK/mixed" : -np 1 "$TRAIN" $(common) --threads 1 --max-iters 3 \
        --checkpoint-dir "$WORK/mixed"
    grep -qF "precision=f32 vs precision=bf16" "$WORK/err" || fail "the refusal does not name the precision: $(cat "$WORK/err")"
}

"case_$case_name"
