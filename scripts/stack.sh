#!/usr/bin/env bash
# The local stack: PostgreSQL (one cluster for staging, one for production), the Temporal dev server (+ Web UI), an S3 server and the sandbox VaultPAM,
# provisioned under .stack/, bound to 127.0.0.1, idempotent. Works before `npm install`.
#
#   scripts/stack.sh up | down | status | env
#   scripts/stack.sh sandbox start|stop|status <production|staging>
#   scripts/stack.sh service start|stop|kill <postgres|postgres-production|temporal|s3>   (one piece: for crash tests
#                                                                 and maintenance; "postgres" is both clusters)
#
# Ports and places (environment): VAULTPAM_STACK_DIR (.stack), VAULTPAM_PG_PORT (55432, staging's cluster),
# VAULTPAM_PG_PRODUCTION_PORT (55433, production's cluster: WAL for point-in-time protection),
# VAULTPAM_TEMPORAL_PORT (7233), VAULTPAM_TEMPORAL_UI_PORT (8233), VAULTPAM_S3_PORT (7070),
# VAULTPAM_SANDBOX_PORT (8480), VAULTPAM_STAGING_PORT (8481).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STACK=${VAULTPAM_STACK_DIR:-$ROOT/.stack}
PG_PORT=${VAULTPAM_PG_PORT:-55432}
PG_PRODUCTION_PORT=${VAULTPAM_PG_PRODUCTION_PORT:-55433}
TEMPORAL_PORT=${VAULTPAM_TEMPORAL_PORT:-7233}
TEMPORAL_UI_PORT=${VAULTPAM_TEMPORAL_UI_PORT:-8233}
S3_PORT=${VAULTPAM_S3_PORT:-7070}
SANDBOX_PORT=${VAULTPAM_SANDBOX_PORT:-8480}
STAGING_PORT=${VAULTPAM_STAGING_PORT:-8481}
TEMPORAL_VERSION=v1.5.1
VERSITYGW_VERSION=v1.7.0
PG_USER=vaultpam
S3_ACCESS_KEY=vaultpam
# Custom search attributes the workflows set (registered at server start).
SEARCH_ATTRIBUTES=(VaultpamDeployment=Keyword VaultpamBackupId=Keyword VaultpamStep=Keyword VaultpamStatus=Keyword VaultpamOperation=Keyword)

BIN=$STACK/bin
LOGS=$STACK/logs
RUN=$STACK/run
SECRETS=$STACK/secrets

say() { printf '%s\n' "$*" >&2; }
die() { printf 'stack: %s\n' "$*" >&2; exit 1; }
now_ms() { date +%s%3N; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() { # name port seconds logfile
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    port_open "$2" && return 0
    sleep 0.1
  done
  die "$1 did not start listening on 127.0.0.1:$2 within $3 s; see $4"
}

pid_alive() { [ -f "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

stop_pid() { # name
  local pid i
  [ -f "$RUN/$1.pid" ] || return 0
  pid=$(cat "$RUN/$1.pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$RUN/$1.pid"
}

start_bg() { # name logfile cmd...
  local name=$1 log=$2
  shift 2
  nohup setsid "$@" >>"$log" 2>&1 </dev/null &
  echo $! >"$RUN/$name.pid"
}

secret() { # name generator -> path (created once, 0600)
  local path=$SECRETS/$1
  if [ ! -s "$path" ]; then
    (umask 077 && eval "$2" >"$path")
  fi
  printf '%s' "$path"
}

make_secrets() {
  mkdir -p "$SECRETS"
  chmod 700 "$SECRETS"
  secret pg-password 'od -An -tx1 -N16 /dev/urandom | tr -d " \n"' >/dev/null
  secret s3-secret-key 'od -An -tx1 -N20 /dev/urandom | tr -d " \n"' >/dev/null
  secret control-plane-token 'od -An -tx1 -N24 /dev/urandom | tr -d " \n"' >/dev/null
  secret staging-control-plane-token 'od -An -tx1 -N24 /dev/urandom | tr -d " \n"' >/dev/null
  secret master-key 'od -An -tx1 -N32 /dev/urandom | tr -d " \n"' >/dev/null
  make_api_tokens
  make_approval_keys
}

# Two API callers of the local stack, one who starts restores and one who approves them: each token's plaintext in
# its own file (kept when it exists), their SHA-256 digests in the API's tokens file (src/auth/api-token.ts).
make_api_tokens() {
  local file=$SECRETS/api-tokens.json now entries="" sep="" spec name principal roles token id digest roles_json rewrite=0
  now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  for spec in "api-token local-operator viewer,operator,restorer,admin" "api-token-approver local-approver viewer,approver"; do
    read -r name principal roles <<<"$spec"
    token=$(cat "$SECRETS/$name" 2>/dev/null || true)
    if ! [[ $token =~ ^vpb_[a-z0-9]{6,32}_[A-Za-z0-9_-]{43}$ ]]; then
      id=$(od -An -tx1 -N6 /dev/urandom | tr -d ' \n')
      token="vpb_${id}_$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
      (umask 077 && printf '%s\n' "$token" >"$SECRETS/$name.tmp" && mv "$SECRETS/$name.tmp" "$SECRETS/$name")
    fi
    id=${token#vpb_}
    id=${id%%_*}
    digest=$(printf '%s' "$token" | sha256sum | cut -d' ' -f1)
    roles_json="\"${roles//,/\", \"}\""
    entries+="$sep    { \"id\": \"$id\", \"principal\": \"$principal\", \"roles\": [$roles_json], \"sha256\": \"$digest\", \"createdAt\": \"$now\" }"
    sep=$',\n'
    # A tokens file that already holds this token is kept as it is (with any tokens added since by `tokens create`).
    [ -s "$file" ] && grep -q "\"$digest\"" "$file" || rewrite=1
  done
  if [ "$rewrite" = 1 ]; then
    (umask 077 && printf '{\n  "tokens": [\n%s\n  ]\n}\n' "$entries" >"$file.tmp" && mv "$file.tmp" "$file")
  fi
  chmod 600 "$file" "$SECRETS/api-token" "$SECRETS/api-token-approver"
}

# The Ed25519 key pair that signs restore requests and approvals (API, CLI) and verifies them (workers); made once.
make_approval_keys() {
  local private=$SECRETS/approvals-signing-key.pem public=$SECRETS/approvals-public-key.pem
  if [ ! -s "$private" ]; then
    if command -v openssl >/dev/null && (umask 077 && openssl genpkey -algorithm ed25519 -out "$private.tmp" 2>/dev/null); then
      mv "$private.tmp" "$private"
    else
      rm -f "$private.tmp"
      (umask 077 && node -e 'process.stdout.write(require("node:crypto").generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }))' >"$private")
    fi
    rm -f "$public"
  fi
  if [ ! -s "$public" ]; then
    (umask 077 && node -e 'const c = require("node:crypto"); process.stdout.write(c.createPublicKey(require("node:fs").readFileSync(process.argv[1])).export({ type: "spki", format: "pem" }))' "$private" >"$public")
  fi
  chmod 600 "$private" "$public"
}

# ---------------------------------------------------------------- PostgreSQL
pg_bindir() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/postgres" ] && [ -x "$d/pg_dump" ] && { printf '%s' "$d"; return 0; }
  done
  return 1
}

ensure_postgres_installed() {
  pg_bindir >/dev/null && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing PostgreSQL (Debian package postgresql)..."
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >>"$LOGS/apt.log" 2>&1; then
      apt-get update -q >>"$LOGS/apt.log" 2>&1 || true
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >>"$LOGS/apt.log" 2>&1 ||
        die "could not install PostgreSQL: apt-get install postgresql failed (see $LOGS/apt.log). Install PostgreSQL 15+ server and client, then run again."
    fi
  fi
  pg_bindir >/dev/null || die "PostgreSQL server not found under /usr/lib/postgresql/*/bin: install the Debian package 'postgresql' (server, pg_dump, pg_restore)"
}

# PostgreSQL refuses to run as root: as root the cluster belongs to the 'postgres' system user. It runs from /, since
# the clone it was started from may be a directory that user cannot enter.
as_pg() {
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
    (cd / && runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

# Where the cluster lives: .stack/pg, unless the stack was started as root in a directory the postgres user cannot
# reach (a clone under /root, mode 0700). Then /var/lib/vaultpam-backup/pg-<hash of the stack's path>: one cluster
# per clone, kept across reboots (unlike /tmp), and no permission of the clone's parents is changed.
pg_home() {
  if [ "$(id -u)" != 0 ] || [ -f "$STACK/pg/data/PG_VERSION" ]; then printf '%s' "$STACK/pg"; return 0; fi
  id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
  mkdir -p "$STACK"
  if (cd / && runuser -u postgres -- test -x "$STACK"); then printf '%s' "$STACK/pg"; return 0; fi
  printf '/var/lib/vaultpam-backup/pg-%s' "$(printf '%s' "$STACK" | sha256sum | cut -c1-16)"
}

# The cluster's log sits beside it, where the postgres user can write.
pg_log() { if [ "$(pg_home)" = "$STACK/pg" ]; then printf '%s' "$LOGS/postgres.log"; else printf '%s' "$(pg_home)/postgres.log"; fi; }

# A cluster: "staging" (data/, VAULTPAM_PG_PORT) or "production" (data-production/, VAULTPAM_PG_PRODUCTION_PORT), both
# under pg_home. Production's streams WAL (point-in-time protection): wal_level=replica, replication slots, a
# `host replication` entry for the product's user, max_slot_wal_keep_size so an abandoned slot cannot fill the disk,
# and wal_keep_size so a stream whose spool was lost with its worker can take its WAL again from the server.
pg_data() { if [ "$1" = production ]; then printf '%s' "$(pg_home)/data-production"; else printf '%s' "$(pg_home)/data"; fi; }
pg_port() { if [ "$1" = production ]; then printf '%s' "$PG_PRODUCTION_PORT"; else printf '%s' "$PG_PORT"; fi; }
pg_port_var() { if [ "$1" = production ]; then printf VAULTPAM_PG_PRODUCTION_PORT; else printf VAULTPAM_PG_PORT; fi; }
pg_cluster_log() { if [ "$1" = production ]; then printf '%s' "$(dirname "$(pg_log)")/postgres-production.log"; else pg_log; fi; }

pg_up() { # cluster
  local cluster=$1 bindir home log data port opts
  ensure_postgres_installed
  bindir=$(pg_bindir)
  home=$(pg_home)
  log=$(pg_cluster_log "$cluster")
  data=$(pg_data "$cluster")
  port=$(pg_port "$cluster")
  if port_open "$port" && [ -f "$data/postmaster.pid" ]; then return 0; fi
  port_open "$port" && die "port $port is taken by another program; set $(pg_port_var "$cluster") to a free port"
  if [ "$home" != "$STACK/pg" ]; then
    mkdir -p "$(dirname "$home")"
    chmod 755 "$(dirname "$home")"
    say "PostgreSQL cluster in $home (the postgres user cannot reach $STACK)"
  fi
  mkdir -p "$home"
  if [ ! -f "$data/PG_VERSION" ]; then
    local pwfile=$home/.initpw
    rm -rf "$data"
    mkdir -p "$data"
    cp "$SECRETS/pg-password" "$pwfile"
    if [ "$(id -u)" = 0 ]; then chown -R postgres "$home"; chmod 700 "$home"; touch "$log"; chown postgres "$log"; fi
    as_pg "$bindir/initdb" -D "$data" -U "$PG_USER" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >>"$log" 2>&1 ||
      { rm -f "$pwfile"; die "initdb failed; see $log"; }
    rm -f "$pwfile"
  fi
  opts="-c listen_addresses=127.0.0.1 -p $port -k /tmp -c max_connections=200 -c fsync=on"
  if [ "$cluster" = production ]; then
    opts+=" -c wal_level=replica -c max_wal_senders=10 -c max_replication_slots=10 -c max_slot_wal_keep_size=1GB -c wal_keep_size=256MB"
    grep -q "^host replication $PG_USER 127.0.0.1/32 scram-sha-256" "$data/pg_hba.conf" ||
      printf 'host replication %s 127.0.0.1/32 scram-sha-256\n' "$PG_USER" >>"$data/pg_hba.conf"
  fi
  if [ "$(id -u)" = 0 ]; then chown -R postgres "$home"; touch "$log"; chown postgres "$log"; fi
  # The port lies in Linux's ephemeral range: a client's outgoing connection may hold it for a moment (then in
  # TIME-WAIT for up to a minute), with no server listening. That is waited out; a listener is another program.
  local tries=0
  until as_pg "$bindir/pg_ctl" -D "$data" -l "$log" -w -t 60 -o "$opts" start >/dev/null; do
    tries=$((tries + 1))
    if [ "$tries" -ge 20 ] || port_open "$port" || ! tail -n 5 "$log" | grep -q 'Address already in use'; then
      die "PostgreSQL ($cluster) did not start; see $log"
    fi
    say "port $port is held by a closing connection; waiting for it to be released..."
    sleep 5
  done
}

pg_down() { # cluster
  local bindir data
  data=$(pg_data "$1")
  [ -f "$data/postmaster.pid" ] || return 0
  bindir=$(pg_bindir) || return 0
  as_pg "$bindir/pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1 || true
}

pg_kill() { # cluster (as a crash would: no chance to clean up)
  local pid_file
  pid_file="$(pg_data "$1")/postmaster.pid"
  [ -f "$pid_file" ] && kill -9 "$(head -1 "$pid_file")" 2>/dev/null || true
}

pg_sql() { # cluster sql (as the vaultpam superuser over the Unix socket)
  local bindir
  bindir=$(pg_bindir)
  as_pg "$bindir/psql" -X -q -h /tmp -p "$(pg_port "$1")" -U "$PG_USER" -d postgres -v ON_ERROR_STOP=1 -tAc "$2"
}

ensure_database() { # cluster name
  if [ -z "$(pg_sql "$1" "SELECT 1 FROM pg_database WHERE datname = '$2'")" ]; then
    pg_sql "$1" "CREATE DATABASE \"$2\"" >/dev/null
  fi
}

# ---------------------------------------------------------------- Go-built servers
# A binary already on PATH is used as is; otherwise `go install` into .stack/bin.
find_or_build() { # name module version -> path
  local name=$1 module=$2 version=$3
  if [ -x "$BIN/$name" ]; then printf '%s' "$BIN/$name"; return 0; fi
  if command -v "$name" >/dev/null 2>&1; then command -v "$name"; return 0; fi
  command -v go >/dev/null 2>&1 || die "cannot provision $name: it is not on PATH and Go is not installed to build it (install Go 1.24+, or put '$name' on PATH)"
  say "building $name $version with go install (first time only; a few minutes)..."
  mkdir -p "$BIN"
  GOBIN=$BIN GOFLAGS=-buildvcs=false go install "$module@$version" >>"$LOGS/go-install.log" 2>&1 ||
    die "go install $module@$version failed (see $LOGS/go-install.log); put a '$name' binary on PATH instead"
  printf '%s' "$BIN/$name"
}

temporal_up() {
  if pid_alive temporal && port_open "$TEMPORAL_PORT"; then return 0; fi
  port_open "$TEMPORAL_PORT" && die "port $TEMPORAL_PORT is taken by another program; set VAULTPAM_TEMPORAL_PORT to a free port"
  local temporal args=()
  temporal=$(find_or_build temporal github.com/temporalio/cli/cmd/temporal "$TEMPORAL_VERSION")
  mkdir -p "$STACK/temporal"
  for sa in "${SEARCH_ATTRIBUTES[@]}"; do args+=(--search-attribute "$sa"); done
  start_bg temporal "$LOGS/temporal.log" "$temporal" server start-dev --ip 127.0.0.1 --port "$TEMPORAL_PORT" \
    --ui-ip 127.0.0.1 --ui-port "$TEMPORAL_UI_PORT" --db-filename "$STACK/temporal/temporal.db" \
    --namespace default --log-level warn "${args[@]}"
  wait_port "Temporal" "$TEMPORAL_PORT" 90 "$LOGS/temporal.log"
  wait_port "Temporal Web UI" "$TEMPORAL_UI_PORT" 60 "$LOGS/temporal.log"
}

s3_up() {
  if pid_alive s3 && port_open "$S3_PORT"; then return 0; fi
  port_open "$S3_PORT" && die "port $S3_PORT is taken by another program; set VAULTPAM_S3_PORT to a free port"
  local gw
  gw=$(find_or_build versitygw github.com/versity/versitygw/cmd/versitygw "$VERSITYGW_VERSION")
  mkdir -p "$STACK/s3/data" "$STACK/s3/sidecar" "$STACK/s3/versions"
  ROOT_ACCESS_KEY_ID=$S3_ACCESS_KEY ROOT_SECRET_ACCESS_KEY=$(cat "$SECRETS/s3-secret-key") \
    start_bg s3 "$LOGS/s3.log" "$gw" --port "127.0.0.1:$S3_PORT" --quiet --keep-alive \
    posix --sidecar "$STACK/s3/sidecar" --versioning-dir "$STACK/s3/versions" "$STACK/s3/data"
  wait_port "S3 server (versitygw)" "$S3_PORT" 30 "$LOGS/s3.log"
}

# ---------------------------------------------------------------- sandbox VaultPAM
ensure_node_modules() {
  [ -d "$ROOT/node_modules/tsx" ] && return 0
  command -v npm >/dev/null || die "Node.js 20+ and npm are needed for the sandbox VaultPAM"
  say "installing npm dependencies (npm ci)..."
  (cd "$ROOT" && npm ci --no-audit --no-fund >>"$LOGS/npm.log" 2>&1) || die "npm ci failed; see $LOGS/npm.log"
}

sandbox_config() { # name -> writes .stack/sandbox/<name>.json
  local name=$1 port db bucket token pg_port
  case "$name" in
    production) port=$SANDBOX_PORT db=vaultpam bucket=recordings token=control-plane-token pg_port=$PG_PRODUCTION_PORT ;;
    staging) port=$STAGING_PORT db=vaultpam_staging bucket=recordings-staging token=staging-control-plane-token pg_port=$PG_PORT ;;
    *) die "unknown sandbox '$name': use production or staging" ;;
  esac
  mkdir -p "$STACK/sandbox/$name"
  cat >"$STACK/sandbox/$name.json" <<JSON
{
  "name": "$name",
  "host": "127.0.0.1",
  "port": $port,
  "postgres": { "host": "127.0.0.1", "port": $pg_port, "database": "$db", "user": "$PG_USER", "passwordFile": "$SECRETS/pg-password" },
  "s3": { "endPoint": "127.0.0.1", "port": $S3_PORT, "accessKey": "$S3_ACCESS_KEY", "secretKeyFile": "$SECRETS/s3-secret-key", "bucket": "$bucket" },
  "tokenFile": "$SECRETS/$token",
  "stateDir": "$STACK/sandbox/$name"
}
JSON
  printf '%s' "$port"
}

sandbox_start() { # name
  local name=$1 port
  port=$(sandbox_config "$name")
  if pid_alive "sandbox-$name" && port_open "$port"; then return 0; fi
  port_open "$port" && die "port $port is taken by another program; set VAULTPAM_SANDBOX_PORT / VAULTPAM_STAGING_PORT"
  ensure_node_modules
  case "$name" in production) ensure_database production vaultpam ;; staging) ensure_database staging vaultpam_staging ;; esac
  start_bg "sandbox-$name" "$LOGS/sandbox-$name.log" node --import tsx "$ROOT/sandbox/server.ts" --config "$STACK/sandbox/$name.json"
  wait_port "sandbox VaultPAM ($name)" "$port" 60 "$LOGS/sandbox-$name.log"
}

sandbox_stop() { stop_pid "sandbox-$1"; }

# ---------------------------------------------------------------- commands
row() { printf '%-24s %-6s %s\n' "$1" "$2" "$3"; }

status() {
  local st
  st() { if port_open "$1"; then printf up; else printf down; fi; }
  row "PostgreSQL" "$(st "$PG_PORT")" "127.0.0.1:$PG_PORT (cluster $(pg_home)/data)"
  row "PostgreSQL (production)" "$(st "$PG_PRODUCTION_PORT")" "127.0.0.1:$PG_PRODUCTION_PORT (cluster $(pg_home)/data-production)"
  row "Temporal" "$(st "$TEMPORAL_PORT")" "127.0.0.1:$TEMPORAL_PORT (history $STACK/temporal/temporal.db)"
  row "Temporal Web UI" "$(st "$TEMPORAL_UI_PORT")" "http://127.0.0.1:$TEMPORAL_UI_PORT"
  row "S3 server" "$(st "$S3_PORT")" "http://127.0.0.1:$S3_PORT (versitygw, data $STACK/s3/data)"
  row "VaultPAM (production)" "$(st "$SANDBOX_PORT")" "http://127.0.0.1:$SANDBOX_PORT"
  row "VaultPAM (staging)" "$(st "$STAGING_PORT")" "http://127.0.0.1:$STAGING_PORT"
  port_open "$PG_PORT" && port_open "$PG_PRODUCTION_PORT" && port_open "$TEMPORAL_PORT" && port_open "$TEMPORAL_UI_PORT" && port_open "$S3_PORT" &&
    port_open "$SANDBOX_PORT" && port_open "$STAGING_PORT"
}

up() {
  local t0
  t0=$(now_ms)
  mkdir -p "$STACK" "$LOGS" "$RUN" "$BIN"
  make_secrets
  pg_up staging
  pg_up production
  s3_up
  temporal_up
  sandbox_start production
  sandbox_start staging
  say "stack up in $(( $(now_ms) - t0 )) ms"
}

down() {
  sandbox_stop staging
  sandbox_stop production
  stop_pid temporal
  stop_pid s3
  pg_down production
  pg_down staging
  say "stack down"
}

env_out() {
  cat <<ENV
VAULTPAM_STACK_DIR=$STACK
VAULTPAM_PG_PORT=$PG_PORT
VAULTPAM_PG_PRODUCTION_PORT=$PG_PRODUCTION_PORT
VAULTPAM_TEMPORAL_PORT=$TEMPORAL_PORT
VAULTPAM_TEMPORAL_UI_PORT=$TEMPORAL_UI_PORT
VAULTPAM_S3_PORT=$S3_PORT
VAULTPAM_SANDBOX_PORT=$SANDBOX_PORT
VAULTPAM_STAGING_PORT=$STAGING_PORT
ENV
}

mkdir -p "$LOGS" "$RUN" 2>/dev/null || true
case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  env) env_out ;;
  sandbox)
    [ $# -eq 3 ] || die "usage: stack.sh sandbox start|stop|status production|staging"
    case "$2" in
      start) make_secrets; sandbox_start "$3" ;;
      stop) sandbox_stop "$3" ;;
      status) port=$(sandbox_config "$3"); port_open "$port" && echo up || { echo down; exit 1; } ;;
      *) die "usage: stack.sh sandbox start|stop|status production|staging" ;;
    esac
    ;;
  service)
    [ $# -eq 3 ] || die "usage: stack.sh service start|stop|kill postgres|postgres-production|temporal|s3"
    make_secrets
    case "$2:$3" in
      start:postgres) pg_up staging; pg_up production ;;
      start:postgres-production) pg_up production ;;
      start:temporal) temporal_up ;;
      start:s3) s3_up ;;
      stop:postgres) pg_down production; pg_down staging ;;
      stop:postgres-production) pg_down production ;;
      stop:temporal | stop:s3) stop_pid "$3" ;;
      # As a crash would: no chance to clean up.
      kill:temporal | kill:s3) [ -f "$RUN/$3.pid" ] && kill -9 "$(cat "$RUN/$3.pid")" 2>/dev/null; rm -f "$RUN/$3.pid" ;;
      kill:postgres) pg_kill production; pg_kill staging ;;
      kill:postgres-production) pg_kill production ;;
      *) die "usage: stack.sh service start|stop|kill postgres|postgres-production|temporal|s3" ;;
    esac
    ;;
  *) die "usage: stack.sh up | down | status | env | sandbox start|stop|status <production|staging> | service start|stop|kill <postgres|postgres-production|temporal|s3>" ;;
esac
