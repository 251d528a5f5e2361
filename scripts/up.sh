#!/usr/bin/env bash
# `just up`: redis-server, tansu, q2o-search, one gateway and two agents
# processes on 127.0.0.1, in the
# foreground. Ctrl-C (or `just down` from another shell) stops everything this
# script started, and only that.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
state="$root/.q2o-up"
redis_port=${Q2O_REDIS_PORT:-6390}
http=${Q2O_GATEWAY_HTTP:-127.0.0.1:8080}
grpc=${Q2O_GATEWAY_GRPC:-127.0.0.1:50051}
agents_http=${Q2O_AGENTS_HTTP:-127.0.0.1:8090}
agents_grpc=${Q2O_AGENTS_GRPC:-127.0.0.1:50061}
broker_port=${Q2O_BROKER_PORT:-9092}
search_http=${Q2O_SEARCH_HTTP:-127.0.0.1:8070}
tansu=${Q2O_TANSU:-${Q2O_CACHE:-$HOME/.cache/q2o-bench}/tansu-0.6.0-q2o1/bin/tansu}
bin=${CARGO_TARGET_DIR:-$root/target}/debug

if [ -f "$state/pids" ]; then
    echo "up: a stack is already running (pids in $state/pids); run 'just down' first" >&2
    exit 1
fi
mkdir -p "$state/logs"
: > "$state/pids"

stop() {
    trap - INT TERM EXIT
    "$root/scripts/down.sh" >/dev/null
    echo "up: stopped" >&2
}
trap stop INT TERM EXIT

start() { # name, command...
    local name=$1; shift
    "$@" > "$state/logs/$name.log" 2>&1 &
    echo $! >> "$state/pids"
}

wait_http() { # url
    for _ in $(seq 200); do
        if python3 - "$1" <<'PY' 2>/dev/null; then return 0; fi
import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=1)
PY
        sleep 0.1
    done
    echo "up: $1 did not become ready; see $state/logs" >&2
    return 1
}

if [ ! -x "$tansu" ]; then
    echo "up: tansu not found at $tansu; run ./scripts/setup.sh" >&2
    exit 1
fi
mkdir -p "$state/broker" "$state/search"
start_in() { # dir, name, command...
    local dir=$1 name=$2; shift 2
    (cd "$dir" && exec "$@") > "$state/logs/$name.log" 2>&1 &
    echo $! >> "$state/pids"
}
# tansu resolves sqlite:// paths against its working directory.
start_in "$state/broker" broker "$tansu" broker --listener-url "tcp://127.0.0.1:$broker_port" \
    --advertised-listener-url "tcp://127.0.0.1:$broker_port" --storage-engine sqlite://broker.db
for _ in $(seq 100); do grep -q "ready in" "$state/logs/broker.log" 2>/dev/null && break; sleep 0.1; done
cat > "$state/agents.toml" <<EOT
consumer_groups = ["analytics", "audit"]
[kafka]
bootstrap_servers = "127.0.0.1:$broker_port"
EOT

start redis redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$state"
for _ in $(seq 100); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
export Q2O_REDIS_URL="redis://127.0.0.1:$redis_port"
export Q2O_KAFKA_BOOTSTRAP="127.0.0.1:$broker_port"
start search "$bin/q2o-search" --http-addr "$search_http" --data-dir "$state/search"
start gateway "$bin/q2o-gateway" --http-addr "$http" --grpc-addr "$grpc" --search-url "http://$search_http"
# Two agents processes: each consumer group needs two members to survive a restart (see README).
start agents "$bin/q2o-agents" --config "$state/agents.toml" --http-addr "$agents_http" --grpc-addr "$agents_grpc"
start agents-2 "$bin/q2o-agents" --config "$state/agents.toml" --http-addr 127.0.0.1:0 --grpc-addr 127.0.0.1:0
wait_http "http://$http/ready"
wait_http "http://$agents_http/ready"
wait_http "http://$search_http/ready"

cat <<EOT
q2o stack is up (logs in $state/logs):
  REST      http://$http/api/v1   (OpenAPI: http://$http/api/v1/openapi.json)
  gRPC      $grpc
  metrics   http://$http/metrics  http://$agents_http/metrics
  agents    http://$agents_http   gRPC $agents_grpc
  search    http://$search_http/api/v1/search (through the gateway: /api/v1/search?q=...)
  redis     redis://127.0.0.1:$redis_port
  kafka     127.0.0.1:$broker_port (tansu, topic agent_activity)
  demo API keys: demo-key-acme, demo-key-globex
Press Ctrl-C to stop.
EOT
wait -n || true
echo "up: a service exited; stopping the rest" >&2
