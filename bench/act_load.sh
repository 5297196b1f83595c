#!/usr/bin/env bash
# Load benchmark of POST /act with wrk: one exported policy (or a lexical baseline)
# served alone; each request is one of BODIES real results pages of the built-in shop
# (the first page of a train goal searched with its instruction, 10 product actions),
# drawn at random; concurrency 1, 8 and 32, then a long run at concurrency 8 up to
# REQUESTS requests (or MAX_SECONDS), then 20 reloads; the server's RSS before, after the
# requests and after the reloads, and its action-cache hit rate.
#   bash bench/act_load.sh DIR [LABEL]    # DIR: shopagent export output, or a dir with lexical.json
# Env: DURATION (15s per concurrency level), REQUESTS (100000), MAX_SECONDS (180),
#      PORT (18080), THREADS (ONNX Runtime intra-op threads, 1), BODIES (100 pages),
#      CACHE_MB (the server's --action-cache-mb, 64; 0 encodes every action of every request).
# Prints one markdown table row per concurrency level and the RSS figures.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${1:?usage: bench/act_load.sh POLICY_DIR [LABEL]}
LABEL=${2:-$(basename "$DIR")}
DURATION=${DURATION:-15s} REQUESTS=${REQUESTS:-100000} MAX_SECONDS=${MAX_SECONDS:-180}
PORT=${PORT:-18080} THREADS=${THREADS:-1} BODIES=${BODIES:-100} CACHE_MB=${CACHE_MB:-64}
if ! command -v wrk >/dev/null 2>&1; then
  (apt-get update -qq || sudo apt-get update -qq) && (apt-get install -y -qq wrk || sudo apt-get install -y -qq wrk)
fi
go build -o bin/shopagent ./cmd/shopagent
tmp=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT

# Real requests: the first results page of each of the first BODIES train goals, searched
# with the goal's instruction, with its first 10 products (pages with fewer are skipped).
python3 - "$tmp" "$BODIES" <<'EOF'
import json, subprocess, sys
tmp, want = sys.argv[1], int(sys.argv[2])
def step(goal, *actions):
    args = ["./bin/shopagent", "env", "step", "--split", "train", "--goal", str(goal), "--obs", "text_rich"]
    for a in actions:
        args += ["--action", a]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    return [json.loads(l) for l in out.splitlines() if l.strip()]
bodies, goal = [], 0
while len(bodies) < want and goal < 724:
    first = step(goal, "search[placeholder]")[0]
    ins = first["text"].split("Instruction:")[1].strip().split("\n")[0].strip()
    page = step(goal, f"search[{ins}]")[-1]
    goal += 1
    acts = page["available_actions"]
    products = [a for a in acts if a.startswith("click[") and a[6:-1].lower() not in ("back to search", "next >", "< prev")][:10]
    if len(products) == 10:
        bodies.append({"session_id": "SESSION", "instruction": ins, "observation": page["text"], "available_actions": products})
assert bodies, "no results page with 10 products"
with open(f"{tmp}/bodies.jsonl", "w") as f:
    for b in bodies:
        f.write(json.dumps(b) + "\n")
json.dump(bodies[0], open(f"{tmp}/body.json", "w"))
print(f"{len(bodies)} request bodies from {goal} goals", file=sys.stderr)
EOF
cat > "$tmp/act.lua" <<EOF
local bodies = {}
for line in io.lines("$tmp/bodies.jsonl") do bodies[#bodies + 1] = line end
local counter = 0
request = function()
  counter = counter + 1
  local session = string.format("wrk-%d-%d", math.random(1, 1000000000), math.floor(counter / 20))
  local body = string.gsub(bodies[math.random(1, #bodies)], "SESSION", session)
  return wrk.format("POST", "/act", { ["Content-Type"] = "application/json" }, body)
end
EOF

./bin/shopagent serve --arms "a=$DIR" --addr "127.0.0.1:$PORT" --admin-token bench \
  --ort-threads "$THREADS" --action-cache-mb "$CACHE_MB" --reward-timeout 1h > "$tmp/serve.log" 2>&1 &
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
cache=$(curl -fs "http://127.0.0.1:$PORT/metrics" | awk '
  /^shopagent_action_cache_hits_total/ {h = $2} /^shopagent_action_cache_misses_total/ {m = $2}
  /^shopagent_action_cache_entries/ {e = $2}
  END { if (h + m > 0) printf "%d distinct actions looked up, %.2f%% cache hits, %d cached", h + m, 100 * h / (h + m), e; else printf "no action cache" }')
for _ in $(seq 20); do
  curl -fs -X POST -H 'Authorization: Bearer bench' "http://127.0.0.1:$PORT/admin/reload" > /dev/null
done
curl -fs -H 'Content-Type: application/json' --data-binary @"$tmp/body.json" "http://127.0.0.1:$PORT/act" > /dev/null
rss2=$(rss)
echo
echo "$LABEL: RSS ${rss0} MiB after start, ${rss1} MiB after ${total} requests, ${rss2} MiB after 20 reloads"
echo "$LABEL: action cache over the ${total} requests: $cache"
