#!/usr/bin/env bash
# Builds the images of the docker environment without any registry: each is
# `FROM scratch` plus one host binary and the shared libraries `ldd` lists for
# it (and the dynamic loader), so nothing is pulled.
#
#   scripts/images.sh [name...]     names: gateway agents search loadgen monolith
#                                          redis broker prometheus load-balancer
#
# Images are tagged q2o/<name>:local (Q2O_IMAGE_TAG sets another tag, for a
# cluster's registry; the docker environment runs :local). An image is rebuilt only when its files
# changed: the digest of its root filesystem is kept as the label
# q2o.content and compared first. The q2o binaries come from
# $CARGO_TARGET_DIR/$Q2O_PROFILE (release by default; `just images` builds them).
set -euo pipefail

log() { printf 'images: %s\n' "$*" >&2; }

profile="${Q2O_PROFILE:-release}"
target="${CARGO_TARGET_DIR:-$(cd "$(dirname "$0")/.." && pwd)/target}"
cache="${Q2O_CACHE:-$HOME/.cache/q2o-bench}"
tansu="${Q2O_TANSU:-$cache/tansu-0.6.0-q2o1/bin/tansu}"
work="$(mktemp -d "${TMPDIR:-/tmp}/q2o-images.XXXXXX")"
trap 'rm -rf "$work"' EXIT

command -v docker >/dev/null 2>&1 || { log "docker not found"; exit 1; }
docker info >/dev/null 2>&1 || { log "the docker engine does not answer (is it running, may this user use it?)"; exit 1; }

# The program an image runs: "<path on the host>".
program() {
    case "$1" in
        gateway | agents | search | loadgen | monolith) echo "$target/$profile/q2o-$1" ;;
        redis) command -v redis-server ;;
        broker) echo "$tansu" ;;
        prometheus) command -v prometheus ;;
        load-balancer) if [ -x /usr/sbin/nginx ]; then echo /usr/sbin/nginx; else command -v nginx; fi ;;
        *) return 1 ;;
    esac
}

# Copies a file into the root filesystem at the same path, following links.
place() {
    local file=$1 root=$2
    mkdir -p "$root$(dirname "$file")"
    cp -L "$file" "$root$file"
}

build() {
    local name=$1 binary root
    binary=$(program "$name") || { log "unknown image '$name'"; return 1; }
    [ -x "$binary" ] || { log "$name: $binary not found (run just build / scripts/setup.sh)"; return 1; }
    root="$work/$name/rootfs"
    mkdir -p "$root/usr/local/bin" "$root/etc" "$root/tmp" "$root/data"
    chmod 1777 "$root/tmp"
    cp -L "$binary" "$root/usr/local/bin/$(basename "$binary")"
    # Line tables are for profiling on the host; an image does without them.
    if command -v strip >/dev/null 2>&1; then strip --strip-debug "$root/usr/local/bin/$(basename "$binary")"; fi
    # `ldd` lists the whole closure, the loader included (the line without "=>").
    ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | while read -r lib; do
        place "$lib" "$root"
    done
    # Users for programs that switch to one (nginx's workers run as nobody).
    printf 'root:x:0:0:root:/root:/bin/false\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
    printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
    # reqwest's TLS (rustls with the platform's verifier) refuses to build a
    # client without a root store, even for plain-HTTP use: the loadgen's
    # clients need the host's CA bundle.
    if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
        place /etc/ssl/certs/ca-certificates.crt "$root"
    fi

    local digest image current
    digest=$(cd "$root" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-64)
    image="q2o/$name:${Q2O_IMAGE_TAG:-local}"
    current=$(docker image inspect --format '{{ index .Config.Labels "q2o.content" }}' "$image" 2>/dev/null || true)
    if [ "$current" = "$digest" ]; then
        log "$image is current"
        return 0
    fi
    cat >"$work/$name/Dockerfile" <<EOF
FROM scratch
COPY rootfs/ /
ENV PATH=/usr/local/bin:/usr/bin:/bin
WORKDIR /data
ENTRYPOINT ["/usr/local/bin/$(basename "$binary")"]
EOF
    local started=$SECONDS
    DOCKER_BUILDKIT=0 docker build --quiet --label "q2o.content=$digest" --tag "$image" "$work/$name" >/dev/null 2>"$work/$name/build.log" \
        || { cat "$work/$name/build.log" >&2; log "$image failed to build"; return 1; }
    local size
    size=$(docker image inspect --format '{{ .Size }}' "$image")
    log "$image built in $((SECONDS - started)) s ($((size / 1024 / 1024)) MiB)"
}

names=("$@")
[ ${#names[@]} -gt 0 ] || names=(gateway agents search monolith loadgen redis broker prometheus load-balancer)
for name in "${names[@]}"; do
    build "$name"
done
# The images a rebuild replaced: dangling now, and ours by their label.
docker image prune --force --filter label=q2o.content >/dev/null
