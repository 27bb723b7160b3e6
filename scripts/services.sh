#!/usr/bin/env bash
# Local backing services for snowlink development and tests: a PostgreSQL
# primary plus a streaming replica, Redis and a standalone ZooKeeper, all bound
# to 127.0.0.1 on non-default ports, with data and logs under <repo>/.run/.
#
#   scripts/services.sh up      install (if needed), start, wait until answering
#   scripts/services.sh down    stop what this script started (data is kept)
#   scripts/services.sh status  running/stopped per service; exit 0 only if all up
#   scripts/services.sh env     KEY=value lines: set -a; . <(scripts/services.sh env)
#   scripts/services.sh clean   down, then delete the data dirs
#   scripts/services.sh install only the steps that need the network (packages, Patroni's virtualenv)
#
# SNOWLINK_TOPOLOGY=ha (default: single) selects the high-availability topology, the same commands over a
# ZooKeeper ensemble (scripts/ha/zookeeper.sh), PostgreSQL x3 under Patroni (scripts/ha/patroni.sh) and a Redis
# Cluster (scripts/ha/redis-cluster.sh); its ports overlap the single topology's, so one runs at a time. `down`
# stops both topologies; `clean` deletes the data of the selected one.
#
# Environment: PG_PORT (55432), PG_REPLICA_PORT (55433), REDIS_PORT (56379),
# REDIS_TLS_PORT (56390), ZK_PORT (52181), SERVICES_TIMEOUT (30 s per service),
# SNOWLINK_FAST_PG=1 at first init to turn off fsync & co. (tests only).
#
# TLS: a throwaway CA under .run/tls signs a certificate for 127.0.0.1 and
# localhost; PostgreSQL accepts TLS on its port and Redis listens with TLS on
# REDIS_TLS_PORT, so that sslmode=verify-full and rediss:// can be tested here.
set -euo pipefail

PG_PORT="${PG_PORT:-55432}"
PG_REPLICA_PORT="${PG_REPLICA_PORT:-55433}"
REDIS_PORT="${REDIS_PORT:-56379}"
REDIS_TLS_PORT="${REDIS_TLS_PORT:-56390}"
ZK_PORT="${ZK_PORT:-52181}"
SERVICES_TIMEOUT="${SERVICES_TIMEOUT:-30}"
SNOWLINK_TOPOLOGY="${SNOWLINK_TOPOLOGY:-single}"
case "$SNOWLINK_TOPOLOGY" in single | ha) ;; *) echo "services.sh: SNOWLINK_TOPOLOGY must be single or ha" >&2; exit 2 ;; esac
HOST=127.0.0.1

# The repo root comes from the script's own location so that it works from any cwd.
SCRIPT_DIR="$(cd -- "$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")" && pwd -P)"
ROOT="$(cd -- "$SCRIPT_DIR/.." && pwd -P)"
RUN="$ROOT/.run"
LOGS="$RUN/logs"
TLS_DIR="$RUN/tls"
REDIS_DIR="$RUN/redis"
REDIS_PID="$REDIS_DIR/redis.pid"
ZK_DIR="$RUN/zk"
ZK_CFG="$ZK_DIR/zoo.cfg"
ZK_PID="$ZK_DIR/zookeeper.pid"
JAVA_DIR=/usr/share/java

log() { printf '%s\n' "$*"; }
die() { printf 'services.sh: %s\n' "$*" >&2; exit 1; }

is_root() { [ "$(id -u)" -eq 0 ]; }

# As root, PostgreSQL runs as the postgres user, which must be able to reach its data. A checkout it cannot reach
# (a clone under /root, mode 0700, as root: how containers and fresh VMs run) keeps PostgreSQL's data under
# /var/lib/snowlink/<checkout id>/ instead, with .run/pg a link to it: the one place outside the project, chosen
# over loosening the permissions of the user's home. Decided once: an existing link is followed.
pg_dir() {
  if [ -L "$RUN/pg" ]; then
    readlink -f "$RUN/pg"
  elif is_root && id postgres >/dev/null 2>&1 && ! runuser -u postgres -- test -x "$ROOT"; then
    echo "/var/lib/snowlink/$(printf '%s' "$ROOT" | sha256sum | cut -c1-16)/pg"
  else
    echo "$RUN/pg"
  fi
}

pg_paths() {
  PG_DIR="$(pg_dir)"
  PG_PRIMARY="$PG_DIR/primary"
  PG_REPLICA="$PG_DIR/replica"
  PG_SOCK="$PG_DIR/sock"
  PG_TLS="$PG_DIR/tls"
  PG_APP_PASSWORD_FILE="$PG_DIR/app-password"
  PG_SUPER_PASSWORD_FILE="$PG_DIR/superuser-password"
  # pg_ctl opens its log file as the postgres user, so the log lives beside the data (linked from .run/logs).
  if [ "$PG_DIR" = "$RUN/pg" ]; then PG_LOGS="$LOGS"; else PG_LOGS="$PG_DIR/log"; fi
}
pg_paths

# Print the last lines of a log file to stderr, then fail naming the service.
fail_with_log() { # service logfile message
  local service="$1" logfile="$2" msg="$3"
  {
    printf 'services.sh: %s: %s (log: %s)\n' "$service" "$msg" "$logfile"
    if [ -f "$logfile" ]; then
      printf -- '--- last 20 lines of %s ---\n' "$logfile"
      tail -n 20 "$logfile"
    fi
  } >&2
  exit 1
}

# ---------------------------------------------------------------- processes

# A pid counts as alive only if /proc/PID exists, is not a zombie and its command
# line mentions the expected program. kill -0 alone is not enough: a daemon
# whose parent never reaps it (no real init here) stays around as a zombie, and
# pids get reused.
pid_alive() { # pid expected-cmdline-substring
  local pid="$1" want="$2" stat state
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  stat="$(cat "/proc/$pid/stat" 2>/dev/null)" || return 1
  state="${stat##*) }"; state="${state%% *}"
  [ "$state" != Z ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$want"
}

pidfile_pid() {
  if [ -f "$1" ]; then head -n 1 "$1" 2>/dev/null | tr -d ' \r\n' || true; fi
}

pidfile_alive() { # pidfile expected-cmdline-substring
  local pid; pid="$(pidfile_pid "$1")"
  [ -n "$pid" ] && pid_alive "$pid" "$2"
}

port_open() { nc -z -w 1 "$HOST" "$1" >/dev/null 2>&1; }

# Wait until a process is gone (or a zombie); SIGKILL after a grace period.
wait_gone() { # pid expected grace-seconds
  local pid="$1" want="$2" i
  for ((i = 0; i < $3 * 10; i++)); do
    pid_alive "$pid" "$want" || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    pid_alive "$pid" "$want" || return 0
    sleep 0.1
  done
  return 1
}

now_us() { local t="$EPOCHREALTIME"; echo "${t//[!0-9]/}"; }

# Poll a check function until it succeeds or SERVICES_TIMEOUT expires; give up
# early if the alive-fn says the process is gone (use `true` when there is no
# reliable pid yet).
wait_for() { # service logfile alive-fn check-fn [args...]
  local service="$1" logfile="$2" alive="$3"; shift 3
  local deadline=$(($(now_us) + SERVICES_TIMEOUT * 1000000))
  until "$@"; do
    "$alive" || fail_with_log "$service" "$logfile" "exited during startup"
    [ "$(now_us)" -lt "$deadline" ] ||
      fail_with_log "$service" "$logfile" "not answering after ${SERVICES_TIMEOUT}s"
    sleep 0.1
  done
}

# ------------------------------------------------------------------ install

# shellcheck disable=SC2012 # paths are fixed and plain; sort -V picks the newest major
pg_bin_dir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

ensure_installed() {
  local missing=()
  [ -n "$(pg_bin_dir)" ] && [ -x "$(pg_bin_dir)/initdb" ] || missing+=(postgresql)
  command -v redis-server >/dev/null || missing+=(redis-server)
  [ -f "$JAVA_DIR/zookeeper.jar" ] || missing+=(zookeeper)
  command -v java >/dev/null || missing+=(java)
  command -v nc >/dev/null || missing+=(nc)
  command -v openssl >/dev/null || missing+=(openssl)
  # Patroni's virtualenv (ha topology): Debian splits venv and ensurepip out of python3.
  if [ "$SNOWLINK_TOPOLOGY" = ha ] && ! /usr/bin/python3 -c 'import ensurepip, venv' 2>/dev/null; then
    missing+=(python3-venv)
  fi
  [ "${#missing[@]}" -eq 0 ] && return 0

  local sudo=()
  if ! is_root; then
    command -v sudo >/dev/null || die "missing ${missing[*]} and not root (no sudo to install them)"
    sudo=(sudo)
  fi
  mkdir -p "$LOGS"
  local packages=(postgresql redis-server zookeeper netcat-openbsd openssl)
  if [ "$SNOWLINK_TOPOLOGY" = ha ]; then packages+=(python3 python3-venv); fi
  log "installing ${packages[*]} (missing: ${missing[*]}; log: $LOGS/apt.log)"
  # The distro's own package scripts may or may not start their default
  # instances; that does not matter, we only ever use our own ports and dirs.
  if ! { "${sudo[@]}" apt-get update &&
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      "${packages[@]}"; } >>"$LOGS/apt.log" 2>&1; then
    fail_with_log apt "$LOGS/apt.log" "package installation failed"
  fi
}

# ---------------------------------------------------------------------- tls

# A CA of our own and a server certificate for 127.0.0.1/localhost, made once. P-256 keys: quick to make, and
# rustls (the services' TLS) takes them; the server certificate is a leaf (CA:FALSE) with a SAN, as webpki requires.
tls_up() {
  [ -s "$TLS_DIR/server.pem" ] && return 0
  mkdir -p "$TLS_DIR"
  (
    umask 077
    cd "$TLS_DIR"
    openssl ecparam -name prime256v1 -genkey -noout -out ca.key
    openssl req -x509 -new -key ca.key -sha256 -days 3650 -subj "/CN=snowlink development CA" \
      -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign -out ca.pem
    openssl ecparam -name prime256v1 -genkey -noout -out server.key
    openssl req -new -key server.key -subj "/CN=127.0.0.1" -out server.csr
    printf '%s\n' subjectAltName=IP:127.0.0.1,DNS:localhost basicConstraints=critical,CA:FALSE \
      keyUsage=critical,digitalSignature extendedKeyUsage=serverAuth >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -sha256 -days 825 \
      -extfile server.ext -out server.pem.new
    rm -f server.csr server.ext
    mv server.pem.new server.pem
    chmod 644 ca.pem server.pem
  ) >>"$LOGS/tls.log" 2>&1 || fail_with_log tls "$LOGS/tls.log" "making the development CA failed"
}

# --------------------------------------------------------------- postgresql

PG_BIN=""

# PostgreSQL refuses to run as root, so as root every server-side tool runs as
# the postgres system user (which then owns .run/pg); otherwise as ourselves.
as_pg() {
  if is_root; then runuser -u postgres -- "$@"; else "$@"; fi
}

# Superuser SQL over the unix socket (trust auth for local connections).
pg_super_sql() { # port sql
  "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$PG_SOCK" -p "$1" -U postgres -d postgres -c "$2"
}

# App-level SQL over TCP with the application password, the way the app connects.
pg_app_sql() { # port sql
  [ -r "$PG_APP_PASSWORD_FILE" ] || return 1
  PGPASSWORD="$(cat "$PG_APP_PASSWORD_FILE")" PGCONNECT_TIMEOUT=2 \
    "$PG_BIN/psql" -X -q -At -h "$HOST" -p "$1" -U snowlink -d snowlink -c "$2" 2>/dev/null
}

pg_primary_answers() { [ "$(pg_app_sql "$PG_PORT" 'select 1')" = 1 ]; }
pg_replica_answers() { [ "$(pg_app_sql "$PG_REPLICA_PORT" 'select pg_is_in_recovery()')" = t ]; }
# Answering is not enough: a replica that lost its stream answers with old data forever.
pg_replica_streams() {
  pg_replica_answers &&
    [ "$(pg_super_sql "$PG_REPLICA_PORT" 'select status from pg_stat_wal_receiver' 2>/dev/null)" = streaming ]
}

pg_running() { pidfile_alive "$1/postmaster.pid" postgres; }
pg_primary_running() { [ -n "$PG_BIN" ] && pg_running "$PG_PRIMARY"; }
pg_replica_running() { [ -n "$PG_BIN" ] && pg_running "$PG_REPLICA"; }

new_password() { head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

pg_locale() {
  if locale -a 2>/dev/null | grep -qiE '^c\.utf-?8$'; then echo C.UTF-8; else echo C; fi
}

pg_prepare_dirs() {
  mkdir -p "$PG_DIR" "$PG_SOCK" "$PG_LOGS" "$LOGS"
  chmod 700 "$PG_DIR" "$PG_SOCK"
  if [ "$PG_DIR" != "$RUN/pg" ]; then
    ln -sfn "$PG_DIR" "$RUN/pg"
    ln -sf "$PG_LOGS/postgres-primary.log" "$LOGS/postgres-primary.log"
    ln -sf "$PG_LOGS/postgres-replica.log" "$LOGS/postgres-replica.log"
  fi
  if is_root; then
    chown postgres:postgres "$PG_DIR" "$PG_SOCK"
    # The server's log files are opened by pg_ctl as postgres; pre-create them for it.
    touch "$PG_LOGS/postgres-primary.log" "$PG_LOGS/postgres-replica.log"
    chown postgres:postgres "$PG_LOGS/postgres-primary.log" "$PG_LOGS/postgres-replica.log"
    runuser -u postgres -- test -w "$PG_DIR" ||
      die "postgres: the postgres user cannot reach $PG_DIR (a parent directory is not searchable by it)"
  fi
  if [ ! -s "$PG_APP_PASSWORD_FILE" ]; then
    (umask 077 && new_password >"$PG_APP_PASSWORD_FILE")
  fi
}

# Test clusters (SNOWLINK_FAST_PG=1) also skip the final fsync of initdb and
# pg_basebackup: on a busy disk that flush alone was seen to take seconds.
PG_NO_SYNC=()
if [ "${SNOWLINK_FAST_PG:-}" = 1 ]; then PG_NO_SYNC=(--no-sync); fi

pg_initdb() {
  [ -f "$PG_PRIMARY/PG_VERSION" ] && return 0
  rm -rf "$PG_PRIMARY"
  (umask 077 && new_password >"$PG_SUPER_PASSWORD_FILE")
  if is_root; then chown postgres:postgres "$PG_SUPER_PASSWORD_FILE"; fi
  as_pg "$PG_BIN/initdb" -D "$PG_PRIMARY" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
    --pwfile="$PG_SUPER_PASSWORD_FILE" -E UTF8 --locale="$(pg_locale)" "${PG_NO_SYNC[@]}" \
    >>"$LOGS/postgres-initdb.log" 2>&1 ||
    fail_with_log postgres "$LOGS/postgres-initdb.log" "initdb failed"
  {
    echo "# added by scripts/services.sh"
    echo "port = $PG_PORT"
    echo "listen_addresses = '$HOST'"
    echo "unix_socket_directories = '$PG_SOCK'"
    # Durability off only for throw-away test clusters; decided once, at initdb time.
    if [ "${SNOWLINK_FAST_PG:-}" = 1 ]; then
      echo "fsync = off"
      echo "synchronous_commit = off"
      echo "full_page_writes = off"
    fi
  } | as_pg tee -a "$PG_PRIMARY/postgresql.conf" >/dev/null
}

# Remove a postmaster.pid (and socket lock) left by a dead or zombie server:
# postgres itself would treat a zombie's pid as still running and refuse to start.
pg_clear_stale_lock() { # datadir port
  local pidfile="$1/postmaster.pid"
  [ -f "$pidfile" ] || return 0
  pg_running "$1" && return 0
  rm -f "$pidfile" "$PG_SOCK/.s.PGSQL.$2.lock" "$PG_SOCK/.s.PGSQL.$2"
}

pg_start() { # name datadir port logfile [server options]
  local name="$1" dir="$2" port="$3" logfile="$4" options="${5:-}"
  pg_clear_stale_lock "$dir" "$port"
  if port_open "$port"; then
    die "$name: 127.0.0.1:$port is already in use by something that is not ours"
  fi
  # -p on the command line so a changed *_PORT env var wins over postgresql.conf.
  as_pg "$PG_BIN/pg_ctl" -D "$dir" -l "$logfile" -o "-p $port $options" -w -t "$SERVICES_TIMEOUT" start \
    >/dev/null 2>&1 || fail_with_log "$name" "$logfile" "pg_ctl start failed"
}

# Create the application role and database, or reset the role's password to the
# one in app-password. Only called when logging in as the app does not work.
pg_ensure_app_role() {
  local pw exists
  pw="$(cat "$PG_APP_PASSWORD_FILE")"
  exists="$(pg_super_sql "$PG_PORT" "select 1 from pg_roles where rolname = 'snowlink'")"
  # Password goes through stdin, not argv, so it never shows up in ps.
  if [ "$exists" = 1 ]; then
    printf "alter role snowlink with login createdb nosuperuser password '%s';\n" "$pw"
  else
    printf "create role snowlink with login createdb nosuperuser password '%s';\n" "$pw"
  fi | "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCK" -p "$PG_PORT" -U postgres -d postgres >/dev/null
  if [ "$(pg_super_sql "$PG_PORT" "select 1 from pg_database where datname = 'snowlink'")" != 1 ]; then
    pg_super_sql "$PG_PORT" "create database snowlink owner snowlink" >/dev/null
  fi
}

# The replica streams through a physical replication slot, so the primary keeps
# every WAL segment the replica has not received yet. Without one, the forced
# checkpoint of each DROP DATABASE (tests make hundreds) recycled segments the
# replica still needed and it stopped replicating for good ("requested WAL
# segment has already been removed"). max_slot_wal_keep_size caps what a dead
# replica can make the primary keep; past it the slot is lost and `up` rebuilds.
PG_SLOT=snowlink_replica
# authentication_timeout: a connection that stops mid-handshake (tests stall the network on purpose) keeps a
# backend that cannot pass the barrier every DROP DATABASE waits for; the default 60 s stalled whole test runs.
# shared_buffers: compact codes are random, so every insert touches a random leaf of the code index (and random
# trigram entries), where IDs' codes appended at one edge; with PostgreSQL's default 128 MB and a few GB of link
# indexes, backends spent their inserts evicting dirty buffers themselves (2.2 × the buffers written per link;
# ~50 written per 1,000 links with 1 GB, down from ~2,600). The replica replays the same random writes.
PG_BUFFERS="-c shared_buffers=1GB"
PG_PRIMARY_OPTIONS="-c max_slot_wal_keep_size=2GB -c authentication_timeout=5s $PG_BUFFERS"

# t when the slot exists and still has its WAL; empty when it is missing.
pg_slot_usable() {
  [ "$(pg_super_sql "$PG_PORT" \
    "select wal_status <> 'lost' from pg_replication_slots where slot_name = '$PG_SLOT'")" = t ]
}

# A replica made before slots were used, or one that fell behind past the
# limit, cannot catch up: start it afresh from a new base backup.
pg_discard_broken_replica() {
  [ -f "$PG_REPLICA/PG_VERSION" ] || return 0
  pg_slot_usable && return 0
  log "postgres-replica: rebuilding it from a new base backup (its replication slot is missing or lost)"
  pg_stop "$PG_REPLICA"
  rm -rf "$PG_REPLICA"
}

pg_make_replica() {
  [ -f "$PG_REPLICA/PG_VERSION" ] && return 0
  rm -rf "$PG_REPLICA"
  pg_super_sql "$PG_PORT" "select pg_drop_replication_slot(slot_name) from pg_replication_slots
    where slot_name = '$PG_SLOT' and not active" >/dev/null
  # The default pg_hba.conf written by initdb --auth-local=trust allows local
  # replication connections, so no extra replication role is needed.
  as_pg "$PG_BIN/pg_basebackup" -h "$PG_SOCK" -p "$PG_PORT" -U postgres -D "$PG_REPLICA" \
    -R -X stream -c fast -C -S "$PG_SLOT" "${PG_NO_SYNC[@]}" >>"$LOGS/postgres-replica.log" 2>&1 ||
    fail_with_log postgres-replica "$LOGS/postgres-replica.log" "pg_basebackup failed"
  printf '# replica\nport = %s\n' "$PG_REPLICA_PORT" | as_pg tee -a "$PG_REPLICA/postgresql.conf" >/dev/null
}

# PostgreSQL wants its key owned by the user it runs as and unreadable by others: a copy inside its own dir.
pg_tls_options() {
  echo "-c ssl=on -c ssl_cert_file=$PG_TLS/server.pem -c ssl_key_file=$PG_TLS/server.key"
}

pg_install_tls() {
  mkdir -p "$PG_TLS"
  install -m 600 "$TLS_DIR/server.key" "$PG_TLS/server.key"
  install -m 644 "$TLS_DIR/server.pem" "$PG_TLS/server.pem"
  if is_root; then chown -R postgres:postgres "$PG_TLS"; fi
}

pg_up() {
  PG_BIN="$(pg_bin_dir)"
  pg_prepare_dirs
  pg_install_tls
  pg_initdb
  if ! pg_running "$PG_PRIMARY"; then
    pg_start postgres "$PG_PRIMARY" "$PG_PORT" "$PG_LOGS/postgres-primary.log" "$PG_PRIMARY_OPTIONS $(pg_tls_options)"
  fi
  if ! pg_primary_answers; then
    wait_for postgres "$LOGS/postgres-primary.log" pg_primary_running pg_super_sql "$PG_PORT" 'select 1' >/dev/null
    pg_ensure_app_role
    wait_for postgres "$LOGS/postgres-primary.log" pg_primary_running pg_primary_answers
  fi
  pg_discard_broken_replica
  pg_make_replica
  if ! pg_running "$PG_REPLICA"; then
    pg_start postgres-replica "$PG_REPLICA" "$PG_REPLICA_PORT" "$PG_LOGS/postgres-replica.log" "$PG_BUFFERS"
  fi
  wait_for postgres-replica "$LOGS/postgres-replica.log" pg_replica_running pg_replica_streams
}

pg_stop() { # datadir
  if pg_running "$1"; then
    as_pg "$PG_BIN/pg_ctl" -D "$1" -m fast -w stop >/dev/null
  fi
}

# -------------------------------------------------------------------- redis

redis_answers() { [ "$(redis-cli -h "$HOST" -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]; }
redis_running() { pidfile_alive "$REDIS_PID" redis-server; }

redis_up() {
  mkdir -p "$REDIS_DIR" "$LOGS"
  if ! redis_running; then
    rm -f "$REDIS_PID"
    if port_open "$REDIS_PORT"; then
      die "redis: 127.0.0.1:$REDIS_PORT is already in use by something that is not ours"
    fi
    redis-server --port "$REDIS_PORT" --bind "$HOST" --save '' --appendonly no --daemonize yes \
      --tls-port "$REDIS_TLS_PORT" --tls-cert-file "$TLS_DIR/server.pem" --tls-key-file "$TLS_DIR/server.key" \
      --tls-ca-cert-file "$TLS_DIR/ca.pem" --tls-auth-clients no \
      --pidfile "$REDIS_PID" --logfile "$LOGS/redis.log" --dir "$REDIS_DIR" ||
      fail_with_log redis "$LOGS/redis.log" "redis-server failed to start"
  fi
  wait_for redis "$LOGS/redis.log" true redis_answers
}

redis_down() {
  local pid; pid="$(pidfile_pid "$REDIS_PID")"
  if redis_running; then
    redis-cli -h "$HOST" -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null || true
    wait_gone "$pid" redis-server 10 || die "redis: pid $pid did not stop"
  fi
  rm -f "$REDIS_PID"
}

# ---------------------------------------------------------------- zookeeper

zk_answers() {
  # srvr reports "Mode: standalone|leader|follower" only when really serving;
  # ruok answers imok even without a quorum, so it is not used.
  printf 'srvr' | nc -N -w 2 "$HOST" "$ZK_PORT" 2>/dev/null | grep -q '^Mode:'
}
zk_running() { pidfile_alive "$ZK_PID" QuorumPeerMain; }

zk_classpath() {
  local cp="/etc/zookeeper/conf:$JAVA_DIR/zookeeper.jar"
  [ -f "$JAVA_DIR/zookeeper.jar" ] || die "zookeeper: $JAVA_DIR/zookeeper.jar not found"
  # Debian's default classpath has no SLF4J binding, so ZooKeeper would log
  # nothing at all; add log4j (what zookeeper.root.logger configures) or simple.
  if [ -f "$JAVA_DIR/slf4j-log4j12.jar" ] && [ -f "$JAVA_DIR/log4j-1.2.jar" ]; then
    cp="$cp:$JAVA_DIR/slf4j-log4j12.jar:$JAVA_DIR/log4j-1.2.jar"
  elif [ -f "$JAVA_DIR/slf4j-simple.jar" ]; then
    cp="$cp:$JAVA_DIR/slf4j-simple.jar"
  fi
  echo "$cp"
}

zk_write_config() {
  mkdir -p "$ZK_DIR/data" "$LOGS"
  cat >"$ZK_CFG" <<EOF
# written by scripts/services.sh
tickTime=500
initLimit=10
syncLimit=5
dataDir=$ZK_DIR/data
clientPort=$ZK_PORT
clientPortAddress=$HOST
maxClientCnxns=0
4lw.commands.whitelist=*
admin.enableServer=false
minSessionTimeout=1000
maxSessionTimeout=60000
EOF
}

zk_up() {
  local cp i
  if ! zk_running; then
    rm -f "$ZK_PID"
    if port_open "$ZK_PORT"; then
      die "zookeeper: 127.0.0.1:$ZK_PORT is already in use by something that is not ours"
    fi
    zk_write_config
    cp="$(zk_classpath)"
    echo "=== $(date '+%F %T') started by scripts/services.sh ===" >>"$LOGS/zookeeper.log"
    # New session, no stdin, own log: it must outlive this script. The inner
    # shell writes its own pid and then execs java, so the pid file is exactly
    # the JVM's pid whether or not setsid had to fork.
    # shellcheck disable=SC2016 # expanded by the inner shell, on purpose
    ZK_PID="$ZK_PID" ZK_CP="$cp" ZK_CFG="$ZK_CFG" setsid nohup bash -c \
      'echo $$ >"$ZK_PID"; exec java -Xms32m -Xmx256m -XX:+UseSerialGC \
         -Dzookeeper.root.logger=INFO,CONSOLE -cp "$ZK_CP" \
         org.apache.zookeeper.server.quorum.QuorumPeerMain "$ZK_CFG"' \
      </dev/null >>"$LOGS/zookeeper.log" 2>&1 &
    for ((i = 0; i < 50; i++)); do [ -s "$ZK_PID" ] && break; sleep 0.1; done
  fi
  wait_for zookeeper "$LOGS/zookeeper.log" zk_running zk_answers
}

zk_down() {
  local pid; pid="$(pidfile_pid "$ZK_PID")"
  if zk_running; then
    kill -TERM "$pid" 2>/dev/null || true
    wait_gone "$pid" QuorumPeerMain 10 || die "zookeeper: pid $pid did not stop"
  fi
  rm -f "$ZK_PID"
}

# ----------------------------------------------------------------- commands

print_status_line() { # name addr state
  printf '%-10s %-38s %s\n' "$1" "$2" "$3"
}

# The ha topology's engines, one file each. Sourced here, after the helpers they use; they only define
# functions.
# shellcheck source=scripts/ha/zookeeper.sh
. "$SCRIPT_DIR/ha/zookeeper.sh"
# shellcheck source=scripts/ha/patroni.sh
. "$SCRIPT_DIR/ha/patroni.sh"
# shellcheck source=scripts/ha/redis-cluster.sh
. "$SCRIPT_DIR/ha/redis-cluster.sh"

cmd_up() {
  ensure_installed
  pg_paths # the postgres user exists now: where its data goes can be decided
  patroni_paths
  mkdir -p "$LOGS"
  tls_up
  if [ "$SNOWLINK_TOPOLOGY" = ha ]; then
    zk_ensemble_up
    patroni_up
    redis_cluster_up
    cmd_status
    return
  fi
  pg_up
  redis_up
  zk_up
  print_status_line postgres "$HOST:$PG_PORT (replica $HOST:$PG_REPLICA_PORT)" ok
  print_status_line redis "$HOST:$REDIS_PORT (tls $HOST:$REDIS_TLS_PORT)" ok
  print_status_line zookeeper "$HOST:$ZK_PORT" ok
}

# Both topologies: what is not running is skipped, and `make down` must not need to know which one ran.
cmd_down() {
  PG_BIN="$(pg_bin_dir)"
  if [ -n "$PG_BIN" ]; then
    pg_stop "$PG_REPLICA"
    pg_stop "$PG_PRIMARY"
  fi
  redis_down
  zk_down
  patroni_down
  redis_cluster_down
  # Last: Patroni needs its store to stop cleanly (it releases its leader key there).
  zk_ensemble_down
}

cmd_clean() {
  cmd_down
  if [ "$SNOWLINK_TOPOLOGY" = ha ]; then
    patroni_clean
    zk_ensemble_clean
    redis_cluster_clean
    return
  fi
  rm -rf "$PG_DIR" "$REDIS_DIR" "$ZK_DIR" "$TLS_DIR"
  if [ -L "$RUN/pg" ]; then
    rm -f "$RUN/pg" "$LOGS/postgres-primary.log" "$LOGS/postgres-replica.log"
    rmdir "$(dirname "$PG_DIR")" 2>/dev/null || true
  fi
}

# state_of running-check answer-check port -> running | not answering | stopped | port busy
state_of() {
  if "$1"; then
    if "$2"; then echo running; else echo "not answering"; fi
  elif port_open "$3"; then
    echo "stopped (port in use by something else)"
  else
    echo stopped
  fi
}

# ha: every node and its role (ZooKeeper leader/follower, Patroni leader/sync_standby/replica, Redis per its file).
ha_status() {
  local all_up=0
  zk_ensemble_status || all_up=1
  patroni_status || all_up=1
  redis_cluster_status || all_up=1
  return "$all_up"
}

cmd_status() {
  PG_BIN="$(pg_bin_dir)"
  if [ "$SNOWLINK_TOPOLOGY" = ha ]; then ha_status; return; fi
  local all_up=0 s
  s="$(state_of pg_primary_running pg_primary_answers "$PG_PORT")"
  print_status_line postgres "$HOST:$PG_PORT" "$s"; [ "$s" = running ] || all_up=1
  s="$(state_of pg_replica_running pg_replica_streams "$PG_REPLICA_PORT")"
  print_status_line pg-replica "$HOST:$PG_REPLICA_PORT" "$s"; [ "$s" = running ] || all_up=1
  s="$(state_of redis_running redis_answers "$REDIS_PORT")"
  print_status_line redis "$HOST:$REDIS_PORT" "$s"; [ "$s" = running ] || all_up=1
  s="$(state_of zk_running zk_answers "$ZK_PORT")"
  print_status_line zookeeper "$HOST:$ZK_PORT" "$s"; [ "$s" = running ] || all_up=1
  return "$all_up"
}

cmd_env() {
  if [ "$SNOWLINK_TOPOLOGY" = ha ]; then
    patroni_env
    redis_cluster_env
    echo "ZOOKEEPER_CONNECT=$(zk_ensemble_connect)"
    echo "SNOWLINK_TLS_CA=$TLS_DIR/ca.pem"
    echo "SNOWLINK_TOPOLOGY=ha"
    return
  fi
  [ -s "$PG_APP_PASSWORD_FILE" ] || die "no $PG_APP_PASSWORD_FILE yet: run scripts/services.sh up first"
  local pw; pw="$(cat "$PG_APP_PASSWORD_FILE")"
  echo "DATABASE_URL=postgres://snowlink:$pw@$HOST:$PG_PORT/snowlink"
  echo "DATABASE_REPLICA_URL=postgres://snowlink:$pw@$HOST:$PG_REPLICA_PORT/snowlink"
  echo "REDIS_URL=redis://$HOST:$REDIS_PORT"
  echo "ZOOKEEPER_CONNECT=$HOST:$ZK_PORT"
  # Not among the variables the README documents: for tests of TLS to PostgreSQL (sslrootcert) and Redis.
  echo "SNOWLINK_TLS_CA=$TLS_DIR/ca.pem"
  echo "REDIS_TLS_URL=rediss://$HOST:$REDIS_TLS_PORT"
}

# Only what needs the network (packages; Patroni's virtualenv for ha), so that `up` can then run offline.
cmd_install() {
  ensure_installed
  pg_paths
  patroni_paths
  if [ "$SNOWLINK_TOPOLOGY" = ha ]; then patroni_install; fi
}

usage() { echo "usage: $0 up|down|status|env|clean|install" >&2; exit 2; }

main() {
  [ $# -eq 1 ] || usage
  case "$1" in
    up) cmd_up ;;
    install) cmd_install ;;
    down) cmd_down ;;
    status) cmd_status ;;
    env) cmd_env ;;
    clean) cmd_clean ;;
    *) usage ;;
  esac
}

# Sourced (scripts/ha/redis-cluster.sh run on its own) it only defines the functions.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then main "$@"; fi
