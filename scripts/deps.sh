# Sourced by demo.sh, test.sh and bench.sh: install what they need on Debian/Ubuntu.
# As root, missing packages come from apt; otherwise the script says exactly what to install.

# Debian packages each script needs: a command (or, when it starts with `/`, a file) → package.
declare -A REPROVE_DEPS_demo=(
  [gcc]=gcc [make]=make [objcopy]=binutils [bwrap]=bubblewrap [faketime]=faketime
  [strace]=strace [python3]=python3 [/usr/include/stdio.h]=libc6-dev
)
declare -A REPROVE_DEPS_test=(
  [gcc]=gcc [make]=make [objcopy]=binutils [bwrap]=bubblewrap [faketime]=faketime
  [strace]=strace [python3]=python3 [pgrep]=procps [chromium]=chromium [cpio]=cpio
  [debootstrap]=debootstrap [man]=man-db [/usr/include/stdio.h]=libc6-dev
  [mkimage]=u-boot-tools [dtc]=device-tree-compiler [dpkg-deb]=dpkg [dpkg-source]=dpkg-dev
  [iasl]=acpica-tools [readelf]=binutils
  [/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1]=libfaketime
)
# The firmware container tests make real squashfs, CBFS and FMAP images and read Debian's OVMF.
REPROVE_DEPS_test+=(
  [mksquashfs]=squashfs-tools [/usr/sbin/cbfstool]=coreboot-utils [/usr/sbin/fmaptool]=coreboot-utils
  [/usr/share/OVMF/OVMF_CODE.fd]=ovmf
)
# The Slurm test starts a single-node cluster (munged, slurmctld, slurmd; sbatch and sinfo are
# in slurm-client, which slurm-wlm pulls in); the CI examples are validated by pinned PyPI
# packages in a venv the test makes (tests/ci_examples/requirements.txt), as the in-toto
# interop packages are (tests/interop/requirements.txt).
REPROVE_DEPS_test+=(
  [munged]=munge [slurmctld]=slurmctld [slurmd]=slurmd [sbatch]=slurm-wlm
)
# The dump tests assemble a flash from Debian's U-Boot and read it back through flashrom.
REPROVE_DEPS_test+=(
  [/usr/lib/u-boot/qemu_arm64/u-boot.bin]=u-boot-qemu [flashrom]=flashrom
)
declare -A REPROVE_DEPS_bench=(
  [gcc]=gcc [make]=make [objcopy]=binutils [bwrap]=bubblewrap [b3sum]=b3sum
  [diffoscope]=diffoscope [cmp]=diffutils [bc]=bc [strace]=strace
)
# The scale benchmarks (scripts/bench-scale.sh): a large real escrow, and a Debian source build.
REPROVE_DEPS_bench+=(
  [/usr/src/linux-source-6.1.tar.xz]=linux-source-6.1 [xz]=xz-utils [dpkg-source]=dpkg-dev
  [perl]=perl [ld]=binutils
)

install_deps() {
  local -n wanted="REPROVE_DEPS_$1"
  local missing=() cmd
  for cmd in "${!wanted[@]}"; do
    case "$cmd" in
      /*) [ -e "$cmd" ] || missing+=("${wanted[$cmd]}") ;;
      *) command -v "$cmd" >/dev/null 2>&1 || missing+=("${wanted[$cmd]}") ;;
    esac
  done
  # The interop tests make virtualenvs, with the Python packages pinned in tests/interop/
  # (requirements.txt: in-toto and securesystemslib; cyclonedx-requirements.txt: the official
  # CycloneDX schema validator), installed by pip from PyPI on the first run and kept under
  # target/tmp: Debian's python3 needs python3-venv for that.
  if [ "$1" = test ] && ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    missing+=(python3-venv)
  fi
  if ! command -v cargo >/dev/null 2>&1; then
    echo "error: cargo is not installed: install Rust from https://rustup.rs" >&2
    exit 2
  fi
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing: ${missing[*]}" >&2
    # ensure_deb_src, run first, may just have updated the lists: once is enough.
    [ -n "${REPROVE_APT_UPDATED:-}" ] || apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  else
    echo "error: missing packages: ${missing[*]}" >&2
    echo "hint: sudo apt-get install ${missing[*]}" >&2
    exit 2
  fi
}

# The real-firmware tests fetch Debian source packages (`apt-get source --download-only`): apt
# needs a deb-src source. As root, one is added for the URIs and suites of the deb sources when
# apt has none; otherwise the script says so.
ensure_deb_src() {
  apt-cache showsrc seabios 2>/dev/null | grep -q '^Package:' && return 0
  local debian=/etc/apt/sources.list.d/debian.sources
  if [ "$(id -u)" -ne 0 ] || [ ! -f "$debian" ]; then
    echo "error: apt knows no source package \`seabios\`: add a deb-src source for the tests" >&2
    exit 2
  fi
  sed -n -e 's/^Types: deb$/Types: deb-src/' -e p "$debian" \
    > /etc/apt/sources.list.d/reprove-test-src.sources
  apt-get update -qq >&2
  REPROVE_APT_UPDATED=1
}
