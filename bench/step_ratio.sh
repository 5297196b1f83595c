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
# Before each round the script waits (up to WAIT_IDLE seconds, default 600; 0 = no wait)
# until /proc/stat shows the CPUs at least 90% idle over 3 seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
PAIRS=${PAIRS:-3}
CONFIGS=${CONFIGS:-"tiny128 small"}
STEPS=${STEPS:-5}
PYTHON=${PYTHON:-/usr/bin/python3}
bin=$(mktemp -d)/bench.test
go test -c -o "$bin" ./bench/

WAIT_IDLE=${WAIT_IDLE:-600}

# wait_idle returns once the machine was >= 90% idle over 3 s, or after WAIT_IDLE seconds.
wait_idle() {
	local deadline=$((SECONDS + WAIT_IDLE))
	while ((SECONDS < deadline)); do
		read -r _ u1 n1 s1 i1 w1 q1 sq1 st1 _ < /proc/stat
		sleep 3
		read -r _ u2 n2 s2 i2 w2 q2 sq2 st2 _ < /proc/stat
		local busy=$(((u2 - u1) + (n2 - n1) + (s2 - s1) + (q2 - q1) + (sq2 - sq1) + (st2 - st1)))
		local idle=$(((i2 - i1) + (w2 - w1)))
		if ((idle * 10 >= (busy + idle) * 9)); then
			return
		fi
	done
	echo "(machine not idle after ${WAIT_IDLE}s; measuring anyway)"
}

median() { "$PYTHON" -c 'import statistics,sys; print(round(statistics.median(float(x) for x in sys.argv[1:])))' "$@"; }

for cfg in $CONFIGS; do
	ratios=() gos=() torches=()
	for i in $(seq "$PAIRS"); do
		wait_idle
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
