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

# run JOBS: the whole manifest; prints its wall, user and system seconds (of reprove and every
# child it waited for: the sandboxes, the builds).
run() {
  local t
  rm -rf "$work/out"
  t=$(
    TIMEFORMAT='%R %U %S'
    { time "$reprove" verify --quiet --manifest "$work/releases.toml" --jobs "$1" --unsigned \
      --out-dir "$work/out" > /dev/null 2> "$work/stderr"; } 2>&1
  ) || { cat "$work/stderr" >&2; exit 1; }
  [ "$(ls "$work/out" | wc -l)" -eq "$releases" ] || { echo "not every release was attested" >&2; exit 1; }
  echo "$t"
}
cpu() { echo "$2 + $3" | bc -l; }

run 2 > /dev/null # the store and the page cache warm, as for both runs below
echo "== jobs: reprove verify of $releases demo releases from one manifest"
read -r sw su ss <<< "$(run 1)"
read -r pw pu ps <<< "$(run 2)"
[ -n "${sw:-}" ] && [ -n "${pw:-}" ] || { echo "error: a verification run failed" >&2; exit 1; }
printf '  %-44s %7.2f s wall %7.2f s cpu\n' "--jobs 1 (one release after the other)" "$sw" \
  "$(cpu "$sw" "$su" "$ss")" "--jobs 2" "$pw" "$(cpu "$pw" "$pu" "$ps")"
printf '  --jobs 2 / --jobs 1: %.2fx wall (target: at most 0.6x, on %s cores), %.2fx cpu (the same work: about 1)\n' \
  "$(echo "scale=3; $pw / $sw" | bc -l)" "$(nproc)" \
  "$(echo "scale=3; $(cpu "$pw" "$pu" "$ps") / $(cpu "$sw" "$su" "$ss")" | bc -l)"
