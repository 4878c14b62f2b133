#!/usr/bin/env bash
# The cost of the lock-only view on a real Debian source-package build, side by side in one run:
#   - `reprove rebuild` with isolation = "sandbox" (bubblewrap showing the lock's view as `/`,
#     the store warm);
#   - `reprove rebuild` with isolation = "none" (the host; the same pins checked on the host);
#   - the same build command run directly on a copy of the tree, without reprove.
# Runs alternate (view, host, plain, view, ...); medians and ratios are printed.
#
# The package (default seabios, the SeaBIOS x86 firmware) comes from Debian's archive with apt:
# as root, a deb-src source for the URIs and suites of the deb sources is added when there is
# none, and the build dependencies are installed (`apt-get build-dep`). The escrow is the
# unpacked source (`dpkg-source -x`) in a subfolder of a directory escrow, so that the .debs
# dpkg-buildpackage writes into the source tree's parent land in the build tree.
#
# The build runs `dpkg-buildpackage -b -uc -us`, nothing more: the traced lock pins the part of
# the dpkg database the build reads (`/var/lib/dpkg/status`), so the view has it. (Figures
# recorded before that ran `-d --admindir=` an empty folder instead.)
#
# Two gaps this benchmark found in the trace are fixed in reprove: Python `stat`s the `.py`
# beside each `.pyc` it opens (the trace now pins files only looked at), and strace pads the
# resumed half of a split `execve` (`resumed>)        = 0`, now read), which had left `md5sum`
# unpinned and the .deb with an empty DEBIAN/md5sums. The recipe still sets
# PYTHONPYCACHEPREFIX (Python then opens the sources outright) and names `md5sum`, as in the
# run whose figures are recorded, so that later runs stay comparable.
#
# Usage: scripts/bench-debian.sh [RUNS]   (default 3; PACKAGE names the source package,
#        REPROVE the binary; KEEP=1 keeps the work folder and prints it)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
pkg=${PACKAGE:-seabios}
reprove=${REPROVE:-$(scripts/reprove-bin.sh)}
. scripts/bench-lib.sh

as_root() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "error: $1 (run as root, or do it first)" >&2
    exit 2
  fi
}

for cmd in dpkg-source dpkg-buildpackage strace bwrap bc; do
  if ! command -v "$cmd" > /dev/null 2>&1; then
    as_root "$cmd is missing"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      dpkg-dev strace bubblewrap bc >&2
    break
  fi
done

# A deb-src source for the same URIs and suites as the deb ones, when apt has none.
if ! apt-cache showsrc "$pkg" 2> /dev/null | grep -q '^Package:'; then
  as_root "apt knows no source package \`$pkg\`: it needs a deb-src source"
  src_list=/etc/apt/sources.list.d/reprove-bench-src.sources
  [ -e "$src_list" ] || sed -n -e 's/^Types: deb$/Types: deb-src/' -e p \
    /etc/apt/sources.list.d/debian.sources > "$src_list"
  apt-get update -qq >&2
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/reprove-bench-debian.XXXXXX")
if [ "${KEEP:-0}" = 1 ]; then
  echo "work folder: $work" >&2
else
  trap 'rm -rf "$work"' EXIT
fi
# A store of the bench's own: the first view run fills it from the host.
export REPROVE_CACHE_DIR="$work/cache"

mkdir -p "$work/download" "$work/escrow"
(cd "$work/download" && apt-get source --download-only -qq "$pkg" 2> /dev/null)
dsc=$(ls "$work/download"/*.dsc)
version=$(sed -n 's/^Version: *//p' "$dsc")
upstream=${version#*:}
upstream=${upstream%-*}
dir="$pkg-$upstream"
dpkg-source -x "$dsc" "$work/escrow/$dir" > /dev/null
rm -f "$work/escrow/"*.orig.* # dpkg-source leaves the upstream tarball beside the tree
tree="$work/escrow/$dir"
if ! (cd "$tree" && dpkg-checkbuilddeps) > /dev/null 2>&1; then
  as_root "the build dependencies of \`$pkg\` are missing"
  DEBIAN_FRONTEND=noninteractive apt-get build-dep -y -qq "$pkg" >&2
fi
sde=$(dpkg-parsechangelog -l "$tree/debian/changelog" -STimestamp)
digest=$("$reprove" hash --json "$work/escrow" | python3 -c \
  'import json, sys; d = json.load(sys.stdin)["entries"][0]["sha256"]; print(d if ":" in d else "sha256:" + d)')

build="cd $dir && dpkg-buildpackage -b -uc -us"

# The artifacts: every binary package the source builds, and SeaBIOS's ROMs.
host_arch=$(dpkg --print-architecture)
artifacts=()
while read -r name arch; do
  [ "$arch" = all ] || arch=$host_arch
  artifacts+=("${name}_${version#*:}_$arch.deb")
done < <(awk '/^Package:/ {p = $2} /^Architecture:/ {print p, $2}' "$tree/debian/control")
if [ "$pkg" = seabios ]; then
  artifacts+=("$dir/build/bios.bin" "$dir/build/bios-256k.bin")
fi

recipe() { # recipe ISOLATION TIMEOUT
  cat << EOF
[package]
name = "$pkg"
version = "$version"

[source]
path = "../escrow"
digest = "$digest"

[toolchain]
tools = ["sh", "mkdir", "dpkg-buildpackage", "make", "gcc", "perl", "python3", "md5sum"]
isolation = "$1"

[build]
command = ["sh", "-c", "$build"]
env = { SOURCE_DATE_EPOCH = "$sde", PYTHONPYCACHEPREFIX = "/tmp/pycache" }
timeout = "$2"
EOF
  for a in "${artifacts[@]}"; do
    printf '\n[[artifact]]\npath = "%s"\n' "$a"
  done
}

for iso in sandbox none; do
  mkdir -p "$work/$iso"
  recipe "$iso" 60m > "$work/$iso/reprove.toml"
done
# The same recipe with a one-second timeout: it checks the pins and fills the store before the
# build starts, and stops there. Warms the store without a whole build.
mkdir -p "$work/warm"
recipe sandbox 1s > "$work/warm/reprove.toml"

echo "== debian: $pkg $version, dpkg-buildpackage -b in the lock-only view, median of $runs runs"
start=$(date +%s.%N)
if ! "$reprove" lock --quiet "$work/sandbox/reprove.toml" > "$work/lock.out" 2>&1; then
  cat "$work/lock.out" >&2
  echo "error: reprove lock (traced) failed" >&2
  exit 1
fi
lock_s=$(echo "$(date +%s.%N) - $start" | bc -l)
pins=$(grep -c '^\[\[pin\]\]' "$work/sandbox/reprove.lock")
links=$(grep -c '^\[\[link\]\]' "$work/sandbox/reprove.lock" || true)
cp "$work/sandbox/reprove.lock" "$work/none/reprove.lock"
cp "$work/sandbox/reprove.lock" "$work/warm/reprove.lock"
printf '  reprove lock (traced build): %.0f s, %d files and %d links pinned\n' "$lock_s" "$pins" \
  "$links"
"$reprove" rebuild --quiet "$work/warm/reprove.toml" > /dev/null 2>&1 || true
printf '  store: %s objects, %s\n' "$(find "$REPROVE_CACHE_DIR/store" -type f | wc -l)" \
  "$(du -sh "$REPROVE_CACHE_DIR/store" | cut -f1)"

# A rebuild that fails is not a figure: say why and stop.
rebuild() { # rebuild ISOLATION
  if ! "$reprove" rebuild --quiet "$work/$1/reprove.toml" > "$work/$1.out" 2>&1; then
    cat "$work/$1.out" >&2
    echo "error: reprove rebuild with isolation = \"$1\" failed" >&2
    return 1
  fi
}
plain() {
  rm -rf "$work/plain"
  mkdir "$work/plain"
  cp -a "$work/escrow/." "$work/plain/"
  (cd "$work/plain" && env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/nonexistent TZ=UTC LANG=C.UTF-8 LC_ALL=C.UTF-8 SOURCE_DATE_EPOCH="$sde" \
    PYTHONPYCACHEPREFIX=/tmp/pycache sh -c "$build") > "$work/plain.out" 2>&1 || {
    tail -20 "$work/plain.out" >&2
    echo "error: the plain build failed" >&2
    return 1
  }
}
timed() { # timed FILE CMD...: run CMD, append its wall time in seconds to FILE
  local file=$1 start
  shift
  start=$(date +%s.%N)
  "$@"
  echo "$(date +%s.%N) - $start" | bc -l >> "$file"
}
: > "$work/view.s"
: > "$work/host.s"
: > "$work/plain.s"
for ((i = 0; i < runs; i++)); do
  timed "$work/view.s" rebuild sandbox
  timed "$work/host.s" rebuild none
  timed "$work/plain.s" plain
  printf '  run %d: view %.1f s, host %.1f s, plain %.1f s\n' $((i + 1)) "$(tail -1 "$work/view.s")" \
    "$(tail -1 "$work/host.s")" "$(tail -1 "$work/plain.s")"
done
med() { sort -g "$1" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
v=$(med "$work/view.s")
h=$(med "$work/host.s")
p=$(med "$work/plain.s")
printf '  %-52s %8.1f s\n' "reprove rebuild, isolation = \"sandbox\" (lock's view)" "$v" \
  "reprove rebuild, isolation = \"none\" (host)" "$h" "dpkg-buildpackage on a copy (no reprove)" "$p"
printf '  view / host: %.3fx    view / plain: %.3fx    host / plain: %.3fx\n' \
  "$(echo "scale=3; $v / $h" | bc -l)" "$(echo "scale=3; $v / $p" | bc -l)" \
  "$(echo "scale=3; $h / $p" | bc -l)"
