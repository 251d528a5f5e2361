#!/usr/bin/env bash
# Installs what q2o-bench needs beyond the Rust toolchain, and nothing twice:
#   - Debian packages: redis-server, prometheus (with promtool), nginx (the load balancer)
#   - just (from PyPI's rust-just) when no `just` is on PATH
#   - schemathesis and kubernetes-validate (PyPI) in the project's .venv, for `just test`
# Safe to run repeatedly; each step is skipped when already satisfied.
set -euo pipefail

log() { printf 'setup: %s\n' "$*" >&2; }

need_apt=()
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v prometheus >/dev/null 2>&1 || need_apt+=(prometheus)
command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need_apt+=(nginx)
if ((${#need_apt[@]})); then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    log "installing ${need_apt[*]} (apt-get)"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
    # The Debian packages may start system services; the harness runs its own.
    for service in redis-server prometheus nginx; do
        if command -v service >/dev/null 2>&1; then $sudo service "$service" stop >/dev/null 2>&1 || true; fi
    done
fi

if ! command -v just >/dev/null 2>&1; then
    log "installing just (pip: rust-just)"
    python3 -m pip --version >/dev/null 2>&1 || {
        sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-pip >/dev/null
    }
    # A distribution's own Python refuses plain installs (PEP 668): fall back to a user install.
    python3 -m pip install --quiet --disable-pip-version-check rust-just 2>/dev/null \
        || python3 -m pip install --quiet --disable-pip-version-check --user --break-system-packages rust-just
    hash -r
    if ! command -v just >/dev/null 2>&1; then
        # Installed, but into a directory this shell does not search: link it where it does.
        found=$(python3 - <<'PY'
import os, site, sysconfig
for d in (sysconfig.get_path("scripts"), os.path.join(site.getuserbase(), "bin")):
    p = os.path.join(d, "just")
    if os.access(p, os.X_OK):
        print(p)
        break
PY
)
        link_dir=""
        IFS=: read -ra path_dirs <<< "$PATH"
        for dir in "${path_dirs[@]}"; do
            if [ -d "$dir" ] && [ -w "$dir" ]; then link_dir=$dir; break; fi
        done
        if [ -n "$found" ] && [ -n "$link_dir" ]; then
            ln -sf "$found" "$link_dir/just"
            log "linked $found into $link_dir"
        fi
        hash -r
        command -v just >/dev/null 2>&1 || { log "just is installed at $found; add its directory to PATH"; exit 1; }
    fi
fi

# The Kafka-protocol broker of the local environment: tansu 0.6.0 with sqlite
# storage, built once from the crate registry (about 15 minutes on two cores)
# and kept in the cache; never rebuilt when present. One patch of ours
# (scripts/tansu/statement-cache.patch) makes its storage reuse prepared SQLite
# statements: preparing them was about half of the broker's CPU. The directory
# names the patch level, so a cache built without it is not used.
cache="${Q2O_CACHE:-$HOME/.cache/q2o-bench}"
tansu="$cache/tansu-0.6.0-q2o1/bin/tansu"
if [ ! -x "$tansu" ] && [ -z "${Q2O_TANSU:-}" ]; then
    log "building tansu 0.6.0 into $cache (once; ~15 min on 2 cores)"
    root="$(cd "$(dirname "$0")/.." && pwd)"
    work="$cache/tansu-build"
    rm -rf "$work"
    mkdir -p "$work/sources/src"
    # A manifest that only asks cargo to fetch and unpack the two crates' sources.
    cat > "$work/sources/Cargo.toml" <<'TOML'
[package]
name = "q2o-tansu-sources"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
tansu = { version = "=0.6.0", default-features = false }
tansu-storage = { version = "=0.6.0", default-features = false }
TOML
    touch "$work/sources/src/lib.rs"
    cargo fetch --manifest-path "$work/sources/Cargo.toml" --quiet 2>"$work/fetch.log" \
        || { log "cannot fetch the tansu 0.6.0 sources: $(tail -n 5 "$work/fetch.log")"; exit 1; }
    # cargo metadata lists tansu-storage; tansu, a binary crate, it leaves out
    # of a library's dependencies, but fetch unpacked it beside the other.
    storage=$(cargo metadata --manifest-path "$work/sources/Cargo.toml" --format-version 1 2>/dev/null \
        | python3 -c '
import json, os, sys
for p in json.load(sys.stdin)["packages"]:
    if p["name"] == "tansu-storage" and p["version"] == "0.6.0":
        print(os.path.dirname(p["manifest_path"]))
')
    broker="$(dirname "${storage:-.}")/tansu-0.6.0"
    [ -n "$storage" ] && [ -f "$broker/Cargo.lock" ] || { log "cannot find the fetched tansu 0.6.0 sources"; exit 1; }
    cp -r "$storage" "$work/tansu-storage"
    cp -r "$broker" "$work/tansu"
    # git apply as a plain patch tool: it must not find a repository above the cache.
    (cd "$work/tansu-storage" && GIT_CEILING_DIRECTORIES="$work" git apply -p1 "$root/scripts/tansu/statement-cache.patch")
    printf '\n[patch.crates-io]\ntansu-storage = { path = "../tansu-storage" }\n' >> "$work/tansu/Cargo.toml"
    # The crate's own Cargo.lock pins every other dependency, as --locked would.
    cargo build --manifest-path "$work/tansu/Cargo.toml" --release --no-default-features \
        --features dynostore,libsql --target-dir "$work/target" --quiet
    mkdir -p "$(dirname "$tansu")"
    cp "$work/target/release/tansu" "$tansu"
    # The work tree, and an unpatched build an older setup left.
    rm -rf "$work" "$cache/tansu-0.6.0"
fi

# The Python tools `just test` runs, in the project's own virtual environment
# (.venv, not committed): schemathesis against the gateway's OpenAPI document,
# kubernetes-validate against the rendered Kubernetes manifests.
venv="$(cd "$(dirname "$0")/.." && pwd)/.venv"
python_tools=()
[ -x "$venv/bin/schemathesis" ] || python_tools+=(schemathesis)
[ -x "$venv/bin/kubernetes-validate" ] || python_tools+=(kubernetes-validate)
if ((${#python_tools[@]})); then
    log "installing ${python_tools[*]} into $venv (pip)"
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv" 2>/dev/null || {
        sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-venv >/dev/null
        python3 -m venv "$venv"
    }
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${python_tools[@]}"
fi

if ! cargo nextest --version >/dev/null 2>&1; then
    log "cargo-nextest not found; 'just test' will use 'cargo test'"
fi
log "ready"
