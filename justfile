# q2o-bench: the commands people type. `just --list` shows them.

set shell := ["bash", "-euo", "pipefail", "-c"]

# Install the system packages and tools the project needs (idempotent).
setup:
    ./scripts/setup.sh

# Build every binary (debug).
build:
    cargo build --bins

# Start redis-server, tansu, q2o-search, a gateway and two agents processes on 127.0.0.1; Ctrl-C stops them.
up: setup build
    ./scripts/up.sh

# Stop what `just up` started.
down:
    ./scripts/down.sh

# Run the whole test suite against real servers.
test: setup build
    if cargo nextest --version >/dev/null 2>&1; then \
        cargo nextest run --workspace --no-fail-fast; \
    else \
        cargo test --workspace --no-fail-fast; \
    fi

# Event throughput produced -> audited on tansu, and produce -> audit latency.
measure-event-log events="50000":
    cargo bench -p q2o-benches --bench event_log -- {{events}}

# Search p50/p95 at 100k documents, and indexing lag.
measure-search docs="100000":
    cargo bench -p q2o-benches --bench search_index -- {{docs}}

# Lints as CI would.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
