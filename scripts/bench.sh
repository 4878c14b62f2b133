#!/usr/bin/env bash
# Benchmarks, side by side with the peer tools in one run, printed as ratios.
#   hash:    reprove hash (sha256 + blake3, one read) vs sha256sum and b3sum, 1 GiB in page cache
#   diff:    reprove diff vs cmp and diffoscope      (scripts/bench-diff.sh)
#   sandbox: bubblewrap vs host on the demo build    (scripts/bench-sandbox.sh)
#   debian:  the lock-only view vs host vs plain on dpkg-buildpackage of SeaBIOS
#            (scripts/bench-debian.sh; minutes per build, root for apt: only when asked)
# Usage: scripts/bench.sh [hash|diff|sandbox|debian]...   (default: hash diff sandbox)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
install_deps bench
REPROVE=$(scripts/reprove-bin.sh)
export REPROVE
. scripts/bench-lib.sh

bench_hash() {
  local dir img
  dir=$(mktemp -d)
  trap 'rm -rf "$dir"' RETURN
  img="$dir/firmware-1g.img"
  head -c $((1 << 30)) /dev/urandom > "$img"
  cat "$img" > /dev/null # into the page cache: we measure hashing, not the disk
  echo "== hash: one 1 GiB image, median of 5 runs (page cache warm)"
  local r s b
  r=$(median 5 "$REPROVE" hash "$img")
  s=$(median 5 sha256sum "$img")
  b=$(median 5 b3sum "$img")
  printf '  %-40s %7.3f s\n' "reprove hash (sha256 + blake3)" "$r" "sha256sum (sha256 only)" "$s" \
    "b3sum (blake3 only)" "$b"
  printf '  reprove gives both digests %.1fx faster than sha256sum gives one\n' "$(ratio "$s" "$r")"
  printf '  reprove / b3sum time: %.1fx (b3sum computes blake3 alone, on all cores)\n' \
    "$(ratio "$r" "$b")"
}

parts=("$@")
[ ${#parts[@]} -eq 0 ] && parts=(hash diff sandbox)
for part in "${parts[@]}"; do
  case "$part" in
    hash) bench_hash ;;
    diff) scripts/bench-diff.sh ;;
    sandbox) scripts/bench-sandbox.sh ;;
    debian) scripts/bench-debian.sh ;;
    *) echo "unknown benchmark: $part (hash, diff, sandbox, debian)" >&2; exit 2 ;;
  esac
done
