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
  local durability="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
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
