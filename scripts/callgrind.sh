#!/usr/bin/env bash
# Instructions per redirect answer, counted by callgrind: the yardstick for a hot-path change on a machine too
# noisy for throughput to tell a few percent apart. Runs REDIRECT_BIN (default: the release build) under
# valgrind against `make run`'s stack with one HTTP worker, warms it, then sends two open-loop windows of the same
# length at two rates (100 and 600 req/s, 10 s each), zeroing and dumping callgrind's counters around each. The
# slope, (instructions₂ − instructions₁) / (answers₂ − answers₁), cancels startup and the work that grows with time
# rather than with requests (hit flushes, timers). Every request carries a browser's User-Agent and a Referer, as
# bench.sh's do. Prints one JSON line.
# usage: scripts/callgrind.sh CODES_FILE [LABEL]   (CODES_FILE: codes to request, one per line; e.g. one code)
set -euo pipefail
root="$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)"
codes="$1"; label="${2:-callgrind}"
target="${CARGO_TARGET_DIR:-target}"; [[ "$target" = /* ]] || target="$root/$target"
bin="${REDIRECT_BIN:-$target/release/redirect}"
loadtest="$target/release/loadtest"
set -a
# shellcheck source=/dev/null # KEY=value lines written by make run
. "$root/.run/env"
set +a
work="$(mktemp -d)"
agent="User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
referer="Referer: https://news.example.com/2026/12/a-story-that-links-here"
valgrind --tool=callgrind --callgrind-out-file="$work/out" "$bin" --listen 127.0.0.1:8197 \
  --admin-listen 127.0.0.1:9197 --http-workers 1 >"$work/redirect.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 300); do curl -sS -o /dev/null http://127.0.0.1:8197/x 2>/dev/null && break; sleep 0.2; done
send() { # rate, duration, [json]
  "$loadtest" redirect --target http://127.0.0.1:8197 --codes "$codes" --rate "$1" --duration "$2" --warmup 0s \
    --connections 4 --header "$agent" --header "$referer" ${3:+--json "$3"} >/dev/null
}
send 200 5s
for rate in 100 600; do
  callgrind_control -z "$pid" >/dev/null
  send "$rate" 10s "$work/$rate.json"
  callgrind_control -d "$pid" >/dev/null
done
kill -INT "$pid"; wait "$pid" 2>/dev/null || true
python3 - "$work" "$label" <<'PY'
import json, sys
work, label = sys.argv[1:]
def total(path):
    for line in open(path):
        if line.startswith(("totals:", "summary:")):
            return int(line.split()[1])
counted = [total(f"{work}/out.{n}") for n in (1, 2)]
answers = [json.load(open(f"{work}/{rate}.json"))["ok"] for rate in (100, 600)]
slope = (counted[1] - counted[0]) / (answers[1] - answers[0])
print(json.dumps({"label": label, "instructions": counted, "answers": answers, "per_answer": round(slope)}))
PY
rm -rf "$work"
