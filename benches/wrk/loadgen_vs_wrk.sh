#!/usr/bin/env bash
# Requests per generator CPU-second: q2o-loadgen's open-model engine versus wrk,
# against the same axum endpoint (the gateway's /health), server on cpu 0 and
# generator on cpu 1, one after the other in one run.
#   benches/wrk/loadgen_vs_wrk.sh [seconds=10] [loadgen_rate=what wrk sustained]
#
# wrk is closed-model: 64 connections, each sending as soon as its answer
# came, so the server never sleeps and a request wakes nobody. An open-model
# engine offered less than the server can take sends into a server that is
# often asleep, and each such send pays for waking it in the sender's kernel
# time (2026-12-06: 64k requests per CPU-second at 45,000/s, 81k at 90,000/s,
# wrk 99k). The like-for-like default therefore offers the loadgen the rate
# wrk sustained; a rate given here measures that regime instead.
source "$(dirname "$0")/common.sh"
seconds=${1:-10}
rate=${2:-}
(cd "$root" && cargo build --release --bin q2o-gateway --bin q2o-loadgen --quiet)

port=$(free_port)
taskset -c 0 redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" >/dev/null &
pids+=($!)
taskset -c 0 "$bin/q2o-gateway" --http-addr 127.0.0.1:0 --grpc-addr 127.0.0.1:0 --redis-url "redis://127.0.0.1:$port" \
    > "$work/gateway.out" 2> "$work/gateway.err" &
pids+=($!)
for _ in $(seq 100); do grep -q listening "$work/gateway.out" && break; sleep 0.1; done
url="http://$(sed -n 's/.*http=\([^ ]*\).*/\1/p' "$work/gateway.out")/health"

# CPU seconds (user + system) of a command and its children, then its output.
cpu() { python3 - "$@" <<'PY'
import resource, subprocess, sys
out = subprocess.run(sys.argv[1:], capture_output=True, text=True)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"cpu_seconds={r.ru_utime + r.ru_stime:.3f}")
print(out.stdout + out.stderr)
PY
}

echo "== wrk -t1 -c64 -d${seconds}s $url (cpu 1)"
wrk_out=$(cpu taskset -c 1 wrk -t1 -c64 -d"${seconds}s" "$url")
echo "$wrk_out" | grep -E "cpu_seconds|Requests/sec|requests in"
if [[ -z $rate ]]; then
    rate=$(echo "$wrk_out" | sed -n 's/^Requests\/sec: *\([0-9]*\).*/\1/p')
    echo "== the loadgen is offered the rate wrk sustained: $rate/s"
fi
echo "== q2o-loadgen run --url $url --rate $rate --duration ${seconds}s (cpu 1)"
lg_out=$(cpu taskset -c 1 "$bin/q2o-loadgen" run --url "$url" --rate "$rate" --duration "${seconds}s" --max-in-flight 256)
echo "$lg_out" | grep -E "cpu_seconds|requests in|latency"

python3 - "$wrk_out" "$lg_out" <<'PY'
import re, sys
def parse(text, pattern):
    cpu = float(re.search(r"cpu_seconds=([\d.]+)", text).group(1))
    n = int(re.search(pattern, text).group(1))
    return n, cpu
wn, wc = parse(sys.argv[1], r"(\d+) requests in")
ln, lc = parse(sys.argv[2], r"(\d+) requests in")
print(f"wrk:         {wn} requests / {wc:.2f} cpu-s = {wn / wc:,.0f} requests per cpu-second")
print(f"q2o-loadgen: {ln} requests / {lc:.2f} cpu-s = {ln / lc:,.0f} requests per cpu-second")
print(f"ratio loadgen/wrk = {(ln / lc) / (wn / wc):.2f} (goal >= 0.8)")
PY
