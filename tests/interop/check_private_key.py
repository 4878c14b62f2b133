"""Load a private key written by `reprove key generate` with pyca/cryptography (OpenSSL).

usage: check_private_key.py PRIVATE_KEY PUBLIC_KEY.pem

Exit 0 when the private key loads as Ed25519 and its public half is the PUBLIC_KEY file's.
"""

import sys

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_private_key,
)


def main() -> int:
    with open(sys.argv[1], "rb") as f:
        private = load_pem_private_key(f.read(), password=None)
    if not isinstance(private, Ed25519PrivateKey):
        print(f"not an Ed25519 key: {type(private).__name__}")
        return 1
    with open(sys.argv[2], "rb") as f:
        public = f.read()
    derived = private.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    if derived != public:
        print("the public key file does not match the private key")
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
