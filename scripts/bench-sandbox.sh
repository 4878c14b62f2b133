#!/usr/bin/env bash
# The cost of hermeticity on the demo firmware, measured through reprove itself, side by side:
#   - `reprove rebuild` with isolation = "sandbox" (bubblewrap showing the lock's view, the
#     store warm) against isolation = "none" (the host) and against `make` run directly on an
#     unpacked copy of the escrow, in the same environment (no reprove);
#   - `reprove lock --no-trace` (declared only) against `reprove lock` (a traced build), and how
#     many files each pins.
# Usage: scripts/bench-sandbox.sh [RUNS]   (default 10; REPROVE names the binary)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
reprove=${REPROVE:-$(scripts/reprove-bin.sh)}
. scripts/bench-lib.sh

work=$(mktemp -d "${TMPDIR:-/tmp}/reprove-bench-sandbox.XXXXXX")
trap 'rm -rf "$work"' EXIT
# A store of the bench's own, filled by the untimed first run below.
export REPROVE_CACHE_DIR="$work/cache"
digest=$(testdata/demo/make-escrow.sh "$work/escrow")
for iso in sandbox none; do
  mkdir -p "$work/$iso"
  ln -s ../escrow "$work/$iso/escrow"
  sed -e "s/sha256:REPLACE_ME/$digest/" -e "s/^isolation = .*/isolation = \"$iso\"/" \
    testdata/demo/reprove.toml.in > "$work/$iso/reprove.toml"
  "$reprove" lock --quiet "$work/$iso/reprove.toml" > /dev/null
done
"$reprove" rebuild --quiet "$work/sandbox/reprove.toml" > /dev/null # fills the store

# The demo's build without reprove: unpack the escrow, `make` with the environment reprove gives.
plain() {
  rm -rf "$work/plain"
  mkdir "$work/plain"
  tar -xzf "$work/escrow/"*.tar.gz -C "$work/plain"
  (cd "$work/plain" && env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/nonexistent TZ=UTC LANG=C.UTF-8 LC_ALL=C.UTF-8 SOURCE_DATE_EPOCH=1700000000 make)
}
plain > /dev/null # the page cache warm, as for the others

echo "== sandbox: reprove rebuild of the demo firmware, median of $runs runs each, alternating"
: > "$work/sandbox.s"
: > "$work/none.s"
: > "$work/plain.s"
for ((i = 0; i < runs; i++)); do
  median 1 "$reprove" rebuild --quiet "$work/sandbox/reprove.toml" >> "$work/sandbox.s"
  median 1 "$reprove" rebuild --quiet "$work/none/reprove.toml" >> "$work/none.s"
  median 1 plain >> "$work/plain.s"
done
med() { sort -g "$1" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
s=$(med "$work/sandbox.s")
n=$(med "$work/none.s")
p=$(med "$work/plain.s")
printf '  %-40s %7.3f s\n' "isolation = \"sandbox\" (lock's view)" "$s" "isolation = \"none\" (host)" "$n" \
  "make on an unpacked copy (no reprove)" "$p"
printf '  the sandbox costs %.2fx the host build (%.0f ms more)\n' "$(ratio "$s" "$n")" \
  "$(echo "($s - $n) * 1000" | bc -l)"
printf '  view / plain: %.2fx    host / plain: %.2fx\n' "$(ratio "$s" "$p")" "$(ratio "$n" "$p")"

echo "== lock: named tools against a traced build, median of 5 runs"
l=$(median 5 "$reprove" lock --quiet --no-trace "$work/sandbox/reprove.toml")
declared=$(grep -c '^\[\[pin\]\]' "$work/sandbox/reprove.lock")
t=$(median 5 "$reprove" lock --quiet "$work/sandbox/reprove.toml")
traced=$(grep -c '^\[\[pin\]\]' "$work/sandbox/reprove.lock")
printf '  %-40s %7.3f s, %d files pinned\n' "reprove lock --no-trace (declared only)" "$l" \
  "$declared" "reprove lock (traced build, the default)" "$t" "$traced"
