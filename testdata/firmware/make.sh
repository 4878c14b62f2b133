#!/bin/sh
# Makes the small U-Boot and device-tree samples in DIR (default: this folder) with the real
# tools: dtc (device-tree-compiler) and mkimage (u-boot-tools). The unit tests read the copies
# kept here; tests/cli/firmware_a.rs runs it to make fresh ones
# (files already in DIR are used as they are: a test changes one, then runs this).
#   board.dtb       dtc of board.dts
#   kernel.uimg     a legacy uImage of a gzip payload (kernel.gz), ih_time 1700000000
#   multi.uimg      a multi-file uImage: kernel.bin, initrd.bin, board.dtb
#   fit.itb         a FIT with the gzip kernel and board.dtb inside the tree
#   fit-ext.itb     the same FIT with external data (mkimage -E)
# SOURCE_DATE_EPOCH (default 1700000000) sets every timestamp mkimage writes.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here}
mkdir -p "$out"
cd "$out"
: "${SOURCE_DATE_EPOCH:=1700000000}"
export SOURCE_DATE_EPOCH
if [ ! -e kernel.bin ]; then
  i=0
  : > kernel.bin
  while [ "$i" -lt 200 ]; do printf 'kernel bytes ' >> kernel.bin; i=$((i + 1)); done
fi
[ -e initrd.bin ] || printf 'initrd bytes xyz' > initrd.bin
gzip -9 -n -c kernel.bin > kernel.gz
for f in board.dts fit.its; do [ -e "$f" ] || cp "$here/$f" .; done
dtc -q -I dts -O dtb -o board.dtb board.dts
mkimage -q -A arm -O linux -T kernel -C gzip -a 0x80008000 -e 0x80008000 -n "reprove test" \
  -d kernel.gz kernel.uimg >/dev/null
mkimage -q -A arm -O linux -T multi -C none -a 0 -e 0 -n "reprove multi" \
  -d kernel.bin:initrd.bin:board.dtb multi.uimg >/dev/null
mkimage -q -f fit.its fit.itb >/dev/null
mkimage -q -E -f fit.its fit-ext.itb >/dev/null
