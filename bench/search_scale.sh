#!/usr/bin/env bash
# Index build time, peak memory and search latency at several catalog sizes.
# Usage: bench/search_scale.sh N [N ...]   (e.g. 1000 100000 1181436)
# Shops are generated once into ${BENCH_DIR:-/tmp/shopagent-bench}/shop-N.
set -euo pipefail
cd "$(dirname "$0")/.."
go build -o bin/shopagent ./cmd/shopagent
dir=${BENCH_DIR:-/tmp/shopagent-bench}
mkdir -p "$dir"
for n in "$@"; do
  shop="$dir/shop-$n"
  # WebShop's instructions, 10 products each up to all 12,087 of them, then more per goal.
  goals=$(( n / 10 ))
  if [ "$goals" -ge 12087 ]; then goals=all; fi
  if [ ! -f "$shop/items_shuffle.json" ]; then
    /usr/bin/time -f "generate $n: %e s, peak %M KB" ./bin/shopagent env generate --goals "$goals" --products "$n" --seed 1 --quiet --out "$shop"
  fi
  echo "products=$n: $(./bin/shopagent env bench --data "$shop" --queries 2000 2>/dev/null)"
done
