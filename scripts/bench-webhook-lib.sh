# Sourced by scripts/bench.sh and scripts/bench-events.sh: a click webhook pointed at a `loadtest webhook-receiver`
# of the bench's own. Needs $loadtest, $SHORTENER_URL, $SNOWLINK_API_KEY (from .run/env) and the load_cpu array.
# The webhook is created through `make run`'s shortener, which delivers (run.sh starts it with
# --allow-private-webhooks, so 127.0.0.1 is allowed); any redirect on the same database and Redis takes the events.
# shellcheck shell=bash disable=SC2154 # loadtest and load_cpu are the sourcing script's

receiver_pid=""
webhook_id=""

# A port free now on 127.0.0.1 (the webhook's URL must name it before the receiver, which needs the secret, starts).
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Creates a click webhook for the key of .run/env to http://127.0.0.1:PORT/hook; sets webhook_id and prints nothing
# (the secret goes to the file given, readable by us only).
webhook_create() { # port, secret file
  local answer
  answer="$(curl -fsS -H "Authorization: Bearer $SNOWLINK_API_KEY" -H 'content-type: application/json' \
    -d "{\"url\": \"http://127.0.0.1:$1/hook\", \"events\": [\"click\"]}" "$SHORTENER_URL/v1/webhooks")"
  webhook_id="$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["id"])' "$answer")"
  (umask 077 && python3 -c 'import json, sys; print(json.loads(sys.argv[1])["secret"])' "$answer" >"$2")
}

webhook_delete() {
  [ -n "$webhook_id" ] || return 0
  curl -fsS -o /dev/null -X DELETE -H "Authorization: Bearer $SNOWLINK_API_KEY" \
    "$SHORTENER_URL/v1/webhooks/$webhook_id" || echo "could not delete webhook $webhook_id" >&2
  webhook_id=""
}

# Starts the receiver on PORT checking signatures with the secret in SECRET_FILE (passed in its environment, not
# on its command line); its summary goes to JSON when it stops.
receiver_start() { # port, secret file, json, log
  WEBHOOK_SECRET="$(cat "$2")" "${load_cpu[@]}" "$loadtest" webhook-receiver --listen "127.0.0.1:$1" \
    --json "$3" >"$4" 2>&1 &
  receiver_pid=$!
  for _ in $(seq 100); do
    curl -fsS -o /dev/null "http://127.0.0.1:$1/" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "the webhook receiver did not start; see $4" >&2
  return 1
}

# Stops the receiver (it writes its summary) and waits for it.
receiver_stop() {
  [ -n "$receiver_pid" ] || return 0
  kill -TERM "$receiver_pid" 2>/dev/null || true
  wait "$receiver_pid" 2>/dev/null || true
  receiver_pid=""
}

# The receiver's summary so far (JSON); one field of it with a second argument.
receiver_summary() { # port[, field]
  curl -fsS "http://127.0.0.1:$1/" | python3 -c 'import json, sys
summary = json.load(sys.stdin)
print(json.dumps(summary) if len(sys.argv) < 2 else summary[sys.argv[1]])' "${@:2}"
}

# Visits CODE on the redirect at BASE every half second until the receiver has an event (the redirect has
# learnt that the owner takes clicks, and delivery works) or SECONDS pass.
await_first_event() { # receiver port, redirect base URL, code, seconds
  local tries=$(($4 * 2))
  for _ in $(seq "$tries"); do
    curl -sS -o /dev/null "$2/$3" || true
    sleep 0.5
    [ "$(receiver_summary "$1" distinct)" -eq 0 ] || return 0
  done
  echo "no click event reached the receiver in $4 s (is the shortener delivering, with --allow-private-webhooks?)" >&2
  return 1
}

# The events' counters of the services on the given admin ports, as JSON: {"click_events": {outcome: n} (summed over
# redirects), "deliveries": {outcome: n} (over shorteners)}. A port that does not answer counts nothing.
event_counters() { # admin port...
  local port
  for port in "$@"; do curl -fsS "http://127.0.0.1:$port/metrics" || true; done | python3 -c '
import json, sys
series = {"redirect_click_events_total": "click_events", "shortener_webhook_deliveries_total": "deliveries"}
counts = {name: {} for name in series.values()}
for line in sys.stdin:
    name = line.split("{", 1)[0]
    if name in series and "outcome=\"" in line:
        outcome = line.split("outcome=\"", 1)[1].split("\"", 1)[0]
        counts[series[name]][outcome] = counts[series[name]].get(outcome, 0) + float(line.rsplit(" ", 1)[1])
print(json.dumps(counts))'
}
