#!/usr/bin/env bash
# Make a Docker engine answer on this machine; idempotent.
#
# No engine runs on a fresh machine here: when `docker info` fails this installs
# Debian's docker.io (if dockerd is missing), starts dockerd in the background
# (its log goes to $NEOACTIONS_DOCKERD_LOG) and waits until `docker info` works.
# Exit status 0 means the engine answers.
set -euo pipefail

LOG=${NEOACTIONS_DOCKERD_LOG:-/var/log/neoactions-dockerd.log}
WAIT_SECONDS=${NEOACTIONS_DOCKERD_WAIT:-60}

if docker info >/dev/null 2>&1; then
  exit 0
fi

if [ "$(id -u)" != 0 ]; then
  echo "docker-up: the engine is not running and starting it needs root" >&2
  exit 1
fi

if ! command -v dockerd >/dev/null 2>&1; then
  echo "docker-up: installing docker.io" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2
  apt-get install -y -q --no-install-recommends docker.io >&2
fi

# containerd/dockerd may already be starting (another caller): only start one.
if ! pgrep -x dockerd >/dev/null 2>&1; then
  mkdir -p "$(dirname "$LOG")"
  echo "docker-up: starting dockerd (log: $LOG)" >&2
  # its own session: a caller's process group being killed (a test run stopped by its
  # timeout) must not take the daemon, and every container, down with it
  setsid nohup dockerd >>"$LOG" 2>&1 </dev/null &
  disown || true
fi

for _ in $(seq 1 $((WAIT_SECONDS * 2))); do
  if docker info >/dev/null 2>&1; then
    exit 0
  fi
  sleep 0.5
done
echo "docker-up: dockerd did not answer within ${WAIT_SECONDS}s; last log lines:" >&2
tail -n 20 "$LOG" >&2 || true
exit 1
