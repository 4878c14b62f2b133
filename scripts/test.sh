#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, the docs, and every test (unit and
# integration: the real binary on the real demo with the real compiler and bubblewrap, a
# debootstrap root made once and cached in target/, in-toto's own Python code for interop).
# Installs what it needs on Debian/Ubuntu when run as root; otherwise says what to install.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
# The deb-src source first: its `apt-get update` then serves the installs too (one update,
# not two, on a fresh machine).
ensure_deb_src
install_deps test
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# Snapshots (tests/cli/snapshots/) are checked, never written: a mismatch fails. insta writes
# nothing when `CI` is set, but a developer's shell may have `INSTA_UPDATE=always`.
export INSTA_UPDATE=no
unset INSTA_FORCE_PASS
cargo fmt --check
cargo clippy --locked --all-targets -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps --document-private-items --quiet
cargo test --locked
