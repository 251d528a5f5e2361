#!/usr/bin/env bash
# Requests/s and latency percentiles of POST /api/v1/projects/{id}/tasks against
# one release-build gateway and its Redis, with wrk on the other core.
#   benches/wrk/submit_task.sh [duration=30s] [connections=32]
# The rate limiter stays on (every request runs the token-bucket script) with a
# bucket large enough never to refuse. Without agents running, the queue only grows.
source "$(dirname "$0")/common.sh"
duration=${1:-30s}
connections=${2:-32}

(cd "$root" && cargo build --release --bin q2o-gateway --quiet)
port=$(free_port)
taskset -c 0 redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" >/dev/null &
pids+=($!)
cat > "$work/gateway.toml" <<EOT
http_addr = "127.0.0.1:0"
grpc_addr = "127.0.0.1:0"
redis_url = "redis://127.0.0.1:$port"
[rate_limit]
capacity = 1000000000
refill_per_second = 1000000000.0
[[tenants]]
tenant = "acme"
api_key = "demo-key-acme"
EOT
taskset -c 0 "$bin/q2o-gateway" --config "$work/gateway.toml" > "$work/gateway.out" 2> "$work/gateway.err" &
pids+=($!)
for _ in $(seq 100); do grep -q listening "$work/gateway.out" && break; sleep 0.1; done
http=$(sed -n 's/.*http=\([^ ]*\).*/\1/p' "$work/gateway.out")
token=$(curl -sf "http://$http/api/v1/auth/login" -H 'content-type: application/json' -d '{"api_key":"demo-key-acme"}' \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
project=$(curl -sf "http://$http/api/v1/projects" -H "authorization: Bearer $token" -H 'content-type: application/json' \
    -d '{"name":"wrk"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
echo "wrk -t1 -c$connections -d$duration against http://$http (gateway + redis on cpu 0, wrk on cpu 1)"
Q2O_TOKEN=$token Q2O_PROJECT=$project taskset -c 1 wrk -t1 -c"$connections" -d"$duration" \
    -s "$root/benches/wrk/submit_task.lua" "http://$http"
