#!/usr/bin/env bash
# Prepares bench/gpu_check.sh for a GPU machine, on the CPU machine: builds the binaries
# (cgo, stripped, gzipped) and cuts ONNX Runtime 1.29's CUDA directory (make
# onnxruntime-cuda: 275 MB, xz about 170 MB) into parts small enough to travel: the device
# tool sends at most 64 MiB per call (the repository, about 5 MB, included), so the parts
# go over in several calls and are put together there (docs/GPU.md, "Running the check").
#   bash bench/gpu_stage.sh          # -> bin/gpu-carry/: shopagent.gz, gpucheck.gz, ort-cuda.tar.xz.partNN
# Env: PART_MB (52: size of a part), XZ_LEVEL (9).
set -euo pipefail
cd "$(dirname "$0")/.."
C=bin/gpu-carry
PART_MB=${PART_MB:-52}
mkdir -p "$C"
make onnxruntime onnxruntime-cuda
export CGO_ENABLED=1
go build -trimpath -ldflags="-s -w" -o "$C/shopagent" ./cmd/shopagent
go build -trimpath -ldflags="-s -w" -o "$C/gpucheck" ./bench/gpucheck
for b in shopagent gpucheck; do gzip -9 -f "$C/$b"; done
# The ORT archive is rebuilt only when the CUDA directory changed (xz -9 takes minutes).
stamp=$(ls -l --time-style=+%s third_party/onnxruntime-cuda | md5sum | cut -c1-12)
if [ ! -f "$C/ort-cuda.$stamp" ]; then
  rm -f "$C"/ort-cuda.*
  tar -C third_party -cf - onnxruntime-cuda | xz -"${XZ_LEVEL:-9}" -T0 > "$C/ort-cuda.tar.xz"
  split -b "${PART_MB}M" -d "$C/ort-cuda.tar.xz" "$C/ort-cuda.tar.xz.part"
  rm "$C/ort-cuda.tar.xz"
  touch "$C/ort-cuda.$stamp"
fi
ls -l "$C"
parts=$(ls "$C"/ort-cuda.tar.xz.part*)
n=$(echo "$parts" | wc -l)
last=$(echo "$parts" | tail -1)
echo
echo "Device calls (docs/GPU.md): $((n - 1)) staging call(s), each carrying one part, then the check:"
for p in $(echo "$parts" | head -n $((n - 1))); do
  echo "  run carry=[\"$p\"] command: mkdir -p /tmp/gpu-stage && cp $p /tmp/gpu-stage/ && ls -l /tmp/gpu-stage"
done
echo "  run carry=[\"$C/shopagent.gz\", \"$C/gpucheck.gz\", \"$last\"] timeout_s=420 command: PACK=\$OUT bash bench/gpu_check.sh /tmp/gpu-check-out"
du -cb "$C/shopagent.gz" "$C/gpucheck.gz" "$last" | tail -1 | awk '{printf "  (the check call carries %.1f MiB besides the repository)\n", $1/1048576}'
