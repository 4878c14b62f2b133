#!/bin/sh
# Overhead of the bubblewrap sandbox against the host on a small gcc build: `make -B` of ten
# small C files, RUNS times each way, alternating; prints the medians and their ratio.
# The bwrap options are those of `src/sandbox/bwrap.rs` (host toolchain mode).
#
# usage: scripts/bench-sandbox.sh [RUNS]     (needs bwrap, gcc, make)
set -eu

runs=${1:-10}
work=$(mktemp -d "${TMPDIR:-/tmp}/reprove-bench-sandbox.XXXXXX")
trap 'rm -rf "$work"' EXIT

for i in 0 1 2 3 4 5 6 7 8 9; do
    cat > "$work/f$i.c" <<C
#include <stdio.h>
#include <string.h>
int f$i(const char *s) { char b[64]; strncpy(b, s, sizeof b - 1); b[63] = 0; return printf("%s $i\n", b); }
C
done
printf 'int f0(const char *);\nint main(void) { return f0("x") < 0; }\n' > "$work/main.c"
cat > "$work/Makefile" <<'M'
OBJS = main.o f0.o f1.o f2.o f3.o f4.o f5.o f6.o f7.o f8.o f9.o
app: $(OBJS)
	gcc -o $@ $(OBJS)
%.o: %.c
	gcc -O2 -c -o $@ $<
M

# Run "$@" in the sandbox, in the build tree.
sandbox() {
    cmd=$*
    set -- --unshare-all --cap-drop ALL --die-with-parent --new-session --hostname reprove \
        --ro-bind /usr /usr
    for top in bin sbin lib lib32 lib64 libx32; do
        if [ -L "/$top" ]; then
            set -- "$@" --symlink "$(readlink "/$top")" "/$top"
        elif [ -e "/$top" ]; then
            set -- "$@" --ro-bind "/$top" "/$top"
        fi
    done
    set -- "$@" --perms 0755 --dir /etc
    for f in ld.so.cache alternatives; do
        [ -e "/etc/$f" ] && set -- "$@" --ro-bind "/etc/$f" "/etc/$f"
    done
    set -- "$@" --bind "$work" /build --perms 1777 --tmpfs /tmp --proc /proc --dev /dev \
        --remount-ro / --chdir /build --clearenv --setenv PATH /usr/bin:/bin --
    # shellcheck disable=SC2086 # the command is words
    bwrap "$@" $cmd
}

host() {
    (cd "$work" && env -i PATH=/usr/bin:/bin "$@")
}

now() { date +%s%N; }

# Milliseconds of one run of "$@".
time_ms() {
    start=$(now)
    "$@" > /dev/null
    echo $((($(now) - start) / 1000000))
}

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# Median milliseconds of RUNS runs of "$@" on the host and in the sandbox, alternating.
compare() {
    : > "$work/host.ms"
    : > "$work/bwrap.ms"
    i=0
    while [ "$i" -lt "$runs" ]; do
        time_ms host "$@" >> "$work/host.ms"
        time_ms sandbox "$@" >> "$work/bwrap.ms"
        i=$((i + 1))
    done
    h=$(median < "$work/host.ms")
    b=$(median < "$work/bwrap.ms")
    printf '  host   %6s ms\n  bwrap  %6s ms\n' "$h" "$b"
    awk -v h="$h" -v b="$b" 'BEGIN { printf "  ratio  %6.3f (bwrap / host)\n", b / h }'
}

host make -s -B > /dev/null && sandbox make -s -B > /dev/null # warm the page cache
printf 'make -B, 11 C files: median of %s runs each\n' "$runs"
compare make -s -B
printf 'true (the cost of setting up the sandbox): median of %s runs each\n' "$runs"
compare true
