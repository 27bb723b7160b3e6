#!/usr/bin/env bash
# The mixed run of `make bench` (scripts/bench.sh calls it): does the redirect's tail hold while users create and
# edit links? `make run`'s stack as a user runs it (two redirects sharing :8081, one shortener, nothing pinned),
# an open-loop Zipf redirect at a fixed rate (BENCH_MIXED_RATE, 15,000/s) alone, then with creates beside it
# (BENCH_MIXED_WRITES, 400/s), then with edits (PATCH of a new long URL, codes drawn uniformly) beside it. Each of
# BENCH_MIXED_ROUNDS (5) rounds runs the three, BENCH_MIXED_SECONDS (20) each; CPU by process is read from /proc
# over the steady part of each run (scripts/cpu_use.py). The report gives each figure's median over the rounds:
# the corrected p99s, CPU per redirect and per write by process, each core's busy share and PostgreSQL's share.
# Usage: bench-mixed.sh WORK CODES (a folder for the reports, a file of seeded codes the key of .run/env owns).
set -euo pipefail
root="$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)"
work="$1/mixed"
codes="$2"
rate="${BENCH_MIXED_RATE:-15000}"
writes="${BENCH_MIXED_WRITES:-400}"
seconds="${BENCH_MIXED_SECONDS:-20}"
rounds="${BENCH_MIXED_ROUNDS:-5}"
[ "$seconds" -ge 6 ] || { echo "BENCH_MIXED_SECONDS must be at least 6" >&2; exit 1; }
mkdir -p "$work"
set -a
# shellcheck source=/dev/null # KEY=value lines written by run.sh
. "$root/.run/env"
set +a
target="${CARGO_TARGET_DIR:-target}"; [[ "$target" = /* ]] || target="$root/$target"
loadtest="$target/release/loadtest"
browser=(--header "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
  --header "Referer: https://news.example.com/2026/12/a-story-that-links-here")

# One run: the redirect load, and `writer` (none, shorten or edit) beside it from before its warm-up to after its
# end; CPU is sampled from 3 s in (the warm-up is 2 s) to 2 s before the end (a snapshot walking /proc takes a
# while on a busy machine, and a process that ended before it is not counted).
run() { # label, writer
  local label="$1" writer="$2" writer_pid=""
  case "$writer" in
    shorten) "$loadtest" shorten --rate "$writes" --connections 16 --duration "$((seconds + 4))s" --warmup 0s \
      --label "$label-writes" --json "$work/$label-writes.json" >/dev/null & writer_pid=$! ;;
    edit) "$loadtest" edit --codes "$codes" --rate "$writes" --connections 16 --duration "$((seconds + 4))s" \
      --warmup 0s --label "$label-writes" --json "$work/$label-writes.json" >/dev/null & writer_pid=$! ;;
  esac
  "$loadtest" redirect --target "$REDIRECT_URL" --codes "$codes" --zipf 1.0 --rate "$rate" --connections 32 \
    --duration "${seconds}s" --warmup 2s --label "$label" --json "$work/$label.json" "${browser[@]}" >/dev/null &
  local redirect_pid=$!
  sleep 3
  python3 "$root/scripts/cpu_use.py" snapshot "$work/$label.cpu-before"
  sleep "$((seconds - 3))"
  python3 "$root/scripts/cpu_use.py" snapshot "$work/$label.cpu-after"
  wait "$redirect_pid"
  [ -z "$writer_pid" ] || wait "$writer_pid"
  python3 "$root/scripts/cpu_use.py" diff "$work/$label.cpu-before" "$work/$label.cpu-after" >"$work/$label.cpu.json"
}

echo "== mixed: redirect at $rate/s alone, with $writes creates/s, with $writes edits/s ($rounds rounds of ${seconds}s)"
# run.sh has just restarted the redirects: their local caches fill from Redis first (a round measured then read a
# p99 of 250 ms alone).
"$loadtest" redirect --target "$REDIRECT_URL" --codes "$codes" --zipf 1.0 --rate "$rate" --connections 32 \
  --duration 15s --warmup 0s "${browser[@]}" >/dev/null
for round in $(seq "$rounds"); do
  run "alone-r$round" none
  run "creates-r$round" shorten
  run "edits-r$round" edit
done

python3 - "$work" "$rate" "$writes" "$rounds" <<'PY'
import json, os, statistics, sys
work, rate, writes, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
load = lambda name: json.load(open(os.path.join(work, name)))
p99 = lambda report: report["latency"]["percentiles"]["p99"] / 1000
def figures(kind, round):
    label = f"{kind}-r{round}"
    cpu, report = load(f"{label}.cpu.json"), load(f"{label}.json")
    seconds, spent = cpu["seconds"], cpu["cpu_seconds"]
    busy_seconds = cpu["busy"]["cpu"] * seconds * os.cpu_count()
    out = {"p99_ms": p99(report), "p99_uncorrected_ms": report["uncorrected_latency"]["percentiles"]["p99"] / 1000,
           "redirect_us_per_request": spent.get("redirect", 0) / (rate * seconds) * 1e6,
           "busy": dict(cpu["busy"]),
           # The machine's busy share without the load generator's own CPU (on a deployment it is elsewhere).
           "busy_without_loadtest": max(0.0, cpu["busy"]["cpu"] - spent.get("loadtest", 0) / seconds / os.cpu_count()),
           "postgres_share": spent.get("postgres", 0) / busy_seconds if busy_seconds else 0,
           "cores": {group: used / seconds for group, used in spent.items()}}
    if kind != "alone":
        writes_report = load(f"{label}-writes.json")
        out["writes_p99_ms"] = p99(writes_report)
        out["writes_errors"] = sum(writes_report["errors"].values())
    return out
def per_write(mixed, alone):
    # What the writes cost each process: its CPU beyond the same round's run alone (the redirect's hit writes
    # and the load generator's redirects are there in both), per write.
    return {group: (mixed["cores"].get(group, 0) - alone["cores"].get(group, 0)) / writes * 1e6
            for group in ("shortener", "postgres", "redis", "redirect", "other")}
median = lambda values: round(statistics.median(values), 3)
each = {kind: [figures(kind, r) for r in range(1, rounds + 1)] for kind in ("alone", "creates", "edits")}
for kind in ("creates", "edits"):
    for mixed, alone in zip(each[kind], each["alone"]):
        mixed["us_per_write"] = per_write(mixed, alone)
def medians(kind):
    runs = each[kind]
    out = {k: median([e[k] for e in runs]) for k in runs[0] if not isinstance(runs[0][k], dict)}
    for k in ("busy", "cores", "us_per_write"):
        if k in runs[0]:
            out[k] = {g: median([e[k].get(g, 0) for e in runs]) for g in runs[0][k]}
    out["rounds_p99_ms"] = [round(e["p99_ms"], 3) for e in runs]
    return out
summary = {"rate": rate, "writes_per_second": writes, "rounds": rounds,
           **{kind: medians(kind) for kind in ("alone", "creates", "edits")}}
for kind in ("creates", "edits"):
    summary[f"p99_{kind}_vs_alone"] = round(summary[kind]["p99_ms"] / summary["alone"]["p99_ms"], 2)
json.dump(summary, open(os.path.join(work, "summary.json"), "w"), indent=2)
print(f"\nmixed load: open-loop Zipf redirect at {rate:,}/s, medians of {rounds} rounds")
print("| run | redirect p99 ms (corrected) | each round | × alone | busy cpu0/cpu1 (without the load generator) | "
      "µs CPU per redirect | "
      "writes p99 ms | µs CPU per write: shortener / PostgreSQL / Redis | PostgreSQL share |")
print("|---|---|---|---|---|---|---|---|---|")
for kind, name in (("alone", "redirect alone"), ("creates", f"with {writes} creates/s"), ("edits", f"with {writes} edits/s")):
    m = summary[kind]
    ratio = "1.00" if kind == "alone" else f"{summary[f'p99_{kind}_vs_alone']:.2f}"
    writes_cells = ("–", "–") if kind == "alone" else (
        f"{m['writes_p99_ms']:.1f}",
        " / ".join(f"{m['us_per_write'][g]:.0f}" for g in ("shortener", "postgres", "redis")))
    print(f"| {name} | {m['p99_ms']:.2f} | {' '.join(f'{x:.2f}' for x in m['rounds_p99_ms'])} | {ratio} | "
          f"{m['busy'].get('cpu0', 0):.0%}/{m['busy'].get('cpu1', 0):.0%} ({m['busy_without_loadtest']:.0%}) | "
          f"{m['redirect_us_per_request']:.1f} | "
          f"{writes_cells[0]} | {writes_cells[1]} | {m['postgres_share']:.0%} |")
PY
