#!/usr/bin/env bash
# Build reprove and print the path of the binary, wherever cargo puts it: `CARGO_TARGET_DIR`, a
# `build.target-dir` in cargo's config, or `target/`. The path is the `executable` cargo reports
# for the binary it built (or found fresh), never assumed.
# Usage: scripts/reprove-bin.sh [--debug]   (default: the release build)
set -euo pipefail
cd "$(dirname "$0")/.."
profile=(--release)
[ "${1:-}" = --debug ] && profile=()
bin=$(cargo build "${profile[@]}" --locked --quiet --bin reprove \
  --message-format=json-render-diagnostics |
  sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)
if [ -z "$bin" ] || [ ! -x "$bin" ]; then
  echo "error: cargo reported no reprove binary" >&2
  exit 2
fi
printf '%s\n' "$bin"
