#!/usr/bin/env bash
# Click events end to end, against the services `make run` started: a `loadtest webhook-receiver` on a free port
# gets a click webhook for the key of .run/env, one new link is visited open loop at EVENTS_RATE (10,000) req/s for
# EVENTS_DURATION (30s) through the redirects on REDIRECT_URL, and the receiver measures each event's latency from
# its visit (`data.at`) to arrival and the delivery rate. When the load ends it waits until the receiver has an
# event for every visit (at most EVENTS_DRAIN_SECONDS, 60), then stops it and deletes the webhook.
# Before the load, the link is visited every half second until a first event arrives (the redirects have learnt
# that the owner takes clicks); those few probe events are in the receiver's counts and latencies, and are
# reported apart.
# The events' counters (redirect_click_events_total on the redirects' admin ports, EVENTS_REDIRECT_ADMINS,
# "9081 9091"; shortener_webhook_deliveries_total on the shortener's, EVENTS_SHORTENER_ADMIN, 9080) are read before
# the load, when it ends and at the end: queued minus delivered when the load ends is the delivery backlog then.
# The load generator and the receiver run on core 1 (taskset) when there are 2+ cores; the services as make run
# left them.
# Results: a table on stdout and bench/results/<date>-events.json.
set -euo pipefail
root="$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)"
run="$root/.run"
rate="${EVENTS_RATE:-10000}"
duration="${EVENTS_DURATION:-30s}"
drain_seconds="${EVENTS_DRAIN_SECONDS:-60}"
connections="${EVENTS_CONNECTIONS:-32}"
shortener_admin="${EVENTS_SHORTENER_ADMIN:-9080}"
read -r -a redirect_admins <<<"${EVENTS_REDIRECT_ADMINS:-9081 9091}"
stamp="$(date -u +%Y-%m-%dT%H%M%SZ)"
out="$root/bench/results"
work="$run/bench/$stamp-events"
mkdir -p "$out" "$work"

[ -s "$run/env" ] || { echo "no $run/env: start the services with 'make run' first" >&2; exit 1; }
set -a
# shellcheck source=/dev/null # KEY=value lines written by run.sh
. "$run/env"
set +a
curl -fsS -o /dev/null "http://127.0.0.1:$shortener_admin/readyz" ||
  { echo "the shortener is not ready on :$shortener_admin: start it with 'make run'" >&2; exit 1; }
# The same build as run.sh's (one feature set, so nothing is built twice).
(cd "$root" && cargo build --release --quiet --bins)
target="${CARGO_TARGET_DIR:-target}"; [[ "$target" = /* ]] || target="$root/$target"
loadtest="$target/release/loadtest"
browser=(--header "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
  --header "Referer: https://news.example.com/2026/12/a-story-that-links-here")
if [ "$(nproc)" -ge 2 ]; then load_cpu=(taskset -c 1); else load_cpu=(); fi
# shellcheck source=scripts/bench-webhook-lib.sh
. "$root/scripts/bench-webhook-lib.sh"
trap 'receiver_stop; webhook_delete' EXIT

code="$(curl -fsS -H "Authorization: Bearer $SNOWLINK_API_KEY" -H 'content-type: application/json' \
  -d "{\"long_url\": \"https://example.com/events-bench/$stamp\"}" "$SHORTENER_URL/v1/urls" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["code"])')"
echo "$code" >"$work/one.txt"
port="$(free_port)"
webhook_create "$port" "$work/secret"
receiver_start "$port" "$work/secret" "$work/receiver.json" "$work/receiver.log"
await_first_event "$port" "$REDIRECT_URL" "$code" 30
probe_events="$(receiver_summary "$port" distinct)"

echo "== click events: one link at $rate visits/s for $duration, webhook to 127.0.0.1:$port"
event_counters "${redirect_admins[@]}" "$shortener_admin" >"$work/counters-before.json"
"${load_cpu[@]}" "$loadtest" redirect --target "$REDIRECT_URL" --codes "$work/one.txt" --rate "$rate" \
  --duration "$duration" --warmup 0s --connections "$connections" --label events-redirect \
  --json "$work/redirect.json" "${browser[@]}"
event_counters "${redirect_admins[@]}" "$shortener_admin" >"$work/counters-load-end.json"
# Every visit answered is an event to come; unanswered ones (timeouts) may be too, so they are not waited for.
visits="$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["ok"])' "$work/redirect.json")"
expected=$((visits + probe_events))
waited=0
until [ "$(receiver_summary "$port" distinct)" -ge "$expected" ] || [ "$waited" -ge "$((drain_seconds * 2))" ]; do
  sleep 0.5
  waited=$((waited + 1))
done
event_counters "${redirect_admins[@]}" "$shortener_admin" >"$work/counters-after.json"
receiver_stop
webhook_delete

python3 - "$work" "$out/$stamp-events.json" "$rate" "$duration" "$probe_events" "$((waited / 2))" <<'PY'
import json, os, sys
work, target, rate, duration, probe, drained_in = sys.argv[1:7]
load = lambda name: json.load(open(os.path.join(work, name)))
redirect, received = load("redirect.json"), load("receiver.json")
before, load_end, after = (load(f"counters-{n}.json") for n in ("before", "load-end", "after"))
delta = lambda a, b: {kind: {o: int(b[kind].get(o, 0) - a[kind].get(o, 0)) for o in b[kind]} for kind in b}
visits, probe = redirect["ok"], int(probe)
at_end = delta(before, load_end)
backlog = at_end["click_events"].get("queued", 0) - at_end["deliveries"].get("delivered", 0)
p = redirect["latency"]["percentiles"]
result = {
    "cores": os.cpu_count(), "rate_asked": float(rate), "duration": duration,
    "redirect": {"achieved_rps": redirect["achieved_rps"], "ok": visits, "errors": redirect["errors"],
                 "p50_ms": p["p50"] / 1000, "p99_ms": p["p99"] / 1000},
    "visits": visits, "probe_events": probe,
    "events": {key: received[key] for key in ("received", "distinct", "duplicates", "bad_signatures", "malformed")},
    "events_missing": max(0, visits + probe - received["distinct"]),
    "delivery_latency_ms": received["latency_ms"], "delivered_per_second": received["delivered_per_second"],
    "first_received": received["first_received"], "last_received": received["last_received"],
    "drain_seconds_after_load": int(drained_in),
    "counters": {"during_load": at_end, "whole_run": delta(before, after)},
    "delivery_backlog_at_load_end": backlog,
}
json.dump(result, open(target, "w"), indent=2)
l = received["latency_ms"]
print(f"\nclick events, {rate} visits/s asked for {duration} on {os.cpu_count()} cores")
print("| visits/s achieved | redirect p50 / p99 ms | visits | events distinct (dup, bad sig) | missing "
      "| delivery p50 / p90 / p99 / max ms | delivered/s | backlog at load end |")
print("|---|---|---|---|---|---|---|---|")
print(f"| {redirect['achieved_rps']:,.0f} | {p['p50']/1000:.2f} / {p['p99']/1000:.2f} | {visits:,} "
      f"| {received['distinct'] - probe:,} (+{probe} probe; {received['duplicates']}, {received['bad_signatures']}) "
      f"| {result['events_missing']:,} | {l['p50']:.0f} / {l['p90']:.0f} / {l['p99']:.0f} / {l['max']:.0f} "
      f"| {received['delivered_per_second']:,.0f} | {backlog:,} |")
print("counters over the whole run:", json.dumps(result["counters"]["whole_run"]))
print(f"results: {target}")
PY
