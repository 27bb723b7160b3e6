#!/usr/bin/env bash
# `make chart-checkov` (not part of make test: checkov and its dependencies take minutes to install): checkov on
# the chart's default render must find no NetworkPolicy check and no secrets-as-environment check failing. The
# other checks it reports (image digests, pull policy Always, the namespace of a bare `helm template`) are the
# operator's choices and are listed, not failed on. checkov comes from PyPI, pinned, into .run/tools/checkov;
# helm from make chart-lint's install.
set -euo pipefail

ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
TOOLS="$ROOT/.run/tools"
CHECKOV_VERSION="3.3.30"
VENV="$TOOLS/checkov"
helm_in_tools() { find "$TOOLS" -maxdepth 2 -path "$TOOLS/helm-*/helm" -print -quit 2>/dev/null || true; }
HELM="$(helm_in_tools)"
# Network policies and secrets: every pod has a NetworkPolicy; secrets as files, not environment variables.
MUST_PASS="CKV2_K8S_6,CKV_K8S_35"

say() { printf 'chart-checkov: %s\n' "$*" >&2; }

[[ -x $HELM ]] || { "$ROOT/scripts/chart-lint.sh"; HELM="$(helm_in_tools)"; }
if [[ "$("$VENV/bin/checkov" --version 2>/dev/null)" != "$CHECKOV_VERSION" ]]; then
  say "installing checkov $CHECKOV_VERSION into $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "checkov==$CHECKOV_VERSION"
fi
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT
"$HELM" template snowlink "$ROOT/charts/snowlink" --namespace snowlink >"$OUT/default.yaml"
"$VENV/bin/checkov" -f "$OUT/default.yaml" --framework kubernetes --compact --quiet >"$OUT/all.txt" 2>&1 || true
grep -E '^Check:|Passed checks' "$OUT/all.txt" | sort | uniq -c >&2 || true
if ! "$VENV/bin/checkov" -f "$OUT/default.yaml" --framework kubernetes --compact --quiet \
  --check "$MUST_PASS" >"$OUT/must.txt" 2>&1; then
  cat "$OUT/must.txt" >&2
  say "FAIL: $MUST_PASS"
  exit 1
fi
say "ok: no failed NetworkPolicy or secrets-as-environment check ($MUST_PASS) on the default render"
