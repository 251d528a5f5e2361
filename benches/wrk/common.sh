# Sourced by the scripts in benches/wrk: the repository root, the release
# binaries, a scratch folder, and a cleanup that stops every process a script
# started (their pids go into `pids`) on exit, Ctrl-C and failure.
set -euo pipefail
# wrk is the yardstick, not a dependency of the harness: setup.sh does not install it.
command -v wrk >/dev/null 2>&1 || { echo "$(basename "$0"): wrk is not installed (apt-get install wrk)" >&2; exit 2; }
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bin=${CARGO_TARGET_DIR:-$root/target}/release
work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT INT TERM
# A free port on 127.0.0.1.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
