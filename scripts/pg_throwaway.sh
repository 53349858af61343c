#!/usr/bin/env bash
# A throw-away PostgreSQL for the tests: `eval "$(bash scripts/pg_throwaway.sh start)"` prints the
# exports (EGOMEM_PG_URL, EGOMEM_PG_DIR); `bash scripts/pg_throwaway.sh stop DIR` stops it and deletes it.
# Debian 12's postgresql-15 (apt-installed when root and missing), initdb into a temp dir, a Unix socket, no TCP.
set -euo pipefail
cmd=${1:-start}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [ "$cmd" = stop ]; then
  dir=${2:?usage: pg_throwaway.sh stop DIR}
  [ -d "$dir" ] || exit 0
  as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
  as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
  exit 0
fi
if [ -z "$bin" ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "[pg] apt-get install postgresql-15" >&2
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 >/dev/null 2>&1 || true
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
  fi
  if [ -z "$bin" ]; then echo "[pg] no PostgreSQL server here: the PostgreSQL tests skip" >&2; exit 0; fi
fi
dir=$(mktemp -d /tmp/egomem-pg.XXXXXX)
if [ "$(id -u)" = 0 ]; then chown postgres "$dir"; as_pg() { runuser -u postgres -- "$@"; }; else as_pg() { "$@"; }; fi
as_pg "$bin/initdb" -D "$dir/data" -U egomem --auth=trust -E UTF8 --no-sync >/dev/null
as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -o "-c listen_addresses='' -k $dir -c fsync=off -c max_connections=200" start >/dev/null
as_pg "$bin/createdb" -h "$dir" -U egomem egomem
echo "export EGOMEM_PG_URL='postgresql://egomem@/egomem?host=$dir' EGOMEM_PG_DIR='$dir'"
