#!/usr/bin/env bash
# The cost of hermeticity on the demo firmware, measured through reprove itself, side by side:
#   - `reprove rebuild` with isolation = "sandbox" (bubblewrap) against isolation = "none";
#   - `reprove lock` against `reprove lock --trace`, and how many files each pins.
# Usage: scripts/bench-sandbox.sh [RUNS]   (default 10; REPROVE names the binary)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
reprove=${REPROVE:-$PWD/target/release/reprove}
[ -x "$reprove" ] || cargo build --release --locked --quiet
. scripts/bench-lib.sh

work=$(mktemp -d "${TMPDIR:-/tmp}/reprove-bench-sandbox.XXXXXX")
trap 'rm -rf "$work"' EXIT
digest=$(testdata/demo/make-escrow.sh "$work/escrow")
for iso in sandbox none; do
  mkdir -p "$work/$iso"
  ln -s ../escrow "$work/$iso/escrow"
  sed -e "s/sha256:REPLACE_ME/$digest/" -e "s/^isolation = .*/isolation = \"$iso\"/" \
    testdata/demo/reprove.toml.in > "$work/$iso/reprove.toml"
  "$reprove" lock --quiet "$work/$iso/reprove.toml" > /dev/null
done

echo "== sandbox: reprove rebuild of the demo firmware, median of $runs runs each, alternating"
: > "$work/sandbox.s"
: > "$work/none.s"
for ((i = 0; i < runs; i++)); do
  median 1 "$reprove" rebuild --quiet "$work/sandbox/reprove.toml" >> "$work/sandbox.s"
  median 1 "$reprove" rebuild --quiet "$work/none/reprove.toml" >> "$work/none.s"
done
s=$(sort -g "$work/sandbox.s" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
n=$(sort -g "$work/none.s" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
printf '  %-40s %7.3f s\n' "isolation = \"sandbox\" (bubblewrap)" "$s" "isolation = \"none\" (host)" "$n"
printf '  the sandbox costs %.2fx the host build (%.0f ms more)\n' "$(ratio "$s" "$n")" \
  "$(echo "($s - $n) * 1000" | bc -l)"

echo "== lock: named tools against a traced build, median of 5 runs"
l=$(median 5 "$reprove" lock --quiet "$work/sandbox/reprove.toml")
plain=$(grep -c '^\[\[pin\]\]' "$work/sandbox/reprove.lock")
t=$(median 5 "$reprove" lock --quiet --trace "$work/sandbox/reprove.toml")
traced=$(grep -c '^\[\[pin\]\]' "$work/sandbox/reprove.lock")
printf '  %-40s %7.3f s, %d files pinned\n' "reprove lock" "$l" "$plain" \
  "reprove lock --trace" "$t" "$traced"
