#!/usr/bin/env bash
# `make test`: compose.yaml publishes only the shortener and redirect APIs beyond loopback (admin ports serve
# metrics and readiness, idgen has no auth), and takes PostgreSQL's password from the environment, never a literal.
set -euo pipefail
compose="$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)/compose.yaml"
fail=0
# Every published "host:container" mapping of ports 8082 and 90xx must name 127.0.0.1 as the host address.
while read -r mapping; do
  case "$mapping" in
    127.0.0.1:*) ;;
    *:8082 | *:908[0-9] | *:909[0-9]) echo "compose-exposure: $mapping is published on every interface" >&2; fail=1 ;;
  esac
done < <(grep -oE '"[0-9.:]+:[0-9]+"' "$compose" | tr -d '"')
# shellcheck disable=SC2016  # the `$` are literal: a password given as ${POSTGRES_PASSWORD} is the good case
if grep -nE '(POSTGRES_PASSWORD:|postgres://[^:]+:)[[:space:]]*[^$[:space:]]' "$compose" | grep -v '\${POSTGRES_PASSWORD' >&2; then
  echo "compose-exposure: a literal PostgreSQL password in $compose" >&2
  fail=1
fi
[ "$fail" = 0 ] && echo "compose-exposure: ok"
exit "$fail"
