#!/usr/bin/env bash
# Load benchmark of POST /act with wrk: one exported policy (or a lexical baseline)
# served alone, a real results page of the built-in shop with 10 product actions per
# request, concurrency 1, 8 and 32, then a long run at concurrency 8 up to REQUESTS
# requests (or MAX_SECONDS), then 20 reloads; the server's RSS before, after the
# requests and after the reloads.
#   bash bench/act_load.sh DIR [LABEL]    # DIR: shopagent export output, or a dir with lexical.json
# Env: DURATION (15s per concurrency level), REQUESTS (100000), MAX_SECONDS (180),
#      PORT (18080), THREADS (ONNX Runtime intra-op threads, 1).
# Prints one markdown table row per concurrency level and the RSS figures.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${1:?usage: bench/act_load.sh POLICY_DIR [LABEL]}
LABEL=${2:-$(basename "$DIR")}
DURATION=${DURATION:-15s} REQUESTS=${REQUESTS:-100000} MAX_SECONDS=${MAX_SECONDS:-180}
PORT=${PORT:-18080} THREADS=${THREADS:-1}
if ! command -v wrk >/dev/null 2>&1; then
  (apt-get update -qq || sudo apt-get update -qq) && (apt-get install -y -qq wrk || sudo apt-get install -y -qq wrk)
fi
go build -o bin/shopagent ./cmd/shopagent
tmp=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT

# A real request: goal 0 of the test split, searched with its instruction, first page.
./bin/shopagent env step --goal 0 --obs text_rich --action 'search[placeholder]' > "$tmp/first.jsonl"
python3 - "$tmp" <<'EOF'
import json, subprocess, sys
tmp = sys.argv[1]
lines = [json.loads(l) for l in open(f"{tmp}/first.jsonl") if l.strip()]
ins = lines[0]["text"].split("Instruction:")[1].strip().split("\n")[0].strip()
out = subprocess.run(["./bin/shopagent", "env", "step", "--goal", "0", "--obs", "text_rich",
                      "--action", f"search[{ins}]"], capture_output=True, text=True, check=True).stdout
page = [json.loads(l) for l in out.splitlines() if l.strip()][-1]
acts = page["available_actions"]
products = [a for a in acts if a.startswith("click[") and a[6:-1].lower() not in ("back to search", "next >", "< prev")][:10]
assert len(products) == 10, products
body = {"session_id": "SESSION", "instruction": ins, "observation": page["text"], "available_actions": products}
json.dump(body, open(f"{tmp}/body.json", "w"))
EOF
cat > "$tmp/act.lua" <<EOF
local f = io.open("$tmp/body.json"); local template = f:read("*a"); f:close()
local counter = 0
request = function()
  counter = counter + 1
  local session = string.format("wrk-%d-%d", math.random(1, 1000000000), math.floor(counter / 20))
  local body = string.gsub(template, "SESSION", session)
  return wrk.format("POST", "/act", { ["Content-Type"] = "application/json" }, body)
end
EOF

./bin/shopagent serve --arms "a=$DIR" --addr "127.0.0.1:$PORT" --admin-token bench \
  --ort-threads "$THREADS" --reward-timeout 1h > "$tmp/serve.log" 2>&1 &
pid=$!
for _ in $(seq 300); do curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
rss() { awk '/VmRSS/ {printf "%.0f", $2/1024}' /proc/$pid/status; }
# One warm-up request, and the request's check: 10 probabilities come back.
curl -fs -H 'Content-Type: application/json' --data-binary @"$tmp/body.json" "http://127.0.0.1:$PORT/act" > "$tmp/one.json"
python3 -c "import json,sys; r=json.load(open('$tmp/one.json')); assert len(r['probabilities'])==10, r"
rss0=$(rss)
total=0
run() { # conns duration
  local c=$1 d=$2 t=$(( $1 < 2 ? $1 : 2 ))
  wrk -t"$t" -c"$c" -d"$d" --latency -s "$tmp/act.lua" "http://127.0.0.1:$PORT" > "$tmp/wrk.txt"
  local p50 p99 rps n
  p50=$(awk '$1=="50%" {print $2}' "$tmp/wrk.txt"); p99=$(awk '$1=="99%" {print $2}' "$tmp/wrk.txt")
  rps=$(awk '/Requests\/sec/ {print $2}' "$tmp/wrk.txt"); n=$(awk '/requests in/ {print $1}' "$tmp/wrk.txt")
  local errs; errs=$(awk '/Non-2xx/ {print $NF}' "$tmp/wrk.txt"); errs=${errs:-0}
  total=$(( total + n ))
  echo "| $LABEL | $c | $p50 | $p99 | $rps | $n | $errs |"
}
echo "| policy | concurrency | p50 | p99 | requests/s | requests | non-2xx |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
run 1 "$DURATION"; run 8 "$DURATION"
rps8=$(awk '/Requests\/sec/ {print int($2)+1}' "$tmp/wrk.txt")
run 32 "$DURATION"
left=$(( REQUESTS - total ))
if [ "$left" -gt 0 ]; then
  secs=$(( left / rps8 + 1 )); [ "$secs" -gt "$MAX_SECONDS" ] && secs=$MAX_SECONDS
  run 8 "${secs}s"
fi
rss1=$(rss)
for _ in $(seq 20); do
  curl -fs -X POST -H 'Authorization: Bearer bench' "http://127.0.0.1:$PORT/admin/reload" > /dev/null
done
curl -fs -H 'Content-Type: application/json' --data-binary @"$tmp/body.json" "http://127.0.0.1:$PORT/act" > /dev/null
rss2=$(rss)
echo
echo "$LABEL: RSS ${rss0} MiB after start, ${rss1} MiB after ${total} requests, ${rss2} MiB after 20 reloads"
