#!/usr/bin/env bash
# Performance at scale (issue 11, item 4), side by side with the peer command in one run, as
# ratios. Best of N runs (default 3, BENCH_RUNS sets it): on a shared machine the fastest run
# is the one least disturbed by others. Wall time and CPU time (user + system, of the command and
# the children it waited for) are both shown: on a loaded machine the CPU time is the steadier
# figure. (Under `lock`, what bubblewrap's own init reaps inside the sandbox may be missing.)
#   tree:   `reprove hash` of the unpacked Debian `linux-source-6.1` tree (78,579 files, 1.3 GB
#           of file data; page cache warm) vs `find | sort -z | xargs -0 sha256sum` and `b3sum`
#           of every file. reprove computes sha256 and blake3 of every file and the tree digest.
#   escrow: `reprove rebuild` of a trivial build with that tarball (138 MB of xz) as its escrow:
#           the digest check, the safe unpacking, the sandboxed build, vs `tar -xJf` alone.
#   lock:   `reprove lock` (the build traced under strace in bubblewrap, every file it reads
#           pinned into the store) of Debian's syslinux MBRs (examples/syslinux-mbr: unpack the
#           source package, assemble and link three boot records) vs the same build run plainly.
# Usage: scripts/bench-scale.sh [tree|escrow|lock]...   (default: all three)
# BENCH_DIR keeps the unpacked tree and the downloaded sources between runs
# (default /tmp/reprove-bench-scale).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
install_deps bench
: "${REPROVE:=$(scripts/reprove-bin.sh)}"
. scripts/bench-lib.sh

runs=${BENCH_RUNS:-3}
dir=${BENCH_DIR:-/tmp/reprove-bench-scale}
tarball=/usr/src/linux-source-6.1.tar.xz
mkdir -p "$dir"

# best N CMD...: run CMD N times (output discarded; a failure stops the benchmark), print the
# wall, user and system seconds of the run with the least wall time.
best() {
  local n=$1 i t
  shift
  for ((i = 0; i < n; i++)); do
    t=$(
      TIMEFORMAT='%R %U %S'
      { time "$@" > /dev/null 2> "$dir/last.err"; } 2>&1
    ) || {
      cat "$dir/last.err" >&2
      echo "error: benchmark command failed: $*" >&2
      exit 1
    }
    echo "$t"
  done | sort -g | head -n 1
}

# row LABEL "WALL USER SYS": one line of figures.
row() {
  local w u s
  read -r w u s <<< "$2"
  printf '  %-58s %7.2f s wall %7.2f s cpu\n' "$1" "$w" "$(echo "$u + $s" | bc -l)"
}
wall() { echo "${1%% *}"; }
cpu() {
  local w u s
  read -r w u s <<< "$1"
  echo "$u + $s" | bc -l
}
# ratios LABEL "A" "B" TARGET: A / B in wall time and in CPU time, with the target beside them.
ratios() {
  printf '  %-44s %5sx wall %5sx cpu   (target: %s)\n' "$1" \
    "$(ratio "$(wall "$2")" "$(wall "$3")")" "$(ratio "$(cpu "$2")" "$(cpu "$3")")" "$4"
}

# The unpacked tree, made once with tar.
linux_tree() {
  if [ ! -e "$dir/linux/.complete" ]; then
    rm -rf "$dir/linux"
    mkdir -p "$dir/linux"
    tar -xJf "$tarball" -C "$dir/linux"
    touch "$dir/linux/.complete"
  fi
  echo "$dir/linux/linux-source-6.1"
}

bench_tree() {
  local tree r s b
  tree=$(linux_tree)
  # Into the page cache: we measure hashing, not the disk.
  find "$tree" -type f -print0 | xargs -0 cat > /dev/null
  echo "== tree: linux-source-6.1 unpacked ($(find "$tree" -type f | wc -l) files), best of $runs"
  r=$(best "$runs" "$REPROVE" hash "$tree")
  s=$(best "$runs" sh -c 'find "$1" -type f -print0 | sort -z | xargs -0 sha256sum' sh "$tree")
  b=$(best "$runs" sh -c 'find "$1" -type f -print0 | xargs -0 b3sum' sh "$tree")
  row "reprove hash (sha256 + blake3 of each file, tree digest)" "$r"
  row "find | sort -z | xargs -0 sha256sum (sha256 only)" "$s"
  row "find | xargs -0 b3sum (blake3 only)" "$b"
  ratios "reprove / shell pipeline:" "$r" "$s" "<= 0.5 wall"
  ratios "reprove / b3sum:" "$r" "$b" "<= 1.5 wall"
}

bench_escrow() {
  local recipe work out r t
  recipe="$dir/escrow-recipe"
  work="$dir/escrow-work"
  out="$dir/escrow-tar"
  mkdir -p "$recipe"
  cat > "$recipe/reprove.toml" << EOF
[package]
name = "linux-source"
version = "6.1"

[source]
path = "$tarball"
digest = "sha256:$(sha256sum "$tarball" | cut -d' ' -f1)"

[toolchain]
tools = ["sh"]

[build]
command = ["sh", "-c", "echo built > built.txt"]

[[artifact]]
path = "built.txt"
EOF
  [ -e "$recipe/reprove.lock" ] || "$REPROVE" lock --quiet --no-trace "$recipe/reprove.toml" > /dev/null
  cat "$tarball" > /dev/null
  echo "== escrow: reprove rebuild with linux-source-6.1.tar.xz as its escrow, best of $runs"
  # Each run starts from nothing and its tree is removed after, outside the time taken.
  rebuild_in() { rm -rf "$work" && "$REPROVE" rebuild --quiet --work-dir "$work" "$recipe/reprove.toml"; }
  untar() { rm -rf "$out" && mkdir "$out" && tar -xJf "$tarball" -C "$out"; }
  r=$(best "$runs" rebuild_in)
  t=$(best "$runs" untar)
  rm -rf "$work" "$out"
  row "reprove rebuild (digest, safe unpack, sandboxed build)" "$r"
  row "tar -xJf" "$t"
  ratios "reprove rebuild / tar -xJf:" "$r" "$t" "<= 1.1 wall"
}

bench_lock() {
  local version=3:6.04~git20190206.bf6db5b4+dfsg1-3 src recipe plain l p
  src="$dir/syslinux-source"
  # The test suite's copy (tests/cli/firmware.rs) when there is one, else from apt.
  local suite="target/debian-cache/syslinux-source_${version/:/_}"
  if [ ! -e "$src/.complete" ]; then
    rm -rf "$src"
    mkdir -p "$src"
    if [ -e "$suite/.complete" ]; then
      cp "$suite"/syslinux_* "$src/"
    else
      ensure_deb_src
      (cd "$src" && apt-get source --download-only -qq "syslinux=$version" > /dev/null)
    fi
    touch "$src/.complete"
  fi
  recipe="$dir/lock-recipe"
  plain="$dir/lock-plain"
  rm -rf "$recipe"
  mkdir -p "$recipe/escrow"
  cp "$src"/syslinux_* "$recipe/escrow/"
  sed "s|^digest = .*|digest = \"$("$REPROVE" hash --json "$recipe/escrow" |
    python3 -c 'import json, sys; d = json.load(sys.stdin)["entries"][0]["sha256"]; print(d if ":" in d else "sha256:" + d)')\"|" \
    examples/syslinux-mbr/reprove.toml > "$recipe/reprove.toml"
  # The build command of the recipe, run by sh in a copy of the escrow, as the sandbox runs it.
  local build
  build=$(python3 -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["build"]["command"][2])' \
    "$recipe/reprove.toml")
  echo "== lock: reprove lock (traced) of syslinux's MBRs from Debian's source package, best of $runs"
  lock() { rm -f "$recipe/reprove.lock" && "$REPROVE" lock --quiet "$recipe/reprove.toml"; }
  run_plain() {
    rm -rf "$plain" && cp -a "$recipe/escrow" "$plain" &&
      (cd "$plain" && SOURCE_DATE_EPOCH=1597585573 sh -c "$build")
  }
  l=$(best "$runs" lock)
  p=$(best "$runs" run_plain)
  rm -rf "$plain"
  row "reprove lock (build traced, $(grep -c '^\[\[pin\]\]' "$recipe/reprove.lock") files pinned)" "$l"
  row "the same build command, plain" "$p"
  ratios "reprove lock / plain build:" "$l" "$p" "none set; the trace's cost"
}

parts=("$@")
[ ${#parts[@]} -eq 0 ] && parts=(tree escrow lock)
for part in "${parts[@]}"; do
  case "$part" in
    tree) bench_tree ;;
    escrow) bench_escrow ;;
    lock) bench_lock ;;
    *) echo "unknown benchmark: $part (tree, escrow, lock)" >&2; exit 2 ;;
  esac
done
