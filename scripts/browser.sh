#!/usr/bin/env bash
# Installs what the browser tests (e2e/) drive: Debian's chromium and chromium-driver (/usr/bin/chromium,
# /usr/bin/chromedriver). Nothing is downloaded beside Debian's packages. Run by `make test`; a no-op when both
# are there. Non-interactive apt-get, through sudo only when not root.
set -euo pipefail
[ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] && exit 0

root="$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)"
log="$root/.run/logs/apt-browser.log"
mkdir -p "$(dirname "$log")"
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "browser.sh: chromium missing and not root (no sudo to install it)" >&2; exit 1; }
  sudo=(sudo)
fi
echo "installing chromium chromium-driver for the browser tests (log: $log)"
if ! { "${sudo[@]}" apt-get update &&
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    chromium chromium-driver; } >>"$log" 2>&1; then
  echo "browser.sh: installing chromium chromium-driver failed; last lines of $log:" >&2
  tail -n 20 "$log" >&2
  exit 1
fi
