#!/usr/bin/env bash
# Lints every shell script in the repository (each tracked *.sh and .ci/run) with ShellCheck, following the
# files they source. Run by .ci/run beside clippy. ShellCheck comes from Debian's package, installed once when
# missing (non-interactive apt-get, through sudo only when not root).
set -euo pipefail
ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"

if ! command -v shellcheck >/dev/null; then
  log="$ROOT/.run/logs/apt-shellcheck.log"
  mkdir -p "$(dirname "$log")"
  sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "shellcheck.sh: shellcheck missing and not root (no sudo to install it)" >&2; exit 1; }
    sudo=(sudo)
  fi
  echo "installing shellcheck (log: $log)" >&2
  if ! { "${sudo[@]}" apt-get update &&
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends shellcheck; } >>"$log" 2>&1; then
    echo "shellcheck.sh: installing shellcheck failed; last lines of $log:" >&2
    tail -n 20 "$log" >&2
    exit 1
  fi
fi

mapfile -t scripts < <(git ls-files '*.sh')
shellcheck --external-sources .ci/run "${scripts[@]}"
echo "shellcheck: ${#scripts[@]} scripts and .ci/run clean" >&2
