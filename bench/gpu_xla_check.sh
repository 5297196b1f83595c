#!/usr/bin/env bash
# GPU check of GoMLX's XLA backend (docs/GPU.md), in up to three parts (PARTS):
#   pretrain: small-preset masked-LM pretraining, fixed shapes (one XLA compile), on the XLA
#             backend with a PJRT CUDA plugin and on the pure-Go backend: steady-state speed;
#   il:       small-preset IL on both backends (shape buckets: a compile per new shape);
#   eval:     eval of the XLA IL checkpoint on the GPU. Meant for a GPU machine with JAX's CUDA plugin installed
# (jax-cuda13-plugin: jax_plugins/xla_cuda13/xla_cuda_plugin.so, and the nvidia-* wheels).
#   bash bench/gpu_xla_check.sh                # finds the plugin through python3
# Env: BIN (bin/shopagent, or BIN_GZ: a gzipped binary to unpack), PLUGIN (the plugin .so),
#      PARTS ("pretrain il eval"), XLA_STEPS (60), GO_STEPS (8), PRE_XLA_STEPS (200),
#      PRE_GO_STEPS (6), TRAIN_TIMEOUT (200 s per run), OUT (logs; /tmp/gpu-check).
set -u
OUT=${OUT:-/tmp/gpu-check}; mkdir -p "$OUT"
B=${BIN:-bin/shopagent}
if [ -n "${BIN_GZ:-}" ]; then B=/tmp/shopagent; gunzip -c "$BIN_GZ" > "$B" && chmod +x "$B"; fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
echo "cores: $(nproc)"
PLUGIN=${PLUGIN:-}
if [ -z "$PLUGIN" ]; then
  dir=$(python3 -c "import jax_plugins.xla_cuda13 as p, os; print(os.path.dirname(p.__file__))" | tail -1)
  PLUGIN=$(ls "$dir"/*.so | head -1)
  nv=$(python3 -c "import nvidia; print(list(nvidia.__path__)[0])" | tail -1)
  export LD_LIBRARY_PATH=$(ls -d "$nv"/*/lib | tr '\n' ':')${LD_LIBRARY_PATH:-}
fi
echo "plugin: $PLUGIN"
PARTS=${PARTS:-pretrain il eval}
want() { case " $PARTS " in *" $1 "*) return 0;; esac; return 1; }
"$B" env generate --products 1000 --seed 1 --out /tmp/gpu-shop | tail -1
want il && "$B" datasets demos --data /tmp/gpu-shop --split train --obs text_rich --read-prob 0 --out /tmp/gpu-demos.parquet | tail -1
want pretrain && for be in "xla:$PLUGIN" go; do
  tag=${be%%:*}
  steps=${PRE_XLA_STEPS:-200}; [ "$tag" = go ] && steps=${PRE_GO_STEPS:-6}
  start=$(date +%s)
  timeout "${TRAIN_TIMEOUT:-200}" "$B" train pretrain --data /tmp/gpu-shop --preset small --steps "$steps" --batch 32 \
    --lr 1e-4 --backend "$be" --out "/tmp/gpu-pre-$tag" --no-progress --log-every 20 --checkpoint-every 0 \
    > "$OUT/pretrain-$tag.log" 2>&1
  echo "== train pretrain, small preset, batch 32 x 128 tokens, $steps steps, backend $tag: exit $?, $(( $(date +%s) - start )) s"
  grep -v '^W[0-9]' "$OUT/pretrain-$tag.log" | tail -6
done
want il && for be in "xla:$PLUGIN" go; do
  tag=${be%%:*}
  steps=${XLA_STEPS:-60}; [ "$tag" = go ] && steps=${GO_STEPS:-8}
  start=$(date +%s)
  timeout "${TRAIN_TIMEOUT:-200}" "$B" train il --data /tmp/gpu-shop --demos /tmp/gpu-demos.parquet --preset small \
    --steps "$steps" --batch 32 --lr 1e-4 --backend "$be" --out "/tmp/gpu-il-$tag" --no-progress --log-every 10 \
    --checkpoint-every 0 > "$OUT/il-$tag.log" 2>&1
  echo "== train il, small preset, $steps steps, backend $tag: exit $?, $(( $(date +%s) - start )) s"
  grep -v '^W[0-9]' "$OUT/il-$tag.log" | tail -5
done
if want eval && [ -d /tmp/gpu-il-xla/checkpoints ]; then
  start=$(date +%s)
  timeout 150 "$B" eval --policy /tmp/gpu-il-xla --backend "xla:$PLUGIN" --split test --data /tmp/gpu-shop \
    --json "$OUT/eval-xla.json" > "$OUT/eval-xla.log" 2>&1
  echo "== eval on XLA: exit $?, $(( $(date +%s) - start )) s"
  grep -v '^W[0-9]' "$OUT/eval-xla.log" | tail -3
fi
