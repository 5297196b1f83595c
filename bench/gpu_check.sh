#!/usr/bin/env bash
# The prepared GPU check of docs/GPU.md, one call of under 6 minutes on a lent GPU machine:
#   1. setup     a built-in shop and expert demonstrations;
#   2. parity    ONNX Runtime 1.29's CUDA provider loads (with the core of another npm package),
#                a small policy exports with parity against GoMLX on it, and its logits,
#                values and served probabilities equal the CPU provider's (<= 1e-4);
#   3. act-small POST /act latency and throughput at concurrency 1/8/64, small preset, on the
#                CUDA provider, without and with dynamic batching;
#   4. train     XLA (JAX's CUDA 13 PJRT plugin) IL, DPO and PPO at the small preset, step
#                rates with compile time separated, beside a few pure-Go steps on the same machine;
#   5. act-base  the same /act figures at the base preset;
#   6. paper     a short `experiment paper` smoke at the small preset on XLA;
#   7. base      (PARTS with "base" only: item 4, BERT-base IL and DPO on XLA, examples/s and
#                GPU memory); "pretrain" (only when named): small-preset MLM pretraining, what
#                the former bench/gpu_xla_check.sh measured.
# Each part gets a time cap and the whole run a budget (BUDGET, 330 s); a part that does not
# fit is recorded as skipped. Results: OUT/results.json and OUT/results.md (gpucheck report),
# logs in OUT/logs.
#
#   bash bench/gpu_stage.sh                 # on the CPU machine: binaries and ORT parts in bin/gpu-carry
#   bash bench/gpu_check.sh OUT             # on the GPU machine (docs/GPU.md: the device calls)
#   GPU_CHECK_CPU=1 bash bench/gpu_check.sh OUT   # the same parts on the CPU (automatic without nvidia-smi)
#
# Env: CARRY (bin/gpu-carry: shopagent.gz, gpucheck.gz, ort-cuda.tar.xz.part*), STAGE
# (/tmp/gpu-stage: parts carried by earlier calls), ORT_CUDA_DIR (third_party/onnxruntime-cuda,
# used instead of the parts when it holds the provider), PACK (see the end), BUDGET, PARTS (default
# "setup parity act-small train act-base paper"; add "base" for item 4), ACT_SECONDS (5 per
# concurrency level), PLUGIN (the PJRT plugin .so; found through python3 otherwise).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?usage: bash bench/gpu_check.sh OUT_DIR}
mkdir -p "$OUT/logs" && OUT=$(cd "$OUT" && pwd)
L=$OUT/logs
T0=$(date +%s)
BUDGET=${BUDGET:-330}
CARRY=${CARRY:-bin/gpu-carry}
STAGE=${STAGE:-/tmp/gpu-stage}
W=${WORK:-/tmp/gpu-check}
rm -rf "$W" && mkdir -p "$W"
PARTS=${PARTS:-setup parity act-small train act-base paper}
ACT_SECONDS=${ACT_SECONDS:-5}
: > "$OUT/parts.jsonl"
: > "$OUT/act.jsonl"
: > "$OUT/meta.txt"
left() { echo $(( BUDGET - ($(date +%s) - T0) )); }
want() { case " $PARTS " in *" $1 "*) return 0;; esac; return 1; }
meta() { echo "$1: $2" >> "$OUT/meta.txt"; }
status() { # part status seconds note
  printf '{"part":"%s","status":"%s","seconds":%s,"note":"%s"}\n' "$1" "$2" "$3" "$(echo "$4" | tr -d '"\\' | tr '\n' ' ')" >> "$OUT/parts.jsonl"
  echo "== $1: $2 ($3 s) $4"
}
# run_part NAME CAP FUNCTION: runs FUNCTION under a cap of min(CAP, time left - 15 s for the report).
run_part() {
  local name=$1 cap=$2 fn=$3 t lim rc
  if ! want "$name"; then return 0; fi
  lim=$(( $(left) - 15 )); [ "$lim" -gt "$cap" ] && lim=$cap
  if [ "$lim" -lt 20 ]; then status "$name" skipped 0 "out of time ($(left) s left)"; return 0; fi
  t=$(date +%s)
  export PART_DEADLINE=$(( t + lim ))
  ( "$fn" ) > "$L/$name.log" 2>&1 &
  local pid=$!
  ( sleep "$lim"; kill -TERM -- -$pid 2>/dev/null || kill -TERM $pid 2>/dev/null; sleep 3; kill -KILL -- -$pid 2>/dev/null ) &
  local watchdog=$!
  wait $pid; rc=$?
  kill $watchdog 2>/dev/null; wait $watchdog 2>/dev/null
  local secs=$(( $(date +%s) - t ))
  if [ $rc -eq 0 ]; then status "$name" ok "$secs" "$(tail -1 "$L/$name.log")"
  elif [ $secs -ge "$lim" ]; then status "$name" timeout "$secs" "cap ${lim}s; last line: $(tail -1 "$L/$name.log")"
  else status "$name" failed "$secs" "exit $rc: $(tail -1 "$L/$name.log")"; fi
  tail -4 "$L/$name.log" | sed 's/^/   /'
}
# part_left: seconds before this part's cap.
part_left() { echo $(( PART_DEADLINE - $(date +%s) )); }
set -m # parts run in their own process groups (the watchdog kills a part's children too)

# --- binaries (built on the CPU machine by bench/gpu_stage.sh, or bin/ here)
bin_of() {
  if [ -f "$CARRY/$1.gz" ]; then gunzip -c "$CARRY/$1.gz" > "$W/$1" && chmod +x "$W/$1" && echo "$W/$1"
  elif [ -x "bin/$1" ]; then echo "$PWD/bin/$1"
  else return 1; fi
}
SA=$(bin_of shopagent) || { echo "no shopagent binary in $CARRY or bin/: run bash bench/gpu_stage.sh"; exit 1; }
GC=$(bin_of gpucheck) || { echo "no gpucheck binary in $CARRY or bin/: run bash bench/gpu_stage.sh"; exit 1; }

# --- mode: gpu, or cpu (GPU_CHECK_CPU=1, or no GPU visible)
MODE=gpu
if [ "${GPU_CHECK_CPU:-0}" = 1 ] || ! nvidia-smi -L > /dev/null 2>&1; then MODE=cpu; fi
meta date "$(date -u +%Y-%m-%dT%H:%MZ)"
meta mode "$MODE"
meta cores "$(nproc)"
meta commit "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ $MODE = gpu ]; then
  meta gpu "$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | head -1)"
else
  meta gpu "none (CPU mode: ONNX Runtime on the CPU, GoMLX on the pure-Go backend; figures are not GPU figures)"
fi

# --- ONNX Runtime: the CUDA directory (third_party/onnxruntime-cuda, or assembled from the parts
# staged by earlier calls in $STAGE and carried in $CARRY), else the CPU library.
ORT_CUDA=""
ORT_CUDA_DIR=${ORT_CUDA_DIR:-$PWD/third_party/onnxruntime-cuda}
if [ -f "$ORT_CUDA_DIR/libonnxruntime_providers_cuda.so" ]; then
  ORT_CUDA=$ORT_CUDA_DIR
else
  parts=$(ls "$STAGE"/ort-cuda.tar.xz.part* "$CARRY"/ort-cuda.tar.xz.part* 2>/dev/null | awk -F/ '{print $NF " " $0}' | sort -u -k1,1 | awk '{print $2}')
  if [ -n "$parts" ]; then
    if cat $parts | xz -d -T0 2>/dev/null | tar -x -C "$W" 2>"$L/ort-unpack.log" \
       || cat $parts | python3 -c "import lzma,sys,shutil; shutil.copyfileobj(lzma.open(sys.stdin.buffer), sys.stdout.buffer)" | tar -x -C "$W" 2>>"$L/ort-unpack.log"; then
      [ -f "$W/onnxruntime-cuda/libonnxruntime_providers_cuda.so" ] && ORT_CUDA=$W/onnxruntime-cuda
    fi
    meta ort_parts "$(echo $parts | wc -w) parts: $( [ -n "$ORT_CUDA" ] && echo assembled || echo "incomplete or corrupt, see logs/ort-unpack.log")"
  fi
fi
if [ $MODE = gpu ]; then
  DEVICE=cuda
  ORT_LIB=${ORT_CUDA:+$ORT_CUDA/libonnxruntime.so.1}
  # CUDA 13 libraries (cuBLAS, cudart, cuRAND, cuDNN, ...) from the image's nvidia wheels.
  nv=$(python3 -c "import nvidia, os; print(list(nvidia.__path__)[0])" 2>/dev/null | tail -1)
  if [ -n "$nv" ]; then
    export LD_LIBRARY_PATH=$(find "$nv" -maxdepth 3 -type d -name lib | tr '\n' ':')${LD_LIBRARY_PATH:-}
  fi
  if [ -z "${PLUGIN:-}" ]; then
    d=$(python3 -c "import jax_plugins.xla_cuda13 as p, os; print(os.path.dirname(p.__file__))" 2>/dev/null | tail -1)
    PLUGIN=$(ls "$d"/*.so 2>/dev/null | head -1)
  fi
  BACKEND=${PLUGIN:+xla:$PLUGIN}
  meta xla_plugin "${PLUGIN:-not found}"
else
  DEVICE=cpu
  ORT_LIB=$PWD/third_party/onnxruntime/libonnxruntime.so.1
  [ -f "$ORT_LIB" ] || ORT_LIB=${ORT_CUDA:+$ORT_CUDA/libonnxruntime.so.1}
  BACKEND=go
fi
meta ort_lib "${ORT_LIB:-none: run bash bench/gpu_stage.sh and carry its parts (docs/GPU.md)}"
export SHOPAGENT_ORT_LIB=${ORT_LIB:-}
export GOMLX_NO_AUTO_INSTALL=1

# Sizes: GPU mode measures; CPU mode only runs every part through (few steps).
if [ $MODE = gpu ]; then
  IL_STEPS=40; DPO_STEPS=30; PPO_STEPS=8; GO_STEPS=3; PAPER_PRESET=small; PAPER_METHODS=rule,il,dpo; ACT_PRESETS="small base"
else
  IL_STEPS=4; DPO_STEPS=3; PPO_STEPS=2; GO_STEPS=2; PAPER_PRESET=${PAPER_PRESET:-tiny}; PAPER_METHODS=rule,il; ACT_PRESETS="tiny small"
fi
SHOP=$W/shop
TRAIN_PRESET=${TRAIN_PRESET:-$( [ $MODE = gpu ] && echo small || echo tiny )}
meta train_preset "$TRAIN_PRESET"

part_setup() {
  "$SA" env generate --goals 0-99,1500-1899 --seed 1 --quiet --out "$SHOP" &&
  "$SA" datasets demos --data "$SHOP" --split train --obs text_rich --read-prob 0 --out "$W/demos.parquet" &&
  # DPO's data: fewer episodes, so that the reference's pass over them stays short on the pure-Go backend.
  "$SA" datasets demos --data "$SHOP" --split train --n 40 --obs text_rich --read-prob 0 --out "$W/demos-dpo.parquet"
}

part_parity() {
  [ -n "$ORT_LIB" ] || { echo "no ONNX Runtime CUDA library: stage the parts (bash bench/gpu_stage.sh, docs/GPU.md)"; return 1; }
  # The provider loads (or one error says what is missing), the export's parity on the device.
  "$GC" export -preset small -device "$DEVICE" -out "$W/pol-small" -json "$OUT/export-small-$DEVICE.json" &&
  "$GC" parity -policy "$W/pol-small" -data "$SHOP" -device "$DEVICE" -json "$OUT/parity.json"
}

# act PRESET: serve the preset's policy alone; load at 1/8/64 without and with batching.
act() {
  local preset=$1 dir=$W/pol-$1
  if [ ! -f "$dir/policy.json" ]; then
    local be=go
    [ "$preset" = base ] && [ $MODE = gpu ] && be=$BACKEND # BERT-base's reference forward on the pure-Go backend takes minutes
    "$GC" export -preset "$preset" -device "$DEVICE" -backend "$be" -out "$dir" -json "$OUT/export-$preset-$DEVICE.json" || return 1
  fi
  local cfg window
  for cfg in "unbatched:0" "batch-2ms-max64:2ms"; do
    window=${cfg#*:}
    rm -f "$W/addr"
    "$SA" serve --arms "p=$dir" --device "$DEVICE" --batch-window "$window" --batch-max 64 --addr 127.0.0.1:0 \
      --addr-file "$W/addr" --reward-timeout 1h > "$L/serve-$preset-${cfg%%:*}.log" 2>&1 &
    local pid=$!
    for _ in $(seq 300); do [ -s "$W/addr" ] && curl -fs "http://$(cat "$W/addr")/readyz" > /dev/null 2>&1 && break; sleep 0.2; done
    "$GC" load -url "http://$(cat "$W/addr")" -data "$SHOP" -conc 1,8,64 -duration "${ACT_SECONDS}s" -warmup 2s \
      -label "$preset $DEVICE ${cfg%%:*}" -json "$OUT/act.jsonl"
    local rc=$?
    curl -fs "http://$(cat "$W/addr")/metrics" | grep -E '^shopagent_batch' >> "$L/serve-$preset-${cfg%%:*}.log"
    kill $pid; wait $pid 2>/dev/null
    [ $rc -eq 0 ] || return $rc
  done
}
part_act_small() { act "${ACT_PRESETS%% *}"; }
part_act_base() { act "${ACT_PRESETS##* }"; }

# train JOB BACKEND TAG STEPS ARGS...: one training run, its rate from its log.
train_run() {
  local job=$1 be=$2 tag=$3 steps=$4; shift 4
  local out=$W/$job-$tag cap=$(( $(part_left) - 5 )) t=$(date +%s)
  [ $cap -gt 10 ] || { echo "$job $tag: no time left"; return 1; }
  timeout "$cap" "$SA" train "$job" --data "$SHOP" --preset "$TRAIN_PRESET" --steps "$steps" --backend "$be" \
    --out "$out" --no-progress --log-every 1 --checkpoint-every 0 "$@" > "$L/train-$job-$tag.log" 2>&1
  local rc=$?
  "$GC" trainrate -log "$L/train-$job-$tag.log" -job "$job" -run "$out" -label "$job $TRAIN_PRESET $tag" \
    -batch "$BATCH" -wall $(( $(date +%s) - t )) -json "$OUT/train-$job-$tag.json"
  return $rc
}
part_train() {
  [ -n "$BACKEND" ] || { echo "no PJRT CUDA plugin found (PLUGIN, or jax_plugins.xla_cuda13 through python3)"; return 1; }
  local xla=$BACKEND tag=xla il_args=""
  # CPU mode: the XLA shape set and its warm-up on the pure-Go backend, at sizes the CPU
  # gets through in seconds (the XLA set pads every state to the longest).
  [ $MODE = cpu ] && { xla=go; tag=go-xla-shapes; il_args="--max-state-len 128 --max-action-len 16"; }
  BATCH=$( [ $MODE = cpu ] && echo 8 || echo 32 )
  local lr=1e-4
  # Each job on XLA, then a few steps of it on this machine's pure-Go backend (the 50x target
  # compares the two), IL first: whatever does not fit in the cap is recorded as a timeout.
  train_run il "$xla" "$tag" "$IL_STEPS" --demos "$W/demos.parquet" --batch $BATCH --lr $lr --shapes xla $il_args || return 1
  [ $MODE = gpu ] && train_run il go go "$GO_STEPS" --demos "$W/demos.parquet" --batch $BATCH --lr $lr
  train_run dpo "$xla" "$tag" "$DPO_STEPS" --init "$W/il-$tag" --demos "$W/demos-dpo.parquet" --batch $BATCH --lr $lr --shapes xla || return 1
  [ $MODE = gpu ] && train_run dpo go go "$GO_STEPS" --init "$W/il-$tag" --demos "$W/demos-dpo.parquet" --batch $BATCH --lr $lr
  BATCH=64 # PPO minibatches are padded to 64 states
  train_run ppo "$xla" "$tag" "$PPO_STEPS" --init "$W/il-$tag" --episodes-per-step 8 --lr $lr --shapes xla || return 1
  [ $MODE = gpu ] && train_run ppo go go 1 --init "$W/il-$tag" --episodes-per-step 8 --lr $lr
  return 0
}

# A smoke of `experiment paper` (demos, pretrain, IL, evaluation, DPO: each stage as the
# experiment runs it) at tiny budgets; on XLA each stage compiles its own programs.
part_paper() {
  [ -n "$BACKEND" ] || { echo "no PJRT CUDA plugin found"; return 1; }
  "$SA" experiment paper --out "$W/paper" --data "$SHOP" --preset "$PAPER_PRESET" --backend "$BACKEND" --methods "$PAPER_METHODS" \
    --seeds 1 --pretrain-steps 5 --il-steps 10 --budget 15s --dpo-episodes 20 --eval-goals 5 --sweep "" \
    --thompson-episodes 0 --batch 16 &&
  cp "$W/paper/results.md" "$OUT/paper-results.md" && grep -E "^\| (Rule|IL)" "$W/paper/results.md"
}

# Item 4: BERT-base IL and DPO on XLA, with the GPU memory in use sampled every second.
part_base() {
  [ $MODE = gpu ] || { echo "base: GPU only"; return 0; }
  [ -n "$BACKEND" ] || { echo "no PJRT CUDA plugin found"; return 1; }
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 1000 > "$L/base-memory.csv" &
  local smi=$!
  local saved=$TRAIN_PRESET; TRAIN_PRESET=base BATCH=16
  train_run il "$BACKEND" xla-base 20 --demos "$W/demos.parquet" --batch 16 --lr 5e-5 --shapes xla &&
  train_run dpo "$BACKEND" xla-base 10 --init "$W/il-xla-base" --demos "$W/demos.parquet" --batch 16 --lr 5e-5 --shapes xla
  local rc=$?
  TRAIN_PRESET=$saved
  kill $smi
  echo "base: peak GPU memory in use $(sort -n "$L/base-memory.csv" | tail -1) MiB (XLA's allocator reserves ahead of need)"
  return $rc
}

# (PARTS=pretrain only; what bench/gpu_xla_check.sh measured on the H100) small-preset MLM
# pretraining, one fixed shape, on XLA and a few steps on the pure-Go backend.
part_pretrain() {
  local be t tag steps bes="$BACKEND go"
  [ $MODE = cpu ] && bes=go
  for be in $bes; do
    tag=${be%%:*}
    steps=$( [ "$tag" = go ] && echo 4 || echo 200 )
    [ $MODE = cpu ] && steps=2
    t=$(date +%s)
    timeout $(( $(part_left) - 5 )) "$SA" train pretrain --data "$SHOP" --preset small --steps "$steps" --batch 32 --lr 1e-4 \
      --backend "$be" --out "$W/pre-$tag" --no-progress --log-every $(( steps / 10 + 1 )) --checkpoint-every 0 > "$L/train-pretrain-$tag.log" 2>&1
    "$GC" trainrate -log "$L/train-pretrain-$tag.log" -job pretrain -run "$W/pre-$tag" -label "pretrain small $tag" \
      -batch 32 -wall $(( $(date +%s) - t )) -json "$OUT/train-pretrain-$tag.json"
  done
}

run_part setup 60 part_setup
run_part pretrain 200 part_pretrain
run_part parity 70 part_parity
run_part act-small 60 part_act_small
run_part train 170 part_train
run_part act-base 90 part_act_base
run_part paper 90 part_paper
run_part base 240 part_base
meta seconds "$(( $(date +%s) - T0 ))"
"$GC" report -dir "$OUT" > /dev/null && echo "== results: $OUT/results.md, $OUT/results.json ($(( $(date +%s) - T0 )) s)"
# PACK=DIR (the device call's $OUT, which takes at most 8 files): results.md, results.json
# and everything else in one archive.
if [ -n "${PACK:-}" ]; then
  mkdir -p "$PACK" && cp "$OUT/results.md" "$OUT/results.json" "$PACK/" && tar -czf "$PACK/gpu-check-all.tgz" -C "$OUT" .
fi
