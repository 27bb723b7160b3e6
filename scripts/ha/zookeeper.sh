# shellcheck shell=bash
# The high-availability topology's ZooKeeper: an ensemble of three on loopback (client ports 52181-52183, quorum
# 28881-28883, election 29881-29883), data under .run/ha/zk/N, logs in .run/logs/zookeeper-N.log.
# Sourced by scripts/services.sh after its helpers (log, die, fail_with_log, wait_for, pidfile_alive, port_open,
# wait_gone, zk_classpath, HOST, RUN, LOGS); defines zk_ensemble_up|down|status|env|clean and zk_node_pidfile.
# ZooKeeper's the store for both snowlink (worker-ID leases, cleanup election) and Patroni (leader key).

ZK_HA_NODES=(1 2 3)
ZK_HA_DIR="$RUN/ha/zk"

zk_node_client_port() { echo $((52180 + $1)); }
zk_node_dir() { echo "$ZK_HA_DIR/$1"; }
zk_node_pidfile() { echo "$ZK_HA_DIR/$1/zookeeper.pid"; }
zk_node_log() { echo "$LOGS/zookeeper-$1.log"; }

zk_node_running() { pidfile_alive "$(zk_node_pidfile "$1")" QuorumPeerMain; }

# "leader", "follower" or nothing: `srvr` reports a Mode only while the node serves (it is in a quorum).
zk_node_mode() {
  printf 'srvr' | nc -N -w 2 "$HOST" "$(zk_node_client_port "$1")" 2>/dev/null |
    sed -n 's/^Mode: //p'
}
zk_node_serves() { [ -n "$(zk_node_mode "$1")" ]; }

zk_node_write_config() {
  local n="$1" dir m
  dir="$(zk_node_dir "$n")"
  mkdir -p "$dir/data" "$LOGS"
  echo "$n" >"$dir/data/myid"
  {
    echo "# written by scripts/services.sh (ha topology)"
    # A short tick for loopback: sessions of 1-60 s, and a lost node noticed within a few ticks. initLimit and
    # syncLimit are in ticks: 5 s to join, 2.5 s of silence before a follower is dropped.
    echo "tickTime=500"
    echo "initLimit=10"
    echo "syncLimit=5"
    echo "dataDir=$dir/data"
    echo "clientPort=$(zk_node_client_port "$n")"
    echo "clientPortAddress=$HOST"
    echo "maxClientCnxns=0"
    echo "4lw.commands.whitelist=*"
    echo "admin.enableServer=false"
    echo "minSessionTimeout=1000"
    echo "maxSessionTimeout=60000"
    # Quorum and election ports below the kernel's ephemeral range (32768-60999 by default): a node binds its
    # quorum port only when it becomes leader, and in CI a client connection had taken 52882 as its local port
    # by then, so the new leader could not bind it and the election went round for 12 s.
    for m in "${ZK_HA_NODES[@]}"; do
      echo "server.$m=$HOST:$((28880 + m)):$((29880 + m))"
    done
  } >"$dir/zoo.cfg"
}

zk_node_start() {
  local n="$1" pidfile cp i
  pidfile="$(zk_node_pidfile "$n")"
  zk_node_running "$n" && return 0
  rm -f "$pidfile"
  if port_open "$(zk_node_client_port "$n")"; then
    die "zookeeper-$n: $HOST:$(zk_node_client_port "$n") is already in use by something that is not ours"
  fi
  zk_node_write_config "$n"
  cp="$(zk_classpath)"
  echo "=== $(date '+%F %T') started by scripts/services.sh ===" >>"$(zk_node_log "$n")"
  # As zk_up in services.sh: the inner shell writes its own pid and execs java, so the pid file is the JVM's.
  # shellcheck disable=SC2016 # expanded by the inner shell, on purpose
  ZK_PID="$pidfile" ZK_CP="$cp" ZK_CFG="$(zk_node_dir "$n")/zoo.cfg" setsid nohup bash -c \
    'echo $$ >"$ZK_PID"; exec java -Xms32m -Xmx192m -XX:+UseSerialGC \
       -Dzookeeper.root.logger=INFO,CONSOLE -cp "$ZK_CP" \
       org.apache.zookeeper.server.quorum.QuorumPeerMain "$ZK_CFG"' \
    </dev/null >>"$(zk_node_log "$n")" 2>&1 &
  for ((i = 0; i < 50; i++)); do [ -s "$pidfile" ] && break; sleep 0.1; done
}

zk_ensemble_up() {
  local n
  # All three first, then wait: a node serves only once a quorum (two) has formed.
  for n in "${ZK_HA_NODES[@]}"; do zk_node_start "$n"; done
  for n in "${ZK_HA_NODES[@]}"; do
    # wait_for calls its alive-check without arguments: one for this node.
    # shellcheck disable=SC2317,SC2329 # called through wait_for
    zk_alive_n() { zk_node_running "$n"; }
    wait_for "zookeeper-$n" "$(zk_node_log "$n")" zk_alive_n zk_node_serves "$n"
  done
}

zk_ensemble_down() {
  local n pidfile pid
  for n in "${ZK_HA_NODES[@]}"; do
    pidfile="$(zk_node_pidfile "$n")"
    pid="$(pidfile_pid "$pidfile")"
    if zk_node_running "$n"; then
      kill -TERM "$pid" 2>/dev/null || true
      wait_gone "$pid" QuorumPeerMain 10 || die "zookeeper-$n: pid $pid did not stop"
    fi
    rm -f "$pidfile"
  done
}

# One line a node: name, address, role. Non-zero unless every node serves.
zk_ensemble_status() {
  local n mode all=0
  for n in "${ZK_HA_NODES[@]}"; do
    if ! zk_node_running "$n"; then
      mode=stopped
    else
      mode="$(zk_node_mode "$n")"
      mode="${mode:-not serving}"
    fi
    print_status_line "zk-$n" "$HOST:$(zk_node_client_port "$n")" "$mode"
    case "$mode" in leader | follower) ;; *) all=1 ;; esac
  done
  return "$all"
}

zk_ensemble_connect() {
  local n hosts=()
  for n in "${ZK_HA_NODES[@]}"; do hosts+=("$HOST:$(zk_node_client_port "$n")"); done
  (IFS=,; echo "${hosts[*]}")
}

zk_ensemble_clean() { rm -rf "$ZK_HA_DIR"; }
