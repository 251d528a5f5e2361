#!/usr/bin/env bash
# `just up`: redis-server, one gateway and the agents on 127.0.0.1, in the
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
bin=${CARGO_TARGET_DIR:-$root/target}/debug

if [ -f "$state/pids" ]; then
    echo "up: a stack is already running (pids in $state/pids); run 'just down' first" >&2
    exit 1
fi
mkdir -p "$state/logs"
: > "$state/pids"

stop() {
    trap - INT TERM EXIT
    if [ -f "$state/pids" ]; then
        while read -r pid; do kill "$pid" 2>/dev/null || true; done < "$state/pids"
        while read -r pid; do
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null || true
        done < "$state/pids"
        rm -f "$state/pids"
    fi
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

start redis redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$state"
for _ in $(seq 100); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
export Q2O_REDIS_URL="redis://127.0.0.1:$redis_port"
start gateway "$bin/q2o-gateway" --http-addr "$http" --grpc-addr "$grpc"
start agents "$bin/q2o-agents" --http-addr "$agents_http" --grpc-addr "$agents_grpc"
wait_http "http://$http/ready"
wait_http "http://$agents_http/ready"

cat <<EOT
q2o stack is up (logs in $state/logs):
  REST      http://$http/api/v1   (OpenAPI: http://$http/api/v1/openapi.json)
  gRPC      $grpc
  metrics   http://$http/metrics  http://$agents_http/metrics
  agents    http://$agents_http   gRPC $agents_grpc
  redis     redis://127.0.0.1:$redis_port
  demo API keys: demo-key-acme, demo-key-globex
Press Ctrl-C to stop.
EOT
wait -n || true
echo "up: a service exited; stopping the rest" >&2
