#!/usr/bin/env bash
# Load benchmark of POST /act: starts `shopagent serve` with two arms (lexical
# baselines by default, or exported ONNX policy directories given as arguments) and
# drives it with wrk and bench/act.lua (10 actions per request).
#   bash bench/act_load.sh                 # lexical arms
#   bash bench/act_load.sh DIR_A DIR_B     # exported policies
# Env: DURATION (20s), THREADS (2), CONNS (16), PORT (18080).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-20s} THREADS=${THREADS:-2} CONNS=${CONNS:-16} PORT=${PORT:-18080}
if ! command -v wrk >/dev/null 2>&1; then
  (apt-get update -qq || sudo apt-get update -qq) && (apt-get install -y wrk || sudo apt-get install -y wrk)
fi
go build -o bin/shopagent ./cmd/shopagent
tmp=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$tmp"' EXIT
if [ $# -ge 2 ]; then
  A=$1 B=$2
else
  mkdir -p "$tmp/a" "$tmp/b"
  echo '{"name":"lex-a","temperature":0.5}' > "$tmp/a/lexical.json"
  echo '{"name":"lex-b","temperature":2}' > "$tmp/b/lexical.json"
  A=$tmp/a B=$tmp/b
fi
./bin/shopagent serve --arms "a=$A,b=$B" --addr "127.0.0.1:$PORT" --logs "$tmp/logs" --sample &
pid=$!
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
  sleep 0.2
done
wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -s bench/act.lua "http://127.0.0.1:$PORT"
curl -fs "http://127.0.0.1:$PORT/arms" | head -c 2000; echo
