#!/usr/bin/env bash
# `make test`: Schemathesis (property-based testing from the OpenAPI document, every check) against a debug-built
# shortener on free loopback ports, with its own fresh database, Redis prefix and ZooKeeper lease root and an API
# key of its own; then the shortener is stopped and the database dropped. Needs the services of
# `scripts/services.sh up`. Every call the document gains is tested here without another line.
#
# Schemathesis comes from PyPI, pinned with hashes (scripts/schemathesis-requirements.txt), in a virtualenv under
# .run/tools/. Examples per operation are bounded (SCHEMATHESIS_MAX_EXAMPLES) so the run takes a minute or so; the
# seed is fixed (SCHEMATHESIS_SEED to try another) so a failure replays.
set -euo pipefail

ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
REQUIREMENTS="$ROOT/scripts/schemathesis-requirements.txt"
VENV="$ROOT/.run/tools/schemathesis"
MAX_EXAMPLES="${SCHEMATHESIS_MAX_EXAMPLES:-100}"
TARGET="${CARGO_TARGET_DIR:-target}"; [[ $TARGET = /* ]] || TARGET="$ROOT/$TARGET"
SHORTENER="$TARGET/debug/shortener"
WORK="$(mktemp -d)"
DATABASE="schemathesis_$$"

say() { printf 'schemathesis: %s\n' "$*" >&2; }
fail() { say "FAIL: $*"; exit 1; }

# The venv is rebuilt whenever the pinned requirements change (their hash is stamped into it).
install_schemathesis() {
  local stamp="$VENV/requirements.sha256" want
  want="$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)"
  [[ -x $VENV/bin/schemathesis && "$(cat "$stamp" 2>/dev/null)" == "$want" ]] && return
  say "installing Schemathesis into $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check --require-hashes --no-deps -r "$REQUIREMENTS"
  echo "$want" >"$stamp"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ADMIN_URL with its database name replaced by $1.
database_url() {
  python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' \
    "$ADMIN_URL" "$1"
}

stop() {
  if [[ -n ${SERVER_PID:-} ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [[ -n ${ADMIN_URL:-} ]]; then
    psql --quiet "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $DATABASE WITH (FORCE)" >/dev/null ||
      say "could not drop database $DATABASE"
  fi
  rm -rf "$WORK"
}

wait_ready() { # admin URL
  for _ in $(seq 150); do
    curl -fsS -o /dev/null "$1/readyz" 2>/dev/null && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.2
  done
  tail -n 30 "$WORK/shortener.log" >&2
  fail "the shortener did not become ready"
}

if [[ -z ${DATABASE_URL:-} ]]; then
  set -a
  # shellcheck source=/dev/null # KEY=value lines written at run time
  . <("$ROOT/scripts/services.sh" env)
  set +a
fi
install_schemathesis
(cd "$ROOT" && cargo build --quiet -p shortener --bin shortener)
# The services' database, from which this run's own is created and dropped.
ADMIN_URL="$DATABASE_URL"
trap stop EXIT

psql --quiet "$ADMIN_URL" -c "CREATE DATABASE $DATABASE" >/dev/null
api_port="$(free_port)" admin_port="$(free_port)"
# No read replica: the replica URL of the services names their database, not this fresh one (the shortener would
# search and export from a database without these links).
unset DATABASE_REPLICA_URL
DATABASE_URL="$(database_url "$DATABASE")"
code_key="$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')" # this run's database only
export DATABASE_URL \
  REDIS_PREFIX="schemathesis:$$:" \
  IDGEN_LEASE_ROOT="/snowlink-schemathesis/idgen" \
  SHORTENER_LISTEN="127.0.0.1:$api_port" \
  SHORTENER_ADMIN_LISTEN="127.0.0.1:$admin_port" \
  SHORTENER_HTTP_WORKERS=2 \
  SHORTENER_CLEANUP=off \
  CODE_KEY="$code_key" \
  RUST_LOG=warn
"$SHORTENER" migrate >>"$WORK/shortener.log" 2>&1 || { cat "$WORK/shortener.log" >&2; fail "migrate"; }
api_key="$("$SHORTENER" keys create --name schemathesis 2>>"$WORK/shortener.log")"
"$SHORTENER" serve >>"$WORK/shortener.log" 2>&1 </dev/null &
SERVER_PID=$!
wait_ready "http://127.0.0.1:$admin_port"

# A link for the reads of one link to find (schemathesis.toml passes its code to them).
SNOWLINK_CODE="$(curl -fsS -H "Authorization: Bearer $api_key" -H 'Content-Type: application/json' \
  -d '{"long_url": "https://example.com/schemathesis"}' "http://127.0.0.1:$api_port/v1/urls" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["code"])')"
export SNOWLINK_CODE

say "running every check, at most $MAX_EXAMPLES examples per operation"
started=$SECONDS
# One worker: with two threads, Hypothesis's concurrent ast.parse trips a CPython 3.11 bug ("AST constructor
# recursion depth mismatch") and the run errors out.
# The key reaches schemathesis.toml through the environment, not argv, so it is not in the process list.
export SNOWLINK_API_KEY="$api_key"
if ! (cd "$WORK" && "$VENV/bin/schemathesis" --config-file "$ROOT/scripts/schemathesis.toml" run \
  "http://127.0.0.1:$api_port/v1/openapi.json" --url "http://127.0.0.1:$api_port" \
  --checks all --max-examples "$MAX_EXAMPLES" --seed "${SCHEMATHESIS_SEED:-1}" --workers 1 --no-color); then
  grep -E 'panicked|ERROR' "$WORK/shortener.log" | tail -n 20 >&2 || true
  fail "see the failures above"
fi
say "ok in $((SECONDS - started)) s"
