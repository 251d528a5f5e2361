#!/usr/bin/env bash
# Memory per simulated user of q2o-loadgen's goose users: the loadgen's resident
# set at a small and at a large user count, both in the hold with think time,
# against a real gateway (release builds). Prints KiB per user and open files.
#   benches/wrk/users_rss.sh [users=10000] [baseline_users=100] [hold_seconds=40]
source "$(dirname "$0")/common.sh"
users=${1:-10000}
base_users=${2:-100}
hold=${3:-40}
(cd "$root" && cargo build --release --bin q2o-gateway --bin q2o-loadgen --quiet)

port=$(free_port)
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" >/dev/null &
pids+=($!)
printf '[rate_limit]\ncapacity = 100000000\nrefill_per_second = 100000000.0\n' > "$work/gateway.toml"
"$bin/q2o-gateway" --config "$work/gateway.toml" --http-addr 127.0.0.1:0 --grpc-addr 127.0.0.1:0 \
    --redis-url "redis://127.0.0.1:$port" > "$work/gateway.out" 2> "$work/gateway.err" &
pids+=($!)
for _ in $(seq 100); do grep -q listening "$work/gateway.out" && break; sleep 0.1; done
rest="http://$(sed -n 's/.*http=\([^ ]*\).*/\1/p' "$work/gateway.out")"

# Starts n users (ramp 1000/s), waits until all are in the hold, samples the
# loadgen's VmRSS and open files over 10 s and prints the median RSS in KiB.
measure() {
    local n=$1 ramp=$(( ($1 + 999) / 1000 + 2 ))
    "$bin/q2o-loadgen" users --rest-url "$rest" --users "$n" --ramp-rate 1000 --hold "${hold}s" --ramp-down 1s \
        --think exp:10s --journeys browse=5,create_project=1 > "$work/users-$n.out" 2>&1 &
    local pid=$!
    sleep $(( ramp + 5 ))
    local samples=()
    for _ in $(seq 10); do
        samples+=("$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")")
        sleep 1
    done
    local files; files=$(ls "/proc/$pid/fd" | wc -l)
    wait "$pid" || true
    printf '%s\n' "${samples[@]}" | sort -n | awk -v n="$n" -v f="$files" '{a[NR]=$1} END {print n, a[int((NR+1)/2)], f}'
}

read -r bn brss bfiles < <(measure "$base_users")
echo "$bn users: RSS ${brss} KiB, ${bfiles} open files"
read -r n rss files < <(measure "$users")
echo "$n users: RSS ${rss} KiB, ${files} open files"
python3 - "$bn" "$brss" "$n" "$rss" <<'PY'
import sys
bn, brss, n, rss = map(int, sys.argv[1:])
print(f"memory per user = ({rss} - {brss}) KiB / ({n} - {bn}) users = {(rss - brss) / (n - bn):.2f} KiB (goal <= 20 KiB)")
PY
grep -E "users \(goose|latency" "$work/users-$n.out"
