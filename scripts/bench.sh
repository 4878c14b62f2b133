#!/usr/bin/env bash
# Benchmarks, side by side with the peer tools in one run, printed as ratios.
#   hash:    reprove hash (sha256 + blake3, one read) vs sha256sum and b3sum, 1 GiB in page cache
#   diff:    reprove diff vs cmp and diffoscope      (scripts/bench-diff.sh)
#   shift:   the byte comparison vs cmp on two 1 GiB images in page cache: the plain path
#            (identical, and 5 bytes changed) vs `cmp -l` and `cmp`, and the shift-aware path
#            on an image with 8 bytes inserted in its first tenth vs `cmp`
#   sandbox: bubblewrap vs host on the demo build    (scripts/bench-sandbox.sh)
#   jobs:    verify --jobs 2 of 20 demo releases vs the same manifest with --jobs 1
#            (scripts/bench-jobs.sh)
#   dump:    locating a release in a 64 MiB dump vs sha256sum and b3sum, and the peak memory
#            on a 4 GiB image                        (scripts/bench-dump.sh)
#   debian:  the lock-only view vs host vs plain on dpkg-buildpackage of SeaBIOS
#            (scripts/bench-debian.sh; minutes per build, root for apt: only when asked)
#   tree, escrow, lock: at scale (scripts/bench-scale.sh): hashing the unpacked linux-source-6.1
#            tree vs the shell and b3sum, rebuilding with its tarball as escrow vs `tar -xJf`,
#            and `reprove lock` (traced) of syslinux's MBRs vs the plain build
# Usage: scripts/bench.sh [hash|diff|shift|sandbox|jobs|dump|debian|tree|escrow|lock]...
#        (default: hash diff shift sandbox jobs dump tree escrow lock)
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

bench_shift() {
  local dir a b c d
  dir=${BENCH_DIR:-/tmp/reprove-bench-shift}
  mkdir -p "$dir"
  a="$dir/1g.img" b="$dir/1g-same.img" c="$dir/1g-changed.img" d="$dir/1g-inserted.img"
  if [ ! -f "$d" ]; then
    head -c $((1 << 30)) /dev/urandom > "$a"
    cp "$a" "$b"
    cp "$a" "$c"
    python3 - "$a" "$c" "$d" <<'PY'
import sys
src, changed, inserted = sys.argv[1:]
size = 1 << 30
with open(changed, "r+b") as f:  # 5 bytes, spread out
    for k in range(5):
        f.seek(size * (2 * k + 1) // 10)
        b = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([b[0] ^ 0xFF]))
at = size // 10 + 12345  # a version string 8 bytes longer
with open(src, "rb") as s, open(inserted, "wb") as o:
    o.write(s.read(at))
    o.write(b"+deb12u1")
    while chunk := s.read(1 << 24):
        o.write(chunk)
PY
  fi
  cat "$a" "$b" "$c" "$d" > /dev/null # page cache: we measure comparing, not the disk
  echo "== shift: 1 GiB images in page cache, median of 5 runs"
  local ri ci cli rc cc clc rs cs
  ri=$(median 5 "$REPROVE" diff "$a" "$b")
  ci=$(median 5 cmp "$a" "$b")
  cli=$(median 5 sh -c "cmp -l '$a' '$b' | wc -l")
  rc=$(median 5 "$REPROVE" diff "$a" "$c")
  clc=$(median 5 sh -c "cmp -l '$a' '$c' | wc -l")
  cc=$(median 5 sh -c "cmp '$a' '$c'")
  rs=$(median 5 "$REPROVE" diff "$a" "$d")
  cs=$(median 5 sh -c "cmp '$a' '$d'")
  printf '  %-52s %7.3f s\n' \
    "identical: reprove diff (plain path)" "$ri" "identical: cmp" "$ci" "identical: cmp -l | wc -l" "$cli" \
    "5 bytes changed: reprove diff (plain path)" "$rc" "5 bytes changed: cmp -l | wc -l" "$clc" \
    "5 bytes changed: cmp (stops at the first)" "$cc" \
    "8 bytes inserted: reprove diff (shift-aware)" "$rs" "8 bytes inserted: cmp (stops at the first)" "$cs"
  printf '  plain path vs cmp -l: %sx (identical), %sx (5 changed); vs cmp: %sx (identical)\n' \
    "$(ratio "$cli" "$ri")" "$(ratio "$clc" "$rc")" "$(ratio "$ci" "$ri")"
  printf '  shift-aware path, 8 bytes inserted, vs cmp: %sx\n' "$(ratio "$cs" "$rs")"
  echo "  reprove's report: $("$REPROVE" diff "$a" "$d" | grep -m1 'inserted at')"
}

parts=("$@")
[ ${#parts[@]} -eq 0 ] && parts=(hash diff shift sandbox jobs dump tree escrow lock)
for part in "${parts[@]}"; do
  case "$part" in
    hash) bench_hash ;;
    diff) scripts/bench-diff.sh ;;
    shift) bench_shift ;;
    sandbox) scripts/bench-sandbox.sh ;;
    jobs) scripts/bench-jobs.sh ;;
    dump) scripts/bench-dump.sh ;;
    debian) scripts/bench-debian.sh ;;
    tree | escrow | lock) scripts/bench-scale.sh "$part" ;;
    *) echo "unknown benchmark: $part (hash, diff, shift, sandbox, jobs, dump, debian, tree, escrow, lock)" >&2; exit 2 ;;
  esac
done
