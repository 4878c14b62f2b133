#!/usr/bin/env bash
# The main job on the bundled demo, both sides of it:
#   the vendor deposits its source in escrow and, elsewhere and at another time, builds and
#   ships a release bundle; the operator locks the pinned toolchain, rebuilds from escrow and
#   verifies the shipped bundle (identical, exit 0), then verifies a copy an attacker changed
#   by one byte inside the code (different, exit 1, the offset shown).
# Usage: scripts/demo.sh            (work folder: demo/ in cargo's target folder, made anew)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
. scripts/deps.sh
install_deps demo

# The binary where cargo put it (CARGO_TARGET_DIR is honoured); the work folder beside it.
reprove=$(scripts/reprove-bin.sh)
work="$(dirname "$(dirname "$reprove")")/demo"
rm -rf "$work"
mkdir -p "$work"/{vendor,operator/escrow,shipped,tampered,attestations}

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# verify_expect STATUS BUNDLE ATTESTATION: verify BUNDLE, signed, and insist on exit STATUS.
verify_expect() {
  local expected=$1 status=0
  "$reprove" verify "$work/operator/reprove.toml" --shipped "$2" \
    --sign-key "$work/operator/operator.key" --verifier-id "https://operator.example/lab" \
    --verifier-name "Demo Operator Lab" --out "$work/attestations/$3" || status=$?
  echo "exit code: $status (expected $expected)"
  [ "$status" -eq "$expected" ]
}

say "vendor: deposit the source in escrow"
digest=$(testdata/demo/make-escrow.sh "$work/vendor/deposit")
cp "$work/vendor/deposit/acme-router-fw-1.0.0.tar.gz" "$work/operator/escrow/"
echo "escrow: $digest"

say "vendor: build the release in its own folder, another day, with its own umask"
mkdir -p "$work/vendor/home/ci/builds/acme-7731"
tar -xzf "$work/vendor/deposit/acme-router-fw-1.0.0.tar.gz" -C "$work/vendor/home/ci/builds/acme-7731"
(
  cd "$work/vendor/home/ci/builds/acme-7731"
  umask 077
  faketime '2026-01-15 09:30:00' env -i PATH=/usr/bin:/bin HOME=/home/ci TZ=Europe/Berlin \
    LANG=de_DE.UTF-8 SOURCE_DATE_EPOCH=1700000000 make -s -j2
)
cp "$work/vendor/home/ci/builds/acme-7731/out/acme-router-fw-1.0.0.tar.gz" "$work/shipped/"
echo "shipped: $work/shipped/acme-router-fw-1.0.0.tar.gz"

say "operator: write the recipe, a signing key, and lock the toolchain"
sed "s/sha256:REPLACE_ME/$digest/" testdata/demo/reprove.toml.in > "$work/operator/reprove.toml"
"$reprove" key generate --out "$work/operator/operator.key"
"$reprove" lock "$work/operator/reprove.toml"

say "operator: verify the shipped bundle"
verify_expect 0 "$work/shipped/acme-router-fw-1.0.0.tar.gz" release.intoto.jsonl

say "attacker: change one byte inside the code of firmware.img and repack the bundle"
mkdir -p "$work/tampered/unpacked"
tar -xzf "$work/shipped/acme-router-fw-1.0.0.tar.gz" -C "$work/tampered/unpacked"
python3 - "$work/tampered/unpacked/firmware.img" <<'PY'
import sys
path = sys.argv[1]
data = bytearray(open(path, "rb").read())
offset = 0x200  # inside .text: the image starts with 72 bytes of vectors, then code
data[offset] ^= 0x01
open(path, "wb").write(data)
print(f"flipped one bit at offset {offset} (0x{offset:x})")
PY
tar -C "$work/tampered/unpacked" --format=ustar --sort=name --mtime=@1700000000 --owner=0 \
  --group=0 --numeric-owner --mode=u=rw,go=r -cf - firmware.img manifest.txt |
  gzip -n -9 > "$work/tampered/acme-router-fw-1.0.0.tar.gz"

say "operator: verify the tampered bundle"
verify_expect 1 "$work/tampered/acme-router-fw-1.0.0.tar.gz" tampered.intoto.jsonl

say "audit: check the release attestation against the shipped bundle"
"$reprove" attest verify "$work/attestations/release.intoto.jsonl" \
  --key "$work/operator/operator.key.pub" --artifact "$work/shipped/acme-router-fw-1.0.0.tar.gz"

say "attestations"
ls -l "$work/attestations"
