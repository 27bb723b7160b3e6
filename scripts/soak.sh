#!/usr/bin/env bash
# `make soak` (not in CI): SOAK_SECONDS (default 600) of mixed load against the stack `make run` started: Zipf
# redirects at SOAK_REDIRECT_RATE (5000/s) with a browser's User-Agent, creates at SOAK_CREATE_RATE (50/s), and
# scripts/soak_client.py's hostile mix (password PATCHes of own and missing links, wrong passwords, random and
# forged-fresh codes, exports, searches). Samples every service's RSS every 10 s and prints first/max/last per
# process, the load generators' reports and the hostile mix's answers. Pass marks: RSS flat, no 5xx for valid
# requests (a 503 that sheds load at once, with Retry-After, is counted apart).
set -euo pipefail
root="$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)"
run="$root/.run"
out="$run/soak/$(date -u +%Y%m%dT%H%M%SZ)"
seconds="${SOAK_SECONDS:-600}"
target="${CARGO_TARGET_DIR:-target}"; [[ "$target" = /* ]] || target="$root/$target"
bin="$target/release"
mkdir -p "$out"
[ -r "$run/env" ] || { echo "soak: no .run/env; run 'make run' first" >&2; exit 1; }
set -a
# shellcheck source=/dev/null # KEY=value lines written at run time
. "$run/env"
set +a

"$bin/loadtest" seed --count 10000 --out "$out/codes.txt" >"$out/seed.log"
# The hostile mix sets passwords on links of its own, not on those the redirect load follows. Every client is
# 127.0.0.1 here, so once the mix's made-up codes spend the per-client bound on unknown codes, the redirect load's
# links that are not in a replica's memory answer 429 too (counted as errors in its report).
"$bin/loadtest" seed --count 1000 --out "$out/hostile-codes.txt" >>"$out/seed.log"
ua='User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36'

rss() { # name pid → "name rss_kib"
  awk -v name="$1" '/^VmRSS:/ { print name, $2 }' "/proc/$2/status" 2>/dev/null || true
}
sample() {
  while :; do
    for pidfile in "$run"/pids/*.pid; do
      rss "$(basename "$pidfile" .pid)" "$(cat "$pidfile")"
    done | sed "s/^/$(date +%s) /" >>"$out/rss.txt"
    sleep 10
  done
}
sample & sampler=$!
trap 'kill "$sampler" 2>/dev/null || true' EXIT

"$bin/loadtest" redirect --codes "$out/codes.txt" --zipf 1.0 --rate "${SOAK_REDIRECT_RATE:-5000}" \
  --duration "${seconds}s" --header "$ua" --label soak-redirect --json "$out/redirect.json" >"$out/redirect.txt" &
redirects=$!
"$bin/loadtest" shorten --rate "${SOAK_CREATE_RATE:-50}" --duration "${seconds}s" --label soak-create \
  --json "$out/create.json" >"$out/create.txt" &
creates=$!
python3 "$root/scripts/soak_client.py" --seconds "$seconds" --codes "$out/hostile-codes.txt" >"$out/hostile.json"
wait "$redirects" "$creates"
kill "$sampler" 2>/dev/null || true

echo "soak: $seconds s; results in $out"
cat "$out/redirect.txt" "$out/create.txt"
echo "hostile mix (kind status: answers):"; cat "$out/hostile.json"
echo "RSS by process (KiB): first max last"
awk '{ if (!($2 in first)) first[$2] = $3; if ($3 > max[$2]) max[$2] = $3; last[$2] = $3 }
     END { for (p in first) printf "  %-12s %8d %8d %8d\n", p, first[p], max[p], last[p] }' "$out/rss.txt"
