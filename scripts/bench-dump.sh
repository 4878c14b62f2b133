#!/usr/bin/env bash
# Dump benchmark (issue 10 item 5), called by scripts/bench.sh dump:
#   - locating a 4 MiB release inside a 64 MiB dump (page cache warm) against sha256sum and
#     b3sum of the same dump (target: at most 2x the time of hashing it once);
#   - the same subject found with no file: `attest verify --dump` of a signed attestation,
#     by its locator, in CPU time against sha256sum of the dump;
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

echo "== dump: attest verify --dump with no --artifact (the subject found by its signed locator), CPU time (user+sys), median of 5"
# A signed attestation of the 4 MiB release: a recipe whose build copies it out of the escrow.
mkdir -p "$dir/seek/escrow"
cp "$dir/firmware.img" "$dir/seek/escrow/"
python3 - "$dir" <<'PY'
import sys
d = sys.argv[1]
dump = bytearray(open(d + "/dump-64m.bin", "rb").read())
dump[0x1230001 + 12345] ^= 0x20  # the copy made intact again
open(d + "/dump-64m-intact.bin", "wb").write(dump)
PY
escrow_digest=$("$REPROVE" hash --json "$dir/seek/escrow" |
  python3 -c 'import json, sys; d = json.load(sys.stdin)["entries"][0]["sha256"]; print(d if ":" in d else "sha256:" + d)')
cat > "$dir/seek/reprove.toml" << TOML
[package]
name = "seek-bench"
version = "1"

[source]
path = "escrow"
digest = "$escrow_digest"

[toolchain]
tools = ["sh", "mkdir", "cp"]
isolation = "none"

[build]
command = ["sh", "-c", "mkdir -p out && cp firmware.img out/"]

[[artifact]]
path = "out/firmware.img"
TOML
"$REPROVE" lock --quiet --no-trace "$dir/seek/reprove.toml" > /dev/null
"$REPROVE" key generate --out "$dir/seek/key" > /dev/null
"$REPROVE" verify --quiet "$dir/seek/reprove.toml" --sign-key "$dir/seek/key" \
  --verifier-id https://bench.example --out "$dir/seek/att.intoto.jsonl" \
  --shipped "$dir/firmware.img" > /dev/null
# cpu N CMD...: the median user+sys CPU seconds of N runs of CMD (wall time is noise on a
# shared machine; CPU time is what the work costs).
cpu() {
  local n=$1 i
  shift
  for ((i = 0; i < n; i++)); do
    /usr/bin/time -f '%U %S' -o "$dir/cpu.txt" "$@" > /dev/null 2>&1 || true
    # The last line: GNU time writes "Command exited with non-zero status 1" first.
    tail -n 1 "$dir/cpu.txt" | awk '{print $1 + $2}'
  done | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}
seek_att=(attest verify "$dir/seek/att.intoto.jsonl" --key "$dir/seek/key.pub" --dump)
si=$(cpu 5 "$REPROVE" "${seek_att[@]}" "$dir/dump-64m-intact.bin")
sd=$(cpu 5 "$REPROVE" "${seek_att[@]}" "$dir/dump-64m.bin")
lc=$(cpu 5 "$REPROVE" diff --dump "$dir/firmware.img" "$dir/dump-64m-intact.bin")
sc=$(cpu 5 sha256sum "$dir/dump-64m.bin")
printf '  %-58s %7.3f s CPU\n' "attest verify --dump, no artifact (identical copy)" "$si" \
  "attest verify --dump, no artifact (copy differs in a byte)" "$sd" \
  "reprove diff --dump with the file (identical copy)" "$lc" "sha256sum of the dump" "$sc"
printf '  seek / sha256sum: %sx identical, %sx differing (target <= 2x); seek / locate with the file: %sx\n' \
  "$(ratio "$si" "$sc")" "$(ratio "$sd" "$sc")" "$(ratio "$si" "$lc")"
echo "  reprove's report: $("$REPROVE" "${seek_att[@]}" "$dir/dump-64m-intact.bin" | grep 'found at' || true)"
echo "  load average: $(cut -d' ' -f1-3 /proc/loadavg)"

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
/usr/bin/time -v "$REPROVE" "${seek_att[@]}" "$dir/emmc-4g.img" > "$dir/out.txt" 2> "$dir/time.txt" || true
rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$dir/time.txt")
printf '  attest verify --dump, no artifact, 4 GiB image: peak RSS %s KiB (%.1f MiB; target < 64 MiB)\n' \
  "$rss" "$(echo "$rss / 1024" | bc -l)"
echo "  reprove's report: $(grep 'found at' "$dir/out.txt" || true)"
