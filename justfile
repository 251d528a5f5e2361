# q2o-bench: the commands people type. `just --list` shows them.

set shell := ["bash", "-euo", "pipefail", "-c"]

# Install the system packages and tools the project needs (idempotent).
setup:
    ./scripts/setup.sh

# Build every binary (debug).
build:
    cargo build --bins

# Run a roadmap scenario (phase0..phase4, or `all`), or a comparison (rest-vs-grpc), on release builds and write its report.
# Flags go to q2o-bench: --users N, --duration 30s, --scale 0.01. Exit 0 GO, 1 NO-GO, 2 the run failed.
bench scenario *flags: setup
    cargo build --release --bins
    @bin="${CARGO_TARGET_DIR:-target}/release"; \
    if [ "{{scenario}}" = all ]; then \
        worst=0; \
        for phase in phase0 phase1 phase2 phase3 phase4; do \
            code=0; "$bin/q2o-bench" run "scenarios/$phase.toml" {{flags}} || code=$?; \
            if [ "$code" -gt "$worst" ]; then worst=$code; fi; \
        done; \
        exit "$worst"; \
    elif [ -f "{{scenario}}" ]; then \
        "$bin/q2o-bench" run "{{scenario}}" {{flags}}; \
    else \
        "$bin/q2o-bench" run "scenarios/{{scenario}}.toml" {{flags}}; \
    fi

# Capacity planning on release builds: the knee in users (the most of the scenario's own users meeting the SLOs)
# at its gateway replicas; with --replicas 1,2,3 the Universal Scalability Law fit and the replicas 5k/50k/100k users need.
# Flags go to `q2o-bench capacity`: --replicas 1,2,3, --hold 20s, --target-users N. Exit 0 when the target is carried.
capacity scenario *flags: setup
    cargo build --release --bins
    @file="{{scenario}}"; [ -f "$file" ] || file="scenarios/$file.toml"; \
    "${CARGO_TARGET_DIR:-target}/release/q2o-bench" capacity "$file" {{flags}}

# A run's verdict and report (a run folder, or a scenario name for its latest run); with a baseline
# (likewise), what regressed beyond 10 %, written to baseline.md in the run folder. Exit 1 on a regression.
report run baseline="": build
    @dir() { if [ -d "$1" ]; then echo "$1"; else echo "reports/$1/latest"; fi; }; \
    bin="${CARGO_TARGET_DIR:-target}/debug/q2o-bench"; \
    if [ -n "{{baseline}}" ]; then "$bin" report "$(dir "{{run}}")" --baseline "$(dir "{{baseline}}")"; \
    else "$bin" report "$(dir "{{run}}")"; fi

# Build the docker environment's images from host binaries, FROM scratch (no registry needed).
images *names: setup
    cargo build --release --bins
    ./scripts/images.sh {{names}}

# Regenerate alerts/ (SLI recording rules, gate alerts) from the scenario files.
rules:
    cargo run -q -p q2o-scenarios --bin q2o-bench -- rules

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

# CPU-µs per request and RSS of every process under a fixed count of a scenario's users, and the idle stack (release; --users 10000 --hold 60s --idle 10s).
measure-cost scenario="phase2" *flags: setup
    cargo build --release --bins
    @file="{{scenario}}"; [ -f "$file" ] || file="scenarios/$file.toml"; \
    "${CARGO_TARGET_DIR:-target}/release/q2o-bench" cost "$file" {{flags}}

# Event throughput produced -> audited on tansu, and produce -> audit latency.
measure-event-log events="50000": setup
    cargo bench -p q2o-benches --bench event_log -- {{events}}

# Search latency at 100k documents (distinct queries, and the users' repeated ones), and indexing lag; tenants=1 is a load test's.
measure-search docs="100000" tenants="20":
    cargo bench -p q2o-benches --bench search_index -- {{docs}} {{tenants}}

# Criterion micro-benchmarks: codecs (JSON vs protobuf), the Redis token bucket, HdrHistogram, code templates,
# a search on a 100k-document index.
microbench *flags: setup
    cargo bench -p q2o-benches --bench micro -- {{flags}}

# Lints as CI would.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
