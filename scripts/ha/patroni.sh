# shellcheck shell=bash
# The high-availability topology's PostgreSQL: three nodes (55432, 55433, 55434) managed by Patroni (REST API on
# the PostgreSQL port + 2576: 58008-58010) with the ZooKeeper ensemble as its store. Patroni comes from PyPI into a
# project-local virtualenv, pinned with hashes (scripts/ha/patroni-requirements.txt).
# Sourced by scripts/services.sh after its helpers (pg_dir, as_pg, is_root, pg_bin_dir, new_password, pg_locale,
# wait_for, pidfile_alive, pid_alive, wait_gone, port_open, print_status_line, HOST, RUN, LOGS, TLS_DIR);
# defines patroni_up|down|status|env|clean, patroni_install and patroni_node_pidfile.

PATRONI_NODES=(1 2 3)
PATRONI_SCOPE=snowlink
PATRONI_REQUIREMENTS="$SCRIPT_DIR/ha/patroni-requirements.txt"

patroni_pg_port() { echo $((55431 + $1)); }
patroni_rest_port() { echo $((58007 + $1)); }

# Where the data goes follows the single topology's decision (pg_dir): beside it, so that as root a checkout the
# postgres user cannot reach keeps it under /var/lib/snowlink/<checkout id>/ha too. The virtualenv lives there as
# well, since Patroni runs as postgres; it is outside ha/pg so that `clean` does not throw away a download.
patroni_paths() {
  local base
  base="$(dirname "$(pg_dir)")"
  if [ "$base" = "$RUN" ]; then HA_PG_BASE="$RUN/ha"; else HA_PG_BASE="$base/ha"; fi
  HA_PG_DIR="$HA_PG_BASE/pg"
  HA_VENV="$HA_PG_BASE/patroni-venv"
  HA_PG_SOCK="$HA_PG_DIR/sock"
  HA_PG_TLS="$HA_PG_DIR/tls"
  HA_PG_APP_PASSWORD_FILE="$HA_PG_DIR/app-password"
  HA_PG_SUPER_PASSWORD_FILE="$HA_PG_DIR/superuser-password"
  HA_PG_REPL_PASSWORD_FILE="$HA_PG_DIR/replication-password"
}
patroni_paths

patroni_node_dir() { echo "$HA_PG_DIR/$1"; }
patroni_node_pidfile() { echo "$HA_PG_DIR/$1/patroni.pid"; }
patroni_node_log() { echo "$LOGS/patroni-$1.log"; }
# postmaster.pid's first line is the server's pid: what a test kills beside Patroni's to kill the whole node.
patroni_node_postmaster_pidfile() { echo "$HA_PG_DIR/$1/data/postmaster.pid"; }

patroni_node_running() { pidfile_alive "$(patroni_node_pidfile "$1")" patroni; }

# The virtualenv is rebuilt whenever the pinned requirements change (their hash is stamped into it). This is the
# one step that needs the network; with the stamp in place `up` works offline.
patroni_install() {
  local stamp="$HA_VENV/requirements.sha256" want
  want="$(sha256sum "$PATRONI_REQUIREMENTS" | cut -d' ' -f1)"
  [[ -x $HA_VENV/bin/patroni && "$(cat "$stamp" 2>/dev/null)" == "$want" ]] && return 0
  log "installing Patroni into $HA_VENV (log: $LOGS/patroni-install.log)"
  mkdir -p "$HA_PG_BASE" "$LOGS"
  rm -rf "$HA_VENV"
  # umask 022: the postgres user runs what is installed here.
  if ! (umask 022 && /usr/bin/python3 -m venv "$HA_VENV" &&
    "$HA_VENV/bin/pip" install --disable-pip-version-check --require-hashes --no-deps \
      -r "$PATRONI_REQUIREMENTS") >>"$LOGS/patroni-install.log" 2>&1; then
    fail_with_log patroni "$LOGS/patroni-install.log" "installing Patroni failed"
  fi
  echo "$want" >"$stamp"
}

patroni_prepare_dirs() {
  local n f
  mkdir -p "$HA_PG_DIR" "$HA_PG_SOCK" "$HA_PG_TLS" "$LOGS"
  chmod 700 "$HA_PG_DIR" "$HA_PG_SOCK"
  if [ "$HA_PG_BASE" != "$RUN/ha" ]; then
    mkdir -p "$RUN/ha"
    ln -sfn "$HA_PG_DIR" "$RUN/ha/pg"
  fi
  for f in "$HA_PG_APP_PASSWORD_FILE" "$HA_PG_SUPER_PASSWORD_FILE" "$HA_PG_REPL_PASSWORD_FILE"; do
    [ -s "$f" ] || (umask 077 && new_password >"$f")
  done
  install -m 600 "$TLS_DIR/server.key" "$HA_PG_TLS/server.key"
  install -m 644 "$TLS_DIR/server.pem" "$HA_PG_TLS/server.pem"
  for n in "${PATRONI_NODES[@]}"; do mkdir -p "$(patroni_node_dir "$n")"; done
  if is_root; then
    chown -R postgres:postgres "$HA_PG_DIR"
    runuser -u postgres -- test -w "$HA_PG_DIR" ||
      die "patroni: the postgres user cannot reach $HA_PG_DIR (a parent directory is not searchable by it)"
  fi
}

# Run by Patroni once, on the node that initialises the cluster, with a superuser connection string as $1: the
# application's role and database (Patroni 4 has no bootstrap.users). The password goes through stdin, not argv.
patroni_write_post_bootstrap() {
  local script="$HA_PG_DIR/post-bootstrap.sh"
  cat >"$script" <<EOF
#!/usr/bin/env bash
# Written by scripts/ha/patroni.sh: creates the snowlink role and database after Patroni's bootstrap.
set -euo pipefail
pw="\$(cat '$HA_PG_APP_PASSWORD_FILE')"
printf "create role snowlink with login createdb nosuperuser password '%s';\\n" "\$pw" |
  '$(pg_bin_dir)/psql' -X -q -v ON_ERROR_STOP=1 "\$1"
'$(pg_bin_dir)/psql' -X -q -v ON_ERROR_STOP=1 -c 'create database snowlink owner snowlink' "\$1"
EOF
  chmod 755 "$script"
}

# One YAML file a node (it holds passwords: mode 600, owned by whoever runs Patroni).
patroni_write_config() {
  local n="$1" dir cfg zk_hosts fast=""
  dir="$(patroni_node_dir "$n")"
  cfg="$dir/patroni.yml"
  zk_hosts="$(zk_ensemble_connect | sed "s/[^,]*/'&'/g")"
  # Test clusters skip fsync (the machine is not going to lose power under a test). synchronous_commit stays on:
  # it is what makes synchronous replication wait, and so what keeps an acknowledged create across a failover.
  if [ "${SNOWLINK_FAST_PG:-}" = 1 ]; then fast="        fsync: 'off'"; fi
  (umask 077 && cat >"$cfg" <<EOF
# written by scripts/ha/patroni.sh
scope: $PATRONI_SCOPE
namespace: /patroni/
name: pg$n
log:
  level: INFO
restapi:
  listen: $HOST:$(patroni_rest_port "$n")
  connect_address: $HOST:$(patroni_rest_port "$n")
zookeeper:
  hosts: [$zk_hosts]
bootstrap:
  dcs:
    # Short for loopback, so a failover takes seconds: the leader key lives ttl seconds without a renewal (with
    # ZooKeeper: the leader's session timeout), Patroni runs its loop every loop_wait and retries the store for
    # retry_timeout. Patroni's rule: ttl >= loop_wait + 2 * retry_timeout (20 >= 2 + 2 * 8). 20 s is also the
    # least ttl Patroni 4 accepts (it raises a smaller one to 20), so a dead primary's key lasts about 20 s: the
    # bulk of the ~21 s failover measured here. retry_timeout is what a ZooKeeper election may take before the
    # primary is demoted: 4 s was too short on a busy CI machine (a killed ZooKeeper leader cost 10 s of creates).
    ttl: 20
    loop_wait: 2
    retry_timeout: 8
    # ZooKeeper unreachable is not a partition when every member still answers the primary's REST calls: the
    # primary stays primary instead of demoting itself for the length of a ZooKeeper outage.
    failsafe_mode: true
    maximum_lag_on_failover: 1048576
    # A commit is acknowledged only once a synchronous standby has it, and only that standby may be promoted:
    # no acknowledged create is lost in a failover.
    synchronous_mode: true
    # Not strict: when no standby is left, the primary goes on alone (asynchronously) rather than refusing every
    # write. With three nodes that takes two failures at once; taking writes then is the availability we want,
    # and the window in which a third failure could lose commits is the time to bring one node back.
    synchronous_mode_strict: false
    postgresql:
      use_pg_rewind: true
      use_slots: true
      parameters:
        wal_level: replica
        hot_standby: 'on'
        wal_log_hints: 'on'
        max_wal_senders: 10
        max_replication_slots: 10
        max_connections: 200
        # As in the single topology: a slot cannot make a primary keep WAL without end for a dead node, and a
        # connection stalled mid-handshake cannot hold back DROP DATABASE for a minute.
        max_slot_wal_keep_size: 2GB
        authentication_timeout: 5s
$fast
  initdb:
    - encoding: UTF8
    - locale: $(pg_locale)
    - auth-local: trust
    - auth-host: scram-sha-256
  post_bootstrap: $HA_PG_DIR/post-bootstrap.sh
postgresql:
  listen: $HOST:$(patroni_pg_port "$n")
  connect_address: $HOST:$(patroni_pg_port "$n")
  data_dir: $dir/data
  bin_dir: $(pg_bin_dir)
  pgpass: $dir/pgpass
  use_unix_socket: true
  # A base backup waits for a checkpoint; the default spread one made each new node wait about 90 s.
  basebackup:
    - checkpoint: fast
  # A node that cannot be rewound after a failover is re-cloned from the primary instead of staying down.
  remove_data_directory_on_rewind_failure: true
  remove_data_directory_on_diverged_timelines: true
  authentication:
    superuser:
      username: postgres
      password: '$(cat "$HA_PG_SUPER_PASSWORD_FILE")'
    replication:
      username: replicator
      password: '$(cat "$HA_PG_REPL_PASSWORD_FILE")'
  parameters:
    unix_socket_directories: '$HA_PG_SOCK'
    ssl: 'on'
    ssl_cert_file: '$HA_PG_TLS/server.pem'
    ssl_key_file: '$HA_PG_TLS/server.key'
  pg_hba:
    - local all all trust
    - local replication all trust
    - host replication replicator $HOST/32 scram-sha-256
    - host all all $HOST/32 scram-sha-256
EOF
  )
  if is_root; then chown postgres:postgres "$cfg"; fi
}

patroni_node_start() {
  local n="$1" pidfile i port
  pidfile="$(patroni_node_pidfile "$n")"
  patroni_node_running "$n" && return 0
  rm -f "$pidfile"
  for port in "$(patroni_pg_port "$n")" "$(patroni_rest_port "$n")"; do
    # A postgres of a node whose Patroni was killed still holds its port: Patroni adopts a running server of
    # its own data dir, so only a foreign process is an error.
    if port_open "$port" && ! pidfile_alive "$(patroni_node_postmaster_pidfile "$n")" postgres; then
      die "patroni-$n: $HOST:$port is already in use by something that is not ours"
    fi
  done
  patroni_write_config "$n"
  echo "=== $(date '+%F %T') started by scripts/services.sh ===" >>"$(patroni_node_log "$n")"
  # The inner shell (as postgres when root) writes its own pid and execs Patroni, so the pid file is Patroni's.
  # shellcheck disable=SC2016 # expanded by the inner shell, on purpose
  PATRONI_PID="$pidfile" PATRONI_BIN="$HA_VENV/bin/patroni" PATRONI_CFG="$(patroni_node_dir "$n")/patroni.yml" \
    setsid nohup bash -c 'cd /; if [ "$(id -u)" -eq 0 ]; then
        exec runuser -u postgres -- bash -c '\''echo $$ >"$PATRONI_PID"; exec "$PATRONI_BIN" "$PATRONI_CFG"'\''
      else echo $$ >"$PATRONI_PID"; exec "$PATRONI_BIN" "$PATRONI_CFG"; fi' \
    </dev/null >>"$(patroni_node_log "$n")" 2>&1 &
  for ((i = 0; i < 50; i++)); do [ -s "$pidfile" ] && break; sleep 0.1; done
}

# The cluster as Patroni's REST API sees it: one line a member, "name host:port role state lag", from the first
# node that answers. Roles: leader, sync_standby, replica; states: running, streaming, stopped, ...
patroni_members() {
  python3 - "$HOST" "${PATRONI_NODES[@]}" <<'EOF'
import json, sys, urllib.request
host, nodes = sys.argv[1], sys.argv[2:]
for n in nodes:
    try:
        with urllib.request.urlopen(f"http://{host}:{58007 + int(n)}/cluster", timeout=2) as answer:
            cluster = json.load(answer)
    except Exception:
        continue
    for m in cluster.get("members", []):
        print(m.get("name"), f"{m.get('host')}:{m.get('port')}", m.get("role"), m.get("state"), m.get("lag", 0))
    sys.exit(0)
sys.exit(1)
EOF
}

# Whole: three members, one leader running, a synchronous standby and a replica streaming.
patroni_whole() {
  local members
  members="$(patroni_members 2>/dev/null)" || return 1
  [ "$(grep -c . <<<"$members")" -eq 3 ] &&
    grep -q ' leader running ' <<<"$members" &&
    grep -q ' sync_standby streaming ' <<<"$members" &&
    [ "$(grep -cE ' (sync_standby|replica) streaming ' <<<"$members")" -eq 2 ]
}

# The application logs in on the primary over TCP, the way the services connect.
patroni_app_answers() {
  [ -r "$HA_PG_APP_PASSWORD_FILE" ] || return 1
  [ "$(PGPASSWORD="$(cat "$HA_PG_APP_PASSWORD_FILE")" PGCONNECT_TIMEOUT=2 \
    "$(pg_bin_dir)/psql" -X -q -At -d "$(patroni_database_url "")" -c 'select 1' 2>/dev/null)" = 1 ]
}

patroni_any_running() {
  local n
  for n in "${PATRONI_NODES[@]}"; do patroni_node_running "$n" && return 0; done
  return 1
}

patroni_up() {
  local n
  patroni_install
  patroni_prepare_dirs
  patroni_write_post_bootstrap
  for n in "${PATRONI_NODES[@]}"; do patroni_node_start "$n"; done
  # The first start bootstraps (initdb on one node, base backups on the others): longer than one service's
  # timeout on a busy machine.
  SERVICES_TIMEOUT=$((SERVICES_TIMEOUT * 3)) wait_for patroni "$(patroni_node_log 1)" patroni_any_running patroni_app_answers
  SERVICES_TIMEOUT=$((SERVICES_TIMEOUT * 3)) wait_for patroni "$(patroni_node_log 1)" patroni_any_running patroni_whole
}

patroni_down() {
  local n pid pids=()
  # SIGTERM to all at once: Patroni stops its PostgreSQL and then itself; one at a time would fail the leader
  # over to a node about to be stopped.
  for n in "${PATRONI_NODES[@]}"; do
    if patroni_node_running "$n"; then
      pid="$(pidfile_pid "$(patroni_node_pidfile "$n")")"
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
    fi
  done
  for pid in "${pids[@]}"; do wait_gone "$pid" patroni 30 || die "patroni: pid $pid did not stop"; done
  # A PostgreSQL left by a Patroni that was killed (a test kills both; an interrupted test may not).
  for n in "${PATRONI_NODES[@]}"; do
    pid="$(pidfile_pid "$(patroni_node_postmaster_pidfile "$n")")"
    if [ -n "$pid" ] && pid_alive "$pid" postgres; then
      kill -INT "$pid" 2>/dev/null || true
      wait_gone "$pid" postgres 30 || die "patroni-$n: postgres pid $pid did not stop"
    fi
    rm -f "$(patroni_node_pidfile "$n")"
  done
}

# One line a node: name, address, role and state as Patroni reports them. Non-zero unless the cluster is whole.
patroni_status() {
  local n members line all=0
  members="$(patroni_members 2>/dev/null)" || members=""
  for n in "${PATRONI_NODES[@]}"; do
    line="$(grep "^pg$n " <<<"$members" | cut -d' ' -f3,4 || true)"
    if ! patroni_node_running "$n"; then line="stopped"; fi
    print_status_line "pg-$n" "$HOST:$(patroni_pg_port "$n") (rest :$(patroni_rest_port "$n"))" "${line:-unknown}"
  done
  patroni_whole || all=1
  return "$all"
}

# A URL naming every node; $1 is the query string ("" for none).
patroni_database_url() {
  local n hosts=() pw=""
  [ -r "$HA_PG_APP_PASSWORD_FILE" ] && pw="$(cat "$HA_PG_APP_PASSWORD_FILE")"
  for n in "${PATRONI_NODES[@]}"; do hosts+=("$HOST:$(patroni_pg_port "$n")"); done
  echo "postgres://snowlink:$pw@$(IFS=,; echo "${hosts[*]}")/snowlink${1:+?$1}"
}

patroni_env() {
  [ -s "$HA_PG_APP_PASSWORD_FILE" ] || die "no $HA_PG_APP_PASSWORD_FILE yet: run SNOWLINK_TOPOLOGY=ha scripts/services.sh up first"
  echo "DATABASE_URL=$(patroni_database_url target_session_attrs=read-write)"
  # Reads: every node, one URL each (the redirect takes a comma-separated list and keeps a pool and a breaker per
  # URL, so it cannot take one multi-host URL there). Any role will do: every node has the data, a replica lags by
  # little and the redirect confirms a recent miss on the primary; a dead node's breaker takes it out of turn.
  local n urls=() pw
  pw="$(cat "$HA_PG_APP_PASSWORD_FILE")"
  for n in "${PATRONI_NODES[@]}"; do urls+=("postgres://snowlink:$pw@$HOST:$(patroni_pg_port "$n")/snowlink"); done
  echo "DATABASE_REPLICA_URL=$(IFS=,; echo "${urls[*]}")"
}

patroni_clean() {
  rm -rf "$HA_PG_DIR"
  if [ -L "$RUN/ha/pg" ]; then rm -f "$RUN/ha/pg"; fi
}
