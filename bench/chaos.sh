#!/usr/bin/env bash
# Chaos test of the policy server, on loopback only and bounded in time (about 2 minutes
# on 2 cores): load at concurrency 32 while Redis is killed (kill -9) and restarted, arms
# are reloaded (a third of the reloads with a corrupt policy) and one replica is killed
# with kill -9 and restarted 5 times; then the same kills of a single server without
# Redis. It counts acknowledged requests against the logged rows and the posteriors and
# prints one table per scenario (requests, 5xx by cause, decisions and rewards lost, max
# latency during each fault); it exits non-zero when a check fails.
#   bash bench/chaos.sh                       # both scenarios
#   SCENARIO=redis bash bench/chaos.sh        # or standalone
#   THROUGHPUT=5 bash bench/chaos.sh          # instead: /act throughput without and with --logs
#   THROUGHPUT=5 BASELINE_BIN=/tmp/old-shopagent bash bench/chaos.sh   # ... and an older binary's logs
#   THROUGHPUT=5 POLICY=DIR bash bench/chaos.sh   # ... serving DIR (e.g. go run ./bench/exportpolicy -out DIR)
# Env: CONCURRENCY (32), KILLS (5). Needs redis-server (make deps installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v redis-server >/dev/null 2>&1 || make deps
go build -o bin/shopagent ./cmd/shopagent
go build -o bin/chaos ./bench/chaos
exec timeout 600 bin/chaos -bin bin/shopagent -scenario "${SCENARIO:-both}" -concurrency "${CONCURRENCY:-32}" \
  -kills "${KILLS:-5}" -throughput "${THROUGHPUT:-0}" -baseline-bin "${BASELINE_BIN:-}" -policy "${POLICY:-}"
