#!/bin/sh
# Build a hermetic toolchain root (Debian bookworm, gcc + make + binutils + libc headers) with
# debootstrap, pack it as OUT.tar.gz with sorted names, numeric owners and fixed mtimes, and print
# its sha256 digest for the recipe's `[toolchain] root`.
#
# usage: make-root.sh OUT.tar.gz [MIRROR]   (needs root, debootstrap, GNU tar, gzip, sha256sum)
set -eu

out=${1:?usage: make-root.sh OUT.tar.gz [MIRROR]}
# The mirror is the one the machine's apt takes bookworm from (apt-mirror.sh: sources.list,
# sources.list.d/*.list and deb822 *.sources); with none there, the script stops and says so.
mirror=${2:-}
if [ -z "$mirror" ]; then
    mirror=$("$(dirname "$0")/apt-mirror.sh" bookworm) || exit 2
fi
# Every mtime in the archive, and what dpkg and friends record while installing.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1700000000}

work=$(mktemp -d "${TMPDIR:-/tmp}/reprove-root.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root

debootstrap --variant=minbase --include=gcc,make,binutils,libc6-dev \
    bookworm "$root" "$mirror" >&2

# Drop what records when and from where the root was made, not what it is: downloaded
# packages, package lists, logs, caches, and the device nodes the sandbox provides itself.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin \
    "$root"/var/lib/apt/lists/* "$root"/var/log/* "$root"/var/cache/ldconfig/aux-cache \
    "$root"/dev/* "$root"/proc/* "$root"/sys/* "$root"/tmp/* "$root"/run/*
: > "$root"/etc/machine-id

tar --sort=name --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" \
    --format=gnu -C "$root" -cf - . | gzip -9 -n > "$out.tmp"
mv "$out.tmp" "$out"
echo "sha256:$(sha256sum "$out" | cut -d' ' -f1)"
