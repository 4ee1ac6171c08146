#!/usr/bin/env bash
# Make a headless Chromium and its chromedriver available on this machine; idempotent.
#
# The dashboard's browser test (tests/web/test_browser.py) drives Debian's chromium through
# chromedriver (Selenium). When /usr/bin/chromium or /usr/bin/chromedriver is missing this
# installs Debian's `chromium` and `chromium-driver` packages (needs root).
# Exit status 0 means both are there and start.
set -euo pipefail

CHROMIUM=${NEOACTIONS_CHROMIUM:-/usr/bin/chromium}
DRIVER=${NEOACTIONS_CHROMEDRIVER:-/usr/bin/chromedriver}

if [ -x "$CHROMIUM" ] && [ -x "$DRIVER" ]; then
  exit 0
fi

if [ "$(id -u)" != 0 ]; then
  echo "browser-up: $CHROMIUM or $DRIVER is missing and installing them needs root" >&2
  exit 1
fi

echo "browser-up: installing chromium and chromium-driver" >&2
export DEBIAN_FRONTEND=noninteractive
# another caller may hold the dpkg lock: wait for it rather than fail
for _ in $(seq 1 120); do
  if apt-get update -q >&2 && apt-get install -y -q --no-install-recommends chromium chromium-driver fonts-dejavu-core >&2; then
    break
  fi
  sleep 5
done

if ! [ -x "$CHROMIUM" ] || ! [ -x "$DRIVER" ]; then
  echo "browser-up: $CHROMIUM or $DRIVER still missing after the install" >&2
  exit 1
fi
"$DRIVER" --version >&2
