# shellcheck shell=bash
# Throwaway PostgreSQL for tests and benchmarks: `source scripts/pg.sh; pg_start DIR` starts a private cluster
# in DIR on a free loopback port and exports PG_URL (a superuser URL); `pg_stop` stops it and `pg_resume`
# starts it again (the database-outage test).
# Uses Debian's PostgreSQL binaries (installed if missing). initdb refuses to run as root, so as root the
# cluster runs as the `postgres` OS user.

pg_bindir() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [ -z "$dir" ]; then
    echo "scripts/pg.sh: installing PostgreSQL (Debian package postgresql)" >&2
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
    dir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  fi
  echo "$dir"
}

pg_as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

pg_start() {
  PG_DIR=$1
  PG_BIN=$(pg_bindir)
  PG_PORT=${PG_PORT:-$(free_port)}
  rm -rf "$PG_DIR" && mkdir -p "$PG_DIR"
  if [ "$(id -u)" = 0 ]; then chown postgres: "$PG_DIR"; fi
  pg_as_owner "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$PG_DIR/initdb.log" 2>&1 ||
    { cat "$PG_DIR/initdb.log" >&2; return 1; }
  # Durability off for tests (the clusters hold only test data and die with the run); PG_DURABLE=1 keeps
  # PostgreSQL's production defaults, for benchmarks.
  # A small WAL: the suite creates a database per test, each copied through the WAL; the default 1 GB of
  # retained WAL is disk a shared CI machine may not have.
  local durability="-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_wal_size=128MB -c min_wal_size=32MB"
  [ "${PG_DURABLE:-0}" = 1 ] && durability=""
  echo "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DIR -c max_connections=600 $durability -c shared_buffers=256MB" >"$PG_DIR/options"
  export PG_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
  export PG_BIN PG_DIR PG_PORT
  pg_resume
}

# Starts the cluster in PG_DIR again (after pg_stop), on the port and with the options pg_start chose.
pg_resume() {
  PG_BIN=${PG_BIN:-$(pg_bindir)}
  pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 start -o "$(cat "$PG_DIR/options")" >/dev/null ||
    { cat "$PG_DIR/server.log" >&2; return 1; }
}

pg_stop() {
  PG_BIN=${PG_BIN:-$(pg_bindir)}
  [ -n "${PG_DIR:-}" ] && [ -d "$PG_DIR/data" ] && pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
}

# A replicated pair for the failover tests: `pg_start_replicated DIR sync|async` starts a primary in DIR/primary
# and a streaming standby in DIR/standby (a base backup of it), each on its own port (PG_PORT, then
# PG_STANDBY_PORT, free ones if unset), and prints the two ports. `sync` makes the standby synchronous
# (synchronous_standby_names = '*', synchronous_commit = on: a commit returns once the standby has flushed it);
# `async` leaves commits to return before the standby has them. fsync stays off: the tests SIGKILL processes,
# which loses nothing the kernel holds, and never crash the machine.
pg_start_replicated() {
  local dir=$1 mode=${2:-sync} names
  case "$mode" in
    sync) names="'*'" ;;
    async) names="''" ;;
    *) echo "pg_start_replicated: mode must be sync or async, not $mode" >&2; return 1 ;;
  esac
  PG_BIN=$(pg_bindir)
  local primary_port=${PG_PORT:-$(free_port)} standby_port=${PG_STANDBY_PORT:-$(free_port)}
  rm -rf "$dir" && mkdir -p "$dir/primary" "$dir/standby"
  if [ "$(id -u)" = 0 ]; then chown postgres: "$dir" "$dir/primary" "$dir/standby"; fi
  pg_as_owner "$PG_BIN/initdb" -D "$dir/primary/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/primary/initdb.log" 2>&1 ||
    { cat "$dir/primary/initdb.log" >&2; return 1; }
  local common="-c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off -c full_page_writes=off -c shared_buffers=64MB"
  common="$common -c wal_level=replica -c max_wal_senders=5 -c hot_standby=on -c wal_keep_size=256MB"
  echo "$common -p $primary_port -k $dir/primary -c synchronous_commit=on -c synchronous_standby_names=$names" >"$dir/primary/options"
  PG_DIR=$dir/primary pg_resume || return 1
  pg_as_owner "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$primary_port" -U postgres -D "$dir/standby/data" -R -X stream \
    >"$dir/standby/basebackup.log" 2>&1 || { cat "$dir/standby/basebackup.log" >&2; return 1; }
  echo "$common -p $standby_port -k $dir/standby -c synchronous_commit=on" >"$dir/standby/options"
  PG_DIR=$dir/standby pg_resume || return 1
  # Streaming before anything is written, so the first commit already waits for (or is sent to) the standby.
  local i
  for i in $(seq 1 100); do
    [ "$(pg_psql "$primary_port" "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")" = 1 ] && break
    sleep 0.1
  done
  [ "$i" -lt 100 ] || { echo "pg_start_replicated: the standby never streamed" >&2; return 1; }
  echo "$primary_port $standby_port"
}

# One value from a query on the local server at port $1.
pg_psql() {
  "${PG_BIN:-$(pg_bindir)}/psql" -h 127.0.0.1 -p "$1" -U postgres -d postgres -XAtq -c "$2"
}

# SIGKILLs the server in DIR (postmaster and every backend at once: a machine lost, not a shutdown).
pg_kill() {
  local dir=$1 pid children
  pid=$(head -n 1 "$dir/data/postmaster.pid")
  children=$(pgrep -P "$pid" || true)
  # shellcheck disable=SC2086
  kill -KILL "$pid" $children
}

# Promotes the standby in DIR to primary and waits until it takes writes.
pg_promote() {
  local dir=$1
  pg_as_owner "${PG_BIN:-$(pg_bindir)}/pg_ctl" -D "$dir/data" -w -t 60 promote >/dev/null
}

# Waits until the standby at port $2 has replayed everything the primary at port $1 has written, then cuts its
# replication: from here on the standby falls behind, as an asynchronous standby does in the moment before its
# primary dies. (primary_conninfo is reloadable: emptying it stops the WAL receiver.)
pg_detach_standby() {
  local primary_port=$1 standby_port=$2 target i
  target=$(pg_psql "$primary_port" "SELECT pg_current_wal_lsn()")
  for i in $(seq 1 200); do
    [ "$(pg_psql "$standby_port" "SELECT pg_last_wal_replay_lsn() >= '$target'::pg_lsn")" = t ] && break
    sleep 0.05
  done
  [ "$i" -lt 200 ] || { echo "pg_detach_standby: the standby never caught up" >&2; return 1; }
  pg_psql "$standby_port" "ALTER SYSTEM SET primary_conninfo = ''" >/dev/null
  pg_psql "$standby_port" "SELECT pg_reload_conf()" >/dev/null
  for i in $(seq 1 200); do
    [ "$(pg_psql "$standby_port" "SELECT count(*) FROM pg_stat_wal_receiver")" = 0 ] && return 0
    sleep 0.05
  done
  echo "pg_detach_standby: the WAL receiver did not stop" >&2
  return 1
}

# Restarts the server in PG_DIR as an operator's `pg_ctl restart -m fast` does (sessions cut, transactions in
# flight rolled back), on the same port and options. Stop then start rather than `pg_ctl restart`, whose new
# server would write its log to pg_ctl's stdout, holding our caller's pipe open.
pg_restart() {
  pg_stop
  pg_resume
}

# Rebuilds DIR (a member of a pg_start_replicated pair whose server is dead or to be discarded: the old primary
# after a failover, whose WAL may have run ahead of its successor's) as a fresh streaming standby of the primary
# at port $2, from a base backup, on the port and options DIR had; then, unless $3 is `async`, makes it the
# primary's synchronous standby (synchronous_standby_names = '*' once it streams, so the primary never waits
# for a standby that is not there yet). The settings a base backup copies (ALTER SYSTEM's file) lose
# synchronous_standby_names: a standby promoted later starts asynchronous until it has a standby of its own.
pg_reseed_standby() {
  local dir=$1 primary_port=$2 mode=${3:-sync} i
  PG_BIN=${PG_BIN:-$(pg_bindir)}
  PG_DIR=$dir pg_stop
  rm -rf "$dir/data"
  # A fast checkpoint: a spread one (the default) takes minutes on a primary busy after its promotion.
  pg_as_owner "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$primary_port" -U postgres -D "$dir/data" -R -X stream -c fast \
    >"$dir/basebackup.log" 2>&1 || { cat "$dir/basebackup.log" >&2; return 1; }
  pg_as_owner sed -i '/^synchronous_standby_names/d' "$dir/data/postgresql.auto.conf"
  sed -E -i 's/ -c synchronous_standby_names=[^ ]*//' "$dir/options"
  PG_DIR=$dir pg_resume || return 1
  for i in $(seq 1 200); do
    [ "$(pg_psql "$primary_port" "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")" -ge 1 ] && break
    sleep 0.05
  done
  [ "$i" -lt 200 ] || { echo "pg_reseed_standby: the new standby never streamed" >&2; return 1; }
  if [ "$mode" != async ]; then
    pg_psql "$primary_port" "ALTER SYSTEM SET synchronous_standby_names = '*'" >/dev/null
    pg_psql "$primary_port" "SELECT pg_reload_conf()" >/dev/null
  fi
}
