#!/usr/bin/env python3
"""The tree digest of docs/tree-digest.md, in a few lines of standard Python.

Usage: tree_digest.py DIR   -> prints sha256:<hex> (the blake3 digest needs the blake3 package)
"""
import hashlib
import os
import stat
import sys


def escape(raw: bytes) -> str:
    return "".join(chr(b) if 0x21 <= b <= 0x7E and b != 0x25 else "%%%02X" % b for b in raw)


def listing(root: bytes) -> bytes:
    entries = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            entries.append((os.path.relpath(full, root), full))
    out = [b"reprove-tree-v1\n"]
    for rel, full in sorted(entries):
        st = os.lstat(full)
        if stat.S_ISLNK(st.st_mode):
            target = os.readlink(full)
            line = "link - %d %s" % (len(target), escape(target))
        elif stat.S_ISDIR(st.st_mode):
            line = "dir - 0 -"
        elif stat.S_ISREG(st.st_mode):
            with open(full, "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()
            exe = "x" if st.st_mode & 0o111 else "-"
            line = "file %s %d %s" % (exe, st.st_size, digest)
        else:
            sys.exit("not a file, directory or symlink: %r" % full)
        out.append(line.encode() + b" " + escape(rel).encode() + b"\n")
    return b"".join(out)


if __name__ == "__main__":
    print("sha256:" + hashlib.sha256(listing(os.fsencode(sys.argv[1]))).hexdigest())
