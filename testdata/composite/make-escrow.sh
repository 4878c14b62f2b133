#!/bin/sh
# Usage: make-escrow.sh OUTDIR
#
# Writes OUTDIR/acme-switch-fw.tar.gz, the composite firmware's source as the
# vendor deposits it in escrow (Makefile, sources and rootfs/ at the archive
# root), reproducibly, and prints its digest (sha256:HEX) on stdout.
set -eu

if [ $# -ne 1 ]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi

export LC_ALL=C
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$1"
archive=$(cd "$1" && pwd)/acme-switch-fw.tar.gz

# Two steps, not a pipe: sh has no pipefail to catch a failing tar.
tar -C "$here" --format=ustar --sort=name --mtime=@1700000000 \
    --owner=0 --group=0 --numeric-owner --mode=u=rwX,go=rX \
    -cf "$archive.tmp.tar" Makefile supervisor.c supervisor.ld mkimage.c rootfs
gzip -n -9 -c "$archive.tmp.tar" > "$archive.tmp"
rm -f "$archive.tmp.tar"
mv -f "$archive.tmp" "$archive"

digest=$(sha256sum "$archive")
echo "sha256:${digest%% *}"
