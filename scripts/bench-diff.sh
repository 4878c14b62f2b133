#!/usr/bin/env bash
# Time `reprove diff` against `cmp` and `diffoscope` on the same inputs, side by side.
#
#   scripts/bench-diff.sh            # RUNS=3 runs of reprove and cmp (median), diffoscope once
#   RUNS=1 NO_DIFFOSCOPE=1 scripts/bench-diff.sh
#
# Inputs, generated once into $BENCH_DIR (default /tmp/reprove-bench-diff):
#   - 1 GiB and 256 MiB pairs of random bytes, differing in 5 places;
#   - two tar.gz bundles of 2,000 small files differing in one file and in every mtime.
# cmp runs as `cmp -l a b | wc -l` (through a pipe: `cmp -l >/dev/null` stops at the first
# difference). diffoscope skips the 1 GiB pair: it runs out of memory there
# (shared/reference/peers.md). Wall time and peak RSS come from /usr/bin/time.
set -euo pipefail

cd "$(dirname "$0")/.."
DIR=${BENCH_DIR:-/tmp/reprove-bench-diff}
RUNS=${RUNS:-3}
mkdir -p "$DIR"

for tool in cmp python3; do
  command -v "$tool" >/dev/null || { echo "error: \`$tool\` is needed" >&2; exit 2; }
done
if [ ! -x /usr/bin/time ]; then
  if [ "$(id -u)" = 0 ]; then apt-get install -y --no-install-recommends time >/dev/null
  else echo "error: /usr/bin/time is needed (Debian package \`time\`)" >&2; exit 2; fi
fi
have_diffoscope=0
if [ -z "${NO_DIFFOSCOPE:-}" ]; then
  if ! command -v diffoscope >/dev/null && [ "$(id -u)" = 0 ]; then
    apt-get install -y --no-install-recommends diffoscope >/dev/null
  fi
  command -v diffoscope >/dev/null && have_diffoscope=1
fi

REPROVE=${REPROVE:-$(scripts/reprove-bin.sh)}

# A pair of random files of $2 MiB, the second differing in 5 spread-out places.
make_pair() {
  local name=$1 mib=$2
  [ -f "$DIR/$name.b" ] && return
  head -c "$((mib << 20))" /dev/urandom >"$DIR/$name.a"
  cp "$DIR/$name.a" "$DIR/$name.b"
  python3 - "$DIR/$name.b" "$mib" <<'PY'
import sys
path, mib = sys.argv[1], int(sys.argv[2])
size = mib << 20
with open(path, "r+b") as f:
    for k in range(5):
        f.seek(size * (2 * k + 1) // 10)
        old = f.read(4)
        f.seek(-4, 1)
        f.write(bytes(b ^ 0xFF for b in old))
PY
}

make_bundles() {
  [ -f "$DIR/bundle-b.tar.gz" ] && return
  python3 - "$DIR" <<'PY'
import io, random, sys, tarfile
out = sys.argv[1]
rng = random.Random(1)
files = [(f"fw/part{i:04}.bin", rng.randbytes(rng.randint(256, 4096))) for i in range(2000)]
for side, mtime in (("a", 1_700_000_000), ("b", 1_700_086_400)):
    with tarfile.open(f"{out}/bundle-{side}.tar.gz", "w:gz") as t:
        for name, data in files:
            if side == "b" and name == "fw/part1234.bin":
                data = data[:100] + b"X" + data[101:]
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), mtime, 0o644
            t.addfile(info, io.BytesIO(data))
PY
}

echo "generating inputs in $DIR …" >&2
make_pair 1g 1024
make_pair 256m 256
make_bundles

# measure RUNS CMD… : prints "median-seconds max-rss-kib" over RUNS runs (wall time from
# bash's microsecond clock, peak RSS from /usr/bin/time).
measure() {
  local runs=$1; shift
  local times=() rss=0 start m out
  out=$(mktemp)
  for _ in $(seq "$runs"); do
    start=$EPOCHREALTIME
    /usr/bin/time -f '%M' -o "$out" "$@" >/dev/null 2>&1 || true
    times+=("$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')")
    m=$(tail -n 1 "$out")
    [ "$m" -gt "$rss" ] && rss=$m
  done
  rm -f "$out"
  echo "$(printf '%s\n' "${times[@]}" | sort -n | sed -n "$(( (runs + 1) / 2 ))p") $rss"
}

row() { printf '%-34s %-14s %9s s %8s MiB\n' "$1" "$2" "$3" "$(( $4 / 1024 ))"; }
ratio() { python3 -c "print(f'{$1 / $2:.2f}' if $2 > 0 else 'n/a')"; }

printf '%-34s %-14s %11s %14s\n' work tool wall "peak RSS"
for pair in 1g 256m; do
  a=$DIR/$pair.a b=$DIR/$pair.b
  cat "$a" "$b" >/dev/null  # page cache, as in peers.md
  read -r rt rm < <(measure "$RUNS" "$REPROVE" diff "$a" "$b")
  row "$pair pair, 5 differences" reprove "$rt" "$rm"
  read -r ct cm < <(measure "$RUNS" sh -c "cmp -l '$a' '$b' | wc -l")
  row "$pair pair, 5 differences" "cmp -l | wc" "$ct" "$cm"
  echo "  reprove speed vs cmp: $(ratio "$ct" "$rt")x (target >= 0.9)"
  if [ "$pair" = 256m ] && [ "$have_diffoscope" = 1 ]; then
    read -r dt dm < <(measure 1 diffoscope --no-progress "$a" "$b")
    row "$pair pair, 5 differences" diffoscope "$dt" "$dm"
    echo "  reprove speed vs diffoscope: $(ratio "$dt" "$rt")x"
  fi
done

a=$DIR/bundle-a.tar.gz b=$DIR/bundle-b.tar.gz
read -r rt rm < <(measure "$RUNS" "$REPROVE" diff "$a" "$b")
row "tar.gz, 2000 files, 1 change" reprove "$rt" "$rm"
read -r ct cm < <(measure "$RUNS" sh -c "cmp -l '$a' '$b' | wc -l")
row "tar.gz, 2000 files, 1 change" "cmp -l | wc" "$ct" "$cm"
if [ "$have_diffoscope" = 1 ]; then
  read -r dt dm < <(measure 1 diffoscope --no-progress "$a" "$b")
  row "tar.gz, 2000 files, 1 change" diffoscope "$dt" "$dm"
  echo "  reprove speed vs diffoscope: $(ratio "$dt" "$rt")x"
fi
echo "  reprove's report: $("$REPROVE" diff "$a" "$b" | tail -1)"
