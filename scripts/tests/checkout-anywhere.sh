#!/usr/bin/env bash
# `make test`: scripts/services.sh works from a checkout its services' users cannot reach. As root, a clone under a
# 0700 directory (/root on Debian: how containers and fresh VMs run) once stopped with "the postgres user cannot
# reach …/.run/pg". Runs a second copy of the services on ports of its own, checks that PostgreSQL answers the app
# over TCP with TLS, then cleans up everything it made, inside the checkout and out.
set -euo pipefail
here="$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)"
if [ "$(id -u)" -ne 0 ]; then
  echo "checkout-anywhere: as a normal user every directory of the checkout is ours; the case is root's, skipped"
  exit 0
fi
home="$(mktemp -d)" # mode 0700, like /root
chmod 700 "$home"
checkout="$home/snowlink"
mkdir -p "$checkout/scripts"
cp "$here/scripts/services.sh" "$checkout/scripts/"
cp -r "$here/scripts/ha" "$checkout/scripts/" # sourced by services.sh
export PG_PORT=55452 PG_REPLICA_PORT=55453 REDIS_PORT=56459 REDIS_TLS_PORT=56460 ZK_PORT=52191 SNOWLINK_FAST_PG=1
services="$checkout/scripts/services.sh"
cleanup() { "$services" clean >/dev/null 2>&1 || true; rm -rf "$home"; }
trap cleanup EXIT

runuser -u postgres -- test -x "$checkout" && { echo "checkout-anywhere: postgres can reach $checkout; not the case under test" >&2; exit 1; }
"$services" up
set -a
# shellcheck source=/dev/null # KEY=value lines written at run time
. <("$services" env)
set +a
answer="$(psql "$DATABASE_URL?sslmode=verify-full&sslrootcert=$SNOWLINK_TLS_CA" -XAtc 'select 1 + 1')"
[ "$answer" = 2 ] || { echo "checkout-anywhere: PostgreSQL answered '$answer', expected 2" >&2; exit 1; }
data="$(readlink -f "$checkout/.run/pg")"
[ -d "$data/primary" ] || { echo "checkout-anywhere: no data under $data" >&2; exit 1; }
"$services" clean >/dev/null
[ ! -e "$data" ] || { echo "checkout-anywhere: clean left $data behind" >&2; exit 1; }
echo "checkout-anywhere: ok (services from a 0700 checkout as root; PostgreSQL data in $data, removed by clean)"
