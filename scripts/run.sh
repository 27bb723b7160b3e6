#!/usr/bin/env bash
# `make run`: services up, release build, idgen + shortener + two redirect replicas (sharing port 8081) in the
# background with logs in .run/logs/, a development API key, a code key, and .run/env as the README describes.
# `scripts/run.sh stop` stops the processes it started (by their pid files).
set -euo pipefail
root="$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)"
run="$root/.run"
# Binaries are where cargo puts them: CARGO_TARGET_DIR when set (a shared target dir), else target/.
target="${CARGO_TARGET_DIR:-target}"; [[ "$target" = /* ]] || target="$root/$target"
bin="$target/release"
mkdir -p "$run/logs" "$run/pids"

alive() { [ -d "/proc/$1" ] && ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$1/stat" 2>/dev/null; }

# Every process is told at once, then waited for: each serves on for its drain delay (5 s) with /readyz at 503,
# drains, and writes what it holds (the redirects' hit counts), so one at a time would take the sum.
stop() {
  local pids=()
  for pidfile in "$run"/pids/*.pid; do
    [ -e "$pidfile" ] || continue
    pid="$(cat "$pidfile")"
    if alive "$pid"; then
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
    fi
    rm -f "$pidfile"
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 400); do
      alive "$pid" || break
      sleep 0.1
    done
  done
}

start() { # name, args...
  local name="$1" program="$2"; shift 2
  setsid "$bin/$program" "$@" >>"$run/logs/$name.log" 2>&1 < /dev/null &
  echo $! > "$run/pids/$name.pid"
}

wait_http() { # name, url
  for _ in $(seq 100); do
    curl -fsS -o /dev/null "$2" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "$1 did not become ready; see $run/logs/$1.log" >&2
  tail -n 20 "$run/logs/$1.log" >&2
  exit 1
}

if [ "${1:-}" = stop ]; then stop; exit 0; fi

"$root/scripts/services.sh" up
set -a
# shellcheck source=/dev/null # KEY=value lines written at run time
. <("$root/scripts/services.sh" env)
set +a
command -v curl >/dev/null || { echo "curl is needed by make run; install it (apt-get install curl)" >&2; exit 1; }
(cd "$root" && cargo build --release --quiet --bins)
stop
# The key behind compact codes, made once and kept with the data: the database records its fingerprint, and a
# shortener with another key refuses to start (it would give out codes already given). Unreadable to others.
codekey="$run/code-key"
if [ ! -s "$codekey" ]; then
  (umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' > "$codekey")
fi
CODE_KEY="$(cat "$codekey")"
export CODE_KEY
"$bin/shortener" migrate >>"$run/logs/shortener.log" 2>&1
start idgen idgen
# Webhooks may reach a receiver on this machine (off by default: see --allow-private-webhooks).
start shortener shortener serve --allow-private-webhooks
start redirect-1 redirect --reuse-port --admin-listen 127.0.0.1:9081
start redirect-2 redirect --reuse-port --admin-listen 127.0.0.1:9091
wait_http idgen http://127.0.0.1:9082/readyz
wait_http shortener http://127.0.0.1:9080/readyz
wait_http redirect-1 http://127.0.0.1:9081/readyz
wait_http redirect-2 http://127.0.0.1:9091/readyz

# The key and .run/env are created unreadable to others (umask in a subshell), not chmod-ed after: between the
# two, another user of the machine could open them.
# A kept key is used again only if this database knows it: each topology has a database of its own, and `clean`
# starts one afresh.
keyfile="$run/dev-api-key"
key_works() {
  curl -fsS -o /dev/null -H "Authorization: Bearer $(cat "$keyfile")" "http://127.0.0.1:8080/v1/urls?limit=1"
}
if [ ! -s "$keyfile" ] || ! key_works 2>/dev/null; then
  rm -f "$keyfile"
  (umask 077 && "$bin/shortener" keys create --name development 2>>"$run/logs/shortener.log" > "$keyfile")
fi
rm -f "$run/env" # an existing file would keep its old mode
(umask 077 && {
  echo "SNOWLINK_API_KEY=$(cat "$keyfile")"
  echo "CODE_KEY=$CODE_KEY"
  echo "SHORTENER_URL=http://127.0.0.1:8080"
  echo "REDIRECT_URL=http://127.0.0.1:8081"
  echo "IDGEN_URL=http://127.0.0.1:8082"
  "$root/scripts/services.sh" env
} > "$run/env")

cat <<MSG
snowlink is running (logs in .run/logs/, settings in .run/env; stop with 'make down').
Open the web page: http://127.0.0.1:8080/  (API key: the SNOWLINK_API_KEY line of .run/env)
Or shorten and follow a link with curl:
  . .run/env && curl -s -H "Authorization: Bearer \$SNOWLINK_API_KEY" -H 'content-type: application/json' -d '{"long_url":"https://example.com/"}' \$SHORTENER_URL/v1/urls
  curl -si \$REDIRECT_URL/<code> | head -n 3
MSG
