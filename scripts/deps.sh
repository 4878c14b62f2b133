# Sourced by demo.sh, test.sh and bench.sh: install what they need on Debian/Ubuntu.
# As root, missing packages come from apt; otherwise the script says exactly what to install.

# Debian packages each script needs (commands → package).
declare -A REPROVE_DEPS_demo=(
  [gcc]=gcc [make]=make [objcopy]=binutils [bwrap]=bubblewrap [faketime]=faketime
  [python3]=python3
)
declare -A REPROVE_DEPS_test=(
  [gcc]=gcc [make]=make [objcopy]=binutils [bwrap]=bubblewrap [faketime]=faketime
  [strace]=strace [python3]=python3 [pgrep]=procps [chromium]=chromium [cpio]=cpio
)
declare -A REPROVE_DEPS_bench=(
  [gcc]=gcc [make]=make [objcopy]=binutils [bwrap]=bubblewrap [b3sum]=b3sum
  [diffoscope]=diffoscope [cmp]=diffutils [bc]=bc
)

install_deps() {
  local -n wanted="REPROVE_DEPS_$1"
  local missing=() cmd
  for cmd in "${!wanted[@]}"; do
    command -v "$cmd" >/dev/null 2>&1 || missing+=("${wanted[$cmd]}")
  done
  if ! command -v cargo >/dev/null 2>&1; then
    echo "error: cargo is not installed: install Rust from https://rustup.rs" >&2
    exit 2
  fi
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing: ${missing[*]}" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  else
    echo "error: missing packages: ${missing[*]}" >&2
    echo "hint: sudo apt-get install ${missing[*]}" >&2
    exit 2
  fi
}
