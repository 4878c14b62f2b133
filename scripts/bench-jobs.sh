#!/usr/bin/env bash
# Many releases in one run: `reprove verify --manifest M --jobs 2` of 20 demo releases against
# the same manifest with `--jobs 1` (one after the other), the cache warm for both, printed as
# a ratio (target: at most 0.6x).
# Usage: scripts/bench-jobs.sh [RELEASES]   (default 20; REPROVE names the binary)
set -euo pipefail
cd "$(dirname "$0")/.."
releases=${1:-20}
reprove=${REPROVE:-$(scripts/reprove-bin.sh)}

work=$(mktemp -d "${TMPDIR:-/tmp}/reprove-bench-jobs.XXXXXX")
trap 'rm -rf "$work"' EXIT
export REPROVE_CACHE_DIR="$work/cache"
digest=$(testdata/demo/make-escrow.sh "$work/operator/escrow")
sed "s/sha256:REPLACE_ME/$digest/" testdata/demo/reprove.toml.in > "$work/operator/reprove.toml"
"$reprove" lock --quiet "$work/operator/reprove.toml" > /dev/null

# The vendor's release, built from the same escrow without reprove.
mkdir -p "$work/vendor" "$work/shipped"
tar -xzf "$work/operator/escrow/"*.tar.gz -C "$work/vendor"
(cd "$work/vendor" && env -i PATH=/usr/bin:/bin SOURCE_DATE_EPOCH=1700000000 make -s) > /dev/null
cp "$work/vendor/out/"*.tar.gz "$work/shipped/"
bundle=$(basename "$work/shipped/"*.tar.gz)

# Every release is the demo's (its own attestation each): the same work 20 times over.
for ((i = 1; i <= releases; i++)); do
  printf '[[release]]\nrecipe = "operator/reprove.toml"\nshipped = ["shipped/%s"]\nout = "release-%02d.intoto.jsonl"\n\n' \
    "$bundle" "$i"
done > "$work/releases.toml"

run() { # run JOBS: the whole manifest; prints the wall time in seconds
  local start end
  rm -rf "$work/out"
  start=$(date +%s.%N)
  "$reprove" verify --quiet --manifest "$work/releases.toml" --jobs "$1" --unsigned \
    --out-dir "$work/out" > /dev/null
  end=$(date +%s.%N)
  [ "$(ls "$work/out" | wc -l)" -eq "$releases" ] || { echo "not every release was attested" >&2; exit 1; }
  echo "$end - $start" | bc -l
}

run 2 > /dev/null # the store and the page cache warm, as for both runs below
echo "== jobs: reprove verify of $releases demo releases from one manifest"
serial=$(run 1)
parallel=$(run 2)
printf '  %-44s %7.2f s\n' "--jobs 1 (one release after the other)" "$serial" \
  "--jobs 2" "$parallel"
printf '  --jobs 2 / --jobs 1 time: %.2fx (target: at most 0.6x, on %s cores)\n' \
  "$(echo "scale=2; $parallel / $serial" | bc -l)" "$(nproc)"
