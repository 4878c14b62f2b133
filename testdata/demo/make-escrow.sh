#!/bin/sh
# Usage: make-escrow.sh OUTDIR
#
# Writes OUTDIR/acme-router-fw-<version>.tar.gz, the source as the vendor
# deposits it in escrow: Makefile, firmware.ld, start.S, include/ and src/ at
# the archive root (no top-level folder), so that `make` runs at the root of
# the extracted tree. The archive is reproducible: members sorted by name,
# fixed mtime, owner and modes, no gzip time stamp. Prints its digest
# (sha256:HEX) on stdout.
set -eu

if [ $# -ne 1 ]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi

export LC_ALL=C
here=$(cd "$(dirname "$0")" && pwd)
name=$(sed -n 's/^NAME *:= *//p' "$here/Makefile")
version=$(sed -n 's/^VERSION *:= *//p' "$here/Makefile")
mkdir -p "$1"
archive=$(cd "$1" && pwd)/$name-$version.tar.gz

# Two steps, not a pipe: sh has no pipefail to catch a failing tar.
tar -C "$here" --format=ustar --sort=name \
    --mtime=@"${SOURCE_DATE_EPOCH:-1700000000}" \
    --owner=0 --group=0 --numeric-owner --mode=u=rwX,go=rX \
    --exclude-backups --exclude-vcs \
    -cf "$archive.tmp.tar" Makefile firmware.ld start.S include src
gzip -n -9 -c "$archive.tmp.tar" > "$archive.tmp"
rm -f "$archive.tmp.tar"
mv -f "$archive.tmp" "$archive"

digest=$(sha256sum "$archive")
echo "sha256:${digest%% *}"
