#!/usr/bin/env bash
# `make bench`: the benchmark run benchmarkers asked for, in one go on this machine. `make run`'s stack is
# started (release build), 100,000 links are seeded, then: the ceiling server (a fixed 302), the redirect with a
# hot Zipf key set, with its local cache off (every request through Redis), with every request a cache miss
# (fresh codes, database lookups), latency at half the measured redirect maximum (open loop), and creates.
# Servers under test are pinned to core 0 and the load generator to core 1 (taskset) when there are 2+ cores.
# Results: a table on stdout, bench/results/<date>.json and bench/results/<date>.svg.
set -euo pipefail
root="$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)"
run="$root/.run"
duration="${BENCH_DURATION:-10s}"
connections="${BENCH_CONNECTIONS:-32}"
stamp="$(date -u +%Y-%m-%dT%H%M%SZ)"
out="$root/bench/results"
work="$run/bench/$stamp"
mkdir -p "$out" "$work"

"$root/scripts/run.sh" >/dev/null
set -a; . "$run/env"; set +a
(cd "$root" && cargo build --release --quiet -p loadtest)
target="${CARGO_TARGET_DIR:-target}"; [[ "$target" = /* ]] || target="$root/$target"
bin="$target/release"
loadtest="$bin/loadtest"
redirect="$bin/redirect"

if [ "$(nproc)" -ge 2 ]; then server_cpu=(taskset -c 0); load_cpu=(taskset -c 1); else server_cpu=(); load_cpu=(); fi
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

serve() { # name, port, command...
  local name="$1" port="$2"; shift 2
  "${server_cpu[@]}" "$@" >>"$work/$name.log" 2>&1 &
  pids+=("$!")
  for _ in $(seq 100); do
    curl -fsS -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null && return 0
    curl -sS -o /dev/null "http://127.0.0.1:$port/x" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "$name did not start; see $work/$name.log" >&2; exit 1
}

measure() { # name, loadtest args...
  local name="$1"; shift
  "${load_cpu[@]}" "$loadtest" "$@" --duration "$duration" --warmup 2s --label "$name" --json "$work/$name.json"
}

echo "== seeding 100,000 links through the batch API"
"$loadtest" seed --count 100000 --concurrency 4 --out "$work/codes.txt" | tee "$work/seed.txt"

# One redirect process with one HTTP worker on core 0, against one ceiling worker on the same core: equal budgets.
serve ceiling 8190 "$loadtest" ceiling --listen 127.0.0.1:8190 --workers 1
measure ceiling redirect --target http://127.0.0.1:8190 --codes "$work/codes.txt" --connections "$connections"
kill "${pids[-1]}"; unset 'pids[-1]'

serve redirect-hot 8191 "$redirect" --listen 127.0.0.1:8191 --admin-listen 127.0.0.1:9191 --http-workers 1
measure redirect-hot redirect --target http://127.0.0.1:8191 --codes "$work/codes.txt" --zipf 1.0 --connections "$connections"
max_rps="$(python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["achieved_rps"]))' "$work/redirect-hot.json")"
half=$((max_rps / 2))
measure "redirect-open-loop-at-${half}" redirect --target http://127.0.0.1:8191 --codes "$work/codes.txt" --zipf 1.0 \
  --rate "$half" --connections "$connections"
kill "${pids[-1]}"; unset 'pids[-1]'

# Uniform keys with the local cache off: every request is a Redis GET (Zipf would let single flight merge them).
serve redirect-redis 8192 "$redirect" --listen 127.0.0.1:8192 --admin-listen 127.0.0.1:9192 --http-workers 1 \
  --local-cache-memory-mb 0
measure redirect-redis-only redirect --target http://127.0.0.1:8192 --codes "$work/codes.txt" --zipf 0 \
  --connections "$connections"
kill "${pids[-1]}"; unset 'pids[-1]'

echo "== fresh links for the cache-miss run (their Redis keys dropped)"
"$loadtest" seed --count 100000 --concurrency 4 --out "$work/fresh.txt" >/dev/null
redis-cli -u "$REDIS_URL" --scan --pattern 'snowlink:l:*' | xargs -r -n 1000 redis-cli -u "$REDIS_URL" del >/dev/null
serve redirect-miss 8193 "$redirect" --listen 127.0.0.1:8193 --admin-listen 127.0.0.1:9193 --http-workers 1
measure redirect-cache-miss redirect --target http://127.0.0.1:8193 --codes "$work/fresh.txt" --keys sequential \
  --connections "$connections"
kill "${pids[-1]}"; unset 'pids[-1]'

# A shortener of its own on core 0 without rate limits (the defaults would measure the limiter) or cleanup.
shortener="$bin/shortener"
serve shortener-bench 8194 "$shortener" serve --listen 127.0.0.1:8194 --admin-listen 127.0.0.1:9194 \
  --rate-limit-ip-per-minute 0 --rate-limit-key-per-minute 0 --cleanup off
measure shorten shorten --target http://127.0.0.1:8194 --connections 64
kill "${pids[-1]}"; unset 'pids[-1]'

python3 - "$work" "$out/$stamp.json" <<'PY'
import json, os, sys
work, target = sys.argv[1], sys.argv[2]
runs = [json.load(open(os.path.join(work, f))) for f in sorted(os.listdir(work)) if f.endswith(".json")]
ceiling = next(r for r in runs if r["label"] == "ceiling")["achieved_rps"]
seed = open(os.path.join(work, "seed.txt")).read().strip()
print(f"\nsnowlink benchmark {os.path.basename(work)} on {os.cpu_count()} cores (load generator and servers share the machine)")
print(f"{seed}")
print(f"{'run':<34}{'req/s':>10}{'x ceiling':>10}{'p50 ms':>9}{'p99 ms':>9}{'p99.9 ms':>10}{'errors':>8}")
for r in runs:
    ratio = f"{r['achieved_rps'] / ceiling:.2f}" if r["label"].startswith(("redirect", "ceiling")) else "-"
    lat = r["latency"]["percentiles"]
    print(f"{r['label']:<34}{r['achieved_rps']:>10.0f}{ratio:>10}{lat['p50']/1000:>9.3f}{lat['p99']/1000:>9.3f}"
          f"{lat['p99.9']/1000:>10.3f}{sum(r['errors'].values()):>8}")
json.dump({"cores": os.cpu_count(), "seed": seed, "runs": runs}, open(target, "w"), indent=2)
PY
"$loadtest" plot "$work"/*.json -o "$out/$stamp.svg" --title "snowlink redirect and shorten latency ($stamp)"
echo "results: $out/$stamp.json, $out/$stamp.svg"
