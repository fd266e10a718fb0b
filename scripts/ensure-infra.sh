#!/usr/bin/env bash
# Makes sure PostgreSQL, Redis and RabbitMQ answer on 127.0.0.1. For each one
# that does not: start it if it is installed; install it from Debian's packages
# when running as root; use Docker compose when a container engine runs; else
# stop with a message saying what is missing and how to fix it.
set -uo pipefail
cd "$(dirname "$0")/.."

PG_PORT=${TABLIUM_PG_PORT:-5432}
REDIS_PORT=${TABLIUM_REDIS_PORT:-6379}
AMQP_PORT=${TABLIUM_AMQP_PORT:-5672}

port_open() {  # host port
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && exec 3>&- 3<&-
}

wait_port() {  # name port seconds
  local i
  for ((i = 0; i < $3 * 2; i++)); do
    port_open 127.0.0.1 "$2" && return 0
    sleep 0.5
  done
  return 1
}

docker_running() {
  command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1
}

apt_install() {
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    return 1
  fi
  echo "infra: installing $* from Debian's packages"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

start_postgres() {
  local installed_here=0 version
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    apt_install postgresql || return 1
    installed_here=1
  fi
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
  [ -n "$version" ] || return 1
  if [ "$installed_here" = 1 ]; then
    # Debian's new cluster wants a password over TCP; Tablium's development setup connects
    # as postgres without one. Only a cluster this script just installed is changed.
    sed -i -E 's/^(host[[:space:]]+all[[:space:]]+all[[:space:]]+(127\.0\.0\.1\/32|::1\/128)[[:space:]]+)[^[:space:]]+$/\1trust/' \
      "/etc/postgresql/$version/main/pg_hba.conf"
  fi
  pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null || true
  # Already running (apt starts a new cluster): make it read the changed pg_hba.conf.
  [ "$installed_here" = 1 ] && pg_ctlcluster --skip-systemctl-redirect "$version" main reload 2>/dev/null
  return 0
}

start_redis() {
  command -v redis-server >/dev/null 2>&1 || apt_install redis-server || return 1
  mkdir -p /tmp/tablium-redis
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
    --dir /tmp/tablium-redis --logfile /tmp/tablium-redis/redis.log
}

start_rabbitmq() {
  command -v rabbitmq-server >/dev/null 2>&1 || apt_install rabbitmq-server || return 1
  rabbitmq-server -detached 2>/dev/null || true
}

missing=()
ensure() {  # name port starter wait_seconds
  local name=$1 port=$2 starter=$3 seconds=$4
  if port_open 127.0.0.1 "$port"; then
    echo "infra: $name is up on 127.0.0.1:$port"
    return
  fi
  echo "infra: $name is not reachable on 127.0.0.1:$port; starting it"
  if "$starter" && wait_port "$name" "$port" "$seconds"; then
    echo "infra: $name started"
    return
  fi
  if docker_running; then
    echo "infra: starting $name with docker compose"
    docker compose -f deploy/docker-compose.infra.yml up -d "$name" && wait_port "$name" "$port" "$seconds" && return
  fi
  missing+=("$name")
}

ensure postgres "$PG_PORT" start_postgres 30
ensure redis "$REDIS_PORT" start_redis 10
ensure rabbitmq "$AMQP_PORT" start_rabbitmq 60

# One broker user per service, each allowed to publish only its own event types (ADR 0002). Needs
# rabbitmqctl on this host and the workspace installed; the services keep guest unless
# TABLIUM_<SERVICE>_AMQP_URL names their user (production does).
if [[ ! " ${missing[*]} " =~ " rabbitmq " ]] && command -v rabbitmqctl >/dev/null 2>&1 && [ -x .venv/bin/python ]; then
  .venv/bin/python -m tablium_kit.messaging.brokerusers || echo "infra: could not create the services' broker users" >&2
fi

if [ ${#missing[@]} -gt 0 ]; then
  cat >&2 <<MSG
infra: not reachable: ${missing[*]}.
Tablium needs PostgreSQL on 127.0.0.1:$PG_PORT (user postgres, trust auth), Redis on
127.0.0.1:$REDIS_PORT and RabbitMQ on 127.0.0.1:$AMQP_PORT (guest/guest). Install them
(as root: apt-get install postgresql redis-server rabbitmq-server), or start a
container engine and run: docker compose -f deploy/docker-compose.infra.yml up -d
MSG
  exit 1
fi
