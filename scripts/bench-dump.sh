#!/usr/bin/env bash
# Dump benchmark (issue 10 item 5), called by scripts/bench.sh dump:
#   - locating a 4 MiB release inside a 64 MiB dump (page cache warm) against sha256sum and
#     b3sum of the same dump (target: at most 2x the time of hashing it once);
#   - the peak memory (/usr/bin/time -v) of `reprove diff` on a 4 GiB sparse-ish eMMC image
#     holding the release near its end (target: under 64 MiB).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
REPROVE=${REPROVE:-$(scripts/reprove-bin.sh)}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
head -c $((4 << 20)) /dev/urandom > "$dir/firmware.img"
python3 - "$dir" <<'PY'
import os, sys
d = sys.argv[1]
release = open(os.path.join(d, "firmware.img"), "rb").read()
dump = bytearray(os.urandom(1 << 20)) + bytearray(b"\xff" * ((64 << 20) - (1 << 20)))
at = 0x1230001  # not aligned: found by content, anywhere
dump[at:at + len(release)] = release
dump[at + 12345] ^= 0x20  # and a copy that differs in a byte
open(os.path.join(d, "dump-64m.bin"), "wb").write(dump)
PY
cat "$dir/dump-64m.bin" "$dir/firmware.img" > /dev/null
echo "== dump: locating a 4 MiB release in a 64 MiB dump, median of 5 runs (page cache warm)"
r=$(median 5 "$REPROVE" diff --dump "$dir/firmware.img" "$dir/dump-64m.bin")
s=$(median 5 sha256sum "$dir/dump-64m.bin")
b=$(median 5 b3sum "$dir/dump-64m.bin")
printf '  %-44s %7.3f s\n' "reprove diff --dump (locate + explain)" "$r" "sha256sum of the dump" "$s" \
  "b3sum of the dump" "$b"
printf '  reprove / sha256sum: %sx (target <= 2x); reprove / b3sum: %sx\n' \
  "$(ratio "$r" "$s")" "$(ratio "$r" "$b")"
echo "  reprove's report: $("$REPROVE" diff --dump "$dir/firmware.img" "$dir/dump-64m.bin" | head -1 || true)"

echo "== dump: peak memory on a 4 GiB sparse-ish eMMC image"
truncate -s 4G "$dir/emmc-4g.img"
head -c $((16 << 20)) /dev/urandom | dd of="$dir/emmc-4g.img" conv=notrunc status=none
dd if="$dir/firmware.img" of="$dir/emmc-4g.img" bs=1M seek=$((3 << 10)) conv=notrunc status=none
# CPU time (user + system) is what is compared: the machine is shared, wall clock is noise.
# REPROVE_BEFORE=path/to/an/older/reprove runs that binary on the same image, side by side.
cpu_run() { # BIN LABEL
  /usr/bin/time -f '%e %U %S %M' -o "$dir/time.txt" "$1" diff --dump "$dir/firmware.img" \
    "$dir/emmc-4g.img" > "$dir/out.txt" 2> /dev/null || true
  read -r e u s rss < "$dir/time.txt"
  printf '  %-34s %6.1f s wall, %6.1f s CPU (user %.1f, sys %.1f), peak RSS %.1f MiB (target < 64 MiB)\n' \
    "$2, 4 GiB image:" "$e" "$(echo "$u + $s" | bc -l)" "$u" "$s" "$(echo "$rss / 1024" | bc -l)"
  echo "  its report: $(head -1 "$dir/out.txt")"
  cpu=$(echo "$u + $s" | bc -l)
}
cat "$dir/emmc-4g.img" > /dev/null
cpu_run "$REPROVE" "reprove diff --dump"
after=$cpu
if [ -n "${REPROVE_BEFORE:-}" ]; then
  cpu_run "$REPROVE_BEFORE" "before (REPROVE_BEFORE)"
  printf '  CPU time, this build / before: %sx\n' "$(ratio "$after" "$cpu")"
fi
