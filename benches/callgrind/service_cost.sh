#!/usr/bin/env bash
# Instructions per request of one service under phase2's users: `q2o-bench
# cost` with that service's processes run under callgrind, their counters
# zeroed once the users are ramped and warm and dumped 50 s later, divided by
# the requests the loadgen finished in the same span (its per-second record).
# Instruction counts repeat on a shared machine where CPU time drifts by 5-15 %
# between runs; callgrind slows the service about 50x, so keep the users low.
#   benches/callgrind/service_cost.sh SERVICE [users=1000]
# SERVICE is q2o-gateway, q2o-agents, q2o-search or q2o-loadgen; every
# process of it is counted. The binaries are the release ones (`cargo build --release --bins`).
# With KEEP=DIR the dumps are copied there, for callgrind_annotate.
set -euo pipefail
command -v callgrind_control >/dev/null 2>&1 || { echo "$(basename "$0"): valgrind is not installed (apt-get install valgrind)" >&2; exit 2; }
service=${1:?usage: service_cost.sh SERVICE [users]}
users=${2:-1000}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bin=${CARGO_TARGET_DIR:-$root/target}/release
[ -x "$bin/$service" ] || { echo "$(basename "$0"): no $bin/$service (SERVICE: q2o-gateway, q2o-agents, q2o-search or q2o-loadgen)" >&2; exit 2; }
work=$(mktemp -d)
watcher=
cleanup() { [ -n "$watcher" ] && kill "$watcher" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT INT TERM

# The runner takes its services from its own folder: a copy of the binaries,
# with SERVICE replaced by a script that runs it under callgrind.
mkdir "$work/real"
for b in q2o-bench q2o-gateway q2o-agents q2o-search q2o-loadgen q2o-monolith; do cp "$bin/$b" "$work/"; done
mv "$work/$service" "$work/real/$service"
printf '#!/bin/sh\nexec valgrind --tool=callgrind --callgrind-out-file=%s/cg.%%p.out %s/real/%s "$@"\n' \
    "$work" "$work" "$service" > "$work/$service"
chmod +x "$work/$service"

# `q2o-bench cost` ramps at phase2's 500 users/s (or in 30 s) and waits one
# mean think time (10 s) before it measures; the counters start 4 s later.
ramp=$(( (users + 499) / 500 )); [ "$ramp" -gt 30 ] && ramp=30
skip=$(( ramp + 14 )); span=50
(
    until pgrep -f "$work/(real/)?q2o-loadgen" >/dev/null; do sleep 0.2; done
    sleep "$skip"
    for pid in $(pgrep -f "valgrind.*$work/real/$service"); do callgrind_control -z "$pid" >/dev/null 2>&1; done
    echo "zero $(date +%s.%N)" > "$work/window"
    sleep "$span"
    for pid in $(pgrep -f "valgrind.*$work/real/$service"); do callgrind_control -d "$pid" >/dev/null 2>&1; done
    echo "dump $(date +%s.%N)" >> "$work/window"
) &
watcher=$!
echo "== q2o-bench cost scenarios/phase2.toml --users $users, $service under callgrind"
(cd "$root" && "$work/q2o-bench" cost scenarios/phase2.toml --users "$users" --hold 60s --reports "$work/reports") \
    | grep -E '^Run |^- machine'
wait "$watcher"; watcher=

python3 - "$work" "$service" <<'PY'
import glob, json, sys
work, service = sys.argv[1:3]
t = dict(line.split() for line in open(f"{work}/window"))
t0, t1 = float(t["zero"]), float(t["dump"])
requests = 0.0
# One run: its folder, not the `latest` link beside it.
for part in glob.glob(f"{work}/reports/phase2-cost/2*/loadgen/part-*/results.json"):
    r = json.load(open(part))
    for i, second in enumerate(r["seconds"]):
        start = r["started_at"] + i
        requests += second["requests"] * max(0.0, min(start + 1, t1) - max(start, t0))
instructions = 0
for dump in glob.glob(f"{work}/cg.*.out.1"):
    for line in open(dump):
        if line.startswith(("summary:", "totals:")):
            instructions += int(line.split()[1])
            break
print(f"{service}: {instructions:,} instructions over {t1 - t0:.1f} s and {requests:,.0f} requests: "
      f"{instructions / requests:,.0f} per request")
PY
if [ -n "${KEEP:-}" ]; then
    mkdir -p "$KEEP" && cp "$work"/cg.*.out.1 "$KEEP"/ && echo "dumps copied to $KEEP"
fi
