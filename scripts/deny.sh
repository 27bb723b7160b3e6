#!/usr/bin/env bash
# Supply chain: every dependency in Cargo.lock has a license deny.toml allows, comes from crates.io (no git, no
# other registry) and is not required as `*`. Run by .ci/run beside clippy (a lint of the dependency graph, no
# services needed).
#
# cargo-deny comes from crates.io (there is no Debian package), built once into .run/tools/ with its own target
# dir so the workspace's target/ is untouched; pinned, and --locked to its own Cargo.lock. The advisories check is
# left out: it needs the RustSec database from the network.
set -euo pipefail

ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
VERSION="0.20.2"
TOOL="$ROOT/.run/tools/cargo-deny-$VERSION"
BUILD="$ROOT/.run/tools/cargo-deny-build"

say() { printf 'deny: %s\n' "$*" >&2; }

if [[ ! -x $TOOL/bin/cargo-deny ]]; then
  say "installing cargo-deny $VERSION into $TOOL (once; a release build of a few minutes)"
  started=$SECONDS
  # --target-dir wins over CARGO_TARGET_DIR, so a shared target dir is not touched either.
  cargo install cargo-deny --version "$VERSION" --locked --quiet --root "$TOOL" --target-dir "$BUILD"
  rm -rf "$BUILD"
  say "installed in $((SECONDS - started)) s"
fi

# Every crate of every target (Windows-only ones too) must be in the local registry for an offline check.
cargo fetch --locked --quiet
"$TOOL/bin/cargo-deny" --offline --locked --manifest-path "$ROOT/Cargo.toml" \
  --config "$ROOT/deny.toml" check --hide-inclusion-graph licenses bans sources
