#!/bin/sh
# Print the Debian mirror this machine's apt takes bookworm from: the first `deb` source for the
# suite `bookworm` in $APT_ETC/sources.list, then $APT_ETC/sources.list.d/*.list (one-line
# format) and $APT_ETC/sources.list.d/*.sources (deb822), in that order, skipping `deb-src`
# lines and stanzas with `Enabled: no`. APT_ETC defaults to /etc/apt. With none, says so and
# exits 2: there is no fallback host, the machine's own sources are the ones it trusts.
#
# usage: apt-mirror.sh [SUITE]   (default SUITE: bookworm)
set -eu

suite=${1:-bookworm}
etc=${APT_ETC:-/etc/apt}

one_line() {
    # deb [options] URI SUITE COMPONENT...
    awk -v suite="$suite" '
        { sub(/#.*/, "") }
        $1 == "deb" {
            i = 2
            if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
            if ($(i + 1) == suite) { print $i; exit }
        }' "$1"
}

deb822() {
    # Stanzas separated by blank lines; fields Types, URIs, Suites, Enabled.
    awk -v suite="$suite" '
        function flush() {
            if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " suite " ") && enabled != "no" && uri != "") {
                print uri; found = 1; exit
            }
            types = ""; suites = ""; uri = ""; enabled = ""
        }
        /^[ \t]*#/ { next }
        /^[ \t]*$/ { flush(); next }
        {
            key = tolower($1); sub(/:$/, "", key)
            value = $0; sub(/^[^:]*:[ \t]*/, "", value); sub(/[ \t]+$/, "", value)
            if (key == "types") types = value
            else if (key == "suites") suites = value
            else if (key == "uris") { split(value, u, /[ \t]+/); uri = u[1] }
            else if (key == "enabled") enabled = tolower(value)
        }
        END { if (!found) flush() }' "$1"
}

for f in "$etc/sources.list" "$etc"/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    mirror=$(one_line "$f")
    [ -n "$mirror" ] && { echo "$mirror"; exit 0; }
done
for f in "$etc"/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    mirror=$(deb822 "$f")
    [ -n "$mirror" ] && { echo "$mirror"; exit 0; }
done
echo "error: no \`deb\` source for \`$suite\` in \`$etc/sources.list\` or \`$etc/sources.list.d/\`" >&2
echo "hint: add one to apt's sources, or pass the mirror as MIRROR: make-root.sh OUT.tar.gz http://…/debian" >&2
exit 2
