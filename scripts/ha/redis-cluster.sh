#!/usr/bin/env bash
# The Redis Cluster of the high-availability topology (DESIGN.md, Contract: 3 masters, 3 replicas on
# 127.0.0.1:56381–56386, cluster bus on the port − 10000), data and nodes.conf under .run/ha/redis/PORT.
#
# Sourced by scripts/services.sh (after its helpers log, die, fail_with_log, wait_for, pidfile_alive,
# pidfile_pid, wait_gone, port_open and HOST, RUN, LOGS): it defines redis_cluster_up|down|status|env|clean and
# nothing else runs. Run directly (`scripts/ha/redis-cluster.sh up|down|status|env|clean|kill PORT`) it sources
# services.sh itself: for a person or a test that wants only the cluster.
#
# Environment: REDIS_CLUSTER_PORTS (56381 … 56386), REDIS_CLUSTER_NODE_TIMEOUT_MS (2000).

REDIS_CLUSTER_PORTS="${REDIS_CLUSTER_PORTS:-56381 56382 56383 56384 56385 56386}"
# A master is declared failed after this much silence and its replica promoted about a second later. Loopback
# never drops a packet, so 2 s tells a dead node from a slow one; the default 15 s would make every failover
# here a quarter of a minute of refused writes on a third of the slots.
REDIS_CLUSTER_NODE_TIMEOUT_MS="${REDIS_CLUSTER_NODE_TIMEOUT_MS:-2000}"

redis_cluster_root() { echo "$RUN/ha/redis"; }
redis_cluster_dir() { echo "$(redis_cluster_root)/$1"; }
redis_cluster_pidfile() { echo "$(redis_cluster_dir "$1")/redis.pid"; }
redis_cluster_log() { echo "$LOGS/ha-redis-$1.log"; }
redis_cluster_ports() { read -r -a REDIS_CLUSTER_PORT_LIST <<<"$REDIS_CLUSTER_PORTS"; }

redis_cluster_cli() { # port args...
  local port="$1"; shift
  timeout 3 redis-cli -h "$HOST" -p "$port" "$@" 2>/dev/null
}

redis_cluster_running() { pidfile_alive "$(redis_cluster_pidfile "$1")" redis-server; }
redis_cluster_answers() { [ "$(redis_cluster_cli "$1" ping)" = PONG ]; }
# One field of CLUSTER INFO (redis-cli prints it with CRLF line ends).
redis_cluster_info() { # port field
  redis_cluster_cli "$1" cluster info | tr -d '\r' | sed -n "s/^$2://p"
}
redis_cluster_node_ok() { [ "$(redis_cluster_info "$1" cluster_state)" = ok ]; }

redis_cluster_start_node() { # port
  local port="$1" dir pidfile log
  dir="$(redis_cluster_dir "$port")"; pidfile="$(redis_cluster_pidfile "$port")"; log="$(redis_cluster_log "$port")"
  redis_cluster_running "$port" && return 0
  rm -f "$pidfile"
  port_open "$port" && die "redis-cluster: $HOST:$port is already in use by something that is not ours"
  mkdir -p "$dir" "$LOGS"
  # No persistence: it is a cache, and a restarted node resyncs from its master. nodes.conf (in --dir) keeps
  # its identity, so it rejoins as what the cluster says it is now (a killed master comes back as a replica).
  # replica-validity-factor 0: a replica is always promotable, however long ago it last heard its master.
  # require-full-coverage no: while one master's slots are failing over, the other two thirds keep serving.
  redis-server --port "$port" --bind "$HOST" --cluster-enabled yes --cluster-config-file nodes.conf \
    --cluster-port "$((port - 10000))" --cluster-node-timeout "$REDIS_CLUSTER_NODE_TIMEOUT_MS" \
    --cluster-replica-validity-factor 0 --cluster-require-full-coverage no \
    --save '' --appendonly no --daemonize yes --pidfile "$pidfile" --logfile "$log" --dir "$dir" ||
    fail_with_log "redis-$port" "$log" "redis-server failed to start"
}

# The cluster exists when any node has all slots assigned; only a set of empty nodes gets `--cluster create`.
redis_cluster_created() {
  local port
  for port in "${REDIS_CLUSTER_PORT_LIST[@]}"; do
    [ "$(redis_cluster_info "$port" cluster_slots_assigned)" = 16384 ] && return 0
  done
  return 1
}

# Whole: every node answers with cluster_state:ok and all slots ok, and every node sees 3 masters with slots and 3
# connected replicas, none flagged fail or pfail (every node: a node restarted a moment ago still shows its old
# view for a while, e.g. itself as the master of slots its replica took over).
redis_cluster_whole() {
  local port nodes masters replicas
  for port in "${REDIS_CLUSTER_PORT_LIST[@]}"; do
    redis_cluster_node_ok "$port" || return 1
    [ "$(redis_cluster_info "$port" cluster_slots_ok)" = 16384 ] || return 1
    nodes="$(redis_cluster_cli "$port" cluster nodes)" || return 1
    grep -q 'fail' <<<"$nodes" && return 1
    masters="$(awk '$3 ~ /master/ && $8 == "connected" && NF >= 9' <<<"$nodes" | wc -l)"
    replicas="$(awk '$3 ~ /slave/ && $8 == "connected"' <<<"$nodes" | wc -l)"
    [ "$masters" -eq 3 ] && [ "$replicas" -eq 3 ] || return 1
  done
}

redis_cluster_all_running() {
  local port
  for port in "${REDIS_CLUSTER_PORT_LIST[@]}"; do redis_cluster_running "$port" || return 1; done
}

redis_cluster_all_answer() {
  local port
  for port in "${REDIS_CLUSTER_PORT_LIST[@]}"; do redis_cluster_answers "$port" || return 1; done
}

redis_cluster_up() {
  local port addresses=()
  redis_cluster_ports
  for port in "${REDIS_CLUSTER_PORT_LIST[@]}"; do redis_cluster_start_node "$port"; done
  wait_for redis-cluster "$(redis_cluster_log "${REDIS_CLUSTER_PORT_LIST[0]}")" redis_cluster_all_running \
    redis_cluster_all_answer
  if ! redis_cluster_created; then
    for port in "${REDIS_CLUSTER_PORT_LIST[@]}"; do addresses+=("$HOST:$port"); done
    log "redis-cluster: creating the cluster (log: $LOGS/ha-redis-create.log)"
    timeout 60 redis-cli --cluster create "${addresses[@]}" --cluster-replicas 1 --cluster-yes \
      >>"$LOGS/ha-redis-create.log" 2>&1 ||
      fail_with_log redis-cluster "$LOGS/ha-redis-create.log" "redis-cli --cluster create failed"
  fi
  wait_for redis-cluster "$(redis_cluster_log "${REDIS_CLUSTER_PORT_LIST[0]}")" redis_cluster_all_running \
    redis_cluster_whole
}

redis_cluster_down() {
  local port pid
  redis_cluster_ports
  for port in "${REDIS_CLUSTER_PORT_LIST[@]}"; do
    pid="$(pidfile_pid "$(redis_cluster_pidfile "$port")")"
    if redis_cluster_running "$port"; then
      redis_cluster_cli "$port" shutdown nosave >/dev/null || kill -TERM "$pid" 2>/dev/null || true
      wait_gone "$pid" redis-server 10 || die "redis-$port: pid $pid did not stop"
    fi
    rm -f "$(redis_cluster_pidfile "$port")"
  done
}

# One line a node: name, address, role, state; non-zero unless every node runs with cluster_state:ok and the
# cluster is whole (3 masters, 3 replicas).
redis_cluster_status() {
  local port role state healthy=0
  redis_cluster_ports
  for port in "${REDIS_CLUSTER_PORT_LIST[@]}"; do
    if ! redis_cluster_running "$port"; then
      role=-; state=stopped; healthy=1
    elif ! redis_cluster_answers "$port"; then
      role=-; state="not answering"; healthy=1
    else
      role="$(redis_cluster_cli "$port" role | head -n 1)"
      [ "$role" = slave ] && role=replica
      state="cluster_state:$(redis_cluster_info "$port" cluster_state)"
      [ "$state" = cluster_state:ok ] || healthy=1
    fi
    printf '%-10s %-38s %s\n' "redis-$port" "$HOST:$port $role" "$state"
  done
  if [ "$healthy" -eq 0 ] && ! redis_cluster_whole; then
    printf '%-10s %-38s %s\n' redis-cluster "$HOST:${REDIS_CLUSTER_PORT_LIST[0]}…" "not whole (want 3 masters, 3 replicas)"
    healthy=1
  fi
  return "$healthy"
}

# fred's form: redis-cluster://host:port?node=host:port&node=… (any one node is enough to find the rest; all
# are listed so that a client starting while one is down still finds the cluster). Single-quoted: the lines are
# sourced by shells (`. <(… env)`, .run/env), where a bare & would end the assignment.
redis_cluster_env() {
  local port url="" sep="?"
  redis_cluster_ports
  for port in "${REDIS_CLUSTER_PORT_LIST[@]}"; do
    if [ -z "$url" ]; then
      url="redis-cluster://$HOST:$port"
    else
      url="$url${sep}node=$HOST:$port"; sep="&"
    fi
  done
  echo "REDIS_URL='$url'"
}

redis_cluster_clean() {
  redis_cluster_down
  rm -rf "$(redis_cluster_root)"
}

# For tests of failover: SIGKILL one node by its pid file, as a crash would.
redis_cluster_kill() { # port
  local pid; pid="$(pidfile_pid "$(redis_cluster_pidfile "$1")")"
  redis_cluster_running "$1" || die "redis-$1: not running"
  kill -KILL "$pid"
  wait_gone "$pid" redis-server 5 || die "redis-$1: pid $pid did not die"
}

# Run on its own, it sources services.sh for the helpers, and services.sh sources this file again: the guard keeps
# that second reading (whose BASH_SOURCE is $0 too when started by its absolute path) from running this again.
if [[ "${BASH_SOURCE[0]}" == "$0" && -z "${REDIS_CLUSTER_SH_MAIN:-}" ]]; then
  REDIS_CLUSTER_SH_MAIN=1
  set -euo pipefail
  # shellcheck source=scripts/services.sh
  . "$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")/../services.sh"
  case "${1:-}" in
    up | down | status | env | clean) redis_cluster_"$1" ;;
    kill) [ $# -eq 2 ] || die "usage: $0 kill PORT"; redis_cluster_kill "$2" ;;
    *) echo "usage: $0 up|down|status|env|clean|kill PORT" >&2; exit 2 ;;
  esac
fi
