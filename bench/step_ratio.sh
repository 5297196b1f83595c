#!/usr/bin/env bash
# Interleaved training-step pairs, GoMLX (pure-Go backend) against the PyTorch peer, on this
# machine: for each configuration, PAIRS rounds of [GoMLX, PyTorch 1 thread, PyTorch 2
# threads], back to back, then the per-round ratio GoMLX / best PyTorch and the medians.
# Every figure is the median wall time of STEPS steps after a warm-up step.
#
#   bash bench/step_ratio.sh                       # PAIRS=3 CONFIGS="tiny128 small" STEPS=5
#   PAIRS=5 CONFIGS=tiny128 bash bench/step_ratio.sh
#   SHOPAGENT_MATMUL=generic bash bench/step_ratio.sh   # any of the kernel variables pass through
#
# Needs Debian's PyTorch: apt-get install -y python3-torch libopenblas0-pthread (see
# docs/BENCHMARKS.md); run on an otherwise idle machine (the load average is printed).
set -euo pipefail
cd "$(dirname "$0")/.."
PAIRS=${PAIRS:-3}
CONFIGS=${CONFIGS:-"tiny128 small"}
STEPS=${STEPS:-5}
PYTHON=${PYTHON:-/usr/bin/python3}
bin=$(mktemp -d)/bench.test
go test -c -o "$bin" ./bench/

median() { "$PYTHON" -c 'import statistics,sys; print(round(statistics.median(float(x) for x in sys.argv[1:])))' "$@"; }

for cfg in $CONFIGS; do
	ratios=() gos=() torches=()
	for i in $(seq "$PAIRS"); do
		go_ms=$(SHOPAGENT_BENCH_STEPS=$STEPS SHOPAGENT_BENCH_CONFIGS=$cfg "$bin" -test.run '^TestEncoderTrainStepTimes$' -test.v 2>&1 |
			sed -n 's/.*wall ms\/step median=\([0-9.]*\).*/\1/p')
		t1=$("$PYTHON" bench/torch_encoder_step.py --config "$cfg" --steps "$STEPS" --threads 1 | sed -n 's/^wall ms\/step: median=\([0-9.]*\).*/\1/p')
		t2=$("$PYTHON" bench/torch_encoder_step.py --config "$cfg" --steps "$STEPS" --threads 2 | sed -n 's/^wall ms\/step: median=\([0-9.]*\).*/\1/p')
		best=$("$PYTHON" -c "print(min($t1, $t2))")
		ratio=$("$PYTHON" -c "print(f'{$go_ms / $best:.2f}')")
		echo "$cfg round $i: GoMLX ${go_ms} ms, PyTorch 1 thread ${t1} ms, 2 threads ${t2} ms -> ratio ${ratio}x (load $(cut -d' ' -f1 /proc/loadavg))"
		ratios+=("$ratio") gos+=("$go_ms") torches+=("$best")
	done
	echo "$cfg: medians of $PAIRS rounds: GoMLX $(median "${gos[@]}") ms, best PyTorch $(median "${torches[@]}") ms, ratio $("$PYTHON" -c 'import statistics,sys; print(f"{statistics.median(float(x) for x in sys.argv[1:]):.2f}")' "${ratios[@]}")x"
done
