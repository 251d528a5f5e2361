#!/usr/bin/env bash
# `just down`: stops what `just up` started (by the PIDs it recorded).
set -euo pipefail
state="$(cd "$(dirname "$0")/.." && pwd)/.q2o-up"
if [ ! -f "$state/pids" ]; then
    echo "down: nothing is running"
    exit 0
fi
while read -r pid; do kill "$pid" 2>/dev/null || true; done < "$state/pids"
while read -r pid; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
done < "$state/pids"
rm -f "$state/pids"
echo "down: stopped"
