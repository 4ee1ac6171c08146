#!/usr/bin/env bash
# Build every Docker image the tests and benchmarks use, locally (there is no
# registry to pull from); images already built from the same inputs are reused.
#
#   neoactions-test/oneshot:latest        FROM scratch + a static C handler (stdin JSON -> stdout JSON)
#   neoactions-test/python-base:bookworm  a Debian minbase root filesystem with python3 (debootstrap + docker import)
#   neoactions-test/python-sidecar:latest python-base + grpcio/protobuf wheels + the neoactions Python SDK
#                                         + a test handler serving the Handler protocol
#
# Each built image carries the label dev.neoactions.inputs = sha256 of what it was
# built from; a present image with the same label is kept. Build outputs live
# under .cache/test-images/ (gitignored). Needs root for debootstrap; calls
# scripts/docker-up.sh first. Prints the image tags it made sure of.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${NEOACTIONS_IMAGE_CACHE:-$ROOT/.cache/test-images}
PY=${NEOACTIONS_PYTHON:-$ROOT/.venv/bin/python}
[ -x "$PY" ] || PY=python3
export DOCKER_BUILDKIT=0
mkdir -p "$CACHE"

bash "$ROOT/scripts/docker-up.sh"

# An exclusive lock: two test sessions building at once would race on $CACHE.
exec 9>"$CACHE/.lock"
flock 9

log() { echo "build-test-images: $*" >&2; }

# sha256 over files and extra strings, stable across machines
inputs_hash() {
  { for f in "$@"; do
      if [ -f "$f" ]; then echo "file ${f#"$ROOT"/}"; cat "$f"; else echo "str $f"; fi
    done; } | sha256sum | cut -c1-32
}

image_inputs() { docker image inspect -f '{{ index .Config.Labels "dev.neoactions.inputs" }}' "$1" 2>/dev/null || true; }

ensure_pkg() { # ensure_pkg COMMAND PACKAGE
  if ! command -v "$1" >/dev/null 2>&1 && ! [ -e "$1" ]; then
    log "installing $2"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends "$2" >&2 || { apt-get update -q >&2 && apt-get install -y -q --no-install-recommends "$2" >&2; }
  fi
}

# The Debian mirror this machine's apt already uses (never written down anywhere).
debian_mirror() {
  local uri=""
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    uri=$(awk '
      /^[[:space:]]*$/ { if (u != "" && s ~ /(^| )bookworm( |$)/) { print u; exit } u=""; s="" }
      /^URIs:/ { u=$2 }
      /^Suites:/ { $1=""; s=$0 " " }
      END { if (u != "" && s ~ /(^| )bookworm( |$)/) print u }' "$f" | head -n1)
    [ -n "$uri" ] && break
  done
  if [ -z "$uri" ]; then
    uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
      | awk '$1 == "deb" && $0 ~ / bookworm / { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' | head -n1)
  fi
  [ -n "$uri" ] || { log "no bookworm Debian mirror found in /etc/apt/sources.list*"; return 1; }
  echo "$uri"
}

# --- one-shot: FROM scratch with a static C program ---------------------------
ONESHOT=neoactions-test/oneshot:latest
oneshot_src=$ROOT/tests/integration/images/oneshot/handler.c
oneshot_hash=$(inputs_hash "$oneshot_src" "$(gcc -dumpfullversion 2>/dev/null || echo gcc)" v1)
if [ "$(image_inputs "$ONESHOT")" != "$oneshot_hash" ]; then
  log "building $ONESHOT"
  ctx=$CACHE/oneshot
  rm -rf "$ctx" && mkdir -p "$ctx"
  gcc -static -O2 -Wall -o "$ctx/handler" "$oneshot_src" 2> >(grep -v 'statically linked' >&2 || true)
  cat >"$ctx/Dockerfile" <<EOF
FROM scratch
COPY handler /handler
LABEL dev.neoactions.inputs=$oneshot_hash
USER 65534:65534
ENTRYPOINT ["/handler"]
EOF
  docker build -q -t "$ONESHOT" "$ctx" >/dev/null
fi
echo "$ONESHOT"

# --- python base: debootstrap minbase + python3, docker import ---------------
BASE=neoactions-test/python-base:bookworm
if ! docker image inspect "$BASE" >/dev/null 2>&1; then
  ensure_pkg debootstrap debootstrap
  mirror=$(debian_mirror)
  rootfs=$CACHE/rootfs-bookworm
  if [ ! -x "$rootfs/usr/bin/python3" ]; then
    log "debootstrap bookworm (minbase + python3) into $rootfs"
    rm -rf "$rootfs"
    debootstrap --variant=minbase --include=python3 bookworm "$rootfs" "$mirror" >"$CACHE/debootstrap.log" 2>&1 \
      || { tail -n 30 "$CACHE/debootstrap.log" >&2; exit 1; }
    # apt caches and docs are dead weight in a test image
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/*
  fi
  log "importing $BASE"
  tar -C "$rootfs" -c . | docker import -c 'CMD ["/usr/bin/python3"]' - "$BASE" >/dev/null
fi
echo "$BASE"

# --- python sidecar: base + wheels + SDK + test handler ------------------------
SIDECAR=neoactions-test/python-sidecar:latest
# the image's Python must match the wheels: ask it
image_py=$(docker run --rm --network none "$BASE" python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
grpc_version=$("$PY" -c 'import importlib.metadata as m; print(m.version("grpcio"))')
protobuf_version=$("$PY" -c 'import importlib.metadata as m; print(m.version("protobuf"))')
sdk_files=$(cd "$ROOT" && find plugins/neoactions/plugins/sdk proto/neoactions/handler -name '*.py' -not -path '*/__pycache__/*' | sort)
sidecar_inputs=()
for f in $sdk_files; do sidecar_inputs+=("$ROOT/$f"); done
sidecar_hash=$(inputs_hash "${sidecar_inputs[@]}" "$ROOT/tests/integration/images/python-sidecar/handler.py" \
  "$(docker image inspect -f '{{.Id}}' "$BASE")" "grpcio=$grpc_version" "protobuf=$protobuf_version" "py=$image_py" v1)
if [ "$(image_inputs "$SIDECAR")" != "$sidecar_hash" ]; then
  log "building $SIDECAR (python $image_py, grpcio $grpc_version, protobuf $protobuf_version)"
  ctx=$CACHE/python-sidecar
  wheels=$CACHE/wheels/py$image_py-grpcio$grpc_version-protobuf$protobuf_version
  if [ ! -f "$wheels/.done" ]; then
    rm -rf "$wheels" && mkdir -p "$wheels"
    abi="cp${image_py/./}"
    "$PY" -m pip download -q --only-binary=:all: --dest "$wheels" \
      --platform "manylinux2014_$(uname -m)" --python-version "$image_py" --implementation cp --abi "$abi" \
      "grpcio==$grpc_version" "protobuf==$protobuf_version" >&2
    touch "$wheels/.done"
  fi
  rm -rf "$ctx" && mkdir -p "$ctx/site" "$ctx/lib"
  # a wheel is a zip laid out as site-packages: unpacking it is installing it
  for whl in "$wheels"/*.whl; do "$PY" -m zipfile -e "$whl" "$ctx/site"; done
  (cd "$ROOT" && for f in $sdk_files; do mkdir -p "$ctx/lib/$(dirname "${f#*/}")"; cp "$f" "$ctx/lib/${f#*/}"; done)
  cp "$ROOT/tests/integration/images/python-sidecar/handler.py" "$ctx/handler.py"
  cat >"$ctx/Dockerfile" <<EOF
FROM $BASE
COPY site /opt/neoactions/site
COPY lib /opt/neoactions/lib
COPY handler.py /opt/neoactions/handler.py
ENV PYTHONPATH=/opt/neoactions/lib:/opt/neoactions/site PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
LABEL dev.neoactions.inputs=$sidecar_hash
USER 65534:65534
CMD ["/usr/bin/python3", "/opt/neoactions/handler.py"]
EOF
  docker build -q -t "$SIDECAR" "$ctx" >/dev/null
fi
echo "$SIDECAR"
